package protocol

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/lestrrat-go/jwx/v3/jws"
)

// Errors returned, wrapped in a [*VerificationError], by [VerifyRecord],
// [VerifySubmission] and [VerifyBearer]. Test for them with errors.Is.
var (
	// ErrMalformed: not a compact JWS, a header or payload that is not the
	// JSON it must be, or a claim of the wrong JSON type.
	ErrMalformed = errors.New("malformed")
	// ErrUnknownKey: the "kid" names no key the verifier holds.
	ErrUnknownKey = errors.New("unknown key")
	// ErrBadSignature: the signature does not verify under the named key, or
	// the header's "alg" is not the key's algorithm.
	ErrBadSignature = errors.New("bad signature")
	// ErrWrongType: the "typ" header is not the one this object must carry,
	// so a bearer token cannot pass as a submission, nor either as a record.
	ErrWrongType = errors.New("wrong type")
	// ErrMissingClaim: a required claim or event field is absent.
	ErrMissingClaim = errors.New("missing claim")
	// ErrInvalidClaim: a claim is present but has a value this object may not
	// carry (wrong audience, issuer mismatch, unknown event, too long a
	// lifetime …).
	ErrInvalidClaim = errors.New("invalid claim")
	// ErrExpired: a bearer token past its "exp", or a submission older than
	// the verifier allows.
	ErrExpired = errors.New("expired")
	// ErrNotYetValid: issued in the future beyond the allowed clock skew.
	ErrNotYetValid = errors.New("not yet valid")
)

// The "typ" header values (RFC 8725, section 3.11: explicit typing) of the
// three kinds of signed object.
const (
	TypeRecord     = "secevent+jwt"
	TypeSubmission = "sparr-submission+jwt"
	TypeBearer     = "sparr-bearer+jwt"
)

// MaxSignedSize is the largest compact JWS, in bytes, that any verifier here
// reads.
const MaxSignedSize = 256 << 10

// A VerificationError says why a signed object was refused, and carries the
// evidence a member, operator or regulator needs to show why.
type VerificationError struct {
	Object    string // "record", "submission" or "bearer token"
	Err       error  // one of the sentinels above
	KeyID     string // the header's "kid", if it was read
	Algorithm string // the header's "alg", if it was read
	Claim     string // the claim at fault, for claim errors
	Detail    string // what exactly was wrong
}

func (e *VerificationError) Error() string {
	msg := e.Object + ": " + e.Err.Error()
	if e.Claim != "" {
		msg += " " + e.Claim
	}
	if e.Detail != "" {
		msg += ": " + e.Detail
	}
	if e.KeyID != "" {
		msg += fmt.Sprintf(" (kid %q, alg %q)", e.KeyID, e.Algorithm)
	}
	return msg
}

// Unwrap returns the sentinel.
func (e *VerificationError) Unwrap() error { return e.Err }

// A KeyResolver finds the public key a member signed with. member is the
// "iss" protected header parameter, which member-signed objects replicate
// from their claims (RFC 7519, section 5.3) precisely so that the key can be
// found before the payload is read. It returns an error wrapping
// [ErrUnknownKey] if the member has no such key.
type KeyResolver interface {
	ResolveKey(ctx context.Context, member, kid string) (*PublicKey, error)
}

// KeyResolverFunc adapts a function to [KeyResolver].
type KeyResolverFunc func(ctx context.Context, member, kid string) (*PublicKey, error)

// ResolveKey calls f.
func (f KeyResolverFunc) ResolveKey(ctx context.Context, member, kid string) (*PublicKey, error) {
	return f(ctx, member, kid)
}

// jwsHeader is the part of a protected header Spärr reads.
type jwsHeader struct {
	Alg, Kid, Typ, Iss string
}

// parseHeader decodes the protected header of a compact JWS without
// touching its payload, and checks the parts every object shares: the shape,
// no member named twice, "typ", and the absence of extensions Spärr does
// not implement. Records, submissions and bearer tokens are all read
// through it, before any key is looked up or signature checked.
func parseHeader(object, typ string, token []byte) (jwsHeader, *VerificationError) {
	fail := func(err error, format string, args ...any) (jwsHeader, *VerificationError) {
		return jwsHeader{}, &VerificationError{Object: object, Err: err, Detail: fmt.Sprintf(format, args...)}
	}
	if len(token) == 0 {
		return fail(ErrMalformed, "empty")
	}
	if len(token) > MaxSignedSize {
		return fail(ErrMalformed, "%d bytes, at most %d", len(token), MaxSignedSize)
	}
	if bytes.Count(token, []byte{'.'}) != 2 {
		return fail(ErrMalformed, "not a compact JWS (want three base64url parts separated by dots)")
	}
	for _, c := range token {
		if !(c == '.' || c == '-' || c == '_' || '0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z') {
			return fail(ErrMalformed, "character %q outside base64url", c)
		}
	}
	var raw Base64URL
	if err := raw.UnmarshalText(token[:bytes.IndexByte(token, '.')]); err != nil {
		return fail(ErrMalformed, "protected header: %v", err)
	}
	// Decode through a map so that member names match exactly, as JOSE
	// requires (encoding/json alone would let "ALG" stand for "alg").
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(raw, &fields); err != nil {
		return fail(ErrMalformed, "protected header is not a JSON object: %v", err)
	}
	if name, ok := repeatedMember(raw); ok {
		return fail(ErrMalformed, "protected header member %q appears twice", name)
	}
	var h jwsHeader
	for name, dst := range map[string]*string{"alg": &h.Alg, "kid": &h.Kid, "typ": &h.Typ, "iss": &h.Iss} {
		if v, ok := fields[name]; ok {
			if err := json.Unmarshal(v, dst); err != nil {
				return fail(ErrMalformed, "protected header %q is not a string", name)
			}
		}
	}
	_, crit := fields["crit"]
	_, b64 := fields["b64"]
	e := func(err error, format string, args ...any) (jwsHeader, *VerificationError) {
		return jwsHeader{}, &VerificationError{Object: object, Err: err, KeyID: h.Kid, Algorithm: h.Alg, Detail: fmt.Sprintf(format, args...)}
	}
	switch {
	case h.Alg == "":
		return e(ErrMalformed, "protected header has no \"alg\"")
	case h.Kid == "":
		return e(ErrMalformed, "protected header has no \"kid\"")
	case crit:
		return e(ErrMalformed, "\"crit\" header: no extensions are supported")
	case b64:
		return e(ErrMalformed, "\"b64\" header: unencoded payloads are not supported")
	case h.Typ != typ:
		return e(ErrWrongType, "\"typ\" is %q, want %q", h.Typ, typ)
	}
	return h, nil
}

// repeatedMember returns the first member name that the JSON object obj
// gives twice, compared after unescaping ("al\u0067" is "alg"). A JOSE
// header must not repeat a member (RFC 7515, section 4), and a parser that
// lets the last value win would read a header otherwise than a signer or
// another verifier that takes the first: {"alg":"none",…,"alg":"EdDSA"}.
// obj must already be known to be a JSON object.
func repeatedMember(obj []byte) (string, bool) {
	dec := json.NewDecoder(bytes.NewReader(obj))
	if _, err := dec.Token(); err != nil { // {
		return "", false
	}
	seen := make(map[string]bool)
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return "", false
		}
		name, _ := t.(string)
		if seen[name] {
			return name, true
		}
		seen[name] = true
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			return "", false
		}
	}
	return "", false
}

// verifyWith checks token's signature under key, after checking the header's
// algorithm is the key's, and only then returns the payload.
func verifyWith(object string, h jwsHeader, token []byte, key *PublicKey) ([]byte, *VerificationError) {
	if h.Alg != string(key.alg) {
		return nil, &VerificationError{Object: object, Err: ErrBadSignature, KeyID: h.Kid, Algorithm: h.Alg,
			Detail: fmt.Sprintf("header \"alg\" is %q but key %q is a %s key", h.Alg, key.kid, key.alg)}
	}
	payload, err := jws.Verify(token, jws.WithKey(key.alg.jwa(), key.key), jws.WithCompact())
	if err != nil {
		return nil, &VerificationError{Object: object, Err: ErrBadSignature, KeyID: h.Kid, Algorithm: h.Alg,
			Detail: "signature does not verify under the key"}
	}
	return payload, nil
}

// sign makes a compact JWS of payload under key with the given "typ" and,
// for member-signed objects, the "iss" header.
func sign(key *SigningKey, typ, iss string, payload []byte) ([]byte, error) {
	h := jws.NewHeaders()
	for name, v := range map[string]any{jws.KeyIDKey: key.pub.kid, jws.TypeKey: typ} {
		if err := h.Set(name, v); err != nil {
			return nil, err
		}
	}
	if iss != "" {
		if err := h.Set("iss", iss); err != nil {
			return nil, err
		}
	}
	return jws.Sign(payload, jws.WithKey(key.pub.alg.jwa(), key.signer, jws.WithProtectedHeaders(h)))
}

// decodeStrict decodes a verified payload into v, refusing unknown fields
// and trailing data.
func decodeStrict(payload []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(payload))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if dec.More() {
		return errors.New("data after the JSON object")
	}
	return nil
}
