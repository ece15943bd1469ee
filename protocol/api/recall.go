package api

import (
	"time"

	"github.com/sparr-dev/sparr/protocol"
)

// A Recall is a recall request as the hub shows it to its two sides: the
// requesting member (From) and the member holding the payee account (To).
type Recall struct {
	RecallID  string           `json:"recall_id"`
	From      string           `json:"from"`
	To        string           `json:"to"`
	Bank      protocol.BankRef `json:"bank"`
	Amount    protocol.Money   `json:"amount"`
	PaidAt    time.Time        `json:"paid_at"`
	Reference string           `json:"reference"`
	// Status is "requested", "acknowledged", or the outcome: "frozen",
	// "returned", "gone".
	Status         string                     `json:"status"`
	RequestedAt    time.Time                  `json:"requested_at"`
	AcknowledgedAt time.Time                  `json:"acknowledged_at,omitzero"`
	OutcomeAt      time.Time                  `json:"outcome_at,omitzero"`
	Outcome        protocol.RecallOutcomeCode `json:"outcome,omitempty"`
	Recovered      *protocol.Money            `json:"recovered,omitempty"`
	// AcknowledgeMillis and OutcomeMillis are the times from the request
	// to the acknowledgement and to the outcome, once there are any.
	AcknowledgeMillis *int64 `json:"acknowledge_ms,omitempty"`
	OutcomeMillis     *int64 `json:"outcome_ms,omitempty"`
	// Record is the compact JWS of the record this answer's write made.
	Record string `json:"record,omitempty"`
}

// RecallStats are the recall requests between one pair of members in the
// range an audit counted: how many were requested, acknowledged and
// answered with an outcome, and the times from request to
// acknowledgement and to outcome (median and most, in milliseconds).
type RecallStats struct {
	Requested        uint64 `json:"requested"`
	Acknowledged     uint64 `json:"acknowledged"`
	Outcomes         uint64 `json:"outcomes"`
	AcknowledgeP50Ms int64  `json:"acknowledge_p50_ms"`
	AcknowledgeMaxMs int64  `json:"acknowledge_max_ms"`
	OutcomeP50Ms     int64  `json:"outcome_p50_ms"`
	OutcomeMaxMs     int64  `json:"outcome_max_ms"`
}
