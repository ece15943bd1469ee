package api

import (
	"time"

	"github.com/sparr-dev/sparr/protocol"
)

// MaxLogPage is the most entries one request for log entries or audit
// entries returns.
const MaxLogPage = 1000

// A ProofResponse carries a Merkle proof of the exchange log as base64
// hashes: an inclusion proof (Index set) of an entry in the tree of Size
// entries, or a consistency proof (Old set) of the tree of Old entries in
// the tree of Size. An inclusion proof also carries the entry's line, the
// leaf it proves, when the caller may read it: the entry is the caller's
// own, or the caller is a regulator.
type ProofResponse struct {
	Index *uint64  `json:"index,omitempty"`
	Old   *uint64  `json:"old,omitempty"`
	Size  uint64   `json:"size"`
	Proof []string `json:"proof"`
	Entry string   `json:"entry,omitempty"`
}

// An AuditEntry is a log entry as the audit API shows it.
type AuditEntry struct {
	Index  uint64             `json:"index"`
	Time   time.Time          `json:"time"`
	Member string             `json:"member"`
	Action protocol.LogAction `json:"action"`
	Result string             `json:"result"`
	// Commitment is "sha256:" and the hex commitment, if the entry has
	// details.
	Commitment string            `json:"commitment,omitempty"`
	Attrs      map[string]string `json:"attrs,omitempty"`
}

// An AuditPage is the answer of GET /v1/audit/entries: entries in index
// order, and Next, the index to continue after, when there are more.
type AuditPage struct {
	Entries []AuditEntry `json:"entries"`
	Next    *uint64      `json:"next,omitempty"`
}

// AuditStats count log entries: in all, per member, per action, per day
// (UTC, YYYY-MM-DD), and refusals per reason (problem slug); and, per
// member and day, what it tokenized beside what it checked.
type AuditStats struct {
	Total   uint64            `json:"total"`
	Members map[string]uint64 `json:"members"`
	Actions map[string]uint64 `json:"actions"`
	Days    map[string]uint64 `json:"days"`
	Refused map[string]uint64 `json:"refused"`
	// Reconciliation is, by member and then by day, the identifiers the
	// member had tokenized beside the identities it checked. A member that
	// tokenizes far more than it checks is probing tokens (see
	// docs/threat-model.md).
	Reconciliation map[string]map[string]*Reconciliation `json:"reconciliation"`
	// Recalls are the recall requests by pair of members,
	// "<requester>><holder>" ("bank-a>bank-b"), with their times.
	Recalls map[string]*RecallStats `json:"recalls,omitempty"`
}

// A Reconciliation sets a member's tokenization beside its checks on one
// day.
type Reconciliation struct {
	// Tokenized is how many identifiers the member had evaluated.
	Tokenized uint64 `json:"tokenized"`
	// Checked is how many tokens the member checked online.
	Checked uint64 `json:"checked"`
	// ReplicaChecked is how many checks of its own replica the member
	// reported.
	ReplicaChecked uint64 `json:"replica_checked"`
}

// An AuditMembers is the answer of GET /v1/audit/members: every member, by
// id, with the state of delivery to its webhook endpoint, as a regulator
// sees them: no keys, no endpoint URL, no secrets.
type AuditMembers struct {
	Members []AuditMember `json:"members"`
}

// An AuditMember is a member as a regulator sees it.
type AuditMember struct {
	ID        string       `json:"id"`
	Name      string       `json:"name"`
	Roles     []Role       `json:"roles"`
	Status    MemberStatus `json:"status"`
	CreatedAt time.Time    `json:"created_at"`
	UpdatedAt time.Time    `json:"updated_at"`
	// Delivery is the state of delivery to the member's endpoint; nil if
	// it has none.
	Delivery *AuditDelivery `json:"delivery,omitempty"`
}

// An AuditDelivery is the state of delivery to a member's endpoint: its
// status, the deliveries waiting (Backlog), failed attempts in a row
// (Failures: the waiting deliveries are being retried when it is not 0),
// and the deliveries its receiver refused (DeadLetters).
type AuditDelivery struct {
	Status        EndpointStatus `json:"status"`
	Reason        string         `json:"reason,omitempty"`
	Backlog       int            `json:"backlog"`
	Failures      int            `json:"failures"`
	DeadLetters   int            `json:"dead_letters"`
	LastSuccessAt time.Time      `json:"last_success_at,omitzero"`
	LastErrorAt   time.Time      `json:"last_error_at,omitzero"`
	NextAttemptAt time.Time      `json:"next_attempt_at,omitzero"`
}
