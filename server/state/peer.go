package state

import "github.com/sparr-dev/sparr/protocol/api"

// KindPutPeer is the kind of a [PutPeer].
const KindPutPeer Kind = "put-peer"

// A PutPeer registers a peered hub through the operator API (there must
// be none with its id, nor one for its jurisdiction), or, with Remove,
// removes one (there must be one with its id). Peer holds no private key:
// its KeyFile names the node's key file, and KeyID the key's id (see
// docs/peering.md, Registration).
type PutPeer struct {
	Head
	Peer   *api.Peer `json:"peer"`
	Remove bool      `json:"remove,omitempty"`
}

// Kind returns [KindPutPeer].
func (*PutPeer) Kind() Kind { return KindPutPeer }

func (*PutPeer) isCommand() {}
