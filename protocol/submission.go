package protocol

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// An Action names what a submission asks the hub to do.
type Action string

// The actions, one per write endpoint.
const (
	ActionPlaceFlag        Action = "flag-place"
	ActionExtendFlag       Action = "flag-extend"
	ActionThawFlag         Action = "flag-thaw"
	ActionLiftFlag         Action = "flag-lift"
	ActionReportSuspicion  Action = "suspicion-report"
	ActionRetractSuspicion Action = "suspicion-retract"
	ActionDenyCheck        Action = "check-deny"
	ActionSubjectHistory   Action = "subject-history"
	ActionAccessReport     Action = "access-report"
	ActionOpenDispute      Action = "dispute-open"
	ActionAnswerDispute    Action = "dispute-answer"
	ActionAttestErasure    Action = "erasure-attest"
)

// Actions returns every action.
func Actions() []Action {
	return []Action{ActionPlaceFlag, ActionExtendFlag, ActionThawFlag, ActionLiftFlag, ActionReportSuspicion, ActionRetractSuspicion, ActionDenyCheck,
		ActionReportPayee, ActionContestPayee, ActionRequestRecall, ActionAcknowledgeRecall, ActionRecallOutcome,
		ActionSubjectHistory, ActionAccessReport, ActionOpenDispute, ActionAnswerDispute, ActionAttestErasure}
}

// A Request is the body of a submission: one of the types below.
type Request interface {
	// Action returns what the request asks for.
	Action() Action
	// check reports the first field that is absent or invalid.
	check() error
}

// PlaceFlag asks the hub to protect the subject. The consumer's consent,
// collected by the member after strong authentication, travels with it.
type PlaceFlag struct {
	Subject Token    `json:"subject"`
	Kind    FlagKind `json:"kind"`
	// ExpiresAt is the expiry the member asks for; zero means the hub's
	// default for the kind.
	ExpiresAt NumericDate `json:"expires_at,omitempty"`
	// PoliceReport is required for an extended flag.
	PoliceReport *PoliceReport `json:"police_report,omitempty"`
	Consent      *Consent      `json:"consent"`
	// Reason is optional: why the consumer asked, as a code. The hub
	// copies it into the flag-placed record.
	Reason PlaceReason `json:"reason,omitempty"`
}

// ExtendFlag asks for a later expiry, and for kind extended on the strength
// of a police report.
type ExtendFlag struct {
	FlagID       string        `json:"flag_id"`
	Kind         FlagKind      `json:"kind"`
	ExpiresAt    NumericDate   `json:"expires_at,omitempty"`
	PoliceReport *PoliceReport `json:"police_report,omitempty"`
}

// ThawFlag asks for protection to be suspended from ThawFrom (zero: now)
// until ThawUntil.
type ThawFlag struct {
	FlagID    string      `json:"flag_id"`
	ThawFrom  NumericDate `json:"thaw_from,omitempty"`
	ThawUntil NumericDate `json:"thaw_until"`
}

// LiftFlag withdraws the consumer's consent and ends the flag. Reason is
// optional; the hub copies it into the flag-lifted record.
type LiftFlag struct {
	FlagID string     `json:"flag_id"`
	Reason LiftReason `json:"reason,omitempty"`
}

// ReportSuspicion shares a suspicion already reported to the police, about
// one to [MaxAliases] identifiers of the same person.
type ReportSuspicion struct {
	Subjects     []Token           `json:"subjects"`
	Category     SuspicionCategory `json:"category"`
	PoliceReport *PoliceReport     `json:"police_report"`
}

// RetractSuspicion withdraws a suspicion the member reported.
type RetractSuspicion struct {
	SuspicionID string        `json:"suspicion_id"`
	Reason      RetractReason `json:"reason"`
}

// DenyCheck says, for the consumer, that a check of their identity was
// not theirs ("not me"). Only the member that placed the flag may send
// it, naming the check and the flag of a subject-checked notice it
// received, with its statement of how the consumer authenticated.
type DenyCheck struct {
	CheckID      string        `json:"check_id"`
	FlagID       string        `json:"flag_id"`
	ConsumerAuth *ConsumerAuth `json:"consumer_auth"`
}

func (DenyCheck) Action() Action        { return ActionDenyCheck }
func (PlaceFlag) Action() Action        { return ActionPlaceFlag }
func (ExtendFlag) Action() Action       { return ActionExtendFlag }
func (ThawFlag) Action() Action         { return ActionThawFlag }
func (LiftFlag) Action() Action         { return ActionLiftFlag }
func (ReportSuspicion) Action() Action  { return ActionReportSuspicion }
func (RetractSuspicion) Action() Action { return ActionRetractSuspicion }

func checkToken(claim string, t Token) error {
	if t.Type == "" && t.Epoch == 0 {
		return missingClaim(claim)
	}
	return nil
}

func (r PlaceFlag) check() error {
	if r.Consent == nil {
		return missingClaim("consent")
	}
	if err := first(checkToken("subject", r.Subject), checkKind(r.Kind, r.PoliceReport), within("consent.", r.Consent.check()),
		checkOptionalCode("reason", r.Reason, PlaceReasons())); err != nil {
		return err
	}
	if r.Consent.Subject != r.Subject {
		return invalidClaim("consent.subject", "is not the flag's subject")
	}
	return nil
}

func (r ExtendFlag) check() error {
	return first(checkID("flag_id", r.FlagID), checkKind(r.Kind, r.PoliceReport))
}

func (r ThawFlag) check() error {
	if err := first(checkID("flag_id", r.FlagID), checkTime("thaw_until", r.ThawUntil)); err != nil {
		return err
	}
	if r.ThawFrom != 0 && r.ThawUntil <= r.ThawFrom {
		return invalidClaim("thaw_until", "must be after thaw_from")
	}
	return nil
}

func (r LiftFlag) check() error {
	return first(checkID("flag_id", r.FlagID), checkOptionalCode("reason", r.Reason, LiftReasons()))
}

func (r ReportSuspicion) check() error {
	if len(r.Subjects) == 0 {
		return missingClaim("subjects")
	}
	if len(r.Subjects) > MaxAliases {
		return invalidClaim("subjects", "%d tokens, at most %d", len(r.Subjects), MaxAliases)
	}
	seen := make(map[Token]bool, len(r.Subjects))
	for i, t := range r.Subjects {
		if seen[t] {
			return invalidClaim(fmt.Sprintf("subjects[%d]", i), "repeats an earlier token")
		}
		seen[t] = true
	}
	return first(checkCategory(r.Category), r.PoliceReport.check())
}

func (r DenyCheck) check() error {
	return first(checkID("check_id", r.CheckID), checkID("flag_id", r.FlagID), r.ConsumerAuth.Check())
}

func (r RetractSuspicion) check() error {
	return first(checkID("suspicion_id", r.SuspicionID), checkReason(r.Reason))
}

// A Consent is the record of a consumer's consent to a protection flag,
// with fields after ISO/IEC TS 27560: who it is about (Subject), who
// collected it (Controller), for what (Purpose) and on what legal basis,
// how and when it was collected, what notice the consumer was shown, when it
// lapses, and the evidence of strong authentication. It travels inside the
// member's signed place-flag submission; the hub keeps it until the flag is
// lifted, and publishes only its ID (the flag's consent_ref).
type Consent struct {
	ID         string            `json:"id"`
	Subject    Token             `json:"subject"`
	Controller string            `json:"controller"`
	Purpose    string            `json:"purpose"`
	LegalBasis string            `json:"legal_basis"`
	Collection ConsentCollection `json:"collection"`
	// Notice identifies the privacy notice shown: a URL or a version id.
	Notice    string          `json:"notice"`
	ExpiresAt NumericDate     `json:"expires_at"`
	Evidence  ConsentEvidence `json:"evidence"`
}

// ConsentCollection says how and when consent was collected. Method is
// one of "online-banking", "mobile-app", "branch", "telephone", "web".
type ConsentCollection struct {
	Method string      `json:"method"`
	At     NumericDate `json:"at"`
}

// ConsentEvidence is how the member established who gave consent.
// AuthenticationMethod names the e-identification used (for example
// "bankid", "freja-eid"); AssuranceLevel, if given, its level ("loa3");
// Reference the member's own reference to the authentication transaction,
// so an auditor can follow it to the member's records.
type ConsentEvidence struct {
	AuthenticationMethod string `json:"authentication_method"`
	AssuranceLevel       string `json:"assurance_level,omitempty"`
	Reference            string `json:"reference"`
}

// check checks that every field is present and of the right shape. Whether
// the values are acceptable (purpose, legal basis, collection time) is
// policy, and belongs to package consent.
func (c *Consent) check() error {
	str := func(claim, v string, max int) error {
		if v == "" {
			return missingClaim(claim)
		}
		if len(v) > max {
			return invalidClaim(claim, "at most %d bytes", max)
		}
		return nil
	}
	return first(
		checkID("id", c.ID),
		checkToken("subject", c.Subject),
		checkID("controller", c.Controller),
		str("purpose", c.Purpose, 100),
		str("legal_basis", c.LegalBasis, 100),
		str("collection.method", c.Collection.Method, 50),
		checkTime("collection.at", c.Collection.At),
		str("notice", c.Notice, 500),
		checkTime("expires_at", c.ExpiresAt),
		str("evidence.authentication_method", c.Evidence.AuthenticationMethod, 50),
		str("evidence.reference", c.Evidence.Reference, 200),
	)
}

// A Submission is a member's signed write: a compact JWS with
// "typ":"sparr-submission+jwt", signed with one of the member's registered
// keys, whose protected header carries "kid" and "iss" (the member id). Its
// ID ("jti") is the idempotency key: the hub answers a repeated submission
// with the same result, and refuses a different one that reuses the ID.
type Submission struct {
	Issuer   string    // "iss": the member id
	Audience string    // "aud": the hub's issuer URL
	IssuedAt time.Time // "iat"
	ID       string    // "jti"
	KeyID    string    // the "kid" it was signed with (set by VerifySubmission)
	Request  Request   // "action" and "request"
}

type submissionClaims struct {
	Iss     string          `json:"iss"`
	Aud     string          `json:"aud"`
	Iat     NumericDate     `json:"iat"`
	Jti     string          `json:"jti"`
	Action  Action          `json:"action"`
	Request json.RawMessage `json:"request"`
}

// SignSubmission checks s and signs it with the member's key.
func SignSubmission(s *Submission, key *SigningKey) ([]byte, error) {
	if s.Request == nil {
		return nil, fmt.Errorf("sign submission: %w", missingClaim("request"))
	}
	if err := first(checkID("iss", s.Issuer), checkID("jti", s.ID), within("request.", s.Request.check())); err != nil {
		return nil, fmt.Errorf("sign submission: %w", err)
	}
	if s.Audience == "" || s.IssuedAt.IsZero() {
		return nil, fmt.Errorf("sign submission: %w", missingClaim("aud and iat"))
	}
	req, err := json.Marshal(s.Request)
	if err != nil {
		return nil, fmt.Errorf("sign submission: %w", err)
	}
	body, err := json.Marshal(submissionClaims{
		Iss: s.Issuer, Aud: s.Audience, Iat: NewNumericDate(s.IssuedAt), Jti: s.ID,
		Action: s.Request.Action(), Request: req,
	})
	if err != nil {
		return nil, fmt.Errorf("sign submission: %w", err)
	}
	return sign(key, TypeSubmission, s.Issuer, body)
}

// SubmissionOptions are what the hub checks a submission's claims against.
type SubmissionOptions struct {
	Audience string    // the hub's issuer URL; required
	Now      time.Time // the hub's clock; required
	// Skew is how far ahead of the hub's clock "iat" may be: 0 means
	// [DefaultSkew], [NoSkew] not at all; any other negative value, or one
	// over [MaxSkew], is refused.
	Skew   time.Duration
	MaxAge time.Duration // oldest "iat" accepted; 0 means DefaultSubmissionMaxAge
}

// ErrInvalidSkew is returned by [CheckSkew], [VerifyBearer] and
// [VerifySubmission] when the options' Skew is out of range: a mistake in
// the verifier's configuration, not in what it verifies.
var ErrInvalidSkew = errors.New("invalid clock skew")

const (
	// DefaultSkew is the clock difference tolerated between member and hub
	// when the options leave Skew zero.
	DefaultSkew = 30 * time.Second
	// NoSkew, as the Skew of [BearerOptions] or [SubmissionOptions],
	// tolerates no clock difference at all.
	NoSkew time.Duration = -1
	// MaxSkew is the most clock difference a verifier may tolerate: more
	// would let a bearer token live several times [MaxBearerLifetime].
	MaxSkew = MaxBearerLifetime
	// DefaultSubmissionMaxAge bounds how long after signing a submission is
	// accepted, so that a member can retry a write across an outage (the
	// retry is answered from the idempotency record) without signed
	// submissions staying valid forever.
	DefaultSubmissionMaxAge = 24 * time.Hour
)

// CheckSkew reports whether d may be the Skew of [BearerOptions] or
// [SubmissionOptions]: 0 (for [DefaultSkew]), [NoSkew], or a duration up to
// [MaxSkew]. Any other value is refused with an error wrapping
// [ErrInvalidSkew] that says what to give instead.
func CheckSkew(d time.Duration) error {
	switch {
	case d == NoSkew:
		return nil
	case d < 0:
		return fmt.Errorf("%w: %s is negative; use NoSkew for no tolerance, or 0 for the default %s", ErrInvalidSkew, d, DefaultSkew)
	case d > MaxSkew:
		return fmt.Errorf("%w: %s is more than the %s a verifier may tolerate", ErrInvalidSkew, d, MaxSkew)
	}
	return nil
}

// VerifySubmission verifies a member's submission and only then decodes it
// strictly: unknown fields, a missing claim or field, an "aud" other than
// the hub, or an "iss" claim that differs from the header are refused.
// keys resolves the header's member and "kid" to a registered key. Errors
// about the submission are [*VerificationError]s; an error from keys that
// does not wrap [ErrUnknownKey] is returned as it is.
func VerifySubmission(ctx context.Context, jws []byte, keys KeyResolver, opts SubmissionOptions) (*Submission, error) {
	const object = "submission"
	skew, err := skewOf(opts.Skew)
	if err != nil {
		return nil, fmt.Errorf("verify %s: %w", object, err)
	}
	h, payload, err := verifyMemberSigned(ctx, object, TypeSubmission, jws, keys)
	if err != nil {
		return nil, err
	}
	var c submissionClaims
	if err := decodeStrict(payload, &c); err != nil {
		return nil, claimError(object, h, err)
	}
	maxAge := opts.MaxAge
	if maxAge == 0 {
		maxAge = DefaultSubmissionMaxAge
	}
	iat := c.Iat.Time()
	issued := issuedClaims{iss: c.Iss, aud: c.Aud, iat: c.Iat}
	if err := issued.check(object, h, opts.Audience, opts.Now, skew, maxAge, "the member's clock", "sign a new submission with a new jti"); err != nil {
		return nil, err
	}
	if err := checkID("jti", c.Jti); err != nil {
		return nil, claimError(object, h, err)
	}
	if c.Request == nil {
		return nil, claimError(object, h, missingClaim("request"))
	}
	req, err := decodeRequest(c.Action, c.Request)
	if err != nil {
		return nil, claimError(object, h, err)
	}
	if err := req.check(); err != nil {
		return nil, claimError(object, h, within("request.", err))
	}
	return &Submission{Issuer: c.Iss, Audience: c.Aud, IssuedAt: iat, ID: c.Jti, KeyID: h.Kid, Request: req}, nil
}

// skewOf is the tolerance a Skew option stands for, once [CheckSkew]
// accepts it.
func skewOf(d time.Duration) (time.Duration, error) {
	if err := CheckSkew(d); err != nil {
		return 0, err
	}
	switch d {
	case 0:
		return DefaultSkew, nil
	case NoSkew:
		return 0, nil
	}
	return d, nil
}

// verifyMemberSigned is the part of verification that member-signed objects
// share: header, key resolution by the header's "iss" and "kid", signature.
func verifyMemberSigned(ctx context.Context, object, typ string, jws []byte, keys KeyResolver) (jwsHeader, []byte, error) {
	h, verr := parseHeader(object, typ, jws)
	if verr != nil {
		return h, nil, verr
	}
	if h.Iss == "" {
		return h, nil, &VerificationError{Object: object, Err: ErrMalformed, KeyID: h.Kid, Algorithm: h.Alg,
			Detail: "protected header has no \"iss\"; put the member id there as well as in the claims (RFC 7519, section 5.3)"}
	}
	key, err := keys.ResolveKey(ctx, h.Iss, h.Kid)
	if errors.Is(err, ErrUnknownKey) {
		return h, nil, &VerificationError{Object: object, Err: ErrUnknownKey, KeyID: h.Kid, Algorithm: h.Alg,
			Detail: fmt.Sprintf("member %q has no registered key with this kid", h.Iss)}
	}
	if err != nil {
		return h, nil, fmt.Errorf("%s: resolve key %q of member %q: %w", object, h.Kid, h.Iss, err)
	}
	payload, verr := verifyWith(object, h, jws, key)
	if verr != nil {
		return h, nil, verr
	}
	return h, payload, nil
}

func decodeRequest(a Action, raw json.RawMessage) (Request, error) {
	switch a {
	case ActionPlaceFlag:
		return decodeRequestAs[PlaceFlag](raw)
	case ActionExtendFlag:
		return decodeRequestAs[ExtendFlag](raw)
	case ActionThawFlag:
		return decodeRequestAs[ThawFlag](raw)
	case ActionLiftFlag:
		return decodeRequestAs[LiftFlag](raw)
	case ActionReportSuspicion:
		return decodeRequestAs[ReportSuspicion](raw)
	case ActionRetractSuspicion:
		return decodeRequestAs[RetractSuspicion](raw)
	case ActionDenyCheck:
		return decodeRequestAs[DenyCheck](raw)
	case ActionReportPayee:
		return decodeRequestAs[ReportPayee](raw)
	case ActionContestPayee:
		return decodeRequestAs[ContestPayee](raw)
	case ActionRequestRecall:
		return decodeRequestAs[RequestRecall](raw)
	case ActionAcknowledgeRecall:
		return decodeRequestAs[AcknowledgeRecall](raw)
	case ActionRecallOutcome:
		return decodeRequestAs[ReportRecallOutcome](raw)
	case ActionSubjectHistory:
		return decodeRequestAs[SubjectHistory](raw)
	case ActionAccessReport:
		return decodeRequestAs[RequestAccessReport](raw)
	case ActionOpenDispute:
		return decodeRequestAs[OpenDispute](raw)
	case ActionAnswerDispute:
		return decodeRequestAs[AnswerDispute](raw)
	case ActionAttestErasure:
		return decodeRequestAs[AttestErasure](raw)
	case "":
		return nil, missingClaim("action")
	}
	return nil, invalidClaim("action", "%q is not an action", a)
}

func decodeRequestAs[T Request](raw json.RawMessage) (Request, error) {
	var v T
	if err := decodeStrict(raw, &v); err != nil {
		return nil, fmt.Errorf("request: %w", err)
	}
	return v, nil
}

// issuedClaims are the claims every member-signed object carries.
type issuedClaims struct {
	iss, aud string
	iat      NumericDate
}

// check holds the claims to the protected header h and the hub: "iss" as
// h says, "aud" the hub's audience, "iat" neither more than skew ahead of
// now nor older than maxAge. clock names whose clock to check when "iat"
// is ahead; renew says what to do when it is too old.
func (c issuedClaims) check(object string, h jwsHeader, audience string, now time.Time, skew, maxAge time.Duration, clock, renew string) error {
	iat := c.iat.Time()
	switch {
	case c.iss != h.Iss:
		return claimError(object, h, invalidClaim("iss", "is %q but the protected header says %q", c.iss, h.Iss))
	case c.aud == "":
		return claimError(object, h, missingClaim("aud"))
	case c.aud != audience:
		return claimError(object, h, invalidClaim("aud", "is %q, want this hub, %q", c.aud, audience))
	case c.iat == 0:
		return claimError(object, h, missingClaim("iat"))
	case iat.After(now.Add(skew)):
		return &VerificationError{Object: object, Err: ErrNotYetValid, KeyID: h.Kid, Algorithm: h.Alg, Claim: "iat",
			Detail: fmt.Sprintf("issued %s, %s ahead of the hub's clock; check %s", c.iat, iat.Sub(now).Round(time.Second), clock)}
	case now.Sub(iat) > maxAge:
		return &VerificationError{Object: object, Err: ErrExpired, KeyID: h.Kid, Algorithm: h.Alg, Claim: "iat",
			Detail: fmt.Sprintf("issued %s, more than %s ago; %s", c.iat, maxAge, renew)}
	}
	return nil
}
