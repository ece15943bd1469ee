package store

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"slices"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/sparr-dev/sparr/protocol"
	"github.com/sparr-dev/sparr/server/state"
)

// What the store keeps for consumers: disputes with their indexes, the
// records members attest the erasure of, and the attestations.

func idKey(prefix, id string) []byte { return []byte(prefix + "\x00" + id) }

// keepErasureRecord keeps what the hub needs of an erasure record to count
// its attestations (never its subject); other records it leaves alone.
func keepErasureRecord(tx *bolt.Tx, r *state.Record) error {
	if !slices.Contains(state.ErasureTypes(), r.Type) {
		return nil
	}
	return put(tx, bErasureRecords, r.ID, state.ErasureRecord{ID: r.ID, Type: r.Type, Audience: r.Audience, IssuedAt: r.IssuedAt})
}

// putDisputeRow writes a dispute and keeps its indexes.
func putDisputeRow(tx *bolt.Tx, old, d *state.Dispute) error {
	byTarget, bySubject, byDue := tx.Bucket(bDisputeTarget), tx.Bucket(bDisputeSubject), tx.Bucket(bDisputeDue)
	if old != nil {
		if err := byTarget.Delete(idKey(old.Target(), old.ID)); err != nil {
			return err
		}
		for _, t := range old.Subjects {
			if err := bySubject.Delete(idKey(t, old.ID)); err != nil {
				return err
			}
		}
		if due := old.NextDue(); !due.IsZero() {
			if err := byDue.Delete(timeKey(due, old.ID)); err != nil {
				return err
			}
		}
	}
	if d.Open() {
		if err := byTarget.Put(idKey(d.Target(), d.ID), nil); err != nil {
			return err
		}
	}
	for _, t := range d.Subjects {
		if err := bySubject.Put(idKey(t, d.ID), nil); err != nil {
			return err
		}
	}
	if due := d.NextDue(); !due.IsZero() {
		if err := byDue.Put(timeKey(due, d.ID), nil); err != nil {
			return err
		}
	}
	return put(tx, bDisputes, d.ID, d)
}

// putDispute applies a [state.PutDispute]: the dispute must be at the
// version before, or new with no other open dispute of its target.
func (t *txn) putDispute(c *state.PutDispute) error {
	old, err := get[state.Dispute](t.tx, bDisputes, c.Dispute.ID)
	if err != nil && err != ErrNotFound {
		return err
	}
	if (old == nil && c.Dispute.Version != 1) || (old != nil && old.Version+1 != c.Dispute.Version) {
		return t.conflict()
	}
	if old == nil {
		// One open dispute per suspicion or flag: another opened since
		// this one was decided makes it conflict.
		open, err := openDisputes(t.tx, c.Dispute.Target())
		if err != nil {
			return err
		}
		if len(open) > 0 {
			return t.conflict()
		}
	}
	var oldSusp *state.Suspicion
	if c.Suspicion != nil {
		o, ok, err := t.suspicionNext(c.Suspicion)
		if !ok || err != nil {
			return orConflict(err, t.conflict)
		}
		oldSusp = o
	}
	var oldFlag *state.Flag
	if c.Flag != nil {
		o, ok, err := t.flagNext(c.Flag)
		if !ok || err != nil {
			return orConflict(err, t.conflict)
		}
		oldFlag = o
	}
	if err := t.reserve(&c.Head); err != nil {
		return err
	}
	if err := t.records(&c.Head, c.Records...); err != nil {
		return err
	}
	if err := putDisputeRow(t.tx, old, c.Dispute); err != nil {
		return err
	}
	if c.Suspicion != nil {
		if err := putSuspicion(t.tx, oldSusp, c.Suspicion); err != nil {
			return err
		}
	}
	if c.Flag != nil {
		if err := putFlag(t.tx, oldFlag, c.Flag); err != nil {
			return err
		}
	}
	if c.Erase != nil {
		if err := t.finishErasure(&c.Head, c.Erase); err != nil {
			return err
		}
	} else if err := t.log(&c.Head, c.Entry.Action); err != nil {
		return err
	}
	out := state.Submission{Dispute: c.Dispute.ID}
	if len(c.Records) > 0 {
		out.Record = c.Records[0].ID
	}
	return t.remember(&c.Head, c.Submission, out)
}

// attestErasure applies a [state.AttestErasure]: every record must be an
// erasure record the store keeps.
func (t *txn) attestErasure(c *state.AttestErasure) error {
	kept := t.tx.Bucket(bErasureRecords)
	for _, id := range c.Records {
		if kept.Get([]byte(id)) == nil {
			return t.conflict()
		}
	}
	if err := t.reserve(&c.Head); err != nil {
		return err
	}
	b := t.tx.Bucket(bAttestations)
	for _, id := range c.Records {
		k := idKey(id, c.Member)
		if b.Get(k) == nil {
			if err := b.Put(k, u64(uint64(c.At.UnixNano()))); err != nil {
				return err
			}
		}
	}
	if err := t.log(&c.Head, c.Entry.Action); err != nil {
		return err
	}
	return t.remember(&c.Head, &c.Submission, state.Submission{})
}

// eraseDisputes clears from every dispute about one of tokens its subjects,
// statement and authentication.
func eraseDisputes(tx *bolt.Tx, tokens []string) error {
	for _, tok := range tokens {
		var ids []string
		prefix := []byte(tok + "\x00")
		c := tx.Bucket(bDisputeSubject).Cursor()
		for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
			ids = append(ids, string(k[len(prefix):]))
		}
		for _, id := range ids {
			old, err := get[state.Dispute](tx, bDisputes, id)
			if err != nil {
				return err
			}
			d := *old
			d.Subjects, d.Statement, d.Auth, d.Reason, d.Erased = nil, "", nil, "", true
			if err := putDisputeRow(tx, old, &d); err != nil {
				return err
			}
		}
	}
	return nil
}

// Dispute returns a dispute.
func (s *Store) Dispute(id string) (*state.Dispute, error) {
	return view[state.Dispute](s, bDisputes, id)
}

// DisputesAbout returns every dispute about token not erased, oldest
// first.
func (s *Store) DisputesAbout(token string) ([]*state.Dispute, error) {
	var out []*state.Dispute
	err := s.view(func(tx *bolt.Tx) error {
		prefix := []byte(token + "\x00")
		c := tx.Bucket(bDisputeSubject).Cursor()
		for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
			d, err := get[state.Dispute](tx, bDisputes, string(k[len(prefix):]))
			if err != nil {
				return err
			}
			out = append(out, d)
		}
		return nil
	})
	return out, err
}

// openDisputes returns the open disputes of target (a flag or suspicion id).
func openDisputes(tx *bolt.Tx, target string) ([]*state.Dispute, error) {
	var out []*state.Dispute
	prefix := []byte(target + "\x00")
	c := tx.Bucket(bDisputeTarget).Cursor()
	for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
		d, err := get[state.Dispute](tx, bDisputes, string(k[len(prefix):]))
		if err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	return out, nil
}

// DisputesDueBefore returns up to limit open disputes whose next deadline
// is before t, soonest first.
func (s *Store) DisputesDueBefore(t time.Time, limit int) ([]*state.Dispute, error) {
	return expiring[state.Dispute](s, bDisputeDue, bDisputes, t, limit)
}

// SubjectEntries returns every log entry indexed under token whose
// details are kept, oldest first.
func (s *Store) SubjectEntries(token string) ([]state.SubjectEntry, error) {
	var out []state.SubjectEntry
	err := s.view(func(tx *bolt.Tx) error {
		prefix := []byte(token + "\x00")
		c := tx.Bucket(bLogSubject).Cursor()
		for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
			idx := binary.BigEndian.Uint64(k[len(prefix):])
			d, err := get[state.Details](tx, bLogDetails, string(u64(idx)))
			if err == ErrNotFound {
				continue
			}
			if err != nil {
				return err
			}
			e, err := protocol.ParseLogEntry(tx.Bucket(bLog).Get(u64(idx)))
			if err != nil {
				return err
			}
			e.Index = idx
			out = append(out, state.SubjectEntry{Entry: e, Details: bytes.Clone(d.Details)})
		}
		return nil
	})
	return out, err
}

// ErasureRecord returns what the store keeps of an erasure record.
func (s *Store) ErasureRecord(id string) (*state.ErasureRecord, error) {
	return view[state.ErasureRecord](s, bErasureRecords, id)
}

// Attestations returns who attested the erasure record id, and when.
func (s *Store) Attestations(id string) (map[string]time.Time, error) {
	out := map[string]time.Time{}
	err := s.view(func(tx *bolt.Tx) error {
		prefix := []byte(id + "\x00")
		c := tx.Bucket(bAttestations).Cursor()
		for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
			out[string(k[len(prefix):])] = time.Unix(0, int64(binary.BigEndian.Uint64(v))).UTC()
		}
		return nil
	})
	return out, err
}

// ErasureRecords calls fn with every erasure record issued before t, oldest
// record id first, and who attested it; fn returns false to stop.
func (s *Store) ErasureRecords(before time.Time, fn func(r *state.ErasureRecord, attested map[string]time.Time) bool) error {
	return s.view(func(tx *bolt.Tx) error {
		c := tx.Bucket(bErasureRecords).Cursor()
		att := tx.Bucket(bAttestations)
		for k, v := c.First(); k != nil; k, v = c.Next() {
			var r state.ErasureRecord
			if err := json.Unmarshal(v, &r); err != nil {
				return err
			}
			if !r.IssuedAt.Before(before) {
				continue
			}
			attested := map[string]time.Time{}
			prefix := idKey(r.ID, "")
			ac := att.Cursor()
			for ak, av := ac.Seek(prefix); ak != nil && bytes.HasPrefix(ak, prefix); ak, av = ac.Next() {
				attested[string(ak[len(prefix):])] = time.Unix(0, int64(binary.BigEndian.Uint64(av))).UTC()
			}
			if !fn(&r, attested) {
				return nil
			}
		}
		return nil
	})
}
