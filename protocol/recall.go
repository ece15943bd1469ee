package protocol

import (
	"fmt"
	"regexp"
)

// Recall requests. A member whose customer paid a scammer asks the member
// that holds the payee account to stop the money: a directed signal, one
// bank to one bank. The hub routes the signed request to the holder, and
// only to it, by the bank the payee identifier names ([BankOf]); the
// holder acknowledges it and later reports the outcome. Every step is a
// signed record addressed to the other side and a log entry.

// The actions of recall submissions.
const (
	ActionRequestRecall     Action = "recall-request"
	ActionAcknowledgeRecall Action = "recall-acknowledge"
	ActionRecallOutcome     Action = "recall-outcome"
)

// The event types of recalls. Each record has one audience: the holder
// for a request, the requester for an acknowledgement or an outcome.
const (
	EventRecallRequested    EventType = "urn:sparr:event:recall-requested"
	EventRecallAcknowledged EventType = "urn:sparr:event:recall-acknowledged"
	EventRecallOutcome      EventType = "urn:sparr:event:recall-outcome"
)

// A RecallOutcomeCode says what became of the money a recall asked for.
type RecallOutcomeCode string

// The recall outcomes.
const (
	RecallFrozen   RecallOutcomeCode = "frozen"   // the holder froze Amount in the payee account
	RecallReturned RecallOutcomeCode = "returned" // the holder returned Amount to the payer's bank
	RecallGone     RecallOutcomeCode = "gone"     // the money had left the account; Amount is what was left, often 0
)

// RecallOutcomes returns every recall outcome.
func RecallOutcomes() []RecallOutcomeCode {
	return []RecallOutcomeCode{RecallFrozen, RecallReturned, RecallGone}
}

// A Money is an amount in minor units (öre for SEK) of an ISO 4217
// currency.
type Money struct {
	Minor    int64  `json:"minor"`
	Currency string `json:"currency"`
}

// String returns the amount as "40000.00 SEK".
func (m Money) String() string {
	sign := ""
	v := m.Minor
	if v < 0 {
		sign, v = "-", -v
	}
	return fmt.Sprintf("%s%d.%02d %s", sign, v/100, v%100, m.Currency)
}

var currencyPattern = regexp.MustCompile(`^[A-Z]{3}$`)

func (m Money) check(claim string, zeroOK bool) error {
	switch {
	case !currencyPattern.MatchString(m.Currency):
		return invalidClaim(claim+".currency", "want an ISO 4217 code such as SEK")
	case m.Minor < 0 || (m.Minor == 0 && !zeroOK):
		return invalidClaim(claim+".minor", "want a positive amount in minor units")
	case m.Minor > 1e15:
		return invalidClaim(claim+".minor", "too large")
	}
	return nil
}

// RequestRecall asks the hub to route a recall of one payment to the
// member that holds the payee account. Bank is the bank the payee
// identifier names ([BankOf] of the raw identifier, which the member
// holds); Reference is the requesting member's own reference, which the
// holder quotes back.
type RequestRecall struct {
	Payee     Token       `json:"payee"`
	Bank      BankRef     `json:"bank"`
	Amount    Money       `json:"amount"`
	PaidAt    NumericDate `json:"paid_at"`
	Reference string      `json:"reference"`
}

// AcknowledgeRecall is the holder's acknowledgement of a recall request.
type AcknowledgeRecall struct {
	RecallID string `json:"recall_id"`
}

// ReportRecallOutcome is the holder's report of what became of the money.
type ReportRecallOutcome struct {
	RecallID string            `json:"recall_id"`
	Outcome  RecallOutcomeCode `json:"outcome"`
	Amount   Money             `json:"amount"`
}

// RecallRequested is the record of a recall request, for the holder.
type RecallRequested struct {
	RecallID  string      `json:"recall_id"`
	From      string      `json:"from"`
	To        string      `json:"to"`
	Bank      BankRef     `json:"bank"`
	Amount    Money       `json:"amount"`
	PaidAt    NumericDate `json:"paid_at"`
	Reference string      `json:"reference"`
}

// RecallAcknowledged is the record of the holder's acknowledgement, for
// the requester.
type RecallAcknowledged struct {
	RecallID  string      `json:"recall_id"`
	By        string      `json:"by"`
	Reference string      `json:"reference"`
	At        NumericDate `json:"acknowledged_at"`
}

// RecallOutcome is the record of the holder's outcome, for the requester.
type RecallOutcome struct {
	RecallID  string            `json:"recall_id"`
	By        string            `json:"by"`
	Reference string            `json:"reference"`
	Outcome   RecallOutcomeCode `json:"outcome"`
	Amount    Money             `json:"amount"`
}

func (RequestRecall) Action() Action            { return ActionRequestRecall }
func (AcknowledgeRecall) Action() Action        { return ActionAcknowledgeRecall }
func (ReportRecallOutcome) Action() Action      { return ActionRecallOutcome }
func (RecallRequested) EventType() EventType    { return EventRecallRequested }
func (RecallAcknowledged) EventType() EventType { return EventRecallAcknowledged }
func (RecallOutcome) EventType() EventType      { return EventRecallOutcome }

func (r RequestRecall) check() error {
	if err := checkToken("payee", r.Payee); err != nil {
		return err
	}
	if !IsPayeeType(r.Payee.Type) {
		return invalidClaim("payee", "is a %s token; a payee is one of %v", r.Payee.Type, PayeeTypes())
	}
	if _, err := ParseBankRef(r.Bank.String()); err != nil {
		return invalidClaim("bank", "want country and bank code, as {\"country\":\"SE\",\"bank_code\":\"500\"}")
	}
	if len(r.Reference) > 100 {
		return invalidClaim("reference", "at most 100 bytes")
	}
	return first(r.Amount.check("amount", false), checkTime("paid_at", r.PaidAt), checkID("reference", r.Reference))
}

func (r AcknowledgeRecall) check() error { return checkID("recall_id", r.RecallID) }

func (r ReportRecallOutcome) check() error {
	if err := checkID("recall_id", r.RecallID); err != nil {
		return err
	}
	if !validCode(r.Outcome, RecallOutcomes()) {
		return invalidClaim("outcome", "want one of %v", RecallOutcomes())
	}
	return r.Amount.check("amount", r.Outcome == RecallGone)
}

func (e RecallRequested) check() error {
	return first(checkID("recall_id", e.RecallID), checkID("from", e.From), checkID("to", e.To), checkTime("paid_at", e.PaidAt))
}

func (e RecallAcknowledged) check() error {
	return first(checkID("recall_id", e.RecallID), checkID("by", e.By), checkTime("acknowledged_at", e.At))
}

func (e RecallOutcome) check() error {
	return first(checkID("recall_id", e.RecallID), checkID("by", e.By))
}
