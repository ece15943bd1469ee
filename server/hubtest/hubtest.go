// Package hubtest starts real hubs for tests: a real bbolt file in a
// temporary directory, real keys, the real HTTP API on a loopback port, and
// members that sign their requests with real keys. Nothing is mocked.
//
// A [Member] calls the hub through the member SDK (package client), as a
// bank does: its bearer tokens, submissions, token evaluations and raw
// requests are the SDK's. Its client sends every request once, so that a
// test sees each answer exactly as the hub gave it.
package hubtest

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/sparr-dev/sparr/client"
	"github.com/sparr-dev/sparr/federation/webhook"
	"github.com/sparr-dev/sparr/protocol"
	"github.com/sparr-dev/sparr/protocol/api"
	"github.com/sparr-dev/sparr/server"
	"github.com/sparr-dev/sparr/server/cluster"
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
	// LastCheckpoint keeps the hub's last checkpoint in Dir/last-checkpoint,
	// as sparr serve does, so that the hub refuses a data file that does
	// not extend it.
	LastCheckpoint bool

	// node, set by StartCluster, makes the hub one node of a cluster.
	node *nodeOptions
}

// A Hub is a running test hub.
type Hub struct {
	*server.Hub
	// Node is the hub's cluster node; nil but for StartCluster's hubs.
	Node     *cluster.Node
	URL      string
	Dir      string
	Store    *store.Store
	Keys     *keyring.Keys
	Operator *Member
	opts     Options
	running  atomic.Bool // the hub is started
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
	h.setOperator(t)
	return h
}

func (h *Hub) setOperator(t testing.TB) {
	op, err := keyring.LoadOperator(keyring.OperatorKeyPath(filepath.Join(h.Dir, "keys")))
	if err != nil {
		t.Fatal(err)
	}
	h.Operator = h.Member(server.OperatorID, op)
}

// policy is the test's policy. Quotas it leaves zero are generous, so that
// tests that tokenize and check much do not trip over a member's quota;
// tests of the quotas set them.
func (h *Hub) policy() decide.Policy {
	p := h.opts.Policy
	if p.Quotas == (api.Quotas{}) {
		p.Quotas = api.Quotas{TokensPerSecond: 1e5, TokensPerDay: 1e8, StoredBytesPerDay: 1 << 40}
	}
	return p
}

// open opens the store and makes the hub over it.
func (h *Hub) open(t testing.TB) {
	t.Helper()
	if err := h.tryOpen(); err != nil {
		t.Fatal(err)
	}
}

// tryOpen opens the store and makes the hub over it; on failure the store
// is closed again and the hub left stopped.
func (h *Hub) tryOpen() error {
	keys, err := keyring.Load(filepath.Join(h.Dir, "keys"))
	if err != nil {
		return err
	}
	st, err := store.Open(filepath.Join(h.Dir, "hub.db"), store.Options{})
	if err != nil {
		return err
	}
	cfg := server.Config{
		Issuer: h.URL, Store: st, Keys: keys, Policy: h.policy(), Limits: h.opts.Limits,
		AllowInsecureURLs: true, JobInterval: time.Hour, PeerFeedInterval: time.Hour, Delivery: h.opts.Delivery,
		// Receivers in tests listen on loopback over plain HTTP.
		Targets: webhook.TargetPolicy{AllowHTTP: true, Allow: []netip.Prefix{
			netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}},
	}
	if h.opts.Clock != nil {
		cfg.Now = h.opts.Clock.Now
	}
	if h.opts.LastCheckpoint {
		cfg.LastCheckpoint = filepath.Join(h.Dir, "last-checkpoint")
	}
	if h.opts.Configure != nil {
		h.opts.Configure(&cfg)
	}
	var node *cluster.Node
	if n := h.opts.node; n != nil {
		node, err = cluster.New(cluster.Config{
			NodeID: n.id, RaftAddr: n.raftAddr, Dir: filepath.Join(h.Dir, "raft"), Store: st,
			Bootstrap: n.servers, Fast: true, SnapshotThreshold: n.snapshotThreshold, TrailingLogs: n.trailingLogs,
		})
		if err != nil {
			st.Close()
			return err
		}
		cfg.Issuer, cfg.Cluster, cfg.ClusterURLs = n.issuer, node, n.urls
	}
	hub, err := server.New(cfg)
	if err != nil {
		if node != nil {
			node.Shutdown()
		}
		st.Close()
		return err
	}
	h.Hub, h.Store, h.Keys, h.Node = hub, st, keys, node
	h.running.Store(true)
	h.srv.Config.Handler = hub
	return hub.Start()
}

func (h *Hub) shut() {
	h.stop()
	h.srv.Close()
}

// stop closes the hub, its node and its store.
func (h *Hub) stop() {
	if h.Hub == nil {
		return
	}
	h.running.Store(false)
	h.Hub.Close()
	if h.Node != nil {
		h.Node.Shutdown()
		h.Node = nil
	}
	h.Store.Close()
	h.Hub = nil
}

// Restart closes the hub and its store and opens both again on the same
// files, at the same URL, as a process restart would.
func (h *Hub) Restart(t testing.TB) {
	t.Helper()
	h.Hub.Close()
	if h.Node != nil {
		if err := h.Node.Shutdown(); err != nil {
			t.Fatal(err)
		}
		h.Node = nil
	}
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
	if err := h.TryOffline(t, fn); err != nil {
		t.Fatal(err)
	}
}

// TryOffline is Offline, returning the error of starting the hub again
// (server.New's, say) instead of failing the test. On an error the hub
// stays stopped, and the next Offline or TryOffline starts it.
func (h *Hub) TryOffline(t testing.TB, fn func(path string)) error {
	t.Helper()
	if h.Hub != nil {
		h.Hub.Close()
		if err := h.Store.Close(); err != nil {
			t.Fatal(err)
		}
		h.Hub = nil
	}
	fn(filepath.Join(h.Dir, "hub.db"))
	return h.tryOpen()
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

	mu     sync.Mutex
	client *client.Client
}

// Member returns the member id, which signs with key, at h: a member
// registered some other way than [Hub.AddMember] (by a key set URL, say),
// or one the hub has never heard of.
func (h *Hub) Member(id string, key *protocol.SigningKey) *Member {
	return &Member{ID: id, Key: key, hub: h}
}

// Client returns the member's SDK client for the hub, made on first use:
// on the hub's clock, sending every request once (Retry.Attempts 1), and
// remembering no tokens, so that every Tokenize is evaluated by the hub.
func (m *Member) Client() *client.Client {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.client == nil {
		c, err := client.New(client.Config{
			HubURL: m.hub.URL, MemberID: m.ID, Key: m.Key, Now: m.hub.Now,
			HTTPClient: http.DefaultClient, Retry: client.Retry{Attempts: 1}, TokenCacheSize: -1,
		})
		if err != nil {
			panic(err) // the hub's URL, the id and the key are always there
		}
		m.client = c
	}
	return m.client
}

// NewKey returns a new Ed25519 signing key and its public JWK Set, as a
// member registers it.
func NewKey(t testing.TB) (*protocol.SigningKey, json.RawMessage) {
	t.Helper()
	key, err := protocol.GenerateSigningKey(protocol.EdDSA, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ks, err := protocol.NewKeySet(key.Public())
	if err != nil {
		t.Fatal(err)
	}
	jwks, err := ks.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	return key, jwks
}

// AddMember registers a member with the given roles and a new key.
func (h *Hub) AddMember(t testing.TB, id string, roles ...api.Role) *Member {
	t.Helper()
	key, jwks := NewKey(t)
	if _, err := h.Operator.Client().AddMember(context.Background(), api.MemberRequest{ID: id, Name: "Test member " + id, Roles: roles, JWKS: jwks}); err != nil {
		t.Fatalf("add member %s: %v", id, err)
	}
	return h.Member(id, key)
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

// Problem returns the problem document of an error answer, read as the
// member SDK reads it ([client.RawResponse.Problem]): exactly as the hub
// sent it. It fails the test unless the answer is an error with Content-Type
// application/problem+json and a document that names its type.
func (r *Response) Problem(t testing.TB) *protocol.Problem {
	t.Helper()
	if ct := r.Header.Get("Content-Type"); ct != protocol.ProblemContentType {
		t.Fatalf("Content-Type %q, want %s; body %s", ct, protocol.ProblemContentType, r.Body)
	}
	p := (&client.RawResponse{Status: r.Status, Header: r.Header, Body: r.Body}).Problem()
	if p == nil || p.Type == "" {
		t.Fatalf("status %d, body %s: want an error answer with a problem document", r.Status, r.Body)
	}
	return &p.Problem
}

// Bearer returns the member's bearer token, as its client sends it: minted
// anew when the last is within a minute of expiry.
func (m *Member) Bearer(t testing.TB) string {
	t.Helper()
	tok, err := m.Client().BearerToken(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// Do sends a request exactly as given, with the member's bearer token
// ([client.Client.Raw]).
func (m *Member) Do(t testing.TB, method, path, contentType string, body []byte) *Response {
	t.Helper()
	return do(t, m.Client(), client.RawRequest{Method: method, Path: path, ContentType: contentType, Body: body})
}

// Anonymous sends a request exactly as given, without a bearer token.
func (h *Hub) Anonymous(t testing.TB, method, path, contentType string, body []byte) *Response {
	t.Helper()
	return do(t, h.Operator.Client(), client.RawRequest{Method: method, Path: path, ContentType: contentType, Body: body, Anonymous: true})
}

func do(t testing.TB, c *client.Client, r client.RawRequest) *Response {
	t.Helper()
	resp, err := c.Raw(context.Background(), r)
	if err != nil {
		t.Fatal(err)
	}
	return &Response{Status: resp.Status, Header: resp.Header, Body: resp.Body}
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

// Sign signs a submission of req with a new jti, at the hub's time.
func (m *Member) Sign(t testing.TB, req protocol.Request) []byte {
	t.Helper()
	s, err := m.Client().Sign(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	return s.JWS
}

// Submit signs req and posts it to path, as given.
func (m *Member) Submit(t testing.TB, path string, req protocol.Request) *Response {
	t.Helper()
	return m.Do(t, http.MethodPost, path, "application/jose", m.Sign(t, req))
}

// Tokenize turns identifiers into tokens through the hub's oblivious
// evaluation, each of them evaluated by the hub.
func (m *Member) Tokenize(t testing.TB, typ protocol.IdentifierType, values ...string) []protocol.Token {
	t.Helper()
	toks, err := m.Client().Tokenize(context.Background(), typ, values...)
	if err != nil {
		t.Fatalf("tokens: %v", err)
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
	ks, err := h.Operator.Client().FetchKeys(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return ks
}

// configuration fetches the hub's discovery document as published.
func (h *Hub) configuration(t testing.TB) *api.Configuration {
	t.Helper()
	conf := new(api.Configuration)
	h.Anonymous(t, http.MethodGet, api.ConfigurationPath, "", nil).JSON(t, conf)
	return conf
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
		case bucket == "log", bucket == "log_details", bucket == "log_hashes", bucket == "checkpoints", bucket == "usage",
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
