package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/sparr-dev/sparr/server/state"
)

// ErrApplied is the outcome [Store.ApplyEntries] gives an entry at or
// below the index the store has already applied: it is skipped, so that
// replaying a replicated log after a crash changes nothing.
var ErrApplied = errors.New("entry already applied")

// keyAppliedIndex is the meta key of the index of the last replicated-log
// entry applied, written in the transaction that applies it.
var keyAppliedIndex = []byte("applied_index")

// An Entry is one entry of a replicated log: its index and its command.
// An entry without a command (a change of the cluster's membership) only
// advances the applied index.
type Entry struct {
	Index   uint64
	Command state.Command
}

// An Outcome is what applying one [Entry] did: the command's Result, or
// the error that kept it from being applied ([ErrApplied] for an entry
// applied before).
type Outcome struct {
	Result *Result
	Err    error
}

// SetProposer makes the store replicated: from now on [Store.Apply] hands
// each command to fn, which appends it to a replicated log and returns
// what [Store.ApplyEntries] did with it once the log committed it. Nil
// makes the store apply commands itself again.
func (s *Store) SetProposer(fn func(state.Command) (*Result, error)) {
	if fn == nil {
		s.propose.Store(nil)
		return
	}
	s.propose.Store(&fn)
}

// ApplyEntries applies entries of a replicated log, in order, in one
// transaction, and records the index of the last one in the same
// transaction. Entries at or below the recorded index are skipped
// ([ErrApplied]): a node that crashed after the transaction committed and
// replays its log changes nothing. If the transaction fails, each entry is
// applied alone; an entry whose command fails alone is skipped with its
// error, its index recorded, as it is on every node.
func (s *Store) ApplyEntries(entries []Entry) []Outcome {
	out := make([]Outcome, len(entries))
	start := time.Now()
	var applied []state.Command
	err := s.update(func(tx *bolt.Tx) error {
		for _, name := range appendMostly {
			tx.Bucket(name).FillPercent = 0.95
		}
		last := appliedIndex(tx)
		for i, e := range entries {
			if e.Index <= last {
				out[i].Err = ErrApplied
				continue
			}
			if e.Command != nil {
				r, err := apply(tx, e.Command)
				if err != nil {
					return err
				}
				out[i].Result = r
				applied = append(applied, e.Command)
			}
			last = e.Index
		}
		return tx.Bucket(bMeta).Put(keyAppliedIndex, binary.BigEndian.AppendUint64(nil, last))
	})
	if fn := s.onCommit.Load(); fn != nil {
		(*fn)(len(entries), time.Since(start))
	}
	if err == nil {
		if fn := s.applied.Load(); fn != nil && len(applied) > 0 {
			(*fn)(applied)
		}
		return out
	}
	if len(entries) > 1 {
		for i := range entries {
			out[i] = s.ApplyEntries(entries[i : i+1])[0]
		}
		return out
	}
	idx := entries[0].Index
	if uerr := s.update(func(tx *bolt.Tx) error {
		if appliedIndex(tx) >= idx {
			return nil
		}
		return tx.Bucket(bMeta).Put(keyAppliedIndex, binary.BigEndian.AppendUint64(nil, idx))
	}); uerr != nil {
		err = errors.Join(err, uerr)
	}
	out[0].Err = err
	return out
}

// AppliedIndex returns the index of the last replicated-log entry the
// store applied; 0 for none.
func (s *Store) AppliedIndex() (uint64, error) {
	var n uint64
	err := s.view(func(tx *bolt.Tx) error {
		n = appliedIndex(tx)
		return nil
	})
	return n, err
}

func appliedIndex(tx *bolt.Tx) uint64 {
	v := tx.Bucket(bMeta).Get(keyAppliedIndex)
	if len(v) != 8 {
		return 0
	}
	return binary.BigEndian.Uint64(v)
}

// A FileSnapshot is a consistent copy of the store as it was when
// [Store.SnapshotFile] returned, held open in a read transaction while
// commands go on being applied. Close it when done.
type FileSnapshot struct {
	tx *bolt.Tx
}

// SnapshotFile opens a [FileSnapshot] of the store now.
func (s *Store) SnapshotFile() (*FileSnapshot, error) {
	s.dbMu.RLock()
	defer s.dbMu.RUnlock()
	tx, err := s.db.Begin(false)
	if err != nil {
		return nil, err
	}
	return &FileSnapshot{tx: tx}, nil
}

// AppliedIndex returns the replicated-log index the snapshot covers.
func (sn *FileSnapshot) AppliedIndex() uint64 { return appliedIndex(sn.tx) }

// WriteTo writes the snapshot's data file to w (bbolt's Tx.WriteTo).
func (sn *FileSnapshot) WriteTo(w io.Writer) (int64, error) { return sn.tx.WriteTo(w) }

// Close ends the snapshot's read transaction.
func (sn *FileSnapshot) Close() error { return sn.tx.Rollback() }

// Restore replaces the store's data file by the one read from r (written
// by [FileSnapshot.WriteTo] or [Store.Backup]): it writes a temporary file
// beside the data file, syncs it, checks that it opens as a data file,
// then, with no transaction open, closes the file, renames the new one
// over it, syncs the directory and opens it. Readers wait meanwhile; the
// store stays the same *Store.
func (s *Store) Restore(r io.Reader) error {
	path := s.Path()
	tmp := path + ".restore"
	if err := writeSynced(tmp, r); err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	check, err := openDB(tmp, s.opts)
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("restore: the snapshot is not a data file: %w", err)
	}
	if err := check.Close(); err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	s.dbMu.Lock()
	defer s.dbMu.Unlock()
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("restore: close the data file: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	if err := syncDir(filepath.Dir(path)); err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	db, err := openDB(path, s.opts)
	if err != nil {
		return fmt.Errorf("restore: reopen: %w", err)
	}
	s.db = db
	return nil
}

func writeSynced(path string, r io.Reader) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, r); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// ResetAppliedIndex forgets the applied index: for a data file that
// starts a new replicated log (a new cluster bootstrapped on a copy of one
// data file), whose indexes start again from 1.
func (s *Store) ResetAppliedIndex() error {
	return s.update(func(tx *bolt.Tx) error {
		return tx.Bucket(bMeta).Delete(keyAppliedIndex)
	})
}
