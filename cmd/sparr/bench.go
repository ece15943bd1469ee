package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/sparr-dev/sparr/internal/bench"
)

func runBench(ctx context.Context, e *env, name string, args []string) error {
	cfg, asJSON, err := benchConfig(e, name, args)
	if err != nil {
		return err
	}
	if cfg.Binary, err = os.Executable(); err != nil {
		return fmt.Errorf("find the sparr binary for the memory scenario: %w", err)
	}
	cfg.Progress = e.stderr
	ginMode.Do(func() { gin.SetMode(gin.ReleaseMode) })
	rep, err := bench.Run(ctx, cfg)
	if err != nil {
		return err
	}
	if asJSON {
		enc := json.NewEncoder(e.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	printBench(e.stdout, rep)
	return nil
}

// benchConfig reads the bench command's flags.
func benchConfig(e *env, name string, args []string) (cfg bench.Config, asJSON bool, err error) {
	var about strings.Builder
	about.WriteString("Bench starts real hubs on temporary data files and real loopback members, drives\n")
	about.WriteString("them, and prints each figure beside a baseline measured in the same run, with the\n")
	about.WriteString("ratio. System and baseline runs alternate; each figure is the median of --runs runs\n")
	about.WriteString("[min–max]. The scenarios:\n")
	for _, s := range bench.Scenarios() {
		fmt.Fprintf(&about, "  %-9s %s\n", s.Name, s.About)
	}
	about.WriteString("The memory scenario needs about 5 GB of free disk in --tmp for 1 000 000 flags;\n")
	about.WriteString("with less it is skipped. docs/performance.md records the latest figures and how\n")
	about.WriteString("they were measured.")
	fs := e.flags(name, "[flags]", about.String())
	var (
		scenarios, subscribers, receivers string
		quick                             bool
	)
	fs.StringVar(&scenarios, "scenarios", "", "comma-separated `LIST` of scenarios to run; empty runs all")
	fs.IntVar(&cfg.Runs, "runs", 3, "measure each figure `N` times (at least 3) and report the median")
	fs.DurationVar(&cfg.Duration, "duration", 2*time.Second, "length of each throughput run, a `DURATION`")
	fs.IntVar(&cfg.Concurrency, "concurrency", 32, "clients `C` the check scenario keeps busy")
	fs.StringVar(&subscribers, "subscribers", "10,100", "comma-separated `COUNTS` of subscribed members for the place scenario")
	fs.StringVar(&receivers, "receivers", "10,100,500", "comma-separated receiver `COUNTS` for the propagate scenario")
	fs.IntVar(&cfg.Events, "events", 200, "events `N` each propagation run times")
	fs.IntVar(&cfg.CatchUp, "catch-up", 100_000, "events `N` a returning member has missed")
	fs.IntVar(&cfg.ReplicaFlags, "replica-flags", 100_000, "active flags `N` the replica scenario's replica holds")
	fs.IntVar(&cfg.MemoryFlags, "memory-flags", 1_000_000, "active flags `N` the memory scenario loads")
	fs.StringVar(&cfg.Dir, "tmp", "", "`DIR` for the temporary data files (removed at the end)")
	fs.note("tmp", "the system's temporary directory")
	fs.BoolVar(&asJSON, "json", false, "print the report as JSON, for tracking figures over time")
	fs.BoolVar(&quick, "quick", false, "a quick look: 1 s runs, receivers 10,100, 10 000 events to catch up and flags in the replica, 100 000 flags for memory")
	rest, err := fs.parse(args)
	if err != nil {
		return cfg, false, err
	}
	if err := noArgs(name, rest); err != nil {
		return cfg, false, err
	}
	if quick {
		if !fs.given("duration") {
			cfg.Duration = time.Second
		}
		if !fs.given("receivers") {
			receivers = "10,100"
		}
		if !fs.given("catch-up") {
			cfg.CatchUp = 10_000
		}
		if !fs.given("replica-flags") {
			cfg.ReplicaFlags = 10_000
		}
		if !fs.given("memory-flags") {
			cfg.MemoryFlags = 100_000
		}
	}
	if cfg.Runs < 3 {
		return cfg, false, usagef("%s: --runs %d: a median needs at least 3 runs", name, cfg.Runs)
	}
	if cfg.Duration <= 0 {
		return cfg, false, usagef("%s: --duration %s: want a positive duration", name, cfg.Duration)
	}
	known := map[string]bool{}
	var names []string
	for _, s := range bench.Scenarios() {
		known[s.Name] = true
		names = append(names, s.Name)
	}
	for _, s := range strings.Split(scenarios, ",") {
		if s = strings.TrimSpace(s); s == "" {
			continue
		}
		if !known[s] {
			return cfg, false, usagef("%s: --scenarios: no scenario %q; the scenarios are %s", name, s, strings.Join(names, ","))
		}
		cfg.Scenarios = append(cfg.Scenarios, s)
	}
	for _, list := range []struct {
		flag, value, example string
		dst                  *[]int
	}{{"subscribers", subscribers, "10,100", &cfg.Subscribers}, {"receivers", receivers, "10,100,500", &cfg.Receivers}} {
		for _, s := range strings.Split(list.value, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(s))
			if err != nil || n < 1 {
				return cfg, false, usagef("%s: --%s %q: want counts such as %s", name, list.flag, list.value, list.example)
			}
			*list.dst = append(*list.dst, n)
		}
	}
	for _, v := range []struct {
		flag string
		n    int
	}{{"concurrency", cfg.Concurrency}, {"events", cfg.Events}, {"catch-up", cfg.CatchUp}, {"replica-flags", cfg.ReplicaFlags}, {"memory-flags", cfg.MemoryFlags}} {
		if v.n < 1 {
			return cfg, false, usagef("%s: --%s %d: want a positive number", name, v.flag, v.n)
		}
	}
	if cfg.Dir != "" {
		if fi, err := os.Stat(cfg.Dir); err != nil || !fi.IsDir() {
			return cfg, false, usagef("%s: --tmp %q: not a directory", name, cfg.Dir)
		}
	}
	if cfg.Events < 200 && !quick && fs.given("events") {
		fmt.Fprintf(e.stderr, "note: p99 over fewer than 200 events is not reported in docs/performance.md\n")
	}
	return cfg, asJSON, nil
}

// printBench prints the report as a table: each figure, its baseline, and
// the ratio.
func printBench(w io.Writer, rep *bench.Report) {
	m := rep.Machine
	fmt.Fprintf(w, "sparr bench, %s, on %s (%d cores, %d MiB), %s, %s\n", rep.Started.Format(time.RFC3339), m.CPU, m.Cores, m.MemoryMB, m.OS, m.Go)
	fmt.Fprintf(w, "each figure: median of %d runs [min–max]; system and baseline runs alternate\n\n", rep.Config.Runs)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "SCENARIO\tFIGURE\tSPÄRR\tBASELINE\tRATIO\tBASELINE IS")
	for _, r := range rep.Rows {
		base, ratio := "—", "—"
		if r.Baseline != nil {
			base = formatFigure(*r.Baseline)
			ratio = fmt.Sprintf("%.2f", r.Ratio)
		}
		note := r.BaselineName
		if r.Note != "" {
			note = strings.TrimSpace(note + " " + r.Note)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", r.Scenario, r.System.Name, formatFigure(r.System), base, ratio, note)
	}
	tw.Flush()
	for _, s := range rep.Skipped {
		fmt.Fprintf(w, "\n%s: skipped: %s\n", s.Scenario, s.Reason)
	}
	fmt.Fprintf(w, "\ntook %s\n", rep.Took.Round(time.Second))
}

// formatFigure prints a figure with its range; a figure measured once (a
// file's size, the replica's one bootstrap) has none.
func formatFigure(f bench.Figure) string {
	if f.Min == f.Max {
		return fmt.Sprintf("%s %s", num(f.Median), f.Unit)
	}
	return fmt.Sprintf("%s %s [%s–%s]", num(f.Median), f.Unit, num(f.Min), num(f.Max))
}

// num formats a figure with three significant digits.
func num(v float64) string {
	switch {
	case v >= 100:
		return strconv.FormatFloat(v, 'f', 0, 64)
	case v >= 10:
		return strconv.FormatFloat(v, 'f', 1, 64)
	case v >= 1:
		return strconv.FormatFloat(v, 'f', 2, 64)
	}
	return strconv.FormatFloat(v, 'g', 3, 64)
}
