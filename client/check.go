package client

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/sparr-dev/sparr/protocol"
	"github.com/sparr-dev/sparr/protocol/api"
)

// A CheckResult is the hub's answer to a check ([api.CheckResponse]),
// with every flag record verified.
type CheckResult struct {
	// ID identifies the check, for [Client.ReportOutcome].
	ID        string
	CheckedAt time.Time
	// Results has one entry per token, in the order checked.
	Results []TokenResult
	// LogIndex is the check's exchange-log entry.
	LogIndex uint64
}

// A TokenResult is the answer for one token.
type TokenResult struct {
	Token  protocol.Token
	Advice api.Advice
	// Flag is the token's active flag, thawed or not; nil if none.
	Flag *CheckedFlag
	// Suspicions are the token's active suspicion hits: how many, of which
	// categories, and their ids for [Client.SuspicionDetails]; nil if
	// none.
	Suspicions *api.CheckSuspicions
	// Denied, if set, says that the consumer denied recent checks of the
	// token ("not me") through the member that placed their flag: treat
	// the application as likely fraud and verify the applicant strongly.
	// Nil if none.
	Denied *CheckedDenial
}

// A CheckedDenial is what a check shows of the consumer's recent denials
// of checks of a token: how many, the last one's time, and the
// check-denied records of this member's own denied checks, each verified
// and checked to be about the token.
type CheckedDenial struct {
	Count        int
	LastDeniedAt time.Time
	Records      []*protocol.Record
}

// A CheckedFlag is an active flag as a check reports it, with its signed
// records (placed, extended, thawed), each verified against the hub's keys
// and checked to be about the token and the flag.
type CheckedFlag struct {
	ID        string
	Kind      protocol.FlagKind
	Thawed    bool
	ThawUntil time.Time // while Thawed
	ExpiresAt time.Time
	Records   []*protocol.Record
	// JWS are the records exactly as signed, in the same order.
	JWS []string
}

// Check checks 1 to 100 tokens for one purpose ([api.PurposeCreditApplication]
// or another of [api.Purposes]) before approving credit, an account, an address change
// or a payment. The check is logged, and the consumer can see which members
// checked them; so a check whose answer was lost is not sent again (see
// [Retry]). Every flag record in the answer is verified and checked to be
// about its token and flag ([Verifier.Check]); one that is not fails the
// whole check with a [*RecordError].
func (c *Client) Check(ctx context.Context, purpose string, tokens ...protocol.Token) (*CheckResult, error) {
	if len(tokens) == 0 || len(tokens) > protocol.MaxTokenBatch {
		return nil, fmt.Errorf("check %d tokens: send 1 to %d at a time", len(tokens), protocol.MaxTokenBatch)
	}
	req := api.CheckRequest{Purpose: purpose, Tokens: make([]string, len(tokens))}
	for i, t := range tokens {
		req.Tokens[i] = t.String()
	}
	body, err := json.Marshal(req)
	if err != nil {
		return nil, err
	}
	answer, err := c.fetch(ctx, request{method: http.MethodPost, path: "/v1/check", contentType: "application/json", body: body})
	if err != nil {
		return nil, err
	}
	return c.verifier.Check(ctx, tokens, answer)
}

// FlagID returns the flag an event is about, if it is a flag event.
func FlagID(ev protocol.Event) (string, bool) {
	switch e := ev.(type) {
	case protocol.FlagPlaced:
		return e.FlagID, true
	case protocol.FlagExtended:
		return e.FlagID, true
	case protocol.FlagThawed:
		return e.FlagID, true
	case protocol.FlagLifted:
		return e.FlagID, true
	case protocol.FlagExpired:
		return e.FlagID, true
	case protocol.FlagExpiring:
		return e.FlagID, true
	case protocol.SubjectChecked:
		return e.FlagID, true
	case protocol.CheckDenied:
		return e.FlagID, true
	}
	return "", false
}

// SuspicionID returns the suspicion an event is about, if it is a
// suspicion event.
func SuspicionID(ev protocol.Event) (string, bool) {
	switch e := ev.(type) {
	case protocol.SuspicionReported:
		return e.SuspicionID, true
	case protocol.SuspicionRetracted:
		return e.SuspicionID, true
	case protocol.SuspicionExpired:
		return e.SuspicionID, true
	}
	return "", false
}

// ReportOutcome reports, once, whether the applicant of a check was
// verified ([api.OutcomeVerified], [api.OutcomeNotVerified] or
// [api.OutcomeAbandoned]). It
// returns the index of the outcome's exchange-log entry. A second report
// is refused with [ErrStateConflict], so one whose answer was lost is not
// sent again (see [Retry]).
func (c *Client) ReportOutcome(ctx context.Context, checkID, outcome string) (uint64, error) {
	body, err := json.Marshal(api.OutcomeRequest{Outcome: outcome})
	if err != nil {
		return 0, err
	}
	var out api.OutcomeResponse
	err = c.call(ctx, request{method: http.MethodPost, path: "/v1/checks/" + url.PathEscape(checkID) + "/outcome", contentType: "application/json", body: body}, &out)
	return out.LogIndex, err
}

// ReportReplicaChecks reports checks the member's own replica answered
// (POST /v1/checks/replica), 1 to [api.MaxReplicaChecks] at a time, each
// with its token, purpose ([api.Purposes]) and time (not in the future,
// nor older than a week), so that the hub logs them as it logs online
// checks. The hub refuses the whole report, naming the check at fault in
// the problem's Errors, if one of them is not acceptable. A report is
// logged again each time it reaches the hub, so one whose answer was lost
// is not sent again (see [Retry]). Package
// [github.com/sparr-dev/sparr/client/replica] reports its checks with it.
func (c *Client) ReportReplicaChecks(ctx context.Context, checks []api.ReplicaCheck) (*api.ReplicaChecksResponse, error) {
	if len(checks) == 0 || len(checks) > api.MaxReplicaChecks {
		return nil, fmt.Errorf("report %d replica checks: send 1 to %d at a time", len(checks), api.MaxReplicaChecks)
	}
	body, err := json.Marshal(api.ReplicaChecksRequest{Checks: checks})
	if err != nil {
		return nil, err
	}
	out := new(api.ReplicaChecksResponse)
	if err := c.call(ctx, request{method: http.MethodPost, path: "/v1/checks/replica", contentType: "application/json", body: body}, out); err != nil {
		return nil, err
	}
	return out, nil
}

// SuspicionDetails are what a member that asks for them learns of a
// suspicion: its subjects, police report and signed records.
type SuspicionDetails struct {
	Suspicion *api.Suspicion
	// Records are the suspicion's full records, verified.
	Records []*protocol.Record
	JWS     []string
	// LogIndex is the exchange-log entry of the request.
	LogIndex uint64
}

// SuspicionDetails asks for a suspicion's details, stating the purpose and,
// in 20 to 1000 characters, why; both are logged for the regulator, so a
// request whose answer was lost is not sent again (see [Retry]).
func (c *Client) SuspicionDetails(ctx context.Context, suspicionID, purpose, justification string) (*SuspicionDetails, error) {
	body, err := json.Marshal(api.DetailsRequest{Purpose: purpose, Justification: justification})
	if err != nil {
		return nil, err
	}
	answer, err := c.fetch(ctx, request{method: http.MethodPost, path: "/v1/suspicions/" + url.PathEscape(suspicionID) + "/details", contentType: "application/json", body: body})
	if err != nil {
		return nil, err
	}
	return c.verifier.SuspicionDetails(ctx, suspicionID, answer)
}

// Record reads one signed record by its jti, verified. A record the hub has
// erased (after a lift, retraction or erasure) is [ErrNotFound].
func (c *Client) Record(ctx context.Context, jti string) (*Event, error) {
	answer, err := c.fetch(ctx, request{method: http.MethodGet, path: "/v1/records/" + url.PathEscape(jti)})
	if err != nil {
		return nil, err
	}
	return c.verifier.Record(ctx, jti, answer)
}

// DenyCheck tells the member that made a check, for the consumer, that it
// was not them ("not me"): checkID and flagID are those of the
// [protocol.SubjectChecked] access notice this member received as the
// flag's origin, auth how the consumer authenticated to this member just
// now (within the hour). The hub delivers a signed check-denied record to
// the checking member at once, and shows the denial beside the advice of
// every check of the subject for the hub's denial window (30 days by
// default). The result's Record is that check-denied record. Refusals are
// [*Problem]s: [ErrNotFound] for a check this member was not notified of,
// [ErrStateConflict] for one already denied or a flag no longer active,
// [ErrValidation] for a stale authentication.
func (c *Client) DenyCheck(ctx context.Context, checkID, flagID string, auth protocol.ConsumerAuth) (*WriteResult, error) {
	return c.submit(ctx, protocol.DenyCheck{CheckID: checkID, FlagID: flagID, ConsumerAuth: &auth})
}
