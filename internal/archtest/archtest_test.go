// Package archtest checks that dependencies between this module's packages
// point the way docs/architecture.md says: protocol imports nothing of ours,
// the member SDK imports only protocol (never the hub), only the storage
// packages import bbolt, only the hub imports gin, and nothing imports cmd.
// Test files are held to the same rules, except where a rule says why not.
package archtest

import (
	"go/parser"
	"go/token"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

const module = "github.com/sparr-dev/sparr"

// A rule forbids packages matching From to import packages matching To,
// except packages matching AllowFrom (as importers) and imports matching
// AllowTo. Patterns are module-relative paths; "x/..." means x and
// everything below it; a pattern with a dot in its first element is a path
// outside the module. A rule holds for _test.go files too unless CodeOnly.
type rule struct {
	From, To  string
	AllowFrom []string
	AllowTo   []string
	CodeOnly  bool
	Why       string
}

var rules = []rule{
	{From: "protocol", To: "./...", Why: "protocol is the wire format; it imports no package of this module"},
	{From: "protocol/api/...", To: "./...", AllowTo: []string{"protocol"}, Why: "the API's documents build on the wire format alone"},
	{From: "client/...", To: "./...", AllowTo: []string{"protocol/...", "client"}, CodeOnly: true,
		Why: "the member SDK imports only protocol of ours, never the hub (and client/replica the client it extends); its tests may start a real hub"},
	{From: "consent/...", To: "./...", AllowTo: []string{"protocol/..."}, Why: "consent imports only protocol"},
	{From: "federation/...", To: "./...", AllowTo: []string{"protocol/..."}, Why: "federation imports only protocol"},
	{From: "server/store/...", To: "./...", AllowTo: []string{"protocol/...", "federation/...", "server/state"}, Why: "the hub's store imports only protocol, federation and the state it applies"},
	{From: "server/state/...", To: "./...", AllowTo: []string{"protocol/...", "federation/..."}, Why: "the hub's state and commands build on protocol and federation only"},
	{From: "server/decide/...", To: "./...", AllowTo: []string{"protocol/...", "consent/...", "federation/...", "server/state"},
		Why: "the decision layer takes state and returns commands; it never touches storage or HTTP"},
	{From: "server/decide/...", To: "github.com/gin-gonic/gin/...", Why: "the decision layer has no HTTP"},
	{From: "server/state/...", To: "github.com/gin-gonic/gin/...", Why: "the hub's state has no HTTP"},
	{From: "server/keyring/...", To: "./...", AllowTo: []string{"protocol/..."}, Why: "the hub's keyring imports only protocol"},
	{From: "server/cluster/...", To: "./...", AllowTo: []string{"protocol/...", "federation/...", "server/state", "server/store"}, CodeOnly: true,
		Why: "the cluster replicates the store's commands; it decides nothing and has no HTTP"},
	{From: "server/cluster/...", To: "github.com/gin-gonic/gin/...", Why: "the cluster has no HTTP"},
	{From: "./...", To: "github.com/hashicorp/raft/...", AllowFrom: []string{"server/cluster/..."}, CodeOnly: true,
		Why: "only server/cluster speaks raft (hashicorp/raft, with raft-boltdb/v2, which imports bbolt itself for the raft log)"},
	{From: "server/...", To: "client/...", AllowFrom: []string{"server/hubtest/..."}, CodeOnly: true,
		Why: "the hub never imports the member SDK (server/hubtest, which plays members in tests, and the hub's tests use it as members do)"},
	{From: "./...", To: "go.etcd.io/bbolt/...", AllowFrom: []string{"server/store/...", "client/replica/...", "internal/bench/..."}, CodeOnly: true,
		Why: "only server/store and client/replica import bbolt (and the load tool, for its raw-bbolt baseline); tests may, to open or tamper with a data file"},
	{From: "./...", To: "github.com/gin-gonic/gin/...", AllowFrom: []string{"server/...", "cmd/..."}, Why: "only the hub imports gin (and cmd, to set gin's process globals once)"},
	{From: "./...", To: "cmd/...", Why: "nothing imports cmd"},
	{From: "internal/archtest/...", To: "./...", Why: "the architecture test reads the source; it imports none of it"},
	{From: "internal/procnode/...", To: "./...", Why: "procnode runs sparr processes from their binary; it imports no package of ours"},
	{From: "internal/console/...", To: "./...", AllowTo: []string{"protocol/...", "client"}, CodeOnly: true,
		Why: "the regulator's console reads the hub through the SDK, as a regulator would, and trusts none of the hub's code; its tests run a real hub"},
}

// A graph maps each package (module-relative directory, "." for the root)
// to the import paths of its files: of its non-test files, or of its
// _test.go files.
type graph map[string][]string

func TestDependenciesPointDown(t *testing.T) {
	code, tests, err := loadGraphs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	if len(code["protocol"]) == 0 || len(tests["protocol"]) == 0 {
		t.Fatal("found no imports for package protocol or its tests: is the module root right?")
	}
	for _, v := range violations(code, tests, rules) {
		t.Error(v)
	}
}

// TestRulesBite checks the checker on a made-up module, so that a broken
// matcher cannot pass silently.
func TestRulesBite(t *testing.T) {
	code := graph{
		"protocol":       {"encoding/json", module + "/consent"},
		"client":         {module + "/protocol", module + "/server/store", module + "/federation", module + "/client/replica"},
		"client/replica": {"go.etcd.io/bbolt", module + "/client", module + "/protocol"},
		"server/store":   {"go.etcd.io/bbolt", module + "/federation", module + "/consent"},
		"server":         {"github.com/gin-gonic/gin", module + "/server/store"},
		"federation":     {module + "/protocol", "github.com/gin-gonic/gin/binding"},
		"consent":        {module + "/protocol"},
		"server/api":     {module + "/cmd/sparr"},
		"server/keyring": {module + "/protocol", module + "/client"},
		"cmd/sparr":      {module + "/server", "go.etcd.io/bbolt"},
	}
	tests := graph{
		"protocol":  {module + "/protocol", module + "/server/hubtest"},
		"client":    {module + "/server", module + "/server/hubtest"},
		"cmd/sparr": {"go.etcd.io/bbolt"},
		"consent":   {"github.com/gin-gonic/gin"},
	}
	got := violations(code, tests, rules)
	want := []string{
		"client imports " + module + "/server/store",
		"client imports " + module + "/federation",
		"client imports " + module + "/client/replica",
		"cmd/sparr imports go.etcd.io/bbolt",
		"federation imports github.com/gin-gonic/gin/binding",
		"protocol imports " + module + "/consent",
		"server/api imports " + module + "/cmd/sparr",
		"server/keyring imports " + module + "/client: the hub's keyring",
		"server/keyring imports " + module + "/client: the hub never",
		"server/store imports " + module + "/consent",
		"consent (tests) imports github.com/gin-gonic/gin",
		"protocol (tests) imports " + module + "/server/hubtest",
	}
	if len(got) != len(want) {
		t.Fatalf("got %d violations %q, want %d", len(got), got, len(want))
	}
	for i := range want {
		if !strings.Contains(want[i], ": ") {
			want[i] += ": " // the import ends there, and the reason follows
		}
		if !strings.HasPrefix(got[i], want[i]) {
			t.Errorf("violation %d: got %q, want it to start %q", i, got[i], want[i])
		}
	}
}

// violations applies rules to the imports of non-test files (code) and
// those that hold for tests to the imports of _test.go files (tests).
func violations(code, tests graph, rules []rule) []string {
	var forTests []rule
	for _, r := range rules {
		if !r.CodeOnly {
			forTests = append(forTests, r)
		}
	}
	return append(check(code, rules, ""), check(tests, forTests, " (tests)")...)
}

func check(g graph, rules []rule, label string) []string {
	var out []string
	for _, pkg := range slices.Sorted(maps.Keys(g)) {
		for _, imp := range g[pkg] {
			target := imp
			if imp == module || strings.HasPrefix(imp, module+"/") {
				target = strings.TrimPrefix(strings.TrimPrefix(imp, module), "/")
				if target == "" {
					target = "."
				}
			} else if !strings.Contains(strings.Split(imp, "/")[0], ".") {
				continue // standard library
			}
			for _, r := range rules {
				if !match(r.From, pkg) || !matchTarget(r.To, imp, target) || target == pkg {
					continue
				}
				allowed := slices.ContainsFunc(r.AllowFrom, func(a string) bool { return match(a, pkg) }) ||
					slices.ContainsFunc(r.AllowTo, func(a string) bool { return matchTarget(a, imp, target) })
				if !allowed {
					out = append(out, pkg+label+" imports "+imp+": "+r.Why)
				}
			}
		}
	}
	return out
}

// match reports whether a module-relative package matches a pattern.
func match(pattern, pkg string) bool {
	if pattern == "./..." {
		return true
	}
	if base, ok := strings.CutSuffix(pattern, "/..."); ok {
		return pkg == base || strings.HasPrefix(pkg, base+"/")
	}
	return pkg == pattern
}

// matchTarget matches an import: patterns for outside paths against the
// full path, module patterns against the module-relative one.
func matchTarget(pattern, imp, rel string) bool {
	first := strings.Split(pattern, "/")[0]
	if strings.Contains(first, ".") && first != "." {
		return match(pattern, imp)
	}
	inModule := imp == module || strings.HasPrefix(imp, module+"/")
	return inModule && match(pattern, rel)
}

// loadGraphs reads the imports of every package under root: those of its
// non-test files, and those of its _test.go files.
func loadGraphs(root string) (code, tests graph, err error) {
	code, tests = graph{}, graph{}
	fset := token.NewFileSet()
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		name := d.Name()
		if d.IsDir() {
			if path != root && (strings.HasPrefix(name, ".") || name == "testdata" || name == "node_modules") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(name, ".go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, parser.ImportsOnly)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, filepath.Dir(path))
		rel = filepath.ToSlash(rel)
		g := code
		if strings.HasSuffix(name, "_test.go") {
			g = tests
		}
		if _, ok := g[rel]; !ok {
			g[rel] = nil
		}
		for _, imp := range f.Imports {
			p, _ := strconv.Unquote(imp.Path.Value)
			g[rel] = append(g[rel], p)
		}
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		return nil, nil, err
	}
	return code, tests, nil
}
