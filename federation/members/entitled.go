package members

import (
	"github.com/sparr-dev/sparr/protocol"
	"github.com/sparr-dev/sparr/protocol/api"
)

// Entitled reports whether member m may receive a record of type t
// addressed to audience ("" for every member entitled by role): the rule
// for delivery, the feed, the snapshot and GET /v1/records alike.
//
//   - A record with an audience goes to that member only (the full
//     suspicion record, reminders, verification).
//   - Flag events go to members with the flag or check role.
//   - Suspicion hits, retractions and expiries go to members with the
//     check or suspicion role.
//   - Subject erasures go to every member with the flag, check or
//     suspicion role.
func Entitled(m *api.Member, audience string, t protocol.EventType) bool {
	if audience != "" {
		return m.ID == audience
	}
	switch t {
	case protocol.EventFlagPlaced, protocol.EventFlagExtended, protocol.EventFlagThawed,
		protocol.EventFlagLifted, protocol.EventFlagExpired:
		return m.HasRole(api.RoleFlag) || m.HasRole(api.RoleCheck)
	case protocol.EventSuspicionReported, protocol.EventSuspicionRetracted, protocol.EventSuspicionExpired:
		return m.HasRole(api.RoleCheck) || m.HasRole(api.RoleSuspicion)
	case protocol.EventSubjectErased:
		return m.HasRole(api.RoleFlag) || m.HasRole(api.RoleCheck) || m.HasRole(api.RoleSuspicion)
	}
	return false
}
