package decide

import (
	"fmt"
	"slices"
	"time"

	"github.com/sparr-dev/sparr/protocol"
	"github.com/sparr-dev/sparr/protocol/api"
	"github.com/sparr-dev/sparr/server/state"
)

// AddBusinessDays returns t moved n business days later: Monday to
// Friday, in UTC, with no public holidays (a deployment that must count
// them sets a longer DisputeAckDays). Weekend days are skipped, not
// counted: 5 business days from a Friday noon end the next Friday noon,
// and from a Saturday noon, the Friday noon after that.
func AddBusinessDays(t time.Time, n int) time.Time {
	t = t.UTC()
	for n > 0 {
		t = t.AddDate(0, 0, 1)
		if wd := t.Weekday(); wd != time.Saturday && wd != time.Sunday {
			n--
		}
	}
	return t
}

// disputeRecords signs ev about the dispute's subject (tok) once for each
// of audiences (each a member, no member twice), for txn.
func (d *Decider) disputeRecords(txn string, tok []protocol.Token, ref string, ev protocol.Event, at time.Time, audiences ...string) ([]*state.Record, error) {
	var out []*state.Record
	var seen []string
	for _, aud := range audiences {
		if slices.Contains(seen, aud) {
			continue
		}
		seen = append(seen, aud)
		rec, err := d.sign(txn, tok, aud, ref, ev, at)
		if err != nil {
			return nil, err
		}
		out = append(out, rec)
	}
	return out, nil
}

// OpenDispute decides member m's submission s (a protocol.OpenDispute),
// for a consumer who authenticated with it, to contest suspicion sp or
// flag f (the one the request names; nil: the hub holds none), of which
// open is the open dispute, if any. The subject the consumer
// authenticated for must be one of the suspicion's subjects (the flag's).
// The dispute is addressed to the member that reported the suspicion or
// placed the flag, with the policy's deadlines, and dispute-opened
// records tell it and m.
func (d *Decider) OpenDispute(m *api.Member, s *protocol.Submission, hash []byte, sp *state.Suspicion, f *state.Flag, open *state.Dispute, now time.Time) (*state.PutDispute, error) {
	req := s.Request.(protocol.OpenDispute)
	if p := d.checkToken("request.subject", req.Subject); p != nil {
		return nil, p
	}
	if err := d.ConsumerAuth(req.ConsumerAuth, now); err != nil {
		return nil, err
	}
	sec := second(now)
	tok := req.Subject.String()
	ds := &state.Dispute{ID: d.id(), Version: 1, Disputant: m.ID, Grounds: req.Grounds, Statement: req.Statement, Auth: req.ConsumerAuth,
		Status: state.DisputeOpen, OpenedAt: sec, AckDue: AddBusinessDays(sec, d.Policy.DisputeAckDays), ResolveDue: sec.AddDate(0, 0, d.Policy.DisputeResolveDays)}
	switch {
	case req.SuspicionID != "":
		if err := d.SuspicionsEnabled(); err != nil {
			return nil, err
		}
		if sp == nil || !sp.ActiveAt(sec) || !slices.Contains(sp.Subjects, tok) {
			return nil, problemf(protocol.ProblemNotFound, "no active suspicion %s about the subject", Quote(req.SuspicionID))
		}
		// The consumer's token first: the records of the dispute name it.
		ds.Suspicion, ds.Respondent, ds.Subjects = sp.ID, sp.Origin, append([]string{tok}, slices.DeleteFunc(slices.Clone(sp.Subjects), func(t string) bool { return t == tok })...)
	default:
		if f == nil || !f.ActiveAt(sec) || f.Subject != tok {
			return nil, problemf(protocol.ProblemNotFound, "no active flag %s on the subject", Quote(req.FlagID))
		}
		ds.Flag, ds.Respondent, ds.Subjects = f.ID, f.Origin, []string{f.Subject}
	}
	if open != nil {
		return nil, problemf(protocol.ProblemStateConflict, "dispute %q of %s is open already; it is answered by %s at the latest", open.ID, open.Target(), open.ResolveDue.Format(time.RFC3339))
	}
	ev := protocol.DisputeOpened{DisputeID: ds.ID, SuspicionID: ds.Suspicion, FlagID: ds.Flag, Disputant: m.ID, Respondent: ds.Respondent,
		Grounds: req.Grounds, Statement: req.Statement, AcknowledgeBy: date(ds.AckDue), ResolveBy: date(ds.ResolveDue)}
	recs, err := d.disputeRecords(s.ID, []protocol.Token{req.Subject}, ds.ID, ev, sec, ds.Respondent, m.ID)
	if err != nil {
		return nil, err
	}
	for _, r := range recs {
		ds.Records = append(ds.Records, r.ID)
	}
	return &state.PutDispute{
		Head: d.head(m.ID, protocol.LogDisputeOpened, now, map[string]any{
			"dispute_id": ds.ID, "target": ds.Target(), "subjects": ds.Subjects, "grounds": req.Grounds, "statement": req.Statement,
			"consumer_auth": req.ConsumerAuth, "records": ds.Records,
		}, ds.Subjects, protocol.LogAttr{Key: "respondent", Value: ds.Respondent}, protocol.LogAttr{Key: "method", Value: string(req.ConsumerAuth.Method)}),
		Submission: &state.SubmissionRef{ID: s.ID, Hash: hash},
		Records:    recs,
		Dispute:    ds,
	}, nil
}

// AnswerDispute decides member m's submission s (a
// protocol.AnswerDispute) answering dispute ds (nil: none). Only the
// member disputed answers, and only while the dispute is open: it
// acknowledges an open dispute once, and upholds or rejects it. Upholding
// retracts the suspicion (sp, its current state) or lifts the flag (f) in
// the same change, as the member's own retraction or lift would.
func (d *Decider) AnswerDispute(m *api.Member, s *protocol.Submission, hash []byte, ds *state.Dispute, sp *state.Suspicion, f *state.Flag, now time.Time) (*state.PutDispute, error) {
	req := s.Request.(protocol.AnswerDispute)
	if ds == nil || ds.Respondent != m.ID {
		return nil, problemf(protocol.ProblemNotFound, "no dispute %s addressed to member %q", Quote(req.DisputeID), m.ID)
	}
	if !ds.Open() {
		return nil, problemf(protocol.ProblemStateConflict, "dispute %q is %s already", ds.ID, ds.Status)
	}
	if req.Answer == protocol.AnswerAcknowledge && ds.Status != state.DisputeOpen {
		return nil, problemf(protocol.ProblemStateConflict, "dispute %q was acknowledged already, at %s; uphold or reject it", ds.ID, ds.AckedAt.Format(time.RFC3339))
	}
	sec := second(now)
	toks, err := parseTokens(ds.Subjects)
	if err != nil || len(toks) == 0 {
		return nil, problemf(protocol.ProblemStateConflict, "dispute %q is about a subject since erased", ds.ID)
	}
	n := *ds
	n.Version++
	cmd := &state.PutDispute{Submission: &state.SubmissionRef{ID: s.ID, Hash: hash}, Dispute: &n}
	var ev protocol.Event
	var audiences []string
	details := map[string]any{"dispute_id": ds.ID, "answer": req.Answer, "reason": req.Reason}
	switch req.Answer {
	case protocol.AnswerAcknowledge:
		n.Status, n.AckedAt = state.DisputeAcknowledged, sec
		ev, audiences = protocol.DisputeAcknowledged{DisputeID: ds.ID, Respondent: m.ID}, []string{ds.Disputant}
		cmd.Head = d.head(m.ID, protocol.LogDisputeAcknowledged, now, details, ds.Subjects)
	default:
		n.Status, n.ResolvedAt, n.Reason = state.DisputeRejected, sec, req.Reason
		if n.AckedAt.IsZero() {
			n.AckedAt = sec
		}
		if req.Answer == protocol.AnswerUphold {
			n.Status = state.DisputeUpheld
		}
		ev, audiences = protocol.DisputeResolved{DisputeID: ds.ID, Outcome: req.Answer, Reason: req.Reason}, []string{ds.Disputant, m.ID}
		cmd.Head = d.head(m.ID, protocol.LogDisputeResolved, now, details, ds.Subjects, protocol.LogAttr{Key: "outcome", Value: string(req.Answer)})
	}
	recs, err := d.disputeRecords(s.ID, toks[:1], ds.ID, ev, sec, audiences...)
	if err != nil {
		return nil, err
	}
	cmd.Records = recs
	if n.Status == state.DisputeUpheld {
		if err := d.uphold(cmd, m, s.ID, sp, f, sec); err != nil {
			return nil, err
		}
	}
	for _, r := range cmd.Records {
		n.Records = append(n.Records, r.ID)
	}
	return cmd, nil
}

// uphold ends what an upheld dispute disputes, if it is still active: the
// suspicion is retracted (its record to its reporter), the flag lifted
// (its record to every member), with what their ends erase.
func (d *Decider) uphold(cmd *state.PutDispute, m *api.Member, txn string, sp *state.Suspicion, f *state.Flag, sec time.Time) error {
	ds := cmd.Dispute
	switch {
	case ds.Suspicion != "" && sp != nil && sp.ID == ds.Suspicion && sp.ActiveAt(sec):
		toks, err := parseTokens(sp.Subjects)
		if err != nil {
			return fmt.Errorf("suspicion %s has a bad subject: %w", sp.ID, err)
		}
		rec, err := d.sign(txn, toks, sp.Origin, sp.ID, protocol.SuspicionRetracted{SuspicionID: sp.ID, Origin: m.ID, Reason: protocol.RetractReportedInError}, sec)
		if err != nil {
			return err
		}
		cmd.Records = append(cmd.Records, rec)
		cmd.Suspicion = endedSuspicion(sp, rec, api.SuspicionRetracted, sec)
		e := endErases(sp, "dispute-upheld")
		cmd.Erase = &e
	case ds.Flag != "" && f != nil && f.ID == ds.Flag && f.ActiveAt(sec):
		tok, err := protocol.ParseToken(f.Subject)
		if err != nil {
			return fmt.Errorf("flag %s has no subject: %w", f.ID, err)
		}
		rec, err := d.sign(txn, []protocol.Token{tok}, "", f.ID, protocol.FlagLifted{FlagID: f.ID, Origin: f.Origin, Reason: protocol.LiftOther}, sec)
		if err != nil {
			return err
		}
		cmd.Records = append(cmd.Records, rec)
		cmd.Flag = ended(f, rec, api.FlagLifted, sec)
		cmd.Erase = &state.Erase{Records: f.Records, Consent: f.ID, Subjects: []string{f.Subject}, Actions: liftErases, Basis: "dispute-upheld"}
	}
	return nil
}

// LapseDispute decides that dispute ds, open, has passed the deadline it
// was due by (at or before now) unanswered: the hub records the lapse, and
// dispute-lapsed records tell both members. From then on the suspicion
// disputed does not count in checks until the dispute is resolved.
func (d *Decider) LapseDispute(ds *state.Dispute, now time.Time) (*state.PutDispute, error) {
	missed, due := "resolve", ds.ResolveDue
	if ds.Status == state.DisputeOpen && ds.Lapsed == "" && !now.After(ds.ResolveDue) {
		missed, due = "acknowledge", ds.AckDue
	}
	n := *ds
	n.Version++
	n.Lapsed = missed
	sec := second(now)
	toks, err := parseTokens(ds.Subjects)
	var recs []*state.Record
	if err == nil && len(toks) > 0 {
		recs, err = d.disputeRecords(d.id(), toks[:1], ds.ID, protocol.DisputeLapsed{DisputeID: ds.ID, Missed: missed, Due: date(due)}, sec, ds.Respondent, ds.Disputant)
		if err != nil {
			return nil, err
		}
	}
	for _, r := range recs {
		n.Records = append(n.Records, r.ID)
	}
	return &state.PutDispute{
		Head:    d.head(Hub, protocol.LogDisputeLapsed, now, map[string]any{"dispute_id": ds.ID, "missed": missed}, ds.Subjects, protocol.LogAttr{Key: "missed", Value: missed}),
		Records: recs,
		Dispute: &n,
	}, nil
}
