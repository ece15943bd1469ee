package decide

import (
	"fmt"
	"slices"
	"time"

	"github.com/sparr-dev/sparr/federation/webhook"
	"github.com/sparr-dev/sparr/protocol"
	"github.com/sparr-dev/sparr/protocol/api"
	"github.com/sparr-dev/sparr/server/state"
)

// EndpointEvents reads the event types an endpoint request subscribes to,
// by URN or short name, each once; none means every event. The
// verification event cannot be asked for: every endpoint gets it.
func EndpointEvents(req api.EndpointRequest) ([]protocol.EventType, error) {
	var events []protocol.EventType
	for i, s := range req.Events {
		t, err := protocol.ParseEventType(s)
		if err != nil || t == protocol.EventVerification {
			return nil, FieldProblem(protocol.ProblemValidation, fmt.Sprintf("events[%d]", i), "%s is not an event type to subscribe to", Quote(s))
		}
		if !slices.Contains(events, t) {
			events = append(events, t)
		}
	}
	return events, nil
}

// RegisterEndpoint decides member m's registration of its webhook endpoint
// at url (checked against the hub's target policy already) for events.
// old is the endpoint the hub holds (nil: none). A new endpoint (none, or
// a disabled one) gets a new whsec_ secret, returned here to be shown
// once; a new endpoint, or one whose URL changes, gets a verification
// event and counts as verified once that is delivered.
func (d *Decider) RegisterEndpoint(m *api.Member, url string, events []protocol.EventType, old *webhook.Endpoint, now time.Time) (_ *state.ChangeEndpoint, secret string, _ error) {
	cmd, err := d.register(m, state.EndpointChange{Op: state.EndpointRegister, Member: m.ID, URL: url, Events: events}, old, now)
	if err != nil {
		return nil, "", err
	}
	if cmd.Change.Secret != nil {
		secret = cmd.Change.Secret.Secret
	}
	return cmd, secret, nil
}

// register decides the registration ch of member m's endpoint, made
// through the endpoint API or as an SSF stream (ch.Delivery set), against
// old (nil: none). A new endpoint (none, or a disabled one) gets a new
// whsec_ secret; a new endpoint, or one whose URL changes, gets a
// verification event: the hub's own, or SSF's for a stream.
func (d *Decider) register(m *api.Member, ch state.EndpointChange, old *webhook.Endpoint, now time.Time) (*state.ChangeEndpoint, error) {
	now = now.UTC()
	fresh := old == nil || old.Status == api.EndpointDisabled
	if fresh {
		ws, err := protocol.GenerateWebhookSecret(d.rand())
		if err != nil {
			return nil, err
		}
		ch.Secret = &webhook.EndpointSecret{Secret: ws.Encode(), CreatedAt: now}
	} else {
		ch.Verify = old.URL != ch.URL || old.Delivery != ch.Delivery
	}
	verify := fresh || ch.Verify
	var rec *state.Record
	if verify {
		var err error
		if ch.Delivery != "" {
			rec, err = d.signAbout(d.id(), protocol.StreamSubject(m.ID), m.ID, protocol.StreamVerification{}, second(now))
		} else {
			rec, err = d.sign(d.id(), nil, m.ID, "", protocol.Verification{State: d.id()}, second(now))
		}
		if err != nil {
			return nil, err
		}
	}
	return &state.ChangeEndpoint{
		Head: d.head(m.ID, protocol.LogEndpointRegistered, now, nil, nil,
			protocol.LogAttr{Key: "verification", Value: map[bool]string{true: "sent", false: "none"}[verify]}),
		Change: ch, Record: rec,
	}, nil
}

// NoEndpoint is the problem for a member without a webhook endpoint.
func NoEndpoint(memberID string) *protocol.Problem {
	return problemf(protocol.ProblemNotFound, "member %q has no webhook endpoint; register one with PUT /v1/members/self/endpoint", memberID)
}

// endpointChange is the command of a change ch to member m's endpoint e
// (nil: none).
func (d *Decider) endpointChange(m *api.Member, e *webhook.Endpoint, action protocol.LogAction, ch state.EndpointChange, now time.Time) (*state.ChangeEndpoint, error) {
	if e == nil {
		return nil, NoEndpoint(m.ID)
	}
	ch.Member = m.ID
	return &state.ChangeEndpoint{Head: d.head(m.ID, action, now.UTC(), nil, nil), Change: ch}, nil
}

// RotateSecret decides member m's rotation of its endpoint e's signing
// secret: the new one, returned to be shown once, signs at once; the one
// it replaces keeps signing for the policy's SecretOverlap, until the time
// returned, so the receiver can switch without losing a delivery. An older
// secret still in the overlap of an earlier rotation stops at once (see
// [state.EndpointRotate]).
func (d *Decider) RotateSecret(m *api.Member, e *webhook.Endpoint, now time.Time) (_ *state.ChangeEndpoint, secret string, until time.Time, _ error) {
	now = now.UTC()
	ws, err := protocol.GenerateWebhookSecret(d.rand())
	if err != nil {
		return nil, "", time.Time{}, err
	}
	secret, until = ws.Encode(), now.Add(d.Policy.SecretOverlap)
	cmd, err := d.endpointChange(m, e, protocol.LogEndpointSecretRotated, state.EndpointChange{
		Op: state.EndpointRotate, Secret: &webhook.EndpointSecret{Secret: secret, CreatedAt: now}, Until: until}, now)
	return cmd, secret, until, err
}

// ResumeEndpoint decides member m's resumption of its paused endpoint e;
// delivery starts again from the oldest queued event.
func (d *Decider) ResumeEndpoint(m *api.Member, e *webhook.Endpoint, now time.Time) (*state.ChangeEndpoint, error) {
	if e != nil && e.Status != api.EndpointPaused {
		return nil, problemf(protocol.ProblemStateConflict, "the endpoint is %s, not paused", e.Status)
	}
	return d.endpointChange(m, e, protocol.LogEndpointResumed, state.EndpointChange{Op: state.EndpointResume}, now)
}

// RemoveEndpoint decides member m's removal of its endpoint e: nothing more
// is queued or delivered; the feed still serves the member.
func (d *Decider) RemoveEndpoint(m *api.Member, e *webhook.Endpoint, now time.Time) (*state.ChangeEndpoint, error) {
	return d.endpointChange(m, e, protocol.LogEndpointRemoved, state.EndpointChange{Op: state.EndpointRemove, Reason: "removed by the member"}, now)
}

// EndpointView is endpoint e as the API shows it at now, with its backlog
// and its latest dead letters: its secrets without their values, and only
// those that still sign.
func EndpointView(e *webhook.Endpoint, backlog int, dead []webhook.DeadLetter, now time.Time) *api.Endpoint {
	v := &api.Endpoint{
		Member: e.Member, URL: e.URL, Events: e.Events, Status: e.Status, Verified: e.Verified, Reason: e.Reason,
		Backlog: backlog, LastDeliveredSeq: e.LastDeliveredSeq, LastSuccessAt: e.LastSuccessAt,
		LastError: e.LastError, LastErrorAt: e.LastErrorAt, Failures: e.Failures,
		NextAttemptAt: e.NextAttemptAt, DeadLetters: e.DeadLetters, CreatedAt: e.CreatedAt, UpdatedAt: e.UpdatedAt,
		Secrets: []api.EndpointSecret{},
	}
	if v.Events == nil {
		v.Events = []protocol.EventType{}
	}
	for _, s := range e.Live(now) {
		v.Secrets = append(v.Secrets, api.EndpointSecret{CreatedAt: s.CreatedAt, ExpiresAt: s.ExpiresAt})
	}
	for _, dl := range dead {
		v.RecentDeadLetters = append(v.RecentDeadLetters, api.DeadLetter{
			Seq: dl.Delivery.Seq, Type: dl.Delivery.Type, At: dl.Attempt.At, Status: dl.Attempt.Status, Response: dl.Attempt.Response})
	}
	return v
}
