package store

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"

	bolt "go.etcd.io/bbolt"

	"github.com/sparr-dev/sparr/protocol"
	"github.com/sparr-dev/sparr/server/state"
)

// Access notices and denials of checks: what a consumer's bank can show
// them of who checked their identity, and the "not me" of a check. Both
// are kept under the checked subject's token, so that the end of its
// flag, or its erasure, deletes them with the checks' log details.

func noticeKey(checkID, flagID string) []byte { return []byte(checkID + "\x00" + flagID) }

func noticeSubjectKey(token, checkID, flagID string) []byte {
	return []byte(token + "\x00" + checkID + "\x00" + flagID)
}

func denialKey(d *state.Denial) []byte {
	k := append([]byte(d.Subject+"\x00"), u64(uint64(d.DeniedAt.UnixNano()))...)
	return append(k, d.CheckID+"\x00"+d.FlagID...)
}

// notices stores a check's access notices, with their records.
func (t *txn) notices(h *state.Head, ns []*state.AccessNotice) error {
	for _, n := range ns {
		if err := t.records(h, n.Record); err != nil {
			return err
		}
		if err := putKey(t.tx, bNotices, noticeKey(n.CheckID, n.FlagID), n); err != nil {
			return err
		}
		if err := t.tx.Bucket(bNoticeSubject).Put(noticeSubjectKey(n.Subject, n.CheckID, n.FlagID), nil); err != nil {
			return err
		}
	}
	return nil
}

// replicaChecks applies a [state.ReplicaChecks].
func (t *txn) replicaChecks(c *state.ReplicaChecks) error {
	for _, n := range c.Notices {
		if t.tx.Bucket(bNotices).Get(noticeKey(n.CheckID, n.FlagID)) != nil {
			return t.conflict()
		}
	}
	if err := t.reserve(&c.Head); err != nil {
		return err
	}
	if err := t.notices(&c.Head, c.Notices); err != nil {
		return err
	}
	return t.log(&c.Head, c.Entry.Action)
}

// denyCheck applies a [state.DenyCheck]: the notice must exist, not yet
// denied, and its flag be still the subject's active one.
func (t *txn) denyCheck(c *state.DenyCheck) error {
	dn := c.Denial
	key := noticeKey(dn.CheckID, dn.FlagID)
	n, err := getKey[state.AccessNotice](t.tx, bNotices, key)
	if err != nil && err != ErrNotFound {
		return err
	}
	if n == nil || !n.DeniedAt.IsZero() || n.Origin != dn.Origin || n.Subject != dn.Subject {
		return t.conflict()
	}
	if id := t.tx.Bucket(bFlagByToken).Get([]byte(dn.Subject)); string(id) != dn.FlagID {
		return t.conflict()
	}
	if err := t.reserve(&c.Head); err != nil {
		return err
	}
	if err := t.records(&c.Head, dn.Record); err != nil {
		return err
	}
	n.DeniedAt = dn.DeniedAt
	if err := putKey(t.tx, bNotices, key, n); err != nil {
		return err
	}
	if err := putKey(t.tx, bDenials, denialKey(dn), dn); err != nil {
		return err
	}
	if err := t.log(&c.Head, c.Entry.Action); err != nil {
		return err
	}
	return t.remember(&c.Head, &c.Submission, state.Submission{Record: idOf(dn.Record)})
}

// eraseNotices deletes the access notices and denials of checks of token
// and returns the ids of their records, for the caller to erase.
func eraseNotices(tx *bolt.Tx, token string) ([]string, error) {
	var records []string
	prefix := []byte(token + "\x00")
	var keys [][]byte
	c := tx.Bucket(bNoticeSubject).Cursor()
	for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
		keys = append(keys, bytes.Clone(k))
	}
	for _, k := range keys {
		nk := k[len(prefix):]
		n, err := getKey[state.AccessNotice](tx, bNotices, nk)
		if err != nil && err != ErrNotFound {
			return nil, err
		}
		if n != nil && n.Record != nil {
			records = append(records, n.Record.ID)
		}
		if err := tx.Bucket(bNotices).Delete(nk); err != nil {
			return nil, err
		}
		if err := tx.Bucket(bNoticeSubject).Delete(k); err != nil {
			return nil, err
		}
	}
	keys = keys[:0]
	var denials []*state.Denial
	c = tx.Bucket(bDenials).Cursor()
	for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
		keys = append(keys, bytes.Clone(k))
		dn, err := decodeValue[state.Denial](bDenials, k, v)
		if err != nil {
			return nil, err
		}
		denials = append(denials, dn)
	}
	for i, k := range keys {
		if r := denials[i].Record; r != nil {
			records = append(records, r.ID)
		}
		if err := tx.Bucket(bDenials).Delete(k); err != nil {
			return nil, err
		}
	}
	return records, nil
}

// erasesNotices reports whether e deletes the access notices of its
// subjects: an erasure of everything, or the end of a flag, which erases
// the checks' details.
func erasesNotices(e *state.Erase) bool {
	return len(e.Actions) == 0 || slices.Contains(e.Actions, protocol.LogCheck)
}

// denialsOf returns the denials of checks of token, newest first.
func denialsOf(tx *bolt.Tx, token string) ([]*state.Denial, error) {
	var out []*state.Denial
	prefix := []byte(token + "\x00")
	c := tx.Bucket(bDenials).Cursor()
	for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
		dn, err := decodeValue[state.Denial](bDenials, k, v)
		if err != nil {
			return nil, err
		}
		out = append(out, dn)
	}
	slices.Reverse(out)
	return out, nil
}

// Notice returns the access notice of check checkID of flag flagID.
func (s *Store) Notice(checkID, flagID string) (*state.AccessNotice, error) {
	var out *state.AccessNotice
	err := s.view(func(tx *bolt.Tx) error {
		var err error
		out, err = getKey[state.AccessNotice](tx, bNotices, noticeKey(checkID, flagID))
		return err
	})
	return out, err
}

// Notices returns the access notices of checks of token, by check id
// (oldest first: check ids are time-ordered).
func (s *Store) Notices(token string) ([]*state.AccessNotice, error) {
	var out []*state.AccessNotice
	err := s.view(func(tx *bolt.Tx) error {
		prefix := []byte(token + "\x00")
		c := tx.Bucket(bNoticeSubject).Cursor()
		for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
			n, err := getKey[state.AccessNotice](tx, bNotices, k[len(prefix):])
			if err != nil {
				return err
			}
			out = append(out, n)
		}
		return nil
	})
	return out, err
}

// Denials returns the denials of checks of token, newest first.
func (s *Store) Denials(token string) ([]*state.Denial, error) {
	var out []*state.Denial
	err := s.view(func(tx *bolt.Tx) error {
		var err error
		out, err = denialsOf(tx, token)
		return err
	})
	return out, err
}

// getKey decodes the value at key, or returns ErrNotFound.
func getKey[T any](tx *bolt.Tx, bucket, key []byte) (*T, error) {
	v := tx.Bucket(bucket).Get(key)
	if v == nil {
		return nil, ErrNotFound
	}
	return decodeValue[T](bucket, key, v)
}

func decodeValue[T any](bucket, key, v []byte) (*T, error) {
	out := new(T)
	if err := json.Unmarshal(v, out); err != nil {
		return nil, fmt.Errorf("%s %q: %w", bucket, key, err)
	}
	return out, nil
}
