package server_test

import (
	"context"
	"crypto"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sparr-dev/sparr/protocol"
	"github.com/sparr-dev/sparr/protocol/api"
	"github.com/sparr-dev/sparr/server"
	"github.com/sparr-dev/sparr/server/decide"
	"github.com/sparr-dev/sparr/server/hubtest"
)

// An access says who may call a route: anyone, or a member holding one of
// the roles. query, if set, is sent with every request of the matrix, so
// that a role holder's request to a route with required parameters is one
// the route answers.
type access struct {
	public bool
	// signed routes take no bearer token: the request is authenticated by
	// the webhook signature of a peered hub, which no member has.
	signed bool
	roles  []api.Role
	query  string
	// path, if set, is the path requested, for a route whose parameters
	// concrete cannot fill.
	path string
}

var anyone = access{public: true}

// peerSigned is who may call a hub's webhook receiver for its peers:
// a peered hub, by its webhook signature, and no member by its bearer.
var peerSigned = access{signed: true}

func holders(roles ...api.Role) access { return access{roles: roles} }

// asking returns the access with a query string to send.
func (a access) asking(query string) access {
	a.query = query
	return a
}

// at returns the access with the path to request.
func (a access) at(path string) access {
	a.path = path
	return a
}

const (
	flagR      = api.RoleFlag
	suspicionR = api.RoleSuspicion
	checkR     = api.RoleCheck
	regulatorR = api.RoleRegulator
	operatorR  = api.RoleOperator
	peerR      = api.RolePeer
)

// authzTable is who may call what, keyed by "METHOD path" (gin syntax). It
// is written out here, not derived from server.Routes, so that it is a
// second, independent statement of the access rules: a change to a route's
// roles must be made in both places.
var authzTable = map[string]access{
	"GET /.well-known/sparr-configuration": anyone,
	"GET /.well-known/jwks.json":           anyone,
	"GET /.well-known/ssf-configuration":   anyone,
	"GET /healthz":                         anyone,
	"GET /readyz":                          anyone,

	"POST /v1/tokens":              holders(flagR, suspicionR, checkR),
	"POST /v1/peering/tokens":      holders(peerR),
	"POST /v1/peering/check":       holders(peerR),
	"POST /v1/peering/submissions": holders(peerR),
	"POST /v1/peering/events":      peerSigned,
	"POST /v1/peering/outcome":     holders(peerR),

	"POST /v1/flags":            holders(flagR),
	"GET /v1/flags/:id":         holders(flagR, checkR),
	"POST /v1/flags/:id/extend": holders(flagR),
	"POST /v1/flags/:id/thaw":   holders(flagR),
	"POST /v1/flags/:id/lift":   holders(flagR),

	"POST /v1/suspicions":             holders(suspicionR),
	"POST /v1/suspicions/:id/retract": holders(suspicionR),
	"POST /v1/suspicions/:id/details": holders(checkR),

	"POST /v1/payees":             holders(flagR, suspicionR, checkR),
	"GET /v1/payees/:id":          holders(flagR, suspicionR, checkR),
	"POST /v1/payees/:id/contest": holders(flagR, suspicionR, checkR),

	"POST /v1/recalls":                 holders(flagR, suspicionR, checkR),
	"GET /v1/recalls/:id":              holders(flagR, suspicionR, checkR),
	"POST /v1/recalls/:id/acknowledge": holders(flagR, suspicionR, checkR),
	"POST /v1/recalls/:id/outcome":     holders(flagR, suspicionR, checkR),

	"POST /v1/check":              holders(checkR),
	"POST /v1/checks/:id/outcome": holders(checkR),
	"POST /v1/checks/replica":     holders(checkR),
	"POST /v1/checks/:id/denial":  holders(flagR),

	"POST /v1/subjects/history":          holders(flagR, suspicionR, checkR),
	"POST /v1/subjects/report":           holders(flagR, suspicionR, checkR),
	"POST /v1/disputes":                  holders(flagR, suspicionR, checkR),
	"GET /v1/disputes/:id":               holders(flagR, suspicionR, checkR),
	"POST /v1/disputes/:id/answer":       holders(flagR, suspicionR, checkR),
	"POST /v1/erasure-attestations":      holders(flagR, suspicionR, checkR),
	"GET /v1/erasure-attestations/:jti":  holders(flagR, suspicionR, checkR, regulatorR, operatorR),
	"GET /v1/audit/erasure-attestations": holders(regulatorR, operatorR),

	"GET /v1/records/:jti": holders(flagR, suspicionR, checkR),

	"GET /v1/events":                        holders(flagR, suspicionR, checkR, peerR),
	"GET /v1/snapshot":                      holders(flagR, suspicionR, checkR),
	"GET /v1/members/self":                  holders(flagR, suspicionR, checkR, regulatorR, operatorR, peerR),
	"PUT /v1/members/self/endpoint":         holders(flagR, suspicionR, checkR, peerR),
	"GET /v1/members/self/endpoint":         holders(flagR, suspicionR, checkR, peerR),
	"DELETE /v1/members/self/endpoint":      holders(flagR, suspicionR, checkR, peerR),
	"POST /v1/members/self/endpoint/secret": holders(flagR, suspicionR, checkR, peerR),
	"POST /v1/members/self/endpoint/resume": holders(flagR, suspicionR, checkR, peerR),

	"POST /v1/ssf/stream":   holders(flagR, suspicionR, checkR),
	"GET /v1/ssf/stream":    holders(flagR, suspicionR, checkR),
	"PATCH /v1/ssf/stream":  holders(flagR, suspicionR, checkR),
	"PUT /v1/ssf/stream":    holders(flagR, suspicionR, checkR),
	"DELETE /v1/ssf/stream": holders(flagR, suspicionR, checkR).asking("stream_id=no-such-stream"),
	"GET /v1/ssf/status":    holders(flagR, suspicionR, checkR).asking("stream_id=no-such-stream"),
	"POST /v1/ssf/status":   holders(flagR, suspicionR, checkR),
	"POST /v1/ssf/verify":   holders(flagR, suspicionR, checkR),
	"POST /v1/ssf/poll":     holders(flagR, suspicionR, checkR),

	"GET /v1/log/checkpoint":          anyone,
	"GET /v1/log/proof/inclusion":     holders(flagR, suspicionR, checkR, regulatorR, operatorR).asking("index=0&size=1"),
	"GET /v1/log/proof/consistency":   holders(flagR, suspicionR, checkR, regulatorR, operatorR).asking("old=1&new=1"),
	"GET /v1/log/witnesses":           anyone,
	"GET /v1/log/entries":             holders(regulatorR).asking("start=0&end=1"),
	"GET /v1/log/tile/:level/*index":  anyone.at("/v1/log/tile/0/000.p/1"),
	"GET /v1/log/tile/entries/*index": holders(regulatorR).at("/v1/log/tile/entries/000.p/1"),
	"GET /v1/audit/entries":           holders(regulatorR),
	"GET /v1/audit/stats":             holders(regulatorR),
	"GET /v1/audit/export":            holders(regulatorR),
	"GET /v1/audit/members":           holders(regulatorR),

	"GET /v1/admin/members":              holders(operatorR),
	"POST /v1/admin/members":             holders(operatorR),
	"GET /v1/admin/members/:id":          holders(operatorR),
	"PATCH /v1/admin/members/:id":        holders(operatorR),
	"POST /v1/admin/members/:id/suspend": holders(operatorR),
	"POST /v1/admin/members/:id/resume":  holders(operatorR),
	"GET /v1/admin/endpoints":            holders(operatorR),
	"POST /v1/admin/erasures":            holders(operatorR),
	"GET /v1/admin/backup":               holders(operatorR),
	"GET /v1/admin/peers":                holders(operatorR),
	"POST /v1/admin/peers":               holders(operatorR),
	"DELETE /v1/admin/peers/:id":         holders(operatorR),

	"GET /v1/admin/cluster":                holders(operatorR),
	"POST /v1/admin/cluster/servers":       holders(operatorR),
	"DELETE /v1/admin/cluster/servers/:id": holders(operatorR),
	"POST /v1/admin/cluster/leadership":    holders(operatorR),
}

// concrete fills a route's parameters with ids that name nothing, so
// that no request of the matrix changes anything but the log.
func concrete(path string) string {
	parts := strings.Split(path, "/")
	for i, p := range parts {
		if strings.HasPrefix(p, ":") {
			parts[i] = "no-such-" + p[1:]
		}
	}
	return strings.Join(parts, "/")
}

// TestAuthzTableCoversRoutes fails if a route has no row in the table or
// a row names no route.
func TestAuthzTableCoversRoutes(t *testing.T) {
	routes := map[string]bool{}
	for _, r := range server.Routes() {
		key := r.Method + " " + r.Path
		routes[key] = true
		if _, ok := authzTable[key]; !ok {
			t.Errorf("got no row for route %s in authzTable, want one saying who may call it", key)
		}
	}
	for key := range authzTable {
		if !routes[key] {
			t.Errorf("got a row for %s in authzTable, want rows only for routes", key)
		}
	}
}

// A principal is one kind of caller of the matrix.
type principal struct {
	name   string
	member *hubtest.Member // nil: anonymous
	roles  []api.Role
	// suspended members are refused everywhere but public routes.
	suspended bool
}

// TestAuthorizationMatrix sends every route a request from every kind of
// caller and checks the answer against authzTable: public routes answer
// everyone; others refuse the anonymous with 401, the suspended and those
// without a role with 403, and let role holders through to the handler.
func TestAuthorizationMatrix(t *testing.T) {
	hub := hubtest.Start(t, hubtest.Options{Policy: decide.Policy{SuspicionLegalBasis: "brottsdatalagen-2-kap-4-par"}})
	principals := []principal{{name: "anonymous"}}
	for _, r := range []api.Role{flagR, suspicionR, checkR, regulatorR, peerR} {
		principals = append(principals, principal{name: string(r), member: hub.AddMember(t, "only-"+string(r), r), roles: []api.Role{r}})
	}
	principals = append(principals, principal{name: "operator", member: hub.Operator, roles: []api.Role{operatorR}})
	all := []api.Role{flagR, suspicionR, checkR}
	suspended := hub.AddMember(t, "suspended-bank", all...)
	if resp := hub.Operator.Do(t, http.MethodPost, "/v1/admin/members/suspended-bank/suspend", "", nil); resp.Status != http.StatusOK {
		t.Fatalf("suspend: got status %d, want 200: %s", resp.Status, resp.Body)
	}
	principals = append(principals, principal{name: "suspended", member: suspended, roles: all, suspended: true})

	for _, r := range server.Routes() {
		key := r.Method + " " + r.Path
		want, ok := authzTable[key]
		if !ok {
			continue // reported by TestAuthzTableCoversRoutes
		}
		for _, p := range principals {
			t.Run(key+"/"+p.name, func(t *testing.T) {
				path := concrete(r.Path)
				if want.path != "" {
					path = want.path
				}
				if want.query != "" {
					path += "?" + want.query
				}
				var resp *hubtest.Response
				if p.member == nil {
					resp = hub.Anonymous(t, r.Method, path, "", nil)
				} else {
					resp = p.member.Do(t, r.Method, path, "", nil)
				}
				conforms(t, key, resp)
				holds := slices.ContainsFunc(want.roles, func(role api.Role) bool { return slices.Contains(p.roles, role) })
				switch {
				case want.public:
					if resp.Status < 200 || resp.Status > 299 {
						t.Errorf("got status %d, want 2xx for a public route: %s", resp.Status, resp.Body)
					}
				case want.signed:
					// Refused for what it lacks, a peer's signature,
					// whatever bearer comes with it.
					if resp.Status != http.StatusUnauthorized && resp.Status != http.StatusUnsupportedMediaType {
						t.Errorf("got status %d, want 401 (or 415) for a request without a peer's webhook signature: %s", resp.Status, resp.Body)
					}
				case p.member == nil:
					wantProblem(t, resp, protocol.ProblemUnauthenticated)
					if h := resp.Header.Get("WWW-Authenticate"); !strings.HasPrefix(h, "Bearer ") {
						t.Errorf("got WWW-Authenticate %q, want a Bearer challenge", h)
					}
				case p.suspended:
					wantProblem(t, resp, protocol.ProblemMemberSuspended)
				case !holds:
					p := wantProblem(t, resp, protocol.ProblemForbidden)
					if !strings.Contains(p.Detail, string(want.roles[0])) {
						t.Errorf("got detail %q, want it to name the role needed (%s)", p.Detail, want.roles[0])
					}
				default:
					switch {
					case resp.Status == http.StatusUnauthorized || resp.Status == http.StatusForbidden:
						t.Errorf("got status %d, want the request past authorization: %s", resp.Status, resp.Body)
					case resp.Status == http.StatusTooManyRequests || resp.Status >= 500:
						t.Errorf("got status %d, want the handler's answer: %s", resp.Status, resp.Body)
					case r.Method == http.MethodGet && resp.Status != http.StatusOK && resp.Status != http.StatusNotFound:
						t.Errorf("got status %d, want 200 or 404: %s", resp.Status, resp.Body)
					}
				}
			})
		}
	}
}

// wantProblem fails unless resp is a problem of type pt, and returns it.
func wantProblem(t testing.TB, resp *hubtest.Response, pt protocol.ProblemType) *protocol.Problem {
	t.Helper()
	if resp.Status != pt.Status {
		t.Errorf("got status %d, want %d (%s): %s", resp.Status, pt.Status, pt.Slug(), resp.Body)
	}
	p := resp.Problem(t)
	if p.Type != pt.URI {
		t.Errorf("got problem %s, want %s: %s", p.Type, pt.URI, p.Detail)
	}
	if p.Status != resp.Status {
		t.Errorf("got problem status %d, want the HTTP status %d", p.Status, resp.Status)
	}
	if strings.TrimSpace(p.Detail) == "" {
		t.Errorf("got an empty detail, want one that says what was wrong")
	}
	if id := resp.Header.Get("X-Request-Id"); id == "" || p.RequestID != id {
		t.Errorf("got request_id %q, want the X-Request-Id %q", p.RequestID, id)
	}
	return p
}

// withBearer sends a request with the given Authorization header value
// ("" for none): a header the member SDK never sends (another scheme, a
// garbage or forged token, one replayed after it expired), so the request
// is made here by hand.
func withBearer(t testing.TB, hub *hubtest.Hub, method, path, authorization string) *hubtest.Response {
	t.Helper()
	req, err := http.NewRequestWithContext(context.Background(), method, hub.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if authorization != "" {
		req.Header.Set("Authorization", authorization)
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
	return &hubtest.Response{Status: resp.StatusCode, Header: resp.Header, Body: b}
}

// TestBearerRefusals sends bearer tokens that must not get in: each is
// answered 401 with the right problem and a Bearer challenge.
func TestBearerRefusals(t *testing.T) {
	clock := hubtest.NewClock(time.Now().UTC().Truncate(time.Second))
	hub := hubtest.Start(t, hubtest.Options{Clock: clock})
	bank := hub.AddMember(t, "bank-a", checkR)
	now := clock.Now()
	stranger, err := protocol.GenerateSigningKey(protocol.EdDSA, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	// mint forges bearer tokens the SDK never makes: for another hub, by
	// a key the hub does not know, minted at a time of the test's choosing.
	mint := func(key *protocol.SigningKey, member, aud string, at time.Time) string {
		t.Helper()
		tok, err := protocol.NewBearer(key, member, aud, at, protocol.MaxBearerLifetime)
		if err != nil {
			t.Fatal(err)
		}
		return "Bearer " + tok
	}
	submission := bank.Sign(t, protocol.LiftFlag{FlagID: "f-1"})

	cases := []struct {
		name          string
		authorization string
		want          protocol.ProblemType
		presented     bool // a token was sent, so the challenge carries error="invalid_token"
	}{
		{"no header", "", protocol.ProblemUnauthenticated, false},
		{"another scheme", "Basic YmFuay1hOnNlY3JldA==", protocol.ProblemUnauthenticated, false},
		{"empty token", "Bearer ", protocol.ProblemUnauthenticated, false},
		{"not a JWT", "Bearer not-a-jwt", protocol.ProblemUnauthenticated, true},
		{"expired", mint(bank.Key, bank.ID, hub.URL, now.Add(-10*time.Minute)), protocol.ProblemBearerExpired, true},
		{"issued in the future", mint(bank.Key, bank.ID, hub.URL, now.Add(10*time.Minute)), protocol.ProblemUnauthenticated, true},
		{"for another hub", mint(bank.Key, bank.ID, "https://other-hub.example", now), protocol.ProblemUnauthenticated, true},
		{"unregistered key", mint(stranger, bank.ID, hub.URL, now), protocol.ProblemUnauthenticated, true},
		{"member that does not exist", mint(stranger, "ghost-bank", hub.URL, now), protocol.ProblemUnauthenticated, true},
		{"a submission, not a bearer", "Bearer " + string(submission), protocol.ProblemUnauthenticated, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resp := withBearer(t, hub, http.MethodPost, "/v1/check", tc.authorization)
			wantProblem(t, resp, tc.want)
			conforms(t, "POST /v1/check", resp)
			h := resp.Header.Get("WWW-Authenticate")
			if !strings.HasPrefix(h, `Bearer realm="sparr"`) {
				t.Errorf("got WWW-Authenticate %q, want a Bearer challenge for realm sparr", h)
			}
			if got := strings.Contains(h, `error="invalid_token"`); got != tc.presented {
				t.Errorf("got WWW-Authenticate %q, want error=\"invalid_token\" %v", h, tc.presented)
			}
		})
	}

	// A time past the protocol's range, up to the largest int64, is refused
	// as out of range: never taken for a token that expired long ago.
	for _, c := range []struct{ iat, exp int64 }{
		{now.Unix(), math.MaxInt64},
		{math.MaxInt64 - 100, math.MaxInt64},
		{now.Unix(), int64(protocol.MaxNumericDate) + 1},
	} {
		claims := fmt.Sprintf(`{"iss":%q,"sub":%q,"aud":%q,"iat":%d,"exp":%d}`, bank.ID, bank.ID, hub.URL, c.iat, c.exp)
		t.Run(fmt.Sprintf("iat %d exp %d", c.iat, c.exp), func(t *testing.T) {
			resp := withBearer(t, hub, http.MethodPost, "/v1/check", "Bearer "+rawBearer(t, bank, claims))
			if p := wantProblem(t, resp, protocol.ProblemUnauthenticated); !strings.Contains(p.Detail, "out of range") {
				t.Errorf("got detail %q, want one saying the time is out of range", p.Detail)
			}
		})
	}

	// A bearer accepted once (and cached) is refused once it expires.
	tok := bank.Bearer(t)
	if resp := withBearer(t, hub, http.MethodGet, "/v1/flags/f-1", "Bearer "+tok); resp.Status != http.StatusNotFound {
		t.Fatalf("fresh bearer: got status %d, want 404: %s", resp.Status, resp.Body)
	}
	clock.Advance(protocol.MaxBearerLifetime + protocol.DefaultSkew + time.Second)
	wantProblem(t, withBearer(t, hub, http.MethodGet, "/v1/flags/f-1", "Bearer "+tok), protocol.ProblemBearerExpired)
	// And a new one works.
	if resp := bank.Do(t, http.MethodGet, "/v1/flags/f-1", "", nil); resp.Status != http.StatusNotFound {
		t.Errorf("new bearer: got status %d, want 404: %s", resp.Status, resp.Body)
	}

	// The scheme is case-insensitive (RFC 9110, section 11.1).
	for _, scheme := range []string{"bearer", "BEARER"} {
		if resp := withBearer(t, hub, http.MethodGet, "/v1/flags/f-1", scheme+" "+bank.Bearer(t)); resp.Status != http.StatusNotFound {
			t.Errorf("scheme %q: got status %d, want 404: %s", scheme, resp.Status, resp.Body)
		}
	}

	// A suspended member's cached bearer stops working at once.
	tok = bank.Bearer(t)
	if resp := hub.Operator.Do(t, http.MethodPost, "/v1/admin/members/bank-a/suspend", "", nil); resp.Status != http.StatusOK {
		t.Fatalf("suspend: got status %d, want 200: %s", resp.Status, resp.Body)
	}
	wantProblem(t, withBearer(t, hub, http.MethodGet, "/v1/flags/f-1", "Bearer "+tok), protocol.ProblemMemberSuspended)
}

// rawBearer signs claims as member m's bearer token by hand, so that a
// test can send what protocol.NewBearer would not make. m's key must be an
// Ed25519 key.
func rawBearer(t testing.TB, m *hubtest.Member, claims string) string {
	t.Helper()
	header, err := json.Marshal(map[string]string{"alg": "EdDSA", "kid": m.Key.KeyID(), "typ": protocol.TypeBearer, "iss": m.ID})
	if err != nil {
		t.Fatal(err)
	}
	input := base64.RawURLEncoding.EncodeToString(header) + "." + base64.RawURLEncoding.EncodeToString([]byte(claims))
	sig, err := m.Key.Signer().Sign(rand.Reader, []byte(input), crypto.Hash(0))
	if err != nil {
		t.Fatal(err)
	}
	return input + "." + base64.RawURLEncoding.EncodeToString(sig)
}

// TestRateLimits spends each rate class's bucket and checks the 429: its
// problem, its Retry-After, that buckets are per member and per class, and
// that the bucket fills again with time.
func TestRateLimits(t *testing.T) {
	classes := []struct {
		class string
		route string
		path  string
	}{
		{"tokens", "POST /v1/tokens", "/v1/tokens"},
		{"writes", "POST /v1/flags", "/v1/flags"},
		{"checks", "POST /v1/check", "/v1/check"},
		{"reads", "GET /v1/flags/:id", "/v1/flags/f-1"},
	}
	tiny := server.Rate{PerSecond: 0.5, Burst: 2}
	for i, tc := range classes {
		t.Run(tc.class, func(t *testing.T) {
			clock := hubtest.NewClock(time.Now().UTC().Truncate(time.Second))
			hub := hubtest.Start(t, hubtest.Options{Clock: clock, Limits: server.Limits{Tokens: tiny, Writes: tiny, Checks: tiny, Reads: tiny}})
			a := hub.AddMember(t, "bank-a", flagR, suspicionR, checkR)
			b := hub.AddMember(t, "bank-b", flagR, suspicionR, checkR)
			method, _, _ := strings.Cut(tc.route, " ")
			call := func(m *hubtest.Member, method, path string) *hubtest.Response {
				return m.Do(t, method, path, "", nil)
			}
			for n := range tiny.Burst {
				if resp := call(a, method, tc.path); resp.Status == http.StatusTooManyRequests {
					t.Fatalf("request %d of a burst of %d: got 429, want it allowed", n+1, tiny.Burst)
				}
			}
			logBefore := len(hub.LogEntries(t))
			resp := call(a, method, tc.path)
			wantProblem(t, resp, protocol.ProblemRateLimited)
			conforms(t, tc.route, resp)
			secs, err := strconv.Atoi(resp.Header.Get("Retry-After"))
			if err != nil || secs < 1 {
				t.Fatalf("got Retry-After %q, want a whole number of seconds from 1", resp.Header.Get("Retry-After"))
			}
			if want := int(1 / tiny.PerSecond); secs != want {
				t.Errorf("got Retry-After %d, want %d", secs, want)
			}
			if n := len(hub.LogEntries(t)); n != logBefore {
				t.Errorf("got %d log entries after a 429, want %d: a refused rate limit writes nothing", n, logBefore)
			}
			if resp := call(b, method, tc.path); resp.Status == http.StatusTooManyRequests {
				t.Errorf("another member: got 429, want its own bucket")
			}
			next := classes[(i+1)%len(classes)]
			nextMethod, _, _ := strings.Cut(next.route, " ")
			if resp := call(a, nextMethod, next.path); resp.Status == http.StatusTooManyRequests {
				t.Errorf("class %s after spending %s: got 429, want its own bucket", next.class, tc.class)
			}
			clock.Advance(time.Duration(secs) * time.Second)
			if resp := call(a, method, tc.path); resp.Status == http.StatusTooManyRequests {
				t.Errorf("after waiting Retry-After: got 429, want the bucket filled again")
			}
		})
	}
}

// TestSuspicionsDisabled checks that a hub without a legal basis for
// suspicions refuses every suspicion route to role holders, as policy
// (403 suspicions-disabled), after authorization: a member without the
// role still gets 403 forbidden.
func TestSuspicionsDisabled(t *testing.T) {
	hub := hubtest.Start(t, hubtest.Options{})
	reporter := hub.AddMember(t, "bank-s", suspicionR)
	checker := hub.AddMember(t, "bank-c", checkR)
	flagger := hub.AddMember(t, "bank-f", flagR)
	var v [protocol.TokenSize]byte
	tok := protocol.Token{Type: protocol.TypeEmail, Epoch: 1, Value: v}
	report := &protocol.PoliceReport{Authority: "Polismyndigheten", CaseNumber: "5000-K1-26", Date: hub.Now().Format(time.DateOnly)}

	var cfg api.Configuration
	hub.Anonymous(t, http.MethodGet, "/.well-known/sparr-configuration", "", nil).JSON(t, &cfg)
	if cfg.SuspicionsEnabled {
		t.Errorf("got suspicions_enabled true, want false on a hub without a legal basis")
	}
	cases := []struct {
		name  string
		route string
		do    func() *hubtest.Response
		want  protocol.ProblemType
	}{
		{"report", "POST /v1/suspicions", func() *hubtest.Response {
			return reporter.Submit(t, "/v1/suspicions", protocol.ReportSuspicion{Subjects: []protocol.Token{tok}, Category: protocol.CategoryOther, PoliceReport: report})
		}, protocol.ProblemSuspicionsDisabled},
		{"retract", "POST /v1/suspicions/:id/retract", func() *hubtest.Response {
			return reporter.Submit(t, "/v1/suspicions/s-1/retract", protocol.RetractSuspicion{SuspicionID: "s-1", Reason: protocol.RetractOther})
		}, protocol.ProblemSuspicionsDisabled},
		{"details", "POST /v1/suspicions/:id/details", func() *hubtest.Response {
			return checker.JSON(t, http.MethodPost, "/v1/suspicions/s-1/details", map[string]string{"purpose": "payment", "justification": "a payment of 90 000 kr to a new payee"})
		}, protocol.ProblemSuspicionsDisabled},
		{"report without the role", "POST /v1/suspicions", func() *hubtest.Response {
			return flagger.Submit(t, "/v1/suspicions", protocol.ReportSuspicion{Subjects: []protocol.Token{tok}, Category: protocol.CategoryOther, PoliceReport: report})
		}, protocol.ProblemForbidden},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resp := tc.do()
			p := wantProblem(t, resp, tc.want)
			conforms(t, tc.route, resp)
			if tc.want == protocol.ProblemSuspicionsDisabled && !strings.Contains(p.Detail, "legal basis") {
				t.Errorf("got detail %q, want it to say no legal basis is configured", p.Detail)
			}
		})
	}
}
