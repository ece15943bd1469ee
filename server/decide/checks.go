package decide

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/sparr-dev/sparr/protocol"
	"github.com/sparr-dev/sparr/protocol/api"
	"github.com/sparr-dev/sparr/server/state"
)

func checkPurpose(p string) *protocol.Problem {
	if !slices.Contains(api.Purposes(), p) {
		return FieldProblem(protocol.ProblemValidation, "purpose", "%s is not a purpose; use one of %s", Quote(p), strings.Join(api.Purposes(), ", "))
	}
	return nil
}

// CheckRequest validates a check before the hub reads anything for it: a
// known purpose, 1 to protocol.MaxTokenBatch tokens, each a token of the
// hub's epoch.
func (d *Decider) CheckRequest(req *api.CheckRequest) error {
	return d.checkRequest(req, d.TokenEpoch, "this hub makes")
}

// RelayedCheckRequest validates a check of tokens whose home is a peer
// whose token key is of epoch, before it is logged and relayed, as
// [Decider.CheckRequest] validates a check of this hub's tokens.
func (d *Decider) RelayedCheckRequest(req *api.CheckRequest, epoch uint32) error {
	return d.checkRequest(req, epoch, "their home hub makes")
}

func (d *Decider) checkRequest(req *api.CheckRequest, epoch uint32, maker string) error {
	if p := checkPurpose(req.Purpose); p != nil {
		return p
	}
	if len(req.Tokens) == 0 || len(req.Tokens) > protocol.MaxTokenBatch {
		return FieldProblem(protocol.ProblemValidation, "tokens", "%d tokens; send 1 to %d", len(req.Tokens), protocol.MaxTokenBatch)
	}
	for i, s := range req.Tokens {
		t, err := protocol.ParseToken(s)
		if err != nil {
			return TokenProblem(fmt.Sprintf("tokens[%d]", i), err)
		}
		if t.Epoch != epoch {
			return TokenProblem(fmt.Sprintf("tokens[%d]", i), fmt.Errorf("token is of epoch %d, but %s epoch %d tokens; tokenize again", t.Epoch, maker, epoch))
		}
	}
	return nil
}

// Check decides member m's check of req's tokens (valid: see
// [Decider.CheckRequest]), given what the hub holds about each
// (subjects, in the same order): the answer, and the check to keep, whose
// log entry names the tokens and counts the advice. Each token with an
// active flag gets an access notice, signed for the flag's origin; the
// consumer's recent denials of checks of it are shown beside the advice,
// which they leave as the flag makes it. The answer's LogIndex is the
// command's, once applied.
func (d *Decider) Check(m *api.Member, req *api.CheckRequest, subjects []state.Subject, now time.Time) (*state.AddCheck, *api.CheckResponse, error) {
	return d.checkAs(m, d.id(), req, subjects, now)
}

// checkAs is [Decider.Check] of a check whose id is id.
func (d *Decider) checkAs(m *api.Member, id string, req *api.CheckRequest, subjects []state.Subject, now time.Time) (*state.AddCheck, *api.CheckResponse, error) {
	resp := &api.CheckResponse{CheckID: id, CheckedAt: now.UTC(), Results: make([]api.CheckResult, len(req.Tokens))}
	chk := &state.Check{ID: resp.CheckID, Member: m.ID, Purpose: req.Purpose, At: now, Tokens: len(req.Tokens)}
	var notices []*state.AccessNotice
	for i, t := range req.Tokens {
		resp.Results[i] = Advise(m, t, subjects[i], now)
		if f := subjects[i].Flag; f != nil && f.ActiveAt(now) {
			resp.Results[i].Denied = d.denied(m, subjects[i].Denials, now)
			if !slices.ContainsFunc(notices, func(n *state.AccessNotice) bool { return n.Subject == t }) {
				n, err := d.notice(m, chk.ID, req.Purpose, t, f, false, now)
				if err != nil {
					return nil, nil, err
				}
				notices = append(notices, n)
			}
		}
		switch resp.Results[i].Advice {
		case api.AdviceVerify:
			chk.Verify++
		case api.AdviceReview:
			chk.Review++
		case api.AdviceWarn:
			chk.Warn++
		}
	}
	cmd := &state.AddCheck{
		Head: d.head(m.ID, protocol.LogCheck, now, map[string]any{"check_id": chk.ID, "purpose": req.Purpose, "tokens": req.Tokens}, req.Tokens,
			protocol.LogAttr{Key: "purpose", Value: req.Purpose}, protocol.LogAttr{Key: "tokens", Value: fmt.Sprint(chk.Tokens)},
			protocol.LogAttr{Key: "verify", Value: fmt.Sprint(chk.Verify)}, protocol.LogAttr{Key: "review", Value: fmt.Sprint(chk.Review)}),
		Check:   chk,
		Notices: notices,
	}
	if chk.Warn > 0 {
		cmd.Entry.Attrs = append(cmd.Entry.Attrs, protocol.LogAttr{Key: "warn", Value: fmt.Sprint(chk.Warn)})
	}
	return cmd, resp, nil
}

// Advise gives the advice for token from what the hub holds about it (s),
// at the moment of the check: a flag past its expiry or a suspicion past
// its retention no longer counts even if the job has not yet ended it. An
// active flag not thawed means verify; suspicions without one, review. The
// flag's records are those the checking member m is entitled to (a
// reminder to the flag's origin is the origin's alone). A suspicion under
// an open dispute is listed as disputed; one whose dispute passed a
// deadline unanswered does not count until the dispute is resolved, and is
// listed as suspended.
func Advise(m *api.Member, token string, s state.Subject, now time.Time) api.CheckResult {
	r := api.CheckResult{Advice: api.AdviceNone}
	r.Token, _ = protocol.ParseToken(token)
	if f := s.Flag; f != nil && f.ActiveAt(now) {
		cf := &api.CheckFlag{FlagID: f.ID, Kind: f.Kind, ExpiresAt: f.ExpiresAt, Thawed: f.ThawedAt(now), Records: EntitledJWS(m, s.Records)}
		if cf.Thawed {
			cf.ThawUntil = f.ThawUntil
		}
		if d := s.DisputeOf(f.ID); d != nil {
			cf.Disputed = d.ID
		}
		r.Flag = cf
		if !cf.Thawed {
			r.Advice = api.AdviceVerify
		}
	}
	var hits api.CheckSuspicions
	for _, sp := range s.Suspicions {
		if !sp.ActiveAt(now) {
			continue
		}
		if d := s.DisputeOf(sp.ID); d != nil {
			if d.LapsedAt(now) {
				hits.Suspended = append(hits.Suspended, sp.ID)
				continue
			}
			hits.Disputed = append(hits.Disputed, sp.ID)
		}
		hits.Count++
		hits.IDs = append(hits.IDs, sp.ID)
		if !slices.Contains(hits.Categories, sp.Category) {
			hits.Categories = append(hits.Categories, sp.Category)
		}
	}
	if hits.Count > 0 || len(hits.Suspended) > 0 {
		if hits.Count == 0 {
			hits.Categories, hits.IDs = []protocol.SuspicionCategory{}, []string{}
		}
		r.Suspicions = &hits
	}
	if hits.Count > 0 {
		if r.Advice == api.AdviceNone {
			r.Advice = api.AdviceReview
		}
	}
	if p := s.Payee; p != nil && p.ActiveAt(now) {
		r.Payee = PayeeView(p, s.PayeeRecord)
		if r.Advice == api.AdviceNone {
			r.Advice = api.AdviceWarn
		}
	}
	return r
}

// Outcome decides member m's report of the outcome of check id: chk as the
// hub holds it (nil: none). Only the member that made a check may report
// its outcome, once.
func (d *Decider) Outcome(m *api.Member, id string, req api.OutcomeRequest, chk *state.Check, now time.Time) (*state.SetOutcome, error) {
	if !slices.Contains(api.Outcomes(), req.Outcome) {
		return nil, FieldProblem(protocol.ProblemValidation, "outcome", "%s is not an outcome; use one of %s", Quote(req.Outcome), strings.Join(api.Outcomes(), ", "))
	}
	if chk == nil || chk.Member != m.ID {
		return nil, problemf(protocol.ProblemNotFound, "no check %s made by member %q", Quote(id), m.ID)
	}
	if chk.Outcome != "" {
		return nil, OutcomeConflict(chk)
	}
	n := *chk
	n.Outcome, n.OutcomeAt = req.Outcome, now
	return &state.SetOutcome{
		Head: d.head(m.ID, protocol.LogCheckOutcome, now, map[string]string{"check_id": chk.ID, "outcome": req.Outcome}, nil,
			protocol.LogAttr{Key: "outcome", Value: req.Outcome}),
		Check: &n,
	}, nil
}

// OutcomeConflict is the problem for a second report of chk's outcome.
func OutcomeConflict(chk *state.Check) *protocol.Problem {
	if chk.Outcome == "" {
		return problemf(protocol.ProblemStateConflict, "the outcome of check %q was already reported", chk.ID)
	}
	return problemf(protocol.ProblemStateConflict, "the outcome of check %q was already reported as %q", chk.ID, chk.Outcome)
}

// maxReplicaCheckAge is how old a reported replica check may be: a member
// reports its checks within seconds, and one that was down may catch up a
// week late.
const maxReplicaCheckAge = 7 * 24 * time.Hour

// ReplicaChecksRequest validates member m's report of checks its replica
// answered, before the hub reads anything for it: each a token of the
// hub's epoch, a purpose, and a time neither in the future (beyond a
// minute of clock skew) nor older than a week. A report with checks that
// are not is refused whole, every check at fault named. It returns the
// distinct tokens the report names.
func (d *Decider) ReplicaChecksRequest(req *api.ReplicaChecksRequest, now time.Time) ([]string, error) {
	if n := len(req.Checks); n == 0 || n > api.MaxReplicaChecks {
		return nil, FieldProblem(protocol.ProblemValidation, "checks", "%d checks; report 1 to %d at a time", n, api.MaxReplicaChecks)
	}
	var subjects []string
	var bad []*protocol.Problem
	for i, rc := range req.Checks {
		if p := d.replicaCheck(fmt.Sprintf("checks[%d]", i), rc, now); p != nil {
			bad = append(bad, p)
			continue
		}
		if !slices.Contains(subjects, rc.Token) {
			subjects = append(subjects, rc.Token)
		}
	}
	if len(bad) > 0 {
		// Every check at fault is named, so that the member can drop
		// them all and report the rest in one more request.
		p := bad[0]
		if len(bad) > 1 {
			p.Detail = fmt.Sprintf("%d of the %d checks cannot be logged (see errors), the first: %s; report the others without them", len(bad), len(req.Checks), p.Detail)
			for _, q := range bad[1:] {
				p.Errors = append(p.Errors, q.Errors...)
				if q.Type != p.Type {
					// Bad tokens beside other faults: one type for all.
					p.Type, p.Title, p.Status = protocol.ProblemValidation.URI, protocol.ProblemValidation.Title, protocol.ProblemValidation.Status
				}
			}
		}
		return nil, p
	}
	return subjects, nil
}

// ReplicaChecks decides the log entry of member m's report of checks its
// replica answered (valid: see [Decider.ReplicaChecksRequest]), given
// what the hub holds about each of the report's tokens (subjects, by
// token text). The entry counts the checks and commits to every one; it
// is indexed under each token, so that a lift or an erasure of the
// subject erases it, as it does an online check's. Each check of a token
// with a flag active at the check's time gets an access notice, under an
// id of the hub's, as an online check does.
func (d *Decider) ReplicaChecks(m *api.Member, req *api.ReplicaChecksRequest, tokens []string, subjects []state.Subject, now time.Time) (*state.ReplicaChecks, error) {
	var notices []*state.AccessNotice
	for _, rc := range req.Checks {
		i := slices.Index(tokens, rc.Token)
		if i < 0 || i >= len(subjects) {
			continue
		}
		if f := subjects[i].Flag; f != nil && f.ActiveAt(rc.At) {
			n, err := d.notice(m, d.id(), rc.Purpose, rc.Token, f, true, rc.At)
			if err != nil {
				return nil, err
			}
			notices = append(notices, n)
		}
	}
	return &state.ReplicaChecks{Head: d.head(m.ID, protocol.LogReplicaCheck, now, map[string]any{"checks": req.Checks}, tokens,
		protocol.LogAttr{Key: "count", Value: strconv.Itoa(len(req.Checks))}), Notices: notices}, nil
}

// replicaCheck checks one check of a replica's report, field its place in
// the report.
func (d *Decider) replicaCheck(field string, rc api.ReplicaCheck, now time.Time) *protocol.Problem {
	t, err := protocol.ParseToken(rc.Token)
	if err != nil {
		return TokenProblem(field+".token", err)
	}
	if p := d.checkToken(field+".token", t); p != nil {
		return p
	}
	if !slices.Contains(api.Purposes(), rc.Purpose) {
		return FieldProblem(protocol.ProblemValidation, field+".purpose", "%s is not a purpose; use one of %s", Quote(rc.Purpose), strings.Join(api.Purposes(), ", "))
	}
	if rc.At.After(now.Add(time.Minute)) || rc.At.Before(now.Add(-maxReplicaCheckAge)) {
		return FieldProblem(protocol.ProblemValidation, field+".at", "%s: report checks of the last %s, none in the future", rc.At.Format(time.RFC3339), maxReplicaCheckAge)
	}
	return nil
}

// RelayedCheck decides the record of member m's check (valid in form:
// purpose and 1 to protocol.MaxTokenBatch tokens) of tokens whose home is
// peer, logged here before it is relayed: its purpose, size and the
// peer's id. The advice is the home hub's, and logged there; nothing here
// names the tokens' subjects, which this hub holds no records of.
func (d *Decider) RelayedCheck(m *api.Member, req *api.CheckRequest, peer string, now time.Time) *state.AddCheck {
	chk := &state.Check{ID: d.id(), Member: m.ID, Purpose: req.Purpose, At: now, Tokens: len(req.Tokens), Home: peer}
	return &state.AddCheck{
		Head: d.head(m.ID, protocol.LogCheck, now, map[string]any{"check_id": chk.ID, "purpose": req.Purpose, "tokens": req.Tokens, "home": peer}, nil,
			protocol.LogAttr{Key: "purpose", Value: req.Purpose}, protocol.LogAttr{Key: "tokens", Value: fmt.Sprint(chk.Tokens)},
			protocol.LogAttr{Key: "home", Value: peer}),
		Check: chk,
	}
}

// PeerCheck decides a check that peer, a hub registered with role peer,
// relays for one of its members (req.Member), as [Decider.Check] decides
// a member's: the check is the peer's, its access notices name the peer,
// and it is logged as peer-check with the member that asked. A check that
// names the relaying hub's id for it (req.CheckID) is kept here as
// "<peer>.<id>" ([RelayedMemberID]'s form), so that its outcome can be
// reported by that id. The answer
// carries the records a member with role check is entitled to, which the
// member that asked is (the relaying hub let it check).
func (d *Decider) PeerCheck(peer *api.Member, req *api.PeerCheckRequest, subjects []state.Subject, now time.Time) (*state.AddCheck, *api.CheckResponse, error) {
	checker := *peer
	checker.Roles = []api.Role{api.RoleCheck}
	id := d.id()
	if req.CheckID != "" {
		id = RelayedMemberID(peer.ID, req.CheckID)
	}
	cmd, resp, err := d.checkAs(&checker, id, &req.CheckRequest, subjects, now)
	if err != nil {
		return nil, nil, err
	}
	cmd.Entry.Action = protocol.LogPeerCheck
	cmd.Entry.Attrs = append(cmd.Entry.Attrs, protocol.LogAttr{Key: "member", Value: req.Member})
	return cmd, resp, nil
}
