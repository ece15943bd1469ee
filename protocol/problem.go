package protocol

import (
	"fmt"
	"net/http"
	"strings"
)

// ProblemContentType is the media type of an error answer (RFC 9457).
const ProblemContentType = "application/problem+json"

// A ProblemType is one kind of error the hub answers with: a stable "type"
// URI, a short title, and the HTTP status that goes with it. The client maps
// the URI back to a typed error, so URIs never change meaning.
type ProblemType struct {
	URI    string
	Title  string
	Status int
}

const problemPrefix = "urn:sparr:problem:"

func problemType(slug, title string, status int) ProblemType {
	return ProblemType{URI: problemPrefix + slug, Title: title, Status: status}
}

// The catalogue of problem types.
var (
	ProblemMalformedRequest     = problemType("malformed-request", "Malformed request", http.StatusBadRequest)
	ProblemInvalidToken         = problemType("invalid-token", "Invalid identity token", http.StatusBadRequest)
	ProblemInvalidTokenRequest  = problemType("invalid-token-request", "Invalid token request", http.StatusBadRequest)
	ProblemInvalidSubmission    = problemType("invalid-submission", "Invalid submission", http.StatusBadRequest)
	ProblemUnauthenticated      = problemType("unauthenticated", "Authentication required", http.StatusUnauthorized)
	ProblemBearerExpired        = problemType("bearer-expired", "Bearer token expired", http.StatusUnauthorized)
	ProblemForbidden            = problemType("forbidden", "Role not granted", http.StatusForbidden)
	ProblemMemberSuspended      = problemType("member-suspended", "Member suspended", http.StatusForbidden)
	ProblemWrongSigner          = problemType("wrong-signer", "Submission signed by another member", http.StatusForbidden)
	ProblemSuspicionsDisabled   = problemType("suspicions-disabled", "Suspicion sharing not enabled", http.StatusForbidden)
	ProblemNotFound             = problemType("not-found", "Not found", http.StatusNotFound)
	ProblemMethodNotAllowed     = problemType("method-not-allowed", "Method not allowed", http.StatusMethodNotAllowed)
	ProblemSubmissionConflict   = problemType("submission-conflict", "Submission id already used", http.StatusConflict)
	ProblemStateConflict        = problemType("state-conflict", "Not possible in the current state", http.StatusConflict)
	ProblemCursorExpired        = problemType("cursor-expired", "Feed cursor older than the retention window", http.StatusGone)
	ProblemPayloadTooLarge      = problemType("payload-too-large", "Request body too large", http.StatusRequestEntityTooLarge)
	ProblemUnsupportedMediaType = problemType("unsupported-media-type", "Unsupported media type", http.StatusUnsupportedMediaType)
	ProblemValidation           = problemType("validation-failed", "Request not acceptable under the hub's policy", http.StatusUnprocessableEntity)
	ProblemInvalidConsent       = problemType("invalid-consent", "Consent record not acceptable", http.StatusUnprocessableEntity)
	ProblemEndpointRefused      = problemType("endpoint-refused", "Webhook URL not allowed", http.StatusUnprocessableEntity)
	ProblemRateLimited          = problemType("rate-limited", "Too many requests", http.StatusTooManyRequests)
	ProblemTokenQuota           = problemType("token-quota-exceeded", "Daily token quota spent", http.StatusTooManyRequests)
	ProblemStorageQuota         = problemType("storage-quota-exceeded", "Daily storage quota spent", http.StatusTooManyRequests)
	ProblemInternal             = problemType("internal", "Internal error", http.StatusInternalServerError)
	ProblemUnavailable          = problemType("unavailable", "Temporarily unavailable", http.StatusServiceUnavailable)
)

// ProblemTypes returns the whole catalogue.
func ProblemTypes() []ProblemType {
	return []ProblemType{
		ProblemMalformedRequest, ProblemInvalidToken, ProblemInvalidTokenRequest, ProblemInvalidSubmission,
		ProblemUnauthenticated, ProblemBearerExpired, ProblemForbidden, ProblemMemberSuspended,
		ProblemWrongSigner, ProblemSuspicionsDisabled, ProblemNotFound, ProblemMethodNotAllowed,
		ProblemSubmissionConflict, ProblemStateConflict, ProblemCursorExpired, ProblemPayloadTooLarge,
		ProblemUnsupportedMediaType, ProblemValidation, ProblemInvalidConsent, ProblemEndpointRefused,
		ProblemRateLimited, ProblemTokenQuota, ProblemStorageQuota, ProblemInternal, ProblemUnavailable,
	}
}

// LookupProblemType returns the catalogue entry for a "type" URI.
func LookupProblemType(uri string) (ProblemType, bool) {
	for _, p := range ProblemTypes() {
		if p.URI == uri {
			return p, true
		}
	}
	return ProblemType{}, false
}

// Slug returns the last part of the URI, "malformed-request" for example.
func (t ProblemType) Slug() string { return strings.TrimPrefix(t.URI, problemPrefix) }

// A Problem is an RFC 9457 problem document: what the hub answers for every
// error. Detail says what was wrong and what to do about it; RequestID
// matches the hub's logs. Errors, if any, point at individual fields.
type Problem struct {
	Type      string         `json:"type"`
	Title     string         `json:"title"`
	Status    int            `json:"status"`
	Detail    string         `json:"detail,omitempty"`
	Instance  string         `json:"instance,omitempty"`
	RequestID string         `json:"request_id,omitempty"`
	Errors    []ProblemField `json:"errors,omitempty"`
}

// A ProblemField points at one field of the request and says what is wrong
// with it. Pointer is an RFC 6901 JSON Pointer into the body the member
// sent ("/request/subject", "/checks/3/purpose"; for a signed submission,
// into the JWS payload); Parameter names a query parameter instead. One of
// the two is set.
type ProblemField struct {
	Pointer   string `json:"pointer,omitempty"`
	Parameter string `json:"parameter,omitempty"`
	Detail    string `json:"detail"`
}

// NewProblem returns a problem of type t with the given detail.
func NewProblem(t ProblemType, format string, args ...any) *Problem {
	return &Problem{Type: t.URI, Title: t.Title, Status: t.Status, Detail: fmt.Sprintf(format, args...)}
}

// Error makes a Problem an error: "<title> (<status>): <detail>".
func (p *Problem) Error() string {
	msg := fmt.Sprintf("%s (%d)", p.Title, p.Status)
	if p.Detail != "" {
		msg += ": " + p.Detail
	}
	return msg
}
