package server_test

import (
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/sparr-dev/sparr/protocol"
	"github.com/sparr-dev/sparr/protocol/api"
	"github.com/sparr-dev/sparr/server/decide"
	"github.com/sparr-dev/sparr/server/hubtest"
	"github.com/sparr-dev/sparr/server/store"
)

// TestPayeeExpiry: a payee record past its retention is deleted from the
// data file by the hub's jobs, with its token index and its records, and
// every member receives a signed payee-expired record; a later report
// starts a new record.
func TestPayeeExpiry(t *testing.T) {
	clock := hubtest.NewClock(time.Now())
	hub := hubtest.Start(t, hubtest.Options{Clock: clock, Delivery: fast, Policy: decide.Policy{PayeeRetention: 30 * 24 * time.Hour, FeedRetention: 90 * 24 * time.Hour}})
	bankA := hub.AddMember(t, "bank-a", api.RoleCheck)
	bankC := hub.AddMember(t, "bank-c", api.RoleCheck)
	payee := bankA.Tokenize(t, protocol.TypeBankgiro, "5050-1055")[0]

	resp := bankA.Submit(t, "/v1/payees", payeeReport(payee, 2, hub.Now()))
	mustStatus(t, resp, http.StatusCreated)
	var w api.WriteResponse
	resp.JSON(t, &w)
	rec, err := protocol.VerifyRecord([]byte(w.Record), hub.JWKS(t))
	if err != nil {
		t.Fatal(err)
	}

	// Within the retention the jobs leave it.
	clock.Advance(29 * 24 * time.Hour)
	if err := hub.RunJobs(); err != nil {
		t.Fatal(err)
	}
	if _, err := hub.Store.PayeeByToken(payee.String()); err != nil {
		t.Fatalf("within the retention: got %v, want the record kept", err)
	}

	// Past it, the record, its token index and its records go.
	clock.Advance(2 * 24 * time.Hour)
	if err := hub.RunJobs(); err != nil {
		t.Fatal(err)
	}
	// Every member reads the signed expiry in its feed (the webhook
	// receiver's clock does not move with the hub's).
	var feed api.FeedPage
	resp = bankC.Do(t, http.MethodGet, "/v1/events?after=0", "", nil)
	mustStatus(t, resp, http.StatusOK)
	resp.JSON(t, &feed)
	var got *protocol.Record
	for _, e := range feed.Events {
		if e.Type == protocol.EventPayeeExpired {
			if got, err = protocol.VerifyRecord([]byte(e.JWS), hub.JWKS(t)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if got == nil {
		t.Fatalf("got feed %+v, want a payee-expired record", feed.Events)
	}
	if ev := got.Event.(protocol.PayeeExpired); ev.PayeeID != w.Payee.PayeeID || ev.Version != 1 {
		t.Errorf("got expiry %+v, want payee %s version 1", ev, w.Payee.PayeeID)
	}
	if toks, err := got.Subject.Tokens(); err != nil || len(toks) != 1 || toks[0] != payee {
		t.Errorf("got expiry about %v, %v, want the payee token", toks, err)
	}
	if _, err := hub.Store.PayeeByToken(payee.String()); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("after the expiry: got %v reading by token, want not found", err)
	}
	d := hub.Dump(t)
	if n, m := len(d.Buckets["payees"]), len(d.Buckets["payee_token"]); n != 0 || m != 0 {
		t.Errorf("after the expiry: got %d payee records and %d token keys stored, want none", n, m)
	}
	mustStatus(t, bankA.Do(t, http.MethodGet, "/v1/payees/"+w.Payee.PayeeID, "", nil), http.StatusNotFound)
	mustStatus(t, bankA.Do(t, http.MethodGet, "/v1/records/"+rec.ID, "", nil), http.StatusNotFound)
	var expired int
	for _, e := range hub.LogEntries(t) {
		if e.Action == protocol.LogPayeeExpired {
			expired++
		}
	}
	if expired != 1 {
		t.Errorf("got %d payee-expired entries, want 1", expired)
	}
	// The jobs run again: nothing more to do.
	if err := hub.RunJobs(); err != nil {
		t.Fatal(err)
	}

	resp = bankC.Submit(t, "/v1/payees", payeeReport(payee, 2, hub.Now()))
	mustStatus(t, resp, http.StatusCreated)
	var again api.WriteResponse
	resp.JSON(t, &again)
	if again.Payee.PayeeID == w.Payee.PayeeID || again.Payee.Version != 1 {
		t.Errorf("got payee %+v after the expiry, want a new record", again.Payee)
	}
}

// TestRecallErasureAndRetention: erasing a payee token scrubs it from the
// recalls that name it — both sides still read their case (ids, amount,
// times, reference) but the token, its index key and the recall's
// records are gone, and further steps are refused — while recalls of
// other payees stay whole; a closed recall is deleted at the end of its
// retention after the outcome.
func TestRecallErasureAndRetention(t *testing.T) {
	clock := hubtest.NewClock(time.Now())
	hub := hubtest.Start(t, hubtest.Options{Clock: clock, Delivery: fast,
		Policy: decide.Policy{PayeeRetention: 30 * 24 * time.Hour, PayeeBanks: map[string]string{"SE:500": "bank-b"}}})
	bankA := hub.AddMember(t, "bank-a", api.RoleCheck)
	bankB := hub.AddMember(t, "bank-b", api.RoleCheck)
	erased := bankA.Tokenize(t, protocol.TypeIBAN, "SE4550000000058398257466")[0]
	kept := bankA.Tokenize(t, protocol.TypeIBAN, "SE3550000000054910000003")[0]
	request := func(payee protocol.Token) (api.Recall, *protocol.Record) {
		t.Helper()
		resp := bankA.Submit(t, "/v1/recalls", recallRequest(payee, "SE:500", hub.Now()))
		mustStatus(t, resp, http.StatusCreated)
		var w api.WriteResponse
		resp.JSON(t, &w)
		rec, err := protocol.VerifyRecord([]byte(w.Record), hub.JWKS(t))
		if err != nil {
			t.Fatal(err)
		}
		return *w.Recall, rec
	}
	gone, goneRec := request(erased)
	stays, _ := request(kept)
	if keys := tokenKeys(hub.Dump(t), erased); keys != 1 {
		t.Fatalf("got %d index keys for the payee, want 1", keys)
	}

	mustStatus(t, hub.Operator.JSON(t, http.MethodPost, "/v1/admin/erasures", map[string]any{"subject": erased.String(), "legal_basis": "reported-in-error"}), http.StatusOK)
	for _, m := range []*hubtest.Member{bankA, bankB} {
		var v api.Recall
		resp := m.Do(t, http.MethodGet, "/v1/recalls/"+gone.RecallID, "", nil)
		mustStatus(t, resp, http.StatusOK)
		resp.JSON(t, &v)
		if v.Amount != gone.Amount || v.Reference != gone.Reference || !v.RequestedAt.Equal(gone.RequestedAt) || v.Status != "requested" {
			t.Errorf("%s after the erasure: got recall %+v, want the case as requested", m.ID, v)
		}
	}
	rc, err := hub.Store.Recall(gone.RecallID)
	if err != nil {
		t.Fatal(err)
	}
	if rc.Payee != "" || len(rc.Records) != 0 {
		t.Errorf("after the erasure: got stored payee %q and records %v, want none", rc.Payee, rc.Records)
	}
	d := hub.Dump(t)
	if keys := tokenKeys(d, erased); keys != 0 {
		t.Errorf("after the erasure: got %d index keys for the payee, want none", keys)
	}
	for k, v := range d.Buckets["recalls"] {
		if strings.Contains(v, erased.String()) {
			t.Errorf("after the erasure: recall %s still names the token", k)
		}
	}
	mustStatus(t, bankB.Do(t, http.MethodGet, "/v1/records/"+goneRec.ID, "", nil), http.StatusNotFound)
	resp := bankB.Submit(t, "/v1/recalls/"+gone.RecallID+"/acknowledge", protocol.AcknowledgeRecall{RecallID: gone.RecallID})
	mustStatus(t, resp, http.StatusConflict)
	if rc, err := hub.Store.Recall(stays.RecallID); err != nil || rc.Payee != kept.String() {
		t.Errorf("the other recall: got %+v, %v, want it whole", rc, err)
	}

	// The other recall closes; at the end of its retention after the
	// outcome it is deleted, and the open one stays.
	mustStatus(t, bankB.Submit(t, "/v1/recalls/"+stays.RecallID+"/outcome", protocol.ReportRecallOutcome{RecallID: stays.RecallID,
		Outcome: protocol.RecallGone, Amount: protocol.Money{Minor: 0, Currency: "SEK"}}), http.StatusOK)
	clock.Advance(29 * 24 * time.Hour)
	if err := hub.RunJobs(); err != nil {
		t.Fatal(err)
	}
	mustStatus(t, bankA.Do(t, http.MethodGet, "/v1/recalls/"+stays.RecallID, "", nil), http.StatusOK)
	clock.Advance(2 * 24 * time.Hour)
	if err := hub.RunJobs(); err != nil {
		t.Fatal(err)
	}
	for _, m := range []*hubtest.Member{bankA, bankB} {
		mustStatus(t, m.Do(t, http.MethodGet, "/v1/recalls/"+stays.RecallID, "", nil), http.StatusNotFound)
	}
	mustStatus(t, bankA.Do(t, http.MethodGet, "/v1/recalls/"+gone.RecallID, "", nil), http.StatusOK)
	if keys := tokenKeys(hub.Dump(t), kept); keys != 0 {
		t.Errorf("after the retention: got %d index keys for the closed recall's payee, want none", keys)
	}
	var expired int
	for _, e := range hub.LogEntries(t) {
		if e.Action == protocol.LogRecallExpired {
			expired++
		}
	}
	if expired != 1 {
		t.Errorf("got %d recall-expired entries, want 1", expired)
	}
}

// tokenKeys counts the keys of the recalls' token index for tok.
func tokenKeys(d *hubtest.Dump, tok protocol.Token) int {
	n := 0
	for k := range d.Buckets["recall_token"] {
		if strings.HasPrefix(k, tok.String()+"\x00") {
			n++
		}
	}
	return n
}
