package decide_test

import (
	"testing"

	"github.com/sparr-dev/sparr/protocol"
	"github.com/sparr-dev/sparr/server/decide"
)

func TestJSONPointer(t *testing.T) {
	for _, tc := range []struct{ field, want string }{
		{"", ""},
		{"subject", "/subject"},
		{"request.subject", "/request/subject"},
		{"request.consent.evidence.reference", "/request/consent/evidence/reference"},
		{"tokens[0]", "/tokens/0"},
		{"checks[3].purpose", "/checks/3/purpose"},
		{"checks[12].token", "/checks/12/token"},
		{"grid[1][2]", "/grid/1/2"},
		{"a~b", "/a~0b"},
		{"a/b", "/a~1b"},
		{"~/", "/~0~1"},
		{"odd[x]", "/odd[x]"},
	} {
		if got := decide.JSONPointer(tc.field); got != tc.want {
			t.Errorf("JSONPointer(%q): got %q, want %q", tc.field, got, tc.want)
		}
	}
}

// A problem about a field points at it with a JSON Pointer and names it in
// its detail as a reader would.
func TestFieldProblemPoints(t *testing.T) {
	p := decide.FieldProblem(protocol.ProblemValidation, "checks[3].purpose", "%s is not a purpose", `"curiosity"`)
	if len(p.Errors) != 1 || p.Errors[0].Pointer != "/checks/3/purpose" || p.Errors[0].Parameter != "" {
		t.Errorf("got errors %+v, want one at pointer /checks/3/purpose", p.Errors)
	}
	if want := `checks[3].purpose: "curiosity" is not a purpose`; p.Detail != want {
		t.Errorf("got detail %q, want %q", p.Detail, want)
	}
	q := decide.ParamProblem(protocol.ProblemMalformedRequest, "limit", "ask for 1 to 1000 events")
	if len(q.Errors) != 1 || q.Errors[0].Parameter != "limit" || q.Errors[0].Pointer != "" {
		t.Errorf("got errors %+v, want one at parameter limit", q.Errors)
	}
	tp := decide.TokenProblem("tokens[1]", protocol.ErrInvalidToken)
	if len(tp.Errors) != 1 || tp.Errors[0].Pointer != "/tokens/1" {
		t.Errorf("got errors %+v, want one at pointer /tokens/1", tp.Errors)
	}
}
