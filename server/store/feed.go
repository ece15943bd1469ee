package store

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"

	bolt "go.etcd.io/bbolt"

	"github.com/sparr-dev/sparr/federation/members"
	"github.com/sparr-dev/sparr/protocol/api"
	"github.com/sparr-dev/sparr/server/state"
)

// The feed: every event by sequence number, for members catching up, and
// the snapshot, for members starting from nothing.

// ErrCursorExpired is returned by [Store.Events] for a cursor older than
// the retention window.
var ErrCursorExpired = errors.New("cursor older than the retention window")

// maxScan bounds how many sequence numbers one feed page looks at, so a
// member entitled to few events cannot make one request scan the whole
// history; the page then ends early with more = true.
const maxScan = 100_000

// A FeedPage is one page of a member's feed.
type FeedPage struct {
	Records []*state.Record
	// Next is the cursor to ask for after this page: the last sequence
	// number looked at, whether or not it was the member's.
	Next uint64
	// More says there may be more events after Next.
	More bool
	// Floor is the oldest cursor still served.
	Floor uint64
}

// Events returns up to limit records after sequence number after that m
// is entitled to, in sequence order. Records erased since (by a lift or
// expiry) are not in the feed. A cursor at or past the latest sequence
// number, up to the largest uint64, gives an empty page whose Next is the
// cursor.
func (s *Store) Events(m *api.Member, after uint64, limit int) (*FeedPage, error) {
	page := &FeedPage{Next: after}
	err := s.view(func(tx *bolt.Tx) error {
		page.Floor = feedFloor(tx)
		if after < page.Floor {
			return fmt.Errorf("%w: cursor %d, oldest served %d", ErrCursorExpired, after, page.Floor)
		}
		events := tx.Bucket(bEvents)
		last := events.Sequence()
		if after >= last {
			// Nothing follows the latest event; and after+1 would wrap
			// for the largest cursor.
			return nil
		}
		c := events.Cursor()
		scanned := 0
		for k, v := c.Seek(u64(after + 1)); k != nil; k, v = c.Next() {
			seq := binary.BigEndian.Uint64(k)
			if len(page.Records) == limit || scanned == maxScan {
				page.More = true
				break
			}
			scanned++
			page.Next = seq
			rec, err := get[state.Record](tx, bRecords, string(v))
			if errors.Is(err, ErrNotFound) {
				continue
			}
			if err != nil {
				return err
			}
			if members.Entitled(m, rec.Audience, rec.Type) || members.EntitledPeer(m, rec.Peers) {
				page.Records = append(page.Records, rec)
			}
		}
		if !page.More {
			page.Next = max(page.Next, last)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return page, nil
}

// Sequence returns the sequence number of the latest event.
func (s *Store) Sequence() (uint64, error) {
	var n uint64
	err := s.view(func(tx *bolt.Tx) error {
		n = tx.Bucket(bEvents).Sequence()
		return nil
	})
	return n, err
}

// FeedFloor returns the oldest cursor [Store.Events] still serves.
func (s *Store) FeedFloor() (uint64, error) {
	var n uint64
	err := s.db.View(func(tx *bolt.Tx) error {
		n = feedFloor(tx)
		return nil
	})
	return n, err
}

func feedFloor(tx *bolt.Tx) uint64 {
	if v := tx.Bucket(bMeta).Get([]byte("feed_floor")); len(v) == 8 {
		return binary.BigEndian.Uint64(v)
	}
	return 0
}

// Snapshot calls fn with the records of every active flag and suspicion
// that m is entitled to, and the latest record of every payee record, and with the sequence number seq they are
// consistent at, which it also returns: a member that applies them and then
// follows the feed after seq misses nothing, and holds nothing that the
// feed does not tell it to delete.
//
// It reads seq first, then walks the index of active flags (by token) and
// of active suspicions (by expiry) in chunks of Options.ScanChunk keys,
// each chunk in a short read transaction of its own, and calls fn outside
// them: a member that reads slowly holds no transaction open, which would
// keep bbolt from reusing pages and from growing the file. Writes go on
// during the walk; what a member gets is still consistent at seq, because
// the walk emits only records with a sequence number up to seq:
//
//   - A flag or suspicion placed during the walk has only records after
//     seq: it is skipped, and comes in the feed.
//   - A record added to an active flag during the walk (an extension, a
//     thaw, a reminder) is after seq: skipped, it comes in the feed; the
//     flag's earlier records are in the snapshot.
//   - A flag or suspicion that ends during the walk (lifted, retracted,
//     expired, or its subject erased) leaves the index and has all its
//     earlier records erased with it, those after seq too, so the feed
//     does not carry them either. If the walk had passed it, the member got
//     its records up to seq; if not, it did not. Either way the record that
//     ends it is after seq and comes in the feed, telling the member to
//     delete whatever it holds of it, which is then nothing or those
//     records.
//   - An index key that stayed from before seq to the end of the walk is
//     visited: the walk goes on from the last key it read, in key order,
//     and the key of an active flag (its token) or suspicion (its expiry
//     and id) never changes while it is active.
//
// So every record of the state at seq either reaches the member in the
// snapshot or is deleted by a record after seq in the feed.
func (s *Store) Snapshot(m *api.Member, fn func(seq uint64, r *state.Record) error) (uint64, error) {
	seq, err := s.Sequence()
	if err != nil {
		return 0, err
	}
	// records returns, in tx, the records that m is entitled to of one
	// flag's or suspicion's, up to seq.
	records := func(tx *bolt.Tx, ids []string, out []*state.Record) ([]*state.Record, error) {
		for _, id := range ids {
			rec, err := get[state.Record](tx, bRecords, id)
			if errors.Is(err, ErrNotFound) {
				continue
			}
			if err != nil {
				return nil, err
			}
			if rec.Seq <= seq && members.Entitled(m, rec.Audience, rec.Type) {
				out = append(out, rec)
			}
		}
		return out, nil
	}
	flags := func(tx *bolt.Tx, _, id []byte, out []*state.Record) ([]*state.Record, error) {
		f, err := get[state.Flag](tx, bFlags, string(id))
		if err != nil {
			return nil, err
		}
		return records(tx, f.Records, out)
	}
	suspicions := func(tx *bolt.Tx, k, _ []byte, out []*state.Record) ([]*state.Record, error) {
		sp, err := get[state.Suspicion](tx, bSuspicions, string(k[8:]))
		if err != nil {
			return nil, err
		}
		return records(tx, sp.Records, out)
	}
	emit := func(rs []*state.Record) error {
		for _, r := range rs {
			if err := fn(seq, r); err != nil {
				return err
			}
		}
		return nil
	}
	// A payee record's latest version stands for the earlier ones.
	payees := func(tx *bolt.Tx, _, id []byte, out []*state.Record) ([]*state.Record, error) {
		p, err := get[state.Payee](tx, bPayees, string(id))
		if err != nil || len(p.Records) == 0 {
			return out, err
		}
		return records(tx, p.Records[len(p.Records)-1:], out)
	}
	if err := s.walk(bFlagByToken, flags, emit); err != nil {
		return seq, err
	}
	if err := s.walk(bPayeeByToken, payees, emit); err != nil {
		return seq, err
	}
	// The records of flags of other hubs that this hub relayed, while
	// they are active.
	relayed := func(tx *bolt.Tx, k, _ []byte, out []*state.Record) ([]*state.Record, error) {
		return records(tx, []string{string(k[bytes.IndexByte(k, 0)+1:])}, out)
	}
	if err := s.walk(bRelayedRef, relayed, emit); err != nil {
		return seq, err
	}
	return seq, s.walk(bSuspExpiry, suspicions, emit)
}

// walk reads every key of bucket in order, in chunks of Options.ScanChunk
// keys, each in a read transaction of its own. For each key it calls read
// in the transaction, which appends what it finds; after each chunk it
// calls emit with what was found, outside any transaction. Keys added or
// deleted during the walk may or may not be read; a key present all along
// is read once.
func (s *Store) walk(bucket []byte, read func(tx *bolt.Tx, k, v []byte, out []*state.Record) ([]*state.Record, error), emit func([]*state.Record) error) error {
	var after []byte
	for {
		var chunk []*state.Record
		var done bool
		err := s.view(func(tx *bolt.Tx) error {
			c := tx.Bucket(bucket).Cursor()
			k, v := c.First()
			if after != nil {
				if k, v = c.Seek(after); k != nil && bytes.Equal(k, after) {
					k, v = c.Next()
				}
			}
			var last []byte
			for n := 0; k != nil && n < s.opts.ScanChunk; k, v = c.Next() {
				var err error
				if chunk, err = read(tx, k, v, chunk); err != nil {
					return err
				}
				last = k
				n++
			}
			done = k == nil
			after = bytes.Clone(last) // bbolt's memory is not ours past the transaction
			return nil
		})
		if err != nil {
			return err
		}
		if err := emit(chunk); err != nil {
			return err
		}
		if done {
			return nil
		}
	}
}

// A prunePlan is what a [state.PruneFeed] drops: events by sequence number,
// records by jti.
type prunePlan struct {
	events  []uint64
	records []string
}

// planPrune reads what p drops.
func planPrune(tx *bolt.Tx, p *state.PruneFeed) (*prunePlan, error) {
	plan := &prunePlan{}
	events := tx.Bucket(bEvents)
	from := feedFloor(tx) + 1
	type event struct {
		seq uint64
		rec *state.Record
	}
	// The events of erased records have no age of their own: they go
	// with the next record that is due, so that the floor never passes a
	// record still within the window.
	var due, erased []event
	c := events.Cursor()
	for k, v := c.Seek(u64(from)); k != nil && len(due)+len(erased) < p.Limit; k, v = c.Next() {
		rec, err := get[state.Record](tx, bRecords, string(v))
		if err != nil && !errors.Is(err, ErrNotFound) {
			return nil, err
		}
		if rec == nil {
			erased = append(erased, event{binary.BigEndian.Uint64(k), nil})
			continue
		}
		if !rec.IssuedAt.Before(p.Before) {
			break
		}
		due = append(append(due, erased...), event{binary.BigEndian.Uint64(k), rec})
		erased = erased[:0]
	}
	if len(due) == 0 {
		return plan, nil
	}
	queued, err := queuedSeqs(tx, due[0].seq, due[len(due)-1].seq)
	if err != nil {
		return nil, err
	}
	for _, e := range due {
		plan.events = append(plan.events, e.seq)
		if e.rec != nil && !needed(tx, queued, e.seq, e.rec) {
			plan.records = append(plan.records, e.rec.ID)
		}
	}
	return plan, nil
}

// prune carries out a plan, and returns the new feed floor.
func prune(tx *bolt.Tx, plan *prunePlan) (uint64, error) {
	floor := feedFloor(tx)
	for _, id := range plan.records {
		if err := tx.Bucket(bRecords).Delete([]byte(id)); err != nil {
			return 0, err
		}
	}
	for _, seq := range plan.events {
		if err := tx.Bucket(bEvents).Delete(u64(seq)); err != nil {
			return 0, err
		}
		floor = max(floor, seq)
	}
	return floor, tx.Bucket(bMeta).Put([]byte("feed_floor"), u64(floor))
}

// needed reports whether something still needs rec, the record of event
// seq, when its event leaves the feed: a delivery of it still queued
// (queued is what [queuedSeqs] returned for a range that holds seq), an
// active flag or suspicion that holds it, or a payee record whose latest
// record it is (see [held]). A record nothing
// needs is deleted with its event, or with its last delivery row.
func needed(tx *bolt.Tx, queued map[uint64]bool, seq uint64, rec *state.Record) bool {
	return queued[seq] || held(tx, rec)
}

// held reports whether an active flag or suspicion, or a payee record as
// its latest, still holds rec.
func held(tx *bolt.Tx, rec *state.Record) bool {
	if rec.Ref == "" {
		return false
	}
	if f, err := get[state.Flag](tx, bFlags, rec.Ref); err == nil && f.Status == api.FlagActive {
		return slices.Contains(f.Records, rec.ID)
	}
	if sp, err := get[state.Suspicion](tx, bSuspicions, rec.Ref); err == nil && sp.Status == api.SuspicionActive {
		return slices.Contains(sp.Records, rec.ID)
	}
	// A payee record's latest version stands for it in checks and
	// snapshots for as long as the hub holds it.
	if p, err := get[state.Payee](tx, bPayees, rec.Ref); err == nil && len(p.Records) > 0 {
		return p.Records[len(p.Records)-1] == rec.ID
	}
	return relayedHeld(tx, rec)
}
