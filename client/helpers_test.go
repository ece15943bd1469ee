package client_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sparr-dev/sparr/client"
	"github.com/sparr-dev/sparr/protocol"
	"github.com/sparr-dev/sparr/server"
	"github.com/sparr-dev/sparr/server/hubtest"
)

// wait bounds how long a test waits for something that takes milliseconds
// when all is well.
const wait = 20 * time.Second

// fast is a compressed retry schedule for deliveries.
var fast = server.Delivery{
	Schedule: []time.Duration{0, 20 * time.Millisecond, 40 * time.Millisecond, 60 * time.Millisecond},
	Timeout:  2 * time.Second,
}

// pnr is a valid personnummer from protocol/testdata.
const pnr = "19090527+1474"

// newClient returns a client for a member of a test hub.
func newClient(t testing.TB, hub *hubtest.Hub, m *hubtest.Member, change ...func(*client.Config)) *client.Client {
	t.Helper()
	cfg := client.Config{HubURL: hub.URL, MemberID: m.ID, Key: m.Key, Now: hub.Now, Retry: client.Retry{Backoff: 10 * time.Millisecond}}
	for _, f := range change {
		f(&cfg)
	}
	c, err := client.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// consent returns a consent the hub's default policy accepts, collected a
// minute ago by BankID; PlaceFlag fills in the rest.
func consent(now time.Time) *protocol.Consent {
	return &protocol.Consent{
		Collection: protocol.ConsentCollection{Method: "mobile-app", At: protocol.NewNumericDate(now.Add(-time.Minute))},
		Notice:     "https://bank.example/privacy/sparr",
		ExpiresAt:  protocol.NewNumericDate(now.AddDate(2, 0, 0)),
		Evidence:   protocol.ConsentEvidence{AuthenticationMethod: "bankid", AssuranceLevel: "loa3", Reference: "auth-1"},
	}
}

// place places a standard flag on tok.
func place(t testing.TB, c *client.Client, now time.Time, tok protocol.Token) *client.WriteResult {
	t.Helper()
	res, err := c.PlaceFlag(context.Background(), client.PlaceFlagRequest{Subject: tok, Consent: consent(now)})
	if err != nil {
		t.Fatalf("place flag: %v", err)
	}
	return res
}

// counter counts the requests an HTTP client sends, by "METHOD /path", and
// can make chosen requests fail after the hub has answered them.
type counter struct {
	mu    sync.Mutex
	n     map[string]int
	auths []string
	// lose, if set, says whether to drop the answer to a request the hub
	// has handled, as a connection cut after the request would.
	lose func(op string, n int) bool
}

func newCounter() *counter { return &counter{n: map[string]int{}} }

func (c *counter) RoundTrip(req *http.Request) (*http.Response, error) {
	op := req.Method + " " + req.URL.Path
	c.mu.Lock()
	c.n[op]++
	n := c.n[op]
	if a := req.Header.Get("Authorization"); a != "" {
		c.auths = append(c.auths, strings.TrimPrefix(a, "Bearer "))
	}
	lose := c.lose
	c.mu.Unlock()
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err == nil && lose != nil && lose(op, n) {
		resp.Body.Close()
		return nil, errConnectionLost
	}
	return resp, err
}

type lostError struct{}

func (lostError) Error() string { return "connection lost after the request was sent" }

var errConnectionLost error = lostError{}

func (c *counter) count(op string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n[op]
}

func (c *counter) bearers() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.auths...)
}

// events collects what a receiver hands on.
type events struct {
	mu     sync.Mutex
	got    []*client.Event
	notify chan struct{}
	// fail makes the next call fail.
	fail atomic.Bool
}

func newEvents() *events { return &events{notify: make(chan struct{}, 1)} }

func (e *events) handle(_ context.Context, ev *client.Event) error {
	if e.fail.CompareAndSwap(true, false) {
		return errHandler
	}
	e.mu.Lock()
	e.got = append(e.got, ev)
	e.mu.Unlock()
	select {
	case e.notify <- struct{}{}:
	default:
	}
	return nil
}

var errHandler = &handlerError{}

type handlerError struct{}

func (*handlerError) Error() string { return "the member's store is down" }

func (e *events) all() []*client.Event {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]*client.Event(nil), e.got...)
}

// waitFor waits until an event matching match has been handled.
func (e *events) waitFor(t testing.TB, what string, match func(*client.Event) bool) *client.Event {
	t.Helper()
	deadline := time.Now().Add(wait)
	for {
		for _, ev := range e.all() {
			if match(ev) {
				return ev
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %s within %s; got %d events", what, wait, len(e.all()))
		}
		select {
		case <-e.notify:
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func ofType(typ protocol.EventType) func(*client.Event) bool {
	return func(e *client.Event) bool { return e.Type == typ }
}

// startReceiver mounts a receiver for c on a loopback server and returns
// its URL.
func startReceiver(t testing.TB, c *client.Client, handle func(context.Context, *client.Event) error, change ...func(*client.ReceiverConfig)) (string, *client.Receiver) {
	t.Helper()
	cfg := client.ReceiverConfig{Client: c, Handle: handle}
	for _, f := range change {
		f(&cfg)
	}
	rcv, err := client.NewReceiver(cfg)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/sparr/events", rcv)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv.URL + "/sparr/events", rcv
}

// A proxy passes requests on to a real hub, as a load balancer in front of
// it would, counts them by "METHOD /path", and can lose or replace the
// hub's answers.
type proxy struct {
	URL string
	hub string

	mu sync.Mutex
	n  map[string]int
	// fault, if set, says what becomes of the n-th request of op.
	fault func(op string, n int) fault
	// edit, if set, may change the body of a 200 answer to op.
	edit func(op string, body []byte) []byte
	// routes maps paths of the proxy to other paths at the hub.
	routes map[string]string
}

// A fault is what a proxy does to one request.
type fault int

const (
	pass fault = iota
	// lose: the hub answers the request, then the proxy cuts the
	// connection without passing the answer on.
	lose
	// badGateway: the hub answers the request, and the proxy answers 502.
	badGateway
	// busy: the proxy answers 503 with Retry-After: 0 and does not pass
	// the request on.
	busy
	// limited: the proxy answers 429 and does not pass the request on.
	limited
)

func startProxy(t testing.TB, hub *hubtest.Hub) *proxy {
	t.Helper()
	p := &proxy{hub: hub.URL, n: map[string]int{}, routes: map[string]string{}}
	srv := httptest.NewServer(p)
	t.Cleanup(srv.Close)
	p.URL = srv.URL
	return p
}

func (p *proxy) set(fault func(op string, n int) fault) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.fault = fault
}

// spoilNext has the next request of op meet f, and every other pass.
func (p *proxy) spoilNext(op string, f fault) {
	done := false
	p.set(func(o string, _ int) fault {
		if o != op || done {
			return pass
		}
		done = true
		return f
	})
}

func (p *proxy) count(op string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.n[op]
}

func (p *proxy) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	op := req.Method + " " + req.URL.Path
	p.mu.Lock()
	p.n[op]++
	f := pass
	if p.fault != nil {
		f = p.fault(op, p.n[op])
	}
	edit, path := p.edit, req.URL.Path
	if to, ok := p.routes[path]; ok {
		path = to
	}
	p.mu.Unlock()
	switch f {
	case busy:
		w.Header().Set("Retry-After", "0")
		http.Error(w, "upstream busy", http.StatusServiceUnavailable)
		return
	case limited:
		http.Error(w, "slow down", http.StatusTooManyRequests)
		return
	}
	out, err := http.NewRequestWithContext(req.Context(), req.Method, p.hub+path+"?"+req.URL.RawQuery, req.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	out.Header = req.Header.Clone()
	resp, err := http.DefaultTransport.RoundTrip(out)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	switch f {
	case lose:
		if conn, _, err := http.NewResponseController(w).Hijack(); err == nil {
			conn.Close()
		}
		return
	case badGateway:
		http.Error(w, "bad gateway", http.StatusBadGateway)
		return
	}
	if edit != nil && resp.StatusCode == http.StatusOK {
		body = edit(op, body)
	}
	for k, v := range resp.Header {
		if k != "Content-Length" {
			w.Header()[k] = v
		}
	}
	w.WriteHeader(resp.StatusCode)
	w.Write(body)
}
