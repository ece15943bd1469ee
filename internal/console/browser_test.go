package console_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"filippo.io/torchwood"
	"github.com/chromedp/chromedp"
	"golang.org/x/mod/sumdb/note"

	"github.com/sparr-dev/sparr/client"
	"github.com/sparr-dev/sparr/internal/console"
	"github.com/sparr-dev/sparr/protocol"
	"github.com/sparr-dev/sparr/protocol/api"
	"github.com/sparr-dev/sparr/server"
	"github.com/sparr-dev/sparr/server/hubtest"
)

var screenshots = flag.String("screenshots", "", "write the console's screenshots (PNG) into this directory")

// An exchange is a real hub with real members that did things through
// the SDK, a witness that cosigns its checkpoints (through a proxy in
// front of the hub, as a witness's cosignatures would be served), and
// the figures the charts must show, counted from the hub's own store.
type exchange struct {
	hub       *hubtest.Hub
	regulator *hubtest.Member
	logKey    note.Verifier
	witness   note.Verifier
	cosigner  *torchwood.CosignatureSigner
	clock     *hubtest.Clock
	entries   []*protocol.LogEntry
}

func newExchange(t *testing.T) *exchange {
	t.Helper()
	ctx := context.Background()
	// The clock starts now, so that the receiver takes the deliveries of
	// the first day; on the second, nothing is delivered.
	clock := hubtest.NewClock(time.Now())
	hub := hubtest.Start(t, hubtest.Options{Clock: clock, Delivery: server.Delivery{Schedule: []time.Duration{0, 20 * time.Millisecond}, Timeout: 500 * time.Millisecond}})
	x := &exchange{hub: hub, clock: clock}
	x.regulator = hub.AddMember(t, "finansinspektionen", api.RoleRegulator)
	bankA := hub.AddMember(t, "bank-a", api.RoleFlag, api.RoleCheck)
	bankB := hub.AddMember(t, "bank-b", api.RoleCheck)
	prober := hub.AddMember(t, "bank-c", api.RoleCheck)
	r := hub.NewReceiver(t, bankB)
	r.Register(t)
	r.WaitEvent(t, 10*time.Second, protocol.EventVerification)

	// Day 1: bank-a protects three consumers; bank-b checks them.
	toks := bankA.Tokenize(t, protocol.TypePersonalNumber, "190905271474", "200002292399", "198112189876")
	var flags []string
	for _, tok := range toks {
		w, err := bankA.Client().PlaceFlag(ctx, client.PlaceFlagRequest{Subject: tok, Consent: bankA.Consent(tok)})
		if err != nil {
			t.Fatal(err)
		}
		flags = append(flags, w.Flag.ID)
	}
	btoks := bankB.Tokenize(t, protocol.TypePersonalNumber, "190905271474", "200002292399")
	for i, purpose := range []string{"credit-application", "credit-application", "account-opening"} {
		res, err := bankB.Client().Check(ctx, purpose, btoks[i%2])
		if err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			if _, err := bankB.Client().ReportOutcome(ctx, res.ID, "verified"); err != nil {
				t.Fatal(err)
			}
		}
	}
	if _, err := bankA.Client().LiftFlag(ctx, flags[2]); err != nil {
		t.Fatal(err)
	}
	r.WaitEvent(t, 10*time.Second, protocol.EventFlagLifted)
	waitDeliveries(t, hub, 5)
	// Day 2: bank-c tokenizes far more than it checks.
	clock.Advance(24 * time.Hour)
	var many []string
	for i := range 40 {
		many = append(many, fmt.Sprintf("probe%d@example.se", i))
	}
	ptoks := prober.Tokenize(t, protocol.TypeEmail, many...)
	if _, err := prober.Client().Check(ctx, "payment", ptoks[0]); err != nil {
		t.Fatal(err)
	}
	if _, err := bankA.Client().Check(ctx, "account-opening", toks[0]); err != nil {
		t.Fatal(err)
	}
	if _, err := hub.PublishCheckpoint(); err != nil {
		t.Fatal(err)
	}
	x.entries = hub.LogEntries(t)

	var err error
	if x.logKey, err = protocol.NewLogVerifier(hub.Keys.LogVerifier); err != nil {
		t.Fatal(err)
	}
	_, wkey, _ := ed25519.GenerateKey(rand.Reader)
	if x.cosigner, err = torchwood.NewCosignatureSigner("witness.example/w1", wkey); err != nil {
		t.Fatal(err)
	}
	if x.witness, err = console.ParseWitnessKey(x.cosigner.Verifier().String()); err != nil {
		t.Fatal(err)
	}
	return x
}

// waitDeliveries waits until the log holds at least n delivery entries.
func waitDeliveries(t *testing.T, hub *hubtest.Hub, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		got := 0
		for _, e := range hub.LogEntries(t) {
			if e.Action == protocol.LogDelivery {
				got++
			}
		}
		if got >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d deliveries logged, want %d", got, n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// proxy puts a reverse proxy in front of the hub that appends the
// witness's cosignature to every checkpoint, and, if tamper is set, flips
// a byte of the entry line in the inclusion proof of that entry.
func (x *exchange) proxy(t *testing.T, tamper *uint64) string {
	t.Helper()
	u, _ := url.Parse(x.hub.URL)
	p := httputil.NewSingleHostReverseProxy(u)
	p.ModifyResponse = func(resp *http.Response) error {
		if resp.StatusCode != http.StatusOK {
			return nil
		}
		path := resp.Request.URL.Path
		var body []byte
		switch {
		case path == "/v1/log/checkpoint":
			b, _ := io.ReadAll(resp.Body)
			n, err := note.Open(b, note.VerifierList(x.logKey))
			if err != nil {
				return err
			}
			if body, err = note.Sign(n, x.cosigner); err != nil {
				return err
			}
		case path == "/v1/log/proof/inclusion" && tamper != nil && resp.Request.URL.Query().Get("index") == strconv.FormatUint(*tamper, 10):
			b, _ := io.ReadAll(resp.Body)
			var a api.ProofResponse
			if err := json.Unmarshal(b, &a); err != nil {
				return err
			}
			a.Entry = strings.Replace(a.Entry, "credit-application", "credit-applicatiom", 1)
			body, _ = json.Marshal(a)
		default:
			return nil
		}
		resp.Body = io.NopCloser(bytes.NewReader(body))
		resp.ContentLength = int64(len(body))
		resp.Header.Set("Content-Length", strconv.Itoa(len(body)))
		return nil
	}
	srv := httptest.NewServer(p)
	t.Cleanup(srv.Close)
	return srv.URL
}

// console starts a console reading the hub through hubURL, and returns
// the URL that opens it.
func (x *exchange) console(t *testing.T, hubURL string) string {
	t.Helper()
	c, err := client.New(client.Config{HubURL: hubURL, MemberID: x.regulator.ID, Key: x.regulator.Key, Now: x.hub.Now})
	if err != nil {
		t.Fatal(err)
	}
	con, err := console.New(console.Config{Client: c, HubURL: hubURL, LogKey: x.logKey, Witnesses: []note.Verifier{x.witness}, Quorum: 1, Now: x.hub.Now})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(con.Handler())
	t.Cleanup(srv.Close)
	return srv.URL + "/login?token=" + con.Token()
}

// browser starts headless Chromium, or skips the test without one unless
// SPARR_REQUIRE_BROWSER=1.
func browser(t *testing.T) context.Context {
	t.Helper()
	path := os.Getenv("SPARR_CHROMIUM")
	if path == "" {
		path, _ = exec.LookPath("chromium")
	}
	if path == "" {
		if os.Getenv("SPARR_REQUIRE_BROWSER") == "1" {
			t.Fatal("SPARR_REQUIRE_BROWSER=1 but no chromium on PATH: apt-get install chromium (as .ci/run does)")
		}
		t.Skip("no chromium on PATH: the console's browser tests need it (apt-get install chromium); set SPARR_REQUIRE_BROWSER=1 to make this a failure")
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(path), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun,
		chromedp.Flag("disable-quic", true), chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true), chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()), chromedp.WindowSize(1200, 900),
	}
	actx, cancel := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancel)
	ctx, cancel2 := chromedp.NewContext(actx)
	t.Cleanup(cancel2)
	ctx, cancel3 := context.WithTimeout(ctx, 2*time.Minute)
	t.Cleanup(cancel3)
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	return ctx
}

// do runs steps in the browser.
func do(t *testing.T, ctx context.Context, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	if err := chromedp.Do(ctx, steps...); err != nil {
		t.Fatal(err)
	}
}

// eval evaluates js in the page and returns its value.
func eval[T any](t *testing.T, ctx context.Context, js string, opts ...chromedp.EvaluateOption) T {
	t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](js, opts...))
	if err != nil {
		t.Fatalf("%s: %v", js, err)
	}
	return v
}

// text returns the text of the node sel selects.
func text(t *testing.T, ctx context.Context, sel string) string {
	t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Text(sel))
	if err != nil {
		t.Fatalf("%s: %v", sel, err)
	}
	return v
}

// bars reads a chart's bars out of the page: the sum of data-value by
// series (or by category, with byCategory).
func bars(t *testing.T, ctx context.Context, chart string, byCategory bool) map[string]float64 {
	t.Helper()
	key := "series"
	if byCategory {
		key = "category"
	}
	js := fmt.Sprintf(`(() => { const m = {}; for (const r of document.querySelectorAll('svg#%s rect[data-value]')) { const k = r.dataset.%s; m[k] = (m[k] || 0) + Number(r.dataset.value); } return m; })()`, chart, key)
	return eval[map[string]float64](t, ctx, js)
}

func TestConsoleInBrowser(t *testing.T) {
	ctx := browser(t)
	x := newExchange(t)
	open := x.console(t, x.proxy(t, nil))

	// Expected figures, from the hub's own store.
	want := map[string]float64{}
	var lastSize uint64 = uint64(len(x.entries))
	checksBy := map[string]int{}
	for _, e := range x.entries {
		if e.Result != "ok" {
			continue
		}
		switch e.Action {
		case protocol.LogFlagPlaced, protocol.LogFlagLifted:
			want[strings.TrimPrefix(string(e.Action), "flag-")]++
		case protocol.LogCheck:
			p, _ := e.Attr("purpose")
			want[e.Member+" · "+p]++
			checksBy[e.Member]++
		case protocol.LogDelivery:
			want["deliveries"]++
		}
	}

	// The overview: the log's size, the witness's cosignature, the members.
	do(t, ctx, chromedp.Navigate(open), chromedp.WaitVisible("#log-size"))
	size := text(t, ctx, "#log-size")
	sigs := eval[string](t, ctx, `[...document.querySelectorAll('#signatures tr[data-kind]')].map(r => r.dataset.kind + ':' + r.dataset.verified).join(' ')`)
	members := eval[string](t, ctx, `[...document.querySelectorAll('#members tr[data-member]')].map(r => r.dataset.member + '=' + r.querySelector('[data-state]').dataset.state + '/' + r.querySelector('[data-delivered]').dataset.delivered).join(' ')`)
	if size != fmt.Sprintf("%d entries", lastSize) {
		t.Errorf("log size %q, want %d entries", size, lastSize)
	}
	if sigs != "log:true witness:true" {
		t.Errorf("signatures %q, want the log's and the witness's, verified", sigs)
	}
	if !strings.Contains(members, "bank-b=active/"+strconv.Itoa(int(want["deliveries"]))) || !strings.Contains(members, "bank-a=no endpoint/0") {
		t.Errorf("members %q, want bank-b active with %v deliveries, bank-a without an endpoint", members, want["deliveries"])
	}

	// The charts, read out of the SVG in the browser.
	do(t, ctx, chromedp.Navigate(strings.Replace(open, "/login?", "/charts?", 1)), chromedp.WaitVisible("svg#checks"))
	checks := bars(t, ctx, "checks", false)
	for _, s := range []string{"bank-b · credit-application", "bank-b · account-opening", "bank-c · payment", "bank-a · account-opening"} {
		if checks[s] != want[s] || want[s] == 0 {
			t.Errorf("checks chart: %s %v, want %v (chart %v)", s, checks[s], want[s], checks)
		}
	}
	flags := bars(t, ctx, "flags", false)
	if flags["placed"] != 3 || flags["lifted"] != 1 || want["placed"] != 3 {
		t.Errorf("flags chart %v, want 3 placed and 1 lifted", flags)
	}
	recon := bars(t, ctx, "reconciliation", true)
	if recon["bank-c"] != 41 { // 40 tokenized + 1 checked
		t.Errorf("reconciliation chart %v, want bank-c's 40 tokenized and 1 checked", recon)
	}
	marked := eval[string](t, ctx, `[...document.querySelectorAll('svg#reconciliation text.marked')].map(e => e.textContent).join(' ')`)
	if marked != "⚠ bank-c" {
		t.Errorf("members marked far off the baseline: %q, want bank-c only", marked)
	}
	outcomes := bars(t, ctx, "outcomes", false)
	if outcomes["outcome reported"] != 1 || outcomes["no outcome reported"] != float64(checksBy["bank-a"]+checksBy["bank-b"]+checksBy["bank-c"]-1) {
		t.Errorf("outcomes chart %v, want 1 reported of %v checks", outcomes, checksBy)
	}
	if lat := bars(t, ctx, "latency", false); lat["deliveries"] != want["deliveries"] {
		t.Errorf("latency chart %v, want %v deliveries", lat, want["deliveries"])
	}
	titles := eval[int](t, ctx, `[...document.querySelectorAll('svg.chart')].filter(s => s.querySelector('title') && s.querySelector('desc') && s.getAttribute('role') === 'img').length`)
	if titles != 5 {
		t.Errorf("%d charts with a role, title and description, want 5", titles)
	}

	// The log browser: a filter narrows it, every entry verified.
	do(t, ctx,
		chromedp.Navigate(strings.Replace(open, "/login?", "/log?", 1)),
		chromedp.WaitVisible("#member"),
		chromedp.SendKeys("#member", "bank-b"),
		chromedp.SendKeys("#action", "check"),
		chromedp.Click("#apply"),
		chromedp.WaitVisible(`#entries caption[data-member="bank-b"]`),
	)
	rows := eval[int](t, ctx, `document.querySelectorAll('#entries tr[data-index]').length`)
	verified := eval[int](t, ctx, `document.querySelectorAll('#entries tr[data-index][data-member="bank-b"][data-action="check"][data-status="verified"]').length`)
	if rows != checksBy["bank-b"] || verified != rows {
		t.Errorf("filtered log: %d rows, %d verified, want bank-b's %d checks, all verified", rows, verified, checksBy["bank-b"])
	}

	// The export, downloaded by the page's link, verifies offline.
	bundle := eval[string](t, ctx, `fetch(document.querySelector('#export').href).then(r => r.text())`, chromedp.EvalAwaitPromise)
	b, err := console.ParseBundle([]byte(bundle))
	if err != nil {
		t.Fatalf("the export: %v\n%s", err, bundle)
	}
	rep, err := b.Verify(x.logKey, []note.Verifier{x.witness}, 1)
	if err != nil || len(rep.Entries) != checksBy["bank-b"] {
		t.Errorf("the export verified %v entries (%v), want bank-b's %d checks", len(rep.Entries), err, checksBy["bank-b"])
	}
	if *screenshots != "" {
		shoot(t, ctx, open, *screenshots)
	}
}

// TestConsoleShowsTampering: a hub whose served entry differs from the one
// its checkpoint commits to shows as failed verification.
func TestConsoleShowsTampering(t *testing.T) {
	ctx := browser(t)
	x := newExchange(t)
	var target uint64
	for _, e := range x.entries {
		if p, _ := e.Attr("purpose"); e.Member == "bank-b" && p == "credit-application" {
			target = e.Index
			break
		}
	}
	open := x.console(t, x.proxy(t, &target))
	do(t, ctx,
		chromedp.Navigate(open),
		chromedp.WaitVisible("#log-size"),
		chromedp.Navigate(strings.Replace(open, "/login?", "/log?member=bank-b&", 1)),
		chromedp.WaitVisible("#entries"),
	)
	status := eval[string](t, ctx, fmt.Sprintf(`document.querySelector('#entries tr[data-index="%d"]').dataset.status`, target))
	alert := eval[string](t, ctx, `document.querySelector('#failed-count')?.textContent ?? ''`)
	if status != "failed" || !strings.Contains(alert, "VERIFICATION FAILED for 1 entry") {
		t.Errorf("tampered entry %d: status %q, alert %q; want failed", target, status, alert)
	}
	if *screenshots != "" {
		png := filepath.Join(*screenshots, "console-tampered.png")
		buf, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(png, buf, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// shoot writes the screenshots of docs/regulator.md.
func shoot(t *testing.T, ctx context.Context, open, dir string) {
	t.Helper()
	for _, s := range []struct{ name, path string }{{"overview", "/"}, {"charts", "/charts"}, {"log", "/log"}} {
		do(t, ctx, chromedp.Navigate(open), chromedp.Navigate(strings.Replace(open, "/login?token=", s.path+"?x=", 1)), chromedp.WaitVisible("main"))
		buf, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "console-"+s.name+".png"), buf, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
