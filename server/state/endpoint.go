package state

import (
	"fmt"
	"time"

	"github.com/sparr-dev/sparr/federation/webhook"
	"github.com/sparr-dev/sparr/protocol"
	"github.com/sparr-dev/sparr/protocol/api"
)

// An EndpointOp is a kind of [EndpointChange].
type EndpointOp string

// The endpoint changes a member makes.
const (
	// EndpointRegister sets the URL and the events. With Secret set it
	// makes a new endpoint, which requires that there is none or that it
	// is disabled; otherwise the endpoint must exist and not be disabled,
	// and Verify must say whether the URL changes.
	EndpointRegister EndpointOp = "register"
	// EndpointRotate makes Secret the signing secret. The secret it
	// replaces (the newest that still signs) keeps signing until Until at
	// the latest; any older one stops at once, so that an endpoint holds
	// at most [webhook.MaxSecrets]. A replaced secret the hub cannot sign
	// with stops at once too: rotating is how a member gets delivery
	// going again after that hub failure.
	EndpointRotate EndpointOp = "rotate"
	// EndpointResume resumes a paused endpoint; it requires that the
	// endpoint is paused.
	EndpointResume EndpointOp = "resume"
	// EndpointRemove disables the endpoint, with Reason, and drops its
	// queue.
	EndpointRemove EndpointOp = "remove"
	// EndpointPause pauses the endpoint at its receiver's request (an SSF
	// stream's status set to "paused"), with Reason; events keep queueing.
	// It requires that the endpoint is neither disabled nor paused.
	EndpointPause EndpointOp = "pause"
	// EndpointVerify changes nothing but carries a verification event
	// that the receiver asked for; it requires that the endpoint is not
	// disabled.
	EndpointVerify EndpointOp = "verify"
)

// An EndpointChange is a member's change to its webhook endpoint. It is
// applied to the endpoint as stored when the command is applied, not as
// it was read when the command was decided, and changes only what the
// member asked for: a delivery outcome recorded in between (a pause, a
// 410, the verification, a retry's backoff) is never undone. When the
// endpoint is no longer as the change was decided against (see the ops'
// requirements), the command conflicts.
type EndpointChange struct {
	Op     EndpointOp `json:"op"`
	Member string     `json:"member"`
	// URL, Events, Delivery, Authorization, Requested and Description are the
	// endpoint's, for EndpointRegister (see [webhook.Endpoint]).
	URL           string               `json:"url,omitempty"`
	Events        []protocol.EventType `json:"events,omitempty"`
	Delivery      string               `json:"delivery,omitempty"`
	Authorization string               `json:"authorization,omitempty"`
	Requested     []string             `json:"requested,omitempty"`
	Description   string               `json:"description,omitempty"`
	// Verify, for EndpointRegister on an existing endpoint, says that the
	// URL or the delivery method changes: the endpoint must be verified
	// again.
	Verify bool `json:"verify,omitempty"`
	// Secret is a new endpoint's secret (EndpointRegister), or the new
	// signing secret (EndpointRotate).
	Secret *webhook.EndpointSecret `json:"secret,omitempty"`
	// Until is when the secret a rotation replaces stops signing.
	Until time.Time `json:"until,omitzero"`
	// Reason is why the endpoint is disabled (EndpointRemove).
	Reason string `json:"reason,omitempty"`
}

// ApplyTo returns the endpoint as ch makes e, the member's endpoint as
// stored (nil if it has none) at time at, or ok false if e is not as ch
// requires. It does not change e.
func (ch *EndpointChange) ApplyTo(e *webhook.Endpoint, at time.Time) (_ *webhook.Endpoint, ok bool, _ error) {
	at = at.UTC()
	if ch.Op == EndpointRegister && ch.Secret != nil {
		if e != nil && e.Status != api.EndpointDisabled {
			return nil, false, nil
		}
		return &webhook.Endpoint{
			Member: ch.Member, URL: ch.URL, Events: ch.Events, Secrets: []webhook.EndpointSecret{*ch.Secret},
			Delivery: ch.Delivery, Authorization: ch.Authorization, Requested: ch.Requested, Description: ch.Description,
			Status: api.EndpointUnverified, CreatedAt: at, UpdatedAt: at,
		}, true, nil
	}
	if e == nil {
		return nil, false, nil
	}
	n := *e
	switch ch.Op {
	case EndpointRegister:
		if n.Status == api.EndpointDisabled || ch.Verify == (n.URL == ch.URL && n.Delivery == ch.Delivery) {
			return nil, false, nil
		}
		n.URL, n.Events = ch.URL, ch.Events
		n.Delivery, n.Authorization, n.Requested, n.Description = ch.Delivery, ch.Authorization, ch.Requested, ch.Description
		if ch.Verify {
			n.Status, n.Verified, n.Reason, n.Failures, n.NextAttemptAt = api.EndpointUnverified, false, "", 0, time.Time{}
		}
	case EndpointRotate:
		if ch.Secret == nil {
			return nil, false, fmt.Errorf("endpoint rotation of %q without a secret", ch.Member)
		}
		n.Secrets = []webhook.EndpointSecret{*ch.Secret}
		if live := e.Live(at); len(live) > 0 && ch.Until.After(at) {
			if s := live[0]; usable(s) {
				if s.ExpiresAt.IsZero() || s.ExpiresAt.After(ch.Until) {
					s.ExpiresAt = ch.Until
				}
				n.Secrets = append(n.Secrets, s)
			}
		}
	case EndpointResume:
		if n.Status != api.EndpointPaused {
			return nil, false, nil
		}
		n.Status, n.Reason, n.Failures, n.NextAttemptAt = api.EndpointActive, "", 0, time.Time{}
		if !n.Verified {
			n.Status = api.EndpointUnverified
		}
	case EndpointRemove:
		n.Status, n.Reason = api.EndpointDisabled, ch.Reason
	case EndpointPause:
		if n.Status == api.EndpointDisabled || n.Status == api.EndpointPaused {
			return nil, false, nil
		}
		n.Status, n.Reason, n.NextAttemptAt = api.EndpointPaused, ch.Reason, time.Time{}
	case EndpointVerify:
		if n.Status == api.EndpointDisabled {
			return nil, false, nil
		}
	default:
		return nil, false, fmt.Errorf("unknown endpoint change %q", ch.Op)
	}
	n.UpdatedAt = at
	return &n, true, nil
}

// A DeliveryOutcome is what became of one delivery attempt.
type DeliveryOutcome string

// The delivery outcomes.
const (
	Delivered    DeliveryOutcome = "delivered"
	Skipped      DeliveryOutcome = "skipped"
	Retrying     DeliveryOutcome = "retrying"
	Paused       DeliveryOutcome = "paused"
	DeadLettered DeliveryOutcome = "dead-lettered"
	Disabled     DeliveryOutcome = "disabled"
)

// A DeliveryUpdate is a delivery attempt's outcome.
type DeliveryUpdate struct {
	Delivery webhook.Delivery `json:"delivery"`
	Attempt  webhook.Attempt  `json:"attempt"`
	Outcome  DeliveryOutcome  `json:"outcome"`
	// Next is, for Retrying, when to try the endpoint again.
	Next time.Time `json:"next,omitzero"`
	// Reason is why, for Paused and Disabled.
	Reason string `json:"reason,omitempty"`
}

// usable reports whether the hub can sign with secret s.
func usable(s webhook.EndpointSecret) bool {
	_, err := protocol.ParseWebhookSecret(s.Secret)
	return err == nil
}
