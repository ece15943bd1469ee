package api_test

import (
	"encoding/json"
	"errors"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

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

func TestMemberValidate(t *testing.T) {
	privateJWK, err := newKey(t, protocol.EdDSA).MarshalPrivateJWK()
	if err != nil {
		t.Fatal(err)
	}
	byURL := func(u string) func(m *api.Member) {
		return func(m *api.Member) { m.JWKS, m.JWKSURL = nil, u }
	}
	tests := []struct {
		name          string
		edit          func(m *api.Member)
		allowInsecure bool
		want          string // substring of the error; "" for none
	}{
		{name: "valid inline"},
		{name: "valid by URL", edit: byURL("https://keys.bank-a.example/sparr/jwks.json")},
		{name: "valid by URL with port and query", edit: byURL("https://keys.bank-a.example:8443/jwks?v=2")},
		{name: "valid, suspended", edit: func(m *api.Member) { m.Status = api.MemberSuspended }},
		{name: "valid, every role", edit: func(m *api.Member) { m.Roles = api.Roles() }},
		{name: "valid, roles unsorted", edit: func(m *api.Member) {
			m.Roles = []api.Role{api.RoleSuspicion, api.RoleCheck}
		}},
		{name: "valid, no timestamps", edit: func(m *api.Member) { m.CreatedAt, m.UpdatedAt = time.Time{}, time.Time{} }},

		{name: "id missing", edit: func(m *api.Member) { m.ID = "" }, want: "id: missing"},
		{name: "id one letter", edit: func(m *api.Member) { m.ID = "b" }},
		{name: "id 64 characters", edit: func(m *api.Member) { m.ID = "b" + strings.Repeat("-9", 31) + "z" }},
		{name: "id 65 characters", edit: func(m *api.Member) { m.ID = strings.Repeat("b", 65) }, want: "id: 65 characters; use at most 64"},
		{name: "id starts with a digit", edit: func(m *api.Member) { m.ID = "1bank" }, want: "id: \"1bank\" does not start with a lower-case letter"},
		{name: "id starts with a dash", edit: func(m *api.Member) { m.ID = "-bank" }, want: "id:"},
		{name: "id upper case", edit: func(m *api.Member) { m.ID = "Bank-a" }, want: "id:"},
		{name: "id upper case inside", edit: func(m *api.Member) { m.ID = "bank-A" }, want: "id: \"bank-A\" has 'A' at byte 5"},
		{name: "id underscore", edit: func(m *api.Member) { m.ID = "bank_a" }, want: "id:"},
		{name: "id dot", edit: func(m *api.Member) { m.ID = "bank.a" }, want: "id:"},
		{name: "id space", edit: func(m *api.Member) { m.ID = "bank a" }, want: "id:"},
		{name: "id non-ASCII", edit: func(m *api.Member) { m.ID = "sparbanken-skåne" }, want: "id:"},
		{name: "id hub, the hub's own", edit: func(m *api.Member) { m.ID = api.HubID }, want: "id: \"hub\" is reserved"},
		{name: "id starting with hub", edit: func(m *api.Member) { m.ID = "hubbank" }},

		{name: "name missing", edit: func(m *api.Member) { m.Name = "" }, want: "name: missing"},
		{name: "name Swedish", edit: func(m *api.Member) { m.Name = "Sparbanken Skåne AB (publ) – Ölandsgatan" }},
		{name: "name 200 bytes", edit: func(m *api.Member) { m.Name = strings.Repeat("å", 100) }},
		{name: "name 201 bytes", edit: func(m *api.Member) { m.Name = strings.Repeat("å", 100) + "a" }, want: "name: 201 bytes"},
		{name: "name newline", edit: func(m *api.Member) { m.Name = "Bank\nA" }, want: "name: has the unprintable character U+000A"},
		{name: "name NUL", edit: func(m *api.Member) { m.Name = "Bank\x00A" }, want: "name:"},
		{name: "name bidi override", edit: func(m *api.Member) { m.Name = "Bank \u202eA" }, want: "name:"},
		{name: "name invalid UTF-8", edit: func(m *api.Member) { m.Name = "Bank \xff" }, want: "name: not valid UTF-8"},

		{name: "roles nil", edit: func(m *api.Member) { m.Roles = nil }, want: "roles: none given"},
		{name: "roles empty", edit: func(m *api.Member) { m.Roles = []api.Role{} }, want: "roles: none given"},
		{name: "role unknown", edit: func(m *api.Member) { m.Roles = []api.Role{"flag", "admin"} }, want: "roles[1]: \"admin\" is not a role"},
		{name: "role repeated", edit: func(m *api.Member) { m.Roles = []api.Role{"flag", "check", "flag"} }, want: "roles[2]: \"flag\" is listed twice"},
		{name: "role in capitals", edit: func(m *api.Member) { m.Roles = []api.Role{"FLAG"} }, want: "roles[0]:"},

		{name: "keys both", edit: func(m *api.Member) { m.JWKSURL = "https://keys.bank-a.example/jwks" }, want: "jwks, jwks_url: both given"},
		{name: "keys neither", edit: func(m *api.Member) { m.JWKS = nil }, want: "jwks, jwks_url: neither given"},
		{name: "jwks null counts as none", edit: func(m *api.Member) { m.JWKS = json.RawMessage("null") }, want: "neither given"},
		{name: "jwks null with URL", edit: func(m *api.Member) {
			m.JWKS, m.JWKSURL = json.RawMessage(" null "), "https://keys.bank-a.example/jwks"
		}},
		{name: "jwks not JSON", edit: func(m *api.Member) { m.JWKS = json.RawMessage("{keys") }, want: "jwks: "},
		{name: "jwks no keys", edit: func(m *api.Member) { m.JWKS = json.RawMessage(`{"keys":[]}`) }, want: "jwks: "},
		{name: "jwks private key", edit: func(m *api.Member) {
			m.JWKS = json.RawMessage(`{"keys":[` + string(privateJWK) + `]}`)
		}, want: "publish only the public part"},
		{name: "jwks RSA key", edit: func(m *api.Member) {
			m.JWKS = json.RawMessage(`{"keys":[{"kty":"RSA","kid":"r","n":"sXchDaQebHnPiGvyDOAT4saGEUetSyo9MKLOoWFsueri23bOdgWp4Dy1WlUzewbgBHod5pcM9H95GQRV3JDXboIRROSBigeC5yjU1hGzHHyXss8UDprecbAYxknTcQkhslANGRUZmdTOQ5qTRsLAt6BTYuyvVRdhS8exSZEy_c4gs_7svlJJQ4H9_NxsiIoLwAEk7-Q3UXERGYw_75IDrGA84-lA_-Ct4eTlXHBIY2EaV7t7LjJaynVJCpkv4LKjTTAumiGUIuQhrNhZLuF_RJLqHpM2kgWFLU7-VTdL1VbC2tejvcI2BlMkEpk1BzBZI0KQB0GaDWFLN-aEAw3vRw","e":"AQAB"}]}`)
		}, want: "jwks: "},
		{name: "jwks_url http", edit: byURL("http://keys.bank-a.example/jwks"), want: "jwks_url: uses http"},
		{name: "jwks_url http allowed", edit: byURL("http://127.0.0.1:8080/jwks"), allowInsecure: true},
		{name: "jwks_url ftp even when insecure allowed", edit: byURL("ftp://keys.bank-a.example/jwks"), allowInsecure: true, want: "jwks_url: \"ftp://"},
		{name: "jwks_url relative", edit: byURL("/jwks.json"), want: "jwks_url: \"/jwks.json\" is not an absolute https URL"},
		{name: "jwks_url no scheme", edit: byURL("keys.bank-a.example/jwks"), want: "jwks_url:"},
		{name: "jwks_url no host", edit: byURL("https:///jwks"), want: "jwks_url: has no host"},
		{name: "jwks_url port only", edit: byURL("https://:443/jwks"), want: "jwks_url: has no host"},
		{name: "jwks_url credentials", edit: byURL("https://user:pw@keys.bank-a.example/jwks"), want: "jwks_url: carries user credentials"},
		{name: "jwks_url fragment", edit: byURL("https://keys.bank-a.example/jwks#keys"), want: "jwks_url: has a fragment"},
		{name: "jwks_url empty fragment", edit: byURL("https://keys.bank-a.example/jwks#"), want: "jwks_url: has a fragment"},
		{name: "jwks_url unparsable", edit: byURL("https://[::1/jwks"), want: "jwks_url: not a URL"},
		{name: "jwks_url space", edit: byURL("https://keys bank.example/jwks"), want: "jwks_url:"},
		{name: "jwks_url 2048 bytes", edit: byURL("https://keys.bank-a.example/" + strings.Repeat("j", 2048-len("https://keys.bank-a.example/")))},
		{name: "jwks_url 2049 bytes", edit: byURL("https://keys.bank-a.example/" + strings.Repeat("j", 2049-len("https://keys.bank-a.example/"))), want: "jwks_url: 2049 bytes"},

		{name: "quotas, all zero (the defaults)", edit: func(m *api.Member) { m.Quotas = &api.Quotas{} }},
		{name: "quotas at their bounds", edit: func(m *api.Member) {
			m.Quotas = &api.Quotas{TokensPerSecond: api.MaxTokensPerSecond, TokensPerDay: api.MaxTokensPerDay, StoredBytesPerDay: api.MaxStoredBytesPerDay}
		}},
		{name: "token rate NaN", edit: func(m *api.Member) { m.Quotas = &api.Quotas{TokensPerSecond: math.NaN()} }, want: "quotas.tokens_per_second: NaN"},
		{name: "token rate infinite", edit: func(m *api.Member) { m.Quotas = &api.Quotas{TokensPerSecond: math.Inf(1)} }, want: "quotas.tokens_per_second: +Inf"},
		{name: "token rate negative", edit: func(m *api.Member) { m.Quotas = &api.Quotas{TokensPerSecond: -1} }, want: "quotas.tokens_per_second: -1"},
		{name: "token rate over the bound", edit: func(m *api.Member) { m.Quotas = &api.Quotas{TokensPerSecond: api.MaxTokensPerSecond + 1} }, want: "quotas.tokens_per_second"},
		{name: "tokens a day negative", edit: func(m *api.Member) { m.Quotas = &api.Quotas{TokensPerDay: -1} }, want: "quotas.tokens_per_day: -1"},
		{name: "tokens a day over the bound", edit: func(m *api.Member) { m.Quotas = &api.Quotas{TokensPerDay: api.MaxTokensPerDay + 1} }, want: "quotas.tokens_per_day"},
		{name: "stored bytes negative", edit: func(m *api.Member) { m.Quotas = &api.Quotas{StoredBytesPerDay: -1} }, want: "quotas.stored_bytes_per_day: -1"},
		{name: "stored bytes over the bound", edit: func(m *api.Member) { m.Quotas = &api.Quotas{StoredBytesPerDay: api.MaxStoredBytesPerDay + 1} }, want: "quotas.stored_bytes_per_day"},

		{name: "status missing", edit: func(m *api.Member) { m.Status = "" }, want: "status: missing; use \"active\" or \"suspended\""},
		{name: "status unknown", edit: func(m *api.Member) { m.Status = "deleted" }, want: "status: \"deleted\" is not a status"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := validMember(t)
			if tc.edit != nil {
				tc.edit(m)
			}
			err := m.Validate(tc.allowInsecure)
			if tc.want == "" {
				if err != nil {
					t.Fatalf("got %v, want no error", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("got no error, want one containing %q", tc.want)
			}
			if !errors.Is(err, api.ErrInvalidMember) {
				t.Errorf("errors.Is(%v, ErrInvalidMember) = false, want true", err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %q, want it to contain %q", err, tc.want)
			}
		})
	}

	t.Run("nil member", func(t *testing.T) {
		var m *api.Member
		if err := m.Validate(false); !errors.Is(err, api.ErrInvalidMember) {
			t.Errorf("got %v, want an error wrapping ErrInvalidMember", err)
		}
	})
}

func TestRoles(t *testing.T) {
	want := []api.Role{"flag", "suspicion", "check", "regulator", "operator", "peer"}
	if got := api.Roles(); !slices.Equal(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
	for _, r := range api.Roles() {
		got, err := api.ParseRole(string(r))
		if err != nil || got != r {
			t.Errorf("ParseRole(%q) = %q, %v; want %q, nil", r, got, err, r)
		}
	}
	for _, s := range []string{"", "Flag", "admin", " flag"} {
		got, err := api.ParseRole(s)
		if !errors.Is(err, api.ErrInvalidMember) || got != "" {
			t.Errorf("ParseRole(%q) = %q, %v; want \"\" and an error wrapping ErrInvalidMember", s, got, err)
		}
	}
	if _, err := api.ParseRole("admin"); err == nil || !strings.Contains(err.Error(), `"regulator"`) {
		t.Errorf("ParseRole(\"admin\"): got %v, want an error listing the roles", err)
	}
}

func TestNormalize(t *testing.T) {
	tests := []struct {
		in, want []api.Role
	}{
		{nil, nil},
		{[]api.Role{"flag"}, []api.Role{"flag"}},
		{[]api.Role{"suspicion", "check", "flag"}, []api.Role{"check", "flag", "suspicion"}},
		{[]api.Role{"flag", "check", "flag", "check", "flag"}, []api.Role{"check", "flag"}},
	}
	for _, tc := range tests {
		m := validMember(t)
		m.Roles = slices.Clone(tc.in)
		m.Normalize()
		if !slices.Equal(m.Roles, tc.want) {
			t.Errorf("Normalize(%q): got %q, want %q", tc.in, m.Roles, tc.want)
		}
	}

	m := validMember(t)
	m.Roles = []api.Role{"flag", "flag"}
	if err := m.Validate(false); err == nil {
		t.Fatalf("repeated roles: got no error, want one")
	}
	m.Normalize()
	if err := m.Validate(false); err != nil {
		t.Errorf("after Normalize: got %v, want no error", err)
	}
}

func TestHasRoleAndActive(t *testing.T) {
	m := validMember(t)
	for _, tc := range []struct {
		r    api.Role
		want bool
	}{{api.RoleFlag, true}, {api.RoleCheck, true}, {api.RoleSuspicion, false}, {api.RoleOperator, false}, {"", false}} {
		if got := m.HasRole(tc.r); got != tc.want {
			t.Errorf("HasRole(%q) = %v, want %v", tc.r, got, tc.want)
		}
	}
	if !m.Active() {
		t.Errorf("active member: Active() = false, want true")
	}
	m.Status = api.MemberSuspended
	if m.Active() {
		t.Errorf("suspended member: Active() = true, want false")
	}
	m.Status = ""
	if m.Active() {
		t.Errorf("member without status: Active() = true, want false")
	}
}

func TestMemberJSON(t *testing.T) {
	const doc = `{
	  "id": "bank-a",
	  "name": "Bank A AB",
	  "roles": ["check", "flag", "suspicion"],
	  "jwks_url": "https://keys.bank-a.example/sparr/jwks.json",
	  "status": "active",
	  "created_at": "2026-11-01T09:00:00Z",
	  "updated_at": "2026-11-01T09:00:00Z"
	}`
	var m api.Member
	if err := json.Unmarshal([]byte(doc), &m); err != nil {
		t.Fatal(err)
	}
	if err := m.Validate(false); err != nil {
		t.Fatalf("the package doc's example: got %v, want no error", err)
	}
	if !m.HasRole(api.RoleSuspicion) || !m.CreatedAt.Equal(created) || m.JWKS != nil {
		t.Errorf("decoded %+v, want roles with suspicion, created %s, no inline jwks", m, created)
	}
	b, err := json.Marshal(&m)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b), `"jwks"`) {
		t.Errorf("got %s, want no \"jwks\" member for a member registered by URL", b)
	}

	inline := validMember(t)
	b, err = json.Marshal(inline)
	if err != nil {
		t.Fatal(err)
	}
	var back api.Member
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if err := back.Validate(false); err != nil {
		t.Errorf("inline member after a JSON round trip: got %v, want no error", err)
	}
	if strings.Contains(string(b), "jwks_url") {
		t.Errorf("got %s, want no \"jwks_url\" member for a member with an inline set", b)
	}
}

// FuzzMemberValidate decodes arbitrary JSON as a member and checks that
// Validate never panics and that its verdicts hang together.
func FuzzMemberValidate(f *testing.F) {
	m := validMember(f)
	valid, err := json.Marshal(m)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(valid)
	f.Add([]byte(`{"id":"bank-a","name":"Bank A","roles":["flag","flag"],"jwks_url":"https://k.example/j","status":"active"}`))
	f.Add([]byte(`{"id":"bank-a","name":"Bank A","roles":["check"],"jwks_url":"http://k.example/j","status":"suspended"}`))
	f.Add([]byte(`{"id":"b","name":"B","roles":["operator"],"jwks":null,"jwks_url":"https://k.example/#x","status":"active"}`))
	f.Add([]byte(`{"id":"","name":"","roles":[],"jwks":{"keys":[]},"status":""}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var m api.Member
		if json.Unmarshal(data, &m) != nil {
			return
		}
		strict := m.Validate(false)
		lax := m.Validate(true)
		for _, err := range []error{strict, lax} {
			if err != nil && !errors.Is(err, api.ErrInvalidMember) {
				t.Fatalf("got %v, want an error wrapping ErrInvalidMember", err)
			}
		}
		if strict == nil && lax != nil {
			t.Fatalf("valid without insecure URLs but not with them: %v", lax)
		}
		if lax != nil {
			return
		}
		if len(m.Roles) == 0 || len(m.ID) == 0 || len(m.ID) > 64 || len(m.Name) > 200 || !m.Active() && m.Status != api.MemberSuspended {
			t.Fatalf("accepted %+v, which breaks a documented rule", m)
		}
		m.Normalize()
		if err := m.Validate(true); err != nil {
			t.Fatalf("valid member invalid after Normalize: %v", err)
		}
		if !slices.IsSorted(m.Roles) {
			t.Fatalf("roles %q not sorted after Normalize", m.Roles)
		}
		b, err := json.Marshal(&m)
		if err != nil {
			t.Fatal(err)
		}
		var back api.Member
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatal(err)
		}
		if err := back.Validate(true); err != nil {
			t.Fatalf("valid member invalid after a JSON round trip %s: %v", b, err)
		}
	})
}
