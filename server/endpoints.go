package server

import (
	"crypto/rand"
	"errors"
	"net/http"
	"slices"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/sparr-dev/sparr/federation/webhook"
	"github.com/sparr-dev/sparr/protocol"
	"github.com/sparr-dev/sparr/protocol/api"
	"github.com/sparr-dev/sparr/server/store"
)

// endpointRequest is the body of PUT /v1/members/self/endpoint.
type endpointRequest struct {
	URL string `json:"url"`
	// Events to subscribe to, by URN or short name; empty means all.
	Events []string `json:"events,omitempty"`
}

// An EndpointView is a member's endpoint as the API shows it. Secrets are
// never shown again after they are made.
type EndpointView struct {
	Member           string               `json:"member"`
	URL              string               `json:"url"`
	Events           []protocol.EventType `json:"events"`
	Status           api.EndpointStatus   `json:"status"`
	Verified         bool                 `json:"verified"`
	Reason           string               `json:"reason,omitempty"`
	Backlog          int                  `json:"backlog"`
	LastDeliveredSeq uint64               `json:"last_delivered_seq"`
	LastSuccessAt    *time.Time           `json:"last_success_at,omitempty"`
	LastError        string               `json:"last_error,omitempty"`
	LastErrorAt      *time.Time           `json:"last_error_at,omitempty"`
	Failures         int                  `json:"failures"`
	NextAttemptAt    *time.Time           `json:"next_attempt_at,omitempty"`
	Secrets          []SecretView         `json:"secrets"`
	DeadLetters      int                  `json:"dead_letters"`
	RecentDead       []DeadLetterView     `json:"recent_dead_letters,omitempty"`
	CreatedAt        time.Time            `json:"created_at"`
	UpdatedAt        time.Time            `json:"updated_at"`
}

// A SecretView says when a signing secret was made and until when it signs.
type SecretView struct {
	CreatedAt time.Time  `json:"created_at"`
	ExpiresAt *time.Time `json:"expires_at,omitempty"`
}

// A DeadLetterView is a delivery the receiver refused.
type DeadLetterView struct {
	Seq      uint64             `json:"seq"`
	Type     protocol.EventType `json:"type"`
	At       time.Time          `json:"at"`
	Status   int                `json:"status"`
	Response string             `json:"response,omitempty"`
}

func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

func (h *Hub) endpointView(e *webhook.Endpoint) (*EndpointView, error) {
	backlog, err := h.store.Backlog(e.Member)
	if err != nil {
		return nil, err
	}
	dead, err := h.store.DeadLetters(e.Member, 5)
	if err != nil {
		return nil, err
	}
	v := &EndpointView{
		Member: e.Member, URL: e.URL, Events: e.Events, Status: e.Status, Verified: e.Verified, Reason: e.Reason,
		Backlog: backlog, LastDeliveredSeq: e.LastDeliveredSeq, LastSuccessAt: timePtr(e.LastSuccessAt),
		LastError: e.LastError, LastErrorAt: timePtr(e.LastErrorAt), Failures: e.Failures,
		NextAttemptAt: timePtr(e.NextAttemptAt), DeadLetters: e.DeadLetters, CreatedAt: e.CreatedAt, UpdatedAt: e.UpdatedAt,
	}
	if v.Events == nil {
		v.Events = []protocol.EventType{}
	}
	v.Secrets = []SecretView{}
	now := h.now()
	for _, s := range e.Secrets {
		if s.ExpiresAt.IsZero() || now.Before(s.ExpiresAt) {
			v.Secrets = append(v.Secrets, SecretView{CreatedAt: s.CreatedAt, ExpiresAt: timePtr(s.ExpiresAt)})
		}
	}
	for _, d := range dead {
		v.RecentDead = append(v.RecentDead, DeadLetterView{Seq: d.Delivery.Seq, Type: d.Delivery.Type, At: d.Attempt.At, Status: d.Attempt.Status, Response: d.Attempt.Response})
	}
	return v, nil
}

// putEndpoint: PUT /v1/members/self/endpoint registers (or changes) the
// member's one webhook endpoint. A new endpoint gets a whsec_ secret, shown
// in this answer only, and a verification event; it counts as verified once
// that is delivered.
func (h *Hub) putEndpoint(c *gin.Context) {
	var req endpointRequest
	if !h.readJSON(c, &req) {
		return
	}
	u, err := h.cfg.Targets.CheckURL(c, req.URL)
	if err != nil {
		h.fail(c, fieldProblem(protocol.ProblemEndpointRefused, "url", "%v", err))
		return
	}
	var events []protocol.EventType
	for i, s := range req.Events {
		t, err := protocol.ParseEventType(s)
		if err != nil || t == protocol.EventVerification {
			h.fail(c, fieldProblem(protocol.ProblemValidation, "events", "events[%d] %q is not an event type to subscribe to", i, s))
			return
		}
		if !slices.Contains(events, t) {
			events = append(events, t)
		}
	}
	m := member(c)
	var secret string
	var fresh bool
	_, res, ok := h.apply(c, func() (*store.Command, *protocol.Problem) {
		now := h.now().UTC()
		old, err := h.store.Endpoint(m.ID)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return nil, h.internalProblem(c, "read endpoint", err)
		}
		ch := &store.EndpointChange{Op: store.EndpointRegister, Member: m.ID, URL: u.String(), Events: events}
		fresh, secret = old == nil || old.Status == api.EndpointDisabled, ""
		if fresh {
			ws, err := protocol.GenerateWebhookSecret(rand.Reader)
			if err != nil {
				return nil, h.internalProblem(c, "make secret", err)
			}
			secret = ws.Encode()
			ch.Secret = &webhook.EndpointSecret{Secret: secret, CreatedAt: now}
		} else {
			ch.Verify = old.URL != ch.URL
		}
		verify := fresh || ch.Verify
		var rec *store.Record
		if verify {
			if rec, err = h.sign(newID(), nil, m.ID, "", protocol.Verification{State: newID()}, now.Truncate(time.Second)); err != nil {
				return nil, h.internalProblem(c, "sign verification event", err)
			}
		}
		return &store.Command{
			At: now, Actor: m.ID, Action: protocol.LogEndpointRegistered,
			Attrs:    []protocol.LogAttr{{Key: "verification", Value: map[bool]string{true: "sent", false: "none"}[verify]}},
			Endpoint: ch, Record: rec,
		}, nil
	})
	if !ok {
		return
	}
	h.dispatcher.Notify(m.ID)
	v, err := h.endpointView(res.Endpoint)
	if err != nil {
		h.internal(c, "read endpoint", err)
		return
	}
	status := http.StatusOK
	if fresh {
		status = http.StatusCreated
	}
	c.JSON(status, gin.H{"endpoint": v, "secret": secret, "log_index": res.LogIndex})
}

// noEndpoint is the problem for a member without a webhook endpoint.
func noEndpoint(memberID string) *protocol.Problem {
	return problemf(protocol.ProblemNotFound, "member %q has no webhook endpoint; register one with PUT /v1/members/self/endpoint", memberID)
}

// myEndpoint reads the calling member's endpoint, or answers 404.
func (h *Hub) myEndpoint(c *gin.Context) (*webhook.Endpoint, bool) {
	e, err := h.store.Endpoint(member(c).ID)
	if errors.Is(err, store.ErrNotFound) {
		h.fail(c, noEndpoint(member(c).ID))
		return nil, false
	}
	if err != nil {
		h.internal(c, "read endpoint", err)
		return nil, false
	}
	return e, true
}

// getEndpoint: GET /v1/members/self/endpoint.
func (h *Hub) getEndpoint(c *gin.Context) {
	e, ok := h.myEndpoint(c)
	if !ok {
		return
	}
	v, err := h.endpointView(e)
	if err != nil {
		h.internal(c, "read endpoint", err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"endpoint": v})
}

// changeEndpoint applies a change to the member's endpoint, planned by
// change against the endpoint as read (a nil change answers with its
// problem), and answers with the endpoint's new state and anything extra.
// The change is applied to the endpoint as stored at that moment (see
// [store.EndpointChange]); if it no longer fits, it is planned again.
func (h *Hub) changeEndpoint(c *gin.Context, action protocol.LogAction, change func(e *webhook.Endpoint, now time.Time) (*store.EndpointChange, *protocol.Problem), extra gin.H) {
	m := member(c)
	_, res, ok := h.apply(c, func() (*store.Command, *protocol.Problem) {
		e, err := h.store.Endpoint(m.ID)
		if errors.Is(err, store.ErrNotFound) {
			return nil, noEndpoint(m.ID)
		}
		if err != nil {
			return nil, h.internalProblem(c, "read endpoint", err)
		}
		now := h.now().UTC()
		ch, prob := change(e, now)
		if prob != nil {
			return nil, prob
		}
		ch.Member = m.ID
		return &store.Command{At: now, Actor: m.ID, Action: action, Endpoint: ch}, nil
	})
	if !ok {
		return
	}
	h.dispatcher.Notify(m.ID)
	v, err := h.endpointView(res.Endpoint)
	if err != nil {
		h.internal(c, "read endpoint", err)
		return
	}
	out := gin.H{"endpoint": v, "log_index": res.LogIndex}
	for k, val := range extra {
		out[k] = val
	}
	c.JSON(http.StatusOK, out)
}

// rotateSecret: POST /v1/members/self/endpoint/secret. The new secret
// signs at once; the previous ones keep signing for the overlap window, so
// the receiver can switch without losing a delivery.
func (h *Hub) rotateSecret(c *gin.Context) {
	ws, err := protocol.GenerateWebhookSecret(rand.Reader)
	if err != nil {
		h.internal(c, "make secret", err)
		return
	}
	var until time.Time
	extra := gin.H{"secret": ws.Encode()}
	h.changeEndpoint(c, protocol.LogEndpointSecretRotated, func(_ *webhook.Endpoint, now time.Time) (*store.EndpointChange, *protocol.Problem) {
		until = now.Add(h.cfg.Delivery.SecretOverlap)
		extra["previous_secrets_valid_until"] = until
		return &store.EndpointChange{Op: store.EndpointRotate, Secret: &webhook.EndpointSecret{Secret: ws.Encode(), CreatedAt: now}, Until: until}, nil
	}, extra)
}

// resumeEndpoint: POST /v1/members/self/endpoint/resume. Delivery starts
// again from the oldest queued event.
func (h *Hub) resumeEndpoint(c *gin.Context) {
	h.changeEndpoint(c, protocol.LogEndpointResumed, func(e *webhook.Endpoint, _ time.Time) (*store.EndpointChange, *protocol.Problem) {
		if e.Status != api.EndpointPaused {
			return nil, problemf(protocol.ProblemStateConflict, "the endpoint is %s, not paused", e.Status)
		}
		return &store.EndpointChange{Op: store.EndpointResume}, nil
	}, nil)
}

// deleteEndpoint: DELETE /v1/members/self/endpoint. Nothing more is queued
// or delivered; the feed still serves the member.
func (h *Hub) deleteEndpoint(c *gin.Context) {
	h.changeEndpoint(c, protocol.LogEndpointRemoved, func(*webhook.Endpoint, time.Time) (*store.EndpointChange, *protocol.Problem) {
		return &store.EndpointChange{Op: store.EndpointRemove, Reason: "removed by the member"}, nil
	}, nil)
}

// listEndpoints: GET /v1/admin/endpoints, every member's endpoint.
func (h *Hub) listEndpoints(c *gin.Context) {
	eps, err := h.store.Endpoints()
	if err != nil {
		h.internal(c, "list endpoints", err)
		return
	}
	views := []*EndpointView{}
	for _, e := range eps {
		v, err := h.endpointView(e)
		if err != nil {
			h.internal(c, "read endpoint", err)
			return
		}
		views = append(views, v)
	}
	c.JSON(http.StatusOK, gin.H{"endpoints": views})
}
