package peering

import (
	"fmt"
	"slices"
	"strings"

	"github.com/sparr-dev/sparr/protocol"
)

// A Policy is what an operator lets flow between this hub and one peer,
// in both directions: the events this hub, as home hub, delivers to the
// peer, the events it accepts from the peer and fans out to its own
// members, and the writes it relays or accepts. It is configuration, kept
// in the peers file beside the peer's keys.
//
// The zero Policy lets flag events of every identifier type the two hubs
// exchange flow, and no suspicion: suspicions cross a border only where
// the operator has configured a legal basis for that peer.
type Policy struct {
	// EventTypes are the event types that flow; empty means the flag
	// events (placed, extended, thawed, lifted, expired). Suspicion events
	// flow only with SuspicionsLegalBasis set, whatever is listed here.
	EventTypes []protocol.EventType `json:"event_types,omitempty"`
	// IdentifierTypes are the identifier types whose records flow; empty
	// means every type.
	IdentifierTypes []protocol.IdentifierType `json:"identifier_types,omitempty"`
	// SuspicionsLegalBasis names the legal basis on which suspicions are
	// shared with this peer (a statute or agreement, e.g.
	// "PSR Art. 83; SE-NO data-sharing agreement 2026-11"). Empty, the
	// default, means suspicions never flow to or from this peer.
	SuspicionsLegalBasis string `json:"suspicions_legal_basis,omitempty"`
}

// DefaultEventTypes are the event types a Policy without EventTypes lets
// flow.
var DefaultEventTypes = []protocol.EventType{
	protocol.EventFlagPlaced, protocol.EventFlagExtended, protocol.EventFlagThawed,
	protocol.EventFlagLifted, protocol.EventFlagExpired,
}

var suspicionEvents = []protocol.EventType{
	protocol.EventSuspicionReported, protocol.EventSuspicionRetracted, protocol.EventSuspicionExpired,
}

// Suspicions reports whether suspicions flow under p.
func (p Policy) Suspicions() bool { return strings.TrimSpace(p.SuspicionsLegalBasis) != "" }

// AllowsEvent reports whether events of type et flow under p.
func (p Policy) AllowsEvent(et protocol.EventType) bool {
	if slices.Contains(suspicionEvents, et) {
		return p.Suspicions() && (len(p.EventTypes) == 0 || slices.Contains(p.EventTypes, et))
	}
	if len(p.EventTypes) == 0 {
		return slices.Contains(DefaultEventTypes, et)
	}
	return slices.Contains(p.EventTypes, et)
}

// AllowsType reports whether records of identifier type t flow under p.
func (p Policy) AllowsType(t protocol.IdentifierType) bool {
	return len(p.IdentifierTypes) == 0 || slices.Contains(p.IdentifierTypes, t)
}

// Check reports what is wrong in p: an unknown event or identifier type.
func (p Policy) Check() error {
	known := protocol.EventTypes()
	for _, et := range p.EventTypes {
		if !slices.Contains(known, et) {
			return fmt.Errorf("policy: unknown event type %q", et)
		}
	}
	for _, t := range p.IdentifierTypes {
		if !slices.Contains(protocol.IdentifierTypes(), t) {
			return fmt.Errorf("policy: unknown identifier type %q", t)
		}
	}
	return nil
}
