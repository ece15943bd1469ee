package console

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"filippo.io/torchwood"
	"golang.org/x/mod/sumdb/tlog"
	"golang.org/x/sync/errgroup"

	"github.com/sparr-dev/sparr/client"
	"github.com/sparr-dev/sparr/protocol"
	"github.com/sparr-dev/sparr/protocol/api"
)

// ErrEntryMismatch is returned (in an [EntryCheck]) when the hub's audit
// answer about an entry is not the line it proves in the log.
var ErrEntryMismatch = errors.New("the audit answer is not the entry in the log")

// An EntryCheck is an entry of the log browser and what became of
// verifying it: its line, proved in the checkpoint's tree, and the audit
// answer compared with that line.
type EntryCheck struct {
	api.AuditEntry
	// Status is "verified", "failed" or "pending" (past the checkpoint).
	Status string
	// Detail says why it failed.
	Detail string
	// Known is false for an action this version does not know (a
	// declared event of a later version, say): shown by its name.
	Known bool
}

// entryPage reads one page of the entries f selects through the audit
// API, and proves each in the checkpoint's tree with its inclusion proof,
// fetched and checked here.
func (c *Console) entryPage(ctx context.Context, cp *Checkpoint, f Filter, after *uint64, limit int) ([]EntryCheck, *uint64, error) {
	page, err := c.cfg.Client.AuditEntries(ctx, client.AuditFilter{Member: f.Member, Action: f.Action, From: f.From, To: f.To}, after, limit)
	if err != nil {
		return nil, nil, err
	}
	known := map[protocol.LogAction]bool{}
	for _, a := range protocol.LogActions() {
		known[a] = true
	}
	out := make([]EntryCheck, len(page.Entries))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(8)
	for i, a := range page.Entries {
		out[i] = EntryCheck{AuditEntry: a, Known: known[a.Action]}
		if a.Index >= cp.Size {
			out[i].Status = "pending"
			continue
		}
		g.Go(func() error {
			_, _, err := c.proveEntry(gctx, cp, &out[i].AuditEntry)
			switch {
			case err == nil:
				out[i].Status = "verified"
			case errors.Is(err, ErrBundleEntry), errors.Is(err, ErrEntryMismatch):
				out[i].Status, out[i].Detail = "failed", err.Error()
			default:
				return err
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, nil, err
	}
	return out, page.Next, nil
}

// proveEntry fetches the inclusion proof of the audit entry a in the
// checkpoint's tree, with its line, checks the proof, and checks that the
// line says what a says. It returns the line and proof.
func (c *Console) proveEntry(ctx context.Context, cp *Checkpoint, a *api.AuditEntry) (string, []string, error) {
	p, err := c.cfg.Client.Log().InclusionProof(ctx, a.Index, cp.Size)
	if err != nil {
		return "", nil, err
	}
	be := BundleEntry{Index: a.Index, Line: p.Entry, Proof: p.Proof}
	if p.Index == nil || *p.Index != a.Index || p.Size != cp.Size {
		return "", nil, &BundleError{Index: a.Index, Err: fmt.Errorf("%w: the hub answered a proof of another entry or tree", ErrBundleEntry)}
	}
	b := Bundle{Log: cp.Origin, Entries: []BundleEntry{be}}
	if _, err := b.checkEntries(cp); err != nil {
		return "", nil, err
	}
	e, _ := protocol.ParseLogEntry([]byte(p.Entry))
	if !sameEntry(a, e) {
		return "", nil, fmt.Errorf("%w: entry %d: the audit API says %s %s %s at %s, the log %s %s %s at %s", ErrEntryMismatch, a.Index,
			a.Member, a.Action, a.Result, a.Time.UTC().Format(time.RFC3339Nano), e.Member, e.Action, e.Result, e.Time.UTC().Format(time.RFC3339Nano))
	}
	return p.Entry, p.Proof, nil
}

// sameEntry reports whether the audit answer a says what the log line e
// does.
func sameEntry(a *api.AuditEntry, e *protocol.LogEntry) bool {
	if a.Index != e.Index || !a.Time.Equal(e.Time) || a.Member != e.Member || a.Action != e.Action || a.Result != e.Result || len(a.Attrs) != len(e.Attrs) {
		return false
	}
	commitment := ""
	if e.Commitment != nil {
		commitment = fmt.Sprintf("sha256:%x", e.Commitment)
	}
	if a.Commitment != commitment {
		return false
	}
	for _, kv := range e.Attrs {
		if a.Attrs[kv.Key] != kv.Value {
			return false
		}
	}
	return true
}

// A Window is the stretch of the log the charts count: the latest entries
// up to the checkpoint, of the last days, at most Config.MaxWindow of
// them, each line checked against the checkpoint's tree through its hash
// tiles.
type Window struct {
	Start, End uint64 // entries [Start, End)
	Entries    []*protocol.LogEntry
	// Cut says entries of the days asked for were left out, for
	// Config.MaxWindow.
	Cut  bool
	From time.Time
}

// window reads and verifies the charts' window for checkpoint cp.
func (c *Console) window(ctx context.Context, cp *Checkpoint) (*Window, error) {
	c.mu.Lock()
	if c.win != nil && c.winSize == cp.Size {
		w := c.win
		c.mu.Unlock()
		return w, nil
	}
	c.mu.Unlock()
	from := c.cfg.Now().Add(-time.Duration(c.cfg.Days) * 24 * time.Hour)
	start, err := c.firstAt(ctx, cp.Size, from)
	if err != nil {
		return nil, err
	}
	w := &Window{Start: start, End: cp.Size, From: from}
	if cp.Size-start > uint64(c.cfg.MaxWindow) {
		w.Start, w.Cut = cp.Size-uint64(c.cfg.MaxWindow), true
	}
	lines, err := c.lines(ctx, w.Start, w.End)
	if err != nil {
		return nil, err
	}
	if err := c.checkLines(ctx, cp, w.Start, lines); err != nil {
		return nil, err
	}
	for i, l := range lines {
		e, err := protocol.ParseLogEntry(l)
		if err != nil || e.Index != w.Start+uint64(i) {
			return nil, &BundleError{Index: w.Start + uint64(i), Line: string(l), Err: fmt.Errorf("%w: not the entry at its index (%v)", ErrBundleEntry, err)}
		}
		w.Entries = append(w.Entries, e)
	}
	c.mu.Lock()
	c.win, c.winSize = w, cp.Size
	c.mu.Unlock()
	return w, nil
}

// firstAt finds the first entry at or after t among the first size, by
// binary search (times never go backwards in the log); the entries it
// reads to find it are not trusted, only the window's lines are checked.
func (c *Console) firstAt(ctx context.Context, size uint64, t time.Time) (uint64, error) {
	var ferr error
	i := sort.Search(int(size), func(i int) bool {
		if ferr != nil {
			return true
		}
		ls, err := c.cfg.Client.Log().Entries(ctx, uint64(i), uint64(i)+1)
		if err != nil || len(ls) != 1 {
			ferr = fmt.Errorf("read log entry %d: %v", i, err)
			return true
		}
		e, err := protocol.ParseLogEntry(ls[0])
		if err != nil {
			ferr = fmt.Errorf("log entry %d: %w", i, err)
			return true
		}
		return !e.Time.Before(t)
	})
	return uint64(i), ferr
}

// lines reads the entry lines [start, end) in pages, a few at once.
func (c *Console) lines(ctx context.Context, start, end uint64) ([][]byte, error) {
	out := make([][]byte, end-start)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(4)
	for s := start; s < end; s += api.MaxLogPage {
		e := min(s+api.MaxLogPage, end)
		g.Go(func() error {
			for at := s; at < e; {
				ls, err := c.cfg.Client.Log().Entries(gctx, at, e)
				if err != nil {
					return err
				}
				if len(ls) == 0 {
					return fmt.Errorf("the hub served no entries at %d, below its checkpoint's %d", at, end)
				}
				for _, l := range ls {
					if at < e {
						out[at-start] = l
					}
					at++
				}
			}
			return nil
		})
	}
	return out, g.Wait()
}

// checkLines checks lines, the entries from start to the end of the
// checkpoint's tree, against it: it recomputes the tree's root from the
// lines' own hashes and, for the entries before start, the roots of the
// few complete subtrees left of them, read from the hub's hash tiles (and
// checked by tlog against the checkpoint). One request per 1000 entries
// for the lines, and a few dozen tiles, whatever the log's size.
func (c *Console) checkLines(ctx context.Context, cp *Checkpoint, start uint64, lines [][]byte) error {
	if len(lines) == 0 {
		return nil
	}
	n := int64(cp.Size)
	if int64(start)+int64(len(lines)) != n {
		return fmt.Errorf("check lines %d to %d: they must end at the checkpoint's %d", start, int(start)+len(lines), n)
	}
	leaves := make([]tlog.Hash, len(lines))
	for i, l := range lines {
		leaves[i] = tlog.RecordHash(l)
	}
	s := int64(start)
	// hash returns the root of the complete subtree of 2^level leaves
	// from lo, or, when known is nil, notes in need the stored hash it
	// takes from the hub.
	var need []int64
	known := map[int64]tlog.Hash{}
	var hash func(level int, lo int64, collect bool) tlog.Hash
	hash = func(level int, lo int64, collect bool) tlog.Hash {
		hi := lo + 1<<level
		switch {
		case hi <= s:
			id := tlog.StoredHashIndex(level, lo>>level)
			if collect {
				need = append(need, id)
			}
			return known[id]
		case lo >= s && collect:
			return tlog.Hash{}
		case level == 0:
			return leaves[lo-s]
		}
		return tlog.NodeHash(hash(level-1, lo, collect), hash(level-1, lo+1<<(level-1), collect))
	}
	root := func(collect bool) tlog.Hash {
		var subs []tlog.Hash
		lo := int64(0)
		for level := 63; level >= 0; level-- {
			if n&(1<<level) != 0 {
				subs = append(subs, hash(level, lo, collect))
				lo += 1 << level
			}
		}
		h := subs[len(subs)-1]
		for i := len(subs) - 2; i >= 0; i-- {
			h = tlog.NodeHash(subs[i], h)
		}
		return h
	}
	root(true)
	if len(need) > 0 {
		r := tlog.TileHashReader(tlog.Tree{N: n, Hash: cp.Root}, &tiles{ctx: ctx, log: c.cfg.Client.Log()})
		hs, err := r.ReadHashes(need)
		if err != nil {
			return &BundleError{Index: start, Err: fmt.Errorf("%w: the hub's hash tiles do not lead to the checkpoint's root: %v", ErrBundleEntry, err)}
		}
		for i, id := range need {
			known[id] = hs[i]
		}
	}
	if root(false) != cp.Root {
		return &BundleError{Index: start, Err: fmt.Errorf("%w: entries %d to %d as served do not make the checkpoint's root", ErrBundleEntry, start, n-1)}
	}
	return nil
}

// tiles reads the hub's hash tiles for a [tlog.TileHashReader], a few at
// once.
type tiles struct {
	ctx context.Context
	log *client.Log
}

var _ tlog.TileReader = (*tiles)(nil)

func (t *tiles) Height() int { return torchwood.TileHeight }

func (t *tiles) ReadTiles(ts []tlog.Tile) ([][]byte, error) {
	out := make([][]byte, len(ts))
	g, ctx := errgroup.WithContext(t.ctx)
	g.SetLimit(8)
	for i, tile := range ts {
		g.Go(func() error {
			b, err := t.log.Tile(ctx, torchwood.TilePath(tile))
			out[i] = b
			return err
		})
	}
	return out, g.Wait()
}

func (t *tiles) SaveTiles([]tlog.Tile, [][]byte) {}

// latest fetches the hub's latest checkpoint, verifies it, and proves it
// consistent with the last one this console verified: a hub that forks or
// rewrites its log while the console runs is caught.
func (c *Console) latest(ctx context.Context) (*Checkpoint, error) {
	msg, err := c.cfg.Client.Log().Checkpoint(ctx)
	if err != nil {
		return nil, err
	}
	cp, err := OpenCheckpoint(msg, c.cfg.LogKey, c.cfg.Witnesses, c.cfg.Quorum)
	var qe *QuorumError
	if err != nil && !errors.As(err, &qe) {
		return nil, err
	}
	c.mu.Lock()
	prev := c.last
	c.mu.Unlock()
	if prev != nil && prev.Size < cp.Size {
		proof, perr := c.cfg.Client.Log().ConsistencyProof(ctx, prev.Size, cp.Size)
		if perr != nil {
			return nil, perr
		}
		if cerr := tlog.CheckTree(proof, int64(cp.Size), cp.Root, int64(prev.Size), prev.Root); cerr != nil {
			return nil, &protocol.InconsistencyError{Old: prev.Checkpoint, New: cp.Checkpoint, Proof: proof, Err: protocol.ErrLogInconsistent, Detail: cerr.Error()}
		}
	} else if prev != nil && (prev.Size > cp.Size || (prev.Size == cp.Size && prev.Root != cp.Root)) {
		return nil, &protocol.InconsistencyError{Old: prev.Checkpoint, New: cp.Checkpoint, Err: protocol.ErrLogInconsistent, Detail: "the console verified the earlier checkpoint while it ran"}
	}
	if prev == nil || cp.Size >= prev.Size {
		c.mu.Lock()
		c.last = cp
		c.mu.Unlock()
	}
	return cp, err
}
