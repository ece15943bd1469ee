package server_test

import (
	"encoding/json"
	"net/url"
	"strings"
	"testing"

	"github.com/sparr-dev/sparr/protocol"
	"github.com/sparr-dev/sparr/protocol/api"
	"github.com/sparr-dev/sparr/server"
	"github.com/sparr-dev/sparr/server/decide"
	"github.com/sparr-dev/sparr/server/hubtest"
)

// fuzzContentTypes are the Content-Type headers FuzzAPI chooses from.
var fuzzContentTypes = []string{"application/jose", "application/json", "", "text/plain", "application/json; charset=utf-8"}

// FuzzAPI sends arbitrary requests to every route of a running hub, from
// a member holding every member role (the operator for /v1/admin routes):
// any route, any path parameter, query string, Content-Type and body. The
// hub must never answer 5xx; every refusal must be an RFC 9457 problem
// document of the hub's catalogue with a detail, and must leave the store
// as it was (apart from the exchange log, which records refusals).
func FuzzAPI(f *testing.F) {
	hub := hubtest.Start(f, hubtest.Options{
		Policy: decide.Policy{SuspicionLegalBasis: "brottsdatalagen-2-kap-4-par"},
		// The fuzzer sends far more than a member may; the limits are not
		// what it tests.
		Limits: server.Limits{
			Tokens: server.Rate{PerSecond: 1e6, Burst: 1e6}, Writes: server.Rate{PerSecond: 1e6, Burst: 1e6},
			Checks: server.Rate{PerSecond: 1e6, Burst: 1e6}, Reads: server.Rate{PerSecond: 1e6, Burst: 1e6},
		},
	})
	m := hub.AddMember(f, "bank-fuzz", api.RoleFlag, api.RoleSuspicion, api.RoleCheck, api.RoleRegulator)
	// The operator's changes go to another member, so that the fuzzer
	// cannot suspend the one it calls with, or take its roles away.
	hub.AddMember(f, "bank-other", api.RoleCheck)
	routes := server.Routes()
	tok := m.Tokenize(f, protocol.TypeEmail, "fuzz@kund.example")[0]
	place := m.Sign(f, protocol.PlaceFlag{Subject: tok, Kind: protocol.FlagKindStandard, Consent: m.Consent(tok)})
	auth := &protocol.ConsumerAuth{Method: protocol.AuthBankID, AuthenticatedAt: protocol.NewNumericDate(hub.Now()), Level: protocol.LevelHigh, Reference: "fuzz-auth"}
	history := m.Sign(f, protocol.SubjectHistory{Subject: tok, ConsumerAuth: auth})
	dispute := m.Sign(f, protocol.OpenDispute{Subject: tok, SuspicionID: "no-such-suspicion", Grounds: protocol.GroundsNotMe, Statement: "not me", ConsumerAuth: auth})
	answer := m.Sign(f, protocol.AnswerDispute{DisputeID: "no-such-dispute", Answer: protocol.AnswerReject, Reason: "signed by the consumer"})
	attest := m.Sign(f, protocol.AttestErasure{Records: []string{"no-such-record"}})

	index := func(method, path string) uint8 {
		for i, r := range routes {
			if r.Method == method && r.Path == path {
				return uint8(i)
			}
		}
		f.Fatalf("no route %s %s", method, path)
		return 0
	}
	seeds := []struct {
		method, path, id, query string
		ct                      uint8
		body                    string
	}{
		{"POST", "/v1/flags", "", "", 0, string(place)},
		{"POST", "/v1/flags", "", "", 0, "eyJhbGciOiJub25lIn0.e30."},
		{"POST", "/v1/check", "", "", 1, `{"purpose":"payment","tokens":["` + tok.String() + `"]}`},
		{"POST", "/v1/check", "", "", 1, `{"purpose":"payment","tokens":["pnr.1.AAAA"]}`},
		{"POST", "/v1/tokens", "", "", 1, `{"type":"email","elements":["AAAA"]}`},
		{"POST", "/v1/flags/:id/lift", "flag-1", "", 0, string(place)},
		{"GET", "/v1/events", "", "after=0&limit=10", 2, ""},
		{"GET", "/v1/events", "", "after=-1&limit=99999999999999999999", 2, ""},
		{"GET", "/v1/log/proof/inclusion", "", "index=0&size=1", 2, ""},
		{"GET", "/v1/log/proof/consistency", "", "old=1&new=0", 2, ""},
		{"GET", "/v1/audit/entries", "", "member=bank-fuzz&action=check&from=x", 2, ""},
		{"PUT", "/v1/members/self/endpoint", "", "", 1, `{"url":"http://169.254.169.254/","events":["flag.placed"]}`},
		{"POST", "/v1/admin/members", "", "", 1, `{"id":"bank-x","name":"X","roles":["check"],"jwks":{"keys":[]}}`},
		{"PATCH", "/v1/admin/members/:id", "bank-other", "", 1, `{"roles":["operator"]}`},
		{"POST", "/v1/admin/erasures", "", "", 1, `{"subject":"` + tok.String() + `"}`},
		{"GET", "/v1/records/:jti", "../../admin/backup", "", 2, ""},
		{"POST", "/v1/checks/replica", "", "", 1, `{"checks":[{"token":"` + tok.String() + `","purpose":"payment","at":"2026-11-21T10:00:00Z"}]}`},
		{"POST", "/v1/checks/replica", "", "", 1, `{"checks":[{"token":"pnr.9.AAAA","purpose":"curiosity","at":"9999-99-99"}]}`},
		{"PATCH", "/v1/admin/members/:id", "bank-other", "", 1, `{"quotas":{"tokens_per_second":2.5,"tokens_per_day":-1,"stored_bytes_per_day":1e30}}`},
		{"POST", "/v1/subjects/history", "", "", 0, string(history)},
		{"POST", "/v1/subjects/report", "", "", 0, string(history)},
		{"POST", "/v1/disputes", "", "", 0, string(dispute)},
		{"POST", "/v1/disputes/:id/answer", "no-such-dispute", "", 0, string(answer)},
		{"GET", "/v1/disputes/:id", "../admin/backup", "", 2, ""},
		{"POST", "/v1/erasure-attestations", "", "", 0, string(attest)},
		{"GET", "/v1/erasure-attestations/:jti", "no-such-record", "", 2, ""},
	}
	for _, s := range seeds {
		f.Add(index(s.method, s.path), s.id, s.query, s.ct, []byte(s.body))
	}

	f.Fuzz(func(t *testing.T, route uint8, id, query string, ct uint8, body []byte) {
		r := routes[int(route)%len(routes)]
		caller := m
		if strings.HasPrefix(r.Path, "/v1/admin/") {
			caller = hub.Operator
			if id == m.ID {
				id = "bank-other"
			}
		}
		path := r.Path
		for _, param := range []string{":id", ":jti"} {
			path = strings.ReplaceAll(path, param, url.PathEscape(id))
		}
		if query != "" {
			path += "?" + query
		}
		// A request line with a space or a control character in it is
		// answered by net/http itself, before the hub sees it.
		if strings.ContainsFunc(query, func(r rune) bool { return r <= ' ' || r >= 0x7f }) {
			t.Skip("not sendable as a request line")
		}
		if _, err := url.ParseRequestURI(hub.URL + path); err != nil {
			t.Skip("not a request URI")
		}
		before := hub.Snapshot(t)
		resp := caller.Do(t, r.Method, path, fuzzContentTypes[int(ct)%len(fuzzContentTypes)], body)
		if resp.Status >= 500 {
			t.Fatalf("%s %s: status %d: %s", r.Method, path, resp.Status, resp.Body)
		}
		if resp.Status < 400 {
			return
		}
		if ct := resp.Header.Get("Content-Type"); ct != protocol.ProblemContentType {
			t.Fatalf("%s %s: status %d with Content-Type %q, want %s", r.Method, path, resp.Status, ct, protocol.ProblemContentType)
		}
		var p protocol.Problem
		if err := json.Unmarshal(resp.Body, &p); err != nil {
			t.Fatalf("%s %s: problem document does not decode: %v: %s", r.Method, path, err, resp.Body)
		}
		known := false
		for _, pt := range protocol.ProblemTypes() {
			if pt.URI == p.Type && pt.Status == p.Status {
				known = true
			}
		}
		if !known || p.Status != resp.Status || p.Detail == "" || p.RequestID == "" {
			t.Fatalf("%s %s: status %d, problem %s: want a catalogued type with this status, a detail and a request id", r.Method, path, resp.Status, resp.Body)
		}
		if diff := snapshotDiff(before, hub.Snapshot(t)); len(diff) > 0 {
			t.Fatalf("%s %s refused with %s but changed the store: %v", r.Method, path, p.Type, diff)
		}
	})
}
