package decide

import (
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/sparr-dev/sparr/protocol"
	"github.com/sparr-dev/sparr/protocol/api"
	"github.com/sparr-dev/sparr/server/state"
)

// Defaults of the payee fields of [Policy].
const (
	// DefaultPayeeLegalBasis is the legal basis payee records are shared
	// on: the PSR's obligation to share (Art. 83), which makes the
	// processing necessary for a legal obligation (GDPR Art. 6(1)(c)).
	DefaultPayeeLegalBasis = "psr-art-83; gdpr-art-6-1-c"
	// DefaultPayeeThreshold is the PSR's: a payee at least two of the
	// member's own customers reported.
	DefaultPayeeThreshold = 2
	// DefaultPayeeRetention is how long after its last report a payee
	// record counts.
	DefaultPayeeRetention = 365 * day
)

// ReportPayee decides member m's submission s (a protocol.ReportPayee):
// its report joins the payee's record p (nil: the hub holds none; a
// record past its retention starts over), replacing the member's earlier
// report. The report must count at least the policy's threshold of the
// member's own customers. The new version of the record, signed, goes to
// every member.
func (d *Decider) ReportPayee(m *api.Member, s *protocol.Submission, hash []byte, p *state.Payee, now time.Time) (*state.PutPayee, error) {
	req := s.Request.(protocol.ReportPayee)
	sec := second(now)
	if pr := d.checkToken("request.payee", req.Payee); pr != nil {
		return nil, pr
	}
	if req.Customers < d.Policy.PayeeThreshold {
		return nil, FieldProblem(protocol.ProblemValidation, "request.customers",
			"%d customers; a payee is shared once at least %d of your own customers reported it (PSR Art. 83)", req.Customers, d.Policy.PayeeThreshold)
	}
	if req.LastSeen.Time().After(sec.Add(time.Minute)) {
		return nil, FieldProblem(protocol.ProblemValidation, "request.last_seen", "is in the future")
	}
	if req.LastSeen.Time().Before(sec.Add(-d.Policy.PayeeRetention)) {
		return nil, FieldProblem(protocol.ProblemValidation, "request.last_seen", "is older than the hub's retention of payee records (%d days)", int(d.Policy.PayeeRetention/day))
	}
	subject := req.Payee.String()
	next := &state.Payee{ID: d.id(), Version: 1, Subject: subject, ReportedAt: sec}
	if p != nil {
		next = &state.Payee{ID: p.ID, Version: p.Version + 1, Subject: p.Subject, ReportedAt: p.ReportedAt,
			Contested: p.Contested, ContestedBy: p.ContestedBy, Reason: p.Reason, Records: slices.Clone(p.Records)}
		if p.ActiveAt(sec) {
			next.Reports = slices.Clone(p.Reports)
		} else {
			next.ReportedAt, next.Contested, next.ContestedBy, next.Reason = sec, false, "", ""
		}
	}
	mine := protocol.PayeeMemberReport{Member: m.ID, Customers: req.Customers, Category: req.Category, FirstSeen: req.FirstSeen, LastSeen: req.LastSeen}
	if i := slices.IndexFunc(next.Reports, func(r protocol.PayeeMemberReport) bool { return r.Member == m.ID }); i >= 0 {
		mine.FirstSeen = min(mine.FirstSeen, next.Reports[i].FirstSeen)
		mine.LastSeen = max(mine.LastSeen, next.Reports[i].LastSeen)
		next.Reports[i] = mine
	} else {
		next.Reports = append(next.Reports, mine)
	}
	next.ExpiresAt = sec.Add(d.Policy.PayeeRetention)
	rec, err := d.signPayee(s.ID, req.Payee, next, sec)
	if err != nil {
		return nil, err
	}
	next.Records = append(next.Records, rec.ID)
	return &state.PutPayee{
		Head: d.head(m.ID, protocol.LogPayeeReported, now, map[string]any{
			"payee_id": next.ID, "record": rec.ID, "subject": subject, "customers": req.Customers, "category": req.Category,
			"legal_basis": d.Policy.PayeeLegalBasis,
		}, []string{subject},
			protocol.LogAttr{Key: "customers", Value: strconv.Itoa(req.Customers)},
			protocol.LogAttr{Key: "members", Value: strconv.Itoa(len(next.Reports))}),
		Submission: &state.SubmissionRef{ID: s.ID, Hash: hash},
		Record:     rec,
		Payee:      next,
	}, nil
}

// ContestPayee decides member m's submission s (a protocol.ContestPayee):
// the holder of the payee account contests the record p (nil: none),
// through m. The record stays, marked contested, in every check and every
// member's copy: a contest is no verdict, and the reports still count.
func (d *Decider) ContestPayee(m *api.Member, s *protocol.Submission, hash []byte, p *state.Payee, now time.Time) (*state.PutPayee, error) {
	req := s.Request.(protocol.ContestPayee)
	sec := second(now)
	if p == nil || !p.ActiveAt(sec) {
		return nil, problemf(protocol.ProblemNotFound, "no payee record %s that counts now", Quote(req.PayeeID))
	}
	if p.Contested {
		return nil, problemf(protocol.ProblemStateConflict, "payee record %q is contested already, by member %q", p.ID, p.ContestedBy)
	}
	tok, err := protocol.ParseToken(p.Subject)
	if err != nil {
		return nil, fmt.Errorf("payee %s has a bad subject: %w", p.ID, err)
	}
	next := *p
	next.Version++
	next.Contested, next.ContestedBy, next.Reason = true, m.ID, req.Reason
	next.Reports, next.Records = slices.Clone(p.Reports), slices.Clone(p.Records)
	rec, err := d.signPayee(s.ID, tok, &next, sec)
	if err != nil {
		return nil, err
	}
	next.Records = append(next.Records, rec.ID)
	return &state.PutPayee{
		Head: d.head(m.ID, protocol.LogPayeeContested, now, map[string]any{"payee_id": p.ID, "record": rec.ID, "reason": req.Reason}, []string{p.Subject},
			protocol.LogAttr{Key: "reason", Value: string(req.Reason)}),
		Submission: &state.SubmissionRef{ID: s.ID, Hash: hash},
		Record:     rec,
		Payee:      &next,
	}, nil
}

// signPayee signs the record of payee version p, for every member.
func (d *Decider) signPayee(txn string, tok protocol.Token, p *state.Payee, at time.Time) (*state.Record, error) {
	return d.sign(txn, []protocol.Token{tok}, "", p.ID, PayeeEvent(p, d.Policy.PayeeLegalBasis), at)
}

// PayeeEvent is the signed event of payee record p.
func PayeeEvent(p *state.Payee, legalBasis string) protocol.PayeeReported {
	ev := protocol.PayeeReported{PayeeID: p.ID, Version: p.Version, Reports: p.Reports, LegalBasis: legalBasis,
		ExpiresAt: protocol.NewNumericDate(p.ExpiresAt), Contested: p.Contested, ContestedBy: p.ContestedBy, Reason: p.Reason}
	for i, r := range p.Reports {
		ev.Customers += r.Customers
		if i == 0 || r.FirstSeen < ev.FirstSeen {
			ev.FirstSeen = r.FirstSeen
		}
		ev.LastSeen = max(ev.LastSeen, r.LastSeen)
	}
	return ev
}

// PayeeView is payee record p as the API shows it, with its latest
// record rec (nil: none kept).
func PayeeView(p *state.Payee, rec *state.Record) *api.Payee {
	ev := PayeeEvent(p, "")
	v := &api.Payee{PayeeID: p.ID, Version: p.Version, Customers: ev.Customers, Members: len(p.Reports), Reports: p.Reports,
		FirstSeen: ev.FirstSeen.Time(), LastSeen: ev.LastSeen.Time(), ExpiresAt: p.ExpiresAt.UTC(), Contested: p.Contested, ContestedBy: p.ContestedBy}
	for _, r := range p.Reports {
		if !slices.Contains(v.Categories, r.Category) {
			v.Categories = append(v.Categories, r.Category)
		}
	}
	if rec != nil {
		v.Record = rec.JWS
	}
	return v
}

// ExpirePayee decides the end of payee record p, lapsed at now: the hub
// deletes it with its earlier records, and the expiry record, for every
// member, tells them to delete their copies.
func (d *Decider) ExpirePayee(p *state.Payee, now time.Time) (*state.ExpirePayee, error) {
	tok, err := protocol.ParseToken(p.Subject)
	if err != nil {
		return nil, fmt.Errorf("payee %s has a bad subject: %w", p.ID, err)
	}
	sec := second(now)
	rec, err := d.sign(d.id(), []protocol.Token{tok}, "", p.ID,
		protocol.PayeeExpired{PayeeID: p.ID, Version: p.Version, ExpiredAt: protocol.NewNumericDate(p.ExpiresAt)}, sec)
	if err != nil {
		return nil, err
	}
	return &state.ExpirePayee{
		Head:   d.head(Hub, protocol.LogPayeeExpired, now, map[string]string{"payee_id": p.ID, "record": rec.ID}, nil),
		Record: rec,
		Payee:  p,
		Erase:  state.Erase{Records: p.Records, Basis: "retention-ended"},
	}, nil
}
