package decide

import (
	"fmt"
	"time"
	"unicode/utf8"

	"github.com/sparr-dev/sparr/protocol"
	"github.com/sparr-dev/sparr/protocol/api"
	"github.com/sparr-dev/sparr/server/state"
)

// SuspicionsEnabled refuses every suspicion route on a hub without a legal
// basis for them.
func (d *Decider) SuspicionsEnabled() error {
	if d.Policy.SuspicionLegalBasis == "" {
		return problemf(protocol.ProblemSuspicionsDisabled,
			"this hub shares no suspicions: they are data on criminal offences (GDPR Art. 10) and the operator has configured no legal basis for them")
	}
	return nil
}

// ReportSuspicion decides member m's submission s (a
// protocol.ReportSuspicion) to share a suspicion it has reported to the
// police. Its record, with the police report, is addressed to the reporter
// alone: a suspicion never leaves the hub in bulk (feed, webhooks,
// snapshot). Other members learn of it only by a logged check, which
// answers a hit with its count and categories, and its details only by a
// logged details request. The suspicion is kept for the policy's
// retention.
func (d *Decider) ReportSuspicion(m *api.Member, s *protocol.Submission, hash []byte, now time.Time) (*state.ReportSuspicion, error) {
	if err := d.SuspicionsEnabled(); err != nil {
		return nil, err
	}
	req := s.Request.(protocol.ReportSuspicion)
	sec := second(now)
	subjects := make([]string, len(req.Subjects))
	for i, t := range req.Subjects {
		if p := d.checkToken("request.subjects", t); p != nil {
			return nil, p
		}
		subjects[i] = t.String()
	}
	if p := checkPoliceReport(req.PoliceReport, sec); p != nil {
		return nil, p
	}
	expiry := sec.Add(d.Policy.SuspicionRetention)
	id := d.id()
	ev := protocol.SuspicionReported{SuspicionID: id, Origin: m.ID, Category: req.Category, PoliceReport: req.PoliceReport, ExpiresAt: protocol.NewNumericDate(expiry)}
	rec, err := d.sign(s.ID, req.Subjects, m.ID, id, ev, sec)
	if err != nil {
		return nil, err
	}
	return &state.ReportSuspicion{
		Head: d.head(m.ID, protocol.LogSuspicionReported, now, map[string]any{
			"suspicion_id": id, "record": rec.ID, "subjects": subjects, "legal_basis": d.Policy.SuspicionLegalBasis,
		}, subjects),
		Submission: state.SubmissionRef{ID: s.ID, Hash: hash},
		Records:    []*state.Record{rec},
		Suspicion: &state.Suspicion{ID: id, Version: 1, Subjects: subjects, Category: req.Category, Origin: m.ID,
			Status: api.SuspicionActive, PoliceReport: req.PoliceReport, ReportedAt: sec, ExpiresAt: expiry, Records: []string{rec.ID}},
	}, nil
}

// RetractSuspicion decides member m's submission s (a
// protocol.RetractSuspicion) to withdraw suspicion sp (nil: the hub holds
// none). Only the member that reported a suspicion may retract it, and
// only while it is active; its records are erased.
func (d *Decider) RetractSuspicion(m *api.Member, s *protocol.Submission, hash []byte, sp *state.Suspicion, now time.Time) (*state.EndSuspicion, error) {
	if err := d.SuspicionsEnabled(); err != nil {
		return nil, err
	}
	req := s.Request.(protocol.RetractSuspicion)
	sec := second(now)
	if sp == nil || sp.Origin != m.ID {
		return nil, problemf(protocol.ProblemNotFound, "no suspicion %s reported by member %q", Quote(req.SuspicionID), m.ID)
	}
	if !sp.ActiveAt(sec) {
		return nil, problemf(protocol.ProblemStateConflict, "suspicion %q is %s", sp.ID, sp.Status)
	}
	toks, err := parseTokens(sp.Subjects)
	if err != nil {
		return nil, fmt.Errorf("suspicion %s has a bad subject: %w", sp.ID, err)
	}
	rec, err := d.sign(s.ID, toks, sp.Origin, sp.ID, protocol.SuspicionRetracted{SuspicionID: sp.ID, Origin: m.ID, Reason: req.Reason}, sec)
	if err != nil {
		return nil, err
	}
	return &state.EndSuspicion{
		Head: d.head(m.ID, protocol.LogSuspicionRetracted, now,
			map[string]string{"suspicion_id": sp.ID, "record": rec.ID, "reason": string(req.Reason)}, nil),
		Submission: &state.SubmissionRef{ID: s.ID, Hash: hash},
		Record:     rec,
		Suspicion:  endedSuspicion(sp, rec, api.SuspicionRetracted, sec),
		Erase:      endErases(sp, "suspicion-retracted"),
	}, nil
}

// ExpireSuspicion decides the end of suspicion sp, past its retention at
// now: its records are deleted, and the expiry record, for its reporter
// only, says so.
func (d *Decider) ExpireSuspicion(sp *state.Suspicion, now time.Time) (*state.EndSuspicion, error) {
	toks, err := parseTokens(sp.Subjects)
	if err != nil {
		return nil, fmt.Errorf("suspicion %s has a bad subject: %w", sp.ID, err)
	}
	sec := second(now)
	rec, err := d.sign(d.id(), toks, sp.Origin, sp.ID, protocol.SuspicionExpired{SuspicionID: sp.ID, ExpiredAt: protocol.NewNumericDate(sp.ExpiresAt)}, sec)
	if err != nil {
		return nil, err
	}
	return &state.EndSuspicion{
		Head:      d.head(Hub, protocol.LogSuspicionExpired, now, map[string]string{"suspicion_id": sp.ID, "record": rec.ID}, nil),
		Record:    rec,
		Suspicion: endedSuspicion(sp, rec, api.SuspicionExpired, sec),
		Erase:     endErases(sp, "retention-ended"),
	}, nil
}

// endErases is what a suspicion's end erases: its records (and so the
// details of their entries), and the details of every request for its
// details, on basis.
func endErases(sp *state.Suspicion, basis string) state.Erase {
	return state.Erase{Records: sp.Records, Subjects: sp.Subjects, Actions: []protocol.LogAction{protocol.LogSuspicionDetails}, Basis: basis}
}

// endedSuspicion is a suspicion's last state: no subjects or report kept.
func endedSuspicion(s *state.Suspicion, rec *state.Record, status api.SuspicionStatus, now time.Time) *state.Suspicion {
	return &state.Suspicion{
		ID: s.ID, Version: s.Version + 1, Category: s.Category, Origin: s.Origin, Status: status,
		ReportedAt: s.ReportedAt, ExpiresAt: s.ExpiresAt, Records: []string{rec.ID}, EndedAt: now,
	}
}

// SuspicionDetails decides member m's request for the details of the
// suspicion id: sp as the hub holds it (nil: none), recs its records. A
// checking member that states its purpose and, in 20 to 1000 characters,
// why it needs them gets the suspicion and its full signed record; the
// request is logged, with the justification in its details. The answer's
// LogIndex is the note's, once applied.
func (d *Decider) SuspicionDetails(m *api.Member, id string, req api.DetailsRequest, sp *state.Suspicion, recs []*state.Record, now time.Time) (*state.Note, *api.DetailsResponse, error) {
	if err := d.SuspicionsEnabled(); err != nil {
		return nil, nil, err
	}
	if p := checkPurpose(req.Purpose); p != nil {
		return nil, nil, p
	}
	if n := utf8.RuneCountInString(req.Justification); n < 20 || n > 1000 {
		return nil, nil, FieldProblem(protocol.ProblemValidation, "justification", "%d characters; say in 20 to 1000 characters why you need the details (it is logged for the regulator)", n)
	}
	if sp == nil || !sp.ActiveAt(now) {
		return nil, nil, problemf(protocol.ProblemNotFound, "no active suspicion %s", Quote(id))
	}
	// The details name the suspicion's subjects, and the justification is
	// the member's free text: indexed under the subjects, they go with an
	// erasure of any of them, and with the suspicion's end.
	note := &state.Note{Head: d.head(m.ID, protocol.LogSuspicionDetails, now,
		map[string]string{"suspicion_id": sp.ID, "purpose": req.Purpose, "justification": req.Justification}, sp.Subjects,
		protocol.LogAttr{Key: "purpose", Value: req.Purpose})}
	jws := []string{}
	for _, r := range recs {
		if r.Audience == sp.Origin { // the full record (a file of an earlier version also holds a hit record)
			jws = append(jws, r.JWS)
		}
	}
	return note, &api.DetailsResponse{Suspicion: SuspicionView(sp, true), Records: jws}, nil
}

// SuspicionView is a suspicion as the API shows it: with its subjects and
// police report (full) to its reporter or a details requester.
func SuspicionView(s *state.Suspicion, full bool) *api.Suspicion {
	v := &api.Suspicion{ID: s.ID, Category: s.Category, Origin: s.Origin, Status: s.Status, ReportedAt: s.ReportedAt, ExpiresAt: s.ExpiresAt}
	if full {
		v.Subjects, _ = parseTokens(s.Subjects)
		v.PoliceReport = s.PoliceReport
	}
	return v
}
