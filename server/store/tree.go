package store

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"sort"
	"time"

	bolt "go.etcd.io/bbolt"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/sparr-dev/sparr/protocol"
)

// The exchange log as a Merkle tree (RFC 6962, golang.org/x/mod/sumdb/tlog):
// each entry's line is a leaf, its stored hashes are written with it, and
// signed checkpoints of the tree are kept, every one.

// TreeHash returns the root hash of the log's first size entries.
func (s *Store) TreeHash(size uint64) (tlog.Hash, error) {
	var h tlog.Hash
	err := s.db.View(func(tx *bolt.Tx) error {
		var err error
		h, err = treeHash(tx, size)
		return err
	})
	return h, err
}

func treeHash(tx *bolt.Tx, size uint64) (tlog.Hash, error) {
	if n := tx.Bucket(bLog).Sequence(); size > n {
		return tlog.Hash{}, fmt.Errorf("tree size %d: the log has %d entries", size, n)
	}
	if size == 0 {
		return protocol.EmptyRoot(), nil
	}
	return tlog.TreeHash(int64(size), txHashes{tx.Bucket(bLogHashes)})
}

// InclusionProof proves that entry index is in the tree of size entries.
func (s *Store) InclusionProof(index, size uint64) (tlog.RecordProof, error) {
	var p tlog.RecordProof
	err := s.db.View(func(tx *bolt.Tx) error {
		if n := tx.Bucket(bLog).Sequence(); size > n || index >= size {
			return fmt.Errorf("%w: entry %d in a tree of %d (the log has %d entries)", ErrNotFound, index, size, n)
		}
		var err error
		p, err = tlog.ProveRecord(int64(size), int64(index), txHashes{tx.Bucket(bLogHashes)})
		return err
	})
	return p, err
}

// ConsistencyProof proves that the tree of old entries is a prefix of the
// tree of size entries.
func (s *Store) ConsistencyProof(old, size uint64) (tlog.TreeProof, error) {
	var p tlog.TreeProof
	err := s.db.View(func(tx *bolt.Tx) error {
		if n := tx.Bucket(bLog).Sequence(); size > n || old > size {
			return fmt.Errorf("%w: trees of %d and %d entries (the log has %d)", ErrNotFound, old, size, n)
		}
		var err error
		p, err = tlog.ProveTree(int64(size), int64(old), txHashes{tx.Bucket(bLogHashes)})
		return err
	})
	return p, err
}

// Checkpoint returns the latest signed checkpoint and its size, or
// ErrNotFound before the first.
func (s *Store) Checkpoint() ([]byte, uint64, error) {
	var note []byte
	var size uint64
	err := s.db.View(func(tx *bolt.Tx) error {
		k, v := tx.Bucket(bCheckpoints).Cursor().Last()
		if k == nil {
			return ErrNotFound
		}
		note, size = bytes.Clone(v), binary.BigEndian.Uint64(k)
		return nil
	})
	return note, size, err
}

// CheckpointAt returns the checkpoint kept for a tree size.
func (s *Store) CheckpointAt(size uint64) ([]byte, error) {
	var note []byte
	err := s.db.View(func(tx *bolt.Tx) error {
		v := tx.Bucket(bCheckpoints).Get(u64(size))
		if v == nil {
			return ErrNotFound
		}
		note = bytes.Clone(v)
		return nil
	})
	return note, err
}

// PublishCheckpoint signs, with sign, a checkpoint of the log as it is now
// if it has grown since the last one, keeps it, and returns it. It returns
// the last checkpoint unchanged if the log has not grown.
func (s *Store) PublishCheckpoint(sign func(size uint64, root tlog.Hash) ([]byte, error)) ([]byte, uint64, error) {
	var note []byte
	var size uint64
	err := s.db.Update(func(tx *bolt.Tx) error {
		cps := tx.Bucket(bCheckpoints)
		n := tx.Bucket(bLog).Sequence()
		if k, v := cps.Cursor().Last(); k != nil && binary.BigEndian.Uint64(k) >= n {
			note, size = bytes.Clone(v), binary.BigEndian.Uint64(k)
			return nil
		}
		root, err := treeHash(tx, n)
		if err != nil {
			return err
		}
		if note, err = sign(n, root); err != nil {
			return err
		}
		size = n
		return cps.Put(u64(n), note)
	})
	return note, size, err
}

// A LogFilter selects log entries: by member and action (empty: any), by
// time (zero: unbounded; From inclusive, To exclusive), from index Start.
type LogFilter struct {
	Member, Action string
	From, To       time.Time
	Start          uint64
}

// ScanLog calls fn with each entry the filter selects, in index order,
// until fn returns false. Entry times never go backwards, so a time range
// is found by binary search rather than by reading the log from the start.
func (s *Store) ScanLog(f LogFilter, fn func(*protocol.LogEntry) (bool, error)) error {
	return s.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bLog)
		n := b.Sequence()
		start := f.Start
		if !f.From.IsZero() {
			first := uint64(sort.Search(int(n), func(i int) bool {
				e, err := protocol.ParseLogEntry(b.Get(u64(uint64(i))))
				return err != nil || !e.Time.Before(f.From)
			}))
			start = max(start, first)
		}
		c := b.Cursor()
		for k, v := c.Seek(u64(start)); k != nil; k, v = c.Next() {
			e, err := protocol.ParseLogEntry(v)
			if err != nil {
				return fmt.Errorf("log entry %d: %w", binary.BigEndian.Uint64(k), err)
			}
			if !f.To.IsZero() && !e.Time.Before(f.To) {
				return nil
			}
			if (f.Member != "" && e.Member != f.Member) || (f.Action != "" && e.Action != f.Action) {
				continue
			}
			more, err := fn(e)
			if err != nil || !more {
				return err
			}
		}
		return nil
	})
}
