// Package archtest checks that dependencies between this module's packages
// point the way docs/architecture.md says: protocol imports nothing of ours,
// the client never imports the hub, only the storage packages import bbolt,
// only the hub imports gin, and nothing imports cmd.
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
// except for the packages in Allow. Patterns are module-relative paths;
// "x/..." means x and everything below it; a pattern with a dot in its first
// element is a path outside the module.
type rule struct {
	From, To string
	Allow    []string
	Why      string
}

var rules = []rule{
	{From: "protocol/...", To: "./...", Why: "protocol is the wire format; it imports no package of this module"},
	{From: "client/...", To: "server/...", Why: "the member SDK never imports the hub"},
	{From: "consent/...", To: "./...", Allow: []string{"protocol/..."}, Why: "consent imports only protocol"},
	{From: "federation/...", To: "./...", Allow: []string{"protocol/..."}, Why: "federation imports only protocol"},
	{From: "./...", To: "go.etcd.io/bbolt/...", Allow: []string{"server/store/...", "client/replica/...", "internal/bench/..."}, Why: "only server/store and client/replica import bbolt (and the load tool, for its raw-bbolt baseline)"},
	{From: "./...", To: "github.com/gin-gonic/gin/...", Allow: []string{"server/...", "cmd/..."}, Why: "only the hub imports gin (and cmd, to set gin's process globals once)"},
	{From: "./...", To: "cmd/...", Why: "nothing imports cmd"},
}

// imports maps each package (module-relative directory, "." for the root)
// to the import paths of its non-test files.
type graph map[string][]string

func TestDependenciesPointDown(t *testing.T) {
	g, err := loadGraph(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	if len(g["protocol"]) == 0 {
		t.Fatal("found no imports for package protocol: is the module root right?")
	}
	for _, v := range violations(g, rules) {
		t.Error(v)
	}
}

// TestRulesBite checks the checker on a made-up module, so that a broken
// matcher cannot pass silently.
func TestRulesBite(t *testing.T) {
	g := graph{
		"protocol":       {"encoding/json", module + "/consent"},
		"client":         {module + "/protocol", module + "/server/store"},
		"client/replica": {"go.etcd.io/bbolt"},
		"server/store":   {"go.etcd.io/bbolt"},
		"server":         {"github.com/gin-gonic/gin", module + "/server/store"},
		"federation":     {module + "/protocol", "github.com/gin-gonic/gin/binding"},
		"consent":        {module + "/protocol"},
		"server/api":     {module + "/cmd/sparr"},
	}
	got := violations(g, rules)
	want := []string{
		"client imports " + module + "/server/store",
		"federation imports github.com/gin-gonic/gin/binding",
		"protocol imports " + module + "/consent",
		"server/api imports " + module + "/cmd/sparr",
	}
	if len(got) != len(want) {
		t.Fatalf("got %d violations %q, want %d", len(got), got, len(want))
	}
	for i := range want {
		if !strings.HasPrefix(got[i], want[i]) {
			t.Errorf("violation %d: got %q, want it to start %q", i, got[i], want[i])
		}
	}
}

func violations(g graph, rules []rule) []string {
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
				allowed := false
				for _, a := range r.Allow {
					allowed = allowed || match(a, pkg) || matchTarget(a, imp, target)
				}
				if !allowed {
					out = append(out, pkg+" imports "+imp+": "+r.Why)
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

func loadGraph(root string) (graph, error) {
	g := graph{}
	fset := token.NewFileSet()
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
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
		if !strings.HasSuffix(name, ".go") || strings.HasSuffix(name, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, parser.ImportsOnly)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, filepath.Dir(path))
		rel = filepath.ToSlash(rel)
		for _, imp := range f.Imports {
			p, _ := strconv.Unquote(imp.Path.Value)
			g[rel] = append(g[rel], p)
		}
		if _, ok := g[rel]; !ok {
			g[rel] = nil
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		return nil, err
	}
	return g, nil
}
