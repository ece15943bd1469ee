package protocol

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	crand "crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwk"
)

// ErrUnsupportedKey is returned by [NewSigningKey], [ParsePublicKey],
// [ParseKeySet] and [ParseSigningKey] for a key that is not an Ed25519 or
// ECDSA P-256 key, or whose JWK fields contradict each other.
var ErrUnsupportedKey = errors.New("unsupported key")

// MaxKeySetSize is the largest JWK Set, in bytes, that [ParseKeySet] reads,
// and MaxKeySetKeys the most keys it holds.
const (
	MaxKeySetSize = 64 << 10
	MaxKeySetKeys = 32
)

// An Algorithm is a JWS signature algorithm (RFC 7518, RFC 8037) that Spärr
// signs and verifies with. There are exactly two.
type Algorithm string

const (
	// EdDSA is Ed25519 (RFC 8037). It is the default.
	EdDSA Algorithm = "EdDSA"
	// ES256 is ECDSA on P-256 with SHA-256, for HSMs and deployments that
	// require NIST curves.
	ES256 Algorithm = "ES256"
)

// ParseAlgorithm returns the Algorithm named s.
func ParseAlgorithm(s string) (Algorithm, error) {
	switch Algorithm(s) {
	case EdDSA, ES256:
		return Algorithm(s), nil
	}
	return "", fmt.Errorf("%w: algorithm %q (want %q or %q)", ErrUnsupportedKey, s, EdDSA, ES256)
}

func (a Algorithm) jwa() jwa.SignatureAlgorithm {
	if a == ES256 {
		return jwa.ES256()
	}
	return jwa.EdDSA()
}

// A PublicKey is a key that verifies signatures, with its key id and
// algorithm. On the wire it is a JWK (RFC 7517) with "kid", "alg" and
// "use":"sig".
type PublicKey struct {
	kid string
	alg Algorithm
	key crypto.PublicKey // ed25519.PublicKey or *ecdsa.PublicKey
}

// KeyID returns the key's "kid".
func (k *PublicKey) KeyID() string { return k.kid }

// Algorithm returns the one algorithm the key verifies.
func (k *PublicKey) Algorithm() Algorithm { return k.alg }

// CryptoPublicKey returns the key as an ed25519.PublicKey or an
// *ecdsa.PublicKey.
func (k *PublicKey) CryptoPublicKey() crypto.PublicKey { return k.key }

// MarshalJSON encodes the key as a JWK.
func (k *PublicKey) MarshalJSON() ([]byte, error) {
	j, err := k.jwk()
	if err != nil {
		return nil, err
	}
	return json.Marshal(j)
}

func (k *PublicKey) jwk() (jwk.Key, error) {
	j, err := jwk.Import(k.key)
	if err != nil {
		return nil, fmt.Errorf("encode key %q: %w", k.kid, err)
	}
	for name, v := range map[string]any{jwk.KeyIDKey: k.kid, jwk.AlgorithmKey: k.alg.jwa(), jwk.KeyUsageKey: jwk.ForSignature} {
		if err := j.Set(name, v); err != nil {
			return nil, fmt.Errorf("encode key %q: %w", k.kid, err)
		}
	}
	return j, nil
}

// ParsePublicKey decodes one public JWK. It must carry a "kid"; "alg", if
// present, must be the algorithm its type implies; "use", if present, must be
// "sig"; private members are refused.
func ParsePublicKey(data []byte) (*PublicKey, error) {
	j, err := jwk.ParseKey(data)
	if err != nil {
		return nil, fmt.Errorf("%w: not a JWK: %v", ErrUnsupportedKey, err)
	}
	return publicFromJWK(j)
}

func publicFromJWK(j jwk.Key) (*PublicKey, error) {
	kid, _ := j.KeyID()
	if kid == "" {
		return nil, fmt.Errorf("%w: JWK has no \"kid\"", ErrUnsupportedKey)
	}
	if private, err := jwk.IsPrivateKey(j); err != nil || private {
		return nil, fmt.Errorf("%w: key %q is a private key; publish only the public part", ErrUnsupportedKey, kid)
	}
	var raw any
	if err := jwk.Export(j, &raw); err != nil {
		return nil, fmt.Errorf("%w: key %q: %v", ErrUnsupportedKey, kid, err)
	}
	alg, err := algorithmFor(raw)
	if err != nil {
		return nil, fmt.Errorf("key %q: %w", kid, err)
	}
	if a, ok := j.Algorithm(); ok && a.String() != string(alg) {
		return nil, fmt.Errorf("%w: key %q says \"alg\":%q but is a %s key", ErrUnsupportedKey, kid, a.String(), alg)
	}
	if use, ok := j.KeyUsage(); ok && use != string(jwk.ForSignature) {
		return nil, fmt.Errorf("%w: key %q has \"use\":%q, want \"sig\"", ErrUnsupportedKey, kid, use)
	}
	return &PublicKey{kid: kid, alg: alg, key: raw}, nil
}

// algorithmFor returns the algorithm of a raw public key, refusing every
// other kind of key.
func algorithmFor(pub any) (Algorithm, error) {
	switch k := pub.(type) {
	case ed25519.PublicKey:
		if len(k) != ed25519.PublicKeySize {
			return "", fmt.Errorf("%w: Ed25519 key of %d bytes", ErrUnsupportedKey, len(k))
		}
		return EdDSA, nil
	case *ecdsa.PublicKey:
		if k.Curve != elliptic.P256() {
			return "", fmt.Errorf("%w: ECDSA key on %s, want P-256", ErrUnsupportedKey, k.Curve.Params().Name)
		}
		return ES256, nil
	}
	return "", fmt.Errorf("%w: %T (want Ed25519 or ECDSA P-256)", ErrUnsupportedKey, pub)
}

// Thumbprint returns the RFC 7638 JWK thumbprint (SHA-256, base64url) of a
// raw Ed25519 or P-256 public key: the default key id.
func Thumbprint(pub crypto.PublicKey) (string, error) {
	if _, err := algorithmFor(pub); err != nil {
		return "", err
	}
	j, err := jwk.Import(pub)
	if err != nil {
		return "", err
	}
	tp, err := j.Thumbprint(crypto.SHA256)
	if err != nil {
		return "", err
	}
	return Base64URL(tp).String(), nil
}

// A KeySet is a JWK Set (RFC 7517, section 5) of public keys, each with a
// distinct key id: the hub's published keys, or a member's registered keys.
type KeySet struct {
	keys []*PublicKey
}

// NewKeySet returns a set of keys, refusing two with the same key id.
func NewKeySet(keys ...*PublicKey) (*KeySet, error) {
	if len(keys) > MaxKeySetKeys {
		return nil, fmt.Errorf("%w: %d keys in one set, at most %d", ErrUnsupportedKey, len(keys), MaxKeySetKeys)
	}
	seen := make(map[string]bool, len(keys))
	for _, k := range keys {
		if seen[k.kid] {
			return nil, fmt.Errorf("%w: two keys with kid %q", ErrUnsupportedKey, k.kid)
		}
		seen[k.kid] = true
	}
	return &KeySet{keys: append([]*PublicKey(nil), keys...)}, nil
}

// ParseKeySet decodes a JWK Set. Every key must pass [ParsePublicKey]'s
// rules; a set with an unusable key is refused whole rather than silently
// trimmed, so a mistake in a member's registration is seen at once.
func ParseKeySet(data []byte) (*KeySet, error) {
	if len(data) > MaxKeySetSize {
		return nil, fmt.Errorf("%w: JWK Set of %d bytes, at most %d", ErrUnsupportedKey, len(data), MaxKeySetSize)
	}
	var doc struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("%w: not a JWK Set: %v", ErrUnsupportedKey, err)
	}
	if len(doc.Keys) == 0 {
		return nil, fmt.Errorf("%w: JWK Set has no \"keys\"", ErrUnsupportedKey)
	}
	keys := make([]*PublicKey, 0, len(doc.Keys))
	for i, raw := range doc.Keys {
		k, err := ParsePublicKey(raw)
		if err != nil {
			return nil, fmt.Errorf("keys[%d]: %w", i, err)
		}
		keys = append(keys, k)
	}
	return NewKeySet(keys...)
}

// Key returns the key with the given key id.
func (s *KeySet) Key(kid string) (*PublicKey, bool) {
	if s == nil {
		return nil, false
	}
	for _, k := range s.keys {
		if k.kid == kid {
			return k, true
		}
	}
	return nil, false
}

// Keys returns the keys in the set, in order.
func (s *KeySet) Keys() []*PublicKey {
	if s == nil {
		return nil
	}
	return append([]*PublicKey(nil), s.keys...)
}

// Len returns the number of keys.
func (s *KeySet) Len() int {
	if s == nil {
		return 0
	}
	return len(s.keys)
}

// MarshalJSON encodes the set as a JWK Set.
func (s *KeySet) MarshalJSON() ([]byte, error) {
	keys := []*PublicKey{}
	if s != nil {
		keys = s.keys
	}
	return json.Marshal(struct {
		Keys []*PublicKey `json:"keys"`
	}{keys})
}

// A SigningKey is a private key with its key id and algorithm: the hub's
// record-signing key, or a member's key for submissions and bearer tokens.
// Its String, GoString and LogValue never show key material.
type SigningKey struct {
	signer crypto.Signer
	pub    PublicKey
}

// GenerateSigningKey makes a new key for alg, reading randomness from rand
// (nil means crypto/rand). Its key id is the key's RFC 7638 thumbprint.
func GenerateSigningKey(alg Algorithm, rand io.Reader) (*SigningKey, error) {
	if rand == nil {
		rand = crand.Reader
	}
	switch alg {
	case EdDSA:
		_, priv, err := ed25519.GenerateKey(rand)
		if err != nil {
			return nil, err
		}
		return NewSigningKey(priv, "")
	case ES256:
		priv, err := ecdsa.GenerateKey(elliptic.P256(), rand)
		if err != nil {
			return nil, err
		}
		return NewSigningKey(priv, "")
	}
	_, err := ParseAlgorithm(string(alg))
	return nil, err
}

// NewSigningKey wraps a private key: an ed25519.PrivateKey, an
// *ecdsa.PrivateKey on P-256, or any crypto.Signer (an HSM, say) whose public
// key is one of those. An empty kid means the RFC 7638 thumbprint.
func NewSigningKey(priv crypto.Signer, kid string) (*SigningKey, error) {
	pub := priv.Public()
	alg, err := algorithmFor(pub)
	if err != nil {
		return nil, err
	}
	if kid == "" {
		if kid, err = Thumbprint(pub); err != nil {
			return nil, err
		}
	}
	return &SigningKey{signer: priv, pub: PublicKey{kid: kid, alg: alg, key: pub}}, nil
}

// KeyID returns the key's "kid".
func (k *SigningKey) KeyID() string { return k.pub.kid }

// Algorithm returns the algorithm the key signs with.
func (k *SigningKey) Algorithm() Algorithm { return k.pub.alg }

// Public returns the public half.
func (k *SigningKey) Public() *PublicKey {
	p := k.pub
	return &p
}

// Signer returns the underlying crypto.Signer.
func (k *SigningKey) Signer() crypto.Signer { return k.signer }

// String describes the key without its secret.
func (k *SigningKey) String() string {
	return fmt.Sprintf("SigningKey(%s, kid %q)", k.pub.alg, k.pub.kid)
}

// GoString is String, so %#v shows no key material either.
func (k *SigningKey) GoString() string { return k.String() }

// LogValue is String, for log/slog.
func (k *SigningKey) LogValue() slog.Value { return slog.StringValue(k.String()) }

// MarshalPrivateJWK encodes the private key as a JWK, for the key file it is
// kept in. It is deliberately not MarshalJSON: a SigningKey put into a JSON
// document by mistake must not carry its secret with it.
func (k *SigningKey) MarshalPrivateJWK() ([]byte, error) {
	switch k.signer.(type) {
	case ed25519.PrivateKey, *ecdsa.PrivateKey:
	default:
		return nil, fmt.Errorf("%w: key %q is held by a %T and cannot be exported", ErrUnsupportedKey, k.pub.kid, k.signer)
	}
	j, err := jwk.Import(k.signer)
	if err != nil {
		return nil, err
	}
	for name, v := range map[string]any{jwk.KeyIDKey: k.pub.kid, jwk.AlgorithmKey: k.pub.alg.jwa(), jwk.KeyUsageKey: jwk.ForSignature} {
		if err := j.Set(name, v); err != nil {
			return nil, err
		}
	}
	return json.Marshal(j)
}

// ParseSigningKey decodes a private JWK written by
// [SigningKey.MarshalPrivateJWK].
func ParseSigningKey(data []byte) (*SigningKey, error) {
	j, err := jwk.ParseKey(data)
	if err != nil {
		return nil, fmt.Errorf("%w: not a JWK: %v", ErrUnsupportedKey, err)
	}
	if private, err := jwk.IsPrivateKey(j); err != nil || !private {
		return nil, fmt.Errorf("%w: not a private key", ErrUnsupportedKey)
	}
	var raw any
	if err := jwk.Export(j, &raw); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrUnsupportedKey, err)
	}
	signer, ok := raw.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("%w: %T cannot sign", ErrUnsupportedKey, raw)
	}
	kid, _ := j.KeyID()
	k, err := NewSigningKey(signer, kid)
	if err != nil {
		return nil, err
	}
	if a, ok := j.Algorithm(); ok && a.String() != string(k.pub.alg) {
		return nil, fmt.Errorf("%w: key says \"alg\":%q but is a %s key", ErrUnsupportedKey, a.String(), k.pub.alg)
	}
	return k, nil
}
