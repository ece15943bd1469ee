package consent

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/sparr-dev/sparr/protocol"
)

// ErrInvalid is returned, inside an [*Error], by [Policy.Validate] for a
// consent the hub does not accept.
var ErrInvalid = errors.New("invalid consent")

// An Error says which field of a consent the hub refused, and why. Its
// Detail says what was wrong and what to do about it, and never contains
// the consent's subject token or evidence reference.
type Error struct {
	// Field is the JSON path of the field within the consent, such as
	// "evidence.authentication_method"; empty if there is no consent at all.
	Field  string
	Detail string
}

func (e *Error) Error() string {
	if e.Field == "" {
		return ErrInvalid.Error() + ": " + e.Detail
	}
	return ErrInvalid.Error() + ": " + e.Field + ": " + e.Detail
}

// Unwrap returns [ErrInvalid].
func (e *Error) Unwrap() error { return ErrInvalid }

// A Policy is what the hub accepts as consent for a protection flag. A zero
// field means its default, as in [DefaultPolicy].
type Policy struct {
	// Purposes are the accepted purposes; default "identity-fraud-protection".
	Purposes []string
	// LegalBases are the accepted legal bases; default "gdpr-art-6-1-a",
	// consent under GDPR Art. 6(1)(a).
	LegalBases []string
	// CollectionMethods are the accepted ways of collecting consent; default
	// "online-banking", "mobile-app", "branch", "telephone" and "web".
	CollectionMethods []string
	// AuthenticationMethods are the strong e-identifications accepted as
	// evidence of who gave consent; default "bankid", "freja-eid-plus",
	// "eidas-high" and "eidas-substantial".
	AuthenticationMethods []string
	// MaxAge is how long before the submission consent may have been
	// collected; default 24 hours.
	MaxAge time.Duration
	// Skew is how far in the future, by the hub's clock, collection.at may
	// lie; default one minute.
	Skew time.Duration
}

// DefaultPolicy returns the hub's default policy, with every field set.
func DefaultPolicy() Policy {
	return Policy{}.withDefaults()
}

// withDefaults returns p with each zero field set to its default.
func (p Policy) withDefaults() Policy {
	if len(p.Purposes) == 0 {
		p.Purposes = []string{"identity-fraud-protection"}
	}
	if len(p.LegalBases) == 0 {
		p.LegalBases = []string{"gdpr-art-6-1-a"}
	}
	if len(p.CollectionMethods) == 0 {
		p.CollectionMethods = []string{"online-banking", "mobile-app", "branch", "telephone", "web"}
	}
	if len(p.AuthenticationMethods) == 0 {
		p.AuthenticationMethods = []string{"bankid", "freja-eid-plus", "eidas-high", "eidas-substantial"}
	}
	if p.MaxAge == 0 {
		p.MaxAge = 24 * time.Hour
	}
	if p.Skew == 0 {
		p.Skew = time.Minute
	}
	return p
}

// Validate checks c, the consent for a flag that member is placing and that
// will expire at flagExpiry (the hub's default for the flag's kind if the
// member asked for none), at time now by the hub's clock. It returns nil or
// an [*Error] for the first field, in the order they appear in
// [protocol.Consent], that the policy refuses:
//
//   - controller must be member: a member submits only consent it collected;
//   - purpose, legal_basis, collection.method and
//     evidence.authentication_method must be among the policy's values;
//   - collection.at must be no later than now + Skew and no earlier than
//     now − MaxAge;
//   - expires_at must be after now, and not before flagExpiry, so that the
//     flag never outlives its consent.
//
// Times are compared in whole seconds, the precision of the wire format. A
// zero flagExpiry skips the last comparison. Validate assumes the fields are
// present and well-formed, as [protocol.VerifySubmission] ensures.
func (p Policy) Validate(c *protocol.Consent, member string, flagExpiry, now time.Time) error {
	p = p.withDefaults()
	if c == nil {
		return &Error{Detail: "no consent; a protection flag needs the consumer's consent, collected after strong authentication"}
	}
	if c.Controller != member {
		return &Error{"controller", fmt.Sprintf("is %s, but the submission comes from member %q; a member may submit only consent it collected itself, as controller", quote(c.Controller), member)}
	}
	if !slices.Contains(p.Purposes, c.Purpose) {
		return &Error{"purpose", fmt.Sprintf("%s is not a purpose the hub accepts for a protection flag; use %s", quote(c.Purpose), oneOf(p.Purposes))}
	}
	if !slices.Contains(p.LegalBases, c.LegalBasis) {
		return &Error{"legal_basis", fmt.Sprintf("%s is not a legal basis the hub accepts for a protection flag; use %s", quote(c.LegalBasis), oneOf(p.LegalBases))}
	}
	if !slices.Contains(p.CollectionMethods, c.Collection.Method) {
		return &Error{"collection.method", fmt.Sprintf("%s is not a collection method the hub accepts; use %s", quote(c.Collection.Method), oneOf(p.CollectionMethods))}
	}
	// The wire format counts whole seconds; so does the comparison.
	nowSec := protocol.NewNumericDate(now)
	now = nowSec.Time()
	at := c.Collection.At
	if at.Time().After(now.Add(p.Skew)) {
		return &Error{"collection.at", fmt.Sprintf("collected at %s, %s ahead of the hub's clock (%s tolerated); check the member's clock and set collection.at to when the consumer gave consent", at, human(at.Time().Sub(now)), human(p.Skew))}
	}
	if at.Time().Before(now.Add(-p.MaxAge)) {
		return &Error{"collection.at", fmt.Sprintf("collected %s ago; consent must be collected within %s before the flag is placed — ask the consumer again", human(now.Sub(at.Time())), human(p.MaxAge))}
	}
	if c.ExpiresAt <= nowSec {
		return &Error{"expires_at", fmt.Sprintf("consent lapsed at %s; ask the consumer again for consent that lasts as long as the flag", c.ExpiresAt)}
	}
	if flag := protocol.NewNumericDate(flagExpiry); c.ExpiresAt < flag {
		return &Error{"expires_at", fmt.Sprintf("consent lapses at %s, before the flag would at %s; collect consent for at least the flag's duration or ask for an earlier expiry", c.ExpiresAt, flag)}
	}
	if !slices.Contains(p.AuthenticationMethods, c.Evidence.AuthenticationMethod) {
		return &Error{"evidence.authentication_method", fmt.Sprintf("%s is not a strong e-identification the hub accepts; authenticate the consumer with %s and collect consent again", quote(c.Evidence.AuthenticationMethod), oneOf(p.AuthenticationMethods))}
	}
	return nil
}

// quote quotes a value from the consent for an error message, cut short if
// it is long.
func quote(s string) string {
	const max = 64
	if len(s) > max {
		return strconv.Quote(strings.ToValidUTF8(s[:max], "")) + "…"
	}
	return strconv.Quote(s)
}

// oneOf lists the accepted values: `"a"`, or `one of "a", "b"`.
func oneOf(values []string) string {
	q := make([]string, len(values))
	for i, v := range values {
		q[i] = strconv.Quote(v)
	}
	if len(q) == 1 {
		return q[0]
	}
	return "one of " + strings.Join(q, ", ")
}

// human formats a duration for people: "26h", "1m", "3h25m10s".
func human(d time.Duration) string {
	s := d.Round(time.Second).String()
	if strings.HasSuffix(s, "m0s") {
		s = s[:len(s)-2]
	}
	if strings.HasSuffix(s, "h0m") {
		s = s[:len(s)-2]
	}
	return s
}
