package server

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/gin-gonic/gin"
	"go.opentelemetry.io/otel/attribute"

	"github.com/sparr-dev/sparr/federation/peering"
	"github.com/sparr-dev/sparr/protocol"
	"github.com/sparr-dev/sparr/protocol/api"
	"github.com/sparr-dev/sparr/server/decide"
	"github.com/sparr-dev/sparr/server/state"
	"github.com/sparr-dev/sparr/server/store"
)

// keyRelayed holds, on the home hub's route for relayed writes, the
// member's submission once the relaying hub's countersignature and the
// member's signature are verified; the write routes' handlers read it
// instead of a body.
const keyRelayed = "sparr.relayed"

// A relayedSubmission is a member's submission that a peer relayed, and
// the SHA-256 of its signed bytes.
type relayedSubmission struct {
	s    *protocol.Submission
	hash []byte
}

// relayedEvent is the event a relayed write of each action would make:
// what a peer's policy must let flow for it to be relayed or accepted.
var relayedEvent = map[protocol.Action]protocol.EventType{
	protocol.ActionPlaceFlag:        protocol.EventFlagPlaced,
	protocol.ActionExtendFlag:       protocol.EventFlagExtended,
	protocol.ActionThawFlag:         protocol.EventFlagThawed,
	protocol.ActionLiftFlag:         protocol.EventFlagLifted,
	protocol.ActionReportSuspicion:  protocol.EventSuspicionReported,
	protocol.ActionRetractSuspicion: protocol.EventSuspicionRetracted,
	// A consumer's "not me", through the member that placed their flag:
	// its record goes to the checker only, and flows with the flag.
	protocol.ActionDenyCheck: protocol.EventFlagPlaced,
}

// relayedAction is the log action of the write route of each relayed
// action, under which its refusals are logged.
var relayedAction = map[protocol.Action]protocol.LogAction{
	protocol.ActionPlaceFlag:        protocol.LogFlagPlace,
	protocol.ActionExtendFlag:       protocol.LogFlagExtend,
	protocol.ActionThawFlag:         protocol.LogFlagThaw,
	protocol.ActionLiftFlag:         protocol.LogFlagLift,
	protocol.ActionReportSuspicion:  protocol.LogSuspicionReport,
	protocol.ActionRetractSuspicion: protocol.LogSuspicionRetract,
	protocol.ActionDenyCheck:        protocol.LogCheckDeny,
}

// writeTokens returns the tokens a write names, if it names any: the
// subject of a placement, the subjects of a suspicion. A change names its
// flag or suspicion by id only.
func writeTokens(r protocol.Request) []protocol.Token {
	switch r := r.(type) {
	case protocol.PlaceFlag:
		return []protocol.Token{r.Subject}
	case protocol.ReportSuspicion:
		return r.Subjects
	}
	return nil
}

// writeObject returns the id of the flag or suspicion a change names.
func writeObject(r protocol.Request) string {
	switch r := r.(type) {
	case protocol.ExtendFlag:
		return r.FlagID
	case protocol.ThawFlag:
		return r.FlagID
	case protocol.LiftFlag:
		return r.FlagID
	case protocol.RetractSuspicion:
		return r.SuspicionID
	case protocol.DenyCheck:
		return r.CheckID
	}
	return ""
}

// policyAllows refuses a write that policy does not let flow between this
// hub and peer: a suspicion without a legal basis for the peer, a flag of
// an identifier type the policy leaves out.
func policyAllows(policy peering.Policy, peer string, s *protocol.Submission) *protocol.Problem {
	a := s.Request.Action()
	et, ok := relayedEvent[a]
	switch {
	case !ok:
		return problemf(protocol.ProblemValidation, "a %s submission is not relayed between hubs", a)
	case (a == protocol.ActionReportSuspicion || a == protocol.ActionRetractSuspicion) && !policy.Suspicions():
		return problemf(protocol.ProblemSuspicionsDisabled,
			"no legal basis for sharing suspicions with %s is configured: suspicions about another country's identifiers are not relayed", peer)
	case !policy.AllowsEvent(et):
		return problemf(protocol.ProblemValidation, "the policy for %s lets no %s flow", peer, et)
	}
	for _, t := range writeTokens(s.Request) {
		if !policy.AllowsType(t.Type) {
			return problemf(protocol.ProblemValidation, "the policy for %s lets no records of %s identifiers flow", peer, t.Type)
		}
	}
	return nil
}

// writeHome returns the peer home to the tokens a write names, or nil if
// this hub is home to them (or the write names none). A write naming
// tokens of two homes is refused: a member sends one write per home.
func (h *Hub) writeHome(s *protocol.Submission) (*peering.Peer, *protocol.Problem) {
	home := ""
	for i, t := range writeTokens(s.Request) {
		j := t.Type.Jurisdiction()
		if h.homeTo(t.Type) {
			j = ""
		}
		if i > 0 && j != home {
			return nil, problemf(protocol.ProblemValidation, "request.subjects[%d] (%s) has another home hub than request.subjects[0]; send one submission for each home hub's tokens", i, t.Type)
		}
		home = j
	}
	if home == "" {
		return nil, nil
	}
	p := h.peerFor(home)
	if p == nil {
		return nil, problemf(protocol.ProblemValidation, "these tokens belong to the home hub of %s, and this hub has no peer there", home)
	}
	return p, nil
}

// relayedHere reports whether the request is a relayed write the home
// hub's route handed to a write handler.
func relayedHere(c *gin.Context) bool {
	_, ok := c.Get(keyRelayed)
	return ok
}

// relayWrite relays member's submission s (whose signed bytes, as the
// member sent them, hash to hash) to the first of peers that holds what it
// names: for a write naming tokens, their home hub, the one peer given;
// for a change of a flag or suspicion this hub does not hold, each peer in
// turn until one does not answer not-found. Before each attempt the
// submission is held to the peer's policy and logged here (write-relayed),
// in the transaction that charges it to the member's quota. The home
// hub's answer, a record it signed, is returned as it came; its refusal is
// passed on, and a home hub that does not answer gives 503 with
// Retry-After. Nothing but the log entry is stored here; its index is the
// answer's X-Sparr-Log-Index (the body's log_index is the home hub's).
func (h *Hub) relayWrite(c *gin.Context, s *protocol.Submission, hash []byte, peers []*peering.Peer) {
	m := member(c)
	raw, _ := c.Get(keyBody)
	body, _ := raw.([]byte)
	key, err := h.members.ResolveKey(c, m.ID, s.KeyID)
	if err != nil {
		h.fail(c, verificationProblem(err))
		return
	}
	var (
		refused *protocol.Problem // the last refusal by policy or not-found
		down    *peering.Peer     // the last peer that did not answer
		downErr error
	)
	for _, p := range peers {
		if prob := policyAllows(p.Policy, p.ID, s); prob != nil {
			refused = prob
			continue
		}
		now := h.now()
		res, ok := h.commitFor(c, "log relayed write", h.decide.RelayedWrite(m, s, hash, p.ID, now))
		if !ok {
			return
		}
		// The answer's log_index is the home hub's; this hub's entry is
		// in a header, as for token batches.
		c.Header("X-Sparr-Log-Index", fmt.Sprint(res.LogIndex))
		span := h.span(c, "peering.submission", attribute.String("sparr.peer", p.ID), attribute.String("sparr.action", string(s.Request.Action())))
		ans, err := p.RelaySubmission(c.Request.Context(), h.cfg.PeerClient, m.ID, key, h.cfg.Issuer, s.ID, body, now)
		span.End()
		var pe *peering.ProblemError
		switch {
		case len(peers) > 1 && errors.As(err, &pe) && pe.Problem.Status == http.StatusNotFound:
			// Not that peer's: ask the next one.
			refused = problemf(protocol.ProblemNotFound, "no %s %s here nor at any peered hub", objectKind(s.Request), decide.Quote(writeObject(s.Request)))
			continue
		case len(peers) > 1 && errors.Is(err, peering.ErrUnreachable):
			// A peer that is down delays no other: ask the next one, and
			// answer 503 only if none holds it.
			down, downErr = p, err
			continue
		case err != nil:
			h.relayWriteFailed(c, p, m.ID, err)
			return
		}
		if ans.Location != "" {
			c.Header("Location", ans.Location)
		}
		c.Data(ans.Status, "application/json; charset=utf-8", ans.Body)
		return
	}
	switch {
	case down != nil:
		h.relayWriteFailed(c, down, m.ID, downErr)
	case refused != nil:
		h.fail(c, refused)
	default:
		h.fail(c, problemf(protocol.ProblemNotFound, "no %s %s here nor at any peered hub", objectKind(s.Request), decide.Quote(writeObject(s.Request))))
	}
}

// objectKind names what a change changes.
func objectKind(r protocol.Request) string {
	switch r.(type) {
	case protocol.RetractSuspicion:
		return "suspicion"
	case protocol.DenyCheck:
		return "check"
	}
	return "flag"
}

// relayWriteFailed answers a relayed write that peer p refused or did not
// answer. The home hub's refusal of the write is passed on as it came
// (its type, status, detail, fields and Retry-After), since it is about
// what the member sent; a refusal of this hub's own standing there
// (authentication, role, suspension) and no answer at all give 503.
func (h *Hub) relayWriteFailed(c *gin.Context, p *peering.Peer, member string, err error) {
	var pe *peering.ProblemError
	if !errors.As(err, &pe) {
		h.relayFailed(c, p, member, "write", err)
		return
	}
	switch pe.Problem.Type {
	case protocol.ProblemUnauthenticated.URI, protocol.ProblemBearerExpired.URI, protocol.ProblemForbidden.URI,
		protocol.ProblemMemberSuspended.URI, protocol.ProblemWrongSigner.URI, protocol.ProblemInternal.URI:
		h.relayFailed(c, p, member, "write", err)
		return
	}
	h.log.Info("home hub refused a relayed write", "peer", p.ID, "member", member, "problem", pe.Problem.Type)
	if pe.RetryAfter != "" {
		c.Header("Retry-After", pe.RetryAfter)
	}
	h.fail(c, &protocol.Problem{
		Type: pe.Problem.Type, Title: pe.Problem.Title, Status: pe.Problem.Status, Errors: pe.Problem.Errors,
		Detail: fmt.Sprintf("the home hub of %s (%s) refused the write: %s", p.Jurisdiction, p.ID, pe.Problem.Detail),
	})
}

// peerSubmission: POST /v1/peering/submissions, a peered hub relaying one
// of its members' signed writes about identifiers this hub is home to.
// The relaying hub's countersignature is verified against the keys this
// hub's operator registered for it, then the member's submission against
// the member's key that the countersignature binds, before either's
// claims are read. The write is then decided as a member's of this hub
// would be, by the member known here as "<peer>.<member>"
// ([decide.RelayedMemberID]): the records name it as their origin, its
// replays are recognised by that id and the jti, and the answer is the
// same write response, with a record this hub signed.
func (h *Hub) peerSubmission(c *gin.Context) {
	var env api.PeerSubmission
	if !h.readJSON(c, &env) {
		return
	}
	peer, now := member(c), h.now()
	cs, err := protocol.VerifyCountersignature(c, []byte(env.Countersignature), h.members,
		protocol.CountersignatureOptions{Audience: h.cfg.Issuer, Now: now, Skew: h.cfg.ClockSkew})
	if err != nil {
		h.fail(c, verificationProblem(err))
		return
	}
	if cs.Issuer != peer.ID {
		h.fail(c, problemf(protocol.ProblemWrongSigner, "the countersignature is signed by %q but sent with %q's bearer token", cs.Issuer, peer.ID))
		return
	}
	s, err := protocol.VerifyRelayed(c, cs, []byte(env.Submission), protocol.SubmissionOptions{Now: now, Skew: h.cfg.ClockSkew})
	if err != nil {
		h.fail(c, verificationProblem(err))
		return
	}
	var policy peering.Policy // no peers-file entry for the peer: flags only
	for _, p := range h.peers() {
		if p.ID == peer.ID {
			policy = p.Policy
		}
	}
	if prob := policyAllows(policy, peer.ID, s); prob != nil {
		h.fail(c, prob)
		return
	}
	for i, t := range writeTokens(s.Request) {
		if h.cfg.Jurisdiction == "" || t.Type.Jurisdiction() != h.cfg.Jurisdiction {
			h.fail(c, problemf(protocol.ProblemValidation, "subject %d: this hub is not the home hub of identifiers of type %s; a relayed write is not relayed again", i, t.Type))
			return
		}
	}
	relayed := *peer
	relayed.ID = decide.RelayedMemberID(peer.ID, cs.Member)
	relayed.Roles = []api.Role{api.RoleFlag, api.RoleSuspicion}
	c.Set(keyMember, &relayed)
	// From here on, a refusal is the write's, logged under its own
	// route's action for the member that asked.
	r := route(c)
	r.Action = relayedAction[s.Request.Action()]
	c.Set(keyRoute, r)
	c.Set(keyRelayed, &relayedSubmission{s: s, hash: cs.SubmissionHash})
	if id := writeObject(s.Request); id != "" {
		c.Params = append(c.Params, gin.Param{Key: "id", Value: id})
	}
	switch s.Request.Action() {
	case protocol.ActionPlaceFlag:
		h.placeFlag(c)
	case protocol.ActionExtendFlag:
		h.extendFlag(c)
	case protocol.ActionThawFlag:
		h.thawFlag(c)
	case protocol.ActionLiftFlag:
		h.liftFlag(c)
	case protocol.ActionReportSuspicion:
		h.reportSuspicion(c)
	case protocol.ActionRetractSuspicion:
		h.retractSuspicion(c)
	case protocol.ActionDenyCheck:
		h.denyCheck(c)
	}
}

// relayOutcome reports to the home hub the outcome of chk, a check this
// hub relayed there, before it is recorded here: a home hub that does not
// answer gives 503 and nothing is recorded; its refusal is passed on. It
// reports whether the home hub recorded the outcome.
func (h *Hub) relayOutcome(c *gin.Context, chk *state.Check, outcome string) bool {
	var p *peering.Peer
	for _, q := range h.cfg.Peers {
		if q.ID == chk.Home {
			p = q
		}
	}
	if p == nil {
		h.fail(c, problemf(protocol.ProblemUnavailable, "check %s was relayed to %s, which is no longer this hub's peer; ask this hub's operator", decide.Quote(chk.ID), chk.Home))
		return false
	}
	m := member(c)
	span := h.span(c, "peering.outcome", attribute.String("sparr.peer", p.ID))
	_, err := p.ReportOutcome(c.Request.Context(), h.cfg.PeerClient, m.ID, chk.ID, outcome, h.now())
	span.End()
	if err != nil {
		h.relayWriteFailed(c, p, m.ID, err)
		return false
	}
	return true
}

// peerOutcome: POST /v1/peering/outcome, a peered hub reporting the
// outcome of a check it relayed here for one of its members, by the id it
// gave the check ("<peer>.<check id>" here). The check is the peer's, and
// so is the outcome, logged (check-outcome) with the member that asked.
func (h *Hub) peerOutcome(c *gin.Context) {
	var req api.PeerOutcomeRequest
	if !h.readJSON(c, &req) {
		return
	}
	if err := req.Validate(); err != nil {
		h.fail(c, problemf(protocol.ProblemValidation, "%v", err))
		return
	}
	peer := member(c)
	id := decide.RelayedMemberID(peer.ID, req.CheckID)
	chk, err := h.store.Check(id)
	switch {
	case errors.Is(err, store.ErrNotFound):
		chk = nil
	case err != nil:
		h.internal(c, "read check", err)
		return
	}
	cmd, err := h.decide.Outcome(peer, id, api.OutcomeRequest{Outcome: req.Outcome}, chk, h.now())
	if err != nil {
		h.refuse(c, "check outcome", err)
		return
	}
	cmd.Entry.Attrs = append(cmd.Entry.Attrs, protocol.LogAttr{Key: "member", Value: req.Member})
	res, ok := h.commitFor(c, "log outcome", cmd)
	switch {
	case !ok:
	case res.Conflict:
		h.fail(c, decide.OutcomeConflict(&state.Check{ID: id}))
	default:
		c.JSON(http.StatusOK, api.OutcomeResponse{CheckID: cmd.Check.ID, Outcome: cmd.Check.Outcome, LogIndex: res.LogIndex})
	}
}
