package server

import (
	"strconv"
	"time"

	"github.com/sparr-dev/sparr/protocol"
	"github.com/sparr-dev/sparr/protocol/api"
)

// reconcile counts entry e in the reconciliation of st: identifiers a
// member had tokenized (tokens entries, by their count) beside the tokens
// it checked online (check entries, by their tokens) and the checks of its
// replica it reported (replica-check entries, by their count), per member
// and day. Refused requests count nothing.
func reconcile(st *api.AuditStats, e *protocol.LogEntry) {
	var attr string
	switch e.Action {
	case protocol.LogTokens:
		attr = "count"
	case protocol.LogCheck:
		attr = "tokens"
	case protocol.LogReplicaCheck:
		attr = "count"
	default:
		return
	}
	if e.Result != "ok" {
		return
	}
	v, _ := e.Attr(attr)
	n, err := strconv.ParseUint(v, 10, 64)
	if err != nil {
		return
	}
	if st.Reconciliation == nil {
		st.Reconciliation = map[string]map[string]*api.Reconciliation{}
	}
	days := st.Reconciliation[e.Member]
	if days == nil {
		days = map[string]*api.Reconciliation{}
		st.Reconciliation[e.Member] = days
	}
	day := e.Time.UTC().Format(time.DateOnly)
	r := days[day]
	if r == nil {
		r = &api.Reconciliation{}
		days[day] = r
	}
	switch e.Action {
	case protocol.LogTokens:
		r.Tokenized += n
	case protocol.LogCheck:
		r.Checked += n
	default:
		r.ReplicaChecked += n
	}
}
