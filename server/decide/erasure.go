package decide

import (
	"cmp"
	"crypto/sha256"
	"fmt"
	"regexp"
	"slices"
	"time"

	"github.com/sparr-dev/sparr/protocol"
	"github.com/sparr-dev/sparr/protocol/api"
	"github.com/sparr-dev/sparr/server/state"
)

var basisPattern = regexp.MustCompile(`^[a-z0-9][a-z0-9.-]{1,63}$`)

// ErasureSubject validates an erasure request and returns its subject.
func ErasureSubject(req api.ErasureRequest) (protocol.Token, error) {
	tok, err := protocol.ParseToken(req.Subject)
	if err != nil {
		return protocol.Token{}, TokenProblem("subject", err)
	}
	if !basisPattern.MatchString(req.LegalBasis) {
		return protocol.Token{}, FieldProblem(protocol.ProblemValidation, "legal_basis", "%s: name the legal basis in lower-case letters, digits, '.' and '-', such as gdpr-art-17", Quote(req.LegalBasis))
	}
	return tok, nil
}

// EraseSubject decides the operator op's erasure of everything the hub
// holds about subject tok (GDPR Art. 17), on basis: s is the subject's
// flag and suspicions, records every record naming it and entries every
// log entry whose details mention it (those written before the store
// indexed entries by subject too). The flag and suspicions end, those
// records and details are deleted, each erased entry gets a tombstone
// stating the basis, and subject-erased records tell the members that
// hold something about the subject to erase it: every member when it had
// a flag or a payee record (every member holds their records), otherwise only the reporters of
// its suspicions, so that an erasure never tells the others that there was
// a suspicion to erase.
func (d *Decider) EraseSubject(op *api.Member, tok protocol.Token, basis string, s state.Subject, records []string, entries []uint64, now time.Time) (*state.EraseSubject, error) {
	sec := second(now)
	audiences := []string{""}
	if s.Flag == nil && s.Payee == nil {
		audiences = nil
		for _, sp := range s.Suspicions {
			if !slices.Contains(audiences, sp.Origin) {
				audiences = append(audiences, sp.Origin)
			}
		}
		if len(audiences) == 0 {
			audiences = []string{""} // nothing held: the record says so to all, as before
		}
	}
	cmd := &state.EraseSubject{
		Head:  d.head(op.ID, protocol.LogSubjectErased, now, nil, nil, protocol.LogAttr{Key: "basis", Value: basis}),
		Erase: state.Erase{Records: records, LogEntries: entries, Subjects: []string{tok.String()}, Basis: basis, Disputes: true},
	}
	for _, aud := range audiences {
		rec, err := d.sign(d.id(), []protocol.Token{tok}, aud, "", protocol.SubjectErased{Origin: op.ID, LegalBasis: basis}, sec)
		if err != nil {
			return nil, err
		}
		cmd.Records = append(cmd.Records, rec)
	}
	rec := cmd.Records[0]
	if f := s.Flag; f != nil {
		cmd.Flag = ended(f, rec, api.FlagErased, sec)
		cmd.Flag.Records = nil
		cmd.Erase.Consent = f.ID
	}
	for _, sp := range s.Suspicions {
		e := endedSuspicion(sp, rec, api.SuspicionErased, sec)
		e.Records = nil
		cmd.Suspicions = append(cmd.Suspicions, e)
	}
	if p := s.Payee; p != nil {
		cmd.Payee = p
		cmd.Erase.Records = addIDs(cmd.Erase.Records, p.Records)
	}
	for _, rc := range s.Recalls {
		cmd.Recalls = append(cmd.Recalls, rc.Scrubbed())
		cmd.Erase.Records = addIDs(cmd.Erase.Records, rc.Records)
	}
	return cmd, nil
}

// addIDs appends to ids those of more it does not hold.
func addIDs(ids, more []string) []string {
	for _, id := range more {
		if !slices.Contains(ids, id) {
			ids = append(ids, id)
		}
	}
	return ids
}

// Refusal decides the log entry of a refused request: member m asked, on
// a route with log action action, for what problem p refuses. It commits
// to the SHA-256 of the body sent, the kind of problem and the fields at
// fault — never the body itself, nor the problem's detail, which may quote
// what the member sent (a token, a name) and would then outlive an erasure
// of its subject.
func (d *Decider) Refusal(m *api.Member, action protocol.LogAction, p *protocol.Problem, body []byte, now time.Time) *state.Note {
	t, _ := protocol.LookupProblemType(p.Type)
	fields := []string{}
	for _, f := range p.Errors {
		fields = append(fields, cmp.Or(f.Pointer, f.Parameter))
	}
	h := d.head(m.ID, action, now, map[string]any{"body_sha256": fmt.Sprintf("%x", sha256.Sum256(body)), "problem": t.Slug(), "fields": fields}, nil)
	h.Entry.Result = "rejected:" + t.Slug()
	return &state.Note{Head: h}
}

// PruneFeed decides the feed's retention at now: the events of records
// issued before the policy's FeedRetention go, up to limit of them.
func (d *Decider) PruneFeed(now time.Time, limit int) *state.PruneFeed {
	before := now.Add(-d.Policy.FeedRetention).UTC()
	return &state.PruneFeed{
		Head:   d.head(Hub, protocol.LogFeedPruned, now, nil, nil, protocol.LogAttr{Key: "before", Value: before.Format(time.RFC3339Nano)}),
		Before: before, Limit: limit,
	}
}
