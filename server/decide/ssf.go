package decide

import (
	"slices"
	"strings"
	"time"
	"unicode"

	"github.com/sparr-dev/sparr/federation/members"
	"github.com/sparr-dev/sparr/federation/webhook"
	"github.com/sparr-dev/sparr/protocol"
	"github.com/sparr-dev/sparr/protocol/api"
	"github.com/sparr-dev/sparr/server/state"
)

// A member's webhook endpoint seen as its one OpenID Shared Signals
// Framework stream. The stream's id is the member's id; its "aud" is
// [StreamAudience]. Records are signed once for every member and carry no
// "aud" (see docs/delivery.md): the stream's aud names the receiver in the
// stream's configuration, and the delivery (its webhook-id, or the
// member's own poll) says whom a SET went to.

// MaxStreamText bounds a stream's description, a status reason and a
// verification state.
const MaxStreamText = 256

// StreamAudience is the "aud" of member id's stream.
func StreamAudience(id string) string { return "urn:sparr:member:" + id }

// StreamEvents returns the event types member m can receive, in the order
// of [protocol.EventTypes]: those its roles entitle it to, those the
// hub sends to the member that placed a flag (reminders, access notices)
// or reported a suspicion, and the denials of a check sent to the member
// that made it.
// Verification events are not listed: every stream gets them.
func StreamEvents(m *api.Member) []protocol.EventType {
	var out []protocol.EventType
	for _, t := range protocol.EventTypes() {
		switch {
		case webhook.Verifies(t):
		case members.Entitled(m, "", t),
			(t == protocol.EventFlagExpiring || t == protocol.EventSubjectChecked) && m.HasRole(api.RoleFlag),
			t == protocol.EventCheckDenied && m.HasRole(api.RoleCheck),
			// Recalls go between the members that hold and pay from accounts:
			// any member role of a payment service provider.
			(t == protocol.EventRecallRequested || t == protocol.EventRecallAcknowledged || t == protocol.EventRecallOutcome) &&
				(m.HasRole(api.RoleFlag) || m.HasRole(api.RoleSuspicion) || m.HasRole(api.RoleCheck)),
			(t == protocol.EventSuspicionReported || t == protocol.EventSuspicionRetracted || t == protocol.EventSuspicionExpired) && m.HasRole(api.RoleSuspicion),
			isDisputeEvent(t) && (m.HasRole(api.RoleFlag) || m.HasRole(api.RoleCheck) || m.HasRole(api.RoleSuspicion)):
			out = append(out, t)
		}
	}
	return out
}

// isDisputeEvent reports whether t is one of the events of a dispute, which
// go to its two members: any member that may act for a consumer (flag or
// check role) or report suspicions may be one.
func isDisputeEvent(t protocol.EventType) bool {
	switch t {
	case protocol.EventDisputeOpened, protocol.EventDisputeAcknowledged, protocol.EventDisputeResolved, protocol.EventDisputeLapsed:
		return true
	}
	return false
}

// A StreamSpec is what a receiver sets of its stream, checked: how it is
// delivered, the events it asked for, and its description.
type StreamSpec struct {
	Delivery      string // webhook.DeliveryPush or webhook.DeliveryPoll
	URL           string // the receiver's URL, for push
	Authorization string // for push: sent as the Authorization header
	Requested     []string
	Description   string
}

// StreamRequestSpec reads the receiver-supplied properties of a create
// (old nil) or replace request, or of an update (patch) against the
// stream as it is (old); pollURL is the hub's poll endpoint. It checks that
// the transmitter-supplied properties present match the stream's. The
// push URL is returned as given: the caller checks it against the hub's
// target policy. Problems are 400s (malformed-request), as SSF has them.
func StreamRequestSpec(m *api.Member, req *api.StreamRequest, old *webhook.Endpoint, patch bool, issuer, pollURL string) (StreamSpec, error) {
	var spec StreamSpec
	if patch && old != nil {
		spec = StreamSpec{Delivery: old.Delivery, URL: old.URL, Authorization: old.Authorization, Requested: old.Requested, Description: old.Description}
		if spec.Delivery == "" {
			spec.Delivery = webhook.DeliveryPush
		}
	}
	if err := checkSupplied(m, req, old, issuer); err != nil {
		return spec, err
	}
	switch {
	case req.Delivery != nil:
		d := req.Delivery
		switch d.Method {
		case webhook.DeliveryPush:
			if d.EndpointURL == "" {
				return spec, FieldProblem(protocol.ProblemMalformedRequest, "delivery.endpoint_url", "push delivery (urn:ietf:rfc:8935) needs the receiver's endpoint_url")
			}
			spec.Delivery, spec.URL, spec.Authorization = d.Method, d.EndpointURL, d.AuthorizationHeader
			if len(spec.Authorization) > 4096 || strings.ContainsAny(spec.Authorization, "\r\n") {
				return spec, FieldProblem(protocol.ProblemMalformedRequest, "delivery.authorization_header", "want one header value of at most 4096 bytes")
			}
		case webhook.DeliveryPoll:
			if d.EndpointURL != "" && d.EndpointURL != pollURL {
				return spec, FieldProblem(protocol.ProblemMalformedRequest, "delivery.endpoint_url", "the hub supplies the poll endpoint_url (%s); leave it out", pollURL)
			}
			if d.AuthorizationHeader != "" {
				return spec, FieldProblem(protocol.ProblemMalformedRequest, "delivery.authorization_header", "authorization_header is for push delivery; a poll authenticates with the member's bearer token")
			}
			spec.Delivery, spec.URL, spec.Authorization = d.Method, "", ""
		default:
			return spec, FieldProblem(protocol.ProblemMalformedRequest, "delivery.method", "%s is not a delivery method of this hub; use urn:ietf:rfc:8935 (push) or urn:ietf:rfc:8936 (poll)", Quote(d.Method))
		}
	case !patch || old == nil:
		// No delivery: SSF says poll.
		spec.Delivery, spec.URL, spec.Authorization = webhook.DeliveryPoll, "", ""
	}
	if req.EventsRequested != nil {
		spec.Requested = slices.Clone(*req.EventsRequested)
	} else if !patch {
		spec.Requested = nil
	}
	if req.Description != nil {
		spec.Description = *req.Description
	} else if !patch {
		spec.Description = ""
	}
	if err := checkStreamText("description", spec.Description); err != nil {
		return spec, err
	}
	if len(spec.Requested) > 64 {
		return spec, FieldProblem(protocol.ProblemMalformedRequest, "events_requested", "%d event types, want at most 64", len(spec.Requested))
	}
	if _, err := streamEvents(m, spec.Requested); err != nil {
		return spec, err
	}
	return spec, nil
}

// checkSupplied checks the transmitter-supplied properties of a request:
// each present must be the stream's.
func checkSupplied(m *api.Member, req *api.StreamRequest, old *webhook.Endpoint, issuer string) error {
	if req.MinVerificationInterval != nil && *req.MinVerificationInterval != 0 {
		return FieldProblem(protocol.ProblemMalformedRequest, "min_verification_interval", "is set by the hub; leave it out")
	}
	if req.Iss != nil && *req.Iss != issuer {
		return FieldProblem(protocol.ProblemMalformedRequest, "iss", "%s is not this hub (%s)", Quote(*req.Iss), issuer)
	}
	if req.Aud != nil {
		aud := StreamAudience(m.ID)
		ok := req.Aud == aud
		if list, isList := req.Aud.([]any); isList {
			ok = len(list) == 1 && list[0] == aud
		}
		if !ok {
			return FieldProblem(protocol.ProblemMalformedRequest, "aud", "the stream's aud is %s and cannot change", aud)
		}
	}
	supported := typeNames(StreamEvents(m))
	if req.EventsSupported != nil && !sameSet(*req.EventsSupported, supported) {
		return FieldProblem(protocol.ProblemMalformedRequest, "events_supported", "does not match the events this hub sends the member: %s", strings.Join(supported, ", "))
	}
	if req.EventsDelivered != nil {
		var delivered []string
		if old != nil && old.Delivery != "" {
			delivered = typeNames(deliveredOf(m, old))
		}
		if !sameSet(*req.EventsDelivered, delivered) {
			return FieldProblem(protocol.ProblemMalformedRequest, "events_delivered", "does not match the events the stream delivers now; read the stream and send its events_delivered, or leave it out")
		}
	}
	return nil
}

// streamEvents returns the event types to deliver for events requested by
// URI: those the member can receive; none requested means all. URIs the
// hub does not know are ignored, as SSF asks; a request of nothing the
// member can receive is refused, since such a stream would carry nothing.
func streamEvents(m *api.Member, requested []string) ([]protocol.EventType, error) {
	if len(requested) == 0 {
		return nil, nil
	}
	can := StreamEvents(m)
	var out []protocol.EventType
	for _, s := range requested {
		t := protocol.EventType(s)
		if slices.Contains(can, t) && !slices.Contains(out, t) {
			out = append(out, t)
		}
	}
	if len(out) == 0 {
		return nil, FieldProblem(protocol.ProblemMalformedRequest, "events_requested", "none of these is an event the hub sends this member; events_supported lists them: %s", strings.Join(typeNames(can), ", "))
	}
	if len(out) == len(can) {
		return nil, nil // every event, as an endpoint with no list
	}
	return out, nil
}

// deliveredOf returns the event types endpoint e delivers to member m.
func deliveredOf(m *api.Member, e *webhook.Endpoint) []protocol.EventType {
	can := StreamEvents(m)
	if len(e.Events) == 0 {
		return can
	}
	var out []protocol.EventType
	for _, t := range can {
		if slices.Contains(e.Events, t) {
			out = append(out, t)
		}
	}
	return out
}

// RegisterStream decides member m's creation (old nil or disabled) or
// change of its stream to spec; URL is checked against the target policy
// already. A new stream, or one whose delivery changes, gets the SSF
// verification event and counts as verified once it is delivered (for a
// poll stream: acknowledged).
func (d *Decider) RegisterStream(m *api.Member, spec StreamSpec, old *webhook.Endpoint, now time.Time) (*state.ChangeEndpoint, error) {
	events, err := streamEvents(m, spec.Requested)
	if err != nil {
		return nil, err
	}
	ch := state.EndpointChange{
		Op: state.EndpointRegister, Member: m.ID, URL: spec.URL, Events: events,
		Delivery: spec.Delivery, Authorization: spec.Authorization, Requested: spec.Requested, Description: spec.Description,
	}
	return d.register(m, ch, old, now)
}

// StreamView is endpoint e as member m's SSF stream configuration.
func StreamView(m *api.Member, e *webhook.Endpoint, issuer, pollURL string) *api.Stream {
	s := &api.Stream{
		StreamID: m.ID, Iss: issuer, Aud: StreamAudience(m.ID),
		EventsSupported: typeNames(StreamEvents(m)), EventsRequested: e.Requested,
		EventsDelivered: typeNames(deliveredOf(m, e)), Description: e.Description,
		MinVerificationInterval: int(MinVerificationInterval.Seconds()),
	}
	switch e.Delivery {
	case webhook.DeliveryPoll:
		s.Delivery = api.StreamDelivery{Method: webhook.DeliveryPoll, EndpointURL: pollURL}
	default:
		s.Delivery = api.StreamDelivery{Method: webhook.DeliveryPush, EndpointURL: e.URL}
	}
	return s
}

// MinVerificationInterval is the least time between two verification
// requests on a stream that the hub answers.
const MinVerificationInterval = 10 * time.Second

// StreamStatusOf is endpoint e's SSF status: enabled while it is
// unverified or active, paused, or disabled.
func StreamStatusOf(e *webhook.Endpoint) api.StreamStatus {
	s := api.StreamStatus{StreamID: e.Member, Status: api.StreamEnabled, Reason: e.Reason}
	switch e.Status {
	case api.EndpointPaused:
		s.Status = api.StreamPaused
	case api.EndpointDisabled:
		s.Status = api.StreamDisabled
	}
	return s
}

// SetStreamStatus decides member m's change of its stream's status:
// enabled resumes a paused stream, paused holds its events, disabled
// removes it (and drops what is queued). A status the stream has already
// needs no command: nil, nil.
func (d *Decider) SetStreamStatus(m *api.Member, e *webhook.Endpoint, req api.StreamStatus, now time.Time) (*state.ChangeEndpoint, error) {
	if err := checkStreamText("reason", req.Reason); err != nil {
		return nil, err
	}
	if e == nil || e.Status == api.EndpointDisabled {
		return nil, NoStream(m.ID)
	}
	current := StreamStatusOf(e).Status
	if req.Status == current {
		return nil, nil
	}
	switch req.Status {
	case api.StreamEnabled:
		return d.ResumeEndpoint(m, e, now)
	case api.StreamPaused:
		reason := req.Reason
		if reason == "" {
			reason = "paused by the receiver"
		}
		return d.endpointChange(m, e, protocol.LogEndpointHeld, state.EndpointChange{Op: state.EndpointPause, Reason: reason}, now)
	case api.StreamDisabled:
		reason := req.Reason
		if reason == "" {
			reason = "disabled by the receiver"
		}
		return d.endpointChange(m, e, protocol.LogEndpointRemoved, state.EndpointChange{Op: state.EndpointRemove, Reason: reason}, now)
	}
	return nil, FieldProblem(protocol.ProblemMalformedRequest, "status", "%s is not a stream status; want enabled, paused or disabled", Quote(req.Status))
}

// VerifyStream decides member m's request for a verification event on its
// stream e, echoing state. last is when the member last asked (zero: not
// since the hub started); a request sooner than
// [MinVerificationInterval] after it is refused.
func (d *Decider) VerifyStream(m *api.Member, e *webhook.Endpoint, stateValue string, last, now time.Time) (*state.ChangeEndpoint, error) {
	if err := checkStreamText("state", stateValue); err != nil {
		return nil, err
	}
	if e == nil || e.Status == api.EndpointDisabled {
		return nil, NoStream(m.ID)
	}
	if wait := last.Add(MinVerificationInterval).Sub(now); wait > 0 {
		return nil, problemf(protocol.ProblemRateLimited, "a verification was asked for %s ago; ask again in %s (min_verification_interval)", now.Sub(last).Round(time.Second), wait.Round(time.Second))
	}
	rec, err := d.signAbout(d.id(), protocol.StreamSubject(m.ID), m.ID, protocol.StreamVerification{State: stateValue}, second(now))
	if err != nil {
		return nil, err
	}
	cmd, err := d.endpointChange(m, e, protocol.LogEndpointVerify, state.EndpointChange{Op: state.EndpointVerify}, now)
	if err != nil {
		return nil, err
	}
	cmd.Record = rec
	return cmd, nil
}

// NoStream is the problem for a member without a stream (or asking about
// another's).
func NoStream(memberID string) *protocol.Problem {
	return problemf(protocol.ProblemNotFound, "member %q has no SSF stream; create one with POST on the configuration endpoint", memberID)
}

// checkStreamText checks a receiver's free text: at most [MaxStreamText]
// bytes of printable characters.
func checkStreamText(field, s string) error {
	if len(s) > MaxStreamText {
		return FieldProblem(protocol.ProblemMalformedRequest, field, "%d bytes, want at most %d", len(s), MaxStreamText)
	}
	for _, r := range s {
		if !unicode.IsPrint(r) {
			return FieldProblem(protocol.ProblemMalformedRequest, field, "holds a control character")
		}
	}
	return nil
}

func typeNames(ts []protocol.EventType) []string {
	out := make([]string, len(ts))
	for i, t := range ts {
		out[i] = string(t)
	}
	return out
}

// sameSet reports whether a and b hold the same strings.
func sameSet(a, b []string) bool {
	for _, s := range a {
		if !slices.Contains(b, s) {
			return false
		}
	}
	for _, s := range b {
		if !slices.Contains(a, s) {
			return false
		}
	}
	return true
}
