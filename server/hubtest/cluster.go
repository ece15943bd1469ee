package hubtest

import (
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/sparr-dev/sparr/server/cluster"
	"github.com/sparr-dev/sparr/server/keyring"
)

// nodeOptions make a test hub one node of a cluster.
type nodeOptions struct {
	id, raftAddr      string
	servers           []cluster.Server
	urls              map[string]string
	issuer            string
	snapshotThreshold uint64
	trailingLogs      uint64
}

// ClusterOptions configure StartCluster.
type ClusterOptions struct {
	Options
	// Nodes is how many nodes; default 3.
	Nodes int
	// SnapshotThreshold and TrailingLogs as in cluster.Config (small
	// values force snapshots and their installation).
	SnapshotThreshold, TrailingLogs uint64
}

// A Cluster is a replicated test hub: nodes on loopback, each a real hub
// over its own bbolt file and raft log in a temporary directory, with the
// same keys (copied, as an operator copies DIR/keys) and issuer, raft over
// real TCP.
type Cluster struct {
	Nodes  []*Hub
	Issuer string
}

// StartCluster starts a cluster and waits for a leader; it stops every
// node when the test ends.
func StartCluster(t testing.TB, opts ClusterOptions) *Cluster {
	t.Helper()
	ginQuiet.Do(func() { gin.SetMode(gin.ReleaseMode) })
	n := opts.Nodes
	if n == 0 {
		n = 3
	}
	keysDir := filepath.Join(t.TempDir(), "keys")
	if _, err := keyring.Init(keysDir, keyring.Options{Algorithm: opts.Algorithm, LogOrigin: "hubtest.example/log"}); err != nil {
		t.Fatal(err)
	}
	c := &Cluster{}
	// The issuer is the cluster's front door, as a load balancer would
	// be: it passes each request to a live node, the first it finds.
	front := httptest.NewServer(&httputil.ReverseProxy{Rewrite: func(r *httputil.ProxyRequest) {
		for _, h := range c.Nodes {
			if h.running.Load() {
				u, _ := url.Parse(h.URL)
				r.SetURL(u)
				return
			}
		}
		u, _ := url.Parse(c.Nodes[0].URL)
		r.SetURL(u)
	}})
	t.Cleanup(front.Close)
	c.Issuer = front.URL
	urls := map[string]string{}
	var servers []cluster.Server
	for i := range n {
		h := &Hub{Dir: t.TempDir(), opts: opts.Options, t: t}
		copyDir(t, keysDir, filepath.Join(h.Dir, "keys"))
		h.srv = httptest.NewUnstartedServer(http.NotFoundHandler())
		h.srv.Start()
		h.URL = h.srv.URL
		id := fmt.Sprintf("n%d", i+1)
		urls[id] = h.URL
		servers = append(servers, cluster.Server{ID: id, Addr: freeAddr(t)})
		c.Nodes = append(c.Nodes, h)
	}
	for i, h := range c.Nodes {
		h.opts.node = &nodeOptions{id: servers[i].ID, raftAddr: servers[i].Addr, servers: servers, urls: urls, issuer: c.Issuer,
			snapshotThreshold: opts.SnapshotThreshold, trailingLogs: opts.TrailingLogs}
		h.open(t)
		t.Cleanup(h.shut)
		h.setOperator(t)
	}
	c.Leader(t)
	return c
}

// Leader waits for the live nodes to agree on a leader that is serving
// (its leader's work started) and returns it.
func (c *Cluster) Leader(t testing.TB) *Hub {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		for _, h := range c.Nodes {
			if h.Hub != nil && h.Node.IsLeader() && h.Hub.Leading() {
				return h
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("no node became the cluster's serving leader within 30 s")
	return nil
}

// Followers returns the live nodes that are not the leader.
func (c *Cluster) Followers(t testing.TB) []*Hub {
	t.Helper()
	l := c.Leader(t)
	var out []*Hub
	for _, h := range c.Nodes {
		if h != l && h.Hub != nil {
			out = append(out, h)
		}
	}
	return out
}

// Stop stops a node (its hub, raft and store), keeping its files and URL.
func (h *Hub) Stop() { h.stop() }

// Start starts a stopped node again on its files.
func (h *Hub) Start(t testing.TB) {
	t.Helper()
	h.open(t)
}

// freeAddr returns a loopback address with a port free a moment ago.
func freeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// copyDir copies the key files of from to to, each readable by its owner
// only, as the operator copies DIR/keys to each node.
func copyDir(t testing.TB, from, to string) {
	t.Helper()
	if err := os.MkdirAll(to, 0o700); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(from)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(from, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(to, e.Name()), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}
