package protocol

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"time"
)

// An EventType is the URN that keys a record's one "events" member
// (RFC 8417, section 2.2).
type EventType string

// The event types. A receiver that meets a type it does not know must
// refuse the record rather than guess: [VerifyRecord] returns
// [ErrInvalidClaim] for it.
const (
	EventFlagPlaced         EventType = "urn:sparr:event:flag-placed"
	EventFlagExtended       EventType = "urn:sparr:event:flag-extended"
	EventFlagThawed         EventType = "urn:sparr:event:flag-thawed"
	EventFlagLifted         EventType = "urn:sparr:event:flag-lifted"
	EventFlagExpired        EventType = "urn:sparr:event:flag-expired"
	EventFlagExpiring       EventType = "urn:sparr:event:flag-expiring"
	EventSuspicionReported  EventType = "urn:sparr:event:suspicion-reported"
	EventSuspicionRetracted EventType = "urn:sparr:event:suspicion-retracted"
	EventSuspicionExpired   EventType = "urn:sparr:event:suspicion-expired"
	EventSubjectErased      EventType = "urn:sparr:event:subject-erased"
	EventVerification       EventType = "urn:sparr:event:verification"
	EventSubjectChecked     EventType = "urn:sparr:event:subject-checked"
	EventCheckDenied        EventType = "urn:sparr:event:check-denied"
	// The dispute events go to the two members of a dispute alone; an
	// access report is never delivered (see [AccessReport]).
	EventDisputeOpened       EventType = "urn:sparr:event:dispute-opened"
	EventDisputeAcknowledged EventType = "urn:sparr:event:dispute-acknowledged"
	EventDisputeResolved     EventType = "urn:sparr:event:dispute-resolved"
	EventDisputeLapsed       EventType = "urn:sparr:event:dispute-lapsed"
	EventAccessReport        EventType = "urn:sparr:event:access-report"
	// EventStreamVerification is the OpenID Shared Signals Framework's
	// verification event: the hub sends it on an SSF stream, with the
	// stream's id as the subject (see [StreamSubject]).
	EventStreamVerification EventType = "https://schemas.openid.net/secevent/ssf/event-type/verification"
)

// EventTypes returns every event type, in the order above.
func EventTypes() []EventType {
	return []EventType{
		EventFlagPlaced, EventFlagExtended, EventFlagThawed, EventFlagLifted, EventFlagExpired, EventFlagExpiring,
		EventSuspicionReported, EventSuspicionRetracted, EventSuspicionExpired,
		EventSubjectErased, EventVerification, EventStreamVerification,
		EventSubjectChecked, EventCheckDenied, EventPayeeReported, EventPayeeExpired,
		EventRecallRequested, EventRecallAcknowledged, EventRecallOutcome,
		EventDisputeOpened, EventDisputeAcknowledged, EventDisputeResolved, EventDisputeLapsed, EventAccessReport,
	}
}

// Short returns the part after "urn:sparr:event:", as docs and logs use.
func (t EventType) Short() string {
	const prefix = "urn:sparr:event:"
	if len(t) > len(prefix) && string(t[:len(prefix)]) == prefix {
		return string(t[len(prefix):])
	}
	return string(t)
}

// ParseEventType accepts a full URN or its short name ("flag-placed").
func ParseEventType(s string) (EventType, error) {
	for _, t := range EventTypes() {
		if s == string(t) || s == t.Short() {
			return t, nil
		}
	}
	return "", fmt.Errorf("unknown event type %q", s)
}

// An Event is the payload of a record: one of the types below.
type Event interface {
	// EventType returns the URN the event is keyed by.
	EventType() EventType
	// check reports the first field that is absent or invalid, as a
	// *claimProblem naming it relative to the event.
	check() error
}

// A FlagKind is the kind of protection flag.
type FlagKind string

const (
	// FlagKindStandard is placed on the consumer's word after strong
	// authentication; by default it lasts one year.
	FlagKindStandard FlagKind = "standard"
	// FlagKindExtended rests on a police report and lasts longer (by default up
	// to five years).
	FlagKindExtended FlagKind = "extended"
)

// A PlaceReason says why a consumer asked for a protection flag. It is
// optional, and a code from the fixed set below, never free text: records
// reach every member, and free text invites personal data into them.
type PlaceReason string

// The placement reasons.
const (
	// PlaceConsumerRequest: the consumer asked for protection as a
	// precaution, naming no incident.
	PlaceConsumerRequest PlaceReason = "consumer-request"
	// PlaceIdentityTheft: the consumer's identity has been, or is believed
	// to have been, misused.
	PlaceIdentityTheft PlaceReason = "identity-theft"
	// PlaceLostIDDocument: an identity document was lost or stolen.
	PlaceLostIDDocument PlaceReason = "lost-id-document"
	// PlaceOther: none of the above.
	PlaceOther PlaceReason = "other"
)

// PlaceReasons returns every placement reason.
func PlaceReasons() []PlaceReason {
	return []PlaceReason{PlaceConsumerRequest, PlaceIdentityTheft, PlaceLostIDDocument, PlaceOther}
}

// A LiftReason says why a protection flag was lifted. Like [PlaceReason]
// it is optional and a code from a fixed set, never free text.
type LiftReason string

// The lift reasons.
const (
	// LiftConsumerRequest: the consumer withdrew consent.
	LiftConsumerRequest LiftReason = "consumer-request"
	// LiftDeceased: the consumer has died, and the flag is lifted on the
	// strength of the population register or at the estate's request.
	LiftDeceased LiftReason = "deceased"
	// LiftOther: none of the above.
	LiftOther LiftReason = "other"
)

// LiftReasons returns every lift reason.
func LiftReasons() []LiftReason {
	return []LiftReason{LiftConsumerRequest, LiftDeceased, LiftOther}
}

// checkOptionalCode refuses a value of claim that is set but not one of
// codes. The value itself is not repeated in the error: a code field is
// where free text, and with it personal data, would be smuggled.
func checkOptionalCode[T ~string](claim string, v T, codes []T) error {
	if v == "" {
		return nil
	}
	names := make([]string, len(codes))
	for i, c := range codes {
		if v == c {
			return nil
		}
		names[i] = string(c)
	}
	return invalidClaim(claim, "not a known code (want one of %s)", strings.Join(names, ", "))
}

// A PoliceReport identifies a report already made to the police: the
// authority, its case number, and the date of the report (YYYY-MM-DD).
type PoliceReport struct {
	Authority  string `json:"authority"`
	CaseNumber string `json:"case_number"`
	Date       string `json:"date"`
}

func (p *PoliceReport) check() error {
	switch {
	case p == nil:
		return missingClaim("police_report")
	case p.Authority == "":
		return missingClaim("police_report.authority")
	case p.CaseNumber == "":
		return missingClaim("police_report.case_number")
	case p.Date == "":
		return missingClaim("police_report.date")
	case len(p.Authority) > 200:
		return invalidClaim("police_report.authority", "at most 200 bytes")
	case len(p.CaseNumber) > 100:
		return invalidClaim("police_report.case_number", "at most 100 bytes")
	}
	if _, err := time.Parse(time.DateOnly, p.Date); err != nil {
		return invalidClaim("police_report.date", "want a date YYYY-MM-DD")
	}
	return nil
}

// A SuspicionCategory classifies a fraud suspicion.
type SuspicionCategory string

// The suspicion categories.
const (
	CategoryIdentityTheft     SuspicionCategory = "identity-theft"
	CategoryAccountTakeover   SuspicionCategory = "account-takeover"
	CategoryApplicationFraud  SuspicionCategory = "application-fraud"
	CategoryPaymentFraud      SuspicionCategory = "payment-fraud"
	CategoryMoneyMule         SuspicionCategory = "money-mule"
	CategoryDocumentForgery   SuspicionCategory = "document-forgery"
	CategorySocialEngineering SuspicionCategory = "social-engineering"
	CategoryOther             SuspicionCategory = "other"
)

// SuspicionCategories returns every category.
func SuspicionCategories() []SuspicionCategory {
	return []SuspicionCategory{
		CategoryIdentityTheft, CategoryAccountTakeover, CategoryApplicationFraud, CategoryPaymentFraud,
		CategoryMoneyMule, CategoryDocumentForgery, CategorySocialEngineering, CategoryOther,
	}
}

func (c SuspicionCategory) valid() bool {
	for _, k := range SuspicionCategories() {
		if c == k {
			return true
		}
	}
	return false
}

// idPattern is what flag, suspicion and consent ids, member ids and jti
// values may look like: short, printable, and safe in URLs and log lines.
var idPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._~-]{0,127}$`)

func checkID(claim, v string) error {
	if v == "" {
		return missingClaim(claim)
	}
	if !idPattern.MatchString(v) {
		return invalidClaim(claim, "want 1 to 128 characters of A-Z a-z 0-9 . _ ~ - starting with a letter or digit")
	}
	return nil
}

func checkTime(claim string, d NumericDate) error {
	if d == 0 {
		return missingClaim(claim)
	}
	return nil
}

// first returns the first error of errs: the checks of an object, in the
// order its fields are documented.
func first(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// A claimProblem is a failed claim check: which claim, which of
// [ErrMissingClaim] and [ErrInvalidClaim], and what exactly was wrong.
type claimProblem struct {
	claim  string
	err    error
	detail string
}

func (p *claimProblem) Error() string {
	if p.detail == "" {
		return p.err.Error() + " " + p.claim
	}
	return p.err.Error() + " " + p.claim + ": " + p.detail
}

func (p *claimProblem) Unwrap() error { return p.err }

func missingClaim(claim string) error {
	return &claimProblem{claim: claim, err: ErrMissingClaim}
}

func invalidClaim(claim, format string, args ...any) error {
	return &claimProblem{claim: claim, err: ErrInvalidClaim, detail: fmt.Sprintf(format, args...)}
}

// within prefixes the claim of a claimProblem with a path, as in
// "events.flag-placed." + "kind".
func within(prefix string, err error) error {
	if p, ok := err.(*claimProblem); ok {
		return &claimProblem{claim: prefix + p.claim, err: p.err, detail: p.detail}
	}
	return err
}

// FlagPlaced: a consumer's identity is protected. Origin is the member that
// collected the consent; ConsentRef names that consent record, which stays
// with the hub. Reason, if given, is the member's [PlaceReason].
type FlagPlaced struct {
	FlagID       string        `json:"flag_id"`
	Kind         FlagKind      `json:"kind"`
	Origin       string        `json:"origin"`
	ExpiresAt    NumericDate   `json:"expires_at"`
	ConsentRef   string        `json:"consent_ref"`
	PoliceReport *PoliceReport `json:"police_report,omitempty"`
	Reason       PlaceReason   `json:"reason,omitempty"`
}

// FlagExtended: a flag's expiry moved later, and its kind possibly to
// extended on the strength of a police report.
type FlagExtended struct {
	FlagID       string        `json:"flag_id"`
	Kind         FlagKind      `json:"kind"`
	Origin       string        `json:"origin"`
	ExpiresAt    NumericDate   `json:"expires_at"`
	PoliceReport *PoliceReport `json:"police_report,omitempty"`
}

// FlagThawed: the consumer lifted protection for a window, to apply for
// credit; checks in [ThawedFrom, ThawedUntil) answer that the flag is thawed.
type FlagThawed struct {
	FlagID      string      `json:"flag_id"`
	Origin      string      `json:"origin"`
	ThawedFrom  NumericDate `json:"thawed_from"`
	ThawedUntil NumericDate `json:"thawed_until"`
}

// FlagLifted: the consumer withdrew consent. Members must delete what they
// hold about the flag. Reason, if given, is the member's [LiftReason].
type FlagLifted struct {
	FlagID string     `json:"flag_id"`
	Origin string     `json:"origin"`
	Reason LiftReason `json:"reason,omitempty"`
}

// FlagExpired: a flag reached its expiry.
type FlagExpired struct {
	FlagID    string      `json:"flag_id"`
	ExpiredAt NumericDate `json:"expired_at"`
}

// FlagExpiring: a reminder, sent only to the member that placed the flag,
// that it expires at ExpiresAt unless extended, so the member can tell the
// consumer.
type FlagExpiring struct {
	FlagID    string      `json:"flag_id"`
	ExpiresAt NumericDate `json:"expires_at"`
}

// SuspicionReported: a member reports a fraud suspicion it has already
// reported to the police. Its record, with the police report, goes to the
// reporting member only, and to a member that asks for the suspicion's
// details; other members learn of the suspicion only by an online check,
// which reveals its category and count. PoliceReport is optional in the
// format because earlier versions also signed a "hit" record without it,
// for every checking member, which the hub no longer serves.
type SuspicionReported struct {
	SuspicionID  string            `json:"suspicion_id"`
	Origin       string            `json:"origin"`
	Category     SuspicionCategory `json:"category"`
	PoliceReport *PoliceReport     `json:"police_report,omitempty"`
	ExpiresAt    NumericDate       `json:"expires_at"`
}

// A RetractReason says why a suspicion was withdrawn.
type RetractReason string

// The retraction reasons.
const (
	RetractReportedInError RetractReason = "reported-in-error"
	RetractCaseClosed      RetractReason = "case-closed"
	RetractOther           RetractReason = "other"
)

func (r RetractReason) valid() bool {
	return r == RetractReportedInError || r == RetractCaseClosed || r == RetractOther
}

// SuspicionRetracted: the reporting member withdrew a suspicion.
type SuspicionRetracted struct {
	SuspicionID string        `json:"suspicion_id"`
	Origin      string        `json:"origin"`
	Reason      RetractReason `json:"reason"`
}

// SuspicionExpired: a suspicion reached its retention limit.
type SuspicionExpired struct {
	SuspicionID string      `json:"suspicion_id"`
	ExpiredAt   NumericDate `json:"expired_at"`
}

// SubjectErased: everything about the subject is to be erased, by the hub
// and by every member, under the stated legal basis (for example
// "gdpr-art-17").
type SubjectErased struct {
	Origin     string `json:"origin"`
	LegalBasis string `json:"legal_basis"`
}

// Verification: a test event the hub sends to a newly registered endpoint,
// echoing State; it has no subject.
type Verification struct {
	State string `json:"state"`
}

// StreamVerification: the OpenID Shared Signals Framework's verification
// event, sent on an SSF stream when it is created and whenever its
// receiver asks for one, echoing the State it gave (none when the hub
// sends it on its own). Its subject is the stream (see [StreamSubject]).
type StreamVerification struct {
	State string `json:"state,omitempty"`
}

// SubjectChecked: an access notice, sent only to the member that placed
// the flag on the subject (Origin), when another member checks the
// subject: who checked (Checker), for what purpose, when, and the check's
// id, which a denial names. Replica is set for a check the checker's own
// replica answered and reported. It never carries the checker's customer
// data: only what the hub itself knows of the check.
type SubjectChecked struct {
	CheckID   string      `json:"check_id"`
	FlagID    string      `json:"flag_id"`
	Checker   string      `json:"checker"`
	Purpose   string      `json:"purpose"`
	CheckedAt NumericDate `json:"checked_at"`
	Replica   bool        `json:"replica,omitempty"`
}

// CheckDenied: the consumer said "not me" to a check, through the member
// that placed their flag (Origin). It goes only to the member that made
// the check, with Origin's statement of how the consumer authenticated.
type CheckDenied struct {
	CheckID      string        `json:"check_id"`
	FlagID       string        `json:"flag_id"`
	Origin       string        `json:"origin"`
	CheckedAt    NumericDate   `json:"checked_at"`
	DeniedAt     NumericDate   `json:"denied_at"`
	ConsumerAuth *ConsumerAuth `json:"consumer_auth"`
}

// StreamSubject is the subject of a [StreamVerification]: the stream's id,
// as an opaque identifier.
func StreamSubject(streamID string) *SubjectID { return &SubjectID{Format: "opaque", ID: streamID} }

func (FlagPlaced) EventType() EventType         { return EventFlagPlaced }
func (FlagExtended) EventType() EventType       { return EventFlagExtended }
func (FlagThawed) EventType() EventType         { return EventFlagThawed }
func (FlagLifted) EventType() EventType         { return EventFlagLifted }
func (FlagExpired) EventType() EventType        { return EventFlagExpired }
func (FlagExpiring) EventType() EventType       { return EventFlagExpiring }
func (SuspicionReported) EventType() EventType  { return EventSuspicionReported }
func (SuspicionRetracted) EventType() EventType { return EventSuspicionRetracted }
func (SuspicionExpired) EventType() EventType   { return EventSuspicionExpired }
func (SubjectErased) EventType() EventType      { return EventSubjectErased }
func (Verification) EventType() EventType       { return EventVerification }
func (StreamVerification) EventType() EventType { return EventStreamVerification }
func (SubjectChecked) EventType() EventType     { return EventSubjectChecked }
func (CheckDenied) EventType() EventType        { return EventCheckDenied }

func (e SubjectChecked) check() error {
	return first(
		checkID("check_id", e.CheckID),
		checkID("flag_id", e.FlagID),
		checkID("checker", e.Checker),
		checkID("purpose", e.Purpose),
		checkTime("checked_at", e.CheckedAt),
	)
}

func (e CheckDenied) check() error {
	return first(
		checkID("check_id", e.CheckID),
		checkID("flag_id", e.FlagID),
		checkID("origin", e.Origin),
		checkTime("checked_at", e.CheckedAt),
		checkTime("denied_at", e.DeniedAt),
		e.ConsumerAuth.Check(),
	)
}

func checkKind(k FlagKind, report *PoliceReport) error {
	switch k {
	case "":
		return missingClaim("kind")
	case FlagKindStandard:
		return nil
	case FlagKindExtended:
		return report.check()
	}
	return invalidClaim("kind", "%q (want %q or %q)", k, FlagKindStandard, FlagKindExtended)
}

func (e FlagPlaced) check() error {
	return first(
		checkID("flag_id", e.FlagID),
		checkKind(e.Kind, e.PoliceReport),
		checkID("origin", e.Origin),
		checkTime("expires_at", e.ExpiresAt),
		checkID("consent_ref", e.ConsentRef),
		checkOptionalCode("reason", e.Reason, PlaceReasons()),
	)
}

func (e FlagExtended) check() error {
	return first(
		checkID("flag_id", e.FlagID),
		checkKind(e.Kind, e.PoliceReport),
		checkID("origin", e.Origin),
		checkTime("expires_at", e.ExpiresAt),
	)
}

func (e FlagThawed) check() error {
	return first(
		checkID("flag_id", e.FlagID),
		checkID("origin", e.Origin),
		checkTime("thawed_from", e.ThawedFrom),
		checkTime("thawed_until", e.ThawedUntil),
		thawOrder(e.ThawedFrom, e.ThawedUntil),
	)
}

func (e FlagLifted) check() error {
	return first(
		checkID("flag_id", e.FlagID),
		checkID("origin", e.Origin),
		checkOptionalCode("reason", e.Reason, LiftReasons()),
	)
}

func (e FlagExpired) check() error {
	return first(
		checkID("flag_id", e.FlagID),
		checkTime("expired_at", e.ExpiredAt),
	)
}

func (e FlagExpiring) check() error {
	return first(checkID("flag_id", e.FlagID), checkTime("expires_at", e.ExpiresAt))
}

func (e SuspicionReported) check() error {
	return first(
		checkID("suspicion_id", e.SuspicionID),
		checkID("origin", e.Origin),
		checkCategory(e.Category),
		optionalReport(e.PoliceReport),
		checkTime("expires_at", e.ExpiresAt),
	)
}

func thawOrder(from, until NumericDate) error {
	if from != 0 && until != 0 && until <= from {
		return invalidClaim("thawed_until", "must be after thawed_from")
	}
	return nil
}

func optionalReport(r *PoliceReport) error {
	if r == nil {
		return nil
	}
	return r.check()
}

func checkCategory(c SuspicionCategory) error {
	if c == "" {
		return missingClaim("category")
	}
	if !c.valid() {
		return invalidClaim("category", "%q is not a suspicion category", c)
	}
	return nil
}

func checkReason(r RetractReason) error {
	if r == "" {
		return missingClaim("reason")
	}
	if !r.valid() {
		return invalidClaim("reason", "%q (want %q, %q or %q)", r, RetractReportedInError, RetractCaseClosed, RetractOther)
	}
	return nil
}

func (e SuspicionRetracted) check() error {
	return first(
		checkID("suspicion_id", e.SuspicionID),
		checkID("origin", e.Origin),
		checkReason(e.Reason),
	)
}

func (e SuspicionExpired) check() error {
	return first(
		checkID("suspicion_id", e.SuspicionID),
		checkTime("expired_at", e.ExpiredAt),
	)
}

func (e SubjectErased) check() error {
	return first(
		checkID("origin", e.Origin),
		checkID("legal_basis", e.LegalBasis),
	)
}

func (e Verification) check() error {
	if e.State == "" {
		return missingClaim("state")
	}
	if len(e.State) > 256 {
		return invalidClaim("state", "at most 256 bytes")
	}
	return nil
}

func (e StreamVerification) check() error {
	if len(e.State) > 256 {
		return invalidClaim("state", "at most 256 bytes")
	}
	return nil
}

// decodeEvent decodes an event payload of type t.
func decodeEvent(t EventType, raw json.RawMessage) (Event, error) {
	var e Event
	var err error
	switch t {
	case EventFlagPlaced:
		e, err = decodeAs[FlagPlaced](raw)
	case EventFlagExtended:
		e, err = decodeAs[FlagExtended](raw)
	case EventFlagThawed:
		e, err = decodeAs[FlagThawed](raw)
	case EventFlagLifted:
		e, err = decodeAs[FlagLifted](raw)
	case EventFlagExpired:
		e, err = decodeAs[FlagExpired](raw)
	case EventFlagExpiring:
		e, err = decodeAs[FlagExpiring](raw)
	case EventSuspicionReported:
		e, err = decodeAs[SuspicionReported](raw)
	case EventSuspicionRetracted:
		e, err = decodeAs[SuspicionRetracted](raw)
	case EventSuspicionExpired:
		e, err = decodeAs[SuspicionExpired](raw)
	case EventSubjectErased:
		e, err = decodeAs[SubjectErased](raw)
	case EventVerification:
		e, err = decodeAs[Verification](raw)
	case EventStreamVerification:
		e, err = decodeAs[StreamVerification](raw)
	case EventSubjectChecked:
		e, err = decodeAs[SubjectChecked](raw)
	case EventCheckDenied:
		e, err = decodeAs[CheckDenied](raw)
	case EventPayeeReported:
		e, err = decodeAs[PayeeReported](raw)
	case EventPayeeExpired:
		e, err = decodeAs[PayeeExpired](raw)
	case EventRecallRequested:
		e, err = decodeAs[RecallRequested](raw)
	case EventRecallAcknowledged:
		e, err = decodeAs[RecallAcknowledged](raw)
	case EventRecallOutcome:
		e, err = decodeAs[RecallOutcome](raw)
	case EventDisputeOpened:
		e, err = decodeAs[DisputeOpened](raw)
	case EventDisputeAcknowledged:
		e, err = decodeAs[DisputeAcknowledged](raw)
	case EventDisputeResolved:
		e, err = decodeAs[DisputeResolved](raw)
	case EventDisputeLapsed:
		e, err = decodeAs[DisputeLapsed](raw)
	case EventAccessReport:
		e, err = decodeAs[AccessReport](raw)
	default:
		return nil, invalidClaim("events", "unknown event type %q", t)
	}
	return e, err
}

// decodeAs decodes a JSON object into a T. Unknown fields are allowed in
// records, so that the hub can add fields without breaking members.
func decodeAs[T any](raw json.RawMessage) (T, error) {
	var v T
	if err := json.Unmarshal(raw, &v); err != nil {
		return v, err
	}
	return v, nil
}
