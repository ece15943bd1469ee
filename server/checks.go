package server

import (
	"errors"
	"net/http"

	"github.com/gin-gonic/gin"
	"go.opentelemetry.io/otel/attribute"

	"github.com/sparr-dev/sparr/protocol/api"
	"github.com/sparr-dev/sparr/server/decide"
	"github.com/sparr-dev/sparr/server/state"
	"github.com/sparr-dev/sparr/server/store"
)

// check: POST /v1/check. The answer is given only after the check's log
// entry is durable.
func (h *Hub) check(c *gin.Context) {
	var req api.CheckRequest
	if !h.readJSON(c, &req) {
		return
	}
	if err := h.decide.CheckRequest(&req); err != nil {
		h.refuse(c, "check", err)
		return
	}
	now := h.now()
	subjects, err := h.store.Subjects(req.Tokens)
	if err != nil {
		h.internal(c, "read subjects", err)
		return
	}
	span := h.span(c, "decide check", attribute.Int("sparr.tokens", len(req.Tokens)))
	cmd, resp := h.decide.Check(member(c), &req, subjects, now)
	span.End()
	res, ok := h.commitFor(c, "log check", cmd)
	if !ok {
		return
	}
	resp.LogIndex = res.LogIndex
	c.JSON(http.StatusOK, resp)
}

// checkOutcome: POST /v1/checks/{id}/outcome. The member that made a check
// reports whether the applicant was verified.
func (h *Hub) checkOutcome(c *gin.Context) {
	var req api.OutcomeRequest
	if !h.readJSON(c, &req) {
		return
	}
	id := c.Param("id")
	chk, err := h.store.Check(id)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		h.internal(c, "read check", err)
		return
	}
	if errors.Is(err, store.ErrNotFound) {
		chk = nil
	}
	cmd, err := h.decide.Outcome(member(c), id, req, chk, h.now())
	if err != nil {
		h.refuse(c, "check outcome", err)
		return
	}
	res, ok := h.commitFor(c, "log outcome", cmd)
	switch {
	case !ok:
	case res.Conflict:
		h.fail(c, decide.OutcomeConflict(&state.Check{ID: id}))
	default:
		c.JSON(http.StatusOK, api.OutcomeResponse{CheckID: cmd.Check.ID, Outcome: cmd.Check.Outcome, LogIndex: res.LogIndex})
	}
}

// replicaChecks: POST /v1/checks/replica. A member reports the checks its
// own replica answered, so that they are logged as online checks are.
func (h *Hub) replicaChecks(c *gin.Context) {
	var req api.ReplicaChecksRequest
	if !h.readJSON(c, &req) {
		return
	}
	note, err := h.decide.ReplicaChecks(member(c), &req, h.now())
	if err != nil {
		h.refuse(c, "report replica checks", err)
		return
	}
	res, ok := h.commitFor(c, "log replica checks", note)
	if ok {
		c.JSON(http.StatusOK, api.ReplicaChecksResponse{Count: len(req.Checks), LogIndex: res.LogIndex})
	}
}
