package consent

import (
	"errors"
	"fmt"
	"time"

	"github.com/sparr-dev/sparr/protocol"
)

// ErrState is returned, wrapped, by [Record.Withdraw] and [Record.Expire]
// for a record whose state does not allow the change: consent that has
// already ended cannot end again.
var ErrState = errors.New("consent state does not allow this")

// A State is where a consent is in its life.
type State string

// The states. A record starts active and ends, once, either withdrawn by
// the consumer or expired.
const (
	StateActive    State = "active"
	StateWithdrawn State = "withdrawn"
	StateExpired   State = "expired"
)

// A Record is a consent as the hub keeps it: the consent, the flag it
// supports, and its state. The hub keeps the record while the flag lives and
// deletes it once consent has ended.
type Record struct {
	Consent    protocol.Consent `json:"consent"`
	FlagID     string           `json:"flag_id"`
	State      State            `json:"state"`
	RecordedAt time.Time        `json:"recorded_at"`
	// EndedAt is when consent was withdrawn or expired; zero while active.
	EndedAt time.Time `json:"ended_at,omitzero"`
}

// NewRecord returns an active record of consent c for flag flagID, recorded
// at the given time. Validate c with [Policy.Validate] first.
func NewRecord(c protocol.Consent, flagID string, at time.Time) *Record {
	return &Record{Consent: c, FlagID: flagID, State: StateActive, RecordedAt: at}
}

// Withdraw records that the consumer withdrew consent at the given time,
// which is what lifting the flag means. The record must be active and its
// consent not yet lapsed; otherwise the error wraps [ErrState].
func (r *Record) Withdraw(at time.Time) error {
	if r.State != StateActive {
		return fmt.Errorf("withdraw consent %q: it is already %s: %w", r.Consent.ID, r.State, ErrState)
	}
	if !at.Before(r.Consent.ExpiresAt.Time()) {
		return fmt.Errorf("withdraw consent %q: it lapsed at %s, so it can only be expired: %w", r.Consent.ID, r.Consent.ExpiresAt, ErrState)
	}
	r.State, r.EndedAt = StateWithdrawn, at
	return nil
}

// Expire records that consent ended at the given time without being
// withdrawn: it lapsed, or the flag it supports expired. The record must be
// active; otherwise the error wraps [ErrState].
func (r *Record) Expire(at time.Time) error {
	if r.State != StateActive {
		return fmt.Errorf("expire consent %q: it is already %s: %w", r.Consent.ID, r.State, ErrState)
	}
	r.State, r.EndedAt = StateExpired, at
	return nil
}

// StateAt returns the record's state at t. A record that was withdrawn or
// expired is in that state from EndedAt on; before that, and for a record
// still marked active, consent is active until Consent.ExpiresAt and
// expired from then on.
func (r *Record) StateAt(t time.Time) State {
	if r.State != StateActive && (r.EndedAt.IsZero() || !t.Before(r.EndedAt)) {
		return r.State
	}
	if !t.Before(r.Consent.ExpiresAt.Time()) {
		return StateExpired
	}
	return StateActive
}
