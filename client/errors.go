package client

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"
	"time"

	"github.com/sparr-dev/sparr/protocol"
)

// Sentinel errors for the kinds of answer a member handles. Every error
// answer of the hub is a [*Problem]; test it against these with errors.Is,
// which maps the problem's stable "type" URI (docs/protocol.md, section 7)
// to one or more of them.
var (
	// ErrBadRequest: the hub refused the request as malformed
	// (malformed-request, invalid-token-request, invalid-submission,
	// invalid-token, payload-too-large, unsupported-media-type,
	// method-not-allowed). Retrying the same request will not help; it is a
	// bug in the caller or in this package.
	ErrBadRequest = errors.New("request refused as malformed")
	// ErrInvalidToken: a token is not in canonical form or is of another
	// epoch than the hub's (invalid-token); tokenize the identifier again.
	ErrInvalidToken = errors.New("token not usable at this hub")
	// ErrUnauthenticated: the bearer token was missing, did not verify or
	// had expired (unauthenticated, bearer-expired). Check the member id,
	// the key registered with the operator, and the clock.
	ErrUnauthenticated = errors.New("not authenticated")
	// ErrForbidden: the member lacks the role the route needs, is
	// suspended, signed with another member's key, or the hub shares no
	// suspicions (forbidden, member-suspended, wrong-signer,
	// suspicions-disabled).
	ErrForbidden = errors.New("forbidden")
	// ErrSuspended: the operator has suspended the member
	// (member-suspended). It is also an [ErrForbidden].
	ErrSuspended = errors.New("member suspended")
	// ErrSuspicionsDisabled: this hub has no legal basis configured for
	// suspicions (suspicions-disabled). It is also an [ErrForbidden].
	ErrSuspicionsDisabled = errors.New("suspicion sharing not enabled at this hub")
	// ErrNotFound: no such flag, suspicion, check, record or endpoint for
	// this member (not-found).
	ErrNotFound = errors.New("not found")
	// ErrConflict: a different submission already used this submission id
	// (submission-conflict). A retry of the same signed bytes never gets
	// it; only a new submission that reuses an id does.
	ErrConflict = errors.New("submission id already used by a different submission")
	// ErrStateConflict: the change is not possible in the object's current
	// state, such as thawing a lifted flag (state-conflict).
	ErrStateConflict = errors.New("not possible in the current state")
	// ErrCursorExpired: the feed no longer keeps events after the cursor
	// (cursor-expired); take a snapshot and follow the feed from its
	// sequence number.
	ErrCursorExpired = errors.New("feed cursor older than the retention window")
	// ErrValidation: the request is well formed but not acceptable under
	// the hub's policy, such as a thaw longer than it allows
	// (validation-failed).
	ErrValidation = errors.New("not acceptable under the hub's policy")
	// ErrInvalidConsent: the consent record is not acceptable
	// (invalid-consent); the problem's Errors name the field.
	ErrInvalidConsent = errors.New("consent not acceptable")
	// ErrEndpointRefused: the webhook URL is not allowed (endpoint-refused).
	ErrEndpointRefused = errors.New("webhook URL not allowed")
	// ErrRateLimited: the member's rate limit is spent (rate-limited). The
	// client has already waited and retried as its [Retry] policy allows;
	// [Problem.RetryAfter] says how long the hub asked to wait.
	ErrRateLimited = errors.New("rate limited")
	// ErrQuotaExceeded: the member has spent a daily quota
	// (token-quota-exceeded, storage-quota-exceeded); the problem's detail
	// names it and when it resets, at midnight UTC, and RetryAfter says how
	// long that is. The client does not wait that long: it is also an
	// [ErrRateLimited]. Ask the operator for a larger quota if the
	// member's volume needs it.
	ErrQuotaExceeded = errors.New("daily quota spent")
	// ErrInternal: the hub failed on the request (internal); quote the
	// problem's RequestID to the operator.
	ErrInternal = errors.New("hub internal error")
	// ErrUnavailable: the hub, or a proxy in front of it, is temporarily
	// unavailable (unavailable, or a 502, 503 or 504 answer). The client
	// has already retried as its [Retry] policy allows.
	ErrUnavailable = errors.New("hub unavailable")
)

// problemKinds maps each problem type (its slug) to the sentinels it
// matches.
var problemKinds = map[string][]error{
	"malformed-request":      {ErrBadRequest},
	"invalid-token":          {ErrInvalidToken, ErrBadRequest},
	"invalid-token-request":  {ErrBadRequest},
	"invalid-submission":     {ErrBadRequest},
	"payload-too-large":      {ErrBadRequest},
	"unsupported-media-type": {ErrBadRequest},
	"method-not-allowed":     {ErrBadRequest},
	"unauthenticated":        {ErrUnauthenticated},
	"bearer-expired":         {ErrUnauthenticated},
	"forbidden":              {ErrForbidden},
	"member-suspended":       {ErrSuspended, ErrForbidden},
	"wrong-signer":           {ErrForbidden},
	"suspicions-disabled":    {ErrSuspicionsDisabled, ErrForbidden},
	"not-found":              {ErrNotFound},
	"submission-conflict":    {ErrConflict},
	"state-conflict":         {ErrStateConflict},
	"cursor-expired":         {ErrCursorExpired},
	"validation-failed":      {ErrValidation},
	"invalid-consent":        {ErrInvalidConsent},
	"endpoint-refused":       {ErrEndpointRefused},
	"rate-limited":           {ErrRateLimited},
	"token-quota-exceeded":   {ErrQuotaExceeded, ErrRateLimited},
	"storage-quota-exceeded": {ErrQuotaExceeded, ErrRateLimited},
	"internal":               {ErrInternal},
	"unavailable":            {ErrUnavailable},
}

// A Problem is an error answer of the hub: its RFC 9457 problem document,
// exactly as the hub sent it, with the request it answered, how often the
// client sent it, and the Retry-After the hub asked for. Branch on it with
// errors.Is and the sentinels above, or on Type, never on Title or Detail.
// An error answer that is not a problem document (from a proxy, say)
// becomes a Problem with an empty Type, the answer's status, the start of
// its body as Detail and its X-Request-Id header as RequestID, matched by
// its status.
type Problem struct {
	// Problem is the document: Type is the stable URI of the kind of
	// problem, "urn:sparr:problem:<slug>"; Detail says what was wrong and
	// what to do about it; RequestID finds the request in the hub's logs;
	// Errors point at the fields at fault.
	protocol.Problem

	// Op is the request that was answered, "POST /v1/flags".
	Op string `json:"-"`
	// RetryAfter is how long the hub asked the client to wait (429, 503);
	// zero if it did not say.
	RetryAfter time.Duration `json:"-"`
	// Attempts is how many times the client sent the request; more than 1
	// when it retried (see [Retry]).
	Attempts int `json:"-"`

	// status is the answer's HTTP status, which the client acts on (the
	// document's Status should be the same).
	status int
	// requestID is the answer's X-Request-Id header.
	requestID string
	// hasRetryAfter says the answer had a Retry-After header; toldWhen
	// says it was one the client could read, so that RetryAfter, even
	// zero, is what the hub asked for.
	hasRetryAfter, toldWhen bool
}

// Error returns the request, title, status, detail and request id, and how
// many attempts were made if more than one.
func (p *Problem) Error() string {
	var b strings.Builder
	if p.Op != "" {
		b.WriteString(p.Op + ": ")
	}
	status := p.StatusCode()
	title := p.Title
	if title == "" {
		title = http.StatusText(status)
	}
	fmt.Fprintf(&b, "%s (%d)", title, status)
	if p.Detail != "" {
		b.WriteString(": " + p.Detail)
	}
	if id := cmp.Or(p.RequestID, p.requestID); id != "" {
		b.WriteString(" [request id " + id + "]")
	}
	if p.Attempts > 1 {
		fmt.Fprintf(&b, " (after %d attempts)", p.Attempts)
	}
	return b.String()
}

// Slug returns the part of Type after "urn:sparr:problem:", such as
// "state-conflict".
func (p *Problem) Slug() string { return strings.TrimPrefix(p.Type, "urn:sparr:problem:") }

// StatusCode returns the answer's HTTP status (the document's Status
// only if the answer's is unknown), which the client acts on.
func (p *Problem) StatusCode() int { return cmp.Or(p.status, p.Status) }

// Is reports whether the problem is of the kind target names.
func (p *Problem) Is(target error) bool {
	if kinds, ok := problemKinds[p.Slug()]; ok {
		for _, k := range kinds {
			if k == target {
				return true
			}
		}
		return false
	}
	// Not a problem type of ours: judge by the status alone.
	switch status := p.StatusCode(); {
	case status == http.StatusTooManyRequests:
		return target == ErrRateLimited
	case status == http.StatusBadGateway || status == http.StatusServiceUnavailable || status == http.StatusGatewayTimeout:
		return target == ErrUnavailable
	case status >= 500:
		return target == ErrInternal
	case status == http.StatusUnauthorized:
		return target == ErrUnauthenticated
	case status == http.StatusForbidden:
		return target == ErrForbidden
	case status == http.StatusNotFound:
		return target == ErrNotFound
	case status >= 400:
		return target == ErrBadRequest
	}
	return false
}

// maxProblemSize bounds how much of an error answer is read.
const maxProblemSize = 64 << 10

// readProblem turns an error answer into a Problem, and closes its body.
func readProblem(op string, resp *http.Response) *Problem {
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, maxProblemSize))
	return parseProblem(op, resp.StatusCode, resp.Header, body)
}

// parseProblem reads an error answer: its problem document, if it is one
// (application/problem+json, or application/json, that decodes, with a
// type or a title), kept as sent; otherwise the answer's status, the start
// of its body and its request id header.
func parseProblem(op string, status int, header http.Header, body []byte) *Problem {
	p := &Problem{Op: op, status: status, requestID: header.Get("X-Request-Id")}
	mt, _, _ := mime.ParseMediaType(header.Get("Content-Type"))
	if mt == protocol.ProblemContentType || mt == "application/json" {
		if err := json.Unmarshal(body, &p.Problem); err != nil {
			p.Problem = protocol.Problem{}
		}
	}
	if p.Type == "" && p.Detail == "" {
		p.Detail = strings.Join(strings.Fields(string(body)), " ")
		if len(p.Detail) > 200 {
			p.Detail = p.Detail[:200] + "…"
		}
	}
	if p.Type == "" && p.Title == "" {
		// Not a problem document: what the answer itself says.
		p.Status, p.RequestID = status, cmp.Or(p.RequestID, p.requestID)
	}
	v := header.Get("Retry-After")
	p.RetryAfter, p.toldWhen = protocol.ParseRetryAfter(v, time.Now())
	p.hasRetryAfter = v != ""
	return p
}

// ErrUntrustedRecord is returned, inside a [*RecordError], when a record
// the hub sent does not verify against its published keys.
var ErrUntrustedRecord = errors.New("record does not verify against the hub's keys")

// A RecordError is a record that did not verify: a signature that does not
// hold under the hub's published keys, a key id it does not publish, a
// header or claim a record may not carry, another issuer, or a record that
// does not belong where it was sent (another token's flag, another event
// type than announced). It is a security failure: the record was not used.
// It carries the evidence, the record exactly as received, so that it can
// be shown to the operator or a regulator. errors.Is(err,
// [ErrUntrustedRecord]) holds, and so does errors.Is with the
// [protocol.VerificationError] sentinel underneath when there is one.
type RecordError struct {
	// JWS is the record as received.
	JWS string
	// Err says what was wrong: usually a *protocol.VerificationError.
	Err error
	// RetryAfter is set for a record signed with a key the client does
	// not hold when it fetched the hub's keys less than a minute ago (see
	// [KeysConfig]): after this long it will fetch them again, and a
	// record under a key the hub has just added will verify.
	RetryAfter time.Duration
}

func (e *RecordError) Error() string { return "untrusted record: " + e.Err.Error() }

// Unwrap returns the cause.
func (e *RecordError) Unwrap() error { return e.Err }

// Is makes every RecordError an [ErrUntrustedRecord].
func (e *RecordError) Is(target error) bool { return target == ErrUntrustedRecord }
