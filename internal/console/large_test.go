package console_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/sparr-dev/sparr/client"
	"github.com/sparr-dev/sparr/internal/console"
	"github.com/sparr-dev/sparr/protocol"
	"github.com/sparr-dev/sparr/protocol/api"
	"github.com/sparr-dev/sparr/server/hubtest"
	"github.com/sparr-dev/sparr/server/state"
)

// TestOpenLargeLog measures how long the console takes to open — the
// overview rendered, its checkpoint, last entry and charts' window
// verified — over a log of SPARR_CONSOLE_ENTRIES entries (skipped without
// it), written straight through the hub's store over 30 days:
//
//	SPARR_CONSOLE_ENTRIES=1000000 go test ./internal/console -run TestOpenLargeLog -v -timeout 30m
func TestOpenLargeLog(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("SPARR_CONSOLE_ENTRIES"))
	if n <= 0 {
		t.Skip("set SPARR_CONSOLE_ENTRIES=1000000 to measure the console over a large log")
	}
	// The hub's clock starts before the first entry, goes to now once
	// they are written, and then keeps up with the real one, which its
	// rate limits refill by.
	now := time.Now().UTC()
	clock := hubtest.NewClock(now.Add(-31 * 24 * time.Hour))
	hub := hubtest.Start(t, hubtest.Options{Clock: clock})
	begin := time.Now()
	first := now.Add(-30 * 24 * time.Hour)
	step := 30 * 24 * time.Hour / time.Duration(n)
	members := []string{"bank-a", "bank-b", "bank-c", "bank-d"}
	purposes := []string{"credit-application", "account-opening", "payment"}
	var wg sync.WaitGroup
	const workers = 64
	errs := make(chan error, workers)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += workers {
				m := members[i%len(members)]
				e := state.Entry{Action: protocol.LogCheck, Attrs: []protocol.LogAttr{{Key: "purpose", Value: purposes[i%3]}, {Key: "tokens", Value: "1"}, {Key: "verify", Value: "0"}, {Key: "review", Value: "0"}}}
				switch i % 10 {
				case 7:
					e = state.Entry{Action: protocol.LogTokens, Attrs: []protocol.LogAttr{{Key: "type", Value: "pnr"}, {Key: "count", Value: "2"}, {Key: "epoch", Value: "1"}}}
				case 8:
					e = state.Entry{Action: protocol.LogDelivery, Attrs: []protocol.LogAttr{{Key: "event", Value: strconv.Itoa(i)}, {Key: "attempts", Value: "1"}, {Key: "latency_ms", Value: strconv.Itoa(i % 300)}}}
				case 9:
					e = state.Entry{Action: protocol.LogFlagPlaced}
				}
				if _, err := hub.Store.Apply(&state.Note{Head: state.Head{At: first.Add(time.Duration(i) * step), Actor: m, Entry: e}}); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	clock.Advance(31 * 24 * time.Hour)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	go func() {
		for range tick.C {
			clock.Advance(10 * time.Millisecond)
		}
	}()
	if _, err := hub.PublishCheckpoint(); err != nil {
		t.Fatal(err)
	}
	size, _ := hub.Store.LogSize()
	t.Logf("wrote %d entries in %s", size, time.Since(begin).Round(time.Millisecond))

	key, _ := protocol.NewLogVerifier(hub.Keys.LogVerifier)
	for _, days := range []int{1, 30} {
		// A regulator of its own for each, whose client waits out the
		// hub's rate limit as sparr console's does.
		reg := hub.AddMember(t, "regulator-"+strconv.Itoa(days), api.RoleRegulator)
		c, err := client.New(client.Config{HubURL: hub.URL, MemberID: reg.ID, Key: reg.Key, Now: hub.Now,
			Retry: client.Retry{Attempts: 5, Backoff: time.Second, MaxWait: time.Minute, AnsweredOnly: true}})
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		con, err := console.New(console.Config{Client: c, LogKey: key, Witnesses: []note.Verifier{}, Now: hub.Now, Days: days})
		if err != nil {
			t.Fatal(err)
		}
		srv := httptest.NewServer(con.Handler())
		jar := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		resp, err := jar.Get(srv.URL + "/login?token=" + con.Token())
		if err != nil {
			t.Fatal(err)
		}
		cookie := resp.Cookies()[0]
		get := func(path string) string {
			req, _ := http.NewRequestWithContext(context.Background(), http.MethodGet, srv.URL+path, nil)
			req.AddCookie(cookie)
			resp, err := jar.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("%s: %d\n%s", path, resp.StatusCode, b)
			}
			return string(b)
		}
		page := get("/")
		opened := time.Since(start)
		if !strings.Contains(page, fmt.Sprintf("%d entries", size)) || !strings.Contains(page, "proof verified") || !strings.Contains(page, "each checked against the checkpoint's tree") {
			t.Fatalf("the overview does not show the log verified")
		}
		t0 := time.Now()
		get("/log?member=bank-b")
		logPage := time.Since(t0)
		t0 = time.Now()
		get("/charts")
		charts := time.Since(t0)
		t.Logf("charts window of %d days: overview opened (checkpoint, last entry and window verified) in %s; a log page of 50 entries, each proved, in %s; charts (window cached) in %s",
			days, opened.Round(time.Millisecond), logPage.Round(time.Millisecond), charts.Round(time.Millisecond))
		srv.Close()
	}
}
