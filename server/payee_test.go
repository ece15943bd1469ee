package server_test

import (
	"net/http"
	"slices"
	"strconv"
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
	hub := hubtest.Start(t, hubtest.Options{Clock: clock, Delivery: fast, Policy: decide.Policy{PayeeRetention: 30 * 24 * time.Hour, FeedRetention: 24 * time.Hour}})
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

	// The feed's retention passes: the record's events leave the feed,
	// but its latest record stays for checks.
	clock.Advance(25 * 24 * time.Hour)
	if err := hub.RunJobs(); err != nil {
		t.Fatal(err)
	}
	if r := check(t, bankC, "payment", payee).Results[0]; r.Payee == nil || r.Payee.Record == "" {
		t.Errorf("after the feed's retention: got payee %+v, want it with its latest record", r.Payee)
	}

	// Past the retention, the record no longer counts.
	clock.Advance(6 * 24 * time.Hour)
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

// recallRequest is a recall of a 40 000 SEK payment to payee at bank,
// made ten minutes before now.
func recallRequest(payee protocol.Token, bank string, now time.Time) protocol.RequestRecall {
	b, err := protocol.ParseBankRef(bank)
	if err != nil {
		panic(err)
	}
	return protocol.RequestRecall{Payee: payee, Bank: b, Amount: protocol.Money{Minor: 4_000_000, Currency: "SEK"},
		PaidAt: protocol.NewNumericDate(now.Add(-10 * time.Minute)), Reference: "pay-" + strconv.FormatInt(now.UnixNano(), 36)}
}

// TestRecallRouting follows a recall: Bank A's customer paid a scammer's
// account at Bank B; Bank A's recall reaches Bank B's receiver and no
// other member; Bank B acknowledges and reports the money frozen; each
// step reaches Bank A signed; both see the status and the times, and the
// regulator's stats count them per pair of members.
func TestRecallRouting(t *testing.T) {
	hub := hubtest.Start(t, hubtest.Options{Delivery: fast, Policy: decide.Policy{PayeeBanks: map[string]string{"SE:500": "bank-b", "SE:120": "bank-gone"}}})
	bankA := hub.AddMember(t, "bank-a", api.RoleCheck)
	bankB := hub.AddMember(t, "bank-b", api.RoleCheck)
	bankC := hub.AddMember(t, "bank-c", api.RoleCheck)
	regulator := hub.AddMember(t, "fi", api.RoleRegulator)
	recvA, recvB, recvC := hub.NewReceiver(t, bankA), hub.NewReceiver(t, bankB), hub.NewReceiver(t, bankC)
	for _, r := range []*hubtest.Receiver{recvA, recvB, recvC} {
		r.Register(t)
	}

	// Bank A knows the payee by clearing number; the bank is derived.
	acct, err := protocol.ParseSwedishAccount("5839-825 74 66")
	if err != nil {
		t.Fatal(err)
	}
	bank, ok := protocol.BankOf(protocol.TypeSwedishAccount, acct.String())
	if !ok || bank.String() != "SE:500" {
		t.Fatalf("got bank %s, %v, want SE:500", bank, ok)
	}
	payee := bankA.Tokenize(t, protocol.TypeIBAN, acct.IBAN())[0]

	// No member holds SE:999, and bank-gone is no member.
	mustStatus(t, bankA.Submit(t, "/v1/recalls", recallRequest(payee, "SE:999", hub.Now())), http.StatusUnprocessableEntity)
	mustStatus(t, bankA.Submit(t, "/v1/recalls", recallRequest(payee, "SE:120", hub.Now())), http.StatusUnprocessableEntity)

	resp := bankA.Submit(t, "/v1/recalls", recallRequest(payee, bank.String(), hub.Now()))
	mustStatus(t, resp, http.StatusCreated)
	var w api.WriteResponse
	resp.JSON(t, &w)
	rc := w.Recall
	if rc == nil || rc.To != "bank-b" || rc.From != "bank-a" || rc.Status != "requested" {
		t.Fatalf("got recall %+v, want requested from bank-a to bank-b", rc)
	}
	got := recvB.WaitEvent(t, wait, protocol.EventRecallRequested)
	if ev := got.Record.Event.(protocol.RecallRequested); ev.RecallID != rc.RecallID || ev.Amount.Minor != 4_000_000 || ev.From != "bank-a" {
		t.Errorf("got event %+v, want recall %s of 40000.00 SEK from bank-a", ev, rc.RecallID)
	}

	// Only the holder acknowledges and answers.
	ack := protocol.AcknowledgeRecall{RecallID: rc.RecallID}
	mustStatus(t, bankC.Submit(t, "/v1/recalls/"+rc.RecallID+"/acknowledge", ack), http.StatusNotFound)
	mustStatus(t, bankA.Submit(t, "/v1/recalls/"+rc.RecallID+"/acknowledge", ack), http.StatusNotFound)
	mustStatus(t, bankB.Submit(t, "/v1/recalls/"+rc.RecallID+"/acknowledge", ack), http.StatusOK)
	mustStatus(t, bankB.Submit(t, "/v1/recalls/"+rc.RecallID+"/acknowledge", ack), http.StatusConflict)
	recvA.WaitEvent(t, wait, protocol.EventRecallAcknowledged)

	outcome := func(minor int64) protocol.ReportRecallOutcome {
		return protocol.ReportRecallOutcome{RecallID: rc.RecallID, Outcome: protocol.RecallFrozen, Amount: protocol.Money{Minor: minor, Currency: "SEK"}}
	}
	mustStatus(t, bankB.Submit(t, "/v1/recalls/"+rc.RecallID+"/outcome", outcome(4_000_001)), http.StatusUnprocessableEntity)
	mustStatus(t, bankB.Submit(t, "/v1/recalls/"+rc.RecallID+"/outcome", outcome(3_150_000)), http.StatusOK)
	got = recvA.WaitEvent(t, wait, protocol.EventRecallOutcome)
	if ev := got.Record.Event.(protocol.RecallOutcome); ev.Outcome != protocol.RecallFrozen || ev.Amount.Minor != 3_150_000 || ev.Reference != rc.Reference {
		t.Errorf("got outcome %+v, want 31500.00 SEK frozen, quoting reference %s", ev, rc.Reference)
	}

	// Both sides see the status and the times; no one else sees the recall.
	for _, m := range []*hubtest.Member{bankA, bankB} {
		var v api.Recall
		resp := m.Do(t, http.MethodGet, "/v1/recalls/"+rc.RecallID, "", nil)
		mustStatus(t, resp, http.StatusOK)
		resp.JSON(t, &v)
		if v.Status != "frozen" || v.AcknowledgeMillis == nil || v.OutcomeMillis == nil || *v.OutcomeMillis < *v.AcknowledgeMillis || v.Recovered.Minor != 3_150_000 {
			t.Errorf("%s: got recall %+v, want frozen with both times", m.ID, v)
		}
	}
	mustStatus(t, bankC.Do(t, http.MethodGet, "/v1/recalls/"+rc.RecallID, "", nil), http.StatusNotFound)
	var feed api.FeedPage
	resp = bankC.Do(t, http.MethodGet, "/v1/events?after=0", "", nil)
	mustStatus(t, resp, http.StatusOK)
	resp.JSON(t, &feed)
	for _, e := range feed.Events {
		if e.Type == protocol.EventRecallRequested || e.Type == protocol.EventRecallAcknowledged || e.Type == protocol.EventRecallOutcome {
			t.Errorf("got %s in bank-c's feed, want recalls to reach their two sides only", e.Type)
		}
	}
	for _, g := range recvC.Received() {
		if typ := g.Record.Event.EventType(); typ != protocol.EventVerification {
			t.Errorf("got %s delivered to bank-c, want nothing", typ)
		}
	}

	var st api.AuditStats
	resp = regulator.Do(t, http.MethodGet, "/v1/audit/stats", "", nil)
	mustStatus(t, resp, http.StatusOK)
	resp.JSON(t, &st)
	if p := st.Recalls["bank-a>bank-b"]; p == nil || p.Requested != 1 || p.Acknowledged != 1 || p.Outcomes != 1 || p.OutcomeMaxMs < p.AcknowledgeMaxMs {
		t.Errorf("got recall stats %+v, want one requested, acknowledged and answered from bank-a to bank-b", p)
	}
	if len(st.Recalls) != 1 {
		t.Errorf("got recall stats for %d pairs, want 1 (refused requests count for none)", len(st.Recalls))
	}
}

// TestPayeeErasure: the operator erases a payee token (a number reported
// in error): the payee record and its records go, every member is told
// to erase it, checks answer none, and a new report starts a new record.
func TestPayeeErasure(t *testing.T) {
	hub := hubtest.Start(t, hubtest.Options{Delivery: fast})
	bankA := hub.AddMember(t, "bank-a", api.RoleCheck)
	bankC := hub.AddMember(t, "bank-c", api.RoleCheck)
	recv := hub.NewReceiver(t, bankC)
	recv.Register(t)
	payee := bankA.Tokenize(t, protocol.TypePlusgiro, "9020017")[0]
	resp := bankA.Submit(t, "/v1/payees", payeeReport(payee, 2, hub.Now()))
	mustStatus(t, resp, http.StatusCreated)
	var w api.WriteResponse
	resp.JSON(t, &w)
	recv.WaitFor(t, wait, "payee record", func(g hubtest.Received) bool { return payeeVersion(g, 1) })

	mustStatus(t, hub.Operator.JSON(t, http.MethodPost, "/v1/admin/erasures", map[string]any{"subject": payee.String(), "legal_basis": "reported-in-error"}), http.StatusOK)
	got := recv.WaitEvent(t, wait, protocol.EventSubjectErased)
	if toks, err := got.Record.Subject.Tokens(); err != nil || len(toks) != 1 || toks[0] != payee {
		t.Errorf("got erasure of %v, %v, want the payee token", toks, err)
	}
	if r := check(t, bankC, "payment", payee).Results[0]; r.Advice != api.AdviceNone || r.Payee != nil {
		t.Errorf("after the erasure: got advice %s, payee %+v, want none", r.Advice, r.Payee)
	}
	mustStatus(t, bankA.Do(t, http.MethodGet, "/v1/payees/"+w.Payee.PayeeID, "", nil), http.StatusNotFound)
	rec, err := protocol.VerifyRecord([]byte(w.Record), hub.JWKS(t))
	if err != nil {
		t.Fatal(err)
	}
	mustStatus(t, bankA.Do(t, http.MethodGet, "/v1/records/"+rec.ID, "", nil), http.StatusNotFound)

	resp = bankA.Submit(t, "/v1/payees", payeeReport(payee, 3, hub.Now()))
	mustStatus(t, resp, http.StatusCreated)
	var again api.WriteResponse
	resp.JSON(t, &again)
	if again.Payee.PayeeID == w.Payee.PayeeID || again.Payee.Version != 1 || again.Payee.Customers != 3 {
		t.Errorf("got payee %+v after the erasure, want a new record of 3 customers", again.Payee)
	}
}
