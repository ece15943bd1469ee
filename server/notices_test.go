package server_test

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/sparr-dev/sparr/client"
	"github.com/sparr-dev/sparr/protocol"
	"github.com/sparr-dev/sparr/protocol/api"
	"github.com/sparr-dev/sparr/server/hubtest"
	"github.com/sparr-dev/sparr/server/store"
)

// consumerAuth is bank A's statement that the consumer authenticated with
// BankID at at.
func consumerAuth(at time.Time) protocol.ConsumerAuth {
	return protocol.ConsumerAuth{Method: protocol.AuthBankID, AuthenticatedAt: protocol.NewNumericDate(at), Level: protocol.LevelHigh, Reference: "bankid-order-4711"}
}

// TestAccessNoticeAndDenial: bank B checks a consumer protected by bank
// A's flag; bank A alone gets the signed access notice, by webhook and
// feed; the consumer says "not me" through bank A; bank B alone gets the
// signed denial, and every later check of the subject shows it, with
// bank B's own denial record. A replica check reported by bank C is
// notified too. Bank C, which also places flags, gets neither.
func TestAccessNoticeAndDenial(t *testing.T) {
	ctx := context.Background()
	hub := hubtest.Start(t, hubtest.Options{Delivery: fast})
	bankA := hub.AddMember(t, "bank-a", api.RoleFlag, api.RoleCheck)
	bankB := hub.AddMember(t, "bank-b", api.RoleCheck)
	bankC := hub.AddMember(t, "bank-c", api.RoleFlag, api.RoleCheck)
	ra, rb, rc := hub.NewReceiver(t, bankA), hub.NewReceiver(t, bankB), hub.NewReceiver(t, bankC)
	for _, r := range []*hubtest.Receiver{ra, rb, rc} {
		r.Register(t)
		r.WaitEvent(t, wait, protocol.EventVerification)
	}
	tok := bankA.Tokenize(t, protocol.TypePersonalNumber, "190905271474")[0]
	flag := place(t, bankA, tok)

	checked, err := bankB.Client().Check(ctx, api.PurposeCreditApplication, tok)
	if err != nil {
		t.Fatal(err)
	}
	if checked.Results[0].Advice != api.AdviceVerify || checked.Results[0].Denied != nil {
		t.Fatalf("first check: got %+v, want verify and no denial", checked.Results[0])
	}
	got := ra.WaitEvent(t, wait, protocol.EventSubjectChecked)
	notice := got.Record.Event.(protocol.SubjectChecked)
	if notice.CheckID != checked.ID || notice.Checker != "bank-b" || notice.Purpose != api.PurposeCreditApplication || notice.FlagID != flag.Flag.FlagID || notice.Replica {
		t.Fatalf("got notice %+v, want bank-b's check %s of flag %s", notice, checked.ID, flag.Flag.FlagID)
	}
	if subs, _ := got.Record.Subject.Tokens(); len(subs) != 1 || subs[0] != tok {
		t.Errorf("the notice is about %v, want the flagged token", subs)
	}

	denied, err := bankA.Client().DenyCheck(ctx, notice.CheckID, notice.FlagID, consumerAuth(hub.Now().Add(-time.Minute)))
	if err != nil {
		t.Fatal(err)
	}
	if ev, ok := denied.Record.Event.(protocol.CheckDenied); !ok || ev.CheckID != checked.ID || ev.Origin != "bank-a" || ev.ConsumerAuth.Method != protocol.AuthBankID {
		t.Fatalf("got record %+v, want bank-a's denial of %s", denied.Record.Event, checked.ID)
	}
	gotDenial := rb.WaitEvent(t, wait, protocol.EventCheckDenied)
	if ev := gotDenial.Record.Event.(protocol.CheckDenied); ev.CheckID != checked.ID || ev.FlagID != flag.Flag.FlagID {
		t.Errorf("bank B got %+v, want the denial of its check %s", ev, checked.ID)
	}

	// The consumer's history at bank A shows the check as denied.
	hist, err := bankA.Client().History(ctx, tok, consumerAuth(hub.Now()))
	if err != nil {
		t.Fatal(err)
	}
	var shown bool
	for _, a := range hist.Accesses {
		if a.CheckID == checked.ID {
			shown = a.Denied
		}
	}
	if !shown {
		t.Errorf("history: got accesses %+v, want check %s shown as denied", hist.Accesses, checked.ID)
	}

	again, err := bankB.Client().Check(ctx, api.PurposeCreditApplication, tok)
	if err != nil {
		t.Fatal(err)
	}
	if d := again.Results[0].Denied; d == nil || d.Count != 1 || len(d.Records) != 1 {
		t.Errorf("bank B's later check: got denial %+v, want 1 with bank B's record", d)
	}
	ra.WaitFor(t, wait, "the notice of bank B's second check", func(r hubtest.Received) bool {
		n, ok := r.Record.Event.(protocol.SubjectChecked)
		return ok && n.CheckID == again.ID
	})
	other, err := bankC.Client().Check(ctx, api.PurposeAccountOpening, tok)
	if err != nil {
		t.Fatal(err)
	}
	if d := other.Results[0].Denied; d == nil || d.Count != 1 || len(d.Records) != 0 {
		t.Errorf("bank C's check: got denial %+v, want 1 without records (bank B's denial is bank B's)", d)
	}

	// A second denial, a denial by another member, and a denial with a
	// stale authentication are refused.
	_, err = bankA.Client().DenyCheck(ctx, notice.CheckID, notice.FlagID, consumerAuth(hub.Now()))
	if !errors.Is(err, client.ErrStateConflict) {
		t.Errorf("second denial: got %v, want a state conflict", err)
	}
	_, err = bankC.Client().DenyCheck(ctx, notice.CheckID, notice.FlagID, consumerAuth(hub.Now()))
	if !errors.Is(err, client.ErrNotFound) {
		t.Errorf("bank C's denial: got %v, want not found", err)
	}
	_, err = bankA.Client().DenyCheck(ctx, again.ID, notice.FlagID, consumerAuth(hub.Now().Add(-2*time.Hour)))
	if !errors.Is(err, client.ErrValidation) {
		t.Errorf("stale authentication: got %v, want validation failed", err)
	}
	if n, err := hub.Store.Notice(again.ID, notice.FlagID); err != nil || !n.DeniedAt.IsZero() {
		t.Errorf("after refused denials: got %+v, %v; want bank B's second check undenied", n, err)
	}

	// A replica check reported by bank C is notified as an online one.
	if _, err := bankC.Client().ReportReplicaChecks(ctx, []api.ReplicaCheck{{Token: tok.String(), Purpose: api.PurposePayment, At: hub.Now()}}); err != nil {
		t.Fatal(err)
	}
	ra.WaitFor(t, wait, "the notice of bank C's replica check", func(r hubtest.Received) bool {
		n, ok := r.Record.Event.(protocol.SubjectChecked)
		return ok && n.Replica && n.Checker == "bank-c" && n.Purpose == api.PurposePayment
	})

	// Only the origin gets notices; only the checker gets its denial.
	for _, tc := range []struct {
		r    *hubtest.Receiver
		m    *hubtest.Member
		want map[protocol.EventType]bool
	}{
		{ra, bankA, map[protocol.EventType]bool{protocol.EventSubjectChecked: true}},
		{rb, bankB, map[protocol.EventType]bool{protocol.EventCheckDenied: true}},
		{rc, bankC, map[protocol.EventType]bool{}},
	} {
		for _, got := range tc.r.Received() {
			if typ := got.Record.Event.EventType(); (typ == protocol.EventSubjectChecked || typ == protocol.EventCheckDenied) && !tc.want[typ] {
				t.Errorf("%s's webhook received %s", tc.m.ID, typ.Short())
			}
		}
		events, _ := feed(t, tc.m, 0)
		for _, e := range events {
			if (e.Type == protocol.EventSubjectChecked || e.Type == protocol.EventCheckDenied) && !tc.want[e.Type] {
				t.Errorf("%s's feed holds %s", tc.m.ID, e.Type.Short())
			}
		}
	}
	for _, m := range []*hubtest.Member{bankB, bankC} {
		if resp := m.Do(t, http.MethodGet, "/v1/records/"+got.Record.ID, "", nil); resp.Status != http.StatusNotFound {
			t.Errorf("%s reading bank A's notice: got status %d, want 404", m.ID, resp.Status)
		}
	}
	if resp := bankA.Do(t, http.MethodGet, "/v1/records/"+got.Record.ID, "", nil); resp.Status != http.StatusOK {
		t.Errorf("bank A reading its notice: got status %d, want 200", resp.Status)
	}
	mine, _ := feed(t, bankA, 0)
	n := 0
	for _, e := range mine {
		if e.Type == protocol.EventSubjectChecked {
			n++
		}
	}
	if n != 4 {
		t.Errorf("bank A's feed holds %d access notices, want 4 (bank B's two checks, bank C's online and replica checks)", n)
	}
}

// TestLiftAndErasureRemoveNotices: the end of a flag, or the erasure of
// its subject, deletes the access notices and denials that name the
// subject, and their records.
func TestLiftAndErasureRemoveNotices(t *testing.T) {
	ctx := context.Background()
	for _, how := range []string{"lift", "erasure"} {
		t.Run(how, func(t *testing.T) {
			hub := hubtest.Start(t, hubtest.Options{Delivery: fast})
			bankA := hub.AddMember(t, "bank-a", api.RoleFlag, api.RoleCheck)
			bankB := hub.AddMember(t, "bank-b", api.RoleCheck)
			tok := bankA.Tokenize(t, protocol.TypePersonalNumber, "190905271474")[0]
			kept := bankA.Tokenize(t, protocol.TypePersonalNumber, "198112189876")[0]
			flag := place(t, bankA, tok)
			place(t, bankA, kept)
			checked, err := bankB.Client().Check(ctx, api.PurposeCreditApplication, tok, kept)
			if err != nil {
				t.Fatal(err)
			}
			denied, err := bankA.Client().DenyCheck(ctx, checked.ID, flag.Flag.FlagID, consumerAuth(hub.Now()))
			if err != nil {
				t.Fatal(err)
			}
			notice, err := hub.Store.Notice(checked.ID, flag.Flag.FlagID)
			if err != nil || notice.Record == nil {
				t.Fatalf("got notice %+v, %v; want one with its record", notice, err)
			}
			switch how {
			case "lift":
				mustStatus(t, bankA.Submit(t, "/v1/flags/"+flag.Flag.FlagID+"/lift", protocol.LiftFlag{FlagID: flag.Flag.FlagID}), http.StatusOK)
			case "erasure":
				mustStatus(t, hub.Operator.JSON(t, http.MethodPost, "/v1/admin/erasures", map[string]string{"subject": tok.String(), "legal_basis": "gdpr-art-17"}), http.StatusOK)
			}
			if ns, err := hub.Store.Notices(tok.String()); err != nil || len(ns) != 0 {
				t.Errorf("notices of the subject after the %s: got %d, %v; want none", how, len(ns), err)
			}
			if ds, err := hub.Store.Denials(tok.String()); err != nil || len(ds) != 0 {
				t.Errorf("denials of the subject after the %s: got %d, %v; want none", how, len(ds), err)
			}
			for _, id := range []string{notice.Record.ID, denied.Record.ID} {
				if _, err := hub.Store.Record(id); !errors.Is(err, store.ErrNotFound) {
					t.Errorf("record %s after the %s: got %v, want it erased", id, how, err)
				}
			}
			if ns, err := hub.Store.Notices(kept.String()); err != nil || len(ns) != 1 {
				t.Errorf("notices of the other subject: got %d, %v; want its one, kept", len(ns), err)
			}
		})
	}
}
