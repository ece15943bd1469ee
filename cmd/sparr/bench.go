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

// benchConfig reads the bench command's flags: the configuration, and
// whether to print the report as JSON.
func benchConfig(e *env, name string, args []string) (bench.Config, bool, error) {
	fs := e.flags(name, "[flags]", benchAbout())
	f := &benchFlags{}
	f.define(fs)
	rest, err := fs.parse(args)
	if err != nil {
		return f.cfg, false, err
	}
	if err := noArgs(name, rest); err != nil {
		return f.cfg, false, err
	}
	if f.quick {
		f.quickDefaults(fs)
	}
	for _, check := range []func(name string) error{f.checkRuns, f.parseScenarios, f.parseCounts, f.checkSizes} {
		if err := check(name); err != nil {
			return f.cfg, false, err
		}
	}
	if f.cfg.Events < 200 && !f.quick && fs.given("events") {
		fmt.Fprintf(e.stderr, "note: p99 over fewer than 200 events is not reported in docs/performance.md\n")
	}
	return f.cfg, f.asJSON, nil
}

// benchAbout is the bench command's help text: what it does, and its
// scenarios.
func benchAbout() string {
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
	return about.String()
}

// benchFlags are the bench command's flags: most set cfg directly; the
// lists go into it once parsed.
type benchFlags struct {
	cfg                               bench.Config
	scenarios, subscribers, receivers string
	quick, asJSON                     bool
}

// define defines the flags in fs, with their defaults.
func (f *benchFlags) define(fs *flagSet) {
	cfg := &f.cfg
	fs.StringVar(&f.scenarios, "scenarios", "", "comma-separated `LIST` of scenarios to run; empty runs all")
	fs.IntVar(&cfg.Runs, "runs", 3, "measure each figure `N` times (at least 3) and report the median")
	fs.DurationVar(&cfg.Duration, "duration", 2*time.Second, "length of each throughput run, a `DURATION`")
	fs.IntVar(&cfg.Concurrency, "concurrency", 32, "clients `C` the check scenario keeps busy")
	fs.StringVar(&f.subscribers, "subscribers", "10,100", "comma-separated `COUNTS` of subscribed members for the place scenario")
	fs.StringVar(&f.receivers, "receivers", "10,100,500", "comma-separated receiver `COUNTS` for the propagate scenario")
	fs.IntVar(&cfg.Events, "events", 200, "events `N` each propagation run times")
	fs.IntVar(&cfg.CatchUp, "catch-up", 100_000, "events `N` a returning member has missed")
	fs.IntVar(&cfg.ReplicaFlags, "replica-flags", 100_000, "active flags `N` the replica scenario's replica holds")
	fs.IntVar(&cfg.MemoryFlags, "memory-flags", 1_000_000, "active flags `N` the memory scenario loads")
	fs.IntVar(&cfg.Kills, "kills", 10, "times `N` the cluster scenario kills the leader to time failover")
	fs.StringVar(&cfg.Dir, "tmp", "", "`DIR` for the temporary data files (removed at the end)")
	fs.note("tmp", "the system's temporary directory")
	fs.BoolVar(&f.asJSON, "json", false, "print the report as JSON, for tracking figures over time")
	fs.BoolVar(&f.quick, "quick", false, "a quick look: 1 s runs, receivers 10,100, 10 000 events to catch up and flags in the replica, 100 000 flags for memory, 3 kills of the cluster's leader")
}

// quickDefaults makes the defaults smaller for --quick; a flag given on
// the command line keeps its value.
func (f *benchFlags) quickDefaults(fs *flagSet) {
	if !fs.given("duration") {
		f.cfg.Duration = time.Second
	}
	if !fs.given("receivers") {
		f.receivers = "10,100"
	}
	if !fs.given("catch-up") {
		f.cfg.CatchUp = 10_000
	}
	if !fs.given("replica-flags") {
		f.cfg.ReplicaFlags = 10_000
	}
	if !fs.given("memory-flags") {
		f.cfg.MemoryFlags = 100_000
	}
	if !fs.given("kills") {
		f.cfg.Kills = 3
	}
}

// checkRuns checks that there are enough runs for a median, each of some
// length.
func (f *benchFlags) checkRuns(name string) error {
	if f.cfg.Runs < 3 {
		return usagef("%s: --runs %d: a median needs at least 3 runs", name, f.cfg.Runs)
	}
	if f.cfg.Duration <= 0 {
		return usagef("%s: --duration %s: want a positive duration", name, f.cfg.Duration)
	}
	return nil
}

// parseScenarios puts the scenarios of --scenarios in cfg, refusing one
// that does not exist.
func (f *benchFlags) parseScenarios(name string) error {
	known := map[string]bool{}
	var names []string
	for _, s := range bench.Scenarios() {
		known[s.Name] = true
		names = append(names, s.Name)
	}
	for _, s := range strings.Split(f.scenarios, ",") {
		if s = strings.TrimSpace(s); s == "" {
			continue
		}
		if !known[s] {
			return usagef("%s: --scenarios: no scenario %q; the scenarios are %s", name, s, strings.Join(names, ","))
		}
		f.cfg.Scenarios = append(f.cfg.Scenarios, s)
	}
	return nil
}

// parseCounts puts the counts of --subscribers and --receivers in cfg.
func (f *benchFlags) parseCounts(name string) error {
	for _, list := range []struct {
		flag, value, example string
		dst                  *[]int
	}{{"subscribers", f.subscribers, "10,100", &f.cfg.Subscribers}, {"receivers", f.receivers, "10,100,500", &f.cfg.Receivers}} {
		for _, s := range strings.Split(list.value, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(s))
			if err != nil || n < 1 {
				return usagef("%s: --%s %q: want counts such as %s", name, list.flag, list.value, list.example)
			}
			*list.dst = append(*list.dst, n)
		}
	}
	return nil
}

// checkSizes checks that every size of a scenario is positive, and that
// --tmp, if given, is a directory.
func (f *benchFlags) checkSizes(name string) error {
	cfg := &f.cfg
	for _, v := range []struct {
		flag string
		n    int
	}{{"concurrency", cfg.Concurrency}, {"events", cfg.Events}, {"catch-up", cfg.CatchUp}, {"replica-flags", cfg.ReplicaFlags}, {"memory-flags", cfg.MemoryFlags}, {"kills", cfg.Kills}} {
		if v.n < 1 {
			return usagef("%s: --%s %d: want a positive number", name, v.flag, v.n)
		}
	}
	if cfg.Dir != "" {
		if fi, err := os.Stat(cfg.Dir); err != nil || !fi.IsDir() {
			return usagef("%s: --tmp %q: not a directory", name, cfg.Dir)
		}
	}
	return nil
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
