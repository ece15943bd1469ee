package decide

import (
	"fmt"
	"time"

	"github.com/sparr-dev/sparr/protocol"
	"github.com/sparr-dev/sparr/protocol/api"
	"github.com/sparr-dev/sparr/server/state"
)

// notice is the access notice of member m's check (checkID, for purpose,
// at) of token, whose active flag is f: with a subject-checked record for
// f's origin, unless m is the origin, which knows of its own checks.
func (d *Decider) notice(m *api.Member, checkID, purpose, token string, f *state.Flag, replica bool, at time.Time) (*state.AccessNotice, error) {
	n := &state.AccessNotice{CheckID: checkID, FlagID: f.ID, Subject: token, Origin: f.Origin, Member: m.ID, Purpose: purpose, At: at.UTC(), Replica: replica}
	if m.ID == f.Origin {
		return n, nil
	}
	tok, err := protocol.ParseToken(token)
	if err != nil {
		return nil, fmt.Errorf("check %s names no token: %w", checkID, err)
	}
	ev := protocol.SubjectChecked{CheckID: checkID, FlagID: f.ID, Checker: m.ID, Purpose: purpose, CheckedAt: protocol.NewNumericDate(at), Replica: replica}
	if n.Record, err = d.sign(checkID, []protocol.Token{tok}, f.Origin, f.ID, ev, second(at)); err != nil {
		return nil, err
	}
	return n, nil
}

// denied is what a check at now by member m shows of the consumer's
// denials (newest first), those made within the policy's denial window.
func (d *Decider) denied(m *api.Member, denials []*state.Denial, now time.Time) *api.CheckDenied {
	var out *api.CheckDenied
	for _, dn := range denials {
		if now.Sub(dn.DeniedAt) > d.Policy.DenialWindow || dn.DeniedAt.After(now) {
			continue
		}
		if out == nil {
			out = &api.CheckDenied{LastDeniedAt: dn.DeniedAt, Records: []string{}}
		}
		out.Count++
		if dn.Member == m.ID && dn.Record != nil {
			out.Records = append(out.Records, dn.Record.JWS)
		}
	}
	return out
}

// DenyCheck decides member m's submission s (a protocol.DenyCheck, whose
// signed bytes hash to hash) denying, for the consumer, the check of
// notice n (nil: the hub holds none), while f is the active flag on the
// notice's subject (nil: none). Only the flag's origin may deny, once,
// while the flag is active, with a statement that the consumer
// authenticated within the last hour.
func (d *Decider) DenyCheck(m *api.Member, s *protocol.Submission, hash []byte, n *state.AccessNotice, f *state.Flag, now time.Time) (*state.DenyCheck, error) {
	req := s.Request.(protocol.DenyCheck)
	sec := second(now)
	if n == nil || n.Origin != m.ID {
		return nil, problemf(protocol.ProblemNotFound, "member %q was notified of no check %s of flag %s", m.ID, Quote(req.CheckID), Quote(req.FlagID))
	}
	if n.Member == m.ID {
		return nil, problemf(protocol.ProblemStateConflict, "check %s is member %q's own; a member cannot deny its own check", Quote(req.CheckID), m.ID)
	}
	if !n.DeniedAt.IsZero() {
		return nil, problemf(protocol.ProblemStateConflict, "check %s was already denied at %s", Quote(req.CheckID), n.DeniedAt.Format(time.RFC3339))
	}
	if f == nil || f.ID != n.FlagID || !f.ActiveAt(sec) {
		return nil, problemf(protocol.ProblemStateConflict, "flag %s is no longer active; a check can be denied only while the flag protects its subject", Quote(req.FlagID))
	}
	auth := req.ConsumerAuth
	if err := d.ConsumerAuth(auth, now); err != nil {
		return nil, err
	}
	tok, err := protocol.ParseToken(n.Subject)
	if err != nil {
		return nil, fmt.Errorf("notice of check %s has no subject: %w", n.CheckID, err)
	}
	ev := protocol.CheckDenied{CheckID: n.CheckID, FlagID: n.FlagID, Origin: m.ID, CheckedAt: protocol.NewNumericDate(n.At), DeniedAt: protocol.NewNumericDate(sec), ConsumerAuth: auth}
	rec, err := d.sign(s.ID, []protocol.Token{tok}, n.Member, n.FlagID, ev, sec)
	if err != nil {
		return nil, err
	}
	dn := &state.Denial{CheckID: n.CheckID, FlagID: n.FlagID, Subject: n.Subject, Origin: m.ID, Member: n.Member, Purpose: n.Purpose,
		At: n.At, DeniedAt: sec, Auth: auth, Record: rec}
	return &state.DenyCheck{
		Head: d.head(m.ID, protocol.LogCheckDenied, now,
			map[string]any{"check_id": n.CheckID, "flag_id": n.FlagID, "subject": n.Subject, "consumer_auth": auth, "record": rec.ID}, []string{n.Subject},
			protocol.LogAttr{Key: "checker", Value: n.Member}, protocol.LogAttr{Key: "method", Value: string(auth.Method)}, protocol.LogAttr{Key: "level", Value: string(auth.Level)}),
		Submission: state.SubmissionRef{ID: s.ID, Hash: hash},
		Denial:     dn,
	}, nil
}
