package server

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/sparr-dev/sparr/federation/members"
	"github.com/sparr-dev/sparr/protocol"
	"github.com/sparr-dev/sparr/protocol/api"
	"github.com/sparr-dev/sparr/server/store"
)

// Purposes are the reasons a member may check an identity.
var Purposes = []string{"credit-application", "account-opening", "address-change", "payment", "card-issuance", "other"}

// Outcomes are what a member may report after a check.
var Outcomes = []string{"verified", "not-verified", "abandoned"}

// The advice a check gives for one token.
const (
	AdviceVerify = "verify" // an active flag: confirm the applicant by strong authentication before approving
	AdviceReview = "review" // suspicions but no active flag: look closer
	AdviceNone   = "none"   // nothing known
)

func checkPurpose(p string) *protocol.Problem {
	if !slices.Contains(Purposes, p) {
		return fieldProblem(protocol.ProblemValidation, "purpose", "%q is not a purpose; use one of %s", p, strings.Join(Purposes, ", "))
	}
	return nil
}

// checkRequest is the body of POST /v1/check.
type checkRequest struct {
	Purpose string   `json:"purpose"`
	Tokens  []string `json:"tokens"`
}

// A CheckResult is the answer for one token.
type CheckResult struct {
	Token  string `json:"token"`
	Advice string `json:"advice"`
	// Flag is the active flag, if any, with its signed records (placed,
	// extended, thawed).
	Flag       *CheckFlag       `json:"flag,omitempty"`
	Suspicions *CheckSuspicions `json:"suspicions,omitempty"`
}

// A CheckFlag is a flag as a check reports it.
type CheckFlag struct {
	FlagID    string     `json:"flag_id"`
	Kind      string     `json:"kind"`
	Thawed    bool       `json:"thawed"`
	ThawUntil *time.Time `json:"thaw_until,omitempty"`
	ExpiresAt time.Time  `json:"expires_at"`
	Records   []string   `json:"records"`
}

// CheckSuspicions are the suspicion hits of a token: how many, and of
// which categories. Details need a separate, logged request.
type CheckSuspicions struct {
	Count      int      `json:"count"`
	Categories []string `json:"categories"`
	IDs        []string `json:"suspicion_ids"`
}

// A CheckResponse is the answer to POST /v1/check.
type CheckResponse struct {
	CheckID   string        `json:"check_id"`
	CheckedAt time.Time     `json:"checked_at"`
	Results   []CheckResult `json:"results"`
	LogIndex  uint64        `json:"log_index"`
}

// check: POST /v1/check. The answer is given only after the check's log
// entry is durable.
func (h *Hub) check(c *gin.Context) {
	var req checkRequest
	if !h.readJSON(c, &req) {
		return
	}
	if p := checkPurpose(req.Purpose); p != nil {
		h.fail(c, p)
		return
	}
	if len(req.Tokens) == 0 || len(req.Tokens) > protocol.MaxTokenBatch {
		h.fail(c, fieldProblem(protocol.ProblemValidation, "tokens", "%d tokens; send 1 to %d", len(req.Tokens), protocol.MaxTokenBatch))
		return
	}
	for i, s := range req.Tokens {
		t, err := protocol.ParseToken(s)
		if err != nil {
			h.fail(c, tokenProblem(fmt.Sprintf("tokens[%d]", i), err))
			return
		}
		if p := h.checkToken(fmt.Sprintf("tokens[%d]", i), t); p != nil {
			h.fail(c, p)
			return
		}
	}
	m, now := member(c), h.now()
	subjects, err := h.store.Subjects(req.Tokens)
	if err != nil {
		h.internal(c, "read subjects", err)
		return
	}
	resp := CheckResponse{CheckID: newID(), CheckedAt: now.UTC(), Results: make([]CheckResult, len(req.Tokens))}
	chk := &store.Check{ID: resp.CheckID, Member: m.ID, Purpose: req.Purpose, At: now, Tokens: len(req.Tokens)}
	for i, t := range req.Tokens {
		resp.Results[i] = checkResult(m, t, subjects[i], now)
		switch resp.Results[i].Advice {
		case AdviceVerify:
			chk.Verify++
		case AdviceReview:
			chk.Review++
		}
	}
	res, err := h.store.Apply(&store.Command{
		At: now, Actor: m.ID, Action: protocol.LogCheck,
		Salt: salt(), Details: details(map[string]any{"check_id": chk.ID, "purpose": req.Purpose, "tokens": req.Tokens}),
		Subjects: req.Tokens,
		Attrs: []protocol.LogAttr{{Key: "purpose", Value: req.Purpose}, {Key: "tokens", Value: fmt.Sprint(chk.Tokens)},
			{Key: "verify", Value: fmt.Sprint(chk.Verify)}, {Key: "review", Value: fmt.Sprint(chk.Review)}},
		Check: chk,
	})
	if err != nil {
		h.internal(c, "log check", err)
		return
	}
	resp.LogIndex = res.LogIndex
	c.JSON(http.StatusOK, resp)
}

// entitledJWS returns the JWS of those of recs that m is entitled to, in
// order; never nil, so that none is answered as an empty list.
func entitledJWS(m *api.Member, recs []*store.Record) []string {
	out := []string{}
	for _, r := range recs {
		if members.Entitled(m, r.Audience, r.Type) {
			out = append(out, r.JWS)
		}
	}
	return out
}

// checkResult gives the advice for one token from what the hub holds, at
// the moment of the check: a flag past its expiry or a suspicion past its
// retention no longer counts even if the job has not yet ended it. The
// flag's records are those the checking member m is entitled to (a
// reminder to the flag's origin is the origin's alone).
func checkResult(m *api.Member, token string, s store.Subject, now time.Time) CheckResult {
	r := CheckResult{Token: token, Advice: AdviceNone}
	if f := s.Flag; f != nil && f.ActiveAt(now) {
		cf := &CheckFlag{FlagID: f.ID, Kind: string(f.Kind), ExpiresAt: f.ExpiresAt, Thawed: f.ThawedAt(now), Records: entitledJWS(m, s.Records)}
		if cf.Thawed {
			cf.ThawUntil = &f.ThawUntil
		}
		r.Flag = cf
		if !cf.Thawed {
			r.Advice = AdviceVerify
		}
	}
	var hits CheckSuspicions
	for _, sp := range s.Suspicions {
		if !sp.ActiveAt(now) {
			continue
		}
		hits.Count++
		hits.IDs = append(hits.IDs, sp.ID)
		if !slices.Contains(hits.Categories, string(sp.Category)) {
			hits.Categories = append(hits.Categories, string(sp.Category))
		}
	}
	if hits.Count > 0 {
		r.Suspicions = &hits
		if r.Advice == AdviceNone {
			r.Advice = AdviceReview
		}
	}
	return r
}

// outcomeRequest is the body of POST /v1/checks/{id}/outcome.
type outcomeRequest struct {
	Outcome string `json:"outcome"`
}

// checkOutcome: POST /v1/checks/{id}/outcome. The member that made a check
// reports whether the applicant was verified.
func (h *Hub) checkOutcome(c *gin.Context) {
	var req outcomeRequest
	if !h.readJSON(c, &req) {
		return
	}
	if !slices.Contains(Outcomes, req.Outcome) {
		h.fail(c, fieldProblem(protocol.ProblemValidation, "outcome", "%q is not an outcome; use one of %s", req.Outcome, strings.Join(Outcomes, ", ")))
		return
	}
	m, now := member(c), h.now()
	chk, err := h.store.Check(c.Param("id"))
	if errors.Is(err, store.ErrNotFound) || (err == nil && chk.Member != m.ID) {
		h.fail(c, problemf(protocol.ProblemNotFound, "no check %q made by member %q", c.Param("id"), m.ID))
		return
	}
	if err != nil {
		h.internal(c, "read check", err)
		return
	}
	if chk.Outcome != "" {
		h.fail(c, problemf(protocol.ProblemStateConflict, "the outcome of check %q was already reported as %q", chk.ID, chk.Outcome))
		return
	}
	chk.Outcome, chk.OutcomeAt = req.Outcome, now
	res, err := h.store.Apply(&store.Command{
		At: now, Actor: m.ID, Action: protocol.LogCheckOutcome,
		Salt: salt(), Details: details(map[string]string{"check_id": chk.ID, "outcome": req.Outcome}),
		Attrs: []protocol.LogAttr{{Key: "outcome", Value: req.Outcome}},
		Check: chk,
	})
	switch {
	case err != nil:
		h.internal(c, "log outcome", err)
	case res.Conflict:
		h.fail(c, problemf(protocol.ProblemStateConflict, "the outcome of check %q was already reported", chk.ID))
	default:
		c.JSON(http.StatusOK, gin.H{"check_id": chk.ID, "outcome": chk.Outcome, "log_index": res.LogIndex})
	}
}
