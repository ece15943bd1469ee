package protocol

import (
	"regexp"
	"time"
)

// A ConsumerAuth is a member's signed statement of how the consumer it
// acts for authenticated, carried inside every submission a member makes
// on a consumer's behalf (their history, an access report, a dispute):
// the consumer never talks to the hub, so the hub holds the acting member
// to what it states. Method names the e-identification used ("bankid",
// "freja-eid", "branch-id-document"); At is when the consumer
// authenticated; Level, if given, the assurance level ("loa3",
// "eidas-high"); Reference the member's own reference to the
// authentication transaction, so that an auditor can follow it into the
// member's records. The hub refuses a statement older than its policy
// allows (15 minutes by default) or from the future.
type ConsumerAuth struct {
	Method    string      `json:"method"`
	At        NumericDate `json:"at"`
	Level     string      `json:"level,omitempty"`
	Reference string      `json:"reference"`
}

// codePattern is what a method or level looks like: a short lower-case
// code, never free text.
var codePattern = regexp.MustCompile(`^[a-z0-9][a-z0-9.-]{0,49}$`)

// check checks the statement's form; how fresh it must be is the hub's
// policy (see [ConsumerAuth.Age]).
func (a *ConsumerAuth) check() error {
	switch {
	case a == nil:
		return missingClaim("consumer_auth")
	case a.Method == "":
		return missingClaim("consumer_auth.method")
	case !codePattern.MatchString(a.Method):
		return invalidClaim("consumer_auth.method", "want a lower-case code of 1 to 50 letters, digits, '.' and '-', such as bankid")
	case a.Level != "" && !codePattern.MatchString(a.Level):
		return invalidClaim("consumer_auth.level", "want a lower-case code of 1 to 50 letters, digits, '.' and '-', such as loa3")
	case a.At == 0:
		return missingClaim("consumer_auth.at")
	case a.Reference == "":
		return missingClaim("consumer_auth.reference")
	case len(a.Reference) > 200:
		return invalidClaim("consumer_auth.reference", "at most 200 bytes")
	}
	return nil
}

// Age returns how long before now the consumer authenticated: negative
// for a statement from the future.
func (a *ConsumerAuth) Age(now time.Time) time.Duration { return now.Sub(a.At.Time()) }
