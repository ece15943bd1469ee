package protocol

import "fmt"

// Payee reports. A member reports a payee identifier (as a token) that at
// least two of its own customers reported as the receiver of a fraud, as
// the EU Payment Services Regulation (Art. 83) requires; the hub
// aggregates every member's report of the same payee into one signed
// payee record, delivered to every member, so that every payment service
// provider can screen payees before a payment. A check of a reported
// payee answers "warn", never "decline". See docs/payee-fraud.md.

// The actions of payee submissions.
const (
	ActionReportPayee  Action = "payee-report"
	ActionContestPayee Action = "payee-contest"
)

// EventPayeeReported is the event of a payee record: the aggregate of
// every member's report of one payee, re-issued whenever a report or a
// contest changes it. The latest record of a payee replaces the earlier.
const EventPayeeReported EventType = "urn:sparr:event:payee-reported"

// EventPayeeExpired is the event of a payee record's end: it lapsed at the
// end of its retention and the hub deleted it. Every member deletes its
// copy; a later report of the payee starts a new record.
const EventPayeeExpired EventType = "urn:sparr:event:payee-expired"

// MaxPayeeCustomers bounds the customers one member's report may count.
const MaxPayeeCustomers = 1_000_000

// A PayeeCategory classifies the scam a payee received money from.
type PayeeCategory string

// The payee scam categories.
const (
	PayeeImpersonation PayeeCategory = "impersonation" // a caller posing as the bank, the police, an authority
	PayeeInvestment    PayeeCategory = "investment"    // fake investments, crypto
	PayeeRomance       PayeeCategory = "romance"       // romance scams
	PayeePurchase      PayeeCategory = "purchase"      // goods paid for and never delivered
	PayeeInvoice       PayeeCategory = "invoice"       // false or redirected invoices (CEO fraud)
	PayeeOther         PayeeCategory = "other"
)

// PayeeCategories returns every payee category.
func PayeeCategories() []PayeeCategory {
	return []PayeeCategory{PayeeImpersonation, PayeeInvestment, PayeeRomance, PayeePurchase, PayeeInvoice, PayeeOther}
}

// ReportPayee is a member's signed report of a payee: Customers distinct
// customers of its own (at least the hub's threshold, two under the PSR)
// reported payments to it as fraud between FirstSeen and LastSeen. A
// later report by the same member replaces its earlier one in the
// aggregate.
type ReportPayee struct {
	Payee     Token         `json:"payee"`
	Customers int           `json:"customers"`
	Category  PayeeCategory `json:"category"`
	FirstSeen NumericDate   `json:"first_seen"`
	LastSeen  NumericDate   `json:"last_seen"`
}

// A ContestReason says why a payee record is contested.
type ContestReason string

// The contest reasons.
const (
	// ContestHolderDisputes: the account holder disputes the reports,
	// through the bank that holds the account.
	ContestHolderDisputes ContestReason = "holder-disputes"
	// ContestReportedInError: the contesting member finds the reports
	// mistaken (a wrong account number, a resolved dispute).
	ContestReportedInError ContestReason = "reported-in-error"
)

// ContestReasons returns every contest reason.
func ContestReasons() []ContestReason {
	return []ContestReason{ContestHolderDisputes, ContestReportedInError}
}

// ContestPayee is a member's signed statement that the holder of a
// reported payee account contests the reports. The record stays, marked
// contested, in every check and in every member's copy.
type ContestPayee struct {
	PayeeID string        `json:"payee_id"`
	Reason  ContestReason `json:"reason"`
}

// A PayeeMemberReport is one member's part of a payee record.
type PayeeMemberReport struct {
	Member    string        `json:"member"`
	Customers int           `json:"customers"`
	Category  PayeeCategory `json:"category"`
	FirstSeen NumericDate   `json:"first_seen"`
	LastSeen  NumericDate   `json:"last_seen"`
}

// PayeeReported is a payee record: every member's report of one payee
// (Reports, one per member, in the order they first reported), the total
// of customers, the first and last report, the legal basis the hub shares
// it on, and when it lapses. Contested says the account holder contests
// it, through ContestedBy.
type PayeeReported struct {
	PayeeID     string              `json:"payee_id"`
	Version     uint64              `json:"version"`
	Reports     []PayeeMemberReport `json:"reports"`
	Customers   int                 `json:"customers"`
	FirstSeen   NumericDate         `json:"first_seen"`
	LastSeen    NumericDate         `json:"last_seen"`
	LegalBasis  string              `json:"legal_basis"`
	ExpiresAt   NumericDate         `json:"expires_at"`
	Contested   bool                `json:"contested,omitempty"`
	ContestedBy string              `json:"contested_by,omitempty"`
	Reason      ContestReason       `json:"contest_reason,omitempty"`
}

// PayeeExpired: payee record PayeeID reached the end of its retention at
// ExpiredAt and is deleted; Version is its last version.
type PayeeExpired struct {
	PayeeID   string      `json:"payee_id"`
	Version   uint64      `json:"version"`
	ExpiredAt NumericDate `json:"expired_at"`
}

func (ReportPayee) Action() Action         { return ActionReportPayee }
func (ContestPayee) Action() Action        { return ActionContestPayee }
func (PayeeReported) EventType() EventType { return EventPayeeReported }
func (PayeeExpired) EventType() EventType  { return EventPayeeExpired }

func (e PayeeExpired) check() error {
	return first(checkID("payee_id", e.PayeeID), checkTime("expired_at", e.ExpiredAt))
}

func (r ReportPayee) check() error {
	if err := checkToken("payee", r.Payee); err != nil {
		return err
	}
	if !IsPayeeType(r.Payee.Type) {
		return invalidClaim("payee", "is a %s token; a payee is one of %v", r.Payee.Type, PayeeTypes())
	}
	switch {
	case r.Customers < 1 || r.Customers > MaxPayeeCustomers:
		return invalidClaim("customers", "%d; count the distinct customers who reported the payee, 1 to %d", r.Customers, MaxPayeeCustomers)
	case !validCode(r.Category, PayeeCategories()):
		return invalidClaim("category", "want one of %v", PayeeCategories())
	}
	if err := first(checkTime("first_seen", r.FirstSeen), checkTime("last_seen", r.LastSeen)); err != nil {
		return err
	}
	if r.LastSeen < r.FirstSeen {
		return invalidClaim("last_seen", "is before first_seen")
	}
	return nil
}

func (r ContestPayee) check() error {
	if err := checkID("payee_id", r.PayeeID); err != nil {
		return err
	}
	if !validCode(r.Reason, ContestReasons()) {
		return invalidClaim("reason", "want one of %v", ContestReasons())
	}
	return nil
}

func (e PayeeReported) check() error {
	if err := checkID("payee_id", e.PayeeID); err != nil {
		return err
	}
	if len(e.Reports) == 0 {
		return missingClaim("reports")
	}
	for i, r := range e.Reports {
		if err := checkID(fmt.Sprintf("reports[%d].member", i), r.Member); err != nil {
			return err
		}
	}
	return first(checkTime("first_seen", e.FirstSeen), checkTime("last_seen", e.LastSeen), checkTime("expires_at", e.ExpiresAt))
}

func validCode[T ~string](v T, codes []T) bool {
	for _, c := range codes {
		if v == c {
			return true
		}
	}
	return false
}
