package main

import (
	"encoding/json"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sparr-dev/sparr/internal/bench"
)

// TestBenchFlags: the bench command's flags, --quick and its defaults, and
// what it refuses.
func TestBenchFlags(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name  string
		args  []string
		check func(t *testing.T, cfg bench.Config)
	}{
		{"defaults", nil, func(t *testing.T, cfg bench.Config) {
			if cfg.Runs != 3 || cfg.Duration != 2*time.Second || cfg.Concurrency != 32 || !slices.Equal(cfg.Subscribers, []int{10, 100}) || !slices.Equal(cfg.Receivers, []int{10, 100, 500}) ||
				cfg.Events != 200 || cfg.CatchUp != 100_000 || cfg.ReplicaFlags != 100_000 || cfg.MemoryFlags != 1_000_000 || cfg.Dir != "" || cfg.Scenarios != nil {
				t.Errorf("got %+v, want the documented defaults", cfg)
			}
		}},
		{"quick", []string{"--quick"}, func(t *testing.T, cfg bench.Config) {
			if cfg.Duration != time.Second || !slices.Equal(cfg.Receivers, []int{10, 100}) || cfg.CatchUp != 10_000 || cfg.ReplicaFlags != 10_000 || cfg.MemoryFlags != 100_000 || cfg.Runs != 3 {
				t.Errorf("got %+v, want 1 s runs, receivers 10,100, 10 000 events to catch up and flags in the replica, and 100 000 flags for memory", cfg)
			}
		}},
		{"quick with a flag given", []string{"--quick", "--duration", "2s", "--receivers", "7"}, func(t *testing.T, cfg bench.Config) {
			if cfg.Duration != 2*time.Second || !slices.Equal(cfg.Receivers, []int{7}) || cfg.CatchUp != 10_000 {
				t.Errorf("got duration %v, receivers %v, catch-up %d; want the flags given to win over --quick", cfg.Duration, cfg.Receivers, cfg.CatchUp)
			}
		}},
		{"everything", []string{"--scenarios", " check, memory", "--runs", "5", "--concurrency", "4", "--subscribers", "2,3", "--events", "300", "--catch-up", "9",
			"--replica-flags", "8", "--memory-flags", "7", "--tmp", dir}, func(t *testing.T, cfg bench.Config) {
			if !slices.Equal(cfg.Scenarios, []string{"check", "memory"}) || cfg.Runs != 5 || cfg.Concurrency != 4 || !slices.Equal(cfg.Subscribers, []int{2, 3}) || cfg.Events != 300 ||
				cfg.CatchUp != 9 || cfg.ReplicaFlags != 8 || cfg.MemoryFlags != 7 || cfg.Dir != dir {
				t.Errorf("got %+v, want what the flags say", cfg)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, _, err := benchConfig(&env{stdout: &syncBuffer{}, stderr: &syncBuffer{}, getenv: environ()}, "bench", tc.args)
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, cfg)
		})
	}
	for _, tc := range []struct {
		args      []string
		fragments []string
	}{
		{[]string{"--runs", "2"}, []string{"--runs 2", "at least 3"}},
		{[]string{"--receivers", "10,many"}, []string{"--receivers"}},
		{[]string{"--subscribers", "0"}, []string{"--subscribers"}},
		{[]string{"--scenarios", "check,speed"}, []string{`no scenario "speed"`, "check,place"}},
		{[]string{"--events", "0"}, []string{"--events 0"}},
		{[]string{"--duration", "0s"}, []string{"--duration"}},
		{[]string{"--tmp", filepath.Join(dir, "missing")}, []string{"--tmp", "not a directory"}},
		{[]string{"fast"}, []string{`unexpected argument "fast"`}},
	} {
		code, stdout, stderr := sparr(t, nil, append([]string{"bench"}, tc.args...)...)
		wantError(t, code, stderr, 2, tc.fragments...)
		if stdout != "" {
			t.Errorf("bench %s: stdout %q, want nothing", strings.Join(tc.args, " "), stdout)
		}
	}
}

// TestBenchCommand runs sparr bench on a tiny configuration, as a table
// and as JSON.
func TestBenchCommand(t *testing.T) {
	if testing.Short() {
		t.Skip("starts hubs")
	}
	tiny := []string{"bench", "--duration", "100ms", "--receivers", "2", "--events", "3", "--tmp", t.TempDir()}

	code, stdout, stderr := sparr(t, nil, append(tiny, "--scenarios", "tokens,propagate")...)
	if code != 0 {
		t.Fatalf("bench: exit %d, stderr:\n%s", code, stderr)
	}
	lines := strings.Split(stdout, "\n")
	if !strings.HasPrefix(lines[0], "sparr bench, ") || !strings.Contains(stdout, "median of 3 runs") {
		t.Errorf("got a table starting %q, want the machine and how figures are made:\n%s", lines[0], stdout)
	}
	header := slices.IndexFunc(lines, func(l string) bool { return strings.HasPrefix(l, "SCENARIO") })
	if header < 0 {
		t.Fatalf("got no table header:\n%s", stdout)
	}
	var rows []string
	for _, l := range lines[header+1:] {
		if l == "" {
			break
		}
		rows = append(rows, l)
	}
	// tokens: batches of 1 and 100; propagate: p50, p99 and sustained.
	if len(rows) != 5 {
		t.Fatalf("got %d rows, want 5:\n%s", len(rows), stdout)
	}
	for _, r := range rows {
		if !strings.HasPrefix(r, "tokens ") && !strings.HasPrefix(r, "propagate ") || strings.Contains(r, "—") {
			t.Errorf("got row %q, want a tokens or propagate figure with its baseline and ratio", r)
		}
	}
	if !strings.Contains(stdout, "\ntook ") {
		t.Errorf("got no total time:\n%s", stdout)
	}
	if !strings.Contains(stderr, "== tokens:") || !strings.Contains(stderr, "== propagate:") {
		t.Errorf("got progress %q, want a line for each scenario", stderr)
	}

	code, stdout, stderr = sparr(t, nil, append(tiny, "--scenarios", "tokens", "--json")...)
	if code != 0 {
		t.Fatalf("bench --json: exit %d, stderr:\n%s", code, stderr)
	}
	var rep bench.Report
	if err := json.Unmarshal([]byte(stdout), &rep); err != nil {
		t.Fatalf("bench --json printed what does not parse: %v\n%s", err, stdout)
	}
	if len(rep.Rows) != 2 || rep.Config.Runs != 3 || rep.Config.Duration != 100*time.Millisecond || rep.Machine.Cores == 0 {
		t.Errorf("got a report with %d rows, config %+v, machine %+v; want 2 rows and the configuration run", len(rep.Rows), rep.Config, rep.Machine)
	}
	for _, r := range rep.Rows {
		if r.Scenario != "tokens" || r.Baseline == nil || r.Ratio <= 0 {
			t.Errorf("got row %+v, want a tokens figure with its baseline and ratio", r)
		}
	}
	var raw struct {
		Config map[string]any `json:"config"`
	}
	if err := json.Unmarshal([]byte(stdout), &raw); err != nil {
		t.Fatal(err)
	}
	if _, ok := raw.Config["Progress"]; ok {
		t.Errorf("the JSON report has the progress writer in its config:\n%s", stdout)
	}
}

// TestPrintBench: the table has a line per figure with its baseline and
// ratio, a dash where there is no baseline, no range for a figure
// measured once, and the skipped scenarios.
func TestPrintBench(t *testing.T) {
	rep := &bench.Report{
		Started: time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC), Took: 95 * time.Second,
		Config:  bench.Config{Runs: 3},
		Machine: bench.Machine{CPU: "Test CPU", Cores: 2, MemoryMB: 4096, OS: "linux/amd64", Go: "go1.26"},
		Rows: []bench.Row{
			{Scenario: "check", System: bench.Figure{Name: "checks/s, C=32", Unit: "req/s", Median: 10867.4, Min: 10607, Max: 10893},
				Baseline: &bench.Figure{Unit: "req/s", Median: 43799, Min: 39063, Max: 44964}, BaselineName: "bare net/http map lookup", Ratio: 0.2481},
			{Scenario: "replica", System: bench.Figure{Name: "replica bootstrap", Unit: "s", Median: 9.8, Min: 9.4, Max: 10.3}, Note: "measured alone"},
			{Scenario: "replica", System: bench.Figure{Name: "once", Unit: "s", Median: 17, Min: 17, Max: 17}, Note: "one run"},
		},
		Skipped: []bench.Skip{{Scenario: "memory", Reason: "not enough disk"}},
	}
	var out strings.Builder
	printBench(&out, rep)
	for _, want := range []string{
		"sparr bench, 2026-11-21T10:00:00Z, on Test CPU (2 cores, 4096 MiB), linux/amd64, go1.26\n",
		"each figure: median of 3 runs [min–max]; system and baseline runs alternate\n",
		"check     checks/s, C=32     10867 req/s [10607–10893]  43799 req/s [39063–44964]  0.25   bare net/http map lookup\n",
		"replica   replica bootstrap  9.80 s [9.40–10.3]         —                          —      measured alone\n",
		"replica   once               17.0 s                     —                          —      one run\n",
		"\nmemory: skipped: not enough disk\n",
		"\ntook 1m35s\n",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("the table lacks %q:\n%s", want, out.String())
		}
	}
}
