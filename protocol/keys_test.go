package protocol_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/lestrrat-go/jwx/v3/jwk"

	"github.com/sparr-dev/sparr/protocol"
)

func TestSigningKeyFileRoundTrip(t *testing.T) {
	for _, alg := range []protocol.Algorithm{protocol.EdDSA, protocol.ES256} {
		t.Run(string(alg), func(t *testing.T) {
			k, err := protocol.GenerateSigningKey(alg, rand.Reader)
			if err != nil {
				t.Fatal(err)
			}
			data, err := k.MarshalPrivateJWK()
			if err != nil {
				t.Fatal(err)
			}
			k2, err := protocol.ParseSigningKey(data)
			if err != nil {
				t.Fatal(err)
			}
			if k2.KeyID() != k.KeyID() || k2.Algorithm() != alg {
				t.Errorf("got kid %s alg %s, want %s %s", k2.KeyID(), k2.Algorithm(), k.KeyID(), alg)
			}
			// What one signs the other's public half verifies.
			r := sampleRecords(t)[0]
			signed, err := protocol.SignRecord(r, k2)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := protocol.VerifyRecord(signed, keySet(t, k)); err != nil {
				t.Error(err)
			}
			// The public key file is not a private key.
			pub, _ := json.Marshal(k.Public())
			if _, err := protocol.ParseSigningKey(pub); !errors.Is(err, protocol.ErrUnsupportedKey) {
				t.Errorf("ParseSigningKey(public JWK): got %v, want ErrUnsupportedKey", err)
			}
		})
	}
}

func TestSigningKeyNeverShowsItsSecret(t *testing.T) {
	k, _ := protocol.GenerateSigningKey(protocol.EdDSA, rand.Reader)
	data, _ := k.MarshalPrivateJWK()
	var fields map[string]string
	_ = json.Unmarshal(data, &fields)
	secret := fields["d"]
	if secret == "" {
		t.Fatal("private JWK has no d")
	}
	var logged strings.Builder
	slog.New(slog.NewJSONHandler(&logged, nil)).Info("key", "k", k)
	asJSON, _ := json.Marshal(struct{ K *protocol.SigningKey }{k})
	for _, s := range []string{fmt.Sprint(k), fmt.Sprintf("%v %+v %#v %s", k, k, k, k), logged.String(), string(asJSON)} {
		if strings.Contains(s, secret) {
			t.Errorf("%q shows the private key", s)
		}
	}
}

func TestParseKeySet(t *testing.T) {
	ed, p256 := hubKeys(t)
	good, _ := json.Marshal(keySet(t, ed, p256))
	pubJWK := func(k *protocol.SigningKey, edit func(map[string]any)) map[string]any {
		var m map[string]any
		b, _ := json.Marshal(k.Public())
		_ = json.Unmarshal(b, &m)
		if edit != nil {
			edit(m)
		}
		return m
	}
	set := func(keys ...any) string {
		b, _ := json.Marshal(map[string]any{"keys": keys})
		return string(b)
	}
	privEd, _ := ed.MarshalPrivateJWK()
	var privMap map[string]any
	_ = json.Unmarshal(privEd, &privMap)
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	rsaJWK, _ := jwk.Import(rsaKey.Public())
	_ = rsaJWK.Set(jwk.KeyIDKey, "rsa")
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	p384JWK, _ := jwk.Import(p384.Public())
	_ = p384JWK.Set(jwk.KeyIDKey, "p384")

	tests := []struct {
		name string
		in   string
		ok   bool
	}{
		{"hub keys", string(good), true},
		{"without alg and use", set(pubJWK(ed, func(m map[string]any) { delete(m, "alg"); delete(m, "use") })), true},
		{"empty", `{"keys":[]}`, false},
		{"not JSON", `{"keys":`, false},
		{"no kid", set(pubJWK(ed, func(m map[string]any) { delete(m, "kid") })), false},
		{"alg contradicts key", set(pubJWK(ed, func(m map[string]any) { m["alg"] = "ES256" })), false},
		{"encryption key", set(pubJWK(p256, func(m map[string]any) { m["use"] = "enc" })), false},
		{"private key", set(privMap), false},
		{"RSA", set(rsaJWK), false},
		{"P-384", set(p384JWK), false},
		{"duplicate kid", set(pubJWK(ed, nil), pubJWK(ed, nil)), false},
		{"symmetric", `{"keys":[{"kty":"oct","kid":"s","k":"c2VjcmV0"}]}`, false},
		{"too many", set(func() []any {
			var ks []any
			for i := range protocol.MaxKeySetKeys + 1 {
				ks = append(ks, pubJWK(ed, func(m map[string]any) { m["kid"] = fmt.Sprint(i) }))
			}
			return ks
		}()...), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ks, err := protocol.ParseKeySet([]byte(tt.in))
			if (err == nil) != tt.ok {
				t.Fatalf("got %v, want ok=%v", err, tt.ok)
			}
			if err != nil && !errors.Is(err, protocol.ErrUnsupportedKey) {
				t.Errorf("got %v, want ErrUnsupportedKey", err)
			}
			if err == nil && ks.Len() == 0 {
				t.Error("accepted set is empty")
			}
		})
	}
}

func TestKeyIDIsThumbprint(t *testing.T) {
	ed, _ := hubKeys(t)
	j, _ := jwk.Import(ed.Public().CryptoPublicKey())
	tp, _ := j.Thumbprint(crypto.SHA256)
	if got, want := ed.KeyID(), protocol.Base64URL(tp).String(); got != want {
		t.Errorf("got kid %s, want RFC 7638 thumbprint %s", got, want)
	}
}

func FuzzParseKeySet(f *testing.F) {
	ed, p256 := hubKeys(f)
	good, _ := json.Marshal(keySet(f, ed, p256))
	f.Add(good)
	f.Add([]byte(`{"keys":[{"kty":"OKP","crv":"Ed25519","kid":"a","x":"AAAA"}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		ks, err := protocol.ParseKeySet(data)
		if err != nil {
			return
		}
		// An accepted set survives its own encoding.
		out, err := json.Marshal(ks)
		if err != nil {
			t.Fatal(err)
		}
		again, err := protocol.ParseKeySet(out)
		if err != nil || again.Len() != ks.Len() {
			t.Fatalf("re-parsing %s: %v", out, err)
		}
	})
}
