package store

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"slices"

	bolt "go.etcd.io/bbolt"

	"github.com/sparr-dev/sparr/protocol/api"
	"github.com/sparr-dev/sparr/server/state"
)

// Records relayed from peered hubs. A relayed record is stored as any
// record (bRecords, bEvents: the feed; bOutbox: its deliveries), and two
// buckets more remember what came from peers:
var (
	bRelayed    = []byte("relayed")     // record jti → nil, every record a peer delivered: each is taken once
	bRelayedRef = []byte("relayed_ref") // flag id ‖ 0 ‖ record jti → nil, relayed records of a flag not yet ended
)

func init() { allBuckets = append(allBuckets, bRelayed, bRelayedRef) }

// relayEvent applies a [state.RelayEvent]: a jti taken before (or a
// record the hub holds as its own) is a duplicate, and nothing is written.
func (t *txn) relayEvent(c *state.RelayEvent) error {
	id := []byte(c.Record.ID)
	if t.tx.Bucket(bRelayed).Get(id) != nil || t.tx.Bucket(bRecords).Get(id) != nil {
		t.res.Duplicate = true
		return nil
	}
	if err := t.reserve(&c.Head); err != nil {
		return err
	}
	if err := t.records(&c.Head, c.Record); err != nil {
		return err
	}
	if err := t.tx.Bucket(bRelayed).Put(id, nil); err != nil {
		return err
	}
	refs := t.tx.Bucket(bRelayedRef)
	if c.Record.Ref != "" {
		prefix := []byte(c.Record.Ref + "\x00")
		if len(c.Erase.Records) > 0 {
			// The flag ended: its earlier records go, and so does its
			// index.
			var keys [][]byte
			cur := refs.Cursor()
			for k, _ := cur.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = cur.Next() {
				keys = append(keys, bytes.Clone(k))
			}
			for _, k := range keys {
				if err := refs.Delete(k); err != nil {
					return err
				}
			}
		} else if err := refs.Put(append(prefix, id...), nil); err != nil {
			return err
		}
	}
	if len(c.Erase.Records) == 0 {
		return t.log(&c.Head, c.Entry.Action)
	}
	return t.finishErasure(&c.Head, &c.Erase)
}

// relayedHeld reports whether rec is a relayed record of a flag of
// another hub that has not ended: held, as the hub's own flags' records
// are, until the lift or expiry comes.
func relayedHeld(tx *bolt.Tx, rec *state.Record) bool {
	return rec.Ref != "" && tx.Bucket(bRelayedRef).Get([]byte(rec.Ref+"\x00"+rec.ID)) != nil
}

// RelayedRecords returns the jtis of the relayed records of flag ref (a
// flag of another hub) that the hub still holds, oldest first.
func (s *Store) RelayedRecords(ref string) ([]string, error) {
	var out []string
	err := s.db.View(func(tx *bolt.Tx) error {
		prefix := []byte(ref + "\x00")
		c := tx.Bucket(bRelayedRef).Cursor()
		for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
			if tx.Bucket(bRecords).Get(k[len(prefix):]) != nil {
				out = append(out, string(k[len(prefix):]))
			}
		}
		return nil
	})
	return out, err
}

// Relayed reports whether the hub has taken the record with jti from a
// peer, or holds it as its own.
func (s *Store) Relayed(jti string) (bool, error) {
	var seen bool
	err := s.db.View(func(tx *bolt.Tx) error {
		seen = tx.Bucket(bRelayed).Get([]byte(jti)) != nil || tx.Bucket(bRecords).Get([]byte(jti)) != nil
		return nil
	})
	return seen, err
}

// Peers returns the ids of the active members with role peer, in id
// order: the hubs a record of this hub's identifiers may go to. It reads
// the members' compact routes, not their records.
func (s *Store) Peers() ([]string, error) {
	var out []string
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bRoutes).ForEach(func(k, v []byte) error {
			var r route
			if err := json.Unmarshal(v, &r); err != nil {
				return fmt.Errorf("route %q: %w", k, err)
			}
			if r.Active && slices.Contains(r.Roles, api.RolePeer) {
				out = append(out, string(k))
			}
			return nil
		})
	})
	return out, err
}

// bPeerCursors holds how far the hub has read each peer's feed.
var bPeerCursors = []byte("peer_cursors") // peer id → cursor, 8 bytes big-endian

func init() { allBuckets = append(allBuckets, bPeerCursors) }

// peerCursor applies a [state.PeerCursor].
func (t *txn) peerCursor(c *state.PeerCursor) error {
	return t.tx.Bucket(bPeerCursors).Put([]byte(c.Peer), u64(c.After))
}

// PeerCursor returns how far the hub has read peer's feed, and false if
// it has never read it.
func (s *Store) PeerCursor(peer string) (uint64, bool, error) {
	var after uint64
	var ok bool
	err := s.db.View(func(tx *bolt.Tx) error {
		if v := tx.Bucket(bPeerCursors).Get([]byte(peer)); len(v) == 8 {
			after, ok = binary.BigEndian.Uint64(v), true
		}
		return nil
	})
	return after, ok, err
}
