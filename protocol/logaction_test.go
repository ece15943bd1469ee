package protocol_test

import (
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/sparr-dev/sparr/protocol"
)

// TestLogActionsDocumented holds the table of actions in
// docs/regulator.md to protocol.LogActions: every action the hub writes is
// explained to regulators, and the table names no other.
func TestLogActionsDocumented(t *testing.T) {
	b, err := os.ReadFile("../docs/regulator.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	start := strings.Index(doc, "\n## Actions\n")
	if start < 0 {
		t.Fatal("docs/regulator.md has no section ## Actions")
	}
	section := doc[start+1:]
	if end := strings.Index(section[3:], "\n## "); end >= 0 {
		section = section[:end+3]
	}
	var inTable []protocol.LogAction
	cell := regexp.MustCompile("`([a-z][a-z0-9-]*)`")
	for _, line := range strings.Split(section, "\n") {
		if !strings.HasPrefix(line, "| `") {
			continue
		}
		first := strings.Split(line, "|")[1]
		for _, m := range cell.FindAllStringSubmatch(first, -1) {
			inTable = append(inTable, protocol.LogAction(m[1]))
		}
	}
	for _, a := range protocol.LogActions() {
		if !slices.Contains(inTable, a) {
			t.Errorf("action %s is not in docs/regulator.md's table", a)
		}
	}
	for _, a := range inTable {
		if !slices.Contains(protocol.LogActions(), a) {
			t.Errorf("docs/regulator.md's table has %s, which the hub does not write", a)
		}
	}
}
