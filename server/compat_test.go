package server_test

// A hub of this version must open a data file written by the last one.
// testdata/hub-v1 holds such a file, written by TestWriteDataFileFixture at
// the commit named in testdata/hub-v1/README.md, with the hub's keys, the
// members' keys and what the hub answered then (expect.json).
// TestOpensLastVersionDataFile starts a hub of this version on a copy of it
// and checks that it answers as that hub did, verifies its own log from
// the old checkpoints on, and keeps working on the file.

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/sparr-dev/sparr/client"
	"github.com/sparr-dev/sparr/federation/webhook"
	"github.com/sparr-dev/sparr/protocol"
	"github.com/sparr-dev/sparr/protocol/api"
	"github.com/sparr-dev/sparr/server"
	"github.com/sparr-dev/sparr/server/decide"
	"github.com/sparr-dev/sparr/server/hubtest"
	"github.com/sparr-dev/sparr/server/keyring"
	"github.com/sparr-dev/sparr/server/store"
)

var writeFixture = flag.String("write-fixture", "", "write a data-file fixture of this version to `dir` (see compat_test.go)")

// fixtureIssuer is the fixture hub's issuer: fixed, so that a hub started
// on the file at any loopback port signs and verifies as the one that
// wrote it.
const fixtureIssuer = "https://hub.fixture.example"

// fixtureStart is the fixture hub's clock when it starts.
var fixtureStart = time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)

// fixtureExpect is what the fixture's hub answered when it wrote the file.
type fixtureExpect struct {
	Written time.Time `json:"written"` // the hub's clock at the end
	// Members' private keys (test keys, made for the fixture), by id.
	Keys map[string]json.RawMessage `json:"keys"`
	// Tokens by name (t1 … t6): e-mail tokens under the fixture's OPRF key.
	Tokens map[string]string `json:"tokens"`
	// Flags by name (as placed by bank-a), and suspicions.
	Flags      map[string]string `json:"flags"`
	Suspicions map[string]string `json:"suspicions"`
	// FlagViews is GET /v1/flags/{id} as bank-a saw each flag.
	FlagViews map[string]json.RawMessage `json:"flag_views"`
	// Feeds is every member's whole feed from its floor: seq, type, JWS.
	Feeds map[string][]fixtureEvent `json:"feeds"`
	// Advice is what a check by bank-c answered for each token.
	Advice map[string]string `json:"advice"`
	// Endpoints is GET /v1/admin/endpoints (status, backlog, dead letters).
	Endpoints []fixtureEndpoint `json:"endpoints"`
	// LogSize and Checkpoint are the log's size and latest checkpoint.
	LogSize    uint64 `json:"log_size"`
	Checkpoint string `json:"checkpoint"`
}

type fixtureEvent struct {
	Seq  uint64             `json:"seq"`
	Type protocol.EventType `json:"type"`
	JWS  string             `json:"jws"`
}

type fixtureEndpoint struct {
	Member      string `json:"member"`
	Status      string `json:"status"`
	Verified    bool   `json:"verified"`
	Backlog     int    `json:"backlog"`
	DeadLetters int    `json:"dead_letters"`
}

// fixtureHub is a hub on a data directory, at the fixed issuer, served on
// loopback.
type fixtureHub struct {
	*server.Hub
	store *store.Store
	keys  *keyring.Keys
	srv   *httptest.Server
	clock *hubtest.Clock
}

func startFixtureHub(t *testing.T, dir string, clock *hubtest.Clock) *fixtureHub {
	t.Helper()
	gin.SetMode(gin.ReleaseMode)
	keys, err := keyring.Load(filepath.Join(dir, "keys"))
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(filepath.Join(dir, "hub.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	h := &fixtureHub{store: st, keys: keys, clock: clock}
	h.Hub, err = server.New(server.Config{
		Issuer: fixtureIssuer, Store: st, Keys: keys, Now: clock.Now, JobInterval: time.Hour, CheckpointInterval: time.Hour,
		AllowInsecureURLs: true,
		Policy:            decide.Policy{SuspicionLegalBasis: "brottsdatalagen-2-kap-1-par", FeedRetention: 2 * time.Hour},
		Delivery:          server.Delivery{Schedule: []time.Duration{time.Hour}},
		Targets: webhook.TargetPolicy{AllowHTTP: true, Allow: []netip.Prefix{
			netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}},
	})
	if err != nil {
		st.Close()
		t.Fatal(err)
	}
	h.srv = httptest.NewServer(h.Hub)
	if err := h.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.close)
	return h
}

func (h *fixtureHub) close() {
	if h.srv == nil {
		return
	}
	h.srv.Close()
	h.Hub.Close()
	h.store.Close()
	h.srv = nil
}

func (h *fixtureHub) member(t *testing.T, id string, key *protocol.SigningKey) *client.Client {
	t.Helper()
	// The member reaches the hub at its issuer URL, which this transport
	// sends to the loopback server, as DNS would send it to the hub.
	target, _ := url.Parse(h.srv.URL)
	hc := &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
		r = r.Clone(r.Context())
		r.URL.Scheme, r.URL.Host = target.Scheme, target.Host
		return http.DefaultTransport.RoundTrip(r)
	})}
	c, err := client.New(client.Config{HubURL: fixtureIssuer, MemberID: id, Key: key, Now: h.clock.Now, HTTPClient: hc, Retry: client.Retry{Attempts: 1}})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// operator returns the operator's client.
func (h *fixtureHub) operator(t *testing.T) *client.Client {
	t.Helper()
	op, err := keyring.LoadOperator(keyring.OperatorKeyPath(filepath.Join(filepath.Dir(h.store.Path()), "keys")))
	if err != nil {
		t.Fatal(err)
	}
	return h.member(t, server.OperatorID, op)
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// feedFrom reads a member's feed after cursor.
func feedFrom(t *testing.T, c *client.Client, after uint64) []fixtureEvent {
	t.Helper()
	var out []fixtureEvent
	for e, err := range c.Events(context.Background(), after) {
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, fixtureEvent{Seq: e.Seq, Type: e.Type, JWS: e.JWS})
	}
	return out
}

func endpointsOf(t *testing.T, h *fixtureHub) []fixtureEndpoint {
	t.Helper()
	eps, err := h.operator(t).Endpoints(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	out := make([]fixtureEndpoint, len(eps))
	for i, e := range eps {
		out[i] = fixtureEndpoint{Member: e.Member, Status: string(e.Status), Verified: e.Verified, Backlog: e.Backlog, DeadLetters: e.DeadLetters}
	}
	return out
}

// TestWriteDataFileFixture writes testdata/hub-v1 anew when run with
// -write-fixture DIR; see testdata/hub-v1/README.md.
func TestWriteDataFileFixture(t *testing.T) {
	if *writeFixture == "" {
		t.Skip("run with -write-fixture DIR to write a data-file fixture of this version")
	}
	dir := *writeFixture
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "hub.db")); err == nil {
		t.Fatalf("%s already holds a data file; write the fixture to an empty directory", dir)
	}
	if _, err := keyring.Init(filepath.Join(dir, "keys"), keyring.Options{LogOrigin: "hub.fixture.example/log"}); err != nil {
		t.Fatal(err)
	}
	clock := hubtest.NewClock(fixtureStart)
	h := startFixtureHub(t, dir, clock)
	ctx := context.Background()
	exp := fixtureExpect{Keys: map[string]json.RawMessage{}, Tokens: map[string]string{}, Flags: map[string]string{},
		Suspicions: map[string]string{}, FlagViews: map[string]json.RawMessage{}, Feeds: map[string][]fixtureEvent{}, Advice: map[string]string{}}

	op := h.operator(t)
	members := map[string]*client.Client{}
	for _, m := range []struct {
		id    string
		roles []api.Role
	}{
		{"bank-a", []api.Role{api.RoleFlag, api.RoleSuspicion, api.RoleCheck}},
		{"bank-b", []api.Role{api.RoleFlag, api.RoleCheck}},
		{"bank-c", []api.Role{api.RoleCheck}},
		{"finansinspektionen", []api.Role{api.RoleRegulator}},
	} {
		key, err := protocol.GenerateSigningKey(protocol.EdDSA, nil)
		if err != nil {
			t.Fatal(err)
		}
		priv, err := key.MarshalPrivateJWK()
		if err != nil {
			t.Fatal(err)
		}
		exp.Keys[m.id] = priv
		jwks, _ := json.Marshal(map[string]any{"keys": []*protocol.PublicKey{key.Public()}})
		if _, err := op.AddMember(ctx, api.MemberRequest{ID: m.id, Name: "Fixture " + m.id, Roles: m.roles, JWKS: jwks}); err != nil {
			t.Fatal(err)
		}
		members[m.id] = h.member(t, m.id, key)
	}
	a, b, c := members["bank-a"], members["bank-b"], members["bank-c"]

	// Endpoints: bank-b's receiver takes everything; bank-a's refuses all
	// but the verification event (dead letters); bank-c's goes away after
	// its verification (deliveries stay queued, retried in an hour).
	var refuse atomic.Bool
	accept := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusAccepted) }))
	defer accept.Close()
	picky := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if refuse.Load() {
			http.Error(w, `{"err":"invalid_request","description":"not today"}`, http.StatusBadRequest)
			return
		}
		w.WriteHeader(http.StatusAccepted)
	}))
	defer picky.Close()
	gone := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusAccepted) }))
	for _, e := range []struct {
		c   *client.Client
		url string
	}{{a, picky.URL + "/a"}, {b, accept.URL + "/b"}, {c, gone.URL + "/c"}} {
		if _, _, err := e.c.RegisterEndpoint(ctx, e.url); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "every endpoint verified", func() bool {
		for _, e := range endpointsOf(t, h) {
			if !e.Verified {
				return false
			}
		}
		return true
	})
	refuse.Store(true)
	gone.Close()

	toks, err := a.Tokenize(ctx, protocol.TypeEmail, "ett@fixture.example", "tva@fixture.example", "tre@fixture.example",
		"fyra@fixture.example", "fem@fixture.example", "sex@fixture.example")
	if err != nil {
		t.Fatal(err)
	}
	for i, tok := range toks {
		exp.Tokens[fmt.Sprintf("t%d", i+1)] = tok.String()
	}
	consent := func(tok protocol.Token) *protocol.Consent {
		now := clock.Now()
		return &protocol.Consent{
			Subject: tok, Collection: protocol.ConsentCollection{Method: "mobile-app", At: protocol.NewNumericDate(now.Add(-time.Minute))},
			Notice: "https://bank-a.example/privacy/sparr", ExpiresAt: protocol.NewNumericDate(now.AddDate(6, 0, 0)),
			Evidence: protocol.ConsentEvidence{AuthenticationMethod: "bankid", AssuranceLevel: "loa3", Reference: "auth-" + tok.String()[:16]},
		}
	}
	report := &protocol.PoliceReport{Authority: "polisen", CaseNumber: "5000-K123456-26", Date: "2026-10-30"}
	place := func(name string, tok protocol.Token, req client.PlaceFlagRequest) {
		req.Subject, req.Consent = tok, consent(tok)
		w, err := a.PlaceFlag(ctx, req)
		if err != nil {
			t.Fatalf("place %s: %v", name, err)
		}
		exp.Flags[name] = w.Flag.ID
	}

	// Before the prune: f4 lapses within the hour, s2 is retracted, and a
	// refused thaw is logged.
	place("f4", toks[3], client.PlaceFlagRequest{ExpiresAt: clock.Now().Add(time.Hour)})
	place("f6", toks[5], client.PlaceFlagRequest{})
	s2, err := a.ReportSuspicion(ctx, client.ReportSuspicionRequest{Subjects: []protocol.Token{toks[1]}, Category: protocol.SuspicionCategories()[0], PoliceReport: report})
	if err != nil {
		t.Fatal(err)
	}
	exp.Suspicions["s2"] = s2.Suspicion.ID
	if _, err := a.RetractSuspicion(ctx, s2.Suspicion.ID, protocol.RetractReportedInError); err != nil {
		t.Fatal(err)
	}
	if _, err := a.ThawFlag(ctx, exp.Flags["f6"], time.Time{}, clock.Now().Add(30*24*time.Hour)); !errors.Is(err, client.ErrValidation) {
		t.Fatalf("thaw of 30 days: %v, want a validation problem", err)
	}
	if _, err := h.PublishCheckpoint(); err != nil {
		t.Fatal(err)
	}

	// Three hours on: the jobs end f4, prune the feed, and remind of f5.
	clock.Advance(3 * time.Hour)
	place("f1", toks[0], client.PlaceFlagRequest{})
	place("f2", toks[1], client.PlaceFlagRequest{Kind: protocol.FlagKindExtended, PoliceReport: report, ExpiresAt: clock.Now().AddDate(2, 0, 0)})
	place("f3", toks[2], client.PlaceFlagRequest{})
	place("f5", toks[3], client.PlaceFlagRequest{ExpiresAt: clock.Now().Add(10 * 24 * time.Hour)})
	if err := h.RunJobs(); err != nil {
		t.Fatal(err)
	}
	if _, err := a.ThawFlag(ctx, exp.Flags["f1"], time.Time{}, clock.Now().Add(24*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if _, err := a.ExtendFlag(ctx, client.ExtendFlagRequest{FlagID: exp.Flags["f2"], Kind: protocol.FlagKindExtended, PoliceReport: report}); err != nil {
		t.Fatal(err)
	}
	if _, err := a.LiftFlag(ctx, exp.Flags["f3"]); err != nil {
		t.Fatal(err)
	}
	if _, err := b.PlaceFlag(ctx, client.PlaceFlagRequest{Subject: toks[0], Consent: consent(toks[0])}); err != nil {
		t.Fatal(err) // answered with f1, already active
	}
	s1, err := a.ReportSuspicion(ctx, client.ReportSuspicionRequest{Subjects: []protocol.Token{toks[4]}, Category: protocol.SuspicionCategories()[0], PoliceReport: report})
	if err != nil {
		t.Fatal(err)
	}
	exp.Suspicions["s1"] = s1.Suspicion.ID
	chk, err := c.Check(ctx, api.PurposeCreditApplication, toks...)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.ReportOutcome(ctx, chk.ID, api.OutcomeVerified); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Check(ctx, api.PurposeAccountOpening, toks[0]); err != nil {
		t.Fatal(err)
	}
	if _, err := c.SuspicionDetails(ctx, s1.Suspicion.ID, api.PurposeCreditApplication, "the applicant's identity is contested by the bank"); err != nil {
		t.Fatal(err)
	}
	// The operator erases t6 (f6 ends with it), suspends and resumes
	// bank-c, and takes a backup.
	if _, err := op.EraseSubject(ctx, toks[5], "gdpr-art-17"); err != nil {
		t.Fatal(err)
	}
	if _, err := op.SuspendMember(ctx, "bank-c"); err != nil {
		t.Fatal(err)
	}
	if _, err := op.ResumeMember(ctx, "bank-c"); err != nil {
		t.Fatal(err)
	}
	if _, err := op.Backup(ctx, io.Discard); err != nil {
		t.Fatal(err)
	}

	waitFor(t, "deliveries settled", func() bool {
		for _, e := range endpointsOf(t, h) {
			if e.Member == "bank-b" && e.Backlog != 0 || e.Member == "bank-a" && e.Backlog != 0 {
				return false
			}
		}
		return true
	})
	recordAnswers(t, h, members, &exp)
	h.close()

	out, err := json.MarshalIndent(exp, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "expect.json"), append(out, '\n'), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("fixture written to %s: log of %d entries", dir, exp.LogSize)
}

// recordAnswers fills in what the hub answers now: the flags as bank-a
// sees them, every member's feed, the endpoints, the log's size and
// latest checkpoint.
func recordAnswers(t *testing.T, h *fixtureHub, members map[string]*client.Client, exp *fixtureExpect) {
	t.Helper()
	ctx := context.Background()
	exp.Written = h.clock.Now()
	for name, id := range exp.Flags {
		exp.FlagViews[name] = flagView(t, h, exp, id)
	}
	var toks []protocol.Token
	for i := 1; i <= len(exp.Tokens); i++ {
		tok, err := protocol.ParseToken(exp.Tokens[fmt.Sprintf("t%d", i)])
		if err != nil {
			t.Fatal(err)
		}
		toks = append(toks, tok)
	}
	chk, err := members["bank-c"].Check(ctx, api.PurposeCreditApplication, toks...)
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range chk.Results {
		exp.Advice[fmt.Sprintf("t%d", i+1)] = string(r.Advice)
	}
	if _, err := h.PublishCheckpoint(); err != nil {
		t.Fatal(err)
	}
	for id, c := range members {
		if id == "finansinspektionen" {
			continue
		}
		exp.Feeds[id] = feedFrom(t, c, floorOf(t, h))
	}
	exp.Endpoints = endpointsOf(t, h)
	cp, size, err := h.store.Checkpoint()
	if err != nil {
		t.Fatal(err)
	}
	exp.Checkpoint, exp.LogSize = string(cp), size
}

// flagView is GET /v1/flags/{id} as bank-a, the flags' origin, sees it.
func flagView(t *testing.T, h *fixtureHub, exp *fixtureExpect, id string) json.RawMessage {
	t.Helper()
	key, err := protocol.ParseSigningKey(exp.Keys["bank-a"])
	if err != nil {
		t.Fatal(err)
	}
	// The answer as sent, byte for byte: it is compared with the one the
	// hub that wrote the fixture sent.
	resp, err := h.member(t, "bank-a", key).Raw(context.Background(), client.RawRequest{Method: http.MethodGet, Path: "/v1/flags/" + id})
	if err != nil {
		t.Fatal(err)
	}
	if resp.Status != http.StatusOK {
		t.Fatalf("GET /v1/flags/%s: %d %s", id, resp.Status, resp.Body)
	}
	var out struct {
		Flag json.RawMessage `json:"flag"`
	}
	if err := json.Unmarshal(resp.Body, &out); err != nil {
		t.Fatal(err)
	}
	return out.Flag
}

// floorOf is the oldest cursor the hub's feed serves.
func floorOf(t *testing.T, h *fixtureHub) uint64 {
	t.Helper()
	var floor uint64
	err := h.store.Walk(func(bucket string, k, v []byte) error {
		if bucket == "meta" && string(k) == "feed_floor" && len(v) == 8 {
			for _, x := range v {
				floor = floor<<8 | uint64(x)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return floor
}

func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	for range 500 {
		if ok() {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("gave up waiting: %s", what)
}

// copyFixture copies testdata/hub-v1 to a new temporary directory.
func copyFixture(t *testing.T) (string, *fixtureExpect) {
	t.Helper()
	src := filepath.Join("testdata", "hub-v1")
	dst := t.TempDir()
	err := filepath.Walk(src, func(p string, info os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		if info.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o700)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), b, 0o600)
	})
	if err != nil {
		t.Fatal(err)
	}
	var exp fixtureExpect
	b, err := os.ReadFile(filepath.Join(dst, "expect.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &exp); err != nil {
		t.Fatal(err)
	}
	return dst, &exp
}

func TestOpensLastVersionDataFile(t *testing.T) {
	dir, exp := copyFixture(t)
	clock := hubtest.NewClock(exp.Written.Add(time.Minute))
	h := startFixtureHub(t, dir, clock)
	ctx := context.Background()
	members := map[string]*client.Client{}
	for id, raw := range exp.Keys {
		key, err := protocol.ParseSigningKey(raw)
		if err != nil {
			t.Fatal(err)
		}
		members[id] = h.member(t, id, key)
	}
	a, b, c := members["bank-a"], members["bank-b"], members["bank-c"]
	tok := func(name string) protocol.Token {
		tk, err := protocol.ParseToken(exp.Tokens[name])
		if err != nil {
			t.Fatal(err)
		}
		return tk
	}

	// It answers as the hub that wrote the file.
	t.Run("answers", func(t *testing.T) {
		for name, id := range exp.Flags {
			var want bytes.Buffer
			json.Compact(&want, exp.FlagViews[name])
			if got := flagView(t, h, exp, id); !bytes.Equal(got, want.Bytes()) {
				t.Errorf("flag %s: got %s, want %s", name, got, want.Bytes())
			}
		}
		floor := floorOf(t, h)
		if floor == 0 {
			t.Error("the fixture's feed was never pruned: it does not cover a pruned feed")
		}
		for id, want := range exp.Feeds {
			want = servedNow(t, h, want)
			if got := feedFrom(t, members[id], floor); !slices.Equal(got, want) {
				t.Errorf("feed of %s: got %d events, want %d as written (first differing: %v)", id, len(got), len(want), firstDiff(got, want))
			}
		}
		if got := endpointsOf(t, h); !slices.Equal(got, exp.Endpoints) {
			t.Errorf("endpoints: got %+v, want %+v", got, exp.Endpoints)
		}
		var toks []protocol.Token
		for i := 1; i <= len(exp.Tokens); i++ {
			toks = append(toks, tok(fmt.Sprintf("t%d", i)))
		}
		chk, err := c.Check(ctx, api.PurposeCreditApplication, toks...)
		if err != nil {
			t.Fatal(err)
		}
		for i, r := range chk.Results {
			if name := fmt.Sprintf("t%d", i+1); string(r.Advice) != exp.Advice[name] {
				t.Errorf("check of %s: advice %s, want %s", name, r.Advice, exp.Advice[name])
			}
		}
	})

	// Its log extends the one the old hub signed: the old checkpoint
	// verifies under the log key, and the tree the new hub publishes is
	// consistent with it.
	t.Run("log", func(t *testing.T) {
		verifier, err := note.NewVerifier(h.keys.LogVerifier)
		if err != nil {
			t.Fatal(err)
		}
		old, err := protocol.OpenCheckpoint([]byte(exp.Checkpoint), verifier)
		if err != nil {
			t.Fatalf("the fixture's checkpoint: %v", err)
		}
		if _, err := b.Check(ctx, api.PurposePayment, tok("t1")); err != nil {
			t.Fatal(err)
		}
		if _, err := h.PublishCheckpoint(); err != nil {
			t.Fatal(err)
		}
		cpNote, size, err := h.store.Checkpoint()
		if err != nil {
			t.Fatal(err)
		}
		cp, err := protocol.OpenCheckpoint(cpNote, verifier)
		if err != nil {
			t.Fatal(err)
		}
		if size <= old.Size {
			t.Fatalf("the log did not grow: %d entries, %d before", size, old.Size)
		}
		proof, err := h.store.ConsistencyProof(old.Size, cp.Size)
		if err != nil {
			t.Fatal(err)
		}
		if err := tlog.CheckTree(proof, int64(cp.Size), cp.Root, int64(old.Size), old.Root); err != nil {
			t.Fatalf("the new tree does not extend the fixture's: %v", err)
		}
	})

	// It keeps working on the file: a new flag, its lift, the jobs, and the
	// deliveries queued for bank-c before it went away reach it now.
	t.Run("works", func(t *testing.T) {
		got := make(chan string, 64)
		recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			got <- r.Header.Get("webhook-id")
			w.WriteHeader(http.StatusAccepted)
		}))
		defer recv.Close()
		if _, _, err := c.RegisterEndpoint(ctx, recv.URL+"/c"); err != nil {
			t.Fatal(err)
		}
		tk := tok("t3") // f3 was lifted: it may be flagged again
		w, err := a.PlaceFlag(ctx, client.PlaceFlagRequest{Subject: tk, Consent: &protocol.Consent{
			Subject: tk, Collection: protocol.ConsentCollection{Method: "mobile-app", At: protocol.NewNumericDate(clock.Now().Add(-time.Minute))},
			Notice: "https://bank-a.example/privacy/sparr", ExpiresAt: protocol.NewNumericDate(clock.Now().AddDate(6, 0, 0)),
			Evidence: protocol.ConsentEvidence{AuthenticationMethod: "bankid", AssuranceLevel: "loa3", Reference: "auth-again"},
		}})
		if err != nil {
			t.Fatal(err)
		}
		if w.Existing {
			t.Fatal("a lifted flag's subject is answered as already protected")
		}
		if _, err := a.LiftFlag(ctx, w.Flag.ID); err != nil {
			t.Fatal(err)
		}
		clock.Advance(24 * time.Hour)
		if err := h.RunJobs(); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "bank-c's backlog delivered", func() bool {
			for _, e := range endpointsOf(t, h) {
				if e.Member == "bank-c" {
					return e.Backlog == 0 && e.Status == "active"
				}
			}
			return false
		})
		if len(got) == 0 {
			t.Fatal("bank-c's new endpoint received nothing")
		}
	})
}

// servedNow is a feed the fixture's hub served as this version serves it:
// a suspicion's records go to its reporter only, so the suspicion records
// addressed to no one in particular, which the last version sent every
// checking member (hits, and their retractions and expiries), are served
// to no one.
func servedNow(t *testing.T, h *fixtureHub, events []fixtureEvent) []fixtureEvent {
	t.Helper()
	var out []fixtureEvent
	for _, e := range events {
		switch e.Type {
		case protocol.EventSuspicionReported, protocol.EventSuspicionRetracted, protocol.EventSuspicionExpired:
			_, payload, _ := strings.Cut(e.JWS, ".")
			payload, _, _ = strings.Cut(payload, ".")
			b, err := base64.RawURLEncoding.DecodeString(payload)
			var claims struct {
				ID string `json:"jti"`
			}
			if err == nil {
				err = json.Unmarshal(b, &claims)
			}
			if err != nil {
				t.Fatalf("the fixture's event %d: %v", e.Seq, err)
			}
			r, err := h.store.Record(claims.ID)
			if err != nil {
				t.Fatalf("the fixture's record %s: %v", claims.ID, err)
			}
			if r.Audience == "" {
				continue
			}
		}
		out = append(out, e)
	}
	return out
}

func firstDiff(got, want []fixtureEvent) string {
	for i := range min(len(got), len(want)) {
		if got[i] != want[i] {
			return fmt.Sprintf("#%d got seq %d %s, want seq %d %s", i, got[i].Seq, got[i].Type.Short(), want[i].Seq, want[i].Type.Short())
		}
	}
	return "none in the common prefix"
}
