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
