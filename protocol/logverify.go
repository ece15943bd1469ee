package protocol

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// Errors a log verification finds, each wrapped in an error type that
// carries the evidence: test for them with errors.Is, and read the evidence
// with errors.As.
var (
	// ErrLogInconsistent: the new checkpoint does not extend the old one
	// (a forked or rewritten log). See [*InconsistencyError].
	ErrLogInconsistent = errors.New("log inconsistent with the earlier checkpoint")
	// ErrLogTruncated: the log is shorter than a checkpoint already seen.
	ErrLogTruncated = errors.New("log shorter than an earlier checkpoint")
	// ErrLogRootMismatch: the entries served do not hash to the checkpoint's
	// root: an entry was changed or replaced. See [*EntryError].
	ErrLogRootMismatch = errors.New("entries do not match the checkpoint")
	// ErrLogEntryMissing: fewer entries were served than the checkpoint
	// counts, or an entry is out of place.
	ErrLogEntryMissing = errors.New("entry missing")
	// ErrLogTimeBackwards: an entry is older than the one before it.
	ErrLogTimeBackwards = errors.New("entry time goes backwards")
	// ErrLogBadTombstone: an erasure entry names no earlier entry.
	ErrLogBadTombstone = errors.New("tombstone names no earlier entry")
	// ErrLogState: the state kept from an earlier run does not open with
	// the key, or its frontier does not match its checkpoint: it is
	// damaged or of another log. It is not evidence against the hub.
	ErrLogState = errors.New("kept log state unusable")
)

// A LogFetcher gets what a log verification needs from a hub. The
// verification never touches HTTP itself, so it can be tested on any
// source (as golang.org/x/mod/sumdb's client does with ClientOps).
type LogFetcher interface {
	// Checkpoint returns the latest signed checkpoint.
	Checkpoint(ctx context.Context) ([]byte, error)
	// Entries returns entry lines [start, end); it may return fewer than
	// asked (a page), never more.
	Entries(ctx context.Context, start, end uint64) ([][]byte, error)
	// ConsistencyProof proves that the tree of size old is a prefix of the
	// tree of size new.
	ConsistencyProof(ctx context.Context, old, new uint64) (tlog.TreeProof, error)
}

// A LogState is what a regulator keeps between verifications: the last
// checkpoint verified, the frontier of the tree it covers, and the time of
// its last entry.
type LogState struct {
	Checkpoint []byte    `json:"checkpoint"` // signed note
	Frontier   Frontier  `json:"frontier"`
	LastTime   time.Time `json:"last_time"`
}

// A LogReport summarizes one verification. Entries, Tombstones, First,
// Last and Actions are of the entries checked: the new ones, or with
// [LogAuditor.Full] the whole log; Added counts the new ones either way.
type LogReport struct {
	Old, New *Checkpoint // Old is nil on the first run (trust on first use)
	// Full says every entry was checked, not only the new ones.
	Full bool
	// Added is how many entries the log gained since Old (all of them on
	// the first run; after a declared rollback that gave Old up, those
	// from the rollback's entry on).
	Added uint64
	// Entries is how many entries were downloaded and checked.
	Entries     uint64
	Tombstones  uint64
	First, Last time.Time // times of the first and last entry checked
	Actions     map[LogAction]uint64
	// Rollbacks are the declared rollbacks among the entries checked, in
	// log order.
	Rollbacks []*Rollback
	// Declared, if set, is the declared rollback that gave up Old: the
	// log no longer extends the kept checkpoint, and the hub said so in
	// its log. Every entry was checked then (Full), since the kept state
	// no longer helps.
	Declared *Rollback
	// Cosignatures are the valid cosignatures on New by the witnesses
	// given ([LogAuditor.Witnesses]), MissingWitnesses those without one.
	Cosignatures     []Cosignature
	MissingWitnesses []string
}

// An InconsistencyError is the evidence that the log was forked or
// rewritten: two checkpoints signed by the log key, and the proof that
// fails to link them.
type InconsistencyError struct {
	Old, New *Checkpoint
	Proof    tlog.TreeProof
	Err      error // ErrLogInconsistent or ErrLogTruncated
	Detail   string
}

func (e *InconsistencyError) Error() string {
	return fmt.Sprintf("%v: earlier checkpoint (%s) and latest (%s): %s", e.Err, e.Old, e.New, e.Detail)
}

func (e *InconsistencyError) Unwrap() error { return e.Err }

// An EntryError is the evidence against one entry: its index, its line as
// served (if any), the checkpoint it was checked against, and the one kept
// from the run before, which the new one was proved to extend.
type EntryError struct {
	Index      uint64
	Entry      []byte
	Checkpoint *Checkpoint
	// Earlier is the checkpoint kept from the run before; nil on the
	// first run.
	Earlier *Checkpoint
	Err     error
	Detail  string
}

func (e *EntryError) Error() string {
	return fmt.Sprintf("%v: entry %d: %s (against checkpoint %s)", e.Err, e.Index, e.Detail, e.Checkpoint)
}

func (e *EntryError) Unwrap() error { return e.Err }

// A FetchError is a failure to get what a verification needs from the hub
// (no answer, a refusal, a rate limit): the log could not be checked, which
// is not evidence against it.
type FetchError struct {
	// What names what was asked for: "checkpoint", "entries from 40".
	What string
	Err  error
}

func (e *FetchError) Error() string { return fmt.Sprintf("fetch %s: %v", e.What, e.Err) }

func (e *FetchError) Unwrap() error { return e.Err }

// A LogAuditor verifies a hub's exchange log against its pinned log key.
type LogAuditor struct {
	Fetcher LogFetcher
	Key     note.Verifier
	// Progress, if set, is told how many of the new entries are checked.
	Progress func(done, total uint64)
	// Page is how many entries to ask for at once; default 1000.
	Page uint64
	// Full checks every entry from the first, not only those after the
	// kept checkpoint: an entry changed after it was first checked is
	// found only by reading it again.
	Full bool
	// Witnesses, if any, are the keys of witnesses the verifier trusts,
	// and Quorum how many of them must have cosigned the latest
	// checkpoint for it to be accepted (see [VerifyCosigned]); short of
	// it, Verify returns a [*QuorumError] before it reads any entry.
	Witnesses []note.Verifier
	Quorum    int
}

// Verify checks the hub's latest checkpoint against state (nil on the first
// run: trust on first use) and returns the new state to keep. It checks, in
// order: the checkpoint's signature; that the log did not shrink; a
// consistency proof from the old checkpoint to the new; every new entry
// (well formed, in its place, times never going backwards, tombstones
// naming earlier entries); and that the entries hash to the new root. On a
// mismatch it finds the first entry that differs.
//
// A log that no longer extends the kept checkpoint passes only if one of
// its entries declares the rollback that gave that checkpoint up (see
// [Rollback]): then every entry is checked, and the report names the
// rollback in Declared. Without such an entry it fails as before.
//
// A failure of the hub's log is a [*CheckpointError], an
// [*InconsistencyError] or an [*EntryError], each with its evidence; a
// failure to fetch is a [*FetchError], and a state that cannot be used
// [ErrLogState]: neither of those is evidence against the log.
func (a *LogAuditor) Verify(ctx context.Context, state *LogState) (*LogState, *LogReport, error) {
	msg, err := a.Fetcher.Checkpoint(ctx)
	if err != nil {
		return nil, nil, &FetchError{What: "checkpoint", Err: err}
	}
	latest, err := OpenCheckpoint(msg, a.Key)
	if err != nil {
		return nil, nil, err
	}
	report := &LogReport{New: latest, Full: a.Full, Added: latest.Size, Actions: map[LogAction]uint64{}}
	if len(a.Witnesses) > 0 || a.Quorum > 0 {
		_, cosigs, err := VerifyCosigned(msg, a.Key, a.Witnesses, a.Quorum)
		if err != nil {
			return nil, nil, err
		}
		report.Cosignatures = cosigs
		for _, w := range a.Witnesses {
			if !slices.ContainsFunc(cosigs, func(c Cosignature) bool { return c.Witness == w.Name() }) {
				report.MissingWitnesses = append(report.MissingWitnesses, w.Name())
			}
		}
	}
	front := &Frontier{}
	var lastTime time.Time
	// broken is the evidence against the kept checkpoint, unless a
	// declared rollback accounts for it.
	var broken *InconsistencyError
	if state != nil {
		old, err := OpenCheckpoint(state.Checkpoint, a.Key)
		if err != nil {
			return nil, nil, fmt.Errorf("%w: the kept checkpoint: %v; the state file is damaged or from another log (check the log key): restore it from your copy, or move it away to start over", ErrLogState, err)
		}
		if state.Frontier.Size != old.Size || state.Frontier.Root() != old.Root {
			return nil, nil, fmt.Errorf("%w: the frontier does not match the kept checkpoint; the state is damaged: start again from a known-good copy", ErrLogState)
		}
		report.Old = old
		report.Added = latest.Size - min(old.Size, latest.Size)
		if !a.Full {
			front, lastTime = state.Frontier.Clone(), state.LastTime
		}
		switch {
		case latest.Size < old.Size:
			broken = &InconsistencyError{Old: old, New: latest, Err: ErrLogTruncated,
				Detail: fmt.Sprintf("the log now has %d entries, %d fewer than before", latest.Size, old.Size-latest.Size)}
		case latest.Size > old.Size || latest.Root != old.Root:
			proof, err := a.Fetcher.ConsistencyProof(ctx, old.Size, latest.Size)
			if err != nil {
				return nil, nil, &FetchError{What: fmt.Sprintf("consistency proof %d→%d", old.Size, latest.Size), Err: err}
			}
			if err := tlog.CheckTree(proof, int64(latest.Size), latest.Root, int64(old.Size), old.Root); err != nil {
				broken = &InconsistencyError{Old: old, New: latest, Proof: proof, Err: ErrLogInconsistent, Detail: err.Error()}
			}
		}
		if broken != nil {
			// The log no longer extends the kept checkpoint. It passes
			// only if the hub declared a rollback that gave the kept
			// checkpoint up; to find it, and to know the log it serves
			// now, every entry is checked.
			front, lastTime, report.Full = &Frontier{}, time.Time{}, true
		}
	}

	start := front.Size
	total := latest.Size - start
	page := a.Page
	if page == 0 {
		page = 1000
	}
	next := start
	// Every markEvery entries keep a copy of the frontier (a few hundred
	// bytes), so that a mismatch can be traced to its entry without holding
	// the whole log in memory.
	marks := []*Frontier{front.Clone()}
	for next < latest.Size {
		lines, err := a.Fetcher.Entries(ctx, next, min(next+page, latest.Size))
		if err != nil {
			return nil, nil, &FetchError{What: fmt.Sprintf("entries from %d", next), Err: err}
		}
		if len(lines) == 0 {
			return nil, nil, &EntryError{Index: next, Checkpoint: latest, Earlier: report.Old, Err: ErrLogEntryMissing,
				Detail: fmt.Sprintf("the hub served no entry at %d though its checkpoint counts %d", next, latest.Size)}
		}
		for _, line := range lines {
			e, err := ParseLogEntry(line)
			if err != nil {
				return nil, nil, &EntryError{Index: next, Entry: line, Checkpoint: latest, Earlier: report.Old, Err: ErrLogRootMismatch, Detail: err.Error()}
			}
			if e.Index != next {
				return nil, nil, &EntryError{Index: next, Entry: line, Checkpoint: latest, Earlier: report.Old, Err: ErrLogEntryMissing,
					Detail: fmt.Sprintf("found entry %d where entry %d belongs", e.Index, next)}
			}
			if e.Time.Before(lastTime) {
				return nil, nil, &EntryError{Index: next, Entry: line, Checkpoint: latest, Earlier: report.Old, Err: ErrLogTimeBackwards,
					Detail: fmt.Sprintf("time %s is before the previous entry's %s", e.Time.Format(time.RFC3339Nano), lastTime.Format(time.RFC3339Nano))}
			}
			if e.Action == LogRollbackDeclared {
				r, err := ParseRollback(e)
				if err != nil {
					return nil, nil, &EntryError{Index: next, Entry: line, Checkpoint: latest, Earlier: report.Old, Err: ErrRollback, Detail: err.Error()}
				}
				report.Rollbacks = append(report.Rollbacks, r)
			}
			if e.Action == LogErased {
				v, _ := e.Attr("index")
				n, err := strconv.ParseUint(v, 10, 64)
				if err != nil || n >= e.Index {
					return nil, nil, &EntryError{Index: next, Entry: line, Checkpoint: latest, Earlier: report.Old, Err: ErrLogBadTombstone,
						Detail: fmt.Sprintf("it names index %q", v)}
				}
				report.Tombstones++
			}
			if report.Entries == 0 {
				report.First = e.Time
			}
			report.Last, lastTime = e.Time, e.Time
			report.Entries++
			report.Actions[e.Action]++
			front.Append(line)
			next++
			if (next-start)%markEvery == 0 {
				marks = append(marks, front.Clone())
			}
			if next == latest.Size {
				break
			}
		}
		if a.Progress != nil {
			a.Progress(next-start, total)
		}
	}
	if front.Root() != latest.Root {
		return nil, nil, a.findBad(ctx, latest, report.Old, marks)
	}
	if broken != nil {
		if report.Declared = declaredFor(report.Old, report.Rollbacks); report.Declared == nil {
			return nil, nil, broken
		}
		report.Added = latest.Size - report.Declared.NewSize
	}
	return &LogState{Checkpoint: latest.Note, Frontier: *front, LastTime: lastTime}, report, nil
}

const markEvery = 4096

// declaredFor returns the declared rollback that gave up the checkpoint
// old: one that went back to fewer entries than old has, from a checkpoint
// at least as large (the same one, if of the same size). Nil if none did.
func declaredFor(old *Checkpoint, rs []*Rollback) *Rollback {
	for _, r := range rs {
		if r.NewSize < old.Size && old.Size <= r.OldSize && (old.Size < r.OldSize || old.Root == r.OldRoot) {
			return r
		}
	}
	return nil
}

// findBad finds the first entry that does not belong to the signed tree:
// the end of the shortest prefix whose root the hub cannot prove consistent
// with the checkpoint. It searches the kept frontiers first, then the
// entries of the one segment at fault, fetched again.
func (a *LogAuditor) findBad(ctx context.Context, latest, earlier *Checkpoint, marks []*Frontier) error {
	belongs := func(f *Frontier) bool {
		if f.Size == 0 || f.Size == latest.Size {
			return f.Root() == latest.Root || f.Size == 0
		}
		proof, err := a.Fetcher.ConsistencyProof(ctx, f.Size, latest.Size)
		return err == nil && tlog.CheckTree(proof, int64(latest.Size), latest.Root, int64(f.Size), f.Root()) == nil
	}
	// marks[0] is the verified starting point. Find the last mark that
	// belongs; the bad entry is in the segment after it.
	lo, hi := 0, len(marks)
	for hi-lo > 1 {
		mid := (lo + hi) / 2
		if belongs(marks[mid]) {
			lo = mid
		} else {
			hi = mid
		}
	}
	base := marks[lo]
	end := min(base.Size+markEvery, latest.Size)
	var lines [][]byte
	for next := base.Size; next < end; {
		got, err := a.Fetcher.Entries(ctx, next, end)
		if err != nil || len(got) == 0 {
			return &EntryError{Index: next, Checkpoint: latest, Earlier: earlier, Err: ErrLogRootMismatch,
				Detail: fmt.Sprintf("the entries do not hash to the checkpoint's root, and fetching them again to find the one at fault failed: %v", err)}
		}
		lines = append(lines, got...)
		next += uint64(len(got))
	}
	prefix := func(k int) *Frontier {
		f := base.Clone()
		for _, l := range lines[:k] {
			f.Append(l)
		}
		return f
	}
	l, h := 0, len(lines) // prefix(l) belongs, prefix(h) does not
	for h-l > 1 {
		mid := (l + h) / 2
		if belongs(prefix(mid)) {
			l = mid
		} else {
			h = mid
		}
	}
	return &EntryError{Index: base.Size + uint64(h) - 1, Entry: lines[h-1], Checkpoint: latest, Earlier: earlier, Err: ErrLogRootMismatch,
		Detail: "this entry, as served, is not the one the checkpoint's tree holds: it was changed after it was logged"}
}
