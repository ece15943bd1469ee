package decide_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/sparr-dev/sparr/protocol"
	"github.com/sparr-dev/sparr/protocol/api"
	"github.com/sparr-dev/sparr/server/decide"
)

// TestReservedMemberIDs: hub names the hub's own log entries and operator
// is the hub's own operator; no one registers a member under either, nor
// changes or resumes one a data file already holds under hub.
func TestReservedMemberIDs(t *testing.T) {
	d := decider(t, decide.Policy{})
	jwks := keySetJSON(t)
	for _, id := range []string{api.HubID, decide.OperatorID} {
		_, err := d.AddMember(op, api.MemberRequest{ID: id, Name: "Bank", Roles: []api.Role{api.RoleCheck}, JWKS: jwks}, now)
		wantProblem(t, err, "validation-failed", "")
	}
	if decide.Hub != api.HubID {
		t.Errorf("got the hub's actor %q, want the reserved id %q", decide.Hub, api.HubID)
	}
	hub := &api.Member{ID: api.HubID, Name: "Hub Bank", Roles: []api.Role{api.RoleCheck}, JWKS: jwks, Status: api.MemberSuspended}
	_, err := d.SetMemberStatus(op, hub.ID, hub, api.MemberActive, now)
	wantProblem(t, err, "validation-failed", "")
	name := "Hub Bank AB"
	_, err = d.UpdateMember(op, hub.ID, hub, api.MemberPatch{Name: &name}, now)
	wantProblem(t, err, "validation-failed", "")
}

// TestMembersAtStart: the operator is made on the first start and its
// key replaced when the key file was; a replaced key suspends every other
// active member holding the operator role; a member called hub is
// suspended; and nothing changes on a start with nothing to change.
func TestMembersAtStart(t *testing.T) {
	d := decider(t, decide.Policy{})
	key, other := keySetJSON(t), keySetJSON(t)
	member := func(id string, status api.MemberStatus, roles ...api.Role) *api.Member {
		return &api.Member{ID: id, Name: "Member " + id, Roles: roles, JWKS: key, Status: status}
	}
	operator := member(decide.OperatorID, api.MemberActive, api.RoleOperator)
	for _, tc := range []struct {
		name    string
		members []*api.Member
		jwks    []byte
		want    []string // "action member reason" of each command, by whom
	}{
		{name: "first start", jwks: key, want: []string{"hub member-added operator"}},
		{name: "same key", jwks: key, members: []*api.Member{operator, member("ops-2", api.MemberActive, api.RoleOperator)}},
		{name: "key replaced", jwks: other, members: []*api.Member{
			member("bank-a", api.MemberActive, api.RoleCheck, api.RoleFlag),
			operator,
			member("ops-2", api.MemberActive, api.RoleOperator),
			member("ops-3", api.MemberSuspended, api.RoleOperator),
			member("ops-bank", api.MemberActive, api.RoleCheck, api.RoleOperator),
		}, want: []string{"hub member-updated operator", "hub member-suspended ops-2 operator-key-replaced", "hub member-suspended ops-bank operator-key-replaced"}},
		{name: "a member hub", jwks: key, members: []*api.Member{member(api.HubID, api.MemberActive, api.RoleCheck), operator},
			want: []string{"hub member-suspended hub reserved-id"}},
		{name: "a member hub, suspended", jwks: key, members: []*api.Member{member(api.HubID, api.MemberSuspended, api.RoleCheck), operator}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			statuses := func() string {
				var b strings.Builder
				for _, m := range tc.members {
					fmt.Fprintf(&b, "%s %s %s %s;", m.ID, m.Status, m.JWKS, m.UpdatedAt)
				}
				return b.String()
			}
			before := statuses()
			var got []string
			for _, c := range d.AtStart(tc.members, tc.jwks, now) {
				m, _ := attr(c.Entry.Attrs, "member")
				s := c.Actor + " " + string(c.Entry.Action) + " " + m
				if r, ok := attr(c.Entry.Attrs, "reason"); ok {
					s += " " + r
				}
				if m != c.Member.ID || c.Create != (c.Entry.Action == protocol.LogMemberAdded) {
					t.Errorf("got %s for member %q (create %t), want the entry to name the member it changes", s, c.Member.ID, c.Create)
				}
				if c.Entry.Action == protocol.LogMemberSuspended && (c.Member.Status != api.MemberSuspended || !c.Member.UpdatedAt.Equal(now)) {
					t.Errorf("got %s leaving %+v, want it suspended now", s, c.Member)
				}
				got = append(got, s)
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("got %q, want %q", got, tc.want)
			}
			if statuses() != before {
				t.Error("AtStart changed the members it was given")
			}
		})
	}
}

func attr(attrs []protocol.LogAttr, key string) (string, bool) {
	for _, a := range attrs {
		if a.Key == key {
			return a.Value, true
		}
	}
	return "", false
}

// TestSelf: a member is shown the quotas that apply to it, each its own
// where it has one and the policy's otherwise, its own quotas apart, and
// no key; an empty set of own quotas is none.
func TestSelf(t *testing.T) {
	defaults := api.Quotas{TokensPerSecond: 10, TokensPerDay: 50_000, StoredBytesPerDay: 1 << 20}
	d := decider(t, decide.Policy{Quotas: defaults})
	for _, tc := range []struct {
		name      string
		own       *api.Quotas
		want      api.Quotas
		wantOwn   *api.Quotas
		endpoint  *api.Endpoint
		wantPoint bool
	}{
		{name: "defaults", want: defaults},
		{name: "empty own quotas", own: &api.Quotas{}, want: defaults},
		{name: "one of its own", own: &api.Quotas{TokensPerDay: 7}, want: api.Quotas{TokensPerSecond: 10, TokensPerDay: 7, StoredBytesPerDay: 1 << 20}, wantOwn: &api.Quotas{TokensPerDay: 7}},
		{name: "all its own", own: &api.Quotas{TokensPerSecond: 1, TokensPerDay: 2, StoredBytesPerDay: 3}, want: api.Quotas{TokensPerSecond: 1, TokensPerDay: 2, StoredBytesPerDay: 3}, wantOwn: &api.Quotas{TokensPerSecond: 1, TokensPerDay: 2, StoredBytesPerDay: 3}},
		{name: "with an endpoint", endpoint: &api.Endpoint{Member: "bank-a", Status: api.EndpointActive}, want: defaults, wantPoint: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := &api.Member{ID: "bank-a", Name: "Bank A AB", Roles: []api.Role{api.RoleCheck, api.RoleFlag}, JWKS: keySetJSON(t),
				Status: api.MemberActive, Quotas: tc.own, CreatedAt: now, UpdatedAt: now}
			s := d.Self(m, tc.endpoint)
			if s.ID != m.ID || s.Name != m.Name || !slices.Equal(s.Roles, m.Roles) || s.Status != m.Status || !s.CreatedAt.Equal(now) || !s.UpdatedAt.Equal(now) {
				t.Errorf("got %+v, want the member's id, name, roles, status and times", s)
			}
			if s.Quotas != tc.want {
				t.Errorf("got quotas %+v, want %+v", s.Quotas, tc.want)
			}
			if (s.OwnQuotas == nil) != (tc.wantOwn == nil) || s.OwnQuotas != nil && *s.OwnQuotas != *tc.wantOwn {
				t.Errorf("got own quotas %+v, want %+v", s.OwnQuotas, tc.wantOwn)
			}
			if (s.Endpoint != nil) != tc.wantPoint {
				t.Errorf("got endpoint %+v, want one: %v", s.Endpoint, tc.wantPoint)
			}
			s.Roles[0] = api.RoleOperator
			if m.Roles[0] != api.RoleCheck {
				t.Errorf("changing the answer's roles changed the member's: got %v", m.Roles)
			}
		})
	}
}
