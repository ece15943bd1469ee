package api

// Members, as the operator registers them and the admin API shows them.
//
// A [Member] is a bank, a payment provider, a regulator or the operator. The
// operator registers it with an id, a name, one or more [Role]s, and its
// public signing keys: either a JWK Set inline or an https URL the hub
// fetches it from. A member holding several roles looks like this:
//
//	{
//	  "id": "bank-a",
//	  "name": "Bank A AB",
//	  "roles": ["check", "flag", "suspicion"],
//	  "jwks_url": "https://keys.bank-a.example/sparr/jwks.json",
//	  "status": "active",
//	  "created_at": "2026-11-01T09:00:00Z",
//	  "updated_at": "2026-11-01T09:00:00Z"
//	}

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/sparr-dev/sparr/protocol"
)

// ErrInvalidMember is returned, wrapped, by [Member.Validate] for a member
// that breaks a rule, and by [ParseRole] for an unknown role.
var ErrInvalidMember = errors.New("invalid member")

// A Role is what a member may do at the hub.
type Role string

// The roles.
const (
	RoleFlag      Role = "flag"      // place, extend, thaw and lift protection flags
	RoleSuspicion Role = "suspicion" // report and retract police-reported suspicions
	RoleCheck     Role = "check"     // check identities and read the event feed
	RoleRegulator Role = "regulator" // read the exchange log and its proofs
	RoleOperator  Role = "operator"  // register members and run the hub
	// RolePeer is another hub, registered by this hub's operator, that
	// relays its own members' token requests for identifiers this hub is
	// home to (docs/peering.md).
	RolePeer Role = "peer"
)

// Roles returns every role, in the order of the constants.
func Roles() []Role {
	return []Role{RoleFlag, RoleSuspicion, RoleCheck, RoleRegulator, RoleOperator, RolePeer}
}

// ParseRole returns the role named s.
func ParseRole(s string) (Role, error) {
	if slices.Contains(Roles(), Role(s)) {
		return Role(s), nil
	}
	return "", fmt.Errorf("%w: unknown role %q; use %s", ErrInvalidMember, s, roleList())
}

// A MemberStatus says whether a member may use the hub.
type MemberStatus string

// The member statuses. A suspended member stays registered, with its
// history, but the hub refuses its requests and stops delivering to it.
const (
	MemberActive    MemberStatus = "active"
	MemberSuspended MemberStatus = "suspended"
)

// HubID is the member of the exchange-log entries the hub writes on its
// own (expiry, reminders, erasure tombstones, the members it changes at
// start). It is no member's id, so that those entries are never mistaken
// for a member's: [Member.Validate] refuses it.
const HubID = "hub"

// Limits on a member's fields.
const (
	maxIDLength      = 64
	maxNameLength    = 200
	maxJWKSURLLength = 2048
)

// A Member is an institution registered with the hub: a bank, a payment
// provider, a regulator, or the operator.
type Member struct {
	// ID is the member's id, the "iss" of everything it signs: 1 to 64
	// characters of lower-case letters, digits and '-', starting with a
	// letter, and not [HubID].
	ID string `json:"id"`
	// Name is the institution's name for people: 1 to 200 bytes of
	// printable UTF-8.
	Name string `json:"name"`
	// Roles are what the member may do: at least one, none repeated;
	// [Member.Normalize] sorts them.
	Roles []Role `json:"roles"`
	// JWKS is the member's public signing keys as an inline JWK Set, which
	// [protocol.ParseKeySet] must accept; JWKSURL is a URL to fetch that set
	// from instead. A member has exactly one of the two.
	JWKS    json.RawMessage `json:"jwks,omitempty"`
	JWKSURL string          `json:"jwks_url,omitempty"`
	Status  MemberStatus    `json:"status"`
	// Quotas are the member's own limits where they differ from the
	// hub's defaults; nil, or a zero field, means the default.
	Quotas *Quotas `json:"quotas,omitempty"`
	// CreatedAt and UpdatedAt are set by the hub. The hub caches a
	// member's key set by UpdatedAt, so every change advances it.
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// Validate checks every rule of [Member]'s fields and returns the first
// broken one as an error wrapping [ErrInvalidMember] that names the field
// and says what to do. A JWKS URL must use https unless allowInsecureURL,
// which is for tests and local demos only.
func (m *Member) Validate(allowInsecureURL bool) error {
	if m == nil {
		return invalid("member", "none given")
	}
	if err := validateID(m.ID); err != nil {
		return err
	}
	if err := validateName(m.Name); err != nil {
		return err
	}
	if err := validateRoles(m.Roles); err != nil {
		return err
	}
	if err := m.validateKeys(allowInsecureURL); err != nil {
		return err
	}
	if err := m.Quotas.Validate(); err != nil {
		return err
	}
	switch m.Status {
	case MemberActive, MemberSuspended:
	case "":
		return invalid("status", "missing; use %q or %q", MemberActive, MemberSuspended)
	default:
		return invalid("status", "%q is not a status; use %q or %q", m.Status, MemberActive, MemberSuspended)
	}
	return nil
}

// Normalize sorts the member's roles and drops repeats.
func (m *Member) Normalize() {
	slices.Sort(m.Roles)
	m.Roles = slices.Compact(m.Roles)
}

// HasRole reports whether the member holds role r.
func (m *Member) HasRole(r Role) bool { return slices.Contains(m.Roles, r) }

// Active reports whether the member may use the hub.
func (m *Member) Active() bool { return m.Status == MemberActive }

// HasInlineJWKS reports whether the member has an inline key set; JSON null
// counts as none.
func (m *Member) HasInlineJWKS() bool {
	t := bytes.TrimSpace(m.JWKS)
	return len(t) > 0 && !bytes.Equal(t, []byte("null"))
}

func (m *Member) validateKeys(allowInsecureURL bool) error {
	inline := m.HasInlineJWKS()
	switch {
	case inline && m.JWKSURL != "":
		return invalid("jwks, jwks_url", "both given; register the key set inline (jwks) or by URL (jwks_url), not both")
	case !inline && m.JWKSURL == "":
		return invalid("jwks, jwks_url", "neither given; register the member's public signing keys as a JWK Set inline (jwks) or by URL (jwks_url)")
	case inline:
		if _, err := protocol.ParseKeySet(m.JWKS); err != nil {
			return invalid("jwks", "%v; register a JWK Set of the member's public Ed25519 or P-256 signing keys, each with a distinct \"kid\"", err)
		}
		return nil
	}
	return validateJWKSURL(m.JWKSURL, allowInsecureURL)
}

func validateID(id string) error {
	if id == "" {
		return invalid("id", "missing; choose 1 to %d characters of a-z, 0-9 and '-', starting with a letter, such as \"bank-a\"", maxIDLength)
	}
	if len(id) > maxIDLength {
		return invalid("id", "%d characters; use at most %d", len(id), maxIDLength)
	}
	if c := id[0]; c < 'a' || c > 'z' {
		return invalid("id", "%q does not start with a lower-case letter a-z; start it with one", id)
	}
	for i, c := range id {
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-') {
			return invalid("id", "%q has %q at byte %d; use only a-z, 0-9 and '-'", id, c, i)
		}
	}
	if id == HubID {
		return invalid("id", "%q is reserved: the exchange log names the hub's own entries so; choose another id", id)
	}
	return nil
}

func validateName(name string) error {
	switch {
	case name == "":
		return invalid("name", "missing; give the institution's name")
	case len(name) > maxNameLength:
		return invalid("name", "%d bytes; shorten it to at most %d", len(name), maxNameLength)
	case !utf8.ValidString(name):
		return invalid("name", "not valid UTF-8; send it as UTF-8")
	}
	for i, r := range name {
		if !unicode.IsPrint(r) {
			return invalid("name", "has the unprintable character %U at byte %d; remove it", r, i)
		}
	}
	return nil
}

func validateRoles(roles []Role) error {
	if len(roles) == 0 {
		return invalid("roles", "none given; give at least one of %s", roleList())
	}
	for i, r := range roles {
		if !slices.Contains(Roles(), r) {
			return invalid(fmt.Sprintf("roles[%d]", i), "%q is not a role; use %s", r, roleList())
		}
		if slices.Contains(roles[:i], r) {
			return invalid(fmt.Sprintf("roles[%d]", i), "%q is listed twice; list each role once", r)
		}
	}
	return nil
}

func validateJWKSURL(s string, allowInsecure bool) error {
	if len(s) > maxJWKSURLLength {
		return invalid("jwks_url", "%d bytes; use a URL of at most %d", len(s), maxJWKSURLLength)
	}
	u, err := url.Parse(s)
	if err != nil {
		return invalid("jwks_url", "not a URL (%v); give an absolute https URL", err)
	}
	switch {
	case u.Scheme == "https":
	case u.Scheme == "http" && allowInsecure:
	case u.Scheme == "http":
		return invalid("jwks_url", "uses http, which lets anyone on the path swap the member's keys; serve the key set over https")
	default:
		return invalid("jwks_url", "%q is not an absolute https URL; give one such as \"https://keys.bank.example/jwks.json\"", s)
	}
	switch {
	case u.Host == "" || u.Hostname() == "":
		return invalid("jwks_url", "has no host; give an absolute https URL")
	case u.User != nil:
		return invalid("jwks_url", "carries user credentials; serve the public key set without them")
	case u.Fragment != "" || strings.HasSuffix(s, "#"):
		return invalid("jwks_url", "has a fragment (#…), which is never sent to the server; remove it")
	}
	return nil
}

func invalid(field, format string, args ...any) error {
	return fmt.Errorf("%w: %s: %s", ErrInvalidMember, field, fmt.Sprintf(format, args...))
}

func roleList() string {
	q := make([]string, 0, len(Roles()))
	for _, r := range Roles() {
		q = append(q, fmt.Sprintf("%q", r))
	}
	return "one of " + strings.Join(q, ", ")
}

// Quotas are a member's limits on what it may have the hub do and keep for
// it. The hub's defaults apply to a zero field.
type Quotas struct {
	// TokensPerSecond is the sustained rate of identifiers the member may
	// have evaluated (tokenized); bursts of one full batch (or two seconds'
	// worth, if more) are allowed.
	TokensPerSecond float64 `json:"tokens_per_second,omitempty"`
	// TokensPerDay is how many identifiers the member may have evaluated
	// in one day (UTC).
	TokensPerDay int64 `json:"tokens_per_day,omitempty"`
	// StoredBytesPerDay is how many bytes of log entries, details and
	// records the member's requests may have the hub store in one day
	// (UTC), refusals of its bad requests included.
	StoredBytesPerDay int64 `json:"stored_bytes_per_day,omitempty"`
}

// Upper bounds of quotas, far above any member's need, so that a typing
// error cannot turn a quota off.
const (
	MaxTokensPerSecond   = 100_000
	MaxTokensPerDay      = 100_000_000
	MaxStoredBytesPerDay = 1 << 40
)

// Validate reports a quota that is negative, not a number or above its
// upper bound. Zero fields are valid: they stand for the hub's defaults.
func (q *Quotas) Validate() error {
	switch {
	case q == nil:
		return nil
	case q.TokensPerSecond < 0 || q.TokensPerSecond > MaxTokensPerSecond || q.TokensPerSecond != q.TokensPerSecond:
		return invalid("quotas.tokens_per_second", "%v: give 0 (the hub's default) to %d", q.TokensPerSecond, MaxTokensPerSecond)
	case q.TokensPerDay < 0 || q.TokensPerDay > MaxTokensPerDay:
		return invalid("quotas.tokens_per_day", "%d: give 0 (the hub's default) to %d", q.TokensPerDay, MaxTokensPerDay)
	case q.StoredBytesPerDay < 0 || q.StoredBytesPerDay > MaxStoredBytesPerDay:
		return invalid("quotas.stored_bytes_per_day", "%d: give 0 (the hub's default) to %d", q.StoredBytesPerDay, int64(MaxStoredBytesPerDay))
	}
	return nil
}

// A MemberRequest is the body of POST /v1/admin/members: a new member's id,
// name, roles and keys (jwks or jwks_url, not both).
type MemberRequest struct {
	ID      string          `json:"id"`
	Name    string          `json:"name"`
	Roles   []Role          `json:"roles"`
	JWKS    json.RawMessage `json:"jwks,omitempty"`
	JWKSURL string          `json:"jwks_url,omitempty"`
	Quotas  *Quotas         `json:"quotas,omitempty"`
}

// A MemberPatch is the body of PATCH /v1/admin/members/{id}: the fields to
// change. Setting jwks clears jwks_url and the other way round; quotas
// replace the member's quotas whole (an empty object: the defaults).
type MemberPatch struct {
	Name    *string         `json:"name,omitempty"`
	Roles   *[]Role         `json:"roles,omitempty"`
	JWKS    json.RawMessage `json:"jwks,omitempty"`
	JWKSURL *string         `json:"jwks_url,omitempty"`
	Quotas  *Quotas         `json:"quotas,omitempty"`
}

// A MemberResponse is the answer about one member. LogIndex is the entry
// of the change it answers; it is left out when nothing changed (a
// suspension of a member already suspended) and for reads.
type MemberResponse struct {
	Member   *Member `json:"member"`
	LogIndex uint64  `json:"log_index,omitempty"`
}

// A SelfResponse is the answer of GET /v1/members/self: what the hub
// knows of the member that asks, and nothing of any other. It holds no
// secret and no key: the member's keys are its own, and its endpoint's
// secrets are shown only when they are made.
type SelfResponse struct {
	ID     string       `json:"id"`
	Name   string       `json:"name"`
	Roles  []Role       `json:"roles"`
	Status MemberStatus `json:"status"`
	// Quotas are the limits that apply to the member, every field set:
	// its own where the operator gave it one, the hub's default otherwise.
	Quotas Quotas `json:"quotas"`
	// OwnQuotas are the quotas the operator gave the member; absent when
	// the hub's defaults apply throughout.
	OwnQuotas *Quotas `json:"own_quotas,omitempty"`
	// Endpoint is the member's webhook endpoint and the state of delivery
	// to it; absent when it has none.
	Endpoint  *Endpoint `json:"endpoint,omitempty"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// A MembersResponse is the answer of GET /v1/admin/members: every member,
// ordered by id.
type MembersResponse struct {
	Members []*Member `json:"members"`
}
