package protocol_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/sparr-dev/sparr/protocol"
)

func TestConsumerAuthCheck(t *testing.T) {
	good := func() *protocol.ConsumerAuth {
		return &protocol.ConsumerAuth{Method: protocol.AuthBankID, AuthenticatedAt: protocol.NewNumericDate(vectorTime), Level: protocol.LevelHigh, Reference: "a3d5c7e1-auth"}
	}
	for _, tc := range []struct {
		name  string
		edit  func(a *protocol.ConsumerAuth) *protocol.ConsumerAuth
		want  error
		field string
	}{
		{"complete", func(a *protocol.ConsumerAuth) *protocol.ConsumerAuth { return a }, nil, ""},
		{"absent", func(*protocol.ConsumerAuth) *protocol.ConsumerAuth { return nil }, protocol.ErrMissingClaim, "consumer_auth"},
		{"no method", func(a *protocol.ConsumerAuth) *protocol.ConsumerAuth { a.Method = ""; return a }, protocol.ErrMissingClaim, "consumer_auth.method"},
		{"unknown method", func(a *protocol.ConsumerAuth) *protocol.ConsumerAuth { a.Method = "password"; return a }, protocol.ErrInvalidClaim, "consumer_auth.method"},
		{"no time", func(a *protocol.ConsumerAuth) *protocol.ConsumerAuth { a.AuthenticatedAt = 0; return a }, protocol.ErrMissingClaim, "consumer_auth.authenticated_at"},
		{"low level", func(a *protocol.ConsumerAuth) *protocol.ConsumerAuth { a.Level = "low"; return a }, protocol.ErrInvalidClaim, "consumer_auth.level"},
		{"no reference", func(a *protocol.ConsumerAuth) *protocol.ConsumerAuth { a.Reference = ""; return a }, protocol.ErrMissingClaim, "consumer_auth.reference"},
		{"long reference", func(a *protocol.ConsumerAuth) *protocol.ConsumerAuth {
			a.Reference = strings.Repeat("x", 201)
			return a
		}, protocol.ErrInvalidClaim, "consumer_auth.reference"},
		{"control characters", func(a *protocol.ConsumerAuth) *protocol.ConsumerAuth { a.Reference = "a\nb"; return a }, protocol.ErrInvalidClaim, "consumer_auth.reference"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.edit(good()).Check()
			if !errors.Is(err, tc.want) || (err != nil && !strings.Contains(err.Error(), tc.field)) {
				t.Errorf("got %v, want %v naming %s", err, tc.want, tc.field)
			}
		})
	}
}

// FuzzConsumerAuth: any JSON either fails the check or is a statement
// whose every field is present and of a known code, and that encodes
// back to a statement that passes.
func FuzzConsumerAuth(f *testing.F) {
	f.Add([]byte(`{"method":"bankid","authenticated_at":1795000000,"level":"high","reference":"a3d5c7e1-auth"}`))
	f.Add([]byte(`{"method":"freja-eid","authenticated_at":1,"level":"substantial","reference":"r"}`))
	f.Add([]byte(`{"method":"password","authenticated_at":1,"level":"low","reference":""}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, b []byte) {
		var a *protocol.ConsumerAuth
		if json.Unmarshal(b, &a) != nil {
			return
		}
		if a.Check() != nil {
			return
		}
		if a.Method == "" || a.Level == "" || a.Reference == "" || a.AuthenticatedAt == 0 {
			t.Fatalf("accepted %+v with a field missing", a)
		}
		again, _ := json.Marshal(a)
		var b2 *protocol.ConsumerAuth
		if err := json.Unmarshal(again, &b2); err != nil || b2.Check() != nil {
			t.Fatalf("re-encoded %s does not pass: %v", again, err)
		}
	})
}
