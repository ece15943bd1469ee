package state

import (
	"time"

	"github.com/sparr-dev/sparr/protocol"
)

// KindPutPayee is the kind of [PutPayee].
const KindPutPayee Kind = "put-payee"

// A Payee is the hub's state of one payee record: every member's report of
// one payee token, aggregated. Version counts its records; the last of
// Records is the one a check shows.
type Payee struct {
	ID      string                       `json:"id"`
	Version uint64                       `json:"version"`
	Subject string                       `json:"subject"`
	Reports []protocol.PayeeMemberReport `json:"reports"`
	// ReportedAt is when the record was first made, ExpiresAt when it
	// lapses: the policy's retention after the last report.
	ReportedAt  time.Time              `json:"reported_at"`
	ExpiresAt   time.Time              `json:"expires_at"`
	Contested   bool                   `json:"contested,omitempty"`
	ContestedBy string                 `json:"contested_by,omitempty"`
	Reason      protocol.ContestReason `json:"contest_reason,omitempty"`
	Records     []string               `json:"records"`
}

// ActiveAt reports whether the payee record counts in checks at t.
func (p *Payee) ActiveAt(t time.Time) bool { return t.Before(p.ExpiresAt) }

// Customers returns the customers of every member's report.
func (p *Payee) Customers() int {
	n := 0
	for _, r := range p.Reports {
		n += r.Customers
	}
	return n
}

// A PutPayee writes the next version of a payee record (Payee.Version is
// the stored version plus one, or 1 for a payee the hub does not hold)
// with its new signed record, addressed to every member: a member's
// report or a contest.
type PutPayee struct {
	Head
	Submission *SubmissionRef `json:"submission,omitempty"`
	Record     *Record        `json:"record"`
	Payee      *Payee         `json:"payee"`
}

func (*PutPayee) Kind() Kind { return KindPutPayee }
func (*PutPayee) isCommand() {}

// KindExpirePayee is the kind of [ExpirePayee].
const KindExpirePayee Kind = "expire-payee"

// An ExpirePayee deletes payee record Payee, as stored (the store applies
// it only while that version is the stored one), at the end of its
// retention, with its token index. Record, addressed to every member,
// says so; Erase deletes the payee's earlier records and so their
// entries' details.
type ExpirePayee struct {
	Head
	Record *Record `json:"record"`
	Payee  *Payee  `json:"payee"`
	Erase  Erase   `json:"erase"`
}

func (*ExpirePayee) Kind() Kind { return KindExpirePayee }
func (*ExpirePayee) isCommand() {}
