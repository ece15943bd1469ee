package protocol

import (
	"fmt"
	"unicode/utf8"
)

// The submissions a member makes for a consumer who authenticated with it
// (each carries a [ConsumerAuth]), and the ones that answer for them.

// SubjectHistory asks for the consumer's history under Subject: who
// checked them, the flag's events, and the suspicions and disputes about
// them. The hub logs it as an access by the member.
type SubjectHistory struct {
	Subject      Token         `json:"subject"`
	ConsumerAuth *ConsumerAuth `json:"consumer_auth"`
}

// RequestAccessReport asks for the hub's access report on Subject (GDPR
// Art. 15): everything the hub holds about the token, in one record signed
// by the hub ([AccessReport]) that the member hands to the consumer.
type RequestAccessReport struct {
	Subject      Token         `json:"subject"`
	ConsumerAuth *ConsumerAuth `json:"consumer_auth"`
}

// DisputeGrounds say, as a code, why a consumer contests a suspicion or a
// flag. Statement, in [OpenDispute], is for the rest.
type DisputeGrounds string

// The grounds of a dispute.
const (
	// GroundsNotMe: the consumer did not do what the suspicion says; their
	// identity was used by someone else.
	GroundsNotMe DisputeGrounds = "not-me"
	// GroundsInaccurate: the suspicion's facts are wrong.
	GroundsInaccurate DisputeGrounds = "inaccurate"
	// GroundsNeverAsked: the consumer never asked for the flag.
	GroundsNeverAsked DisputeGrounds = "never-asked"
	// GroundsOther: none of the above; the statement says what.
	GroundsOther DisputeGrounds = "other"
)

// DisputeGroundsAll returns every ground of a dispute.
func DisputeGroundsAll() []DisputeGrounds {
	return []DisputeGrounds{GroundsNotMe, GroundsInaccurate, GroundsNeverAsked, GroundsOther}
}

// MaxStatement is the longest free text of a dispute or its answer, in
// characters.
const MaxStatement = 1000

// OpenDispute contests, for the consumer, one suspicion (SuspicionID) or
// one flag (FlagID) about Subject. The hub tells the member that reported
// the suspicion (or placed the flag) and runs the dispute's timers.
type OpenDispute struct {
	Subject      Token          `json:"subject"`
	SuspicionID  string         `json:"suspicion_id,omitempty"`
	FlagID       string         `json:"flag_id,omitempty"`
	Grounds      DisputeGrounds `json:"grounds"`
	Statement    string         `json:"statement,omitempty"`
	ConsumerAuth *ConsumerAuth  `json:"consumer_auth"`
}

// A DisputeAnswer is what the member a dispute is addressed to answers.
type DisputeAnswer string

// The answers to a dispute.
const (
	// AnswerAcknowledge: the member has the dispute and is looking into it.
	AnswerAcknowledge DisputeAnswer = "acknowledge"
	// AnswerUphold: the consumer is right; the suspicion is retracted (the
	// flag lifted).
	AnswerUphold DisputeAnswer = "uphold"
	// AnswerReject: the consumer is not; Reason says why.
	AnswerReject DisputeAnswer = "reject"
)

// DisputeAnswers returns every answer to a dispute.
func DisputeAnswers() []DisputeAnswer {
	return []DisputeAnswer{AnswerAcknowledge, AnswerUphold, AnswerReject}
}

// AnswerDispute is the disputed member's answer to dispute DisputeID. A
// rejection must give its Reason, which the consumer is shown.
type AnswerDispute struct {
	DisputeID string        `json:"dispute_id"`
	Answer    DisputeAnswer `json:"answer"`
	Reason    string        `json:"reason,omitempty"`
}

// MaxAttestations is the most records one erasure attestation names.
const MaxAttestations = 100

// AttestErasure is a member's statement that it deleted what it held about
// the subjects of Records: the jtis of flag-lifted, flag-expired,
// subject-erased, suspicion-retracted and suspicion-expired records it
// received.
type AttestErasure struct {
	Records []string `json:"records"`
}

func (SubjectHistory) Action() Action      { return ActionSubjectHistory }
func (RequestAccessReport) Action() Action { return ActionAccessReport }
func (OpenDispute) Action() Action         { return ActionOpenDispute }
func (AnswerDispute) Action() Action       { return ActionAnswerDispute }
func (AttestErasure) Action() Action       { return ActionAttestErasure }

func (r SubjectHistory) check() error {
	return first(checkToken("subject", r.Subject), r.ConsumerAuth.Check())
}

func (r RequestAccessReport) check() error {
	return first(checkToken("subject", r.Subject), r.ConsumerAuth.Check())
}

func checkStatement(claim, s string) error {
	if !utf8.ValidString(s) {
		return invalidClaim(claim, "not UTF-8")
	}
	if n := utf8.RuneCountInString(s); n > MaxStatement {
		return invalidClaim(claim, "%d characters, at most %d", n, MaxStatement)
	}
	return nil
}

func (r OpenDispute) check() error {
	if err := checkToken("subject", r.Subject); err != nil {
		return err
	}
	switch {
	case r.SuspicionID == "" && r.FlagID == "":
		return missingClaim("suspicion_id")
	case r.SuspicionID != "" && r.FlagID != "":
		return invalidClaim("flag_id", "name a suspicion or a flag, not both")
	case r.SuspicionID != "":
		if err := checkID("suspicion_id", r.SuspicionID); err != nil {
			return err
		}
	default:
		if err := checkID("flag_id", r.FlagID); err != nil {
			return err
		}
	}
	if r.Grounds == "" {
		return missingClaim("grounds")
	}
	return first(checkOptionalCode("grounds", r.Grounds, DisputeGroundsAll()), checkStatement("statement", r.Statement), r.ConsumerAuth.Check())
}

func (r AnswerDispute) check() error {
	if err := checkID("dispute_id", r.DisputeID); err != nil {
		return err
	}
	if r.Answer == "" {
		return missingClaim("answer")
	}
	if err := checkOptionalCode("answer", r.Answer, DisputeAnswers()); err != nil {
		return err
	}
	if r.Answer == AnswerReject && r.Reason == "" {
		return missingClaim("reason")
	}
	return checkStatement("reason", r.Reason)
}

func (r AttestErasure) check() error {
	if len(r.Records) == 0 {
		return missingClaim("records")
	}
	if len(r.Records) > MaxAttestations {
		return invalidClaim("records", "%d records, at most %d", len(r.Records), MaxAttestations)
	}
	seen := make(map[string]bool, len(r.Records))
	for i, id := range r.Records {
		claim := fmt.Sprintf("records[%d]", i)
		if err := checkID(claim, id); err != nil {
			return err
		}
		if seen[id] {
			return invalidClaim(claim, "repeats an earlier record")
		}
		seen[id] = true
	}
	return nil
}

// An AccessEntry is one access to a consumer's data as their history and
// access report show it: a check (online, or answered by a member's
// replica and reported), a request for a suspicion's details, or an
// earlier history or report request. Denied says the consumer, through the
// flag's origin member, denied having made the application the check was
// for ("not me").
type AccessEntry struct {
	At         NumericDate `json:"at"`
	Action     string      `json:"action"`
	Member     string      `json:"member"`
	MemberName string      `json:"member_name,omitempty"`
	Purpose    string      `json:"purpose,omitempty"`
	CheckID    string      `json:"check_id,omitempty"`
	Outcome    string      `json:"outcome,omitempty"`
	Denied     bool        `json:"denied"`
}

// A FlagEntry is the consumer's protection flag as their history and
// access report show it.
type FlagEntry struct {
	FlagID     string      `json:"flag_id"`
	Kind       FlagKind    `json:"kind"`
	Origin     string      `json:"origin"`
	OriginName string      `json:"origin_name,omitempty"`
	Status     string      `json:"status"`
	PlacedAt   NumericDate `json:"placed_at"`
	ExpiresAt  NumericDate `json:"expires_at"`
	ThawFrom   NumericDate `json:"thaw_from,omitempty"`
	ThawUntil  NumericDate `json:"thaw_until,omitempty"`
}

// A SuspicionEntry is a suspicion about the consumer as their history and
// access report show it: that it exists, who reported it, its category,
// and how to contest it.
type SuspicionEntry struct {
	SuspicionID string            `json:"suspicion_id"`
	Origin      string            `json:"origin"`
	OriginName  string            `json:"origin_name,omitempty"`
	Category    SuspicionCategory `json:"category"`
	ReportedAt  NumericDate       `json:"reported_at"`
	ExpiresAt   NumericDate       `json:"expires_at"`
	// Disputed is the id of the open dispute about it, if any.
	Disputed string `json:"disputed,omitempty"`
	// Contest says how the consumer contests it.
	Contest string `json:"contest"`
}

// A DisputeEntry is a dispute as the consumer's history, the access report
// and the parties see it. Status is "open", "acknowledged", "upheld" or
// "rejected"; Lapsed says a deadline passed unanswered (the suspicion then
// stops counting in checks until the dispute is resolved).
type DisputeEntry struct {
	DisputeID      string         `json:"dispute_id"`
	SuspicionID    string         `json:"suspicion_id,omitempty"`
	FlagID         string         `json:"flag_id,omitempty"`
	Disputant      string         `json:"disputant"`
	Respondent     string         `json:"respondent"`
	Grounds        DisputeGrounds `json:"grounds"`
	Status         string         `json:"status"`
	OpenedAt       NumericDate    `json:"opened_at"`
	AcknowledgeBy  NumericDate    `json:"acknowledge_by"`
	ResolveBy      NumericDate    `json:"resolve_by"`
	AcknowledgedAt NumericDate    `json:"acknowledged_at,omitempty"`
	ResolvedAt     NumericDate    `json:"resolved_at,omitempty"`
	Lapsed         bool           `json:"lapsed,omitempty"`
	Reason         string         `json:"reason,omitempty"`
}

// DisputeOpened: a consumer, through member Disputant, contests a
// suspicion or flag of Respondent's. Sent to both; the respondent must
// acknowledge it by AcknowledgeBy and resolve it by ResolveBy.
type DisputeOpened struct {
	DisputeID     string         `json:"dispute_id"`
	SuspicionID   string         `json:"suspicion_id,omitempty"`
	FlagID        string         `json:"flag_id,omitempty"`
	Disputant     string         `json:"disputant"`
	Respondent    string         `json:"respondent"`
	Grounds       DisputeGrounds `json:"grounds"`
	Statement     string         `json:"statement,omitempty"`
	AcknowledgeBy NumericDate    `json:"acknowledge_by"`
	ResolveBy     NumericDate    `json:"resolve_by"`
}

// DisputeAcknowledged: the respondent has the dispute. Sent to the
// disputant.
type DisputeAcknowledged struct {
	DisputeID  string `json:"dispute_id"`
	Respondent string `json:"respondent"`
}

// DisputeResolved: the respondent upheld the dispute (the suspicion is
// retracted, the flag lifted) or rejected it, for Reason. Sent to both.
type DisputeResolved struct {
	DisputeID string        `json:"dispute_id"`
	Outcome   DisputeAnswer `json:"outcome"`
	Reason    string        `json:"reason,omitempty"`
}

// DisputeLapsed: the respondent let a deadline of the dispute pass
// (Missed: "acknowledge" or "resolve", due at Due); until it resolves the
// dispute, the suspicion does not count in checks. Sent to both.
type DisputeLapsed struct {
	DisputeID string      `json:"dispute_id"`
	Missed    string      `json:"missed"`
	Due       NumericDate `json:"due"`
}

// AccessReport: the hub's report (GDPR Art. 15) of everything it holds
// about the record's subject, made for member RequestedBy acting for the
// consumer who authenticated as ConsumerAuth says. It is never delivered
// or kept in the feed: the member gets it in the answer and hands it to the
// consumer, and anyone with the hub's keys can verify it. Consent is the
// consent record the hub keeps with the flag; FlagRecords the flag's
// signed records, as signed. SuspicionsWithheld says the deployment's
// legal basis keeps suspicions from the subject's reports.
type AccessReport struct {
	RequestedBy        string           `json:"requested_by"`
	ConsumerAuth       ConsumerAuth     `json:"consumer_auth"`
	Flag               *FlagEntry       `json:"flag,omitempty"`
	Consent            *Consent         `json:"consent,omitempty"`
	FlagRecords        []string         `json:"flag_records"`
	Suspicions         []SuspicionEntry `json:"suspicions"`
	SuspicionsWithheld bool             `json:"suspicions_withheld,omitempty"`
	Disputes           []DisputeEntry   `json:"disputes"`
	Accesses           []AccessEntry    `json:"accesses"`
}

func (DisputeOpened) EventType() EventType       { return EventDisputeOpened }
func (DisputeAcknowledged) EventType() EventType { return EventDisputeAcknowledged }
func (DisputeResolved) EventType() EventType     { return EventDisputeResolved }
func (DisputeLapsed) EventType() EventType       { return EventDisputeLapsed }
func (AccessReport) EventType() EventType        { return EventAccessReport }

func (e DisputeOpened) check() error {
	if e.SuspicionID == "" && e.FlagID == "" {
		return missingClaim("suspicion_id")
	}
	return first(checkID("dispute_id", e.DisputeID), checkID("disputant", e.Disputant), checkID("respondent", e.Respondent),
		checkOptionalCode("grounds", e.Grounds, DisputeGroundsAll()), checkTime("acknowledge_by", e.AcknowledgeBy), checkTime("resolve_by", e.ResolveBy))
}

func (e DisputeAcknowledged) check() error {
	return first(checkID("dispute_id", e.DisputeID), checkID("respondent", e.Respondent))
}

func (e DisputeResolved) check() error {
	if e.Outcome != AnswerUphold && e.Outcome != AnswerReject {
		return invalidClaim("outcome", "want %q or %q", AnswerUphold, AnswerReject)
	}
	return checkID("dispute_id", e.DisputeID)
}

func (e DisputeLapsed) check() error {
	if e.Missed != "acknowledge" && e.Missed != "resolve" {
		return invalidClaim("missed", "want \"acknowledge\" or \"resolve\"")
	}
	return first(checkID("dispute_id", e.DisputeID), checkTime("due", e.Due))
}

func (e AccessReport) check() error {
	return first(checkID("requested_by", e.RequestedBy), e.ConsumerAuth.Check())
}
