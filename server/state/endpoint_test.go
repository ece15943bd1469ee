package state_test

import (
	"testing"
	"time"

	"github.com/sparr-dev/sparr/federation/webhook"
	"github.com/sparr-dev/sparr/protocol"
	"github.com/sparr-dev/sparr/protocol/api"
	"github.com/sparr-dev/sparr/server/state"
)

// TestEndpointChangeApplyTo: a member's change applies to the endpoint as
// stored, changes only what was asked for, and refuses a stored endpoint
// that is no longer as the change was decided against.
func TestEndpointChangeApplyTo(t *testing.T) {
	at := t0.Add(time.Hour)
	stored := func(status api.EndpointStatus) *webhook.Endpoint {
		return &webhook.Endpoint{Member: "bank-b", URL: "https://a.example/h", Status: status, Verified: status != api.EndpointUnverified,
			Secrets: []webhook.EndpointSecret{{Secret: "whsec_b2xk", CreatedAt: t0}}, Failures: 3, NextAttemptAt: t0.Add(time.Minute),
			LastDeliveredSeq: 41, CreatedAt: t0, UpdatedAt: t0}
	}
	secret := &webhook.EndpointSecret{Secret: "whsec_bmV3", CreatedAt: at}
	for _, tc := range []struct {
		name   string
		ch     state.EndpointChange
		e      *webhook.Endpoint
		ok     bool
		expect func(t *testing.T, e *webhook.Endpoint)
	}{
		{name: "a new endpoint", ch: state.EndpointChange{Op: state.EndpointRegister, Member: "bank-b", URL: "https://b.example/h", Secret: secret}, ok: true,
			expect: func(t *testing.T, e *webhook.Endpoint) {
				if e.Status != api.EndpointUnverified || e.Verified || len(e.Secrets) != 1 || !e.CreatedAt.Equal(at) {
					t.Errorf("got %+v, want a new unverified endpoint with the one secret", e)
				}
			}},
		{name: "new over an active one", ch: state.EndpointChange{Op: state.EndpointRegister, Member: "bank-b", URL: "https://b.example/h", Secret: secret}, e: stored(api.EndpointActive)},
		{name: "new over a disabled one", ch: state.EndpointChange{Op: state.EndpointRegister, Member: "bank-b", URL: "https://b.example/h", Secret: secret}, e: stored(api.EndpointDisabled), ok: true,
			expect: func(t *testing.T, e *webhook.Endpoint) {
				if e.LastDeliveredSeq != 0 || e.Failures != 0 {
					t.Errorf("got %+v, want a fresh endpoint", e)
				}
			}},
		{name: "same URL, new events", ch: state.EndpointChange{Op: state.EndpointRegister, URL: "https://a.example/h", Events: []protocol.EventType{protocol.EventFlagPlaced}},
			e: stored(api.EndpointPaused), ok: true, expect: func(t *testing.T, e *webhook.Endpoint) {
				if e.Status != api.EndpointPaused || e.Failures != 3 || len(e.Events) != 1 {
					t.Errorf("got %+v, want the events changed and the pause kept", e)
				}
			}},
		{name: "new URL, verified again", ch: state.EndpointChange{Op: state.EndpointRegister, URL: "https://b.example/h", Verify: true}, e: stored(api.EndpointPaused), ok: true,
			expect: func(t *testing.T, e *webhook.Endpoint) {
				if e.Status != api.EndpointUnverified || e.Verified || e.Failures != 0 || !e.NextAttemptAt.IsZero() || e.LastDeliveredSeq != 41 {
					t.Errorf("got %+v, want it unverified, failures reset, its history kept", e)
				}
			}},
		{name: "decided as a new URL, but it is the same", ch: state.EndpointChange{Op: state.EndpointRegister, URL: "https://a.example/h", Verify: true}, e: stored(api.EndpointActive)},
		{name: "change of none", ch: state.EndpointChange{Op: state.EndpointRegister, URL: "https://a.example/h"}},
		{name: "rotate", ch: state.EndpointChange{Op: state.EndpointRotate, Secret: secret, Until: at.Add(24 * time.Hour)}, e: stored(api.EndpointActive), ok: true,
			expect: func(t *testing.T, e *webhook.Endpoint) {
				if len(e.Secrets) != 2 || e.Secrets[0].Secret != secret.Secret || !e.Secrets[1].ExpiresAt.Equal(at.Add(24*time.Hour)) {
					t.Errorf("got secrets %+v, want the new one first and the old one signing 24 h more", e.Secrets)
				}
			}},
		{name: "resume a paused one", ch: state.EndpointChange{Op: state.EndpointResume}, e: stored(api.EndpointPaused), ok: true,
			expect: func(t *testing.T, e *webhook.Endpoint) {
				if e.Status != api.EndpointActive || e.Failures != 0 || !e.NextAttemptAt.IsZero() {
					t.Errorf("got %+v, want it active, failures reset", e)
				}
			}},
		{name: "resume one never verified", ch: state.EndpointChange{Op: state.EndpointResume}, e: func() *webhook.Endpoint {
			e := stored(api.EndpointPaused)
			e.Verified = false
			return e
		}(), ok: true, expect: func(t *testing.T, e *webhook.Endpoint) {
			if e.Status != api.EndpointUnverified {
				t.Errorf("got %s, want unverified", e.Status)
			}
		}},
		{name: "resume an active one", ch: state.EndpointChange{Op: state.EndpointResume}, e: stored(api.EndpointActive)},
		{name: "remove", ch: state.EndpointChange{Op: state.EndpointRemove, Reason: "removed by the member"}, e: stored(api.EndpointActive), ok: true,
			expect: func(t *testing.T, e *webhook.Endpoint) {
				if e.Status != api.EndpointDisabled || e.Reason != "removed by the member" {
					t.Errorf("got %+v, want it disabled with the reason", e)
				}
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var before webhook.Endpoint
			if tc.e != nil {
				before = *tc.e
			}
			got, ok, err := tc.ch.ApplyTo(tc.e, at)
			if err != nil {
				t.Fatal(err)
			}
			if ok != tc.ok {
				t.Fatalf("got ok %t, want %t", ok, tc.ok)
			}
			if tc.e != nil && (tc.e.Status != before.Status || tc.e.URL != before.URL || len(tc.e.Secrets) != len(before.Secrets)) {
				t.Error("ApplyTo changed the stored endpoint it was given")
			}
			if ok {
				if !got.UpdatedAt.Equal(at) {
					t.Errorf("got updated at %s, want %s", got.UpdatedAt, at)
				}
				tc.expect(t, got)
			}
		})
	}
}
