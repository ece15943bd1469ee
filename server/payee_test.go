package server_test

import (
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/sparr-dev/sparr/protocol"
	"github.com/sparr-dev/sparr/protocol/api"
	"github.com/sparr-dev/sparr/server/decide"
	"github.com/sparr-dev/sparr/server/hubtest"
)

// payeeReport is a report of payee by customers of the member, the last
// an hour before now.
func payeeReport(payee protocol.Token, customers int, now time.Time) protocol.ReportPayee {
	return protocol.ReportPayee{Payee: payee, Customers: customers, Category: protocol.PayeeImpersonation,
		FirstSeen: protocol.NewNumericDate(now.Add(-48 * time.Hour)), LastSeen: protocol.NewNumericDate(now.Add(-time.Hour))}
}

// TestPayeeReports follows a mule account through the hub: one customer
// is not enough, two at Bank A share it, three at Bank B join the same
// record, Bank C's webhook receiver gets every version, Bank C's payment
// check warns with the aggregate, the account holder contests through
// Bank B, and the record lapses after the retention.
func TestPayeeReports(t *testing.T) {
	clock := hubtest.NewClock(time.Now())
	hub := hubtest.Start(t, hubtest.Options{Clock: clock, Delivery: fast, Policy: decide.Policy{PayeeRetention: 30 * 24 * time.Hour}})
	bankA := hub.AddMember(t, "bank-a", api.RoleCheck)
	bankB := hub.AddMember(t, "bank-b", api.RoleFlag, api.RoleCheck)
	bankC := hub.AddMember(t, "bank-c", api.RoleCheck)
	recv := hub.NewReceiver(t, bankC)
	recv.Register(t)
	jwks := hub.JWKS(t)

	// Every bank tokenizes the same account its own way in, and gets the
	// same token.
	acct, err := protocol.ParseSwedishAccount("5839-825 74 66")
	if err != nil {
		t.Fatal(err)
	}
	payee := bankA.Tokenize(t, protocol.TypeIBAN, acct.IBAN())[0]
	if got := bankC.Tokenize(t, protocol.TypeIBAN, "SE4550000000058398257466")[0]; got != payee {
		t.Fatalf("got Bank C's token %s, want Bank A's %s", got, payee)
	}
	now := hub.Now()

	// One customer is below the PSR's threshold: refused, nothing stored.
	resp := bankA.Submit(t, "/v1/payees", payeeReport(payee, 1, now))
	mustStatus(t, resp, http.StatusUnprocessableEntity)
	if p := resp.Problem(t); p.Type != protocol.ProblemValidation.URI || len(p.Errors) != 1 || p.Errors[0].Pointer != "/request/customers" {
		t.Errorf("got problem %+v, want validation-failed at /request/customers", p)
	}
	if r := check(t, bankC, "payment", payee).Results[0]; r.Advice != api.AdviceNone || r.Payee != nil {
		t.Fatalf("after a refused report: got advice %s, payee %+v, want none and no payee", r.Advice, r.Payee)
	}

	// Two customers at Bank A: a new payee record, sent to every member.
	resp = bankA.Submit(t, "/v1/payees", payeeReport(payee, 2, now))
	mustStatus(t, resp, http.StatusCreated)
	var first api.WriteResponse
	resp.JSON(t, &first)
	if first.Payee == nil || first.Payee.Version != 1 || first.Payee.Customers != 2 || first.Payee.Members != 1 {
		t.Fatalf("got payee %+v, want version 1 with 2 customers of 1 member", first.Payee)
	}
	got := recv.WaitFor(t, wait, "payee record v1", func(g hubtest.Received) bool { return payeeVersion(g, 1) })
	if toks, err := got.Record.Subject.Tokens(); err != nil || len(toks) != 1 || toks[0] != payee {
		t.Errorf("got record subject %v, %v, want the payee token", toks, err)
	}

	// Three at Bank B join the same record.
	resp = bankB.Submit(t, "/v1/payees", payeeReport(payee, 3, now))
	mustStatus(t, resp, http.StatusOK)
	recv.WaitFor(t, wait, "payee record v2", func(g hubtest.Received) bool { return payeeVersion(g, 2) })

	r := check(t, bankC, "payment", payee).Results[0]
	if r.Advice != api.AdviceWarn || r.Payee == nil {
		t.Fatalf("got advice %s, payee %+v, want warn with the payee record", r.Advice, r.Payee)
	}
	if p := r.Payee; p.PayeeID != first.Payee.PayeeID || p.Customers != 5 || p.Members != 2 || p.Contested ||
		!slices.Equal(p.Categories, []protocol.PayeeCategory{protocol.PayeeImpersonation}) {
		t.Errorf("got payee %+v, want record %s with 5 customers of 2 members, uncontested", p, first.Payee.PayeeID)
	}
	rec, err := protocol.VerifyRecord([]byte(r.Payee.Record), jwks)
	if err != nil {
		t.Fatalf("the check's payee record does not verify: %v", err)
	}
	if ev := rec.Event.(protocol.PayeeReported); ev.Customers != 5 || len(ev.Reports) != 2 || ev.LegalBasis != decide.DefaultPayeeLegalBasis {
		t.Errorf("got signed event %+v, want 5 customers of 2 reports under %q", ev, decide.DefaultPayeeLegalBasis)
	}

	// Bank A's second report replaces its first: 4 + 3, two members.
	mustStatus(t, bankA.Submit(t, "/v1/payees", payeeReport(payee, 4, now)), http.StatusOK)
	if p := check(t, bankC, "payment", payee).Results[0].Payee; p.Customers != 7 || p.Members != 2 || p.Version != 3 {
		t.Errorf("got payee %+v, want version 3 with 7 customers of 2 members", p)
	}

	// The account holder contests through Bank B: every check says so;
	// a second contest is refused.
	contest := protocol.ContestPayee{PayeeID: first.Payee.PayeeID, Reason: protocol.ContestHolderDisputes}
	mustStatus(t, bankB.Submit(t, "/v1/payees/"+contest.PayeeID+"/contest", contest), http.StatusOK)
	recv.WaitFor(t, wait, "contested record", func(g hubtest.Received) bool {
		ev, ok := g.Record.Event.(protocol.PayeeReported)
		return ok && ev.Contested && ev.ContestedBy == "bank-b"
	})
	r = check(t, bankC, "payment", payee).Results[0]
	if r.Advice != api.AdviceWarn || !r.Payee.Contested || r.Payee.ContestedBy != "bank-b" {
		t.Errorf("got advice %s, payee %+v, want warn, contested by bank-b", r.Advice, r.Payee)
	}
	mustStatus(t, bankA.Submit(t, "/v1/payees/"+contest.PayeeID+"/contest", contest), http.StatusConflict)
	mustStatus(t, bankA.Submit(t, "/v1/payees/nope/contest", protocol.ContestPayee{PayeeID: "nope", Reason: protocol.ContestReportedInError}), http.StatusNotFound)

	// Past the retention, the record no longer counts.
	clock.Advance(31 * 24 * time.Hour)
	if r := check(t, bankC, "payment", payee).Results[0]; r.Advice != api.AdviceNone || r.Payee != nil {
		t.Errorf("after the retention: got advice %s, payee %+v, want none", r.Advice, r.Payee)
	}
	// A report after it starts the record over: one member, uncontested.
	mustStatus(t, bankC.Submit(t, "/v1/payees", payeeReport(payee, 2, hub.Now())), http.StatusOK)
	if p := check(t, bankA, "payment", payee).Results[0].Payee; p == nil || p.Members != 1 || p.Customers != 2 || p.Contested {
		t.Errorf("got payee %+v, want a fresh record of bank-c's 2 customers", p)
	}
	// Every change is in the log, with the member's count.
	var reported, contested int
	for _, e := range hub.LogEntries(t) {
		switch e.Action {
		case protocol.LogPayeeReported:
			reported++
		case protocol.LogPayeeContested:
			contested++
		}
	}
	if reported != 4 || contested != 1 {
		t.Errorf("got %d payee-reported and %d payee-contested entries, want 4 and 1", reported, contested)
	}
}

// payeeVersion reports whether g is version v of a payee record.
func payeeVersion(g hubtest.Received, v uint64) bool {
	ev, ok := g.Record.Event.(protocol.PayeeReported)
	return ok && ev.Version == v
}
