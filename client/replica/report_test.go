package replica_test

// What a replica holds of suspicions, and how its checks reach the hub's
// exchange log: reported in order, refused checks dropped without holding
// up the others, and kept while the hub cannot be reached.

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"maps"
	"math/bits"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sparr-dev/sparr/client"
	"github.com/sparr-dev/sparr/client/replica"
	"github.com/sparr-dev/sparr/protocol"
	"github.com/sparr-dev/sparr/protocol/api"
	"github.com/sparr-dev/sparr/server/hubtest"
)

// replicaCheckEntries returns member's replica-check entries in the hub's
// exchange log, those of refused reports left out.
func replicaCheckEntries(t *testing.T, hub *hubtest.Hub, member string) []*protocol.LogEntry {
	t.Helper()
	var out []*protocol.LogEntry
	for _, e := range hub.LogEntries(t) {
		if e.Action == protocol.LogReplicaCheck && e.Member == member && e.Result == "ok" {
			out = append(out, e)
		}
	}
	return out
}

// replicaChecksLogged returns how many of member's replica checks the hub
// logged: the sum of its replica-check entries' counts.
func replicaChecksLogged(t *testing.T, hub *hubtest.Hub, member string) int {
	t.Helper()
	n := 0
	for _, e := range replicaCheckEntries(t, hub, member) {
		v, _ := e.Attr("count")
		c, err := strconv.Atoi(v)
		if err != nil {
			t.Fatalf("entry %d: count %q", e.Index, v)
		}
		n += c
	}
	return n
}

// loggedChecks returns the checks the details of a replica-check entry
// list, as the hub keeps them beside its log.
func loggedChecks(t *testing.T, hub *hubtest.Hub, index uint64) ([]api.ReplicaCheck, error) {
	t.Helper()
	d, err := hub.Store.LogDetails(index)
	if err != nil {
		return nil, err
	}
	var details struct {
		Checks []api.ReplicaCheck `json:"checks"`
	}
	if err := json.Unmarshal(d.Details, &details); err != nil {
		t.Fatalf("entry %d's details: %v", index, err)
	}
	return details.Checks, nil
}

// want is a check as the hub should log it.
type want struct {
	tok     protocol.Token
	purpose string
}

// logged checks that the replica-check entry at index lists the checks w,
// in order, at times that do not go back.
func logged(t *testing.T, hub *hubtest.Hub, index uint64, w ...want) {
	t.Helper()
	got, err := loggedChecks(t, hub, index)
	if err != nil {
		t.Fatalf("entry %d's details: %v", index, err)
	}
	var gotS, wantS []string
	for i, c := range got {
		gotS = append(gotS, c.Token+" "+c.Purpose)
		if i > 0 && c.At.Before(got[i-1].At) {
			t.Errorf("entry %d: check %d at %s, before the one before it", index, i, c.At)
		}
	}
	for _, c := range w {
		wantS = append(wantS, c.tok.String()+" "+c.purpose)
	}
	if !slices.Equal(gotS, wantS) {
		t.Errorf("entry %d lists the checks\n%s\nwant\n%s", index, strings.Join(gotS, "\n"), strings.Join(wantS, "\n"))
	}
}

// TestNoSuspicionsOfOthers: a member's replica never holds another
// member's suspicion, neither from the snapshot it starts from nor from
// what is pushed to it, whether it has the suspicion role or not; it holds
// the suspicions it reported itself. The hub's online check answers hits
// of every member's suspicions all the same.
func TestNoSuspicionsOfOthers(t *testing.T) {
	ctx := context.Background()
	hub := suspicionHub(t, hubtest.Options{Delivery: fast})
	a := origin{newBank(t, hub, "bank-a", api.RoleFlag, api.RoleSuspicion, api.RoleCheck), t, hub}
	b := newBank(t, hub, "bank-b", api.RoleCheck)
	c := origin{newBank(t, hub, "bank-c", api.RoleSuspicion, api.RoleCheck), t, hub}
	toks := tokens(t, a.client, "others", 5)
	first := a.do(a.client.ReportSuspicion(ctx, client.ReportSuspicionRequest{Subjects: toks[0:2], Category: protocol.CategoryApplicationFraud, PoliceReport: report}))
	c.do(c.client.ReportSuspicion(ctx, client.ReportSuspicionRequest{Subjects: toks[2:3], Category: protocol.CategoryMoneyMule, PoliceReport: report}))
	a.place(toks[3], time.Time{})

	// holds checks what each replica holds: the flag, and its own
	// suspicions alone.
	holds := func(when string, own map[*bank]int) {
		t.Helper()
		for _, bk := range []*bank{a.bank, b, c.bank} {
			if s := bk.rep.Stats(); s.Suspicions != own[bk] || s.Flags != 1 {
				t.Errorf("%s, %s: holds %d suspicions and %d flags, want its own %d and the flag", when, bk.id, s.Suspicions, s.Flags, own[bk])
			}
			n := 0
			for _, r := range bk.rep.Records() {
				if r.Type == protocol.EventSuspicionReported || r.Type == protocol.EventSuspicionRetracted || r.Type == protocol.EventSuspicionExpired {
					n++
				}
			}
			if n != own[bk] {
				t.Errorf("%s, %s: holds %d suspicion records, want one of each of its own %d", when, bk.id, n, own[bk])
			}
			others := bk.converged(t, toks)
			if bk != a.bank && others == 0 {
				t.Errorf("%s, %s: the hub answered no hit of another member's suspicion; the test proves nothing", when, bk.id)
			}
		}
		if adv := b.rep.Lookup(toks[0]); adv.Advice != api.AdviceNone || adv.Suspicions != nil {
			t.Errorf("%s: bank-b's replica for a token with bank-a's suspicion: %s, %d suspicions; want none", when, adv, len(adv.Suspicions))
		}
	}
	// From the snapshot.
	for _, bk := range []*bank{a.bank, b, c.bank} {
		bk.sync(t)
	}
	holds("bootstrapped", map[*bank]int{a.bank: 1, c.bank: 1})

	// From pushes: suspicions reported and retracted while every member
	// listens, and a flag that every member is pushed.
	for _, bk := range []*bank{a.bank, b, c.bank} {
		bk.listen(t, nil)
	}
	a.do(a.client.ReportSuspicion(ctx, client.ReportSuspicionRequest{Subjects: toks[3:5], Category: protocol.CategoryIdentityTheft, PoliceReport: report}))
	a.do(a.client.RetractSuspicion(ctx, first.Suspicion.ID, protocol.RetractCaseClosed))
	c.do(c.client.ReportSuspicion(ctx, client.ReportSuspicionRequest{Subjects: toks[4:5], Category: protocol.CategoryOther, PoliceReport: report}))
	f := a.place(toks[1], time.Time{})
	for _, bk := range []*bank{a.bank, b, c.bank} {
		bk.caughtUp(t, hub)
		if bk.rep.Seq() < f.Seq {
			t.Fatalf("%s's replica is at %d, before the last flag's %d", bk.id, bk.rep.Seq(), f.Seq)
		}
	}
	a.do(a.client.LiftFlag(ctx, f.Flag.ID)) // back to one flag
	for _, bk := range []*bank{a.bank, b, c.bank} {
		bk.caughtUp(t, hub)
	}
	holds("after pushes", map[*bank]int{a.bank: 1, c.bank: 2})
}

// TestChecksReportedAndErased: a replica's checks reach the hub's log as
// one replica-check entry per report, with their count, tokens, purposes
// and times in order; lookups do not; the regulator's reconciliation
// counts them; and a lift of the flag erases the entry's details, as it
// does an online check's.
func TestChecksReportedAndErased(t *testing.T) {
	ctx := context.Background()
	hub := hubtest.Start(t, hubtest.Options{})
	a := origin{newBank(t, hub, "bank-a", api.RoleFlag, api.RoleCheck), t, hub}
	b := newBank(t, hub, "bank-b", api.RoleCheck)
	regulator := hub.AddMember(t, "fi", api.RoleRegulator).Client()
	toks := tokens(t, a.client, "logged", 2)
	f := a.place(toks[0], time.Time{})
	b.sync(t)

	if adv := b.rep.Check(api.PurposeCreditApplication, toks[0]); adv.Advice != api.AdviceVerify {
		t.Errorf("check of the flagged token: %s, want verify", adv)
	}
	b.rep.Check(api.PurposePayment, toks[1])
	b.rep.Check(api.PurposePayment, toks[0])
	b.rep.Lookup(toks[0])
	b.rep.Lookup(toks[1])
	if s := b.rep.Stats(); s.ChecksUnreported != 3 || s.ChecksReported != 0 {
		t.Errorf("before reporting: %d checks unreported, %d reported; want 3 and 0", s.ChecksUnreported, s.ChecksReported)
	}
	if n := len(replicaCheckEntries(t, hub, b.id)); n != 0 {
		t.Fatalf("%d replica-check entries before the report, want none", n)
	}
	if err := b.rep.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if s := b.rep.Stats(); s.ChecksUnreported != 0 || s.ChecksReported != 3 {
		t.Errorf("after reporting: %d checks unreported, %d reported; want 0 and 3", s.ChecksUnreported, s.ChecksReported)
	}
	entries := replicaCheckEntries(t, hub, b.id)
	if len(entries) != 1 {
		t.Fatalf("got %d replica-check entries, want 1", len(entries))
	}
	e := entries[0]
	if n, _ := e.Attr("count"); n != "3" || e.Result != "ok" {
		t.Errorf("the entry: count %s, result %s; want 3, ok", n, e.Result)
	}
	logged(t, hub, e.Index, want{toks[0], api.PurposeCreditApplication}, want{toks[1], api.PurposePayment}, want{toks[0], api.PurposePayment})
	// A second flush with nothing to report sends nothing.
	if err := b.rep.Flush(ctx); err != nil || len(replicaCheckEntries(t, hub, b.id)) != 1 {
		t.Errorf("an empty flush: %v, %d entries; want nothing sent", err, len(replicaCheckEntries(t, hub, b.id)))
	}

	st, err := regulator.AuditStats(ctx, client.AuditFilter{Member: b.id})
	if err != nil {
		t.Fatal(err)
	}
	day := hub.Now().UTC().Format(time.DateOnly)
	if r := st.Reconciliation[b.id][day]; r == nil || r.ReplicaChecked != 3 {
		t.Errorf("the regulator's reconciliation of bank-b today: %+v, want 3 replica checks", r)
	}

	a.do(a.client.LiftFlag(ctx, f.Flag.ID))
	if _, err := loggedChecks(t, hub, e.Index); err == nil {
		t.Error("the reported checks' details survived the lift of their subject's flag")
	}
	if got := replicaCheckEntries(t, hub, b.id); len(got) != 1 || got[0].Index != e.Index {
		t.Errorf("after the lift: %d replica-check entries, want the entry kept, its details gone", len(got))
	}
}

// A gateway stands between a member and its hub, as a load balancer does,
// and counts the reports of replica checks it sees. While the hub is
// down, it answers 502 Bad Gateway, or cuts the connection, without
// passing the request on.
type gateway struct {
	*httptest.Server
	mode    atomic.Int32
	reports atomic.Int32
	// In mode hubSlow, a report is held: held gets a value when it
	// arrives, and release lets it go on, to a 502.
	held, release chan struct{}
}

// The modes of a gateway.
const (
	hubUp int32 = iota
	hubDown502
	hubDownCut
	hubSlow
	// hubUnnamed passes requests on, and strips from the hub's problems
	// the fields at fault, as a proxy that rewrites errors would.
	hubUnnamed
	// hubDotted passes requests on, and turns the JSON Pointers of the
	// hub's problems (/checks/3/purpose) into the dotted paths that hubs
	// before them sent (checks[3].purpose).
	hubDotted
)

// jsonPointerIndex is an array index in a JSON Pointer, for hubDotted.
var jsonPointerIndex = regexp.MustCompile(`/(\d+)`)

func startGateway(t *testing.T, hub *hubtest.Hub) *gateway {
	t.Helper()
	target, err := url.Parse(hub.URL)
	if err != nil {
		t.Fatal(err)
	}
	px := httputil.NewSingleHostReverseProxy(target)
	g := &gateway{held: make(chan struct{}), release: make(chan struct{})}
	g.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		report := req.URL.Path == "/v1/checks/replica"
		if report {
			g.reports.Add(1)
		}
		switch g.mode.Load() {
		case hubSlow:
			if report {
				g.held <- struct{}{}
				<-g.release
			}
			http.Error(w, "no backend is up", http.StatusBadGateway)
			return
		case hubDown502:
			http.Error(w, "no backend is up", http.StatusBadGateway)
			return
		case hubDownCut:
			conn, _, err := w.(http.Hijacker).Hijack()
			if err == nil {
				conn.Close()
			}
			return
		case hubUnnamed, hubDotted:
			rec := httptest.NewRecorder()
			px.ServeHTTP(rec, req)
			var p map[string]any
			if rec.Code >= 400 && json.Unmarshal(rec.Body.Bytes(), &p) == nil {
				if g.mode.Load() == hubUnnamed {
					delete(p, "errors")
				}
				fields, _ := p["errors"].([]any)
				for _, f := range fields {
					if f, ok := f.(map[string]any); ok {
						ptr, _ := f["pointer"].(string)
						ptr = jsonPointerIndex.ReplaceAllString(strings.TrimPrefix(ptr, "/"), "[$1]")
						f["pointer"] = strings.ReplaceAll(ptr, "/", ".")
					}
				}
				w.Header().Set("Content-Type", rec.Header().Get("Content-Type"))
				w.WriteHeader(rec.Code)
				json.NewEncoder(w).Encode(p)
				return
			}
			maps.Copy(w.Header(), rec.Header())
			w.WriteHeader(rec.Code)
			w.Write(rec.Body.Bytes())
			return
		}
		px.ServeHTTP(w, req)
	}))
	t.Cleanup(g.Close)
	return g
}

// behind returns a bank whose client and replica reach the hub through g,
// with cfg's MaxUnreported.
func behind(t *testing.T, hub *hubtest.Hub, g *gateway, id string, maxUnreported int) *bank {
	t.Helper()
	m := hub.AddMember(t, id, api.RoleCheck)
	c, err := client.New(client.Config{HubURL: g.URL, MemberID: id, Key: m.Key, Now: hub.Now, Retry: client.Retry{Backoff: 10 * time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	b := &bank{id: id, client: c, path: filepath.Join(t.TempDir(), id+".db"), now: hub.Now, logs: &logBuffer{}}
	r, err := replica.Open(b.path, replica.Config{Client: c, Now: hub.Now, MaxUnreported: maxUnreported, Logger: slog.New(slog.NewTextHandler(b.logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	b.rep = r
	t.Cleanup(func() { b.rep.Close() })
	return b
}

// TestRefusedReportDoesNotWedge: a check the hub refuses (an unknown
// purpose, a token of another epoch) is dropped and logged, and the
// report's other checks are logged; a report the hub refuses check after
// check is dropped whole after a few tries; and the checks after it are
// reported as usual.
func TestRefusedReportDoesNotWedge(t *testing.T) {
	ctx := context.Background()
	hub := hubtest.Start(t, hubtest.Options{})
	a := origin{newBank(t, hub, "bank-a", api.RoleFlag, api.RoleCheck), t, hub}
	g := startGateway(t, hub)
	b := behind(t, hub, g, "bank-b", 0)
	toks := tokens(t, a.client, "refused", 2)
	a.place(toks[0], time.Time{})
	b.sync(t)
	stale := toks[1]
	stale.Epoch++

	b.rep.Check(api.PurposePayment, toks[0])
	b.rep.Check("curiosity", toks[0])
	b.rep.Check(api.PurposePayment, stale)
	b.rep.Check(api.PurposeAddressChange, toks[1])
	if err := b.rep.Flush(ctx); err != nil {
		t.Fatalf("flush: %v, want the refused checks dropped", err)
	}
	if s := b.rep.Stats(); s.ChecksReported != 2 || s.ChecksRefused != 2 || s.ChecksUnreported != 0 {
		t.Errorf("got %d checks reported, %d refused, %d unreported; want 2, 2, 0", s.ChecksReported, s.ChecksRefused, s.ChecksUnreported)
	}
	if n := g.reports.Load(); n != 2 {
		t.Errorf("got %d reports sent, want 2: one refused naming both bad checks, one logged", n)
	}
	entries := replicaCheckEntries(t, hub, b.id)
	if len(entries) != 1 {
		t.Fatalf("got %d replica-check entries, want 1", len(entries))
	}
	logged(t, hub, entries[0].Index, want{toks[0], api.PurposePayment}, want{toks[1], api.PurposeAddressChange})
	if logs := b.logs.String(); !strings.Contains(logs, "refused a report of checks") || !strings.Contains(logs, "curiosity") || strings.Contains(logs, stale.String()) {
		t.Errorf("the replica did not log the refused checks by purpose, or logged a token; it logged:\n%s", logs)
	}

	// Most checks refused: the good one is reported all the same.
	for i := range 6 {
		b.rep.Check(fmt.Sprintf("guess-%d", i), toks[0])
	}
	b.rep.Check(api.PurposePayment, toks[1])
	before := g.reports.Load()
	if err := b.rep.Flush(ctx); err != nil {
		t.Fatalf("flush: %v, want the refused checks dropped", err)
	}
	if n := g.reports.Load() - before; n != 2 {
		t.Errorf("six bad checks and a good one: sent %d reports, want 2 (one refusal naming the six, one logged)", n)
	}
	if s := b.rep.Stats(); s.ChecksReported != 3 || s.ChecksRefused != 8 || s.ChecksUnreported != 0 {
		t.Errorf("got %d checks reported, %d refused, %d unreported; want 3, 8, 0", s.ChecksReported, s.ChecksRefused, s.ChecksUnreported)
	}

	// A refusal that names no check (a proxy rewrote it) is narrowed down
	// by halves: a report with a few bad checks among good ones loses
	// only the bad ones.
	g.mode.Store(hubUnnamed)
	const all = 300
	good := 0
	for i := range all {
		if i%40 == 7 {
			b.rep.Check("curiosity", toks[1])
			continue
		}
		b.rep.Check(api.PurposeCreditApplication, toks[i%2])
		good++
	}
	before = g.reports.Load()
	if err := b.rep.Flush(ctx); err != nil {
		t.Fatalf("flush: %v, want the refused checks dropped", err)
	}
	g.mode.Store(hubUp)
	bad := all - good
	if s := b.rep.Stats(); s.ChecksReported != uint64(3+good) || s.ChecksRefused != uint64(8+bad) || s.ChecksUnreported != 0 {
		t.Errorf("refusals naming no check: got %d checks reported, %d refused, %d unreported; want %d, %d, 0", s.ChecksReported, s.ChecksRefused, s.ChecksUnreported, 3+good, 8+bad)
	}
	n := g.reports.Load() - before
	t.Logf("%d bad checks among %d, refused without naming them: found in %d reports", bad, good+bad, n)
	// Each bad check costs at most two reports per halving of a report.
	if limit := int32(bad * 2 * (bits.Len(all) + 1)); n > limit {
		t.Errorf("narrowing down %d bad checks took %d reports, want at most %d", bad, n, limit)
	}

	// Nothing is wedged.
	b.rep.Check(api.PurposeCardIssuance, toks[0])
	if err := b.rep.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if s := b.rep.Stats(); s.ChecksReported != uint64(4+good) || s.ChecksUnreported != 0 {
		t.Errorf("the next check: %d reported, %d unreported; want %d and 0", s.ChecksReported, s.ChecksUnreported, 4+good)
	}
	if got := replicaChecksLogged(t, hub, b.id); got != 4+good {
		t.Errorf("the hub logged %d of bank-b's replica checks, want %d", got, 4+good)
	}

	// A hub before JSON Pointers named the checks at fault with dotted
	// paths (checks[1].purpose): they name them just as well.
	g.mode.Store(hubDotted)
	b.rep.Check(api.PurposePayment, toks[0])
	b.rep.Check("curiosity", toks[1])
	b.rep.Check(api.PurposePayment, toks[1])
	before = g.reports.Load()
	if err := b.rep.Flush(ctx); err != nil {
		t.Fatalf("flush: %v, want the refused check dropped", err)
	}
	g.mode.Store(hubUp)
	if n := g.reports.Load() - before; n != 2 {
		t.Errorf("a refusal naming checks[1].purpose: sent %d reports, want 2 (one refused, one logged)", n)
	}
	if s := b.rep.Stats(); s.ChecksReported != uint64(6+good) || s.ChecksRefused != uint64(9+bad) || s.ChecksUnreported != 0 {
		t.Errorf("a refusal naming checks[1].purpose: got %d checks reported, %d refused, %d unreported; want %d, %d, 0", s.ChecksReported, s.ChecksRefused, s.ChecksUnreported, 6+good, 9+bad)
	}
}

// TestHubDownKeepsChecks: while the hub cannot be reached (its gateway
// answers 502, or cuts the connection), reports fail and every check stays
// queued, up to Config.MaxUnreported, beyond which checks are answered,
// counted and logged as dropped; once the hub is back, the queued checks
// are reported, in order, once.
func TestHubDownKeepsChecks(t *testing.T) {
	ctx := context.Background()
	hub := hubtest.Start(t, hubtest.Options{})
	a := origin{newBank(t, hub, "bank-a", api.RoleFlag, api.RoleCheck), t, hub}
	g := startGateway(t, hub)
	b := behind(t, hub, g, "bank-b", 3)
	toks := tokens(t, a.client, "down", 2)
	a.place(toks[0], time.Time{})
	b.sync(t)
	reported, dropped := uint64(0), uint64(0)
	for _, down := range []struct {
		name string
		mode int32
	}{{"502", hubDown502}, {"connection cut", hubDownCut}} {
		g.mode.Store(down.mode)
		if adv := b.rep.Check(api.PurposeCreditApplication, toks[0]); adv.Advice != api.AdviceVerify {
			t.Errorf("%s: a check while the hub is down: %s, want verify", down.name, adv)
		}
		b.rep.Check(api.PurposePayment, toks[1])
		if err := b.rep.Flush(ctx); err == nil {
			t.Fatalf("%s: flush with the hub down: no error", down.name)
		}
		if s := b.rep.Stats(); s.ChecksUnreported != 2 || s.ChecksReported != reported {
			t.Errorf("%s: after a failed report: %d unreported, %d reported; want 2, %d", down.name, s.ChecksUnreported, s.ChecksReported, reported)
		}
		b.rep.Check(api.PurposeCardIssuance, toks[0])
		if adv := b.rep.Check(api.PurposeOther, toks[0]); adv.Advice != api.AdviceVerify {
			t.Errorf("%s: a check with the queue full: %s, want verify all the same", down.name, adv)
		}
		dropped++
		if err := b.rep.Flush(ctx); err == nil {
			t.Fatalf("%s: flush with the hub down: no error", down.name)
		}
		if s := b.rep.Stats(); s.ChecksUnreported != 3 || s.ChecksDropped != dropped {
			t.Errorf("%s: with the queue full: %d unreported, %d dropped; want 3, %d", down.name, s.ChecksUnreported, s.ChecksDropped, dropped)
		}
		if n := len(replicaCheckEntries(t, hub, b.id)); uint64(n) != reported/3 {
			t.Fatalf("%s: the hub logged %d reports while it was down", down.name, n)
		}

		g.mode.Store(hubUp)
		if err := b.rep.Flush(ctx); err != nil {
			t.Fatalf("%s: flush with the hub back: %v", down.name, err)
		}
		reported += 3
		if s := b.rep.Stats(); s.ChecksUnreported != 0 || s.ChecksReported != reported {
			t.Errorf("%s: with the hub back: %d unreported, %d reported; want 0, %d", down.name, s.ChecksUnreported, s.ChecksReported, reported)
		}
		entries := replicaCheckEntries(t, hub, b.id)
		if uint64(len(entries)) != reported/3 {
			t.Fatalf("%s: got %d replica-check entries, want %d", down.name, len(entries), reported/3)
		}
		logged(t, hub, entries[len(entries)-1].Index,
			want{toks[0], api.PurposeCreditApplication}, want{toks[1], api.PurposePayment}, want{toks[0], api.PurposeCardIssuance})
	}
	if !strings.Contains(b.logs.String(), "queue of unreported checks was full") {
		t.Errorf("the replica did not log the checks it dropped; it logged:\n%s", b.logs)
	}
}

// TestReportUnderWay: checks taken by a report that is under way still
// count against Config.MaxUnreported, since they go back to the queue if
// the report fails; and they go back in front of the checks made
// meanwhile, so that the hub logs every check in the order made.
func TestReportUnderWay(t *testing.T) {
	ctx := context.Background()
	hub := hubtest.Start(t, hubtest.Options{})
	a := origin{newBank(t, hub, "bank-a", api.RoleFlag, api.RoleCheck), t, hub}
	g := startGateway(t, hub)
	b := behind(t, hub, g, "bank-b", 3)
	toks := tokens(t, a.client, "underway", 1)
	b.sync(t)
	b.rep.Check(api.PurposePayment, toks[0])
	b.rep.Check(api.PurposeAccountOpening, toks[0])
	g.mode.Store(hubSlow)
	flushed := make(chan error, 1)
	go func() { flushed <- b.rep.Flush(ctx) }()
	<-g.held
	b.rep.Check(api.PurposeAddressChange, toks[0])
	b.rep.Check(api.PurposeOther, toks[0])
	if s := b.rep.Stats(); s.ChecksUnreported != 3 || s.ChecksDropped != 1 {
		t.Errorf("checks during a report: %d unreported, %d dropped; want 3 (2 in the report) and 1", s.ChecksUnreported, s.ChecksDropped)
	}
	close(g.release)
	if err := <-flushed; err == nil {
		t.Fatal("a report answered 502: no error")
	}
	g.mode.Store(hubUp)
	if err := b.rep.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if s := b.rep.Stats(); s.ChecksReported != 3 || s.ChecksUnreported != 0 {
		t.Errorf("with the hub back: %d reported, %d unreported; want 3 and 0", s.ChecksReported, s.ChecksUnreported)
	}
	entries := replicaCheckEntries(t, hub, b.id)
	if len(entries) != 1 {
		t.Fatalf("got %d replica-check entries, want 1", len(entries))
	}
	logged(t, hub, entries[0].Index, want{toks[0], api.PurposePayment}, want{toks[0], api.PurposeAccountOpening}, want{toks[0], api.PurposeAddressChange})
}

// TestReportsInBatches: a flush reports everything queued, in reports of
// at most api.MaxReplicaChecks checks, in order.
func TestReportsInBatches(t *testing.T) {
	hub := hubtest.Start(t, hubtest.Options{})
	b := newBank(t, hub, "bank-b", api.RoleCheck)
	toks := tokens(t, b.client, "batches", 2)
	b.sync(t)
	const n = 2*api.MaxReplicaChecks + 1
	for i := range n {
		b.rep.Check(api.PurposePayment, toks[i%2])
	}
	if err := b.rep.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if s := b.rep.Stats(); s.ChecksReported != n || s.ChecksUnreported != 0 {
		t.Errorf("got %d checks reported, %d unreported; want %d and 0", s.ChecksReported, s.ChecksUnreported, n)
	}
	var counts []string
	for _, e := range replicaCheckEntries(t, hub, b.id) {
		c, _ := e.Attr("count")
		counts = append(counts, c)
	}
	if want := []string{"1000", "1000", "1"}; !slices.Equal(counts, want) {
		t.Errorf("got reports of %v checks, want %v", counts, want)
	}
}
