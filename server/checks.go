package server

import (
	"errors"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"
	"go.opentelemetry.io/otel/attribute"

	"github.com/sparr-dev/sparr/protocol"
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
	if home, p := h.foreignHome(&req); p != nil {
		h.fail(c, p)
		return
	} else if home != "" {
		h.relayCheck(c, &req, home)
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
	cmd, resp, err := h.decide.Check(member(c), &req, subjects, now)
	span.End()
	if err != nil {
		h.internal(c, "decide check", err)
		return
	}
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
	if chk.Home != "" && !h.relayOutcome(c, chk, req.Outcome) {
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
// own replica answered, so that they are logged, and their flags' origins
// notified, as online checks are.
func (h *Hub) replicaChecks(c *gin.Context) {
	var req api.ReplicaChecksRequest
	if !h.readJSON(c, &req) {
		return
	}
	now := h.now()
	tokens, err := h.decide.ReplicaChecksRequest(&req, now)
	if err != nil {
		h.refuse(c, "report replica checks", err)
		return
	}
	subjects, err := h.store.Subjects(tokens)
	if err != nil {
		h.internal(c, "read subjects", err)
		return
	}
	cmd, err := h.decide.ReplicaChecks(member(c), &req, tokens, subjects, now)
	if err != nil {
		h.refuse(c, "report replica checks", err)
		return
	}
	res, ok := h.commitFor(c, "log replica checks", cmd)
	if ok {
		c.JSON(http.StatusOK, api.ReplicaChecksResponse{Count: len(req.Checks), LogIndex: res.LogIndex})
	}
}

// denyCheck: POST /v1/checks/{id}/denial. The member that placed a flag
// denies, for the consumer, a check it was notified of ("not me"); the
// member that made the check gets a check-denied record at once.
func (h *Hub) denyCheck(c *gin.Context) {
	m := member(c)
	s, hash, ok := h.readSubmission(c, protocol.ActionDenyCheck)
	if !ok {
		return
	}
	req := s.Request.(protocol.DenyCheck)
	if !h.checkPathID(c, "check_id", req.CheckID) || h.replayed(c, s, hash) {
		return
	}
	if peers := h.peers(); len(peers) > 0 && !relayedHere(c) {
		// A notice this hub did not send may be the home hub's, of a
		// check of a foreign flag this member placed there.
		_, err := h.store.Notice(req.CheckID, req.FlagID)
		switch {
		case errors.Is(err, store.ErrNotFound):
			h.relayWrite(c, s, hash, peers)
			return
		case err != nil:
			h.internal(c, "read notice", err)
			return
		}
	}
	cmd, res, ok := apply(h, c, "deny check", func(now time.Time) (*state.DenyCheck, error) {
		n, err := h.store.Notice(req.CheckID, req.FlagID)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return nil, err
		}
		var f *state.Flag
		if n != nil {
			if f, err = h.store.FlagByToken(n.Subject); err != nil && !errors.Is(err, store.ErrNotFound) {
				return nil, err
			}
		}
		return h.decide.DenyCheck(m, s, hash, n, f, now)
	})
	if !ok {
		return
	}
	c.JSON(http.StatusOK, api.WriteResponse{Record: cmd.Denial.Record.JWS, Seq: res.Seq, LogIndex: res.LogIndex})
}
