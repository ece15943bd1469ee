package api

import (
	"time"

	"github.com/sparr-dev/sparr/protocol"
)

// An EndpointStatus is where a member's webhook endpoint is in its life.
type EndpointStatus string

// The endpoint statuses.
const (
	// EndpointUnverified: registered; the verification event has not yet
	// been delivered. Events queue for it meanwhile.
	EndpointUnverified EndpointStatus = "unverified"
	// EndpointActive: verified and receiving events.
	EndpointActive EndpointStatus = "active"
	// EndpointPaused: the retry schedule ran out. Events keep queueing;
	// delivery starts again when the member resumes the endpoint.
	EndpointPaused EndpointStatus = "paused"
	// EndpointDisabled: the receiver answered 410 Gone, or the member
	// removed the endpoint. Nothing queues for it.
	EndpointDisabled EndpointStatus = "disabled"
)

// An EndpointRequest is the body of PUT /v1/members/self/endpoint.
type EndpointRequest struct {
	URL string `json:"url"`
	// Events to subscribe to, by URN or short name; empty means all.
	Events []string `json:"events,omitempty"`
}

// An Endpoint is a member's webhook endpoint and the state of delivery to
// it. Secrets are never shown again after they are made.
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
	// There are at most two: the newest, and the one it replaced while
	// that one's overlap lasts.
	Secrets []EndpointSecret `json:"secrets"`
	// DeadLetters counts deliveries the receiver refused; the latest are
	// in RecentDeadLetters.
	DeadLetters       int          `json:"dead_letters"`
	RecentDeadLetters []DeadLetter `json:"recent_dead_letters,omitempty"`
	CreatedAt         time.Time    `json:"created_at"`
	UpdatedAt         time.Time    `json:"updated_at"`
}

// An EndpointSecret says when a signing secret was made and, for one
// rotated out, until when it signs.
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

// An EndpointResponse is the answer about the member's endpoint. Secret is
// the new whsec_ secret of a new endpoint or a rotation, shown in that
// answer only (empty otherwise); PreviousSecretsValidUntil is, after a
// rotation, when the secret it replaced stops signing (a secret older
// still, left from an earlier rotation's overlap, stopped at once). LogIndex is the
// entry of the change it answers; reads leave it out.
type EndpointResponse struct {
	Endpoint                  *Endpoint  `json:"endpoint"`
	Secret                    string     `json:"secret,omitempty"`
	PreviousSecretsValidUntil *time.Time `json:"previous_secrets_valid_until,omitempty"`
	LogIndex                  uint64     `json:"log_index,omitempty"`
}

// An EndpointsResponse is the answer of GET /v1/admin/endpoints: every
// member's endpoint.
type EndpointsResponse struct {
	Endpoints []*Endpoint `json:"endpoints"`
}
