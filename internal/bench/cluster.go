package bench

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/sparr-dev/sparr/client"
	"github.com/sparr-dev/sparr/internal/freeport"
	"github.com/sparr-dev/sparr/internal/procnode"
	"github.com/sparr-dev/sparr/protocol"
	"github.com/sparr-dev/sparr/protocol/api"
	"github.com/sparr-dev/sparr/server"
	"github.com/sparr-dev/sparr/server/keyring"
)

// runCluster: checks and placements on a cluster of sparr serve --cluster
// processes, beside the same load on one sparr serve process (the
// single-node hub) started from the same binary in the same run; and
// failover, the time from killing the leader with SIGKILL to the first
// placement acknowledged after it, over cfg.Kills kills.
func runCluster(ctx context.Context, cfg *Config) ([]Row, error) {
	if cfg.Binary == "" {
		return nil, &skipError{"no sparr binary to start the nodes from"}
	}
	if out, _ := exec.Command(cfg.Binary, "serve", "-h").CombinedOutput(); !bytes.Contains(out, []byte("-cluster")) {
		return nil, &skipError{cfg.Binary + " serve has no --cluster"}
	}
	single, err := startProcHub(ctx, cfg, 1)
	if err != nil {
		return nil, fmt.Errorf("single node: %w", err)
	}
	defer single.close()
	cluster, err := startProcHub(ctx, cfg, cfg.ClusterNodes)
	if err != nil {
		return nil, fmt.Errorf("cluster: %w", err)
	}
	defer cluster.close()
	fmt.Fprintf(cfg.Progress, "   %d nodes beside 1, %d clients, %s a run, %d runs each\n", cfg.ClusterNodes, cfg.Concurrency, cfg.Duration, cfg.Runs)

	var loads [2]*procLoad
	for i, h := range []*procHub{cluster, single} {
		if loads[i], err = h.prepareLoad(ctx, cfg.Concurrency); err != nil {
			return nil, err
		}
	}
	checks := func(l *procLoad) func() (map[string]float64, error) {
		return func() (map[string]float64, error) { return l.checkLoad(ctx, cfg) }
	}
	places := func(l *procLoad) func() (map[string]float64, error) {
		return func() (map[string]float64, error) {
			return load(ctx, cfg.Concurrency, cfg.Duration, func(w, _ int) error { return l.place(ctx, w) })
		}
	}
	csys, cbase, err := alternate(cfg.Runs, checks(loads[0]), checks(loads[1]))
	if err != nil {
		return nil, err
	}
	// The same checks, every client sending to the leader: what the
	// followers' forwarding costs.
	leader, err := cluster.leader(ctx)
	if err != nil {
		return nil, err
	}
	viaLeader := *loads[0]
	lc, err := cluster.client(leader, "bank-checker", loads[0].checkerKey, client.Retry{Attempts: 1})
	if err != nil {
		return nil, err
	}
	viaLeader.checkers = slices.Repeat([]*client.Client{lc}, cfg.Concurrency)
	lsys, _, err := alternate(cfg.Runs, checks(&viaLeader), nil)
	if err != nil {
		return nil, err
	}
	psys, pbase, err := alternate(cfg.Runs, places(loads[0]), places(loads[1]))
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(cfg.Progress, "   failover: killing the leader %d times\n", cfg.Kills)
	failovers, err := cluster.failovers(ctx, cfg, loads[0])
	if err != nil {
		return nil, err
	}
	return clusterRows(cfg, clusterFigures{checks: csys, checksBase: cbase, viaLeader: lsys, places: psys, placesBase: pbase}, failovers), nil
}

// clusterFigures are the cluster scenario's measured runs: the cluster's
// and the one node's, each figure by name.
type clusterFigures struct {
	checks, checksBase, viaLeader, places, placesBase map[string][]float64
}

// clusterRows makes the cluster scenario's rows from its figures and its
// failover times.
func clusterRows(cfg *Config, f clusterFigures, failovers []time.Duration) []Row {
	const baseName = "one node (sparr serve), same load"
	n, c := cfg.ClusterNodes, fmt.Sprintf("C=%d", cfg.Concurrency)
	checkRow := row(fmt.Sprintf("checks/s, %d nodes, %s", n, c), "req/s", true, f.checks, f.checksBase, "rps", baseName)
	checkRow.Note = "target ≥ 0.5× one node"
	placeRow := row(fmt.Sprintf("placements/s, %d nodes, %s", n, c), "req/s", true, f.places, f.placesBase, "rps", baseName)
	placeRow.Note = "target ≥ 0.4× one node"
	// On one machine the nodes share its cores: what each check costs in
	// processor time says what separate machines would do.
	cpuAll := row(fmt.Sprintf("CPU per check, all %d nodes together", n), "ms", false, f.checks, f.checksBase, "cpu_all", baseName)
	cpuAll.Note = "user+system time of the hub processes over the checks run"
	cpuMost := row(fmt.Sprintf("CPU per check, busiest of %d nodes", n), "ms", false, f.checks, f.checksBase, "cpu_most", baseName)
	cpuMost.Note = "on separate machines the busiest node bounds checks/s"
	return []Row{
		checkRow,
		row(fmt.Sprintf("checks/s, %d nodes, all to the leader, %s", n, c), "req/s", true, f.viaLeader, f.checksBase, "rps", baseName),
		row(fmt.Sprintf("check p99, %d nodes, %s", n, c), "ms", false, f.checks, f.checksBase, "p99", baseName),
		cpuAll,
		cpuMost,
		placeRow,
		row(fmt.Sprintf("place p99, %d nodes, %s", n, c), "ms", false, f.places, f.placesBase, "p99", baseName),
		failoverRow("failover p50 (kill → first write acknowledged)", failovers, 50),
		failoverRow("failover p99 (kill → first write acknowledged)", failovers, 99),
	}
}

// failoverRow is the p-th percentile of the failover times, by nearest
// rank: over ten kills, p99 is the slowest.
func failoverRow(name string, failovers []time.Duration, p float64) Row {
	ms := make([]float64, len(failovers))
	for i, d := range failovers {
		ms[i] = float64(d.Microseconds()) / 1000
	}
	sorted := slices.Clone(ms)
	slices.Sort(sorted)
	v := sorted[max(0, int(math.Ceil(p/100*float64(len(sorted))))-1)]
	return Row{System: Figure{Name: name, Unit: "ms", Median: v, Min: slices.Min(ms), Max: slices.Max(ms)},
		Note: fmt.Sprintf("%d kills; target p99 ≤ 5 s", len(failovers))}
}

// checkLoad runs the checks of one run and adds to its figures the
// processor time the hub's processes spent per check: all of them
// together (cpu_all) and the busiest, the leader (cpu_most), in ms.
func (l *procLoad) checkLoad(ctx context.Context, cfg *Config) (map[string]float64, error) {
	before := l.h.cpu()
	m, err := load(ctx, cfg.Concurrency, cfg.Duration, func(w, i int) error { return l.check(ctx, w, i) })
	if err != nil || m["n"] == 0 {
		return m, err
	}
	var sum, most float64
	for i, t := range l.h.cpu() {
		d := t - before[i]
		sum += d
		most = max(most, d)
	}
	m["cpu_all"] = sum * 1000 / m["n"]
	m["cpu_most"] = most * 1000 / m["n"]
	return m, nil
}

// A procHub is a hub served by sparr processes: one sparr serve, or the
// nodes of a cluster, sharing the keys sparr init made once.
type procHub struct {
	bin   string
	dir   string
	nodes []*procnode.Node
	keys  *keyring.Keys
	hc    *http.Client
	op    *client.Client
}

// cpu returns each node's processor time so far (user and system, in
// seconds), from /proc; 0 for a node not running or where /proc is not.
func (h *procHub) cpu() []float64 {
	out := make([]float64, len(h.nodes))
	for i, n := range h.nodes {
		if pid := n.Pid(); pid != 0 {
			out[i] = procCPU(pid)
		}
	}
	return out
}

// procCPU reads a process's user and system time from /proc/PID/stat
// (fields 14 and 15, in clock ticks of 1/100 s on Linux).
func procCPU(pid int) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// The command name, field 2, is in parentheses and may hold spaces.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0
	}
	u, err1 := strconv.ParseFloat(f[11], 64)
	s, err2 := strconv.ParseFloat(f[12], 64)
	if err1 != nil || err2 != nil {
		return 0
	}
	return (u + s) / 100
}

// startProcHub makes keys with sparr init, copies them to n data
// directories, and starts n nodes (n > 1: a cluster).
func startProcHub(ctx context.Context, cfg *Config, n int) (*procHub, error) {
	dir, err := os.MkdirTemp(cfg.Dir, "proc-")
	if err != nil {
		return nil, err
	}
	h := &procHub{bin: cfg.Binary, dir: dir, hc: keepAlive(4 * cfg.Concurrency)}
	var peers, httpPeers []string
	for i := range n {
		addr, raft := freePort(), freePort()
		if addr == "" || raft == "" {
			h.close()
			return nil, errors.New("no free loopback port")
		}
		node := &procnode.Node{ID: fmt.Sprintf("n%d", i+1), Data: filepath.Join(dir, fmt.Sprintf("n%d", i+1)), URL: "http://" + addr,
			Env: append(os.Environ(), "SPARR_LOG_LEVEL=warn"), Patience: time.Minute}
		node.Args = []string{"serve", "--insecure-http", "--webhook-allow", "127.0.0.0/8", "--webhook-allow-http", "--data", node.Data, "--addr", addr, "--metrics-addr", "off",
			"--rate-writes", "1000000/1000000", "--rate-checks", "1000000/1000000", "--rate-reads", "1000000/1000000", "--rate-tokens", "1000000/1000000",
			"--tokens-per-second", "100000", "--tokens-per-day", "100000000", "--stored-bytes-per-day", "1099511627776"}
		if n > 1 {
			node.Args = append(node.Args, "--cluster", "--node-id", node.ID, "--raft-addr", raft)
			peers = append(peers, node.ID+"="+raft)
			httpPeers = append(httpPeers, node.ID+"="+node.URL)
		}
		h.nodes = append(h.nodes, node)
	}
	issuer := h.nodes[0].URL
	for _, node := range h.nodes {
		node.Args = append(node.Args, "--issuer", issuer)
		if n > 1 {
			node.Args = append(node.Args, "--cluster-servers", strings.Join(peers, ","), "--http-peers", strings.Join(httpPeers, ","))
		}
	}
	keys := filepath.Join(h.nodes[0].Data, "keys")
	if out, err := exec.CommandContext(ctx, h.bin, "init", "--data", h.nodes[0].Data).CombinedOutput(); err != nil {
		h.close()
		return nil, fmt.Errorf("sparr init: %v: %s", err, out)
	}
	for _, node := range h.nodes[1:] {
		if err := procnode.CopyKeys(keys, filepath.Join(node.Data, "keys")); err != nil {
			h.close()
			return nil, err
		}
	}
	if h.keys, err = keyring.Load(keys); err != nil {
		h.close()
		return nil, err
	}
	for _, node := range h.nodes {
		if err := node.Start(ctx, h.bin); err != nil {
			h.close()
			return nil, err
		}
	}
	opKey, err := keyring.LoadOperator(keyring.OperatorKeyPath(keys))
	if err != nil {
		h.close()
		return nil, err
	}
	if h.op, err = h.client(0, server.OperatorID, opKey, failoverRetry); err != nil {
		h.close()
		return nil, err
	}
	if n > 1 {
		if _, err := h.leader(ctx); err != nil {
			h.close()
			return nil, err
		}
	}
	return h, nil
}

// failoverRetry is how the scenario's members ride out an election.
var failoverRetry = client.Retry{Attempts: 200, Backoff: 20 * time.Millisecond, MaxWait: 500 * time.Millisecond, AttemptTimeout: 2 * time.Second}

func freePort() string {
	addr, err := freeport.Addr()
	if err != nil {
		return ""
	}
	return addr
}

// close stops every node and removes the files.
func (h *procHub) close() {
	var wg sync.WaitGroup
	for _, n := range h.nodes {
		wg.Go(func() { n.Stop(10 * time.Second) })
	}
	wg.Wait()
	h.hc.CloseIdleConnections()
	os.RemoveAll(h.dir)
}

// urls returns the nodes' URLs starting with node i's.
func (h *procHub) urls(i int) []string {
	var out []string
	for k := range h.nodes {
		out = append(out, h.nodes[(i+k)%len(h.nodes)].URL)
	}
	return out
}

// client returns an SDK client over every node, starting at node i.
func (h *procHub) client(i int, id string, key *protocol.SigningKey, retry client.Retry) (*client.Client, error) {
	urls := h.urls(i)
	return client.New(client.Config{HubURL: urls[0], HubURLs: urls[1:], MemberID: id, Key: key, HTTPClient: h.hc, Retry: retry})
}

// leader waits (up to 30 s) until a live node says it leads, and returns
// its index.
func (h *procHub) leader(ctx context.Context) (int, error) {
	deadline := time.Now().Add(30 * time.Second)
	for {
		for i, n := range h.nodes {
			if !n.Running() {
				continue
			}
			if st, err := h.state(ctx, n); err == nil && strings.EqualFold(st, "leader") {
				return i, nil
			}
		}
		if time.Now().After(deadline) {
			return 0, errors.New("no leader within 30 s")
		}
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// state asks a node for its raft state with sparr cluster status --json.
func (h *procHub) state(ctx context.Context, n *procnode.Node) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, h.bin, "cluster", "status", "--hub", n.URL, "--data", n.Data, "--json").Output()
	if err != nil {
		return "", err
	}
	var m map[string]any
	if err := json.Unmarshal(out, &m); err != nil {
		return "", err
	}
	for _, k := range []string{"state", "raft_state", "role"} {
		if s, ok := m[k].(string); ok {
			return s, nil
		}
	}
	return "", fmt.Errorf("cluster status %s: no state", out)
}

// A procLoad is the members of a load on a procHub: checkers and placers
// whose worker w starts at node w mod n, and the check bodies (1% of the
// tokens flagged).
type procLoad struct {
	h        *procHub
	checkers []*client.Client
	placers  []*client.Client
	placer   string
	bodies   [][]byte
	// checkerKey signs the checkers' requests.
	checkerKey *protocol.SigningKey
}

func (h *procHub) prepareLoad(ctx context.Context, workers int) (*procLoad, error) {
	l := &procLoad{h: h}
	add := func(id string, roles ...api.Role) (*protocol.SigningKey, error) {
		key, err := protocol.GenerateSigningKey(protocol.EdDSA, rand.Reader)
		if err != nil {
			return nil, err
		}
		ks, err := protocol.NewKeySet(key.Public())
		if err != nil {
			return nil, err
		}
		jwks, err := ks.MarshalJSON()
		if err != nil {
			return nil, err
		}
		if _, err := h.op.AddMember(ctx, api.MemberRequest{ID: id, Name: "Bench member " + id, Roles: roles, JWKS: jwks}); err != nil {
			return nil, fmt.Errorf("add member %s: %w", id, err)
		}
		return key, nil
	}
	ckey, err := add("bank-checker", api.RoleCheck)
	if err != nil {
		return nil, err
	}
	l.checkerKey = ckey
	l.placer = "bank-placer"
	pkey, err := add(l.placer, api.RoleFlag)
	if err != nil {
		return nil, err
	}
	once := client.Retry{Attempts: 1}
	for w := range workers {
		c, err := h.client(w, "bank-checker", ckey, once)
		if err != nil {
			return nil, err
		}
		p, err := h.client(w, l.placer, pkey, failoverRetry)
		if err != nil {
			return nil, err
		}
		l.checkers, l.placers = append(l.checkers, c), append(l.placers, p)
	}
	toks := make([]protocol.Token, 10_000)
	for i := range toks {
		toks[i] = randomToken(h.keys.Token.Epoch())
	}
	for _, tok := range toks[:len(toks)/100] {
		if err := l.place1(ctx, l.placers[0], tok); err != nil {
			return nil, err
		}
	}
	for _, tok := range toks {
		b, _ := json.Marshal(api.CheckRequest{Purpose: api.PurposeCreditApplication, Tokens: []string{tok.String()}})
		l.bodies = append(l.bodies, b)
	}
	return l, nil
}

// check sends one check, from worker w's client, to the node it starts at.
func (l *procLoad) check(ctx context.Context, w, i int) error {
	_, err := send(ctx, l.checkers[w], "/v1/check", "application/json", l.bodies[(w*7919+i*104729)%len(l.bodies)], http.StatusOK)
	return err
}

// place signs and sends one placement on a fresh token from worker w.
func (l *procLoad) place(ctx context.Context, w int) error {
	return l.place1(ctx, l.placers[w], randomToken(l.h.keys.Token.Epoch()))
}

func (l *procLoad) place1(ctx context.Context, c *client.Client, tok protocol.Token) error {
	now := time.Now()
	_, err := c.PlaceFlag(ctx, client.PlaceFlagRequest{Subject: tok, Consent: &protocol.Consent{
		Collection: protocol.ConsentCollection{Method: "mobile-app", At: protocol.NewNumericDate(now.Add(-time.Minute))},
		Notice:     "https://" + l.placer + ".example/privacy", ExpiresAt: protocol.NewNumericDate(now.AddDate(2, 0, 0)),
		Evidence: protocol.ConsentEvidence{AuthenticationMethod: "bankid", Reference: "bench-" + newJTI()},
	}})
	return err
}

// failovers kills the leader cfg.Kills times and returns, for each kill,
// the time from the kill to the first placement acknowledged after it:
// placements are sent one after another from the moment of the kill,
// through a client that starts at the killed node and fails over. The
// killed node is started again, and rejoins, before the next kill.
func (h *procHub) failovers(ctx context.Context, cfg *Config, l *procLoad) ([]time.Duration, error) {
	var out []time.Duration
	for k := range cfg.Kills {
		i, err := h.leader(ctx)
		if err != nil {
			return nil, err
		}
		c := l.placers[i] // starts at the leader
		killed := time.Now()
		h.nodes[i].Kill()
		for {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			err := l.place1(ctx, c, randomToken(h.keys.Token.Epoch()))
			if err == nil {
				break
			}
			if time.Since(killed) > time.Minute {
				return nil, fmt.Errorf("kill %d: no placement acknowledged within a minute: %v", k+1, err)
			}
		}
		d := time.Since(killed)
		out = append(out, d)
		fmt.Fprintf(cfg.Progress, "   kill %d (%s): first write acknowledged after %s\n", k+1, h.nodes[i].ID, d.Round(time.Millisecond))
		if err := h.nodes[i].Start(ctx, h.bin); err != nil {
			return nil, err
		}
		// Let it rejoin before the next kill.
		time.Sleep(time.Second)
	}
	return out, nil
}
