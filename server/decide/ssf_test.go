package decide_test

import (
	"encoding/json"
	"errors"
	"slices"
	"testing"

	"github.com/sparr-dev/sparr/federation/webhook"
	"github.com/sparr-dev/sparr/protocol"
	"github.com/sparr-dev/sparr/protocol/api"
	"github.com/sparr-dev/sparr/server/decide"
)

const (
	ssfIssuer = "https://hub.example"
	ssfPoll   = "https://hub.example/v1/ssf/poll"
)

// TestStreamEvents: a stream offers what the member's roles entitle it to,
// and never the verification events, which every stream gets.
func TestStreamEvents(t *testing.T) {
	disputes := []protocol.EventType{protocol.EventDisputeOpened, protocol.EventDisputeAcknowledged, protocol.EventDisputeResolved, protocol.EventDisputeLapsed}
	for _, tc := range []struct {
		roles []api.Role
		want  []protocol.EventType
	}{
		{[]api.Role{api.RoleCheck}, append([]protocol.EventType{protocol.EventFlagPlaced, protocol.EventFlagExtended, protocol.EventFlagThawed, protocol.EventFlagLifted, protocol.EventFlagExpired, protocol.EventSubjectErased, protocol.EventCheckDenied,
			protocol.EventPayeeReported, protocol.EventPayeeExpired, protocol.EventRecallRequested, protocol.EventRecallAcknowledged, protocol.EventRecallOutcome}, disputes...)},
		{[]api.Role{api.RoleSuspicion}, append([]protocol.EventType{protocol.EventSuspicionReported, protocol.EventSuspicionRetracted, protocol.EventSuspicionExpired, protocol.EventSubjectErased,
			protocol.EventPayeeReported, protocol.EventPayeeExpired, protocol.EventRecallRequested, protocol.EventRecallAcknowledged, protocol.EventRecallOutcome}, disputes...)},
		{[]api.Role{api.RoleFlag}, append([]protocol.EventType{protocol.EventFlagPlaced, protocol.EventFlagExtended, protocol.EventFlagThawed, protocol.EventFlagLifted, protocol.EventFlagExpired, protocol.EventFlagExpiring, protocol.EventSubjectErased, protocol.EventSubjectChecked,
			protocol.EventPayeeReported, protocol.EventPayeeExpired, protocol.EventRecallRequested, protocol.EventRecallAcknowledged, protocol.EventRecallOutcome}, disputes...)},
		{[]api.Role{api.RoleRegulator}, nil},
	} {
		got := decide.StreamEvents(&api.Member{ID: "bank-a", Roles: tc.roles})
		if !slices.Equal(got, tc.want) {
			t.Errorf("roles %v: got %v, want %v", tc.roles, got, tc.want)
		}
	}
}

// TestStreamRequestSpec: what a create, update or replace sets, and what
// it refuses.
func TestStreamRequestSpec(t *testing.T) {
	m := &api.Member{ID: "bank-b", Roles: []api.Role{api.RoleCheck}}
	push := &webhook.Endpoint{Member: "bank-b", URL: "https://bank-b.example/ssf", Delivery: webhook.DeliveryPush, Authorization: "Bearer x", Description: "old"}
	str := func(s string) *string { return &s }
	list := func(s ...string) *[]string { return &s }
	for _, tc := range []struct {
		name  string
		req   api.StreamRequest
		old   *webhook.Endpoint
		patch bool
		want  decide.StreamSpec
		field string // the field of the refusal, if refused
	}{
		{name: "no delivery is poll", req: api.StreamRequest{}, want: decide.StreamSpec{Delivery: webhook.DeliveryPoll}},
		{name: "push", req: api.StreamRequest{Delivery: &api.StreamDelivery{Method: webhook.DeliveryPush, EndpointURL: "https://r.example/e", AuthorizationHeader: "Bearer t"}},
			want: decide.StreamSpec{Delivery: webhook.DeliveryPush, URL: "https://r.example/e", Authorization: "Bearer t"}},
		{name: "push without URL", req: api.StreamRequest{Delivery: &api.StreamDelivery{Method: webhook.DeliveryPush}}, field: "/delivery/endpoint_url"},
		{name: "poll at another URL", req: api.StreamRequest{Delivery: &api.StreamDelivery{Method: webhook.DeliveryPoll, EndpointURL: "https://elsewhere.example/poll"}}, field: "/delivery/endpoint_url"},
		{name: "poll at the hub's URL", req: api.StreamRequest{Delivery: &api.StreamDelivery{Method: webhook.DeliveryPoll, EndpointURL: ssfPoll}}, want: decide.StreamSpec{Delivery: webhook.DeliveryPoll}},
		{name: "unknown method", req: api.StreamRequest{Delivery: &api.StreamDelivery{Method: "urn:example:pigeon"}}, field: "/delivery/method"},
		{name: "header split", req: api.StreamRequest{Delivery: &api.StreamDelivery{Method: webhook.DeliveryPush, EndpointURL: "https://r.example", AuthorizationHeader: "a\r\nX-Evil: 1"}}, field: "/delivery/authorization_header"},
		{name: "patch keeps the rest", req: api.StreamRequest{StreamID: "bank-b", Description: str("new")}, old: push, patch: true,
			want: decide.StreamSpec{Delivery: webhook.DeliveryPush, URL: push.URL, Authorization: "Bearer x", Description: "new"}},
		{name: "replace clears the rest", req: api.StreamRequest{StreamID: "bank-b"}, old: push, want: decide.StreamSpec{Delivery: webhook.DeliveryPoll}},
		{name: "unknown events ignored", req: api.StreamRequest{EventsRequested: list("urn:example:x", string(protocol.EventFlagPlaced))},
			want: decide.StreamSpec{Delivery: webhook.DeliveryPoll, Requested: []string{"urn:example:x", string(protocol.EventFlagPlaced)}}},
		{name: "nothing deliverable", req: api.StreamRequest{EventsRequested: list(string(protocol.EventSuspicionReported))}, field: "/events_requested"},
		{name: "wrong iss", req: api.StreamRequest{Iss: str("https://other.example")}, field: "/iss"},
		{name: "right iss and aud", req: api.StreamRequest{Iss: str(ssfIssuer), Aud: []any{"urn:sparr:member:bank-b"}}, want: decide.StreamSpec{Delivery: webhook.DeliveryPoll}},
		{name: "wrong aud", req: api.StreamRequest{Aud: "urn:sparr:member:bank-a"}, field: "/aud"},
		{name: "wrong events_supported", req: api.StreamRequest{EventsSupported: list(string(protocol.EventFlagPlaced))}, field: "/events_supported"},
		{name: "control character", req: api.StreamRequest{Description: str("a\x00b")}, field: "/description"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := decide.StreamRequestSpec(m, &tc.req, tc.old, tc.patch, ssfIssuer, ssfPoll)
			if tc.field != "" {
				var p *protocol.Problem
				if !errors.As(err, &p) || p.Type != protocol.ProblemMalformedRequest.URI || len(p.Errors) != 1 || p.Errors[0].Pointer != tc.field {
					t.Fatalf("got %v, want a malformed-request about %s", err, tc.field)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.Delivery != tc.want.Delivery || got.URL != tc.want.URL || got.Authorization != tc.want.Authorization || got.Description != tc.want.Description || !slices.Equal(got.Requested, tc.want.Requested) {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

// FuzzStreamRequest: any JSON a receiver sends as a stream request is
// either refused or read into a spec the hub can keep.
func FuzzStreamRequest(f *testing.F) {
	for _, s := range []string{
		`{}`,
		`{"delivery":{"method":"urn:ietf:rfc:8935","endpoint_url":"https://r.example/e","authorization_header":"Bearer t"},"events_requested":["urn:sparr:event:flag-placed","urn:example:x"],"description":"d"}`,
		`{"stream_id":"bank-b","iss":"https://hub.example","aud":["urn:sparr:member:bank-b"],"events_delivered":[]}`,
		`{"delivery":{"method":"urn:ietf:rfc:8936","endpoint_url":"https://hub.example/v1/ssf/poll"}}`,
	} {
		f.Add([]byte(s), false)
	}
	m := &api.Member{ID: "bank-b", Roles: []api.Role{api.RoleCheck, api.RoleFlag}}
	old := &webhook.Endpoint{Member: "bank-b", URL: "https://bank-b.example/ssf", Delivery: webhook.DeliveryPush}
	f.Fuzz(func(t *testing.T, body []byte, patch bool) {
		var req api.StreamRequest
		if json.Unmarshal(body, &req) != nil {
			return
		}
		spec, err := decide.StreamRequestSpec(m, &req, old, patch, ssfIssuer, ssfPoll)
		if err != nil {
			var p *protocol.Problem
			if !errors.As(err, &p) || p.Status != 400 {
				t.Fatalf("got %v, want a 400 problem", err)
			}
			return
		}
		switch spec.Delivery {
		case webhook.DeliveryPoll:
			if spec.URL != "" || spec.Authorization != "" {
				t.Fatalf("poll spec with a URL or header: %+v", spec)
			}
		case webhook.DeliveryPush:
			if spec.URL == "" {
				t.Fatalf("push spec without a URL: %+v", spec)
			}
		default:
			t.Fatalf("spec with delivery %q", spec.Delivery)
		}
		if len(spec.Description) > decide.MaxStreamText {
			t.Fatalf("description of %d bytes", len(spec.Description))
		}
	})
}
