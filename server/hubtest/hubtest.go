// Package hubtest starts real hubs for tests: a real bbolt file in a
// temporary directory, real keys, the real HTTP API on a loopback port, and
// members that sign their requests with real keys. Nothing is mocked.
package hubtest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/sparr-dev/sparr/federation/webhook"
	"github.com/sparr-dev/sparr/protocol"
	"github.com/sparr-dev/sparr/protocol/api"
	"github.com/sparr-dev/sparr/server"
	"github.com/sparr-dev/sparr/server/decide"
	"github.com/sparr-dev/sparr/server/keyring"
	"github.com/sparr-dev/sparr/server/store"
)

// A Clock is a settable clock for the hub.
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

// NewClock returns a clock stopped at t.
func NewClock(t time.Time) *Clock { return &Clock{t: t} }

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Advance moves the clock on.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// Options change how a test hub is made.
type Options struct {
	// Policy and Limits as in server.Config.
	Policy decide.Policy
	Limits server.Limits
	// Clock, if set, is the hub's clock; otherwise the real one.
	Clock *Clock
	// Algorithm of the record-signing key; default EdDSA.
	Algorithm protocol.Algorithm
	// Delivery configures webhook delivery; tests compress its schedule.
	Delivery server.Delivery
	// Configure, if set, may change the configuration before the hub is made.
	Configure func(*server.Config)
}

// A Hub is a running test hub.
type Hub struct {
	*server.Hub
	URL      string
	Dir      string
	Store    *store.Store
	Keys     *keyring.Keys
	Operator *Member
	opts     Options
	srv      *httptest.Server
	t        testing.TB
}

var ginQuiet sync.Once

// Start starts a hub and stops it when the test ends.
func Start(t testing.TB, opts Options) *Hub {
	t.Helper()
	// gin prints every route in its default debug mode; tests want quiet.
	ginQuiet.Do(func() { gin.SetMode(gin.ReleaseMode) })
	dir := t.TempDir()
	if _, err := keyring.Init(filepath.Join(dir, "keys"), keyring.Options{Algorithm: opts.Algorithm, LogOrigin: "hubtest.example/log"}); err != nil {
		t.Fatal(err)
	}
	h := &Hub{Dir: dir, opts: opts, t: t}
	h.srv = httptest.NewUnstartedServer(http.NotFoundHandler())
	h.srv.Start()
	h.URL = h.srv.URL
	h.open(t)
	t.Cleanup(h.shut)
	op, err := keyring.LoadOperator(keyring.OperatorKeyPath(filepath.Join(dir, "keys")))
	if err != nil {
		t.Fatal(err)
	}
	h.Operator = &Member{ID: server.OperatorID, Key: op, hub: h}
	return h
}

// open opens the store and makes the hub over it.
func (h *Hub) open(t testing.TB) {
	t.Helper()
	keys, err := keyring.Load(filepath.Join(h.Dir, "keys"))
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(filepath.Join(h.Dir, "hub.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	cfg := server.Config{
		Issuer: h.URL, Store: st, Keys: keys, Policy: h.opts.Policy, Limits: h.opts.Limits,
		AllowInsecureURLs: true, JobInterval: time.Hour, Delivery: h.opts.Delivery,
		// Receivers in tests listen on loopback over plain HTTP.
		Targets: webhook.TargetPolicy{AllowHTTP: true, Allow: []netip.Prefix{
			netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}},
	}
	if h.opts.Clock != nil {
		cfg.Now = h.opts.Clock.Now
	}
	if h.opts.Configure != nil {
		h.opts.Configure(&cfg)
	}
	hub, err := server.New(cfg)
	if err != nil {
		st.Close()
		t.Fatal(err)
	}
	h.Hub, h.Store, h.Keys = hub, st, keys
	h.srv.Config.Handler = hub
	if err := hub.Start(); err != nil {
		t.Fatal(err)
	}
}

func (h *Hub) shut() {
	if h.Hub != nil {
		h.Hub.Close()
		h.Store.Close()
		h.Hub = nil
	}
	h.srv.Close()
}

// Restart closes the hub and its store and opens both again on the same
// files, at the same URL, as a process restart would.
func (h *Hub) Restart(t testing.TB) {
	t.Helper()
	h.Hub.Close()
	if err := h.Store.Close(); err != nil {
		t.Fatal(err)
	}
	h.open(t)
}

// Offline closes the hub and its store, lets fn change the data file at
// path (to play an attacker with access to the disk), and starts the hub
// again on it.
func (h *Hub) Offline(t testing.TB, fn func(path string)) {
	t.Helper()
	h.Hub.Close()
	if err := h.Store.Close(); err != nil {
		t.Fatal(err)
	}
	fn(filepath.Join(h.Dir, "hub.db"))
	h.open(t)
}

// Now returns the hub's time.
func (h *Hub) Now() time.Time {
	if h.opts.Clock != nil {
		return h.opts.Clock.Now()
	}
	return time.Now()
}

// A Member is a member of a test hub with its own signing key.
type Member struct {
	ID  string
	Key *protocol.SigningKey
	hub *Hub

	mu        sync.Mutex
	bearer    string
	bearerExp time.Time
}

// AddMember registers a member with the given roles and a new key.
func (h *Hub) AddMember(t testing.TB, id string, roles ...api.Role) *Member {
	t.Helper()
	key, err := protocol.GenerateSigningKey(protocol.EdDSA, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	jwks, _ := json.Marshal(map[string]any{"keys": []*protocol.PublicKey{key.Public()}})
	body, _ := json.Marshal(map[string]any{"id": id, "name": "Test member " + id, "roles": roles, "jwks": json.RawMessage(jwks)})
	resp := h.Operator.Do(t, http.MethodPost, "/v1/admin/members", "application/json", body)
	if resp.Status != http.StatusCreated {
		t.Fatalf("add member %s: %d %s", id, resp.Status, resp.Body)
	}
	return &Member{ID: id, Key: key, hub: h}
}

// A Response is a test request's answer.
type Response struct {
	Status int
	Header http.Header
	Body   []byte
}

// JSON decodes the body into v.
func (r *Response) JSON(t testing.TB, v any) {
	t.Helper()
	if err := json.Unmarshal(r.Body, v); err != nil {
		t.Fatalf("decode %s: %v", r.Body, err)
	}
}

// Problem decodes a problem document, failing the test if it is not one.
func (r *Response) Problem(t testing.TB) *protocol.Problem {
	t.Helper()
	if ct := r.Header.Get("Content-Type"); ct != protocol.ProblemContentType {
		t.Fatalf("Content-Type %q, want %s; body %s", ct, protocol.ProblemContentType, r.Body)
	}
	p := new(protocol.Problem)
	r.JSON(t, p)
	return p
}

// Bearer returns a bearer token for the member, minting a new one when
// the last is within a minute of expiry, as a real member would.
func (m *Member) Bearer(t testing.TB) string {
	t.Helper()
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.hub.Now()
	if m.bearer != "" && now.Add(time.Minute).Before(m.bearerExp) && !now.Before(m.bearerExp.Add(-protocol.MaxBearerLifetime)) {
		return m.bearer
	}
	tok, err := protocol.NewBearer(m.Key, m.ID, m.hub.URL, now, protocol.MaxBearerLifetime)
	if err != nil {
		t.Fatal(err)
	}
	m.bearer, m.bearerExp = tok, now.Add(protocol.MaxBearerLifetime)
	return tok
}

// Do sends a request with the member's bearer token (none for a nil
// member).
func (m *Member) Do(t testing.TB, method, path, contentType string, body []byte) *Response {
	t.Helper()
	var h *Hub
	if m != nil {
		h = m.hub
	}
	return doRequest(t, h, m, method, path, contentType, body)
}

// Anonymous sends a request without a bearer token.
func (h *Hub) Anonymous(t testing.TB, method, path, contentType string, body []byte) *Response {
	t.Helper()
	return doRequest(t, h, nil, method, path, contentType, body)
}

func doRequest(t testing.TB, h *Hub, m *Member, method, path, contentType string, body []byte) *Response {
	t.Helper()
	if h == nil {
		h = m.hub
	}
	req, err := http.NewRequestWithContext(context.Background(), method, h.URL+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if m != nil {
		req.Header.Set("Authorization", "Bearer "+m.Bearer(t))
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return &Response{Status: resp.StatusCode, Header: resp.Header, Body: b}
}

// JSON sends v as a JSON body.
func (m *Member) JSON(t testing.TB, method, path string, v any) *Response {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return m.Do(t, method, path, "application/json", b)
}

// Sign signs a submission of req with a new jti.
func (m *Member) Sign(t testing.TB, req protocol.Request) []byte {
	t.Helper()
	jws, err := protocol.SignSubmission(&protocol.Submission{
		Issuer: m.ID, Audience: m.hub.URL, IssuedAt: m.hub.Now(), ID: newJTI(), Request: req,
	}, m.Key)
	if err != nil {
		t.Fatal(err)
	}
	return jws
}

// Submit signs req and posts it to path.
func (m *Member) Submit(t testing.TB, path string, req protocol.Request) *Response {
	t.Helper()
	return m.Do(t, http.MethodPost, path, "application/jose", m.Sign(t, req))
}

// Tokenize turns canonical identifiers into tokens through the hub's
// oblivious evaluation.
func (m *Member) Tokenize(t testing.TB, typ protocol.IdentifierType, values ...string) []protocol.Token {
	t.Helper()
	var cfg api.Configuration
	resp := m.hub.Anonymous(t, http.MethodGet, "/.well-known/sparr-configuration", "", nil)
	resp.JSON(t, &cfg)
	client, err := protocol.NewTokenClient(cfg.Token)
	if err != nil {
		t.Fatal(err)
	}
	blinding, req, err := client.Blind(typ, values...)
	if err != nil {
		t.Fatal(err)
	}
	r := m.JSON(t, http.MethodPost, "/v1/tokens", req)
	if r.Status != http.StatusOK {
		t.Fatalf("tokens: %d %s", r.Status, r.Body)
	}
	var ev protocol.TokenResponse
	r.JSON(t, &ev)
	toks, err := client.Finalize(blinding, &ev)
	if err != nil {
		t.Fatal(err)
	}
	return toks
}

// Consent returns a consent the default policy accepts, collected now by
// the member for subject.
func (m *Member) Consent(subject protocol.Token) *protocol.Consent {
	now := m.hub.Now()
	return &protocol.Consent{
		ID: newJTI(), Subject: subject, Controller: m.ID,
		Purpose: "identity-fraud-protection", LegalBasis: "gdpr-art-6-1-a",
		Collection: protocol.ConsentCollection{Method: "mobile-app", At: protocol.NewNumericDate(now.Add(-time.Minute))},
		Notice:     "https://" + m.ID + ".example/privacy/sparr",
		ExpiresAt:  protocol.NewNumericDate(now.AddDate(6, 0, 0)),
		Evidence:   protocol.ConsentEvidence{AuthenticationMethod: "bankid", AssuranceLevel: "loa3", Reference: "auth-" + newJTI()},
	}
}

// JWKS fetches and parses the hub's published keys.
func (h *Hub) JWKS(t testing.TB) *protocol.KeySet {
	t.Helper()
	resp := h.Anonymous(t, http.MethodGet, "/.well-known/jwks.json", "", nil)
	ks, err := protocol.ParseKeySet(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return ks
}

// Snapshot returns every key and value of the store except the exchange
// log (its entries, details, Merkle hashes and checkpoints) and its clock,
// as "bucket/key" → value: what a refused request must leave exactly as it
// was. The index of entries by subject is in it: a refusal's entry names
// no subject. [Hub.Dump] has the whole store.
func (h *Hub) Snapshot(t testing.TB) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := h.Store.Walk(func(bucket string, k, v []byte) error {
		switch {
		case bucket == "log", bucket == "log_details", bucket == "log_hashes", bucket == "checkpoints",
			bucket == "meta" && string(k) == "log_time":
			return nil
		}
		out[bucket+"/"+string(k)] = string(v)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// A Dump is the whole store: every bucket's keys and values, the exchange
// log's included, and every bucket's sequence counter.
type Dump struct {
	Buckets   map[string]map[string]string // bucket → key → value
	Sequences map[string]uint64            // bucket → sequence
}

// Dump returns the whole store, for tests that account for every byte a
// request changed.
func (h *Hub) Dump(t testing.TB) *Dump {
	t.Helper()
	d := &Dump{Buckets: map[string]map[string]string{}}
	err := h.Store.Walk(func(bucket string, k, v []byte) error {
		if d.Buckets[bucket] == nil {
			d.Buckets[bucket] = map[string]string{}
		}
		d.Buckets[bucket][string(k)] = string(v)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if d.Sequences, err = h.Store.Sequences(); err != nil {
		t.Fatal(err)
	}
	return d
}

// LogEntries returns the parsed exchange log.
func (h *Hub) LogEntries(t testing.TB) []*protocol.LogEntry {
	t.Helper()
	n, err := h.Store.LogSize()
	if err != nil {
		t.Fatal(err)
	}
	lines, err := h.Store.LogEntries(0, n)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]*protocol.LogEntry, len(lines))
	for i, l := range lines {
		if out[i], err = protocol.ParseLogEntry(l); err != nil {
			t.Fatalf("log entry %d: %v", i, err)
		}
	}
	return out
}

var jtiCounter struct {
	sync.Mutex
	n int
}

func newJTI() string {
	var b [8]byte
	rand.Read(b[:])
	jtiCounter.Lock()
	jtiCounter.n++
	n := jtiCounter.n
	jtiCounter.Unlock()
	return fmt.Sprintf("t%x-%d", b, n)
}
