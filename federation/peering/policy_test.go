package peering_test

import (
	"strings"
	"testing"

	"github.com/sparr-dev/sparr/federation/peering"
	"github.com/sparr-dev/sparr/protocol"
)

func TestPolicy(t *testing.T) {
	var zero peering.Policy
	for _, c := range []struct {
		name string
		p    peering.Policy
		et   protocol.EventType
		want bool
	}{
		{"default flag placed", zero, protocol.EventFlagPlaced, true},
		{"default flag lifted", zero, protocol.EventFlagLifted, true},
		{"default no suspicion", zero, protocol.EventSuspicionReported, false},
		{"default no check notice", zero, protocol.EventSubjectChecked, false},
		{"listed suspicion without basis", peering.Policy{EventTypes: []protocol.EventType{protocol.EventSuspicionReported}}, protocol.EventSuspicionReported, false},
		{"suspicion with basis", peering.Policy{SuspicionsLegalBasis: "PSR Art. 83"}, protocol.EventSuspicionReported, true},
		{"blank basis", peering.Policy{SuspicionsLegalBasis: "  "}, protocol.EventSuspicionReported, false},
		{"narrowed", peering.Policy{EventTypes: []protocol.EventType{protocol.EventFlagPlaced}}, protocol.EventFlagLifted, false},
	} {
		if got := c.p.AllowsEvent(c.et); got != c.want {
			t.Errorf("%s: AllowsEvent(%s) = %v, want %v", c.name, c.et, got, c.want)
		}
	}
	only := peering.Policy{IdentifierTypes: []protocol.IdentifierType{"fnr"}}
	if !only.AllowsType("fnr") || only.AllowsType("pnr") || !zero.AllowsType("pnr") {
		t.Error("AllowsType: fnr only should allow fnr, not pnr; the zero policy allows every type")
	}
	if err := (peering.Policy{EventTypes: []protocol.EventType{"urn:sparr:event:nope"}}).Check(); err == nil || !strings.Contains(err.Error(), "unknown event type") {
		t.Errorf("unknown event type: got %v", err)
	}
	if err := (peering.Policy{IdentifierTypes: []protocol.IdentifierType{"ssn"}}).Check(); err == nil {
		t.Error("unknown identifier type: got no error")
	}
}
