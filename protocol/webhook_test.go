package protocol_test

import (
	"bytes"
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sparr-dev/sparr/protocol"
)

// The delivery Standard Webhooks' own libraries test against.
const (
	webhookRefSecret    = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	webhookRefID        = "msg_p5jXN8AQM9LWM0D4loKWxJek"
	webhookRefTimestamp = 1614265330
	webhookRefBody      = `{"test": 2432232314}`
	webhookRefSignature = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
)

// webhookSecretFor returns a fixed secret: the SHA-256 of label.
func webhookSecretFor(tb testing.TB, label string) protocol.WebhookSecret {
	tb.Helper()
	sum := sha256.Sum256([]byte(label))
	s, err := protocol.ParseWebhookSecret("whsec_" + base64.StdEncoding.EncodeToString(sum[:]))
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

// webhookKeyFor returns a fixed Ed25519 key whose seed is the SHA-256 of label.
func webhookKeyFor(label string) ed25519.PrivateKey {
	seed := sha256.Sum256([]byte(label))
	return ed25519.NewKeyFromSeed(seed[:])
}

// webhookV1 computes a v1 entry directly with crypto/hmac, independently of
// the package's signer.
func webhookV1(tb testing.TB, secret protocol.WebhookSecret, id, timestamp, body string) string {
	tb.Helper()
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret.Encode(), "whsec_"))
	if err != nil {
		tb.Fatal(err)
	}
	m := hmac.New(sha256.New, key)
	m.Write([]byte(id + "." + timestamp + "." + body))
	return "v1," + base64.StdEncoding.EncodeToString(m.Sum(nil))
}

// webhookV1a computes a v1a entry directly with crypto/ed25519.
func webhookV1a(key ed25519.PrivateKey, id, timestamp, body string) string {
	return "v1a," + base64.StdEncoding.EncodeToString(ed25519.Sign(key, []byte(id+"."+timestamp+"."+body)))
}

func TestWebhookReferenceVector(t *testing.T) {
	secret, err := protocol.ParseWebhookSecret(webhookRefSecret)
	if err != nil {
		t.Fatal(err)
	}
	signer := protocol.WebhookSigner{Secrets: []protocol.WebhookSecret{secret}}
	got, err := signer.Sign(webhookRefID, time.Unix(webhookRefTimestamp, 0), []byte(webhookRefBody))
	if err != nil {
		t.Fatal(err)
	}
	if got != webhookRefSignature {
		t.Errorf("Sign: got %q, want %q", got, webhookRefSignature)
	}
	if got := webhookV1(t, secret, webhookRefID, strconv.Itoa(webhookRefTimestamp), webhookRefBody); got != webhookRefSignature {
		t.Errorf("crypto/hmac directly: got %q, want %q", got, webhookRefSignature)
	}
	v := protocol.WebhookVerifier{Secrets: []protocol.WebhookSecret{secret}}
	if err := v.Verify(webhookRefID, strconv.Itoa(webhookRefTimestamp), webhookRefSignature, []byte(webhookRefBody), time.Unix(webhookRefTimestamp, 0)); err != nil {
		t.Errorf("Verify: got %v, want nil", err)
	}
}

func TestWebhookVerify(t *testing.T) {
	current := webhookSecretFor(t, "webhook test: current secret")
	old := webhookSecretFor(t, "webhook test: old secret")
	key := webhookKeyFor("webhook test: current key")
	otherKey := webhookKeyFor("webhook test: other key")
	pub := key.Public().(ed25519.PublicKey)

	const id = "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W"
	const body = `{"type":"signal.created","data":{"signal":"sig_1"}}`
	sent := time.Unix(1767225600, 0)
	ts := strconv.FormatInt(sent.Unix(), 10)

	v1 := webhookV1(t, current, id, ts, body)
	v1Old := webhookV1(t, old, id, ts, body)
	v1a := webhookV1a(key, id, ts, body)
	v1aOther := webhookV1a(otherKey, id, ts, body)

	secretOnly := protocol.WebhookVerifier{Secrets: []protocol.WebhookSecret{current}}
	keyOnly := protocol.WebhookVerifier{PublicKeys: []ed25519.PublicKey{pub}}
	both := protocol.WebhookVerifier{Secrets: []protocol.WebhookSecret{current}, PublicKeys: []ed25519.PublicKey{pub}}
	oldAndNew := protocol.WebhookVerifier{Secrets: []protocol.WebhookSecret{old, current}}
	oldOnly := protocol.WebhookVerifier{Secrets: []protocol.WebhookSecret{old}}
	tight := protocol.WebhookVerifier{Secrets: []protocol.WebhookSecret{current}, Tolerance: 10 * time.Second}

	longID := strings.Repeat("m", 256)
	tooManyEntries := strings.Repeat("v2,x ", 20) + v1

	type delivery struct {
		id, ts, sig, body string
	}
	good := delivery{id, ts, v1, body}
	with := func(f func(*delivery)) delivery {
		d := good
		f(&d)
		return d
	}

	tests := []struct {
		name string
		v    protocol.WebhookVerifier
		d    delivery
		now  time.Time
		want error // nil: accepted
	}{
		{"valid v1", secretOnly, good, sent, nil},
		{"valid v1a", keyOnly, with(func(d *delivery) { d.sig = v1a }), sent, nil},
		{"v1 and v1a, verifier holds both", both, with(func(d *delivery) { d.sig = v1 + " " + v1a }), sent, nil},
		{"v1 and v1a, verifier holds the secret", secretOnly, with(func(d *delivery) { d.sig = v1 + " " + v1a }), sent, nil},
		{"v1 and v1a, verifier holds the public key", keyOnly, with(func(d *delivery) { d.sig = v1 + " " + v1a }), sent, nil},
		{"rotation: second entry matches", secretOnly, with(func(d *delivery) { d.sig = v1Old + " " + v1 }), sent, nil},
		{"rotation: first entry matches", oldOnly, with(func(d *delivery) { d.sig = v1Old + " " + v1 }), sent, nil},
		{"rotation: verifier holds old and new", oldAndNew, good, sent, nil},
		{"rotation: second v1a entry matches", keyOnly, with(func(d *delivery) { d.sig = v1aOther + " " + v1a }), sent, nil},
		{"extra spaces between entries", secretOnly, with(func(d *delivery) { d.sig = "  " + v1Old + "   " + v1 + " " }), sent, nil},
		{"id of 256 bytes", secretOnly, delivery{longID, ts, webhookV1(t, current, longID, ts, body), body}, sent, nil},
		{"empty body", secretOnly, delivery{id, ts, webhookV1(t, current, id, ts, ""), ""}, sent, nil},

		{"wrong secret", oldOnly, good, sent, protocol.ErrWebhookSignature},
		{"wrong public key", keyOnly, with(func(d *delivery) { d.sig = v1aOther }), sent, protocol.ErrWebhookSignature},
		{"v1 only, verifier holds only a public key", keyOnly, good, sent, protocol.ErrWebhookSignature},
		{"tampered body", both, with(func(d *delivery) { d.sig = v1 + " " + v1a; d.body += " " }), sent, protocol.ErrWebhookSignature},
		{"tampered id", both, with(func(d *delivery) { d.sig = v1 + " " + v1a; d.id += "X" }), sent, protocol.ErrWebhookSignature},
		{"tampered timestamp", both, with(func(d *delivery) { d.sig = v1 + " " + v1a; d.ts = strconv.FormatInt(sent.Unix()+1, 10) }), sent, protocol.ErrWebhookSignature},
		{"v1 signature labelled v1a", both, with(func(d *delivery) { d.sig = "v1a," + strings.TrimPrefix(v1, "v1,") }), sent, protocol.ErrWebhookMalformed},
		{"v1a signature of the v1 content under a v1 label", both, with(func(d *delivery) { d.sig = "v1," + strings.TrimPrefix(v1a, "v1a,") }), sent, protocol.ErrWebhookMalformed},

		{"old at exactly the tolerance", secretOnly, good, sent.Add(protocol.DefaultWebhookTolerance), nil},
		{"future at exactly the tolerance", secretOnly, good, sent.Add(-protocol.DefaultWebhookTolerance), nil},
		{"old just past the tolerance", secretOnly, good, sent.Add(protocol.DefaultWebhookTolerance + time.Nanosecond), protocol.ErrWebhookTimestamp},
		{"future just past the tolerance", secretOnly, good, sent.Add(-protocol.DefaultWebhookTolerance - time.Nanosecond), protocol.ErrWebhookTimestamp},
		{"old by a second past the tolerance", secretOnly, good, sent.Add(protocol.DefaultWebhookTolerance + time.Second), protocol.ErrWebhookTimestamp},
		{"custom tolerance, at it", tight, good, sent.Add(10 * time.Second), nil},
		{"custom tolerance, past it", tight, good, sent.Add(11 * time.Second), protocol.ErrWebhookTimestamp},
		{"stale and badly signed: stale reported", oldOnly, good, sent.Add(time.Hour), protocol.ErrWebhookTimestamp},
		{"timestamp 0", secretOnly, with(func(d *delivery) { d.ts = "0"; d.sig = webhookV1(t, current, id, "0", body) }), sent, protocol.ErrWebhookTimestamp},
		{"timestamp in milliseconds", secretOnly, with(func(d *delivery) { d.ts += "000"; d.sig = webhookV1(t, current, id, d.ts, body) }), sent, protocol.ErrWebhookTimestamp},

		{"missing id", secretOnly, with(func(d *delivery) { d.id = "" }), sent, protocol.ErrWebhookMissingHeader},
		{"missing timestamp", secretOnly, with(func(d *delivery) { d.ts = "" }), sent, protocol.ErrWebhookMissingHeader},
		{"missing signature", secretOnly, with(func(d *delivery) { d.sig = "" }), sent, protocol.ErrWebhookMissingHeader},
		{"missing everything", secretOnly, delivery{body: body}, sent, protocol.ErrWebhookMissingHeader},

		{"entry without comma", secretOnly, with(func(d *delivery) { d.sig = "v1 " + v1 }), sent, protocol.ErrWebhookMalformed},
		{"entry without version", secretOnly, with(func(d *delivery) { d.sig = "," + strings.TrimPrefix(v1, "v1,") }), sent, protocol.ErrWebhookMalformed},
		{"only spaces", secretOnly, with(func(d *delivery) { d.sig = "   " }), sent, protocol.ErrWebhookMalformed},
		{"v1 not base64", secretOnly, with(func(d *delivery) { d.sig = "v1,!!!! " + v1 }), sent, protocol.ErrWebhookMalformed},
		{"v1 too short", secretOnly, with(func(d *delivery) { d.sig = "v1,AAAA " + v1 }), sent, protocol.ErrWebhookMalformed},
		{"v1 empty", secretOnly, with(func(d *delivery) { d.sig = "v1, " + v1 }), sent, protocol.ErrWebhookMalformed},
		{"v1 without padding", secretOnly, with(func(d *delivery) { d.sig = strings.TrimRight(v1, "=") }), sent, protocol.ErrWebhookMalformed},
		{"v1 in URL-safe base64", secretOnly, with(func(d *delivery) {
			d.sig = strings.NewReplacer("+", "-", "/", "_").Replace(v1)
			if d.sig == v1 {
				t.Fatal("fixture has no + or /; pick another body")
			}
		}), sent, protocol.ErrWebhookMalformed},
		{"v1a too short", keyOnly, with(func(d *delivery) { d.sig = "v1a,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc= " + v1a }), sent, protocol.ErrWebhookMalformed},
		{"signature header too long", secretOnly, with(func(d *delivery) { d.sig = v1 + " v2," + strings.Repeat("x", 8<<10) }), sent, protocol.ErrWebhookMalformed},
		{"21 entries", secretOnly, with(func(d *delivery) { d.sig = "v2,x " + tooManyEntries }), sent, protocol.ErrWebhookMalformed},
		{"20 entries, the last matching", secretOnly, with(func(d *delivery) { d.sig = strings.Repeat("v2,x ", 19) + v1 }), sent, nil},
		{"timestamp not a number", secretOnly, with(func(d *delivery) { d.ts = "yesterday" }), sent, protocol.ErrWebhookMalformed},
		{"timestamp with a sign", secretOnly, with(func(d *delivery) { d.ts = "+" + ts }), sent, protocol.ErrWebhookMalformed},
		{"timestamp negative", secretOnly, with(func(d *delivery) { d.ts = "-1" }), sent, protocol.ErrWebhookMalformed},
		{"timestamp with leading zero", secretOnly, with(func(d *delivery) { d.ts = "0" + ts; d.sig = webhookV1(t, current, id, d.ts, body) }), sent, protocol.ErrWebhookMalformed},
		{"timestamp with fraction", secretOnly, with(func(d *delivery) { d.ts += ".5" }), sent, protocol.ErrWebhookMalformed},
		{"timestamp with space", secretOnly, with(func(d *delivery) { d.ts = " " + ts }), sent, protocol.ErrWebhookMalformed},
		{"timestamp of 19 digits", secretOnly, with(func(d *delivery) { d.ts = "9223372036854775807" }), sent, protocol.ErrWebhookMalformed},
		{"id with a full stop", secretOnly, with(func(d *delivery) { d.id = "msg.1"; d.sig = webhookV1(t, current, d.id, ts, body) }), sent, protocol.ErrWebhookMalformed},
		{"id with a space", secretOnly, with(func(d *delivery) { d.id = "msg 1"; d.sig = webhookV1(t, current, d.id, ts, body) }), sent, protocol.ErrWebhookMalformed},
		{"id of 257 bytes", secretOnly, with(func(d *delivery) { d.id = longID + "m"; d.sig = webhookV1(t, current, d.id, ts, body) }), sent, protocol.ErrWebhookMalformed},
		{"malformed and stale: malformed reported", secretOnly, with(func(d *delivery) { d.sig = "v1" }), sent.Add(time.Hour), protocol.ErrWebhookMalformed},

		{"unknown version ignored", secretOnly, with(func(d *delivery) { d.sig = "v2,xxx " + v1 }), sent, nil},
		{"unknown version after the match", secretOnly, with(func(d *delivery) { d.sig = v1 + " v2,xxx" }), sent, nil},
		{"unknown version with empty signature ignored", keyOnly, with(func(d *delivery) { d.sig = "v1b, " + v1a }), sent, nil},
		{"version names are case-sensitive", secretOnly, with(func(d *delivery) { d.sig = "V1," + strings.TrimPrefix(v1, "v1,") }), sent, protocol.ErrWebhookSignature},
		{"only unknown versions", secretOnly, with(func(d *delivery) { d.sig = "v2," + strings.TrimPrefix(v1, "v1,") }), sent, protocol.ErrWebhookSignature},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.v.Verify(tt.d.id, tt.d.ts, tt.d.sig, []byte(tt.d.body), tt.now)
			switch {
			case tt.want == nil && err != nil:
				t.Fatalf("Verify: got %v, want nil", err)
			case tt.want != nil && !errors.Is(err, tt.want):
				t.Fatalf("Verify: got %v, want %v", err, tt.want)
			}
		})
	}
}

func TestWebhookTimestampError(t *testing.T) {
	secret := webhookSecretFor(t, "webhook test: current secret")
	signer := protocol.WebhookSigner{Secrets: []protocol.WebhookSecret{secret}}
	v := protocol.WebhookVerifier{Secrets: signer.Secrets}
	sent := time.Unix(1767225600, 0)
	sig, err := signer.Sign("msg_1", sent, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name string
		now  time.Time
		want []string
	}{
		{"stale", sent.Add(6 * time.Minute), []string{"too old", "6m0s before", "1m0s beyond the 5m0s tolerance", "2026-01-01T00:00:00Z"}},
		{"future", sent.Add(-7 * time.Minute), []string{"too far in the future", "7m0s after", "2m0s beyond the 5m0s tolerance"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := v.Verify("msg_1", strconv.FormatInt(sent.Unix(), 10), sig, nil, tt.now)
			if !errors.Is(err, protocol.ErrWebhookTimestamp) {
				t.Fatalf("got %v, want ErrWebhookTimestamp", err)
			}
			var te *protocol.WebhookTimestampError
			if !errors.As(err, &te) {
				t.Fatalf("got %T, want *WebhookTimestampError", err)
			}
			if !te.Timestamp.Equal(sent) || !te.Now.Equal(tt.now) || te.Tolerance != protocol.DefaultWebhookTolerance {
				t.Errorf("got {%v %v %v}, want {%v %v %v}", te.Timestamp, te.Now, te.Tolerance, sent, tt.now, protocol.DefaultWebhookTolerance)
			}
			for _, want := range tt.want {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("got message %q, want it to contain %q", err, want)
				}
			}
		})
	}
}

func TestWebhookSignatureErrorDetail(t *testing.T) {
	current := webhookSecretFor(t, "webhook test: current secret")
	old := webhookSecretFor(t, "webhook test: old secret")
	key := webhookKeyFor("webhook test: current key")
	sent := time.Unix(1767225600, 0)
	signer := protocol.WebhookSigner{Secrets: []protocol.WebhookSecret{old}, Keys: []ed25519.PrivateKey{webhookKeyFor("webhook test: other key")}}
	sig, err := signer.Sign("msg_1", sent, []byte("{}"))
	if err != nil {
		t.Fatal(err)
	}
	v := protocol.WebhookVerifier{
		Secrets:    []protocol.WebhookSecret{current, current},
		PublicKeys: []ed25519.PublicKey{key.Public().(ed25519.PublicKey)},
	}
	err = v.Verify("msg_1", "1767225600", sig+" v2,x", []byte("{}"), sent)
	if !errors.Is(err, protocol.ErrWebhookSignature) {
		t.Fatalf("got %v, want ErrWebhookSignature", err)
	}
	const want = "no valid webhook signature: tried 1 v1 entry against 2 secrets and 1 v1a entry against 1 public key; ignored 1 entry of unknown version"
	if err.Error() != want {
		t.Errorf("got %q, want %q", err, want)
	}
	for _, s := range []protocol.WebhookSecret{current, old} {
		enc := s.Encode()
		if strings.Contains(err.Error(), strings.TrimPrefix(enc, "whsec_")) {
			t.Errorf("got message %q, want it not to contain the secret", err)
		}
	}
}

func TestWebhookVerifierConfig(t *testing.T) {
	secret := webhookSecretFor(t, "webhook test: current secret")
	key := webhookKeyFor("webhook test: current key")
	sent := time.Unix(1767225600, 0)
	signer := protocol.WebhookSigner{Secrets: []protocol.WebhookSecret{secret}, Keys: []ed25519.PrivateKey{key}}
	sig, err := signer.Sign("msg_1", sent, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name string
		v    protocol.WebhookVerifier
		want error
	}{
		{"nothing", protocol.WebhookVerifier{}, protocol.ErrWebhookNoKeys},
		{"empty slices", protocol.WebhookVerifier{Secrets: []protocol.WebhookSecret{}, PublicKeys: []ed25519.PublicKey{}}, protocol.ErrWebhookNoKeys},
		{"zero secret", protocol.WebhookVerifier{Secrets: []protocol.WebhookSecret{{}}}, protocol.ErrWebhookKey},
		{"zero secret beside a good one", protocol.WebhookVerifier{Secrets: []protocol.WebhookSecret{secret, {}}}, protocol.ErrWebhookKey},
		{"short public key", protocol.WebhookVerifier{PublicKeys: []ed25519.PublicKey{make([]byte, 31)}}, protocol.ErrWebhookKey},
		{"private key given as public key", protocol.WebhookVerifier{PublicKeys: []ed25519.PublicKey{ed25519.PublicKey(key)}}, protocol.ErrWebhookKey},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.v.Verify("msg_1", "1767225600", sig, nil, sent)
			if !errors.Is(err, tt.want) {
				t.Errorf("Verify: got %v, want %v", err, tt.want)
			}
			h := http.Header{}
			h.Add(protocol.HeaderWebhookID, "a")
			h.Add(protocol.HeaderWebhookID, "b")
			if err := tt.v.VerifyHeaders(h, nil, sent); !errors.Is(err, tt.want) {
				t.Errorf("VerifyHeaders: got %v, want %v", err, tt.want)
			}
		})
	}
}

func TestWebhookSign(t *testing.T) {
	current := webhookSecretFor(t, "webhook test: current secret")
	old := webhookSecretFor(t, "webhook test: old secret")
	key := webhookKeyFor("webhook test: current key")
	otherKey := webhookKeyFor("webhook test: other key")
	const id, body = "msg_1", `{"a":1}`
	sent := time.Unix(1767225600, 999_999_999) // sent in whole seconds

	signer := protocol.WebhookSigner{Secrets: []protocol.WebhookSecret{old, current}, Keys: []ed25519.PrivateKey{otherKey, key}}
	got, err := signer.Sign(id, sent, []byte(body))
	if err != nil {
		t.Fatal(err)
	}
	want := strings.Join([]string{
		webhookV1(t, old, id, "1767225600", body),
		webhookV1(t, current, id, "1767225600", body),
		webhookV1a(otherKey, id, "1767225600", body),
		webhookV1a(key, id, "1767225600", body),
	}, " ")
	if got != want {
		t.Errorf("Sign: got %q, want %q", got, want)
	}

	key31 := ed25519.PrivateKey(key[:31])
	for _, tt := range []struct {
		name   string
		signer protocol.WebhookSigner
		id     string
		when   time.Time
		want   error
	}{
		{"no secrets or keys", protocol.WebhookSigner{}, id, sent, protocol.ErrWebhookNoKeys},
		{"zero secret", protocol.WebhookSigner{Secrets: []protocol.WebhookSecret{{}}}, id, sent, protocol.ErrWebhookKey},
		{"short key", protocol.WebhookSigner{Keys: []ed25519.PrivateKey{key31}}, id, sent, protocol.ErrWebhookKey},
		{"empty id", signer, "", sent, protocol.ErrWebhookMalformed},
		{"id with a full stop", signer, "msg.1", sent, protocol.ErrWebhookMalformed},
		{"id with a space", signer, "msg 1", sent, protocol.ErrWebhookMalformed},
		{"id with non-ASCII", signer, "msg_ä", sent, protocol.ErrWebhookMalformed},
		{"id of 257 bytes", signer, strings.Repeat("m", 257), sent, protocol.ErrWebhookMalformed},
		{"before 1970", signer, id, time.Unix(-1, 0), protocol.ErrWebhookMalformed},
		{"21 entries", protocol.WebhookSigner{Secrets: make([]protocol.WebhookSecret, 21)}, id, sent, protocol.ErrWebhookMalformed},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := tt.signer.Sign(tt.id, tt.when, nil); !errors.Is(err, tt.want) {
				t.Errorf("Sign: got %v, want %v", err, tt.want)
			}
			r := httptest.NewRequest(http.MethodPost, "/", nil)
			if err := tt.signer.SignRequest(r, tt.id, tt.when, nil); !errors.Is(err, tt.want) {
				t.Errorf("SignRequest: got %v, want %v", err, tt.want)
			}
			if len(r.Header) != 0 {
				t.Errorf("SignRequest: got headers %v after an error, want none", r.Header)
			}
		})
	}
}

func TestWebhookVerifyHeaders(t *testing.T) {
	secret := webhookSecretFor(t, "webhook test: current secret")
	key := webhookKeyFor("webhook test: current key")
	signer := protocol.WebhookSigner{Secrets: []protocol.WebhookSecret{secret}, Keys: []ed25519.PrivateKey{key}}
	v := protocol.WebhookVerifier{Secrets: []protocol.WebhookSecret{secret}}
	sent := time.Unix(1767225600, 0)
	body := []byte(`{"type":"signal.created"}`)

	signed := func(t *testing.T) http.Header {
		r, err := http.NewRequest(http.MethodPost, "http://member.invalid/webhook", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		if err := signer.SignRequest(r, "msg_1", sent, body); err != nil {
			t.Fatal(err)
		}
		return r.Header
	}
	h := signed(t)
	if got, want := h.Get(protocol.HeaderWebhookTimestamp), "1767225600"; got != want {
		t.Errorf("webhook-timestamp: got %q, want %q", got, want)
	}
	if got := strings.Count(h.Get(protocol.HeaderWebhookSignature), " "); got != 1 {
		t.Errorf("webhook-signature: got %d spaces in %q, want 1", got, h.Get(protocol.HeaderWebhookSignature))
	}

	for _, tt := range []struct {
		name   string
		modify func(http.Header)
		want   error
	}{
		{"as signed", func(http.Header) {}, nil},
		{"missing webhook-id", func(h http.Header) { h.Del(protocol.HeaderWebhookID) }, protocol.ErrWebhookMissingHeader},
		{"missing webhook-timestamp", func(h http.Header) { h.Del(protocol.HeaderWebhookTimestamp) }, protocol.ErrWebhookMissingHeader},
		{"missing webhook-signature", func(h http.Header) { h.Del(protocol.HeaderWebhookSignature) }, protocol.ErrWebhookMissingHeader},
		{"empty webhook-signature", func(h http.Header) { h.Set(protocol.HeaderWebhookSignature, "") }, protocol.ErrWebhookMissingHeader},
		{"repeated webhook-signature", func(h http.Header) { h.Add(protocol.HeaderWebhookSignature, "v2,x") }, protocol.ErrWebhookMalformed},
		{"repeated webhook-id", func(h http.Header) { h.Add(protocol.HeaderWebhookID, "msg_1") }, protocol.ErrWebhookMalformed},
	} {
		t.Run(tt.name, func(t *testing.T) {
			h := signed(t)
			tt.modify(h)
			err := v.VerifyHeaders(h, body, sent)
			switch {
			case tt.want == nil && err != nil:
				t.Fatalf("got %v, want nil", err)
			case tt.want != nil && !errors.Is(err, tt.want):
				t.Fatalf("got %v, want %v", err, tt.want)
			}
			if tt.want == protocol.ErrWebhookMissingHeader {
				name := strings.TrimPrefix(tt.name, "missing ")
				name = strings.TrimPrefix(name, "empty ")
				if !strings.Contains(err.Error(), name) {
					t.Errorf("got %q, want it to name %s", err, name)
				}
			}
		})
	}
}

// TestWebhookOverHTTP sends a signed delivery to a real server on loopback,
// which verifies the headers and the raw body it received.
func TestWebhookOverHTTP(t *testing.T) {
	secret, err := protocol.GenerateWebhookSecret(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	pub, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	signer := protocol.WebhookSigner{Secrets: []protocol.WebhookSecret{secret}, Keys: []ed25519.PrivateKey{key}}
	verifiers := map[string]protocol.WebhookVerifier{
		"/secret": {Secrets: []protocol.WebhookSecret{secret}},
		"/key":    {PublicKeys: []ed25519.PublicKey{pub}},
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 1<<20))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		if err := verifiers[r.URL.Path].VerifyHeaders(r.Header, body, time.Now()); err != nil {
			http.Error(w, err.Error(), http.StatusUnauthorized)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	defer srv.Close()

	body := []byte(`{"type":"signal.created","data":{"signal":"sig_1"}}`)
	for path := range verifiers {
		for _, tamper := range []bool{false, true} {
			sent := body
			if tamper {
				sent = bytes.Replace(body, []byte("sig_1"), []byte("sig_2"), 1)
			}
			r, err := http.NewRequest(http.MethodPost, srv.URL+path, bytes.NewReader(sent))
			if err != nil {
				t.Fatal(err)
			}
			if err := signer.SignRequest(r, "msg_"+path[1:], time.Now(), body); err != nil {
				t.Fatal(err)
			}
			resp, err := srv.Client().Do(r)
			if err != nil {
				t.Fatal(err)
			}
			msg, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			want := http.StatusNoContent
			if tamper {
				want = http.StatusUnauthorized
			}
			if resp.StatusCode != want {
				t.Errorf("%s tampered=%v: got %d %s, want %d", path, tamper, resp.StatusCode, msg, want)
			}
		}
	}
}

func TestParseWebhookSecret(t *testing.T) {
	secret, err := protocol.ParseWebhookSecret(webhookRefSecret)
	if err != nil {
		t.Fatal(err)
	}
	if got := secret.Encode(); got != webhookRefSecret {
		t.Errorf("Encode: got %q, want %q", got, webhookRefSecret)
	}

	enc := func(n int) string { return "whsec_" + base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{0xfb}, n)) }
	for _, s := range []string{enc(24), enc(32), enc(64)} {
		got, err := protocol.ParseWebhookSecret(s)
		if err != nil {
			t.Errorf("ParseWebhookSecret(%q): got %v, want nil", s, err)
			continue
		}
		if got.Encode() != s {
			t.Errorf("round trip: got %q, want %q", got.Encode(), s)
		}
	}

	const body = "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	for _, bad := range []string{
		"",
		"whsec_",
		body,                   // no prefix
		"WHSEC_" + body,        // prefix in the wrong case
		"whsk_" + body,         // a signing key's prefix
		"whpk_" + body,         // a public key's prefix
		" whsec_" + body,       // leading space
		"whsec_" + body + " ",  // trailing space
		"whsec_" + body + "!",  // not base64
		"whsec_" + body[:31],   // truncated
		"whsec_" + enc(23)[6:], // 23 bytes
		"whsec_" + enc(65)[6:], // 65 bytes
		strings.NewReplacer("+", "-", "/", "_").Replace(enc(32)),                     // URL-safe alphabet
		"whsec_" + base64.RawStdEncoding.EncodeToString(bytes.Repeat([]byte{1}, 32)), // no padding
	} {
		_, err := protocol.ParseWebhookSecret(bad)
		if !errors.Is(err, protocol.ErrWebhookKey) {
			t.Errorf("ParseWebhookSecret(%q): got %v, want ErrWebhookKey", bad, err)
			continue
		}
		if rest := strings.TrimPrefix(bad, "whsec_"); len(rest) > 4 && strings.Contains(err.Error(), rest) {
			t.Errorf("ParseWebhookSecret(%q): got %q, want the error not to repeat the text", bad, err)
		}
	}
}

func TestGenerateWebhookSecret(t *testing.T) {
	fixed, err := protocol.GenerateWebhookSecret(bytes.NewReader(bytes.Repeat([]byte{0xff}, 40)))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := fixed.Encode(), "whsec_"+base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{0xff}, 32)); got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	a, err := protocol.GenerateWebhookSecret(nil)
	if err != nil {
		t.Fatal(err)
	}
	b, err := protocol.GenerateWebhookSecret(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if a.Encode() == b.Encode() {
		t.Errorf("got the same secret twice: %s", a.Encode())
	}
	if _, err := protocol.ParseWebhookSecret(a.Encode()); err != nil {
		t.Errorf("parse generated secret: got %v, want nil", err)
	}
	if _, err := protocol.GenerateWebhookSecret(bytes.NewReader(make([]byte, 31))); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("short reader: got %v, want io.ErrUnexpectedEOF", err)
	}
}

func TestWebhookKeys(t *testing.T) {
	key := webhookKeyFor("webhook test: current key")
	pub := key.Public().(ed25519.PublicKey)

	encPub := protocol.EncodeWebhookPublicKey(pub)
	if want := "whpk_" + base64.StdEncoding.EncodeToString(pub); encPub != want {
		t.Errorf("EncodeWebhookPublicKey: got %q, want %q", encPub, want)
	}
	gotPub, err := protocol.ParseWebhookPublicKey(encPub)
	if err != nil || !gotPub.Equal(pub) {
		t.Errorf("ParseWebhookPublicKey: got %x, %v, want %x, nil", gotPub, err, pub)
	}

	encKey := protocol.EncodeWebhookSigningKey(key)
	if want := "whsk_" + base64.StdEncoding.EncodeToString(key.Seed()); encKey != want {
		t.Errorf("EncodeWebhookSigningKey: got %q, want %q", encKey, want)
	}
	for _, s := range []string{encKey, "whsk_" + base64.StdEncoding.EncodeToString(key)} {
		got, err := protocol.ParseWebhookSigningKey(s)
		if err != nil || !got.Equal(key) {
			t.Errorf("ParseWebhookSigningKey(%q): got %v, want the key", s, err)
		}
	}

	// The seed Standard Webhooks' Go library signs its asymmetric test
	// vector with, and the signature it expects.
	ref, err := protocol.ParseWebhookSigningKey("whsk_VEVTVFNJR05JTkdLRVlET05PVFVTRVRISVNGT1JBTlk=")
	if err != nil {
		t.Fatal(err)
	}
	sig, err := protocol.WebhookSigner{Keys: []ed25519.PrivateKey{ref}}.Sign(webhookRefID, time.Unix(webhookRefTimestamp, 0), []byte(webhookRefBody))
	if err != nil {
		t.Fatal(err)
	}
	if want := "v1a,tQ9V2XOqn7jL/DQenEFpqIugdBVtiMmER5mhSkXBNwM0mkATuDe6KYYUuxqtaiHeYGb7KaaBRdM5WqyeFiL8Ag=="; sig != want {
		t.Errorf("reference v1a: got %q, want %q", sig, want)
	}

	mismatched := append(append([]byte{}, key.Seed()...), webhookKeyFor("another").Public().(ed25519.PublicKey)...)
	b64 := base64.StdEncoding.EncodeToString
	for _, tt := range []struct {
		name  string
		parse func(string) error
		text  string
	}{
		{"public key with signing key prefix", parseWebhookPub, "whsk_" + b64(pub)},
		{"public key without prefix", parseWebhookPub, b64(pub)},
		{"public key of 31 bytes", parseWebhookPub, "whpk_" + b64(pub[:31])},
		{"public key of 64 bytes", parseWebhookPub, "whpk_" + b64(key)},
		{"public key not base64", parseWebhookPub, "whpk_" + b64(pub)[1:]},
		{"signing key with public key prefix", parseWebhookKey, "whpk_" + b64(key)},
		{"signing key with secret prefix", parseWebhookKey, "whsec_" + b64(key)},
		{"signing key of 48 bytes", parseWebhookKey, "whsk_" + b64(key[:48])},
		{"signing key with mismatched public half", parseWebhookKey, "whsk_" + b64(mismatched)},
		{"signing key not base64", parseWebhookKey, "whsk_" + b64(key) + "="},
	} {
		if err := tt.parse(tt.text); !errors.Is(err, protocol.ErrWebhookKey) {
			t.Errorf("%s: got %v, want ErrWebhookKey", tt.name, err)
		}
	}
}

func parseWebhookPub(s string) error { _, err := protocol.ParseWebhookPublicKey(s); return err }
func parseWebhookKey(s string) error { _, err := protocol.ParseWebhookSigningKey(s); return err }

// TestWebhookSecretRedacted checks that a secret printed or logged by
// mistake shows nothing of its key, however it is printed.
func TestWebhookSecretRedacted(t *testing.T) {
	secret := webhookSecretFor(t, "webhook test: current secret")
	key := webhookKeyFor("webhook test: current key")
	signer := protocol.WebhookSigner{Secrets: []protocol.WebhookSecret{secret}, Keys: []ed25519.PrivateKey{key}}
	verifier := protocol.WebhookVerifier{Secrets: []protocol.WebhookSecret{secret}}
	raw, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret.Encode(), "whsec_"))
	if err != nil {
		t.Fatal(err)
	}
	// Any of these in the output would be a leak.
	leaks := []string{
		strings.TrimPrefix(secret.Encode(), "whsec_"),
		fmt.Sprintf("%x", raw),
		fmt.Sprintf("%X", raw),
		fmt.Sprint(raw),
		fmt.Sprintf("%#v", raw),
		string(raw),
		fmt.Sprintf("%x", key.Seed()),
		fmt.Sprint(key.Seed()[:8]),
	}

	var outputs []string
	for _, format := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x"} {
		outputs = append(outputs,
			fmt.Sprintf(format, secret), fmt.Sprintf(format, &secret),
			fmt.Sprintf(format, signer), fmt.Sprintf(format, verifier))
	}
	outputs = append(outputs, fmt.Sprint(secret), fmt.Sprintln(secret, signer), secret.String())
	for _, h := range []func(io.Writer) slog.Handler{
		func(w io.Writer) slog.Handler { return slog.NewTextHandler(w, nil) },
		func(w io.Writer) slog.Handler { return slog.NewJSONHandler(w, nil) },
	} {
		var buf bytes.Buffer
		slog.New(h(&buf)).Info("configured", "secret", secret, "signer", signer, slog.Any("verifier", verifier), "secrets", []protocol.WebhookSecret{secret})
		outputs = append(outputs, buf.String())
	}

	for _, out := range outputs {
		for _, leak := range leaks {
			if strings.Contains(out, leak) {
				t.Errorf("got %q, want no trace of the key (found %q)", out, leak)
			}
		}
	}
	if got, want := fmt.Sprintf("%v|%#v|%s", secret, secret, secret), "whsec_[redacted]|whsec_[redacted]|whsec_[redacted]"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	var buf bytes.Buffer
	slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{ReplaceAttr: webhookDropTime})).Info("x", "secret", secret)
	if got, want := buf.String(), "level=INFO msg=x secret=whsec_[redacted]\n"; got != want {
		t.Errorf("slog: got %q, want %q", got, want)
	}
}

func webhookDropTime(groups []string, a slog.Attr) slog.Attr {
	if a.Key == slog.TimeKey && len(groups) == 0 {
		return slog.Attr{}
	}
	return a
}

// FuzzVerifyWebhook checks that Verify never panics and never accepts a
// delivery unless one of its signature entries is genuinely valid for the
// fuzzed id, timestamp and body, computed here directly with crypto/hmac and
// crypto/ed25519.
//
// In the fuzzed header, "@v1" and "@v1a" stand for genuine signatures of the
// reference delivery (so that a mutated id, timestamp or body paired with a
// real signature of something else must be refused) and "@s1" and "@s1a" for
// genuine signatures of the fuzzed delivery itself.
func FuzzVerifyWebhook(f *testing.F) {
	secret, err := protocol.ParseWebhookSecret(webhookRefSecret)
	if err != nil {
		f.Fatal(err)
	}
	key := webhookKeyFor("webhook fuzz key")
	pub := key.Public().(ed25519.PublicKey)
	v := protocol.WebhookVerifier{Secrets: []protocol.WebhookSecret{secret}, PublicKeys: []ed25519.PublicKey{pub}}
	now := time.Unix(webhookRefTimestamp+60, 0)
	refTS := strconv.Itoa(webhookRefTimestamp)
	refV1 := webhookV1(f, secret, webhookRefID, refTS, webhookRefBody)
	refV1a := webhookV1a(key, webhookRefID, refTS, webhookRefBody)
	macKey, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(webhookRefSecret, "whsec_"))
	if err != nil {
		f.Fatal(err)
	}

	for _, seed := range []struct{ id, ts, sig, body string }{
		{webhookRefID, refTS, "@v1", webhookRefBody},
		{webhookRefID, refTS, "@v1a", webhookRefBody},
		{webhookRefID, refTS, "@v1 @v1a", webhookRefBody},
		{webhookRefID, refTS, "v2,xxx @v1", webhookRefBody},
		{webhookRefID, refTS, webhookRefSignature, webhookRefBody},
		{webhookRefID, refTS, "v1,AAAA v1a,", webhookRefBody},
		{webhookRefID + ".1614265330", "2432232314", "@v1", `{"test": 2432232314}`},
		{webhookRefID, "161426533", "@v1", `0.{"test": 2432232314}`},
		{webhookRefID, "01614265330", "@v1", webhookRefBody},
		{"msg_1", "1614265300", "@s1 @s1a", "{}"},
		{"msg_1", "1614265390", "v2,x @s1a", ""},
		{"m", "1614265330", "  @s1  ", "\x00\xff"},
	} {
		f.Add(seed.id, seed.ts, seed.sig, []byte(seed.body))
	}

	f.Fuzz(func(t *testing.T, id, timestamp, header string, body []byte) {
		content := []byte(id + "." + timestamp + "." + string(body))
		m := hmac.New(sha256.New, macKey)
		m.Write(content)
		ownV1 := "v1," + base64.StdEncoding.EncodeToString(m.Sum(nil))
		ownV1a := "v1a," + base64.StdEncoding.EncodeToString(ed25519.Sign(key, content))
		header = strings.NewReplacer("@v1a", refV1a, "@v1", refV1, "@s1a", ownV1a, "@s1", ownV1).Replace(header)

		err := v.Verify(id, timestamp, header, body, now)

		genuine := false
		for _, entry := range strings.Split(header, " ") {
			if entry == ownV1 {
				genuine = true
			}
			if enc, ok := strings.CutPrefix(entry, "v1a,"); ok {
				if sig, err := base64.StdEncoding.DecodeString(enc); err == nil && ed25519.Verify(pub, content, sig) {
					genuine = true
				}
			}
		}
		if err == nil {
			if !genuine {
				t.Fatalf("Verify(%q, %q, %q, %q) accepted a delivery with no genuine signature", id, timestamp, header, body)
			}
			// A genuine signature only authenticates (id, timestamp, body)
			// if the content splits back into them one way only.
			if strings.Contains(id, ".") || len(id) > 256 {
				t.Fatalf("Verify accepted id %q", id)
			}
			sec, perr := strconv.ParseInt(timestamp, 10, 64)
			if perr != nil || strconv.FormatInt(sec, 10) != timestamp {
				t.Fatalf("Verify accepted timestamp %q, not in canonical form", timestamp)
			}
			if d := now.Sub(time.Unix(sec, 0)); d > protocol.DefaultWebhookTolerance || d < -protocol.DefaultWebhookTolerance {
				t.Fatalf("Verify accepted timestamp %q, %v from now", timestamp, d)
			}
			return
		}
		if genuine && errors.Is(err, protocol.ErrWebhookSignature) {
			t.Fatalf("Verify(%q, %q, %q, %q) = %v, but an entry is genuine", id, timestamp, header, body, err)
		}
		known := false
		for _, sentinel := range []error{protocol.ErrWebhookMissingHeader, protocol.ErrWebhookMalformed, protocol.ErrWebhookTimestamp, protocol.ErrWebhookSignature} {
			known = known || errors.Is(err, sentinel)
		}
		if !known {
			t.Fatalf("Verify: got %v, want one of the webhook sentinel errors", err)
		}
	})
}

func ExampleWebhookSigner() {
	secret, err := protocol.ParseWebhookSecret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
	if err != nil {
		log.Fatal(err)
	}
	signer := protocol.WebhookSigner{Secrets: []protocol.WebhookSecret{secret}}

	body := []byte(`{"test": 2432232314}`)
	req, err := http.NewRequest(http.MethodPost, "https://member.example/sparr/webhook", bytes.NewReader(body))
	if err != nil {
		log.Fatal(err)
	}
	if err := signer.SignRequest(req, "msg_p5jXN8AQM9LWM0D4loKWxJek", time.Unix(1614265330, 0), body); err != nil {
		log.Fatal(err)
	}
	for _, name := range []string{protocol.HeaderWebhookID, protocol.HeaderWebhookTimestamp, protocol.HeaderWebhookSignature} {
		fmt.Printf("%s: %s\n", name, req.Header.Get(name))
	}
	fmt.Println(secret) // printing a secret by mistake shows nothing of it
	// Output:
	// webhook-id: msg_p5jXN8AQM9LWM0D4loKWxJek
	// webhook-timestamp: 1614265330
	// webhook-signature: v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=
	// whsec_[redacted]
}

func ExampleWebhookVerifier() {
	secret, err := protocol.ParseWebhookSecret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
	if err != nil {
		log.Fatal(err)
	}
	verifier := protocol.WebhookVerifier{Secrets: []protocol.WebhookSecret{secret}}

	// The headers and raw body of a delivery, as a receiver's handler sees
	// them; in a handler, pass r.Header and time.Now().
	h := http.Header{}
	h.Set("Webhook-Id", "msg_p5jXN8AQM9LWM0D4loKWxJek")
	h.Set("Webhook-Timestamp", "1614265330")
	h.Set("Webhook-Signature", "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=")
	body := []byte(`{"test": 2432232314}`)
	sent := time.Unix(1614265330, 0)

	fmt.Println("on time:", verifier.VerifyHeaders(h, body, sent.Add(2*time.Second)))
	fmt.Println("tampered:", verifier.VerifyHeaders(h, []byte(`{"test": 1}`), sent))

	err = verifier.VerifyHeaders(h, body, sent.Add(time.Hour))
	var stale *protocol.WebhookTimestampError
	if errors.As(err, &stale) {
		fmt.Println("replayed an hour later:", stale.Now.Sub(stale.Timestamp), "old")
	}
	// Output:
	// on time: <nil>
	// tampered: no valid webhook signature: tried 1 v1 entry against 1 secret and 0 v1a entries against 0 public keys
	// replayed an hour later: 1h0m0s old
}

// webhookBench is one 1 KiB delivery signed with one secret and one key.
type webhookBench struct {
	signer   protocol.WebhookSigner
	macKey   []byte
	key      ed25519.PrivateKey
	pub      ed25519.PublicKey
	id, ts   string
	when     time.Time
	body     []byte
	content  []byte
	header   string
	ed25519S []byte
}

func newWebhookBench(b *testing.B) *webhookBench {
	b.Helper()
	w := &webhookBench{
		id:   "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W",
		when: time.Unix(1767225600, 0),
		key:  webhookKeyFor("webhook bench key"),
		body: bytes.Repeat([]byte(`{"signal":"x"}`), 1024/14+1)[:1024],
	}
	w.ts = strconv.FormatInt(w.when.Unix(), 10)
	w.pub = w.key.Public().(ed25519.PublicKey)
	secret := webhookSecretFor(b, "webhook bench secret")
	w.macKey, _ = base64.StdEncoding.DecodeString(strings.TrimPrefix(secret.Encode(), "whsec_"))
	w.signer = protocol.WebhookSigner{Secrets: []protocol.WebhookSecret{secret}, Keys: []ed25519.PrivateKey{w.key}}
	w.content = []byte(w.id + "." + w.ts + "." + string(w.body))
	w.ed25519S = ed25519.Sign(w.key, w.content)
	var err error
	if w.header, err = w.signer.Sign(w.id, w.when, w.body); err != nil {
		b.Fatal(err)
	}
	return w
}

func BenchmarkWebhookSign(b *testing.B) {
	w := newWebhookBench(b)
	b.SetBytes(int64(len(w.body)))
	for b.Loop() {
		if _, err := w.signer.Sign(w.id, w.when, w.body); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkWebhookVerify verifies a header holding one v1 and one v1a entry,
// once with a verifier holding the secret (the v1 entry matches) and once
// with one holding only the public key (the v1a entry is checked).
func BenchmarkWebhookVerify(b *testing.B) {
	w := newWebhookBench(b)
	for _, bb := range []struct {
		name string
		v    protocol.WebhookVerifier
	}{
		{"v1", protocol.WebhookVerifier{Secrets: w.signer.Secrets}},
		{"v1a", protocol.WebhookVerifier{PublicKeys: []ed25519.PublicKey{w.pub}}},
	} {
		b.Run(bb.name, func(b *testing.B) {
			b.SetBytes(int64(len(w.body)))
			for b.Loop() {
				if err := bb.v.Verify(w.id, w.ts, w.header, w.body, w.when); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkWebhookBaselineHMAC is HMAC-SHA256 over the same content with
// crypto/hmac alone: the floor for signing or checking one v1 entry.
func BenchmarkWebhookBaselineHMAC(b *testing.B) {
	w := newWebhookBench(b)
	b.SetBytes(int64(len(w.body)))
	for b.Loop() {
		m := hmac.New(sha256.New, w.macKey)
		m.Write(w.content)
		m.Sum(nil)
	}
}

// BenchmarkWebhookBaselineEd25519 is Ed25519 over the same content with
// crypto/ed25519 alone: the floor for one v1a entry.
func BenchmarkWebhookBaselineEd25519(b *testing.B) {
	w := newWebhookBench(b)
	b.Run("sign", func(b *testing.B) {
		b.SetBytes(int64(len(w.body)))
		for b.Loop() {
			ed25519.Sign(w.key, w.content)
		}
	})
	b.Run("verify", func(b *testing.B) {
		b.SetBytes(int64(len(w.body)))
		for b.Loop() {
			if !ed25519.Verify(w.pub, w.content, w.ed25519S) {
				b.Fatal("signature did not verify")
			}
		}
	})
}
