package server

import (
	"encoding/json"
	"errors"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/sparr-dev/sparr/protocol"
	"github.com/sparr-dev/sparr/protocol/api"
	"github.com/sparr-dev/sparr/server/decide"
	"github.com/sparr-dev/sparr/server/state"
	"github.com/sparr-dev/sparr/server/store"
)

// The routes members call for consumers who authenticated with them (their
// history, their access report, their disputes), the disputed member's
// answers, and erasure attestations.

// history reads everything a history or access report shows about tok.
func (h *Hub) history(tok string) (*decide.History, error) {
	subjects, err := h.store.Subjects([]string{tok})
	if err != nil {
		return nil, err
	}
	disputes, err := h.store.DisputesAbout(tok)
	if err != nil {
		return nil, err
	}
	entries, err := h.store.SubjectEntries(tok)
	if err != nil {
		return nil, err
	}
	ms, err := h.store.Members()
	if err != nil {
		return nil, err
	}
	denied, err := h.deniedChecks(tok)
	if err != nil {
		return nil, err
	}
	hist := &decide.History{Subject: subjects[0], Disputes: disputes, Entries: entries,
		Checks: map[string]*state.Check{}, Denied: denied, Names: decide.Directory{}}
	for _, m := range ms {
		hist.Names[m.ID] = m.Name
	}
	for _, e := range entries {
		if e.Entry.Action != protocol.LogCheck {
			continue
		}
		var det struct {
			CheckID string `json:"check_id"`
		}
		if json.Unmarshal(e.Details, &det) != nil || det.CheckID == "" {
			continue
		}
		chk, err := h.store.Check(det.CheckID)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return nil, err
		}
		hist.Checks[det.CheckID] = chk
	}
	return hist, nil
}

// deniedChecks returns the checks of tok the consumer denied ("not me")
// through the flag's origin, by check id.
func (h *Hub) deniedChecks(tok string) (map[string]bool, error) {
	ds, err := h.store.Denials(tok)
	if err != nil {
		return nil, err
	}
	return decide.Denials(ds), nil
}

// subjectHistory: POST /v1/subjects/history. A member acting for a
// consumer, stating how they authenticated, reads their history.
func (h *Hub) subjectHistory(c *gin.Context) {
	s, _, ok := h.readSubmission(c, protocol.ActionSubjectHistory)
	if !ok {
		return
	}
	req := s.Request.(protocol.SubjectHistory)
	hist, err := h.history(req.Subject.String())
	if err != nil {
		h.internal(c, "read history", err)
		return
	}
	note, resp, err := h.decide.SubjectHistory(member(c), s, hist, h.now())
	if err != nil {
		h.refuse(c, "subject history", err)
		return
	}
	res, ok := h.commitFor(c, "log history", note)
	if !ok {
		return
	}
	resp.LogIndex = res.LogIndex
	c.JSON(http.StatusOK, resp)
}

// accessReport: POST /v1/subjects/report. The hub's signed access report
// (GDPR Art. 15) for a member acting for a consumer.
func (h *Hub) accessReport(c *gin.Context) {
	s, _, ok := h.readSubmission(c, protocol.ActionAccessReport)
	if !ok {
		return
	}
	req := s.Request.(protocol.RequestAccessReport)
	hist, err := h.history(req.Subject.String())
	if err != nil {
		h.internal(c, "read history", err)
		return
	}
	var consent []byte
	if f := hist.Subject.Flag; f != nil {
		consent, err = h.store.Consent(f.ID)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			h.internal(c, "read consent", err)
			return
		}
	}
	note, jws, err := h.decide.AccessReport(member(c), s, hist, consent, h.now())
	if err != nil {
		h.refuse(c, "access report", err)
		return
	}
	res, ok := h.commitFor(c, "log access report", note)
	if !ok {
		return
	}
	c.JSON(http.StatusOK, api.AccessReportResponse{Report: jws, LogIndex: res.LogIndex})
}

// openDispute: POST /v1/disputes. A member opens a consumer's dispute of
// a suspicion or flag.
func (h *Hub) openDispute(c *gin.Context) {
	s, hash, ok := h.readSubmission(c, protocol.ActionOpenDispute)
	if !ok || h.replayed(c, s, hash) {
		return
	}
	req := s.Request.(protocol.OpenDispute)
	m := member(c)
	cmd, res, ok := apply(h, c, "open dispute", func(now time.Time) (*state.PutDispute, error) {
		var sp *state.Suspicion
		var f *state.Flag
		var err error
		target := req.SuspicionID
		if target != "" {
			sp, err = h.readSuspicion(target)
		} else {
			target = req.FlagID
			f, err = h.flagOrNil(target)
		}
		if err != nil {
			return nil, err
		}
		open, err := h.openDisputeOf(req.Subject.String(), target)
		if err != nil {
			return nil, err
		}
		return h.decide.OpenDispute(m, s, hash, sp, f, open, now)
	})
	if !ok {
		return
	}
	c.Header("Location", "/v1/disputes/"+cmd.Dispute.ID)
	c.JSON(http.StatusCreated, api.DisputeResponse{Dispute: decide.DisputeView(cmd.Dispute), Record: recordFor(cmd.Records, m.ID), Seq: res.Seq, LogIndex: res.LogIndex})
}

// recordFor is the JWS of the first of recs addressed to member.
func recordFor(recs []*state.Record, member string) string {
	for _, r := range recs {
		if r.Audience == member {
			return r.JWS
		}
	}
	return ""
}

// flagOrNil reads flag id, or nil if the hub holds none.
func (h *Hub) flagOrNil(id string) (*state.Flag, error) {
	return store.OrNil(h.store.Flag(id))
}

// openDisputeOf is the open dispute of target about tok, or nil.
func (h *Hub) openDisputeOf(tok, target string) (*state.Dispute, error) {
	ds, err := h.store.DisputesAbout(tok)
	if err != nil {
		return nil, err
	}
	for _, d := range ds {
		if d.Target() == target && d.Open() {
			return d, nil
		}
	}
	return nil, nil
}

// readDispute reads dispute id, or nil if the hub holds none.
func (h *Hub) readDispute(id string) (*state.Dispute, error) {
	return store.OrNil(h.store.Dispute(id))
}

// answerDisputeRoute: POST /v1/disputes/{id}/answer. The member disputed
// acknowledges, upholds or rejects a dispute.
func (h *Hub) answerDisputeRoute(c *gin.Context) {
	s, hash, ok := h.readSubmission(c, protocol.ActionAnswerDispute)
	if !ok || !h.checkPathID(c, "dispute_id", s.Request.(protocol.AnswerDispute).DisputeID) || h.replayed(c, s, hash) {
		return
	}
	m := member(c)
	cmd, res, ok := apply(h, c, "answer dispute", func(now time.Time) (*state.PutDispute, error) {
		ds, err := h.readDispute(c.Param("id"))
		if err != nil || ds == nil {
			return h.decide.AnswerDispute(m, s, hash, nil, nil, nil, now)
		}
		var sp *state.Suspicion
		var f *state.Flag
		if ds.Suspicion != "" {
			sp, err = h.readSuspicion(ds.Suspicion)
		} else {
			f, err = h.flagOrNil(ds.Flag)
		}
		if err != nil {
			return nil, err
		}
		return h.decide.AnswerDispute(m, s, hash, ds, sp, f, now)
	})
	if !ok {
		return
	}
	c.JSON(http.StatusOK, api.DisputeResponse{Dispute: decide.DisputeView(cmd.Dispute), Record: recordFor(cmd.Records, m.ID), Seq: res.Seq, LogIndex: res.LogIndex})
}

// answerDispute answers a repeated dispute submission with the dispute as
// it is now.
func (h *Hub) answerDispute(c *gin.Context, sub *state.Submission) {
	ds, err := h.store.Dispute(sub.Dispute)
	if err != nil {
		h.internal(c, "read dispute", err)
		return
	}
	resp := api.DisputeResponse{Dispute: decide.DisputeView(ds), LogIndex: sub.LogIndex}
	if r, err := h.store.Record(sub.Record); err == nil && r.Audience == member(c).ID {
		resp.Record, resp.Seq = r.JWS, r.Seq
	}
	status := http.StatusOK
	if sub.Action == protocol.LogDisputeOpened {
		status = http.StatusCreated
	}
	c.JSON(status, resp)
}

// getDispute: GET /v1/disputes/{id}, for its two members.
func (h *Hub) getDispute(c *gin.Context) {
	ds, err := h.readDispute(c.Param("id"))
	if err != nil {
		h.internal(c, "read dispute", err)
		return
	}
	m := member(c)
	if ds == nil || (ds.Disputant != m.ID && ds.Respondent != m.ID) {
		h.fail(c, problemf(protocol.ProblemNotFound, "no dispute %s of member %q", decide.Quote(c.Param("id")), m.ID))
		return
	}
	c.JSON(http.StatusOK, api.DisputeResponse{Dispute: decide.DisputeView(ds)})
}

// attestErasure: POST /v1/erasure-attestations. A member attests that it
// deleted what erasure records told it to.
func (h *Hub) attestErasure(c *gin.Context) {
	s, hash, ok := h.readSubmission(c, protocol.ActionAttestErasure)
	if !ok || h.replayed(c, s, hash) {
		return
	}
	m := member(c)
	req := s.Request.(protocol.AttestErasure)
	_, res, ok := apply(h, c, "attest erasure", func(now time.Time) (*state.AttestErasure, error) {
		recs := make([]*state.ErasureRecord, len(req.Records))
		for i, id := range req.Records {
			r, err := h.store.ErasureRecord(id)
			if err != nil && !errors.Is(err, store.ErrNotFound) {
				return nil, err
			}
			recs[i] = r
		}
		return h.decide.AttestErasure(m, s, hash, recs, now)
	})
	if !ok {
		return
	}
	c.JSON(http.StatusOK, api.AttestResponse{Count: len(req.Records), LogIndex: res.LogIndex})
}

// attestationStatus: GET /v1/erasure-attestations/{jti}. How many of the
// members expected to have attested an erasure record.
func (h *Hub) attestationStatus(c *gin.Context) {
	id := c.Param("jti")
	r, err := h.store.ErasureRecord(id)
	if errors.Is(err, store.ErrNotFound) {
		h.fail(c, problemf(protocol.ProblemNotFound, "no erasure record %s", decide.Quote(id)))
		return
	}
	if err != nil {
		h.internal(c, "read erasure record", err)
		return
	}
	ms, err := h.store.Members()
	if err != nil {
		h.internal(c, "read members", err)
		return
	}
	attested, err := h.store.Attestations(id)
	if err != nil {
		h.internal(c, "read attestations", err)
		return
	}
	st, err := decide.AttestationStatus(member(c), r, ms, attested)
	if err != nil {
		h.refuse(c, "attestation status", err)
		return
	}
	c.JSON(http.StatusOK, st)
}

// overdueAttestations: GET /v1/audit/erasure-attestations. The erasure
// records older than the attestation deadline that some member has not
// attested, for the operator and regulators.
func (h *Hub) overdueAttestations(c *gin.Context) {
	ms, err := h.store.Members()
	if err != nil {
		h.internal(c, "read members", err)
		return
	}
	deadline := h.decide.Policy.AttestationDeadline
	out := api.OverdueAttestations{Deadline: deadline.String(), Before: h.now().Add(-deadline).UTC(), Records: []api.OverdueErasure{}}
	err = h.store.ErasureRecords(out.Before, func(r *state.ErasureRecord, attested map[string]time.Time) bool {
		if o := decide.OverdueErasure(r, ms, attested); o != nil {
			out.Records = append(out.Records, *o)
		}
		return len(out.Records) < api.MaxFeedPage
	})
	if err != nil {
		h.internal(c, "read erasure records", err)
		return
	}
	c.JSON(http.StatusOK, out)
}

// lapseDisputes records the lapse of open disputes whose deadline passed
// unanswered (see [decide.Decider.LapseDispute]).
func (h *Hub) lapseDisputes(now time.Time) (int, error) {
	due, err := h.store.DisputesDueBefore(now, jobBatch)
	if err != nil {
		return 0, err
	}
	for _, ds := range due {
		cmd, err := h.decide.LapseDispute(ds, now)
		if err != nil {
			return 0, err
		}
		if _, err := h.commit(cmd); err != nil {
			return 0, err
		}
	}
	return len(due), nil
}
