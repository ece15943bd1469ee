package state

import (
	"time"

	"github.com/sparr-dev/sparr/protocol"
)

// KindPutRecall is the kind of [PutRecall].
const KindPutRecall Kind = "put-recall"

// A Recall is the hub's state of one recall request: from the payer's
// member to the member that holds the payee account, and how far it got.
type Recall struct {
	ID          string                     `json:"id"`
	Version     uint64                     `json:"version"`
	From        string                     `json:"from"`
	To          string                     `json:"to"`
	Payee       string                     `json:"payee"`
	Bank        protocol.BankRef           `json:"bank"`
	Amount      protocol.Money             `json:"amount"`
	PaidAt      time.Time                  `json:"paid_at"`
	Reference   string                     `json:"reference"`
	RequestedAt time.Time                  `json:"requested_at"`
	AckedAt     time.Time                  `json:"acknowledged_at,omitzero"`
	OutcomeAt   time.Time                  `json:"outcome_at,omitzero"`
	Outcome     protocol.RecallOutcomeCode `json:"outcome,omitempty"`
	Recovered   *protocol.Money            `json:"recovered,omitempty"`
	Records     []string                   `json:"records"`
}

// A PutRecall writes the next version of a recall (Recall.Version is the
// stored version plus one, or 1 for a new request) with its record,
// addressed to the other side.
type PutRecall struct {
	Head
	Submission *SubmissionRef `json:"submission,omitempty"`
	Record     *Record        `json:"record"`
	Recall     *Recall        `json:"recall"`
}

func (*PutRecall) Kind() Kind { return KindPutRecall }
func (*PutRecall) isCommand() {}
