package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/sparr-dev/sparr/federation"
)

// TestBulkLoadLooksLikePlacements: a flag the bulk loader writes leaves the
// same buckets and keys, with values of about the same size, as a flag
// placed through the API, so that the memory and catch-up figures are those
// of real placements.
func TestBulkLoadLooksLikePlacements(t *testing.T) {
	h, err := startHub(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer h.close()
	placer, err := h.addMember("bank-placer", federation.RoleFlag)
	if err != nil {
		t.Fatal(err)
	}
	shape := func(do func()) map[string]int {
		before := map[string]bool{}
		h.st.Walk(func(b string, k, _ []byte) error { before[b+"/"+string(k)] = true; return nil })
		do()
		sizes := map[string]int{}
		h.st.Walk(func(b string, k, v []byte) error {
			if !before[b+"/"+string(k)] && b != "log_hashes" && b != "meta" {
				sizes[b] += len(k) + len(v)
			}
			return nil
		})
		return sizes
	}
	toks, err := h.tokens("shape", 1)
	if err != nil {
		t.Fatal(err)
	}
	real := shape(func() {
		body, err := placer.placeFlag(toks[0])
		if err != nil {
			t.Fatal(err)
		}
		if _, err := placer.do(http.MethodPost, "/v1/flags", "application/jose", body, http.StatusCreated); err != nil {
			t.Fatal(err)
		}
	})
	bulk := shape(func() {
		if err := bulkFlags(context.Background(), &Config{}, h, placer.id, 1); err != nil {
			t.Fatal(err)
		}
	})
	names := func(m map[string]int) []string {
		var out []string
		for k := range m {
			out = append(out, k)
		}
		sort.Strings(out)
		return out
	}
	if !slices.Equal(names(real), names(bulk)) {
		t.Fatalf("bulk load writes to %v, a placement to %v", names(bulk), names(real))
	}
	for b, n := range real {
		if m := bulk[b]; m < n*8/10 || m > n*12/10 {
			t.Errorf("bucket %s: bulk load writes %d bytes, a placement %d", b, m, n)
		}
	}
}

// TestRunSmall runs every scenario but memory at a tiny size: the tool
// works end to end and every row has its figures.
func TestRunSmall(t *testing.T) {
	if testing.Short() {
		t.Skip("starts many hubs")
	}
	var progress bytes.Buffer
	rep, err := Run(context.Background(), Config{
		Scenarios: []string{"check", "place", "propagate", "tokens", "catch-up"},
		Duration:  200e6, Concurrency: 4, Receivers: []int{3}, Events: 5, CatchUp: 300, Dir: t.TempDir(), Progress: &progress,
	})
	if err != nil {
		t.Fatalf("%v\n%s", err, progress.String())
	}
	seen := map[string]bool{}
	for _, r := range rep.Rows {
		seen[r.Scenario] = true
		if r.System.Median <= 0 || r.Baseline == nil || r.Baseline.Median <= 0 || r.Ratio <= 0 {
			t.Errorf("row %+v lacks a figure, its baseline or the ratio", r)
		}
		if r.System.Min > r.System.Median || r.System.Median > r.System.Max {
			t.Errorf("row %q: median %v outside [%v, %v]", r.System.Name, r.System.Median, r.System.Min, r.System.Max)
		}
	}
	for _, s := range []string{"check", "place", "propagate", "tokens", "catch-up"} {
		if !seen[s] {
			t.Errorf("no rows for scenario %s", s)
		}
	}
	if b, err := json.Marshal(rep); err != nil || !strings.Contains(string(b), `"ratio"`) {
		t.Errorf("report does not encode: %v", err)
	}
}
