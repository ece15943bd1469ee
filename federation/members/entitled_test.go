package members_test

import (
	"testing"

	"github.com/sparr-dev/sparr/federation/members"
	"github.com/sparr-dev/sparr/protocol"
	"github.com/sparr-dev/sparr/protocol/api"
)

// TestEntitled is the one rule of who may receive which record, by the
// webhook, the feed, the snapshot and GET /v1/records alike.
func TestEntitled(t *testing.T) {
	of := func(id string, roles ...api.Role) *api.Member { return &api.Member{ID: id, Roles: roles} }
	flagger, checker, reporter := of("bank-a", api.RoleFlag), of("bank-b", api.RoleCheck), of("bank-c", api.RoleSuspicion)
	regulator, operator := of("fi", api.RoleRegulator), of("operator", api.RoleOperator)
	everyone := []*api.Member{flagger, checker, reporter, regulator, operator}
	for _, tc := range []struct {
		name     string
		audience string
		types    []protocol.EventType
		want     []*api.Member
	}{
		{"flag events", "", []protocol.EventType{protocol.EventFlagPlaced, protocol.EventFlagExtended, protocol.EventFlagThawed,
			protocol.EventFlagLifted, protocol.EventFlagExpired}, []*api.Member{flagger, checker}},
		{"suspicion events, in bulk", "", []protocol.EventType{protocol.EventSuspicionReported, protocol.EventSuspicionRetracted,
			protocol.EventSuspicionExpired}, nil},
		{"erasures", "", []protocol.EventType{protocol.EventSubjectErased}, []*api.Member{flagger, checker, reporter}},
		{"a record for one member", "bank-c", []protocol.EventType{protocol.EventSuspicionReported, protocol.EventFlagExpiring,
			protocol.EventVerification, protocol.EventFlagPlaced}, []*api.Member{reporter}},
		{"an event without a rule", "", []protocol.EventType{protocol.EventFlagExpiring, protocol.EventVerification}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, typ := range tc.types {
				for _, m := range everyone {
					want := false
					for _, w := range tc.want {
						want = want || w == m
					}
					if got := members.Entitled(m, tc.audience, typ); got != want {
						t.Errorf("%s to %s (audience %q): got %t, want %t", typ.Short(), m.ID, tc.audience, got, want)
					}
				}
			}
		})
	}
}
