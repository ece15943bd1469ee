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

	"github.com/sparr-dev/sparr/federation"
	"github.com/sparr-dev/sparr/protocol"
)

// The transactional outbox. Every record applied writes, in the same
// transaction, one delivery row per member whose endpoint queues and who is
// entitled to and subscribed to it. A row is deleted only once delivered (or
// dead-lettered, or dropped with a disabled endpoint), so a crash or restart
// loses nothing: the dispatcher resumes from the rows.

// A route is what enqueueing needs to know of a member, kept compact in
// its own bucket so that fanning an event out to hundreds of members reads
// one small value each: the member's roles and status, its endpoint's
// status and subscription, and the last event queued for it.
type route struct {
	Roles    []federation.Role         `json:"r,omitempty"`
	Active   bool                      `json:"a"`           // the member is active
	Endpoint federation.EndpointStatus `json:"s,omitempty"` // "" without an endpoint
	Events   []protocol.EventType      `json:"e,omitempty"`
	Last     uint64                    `json:"l,omitempty"`
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
	m, err := get[federation.Member](tx, bMembers, member)
	if err != nil && !errors.Is(err, ErrNotFound) {
		return err
	}
	r.Roles, r.Active = nil, false
	if m != nil {
		r.Roles, r.Active = m.Roles, m.Active()
	}
	e, err := get[federation.Endpoint](tx, bEndpoints, member)
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
func enqueue(tx *bolt.Tx, rec *Record, at time.Time) ([]string, error) {
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
		if !r.Active || r.Endpoint == "" || r.Endpoint == federation.EndpointDisabled {
			continue
		}
		m := federation.Member{ID: string(k), Roles: r.Roles}
		if !federation.Entitled(&m, rec.Audience, rec.Type) {
			continue
		}
		e := federation.Endpoint{Events: r.Events}
		if !e.Wants(rec.Type) {
			continue
		}
		d := federation.Delivery{
			Member: m.ID, Seq: rec.Seq, PrevSeq: r.Last, Record: rec.ID, Type: rec.Type,
			WebhookID: rec.ID + "_" + m.ID, EnqueuedAt: at.UTC(),
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
func putEndpoint(tx *bolt.Tx, e *federation.Endpoint, drop bool) error {
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

func dropQueue(tx *bolt.Tx, member string) error {
	b := tx.Bucket(bOutbox)
	var keys [][]byte
	c := b.Cursor()
	prefix := memberPrefix(member)
	for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
		keys = append(keys, bytes.Clone(k))
	}
	for _, k := range keys {
		if err := b.Delete(k); err != nil {
			return err
		}
	}
	return nil
}

// A DeliveryOutcome is what became of one delivery attempt.
type DeliveryOutcome string

// The delivery outcomes.
const (
	Delivered    DeliveryOutcome = "delivered"
	Skipped      DeliveryOutcome = "skipped"
	Retrying     DeliveryOutcome = "retrying"
	Paused       DeliveryOutcome = "paused"
	DeadLettered DeliveryOutcome = "dead-lettered"
	Disabled     DeliveryOutcome = "disabled"
)

// A DeliveryUpdate records a delivery attempt's outcome.
type DeliveryUpdate struct {
	Delivery federation.Delivery
	Attempt  federation.Attempt
	Outcome  DeliveryOutcome
	Next     time.Time // Retrying: when to try the endpoint again
	Reason   string    // Paused, Disabled
}

// applyDelivery changes the delivery row and the endpoint for an outcome.
func applyDelivery(tx *bolt.Tx, u *DeliveryUpdate) error {
	d := u.Delivery
	key := outboxKey(d.Member, d.Seq)
	e, err := get[federation.Endpoint](tx, bEndpoints, d.Member)
	if err != nil {
		return fmt.Errorf("endpoint of %q: %w", d.Member, err)
	}
	a := u.Attempt
	status := e.Status
	failed := func() {
		e.Failures++
		e.LastError, e.LastErrorAt = attemptError(a), a.At
	}
	switch u.Outcome {
	case Delivered:
		if err := tx.Bucket(bOutbox).Delete(key); err != nil {
			return err
		}
		e.Failures, e.NextAttemptAt = 0, time.Time{}
		// Successes of one round are recorded concurrently: keep the latest.
		e.LastDeliveredSeq = max(e.LastDeliveredSeq, d.Seq)
		if a.At.After(e.LastSuccessAt) {
			e.LastSuccessAt = a.At
		}
		if d.Type == protocol.EventVerification && !e.Verified {
			e.Verified = true
			if e.Status == federation.EndpointUnverified {
				e.Status, e.Reason = federation.EndpointActive, ""
			}
		}
	case Skipped:
		return tx.Bucket(bOutbox).Delete(key)
	case Retrying:
		d.Attempts++
		if err := putKey(tx, bOutbox, key, d); err != nil {
			return err
		}
		failed()
		e.NextAttemptAt = u.Next
	case Paused:
		d.Attempts++
		if err := putKey(tx, bOutbox, key, d); err != nil {
			return err
		}
		failed()
		e.Status, e.Reason, e.NextAttemptAt = federation.EndpointPaused, u.Reason, time.Time{}
	case DeadLettered:
		d.Attempts++
		if err := tx.Bucket(bOutbox).Delete(key); err != nil {
			return err
		}
		if err := putKey(tx, bDead, key, federation.DeadLetter{Delivery: d, Attempt: a}); err != nil {
			return err
		}
		e.DeadLetters++
		e.LastError, e.LastErrorAt = attemptError(a), a.At
	case Disabled:
		e.Status, e.Reason, e.NextAttemptAt = federation.EndpointDisabled, u.Reason, time.Time{}
		e.LastError, e.LastErrorAt = attemptError(a), a.At
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

func attemptError(a federation.Attempt) string {
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
var _ federation.Outbox = (*Store)(nil)

// Endpoint returns a member's endpoint.
func (s *Store) Endpoint(member string) (*federation.Endpoint, error) {
	return view[federation.Endpoint](s, bEndpoints, member)
}

// Endpoints returns every endpoint, ordered by member.
func (s *Store) Endpoints() ([]*federation.Endpoint, error) {
	var out []*federation.Endpoint
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bEndpoints).ForEach(func(_, v []byte) error {
			e := new(federation.Endpoint)
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
func (s *Store) Pending(member string, limit int) ([]federation.Delivery, error) {
	var out []federation.Delivery
	err := s.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bOutbox).Cursor()
		prefix := memberPrefix(member)
		for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix) && len(out) < limit; k, v = c.Next() {
			var d federation.Delivery
			if err := json.Unmarshal(v, &d); err != nil {
				return err
			}
			if rec, err := get[Record](tx, bRecords, d.Record); err == nil {
				d.Body = []byte(rec.JWS)
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
	err := s.db.View(func(tx *bolt.Tx) error {
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
func (s *Store) DeadLetters(member string, limit int) ([]federation.DeadLetter, error) {
	var out []federation.DeadLetter
	err := s.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bDead).Cursor()
		prefix := memberPrefix(member)
		end := append(memberPrefix(member)[:len(prefix)-1], 1) // just past the member's keys
		k, v := c.Seek(end)
		if k == nil {
			k, v = c.Last()
		} else {
			k, v = c.Prev()
		}
		for ; k != nil && bytes.HasPrefix(k, prefix) && len(out) < limit; k, v = c.Prev() {
			var d federation.DeadLetter
			if err := json.Unmarshal(v, &d); err != nil {
				return err
			}
			out = append(out, d)
		}
		return nil
	})
	return out, err
}

func (s *Store) applyDelivery(u *DeliveryUpdate, action, result string, attrs ...protocol.LogAttr) error {
	_, err := s.Apply(&Command{At: u.Attempt.At, Actor: u.Delivery.Member, Action: action, Result: result, Attrs: attrs, Delivery: u})
	return err
}

func deliveryAttrs(d federation.Delivery, a federation.Attempt) []protocol.LogAttr {
	return []protocol.LogAttr{
		{Key: "event", Value: strconv.FormatUint(d.Seq, 10)},
		{Key: "attempts", Value: strconv.Itoa(d.Attempts + 1)},
		{Key: "latency_ms", Value: strconv.FormatInt(a.Latency.Milliseconds(), 10)},
	}
}

// Delivered records a successful delivery, with its exchange-log entry.
func (s *Store) Delivered(d federation.Delivery, a federation.Attempt) error {
	return s.applyDelivery(&DeliveryUpdate{Delivery: d, Attempt: a, Outcome: Delivered}, "delivery", "", deliveryAttrs(d, a)...)
}

// Skip drops a delivery whose record was erased.
func (s *Store) Skip(d federation.Delivery) error {
	return s.applyDelivery(&DeliveryUpdate{Delivery: d, Attempt: federation.Attempt{At: time.Now()}, Outcome: Skipped}, "", "")
}

// Retry records a failed attempt and when to try again.
func (s *Store) Retry(d federation.Delivery, a federation.Attempt, next time.Time) error {
	return s.applyDelivery(&DeliveryUpdate{Delivery: d, Attempt: a, Outcome: Retrying, Next: next}, "", "")
}

// Pause records that the retry schedule ran out; the endpoint is paused.
func (s *Store) Pause(d federation.Delivery, a federation.Attempt, reason string) error {
	return s.applyDelivery(&DeliveryUpdate{Delivery: d, Attempt: a, Outcome: Paused, Reason: reason}, "endpoint-paused", "", deliveryAttrs(d, a)...)
}

// DeadLetter moves a delivery the receiver refused aside.
func (s *Store) DeadLetter(d federation.Delivery, a federation.Attempt) error {
	return s.applyDelivery(&DeliveryUpdate{Delivery: d, Attempt: a, Outcome: DeadLettered}, "delivery", "rejected:receiver-refused",
		append(deliveryAttrs(d, a), protocol.LogAttr{Key: "status", Value: strconv.Itoa(a.Status)})...)
}

// Disable records a 410: the endpoint is disabled and its queue dropped.
func (s *Store) Disable(d federation.Delivery, a federation.Attempt, reason string) error {
	return s.applyDelivery(&DeliveryUpdate{Delivery: d, Attempt: a, Outcome: Disabled, Reason: reason}, "endpoint-disabled", "", deliveryAttrs(d, a)...)
}
