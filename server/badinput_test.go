package server_test

import (
	"bytes"
	"crypto"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/sparr-dev/sparr/protocol"
	"github.com/sparr-dev/sparr/protocol/api"
	"github.com/sparr-dev/sparr/server"
	"github.com/sparr-dev/sparr/server/decide"
	"github.com/sparr-dev/sparr/server/hubtest"
	"github.com/sparr-dev/sparr/server/state"
)

// signRaw signs claims as a submission by hand, with whatever header iss
// and kid it is given, so a test can send what the protocol package would
// refuse to sign. The key must be an Ed25519 key.
func signRaw(t testing.TB, signer crypto.Signer, kid, iss string, claims any) []byte {
	t.Helper()
	enc := func(v any) string {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return base64.RawURLEncoding.EncodeToString(b)
	}
	input := enc(map[string]string{"alg": "EdDSA", "kid": kid, "typ": protocol.TypeSubmission, "iss": iss}) + "." + enc(claims)
	sig, err := signer.Sign(rand.Reader, []byte(input), crypto.Hash(0))
	if err != nil {
		t.Fatal(err)
	}
	return []byte(input + "." + base64.RawURLEncoding.EncodeToString(sig))
}

var jtiSeq int

func nextJTI() string {
	jtiSeq++
	return fmt.Sprintf("bad-input-%d-%d", time.Now().UnixNano(), jtiSeq)
}

// snapshotDiff lists the keys that differ between two snapshots.
func snapshotDiff(before, after map[string]string) []string {
	var diff []string
	for k, v := range after {
		if w, ok := before[k]; !ok {
			diff = append(diff, "added "+k)
		} else if w != v {
			diff = append(diff, "changed "+k)
		}
	}
	for k := range before {
		if _, ok := after[k]; !ok {
			diff = append(diff, "removed "+k)
		}
	}
	slices.Sort(diff)
	return diff
}

// logBuckets are the store's buckets of the exchange log: its entries,
// their details, and their Merkle hashes.
var logBuckets = []string{"log", "log_details", "log_hashes"}

// onlyEntryAdded lists how after differs from before other than by the one
// new exchange-log entry e: every other bucket byte for byte as it was
// (the log's clock aside, which takes e's time, and the member's use of
// its daily allowance of stored bytes, which the entry is charged to),
// and the log's buckets grown by exactly e's line, its details, and the
// Merkle hashes its leaf completes.
func onlyEntryAdded(t *testing.T, before, after *hubtest.Dump, e *protocol.LogEntry) []string {
	t.Helper()
	var diff []string
	names := map[string]bool{}
	for b := range before.Buckets {
		names[b] = true
	}
	for b := range after.Buckets {
		names[b] = true
	}
	for b := range names {
		if slices.Contains(logBuckets, b) {
			continue
		}
		was, is := maps.Clone(before.Buckets[b]), maps.Clone(after.Buckets[b])
		if b == "meta" {
			if got, want := is["log_time"], string(binary.BigEndian.AppendUint64(nil, uint64(e.Time.UnixNano()))); got != want {
				diff = append(diff, fmt.Sprintf("meta/log_time is %x, want %x: the new entry's time", got, want))
			}
			delete(was, "log_time")
			delete(is, "log_time")
		}
		if b == "usage" {
			key := e.Member + "\x00" + e.Time.UTC().Format(time.DateOnly)
			if d := charged(was[key], is[key], e.Member != server.OperatorID); d != "" {
				diff = append(diff, "usage/"+key+": "+d)
			}
			delete(was, key)
			delete(is, key)
		}
		diff = append(diff, snapshotDiff(prefixed(b, was), prefixed(b, is))...)
	}
	for b, n := range after.Sequences {
		want := before.Sequences[b]
		if b == "log" {
			want++
		}
		if n != want {
			diff = append(diff, fmt.Sprintf("%s sequence %d, want %d", b, n, want))
		}
	}

	// The log's buckets: exactly the entry, its details and its hashes.
	key := string(binary.BigEndian.AppendUint64(nil, e.Index))
	line, err := e.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	hashes, err := tlog.StoredHashes(int64(e.Index), line, tlog.HashReaderFunc(func(idx []int64) ([]tlog.Hash, error) {
		out := make([]tlog.Hash, len(idx))
		for i, x := range idx {
			h, ok := before.Buckets["log_hashes"][string(binary.BigEndian.AppendUint64(nil, uint64(x)))]
			if !ok {
				return nil, fmt.Errorf("stored hash %d missing", x)
			}
			copy(out[i][:], h)
		}
		return out, nil
	}))
	if err != nil {
		t.Fatal(err)
	}
	added := map[string]map[string]string{"log": {key: string(line)}, "log_hashes": {}}
	first := tlog.StoredHashIndex(0, int64(e.Index))
	for i, h := range hashes {
		added["log_hashes"][string(binary.BigEndian.AppendUint64(nil, uint64(first)+uint64(i)))] = string(h[:])
	}
	if v, ok := after.Buckets["log_details"][key]; ok {
		var d state.Details
		if err := json.Unmarshal([]byte(v), &d); err != nil || !bytes.Equal(protocol.LogCommitment(d.Salt, d.Details), e.Commitment) {
			diff = append(diff, "log_details of the new entry do not match its commitment")
		}
		added["log_details"] = map[string]string{key: v}
	}
	for _, b := range logBuckets {
		want := maps.Clone(before.Buckets[b])
		if want == nil {
			want = map[string]string{}
		}
		maps.Copy(want, added[b])
		for _, k := range snapshotDiff(prefixed(b, want), prefixed(b, after.Buckets[b])) {
			diff = append(diff, k+" (beyond the new entry)")
		}
	}
	return diff
}

// charged says what is wrong with a member's use of its daily quotas going
// from was to is (JSON, "" for none) for one refusal's entry: its stored
// bytes grow (unless the member is not charged), and nothing else changes.
func charged(was, is string, wantCharge bool) string {
	var before, after struct {
		Tokens int64 `json:"tokens"`
		Bytes  int64 `json:"bytes"`
	}
	for _, u := range []struct {
		raw string
		v   any
	}{{was, &before}, {is, &after}} {
		if u.raw != "" {
			if err := json.Unmarshal([]byte(u.raw), u.v); err != nil {
				return fmt.Sprintf("not a usage: %v", err)
			}
		}
	}
	switch {
	case after.Tokens != before.Tokens:
		return fmt.Sprintf("tokens went from %d to %d, want them as they were", before.Tokens, after.Tokens)
	case wantCharge && after.Bytes <= before.Bytes:
		return fmt.Sprintf("stored bytes went from %d to %d, want the refusal's entry charged", before.Bytes, after.Bytes)
	case !wantCharge && after.Bytes != before.Bytes:
		return fmt.Sprintf("stored bytes went from %d to %d, want the operator not charged", before.Bytes, after.Bytes)
	}
	return ""
}

// prefixed returns m with its keys as "bucket/key", as snapshotDiff takes.
func prefixed(bucket string, m map[string]string) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[bucket+"/"+k] = v
	}
	return out
}

// routeActions maps "METHOD path" to the action the log records for it.
func routeActions() map[string]protocol.LogAction {
	out := map[string]protocol.LogAction{}
	for _, r := range server.Routes() {
		out[r.Method+" "+r.Path] = r.Action
	}
	return out
}

// A badInput is a bad request by an authenticated member and what the hub
// must answer.
type badInput struct {
	name   string
	hub    *hubtest.Hub
	caller *hubtest.Member
	route  string // "METHOD path", gin syntax
	// before, if set, runs before the snapshot is taken.
	before func(t *testing.T)
	do     func(t *testing.T) *hubtest.Response
	want   protocol.ProblemType
	detail string // the detail must say this
	// pointer, if set, is the JSON Pointer (RFC 6901) into the body sent
	// that the problem's first field at fault must carry.
	pointer string
}

// TestBadInputChangesNothingButTheLog sends bad requests from
// authenticated members. Each must be refused with the right status and
// problem, with a detail that says what was wrong and the request id, and
// must leave the store byte for byte as it was apart from exactly one new
// exchange-log entry, "<action> rejected:<slug>" for the caller, with its
// details and Merkle hashes.
func TestBadInputChangesNothingButTheLog(t *testing.T) {
	clock := hubtest.NewClock(time.Now().UTC().Truncate(time.Second))
	// No checkpoint is signed while the test runs: it would be a change
	// the request did not make.
	quiet := func(c *server.Config) { c.CheckpointInterval = time.Hour }
	hub := hubtest.Start(t, hubtest.Options{Clock: clock, Policy: decide.Policy{SuspicionLegalBasis: "brottsdatalagen-2-kap-4-par"}, Configure: quiet})
	off := hubtest.Start(t, hubtest.Options{Clock: clock, Configure: quiet})
	roles := []api.Role{api.RoleFlag, api.RoleSuspicion, api.RoleCheck}
	a := hub.AddMember(t, "bank-a", roles...)
	b := hub.AddMember(t, "bank-b", roles...)
	offA := off.AddMember(t, "bank-a", roles...)
	op := hub.Operator
	now := clock.Now()

	toks := a.Tokenize(t, protocol.TypeEmail, "ett@kund.example", "tva@kund.example", "tre@kund.example", "fyra@kund.example")
	oldEpoch := toks[0]
	oldEpoch.Epoch = 2
	report := &protocol.PoliceReport{Authority: "Polismyndigheten", CaseNumber: "5000-K123456-26", Date: now.Format(time.DateOnly)}

	// sign signs a submission as the SDK would, but lets edit forge what
	// the SDK never sends: another audience, an old iat, a reused jti.
	sign := func(m *hubtest.Member, req protocol.Request, edit func(*protocol.Submission)) []byte {
		t.Helper()
		s := &protocol.Submission{Issuer: m.ID, Audience: hub.URL, IssuedAt: clock.Now(), ID: nextJTI(), Request: req}
		if edit != nil {
			edit(s)
		}
		jws, err := protocol.SignSubmission(s, m.Key)
		if err != nil {
			t.Fatal(err)
		}
		return jws
	}
	// claims is a submission's payload as a map, for hand-made submissions.
	claims := func(m *hubtest.Member, action protocol.Action, request any) map[string]any {
		return map[string]any{"iss": m.ID, "aud": hub.URL, "iat": clock.Now().Unix(), "jti": nextJTI(), "action": action, "request": request}
	}
	consentMap := func(m *hubtest.Member, tok protocol.Token) map[string]any {
		t.Helper()
		var v map[string]any
		b, _ := json.Marshal(m.Consent(tok))
		if err := json.Unmarshal(b, &v); err != nil {
			t.Fatal(err)
		}
		return v
	}
	post := func(m *hubtest.Member, path, contentType string, body []byte) func(*testing.T) *hubtest.Response {
		return func(t *testing.T) *hubtest.Response { return m.Do(t, http.MethodPost, path, contentType, body) }
	}
	jose := func(m *hubtest.Member, path string, jws []byte) func(*testing.T) *hubtest.Response {
		return post(m, path, "application/jose", jws)
	}
	jsonBody := func(m *hubtest.Member, path string, v any) func(*testing.T) *hubtest.Response {
		return func(t *testing.T) *hubtest.Response { return m.JSON(t, http.MethodPost, path, v) }
	}

	// An active flag, a lifted one, one expiring in two hours, and a check
	// of bank-b's.
	placeUntil := func(tok protocol.Token, expires time.Time) string {
		t.Helper()
		resp := a.Submit(t, "/v1/flags", protocol.PlaceFlag{Subject: tok, Kind: protocol.FlagKindStandard, ExpiresAt: protocol.NewNumericDate(expires), Consent: a.Consent(tok)})
		if resp.Status != http.StatusCreated {
			t.Fatalf("place: got status %d, want 201: %s", resp.Status, resp.Body)
		}
		var out struct {
			Flag struct {
				FlagID string `json:"flag_id"`
			} `json:"flag"`
		}
		resp.JSON(t, &out)
		return out.Flag.FlagID
	}
	active := placeUntil(toks[0], time.Time{})
	lifted := placeUntil(toks[1], time.Time{})
	soon := placeUntil(toks[3], now.Add(2*time.Hour))
	if resp := a.Submit(t, "/v1/flags/"+lifted+"/lift", protocol.LiftFlag{FlagID: lifted}); resp.Status != http.StatusOK {
		t.Fatalf("lift: got status %d, want 200: %s", resp.Status, resp.Body)
	}
	var bCheck api.CheckResponse
	if resp := b.JSON(t, http.MethodPost, "/v1/check", map[string]any{"purpose": "payment", "tokens": []string{toks[2].String()}}); resp.Status != http.StatusOK {
		t.Fatalf("check: got status %d, want 200: %s", resp.Status, resp.Body)
	} else {
		resp.JSON(t, &bCheck)
	}

	// bank-b's check of the flagged token, which notifies bank-a.
	var noticed api.CheckResponse
	if resp := b.JSON(t, http.MethodPost, "/v1/check", map[string]any{"purpose": "credit-application", "tokens": []string{toks[0].String()}}); resp.Status != http.StatusOK {
		t.Fatalf("check: got status %d, want 200: %s", resp.Status, resp.Body)
	} else {
		resp.JSON(t, &noticed)
	}
	authAt := func(at time.Time) *protocol.ConsumerAuth {
		return &protocol.ConsumerAuth{Method: protocol.AuthBankID, AuthenticatedAt: protocol.NewNumericDate(at), Level: protocol.LevelHigh, Reference: "bankid-order-9"}
	}

	tampered := func() []byte {
		jws := sign(a, protocol.PlaceFlag{Subject: toks[2], Kind: protocol.FlagKindStandard, Consent: a.Consent(toks[2])}, nil)
		parts := bytes.Split(jws, []byte("."))
		payload, err := base64.RawURLEncoding.DecodeString(string(parts[1]))
		if err != nil {
			t.Fatal(err)
		}
		payload = bytes.Replace(payload, []byte(`"kind":"standard"`), []byte(`"kind":"extended"`), 1)
		parts[1] = []byte(base64.RawURLEncoding.EncodeToString(payload))
		return bytes.Join(parts, []byte("."))
	}
	jwks, _ := json.Marshal(map[string]any{"keys": []*protocol.PublicKey{b.Key.Public()}})
	withConsent := func(edit func(*protocol.Consent)) protocol.Request {
		c := a.Consent(toks[2])
		edit(c)
		return protocol.PlaceFlag{Subject: toks[2], Kind: protocol.FlagKindStandard, Consent: c}
	}
	reusedJTI := nextJTI()
	huge := bytes.Repeat([]byte("a"), server.MaxBodySize+1)
	hundredOne := make([]string, protocol.MaxTokenBatch+1)
	for i := range hundredOne {
		hundredOne[i] = toks[0].String()
	}

	cases := []badInput{
		// Bodies that are not what the route takes.
		{name: "check: malformed JSON", caller: a, route: "POST /v1/check",
			do: post(a, "/v1/check", "application/json", []byte(`{"purpose":"payment","tokens":[`)), want: protocol.ProblemMalformedRequest, detail: "not the JSON"},
		{name: "tokens: malformed JSON", caller: a, route: "POST /v1/tokens",
			do: post(a, "/v1/tokens", "application/json", []byte(`{"type":"email",`)), want: protocol.ProblemMalformedRequest, detail: "not the JSON"},
		{name: "check: unknown field", caller: a, route: "POST /v1/check",
			do:   jsonBody(a, "/v1/check", map[string]any{"purpose": "payment", "tokens": []string{toks[0].String()}, "verbose": true}),
			want: protocol.ProblemMalformedRequest, detail: `"verbose"`},
		{name: "tokens: unknown field", caller: a, route: "POST /v1/tokens",
			do:   jsonBody(a, "/v1/tokens", map[string]any{"type": "email", "epoch": 1, "blinded": []string{}, "pepper": "x"}),
			want: protocol.ProblemMalformedRequest, detail: `"pepper"`},
		{name: "details: unknown field", caller: a, route: "POST /v1/suspicions/:id/details",
			do:   jsonBody(a, "/v1/suspicions/s-1/details", map[string]any{"purpose": "payment", "justification": "a payment of 90 000 kr to a new payee", "urgent": true}),
			want: protocol.ProblemMalformedRequest, detail: `"urgent"`},
		{name: "check: data after the JSON", caller: a, route: "POST /v1/check",
			do: post(a, "/v1/check", "application/json", []byte(`{"purpose":"payment","tokens":[]} {}`)), want: protocol.ProblemMalformedRequest, detail: "after the JSON"},
		{name: "check: body over 1 MiB", caller: a, route: "POST /v1/check",
			do: post(a, "/v1/check", "application/json", huge), want: protocol.ProblemPayloadTooLarge, detail: fmt.Sprint(server.MaxBodySize)},
		{name: "flags: body over 1 MiB", caller: a, route: "POST /v1/flags",
			do: post(a, "/v1/flags", "application/jose", huge), want: protocol.ProblemPayloadTooLarge, detail: fmt.Sprint(server.MaxBodySize)},
		{name: "check: text/plain", caller: a, route: "POST /v1/check",
			do: post(a, "/v1/check", "text/plain", []byte(`{}`)), want: protocol.ProblemUnsupportedMediaType, detail: "application/json"},
		{name: "flags: JSON instead of a JWS", caller: a, route: "POST /v1/flags",
			do: post(a, "/v1/flags", "application/json", []byte(`{}`)), want: protocol.ProblemUnsupportedMediaType, detail: "application/jose"},

		// Submissions that do not verify.
		{name: "flags: not a JWS", caller: a, route: "POST /v1/flags",
			do: jose(a, "/v1/flags", []byte("not-a-jws")), want: protocol.ProblemInvalidSubmission, detail: "not a compact JWS"},
		{name: "flags: tampered payload", caller: a, route: "POST /v1/flags",
			do: jose(a, "/v1/flags", tampered()), want: protocol.ProblemInvalidSubmission, detail: "signature does not verify"},
		{name: "flags: signed by another member", caller: a, route: "POST /v1/flags",
			do:   jose(a, "/v1/flags", sign(b, protocol.PlaceFlag{Subject: toks[2], Kind: protocol.FlagKindStandard, Consent: b.Consent(toks[2])}, nil)),
			want: protocol.ProblemWrongSigner, detail: `signed by member "bank-b"`},
		{name: "flags: another member's key under this member's kid", caller: a, route: "POST /v1/flags",
			do: jose(a, "/v1/flags", signRaw(t, b.Key.Signer(), a.Key.KeyID(), a.ID,
				claims(a, protocol.ActionPlaceFlag, map[string]any{"subject": toks[2].String(), "kind": "standard", "consent": consentMap(a, toks[2])}))),
			want: protocol.ProblemInvalidSubmission, detail: "signature does not verify"},
		{name: "flags: for another hub", caller: a, route: "POST /v1/flags",
			do:   jose(a, "/v1/flags", sign(a, withConsent(func(*protocol.Consent) {}), func(s *protocol.Submission) { s.Audience = "https://other-hub.example" })),
			want: protocol.ProblemInvalidSubmission, detail: "aud", pointer: "/aud"},
		{name: "flags: signed 25 hours ago", caller: a, route: "POST /v1/flags",
			do:   jose(a, "/v1/flags", sign(a, withConsent(func(*protocol.Consent) {}), func(s *protocol.Submission) { s.IssuedAt = now.Add(-25 * time.Hour) })),
			want: protocol.ProblemInvalidSubmission, detail: "more than 24h0m0s ago"},
		{name: "flags: unknown claim in the signed payload", caller: a, route: "POST /v1/flags",
			do: jose(a, "/v1/flags", signRaw(t, a.Key.Signer(), a.Key.KeyID(), a.ID, func() map[string]any {
				c := claims(a, protocol.ActionPlaceFlag, map[string]any{"subject": toks[2].String(), "kind": "standard", "consent": consentMap(a, toks[2])})
				c["priority"] = "high"
				return c
			}())),
			want: protocol.ProblemInvalidSubmission, detail: `"priority"`},
		{name: "flags: unknown field in the signed request", caller: a, route: "POST /v1/flags",
			do: jose(a, "/v1/flags", signRaw(t, a.Key.Signer(), a.Key.KeyID(), a.ID,
				claims(a, protocol.ActionPlaceFlag, map[string]any{"subject": toks[2].String(), "kind": "standard", "consent": consentMap(a, toks[2]), "silent": true}))),
			want: protocol.ProblemInvalidSubmission, detail: `"silent"`},
		{name: "flags: another action", caller: a, route: "POST /v1/flags",
			do: jose(a, "/v1/flags", sign(a, protocol.LiftFlag{FlagID: active}, nil)), want: protocol.ProblemInvalidSubmission, detail: `asks for "flag-lift"`},
		{name: "flags: jti reused for other content", caller: a, route: "POST /v1/flags",
			before: func(t *testing.T) {
				jws := sign(a, withConsent(func(*protocol.Consent) {}), func(s *protocol.Submission) { s.ID = reusedJTI })
				if resp := a.Do(t, http.MethodPost, "/v1/flags", "application/jose", jws); resp.Status != http.StatusCreated {
					t.Fatalf("first use of the jti: got status %d, want 201: %s", resp.Status, resp.Body)
				}
			},
			do: func(t *testing.T) *hubtest.Response {
				jws := sign(a, withConsent(func(*protocol.Consent) {}), func(s *protocol.Submission) { s.ID = reusedJTI })
				return a.Do(t, http.MethodPost, "/v1/flags", "application/jose", jws)
			},
			want: protocol.ProblemSubmissionConflict, detail: reusedJTI},
		{name: "extend: flag id other than the URL's", caller: a, route: "POST /v1/flags/:id/extend",
			do:   jose(a, "/v1/flags/"+active+"/extend", sign(a, protocol.ExtendFlag{FlagID: lifted, Kind: protocol.FlagKindStandard}, nil)),
			want: protocol.ProblemInvalidSubmission, detail: "URL", pointer: "/request/flag_id"},

		// Tokens that cannot be used.
		{name: "check: not a token", caller: a, route: "POST /v1/check",
			do:   jsonBody(a, "/v1/check", map[string]any{"purpose": "payment", "tokens": []string{toks[0].String(), "pnr.1.abc"}}),
			want: protocol.ProblemInvalidToken, detail: "tokens[1]", pointer: "/tokens/1"},
		{name: "check: token of another epoch", caller: a, route: "POST /v1/check",
			do:   jsonBody(a, "/v1/check", map[string]any{"purpose": "payment", "tokens": []string{oldEpoch.String()}}),
			want: protocol.ProblemInvalidToken, detail: "epoch 2"},
		{name: "tokens: batch for another epoch", caller: a, route: "POST /v1/tokens",
			do:   jsonBody(a, "/v1/tokens", map[string]any{"type": "email", "epoch": 2, "blinded": []string{"AAAA"}}),
			want: protocol.ProblemInvalidTokenRequest, detail: "epoch"},
		{name: "flags: subject not a token", caller: a, route: "POST /v1/flags",
			do: jose(a, "/v1/flags", signRaw(t, a.Key.Signer(), a.Key.KeyID(), a.ID,
				claims(a, protocol.ActionPlaceFlag, map[string]any{"subject": "not-a-token", "kind": "standard", "consent": consentMap(a, toks[2])}))),
			want: protocol.ProblemInvalidSubmission, detail: "invalid token"},
		{name: "flags: subject of another epoch", caller: a, route: "POST /v1/flags",
			do: jose(a, "/v1/flags", sign(a, func() protocol.Request {
				c := a.Consent(oldEpoch)
				return protocol.PlaceFlag{Subject: oldEpoch, Kind: protocol.FlagKindStandard, Consent: c}
			}(), nil)),
			want: protocol.ProblemInvalidToken, detail: "epoch 2"},
		{name: "suspicions: subject not a token", caller: a, route: "POST /v1/suspicions",
			do: jose(a, "/v1/suspicions", signRaw(t, a.Key.Signer(), a.Key.KeyID(), a.ID,
				claims(a, protocol.ActionReportSuspicion, map[string]any{"subjects": []string{"pnr.1.abc"}, "category": "money-mule", "police_report": report}))),
			want: protocol.ProblemInvalidSubmission, detail: "invalid token"},
		{name: "suspicions: subject of another epoch", caller: a, route: "POST /v1/suspicions",
			do:   jose(a, "/v1/suspicions", sign(a, protocol.ReportSuspicion{Subjects: []protocol.Token{toks[2], oldEpoch}, Category: protocol.CategoryMoneyMule, PoliceReport: report}, nil)),
			want: protocol.ProblemInvalidToken, detail: "epoch 2"},

		// Consent and police reports.
		{name: "flags: no consent", caller: a, route: "POST /v1/flags",
			do: jose(a, "/v1/flags", signRaw(t, a.Key.Signer(), a.Key.KeyID(), a.ID,
				claims(a, protocol.ActionPlaceFlag, map[string]any{"subject": toks[2].String(), "kind": "standard"}))),
			want: protocol.ProblemInvalidSubmission, detail: "missing claim request.consent", pointer: "/request/consent"},
		{name: "flags: consent of another controller", caller: a, route: "POST /v1/flags",
			do:   jose(a, "/v1/flags", sign(a, withConsent(func(c *protocol.Consent) { c.Controller = "bank-b" }), nil)),
			want: protocol.ProblemInvalidConsent, detail: "controller", pointer: "/request/consent/controller"},
		{name: "flags: consent collected two days ago", caller: a, route: "POST /v1/flags",
			do:   jose(a, "/v1/flags", sign(a, withConsent(func(c *protocol.Consent) { c.Collection.At = protocol.NewNumericDate(now.Add(-48 * time.Hour)) }), nil)),
			want: protocol.ProblemInvalidConsent, detail: "collection.at"},
		{name: "flags: consent lapsing before the flag", caller: a, route: "POST /v1/flags",
			do:   jose(a, "/v1/flags", sign(a, withConsent(func(c *protocol.Consent) { c.ExpiresAt = protocol.NewNumericDate(now.AddDate(0, 1, 0)) }), nil)),
			want: protocol.ProblemInvalidConsent, detail: "before the flag"},
		{name: "flags: extended without a police report", caller: a, route: "POST /v1/flags",
			do: jose(a, "/v1/flags", signRaw(t, a.Key.Signer(), a.Key.KeyID(), a.ID,
				claims(a, protocol.ActionPlaceFlag, map[string]any{"subject": toks[2].String(), "kind": "extended", "consent": consentMap(a, toks[2])}))),
			want: protocol.ProblemInvalidSubmission, detail: "police_report"},
		{name: "extend: extended without a police report", caller: a, route: "POST /v1/flags/:id/extend",
			do: jose(a, "/v1/flags/"+active+"/extend", signRaw(t, a.Key.Signer(), a.Key.KeyID(), a.ID,
				claims(a, protocol.ActionExtendFlag, map[string]any{"flag_id": active, "kind": "extended"}))),
			want: protocol.ProblemInvalidSubmission, detail: "police_report"},
		{name: "suspicions: no police report", caller: a, route: "POST /v1/suspicions",
			do: jose(a, "/v1/suspicions", signRaw(t, a.Key.Signer(), a.Key.KeyID(), a.ID,
				claims(a, protocol.ActionReportSuspicion, map[string]any{"subjects": []string{toks[2].String()}, "category": "money-mule"}))),
			want: protocol.ProblemInvalidSubmission, detail: "police_report"},
		{name: "suspicions: police report dated tomorrow", caller: a, route: "POST /v1/suspicions",
			do: jose(a, "/v1/suspicions", sign(a, protocol.ReportSuspicion{Subjects: []protocol.Token{toks[2]}, Category: protocol.CategoryMoneyMule,
				PoliceReport: &protocol.PoliceReport{Authority: "Polismyndigheten", CaseNumber: "5000-K1-26", Date: now.AddDate(0, 0, 2).Format(time.DateOnly)}}, nil)),
			want: protocol.ProblemValidation, detail: "in the future"},
		{name: "suspicions: hub without a legal basis", hub: off, caller: offA, route: "POST /v1/suspicions",
			do: func(t *testing.T) *hubtest.Response {
				return offA.Submit(t, "/v1/suspicions", protocol.ReportSuspicion{Subjects: []protocol.Token{toks[2]}, Category: protocol.CategoryMoneyMule, PoliceReport: report})
			},
			want: protocol.ProblemSuspicionsDisabled, detail: "legal basis"},

		// Times past the protocol's range, up to the largest int64.
		{name: "flags: expires_at past the range", caller: a, route: "POST /v1/flags",
			do: jose(a, "/v1/flags", signRaw(t, a.Key.Signer(), a.Key.KeyID(), a.ID,
				claims(a, protocol.ActionPlaceFlag, map[string]any{"subject": toks[2].String(), "kind": "standard", "expires_at": int64(math.MaxInt64), "consent": consentMap(a, toks[2])}))),
			want: protocol.ProblemInvalidSubmission, detail: "out of range"},
		{name: "flags: consent expires_at past the range", caller: a, route: "POST /v1/flags",
			do: jose(a, "/v1/flags", signRaw(t, a.Key.Signer(), a.Key.KeyID(), a.ID,
				claims(a, protocol.ActionPlaceFlag, map[string]any{"subject": toks[2].String(), "kind": "standard", "consent": func() map[string]any {
					c := consentMap(a, toks[2])
					c["expires_at"] = int64(math.MaxInt64)
					return c
				}()}))),
			want: protocol.ProblemInvalidSubmission, detail: "out of range"},
		{name: "thaw: thaw_until past the range", caller: a, route: "POST /v1/flags/:id/thaw",
			do: jose(a, "/v1/flags/"+active+"/thaw", signRaw(t, a.Key.Signer(), a.Key.KeyID(), a.ID,
				claims(a, protocol.ActionThawFlag, map[string]any{"flag_id": active, "thaw_until": int64(math.MaxInt64)}))),
			want: protocol.ProblemInvalidSubmission, detail: "out of range"},
		{name: "lift: iat past the range", caller: a, route: "POST /v1/flags/:id/lift",
			do: jose(a, "/v1/flags/"+active+"/lift", signRaw(t, a.Key.Signer(), a.Key.KeyID(), a.ID, func() map[string]any {
				c := claims(a, protocol.ActionLiftFlag, map[string]any{"flag_id": active})
				c["iat"] = int64(math.MaxInt64)
				return c
			}())),
			want: protocol.ProblemInvalidSubmission, detail: "out of range"},

		// Flags in the wrong state, or asked too much of.
		{name: "thaw: longer than the policy allows", caller: a, route: "POST /v1/flags/:id/thaw",
			do:   jose(a, "/v1/flags/"+active+"/thaw", sign(a, protocol.ThawFlag{FlagID: active, ThawUntil: protocol.NewNumericDate(now.Add(73 * time.Hour))}, nil)),
			want: protocol.ProblemValidation, detail: "longer than the 72h0m0s"},
		{name: "thaw: starting more than 30 days ahead", caller: a, route: "POST /v1/flags/:id/thaw",
			do: jose(a, "/v1/flags/"+active+"/thaw", sign(a, protocol.ThawFlag{FlagID: active,
				ThawFrom: protocol.NewNumericDate(now.Add(31 * 24 * time.Hour)), ThawUntil: protocol.NewNumericDate(now.Add(31*24*time.Hour + time.Hour))}, nil)),
			want: protocol.ProblemValidation, detail: "30 days ahead"},
		{name: "thaw: ending after the flag's expiry", caller: a, route: "POST /v1/flags/:id/thaw",
			do:   jose(a, "/v1/flags/"+soon+"/thaw", sign(a, protocol.ThawFlag{FlagID: soon, ThawUntil: protocol.NewNumericDate(now.Add(3 * time.Hour))}, nil)),
			want: protocol.ProblemValidation, detail: "after the flag's expiry"},
		{name: "thaw: unknown flag", caller: a, route: "POST /v1/flags/:id/thaw",
			do:   jose(a, "/v1/flags/no-such-flag/thaw", sign(a, protocol.ThawFlag{FlagID: "no-such-flag", ThawUntil: protocol.NewNumericDate(now.Add(time.Hour))}, nil)),
			want: protocol.ProblemNotFound, detail: `"no-such-flag"`},
		{name: "thaw: lifted flag", caller: a, route: "POST /v1/flags/:id/thaw",
			do:   jose(a, "/v1/flags/"+lifted+"/thaw", sign(a, protocol.ThawFlag{FlagID: lifted, ThawUntil: protocol.NewNumericDate(now.Add(time.Hour))}, nil)),
			want: protocol.ProblemStateConflict, detail: "lifted"},
		{name: "lift: lifted flag", caller: a, route: "POST /v1/flags/:id/lift",
			do:   jose(a, "/v1/flags/"+lifted+"/lift", sign(a, protocol.LiftFlag{FlagID: lifted}, nil)),
			want: protocol.ProblemStateConflict, detail: "lifted"},

		// Checks, details and outcomes.
		{name: "details: justification too short", caller: a, route: "POST /v1/suspicions/:id/details",
			do:   jsonBody(a, "/v1/suspicions/s-1/details", map[string]any{"purpose": "payment", "justification": "because"}),
			want: protocol.ProblemValidation, detail: "justification: 7 characters", pointer: "/justification"},
		{name: "check: unknown purpose", caller: a, route: "POST /v1/check",
			do:   jsonBody(a, "/v1/check", map[string]any{"purpose": "curiosity", "tokens": []string{toks[0].String()}}),
			want: protocol.ProblemValidation, detail: `"curiosity" is not a purpose`},
		{name: "check: no tokens", caller: a, route: "POST /v1/check",
			do:   jsonBody(a, "/v1/check", map[string]any{"purpose": "payment", "tokens": []string{}}),
			want: protocol.ProblemValidation, detail: "0 tokens"},
		{name: "check: 101 tokens", caller: a, route: "POST /v1/check",
			do:   jsonBody(a, "/v1/check", map[string]any{"purpose": "payment", "tokens": hundredOne}),
			want: protocol.ProblemValidation, detail: "101 tokens"},
		{name: "outcome: another member's check", caller: a, route: "POST /v1/checks/:id/outcome",
			do:   jsonBody(a, "/v1/checks/"+bCheck.CheckID+"/outcome", map[string]any{"outcome": "verified"}),
			want: protocol.ProblemNotFound, detail: bCheck.CheckID},
		{name: "outcome: unknown outcome", caller: b, route: "POST /v1/checks/:id/outcome",
			do:   jsonBody(b, "/v1/checks/"+bCheck.CheckID+"/outcome", map[string]any{"outcome": "probably-fine"}),
			want: protocol.ProblemValidation, detail: "probably-fine"},
		{name: "replica checks: none", caller: a, route: "POST /v1/checks/replica",
			do:   jsonBody(a, "/v1/checks/replica", map[string]any{"checks": []any{}}),
			want: protocol.ProblemValidation, detail: "0 checks"},
		{name: "replica checks: unknown purpose", caller: a, route: "POST /v1/checks/replica",
			do: jsonBody(a, "/v1/checks/replica", map[string]any{"checks": []map[string]any{
				{"token": toks[0].String(), "purpose": "curiosity", "at": now.Format(time.RFC3339)}}}),
			want: protocol.ProblemValidation, detail: `"curiosity" is not a purpose`},
		{name: "replica checks: a week and a day old", caller: a, route: "POST /v1/checks/replica",
			do: jsonBody(a, "/v1/checks/replica", map[string]any{"checks": []map[string]any{
				{"token": toks[0].String(), "purpose": "payment", "at": now.Add(-8 * 24 * time.Hour).Format(time.RFC3339)}}}),
			want: protocol.ProblemValidation, detail: "checks[0].at", pointer: "/checks/0/at"},
		{name: "replica checks: a token of another epoch", caller: a, route: "POST /v1/checks/replica",
			do: jsonBody(a, "/v1/checks/replica", map[string]any{"checks": []map[string]any{
				{"token": oldEpoch.String(), "purpose": "payment", "at": now.Format(time.RFC3339)}}}),
			want: protocol.ProblemInvalidToken, detail: "epoch 2"},

		{name: "deny: stale authentication", caller: a, route: "POST /v1/checks/:id/denial",
			do:   jose(a, "/v1/checks/"+noticed.CheckID+"/denial", sign(a, protocol.DenyCheck{CheckID: noticed.CheckID, FlagID: active, ConsumerAuth: authAt(now.Add(-2 * time.Hour))}, nil)),
			want: protocol.ProblemValidation, detail: "authenticate the consumer again", pointer: "/request/consumer_auth/authenticated_at"},
		{name: "deny: another check than the URL's", caller: a, route: "POST /v1/checks/:id/denial",
			do:   jose(a, "/v1/checks/other/denial", sign(a, protocol.DenyCheck{CheckID: noticed.CheckID, FlagID: active, ConsumerAuth: authAt(now)}, nil)),
			want: protocol.ProblemInvalidSubmission, detail: "the URL names"},
		{name: "deny: not the flag's origin", caller: b, route: "POST /v1/checks/:id/denial",
			do:   jose(b, "/v1/checks/"+noticed.CheckID+"/denial", sign(b, protocol.DenyCheck{CheckID: noticed.CheckID, FlagID: active, ConsumerAuth: authAt(now)}, nil)),
			want: protocol.ProblemNotFound, detail: "was notified of no check"},
		{name: "deny: a check of an unflagged token", caller: a, route: "POST /v1/checks/:id/denial",
			do:   jose(a, "/v1/checks/"+bCheck.CheckID+"/denial", sign(a, protocol.DenyCheck{CheckID: bCheck.CheckID, FlagID: active, ConsumerAuth: authAt(now)}, nil)),
			want: protocol.ProblemNotFound, detail: bCheck.CheckID},

		// Webhook endpoints.
		{name: "endpoint: private address", caller: a, route: "PUT /v1/members/self/endpoint",
			do: func(t *testing.T) *hubtest.Response {
				return a.JSON(t, http.MethodPut, "/v1/members/self/endpoint", map[string]any{"url": "https://10.1.2.3/hook"})
			},
			want: protocol.ProblemEndpointRefused, detail: "10.1.2.3"},
		{name: "endpoint: unknown event", caller: a, route: "PUT /v1/members/self/endpoint",
			do: func(t *testing.T) *hubtest.Response {
				return a.JSON(t, http.MethodPut, "/v1/members/self/endpoint", map[string]any{"url": "http://127.0.0.1:9/hook", "events": []string{"flag-painted"}})
			},
			want: protocol.ProblemValidation, detail: `"flag-painted"`, pointer: "/events/0"},

		// Members, by the operator.
		{name: "member add: bad id", caller: op, route: "POST /v1/admin/members",
			do:   jsonBody(op, "/v1/admin/members", map[string]any{"id": "Bank_X", "name": "Bank X", "roles": []string{"check"}, "jwks": json.RawMessage(jwks)}),
			want: protocol.ProblemValidation, detail: `id: "Bank_X" does not start with a lower-case letter`},
		{name: "member add: no roles", caller: op, route: "POST /v1/admin/members",
			do:   jsonBody(op, "/v1/admin/members", map[string]any{"id": "bank-x", "name": "Bank X", "roles": []string{}, "jwks": json.RawMessage(jwks)}),
			want: protocol.ProblemValidation, detail: "roles: none given"},
		{name: "member add: both jwks and jwks_url", caller: op, route: "POST /v1/admin/members",
			do: jsonBody(op, "/v1/admin/members", map[string]any{"id": "bank-x", "name": "Bank X", "roles": []string{"check"},
				"jwks": json.RawMessage(jwks), "jwks_url": "https://keys.bank-x.example/jwks.json"}),
			want: protocol.ProblemValidation, detail: "both given"},
		{name: "member add: a negative quota", caller: op, route: "POST /v1/admin/members",
			do: jsonBody(op, "/v1/admin/members", map[string]any{"id": "bank-x", "name": "Bank X", "roles": []string{"check"}, "jwks": json.RawMessage(jwks),
				"quotas": map[string]any{"tokens_per_day": -5}}),
			want: protocol.ProblemValidation, detail: "quotas.tokens_per_day"},
		{name: "member patch: a quota past its bound", caller: op, route: "PATCH /v1/admin/members/:id",
			do: func(t *testing.T) *hubtest.Response {
				return op.JSON(t, http.MethodPatch, "/v1/admin/members/bank-b", map[string]any{"quotas": map[string]any{"stored_bytes_per_day": int64(1) << 41}})
			},
			want: protocol.ProblemValidation, detail: "quotas.stored_bytes_per_day"},
		{name: "member add: existing id", caller: op, route: "POST /v1/admin/members",
			do:   jsonBody(op, "/v1/admin/members", map[string]any{"id": "bank-b", "name": "Bank B", "roles": []string{"check"}, "jwks": json.RawMessage(jwks)}),
			want: protocol.ProblemStateConflict, detail: "already exists"},
		{name: "member patch: the operator's roles", caller: op, route: "PATCH /v1/admin/members/:id",
			do: func(t *testing.T) *hubtest.Response {
				return op.JSON(t, http.MethodPatch, "/v1/admin/members/operator", map[string]any{"roles": []string{"operator", "check"}})
			},
			want: protocol.ProblemStateConflict, detail: "operator"},
	}

	actions := routeActions()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := tc.hub
			if h == nil {
				h = hub
			}
			if tc.before != nil {
				tc.before(t)
			}
			dump, log := h.Dump(t), h.LogEntries(t)

			resp := tc.do(t)
			p := wantProblem(t, resp, tc.want)
			if !strings.Contains(p.Detail, tc.detail) {
				t.Errorf("got detail %q, want it to say %q", p.Detail, tc.detail)
			}
			for _, f := range p.Errors {
				if !strings.HasPrefix(f.Pointer, "/") {
					t.Errorf("got a field at fault %+v, want a JSON Pointer into the body, such as /request/subject", f)
				}
			}
			if tc.pointer != "" && (len(p.Errors) == 0 || p.Errors[0].Pointer != tc.pointer) {
				t.Errorf("got fields at fault %+v, want the first at pointer %s", p.Errors, tc.pointer)
			}
			conforms(t, tc.route, resp)
			if loc := resp.Header.Get("Location"); loc != "" {
				t.Errorf("got Location %q on a refusal, want none: nothing was created", loc)
			}

			after := h.LogEntries(t)
			if len(after) != len(log)+1 {
				t.Fatalf("got %d new log entries, want exactly 1", len(after)-len(log))
			}
			if diff := onlyEntryAdded(t, dump, h.Dump(t), after[len(log)]); len(diff) > 0 {
				t.Errorf("got store changes %q, want none but the new log entry", diff)
			}
			if !reflect.DeepEqual(after[:len(log)], log) {
				t.Errorf("got earlier log entries changed, want them as they were")
			}
			e := after[len(log)]
			if e.Member != tc.caller.ID || e.Action != actions[tc.route] || e.Result != "rejected:"+tc.want.Slug() {
				t.Errorf("got log entry %s %s %s, want %s %s rejected:%s", e.Member, e.Action, e.Result, tc.caller.ID, actions[tc.route], tc.want.Slug())
			}
		})
	}
}

// TestRefusalsBeforeTheHandlerWriteNothing checks that failed
// authentication, a missing role, a suspended member and a wrong method
// write nothing at all, not even a log entry: otherwise anyone could make
// the hub write at will.
func TestRefusalsBeforeTheHandlerWriteNothing(t *testing.T) {
	clock := hubtest.NewClock(time.Now().UTC().Truncate(time.Second))
	hub := hubtest.Start(t, hubtest.Options{Clock: clock, Policy: decide.Policy{SuspicionLegalBasis: "brottsdatalagen-2-kap-4-par"}})
	checker := hub.AddMember(t, "bank-c", api.RoleCheck)
	flagger := hub.AddMember(t, "bank-f", api.RoleFlag)
	suspended := hub.AddMember(t, "bank-s", api.RoleFlag, api.RoleCheck)
	tok := flagger.Tokenize(t, protocol.TypeEmail, "kund@bank.example")[0]
	place := protocol.PlaceFlag{Subject: tok, Kind: protocol.FlagKindStandard, Consent: flagger.Consent(tok)}
	suspendedSubmission := suspended.Sign(t, place)
	if resp := hub.Operator.Do(t, http.MethodPost, "/v1/admin/members/bank-s/suspend", "", nil); resp.Status != http.StatusOK {
		t.Fatalf("suspend: got status %d, want 200: %s", resp.Status, resp.Body)
	}
	stranger, err := protocol.GenerateSigningKey(protocol.EdDSA, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	// bearer and raw forge what the SDK never sends: bearer tokens by an
	// unregistered key, for an unknown member or long expired, and
	// Authorization headers that are no token at all.
	bearer := func(key *protocol.SigningKey, member string, at time.Time) string {
		tok, err := protocol.NewBearer(key, member, hub.URL, at, protocol.MaxBearerLifetime)
		if err != nil {
			t.Fatal(err)
		}
		return "Bearer " + tok
	}
	raw := func(method, path, contentType, authorization string, body []byte) *hubtest.Response {
		req, err := http.NewRequest(method, hub.URL+path, bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", contentType)
		if authorization != "" {
			req.Header.Set("Authorization", authorization)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var buf bytes.Buffer
		buf.ReadFrom(resp.Body)
		return &hubtest.Response{Status: resp.StatusCode, Header: resp.Header, Body: buf.Bytes()}
	}
	badCheck, _ := json.Marshal(map[string]any{"purpose": "curiosity", "tokens": []string{}})

	cases := []struct {
		name string
		do   func() *hubtest.Response
		want protocol.ProblemType
	}{
		{"missing role for a submission", func() *hubtest.Response { return checker.Submit(t, "/v1/flags", place) }, protocol.ProblemForbidden},
		{"missing role with a bad body", func() *hubtest.Response {
			return flagger.Do(t, http.MethodPost, "/v1/check", "application/json", badCheck)
		}, protocol.ProblemForbidden},
		{"missing role for an admin route", func() *hubtest.Response {
			return checker.JSON(t, http.MethodPost, "/v1/admin/members", map[string]any{"id": "x"})
		}, protocol.ProblemForbidden},
		{"no bearer", func() *hubtest.Response { return raw(http.MethodPost, "/v1/check", "application/json", "", badCheck) }, protocol.ProblemUnauthenticated},
		{"garbage bearer", func() *hubtest.Response {
			return raw(http.MethodPost, "/v1/check", "application/json", "Bearer x.y.z", badCheck)
		}, protocol.ProblemUnauthenticated},
		{"expired bearer", func() *hubtest.Response {
			return raw(http.MethodPost, "/v1/check", "application/json", bearer(checker.Key, checker.ID, clock.Now().Add(-time.Hour)), badCheck)
		}, protocol.ProblemBearerExpired},
		{"unregistered key", func() *hubtest.Response {
			return raw(http.MethodPost, "/v1/check", "application/json", bearer(stranger, checker.ID, clock.Now()), badCheck)
		}, protocol.ProblemUnauthenticated},
		{"unknown member", func() *hubtest.Response {
			return raw(http.MethodPost, "/v1/check", "application/json", bearer(stranger, "bank-ghost", clock.Now()), badCheck)
		}, protocol.ProblemUnauthenticated},
		{"suspended member", func() *hubtest.Response {
			return suspended.Do(t, http.MethodPost, "/v1/flags", "application/jose", suspendedSubmission)
		}, protocol.ProblemMemberSuspended},
		{"wrong method", func() *hubtest.Response { return flagger.Do(t, http.MethodDelete, "/v1/flags/f-1", "", nil) }, protocol.ProblemMethodNotAllowed},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			snap, log := hub.Snapshot(t), hub.LogEntries(t)
			wantProblem(t, tc.do(), tc.want)
			if diff := snapshotDiff(snap, hub.Snapshot(t)); len(diff) > 0 {
				t.Errorf("got store changes %q, want none", diff)
			}
			if after := hub.LogEntries(t); len(after) != len(log) {
				t.Errorf("got %d new log entries, want none", len(after)-len(log))
			}
		})
	}
}
