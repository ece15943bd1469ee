package api

import "time"

// A ClusterStatus is one node's view of a replicated hub (GET
// /v1/admin/cluster, answered by the node asked, not forwarded to the
// leader).
type ClusterStatus struct {
	// NodeID is the node that answered; State is its raft state: Leader,
	// Follower, Candidate or Shutdown.
	NodeID string `json:"node_id"`
	State  string `json:"state"`
	// LeaderID and LeaderRaftAddr name the leader this node knows of
	// (empty: none); LeaderURL is its HTTP address, where this node
	// forwards API requests, if known.
	LeaderID       string `json:"leader_id,omitempty"`
	LeaderRaftAddr string `json:"leader_raft_addr,omitempty"`
	LeaderURL      string `json:"leader_url,omitempty"`
	Term           uint64 `json:"term"`
	// CommitIndex is the last replicated-log index this node knows to be
	// committed, AppliedIndex the last it applied to its store,
	// LastLogIndex the last it holds.
	CommitIndex  uint64 `json:"commit_index"`
	AppliedIndex uint64 `json:"applied_index"`
	LastLogIndex uint64 `json:"last_log_index"`
	// LastContact is when this node last heard from the leader (the
	// leader: now); absent if never.
	LastContact *time.Time `json:"last_contact,omitempty"`
	// Servers is the cluster's configuration.
	Servers []ClusterServer `json:"servers"`
}

// A ClusterServer is one server of a replicated hub's configuration.
type ClusterServer struct {
	ID       string `json:"id"`
	RaftAddr string `json:"raft_addr"`
	// Suffrage is Voter, Nonvoter or Staging.
	Suffrage string `json:"suffrage,omitempty"`
	Leader   bool   `json:"leader,omitempty"`
	// URL is the server's HTTP address, if this node knows it.
	URL string `json:"url,omitempty"`
}

// A ClusterServerRequest adds a server to a replicated hub (POST
// /v1/admin/cluster/servers): its node id and raft address.
type ClusterServerRequest struct {
	ID       string `json:"id"`
	RaftAddr string `json:"raft_addr"`
}

// A LeadershipRequest hands a replicated hub's leadership over (POST
// /v1/admin/cluster/leadership): to the node To, or, empty, to the most
// up-to-date follower.
type LeadershipRequest struct {
	To string `json:"to,omitempty"`
}
