package protocol

import (
	"strings"
	"time"
)

// A ConsumerAuth is a member's statement of how the consumer it acts for
// authenticated before the action it signs: the e-identification method,
// when, at which assurance level, and the member's own reference to that
// authentication, so that an auditor can follow it into the member's
// records. The consumer never talks to the hub; every consumer-facing
// action (a denial of a check, and the consumer's requests that build on
// it) carries one inside the member's signed submission, so the hub can
// prove which bank vouched for the consumer, and how.
//
// Method and Level are codes from fixed sets, never free text: the
// statement is kept, and free text invites personal data into it.
type ConsumerAuth struct {
	Method          AuthMethod     `json:"method"`
	AuthenticatedAt NumericDate    `json:"authenticated_at"`
	Level           AssuranceLevel `json:"level"`
	// Reference is the member's reference to the authentication
	// transaction (not the consumer's identifier).
	Reference string `json:"reference"`
}

// An AuthMethod is an e-identification method.
type AuthMethod string

// The authentication methods.
const (
	AuthBankID     AuthMethod = "bankid"
	AuthFrejaEID   AuthMethod = "freja-eid"
	AuthMitID      AuthMethod = "mitid"
	AuthBankIDNO   AuthMethod = "bankid-no"
	AuthFTN        AuthMethod = "ftn"
	AuthPasskey    AuthMethod = "passkey"
	AuthInBranchID AuthMethod = "in-branch-id"
)

// AuthMethods returns every authentication method.
func AuthMethods() []AuthMethod {
	return []AuthMethod{AuthBankID, AuthFrejaEID, AuthMitID, AuthBankIDNO, AuthFTN, AuthPasskey, AuthInBranchID}
}

// An AssuranceLevel is the level of assurance of an authentication, as
// eIDAS names them.
type AssuranceLevel string

// The assurance levels. A consumer-facing action needs at least
// [LevelSubstantial].
const (
	LevelSubstantial AssuranceLevel = "substantial"
	LevelHigh        AssuranceLevel = "high"
)

// AssuranceLevels returns every assurance level.
func AssuranceLevels() []AssuranceLevel { return []AssuranceLevel{LevelSubstantial, LevelHigh} }

// check reports the first field of a that is absent or invalid, named
// relative to the statement.
func (a *ConsumerAuth) check() error {
	return first(
		requiredCode("method", a.Method, AuthMethods()),
		checkTime("authenticated_at", a.AuthenticatedAt),
		requiredCode("level", a.Level, AssuranceLevels()),
		checkReference("reference", a.Reference),
	)
}

// Check reports whether a is a complete statement: every field present
// and of a known code. It returns an error wrapping [ErrMissingClaim] or
// [ErrInvalidClaim] that names the field.
func (a *ConsumerAuth) Check() error {
	if a == nil {
		return missingClaim("consumer_auth")
	}
	return within("consumer_auth.", a.check())
}

func requiredCode[T ~string](claim string, v T, codes []T) error {
	if v == "" {
		return missingClaim(claim)
	}
	return checkOptionalCode(claim, v, codes)
}

func checkReference(claim, v string) error {
	switch {
	case v == "":
		return missingClaim(claim)
	case len(v) > 200:
		return invalidClaim(claim, "at most 200 bytes")
	case strings.ContainsFunc(v, func(r rune) bool { return r < 0x20 || r == 0x7f }):
		return invalidClaim(claim, "no control characters")
	}
	return nil
}

// Age returns how long before now the consumer authenticated: negative
// for a statement from the future.
func (a *ConsumerAuth) Age(now time.Time) time.Duration { return now.Sub(a.AuthenticatedAt.Time()) }
