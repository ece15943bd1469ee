package bench

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sparr-dev/sparr/client"
	"github.com/sparr-dev/sparr/federation/webhook"
	"github.com/sparr-dev/sparr/protocol"
	"github.com/sparr-dev/sparr/protocol/api"
	"github.com/sparr-dev/sparr/server"
	"github.com/sparr-dev/sparr/server/decide"
	"github.com/sparr-dev/sparr/server/keyring"
	"github.com/sparr-dev/sparr/server/store"
)

// A hub is a real hub for a scenario: keys and a bbolt file in a temporary
// directory, the full HTTP API on a loopback port, and the operator's key
// to register members with.
type hub struct {
	dir      string
	url      string
	st       *store.Store
	keys     *keyring.Keys
	hub      *server.Hub
	srv      *http.Server
	operator *member
	client   *http.Client
}

// unlimited lifts the per-member rate limits: a load test measures the hub,
// not its protection against one member.
var unlimited = server.Limits{
	Tokens: server.Rate{PerSecond: 1e9, Burst: 1 << 30}, Writes: server.Rate{PerSecond: 1e9, Burst: 1 << 30},
	Checks: server.Rate{PerSecond: 1e9, Burst: 1 << 30}, Reads: server.Rate{PerSecond: 1e9, Burst: 1 << 30},
}

// startHub starts a hub in a directory of its own below cfg.Dir: its API,
// and its dispatcher and background jobs.
func startHub(cfg *Config) (*hub, error) { return startHubWith(cfg, nil) }

// startHubWith starts a hub as startHub does, with configure's changes
// to its configuration (a jurisdiction, a peer key directory).
func startHubWith(cfg *Config, configure func(*server.Config)) (*hub, error) {
	h, err := newHubWith(cfg, configure)
	if err != nil {
		return nil, err
	}
	if err := h.hub.Start(); err != nil {
		h.close()
		return nil, err
	}
	return h, nil
}

// openHub serves a quiet hub's API in a directory of its own below
// cfg.Dir: its dispatcher is stopped before it ever runs, and its jobs
// never start, so that nothing writes to its store but the requests it is
// sent. Deliveries queue all the same, and stay queued.
func openHub(cfg *Config) (*hub, error) {
	h, err := newHub(cfg)
	if err != nil {
		return nil, err
	}
	h.hub.Close()
	return h, nil
}

// unlimitedQuotas are member quotas no scenario reaches (the highest the
// hub accepts): the bench measures what the hub can do, not what it allows
// one member.
var unlimitedQuotas = api.Quotas{TokensPerSecond: api.MaxTokensPerSecond, TokensPerDay: api.MaxTokensPerDay, StoredBytesPerDay: api.MaxStoredBytesPerDay}

// newHub serves a hub's API in a directory of its own below cfg.Dir; Start
// has not been called.
func newHub(cfg *Config) (*hub, error) { return newHubWith(cfg, nil) }

// newHubWith serves a hub as newHub does, with configure's changes to its
// configuration.
func newHubWith(cfg *Config, configure func(*server.Config)) (*hub, error) {
	dir, err := os.MkdirTemp(cfg.Dir, "hub-")
	if err != nil {
		return nil, err
	}
	var members http.RoundTripper = &http.Transport{MaxIdleConnsPerHost: 256, MaxIdleConns: 1024}
	if cfg.memberTransport != nil {
		members = cfg.memberTransport(members)
	}
	h := &hub{dir: dir, client: &http.Client{Transport: members}}
	if _, err := keyring.Init(filepath.Join(dir, "keys"), keyring.Options{LogOrigin: "bench.sparr.local/log"}); err != nil {
		return nil, err
	}
	if h.keys, err = keyring.Load(filepath.Join(dir, "keys")); err != nil {
		return nil, err
	}
	if h.st, err = store.Open(filepath.Join(dir, "hub.db"), store.Options{}); err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	h.url = "http://" + ln.Addr().String()
	sc := server.Config{
		Issuer: h.url, Store: h.st, Keys: h.keys, Limits: unlimited, Policy: decide.Policy{Quotas: unlimitedQuotas, PayeeBanks: map[string]string{"SE:500": benchHolder}},
		Logger: slog.New(slog.DiscardHandler), AllowInsecureURLs: true, JobInterval: time.Hour,
		Targets: webhook.TargetPolicy{AllowHTTP: true, Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}},
	}
	if configure != nil {
		configure(&sc)
	}
	h.hub, err = server.New(sc)
	if err != nil {
		return nil, err
	}
	h.srv = &http.Server{Handler: h.hub, ReadHeaderTimeout: 10 * time.Second}
	go h.srv.Serve(ln)
	op, err := keyring.LoadOperator(keyring.OperatorKeyPath(filepath.Join(dir, "keys")))
	if err != nil {
		return nil, err
	}
	if h.operator, err = h.newMember(server.OperatorID, op); err != nil {
		return nil, err
	}
	return h, nil
}

// close stops the hub and removes its files.
func (h *hub) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	h.srv.Shutdown(ctx)
	h.hub.Close()
	h.st.Close()
	os.RemoveAll(h.dir)
}

// A member of a scenario's hub, with its own key. Its requests go through
// the member SDK, which reuses a bearer token until shortly before it
// expires, as a real member does.
type member struct {
	id  string
	key *protocol.SigningKey
	hub *hub
	// c is the member's client over the hub's keep-alive transport; it
	// sends each request once.
	c *client.Client
}

// newMember returns the member id with key at h.
func (h *hub) newMember(id string, key *protocol.SigningKey) (*member, error) {
	m := &member{id: id, key: key, hub: h}
	c, err := m.connect(h.client)
	if err != nil {
		return nil, err
	}
	m.c = c
	return m, nil
}

func (h *hub) addMember(id string, roles ...api.Role) (*member, error) {
	key, err := protocol.GenerateSigningKey(protocol.EdDSA, rand.Reader)
	if err != nil {
		return nil, err
	}
	ks, err := protocol.NewKeySet(key.Public())
	if err != nil {
		return nil, err
	}
	jwks, err := ks.MarshalJSON()
	if err != nil {
		return nil, err
	}
	if _, err := h.operator.c.AddMember(context.Background(), api.MemberRequest{ID: id, Name: "Bench member " + id, Roles: roles, JWKS: jwks}); err != nil {
		return nil, fmt.Errorf("add member %s: %w", id, err)
	}
	return h.newMember(id, key)
}

// client returns a member SDK client for the member, with the SDK's
// default retries: what a member's replica runs on.
func (m *member) client() (*client.Client, error) {
	return client.New(client.Config{HubURL: m.hub.url, MemberID: m.id, Key: m.key, HTTPClient: m.hub.client})
}

// connect returns a member SDK client for the member over hc that sends
// each request once: what a load sends its prepared requests with.
func (m *member) connect(hc *http.Client) (*client.Client, error) {
	return client.New(client.Config{HubURL: m.hub.url, MemberID: m.id, Key: m.key, HTTPClient: hc, Retry: client.Retry{Attempts: 1}})
}

// send sends a prepared body to the hub once, exactly as given, through
// c, and returns the answer's body, or an error unless the status is want.
func send(ctx context.Context, c *client.Client, path, contentType string, body []byte, want int) ([]byte, error) {
	resp, err := c.Raw(ctx, client.RawRequest{Method: http.MethodPost, Path: path, ContentType: contentType, Body: body})
	if err != nil {
		return nil, err
	}
	if resp.Status != want {
		return nil, fmt.Errorf("POST %s: %d %s", path, resp.Status, resp.Body)
	}
	return resp.Body, nil
}

// placeFlag signs a place-flag submission for tok, with consent collected
// now, for sending later.
func (m *member) placeFlag(tok protocol.Token) ([]byte, error) {
	now := time.Now()
	s, err := m.c.Sign(context.Background(), protocol.PlaceFlag{Subject: tok, Kind: protocol.FlagKindStandard, Consent: &protocol.Consent{
		ID: newJTI(), Subject: tok, Controller: m.id, Purpose: "identity-fraud-protection", LegalBasis: "gdpr-art-6-1-a",
		Collection: protocol.ConsentCollection{Method: "mobile-app", At: protocol.NewNumericDate(now.Add(-time.Minute))},
		Notice:     "https://" + m.id + ".example/privacy", ExpiresAt: protocol.NewNumericDate(now.AddDate(2, 0, 0)),
		Evidence: protocol.ConsentEvidence{AuthenticationMethod: "bankid", Reference: "bench-" + newJTI()},
	}})
	if err != nil {
		return nil, err
	}
	return s.JWS, nil
}

// place sends a signed placement and returns the hub's answer.
func (m *member) place(ctx context.Context, body []byte) ([]byte, error) {
	return send(ctx, m.c, "/v1/flags", "application/jose", body, http.StatusCreated)
}

// tokens makes n distinct tokens with the hub's own key: a load test needs
// many tokens fast, and the oblivious protocol is its own scenario.
func (h *hub) tokens(prefix string, n int) ([]protocol.Token, error) {
	out := make([]protocol.Token, n)
	var wg sync.WaitGroup
	var firstErr atomic.Value
	sem := make(chan struct{}, 4)
	for i := range n {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			t, err := h.keys.Token.Token(protocol.TypeEmail, fmt.Sprintf("%s%d@bench.example", prefix, i))
			if err != nil {
				firstErr.CompareAndSwap(nil, err)
			}
			out[i] = t
		})
	}
	wg.Wait()
	if err, _ := firstErr.Load().(error); err != nil {
		return nil, err
	}
	return out, nil
}

var jtiSeq atomic.Int64

func newJTI() string {
	var b [6]byte
	rand.Read(b[:])
	return fmt.Sprintf("b%x-%d", b, jtiSeq.Add(1))
}

// A counter is a webhook receiver that acknowledges every delivery and
// records when each delivery (by its webhook-id) first arrived: both the hub
// and the baselines deliver to counters, so both pay the same receiving
// cost.
type counter struct {
	srv    *http.Server
	url    string
	member string
	mu     sync.Mutex
	got    map[string]time.Time
	cond   *sync.Cond
	n      atomic.Int64
}

func newCounter() (*counter, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	c := &counter{got: map[string]time.Time{}, url: "http://" + ln.Addr().String() + "/events"}
	c.cond = sync.NewCond(&c.mu)
	c.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		id := r.Header.Get("webhook-id")
		now := time.Now()
		c.mu.Lock()
		if _, seen := c.got[id]; !seen {
			c.got[id] = now
		}
		c.cond.Broadcast()
		c.mu.Unlock()
		c.n.Add(1)
		w.WriteHeader(http.StatusAccepted)
	})}
	go c.srv.Serve(ln)
	return c, nil
}

// wait blocks until the delivery with webhook-id id has arrived, and
// returns when it did.
func (c *counter) wait(ctx context.Context, timeout time.Duration, id string) (time.Time, error) {
	deadline, stop := c.wakeAt(ctx, timeout)
	defer stop()
	c.mu.Lock()
	defer c.mu.Unlock()
	for {
		if t, ok := c.got[id]; ok {
			return t, nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return time.Time{}, fmt.Errorf("receiver of %s: delivery %s did not arrive within %s", c.member, id, timeout)
		}
		c.cond.Wait()
	}
}

// wakeAt wakes the counter's waiters when timeout has passed or ctx is
// done, and returns the deadline and how to stop the wake-ups.
func (c *counter) wakeAt(ctx context.Context, timeout time.Duration) (time.Time, func()) {
	wake := func() {
		c.mu.Lock()
		c.cond.Broadcast()
		c.mu.Unlock()
	}
	deadline := time.Now().Add(timeout) // before the timer: it fires after the deadline
	timer := time.AfterFunc(timeout, wake)
	stopCtx := context.AfterFunc(ctx, wake)
	return deadline, func() { timer.Stop(); stopCtx() }
}

func (c *counter) close() { c.srv.Close() }
