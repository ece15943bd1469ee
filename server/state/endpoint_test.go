package state_test

import (
	"fmt"
	"strings"
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
			Secrets: []webhook.EndpointSecret{{Secret: oldSecret, CreatedAt: t0}}, Failures: 3, NextAttemptAt: t0.Add(time.Minute),
			LastDeliveredSeq: 41, CreatedAt: t0, UpdatedAt: t0}
	}
	secret := &webhook.EndpointSecret{Secret: newSecret(t), CreatedAt: at}
	// overlapping is stored in the overlap of an earlier rotation: its
	// newest secret signs, and the one it replaced until two hours on.
	current := newSecret(t)
	overlapping := func() *webhook.Endpoint {
		e := stored(api.EndpointActive)
		e.Secrets = []webhook.EndpointSecret{{Secret: current, CreatedAt: t0.Add(30 * time.Minute)}, {Secret: oldSecret, CreatedAt: t0, ExpiresAt: at.Add(2 * time.Hour)}}
		return e
	}
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
					t.Errorf("got secrets %s, want the new one first and the old one signing 24 h more", secretsText(e.Secrets))
				}
			}},
		{name: "rotate during the overlap", ch: state.EndpointChange{Op: state.EndpointRotate, Secret: secret, Until: at.Add(24 * time.Hour)}, e: overlapping(), ok: true,
			expect: func(t *testing.T, e *webhook.Endpoint) {
				if len(e.Secrets) != 2 || e.Secrets[0].Secret != secret.Secret || e.Secrets[1].Secret != current || !e.Secrets[1].ExpiresAt.Equal(at.Add(24*time.Hour)) {
					t.Errorf("got secrets %s, want the new one, then the one it replaced signing 24 h more; the oldest gone", secretsText(e.Secrets))
				}
			}},
		{name: "rotate away a secret the hub cannot sign with", ch: state.EndpointChange{Op: state.EndpointRotate, Secret: secret, Until: at.Add(24 * time.Hour)}, e: func() *webhook.Endpoint {
			e := stored(api.EndpointActive)
			e.Secrets[0].Secret = "whsec_!!"
			return e
		}(), ok: true, expect: func(t *testing.T, e *webhook.Endpoint) {
			if len(e.Secrets) != 1 || e.Secrets[0].Secret != secret.Secret {
				t.Errorf("got secrets %s, want the new one only", secretsText(e.Secrets))
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

// oldSecret is a stored endpoint's secret.
const oldSecret = "whsec_MDEyMzQ1Njc4OWFiY2RlZmdoaWprbG1ub3BxcnN0dXY="

// secretsText describes secrets by when they were made and end, without
// their values.
func secretsText(secrets []webhook.EndpointSecret) string {
	var b strings.Builder
	for _, s := range secrets {
		fmt.Fprintf(&b, "[made %s, ends %s]", s.CreatedAt.Format(time.TimeOnly), s.ExpiresAt.Format(time.DateTime))
	}
	return b.String()
}

func newSecret(t *testing.T) string {
	t.Helper()
	ws, err := protocol.GenerateWebhookSecret(nil)
	if err != nil {
		t.Fatal(err)
	}
	return ws.Encode()
}

// TestRotationsKeepTwoSecrets: however often a member rotates within the
// overlap, its endpoint holds the newest secret and the one it replaced,
// and an endpoint stored with more (by an earlier version) is brought
// down to those two by its next rotation.
func TestRotationsKeepTwoSecrets(t *testing.T) {
	at := t0
	e := &webhook.Endpoint{Member: "bank-b", URL: "https://b.example/h", Status: api.EndpointActive, Verified: true,
		Secrets: []webhook.EndpointSecret{{Secret: newSecret(t), CreatedAt: at}}, CreatedAt: at, UpdatedAt: at}
	var previous string
	for i := range 50 {
		at = at.Add(time.Minute)
		previous = e.Secrets[0].Secret
		ch := state.EndpointChange{Op: state.EndpointRotate, Member: "bank-b", Secret: &webhook.EndpointSecret{Secret: newSecret(t), CreatedAt: at}, Until: at.Add(24 * time.Hour)}
		n, ok, err := ch.ApplyTo(e, at)
		if err != nil || !ok {
			t.Fatalf("rotation %d: got ok %t, %v", i+1, ok, err)
		}
		if len(n.Secrets) != 2 || n.Secrets[0].Secret != ch.Secret.Secret || n.Secrets[1].Secret != previous {
			t.Fatalf("after rotation %d: got %d secrets, want 2: the new one and the one it replaced", i+1, len(n.Secrets))
		}
		e = n
	}
	if got := e.Live(at); len(got) != 2 {
		t.Errorf("got %d live secrets, want 2", len(got))
	}

	// An endpoint stored by an earlier version, with 30 secrets in their
	// overlap: only the newest two sign, and a rotation keeps the newest.
	legacy := &webhook.Endpoint{Member: "bank-b", URL: "https://b.example/h", Status: api.EndpointActive, Verified: true, CreatedAt: t0, UpdatedAt: t0}
	for i := range 30 {
		s := webhook.EndpointSecret{Secret: newSecret(t), CreatedAt: at.Add(-time.Duration(i) * time.Minute)}
		if i > 0 {
			s.ExpiresAt = at.Add(time.Hour)
		}
		legacy.Secrets = append(legacy.Secrets, s)
	}
	if got := legacy.Live(at); len(got) != webhook.MaxSecrets || got[0].Secret != legacy.Secrets[0].Secret {
		t.Errorf("got %d live secrets of 30 stored, want the newest %d", len(got), webhook.MaxSecrets)
	}
	ch := state.EndpointChange{Op: state.EndpointRotate, Member: "bank-b", Secret: &webhook.EndpointSecret{Secret: newSecret(t), CreatedAt: at}, Until: at.Add(24 * time.Hour)}
	n, ok, err := ch.ApplyTo(legacy, at)
	if err != nil || !ok || len(n.Secrets) != 2 || n.Secrets[1].Secret != legacy.Secrets[0].Secret {
		t.Errorf("rotating an endpoint with 30 secrets: got %d secrets (ok %t, %v), want the new one and the newest before it", len(n.Secrets), ok, err)
	}
}
