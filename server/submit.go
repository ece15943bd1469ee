package server

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"

	"github.com/sparr-dev/sparr/protocol"
	"github.com/sparr-dev/sparr/server/store"
)

const keyBody = "sparr.body"

// Media types of request bodies.
const (
	mediaJOSE = "application/jose" // a compact JWS (RFC 7515, section 9.2.1)
	mediaJSON = "application/json"
)

// readBody reads the body, at most MaxBodySize bytes, if it has one of the
// media types.
func (h *Hub) readBody(c *gin.Context, mediaTypes ...string) ([]byte, bool) {
	if ct := c.ContentType(); !slices.Contains(mediaTypes, ct) {
		h.fail(c, problemf(protocol.ProblemUnsupportedMediaType, "Content-Type is %q; send %s", ct, mediaTypes[0]))
		return nil, false
	}
	body, err := io.ReadAll(http.MaxBytesReader(c.Writer, c.Request.Body, MaxBodySize))
	var tooLarge *http.MaxBytesError
	switch {
	case errors.As(err, &tooLarge):
		h.fail(c, problemf(protocol.ProblemPayloadTooLarge, "the body is larger than %d bytes", MaxBodySize))
		return nil, false
	case err != nil:
		h.fail(c, problemf(protocol.ProblemMalformedRequest, "reading the body failed: %v", err))
		return nil, false
	}
	c.Set(keyBody, body)
	return body, true
}

// readJSON reads a JSON body into v strictly: unknown fields and trailing
// data are refused.
func (h *Hub) readJSON(c *gin.Context, v any) bool {
	body, ok := h.readBody(c, mediaJSON)
	if !ok {
		return false
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	if err == nil && dec.More() {
		err = errors.New("data after the JSON value")
	}
	if err != nil {
		h.fail(c, problemf(protocol.ProblemMalformedRequest, "the body is not the JSON this route takes: %v", err))
		return false
	}
	return true
}

// readSubmission reads and verifies a member's signed submission for the
// route's action: signed by the calling member, for this hub, and asking
// for this action. It returns the submission and the SHA-256 of its bytes.
func (h *Hub) readSubmission(c *gin.Context, action protocol.Action) (*protocol.Submission, []byte, bool) {
	body, ok := h.readBody(c, mediaJOSE)
	if !ok {
		return nil, nil, false
	}
	s, err := protocol.VerifySubmission(c, body, h.members, protocol.SubmissionOptions{Audience: h.cfg.Issuer, Now: h.now(), Skew: h.cfg.ClockSkew})
	if err != nil {
		h.fail(c, verificationProblem(err))
		return nil, nil, false
	}
	m := member(c)
	if s.Issuer != m.ID {
		h.fail(c, problemf(protocol.ProblemWrongSigner, "the submission is signed by member %q but sent with member %q's bearer token", s.Issuer, m.ID))
		return nil, nil, false
	}
	if a := s.Request.Action(); a != action {
		h.fail(c, problemf(protocol.ProblemInvalidSubmission, "the submission asks for %q, but this route takes %q", a, action))
		return nil, nil, false
	}
	sum := sha256.Sum256(body)
	return s, sum[:], true
}

// checkPathID refuses a submission about another object than the URL's.
func (h *Hub) checkPathID(c *gin.Context, field, inSubmission string) bool {
	if id := c.Param("id"); id != inSubmission {
		p := problemf(protocol.ProblemInvalidSubmission, "request.%s is %q but the URL names %q", field, inSubmission, id)
		p.Errors = []protocol.ProblemField{{Pointer: "request." + field, Detail: "does not match the URL"}}
		h.fail(c, p)
		return false
	}
	return true
}

// replayed answers a submission the hub has seen before: with the same
// answer if it is the same signed bytes, with 409 if it only reuses the
// jti. It reports whether it answered.
func (h *Hub) replayed(c *gin.Context, s *protocol.Submission, hash []byte) bool {
	prev, err := h.store.Submission(member(c).ID, s.ID)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return false
	case err != nil:
		h.internal(c, "read submission", err)
		return true
	case !bytes.Equal(prev.Hash, hash):
		h.fail(c, problemf(protocol.ProblemSubmissionConflict, "jti %q was already used by a different submission; sign each new submission with a new jti", s.ID))
		return true
	}
	h.answerSubmission(c, prev)
	return true
}

// answerSubmission answers with what a stored submission produced, so a
// retry gets the same answer as the original request.
func (h *Hub) answerSubmission(c *gin.Context, sub *store.Submission) {
	resp := writeResponse{LogIndex: sub.LogIndex, Existing: sub.Existing}
	if sub.Record != "" {
		if r, err := h.store.Record(sub.Record); err == nil {
			resp.Record, resp.Seq = r.JWS, r.Seq
		}
	}
	if sub.Flag != "" {
		f, err := h.store.Flag(sub.Flag)
		if err != nil {
			h.internal(c, "read flag", err)
			return
		}
		resp.Flag = flagViewFor(member(c), f, h.now())
	}
	if sub.Suspicion != "" {
		s, err := h.store.Suspicion(sub.Suspicion)
		if err != nil {
			h.internal(c, "read suspicion", err)
			return
		}
		resp.Suspicion = suspicionViewOf(s, true)
	}
	status := http.StatusOK
	if !sub.Existing && (sub.Action == protocol.LogFlagPlaced || sub.Action == protocol.LogSuspicionReported) {
		status = http.StatusCreated
	}
	c.JSON(status, resp)
}

// A writeResponse is the answer to a submission.
type writeResponse struct {
	Flag      *flagView      `json:"flag,omitempty"`
	Suspicion *suspicionView `json:"suspicion,omitempty"`
	// Record is the compact JWS of the record the submission produced.
	Record string `json:"record,omitempty"`
	// Existing: an active flag already protected the subject; this is it.
	Existing bool   `json:"existing,omitempty"`
	Seq      uint64 `json:"seq,omitempty"`
	LogIndex uint64 `json:"log_index"`
}

// plan builds a command from the current state, or refuses with a problem.
type plan func() (*store.Command, *protocol.Problem)

// apply runs plan and applies its command, planning again if the state
// changed in between. It answers the request itself on any failure or
// replay, and otherwise returns the result for the caller to answer.
func (h *Hub) apply(c *gin.Context, p plan) (*store.Command, *store.Result, bool) {
	for range 5 {
		cmd, prob := p()
		if prob != nil {
			h.fail(c, prob)
			return nil, nil, false
		}
		start := time.Now()
		res, err := h.commit(cmd)
		h.metrics.apply.Observe(time.Since(start).Seconds())
		switch {
		case err != nil:
			h.internal(c, "apply "+string(cmd.Action), err)
			return nil, nil, false
		case res.Conflict:
			continue
		case res.Replayed != nil:
			h.answerSubmission(c, res.Replayed)
			return nil, nil, false
		case res.SubmissionConflict:
			h.fail(c, problemf(protocol.ProblemSubmissionConflict, "jti %q was already used by a different submission; sign each new submission with a new jti", cmd.Submission.ID))
			return nil, nil, false
		}
		return cmd, res, true
	}
	h.fail(c, problemf(protocol.ProblemUnavailable, "the object changed while this request was applied; retry it"))
	return nil, nil, false
}

// internal answers 500 and logs the cause, which the answer does not show.
func (h *Hub) internal(c *gin.Context, what string, err error) {
	h.fail(c, h.internalProblem(c, what, err))
}

// internalProblem logs why the hub failed on a request and returns the
// problem [Hub.internal] answers with, for a plan (see [Hub.apply]).
func (h *Hub) internalProblem(c *gin.Context, what string, err error) *protocol.Problem {
	h.log.Error(what+" failed", "request_id", c.GetString(keyRequestID), "error", err)
	return hubFailed(c)
}

// hubFailed is the 500 problem for a request the hub failed on, whatever
// the cause: the answer names only the request id the log line carries.
func hubFailed(c *gin.Context) *protocol.Problem {
	return problemf(protocol.ProblemInternal, "the hub failed on this request; quote request id %s to the operator", c.GetString(keyRequestID))
}

// newID returns a UUIDv7: time-ordered, so ids sort by creation.
func newID() string { return uuid.Must(uuid.NewV7()).String() }

// sign makes and signs a record of ev about subjects, for txn, with the
// hub's active key. audience limits it to one member ("" for all entitled);
// ref names the flag or suspicion it belongs to.
func (h *Hub) sign(txn string, subjects []protocol.Token, audience, ref string, ev protocol.Event, now time.Time) (*store.Record, error) {
	r := &protocol.Record{Issuer: h.cfg.Issuer, IssuedAt: now, ID: newID(), Txn: txn, Event: ev}
	texts := make([]string, len(subjects))
	for i, t := range subjects {
		texts[i] = t.String()
	}
	if len(subjects) > 0 {
		r.Subject = protocol.SubjectOf(subjects...)
	}
	jws, err := protocol.SignRecord(r, h.keys.Active())
	if err != nil {
		return nil, fmt.Errorf("sign %s record: %w", ev.EventType().Short(), err)
	}
	return &store.Record{ID: r.ID, Type: ev.EventType(), Subjects: texts, Audience: audience, Ref: ref, IssuedAt: now, JWS: string(jws)}, nil
}

// details encodes what a log entry commits to.
func details(v any) []byte {
	b, _ := json.Marshal(v)
	return b
}

// checkToken refuses a token of another epoch than the hub's: it could
// never match anything.
func (h *Hub) checkToken(field string, t protocol.Token) *protocol.Problem {
	if e := h.keys.Token.Epoch(); t.Epoch != e {
		return tokenProblem(field, fmt.Errorf("token is of epoch %d, but this hub makes epoch %d tokens; tokenize again", t.Epoch, e))
	}
	return nil
}
