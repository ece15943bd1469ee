package server_test

import (
	"context"
	"maps"
	"net/http"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/sparr-dev/sparr/federation/peering"
	"github.com/sparr-dev/sparr/protocol"
	"github.com/sparr-dev/sparr/protocol/api"
	"github.com/sparr-dev/sparr/server"
	"github.com/sparr-dev/sparr/server/decide"
	"github.com/sparr-dev/sparr/server/hubtest"
	"github.com/sparr-dev/sparr/server/state"
	"github.com/sparr-dev/sparr/server/store"
)

// TestCommandsReplayToTheSameStore runs a real hub through every kind of
// change — flags, suspicions, checks, members, endpoints, every delivery
// outcome, jobs, erasure, refusals, checkpoints — and records each command
// its store applies, in order. It then encodes each command, decodes it,
// and applies the sequence to two fresh stores: both, and the hub's own,
// must hold the same bytes in every bucket, with the same sequence
// counters. That is what lets another node apply a command it reads from a
// replicated log.
func TestCommandsReplayToTheSameStore(t *testing.T) {
	var mu sync.Mutex
	var applied []state.Command
	clock := hubtest.NewClock(time.Now().UTC().Truncate(time.Second))
	witness := hubtest.StartWitness(t, "replay.example")
	home, peer := startHomeHub(t)
	hub := hubtest.Start(t, hubtest.Options{
		Clock: clock,
		Policy: decide.Policy{SuspicionLegalBasis: "brottsdatalagen-2-kap", FeedRetention: time.Hour, PayeeRetention: 2 * time.Hour,
			PayeeBanks: map[string]string{"SE:500": "bank-c"}},
		Delivery: server.Delivery{Schedule: []time.Duration{0}},
		Configure: func(cfg *server.Config) {
			cfg.Witnesses = []server.Witness{witness.Config()}
			cfg.WitnessRetry, cfg.WitnessRetryMax = 5*time.Millisecond, 20*time.Millisecond
			cfg.Jurisdiction, cfg.Peers = "SE", []*peering.Peer{peer} // a record relayed from Norway's hub
			cfg.PeerKeyDir = peerKeyDir(t)                            // a peer registered and removed through the API
			cfg.PeerFeedInterval = 20 * time.Millisecond              // and its feed read
			cfg.Store.OnApplied(func(cmds []state.Command) {
				mu.Lock()
				applied = append(applied, cmds...)
				mu.Unlock()
			})
		},
	})
	witness.AddLog(t, hub.Configuration().Log.PublicKey)
	home.relayOne(t, hub)
	waitFor(t, "the cursor of the Norwegian hub's feed", func() bool {
		_, ok, err := hub.Store.PeerCursor("hub-no")
		return ok && err == nil
	})
	everyKindOfChange(t, hub, clock)
	registerAndRemovePeer(t, hub)
	// The witness's cosignature of the latest checkpoint is kept too.
	waitFor(t, "the witness's cosignature", func() bool {
		st := hub.WitnessesStatus()
		return st.Witnesses[0].CosignedSize != nil && *st.Witnesses[0].CosignedSize == st.CheckpointSize
	})
	// Every action the log holds is one protocol.LogActions lists, which
	// docs/regulator.md documents (TestLogActionsDocumented).
	for _, e := range hub.LogEntries(t) {
		if !slices.Contains(protocol.LogActions(), e.Action) {
			t.Errorf("entry %d has action %q, which protocol.LogActions does not list", e.Index, e.Action)
		}
	}
	hub.Hub.Close() // no more deliveries or jobs

	mu.Lock()
	cmds := slices.Clone(applied)
	mu.Unlock()
	kinds := map[state.Kind]int{}
	for _, c := range cmds {
		kinds[c.Kind()]++
	}
	for _, k := range state.Kinds() {
		if kinds[k] == 0 {
			t.Errorf("the scenario applied no %s command; it must cover every kind", k)
		}
	}
	t.Logf("%d commands: %v", len(cmds), kinds)

	replicas := make([]*store.Store, 2)
	for i := range replicas {
		st, err := store.Open(filepath.Join(t.TempDir(), "replica.db"), store.Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		for _, c := range cmds {
			enc, err := state.Encode(c)
			if err != nil {
				t.Fatalf("encode %s: %v", c.Kind(), err)
			}
			dec, err := state.Decode(enc)
			if err != nil {
				t.Fatalf("decode %s: %v", c.Kind(), err)
			}
			if _, err := st.Apply(dec); err != nil {
				t.Fatalf("replica %d: apply %s: %v", i, c.Kind(), err)
			}
		}
		replicas[i] = st
	}
	want := contents(t, hub.Store)
	for i, st := range replicas {
		got := contents(t, st)
		if !maps.Equal(got, want) {
			for k, v := range want {
				if got[k] != v {
					t.Errorf("replica %d: %s is %q, the hub's is %q", i, k, truncate(got[k]), truncate(v))
				}
			}
			for k := range got {
				if _, ok := want[k]; !ok {
					t.Errorf("replica %d: %s exists, and not at the hub", i, k)
				}
			}
		}
	}
}

// contents is every bucket's keys and values, and every bucket's sequence
// counter, of st.
func contents(t *testing.T, st *store.Store) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := st.Walk(func(bucket string, k, v []byte) error {
		out[bucket+"/"+string(k)] = string(v)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	seqs, err := st.Sequences()
	if err != nil {
		t.Fatal(err)
	}
	for b, n := range seqs {
		out["sequence of "+b] = strconv.FormatUint(n, 10)
	}
	return out
}

func truncate(s string) string {
	if len(s) > 120 {
		return s[:120] + "…"
	}
	return s
}

// registerAndRemovePeer registers a Danish peer through the operator API
// and removes it.
func registerAndRemovePeer(t *testing.T, hub *hubtest.Hub) {
	t.Helper()
	tk, err := protocol.GenerateTokenKey(1, nil)
	if err != nil {
		t.Fatal(err)
	}
	op := hub.Operator.Client()
	if _, err := op.AddPeer(context.Background(), api.PeerRequest{ID: "hub-dk", Jurisdiction: "DK", URL: "https://sparr.example.dk", Member: "hub-se",
		KeyFile: "hub-se.jwk", Token: tk.Public()}); err != nil {
		t.Fatal(err)
	}
	if _, err := op.RemovePeer(context.Background(), "hub-dk"); err != nil {
		t.Fatal(err)
	}
}

// everyKindOfChange drives hub through one change of every kind.
func everyKindOfChange(t *testing.T, hub *hubtest.Hub, clock *hubtest.Clock) {
	t.Helper()
	a := hub.AddMember(t, "bank-a", api.RoleFlag, api.RoleSuspicion, api.RoleCheck)
	b := hub.AddMember(t, "bank-b", api.RoleCheck)
	c := hub.AddMember(t, "bank-c", api.RoleCheck)
	d := hub.AddMember(t, "bank-d", api.RoleCheck)
	must := func(r *hubtest.Response, want int, what string) *hubtest.Response {
		t.Helper()
		if r.Status != want {
			t.Fatalf("%s: got %d %s, want %d", what, r.Status, r.Body, want)
		}
		return r
	}
	must(hub.Operator.Do(t, http.MethodPost, "/v1/admin/members/bank-d/suspend", "", nil), http.StatusOK, "suspend")
	must(hub.Operator.Do(t, http.MethodPost, "/v1/admin/members/bank-d/resume", "", nil), http.StatusOK, "resume")

	// Endpoints: a's takes everything; b's fails once (a retry, then a
	// pause); c's refuses (dead letters); d's is gone (410).
	ra, rb, rc, rd := hub.NewReceiver(t, a), hub.NewReceiver(t, b), hub.NewReceiver(t, c), hub.NewReceiver(t, d)
	for _, r := range []*hubtest.Receiver{ra, rb, rc, rd} {
		r.Register(t)
		r.WaitEvent(t, 10*time.Second, protocol.EventVerification)
	}
	var down sync.Mutex
	failing := true
	rb.Behave(func(_ int, w http.ResponseWriter, _ *http.Request) bool {
		down.Lock()
		defer down.Unlock()
		if failing {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		return failing
	})
	rc.Behave(func(_ int, w http.ResponseWriter, _ *http.Request) bool {
		w.WriteHeader(http.StatusBadRequest)
		return true
	})
	rd.Behave(func(_ int, w http.ResponseWriter, _ *http.Request) bool { w.WriteHeader(http.StatusGone); return true })
	must(a.Do(t, http.MethodPost, "/v1/members/self/endpoint/secret", "", nil), http.StatusOK, "rotate")

	toks := a.Tokenize(t, protocol.TypeEmail, "ett@replay.example", "tva@replay.example", "tre@replay.example")
	place := func(tok protocol.Token, expires time.Time) string {
		t.Helper()
		var w api.WriteResponse
		must(a.Submit(t, "/v1/flags", protocol.PlaceFlag{Subject: tok, Kind: protocol.FlagKindStandard,
			ExpiresAt: protocol.NewNumericDate(expires), Consent: a.Consent(tok)}), http.StatusCreated, "place").JSON(t, &w)
		return w.Flag.ID
	}
	f1 := place(toks[0], time.Time{})
	f2 := place(toks[1], clock.Now().Add(40*24*time.Hour)) // reminded at once
	f3 := place(toks[2], clock.Now().Add(2*time.Hour))     // lapses
	must(a.Submit(t, "/v1/flags", protocol.PlaceFlag{Subject: toks[0], Kind: protocol.FlagKindStandard, Consent: a.Consent(toks[0])}), http.StatusOK, "already active")
	must(a.Submit(t, "/v1/flags/"+f1+"/thaw", protocol.ThawFlag{FlagID: f1, ThawUntil: protocol.NewNumericDate(clock.Now().Add(time.Hour))}), http.StatusOK, "thaw")
	must(a.Submit(t, "/v1/flags/"+f1+"/thaw", protocol.ThawFlag{FlagID: f1, ThawUntil: protocol.NewNumericDate(clock.Now().Add(30 * 24 * time.Hour))}), http.StatusUnprocessableEntity, "a refused thaw")
	report := &protocol.PoliceReport{Authority: "Polismyndigheten", CaseNumber: "5000-K1-26", Date: clock.Now().Format(time.DateOnly)}
	must(a.Submit(t, "/v1/flags/"+f2+"/extend", protocol.ExtendFlag{FlagID: f2, Kind: protocol.FlagKindExtended, PoliceReport: report}), http.StatusOK, "extend")
	var sp api.WriteResponse
	must(a.Submit(t, "/v1/suspicions", protocol.ReportSuspicion{Subjects: toks[:1], Category: protocol.CategoryIdentityTheft, PoliceReport: report}), http.StatusCreated, "report").JSON(t, &sp)
	payee := a.Tokenize(t, protocol.TypeSwish, "1234567890")[0]
	must(a.Submit(t, "/v1/payees", payeeReport(payee, 2, clock.Now())), http.StatusCreated, "payee report")
	var recall api.WriteResponse
	must(a.Submit(t, "/v1/recalls", recallRequest(payee, "SE:500", clock.Now())), http.StatusCreated, "recall").JSON(t, &recall)
	must(c.Submit(t, "/v1/recalls/"+recall.Recall.RecallID+"/outcome", protocol.ReportRecallOutcome{RecallID: recall.Recall.RecallID,
		Outcome: protocol.RecallFrozen, Amount: protocol.Money{Minor: 100, Currency: "SEK"}}), http.StatusOK, "recall outcome") // expires with the jobs
	payee2 := a.Tokenize(t, protocol.TypeSwish, "1234567891")[0]
	must(a.Submit(t, "/v1/recalls", recallRequest(payee2, "SE:500", clock.Now())), http.StatusCreated, "recall to scrub")
	must(b.JSON(t, http.MethodPost, "/v1/suspicions/"+sp.Suspicion.ID+"/details", api.DetailsRequest{Purpose: api.PurposePayment, Justification: "the payee's identity is contested"}), http.StatusOK, "details")
	var chk api.CheckResponse
	must(b.JSON(t, http.MethodPost, "/v1/check", api.CheckRequest{Purpose: api.PurposeCreditApplication, Tokens: []string{toks[0].String(), toks[1].String()}}), http.StatusOK, "check").JSON(t, &chk)
	must(b.JSON(t, http.MethodPost, "/v1/checks/"+chk.CheckID+"/outcome", api.OutcomeRequest{Outcome: api.OutcomeVerified}), http.StatusOK, "outcome")
	must(a.Submit(t, "/v1/checks/"+chk.CheckID+"/denial", protocol.DenyCheck{CheckID: chk.CheckID, FlagID: f2,
		ConsumerAuth: &protocol.ConsumerAuth{Method: protocol.AuthBankID, AuthenticatedAt: protocol.NewNumericDate(clock.Now()), Level: protocol.LevelHigh, Reference: "bankid-1"}}), http.StatusOK, "deny check")
	must(c.JSON(t, http.MethodPost, "/v1/checks/replica", api.ReplicaChecksRequest{Checks: []api.ReplicaCheck{{Token: toks[1].String(), Purpose: api.PurposePayment, At: clock.Now()}}}), http.StatusOK, "replica checks")
	auth := &protocol.ConsumerAuth{Method: protocol.AuthBankID, AuthenticatedAt: protocol.NewNumericDate(clock.Now()), Level: protocol.LevelHigh, Reference: "replay-auth"}
	var ds api.DisputeResponse
	must(b.Submit(t, "/v1/disputes", protocol.OpenDispute{Subject: toks[0], SuspicionID: sp.Suspicion.ID, Grounds: protocol.GroundsNotMe, Statement: "not me", ConsumerAuth: auth}), http.StatusCreated, "open dispute").JSON(t, &ds)
	must(a.Submit(t, "/v1/disputes/"+ds.Dispute.DisputeID+"/answer", protocol.AnswerDispute{DisputeID: ds.Dispute.DisputeID, Answer: protocol.AnswerAcknowledge}), http.StatusOK, "acknowledge dispute")
	must(c.Submit(t, "/v1/disputes", protocol.OpenDispute{Subject: toks[1], FlagID: f2, Grounds: protocol.GroundsNeverAsked, ConsumerAuth: auth}), http.StatusCreated, "dispute a flag")

	// b's endpoint pauses with the placements queued; f1's lift erases
	// their records, so that when it resumes those deliveries are skipped.
	waitEndpoint(t, b, "paused", func(e api.Endpoint) bool { return e.Status == api.EndpointPaused })
	var lifted api.WriteResponse
	must(a.Submit(t, "/v1/flags/"+f1+"/lift", protocol.LiftFlag{FlagID: f1}), http.StatusOK, "lift").JSON(t, &lifted)
	liftRec, err := protocol.VerifyRecord([]byte(lifted.Record), hub.JWKS(t))
	if err != nil {
		t.Fatal(err)
	}
	must(c.Submit(t, "/v1/erasure-attestations", protocol.AttestErasure{Records: []string{liftRec.ID}}), http.StatusOK, "attest")
	must(a.Submit(t, "/v1/suspicions/"+sp.Suspicion.ID+"/retract", protocol.RetractSuspicion{SuspicionID: sp.Suspicion.ID, Reason: protocol.RetractCaseClosed}), http.StatusOK, "retract")
	down.Lock()
	failing = false
	down.Unlock()
	must(b.Do(t, http.MethodPost, "/v1/members/self/endpoint/resume", "", nil), http.StatusOK, "resume endpoint")

	// Jobs: f3 lapses and a placement on its subject ends it; f2 was
	// reminded; the feed is pruned; the payee record and the closed
	// recall reach the end of their retention.
	clock.Advance(3 * time.Hour)
	place(toks[2], time.Time{})
	if err := hub.RunJobs(); err != nil {
		t.Fatal(err)
	}
	_ = f3
	must(hub.Operator.JSON(t, http.MethodPost, "/v1/admin/erasures", api.ErasureRequest{Subject: toks[1].String(), LegalBasis: "gdpr-art-17"}), http.StatusOK, "erase")
	must(hub.Operator.JSON(t, http.MethodPost, "/v1/admin/erasures", api.ErasureRequest{Subject: payee2.String(), LegalBasis: "reported-in-error"}), http.StatusOK, "erase a recall's payee")
	must(hub.Operator.Do(t, http.MethodGet, "/v1/admin/backup", "", nil), http.StatusOK, "backup")
	must(b.Do(t, http.MethodDelete, "/v1/members/self/endpoint", "", nil), http.StatusOK, "remove endpoint")
	waitEndpoint(t, a, "drained", func(e api.Endpoint) bool { return e.Backlog == 0 })
	if _, err := hub.PublishCheckpoint(); err != nil {
		t.Fatal(err)
	}
}
