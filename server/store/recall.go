package store

import (
	"github.com/sparr-dev/sparr/server/state"
)

// bRecalls holds recall requests: recall id → Recall JSON.
var bRecalls = []byte("recalls")

// Recall returns the recall id.
func (s *Store) Recall(id string) (*state.Recall, error) { return view[state.Recall](s, bRecalls, id) }

// putRecall applies a [state.PutRecall]: the recall's stored version must
// be the one before (none for version 1).
func (t *txn) putRecall(c *state.PutRecall) error {
	old, err := get[state.Recall](t.tx, bRecalls, c.Recall.ID)
	if err != nil && err != ErrNotFound {
		return err
	}
	if old == nil && c.Recall.Version != 1 || old != nil && old.Version+1 != c.Recall.Version {
		return t.conflict()
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
	if err := t.log(&c.Head, c.Entry.Action); err != nil {
		return err
	}
	return t.remember(&c.Head, c.Submission, state.Submission{Record: idOf(c.Record), Recall: c.Recall.ID})
}
