package consent_test

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sparr-dev/sparr/consent"
	"github.com/sparr-dev/sparr/protocol"
)

// now is the hub's clock in these tests: a whole second, as on the wire.
var now = time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)

const (
	member       = "bank-a"
	evidenceRef  = "auth-txn-5e1f0c2d9b"
	flagLifetime = 365 * 24 * time.Hour
)

func subject() protocol.Token {
	t := protocol.Token{Type: protocol.TypePersonalNumber, Epoch: 1}
	for i := range t.Value {
		t.Value[i] = byte(i*7 + 3)
	}
	return t
}

// validConsent returns a consent the default policy accepts at now for a
// flag expiring at now + flagLifetime.
func validConsent() *protocol.Consent {
	return &protocol.Consent{
		ID:         "019aa5f0-8c00-7000-8000-00000000c001",
		Subject:    subject(),
		Controller: member,
		Purpose:    "identity-fraud-protection",
		LegalBasis: "gdpr-art-6-1-a",
		Collection: protocol.ConsentCollection{Method: "mobile-app", At: protocol.NewNumericDate(now.Add(-time.Minute))},
		Notice:     "https://bank-a.example/privacy/sparr-v3",
		ExpiresAt:  protocol.NewNumericDate(now.Add(flagLifetime)),
		Evidence:   protocol.ConsentEvidence{AuthenticationMethod: "bankid", AssuranceLevel: "loa3", Reference: evidenceRef},
	}
}

func at(t time.Time) protocol.NumericDate { return protocol.NewNumericDate(t) }

type validateCase struct {
	name       string
	policy     consent.Policy
	edit       func(c *protocol.Consent)
	member     string    // default: member
	flagExpiry time.Time // default: now + flagLifetime
	now        time.Time // default: now
	zeroExpiry bool      // pass a zero flagExpiry
	wantField  string    // "" to accept
	wantDetail []string  // substrings of the detail, for refusals
	wantNil    bool      // pass a nil consent
}

func validateCases() []validateCase {
	flagExpiry := now.Add(flagLifetime)
	cases := []validateCase{
		{name: "valid"},
		{name: "nil consent", wantNil: true, wantField: "", wantDetail: []string{"no consent"}},

		{name: "controller is another member", edit: func(c *protocol.Consent) { c.Controller = "bank-b" }, wantField: "controller",
			wantDetail: []string{`"bank-b"`, `"bank-a"`, "collected itself"}},
		{name: "submitted by another member", member: "bank-b", wantField: "controller"},

		{name: "purpose unknown", edit: func(c *protocol.Consent) { c.Purpose = "marketing" }, wantField: "purpose",
			wantDetail: []string{`"marketing"`, `use "identity-fraud-protection"`}},
		{name: "purpose case differs", edit: func(c *protocol.Consent) { c.Purpose = "Identity-Fraud-Protection" }, wantField: "purpose"},
		{name: "legal basis legitimate interest", edit: func(c *protocol.Consent) { c.LegalBasis = "gdpr-art-6-1-f" }, wantField: "legal_basis",
			wantDetail: []string{`"gdpr-art-6-1-f"`, `use "gdpr-art-6-1-a"`}},
		{name: "collection method unknown", edit: func(c *protocol.Consent) { c.Collection.Method = "letter" }, wantField: "collection.method",
			wantDetail: []string{`"letter"`, `one of "online-banking", "mobile-app", "branch", "telephone", "web"`}},
		{name: "authentication too weak", edit: func(c *protocol.Consent) { c.Evidence.AuthenticationMethod = "freja-eid" }, wantField: "evidence.authentication_method",
			wantDetail: []string{`"freja-eid"`, `one of "bankid", "freja-eid-plus", "eidas-high", "eidas-substantial"`, "collect consent again"}},
		{name: "authentication case differs", edit: func(c *protocol.Consent) { c.Evidence.AuthenticationMethod = "BankID" }, wantField: "evidence.authentication_method"},
		{name: "long value is cut short", edit: func(c *protocol.Consent) { c.Purpose = strings.Repeat("x", 100) }, wantField: "purpose",
			wantDetail: []string{`"` + strings.Repeat("x", 64) + `"…`}},

		{name: "collected exactly Skew ahead", edit: func(c *protocol.Consent) { c.Collection.At = at(now.Add(time.Minute)) }},
		{name: "collected a second more than Skew ahead", edit: func(c *protocol.Consent) { c.Collection.At = at(now.Add(time.Minute + time.Second)) },
			wantField: "collection.at", wantDetail: []string{"1m1s ahead", "1m tolerated", "check the member's clock"}},
		{name: "collected now", edit: func(c *protocol.Consent) { c.Collection.At = at(now) }},
		{name: "collected exactly MaxAge ago", edit: func(c *protocol.Consent) { c.Collection.At = at(now.Add(-24 * time.Hour)) }},
		{name: "collected a second more than MaxAge ago", edit: func(c *protocol.Consent) { c.Collection.At = at(now.Add(-24*time.Hour - time.Second)) },
			wantField: "collection.at", wantDetail: []string{"collected 24h0m1s ago", "within 24h", "ask the consumer again"}},
		{name: "collected 26h ago", edit: func(c *protocol.Consent) { c.Collection.At = at(now.Add(-26 * time.Hour)) },
			wantField: "collection.at", wantDetail: []string{"collected 26h ago; consent must be collected within 24h before the flag is placed — ask the consumer again"}},
		{name: "collected in year 30000", edit: func(c *protocol.Consent) { c.Collection.At = at(time.Date(30000, 1, 1, 0, 0, 0, 0, time.UTC)) },
			wantField: "collection.at"},
		{name: "collected before 1970", edit: func(c *protocol.Consent) { c.Collection.At = -1 }, wantField: "collection.at"},
		{name: "fractional now, boundary in whole seconds", now: now.Add(999 * time.Millisecond),
			edit: func(c *protocol.Consent) { c.Collection.At = at(now.Add(-24 * time.Hour)) }},

		{name: "expired now", edit: func(c *protocol.Consent) { c.ExpiresAt = at(now) }, zeroExpiry: true,
			wantField: "expires_at", wantDetail: []string{"lapsed at 2026-11-21T12:00:00Z"}},
		{name: "expired long ago", edit: func(c *protocol.Consent) { c.ExpiresAt = at(now.Add(-48 * time.Hour)) }, zeroExpiry: true,
			wantField: "expires_at"},
		{name: "expires a second from now, flag too", edit: func(c *protocol.Consent) { c.ExpiresAt = at(now.Add(time.Second)) },
			flagExpiry: now.Add(time.Second)},
		{name: "expires exactly with the flag", flagExpiry: flagExpiry},
		{name: "expires after the flag", flagExpiry: flagExpiry.Add(-time.Hour)},
		{name: "expires a second before the flag", flagExpiry: flagExpiry.Add(time.Second), wantField: "expires_at",
			wantDetail: []string{"before the flag would", "collect consent for at least the flag's duration or ask for an earlier expiry"}},
		{name: "no flag expiry", zeroExpiry: true},
	}
	defaults := consent.DefaultPolicy()
	for _, v := range defaults.Purposes {
		cases = append(cases, validateCase{name: "purpose " + v, edit: func(c *protocol.Consent) { c.Purpose = v }})
	}
	for _, v := range defaults.LegalBases {
		cases = append(cases, validateCase{name: "legal basis " + v, edit: func(c *protocol.Consent) { c.LegalBasis = v }})
	}
	for _, v := range defaults.CollectionMethods {
		cases = append(cases, validateCase{name: "collection method " + v, edit: func(c *protocol.Consent) { c.Collection.Method = v }})
	}
	for _, v := range defaults.AuthenticationMethods {
		cases = append(cases, validateCase{name: "authentication " + v, edit: func(c *protocol.Consent) { c.Evidence.AuthenticationMethod = v }})
	}
	return cases
}

func TestValidate(t *testing.T) {
	policies := map[string]consent.Policy{"zero policy": {}, "default policy": consent.DefaultPolicy()}
	for _, pname := range []string{"zero policy", "default policy"} {
		for _, tc := range validateCases() {
			t.Run(pname+"/"+tc.name, func(t *testing.T) {
				checkValidate(t, policies[pname], tc)
			})
		}
	}
}

func TestValidateCustomPolicy(t *testing.T) {
	tests := []validateCase{
		{name: "shorter MaxAge refuses", policy: consent.Policy{MaxAge: time.Hour},
			edit: func(c *protocol.Consent) { c.Collection.At = at(now.Add(-time.Hour - time.Second)) }, wantField: "collection.at",
			wantDetail: []string{"within 1h"}},
		{name: "shorter MaxAge at the boundary", policy: consent.Policy{MaxAge: time.Hour},
			edit: func(c *protocol.Consent) { c.Collection.At = at(now.Add(-time.Hour)) }},
		{name: "longer MaxAge accepts", policy: consent.Policy{MaxAge: 72 * time.Hour},
			edit: func(c *protocol.Consent) { c.Collection.At = at(now.Add(-48 * time.Hour)) }},
		{name: "larger Skew accepts", policy: consent.Policy{Skew: 5 * time.Minute},
			edit: func(c *protocol.Consent) { c.Collection.At = at(now.Add(5 * time.Minute)) }},
		{name: "larger Skew refuses past it", policy: consent.Policy{Skew: 5 * time.Minute},
			edit: func(c *protocol.Consent) { c.Collection.At = at(now.Add(5*time.Minute + time.Second)) }, wantField: "collection.at",
			wantDetail: []string{"5m tolerated"}},
		{name: "own purposes replace the default", policy: consent.Policy{Purposes: []string{"fraud-alert"}},
			wantField: "purpose", wantDetail: []string{`use "fraud-alert"`}},
		{name: "own purposes accept theirs", policy: consent.Policy{Purposes: []string{"fraud-alert"}},
			edit: func(c *protocol.Consent) { c.Purpose = "fraud-alert" }},
		{name: "one field set keeps the other defaults", policy: consent.Policy{Purposes: []string{"fraud-alert"}},
			edit:      func(c *protocol.Consent) { c.Purpose = "fraud-alert"; c.Evidence.AuthenticationMethod = "sms" },
			wantField: "evidence.authentication_method", wantDetail: []string{`"bankid"`}},
		{name: "empty list means the default", policy: consent.Policy{AuthenticationMethods: []string{}}},
		{name: "own authentication methods", policy: consent.Policy{AuthenticationMethods: []string{"bankid"}},
			edit: func(c *protocol.Consent) { c.Evidence.AuthenticationMethod = "eidas-high" }, wantField: "evidence.authentication_method",
			wantDetail: []string{`authenticate the consumer with "bankid"`}},
		{name: "own legal bases", policy: consent.Policy{LegalBases: []string{"gdpr-art-6-1-a", "gdpr-art-9-2-a"}},
			edit: func(c *protocol.Consent) { c.LegalBasis = "gdpr-art-9-2-a" }},
		{name: "own collection methods", policy: consent.Policy{CollectionMethods: []string{"branch"}},
			wantField: "collection.method", wantDetail: []string{`use "branch"`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { checkValidate(t, tc.policy, tc) })
	}
}

func checkValidate(t *testing.T, p consent.Policy, tc validateCase) {
	t.Helper()
	c := validConsent()
	if tc.edit != nil {
		tc.edit(c)
	}
	if tc.wantNil {
		c = nil
	}
	m, hubNow, flagExpiry := member, now, now.Add(flagLifetime)
	if tc.member != "" {
		m = tc.member
	}
	if !tc.now.IsZero() {
		hubNow = tc.now
	}
	if !tc.flagExpiry.IsZero() {
		flagExpiry = tc.flagExpiry
	}
	if tc.zeroExpiry {
		flagExpiry = time.Time{}
	}
	err := p.Validate(c, m, flagExpiry, hubNow)
	if tc.wantField == "" && !tc.wantNil {
		if err != nil {
			t.Fatalf("got %v, want no error", err)
		}
		return
	}
	var cerr *consent.Error
	if !errors.As(err, &cerr) {
		t.Fatalf("got %v (%T), want a *consent.Error", err, err)
	}
	if cerr.Field != tc.wantField {
		t.Errorf("got field %q, want %q (%v)", cerr.Field, tc.wantField, err)
	}
	if !errors.Is(err, consent.ErrInvalid) {
		t.Errorf("errors.Is(%v, ErrInvalid) = false, want true", err)
	}
	for _, want := range tc.wantDetail {
		if !strings.Contains(cerr.Detail, want) {
			t.Errorf("got detail %q, want it to contain %q", cerr.Detail, want)
		}
	}
	if c != nil {
		checkNoSecrets(t, err.Error(), c)
	}
}

// checkNoSecrets fails if msg contains the consent's subject token or
// evidence reference, in any form.
func checkNoSecrets(t *testing.T, msg string, c *protocol.Consent) {
	t.Helper()
	for _, secret := range []string{c.Subject.String(), protocol.Base64URL(c.Subject.Value[:]).String(), c.Evidence.Reference} {
		if strings.Contains(msg, secret) {
			t.Errorf("error %q contains a secret %q", msg, secret)
		}
	}
}

func TestDefaultPolicy(t *testing.T) {
	p := consent.DefaultPolicy()
	lists := []struct {
		name      string
		got, want []string
	}{
		{"Purposes", p.Purposes, []string{"identity-fraud-protection"}},
		{"LegalBases", p.LegalBases, []string{"gdpr-art-6-1-a"}},
		{"CollectionMethods", p.CollectionMethods, []string{"online-banking", "mobile-app", "branch", "telephone", "web"}},
		{"AuthenticationMethods", p.AuthenticationMethods, []string{"bankid", "freja-eid-plus", "eidas-high", "eidas-substantial"}},
	}
	for _, l := range lists {
		if !slices.Equal(l.got, l.want) {
			t.Errorf("%s: got %q, want %q", l.name, l.got, l.want)
		}
	}
	if p.MaxAge != 24*time.Hour {
		t.Errorf("MaxAge: got %s, want 24h", p.MaxAge)
	}
	if p.Skew != time.Minute {
		t.Errorf("Skew: got %s, want 1m", p.Skew)
	}

	// Each call returns its own lists, so changing one policy leaves the
	// next untouched.
	p.Purposes[0] = "changed"
	if got := consent.DefaultPolicy().Purposes[0]; got != "identity-fraud-protection" {
		t.Errorf("after changing a returned policy, DefaultPolicy().Purposes[0] = %q, want %q", got, "identity-fraud-protection")
	}
}

func TestError(t *testing.T) {
	err := error(&consent.Error{Field: "collection.at", Detail: "collected 26h ago"})
	if got, want := err.Error(), "invalid consent: collection.at: collected 26h ago"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	if got, want := (&consent.Error{Detail: "no consent"}).Error(), "invalid consent: no consent"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}

	wrapped := fmt.Errorf("place flag: %w", err)
	if !errors.Is(wrapped, consent.ErrInvalid) {
		t.Errorf("errors.Is(wrapped, ErrInvalid) = false, want true")
	}
	if errors.Is(wrapped, consent.ErrState) {
		t.Errorf("errors.Is(wrapped, ErrState) = true, want false")
	}
	var cerr *consent.Error
	if !errors.As(wrapped, &cerr) || cerr.Field != "collection.at" {
		t.Errorf("errors.As(wrapped) gave %v, want the *consent.Error for collection.at", cerr)
	}
}

// TestNoSecretsInErrors puts the subject token and evidence reference into
// every refused consent and checks no message repeats them.
func TestNoSecretsInErrors(t *testing.T) {
	refused := 0
	for _, tc := range validateCases() {
		if tc.wantField == "" || tc.wantNil {
			continue
		}
		refused++
		t.Run(tc.name, func(t *testing.T) {
			c := validConsent()
			if tc.edit != nil {
				tc.edit(c)
			}
			m := member
			if tc.member != "" {
				m = tc.member
			}
			flagExpiry := now.Add(flagLifetime)
			if !tc.flagExpiry.IsZero() {
				flagExpiry = tc.flagExpiry
			}
			err := consent.DefaultPolicy().Validate(c, m, flagExpiry, now)
			if err == nil {
				t.Fatal("got no error, want a refusal")
			}
			checkNoSecrets(t, err.Error(), c)
		})
	}
	if refused < 10 {
		t.Fatalf("got %d refused cases, want at least 10", refused)
	}
}
