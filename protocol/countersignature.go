package protocol

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"time"
)

// TypeCountersignature is the "typ" header of a relaying hub's
// countersignature, so that it cannot pass as a submission, a bearer
// token or a record, nor any of those as it.
const TypeCountersignature = "sparr-countersignature+jwt"

// DefaultCountersignatureMaxAge bounds how long after signing a
// countersignature is accepted when [CountersignatureOptions] leave MaxAge
// zero: a relaying hub signs one for every relayed request, so it is
// fresh.
const DefaultCountersignatureMaxAge = 5 * time.Minute

// A Countersignature is what a relaying hub adds to one of its members'
// signed submissions when it relays the submission to the home hub of the
// identifiers the submission names: a compact JWS with
// "typ":"sparr-countersignature+jwt", signed with the key the home hub's
// operator registered for the relaying hub (a member with role peer there),
// whose protected header carries "kid" and "iss" (the relaying hub's id at
// the home hub). Its claims bind the submission's bytes (their SHA-256),
// its "jti", the member that signed it and the member's public key as the
// relaying hub holds it, so the home hub can verify the member's signature
// with no round trip to the relaying hub, and prove which member of which
// hub asked.
//
//	{"iss": "hub-se", "aud": "https://sparr.example.no", "iat": 1765152000,
//	 "jti": "<the submission's jti>", "member": "bank-a",
//	 "relay": "https://sparr.example.se",
//	 "submission_sha256": "<base64url>", "member_key": {<public JWK>}}
type Countersignature struct {
	Issuer   string    // "iss": the relaying hub's member id at the home hub
	Audience string    // "aud": the home hub's issuer URL
	IssuedAt time.Time // "iat"
	// ID is the submission's "jti", which the home hub deduplicates by,
	// with Member and Issuer.
	ID string // "jti"
	// Member is the id, at the relaying hub, of the member that signed the
	// submission: its "iss".
	Member string // "member"
	// Relay is the relaying hub's issuer URL: the submission's "aud".
	Relay string // "relay"
	// SubmissionHash is the SHA-256 of the submission's compact JWS bytes.
	SubmissionHash []byte // "submission_sha256"
	// MemberKey is the public key the member signed the submission with,
	// as the relaying hub has it registered.
	MemberKey *PublicKey // "member_key"
	// KeyID is the "kid" the countersignature was signed with (set by
	// [VerifyCountersignature]).
	KeyID string
}

type countersignatureClaims struct {
	Iss        string          `json:"iss"`
	Aud        string          `json:"aud"`
	Iat        NumericDate     `json:"iat"`
	Jti        string          `json:"jti"`
	Member     string          `json:"member"`
	Relay      string          `json:"relay"`
	Submission Base64URL       `json:"submission_sha256"`
	MemberKey  json.RawMessage `json:"member_key"`
}

// SignCountersignature signs cs with the relaying hub's key for the home
// hub.
func SignCountersignature(cs *Countersignature, key *SigningKey) ([]byte, error) {
	if err := first(checkID("iss", cs.Issuer), checkID("jti", cs.ID), checkID("member", cs.Member)); err != nil {
		return nil, fmt.Errorf("sign countersignature: %w", err)
	}
	if cs.Audience == "" || cs.Relay == "" || cs.IssuedAt.IsZero() || len(cs.SubmissionHash) != sha256.Size || cs.MemberKey == nil {
		return nil, fmt.Errorf("sign countersignature: %w", missingClaim("aud, relay, iat, submission_sha256 and member_key"))
	}
	mk, err := json.Marshal(cs.MemberKey)
	if err != nil {
		return nil, fmt.Errorf("sign countersignature: %w", err)
	}
	body, err := json.Marshal(countersignatureClaims{
		Iss: cs.Issuer, Aud: cs.Audience, Iat: NewNumericDate(cs.IssuedAt), Jti: cs.ID, Member: cs.Member,
		Relay: cs.Relay, Submission: cs.SubmissionHash, MemberKey: mk,
	})
	if err != nil {
		return nil, fmt.Errorf("sign countersignature: %w", err)
	}
	return sign(key, TypeCountersignature, cs.Issuer, body)
}

// CountersignatureOptions are what the home hub checks a countersignature's
// claims against.
type CountersignatureOptions struct {
	Audience string        // the home hub's issuer URL; required
	Now      time.Time     // the home hub's clock; required
	Skew     time.Duration // as [SubmissionOptions.Skew]
	// MaxAge is the oldest "iat" accepted; 0 means
	// DefaultCountersignatureMaxAge.
	MaxAge time.Duration
}

// VerifyCountersignature verifies a relaying hub's countersignature against
// the keys the home hub registered for it (keys resolves the header's
// "iss" and "kid"), and only then decodes it strictly. Errors are as
// [VerifySubmission]'s.
func VerifyCountersignature(ctx context.Context, jws []byte, keys KeyResolver, opts CountersignatureOptions) (*Countersignature, error) {
	const object = "countersignature"
	skew, err := skewOf(opts.Skew)
	if err != nil {
		return nil, fmt.Errorf("verify %s: %w", object, err)
	}
	h, payload, err := verifyMemberSigned(ctx, object, TypeCountersignature, jws, keys)
	if err != nil {
		return nil, err
	}
	var c countersignatureClaims
	if err := decodeStrict(payload, &c); err != nil {
		return nil, claimError(object, h, err)
	}
	maxAge := opts.MaxAge
	if maxAge == 0 {
		maxAge = DefaultCountersignatureMaxAge
	}
	issued := issuedClaims{iss: c.Iss, aud: c.Aud, iat: c.Iat}
	if err := issued.check(object, h, opts.Audience, opts.Now, skew, maxAge, "the relaying hub's clock", "countersign each relayed request afresh"); err != nil {
		return nil, err
	}
	iat := c.Iat.Time()
	switch {
	case c.Relay == "":
		return nil, claimError(object, h, missingClaim("relay"))
	case len(c.Submission) != sha256.Size:
		return nil, claimError(object, h, invalidClaim("submission_sha256", "%d bytes, want a SHA-256", len(c.Submission)))
	case len(c.MemberKey) == 0:
		return nil, claimError(object, h, missingClaim("member_key"))
	}
	if err := first(checkID("jti", c.Jti), checkID("member", c.Member)); err != nil {
		return nil, claimError(object, h, err)
	}
	mk, err := ParsePublicKey(c.MemberKey)
	if err != nil {
		return nil, claimError(object, h, invalidClaim("member_key", "%v", err))
	}
	return &Countersignature{Issuer: c.Iss, Audience: c.Aud, IssuedAt: iat, ID: c.Jti, Member: c.Member, Relay: c.Relay,
		SubmissionHash: c.Submission, MemberKey: mk, KeyID: h.Kid}, nil
}

// VerifyRelayed verifies submission, a member's signed submission that cs
// countersigns: its bytes must hash to cs.SubmissionHash, it must be signed
// by cs.Member with cs.MemberKey, for the relaying hub (cs.Relay), and
// carry cs.ID as its "jti". Only then is it decoded, as [VerifySubmission]
// decodes it; opts.Audience is ignored (it is cs.Relay).
func VerifyRelayed(ctx context.Context, cs *Countersignature, submission []byte, opts SubmissionOptions) (*Submission, error) {
	sum := sha256.Sum256(submission)
	if !bytes.Equal(sum[:], cs.SubmissionHash) {
		return nil, &VerificationError{Object: "submission", Err: ErrInvalidClaim, Claim: "submission_sha256",
			Detail: "the submission's SHA-256 is not the one the countersignature binds"}
	}
	keys := KeyResolverFunc(func(_ context.Context, member, kid string) (*PublicKey, error) {
		if member != cs.Member || kid != cs.MemberKey.KeyID() {
			return nil, fmt.Errorf("%w: the countersignature binds key %q of member %q", ErrUnknownKey, cs.MemberKey.KeyID(), cs.Member)
		}
		return cs.MemberKey, nil
	})
	opts.Audience = cs.Relay
	s, err := VerifySubmission(ctx, submission, keys, opts)
	if err != nil {
		return nil, err
	}
	if s.ID != cs.ID {
		return nil, &VerificationError{Object: "submission", Err: ErrInvalidClaim, KeyID: s.KeyID, Claim: "jti",
			Detail: fmt.Sprintf("is %q but the countersignature names %q", s.ID, cs.ID)}
	}
	return s, nil
}
