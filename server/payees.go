package server

import (
	"errors"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/sparr-dev/sparr/protocol"
	"github.com/sparr-dev/sparr/protocol/api"
	"github.com/sparr-dev/sparr/server/decide"
	"github.com/sparr-dev/sparr/server/state"
	"github.com/sparr-dev/sparr/server/store"
)

// readPayee reads a payee record by id, or nil if the hub holds none.
func (h *Hub) readPayee(id string) (*state.Payee, error) {
	return store.OrNil(h.store.Payee(id))
}

// reportPayee: POST /v1/payees. A member's report of a payee its
// customers reported as fraud joins the payee's record, which goes to
// every member.
func (h *Hub) reportPayee(c *gin.Context) {
	s, hash, ok := h.readSubmission(c, protocol.ActionReportPayee)
	if !ok || h.replayed(c, s, hash) {
		return
	}
	m := member(c)
	subject := s.Request.(protocol.ReportPayee).Payee.String()
	cmd, res, ok := apply(h, c, "report payee", func(now time.Time) (*state.PutPayee, error) {
		p, err := h.store.PayeeByToken(subject)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return nil, err
		}
		return h.decide.ReportPayee(m, s, hash, p, now)
	})
	if !ok {
		return
	}
	status := http.StatusOK
	if cmd.Payee.Version == 1 {
		status = http.StatusCreated
	}
	c.Header("Location", "/v1/payees/"+cmd.Payee.ID)
	c.JSON(status, api.WriteResponse{Payee: decide.PayeeView(cmd.Payee, cmd.Record), Record: cmd.Record.JWS, Seq: res.Seq, LogIndex: res.LogIndex})
}

// contestPayee: POST /v1/payees/{id}/contest. The account holder contests
// a payee record through its bank; the record says so from then on.
func (h *Hub) contestPayee(c *gin.Context) {
	s, hash, ok := h.readSubmission(c, protocol.ActionContestPayee)
	if !ok || !h.checkPathID(c, "payee_id", s.Request.(protocol.ContestPayee).PayeeID) || h.replayed(c, s, hash) {
		return
	}
	m := member(c)
	cmd, res, ok := apply(h, c, "contest payee", func(now time.Time) (*state.PutPayee, error) {
		p, err := h.readPayee(s.Request.(protocol.ContestPayee).PayeeID)
		if err != nil {
			return nil, err
		}
		return h.decide.ContestPayee(m, s, hash, p, now)
	})
	if !ok {
		return
	}
	c.JSON(http.StatusOK, api.WriteResponse{Payee: decide.PayeeView(cmd.Payee, cmd.Record), Record: cmd.Record.JWS, Seq: res.Seq, LogIndex: res.LogIndex})
}

// getPayee: GET /v1/payees/{id}. Any member may read a payee record: it
// went to every member already.
func (h *Hub) getPayee(c *gin.Context) {
	p, err := h.readPayee(c.Param("id"))
	if err != nil {
		h.internal(c, "read payee", err)
		return
	}
	if p == nil {
		h.fail(c, problemf(protocol.ProblemNotFound, "no payee record %s", decide.Quote(c.Param("id"))))
		return
	}
	var rec *state.Record
	if n := len(p.Records); n > 0 {
		if rec, err = h.store.Record(p.Records[n-1]); err != nil && !errors.Is(err, store.ErrNotFound) {
			h.internal(c, "read record", err)
			return
		}
	}
	c.JSON(http.StatusOK, decide.PayeeView(p, rec))
}
