package server

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/sparr-dev/sparr/federation/webhook"
	"github.com/sparr-dev/sparr/protocol"
	"github.com/sparr-dev/sparr/protocol/api"
	"github.com/sparr-dev/sparr/server/decide"
	"github.com/sparr-dev/sparr/server/state"
)

// The OpenID Shared Signals Framework 1.0 transmitter. A member's stream
// is its webhook endpoint: creating a stream registers the endpoint,
// push delivery is the hub's webhook delivery (RFC 8935), and poll
// delivery (RFC 8936) serves the same queue to the member's own POST.
// See docs/delivery.md.

// The SSF routes' paths.
const (
	ssfStreamPath = "/v1/ssf/stream"
	ssfStatusPath = "/v1/ssf/status"
	ssfVerifyPath = "/v1/ssf/verify"
	ssfPollPath   = "/v1/ssf/poll"
)

// Poll limits: the SETs one poll returns when it does not say, and at most;
// how many acknowledgements and errors it may carry; how long a poll
// without returnImmediately waits for a SET by default.
const (
	DefaultPollEvents = 100
	MaxPollEvents     = 1000
	DefaultPollWait   = 20 * time.Second
)

func (h *Hub) ssfURL(path string) string { return strings.TrimSuffix(h.cfg.Issuer, "/") + path }

// ssfConfiguration: GET /.well-known/ssf-configuration, the Transmitter
// Configuration Metadata.
func (h *Hub) ssfConfiguration(c *gin.Context) {
	c.Header("Cache-Control", "public, max-age=300")
	c.JSON(http.StatusOK, api.SSFConfiguration{
		SpecVersion:              api.SSFSpecVersion,
		Issuer:                   h.cfg.Issuer,
		JWKSURI:                  h.ssfURL("/.well-known/jwks.json"),
		DeliveryMethodsSupported: []string{webhook.DeliveryPush, webhook.DeliveryPoll},
		ConfigurationEndpoint:    h.ssfURL(ssfStreamPath),
		StatusEndpoint:           h.ssfURL(ssfStatusPath),
		VerificationEndpoint:     h.ssfURL(ssfVerifyPath),
		AuthorizationSchemes:     []api.AuthorizationScheme{{SpecURN: "urn:ietf:rfc:6750"}},
		DefaultSubjects:          "ALL",
	})
}

// ssfFail answers an SSF route's refusal: a problem as it is, anything
// else as [Hub.refuse] does.
func (h *Hub) ssfFail(c *gin.Context, err error) {
	var p *protocol.Problem
	if errors.As(err, &p) {
		h.fail(c, p)
		return
	}
	h.refuse(c, "SSF request", err)
}

// stream reads the member's endpoint as its stream: nil if it has none or
// it is disabled (a deleted stream), or if streamID names another.
func (h *Hub) stream(c *gin.Context, streamID string) (*webhook.Endpoint, bool) {
	e, err := h.readEndpoint(c)
	if err != nil {
		h.internal(c, "read endpoint", err)
		return nil, false
	}
	if e == nil || e.Status == api.EndpointDisabled || (streamID != "" && streamID != member(c).ID) {
		return nil, true
	}
	return e, true
}

// streamID reads the stream_id query parameter that a route requires.
func (h *Hub) streamID(c *gin.Context) (string, bool) {
	id := c.Query("stream_id")
	if id == "" {
		h.ssfFail(c, decide.ParamProblem(protocol.ProblemMalformedRequest, "stream_id", "is required"))
		return "", false
	}
	return id, true
}

// createStream: POST /v1/ssf/stream. A member has one stream: a second is
// a 409.
func (h *Hub) createStream(c *gin.Context) {
	var req api.StreamRequest
	if !h.readJSON(c, &req) {
		return
	}
	h.putStream(c, &req, false, http.StatusCreated)
}

// putStream decides and applies a stream's creation (status 201), update
// (patch) or replacement, and answers the stream's configuration.
func (h *Hub) putStream(c *gin.Context, req *api.StreamRequest, patch bool, status int) {
	m := member(c)
	creating := status == http.StatusCreated
	if !creating {
		if req.StreamID == "" {
			h.ssfFail(c, decide.FieldProblem(protocol.ProblemMalformedRequest, "stream_id", "is required"))
			return
		}
		if req.StreamID != m.ID {
			h.ssfFail(c, decide.NoStream(m.ID))
			return
		}
	} else if req.StreamID != "" {
		h.ssfFail(c, decide.FieldProblem(protocol.ProblemMalformedRequest, "stream_id", "is chosen by the hub; leave it out"))
		return
	}
	current, ok := h.stream(c, "")
	if !ok {
		return
	}
	switch {
	case creating && current != nil:
		h.ssfFail(c, protocol.NewProblem(protocol.ProblemStateConflict, "member %q has a stream already (stream_id %q); a member has one: read it with GET, change it with PATCH or PUT", m.ID, m.ID))
		return
	case !creating && current == nil:
		h.ssfFail(c, decide.NoStream(m.ID))
		return
	}
	spec, err := decide.StreamRequestSpec(m, req, current, patch, h.cfg.Issuer, h.ssfURL(ssfPollPath))
	if err != nil {
		h.ssfFail(c, err)
		return
	}
	if spec.Delivery == webhook.DeliveryPush {
		u, err := h.cfg.Targets.CheckURL(c, spec.URL)
		if err != nil {
			h.ssfFail(c, decide.FieldProblem(protocol.ProblemEndpointRefused, "delivery.endpoint_url", "%v", err))
			return
		}
		spec.URL = u.String()
	}
	_, res, ok := apply(h, c, "register stream", func(now time.Time) (*state.ChangeEndpoint, error) {
		old, err := h.readEndpoint(c)
		if err != nil {
			return nil, err
		}
		if creating && old != nil && old.Status != api.EndpointDisabled {
			return nil, protocol.NewProblem(protocol.ProblemStateConflict, "member %q has a stream already", m.ID)
		}
		return h.decide.RegisterStream(m, spec, old, now)
	})
	if !ok {
		return
	}
	h.metrics.watch(m.ID)
	h.currentDispatcher().Notify(m.ID)
	h.polls.notify(m.ID)
	logIndexHeader(c, res.LogIndex)
	c.Header("Cache-Control", "no-store")
	c.JSON(status, decide.StreamView(m, res.Endpoint, h.cfg.Issuer, h.ssfURL(ssfPollPath)))
}

// readStream: GET /v1/ssf/stream, the member's stream, or with no
// stream_id the list of its streams (none or one).
func (h *Hub) readStream(c *gin.Context) {
	m := member(c)
	id := c.Query("stream_id")
	e, ok := h.stream(c, id)
	if !ok {
		return
	}
	c.Header("Cache-Control", "no-store")
	switch {
	case id == "" && e == nil:
		c.JSON(http.StatusOK, []*api.Stream{})
	case id == "":
		c.JSON(http.StatusOK, []*api.Stream{decide.StreamView(m, e, h.cfg.Issuer, h.ssfURL(ssfPollPath))})
	case e == nil:
		h.ssfFail(c, decide.NoStream(m.ID))
	default:
		c.JSON(http.StatusOK, decide.StreamView(m, e, h.cfg.Issuer, h.ssfURL(ssfPollPath)))
	}
}

// updateStream: PATCH /v1/ssf/stream changes the properties given.
func (h *Hub) updateStream(c *gin.Context) {
	var req api.StreamRequest
	if h.readJSON(c, &req) {
		h.putStream(c, &req, true, http.StatusOK)
	}
}

// replaceStream: PUT /v1/ssf/stream replaces the receiver's properties;
// one left out is cleared (no delivery: poll).
func (h *Hub) replaceStream(c *gin.Context) {
	var req api.StreamRequest
	if h.readJSON(c, &req) {
		h.putStream(c, &req, false, http.StatusOK)
	}
}

// deleteStream: DELETE /v1/ssf/stream?stream_id= removes the stream: the
// endpoint is removed and what is queued for it dropped.
func (h *Hub) deleteStream(c *gin.Context) {
	id, ok := h.streamID(c)
	if !ok {
		return
	}
	e, ok := h.stream(c, id)
	switch {
	case !ok:
		return
	case e == nil:
		h.ssfFail(c, decide.NoStream(member(c).ID))
		return
	}
	if h.changeStream(c, "remove stream", func(m *api.Member, e *webhook.Endpoint, now time.Time) (*state.ChangeEndpoint, error) {
		return h.decide.SetStreamStatus(m, e, api.StreamStatus{StreamID: id, Status: api.StreamDisabled, Reason: "deleted by the receiver"}, now)
	}) {
		c.Header("Cache-Control", "no-store")
		c.Status(http.StatusNoContent)
	}
}

// changeStream applies a change of the member's stream, decided against
// the endpoint as stored; a change that needs no command (a status the
// stream has already) applies nothing. It answers nothing on success.
func (h *Hub) changeStream(c *gin.Context, what string, change func(m *api.Member, e *webhook.Endpoint, now time.Time) (*state.ChangeEndpoint, error)) bool {
	m := member(c)
	e, ok := h.readEndpointOr500(c)
	if !ok {
		return false
	}
	cmd, err := change(m, e, h.now())
	switch {
	case err != nil:
		h.ssfFail(c, err)
		return false
	case cmd == nil:
		return true
	}
	_, res, ok := apply(h, c, what, func(now time.Time) (*state.ChangeEndpoint, error) {
		e, err := h.readEndpoint(c)
		if err != nil {
			return nil, err
		}
		cmd, err := change(m, e, now)
		if cmd == nil && err == nil {
			err = protocol.NewProblem(protocol.ProblemStateConflict, "the stream changed while this request was applied; read its status and try again")
		}
		return cmd, err
	})
	if ok {
		h.currentDispatcher().Notify(m.ID)
		h.polls.notify(m.ID)
		logIndexHeader(c, res.LogIndex)
	}
	return ok
}

// logIndexHeader names the log entry of an SSF change in the
// X-Sparr-Log-Index header, since SSF's answers have no room for it.
func logIndexHeader(c *gin.Context, index uint64) {
	c.Header("X-Sparr-Log-Index", strconv.FormatUint(index, 10))
}

// streamStatus: GET /v1/ssf/status?stream_id=.
func (h *Hub) streamStatus(c *gin.Context) {
	id, ok := h.streamID(c)
	if !ok {
		return
	}
	e, ok := h.stream(c, id)
	switch {
	case !ok:
	case e == nil:
		h.ssfFail(c, decide.NoStream(member(c).ID))
	default:
		c.Header("Cache-Control", "no-store")
		c.JSON(http.StatusOK, decide.StreamStatusOf(e))
	}
}

// setStreamStatus: POST /v1/ssf/status: enabled, paused or disabled.
func (h *Hub) setStreamStatus(c *gin.Context) {
	var req api.StreamStatus
	if !h.readJSON(c, &req) || !h.hasStream(c, req.StreamID) {
		return
	}
	if !h.changeStream(c, "set stream status", func(m *api.Member, e *webhook.Endpoint, now time.Time) (*state.ChangeEndpoint, error) {
		return h.decide.SetStreamStatus(m, e, req, now)
	}) {
		return
	}
	after, ok := h.readEndpointOr500(c)
	if !ok {
		return
	}
	s := api.StreamStatus{StreamID: req.StreamID, Status: api.StreamDisabled, Reason: req.Reason}
	if after != nil {
		s = decide.StreamStatusOf(after)
	}
	c.Header("Cache-Control", "no-store")
	c.JSON(http.StatusOK, s)
}

// hasStream reports whether the body's stream_id names the member's
// stream, and answers the problem if not.
func (h *Hub) hasStream(c *gin.Context, streamID string) bool {
	if streamID == "" {
		h.ssfFail(c, decide.FieldProblem(protocol.ProblemMalformedRequest, "stream_id", "is required"))
		return false
	}
	e, ok := h.stream(c, streamID)
	if ok && e == nil {
		h.ssfFail(c, decide.NoStream(member(c).ID))
	}
	return ok && e != nil
}

func (h *Hub) readEndpointOr500(c *gin.Context) (*webhook.Endpoint, bool) {
	e, err := h.readEndpoint(c)
	if err != nil {
		h.internal(c, "read endpoint", err)
		return nil, false
	}
	return e, true
}

// verifyStream: POST /v1/ssf/verify sends the SSF verification event on
// the stream, echoing state; 204 once it is queued.
func (h *Hub) verifyStream(c *gin.Context) {
	var req api.VerificationRequest
	if !h.readJSON(c, &req) || !h.hasStream(c, req.StreamID) {
		return
	}
	m := member(c)
	last := h.polls.lastVerification(m.ID)
	_, res, ok := apply(h, c, "send stream verification", func(now time.Time) (*state.ChangeEndpoint, error) {
		e, err := h.readEndpoint(c)
		if err != nil {
			return nil, err
		}
		return h.decide.VerifyStream(m, e, req.State, last, now)
	})
	if !ok {
		return
	}
	h.polls.verified(m.ID, h.now())
	h.currentDispatcher().Notify(m.ID)
	h.polls.notify(m.ID)
	logIndexHeader(c, res.LogIndex)
	c.Header("Cache-Control", "no-store")
	c.Status(http.StatusNoContent)
}

// poll: POST /v1/ssf/poll, RFC 8936. The acknowledgements are recorded
// as deliveries and the errors as dead letters, then up to maxEvents of
// the oldest SETs queued are returned, by jti; with returnImmediately
// false the hub waits a while for one if none is queued. A SET stays
// queued, and is returned again, until it is acknowledged.
func (h *Hub) poll(c *gin.Context) {
	var req api.PollRequest
	if !h.readJSON(c, &req) {
		return
	}
	m := member(c)
	maxEvents := DefaultPollEvents
	if req.MaxEvents != nil {
		maxEvents = *req.MaxEvents
	}
	switch {
	case maxEvents < 0 || maxEvents > MaxPollEvents:
		h.fail(c, decide.FieldProblem(protocol.ProblemMalformedRequest, "maxEvents", "%d; want 0 to %d", maxEvents, MaxPollEvents))
		return
	case len(req.Ack)+len(req.SetErrs) > MaxPollEvents:
		h.fail(c, problemf(protocol.ProblemMalformedRequest, "%d acknowledgements and errors in one poll; send at most %d", len(req.Ack)+len(req.SetErrs), MaxPollEvents))
		return
	}
	e, ok := h.stream(c, "")
	switch {
	case !ok:
		return
	case e == nil:
		h.fail(c, decide.NoStream(m.ID))
		return
	case !e.Polled():
		h.fail(c, problemf(protocol.ProblemStateConflict, "member %q's stream delivers by push (urn:ietf:rfc:8935); change its delivery method to urn:ietf:rfc:8936 to poll", m.ID))
		return
	}
	if !h.settle(c, m.ID, req) {
		return
	}
	if maxEvents == 0 {
		c.JSON(http.StatusOK, api.PollResponse{Sets: map[string]string{}})
		return
	}
	wait := h.cfg.PollWait
	if req.ReturnImmediately {
		wait = 0
	}
	ctx, cancel := context.WithTimeout(c.Request.Context(), wait)
	defer cancel()
	for {
		woken, stop := h.polls.wait(m.ID)
		sets, more, ok := h.pending(c, m.ID, maxEvents)
		if !ok || len(sets) > 0 || wait == 0 {
			stop()
			if ok {
				c.Header("Cache-Control", "no-store")
				c.JSON(http.StatusOK, api.PollResponse{Sets: sets, MoreAvailable: more})
			}
			return
		}
		select {
		case <-woken:
		case <-ctx.Done():
			stop()
			c.Header("Cache-Control", "no-store")
			c.JSON(http.StatusOK, api.PollResponse{Sets: map[string]string{}})
			return
		}
	}
}

// settle records a poll's acknowledgements and errors. A jti that is not
// queued (acknowledged before, or never sent) is passed over. The answer's
// X-Sparr-Log-Index names the entry of the last acknowledgement.
func (h *Hub) settle(c *gin.Context, memberID string, req api.PollRequest) bool {
	if len(req.Ack) == 0 && len(req.SetErrs) == 0 {
		return true
	}
	rows, err := h.store.Pending(memberID, MaxPollEvents)
	if err != nil {
		h.internal(c, "read queued deliveries", err)
		return false
	}
	byJTI := make(map[string]webhook.Delivery, len(rows))
	for _, r := range rows {
		byJTI[r.Record] = r
	}
	now := h.now()
	for _, jti := range req.Ack {
		row, ok := byJTI[jti]
		if !ok {
			continue
		}
		delete(byJTI, jti)
		a := webhook.Attempt{At: now, Status: http.StatusOK, Latency: now.Sub(row.EnqueuedAt)}
		index, ok, err := h.store.Acknowledged(row, a)
		if err != nil {
			h.internal(c, "record acknowledgement", err)
			return false
		}
		if ok {
			h.metrics.Attempted(memberID, "delivered", a.Latency)
			logIndexHeader(c, index)
		}
	}
	for jti, se := range req.SetErrs {
		row, ok := byJTI[jti]
		if !ok {
			continue
		}
		delete(byJTI, jti)
		text := se.Err
		if se.Description != "" {
			text += ": " + se.Description
		}
		a := webhook.Attempt{At: now, Status: http.StatusBadRequest, Error: "the receiver refused the SET", Response: truncate(text, 512)}
		if err := h.store.DeadLetter(row, a); err != nil {
			h.internal(c, "record SET error", err)
			return false
		}
		h.metrics.Attempted(memberID, "dead-lettered", 0)
	}
	return true
}

// pending returns up to max queued SETs of the member by jti, and whether
// more are queued. A queued delivery whose record was erased meanwhile is
// dropped.
func (h *Hub) pending(c *gin.Context, memberID string, max int) (map[string]string, bool, bool) {
	rows, err := h.store.Pending(memberID, max+1)
	if err != nil {
		h.internal(c, "read queued deliveries", err)
		return nil, false, false
	}
	sets := make(map[string]string, min(len(rows), max))
	more := false
	for _, r := range rows {
		if len(sets) == max {
			more = true
			break
		}
		if r.Body == nil {
			if err := h.store.Skip(r); err != nil {
				h.internal(c, "drop an erased delivery", err)
				return nil, false, false
			}
			continue
		}
		sets[r.Record] = string(r.Body)
	}
	return sets, more, true
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}

// pollWaiters wakes the polls waiting for a member's SETs, and remembers
// when each member last asked for a verification event.
type pollWaiters struct {
	mu       sync.Mutex
	waiting  map[string]map[chan struct{}]bool
	verifyAt map[string]time.Time
}

func newPollWaiters() *pollWaiters {
	return &pollWaiters{waiting: map[string]map[chan struct{}]bool{}, verifyAt: map[string]time.Time{}}
}

// wait returns a channel closed when something is queued for member, and
// a function that stops waiting.
func (p *pollWaiters) wait(member string) (<-chan struct{}, func()) {
	ch := make(chan struct{})
	p.mu.Lock()
	if p.waiting[member] == nil {
		p.waiting[member] = map[chan struct{}]bool{}
	}
	p.waiting[member][ch] = true
	p.mu.Unlock()
	return ch, func() {
		p.mu.Lock()
		delete(p.waiting[member], ch)
		p.mu.Unlock()
	}
}

// notify wakes every poll waiting for member.
func (p *pollWaiters) notify(member string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for ch := range p.waiting[member] {
		close(ch)
	}
	delete(p.waiting, member)
}

func (p *pollWaiters) lastVerification(member string) time.Time {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.verifyAt[member]
}

func (p *pollWaiters) verified(member string, at time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.verifyAt[member] = at
}
