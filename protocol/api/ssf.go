package api

// The OpenID Shared Signals Framework 1.0 (SSF) transmitter: the hub's
// metadata, a member's stream, its status, and the poll exchange of RFC
// 8936. A member has at most one stream; it is the member's webhook
// endpoint, seen through SSF.

// SSFSpecVersion is the SSF version the hub implements.
const SSFSpecVersion = "1_0"

// An SSFConfiguration is the hub's Transmitter Configuration Metadata, at
// /.well-known/ssf-configuration.
type SSFConfiguration struct {
	SpecVersion              string                `json:"spec_version"`
	Issuer                   string                `json:"issuer"`
	JWKSURI                  string                `json:"jwks_uri"`
	DeliveryMethodsSupported []string              `json:"delivery_methods_supported"`
	ConfigurationEndpoint    string                `json:"configuration_endpoint"`
	StatusEndpoint           string                `json:"status_endpoint"`
	VerificationEndpoint     string                `json:"verification_endpoint"`
	AuthorizationSchemes     []AuthorizationScheme `json:"authorization_schemes"`
	// DefaultSubjects is "ALL": a stream carries every event the member's
	// roles entitle it to; there are no subjects to add or remove.
	DefaultSubjects string `json:"default_subjects"`
}

// An AuthorizationScheme names how a receiver authenticates to the stream
// management API and the poll endpoint.
type AuthorizationScheme struct {
	SpecURN string `json:"spec_urn"`
}

// A StreamDelivery is a stream's delivery method and where it delivers:
// the receiver's URL for push (urn:ietf:rfc:8935), the hub's poll
// endpoint for poll (urn:ietf:rfc:8936).
type StreamDelivery struct {
	Method      string `json:"method"`
	EndpointURL string `json:"endpoint_url,omitempty"`
	// AuthorizationHeader, for push, is sent as the Authorization header
	// of every delivery. The hub keeps it and never shows it again.
	AuthorizationHeader string `json:"authorization_header,omitempty"`
}

// A Stream is a member's SSF stream configuration.
type Stream struct {
	StreamID        string         `json:"stream_id"`
	Iss             string         `json:"iss"`
	Aud             string         `json:"aud"`
	EventsSupported []string       `json:"events_supported"`
	EventsRequested []string       `json:"events_requested,omitempty"`
	EventsDelivered []string       `json:"events_delivered"`
	Delivery        StreamDelivery `json:"delivery"`
	Description     string         `json:"description,omitempty"`
	// MinVerificationInterval is the fewest seconds between two
	// verification requests the hub answers without a 429.
	MinVerificationInterval int `json:"min_verification_interval,omitempty"`
}

// A StreamRequest is the body of a create (POST), update (PATCH) or
// replace (PUT) of a stream. The receiver-supplied properties are
// pointers, so that an update changes only those present; the
// transmitter-supplied ones, if present, must match the stream's.
type StreamRequest struct {
	StreamID        string          `json:"stream_id,omitempty"`
	Delivery        *StreamDelivery `json:"delivery,omitempty"`
	EventsRequested *[]string       `json:"events_requested,omitempty"`
	Description     *string         `json:"description,omitempty"`

	Iss                     *string   `json:"iss,omitempty"`
	Aud                     any       `json:"aud,omitempty"`
	EventsSupported         *[]string `json:"events_supported,omitempty"`
	EventsDelivered         *[]string `json:"events_delivered,omitempty"`
	MinVerificationInterval *int      `json:"min_verification_interval,omitempty"`
}

// The statuses of a stream.
const (
	StreamEnabled  = "enabled"
	StreamPaused   = "paused"
	StreamDisabled = "disabled"
)

// A StreamStatus is a stream's status: the answer of GET on the status
// endpoint, and the body of POST to it.
type StreamStatus struct {
	StreamID string `json:"stream_id"`
	Status   string `json:"status"`
	Reason   string `json:"reason,omitempty"`
}

// A VerificationRequest asks the hub to send a verification event on the
// stream, echoing State.
type VerificationRequest struct {
	StreamID string `json:"stream_id"`
	State    string `json:"state,omitempty"`
}

// A PollRequest is the body of an RFC 8936 poll: the SETs acknowledged,
// those the receiver could not accept (by jti), how many to return at
// most, and whether to answer at once when there are none.
type PollRequest struct {
	Ack               []string          `json:"ack,omitempty"`
	SetErrs           map[string]SetErr `json:"setErrs,omitempty"`
	MaxEvents         *int              `json:"maxEvents,omitempty"`
	ReturnImmediately bool              `json:"returnImmediately,omitempty"`
}

// A SetErr is why the receiver did not accept a SET (RFC 8935, section
// 2.3): an error code such as "invalid_key", and a description.
type SetErr struct {
	Err         string `json:"err"`
	Description string `json:"description,omitempty"`
}

// A PollResponse is the answer of a poll: SETs by jti, and whether more
// wait.
type PollResponse struct {
	Sets          map[string]string `json:"sets"`
	MoreAvailable bool              `json:"moreAvailable,omitempty"`
}
