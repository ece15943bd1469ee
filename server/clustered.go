package server

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/sparr-dev/sparr/protocol"
	"github.com/sparr-dev/sparr/protocol/api"
	"github.com/sparr-dev/sparr/server/cluster"
	"github.com/sparr-dev/sparr/server/decide"
	"github.com/sparr-dev/sparr/server/state"
	"github.com/sparr-dev/sparr/server/store"
)

// A replicated hub runs on every node of a cluster ([cluster.Node]). Every
// command goes through the replicated log ([store.Store.SetProposer]); only
// the leader decides, so a follower forwards every API request under /v1 to
// the leader (a reverse proxy, not a redirect: a member's client, the
// audience of its bearer token, the feed and webhooks see one hub, the
// cluster's issuer, whichever node it reached). GET /v1/admin/cluster, the
// discovery documents, JWKS, health, readiness and metrics are answered by
// the node asked. Only the leader runs the dispatcher, the jobs, checkpoint
// signing and the witnesses; it starts them once it has applied every
// entry committed before it led (a raft barrier), and stops them when it
// loses the leadership.

// forwardedHeader marks a request a follower forwarded to the leader: a
// node that is not the leader answers it 503 rather than forwarding it
// again.
const forwardedHeader = "Sparr-Forwarded-By"

// barrierTimeout bounds the barrier a new leader waits on before it
// starts the leader's work.
const barrierTimeout = 10 * time.Second

// clusterState is the replicated hub's part of a Hub.
type clusterState struct {
	node *cluster.Node
	urls map[string]*url.URL // node id → HTTP address

	proxyMu sync.Mutex
	proxies map[string]*httputil.ReverseProxy

	// transition serializes leadership changes; closed is set by Close.
	transition sync.Mutex
	closed     bool
}

// setupCluster makes the hub replicated: every command goes through the
// node's replicated log, and the hub follows what every node applies.
func (h *Hub) setupCluster() error {
	cfg := h.cfg
	cs := &clusterState{node: cfg.Cluster, urls: map[string]*url.URL{}, proxies: map[string]*httputil.ReverseProxy{}}
	for id, raw := range cfg.ClusterURLs {
		u, err := url.Parse(strings.TrimSuffix(raw, "/"))
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return errors.New("server: Config.ClusterURLs: " + id + ": want an http or https URL")
		}
		cs.urls[id] = u
	}
	h.cluster = cs
	cfg.Store.SetProposer(cfg.Cluster.Propose)
	cfg.Cluster.OnApplied(h.applied)
	return cfg.Registry.Register(&raftCollector{node: cfg.Cluster})
}

// applied follows each command the node applies, as leader or follower:
// it keeps DIR/last-checkpoint current on every node, and forgets the
// cached keys of a changed member.
func (h *Hub) applied(cmd state.Command, res *store.Result) {
	switch c := cmd.(type) {
	case *state.PutCheckpoint:
		if res != nil && !res.Conflict {
			if err := h.keepLastCheckpoint(c.Note, c.Size); err != nil {
				h.log.Error("keeping the last checkpoint failed", "size", c.Size, "error", err)
			}
		}
	case *state.PutMember:
		if c.Member != nil {
			h.members.Forget(c.Member.ID)
			h.bearers.forget(c.Member.ID)
		}
	}
}

// startCluster follows the node's leadership: the leader's work runs
// while it leads.
func (h *Hub) startCluster() {
	h.cluster.node.OnLeadership(h.leadership)
	if h.cluster.node.IsLeader() {
		go h.leadership(true)
	}
}

// leadership starts the leader's work on gaining the leadership, after a
// barrier, and stops it on losing it.
func (h *Hub) leadership(leader bool) {
	cs := h.cluster
	cs.transition.Lock()
	defer cs.transition.Unlock()
	if cs.closed {
		return
	}
	if !leader {
		if h.stopLeading() {
			h.log.Info("lost the cluster's leadership; the leader's work stopped", "node", cs.node.ID())
		}
		return
	}
	if !cs.node.IsLeader() {
		return
	}
	if err := cs.node.Barrier(barrierTimeout); err != nil {
		h.log.Warn("leader barrier failed; not starting the leader's work", "error", err)
		return
	}
	if err := h.startMembers(); err != nil {
		h.log.Error("leader: the members' changes at start failed", "error", err)
	}
	if err := h.startLeading(); err != nil {
		h.log.Error("leader: starting the leader's work failed", "error", err)
		return
	}
	h.log.Info("leading the cluster: dispatcher, jobs and checkpoints started", "node", cs.node.ID())
}

// closeCluster stops following the leadership.
func (h *Hub) closeCluster() {
	h.cluster.transition.Lock()
	h.cluster.closed = true
	h.cluster.transition.Unlock()
}

// leaderURL returns the leader's id and HTTP address, as far as this node
// knows them.
func (cs *clusterState) leaderURL() (string, *url.URL) {
	id, _ := cs.node.Leader()
	if id == "" {
		return "", nil
	}
	return id, cs.urls[id]
}

// forward sends a request under /v1 to the leader when this node is not
// it, with a reverse proxy; GET /v1/admin/cluster is answered here.
func (h *Hub) forward(c *gin.Context) {
	cs := h.cluster
	p := c.Request.URL.Path
	if !strings.HasPrefix(p, "/v1/") || (p == clusterPath && c.Request.Method == http.MethodGet) {
		c.Next()
		return
	}
	if cs.node.IsLeader() {
		if !h.Leading() {
			// Elected, but not yet past the barrier: its store may lack
			// entries the last leader committed, and a check answered
			// from it would not see them.
			h.fail(c, problemf(protocol.ProblemUnavailable, "this node has just been elected the cluster's leader and is catching up; send the request again in a moment"))
			return
		}
		c.Next()
		return
	}
	if by := c.GetHeader(forwardedHeader); by != "" {
		h.fail(c, problemf(protocol.ProblemUnavailable, "the cluster's leadership moved while the request was forwarded; send it again"))
		return
	}
	id, u := cs.leaderURL()
	switch {
	case id == "":
		h.fail(c, problemf(protocol.ProblemUnavailable, "the cluster has no leader at the moment (an election is under way, or too few nodes are reachable); send the request again, here or to another node"))
		return
	case u == nil:
		h.fail(c, problemf(protocol.ProblemUnavailable, "this node does not know the HTTP address of the leader %s; send the request to another node", decide.Quote(id)))
		return
	}
	// One request id end to end: the leader takes this node's, and its
	// answer carries it once.
	c.Request.Header.Set("X-Request-Id", c.GetString(keyRequestID))
	c.Writer.Header().Del("X-Request-Id")
	cs.proxy(h, id, u).ServeHTTP(c.Writer, c.Request)
	c.Abort()
}

// proxy returns the reverse proxy to the node id at u.
func (cs *clusterState) proxy(h *Hub, id string, u *url.URL) *httputil.ReverseProxy {
	cs.proxyMu.Lock()
	defer cs.proxyMu.Unlock()
	if p, ok := cs.proxies[id]; ok {
		return p
	}
	self := cs.node.ID()
	p := &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(u)
			r.SetXForwarded()
			r.Out.Header.Set(forwardedHeader, self)
		},
		FlushInterval: 100 * time.Millisecond,
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			if errors.Is(err, context.Canceled) {
				return
			}
			h.log.Warn("forwarding to the leader failed", "leader", id, "error", err)
			w.Header().Set("Retry-After", "1")
			w.Header().Set("Content-Type", protocol.ProblemContentType)
			w.WriteHeader(http.StatusServiceUnavailable)
			p := problemf(protocol.ProblemUnavailable, "the leader %s could not be reached from this node; send the request again, here or to another node", decide.Quote(id))
			p.Instance = r.URL.Path
			body, _ := json.Marshal(p)
			w.Write(body)
		},
	}
	cs.proxies[id] = p
	return p
}

// clusterReady says whether this node can serve writes: it leads, or it
// knows the leader and reaches it.
func (h *Hub) clusterReady(c *gin.Context) (string, bool) {
	cs := h.cluster
	if cs.node.IsLeader() {
		return "leader", true
	}
	id, u := cs.leaderURL()
	switch {
	case id == "":
		return "no leader: an election is under way, or too few nodes are reachable", false
	case u == nil:
		return "the leader " + id + "'s HTTP address is unknown to this node", false
	}
	ctx, cancel := context.WithTimeout(c.Request.Context(), 2*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, u.String()+"/healthz", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "the leader " + id + " is not reachable from this node", false
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "the leader " + id + " is not healthy", false
	}
	return "follower of " + id, true
}

const clusterPath = "/v1/admin/cluster"

// clusterStatus: GET /v1/admin/cluster, this node's view of the cluster.
func (h *Hub) clusterStatus(c *gin.Context) {
	if !h.clustered(c) {
		return
	}
	c.JSON(http.StatusOK, h.ClusterStatus())
}

// ClusterStatus returns this node's view of the cluster; nil for a hub
// that is not replicated.
func (h *Hub) ClusterStatus() *api.ClusterStatus {
	if h.cluster == nil {
		return nil
	}
	cs := h.cluster
	st := cs.node.Status()
	out := &api.ClusterStatus{
		NodeID: st.NodeID, State: st.State, LeaderID: st.LeaderID, LeaderRaftAddr: st.LeaderAddr, Term: st.Term,
		CommitIndex: st.CommitIndex, AppliedIndex: st.AppliedIndex, LastLogIndex: st.LastIndex, Servers: []api.ClusterServer{},
	}
	if !st.LastContact.IsZero() {
		t := st.LastContact.UTC()
		out.LastContact = &t
	}
	if u := cs.urls[st.LeaderID]; u != nil {
		out.LeaderURL = u.String()
	}
	for _, s := range st.Servers {
		cs := api.ClusterServer{ID: s.ID, RaftAddr: s.Addr, Suffrage: s.Suffrage, Leader: s.Leader}
		if u := h.cluster.urls[s.ID]; u != nil {
			cs.URL = u.String()
		}
		out.Servers = append(out.Servers, cs)
	}
	return out
}

// addClusterServer: POST /v1/admin/cluster/servers, on the leader.
func (h *Hub) addClusterServer(c *gin.Context) {
	if !h.clustered(c) {
		return
	}
	var req api.ClusterServerRequest
	if !h.readJSON(c, &req) {
		return
	}
	if _, err := cluster.ParseServers(req.ID + "=" + req.RaftAddr); err != nil {
		h.fail(c, problemf(protocol.ProblemMalformedRequest, "server %v; give its node id (letters, digits, '-', '_') and raft address HOST:PORT", err))
		return
	}
	if !h.clusterChange(c, "add", req.ID, func() error {
		return h.cluster.node.AddVoter(cluster.Server{ID: req.ID, Addr: req.RaftAddr})
	}) {
		return
	}
	c.JSON(http.StatusOK, h.ClusterStatus())
}

// removeClusterServer: DELETE /v1/admin/cluster/servers/{id}, on the
// leader.
func (h *Hub) removeClusterServer(c *gin.Context) {
	if !h.clustered(c) {
		return
	}
	id := c.Param("id")
	servers, err := h.cluster.node.Servers()
	if err != nil {
		h.internal(c, "read the cluster's configuration", err)
		return
	}
	found := false
	for _, s := range servers {
		found = found || s.ID == id
	}
	if !found {
		h.fail(c, problemf(protocol.ProblemNotFound, "no server %s in the cluster; GET /v1/admin/cluster lists them", decide.Quote(id)))
		return
	}
	if !h.clusterChange(c, "remove", id, func() error { return h.cluster.node.RemoveServer(id) }) {
		return
	}
	c.JSON(http.StatusOK, h.ClusterStatus())
}

// transferLeadership: POST /v1/admin/cluster/leadership, on the leader.
func (h *Hub) transferLeadership(c *gin.Context) {
	if !h.clustered(c) {
		return
	}
	var req api.LeadershipRequest
	if !h.readJSON(c, &req) {
		return
	}
	if req.To != "" && !cluster.ValidID(req.To) {
		h.fail(c, problemf(protocol.ProblemMalformedRequest, "to %s: want a node id (letters, digits, '-', '_'), or none for the most up-to-date follower", decide.Quote(req.To)))
		return
	}
	if !h.clusterChange(c, "transfer-leadership", req.To, func() error { return h.cluster.node.TransferLeadership(req.To) }) {
		return
	}
	c.JSON(http.StatusOK, h.ClusterStatus())
}

// clusterChange logs the operator's change of the cluster in the exchange
// log, then makes it; it answers the request itself on failure.
func (h *Hub) clusterChange(c *gin.Context, change, node string, do func() error) bool {
	if _, err := h.store.Apply(h.decide.ClusterChange(member(c), change, node, h.now())); err != nil {
		h.clusterFailed(c, "log the cluster change", err)
		return false
	}
	if err := do(); err != nil {
		h.clusterFailed(c, change, err)
		return false
	}
	h.log.Info("cluster changed", "change", change, "node", node)
	return true
}

func (h *Hub) clusterFailed(c *gin.Context, what string, err error) {
	if errors.Is(err, cluster.ErrNotLeader) {
		h.fail(c, problemf(protocol.ProblemUnavailable, "this node lost the cluster's leadership; send the request again"))
		return
	}
	if strings.Contains(err.Error(), "no server") {
		h.fail(c, problemf(protocol.ProblemNotFound, "%v", err))
		return
	}
	h.internal(c, what, err)
}

// clustered answers 404 for the cluster routes of a hub that is not
// replicated.
func (h *Hub) clustered(c *gin.Context) bool {
	if h.cluster == nil {
		h.fail(c, problemf(protocol.ProblemNotFound, "this hub is a single node, not a cluster (sparr serve --cluster)"))
		return false
	}
	return true
}

// notLeader is the answer to a request whose command could not be
// committed because this node is not, or no longer, the leader.
func notLeader(err error) bool { return errors.Is(err, cluster.ErrNotLeader) }

// raftCollector exports the node's raft state.
type raftCollector struct{ node *cluster.Node }

var (
	raftLeaderDesc      = prometheus.NewDesc("sparr_raft_leader", "1 if this node is the cluster's leader, else 0.", nil, nil)
	raftTermDesc        = prometheus.NewDesc("sparr_raft_term", "The node's current raft term.", nil, nil)
	raftCommitDesc      = prometheus.NewDesc("sparr_raft_commit_index", "The last replicated-log index the node knows committed.", nil, nil)
	raftAppliedDesc     = prometheus.NewDesc("sparr_raft_applied_index", "The last replicated-log index the node applied to its store.", nil, nil)
	raftLastContactDesc = prometheus.NewDesc("sparr_raft_last_contact_seconds", "Seconds since the node last heard from the leader (0 on the leader).", nil, nil)
)

func (rc *raftCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{raftLeaderDesc, raftTermDesc, raftCommitDesc, raftAppliedDesc, raftLastContactDesc} {
		ch <- d
	}
}

func (rc *raftCollector) Collect(ch chan<- prometheus.Metric) {
	st := rc.node.Status()
	leader, contact := 0.0, 0.0
	if st.State == "Leader" {
		leader = 1
	} else if !st.LastContact.IsZero() {
		contact = time.Since(st.LastContact).Seconds()
	}
	ch <- prometheus.MustNewConstMetric(raftLeaderDesc, prometheus.GaugeValue, leader)
	ch <- prometheus.MustNewConstMetric(raftTermDesc, prometheus.GaugeValue, float64(st.Term))
	ch <- prometheus.MustNewConstMetric(raftCommitDesc, prometheus.GaugeValue, float64(st.CommitIndex))
	ch <- prometheus.MustNewConstMetric(raftAppliedDesc, prometheus.GaugeValue, float64(st.AppliedIndex))
	ch <- prometheus.MustNewConstMetric(raftLastContactDesc, prometheus.GaugeValue, contact)
}

// Leading reports whether the leader's work (dispatcher, jobs,
// checkpoints) runs on this hub: always once a single-node hub started; on
// a replicated hub, while its node leads.
func (h *Hub) Leading() bool {
	h.leadMu.Lock()
	defer h.leadMu.Unlock()
	return h.lead != nil
}
