package state

import (
	"time"

	"github.com/sparr-dev/sparr/protocol"
)

// A DisputeStatus is where a dispute stands.
type DisputeStatus string

// The statuses of a dispute: open and acknowledged are open; upheld and
// rejected are resolved.
const (
	DisputeOpen         DisputeStatus = "open"
	DisputeAcknowledged DisputeStatus = "acknowledged"
	DisputeUpheld       DisputeStatus = "upheld"
	DisputeRejected     DisputeStatus = "rejected"
)

// A Dispute is the hub's state of one consumer's dispute of a suspicion
// (Suspicion) or a flag (Flag), opened through member Disputant and
// addressed to Respondent, the member that reported the suspicion or
// placed the flag.
type Dispute struct {
	ID      string `json:"id"`
	Version uint64 `json:"version"`
	// Subjects are the tokens the dispute is about; Statement the
	// consumer's words and Auth how they authenticated. An erasure of a
	// subject clears all three.
	Subjects   []string                `json:"subjects,omitempty"`
	Suspicion  string                  `json:"suspicion,omitempty"`
	Flag       string                  `json:"flag,omitempty"`
	Disputant  string                  `json:"disputant"`
	Respondent string                  `json:"respondent"`
	Grounds    protocol.DisputeGrounds `json:"grounds"`
	Statement  string                  `json:"statement,omitempty"`
	Auth       *protocol.ConsumerAuth  `json:"auth,omitempty"`
	Status     DisputeStatus           `json:"status"`
	OpenedAt   time.Time               `json:"opened_at"`
	// AckDue and ResolveDue are the respondent's deadlines.
	AckDue     time.Time `json:"ack_due"`
	ResolveDue time.Time `json:"resolve_due"`
	AckedAt    time.Time `json:"acked_at,omitzero"`
	ResolvedAt time.Time `json:"resolved_at,omitzero"`
	// Lapsed is the last deadline the respondent missed: "acknowledge" or
	// "resolve", and "" while none is.
	Lapsed string `json:"lapsed,omitempty"`
	// Reason is the respondent's reason for its resolution.
	Reason  string   `json:"reason,omitempty"`
	Records []string `json:"records,omitempty"`
	Erased  bool     `json:"erased,omitempty"`
}

// Open reports whether the dispute awaits its resolution.
func (d *Dispute) Open() bool { return d.Status == DisputeOpen || d.Status == DisputeAcknowledged }

// Target is the id of the suspicion or flag disputed.
func (d *Dispute) Target() string {
	if d.Suspicion != "" {
		return d.Suspicion
	}
	return d.Flag
}

// NextDue is the next deadline of an open dispute that has not yet
// lapsed, and the zero time when none is left.
func (d *Dispute) NextDue() time.Time {
	switch {
	case !d.Open():
		return time.Time{}
	case d.Status == DisputeOpen && d.Lapsed == "":
		return d.AckDue
	case d.Lapsed != "resolve":
		return d.ResolveDue
	}
	return time.Time{}
}

// LapsedAt reports whether, at t, the respondent has let a deadline of the
// open dispute pass: then the suspicion disputed stops counting in checks
// until the dispute is resolved. It holds once a deadline is past, whether
// or not the hub's job has recorded it yet.
func (d *Dispute) LapsedAt(t time.Time) bool {
	if !d.Open() {
		return false
	}
	return d.Lapsed != "" || (d.Status == DisputeOpen && t.After(d.AckDue)) || t.After(d.ResolveDue)
}

// An ErasureRecord is what the hub keeps of a record that tells members
// to delete (flag-lifted, flag-expired, subject-erased,
// suspicion-retracted, suspicion-expired) so that it can count their
// attestations after the record itself is gone: never its subject.
type ErasureRecord struct {
	ID       string             `json:"id"`
	Type     protocol.EventType `json:"type"`
	Audience string             `json:"audience,omitempty"`
	IssuedAt time.Time          `json:"issued_at"`
}

// ErasureTypes are the types of record a member attests the erasure of.
func ErasureTypes() []protocol.EventType {
	return []protocol.EventType{protocol.EventFlagLifted, protocol.EventFlagExpired, protocol.EventSubjectErased,
		protocol.EventSuspicionRetracted, protocol.EventSuspicionExpired}
}

// A PutDispute opens a dispute (Dispute at version 1; it conflicts while
// another dispute of the same suspicion or flag is open) or moves it to its
// next version, with its records: an acknowledgement, a resolution, or a
// lapse (the hub's, without Submission). An upheld dispute ends what it
// disputes in the same transaction: Suspicion (retracted) or Flag
// (lifted) is its last version, with what Erase deletes.
type PutDispute struct {
	Head
	Submission *SubmissionRef `json:"submission,omitempty"`
	Records    []*Record      `json:"records"`
	Dispute    *Dispute       `json:"dispute"`
	Suspicion  *Suspicion     `json:"suspicion,omitempty"`
	Flag       *Flag          `json:"flag,omitempty"`
	Erase      *Erase         `json:"erase,omitempty"`
}

// An AttestErasure keeps member Member's attestation that it deleted what
// Records (ids of erasure records, see [ErasureRecord]) told it to; one
// already kept is kept as it was.
type AttestErasure struct {
	Head
	Submission SubmissionRef `json:"submission"`
	Member     string        `json:"member"`
	Records    []string      `json:"records"`
}

func (*PutDispute) Kind() Kind    { return KindPutDispute }
func (*AttestErasure) Kind() Kind { return KindAttestErasure }
func (*PutDispute) isCommand()    {}
func (*AttestErasure) isCommand() {}

// A SubjectEntry is a log entry indexed under a subject, with the details
// it commits to.
type SubjectEntry struct {
	Entry   *protocol.LogEntry
	Details []byte
}
