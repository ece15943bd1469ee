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

// KindExpireRecall is the kind of [ExpireRecall].
const KindExpireRecall Kind = "expire-recall"

// An ExpireRecall deletes closed recall Recall, as stored (the store
// applies it only while that version is the stored one), at the end of its
// retention, with its token index; Erase deletes its records and so their
// entries' details.
type ExpireRecall struct {
	Head
	Recall *Recall `json:"recall"`
	Erase  Erase   `json:"erase"`
}

func (*ExpireRecall) Kind() Kind { return KindExpireRecall }
func (*ExpireRecall) isCommand() {}

// Scrubbed is recall rc with its payee token and records gone, as a
// subject erasure leaves it: the parties keep the ids, amounts, times and
// outcome of their case.
func (rc *Recall) Scrubbed() *Recall {
	n := *rc
	n.Version++
	n.Payee = ""
	n.Records = nil
	return &n
}
