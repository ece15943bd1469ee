package server_test

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"

	"github.com/sparr-dev/sparr/client"
	"github.com/sparr-dev/sparr/protocol"
	"github.com/sparr-dev/sparr/protocol/api"
	"github.com/sparr-dev/sparr/server/decide"
	"github.com/sparr-dev/sparr/server/hubtest"
)

// TestSelf: GET /v1/members/self shows the member that asks its id, name,
// roles and status, the quotas that apply to it (the hub's defaults, or
// its own over them), and its endpoint once it has one; never another
// member's endpoint, a key or a secret. Any role may ask, through the SDK
// too.
func TestSelf(t *testing.T) {
	defaults := api.Quotas{TokensPerSecond: 70, TokensPerDay: 7000, StoredBytesPerDay: 700_000}
	hub := hubtest.Start(t, hubtest.Options{Delivery: fast, Policy: decide.Policy{Quotas: defaults}})
	bank := hub.AddMember(t, "bank-a", api.RoleFlag, api.RoleCheck)
	other := hub.AddMember(t, "bank-b", api.RoleCheck)
	regulator := hub.AddMember(t, "fi", api.RoleRegulator)

	self := func(m *hubtest.Member) (api.SelfResponse, []byte) {
		t.Helper()
		resp := m.Do(t, http.MethodGet, "/v1/members/self", "", nil)
		mustStatus(t, resp, http.StatusOK)
		conforms(t, "GET /v1/members/self", resp)
		var s api.SelfResponse
		resp.JSON(t, &s)
		return s, resp.Body
	}

	s, _ := self(bank)
	if s.ID != "bank-a" || s.Name != "Test member bank-a" || !slices.Equal(s.Roles, []api.Role{api.RoleCheck, api.RoleFlag}) || s.Status != api.MemberActive {
		t.Errorf("got %s %q %v %s, want bank-a, its name, [check flag], active", s.ID, s.Name, s.Roles, s.Status)
	}
	if s.Quotas != defaults || s.OwnQuotas != nil {
		t.Errorf("got quotas %+v, own %+v; want the hub's defaults %+v and no own quotas", s.Quotas, s.OwnQuotas, defaults)
	}
	if s.Endpoint != nil {
		t.Errorf("got endpoint %+v before one was registered, want none", s.Endpoint)
	}
	if s.CreatedAt.IsZero() || s.UpdatedAt.IsZero() {
		t.Errorf("got created %v, updated %v; want both set", s.CreatedAt, s.UpdatedAt)
	}

	// The operator gives the member its own daily token quota: that one
	// applies, the defaults fill the rest.
	mustStatus(t, hub.Operator.JSON(t, http.MethodPatch, "/v1/admin/members/bank-a", map[string]any{"quotas": map[string]any{"tokens_per_day": 5}}), http.StatusOK)
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) }))
	defer receiver.Close()
	secret, _, err := bank.Client().RegisterEndpoint(context.Background(), receiver.URL+"/sparr/events")
	if err != nil {
		t.Fatal(err)
	}
	s, body := self(bank)
	want := api.Quotas{TokensPerSecond: 70, TokensPerDay: 5, StoredBytesPerDay: 700_000}
	if s.Quotas != want || s.OwnQuotas == nil || *s.OwnQuotas != (api.Quotas{TokensPerDay: 5}) {
		t.Errorf("got quotas %+v, own %+v; want %+v and own {TokensPerDay: 5}", s.Quotas, s.OwnQuotas, want)
	}
	if s.Endpoint == nil || s.Endpoint.Member != "bank-a" || s.Endpoint.URL != receiver.URL+"/sparr/events" ||
		(s.Endpoint.Status != api.EndpointUnverified && s.Endpoint.Status != api.EndpointActive) {
		t.Errorf("got endpoint %+v, want bank-a's with its URL and status", s.Endpoint)
	}
	if bytes.Contains(body, []byte(secret.Encode())) || bytes.Contains(body, []byte("whsec_")) || bytes.Contains(body, []byte(`"jwks`)) || bytes.Contains(body, []byte(`"x"`)) {
		t.Errorf("got %s, want no secret and no key", body)
	}

	// Another member sees itself, not bank-a's endpoint or quotas; a
	// member with no role that reads records asks too.
	for _, tc := range []struct {
		m     *hubtest.Member
		id    string
		roles []api.Role
	}{
		{other, "bank-b", []api.Role{api.RoleCheck}},
		{regulator, "fi", []api.Role{api.RoleRegulator}},
		{hub.Operator, decide.OperatorID, []api.Role{api.RoleOperator}},
	} {
		s, _ := self(tc.m)
		if s.ID != tc.id || !slices.Equal(s.Roles, tc.roles) || s.Endpoint != nil || s.Quotas != defaults || s.OwnQuotas != nil {
			t.Errorf("%s: got %s %v endpoint %+v quotas %+v own %+v; want itself, %v, no endpoint, the defaults", tc.id, s.ID, s.Roles, s.Endpoint, s.Quotas, s.OwnQuotas, tc.roles)
		}
	}

	// The SDK's call answers the same.
	got, err := bank.Client().Self(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != "bank-a" || got.Quotas != want || got.Endpoint == nil {
		t.Errorf("Client.Self: got %+v, want bank-a with its quotas and endpoint", got)
	}
}

// TestSelfRefusals: without a bearer token, or with one the hub cannot
// verify, GET /v1/members/self answers 401 unauthenticated with a
// WWW-Authenticate challenge; a suspended member gets 403
// member-suspended, and the SDK reports each as its sentinel error.
func TestSelfRefusals(t *testing.T) {
	hub := hubtest.Start(t, hubtest.Options{})
	bank := hub.AddMember(t, "bank-a", api.RoleCheck)

	resp := hub.Anonymous(t, http.MethodGet, "/v1/members/self", "", nil)
	conforms(t, "GET /v1/members/self", resp)
	wantProblem(t, resp, protocol.ProblemUnauthenticated)
	if got := resp.Header.Get("WWW-Authenticate"); got != `Bearer realm="sparr"` {
		t.Errorf("got WWW-Authenticate %q, want the Bearer challenge", got)
	}

	// bank-a's id with a key the hub does not hold.
	key, _ := hubtest.NewKey(t)
	impostor := hub.Member("bank-a", key)
	resp = impostor.Do(t, http.MethodGet, "/v1/members/self", "", nil)
	conforms(t, "GET /v1/members/self", resp)
	wantProblem(t, resp, protocol.ProblemUnauthenticated)
	if _, err := impostor.Client().Self(context.Background()); !errors.Is(err, client.ErrUnauthenticated) {
		t.Errorf("Client.Self with an unregistered key: got %v, want ErrUnauthenticated", err)
	}
	// An id the hub has never heard of.
	if _, err := hub.Member("bank-z", key).Client().Self(context.Background()); !errors.Is(err, client.ErrUnauthenticated) {
		t.Errorf("Client.Self of an unknown member: got %v, want ErrUnauthenticated", err)
	}

	mustStatus(t, hub.Operator.Do(t, http.MethodPost, "/v1/admin/members/bank-a/suspend", "", nil), http.StatusOK)
	resp = bank.Do(t, http.MethodGet, "/v1/members/self", "", nil)
	conforms(t, "GET /v1/members/self", resp)
	wantProblem(t, resp, protocol.ProblemMemberSuspended)
	if _, err := bank.Client().Self(context.Background()); !errors.Is(err, client.ErrSuspended) {
		t.Errorf("Client.Self of a suspended member: got %v, want ErrSuspended", err)
	}
}
