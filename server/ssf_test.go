package server_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwk"
	"github.com/lestrrat-go/jwx/v3/jws"

	"github.com/sparr-dev/sparr/protocol"
	"github.com/sparr-dev/sparr/protocol/api"
	"github.com/sparr-dev/sparr/server"
	"github.com/sparr-dev/sparr/server/hubtest"
)

// The SSF receiver of these tests knows nothing of Spärr: it reads the
// transmitter metadata, verifies SETs with the key set at its jwks_uri
// through a general JOSE library, and speaks the requests of the SSF 1.0
// specification and RFCs 8935 and 8936, whose own examples it follows.

const ssfVerification = "https://schemas.openid.net/secevent/ssf/event-type/verification"

// ssfMetadata reads the hub's transmitter metadata as a receiver does.
func ssfMetadata(t *testing.T, hub *hubtest.Hub) map[string]any {
	t.Helper()
	resp := hub.Anonymous(t, http.MethodGet, "/.well-known/ssf-configuration", "", nil)
	mustStatus(t, resp, http.StatusOK)
	conforms(t, "GET /.well-known/ssf-configuration", resp)
	var md map[string]any
	resp.JSON(t, &md)
	return md
}

// setVerifier verifies SETs against the key set at the metadata's jwks_uri.
func setVerifier(t *testing.T, md map[string]any) func(set []byte) map[string]any {
	t.Helper()
	r, err := http.Get(md["jwks_uri"].(string))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Body.Close()
	body, _ := io.ReadAll(r.Body)
	keys, err := jwk.Parse(body)
	if err != nil {
		t.Fatalf("jwks_uri: %v", err)
	}
	return func(set []byte) map[string]any {
		t.Helper()
		msg, err := jws.Parse(set)
		if err != nil {
			t.Fatalf("SET does not parse: %v", err)
		}
		if typ, _ := msg.Signatures()[0].ProtectedHeaders().Type(); typ != "secevent+jwt" {
			t.Errorf("got typ %q, want secevent+jwt (SSF explicit typing)", typ)
		}
		payload, err := jws.Verify(set, jws.WithKeySet(keys, jws.WithInferAlgorithmFromKey(true)))
		if err != nil {
			t.Fatalf("SET does not verify with the key set at jwks_uri: %v", err)
		}
		var claims map[string]any
		if err := json.Unmarshal(payload, &claims); err != nil {
			t.Fatal(err)
		}
		if claims["iss"] != md["issuer"] {
			t.Errorf("got iss %v, want the metadata's issuer %v", claims["iss"], md["issuer"])
		}
		for _, banned := range []string{"sub", "exp"} {
			if _, ok := claims[banned]; ok {
				t.Errorf("SET has %q, which SSF forbids", banned)
			}
		}
		return claims
	}
}

// eventOf returns a SET's one event type and body.
func eventOf(t *testing.T, claims map[string]any) (string, map[string]any) {
	t.Helper()
	events, _ := claims["events"].(map[string]any)
	if len(events) != 1 {
		t.Fatalf("got events %v, want one", claims["events"])
	}
	for k, v := range events {
		body, _ := v.(map[string]any)
		return k, body
	}
	return "", nil
}

// pushReceiver is an RFC 8935 receiver: it takes POSTs of
// application/secevent+jwt that carry its Authorization header, and keeps
// their bodies.
type pushReceiver struct {
	*httptest.Server
	auth string
	mu   sync.Mutex
	sets [][]byte
	bad  []string
}

func newPushReceiver(t *testing.T, auth string) *pushReceiver {
	r := &pushReceiver{auth: auth}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		defer r.mu.Unlock()
		switch {
		case req.Method != http.MethodPost:
			r.bad = append(r.bad, "method "+req.Method)
		case req.Header.Get("Content-Type") != "application/secevent+jwt":
			r.bad = append(r.bad, "content type "+req.Header.Get("Content-Type"))
		case req.Header.Get("Authorization") != r.auth:
			r.bad = append(r.bad, "authorization "+req.Header.Get("Authorization"))
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		r.sets = append(r.sets, body)
		w.WriteHeader(http.StatusAccepted)
	}))
	t.Cleanup(r.Close)
	return r
}

// waitSET waits for a pushed SET that match accepts, verified.
func (r *pushReceiver) waitSET(t *testing.T, verify func([]byte) map[string]any, what string, match func(typ string, claims, event map[string]any) bool) map[string]any {
	t.Helper()
	deadline := time.Now().Add(wait)
	for seen := 0; ; {
		r.mu.Lock()
		sets, bad := slices.Clone(r.sets), slices.Clone(r.bad)
		r.mu.Unlock()
		if len(bad) > 0 {
			t.Fatalf("receiver got requests it refuses: %v", bad)
		}
		for ; seen < len(sets); seen++ {
			claims := verify(sets[seen])
			typ, ev := eventOf(t, claims)
			if match(typ, claims, ev) {
				return claims
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %s pushed within %s", what, wait)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestSSFMetadata(t *testing.T) {
	hub := hubtest.Start(t, hubtest.Options{})
	md := ssfMetadata(t, hub)
	if md["spec_version"] != "1_0" || md["issuer"] != hub.URL {
		t.Errorf("got spec_version %v issuer %v, want 1_0 and %s", md["spec_version"], md["issuer"], hub.URL)
	}
	methods, _ := md["delivery_methods_supported"].([]any)
	if !slices.Contains(methods, any("urn:ietf:rfc:8935")) || !slices.Contains(methods, any("urn:ietf:rfc:8936")) {
		t.Errorf("got delivery_methods_supported %v, want push and poll", methods)
	}
	for _, k := range []string{"configuration_endpoint", "status_endpoint", "verification_endpoint", "jwks_uri"} {
		u, _ := md[k].(string)
		if !strings.HasPrefix(u, hub.URL+"/") {
			t.Errorf("got %s %q, want a URL of the hub", k, u)
		}
	}
}

func TestSSFPushStream(t *testing.T) {
	hub := hubtest.Start(t, hubtest.Options{Delivery: fast})
	bank := hub.AddMember(t, "bank-b", api.RoleCheck)
	origin := hub.AddMember(t, "bank-a", api.RoleFlag)
	md := ssfMetadata(t, hub)
	verify := setVerifier(t, md)
	rcv := newPushReceiver(t, "Bearer receiver-secret")

	// The create request of the SSF specification's example, with an event
	// type the hub does not send among those requested.
	resp := bank.JSON(t, http.MethodPost, "/v1/ssf/stream", map[string]any{
		"delivery":         map[string]any{"method": "urn:ietf:rfc:8935", "endpoint_url": rcv.URL + "/events", "authorization_header": "Bearer receiver-secret"},
		"events_requested": []string{"urn:example:secevent:events:type_2", string(protocol.EventFlagPlaced), string(protocol.EventFlagLifted)},
		"description":      "Stream for Receiver A",
	})
	mustStatus(t, resp, http.StatusCreated)
	conforms(t, "POST /v1/ssf/stream", resp)
	var stream api.Stream
	resp.JSON(t, &stream)
	if stream.StreamID != "bank-b" || stream.Iss != md["issuer"] || stream.Aud != "urn:sparr:member:bank-b" {
		t.Errorf("got stream %+v, want id bank-b, the issuer and aud urn:sparr:member:bank-b", stream)
	}
	if want := []string{string(protocol.EventFlagPlaced), string(protocol.EventFlagLifted)}; !slices.Equal(stream.EventsDelivered, want) {
		t.Errorf("got events_delivered %v, want %v", stream.EventsDelivered, want)
	}
	if stream.Delivery.AuthorizationHeader != "" {
		t.Error("the stream shows its authorization_header again")
	}

	// The hub sends the SSF verification event on its own, with the stream
	// as subject and no state.
	rcv.waitSET(t, verify, "verification event", func(typ string, claims, ev map[string]any) bool {
		if typ != ssfVerification {
			return false
		}
		sub, _ := claims["sub_id"].(map[string]any)
		if sub["format"] != "opaque" || sub["id"] != stream.StreamID {
			t.Errorf("got sub_id %v, want the stream, opaque", claims["sub_id"])
		}
		if _, ok := ev["state"]; ok {
			t.Errorf("got state %v in a verification the hub sent on its own, want none", ev["state"])
		}
		return true
	})
	waitEndpoint(t, bank, "verified", func(e api.Endpoint) bool { return e.Verified })

	// Verification on request echoes the state (the specification's example).
	const state = "VGhpcyBpcyBhbiBleGFtcGxlIHN0YXRlIHZhbHVlLgo="
	resp = bank.JSON(t, http.MethodPost, "/v1/ssf/verify", map[string]any{"stream_id": stream.StreamID, "state": state})
	mustStatus(t, resp, http.StatusNoContent)
	conforms(t, "POST /v1/ssf/verify", resp)
	rcv.waitSET(t, verify, "requested verification event", func(typ string, _, ev map[string]any) bool {
		return typ == ssfVerification && ev["state"] == state
	})
	// Asked again at once: min_verification_interval.
	wantProblem(t, bank.JSON(t, http.MethodPost, "/v1/ssf/verify", map[string]any{"stream_id": stream.StreamID}), protocol.ProblemRateLimited)

	// A flag placed at another member arrives as a SET about the token.
	tok := origin.Tokenize(t, protocol.TypeEmail, "ssf-push@example.se")[0]
	place(t, origin, tok)
	rcv.waitSET(t, verify, "flag-placed SET", func(typ string, claims, _ map[string]any) bool {
		sub, _ := claims["sub_id"].(map[string]any)
		return typ == string(protocol.EventFlagPlaced) && sub["id"] == tok.String()
	})

	// Paused by the receiver, events wait; enabled, they arrive.
	resp = bank.JSON(t, http.MethodPost, "/v1/ssf/status", map[string]any{"stream_id": stream.StreamID, "status": "paused", "reason": "SYSTEM_DOWN_FOR_MAINTENANCE"})
	mustStatus(t, resp, http.StatusOK)
	conforms(t, "POST /v1/ssf/status", resp)
	resp = bank.Do(t, http.MethodGet, "/v1/ssf/status?stream_id="+stream.StreamID, "", nil)
	conforms(t, "GET /v1/ssf/status", resp)
	var st api.StreamStatus
	resp.JSON(t, &st)
	if st.Status != "paused" || st.Reason != "SYSTEM_DOWN_FOR_MAINTENANCE" {
		t.Errorf("got status %+v, want paused with the reason given", st)
	}
	tok2 := origin.Tokenize(t, protocol.TypeEmail, "ssf-paused@example.se")[0]
	place(t, origin, tok2)
	waitEndpoint(t, bank, "holding the event", func(e api.Endpoint) bool { return e.Backlog == 1 })
	mustStatus(t, bank.JSON(t, http.MethodPost, "/v1/ssf/status", map[string]any{"stream_id": stream.StreamID, "status": "enabled"}), http.StatusOK)
	rcv.waitSET(t, verify, "the held flag-placed SET", func(typ string, claims, _ map[string]any) bool {
		sub, _ := claims["sub_id"].(map[string]any)
		return typ == string(protocol.EventFlagPlaced) && sub["id"] == tok2.String()
	})

	// One stream per member; its transmitter-supplied properties are the hub's.
	wantProblem(t, bank.JSON(t, http.MethodPost, "/v1/ssf/stream", map[string]any{}), protocol.ProblemStateConflict)
	wantProblem(t, bank.JSON(t, http.MethodPatch, "/v1/ssf/stream", map[string]any{"stream_id": stream.StreamID, "iss": "https://other.example"}), protocol.ProblemMalformedRequest)
	wantProblem(t, bank.JSON(t, http.MethodPatch, "/v1/ssf/stream", map[string]any{"stream_id": "bank-a", "description": "x"}), protocol.ProblemNotFound)
	wantProblem(t, bank.JSON(t, http.MethodPatch, "/v1/ssf/stream", map[string]any{"stream_id": stream.StreamID, "delivery": map[string]any{"method": "urn:example:carrier-pigeon"}}), protocol.ProblemMalformedRequest)
	wantProblem(t, bank.JSON(t, http.MethodPost, "/v1/ssf/poll", map[string]any{"returnImmediately": true}), protocol.ProblemStateConflict)

	// PATCH changes the description only; the read shows it.
	resp = bank.JSON(t, http.MethodPatch, "/v1/ssf/stream", map[string]any{"stream_id": stream.StreamID, "description": "Stream for Receiver B", "events_delivered": stream.EventsDelivered})
	mustStatus(t, resp, http.StatusOK)
	conforms(t, "PATCH /v1/ssf/stream", resp)
	resp = bank.Do(t, http.MethodGet, "/v1/ssf/stream?stream_id="+stream.StreamID, "", nil)
	conforms(t, "GET /v1/ssf/stream", resp)
	var read api.Stream
	resp.JSON(t, &read)
	if read.Description != "Stream for Receiver B" || read.Delivery.EndpointURL != stream.Delivery.EndpointURL || !slices.Equal(read.EventsDelivered, stream.EventsDelivered) {
		t.Errorf("got %+v after a PATCH of the description, want the rest as it was", read)
	}

	// Deleted, it is gone.
	resp = bank.Do(t, http.MethodDelete, "/v1/ssf/stream?stream_id="+stream.StreamID, "", nil)
	mustStatus(t, resp, http.StatusNoContent)
	conforms(t, "DELETE /v1/ssf/stream", resp)
	wantProblem(t, bank.Do(t, http.MethodGet, "/v1/ssf/stream?stream_id="+stream.StreamID, "", nil), protocol.ProblemNotFound)
	resp = bank.Do(t, http.MethodGet, "/v1/ssf/stream", "", nil)
	conforms(t, "GET /v1/ssf/stream", resp)
	if strings.TrimSpace(string(resp.Body)) != "[]" {
		t.Errorf("got %s listing streams after the delete, want []", resp.Body)
	}
}

// poll sends an RFC 8936 poll.
func poll(t *testing.T, m *hubtest.Member, req map[string]any) api.PollResponse {
	t.Helper()
	resp := m.JSON(t, http.MethodPost, "/v1/ssf/poll", req)
	mustStatus(t, resp, http.StatusOK)
	conforms(t, "POST /v1/ssf/poll", resp)
	var out api.PollResponse
	resp.JSON(t, &out)
	return out
}

func TestSSFPollStream(t *testing.T) {
	hub := hubtest.Start(t, hubtest.Options{Delivery: fast, Configure: func(c *server.Config) { c.PollWait = 5 * time.Second }})
	bank := hub.AddMember(t, "bank-b", api.RoleCheck)
	origin := hub.AddMember(t, "bank-a", api.RoleFlag)
	md := ssfMetadata(t, hub)
	verify := setVerifier(t, md)

	// No delivery: poll, at the endpoint_url the hub supplies.
	resp := bank.JSON(t, http.MethodPost, md["configuration_endpoint"].(string)[len(hub.URL):], map[string]any{})
	mustStatus(t, resp, http.StatusCreated)
	var stream api.Stream
	resp.JSON(t, &stream)
	if stream.Delivery.Method != "urn:ietf:rfc:8936" || stream.Delivery.EndpointURL != hub.URL+"/v1/ssf/poll" {
		t.Fatalf("got delivery %+v, want poll at the hub's poll endpoint", stream.Delivery)
	}

	// The first poll returns the verification event; acknowledged, the
	// stream is verified and the SET is not returned again.
	got := poll(t, bank, map[string]any{"returnImmediately": true})
	if len(got.Sets) != 1 {
		t.Fatalf("got %d SETs, want the verification event", len(got.Sets))
	}
	var ack []string
	for jti, set := range got.Sets {
		claims := verify([]byte(set))
		if typ, _ := eventOf(t, claims); typ != ssfVerification || claims["jti"] != jti {
			t.Errorf("got a %s SET under jti %s (its jti %v), want the verification under its own jti", typ, jti, claims["jti"])
		}
		ack = append(ack, jti)
	}
	// maxEvents 0: acknowledge only.
	if got := poll(t, bank, map[string]any{"ack": ack, "maxEvents": 0}); len(got.Sets) != 0 {
		t.Errorf("got %d SETs for maxEvents 0, want none", len(got.Sets))
	}
	waitEndpoint(t, bank, "verified", func(e api.Endpoint) bool { return e.Verified && e.Backlog == 0 })
	// An acknowledgement repeated is passed over.
	poll(t, bank, map[string]any{"ack": ack, "returnImmediately": true})

	// A poll that waits gets the SET placed meanwhile.
	done := make(chan api.PollResponse)
	go func() {
		resp := bank.JSON(t, http.MethodPost, "/v1/ssf/poll", map[string]any{"maxEvents": 10})
		var out api.PollResponse
		json.Unmarshal(resp.Body, &out)
		done <- out
	}()
	time.Sleep(100 * time.Millisecond)
	toks := origin.Tokenize(t, protocol.TypeEmail, "ssf-poll-1@example.se", "ssf-poll-2@example.se", "ssf-poll-3@example.se")
	place(t, origin, toks[0])
	var waited api.PollResponse
	select {
	case waited = <-done:
	case <-time.After(wait):
		t.Fatal("the waiting poll did not return")
	}
	if len(waited.Sets) != 1 {
		t.Fatalf("got %d SETs from the waiting poll, want the flag placed", len(waited.Sets))
	}
	for _, set := range waited.Sets {
		if typ, _ := eventOf(t, verify([]byte(set))); typ != string(protocol.EventFlagPlaced) {
			t.Errorf("got %s, want flag-placed", typ)
		}
	}

	// Unacknowledged SETs come again, oldest first, maxEvents at a time.
	place(t, origin, toks[1])
	place(t, origin, toks[2])
	first := poll(t, bank, map[string]any{"maxEvents": 2, "returnImmediately": true})
	if len(first.Sets) != 2 || !first.MoreAvailable {
		t.Fatalf("got %d SETs, moreAvailable %v; want 2 and more", len(first.Sets), first.MoreAvailable)
	}
	for jti := range waited.Sets {
		if _, ok := first.Sets[jti]; !ok {
			t.Errorf("the unacknowledged SET %s was not returned again first", jti)
		}
	}
	// One acknowledged, one refused: a dead letter with the receiver's error.
	var acked, refused string
	for jti := range first.Sets {
		if _, ok := waited.Sets[jti]; ok {
			acked = jti
		} else {
			refused = jti
		}
	}
	rest := poll(t, bank, map[string]any{"ack": []string{acked}, "setErrs": map[string]any{refused: map[string]any{"err": "invalid_key", "description": "Key ID 12345 has been revoked."}}, "returnImmediately": true})
	if len(rest.Sets) != 1 || rest.MoreAvailable {
		t.Errorf("got %d SETs (more %v), want the last one", len(rest.Sets), rest.MoreAvailable)
	}
	e := endpointOf(t, bank)
	if e.DeadLetters != 1 || len(e.RecentDeadLetters) != 1 || !strings.Contains(e.RecentDeadLetters[0].Response, "invalid_key") {
		t.Errorf("got dead letters %d %+v, want the refused SET with its error", e.DeadLetters, e.RecentDeadLetters)
	}

	// Bad polls change nothing.
	wantProblem(t, bank.JSON(t, http.MethodPost, "/v1/ssf/poll", map[string]any{"maxEvents": -1}), protocol.ProblemMalformedRequest)
	wantProblem(t, bank.JSON(t, http.MethodPost, "/v1/ssf/poll", map[string]any{"maxEvents": 1, "unknown": true}), protocol.ProblemMalformedRequest)
	if got := poll(t, bank, map[string]any{"returnImmediately": true}); len(got.Sets) != 1 {
		t.Errorf("got %d SETs after refused polls, want the one still queued", len(got.Sets))
	}
}
