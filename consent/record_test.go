package consent_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/sparr-dev/sparr/consent"
)

func newRecord() *consent.Record {
	return consent.NewRecord(*validConsent(), "flag-0001", now)
}

func TestNewRecord(t *testing.T) {
	r := newRecord()
	if r.State != consent.StateActive {
		t.Errorf("State: got %q, want %q", r.State, consent.StateActive)
	}
	if !r.RecordedAt.Equal(now) {
		t.Errorf("RecordedAt: got %s, want %s", r.RecordedAt, now)
	}
	if !r.EndedAt.IsZero() {
		t.Errorf("EndedAt: got %s, want zero", r.EndedAt)
	}
	if r.FlagID != "flag-0001" || r.Consent.ID != validConsent().ID {
		t.Errorf("got flag %q, consent %q; want flag-0001, %q", r.FlagID, r.Consent.ID, validConsent().ID)
	}
}

func TestTransitions(t *testing.T) {
	expiry := validConsent().ExpiresAt.Time()
	withdrawn := func(r *consent.Record) { must(t, r.Withdraw(now.Add(time.Hour))) }
	expired := func(r *consent.Record) { must(t, r.Expire(now.Add(time.Hour))) }
	tests := []struct {
		name      string
		before    func(r *consent.Record)
		withdraw  bool // Withdraw, else Expire
		at        time.Time
		wantErr   bool
		wantState consent.State
	}{
		{name: "active, withdraw", withdraw: true, at: now.Add(2 * time.Hour), wantState: consent.StateWithdrawn},
		{name: "active, withdraw a second before it lapses", withdraw: true, at: expiry.Add(-time.Second), wantState: consent.StateWithdrawn},
		{name: "active, withdraw as it lapses", withdraw: true, at: expiry, wantErr: true, wantState: consent.StateActive},
		{name: "active, withdraw after it lapsed", withdraw: true, at: expiry.Add(time.Hour), wantErr: true, wantState: consent.StateActive},
		{name: "active, expire when it lapses", at: expiry, wantState: consent.StateExpired},
		{name: "active, expire early with its flag", at: now.Add(2 * time.Hour), wantState: consent.StateExpired},
		{name: "withdrawn, withdraw", before: withdrawn, withdraw: true, at: now.Add(2 * time.Hour), wantErr: true, wantState: consent.StateWithdrawn},
		{name: "withdrawn, expire", before: withdrawn, at: expiry, wantErr: true, wantState: consent.StateWithdrawn},
		{name: "expired, withdraw", before: expired, withdraw: true, at: now.Add(2 * time.Hour), wantErr: true, wantState: consent.StateExpired},
		{name: "expired, expire", before: expired, at: expiry, wantErr: true, wantState: consent.StateExpired},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := newRecord()
			if tc.before != nil {
				tc.before(r)
			}
			endedBefore := r.EndedAt
			var err error
			if tc.withdraw {
				err = r.Withdraw(tc.at)
			} else {
				err = r.Expire(tc.at)
			}
			switch {
			case tc.wantErr && !errors.Is(err, consent.ErrState):
				t.Fatalf("got %v, want an error wrapping ErrState", err)
			case !tc.wantErr && err != nil:
				t.Fatalf("got %v, want no error", err)
			}
			if r.State != tc.wantState {
				t.Errorf("State: got %q, want %q", r.State, tc.wantState)
			}
			wantEnded := endedBefore
			if !tc.wantErr {
				wantEnded = tc.at
			}
			if !r.EndedAt.Equal(wantEnded) {
				t.Errorf("EndedAt: got %s, want %s", r.EndedAt, wantEnded)
			}
			if err != nil {
				checkNoSecrets(t, err.Error(), &r.Consent)
				if errors.Is(err, consent.ErrInvalid) {
					t.Errorf("errors.Is(%v, ErrInvalid) = true, want false", err)
				}
			}
		})
	}
}

func TestStateAt(t *testing.T) {
	expiry := validConsent().ExpiresAt.Time()
	ended := now.Add(10 * time.Hour)
	active := newRecord()
	withdrawn := newRecord()
	must(t, withdrawn.Withdraw(ended))
	expiredEarly := newRecord()
	must(t, expiredEarly.Expire(ended))
	expiredLate := newRecord()
	must(t, expiredLate.Expire(expiry.Add(time.Hour)))

	tests := []struct {
		name string
		r    *consent.Record
		at   time.Time
		want consent.State
	}{
		{"active, now", active, now, consent.StateActive},
		{"active, a second before expiry", active, expiry.Add(-time.Second), consent.StateActive},
		{"active, at expiry", active, expiry, consent.StateExpired},
		{"active, after expiry", active, expiry.Add(time.Hour), consent.StateExpired},
		{"withdrawn, before it was", withdrawn, ended.Add(-time.Second), consent.StateActive},
		{"withdrawn, when it was", withdrawn, ended, consent.StateWithdrawn},
		{"withdrawn, after consent would have lapsed", withdrawn, expiry.Add(time.Hour), consent.StateWithdrawn},
		{"expired early, before", expiredEarly, ended.Add(-time.Second), consent.StateActive},
		{"expired early, after", expiredEarly, ended.Add(time.Second), consent.StateExpired},
		{"expired late, between lapse and marking", expiredLate, expiry.Add(time.Minute), consent.StateExpired},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.r.StateAt(tc.at); got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func TestRecordJSON(t *testing.T) {
	r := newRecord()
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b), "ended_at") {
		t.Errorf("active record %s: got ended_at, want it omitted", b)
	}
	for _, want := range []string{`"flag_id":"flag-0001"`, `"state":"active"`, `"recorded_at":"2026-11-21T12:00:00Z"`, `"consent":{"id":`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("got %s, want it to contain %s", b, want)
		}
	}

	must(t, r.Withdraw(now.Add(time.Hour)))
	b, err = json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	var back consent.Record
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if back.State != consent.StateWithdrawn || !back.EndedAt.Equal(r.EndedAt) || back.Consent != r.Consent || back.FlagID != r.FlagID {
		t.Errorf("round trip: got %+v, want %+v", back, *r)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
