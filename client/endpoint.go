package client

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/sparr-dev/sparr/protocol"
	"github.com/sparr-dev/sparr/protocol/api"
)

// Self asks the hub what it knows of the member: its id, name, roles and
// status, the quotas that apply to it, and its webhook endpoint if it has
// one. It is the call to make first: an answer means the member's key and
// bearer token verify at the hub. A suspended member gets an error
// matching [ErrSuspended]; a key or id the hub does not hold, one matching
// [ErrUnauthenticated], whose problem detail says what did not verify.
func (c *Client) Self(ctx context.Context) (*api.SelfResponse, error) {
	var a api.SelfResponse
	if err := c.call(ctx, request{method: http.MethodGet, path: "/v1/members/self"}, &a); err != nil {
		return nil, err
	}
	return &a, nil
}

// RegisterEndpoint registers url as the member's webhook endpoint, or
// changes its URL or the events it subscribes to (none means all). A new
// endpoint gets a signing secret, returned here only: store it, and give it
// to the [Receiver]. Changing an endpoint keeps its secrets and returns the
// zero secret. A new or changed URL is sent a verification event, which a
// [Receiver] accepts with the hub's webhook key before it knows the secret.
// A registration whose answer was lost is not sent again (the repeat would
// answer the zero secret; see [Retry]): read [Client.Endpoint], and if the
// endpoint was made, get a secret you know with [Client.RotateSecret].
func (c *Client) RegisterEndpoint(ctx context.Context, url string, events ...protocol.EventType) (protocol.WebhookSecret, *api.Endpoint, error) {
	req := api.EndpointRequest{URL: url}
	for _, e := range events {
		req.Events = append(req.Events, string(e))
	}
	body, err := json.Marshal(req)
	if err != nil {
		return protocol.WebhookSecret{}, nil, err
	}
	return c.endpointChange(ctx, request{method: http.MethodPut, path: "/v1/members/self/endpoint", contentType: "application/json", body: body})
}

// Endpoint reads the member's webhook endpoint and its delivery state.
func (c *Client) Endpoint(ctx context.Context) (*api.Endpoint, error) {
	var a api.EndpointResponse
	if err := c.call(ctx, request{method: http.MethodGet, path: "/v1/members/self/endpoint"}, &a); err != nil {
		return nil, err
	}
	return a.Endpoint, nil
}

// RotateSecret makes a new signing secret, returned here only. The
// previous secrets keep signing for a while (24 hours by default; see the
// endpoint's Secrets), so add the new one to the [Receiver] and drop the
// old one after that. A rotation whose answer was lost is not sent again
// (see [Retry]).
func (c *Client) RotateSecret(ctx context.Context) (protocol.WebhookSecret, *api.Endpoint, error) {
	return c.endpointChange(ctx, request{method: http.MethodPost, path: "/v1/members/self/endpoint/secret"})
}

// ResumeEndpoint starts delivery again to a paused endpoint, from the
// oldest queued event. One whose answer was lost is not sent again (a
// repeat is refused, the endpoint no longer paused; see [Retry]).
func (c *Client) ResumeEndpoint(ctx context.Context) (*api.Endpoint, error) {
	_, e, err := c.endpointChange(ctx, request{method: http.MethodPost, path: "/v1/members/self/endpoint/resume"})
	return e, err
}

// RemoveEndpoint stops deliveries and drops what was queued; the feed
// still serves the member.
func (c *Client) RemoveEndpoint(ctx context.Context) (*api.Endpoint, error) {
	_, e, err := c.endpointChange(ctx, request{method: http.MethodDelete, path: "/v1/members/self/endpoint", idempotent: true})
	return e, err
}

func (c *Client) endpointChange(ctx context.Context, r request) (protocol.WebhookSecret, *api.Endpoint, error) {
	var a api.EndpointResponse
	if err := c.call(ctx, r, &a); err != nil {
		return protocol.WebhookSecret{}, nil, err
	}
	if a.Secret == "" {
		return protocol.WebhookSecret{}, a.Endpoint, nil
	}
	s, err := protocol.ParseWebhookSecret(a.Secret)
	if err != nil {
		return protocol.WebhookSecret{}, a.Endpoint, fmt.Errorf("%s: the secret in the answer: %w", r.op(), err)
	}
	return s, a.Endpoint, nil
}
