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

// KindPeerCursor is the kind of [PeerCursor].
const KindPeerCursor Kind = "peer-cursor"

// A PeerCursor keeps how far the hub has read a peer's feed (GET
// /v1/events, as its member there): the cursor to ask with next. It is
// part of the replicated state, so that a restarted or restored hub, or
// another node, resumes reading where the hub stopped. It writes no log
// entry: the records it led to are logged as they are taken.
type PeerCursor struct {
	Peer  string `json:"peer"`
	After uint64 `json:"after"`
}

func (*PeerCursor) Kind() Kind    { return KindPeerCursor }
func (*PeerCursor) isCommand()    {}
func (*PeerCursor) Header() *Head { return nil }
