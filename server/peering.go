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
	"github.com/sparr-dev/sparr/server/store"
)

// checkPeers refuses peers a hub of jurisdiction cannot relay to: an
// incomplete registration, two peers for one jurisdiction, a peer for the
// hub's own, or peers at all on a hub without a jurisdiction.
func checkPeers(jurisdiction string, peers []*peering.Peer) error {
	if len(peers) > 0 && jurisdiction == "" {
		return errors.New("a hub with peers needs a Jurisdiction")
	}
	seen := map[string]bool{}
	for _, p := range peers {
		if err := p.Check(); err != nil {
			return err
		}
		switch {
		case p.Jurisdiction == jurisdiction:
			return fmt.Errorf("peer %s: jurisdiction %s is this hub's own", p.ID, p.Jurisdiction)
		case seen[p.Jurisdiction]:
			return fmt.Errorf("peer %s: a second peer for jurisdiction %s", p.ID, p.Jurisdiction)
		}
		seen[p.Jurisdiction] = true
	}
	return nil
}

// homeTo reports whether the hub evaluates identifiers of type t under its
// own key: those of its own jurisdiction and of none; every type, on a hub
// without a jurisdiction.
func (h *Hub) homeTo(t protocol.IdentifierType) bool {
	j := t.Jurisdiction()
	return h.cfg.Jurisdiction == "" || j == "" || j == h.cfg.Jurisdiction
}

// peerFor returns the peer registered for jurisdiction, or nil.
func (h *Hub) peerFor(jurisdiction string) *peering.Peer {
	for _, p := range h.peers() {
		if p.Jurisdiction == jurisdiction {
			return p
		}
	}
	return nil
}

// homeTokens is the discovery document's list of peers' token keys.
func (h *Hub) homeTokens() []api.HomeToken {
	var out []api.HomeToken
	for _, p := range h.peers() {
		out = append(out, api.HomeToken{Jurisdiction: p.Jurisdiction, Types: p.Types(), Token: h.peerToken(p), Issuer: p.URL})
	}
	return out
}

// relayTokens answers a member's token request for identifiers of another
// jurisdiction: checked against the home hub's registered key, held to
// the member's rate and daily quota and logged here as any batch is, then
// sent to the home hub, whose evaluation (and proof, which the member
// checks against the same key) is the answer. A home hub that is down or
// slow holds up this request only, for at most its peer's timeout.
func (h *Hub) relayTokens(c *gin.Context, req *protocol.TokenRequest, home string) {
	p := h.peerFor(home)
	if p == nil {
		h.fail(c, problemf(protocol.ProblemValidation, "identifiers of type %s belong to the home hub of %s, and this hub has no peer there", req.Type, home))
		return
	}
	if err := protocol.CheckTokenRequest(req, h.peerEpoch(p, req.Epoch)); err != nil {
		h.fail(c, problemf(protocol.ProblemInvalidTokenRequest, "%v", err))
		return
	}
	m, now := member(c), h.now()
	res, ok := h.chargeTokens(c, m, h.decide.RelayedTokens(m, req, p.ID, now), now)
	if !ok {
		return
	}
	span := h.span(c, "peering.tokens", attribute.Int("sparr.tokens", len(req.Blinded)), attribute.String("sparr.peer", p.ID))
	resp, err := p.EvaluateTokens(c.Request.Context(), h.cfg.PeerClient, m.ID, req, now)
	span.End()
	if err != nil {
		h.relayFailed(c, p, m.ID, "token batch", err)
		return
	}
	h.metrics.tokens.WithLabelValues(m.ID, string(req.Type)).Add(float64(len(req.Blinded)))
	c.Header("X-Sparr-Log-Index", fmt.Sprint(res.LogIndex))
	c.JSON(http.StatusOK, resp)
}

// peerTokens: POST /v1/peering/tokens, a peered hub relaying one of its
// members' token batches. Only identifiers this hub is home to are
// evaluated, and a relayed batch is never relayed again (a hop limit of
// one). The batch is held to the peer's rate and daily quota, as any
// member's, and logged with the peer's member that asked.
func (h *Hub) peerTokens(c *gin.Context) {
	var req api.PeerTokenRequest
	if !h.readJSON(c, &req) {
		return
	}
	if err := req.Validate(); err != nil {
		h.fail(c, problemf(protocol.ProblemInvalidTokenRequest, "%v", err))
		return
	}
	if _, err := protocol.ParseIdentifierType(string(req.Type)); err == nil && (h.cfg.Jurisdiction == "" || req.Type.Jurisdiction() != h.cfg.Jurisdiction) {
		h.fail(c, problemf(protocol.ProblemValidation, "this hub is not the home hub of identifiers of type %s; a relayed batch is not relayed again", req.Type))
		return
	}
	batch, err := h.keys.Token.Batch(&req.TokenRequest)
	if err != nil {
		h.fail(c, problemf(protocol.ProblemInvalidTokenRequest, "%v", err))
		return
	}
	m, now := member(c), h.now()
	res, ok := h.chargeTokens(c, m, h.decide.PeerTokens(m, &req, now), now)
	if !ok {
		return
	}
	span := h.span(c, "tokens.evaluate", attribute.Int("sparr.tokens", batch.Len()), attribute.String("sparr.token_type", string(req.Type)))
	resp, err := batch.Evaluate()
	span.End()
	if err != nil {
		h.internal(c, "evaluate tokens", err)
		return
	}
	h.metrics.tokens.WithLabelValues(m.ID, string(req.Type)).Add(float64(batch.Len()))
	c.Header("X-Sparr-Log-Index", fmt.Sprint(res.LogIndex))
	c.JSON(http.StatusOK, resp)
}

// relayFailed answers a member's relayed request (what) that peer p did
// not answer: its refusal for rate or quota as 429 with its Retry-After,
// its refusal of a token epoch as invalid-token-request, any other refusal
// and no answer as 503, the latter with a Retry-After of its own.
func (h *Hub) relayFailed(c *gin.Context, p *peering.Peer, member, what string, err error) {
	var pe *peering.ProblemError
	if !errors.As(err, &pe) {
		h.log.Warn("home hub did not answer a relayed "+what, "peer", p.ID, "member", member, "error", err)
		c.Header("Retry-After", "30")
		h.fail(c, problemf(protocol.ProblemUnavailable, "the home hub of %s (%s) did not answer; retry later", p.Jurisdiction, p.ID))
		return
	}
	h.log.Warn("home hub refused a relayed "+what, "peer", p.ID, "member", member, "problem", pe.Problem.Type)
	if pe.Problem.Type == protocol.ProblemInvalidTokenRequest.URI {
		// The home hub may have rotated its token key: learn the new
		// one before answering, so that the member reads it next.
		_ = h.refreshPeerToken(c.Request.Context(), p)
	}
	switch {
	case pe.Problem.Status == http.StatusTooManyRequests:
		if pe.RetryAfter != "" {
			c.Header("Retry-After", pe.RetryAfter)
		}
		h.fail(c, problemf(protocol.ProblemRateLimited, "the home hub of %s (%s) is over this hub's rate or quota there: %s", p.Jurisdiction, p.ID, pe.Problem.Detail))
	case pe.Problem.Type == protocol.ProblemInvalidTokenRequest.URI:
		h.fail(c, problemf(protocol.ProblemInvalidTokenRequest, "the home hub of %s (%s) refused the %s: %s", p.Jurisdiction, p.ID, what, pe.Problem.Detail))
	default:
		h.fail(c, problemf(protocol.ProblemUnavailable, "the home hub of %s (%s) refused the %s (%s); ask this hub's operator", p.Jurisdiction, p.ID, what, pe.Problem.Type))
	}
}

// foreignHome returns the jurisdiction whose home hub req's tokens belong
// to, if it is not this hub, or "" for a check this hub answers itself.
// A check naming tokens of another hub's together with any other is
// refused: a member sends one check per home.
func (h *Hub) foreignHome(req *api.CheckRequest) (string, *protocol.Problem) {
	home, foreign := "", false
	for i, s := range req.Tokens {
		t, err := protocol.ParseToken(s)
		if err != nil {
			return "", nil // refused as any check with a malformed token
		}
		j := t.Type.Jurisdiction()
		if h.homeTo(t.Type) {
			j = ""
		} else {
			foreign = true
		}
		if i > 0 && j != home {
			return "", problemf(protocol.ProblemValidation, "tokens[%d] (%s) has another home hub than tokens[0]; send one check for each home hub's tokens", i, t.Type)
		}
		home = j
	}
	if !foreign {
		return "", nil
	}
	return home, nil
}

// relayCheck answers member's check of tokens whose home is another hub:
// held to the member's rate like any check (by its route), logged here
// with the peer's id before anything leaves, then relayed to the home hub,
// which answers from its own records and logs the check as the peer's, for
// the member. Its answer (flag records signed with its keys) is returned
// unchanged but for the check id and log index, which are this hub's. A
// home hub that is down or slow holds up this request only.
func (h *Hub) relayCheck(c *gin.Context, req *api.CheckRequest, home string) {
	p := h.peerFor(home)
	if p == nil {
		h.fail(c, problemf(protocol.ProblemValidation, "these tokens belong to the home hub of %s, and this hub has no peer there", home))
		return
	}
	if err := h.decide.RelayedCheckRequest(req, h.peerEpoch(p, checkEpoch(req))); err != nil {
		h.refuse(c, "check", err)
		return
	}
	m, now := member(c), h.now()
	cmd := h.decide.RelayedCheck(m, req, p.ID, now)
	res, ok := h.commitFor(c, "log check", cmd)
	if !ok {
		return
	}
	span := h.span(c, "peering.check", attribute.Int("sparr.tokens", len(req.Tokens)), attribute.String("sparr.peer", p.ID))
	resp, err := p.CheckTokens(c.Request.Context(), h.cfg.PeerClient, m.ID, cmd.Check.ID, req, now)
	span.End()
	if err != nil {
		h.relayFailed(c, p, m.ID, "check", err)
		return
	}
	resp.CheckID, resp.LogIndex = cmd.Check.ID, res.LogIndex
	c.JSON(http.StatusOK, resp)
}

// peerCheck: POST /v1/peering/check, a peered hub relaying one of its
// members' checks. Only tokens this hub is home to are checked, and a
// relayed check is never relayed again. The check is the peer's (its rate,
// its access notices), answered as any check is, and logged as peer-check
// with the peer's member that asked.
func (h *Hub) peerCheck(c *gin.Context) {
	var req api.PeerCheckRequest
	if !h.readJSON(c, &req) {
		return
	}
	if err := req.Validate(); err != nil {
		h.fail(c, problemf(protocol.ProblemValidation, "%v", err))
		return
	}
	if err := h.decide.CheckRequest(&req.CheckRequest); err != nil {
		h.refuse(c, "check", err)
		return
	}
	if req.CheckID != "" {
		// The relaying hub's id names one check only.
		switch _, err := h.store.Check(decide.RelayedMemberID(member(c).ID, req.CheckID)); {
		case err == nil:
			h.fail(c, problemf(protocol.ProblemStateConflict, "check_id %s was already relayed; relay each check with a new id", decide.Quote(req.CheckID)))
			return
		case !errors.Is(err, store.ErrNotFound):
			h.internal(c, "read check", err)
			return
		}
	}
	for i, s := range req.Tokens {
		if t, _ := protocol.ParseToken(s); h.cfg.Jurisdiction == "" || t.Type.Jurisdiction() != h.cfg.Jurisdiction {
			h.fail(c, problemf(protocol.ProblemValidation, "tokens[%d]: this hub is not the home hub of identifiers of type %s; a relayed check is not relayed again", i, t.Type))
			return
		}
	}
	subjects, err := h.store.Subjects(req.Tokens)
	if err != nil {
		h.internal(c, "read subjects", err)
		return
	}
	cmd, resp, err := h.decide.PeerCheck(member(c), &req, subjects, h.now())
	if err != nil {
		h.internal(c, "decide check", err)
		return
	}
	res, ok := h.commitFor(c, "log check", cmd)
	if !ok {
		return
	}
	resp.LogIndex = res.LogIndex
	c.JSON(http.StatusOK, resp)
}
