package server

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"slices"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/sparr-dev/sparr/protocol"
	"github.com/sparr-dev/sparr/protocol/api"
	"github.com/sparr-dev/sparr/server/decide"
	"github.com/sparr-dev/sparr/server/state"
	"github.com/sparr-dev/sparr/server/store"
)

const keyBody = "sparr.body"

// Media types of request bodies.
const (
	mediaJOSE = "application/jose" // a compact JWS (RFC 7515, section 9.2.1)
	mediaJSON = "application/json"
)

// readBody reads the body, at most MaxBodySize bytes, if it has one of the
// media types.
func (h *Hub) readBody(c *gin.Context, mediaTypes ...string) ([]byte, bool) {
	if ct := c.ContentType(); !slices.Contains(mediaTypes, ct) {
		h.fail(c, problemf(protocol.ProblemUnsupportedMediaType, "Content-Type is %s; send %s", decide.Quote(ct), mediaTypes[0]))
		return nil, false
	}
	body, err := io.ReadAll(http.MaxBytesReader(c.Writer, c.Request.Body, MaxBodySize))
	var tooLarge *http.MaxBytesError
	switch {
	case errors.As(err, &tooLarge):
		h.fail(c, problemf(protocol.ProblemPayloadTooLarge, "the body is larger than %d bytes", MaxBodySize))
		return nil, false
	case err != nil:
		h.fail(c, problemf(protocol.ProblemMalformedRequest, "reading the body failed: %v", err))
		return nil, false
	}
	c.Set(keyBody, body)
	return body, true
}

// readJSON reads a JSON body into v strictly: unknown fields and trailing
// data are refused.
func (h *Hub) readJSON(c *gin.Context, v any) bool {
	body, ok := h.readBody(c, mediaJSON)
	if !ok {
		return false
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	if err == nil && dec.More() {
		err = errors.New("data after the JSON value")
	}
	if err != nil {
		h.fail(c, problemf(protocol.ProblemMalformedRequest, "the body is not the JSON this route takes: %v", err))
		return false
	}
	return true
}

// readSubmission reads and verifies a member's signed submission for the
// route's action: signed by the calling member, for this hub, and asking
// for this action. It returns the submission and the SHA-256 of its bytes.
//
// On the home hub's route for relayed writes, it returns the submission
// that route verified instead (see [Hub.peerSubmission]).
func (h *Hub) readSubmission(c *gin.Context, action protocol.Action) (*protocol.Submission, []byte, bool) {
	if v, ok := c.Get(keyRelayed); ok {
		r := v.(*relayedSubmission)
		if a := r.s.Request.Action(); a != action {
			h.fail(c, problemf(protocol.ProblemInvalidSubmission, "the submission asks for %q, but this route takes %q", a, action))
			return nil, nil, false
		}
		return r.s, r.hash, true
	}
	body, ok := h.readBody(c, mediaJOSE)
	if !ok {
		return nil, nil, false
	}
	s, err := protocol.VerifySubmission(c, body, h.members, protocol.SubmissionOptions{Audience: h.cfg.Issuer, Now: h.now(), Skew: h.cfg.ClockSkew})
	if err != nil {
		h.fail(c, verificationProblem(err))
		return nil, nil, false
	}
	m := member(c)
	if s.Issuer != m.ID {
		h.fail(c, problemf(protocol.ProblemWrongSigner, "the submission is signed by member %q but sent with member %q's bearer token", s.Issuer, m.ID))
		return nil, nil, false
	}
	if a := s.Request.Action(); a != action {
		h.fail(c, problemf(protocol.ProblemInvalidSubmission, "the submission asks for %q, but this route takes %q", a, action))
		return nil, nil, false
	}
	sum := sha256.Sum256(body)
	return s, sum[:], true
}

// checkPathID refuses a submission about another object than the URL's.
func (h *Hub) checkPathID(c *gin.Context, field, inSubmission string) bool {
	if id := c.Param("id"); id != inSubmission {
		p := problemf(protocol.ProblemInvalidSubmission, "request.%s is %q but the URL names %q", field, inSubmission, id)
		p.Errors = []protocol.ProblemField{{Pointer: decide.JSONPointer("request." + field), Detail: "does not match the URL"}}
		h.fail(c, p)
		return false
	}
	return true
}

// replayed answers a submission the hub has seen before: with the same
// answer if it is the same signed bytes, with 409 if it only reuses the
// jti. It reports whether it answered.
func (h *Hub) replayed(c *gin.Context, s *protocol.Submission, hash []byte) bool {
	prev, err := h.store.Submission(member(c).ID, s.ID)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return false
	case err != nil:
		h.internal(c, "read submission", err)
		return true
	case !bytes.Equal(prev.Hash, hash):
		h.fail(c, submissionConflict(s.ID))
		return true
	}
	h.answerSubmission(c, prev)
	return true
}

// answerSubmission answers with what a stored submission produced, so a
// retry gets the same answer as the original request.
func (h *Hub) answerSubmission(c *gin.Context, sub *state.Submission) {
	switch {
	case sub.Dispute != "":
		h.answerDispute(c, sub)
		return
	case sub.Action == protocol.LogErasureAttested:
		c.JSON(http.StatusOK, api.AttestResponse{LogIndex: sub.LogIndex})
		return
	}
	resp := api.WriteResponse{LogIndex: sub.LogIndex, Existing: sub.Existing}
	if sub.Record != "" {
		if r, err := h.store.Record(sub.Record); err == nil {
			resp.Record, resp.Seq = r.JWS, r.Seq
		}
	}
	if sub.Flag != "" {
		f, err := h.store.Flag(sub.Flag)
		if err != nil {
			h.internal(c, "read flag", err)
			return
		}
		resp.Flag = decide.FlagView(member(c), f, h.now())
	}
	if sub.Suspicion != "" {
		s, err := h.store.Suspicion(sub.Suspicion)
		if err != nil {
			h.internal(c, "read suspicion", err)
			return
		}
		resp.Suspicion = decide.SuspicionView(s, true)
	}
	if sub.Payee != "" {
		p, err := h.store.Payee(sub.Payee)
		if err != nil {
			h.internal(c, "read payee", err)
			return
		}
		resp.Payee = decide.PayeeView(p, nil)
	}
	if sub.Recall != "" {
		rc, err := h.store.Recall(sub.Recall)
		if err != nil {
			h.internal(c, "read recall", err)
			return
		}
		resp.Recall = decide.RecallView(rc, nil)
	}
	status := http.StatusOK
	if !sub.Existing && (sub.Action == protocol.LogFlagPlaced || sub.Action == protocol.LogSuspicionReported || sub.Action == protocol.LogRecallRequested) {
		status = http.StatusCreated
	}
	c.JSON(status, resp)
}

func submissionConflict(jti string) *protocol.Problem {
	return problemf(protocol.ProblemSubmissionConflict, "jti %q was already used by a different submission; sign each new submission with a new jti", jti)
}

// apply decides a change with decideAt, at the hub's time, and applies
// the command, deciding again if the state changed in between (at most
// five times). It answers the request itself on a refusal, a failure or a
// replay, and otherwise returns the command and its result for the caller
// to answer. what names the change in log lines.
func apply[C state.Command](h *Hub, c *gin.Context, what string, decideAt func(now time.Time) (C, error)) (C, *store.Result, bool) {
	var none C
	for range 5 {
		span := h.span(c, "decide "+what)
		cmd, err := decideAt(h.now())
		span.End()
		if err != nil {
			h.refuse(c, what, err)
			return none, nil, false
		}
		start := time.Now()
		res, ok := h.commitFor(c, "apply "+what, cmd)
		h.metrics.apply.Observe(time.Since(start).Seconds())
		switch {
		case !ok:
			return none, nil, false
		case res.Conflict:
			continue
		case res.Replayed != nil:
			h.answerSubmission(c, res.Replayed)
			return none, nil, false
		case res.SubmissionConflict:
			h.fail(c, submissionConflict(state.Submitted(cmd).ID))
			return none, nil, false
		}
		return cmd, res, true
	}
	h.fail(c, problemf(protocol.ProblemUnavailable, "the object changed while this request was applied; retry it"))
	return none, nil, false
}

// refuse answers a decision's error: its problem, or 500 for any other
// error, which it logs.
func (h *Hub) refuse(c *gin.Context, what string, err error) {
	var p *protocol.Problem
	if errors.As(err, &p) {
		h.fail(c, p)
		return
	}
	h.internal(c, what, err)
}

// internal answers 500 and logs the cause, which the answer does not show.
func (h *Hub) internal(c *gin.Context, what string, err error) {
	if notLeader(err) {
		// A replicated hub's node lost the leadership before the command
		// was committed; the next leader may still commit it, and a
		// signed submission sent again is answered from its outcome.
		h.log.WarnContext(c.Request.Context(), what+": not the leader", "request_id", c.GetString(keyRequestID), "error", err)
		h.fail(c, problemf(protocol.ProblemUnavailable, "this node lost the cluster's leadership while serving the request; send it again (a signed submission sent again is answered from its stored outcome)"))
		return
	}
	h.log.ErrorContext(c.Request.Context(), what+" failed", "request_id", c.GetString(keyRequestID), "error", err)
	h.fail(c, hubFailed(c))
}

// hubFailed is the 500 problem for a request the hub failed on, whatever
// the cause: the answer names only the request id the log line carries.
func hubFailed(c *gin.Context) *protocol.Problem {
	return problemf(protocol.ProblemInternal, "the hub failed on this request; quote request id %s to the operator", c.GetString(keyRequestID))
}
