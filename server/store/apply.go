package store

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	bolt "go.etcd.io/bbolt"

	"github.com/sparr-dev/sparr/federation/webhook"
	"github.com/sparr-dev/sparr/protocol"
	"github.com/sparr-dev/sparr/protocol/api"
	"github.com/sparr-dev/sparr/server/state"
)

// A Result is what applying a command did.
type Result struct {
	// LogIndex is the index of the command's log entry.
	LogIndex uint64
	// Seq is the event sequence number of the command's (first) record.
	Seq uint64
	// Replayed is the stored outcome of an identical earlier submission;
	// nothing was written.
	Replayed *state.Submission
	// SubmissionConflict: a different submission already used this jti;
	// nothing was written.
	SubmissionConflict bool
	// Conflict: the flag, suspicion, check, member or endpoint changed (or
	// exists, or is gone) since the command was decided; nothing was
	// written. Decide again.
	Conflict bool
	// Existing is the active flag that already protects the subject of a
	// [state.PlaceFlag]. Its record was not stored; its log entry says
	// flag-already-active. A flag past its expiry at the command's time is
	// never Existing: the command must end it (Lapsed), or it conflicts.
	Existing *state.Flag
	// Queued names the members that got deliveries queued.
	Queued []string
	// Erased is how many log entries' details an erasure deleted (each
	// has a tombstone).
	Erased int
	// Endpoint is the endpoint as a [state.ChangeEndpoint] left it.
	Endpoint *webhook.Endpoint
	// Pruned is how many events a [state.PruneFeed] dropped from the feed.
	Pruned int
	// QuotaExceeded: the command would have taken its member over a daily
	// quota (its [state.Quota] of stored bytes, or an
	// [state.EvaluateTokens]'s limit). Nothing was written, but an
	// EvaluateTokens's refusal entry.
	QuotaExceeded bool
	// Duplicate: a [state.RelayEvent]'s record was taken before; nothing
	// was written.
	Duplicate bool
}

// apply applies one command in tx: a conflict is reported in the Result
// with nothing written; an error aborts the whole transaction.
func apply(tx *bolt.Tx, c state.Command) (*Result, error) {
	t := &txn{tx: tx, res: &Result{}}
	h := c.Header()
	if h != nil {
		// A replay is answered before the quota is: a member retrying a
		// placement that was stored gets its outcome, spent quota or not.
		done, err := t.replayed(h.Actor, state.Submitted(c))
		if done || err != nil {
			return t.res, err
		}
		if ok, err := t.allowed(h); !ok || err != nil {
			return t.res, err
		}
	}
	var err error
	switch c := c.(type) {
	case *state.PlaceFlag:
		err = t.placeFlag(c)
	case *state.ChangeFlag:
		err = t.changeFlag(c)
	case *state.EndFlag:
		err = t.endFlag(c)
	case *state.ReportSuspicion:
		err = t.reportSuspicion(c)
	case *state.EndSuspicion:
		err = t.endSuspicion(c)
	case *state.EraseSubject:
		err = t.eraseSubject(c)
	case *state.AddCheck:
		err = t.addCheck(c)
	case *state.SetOutcome:
		err = t.setOutcome(c)
	case *state.PutMember:
		err = t.putMember(c)
	case *state.ChangeEndpoint:
		err = t.changeEndpoint(c)
	case *state.RecordDelivery:
		err = t.recordDelivery(c)
	case *state.PruneFeed:
		err = t.pruneFeed(c)
	case *state.PutCheckpoint:
		err = t.putCheckpoint(c)
	case *state.Note:
		err = t.note(c)
	case *state.EvaluateTokens:
		err = t.evaluateTokens(c)
	case *state.ExpireDetails:
		err = t.expireDetails(c)
	case *state.PublishErasures:
		err = t.publishErasures(c)
	case *state.PruneReplays:
		err = t.pruneReplays(c)
	case *state.AddCosignature:
		err = t.addCosignature(c)
	case *state.ReplicaChecks:
		err = t.replicaChecks(c)
	case *state.DenyCheck:
		err = t.denyCheck(c)
	case *state.PutPayee:
		err = t.putPayee(c)
	case *state.PutRecall:
		err = t.putRecall(c)
	case *state.PutDispute:
		err = t.putDispute(c)
	case *state.AttestErasure:
		err = t.attestErasure(c)
	case *state.ExpirePayee:
		err = t.expirePayee(c)
	case *state.ExpireRecall:
		err = t.expireRecall(c)
	case *state.PutPeer:
		err = t.putPeer(c)
	case *state.RelayEvent:
		err = t.relayEvent(c)
	case *state.PeerCursor:
		err = t.peerCursor(c)
	default:
		err = fmt.Errorf("store: unknown command %T", c)
	}
	if err != nil {
		return nil, err
	}
	if h != nil && t.wrote() {
		if err := t.charge(h); err != nil {
			return nil, err
		}
	}
	return t.res, nil
}

// wrote reports whether the command wrote anything: a conflict or a
// replayed submission writes nothing, and is charged nothing.
func (t *txn) wrote() bool {
	return !t.res.Conflict && !t.res.SubmissionConflict && t.res.Replayed == nil && !t.res.Duplicate
}

// A txn is one command being applied: its transaction and its result.
// Its methods are the steps the commands share.
type txn struct {
	tx  *bolt.Tx
	res *Result
	// submission is the key under which the command's submission's
	// outcome is remembered; nil for a command without one.
	submission []byte
}

// conflict reports that the state is no longer as the command was decided
// against; nothing is written.
func (t *txn) conflict() error {
	t.res.Conflict = true
	return nil
}

// replayed looks a submission up: it reports true, with the Result saying
// so, if the jti was used before (by the same bytes: Replayed; by other
// bytes: SubmissionConflict). Otherwise it keeps the key to remember the
// submission's outcome under.
func (t *txn) replayed(actor string, sub *state.SubmissionRef) (done bool, err error) {
	if sub == nil {
		return false, nil
	}
	key := append([]byte(actor+"\x00"), sub.ID...)
	v := t.tx.Bucket(bSubmissions).Get(key)
	if v == nil {
		t.submission = key
		return false, nil
	}
	var prev state.Submission
	if err := json.Unmarshal(v, &prev); err != nil {
		return false, fmt.Errorf("submission %q: %w", sub.ID, err)
	}
	if bytes.Equal(prev.Hash, sub.Hash) {
		t.res.Replayed = &prev
	} else {
		t.res.SubmissionConflict = true
	}
	return true, nil
}

// remember keeps a submission's outcome (none for a command without one).
func (t *txn) remember(h *state.Head, sub *state.SubmissionRef, out state.Submission) error {
	key := t.submission
	if key == nil {
		return nil
	}
	out.Hash, out.Action, out.At, out.LogIndex = sub.Hash, h.Entry.Action, h.At, t.res.LogIndex
	if err := putKey(t.tx, bSubmissions, key, out); err != nil {
		return err
	}
	return t.tx.Bucket(bSubmissionTimes).Put(replayKey(h.At, key), nil)
}

// reserve reserves the command's log index, if it appends an entry.
func (t *txn) reserve(h *state.Head) error {
	if h.Entry.Action == "" {
		return nil
	}
	idx, err := nextIndex(t.tx)
	t.res.LogIndex = idx
	return err
}

// records stores new records, each with the next event sequence number and
// the command's log index, and queues their deliveries.
func (t *txn) records(h *state.Head, recs ...*state.Record) error {
	for i, r := range recs {
		if r == nil {
			continue
		}
		seq, err := t.tx.Bucket(bEvents).NextSequence()
		if err != nil {
			return err
		}
		// The stored record gets its place; the command is left as it
		// was decided, so that it encodes the same after it is applied.
		rec := *r
		rec.Seq, rec.LogIndex = seq, t.res.LogIndex
		if i == 0 {
			t.res.Seq = seq
		}
		if err := put(t.tx, bRecords, rec.ID, &rec); err != nil {
			return err
		}
		if err := t.tx.Bucket(bEvents).Put(u64(seq), []byte(rec.ID)); err != nil {
			return err
		}
		if err := keepErasureRecord(t.tx, &rec); err != nil {
			return err
		}
		queued, err := enqueue(t.tx, &rec, h.At)
		if err != nil {
			return err
		}
		t.res.Queued = append(t.res.Queued, queued...)
	}
	return nil
}

// log appends the command's entry at its reserved index, under action.
func (t *txn) log(h *state.Head, action protocol.LogAction, attrs ...protocol.LogAttr) error {
	if action == "" {
		return nil
	}
	return appendLog(t.tx, t.res.LogIndex, h, action, attrs...)
}

// flagNext reads the stored version of f, which must be f's previous one.
func (t *txn) flagNext(f *state.Flag) (old *state.Flag, ok bool, err error) {
	old, err = get[state.Flag](t.tx, bFlags, f.ID)
	if err != nil && err != ErrNotFound {
		return nil, false, err
	}
	return old, old != nil && old.Version+1 == f.Version, nil
}

// suspicionNext reads the stored version of s, which must be s's previous
// one, or none for a new suspicion (version 1).
func (t *txn) suspicionNext(s *state.Suspicion) (old *state.Suspicion, ok bool, err error) {
	old, err = get[state.Suspicion](t.tx, bSuspicions, s.ID)
	if err != nil && err != ErrNotFound {
		return nil, false, err
	}
	if old == nil {
		return nil, s.Version == 1, nil
	}
	return old, old.Version+1 == s.Version, nil
}

// placeFlag applies a [state.PlaceFlag].
func (t *txn) placeFlag(c *state.PlaceFlag) error {
	if c.Active != "" {
		on, err := get[state.Flag](t.tx, bFlags, c.Active)
		if err == ErrNotFound || err == nil && !on.ActiveAt(c.At) {
			return t.conflict() // it ended since: decide again
		}
		if err != nil {
			return err
		}
		return t.alreadyActive(c, on)
	}
	if id := t.tx.Bucket(bFlagByToken).Get([]byte(c.Flag.Subject)); id != nil {
		on, err := get[state.Flag](t.tx, bFlags, string(id))
		if err != nil {
			return err
		}
		switch {
		case on.ActiveAt(c.At):
			// Placed since the command was decided: decide again,
			// to answer with it.
			return t.conflict()
		case !ends(c.Lapsed, on):
			// Lapsed, but the expiry job has not ended it and this
			// command does not: decide again, with its end.
			return t.conflict()
		}
		first := &txn{tx: t.tx, res: &Result{}}
		if err := first.endFlag(c.Lapsed); err != nil || first.res.Conflict {
			t.res.Conflict = first.res.Conflict
			return err
		}
		t.res.Queued = append(t.res.Queued, first.res.Queued...)
	}
	if err := t.reserve(&c.Head); err != nil {
		return err
	}
	if err := t.records(&c.Head, c.Record); err != nil {
		return err
	}
	if err := putFlag(t.tx, nil, c.Flag); err != nil {
		return err
	}
	if err := t.tx.Bucket(bConsents).Put([]byte(c.Flag.ID), c.Consent); err != nil {
		return err
	}
	if err := t.log(&c.Head, c.Entry.Action); err != nil {
		return err
	}
	return t.remember(&c.Head, &c.Submission, state.Submission{Record: idOf(c.Record), Flag: c.Flag.ID})
}

// alreadyActive answers a placement on a subject that an active flag
// protects: only the log entry, flag-already-active, and the
// submission's outcome, that flag, are written.
func (t *txn) alreadyActive(c *state.PlaceFlag, on *state.Flag) error {
	t.res.Existing = on
	if err := t.reserve(&c.Head); err != nil {
		return err
	}
	if err := t.log(&c.Head, c.Entry.Action); err != nil {
		return err
	}
	return t.remember(&c.Head, &c.Submission, state.Submission{Flag: on.ID, Existing: true})
}

// ends reports whether c ends flag f: it is f's next version, and no
// longer active.
func ends(c *state.EndFlag, f *state.Flag) bool {
	return c != nil && c.Flag != nil && c.Flag.ID == f.ID && c.Flag.Version == f.Version+1 && c.Flag.Status != api.FlagActive
}

// changeFlag applies a [state.ChangeFlag].
func (t *txn) changeFlag(c *state.ChangeFlag) error {
	old, ok, err := t.flagNext(c.Flag)
	if !ok || err != nil {
		return orConflict(err, t.conflict)
	}
	if err := t.reserve(&c.Head); err != nil {
		return err
	}
	if err := t.records(&c.Head, c.Record); err != nil {
		return err
	}
	if err := putFlag(t.tx, old, c.Flag); err != nil {
		return err
	}
	if err := t.log(&c.Head, c.Entry.Action); err != nil {
		return err
	}
	return t.remember(&c.Head, c.Submission, state.Submission{Record: idOf(c.Record), Flag: c.Flag.ID})
}

// endFlag applies a [state.EndFlag].
func (t *txn) endFlag(c *state.EndFlag) error {
	old, ok, err := t.flagNext(c.Flag)
	if !ok || err != nil {
		return orConflict(err, t.conflict)
	}
	if err := t.reserve(&c.Head); err != nil {
		return err
	}
	if err := t.records(&c.Head, c.Record); err != nil {
		return err
	}
	if err := putFlag(t.tx, old, c.Flag); err != nil {
		return err
	}
	if err := t.finishErasure(&c.Head, &c.Erase); err != nil {
		return err
	}
	return t.remember(&c.Head, c.Submission, state.Submission{Record: idOf(c.Record), Flag: c.Flag.ID})
}

// finishErasure deletes what e names, then appends the command's entry.
// The tombstones of the entries whose details went are published later, in
// a batch with every other erasure of the period ([state.PublishErasures]).
func (t *txn) finishErasure(h *state.Head, e *state.Erase) error {
	erased, err := erase(t.tx, e, h.At)
	if err != nil {
		return err
	}
	t.res.Erased = len(erased)
	return t.log(h, h.Entry.Action)
}

// reportSuspicion applies a [state.ReportSuspicion].
func (t *txn) reportSuspicion(c *state.ReportSuspicion) error {
	if _, ok, err := t.suspicionNext(c.Suspicion); !ok || err != nil {
		return orConflict(err, t.conflict)
	}
	if err := t.reserve(&c.Head); err != nil {
		return err
	}
	if err := t.records(&c.Head, c.Records...); err != nil {
		return err
	}
	if err := putSuspicion(t.tx, nil, c.Suspicion); err != nil {
		return err
	}
	if err := t.log(&c.Head, c.Entry.Action); err != nil {
		return err
	}
	out := state.Submission{Suspicion: c.Suspicion.ID}
	if len(c.Records) > 0 {
		out.Record = c.Records[0].ID
	}
	return t.remember(&c.Head, &c.Submission, out)
}

// endSuspicion applies a [state.EndSuspicion].
func (t *txn) endSuspicion(c *state.EndSuspicion) error {
	old, ok, err := t.suspicionNext(c.Suspicion)
	if !ok || err != nil {
		return orConflict(err, t.conflict)
	}
	if err := t.reserve(&c.Head); err != nil {
		return err
	}
	if err := t.records(&c.Head, c.Record); err != nil {
		return err
	}
	if err := putSuspicion(t.tx, old, c.Suspicion); err != nil {
		return err
	}
	if err := t.finishErasure(&c.Head, &c.Erase); err != nil {
		return err
	}
	return t.remember(&c.Head, c.Submission, state.Submission{Record: idOf(c.Record), Suspicion: c.Suspicion.ID})
}

// eraseSubject applies a [state.EraseSubject].
func (t *txn) eraseSubject(c *state.EraseSubject) error {
	var oldFlag *state.Flag
	if c.Flag != nil {
		old, ok, err := t.flagNext(c.Flag)
		if !ok || err != nil {
			return orConflict(err, t.conflict)
		}
		oldFlag = old
	}
	olds := make([]*state.Suspicion, len(c.Suspicions))
	for i, sp := range c.Suspicions {
		old, ok, err := t.suspicionNext(sp)
		if !ok || err != nil {
			return orConflict(err, t.conflict)
		}
		olds[i] = old
	}
	if c.Payee != nil {
		if err := t.storedPayee(c.Payee); err != nil {
			return err
		}
	}
	oldRecalls := make([]*state.Recall, len(c.Recalls))
	for i, rc := range c.Recalls {
		old, ok, err := t.recallNext(rc)
		if !ok || err != nil {
			return orConflict(err, t.conflict)
		}
		oldRecalls[i] = old
	}
	if err := t.reserve(&c.Head); err != nil {
		return err
	}
	if c.Payee != nil {
		if err := deletePayee(t.tx, c.Payee); err != nil {
			return err
		}
	}
	if err := putScrubbed(t.tx, oldRecalls, c.Recalls); err != nil {
		return err
	}
	if err := t.records(&c.Head, c.Records...); err != nil {
		return err
	}
	if c.Flag != nil {
		if err := putFlag(t.tx, oldFlag, c.Flag); err != nil {
			return err
		}
	}
	for i, sp := range c.Suspicions {
		if err := putSuspicion(t.tx, olds[i], sp); err != nil {
			return err
		}
	}
	return t.finishErasure(&c.Head, &c.Erase)
}

// addCheck applies a [state.AddCheck].
func (t *txn) addCheck(c *state.AddCheck) error {
	if t.tx.Bucket(bChecks).Get([]byte(c.Check.ID)) != nil {
		return t.conflict()
	}
	if err := t.reserve(&c.Head); err != nil {
		return err
	}
	if err := put(t.tx, bChecks, c.Check.ID, c.Check); err != nil {
		return err
	}
	if err := t.notices(&c.Head, c.Notices); err != nil {
		return err
	}
	return t.log(&c.Head, c.Entry.Action)
}

// setOutcome applies a [state.SetOutcome].
func (t *txn) setOutcome(c *state.SetOutcome) error {
	old, err := get[state.Check](t.tx, bChecks, c.Check.ID)
	if err != nil && err != ErrNotFound {
		return err
	}
	if old == nil || old.Outcome != "" || c.Check.Outcome == "" {
		return t.conflict()
	}
	if err := t.reserve(&c.Head); err != nil {
		return err
	}
	if err := put(t.tx, bChecks, c.Check.ID, c.Check); err != nil {
		return err
	}
	return t.log(&c.Head, c.Entry.Action)
}

// putMember applies a [state.PutMember].
func (t *txn) putMember(c *state.PutMember) error {
	exists := t.tx.Bucket(bMembers).Get([]byte(c.Member.ID)) != nil
	if exists == c.Create {
		return t.conflict()
	}
	if err := t.reserve(&c.Head); err != nil {
		return err
	}
	if err := put(t.tx, bMembers, c.Member.ID, c.Member); err != nil {
		return err
	}
	if err := reroute(t.tx, c.Member.ID); err != nil {
		return err
	}
	return t.log(&c.Head, c.Entry.Action)
}

// changeEndpoint applies a [state.ChangeEndpoint]: the endpoint first, so
// that its verification record is routed by its new state.
func (t *txn) changeEndpoint(c *state.ChangeEndpoint) error {
	stored, err := get[webhook.Endpoint](t.tx, bEndpoints, c.Change.Member)
	if err != nil && err != ErrNotFound {
		return err
	}
	e, ok, err := c.Change.ApplyTo(stored, c.At)
	if !ok || err != nil {
		return orConflict(err, t.conflict)
	}
	if err := t.reserve(&c.Head); err != nil {
		return err
	}
	if err := putEndpoint(t.tx, e, c.Change.Op == state.EndpointRemove); err != nil {
		return err
	}
	t.res.Endpoint = e
	if err := t.records(&c.Head, c.Record); err != nil {
		return err
	}
	return t.log(&c.Head, c.Entry.Action)
}

// recordDelivery applies a [state.RecordDelivery].
func (t *txn) recordDelivery(c *state.RecordDelivery) error {
	conflict, e, err := deliveryConflicts(t.tx, &c.Update)
	if conflict || err != nil {
		return orConflict(err, t.conflict)
	}
	if err := t.reserve(&c.Head); err != nil {
		return err
	}
	if err := applyDelivery(t.tx, &c.Update, e); err != nil {
		return err
	}
	return t.log(&c.Head, c.Entry.Action)
}

// pruneFeed applies a [state.PruneFeed]; with nothing to drop it writes
// nothing.
func (t *txn) pruneFeed(c *state.PruneFeed) error {
	plan, err := planPrune(t.tx, c)
	if err != nil || len(plan.events) == 0 {
		return err
	}
	if err := t.reserve(&c.Head); err != nil {
		return err
	}
	floor, err := prune(t.tx, plan)
	if err != nil {
		return err
	}
	t.res.Pruned = len(plan.events)
	return t.log(&c.Head, c.Entry.Action,
		protocol.LogAttr{Key: "count", Value: strconv.Itoa(t.res.Pruned)},
		protocol.LogAttr{Key: "floor", Value: strconv.FormatUint(floor, 10)})
}

// putCheckpoint applies a [state.PutCheckpoint].
func (t *txn) putCheckpoint(c *state.PutCheckpoint) error {
	cps := t.tx.Bucket(bCheckpoints)
	if cps.Get(u64(c.Size)) != nil {
		return t.conflict()
	}
	root, err := treeHash(t.tx, c.Size)
	if err != nil {
		return fmt.Errorf("checkpoint of size %d: %w", c.Size, err)
	}
	if root != c.Root {
		return fmt.Errorf("checkpoint of size %d: its root is not the tree's", c.Size)
	}
	// A checkpoint extends the latest one kept, or is not kept: on a
	// replicated hub, a leader that lost its place cannot publish behind
	// its successor.
	if k, _ := cps.Cursor().Last(); k != nil && binary.BigEndian.Uint64(k) >= c.Size {
		return t.conflict()
	}
	return cps.Put(u64(c.Size), c.Note)
}

// addCosignature applies a [state.AddCosignature].
func (t *txn) addCosignature(c *state.AddCosignature) error {
	if t.tx.Bucket(bCheckpoints).Get(u64(c.Size)) == nil {
		return fmt.Errorf("cosignature of checkpoint %d: no such checkpoint", c.Size)
	}
	if c.Witness == "" || c.Line == "" || strings.Contains(c.Line, "\n") {
		return fmt.Errorf("cosignature of checkpoint %d: witness %q, line %q", c.Size, c.Witness, c.Line)
	}
	b, k := t.tx.Bucket(bCosignatures), append(u64(c.Size), c.Witness...)
	if b.Get(k) != nil {
		return t.conflict()
	}
	return b.Put(k, []byte(c.Line))
}

// note applies a [state.Note]: its log entry only.
func (t *txn) note(c *state.Note) error {
	if err := t.reserve(&c.Head); err != nil {
		return err
	}
	return t.log(&c.Head, c.Entry.Action)
}

// idOf is the record's id, or "" for none.
func idOf(r *state.Record) string {
	if r == nil {
		return ""
	}
	return r.ID
}

// orConflict returns err if there is one, and otherwise what conflict
// returns: the end of a precondition that failed or could not be read.
func orConflict(err error, conflict func() error) error {
	if err != nil {
		return err
	}
	return conflict()
}
