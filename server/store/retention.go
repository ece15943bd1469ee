package store

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/sparr-dev/sparr/protocol"
	"github.com/sparr-dev/sparr/server/state"
)

// What the store keeps only for a while: erasures waiting for their
// tombstones, log details until their retention ends, the outcomes of
// submissions while a repeat may still come, and each member's daily use
// of its quotas.

// A pendingErasure is a log entry whose details were erased and whose
// tombstone is not published yet.
type pendingErasure struct {
	Basis string    `json:"basis"`
	At    time.Time `json:"at"`
}

// pendErasure sets the tombstone of entry idx pending: erased on basis, at.
func pendErasure(tx *bolt.Tx, idx uint64, basis string, at time.Time) error {
	return putKey(tx, bErasures, u64(idx), pendingErasure{Basis: basis, At: at.UTC()})
}

// publishErasures applies a [state.PublishErasures]: a tombstone for every
// pending erasure made before c.Before, in the order of the entries they
// erased.
func (t *txn) publishErasures(c *state.PublishErasures) error {
	b := t.tx.Bucket(bErasures)
	type due struct {
		idx uint64
		p   pendingErasure
	}
	var all []due
	err := b.ForEach(func(k, v []byte) error {
		var p pendingErasure
		if err := json.Unmarshal(v, &p); err != nil {
			return fmt.Errorf("pending erasure %x: %w", k, err)
		}
		if p.At.Before(c.Before) {
			all = append(all, due{binary.BigEndian.Uint64(k), p})
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, d := range all {
		ti, err := nextIndex(t.tx)
		if err != nil {
			return err
		}
		tomb := &state.Head{At: c.At, Actor: c.Actor}
		attrs := []protocol.LogAttr{{Key: "index", Value: strconv.FormatUint(d.idx, 10)}, {Key: "basis", Value: d.p.Basis}}
		if err := appendLog(t.tx, ti, tomb, protocol.LogErased, attrs...); err != nil {
			return err
		}
		if err := b.Delete(u64(d.idx)); err != nil {
			return err
		}
	}
	t.res.Erased = len(all)
	return nil
}

// expireDetails applies a [state.ExpireDetails]: the details of the
// oldest entries, while their time is before c.Before, go; their
// tombstones wait for the next batch.
func (t *txn) expireDetails(c *state.ExpireDetails) error {
	details, log := t.tx.Bucket(bLogDetails), t.tx.Bucket(bLog)
	var due []uint64
	cur := details.Cursor()
	for k, _ := cur.First(); k != nil && len(due) < c.Limit; k, _ = cur.Next() {
		idx := binary.BigEndian.Uint64(k)
		line := log.Get(k)
		e, err := protocol.ParseLogEntry(line)
		if err != nil {
			return fmt.Errorf("log entry %d: %w", idx, err)
		}
		if !e.Time.Before(c.Before) {
			break // entry times never go backwards
		}
		due = append(due, idx)
	}
	if len(due) == 0 {
		return nil
	}
	if err := t.reserve(&c.Head); err != nil {
		return err
	}
	for _, idx := range due {
		if _, err := forgetDetails(t.tx, idx, "retention-ended", c.At); err != nil {
			return err
		}
	}
	t.res.Erased = len(due)
	return t.log(&c.Head, c.Entry.Action, protocol.LogAttr{Key: "count", Value: strconv.Itoa(len(due))})
}

// replayKey is the key of a submission's outcome in the index of
// outcomes by time.
func replayKey(at time.Time, key []byte) []byte {
	return append(binary.BigEndian.AppendUint64(nil, uint64(at.UnixNano())), key...)
}

// pruneReplays applies a [state.PruneReplays].
func (t *txn) pruneReplays(c *state.PruneReplays) error {
	byTime, subs := t.tx.Bucket(bSubmissionTimes), t.tx.Bucket(bSubmissions)
	end := uint64(c.Before.UnixNano())
	var due [][]byte
	cur := byTime.Cursor()
	for k, _ := cur.First(); k != nil && len(due) < c.Limit; k, _ = cur.Next() {
		if len(k) < 8 || binary.BigEndian.Uint64(k[:8]) >= end {
			break
		}
		due = append(due, bytes.Clone(k))
	}
	for _, k := range due {
		if err := subs.Delete(k[8:]); err != nil {
			return err
		}
		if err := byTime.Delete(k); err != nil {
			return err
		}
	}
	// Each member's use of its daily quotas is needed for its day only.
	return pruneUsage(t.tx, c.Before.UTC().Format(time.DateOnly), c.Limit)
}

// A usage is what a member used of its daily quotas on one day.
type usage struct {
	Tokens int64 `json:"tokens,omitempty"`
	Bytes  int64 `json:"bytes,omitempty"`
}

func usageKey(member, day string) []byte { return []byte(member + "\x00" + day) }

func readUsage(tx *bolt.Tx, member, day string) (usage, error) {
	var u usage
	if v := tx.Bucket(bUsage).Get(usageKey(member, day)); v != nil {
		if err := json.Unmarshal(v, &u); err != nil {
			return u, fmt.Errorf("usage of %s on %s: %w", member, day, err)
		}
	}
	return u, nil
}

// allowed reports whether the command's quota of stored bytes, if it has
// one, fits in what is left of its member's allowance for the day; if
// not, the Result says so and nothing may be written.
func (t *txn) allowed(h *state.Head) (bool, error) {
	q := h.Quota
	if q == nil {
		return true, nil
	}
	u, err := readUsage(t.tx, q.Member, q.Day)
	if err != nil {
		return false, err
	}
	if u.Bytes+q.Bytes > q.Limit {
		t.res.QuotaExceeded = true
		return false, nil
	}
	return true, nil
}

// charge charges the command's quota of stored bytes, if it has one, to
// its member's allowance for the day. [txn.allowed] said it fits.
func (t *txn) charge(h *state.Head) error {
	q := h.Quota
	if q == nil {
		return nil
	}
	u, err := readUsage(t.tx, q.Member, q.Day)
	if err != nil {
		return err
	}
	u.Bytes += q.Bytes
	return putKey(t.tx, bUsage, usageKey(q.Member, q.Day), u)
}

// evaluateTokens applies a [state.EvaluateTokens].
func (t *txn) evaluateTokens(c *state.EvaluateTokens) error {
	u, err := readUsage(t.tx, c.Actor, c.Day)
	if err != nil {
		return err
	}
	action := c.Entry.Action
	if u.Tokens+c.Count > c.Limit {
		t.res.QuotaExceeded = true
		h := c.Head
		h.Entry.Result = "rejected:" + protocol.ProblemTokenQuota.Slug()
		if err := t.reserve(&h); err != nil {
			return err
		}
		return t.log(&h, action)
	}
	u.Tokens += c.Count
	if err := putKey(t.tx, bUsage, usageKey(c.Actor, c.Day), u); err != nil {
		return err
	}
	if err := t.reserve(&c.Head); err != nil {
		return err
	}
	return t.log(&c.Head, action)
}

// Usage returns what member used of its daily quotas on day (YYYY-MM-DD,
// UTC): tokens evaluated, and bytes stored for it.
func (s *Store) Usage(member, day string) (tokens, stored int64, err error) {
	err = s.view(func(tx *bolt.Tx) error {
		u, err := readUsage(tx, member, day)
		tokens, stored = u.Tokens, u.Bytes
		return err
	})
	return tokens, stored, err
}

// pruneUsage deletes usage rows of days before day, at most limit.
func pruneUsage(tx *bolt.Tx, day string, limit int) error {
	b := tx.Bucket(bUsage)
	var due [][]byte
	cur := b.Cursor()
	for k, _ := cur.First(); k != nil && len(due) < limit; k, _ = cur.Next() {
		if i := bytes.IndexByte(k, 0); i >= 0 && string(k[i+1:]) < day {
			due = append(due, bytes.Clone(k))
		}
	}
	for _, k := range due {
		if err := b.Delete(k); err != nil {
			return err
		}
	}
	return nil
}
