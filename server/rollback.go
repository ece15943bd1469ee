package server

import (
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/sparr-dev/sparr/protocol"
	"github.com/sparr-dev/sparr/server/store"
)

// Errors [New] returns when the data file's exchange log cannot be
// served. Each is wrapped in a [*TreeError] that carries the evidence.
var (
	// ErrTreeDamaged: the data file's own latest checkpoint is not signed
	// by the hub's log key, or covers more entries than its log holds, or
	// another root: the file was truncated, damaged or is another hub's;
	// or its log is at least as long as the last checkpoint signed but has
	// another root there: rewritten, not an older copy. No declaration
	// serves it.
	ErrTreeDamaged = errors.New("the data file's log does not match its own checkpoints")
	// ErrRollback: the data file's log does not extend the last checkpoint
	// the hub signed, as kept in Config.LastCheckpoint (a restore from an
	// older backup, a truncated file). Config.DeclareRollback serves it,
	// giving up the entries after it, with a declared rollback in the log.
	ErrRollback = errors.New("the data file's log does not extend the last checkpoint the hub signed")
	// ErrNothingToDeclare: Config.DeclareRollback was given, but the data
	// file's log extends the last checkpoint signed: nothing was rolled
	// back.
	ErrNothingToDeclare = errors.New("no rollback to declare")
	// ErrLastCheckpoint: the file of Config.LastCheckpoint cannot be read,
	// or holds no checkpoint signed by the hub's log key.
	ErrLastCheckpoint = errors.New("the last checkpoint file is unusable")
)

// A TreeError is why the hub would not serve its data file's exchange
// log: the checkpoint the log was checked against and what the log holds.
// errors.Is(err, Err) holds.
type TreeError struct {
	Err error
	// Checkpoint is the checkpoint the log was checked against, as signed.
	Checkpoint *protocol.Checkpoint
	// From names where it was read: the last checkpoint file, or "the
	// data file".
	From string
	// Size is how many entries the data file's log holds.
	Size   uint64
	Detail string
}

func (e *TreeError) Error() string {
	return fmt.Sprintf("%v: checkpoint %s (from %s), data file log of %d entries: %s", e.Err, e.Checkpoint, e.From, e.Size, e.Detail)
}

func (e *TreeError) Unwrap() error { return e.Err }

// checkTree is the hub's check at start that it serves no fork of its
// exchange log. The data file's latest checkpoint must be signed by the
// log key and match the file's tree; and the file's tree must extend the
// last checkpoint the hub signed, kept in Config.LastCheckpoint, where a
// restored or truncated data file cannot take it back. A tree that does
// not extend it is served only when the operator declares the rollback
// (Config.DeclareRollback): then its entry is the first one appended, and
// a checkpoint covering it is signed at once. A missing last checkpoint
// file is started from the data file's latest checkpoint.
func (h *Hub) checkTree() error {
	verifier, err := protocol.NewLogVerifier(h.keys.LogVerifier)
	if err != nil {
		return err
	}
	size, err := h.store.LogSize()
	if err != nil {
		return fmt.Errorf("read the log's size: %w", err)
	}
	own, err := h.ownCheckpoint(verifier, size)
	if err != nil {
		return err
	}
	path := h.cfg.LastCheckpoint
	if path == "" {
		if h.cfg.DeclareRollback != "" {
			return fmt.Errorf("%w: the hub keeps no last checkpoint file (Config.LastCheckpoint), so it cannot tell a rollback", ErrNothingToDeclare)
		}
		return nil
	}
	last, err := readLastCheckpoint(path, verifier)
	if err != nil {
		return err
	}
	if last == nil {
		if h.cfg.DeclareRollback != "" {
			return fmt.Errorf("%w: there is no last checkpoint file %s to have rolled back from; start without declaring a rollback", ErrNothingToDeclare, path)
		}
		if own != nil {
			h.log.Warn("no last checkpoint file; starting it from the data file's latest checkpoint (docs/operations.md, Backups and restore)",
				"path", path, "size", own.Size)
			return h.keepLastCheckpoint(own.Note, own.Size)
		}
		return nil
	}
	extends := size >= last.Size
	if extends {
		root, err := h.store.TreeHash(last.Size)
		if err != nil {
			return fmt.Errorf("read the log's tree: %w", err)
		}
		extends = root == last.Root
	}
	if extends {
		if h.cfg.DeclareRollback != "" {
			return fmt.Errorf("%w: the data file's log of %d entries extends the last checkpoint signed (size %d, in %s); nothing was rolled back, so start without declaring a rollback",
				ErrNothingToDeclare, size, last.Size, path)
		}
		h.anchored = last.Size
		return nil
	}
	if size >= last.Size {
		// Not an older copy of the log, which a rollback could explain:
		// its entries were rewritten.
		return &TreeError{Err: ErrTreeDamaged, Checkpoint: last, From: path, Size: size,
			Detail: fmt.Sprintf("its first %d entries have another root than the last checkpoint signed: it is not an older copy of this log, and no declared rollback serves it", last.Size)}
	}
	if h.cfg.DeclareRollback == "" {
		return &TreeError{Err: ErrRollback, Checkpoint: last, From: path, Size: size,
			Detail: fmt.Sprintf("the log holds %d entries, %d fewer than the checkpoint counts; the data file was restored from an older backup or truncated", size, last.Size-size)}
	}
	return h.declareRollback(last, size)
}

// ownCheckpoint checks the data file's latest checkpoint against its
// tree, and returns it (nil if the file has none yet).
func (h *Hub) ownCheckpoint(verifier note.Verifier, size uint64) (*protocol.Checkpoint, error) {
	note, n, err := h.store.Checkpoint()
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read the latest checkpoint: %w", err)
	}
	c, err := protocol.OpenCheckpoint(note, verifier)
	if err != nil {
		return nil, &TreeError{Err: ErrTreeDamaged, Checkpoint: &protocol.Checkpoint{Origin: "?", Size: n}, From: "the data file", Size: size,
			Detail: fmt.Sprintf("its latest checkpoint does not open with this hub's log key %s (%v)", verifier.Name(), err)}
	}
	if c.Size != n || c.Size > size {
		return nil, &TreeError{Err: ErrTreeDamaged, Checkpoint: c, From: "the data file", Size: size,
			Detail: "its latest checkpoint counts more entries than its log holds: the file was truncated or damaged"}
	}
	root, err := h.store.TreeHash(c.Size)
	if err != nil {
		return nil, fmt.Errorf("read the log's tree: %w", err)
	}
	if root != c.Root {
		return nil, &TreeError{Err: ErrTreeDamaged, Checkpoint: c, From: "the data file", Size: size,
			Detail: fmt.Sprintf("its first %d entries hash to %s, not to the root of its latest checkpoint: the file was damaged", c.Size, b64(root))}
	}
	return c, nil
}

// declareRollback serves a tree that does not extend last, the last
// checkpoint signed: it appends the declared rollback as the first entry
// after the tree, signs a checkpoint covering it, and keeps that as the
// last checkpoint. Every checkpoint signed from now on covers the entry.
func (h *Hub) declareRollback(last *protocol.Checkpoint, size uint64) error {
	reason, err := protocol.RollbackReason(h.cfg.DeclareRollback)
	if err != nil {
		return err
	}
	r := &protocol.Rollback{Reason: reason, OldSize: last.Size, OldRoot: last.Root, NewSize: size}
	res, err := h.store.Apply(h.decide.DeclareRollback(r, h.now()))
	if err != nil {
		return fmt.Errorf("log the declared rollback: %w", err)
	}
	if res.LogIndex != size {
		return fmt.Errorf("log the declared rollback: it was logged at %d, not at %d, the first index after the tree; start again", res.LogIndex, size)
	}
	h.anchored = 0
	if _, err := h.PublishCheckpoint(); err != nil {
		return fmt.Errorf("sign the checkpoint after the declared rollback: %w", err)
	}
	h.log.Warn("declared rollback logged: the exchange log went back; entries after the restored data file are given up (docs/operations.md, Backups and restore)",
		"log_index", res.LogIndex, "reason", reason, "old_size", last.Size, "old_root", b64(last.Root), "new_size", size)
	return nil
}

// keepLastCheckpoint keeps note, the checkpoint of size entries just
// stored, in Config.LastCheckpoint, unless one as large is kept: written
// to a temporary file, synced, renamed into place, and the directory
// synced, so that a crash leaves the old checkpoint or the new one.
func (h *Hub) keepLastCheckpoint(note []byte, size uint64) error {
	if h.cfg.LastCheckpoint == "" {
		return nil
	}
	h.anchorMu.Lock()
	defer h.anchorMu.Unlock()
	if size <= h.anchored {
		return nil
	}
	if err := writeFileSynced(h.cfg.LastCheckpoint, note); err != nil {
		return fmt.Errorf("keep the last checkpoint in %s: %w", h.cfg.LastCheckpoint, err)
	}
	h.anchored = size
	return nil
}

// readLastCheckpoint reads the last checkpoint file, nil if there is none.
func readLastCheckpoint(path string, verifier note.Verifier) (*protocol.Checkpoint, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrLastCheckpoint, err)
	}
	c, err := protocol.OpenCheckpoint(b, verifier)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v; it is damaged, or of another hub (check DIR/keys/log.key)", ErrLastCheckpoint, path, err)
	}
	return c, nil
}

// writeFileSynced replaces path with data (mode 0600) through a synced
// temporary file in its directory, then syncs the directory.
func writeFileSynced(path string, data []byte) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp)
	_, err = f.Write(data)
	if err == nil {
		err = f.Chmod(0o600)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

func b64(h tlog.Hash) string { return base64.StdEncoding.EncodeToString(h[:]) }
