package server

import (
	"errors"
	"net/http"
	"time"
	"unicode/utf8"

	"github.com/gin-gonic/gin"

	"github.com/sparr-dev/sparr/protocol"
	"github.com/sparr-dev/sparr/server/store"
)

// A suspicionView is a suspicion as the API shows it to the member that
// reported it, or to one that asked for its details.
type suspicionView struct {
	SuspicionID  string                     `json:"suspicion_id"`
	Subjects     []string                   `json:"subjects,omitempty"`
	Category     protocol.SuspicionCategory `json:"category"`
	Origin       string                     `json:"origin"`
	Status       store.SuspicionStatus      `json:"status"`
	ReportedAt   time.Time                  `json:"reported_at"`
	ExpiresAt    time.Time                  `json:"expires_at"`
	PoliceReport *protocol.PoliceReport     `json:"police_report,omitempty"`
}

func suspicionViewOf(s *store.Suspicion, full bool) *suspicionView {
	v := &suspicionView{SuspicionID: s.ID, Category: s.Category, Origin: s.Origin, Status: s.Status, ReportedAt: s.ReportedAt, ExpiresAt: s.ExpiresAt}
	if full {
		v.Subjects, v.PoliceReport = s.Subjects, s.PoliceReport
	}
	return v
}

// suspicionsEnabled refuses suspicion routes on a hub without a legal
// basis for them.
func (h *Hub) suspicionsEnabled(c *gin.Context) bool {
	if h.cfg.Policy.SuspicionLegalBasis == "" {
		h.fail(c, problemf(protocol.ProblemSuspicionsDisabled,
			"this hub shares no suspicions: they are data on criminal offences (GDPR Art. 10) and the operator has configured no legal basis for them"))
		return false
	}
	return true
}

// reportSuspicion: POST /v1/suspicions.
func (h *Hub) reportSuspicion(c *gin.Context) {
	if !h.suspicionsEnabled(c) {
		return
	}
	s, hash, ok := h.readSubmission(c, protocol.ActionReportSuspicion)
	if !ok || h.replayed(c, s, hash) {
		return
	}
	m, req, now := member(c), s.Request.(protocol.ReportSuspicion), h.now().UTC().Truncate(time.Second)
	subjects := make([]string, len(req.Subjects))
	for i, t := range req.Subjects {
		if p := h.checkToken("request.subjects", t); p != nil {
			h.fail(c, p)
			return
		}
		subjects[i] = t.String()
	}
	if p := checkPoliceReport(req.PoliceReport, now); p != nil {
		h.fail(c, p)
		return
	}
	expiry := now.Add(h.cfg.Policy.SuspicionRetention)
	cmd, res, ok := h.apply(c, func() (*store.Command, *protocol.Problem) {
		id := newID()
		// The full record, with the police report, is the reporter's (and a
		// details requester's); the hit record, without it, goes to every
		// checking member.
		ev := protocol.SuspicionReported{SuspicionID: id, Origin: m.ID, Category: req.Category, PoliceReport: req.PoliceReport, ExpiresAt: protocol.NewNumericDate(expiry)}
		rec, err := h.sign(s.ID, req.Subjects, m.ID, id, ev, now)
		if err != nil {
			return nil, problemf(protocol.ProblemInternal, "signing failed")
		}
		ev.PoliceReport = nil
		hit, err := h.sign(s.ID, req.Subjects, "", id, ev, now)
		if err != nil {
			return nil, problemf(protocol.ProblemInternal, "signing failed")
		}
		return &store.Command{
			At: h.now(), Actor: m.ID, Action: protocol.LogSuspicionReported,
			Salt: salt(), Details: details(map[string]any{"suspicion_id": id, "record": rec.ID, "hit": hit.ID, "subjects": subjects, "legal_basis": h.cfg.Policy.SuspicionLegalBasis}),
			Subjects:   subjects,
			Submission: &store.SubmissionRef{ID: s.ID, Hash: hash},
			Record:     rec, Also: []*store.Record{hit},
			Suspicion: &store.Suspicion{ID: id, Version: 1, Subjects: subjects, Category: req.Category, Origin: m.ID,
				Status: store.SuspicionActive, PoliceReport: req.PoliceReport, ReportedAt: now, ExpiresAt: expiry, Records: []string{rec.ID, hit.ID}},
		}, nil
	})
	if !ok {
		return
	}
	c.Header("Location", "/v1/suspicions/"+cmd.Suspicion.ID)
	c.JSON(http.StatusCreated, writeResponse{Suspicion: suspicionViewOf(cmd.Suspicion, true), Record: cmd.Record.JWS, Seq: res.Seq, LogIndex: res.LogIndex})
}

// retractSuspicion: POST /v1/suspicions/{id}/retract. Only the member that
// reported a suspicion may retract it.
func (h *Hub) retractSuspicion(c *gin.Context) {
	if !h.suspicionsEnabled(c) {
		return
	}
	s, hash, ok := h.readSubmission(c, protocol.ActionRetractSuspicion)
	if !ok || !h.checkPathID(c, "suspicion_id", s.Request.(protocol.RetractSuspicion).SuspicionID) || h.replayed(c, s, hash) {
		return
	}
	m, req, now := member(c), s.Request.(protocol.RetractSuspicion), h.now().UTC().Truncate(time.Second)
	cmd, res, ok := h.apply(c, func() (*store.Command, *protocol.Problem) {
		sp, err := h.store.Suspicion(req.SuspicionID)
		if errors.Is(err, store.ErrNotFound) || (err == nil && sp.Origin != m.ID) {
			return nil, problemf(protocol.ProblemNotFound, "no suspicion %q reported by member %q", req.SuspicionID, m.ID)
		}
		if err != nil {
			return nil, problemf(protocol.ProblemInternal, "reading the suspicion failed")
		}
		if !sp.ActiveAt(now) {
			return nil, problemf(protocol.ProblemStateConflict, "suspicion %q is %s", sp.ID, sp.Status)
		}
		toks, err := parseTokens(sp.Subjects)
		if err != nil {
			return nil, problemf(protocol.ProblemInternal, "stored suspicion has a bad subject")
		}
		rec, err := h.sign(s.ID, toks, "", sp.ID, protocol.SuspicionRetracted{SuspicionID: sp.ID, Origin: m.ID, Reason: req.Reason}, now)
		if err != nil {
			return nil, problemf(protocol.ProblemInternal, "signing failed")
		}
		return &store.Command{
			At: h.now(), Actor: m.ID, Action: protocol.LogSuspicionRetracted,
			Salt: salt(), Details: details(map[string]string{"suspicion_id": sp.ID, "record": rec.ID, "reason": string(req.Reason)}),
			Submission: &store.SubmissionRef{ID: s.ID, Hash: hash},
			Record:     rec, Suspicion: endedSuspicion(sp, rec, store.SuspicionRetracted, now),
			Erase: &store.Erase{Records: sp.Records, Basis: "suspicion-retracted"},
		}, nil
	})
	if !ok {
		return
	}
	c.JSON(http.StatusOK, writeResponse{Suspicion: suspicionViewOf(cmd.Suspicion, true), Record: cmd.Record.JWS, Seq: res.Seq, LogIndex: res.LogIndex})
}

// endedSuspicion is a suspicion's last state: no subjects or report kept.
func endedSuspicion(s *store.Suspicion, rec *store.Record, status store.SuspicionStatus, now time.Time) *store.Suspicion {
	return &store.Suspicion{
		ID: s.ID, Version: s.Version + 1, Category: s.Category, Origin: s.Origin, Status: status,
		ReportedAt: s.ReportedAt, ExpiresAt: s.ExpiresAt, Records: []string{rec.ID}, EndedAt: now,
	}
}

func parseTokens(texts []string) ([]protocol.Token, error) {
	out := make([]protocol.Token, len(texts))
	for i, s := range texts {
		t, err := protocol.ParseToken(s)
		if err != nil {
			return nil, err
		}
		out[i] = t
	}
	return out, nil
}

// detailsRequest is the body of POST /v1/suspicions/{id}/details.
type detailsRequest struct {
	Purpose       string `json:"purpose"`
	Justification string `json:"justification"`
}

// suspicionDetails: POST /v1/suspicions/{id}/details. A checking member
// that states its purpose and why it needs them gets the suspicion's full
// signed record; the request is logged.
func (h *Hub) suspicionDetails(c *gin.Context) {
	if !h.suspicionsEnabled(c) {
		return
	}
	var req detailsRequest
	if !h.readJSON(c, &req) {
		return
	}
	if p := checkPurpose(req.Purpose); p != nil {
		h.fail(c, p)
		return
	}
	if n := utf8.RuneCountInString(req.Justification); n < 20 || n > 1000 {
		h.fail(c, fieldProblem(protocol.ProblemValidation, "justification", "%d characters; say in 20 to 1000 characters why you need the details (it is logged for the regulator)", n))
		return
	}
	m, now := member(c), h.now()
	sp, err := h.store.Suspicion(c.Param("id"))
	if errors.Is(err, store.ErrNotFound) || (err == nil && !sp.ActiveAt(now)) {
		h.fail(c, problemf(protocol.ProblemNotFound, "no active suspicion %q", c.Param("id")))
		return
	}
	if err != nil {
		h.internal(c, "read suspicion", err)
		return
	}
	recs, err := h.store.Records(sp.Records)
	if err != nil {
		h.internal(c, "read records", err)
		return
	}
	res, err := h.commit(&store.Command{
		At: now, Actor: m.ID, Action: protocol.LogSuspicionDetails,
		Salt: salt(), Details: details(map[string]string{"suspicion_id": sp.ID, "purpose": req.Purpose, "justification": req.Justification}),
		Attrs: []protocol.LogAttr{{Key: "purpose", Value: req.Purpose}},
	})
	if err != nil {
		h.internal(c, "log details request", err)
		return
	}
	var jws []string
	for _, r := range recs {
		if r.Audience == sp.Origin { // the full record, not the hit
			jws = append(jws, r.JWS)
		}
	}
	c.JSON(http.StatusOK, gin.H{"suspicion": suspicionViewOf(sp, true), "records": jws, "log_index": res.LogIndex})
}
