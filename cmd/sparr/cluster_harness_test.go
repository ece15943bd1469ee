package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/sparr-dev/sparr/client"
	"github.com/sparr-dev/sparr/internal/clustertest"
	"github.com/sparr-dev/sparr/internal/freeport"
	"github.com/sparr-dev/sparr/internal/procnode"
	"github.com/sparr-dev/sparr/protocol"
	"github.com/sparr-dev/sparr/protocol/api"
	"github.com/sparr-dev/sparr/server"
	"github.com/sparr-dev/sparr/server/hubtest"
	"github.com/sparr-dev/sparr/server/keyring"
	"github.com/sparr-dev/sparr/server/store"
)

// A testCluster is n sparr serve --cluster processes on loopback, one data
// directory each, sharing the hub's keys, with a clustertest.Proxy on each
// directed raft link between two nodes.
type testCluster struct {
	bin    string
	issuer string
	nodes  []*clusterNode
	net    *clustertest.Network
	keys   *keyring.Keys
	opKey  *protocol.SigningKey
	// hc is the HTTP client of every member the test makes.
	hc *http.Client
}

// A clusterNode is one node's process, started, killed, paused and
// started again on the same data directory and addresses.
type clusterNode struct {
	id, data           string
	httpAddr, raftAddr string
	url                string
	proc               *procnode.Node
	paused             bool
}

// builtSparr is the binary the cluster tests share, built once per test
// binary into a directory TestMain removes.
var builtSparr struct {
	once     sync.Once
	dir, bin string
	err      error
}

// buildSparr builds the binary (once for all the cluster tests), or skips
// the test if the binary cannot serve a cluster.
func buildSparr(t *testing.T) string {
	t.Helper()
	b := &builtSparr
	b.once.Do(func() {
		if b.dir, b.err = os.MkdirTemp("", "sparr-cluster-test-"); b.err != nil {
			return
		}
		b.bin = filepath.Join(b.dir, "sparr")
		if out, err := exec.Command("go", "build", "-o", b.bin, ".").CombinedOutput(); err != nil {
			b.err = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if b.err != nil {
		t.Fatal(b.err)
	}
	out, _ := exec.Command(b.bin, "serve", "-h").CombinedOutput()
	if !bytes.Contains(out, []byte("-cluster")) {
		t.Skip("sparr serve has no --cluster")
	}
	return b.bin
}

// TestMain removes the binary the cluster tests built.
func TestMain(m *testing.M) {
	code := m.Run()
	if builtSparr.dir != "" {
		os.RemoveAll(builtSparr.dir)
	}
	os.Exit(code)
}

// freeAddr returns a loopback address nothing listens on now, below the
// ephemeral range, so that no connection takes it while its node is down.
func freeAddr(t *testing.T) string {
	t.Helper()
	addr, err := freeport.Addr()
	if err != nil {
		t.Fatal(err)
	}
	return addr
}

// newTestCluster makes the keys once (sparr init), copies them to every
// node's data directory, and starts the proxies; it starts no node.
func newTestCluster(t *testing.T, bin string, n int) *testCluster {
	t.Helper()
	c := &testCluster{bin: bin, hc: &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}}
	t.Cleanup(c.hc.CloseIdleConnections)
	tmp := t.TempDir()
	raft := map[string]string{}
	for i := range n {
		id := fmt.Sprintf("n%d", i+1)
		node := &clusterNode{id: id, data: filepath.Join(tmp, id), httpAddr: freeAddr(t), raftAddr: freeAddr(t)}
		node.url = "http://" + node.httpAddr
		node.proc = &procnode.Node{ID: id, Data: node.data, URL: node.url, Env: procnode.Environ()}
		raft[id] = node.raftAddr
		c.nodes = append(c.nodes, node)
		t.Cleanup(func() {
			if node.proc.Running() {
				if node.paused {
					node.proc.Signal(syscall.SIGCONT)
				}
				node.proc.Kill()
			}
		})
	}
	// One issuer for all: the first node's URL. Members fetch the keys it
	// names from whichever node answers.
	c.issuer = c.nodes[0].url
	first := c.nodes[0].data
	if out, err := exec.Command(bin, "init", "--data", first).CombinedOutput(); err != nil {
		t.Fatalf("sparr init: %v\n%s", err, out)
	}
	for _, node := range c.nodes[1:] {
		if err := procnode.CopyKeys(filepath.Join(first, "keys"), filepath.Join(node.data, "keys")); err != nil {
			t.Fatal(err)
		}
	}
	var err error
	if c.keys, err = keyring.Load(filepath.Join(first, "keys")); err != nil {
		t.Fatal(err)
	}
	if c.opKey, err = keyring.LoadOperator(keyring.OperatorKeyPath(filepath.Join(first, "keys"))); err != nil {
		t.Fatal(err)
	}
	if c.net, err = clustertest.NewNetwork(raft); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.net.Close() })
	var peers, httpPeers []string
	for _, node := range c.nodes {
		peers = append(peers, node.id+"="+node.raftAddr)
		httpPeers = append(httpPeers, node.id+"="+node.url)
	}
	unlimited := "100000/100000"
	for _, node := range c.nodes {
		dial := c.net.DialAddrs(node.id)
		var dials []string
		for _, id := range slices.Sorted(maps.Keys(dial)) {
			dials = append(dials, id+"="+dial[id])
		}
		node.proc.Args = []string{"serve", "--insecure-http", "--webhook-allow", "127.0.0.0/8", "--webhook-allow-http", "--data", node.data, "--addr", node.httpAddr, "--issuer", c.issuer,
			"--metrics-addr", "off", "--checkpoint-interval", "1s",
			"--rate-writes", unlimited, "--rate-checks", unlimited, "--rate-reads", unlimited, "--rate-tokens", unlimited,
			"--tokens-per-second", "100000", "--tokens-per-day", "100000000", "--stored-bytes-per-day", "1099511627776",
			"--cluster", "--node-id", node.id, "--raft-addr", node.raftAddr,
			"--cluster-servers", strings.Join(peers, ","), "--raft-dial", strings.Join(dials, ","), "--http-peers", strings.Join(httpPeers, ",")}
	}
	return c
}

// urls returns the nodes' URLs, starting with node i's: each member's
// client starts at another node, so that the load goes through all.
func (c *testCluster) urls(i int) []string {
	var out []string
	for k := range c.nodes {
		out = append(out, c.nodes[(i+k)%len(c.nodes)].url)
	}
	return out
}

// startAll starts every node and waits for a leader.
func (c *testCluster) startAll(t *testing.T) *clusterNode {
	t.Helper()
	for _, n := range c.nodes {
		n.start(t, c.bin)
	}
	return c.waitLeader(t, nil)
}

// start runs the node and waits until it listens; a port just given up by
// a killed process may take a moment to be free again.
func (n *clusterNode) start(t *testing.T, bin string) {
	t.Helper()
	if err := n.proc.Start(context.Background(), bin); err != nil {
		t.Fatal(err)
	}
	n.paused = false
}

// kill ends the node with SIGKILL.
func (n *clusterNode) kill(t *testing.T) {
	t.Helper()
	err := n.proc.Kill()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("node %s (start %d) ended with %v, want killed by SIGKILL; stderr:\n%s", n.id, n.proc.Starts(), err, n.proc.Stderr())
	}
}

// pause stops the node with SIGSTOP; resume continues it.
func (n *clusterNode) pause(t *testing.T) {
	t.Helper()
	if err := n.proc.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	n.paused = true
}

func (n *clusterNode) resume(t *testing.T) {
	t.Helper()
	if err := n.proc.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	n.paused = false
}

// stop ends the node with SIGTERM and waits for a clean exit.
func (n *clusterNode) stop() error { return n.proc.Stop(30 * time.Second) }

// A nodeStatus is what sparr cluster status --json says of one node.
type nodeStatus struct {
	ID      string
	State   string
	Leader  string
	Term    uint64
	Commit  uint64
	Applied uint64
}

func (s nodeStatus) leader() bool { return strings.EqualFold(s.State, "leader") }

// status runs sparr cluster status --json against the node.
func (c *testCluster) status(n *clusterNode) (nodeStatus, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, c.bin, "cluster", "status", "--hub", n.url, "--data", n.data, "--json").Output()
	if err != nil {
		return nodeStatus{}, fmt.Errorf("sparr cluster status --hub %s: %w", n.url, err)
	}
	return parseNodeStatus(out)
}

// parseNodeStatus reads the JSON of sparr cluster status, whose fields it
// finds by the names it may have.
func parseNodeStatus(b []byte) (nodeStatus, error) {
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		return nodeStatus{}, fmt.Errorf("cluster status %q: %w", b, err)
	}
	str := func(keys ...string) string {
		for _, k := range keys {
			if v, ok := m[k].(string); ok {
				return v
			}
		}
		return ""
	}
	num := func(keys ...string) uint64 {
		for _, k := range keys {
			switch v := m[k].(type) {
			case float64:
				return uint64(v)
			case string:
				if n, err := strconv.ParseUint(v, 10, 64); err == nil {
					return n
				}
			}
		}
		return 0
	}
	return nodeStatus{
		ID:      str("node_id", "id", "node"),
		State:   str("state", "raft_state", "role"),
		Leader:  str("leader_id", "leader"),
		Term:    num("term", "current_term"),
		Commit:  num("commit_index", "commit"),
		Applied: num("applied_index", "applied", "last_applied"),
	}, nil
}

// live returns the nodes running and not paused.
func (c *testCluster) live() []*clusterNode {
	var out []*clusterNode
	for _, n := range c.nodes {
		if n.proc.Running() && !n.paused {
			out = append(out, n)
		}
	}
	return out
}

// waitLeader waits until one of the live nodes other than those in not
// says it leads, and returns it.
func (c *testCluster) waitLeader(t *testing.T, not []*clusterNode) *clusterNode {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	var last []string
	for {
		last = last[:0]
		for _, n := range c.live() {
			if slices.Contains(not, n) {
				continue
			}
			s, err := c.status(n)
			if err != nil {
				last = append(last, err.Error())
				continue
			}
			last = append(last, fmt.Sprintf("%s: %+v", n.id, s))
			if s.leader() {
				return n
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no leader within 30 s: %q", last)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// waitApplied waits until every live node has applied as far as the
// leader has committed.
func (c *testCluster) waitApplied(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		var commit uint64
		var applied []uint64
		var errs []string
		for _, n := range c.live() {
			s, err := c.status(n)
			if err != nil {
				errs = append(errs, err.Error())
				continue
			}
			if s.leader() {
				commit = s.Commit
			}
			applied = append(applied, s.Applied)
		}
		if commit > 0 && len(errs) == 0 && len(applied) == len(c.live()) && !slices.ContainsFunc(applied, func(a uint64) bool { return a < commit }) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the nodes did not apply up to the leader's commit index %d within 60 s: applied %v, errors %q", commit, applied, errs)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// waitQuiet waits until every node has applied the same index, the
// leader's commit index, and nothing new has been committed for 1.5 s
// (longer than the checkpoint interval): then nothing is in flight.
func (c *testCluster) waitQuiet(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	var last uint64
	var since time.Time
	for {
		var seen []string
		index, ok := uint64(0), len(c.live()) == len(c.nodes)
		for _, n := range c.nodes {
			if !n.proc.Running() || n.paused {
				continue
			}
			s, err := c.status(n)
			if err != nil {
				ok = false
				seen = append(seen, err.Error())
				continue
			}
			seen = append(seen, fmt.Sprintf("%s: %s, commit %d, applied %d", n.id, s.State, s.Commit, s.Applied))
			if index == 0 {
				index = s.Applied
			}
			if s.Applied != index || s.Commit != index {
				ok = false
			}
		}
		switch {
		case !ok:
			since = time.Time{}
		case index != last || since.IsZero():
			last, since = index, time.Now()
		case time.Since(since) > 1500*time.Millisecond:
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the nodes did not settle on one applied index within 60 s: %q", seen)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// stopAll waits until the nodes are quiet and equal, then stops them all
// at once, cleanly.
func (c *testCluster) stopAll(t *testing.T) {
	t.Helper()
	for _, n := range c.nodes {
		if n.paused {
			n.resume(t)
		}
	}
	c.waitQuiet(t)
	errs := make([]error, len(c.nodes))
	var wg sync.WaitGroup
	for i, n := range c.nodes {
		wg.Go(func() { errs[i] = n.stop() })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
}

// openStores opens each stopped node's store; the caller closes them.
func (c *testCluster) openStores(t *testing.T) []*store.Store {
	t.Helper()
	var out []*store.Store
	for _, n := range c.nodes {
		st, err := store.Open(filepath.Join(n.data, "hub.db"), store.Options{})
		if err != nil {
			t.Fatalf("node %s: %v", n.id, err)
		}
		t.Cleanup(func() { st.Close() })
		out = append(out, st)
	}
	return out
}

// nodeLocalBuckets are the buckets whose contents are the node's own, not
// the replicated state.
var nodeLocalBuckets = []string{}

// storeDigest returns a digest of each bucket of a store, and how many
// keys it holds.
func storeDigest(t *testing.T, st *store.Store) (map[string][32]byte, int) {
	t.Helper()
	hashes := map[string]*bytes.Buffer{}
	keys := 0
	err := st.Walk(func(bucket string, k, v []byte) error {
		if slices.Contains(nodeLocalBuckets, bucket) {
			return nil
		}
		b := hashes[bucket]
		if b == nil {
			b = new(bytes.Buffer)
			hashes[bucket] = b
		}
		fmt.Fprintf(b, "%d:%x=%d:%x\n", len(k), k, len(v), v)
		keys++
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][32]byte{}
	for name, b := range hashes {
		out[name] = sha256.Sum256(b.Bytes())
	}
	return out, keys
}

// compareStores checks that every node's store holds the same buckets,
// byte for byte, and returns how many keys they hold.
func (c *testCluster) compareStores(t *testing.T, stores []*store.Store) int {
	t.Helper()
	want, keys := storeDigest(t, stores[0])
	for i, st := range stores[1:] {
		got, _ := storeDigest(t, st)
		for _, b := range slices.Sorted(maps.Keys(want)) {
			if got[b] != want[b] {
				t.Errorf("bucket %s differs between nodes %s and %s", b, c.nodes[0].id, c.nodes[i+1].id)
			}
		}
		for b := range got {
			if _, ok := want[b]; !ok {
				t.Errorf("bucket %s is on node %s only", b, c.nodes[i+1].id)
			}
		}
	}
	return keys
}

// member returns a member's SDK client over every node, failing over
// between them, starting at node i.
func (c *testCluster) member(t *testing.T, i int, id string, key *protocol.SigningKey, retry client.Retry) *crashMember {
	t.Helper()
	urls := c.urls(i)
	cl, err := client.New(client.Config{HubURL: urls[0], HubURLs: urls[1:], MemberID: id, Key: key, HTTPClient: c.hc, Retry: retry})
	if err != nil {
		t.Fatal(err)
	}
	return &crashMember{id: id, key: key, hub: urls[0], hc: c.hc, c: cl}
}

// clusterRetry is how the test's members retry: through elections.
var clusterRetry = client.Retry{Attempts: 40, Backoff: 50 * time.Millisecond, MaxWait: 2 * time.Second, AttemptTimeout: 5 * time.Second}

// operator returns the operator's client over every node.
func (c *testCluster) operator(t *testing.T) *crashMember {
	return c.member(t, 0, server.OperatorID, c.opKey, clusterRetry)
}

// addMember registers a member through op and returns its client,
// starting at node i.
func (c *testCluster) addMember(t *testing.T, op *crashMember, i int, id string, roles ...api.Role) *crashMember {
	t.Helper()
	key, jwks := hubtest.NewKey(t)
	if _, err := op.c.AddMember(context.Background(), api.MemberRequest{ID: id, Name: "Cluster test " + id, Roles: roles, JWKS: jwks}); err != nil {
		t.Fatalf("add member %s: %v", id, err)
	}
	return c.member(t, i, id, key, clusterRetry)
}
