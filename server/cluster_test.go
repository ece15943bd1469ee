package server_test

import (
	"bytes"
	"io"
	"maps"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sparr-dev/sparr/federation/peering"
	"github.com/sparr-dev/sparr/protocol"
	"github.com/sparr-dev/sparr/protocol/api"
	"github.com/sparr-dev/sparr/server"
	"github.com/sparr-dev/sparr/server/cluster"
	"github.com/sparr-dev/sparr/server/decide"
	"github.com/sparr-dev/sparr/server/hubtest"
	"github.com/sparr-dev/sparr/server/state"
)

// converged waits until every live node of the cluster has applied the
// same replicated-log index, and returns each node's contents.
func converged(t *testing.T, c *hubtest.Cluster) []map[string]string {
	t.Helper()
	waitFor(t, "every node to apply the same entries", func() bool {
		var first uint64
		for i, h := range live(c) {
			n, err := h.Store.AppliedIndex()
			if err != nil || n == 0 || (i > 0 && n != first) {
				return false
			}
			first = n
		}
		return true
	})
	var out []map[string]string
	for _, h := range live(c) {
		out = append(out, contents(t, h.Store))
	}
	return out
}

func live(c *hubtest.Cluster) []*hubtest.Hub {
	var out []*hubtest.Hub
	for _, h := range c.Nodes {
		if h.Hub != nil {
			out = append(out, h)
		}
	}
	return out
}

// sameStores fails the test unless every node holds the same bytes.
func sameStores(t *testing.T, c *hubtest.Cluster) {
	t.Helper()
	all := converged(t, c)
	for i := 1; i < len(all); i++ {
		if maps.Equal(all[i], all[0]) {
			continue
		}
		for k, v := range all[0] {
			if all[i][k] != v {
				t.Errorf("node %d: %s is %q, node 0's is %q", i, k, truncate(all[i][k]), truncate(v))
			}
		}
		for k := range all[i] {
			if _, ok := all[0][k]; !ok {
				t.Errorf("node %d: %s exists, and not on node 0", i, k)
			}
		}
	}
}

// TestClusterCommandsReplayToTheSameStores runs the scenario of
// TestCommandsReplayToTheSameStore, every kind of change, against a real
// 3-node cluster (raft over TCP on loopback, a bbolt file each): every
// node's buckets hold the same bytes, with the same sequence counters.
func TestClusterCommandsReplayToTheSameStores(t *testing.T) {
	var mu sync.Mutex
	kinds := map[state.Kind]int{}
	largest := map[state.Kind]int{} // encoded bytes of the largest command of each kind
	clock := hubtest.NewClock(time.Now().UTC().Truncate(time.Second))
	witness := hubtest.StartWitness(t, "cluster-replay.example")
	home, peer := startHomeHub(t)
	keyDir := peerKeyDir(t) // every node's key for a peer registered through the API
	c := hubtest.StartCluster(t, hubtest.ClusterOptions{Options: hubtest.Options{
		Clock: clock,
		Policy: decide.Policy{SuspicionLegalBasis: "brottsdatalagen-2-kap", FeedRetention: time.Hour, PayeeRetention: 2 * time.Hour,
			PayeeBanks: map[string]string{"SE:500": "bank-c"}},
		Delivery: server.Delivery{Schedule: []time.Duration{0}},
		Configure: func(cfg *server.Config) {
			cfg.Witnesses = []server.Witness{witness.Config()}
			cfg.WitnessRetry, cfg.WitnessRetryMax = 5*time.Millisecond, 20*time.Millisecond
			cfg.Jurisdiction, cfg.Peers = "SE", []*peering.Peer{peer} // a record relayed from Norway's hub
			cfg.PeerKeyDir = keyDir
			cfg.PeerFeedInterval = 20 * time.Millisecond // and its feed read
			cfg.Store.OnApplied(func(cmds []state.Command) {
				mu.Lock()
				for _, c := range cmds {
					kinds[c.Kind()]++
					if b, err := state.Encode(c); err == nil && len(b) > largest[c.Kind()] {
						largest[c.Kind()] = len(b)
					}
				}
				mu.Unlock()
			})
		},
	}})
	leader := c.Leader(t)
	witness.AddLog(t, leader.Configuration().Log.PublicKey)
	home.relayOne(t, leader)
	waitFor(t, "the cursor of the Norwegian hub's feed", func() bool {
		_, ok, err := leader.Store.PeerCursor("hub-no")
		return ok && err == nil
	})
	everyKindOfChange(t, leader, clock)
	registerAndRemovePeer(t, leader)
	waitFor(t, "the witness's cosignature", func() bool {
		st := leader.WitnessesStatus()
		return st.Witnesses[0].CosignedSize != nil && *st.Witnesses[0].CosignedSize == st.CheckpointSize
	})
	mu.Lock()
	for _, k := range state.Kinds() {
		if kinds[k] == 0 {
			t.Errorf("the nodes applied no %s command; the scenario must cover every kind", k)
		}
	}
	t.Logf("largest encoded command of each kind, bytes: %v", largest)
	mu.Unlock()
	sameStores(t, c)
}

// TestClusterFollowerForwardsWrites: a member writing to a follower is
// answered by the leader through it; the write is on every node, and a
// check at another follower sees it.
func TestClusterFollowerForwardsWrites(t *testing.T) {
	c := hubtest.StartCluster(t, hubtest.ClusterOptions{Options: hubtest.Options{LastCheckpoint: true}})
	fs := c.Followers(t)
	a := fs[0].AddMember(t, "bank-a", api.RoleFlag, api.RoleCheck)
	tok := a.Tokenize(t, protocol.TypeEmail, "forwarded@example.se")[0]
	resp := a.Submit(t, "/v1/flags", protocol.PlaceFlag{Subject: tok, Kind: protocol.FlagKindStandard, Consent: a.Consent(tok)})
	if resp.Status != http.StatusCreated {
		t.Fatalf("place at a follower: got %d %s, want 201", resp.Status, resp.Body)
	}
	if ids := resp.Header.Values("X-Request-Id"); len(ids) != 1 {
		t.Errorf("a forwarded answer has request ids %q, want one", ids)
	}
	// A check at the other follower, acknowledged after the placement
	// was, sees it.
	b := fs[1].Member("bank-a", a.Key)
	var out api.CheckResponse
	r := b.JSON(t, http.MethodPost, "/v1/check", api.CheckRequest{Tokens: []string{tok.String()}, Purpose: api.PurposeCreditApplication})
	if r.Status != http.StatusOK {
		t.Fatalf("check at a follower: got %d %s", r.Status, r.Body)
	}
	r.JSON(t, &out)
	if len(out.Results) != 1 || out.Results[0].Flag == nil {
		t.Fatalf("check at a follower after the placement: got %+v, want the flag", out.Results)
	}
	// The leader signs a checkpoint covering the placement; every node
	// keeps it as its last checkpoint, followers too.
	if _, err := c.Leader(t).PublishCheckpoint(); err != nil {
		t.Fatal(err)
	}
	sameStores(t, c)
	for _, h := range c.Nodes {
		note, _, err := h.Store.Checkpoint()
		if err != nil {
			t.Fatal(err)
		}
		waitFor(t, "the node's last-checkpoint file to hold the latest checkpoint", func() bool {
			kept, err := os.ReadFile(filepath.Join(h.Dir, "last-checkpoint"))
			return err == nil && bytes.Equal(kept, note)
		})
	}
	// The follower answers the cluster's status itself.
	var st api.ClusterStatus
	r = fs[0].Operator.Do(t, http.MethodGet, "/v1/admin/cluster", "", nil)
	r.JSON(t, &st)
	if st.NodeID == "" || st.State != "Follower" || st.LeaderID == "" || len(st.Servers) != 3 {
		t.Errorf("status at a follower: got %+v, want its own view, a follower's with the leader and 3 servers", st)
	}
	// Readiness says who leads.
	for _, h := range c.Nodes {
		r := h.Anonymous(t, http.MethodGet, "/readyz", "", nil)
		if r.Status != http.StatusOK || !strings.Contains(string(r.Body), `"reason"`) {
			t.Errorf("readyz at %s: got %d %s, want ready with a reason", h.URL, r.Status, r.Body)
		}
	}
}

// TestClusterLeaderStops: the leader stops; another takes over, writes at
// the survivors go on, nothing acknowledged is lost, and the old leader,
// started again, catches up and agrees byte for byte.
func TestClusterLeaderStops(t *testing.T) {
	c := hubtest.StartCluster(t, hubtest.ClusterOptions{})
	old := c.Leader(t)
	a := old.AddMember(t, "bank-a", api.RoleFlag, api.RoleCheck)
	var acked []protocol.Token
	place := func(h *hubtest.Hub, value string) {
		t.Helper()
		m := h.Member("bank-a", a.Key)
		tok := m.Tokenize(t, protocol.TypeEmail, value)[0]
		resp := m.Submit(t, "/v1/flags", protocol.PlaceFlag{Subject: tok, Kind: protocol.FlagKindStandard, Consent: m.Consent(tok)})
		if resp.Status != http.StatusCreated {
			t.Fatalf("place %s at %s: got %d %s", value, h.URL, resp.Status, resp.Body)
		}
		acked = append(acked, tok)
	}
	for i := range 5 {
		place(c.Nodes[i%3], "before-"+string(rune('a'+i))+"@example.se")
	}
	old.Stop()
	next := c.Leader(t)
	if next == old {
		t.Fatal("the stopped node is still the leader")
	}
	for i := range 5 {
		place(live(c)[i%2], "after-"+string(rune('a'+i))+"@example.se")
	}
	old.Start(t)
	sameStores(t, c)
	for _, h := range c.Nodes {
		m := h.Member("bank-a", a.Key)
		toks := make([]string, len(acked))
		for i, tok := range acked {
			toks[i] = tok.String()
		}
		var out api.CheckResponse
		r := m.JSON(t, http.MethodPost, "/v1/check", api.CheckRequest{Tokens: toks, Purpose: api.PurposeCreditApplication})
		if r.Status != http.StatusOK {
			t.Fatalf("check at %s: got %d %s", h.URL, r.Status, r.Body)
		}
		r.JSON(t, &out)
		for i, res := range out.Results {
			if res.Flag == nil {
				t.Errorf("check at %s: acknowledged placement %d has no flag, want one", h.URL, i)
			}
		}
	}
}

// TestClusterNodeCatchesUpBySnapshot: a node that was down while the
// others took snapshots and trimmed their logs gets a snapshot installed
// (its data file replaced) and then agrees byte for byte; restarted
// again, it replays nothing it applied before.
func TestClusterNodeCatchesUpBySnapshot(t *testing.T) {
	c := hubtest.StartCluster(t, hubtest.ClusterOptions{SnapshotThreshold: 4, TrailingLogs: 2})
	leader := c.Leader(t)
	a := leader.AddMember(t, "bank-a", api.RoleFlag)
	down := c.Followers(t)[0]
	down.Stop()
	for i := range 20 {
		tok := a.Tokenize(t, protocol.TypeEmail, "snap-"+string(rune('a'+i))+"@example.se")[0]
		if r := a.Submit(t, "/v1/flags", protocol.PlaceFlag{Subject: tok, Kind: protocol.FlagKindStandard, Consent: a.Consent(tok)}); r.Status != http.StatusCreated {
			t.Fatalf("place: got %d %s", r.Status, r.Body)
		}
	}
	for _, h := range live(c) {
		if err := h.Node.Snapshot(); err != nil {
			t.Fatalf("snapshot: %v", err)
		}
	}
	// One more entry after the snapshot, so that the log the node gets
	// after the snapshot is not empty.
	tok := a.Tokenize(t, protocol.TypeEmail, "after-snap@example.se")[0]
	if r := a.Submit(t, "/v1/flags", protocol.PlaceFlag{Subject: tok, Kind: protocol.FlagKindStandard, Consent: a.Consent(tok)}); r.Status != http.StatusCreated {
		t.Fatalf("place: got %d %s", r.Status, r.Body)
	}
	down.Start(t)
	sameStores(t, c)
	before := contents(t, down.Store)
	// A restart replays the log after the node's last snapshot; the
	// store skips what it applied, so nothing changes.
	down.Restart(t)
	sameStores(t, c)
	if after := contents(t, down.Store); !maps.Equal(after, before) {
		t.Error("a restarted node's store changed though no entry was committed meanwhile")
	}
}

// TestClusterChangesAreLogged: the operator's changes of the cluster
// (adding and removing a server, handing over the leadership) are made
// through any node and logged; a single-node hub answers its cluster
// routes 404.
func TestClusterChangesAreLogged(t *testing.T) {
	c := hubtest.StartCluster(t, hubtest.ClusterOptions{})
	old := c.Leader(t)
	f := c.Followers(t)[0]
	fid := f.ClusterStatus().NodeID
	r := f.Operator.JSON(t, http.MethodPost, "/v1/admin/cluster/leadership", api.LeadershipRequest{To: fid})
	if r.Status != http.StatusOK {
		t.Fatalf("transfer: got %d %s", r.Status, r.Body)
	}
	waitFor(t, "the follower to lead", func() bool { return c.Leader(t) == f })
	// Only the leader runs the dispatcher, the jobs and the checkpoints.
	waitFor(t, "the old leader to stop the leader's work", func() bool { return !old.Leading() })
	for _, h := range c.Nodes {
		if h != f && h.Leading() {
			t.Errorf("follower %s runs the leader's work", h.URL)
		}
	}
	r = f.Operator.JSON(t, http.MethodPost, "/v1/admin/cluster/servers", api.ClusterServerRequest{ID: "n9", RaftAddr: "127.0.0.1:1"})
	if r.Status != http.StatusOK {
		t.Fatalf("add: got %d %s", r.Status, r.Body)
	}
	r = f.Operator.Do(t, http.MethodDelete, "/v1/admin/cluster/servers/n9", "", nil)
	if r.Status != http.StatusOK {
		t.Fatalf("remove: got %d %s", r.Status, r.Body)
	}
	if r := f.Operator.Do(t, http.MethodDelete, "/v1/admin/cluster/servers/n9", "", nil); r.Status != http.StatusNotFound {
		t.Errorf("remove again: got %d %s, want 404", r.Status, r.Body)
	}
	if r := f.Operator.JSON(t, http.MethodPost, "/v1/admin/cluster/servers", map[string]string{"id": "bad id", "raft_addr": "x"}); r.Status != http.StatusBadRequest {
		t.Errorf("add a malformed server: got %d %s, want 400", r.Status, r.Body)
	}
	var changes []string
	for _, e := range f.LogEntries(t) {
		if e.Action == protocol.LogClusterChanged {
			var parts []string
			for _, a := range e.Attrs {
				parts = append(parts, a.Key+"="+a.Value)
			}
			changes = append(changes, strings.Join(parts, " "))
		}
	}
	want := []string{"change=transfer-leadership node=" + fid, "change=add node=n9", "change=remove node=n9"}
	if strings.Join(changes, ";") != strings.Join(want, ";") {
		t.Errorf("got cluster-changed entries %q, want %q", changes, want)
	}

	single := hubtest.Start(t, hubtest.Options{})
	if r := single.Operator.Do(t, http.MethodGet, "/v1/admin/cluster", "", nil); r.Status != http.StatusNotFound {
		t.Errorf("a single hub's cluster status: got %d, want 404", r.Status)
	}
}

// TestClusterMetrics: each node exports its raft state.
func TestClusterMetrics(t *testing.T) {
	c := hubtest.StartCluster(t, hubtest.ClusterOptions{})
	leaders := 0
	for _, h := range c.Nodes {
		rec := &recorder{header: http.Header{}}
		h.MetricsHandler().ServeHTTP(rec, mustRequest(t, http.MethodGet, "/metrics"))
		body := rec.body.String()
		for _, name := range []string{"sparr_raft_leader", "sparr_raft_term", "sparr_raft_commit_index", "sparr_raft_applied_index", "sparr_raft_last_contact_seconds"} {
			if !strings.Contains(body, "\n"+name+" ") {
				t.Errorf("node %s: no %s in its metrics", h.URL, name)
			}
		}
		if strings.Contains(body, "\nsparr_raft_leader 1\n") {
			leaders++
		}
		// Prometheus's own linter, where it is installed (CI installs
		// it; TestPromtoolChecksMetrics requires it there).
		if promtool, err := exec.LookPath("promtool"); err == nil {
			cmd := exec.Command(promtool, "check", "metrics")
			cmd.Stdin = strings.NewReader(body)
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Errorf("promtool check metrics: %v\n%s", err, out)
			}
		}
	}
	if leaders != 1 {
		t.Errorf("got %d nodes saying they lead, want 1", leaders)
	}
}

type recorder struct {
	header http.Header
	body   strings.Builder
	status int
}

func (r *recorder) Header() http.Header         { return r.header }
func (r *recorder) Write(b []byte) (int, error) { return r.body.Write(b) }
func (r *recorder) WriteHeader(s int)           { r.status = s }

func mustRequest(t *testing.T, method, url string) *http.Request {
	t.Helper()
	r, err := http.NewRequest(method, url, io.NopCloser(strings.NewReader("")))
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// TestClusterDeliveryResumesAfterFailover: the leader retries a delivery
// its receiver refuses, then stops; the new leader resumes the endpoint
// where the old one stopped, with the same webhook-id, and the receiver
// gets the record once it accepts.
func TestClusterDeliveryResumesAfterFailover(t *testing.T) {
	schedule := make([]time.Duration, 200)
	for i := range schedule {
		schedule[i] = 50 * time.Millisecond
	}
	noJitter := 0.0
	c := hubtest.StartCluster(t, hubtest.ClusterOptions{Options: hubtest.Options{Delivery: server.Delivery{Schedule: schedule, Jitter: &noJitter}}})
	old := c.Leader(t)
	a := old.AddMember(t, "bank-a", api.RoleFlag, api.RoleCheck)
	b := old.AddMember(t, "bank-b", api.RoleCheck)
	r := old.NewReceiver(t, b)
	r.Register(t)
	r.WaitEvent(t, 10*time.Second, protocol.EventVerification)
	var mu sync.Mutex
	refusing := true
	r.Behave(func(_ int, w http.ResponseWriter, _ *http.Request) bool {
		mu.Lock()
		defer mu.Unlock()
		if refusing {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		return refusing
	})
	tok := a.Tokenize(t, protocol.TypeEmail, "failover-delivery@example.se")[0]
	if resp := a.Submit(t, "/v1/flags", protocol.PlaceFlag{Subject: tok, Kind: protocol.FlagKindStandard, Consent: a.Consent(tok)}); resp.Status != http.StatusCreated {
		t.Fatalf("place: got %d %s", resp.Status, resp.Body)
	}
	verification := r.Attempts()[0]
	waitFor(t, "two refused attempts of the placement", func() bool { return len(r.Attempts()) >= 3 })
	refused := r.Attempts()[1]
	if refused == verification {
		t.Fatalf("got the verification's webhook-id %s for the placement", refused)
	}
	old.Stop()
	mu.Lock()
	before := len(r.Attempts())
	refusing = false
	mu.Unlock()
	c.Leader(t)
	got := r.WaitEvent(t, 20*time.Second, protocol.EventFlagPlaced)
	if got.WebhookID != refused {
		t.Errorf("the new leader delivered the placement with webhook-id %s, want %s, the old leader's", got.WebhookID, refused)
	}
	for _, id := range r.Attempts()[before:] {
		if id != refused {
			t.Errorf("after the failover, an attempt with webhook-id %s, want only %s", id, refused)
		}
	}
}

// TestLargestCommands measures the replicated size of the largest commands
// members can cause — a check of a full batch of tokens, a report of the
// most replica checks, a placement — and holds them far below the
// largest entry the cluster replicates (cluster.MaxCommandSize, raft's
// SuggestedMaxDataSize).
func TestLargestCommands(t *testing.T) {
	var mu sync.Mutex
	largest := map[state.Kind]int{}
	hub := hubtest.Start(t, hubtest.Options{Configure: func(cfg *server.Config) {
		cfg.Store.OnApplied(func(cmds []state.Command) {
			mu.Lock()
			defer mu.Unlock()
			for _, c := range cmds {
				if b, err := cluster.EncodeEntry(c); err == nil && len(b) > largest[c.Kind()] {
					largest[c.Kind()] = len(b)
				}
			}
		})
	}})
	a := hub.AddMember(t, "bank-a", api.RoleFlag, api.RoleCheck)
	values := make([]string, protocol.MaxTokenBatch)
	for i := range values {
		values[i] = "large-" + strconv.Itoa(i) + "@example.se"
	}
	toks := a.Tokenize(t, protocol.TypeEmail, values...)
	for _, tok := range toks[:10] {
		if r := a.Submit(t, "/v1/flags", protocol.PlaceFlag{Subject: tok, Kind: protocol.FlagKindStandard, Consent: a.Consent(tok)}); r.Status != http.StatusCreated {
			t.Fatalf("place: got %d %s", r.Status, r.Body)
		}
	}
	texts := make([]string, len(toks))
	for i, tok := range toks {
		texts[i] = tok.String()
	}
	if r := a.JSON(t, http.MethodPost, "/v1/check", api.CheckRequest{Tokens: texts, Purpose: api.PurposeCreditApplication}); r.Status != http.StatusOK {
		t.Fatalf("check: got %d %s", r.Status, r.Body)
	}
	var checks []api.ReplicaCheck
	for i := range api.MaxReplicaChecks {
		checks = append(checks, api.ReplicaCheck{Token: texts[i%len(texts)], Purpose: api.PurposePayment, At: hub.Now()})
	}
	if r := a.JSON(t, http.MethodPost, "/v1/checks/replica", api.ReplicaChecksRequest{Checks: checks}); r.Status != http.StatusOK {
		t.Fatalf("replica checks: got %d %s", r.Status, r.Body)
	}
	mu.Lock()
	defer mu.Unlock()
	t.Logf("largest encoded command of each kind, bytes: %v", largest)
	for k, n := range largest {
		if n > cluster.MaxCommandSize/4 {
			t.Errorf("a %s command of %d bytes: want at most a quarter of the %d bytes the cluster replicates in one entry", k, n, cluster.MaxCommandSize)
		}
	}
}
