package server

import (
	"bufio"
	"encoding/base64"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/sparr-dev/sparr/protocol"
	"github.com/sparr-dev/sparr/protocol/api"
	"github.com/sparr-dev/sparr/server/decide"
	"github.com/sparr-dev/sparr/server/store"
)

// PublishCheckpoint signs and keeps a checkpoint now, if the log has grown,
// as the hub does on its schedule; it returns the latest checkpoint. It
// signs outside any store transaction and keeps the checkpoint through the
// store's command path.
// The hub remembers when it signed the checkpoint, for
// sparr_checkpoint_age_seconds, and keeps it in Config.LastCheckpoint,
// if set, once the store has it.
func (h *Hub) PublishCheckpoint() ([]byte, error) {
	var signedAt time.Time
	note, size, err := h.store.PublishCheckpoint(func(size uint64, root tlog.Hash) ([]byte, error) {
		signedAt = h.now()
		return protocol.SignCheckpoint(&protocol.Checkpoint{Origin: h.keys.LogOrigin, Size: size, Root: root}, h.keys.Log)
	})
	if err != nil {
		return nil, err
	}
	if err := h.keepLastCheckpoint(note, size); err != nil {
		return nil, err
	}
	h.checkpointMu.Lock()
	defer h.checkpointMu.Unlock()
	switch {
	case !signedAt.IsZero():
	case h.checkpoint.Entries == size && !h.checkpoint.SignedAt.IsZero():
		return note, nil
	default:
		// Signed before this hub started: not before the newest entry it
		// covers was logged.
		signedAt = h.now()
		if size > 0 {
			if lines, err := h.store.LogEntries(size-1, size); err == nil && len(lines) == 1 {
				if e, err := protocol.ParseLogEntry(lines[0]); err == nil {
					signedAt = e.Time
				}
			}
		}
	}
	if size >= h.checkpoint.Entries {
		h.checkpoint = publishedCheckpoint{Entries: size, SignedAt: signedAt}
	}
	h.notifyWitnesses()
	return note, nil
}

// A publishedCheckpoint is the latest checkpoint the hub knows of: how
// many entries it covers and when it was signed.
type publishedCheckpoint struct {
	Entries  uint64
	SignedAt time.Time
}

// latestCheckpoint returns the latest checkpoint the hub published or
// found at start; its SignedAt is zero before the first.
func (h *Hub) latestCheckpoint() publishedCheckpoint {
	h.checkpointMu.Lock()
	defer h.checkpointMu.Unlock()
	return h.checkpoint
}

func (h *Hub) runCheckpoints(stop <-chan struct{}) {
	t := time.NewTicker(h.cfg.CheckpointInterval)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		if _, err := h.PublishCheckpoint(); err != nil {
			h.log.Error("publishing a checkpoint failed", "error", err)
		}
	}
}

func uintParam(c *gin.Context, name string, def uint64, required bool) (uint64, bool) {
	v := c.Query(name)
	if v == "" && !required {
		return def, true
	}
	n, err := strconv.ParseUint(v, 10, 64)
	if err != nil {
		return 0, false
	}
	return n, true
}

// logCheckpoint: GET /v1/log/checkpoint[?size=N], the latest signed
// checkpoint, or the one published for tree size N, byte for byte the C2SP
// note.
func (h *Hub) logCheckpoint(c *gin.Context) {
	var note []byte
	var size uint64
	var err error
	if c.Query("size") != "" {
		var ok bool
		if size, ok = uintParam(c, "size", 0, true); !ok {
			h.fail(c, decide.ParamProblem(protocol.ProblemMalformedRequest, "size", "%s: give the tree size of a published checkpoint as a decimal number, or leave it out for the latest", decide.Quote(c.Query("size"))))
			return
		}
		note, err = h.store.CheckpointAt(size)
		if errors.Is(err, store.ErrNotFound) {
			h.fail(c, problemf(protocol.ProblemNotFound, "no checkpoint was published for tree size %d; the latest is at GET /v1/log/checkpoint", size))
			return
		}
	} else {
		note, size, err = h.store.Checkpoint()
		if errors.Is(err, store.ErrNotFound) {
			// Only before the hub has started: Start publishes one.
			h.fail(c, problemf(protocol.ProblemUnavailable, "the hub has not published its first checkpoint yet; it does when it starts, try again shortly"))
			return
		}
	}
	if err != nil {
		h.internal(c, "read checkpoint", err)
		return
	}
	// The witnesses' cosignatures of it, as more signature lines.
	cosigs, err := h.store.Cosignatures(size)
	if err != nil {
		h.internal(c, "read cosignatures", err)
		return
	}
	note = append(note, cosigs...)
	c.Header("Cache-Control", "no-cache")
	c.Header("X-Sparr-Tree-Size", strconv.FormatUint(size, 10))
	c.Data(http.StatusOK, "text/plain; charset=utf-8", note)
}

func hashesB64(hs []tlog.Hash) []string {
	out := make([]string, len(hs))
	for i, h := range hs {
		out[i] = base64.StdEncoding.EncodeToString(h[:])
	}
	return out
}

// inclusionProof: GET /v1/log/proof/inclusion?index=&size=.
func (h *Hub) inclusionProof(c *gin.Context) {
	index, ok1 := uintParam(c, "index", 0, true)
	size, ok2 := uintParam(c, "size", 0, true)
	if !ok1 || !ok2 {
		h.fail(c, problemf(protocol.ProblemMalformedRequest, "give index and size as decimal numbers: the entry's index, and the size of a checkpoint's tree"))
		return
	}
	p, err := h.store.InclusionProof(index, size)
	if errors.Is(err, store.ErrNotFound) {
		h.fail(c, problemf(protocol.ProblemNotFound, "%v", err))
		return
	}
	if err != nil {
		h.internal(c, "prove inclusion", err)
		return
	}
	resp := api.ProofResponse{Index: &index, Size: size, Proof: hashesB64(p)}
	lines, err := h.store.LogEntries(index, index+1)
	if err != nil || len(lines) != 1 {
		h.internal(c, "read log entry", fmt.Errorf("entry %d: %d lines, %v", index, len(lines), err))
		return
	}
	m := member(c)
	e, err := protocol.ParseLogEntry(lines[0])
	// A peer sees its own entries and those of the members whose writes it
	// relayed ("<peer>.<member>").
	if m.HasRole(api.RoleRegulator) || (err == nil && (e.Member == m.ID || m.HasRole(api.RolePeer) && strings.HasPrefix(e.Member, m.ID+"."))) {
		resp.Entry = string(lines[0])
	}
	c.JSON(http.StatusOK, resp)
}

// consistencyProof: GET /v1/log/proof/consistency?old=&new=.
func (h *Hub) consistencyProof(c *gin.Context) {
	old, ok1 := uintParam(c, "old", 0, true)
	size, ok2 := uintParam(c, "new", 0, true)
	if !ok1 || !ok2 || old == 0 {
		h.fail(c, problemf(protocol.ProblemMalformedRequest, "give old and new as decimal tree sizes, old at least 1 (every tree extends the empty one; there is nothing to prove)"))
		return
	}
	p, err := h.store.ConsistencyProof(old, size)
	if errors.Is(err, store.ErrNotFound) {
		h.fail(c, problemf(protocol.ProblemNotFound, "%v", err))
		return
	}
	if err != nil {
		h.internal(c, "prove consistency", err)
		return
	}
	c.JSON(http.StatusOK, api.ProofResponse{Old: &old, Size: size, Proof: hashesB64(p)})
}

// logEntries: GET /v1/log/entries?start=&end=, the raw entry lines [start,
// end), at most api.MaxLogPage of them: the bytes the tree is made of.
func (h *Hub) logEntries(c *gin.Context) {
	start, ok1 := uintParam(c, "start", 0, true)
	end, ok2 := uintParam(c, "end", 0, true)
	if !ok1 || !ok2 || end < start {
		h.fail(c, problemf(protocol.ProblemMalformedRequest, "give start and end (end ≥ start) as decimal entry indexes"))
		return
	}
	if end-start > api.MaxLogPage {
		end = start + api.MaxLogPage
	}
	lines, err := h.store.LogEntries(start, end)
	if err != nil {
		h.internal(c, "read log", err)
		return
	}
	c.Header("X-Sparr-Entries", strconv.Itoa(len(lines)))
	c.Status(http.StatusOK)
	c.Header("Content-Type", "text/plain; charset=utf-8")
	for _, l := range lines {
		c.Writer.Write(l)
	}
}

// logTile: GET /v1/log/tile/:level/*index, a tile of the log's Merkle tree
// (c2sp.org/tlog-tiles, with /v1/log as the prefix, so that the checkpoint
// is at /v1/log/checkpoint): 256 hashes at level 8×L of the tree, or the W
// of a partial tile.
func (h *Hub) logTile(c *gin.Context) {
	level := c.Param("level")
	if _, err := strconv.ParseUint(level, 10, 6); err != nil {
		h.fail(c, problemf(protocol.ProblemMalformedRequest, "tile level %s: want 0 to 63, as in /v1/log/tile/0/x001/234 (c2sp.org/tlog-tiles)", decide.Quote(level)))
		return
	}
	h.serveTile(c, level)
}

// logEntryBundle: GET /v1/log/tile/entries/*index, 256 entries of the log
// (or the W of a partial bundle), each after its length as a big-endian
// uint16 (c2sp.org/tlog-tiles).
func (h *Hub) logEntryBundle(c *gin.Context) { h.serveTile(c, "data") }

// serveTile answers a tile, level being its level or "data" for an entry
// bundle. A full tile never changes; a partial one is a prefix of it.
func (h *Hub) serveTile(c *gin.Context, level string) {
	index := strings.TrimPrefix(c.Param("index"), "/")
	// tlog.ParseTilePath takes a tile's one canonical path only, as
	// c2sp.org/tlog-tiles writes it (no leading zero in a level or width).
	t, err := tlog.ParseTilePath(fmt.Sprintf("tile/%d/%s/%s", store.TileHeight, level, index))
	if err != nil {
		h.fail(c, problemf(protocol.ProblemMalformedRequest, "tile index %s: want the index in groups of three digits, as in x001/234, with .p/<width> for a partial tile (c2sp.org/tlog-tiles)", decide.Quote(index)))
		return
	}
	data, err := h.store.Tile(t)
	if errors.Is(err, store.ErrNotFound) {
		h.fail(c, problemf(protocol.ProblemNotFound, "the log does not hold all of this tile yet; ask for the partial tile its latest checkpoint covers"))
		return
	}
	if err != nil {
		h.internal(c, "read tile", err)
		return
	}
	// Hash tiles are public, entry bundles the regulator's: only the
	// former may sit in a shared cache.
	scope := "public"
	if t.L < 0 {
		scope = "private"
	}
	if t.W == 1<<store.TileHeight {
		c.Header("Cache-Control", scope+", max-age=31536000, immutable")
	} else {
		c.Header("Cache-Control", scope+", max-age=60")
	}
	c.Data(http.StatusOK, "application/octet-stream", data)
}

func auditEntry(e *protocol.LogEntry) api.AuditEntry {
	a := api.AuditEntry{Index: e.Index, Time: e.Time, Member: e.Member, Action: e.Action, Result: e.Result}
	if e.Commitment != nil {
		a.Commitment = "sha256:" + hex.EncodeToString(e.Commitment)
	}
	if len(e.Attrs) > 0 {
		a.Attrs = map[string]string{}
		for _, kv := range e.Attrs {
			a.Attrs[kv.Key] = kv.Value
		}
	}
	return a
}

// auditFilter reads the filters audit routes share.
func (h *Hub) auditFilter(c *gin.Context) (store.LogFilter, bool) {
	f := store.LogFilter{Member: c.Query("member"), Action: protocol.LogAction(c.Query("action"))}
	for name, dst := range map[string]*time.Time{"from": &f.From, "to": &f.To} {
		if v := c.Query(name); v != "" {
			t, err := time.Parse(time.RFC3339, v)
			if err != nil {
				h.fail(c, decide.ParamProblem(protocol.ProblemMalformedRequest, name, "%s is not an RFC 3339 time such as 2026-11-21T00:00:00Z", decide.Quote(v)))
				return f, false
			}
			*dst = t
		}
	}
	if !f.To.IsZero() && f.To.Before(f.From) {
		h.fail(c, decide.ParamProblem(protocol.ProblemMalformedRequest, "to", "is before from"))
		return f, false
	}
	return f, true
}

// auditEntries: GET /v1/audit/entries?member=&action=&from=&to=&after=&limit=.
func (h *Hub) auditEntries(c *gin.Context) {
	f, ok := h.auditFilter(c)
	if !ok {
		return
	}
	after, ok := uintParam(c, "after", 0, false)
	limit, err := strconv.Atoi(c.DefaultQuery("limit", "100"))
	if !ok || err != nil || limit < 1 || limit > api.MaxLogPage {
		h.fail(c, problemf(protocol.ProblemMalformedRequest, "after is an entry index to continue from, limit 1 to %d", api.MaxLogPage))
		return
	}
	out := api.AuditPage{Entries: []api.AuditEntry{}}
	if c.Query("after") != "" {
		if after == math.MaxUint64 {
			// No entry follows the largest index; after+1 would wrap.
			c.JSON(http.StatusOK, out)
			return
		}
		f.Start = after + 1
	}
	err = h.store.ScanLog(f, func(e *protocol.LogEntry) (bool, error) {
		if len(out.Entries) == limit {
			next := out.Entries[limit-1].Index
			out.Next = &next
			return false, nil
		}
		out.Entries = append(out.Entries, auditEntry(e))
		return true, nil
	})
	if err != nil {
		h.internal(c, "scan log", err)
		return
	}
	c.JSON(http.StatusOK, out)
}

// auditStats: GET /v1/audit/stats?from=&to=&member=&action=, counts per
// member, per action, per day (UTC), and refusals per reason, over at most
// Config.MaxStatsEntries entries. The log is read in chunks, each in a
// short read transaction ([store.Store.ScanLog]).
func (h *Hub) auditStats(c *gin.Context) {
	f, ok := h.auditFilter(c)
	if !ok {
		return
	}
	first, end, err := h.store.LogSpan(f)
	if err != nil {
		h.internal(c, "find log range", err)
		return
	}
	if n := end - first; n > uint64(h.cfg.MaxStatsEntries) {
		h.fail(c, problemf(protocol.ProblemValidation,
			"the range asked for holds %d log entries (indexes %d to %d); stats count at most %d in one request: narrow it with from and to (a month at a time, say) and add the answers up",
			n, first, end-1, h.cfg.MaxStatsEntries))
		return
	}
	st := api.AuditStats{Members: map[string]uint64{}, Actions: map[string]uint64{}, Days: map[string]uint64{}, Refused: map[string]uint64{},
		Reconciliation: map[string]map[string]*api.Reconciliation{}}
	f.Start = first
	recalls := newRecallTimes()
	err = h.store.ScanLog(f, func(e *protocol.LogEntry) (bool, error) {
		reconcile(&st, e)
		recalls.add(e)
		st.Total++
		st.Members[e.Member]++
		st.Actions[string(e.Action)]++
		st.Days[e.Time.UTC().Format(time.DateOnly)]++
		if r, ok := strings.CutPrefix(e.Result, "rejected:"); ok {
			st.Refused[r]++
		}
		return true, nil
	})
	if err != nil {
		h.internal(c, "scan log", err)
		return
	}
	st.Recalls = recalls.stats()
	c.JSON(http.StatusOK, st)
}

// auditMembers: GET /v1/audit/members, every member with the state of
// delivery to its endpoint, as a regulator sees them: no keys, no endpoint
// URL, no secrets.
func (h *Hub) auditMembers(c *gin.Context) {
	ms, err := h.store.Members()
	if err != nil {
		h.internal(c, "list members", err)
		return
	}
	eps, err := h.store.Endpoints()
	if err != nil {
		h.internal(c, "list endpoints", err)
		return
	}
	delivery := map[string]*api.AuditDelivery{}
	for _, e := range eps {
		v, err := h.endpointView(e)
		if err != nil {
			h.internal(c, "read endpoint", err)
			return
		}
		delivery[v.Member] = &api.AuditDelivery{Status: v.Status, Reason: v.Reason, Backlog: v.Backlog, Failures: v.Failures,
			DeadLetters: v.DeadLetters, LastSuccessAt: v.LastSuccessAt, LastErrorAt: v.LastErrorAt, NextAttemptAt: v.NextAttemptAt}
	}
	out := api.AuditMembers{Members: []api.AuditMember{}}
	for _, m := range ms {
		out.Members = append(out.Members, api.AuditMember{ID: m.ID, Name: m.Name, Roles: m.Roles, Status: m.Status,
			CreatedAt: m.CreatedAt, UpdatedAt: m.UpdatedAt, Delivery: delivery[m.ID]})
	}
	c.JSON(http.StatusOK, out)
}

// auditExport: GET /v1/audit/export?format=jsonl|csv&…, the filtered
// entries as a download, streamed.
func (h *Hub) auditExport(c *gin.Context) {
	f, ok := h.auditFilter(c)
	if !ok {
		return
	}
	format := c.DefaultQuery("format", "jsonl")
	if format != "jsonl" && format != "csv" {
		h.fail(c, decide.ParamProblem(protocol.ProblemMalformedRequest, "format", "%s: use jsonl or csv", decide.Quote(format)))
		return
	}
	w := bufio.NewWriterSize(c.Writer, 64<<10)
	c.Header("Content-Disposition", fmt.Sprintf(`attachment; filename="sparr-audit.%s"`, format))
	var write func(api.AuditEntry) error
	if format == "jsonl" {
		c.Header("Content-Type", "application/jsonl")
		enc := json.NewEncoder(w)
		write = func(a api.AuditEntry) error { return enc.Encode(a) }
	} else {
		c.Header("Content-Type", "text/csv; charset=utf-8")
		cw := csv.NewWriter(w)
		cw.Write([]string{"index", "time", "member", "action", "result", "commitment", "attrs"})
		write = func(a api.AuditEntry) error {
			keys := make([]string, 0, len(a.Attrs))
			for k := range a.Attrs {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			var attrs []string
			for _, k := range keys {
				attrs = append(attrs, k+"="+a.Attrs[k])
			}
			cw.Write([]string{strconv.FormatUint(a.Index, 10), a.Time.Format(time.RFC3339Nano), a.Member, string(a.Action), a.Result, a.Commitment, strings.Join(attrs, " ")})
			cw.Flush()
			return cw.Error()
		}
	}
	c.Status(http.StatusOK)
	err := h.store.ScanLog(f, func(e *protocol.LogEntry) (bool, error) { return true, write(auditEntry(e)) })
	if err == nil {
		err = w.Flush()
	}
	if err != nil {
		h.log.Error("audit export failed midway", "request_id", c.GetString(keyRequestID), "error", err)
		panic(http.ErrAbortHandler)
	}
}
