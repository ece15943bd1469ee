package store

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/sparr-dev/sparr/federation/members"
	"github.com/sparr-dev/sparr/federation/webhook"
	"github.com/sparr-dev/sparr/protocol"
	"github.com/sparr-dev/sparr/protocol/api"
	"github.com/sparr-dev/sparr/server/state"
)

// The transactional outbox. Every record applied writes, in the same
// transaction, one delivery row per member whose endpoint queues and who is
// entitled to and subscribed to it. A row is deleted only once delivered (or
// dead-lettered, or dropped with a disabled endpoint, or skipped because
// its record was erased), so a crash or restart loses nothing: the
// dispatcher resumes from the rows. A record stays while a row needs it,
// even after its event has left the feed.

// A route is what enqueueing needs to know of a member, kept compact in
// its own bucket so that fanning an event out to hundreds of members reads
// one small value each: the member's roles and status, its endpoint's
// status and subscription, and the last event queued for it.
type route struct {
	Roles    []api.Role           `json:"r,omitempty"`
	Active   bool                 `json:"a"`           // the member is active
	Endpoint api.EndpointStatus   `json:"s,omitempty"` // "" without an endpoint
	Events   []protocol.EventType `json:"e,omitempty"`
	Last     uint64               `json:"l,omitempty"`
}

func outboxKey(member string, seq uint64) []byte {
	return binary.BigEndian.AppendUint64([]byte(member+"\x00"), seq)
}

func memberPrefix(member string) []byte { return []byte(member + "\x00") }

// reroute recomputes a member's route from its member record and endpoint.
func reroute(tx *bolt.Tx, member string) error {
	routes := tx.Bucket(bRoutes)
	var r route
	if v := routes.Get([]byte(member)); v != nil {
		if err := json.Unmarshal(v, &r); err != nil {
			return fmt.Errorf("route %q: %w", member, err)
		}
	}
	m, err := get[api.Member](tx, bMembers, member)
	if err != nil && !errors.Is(err, ErrNotFound) {
		return err
	}
	r.Roles, r.Active = nil, false
	if m != nil {
		r.Roles, r.Active = m.Roles, m.Active()
	}
	e, err := get[webhook.Endpoint](tx, bEndpoints, member)
	if err != nil && !errors.Is(err, ErrNotFound) {
		return err
	}
	r.Endpoint, r.Events = "", nil
	if e != nil {
		r.Endpoint, r.Events = e.Status, e.Events
	}
	return putKey(tx, bRoutes, []byte(member), r)
}

// enqueue writes a delivery row for rec to every member that is to get it,
// and returns those members.
func enqueue(tx *bolt.Tx, rec *state.Record, at time.Time) ([]string, error) {
	routes := tx.Bucket(bRoutes)
	type update struct {
		key []byte
		r   route
	}
	var updates []update
	c := routes.Cursor()
	for k, v := c.First(); k != nil; k, v = c.Next() {
		var r route
		if err := json.Unmarshal(v, &r); err != nil {
			return nil, fmt.Errorf("route %q: %w", k, err)
		}
		if !r.Active || r.Endpoint == "" || r.Endpoint == api.EndpointDisabled {
			continue
		}
		m := api.Member{ID: string(k), Roles: r.Roles}
		if !members.Entitled(&m, rec.Audience, rec.Type) && !members.EntitledPeer(&m, rec.Peers) {
			continue
		}
		e := webhook.Endpoint{Events: r.Events}
		if !e.Wants(rec.Type) {
			continue
		}
		d := webhook.Delivery{
			Member: m.ID, Seq: rec.Seq, PrevSeq: r.Last, Record: rec.ID, Type: rec.Type,
			WebhookID: protocol.DeliveryID(rec.ID, m.ID), EnqueuedAt: at.UTC(),
		}
		if err := putKey(tx, bOutbox, outboxKey(m.ID, rec.Seq), d); err != nil {
			return nil, err
		}
		r.Last = rec.Seq
		updates = append(updates, update{bytes.Clone(k), r})
	}
	// Written after the cursor is done: a bucket must not change under it.
	members := make([]string, len(updates))
	for i, u := range updates {
		if err := putKey(tx, bRoutes, u.key, u.r); err != nil {
			return nil, err
		}
		members[i] = string(u.key)
	}
	return members, nil
}

// putEndpoint writes an endpoint and its route; with drop, its queued
// deliveries go.
func putEndpoint(tx *bolt.Tx, e *webhook.Endpoint, drop bool) error {
	if err := put(tx, bEndpoints, e.Member, e); err != nil {
		return err
	}
	if drop {
		if err := dropQueue(tx, e.Member); err != nil {
			return err
		}
	}
	return reroute(tx, e.Member)
}

// dropQueue deletes a member's queued deliveries, and the records that
// only they still needed.
func dropQueue(tx *bolt.Tx, member string) error {
	b := tx.Bucket(bOutbox)
	floor := feedFloor(tx)
	var seqs []uint64
	var gone []eventRecord // of rows whose event has left the feed
	c := b.Cursor()
	prefix := memberPrefix(member)
	for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
		if len(k) != len(prefix)+8 {
			return fmt.Errorf("outbox key %q is not member, 0, sequence number", k)
		}
		seq := binary.BigEndian.Uint64(k[len(prefix):])
		seqs = append(seqs, seq)
		if seq > floor {
			continue // the feed still holds its record
		}
		var d struct {
			Record string `json:"record"`
		}
		if err := json.Unmarshal(v, &d); err != nil {
			return fmt.Errorf("outbox row %q: %w", k, err)
		}
		gone = append(gone, eventRecord{seq, d.Record})
	}
	for _, seq := range seqs {
		if err := b.Delete(outboxKey(member, seq)); err != nil {
			return err
		}
	}
	return release(tx, gone...)
}

// queuedSeqs returns the event sequence numbers from lo to hi that have a
// delivery queued for some member.
func queuedSeqs(tx *bolt.Tx, lo, hi uint64) (map[uint64]bool, error) {
	out := map[uint64]bool{}
	c := tx.Bucket(bOutbox).Cursor()
	for k, _ := c.First(); k != nil; {
		i := bytes.IndexByte(k, 0)
		if i < 0 || len(k) != i+9 {
			return nil, fmt.Errorf("outbox key %q is not member, 0, sequence number", k)
		}
		prefix := bytes.Clone(k[:i+1])
		for k, _ = c.Seek(append(bytes.Clone(prefix), u64(lo)...)); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
			seq := binary.BigEndian.Uint64(k[len(prefix):])
			if seq > hi {
				break
			}
			out[seq] = true
		}
		// On to the next member: just past every key of this one.
		k, _ = c.Seek(append(prefix[:i:i], 1))
	}
	return out, nil
}

// An eventRecord names the record of an event: the event's sequence
// number and the record's jti.
type eventRecord struct {
	seq uint64
	id  string
}

// release deletes, once their delivery rows are gone, the records of
// events (in sequence order) that nothing needs any more: their event has
// left the feed (see [prune]) and [needed] says nothing else holds them.
func release(tx *bolt.Tx, events ...eventRecord) error {
	floor := feedFloor(tx)
	i := 0
	for i < len(events) && events[i].seq <= floor {
		i++
	}
	if events = events[:i]; len(events) == 0 {
		return nil
	}
	queued, err := queuedSeqs(tx, events[0].seq, events[len(events)-1].seq)
	if err != nil {
		return err
	}
	for _, e := range events {
		rec, err := get[state.Record](tx, bRecords, e.id)
		if errors.Is(err, ErrNotFound) {
			continue
		}
		if err != nil {
			return err
		}
		if needed(tx, queued, e.seq, rec) {
			continue
		}
		if err := tx.Bucket(bRecords).Delete([]byte(e.id)); err != nil {
			return err
		}
	}
	return nil
}

// deliveryConflicts reports whether an outcome no longer applies: its row
// is gone (delivered already, or dropped with its endpoint), or the
// attempt went to another URL than the endpoint's (the member registered a
// new one since), which only a success still records. Otherwise it
// returns the endpoint it read, for [applyDelivery].
func deliveryConflicts(tx *bolt.Tx, u *state.DeliveryUpdate) (conflict bool, e *webhook.Endpoint, err error) {
	d := u.Delivery
	if tx.Bucket(bOutbox).Get(outboxKey(d.Member, d.Seq)) == nil {
		return true, nil, nil
	}
	if e, err = get[webhook.Endpoint](tx, bEndpoints, d.Member); err != nil {
		return false, nil, fmt.Errorf("endpoint of %q: %w", d.Member, err)
	}
	if u.Outcome != state.Delivered && u.Outcome != state.Skipped && stale(e, u.Attempt) {
		return true, nil, nil
	}
	return false, e, nil
}

// stale reports whether attempt a went to another URL than e's.
func stale(e *webhook.Endpoint, a webhook.Attempt) bool { return a.URL != "" && a.URL != e.URL }

// applyDelivery changes the delivery row and endpoint e for an outcome,
// in the transaction in which [deliveryConflicts] found that it applies
// and read e. A success of an attempt made to another URL than the
// endpoint's changes the row only.
func applyDelivery(tx *bolt.Tx, u *state.DeliveryUpdate, e *webhook.Endpoint) error {
	d := u.Delivery
	key := outboxKey(d.Member, d.Seq)
	a := u.Attempt
	status := e.Status
	failed := func() {
		e.Failures++
		e.LastError, e.LastErrorAt = attemptError(a), a.At
	}
	switch u.Outcome {
	case state.Delivered:
		if err := tx.Bucket(bOutbox).Delete(key); err != nil {
			return err
		}
		if err := release(tx, eventRecord{d.Seq, d.Record}); err != nil {
			return err
		}
		if stale(e, a) {
			return nil
		}
		e.Failures, e.NextAttemptAt = 0, time.Time{}
		// Successes of one round are recorded concurrently: keep the latest.
		e.LastDeliveredSeq = max(e.LastDeliveredSeq, d.Seq)
		if a.At.After(e.LastSuccessAt) {
			e.LastSuccessAt = a.At
		}
		if webhook.Verifies(d.Type) && !e.Verified {
			e.Verified = true
			if e.Status == api.EndpointUnverified {
				e.Status, e.Reason = api.EndpointActive, ""
			}
		}
	case state.Skipped:
		if tx.Bucket(bRecords).Get([]byte(d.Record)) != nil {
			return fmt.Errorf("skip delivery of event %d to %q: its record %s is not erased", d.Seq, d.Member, d.Record)
		}
		return tx.Bucket(bOutbox).Delete(key)
	case state.Retrying:
		d.Attempts++
		if err := putKey(tx, bOutbox, key, d); err != nil {
			return err
		}
		failed()
		e.NextAttemptAt = u.Next
	case state.Paused:
		d.Attempts++
		if err := putKey(tx, bOutbox, key, d); err != nil {
			return err
		}
		failed()
		e.Status, e.Reason, e.NextAttemptAt = api.EndpointPaused, u.Reason, time.Time{}
	case state.DeadLettered:
		d.Attempts++
		if err := tx.Bucket(bOutbox).Delete(key); err != nil {
			return err
		}
		if err := putKey(tx, bDead, key, webhook.DeadLetter{Delivery: d, Attempt: a}); err != nil {
			return err
		}
		if err := release(tx, eventRecord{d.Seq, d.Record}); err != nil {
			return err
		}
		e.DeadLetters++
		e.LastError, e.LastErrorAt = attemptError(a), a.At
	case state.Disabled:
		e.Status, e.Reason, e.NextAttemptAt = api.EndpointDisabled, u.Reason, time.Time{}
		e.LastError, e.LastErrorAt = attemptError(a), a.At
		e.UpdatedAt = a.At
		return putEndpoint(tx, e, true)
	default:
		return fmt.Errorf("unknown delivery outcome %q", u.Outcome)
	}
	e.UpdatedAt = a.At
	if e.Status == status {
		// Routing depends on the endpoint's status only: skip recomputing
		// it on the hot path of every delivery.
		return put(tx, bEndpoints, e.Member, e)
	}
	return putEndpoint(tx, e, false)
}

func attemptError(a webhook.Attempt) string {
	switch {
	case a.Error != "" && a.Status != 0:
		return fmt.Sprintf("HTTP %d: %s", a.Status, a.Error)
	case a.Error != "":
		return a.Error
	case a.Status != 0:
		return fmt.Sprintf("HTTP %d", a.Status)
	}
	return ""
}

// The store is the dispatcher's outbox.
var _ webhook.Outbox = (*Store)(nil)

// Endpoint returns a member's endpoint. The error for a member without
// one wraps both [ErrNotFound] and [webhook.ErrNoEndpoint].
func (s *Store) Endpoint(member string) (*webhook.Endpoint, error) {
	e, err := view[webhook.Endpoint](s, bEndpoints, member)
	if errors.Is(err, ErrNotFound) {
		return nil, fmt.Errorf("member %q: %w: %w", member, ErrNotFound, webhook.ErrNoEndpoint)
	}
	return e, err
}

// Endpoints returns every endpoint, ordered by member.
func (s *Store) Endpoints() ([]*webhook.Endpoint, error) {
	var out []*webhook.Endpoint
	err := s.view(func(tx *bolt.Tx) error {
		return tx.Bucket(bEndpoints).ForEach(func(_, v []byte) error {
			e := new(webhook.Endpoint)
			if err := json.Unmarshal(v, e); err != nil {
				return err
			}
			out = append(out, e)
			return nil
		})
	})
	return out, err
}

// Pending returns up to limit queued deliveries of a member, oldest first,
// with the records' bytes.
func (s *Store) Pending(member string, limit int) ([]webhook.Delivery, error) {
	var out []webhook.Delivery
	err := s.view(func(tx *bolt.Tx) error {
		c := tx.Bucket(bOutbox).Cursor()
		prefix := memberPrefix(member)
		for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix) && len(out) < limit; k, v = c.Next() {
			var d webhook.Delivery
			if err := json.Unmarshal(v, &d); err != nil {
				return err
			}
			if rec, err := get[state.Record](tx, bRecords, d.Record); err == nil {
				d.Body, d.Via = []byte(rec.JWS), rec.Via
			} else if !errors.Is(err, ErrNotFound) {
				return err
			}
			out = append(out, d)
		}
		return nil
	})
	return out, err
}

// Backlog returns how many deliveries are queued for a member.
func (s *Store) Backlog(member string) (int, error) {
	n := 0
	err := s.view(func(tx *bolt.Tx) error {
		c := tx.Bucket(bOutbox).Cursor()
		prefix := memberPrefix(member)
		for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
			n++
		}
		return nil
	})
	return n, err
}

// DeadLetters returns up to limit of a member's dead letters, newest first.
func (s *Store) DeadLetters(member string, limit int) ([]webhook.DeadLetter, error) {
	var out []webhook.DeadLetter
	err := s.view(func(tx *bolt.Tx) error {
		c := tx.Bucket(bDead).Cursor()
		prefix := memberPrefix(member)
		end := append(memberPrefix(member)[:len(prefix)-1], 1) // just past the member's keys
		k, _ := c.Seek(end)
		var v []byte
		if k == nil {
			k, v = c.Last()
		} else {
			k, v = c.Prev()
		}
		for ; k != nil && bytes.HasPrefix(k, prefix) && len(out) < limit; k, v = c.Prev() {
			var d webhook.DeadLetter
			if err := json.Unmarshal(v, &d); err != nil {
				return err
			}
			out = append(out, d)
		}
		return nil
	})
	return out, err
}

func (s *Store) applyDelivery(u *state.DeliveryUpdate, action protocol.LogAction, result string, attrs ...protocol.LogAttr) error {
	_, err := s.recordDelivery(u, action, result, attrs...)
	return err
}

func (s *Store) recordDelivery(u *state.DeliveryUpdate, action protocol.LogAction, result string, attrs ...protocol.LogAttr) (*Result, error) {
	return s.Apply(&state.RecordDelivery{
		Head:   state.Head{At: u.Attempt.At, Actor: u.Delivery.Member, Entry: state.Entry{Action: action, Result: result, Attrs: attrs}},
		Update: *u,
	})
}

// Acknowledged records a delivery its member acknowledged (an SSF poll's
// ack), as [Store.Delivered] does, and returns the index of its log
// entry; ok is false if the delivery was no longer queued (acknowledged
// meanwhile), and nothing was recorded.
func (s *Store) Acknowledged(d webhook.Delivery, a webhook.Attempt) (index uint64, ok bool, err error) {
	res, err := s.recordDelivery(&state.DeliveryUpdate{Delivery: d, Attempt: a, Outcome: state.Delivered}, protocol.LogDelivery, "", deliveryAttrs(d, a)...)
	if err != nil || res.Conflict {
		return 0, false, err
	}
	return res.LogIndex, true, nil
}

func deliveryAttrs(d webhook.Delivery, a webhook.Attempt) []protocol.LogAttr {
	return []protocol.LogAttr{
		{Key: "event", Value: strconv.FormatUint(d.Seq, 10)},
		{Key: "attempts", Value: strconv.Itoa(d.Attempts + 1)},
		{Key: "latency_ms", Value: strconv.FormatInt(a.Latency.Milliseconds(), 10)},
	}
}

// Delivered records a successful delivery, with its exchange-log entry.
func (s *Store) Delivered(d webhook.Delivery, a webhook.Attempt) error {
	return s.applyDelivery(&state.DeliveryUpdate{Delivery: d, Attempt: a, Outcome: state.Delivered}, protocol.LogDelivery, "", deliveryAttrs(d, a)...)
}

// Skip drops a delivery whose record was erased. It fails if the record
// is still there.
func (s *Store) Skip(d webhook.Delivery) error {
	return s.applyDelivery(&state.DeliveryUpdate{Delivery: d, Attempt: webhook.Attempt{At: time.Now()}, Outcome: state.Skipped}, "", "")
}

// Retry records a failed attempt and when to try again.
func (s *Store) Retry(d webhook.Delivery, a webhook.Attempt, next time.Time) error {
	return s.applyDelivery(&state.DeliveryUpdate{Delivery: d, Attempt: a, Outcome: state.Retrying, Next: next}, "", "")
}

// Pause records that the retry schedule ran out; the endpoint is paused.
func (s *Store) Pause(d webhook.Delivery, a webhook.Attempt, reason string) error {
	return s.applyDelivery(&state.DeliveryUpdate{Delivery: d, Attempt: a, Outcome: state.Paused, Reason: reason}, protocol.LogEndpointPaused, "", deliveryAttrs(d, a)...)
}

// DeadLetter moves a delivery the receiver refused aside.
func (s *Store) DeadLetter(d webhook.Delivery, a webhook.Attempt) error {
	return s.applyDelivery(&state.DeliveryUpdate{Delivery: d, Attempt: a, Outcome: state.DeadLettered}, protocol.LogDelivery, "rejected:receiver-refused",
		append(deliveryAttrs(d, a), protocol.LogAttr{Key: "status", Value: strconv.Itoa(a.Status)})...)
}

// Disable records a 410: the endpoint is disabled and its queue dropped.
func (s *Store) Disable(d webhook.Delivery, a webhook.Attempt, reason string) error {
	return s.applyDelivery(&state.DeliveryUpdate{Delivery: d, Attempt: a, Outcome: state.Disabled, Reason: reason}, protocol.LogEndpointDisabled, "", deliveryAttrs(d, a)...)
}
