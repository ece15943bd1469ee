package store

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/sparr-dev/sparr/federation/members"
	"github.com/sparr-dev/sparr/protocol/api"
	"github.com/sparr-dev/sparr/server/state"
)

// Reads run in their own short read transactions and return copies.

func view[T any](s *Store, bucket []byte, key string) (*T, error) {
	var out *T
	err := s.view(func(tx *bolt.Tx) error {
		var err error
		out, err = get[T](tx, bucket, key)
		return err
	})
	return out, err
}

// Member returns the member with the given id, or an error wrapping both
// [ErrNotFound] and [members.ErrUnknownMember]. It makes the store a
// [members.Directory].
func (s *Store) Member(_ context.Context, id string) (*api.Member, error) {
	m, err := view[api.Member](s, bMembers, id)
	if err == ErrNotFound {
		return nil, fmt.Errorf("member %q: %w (%w)", id, members.ErrUnknownMember, ErrNotFound)
	}
	return m, err
}

var _ members.Directory = (*Store)(nil)

// Members returns every member, ordered by id.
func (s *Store) Members() ([]*api.Member, error) {
	var out []*api.Member
	err := s.view(func(tx *bolt.Tx) error {
		return tx.Bucket(bMembers).ForEach(func(_, v []byte) error {
			m := new(api.Member)
			if err := json.Unmarshal(v, m); err != nil {
				return err
			}
			out = append(out, m)
			return nil
		})
	})
	return out, err
}

// Record returns the record with the given jti.
func (s *Store) Record(id string) (*state.Record, error) { return view[state.Record](s, bRecords, id) }

// Records returns the records with the given jtis that the store still
// holds, in the order given.
func (s *Store) Records(ids []string) ([]*state.Record, error) {
	var out []*state.Record
	err := s.view(func(tx *bolt.Tx) error {
		for _, id := range ids {
			r, err := get[state.Record](tx, bRecords, id)
			if err == ErrNotFound {
				continue
			}
			if err != nil {
				return err
			}
			out = append(out, r)
		}
		return nil
	})
	return out, err
}

// Flag returns the flag with the given id.
func (s *Store) Flag(id string) (*state.Flag, error) { return view[state.Flag](s, bFlags, id) }

// Suspicion returns the suspicion with the given id.
func (s *Store) Suspicion(id string) (*state.Suspicion, error) {
	return view[state.Suspicion](s, bSuspicions, id)
}

// Check returns the check with the given id.
func (s *Store) Check(id string) (*state.Check, error) { return view[state.Check](s, bChecks, id) }

// Consent returns the consent record with the given id, as stored.
func (s *Store) Consent(id string) (json.RawMessage, error) {
	var out json.RawMessage
	err := s.view(func(tx *bolt.Tx) error {
		v := tx.Bucket(bConsents).Get([]byte(id))
		if v == nil {
			return ErrNotFound
		}
		out = bytes.Clone(v)
		return nil
	})
	return out, err
}

// Submission returns what the hub remembers of a member's submission.
func (s *Store) Submission(member, jti string) (*state.Submission, error) {
	return view[state.Submission](s, bSubmissions, member+"\x00"+jti)
}

// Subjects looks up several tokens in one read transaction.
func (s *Store) Subjects(tokens []string) ([]state.Subject, error) {
	out := make([]state.Subject, len(tokens))
	err := s.view(func(tx *bolt.Tx) error {
		for i, t := range tokens {
			if id := tx.Bucket(bFlagByToken).Get([]byte(t)); id != nil {
				f, err := get[state.Flag](tx, bFlags, string(id))
				if err != nil {
					return err
				}
				out[i].Flag = f
				for _, rid := range f.Records {
					r, err := get[state.Record](tx, bRecords, rid)
					if err == ErrNotFound {
						continue
					}
					if err != nil {
						return err
					}
					out[i].Records = append(out[i].Records, r)
				}
				if out[i].Denials, err = denialsOf(tx, t); err != nil {
					return err
				}
			}
			c := tx.Bucket(bSuspByToken).Cursor()
			prefix := []byte(t + "\x00")
			for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
				sp, err := get[state.Suspicion](tx, bSuspicions, string(k[len(prefix):]))
				if err != nil {
					return err
				}
				out[i].Suspicions = append(out[i].Suspicions, sp)
				ds, err := openDisputes(tx, sp.ID)
				if err != nil {
					return err
				}
				out[i].Disputes = append(out[i].Disputes, ds...)
			}
			if f := out[i].Flag; f != nil {
				ds, err := openDisputes(tx, f.ID)
				if err != nil {
					return err
				}
				out[i].Disputes = append(out[i].Disputes, ds...)
			}
			switch p, err := payeeOf(tx, t); {
			case err == nil:
				out[i].Payee = p
				if n := len(p.Records); n > 0 {
					r, err := get[state.Record](tx, bRecords, p.Records[n-1])
					if err != nil && err != ErrNotFound {
						return err
					}
					out[i].PayeeRecord = r
				}
			case err != ErrNotFound:
				return err
			}
		}
		return nil
	})
	return out, err
}

// FlagByToken returns the active flag on a token.
func (s *Store) FlagByToken(token string) (*state.Flag, error) {
	subs, err := s.Subjects([]string{token})
	if err != nil {
		return nil, err
	}
	if subs[0].Flag == nil {
		return nil, ErrNotFound
	}
	return subs[0].Flag, nil
}

// FlagsExpiringBefore returns up to limit active flags whose expiry is
// before t, soonest first.
func (s *Store) FlagsExpiringBefore(t time.Time, limit int) ([]*state.Flag, error) {
	return expiring[state.Flag](s, bFlagExpiry, bFlags, t, limit)
}

// FlagsToRemindBefore returns up to limit active flags whose expiry
// reminder is due before t and not yet sent.
func (s *Store) FlagsToRemindBefore(t time.Time, limit int) ([]*state.Flag, error) {
	return expiring[state.Flag](s, bFlagRemind, bFlags, t, limit)
}

// SuspicionsExpiringBefore returns up to limit active suspicions whose
// retention ends before t, soonest first.
func (s *Store) SuspicionsExpiringBefore(t time.Time, limit int) ([]*state.Suspicion, error) {
	return expiring[state.Suspicion](s, bSuspExpiry, bSuspicions, t, limit)
}

func expiring[T any](s *Store, index, bucket []byte, t time.Time, limit int) ([]*T, error) {
	var out []*T
	end := uint64(t.UnixNano())
	err := s.view(func(tx *bolt.Tx) error {
		c := tx.Bucket(index).Cursor()
		for k, _ := c.First(); k != nil && len(out) < limit; k, _ = c.Next() {
			if binary.BigEndian.Uint64(k[:8]) >= end {
				break
			}
			v, err := get[T](tx, bucket, string(k[8:]))
			if err != nil {
				return err
			}
			out = append(out, v)
		}
		return nil
	})
	return out, err
}

// LogSize returns the number of entries in the exchange log.
func (s *Store) LogSize() (uint64, error) {
	var n uint64
	err := s.view(func(tx *bolt.Tx) error {
		n = tx.Bucket(bLog).Sequence()
		return nil
	})
	return n, err
}

// LogEntries returns the entry lines with indexes in [start, end).
func (s *Store) LogEntries(start, end uint64) ([][]byte, error) {
	var out [][]byte
	err := s.view(func(tx *bolt.Tx) error {
		c := tx.Bucket(bLog).Cursor()
		for k, v := c.Seek(u64(start)); k != nil && binary.BigEndian.Uint64(k) < end; k, v = c.Next() {
			out = append(out, bytes.Clone(v))
		}
		return nil
	})
	return out, err
}

// LogDetails returns the salt and details of the entry at index, or
// ErrNotFound once they are erased.
func (s *Store) LogDetails(index uint64) (*state.Details, error) {
	return view[state.Details](s, bLogDetails, string(u64(index)))
}

// About returns every record that names token, and the index of every log
// entry whose details mention it: what an erasure of that subject deletes.
// It reads all of both, which only an erasure needs to.
func (s *Store) About(token string) (records []string, entries []uint64, err error) {
	needle := []byte(token)
	err = s.view(func(tx *bolt.Tx) error {
		err := tx.Bucket(bRecords).ForEach(func(k, v []byte) error {
			if bytes.Contains(v, needle) {
				records = append(records, string(k))
			}
			return nil
		})
		if err != nil {
			return err
		}
		return tx.Bucket(bLogDetails).ForEach(func(k, v []byte) error {
			var d state.Details
			if err := json.Unmarshal(v, &d); err != nil {
				return err
			}
			if bytes.Contains(d.Details, needle) {
				entries = append(entries, binary.BigEndian.Uint64(k))
			}
			return nil
		})
	})
	return records, entries, err
}
