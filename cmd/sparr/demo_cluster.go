package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/sparr-dev/sparr/internal/freeport"
	"github.com/sparr-dev/sparr/protocol"
)

// demoBinary returns the sparr binary the demo starts a cluster's nodes
// from: this one. Tests, which run the demo inside the test binary, point
// it at a sparr they built.
var demoBinary = os.Executable

// A demoNode is one node of the demo's cluster: a sparr serve --cluster
// process of its own, on loopback.
type demoNode struct {
	id, data, url string
	args          []string
	cmd           *exec.Cmd
	exited        chan struct{}
	logs          *demoLog
}

// A demoLog keeps what a node writes to its stderr, to show if it fails.
type demoLog struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *demoLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *demoLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// startNodes starts the demo's cluster: n sparr serve --cluster processes
// on loopback, each with its own data directory holding a copy of the
// hub's keys, and waits until they have a leader. The first node's URL is
// the hub's issuer; every client knows all the nodes' URLs.
func (d *demo) startNodes(ctx context.Context, kdir string) error {
	bin, err := demoBinary()
	if err != nil {
		return fmt.Errorf("find the sparr binary to start the nodes: %w", err)
	}
	d.bin = bin
	var peers, httpPeers []string
	raft := map[string]string{}
	for i := range d.clusterSize {
		id := fmt.Sprintf("n%d", i+1)
		addr, err := demoFreeAddr()
		if err != nil {
			return err
		}
		if raft[id], err = demoFreeAddr(); err != nil {
			return err
		}
		node := &demoNode{id: id, data: filepath.Join(d.dir, id), url: "http://" + addr}
		if err := copyKeys(kdir, filepath.Join(node.data, "keys")); err != nil {
			return err
		}
		peers = append(peers, id+"="+raft[id])
		httpPeers = append(httpPeers, id+"="+node.url)
		d.nodes = append(d.nodes, node)
		d.urls = append(d.urls, node.url)
	}
	d.issuer = d.nodes[0].url
	for _, node := range d.nodes {
		node.args = []string{"serve", "--cluster", "--node-id", node.id, "--raft-addr", raft[node.id],
			"--cluster-servers", strings.Join(peers, ","), "--http-peers", strings.Join(httpPeers, ","),
			"--data", node.data, "--addr", strings.TrimPrefix(node.url, "http://"), "--issuer", d.issuer, "--insecure-http",
			"--metrics-addr", "off", "--webhook-allow", "127.0.0.0/8", "--webhook-allow-http",
			"--checkpoint-interval", "1s", "--erasure-period", demoErasurePeriod.String(),
			"--payee-banks", "SE:800=bank-b"}
		if err := node.start(ctx, bin); err != nil {
			return err
		}
	}
	_, err = d.waitLeader(ctx, nil)
	return err
}

// copyKeys copies the hub's key files to a node's data directory.
func copyKeys(from, to string) error {
	entries, err := os.ReadDir(from)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(to, 0o700); err != nil {
		return err
	}
	for _, e := range entries {
		if e.IsDir() {
			continue
		}
		b, err := os.ReadFile(filepath.Join(from, e.Name()))
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(to, e.Name()), b, 0o600); err != nil {
			return err
		}
	}
	return nil
}

// demoFreeAddr returns a free loopback address below the ephemeral range,
// which no connection takes while its node is down.
func demoFreeAddr() (string, error) { return freeport.Addr() }

// start starts the node and waits until it listens; the port of a node
// just killed may take a moment to be free.
func (n *demoNode) start(ctx context.Context, bin string) error {
	deadline := time.Now().Add(30 * time.Second)
	for {
		cmd := exec.Command(bin, n.args...)
		var environ []string
		for _, kv := range os.Environ() {
			if !strings.HasPrefix(kv, "SPARR_") {
				environ = append(environ, kv)
			}
		}
		cmd.Env = append(environ, "SPARR_LOG_LEVEL=warn")
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			return err
		}
		n.logs = &demoLog{}
		cmd.Stderr = n.logs
		if err := cmd.Start(); err != nil {
			return fmt.Errorf("start node %s: %w", n.id, err)
		}
		exited := make(chan struct{})
		listening := make(chan bool, 1)
		go func() {
			s := bufio.NewScanner(stdout)
			said := false
			for s.Scan() {
				if !said && strings.HasPrefix(s.Text(), "listening on ") {
					said = true
					listening <- true
				}
			}
			if !said {
				listening <- false
			}
			io.Copy(io.Discard, stdout)
		}()
		go func() { cmd.Wait(); close(exited) }()
		n.cmd, n.exited = cmd, exited
		select {
		case ok := <-listening:
			if ok {
				return nil
			}
		case <-ctx.Done():
			n.kill()
			return ctx.Err()
		case <-time.After(30 * time.Second):
			n.kill()
			return fmt.Errorf("node %s did not listen within 30 s: %s", n.id, n.logs)
		}
		<-exited
		n.cmd = nil
		if !strings.Contains(n.logs.String(), "address already in use") || time.Now().After(deadline) {
			return fmt.Errorf("node %s exited: %s", n.id, strings.TrimSpace(n.logs.String()))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// kill ends the node with SIGKILL, as a power cut would.
func (n *demoNode) kill() {
	if n.cmd == nil {
		return
	}
	n.cmd.Process.Kill()
	<-n.exited
	n.cmd = nil
}

// stop ends the node with SIGTERM (SIGKILL after 10 s).
func (n *demoNode) stop() {
	if n.cmd == nil {
		return
	}
	n.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-n.exited:
		n.cmd = nil
	case <-time.After(10 * time.Second):
		n.kill()
	}
}

// A demoNodeStatus is what a node says of itself.
type demoNodeStatus struct {
	State        string `json:"state"`
	LeaderID     string `json:"leader_id"`
	CommitIndex  uint64 `json:"commit_index"`
	AppliedIndex uint64 `json:"applied_index"`
}

// status asks a node for its view of the cluster, with sparr cluster
// status as the operator.
func (d *demo) status(ctx context.Context, n *demoNode) (*demoNodeStatus, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, d.bin, "cluster", "status", "--hub", n.url, "--data", n.data, "--json").Output()
	if err != nil {
		return nil, err
	}
	st := new(demoNodeStatus)
	if err := json.Unmarshal(out, st); err != nil {
		return nil, err
	}
	return st, nil
}

// waitLeader waits until a running node other than not says it leads.
func (d *demo) waitLeader(ctx context.Context, not *demoNode) (*demoNode, error) {
	deadline := time.Now().Add(30 * time.Second)
	for {
		for _, n := range d.nodes {
			if n == not || n.cmd == nil {
				continue
			}
			if st, err := d.status(ctx, n); err == nil && strings.EqualFold(st.State, "leader") {
				return n, nil
			}
		}
		if time.Now().After(deadline) {
			return nil, errors.New("the nodes elected no leader within 30 s")
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// killLeader is the cluster demo's interlude between steps: the leader is
// killed with SIGKILL, the others elect a new one, and the killed node is
// started again and catches up. The banks' clients know every node and
// fail over on their own.
func (s *flagStory) killLeader(ctx context.Context) error {
	d := s.demo
	leader, err := d.waitLeader(ctx, nil)
	if err != nil {
		return err
	}
	s.printf("\nMeanwhile, the hub's leader, node %s, is killed with SIGKILL, as a power cut would.\n", leader.id)
	killed := time.Now()
	leader.kill()
	next, err := d.waitLeader(ctx, leader)
	if err != nil {
		return err
	}
	s.printf("  Node %s took over as leader %d ms later. The banks' clients know every node and\n", next.id, time.Since(killed).Milliseconds())
	s.printf("  send to whichever answers; what the hub acknowledged before is on every node.\n")
	if err := leader.start(ctx, d.bin); err != nil {
		return err
	}
	st, err := d.status(ctx, next)
	if err != nil {
		return err
	}
	err = d.waitFor(ctx, "node "+leader.id+" catching up", func() bool {
		got, err := d.status(ctx, leader)
		return err == nil && got.AppliedIndex >= st.CommitIndex
	})
	if err != nil {
		return err
	}
	s.printf("  Node %s started again on its data and caught up with the others (replicated entry %d).\n", leader.id, st.CommitIndex)
	return nil
}

// waitLogged waits until the hub's latest checkpoint covers an entry of
// each action in want, as a cluster's leader signs one each second and
// publishes the erasures' tombstones on its job interval, and returns the
// verification of it.
func (d *demo) waitLogged(ctx context.Context, want []protocol.LogAction) (*protocol.LogReport, [][]byte, error) {
	key, err := protocol.NewLogVerifier(d.logKey)
	if err != nil {
		return nil, nil, err
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		f := &keptLog{LogFetcher: d.regulator.Log()}
		_, rep, err := (&protocol.LogAuditor{Fetcher: f, Key: key}).Verify(ctx, nil)
		if err != nil {
			return nil, nil, err
		}
		missing := ""
		for _, a := range want {
			if rep.Actions[a] == 0 {
				missing = string(a)
			}
		}
		if missing == "" {
			return rep, f.lines, nil
		}
		if time.Now().After(deadline) {
			return nil, nil, fmt.Errorf("the log's checkpoints hold no %s entry after 30 s", missing)
		}
		select {
		case <-ctx.Done():
			return nil, nil, ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
}
