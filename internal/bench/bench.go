// Package bench is the load tool behind `sparr bench`: it starts real hubs
// on temporary data files and real loopback members, drives them, and
// measures each figure beside a baseline run on the same machine in the
// same run — a bare net/http server, raw bbolt commits, a raw fan-out, circl
// alone — so that what it reports is a ratio, which a noisy 2-core machine
// can be trusted with, as well as an absolute.
//
// Each scenario alternates system and baseline runs, so that drift (a
// neighbour's load, thermal throttling) hits both, and reports the median
// of at least three runs with the minimum and maximum.
package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"sort"
	"time"
)

// Config says what to run and how big. Zero fields mean the defaults.
type Config struct {
	// Scenarios to run, by name; empty means all, in the order of
	// [Scenarios].
	Scenarios []string
	// Runs is how many times each figure is measured (the median is
	// reported); default and minimum 3.
	Runs int
	// Duration of each throughput run; default 2 s.
	Duration time.Duration
	// Concurrency is how many clients the check scenario keeps busy;
	// default 32.
	Concurrency int
	// Subscribers are the numbers of subscribed members the place
	// scenario measures; default 10 and 100.
	Subscribers []int
	// Receivers are the fan-outs the propagate scenario measures; default
	// 10, 100 and 500.
	Receivers []int
	// Events is how many events each propagation run times, and how
	// many checks and denials each notices run times; default 200.
	Events int
	// NoticeMembers is how many members the notices scenario has on
	// loopback, banks A and B among them; default 100, at least 2.
	NoticeMembers int
	// CatchUp is how many events a returning member has missed; default
	// 100 000.
	CatchUp int
	// ReplicaFlags is how many active flags the replica scenario's
	// replica holds; default 100 000.
	ReplicaFlags int
	// MemoryFlags is how many active flags the memory scenario loads;
	// default 1 000 000. It needs about 5 KiB of free disk in Dir for
	// each (5 GB for the default), and is skipped if Dir has less.
	MemoryFlags int
	// Binary is the sparr binary the memory scenario starts as a separate
	// process, to measure its memory alone; default the running program.
	Binary string
	// ClusterNodes is how many nodes the cluster scenario runs; default 3.
	ClusterNodes int
	// Kills is how often the cluster scenario kills the leader to time
	// failover; default 10.
	Kills int
	// Dir holds the temporary data; default the system's temporary
	// directory.
	Dir string
	// Progress receives a line per step; nil discards them.
	Progress io.Writer `json:"-"`

	// flagSets are the data sets the replica and catch-up scenarios
	// share, by number of flags.
	flagSets map[int]*flagSet

	// memberTransport, if set, wraps the transport members' requests to
	// the hub take (tests: a transport that holds each request back).
	memberTransport func(http.RoundTripper) http.RoundTripper
}

func (c *Config) defaults() {
	if c.Runs < 3 {
		c.Runs = 3
	}
	if c.Duration == 0 {
		c.Duration = 2 * time.Second
	}
	if c.Concurrency == 0 {
		c.Concurrency = 32
	}
	if len(c.Subscribers) == 0 {
		c.Subscribers = []int{10, 100}
	}
	if len(c.Receivers) == 0 {
		c.Receivers = []int{10, 100, 500}
	}
	if c.Events == 0 {
		c.Events = 200
	}
	if c.NoticeMembers < 2 {
		c.NoticeMembers = 100
	}
	if c.CatchUp == 0 {
		c.CatchUp = 100_000
	}
	if c.ReplicaFlags == 0 {
		c.ReplicaFlags = 100_000
	}
	if c.MemoryFlags == 0 {
		c.MemoryFlags = 1_000_000
	}
	if c.ClusterNodes < 2 {
		c.ClusterNodes = 3
	}
	if c.Kills <= 0 {
		c.Kills = 10
	}
	if c.Progress == nil {
		c.Progress = io.Discard
	}
}

// A Figure is one measured quantity: the median of the runs, with the
// minimum and maximum.
type Figure struct {
	Name   string  `json:"name"`
	Unit   string  `json:"unit"`
	Median float64 `json:"median"`
	Min    float64 `json:"min"`
	Max    float64 `json:"max"`
	// Higher says whether more is better (throughput) or worse (latency,
	// memory).
	Higher bool `json:"higher_is_better"`
}

// A Row is a figure of the system beside the same figure of its baseline.
type Row struct {
	Scenario string  `json:"scenario"`
	System   Figure  `json:"system"`
	Baseline *Figure `json:"baseline,omitempty"`
	// BaselineName says what the baseline is.
	BaselineName string `json:"baseline_name,omitempty"`
	// Ratio is system / baseline of the medians.
	Ratio float64 `json:"ratio,omitempty"`
	Note  string  `json:"note,omitempty"`
}

// A Report is the result of a run.
type Report struct {
	Started time.Time     `json:"started"`
	Took    time.Duration `json:"took_ns"`
	Config  Config        `json:"config"`
	Rows    []Row         `json:"rows"`
	// Skipped are the scenarios that could not run here, and why.
	Skipped []Skip  `json:"skipped,omitempty"`
	Machine Machine `json:"machine"`
}

// A Skip is a scenario that did not run, and why.
type Skip struct {
	Scenario string `json:"scenario"`
	Reason   string `json:"reason"`
}

// A skipError is returned by a scenario that cannot run on this machine
// as configured: [Run] reports it and goes on with the others.
type skipError struct{ reason string }

func (e *skipError) Error() string { return "skipped: " + e.reason }

// A Scenario is one thing the tool measures.
type Scenario struct {
	Name  string
	About string
	run   func(ctx context.Context, cfg *Config) ([]Row, error)
	// flags says the scenario measures over a shared flag set
	// ([Config.flags]).
	flags bool
}

// Scenarios lists every scenario, in the order they run.
func Scenarios() []Scenario {
	return []Scenario{
		{"check", "authenticated POST /v1/check, 1 token per request, 1% flagged, durable log entry each; beside a bare net/http map lookup", runCheck, false},
		{"place", "durable flag placements with 10 and 100 subscribed members (--subscribers); beside raw bbolt group commits of the same bytes", runPlace, false},
		{"propagate", "one event to N loopback receivers (p50/p99), and sustained deliveries/s; beside a raw fan-out of the same bodies", runPropagate, false},
		{"notices", "access notice (bank B's check sent → notice at bank A) and denial (bank A's denial → bank B has it), p50/p99, 100 members; beside a raw commit and POST of the same records", runNotices, false},
		{"tokens", "POST /v1/tokens in batches of 1 and 100; beside circl evaluating in-process", runTokens, false},
		{"replica", "a member's in-process replica answering checks; beside a bare map lookup", runReplica, true},
		{"payee", "payment checks of payee tokens (1% reported), online and in the replica, and recall routing latency to the holder's receiver (p50/p99); beside a bare net/http map lookup, a bare map lookup, and a bare POST", runPayee, false},
		{"catch-up", "a member back after missing events converging through the feed; beside reading the same pages without verifying", runCatchUp, true},
		{"memory", "hub RSS and data-file size with many active flags", runMemory, false},
		{"border", "two peered hubs: a check of Norwegian tokens relayed by the Swedish hub (p50/p99), and a flag placed at the Norwegian hub reaching a Swedish member (p50/p99); beside the same check and flag on the Norwegian hub alone", runBorder, false},
		{"cluster", "checks and placements on 3 sparr serve --cluster processes beside one sparr serve process, and failover (SIGKILL of the leader → first write acknowledged) p50/p99 over --kills kills", runCluster, false},
	}
}

// Run runs the configured scenarios and reports every figure.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	cfg.defaults()
	if cfg.Dir == "" {
		cfg.Dir = os.TempDir()
	}
	dir, err := os.MkdirTemp(cfg.Dir, "sparr-bench-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	cfg.Dir = dir
	defer cfg.closeFlagSets()
	rep := &Report{Started: time.Now().UTC(), Config: cfg, Machine: describeMachine()}
	known := map[string]bool{}
	for _, s := range Scenarios() {
		known[s.Name] = true
	}
	for _, name := range cfg.Scenarios {
		if !known[name] {
			return nil, fmt.Errorf("unknown scenario %q", name)
		}
	}
	var selected []Scenario
	for _, s := range Scenarios() {
		if len(cfg.Scenarios) == 0 || slices.Contains(cfg.Scenarios, s.Name) {
			selected = append(selected, s)
		}
	}
	for i, s := range selected {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		fmt.Fprintf(cfg.Progress, "== %s: %s\n", s.Name, s.About)
		start := time.Now()
		rows, err := s.run(ctx, &cfg)
		if s.flags && !slices.ContainsFunc(selected[i+1:], func(s Scenario) bool { return s.flags }) {
			// The last to use the shared flag sets: close them now, so
			// that they do not weigh on the scenarios that follow.
			cfg.closeFlagSets()
		}
		if skip := (*skipError)(nil); errors.As(err, &skip) {
			rep.Skipped = append(rep.Skipped, Skip{Scenario: s.Name, Reason: skip.reason})
			fmt.Fprintf(cfg.Progress, "   skipped: %s\n", skip.reason)
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("scenario %s: %w", s.Name, err)
		}
		for i := range rows {
			rows[i].Scenario = s.Name
			if b := rows[i].Baseline; b != nil && b.Median != 0 {
				rows[i].Ratio = rows[i].System.Median / b.Median
			}
		}
		rep.Rows = append(rep.Rows, rows...)
		fmt.Fprintf(cfg.Progress, "   done in %s\n", time.Since(start).Round(100*time.Millisecond))
	}
	rep.Took = time.Since(rep.Started)
	return rep, nil
}

// figure summarizes runs of one quantity.
func figure(name, unit string, higher bool, values []float64) Figure {
	s := append([]float64(nil), values...)
	sort.Float64s(s)
	f := Figure{Name: name, Unit: unit, Higher: higher}
	if len(s) == 0 {
		return f
	}
	f.Min, f.Max = s[0], s[len(s)-1]
	if n := len(s); n%2 == 1 {
		f.Median = s[n/2]
	} else {
		f.Median = (s[n/2-1] + s[n/2]) / 2
	}
	return f
}

// percentile returns the p-th percentile (0–100) of durations, in
// milliseconds.
func percentile(ds []time.Duration, p float64) float64 {
	if len(ds) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), ds...)
	slices.Sort(s)
	i := int(float64(len(s)-1) * p / 100)
	return float64(s[i].Microseconds()) / 1000
}

// alternate runs system and baseline one after the other, runs times, and
// collects their measurements: drift hits both.
func alternate(runs int, system, baseline func() (map[string]float64, error)) (sys, base map[string][]float64, err error) {
	sys, base = map[string][]float64{}, map[string][]float64{}
	for range runs {
		for _, side := range []struct {
			f   func() (map[string]float64, error)
			dst map[string][]float64
		}{{system, sys}, {baseline, base}} {
			if side.f == nil {
				continue
			}
			m, err := side.f()
			if err != nil {
				return nil, nil, err
			}
			for k, v := range m {
				side.dst[k] = append(side.dst[k], v)
			}
		}
	}
	return sys, base, nil
}

// row makes a row of a measured quantity, with its baseline if measured.
func row(name, unit string, higher bool, sys, base map[string][]float64, key, baseName string) Row {
	r := Row{System: figure(name, unit, higher, sys[key])}
	if v, ok := base[key]; ok {
		b := figure(name, unit, higher, v)
		r.Baseline, r.BaselineName = &b, baseName
	}
	return r
}
