package decide

import (
	"encoding/hex"
	"strings"
	"time"

	"github.com/sparr-dev/sparr/protocol"
	"github.com/sparr-dev/sparr/protocol/api"
	"github.com/sparr-dev/sparr/server/state"
)

// RelayedMemberID is the id under which a home hub knows member of peer,
// whose writes peer relayed: "<peer>.<member>" ("hub-se.bank-a"). It is
// the origin of the records it signs for them, the member of their log
// entries and the key its replays are recognised by, and it can never be a
// member id of the home hub's own, whose ids have no '.'.
func RelayedMemberID(peer, member string) string { return peer + "." + member }

// controller is the member id a consent's controller must be for member
// id: the member's own, at its own hub, for a relayed member (the member
// collected the consent, not its hub).
func controller(id string) string {
	if _, local, ok := strings.Cut(id, "."); ok {
		return local
	}
	return id
}

// RelayedWrite decides the record of member m's signed submission s (whose
// bytes hash to hash) about identifiers of peer's, logged here before it
// is relayed to peer, the identifiers' home hub: which request it was, and
// where it went. Its details commit to the submission's jti and hash, not
// to its tokens, which this hub keeps no record of.
func (d *Decider) RelayedWrite(m *api.Member, s *protocol.Submission, hash []byte, peer string, now time.Time) *state.Note {
	action := string(s.Request.Action())
	return &state.Note{Head: d.head(m.ID, protocol.LogWriteRelayed, now,
		map[string]string{"jti": s.ID, "request": action, "submission_sha256": hex.EncodeToString(hash), "home": peer}, nil,
		protocol.LogAttr{Key: "request", Value: action}, protocol.LogAttr{Key: "home", Value: peer})}
}
