package server

import (
	"errors"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/sparr-dev/sparr/federation/peering"
	"github.com/sparr-dev/sparr/protocol"
	"github.com/sparr-dev/sparr/protocol/api"
	"github.com/sparr-dev/sparr/server/decide"
	"github.com/sparr-dev/sparr/server/state"
	"github.com/sparr-dev/sparr/server/store"
)

// suspicionsEnabled refuses suspicion routes on a hub without a legal
// basis for them, before their bodies are read.
func (h *Hub) suspicionsEnabled(c *gin.Context) bool {
	if err := h.decide.SuspicionsEnabled(); err != nil {
		h.refuse(c, "suspicions", err)
		return false
	}
	return true
}

// readSuspicion reads the suspicion id, or nil if the hub holds none.
func (h *Hub) readSuspicion(id string) (*state.Suspicion, error) {
	sp, err := h.store.Suspicion(id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	return sp, err
}

// reportSuspicion: POST /v1/suspicions.
func (h *Hub) reportSuspicion(c *gin.Context) {
	if !h.suspicionsEnabled(c) {
		return
	}
	s, hash, ok := h.readSubmission(c, protocol.ActionReportSuspicion)
	if !ok || h.replayed(c, s, hash) {
		return
	}
	if p, prob := h.writeHome(s); prob != nil || p != nil {
		if prob != nil {
			h.fail(c, prob)
			return
		}
		h.relayWrite(c, s, hash, []*peering.Peer{p})
		return
	}
	m := member(c)
	cmd, res, ok := apply(h, c, "report suspicion", func(now time.Time) (*state.ReportSuspicion, error) {
		return h.decide.ReportSuspicion(m, s, hash, now)
	})
	if !ok {
		return
	}
	c.Header("Location", "/v1/suspicions/"+cmd.Suspicion.ID)
	c.JSON(http.StatusCreated, api.WriteResponse{Suspicion: decide.SuspicionView(cmd.Suspicion, true), Record: cmd.Records[0].JWS, Seq: res.Seq, LogIndex: res.LogIndex})
}

// retractSuspicion: POST /v1/suspicions/{id}/retract. Only the member that
// reported a suspicion may retract it.
func (h *Hub) retractSuspicion(c *gin.Context) {
	if !h.suspicionsEnabled(c) {
		return
	}
	s, hash, ok := h.readSubmission(c, protocol.ActionRetractSuspicion)
	if !ok || !h.checkPathID(c, "suspicion_id", s.Request.(protocol.RetractSuspicion).SuspicionID) || h.replayed(c, s, hash) {
		return
	}
	if peers := h.peers(); len(peers) > 0 && !relayedHere(c) {
		// A suspicion this hub does not hold may be about a foreign
		// identifier, held by its home hub.
		sp, err := h.readSuspicion(s.Request.(protocol.RetractSuspicion).SuspicionID)
		if err != nil {
			h.internal(c, "read suspicion", err)
			return
		}
		if sp == nil {
			h.relayWrite(c, s, hash, peers)
			return
		}
	}
	m := member(c)
	cmd, res, ok := apply(h, c, "retract suspicion", func(now time.Time) (*state.EndSuspicion, error) {
		sp, err := h.readSuspicion(s.Request.(protocol.RetractSuspicion).SuspicionID)
		if err != nil {
			return nil, err
		}
		return h.decide.RetractSuspicion(m, s, hash, sp, now)
	})
	if !ok {
		return
	}
	c.JSON(http.StatusOK, api.WriteResponse{Suspicion: decide.SuspicionView(cmd.Suspicion, true), Record: cmd.Record.JWS, Seq: res.Seq, LogIndex: res.LogIndex})
}

// suspicionDetails: POST /v1/suspicions/{id}/details. A checking member
// that states its purpose and why it needs them gets the suspicion's full
// signed record; the request is logged.
func (h *Hub) suspicionDetails(c *gin.Context) {
	if !h.suspicionsEnabled(c) {
		return
	}
	var req api.DetailsRequest
	if !h.readJSON(c, &req) {
		return
	}
	id := c.Param("id")
	sp, err := h.readSuspicion(id)
	if err != nil {
		h.internal(c, "read suspicion", err)
		return
	}
	var recs []*state.Record
	if sp != nil {
		if recs, err = h.store.Records(sp.Records); err != nil {
			h.internal(c, "read records", err)
			return
		}
	}
	note, resp, err := h.decide.SuspicionDetails(member(c), id, req, sp, recs, h.now())
	if err != nil {
		h.refuse(c, "suspicion details", err)
		return
	}
	res, ok := h.commitFor(c, "log details request", note)
	if !ok {
		return
	}
	resp.LogIndex = res.LogIndex
	c.JSON(http.StatusOK, resp)
}
