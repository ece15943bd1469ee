package decide

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/sparr-dev/sparr/consent"
	"github.com/sparr-dev/sparr/protocol"
)

// maxQuoted is the most runes of a member's input a problem quotes.
const maxQuoted = 64

// Quote quotes s, a value a member sent, for a problem's detail: in Go
// syntax, cut after maxQuoted runes with "…", so that no answer or stored
// refusal carries more of a member's input than it needs to say what was
// wrong.
func Quote(s string) string {
	if utf8.RuneCountInString(s) <= maxQuoted {
		return strconv.Quote(s)
	}
	r := []rune(s)
	return strconv.Quote(string(r[:maxQuoted])) + "…"
}

// problemf returns a problem of type t.
func problemf(t protocol.ProblemType, format string, args ...any) *protocol.Problem {
	return protocol.NewProblem(t, format, args...)
}

// FieldProblem returns a problem of type t about one field of the
// request, named as a JSON pointer or query parameter.
func FieldProblem(t protocol.ProblemType, field, format string, args ...any) *protocol.Problem {
	p := problemf(t, "%s: %s", field, fmt.Sprintf(format, args...))
	p.Errors = []protocol.ProblemField{{Pointer: field, Detail: fmt.Sprintf(format, args...)}}
	return p
}

// TokenProblem turns a token that cannot be used into a problem.
func TokenProblem(field string, err error) *protocol.Problem {
	p := problemf(protocol.ProblemInvalidToken, "%s: %v", field, err)
	p.Errors = []protocol.ProblemField{{Pointer: field, Detail: strings.TrimPrefix(err.Error(), protocol.ErrInvalidToken.Error()+": ")}}
	return p
}

// consentProblem turns a consent policy refusal into a problem.
func consentProblem(err error) *protocol.Problem {
	var ce *consent.Error
	if errors.As(err, &ce) {
		p := problemf(protocol.ProblemInvalidConsent, "%v", err)
		p.Errors = []protocol.ProblemField{{Pointer: "request.consent." + ce.Field, Detail: ce.Detail}}
		return p
	}
	return problemf(protocol.ProblemInvalidConsent, "%v", err)
}
