package store

import (
	bolt "go.etcd.io/bbolt"

	"github.com/sparr-dev/sparr/server/state"
)

// The buckets of payee records.
var (
	bPayees       = []byte("payees")      // payee id → Payee JSON
	bPayeeByToken = []byte("payee_token") // token → id of its payee record
)

// Payee returns the payee record id.
func (s *Store) Payee(id string) (*state.Payee, error) { return view[state.Payee](s, bPayees, id) }

// PayeeByToken returns the payee record of a payee token, lapsed or not.
func (s *Store) PayeeByToken(token string) (*state.Payee, error) {
	var p *state.Payee
	err := s.db.View(func(tx *bolt.Tx) error {
		var err error
		p, err = payeeOf(tx, token)
		return err
	})
	return p, err
}

// payeeOf reads the payee record of token in tx.
func payeeOf(tx *bolt.Tx, token string) (*state.Payee, error) {
	id := tx.Bucket(bPayeeByToken).Get([]byte(token))
	if id == nil {
		return nil, ErrNotFound
	}
	return get[state.Payee](tx, bPayees, string(id))
}

// putPayee applies a [state.PutPayee]: the payee's stored version must be
// the one before (none for version 1, and then no other record may hold
// the token).
func (t *txn) putPayee(c *state.PutPayee) error {
	old, err := get[state.Payee](t.tx, bPayees, c.Payee.ID)
	if err != nil && err != ErrNotFound {
		return err
	}
	switch {
	case old == nil && c.Payee.Version != 1,
		old != nil && old.Version+1 != c.Payee.Version,
		old != nil && old.Subject != c.Payee.Subject:
		return t.conflict()
	}
	if old == nil && t.tx.Bucket(bPayeeByToken).Get([]byte(c.Payee.Subject)) != nil {
		return t.conflict()
	}
	if err := t.reserve(&c.Head); err != nil {
		return err
	}
	if err := t.records(&c.Head, c.Record); err != nil {
		return err
	}
	if err := t.tx.Bucket(bPayeeByToken).Put([]byte(c.Payee.Subject), []byte(c.Payee.ID)); err != nil {
		return err
	}
	if err := put(t.tx, bPayees, c.Payee.ID, c.Payee); err != nil {
		return err
	}
	if err := t.log(&c.Head, c.Entry.Action); err != nil {
		return err
	}
	return t.remember(&c.Head, c.Submission, state.Submission{Record: idOf(c.Record), Payee: c.Payee.ID})
}
