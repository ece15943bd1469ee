// Package cluster replicates the hub's store across three or five nodes
// with hashicorp/raft. The leader decides and signs each command (see
// server/decide), [Node.Propose] appends its encoding ([state.Encode]) to
// the replicated log, and every node's finite-state machine decodes it and
// applies it to its own bbolt store ([store.Store.ApplyEntries]), batch by
// batch, each batch one transaction that also records the log index it
// reached, so a node that replays its log after a crash changes nothing.
//
// # Storage
//
// The raft log and its term and vote live in DIR/raft/raft.db, a bbolt
// file (github.com/hashicorp/raft-boltdb/v2): the same storage engine the
// hub already runs, vets and backs up, with one fsync per appended batch.
// Snapshots are the store's data file itself, streamed from a read
// transaction ([store.FileSnapshot]) into DIR/raft/snapshots; installing
// one on a node that fell behind replaces its data file
// ([store.Store.Restore]).
//
// # Addresses
//
// Each node has an id (n1), a raft address it listens on, and the raft
// addresses of the others as the cluster's configuration holds them. A
// node can dial another at an address of its own instead (Config.Dial: a
// proxy or a NAT between them).
package cluster

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"

	"github.com/sparr-dev/sparr/server/state"
	"github.com/sparr-dev/sparr/server/store"
)

// Errors returned by a [Node].
var (
	// ErrNotLeader is returned by [Node.Propose] and the membership
	// changes on a node that is not the leader, or that lost its
	// leadership before the command was committed (it may still be
	// committed by the next leader: a retry of an idempotent submission
	// is answered from its stored outcome).
	ErrNotLeader = errors.New("this node is not the cluster's leader")
	// ErrTooLarge is returned by [Node.Propose] for a command whose
	// encoding exceeds MaxCommandSize.
	ErrTooLarge = errors.New("command too large to replicate")
)

// MaxCommandSize is the largest encoded command [Node.Propose] appends:
// raft's SuggestedMaxDataSize (512 KiB). The hub's requests are at most
// 1 MiB of JSON, but the commands they make are far smaller (see
// docs/operations.md).
const MaxCommandSize = raft.SuggestedMaxDataSize

// A Server is one member of the cluster's configuration.
type Server struct {
	ID   string `json:"id"`
	Addr string `json:"raft_addr"`
}

// ParseServers parses a list of servers, "n1=127.0.0.1:7001,n2=…": ids
// and addresses (host:port) unique.
func ParseServers(s string) ([]Server, error) {
	var out []Server
	seen := map[string]bool{}
	for part := range strings.SplitSeq(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		id, addr, ok := strings.Cut(part, "=")
		if !ok || !ValidID(id) {
			return nil, fmt.Errorf("%q: want ID=HOST:PORT, the id of letters, digits, '-' and '_'", part)
		}
		if _, port, err := net.SplitHostPort(addr); err != nil || port == "" {
			return nil, fmt.Errorf("%q: the address %q is not HOST:PORT", part, addr)
		}
		if seen[id] || seen["addr "+addr] {
			return nil, fmt.Errorf("%q: id or address given twice", part)
		}
		seen[id], seen["addr "+addr] = true, true
		out = append(out, Server{ID: id, Addr: addr})
	}
	if len(out) == 0 {
		return nil, errors.New("no servers given")
	}
	return out, nil
}

// ValidID reports whether id can name a node: 1 to 64 letters, digits,
// '-' and '_'.
func ValidID(id string) bool {
	if id == "" || len(id) > 64 {
		return false
	}
	for _, r := range id {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			return false
		}
	}
	return true
}

// Config is what [New] needs. NodeID, RaftAddr, Dir and Store are
// required.
type Config struct {
	// NodeID names this node in the cluster.
	NodeID string
	// RaftAddr is the address this node listens on for raft (host:port)
	// and announces to the others.
	RaftAddr string
	// Dir holds the raft log and snapshots (it is created).
	Dir string
	// Store is the hub's store this node applies committed commands to.
	Store *store.Store
	// Bootstrap is the cluster's first configuration, this node among
	// them: given to every node of a new cluster, it is used only when
	// this node has no raft state yet, so starting again with it is
	// harmless. Empty: the node waits to be added ([Node.AddVoter] on the
	// leader).
	Bootstrap []Server
	// Dial maps node ids to the address this node dials to reach them,
	// instead of the one in the configuration (a proxy, a NAT).
	Dial map[string]string
	// Logger receives raft's warnings and errors; nil discards them.
	Logger *slog.Logger
	// SnapshotThreshold is how many entries are applied between
	// snapshots; default 8192. SnapshotInterval is how often raft checks;
	// default 2 minutes. TrailingLogs is how many entries stay in the log
	// after a snapshot; default 10240.
	SnapshotThreshold uint64
	SnapshotInterval  time.Duration
	TrailingLogs      uint64
	// ApplyTimeout bounds how long [Node.Propose] waits for the command
	// to be appended; default 10 s.
	ApplyTimeout time.Duration
	// Fast shortens raft's timeouts (heartbeat, election, lease) for
	// tests on loopback.
	Fast bool
}

// A Node is one node of the cluster: a raft instance whose state machine
// is the hub's store.
type Node struct {
	cfg       Config
	raft      *raft.Raft
	transport *raft.NetworkTransport
	logs      *raftboltdb.BoltStore
	fsm       *fsm

	mu       sync.Mutex
	watchers []func(leader bool)
	leader   bool
	done     chan struct{}
}

// New starts a node: it opens (or creates) its raft log, restores the
// store from the latest snapshot if the store is behind it (a crash
// while a snapshot was being installed), bootstraps the cluster if
// Config.Bootstrap is given and the node has no state, and starts raft.
func New(cfg Config) (*Node, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Join(cfg.Dir, "snapshots"), 0o700); err != nil {
		return nil, fmt.Errorf("cluster: %w", err)
	}
	hlog := hclog.New(&hclog.LoggerOptions{Name: "raft", Level: hclog.Warn, Output: slogWriter{cfg.Logger}, DisableTime: true})

	rc := cfg.raftConfig(hlog)

	logs, err := raftboltdb.New(raftboltdb.Options{Path: filepath.Join(cfg.Dir, "raft.db")})
	if err != nil {
		return nil, fmt.Errorf("cluster: open the raft log: %w", err)
	}
	snaps, err := raft.NewFileSnapshotStoreWithLogger(filepath.Join(cfg.Dir, "snapshots"), 2, hlog)
	if err != nil {
		logs.Close()
		return nil, fmt.Errorf("cluster: %w", err)
	}
	if err := catchUp(cfg.Store, snaps); err != nil {
		logs.Close()
		return nil, err
	}
	n := &Node{cfg: cfg, logs: logs, fsm: &fsm{store: cfg.Store}, done: make(chan struct{})}
	advertise, err := net.ResolveTCPAddr("tcp", cfg.RaftAddr)
	if err != nil {
		logs.Close()
		return nil, fmt.Errorf("cluster: raft address %q: %w", cfg.RaftAddr, err)
	}
	tc := &raft.NetworkTransportConfig{Logger: hlog, MaxPool: 3, Timeout: 10 * time.Second}
	if len(cfg.Dial) > 0 {
		tc.ServerAddressProvider = dialer(cfg.Dial)
	}
	n.transport, err = raft.NewTCPTransportWithConfig(cfg.RaftAddr, advertise, tc)
	if err != nil {
		logs.Close()
		return nil, fmt.Errorf("cluster: listen for raft on %s: %w", cfg.RaftAddr, err)
	}
	has, err := raft.HasExistingState(logs, logs, snaps)
	if err != nil {
		n.closeStores()
		return nil, fmt.Errorf("cluster: %w", err)
	}
	if !has {
		// A new replicated log, whose indexes start from 1: an index the
		// data file recorded belongs to another log (a cluster restored
		// from a copy of one data file).
		if err := cfg.Store.ResetAppliedIndex(); err != nil {
			n.closeStores()
			return nil, fmt.Errorf("cluster: %w", err)
		}
	}
	if len(cfg.Bootstrap) > 0 {
		if !has {
			var conf raft.Configuration
			for _, s := range cfg.Bootstrap {
				conf.Servers = append(conf.Servers, raft.Server{Suffrage: raft.Voter, ID: raft.ServerID(s.ID), Address: raft.ServerAddress(s.Addr)})
			}
			if err := raft.BootstrapCluster(rc, logs, logs, snaps, n.transport, conf); err != nil {
				n.closeStores()
				return nil, fmt.Errorf("cluster: bootstrap: %w", err)
			}
		}
	}
	notify := make(chan bool, 8)
	rc.NotifyCh = notify
	n.raft, err = raft.NewRaft(rc, n.fsm, logs, logs, snaps, n.transport)
	if err != nil {
		n.closeStores()
		return nil, fmt.Errorf("cluster: %w", err)
	}
	go n.watch(notify)
	return n, nil
}

// withDefaults checks cfg and fills in its defaults.
func (cfg Config) withDefaults() (Config, error) {
	switch {
	case !ValidID(cfg.NodeID):
		return cfg, fmt.Errorf("cluster: node id %q: want 1 to 64 letters, digits, '-' and '_'", cfg.NodeID)
	case cfg.RaftAddr == "":
		return cfg, errors.New("cluster: Config.RaftAddr is required")
	case cfg.Dir == "":
		return cfg, errors.New("cluster: Config.Dir is required")
	case cfg.Store == nil:
		return cfg, errors.New("cluster: Config.Store is required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.SnapshotThreshold == 0 {
		cfg.SnapshotThreshold = 8192
	}
	if cfg.SnapshotInterval == 0 {
		cfg.SnapshotInterval = 2 * time.Minute
	}
	if cfg.TrailingLogs == 0 {
		cfg.TrailingLogs = 10240
	}
	if cfg.ApplyTimeout == 0 {
		cfg.ApplyTimeout = 10 * time.Second
	}
	return cfg, nil
}

// raftConfig is raft's configuration for this node.
func (cfg Config) raftConfig(hlog hclog.Logger) *raft.Config {
	rc := raft.DefaultConfig()
	rc.LocalID = raft.ServerID(cfg.NodeID)
	rc.Logger = hlog
	rc.SnapshotThreshold = cfg.SnapshotThreshold
	rc.SnapshotInterval = cfg.SnapshotInterval
	rc.TrailingLogs = cfg.TrailingLogs
	// The store keeps the applied index in its own transactions: a
	// restarted node keeps its data file and replays only the entries
	// after it, never an older snapshot over a newer file.
	rc.NoSnapshotRestoreOnStart = true
	// Commands proposed together are appended together: one fsync of
	// the raft log for many.
	rc.BatchApplyCh = true
	if cfg.Fast {
		rc.HeartbeatTimeout = 500 * time.Millisecond
		rc.ElectionTimeout = 500 * time.Millisecond
		rc.LeaderLeaseTimeout = 250 * time.Millisecond
		rc.CommitTimeout = 5 * time.Millisecond
	}
	return rc
}

// catchUp restores the store from the latest snapshot when the store is
// behind it: raft, started with NoSnapshotRestoreOnStart, replays only the
// entries after the snapshot, so a node that crashed after saving an
// installed snapshot but before its data file was replaced restores it
// now.
func catchUp(st *store.Store, snaps *raft.FileSnapshotStore) error {
	list, err := snaps.List()
	if err != nil || len(list) == 0 {
		return err
	}
	applied, err := st.AppliedIndex()
	if err != nil {
		return fmt.Errorf("cluster: %w", err)
	}
	if applied >= list[0].Index {
		return nil
	}
	_, rc, err := snaps.Open(list[0].ID)
	if err != nil {
		return fmt.Errorf("cluster: open snapshot %s: %w", list[0].ID, err)
	}
	defer rc.Close()
	if err := st.Restore(rc); err != nil {
		return fmt.Errorf("cluster: restore snapshot %s: %w", list[0].ID, err)
	}
	return nil
}

func (n *Node) closeStores() {
	n.transport.Close()
	n.logs.Close()
}

// watch follows raft's leadership notifications and calls the watchers.
func (n *Node) watch(notify <-chan bool) {
	for {
		select {
		case <-n.done:
			return
		case leader := <-notify:
			n.mu.Lock()
			n.leader = leader
			ws := append([]func(bool){}, n.watchers...)
			n.mu.Unlock()
			for _, w := range ws {
				w(leader)
			}
		}
	}
}

// OnLeadership registers fn, called (in order, from one goroutine) each
// time this node gains (true) or loses (false) the leadership.
func (n *Node) OnLeadership(fn func(leader bool)) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.watchers = append(n.watchers, fn)
}

// OnApplied registers fn, called after each batch of commands this node
// applied (as leader or follower), with each command and its result; a
// command that failed is left out. fn runs in raft's apply goroutine:
// it must be quick.
func (n *Node) OnApplied(fn func(state.Command, *store.Result)) {
	n.fsm.mu.Lock()
	defer n.fsm.mu.Unlock()
	n.fsm.watchers = append(n.fsm.watchers, fn)
}

// ID returns this node's id.
func (n *Node) ID() string { return n.cfg.NodeID }

// Propose appends cmd to the replicated log and waits until it is
// committed and applied on this node; it returns what applying it did,
// as [store.Store.Apply] would. Only the leader proposes
// ([ErrNotLeader]).
func (n *Node) Propose(cmd state.Command) (*store.Result, error) {
	data, err := EncodeEntry(cmd)
	if err != nil {
		return nil, err
	}
	if len(data) > MaxCommandSize {
		return nil, fmt.Errorf("%w: %s of %d bytes, more than %d", ErrTooLarge, cmd.Kind(), len(data), MaxCommandSize)
	}
	f := n.raft.Apply(data, n.cfg.ApplyTimeout)
	if err := f.Error(); err != nil {
		if errors.Is(err, raft.ErrNotLeader) || errors.Is(err, raft.ErrLeadershipLost) || errors.Is(err, raft.ErrLeadershipTransferInProgress) ||
			errors.Is(err, raft.ErrEnqueueTimeout) || errors.Is(err, raft.ErrRaftShutdown) {
			return nil, fmt.Errorf("%w: %v", ErrNotLeader, err)
		}
		return nil, err
	}
	out, ok := f.Response().(store.Outcome)
	if !ok {
		return nil, fmt.Errorf("cluster: applying %s gave %T", cmd.Kind(), f.Response())
	}
	return out.Result, out.Err
}

// IsLeader reports whether this node is the leader.
func (n *Node) IsLeader() bool { return n.raft.State() == raft.Leader }

// Leader returns the id and raft address of the leader this node knows
// of; empty if none.
func (n *Node) Leader() (id, addr string) {
	a, i := n.raft.LeaderWithID()
	return string(i), string(a)
}

// Barrier waits until every entry committed before it is applied on this
// node, the leader: its store is then current.
func (n *Node) Barrier(timeout time.Duration) error {
	return n.raft.Barrier(timeout).Error()
}

// VerifyLeader checks with a quorum that this node is still the leader.
func (n *Node) VerifyLeader() error {
	if err := n.raft.VerifyLeader().Error(); err != nil {
		return fmt.Errorf("%w: %v", ErrNotLeader, err)
	}
	return nil
}

// Status is a node's view of the cluster.
type Status struct {
	NodeID       string    `json:"node_id"`
	State        string    `json:"state"` // Leader, Follower, Candidate, Shutdown
	LeaderID     string    `json:"leader_id,omitempty"`
	LeaderAddr   string    `json:"leader_raft_addr,omitempty"`
	Term         uint64    `json:"term"`
	CommitIndex  uint64    `json:"commit_index"`
	AppliedIndex uint64    `json:"applied_index"`
	LastIndex    uint64    `json:"last_log_index"`
	LastContact  time.Time `json:"last_contact,omitzero"`
	Servers      []Member  `json:"servers"`
}

// A Member is a server of the configuration as [Status] shows it.
type Member struct {
	ID       string `json:"id"`
	Addr     string `json:"raft_addr"`
	Suffrage string `json:"suffrage"`
	Leader   bool   `json:"leader"`
}

// Status returns this node's view of the cluster.
func (n *Node) Status() Status {
	lid, laddr := n.Leader()
	st := Status{
		NodeID: n.cfg.NodeID, State: n.raft.State().String(), LeaderID: lid, LeaderAddr: laddr,
		Term: n.raft.CurrentTerm(), CommitIndex: n.raft.CommitIndex(), AppliedIndex: n.raft.AppliedIndex(),
		LastIndex: n.raft.LastIndex(),
	}
	if n.raft.State() == raft.Leader {
		st.LastContact = time.Now()
	} else {
		st.LastContact = n.raft.LastContact()
	}
	if f := n.raft.GetConfiguration(); f.Error() == nil {
		for _, s := range f.Configuration().Servers {
			st.Servers = append(st.Servers, Member{ID: string(s.ID), Addr: string(s.Address), Suffrage: s.Suffrage.String(), Leader: string(s.ID) == lid})
		}
	}
	sort.Slice(st.Servers, func(i, j int) bool { return st.Servers[i].ID < st.Servers[j].ID })
	return st
}

// Servers returns the cluster's configuration.
func (n *Node) Servers() ([]Server, error) {
	f := n.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		return nil, err
	}
	var out []Server
	for _, s := range f.Configuration().Servers {
		out = append(out, Server{ID: string(s.ID), Addr: string(s.Address)})
	}
	return out, nil
}

// AddVoter adds a voting server to the cluster (on the leader), or
// changes its address; it returns once the change is committed.
func (n *Node) AddVoter(s Server) error {
	if !ValidID(s.ID) {
		return fmt.Errorf("node id %q: want 1 to 64 letters, digits, '-' and '_'", s.ID)
	}
	return leaderErr(n.raft.AddVoter(raft.ServerID(s.ID), raft.ServerAddress(s.Addr), 0, n.cfg.ApplyTimeout).Error())
}

// RemoveServer removes a server from the cluster (on the leader).
func (n *Node) RemoveServer(id string) error {
	return leaderErr(n.raft.RemoveServer(raft.ServerID(id), 0, n.cfg.ApplyTimeout).Error())
}

// TransferLeadership hands the leadership to the server to, or to the
// most up-to-date follower if to is empty (on the leader).
func (n *Node) TransferLeadership(to string) error {
	if to == "" {
		return leaderErr(n.raft.LeadershipTransfer().Error())
	}
	servers, err := n.Servers()
	if err != nil {
		return err
	}
	for _, s := range servers {
		if s.ID == to {
			return leaderErr(n.raft.LeadershipTransferToServer(raft.ServerID(s.ID), raft.ServerAddress(s.Addr)).Error())
		}
	}
	return fmt.Errorf("no server %q in the cluster", to)
}

// Snapshot takes a snapshot now (tests; operators before an upgrade).
func (n *Node) Snapshot() error { return n.raft.Snapshot().Error() }

// Shutdown stops the node: raft, its transport and its log. It does not
// close the store.
func (n *Node) Shutdown() error {
	err := n.raft.Shutdown().Error()
	close(n.done)
	n.transport.Close()
	if cerr := n.logs.Close(); err == nil {
		err = cerr
	}
	return err
}

func leaderErr(err error) error {
	if errors.Is(err, raft.ErrNotLeader) || errors.Is(err, raft.ErrLeadershipLost) {
		return fmt.Errorf("%w: %v", ErrNotLeader, err)
	}
	return err
}

// dialer is the ServerAddressProvider of Config.Dial.
type dialer map[string]string

func (d dialer) ServerAddr(id raft.ServerID) (raft.ServerAddress, error) {
	if a, ok := d[string(id)]; ok {
		return raft.ServerAddress(a), nil
	}
	return "", errNoOverride
}

// errNoOverride makes the transport dial the configuration's address.
var errNoOverride = errors.New("no address override")

// fsm is the raft state machine over the store.
type fsm struct {
	store    *store.Store
	mu       sync.Mutex
	watchers []func(state.Command, *store.Result)
}

var _ raft.BatchingFSM = (*fsm)(nil)

func (f *fsm) Apply(l *raft.Log) any { return f.ApplyBatch([]*raft.Log{l})[0] }

// ApplyBatch applies a batch of committed entries in one store
// transaction. Each response is a [store.Outcome].
func (f *fsm) ApplyBatch(logs []*raft.Log) []any {
	entries := make([]store.Entry, len(logs))
	bad := make([]error, len(logs))
	for i, l := range logs {
		entries[i].Index = l.Index
		if l.Type != raft.LogCommand {
			continue
		}
		cmd, err := DecodeEntry(l.Data)
		if err != nil {
			bad[i] = fmt.Errorf("cluster: entry %d: %w", l.Index, err)
			continue
		}
		entries[i].Command = cmd
	}
	outs := f.store.ApplyEntries(entries)
	f.mu.Lock()
	ws := f.watchers
	f.mu.Unlock()
	resp := make([]any, len(logs))
	for i, o := range outs {
		if bad[i] != nil {
			o.Err = bad[i]
		}
		resp[i] = o
		if o.Err == nil && entries[i].Command != nil {
			for _, w := range ws {
				w(entries[i].Command, o.Result)
			}
		}
	}
	return resp
}

// Snapshot opens a read transaction of the store; Persist streams it.
func (f *fsm) Snapshot() (raft.FSMSnapshot, error) {
	sn, err := f.store.SnapshotFile()
	if err != nil {
		return nil, err
	}
	return &snapshot{sn}, nil
}

// Restore replaces the store's data file by the snapshot's.
func (f *fsm) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	return f.store.Restore(rc)
}

type snapshot struct{ sn *store.FileSnapshot }

func (s *snapshot) Persist(sink raft.SnapshotSink) error {
	if _, err := s.sn.WriteTo(sink); err != nil {
		sink.Cancel()
		return err
	}
	return sink.Close()
}

func (s *snapshot) Release() { s.sn.Close() }

// slogWriter passes raft's log lines (hclog) to the hub's logger.
type slogWriter struct{ log *slog.Logger }

func (w slogWriter) Write(p []byte) (int, error) {
	line := strings.TrimSpace(string(p))
	level := slog.LevelWarn
	if strings.Contains(line, "[ERROR]") {
		level = slog.LevelError
	}
	w.log.Log(context.Background(), level, line, "component", "raft")
	return len(p), nil
}

// ParseDial parses --raft-dial's "n2=127.0.0.1:7102,…" into a map.
func ParseDial(s string) (map[string]string, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	servers, err := ParseServers(s)
	if err != nil {
		return nil, err
	}
	out := make(map[string]string, len(servers))
	for _, sv := range servers {
		out[sv.ID] = sv.Addr
	}
	return out, nil
}

// String formats servers as ParseServers reads them.
func String(servers []Server) string {
	parts := make([]string, len(servers))
	for i, s := range servers {
		parts[i] = s.ID + "=" + s.Addr
	}
	return strings.Join(parts, ",")
}
