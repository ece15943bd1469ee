package client

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/sparr-dev/sparr/protocol"
)

// An EndpointStatus is where a webhook endpoint is in its life.
type EndpointStatus string

// The endpoint statuses.
const (
	// EndpointUnverified: registered; the verification event has not yet
	// been delivered. Events queue meanwhile.
	EndpointUnverified EndpointStatus = "unverified"
	// EndpointActive: verified and receiving events.
	EndpointActive EndpointStatus = "active"
	// EndpointPaused: the retry schedule ran out; events keep queueing
	// until [Client.ResumeEndpoint].
	EndpointPaused EndpointStatus = "paused"
	// EndpointDisabled: removed, or the receiver answered 410 Gone.
	EndpointDisabled EndpointStatus = "disabled"
)

// An Endpoint is the member's webhook endpoint and the state of delivery
// to it.
type Endpoint struct {
	Member string `json:"member"`
	URL    string `json:"url"`
	// Events are the subscribed event types; empty means all.
	Events   []protocol.EventType `json:"events"`
	Status   EndpointStatus       `json:"status"`
	Verified bool                 `json:"verified"`
	// Reason says why the endpoint is paused or disabled.
	Reason string `json:"reason,omitempty"`
	// Backlog is how many deliveries wait for the endpoint.
	Backlog          int       `json:"backlog"`
	LastDeliveredSeq uint64    `json:"last_delivered_seq"`
	LastSuccessAt    time.Time `json:"last_success_at,omitzero"`
	LastError        string    `json:"last_error,omitempty"`
	LastErrorAt      time.Time `json:"last_error_at,omitzero"`
	// Failures counts failed attempts in a row.
	Failures      int       `json:"failures"`
	NextAttemptAt time.Time `json:"next_attempt_at,omitzero"`
	// Secrets are the secrets that sign deliveries now, without their
	// values: when each was made, and until when a rotated-out one signs.
	Secrets []EndpointSecret `json:"secrets"`
	// DeadLetters counts deliveries the receiver refused.
	DeadLetters       int          `json:"dead_letters"`
	RecentDeadLetters []DeadLetter `json:"recent_dead_letters,omitempty"`
	CreatedAt         time.Time    `json:"created_at"`
	UpdatedAt         time.Time    `json:"updated_at"`
}

// An EndpointSecret says when a signing secret was made and, for one
// rotated out, until when it signs. Its value is shown only once, when it
// is made.
type EndpointSecret struct {
	CreatedAt time.Time `json:"created_at"`
	ExpiresAt time.Time `json:"expires_at,omitzero"`
}

// A DeadLetter is a delivery the receiver refused with a 4xx answer.
type DeadLetter struct {
	Seq    uint64             `json:"seq"`
	Type   protocol.EventType `json:"type"`
	At     time.Time          `json:"at"`
	Status int                `json:"status"`
	// Response is the start of the receiver's answer.
	Response string `json:"response,omitempty"`
}

type endpointAnswer struct {
	Endpoint *Endpoint `json:"endpoint"`
	Secret   string    `json:"secret"`
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
func (c *Client) RegisterEndpoint(ctx context.Context, url string, events ...protocol.EventType) (protocol.WebhookSecret, *Endpoint, error) {
	req := map[string]any{"url": url}
	if len(events) > 0 {
		req["events"] = events
	}
	body, err := json.Marshal(req)
	if err != nil {
		return protocol.WebhookSecret{}, nil, err
	}
	return c.endpointChange(ctx, request{method: http.MethodPut, path: "/v1/members/self/endpoint", contentType: "application/json", body: body})
}

// Endpoint reads the member's webhook endpoint and its delivery state.
func (c *Client) Endpoint(ctx context.Context) (*Endpoint, error) {
	var a endpointAnswer
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
func (c *Client) RotateSecret(ctx context.Context) (protocol.WebhookSecret, *Endpoint, error) {
	return c.endpointChange(ctx, request{method: http.MethodPost, path: "/v1/members/self/endpoint/secret"})
}

// ResumeEndpoint starts delivery again to a paused endpoint, from the
// oldest queued event. One whose answer was lost is not sent again (a
// repeat is refused, the endpoint no longer paused; see [Retry]).
func (c *Client) ResumeEndpoint(ctx context.Context) (*Endpoint, error) {
	_, e, err := c.endpointChange(ctx, request{method: http.MethodPost, path: "/v1/members/self/endpoint/resume"})
	return e, err
}

// RemoveEndpoint stops deliveries and drops what was queued; the feed
// still serves the member.
func (c *Client) RemoveEndpoint(ctx context.Context) (*Endpoint, error) {
	_, e, err := c.endpointChange(ctx, request{method: http.MethodDelete, path: "/v1/members/self/endpoint", idempotent: true})
	return e, err
}

func (c *Client) endpointChange(ctx context.Context, r request) (protocol.WebhookSecret, *Endpoint, error) {
	var a endpointAnswer
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
