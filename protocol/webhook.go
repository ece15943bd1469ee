package protocol

// Webhook signatures follow Standard Webhooks
// (https://www.standardwebhooks.com). Every delivery carries three headers:
//
//	webhook-id: msg_p5jXN8AQM9LWM0D4loKWxJek
//	webhook-timestamp: 1614265330
//	webhook-signature: v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE= v1a,<88 base64 characters>
//
// The signed content is the id, the timestamp exactly as sent and the raw
// body, joined by full stops:
//
//	msg_p5jXN8AQM9LWM0D4loKWxJek.1614265330.{"test": 2432232314}
//
// webhook-signature is a space-separated list of "version,signature"
// entries, signatures in standard base64 with padding. A v1 entry is
// HMAC-SHA256 of the content keyed with a member's secret (text form
// "whsec_" + base64 of the key bytes); a v1a entry is an Ed25519 signature
// of the content (public keys "whpk_" + base64, signing keys "whsk_" +
// base64). During key rotation the hub signs with the old and the new key,
// and a receiver accepts the delivery if any entry verifies under any key it
// trusts. Entries with other versions are ignored.

import (
	"crypto/ed25519"
	"crypto/hmac"
	cryptorand "crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// The webhook header names and the default timestamp tolerance.
const (
	// HeaderWebhookID is the header carrying a delivery's unique id, which
	// stays the same across retries.
	HeaderWebhookID = "webhook-id"
	// HeaderWebhookTimestamp is the header carrying the time of a delivery
	// attempt, in integer Unix seconds.
	HeaderWebhookTimestamp = "webhook-timestamp"
	// HeaderWebhookSignature is the header carrying the space-separated list
	// of signatures over a delivery.
	HeaderWebhookSignature = "webhook-signature"
	// DefaultWebhookTolerance is how far a webhook-timestamp may be from the receiver's clock.
	DefaultWebhookTolerance = 5 * time.Minute
)

// Limits on what a delivery may make a verifier do.
const (
	// maxWebhookIDLen is the longest webhook-id accepted, in bytes.
	maxWebhookIDLen = 256
	// maxWebhookSignatureLen is the longest webhook-signature accepted, in bytes.
	maxWebhookSignatureLen = 8 << 10
	// maxWebhookSignatures is the most entries a webhook-signature may list,
	// counting entries with unknown versions.
	maxWebhookSignatures = 20
	// maxWebhookTimestampDigits keeps every accepted timestamp well inside
	// the range of time.Time arithmetic.
	maxWebhookTimestampDigits = 18
)

const (
	webhookSecretPrefix     = "whsec_"
	webhookPublicKeyPrefix  = "whpk_"
	webhookSigningKeyPrefix = "whsk_"
	webhookSecretRedacted   = webhookSecretPrefix + "[redacted]"

	webhookSecretLen  = 32 // bytes made by GenerateWebhookSecret
	webhookSecretMin  = 24 // 192 bits, the least Standard Webhooks allows
	webhookSecretMax  = 64 // 512 bits, the most Standard Webhooks allows
	webhookVersionMAC = "v1"
	webhookVersionSig = "v1a"
)

var webhookBase64 = base64.StdEncoding.Strict()

var (
	// ErrWebhookMissingHeader is returned by [WebhookVerifier.Verify] and
	// [WebhookVerifier.VerifyHeaders] when a webhook header is absent or
	// empty; the error names the headers missing.
	ErrWebhookMissingHeader = errors.New("webhook header missing")
	// ErrWebhookMalformed is returned by [WebhookVerifier.Verify] and
	// [WebhookVerifier.VerifyHeaders] when a header is present but not well
	// formed: an id that is too long or contains a full stop, a timestamp that
	// is not a plain decimal integer, a signature header that is too long or
	// lists too many entries, an entry without a comma, or a v1 or v1a
	// signature that is not canonical base64 of the right length. It is also
	// returned by [WebhookSigner.Sign] for an id or timestamp it cannot send.
	ErrWebhookMalformed = errors.New("malformed webhook header")
	// ErrWebhookTimestamp is returned, wrapped in a [*WebhookTimestampError],
	// by [WebhookVerifier.Verify] and [WebhookVerifier.VerifyHeaders] when a
	// delivery's timestamp is further from the receiver's clock than the
	// tolerance.
	ErrWebhookTimestamp = errors.New("webhook timestamp outside tolerance")
	// ErrWebhookSignature is returned by [WebhookVerifier.Verify] and
	// [WebhookVerifier.VerifyHeaders] when no signature entry verifies under
	// any of the verifier's secrets and public keys.
	ErrWebhookSignature = errors.New("no valid webhook signature")
	// ErrWebhookNoKeys is returned by [WebhookVerifier.Verify] when the
	// verifier holds no secret and no public key, and by [WebhookSigner.Sign]
	// when the signer holds no secret and no signing key.
	ErrWebhookNoKeys = errors.New("no webhook secrets or keys configured")
	// ErrWebhookKey is returned by [ParseWebhookSecret],
	// [ParseWebhookPublicKey] and [ParseWebhookSigningKey] when the text is not
	// a valid secret or key, and by [WebhookSigner.Sign] and
	// [WebhookVerifier.Verify] when they hold a zero [WebhookSecret] or a key of
	// the wrong length. Its messages never include secret material.
	ErrWebhookKey = errors.New("invalid webhook secret or key")
)

// A WebhookTimestampError is the error returned when a delivery's
// webhook-timestamp is further than the tolerance from the receiver's clock.
// It carries the evidence, and [errors.Is] reports it as
// [ErrWebhookTimestamp].
type WebhookTimestampError struct {
	Timestamp time.Time     // the delivery's webhook-timestamp
	Now       time.Time     // the receiver's clock when it checked
	Tolerance time.Duration // the largest difference the receiver accepts
}

// Error says whether the timestamp is too old or too far in the future, by
// how much, and against which clock and tolerance.
func (e *WebhookTimestampError) Error() string {
	const layout = time.RFC3339Nano
	ts, now := e.Timestamp.UTC().Format(layout), e.Now.UTC().Format(layout)
	if d := e.Now.Sub(e.Timestamp); d >= 0 {
		return fmt.Sprintf("webhook timestamp %s is too old: %v before the receiver's clock %s, %v beyond the %v tolerance",
			ts, d, now, d-e.Tolerance, e.Tolerance)
	}
	d := e.Timestamp.Sub(e.Now)
	return fmt.Sprintf("webhook timestamp %s is too far in the future: %v after the receiver's clock %s, %v beyond the %v tolerance",
		ts, d, now, d-e.Tolerance, e.Tolerance)
}

// Unwrap returns [ErrWebhookTimestamp].
func (e *WebhookTimestampError) Unwrap() error { return ErrWebhookTimestamp }

// A WebhookSecret is a member's HMAC key.
//
// It is 24 to 64 random bytes, written as "whsec_" followed by their standard
// base64 encoding. Printing or logging a WebhookSecret shows only
// "whsec_[redacted]"; [WebhookSecret.Encode] is the only way to get the text
// back. The zero WebhookSecret holds no key and cannot sign or verify.
type WebhookSecret struct {
	key []byte
}

var (
	_ fmt.Stringer   = WebhookSecret{}
	_ fmt.GoStringer = WebhookSecret{}
	_ slog.LogValuer = WebhookSecret{}
)

// GenerateWebhookSecret returns a new secret of 32 bytes read from rand,
// which is normally [crypto/rand.Reader]; nil means crypto/rand.Reader.
func GenerateWebhookSecret(rand io.Reader) (WebhookSecret, error) {
	if rand == nil {
		rand = cryptorand.Reader
	}
	key := make([]byte, webhookSecretLen)
	if _, err := io.ReadFull(rand, key); err != nil {
		return WebhookSecret{}, fmt.Errorf("generate webhook secret: %w", err)
	}
	return WebhookSecret{key: key}, nil
}

// ParseWebhookSecret parses a secret written as "whsec_" followed by the
// standard base64 (with padding) of 24 to 64 key bytes.
func ParseWebhookSecret(s string) (WebhookSecret, error) {
	rest, ok := strings.CutPrefix(s, webhookSecretPrefix)
	if !ok {
		return WebhookSecret{}, fmt.Errorf("%w: webhook secret does not start with %q", ErrWebhookKey, webhookSecretPrefix)
	}
	key, err := webhookBase64.DecodeString(rest)
	if err != nil {
		return WebhookSecret{}, fmt.Errorf("%w: webhook secret is not standard base64 after %q", ErrWebhookKey, webhookSecretPrefix)
	}
	if len(key) < webhookSecretMin || len(key) > webhookSecretMax {
		return WebhookSecret{}, fmt.Errorf("%w: webhook secret is %d bytes, want %d to %d", ErrWebhookKey, len(key), webhookSecretMin, webhookSecretMax)
	}
	return WebhookSecret{key: key}, nil
}

// Encode returns the secret's text form, "whsec_" followed by the standard
// base64 of its bytes. It is the only way to get the secret back as text.
func (s WebhookSecret) Encode() string {
	return webhookSecretPrefix + base64.StdEncoding.EncodeToString(s.key)
}

// String returns "whsec_[redacted]", so that a secret printed by mistake
// leaks nothing. Use [WebhookSecret.Encode] for the secret itself.
func (s WebhookSecret) String() string { return webhookSecretRedacted }

// GoString returns "whsec_[redacted]", for the %#v verb.
func (s WebhookSecret) GoString() string { return webhookSecretRedacted }

// LogValue returns "whsec_[redacted]", so that [log/slog] never logs the key.
func (s WebhookSecret) LogValue() slog.Value { return slog.StringValue(webhookSecretRedacted) }

// valid reports whether s holds a key of an allowed length.
func (s WebhookSecret) valid() bool {
	return len(s.key) >= webhookSecretMin && len(s.key) <= webhookSecretMax
}

// ParseWebhookPublicKey parses an Ed25519 public key written as "whpk_"
// followed by the standard base64 of its 32 bytes.
func ParseWebhookPublicKey(s string) (ed25519.PublicKey, error) {
	rest, ok := strings.CutPrefix(s, webhookPublicKeyPrefix)
	if !ok {
		return nil, fmt.Errorf("%w: webhook public key does not start with %q", ErrWebhookKey, webhookPublicKeyPrefix)
	}
	key, err := webhookBase64.DecodeString(rest)
	if err != nil {
		return nil, fmt.Errorf("%w: webhook public key is not standard base64 after %q", ErrWebhookKey, webhookPublicKeyPrefix)
	}
	if len(key) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("%w: webhook public key is %d bytes, want %d", ErrWebhookKey, len(key), ed25519.PublicKeySize)
	}
	return ed25519.PublicKey(key), nil
}

// EncodeWebhookPublicKey returns the text form of an Ed25519 public key,
// "whpk_" followed by the standard base64 of its 32 bytes.
func EncodeWebhookPublicKey(k ed25519.PublicKey) string {
	return webhookPublicKeyPrefix + base64.StdEncoding.EncodeToString(k)
}

// ParseWebhookSigningKey parses an Ed25519 signing key written as "whsk_"
// followed by standard base64 of either the 32-byte seed (RFC 8032's private
// key, which [EncodeWebhookSigningKey] writes and the Standard Webhooks
// reference libraries read) or the 64-byte form [ed25519.PrivateKey] holds
// (seed then public key). A 64-byte key whose public half does not match its
// seed is refused.
func ParseWebhookSigningKey(s string) (ed25519.PrivateKey, error) {
	rest, ok := strings.CutPrefix(s, webhookSigningKeyPrefix)
	if !ok {
		return nil, fmt.Errorf("%w: webhook signing key does not start with %q", ErrWebhookKey, webhookSigningKeyPrefix)
	}
	raw, err := webhookBase64.DecodeString(rest)
	if err != nil {
		return nil, fmt.Errorf("%w: webhook signing key is not standard base64 after %q", ErrWebhookKey, webhookSigningKeyPrefix)
	}
	switch len(raw) {
	case ed25519.SeedSize:
		return ed25519.NewKeyFromSeed(raw), nil
	case ed25519.PrivateKeySize:
		key := ed25519.NewKeyFromSeed(raw[:ed25519.SeedSize])
		if subtle.ConstantTimeCompare(key[ed25519.SeedSize:], raw[ed25519.SeedSize:]) != 1 {
			return nil, fmt.Errorf("%w: webhook signing key's public half does not match its seed", ErrWebhookKey)
		}
		return key, nil
	default:
		return nil, fmt.Errorf("%w: webhook signing key is %d bytes, want %d (private key) or %d (seed)",
			ErrWebhookKey, len(raw), ed25519.PrivateKeySize, ed25519.SeedSize)
	}
}

// EncodeWebhookSigningKey returns the text form of an Ed25519 signing key,
// "whsk_" followed by the standard base64 of its 32-byte seed, as the
// Standard Webhooks reference libraries write it.
func EncodeWebhookSigningKey(k ed25519.PrivateKey) string {
	return webhookSigningKeyPrefix + base64.StdEncoding.EncodeToString(k.Seed())
}

// A WebhookSigner signs deliveries with every secret and key it holds.
//
// While a secret or key is being rotated out, the signer holds both the old
// and the new one, so that receivers trusting either accept the delivery.
// Printing or logging a WebhookSigner shows only how many secrets and keys
// it holds.
type WebhookSigner struct {
	Secrets []WebhookSecret      // HMAC secrets, each giving a v1 entry
	Keys    []ed25519.PrivateKey // Ed25519 signing keys, each giving a v1a entry
}

var (
	_ fmt.Stringer   = WebhookSigner{}
	_ fmt.GoStringer = WebhookSigner{}
	_ slog.LogValuer = WebhookSigner{}
)

// Sign returns the webhook-signature header value for one attempt: one v1 entry per secret, then one v1a entry per key.
//
// The id must be 1 to 256 bytes of visible ASCII without a full stop, so
// that the signed content splits back into id, timestamp and body one way
// only; the timestamp is sent in whole seconds and must not be before 1970.
// Sign returns an error wrapping [ErrWebhookNoKeys] if the signer holds
// nothing to sign with, [ErrWebhookKey] if a secret is zero or a key has the
// wrong length, and [ErrWebhookMalformed] for an id or timestamp that
// [WebhookVerifier.Verify] would refuse or for more than 20 entries.
func (s WebhookSigner) Sign(id string, timestamp time.Time, body []byte) (string, error) {
	if len(s.Secrets) == 0 && len(s.Keys) == 0 {
		return "", fmt.Errorf("sign webhook: %w", ErrWebhookNoKeys)
	}
	if n := len(s.Secrets) + len(s.Keys); n > maxWebhookSignatures {
		return "", fmt.Errorf("sign webhook: %w: %d signatures, at most %d allowed", ErrWebhookMalformed, n, maxWebhookSignatures)
	}
	for i, secret := range s.Secrets {
		if !secret.valid() {
			return "", fmt.Errorf("sign webhook: %w: secret %d is %d bytes, want %d to %d", ErrWebhookKey, i, len(secret.key), webhookSecretMin, webhookSecretMax)
		}
	}
	for i, key := range s.Keys {
		if len(key) != ed25519.PrivateKeySize {
			return "", fmt.Errorf("sign webhook: %w: signing key %d is %d bytes, want %d", ErrWebhookKey, i, len(key), ed25519.PrivateKeySize)
		}
	}
	if err := checkWebhookID(id); err != nil {
		return "", fmt.Errorf("sign webhook: %w", err)
	}
	sec := timestamp.Unix()
	if sec < 0 || len(strconv.FormatInt(sec, 10)) > maxWebhookTimestampDigits {
		return "", fmt.Errorf("sign webhook: %w: timestamp %s is before 1970 or more than %d digits of Unix seconds", ErrWebhookMalformed, timestamp.UTC().Format(time.RFC3339), maxWebhookTimestampDigits)
	}
	ts := strconv.FormatInt(sec, 10)

	var b strings.Builder
	b.Grow(len(s.Secrets)*(len(webhookVersionMAC)+2+webhookBase64.EncodedLen(sha256.Size)) +
		len(s.Keys)*(len(webhookVersionSig)+2+webhookBase64.EncodedLen(ed25519.SignatureSize)))
	for _, secret := range s.Secrets {
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(webhookVersionMAC + ",")
		b.WriteString(base64.StdEncoding.EncodeToString(webhookMAC(secret.key, id, ts, body)))
	}
	if len(s.Keys) > 0 {
		content := webhookContent(id, ts, body)
		for _, key := range s.Keys {
			if b.Len() > 0 {
				b.WriteByte(' ')
			}
			b.WriteString(webhookVersionSig + ",")
			b.WriteString(base64.StdEncoding.EncodeToString(ed25519.Sign(key, content)))
		}
	}
	return b.String(), nil
}

// SignRequest sets all three headers on r (body given separately, since the caller has it).
// It returns the same errors as [WebhookSigner.Sign], and leaves r unchanged
// when it does.
func (s WebhookSigner) SignRequest(r *http.Request, id string, timestamp time.Time, body []byte) error {
	sig, err := s.Sign(id, timestamp, body)
	if err != nil {
		return err
	}
	if r.Header == nil {
		r.Header = make(http.Header)
	}
	r.Header.Set(HeaderWebhookID, id)
	r.Header.Set(HeaderWebhookTimestamp, strconv.FormatInt(timestamp.Unix(), 10))
	r.Header.Set(HeaderWebhookSignature, sig)
	return nil
}

// String describes the signer without its secrets or keys.
func (s WebhookSigner) String() string {
	return fmt.Sprintf("WebhookSigner{%d secrets, %d keys}", len(s.Secrets), len(s.Keys))
}

// GoString describes the signer without its secrets or keys, for the %#v verb.
func (s WebhookSigner) GoString() string { return s.String() }

// LogValue describes the signer without its secrets or keys, for [log/slog].
func (s WebhookSigner) LogValue() slog.Value {
	return slog.GroupValue(slog.Int("secrets", len(s.Secrets)), slog.Int("keys", len(s.Keys)))
}

// A WebhookVerifier checks deliveries against the secrets and public keys a receiver trusts.
//
// A delivery is accepted when its headers are well formed, its timestamp is
// within Tolerance of the receiver's clock (the boundary included), and at
// least one v1 entry matches at least one secret or at least one v1a entry
// verifies under at least one public key. Entries with other versions are
// ignored. The checks run in that order, so a stale delivery is reported as
// stale whatever its signatures. Verification does not remember ids; a
// receiver that must not process a delivery twice keeps the ids it has seen
// for at least twice the tolerance.
type WebhookVerifier struct {
	Secrets    []WebhookSecret     // trusted HMAC secrets, checked against v1 entries
	PublicKeys []ed25519.PublicKey // trusted Ed25519 public keys, checked against v1a entries
	Tolerance  time.Duration       // 0 (or negative) means DefaultWebhookTolerance
}

// Verify checks one delivery given the values of its three headers, its raw
// body and the receiver's clock. It returns nil if the delivery is authentic
// and fresh, and otherwise an error wrapping [ErrWebhookNoKeys] or
// [ErrWebhookKey] (the verifier is misconfigured), [ErrWebhookMissingHeader],
// [ErrWebhookMalformed], [ErrWebhookTimestamp] (as a
// [*WebhookTimestampError]) or [ErrWebhookSignature], checked in that order.
//
// The work a delivery can cause is bounded: the id is at most 256 bytes, the
// signature header at most 8 KiB with at most 20 entries, and each secret and
// each public key is tried against each entry of its version. The body is
// hashed once per secret and once per v1a signature tried; the caller bounds
// its size.
func (v WebhookVerifier) Verify(id, timestamp, signature string, body []byte, now time.Time) error {
	if err := v.checkConfig(); err != nil {
		return err
	}
	var missing []string
	for _, h := range [...]struct{ name, value string }{
		{HeaderWebhookID, id},
		{HeaderWebhookTimestamp, timestamp},
		{HeaderWebhookSignature, signature},
	} {
		if h.value == "" {
			missing = append(missing, h.name)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("%w: %s", ErrWebhookMissingHeader, strings.Join(missing, ", "))
	}
	if err := checkWebhookID(id); err != nil {
		return err
	}
	sec, err := parseWebhookTimestamp(timestamp)
	if err != nil {
		return err
	}
	entries, err := parseWebhookSignature(signature)
	if err != nil {
		return err
	}

	tolerance := v.Tolerance
	if tolerance <= 0 {
		tolerance = DefaultWebhookTolerance
	}
	ts := time.Unix(sec, 0)
	if d := now.Sub(ts); d > tolerance || d < -tolerance {
		return &WebhookTimestampError{Timestamp: ts.UTC(), Now: now, Tolerance: tolerance}
	}

	if len(v.Secrets) > 0 && len(entries.mac) > 0 {
		for _, secret := range v.Secrets {
			mac := webhookMAC(secret.key, id, timestamp, body)
			for _, got := range entries.mac {
				if hmac.Equal(got, mac) {
					return nil
				}
			}
		}
	}
	if len(v.PublicKeys) > 0 && len(entries.sig) > 0 {
		content := webhookContent(id, timestamp, body)
		for _, key := range v.PublicKeys {
			for _, got := range entries.sig {
				if ed25519.Verify(key, content, got) {
					return nil
				}
			}
		}
	}
	msg := fmt.Sprintf("tried %d v1 %s against %d %s and %d v1a %s against %d public %s",
		len(entries.mac), webhookPlural(len(entries.mac), "entry", "entries"),
		len(v.Secrets), webhookPlural(len(v.Secrets), "secret", "secrets"),
		len(entries.sig), webhookPlural(len(entries.sig), "entry", "entries"),
		len(v.PublicKeys), webhookPlural(len(v.PublicKeys), "key", "keys"))
	if entries.unknown > 0 {
		msg += fmt.Sprintf("; ignored %d %s of unknown version", entries.unknown, webhookPlural(entries.unknown, "entry", "entries"))
	}
	return fmt.Errorf("%w: %s", ErrWebhookSignature, msg)
}

// VerifyHeaders is [WebhookVerifier.Verify] with the three values taken
// from h. A header given more than once is malformed.
func (v WebhookVerifier) VerifyHeaders(h http.Header, body []byte, now time.Time) error {
	var values [3]string
	for i, name := range [...]string{HeaderWebhookID, HeaderWebhookTimestamp, HeaderWebhookSignature} {
		switch vs := h.Values(name); len(vs) {
		case 0:
		case 1:
			values[i] = vs[0]
		default:
			if err := v.checkConfig(); err != nil {
				return err
			}
			return fmt.Errorf("%w: %s given %d times", ErrWebhookMalformed, name, len(vs))
		}
	}
	return v.Verify(values[0], values[1], values[2], body, now)
}

// checkConfig reports whether the verifier has keys to check with, all of
// them usable.
func (v WebhookVerifier) checkConfig() error {
	if len(v.Secrets) == 0 && len(v.PublicKeys) == 0 {
		return fmt.Errorf("verify webhook: %w", ErrWebhookNoKeys)
	}
	for i, secret := range v.Secrets {
		if !secret.valid() {
			return fmt.Errorf("verify webhook: %w: secret %d is %d bytes, want %d to %d", ErrWebhookKey, i, len(secret.key), webhookSecretMin, webhookSecretMax)
		}
	}
	for i, key := range v.PublicKeys {
		if len(key) != ed25519.PublicKeySize {
			return fmt.Errorf("verify webhook: %w: public key %d is %d bytes, want %d", ErrWebhookKey, i, len(key), ed25519.PublicKeySize)
		}
	}
	return nil
}

// checkWebhookID reports whether id can be a webhook-id: 1 to 256 bytes of
// visible ASCII other than the full stop that delimits the signed content.
func checkWebhookID(id string) error {
	if len(id) > maxWebhookIDLen {
		return fmt.Errorf("%w: %s is %d bytes, at most %d allowed", ErrWebhookMalformed, HeaderWebhookID, len(id), maxWebhookIDLen)
	}
	if id == "" {
		return fmt.Errorf("%w: %s is empty", ErrWebhookMalformed, HeaderWebhookID)
	}
	for i := 0; i < len(id); i++ {
		switch c := id[i]; {
		case c == '.':
			return fmt.Errorf("%w: %s contains a full stop at byte %d", ErrWebhookMalformed, HeaderWebhookID, i)
		case c < 0x21 || c > 0x7e:
			return fmt.Errorf("%w: %s contains byte %#02x at %d, want visible ASCII", ErrWebhookMalformed, HeaderWebhookID, c, i)
		}
	}
	return nil
}

// parseWebhookTimestamp parses a webhook-timestamp: a decimal integer of Unix
// seconds with no sign and no leading zeros, so that it has one spelling only.
func parseWebhookTimestamp(s string) (int64, error) {
	if len(s) > maxWebhookTimestampDigits {
		return 0, fmt.Errorf("%w: %s is %d characters, at most %d digits allowed", ErrWebhookMalformed, HeaderWebhookTimestamp, len(s), maxWebhookTimestampDigits)
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, fmt.Errorf("%w: %s %q is not a decimal integer of Unix seconds", ErrWebhookMalformed, HeaderWebhookTimestamp, s)
		}
	}
	if len(s) > 1 && s[0] == '0' {
		return 0, fmt.Errorf("%w: %s %q has a leading zero", ErrWebhookMalformed, HeaderWebhookTimestamp, s)
	}
	sec, err := strconv.ParseInt(s, 10, 64)
	if err != nil { // unreachable for at most 18 digits, kept as a guard
		return 0, fmt.Errorf("%w: %s %q: %v", ErrWebhookMalformed, HeaderWebhookTimestamp, s, err)
	}
	return sec, nil
}

// webhookEntries are the decoded signatures of one webhook-signature header.
type webhookEntries struct {
	mac     [][]byte // v1: HMAC-SHA256, 32 bytes each
	sig     [][]byte // v1a: Ed25519, 64 bytes each
	unknown int      // entries of other versions, ignored
}

// parseWebhookSignature splits a webhook-signature header into its entries.
// Runs of spaces separate entries. Every entry must have a version and a
// comma; v1 and v1a signatures must be canonical padded standard base64 of
// the right length, while other versions are counted and otherwise ignored.
func parseWebhookSignature(s string) (webhookEntries, error) {
	var e webhookEntries
	if len(s) > maxWebhookSignatureLen {
		return e, fmt.Errorf("%w: %s is %d bytes, at most %d allowed", ErrWebhookMalformed, HeaderWebhookSignature, len(s), maxWebhookSignatureLen)
	}
	n := 0
	for entry := range strings.SplitSeq(s, " ") {
		if entry == "" {
			continue
		}
		n++
		if n > maxWebhookSignatures {
			return e, fmt.Errorf("%w: %s lists more than %d entries", ErrWebhookMalformed, HeaderWebhookSignature, maxWebhookSignatures)
		}
		version, encoded, ok := strings.Cut(entry, ",")
		if !ok {
			return e, fmt.Errorf("%w: %s entry %d has no comma between version and signature", ErrWebhookMalformed, HeaderWebhookSignature, n)
		}
		if version == "" {
			return e, fmt.Errorf("%w: %s entry %d has no version", ErrWebhookMalformed, HeaderWebhookSignature, n)
		}
		var size int
		switch version {
		case webhookVersionMAC:
			size = sha256.Size
		case webhookVersionSig:
			size = ed25519.SignatureSize
		default:
			e.unknown++
			continue
		}
		sig, ok := decodeWebhookSignature(encoded, size)
		if !ok {
			return e, fmt.Errorf("%w: %s entry %d (%s) is not %d bytes in padded standard base64",
				ErrWebhookMalformed, HeaderWebhookSignature, n, version, size)
		}
		if version == webhookVersionMAC {
			e.mac = append(e.mac, sig)
		} else {
			e.sig = append(e.sig, sig)
		}
	}
	if n == 0 {
		return e, fmt.Errorf("%w: %s lists no entries", ErrWebhookMalformed, HeaderWebhookSignature)
	}
	return e, nil
}

// decodeWebhookSignature decodes the one canonical base64 spelling of a
// signature of size bytes.
func decodeWebhookSignature(s string, size int) ([]byte, bool) {
	if len(s) != webhookBase64.EncodedLen(size) {
		return nil, false
	}
	sig, err := webhookBase64.DecodeString(s)
	if err != nil || len(sig) != size {
		return nil, false
	}
	return sig, true
}

// webhookMAC returns the v1 signature: HMAC-SHA256 of id.timestamp.body.
func webhookMAC(key []byte, id, timestamp string, body []byte) []byte {
	m := hmac.New(sha256.New, key)
	io.WriteString(m, id)
	m.Write([]byte{'.'})
	io.WriteString(m, timestamp)
	m.Write([]byte{'.'})
	m.Write(body)
	return m.Sum(nil)
}

// webhookContent returns the signed content id.timestamp.body.
func webhookContent(id, timestamp string, body []byte) []byte {
	content := make([]byte, 0, len(id)+len(timestamp)+2+len(body))
	content = append(content, id...)
	content = append(content, '.')
	content = append(content, timestamp...)
	content = append(content, '.')
	return append(content, body...)
}

// webhookPlural returns one if n is 1 and many otherwise.
func webhookPlural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
