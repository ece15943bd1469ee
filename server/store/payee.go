package store

import (
	"time"

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
	err := s.view(func(tx *bolt.Tx) error {
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

// PayeesExpiringBefore returns up to limit payee records that lapsed
// before t.
func (s *Store) PayeesExpiringBefore(t time.Time, limit int) ([]*state.Payee, error) {
	var out []*state.Payee
	err := s.view(func(tx *bolt.Tx) error {
		c := tx.Bucket(bPayees).Cursor()
		for k, v := c.First(); k != nil && len(out) < limit; k, v = c.Next() {
			p, err := decodeValue[state.Payee](bPayees, k, v)
			if err != nil {
				return err
			}
			if !p.ActiveAt(t) {
				out = append(out, p)
			}
		}
		return nil
	})
	return out, err
}

// storedPayee checks that p is the stored version of its payee record.
func (t *txn) storedPayee(p *state.Payee) error {
	old, err := get[state.Payee](t.tx, bPayees, p.ID)
	if err == ErrNotFound || err == nil && (old.Version != p.Version || old.Subject != p.Subject) {
		return t.conflict()
	}
	return err
}

// deletePayee deletes payee record p and its token index.
func deletePayee(tx *bolt.Tx, p *state.Payee) error {
	if err := tx.Bucket(bPayees).Delete([]byte(p.ID)); err != nil {
		return err
	}
	return tx.Bucket(bPayeeByToken).Delete([]byte(p.Subject))
}

// expirePayee applies a [state.ExpirePayee].
func (t *txn) expirePayee(c *state.ExpirePayee) error {
	if err := t.storedPayee(c.Payee); err != nil {
		return err
	}
	if err := t.reserve(&c.Head); err != nil {
		return err
	}
	if err := deletePayee(t.tx, c.Payee); err != nil {
		return err
	}
	if err := t.records(&c.Head, c.Record); err != nil {
		return err
	}
	return t.finishErasure(&c.Head, &c.Erase)
}
