package replica_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sparr-dev/sparr/client"
	"github.com/sparr-dev/sparr/protocol"
	"github.com/sparr-dev/sparr/protocol/api"
	"github.com/sparr-dev/sparr/server/hubtest"
)

// TestForwardedDelivery: every delivery carries a signature under the
// hub's one webhook key, which every member trusts, and its sequence
// headers are not signed. Bank B takes its real delivery, claims sequence
// number 1e9, and posts it to Bank C's receiver: C refuses it as another
// member's. And when a delivery to B itself comes with false sequence
// numbers (altered on the way), B's replica does not take them: it follows
// only the hub's feed, and goes on receiving.
func TestForwardedDelivery(t *testing.T) {
	ctx := context.Background()
	hub := hubtest.Start(t, hubtest.Options{Delivery: fast})
	a := origin{newBank(t, hub, "bank-a", api.RoleFlag, api.RoleCheck), t, hub}
	b := newBank(t, hub, "bank-b", api.RoleCheck)
	c := newBank(t, hub, "bank-c", api.RoleCheck)
	b.sync(t)
	c.sync(t)
	rcvB, tapB := b.listen(t, nil)
	// C's receiver, reachable by anyone; C reads the feed meanwhile.
	var handedToC int
	rcvC, err := client.NewReceiver(client.ReceiverConfig{Client: c.client, Handle: func(ctx context.Context, e *client.Event) error {
		handedToC++
		return c.rep.Apply(ctx, e)
	}})
	if err != nil {
		t.Fatal(err)
	}
	toks := tokens(t, a.client, "forward", 2)
	f1 := a.place(toks[0], time.Time{})
	b.caughtUp(t, hub)
	c.sync(t)
	seqC := c.rep.Seq()

	forged := tapB.of(t, f1.Record.ID)
	forged.header.Set(protocol.HeaderSequence, "1000000000")
	req := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(string(forged.body)))
	req.Header = forged.header
	w := httptest.NewRecorder()
	rcvC.ServeHTTP(w, req)
	var answer struct {
		Err string `json:"err"`
	}
	json.Unmarshal(w.Body.Bytes(), &answer)
	if w.Code != http.StatusBadRequest || answer.Err != client.CodeAuthenticationFailed || handedToC != 0 {
		t.Errorf("B's delivery posted to C: got %d %q, handed on %d times; want 400 authentication_failed, never handed on", w.Code, answer.Err, handedToC)
	}
	if got := c.rep.Seq(); got != seqC {
		t.Errorf("C's replica: got sequence %d, want %d as before", got, seqC)
	}

	// B's own delivery, with false sequence numbers: it verifies (the
	// headers are not signed), and the replica reads the feed instead.
	own := tapB.of(t, f1.Record.ID)
	own.header.Set(protocol.HeaderSequence, "1000000000")
	own.header.Set(protocol.HeaderPreviousSequence, "1")
	e, err := rcvB.Verify(ctx, own.header, own.body)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.rep.Apply(ctx, e); err != nil {
		t.Fatal(err)
	}
	if head, _ := hub.Store.Sequence(); b.rep.Seq() != head {
		t.Errorf("B's replica after the false sequence number: got %d, want the hub's %d", b.rep.Seq(), head)
	}
	if !strings.Contains(b.logs.String(), "past the end of the hub's feed") {
		t.Errorf("the replica did not say it ignored the false sequence number; it logged:\n%s", b.logs)
	}
	// Both go on following the hub.
	a.place(toks[1], time.Time{})
	b.caughtUp(t, hub)
	c.sync(t)
	b.converged(t, toks)
	c.converged(t, toks)
}

// TestFilteredSubscription: a member whose endpoint takes flag-placed
// events only is never pushed the lift, and the Sparr-Previous-Sequence of
// the next placement counts only what it is pushed. The replica follows
// the feed, not the pushes, and ends holding exactly what the hub holds.
func TestFilteredSubscription(t *testing.T) {
	hub := hubtest.Start(t, hubtest.Options{Delivery: fast})
	a := origin{newBank(t, hub, "bank-a", api.RoleFlag, api.RoleCheck), t, hub}
	b := newBank(t, hub, "bank-b", api.RoleCheck)
	b.sync(t)
	b.listen(t, nil, protocol.EventFlagPlaced)
	toks := tokens(t, a.client, "filter", 2)
	f1 := a.place(toks[0], time.Time{})
	b.caughtUp(t, hub)
	a.do(a.client.LiftFlag(context.Background(), f1.Flag.ID))
	a.place(toks[1], time.Time{})
	b.caughtUp(t, hub)
	b.converged(t, toks)
	if adv := b.rep.Lookup(toks[0]); adv.Flag != nil {
		t.Errorf("the lifted flag: got %s with flag %s, want none held", adv, adv.Flag.ID)
	}
	if s := b.rep.Stats(); s.Flags != 1 {
		t.Errorf("got %d flags held, want 1", s.Flags)
	}
}

// TestHubBehindReplica: the hub is restored from a backup older than what
// the replica has applied, and numbers its next events from there. The
// replica sees that the feed ends before its own sequence number, says
// so, and starts again from the hub's snapshot, instead of skipping every
// new event as one it already holds.
func TestHubBehindReplica(t *testing.T) {
	hub := hubtest.Start(t, hubtest.Options{})
	a := origin{newBank(t, hub, "bank-a", api.RoleFlag, api.RoleCheck), t, hub}
	b := newBank(t, hub, "bank-b", api.RoleCheck)
	toks := tokens(t, a.client, "restored", 4)
	a.place(toks[0], time.Time{})
	backup := filepath.Join(t.TempDir(), "hub-backup.db")
	hub.Offline(t, func(path string) { copyFile(t, path, backup) })
	a.place(toks[1], time.Time{})
	a.place(toks[2], time.Time{})
	b.sync(t)
	ahead := b.rep.Seq()

	hub.Offline(t, func(path string) { copyFile(t, backup, path) })
	a.place(toks[3], time.Time{})
	if head, _ := hub.Store.Sequence(); head >= ahead {
		t.Fatalf("the restored hub is at %d, not behind the replica's %d; the test proves nothing", head, ahead)
	}
	b.sync(t)
	if !strings.Contains(b.logs.String(), "diverged") || !strings.Contains(b.logs.String(), "starting again from a snapshot") {
		t.Errorf("the replica did not say it started again; it logged:\n%s", b.logs)
	}
	b.converged(t, toks)
	if b.rep.Lookup(toks[3]).Advice != api.AdviceVerify || b.rep.Lookup(toks[1]).Flag != nil {
		t.Errorf("got %s for the new flag and %s for one the restored hub never had; want verify and none",
			b.rep.Lookup(toks[3]), b.rep.Lookup(toks[1]))
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	src, err := os.Open(from)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	dst, err := os.Create(to)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(dst, src); err != nil {
		t.Fatal(err)
	}
	if err := dst.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestErasure: the operator erases a subject at the hub (GDPR Art. 17);
// the pushed subject-erased record makes every replica forget the
// subject's flag, and the reporter's replica every suspicion naming it, in
// memory and in its file. An erasure of a subject with suspicions and no
// flag is told to the suspicions' reporter alone, whose replica forgets
// them; the other member never held them.
func TestErasure(t *testing.T) {
	ctx := context.Background()
	hub := suspicionHub(t, hubtest.Options{Delivery: fast})
	a := origin{newBank(t, hub, "bank-a", api.RoleFlag, api.RoleSuspicion, api.RoleCheck), t, hub}
	b := newBank(t, hub, "bank-b", api.RoleCheck)
	banks := []*bank{a.bank, b}
	for _, bk := range banks {
		bk.sync(t)
		bk.listen(t, nil)
	}
	toks := tokens(t, a.client, "erase", 3)
	a.place(toks[0], time.Time{})
	a.place(toks[1], time.Time{})
	a.do(a.client.ReportSuspicion(ctx, client.ReportSuspicionRequest{Subjects: []protocol.Token{toks[0], toks[2]}, Category: protocol.CategoryIdentityTheft, PoliceReport: report}))
	a.do(a.client.ReportSuspicion(ctx, client.ReportSuspicionRequest{Subjects: toks[2:3], Category: protocol.CategoryMoneyMule, PoliceReport: report}))
	for _, bk := range banks {
		bk.caughtUp(t, hub)
	}
	if adv := a.rep.Lookup(toks[0]); adv.Advice != api.AdviceVerify || len(adv.Suspicions) != 1 {
		t.Fatalf("the reporter, before the erasure: got %s with %d suspicions, want verify with 1", adv, len(adv.Suspicions))
	}
	if adv := b.rep.Lookup(toks[0]); adv.Advice != api.AdviceVerify || len(adv.Suspicions) != 0 {
		t.Fatalf("the other member, before the erasure: got %s with %d suspicions, want verify with none", adv, len(adv.Suspicions))
	}

	erase := func(tok protocol.Token) {
		t.Helper()
		resp := hub.Operator.JSON(t, http.MethodPost, "/v1/admin/erasures", map[string]string{"subject": tok.String(), "legal_basis": "gdpr-art-17"})
		if resp.Status != http.StatusOK {
			t.Fatalf("erasure: got %d %s, want 200", resp.Status, resp.Body)
		}
	}
	erase(toks[0])
	for _, bk := range banks {
		bk.caughtUp(t, hub)
		if adv := bk.rep.Lookup(toks[0]); adv.Advice != api.AdviceNone || adv.Flag != nil || adv.Suspicions != nil {
			t.Errorf("%s, the erased subject: got %s, flag %v, %d suspicions; want nothing held", bk.id, adv, adv.Flag, len(adv.Suspicions))
		}
		bk.converged(t, toks)
	}
	if adv := a.rep.Lookup(toks[2]); len(adv.Suspicions) != 1 || adv.Suspicions[0].Category != protocol.CategoryMoneyMule {
		t.Errorf("the reporter, another subject of the erased suspicion: got %d suspicions, want its own money-mule one", len(adv.Suspicions))
	}

	// toks[2] has a suspicion and no flag: its erasure is bank-a's alone
	// to hear.
	seqB := b.rep.Seq()
	erase(toks[2])
	a.caughtUp(t, hub)
	if adv := a.rep.Lookup(toks[2]); adv.Suspicions != nil {
		t.Errorf("the reporter, the erased subject without a flag: got %d suspicions, want none", len(adv.Suspicions))
	}
	if s := a.rep.Stats(); s.Suspicions != 0 {
		t.Errorf("the reporter holds %d suspicions, want none", s.Suspicions)
	}
	if last := b.lastEvent(t); last > seqB {
		t.Errorf("bank-b's feed has an event %d after the erasure of a subject it had nothing of", last)
	}
	// The files forgot it too: reopened, each replica holds what the hub's
	// snapshot holds.
	for _, bk := range banks {
		bk.reopen(t)
		for _, tok := range []protocol.Token{toks[0], toks[2]} {
			if adv := bk.rep.Lookup(tok); adv.Flag != nil || adv.Suspicions != nil {
				t.Errorf("%s, an erased subject after reopening: got %s, want nothing held", bk.id, adv)
			}
		}
		bk.converged(t, toks)
	}
}
