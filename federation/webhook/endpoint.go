package webhook

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/sparr-dev/sparr/protocol"
	"github.com/sparr-dev/sparr/protocol/api"
)

// ErrNoEndpoint is returned, wrapped, by [Outbox.Endpoint] for a member
// that has no webhook endpoint.
var ErrNoEndpoint = errors.New("no webhook endpoint")

// An EndpointSecret is one whsec_ secret of an endpoint. A rotated-out
// secret keeps signing until ExpiresAt, so receivers can switch over.
type EndpointSecret struct {
	Secret    string    `json:"secret"`
	CreatedAt time.Time `json:"created_at"`
	ExpiresAt time.Time `json:"expires_at,omitzero"`
}

// The delivery methods of an OpenID Shared Signals Framework stream: the
// hub pushes (RFC 8935) or the receiver polls (RFC 8936).
const (
	DeliveryPush = "urn:ietf:rfc:8935"
	DeliveryPoll = "urn:ietf:rfc:8936"
)

// An Endpoint is a member's webhook subscription and the state of delivery
// to it. A member manages it through the endpoint API or as its one SSF
// stream (Delivery set); it is the same subscription either way.
type Endpoint struct {
	Member string               `json:"member"`
	URL    string               `json:"url"`              // empty when the member polls
	Events []protocol.EventType `json:"events,omitempty"` // empty: every event
	// Delivery is the SSF delivery method of an endpoint made as an SSF
	// stream ([DeliveryPush] or [DeliveryPoll]); empty for one registered
	// through the endpoint API, which the hub pushes to.
	Delivery string `json:"delivery,omitempty"`
	// Authorization is the SSF stream's authorization_header: a secret the
	// receiver gave, sent as the Authorization header of every push.
	Authorization string `json:"authorization,omitempty"`
	// Requested is the SSF stream's events_requested, as the receiver gave
	// them; Events are those of them the hub delivers.
	Requested []string `json:"requested,omitempty"`
	// Description is the SSF stream's description, from the receiver.
	Description string `json:"description,omitempty"`
	// Secrets sign deliveries (v1 HMAC), newest first.
	Secrets   []EndpointSecret   `json:"secrets"`
	Status    api.EndpointStatus `json:"status"`
	Reason    string             `json:"reason,omitempty"`
	Verified  bool               `json:"verified"`
	CreatedAt time.Time          `json:"created_at"`
	UpdatedAt time.Time          `json:"updated_at"`
	// Failures counts consecutive failed attempts; NextAttemptAt is when
	// delivery may be tried again.
	Failures         int       `json:"failures"`
	NextAttemptAt    time.Time `json:"next_attempt_at,omitzero"`
	LastDeliveredSeq uint64    `json:"last_delivered_seq"`
	LastSuccessAt    time.Time `json:"last_success_at,omitzero"`
	LastError        string    `json:"last_error,omitempty"`
	LastErrorAt      time.Time `json:"last_error_at,omitzero"`
	DeadLetters      int       `json:"dead_letters"`
}

// Wants reports whether the endpoint subscribes to events of type t. The
// verification event is always wanted.
func (e *Endpoint) Wants(t protocol.EventType) bool {
	return t == protocol.EventVerification || t == protocol.EventStreamVerification || len(e.Events) == 0 || slices.Contains(e.Events, t)
}

// Polled reports whether the member polls for its deliveries (RFC 8936)
// rather than the hub pushing them.
func (e *Endpoint) Polled() bool { return e.Delivery == DeliveryPoll }

// Verifies reports whether delivering an event of type t verifies the
// endpoint.
func Verifies(t protocol.EventType) bool {
	return t == protocol.EventVerification || t == protocol.EventStreamVerification
}

// Queues reports whether events are queued for the endpoint.
func (e *Endpoint) Queues() bool { return e.Status != api.EndpointDisabled }

// MaxSecrets is the most secrets an endpoint holds: the newest, and the
// one it replaced while that one's overlap lasts. A rotation during the
// overlap ends the overlap of the older one at once.
const MaxSecrets = 2

// Signs reports whether the secret signs at t: it has no end, or t is
// before it.
func (s EndpointSecret) Signs(t time.Time) bool { return s.ExpiresAt.IsZero() || t.Before(s.ExpiresAt) }

// Live returns the secrets that sign at t, newest first: those whose
// overlap has not ended, and of those the newest [MaxSecrets] only (an
// endpoint stored by an earlier version may hold more).
func (e *Endpoint) Live(t time.Time) []EndpointSecret {
	var out []EndpointSecret
	for _, s := range e.Secrets {
		if len(out) == MaxSecrets {
			break
		}
		if s.Signs(t) {
			out = append(out, s)
		}
	}
	return out
}

// SigningSecrets returns the secrets that sign at t (see [Endpoint.Live]).
// If one of them is not a secret the hub can sign with, it returns an
// error, which says which one (by position, never by value): signing with
// the others alone would have the receiver refuse the delivery for the
// hub's fault.
func (e *Endpoint) SigningSecrets(t time.Time) ([]protocol.WebhookSecret, error) {
	live := e.Live(t)
	out := make([]protocol.WebhookSecret, 0, len(live))
	for i, s := range live {
		ws, err := protocol.ParseWebhookSecret(s.Secret)
		if err != nil {
			return nil, fmt.Errorf("secret %d of %d of the endpoint of %q, made %s: %w", i+1, len(live), e.Member, s.CreatedAt.Format(time.RFC3339), err)
		}
		out = append(out, ws)
	}
	return out, nil
}

// A Delivery is one queued record for one member's endpoint.
type Delivery struct {
	Member  string             `json:"member"`
	Seq     uint64             `json:"seq"`      // the event's hub sequence number
	PrevSeq uint64             `json:"prev_seq"` // the member's previous event, for gap detection
	Record  string             `json:"record"`   // the record's jti
	Type    protocol.EventType `json:"type"`
	// WebhookID is the webhook-id of every attempt of this delivery.
	WebhookID  string    `json:"webhook_id"`
	Attempts   int       `json:"attempts"`
	EnqueuedAt time.Time `json:"enqueued_at"`
	// Body is the record's compact JWS, filled in when the delivery is
	// read; nil if the record was erased before it could be delivered
	// (a record is never deleted for any other reason while a delivery
	// of it is queued).
	Body []byte `json:"-"`
	// Via is the record's via chain, for a record relayed from a peered
	// hub (protocol.Via entries, sent in the Sparr-Via header); filled in
	// with Body.
	Via []string `json:"-"`
}

// An Attempt is the outcome of one delivery attempt.
type Attempt struct {
	At         time.Time     `json:"at"`
	Latency    time.Duration `json:"latency"`
	Status     int           `json:"status,omitempty"` // HTTP status, 0 if none was received
	Error      string        `json:"error,omitempty"`
	Response   string        `json:"response,omitempty"` // the start of the receiver's answer, for dead letters
	RetryAfter time.Duration `json:"retry_after,omitempty"`
	// URL is where the attempt went: the endpoint's URL when the
	// dispatcher read it. An outcome recorded after the member registered
	// another URL does not change the endpoint (see [Outbox]).
	URL string `json:"url,omitempty"`
}

// A DeadLetter is a delivery the receiver refused with a 4xx other than
// 410 and 429: kept with the response, for the member and the operator.
type DeadLetter struct {
	Delivery Delivery `json:"delivery"`
	Attempt  Attempt  `json:"attempt"`
}

// An Outbox is the durable queue of deliveries that a [Dispatcher] drains.
// The hub's store implements it; every method that changes state is
// durable when it returns. An outcome whose Attempt went to another URL
// than the endpoint's (the member registered a new one meanwhile) changes
// the delivery's row only, never the endpoint's state.
type Outbox interface {
	// Endpoints returns every endpoint.
	Endpoints() ([]*Endpoint, error)
	// Endpoint returns a member's endpoint, or an error wrapping
	// [ErrNoEndpoint] if it has none.
	Endpoint(member string) (*Endpoint, error)
	// Pending returns up to limit queued deliveries of a member, oldest
	// first, with their bodies.
	Pending(member string, limit int) ([]Delivery, error)
	// Delivered records a successful delivery: the row goes, the endpoint's
	// failures reset, and the exchange log gets an entry.
	Delivered(d Delivery, a Attempt) error
	// Skip drops a delivery whose record was erased (by a lift, an expiry
	// or a subject erasure) before it went out. It fails, dropping
	// nothing, if the record is still there.
	Skip(d Delivery) error
	// Retry records a failed attempt and when to try the endpoint again.
	Retry(d Delivery, a Attempt, next time.Time) error
	// Pause records a failed attempt that exhausted the retry schedule.
	Pause(d Delivery, a Attempt, reason string) error
	// DeadLetter moves a refused delivery aside.
	DeadLetter(d Delivery, a Attempt) error
	// Disable records a 410: the endpoint is disabled and its queue dropped.
	Disable(d Delivery, a Attempt, reason string) error
}
