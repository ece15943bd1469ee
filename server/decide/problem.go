package decide

import (
	"errors"
	"fmt"
	"slices"
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

// FieldProblem returns a problem of type t about one field of the body the
// member sent, named by its path as the detail shows it ("request.subject",
// "checks[3].purpose"); the problem points at it with [JSONPointer].
func FieldProblem(t protocol.ProblemType, field, format string, args ...any) *protocol.Problem {
	return aboutOne(t, field, protocol.ProblemField{Pointer: JSONPointer(field), Detail: fmt.Sprintf(format, args...)})
}

// ParamProblem returns a problem of type t about the query parameter name.
func ParamProblem(t protocol.ProblemType, name, format string, args ...any) *protocol.Problem {
	return aboutOne(t, name, protocol.ProblemField{Parameter: name, Detail: fmt.Sprintf(format, args...)})
}

// aboutOne returns a problem of type t about the one field f, which the
// detail names as named.
func aboutOne(t protocol.ProblemType, named string, f protocol.ProblemField) *protocol.Problem {
	p := problemf(t, "%s: %s", named, f.Detail)
	p.Errors = []protocol.ProblemField{f}
	return p
}

// TokenProblem turns a token that cannot be used into a problem about the
// field of the body that holds it, named as for [FieldProblem].
func TokenProblem(field string, err error) *protocol.Problem {
	p := problemf(protocol.ProblemInvalidToken, "%s: %v", field, err)
	p.Errors = []protocol.ProblemField{{Pointer: JSONPointer(field), Detail: strings.TrimPrefix(err.Error(), protocol.ErrInvalidToken.Error()+": ")}}
	return p
}

// JSONPointer turns the path of a field as a problem's detail names it —
// names joined by ".", an array index in brackets: "request.subject",
// "checks[3].purpose", "tokens[0]" — into the RFC 6901 JSON Pointer to it
// in the body the member sent: "/request/subject", "/checks/3/purpose",
// "/tokens/0". A "~" or "/" in a name is escaped as "~0" or "~1". The empty
// path is the whole body, "".
func JSONPointer(field string) string {
	if field == "" {
		return ""
	}
	var b strings.Builder
	for name := range strings.SplitSeq(field, ".") {
		var indexes []string
		for {
			open := strings.LastIndexByte(name, '[')
			if open < 0 || !strings.HasSuffix(name, "]") {
				break
			}
			i := name[open+1 : len(name)-1]
			if _, err := strconv.ParseUint(i, 10, 0); err != nil {
				break
			}
			indexes = append(indexes, i)
			name = name[:open]
		}
		if name != "" || len(indexes) == 0 {
			b.WriteString("/" + pointerEscaper.Replace(name))
		}
		for _, i := range slices.Backward(indexes) {
			b.WriteString("/" + i)
		}
	}
	return b.String()
}

// pointerEscaper escapes a name as a reference token of a JSON Pointer
// (RFC 6901, section 3): "~" first, then "/".
var pointerEscaper = strings.NewReplacer("~", "~0", "/", "~1")

// consentProblem turns a consent policy refusal into a problem.
func consentProblem(err error) *protocol.Problem {
	var ce *consent.Error
	if errors.As(err, &ce) {
		p := problemf(protocol.ProblemInvalidConsent, "%v", err)
		field := "request.consent"
		if ce.Field != "" {
			field += "." + ce.Field
		}
		p.Errors = []protocol.ProblemField{{Pointer: JSONPointer(field), Detail: ce.Detail}}
		return p
	}
	return problemf(protocol.ProblemInvalidConsent, "%v", err)
}
