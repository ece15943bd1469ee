package server_test

import (
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// dashboardPath is the Grafana dashboard docs/operations.md describes.
const dashboardPath = "../docs/grafana/sparr-dashboard.json"

var metricName = regexp.MustCompile(`sparr_[a-z_]+`)

// queries returns the strings under any of keys in a Grafana dashboard:
// "expr" for its panels' PromQL, "query" and "definition" for its
// variables'.
func queries(v any, keys ...string) []string {
	var out []string
	switch v := v.(type) {
	case map[string]any:
		for k, x := range v {
			switch s, ok := x.(string); {
			case ok && slices.Contains(keys, k):
				out = append(out, s)
			default:
				out = append(out, queries(x, keys...)...)
			}
		}
	case []any:
		for _, x := range v {
			out = append(out, queries(x, keys...)...)
		}
	}
	return out
}

// exported returns the series names a /metrics page in the Prometheus
// text format exports: each family's name, and a histogram's _bucket,
// _sum and _count.
func exported(page []byte) map[string]bool {
	names := map[string]bool{}
	for line := range strings.SplitSeq(string(page), "\n") {
		f := strings.Fields(line)
		if len(f) != 4 || f[0] != "#" || f[1] != "TYPE" {
			continue
		}
		names[f[2]] = true
		if f[3] == "histogram" || f[3] == "summary" {
			for _, s := range []string{"_bucket", "_sum", "_count"} {
				names[f[2]+s] = true
			}
		}
	}
	return names
}

// TestDashboardNamesExportedMetrics: every sparr_ metric the Grafana
// dashboard's queries name is one a live hub exports, so that no panel
// stays empty for a misspelt or renamed metric.
func TestDashboardNamesExportedMetrics(t *testing.T) {
	raw, err := os.ReadFile(dashboardPath)
	if err != nil {
		t.Fatal(err)
	}
	var dash map[string]any
	if err := json.Unmarshal(raw, &dash); err != nil {
		t.Fatalf("%s: %v", dashboardPath, err)
	}
	named := map[string]bool{}
	for _, q := range queries(dash, "expr", "query", "definition") {
		for _, n := range metricName.FindAllString(q, -1) {
			named[n] = true
		}
	}
	if len(named) < 10 {
		t.Fatalf("got %d metrics named in %s, want the dashboard's queries (at least 10)", len(named), dashboardPath)
	}
	have := exported(liveMetrics(t))
	for _, n := range slices.Sorted(maps.Keys(named)) {
		if !have[n] {
			t.Errorf("%s names %s, which the hub does not export", dashboardPath, n)
		}
	}
}

// TestDashboardQueriesParse has promtool parse every panel query of the
// Grafana dashboard, its variables replaced by values Grafana would give
// them, as recording rules. It is skipped, as TestPromtoolChecksMetrics
// is, without promtool.
func TestDashboardQueriesParse(t *testing.T) {
	promtool := needPromtool(t)
	raw, err := os.ReadFile(dashboardPath)
	if err != nil {
		t.Fatal(err)
	}
	var dash map[string]any
	if err := json.Unmarshal(raw, &dash); err != nil {
		t.Fatalf("%s: %v", dashboardPath, err)
	}
	vars := strings.NewReplacer("$__rate_interval", "5m", "$instance", ".*", "$member", ".*")
	var rules strings.Builder
	rules.WriteString("groups:\n- name: dashboard\n  rules:\n")
	exprs := queries(dash, "expr")
	for i, q := range exprs {
		quoted, _ := json.Marshal(vars.Replace(q))
		fmt.Fprintf(&rules, "  - record: dashboard_query_%d\n    expr: %s\n", i, quoted)
	}
	file := filepath.Join(t.TempDir(), "dashboard.rules.yml")
	if err := os.WriteFile(file, []byte(rules.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(promtool, "check", "rules", file).CombinedOutput(); err != nil {
		t.Errorf("promtool check rules on the dashboard's %d queries: %v\n%s", len(exprs), err, out)
	}
}
