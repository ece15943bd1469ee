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
	for _, p := range h.cfg.Peers {
		if p.Jurisdiction == jurisdiction {
			return p
		}
	}
	return nil
}

// homeTokens is the discovery document's list of peers' token keys.
func (h *Hub) homeTokens() []api.HomeToken {
	var out []api.HomeToken
	for _, p := range h.cfg.Peers {
		out = append(out, api.HomeToken{Jurisdiction: p.Jurisdiction, Types: p.Types(), Token: p.Token})
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
	if err := protocol.CheckTokenRequest(req, p.Token.Epoch); err != nil {
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
	var pe *peering.ProblemError
	switch {
	case errors.As(err, &pe):
		h.log.Warn("home hub refused a relayed token batch", "peer", p.ID, "member", m.ID, "problem", pe.Problem.Type)
		if pe.Problem.Status == http.StatusTooManyRequests {
			if pe.RetryAfter != "" {
				c.Header("Retry-After", pe.RetryAfter)
			}
			h.fail(c, problemf(protocol.ProblemRateLimited, "the home hub of %s (%s) is over this hub's rate or quota there: %s", home, p.ID, pe.Problem.Detail))
			return
		}
		if pe.Problem.Type == protocol.ProblemInvalidTokenRequest.URI {
			h.fail(c, problemf(protocol.ProblemInvalidTokenRequest, "the home hub of %s (%s) refused the batch: %s", home, p.ID, pe.Problem.Detail))
			return
		}
		h.fail(c, problemf(protocol.ProblemUnavailable, "the home hub of %s (%s) refused to evaluate the batch (%s); ask this hub's operator", home, p.ID, pe.Problem.Type))
		return
	case err != nil:
		h.log.Warn("home hub did not evaluate a relayed token batch", "peer", p.ID, "member", m.ID, "error", err)
		c.Header("Retry-After", "30")
		h.fail(c, problemf(protocol.ProblemUnavailable, "the home hub of %s (%s) did not answer; retry later", home, p.ID))
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
