package decide

import (
	"slices"
	"strconv"
	"time"

	"github.com/sparr-dev/sparr/federation/members"
	"github.com/sparr-dev/sparr/protocol"
	"github.com/sparr-dev/sparr/protocol/api"
	"github.com/sparr-dev/sparr/server/state"
)

// AttestErasure decides member m's submission s (a
// protocol.AttestErasure) attesting that it deleted what erasure records
// told it to: recs are what the hub keeps of those records, in the order
// of the request (nil: none). Each must be an erasure record m received
// (was entitled to); a request naming one that is not is refused whole,
// every record at fault named.
func (d *Decider) AttestErasure(m *api.Member, s *protocol.Submission, hash []byte, recs []*state.ErasureRecord, now time.Time) (*state.AttestErasure, error) {
	req := s.Request.(protocol.AttestErasure)
	var bad []protocol.ProblemField
	for i, r := range recs {
		if r == nil || !members.Entitled(m, r.Audience, r.Type) {
			bad = append(bad, protocol.ProblemField{Pointer: JSONPointer("request.records[" + strconv.Itoa(i) + "]"), Detail: "not an erasure record this member received"})
		}
	}
	if len(bad) > 0 {
		p := problemf(protocol.ProblemNotFound, "%d of the %d records are not lift, expiry, retraction or erasure records sent to member %q (see errors); attest the others without them", len(bad), len(recs), m.ID)
		p.Errors = bad
		return nil, p
	}
	return &state.AttestErasure{
		Head: d.head(m.ID, protocol.LogErasureAttested, now, map[string]any{"records": req.Records}, nil,
			protocol.LogAttr{Key: "count", Value: strconv.Itoa(len(req.Records))}),
		Submission: state.SubmissionRef{ID: s.ID, Hash: hash},
		Member:     m.ID,
		Records:    req.Records,
	}, nil
}

// ExpectedAttesters are the members expected to attest erasure record r:
// the active members entitled to it that existed when it was issued,
// sorted by id.
func ExpectedAttesters(r *state.ErasureRecord, all []*api.Member) []string {
	var out []string
	for _, m := range all {
		if m.Status == api.MemberActive && members.Entitled(m, r.Audience, r.Type) && !m.CreatedAt.After(r.IssuedAt.Add(time.Second)) {
			out = append(out, m.ID)
		}
	}
	slices.Sort(out)
	return out
}

// AttestationStatus is the status of erasure record r's attestations
// (attested: member → when) as member m sees it: counts, whether m
// attested, and, for the operator and regulators, every expected member.
func AttestationStatus(m *api.Member, r *state.ErasureRecord, all []*api.Member, attested map[string]time.Time) (*api.AttestationStatus, error) {
	expected := ExpectedAttesters(r, all)
	staff := m.HasRole(api.RoleOperator) || m.HasRole(api.RoleRegulator)
	if !staff && !members.Entitled(m, r.Audience, r.Type) {
		return nil, problemf(protocol.ProblemNotFound, "no erasure record %s sent to member %q", Quote(r.ID), m.ID)
	}
	st := &api.AttestationStatus{Record: r.ID, Type: r.Type, IssuedAt: r.IssuedAt, Expected: len(expected)}
	_, st.Self = attested[m.ID]
	for _, id := range expected {
		at, ok := attested[id]
		if ok {
			st.Attested++
		}
		if staff {
			st.Members = append(st.Members, api.Attestation{Member: id, At: at})
		}
	}
	return st, nil
}

// OverdueErasure is r with the expected members that have not attested
// it, or nil when every one has.
func OverdueErasure(r *state.ErasureRecord, all []*api.Member, attested map[string]time.Time) *api.OverdueErasure {
	var missing []string
	for _, id := range ExpectedAttesters(r, all) {
		if _, ok := attested[id]; !ok {
			missing = append(missing, id)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	return &api.OverdueErasure{Record: r.ID, Type: r.Type, IssuedAt: r.IssuedAt, Missing: missing}
}
