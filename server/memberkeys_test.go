package server_test

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/dns/dnsmessage"

	"github.com/sparr-dev/sparr/federation/webhook"
	"github.com/sparr-dev/sparr/protocol"
	"github.com/sparr-dev/sparr/protocol/api"
	"github.com/sparr-dev/sparr/server"
	"github.com/sparr-dev/sparr/server/hubtest"
)

// keyServer is a member's key server on loopback: it answers every request
// with its handler and counts the requests it receives.
type keyServer struct {
	*httptest.Server
	requests atomic.Int64
	handler  atomic.Pointer[http.HandlerFunc]
}

// newKeyServer starts a key server that answers with handle, or 404 if
// handle is nil.
func newKeyServer(t *testing.T, handle http.HandlerFunc) *keyServer {
	s := new(keyServer)
	s.handle(handle)
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.requests.Add(1)
		(*s.handler.Load())(w, r)
	}))
	t.Cleanup(s.Close)
	return s
}

// handle makes s answer with h from now on, or 404 if h is nil.
func (s *keyServer) handle(h http.HandlerFunc) {
	if h == nil {
		h = http.NotFound
	}
	s.handler.Store(&h)
}

// port returns the port s listens on.
func (s *keyServer) port(t *testing.T) string {
	_, port, err := net.SplitHostPort(s.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	return port
}

// serveKeySet answers with the JWK Set of the public halves of keys.
func serveKeySet(t *testing.T, keys ...*protocol.SigningKey) http.HandlerFunc {
	pubs := make([]*protocol.PublicKey, len(keys))
	for i, k := range keys {
		pubs[i] = k.Public()
	}
	set, err := protocol.NewKeySet(pubs...)
	if err != nil {
		t.Fatal(err)
	}
	body, err := json.Marshal(set)
	if err != nil {
		t.Fatal(err)
	}
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/jwk-set+json")
		w.Write(body)
	}
}

// addURLMember registers a member whose key set is at jwksURL and returns
// a new key of its.
func addURLMember(t *testing.T, hub *hubtest.Hub, id, jwksURL string) *protocol.SigningKey {
	t.Helper()
	key, err := protocol.GenerateSigningKey(protocol.EdDSA, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	resp := hub.Operator.JSON(t, http.MethodPost, "/v1/admin/members", map[string]any{
		"id": id, "name": "Member " + id, "roles": []api.Role{api.RoleCheck}, "jwks_url": jwksURL})
	mustStatus(t, resp, http.StatusCreated)
	return key
}

// asMember sends an authenticated request as member, with a bearer token
// signed by key.
func asMember(t *testing.T, hub *hubtest.Hub, member string, key *protocol.SigningKey) *hubtest.Response {
	t.Helper()
	bearer, err := protocol.NewBearer(key, member, hub.URL, hub.Now(), protocol.MaxBearerLifetime)
	if err != nil {
		t.Fatal(err)
	}
	return withBearer(t, hub, http.MethodGet, "/v1/flags/f-1", "Bearer "+bearer)
}

// keyLogLines returns the log lines about member key sets that could not
// be had.
func keyLogLines(logs *logBuffer) []string {
	var lines []string
	for _, l := range strings.Split(logs.String(), "\n") {
		if strings.Contains(l, "resolving a member key failed") {
			lines = append(lines, l)
		}
	}
	return lines
}

// fakeDNS returns a resolver that answers A queries from table, over an
// in-memory connection, and says every other name does not exist.
func fakeDNS(t *testing.T, table map[string]netip.Addr) *net.Resolver {
	serve := func(c net.Conn) {
		defer c.Close()
		for {
			// A connection that is not a net.PacketConn carries DNS as
			// over TCP: each message after its two-byte length.
			var n uint16
			if err := binary.Read(c, binary.BigEndian, &n); err != nil {
				return
			}
			msg := make([]byte, n)
			if _, err := io.ReadFull(c, msg); err != nil {
				return
			}
			var p dnsmessage.Parser
			h, err := p.Start(msg)
			if err != nil {
				return
			}
			q, err := p.Question()
			if err != nil {
				return
			}
			addr, known := table[strings.TrimSuffix(q.Name.String(), ".")]
			h.Response, h.Authoritative, h.RecursionAvailable = true, true, true
			if !known {
				h.RCode = dnsmessage.RCodeNameError
			}
			b := dnsmessage.NewBuilder(make([]byte, 2, 514), h)
			b.EnableCompression()
			if b.StartQuestions() != nil || b.Question(q) != nil || b.StartAnswers() != nil {
				return
			}
			if known && q.Type == dnsmessage.TypeA {
				rh := dnsmessage.ResourceHeader{Name: q.Name, Type: dnsmessage.TypeA, Class: dnsmessage.ClassINET, TTL: 60}
				if b.AResource(rh, dnsmessage.AResource{A: addr.As4()}) != nil {
					return
				}
			}
			out, err := b.Finish()
			if err != nil {
				return
			}
			binary.BigEndian.PutUint16(out, uint16(len(out)-2))
			if _, err := c.Write(out); err != nil {
				return
			}
		}
	}
	return &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, address string) (net.Conn, error) {
		client, server := net.Pipe()
		go serve(server)
		return client, nil
	}}
}

// TestMemberKeySetSpecialAddressesRefused: under the default target policy
// the hub does not fetch a member's key set from loopback, private or
// link-local addresses, whatever the URL's host name resolves to; it
// answers 503 and logs why.
func TestMemberKeySetSpecialAddressesRefused(t *testing.T) {
	logs := new(logBuffer)
	resolver := fakeDNS(t, map[string]netip.Addr{
		"keys.bank-p.example": netip.MustParseAddr("10.0.0.5"),
		"keys.bank-l.example": netip.MustParseAddr("127.0.0.1"),
		"keys.bank-m.example": netip.MustParseAddr("169.254.169.254"),
	})
	hub := hubtest.Start(t, hubtest.Options{Configure: func(c *server.Config) {
		c.Logger = slog.New(slog.NewJSONHandler(logs, nil))
		c.Targets = webhook.TargetPolicy{Resolver: resolver} // the production policy
	}})
	key := newKeyServer(t, nil)
	port := key.port(t)

	tests := []struct {
		member, url, want string
	}{
		{"bank-p", "http://keys.bank-p.example:" + port + "/jwks.json", "10.0.0.5 is a private address"},
		{"bank-l", "http://keys.bank-l.example:" + port + "/jwks.json", "127.0.0.1 is a loopback address"},
		{"bank-h", "http://localhost:" + port + "/jwks.json", "is a loopback address"},
		{"bank-m", "http://keys.bank-m.example/latest/meta-data/", "169.254.169.254 is a link-local address"},
	}
	for _, tc := range tests {
		t.Run(tc.member, func(t *testing.T) {
			signer := addURLMember(t, hub, tc.member, tc.url)
			key.handle(serveKeySet(t, signer)) // what the hub would get, were it to connect
			wantProblem(t, asMember(t, hub, tc.member, signer), protocol.ProblemUnavailable)
			if n := key.requests.Load(); n != 0 {
				t.Errorf("the key server got %d requests, want 0", n)
			}
			lines := keyLogLines(logs)
			if len(lines) == 0 || !strings.Contains(lines[len(lines)-1], tc.want) || !strings.Contains(lines[len(lines)-1], tc.member) {
				t.Errorf("got log lines %q, want the last to name %s and say %q", lines, tc.member, tc.want)
			}
		})
	}
}

// TestMemberKeySetRedirectNotFollowed: a member's key server that
// redirects is refused; the hub never asks where it points.
func TestMemberKeySetRedirectNotFollowed(t *testing.T) {
	logs := new(logBuffer)
	hub := hubtest.Start(t, hubtest.Options{Configure: func(c *server.Config) {
		c.Logger = slog.New(slog.NewJSONHandler(logs, nil))
	}})
	target := newKeyServer(t, nil)
	for _, status := range []int{http.StatusFound, http.StatusTemporaryRedirect} {
		// Another host than the member's URL names, over plain HTTP.
		location := "http://localhost:" + target.port(t) + "/jwks.json"
		redirect := newKeyServer(t, func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, location, status) })
		member := "bank-r" + strings.ToLower(http.StatusText(status)[:1])
		signer := addURLMember(t, hub, member, redirect.URL+"/jwks.json")
		target.handle(serveKeySet(t, signer))

		wantProblem(t, asMember(t, hub, member, signer), protocol.ProblemUnavailable)
		if n := redirect.requests.Load(); n != 1 {
			t.Errorf("%d: the member's key server got %d requests, want 1", status, n)
		}
		if n := target.requests.Load(); n != 0 {
			t.Errorf("%d: the redirect's target got %d requests, want 0", status, n)
		}
		lines := keyLogLines(logs)
		if len(lines) == 0 || !strings.Contains(lines[len(lines)-1], "a redirect, which the hub does not follow") {
			t.Errorf("%d: got log lines %q, want the last to say the redirect was not followed", status, lines)
		}
		if strings.Contains(logs.String(), location) {
			t.Errorf("%d: got logs %s, want no line with the redirect's location", status, logs)
		}
	}
}

// TestMemberKeySetBodyNeverLogged: whatever a member's key server answers,
// no part of its body reaches the hub's logs or its answers; the log says
// what was wrong with it instead.
func TestMemberKeySetBodyNeverLogged(t *testing.T) {
	logs := new(logBuffer)
	hub := hubtest.Start(t, hubtest.Options{Configure: func(c *server.Config) {
		c.Logger = slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}})
	const secret = "SECRET-internal-admin-page"
	tests := []struct {
		member, contentType string
		status              int
		body                string
		want                string
	}{
		{"bank-a", "text/plain", http.StatusInternalServerError, secret, "answered 500 Internal Server Error"},
		{"bank-b", "text/html", http.StatusOK, "<html>" + secret + "</html>", `answered Content-Type \"text/html\", not JSON`},
		{"bank-c", "application/json", http.StatusOK, secret, "answered a body that is not JSON"},
		{"bank-d", "application/json", http.StatusOK, `{"keys":[{"kty":"OKP","crv":"Ed25519","kid":"` + secret + `","x":"AA"}]}`,
			"answered a JWK Set whose key 0 (of 1) is not a usable public signing key"},
		{"bank-e", "application/json", http.StatusOK, `{"keys":"` + secret + `"}`, "answered JSON that is not a JWK Set"},
	}
	var answers []string
	for _, tc := range tests {
		srv := newKeyServer(t, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", tc.contentType)
			w.WriteHeader(tc.status)
			io.WriteString(w, tc.body)
		})
		signer := addURLMember(t, hub, tc.member, srv.URL+"/jwks.json")
		resp := asMember(t, hub, tc.member, signer)
		wantProblem(t, resp, protocol.ProblemUnavailable)
		answers = append(answers, string(resp.Body))
		lines := keyLogLines(logs)
		if len(lines) == 0 || !strings.Contains(lines[len(lines)-1], tc.want) {
			t.Errorf("%s: got log lines %q, want the last to say %q", tc.member, lines, tc.want)
		}
	}

	for _, a := range answers {
		if strings.Contains(a, "SECRET") {
			t.Errorf("got answer %s, want no part of a key server's body", a)
		}
	}
	if strings.Contains(logs.String(), "SECRET") {
		t.Errorf("got logs %s, want no part of a key server's body", logs)
	}
}

// TestMemberKeyRotationByURL rotates a member's key at its key set URL on
// a real hub: the next key verifies on its first use, and the retired one
// stops verifying within five minutes of its removal.
func TestMemberKeyRotationByURL(t *testing.T) {
	clock := hubtest.NewClock(time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC))
	hub := hubtest.Start(t, hubtest.Options{Clock: clock})
	srv := newKeyServer(t, nil)
	old := addURLMember(t, hub, "bank-k", srv.URL+"/jwks.json")
	next, err := protocol.GenerateSigningKey(protocol.ES256, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	authenticated := func(key *protocol.SigningKey) bool {
		t.Helper()
		resp := asMember(t, hub, "bank-k", key)
		switch resp.Status {
		case http.StatusNotFound: // authenticated; there is no such flag
			return true
		case http.StatusUnauthorized:
			return false
		}
		t.Fatalf("got %d %s, want 404 or 401", resp.Status, resp.Body)
		return false
	}

	srv.handle(serveKeySet(t, old))
	if !authenticated(old) {
		t.Fatal("old key: refused, want it verified")
	}
	srv.handle(serveKeySet(t, old, next))
	clock.Advance(15 * time.Second)
	if !authenticated(next) {
		t.Error("next key on its first use: refused, want it verified")
	}
	srv.handle(serveKeySet(t, next))
	clock.Advance(5*time.Minute - time.Second)
	if !authenticated(old) {
		t.Error("old key within the cache's lifetime: refused, want it verified")
	}
	clock.Advance(time.Second)
	if authenticated(old) {
		t.Error("old key five minutes after its removal: verified, want it refused")
	}
	if !authenticated(next) {
		t.Error("next key: refused, want it verified")
	}
	if n := srv.requests.Load(); n != 3 {
		t.Errorf("the key server got %d requests, want 3", n)
	}
}
