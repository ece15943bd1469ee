package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sparr-dev/sparr/protocol/api"
)

// TestBulkLoadLooksLikePlacements: a flag the bulk loader writes leaves the
// same buckets and keys, with values of about the same size, as a flag
// placed through the API, so that the memory and catch-up figures are those
// of real placements.
func TestBulkLoadLooksLikePlacements(t *testing.T) {
	h, err := startHub(&Config{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer h.close()
	placer, err := h.addMember("bank-placer", api.RoleFlag)
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
		if _, err := placer.place(context.Background(), body); err != nil {
			t.Fatal(err)
		}
	})
	bulk := shape(func() {
		// Another member than the placer: its day's usage is a new key too.
		if _, err := bulkFlags(context.Background(), &Config{}, h, "bank-bulk", 1); err != nil {
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

// TestBenchSmall runs every scenario but replica and memory at a tiny
// size: the tool works end to end, every row has its figures, and the
// report encodes as JSON without the progress writer.
func TestBenchSmall(t *testing.T) {
	if testing.Short() {
		t.Skip("starts many hubs")
	}
	var progress bytes.Buffer
	scenarios := []string{"check", "place", "propagate", "notices", "tokens", "payee", "catch-up"}
	rep, err := Run(context.Background(), Config{
		Scenarios: scenarios,
		Duration:  200 * time.Millisecond, Concurrency: 4, Subscribers: []int{3}, Receivers: []int{3}, Events: 5, CatchUp: 300, NoticeMembers: 4,
		Dir: t.TempDir(), Progress: &progress,
	})
	if err != nil {
		t.Fatalf("%v\n%s", err, progress.String())
	}
	checkRows(t, rep, scenarios...)
	b, err := json.Marshal(rep)
	if err != nil {
		t.Fatal(err)
	}
	var back struct {
		Config map[string]any `json:"config"`
		Rows   []Row          `json:"rows"`
	}
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if len(back.Rows) != len(rep.Rows) {
		t.Errorf("got %d rows back from the JSON, want %d", len(back.Rows), len(rep.Rows))
	}
	if _, ok := back.Config["Progress"]; ok {
		t.Errorf("the JSON report has the progress writer in its config: %s", b)
	}
}

// checkRows checks that the report has rows for each scenario, each with
// its figure, its baseline and the ratio, the median between min and max.
func checkRows(t *testing.T, rep *Report, scenarios ...string) {
	t.Helper()
	seen := map[string]bool{}
	for _, r := range rep.Rows {
		seen[r.Scenario] = true
		if r.System.Median <= 0 || r.Baseline == nil || r.Baseline.Median <= 0 || r.Ratio <= 0 {
			if !strings.Contains(r.System.Name, "bootstrap") { // measured alone
				t.Errorf("row %+v lacks a figure, its baseline or the ratio", r)
			}
		}
		if r.System.Min > r.System.Median || r.System.Median > r.System.Max {
			t.Errorf("row %q: median %v outside [%v, %v]", r.System.Name, r.System.Median, r.System.Min, r.System.Max)
		}
	}
	for _, s := range scenarios {
		if !seen[s] {
			t.Errorf("got no rows for scenario %s, want some", s)
		}
	}
	if len(rep.Skipped) > 0 {
		t.Errorf("got scenarios skipped: %+v, want none", rep.Skipped)
	}
}

// TestBenchReplicaSmall runs the replica scenario with a few thousand flags.
func TestBenchReplicaSmall(t *testing.T) {
	if testing.Short() {
		t.Skip("loads a data set")
	}
	var progress bytes.Buffer
	rep, err := Run(context.Background(), Config{Scenarios: []string{"replica"}, ReplicaFlags: 2000, Dir: t.TempDir(), Progress: &progress})
	if err != nil {
		t.Fatalf("%v\n%s", err, progress.String())
	}
	checkRows(t, rep, "replica")
}

// TestBenchReplicaAndCatchUpShareFlags: asked for as many flags, the
// replica and catch-up scenarios measure over one data set, loaded once.
func TestBenchReplicaAndCatchUpShareFlags(t *testing.T) {
	if testing.Short() {
		t.Skip("loads a data set")
	}
	var progress bytes.Buffer
	rep, err := Run(context.Background(), Config{Scenarios: []string{"replica", "catch-up"}, ReplicaFlags: 1500, CatchUp: 1500, Dir: t.TempDir(), Progress: &progress})
	if err != nil {
		t.Fatalf("%v\n%s", err, progress.String())
	}
	checkRows(t, rep, "replica", "catch-up")
	if n := strings.Count(progress.String(), "loading 1500 active flags"); n != 1 {
		t.Errorf("loaded the data set %d times, want once:\n%s", n, progress.String())
	}
}

// TestBenchMemorySmall runs the memory scenario with a few thousand flags,
// serving them with the sparr binary built from this module.
func TestBenchMemorySmall(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the sparr binary")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "sparr")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/sparr-dev/sparr/cmd/sparr").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	var progress bytes.Buffer
	rep, err := Run(context.Background(), Config{Scenarios: []string{"memory"}, MemoryFlags: 2000, Binary: bin, Dir: dir, Progress: &progress})
	if err != nil {
		t.Fatalf("%v\n%s", err, progress.String())
	}
	checkRows(t, rep, "memory")
	for _, r := range rep.Rows {
		if strings.HasPrefix(r.System.Name, "hub RSS") && r.System.Median < r.Baseline.Median {
			t.Errorf("got a hub with 2000 flags using %v MiB, an empty one %v MiB; want the empty one smaller", r.System.Median, r.Baseline.Median)
		}
	}
}

// TestBenchMemorySkipped: with too little free disk for its data set the
// memory scenario is skipped, with the reason, and the run goes on.
func TestBenchMemorySkipped(t *testing.T) {
	dir := t.TempDir()
	if _, err := freeBytes(dir); err != nil {
		t.Skipf("cannot tell free space here: %v", err)
	}
	var progress bytes.Buffer
	rep, err := Run(context.Background(), Config{Scenarios: []string{"memory"}, MemoryFlags: 1 << 40, Dir: dir, Progress: &progress})
	if err != nil {
		t.Fatalf("got %v, want the scenario skipped\n%s", err, progress.String())
	}
	if len(rep.Rows) != 0 || len(rep.Skipped) != 1 || rep.Skipped[0].Scenario != "memory" || !strings.Contains(rep.Skipped[0].Reason, "--tmp") {
		t.Errorf("got rows %+v, skipped %+v; want no rows and memory skipped, saying how to choose another directory", rep.Rows, rep.Skipped)
	}
}

// TestBenchPlacementBytes: the bytes one placement writes are measured on a
// quiet store, the same each time, and count every key the placement adds
// or rewrites: each subscribed member adds its delivery row and the
// rewrite of its route, whose last event changes but not its length.
func TestBenchPlacementBytes(t *testing.T) {
	cfg := &Config{Dir: t.TempDir()}
	h, err := openHub(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer h.close()
	placer, err := h.addMember("bank-placer", api.RoleFlag)
	if err != nil {
		t.Fatal(err)
	}
	alone, err := placementBytes(h, placer)
	if err != nil {
		t.Fatal(err)
	}
	counters, err := register(h, 5)
	if err != nil {
		t.Fatal(err)
	}
	defer closeAll(counters)
	with, err := placementBytes(h, placer)
	if err != nil {
		t.Fatal(err)
	}
	// What the subscribers add to each placement: each one's route, and a
	// delivery row (as big as its newest one).
	want := 0
	newest := map[string]int{}
	err = h.st.Walk(func(b string, k, v []byte) error {
		switch b {
		case "routes":
			if strings.HasPrefix(string(k), "bank-0") {
				want += len(k) + len(v)
			}
		case "outbox":
			m, _, _ := strings.Cut(string(k), "\x00")
			newest[m] = len(k) + len(v) // keys in sequence order: the last is the newest
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(newest) != len(counters) {
		t.Fatalf("got deliveries queued for %d members, want %d", len(newest), len(counters))
	}
	for _, n := range newest {
		want += n
	}
	if got := with - alone; got < want-16 || got > want+16 {
		t.Errorf("got %d bytes a placement alone and %d with %d members subscribed: %d more, want the %d of their routes and deliveries",
			alone, with, len(counters), got, want)
	}
	again, err := placementBytes(h, placer)
	if err != nil {
		t.Fatal(err)
	}
	if d := again - with; d < -16 || d > 16 {
		t.Errorf("got %d bytes, then %d: want the same but for a few digits", with, again)
	}
}

// TestBenchPlaceRunQueuesForEverySubscriber: every placement of a system
// run of the place scenario queues a delivery for each subscribed member:
// counted when the run has stopped its hub, they are either with the
// receivers or still in the outbox.
func TestBenchPlaceRunQueuesForEverySubscriber(t *testing.T) {
	cfg := &Config{Dir: t.TempDir(), Duration: 300 * time.Millisecond}
	const subscribers = 3
	m, err := placeRun(context.Background(), cfg, subscribers, 1000)
	if err != nil {
		t.Fatal(err)
	}
	if m["n"] == 0 || m["queued"] < subscribers*m["n"] {
		t.Errorf("got %v deliveries queued (delivered or still queued), want all %v placements for each of %d receivers", m["queued"], m["n"], subscribers)
	}
	if m["delivered"] > subscribers*m["n"] {
		t.Errorf("got %v deliveries received, want at most %v", m["delivered"], subscribers*m["n"])
	}
}

// TestBenchLoadEndsWhenExhausted: a run whose prepared requests run out
// ends there, cleanly, with the rate of what it sent.
func TestBenchLoadEndsWhenExhausted(t *testing.T) {
	var used atomic.Int64
	m, err := load(context.Background(), 4, time.Hour, func(_, _ int) error {
		if used.Add(1) > 100 {
			return errExhausted
		}
		return nil
	})
	if err != nil {
		t.Fatalf("got %v, want the run to end cleanly", err)
	}
	if m["n"] != 100 || m["rps"] <= 0 {
		t.Errorf("got %v requests at %v/s, want 100 at some rate", m["n"], m["rps"])
	}
}

// heldBack is a transport that holds each request back for a while before
// sending it.
type heldBack struct {
	next http.RoundTripper
	d    time.Duration
}

func (h heldBack) RoundTrip(r *http.Request) (*http.Response, error) {
	time.Sleep(h.d)
	return h.next.RoundTrip(r)
}

// TestBenchPropagateTimesThePlacement: the hub's propagation latency is
// timed from before the member sends its placement, so it covers the whole
// placement: with each member request held back for a while, no latency
// is shorter than that.
func TestBenchPropagateTimesThePlacement(t *testing.T) {
	if testing.Short() {
		t.Skip("starts hubs")
	}
	const held = 100 * time.Millisecond
	cfg := &Config{Dir: t.TempDir(), Events: 3, memberTransport: func(rt http.RoundTripper) http.RoundTripper { return heldBack{rt, held} }}
	cfg.defaults()
	rows, err := propagateTo(context.Background(), cfg, 2)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rows[:2] { // p50, p99
		if got, want := r.System.Min, float64(held.Milliseconds()); got < want {
			t.Errorf("%s: got a latency of %v ms, want at least the %v ms each placement was held back", r.System.Name, got, want)
		}
	}
}

// TestBenchDeliverFailsUnless202: the raw fan-out counts a delivery only
// when the receiver answers 202.
func TestBenchDeliverFailsUnless202(t *testing.T) {
	for _, status := range []int{http.StatusAccepted, http.StatusOK, http.StatusInternalServerError} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(status) }))
		err := deliver(srv.Client(), srv.URL, "id", []byte("x"))
		if (err == nil) != (status == http.StatusAccepted) {
			t.Errorf("answered %d: got error %v, want one unless 202", status, err)
		}
		srv.Close()
		if err := deliver(srv.Client(), srv.URL, "id", []byte("x")); err == nil {
			t.Errorf("receiver gone: got no error, want one")
		}
	}
}

// TestBenchClusterSmall runs the cluster scenario briefly, with one kill
// of the leader, on nodes of the sparr binary built from this module.
func TestBenchClusterSmall(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the sparr binary and runs four hub processes")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "sparr")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/sparr-dev/sparr/cmd/sparr").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	var progress bytes.Buffer
	rep, err := Run(context.Background(), Config{Scenarios: []string{"cluster"}, Duration: 200 * time.Millisecond, Concurrency: 4, Kills: 1,
		Binary: bin, Dir: dir, Progress: &progress})
	if err != nil {
		t.Fatalf("%v\n%s", err, progress.String())
	}
	if len(rep.Skipped) == 1 && strings.Contains(rep.Skipped[0].Reason, "no --cluster") {
		t.Skip(rep.Skipped[0].Reason)
	}
	var throughput, failover int
	for _, r := range rep.Rows {
		switch {
		case strings.HasPrefix(r.System.Name, "failover"):
			failover++
			if r.System.Median <= 0 || r.Baseline != nil {
				t.Errorf("row %+v: want a failover time and no baseline", r)
			}
		default:
			throughput++
			if r.System.Median <= 0 || r.Baseline == nil || r.Baseline.Median <= 0 || r.Ratio <= 0 {
				t.Errorf("row %+v lacks a figure, its baseline (one node) or the ratio", r)
			}
		}
	}
	// Five of throughput and latency, two of processor time per check.
	if throughput != 7 || failover != 2 {
		t.Errorf("got %d measured rows and %d failover rows, want 7 and 2:\n%s", throughput, failover, progress.String())
	}
	if n := strings.Count(progress.String(), "first write acknowledged after"); n != 1 {
		t.Errorf("timed %d failovers, want 1:\n%s", n, progress.String())
	}
}
