package server

import (
	"bufio"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/sparr-dev/sparr/protocol"
	"github.com/sparr-dev/sparr/protocol/api"
	"github.com/sparr-dev/sparr/server/decide"
	"github.com/sparr-dev/sparr/server/state"
	"github.com/sparr-dev/sparr/server/store"
)

// events: GET /v1/events?after=SEQ&limit=N, the events the member is
// entitled to after a sequence number, in order. The cursor is the hub's
// sequence number: stable across restarts, never a time.
func (h *Hub) events(c *gin.Context) {
	after, err := strconv.ParseUint(c.DefaultQuery("after", "0"), 10, 64)
	if err != nil {
		h.fail(c, decide.ParamProblem(protocol.ProblemMalformedRequest, "after", "%s is not a sequence number", decide.Quote(c.Query("after"))))
		return
	}
	limit, err := strconv.Atoi(c.DefaultQuery("limit", "100"))
	if err != nil || limit < 1 || limit > api.MaxFeedPage {
		h.fail(c, decide.ParamProblem(protocol.ProblemMalformedRequest, "limit", "%s: ask for 1 to %d events", decide.Quote(c.Query("limit")), api.MaxFeedPage))
		return
	}
	page, err := h.store.Events(member(c), after, limit)
	if errors.Is(err, store.ErrCursorExpired) {
		if floor, err := h.store.FeedFloor(); err == nil {
			c.Header(api.FeedFloorHeader, strconv.FormatUint(floor, 10))
		}
		h.fail(c, problemf(protocol.ProblemCursorExpired,
			"events after %d are no longer kept (the feed keeps %s); take GET /v1/snapshot and follow the feed from its seq", after, h.cfg.Policy.FeedRetention))
		return
	}
	if err != nil {
		h.internal(c, "read feed", err)
		return
	}
	out := api.FeedPage{Events: make([]api.FeedEvent, len(page.Records)), Next: page.Next, More: page.More}
	for i, r := range page.Records {
		out.Events[i] = api.FeedEvent{Seq: r.Seq, Type: r.Type, JWS: r.JWS, Via: r.Via}
	}
	c.JSON(http.StatusOK, out)
}

// snapshot: GET /v1/snapshot, the records of every active flag, and of
// every active suspicion the member itself reported, that the member is
// entitled to, and the sequence number they are
// consistent at. It is streamed: a hub with a million flags answers with
// a million records without holding them in memory, nor one read
// transaction open for the whole answer ([store.Store.Snapshot] reads in
// chunks).
//
//	{"seq":1234,"records":[{"seq":7,"type":"urn:sparr:event:flag-placed","jws":"…"},…]}
func (h *Hub) snapshot(c *gin.Context) {
	m := member(c)
	c.Header("Content-Type", "application/json")
	c.Status(http.StatusOK)
	w := bufio.NewWriterSize(c.Writer, 64<<10)
	enc := json.NewEncoder(w)
	started := false
	begin := func(seq uint64) {
		if !started {
			started = true
			w.WriteString(`{"seq":` + strconv.FormatUint(seq, 10) + `,"records":[`)
		}
	}
	n := 0
	start := time.Now()
	seq, err := h.store.Snapshot(m, func(seq uint64, r *state.Record) error {
		begin(seq)
		if n > 0 {
			w.WriteByte(',')
		}
		n++
		return enc.Encode(api.FeedEvent{Seq: r.Seq, Type: r.Type, JWS: r.JWS})
	})
	if err != nil {
		h.log.Error("snapshot failed midway", "request_id", c.GetString(keyRequestID), "error", err)
		panic(http.ErrAbortHandler) // a cut answer is refused by any JSON parser
	}
	begin(seq)
	w.WriteString("]}\n")
	if err := w.Flush(); err != nil {
		panic(http.ErrAbortHandler)
	}
	h.log.Info("snapshot served", "request_id", c.GetString(keyRequestID), "member", m.ID, "records", n, "seq", seq, "ms", time.Since(start).Milliseconds())
}
