package store

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	bolt "go.etcd.io/bbolt"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/sparr-dev/sparr/protocol"
	"github.com/sparr-dev/sparr/protocol/api"
	"github.com/sparr-dev/sparr/server/state"
)

// The writes commands share: log entries with their Merkle hashes, flags
// and suspicions with their indexes, erasures, and JSON values.

// nextIndex reserves the next log index (0-based).
func nextIndex(tx *bolt.Tx) (uint64, error) {
	n, err := tx.Bucket(bLog).NextSequence()
	return n - 1, err
}

// appendLog writes the command's log entry at idx and its details beside
// it. Entry times never go backwards: a command decided a moment before one
// already written takes that one's time.
func appendLog(tx *bolt.Tx, idx uint64, h *state.Head, action protocol.LogAction, extra ...protocol.LogAttr) error {
	meta := tx.Bucket(bMeta)
	at := h.At.UTC()
	c := &h.Entry
	if v := meta.Get([]byte("log_time")); len(v) == 8 {
		if last := time.Unix(0, int64(binary.BigEndian.Uint64(v))).UTC(); at.Before(last) {
			at = last
		}
	}
	if err := meta.Put([]byte("log_time"), u64(uint64(at.UnixNano()))); err != nil {
		return err
	}
	attrs := c.Attrs
	if len(extra) > 0 {
		attrs = append(slices.Clip(attrs), extra...)
	}
	e := protocol.LogEntry{Index: idx, Time: at, Member: h.Actor, Action: action, Result: c.Result, Attrs: attrs}
	if e.Result == "" {
		e.Result = "ok"
	}
	if c.Details != nil {
		e.Commitment = protocol.LogCommitment(c.Salt, c.Details)
		if err := put(tx, bLogDetails, string(u64(idx)), state.Details{Salt: c.Salt, Details: c.Details, Subjects: c.Subjects}); err != nil {
			return err
		}
		for _, t := range c.Subjects {
			if err := tx.Bucket(bLogSubject).Put(subjectKey(t, idx), []byte(action)); err != nil {
				return err
			}
		}
	}
	line, err := e.Marshal()
	if err != nil {
		return err
	}
	if err := tx.Bucket(bLog).Put(u64(idx), line); err != nil {
		return err
	}
	return storeHashes(tx, idx, line)
}

// storeHashes writes the Merkle tree hashes that entry idx completes, in
// the same transaction as the entry (tlog's stored hashes: the leaf, and
// the root of every perfect subtree it finishes).
func storeHashes(tx *bolt.Tx, idx uint64, line []byte) error {
	b := tx.Bucket(bLogHashes)
	hs, err := tlog.StoredHashes(int64(idx), line, txHashes{b})
	if err != nil {
		return fmt.Errorf("log hashes of entry %d: %w", idx, err)
	}
	start := uint64(tlog.StoredHashIndex(0, int64(idx)))
	for i, h := range hs {
		if err := b.Put(u64(start+uint64(i)), h[:]); err != nil {
			return err
		}
	}
	return nil
}

// txHashes reads stored hashes within a transaction.
type txHashes struct{ b *bolt.Bucket }

func (r txHashes) ReadHashes(indexes []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(indexes))
	for i, x := range indexes {
		v := r.b.Get(u64(uint64(x)))
		if len(v) != tlog.HashSize {
			return nil, fmt.Errorf("stored hash %d missing", x)
		}
		copy(out[i][:], v)
	}
	return out, nil
}

// putFlag writes a flag and keeps its indexes: an active flag is found by
// its subject and by its expiry; an ended one by neither.
func putFlag(tx *bolt.Tx, old, f *state.Flag) error {
	byToken, byExpiry, byRemind := tx.Bucket(bFlagByToken), tx.Bucket(bFlagExpiry), tx.Bucket(bFlagRemind)
	if old != nil && old.Status == api.FlagActive {
		if err := byToken.Delete([]byte(old.Subject)); err != nil {
			return err
		}
		if err := byExpiry.Delete(timeKey(old.ExpiresAt, old.ID)); err != nil {
			return err
		}
		if err := byRemind.Delete(timeKey(old.RemindAt, old.ID)); err != nil {
			return err
		}
	}
	if f.Status == api.FlagActive {
		if err := byToken.Put([]byte(f.Subject), []byte(f.ID)); err != nil {
			return err
		}
		if err := byExpiry.Put(timeKey(f.ExpiresAt, f.ID), nil); err != nil {
			return err
		}
		if !f.RemindAt.IsZero() && f.RemindedAt.IsZero() {
			if err := byRemind.Put(timeKey(f.RemindAt, f.ID), nil); err != nil {
				return err
			}
		}
	}
	return put(tx, bFlags, f.ID, f)
}

func suspTokenKey(token, id string) []byte { return []byte(token + "\x00" + id) }

// putSuspicion writes a suspicion and keeps its indexes.
func putSuspicion(tx *bolt.Tx, old, s *state.Suspicion) error {
	byToken, byExpiry := tx.Bucket(bSuspByToken), tx.Bucket(bSuspExpiry)
	if old != nil && old.Status == api.SuspicionActive {
		for _, t := range old.Subjects {
			if err := byToken.Delete(suspTokenKey(t, old.ID)); err != nil {
				return err
			}
		}
		if err := byExpiry.Delete(timeKey(old.ExpiresAt, old.ID)); err != nil {
			return err
		}
	}
	if s.Status == api.SuspicionActive {
		for _, t := range s.Subjects {
			if err := byToken.Put(suspTokenKey(t, s.ID), nil); err != nil {
				return err
			}
		}
		if err := byExpiry.Put(timeKey(s.ExpiresAt, s.ID), nil); err != nil {
			return err
		}
	}
	return put(tx, bSuspicions, s.ID, s)
}

// subjectKey is the key of entry idx in the subject index under token.
func subjectKey(token string, idx uint64) []byte {
	return append([]byte(token+"\x00"), u64(idx)...)
}

// erase deletes records, the details of their log entries and of any
// further entries named or indexed under a subject, and a consent, and
// returns the log entries whose details it deleted, each now waiting for
// its tombstone (see [pendErasure]). The entries themselves stay: without
// salt and details their commitments link to nothing.
func erase(tx *bolt.Tx, e *state.Erase, at time.Time) ([]uint64, error) {
	bySubject := tx.Bucket(bLogSubject)
	var erased []uint64
	forget := func(idx uint64) error {
		if slices.Contains(erased, idx) {
			return nil
		}
		gone, err := forgetDetails(tx, idx, e.Basis, at)
		if gone {
			erased = append(erased, idx)
		}
		return err
	}
	for _, t := range e.Subjects {
		// Collect first: forget deletes from the bucket being read.
		var due []uint64
		prefix := []byte(t + "\x00")
		c := bySubject.Cursor()
		for k, action := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, action = c.Next() {
			if len(e.Actions) == 0 || slices.Contains(e.Actions, protocol.LogAction(action)) {
				due = append(due, binary.BigEndian.Uint64(k[len(prefix):]))
			}
		}
		for _, idx := range due {
			if err := forget(idx); err != nil {
				return nil, err
			}
			if err := bySubject.Delete(subjectKey(t, idx)); err != nil {
				return nil, err
			}
		}
	}
	records := e.Records
	if erasesNotices(e) {
		records = slices.Clone(records)
		for _, t := range e.Subjects {
			ids, err := eraseNotices(tx, t)
			if err != nil {
				return nil, err
			}
			records = append(records, ids...)
		}
	}
	for _, id := range records {
		rec, err := get[state.Record](tx, bRecords, id)
		if err == ErrNotFound {
			continue
		}
		if err != nil {
			return nil, err
		}
		if err := tx.Bucket(bRecords).Delete([]byte(id)); err != nil {
			return nil, err
		}
		if err := forget(rec.LogIndex); err != nil {
			return nil, err
		}
	}
	for _, idx := range e.LogEntries {
		if err := forget(idx); err != nil {
			return nil, err
		}
	}
	if e.Disputes {
		if err := eraseDisputes(tx, e.Subjects); err != nil {
			return nil, err
		}
	}
	if e.Consent != "" {
		if err := tx.Bucket(bConsents).Delete([]byte(e.Consent)); err != nil {
			return nil, err
		}
	}
	slices.Sort(erased)
	return erased, nil
}

// forgetDetails deletes the salt and details of log entry idx and its rows
// in the subject index, and sets its tombstone pending with basis, at. It
// reports whether there were details to delete.
func forgetDetails(tx *bolt.Tx, idx uint64, basis string, at time.Time) (bool, error) {
	details, bySubject := tx.Bucket(bLogDetails), tx.Bucket(bLogSubject)
	v := details.Get(u64(idx))
	if v == nil {
		return false, nil
	}
	var d state.Details
	if err := json.Unmarshal(v, &d); err != nil {
		return false, fmt.Errorf("details of log entry %d: %w", idx, err)
	}
	for _, t := range d.Subjects {
		if err := bySubject.Delete(subjectKey(t, idx)); err != nil {
			return false, err
		}
	}
	if err := details.Delete(u64(idx)); err != nil {
		return false, err
	}
	return true, pendErasure(tx, idx, basis, at)
}

func put(tx *bolt.Tx, bucket []byte, key string, v any) error {
	return putKey(tx, bucket, []byte(key), v)
}

func putKey(tx *bolt.Tx, bucket, key []byte, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return tx.Bucket(bucket).Put(key, b)
}

// get decodes the value at key, or returns ErrNotFound.
func get[T any](tx *bolt.Tx, bucket []byte, key string) (*T, error) {
	v := tx.Bucket(bucket).Get([]byte(key))
	if v == nil {
		return nil, ErrNotFound
	}
	out := new(T)
	if err := json.Unmarshal(v, out); err != nil {
		return nil, fmt.Errorf("%s %q: %w", bucket, key, err)
	}
	return out, nil
}
