package store

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"time"

	bolt "go.etcd.io/bbolt"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/sparr-dev/sparr/federation/webhook"
	"github.com/sparr-dev/sparr/protocol"
	"github.com/sparr-dev/sparr/protocol/api"
)

// A Command is one decided change to the hub's state. Whoever builds it has
// validated the request, chosen ids, salt and times, and signed the record;
// applying it only checks that the state it was planned against still holds
// and writes. It carries everything it needs, so applying the same commands
// in the same order gives the same file.
type Command struct {
	At     time.Time          // when the hub decided it
	Actor  string             // the member who asked, or "hub" for the hub's own jobs
	Action protocol.LogAction // the log entry's action, e.g. flag-placed
	Result string             // the log entry's result; "" means "ok"
	// Salt and Details are the log entry's commitment: SHA-256(Salt ‖
	// Details). Details are kept beside the log until erased. A command
	// with no Details commits to nothing.
	Salt    []byte
	Details []byte
	Attrs   []protocol.LogAttr
	// Subjects are the tokens the Details name. The entry is indexed under
	// each, in the same transaction, so that an erasure of a subject finds
	// every entry whose details would link to it.
	Subjects []string

	// First, if set, is applied before this command in the same
	// transaction: a placement's expiry of the flag that lapsed on its
	// subject before the expiry job ended it.
	First *Command

	// Submission, if set, makes the command idempotent on the member's jti.
	Submission *SubmissionRef

	Record    *Record    // a new signed record, the one the submitter gets back
	Also      []*Record  // further records of the same change (a suspicion's hit record)
	Flag      *Flag      // a flag's new state (Version 1: a new flag)
	Suspicion *Suspicion // a suspicion's new state (Version 1: new)
	// EndSuspicions are further suspicions' new states (an erasure ends
	// every suspicion about its subject).
	EndSuspicions []*Suspicion
	Consent       *ConsentPut // a consent record to write
	Check         *Check      // a new check, or one with its outcome set
	Member        *api.Member // a member to create or update
	// CreateMember says Member must not exist yet; otherwise it must.
	CreateMember bool
	// Erase lists what a lift or expiry deletes once recorded.
	Erase *Erase

	// Endpoint is a member's change to its webhook endpoint.
	Endpoint *EndpointChange
	// Delivery is the outcome of a delivery attempt.
	Delivery *DeliveryUpdate
	// Prune drops old events from the feed; a command with it carries
	// nothing else (see [Prune]).
	Prune *Prune

	// Checkpoint is a signed checkpoint of the log to keep. A command
	// with one does nothing else (see [CheckpointPut]).
	Checkpoint *CheckpointPut
}

// A SubmissionRef identifies a member's submission: its jti and the
// SHA-256 of its signed bytes.
type SubmissionRef struct {
	ID   string
	Hash []byte
}

// A ConsentPut writes (or, with a nil Value, deletes) one consent record.
type ConsentPut struct {
	ID    string
	Value json.RawMessage
}

// Erase names personal data to delete: records (and the details of their
// log entries), a consent, further log entries' details, and the details of
// every entry indexed under one of Subjects (see [Command.Subjects]) —
// with Actions set, only of entries with one of those actions. Basis is
// the reason, which each tombstone entry states.
type Erase struct {
	Records    []string
	Consent    string
	LogEntries []uint64
	Subjects   []string
	Actions    []protocol.LogAction
	Basis      string
}

// A Result is what applying a command did.
type Result struct {
	// LogIndex is the index of the command's log entry.
	LogIndex uint64
	// Seq is the event sequence number of the command's record.
	Seq uint64
	// Replayed is the stored outcome of an identical earlier submission;
	// nothing was written.
	Replayed *Submission
	// SubmissionConflict: a different submission already used this jti;
	// nothing was written.
	SubmissionConflict bool
	// Conflict: the flag, suspicion, check or member changed (or exists, or
	// is gone) since the command was planned; nothing was written. Plan
	// again.
	Conflict bool
	// Existing is the active flag that already protects the subject of a
	// new flag. The command's record was not stored; its log entry says
	// flag-already-active. A flag past its expiry at the command's time is
	// never Existing: the command must end it (First), or it conflicts.
	Existing *Flag
	// Queued names the members that got deliveries queued.
	Queued []string
	// Erased is how many log entries' details an erasure deleted (each
	// has a tombstone).
	Erased int
	// Endpoint is the endpoint as the command's Endpoint change left it.
	Endpoint *webhook.Endpoint
	// Pruned is how many events a Prune dropped from the feed.
	Pruned int
}

// apply checks the command's preconditions and writes it. Conflicts are
// reported in the Result with nothing written; an error aborts the whole
// transaction.
func apply(tx *bolt.Tx, c *Command) (*Result, error) {
	if c.Checkpoint != nil {
		return putCheckpoint(tx, c.Checkpoint)
	}
	res := &Result{}
	var subKey []byte
	if c.Submission != nil {
		subKey = append([]byte(c.Actor+"\x00"), c.Submission.ID...)
		if v := tx.Bucket(bSubmissions).Get(subKey); v != nil {
			var prev Submission
			if err := json.Unmarshal(v, &prev); err != nil {
				return nil, fmt.Errorf("submission %q: %w", c.Submission.ID, err)
			}
			if bytes.Equal(prev.Hash, c.Submission.Hash) {
				res.Replayed = &prev
			} else {
				res.SubmissionConflict = true
			}
			return res, nil
		}
	}

	// Preconditions, all read before anything is written.
	var oldFlag *Flag
	if c.Flag != nil {
		if c.Flag.Version == 1 {
			if id := tx.Bucket(bFlagByToken).Get([]byte(c.Flag.Subject)); id != nil {
				existing, err := get[Flag](tx, bFlags, string(id))
				if err != nil {
					return nil, err
				}
				switch {
				case existing.ActiveAt(c.At):
					res.Existing = existing
				case !ends(c.First, existing):
					// Lapsed, but the expiry job has not ended it and this
					// command does not: plan again, with its expiry.
					res.Conflict = true
					return res, nil
				}
			}
		} else {
			old, err := get[Flag](tx, bFlags, c.Flag.ID)
			if err != nil && err != ErrNotFound {
				return nil, err
			}
			if old == nil || old.Version+1 != c.Flag.Version {
				res.Conflict = true
				return res, nil
			}
			oldFlag = old
		}
	}
	suspicions := c.EndSuspicions
	if c.Suspicion != nil {
		suspicions = append([]*Suspicion{c.Suspicion}, suspicions...)
	}
	oldSusps := make([]*Suspicion, len(suspicions))
	for i, sp := range suspicions {
		old, err := get[Suspicion](tx, bSuspicions, sp.ID)
		if err != nil && err != ErrNotFound {
			return nil, err
		}
		if (old == nil) != (sp.Version == 1) || (old != nil && old.Version+1 != sp.Version) {
			res.Conflict = true
			return res, nil
		}
		oldSusps[i] = old
	}
	if c.Check != nil {
		old, err := get[Check](tx, bChecks, c.Check.ID)
		if err != nil && err != ErrNotFound {
			return nil, err
		}
		if (old == nil) != (c.Check.Outcome == "") || (old != nil && old.Outcome != "") {
			res.Conflict = true
			return res, nil
		}
	}
	if c.Member != nil {
		exists := tx.Bucket(bMembers).Get([]byte(c.Member.ID)) != nil
		if exists == c.CreateMember {
			res.Conflict = true
			return res, nil
		}
	}
	var delivering *webhook.Endpoint // the endpoint a delivery outcome changes
	if c.Delivery != nil {
		conflict, e, err := deliveryConflicts(tx, c.Delivery)
		if err != nil {
			return nil, err
		}
		if conflict {
			res.Conflict = true
			return res, nil
		}
		delivering = e
	}
	var endpoint *webhook.Endpoint
	if c.Endpoint != nil {
		e, ok, err := changeEndpoint(tx, c.Endpoint, c.At)
		if err != nil {
			return nil, err
		}
		if !ok {
			res.Conflict = true
			return res, nil
		}
		endpoint = e
	}
	var pruning *prunePlan
	if c.Prune != nil {
		var err error
		if pruning, err = planPrune(tx, c.Prune); err != nil {
			return nil, err
		}
		if len(pruning.events) == 0 {
			return res, nil // nothing to drop: nothing written
		}
	}

	if c.First != nil && res.Existing == nil {
		first, err := apply(tx, c.First)
		if err != nil {
			return nil, err
		}
		if first.Conflict || first.Replayed != nil || first.SubmissionConflict || first.Existing != nil {
			// Nothing of it was written.
			res.Conflict = true
			return res, nil
		}
		res.Queued = append(res.Queued, first.Queued...)
	}

	var idx uint64
	var erased []uint64 // log entries whose details an erasure deleted
	if c.Action != "" {
		var err error
		if idx, err = nextIndex(tx); err != nil {
			return nil, err
		}
		res.LogIndex = idx
	}
	action := c.Action

	switch {
	case res.Existing != nil:
		// Placing a second flag answers with the one that exists; only the
		// log entry and the idempotency record are written.
		action = protocol.LogFlagAlreadyActive
	default:
		// Members and endpoints first, so that a record of the same command
		// (an endpoint's verification event) is routed by their new state.
		if c.Member != nil {
			if err := put(tx, bMembers, c.Member.ID, c.Member); err != nil {
				return nil, err
			}
			if err := reroute(tx, c.Member.ID); err != nil {
				return nil, err
			}
		}
		if endpoint != nil {
			if err := putEndpoint(tx, endpoint, c.Endpoint.Op == EndpointRemove); err != nil {
				return nil, err
			}
			res.Endpoint = endpoint
		}
		if c.Delivery != nil {
			if err := applyDelivery(tx, c.Delivery, delivering); err != nil {
				return nil, err
			}
		}
		for i, rec := range append([]*Record{c.Record}, c.Also...) {
			if rec == nil {
				continue
			}
			seq, err := tx.Bucket(bEvents).NextSequence()
			if err != nil {
				return nil, err
			}
			rec.Seq, rec.LogIndex = seq, idx
			if i == 0 {
				res.Seq = seq
			}
			if err := put(tx, bRecords, rec.ID, rec); err != nil {
				return nil, err
			}
			if err := tx.Bucket(bEvents).Put(u64(seq), []byte(rec.ID)); err != nil {
				return nil, err
			}
			queued, err := enqueue(tx, rec, c.At)
			if err != nil {
				return nil, err
			}
			res.Queued = append(res.Queued, queued...)
		}
		if c.Flag != nil {
			if err := putFlag(tx, oldFlag, c.Flag); err != nil {
				return nil, err
			}
		}
		for i, sp := range suspicions {
			if err := putSuspicion(tx, oldSusps[i], sp); err != nil {
				return nil, err
			}
		}
		if c.Consent != nil {
			var err error
			b := tx.Bucket(bConsents)
			if c.Consent.Value == nil {
				err = b.Delete([]byte(c.Consent.ID))
			} else {
				err = b.Put([]byte(c.Consent.ID), c.Consent.Value)
			}
			if err != nil {
				return nil, err
			}
		}
		if c.Check != nil {
			if err := put(tx, bChecks, c.Check.ID, c.Check); err != nil {
				return nil, err
			}
		}

		if c.Erase != nil {
			var err error
			if erased, err = erase(tx, c.Erase); err != nil {
				return nil, err
			}
		}
		if pruning != nil {
			floor, err := prune(tx, pruning)
			if err != nil {
				return nil, err
			}
			res.Pruned = len(pruning.events)
			pruned := *c
			pruned.Attrs = append(slices.Clip(c.Attrs),
				protocol.LogAttr{Key: "count", Value: strconv.Itoa(res.Pruned)},
				protocol.LogAttr{Key: "floor", Value: strconv.FormatUint(floor, 10)})
			c = &pruned
		}
	}

	if action != "" {
		if err := appendLog(tx, idx, c, action); err != nil {
			return nil, err
		}
	}
	res.Erased = len(erased)
	for _, n := range erased {
		// A tombstone for each erased entry: the log says that, when and
		// why the details went, and still commits to nothing personal.
		ti, err := nextIndex(tx)
		if err != nil {
			return nil, err
		}
		tomb := &Command{At: c.At, Actor: "hub", Attrs: []protocol.LogAttr{
			{Key: "index", Value: strconv.FormatUint(n, 10)}, {Key: "basis", Value: c.Erase.Basis}}}
		if err := appendLog(tx, ti, tomb, protocol.LogErased); err != nil {
			return nil, err
		}
	}
	if subKey != nil {
		sub := Submission{Hash: c.Submission.Hash, Action: c.Action, At: c.At, LogIndex: idx}
		switch {
		case res.Existing != nil:
			sub.Flag, sub.Existing = res.Existing.ID, true
		default:
			if c.Record != nil {
				sub.Record = c.Record.ID
			}
			if c.Flag != nil {
				sub.Flag = c.Flag.ID
			}
			if c.Suspicion != nil {
				sub.Suspicion = c.Suspicion.ID
			}
		}
		if err := putKey(tx, bSubmissions, subKey, sub); err != nil {
			return nil, err
		}
	}
	return res, nil
}

// nextIndex reserves the next log index (0-based).
func nextIndex(tx *bolt.Tx) (uint64, error) {
	n, err := tx.Bucket(bLog).NextSequence()
	return n - 1, err
}

// appendLog writes the command's log entry at idx and its details beside
// it. Entry times never go backwards: a command decided a moment before one
// already written takes that one's time.
func appendLog(tx *bolt.Tx, idx uint64, c *Command, action protocol.LogAction) error {
	meta := tx.Bucket(bMeta)
	at := c.At.UTC()
	if v := meta.Get([]byte("log_time")); len(v) == 8 {
		if last := time.Unix(0, int64(binary.BigEndian.Uint64(v))).UTC(); at.Before(last) {
			at = last
		}
	}
	if err := meta.Put([]byte("log_time"), u64(uint64(at.UnixNano()))); err != nil {
		return err
	}
	e := protocol.LogEntry{Index: idx, Time: at, Member: c.Actor, Action: action, Result: c.Result, Attrs: c.Attrs}
	if e.Result == "" {
		e.Result = "ok"
	}
	if c.Details != nil {
		e.Commitment = protocol.LogCommitment(c.Salt, c.Details)
		if err := put(tx, bLogDetails, string(u64(idx)), Details{Salt: c.Salt, Details: c.Details, Subjects: c.Subjects}); err != nil {
			return err
		}
		for _, t := range c.Subjects {
			if err := tx.Bucket(bLogSubject).Put(subjectKey(t, idx), []byte(action)); err != nil {
				return err
			}
		}
	}
	line, err := e.Marshal()
	if err != nil {
		return err
	}
	if err := tx.Bucket(bLog).Put(u64(idx), line); err != nil {
		return err
	}
	return storeHashes(tx, idx, line)
}

// storeHashes writes the Merkle tree hashes that entry idx completes, in
// the same transaction as the entry (tlog's stored hashes: the leaf, and
// the root of every perfect subtree it finishes).
func storeHashes(tx *bolt.Tx, idx uint64, line []byte) error {
	b := tx.Bucket(bLogHashes)
	hs, err := tlog.StoredHashes(int64(idx), line, txHashes{b})
	if err != nil {
		return fmt.Errorf("log hashes of entry %d: %w", idx, err)
	}
	start := uint64(tlog.StoredHashIndex(0, int64(idx)))
	for i, h := range hs {
		if err := b.Put(u64(start+uint64(i)), h[:]); err != nil {
			return err
		}
	}
	return nil
}

// txHashes reads stored hashes within a transaction.
type txHashes struct{ b *bolt.Bucket }

func (r txHashes) ReadHashes(indexes []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(indexes))
	for i, x := range indexes {
		v := r.b.Get(u64(uint64(x)))
		if len(v) != tlog.HashSize {
			return nil, fmt.Errorf("stored hash %d missing", x)
		}
		copy(out[i][:], v)
	}
	return out, nil
}

// putFlag writes a flag and keeps its indexes: an active flag is found by
// its subject and by its expiry; an ended one by neither.
func putFlag(tx *bolt.Tx, old, f *Flag) error {
	byToken, byExpiry, byRemind := tx.Bucket(bFlagByToken), tx.Bucket(bFlagExpiry), tx.Bucket(bFlagRemind)
	if old != nil && old.Status == FlagActive {
		if err := byToken.Delete([]byte(old.Subject)); err != nil {
			return err
		}
		if err := byExpiry.Delete(timeKey(old.ExpiresAt, old.ID)); err != nil {
			return err
		}
		if err := byRemind.Delete(timeKey(old.RemindAt, old.ID)); err != nil {
			return err
		}
	}
	if f.Status == FlagActive {
		if err := byToken.Put([]byte(f.Subject), []byte(f.ID)); err != nil {
			return err
		}
		if err := byExpiry.Put(timeKey(f.ExpiresAt, f.ID), nil); err != nil {
			return err
		}
		if !f.RemindAt.IsZero() && f.RemindedAt.IsZero() {
			if err := byRemind.Put(timeKey(f.RemindAt, f.ID), nil); err != nil {
				return err
			}
		}
	}
	return put(tx, bFlags, f.ID, f)
}

func suspTokenKey(token, id string) []byte { return []byte(token + "\x00" + id) }

// putSuspicion writes a suspicion and keeps its indexes.
func putSuspicion(tx *bolt.Tx, old, s *Suspicion) error {
	byToken, byExpiry := tx.Bucket(bSuspByToken), tx.Bucket(bSuspExpiry)
	if old != nil && old.Status == SuspicionActive {
		for _, t := range old.Subjects {
			if err := byToken.Delete(suspTokenKey(t, old.ID)); err != nil {
				return err
			}
		}
		if err := byExpiry.Delete(timeKey(old.ExpiresAt, old.ID)); err != nil {
			return err
		}
	}
	if s.Status == SuspicionActive {
		for _, t := range s.Subjects {
			if err := byToken.Put(suspTokenKey(t, s.ID), nil); err != nil {
				return err
			}
		}
		if err := byExpiry.Put(timeKey(s.ExpiresAt, s.ID), nil); err != nil {
			return err
		}
	}
	return put(tx, bSuspicions, s.ID, s)
}

// ends reports whether c (a command's First) ends flag f: it is f's next
// version, and no longer active.
func ends(c *Command, f *Flag) bool {
	return c != nil && c.Flag != nil && c.Flag.ID == f.ID && c.Flag.Version == f.Version+1 && c.Flag.Status != FlagActive
}

// subjectKey is the key of entry idx in the subject index under token.
func subjectKey(token string, idx uint64) []byte {
	return append([]byte(token+"\x00"), u64(idx)...)
}

// erase deletes records, the details of their log entries and of any
// further entries named or indexed under a subject, and a consent, and
// returns the log entries whose details it deleted. The entries themselves
// stay: without salt and details their commitments link to nothing.
func erase(tx *bolt.Tx, e *Erase) ([]uint64, error) {
	details, bySubject := tx.Bucket(bLogDetails), tx.Bucket(bLogSubject)
	var erased []uint64
	forget := func(idx uint64) error {
		v := details.Get(u64(idx))
		if v == nil || slices.Contains(erased, idx) {
			return nil
		}
		var d Details
		if err := json.Unmarshal(v, &d); err != nil {
			return fmt.Errorf("details of log entry %d: %w", idx, err)
		}
		for _, t := range d.Subjects {
			if err := bySubject.Delete(subjectKey(t, idx)); err != nil {
				return err
			}
		}
		erased = append(erased, idx)
		return details.Delete(u64(idx))
	}
	for _, t := range e.Subjects {
		// Collect first: forget deletes from the bucket being read.
		var due []uint64
		prefix := []byte(t + "\x00")
		c := bySubject.Cursor()
		for k, action := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, action = c.Next() {
			if len(e.Actions) == 0 || slices.Contains(e.Actions, protocol.LogAction(action)) {
				due = append(due, binary.BigEndian.Uint64(k[len(prefix):]))
			}
		}
		for _, idx := range due {
			if err := forget(idx); err != nil {
				return nil, err
			}
			if err := bySubject.Delete(subjectKey(t, idx)); err != nil {
				return nil, err
			}
		}
	}
	for _, id := range e.Records {
		rec, err := get[Record](tx, bRecords, id)
		if err == ErrNotFound {
			continue
		}
		if err != nil {
			return nil, err
		}
		if err := tx.Bucket(bRecords).Delete([]byte(id)); err != nil {
			return nil, err
		}
		if err := forget(rec.LogIndex); err != nil {
			return nil, err
		}
	}
	for _, idx := range e.LogEntries {
		if err := forget(idx); err != nil {
			return nil, err
		}
	}
	if e.Consent != "" {
		if err := tx.Bucket(bConsents).Delete([]byte(e.Consent)); err != nil {
			return nil, err
		}
	}
	slices.Sort(erased)
	return erased, nil
}

func put(tx *bolt.Tx, bucket []byte, key string, v any) error {
	return putKey(tx, bucket, []byte(key), v)
}

func putKey(tx *bolt.Tx, bucket, key []byte, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return tx.Bucket(bucket).Put(key, b)
}

// get decodes the value at key, or returns ErrNotFound.
func get[T any](tx *bolt.Tx, bucket []byte, key string) (*T, error) {
	v := tx.Bucket(bucket).Get([]byte(key))
	if v == nil {
		return nil, ErrNotFound
	}
	out := new(T)
	if err := json.Unmarshal(v, out); err != nil {
		return nil, fmt.Errorf("%s %q: %w", bucket, key, err)
	}
	return out, nil
}
