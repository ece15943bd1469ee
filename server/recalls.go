package server

import (
	"errors"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/sparr-dev/sparr/protocol"
	"github.com/sparr-dev/sparr/protocol/api"
	"github.com/sparr-dev/sparr/server/decide"
	"github.com/sparr-dev/sparr/server/state"
	"github.com/sparr-dev/sparr/server/store"
)

// readRecall reads a recall by id, or nil if the hub holds none.
func (h *Hub) readRecall(id string) (*state.Recall, error) {
	return store.OrNil(h.store.Recall(id))
}

// requestRecall: POST /v1/recalls. The hub routes the recall of a scam
// payment to the member that holds the payee account, and to it alone.
func (h *Hub) requestRecall(c *gin.Context) {
	s, hash, ok := h.readSubmission(c, protocol.ActionRequestRecall)
	if !ok || h.replayed(c, s, hash) {
		return
	}
	m := member(c)
	cmd, res, ok := apply(h, c, "request recall", func(now time.Time) (*state.PutRecall, error) {
		id, err := h.decide.RecallHolder(s.Request.(protocol.RequestRecall).Bank)
		if err != nil {
			return nil, err
		}
		holder, err := h.store.Member(c, id)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return nil, err
		}
		return h.decide.RequestRecall(m, s, hash, holder, now)
	})
	if !ok {
		return
	}
	c.Header("Location", "/v1/recalls/"+cmd.Recall.ID)
	c.JSON(http.StatusCreated, api.WriteResponse{Recall: decide.RecallView(cmd.Recall, nil), Record: cmd.Record.JWS, Seq: res.Seq, LogIndex: res.LogIndex})
}

// acknowledgeRecall: POST /v1/recalls/{id}/acknowledge, by the holder.
func (h *Hub) acknowledgeRecall(c *gin.Context) {
	s, hash, ok := h.readSubmission(c, protocol.ActionAcknowledgeRecall)
	if !ok || !h.checkPathID(c, "recall_id", s.Request.(protocol.AcknowledgeRecall).RecallID) || h.replayed(c, s, hash) {
		return
	}
	h.changeRecall(c, "acknowledge recall", func(rc *state.Recall, now time.Time) (*state.PutRecall, error) {
		return h.decide.AcknowledgeRecall(member(c), s, hash, rc, now)
	})
}

// recallOutcome: POST /v1/recalls/{id}/outcome, by the holder.
func (h *Hub) recallOutcome(c *gin.Context) {
	s, hash, ok := h.readSubmission(c, protocol.ActionRecallOutcome)
	if !ok || !h.checkPathID(c, "recall_id", s.Request.(protocol.ReportRecallOutcome).RecallID) || h.replayed(c, s, hash) {
		return
	}
	h.changeRecall(c, "report recall outcome", func(rc *state.Recall, now time.Time) (*state.PutRecall, error) {
		return h.decide.RecallOutcome(member(c), s, hash, rc, now)
	})
}

// changeRecall reads the URL's recall, decides its change and answers.
func (h *Hub) changeRecall(c *gin.Context, what string, decideAt func(*state.Recall, time.Time) (*state.PutRecall, error)) {
	cmd, res, ok := apply(h, c, what, func(now time.Time) (*state.PutRecall, error) {
		rc, err := h.readRecall(c.Param("id"))
		if err != nil {
			return nil, err
		}
		return decideAt(rc, now)
	})
	if !ok {
		return
	}
	c.JSON(http.StatusOK, api.WriteResponse{Recall: decide.RecallView(cmd.Recall, nil), Record: cmd.Record.JWS, Seq: res.Seq, LogIndex: res.LogIndex})
}

// getRecall: GET /v1/recalls/{id}, for its two sides only.
func (h *Hub) getRecall(c *gin.Context) {
	rc, err := h.readRecall(c.Param("id"))
	if err != nil {
		h.internal(c, "read recall", err)
		return
	}
	if m := member(c); rc == nil || (rc.From != m.ID && rc.To != m.ID) {
		h.fail(c, problemf(protocol.ProblemNotFound, "no recall %s of member %q", decide.Quote(c.Param("id")), m.ID))
		return
	}
	c.JSON(http.StatusOK, decide.RecallView(rc, nil))
}

// recallTimes gathers the recall entries of an audit, by pair of members.
type recallTimes map[string]*recallPair

type recallPair struct {
	api.RecallStats
	ack, outcome []int64
}

func newRecallTimes() recallTimes { return recallTimes{} }

// add counts e if it is a recall entry: a request under its requester
// and attr to, an acknowledgement or outcome under the holder and attr
// from, with attr after_ms.
func (r recallTimes) add(e *protocol.LogEntry) {
	if e.Result != "ok" {
		return
	}
	attr := func(k string) string { v, _ := e.Attr(k); return v }
	var pair string
	switch e.Action {
	case protocol.LogRecallRequested:
		pair = e.Member + ">" + attr("to")
	case protocol.LogRecallAcknowledged, protocol.LogRecallOutcome:
		pair = attr("from") + ">" + e.Member
	default:
		return
	}
	p := r[pair]
	if p == nil {
		p = &recallPair{}
		r[pair] = p
	}
	ms, _ := strconv.ParseInt(attr("after_ms"), 10, 64)
	switch e.Action {
	case protocol.LogRecallRequested:
		p.Requested++
	case protocol.LogRecallAcknowledged:
		p.Acknowledged++
		p.ack = append(p.ack, ms)
	case protocol.LogRecallOutcome:
		p.Outcomes++
		p.outcome = append(p.outcome, ms)
	}
}

// stats returns the counts and times, or nil when there were no recalls.
func (r recallTimes) stats() map[string]*api.RecallStats {
	if len(r) == 0 {
		return nil
	}
	out := make(map[string]*api.RecallStats, len(r))
	for pair, p := range r {
		st := p.RecallStats
		st.AcknowledgeP50Ms, st.AcknowledgeMaxMs = medianMax(p.ack)
		st.OutcomeP50Ms, st.OutcomeMaxMs = medianMax(p.outcome)
		out[pair] = &st
	}
	return out
}

func medianMax(v []int64) (int64, int64) {
	if len(v) == 0 {
		return 0, 0
	}
	slices.Sort(v)
	return v[len(v)/2], v[len(v)-1]
}
