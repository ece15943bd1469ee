package replica_test

import (
	"context"
	"testing"
	"time"

	"github.com/sparr-dev/sparr/client"
	"github.com/sparr-dev/sparr/protocol"
	"github.com/sparr-dev/sparr/protocol/api"
	"github.com/sparr-dev/sparr/server/decide"
	"github.com/sparr-dev/sparr/server/hubtest"
)

// TestPayeeInReplica: a payee record reaches a replica that bootstraps
// after it (by the snapshot) and one that follows the feed; both warn
// with the latest version, keep it across a restart, and answer as the
// hub's check does.
func TestPayeeInReplica(t *testing.T) {
	hub := hubtest.Start(t, hubtest.Options{Delivery: fast})
	a := newBank(t, hub, "bank-a", api.RoleCheck)
	b := newBank(t, hub, "bank-b", api.RoleCheck)
	ctx := context.Background()
	toks, err := a.client.Tokenize(ctx, protocol.TypeSwish, "123 456 78 90")
	if err != nil {
		t.Fatal(err)
	}
	payee := toks[0]
	report := func(c *client.Client, customers int) {
		t.Helper()
		now := hub.Now()
		if _, err := c.ReportPayee(ctx, client.ReportPayeeRequest{Payee: payee, Customers: customers, Category: protocol.PayeeInvestment,
			FirstSeen: now.Add(-time.Hour), LastSeen: now}); err != nil {
			t.Fatal(err)
		}
	}
	report(a.client, 2)
	a.sync(t) // bootstraps: the snapshot holds the record
	if got := a.rep.Check(api.PurposePayment, payee); got.Advice != api.AdviceWarn || got.Payee == nil || got.Payee.Event.Customers != 2 {
		t.Fatalf("after the snapshot: got %s, payee %+v, want warn with 2 customers", got, got.Payee)
	}
	b.sync(t)
	report(b.client, 3)
	for _, r := range []*bank{a, b} {
		r.sync(t)
		got := r.rep.Lookup(payee)
		if got.Advice != api.AdviceWarn || got.Payee.Event.Customers != 5 || len(got.Payee.Event.Reports) != 2 {
			t.Errorf("%s: got %s, payee %+v, want warn with 5 customers of 2 members", r.id, got, got.Payee)
		}
		r.reopen(t)
		if got := r.rep.Lookup(payee); got.Payee == nil || got.Payee.Event.Version != 2 {
			t.Errorf("%s after a restart: got payee %+v, want version 2", r.id, got.Payee)
		}
		r.converged(t, []protocol.Token{payee})
	}
}

// TestPayeeExpiryInReplica: a payee record the hub's jobs expire leaves a
// replica that follows the feed, and stays gone across a restart.
func TestPayeeExpiryInReplica(t *testing.T) {
	clock := hubtest.NewClock(time.Now())
	hub := hubtest.Start(t, hubtest.Options{Clock: clock, Delivery: fast,
		Policy: decide.Policy{PayeeRetention: 30 * 24 * time.Hour, FeedRetention: 90 * 24 * time.Hour}})
	a := newBank(t, hub, "bank-a", api.RoleCheck)
	ctx := context.Background()
	toks, err := a.client.Tokenize(ctx, protocol.TypeSwish, "123 456 78 90")
	if err != nil {
		t.Fatal(err)
	}
	payee := toks[0]
	now := hub.Now()
	if _, err := a.client.ReportPayee(ctx, client.ReportPayeeRequest{Payee: payee, Customers: 2, Category: protocol.PayeeInvestment,
		FirstSeen: now.Add(-time.Hour), LastSeen: now}); err != nil {
		t.Fatal(err)
	}
	a.sync(t)
	if st := a.rep.Stats(); st.Payees != 1 {
		t.Fatalf("got %d payee records held, want 1", st.Payees)
	}
	clock.Advance(31 * 24 * time.Hour)
	if err := hub.RunJobs(); err != nil {
		t.Fatal(err)
	}
	a.sync(t)
	if st := a.rep.Stats(); st.Payees != 0 || st.Tokens != 0 {
		t.Errorf("after the expiry: got %d payee records of %d tokens held, want none", st.Payees, st.Tokens)
	}
	a.reopen(t)
	if st := a.rep.Stats(); st.Payees != 0 || st.Tokens != 0 {
		t.Errorf("after the expiry and a restart: got %d payee records of %d tokens held, want none", st.Payees, st.Tokens)
	}
}
