package protocol_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/sha256"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/sparr-dev/sparr/protocol"
)

// Fixed keys and values shared by the tests and the golden vectors. Every
// key is derived from a label, so the vectors regenerate byte for byte.

// seed32 returns SHA-256 of label: a fixed 32-byte seed.
func seed32(label string) []byte {
	s := sha256.Sum256([]byte(label))
	return s[:]
}

// deterministicSigner signs ECDSA without randomness (RFC 6979), so that
// ES256 vectors are stable. Production signing stays randomized.
type deterministicSigner struct{ k *ecdsa.PrivateKey }

func (d deterministicSigner) Public() crypto.PublicKey { return d.k.Public() }
func (d deterministicSigner) Sign(_ io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	return d.k.Sign(nil, digest, opts)
}

// ed25519Key returns a fixed Ed25519 signing key.
func ed25519Key(t testing.TB, label string) *protocol.SigningKey {
	t.Helper()
	k, err := protocol.NewSigningKey(ed25519.NewKeyFromSeed(seed32(label)), "")
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// p256Key returns a fixed P-256 signing key that signs deterministically.
func p256Key(t testing.TB, label string) *protocol.SigningKey {
	t.Helper()
	priv, err := ecdsa.ParseRawPrivateKey(elliptic.P256(), seed32(label))
	if err != nil {
		t.Fatal(err)
	}
	k, err := protocol.NewSigningKey(deterministicSigner{priv}, "")
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// hubKeys are the hub's record-signing keys in the golden vectors.
func hubKeys(t testing.TB) (ed, p256 *protocol.SigningKey) {
	return ed25519Key(t, "sparr test vectors: hub Ed25519 key"), p256Key(t, "sparr test vectors: hub P-256 key")
}

func keySet(t testing.TB, keys ...*protocol.SigningKey) *protocol.KeySet {
	t.Helper()
	var pubs []*protocol.PublicKey
	for _, k := range keys {
		pubs = append(pubs, k.Public())
	}
	ks, err := protocol.NewKeySet(pubs...)
	if err != nil {
		t.Fatal(err)
	}
	return ks
}

// testTokenKey is the OPRF key of the token vectors.
func testTokenKey(t testing.TB) *protocol.TokenKey {
	t.Helper()
	k, err := protocol.DeriveTokenKey(1, seed32("sparr test vectors: OPRF key"))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// testToken returns the token of a canonical identifier under the test key.
func testToken(t testing.TB, typ protocol.IdentifierType, canonical string) protocol.Token {
	t.Helper()
	tok, err := testTokenKey(t).Token(typ, canonical)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// vectorTime is the clock of the golden vectors: 2026-11-21T10:00:00Z.
var vectorTime = time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)

// members is a KeyResolver over fixed member keys.
type members map[string]*protocol.KeySet

func (m members) ResolveKey(_ context.Context, member, kid string) (*protocol.PublicKey, error) {
	if k, ok := m[member].Key(kid); ok {
		return k, nil
	}
	return nil, fmt.Errorf("member %q kid %q: %w", member, kid, protocol.ErrUnknownKey)
}

var _ protocol.KeyResolver = members(nil)
