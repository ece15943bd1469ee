package client_test

import (
	"context"
	"crypto/rand"
	"errors"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/sparr-dev/sparr/client"
	"github.com/sparr-dev/sparr/protocol"
	"github.com/sparr-dev/sparr/protocol/api"
	"github.com/sparr-dev/sparr/server/hubtest"
)

// closedURL returns the URL of a loopback port nothing listens on.
func closedURL(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	u := "http://" + l.Addr().String()
	l.Close()
	return u
}

// silentURL returns the URL of a loopback port that accepts connections
// and never answers, as a paused node does.
func silentURL(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	var conns []net.Conn
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				for _, c := range conns {
					c.Close()
				}
				close(done)
				return
			}
			conns = append(conns, c)
		}
	}()
	t.Cleanup(func() { l.Close(); <-done })
	return "http://" + l.Addr().String()
}

// TestFailoverToAnotherURL: a client given a dead URL first and a real
// hub second does all its calls at the hub, the ones that act anew each
// time (a check) included, since the dead one was never reached; and
// sends the next request straight to the URL that answered.
func TestFailoverToAnotherURL(t *testing.T) {
	ctx := context.Background()
	hub := hubtest.Start(t, hubtest.Options{})
	a := newClient(t, hub, hub.AddMember(t, "bank-a", api.RoleFlag, api.RoleCheck), func(cfg *client.Config) {
		cfg.HubURL = closedURL(t)
		cfg.HubURLs = []string{hub.URL}
	})
	toks, err := a.Tokenize(ctx, protocol.TypeEmail, "failover@example.se")
	if err != nil {
		t.Fatal(err)
	}
	if got := a.HubURLs()[0]; got != hub.URL {
		t.Errorf("after an answer from %s, the first URL is %s", hub.URL, got)
	}
	place(t, a, hub.Now(), toks[0])
	res, err := a.Check(ctx, api.PurposeOther, toks[0])
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Results) != 1 || res.Results[0].Flag == nil {
		t.Errorf("got %+v, want the placed flag", res.Results)
	}

	// Only an empty HubURL with HubURLs: the same.
	b := newClient(t, hub, hub.AddMember(t, "bank-b", api.RoleCheck), func(cfg *client.Config) {
		cfg.HubURL = ""
		cfg.HubURLs = []string{closedURL(t), closedURL(t), hub.URL}
	})
	if _, err := b.Check(ctx, api.PurposeOther, toks[0]); err != nil {
		t.Fatal(err)
	}
}

// TestFailoverOn503: a node that answers 503 (a follower without a
// leader) has the request sent to the next URL at once; a check is sent
// on only because the 503 carries Retry-After, which says the hub did not
// act on it.
func TestFailoverOn503(t *testing.T) {
	ctx := context.Background()
	hub := hubtest.Start(t, hubtest.Options{})
	px := startProxy(t, hub)
	px.set(func(string, int) fault { return busy })
	c := newClient(t, hub, hub.AddMember(t, "bank-a", api.RoleFlag, api.RoleCheck), func(cfg *client.Config) {
		cfg.HubURL = px.URL
		cfg.HubURLs = []string{hub.URL}
		// A backoff a test would notice: the switch must not wait.
		cfg.Retry.Backoff = time.Hour
		cfg.Retry.MaxWait = time.Hour
	})
	if _, err := c.Check(ctx, api.PurposeOther, recordToken("x")); err != nil {
		t.Fatal(err)
	}
	if n := px.count("POST /v1/check"); n != 0 {
		t.Errorf("the failed node saw %d checks after the client moved on, want 0", n)
	}
	if n := px.count("GET /.well-known/sparr-configuration"); n != 1 {
		t.Errorf("the failed node saw %d requests for the configuration, want 1", n)
	}
}

// TestFailoverAfterTimeout: a node that takes the connection and never
// answers is given up after Retry.AttemptTimeout. A read goes on to the
// next URL; a check, which the silent node may have logged, is not sent
// to another and fails with an AttemptTimeoutError.
func TestFailoverAfterTimeout(t *testing.T) {
	ctx := context.Background()
	hub := hubtest.Start(t, hubtest.Options{})
	m := hub.AddMember(t, "bank-a", api.RoleFlag, api.RoleCheck)
	direct := newClient(t, hub, m)
	toks, err := direct.Tokenize(ctx, protocol.TypeEmail, "silent@example.se")
	if err != nil {
		t.Fatal(err)
	}
	flag := place(t, direct, hub.Now(), toks[0])

	silent := silentURL(t)
	c := newClient(t, hub, m, func(cfg *client.Config) {
		cfg.HubURL = silent
		cfg.HubURLs = []string{hub.URL}
		cfg.Retry.AttemptTimeout = 200 * time.Millisecond
	})
	got, err := c.Flag(ctx, flag.Flag.ID)
	if err != nil {
		t.Fatalf("a read with a silent first node: %v", err)
	}
	if got.ID != flag.Flag.ID {
		t.Errorf("got flag %s, want %s", got.ID, flag.Flag.ID)
	}

	// A check at the silent node: the configuration is read from the hub
	// (through the transport), so that the check itself meets the silence.
	c4 := newClient(t, hub, m, func(cfg *client.Config) {
		cfg.HubURL = silent
		cfg.HubURLs = []string{hub.URL}
		cfg.Retry.AttemptTimeout = 200 * time.Millisecond
		cfg.HTTPClient = &http.Client{Transport: &firstConfigured{next: http.DefaultTransport, hub: hub.URL}}
	})
	_, err = c4.Check(ctx, api.PurposeOther, toks[0])
	var te *client.AttemptTimeoutError
	if !errors.As(err, &te) {
		t.Fatalf("a check at a silent node: got %v, want an AttemptTimeoutError", err)
	}
}

// firstConfigured sends requests for the configuration to the hub
// directly and every other request where it is addressed.
type firstConfigured struct {
	next http.RoundTripper
	hub  string
}

func (f *firstConfigured) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL.Path == api.ConfigurationPath {
		r := req.Clone(req.Context())
		u := *req.URL
		hu, _ := http.NewRequest(http.MethodGet, f.hub, nil)
		u.Host = hu.URL.Host
		r.URL = &u
		r.Host = ""
		return f.next.RoundTrip(r)
	}
	return f.next.RoundTrip(req)
}

// TestFailoverRepeatsSubmission: a placement whose answer is lost at one
// node is sent to the next with the same signed bytes; the hub knows its
// jti and answers with the stored outcome, so one flag is placed, not two.
func TestFailoverRepeatsSubmission(t *testing.T) {
	ctx := context.Background()
	hub := hubtest.Start(t, hubtest.Options{})
	px := startProxy(t, hub)
	m := hub.AddMember(t, "bank-a", api.RoleFlag, api.RoleCheck)
	c := newClient(t, hub, m, func(cfg *client.Config) {
		cfg.HubURL = px.URL
		cfg.HubURLs = []string{hub.URL}
	})
	toks, err := c.Tokenize(ctx, protocol.TypeEmail, "once@example.se")
	if err != nil {
		t.Fatal(err)
	}
	px.spoilNext("POST /v1/flags", lose)
	res := place(t, c, hub.Now(), toks[0])
	if n := px.count("POST /v1/flags"); n != 1 {
		t.Fatalf("the first node saw %d placements, want 1", n)
	}
	if res.Existing {
		t.Errorf("the repeat was answered as a second placement on an active flag, not as the stored outcome")
	}
	check, err := c.Check(ctx, api.PurposeOther, toks[0])
	if err != nil {
		t.Fatal(err)
	}
	if fl := check.Results[0].Flag; fl == nil || fl.ID != res.Flag.ID {
		t.Errorf("got flag %+v, want %s", fl, res.Flag.ID)
	}
}

// TestHubURLsChecked: every URL must be a hub URL.
func TestHubURLsChecked(t *testing.T) {
	key, err := protocol.GenerateSigningKey(protocol.EdDSA, rand.Reader)
	if err != nil {
		t.Skip(err)
	}
	for _, urls := range [][]string{{"ftp://x"}, {"http://ok.example", ""}, {"http://h.example/?q=1"}} {
		if _, err := client.New(client.Config{HubURLs: urls, MemberID: "m", Key: key}); err == nil {
			t.Errorf("HubURLs %q: accepted", urls)
		}
	}
	c, err := client.New(client.Config{HubURL: "http://a.example/", HubURLs: []string{"http://a.example", "http://b.example"}, MemberID: "m", Key: key})
	if err != nil {
		t.Fatal(err)
	}
	if got := c.HubURLs(); len(got) != 2 || got[0] != "http://a.example" || got[1] != "http://b.example" {
		t.Errorf("got %q, want the two distinct URLs in order", got)
	}
}
