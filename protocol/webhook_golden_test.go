package protocol_test

// testdata/webhooks.json holds Standard Webhooks deliveries that other
// implementations check their verifiers against. It is an array of objects:
//
//	name              what the row exercises
//	secret            the receiver's HMAC secret, "whsec_" + base64
//	public_key_jwk    the receiver's Ed25519 public key as an RFC 8037 OKP JWK
//	id                the webhook-id header
//	timestamp         the webhook-timestamp header, an integer of Unix seconds
//	verify_at         (only in some rows) the receiver's clock, Unix seconds
//	body              the raw body, byte for byte as signed
//	signature_header  the webhook-signature header
//	valid             whether the receiver accepts the delivery
//
// To check a row, verify the delivery with a verifier that trusts exactly
// that secret and that public key, a tolerance of 5 minutes, and its clock
// set to verify_at when the row has it and to timestamp when it does not.
// valid is true if the delivery must be accepted and false if it must be
// refused, for the reason the row's name gives.
//
// The keys come from fixed labels (the secret and the Ed25519 seed are
// SHA-256 hashes of them), so the file regenerates byte for byte:
//
//	go test ./protocol -run TestGoldenWebhooks -update

import (
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sparr-dev/sparr/protocol"
)

// webhookVector is one row of testdata/webhooks.json.
type webhookVector struct {
	Name            string     `json:"name"`
	Secret          string     `json:"secret"`
	PublicKeyJWK    webhookJWK `json:"public_key_jwk"`
	ID              string     `json:"id"`
	Timestamp       int64      `json:"timestamp"`
	VerifyAt        int64      `json:"verify_at,omitempty"`
	Body            string     `json:"body"`
	SignatureHeader string     `json:"signature_header"`
	Valid           bool       `json:"valid"`
}

// webhookJWK is an Ed25519 public key as an RFC 8037 JSON Web Key.
type webhookJWK struct {
	Kty string `json:"kty"`
	Crv string `json:"crv"`
	X   string `json:"x"`
}

func newWebhookJWK(pub ed25519.PublicKey) webhookJWK {
	return webhookJWK{Kty: "OKP", Crv: "Ed25519", X: base64.RawURLEncoding.EncodeToString(pub)}
}

func (j webhookJWK) publicKey() (ed25519.PublicKey, error) {
	if j.Kty != "OKP" || j.Crv != "Ed25519" {
		return nil, errors.New("JWK is not an OKP Ed25519 key")
	}
	x, err := base64.RawURLEncoding.Strict().DecodeString(j.X)
	if err != nil {
		return nil, err
	}
	if len(x) != ed25519.PublicKeySize {
		return nil, errors.New("JWK x is not 32 bytes")
	}
	return ed25519.PublicKey(x), nil
}

// buildWebhookVectors signs the rows of testdata/webhooks.json.
func buildWebhookVectors(t *testing.T) []webhookVector {
	t.Helper()
	secret := webhookSecretFor(t, "sparr webhook golden: secret")
	oldSecret := webhookSecretFor(t, "sparr webhook golden: old secret")
	otherSecret := webhookSecretFor(t, "sparr webhook golden: another member's secret")
	key := webhookKeyFor("sparr webhook golden: ed25519 seed")
	otherKey := webhookKeyFor("sparr webhook golden: another ed25519 seed")
	jwk := newWebhookJWK(key.Public().(ed25519.PublicKey))

	const (
		id    = "msg_2xN4qK8sVb7RtL0pZc3Wy9HfJ1a"
		body  = `{"type":"signal.created","timestamp":"2026-01-01T00:00:00Z","data":{"signal":"sig_01JGZ4V8M2Q","kind":"mule_account","score":0.92}}`
		other = `{"type":"signal.created","timestamp":"2026-01-01T00:00:00Z","data":{"signal":"sig_01JGZ4V8M2Q","kind":"mule_account","score":0.12}}`
	)
	ts := time.Unix(1767225600, 0) // 2026-01-01T00:00:00Z
	sign := func(secrets []protocol.WebhookSecret, keys []ed25519.PrivateKey, id string, at time.Time, body string) string {
		h, err := protocol.WebhookSigner{Secrets: secrets, Keys: keys}.Sign(id, at, []byte(body))
		if err != nil {
			t.Fatal(err)
		}
		return h
	}
	secrets := func(s ...protocol.WebhookSecret) []protocol.WebhookSecret { return s }
	keys := func(k ...ed25519.PrivateKey) []ed25519.PrivateKey { return k }
	v1 := sign(secrets(secret), nil, id, ts, body)
	v1a := sign(nil, keys(key), id, ts, body)

	row := func(name, header string, valid bool) webhookVector {
		return webhookVector{
			Name: name, Secret: secret.Encode(), PublicKeyJWK: jwk, ID: id, Timestamp: ts.Unix(),
			Body: body, SignatureHeader: header, Valid: valid,
		}
	}
	tol := protocol.DefaultWebhookTolerance
	stale := ts.Add(-6 * time.Minute)
	future := ts.Add(6 * time.Minute)
	edge := ts.Add(-tol)

	vectors := []webhookVector{
		row("v1 only", v1, true),
		row("v1a only", v1a, true),
		row("v1 and v1a", v1+" "+v1a, true),
		row("rotation: two v1 entries, the second matches", sign(secrets(oldSecret, secret), nil, id, ts, body), true),
		row("rotation: two v1a entries, the second matches", sign(nil, keys(otherKey, key), id, ts, body), true),
		row("unknown version ignored", "v2,"+strings.TrimPrefix(v1, "v1,")+" "+v1, true),
		row("only an unknown version", "v2,"+strings.TrimPrefix(v1, "v1,"), false),
		row("wrong secret: signed by another member's secret", sign(secrets(otherSecret), nil, id, ts, body), false),
		row("wrong key: signed by another Ed25519 key", sign(nil, keys(otherKey), id, ts, body), false),
		row("tampered body: signed over a different body", sign(secrets(secret), keys(key), id, ts, other), false),
		row("tampered id: signed for a different id", sign(secrets(secret), keys(key), id+"X", ts, body), false),
		row("tampered timestamp: signed for one second earlier", sign(secrets(secret), keys(key), id, ts.Add(-time.Second), body), false),
		row("malformed: entry without a comma", "v1"+strings.TrimPrefix(v1, "v1,"), false),
		row("malformed: signature in unpadded URL-safe base64", "v1,"+base64.RawURLEncoding.EncodeToString(webhookStdBase64(t, strings.TrimPrefix(v1, "v1,"))), false),
	}

	r := row("timestamp exactly 5 minutes old: accepted", sign(secrets(secret), keys(key), id, edge, body), true)
	r.Timestamp, r.VerifyAt = edge.Unix(), ts.Unix()
	vectors = append(vectors, r)

	r = row("stale timestamp: signed and sent 6 minutes before verify_at", sign(secrets(secret), keys(key), id, stale, body), false)
	r.Timestamp, r.VerifyAt = stale.Unix(), ts.Unix()
	vectors = append(vectors, r)

	r = row("future timestamp: signed and sent 6 minutes after verify_at", sign(secrets(secret), keys(key), id, future, body), false)
	r.Timestamp, r.VerifyAt = future.Unix(), ts.Unix()
	vectors = append(vectors, r)
	return vectors
}

func webhookStdBase64(t *testing.T, s string) []byte {
	t.Helper()
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestGoldenWebhooks(t *testing.T) {
	vectors := buildWebhookVectors(t)
	for _, vec := range vectors {
		if got := checkWebhookVector(t, vec); got != vec.Valid {
			t.Errorf("%s: verifier accepted=%v, want %v", vec.Name, got, vec.Valid)
		}
	}
	checkGolden(t, "webhooks.json", marshalGolden(t, vectors))
}

// TestWebhookVectors checks every row of testdata/webhooks.json as another
// implementation would: from the file alone.
func TestWebhookVectors(t *testing.T) {
	var vectors []webhookVector
	readGolden(t, "webhooks.json", &vectors)
	if len(vectors) == 0 {
		t.Fatal("testdata/webhooks.json holds no vectors")
	}
	for _, vec := range vectors {
		t.Run(vec.Name, func(t *testing.T) {
			if got := checkWebhookVector(t, vec); got != vec.Valid {
				t.Errorf("accepted=%v, want %v", got, vec.Valid)
			}
		})
	}
}

// checkWebhookVector reports whether a verifier holding the row's secret and
// public key, with its clock at verify_at or else timestamp, accepts the row.
func checkWebhookVector(t *testing.T, vec webhookVector) bool {
	t.Helper()
	secret, err := protocol.ParseWebhookSecret(vec.Secret)
	if err != nil {
		t.Fatalf("%s: secret: %v", vec.Name, err)
	}
	pub, err := vec.PublicKeyJWK.publicKey()
	if err != nil {
		t.Fatalf("%s: public_key_jwk: %v", vec.Name, err)
	}
	v := protocol.WebhookVerifier{Secrets: []protocol.WebhookSecret{secret}, PublicKeys: []ed25519.PublicKey{pub}}
	now := vec.Timestamp
	if vec.VerifyAt != 0 {
		now = vec.VerifyAt
	}
	err = v.Verify(vec.ID, strconv.FormatInt(vec.Timestamp, 10), vec.SignatureHeader, []byte(vec.Body), time.Unix(now, 0))
	if err != nil {
		t.Logf("%s: %v", vec.Name, err)
	}
	return err == nil
}
