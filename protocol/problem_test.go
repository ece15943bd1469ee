package protocol_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/sparr-dev/sparr/protocol"
)

func TestProblemCatalogue(t *testing.T) {
	seen := map[string]bool{}
	for _, p := range protocol.ProblemTypes() {
		if seen[p.URI] {
			t.Errorf("problem type %s listed twice", p.URI)
		}
		seen[p.URI] = true
		if !strings.HasPrefix(p.URI, "urn:sparr:problem:") || p.Slug() == "" {
			t.Errorf("problem type %q: want urn:sparr:problem:<slug>", p.URI)
		}
		if p.Title == "" || http.StatusText(p.Status) == "" || p.Status < 400 {
			t.Errorf("problem type %s: title %q, status %d", p.URI, p.Title, p.Status)
		}
		got, ok := protocol.LookupProblemType(p.URI)
		if !ok || got != p {
			t.Errorf("LookupProblemType(%s) = %+v, %v", p.URI, got, ok)
		}
	}
	if _, ok := protocol.LookupProblemType("about:blank"); ok {
		t.Error("LookupProblemType found about:blank")
	}
}

func TestProblemJSON(t *testing.T) {
	p := protocol.NewProblem(protocol.ProblemValidation, "thaw of %d hours is longer than the %d hours allowed", 96, 72)
	p.RequestID = "r1"
	b, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"type":"urn:sparr:problem:validation-failed","title":"Request not acceptable under the hub's policy","status":422,"detail":"thaw of 96 hours is longer than the 72 hours allowed","request_id":"r1"}`
	if string(b) != want {
		t.Errorf("got %s, want %s", b, want)
	}
	if got := p.Error(); !strings.Contains(got, "422") || !strings.Contains(got, "72 hours") {
		t.Errorf("Error() = %q, want status and detail", got)
	}
}
