package client

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/google/uuid"

	"github.com/sparr-dev/sparr/protocol"
	"github.com/sparr-dev/sparr/protocol/api"
)

// A WriteResult is the hub's answer to a signed submission
// ([api.WriteResponse]), with its record verified.
type WriteResult struct {
	// SubmissionID is the submission's jti, its idempotency key.
	SubmissionID string
	// Flag is the flag after a flag write; for a place-flag answered with
	// Existing, the flag that already protects the subject.
	Flag *api.Flag
	// Suspicion is the suspicion after a suspicion write.
	Suspicion *api.Suspicion
	// Payee is the payee record after a payee report or contest.
	Payee *api.Payee
	// Recall is the recall after a recall write.
	Recall *api.Recall
	// Record is the signed record the write produced, verified against the
	// hub's keys; nil when Existing, or when a repeated submission's record
	// has since been erased by a lift or retraction.
	Record *protocol.Record
	// RecordJWS is the record exactly as signed.
	RecordJWS string
	// Existing says an active flag already protected the subject: nothing
	// was placed, and Flag is that flag.
	Existing bool
	// Seq is the record's sequence number in the event feed.
	Seq uint64
	// LogIndex is the index of the write's exchange-log entry.
	LogIndex uint64
}

// A Submission is a signed write, ready to send: keep its bytes to send
// them again after a crash. The hub answers the same bytes with the same
// answer for as long as it accepts them (24 hours after IssuedAt).
type Submission struct {
	// ID is the submission's jti, a UUIDv7.
	ID       string
	Action   protocol.Action
	IssuedAt time.Time
	// Path is the route it is sent to, "/v1/flags/<id>/lift" for example.
	Path string
	// JWS is the signed submission.
	JWS []byte
}

// Sign signs a write request as a new submission with a new id. Most
// members call [Client.PlaceFlag] and its siblings, which sign and send;
// Sign and [Client.Send] are for those that store what they sign before
// sending it.
func (c *Client) Sign(ctx context.Context, req protocol.Request) (*Submission, error) {
	aud, err := c.issuer(ctx)
	if err != nil {
		return nil, err
	}
	path, err := submissionPath(req)
	if err != nil {
		return nil, err
	}
	id, err := uuid.NewV7()
	if err != nil {
		return nil, err
	}
	now := c.cfg.Now()
	jws, err := protocol.SignSubmission(&protocol.Submission{Issuer: c.cfg.MemberID, Audience: aud, IssuedAt: now, ID: id.String(), Request: req}, c.cfg.Key)
	if err != nil {
		return nil, err
	}
	return &Submission{ID: id.String(), Action: req.Action(), IssuedAt: now, Path: path, JWS: jws}, nil
}

// submissionPath is the route a request is sent to.
func submissionPath(req protocol.Request) (string, error) {
	esc := url.PathEscape
	switch r := req.(type) {
	case protocol.PlaceFlag:
		return "/v1/flags", nil
	case protocol.ExtendFlag:
		return "/v1/flags/" + esc(r.FlagID) + "/extend", nil
	case protocol.ThawFlag:
		return "/v1/flags/" + esc(r.FlagID) + "/thaw", nil
	case protocol.LiftFlag:
		return "/v1/flags/" + esc(r.FlagID) + "/lift", nil
	case protocol.ReportSuspicion:
		return "/v1/suspicions", nil
	case protocol.RetractSuspicion:
		return "/v1/suspicions/" + esc(r.SuspicionID) + "/retract", nil
	case protocol.DenyCheck:
		return "/v1/checks/" + esc(r.CheckID) + "/denial", nil
	case protocol.ReportPayee:
		return "/v1/payees", nil
	case protocol.ContestPayee:
		return "/v1/payees/" + esc(r.PayeeID) + "/contest", nil
	case protocol.RequestRecall:
		return "/v1/recalls", nil
	case protocol.AcknowledgeRecall:
		return "/v1/recalls/" + esc(r.RecallID) + "/acknowledge", nil
	case protocol.ReportRecallOutcome:
		return "/v1/recalls/" + esc(r.RecallID) + "/outcome", nil
	case protocol.SubjectHistory:
		return "/v1/subjects/history", nil
	case protocol.RequestAccessReport:
		return "/v1/subjects/report", nil
	case protocol.OpenDispute:
		return "/v1/disputes", nil
	case protocol.AnswerDispute:
		return "/v1/disputes/" + esc(r.DisputeID) + "/answer", nil
	case protocol.AttestErasure:
		return "/v1/erasure-attestations", nil
	}
	return "", fmt.Errorf("sign: %T is not a write request", req)
}

// Send sends a signed submission, retrying with the same bytes as the
// Retry policy allows, and verifies the record in the answer
// ([Verifier.Write]). If the record does not verify, the write has
// happened but the answer cannot be trusted: the error is a [*RecordError]
// and the result holds what the hub answered, without Record.
func (c *Client) Send(ctx context.Context, s *Submission) (*WriteResult, error) {
	answer, err := c.fetch(ctx, request{method: http.MethodPost, path: s.Path, contentType: "application/jose", body: s.JWS, idempotent: true})
	if err != nil {
		return nil, err
	}
	return c.verifier.Write(ctx, s, answer)
}

// submit signs req and sends it.
func (c *Client) submit(ctx context.Context, req protocol.Request) (*WriteResult, error) {
	s, err := c.Sign(ctx, req)
	if err != nil {
		return nil, err
	}
	return c.Send(ctx, s)
}

// PlaceFlagRequest asks the hub to protect a consumer's identity.
type PlaceFlagRequest struct {
	// Subject is the consumer's token.
	Subject protocol.Token
	// Kind is protocol.FlagKindStandard (the default) or
	// protocol.FlagKindExtended, which needs a police report.
	Kind protocol.FlagKind
	// ExpiresAt is the expiry asked for; zero means the longest the hub's
	// policy allows for the kind (a year for a standard flag by default).
	ExpiresAt time.Time
	// PoliceReport is required for an extended flag.
	PoliceReport *protocol.PoliceReport
	// Consent is the consumer's consent, collected by the member after
	// strong authentication within the last 24 hours, lasting at least as
	// long as the flag. Left empty, its ID is a new UUIDv7, its Subject the
	// flag's, its Controller the member, its Purpose
	// "identity-fraud-protection" and its LegalBasis "gdpr-art-6-1-a". The
	// rest is the member's to fill: Collection, Notice, ExpiresAt,
	// Evidence.
	Consent *protocol.Consent
	// Reason is optional: why the consumer asked for protection, as one of
	// protocol.PlaceReasons (never free text). It appears in the record.
	Reason protocol.PlaceReason
}

// PlaceFlag protects the subject at every member. The answer is the new
// flag and its signed record, or, with Existing, the flag that already
// protects the subject. Refusals are [*Problem]s: [ErrInvalidConsent] for
// a consent the hub does not accept (its Errors name the field),
// [ErrValidation] for an expiry beyond the policy.
func (c *Client) PlaceFlag(ctx context.Context, req PlaceFlagRequest) (*WriteResult, error) {
	if req.Consent == nil {
		return nil, errors.New("place flag: a protection flag needs the consumer's consent (PlaceFlagRequest.Consent)")
	}
	cons := *req.Consent
	if cons.ID == "" {
		id, err := uuid.NewV7()
		if err != nil {
			return nil, err
		}
		cons.ID = id.String()
	}
	if cons.Subject == (protocol.Token{}) {
		cons.Subject = req.Subject
	}
	if cons.Controller == "" {
		cons.Controller = c.cfg.MemberID
	}
	if cons.Purpose == "" {
		cons.Purpose = "identity-fraud-protection"
	}
	if cons.LegalBasis == "" {
		cons.LegalBasis = "gdpr-art-6-1-a"
	}
	kind := req.Kind
	if kind == "" {
		kind = protocol.FlagKindStandard
	}
	return c.submit(ctx, protocol.PlaceFlag{
		Subject: req.Subject, Kind: kind, ExpiresAt: protocol.NewNumericDate(req.ExpiresAt),
		PoliceReport: req.PoliceReport, Consent: &cons, Reason: req.Reason,
	})
}

// ExtendFlagRequest asks for a flag to last longer, or to become an
// extended flag on the strength of a police report.
type ExtendFlagRequest struct {
	FlagID string
	// Kind is the flag's kind from now on; default standard. An extended
	// flag cannot become standard again.
	Kind protocol.FlagKind
	// ExpiresAt is the new expiry; zero means the longest the policy
	// allows from now.
	ExpiresAt    time.Time
	PoliceReport *protocol.PoliceReport
}

// ExtendFlag moves an active flag's expiry later, on the consumer's request
// after strong authentication.
func (c *Client) ExtendFlag(ctx context.Context, req ExtendFlagRequest) (*WriteResult, error) {
	kind := req.Kind
	if kind == "" {
		kind = protocol.FlagKindStandard
	}
	return c.submit(ctx, protocol.ExtendFlag{FlagID: req.FlagID, Kind: kind, ExpiresAt: protocol.NewNumericDate(req.ExpiresAt), PoliceReport: req.PoliceReport})
}

// ThawFlag suspends a flag's protection from from (zero: now) until until,
// so that the consumer can apply for credit; checks answer advice none
// meanwhile. The hub limits the window (72 hours by default).
func (c *Client) ThawFlag(ctx context.Context, flagID string, from, until time.Time) (*WriteResult, error) {
	return c.submit(ctx, protocol.ThawFlag{FlagID: flagID, ThawFrom: protocol.NewNumericDate(from), ThawUntil: protocol.NewNumericDate(until)})
}

// LiftFlag ends a flag on the consumer's request: it withdraws their
// consent, and every member is told to delete what it holds about the flag.
func (c *Client) LiftFlag(ctx context.Context, flagID string) (*WriteResult, error) {
	return c.LiftFlagWithReason(ctx, flagID, "")
}

// LiftFlagWithReason is [Client.LiftFlag] with a reason, one of
// protocol.LiftReasons (never free text), that appears in the record; ""
// gives none.
func (c *Client) LiftFlagWithReason(ctx context.Context, flagID string, reason protocol.LiftReason) (*WriteResult, error) {
	return c.submit(ctx, protocol.LiftFlag{FlagID: flagID, Reason: reason})
}

// ReportSuspicionRequest shares a suspicion already reported to the police.
type ReportSuspicionRequest struct {
	// Subjects are one to ten tokens of the same person.
	Subjects     []protocol.Token
	Category     protocol.SuspicionCategory
	PoliceReport *protocol.PoliceReport
}

// ReportSuspicion shares a police-reported suspicion. It needs the
// suspicion role, on a hub with a legal basis for suspicions
// ([ErrSuspicionsDisabled] otherwise).
func (c *Client) ReportSuspicion(ctx context.Context, req ReportSuspicionRequest) (*WriteResult, error) {
	return c.submit(ctx, protocol.ReportSuspicion{Subjects: req.Subjects, Category: req.Category, PoliceReport: req.PoliceReport})
}

// RetractSuspicion withdraws a suspicion the member reported.
func (c *Client) RetractSuspicion(ctx context.Context, suspicionID string, reason protocol.RetractReason) (*WriteResult, error) {
	return c.submit(ctx, protocol.RetractSuspicion{SuspicionID: suspicionID, Reason: reason})
}

// Flag reads a flag's current state: all of it for the member that placed
// it, what a check would show for another.
func (c *Client) Flag(ctx context.Context, flagID string) (*api.Flag, error) {
	var out api.FlagResponse
	if err := c.call(ctx, request{method: http.MethodGet, path: "/v1/flags/" + url.PathEscape(flagID)}, &out); err != nil {
		return nil, err
	}
	return out.Flag, nil
}
