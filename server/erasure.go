package server

import (
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/sparr-dev/sparr/protocol/api"
	"github.com/sparr-dev/sparr/server/decide"
	"github.com/sparr-dev/sparr/server/state"
)

// erase: POST /v1/admin/erasures erases everything the hub holds about a
// subject (GDPR Art. 17); see [decide.Decider.EraseSubject].
func (h *Hub) erase(c *gin.Context) {
	var req api.ErasureRequest
	if !h.readJSON(c, &req) {
		return
	}
	tok, err := decide.ErasureSubject(req)
	if err != nil {
		h.refuse(c, "erase subject", err)
		return
	}
	m := member(c)
	cmd, res, ok := apply(h, c, "erase subject", func(now time.Time) (*state.EraseSubject, error) {
		subjects, err := h.store.Subjects([]string{tok.String()})
		if err != nil {
			return nil, err
		}
		// About finds every entry whose details name the subject, those
		// written before the store indexed entries by subject too.
		records, entries, err := h.store.About(tok.String())
		if err != nil {
			return nil, err
		}
		if subjects[0].Recalls, err = h.store.RecallsOf(tok.String()); err != nil {
			return nil, err
		}
		return h.decide.EraseSubject(m, tok, req.LegalBasis, subjects[0], records, entries, now)
	})
	if !ok {
		return
	}
	c.JSON(http.StatusOK, api.ErasureResponse{
		Record: cmd.Records[0].JWS, Seq: res.Seq, LogIndex: res.LogIndex,
		RecordsErased: len(cmd.Erase.Records), LogEntriesErased: res.Erased,
	})
}
