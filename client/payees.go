package client

import (
	"context"
	"net/http"
	"net/url"
	"time"

	"github.com/sparr-dev/sparr/protocol"
	"github.com/sparr-dev/sparr/protocol/api"
)

// ReportPayeeRequest is a member's report of a payee that its customers
// reported as the receiver of fraud (PSR Art. 83).
type ReportPayeeRequest struct {
	// Payee is the payee's token: of type iban, seaccount, bankgiro,
	// plusgiro or swish.
	Payee protocol.Token
	// Customers is how many distinct customers of the member reported the
	// payee: at least the hub's threshold (two under the PSR). Signing
	// it, the member attests it.
	Customers int
	Category  protocol.PayeeCategory
	// FirstSeen and LastSeen bound the payments the customers reported.
	FirstSeen, LastSeen time.Time
}

// ReportPayee reports a payee. The answer's Payee is the payee record
// with every member's report, which the hub sends to every member; a
// later report by the same member replaces its earlier one.
func (c *Client) ReportPayee(ctx context.Context, req ReportPayeeRequest) (*WriteResult, error) {
	return c.submit(ctx, protocol.ReportPayee{Payee: req.Payee, Customers: req.Customers, Category: req.Category,
		FirstSeen: protocol.NewNumericDate(req.FirstSeen), LastSeen: protocol.NewNumericDate(req.LastSeen)})
}

// ContestPayee says that the holder of the payee account of record
// payeeID, a customer of the member, contests it. The record stays,
// marked contested, in every check.
func (c *Client) ContestPayee(ctx context.Context, payeeID string, reason protocol.ContestReason) (*WriteResult, error) {
	return c.submit(ctx, protocol.ContestPayee{PayeeID: payeeID, Reason: reason})
}

// Payee reads a payee record.
func (c *Client) Payee(ctx context.Context, payeeID string) (*api.Payee, error) {
	var out api.Payee
	if err := c.call(ctx, request{method: http.MethodGet, path: "/v1/payees/" + url.PathEscape(payeeID)}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// RecallRequest asks the member that holds a payee account to stop a
// scam payment.
type RecallRequest struct {
	// Payee is the payee's token; Bank the bank that holds the account,
	// from the raw identifier (protocol.BankOf).
	Payee  protocol.Token
	Bank   protocol.BankRef
	Amount protocol.Money
	PaidAt time.Time
	// Reference is your own reference for the payment, which the holder
	// quotes back.
	Reference string
}

// RequestRecall sends a recall request, which the hub routes to the
// member that holds the payee's bank, and to it alone. The answer's
// Recall names the holder (To).
func (c *Client) RequestRecall(ctx context.Context, req RecallRequest) (*WriteResult, error) {
	return c.submit(ctx, protocol.RequestRecall{Payee: req.Payee, Bank: req.Bank, Amount: req.Amount,
		PaidAt: protocol.NewNumericDate(req.PaidAt), Reference: req.Reference})
}

// AcknowledgeRecall acknowledges a recall addressed to the member.
func (c *Client) AcknowledgeRecall(ctx context.Context, recallID string) (*WriteResult, error) {
	return c.submit(ctx, protocol.AcknowledgeRecall{RecallID: recallID})
}

// ReportRecallOutcome reports what became of a recalled payment: frozen,
// returned, or gone, with the amount.
func (c *Client) ReportRecallOutcome(ctx context.Context, recallID string, outcome protocol.RecallOutcomeCode, amount protocol.Money) (*WriteResult, error) {
	return c.submit(ctx, protocol.ReportRecallOutcome{RecallID: recallID, Outcome: outcome, Amount: amount})
}

// Recall reads a recall the member requested or holds, with its status
// and times.
func (c *Client) Recall(ctx context.Context, recallID string) (*api.Recall, error) {
	var out api.Recall
	if err := c.call(ctx, request{method: http.MethodGet, path: "/v1/recalls/" + url.PathEscape(recallID)}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}
