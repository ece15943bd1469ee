package decide

import (
	"strings"
	"time"

	"github.com/sparr-dev/sparr/protocol"
	"github.com/sparr-dev/sparr/protocol/api"
	"github.com/sparr-dev/sparr/server/state"
)

// RegisterPeer decides the operator op's registration of a peered hub
// through the API, for a hub of jurisdiction home whose registered peers
// (from the peers file and the API) are peers. kid is the key id of the
// private key the node holds in req.KeyFile, which the hub read. A peer
// for the hub's own jurisdiction, or for one another peer already has, is
// refused, as is one with an id already taken.
func (d *Decider) RegisterPeer(op *api.Member, home string, peers []*api.Peer, req api.PeerRequest, kid string, now time.Time) (*state.PutPeer, error) {
	if err := req.Validate(); err != nil {
		field, detail, _ := strings.Cut(strings.TrimPrefix(err.Error(), api.ErrInvalidPeer.Error()+": "), ": ")
		return nil, FieldProblem(protocol.ProblemValidation, field, "%s", detail)
	}
	switch {
	case home == "":
		return nil, problemf(protocol.ProblemValidation, "this hub has no jurisdiction, so it relays nothing; start it with one (sparr serve --jurisdiction) to register peers")
	case req.Jurisdiction == home:
		return nil, FieldProblem(protocol.ProblemValidation, "jurisdiction", "%s is this hub's own jurisdiction; a peer is the home hub of another", req.Jurisdiction)
	}
	for _, p := range peers {
		switch {
		case p.ID == req.ID:
			return nil, problemf(protocol.ProblemStateConflict, "peer %q is registered already (%s); remove it first to register it anew", req.ID, p.Source)
		case p.Jurisdiction == req.Jurisdiction:
			return nil, problemf(protocol.ProblemStateConflict, "peer %q is registered already for jurisdiction %s (%s); a hub has one peer per jurisdiction", p.ID, p.Jurisdiction, p.Source)
		}
	}
	now = now.UTC()
	p := &api.Peer{PeerRequest: req, KeyID: kid, Source: api.PeerFromAPI, CreatedAt: &now}
	h := d.head(op.ID, protocol.LogPeerRegistered, now, p, nil,
		protocol.LogAttr{Key: "peer", Value: p.ID}, protocol.LogAttr{Key: "jurisdiction", Value: p.Jurisdiction})
	return &state.PutPeer{Head: h, Peer: p}, nil
}

// RemovePeer decides the operator op's removal of peer p, registered
// through the API (nil: there is none with the id). A peer of the peers
// file is removed by changing the file.
func (d *Decider) RemovePeer(op *api.Member, id string, p *api.Peer, now time.Time) (*state.PutPeer, error) {
	switch {
	case p == nil:
		return nil, problemf(protocol.ProblemNotFound, "no peer %s", Quote(id))
	case p.Source != api.PeerFromAPI:
		return nil, problemf(protocol.ProblemStateConflict, "peer %q comes from the peers file; remove it there and restart the hub", id)
	}
	h := d.head(op.ID, protocol.LogPeerRemoved, now.UTC(), nil, nil,
		protocol.LogAttr{Key: "peer", Value: p.ID}, protocol.LogAttr{Key: "jurisdiction", Value: p.Jurisdiction})
	return &state.PutPeer{Head: h, Peer: p, Remove: true}, nil
}

// PeerConflict is the problem for a [state.PutPeer] the store refused: a
// peer registered meanwhile with its id or jurisdiction, or removed.
func PeerConflict(c *state.PutPeer) *protocol.Problem {
	if c.Remove {
		return problemf(protocol.ProblemNotFound, "no peer %s", Quote(c.Peer.ID))
	}
	return problemf(protocol.ProblemStateConflict, "a peer with id %q or for jurisdiction %s is registered already", c.Peer.ID, c.Peer.Jurisdiction)
}
