package server_test

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sparr-dev/sparr/federation/peering"
	"github.com/sparr-dev/sparr/protocol"
	"github.com/sparr-dev/sparr/protocol/api"
	"github.com/sparr-dev/sparr/server"
	"github.com/sparr-dev/sparr/server/hubtest"
)

// gate is a hub's way out to its peers that can be cut, as a hub that is
// down has none, and that notes the cursors it reads peers' feeds from.
type gate struct {
	down     atomic.Bool
	feedDown atomic.Bool // feed requests only
	mu       sync.Mutex
	cursors  []uint64 // the after of each feed request, in order
}

var errGateDown = errors.New("the hub is down")

func (g *gate) RoundTrip(r *http.Request) (*http.Response, error) {
	if g.down.Load() {
		return nil, errGateDown
	}
	if r.URL.Path == peering.FeedPath {
		if g.feedDown.Load() {
			return nil, errGateDown
		}
		after, err := strconv.ParseUint(r.URL.Query().Get("after"), 10, 64)
		if err == nil {
			g.mu.Lock()
			g.cursors = append(g.cursors, after)
			g.mu.Unlock()
		}
	}
	return http.DefaultTransport.RoundTrip(r)
}

// feedReads returns the cursors of the feed requests from the n-th on.
func (g *gate) feedReads(from int) []uint64 {
	g.mu.Lock()
	defer g.mu.Unlock()
	if from >= len(g.cursors) {
		return nil
	}
	return append([]uint64(nil), g.cursors[from:]...)
}

// waitUntil polls cond until it holds, failing the test after timeout.
func waitUntil(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestPeerCatchesUpFromFeed has the Swedish hub down (its receiver
// answers 503, and it reaches no peer) for longer than the Norwegian
// hub's retry schedule: the Norwegian hub pauses its endpoint, while
// flags are placed and lifted there. When the Swedish hub comes back, it
// catches up from the Norwegian feed on its own: its member gets every
// record the home hub still holds for it, each once, and its endpoint at
// the Norwegian hub is active again, so the next record is pushed. After
// a restart on the same data file it reads the feed from the cursor it
// kept.
func TestPeerCatchesUpFromFeed(t *testing.T) {
	g := &gate{}
	logs := new(logBuffer)
	m := startMesh(t, []string{"SE", "NO"}, [][2]string{{"SE", "NO"}}, nil, func(j string, c *server.Config) {
		switch j {
		case "NO":
			c.Delivery = server.Delivery{Schedule: []time.Duration{0, 50 * time.Millisecond, 100 * time.Millisecond}, Timeout: 2 * time.Second}
		case "SE":
			c.PeerClient = &http.Client{Transport: g}
			c.PeerFeedInterval = 50 * time.Millisecond
			c.Logger = slog.New(slog.NewJSONHandler(logs, nil))
		}
	})
	se, no := m.hubs["SE"], m.hubs["NO"]
	target, err := url.Parse(se.URL)
	if err != nil {
		t.Fatal(err)
	}
	proxy := httputil.NewSingleHostReverseProxy(target)
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if g.down.Load() {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(front.Close)
	seAt := m.at["SE"]["NO"]
	ctx := context.Background()
	if _, _, err := seAt.Client().RegisterEndpoint(ctx, front.URL+peering.EventsPath); err != nil {
		t.Fatal(err)
	}
	recvSE := m.receiverAt(t, "SE", "bank-a")
	bankNO := no.AddMember(t, "bank-n", api.RoleFlag)
	endpointStatus := func() api.EndpointStatus {
		ep, err := seAt.Client().Endpoint(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return ep.Status
	}

	g.down.Store(true)
	toks := bankNO.Tokenize(t, protocol.TypeNorwegianNumber, "13097248022", "02013299997")
	kept := place(t, bankNO, toks[0])
	ended := place(t, bankNO, toks[1])
	lift := bankNO.Submit(t, "/v1/flags/"+ended.Flag.FlagID+"/lift", protocol.LiftFlag{FlagID: ended.Flag.FlagID})
	mustStatus(t, lift, http.StatusOK)
	var lifted flagResponse
	lift.JSON(t, &lifted)
	waitUntil(t, 30*time.Second, "the Norwegian hub to pause the Swedish hub's endpoint", func() bool {
		return endpointStatus() == api.EndpointPaused
	})
	received := func() map[string]int {
		n := map[string]int{}
		for _, r := range recvSE.Received() {
			if r.Record.Event.EventType() != protocol.EventVerification {
				n[r.Record.ID]++
			}
		}
		return n
	}
	if n := len(received()); n != 0 {
		t.Fatalf("a Swedish member got %d records while its hub was down", n)
	}

	// Back: no operator does anything.
	g.down.Store(false)
	want := map[string]string{kept.Record: "the placement of the flag kept", lifted.Record: "the lift"}
	idOf := func(jws string) string {
		rec, err := protocol.VerifyRecord([]byte(jws), no.JWKS(t))
		if err != nil {
			t.Fatal(err)
		}
		return rec.ID
	}
	waitUntil(t, 30*time.Second, "the Swedish member to get what the Norwegian hub holds", func() bool {
		got := received()
		for jws := range want {
			if got[idOf(jws)] == 0 {
				return false
			}
		}
		return true
	})
	waitUntil(t, 30*time.Second, "the Swedish hub's endpoint at the Norwegian hub to be active again", func() bool {
		return endpointStatus() == api.EndpointActive
	})

	if !strings.Contains(logs.String(), `"msg":"caught up from a peer's feed","peer":"hub-no","records":2`) {
		t.Errorf("the Swedish hub did not log that it caught up from the feed with 2 records; its logs:\n%s", logs)
	}
	waitUntil(t, 30*time.Second, "the Swedish hub to log that it resumed its endpoint", func() bool {
		return strings.Contains(logs.String(), `"msg":"resumed this hub's endpoint at a peer after catching up from its feed","peer":"hub-no"`)
	})

	// Pushes flow again, and what came both ways came once.
	next := place(t, bankNO, bankNO.Tokenize(t, protocol.TypeNorwegianNumber, "01010050053")[0])
	want[next.Record] = "a placement after the catch-up"
	recvSE.WaitFor(t, 30*time.Second, "the next placement", func(r hubtest.Received) bool { return r.Record.ID == idOf(next.Record) })
	got := received()
	for jws, what := range want {
		if n := got[idOf(jws)]; n != 1 {
			t.Errorf("the Swedish member got %s %d times, want once", what, n)
		}
	}
	if len(got) != len(want) {
		t.Errorf("the Swedish member got %d records, want %d", len(got), len(want))
	}

	// A restart resumes reading the feed where the hub stopped.
	waitUntil(t, 30*time.Second, "the Swedish hub to keep a cursor past the last record", func() bool {
		after, ok, err := se.Store.PeerCursor(hubID("NO"))
		return err == nil && ok && after > 0 && len(g.feedReads(0)) > 0
	})
	se.Restart(t)
	kept2, _, err := se.Store.PeerCursor(hubID("NO"))
	if err != nil {
		t.Fatal(err)
	}
	from := len(g.feedReads(0))
	waitUntil(t, 30*time.Second, "the restarted hub to read the Norwegian feed", func() bool { return len(g.feedReads(from)) > 0 })
	if first := g.feedReads(from)[0]; first < kept2 || kept2 == 0 {
		t.Errorf("after the restart the hub read the feed after %d, want after the cursor it kept (%d)", first, kept2)
	}
	last := place(t, bankNO, bankNO.Tokenize(t, protocol.TypeNorwegianNumber, "53097248016")[0])
	recvSE.WaitFor(t, 30*time.Second, "a placement after the restart", func(r hubtest.Received) bool { return r.Record.ID == idOf(last.Record) })
	want[last.Record] = "a placement after the restart"
	got = received()
	for jws, what := range want {
		if n := got[idOf(jws)]; n != 1 {
			t.Errorf("after the restart, the Swedish member got %s %d times, want once", what, n)
		}
	}
}

// TestPeerFeedCursorExpired has the Swedish hub come back after the
// Norwegian hub dropped from its feed the events after the Swedish hub's
// cursor: the Norwegian answer names the oldest cursor it serves, and
// the Swedish hub reads on from there, and logs it.
func TestPeerFeedCursorExpired(t *testing.T) {
	g := &gate{}
	g.feedDown.Store(true)
	logs := new(logBuffer)
	m := startMesh(t, []string{"SE", "NO"}, [][2]string{{"SE", "NO"}}, nil, func(j string, c *server.Config) {
		switch j {
		case "NO":
			c.Policy.FeedRetention = time.Millisecond
		case "SE":
			c.PeerClient = &http.Client{Transport: g}
			c.PeerFeedInterval = 50 * time.Millisecond
			c.Logger = slog.New(slog.NewJSONHandler(logs, nil))
		}
	})
	se, no := m.hubs["SE"], m.hubs["NO"]
	bankNO := no.AddMember(t, "bank-n", api.RoleFlag)
	recvSE := m.receiverAt(t, "SE", "bank-a")
	place(t, bankNO, bankNO.Tokenize(t, protocol.TypeNorwegianNumber, "13097248022")[0])
	recvSE.WaitFor(t, 30*time.Second, "the placement, pushed", func(r hubtest.Received) bool { return r.Record.Event.EventType() == protocol.EventFlagPlaced })
	time.Sleep(10 * time.Millisecond) // past the Norwegian feed's retention
	if err := no.RunJobs(); err != nil {
		t.Fatal(err)
	}
	floor, err := no.Store.FeedFloor()
	if err != nil || floor == 0 {
		t.Fatalf("the Norwegian feed's floor is %d (%v), want it past 0", floor, err)
	}

	g.feedDown.Store(false)
	waitUntil(t, 30*time.Second, "the Swedish hub to read on from the oldest cursor served", func() bool {
		after, ok, err := se.Store.PeerCursor(hubID("NO"))
		return err == nil && ok && after >= floor
	})
	if reads := g.feedReads(0); len(reads) < 2 || reads[0] != 0 || reads[1] != floor {
		t.Errorf("the Swedish hub read the feed after %v, want after 0, then after %d", reads, floor)
	}
	want := `"msg":"a peer no longer keeps the events after this hub's cursor; reading its feed from the oldest it serves","peer":"hub-no","cursor":0,"oldest":` + strconv.FormatUint(floor, 10)
	if !strings.Contains(logs.String(), want) {
		t.Errorf("the Swedish hub's logs lack %s:\n%s", want, logs)
	}
}

// TestPeerEndpointMissing: a hub with no endpoint at a peer is not
// subscribed there, and Endpoint says so: the hub reads no feed there.
func TestPeerEndpointMissing(t *testing.T) {
	no := hubtest.Start(t, hubtest.Options{Configure: func(c *server.Config) { c.Jurisdiction = "NO" }})
	member := no.AddMember(t, "hub-dk", api.RolePeer)
	p := &peering.Peer{ID: "hub-no", Jurisdiction: "NO", URL: no.URL, Member: "hub-dk", Key: member.Key, Token: no.Configuration().Token}
	if _, err := p.Endpoint(context.Background(), http.DefaultClient, time.Now()); !errors.Is(err, peering.ErrNoEndpoint) {
		t.Errorf("got %v, want ErrNoEndpoint", err)
	}
}
