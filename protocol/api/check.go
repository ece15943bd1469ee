package api

import (
	"time"

	"github.com/sparr-dev/sparr/protocol"
)

// The purposes a member states when it checks identities.
const (
	PurposeCreditApplication = "credit-application"
	PurposeAccountOpening    = "account-opening"
	PurposeAddressChange     = "address-change"
	PurposePayment           = "payment"
	PurposeCardIssuance      = "card-issuance"
	PurposeOther             = "other"
)

// Purposes returns every purpose, in the order of the constants.
func Purposes() []string {
	return []string{PurposeCreditApplication, PurposeAccountOpening, PurposeAddressChange, PurposePayment, PurposeCardIssuance, PurposeOther}
}

// The outcomes a member reports after a check.
const (
	OutcomeVerified    = "verified"
	OutcomeNotVerified = "not-verified"
	OutcomeAbandoned   = "abandoned"
)

// Outcomes returns every outcome, in the order of the constants.
func Outcomes() []string { return []string{OutcomeVerified, OutcomeNotVerified, OutcomeAbandoned} }

// An Advice is what a check says to do about one identity. It never says
// decline.
type Advice string

// The advice a check gives.
const (
	// AdviceVerify: an active protection flag. Confirm the applicant by
	// strong authentication before approving. Never decline on the flag
	// alone.
	AdviceVerify Advice = "verify"
	// AdviceReview: no active flag, but police-reported suspicions; look
	// closer (their details need a separate, logged request).
	AdviceReview Advice = "review"
	// AdviceWarn: the token is a payee that members reported as the
	// receiver of fraud (a payee record, [Payee]). Warn the customer
	// before the payment and let them decide; never decline on the
	// record alone.
	AdviceWarn Advice = "warn"
	// AdviceNone: nothing known, or only a flag that is thawed right now.
	AdviceNone Advice = "none"
)

// A CheckRequest is the body of POST /v1/check: 1 to
// protocol.MaxTokenBatch tokens, checked for one purpose.
type CheckRequest struct {
	Purpose string `json:"purpose"`
	// Tokens are token texts; the hub refuses one that is not a token of
	// its current epoch, naming its index.
	Tokens []string `json:"tokens"`
}

// A CheckResponse is the answer to POST /v1/check, given once the check's
// exchange-log entry is durable.
type CheckResponse struct {
	// CheckID identifies the check, for reporting its outcome.
	CheckID   string    `json:"check_id"`
	CheckedAt time.Time `json:"checked_at"`
	// Results has one entry per token, in the order checked.
	Results  []CheckResult `json:"results"`
	LogIndex uint64        `json:"log_index"`
}

// A CheckResult is the answer for one token.
type CheckResult struct {
	Token  protocol.Token `json:"token"`
	Advice Advice         `json:"advice"`
	// Flag is the token's active flag, thawed or not, if any.
	Flag *CheckFlag `json:"flag,omitempty"`
	// Suspicions are the token's active suspicion hits, if any.
	Suspicions *CheckSuspicions `json:"suspicions,omitempty"`
	// Payee is the token's payee record, if members reported it.
	Payee *Payee `json:"payee,omitempty"`
	// Denied says that the consumer denied recent checks of the token
	// ("not me"), through the member that placed their flag, within the
	// hub's denial window.
	Denied *CheckDenied `json:"denied,omitempty"`
}

// CheckDenied is what a check shows of the consumer's recent denials of
// checks of the token: how many, when the last was made, and the signed
// check-denied records of those that denied the checking member's own
// checks (the others name another member's check, and stay with it).
type CheckDenied struct {
	Count        int       `json:"count"`
	LastDeniedAt time.Time `json:"last_denied_at"`
	Records      []string  `json:"records"`
}

// A CheckFlag is an active flag as a check reports it, with the signed
// records (placed, extended, thawed) the checking member is entitled to.
type CheckFlag struct {
	FlagID string            `json:"flag_id"`
	Kind   protocol.FlagKind `json:"kind"`
	Thawed bool              `json:"thawed"`
	// ThawUntil is the end of the thaw window, while Thawed.
	ThawUntil time.Time `json:"thaw_until,omitzero"`
	ExpiresAt time.Time `json:"expires_at"`
	// Records are compact JWS, oldest first.
	Records []string `json:"records"`
	// Disputed is the id of an open dispute of the flag, if any.
	Disputed string `json:"disputed,omitempty"`
}

// CheckSuspicions are the suspicion hits of a token: how many, of which
// categories, and their ids. Details need a separate, logged request
// ([DetailsRequest]).
type CheckSuspicions struct {
	Count      int                          `json:"count"`
	Categories []protocol.SuspicionCategory `json:"categories"`
	IDs        []string                     `json:"suspicion_ids"`
	// Disputed are those of IDs that a consumer disputes and that still
	// count: the dispute is open and within its deadlines.
	Disputed []string `json:"disputed,omitempty"`
	// Suspended are suspicions disputed past a deadline the reporting
	// member let pass: they do not count (not in Count, Categories or
	// IDs) until the dispute is resolved.
	Suspended []string `json:"suspended,omitempty"`
}

// An OutcomeRequest is the body of POST /v1/checks/{id}/outcome: whether
// the applicant of a check was verified (one of [Outcomes]).
type OutcomeRequest struct {
	Outcome string `json:"outcome"`
}

// An OutcomeResponse is the answer to an [OutcomeRequest].
type OutcomeResponse struct {
	CheckID  string `json:"check_id"`
	Outcome  string `json:"outcome"`
	LogIndex uint64 `json:"log_index"`
}

// A DetailsRequest is the body of POST /v1/suspicions/{id}/details: the
// purpose of the check the details are for, and in 20 to 1000 characters
// why they are needed. Both are logged for the regulator.
type DetailsRequest struct {
	Purpose       string `json:"purpose"`
	Justification string `json:"justification"`
}

// A DetailsResponse is the answer to a [DetailsRequest]: the suspicion
// with its subjects and police report, and its full signed records.
type DetailsResponse struct {
	Suspicion *Suspicion `json:"suspicion"`
	Records   []string   `json:"records"`
	LogIndex  uint64     `json:"log_index"`
}

// MaxReplicaChecks is the most checks one report of replica checks holds.
const MaxReplicaChecks = 1000

// A ReplicaCheck is one check a member's own replica answered: the token
// checked, the purpose, and when.
type ReplicaCheck struct {
	Token   string    `json:"token"`
	Purpose string    `json:"purpose"`
	At      time.Time `json:"at"`
}

// A ReplicaChecksRequest is the body of POST /v1/checks/replica: checks
// the member's replica answered, reported so that the hub logs them as it
// logs online checks (1 to MaxReplicaChecks of them).
type ReplicaChecksRequest struct {
	Checks []ReplicaCheck `json:"checks"`
}

// A ReplicaChecksResponse is the answer to a [ReplicaChecksRequest]: how
// many checks were logged, under which entry.
type ReplicaChecksResponse struct {
	Count    int    `json:"count"`
	LogIndex uint64 `json:"log_index"`
}
