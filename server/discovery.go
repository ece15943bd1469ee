package server

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"go.opentelemetry.io/otel/attribute"

	"github.com/sparr-dev/sparr/federation/members"
	"github.com/sparr-dev/sparr/protocol"
	"github.com/sparr-dev/sparr/protocol/api"
	"github.com/sparr-dev/sparr/server/decide"
	"github.com/sparr-dev/sparr/server/state"
	"github.com/sparr-dev/sparr/server/store"
)

// Configuration returns the discovery document.
func (h *Hub) Configuration() api.Configuration {
	base := strings.TrimSuffix(h.cfg.Issuer, "/")
	p := h.cfg.Policy
	const day = 24 * 60 * 60
	return api.Configuration{
		Issuer:  h.cfg.Issuer,
		JWKSURI: base + "/.well-known/jwks.json",
		Endpoints: map[string]string{
			"tokens":     base + "/v1/tokens",
			"flags":      base + "/v1/flags",
			"suspicions": base + "/v1/suspicions",
			"check":      base + "/v1/check",
			"checks":     base + "/v1/checks",
			"records":    base + "/v1/records",
		},
		IdentifierTypes:   protocol.IdentifierTypes(),
		Token:             h.keys.Token.Public(),
		HomeTokens:        h.homeTokens(),
		SigningAlgorithms: []protocol.Algorithm{protocol.EdDSA, protocol.ES256},
		WebhookPublicKey:  protocol.EncodeWebhookPublicKey(h.keys.Webhook.Public().(ed25519.PublicKey)),
		Log: api.LogInfo{Origin: h.keys.LogOrigin, PublicKey: h.keys.LogVerifier,
			Monitoring: base + "/v1/log/", Witnesses: h.witnessInfo()},
		Purposes:            api.Purposes(),
		Outcomes:            api.Outcomes(),
		SuspicionCategories: protocol.SuspicionCategories(),
		SuspicionsEnabled:   p.SuspicionLegalBasis != "",
		Policy: api.Policy{
			StandardFlagDays:              int(p.StandardFlag.Seconds()) / day,
			MaxExtendedFlagDays:           int(p.MaxExtendedFlag.Seconds()) / day,
			MaxThawHours:                  int(p.MaxThaw.Hours()),
			MaxThawAheadDays:              int(p.MaxThawAhead.Seconds()) / day,
			SubmissionMaxAgeSecs:          int(protocol.DefaultSubmissionMaxAge.Seconds()),
			BearerMaxLifetimeSecs:         int(protocol.MaxBearerLifetime.Seconds()),
			MaxTokensPerRequest:           protocol.MaxTokenBatch,
			SuspicionRetentionDays:        int(p.SuspicionRetention.Seconds()) / day,
			ConsumerAuthMaxAgeSecs:        int(p.ConsumerAuthMaxAge.Seconds()),
			DisputeAckBusinessDays:        p.DisputeAckDays,
			DisputeResolveDays:            p.DisputeResolveDays,
			AttestationDeadlineHours:      int(p.AttestationDeadline.Hours()),
			SuspicionsWithheldFromSubject: p.WithholdSuspicionsFromSubject,
		},
	}
}

// configuration: GET /.well-known/sparr-configuration.
func (h *Hub) configuration(c *gin.Context) {
	c.Header("Cache-Control", "public, max-age=300")
	c.JSON(http.StatusOK, h.Configuration())
}

// jwks: GET /.well-known/jwks.json, every record-signing key, retired ones
// included, so old records still verify.
func (h *Hub) jwks(c *gin.Context) {
	b, err := h.keys.JWKS().MarshalJSON()
	if err != nil {
		h.internal(c, "encode JWKS", err)
		return
	}
	c.Header("Cache-Control", "public, max-age=300")
	c.Data(http.StatusOK, "application/jwk-set+json", b)
}

// healthz: the process is up.
func (h *Hub) healthz(c *gin.Context) { c.JSON(http.StatusOK, api.Health{Status: "ok"}) }

// readyz: the hub can read its store; a replicated hub's node, that it
// can serve writes too: it leads, or it knows the leader and reaches it.
func (h *Hub) readyz(c *gin.Context) {
	if _, err := h.store.LogSize(); err != nil {
		h.log.Error("readiness: store unreadable", "error", err)
		h.fail(c, problemf(protocol.ProblemUnavailable, "the store cannot be read"))
		return
	}
	if h.cluster != nil {
		reason, ok := h.clusterReady(c)
		if !ok {
			h.fail(c, problemf(protocol.ProblemUnavailable, "this node cannot serve writes: %s", reason))
			return
		}
		c.JSON(http.StatusOK, api.Health{Status: "ready", Reason: reason})
		return
	}
	c.JSON(http.StatusOK, api.Health{Status: "ready"})
}

// tokens: POST /v1/tokens. The request is checked, then held to its
// member's rate, then counted against its daily quota and logged, and only
// then evaluated: a refused batch costs the hub no evaluation.
func (h *Hub) tokens(c *gin.Context) {
	var req protocol.TokenRequest
	if !h.readJSON(c, &req) {
		return
	}
	if home := req.Type.Jurisdiction(); !h.homeTo(req.Type) {
		h.relayTokens(c, &req, home)
		return
	}
	batch, err := h.keys.Token.Batch(&req)
	if err != nil {
		h.fail(c, problemf(protocol.ProblemInvalidTokenRequest, "%v", err))
		return
	}
	m, now := member(c), h.now()
	res, ok := h.chargeTokens(c, m, h.decide.Tokens(m, &req, now), now)
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

// chargeTokens holds member m's batch, decided as cmd, to m's rate, then
// counts it against m's daily quota and logs it. It answers the request
// with a problem and returns false if the batch is refused.
func (h *Hub) chargeTokens(c *gin.Context, m *api.Member, cmd *state.EvaluateTokens, now time.Time) (*store.Result, bool) {
	q := h.decide.QuotasOf(m)
	if ok, wait := h.tokenRates.allow(m, q, int(cmd.Count), now); !ok {
		secs := int(math.Ceil(wait.Seconds()))
		c.Header("Retry-After", strconv.Itoa(secs))
		h.metrics.quotaRefused.WithLabelValues(m.ID, "token-rate").Inc()
		h.fail(c, problemf(protocol.ProblemRateLimited, "member %q is over its rate of %v token evaluations a second (in bursts of up to %d); retry after %d s",
			m.ID, q.TokensPerSecond, decide.TokenBurst(q), secs))
		return nil, false
	}
	span := h.span(c, "store.commit")
	res, err := h.store.Apply(cmd)
	span.End()
	switch {
	case err != nil:
		h.internal(c, "log token batch", err)
		return nil, false
	case res.QuotaExceeded:
		h.metrics.quotaRefused.WithLabelValues(m.ID, "tokens-per-day").Inc()
		p, secs := h.decide.TokenQuotaProblem(m, cmd.Count, now)
		c.Header("Retry-After", strconv.Itoa(secs))
		h.fail(c, p)
		return nil, false
	}
	return res, true
}

// getRecord: GET /v1/records/{jti}, to a member entitled to the record as
// the check, the feed and webhooks decide it ([members.Entitled]): a
// record with an audience (a suspicion's full record, a reminder) only to
// that member, others by role and event type.
func (h *Hub) getRecord(c *gin.Context) {
	m := member(c)
	r, err := h.store.Record(c.Param("jti"))
	notFound := problemf(protocol.ProblemNotFound, "no record %s for member %q", decide.Quote(c.Param("jti")), m.ID)
	switch {
	case errors.Is(err, store.ErrNotFound):
		h.fail(c, notFound)
		return
	case err != nil:
		h.internal(c, "read record", err)
		return
	case !members.Entitled(m, r.Audience, r.Type):
		h.fail(c, notFound)
		return
	}
	c.JSON(http.StatusOK, api.RecordResponse{ID: r.ID, Type: r.Type, Seq: r.Seq, IssuedAt: r.IssuedAt, JWS: r.JWS})
}
