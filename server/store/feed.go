package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/sparr-dev/sparr/federation"
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
	Records []*Record
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
// expiry) are not in the feed.
func (s *Store) Events(m *federation.Member, after uint64, limit int) (*FeedPage, error) {
	page := &FeedPage{Next: after}
	err := s.db.View(func(tx *bolt.Tx) error {
		page.Floor = feedFloor(tx)
		if after < page.Floor {
			return fmt.Errorf("%w: cursor %d, oldest served %d", ErrCursorExpired, after, page.Floor)
		}
		events := tx.Bucket(bEvents)
		last := events.Sequence()
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
			rec, err := get[Record](tx, bRecords, string(v))
			if errors.Is(err, ErrNotFound) {
				continue
			}
			if err != nil {
				return err
			}
			if federation.Entitled(m, rec.Audience, rec.Type) {
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
	err := s.db.View(func(tx *bolt.Tx) error {
		n = tx.Bucket(bEvents).Sequence()
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

// Snapshot calls fn, in one read transaction, with the records of every
// active flag and suspicion that m is entitled to, and with the sequence
// number they are consistent at, which it also returns: a member that
// applies them and then follows the feed from that number misses nothing.
func (s *Store) Snapshot(m *federation.Member, fn func(seq uint64, r *Record) error) (uint64, error) {
	var seq uint64
	err := s.db.View(func(tx *bolt.Tx) error {
		seq = tx.Bucket(bEvents).Sequence()
		emit := func(ids []string) error {
			for _, id := range ids {
				rec, err := get[Record](tx, bRecords, id)
				if errors.Is(err, ErrNotFound) {
					continue
				}
				if err != nil {
					return err
				}
				if federation.Entitled(m, rec.Audience, rec.Type) {
					if err := fn(seq, rec); err != nil {
						return err
					}
				}
			}
			return nil
		}
		err := tx.Bucket(bFlagByToken).ForEach(func(_, id []byte) error {
			f, err := get[Flag](tx, bFlags, string(id))
			if err != nil {
				return err
			}
			return emit(f.Records)
		})
		if err != nil {
			return err
		}
		c := tx.Bucket(bSuspExpiry).Cursor()
		for k, _ := c.First(); k != nil; k, _ = c.Next() {
			sp, err := get[Suspicion](tx, bSuspicions, string(k[8:]))
			if err != nil {
				return err
			}
			if err := emit(sp.Records); err != nil {
				return err
			}
		}
		return nil
	})
	return seq, err
}

// PruneFeed drops from the feed the events of records issued before t, and
// deletes those records unless an active flag or suspicion still holds
// them. It works through at most limit events and reports how many.
func (s *Store) PruneFeed(t time.Time, limit int) (int, error) {
	n := 0
	err := s.db.Update(func(tx *bolt.Tx) error {
		events := tx.Bucket(bEvents)
		floor := feedFloor(tx)
		c := events.Cursor()
		var drop []uint64
		for k, v := c.Seek(u64(floor + 1)); k != nil && len(drop) < limit; k, v = c.Next() {
			rec, err := get[Record](tx, bRecords, string(v))
			if err != nil && !errors.Is(err, ErrNotFound) {
				return err
			}
			if rec != nil && !rec.IssuedAt.Before(t) {
				break
			}
			drop = append(drop, binary.BigEndian.Uint64(k))
			if rec == nil || held(tx, rec) {
				continue
			}
			if err := tx.Bucket(bRecords).Delete([]byte(rec.ID)); err != nil {
				return err
			}
		}
		for _, seq := range drop {
			if err := events.Delete(u64(seq)); err != nil {
				return err
			}
			floor = seq
		}
		n = len(drop)
		return tx.Bucket(bMeta).Put([]byte("feed_floor"), u64(floor))
	})
	return n, err
}

// held reports whether an active flag or suspicion still holds rec.
func held(tx *bolt.Tx, rec *Record) bool {
	if rec.Ref == "" {
		return false
	}
	if f, err := get[Flag](tx, bFlags, rec.Ref); err == nil && f.Status == FlagActive {
		return slices.Contains(f.Records, rec.ID)
	}
	if sp, err := get[Suspicion](tx, bSuspicions, rec.Ref); err == nil && sp.Status == SuspicionActive {
		return slices.Contains(sp.Records, rec.ID)
	}
	return false
}
