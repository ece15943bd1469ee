package members

import (
	"slices"

	"github.com/sparr-dev/sparr/protocol"
	"github.com/sparr-dev/sparr/protocol/api"
)

// Entitled reports whether member m may receive a record of type t
// addressed to audience ("" for every member entitled by role): the rule
// for delivery, the feed, the snapshot and GET /v1/records alike.
//
//   - A record with an audience goes to that member only (a suspicion's
//     records to its reporter, reminders, verification, an erasure of a
//     subject that had suspicions but no flag, an access notice
//     (subject-checked) to the flag's origin, a check-denied to the
//     member that made the check).
//   - Access notices and denials without an audience go to no one: they
//     are always addressed.
//   - Flag events go to members with the flag or check role.
//   - Suspicion events go to no one by role: a suspicion never leaves
//     the hub in bulk. (Files of earlier versions hold suspicion "hit"
//     records without an audience; they go to no one either.)
//   - Subject erasures and payee records (and their expiry) go to every member with the
//     flag, check or suspicion role: every payment service provider
//     screens payees (PSR Art. 83).
//   - Dispute events always have an audience: each of the two members
//     of a dispute gets its own record. An access report is never
//     delivered, and goes to no one by role.
func Entitled(m *api.Member, audience string, t protocol.EventType) bool {
	if audience != "" {
		return m.ID == audience
	}
	switch t {
	case protocol.EventFlagPlaced, protocol.EventFlagExtended, protocol.EventFlagThawed,
		protocol.EventFlagLifted, protocol.EventFlagExpired:
		return m.HasRole(api.RoleFlag) || m.HasRole(api.RoleCheck)
	case protocol.EventSubjectErased, protocol.EventPayeeReported, protocol.EventPayeeExpired:
		return m.HasRole(api.RoleFlag) || m.HasRole(api.RoleCheck) || m.HasRole(api.RoleSuspicion)
	}
	return false
}

// EntitledPeer reports whether member m, another hub registered with role
// peer, may receive a record that goes to peers (the record's peers,
// decided when the hub signed or relayed it under each peer's policy):
// the rule beside [Entitled] for delivery and the feed. A peer gets no
// record by any other role it holds.
func EntitledPeer(m *api.Member, peers []string) bool {
	return m.HasRole(api.RolePeer) && slices.Contains(peers, m.ID)
}
