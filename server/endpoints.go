package server

import (
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/sparr-dev/sparr/federation/webhook"
	"github.com/sparr-dev/sparr/protocol"
	"github.com/sparr-dev/sparr/protocol/api"
	"github.com/sparr-dev/sparr/server/decide"
	"github.com/sparr-dev/sparr/server/state"
	"github.com/sparr-dev/sparr/server/store"
)

// endpointView is e as the API shows it, with its backlog and latest dead
// letters.
func (h *Hub) endpointView(e *webhook.Endpoint) (*api.Endpoint, error) {
	backlog, err := h.store.Backlog(e.Member)
	if err != nil {
		return nil, err
	}
	dead, err := h.store.DeadLetters(e.Member, 5)
	if err != nil {
		return nil, err
	}
	return decide.EndpointView(e, backlog, dead, h.now()), nil
}

// readEndpoint reads the calling member's endpoint, or nil if it has none.
func (h *Hub) readEndpoint(c *gin.Context) (*webhook.Endpoint, error) {
	return store.OrNil(h.store.Endpoint(member(c).ID))
}

// putEndpoint: PUT /v1/members/self/endpoint registers (or changes) the
// member's one webhook endpoint. A new endpoint gets a whsec_ secret, shown
// in this answer only, and a verification event; it counts as verified once
// that is delivered.
func (h *Hub) putEndpoint(c *gin.Context) {
	var req api.EndpointRequest
	if !h.readJSON(c, &req) {
		return
	}
	u, err := h.cfg.Targets.CheckURL(c, req.URL)
	if err != nil {
		h.fail(c, decide.FieldProblem(protocol.ProblemEndpointRefused, "url", "%v", err))
		return
	}
	events, err := decide.EndpointEvents(req)
	if err != nil {
		h.refuse(c, "register endpoint", err)
		return
	}
	m := member(c)
	var secret string
	cmd, res, ok := apply(h, c, "register endpoint", func(now time.Time) (*state.ChangeEndpoint, error) {
		old, err := h.readEndpoint(c)
		if err != nil {
			return nil, err
		}
		var cmd *state.ChangeEndpoint
		cmd, secret, err = h.decide.RegisterEndpoint(m, u.String(), events, old, now)
		return cmd, err
	})
	if !ok {
		return
	}
	status := http.StatusOK
	if cmd.Change.Secret != nil {
		status = http.StatusCreated
	}
	h.answerEndpoint(c, status, res, api.EndpointResponse{Secret: secret})
}

// answerEndpoint answers a change to the member's endpoint with its new
// state, and wakes its delivery.
func (h *Hub) answerEndpoint(c *gin.Context, status int, res *store.Result, resp api.EndpointResponse) {
	h.metrics.watch(member(c).ID)
	h.currentDispatcher().Notify(member(c).ID)
	v, err := h.endpointView(res.Endpoint)
	if err != nil {
		h.internal(c, "read endpoint", err)
		return
	}
	resp.Endpoint, resp.LogIndex = v, res.LogIndex
	c.JSON(status, resp)
}

// getEndpoint: GET /v1/members/self/endpoint.
func (h *Hub) getEndpoint(c *gin.Context) {
	v, err := h.endpointOf(c)
	switch {
	case err != nil:
		h.internal(c, "read endpoint", err)
	case v == nil:
		h.fail(c, decide.NoEndpoint(member(c).ID))
	default:
		c.JSON(http.StatusOK, api.EndpointResponse{Endpoint: v})
	}
}

// self: GET /v1/members/self, what the hub knows of the member that asks
// (see [decide.Decider.Self]): a member tests its bearer token with it. A
// suspended member is refused before this, as on every route.
func (h *Hub) self(c *gin.Context) {
	v, err := h.endpointOf(c)
	if err != nil {
		h.internal(c, "read endpoint", err)
		return
	}
	c.JSON(http.StatusOK, h.decide.Self(member(c), v))
}

// endpointOf returns the view of the asking member's endpoint, or nil if
// it has none.
func (h *Hub) endpointOf(c *gin.Context) (*api.Endpoint, error) {
	e, err := h.readEndpoint(c)
	if err != nil || e == nil {
		return nil, err
	}
	return h.endpointView(e)
}

// changeEndpoint applies a change to the member's endpoint, decided by
// change against the endpoint as stored; the change is applied to the
// endpoint as stored at that moment (see [state.EndpointChange]), and
// decided again if it no longer fits.
func (h *Hub) changeEndpoint(c *gin.Context, what string, change func(m *api.Member, e *webhook.Endpoint, now time.Time) (*state.ChangeEndpoint, error), resp *api.EndpointResponse) {
	m := member(c)
	_, res, ok := apply(h, c, what, func(now time.Time) (*state.ChangeEndpoint, error) {
		e, err := h.readEndpoint(c)
		if err != nil {
			return nil, err
		}
		return change(m, e, now)
	})
	if ok {
		h.answerEndpoint(c, http.StatusOK, res, *resp)
	}
}

// rotateSecret: POST /v1/members/self/endpoint/secret. The new secret
// signs at once; the one it replaces keeps signing for the overlap window,
// so the receiver can switch without losing a delivery; an older one stops.
func (h *Hub) rotateSecret(c *gin.Context) {
	var resp api.EndpointResponse
	h.changeEndpoint(c, "rotate endpoint secret", func(m *api.Member, e *webhook.Endpoint, now time.Time) (*state.ChangeEndpoint, error) {
		cmd, secret, until, err := h.decide.RotateSecret(m, e, now)
		resp.Secret, resp.PreviousSecretsValidUntil = secret, &until
		return cmd, err
	}, &resp)
}

// resumeEndpoint: POST /v1/members/self/endpoint/resume. Delivery starts
// again from the oldest queued event.
func (h *Hub) resumeEndpoint(c *gin.Context) {
	h.changeEndpoint(c, "resume endpoint", h.decide.ResumeEndpoint, &api.EndpointResponse{})
}

// deleteEndpoint: DELETE /v1/members/self/endpoint. Nothing more is queued
// or delivered; the feed still serves the member.
func (h *Hub) deleteEndpoint(c *gin.Context) {
	h.changeEndpoint(c, "remove endpoint", h.decide.RemoveEndpoint, &api.EndpointResponse{})
}

// listEndpoints: GET /v1/admin/endpoints, every member's endpoint.
func (h *Hub) listEndpoints(c *gin.Context) {
	eps, err := h.store.Endpoints()
	if err != nil {
		h.internal(c, "list endpoints", err)
		return
	}
	out := api.EndpointsResponse{Endpoints: []*api.Endpoint{}}
	for _, e := range eps {
		v, err := h.endpointView(e)
		if err != nil {
			h.internal(c, "read endpoint", err)
			return
		}
		out.Endpoints = append(out.Endpoints, v)
	}
	c.JSON(http.StatusOK, out)
}
