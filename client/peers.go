package client

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"

	"github.com/sparr-dev/sparr/protocol/api"
)

// Peers returns the hub's peered hubs: those of its peers file, then those
// registered through the API. The operator's call.
func (c *Client) Peers(ctx context.Context) ([]*api.Peer, error) {
	var out api.PeersResponse
	if err := c.call(ctx, request{method: http.MethodGet, path: "/v1/admin/peers"}, &out); err != nil {
		return nil, err
	}
	return out.Peers, nil
}

// AddPeer registers a peered hub (docs/peering.md): req.KeyFile names this
// hub's private key for the peer in the peer key directory of the hub's
// nodes, where the operator put it; the key itself is never sent. A peer
// with the id or jurisdiction of one registered is [ErrStateConflict]; a
// malformed one, or a key file the hub cannot read, [ErrValidation]. Like
// [Client.AddMember], it is not sent again when its answer is lost.
func (c *Client) AddPeer(ctx context.Context, req api.PeerRequest) (*api.PeerResponse, error) {
	b, err := json.Marshal(req)
	if err != nil {
		return nil, err
	}
	out := new(api.PeerResponse)
	if err := c.call(ctx, request{method: http.MethodPost, path: "/v1/admin/peers", contentType: "application/json", body: b}, out); err != nil {
		return nil, err
	}
	return out, nil
}

// RemovePeer removes a peer registered through the API; [ErrNotFound] if
// there is none with the id.
func (c *Client) RemovePeer(ctx context.Context, id string) (*api.PeerResponse, error) {
	out := new(api.PeerResponse)
	if err := c.call(ctx, request{method: http.MethodDelete, path: "/v1/admin/peers/" + url.PathEscape(id)}, out); err != nil {
		return nil, err
	}
	return out, nil
}
