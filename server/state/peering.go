package state

// KindRelayEvent is the kind of [RelayEvent].
const KindRelayEvent Kind = "relay-event"

// A RelayEvent keeps a record a peered hub delivered: a record of the
// identifiers of another hub (its home hub), signed by that hub, which
// this hub fans out to its own members (and, while its via chain is
// shorter than the hop limit, to its own peers: Record.Peers) unchanged.
// Record.Via is the chain with this hub's own entry last. Peer is the id
// of the peer that delivered it, Home that of the home hub.
//
// The store takes each jti once: a record it holds, or has held, is a
// duplicate (see [RelayEvent] in the store's Result), and nothing is
// written. Erase deletes the earlier relayed records of the same flag
// when this one ends it (a lift or an expiry).
type RelayEvent struct {
	Head
	Peer   string  `json:"peer"`
	Home   string  `json:"home"`
	Record *Record `json:"record"`
	Erase  Erase   `json:"erase"`
}

func (*RelayEvent) Kind() Kind { return KindRelayEvent }
func (*RelayEvent) isCommand() {}
