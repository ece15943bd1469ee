package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/sparr-dev/sparr/client"
	"github.com/sparr-dev/sparr/protocol/api"
	"github.com/sparr-dev/sparr/server"
	"github.com/sparr-dev/sparr/server/cluster"
	"github.com/sparr-dev/sparr/server/keyring"
	"github.com/sparr-dev/sparr/server/store"
)

// clusterFlags are sparr serve's flags of a replicated hub.
type clusterFlags struct {
	enabled           bool
	nodeID, raftAddr  string
	join              string
	raftDial          string
	httpPeers         string
	snapshotThreshold uint64

	serverList string            // --cluster-servers
	servers    []cluster.Server  // parsed from serverList
	dial       map[string]string // --raft-dial
	urls       map[string]string // --http-peers
}

func (c *clusterFlags) register(fs *flagSet) {
	fs.BoolVar(&c.enabled, "cluster", false, "run this hub as one node of a replicated hub (docs/operations.md, Running a cluster)")
	fs.StringVar(&c.serverList, "cluster-servers", "", "with --cluster, the cluster's servers, this node among them and the same on every node, to bootstrap a new cluster: `LIST` of ID=HOST:PORT (raft addresses)")
	fs.StringVar(&c.nodeID, "node-id", "", "with --cluster, this node's `ID` (letters, digits, - and _), such as n1")
	fs.StringVar(&c.raftAddr, "raft-addr", "", "with --cluster, the `HOST:PORT` this node listens on for raft and the others reach it at")
	fs.StringVar(&c.join, "join", "", "with --cluster, instead of --cluster-servers: the `URL` of a member of a running cluster, which adds this node (signed for with DIR/keys/operator.jwk)")
	fs.StringVar(&c.raftDial, "raft-dial", "", "with --cluster, the addresses this node dials to reach others instead of theirs in the configuration, for a proxy or NAT between them: `LIST` of ID=HOST:PORT")
	fs.StringVar(&c.httpPeers, "http-peers", "", "with --cluster, every node's HTTP address, where followers forward requests to the leader: `LIST` of ID=URL, such as n1=https://hub1.example:8443")
	fs.Uint64Var(&c.snapshotThreshold, "raft-snapshot-threshold", 8192, "with --cluster, replicated-log `ENTRIES` applied between snapshots of the data file")
}

// check validates the cluster's flags.
func (c *clusterFlags) check(name string) error {
	peers := c.serverList
	if !c.enabled {
		for flag, v := range map[string]string{"node-id": c.nodeID, "raft-addr": c.raftAddr, "join": c.join, "raft-dial": c.raftDial, "http-peers": c.httpPeers, "cluster-servers": c.serverList} {
			if v != "" {
				return usagef("%s: --%s needs --cluster", name, flag)
			}
		}
		return nil
	}
	if !cluster.ValidID(c.nodeID) {
		return usagef("%s: --node-id %q: give this node's id, 1 to 64 letters, digits, - and _, such as n1", name, c.nodeID)
	}
	if _, port, err := net.SplitHostPort(c.raftAddr); err != nil || port == "" {
		return usagef("%s: --raft-addr %q: give the HOST:PORT this node listens on for raft, such as 10.0.0.1:7001", name, c.raftAddr)
	}
	switch {
	case peers == "" && c.join == "":
		return usagef("%s: --cluster needs --cluster-servers ID=HOST:PORT,… (the same list on every node of a new cluster) or --join URL (a member of a running one)", name)
	case peers != "" && c.join != "":
		return usagef("%s: give --cluster-servers or --join, not both", name)
	}
	if peers != "" {
		servers, err := cluster.ParseServers(peers)
		if err != nil {
			return usagef("%s: --peers: %v", name, err)
		}
		i := slices.IndexFunc(servers, func(s cluster.Server) bool { return s.ID == c.nodeID })
		if i < 0 {
			return usagef("%s: --cluster-servers does not list this node %s (--node-id)", name, c.nodeID)
		}
		if servers[i].Addr != c.raftAddr {
			return usagef("%s: --cluster-servers gives this node %s the address %s, and --raft-addr %s", name, c.nodeID, servers[i].Addr, c.raftAddr)
		}
		c.servers = servers
	}
	if c.join != "" {
		if u, err := url.Parse(c.join); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return usagef("%s: --join %q: give the URL of a node of the cluster, such as https://hub1.example:8443", name, c.join)
		}
	}
	var err error
	if c.dial, err = cluster.ParseDial(c.raftDial); err != nil {
		return usagef("%s: --raft-dial: %v", name, err)
	}
	if c.urls, err = parseHTTPPeers(c.httpPeers); err != nil {
		return usagef("%s: --http-peers: %v", name, err)
	}
	if c.snapshotThreshold == 0 {
		return usagef("%s: --raft-snapshot-threshold 0: want at least 1 entry", name)
	}
	return nil
}

// parseHTTPPeers parses "n1=http://127.0.0.1:8081,…".
func parseHTTPPeers(s string) (map[string]string, error) {
	out := map[string]string{}
	for part := range strings.SplitSeq(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		id, raw, ok := strings.Cut(part, "=")
		if !ok || !cluster.ValidID(id) {
			return nil, fmt.Errorf("%q: want ID=URL", part)
		}
		u, err := url.Parse(raw)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || (u.Path != "" && u.Path != "/") {
			return nil, fmt.Errorf("%q: want the node's base URL, such as https://hub1.example:8443", part)
		}
		if _, dup := out[id]; dup {
			return nil, fmt.Errorf("%q: node %s given twice", part, id)
		}
		out[id] = strings.TrimSuffix(raw, "/")
	}
	return out, nil
}

// raftDir is where a node keeps its raft log and snapshots.
func raftDir(data string) string { return filepath.Join(data, "raft") }

// startNode starts this node of the cluster over the store.
func (c *clusterFlags) startNode(data string, st *store.Store, log *slog.Logger) (*cluster.Node, error) {
	node, err := cluster.New(cluster.Config{
		NodeID: c.nodeID, RaftAddr: c.raftAddr, Dir: raftDir(data), Store: st,
		Bootstrap: c.servers, Dial: c.dial, Logger: log, SnapshotThreshold: c.snapshotThreshold,
	})
	if err != nil {
		return nil, err
	}
	log.Info("cluster node started", "node", c.nodeID, "raft_addr", c.raftAddr, "bootstrap", cluster.String(c.servers), "join", c.join)
	return node, nil
}

// joinCluster asks the cluster at --join to add this node, signed for with
// the operator key, until it is added or ctx ends.
func (c *clusterFlags) joinCluster(ctx context.Context, data string, node *cluster.Node, log *slog.Logger) {
	key, err := keyring.LoadOperator(keyring.OperatorKeyPath(keysDir(data)))
	if err != nil {
		log.Error("joining the cluster needs the operator key in DIR/keys; add this node with sparr cluster join instead", "error", err)
		return
	}
	for wait := time.Second; ; wait = min(2*wait, 30*time.Second) {
		if st := node.Status(); slices.ContainsFunc(st.Servers, func(m cluster.Member) bool { return m.ID == c.nodeID }) {
			log.Info("this node is in the cluster", "node", c.nodeID, "leader", st.LeaderID)
			return
		}
		cl, err := connect(ctx, c.join, server.OperatorID, key, client.Retry{Attempts: 1})
		if err == nil {
			_, err = cl.AddClusterServer(ctx, api.ClusterServerRequest{ID: c.nodeID, RaftAddr: c.raftAddr})
		}
		if err == nil {
			log.Info("joined the cluster", "node", c.nodeID, "via", c.join)
			return
		}
		log.Warn("joining the cluster failed; trying again", "via", c.join, "error", err, "wait", wait.String())
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
	}
}

func clusterCommands() []*command {
	return []*command{
		{name: "status", summary: "show a node's view of the cluster", run: runClusterStatus},
		{name: "join", summary: "add a server to the cluster", run: runClusterJoin},
		{name: "remove", summary: "remove a server from the cluster", run: runClusterRemove},
		{name: "transfer-leadership", summary: "hand the leadership to another node", run: runClusterTransfer},
	}
}

func runClusterStatus(ctx context.Context, e *env, name string, args []string) error {
	fs := e.flags(name, "--hub URL [--json]", "Status prints the node at --hub's view of the cluster: its state, the leader,\nthe term, the commit and applied indexes, the last contact with the leader,\nand the configuration. Ask each node to see them all.")
	var h hubFlags
	h.register(fs)
	asJSON := fs.Bool("json", false, "print the hub's JSON answer")
	args, err := fs.parse(args)
	if err != nil {
		return err
	}
	if err := noArgs(name, args); err != nil {
		return err
	}
	c, err := h.client(ctx, name)
	if err != nil {
		return err
	}
	st, err := c.ClusterStatus(ctx)
	if err != nil {
		return hubError(h.hub, err)
	}
	return printCluster(e, st, *asJSON)
}

func printCluster(e *env, st *api.ClusterStatus, asJSON bool) error {
	if asJSON {
		return printJSON(e.stdout, st)
	}
	leader := st.LeaderID
	if leader == "" {
		leader = "(none)"
	} else {
		leader += " " + st.LeaderRaftAddr
		if st.LeaderURL != "" {
			leader += " " + st.LeaderURL
		}
	}
	contact := "never"
	if st.LastContact != nil {
		contact = st.LastContact.Format(time.RFC3339Nano)
	}
	fmt.Fprintf(e.stdout, "node %s: %s, term %d\nleader: %s\ncommit index %d, applied index %d, last log index %d\nlast contact: %s\n",
		st.NodeID, st.State, st.Term, leader, st.CommitIndex, st.AppliedIndex, st.LastLogIndex, contact)
	tw := tabwriter.NewWriter(e.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tRAFT ADDRESS\tSUFFRAGE\tLEADER\tURL")
	for _, s := range st.Servers {
		l := ""
		if s.Leader {
			l = "*"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", s.ID, s.RaftAddr, s.Suffrage, l, s.URL)
	}
	return tw.Flush()
}

func runClusterJoin(ctx context.Context, e *env, name string, args []string) error {
	fs := e.flags(name, "--hub URL --node-id ID --raft-addr HOST:PORT", "Join adds a voting server to the cluster (the node at --hub forwards it to the\nleader). Start the new node with sparr serve --cluster --join URL, the same\nkeys and --issuer as the others; sparr serve --join does this itself.")
	var h hubFlags
	h.register(fs)
	id := fs.String("node-id", "", "the new node's `ID`")
	addr := fs.String("raft-addr", "", "the new node's raft address, `HOST:PORT`")
	args, err := fs.parse(args)
	if err != nil {
		return err
	}
	if err := noArgs(name, args); err != nil {
		return err
	}
	if _, err := cluster.ParseServers(*id + "=" + *addr); err != nil {
		return usagef("%s: --node-id %q --raft-addr %q: %v", name, *id, *addr, err)
	}
	c, err := h.client(ctx, name)
	if err != nil {
		return err
	}
	st, err := c.AddClusterServer(ctx, api.ClusterServerRequest{ID: *id, RaftAddr: *addr})
	if err != nil {
		return hubError(h.hub, err)
	}
	return printCluster(e, st, false)
}

func runClusterRemove(ctx context.Context, e *env, name string, args []string) error {
	fs := e.flags(name, "--hub URL --node-id ID", "Remove takes a server out of the cluster's configuration.")
	var h hubFlags
	h.register(fs)
	id := fs.String("node-id", "", "the `ID` of the node to remove")
	args, err := fs.parse(args)
	if err != nil {
		return err
	}
	if err := noArgs(name, args); err != nil {
		return err
	}
	if !cluster.ValidID(*id) {
		return usagef("%s: --node-id %q: give the id of a server of the cluster", name, *id)
	}
	c, err := h.client(ctx, name)
	if err != nil {
		return err
	}
	st, err := c.RemoveClusterServer(ctx, *id)
	if err != nil {
		return hubError(h.hub, err)
	}
	return printCluster(e, st, false)
}

func runClusterTransfer(ctx context.Context, e *env, name string, args []string) error {
	fs := e.flags(name, "--hub URL [--to ID]", "Transfer-leadership has the leader hand the leadership to the node --to, or to\nthe most up-to-date follower.")
	var h hubFlags
	h.register(fs)
	to := fs.String("to", "", "the `ID` of the node to lead")
	args, err := fs.parse(args)
	if err != nil {
		return err
	}
	if err := noArgs(name, args); err != nil {
		return err
	}
	if *to != "" && !cluster.ValidID(*to) {
		return usagef("%s: --to %q: give the id of a server of the cluster", name, *to)
	}
	c, err := h.client(ctx, name)
	if err != nil {
		return err
	}
	st, err := c.TransferLeadership(ctx, *to)
	if err != nil {
		return hubError(h.hub, err)
	}
	return printCluster(e, st, false)
}
