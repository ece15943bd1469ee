package server

import (
	"encoding/json"
	"errors"
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/sparr-dev/sparr/protocol"
	"github.com/sparr-dev/sparr/protocol/api"
	"github.com/sparr-dev/sparr/server/decide"
)

func problemf(t protocol.ProblemType, format string, args ...any) *protocol.Problem {
	return protocol.NewProblem(t, format, args...)
}

// fail answers with a problem document and stops the request. A refusal of
// an authenticated member's bad input on a route with an action is recorded
// in the exchange log, and nothing else is stored.
func (h *Hub) fail(c *gin.Context, p *protocol.Problem) {
	p.RequestID = c.GetString(keyRequestID)
	p.Instance = c.Request.URL.Path
	if m, r := member(c), route(c); m != nil && r.Action != "" && loggedRefusal(p.Type) {
		h.logRefusal(c, m, r.Action, p)
	}
	c.Header("Content-Type", protocol.ProblemContentType)
	c.Header("Cache-Control", "no-store")
	if p.Status == http.StatusServiceUnavailable && c.Writer.Header().Get("Retry-After") == "" {
		// The hub did not act on the request: say when to send it again.
		c.Header("Retry-After", "1")
	}
	body, _ := json.Marshal(p)
	c.Data(p.Status, protocol.ProblemContentType, body)
	c.Abort()
}

// loggedRefusal says which refusals the log records here: what a member
// asked for and was refused, but not failed authentication, missing roles
// or rate limits (which would let a caller make the hub write at will),
// nor the hub's own faults, nor a batch of tokens over the daily quota,
// whose refusal the command that counts the batch logs itself, nor a
// request over the member's quota of stored bytes, whose refusal could
// not be stored either.
func loggedRefusal(problemType string) bool {
	switch problemType {
	case protocol.ProblemUnauthenticated.URI, protocol.ProblemBearerExpired.URI, protocol.ProblemForbidden.URI,
		protocol.ProblemMemberSuspended.URI, protocol.ProblemRateLimited.URI, protocol.ProblemMethodNotAllowed.URI,
		protocol.ProblemInternal.URI, protocol.ProblemUnavailable.URI, protocol.ProblemTokenQuota.URI,
		protocol.ProblemStorageQuota.URI:
		return false
	}
	return true
}

// logRefusal appends "<action> rejected:<slug>" for the member, committing
// to the SHA-256 of the body it sent.
func (h *Hub) logRefusal(c *gin.Context, m *api.Member, action protocol.LogAction, p *protocol.Problem) {
	body, _ := c.Get(keyBody)
	raw, _ := body.([]byte)
	// A refusal is charged to the member's allowance of stored bytes like
	// anything else it has the hub keep; once that is spent, its refusals
	// are answered but no longer logged.
	note := h.decide.Refusal(m, action, p, raw, h.now())
	err := h.decide.Charge(m, note, h.now())
	if err == nil {
		_, err = h.store.Apply(note)
	}
	if err != nil {
		h.log.Error("recording a refusal in the exchange log failed", "request_id", c.GetString(keyRequestID), "error", err)
	}
}

// verificationProblem turns a submission's verification error into a
// problem that points at the claim at fault.
func verificationProblem(err error) *protocol.Problem {
	var ve *protocol.VerificationError
	if !errors.As(err, &ve) {
		return problemf(protocol.ProblemUnavailable, "could not fetch the member's keys to verify the submission; try again shortly")
	}
	p := problemf(protocol.ProblemInvalidSubmission, "%v", err)
	if ve.Claim != "" {
		p.Errors = []protocol.ProblemField{{Pointer: decide.JSONPointer(ve.Claim), Detail: ve.Err.Error() + detailSuffix(ve.Detail)}}
	}
	return p
}

func detailSuffix(d string) string {
	if d == "" {
		return ""
	}
	return ": " + d
}
