package state

import (
	"bytes"
	"encoding/json"
	"time"

	"github.com/sparr-dev/sparr/protocol"
	"github.com/sparr-dev/sparr/protocol/api"
)

// A Record is a signed record as the hub keeps it: the exact bytes it
// signed, and what the hub needs to route and erase it.
type Record struct {
	ID       string             `json:"id"`        // the record's jti
	Seq      uint64             `json:"seq"`       // the hub's event sequence number, set when applied
	LogIndex uint64             `json:"log_index"` // its log entry's index, set when applied
	Type     protocol.EventType `json:"type"`
	Subjects []string           `json:"subjects,omitempty"` // token texts
	// Audience is the one member entitled to the record, or "" for every
	// member entitled by role.
	Audience string `json:"audience,omitempty"`
	// Ref is the flag or suspicion the record belongs to, if any.
	Ref      string    `json:"ref,omitempty"`
	IssuedAt time.Time `json:"issued_at"`
	JWS      string    `json:"jws"`
	// Peers are the peered hubs (members with role peer) the record goes
	// to, decided when it was signed (or relayed) under each peer's
	// policy; they get it besides the members entitled by role.
	Peers []string `json:"peers,omitempty"`
	// Via is a relayed record's via chain (protocol.Via entries, compact
	// JWS, this hub's last); empty for the hub's own records.
	Via []string `json:"via,omitempty"`
}

// A Flag is the hub's state of one protection flag.
type Flag struct {
	ID      string `json:"id"`
	Version uint64 `json:"version"` // events applied to it; each changes it by one
	// Subject is the protected token. It is cleared when the flag is lifted
	// or expires, with the consent and the earlier records.
	Subject      string                 `json:"subject,omitempty"`
	Kind         protocol.FlagKind      `json:"kind"`
	Origin       string                 `json:"origin"`
	Status       api.FlagStatus         `json:"status"`
	PlacedAt     time.Time              `json:"placed_at"`
	ExpiresAt    time.Time              `json:"expires_at"`
	ThawFrom     time.Time              `json:"thaw_from,omitzero"`
	ThawUntil    time.Time              `json:"thaw_until,omitzero"`
	ConsentID    string                 `json:"consent_id,omitempty"`
	PoliceReport *protocol.PoliceReport `json:"police_report,omitempty"`
	Records      []string               `json:"records,omitempty"` // jtis, oldest first
	// RemindAt is when the origin member is to be reminded of the expiry;
	// RemindedAt when it was.
	RemindAt   time.Time `json:"remind_at,omitzero"`
	RemindedAt time.Time `json:"reminded_at,omitzero"`
	EndedAt    time.Time `json:"ended_at,omitzero"`
}

// ThawedAt reports whether the flag is in a thaw window at t.
func (f *Flag) ThawedAt(t time.Time) bool {
	return !f.ThawFrom.IsZero() && !t.Before(f.ThawFrom) && t.Before(f.ThawUntil)
}

// ActiveAt reports whether the flag protects its subject at t: active and
// not past its expiry (the expiry job may not have run yet).
func (f *Flag) ActiveAt(t time.Time) bool {
	return f.Status == api.FlagActive && t.Before(f.ExpiresAt)
}

// A Suspicion is the hub's state of one shared fraud suspicion.
type Suspicion struct {
	ID           string                     `json:"id"`
	Version      uint64                     `json:"version"`
	Subjects     []string                   `json:"subjects,omitempty"`
	Category     protocol.SuspicionCategory `json:"category"`
	Origin       string                     `json:"origin"`
	Status       api.SuspicionStatus        `json:"status"`
	PoliceReport *protocol.PoliceReport     `json:"police_report,omitempty"`
	ReportedAt   time.Time                  `json:"reported_at"`
	ExpiresAt    time.Time                  `json:"expires_at"`
	Records      []string                   `json:"records,omitempty"`
	EndedAt      time.Time                  `json:"ended_at,omitzero"`
}

// ActiveAt reports whether the suspicion counts in checks at t.
func (s *Suspicion) ActiveAt(t time.Time) bool {
	return s.Status == api.SuspicionActive && t.Before(s.ExpiresAt)
}

// A Check is a member's check of one or more tokens, kept so the member can
// report its outcome.
type Check struct {
	ID        string    `json:"id"`
	Member    string    `json:"member"`
	Purpose   string    `json:"purpose"`
	At        time.Time `json:"at"`
	Tokens    int       `json:"tokens"`
	Verify    int       `json:"verify"`         // results with advice verify
	Review    int       `json:"review"`         // results with advice review
	Warn      int       `json:"warn,omitempty"` // results with advice warn: reported payees
	Outcome   string    `json:"outcome,omitempty"`
	OutcomeAt time.Time `json:"outcome_at,omitzero"`
	// Home is the peer a check of another country's tokens was relayed
	// to, which holds the check's answer; its outcome is reported there
	// too.
	Home string `json:"home,omitempty"`
}

// A Submission is what the hub remembers of an accepted member submission,
// so that the same signed bytes get the same answer and a different
// submission reusing the jti is refused.
type Submission struct {
	Hash      []byte             `json:"hash"` // SHA-256 of the signed bytes
	Action    protocol.LogAction `json:"action"`
	At        time.Time          `json:"at"`
	Record    string             `json:"record,omitempty"` // the record it produced (or found)
	Flag      string             `json:"flag,omitempty"`
	Suspicion string             `json:"suspicion,omitempty"`
	Payee     string             `json:"payee,omitempty"`
	Recall    string             `json:"recall,omitempty"`
	Dispute   string             `json:"dispute,omitempty"`
	Existing  bool               `json:"existing,omitempty"` // it found an active flag rather than placing one
	LogIndex  uint64             `json:"log_index"`
}

// Details are what a log entry commits to: kept beside the log with their
// salt, and deleted on erasure.
type Details struct {
	Salt    []byte `json:"salt"`
	Details []byte `json:"details"`
	// Subjects are the tokens the details name (the entry's rows in the
	// subject index, deleted with the details).
	Subjects []string `json:"subjects,omitempty"`
}

// storedDetails is how Details are kept: the details, which are a JSON
// document, as they are, so that an auditor of the data file can search
// them for a token; files of an earlier version hold them as base64, which
// reads as well.
type storedDetails struct {
	Salt     []byte          `json:"salt"`
	Details  json.RawMessage `json:"details"`
	Subjects []string        `json:"subjects,omitempty"`
}

// MarshalJSON writes the details as the JSON document they are, if they
// are one in compact form (what the hub commits to is then kept byte for
// byte), and as base64 otherwise.
func (d Details) MarshalJSON() ([]byte, error) {
	if compactJSON(d.Details) {
		return json.Marshal(storedDetails{Salt: d.Salt, Details: d.Details, Subjects: d.Subjects})
	}
	type plain Details
	return json.Marshal(plain(d))
}

// UnmarshalJSON reads details kept either way.
func (d *Details) UnmarshalJSON(b []byte) error {
	var s storedDetails
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	d.Salt, d.Subjects, d.Details = s.Salt, s.Subjects, nil
	switch {
	case len(s.Details) == 0 || string(s.Details) == "null":
	case s.Details[0] == '"':
		return json.Unmarshal(s.Details, &d.Details)
	default:
		d.Details = []byte(s.Details)
	}
	return nil
}

// compactJSON reports whether b is a JSON object or array exactly as
// encoding/json writes it: embedded in another document it stays the same
// bytes.
func compactJSON(b []byte) bool {
	if len(b) == 0 || (b[0] != '{' && b[0] != '[') || !json.Valid(b) {
		return false
	}
	var c bytes.Buffer
	if json.Compact(&c, b) != nil {
		return false
	}
	var e bytes.Buffer
	json.HTMLEscape(&e, c.Bytes())
	return bytes.Equal(e.Bytes(), b)
}

// A Subject is everything the hub holds about one token that a check
// needs: its active flag, if any, with that flag's records, and its active
// suspicions.
type Subject struct {
	Flag       *Flag
	Records    []*Record
	Suspicions []*Suspicion
	// Payee is the token's payee record, if members reported it, and
	// PayeeRecord its latest signed record.
	Payee       *Payee
	PayeeRecord *Record
	// Recalls are the recalls naming the token as their payee; only an
	// erasure reads them ([Store.RecallsOf] in server/store).
	Recalls []*Recall
	// Denials are the checks of the subject that the consumer denied
	// while the flag was active, newest first.
	Denials []*Denial
	// Disputes are the open disputes of its flag and suspicions.
	Disputes []*Dispute
}

// An AccessNotice is what the hub keeps of one check of a flagged
// subject by a member: the history a consumer's bank can show them, and
// the check a denial names. Record is its subject-checked record, for the
// flag's origin; a check by the origin itself has none. Kept under its
// check and flag, indexed under its subject, and erased with the
// subject's other check details when the flag ends or the subject is
// erased.
type AccessNotice struct {
	CheckID string    `json:"check_id"`
	FlagID  string    `json:"flag_id"`
	Subject string    `json:"subject"` // token text
	Origin  string    `json:"origin"`  // the member that placed the flag
	Member  string    `json:"member"`  // the member that checked
	Purpose string    `json:"purpose"`
	At      time.Time `json:"at"`
	Replica bool      `json:"replica,omitempty"`
	Record  *Record   `json:"record,omitempty"`
	// DeniedAt is set once the consumer denied the check.
	DeniedAt time.Time `json:"denied_at,omitzero"`
}

// A Denial is the consumer's "not me" to a check of their subject, sent
// by the flag's origin with its statement of how the consumer
// authenticated. Record is its check-denied record, for the member that
// made the check.
type Denial struct {
	CheckID  string                 `json:"check_id"`
	FlagID   string                 `json:"flag_id"`
	Subject  string                 `json:"subject"`
	Origin   string                 `json:"origin"`
	Member   string                 `json:"member"` // the member that made the check
	Purpose  string                 `json:"purpose"`
	At       time.Time              `json:"at"` // when the check was made
	DeniedAt time.Time              `json:"denied_at"`
	Auth     *protocol.ConsumerAuth `json:"consumer_auth"`
	Record   *Record                `json:"record"`
}

// DisputeOf returns the open dispute of the flag or suspicion id, or nil.
func (s *Subject) DisputeOf(id string) *Dispute {
	for _, d := range s.Disputes {
		if d.Target() == id && d.Open() {
			return d
		}
	}
	return nil
}
