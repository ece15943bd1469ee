package client

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"slices"

	"github.com/sparr-dev/sparr/protocol"
	"github.com/sparr-dev/sparr/protocol/api"
)

// The calls a member makes for a consumer who authenticated with it: their
// history, their access report, their disputes; the answers of the member
// disputed; and attestations of erasure.

// postSubmission signs req and sends it, returning the hub's answer.
func (c *Client) postSubmission(ctx context.Context, req protocol.Request) ([]byte, error) {
	s, err := c.Sign(ctx, req)
	if err != nil {
		return nil, err
	}
	return c.fetch(ctx, request{method: http.MethodPost, path: s.Path, contentType: "application/jose", body: s.JWS, idempotent: true})
}

// A History is a consumer's history under one token ([api.HistoryResponse]),
// with the flag's records verified.
type History struct {
	*api.HistoryResponse
	// Records are the flag's records, verified, in the order of
	// FlagRecords.
	Records []*protocol.Record
}

// History asks for the history of the consumer who authenticated with the
// member as auth says, under subject: who checked them (member, purpose,
// time, outcome, denied or not), their flag, the suspicions about them
// (unless the hub withholds them from their subject) and their disputes.
// The request is logged as the member's access. Every flag record is
// verified and checked to be about subject.
func (c *Client) History(ctx context.Context, subject protocol.Token, auth protocol.ConsumerAuth) (*History, error) {
	const op = "POST /v1/subjects/history"
	answer, err := c.postSubmission(ctx, protocol.SubjectHistory{Subject: subject, ConsumerAuth: &auth})
	if err != nil {
		return nil, err
	}
	var a api.HistoryResponse
	if err := decodeAnswer(op, answer, &a); err != nil {
		return nil, err
	}
	if a.Subject != subject {
		return nil, &AnswerError{Op: op, Answer: answer, Err: fmt.Errorf("the history is of another subject")}
	}
	h := &History{HistoryResponse: &a}
	for _, jws := range a.FlagRecords {
		rec, err := c.verifier.Keys.Verify(ctx, []byte(jws))
		if err != nil {
			return nil, err
		}
		if toks, _ := rec.Subject.Tokens(); !slices.Contains(toks, subject) {
			return nil, &RecordError{JWS: jws, Err: fmt.Errorf("%w (%w): a flag record of the history is about another subject", ErrWrongSubject, protocol.ErrInvalidClaim)}
		}
		h.Records = append(h.Records, rec)
	}
	return h, nil
}

// An AccessReport is the hub's signed access report on a subject (GDPR
// Art. 15), verified.
type AccessReport struct {
	// JWS is the report exactly as signed: hand it to the consumer.
	JWS string
	// Record is the verified record; Report its content.
	Record   *protocol.Record
	Report   protocol.AccessReport
	LogIndex uint64
}

// AccessReport asks the hub for its access report on subject, for the
// consumer who authenticated with the member as auth says. The report is
// verified against the hub's keys and checked to be about subject and made
// for this member.
func (c *Client) AccessReport(ctx context.Context, subject protocol.Token, auth protocol.ConsumerAuth) (*AccessReport, error) {
	const op = "POST /v1/subjects/report"
	answer, err := c.postSubmission(ctx, protocol.RequestAccessReport{Subject: subject, ConsumerAuth: &auth})
	if err != nil {
		return nil, err
	}
	var a api.AccessReportResponse
	if err := decodeAnswer(op, answer, &a); err != nil {
		return nil, err
	}
	rec, err := c.verifier.Keys.Verify(ctx, []byte(a.Report))
	if err != nil {
		return nil, err
	}
	rep, err := accessReportOf(rec, a.Report, subject)
	if err != nil {
		return nil, err
	}
	if rep.RequestedBy != c.cfg.MemberID {
		return nil, &RecordError{JWS: a.Report, Err: fmt.Errorf("%w (%w): the report was made for member %q", ErrWrongObject, protocol.ErrInvalidClaim, rep.RequestedBy)}
	}
	return &AccessReport{JWS: a.Report, Record: rec, Report: *rep, LogIndex: a.LogIndex}, nil
}

// VerifyAccessReport verifies an access report as anyone holding the
// hub's keys can (the consumer, a court, the data-protection authority):
// a record signed by the hub, of event access-report, about subject.
func VerifyAccessReport(jws []byte, keys *protocol.KeySet, subject protocol.Token) (*protocol.Record, *protocol.AccessReport, error) {
	rec, err := protocol.VerifyRecord(jws, keys)
	if err != nil {
		return nil, nil, &RecordError{JWS: string(jws), Err: err}
	}
	rep, err := accessReportOf(rec, string(jws), subject)
	if err != nil {
		return nil, nil, err
	}
	return rec, rep, nil
}

// accessReportOf is the access report rec (verified, signed as jws), if it
// is one about subject.
func accessReportOf(rec *protocol.Record, jws string, subject protocol.Token) (*protocol.AccessReport, error) {
	rep, ok := rec.Event.(protocol.AccessReport)
	if !ok {
		return nil, &RecordError{JWS: jws, Err: fmt.Errorf("%w (%w): a %s record, not an access report", ErrWrongType, protocol.ErrInvalidClaim, rec.Event.EventType().Short())}
	}
	if toks, _ := rec.Subject.Tokens(); !slices.Contains(toks, subject) {
		return nil, &RecordError{JWS: jws, Err: fmt.Errorf("%w (%w): the report is about another subject", ErrWrongSubject, protocol.ErrInvalidClaim)}
	}
	return &rep, nil
}

// A DisputeResult is a dispute as the hub answers a write or a read of
// it, with the record of the write addressed to the member, verified (nil
// for a read, or a repeated write whose record is gone).
type DisputeResult struct {
	Dispute   protocol.DisputeEntry
	Record    *protocol.Record
	RecordJWS string
	Seq       uint64
	LogIndex  uint64
}

func (c *Client) disputeAnswer(ctx context.Context, op string, answer []byte) (*DisputeResult, error) {
	var a api.DisputeResponse
	if err := decodeAnswer(op, answer, &a); err != nil {
		return nil, err
	}
	res := &DisputeResult{Dispute: a.Dispute, RecordJWS: a.Record, Seq: a.Seq, LogIndex: a.LogIndex}
	if a.Record == "" {
		return res, nil
	}
	rec, err := c.verifier.Keys.Verify(ctx, []byte(a.Record))
	if err != nil {
		return res, err
	}
	if id, ok := DisputeID(rec.Event); !ok || id != a.Dispute.DisputeID {
		return res, &RecordError{JWS: a.Record, Err: fmt.Errorf("%w (%w): the record is not of dispute %q", ErrWrongObject, protocol.ErrInvalidClaim, a.Dispute.DisputeID)}
	}
	res.Record = rec
	return res, nil
}

// DisputeID returns the dispute an event is about, if it is a dispute
// event.
func DisputeID(ev protocol.Event) (string, bool) {
	switch e := ev.(type) {
	case protocol.DisputeOpened:
		return e.DisputeID, true
	case protocol.DisputeAcknowledged:
		return e.DisputeID, true
	case protocol.DisputeResolved:
		return e.DisputeID, true
	case protocol.DisputeLapsed:
		return e.DisputeID, true
	}
	return "", false
}

// OpenDispute opens, for the consumer who authenticated with the member
// (req.ConsumerAuth), a dispute of a suspicion or flag about req.Subject.
// The member that reported the suspicion or placed the flag must
// acknowledge and resolve it within the hub's deadlines.
func (c *Client) OpenDispute(ctx context.Context, req protocol.OpenDispute) (*DisputeResult, error) {
	answer, err := c.postSubmission(ctx, req)
	if err != nil {
		return nil, err
	}
	return c.disputeAnswer(ctx, "POST /v1/disputes", answer)
}

// AnswerDispute answers a dispute addressed to the member: acknowledge it,
// uphold it (the suspicion is retracted, the flag lifted) or reject it
// with a reason the consumer is shown.
func (c *Client) AnswerDispute(ctx context.Context, disputeID string, answer protocol.DisputeAnswer, reason string) (*DisputeResult, error) {
	a, err := c.postSubmission(ctx, protocol.AnswerDispute{DisputeID: disputeID, Answer: answer, Reason: reason})
	if err != nil {
		return nil, err
	}
	return c.disputeAnswer(ctx, "POST /v1/disputes/"+url.PathEscape(disputeID)+"/answer", a)
}

// Dispute reads a dispute the member opened or is addressed.
func (c *Client) Dispute(ctx context.Context, disputeID string) (*protocol.DisputeEntry, error) {
	var a api.DisputeResponse
	if err := c.call(ctx, request{method: http.MethodGet, path: "/v1/disputes/" + url.PathEscape(disputeID)}, &a); err != nil {
		return nil, err
	}
	return &a.Dispute, nil
}

// ErasureEvent reports whether a member attests the erasure an event asks
// for: a flag lifted or expired, a subject erased, a suspicion retracted
// or expired.
func ErasureEvent(t protocol.EventType) bool {
	switch t {
	case protocol.EventFlagLifted, protocol.EventFlagExpired, protocol.EventSubjectErased,
		protocol.EventSuspicionRetracted, protocol.EventSuspicionExpired:
		return true
	}
	return false
}

// AttestErasure attests that the member deleted what the erasure records
// named by jti told it to (see [ErasureEvent]), up to
// [protocol.MaxAttestations] at a time. Attesting a record again changes
// nothing.
func (c *Client) AttestErasure(ctx context.Context, records ...string) (*api.AttestResponse, error) {
	if len(records) == 0 || len(records) > protocol.MaxAttestations {
		return nil, fmt.Errorf("attest %d erasures: attest 1 to %d at a time", len(records), protocol.MaxAttestations)
	}
	answer, err := c.postSubmission(ctx, protocol.AttestErasure{Records: records})
	if err != nil {
		return nil, err
	}
	var a api.AttestResponse
	if err := decodeAnswer("POST /v1/erasure-attestations", answer, &a); err != nil {
		return nil, err
	}
	return &a, nil
}

// AttestationStatus reads how many of the members expected to attest an
// erasure record have: what the origin member shows the consumer as
// "deleted at 11 of 12 banks".
func (c *Client) AttestationStatus(ctx context.Context, jti string) (*api.AttestationStatus, error) {
	var a api.AttestationStatus
	if err := c.call(ctx, request{method: http.MethodGet, path: "/v1/erasure-attestations/" + url.PathEscape(jti)}, &a); err != nil {
		return nil, err
	}
	return &a, nil
}

// OverdueAttestations lists, for the operator and regulators, the erasure
// records past the hub's attestation deadline that some member has not
// attested.
func (c *Client) OverdueAttestations(ctx context.Context) (*api.OverdueAttestations, error) {
	var a api.OverdueAttestations
	if err := c.call(ctx, request{method: http.MethodGet, path: "/v1/audit/erasure-attestations"}, &a); err != nil {
		return nil, err
	}
	return &a, nil
}
