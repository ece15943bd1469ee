package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/sparr-dev/sparr/internal/freeport"
	"github.com/sparr-dev/sparr/internal/procnode"
	"github.com/sparr-dev/sparr/protocol"
)

// demoBinary returns the sparr binary the demo starts a cluster's nodes
// from: this one. Tests, which run the demo inside the test binary, point
// it at a sparr they built.
var demoBinary = os.Executable

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
		// The nodes log warnings only, so as not to drown the story.
		node := &procnode.Node{ID: id, Data: filepath.Join(d.dir, id), URL: "http://" + addr, Env: procnode.Environ("SPARR_LOG_LEVEL=warn")}
		if err := procnode.CopyKeys(kdir, filepath.Join(node.Data, "keys")); err != nil {
			return err
		}
		peers = append(peers, id+"="+raft[id])
		httpPeers = append(httpPeers, id+"="+node.URL)
		d.nodes = append(d.nodes, node)
		d.urls = append(d.urls, node.URL)
	}
	d.issuer = d.nodes[0].URL
	for _, node := range d.nodes {
		node.Args = []string{"serve", "--cluster", "--node-id", node.ID, "--raft-addr", raft[node.ID],
			"--cluster-servers", strings.Join(peers, ","), "--http-peers", strings.Join(httpPeers, ","),
			"--data", node.Data, "--addr", strings.TrimPrefix(node.URL, "http://"), "--issuer", d.issuer, "--insecure-http",
			"--metrics-addr", "off", "--webhook-allow", "127.0.0.0/8", "--webhook-allow-http",
			"--checkpoint-interval", "1s", "--erasure-period", demoErasurePeriod.String(),
			"--payee-banks", "SE:800=bank-b"}
		if err := node.Start(ctx, bin); err != nil {
			return err
		}
	}
	_, err = d.waitLeader(ctx, nil)
	return err
}

// demoFreeAddr returns a free loopback address below the ephemeral range,
// which no connection takes while its node is down.
func demoFreeAddr() (string, error) { return freeport.Addr() }

// A demoNodeStatus is what a node says of itself.
type demoNodeStatus struct {
	State        string `json:"state"`
	LeaderID     string `json:"leader_id"`
	CommitIndex  uint64 `json:"commit_index"`
	AppliedIndex uint64 `json:"applied_index"`
}

// status asks a node for its view of the cluster, with sparr cluster
// status as the operator.
func (d *demo) status(ctx context.Context, n *procnode.Node) (*demoNodeStatus, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, d.bin, "cluster", "status", "--hub", n.URL, "--data", n.Data, "--json").Output()
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
func (d *demo) waitLeader(ctx context.Context, not *procnode.Node) (*procnode.Node, error) {
	deadline := time.Now().Add(30 * time.Second)
	for {
		for _, n := range d.nodes {
			if n == not || !n.Running() {
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
	s.printf("\nMeanwhile, the hub's leader, node %s, is killed with SIGKILL, as a power cut would.\n", leader.ID)
	killed := time.Now()
	leader.Kill()
	next, err := d.waitLeader(ctx, leader)
	if err != nil {
		return err
	}
	s.printf("  Node %s took over as leader %d ms later. The banks' clients know every node and\n", next.ID, time.Since(killed).Milliseconds())
	s.printf("  send to whichever answers; what the hub acknowledged before is on every node.\n")
	if err := leader.Start(ctx, d.bin); err != nil {
		return err
	}
	st, err := d.status(ctx, next)
	if err != nil {
		return err
	}
	err = d.waitFor(ctx, "node "+leader.ID+" catching up", func() bool {
		got, err := d.status(ctx, leader)
		return err == nil && got.AppliedIndex >= st.CommitIndex
	})
	if err != nil {
		return err
	}
	s.printf("  Node %s started again on its data and caught up with the others (replicated entry %d).\n", leader.ID, st.CommitIndex)
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
