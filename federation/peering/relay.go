package peering

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/sparr-dev/sparr/protocol"
	"github.com/sparr-dev/sparr/protocol/api"
)

// TokensPath is the home hub's route for relayed token requests.
const TokensPath = "/v1/peering/tokens"

// CheckPath is the home hub's route for relayed checks.
const CheckPath = "/v1/peering/check"

// OutcomePath is the home hub's route for the outcomes of relayed checks.
const OutcomePath = "/v1/peering/outcome"

// SubmissionsPath is the home hub's route for relayed writes: a member's
// signed submission with this hub's countersignature.
const SubmissionsPath = "/v1/peering/submissions"

// DefaultTimeout bounds one relayed request when a [Peer] sets none: a
// home hub that does not answer in time delays that request only.
const DefaultTimeout = 10 * time.Second

// maxAnswer bounds the body read from a home hub.
const maxAnswer = 1 << 20

// ErrUnreachable is returned by [Peer.EvaluateTokens], [Peer.CheckTokens]
// and [Peer.RelaySubmission] when the home hub
// could not be reached or did not answer in time.
var ErrUnreachable = errors.New("home hub unreachable")

// A Peer is another hub as this hub's operator registered it: the home hub
// of the identifiers of one jurisdiction, to which this hub relays its
// members' requests for them.
type Peer struct {
	// ID names the peer in this hub's logs and metrics ("hub-no").
	ID string `json:"id"`
	// Jurisdiction is the peer's country, ISO 3166-1 alpha-2 ("NO"): it is
	// home to every identifier type whose [protocol.IdentifierType.Jurisdiction]
	// this is.
	Jurisdiction string `json:"jurisdiction"`
	// URL is the peer's issuer URL: where requests go and the audience of
	// this hub's bearer tokens to it.
	URL string `json:"url"`
	// Member is this hub's id at the peer, where its operator registered
	// this hub with role peer and the public half of Key.
	Member string `json:"member"`
	// Key signs this hub's bearer tokens to the peer. It never leaves this
	// hub.
	Key *protocol.SigningKey `json:"-"`
	// Token is the peer's OPRF public key, pinned at registration: a
	// member checks the peer's proofs against it, and this hub refuses to
	// relay a request for another epoch.
	Token protocol.TokenPublicKey `json:"token"`
	// Timeout bounds one relayed request; 0 means DefaultTimeout.
	Timeout time.Duration `json:"-"`
	// Policy is what flows between this hub and the peer.
	Policy Policy `json:"policy"`

	keys keyCache // the peer's keys as last fetched (Keys)
}

// Check reports what is missing or wrong in p.
func (p *Peer) Check() error {
	switch {
	case p.ID == "":
		return errors.New("peer: no id")
	case len(p.Jurisdiction) != 2 || strings.ToUpper(p.Jurisdiction) != p.Jurisdiction:
		return fmt.Errorf("peer %s: jurisdiction %q, want an upper-case ISO 3166-1 alpha-2 code such as NO", p.ID, p.Jurisdiction)
	case !strings.HasPrefix(p.URL, "https://") && !strings.HasPrefix(p.URL, "http://"):
		return fmt.Errorf("peer %s: URL %q, want the peer's https:// issuer URL", p.ID, p.URL)
	case p.Member == "":
		return fmt.Errorf("peer %s: no member id (this hub's id at the peer)", p.ID)
	case p.Key == nil:
		return fmt.Errorf("peer %s: no signing key", p.ID)
	}
	if _, err := protocol.NewTokenClient(p.Token); err != nil {
		return fmt.Errorf("peer %s: %w", p.ID, err)
	}
	if err := p.Policy.Check(); err != nil {
		return fmt.Errorf("peer %s: %w", p.ID, err)
	}
	return nil
}

// Types returns the identifier types the peer is home to.
func (p *Peer) Types() []protocol.IdentifierType {
	var out []protocol.IdentifierType
	for _, t := range protocol.IdentifierTypes() {
		if t.Jurisdiction() == p.Jurisdiction {
			out = append(out, t)
		}
	}
	return out
}

// A ProblemError is a home hub's refusal of a relayed request, with its
// problem document.
type ProblemError struct {
	Peer       string
	Problem    *protocol.Problem
	RetryAfter string // the home hub's Retry-After header, if any
	Floor      string // the home hub's Sparr-Feed-Floor header, if any
}

func (e *ProblemError) Error() string {
	return fmt.Sprintf("home hub %s refused: %s: %s", e.Peer, e.Problem.Type, e.Problem.Detail)
}

// EvaluateTokens relays member's token request to the peer, signed with a
// fresh bearer token of this hub, and returns the peer's evaluation as it
// came: the member checks its proof. A refusal is a [*ProblemError]; no
// answer in time, or an answer that is no evaluation, wraps
// [ErrUnreachable].
func (p *Peer) EvaluateTokens(ctx context.Context, hc *http.Client, member string, req *protocol.TokenRequest, now time.Time) (*protocol.TokenResponse, error) {
	var out protocol.TokenResponse
	if err := p.post(ctx, hc, TokensPath, api.PeerTokenRequest{TokenRequest: *req, Member: member}, &out, now); err != nil {
		return nil, err
	}
	if out.Type != req.Type || out.Epoch != req.Epoch || len(out.Evaluated) != len(req.Blinded) {
		return nil, fmt.Errorf("peer %s: %w: the evaluation does not match the request", p.ID, ErrUnreachable)
	}
	return &out, nil
}

// CheckTokens relays member's check to the peer, signed with a fresh
// bearer token of this hub, naming it by this hub's checkID (if not ""),
// and returns the peer's answer as it came: its
// flag records are signed by the peer, and the member verifies them with
// the peer's keys. Errors are as [Peer.EvaluateTokens] returns them; an
// answer with another result for each token than the one asked for wraps
// [ErrUnreachable].
func (p *Peer) CheckTokens(ctx context.Context, hc *http.Client, member, checkID string, req *api.CheckRequest, now time.Time) (*api.CheckResponse, error) {
	var out api.CheckResponse
	if err := p.post(ctx, hc, CheckPath, api.PeerCheckRequest{CheckRequest: *req, Member: member, CheckID: checkID}, &out, now); err != nil {
		return nil, err
	}
	if len(out.Results) != len(req.Tokens) {
		return nil, fmt.Errorf("peer %s: %w: %d results for %d tokens", p.ID, ErrUnreachable, len(out.Results), len(req.Tokens))
	}
	for i, r := range out.Results {
		if r.Token.String() != req.Tokens[i] {
			return nil, fmt.Errorf("peer %s: %w: result %d is for another token", p.ID, ErrUnreachable, i)
		}
	}
	return &out, nil
}

// ReportOutcome reports to the peer the outcome of a check this hub
// relayed there (by its checkID) for member. Errors are as
// [Peer.EvaluateTokens] returns them.
func (p *Peer) ReportOutcome(ctx context.Context, hc *http.Client, member, checkID, outcome string, now time.Time) (*api.OutcomeResponse, error) {
	var out api.OutcomeResponse
	if err := p.post(ctx, hc, OutcomePath, api.PeerOutcomeRequest{CheckID: checkID, Member: member, Outcome: outcome}, &out, now); err != nil {
		return nil, err
	}
	if out.Outcome != outcome {
		return nil, fmt.Errorf("peer %s: %w: the answer is not the outcome reported", p.ID, ErrUnreachable)
	}
	return &out, nil
}

// A WriteAnswer is the home hub's answer to a relayed write, as it came:
// its status (200 or 201), its Location header, if any, and its body, a
// write response whose record the home hub signed.
type WriteAnswer struct {
	Status   int
	Location string
	Body     []byte
}

// RelaySubmission relays member's signed submission (its compact JWS,
// unchanged) to the peer, with this hub's countersignature binding its
// bytes, its jti, the member and memberKey, the key the member signed it
// with; relay is this hub's issuer URL, the submission's audience. The
// peer's 200 or 201 answer is returned as it came. A refusal is a
// [*ProblemError]; no answer in time, or an answer that is no write
// response, wraps [ErrUnreachable].
func (p *Peer) RelaySubmission(ctx context.Context, hc *http.Client, member string, memberKey *protocol.PublicKey, relay string, jti string, submission []byte, now time.Time) (*WriteAnswer, error) {
	sum := sha256.Sum256(submission)
	cs, err := protocol.SignCountersignature(&protocol.Countersignature{
		Issuer: p.Member, Audience: p.URL, IssuedAt: now, ID: jti, Member: member, Relay: relay,
		SubmissionHash: sum[:], MemberKey: memberKey,
	}, p.Key)
	if err != nil {
		return nil, fmt.Errorf("peer %s: %w", p.ID, err)
	}
	status, header, data, err := p.send(ctx, hc, SubmissionsPath, api.PeerSubmission{Submission: string(submission), Countersignature: string(cs)}, now)
	if err != nil {
		return nil, err
	}
	if status != http.StatusOK && status != http.StatusCreated {
		return nil, fmt.Errorf("peer %s: %w: status %d", p.ID, ErrUnreachable, status)
	}
	var out api.WriteResponse
	if err := json.Unmarshal(data, &out); err != nil || out.Record == "" && out.Flag == nil && out.Suspicion == nil {
		return nil, fmt.Errorf("peer %s: %w: the answer is no write response", p.ID, ErrUnreachable)
	}
	return &WriteAnswer{Status: status, Location: header.Get("Location"), Body: data}, nil
}

// post sends body to the peer's path, authenticated by a fresh bearer
// token of this hub, and decodes its 200 answer into out, within the
// peer's timeout.
func (p *Peer) post(ctx context.Context, hc *http.Client, path string, body, out any, now time.Time) error {
	status, _, data, err := p.send(ctx, hc, path, body, now)
	if err != nil {
		return err
	}
	if status != http.StatusOK {
		return fmt.Errorf("peer %s: %w: status %d", p.ID, ErrUnreachable, status)
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("peer %s: %w: the answer is not what was asked for", p.ID, ErrUnreachable)
	}
	return nil
}

// send posts body to the peer's path, authenticated by a fresh bearer
// token of this hub, within the peer's timeout, and returns a 2xx answer's
// status, header and body. Any other answer is a [*ProblemError] if it
// carries a problem document, and wraps [ErrUnreachable] if not.
func (p *Peer) send(ctx context.Context, hc *http.Client, path string, body any, now time.Time) (int, http.Header, []byte, error) {
	data, err := json.Marshal(body)
	if err != nil {
		return 0, nil, nil, err
	}
	return p.do(ctx, hc, http.MethodPost, path, data, now)
}

// do sends a request of method to the peer's path, with body (JSON, if
// not nil), as [Peer.send] does.
func (p *Peer) do(ctx context.Context, hc *http.Client, method, path string, data []byte, now time.Time) (int, http.Header, []byte, error) {
	timeout := p.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	bearer, err := protocol.NewBearer(p.Key, p.Member, p.URL, now, time.Minute)
	if err != nil {
		return 0, nil, nil, fmt.Errorf("peer %s: %w", p.ID, err)
	}
	var rd io.Reader
	if data != nil {
		rd = bytes.NewReader(data)
	}
	hreq, err := http.NewRequestWithContext(ctx, method, strings.TrimSuffix(p.URL, "/")+path, rd)
	if err != nil {
		return 0, nil, nil, fmt.Errorf("peer %s: %w", p.ID, err)
	}
	if data != nil {
		hreq.Header.Set("Content-Type", "application/json")
	}
	hreq.Header.Set("Authorization", "Bearer "+bearer)
	resp, err := hc.Do(hreq)
	if err != nil {
		return 0, nil, nil, fmt.Errorf("peer %s: %w: %v", p.ID, ErrUnreachable, err)
	}
	defer resp.Body.Close()
	data, err = io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
	if err != nil {
		return 0, nil, nil, fmt.Errorf("peer %s: %w: %v", p.ID, ErrUnreachable, err)
	}
	if resp.StatusCode/100 != 2 {
		var prob protocol.Problem
		if resp.Header.Get("Content-Type") == protocol.ProblemContentType && json.Unmarshal(data, &prob) == nil && prob.Type != "" {
			return 0, nil, nil, &ProblemError{Peer: p.ID, Problem: &prob, RetryAfter: resp.Header.Get("Retry-After"), Floor: resp.Header.Get(api.FeedFloorHeader)}
		}
		return 0, nil, nil, fmt.Errorf("peer %s: %w: status %d without a problem document", p.ID, ErrUnreachable, resp.StatusCode)
	}
	return resp.StatusCode, resp.Header, data, nil
}
