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
	"github.com/sparr-dev/sparr/server/state"
)

// The exchange log as a Merkle tree (RFC 6962, golang.org/x/mod/sumdb/tlog):
// each entry's line is a leaf, its stored hashes are written with it, and
// signed checkpoints of the tree are kept, every one.

// TreeHash returns the root hash of the log's first size entries.
func (s *Store) TreeHash(size uint64) (tlog.Hash, error) {
	var h tlog.Hash
	err := s.view(func(tx *bolt.Tx) error {
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
	err := s.view(func(tx *bolt.Tx) error {
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
	err := s.view(func(tx *bolt.Tx) error {
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
	err := s.view(func(tx *bolt.Tx) error {
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
	err := s.view(func(tx *bolt.Tx) error {
		v := tx.Bucket(bCheckpoints).Get(u64(size))
		if v == nil {
			return ErrNotFound
		}
		note = bytes.Clone(v)
		return nil
	})
	return note, err
}

// Cosignatures returns the witnesses' signature lines kept for the
// checkpoint of a tree size (see [state.AddCosignature]), each ending in
// a newline, in the order of the witnesses' names: what to append to the
// checkpoint's note.
func (s *Store) Cosignatures(size uint64) ([]byte, error) {
	var lines []byte
	err := s.view(func(tx *bolt.Tx) error {
		c, prefix := tx.Bucket(bCosignatures).Cursor(), u64(size)
		for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
			lines = append(append(lines, v...), '\n')
		}
		return nil
	})
	return lines, err
}

// PublishCheckpoint signs, with sign, a checkpoint of the log as it is now
// if it has grown since the last one, keeps it, and returns it with its
// size. It returns the last checkpoint unchanged if the log has not grown.
// The size and root are read in a short read transaction, sign runs
// outside any transaction, and the checkpoint is kept by applying a
// command (a [state.PutCheckpoint]), as every change to the store is.
func (s *Store) PublishCheckpoint(sign func(size uint64, root tlog.Hash) ([]byte, error)) ([]byte, uint64, error) {
	var last []byte
	var lastSize, size uint64
	var root tlog.Hash
	err := s.view(func(tx *bolt.Tx) error {
		size = tx.Bucket(bLog).Sequence()
		if k, v := tx.Bucket(bCheckpoints).Cursor().Last(); k != nil {
			last, lastSize = bytes.Clone(v), binary.BigEndian.Uint64(k)
			if lastSize >= size {
				return nil
			}
		}
		var err error
		root, err = treeHash(tx, size)
		return err
	})
	if err != nil {
		return nil, 0, err
	}
	if last != nil && lastSize >= size {
		return last, lastSize, nil
	}
	note, err := sign(size, root)
	if err != nil {
		return nil, 0, err
	}
	res, err := s.Apply(&state.PutCheckpoint{Size: size, Root: root, Note: note})
	if err != nil {
		return nil, 0, err
	}
	if res.Conflict {
		// Published by another call (or, on a replicated hub, another
		// node) meanwhile: the latest one is kept.
		return s.Checkpoint()
	}
	return note, size, err
}

// A LogFilter selects log entries: by member and action (empty: any), by
// time (zero: unbounded; From inclusive, To exclusive), from index Start.
type LogFilter struct {
	Member   string
	Action   protocol.LogAction
	From, To time.Time
	Start    uint64
}

// LogSpan returns the indexes [first, end) of the log entries within the
// filter's time range and from its Start, among the entries the log holds
// now, whatever their member and action: the entries [Store.ScanLog]
// reads for f. Entry times never go backwards, so the range is found by
// binary search, in one short read transaction.
func (s *Store) LogSpan(f LogFilter) (first, end uint64, err error) {
	err = s.view(func(tx *bolt.Tx) error {
		b := tx.Bucket(bLog)
		size := b.Sequence()
		at := func(t time.Time) uint64 {
			return uint64(sort.Search(int(size), func(i int) bool {
				e, err := protocol.ParseLogEntry(b.Get(u64(uint64(i))))
				return err != nil || !e.Time.Before(t)
			}))
		}
		first, end = min(f.Start, size), size
		if !f.From.IsZero() {
			first = max(first, at(f.From))
		}
		if !f.To.IsZero() {
			end = max(first, at(f.To))
		}
		return nil
	})
	return first, end, err
}

// ScanLog calls fn with each entry the filter selects, in index order,
// until fn returns false, among the entries the log holds when it starts.
// Entry times never go backwards, so a time range is found by binary
// search rather than by reading the log from the start ([Store.LogSpan]).
// It reads the log in chunks of Options.ScanChunk entries, each in a short
// read transaction of its own, and calls fn outside them: a slow fn (a
// download to a slow client) holds no transaction open, which would keep
// bbolt from reusing pages and growing the file.
func (s *Store) ScanLog(f LogFilter, fn func(*protocol.LogEntry) (bool, error)) error {
	next, end, err := s.LogSpan(f)
	if err != nil {
		return err
	}
	for next < end {
		var chunk []*protocol.LogEntry
		done := false
		stop := min(next+uint64(s.opts.ScanChunk), end)
		err := s.view(func(tx *bolt.Tx) error {
			c := tx.Bucket(bLog).Cursor()
			for k, v := c.Seek(u64(next)); k != nil && binary.BigEndian.Uint64(k) < stop; k, v = c.Next() {
				// ParseLogEntry copies what it keeps: nothing of the
				// transaction's memory outlives it.
				e, err := protocol.ParseLogEntry(v)
				if err != nil {
					return fmt.Errorf("log entry %d: %w", binary.BigEndian.Uint64(k), err)
				}
				if !f.To.IsZero() && !e.Time.Before(f.To) {
					done = true
					return nil
				}
				if (f.Member != "" && e.Member != f.Member) || (f.Action != "" && e.Action != f.Action) {
					continue
				}
				chunk = append(chunk, e)
			}
			return nil
		})
		if err != nil {
			return err
		}
		for _, e := range chunk {
			more, err := fn(e)
			if err != nil || !more {
				return err
			}
		}
		if done {
			return nil
		}
		next = stop
	}
	return nil
}

// TileHeight is the height of the log's tiles (c2sp.org/tlog-tiles): a
// full tile holds 256 hashes, a full entry bundle 256 entries.
const TileHeight = 8

// Tile returns the data of tile t of the log (c2sp.org/tlog-tiles, in
// golang.org/x/mod/sumdb/tlog's terms, with H = [TileHeight]): for a hash
// tile its W hashes, for an entry bundle (L = -1) its W entries, each after
// its length as a big-endian uint16. It returns ErrNotFound if the log does
// not hold all of the tile yet.
func (s *Store) Tile(t tlog.Tile) ([]byte, error) {
	if t.H != TileHeight || t.W < 1 || t.W > 1<<TileHeight || t.N < 0 || t.L < -1 {
		return nil, fmt.Errorf("tile %s: not a tile of this log", t.Path())
	}
	// The leaves the tile needs: all those under its last hash.
	level := max(t.L, 0) * TileHeight
	if level >= 64-TileHeight || uint64(t.N) >= (1<<(64-TileHeight-level))-1 {
		return nil, fmt.Errorf("%w: tile %s is beyond any log", ErrNotFound, t.Path())
	}
	need := (uint64(t.N)<<TileHeight + uint64(t.W)) << level
	var data []byte
	err := s.view(func(tx *bolt.Tx) error {
		if n := tx.Bucket(bLog).Sequence(); need > n {
			return fmt.Errorf("%w: tile %s needs %d entries, the log has %d", ErrNotFound, t.Path(), need, n)
		}
		if t.L >= 0 {
			var err error
			data, err = tlog.ReadTileData(t, txHashes{tx.Bucket(bLogHashes)})
			return err
		}
		b, first := tx.Bucket(bLog), uint64(t.N)<<TileHeight
		for i := range uint64(t.W) {
			line := b.Get(u64(first + i))
			if line == nil {
				return fmt.Errorf("log entry %d missing", first+i)
			}
			data = binary.BigEndian.AppendUint16(data, uint16(len(line)))
			data = append(data, line...)
		}
		return nil
	})
	return data, err
}
