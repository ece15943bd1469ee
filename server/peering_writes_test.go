package server_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/sparr-dev/sparr/client"
	"github.com/sparr-dev/sparr/federation/peering"
	"github.com/sparr-dev/sparr/protocol"
	"github.com/sparr-dev/sparr/protocol/api"
	"github.com/sparr-dev/sparr/server"
	"github.com/sparr-dev/sparr/server/decide"
	"github.com/sparr-dev/sparr/server/hubtest"
)

const legalBasis = "brottsdatalagen-2-kap-4-par"

// writeHubs is a Swedish and a Norwegian hub peered as [peeredHubs] are,
// for relayed writes: both share suspicions on a legal basis of their own.
type writeHubs struct {
	peeredHubs
	// seKey is the key the Swedish hub countersigns with, as hub-se.
	seKey *protocol.SigningKey
}

// writeHubsOptions change [startWriteHubs]' setup.
type writeHubsOptions struct {
	quotas  *api.Quotas // the Norwegian operator's quotas for the Swedish hub
	peerURL string      // if not "", the Norwegian hub's URL as the Swedish hub has it
	// sePolicy is the Swedish operator's policy for the Norwegian hub.
	sePolicy peering.Policy
	// noPolicy, if not nil, is the Norwegian operator's policy for the
	// Swedish hub, in a peers-file entry of its own.
	noPolicy *peering.Policy
	// noLimits and seLimits are the hubs' rate limits.
	noLimits, seLimits server.Limits
}

// startWriteHubs starts the two hubs.
func startWriteHubs(t testing.TB, o writeHubsOptions) *writeHubs {
	t.Helper()
	policy := decide.Policy{SuspicionLegalBasis: legalBasis}
	no := hubtest.Start(t, hubtest.Options{Policy: policy, Limits: o.noLimits, Configure: func(c *server.Config) {
		c.Jurisdiction = "NO"
		if o.noPolicy != nil {
			// The Norwegian hub's entry for the Swedish one: only its id
			// and policy matter to relayed writes.
			back, _ := hubtest.NewKey(t)
			c.Peers = []*peering.Peer{{ID: "hub-se", Jurisdiction: "SE", URL: "http://127.0.0.1:1", Member: "hub-no", Key: back,
				Token: c.Keys.Token.Public(), Policy: *o.noPolicy}}
		}
	}})
	key, jwks := hubtest.NewKey(t)
	if _, err := no.Operator.Client().AddMember(context.Background(), api.MemberRequest{
		ID: "hub-se", Name: "Spärr Sverige", Roles: []api.Role{api.RolePeer}, JWKS: jwks, Quotas: o.quotas,
	}); err != nil {
		t.Fatal(err)
	}
	url := no.URL
	if o.peerURL != "" {
		url = o.peerURL
	}
	noToken := no.Configuration().Token
	se := hubtest.Start(t, hubtest.Options{Policy: policy, Limits: o.seLimits, Configure: func(c *server.Config) {
		c.Jurisdiction = "SE"
		c.Peers = []*peering.Peer{{ID: "hub-no", Jurisdiction: "NO", URL: url, Member: "hub-se", Key: key, Token: noToken, Policy: o.sePolicy}}
	}})
	return &writeHubs{peeredHubs: peeredHubs{se: se, no: no, seAtNO: no.Member("hub-se", key)}, seKey: key}
}

// TestWriteRelayToHomeHub has a member of the Swedish hub place a flag on
// a Norwegian number, through its own hub, with the usual write: the
// Norwegian hub holds the flag, signed with its keys and naming the member
// and the Swedish hub; a Norwegian bank's check and the Swedish member's
// relayed check both say verify; a retry of the same submission is
// answered the same and stored once; the lift, through the Swedish hub,
// ends the flag at the Norwegian hub. The Swedish hub's data file holds
// the Norwegian token nowhere.
func TestWriteRelayToHomeHub(t *testing.T) {
	h := startWriteHubs(t, writeHubsOptions{})
	bankSE := h.se.AddMember(t, "bank-a", api.RoleFlag, api.RoleCheck)
	bankNO := h.no.AddMember(t, "bank-n", api.RoleCheck)
	tok := bankSE.Tokenize(t, protocol.TypeNorwegianNumber, "13097248022")[0]

	body := bankSE.Sign(t, protocol.PlaceFlag{Subject: tok, Kind: protocol.FlagKindStandard, Consent: bankSE.Consent(tok)})
	first := bankSE.Do(t, http.MethodPost, "/v1/flags", "application/jose", body)
	mustStatus(t, first, http.StatusCreated)
	var placed flagResponse
	first.JSON(t, &placed)
	if loc := first.Header.Get("Location"); loc != "/v1/flags/"+placed.Flag.FlagID {
		t.Errorf("got Location %q, want the home hub's flag %s", loc, placed.Flag.FlagID)
	}
	rec, err := protocol.VerifyRecord([]byte(placed.Record), h.no.JWKS(t))
	if err != nil {
		t.Fatalf("the answer's record does not verify with the home hub's keys: %v", err)
	}
	if _, err := protocol.VerifyRecord([]byte(placed.Record), h.se.JWKS(t)); err == nil {
		t.Error("the record verifies with the relaying hub's keys, want the home hub's only")
	}
	if ev, ok := rec.Event.(protocol.FlagPlaced); !ok || ev.Origin != "hub-se.bank-a" || rec.Issuer != h.no.URL {
		t.Errorf("got record %+v from %s, want flag-placed by origin hub-se.bank-a from %s", rec.Event, rec.Issuer, h.no.URL)
	}
	assertNoForeignToken(t, h.se, tok, nil)

	// Logged at both hubs: the relay here, the placement there.
	seEntry := findEntry(t, h.se, protocol.LogWriteRelayed, "bank-a", "home", "hub-no")
	if attr(seEntry, "request") != string(protocol.ActionPlaceFlag) || first.Header.Get("X-Sparr-Log-Index") != fmt.Sprint(seEntry.Index) {
		t.Errorf("Swedish log entry %+v, want request flag-place at the answer's X-Sparr-Log-Index %q", seEntry, first.Header.Get("X-Sparr-Log-Index"))
	}
	if e := h.no.LogEntries(t)[placed.LogIndex]; e.Index != placed.LogIndex || e.Action != protocol.LogFlagPlaced || e.Member != "hub-se.bank-a" {
		t.Errorf("the answer's log_index %d is %+v at the home hub, want its flag-placed entry", placed.LogIndex, e)
	}
	findEntry(t, h.no, protocol.LogFlagPlaced, "hub-se.bank-a", "", "")

	// The same signed submission again: the same answer, nothing more
	// stored at the home hub.
	noSize, _ := h.no.Store.LogSize()
	again := bankSE.Do(t, http.MethodPost, "/v1/flags", "application/jose", body)
	mustStatus(t, again, http.StatusCreated)
	if !bytes.Equal(first.Body, again.Body) {
		t.Errorf("the retry answered\n%s\nwant\n%s", again.Body, first.Body)
	}
	if n, _ := h.no.Store.LogSize(); n != noSize {
		t.Errorf("the retry grew the home hub's log from %d to %d", noSize, n)
	}

	// A Norwegian bank's check and the Swedish member's relayed check.
	atHome := check(t, bankNO, "credit-application", bankNO.Tokenize(t, protocol.TypeNorwegianNumber, "13097248022")...)
	if r := atHome.Results[0]; r.Advice != api.AdviceVerify || r.Flag == nil || r.Flag.FlagID != placed.Flag.FlagID {
		t.Fatalf("check at the home hub: %+v, want verify for flag %s", r, placed.Flag.FlagID)
	}
	relayed := check(t, bankSE, "credit-application", tok)
	r := relayed.Results[0]
	if r.Advice != api.AdviceVerify || r.Flag == nil || len(r.Flag.Records) == 0 {
		t.Fatalf("relayed check: %+v, want verify with the flag's records", r)
	}
	if _, err := protocol.VerifyRecord([]byte(r.Flag.Records[0]), h.no.JWKS(t)); err != nil {
		t.Errorf("the relayed check's record does not verify with the home hub's keys: %v", err)
	}

	// The lift, through the Swedish hub, ends the flag at home.
	lift := bankSE.Submit(t, "/v1/flags/"+placed.Flag.FlagID+"/lift", protocol.LiftFlag{FlagID: placed.Flag.FlagID})
	mustStatus(t, lift, http.StatusOK)
	var lifted flagResponse
	lift.JSON(t, &lifted)
	if lifted.Flag.Status != string(api.FlagLifted) {
		t.Errorf("got status %q after the lift, want lifted", lifted.Flag.Status)
	}
	if r := check(t, bankNO, "credit-application", atHome.Results[0].Token).Results[0]; r.Advice != api.AdviceNone {
		t.Errorf("check at the home hub after the lift: %+v, want none", r)
	}
	findEntry(t, h.no, protocol.LogFlagLifted, "hub-se.bank-a", "", "")
	findEntry(t, h.se, protocol.LogWriteRelayed, "bank-a", "request", string(protocol.ActionLiftFlag))
	// Lifted, the flag cannot be lifted again: the home hub's refusal
	// comes back as it is.
	again = bankSE.Submit(t, "/v1/flags/"+placed.Flag.FlagID+"/lift", protocol.LiftFlag{FlagID: placed.Flag.FlagID})
	if p := again.Problem(t); again.Status != http.StatusConflict || p.Type != protocol.ProblemStateConflict.URI {
		t.Errorf("a second lift: got %d %+v, want the home hub's 409 state-conflict", again.Status, p)
	}
	// The relayed check's entry commits to its tokens, as every check's
	// does; nothing else of the Swedish hub's holds the Norwegian token.
	assertNoForeignToken(t, h.se, tok, []string{"log_details"})
}

// assertNoForeignToken fails t if hub's data file holds tok (its text or
// its value) in any bucket but those allowed.
func assertNoForeignToken(t *testing.T, hub *hubtest.Hub, tok protocol.Token, allowed []string) {
	t.Helper()
	text, value := []byte(tok.String()), []byte(protocol.Base64URL(tok.Value[:]).String())
	err := hub.Store.Walk(func(bucket string, k, v []byte) error {
		for _, a := range allowed {
			if bucket == a {
				return nil
			}
		}
		for _, b := range [][]byte{k, v} {
			if bytes.Contains(b, text) || bytes.Contains(b, value) || bytes.Contains(b, tok.Value[:]) {
				t.Errorf("bucket %s, key %q holds the foreign token", bucket, k)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// relayedEnvelope is a relayed write as the Swedish hub would send it: the
// member's submission and a countersignature by key as iss, over sub.
func relayedEnvelope(t *testing.T, h *writeHubs, key *protocol.SigningKey, iss string, member *hubtest.Member, sub []byte, memberKey *protocol.PublicKey) api.PeerSubmission {
	t.Helper()
	var claims struct {
		Jti string `json:"jti"`
	}
	payload := strings.Split(string(sub), ".")[1]
	var raw protocol.Base64URL
	if err := raw.UnmarshalText([]byte(payload)); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, &claims); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(sub)
	cs, err := protocol.SignCountersignature(&protocol.Countersignature{
		Issuer: iss, Audience: h.no.URL, IssuedAt: h.no.Now(), ID: claims.Jti, Member: member.ID, Relay: h.se.URL,
		SubmissionHash: sum[:], MemberKey: memberKey,
	}, key)
	if err != nil {
		t.Fatal(err)
	}
	return api.PeerSubmission{Submission: string(sub), Countersignature: string(cs)}
}

// TestHomeHubRequiresCountersignature sends the Norwegian hub relayed
// writes, as the Swedish hub, whose countersignature is missing, forged,
// by another key or member, or over other bytes: each is refused before
// the submission is read, and nothing is stored. A valid one is placed
// once, however often it is sent.
func TestHomeHubRequiresCountersignature(t *testing.T) {
	h := startWriteHubs(t, writeHubsOptions{})
	bankSE := h.se.AddMember(t, "bank-a", api.RoleFlag)
	bankNO := h.no.AddMember(t, "bank-n", api.RoleFlag)
	tok := bankSE.Tokenize(t, protocol.TypeNorwegianNumber, "13097248022")[0]
	sub := bankSE.Sign(t, protocol.PlaceFlag{Subject: tok, Kind: protocol.FlagKindStandard, Consent: bankSE.Consent(tok)})
	memberKey := bankSE.Key.Public()
	forger, _ := hubtest.NewKey(t)
	other := bankSE.Sign(t, protocol.PlaceFlag{Subject: tok, Kind: protocol.FlagKindStandard, Consent: bankSE.Consent(tok)})

	overOther := relayedEnvelope(t, h, h.seKey, "hub-se", bankSE, other, memberKey)
	overOther.Submission = string(sub)
	otherMemberKey, _ := hubtest.NewKey(t)
	for _, tc := range []struct {
		name string
		env  api.PeerSubmission
		want int
		in   string // what the problem must be about
	}{
		{"no countersignature", api.PeerSubmission{Submission: string(sub)}, http.StatusBadRequest, "countersignature"},
		{"a forged countersignature", relayedEnvelope(t, h, forger, "hub-se", bankSE, sub, memberKey), http.StatusBadRequest, "countersignature"},
		{"a forgery of garbage", api.PeerSubmission{Submission: "garbage", Countersignature: relayedEnvelope(t, h, forger, "hub-se", bankSE, sub, memberKey).Countersignature}, http.StatusBadRequest, "countersignature"},
		{"the member's own signature as countersignature", api.PeerSubmission{Submission: string(sub), Countersignature: string(sub)}, http.StatusBadRequest, "countersignature"},
		{"a countersignature by another member", relayedEnvelope(t, h, bankNO.Key, "bank-n", bankSE, sub, memberKey), http.StatusForbidden, "countersignature"},
		{"a countersignature over other bytes", overOther, http.StatusBadRequest, "submission"},
		{"a countersignature binding another member key", relayedEnvelope(t, h, h.seKey, "hub-se", bankSE, sub, otherMemberKey.Public()), http.StatusBadRequest, "submission"},
	} {
		before := h.no.Snapshot(t)
		resp := h.seAtNO.JSON(t, http.MethodPost, peering.SubmissionsPath, tc.env)
		p := resp.Problem(t)
		if resp.Status != tc.want || !strings.Contains(p.Detail, tc.in) {
			t.Errorf("%s: got %d %+v, want %d about the %s", tc.name, resp.Status, p, tc.want, tc.in)
		}
		if after := h.no.Snapshot(t); !sameMap(before, after) {
			t.Errorf("%s: the home hub's store changed", tc.name)
		}
	}

	env := relayedEnvelope(t, h, h.seKey, "hub-se", bankSE, sub, memberKey)
	first := h.seAtNO.JSON(t, http.MethodPost, peering.SubmissionsPath, env)
	mustStatus(t, first, http.StatusCreated)
	size, _ := h.no.Store.LogSize()
	// Replayed with a fresh countersignature: deduplicated by member,
	// relaying hub and jti.
	again := h.seAtNO.JSON(t, http.MethodPost, peering.SubmissionsPath, relayedEnvelope(t, h, h.seKey, "hub-se", bankSE, sub, memberKey))
	mustStatus(t, again, http.StatusCreated)
	if !bytes.Equal(first.Body, again.Body) {
		t.Errorf("the replay answered\n%s\nwant\n%s", again.Body, first.Body)
	}
	if n, _ := h.no.Store.LogSize(); n != size {
		t.Errorf("the replay grew the log from %d to %d", size, n)
	}
	// A member of the home hub cannot relay: the route is the peers'.
	if resp := bankNO.JSON(t, http.MethodPost, peering.SubmissionsPath, env); resp.Status != http.StatusForbidden {
		t.Errorf("a member that is no peer: got %d %s, want 403", resp.Status, resp.Body)
	}
}

func sameMap(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// TestRelayedWriteHomeDown registers a Norwegian hub that is down: a
// placement on a Norwegian token gets 503 with Retry-After, and the
// Swedish hub stores nothing but the log entry of the attempt.
func TestRelayedWriteHomeDown(t *testing.T) {
	down := httptest.NewServer(http.NotFoundHandler())
	down.Close()
	h := startWriteHubs(t, writeHubsOptions{peerURL: down.URL})
	bank := h.se.AddMember(t, "bank-a", api.RoleFlag)
	tok := h.no.AddMember(t, "bank-n", api.RoleCheck).Tokenize(t, protocol.TypeNorwegianNumber, "13097248022")[0]

	before := h.se.Snapshot(t)
	resp := bank.Submit(t, "/v1/flags", protocol.PlaceFlag{Subject: tok, Kind: protocol.FlagKindStandard, Consent: bank.Consent(tok)})
	if p := resp.Problem(t); resp.Status != http.StatusServiceUnavailable || p.Type != protocol.ProblemUnavailable.URI || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("got %d %+v, want 503 unavailable with Retry-After", resp.Status, p)
	}
	if after := h.se.Snapshot(t); !sameMap(before, after) {
		t.Error("the Swedish hub's store changed beyond its log")
	}
	findEntry(t, h.se, protocol.LogWriteRelayed, "bank-a", "home", "hub-no")
	assertNoForeignToken(t, h.se, tok, nil)
}

// TestRelayedWriteRefusalsPassThrough has the Norwegian hub refuse relayed
// writes: consent it does not accept (422), and the Swedish hub's storage
// quota there spent (429 with Retry-After). The Swedish member gets the
// home hub's problem.
func TestRelayedWriteRefusalsPassThrough(t *testing.T) {
	h := startWriteHubs(t, writeHubsOptions{})
	bank := h.se.AddMember(t, "bank-a", api.RoleFlag)
	tok := bank.Tokenize(t, protocol.TypeNorwegianNumber, "13097248022")[0]
	cons := bank.Consent(tok)
	cons.Purpose = "marketing"
	resp := bank.Submit(t, "/v1/flags", protocol.PlaceFlag{Subject: tok, Kind: protocol.FlagKindStandard, Consent: cons})
	if p := resp.Problem(t); resp.Status != http.StatusUnprocessableEntity || p.Type != protocol.ProblemInvalidConsent.URI || !strings.Contains(p.Detail, "hub-no") {
		t.Errorf("consent the home hub refuses: got %d %+v, want its 422 invalid-consent", resp.Status, p)
	}

	q := startWriteHubs(t, writeHubsOptions{quotas: &api.Quotas{StoredBytesPerDay: 1}})
	bank = q.se.AddMember(t, "bank-a", api.RoleFlag)
	tok = bank.Tokenize(t, protocol.TypeNorwegianNumber, "13097248022")[0]
	resp = bank.Submit(t, "/v1/flags", protocol.PlaceFlag{Subject: tok, Kind: protocol.FlagKindStandard, Consent: bank.Consent(tok)})
	if p := resp.Problem(t); resp.Status != http.StatusTooManyRequests || p.Type != protocol.ProblemStorageQuota.URI || resp.Header.Get("Retry-After") == "" {
		t.Errorf("over the home hub's quota: got %d %+v, want its 429 with Retry-After", resp.Status, p)
	}
}

// TestRelayedSuspicions reports a suspicion about a Norwegian number
// through the Swedish hub: refused there without a legal basis for the
// Norwegian peer; refused at the Norwegian hub without one for the Swedish
// peer (none configured, the default); shared with both.
func TestRelayedSuspicions(t *testing.T) {
	basis := peering.Policy{SuspicionsLegalBasis: "SE-NO data-sharing agreement 2026-11"}
	report := func(h *writeHubs) (*hubtest.Member, *hubtest.Response) {
		bank := h.se.AddMember(t, "bank-a", api.RoleSuspicion)
		tok := bank.Tokenize(t, protocol.TypeNorwegianNumber, "13097248022")[0]
		return bank, bank.Submit(t, "/v1/suspicions", protocol.ReportSuspicion{Subjects: []protocol.Token{tok}, Category: protocol.SuspicionCategories()[0],
			PoliceReport: &protocol.PoliceReport{Authority: "Polismyndigheten", CaseNumber: "5000-K123456-26", Date: "2026-11-20"}})
	}

	h := startWriteHubs(t, writeHubsOptions{noPolicy: &basis})
	_, resp := report(h)
	if p := resp.Problem(t); resp.Status != http.StatusForbidden || p.Type != protocol.ProblemSuspicionsDisabled.URI {
		t.Errorf("no legal basis at the relaying hub: got %d %+v, want 403 suspicions-disabled", resp.Status, p)
	}
	for _, e := range h.no.LogEntries(t) {
		if strings.HasPrefix(e.Member, "hub-se.") || e.Action == protocol.LogPeerSubmission {
			t.Errorf("the home hub logged %+v for a suspicion the relaying hub must not relay", e)
		}
	}

	h = startWriteHubs(t, writeHubsOptions{sePolicy: basis})
	_, resp = report(h)
	if p := resp.Problem(t); resp.Status != http.StatusForbidden || p.Type != protocol.ProblemSuspicionsDisabled.URI || !strings.Contains(p.Detail, "hub-no") {
		t.Errorf("no legal basis at the home hub: got %d %+v, want its 403 suspicions-disabled", resp.Status, p)
	}

	h = startWriteHubs(t, writeHubsOptions{sePolicy: basis, noPolicy: &basis})
	bank, resp := report(h)
	mustStatus(t, resp, http.StatusCreated)
	var out api.WriteResponse
	resp.JSON(t, &out)
	findEntry(t, h.no, protocol.LogSuspicionReported, "hub-se.bank-a", "", "")
	// Its reporter retracts it through its own hub.
	retract := bank.Submit(t, "/v1/suspicions/"+out.Suspicion.ID+"/retract", protocol.RetractSuspicion{SuspicionID: out.Suspicion.ID, Reason: protocol.RetractCaseClosed})
	mustStatus(t, retract, http.StatusOK)
	findEntry(t, h.no, protocol.LogSuspicionRetracted, "hub-se.bank-a", "", "")
}

// FuzzPeerSubmission sends arbitrary relayed writes to the Norwegian hub
// as the Swedish one: it never answers 5xx, every refusal is a problem
// document, and nothing is placed unless the countersignature verifies.
func FuzzPeerSubmission(f *testing.F) {
	// The fuzzer sends far more than a peer may; the limits are not what
	// it tests.
	high := server.Rate{PerSecond: 1e6, Burst: 1e6}
	h := startWriteHubs(f, writeHubsOptions{noLimits: server.Limits{Tokens: high, Writes: high, Checks: high, Reads: high}})
	bank := h.se.AddMember(f, "bank-a", api.RoleFlag)
	tok := bank.Tokenize(f, protocol.TypeNorwegianNumber, "13097248022")[0]
	sub := bank.Sign(f, protocol.PlaceFlag{Subject: tok, Kind: protocol.FlagKindStandard, Consent: bank.Consent(tok)})
	sum := sha256.Sum256(sub)
	cs, err := protocol.SignCountersignature(&protocol.Countersignature{
		Issuer: "hub-se", Audience: h.no.URL, IssuedAt: time.Now(), ID: "x", Member: "bank-a", Relay: h.se.URL,
		SubmissionHash: sum[:], MemberKey: bank.Key.Public(),
	}, h.seKey)
	if err != nil {
		f.Fatal(err)
	}
	for _, s := range []string{
		`{"submission":"` + string(sub) + `","countersignature":"` + string(cs) + `"}`,
		`{"submission":"` + string(sub) + `","countersignature":""}`,
		`{"submission":"","countersignature":"` + string(cs) + `"}`,
		`{"submission":"a.b.c","countersignature":"a.b.c"}`,
		`{}`, `[]`, `null`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		resp := h.seAtNO.Do(t, http.MethodPost, peering.SubmissionsPath, "application/json", body)
		if resp.Status >= 500 {
			t.Fatalf("%q: got %d %s", body, resp.Status, resp.Body)
		}
		if resp.Status >= 400 {
			if p := resp.Problem(t); p.Detail == "" {
				t.Errorf("%q: got a problem without detail: %+v", body, p)
			}
		}
	})
}

// relayedWrite is a placement on tok signed by member of peer (with a key
// of its own, for a relaying hub at https://sparr.example.se) and
// countersigned by peer for hub.
func relayedWrite(t *testing.T, hub *hubtest.Hub, peer *hubtest.Member, member string, tok protocol.Token) api.PeerSubmission {
	t.Helper()
	key, _ := hubtest.NewKey(t)
	const relay = "https://sparr.example.se"
	cons := peer.Consent(tok)
	cons.Controller = member
	sub, err := protocol.SignSubmission(&protocol.Submission{Issuer: member, Audience: relay, IssuedAt: hub.Now(), ID: "relayed-" + member,
		Request: protocol.PlaceFlag{Subject: tok, Kind: protocol.FlagKindStandard, Consent: cons}}, key)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(sub)
	cs, err := protocol.SignCountersignature(&protocol.Countersignature{Issuer: peer.ID, Audience: hub.URL, IssuedAt: hub.Now(),
		ID: "relayed-" + member, Member: member, Relay: relay, SubmissionHash: sum[:], MemberKey: key.Public()}, peer.Key)
	if err != nil {
		t.Fatal(err)
	}
	return api.PeerSubmission{Submission: string(sub), Countersignature: string(cs)}
}

// TestSDKWritesForeignTokens uses the member SDK, unchanged in how it is
// called, for a flag's life on a Norwegian number at a Swedish bank: the
// SDK verifies the home hub's records with the home hub's keys, which the
// Swedish hub's discovery document lists.
func TestSDKWritesForeignTokens(t *testing.T) {
	h := startWriteHubs(t, writeHubsOptions{})
	bank := h.se.AddMember(t, "bank-a", api.RoleFlag, api.RoleCheck)
	sdk, ctx := bank.Client(), context.Background()
	tok := bank.Tokenize(t, protocol.TypeNorwegianNumber, "13097248022")[0]

	placed, err := sdk.PlaceFlag(ctx, client.PlaceFlagRequest{Subject: tok, Consent: bank.Consent(tok)})
	if err != nil {
		t.Fatalf("place: %v", err)
	}
	if placed.Record == nil || placed.Record.Issuer != h.no.URL {
		t.Fatalf("got record %+v, want one verified as the home hub's", placed.Record)
	}
	id := placed.Flag.ID
	extended, err := sdk.ExtendFlag(ctx, client.ExtendFlagRequest{FlagID: id, Kind: protocol.FlagKindExtended,
		PoliceReport: &protocol.PoliceReport{Authority: "Politiet", CaseNumber: "26-123456", Date: h.se.Now().Format(time.DateOnly)}})
	if err != nil || extended.Flag.Kind != protocol.FlagKindExtended {
		t.Fatalf("extend: %+v, %v; want the flag extended", extended, err)
	}
	if _, err := sdk.ThawFlag(ctx, id, time.Time{}, h.se.Now().Add(time.Hour)); err != nil {
		t.Fatalf("thaw: %v", err)
	}
	res, err := sdk.Check(ctx, "credit-application", tok)
	if err != nil {
		t.Fatalf("check: %v", err)
	}
	if f := res.Results[0].Flag; f == nil || f.ID != id || !f.Thawed || len(f.Records) != 3 {
		t.Fatalf("check: got %+v, want the thawed flag %s with its three records, verified", res.Results[0], id)
	}
	if _, err := sdk.LiftFlag(ctx, id); err != nil {
		t.Fatalf("lift: %v", err)
	}
	if res, err := sdk.Check(ctx, "credit-application", tok); err != nil || res.Results[0].Advice != api.AdviceNone {
		t.Fatalf("check after the lift: %+v, %v; want none", res, err)
	}
	for _, a := range []protocol.LogAction{protocol.LogFlagPlaced, protocol.LogFlagExtended, protocol.LogFlagThawed, protocol.LogFlagLifted} {
		findEntry(t, h.no, a, "hub-se.bank-a", "", "")
	}
}

// TestRelayedDenial has a Swedish member's consumer say "not me" to a
// check of their Norwegian number at a Norwegian bank: the member placed
// the flag through its hub, the Norwegian hub's notice of the check names
// it as the flag's origin, and its denial, through its own hub, reaches the
// Norwegian hub, whose next check by that bank shows it.
func TestRelayedDenial(t *testing.T) {
	h := startWriteHubs(t, writeHubsOptions{})
	bankSE := h.se.AddMember(t, "bank-a", api.RoleFlag)
	bankNO := h.no.AddMember(t, "bank-n", api.RoleCheck)
	tok := bankSE.Tokenize(t, protocol.TypeNorwegianNumber, "13097248022")[0]
	placed := place(t, bankSE, tok)
	checked := check(t, bankNO, "credit-application", tok)

	resp := bankSE.Submit(t, "/v1/checks/"+checked.CheckID+"/denial", protocol.DenyCheck{CheckID: checked.CheckID, FlagID: placed.Flag.FlagID,
		ConsumerAuth: &protocol.ConsumerAuth{Method: protocol.AuthBankID, AuthenticatedAt: protocol.NewNumericDate(h.se.Now()), Level: protocol.LevelHigh, Reference: "bankid-order-9"}})
	mustStatus(t, resp, http.StatusOK)
	var out api.WriteResponse
	resp.JSON(t, &out)
	if rec, err := protocol.VerifyRecord([]byte(out.Record), h.no.JWKS(t)); err != nil {
		t.Errorf("the denial's record does not verify with the home hub's keys: %v", err)
	} else if _, ok := rec.Event.(protocol.CheckDenied); !ok {
		t.Errorf("got a %T record, want check-denied", rec.Event)
	}
	findEntry(t, h.no, protocol.LogCheckDenied, "hub-se.bank-a", "checker", "bank-n")
	if d := check(t, bankNO, "credit-application", tok).Results[0].Denied; d == nil || d.Count != 1 {
		t.Errorf("the Norwegian bank's next check shows denials %+v, want 1", d)
	}
}

// TestChangesFindTheirHome peers the Swedish hub with a Danish and a
// Norwegian one: a lift of a flag the Swedish hub does not hold asks the
// Danish hub first, which does not hold it either, then the Norwegian
// one, which ends it. With the Danish hub down, the lift still reaches
// Norway.
func TestChangesFindTheirHome(t *testing.T) {
	for _, dkDown := range []bool{false, true} {
		h := startWriteHubs(t, writeHubsOptions{})
		dk := hubtest.Start(t, hubtest.Options{Configure: func(c *server.Config) { c.Jurisdiction = "DK" }})
		key, jwks := hubtest.NewKey(t)
		if _, err := dk.Operator.Client().AddMember(context.Background(), api.MemberRequest{
			ID: "hub-se", Name: "Spärr Sverige", Roles: []api.Role{api.RolePeer}, JWKS: jwks,
		}); err != nil {
			t.Fatal(err)
		}
		dkURL := dk.URL
		if dkDown {
			down := httptest.NewServer(http.NotFoundHandler())
			down.Close()
			dkURL = down.URL
		}
		noPeer := &peering.Peer{ID: "hub-no", Jurisdiction: "NO", URL: h.no.URL, Member: "hub-se", Key: h.seKey, Token: h.no.Configuration().Token}
		se := hubtest.Start(t, hubtest.Options{Configure: func(c *server.Config) {
			c.Jurisdiction = "SE"
			c.Peers = []*peering.Peer{
				{ID: "hub-dk", Jurisdiction: "DK", URL: dkURL, Member: "hub-se", Key: key, Token: dk.Configuration().Token},
				noPeer,
			}
		}})
		// The new Swedish hub is hub-se at Norway too: same key, same id.
		bank := se.AddMember(t, "bank-a", api.RoleFlag)
		tok := bank.Tokenize(t, protocol.TypeNorwegianNumber, "13097248022")[0]
		placed := place(t, bank, tok)
		lift := bank.Submit(t, "/v1/flags/"+placed.Flag.FlagID+"/lift", protocol.LiftFlag{FlagID: placed.Flag.FlagID})
		mustStatus(t, lift, http.StatusOK)
		findEntry(t, h.no, protocol.LogFlagLifted, "hub-se.bank-a", "", "")
		if !dkDown {
			if e := findEntry(t, dk, protocol.LogFlagLift, "hub-se.bank-a", "", ""); e.Result != "rejected:not-found" {
				t.Errorf("Danish log entry %+v, want the lift refused as not found", e)
			}
		}
		// A flag no hub holds is not found.
		resp := bank.Submit(t, "/v1/flags/no-such-flag/lift", protocol.LiftFlag{FlagID: "no-such-flag"})
		want := http.StatusNotFound
		if dkDown {
			want = http.StatusServiceUnavailable // it may be Denmark's
		}
		if resp.Status != want {
			t.Errorf("Danish hub down %v: a flag no hub holds: got %d %s, want %d", dkDown, resp.Status, resp.Body, want)
		}
	}
}

// TestRelayedCheckOutcome has a Swedish member report the outcome of its
// check of a Norwegian number: the Swedish hub reports it to the
// Norwegian hub, which holds the check's answer, and records it; while
// the Norwegian hub is down, the member gets 503 and nothing is recorded.
func TestRelayedCheckOutcome(t *testing.T) {
	h := startWriteHubs(t, writeHubsOptions{})
	bank := h.se.AddMember(t, "bank-a", api.RoleCheck)
	tok := bank.Tokenize(t, protocol.TypeNorwegianNumber, "13097248022")[0]
	checked := check(t, bank, "credit-application", tok)
	path := "/v1/checks/" + checked.CheckID + "/outcome"

	h.no.Offline(t, func(string) {
		resp := bank.JSON(t, http.MethodPost, path, api.OutcomeRequest{Outcome: "verified"})
		if resp.Status != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
			t.Errorf("home hub down: got %d %s, want 503 with Retry-After", resp.Status, resp.Body)
		}
	})
	resp := bank.JSON(t, http.MethodPost, path, api.OutcomeRequest{Outcome: "verified"})
	mustStatus(t, resp, http.StatusOK)
	findEntry(t, h.se, protocol.LogCheckOutcome, "bank-a", "outcome", "verified")
	if e := findEntry(t, h.no, protocol.LogCheckOutcome, "hub-se", "member", "bank-a"); attr(e, "outcome") != "verified" {
		t.Errorf("Norwegian log entry %+v, want outcome verified", e)
	}
	if resp := bank.JSON(t, http.MethodPost, path, api.OutcomeRequest{Outcome: "abandoned"}); resp.Status != http.StatusConflict {
		t.Errorf("a second outcome: got %d %s, want 409", resp.Status, resp.Body)
	}
	// The home hub knows the check by the relaying hub's id, once.
	again := h.seAtNO.JSON(t, http.MethodPost, peering.CheckPath, api.PeerCheckRequest{
		CheckRequest: api.CheckRequest{Purpose: "credit-application", Tokens: []string{tok.String()}}, Member: "bank-a", CheckID: checked.CheckID})
	if p := again.Problem(t); again.Status != http.StatusConflict || p.Type != protocol.ProblemStateConflict.URI {
		t.Errorf("a check relayed again with the same id: got %d %+v, want 409", again.Status, p)
	}
}

// FuzzPeerOutcome sends arbitrary relayed outcomes to the Norwegian hub as
// the Swedish one: it never answers 5xx, and every refusal is a problem
// document with a detail.
func FuzzPeerOutcome(f *testing.F) {
	high := server.Rate{PerSecond: 1e6, Burst: 1e6}
	h := startWriteHubs(f, writeHubsOptions{noLimits: server.Limits{Tokens: high, Writes: high, Checks: high, Reads: high}})
	bank := h.no.AddMember(f, "bank-n", api.RoleCheck)
	tok := bank.Tokenize(f, protocol.TypeNorwegianNumber, "13097248022")[0]
	resp := h.seAtNO.JSON(f, http.MethodPost, peering.CheckPath, api.PeerCheckRequest{
		CheckRequest: api.CheckRequest{Purpose: "payment", Tokens: []string{tok.String()}}, Member: "bank-a", CheckID: "c-1"})
	if resp.Status != http.StatusOK {
		f.Fatalf("relayed check: %d %s", resp.Status, resp.Body)
	}
	for _, s := range []string{
		`{"check_id":"c-1","member":"bank-a","outcome":"verified"}`,
		`{"check_id":"c-1","member":"bank-a","outcome":"maybe"}`,
		`{"check_id":"C.1","member":"bank-a","outcome":"verified"}`,
		`{"check_id":"c-2","member":"Bank A","outcome":"abandoned"}`,
		`{"check_id":"","member":"","outcome":""}`, `{}`, `[]`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		resp := h.seAtNO.Do(t, http.MethodPost, peering.OutcomePath, "application/json", body)
		if resp.Status >= 500 {
			t.Fatalf("%q: got %d %s", body, resp.Status, resp.Body)
		}
		if resp.Status >= 400 {
			if p := resp.Problem(t); p.Detail == "" {
				t.Errorf("%q: got a problem without detail: %+v", body, p)
			}
		}
	})
}

// BenchmarkWriteRelay places and lifts a flag, at the member's own hub
// (a Swedish number) and through it at the home hub (a Norwegian number),
// in the same run: the relay's cost is the difference.
func BenchmarkWriteRelay(b *testing.B) {
	// The benchmark writes far more than a member may.
	high := server.Rate{PerSecond: 1e6, Burst: 1e6}
	limits := server.Limits{Tokens: high, Writes: high, Checks: high, Reads: high}
	h := startWriteHubs(b, writeHubsOptions{noLimits: limits, seLimits: limits})
	bank := h.se.AddMember(b, "bank-a", api.RoleFlag)
	for _, tc := range []struct {
		name string
		tok  protocol.Token
	}{
		{"local", bank.Tokenize(b, protocol.TypePersonalNumber, "811218-9876")[0]},
		{"relayed", bank.Tokenize(b, protocol.TypeNorwegianNumber, "13097248022")[0]},
	} {
		b.Run(tc.name, func(b *testing.B) {
			for b.Loop() {
				resp := bank.Submit(b, "/v1/flags", protocol.PlaceFlag{Subject: tc.tok, Kind: protocol.FlagKindStandard, Consent: bank.Consent(tc.tok)})
				if resp.Status != http.StatusCreated {
					b.Fatalf("place: %d %s", resp.Status, resp.Body)
				}
				var out api.WriteResponse
				resp.JSON(b, &out)
				if resp := bank.Submit(b, "/v1/flags/"+out.Flag.ID+"/lift", protocol.LiftFlag{FlagID: out.Flag.ID}); resp.Status != http.StatusOK {
					b.Fatalf("lift: %d %s", resp.Status, resp.Body)
				}
			}
		})
	}
}
