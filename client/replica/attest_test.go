package replica_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/sparr-dev/sparr/protocol"
	"github.com/sparr-dev/sparr/protocol/api"
	"github.com/sparr-dev/sparr/server/hubtest"
)

// TestReplicaAttestsErasures: after a lift, every member's replica
// deletes the flag and attests it on its own; the origin member sees
// "deleted at 3 of 3". A replica whose attestation the hub could not take
// when it deleted (its member's daily storage quota was spent) keeps the
// attestation in its file and sends it at a later sync, even after a
// restart.
func TestReplicaAttestsErasures(t *testing.T) {
	ctx := context.Background()
	hub := hubtest.Start(t, hubtest.Options{Delivery: fast})
	a := origin{newBank(t, hub, "bank-a", api.RoleFlag, api.RoleCheck), t, hub}
	b := newBank(t, hub, "bank-b", api.RoleCheck)
	c := newBank(t, hub, "bank-c", api.RoleCheck)
	toks, err := a.client.Tokenize(ctx, protocol.TypePersonalNumber, "190905271474")
	if err != nil {
		t.Fatal(err)
	}
	placed := a.place(toks[0], time.Time{})
	for _, m := range []*bank{a.bank, b, c} {
		m.sync(t)
	}
	lifted := a.do(a.client.LiftFlag(ctx, placed.Flag.ID))

	// bank-c's quota of stored bytes is spent while it syncs: it deletes,
	// and keeps the attestation to send.
	a.sync(t)
	b.sync(t)
	mustPending(t, a.bank, 0)
	mustPending(t, b, 0)
	st, err := a.client.AttestationStatus(ctx, lifted.Record.ID)
	if err != nil {
		t.Fatal(err)
	}
	if st.Expected != 3 || st.Attested != 2 || !st.Self {
		t.Errorf("got %+v, want 2 of 3 attested, bank-a among them", st)
	}
	mustStatus(t, hub.Operator.JSON(t, http.MethodPatch, "/v1/admin/members/bank-c", map[string]any{"quotas": map[string]any{"stored_bytes_per_day": 1}}), http.StatusOK)
	c.sync(t)
	if adv := c.rep.Lookup(toks[0]); adv.Flag != nil {
		t.Errorf("bank-c still holds the lifted flag: %+v", adv.Flag)
	}
	mustPending(t, c, 1)
	mustStatus(t, hub.Operator.JSON(t, http.MethodPatch, "/v1/admin/members/bank-c", map[string]any{"quotas": map[string]any{"stored_bytes_per_day": 0}}), http.StatusOK)
	c.reopen(t)
	mustPending(t, c, 1)
	c.sync(t)
	mustPending(t, c, 0)
	st, err = a.client.AttestationStatus(ctx, lifted.Record.ID)
	if err != nil {
		t.Fatal(err)
	}
	if st.Expected != 3 || st.Attested != 3 {
		t.Errorf("got %+v, want deleted at 3 of 3", st)
	}
}

func mustPending(t *testing.T, b *bank, want int) {
	t.Helper()
	n, err := b.rep.PendingAttestations()
	if err != nil {
		t.Fatal(err)
	}
	if n != want {
		t.Errorf("%s: got %d erasures waiting to be attested, want %d", b.id, n, want)
	}
}

func mustStatus(t *testing.T, resp *hubtest.Response, want int) {
	t.Helper()
	if resp.Status != want {
		t.Fatalf("got status %d, want %d: %s", resp.Status, want, resp.Body)
	}
}
