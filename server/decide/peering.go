package decide

import (
	"strconv"
	"time"

	"github.com/sparr-dev/sparr/protocol"
	"github.com/sparr-dev/sparr/server/state"
)

// RelayEvent decides to keep rec, a record of home's identifiers that
// peer delivered (signed by home, its via chain ending with this hub's
// entry), and fan it out: to this hub's members entitled to it, and to
// rec.Peers. earlier are the relayed records of the same flag this hub
// still holds, which a lift or an expiry erases. Its log entry is
// peer-event by peer, naming no token.
func (d *Decider) RelayEvent(peer, home string, rec *state.Record, earlier []string, now time.Time) *state.RelayEvent {
	c := &state.RelayEvent{Head: d.head(peer, protocol.LogPeerEvent, now, nil, nil, peerEventAttrs(peer, home, rec.Type, len(rec.Via))...),
		Peer: peer, Home: home, Record: rec}
	switch rec.Type {
	case protocol.EventFlagLifted:
		c.Erase = state.Erase{Records: earlier, Basis: "consent-withdrawn"}
	case protocol.EventFlagExpired:
		c.Erase = state.Erase{Records: earlier, Basis: "flag-expired"}
	}
	return c
}

// PeerEventRefused decides the log entry of a record of type t, from
// home's identifiers, that peer delivered and this hub's policy does not
// let flow: peer-event rejected:policy, and nothing kept.
func (d *Decider) PeerEventRefused(peer, home string, t protocol.EventType, hop int, now time.Time) *state.Note {
	h := d.head(peer, protocol.LogPeerEvent, now, nil, nil, peerEventAttrs(peer, home, t, hop)...)
	h.Entry.Result = "rejected:policy"
	return &state.Note{Head: h}
}

func peerEventAttrs(peer, home string, t protocol.EventType, hop int) []protocol.LogAttr {
	return []protocol.LogAttr{{Key: "peer", Value: peer}, {Key: "home", Value: home},
		{Key: "type", Value: t.Short()}, {Key: "hop", Value: strconv.Itoa(hop)}}
}
