package members_test

import (
	"bytes"
	"context"
	"crypto"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sparr-dev/sparr/federation/members"
	"github.com/sparr-dev/sparr/protocol"
	"github.com/sparr-dev/sparr/protocol/api"
)

var created = time.Date(2026, 11, 1, 9, 0, 0, 0, time.UTC)

// newKey makes a signing key; every test key is a real one.
func newKey(t testing.TB, alg protocol.Algorithm) *protocol.SigningKey {
	t.Helper()
	k, err := protocol.GenerateSigningKey(alg, nil)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// jwks returns the JWK Set of the public halves of keys.
func jwks(t testing.TB, keys ...*protocol.SigningKey) []byte {
	t.Helper()
	pubs := make([]*protocol.PublicKey, len(keys))
	for i, k := range keys {
		pubs[i] = k.Public()
	}
	set, err := protocol.NewKeySet(pubs...)
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(set)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// directory is an in-memory members.Directory.
type directory struct {
	mu      sync.Mutex
	members map[string]api.Member
	err     error // returned for every lookup if set
}

func newDirectory(members ...*api.Member) *directory {
	d := &directory{members: map[string]api.Member{}}
	for _, m := range members {
		d.put(m)
	}
	return d
}

func (d *directory) put(m *api.Member) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.members[m.ID] = *m
}

func (d *directory) remove(id string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	delete(d.members, id)
}

func (d *directory) Member(ctx context.Context, id string) (*api.Member, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.err != nil {
		return nil, d.err
	}
	m, ok := d.members[id]
	if !ok {
		return nil, fmt.Errorf("%w %q", members.ErrUnknownMember, id)
	}
	return &m, nil
}

var _ members.Directory = (*directory)(nil)

// clock is a fake clock for KeysConfig.Now.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: created.Add(24 * time.Hour)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// jwksServer is a member's key server: a real HTTPS server on loopback that
// serves whatever answer it is given and counts the requests it receives.
type jwksServer struct {
	*httptest.Server
	requests atomic.Int64

	mu     sync.Mutex
	status int
	body   []byte
	header http.Header   // sent with every answer, after a Content-Type of application/jwk-set+json
	gate   chan struct{} // if set, each request waits for it to be closed
	start  chan struct{} // if set, each request sends on it first
}

func newJWKSServer(t *testing.T, body []byte) *jwksServer {
	s := &jwksServer{status: http.StatusOK, body: body, header: http.Header{}}
	s.Server = httptest.NewTLSServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.Close)
	return s
}

// newPlainJWKSServer is newJWKSServer over plain HTTP.
func newPlainJWKSServer(t *testing.T, body []byte) *jwksServer {
	s := &jwksServer{status: http.StatusOK, body: body, header: http.Header{}}
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.Close)
	return s
}

func (s *jwksServer) serve(w http.ResponseWriter, r *http.Request) {
	s.requests.Add(1)
	s.mu.Lock()
	status, body, header, gate, start := s.status, s.body, s.header.Clone(), s.gate, s.start
	s.mu.Unlock()
	if start != nil {
		start <- struct{}{}
	}
	if gate != nil {
		<-gate
	}
	if r.Method != http.MethodGet || r.Header.Get("Accept") != "application/jwk-set+json, application/json" {
		http.Error(w, "want GET with Accept: application/jwk-set+json, application/json", http.StatusNotAcceptable)
		return
	}
	w.Header().Set("Content-Type", "application/jwk-set+json")
	for name, values := range header {
		w.Header()[name] = values
	}
	w.WriteHeader(status)
	w.Write(body)
}

func (s *jwksServer) answer(status int, body []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.status, s.body = status, body
}

// setHeader sends value as the header name with every answer from now on;
// an empty value sends none.
func (s *jwksServer) setHeader(name, value string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if value == "" {
		s.header[http.CanonicalHeaderKey(name)] = nil
		return
	}
	s.header.Set(name, value)
}

func (s *jwksServer) count() int { return int(s.requests.Load()) }

// urlMember returns a member whose keys are at url.
func urlMember(id, url string) *api.Member {
	return &api.Member{
		ID: id, Name: "Member " + id, Roles: []api.Role{api.RoleFlag},
		JWKSURL: url, Status: api.MemberActive, CreatedAt: created, UpdatedAt: created,
	}
}

// newURLKeys returns Keys over one member, "bank-a", whose key set srv
// serves, on a fake clock.
func newURLKeys(t *testing.T, srv *jwksServer) (*members.Keys, *directory, *clock) {
	dir := newDirectory(urlMember("bank-a", srv.URL+"/jwks.json"))
	clk := newClock()
	k := members.NewKeys(members.KeysConfig{Directory: dir, HTTPClient: srv.Client(), Now: clk.Now})
	return k, dir, clk
}

// wantKey checks that resolving kid of member gives key.
func wantKey(t *testing.T, k *members.Keys, member string, key *protocol.SigningKey) *protocol.PublicKey {
	t.Helper()
	got, err := k.ResolveKey(context.Background(), member, key.KeyID())
	if err != nil {
		t.Fatalf("ResolveKey(%q, %q): got %v, want the key", member, key.KeyID(), err)
	}
	want := key.Public()
	if got.KeyID() != want.KeyID() || got.Algorithm() != want.Algorithm() ||
		!got.CryptoPublicKey().(interface{ Equal(crypto.PublicKey) bool }).Equal(want.CryptoPublicKey()) {
		t.Fatalf("ResolveKey(%q, %q): got key %q (%s), want %q (%s)", member, key.KeyID(), got.KeyID(), got.Algorithm(), want.KeyID(), want.Algorithm())
	}
	return got
}

// wantUnknownKey checks that resolving kid of member fails with
// protocol.ErrUnknownKey.
func wantUnknownKey(t *testing.T, k *members.Keys, member, kid string) error {
	t.Helper()
	got, err := k.ResolveKey(context.Background(), member, kid)
	if !errors.Is(err, protocol.ErrUnknownKey) {
		t.Fatalf("ResolveKey(%q, %q): got %v, %v; want an error wrapping protocol.ErrUnknownKey", member, kid, got, err)
	}
	return err
}

// wantUnavailable checks that resolving kid of member fails with
// ErrKeySetUnavailable and not protocol.ErrUnknownKey.
func wantUnavailable(t *testing.T, k *members.Keys, member, kid string) error {
	t.Helper()
	_, err := k.ResolveKey(context.Background(), member, kid)
	if !errors.Is(err, members.ErrKeySetUnavailable) || errors.Is(err, protocol.ErrUnknownKey) {
		t.Fatalf("ResolveKey(%q, %q): got %v; want an error wrapping ErrKeySetUnavailable and not protocol.ErrUnknownKey", member, kid, err)
	}
	return err
}

func wantRequests(t *testing.T, srv *jwksServer, want int) {
	t.Helper()
	if got := srv.count(); got != want {
		t.Fatalf("key server got %d requests, want %d", got, want)
	}
}

func TestResolveKeyInline(t *testing.T) {
	ed, es := newKey(t, protocol.EdDSA), newKey(t, protocol.ES256)
	a := validMember(t)
	a.JWKS = jwks(t, ed, es)
	noKeys := validMember(t)
	noKeys.ID, noKeys.JWKS = "no-keys", nil
	broken := validMember(t)
	broken.ID, broken.JWKS = "broken", []byte(`{"keys":"none"}`)
	k := members.NewKeys(members.KeysConfig{Directory: newDirectory(a, noKeys, broken)})

	first := wantKey(t, k, "bank-a", ed)
	wantKey(t, k, "bank-a", es)
	if again := wantKey(t, k, "bank-a", ed); again != first {
		t.Errorf("second resolution gave a new *PublicKey; want the set parsed once and cached")
	}
	wantUnknownKey(t, k, "bank-a", "no-such-kid")
	wantUnknownKey(t, k, "bank-a", "")

	err := wantUnknownKey(t, k, "bank-z", ed.KeyID())
	if !errors.Is(err, members.ErrUnknownMember) {
		t.Errorf("unknown member: got %v, want it to wrap ErrUnknownMember too", err)
	}
	if err := wantUnknownKey(t, k, "no-keys", ed.KeyID()); !strings.Contains(err.Error(), "no keys registered") {
		t.Errorf("member without keys: got %q, want it to say so", err)
	}
	if err := wantUnavailable(t, k, "broken", ed.KeyID()); !strings.Contains(err.Error(), `member "broken": registered jwks`) {
		t.Errorf("member with a broken set: got %q, want it to name the member and its jwks", err)
	}
}

func TestResolveKeyInlineUpdate(t *testing.T) {
	old, rotated := newKey(t, protocol.EdDSA), newKey(t, protocol.EdDSA)
	m := validMember(t)
	m.JWKS = jwks(t, old)
	dir := newDirectory(m)
	k := members.NewKeys(members.KeysConfig{Directory: dir})
	wantKey(t, k, "bank-a", old)

	// The store changes the set without advancing UpdatedAt: the cache is
	// keyed by UpdatedAt, so the change is seen only after Forget.
	m.JWKS = jwks(t, rotated)
	dir.put(m)
	wantKey(t, k, "bank-a", old)
	wantUnknownKey(t, k, "bank-a", rotated.KeyID())
	k.Forget("bank-a")
	wantKey(t, k, "bank-a", rotated)
	wantUnknownKey(t, k, "bank-a", old.KeyID())

	// An update that advances UpdatedAt is seen at once.
	m.JWKS = jwks(t, old)
	m.UpdatedAt = m.UpdatedAt.Add(time.Second)
	dir.put(m)
	wantKey(t, k, "bank-a", old)
	wantUnknownKey(t, k, "bank-a", rotated.KeyID())

	// So is a switch from an inline set to a URL.
	srv := newJWKSServer(t, jwks(t, rotated))
	k = members.NewKeys(members.KeysConfig{Directory: dir, HTTPClient: srv.Client()})
	wantKey(t, k, "bank-a", old)
	m.JWKS, m.JWKSURL = nil, srv.URL
	dir.put(m)
	wantKey(t, k, "bank-a", rotated)
	wantRequests(t, srv, 1)
}

func TestResolveKeyDirectoryFails(t *testing.T) {
	dir := newDirectory(validMember(t))
	dir.err = errors.New("store closed")
	k := members.NewKeys(members.KeysConfig{Directory: dir})
	_, err := k.ResolveKey(context.Background(), "bank-a", "kid")
	if err == nil || errors.Is(err, protocol.ErrUnknownKey) || !strings.Contains(err.Error(), "store closed") {
		t.Errorf("got %v, want the directory's error, not wrapping protocol.ErrUnknownKey", err)
	}

	// A directory that answers nil, nil has no such member.
	k = members.NewKeys(members.KeysConfig{Directory: members.DirectoryFunc(func(context.Context, string) (*api.Member, error) {
		return nil, nil
	})})
	if err := wantUnknownKey(t, k, "bank-a", "kid"); !errors.Is(err, members.ErrUnknownMember) {
		t.Errorf("got %v, want it to wrap ErrUnknownMember", err)
	}
}

func TestResolveKeyURLCached(t *testing.T) {
	ed, es := newKey(t, protocol.EdDSA), newKey(t, protocol.ES256)
	srv := newJWKSServer(t, jwks(t, ed, es))
	k, _, clk := newURLKeys(t, srv)
	first := wantKey(t, k, "bank-a", ed)
	for range 10 {
		wantKey(t, k, "bank-a", es)
		clk.advance(29 * time.Second)
	}
	if again := wantKey(t, k, "bank-a", ed); again != first {
		t.Errorf("resolution within MaxAge gave a new *PublicKey; want the cached one")
	}
	wantRequests(t, srv, 1)
}

// TestResolveKeyUnknownKidRateLimited sends a flood of made-up kids, as an
// attacker forging headers would, and checks that the member's key server
// sees one fetch per MinRefresh (10 seconds).
func TestResolveKeyUnknownKidRateLimited(t *testing.T) {
	key := newKey(t, protocol.EdDSA)
	srv := newJWKSServer(t, jwks(t, key))
	k, _, clk := newURLKeys(t, srv)
	wantKey(t, k, "bank-a", key)

	flood := func() {
		t.Helper()
		var wg sync.WaitGroup
		errs := make(chan error, 200)
		for i := range 200 {
			wg.Go(func() {
				_, err := k.ResolveKey(context.Background(), "bank-a", fmt.Sprintf("bogus-%d", i))
				errs <- err
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if !errors.Is(err, protocol.ErrUnknownKey) {
				t.Fatalf("bogus kid: got %v, want an error wrapping protocol.ErrUnknownKey", err)
			}
		}
	}

	flood()
	wantRequests(t, srv, 1)
	clk.advance(10*time.Second - time.Millisecond)
	flood()
	wantRequests(t, srv, 1)
	err := wantUnknownKey(t, k, "bank-a", "bogus")
	if !strings.Contains(err.Error(), "refetched at most every 10s") {
		t.Errorf("got %q, want it to say the set is refetched at most every 10 seconds", err)
	}

	clk.advance(time.Millisecond) // MinRefresh since the fetch
	flood()
	wantRequests(t, srv, 2)
	flood()
	wantRequests(t, srv, 2)
	wantKey(t, k, "bank-a", key)
	wantRequests(t, srv, 2)

	// However long the flood lasts, one fetch per MinRefresh.
	for range 30 {
		clk.advance(time.Second)
		flood()
	}
	wantRequests(t, srv, 5)
}

func TestResolveKeyMinRefreshConfigured(t *testing.T) {
	key := newKey(t, protocol.EdDSA)
	srv := newJWKSServer(t, jwks(t, key))
	clk := newClock()
	k := members.NewKeys(members.KeysConfig{
		Directory: newDirectory(urlMember("bank-a", srv.URL)), HTTPClient: srv.Client(),
		Now: clk.Now, MinRefresh: 3 * time.Second,
	})
	wantKey(t, k, "bank-a", key)
	wantUnknownKey(t, k, "bank-a", "bogus")
	clk.advance(2 * time.Second)
	wantUnknownKey(t, k, "bank-a", "bogus")
	wantRequests(t, srv, 1)
	clk.advance(time.Second)
	wantUnknownKey(t, k, "bank-a", "bogus")
	wantRequests(t, srv, 2)
}

// TestResolveKeyRotation follows a member's key rotation by its key set
// URL: the next key verifies on its first use, or at most MinRefresh (10
// seconds) after the last fetch; the retired key stops verifying at most
// MaxAge (5 minutes) after it left the set.
func TestResolveKeyRotation(t *testing.T) {
	old, next, third := newKey(t, protocol.EdDSA), newKey(t, protocol.ES256), newKey(t, protocol.EdDSA)
	srv := newJWKSServer(t, jwks(t, old))
	k, _, clk := newURLKeys(t, srv)
	wantKey(t, k, "bank-a", old)

	// The member publishes its next key alongside the old one and signs
	// with it: the first use fetches the set, and the key verifies.
	srv.answer(http.StatusOK, jwks(t, old, next))
	clk.advance(15 * time.Second)
	wantKey(t, k, "bank-a", next)
	wantRequests(t, srv, 2)
	wantKey(t, k, "bank-a", old)

	// The member retires the old key; the hub sees that within MaxAge of
	// its last fetch, which the answer's headers do not shorten here.
	srv.answer(http.StatusOK, jwks(t, next))
	clk.advance(5*time.Minute - time.Second)
	wantKey(t, k, "bank-a", old)
	wantRequests(t, srv, 2)
	clk.advance(time.Second) // 5 minutes since the last fetch
	wantUnknownKey(t, k, "bank-a", old.KeyID())
	wantRequests(t, srv, 3)
	wantKey(t, k, "bank-a", next)
	wantRequests(t, srv, 3)

	// A key published right after a fetch verifies once MinRefresh has
	// passed since it.
	srv.answer(http.StatusOK, jwks(t, next, third))
	clk.advance(4 * time.Second)
	wantUnknownKey(t, k, "bank-a", third.KeyID())
	clk.advance(5 * time.Second)
	wantUnknownKey(t, k, "bank-a", third.KeyID())
	wantRequests(t, srv, 3)
	clk.advance(time.Second)
	wantKey(t, k, "bank-a", third)
	wantRequests(t, srv, 4)
}

// TestResolveKeyCacheHeaders checks that a key set is kept as long as its
// answer's Cache-Control or Expires says, but never less than MinAge (30
// seconds) nor more than MaxAge (5 minutes), and for MaxAge if the answer
// says nothing.
func TestResolveKeyCacheHeaders(t *testing.T) {
	date := time.Date(2026, 11, 20, 9, 0, 0, 0, time.UTC)
	at := func(d time.Duration) string { return date.Add(d).Format(http.TimeFormat) }
	tests := []struct {
		name   string
		header map[string]string
		want   time.Duration // how long the set is kept
	}{
		{name: "none", want: 5 * time.Minute},
		{name: "max-age", header: map[string]string{"Cache-Control": "max-age=60"}, want: time.Minute},
		{name: "max-age among others", header: map[string]string{"Cache-Control": "public, max-age=120, must-revalidate"}, want: 2 * time.Minute},
		{name: "max-age quoted", header: map[string]string{"Cache-Control": `max-age="90"`}, want: 90 * time.Second},
		{name: "max-age upper case", header: map[string]string{"Cache-Control": "Max-Age=45"}, want: 45 * time.Second},
		{name: "max-age beyond MaxAge", header: map[string]string{"Cache-Control": "max-age=86400"}, want: 5 * time.Minute},
		{name: "max-age far beyond", header: map[string]string{"Cache-Control": "max-age=99999999999999999999"}, want: 5 * time.Minute},
		{name: "max-age below MinAge", header: map[string]string{"Cache-Control": "max-age=5"}, want: 30 * time.Second},
		{name: "max-age 0", header: map[string]string{"Cache-Control": "max-age=0"}, want: 30 * time.Second},
		{name: "max-age not a number", header: map[string]string{"Cache-Control": "max-age=soon"}, want: 30 * time.Second},
		{name: "two max-ages", header: map[string]string{"Cache-Control": "max-age=200, max-age=100"}, want: 100 * time.Second},
		{name: "max-age less Age", header: map[string]string{"Cache-Control": "max-age=100", "Age": "40"}, want: time.Minute},
		{name: "no-store", header: map[string]string{"Cache-Control": "no-store"}, want: 30 * time.Second},
		{name: "no-cache", header: map[string]string{"Cache-Control": "max-age=120, no-cache"}, want: 30 * time.Second},
		{name: "no-cache with fields", header: map[string]string{"Cache-Control": `no-cache="Set-Cookie", max-age=120`}, want: 30 * time.Second},
		{name: "s-maxage is for shared caches", header: map[string]string{"Cache-Control": "s-maxage=60"}, want: 5 * time.Minute},
		{name: "Expires", header: map[string]string{"Date": at(0), "Expires": at(2 * time.Minute)}, want: 2 * time.Minute},
		{name: "Expires less Age", header: map[string]string{"Date": at(0), "Expires": at(2 * time.Minute), "Age": "60"}, want: time.Minute},
		{name: "Expires beyond MaxAge", header: map[string]string{"Date": at(0), "Expires": at(24 * time.Hour)}, want: 5 * time.Minute},
		{name: "Expires passed", header: map[string]string{"Date": at(0), "Expires": at(-time.Hour)}, want: 30 * time.Second},
		{name: "Expires 0", header: map[string]string{"Expires": "0"}, want: 30 * time.Second},
		{name: "max-age over Expires", header: map[string]string{"Cache-Control": "max-age=60", "Date": at(0), "Expires": at(4 * time.Minute)}, want: time.Minute},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			key := newKey(t, protocol.EdDSA)
			srv := newJWKSServer(t, jwks(t, key))
			for name, value := range tc.header {
				srv.setHeader(name, value)
			}
			k, _, clk := newURLKeys(t, srv)
			wantKey(t, k, "bank-a", key)
			clk.advance(tc.want - time.Second)
			wantKey(t, k, "bank-a", key)
			wantRequests(t, srv, 1)
			clk.advance(time.Second)
			wantKey(t, k, "bank-a", key)
			wantRequests(t, srv, 2)
		})
	}

	// Expires without Date is read against the hub's clock.
	key := newKey(t, protocol.EdDSA)
	srv := newJWKSServer(t, jwks(t, key))
	k, _, clk := newURLKeys(t, srv)
	srv.setHeader("Date", "")
	srv.setHeader("Expires", clk.Now().Add(100*time.Second).Format(http.TimeFormat))
	wantKey(t, k, "bank-a", key)
	clk.advance(99 * time.Second)
	wantKey(t, k, "bank-a", key)
	wantRequests(t, srv, 1)
	clk.advance(time.Second)
	wantKey(t, k, "bank-a", key)
	wantRequests(t, srv, 2)
}

// TestResolveKeyAgeBoundsConfigured checks MinAge and MaxAge set in
// KeysConfig.
func TestResolveKeyAgeBoundsConfigured(t *testing.T) {
	key := newKey(t, protocol.EdDSA)
	srv := newJWKSServer(t, jwks(t, key))
	clk := newClock()
	k := members.NewKeys(members.KeysConfig{
		Directory: newDirectory(urlMember("bank-a", srv.URL)), HTTPClient: srv.Client(),
		Now: clk.Now, MinAge: time.Minute, MaxAge: 10 * time.Minute,
	})
	steps := []struct {
		cacheControl string
		advance      time.Duration
		want         int
	}{
		{"max-age=5", 0, 1},
		{"max-age=5", time.Minute - time.Second, 1},
		{"max-age=3600", time.Second, 2}, // MinAge
		{"", 10*time.Minute - time.Second, 2},
		{"", time.Second, 3}, // MaxAge
		{"", 10*time.Minute - time.Second, 3},
		{"", time.Second, 4}, // MaxAge with no header
	}
	for _, s := range steps {
		srv.setHeader("Cache-Control", s.cacheControl)
		clk.advance(s.advance)
		wantKey(t, k, "bank-a", key)
		wantRequests(t, srv, s.want)
	}
}

func TestResolveKeyMaxAge(t *testing.T) {
	key := newKey(t, protocol.EdDSA)
	srv := newJWKSServer(t, jwks(t, key))
	clk := newClock()
	k := members.NewKeys(members.KeysConfig{
		Directory: newDirectory(urlMember("bank-a", srv.URL)), HTTPClient: srv.Client(),
		Now: clk.Now, MaxAge: 10 * time.Minute,
	})
	steps := []struct {
		advance time.Duration
		want    int
	}{
		{0, 1},
		{10*time.Minute - time.Second, 1},
		{time.Second, 2}, // MaxAge since the first fetch
		{10*time.Minute - time.Second, 2},
		{time.Second, 3},
	}
	for _, s := range steps {
		clk.advance(s.advance)
		wantKey(t, k, "bank-a", key)
		wantRequests(t, srv, s.want)
	}
}

func TestResolveKeyFetchFailures(t *testing.T) {
	key := newKey(t, protocol.EdDSA)
	good := jwks(t, key)
	padded := func(n int) []byte { return append(bytes.Clone(good), bytes.Repeat([]byte(" "), n-len(good))...) }
	var keyJSON json.RawMessage
	if err := json.Unmarshal(good[len(`{"keys":[`):len(good)-len(`]}`)], &keyJSON); err != nil {
		t.Fatal(err)
	}
	set := func(keys ...json.RawMessage) []byte {
		b, err := json.Marshal(map[string]any{"keys": keys})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	const jwkSet = "application/jwk-set+json"
	// Every body that is refused holds SECRET: no error may quote it.
	tests := []struct {
		name        string
		status      int
		contentType string // "" for none
		body        []byte
		want        string // substring of the error; "" if the answer is good
	}{
		{name: "500", status: http.StatusInternalServerError, contentType: "text/plain", body: []byte("SECRET database on fire"),
			want: "answered 500 Internal Server Error; want 200 OK"},
		{name: "404", status: http.StatusNotFound, contentType: "text/html", body: []byte("<p>SECRET not here</p>"), want: "answered 404 Not Found"},
		{name: "204", status: http.StatusNoContent, contentType: jwkSet, want: "answered 204 No Content"},
		{name: "long error body", status: http.StatusBadGateway, contentType: jwkSet, body: bytes.Repeat([]byte("SECRET "), 5000),
			want: "answered 502 Bad Gateway"},
		{name: "HTML", status: http.StatusOK, contentType: "text/html; charset=utf-8", body: []byte("<html>SECRET</html>"),
			want: `answered Content-Type "text/html", not JSON`},
		{name: "JSON as text", status: http.StatusOK, contentType: "text/plain; charset=utf-8", body: good,
			want: `answered Content-Type "text/plain", not JSON`},
		{name: "no content type", status: http.StatusOK, body: good, want: "answered without a Content-Type"},
		{name: "content type does not parse", status: http.StatusOK, contentType: "application/json; SECRET", body: good,
			want: "answered a Content-Type that does not parse"},
		{name: "not JSON", status: http.StatusOK, contentType: jwkSet, body: []byte("SECRET"), want: "answered a body that is not JSON"},
		{name: "empty", status: http.StatusOK, contentType: jwkSet, body: nil, want: "answered an empty body"},
		{name: "JSON not a set", status: http.StatusOK, contentType: jwkSet, body: []byte(`{"keys":"SECRET"}`),
			want: `answered JSON that is not a JWK Set (an object with a "keys" array)`},
		{name: "JSON array", status: http.StatusOK, contentType: jwkSet, body: []byte(`["SECRET"]`),
			want: `answered JSON that is not a JWK Set`},
		{name: "no keys", status: http.StatusOK, contentType: jwkSet, body: []byte(`{"keys":[],"SECRET":1}`),
			want: "answered a JWK Set with no keys"},
		{name: "one key not JSON object", status: http.StatusOK, contentType: jwkSet, body: []byte(`{"keys":["SECRET"]}`),
			want: "answered a JWK Set whose key 0 (of 1) is not a usable public signing key"},
		{name: "one key unusable", status: http.StatusOK, contentType: jwkSet,
			body: set(keyJSON, json.RawMessage(`{"kty":"OKP","crv":"Ed25519","kid":"SECRET","x":"AAAA"}`)),
			want: "answered a JWK Set whose key 1 (of 2) is not a usable public signing key"},
		{name: "a private key", status: http.StatusOK, contentType: jwkSet,
			body: set(json.RawMessage(`{"kty":"OKP","crv":"Ed25519","kid":"SECRET","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo","d":"nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A"}`)),
			want: "answered a JWK Set whose key 0 (of 1) is not a usable public signing key"},
		{name: "two keys with one kid", status: http.StatusOK, contentType: jwkSet, body: set(keyJSON, keyJSON),
			want: "answered a JWK Set with two keys of one kid"},
		{name: "too many keys", status: http.StatusOK, contentType: jwkSet, body: set(slices.Repeat([]json.RawMessage{keyJSON}, protocol.MaxKeySetKeys+1)...),
			want: "answered a JWK Set of 33 keys; it may hold at most 32"},
		{name: "oversized", status: http.StatusOK, contentType: jwkSet, body: padded(protocol.MaxKeySetSize + 1),
			want: "answered more than 65536 bytes"},
		{name: "far oversized", status: http.StatusOK, contentType: jwkSet, body: padded(1 << 20), want: "answered more than 65536 bytes"},
		{name: "exactly the largest size", status: http.StatusOK, contentType: jwkSet, body: padded(protocol.MaxKeySetSize)},
		{name: "application/json", status: http.StatusOK, contentType: "application/json", body: good},
		{name: "another JSON type with parameters", status: http.StatusOK, contentType: "Application/JWK-Set+JSON; charset=utf-8", body: good},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := newJWKSServer(t, nil)
			srv.answer(tc.status, tc.body)
			srv.setHeader("Content-Type", tc.contentType)
			k, _, clk := newURLKeys(t, srv)
			if tc.want == "" {
				wantKey(t, k, "bank-a", key)
				return
			}
			err := wantUnavailable(t, k, "bank-a", key.KeyID())
			for _, want := range []string{tc.want, `member "bank-a"`, "GET " + srv.URL} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("got %q, want it to contain %q", err, want)
				}
			}
			if strings.Contains(err.Error(), "SECRET") {
				t.Errorf("got %q, want no part of the answer's body", err)
			}
			wantRequests(t, srv, 1)

			// A failing key server is not asked again before MinRefresh.
			srv.answer(http.StatusOK, good)
			srv.setHeader("Content-Type", jwkSet)
			err = wantUnavailable(t, k, "bank-a", key.KeyID())
			if !strings.Contains(err.Error(), "next attempt in 10s") {
				t.Errorf("got %q, want it to say when the next attempt is", err)
			}
			wantRequests(t, srv, 1)
			clk.advance(10 * time.Second)
			wantKey(t, k, "bank-a", key)
			wantRequests(t, srv, 2)
		})
	}
}

// TestResolveKeyRefusesRedirects checks that a key server's redirect is
// refused, not followed: not to plain HTTP, not to another server, not even
// to another path of the same one. A redirect would let whoever answers at
// a member's URL send the hub anywhere.
func TestResolveKeyRefusesRedirects(t *testing.T) {
	key := newKey(t, protocol.EdDSA)
	// Where the redirects point: servers that would answer with a usable set.
	plain := newPlainJWKSServer(t, jwks(t, key))
	other := newJWKSServer(t, jwks(t, key))
	_, plainPort, err := net.SplitHostPort(plain.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		status   int
		location string
		target   *jwksServer // nil for the redirecting server itself
	}{
		{"to http", http.StatusFound, "http://localhost:" + plainPort + "/jwks.json", plain},
		{"to another server", http.StatusTemporaryRedirect, other.URL + "/jwks.json", other},
		{"permanent, to the same server", http.StatusMovedPermanently, "/keys/SECRET-PATH.json", nil},
		{"permanent, keeping the method", http.StatusPermanentRedirect, other.URL + "/jwks.json?SECRET", other},
		{"see other", http.StatusSeeOther, plain.URL + "/jwks.json", plain},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := newJWKSServer(t, nil)
			srv.answer(tc.status, []byte("SECRET"))
			srv.setHeader("Location", tc.location)
			target := tc.target
			if target == nil {
				target = srv
			}
			before := target.count()

			k, _, _ := newURLKeys(t, srv)
			err := wantUnavailable(t, k, "bank-a", key.KeyID())
			want := fmt.Sprintf("answered %d %s, a redirect, which the hub does not follow", tc.status, http.StatusText(tc.status))
			if !strings.Contains(err.Error(), want) {
				t.Errorf("got %q, want it to contain %q", err, want)
			}
			for _, leak := range []string{"SECRET", tc.location} {
				if strings.Contains(err.Error(), leak) {
					t.Errorf("got %q, want it without %q", err, leak)
				}
			}
			if tc.target != nil {
				if got := target.count() - before; got != 0 {
					t.Errorf("the redirect's target got %d requests, want 0", got)
				}
			}
			wantRequests(t, srv, 1)
		})
	}
}

func TestResolveKeyUnreachable(t *testing.T) {
	srv := newJWKSServer(t, nil)
	url := srv.URL
	srv.Close()
	k := members.NewKeys(members.KeysConfig{Directory: newDirectory(urlMember("bank-a", url)), HTTPClient: srv.Client()})
	if err := wantUnavailable(t, k, "bank-a", "kid"); !strings.Contains(err.Error(), "GET "+url) {
		t.Errorf("got %q, want it to name the URL", err)
	}
}

// TestResolveKeyErrorsHideURLSecrets checks that every error naming a
// member's JWKS URL names it by scheme, host and path only: its user info,
// query and fragment may carry credentials, and the errors end up in logs.
func TestResolveKeyErrorsHideURLSecrets(t *testing.T) {
	key := newKey(t, protocol.EdDSA)
	srv := newJWKSServer(t, jwks(t, key))
	down := newJWKSServer(t, nil)
	down.Close()
	secret := func(base string) string {
		return strings.Replace(base, "://", "://bank:PASS-1@", 1) + "/jwks.json?access_token=TOKEN-2#FRAG-3"
	}
	clk := newClock()
	k := members.NewKeys(members.KeysConfig{
		Directory: newDirectory(
			urlMember("bank-a", secret(srv.URL)),
			urlMember("bank-b", secret(down.URL)),
			urlMember("bank-c", secret("https://keys.example/%zz")),
		),
		HTTPClient: srv.Client(), Now: clk.Now,
	})
	check := func(err error, want string) {
		t.Helper()
		if !strings.Contains(err.Error(), want) {
			t.Errorf("got %q, want it to contain %q", err, want)
		}
		for _, leak := range []string{"PASS-1", "@", "TOKEN-2", "access_token", "FRAG-3", "%zz"} {
			if strings.Contains(err.Error(), leak) {
				t.Errorf("got %q, want it without %q", err, leak)
			}
		}
	}

	check(wantUnknownKey(t, k, "bank-a", "bogus-1"), "in the key set at "+srv.URL+"/jwks.json")
	check(wantUnknownKey(t, k, "bank-a", "bogus-2"), "fetched from "+srv.URL+"/jwks.json 0s ago")
	srv.answer(http.StatusInternalServerError, []byte("down"))
	clk.advance(time.Minute)
	check(wantUnknownKey(t, k, "bank-a", "bogus-3"), "refetching it failed: "+members.ErrKeySetUnavailable.Error()+
		`: member "bank-a": GET `+srv.URL+`/jwks.json: answered 500 Internal Server Error`)
	check(wantUnavailable(t, k, "bank-b", key.KeyID()), "GET "+down.URL+"/jwks.json: dial tcp")
	check(wantUnavailable(t, k, "bank-c", key.KeyID()), "GET <unparsable URL>: the URL does not parse")
	wantRequests(t, srv, 2)
}

// TestResolveKeyKeepsCachedSet checks that a key server that starts failing
// does not take a member's known keys away.
func TestResolveKeyKeepsCachedSet(t *testing.T) {
	key := newKey(t, protocol.EdDSA)
	srv := newJWKSServer(t, jwks(t, key))
	k, _, clk := newURLKeys(t, srv)
	wantKey(t, k, "bank-a", key)
	srv.answer(http.StatusServiceUnavailable, []byte("maintenance"))

	// An unknown kid refetches; the refetch fails; the kid stays unknown,
	// and the failure is named.
	clk.advance(time.Minute)
	err := wantUnknownKey(t, k, "bank-a", "next-key")
	if !strings.Contains(err.Error(), "refetching it failed") || !strings.Contains(err.Error(), "503") {
		t.Errorf("got %q, want it to say the refetch failed with 503", err)
	}
	wantRequests(t, srv, 2)
	wantKey(t, k, "bank-a", key)
	wantRequests(t, srv, 2)

	// Past its expiry the set is refetched, fails, and stays in use; the
	// next try waits for MinRefresh.
	clk.advance(5 * time.Minute)
	wantKey(t, k, "bank-a", key)
	wantRequests(t, srv, 3)
	clk.advance(5 * time.Second)
	wantKey(t, k, "bank-a", key)
	wantRequests(t, srv, 3)
	clk.advance(5 * time.Second)
	wantKey(t, k, "bank-a", key)
	wantRequests(t, srv, 4)

	// Once the server answers again, the set is fresh and no longer
	// refetched on every use.
	srv.answer(http.StatusOK, jwks(t, key))
	clk.advance(10 * time.Second)
	wantKey(t, k, "bank-a", key)
	wantRequests(t, srv, 5)
	clk.advance(time.Minute)
	wantKey(t, k, "bank-a", key)
	wantRequests(t, srv, 5)
}

// TestResolveKeyMaxStale checks that a key set whose refetches keep
// failing is used for at most MaxStale (an hour) past its expiry, so that
// a key server that stops answering cannot keep a removed key in use.
func TestResolveKeyMaxStale(t *testing.T) {
	key := newKey(t, protocol.EdDSA)
	srv := newJWKSServer(t, jwks(t, key))
	k, _, clk := newURLKeys(t, srv)
	wantKey(t, k, "bank-a", key)
	srv.answer(http.StatusServiceUnavailable, nil)

	clk.advance(5*time.Minute + time.Hour - time.Second) // a second short of an hour past its expiry
	wantKey(t, k, "bank-a", key)
	wantRequests(t, srv, 2)
	clk.advance(10 * time.Second)
	err := wantUnavailable(t, k, "bank-a", key.KeyID())
	for _, want := range []string{`member "bank-a": the key set fetched from ` + srv.URL + "/jwks.json 1h5m9s ago", "more than 1h0m0s past its expiry", "answered 503 Service Unavailable"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("got %q, want it to contain %q", err, want)
		}
	}
	wantRequests(t, srv, 3)
	err = wantUnavailable(t, k, "bank-a", key.KeyID())
	if !strings.Contains(err.Error(), "next attempt in 10s") {
		t.Errorf("got %q, want it to say when the next attempt is", err)
	}
	wantRequests(t, srv, 3)

	srv.answer(http.StatusOK, jwks(t, key))
	clk.advance(10 * time.Second)
	wantKey(t, k, "bank-a", key)
	wantRequests(t, srv, 4)
}

func TestResolveKeyForgetAndUpdate(t *testing.T) {
	key := newKey(t, protocol.EdDSA)
	srv := newJWKSServer(t, jwks(t, key))
	k, dir, _ := newURLKeys(t, srv)
	wantKey(t, k, "bank-a", key)
	wantKey(t, k, "bank-a", key)
	wantRequests(t, srv, 1)

	k.Forget("bank-a")
	wantKey(t, k, "bank-a", key)
	wantRequests(t, srv, 2)

	m, _ := dir.Member(context.Background(), "bank-a")
	m.UpdatedAt = m.UpdatedAt.Add(time.Minute)
	dir.put(m)
	wantKey(t, k, "bank-a", key)
	wantRequests(t, srv, 3)

	other := newKey(t, protocol.ES256)
	srv2 := newJWKSServer(t, jwks(t, other))
	m.JWKSURL = srv2.URL + "/keys" // same UpdatedAt, another URL
	dir.put(m)
	k2 := members.NewKeys(members.KeysConfig{Directory: dir, HTTPClient: srv2.Client()})
	wantKey(t, k2, "bank-a", other)
	wantRequests(t, srv2, 1)

	// A member removed from the directory is unknown, whatever was cached.
	k.Forget("nobody") // forgetting a member never seen is harmless
	dir.remove("bank-a")
	wantUnknownKey(t, k, "bank-a", key.KeyID())
}

// TestResolveKeySharedFetch checks that concurrent resolutions for one
// member wait for one fetch rather than each making their own.
func TestResolveKeySharedFetch(t *testing.T) {
	key := newKey(t, protocol.EdDSA)
	srv := newJWKSServer(t, jwks(t, key))
	gate, start := make(chan struct{}), make(chan struct{}, 100)
	srv.mu.Lock()
	srv.gate, srv.start = gate, start
	srv.mu.Unlock()
	k, _, _ := newURLKeys(t, srv)

	var wg sync.WaitGroup
	results := make(chan error, 20)
	resolve := func() {
		_, err := k.ResolveKey(context.Background(), "bank-a", key.KeyID())
		results <- err
	}
	wg.Go(resolve)
	<-start // the first fetch is under way
	for range 19 {
		wg.Go(resolve)
	}
	time.Sleep(50 * time.Millisecond) // let the others reach the member's lock
	close(gate)
	wg.Wait()
	close(results)
	for err := range results {
		if err != nil {
			t.Errorf("got %v, want the key", err)
		}
	}
	wantRequests(t, srv, 1)
}

// TestResolveKeyCancelWhileWaiting checks that a resolution waiting for
// another's fetch gives up when its context ends.
func TestResolveKeyCancelWhileWaiting(t *testing.T) {
	key := newKey(t, protocol.EdDSA)
	srv := newJWKSServer(t, jwks(t, key))
	gate, start := make(chan struct{}), make(chan struct{}, 1)
	srv.mu.Lock()
	srv.gate, srv.start = gate, start
	srv.mu.Unlock()
	k, _, _ := newURLKeys(t, srv)

	first := make(chan error, 1)
	go func() {
		_, err := k.ResolveKey(context.Background(), "bank-a", key.KeyID())
		first <- err
	}()
	<-start

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, err := k.ResolveKey(ctx, "bank-a", key.KeyID()); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("waiting resolution: got %v, want context.DeadlineExceeded", err)
	}
	close(gate)
	if err := <-first; err != nil {
		t.Errorf("fetching resolution: got %v, want the key", err)
	}
	wantRequests(t, srv, 1)
}

// TestResolveKeyFetchOutlivesCancel checks that a fetch whose request is
// cancelled still completes and serves the next resolution.
func TestResolveKeyFetchOutlivesCancel(t *testing.T) {
	key := newKey(t, protocol.EdDSA)
	srv := newJWKSServer(t, jwks(t, key))
	gate, start := make(chan struct{}), make(chan struct{}, 1)
	srv.mu.Lock()
	srv.gate, srv.start = gate, start
	srv.mu.Unlock()
	k, _, _ := newURLKeys(t, srv)

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := k.ResolveKey(ctx, "bank-a", key.KeyID())
		done <- err
	}()
	<-start
	cancel()
	close(gate)
	if err := <-done; err != nil {
		t.Errorf("got %v, want the key fetched despite the cancellation", err)
	}
	wantKey(t, k, "bank-a", key)
	wantRequests(t, srv, 1)
}

func TestKeysDefaults(t *testing.T) {
	key := newKey(t, protocol.EdDSA)
	var requests atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		w.Header().Set("Content-Type", "application/json")
		w.Write(jwks(t, key))
	}))
	defer srv.Close()
	m := urlMember("bank-a", srv.URL)
	if err := m.Validate(true); err != nil {
		t.Fatal(err)
	}
	k := members.NewKeys(members.KeysConfig{Directory: newDirectory(m)})
	wantKey(t, k, "bank-a", key)
	wantUnknownKey(t, k, "bank-a", "bogus") // within the default MinRefresh
	wantKey(t, k, "bank-a", key)            // within the default MaxAge
	if got := requests.Load(); got != 1 {
		t.Errorf("got %d requests, want 1", got)
	}

	defer func() {
		if recover() == nil {
			t.Errorf("NewKeys without a Directory: got no panic, want one")
		}
	}()
	members.NewKeys(members.KeysConfig{})
}

// TestKeysVerify uses Keys as the hub does: to verify members' bearer
// tokens and submissions.
func TestKeysVerify(t *testing.T) {
	const hub = "https://hub.example"
	inlineKey, urlKey := newKey(t, protocol.EdDSA), newKey(t, protocol.ES256)
	a := validMember(t)
	a.JWKS = jwks(t, inlineKey)
	srv := newJWKSServer(t, jwks(t, urlKey))
	b := urlMember("bank-b", srv.URL)
	down := newJWKSServer(t, nil)
	down.answer(http.StatusInternalServerError, nil)
	c := urlMember("bank-c", down.URL)
	clk := newClock()
	k := members.NewKeys(members.KeysConfig{Directory: newDirectory(a, b, c), HTTPClient: srv.Client(), Now: clk.Now})
	now := clk.Now()

	bearer := func(key *protocol.SigningKey, member string) string {
		tok, err := protocol.NewBearer(key, member, hub, now, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	tests := []struct {
		name    string
		token   string
		wantErr error // nil for success
	}{
		{"inline key", bearer(inlineKey, "bank-a"), nil},
		{"URL key", bearer(urlKey, "bank-b"), nil},
		{"another member's key", bearer(urlKey, "bank-a"), protocol.ErrUnknownKey},
		{"unknown member", bearer(inlineKey, "bank-z"), protocol.ErrUnknownKey},
		{"key server down", bearer(urlKey, "bank-c"), members.ErrKeySetUnavailable},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := protocol.VerifyBearer(context.Background(), tc.token, k, protocol.BearerOptions{Audience: hub, Now: now})
			if tc.wantErr == nil {
				if err != nil {
					t.Fatalf("got %v, want the token verified", err)
				}
				return
			}
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("got %v, %v; want an error wrapping %v", got, err, tc.wantErr)
			}
			var verr *protocol.VerificationError
			if isVerification := errors.As(err, &verr); isVerification != (tc.wantErr == protocol.ErrUnknownKey) {
				t.Errorf("got %v (a verification error: %v), want a verification error only for an unknown key", err, isVerification)
			}
		})
	}

	sub, err := protocol.SignSubmission(&protocol.Submission{
		Issuer: "bank-b", Audience: hub, IssuedAt: now, ID: "019aa5f0-8c00-7000-8000-000000000001",
		Request: protocol.LiftFlag{FlagID: "flag-1"},
	}, urlKey)
	if err != nil {
		t.Fatal(err)
	}
	got, err := protocol.VerifySubmission(context.Background(), sub, k, protocol.SubmissionOptions{Audience: hub, Now: now})
	if err != nil || got.Issuer != "bank-b" || got.KeyID != urlKey.KeyID() {
		t.Errorf("VerifySubmission: got %+v, %v; want bank-b's submission under its key", got, err)
	}
	wantRequests(t, srv, 1)
}

// TestKeysConcurrent resolves, forgets and updates members from many
// goroutines at once; run it with -race.
func TestKeysConcurrent(t *testing.T) {
	keys := []*protocol.SigningKey{newKey(t, protocol.EdDSA), newKey(t, protocol.ES256)}
	srv := newJWKSServer(t, jwks(t, keys...))
	var ms []*api.Member
	for i := range 4 {
		m := validMember(t)
		m.ID, m.JWKS = fmt.Sprintf("inline-%d", i), jwks(t, keys...)
		ms = append(ms, m, urlMember(fmt.Sprintf("url-%d", i), srv.URL))
	}
	dir := newDirectory(ms...)
	clk := newClock()
	k := members.NewKeys(members.KeysConfig{Directory: dir, HTTPClient: srv.Client(), Now: clk.Now, MinRefresh: time.Second})

	var wg sync.WaitGroup
	for g := range 16 {
		wg.Go(func() {
			for i := range 100 {
				m := ms[(g+i)%len(ms)]
				switch i % 10 {
				case 0:
					k.Forget(m.ID)
				case 1:
					u := *m
					u.UpdatedAt = created.Add(time.Duration(i) * time.Second)
					dir.put(&u)
				case 2:
					clk.advance(time.Second)
				case 3:
					if _, err := k.ResolveKey(context.Background(), m.ID, "bogus"); !errors.Is(err, protocol.ErrUnknownKey) {
						t.Errorf("bogus kid of %s: got %v, want protocol.ErrUnknownKey", m.ID, err)
					}
				default:
					key := keys[i%len(keys)]
					if got, err := k.ResolveKey(context.Background(), m.ID, key.KeyID()); err != nil || got.KeyID() != key.KeyID() {
						t.Errorf("%s: got %v, %v; want key %q", m.ID, got, err, key.KeyID())
					}
				}
			}
		})
	}
	wg.Wait()
}

func validMember(t testing.TB) *api.Member {
	return &api.Member{
		ID:        "bank-a",
		Name:      "Bank A AB",
		Roles:     []api.Role{api.RoleCheck, api.RoleFlag},
		JWKS:      jwks(t, newKey(t, protocol.EdDSA), newKey(t, protocol.ES256)),
		Status:    api.MemberActive,
		CreatedAt: created,
		UpdatedAt: created,
	}
}
