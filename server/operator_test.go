package server_test

import (
	"crypto/rand"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/sparr-dev/sparr/protocol"
	"github.com/sparr-dev/sparr/protocol/api"
	"github.com/sparr-dev/sparr/server"
	"github.com/sparr-dev/sparr/server/hubtest"
	"github.com/sparr-dev/sparr/server/keyring"
	"github.com/sparr-dev/sparr/server/state"
)

// credential is a member id and a key, or a bearer token made with one, as
// someone holding them would use it.
type credential struct {
	id  string
	key *protocol.SigningKey
}

// bearer makes a bearer token of c for hub, valid from now.
func (c credential) bearer(t *testing.T, hub *hubtest.Hub) string {
	t.Helper()
	tok, err := protocol.NewBearer(c.key, c.id, hub.URL, hub.Now(), protocol.MaxBearerLifetime)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// send makes a request to hub with the bearer token (none if empty) and
// returns the answer's status and, for a problem, its type's slug.
func send(t *testing.T, hub *hubtest.Hub, bearer, method, path string, body any) (int, string) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		rd = strings.NewReader(string(b))
	}
	req, err := http.NewRequest(method, hub.URL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var p protocol.Problem
	if resp.Header.Get("Content-Type") == protocol.ProblemContentType {
		if err := json.NewDecoder(resp.Body).Decode(&p); err != nil {
			t.Fatal(err)
		}
	}
	return resp.StatusCode, strings.TrimPrefix(p.Type, "urn:sparr:problem:")
}

// replaceOperatorKey replaces the hub's operator key as docs/operations.md
// says: a new key pair made by `sparr init` in another directory, its
// operator.jwk and operator.pub.jwk put in the hub's keys directory.
func replaceOperatorKey(t *testing.T, hub *hubtest.Hub) *protocol.SigningKey {
	t.Helper()
	fresh := filepath.Join(t.TempDir(), "keys")
	if _, err := keyring.Init(fresh, keyring.Options{}); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"operator.jwk", "operator.pub.jwk"} {
		b, err := os.ReadFile(filepath.Join(fresh, name))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(hub.Dir, "keys", name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	key, err := keyring.LoadOperator(keyring.OperatorKeyPath(fresh))
	if err != nil {
		t.Fatal(err)
	}
	return key
}

// TestOperatorKeyReplacementRevokes follows docs/operations.md,
// "Revoking operator credentials", with a real hub: whoever held the old
// operator key registered a second member with the operator role. Once
// the key is replaced and the hub restarted, the old key, a bearer token
// it made (and the hub had cached), and the second operator member are
// all refused; the hub's log names who holds the operator role, and the
// exchange log says the hub suspended the second operator. The new key's
// holder may resume it; suspending it again revokes it at once, cached
// bearer tokens included.
func TestOperatorKeyReplacementRevokes(t *testing.T) {
	logs := new(logBuffer)
	hub := hubtest.Start(t, hubtest.Options{Configure: func(c *server.Config) {
		c.Logger = slog.New(slog.NewJSONHandler(logs, nil))
	}})
	old := credential{server.OperatorID, hub.Operator.Key}
	ops2 := hub.AddMember(t, "ops-2", api.RoleOperator)
	second := credential{ops2.ID, ops2.Key}
	oldToken, secondToken := old.bearer(t, hub), second.bearer(t, hub)
	for _, tok := range []string{oldToken, secondToken} {
		if status, _ := send(t, hub, tok, http.MethodGet, "/v1/admin/members", nil); status != http.StatusOK {
			t.Fatalf("before the replacement: got %d, want 200", status)
		}
	}
	if !hasLogLine(logs.String(), "INFO", "members holding the operator role") {
		t.Errorf("got logs\n%s\nwant the operator-role members listed at start", logs)
	}

	newKey := replaceOperatorKey(t, hub)
	hub.Restart(t)
	current := credential{server.OperatorID, newKey}
	for _, tc := range []struct {
		name, bearer string
		status       int
		problem      string
	}{
		{"a token of the old operator key, used before", oldToken, http.StatusUnauthorized, "unauthenticated"},
		{"a new token of the old operator key", old.bearer(t, hub), http.StatusUnauthorized, "unauthenticated"},
		{"a token of the second operator, used before", secondToken, http.StatusForbidden, "member-suspended"},
		{"a new token of the second operator", second.bearer(t, hub), http.StatusForbidden, "member-suspended"},
		{"the new operator key", current.bearer(t, hub), http.StatusOK, ""},
	} {
		if status, problem := send(t, hub, tc.bearer, http.MethodGet, "/v1/admin/members", nil); status != tc.status || problem != tc.problem {
			t.Errorf("%s: got %d %s, want %d %s", tc.name, status, problem, tc.status, tc.problem)
		}
	}
	var suspended []string
	for _, e := range hub.LogEntries(t) {
		if m, _ := e.Attr("member"); e.Action == protocol.LogMemberSuspended && e.Member == "hub" && m == "ops-2" {
			reason, _ := e.Attr("reason")
			suspended = append(suspended, reason)
		}
	}
	if !slices.Equal(suspended, []string{"operator-key-replaced"}) {
		t.Errorf("got the hub's suspensions of ops-2 %v in the exchange log, want one, for operator-key-replaced", suspended)
	}
	if !hasLogLine(logs.String(), "WARN", "suspended at start") || !strings.Contains(logs.String(), `"ops-2"`) {
		t.Errorf("got logs\n%s\nwant a warning that ops-2 was suspended at start", logs)
	}

	// The new key's holder vouches for the second operator again, with a
	// new key of its own; then revokes it.
	tok := current.bearer(t, hub)
	if status, _ := send(t, hub, tok, http.MethodPost, "/v1/admin/members/ops-2/resume", nil); status != http.StatusOK {
		t.Fatalf("resume ops-2: got %d, want 200", status)
	}
	if status, _ := send(t, hub, secondToken, http.MethodGet, "/v1/admin/members", nil); status != http.StatusOK {
		t.Fatalf("ops-2 resumed: got %d, want 200", status)
	}
	if status, _ := send(t, hub, tok, http.MethodPost, "/v1/admin/members/ops-2/suspend", nil); status != http.StatusOK {
		t.Fatalf("suspend ops-2: got %d, want 200", status)
	}
	if status, problem := send(t, hub, secondToken, http.MethodGet, "/v1/admin/members", nil); status != http.StatusForbidden || problem != "member-suspended" {
		t.Errorf("ops-2 suspended, its cached token: got %d %s, want 403 member-suspended", status, problem)
	}
}

// TestKeyReplacementRevokesCachedBearers: a member's bearer token, verified
// and cached, is refused as soon as the operator replaces the member's
// keys; a token of the new key is accepted.
func TestKeyReplacementRevokesCachedBearers(t *testing.T) {
	hub := hubtest.Start(t, hubtest.Options{})
	m := hub.AddMember(t, "bank-k", api.RoleCheck)
	old := credential{m.ID, m.Key}
	tok := old.bearer(t, hub)
	if status, _ := send(t, hub, tok, http.MethodGet, "/v1/events", nil); status != http.StatusOK {
		t.Fatalf("before the replacement: got %d, want 200", status)
	}
	key, jwks := hubtest.NewKey(t)
	mustStatus(t, hub.Operator.JSON(t, http.MethodPatch, "/v1/admin/members/bank-k", api.MemberPatch{JWKS: jwks}), http.StatusOK)
	if status, problem := send(t, hub, tok, http.MethodGet, "/v1/events", nil); status != http.StatusUnauthorized || problem != "unauthenticated" {
		t.Errorf("the cached token of the replaced key: got %d %s, want 401 unauthenticated", status, problem)
	}
	if status, _ := send(t, hub, credential{m.ID, key}.bearer(t, hub), http.MethodGet, "/v1/events", nil); status != http.StatusOK {
		t.Errorf("a token of the new key: got %d, want 200", status)
	}
}

// TestReservedMemberIDs: no member may be registered as hub, the exchange
// log's name for the hub itself, nor as operator, the hub's own operator.
// A data file of an earlier version that holds a member hub has it
// suspended when the hub starts on it: it is refused from then on, and
// cannot be resumed.
func TestReservedMemberIDs(t *testing.T) {
	logs := new(logBuffer)
	hub := hubtest.Start(t, hubtest.Options{Configure: func(c *server.Config) {
		c.Logger = slog.New(slog.NewJSONHandler(logs, nil))
	}})
	key, err := protocol.GenerateSigningKey(protocol.EdDSA, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	jwks, err := json.Marshal(map[string]any{"keys": []*protocol.PublicKey{key.Public()}})
	if err != nil {
		t.Fatal(err)
	}
	op := credential{server.OperatorID, hub.Operator.Key}.bearer(t, hub)
	for _, id := range []string{"hub", "operator"} {
		req := api.MemberRequest{ID: id, Name: "Bank", Roles: []api.Role{api.RoleCheck}, JWKS: jwks}
		if status, problem := send(t, hub, op, http.MethodPost, "/v1/admin/members", req); status != http.StatusUnprocessableEntity || problem != "validation-failed" {
			t.Errorf("register %s: got %d %s, want 422 validation-failed", id, status, problem)
		}
	}

	// A member hub, registered as an earlier version of the hub did.
	now := hub.Now()
	res, err := hub.Store.Apply(&state.PutMember{Head: state.Head{At: now, Actor: server.OperatorID, Entry: state.Entry{Action: protocol.LogMemberAdded}},
		Member: &api.Member{ID: "hub", Name: "Hub Bank", Roles: []api.Role{api.RoleCheck}, JWKS: jwks, Status: api.MemberActive, CreatedAt: now, UpdatedAt: now}, Create: true})
	if err != nil || res.Conflict {
		t.Fatalf("put the member hub: %v (conflict %t)", err, res != nil && res.Conflict)
	}
	hub.Restart(t)
	member := credential{"hub", key}.bearer(t, hub)
	if status, problem := send(t, hub, member, http.MethodGet, "/v1/events?after=0", nil); status != http.StatusForbidden || problem != "member-suspended" {
		t.Errorf("the member hub after a restart: got %d %s, want 403 member-suspended", status, problem)
	}
	op = credential{server.OperatorID, hub.Operator.Key}.bearer(t, hub)
	if status, problem := send(t, hub, op, http.MethodPost, "/v1/admin/members/hub/resume", nil); status != http.StatusUnprocessableEntity || problem != "validation-failed" {
		t.Errorf("resume the member hub: got %d %s, want 422 validation-failed", status, problem)
	}
	var reasons []string
	for _, e := range hub.LogEntries(t) {
		if m, _ := e.Attr("member"); e.Action == protocol.LogMemberSuspended && m == "hub" {
			reason, _ := e.Attr("reason")
			reasons = append(reasons, e.Member+" "+reason)
		}
	}
	if !slices.Equal(reasons, []string{"hub reserved-id"}) {
		t.Errorf("got suspensions of the member hub %v, want one by the hub for reserved-id", reasons)
	}
	if !hasLogLine(logs.String(), "ERROR", "reserved") {
		t.Errorf("got logs\n%s\nwant an error line about the member with the reserved id", logs)
	}
	hub.Restart(t)
	if n := len(hub.LogEntries(t)); n == 0 {
		t.Fatal("no log entries")
	}
	reasons = nil
	for _, e := range hub.LogEntries(t) {
		if m, _ := e.Attr("member"); e.Action == protocol.LogMemberSuspended && m == "hub" {
			reasons = append(reasons, e.Member)
		}
	}
	if len(reasons) != 1 {
		t.Errorf("got %d suspensions of the member hub after a second restart, want still 1", len(reasons))
	}
}
