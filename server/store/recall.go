package store

import (
	"bytes"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/sparr-dev/sparr/server/state"
)

// The buckets of recall requests.
var (
	bRecalls       = []byte("recalls")      // recall id → Recall JSON
	bRecallByToken = []byte("recall_token") // payee token ‖ 0 ‖ recall id → nothing
)

// Recall returns the recall id.
func (s *Store) Recall(id string) (*state.Recall, error) { return view[state.Recall](s, bRecalls, id) }

// RecallsOf returns the recalls naming payee token, by id.
func (s *Store) RecallsOf(token string) ([]*state.Recall, error) {
	var out []*state.Recall
	err := s.view(func(tx *bolt.Tx) error {
		prefix := []byte(token + "\x00")
		c := tx.Bucket(bRecallByToken).Cursor()
		for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
			rc, err := get[state.Recall](tx, bRecalls, string(k[len(prefix):]))
			if err != nil {
				return err
			}
			out = append(out, rc)
		}
		return nil
	})
	return out, err
}

// RecallsClosedBefore returns up to limit recalls whose outcome was
// reported before t.
func (s *Store) RecallsClosedBefore(t time.Time, limit int) ([]*state.Recall, error) {
	var out []*state.Recall
	err := s.view(func(tx *bolt.Tx) error {
		c := tx.Bucket(bRecalls).Cursor()
		for k, v := c.First(); k != nil && len(out) < limit; k, v = c.Next() {
			rc, err := decodeValue[state.Recall](bRecalls, k, v)
			if err != nil {
				return err
			}
			if rc.Outcome != "" && rc.OutcomeAt.Before(t) {
				out = append(out, rc)
			}
		}
		return nil
	})
	return out, err
}

// recallTokenKey is the key of recall id in the token index.
func recallTokenKey(token, id string) []byte { return []byte(token + "\x00" + id) }

// indexRecalls fills the token index of recalls from a data file written
// before it existed.
func indexRecalls(tx *bolt.Tx) error {
	idx := tx.Bucket(bRecallByToken)
	if k, _ := idx.Cursor().First(); k != nil {
		return nil
	}
	return tx.Bucket(bRecalls).ForEach(func(k, v []byte) error {
		rc, err := decodeValue[state.Recall](bRecalls, k, v)
		if err != nil || rc.Payee == "" {
			return err
		}
		return idx.Put(recallTokenKey(rc.Payee, rc.ID), nil)
	})
}

// recallNext reads the stored version of rc and reports whether rc is the
// version after it (version 1: none stored).
func (t *txn) recallNext(rc *state.Recall) (old *state.Recall, ok bool, err error) {
	old, err = get[state.Recall](t.tx, bRecalls, rc.ID)
	if err != nil && err != ErrNotFound {
		return nil, false, err
	}
	if old == nil && rc.Version != 1 || old != nil && old.Version+1 != rc.Version {
		return nil, false, nil
	}
	return old, true, nil
}

// putRecall applies a [state.PutRecall]: the recall's stored version must
// be the one before (none for version 1), and its payee the same.
func (t *txn) putRecall(c *state.PutRecall) error {
	old, ok, err := t.recallNext(c.Recall)
	if !ok || err != nil || old != nil && old.Payee != c.Recall.Payee {
		return orConflict(err, t.conflict)
	}
	if err := t.reserve(&c.Head); err != nil {
		return err
	}
	if err := t.records(&c.Head, c.Record); err != nil {
		return err
	}
	if err := put(t.tx, bRecalls, c.Recall.ID, c.Recall); err != nil {
		return err
	}
	if c.Recall.Payee != "" {
		if err := t.tx.Bucket(bRecallByToken).Put(recallTokenKey(c.Recall.Payee, c.Recall.ID), nil); err != nil {
			return err
		}
	}
	if err := t.log(&c.Head, c.Entry.Action); err != nil {
		return err
	}
	return t.remember(&c.Head, c.Submission, state.Submission{Record: idOf(c.Record), Recall: c.Recall.ID})
}

// putScrubbed writes recalls scrubbed by a subject erasure in place of
// olds, dropping them from the token index.
func putScrubbed(tx *bolt.Tx, olds, recalls []*state.Recall) error {
	for i, rc := range recalls {
		if err := put(tx, bRecalls, rc.ID, rc); err != nil {
			return err
		}
		if err := tx.Bucket(bRecallByToken).Delete(recallTokenKey(olds[i].Payee, rc.ID)); err != nil {
			return err
		}
	}
	return nil
}

// expireRecall applies a [state.ExpireRecall].
func (t *txn) expireRecall(c *state.ExpireRecall) error {
	old, err := get[state.Recall](t.tx, bRecalls, c.Recall.ID)
	if err == ErrNotFound || err == nil && old.Version != c.Recall.Version {
		return t.conflict()
	}
	if err != nil {
		return err
	}
	if err := t.reserve(&c.Head); err != nil {
		return err
	}
	if err := t.tx.Bucket(bRecalls).Delete([]byte(old.ID)); err != nil {
		return err
	}
	if old.Payee != "" {
		if err := t.tx.Bucket(bRecallByToken).Delete(recallTokenKey(old.Payee, old.ID)); err != nil {
			return err
		}
	}
	return t.finishErasure(&c.Head, &c.Erase)
}
