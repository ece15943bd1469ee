package decide

import (
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/sparr-dev/sparr/protocol"
	"github.com/sparr-dev/sparr/protocol/api"
	"github.com/sparr-dev/sparr/server/state"
)

// fillQuotas returns q with every zero field set from def.
func fillQuotas(q, def api.Quotas) api.Quotas {
	if q.TokensPerSecond == 0 {
		q.TokensPerSecond = def.TokensPerSecond
	}
	if q.TokensPerDay == 0 {
		q.TokensPerDay = def.TokensPerDay
	}
	if q.StoredBytesPerDay == 0 {
		q.StoredBytesPerDay = def.StoredBytesPerDay
	}
	return q
}

// QuotasOf returns member m's quotas: its own where it has them, the
// policy's otherwise.
func (d *Decider) QuotasOf(m *api.Member) api.Quotas {
	if m.Quotas == nil {
		return d.Policy.Quotas
	}
	return fillQuotas(*m.Quotas, d.Policy.Quotas)
}

// TokenBurst is how many tokens a member may have evaluated at once above
// its sustained rate: one full batch, or two seconds of its rate if that is
// more.
func TokenBurst(q api.Quotas) int {
	return max(protocol.MaxTokenBatch, int(math.Ceil(2*q.TokensPerSecond)))
}

// dayOf is the UTC day of t, the unit of daily quotas.
func dayOf(t time.Time) string { return t.UTC().Format(time.DateOnly) }

// nextDay is the start of the UTC day after t's, when daily quotas reset.
func nextDay(t time.Time) time.Time {
	y, m, dd := t.UTC().Date()
	return time.Date(y, m, dd+1, 0, 0, 0, 0, time.UTC)
}

// Tokens decides the record of member m's batch of token evaluations, to
// be evaluated once it is applied: counted against its daily quota, and
// logged with its type, size and epoch, never its content.
func (d *Decider) Tokens(m *api.Member, req *protocol.TokenRequest, now time.Time) *state.EvaluateTokens {
	return &state.EvaluateTokens{
		Head: d.head(m.ID, protocol.LogTokens, now, nil, nil,
			protocol.LogAttr{Key: "type", Value: string(req.Type)}, protocol.LogAttr{Key: "count", Value: fmt.Sprint(len(req.Blinded))},
			protocol.LogAttr{Key: "epoch", Value: fmt.Sprint(req.Epoch)}),
		Day: dayOf(now), Count: int64(len(req.Blinded)), Limit: d.QuotasOf(m).TokensPerDay,
	}
}

// RelayedTokens is [Decider.Tokens] for a batch relayed to the home hub
// peer: counted and logged here as any batch, with the peer's id.
func (d *Decider) RelayedTokens(m *api.Member, req *protocol.TokenRequest, peer string, now time.Time) *state.EvaluateTokens {
	cmd := d.Tokens(m, req, now)
	cmd.Head.Entry.Attrs = append(cmd.Head.Entry.Attrs, protocol.LogAttr{Key: "home", Value: peer})
	return cmd
}

// PeerTokens decides the record of a batch that peer, a hub registered
// with role peer, relays for one of its members: counted against the
// peer's daily quota, and logged with its type, size, epoch and the
// peer's member that asked.
func (d *Decider) PeerTokens(peer *api.Member, req *api.PeerTokenRequest, now time.Time) *state.EvaluateTokens {
	return &state.EvaluateTokens{
		Head: d.head(peer.ID, protocol.LogPeerTokens, now, nil, nil,
			protocol.LogAttr{Key: "type", Value: string(req.Type)}, protocol.LogAttr{Key: "count", Value: fmt.Sprint(len(req.Blinded))},
			protocol.LogAttr{Key: "epoch", Value: fmt.Sprint(req.Epoch)}, protocol.LogAttr{Key: "member", Value: req.Member}),
		Day: dayOf(now), Count: int64(len(req.Blinded)), Limit: d.QuotasOf(peer).TokensPerDay,
	}
}

// Charge sets c, a command member m's request makes, to charge m's daily
// allowance of stored bytes: as much as c is large when encoded, which is
// what it stores within a small factor. The operator's own commands are
// not charged.
func (d *Decider) Charge(m *api.Member, c state.Command, now time.Time) error {
	h := c.Header()
	if h == nil || m == nil || m.HasRole(api.RoleOperator) {
		return nil
	}
	h.Quota = nil
	b, err := state.Encode(c)
	if err != nil {
		return err
	}
	// A relayed member's writes count against its hub's allowance here,
	// which covers that hub's members together.
	payer, _, _ := strings.Cut(m.ID, ".")
	h.Quota = &state.Quota{Member: payer, Day: dayOf(now), Bytes: int64(len(b)), Limit: d.QuotasOf(m).StoredBytesPerDay}
	return nil
}

// TokenQuotaProblem is the answer to member m's batch of count tokens over
// its daily quota, with the seconds until the quota resets.
func (d *Decider) TokenQuotaProblem(m *api.Member, count int64, now time.Time) (*protocol.Problem, int) {
	reset := nextDay(now)
	p := problemf(protocol.ProblemTokenQuota,
		"member %q has spent its quota of %d token evaluations for %s (UTC); the batch of %d was not evaluated. It resets at %s; ask the operator to raise the quota if your volume needs it",
		m.ID, d.QuotasOf(m).TokensPerDay, dayOf(now), count, reset.Format(time.RFC3339))
	return p, int(math.Ceil(reset.Sub(now).Seconds()))
}

// StorageQuotaProblem is the answer to a request of member m that would
// take what the hub stores for it today over its daily quota, with the
// seconds until the quota resets.
func (d *Decider) StorageQuotaProblem(m *api.Member, now time.Time) (*protocol.Problem, int) {
	reset := nextDay(now)
	p := problemf(protocol.ProblemStorageQuota,
		"member %q has spent its quota of %d bytes stored for %s (UTC); nothing was done. It resets at %s; ask the operator to raise the quota if your volume needs it",
		m.ID, d.QuotasOf(m).StoredBytesPerDay, dayOf(now), reset.Format(time.RFC3339))
	return p, int(math.Ceil(reset.Sub(now).Seconds()))
}

// PublishErasures decides the publication of the tombstones of every
// erasure made before the start of the erasure period now is in.
func (d *Decider) PublishErasures(now time.Time) *state.PublishErasures {
	return &state.PublishErasures{Head: state.Head{At: now, Actor: Hub, Entry: state.Entry{Action: protocol.LogErased}},
		Before: now.UTC().Truncate(d.Policy.ErasurePeriod)}
}

// ExpireDetails decides the erasure of the details of log entries older
// than the policy's DetailsRetention, at most limit of them.
func (d *Decider) ExpireDetails(now time.Time, limit int) *state.ExpireDetails {
	before := now.Add(-d.Policy.DetailsRetention).UTC()
	return &state.ExpireDetails{
		Head:   d.head(Hub, protocol.LogDetailsExpired, now, nil, nil, protocol.LogAttr{Key: "before", Value: before.Format(time.RFC3339Nano)}),
		Before: before, Limit: limit,
	}
}

// ReplayWindow is how long the hub remembers the outcome of a submission:
// as long as it accepts the submission (protocol.DefaultSubmissionMaxAge,
// with the largest clock skew it may tolerate), and an hour more.
const ReplayWindow = protocol.DefaultSubmissionMaxAge + protocol.MaxSkew + time.Hour

// PruneReplays decides forgetting the outcomes of submissions older than
// ReplayWindow, at most limit of them.
func (d *Decider) PruneReplays(now time.Time, limit int) *state.PruneReplays {
	return &state.PruneReplays{Before: now.Add(-ReplayWindow).UTC(), Limit: limit}
}
