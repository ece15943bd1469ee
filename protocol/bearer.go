package protocol

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"
)

// MaxBearerLifetime is the longest a bearer token may live: "exp" at most
// this long after "iat".
const MaxBearerLifetime = 5 * time.Minute

// A Bearer is a verified member bearer token: a short-lived JWT (RFC 7519)
// that a member signs itself and sends as "Authorization: Bearer <jwt>" on
// every request. Its header carries "typ":"sparr-bearer+jwt", "kid" and
// "iss"; its claims iss = sub = the member id, aud = the hub's issuer URL,
// iat, and exp at most [MaxBearerLifetime] after iat.
type Bearer struct {
	Member   string
	KeyID    string
	IssuedAt time.Time
	Expiry   time.Time
}

type bearerClaims struct {
	Iss string      `json:"iss"`
	Sub string      `json:"sub"`
	Aud audience    `json:"aud"`
	Iat NumericDate `json:"iat"`
	Exp NumericDate `json:"exp"`
	Nbf NumericDate `json:"nbf,omitempty"`
}

// audience is the "aud" claim, which JWT allows as a string or an array.
type audience []string

func (a audience) MarshalJSON() ([]byte, error) {
	if len(a) == 1 {
		return json.Marshal(a[0])
	}
	return json.Marshal([]string(a))
}

func (a *audience) UnmarshalJSON(b []byte) error {
	var one string
	if err := json.Unmarshal(b, &one); err == nil {
		*a = audience{one}
		return nil
	}
	var many []string
	if err := json.Unmarshal(b, &many); err != nil {
		return fmt.Errorf("\"aud\" must be a string or an array of strings")
	}
	*a = many
	return nil
}

// NewBearer signs a bearer token for member, valid from now for lifetime
// (at most [MaxBearerLifetime]).
func NewBearer(key *SigningKey, member, audience string, now time.Time, lifetime time.Duration) (string, error) {
	if lifetime <= 0 || lifetime > MaxBearerLifetime {
		return "", fmt.Errorf("bearer lifetime %s: want more than 0 and at most %s", lifetime, MaxBearerLifetime)
	}
	if err := checkID("member", member); err != nil {
		return "", fmt.Errorf("new bearer: %w", err)
	}
	if audience == "" {
		return "", fmt.Errorf("new bearer: %w", missingClaim("aud"))
	}
	body, err := json.Marshal(bearerClaims{
		Iss: member, Sub: member, Aud: []string{audience},
		Iat: NewNumericDate(now), Exp: NewNumericDate(now.Add(lifetime)),
	})
	if err != nil {
		return "", err
	}
	tok, err := sign(key, TypeBearer, member, body)
	return string(tok), err
}

// BearerOptions are what the hub checks a bearer token against.
type BearerOptions struct {
	Audience string    // the hub's issuer URL; required
	Now      time.Time // the hub's clock; required
	// Skew is the clock difference tolerated between member and hub: 0
	// means [DefaultSkew], [NoSkew] none at all; any other negative value,
	// or one over [MaxSkew], is refused.
	Skew time.Duration
}

// VerifyBearer verifies a bearer token and then its claims. Errors about the
// token are [*VerificationError]s: [ErrExpired] past "exp" (plus skew),
// [ErrNotYetValid] for an "iat" or "nbf" ahead of the hub's clock (by more
// than the skew), and [ErrInvalidClaim] for a lifetime over
// [MaxBearerLifetime], another audience, or iss, sub and header
// disagreeing. A Skew out of range is an error about opts, wrapping
// [ErrInvalidSkew], and no token is verified with it.
func VerifyBearer(ctx context.Context, token string, keys KeyResolver, opts BearerOptions) (*Bearer, error) {
	const object = "bearer token"
	skew, err := skewOf(opts.Skew)
	if err != nil {
		return nil, fmt.Errorf("verify %s: %w", object, err)
	}
	h, payload, err := verifyMemberSigned(ctx, object, TypeBearer, []byte(token), keys)
	if err != nil {
		return nil, err
	}
	var c bearerClaims
	if err := json.Unmarshal(payload, &c); err != nil {
		return nil, claimError(object, h, err)
	}
	timeErr := func(sentinel error, claim, format string, args ...any) error {
		return &VerificationError{Object: object, Err: sentinel, KeyID: h.Kid, Algorithm: h.Alg, Claim: claim, Detail: fmt.Sprintf(format, args...)}
	}
	switch {
	case c.Iss == "":
		return nil, claimError(object, h, missingClaim("iss"))
	case c.Iss != h.Iss:
		return nil, claimError(object, h, invalidClaim("iss", "is %q but the protected header says %q", c.Iss, h.Iss))
	case c.Sub != c.Iss:
		return nil, claimError(object, h, invalidClaim("sub", "must equal iss, the member id"))
	case len(c.Aud) == 0:
		return nil, claimError(object, h, missingClaim("aud"))
	case !slices.Contains(c.Aud, opts.Audience):
		return nil, claimError(object, h, invalidClaim("aud", "does not name this hub, %q", opts.Audience))
	case c.Iat == 0:
		return nil, claimError(object, h, missingClaim("iat"))
	case c.Exp == 0:
		return nil, claimError(object, h, missingClaim("exp"))
	case c.Exp <= c.Iat:
		return nil, claimError(object, h, invalidClaim("exp", "is not after iat"))
	case c.Exp.Time().Sub(c.Iat.Time()) > MaxBearerLifetime:
		return nil, claimError(object, h, invalidClaim("exp", "lifetime %s, at most %s", c.Exp.Time().Sub(c.Iat.Time()), MaxBearerLifetime))
	case !opts.Now.Before(c.Exp.Time().Add(skew)):
		return nil, timeErr(ErrExpired, "exp", "expired at %s; mint a new bearer token", c.Exp)
	case c.Iat.Time().After(opts.Now.Add(skew)):
		return nil, timeErr(ErrNotYetValid, "iat", "issued %s, ahead of the hub's clock; check the member's clock", c.Iat)
	case c.Nbf != 0 && c.Nbf.Time().After(opts.Now.Add(skew)):
		return nil, timeErr(ErrNotYetValid, "nbf", "not valid before %s", c.Nbf)
	}
	return &Bearer{Member: c.Iss, KeyID: h.Kid, IssuedAt: c.Iat.Time(), Expiry: c.Exp.Time()}, nil
}
