package bench

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/sparr-dev/sparr/client"
	"github.com/sparr-dev/sparr/client/replica"
	"github.com/sparr-dev/sparr/protocol"
	"github.com/sparr-dev/sparr/protocol/api"
)

// A flagSet is a hub holding n active flags, placed by one member
// straight into its store (bulkFlags), and a replica of another member,
// the checker, as it was before they were placed. The replica and catch-up
// scenarios both measure over one: the replica scenario checks against
// the flags, the catch-up scenario has the replica come back after missing
// them. When they ask for the same number of flags (by default they do)
// they share one, which [Run] loads once and closes at the end.
type flagSet struct {
	h       *hub
	checker *member
	// before is the checker's replica file, synced before the flags were
	// placed, at cursor.
	before string
	cursor uint64
}

// flags returns the flag set of n flags, loading it the first time.
func (c *Config) flags(ctx context.Context, n int) (*flagSet, error) {
	if fs := c.flagSets[n]; fs != nil {
		return fs, nil
	}
	h, err := startHub(c)
	if err != nil {
		return nil, err
	}
	fs, err := loadFlagSet(ctx, c, h, n)
	if err != nil {
		h.close()
		return nil, err
	}
	if c.flagSets == nil {
		c.flagSets = map[int]*flagSet{}
	}
	c.flagSets[n] = fs
	return fs, nil
}

func loadFlagSet(ctx context.Context, cfg *Config, h *hub, n int) (*flagSet, error) {
	placer, err := h.addMember("bank-placer", api.RoleFlag)
	if err != nil {
		return nil, err
	}
	checker, err := h.addMember("bank-checker", api.RoleCheck)
	if err != nil {
		return nil, err
	}
	c, err := checker.client()
	if err != nil {
		return nil, err
	}
	// The replica as it was when the member went away.
	before := filepath.Join(h.dir, "replica-before.db")
	rep, err := replica.Open(before, replica.Config{Client: c})
	if err != nil {
		return nil, err
	}
	if err := rep.Sync(ctx); err != nil {
		rep.Close()
		return nil, err
	}
	cursor := rep.Seq()
	if err := rep.Close(); err != nil {
		return nil, err
	}
	fmt.Fprintf(cfg.Progress, "   loading %d active flags\n", n)
	if _, err := bulkFlags(ctx, cfg, h, placer.id, n); err != nil {
		return nil, err
	}
	return &flagSet{h: h, checker: checker, before: before, cursor: cursor}, nil
}

// closeFlagSets closes every flag set's hub.
func (c *Config) closeFlagSets() {
	for n, fs := range c.flagSets {
		fs.h.close()
		delete(c.flagSets, n)
	}
}

// runCatchUp: a member that missed many events catches up through the
// feed with the member SDK's replica (every record verified against the
// hub's keys and applied to its bbolt file) until it has converged. Each run
// starts from a copy of the replica as it was before the absence. The
// baseline reads the same feed pages and only decodes them.
func runCatchUp(ctx context.Context, cfg *Config) ([]Row, error) {
	fmt.Fprintf(cfg.Progress, "   %d events while the member is away\n", cfg.CatchUp)
	fs, err := cfg.flags(ctx, cfg.CatchUp)
	if err != nil {
		return nil, err
	}
	h, back, before, cursor := fs.h, fs.checker, fs.before, fs.cursor
	c, err := back.client()
	if err != nil {
		return nil, err
	}
	run := 0
	system := func() (map[string]float64, error) {
		run++
		path := filepath.Join(h.dir, fmt.Sprintf("replica-%d.db", run))
		if err := copyFile(before, path); err != nil {
			return nil, err
		}
		defer os.Remove(path)
		rep, err := replica.Open(path, replica.Config{Client: c})
		if err != nil {
			return nil, err
		}
		defer rep.Close()
		start := time.Now()
		if err := rep.Sync(ctx); err != nil {
			return nil, err
		}
		took := time.Since(start).Seconds()
		if st := rep.Stats(); st.Flags != cfg.CatchUp {
			return nil, fmt.Errorf("replica converged on %d flags, want %d", st.Flags, cfg.CatchUp)
		}
		return map[string]float64{"s": took, "eps": float64(cfg.CatchUp) / took}, nil
	}
	baseline := func() (map[string]float64, error) {
		after, n := cursor, 0
		start := time.Now()
		for {
			resp, err := back.c.Raw(ctx, client.RawRequest{Method: http.MethodGet, Path: fmt.Sprintf("/v1/events?after=%d&limit=%d", after, api.MaxFeedPage)})
			if err != nil {
				return nil, err
			}
			if p := resp.Problem(); p != nil {
				return nil, p
			}
			var page api.FeedPage
			if err := json.Unmarshal(resp.Body, &page); err != nil {
				return nil, err
			}
			n += len(page.Events)
			after = page.Next
			if !page.More {
				break
			}
		}
		if n < cfg.CatchUp {
			return nil, fmt.Errorf("read %d events, want %d", n, cfg.CatchUp)
		}
		took := time.Since(start).Seconds()
		return map[string]float64{"s": took, "eps": float64(n) / took}, nil
	}
	sys, base, err := alternate(cfg.Runs, system, baseline)
	if err != nil {
		return nil, err
	}
	const baseName = "the same feed pages, decoded only"
	return []Row{
		row(fmt.Sprintf("replica converges after %d missed events", cfg.CatchUp), "s", false, sys, base, "s", baseName),
		row("feed events verified and applied/s", "events/s", true, sys, base, "eps", baseName),
	}, nil
}

// reportsDiscarded is a member's client whose replica's reports of checks
// go nowhere. The replica scenario checks millions of tokens a second;
// reporting them for real would measure the hub's log, which the check
// scenario measures, and fill the bench hub's disk.
type reportsDiscarded struct{ *client.Client }

func (reportsDiscarded) ReportReplicaChecks(_ context.Context, checks []api.ReplicaCheck) (*api.ReplicaChecksResponse, error) {
	return &api.ReplicaChecksResponse{Count: len(checks)}, nil
}

// replicaStretch is how many checks the replica scenario times at a
// stretch before the replica reports them, untimed: as many as a member
// that checks 2 000 identities a second queues between two reports (every
// 5 s by default). A report's work runs beside a member's checks, not in
// them; and at the scenario's rate (millions a second) a reporter running
// beside them on the same two cores would fall behind, and the queue fill.
const replicaStretch = 10 * api.MaxReplicaChecks

// runReplica: checks answered by a member's replica, in process, as
// members make them (with a purpose, each queued to be reported; the
// replica reports them between stretches of replicaStretch checks,
// untimed), beside a bare map lookup of the same tokens. The replica
// bootstraps from the hub's snapshot first; that time is reported too,
// from the one bootstrap.
func runReplica(ctx context.Context, cfg *Config) ([]Row, error) {
	flags := cfg.ReplicaFlags
	fmt.Fprintf(cfg.Progress, "   %d active flags, checked 1%% flagged\n", flags)
	fs, err := cfg.flags(ctx, flags)
	if err != nil {
		return nil, err
	}
	h := fs.h
	c, err := fs.checker.client()
	if err != nil {
		return nil, err
	}
	// One bootstrap, the replica the checks use: bootstrapping is bound by
	// verifying every record, as catching up is, which the catch-up
	// scenario measures run after run.
	rep, err := replica.Open(filepath.Join(h.dir, "replica-snapshot.db"), replica.Config{Client: reportsDiscarded{c}})
	if err != nil {
		return nil, err
	}
	defer rep.Close()
	start := time.Now()
	if err := rep.Sync(ctx); err != nil {
		return nil, err
	}
	boot := time.Since(start).Seconds()
	if st := rep.Stats(); st.Flags != flags {
		return nil, fmt.Errorf("replica bootstrapped with %d flags, want %d", st.Flags, flags)
	}
	flagged, probe, err := replicaProbes(h, flags)
	if err != nil {
		return nil, err
	}
	n := 20 * flags // 2 000 000 checks a run with 100 000 flags
	sys, base, err := alternate(cfg.Runs,
		func() (map[string]float64, error) {
			return measureChecks(probe, n, func(t protocol.Token) bool { return rep.Check(api.PurposePayment, t).Advice == api.AdviceVerify },
				func() error { return rep.Flush(ctx) })
		},
		func() (map[string]float64, error) {
			return measureChecks(probe, n, func(t protocol.Token) bool { return flagged[t] }, nil)
		})
	if err != nil {
		return nil, err
	}
	if st := rep.Stats(); st.ChecksDropped != 0 || st.ChecksReported != uint64(cfg.Runs*n) {
		return nil, fmt.Errorf("replica checks: %d reported, %d dropped for a full queue, of %d; the figures would not be a check's", st.ChecksReported, st.ChecksDropped, cfg.Runs*n)
	}
	const baseName = "bare map lookup"
	return []Row{
		row("replica check", "ns/check", false, sys, base, "ns", baseName),
		row("replica checks/s, one goroutine", "checks/s", true, sys, base, "cps", baseName),
		{System: figure(fmt.Sprintf("replica bootstrap from snapshot, %d flags", flags), "s", false, []float64{boot}), Note: "one run"},
	}, nil
}

// replicaProbes returns the tokens of the hub's active flags, and the
// tokens the replica scenario checks: 1% of them flagged, as in the hub's
// check scenario (up to 1 000 of the flagged ones), and 99 times as many
// others.
func replicaProbes(h *hub, flags int) (flagged map[protocol.Token]bool, probe []protocol.Token, err error) {
	flaggedProbes := min(1000, max(1, flags/100))
	flagged = map[protocol.Token]bool{}
	err = h.st.Walk(func(bucket string, k, _ []byte) error {
		if bucket != "flag_token" {
			return nil
		}
		tok, err := protocol.ParseToken(string(k))
		if err != nil {
			return err
		}
		flagged[tok] = true
		if len(probe) < flaggedProbes {
			probe = append(probe, tok)
		}
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	for i := range 99 * len(probe) {
		tok := protocol.Token{Type: protocol.TypeEmail, Epoch: h.keys.Token.Epoch()}
		tok.Value[0], tok.Value[1], tok.Value[2] = byte(i), byte(i>>8), byte(i>>16)
		probe = append(probe, tok)
	}
	return flagged, probe, nil
}

// measureChecks times n checks of the probe tokens, in stretches of
// replicaStretch, calling between (if not nil) after each, untimed.
func measureChecks(probe []protocol.Token, n int, check func(protocol.Token) bool, between func() error) (map[string]float64, error) {
	hits := 0
	var took time.Duration
	for from := 0; from < n; from += replicaStretch {
		start := time.Now()
		for i := from; i < min(from+replicaStretch, n); i++ {
			if check(probe[(i*7919)%len(probe)]) {
				hits++
			}
		}
		took += time.Since(start)
		if between != nil {
			if err := between(); err != nil {
				return nil, err
			}
		}
	}
	if hits == 0 {
		return nil, fmt.Errorf("no check found a flag")
	}
	return map[string]float64{"ns": float64(took.Nanoseconds()) / float64(n), "cps": float64(n) / took.Seconds()}, nil
}

func copyFile(from, to string) error {
	b, err := os.ReadFile(from)
	if err != nil {
		return err
	}
	return os.WriteFile(to, b, 0o600)
}

// runMemory: the hub's resident memory and data file with many active
// flags. The flags are loaded straight into the store (bulkFlags); then the
// sparr binary serves the data file as a process of its own, so that its
// memory is the hub's alone. The baselines: an empty hub's memory, and the bytes
// of the flags' signed records.
func runMemory(ctx context.Context, cfg *Config) ([]Row, error) {
	need := uint64(cfg.MemoryFlags)*memoryBytesPerFlag + memoryBytesSpare
	switch free, err := freeBytes(cfg.Dir); {
	case err != nil:
		fmt.Fprintf(cfg.Progress, "   cannot tell the free space in %s (%v); %d flags need about %s\n", cfg.Dir, err, cfg.MemoryFlags, gigabytes(need))
	case free < need:
		return nil, &skipError{fmt.Sprintf("%d active flags need about %s of free disk in %s, which has %s; free some, choose another directory (--tmp), or load fewer flags (--memory-flags)",
			cfg.MemoryFlags, gigabytes(need), filepath.Dir(cfg.Dir), gigabytes(free))}
	}
	h, err := startHub(cfg)
	if err != nil {
		return nil, err
	}
	placer, err := h.addMember("bank-placer", api.RoleFlag)
	if err != nil {
		h.close()
		return nil, err
	}
	checker, err := h.addMember("bank-checker", api.RoleCheck)
	if err != nil {
		h.close()
		return nil, err
	}
	fmt.Fprintf(cfg.Progress, "   loading %d active flags\n", cfg.MemoryFlags)
	recordBytes, err := bulkFlags(ctx, cfg, h, placer.id, cfg.MemoryFlags)
	if err != nil {
		h.close()
		return nil, err
	}
	full := h.dir
	// Stop serving it in-process, keeping the files.
	h.srv.Close()
	h.hub.Close()
	h.st.Close()
	defer os.RemoveAll(full)
	fi, err := os.Stat(filepath.Join(full, "hub.db"))
	if err != nil {
		return nil, err
	}
	empty, err := startHub(cfg)
	if err != nil {
		return nil, err
	}
	emptyDir := empty.dir
	empty.srv.Close()
	empty.hub.Close()
	empty.st.Close()
	defer os.RemoveAll(emptyDir)

	probe := func(dir string, m *member) (map[string]float64, error) {
		kb, err := serveAndMeasure(ctx, cfg.Binary, dir, m)
		if err != nil {
			return nil, err
		}
		return map[string]float64{"rss": float64(kb) / 1024}, nil
	}
	sys, base, err := alternate(cfg.Runs, func() (map[string]float64, error) { return probe(full, checker) }, func() (map[string]float64, error) { return probe(emptyDir, nil) })
	if err != nil {
		return nil, err
	}
	mb := float64(fi.Size()) / (1 << 20)
	recMB := float64(recordBytes) / (1 << 20)
	fileRow := Row{
		System:       Figure{Name: fmt.Sprintf("data file, %d active flags", cfg.MemoryFlags), Unit: "MiB", Median: mb, Min: mb, Max: mb},
		Baseline:     &Figure{Name: "signed records alone", Unit: "MiB", Median: recMB, Min: recMB, Max: recMB},
		BaselineName: "the flags' signed records, bytes",
	}
	return []Row{
		row(fmt.Sprintf("hub RSS, %d active flags", cfg.MemoryFlags), "MiB", false, sys, base, "rss", "an empty hub's RSS"),
		fileRow,
	}, nil
}

// The disk the memory scenario needs: its data file holds about 4.7 KB per
// active flag (docs/performance.md), and an empty hub and what serving it
// writes need a little more.
const (
	memoryBytesPerFlag = 5 << 10
	memoryBytesSpare   = 64 << 20
)

func gigabytes(n uint64) string { return fmt.Sprintf("%.1f GB", float64(n)/1e9) }

// serveAndMeasure starts `sparr serve` on dir, answers a few checks as m
// (if given) so the hub's paths are warm, and returns its RSS.
func serveAndMeasure(ctx context.Context, binary, dir string, m *member) (int, error) {
	cmd := exec.CommandContext(ctx, binary, "serve", "--data", dir, "--insecure-http", "--addr", "127.0.0.1:0", "--metrics-addr", "off")
	cmd.Env = append(os.Environ(), "SPARR_SERVE_LOG_LEVEL=warn")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return 0, err
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		return 0, fmt.Errorf("start %s serve: %w", binary, err)
	}
	defer func() {
		cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
		}
	}()
	issuer, err := readListening(stdout)
	if err != nil {
		return 0, fmt.Errorf("%v; the hub said: %s", err, stderr.String())
	}
	go io.Copy(io.Discard, stdout)
	if m != nil {
		// The hub the checks go to now has another issuer: sign for it.
		c, err := client.New(client.Config{HubURL: issuer, MemberID: m.id, Key: m.key, HTTPClient: m.hub.client, Retry: client.Retry{Attempts: 1}})
		if err != nil {
			return 0, err
		}
		toks, err := m.hub.tokens("mem", 100)
		if err != nil {
			return 0, err
		}
		for _, tok := range toks {
			if _, err := c.Check(ctx, api.PurposePayment, tok); err != nil {
				return 0, err
			}
		}
	}
	runtimeSettle()
	return rssKB(cmd.Process.Pid)
}

// readListening reads the serve command's "listening on ADDR, issuer URL"
// line and returns the issuer.
func readListening(r io.Reader) (string, error) {
	s := bufio.NewScanner(r)
	deadline := time.Now().Add(2 * time.Minute)
	for s.Scan() && time.Now().Before(deadline) {
		if _, issuer, ok := strings.Cut(s.Text(), "issuer "); ok && strings.HasPrefix(s.Text(), "listening on") {
			return strings.TrimSpace(issuer), nil
		}
	}
	return "", fmt.Errorf("the hub did not say it was listening")
}

// runtimeSettle gives the measured process a moment after its last request.
func runtimeSettle() { time.Sleep(500 * time.Millisecond) }
