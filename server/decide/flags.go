package decide

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/sparr-dev/sparr/consent"
	"github.com/sparr-dev/sparr/federation/members"
	"github.com/sparr-dev/sparr/protocol"
	"github.com/sparr-dev/sparr/protocol/api"
	"github.com/sparr-dev/sparr/server/state"
)

// liftErases are the log actions whose details a flag's end (a lift or an
// expiry) deletes for its subject: every placement, check (online, or
// of a replica) and denial of a check that named it. The access notices
// and denials of its checks go with them (see store's erase). Suspicions that name it stand on their own legal basis and keep
// theirs.
var liftErases = []protocol.LogAction{protocol.LogFlagPlaced, protocol.LogFlagAlreadyActive, protocol.LogCheck, protocol.LogReplicaCheck, protocol.LogCheckDenied}

// PlaceFlag decides member m's submission s (a protocol.PlaceFlag, whose
// signed bytes hash to hash) to protect a subject. on is the flag the hub
// holds on the subject, if any: an active one answers the placement
// (flag-already-active; nothing is signed); one past its expiry that the
// expiry job has not ended yet protects no one, and the placement ends it
// first, as the job would.
//
// A placement is refused for a token of another epoch, an expiry in the
// past or beyond the policy's longest for the kind, a police report dated
// in the future, or consent the policy does not accept.
func (d *Decider) PlaceFlag(m *api.Member, s *protocol.Submission, hash []byte, on *state.Flag, now time.Time) (*state.PlaceFlag, error) {
	req := s.Request.(protocol.PlaceFlag)
	sec := second(now)
	if p := d.checkToken("request.subject", req.Subject); p != nil {
		return nil, p
	}
	expiry, p := d.flagExpiry(req.Kind, req.ExpiresAt, sec)
	if p == nil {
		p = checkPoliceReport(req.PoliceReport, sec)
	}
	if p != nil {
		return nil, p
	}
	if err := d.Policy.Consent.Validate(req.Consent, controller(m.ID), expiry, sec); err != nil {
		return nil, consentProblem(err)
	}
	subject := req.Subject.String()
	if on != nil && on.ActiveAt(now) {
		return &state.PlaceFlag{
			Head: d.head(m.ID, protocol.LogFlagAlreadyActive, now,
				map[string]string{"flag_id": on.ID, "subject": subject}, []string{subject}),
			Submission: state.SubmissionRef{ID: s.ID, Hash: hash},
			Active:     on.ID,
		}, nil
	}
	var lapsed *state.EndFlag
	if on != nil {
		var err error
		if lapsed, err = d.ExpireFlag(on, now); err != nil {
			return nil, fmt.Errorf("end lapsed flag: %w", err)
		}
	}
	id := d.id()
	rec, err := d.sign(s.ID, []protocol.Token{req.Subject}, "", id, protocol.FlagPlaced{
		FlagID: id, Kind: req.Kind, Origin: m.ID, ExpiresAt: protocol.NewNumericDate(expiry),
		ConsentRef: req.Consent.ID, PoliceReport: req.PoliceReport, Reason: req.Reason,
	}, sec)
	if err != nil {
		return nil, err
	}
	kept, err := json.Marshal(consent.NewRecord(*req.Consent, id, sec))
	if err != nil {
		return nil, err
	}
	return &state.PlaceFlag{
		Head: d.head(m.ID, protocol.LogFlagPlaced, now,
			map[string]string{"flag_id": id, "record": rec.ID, "subject": subject}, []string{subject}),
		Submission: state.SubmissionRef{ID: s.ID, Hash: hash},
		Record:     rec,
		Flag: &state.Flag{ID: id, Version: 1, Subject: subject, Kind: req.Kind, Origin: m.ID,
			Status: api.FlagActive, PlacedAt: sec, ExpiresAt: expiry, RemindAt: expiry.Add(-d.Policy.Reminder),
			ConsentID: req.Consent.ID, PoliceReport: req.PoliceReport, Records: []string{rec.ID}},
		Consent: kept,
		Lapsed:  lapsed,
	}, nil
}

// flagExpiry returns the expiry of a flag of kind placed or extended at
// now: the one asked for, or the longest the policy allows.
func (d *Decider) flagExpiry(kind protocol.FlagKind, asked protocol.NumericDate, now time.Time) (time.Time, *protocol.Problem) {
	longest := d.Policy.StandardFlag
	if kind == protocol.FlagKindExtended {
		longest = d.Policy.MaxExtendedFlag
	}
	latest := now.Add(longest)
	if asked == 0 {
		return latest, nil
	}
	at := asked.Time()
	switch {
	case !at.After(now):
		return time.Time{}, FieldProblem(protocol.ProblemValidation, "request.expires_at", "%s is not in the future", asked)
	case at.After(latest):
		return time.Time{}, FieldProblem(protocol.ProblemValidation, "request.expires_at",
			"%s is more than the %d days a %s flag may last from now; ask for %s or earlier", asked, longest/day, kind, latest.Format(time.RFC3339))
	}
	return at, nil
}

// checkPoliceReport refuses a report dated in the future.
func checkPoliceReport(r *protocol.PoliceReport, now time.Time) *protocol.Problem {
	if r == nil {
		return nil
	}
	d, _ := time.Parse(time.DateOnly, r.Date)
	if d.After(now) {
		return FieldProblem(protocol.ProblemValidation, "request.police_report.date", "%s is in the future", r.Date)
	}
	return nil
}

// activeFlag refuses a change to a flag the hub does not hold (f is nil)
// or that no longer protects anyone.
func activeFlag(id string, f *state.Flag, now time.Time) *protocol.Problem {
	if f == nil {
		return problemf(protocol.ProblemNotFound, "no flag %s", Quote(id))
	}
	if !f.ActiveAt(now) {
		return problemf(protocol.ProblemStateConflict, "flag %s is %s", Quote(id), FlagView(nil, f, now).Status)
	}
	return nil
}

// next returns a copy of f one version on, with rec appended to its records.
func next(f *state.Flag, rec *state.Record) *state.Flag {
	n := *f
	n.Version++
	n.Records = append(append([]string(nil), f.Records...), rec.ID)
	return &n
}

// ended is a flag's last state: no subject, consent or report kept, and
// only the record that ended it.
func ended(f *state.Flag, rec *state.Record, status api.FlagStatus, now time.Time) *state.Flag {
	return &state.Flag{
		ID: f.ID, Version: f.Version + 1, Kind: f.Kind, Origin: f.Origin, Status: status,
		PlacedAt: f.PlacedAt, ExpiresAt: f.ExpiresAt, Records: []string{rec.ID}, EndedAt: now,
	}
}

// flagChange signs ev about f's subject for member m's submission s, and
// returns the record with the head of the change's command.
func (d *Decider) flagChange(m *api.Member, s *protocol.Submission, f *state.Flag, action protocol.LogAction, ev protocol.Event, now time.Time) (*state.Record, state.Head, error) {
	tok, err := protocol.ParseToken(f.Subject)
	if err != nil {
		return nil, state.Head{}, fmt.Errorf("flag %s has no subject: %w", f.ID, err)
	}
	rec, err := d.sign(s.ID, []protocol.Token{tok}, "", f.ID, ev, second(now))
	if err != nil {
		return nil, state.Head{}, err
	}
	return rec, d.head(m.ID, action, now, map[string]string{"flag_id": f.ID, "record": rec.ID}, nil), nil
}

// ExtendFlag decides member m's submission s (a protocol.ExtendFlag) to
// move flag f's expiry later; cons is the flag's consent record as kept
// (consent.Record as JSON). An extended flag cannot become standard, the
// new expiry must be later than the current one and within the policy, and
// a standard flag cannot outlive its consent.
func (d *Decider) ExtendFlag(m *api.Member, s *protocol.Submission, hash []byte, f *state.Flag, cons json.RawMessage, now time.Time) (*state.ChangeFlag, error) {
	req := s.Request.(protocol.ExtendFlag)
	sec := second(now)
	if p := activeFlag(req.FlagID, f, sec); p != nil {
		return nil, p
	}
	if f.Kind == protocol.FlagKindExtended && req.Kind == protocol.FlagKindStandard {
		return nil, FieldProblem(protocol.ProblemValidation, "request.kind", "an extended flag cannot become standard")
	}
	expiry, p := d.flagExpiry(req.Kind, req.ExpiresAt, sec)
	if p == nil {
		p = checkPoliceReport(req.PoliceReport, sec)
	}
	if p != nil {
		return nil, p
	}
	if !expiry.After(f.ExpiresAt) {
		return nil, FieldProblem(protocol.ProblemValidation, "request.expires_at", "%s is not later than the flag's expiry %s", expiry.Format(time.RFC3339), f.ExpiresAt.Format(time.RFC3339))
	}
	if req.Kind == protocol.FlagKindStandard {
		if err := consentCovers(cons, expiry); err != nil {
			return nil, err
		}
	}
	report := req.PoliceReport
	if report == nil {
		report = f.PoliceReport
	}
	rec, head, err := d.flagChange(m, s, f, protocol.LogFlagExtended, protocol.FlagExtended{
		FlagID: f.ID, Kind: req.Kind, Origin: m.ID, ExpiresAt: protocol.NewNumericDate(expiry), PoliceReport: req.PoliceReport,
	}, now)
	if err != nil {
		return nil, err
	}
	n := next(f, rec)
	n.Kind, n.ExpiresAt, n.PoliceReport = req.Kind, expiry, report
	n.RemindAt, n.RemindedAt = expiry.Add(-d.Policy.Reminder), time.Time{}
	return &state.ChangeFlag{Head: head, Submission: &state.SubmissionRef{ID: s.ID, Hash: hash}, Record: rec, Flag: n}, nil
}

// consentCovers refuses to extend a standard flag past its consent.
func consentCovers(cons json.RawMessage, expiry time.Time) error {
	var rec consent.Record
	if err := json.Unmarshal(cons, &rec); err != nil {
		return fmt.Errorf("read the flag's consent: %w", err)
	}
	if lapses := rec.Consent.ExpiresAt.Time(); lapses.Before(expiry) {
		return FieldProblem(protocol.ProblemInvalidConsent, "request.expires_at",
			"the consumer's consent lapses at %s, before %s; a standard flag cannot outlive its consent (extend it as an extended flag with a police report, or lift it and place it again with new consent)",
			lapses.Format(time.RFC3339), expiry.Format(time.RFC3339))
	}
	return nil
}

// ThawFlag decides member m's submission s (a protocol.ThawFlag) to
// suspend flag f's protection for a window: starting now or up to the
// policy's MaxThawAhead later (a minute in the past is taken as now),
// ending after it starts, no longer than MaxThaw, and not after the flag's
// expiry.
func (d *Decider) ThawFlag(m *api.Member, s *protocol.Submission, hash []byte, f *state.Flag, now time.Time) (*state.ChangeFlag, error) {
	req := s.Request.(protocol.ThawFlag)
	sec := second(now)
	if p := activeFlag(req.FlagID, f, sec); p != nil {
		return nil, p
	}
	from := sec
	if req.ThawFrom != 0 {
		from = req.ThawFrom.Time()
	}
	until := req.ThawUntil.Time()
	ahead := d.Policy.MaxThawAhead
	switch {
	case from.Before(sec.Add(-time.Minute)):
		return nil, FieldProblem(protocol.ProblemValidation, "request.thaw_from", "%s is in the past; leave it out to thaw from now", req.ThawFrom)
	case from.After(sec.Add(ahead)):
		return nil, FieldProblem(protocol.ProblemValidation, "request.thaw_from",
			"%s is more than the %d days ahead a thaw may start on this hub; ask for %s or earlier", req.ThawFrom, ahead/day, sec.Add(ahead).Format(time.RFC3339))
	case !until.After(from):
		return nil, FieldProblem(protocol.ProblemValidation, "request.thaw_until", "%s is not after the thaw's start %s", req.ThawUntil, from.Format(time.RFC3339))
	case until.Sub(from) > d.Policy.MaxThaw:
		return nil, FieldProblem(protocol.ProblemValidation, "request.thaw_until",
			"a thaw of %s is longer than the %s this hub allows", until.Sub(from), d.Policy.MaxThaw)
	case until.After(f.ExpiresAt):
		return nil, FieldProblem(protocol.ProblemValidation, "request.thaw_until",
			"%s is after the flag's expiry; a thaw cannot outlast the flag: ask for %s or earlier", req.ThawUntil, f.ExpiresAt.Format(time.RFC3339))
	}
	rec, head, err := d.flagChange(m, s, f, protocol.LogFlagThawed, protocol.FlagThawed{
		FlagID: f.ID, Origin: m.ID, ThawedFrom: protocol.NewNumericDate(from), ThawedUntil: protocol.NewNumericDate(until),
	}, now)
	if err != nil {
		return nil, err
	}
	n := next(f, rec)
	n.ThawFrom, n.ThawUntil = from, until
	return &state.ChangeFlag{Head: head, Submission: &state.SubmissionRef{ID: s.ID, Hash: hash}, Record: rec, Flag: n}, nil
}

// LiftFlag decides member m's submission s (a protocol.LiftFlag) to end
// flag f at the consumer's request. Lifting withdraws consent: once the
// lift is recorded, the consent, the flag's earlier records and the details
// of every log entry of a placement or check naming its subject are
// deleted, and the lift record tells every member to delete theirs.
func (d *Decider) LiftFlag(m *api.Member, s *protocol.Submission, hash []byte, f *state.Flag, now time.Time) (*state.EndFlag, error) {
	req := s.Request.(protocol.LiftFlag)
	sec := second(now)
	if p := activeFlag(req.FlagID, f, sec); p != nil {
		return nil, p
	}
	rec, head, err := d.flagChange(m, s, f, protocol.LogFlagLifted, protocol.FlagLifted{FlagID: f.ID, Origin: m.ID, Reason: req.Reason}, now)
	if err != nil {
		return nil, err
	}
	return &state.EndFlag{
		Head: head, Submission: &state.SubmissionRef{ID: s.ID, Hash: hash}, Record: rec,
		Flag:  ended(f, rec, api.FlagLifted, sec),
		Erase: state.Erase{Records: f.Records, Consent: f.ID, Subjects: []string{f.Subject}, Actions: liftErases, Basis: "consent-withdrawn"},
	}, nil
}

// ExpireFlag decides the end of flag f, past its expiry at now, as the
// expiry job does: like a lift, it deletes the consent, the earlier
// records and the log details naming the subject, and its record tells
// members to delete theirs.
func (d *Decider) ExpireFlag(f *state.Flag, now time.Time) (*state.EndFlag, error) {
	tok, err := protocol.ParseToken(f.Subject)
	if err != nil {
		return nil, fmt.Errorf("flag %s has no subject: %w", f.ID, err)
	}
	sec := second(now)
	rec, err := d.sign(d.id(), []protocol.Token{tok}, "", f.ID, protocol.FlagExpired{FlagID: f.ID, ExpiredAt: protocol.NewNumericDate(f.ExpiresAt)}, sec)
	if err != nil {
		return nil, err
	}
	return &state.EndFlag{
		Head:   d.head(Hub, protocol.LogFlagExpired, now, map[string]string{"flag_id": f.ID, "record": rec.ID}, nil),
		Record: rec,
		Flag:   ended(f, rec, api.FlagExpired, sec),
		Erase:  state.Erase{Records: f.Records, Consent: f.ID, Subjects: []string{f.Subject}, Actions: liftErases, Basis: "flag-expired"},
	}, nil
}

// RemindFlag decides the reminder to flag f's origin member that f
// nears its expiry: a record for that member only.
func (d *Decider) RemindFlag(f *state.Flag, now time.Time) (*state.ChangeFlag, error) {
	tok, err := protocol.ParseToken(f.Subject)
	if err != nil {
		return nil, fmt.Errorf("flag %s has no subject: %w", f.ID, err)
	}
	sec := second(now)
	rec, err := d.sign(d.id(), []protocol.Token{tok}, f.Origin, f.ID, protocol.FlagExpiring{FlagID: f.ID, ExpiresAt: protocol.NewNumericDate(f.ExpiresAt)}, sec)
	if err != nil {
		return nil, err
	}
	n := next(f, rec)
	n.RemindedAt = sec
	return &state.ChangeFlag{
		Head: d.head(Hub, protocol.LogFlagExpiring, now, map[string]string{"flag_id": f.ID, "record": rec.ID}, nil,
			protocol.LogAttr{Key: "origin", Value: f.Origin}),
		Record: rec, Flag: n,
	}, nil
}

// FlagView is flag f as member m may see it at now: all of it if m
// placed it (or m is nil); otherwise what a check would show, without the
// subject, the consent reference or the police report. An active flag
// past its expiry shows as expired.
func FlagView(m *api.Member, f *state.Flag, now time.Time) *api.Flag {
	v := &api.Flag{
		ID: f.ID, Kind: f.Kind, Origin: f.Origin, Status: f.Status,
		Thawed: f.ActiveAt(now) && f.ThawedAt(now), PlacedAt: f.PlacedAt, ExpiresAt: f.ExpiresAt,
		ConsentRef: f.ConsentID, PoliceReport: f.PoliceReport,
	}
	if f.Subject != "" {
		v.Subject, _ = protocol.ParseToken(f.Subject)
	}
	if f.Status == api.FlagActive && !now.Before(f.ExpiresAt) {
		v.Status = api.FlagExpired
	}
	if !f.ThawFrom.IsZero() && now.Before(f.ThawUntil) {
		v.ThawFrom, v.ThawUntil = f.ThawFrom, f.ThawUntil
	}
	if m != nil && m.ID != f.Origin {
		v.Subject, v.ConsentRef, v.PoliceReport = protocol.Token{}, "", nil
	}
	return v
}

// EntitledJWS returns the JWS of those of recs that m is entitled to, in
// order; never nil, so that none is answered as an empty list.
func EntitledJWS(m *api.Member, recs []*state.Record) []string {
	out := []string{}
	for _, r := range recs {
		if members.Entitled(m, r.Audience, r.Type) {
			out = append(out, r.JWS)
		}
	}
	return out
}
