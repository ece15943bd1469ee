package server_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/sparr-dev/sparr/client"
	"github.com/sparr-dev/sparr/protocol"
	"github.com/sparr-dev/sparr/protocol/api"
	"github.com/sparr-dev/sparr/server"
	"github.com/sparr-dev/sparr/server/decide"
	"github.com/sparr-dev/sparr/server/hubtest"
	"github.com/sparr-dev/sparr/server/keyring"
	"github.com/sparr-dev/sparr/server/store"
)

func openCheckpoint(t *testing.T, hub *hubtest.Hub, m *hubtest.Member) *protocol.Checkpoint {
	t.Helper()
	resp := m.Do(t, http.MethodGet, "/v1/log/checkpoint", "", nil)
	mustStatus(t, resp, http.StatusOK)
	key, err := protocol.NewLogVerifier(hub.Configuration().Log.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	c, err := protocol.OpenCheckpoint(resp.Body, key)
	if err != nil {
		t.Fatalf("checkpoint %q: %v", resp.Body, err)
	}
	return c
}

func proof(t *testing.T, m *hubtest.Member, path string) []tlog.Hash {
	t.Helper()
	resp := m.Do(t, http.MethodGet, path, "", nil)
	mustStatus(t, resp, http.StatusOK)
	var p api.ProofResponse
	resp.JSON(t, &p)
	out := make([]tlog.Hash, len(p.Proof))
	for i, s := range p.Proof {
		b, err := base64.StdEncoding.DecodeString(s)
		if err != nil || len(b) != tlog.HashSize {
			t.Fatalf("proof hash %q", s)
		}
		copy(out[i][:], b)
	}
	return out
}

// A logProver proves, after each write, that the write's answer names its
// own log entry: it publishes a checkpoint, has the writer fetch and
// verify it, fetches the inclusion proof with the entry's line, and checks
// that the line at the index is the writer's, of the action the write
// logs, new since the checkpoint before, and in the checkpoint.
type logProver struct {
	t    *testing.T
	hub  *hubtest.Hub
	key  note.Verifier
	last uint64 // the size of the checkpoint before the write
	// routes are the routes proved, with the action each logged.
	routes map[string][]protocol.LogAction
}

func newLogProver(t *testing.T, hub *hubtest.Hub) *logProver {
	key, err := protocol.NewLogVerifier(hub.Configuration().Log.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	p := &logProver{t: t, hub: hub, key: key, routes: map[string][]protocol.LogAction{}}
	p.last = p.checkpoint(hub.Operator).Size
	return p
}

func (p *logProver) checkpoint(m *hubtest.Member) *protocol.Checkpoint {
	p.t.Helper()
	if _, err := p.hub.PublishCheckpoint(); err != nil {
		p.t.Fatal(err)
	}
	resp := m.Do(p.t, http.MethodGet, "/v1/log/checkpoint", "", nil)
	mustStatus(p.t, resp, http.StatusOK)
	c, err := protocol.OpenCheckpoint(resp.Body, p.key)
	if err != nil {
		p.t.Fatalf("checkpoint %q: got %v, want one signed by the log key", resp.Body, err)
	}
	return c
}

// prove checks the write of route by m, whose answer named index.
func (p *logProver) prove(route string, m *hubtest.Member, action protocol.LogAction, index uint64) {
	p.t.Helper()
	p.proveBy(route, m, m.ID, action, index)
}

// proveBy is prove for an entry whose member is writer, not m (a member
// of a peered hub, whose write m relayed).
func (p *logProver) proveBy(route string, m *hubtest.Member, writer string, action protocol.LogAction, index uint64) {
	t := p.t
	t.Helper()
	p.routes[route] = append(p.routes[route], action)
	cp := p.checkpoint(m)
	defer func() { p.last = cp.Size }()
	if index < p.last || index >= cp.Size {
		t.Errorf("%s: got log index %d, want the write's new entry, in [%d, %d): after the checkpoint before it, in the one after", route, index, p.last, cp.Size)
		return
	}
	resp := m.Do(t, http.MethodGet, fmt.Sprintf("/v1/log/proof/inclusion?index=%d&size=%d", index, cp.Size), "", nil)
	mustStatus(t, resp, http.StatusOK)
	var pr api.ProofResponse
	resp.JSON(t, &pr)
	stored, err := p.hub.Store.LogEntries(index, index+1)
	if err != nil || len(stored) != 1 {
		t.Fatalf("entry %d: %v", index, err)
	}
	if pr.Entry != string(stored[0]) {
		t.Errorf("%s: got entry %q with the proof of %d, want the writer's own entry %q", route, pr.Entry, index, stored[0])
		return
	}
	e, err := protocol.ParseLogEntry([]byte(pr.Entry))
	if err != nil {
		t.Fatalf("%s: entry %d: %v", route, index, err)
	}
	if e.Index != index || e.Member != writer || e.Action != action || e.Result != "ok" {
		t.Errorf("%s: got entry %d %q by %q (%s), want entry %d %q by %q (ok)", route, e.Index, e.Action, e.Member, e.Result, index, action, writer)
	}
	proof := make(tlog.RecordProof, len(pr.Proof))
	for i, h := range pr.Proof {
		b, err := base64.StdEncoding.DecodeString(h)
		if err != nil || len(b) != tlog.HashSize {
			t.Fatalf("%s: proof hash %q", route, h)
		}
		copy(proof[i][:], b)
	}
	if err := tlog.CheckRecord(proof, int64(cp.Size), cp.Root, int64(index), tlog.RecordHash([]byte(pr.Entry))); err != nil {
		t.Errorf("%s: entry %d is not provably in checkpoint %s: %v", route, index, cp, err)
	}
}

// logIndex reads a write answer's log_index; an answer without one fails.
func logIndex(t *testing.T, route string, resp *hubtest.Response, want int) uint64 {
	t.Helper()
	if resp.Status != want {
		t.Fatalf("%s: got status %d, want %d: %s", route, resp.Status, want, resp.Body)
	}
	var out struct {
		LogIndex *uint64 `json:"log_index"`
	}
	resp.JSON(t, &out)
	if out.LogIndex == nil {
		t.Fatalf("%s: got an answer without log_index, want the index of its entry: %s", route, resp.Body)
	}
	return *out.LogIndex
}

// TestEveryWriteIsProvablyLogged: every route that writes answers with the
// index of its own log entry, which holds the writer and the action, and
// is provably in the checkpoint published after it.
func TestEveryWriteIsProvablyLogged(t *testing.T) {
	// Erasures are published as soon as the jobs run, not a day later.
	// The hub is Norway's, so that a peer may have it evaluate Norwegian
	// numbers.
	hub := hubtest.Start(t, hubtest.Options{Delivery: fast, Policy: decide.Policy{SuspicionLegalBasis: "brottsdatalagen", ErasurePeriod: time.Nanosecond,
		PayeeBanks: map[string]string{"SE:500": "bank-b"}}, Configure: func(c *server.Config) { c.Jurisdiction = "NO"; c.PeerKeyDir = peerKeyDir(t) }})
	bank := hub.AddMember(t, "bank-a", api.RoleFlag, api.RoleCheck, api.RoleSuspicion)
	checker := hub.AddMember(t, "bank-b", api.RoleCheck)
	op := hub.Operator
	p := newLogProver(t, hub)
	police := &protocol.PoliceReport{Authority: "Polismyndigheten", CaseNumber: "5000-K123456-26", Date: hub.Now().Format(time.DateOnly)}

	// Tokens: the index is in a header, the answer being the OPRF's.
	cfg := hub.Configuration()
	tc, err := protocol.NewTokenClient(cfg.Token)
	if err != nil {
		t.Fatal(err)
	}
	blinding, treq, err := tc.Blind(protocol.TypeEmail, "proof1@example.se", "proof2@example.se", "proof3@example.se")
	if err != nil {
		t.Fatal(err)
	}
	resp := bank.JSON(t, http.MethodPost, "/v1/tokens", treq)
	mustStatus(t, resp, http.StatusOK)
	idx, err := strconv.ParseUint(resp.Header.Get("X-Sparr-Log-Index"), 10, 64)
	if err != nil {
		t.Fatalf("POST /v1/tokens: got X-Sparr-Log-Index %q, want the index of its entry", resp.Header.Get("X-Sparr-Log-Index"))
	}
	p.prove("POST /v1/tokens", bank, "tokens", idx)
	var tresp protocol.TokenResponse
	resp.JSON(t, &tresp)
	toks, err := tc.Finalize(blinding, &tresp)
	if err != nil {
		t.Fatal(err)
	}
	peer := hub.AddMember(t, "hub-se", api.RolePeer, api.RoleCheck) // check, to read the log's proofs
	_, treq, err = tc.Blind(protocol.TypeNorwegianNumber, "13097248022")
	if err != nil {
		t.Fatal(err)
	}
	resp = peer.JSON(t, http.MethodPost, "/v1/peering/tokens", api.PeerTokenRequest{TokenRequest: *treq, Member: "bank-s"})
	mustStatus(t, resp, http.StatusOK)
	if idx, err = strconv.ParseUint(resp.Header.Get("X-Sparr-Log-Index"), 10, 64); err != nil {
		t.Fatalf("POST /v1/peering/tokens: got X-Sparr-Log-Index %q, want the index of its entry", resp.Header.Get("X-Sparr-Log-Index"))
	}
	p.prove("POST /v1/peering/tokens", peer, "peer-tokens", idx)
	fnr := hub.AddMember(t, "bank-n", api.RoleCheck).Tokenize(t, protocol.TypeNorwegianNumber, "13097248022")[0]
	resp = peer.JSON(t, http.MethodPost, "/v1/peering/check", api.PeerCheckRequest{CheckRequest: api.CheckRequest{Purpose: "payment", Tokens: []string{fnr.String()}}, Member: "bank-s"})
	p.prove("POST /v1/peering/check", peer, "peer-check", logIndex(t, "peer check", resp, http.StatusOK))
	// A flag placed by bank-s of the peer, relayed with the peer's
	// countersignature: the entry names the member as this hub knows it.
	relayedTok := hub.AddMember(t, "bank-r", api.RoleCheck).Tokenize(t, protocol.TypeNorwegianNumber, "53097248016")[0]
	resp = peer.JSON(t, http.MethodPost, "/v1/peering/submissions", relayedWrite(t, hub, peer, "bank-s", relayedTok))
	p.proveBy("POST /v1/peering/submissions", peer, "hub-se.bank-s", "flag-placed", logIndex(t, "relayed write", resp, http.StatusCreated))
	resp = peer.JSON(t, http.MethodPost, "/v1/peering/check", api.PeerCheckRequest{CheckRequest: api.CheckRequest{Purpose: "payment", Tokens: []string{fnr.String()}}, Member: "bank-s", CheckID: "relayed-check-1"})
	mustStatus(t, resp, http.StatusOK)
	resp = peer.JSON(t, http.MethodPost, "/v1/peering/outcome", api.PeerOutcomeRequest{CheckID: "relayed-check-1", Member: "bank-s", Outcome: "verified"})
	p.prove("POST /v1/peering/outcome", peer, "check-outcome", logIndex(t, "relayed outcome", resp, http.StatusOK))

	// A flag's life.
	resp = bank.Submit(t, "/v1/flags", protocol.PlaceFlag{Subject: toks[0], Kind: protocol.FlagKindStandard, Consent: bank.Consent(toks[0])})
	p.prove("POST /v1/flags", bank, "flag-placed", logIndex(t, "POST /v1/flags", resp, http.StatusCreated))
	var f flagResponse
	resp.JSON(t, &f)
	id := f.Flag.FlagID
	resp = bank.Submit(t, "/v1/flags", protocol.PlaceFlag{Subject: toks[0], Kind: protocol.FlagKindStandard, Consent: bank.Consent(toks[0])})
	p.prove("POST /v1/flags", bank, "flag-already-active", logIndex(t, "POST /v1/flags", resp, http.StatusOK))
	resp = bank.Submit(t, "/v1/flags/"+id+"/extend", protocol.ExtendFlag{FlagID: id, Kind: protocol.FlagKindExtended, PoliceReport: police})
	p.prove("POST /v1/flags/:id/extend", bank, "flag-extended", logIndex(t, "extend", resp, http.StatusOK))
	resp = bank.Submit(t, "/v1/flags/"+id+"/thaw", protocol.ThawFlag{FlagID: id, ThawUntil: protocol.NewNumericDate(hub.Now().Add(time.Hour))})
	p.prove("POST /v1/flags/:id/thaw", bank, "flag-thawed", logIndex(t, "thaw", resp, http.StatusOK))

	// A suspicion's life, and checks.
	resp = bank.Submit(t, "/v1/suspicions", protocol.ReportSuspicion{Subjects: toks[1:2], Category: protocol.CategoryOther, PoliceReport: police})
	p.prove("POST /v1/suspicions", bank, "suspicion-reported", logIndex(t, "report", resp, http.StatusCreated))
	var reported struct {
		Suspicion struct {
			ID string `json:"suspicion_id"`
		} `json:"suspicion"`
	}
	resp.JSON(t, &reported)
	sid := reported.Suspicion.ID
	resp = checker.JSON(t, http.MethodPost, "/v1/check", map[string]any{"purpose": "credit-application", "tokens": []string{toks[0].String(), toks[1].String()}})
	p.prove("POST /v1/check", checker, "check", logIndex(t, "check", resp, http.StatusOK))
	var checked api.CheckResponse
	resp.JSON(t, &checked)
	resp = checker.JSON(t, http.MethodPost, "/v1/checks/"+checked.CheckID+"/outcome", map[string]any{"outcome": "verified"})
	p.prove("POST /v1/checks/:id/outcome", checker, "check-outcome", logIndex(t, "outcome", resp, http.StatusOK))
	resp = checker.JSON(t, http.MethodPost, "/v1/checks/replica", map[string]any{"checks": []map[string]any{
		{"token": toks[0].String(), "purpose": "payment", "at": hub.Now().UTC().Format(time.RFC3339)}}})
	p.prove("POST /v1/checks/replica", checker, "replica-check", logIndex(t, "replica checks", resp, http.StatusOK))
	resp = bank.Submit(t, "/v1/checks/"+checked.CheckID+"/denial", protocol.DenyCheck{CheckID: checked.CheckID, FlagID: id,
		ConsumerAuth: &protocol.ConsumerAuth{Method: protocol.AuthBankID, AuthenticatedAt: protocol.NewNumericDate(hub.Now()), Level: protocol.LevelHigh, Reference: "bankid-order-1"}})
	p.prove("POST /v1/checks/:id/denial", bank, "check-denied", logIndex(t, "deny check", resp, http.StatusOK))
	resp = checker.JSON(t, http.MethodPost, "/v1/suspicions/"+sid+"/details", map[string]any{"purpose": "credit-application", "justification": "applicant for a loan, case 77-311"})
	p.prove("POST /v1/suspicions/:id/details", checker, "suspicion-details", logIndex(t, "details", resp, http.StatusOK))
	// For a consumer: their history, their access report, their dispute.
	auth := &protocol.ConsumerAuth{Method: protocol.AuthBankID, AuthenticatedAt: protocol.NewNumericDate(hub.Now()), Level: protocol.LevelHigh, Reference: "proof-auth"}
	resp = bank.Submit(t, "/v1/subjects/history", protocol.SubjectHistory{Subject: toks[1], ConsumerAuth: auth})
	p.prove("POST /v1/subjects/history", bank, "subject-history", logIndex(t, "history", resp, http.StatusOK))
	resp = bank.Submit(t, "/v1/subjects/report", protocol.RequestAccessReport{Subject: toks[1], ConsumerAuth: auth})
	p.prove("POST /v1/subjects/report", bank, "access-report", logIndex(t, "report", resp, http.StatusOK))
	resp = checker.Submit(t, "/v1/disputes", protocol.OpenDispute{Subject: toks[1], SuspicionID: sid, Grounds: protocol.GroundsNotMe, ConsumerAuth: auth})
	p.prove("POST /v1/disputes", checker, "dispute-opened", logIndex(t, "open dispute", resp, http.StatusCreated))
	var opened api.DisputeResponse
	resp.JSON(t, &opened)
	did := opened.Dispute.DisputeID
	resp = bank.Submit(t, "/v1/disputes/"+did+"/answer", protocol.AnswerDispute{DisputeID: did, Answer: protocol.AnswerAcknowledge})
	p.prove("POST /v1/disputes/:id/answer", bank, "dispute-acknowledged", logIndex(t, "answer dispute", resp, http.StatusOK))
	resp = bank.Submit(t, "/v1/suspicions/"+sid+"/retract", protocol.RetractSuspicion{SuspicionID: sid, Reason: protocol.RetractCaseClosed})
	p.prove("POST /v1/suspicions/:id/retract", bank, "suspicion-retracted", logIndex(t, "retract", resp, http.StatusOK))
	resp = bank.Submit(t, "/v1/flags/"+id+"/lift", protocol.LiftFlag{FlagID: id})
	p.prove("POST /v1/flags/:id/lift", bank, "flag-lifted", logIndex(t, "lift", resp, http.StatusOK))
	var lifted api.WriteResponse
	resp.JSON(t, &lifted)
	liftRec, err := protocol.VerifyRecord([]byte(lifted.Record), hub.JWKS(t))
	if err != nil {
		t.Fatal(err)
	}
	resp = checker.Submit(t, "/v1/erasure-attestations", protocol.AttestErasure{Records: []string{liftRec.ID}})
	p.prove("POST /v1/erasure-attestations", checker, "erasure-attested", logIndex(t, "attest", resp, http.StatusOK))

	// A payee's record, and its contest.
	payee := bank.Tokenize(t, protocol.TypeBankgiro, "50501055")[0]
	resp = bank.Submit(t, "/v1/payees", payeeReport(payee, 2, hub.Now()))
	p.prove("POST /v1/payees", bank, "payee-reported", logIndex(t, "payee report", resp, http.StatusCreated))
	var pw api.WriteResponse
	resp.JSON(t, &pw)
	resp = bank.Submit(t, "/v1/payees/"+pw.Payee.PayeeID+"/contest", protocol.ContestPayee{PayeeID: pw.Payee.PayeeID, Reason: protocol.ContestHolderDisputes})
	p.prove("POST /v1/payees/:id/contest", bank, "payee-contested", logIndex(t, "payee contest", resp, http.StatusOK))

	// A recall, from the bank to the checker, which holds SE:500.
	resp = bank.Submit(t, "/v1/recalls", recallRequest(payee, "SE:500", hub.Now()))
	p.prove("POST /v1/recalls", bank, "recall-requested", logIndex(t, "recall", resp, http.StatusCreated))
	var rw api.WriteResponse
	resp.JSON(t, &rw)
	rcID := rw.Recall.RecallID
	resp = checker.Submit(t, "/v1/recalls/"+rcID+"/acknowledge", protocol.AcknowledgeRecall{RecallID: rcID})
	p.prove("POST /v1/recalls/:id/acknowledge", checker, "recall-acknowledged", logIndex(t, "recall ack", resp, http.StatusOK))
	resp = checker.Submit(t, "/v1/recalls/"+rcID+"/outcome", protocol.ReportRecallOutcome{RecallID: rcID, Outcome: protocol.RecallReturned, Amount: protocol.Money{Minor: 100, Currency: "SEK"}})
	p.prove("POST /v1/recalls/:id/outcome", checker, "recall-outcome", logIndex(t, "recall outcome", resp, http.StatusOK))

	// A webhook endpoint that is down until it is paused, resumed, removed.
	down := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusServiceUnavailable) }))
	defer down.Close()
	resp = checker.JSON(t, http.MethodPut, "/v1/members/self/endpoint", map[string]any{"url": down.URL + "/sparr/events"})
	p.prove("PUT /v1/members/self/endpoint", checker, "endpoint-registered", logIndex(t, "register endpoint", resp, http.StatusCreated))
	resp = checker.Do(t, http.MethodPost, "/v1/members/self/endpoint/secret", "", nil)
	p.prove("POST /v1/members/self/endpoint/secret", checker, "endpoint-secret-rotated", logIndex(t, "rotate secret", resp, http.StatusOK))
	waitEndpoint(t, checker, "paused", func(e api.Endpoint) bool { return e.Status == api.EndpointPaused })
	resp = checker.Do(t, http.MethodPost, "/v1/members/self/endpoint/resume", "", nil)
	p.prove("POST /v1/members/self/endpoint/resume", checker, "endpoint-resumed", logIndex(t, "resume endpoint", resp, http.StatusOK))
	resp = checker.Do(t, http.MethodDelete, "/v1/members/self/endpoint", "", nil)
	p.prove("DELETE /v1/members/self/endpoint", checker, "endpoint-removed", logIndex(t, "remove endpoint", resp, http.StatusOK))

	// An SSF stream's life: created, changed, replaced (to poll), paused,
	// verified on request, acknowledged by poll, deleted. SSF's answers
	// carry the index in a header; a poll's is its last acknowledgement's.
	head := func(route string, resp *hubtest.Response, status int) uint64 {
		t.Helper()
		mustStatus(t, resp, status)
		idx, err := strconv.ParseUint(resp.Header.Get("X-Sparr-Log-Index"), 10, 64)
		if err != nil {
			t.Fatalf("%s: got X-Sparr-Log-Index %q, want the index of its entry", route, resp.Header.Get("X-Sparr-Log-Index"))
		}
		return idx
	}
	resp = checker.JSON(t, http.MethodPost, "/v1/ssf/stream", map[string]any{"delivery": map[string]any{"method": "urn:ietf:rfc:8935", "endpoint_url": down.URL + "/ssf"}})
	p.prove("POST /v1/ssf/stream", checker, "endpoint-registered", head("create stream", resp, http.StatusCreated))
	resp = checker.JSON(t, http.MethodPatch, "/v1/ssf/stream", map[string]any{"stream_id": "bank-b", "description": "proof"})
	p.prove("PATCH /v1/ssf/stream", checker, "endpoint-registered", head("update stream", resp, http.StatusOK))
	resp = checker.JSON(t, http.MethodPut, "/v1/ssf/stream", map[string]any{"stream_id": "bank-b"})
	p.prove("PUT /v1/ssf/stream", checker, "endpoint-registered", head("replace stream", resp, http.StatusOK))
	resp = checker.JSON(t, http.MethodPost, "/v1/ssf/status", map[string]any{"stream_id": "bank-b", "status": "paused"})
	p.prove("POST /v1/ssf/status", checker, "endpoint-held", head("pause stream", resp, http.StatusOK))
	resp = checker.JSON(t, http.MethodPost, "/v1/ssf/verify", map[string]any{"stream_id": "bank-b", "state": "proof"})
	p.prove("POST /v1/ssf/verify", checker, "endpoint-verify", head("verify stream", resp, http.StatusNoContent))
	resp = checker.JSON(t, http.MethodPost, "/v1/ssf/poll", map[string]any{"returnImmediately": true})
	mustStatus(t, resp, http.StatusOK)
	var polled api.PollResponse
	resp.JSON(t, &polled)
	var ack []string
	for jti := range polled.Sets {
		ack = append(ack, jti)
	}
	resp = checker.JSON(t, http.MethodPost, "/v1/ssf/poll", map[string]any{"ack": ack, "maxEvents": 0})
	p.prove("POST /v1/ssf/poll", checker, "delivery", head("acknowledge", resp, http.StatusOK))
	resp = checker.Do(t, http.MethodDelete, "/v1/ssf/stream?stream_id=bank-b", "", nil)
	p.prove("DELETE /v1/ssf/stream", checker, "endpoint-removed", head("delete stream", resp, http.StatusNoContent))

	// Administration, by the operator.
	key, err := protocol.GenerateSigningKey(protocol.EdDSA, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp = op.JSON(t, http.MethodPost, "/v1/admin/members", map[string]any{"id": "bank-c", "name": "Bank C AB", "roles": []string{"check"}, "jwks": map[string]any{"keys": []any{key.Public()}}})
	p.prove("POST /v1/admin/members", op, "member-added", logIndex(t, "add member", resp, http.StatusCreated))
	resp = op.JSON(t, http.MethodPatch, "/v1/admin/members/bank-c", map[string]any{"name": "Bank C (publ)"})
	p.prove("PATCH /v1/admin/members/:id", op, "member-updated", logIndex(t, "update member", resp, http.StatusOK))
	resp = op.Do(t, http.MethodPost, "/v1/admin/members/bank-c/suspend", "", nil)
	p.prove("POST /v1/admin/members/:id/suspend", op, "member-suspended", logIndex(t, "suspend member", resp, http.StatusOK))
	resp = op.Do(t, http.MethodPost, "/v1/admin/members/bank-c/resume", "", nil)
	p.prove("POST /v1/admin/members/:id/resume", op, "member-resumed", logIndex(t, "resume member", resp, http.StatusOK))
	resp = op.JSON(t, http.MethodPost, "/v1/admin/erasures", map[string]string{"subject": toks[2].String(), "legal_basis": "gdpr-art-17"})
	p.prove("POST /v1/admin/erasures", op, "subject-erased", logIndex(t, "erase", resp, http.StatusOK))
	tk, err := protocol.GenerateTokenKey(1, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp = op.JSON(t, http.MethodPost, "/v1/admin/peers", api.PeerRequest{ID: "hub-se", Jurisdiction: "SE", URL: "https://sparr.example.se", Member: "hub-no", KeyFile: "hub-se.jwk", Token: tk.Public()})
	p.prove("POST /v1/admin/peers", op, "peer-registered", logIndex(t, "register peer", resp, http.StatusCreated))
	resp = op.Do(t, http.MethodDelete, "/v1/admin/peers/hub-se", "", nil)
	p.prove("DELETE /v1/admin/peers/:id", op, "peer-removed", logIndex(t, "remove peer", resp, http.StatusOK))

	// Every route that writes was proved.
	for _, r := range server.Routes() {
		if r.Method == http.MethodGet || r.Public() {
			continue // POST /v1/peering/events, signed as a webhook: TestHomeHubEventsReachPeerMembers
		}
		if strings.HasPrefix(r.Path, "/v1/admin/cluster/") {
			continue // a replicated hub's only: TestClusterChangesAreLogged
		}
		if _, ok := p.routes[r.Method+" "+r.Path]; !ok {
			t.Errorf("got no proof for %s %s, want every write route proved", r.Method, r.Path)
		}
	}

	// The lift erased the placement's details: a tombstone follows it, in
	// the batch the jobs publish once the erasure period has ended.
	if err := hub.RunJobs(); err != nil {
		t.Fatal(err)
	}
	var tombstones []string
	for _, e := range hub.LogEntries(t) {
		if b, _ := e.Attr("basis"); e.Action == protocol.LogErased && b != "gdpr-art-17" {
			v, _ := e.Attr("index")
			tombstones = append(tombstones, v)
		}
	}
	if !slices.Contains(tombstones, fmt.Sprint(f.LogIndex)) {
		t.Errorf("got tombstones %v, want one naming the placement's entry %d", tombstones, f.LogIndex)
	}
}

// TestInclusionProofShowsOnlyOwnEntries: the proof of a member's own entry
// carries its line; of another member's, only the hashes; a regulator gets
// every line. Proofs past the tree are refused, and a later checkpoint
// extends an earlier one.
func TestInclusionProofShowsOnlyOwnEntries(t *testing.T) {
	hub := hubtest.Start(t, hubtest.Options{})
	a := hub.AddMember(t, "bank-a", api.RoleCheck)
	b := hub.AddMember(t, "bank-b", api.RoleCheck)
	reg := hub.AddMember(t, "finansinspektionen", api.RoleRegulator)
	first := openCheckpoint(t, hub, a)
	toks := a.Tokenize(t, protocol.TypeEmail, "own@example.se")
	idx := check(t, a, "payment", toks...).LogIndex
	if _, err := hub.PublishCheckpoint(); err != nil {
		t.Fatal(err)
	}
	latest := openCheckpoint(t, hub, a)
	path := fmt.Sprintf("/v1/log/proof/inclusion?index=%d&size=%d", idx, latest.Size)
	for _, tc := range []struct {
		m    *hubtest.Member
		sees bool
	}{{a, true}, {b, false}, {reg, true}} {
		var pr api.ProofResponse
		resp := tc.m.Do(t, http.MethodGet, path, "", nil)
		mustStatus(t, resp, http.StatusOK)
		resp.JSON(t, &pr)
		if got := pr.Entry != ""; got != tc.sees || (got && !strings.Contains(pr.Entry, " bank-a check ok ")) {
			t.Errorf("%s: got entry %q with the proof of bank-a's check, want it shown: %v", tc.m.ID, pr.Entry, tc.sees)
		}
		if len(pr.Proof) == 0 {
			t.Errorf("%s: got no proof hashes", tc.m.ID)
		}
	}
	p := proof(t, b, fmt.Sprintf("/v1/log/proof/consistency?old=%d&new=%d", first.Size, latest.Size))
	if err := tlog.CheckTree(p, int64(latest.Size), latest.Root, int64(first.Size), first.Root); err != nil {
		t.Errorf("consistency %d → %d: %v", first.Size, latest.Size, err)
	}
	resp := a.Do(t, http.MethodGet, fmt.Sprintf("/v1/log/proof/inclusion?index=%d&size=%d", latest.Size, latest.Size), "", nil)
	if resp.Status != http.StatusNotFound {
		t.Errorf("inclusion past the tree: got %d, want 404", resp.Status)
	}
}

// TestCheckpointsKeptAndServedBySize: every published checkpoint stays and
// is served by its size; a size never published is not found.
func TestCheckpointsKeptAndServedBySize(t *testing.T) {
	hub := hubtest.Start(t, hubtest.Options{})
	a := hub.AddMember(t, "bank-a", api.RoleCheck)
	first := openCheckpoint(t, hub, a)
	toks := a.Tokenize(t, protocol.TypeEmail, "sizes@example.se")
	check(t, a, "payment", toks...)
	if _, err := hub.PublishCheckpoint(); err != nil {
		t.Fatal(err)
	}
	latest := openCheckpoint(t, hub, a)
	if latest.Size <= first.Size {
		t.Fatalf("got checkpoint sizes %d then %d, want the log grown", first.Size, latest.Size)
	}
	resp := a.Do(t, http.MethodGet, fmt.Sprintf("/v1/log/checkpoint?size=%d", first.Size), "", nil)
	mustStatus(t, resp, http.StatusOK)
	if !bytes.Equal(resp.Body, first.Note) || resp.Header.Get("X-Sparr-Tree-Size") != fmt.Sprint(first.Size) {
		t.Errorf("checkpoint of size %d: got %q (X-Sparr-Tree-Size %q), want the one published first %q", first.Size, resp.Body, resp.Header.Get("X-Sparr-Tree-Size"), first.Note)
	}
	if resp := a.Do(t, http.MethodGet, fmt.Sprintf("/v1/log/checkpoint?size=%d", latest.Size+1), "", nil); resp.Status != http.StatusNotFound {
		t.Errorf("a size never published: got %d, want 404", resp.Status)
	}
	if resp := a.Do(t, http.MethodGet, "/v1/log/checkpoint?size=ten", "", nil); resp.Status != http.StatusBadRequest {
		t.Errorf("a size that is not a number: got %d, want 400", resp.Status)
	}
}

// TestCheckpointBeforeStart: a hub not yet started has published no
// checkpoint, and says so with a problem, not a bare 500.
func TestCheckpointBeforeStart(t *testing.T) {
	dir := t.TempDir()
	if _, err := keyring.Init(filepath.Join(dir, "keys"), keyring.Options{LogOrigin: "hubtest.example/log"}); err != nil {
		t.Fatal(err)
	}
	keys, err := keyring.Load(filepath.Join(dir, "keys"))
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(filepath.Join(dir, "hub.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	hub, err := server.New(server.Config{Issuer: "https://hub.example", Store: st, Keys: keys})
	if err != nil {
		t.Fatal(err)
	}
	defer hub.Close()
	srv := httptest.NewServer(hub)
	defer srv.Close()
	opKey, err := keyring.LoadOperator(keyring.OperatorKeyPath(filepath.Join(dir, "keys")))
	if err != nil {
		t.Fatal(err)
	}
	op, err := client.New(client.Config{HubURL: srv.URL, MemberID: server.OperatorID, Key: opKey, Retry: client.Retry{Attempts: 1}})
	if err != nil {
		t.Fatal(err)
	}
	resp, err := op.Raw(context.Background(), client.RawRequest{Method: http.MethodGet, Path: "/v1/log/checkpoint"})
	if err != nil {
		t.Fatal(err)
	}
	p := resp.Problem()
	if resp.Status != http.StatusServiceUnavailable || resp.Header.Get("Content-Type") != protocol.ProblemContentType || p == nil ||
		p.Type != protocol.ProblemUnavailable.URI || resp.Header.Get("Retry-After") == "" {
		t.Errorf("before Start: got %d %s %+v (Retry-After %q), want 503 unavailable as a problem document with Retry-After",
			resp.Status, resp.Header.Get("Content-Type"), p, resp.Header.Get("Retry-After"))
	}
}

func TestAuditAPI(t *testing.T) {
	clock := hubtest.NewClock(start)
	hub := hubtest.Start(t, hubtest.Options{Clock: clock})
	reg := hub.AddMember(t, "regulator", api.RoleRegulator)
	a := hub.AddMember(t, "bank-a", api.RoleCheck)
	b := hub.AddMember(t, "bank-b", api.RoleCheck)
	toks := a.Tokenize(t, protocol.TypeEmail, "audit@example.se")
	check(t, a, "payment", toks...)
	clock.Advance(24 * time.Hour)
	check(t, b, "credit-application", toks...)
	check(t, b, "account-opening", toks...)
	a.JSON(t, http.MethodPost, "/v1/check", map[string]any{"purpose": "gambling", "tokens": []string{toks[0].String()}}) // refused

	// Filtered entries.
	resp := reg.Do(t, http.MethodGet, "/v1/audit/entries?member=bank-b&action=check", "", nil)
	mustStatus(t, resp, http.StatusOK)
	var entries struct {
		Entries []api.AuditEntry `json:"entries"`
	}
	resp.JSON(t, &entries)
	if len(entries.Entries) != 2 || entries.Entries[0].Attrs["purpose"] != "credit-application" {
		t.Errorf("bank-b's checks: %+v, want its two", entries.Entries)
	}
	// A time range, found by binary search.
	from := start.Add(12 * time.Hour).Format(time.RFC3339)
	resp = reg.Do(t, http.MethodGet, "/v1/audit/entries?action=check&from="+from, "", nil)
	resp.JSON(t, &entries)
	if len(entries.Entries) != 3 || entries.Entries[2].Result != "rejected:validation-failed" {
		t.Errorf("checks from %s: %+v, want the three of the second day, the last refused", from, entries.Entries)
	}
	// Stats.
	resp = reg.Do(t, http.MethodGet, "/v1/audit/stats", "", nil)
	mustStatus(t, resp, http.StatusOK)
	var st api.AuditStats
	resp.JSON(t, &st)
	if st.Actions["check"] != 4 || st.Members["bank-b"] != 2 || st.Refused["validation-failed"] != 1 || len(st.Days) != 2 {
		t.Errorf("stats %+v, want 4 checks (one refused), 2 by bank-b, over two days", st)
	}
	// Exports.
	resp = reg.Do(t, http.MethodGet, "/v1/audit/export?format=csv&action=check", "", nil)
	mustStatus(t, resp, http.StatusOK)
	if lines := strings.Count(string(resp.Body), "\n"); lines != 5 || !strings.HasPrefix(string(resp.Body), "index,time,member,action") {
		t.Errorf("CSV export:\n%s\nwant a header and four rows", resp.Body)
	}
	resp = reg.Do(t, http.MethodGet, "/v1/audit/export?format=jsonl&member=bank-a", "", nil)
	if lines := strings.Count(string(resp.Body), "\n"); resp.Status != http.StatusOK || lines < 3 {
		t.Errorf("JSONL export: %d, %d lines", resp.Status, lines)
	}
	// Raw entries are the exact lines.
	resp = reg.Do(t, http.MethodGet, "/v1/log/entries?start=0&end=3", "", nil)
	mustStatus(t, resp, http.StatusOK)
	lines, _ := hub.Store.LogEntries(0, 3)
	if got := strings.Join(strings.SplitAfter(string(resp.Body), "\n"), ""); got != string(lines[0])+string(lines[1])+string(lines[2]) {
		t.Errorf("raw entries differ from the store's")
	}
}

// TestAuditMembers: a regulator sees every member with the state of
// delivery to its endpoint, and nothing of its keys, URL or secrets.
func TestAuditMembers(t *testing.T) {
	hub := hubtest.Start(t, hubtest.Options{Delivery: fast})
	reg := hub.AddMember(t, "regulator", api.RoleRegulator)
	r := hub.NewReceiver(t, hub.AddMember(t, "bank-a", api.RoleCheck))
	r.Register(t)
	r.WaitEvent(t, wait, protocol.EventVerification)
	hub.AddMember(t, "bank-b", api.RoleCheck)
	resp := reg.Do(t, http.MethodGet, "/v1/audit/members", "", nil)
	mustStatus(t, resp, http.StatusOK)
	for _, secret := range []string{r.URL, "whsec_", "jwks", `"x":`} {
		if strings.Contains(string(resp.Body), secret) {
			t.Errorf("the answer holds %q:\n%s", secret, resp.Body)
		}
	}
	var got api.AuditMembers
	resp.JSON(t, &got)
	byID := map[string]api.AuditMember{}
	for _, m := range got.Members {
		byID[m.ID] = m
	}
	if a := byID["bank-a"]; a.Status != api.MemberActive || a.Delivery == nil || (a.Delivery.Status != api.EndpointActive && a.Delivery.Status != api.EndpointUnverified) {
		t.Errorf("bank-a: %+v, want active with its endpoint", a)
	}
	if b, ok := byID["bank-b"]; !ok || b.Delivery != nil {
		t.Errorf("bank-b: %+v, want listed, with no endpoint", b)
	}
	if _, ok := byID["regulator"]; !ok || len(got.Members) != 4 {
		t.Errorf("members %+v, want the operator, the regulator and both banks", got.Members)
	}
}

func TestErasureReachesEveryMember(t *testing.T) {
	// Erasures are published as soon as the jobs run, not a day later.
	hub := hubtest.Start(t, hubtest.Options{Delivery: fast, Policy: decide.Policy{SuspicionLegalBasis: "brottsdatalagen", ErasurePeriod: time.Nanosecond}})
	bank := hub.AddMember(t, "bank-a", api.RoleFlag, api.RoleCheck, api.RoleSuspicion)
	r := hub.NewReceiver(t, hub.AddMember(t, "bank-b", api.RoleCheck))
	r.Register(t)
	r.WaitEvent(t, wait, protocol.EventVerification)
	toks := bank.Tokenize(t, protocol.TypePersonalNumber, "190905271474", "200002292399")
	f := place(t, bank, toks[0])
	mustStatus(t, bank.Submit(t, "/v1/suspicions", protocol.ReportSuspicion{Subjects: toks, Category: protocol.CategoryIdentityTheft, PoliceReport: report}), http.StatusCreated)
	check(t, bank, "credit-application", toks...)

	resp := hub.Operator.JSON(t, http.MethodPost, "/v1/admin/erasures", map[string]string{"subject": toks[0].String(), "legal_basis": "gdpr-art-17"})
	mustStatus(t, resp, http.StatusOK)
	var out struct {
		RecordsErased    int `json:"records_erased"`
		LogEntriesErased int `json:"log_entries_erased"`
	}
	resp.JSON(t, &out)
	if out.RecordsErased < 2 || out.LogEntriesErased < 3 {
		t.Errorf("erased %+v, want the flag's and the suspicion's records, and the details of the placement, report and check", out)
	}
	// The subject is gone from the hub …
	if res := check(t, bank, "credit-application", toks[0]).Results[0]; res.Advice != api.AdviceNone || res.Flag != nil || res.Suspicions != nil {
		t.Errorf("check after erasure: %+v, want nothing", res)
	}
	if fl, _ := hub.Store.Flag(f.Flag.FlagID); fl.Status != "erased" || fl.Subject != "" {
		t.Errorf("flag after erasure: %+v", fl)
	}
	// … and every member is told to erase it.
	got := r.WaitEvent(t, wait, protocol.EventSubjectErased)
	if ev := got.Record.Event.(protocol.SubjectErased); ev.LegalBasis != "gdpr-art-17" {
		t.Errorf("erasure record %+v", ev)
	}
	// The log keeps the erasure and, once the jobs publish the period's
	// erasures, a tombstone per erased entry, and still holds no token.
	if err := hub.RunJobs(); err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range hub.LogEntries(t) {
		if e.Action == protocol.LogErased {
			if b, _ := e.Attr("basis"); b == "gdpr-art-17" {
				n++
			}
		}
	}
	if n != out.LogEntriesErased {
		t.Errorf("%d gdpr-art-17 tombstones, want %d", n, out.LogEntriesErased)
	}
	assertLogHoldsNoTokens(t, hub, toks...)
}

// hubTiles reads the log's tiles from the hub as a member, for
// golang.org/x/mod/sumdb/tlog's TileHashReader, which checks every tile
// it reads against the tree's root.
type hubTiles struct {
	t     *testing.T
	m     *hubtest.Member
	reads int
}

func (r *hubTiles) Height() int { return 8 }

func (r *hubTiles) ReadTiles(tiles []tlog.Tile) ([][]byte, error) {
	out := make([][]byte, len(tiles))
	for i, tile := range tiles {
		path := "/v1/log/" + strings.Replace(strings.Replace(tile.Path(), "tile/8/data/", "tile/entries/", 1), "tile/8/", "tile/", 1)
		resp := r.m.Do(r.t, http.MethodGet, path, "", nil)
		if resp.Status != http.StatusOK {
			return nil, fmt.Errorf("GET %s: %d %s", path, resp.Status, resp.Body)
		}
		out[i] = resp.Body
		r.reads++
	}
	return out, nil
}

func (r *hubTiles) SaveTiles([]tlog.Tile, [][]byte) {}

// TestLogAsTiles: the log read as c2sp.org/tlog-tiles with x/mod's tlog
// gives the checkpoint's root and proofs of its entries; the regulator's
// entry bundles hold the entries the hashes are of.
func TestLogAsTiles(t *testing.T) {
	hub := hubtest.Start(t, hubtest.Options{})
	bank := hub.AddMember(t, "bank-a", api.RoleCheck)
	reg := hub.AddMember(t, "finansinspektionen", api.RoleRegulator)
	toks := bank.Tokenize(t, protocol.TypeEmail, "tiles@example.se")
	for size, _ := hub.Store.LogSize(); size < 300; size++ {
		check(t, bank, "payment", toks...)
	}
	if _, err := hub.PublishCheckpoint(); err != nil {
		t.Fatal(err)
	}
	cp := openCheckpoint(t, hub, bank)
	lines, err := hub.Store.LogEntries(0, cp.Size)
	if err != nil {
		t.Fatal(err)
	}
	tiles := &hubTiles{t: t, m: bank}
	thr := tlog.TileHashReader(tlog.Tree{N: int64(cp.Size), Hash: cp.Root}, tiles)
	if root, err := tlog.TreeHash(int64(cp.Size), thr); err != nil || root != cp.Root {
		t.Fatalf("got root %x (%v) from the tiles, want the checkpoint's %x", root, err, cp.Root)
	}
	for _, idx := range []uint64{0, 255, 256, cp.Size - 1} {
		p, err := tlog.ProveRecord(int64(cp.Size), int64(idx), thr)
		if err != nil {
			t.Fatalf("proof of entry %d from the tiles: %v", idx, err)
		}
		if err := tlog.CheckRecord(p, int64(cp.Size), cp.Root, int64(idx), tlog.RecordHash(lines[idx])); err != nil {
			t.Errorf("entry %d: got a proof from the tiles that does not verify: %v", idx, err)
		}
	}
	if tiles.reads == 0 {
		t.Fatal("got no tile read, want the hashes read from tiles")
	}

	// The regulator's entry bundles: a full one and the partial last one.
	for _, b := range []struct {
		path  string
		first uint64
		n     int
	}{{"/v1/log/tile/entries/000", 0, 256}, {fmt.Sprintf("/v1/log/tile/entries/001.p/%d", cp.Size-256), 256, int(cp.Size - 256)}} {
		resp := reg.Do(t, http.MethodGet, b.path, "", nil)
		mustStatus(t, resp, http.StatusOK)
		var got [][]byte
		for rest := resp.Body; len(rest) > 0; {
			if len(rest) < 2 {
				t.Fatalf("%s: got a truncated bundle", b.path)
			}
			n := int(binary.BigEndian.Uint16(rest))
			if len(rest) < 2+n {
				t.Fatalf("%s: got a truncated bundle", b.path)
			}
			got = append(got, rest[2:2+n])
			rest = rest[2+n:]
		}
		if len(got) != b.n {
			t.Fatalf("%s: got %d entries, want %d", b.path, len(got), b.n)
		}
		for i, e := range got {
			if !bytes.Equal(e, lines[b.first+uint64(i)]) {
				t.Errorf("%s: got entry %d %q, want %q", b.path, i, e, lines[b.first+uint64(i)])
			}
		}
	}

	for _, tc := range []struct {
		m    *hubtest.Member
		path string
		want int
	}{
		{bank, "/v1/log/tile/entries/000", http.StatusForbidden},
		{bank, "/v1/log/tile/0/002", http.StatusNotFound},
		{bank, "/v1/log/tile/1/000", http.StatusNotFound},
		{bank, "/v1/log/tile/0/001", http.StatusNotFound},
		{bank, "/v1/log/tile/0/1", http.StatusBadRequest},
		{bank, "/v1/log/tile/0/000.p/256", http.StatusBadRequest},
		{bank, "/v1/log/tile/data/000", http.StatusBadRequest},
		{bank, "/v1/log/tile/64/000", http.StatusBadRequest},
		{reg, "/v1/log/tile/entries/x001/000", http.StatusNotFound},
	} {
		if resp := tc.m.Do(t, http.MethodGet, tc.path, "", nil); resp.Status != tc.want {
			t.Errorf("%s as %s: got %d, want %d: %s", tc.path, tc.m.ID, resp.Status, tc.want, resp.Body)
		}
	}
}
