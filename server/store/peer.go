package store

import (
	"encoding/json"

	bolt "go.etcd.io/bbolt"

	"github.com/sparr-dev/sparr/protocol/api"
	"github.com/sparr-dev/sparr/server/state"
)

// bPeers holds the peered hubs registered through the operator API.
var bPeers = []byte("peers") // peer id → api.Peer JSON (no private key)

// RegisteredPeers returns the peered hubs registered through the operator API,
// ordered by id.
func (s *Store) RegisteredPeers() ([]*api.Peer, error) {
	var out []*api.Peer
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bPeers).ForEach(func(_, v []byte) error {
			p := new(api.Peer)
			if err := json.Unmarshal(v, p); err != nil {
				return err
			}
			out = append(out, p)
			return nil
		})
	})
	return out, err
}

// putPeer applies a [state.PutPeer]: a registration conflicts with a peer
// of the same id or jurisdiction, a removal with the absence of its peer.
func (t *txn) putPeer(c *state.PutPeer) error {
	b := t.tx.Bucket(bPeers)
	exists := b.Get([]byte(c.Peer.ID)) != nil
	if c.Remove != exists {
		return t.conflict()
	}
	if !c.Remove {
		clash := false
		err := b.ForEach(func(_, v []byte) error {
			var p api.Peer
			if err := json.Unmarshal(v, &p); err != nil {
				return err
			}
			clash = clash || p.Jurisdiction == c.Peer.Jurisdiction
			return nil
		})
		if err != nil || clash {
			return orConflict(err, t.conflict)
		}
	}
	if err := t.reserve(&c.Head); err != nil {
		return err
	}
	if c.Remove {
		if err := b.Delete([]byte(c.Peer.ID)); err != nil {
			return err
		}
	} else if err := put(t.tx, bPeers, c.Peer.ID, c.Peer); err != nil {
		return err
	}
	return t.log(&c.Head, c.Entry.Action)
}
