package main

import (
	"cmp"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	mathrand "math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/sparr-dev/sparr/client"
	"github.com/sparr-dev/sparr/federation/members"
	"github.com/sparr-dev/sparr/protocol"
	"github.com/sparr-dev/sparr/protocol/api"
	"github.com/sparr-dev/sparr/server"
	"github.com/sparr-dev/sparr/server/hubtest"
	"github.com/sparr-dev/sparr/server/keyring"
	"github.com/sparr-dev/sparr/server/state"
	"github.com/sparr-dev/sparr/server/store"
)

// The shape of the crash test: how often the hub is killed, and the load
// it is under meanwhile.
const (
	crashes        = 12
	crashWorkers   = 6   // goroutines placing, lifting and checking, three per bank
	crashTokens    = 200 // fresh identifiers each worker may place a flag on
	crashReceivers = 3
)

// TestCrashRecovery runs the real binary under load from several members
// and kills it with SIGKILL at random moments, restarting it each time on
// the same data directory and address, while the members' receivers stay
// up. A regulator fetches checkpoints throughout and verifies the log after
// every restart. Afterwards:
//
//   - every write that was acknowledged (a 2xx arrived before the kill) is
//     in the store, and its log entry where its answer said;
//   - every write left without an answer happened completely or not at
//     all;
//   - every checkpoint published before a crash is consistent with the
//     final one, and with the entries themselves;
//   - every event reached every receiver, verified, with a repeat only under
//     the same webhook-id, and with Sparr-Previous-Sequence chaining them;
//   - nothing exists twice: one flag per token, each record once and at one
//     feed sequence number, at most one lift per flag, each submission
//     accepted (logged) once.
//
// The random choices — when to kill, what each worker does — come from a
// seed the test logs; SPARR_CRASH_SEED=N makes them again (the timing of
// the run around them is the machine's).
func TestCrashRecovery(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and kills it repeatedly")
	}
	seed := crashSeed(t)
	rng := mathrand.New(mathrand.NewPCG(seed, 0))
	began := time.Now()
	tmp := t.TempDir()
	bin := filepath.Join(tmp, "sparr")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	hub := newCrashHub(t, bin, filepath.Join(tmp, "data"))
	hub.start(t)
	keys, err := keyring.Load(filepath.Join(hub.data, "keys"))
	if err != nil {
		t.Fatal(err)
	}
	logKey, err := protocol.NewLogVerifier(keys.LogVerifier)
	if err != nil {
		t.Fatal(err)
	}
	opKey, err := keyring.LoadOperator(keyring.OperatorKeyPath(filepath.Join(hub.data, "keys")))
	if err != nil {
		t.Fatal(err)
	}
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 32}}
	operator := newCrashMember(t, hub.url, server.OperatorID, opKey, hc)
	banks := []*crashMember{
		operator.add(t, "bank-a", api.RoleFlag, api.RoleCheck),
		operator.add(t, "bank-b", api.RoleFlag, api.RoleCheck),
	}
	reg := operator.add(t, "finansinspektionen", api.RoleRegulator)
	var receivers []*crashReceiver
	for i := range crashReceivers {
		r := newCrashReceiver(t, keys)
		r.register(t, operator.add(t, fmt.Sprintf("bank-r%d", i), api.RoleCheck))
		receivers = append(receivers, r)
	}
	for _, r := range receivers {
		r.waitVerified(t)
	}
	audit := newLogAudit(t, bin, hub.url, reg, keys.LogVerifier)
	audit.run(t, false)

	workers := make([]*crashWorker, crashWorkers)
	for i := range workers {
		w := &crashWorker{t: t, n: i, m: banks[i%len(banks)], active: map[string]protocol.Token{},
			rng: mathrand.New(mathrand.NewPCG(seed, uint64(i)+1)), verifier: pinnedVerifier(keys, hub.url)}
		w.fresh = w.m.tokenize(t, crashTokens, fmt.Sprintf("crash-w%d", i))
		workers[i] = w
	}

	// The load, and a regulator fetching checkpoints, until stop.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for _, w := range workers {
		wg.Go(func() { w.run(stop) })
	}
	cps := &checkpoints{t: t, key: logKey, m: reg, bySize: map[uint64]*protocol.Checkpoint{}, runOf: map[uint64]int{}}
	var polling sync.WaitGroup
	pollStop := make(chan struct{})
	polling.Go(func() { cps.poll(pollStop) })

	for i := range crashes {
		if i%3 == 2 {
			// This run outlasts the checkpoint interval: the hub signs a
			// checkpoint under load, and is killed soon after.
			cps.waitPublished(t)
		}
		time.Sleep(time.Duration(rng.IntN(500)+50) * time.Millisecond)
		hub.kill(t)
		cps.crashed()
		time.Sleep(time.Duration(rng.IntN(100)) * time.Millisecond)
		hub.start(t)
		// The regulator checks the log right after each restart: it must
		// extend every checkpoint seen before the crash.
		audit.run(t, false)
	}
	time.Sleep(300 * time.Millisecond)
	close(stop)
	wg.Wait()

	// Every receiver drains, and a checkpoint covers everything.
	drainEndpoints(t, operator, receivers)
	time.Sleep(1200 * time.Millisecond) // one checkpoint interval and a bit
	final := cps.fetch()
	close(pollStop)
	polling.Wait()
	if final == nil {
		t.Fatal("no final checkpoint")
	}
	for _, c := range cps.all() {
		p := consistencyProof(t, reg, c.Size, final.Size)
		if err := tlog.CheckTree(p, int64(final.Size), final.Root, int64(c.Size), c.Root); err != nil {
			t.Errorf("checkpoint %s (fetched from the hub's run %d) is not consistent with the final %s: %v", c, cps.runOf[c.Size], final, err)
		}
	}
	audit.run(t, true)
	hub.stop(t)

	// What the store holds, opened after a clean stop.
	st, err := store.Open(filepath.Join(hub.data, "hub.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var writes []*crashWrite
	var checks []crashCheck
	resent := 0
	for _, w := range workers {
		writes = append(writes, w.writes...)
		checks = append(checks, w.checks...)
		resent += w.resent
	}
	state := readCrashStore(t, st)
	checkLog(t, st, cps, final)
	checkWrites(t, st, state, writes, checks)
	for _, d := range state.duplicates() {
		t.Error(d)
	}
	deliveries, duplicates := checkDeliveries(t, st, state, receivers, writes)

	acked, unanswered := 0, 0
	for _, w := range writes {
		if w.acked {
			acked++
		} else {
			unanswered++
		}
	}
	t.Logf("%d crashes (SIGKILL) in %v", crashes, time.Since(began).Round(time.Millisecond))
	t.Logf("acknowledged: %d writes (%d of them sent again with the same bytes after a crash took the first answer) and %d checks",
		acked, resent, len(checks))
	t.Logf("left without an answer: %d writes, of which %d happened (whole) and %d did not happen (at all)",
		unanswered, state.unansweredHappened(writes), unanswered-state.unansweredHappened(writes))
	t.Logf("deliveries: %d verified by %d receivers, %d of them repeats, each under the same webhook-id",
		deliveries, len(receivers), duplicates)
	t.Logf("log: %d entries; %d checkpoints fetched across the crashes, %d of them signed on the interval under load before a kill, each consistent with the final one",
		state.logSize, len(cps.all()), cps.published)
}

// crashSeed returns the seed of the crash test's random choices:
// SPARR_CRASH_SEED if set, to replay a run, or a new one. It logs it.
func crashSeed(t *testing.T) uint64 {
	t.Helper()
	if s := os.Getenv("SPARR_CRASH_SEED"); s != "" {
		seed, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("SPARR_CRASH_SEED=%q: want a number", s)
		}
		t.Logf("seed %d, from SPARR_CRASH_SEED", seed)
		return seed
	}
	seed := mathrand.Uint64()
	t.Logf("seed %d; SPARR_CRASH_SEED=%d makes the same random choices again", seed, seed)
	return seed
}

// A crashHub is the sparr binary serving one data directory on one
// address, started and killed again and again.
type crashHub struct {
	bin, data, addr, url string
	cmd                  *exec.Cmd
	exited               chan error
	stdout, stderr       *syncBuffer
	runs                 int
}

func newCrashHub(t *testing.T, bin, data string) *crashHub {
	t.Helper()
	// A fixed port, so that the issuer (and members' tokens for it) stays
	// the same across restarts.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	h := &crashHub{bin: bin, data: data, addr: addr, url: "http://" + addr}
	t.Cleanup(func() {
		if h.cmd != nil {
			h.cmd.Process.Kill()
			<-h.exited
		}
	})
	return h
}

// start runs serve and waits until it listens. A port just given up by a
// killed process may take a moment to be free again.
func (h *crashHub) start(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !h.launch(t, deadline) {
		time.Sleep(50 * time.Millisecond)
	}
}

// launch starts one process and waits until it listens (true), or exits
// because the address is still in use (false).
func (h *crashHub) launch(t *testing.T, deadline time.Time) bool {
	t.Helper()
	var environ []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "SPARR_") {
			environ = append(environ, kv)
		}
	}
	unlimited := "100000/100000"
	h.runs++
	h.stdout, h.stderr = &syncBuffer{}, &syncBuffer{}
	cmd := exec.Command(h.bin, "serve", "--dev", "--data", h.data, "--addr", h.addr, "--issuer", h.url,
		"--metrics-addr", "off", "--checkpoint-interval", "1s",
		"--rate-writes", unlimited, "--rate-checks", unlimited, "--rate-reads", unlimited, "--rate-tokens", unlimited,
		"--tokens-per-second", "100000", "--tokens-per-day", "100000000", "--stored-bytes-per-day", "1099511627776")
	cmd.Env, cmd.Stdout, cmd.Stderr = environ, h.stdout, h.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	h.cmd, h.exited = cmd, exited
	for !listeningLine.MatchString(h.stdout.String()) {
		select {
		case err := <-exited:
			h.cmd = nil
			if strings.Contains(h.stderr.String(), "address already in use") && time.Now().Before(deadline) {
				return false
			}
			t.Fatalf("serve (start %d) exited before listening: %v; stderr:\n%s", h.runs, err, h.stderr)
		case <-time.After(5 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("serve (start %d) did not listen within 20 s; stderr:\n%s", h.runs, h.stderr)
		}
	}
	return true
}

// kill ends the process with SIGKILL, as a power cut or the OOM killer
// would.
func (h *crashHub) kill(t *testing.T) {
	t.Helper()
	if err := h.cmd.Process.Kill(); err != nil {
		t.Fatalf("kill serve (start %d): %v; stderr:\n%s", h.runs, err, h.stderr)
	}
	err := <-h.exited
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("serve (start %d) ended with %v, want killed by SIGKILL; stderr:\n%s", h.runs, err, h.stderr)
	}
	h.cmd = nil
}

// stop ends the process with SIGTERM and checks that it shut down cleanly.
func (h *crashHub) stop(t *testing.T) {
	t.Helper()
	if err := h.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-h.exited:
		h.cmd = nil
		if err != nil {
			t.Fatalf("serve exited with %v after SIGTERM, want status 0; stderr:\n%s", err, h.stderr)
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("serve did not stop within 30 s of SIGTERM; stderr:\n%s", h.stderr)
	}
	if !strings.Contains(h.stderr.String(), `"msg":"store closed"`) {
		t.Errorf("the last run's logs do not record closing the store:\n%s", h.stderr)
	}
}

// A crashMember signs its requests with its own key through the member
// SDK, as a member's systems do. Its client sends each request once: the
// test decides what is sent again.
type crashMember struct {
	id  string
	key *protocol.SigningKey
	hub string
	hc  *http.Client
	c   *client.Client
}

func newCrashMember(t *testing.T, hub, id string, key *protocol.SigningKey, hc *http.Client) *crashMember {
	t.Helper()
	c, err := client.New(client.Config{HubURL: hub, MemberID: id, Key: key, HTTPClient: hc, Retry: client.Retry{Attempts: 1}})
	if err != nil {
		t.Fatal(err)
	}
	return &crashMember{id: id, key: key, hub: hub, hc: hc, c: c}
}

// pinnedVerifier verifies the hub's answers against its keys as read from
// its key files, not as it serves them.
func pinnedVerifier(keys *keyring.Keys, issuer string) *client.Verifier {
	jwks := keys.JWKS()
	return &client.Verifier{Keys: client.NewKeys(client.KeysConfig{Issuer: issuer,
		Source: client.KeySourceFunc(func(context.Context) (*protocol.KeySet, error) { return jwks, nil })})}
}

// add registers a member with a new key through the admin API.
func (op *crashMember) add(t *testing.T, id string, roles ...api.Role) *crashMember {
	t.Helper()
	key, jwks := hubtest.NewKey(t)
	if _, err := op.c.AddMember(context.Background(), api.MemberRequest{ID: id, Name: "Crash test " + id, Roles: roles, JWKS: jwks}); err != nil {
		t.Fatalf("add member %s: %v", id, err)
	}
	return newCrashMember(t, op.hub, id, key, op.hc)
}

// do sends one request exactly as given; an error means no answer arrived.
func (m *crashMember) do(method, path, contentType string, body []byte) (int, []byte, error) {
	resp, err := m.c.Raw(context.Background(), client.RawRequest{Method: method, Path: path, ContentType: contentType, Body: body})
	if err != nil {
		return 0, nil, err
	}
	return resp.Status, resp.Body, nil
}

// tokenize makes n identity tokens through the hub's oblivious evaluation.
func (m *crashMember) tokenize(t *testing.T, n int, prefix string) []protocol.Token {
	t.Helper()
	values := make([]string, n)
	for i := range values {
		values[i] = fmt.Sprintf("%s-%d@example.se", prefix, i)
	}
	toks, err := m.c.Tokenize(context.Background(), protocol.TypeEmail, values...)
	if err != nil {
		t.Fatal(err)
	}
	return toks
}

// A crashWrite is one submission a worker sent, and what it knows of its
// fate: acknowledged with the answer's details, or left without an
// answer.
type crashWrite struct {
	member, kind string // kind is "place" or "lift"
	jti          string
	token        string
	flag         string // the flag placed or lifted; a placement not answered has none
	acked        bool
	record       string // the jti of the record the answer carried
	logIndex     uint64
}

// A crashCheck is an acknowledged check.
type crashCheck struct {
	member, id string
	logIndex   uint64
	tokens     int
}

// A crashWorker places flags on fresh tokens, lifts flags it placed, and
// checks tokens whose state it knows, until stopped. It alone changes its
// tokens, so it knows what every acknowledged check must answer, across
// crashes.
type crashWorker struct {
	t        *testing.T
	n        int
	m        *crashMember
	verifier *client.Verifier // checks answers against the hub's key files
	rng      *mathrand.Rand   // every choice the worker makes, from the test's seed

	fresh  []protocol.Token          // never submitted
	active map[string]protocol.Token // acknowledged flags, not lifted, by flag id
	lifted []protocol.Token          // their lifts acknowledged
	writes []*crashWrite
	checks []crashCheck
	// noAnswer counts requests left without an answer: every other one is
	// sent again with the same bytes (the hub must answer a replay as the
	// original), the rest are left in flight; resent counts the former.
	noAnswer, resent int
}

func (w *crashWorker) run(stop chan struct{}) {
	for {
		select {
		case <-stop:
			return
		case <-time.After(time.Duration(w.rng.IntN(15)) * time.Millisecond):
		}
		switch r := w.rng.IntN(10); {
		case r < 5 && len(w.fresh) > 0:
			w.place()
		case r < 7 && len(w.active) > 0:
			w.lift()
		default:
			w.check()
		}
	}
}

func (w *crashWorker) place() {
	tok := w.fresh[0]
	w.fresh = w.fresh[1:]
	sub, err := w.m.c.Sign(context.Background(), protocol.PlaceFlag{Subject: tok, Kind: protocol.FlagKindStandard, Consent: crashConsent(w.m.id, tok)})
	if err != nil {
		w.t.Error(err)
		return
	}
	wr := &crashWrite{member: w.m.id, kind: "place", jti: sub.ID, token: tok.String()}
	w.writes = append(w.writes, wr)
	status, resp, ok := w.send(http.MethodPost, sub.Path, "application/jose", sub.JWS, true)
	if !ok {
		return
	}
	if status != http.StatusCreated {
		w.t.Errorf("worker %d: placing a flag on a fresh token: got status %d, want 201: %s", w.n, status, resp)
		return
	}
	if w.ack(wr, sub, resp, api.FlagActive) {
		w.active[wr.flag] = tok
	}
}

func (w *crashWorker) lift() {
	ids := w.activeIDs()
	id := ids[w.rng.IntN(len(ids))]
	tok := w.active[id]
	delete(w.active, id)
	sub, err := w.m.c.Sign(context.Background(), protocol.LiftFlag{FlagID: id})
	if err != nil {
		w.t.Error(err)
		return
	}
	wr := &crashWrite{member: w.m.id, kind: "lift", jti: sub.ID, token: tok.String(), flag: id}
	w.writes = append(w.writes, wr)
	status, resp, ok := w.send(http.MethodPost, sub.Path, "application/jose", sub.JWS, true)
	if !ok {
		return
	}
	if status != http.StatusOK {
		w.t.Errorf("worker %d: lifting acknowledged flag %s: got status %d, want 200: %s", w.n, id, status, resp)
		return
	}
	if w.ack(wr, sub, resp, api.FlagLifted) {
		w.lifted = append(w.lifted, tok)
	}
}

// ack reads a write's answer: the flag, now with status, and the signed
// record of the change, verified and of the submission.
func (w *crashWorker) ack(wr *crashWrite, sub *client.Submission, resp []byte, status api.FlagStatus) bool {
	res, err := w.verifier.Write(context.Background(), sub, resp)
	if err != nil {
		w.t.Errorf("worker %d: the answer to %s: %v", w.n, wr.jti, err)
		return false
	}
	if res.Record == nil || res.Flag == nil {
		w.t.Errorf("worker %d: %s %s answered without a record or a flag: %s", w.n, wr.kind, wr.jti, resp)
		return false
	}
	if (wr.flag != "" && res.Flag.ID != wr.flag) || res.Flag.Status != status {
		w.t.Errorf("worker %d: %s %s answered with flag %s, %s; want flag %q, %s", w.n, wr.kind, wr.jti, res.Flag.ID, res.Flag.Status, wr.flag, status)
		return false
	}
	wr.acked, wr.flag, wr.record, wr.logIndex = true, res.Flag.ID, res.Record.ID, res.LogIndex
	return true
}

// check checks a few tokens whose state the worker knows, and compares
// the answer with what its acknowledged writes make it.
func (w *crashWorker) check() {
	want := map[string]string{} // token → flag id, "" for none
	if ids := w.activeIDs(); len(ids) > 0 {
		for range 2 {
			id := ids[w.rng.IntN(len(ids))]
			want[w.active[id].String()] = id
		}
	}
	if len(w.lifted) > 0 {
		want[w.lifted[w.rng.IntN(len(w.lifted))].String()] = ""
	}
	if len(w.fresh) > 0 {
		want[w.fresh[len(w.fresh)-1].String()] = ""
	}
	if len(want) == 0 {
		return
	}
	req := api.CheckRequest{Purpose: api.PurposeCreditApplication}
	var toks []protocol.Token
	for s := range want {
		tok, err := protocol.ParseToken(s)
		if err != nil {
			w.t.Fatal(err)
		}
		req.Tokens, toks = append(req.Tokens, s), append(toks, tok)
	}
	body, _ := json.Marshal(req)
	status, resp, ok := w.send(http.MethodPost, "/v1/check", "application/json", body, false)
	if !ok {
		return
	}
	if status != http.StatusOK {
		w.t.Errorf("worker %d: check: got status %d, want 200: %s", w.n, status, resp)
		return
	}
	res, err := w.verifier.Check(context.Background(), toks, resp)
	if err != nil {
		w.t.Errorf("worker %d: check: %v", w.n, err)
		return
	}
	for _, r := range res.Results {
		got := ""
		if r.Flag != nil {
			got = r.Flag.ID
		}
		if got != want[r.Token.String()] || (got != "") != (r.Advice == api.AdviceVerify) {
			w.t.Errorf("worker %d: check of a token answered advice %q, flag %q; want flag %q", w.n, r.Advice, got, want[r.Token.String()])
		}
	}
	w.checks = append(w.checks, crashCheck{member: w.m.id, id: res.ID, logIndex: res.LogIndex, tokens: len(toks)})
}

// activeIDs returns the ids of the worker's active flags in order (the
// order of a map is random, and not the seed's).
func (w *crashWorker) activeIDs() []string {
	ids := make([]string, 0, len(w.active))
	for id := range w.active {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// send sends a request until the hub can be reached. A request that may
// have reached the hub and got no answer is, if again, sent again with the
// same bytes until answered; otherwise it is left in flight (ok false).
func (w *crashWorker) send(method, path, contentType string, body []byte, again bool) (int, []byte, bool) {
	deadline := time.Now().Add(30 * time.Second)
	counted := false
	for {
		status, resp, err := w.m.do(method, path, contentType, body)
		if err == nil {
			return status, resp, true
		}
		if !errors.Is(err, syscall.ECONNREFUSED) && !counted {
			// It may have reached the hub before it died.
			counted = true
			w.noAnswer++
			if !again || w.noAnswer%2 == 1 {
				return 0, nil, false
			}
			w.resent++
		}
		if time.Now().After(deadline) {
			w.t.Errorf("worker %d: %s %s: no answer within 30 s: %v", w.n, method, path, err)
			return 0, nil, false
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// crashConsent is a consent the default policy accepts.
func crashConsent(member string, subject protocol.Token) *protocol.Consent {
	now := time.Now()
	var b [8]byte
	rand.Read(b[:])
	id := hex.EncodeToString(b[:])
	return &protocol.Consent{
		ID: "consent-" + id, Subject: subject, Controller: member,
		Purpose: "identity-fraud-protection", LegalBasis: "gdpr-art-6-1-a",
		Collection: protocol.ConsentCollection{Method: "mobile-app", At: protocol.NewNumericDate(now.Add(-time.Minute))},
		Notice:     "https://" + member + ".example/privacy/sparr",
		ExpiresAt:  protocol.NewNumericDate(now.AddDate(6, 0, 0)),
		Evidence:   protocol.ConsentEvidence{AuthenticationMethod: "bankid", AssuranceLevel: "loa3", Reference: "auth-" + id},
	}
}

// A crashReceiver is a member's webhook endpoint that outlives every hub
// process: it verifies each delivery (the HMAC with its secret, the hub's
// Ed25519 signature, then the record against the hub's keys) and keeps
// what it verified.
type crashReceiver struct {
	member string
	srv    *httptest.Server
	hubKey ed25519.PublicKey
	jwks   *protocol.KeySet

	mu      sync.Mutex
	secret  *protocol.WebhookSecret
	got     []crashDelivery
	invalid []string
}

// A crashDelivery is one verified delivery.
type crashDelivery struct {
	seq, prev uint64
	hook      string
	rec       *protocol.Record
}

func newCrashReceiver(t *testing.T, keys *keyring.Keys) *crashReceiver {
	t.Helper()
	r := &crashReceiver{hubKey: keys.Webhook.Public().(ed25519.PublicKey), jwks: keys.JWKS()}
	r.srv = httptest.NewServer(http.HandlerFunc(r.serve))
	t.Cleanup(r.srv.Close)
	return r
}

// register makes the receiver m's endpoint and keeps the secret.
func (r *crashReceiver) register(t *testing.T, m *crashMember) {
	t.Helper()
	r.mu.Lock()
	r.member = m.id
	r.mu.Unlock()
	s, _, err := m.c.RegisterEndpoint(context.Background(), r.srv.URL+"/events")
	if err != nil {
		t.Fatal(err)
	}
	r.mu.Lock()
	r.secret = &s
	r.mu.Unlock()
}

func (r *crashReceiver) serve(w http.ResponseWriter, req *http.Request) {
	body, err := io.ReadAll(req.Body)
	if err != nil {
		return // the hub died while sending
	}
	r.mu.Lock()
	secret := r.secret
	r.mu.Unlock()
	// The hub's key always; the HMAC too once the secret is known (the
	// verification event may beat the answer that carries it).
	verifiers := []protocol.WebhookVerifier{{PublicKeys: []ed25519.PublicKey{r.hubKey}}}
	if secret != nil {
		verifiers = append(verifiers, protocol.WebhookVerifier{Secrets: []protocol.WebhookSecret{*secret}})
	}
	if ct := req.Header.Get("Content-Type"); ct != protocol.DeliveryContentType {
		err = fmt.Errorf("content type %q", ct)
	}
	for _, v := range verifiers {
		if err == nil {
			err = v.VerifyHeaders(req.Header, body, time.Now())
		}
	}
	var rec *protocol.Record
	if err == nil {
		rec, err = protocol.VerifyRecord(body, r.jwks)
	}
	seq, err1 := strconv.ParseUint(req.Header.Get(protocol.HeaderSequence), 10, 64)
	prev, err2 := strconv.ParseUint(req.Header.Get(protocol.HeaderPreviousSequence), 10, 64)
	if err == nil && (err1 != nil || err2 != nil) {
		err = fmt.Errorf("sequence headers %q, %q", req.Header.Get(protocol.HeaderSequence), req.Header.Get(protocol.HeaderPreviousSequence))
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if err != nil {
		r.invalid = append(r.invalid, err.Error())
		http.Error(w, `{"err":"authentication_failed"}`, http.StatusBadRequest)
		return
	}
	r.got = append(r.got, crashDelivery{seq: seq, prev: prev, hook: req.Header.Get(protocol.HeaderWebhookID), rec: rec})
	w.WriteHeader(http.StatusAccepted)
}

func (r *crashReceiver) received() []crashDelivery {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.got)
}

func (r *crashReceiver) waitVerified(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		for _, d := range r.received() {
			if d.rec.Event.EventType() == protocol.EventVerification {
				return
			}
		}
		if time.Now().After(deadline) {
			r.mu.Lock()
			defer r.mu.Unlock()
			t.Fatalf("receiver of %s: no verification event within 20 s (refused: %q)", r.member, r.invalid)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// drainEndpoints waits until every receiver's endpoint is active with
// nothing queued.
func drainEndpoints(t *testing.T, operator *crashMember, receivers []*crashReceiver) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		endpoints, err := operator.c.Endpoints(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		var busy []string
		for _, e := range endpoints {
			if e.Status != api.EndpointActive || e.Backlog != 0 {
				busy = append(busy, fmt.Sprintf("%s: %s, backlog %d, last error %q", e.Member, e.Status, e.Backlog, e.LastError))
			}
		}
		if len(endpoints) != len(receivers) {
			t.Fatalf("the hub has %d endpoints, want %d", len(endpoints), len(receivers))
		}
		if len(busy) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("endpoints not drained within 30 s: %q", busy)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// checkpoints are the signed checkpoints a regulator fetched, each
// verified with the log key, by tree size.
type checkpoints struct {
	t   *testing.T
	key note.Verifier
	m   *crashMember

	mu     sync.Mutex
	bySize map[uint64]*protocol.Checkpoint
	runOf  map[uint64]int // the run of the hub (1 until the first crash) a checkpoint was fetched from
	crash  int
	// first is the size of the first checkpoint fetched from the hub's
	// current run (the one it published as it started); 0 before one.
	first uint64
	// published counts the runs waitPublished saw sign a checkpoint.
	published int
}

// waitPublished waits until the hub's current run has signed a checkpoint
// after the one it started with: on the checkpoint interval, under load.
func (c *checkpoints) waitPublished(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		cp := c.fetch()
		c.mu.Lock()
		first := c.first
		c.mu.Unlock()
		if cp != nil && first != 0 && cp.Size > first {
			c.mu.Lock()
			c.published++
			c.mu.Unlock()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the hub signed no checkpoint beyond its first (size %d) within 30 s under load", first)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// poll fetches the latest checkpoint every 100 ms until stop.
func (c *checkpoints) poll(stop chan struct{}) {
	for {
		c.fetch()
		select {
		case <-stop:
			return
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// fetch fetches, verifies and keeps the latest checkpoint, if the hub
// answers.
func (c *checkpoints) fetch() *protocol.Checkpoint {
	c.mu.Lock()
	run := c.crash
	c.mu.Unlock()
	body, err := c.m.c.Log().Checkpoint(context.Background())
	var p *client.Problem
	switch {
	case errors.As(err, &p):
		c.t.Errorf("GET /v1/log/checkpoint: got %v, want the checkpoint", p)
		return nil
	case err != nil:
		return nil // the hub is down
	}
	cp, err := protocol.OpenCheckpoint(body, c.key)
	if err != nil {
		c.t.Errorf("checkpoint %q does not verify with the log key: %v", body, err)
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if old, ok := c.bySize[cp.Size]; ok && old.Root != cp.Root {
		c.t.Errorf("two checkpoints of size %d with different roots:\n%s\n%s", cp.Size, old.Note, cp.Note)
	}
	if _, ok := c.bySize[cp.Size]; !ok {
		c.bySize[cp.Size], c.runOf[cp.Size] = cp, c.crash+1
	}
	if c.first == 0 && c.crash == run {
		c.first = cp.Size
	}
	return cp
}

// crashed notes that the hub was killed.
func (c *checkpoints) crashed() {
	c.mu.Lock()
	c.crash++
	c.first = 0
	c.mu.Unlock()
}

// all returns the checkpoints by size.
func (c *checkpoints) all() []*protocol.Checkpoint {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]*protocol.Checkpoint, 0, len(c.bySize))
	for _, cp := range c.bySize {
		out = append(out, cp)
	}
	slices.SortFunc(out, func(a, b *protocol.Checkpoint) int { return cmp.Compare(a.Size, b.Size) })
	return out
}

func consistencyProof(t *testing.T, m *crashMember, old, size uint64) tlog.TreeProof {
	t.Helper()
	p, err := m.c.Log().ConsistencyProof(context.Background(), old, size)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// A logAudit runs sparr log verify as the regulator, keeping its state file
// between runs.
type logAudit struct {
	bin  string
	args []string
}

func newLogAudit(t *testing.T, bin, hubURL string, reg *crashMember, logKey string) *logAudit {
	t.Helper()
	dir := t.TempDir()
	jwk, err := reg.key.MarshalPrivateJWK()
	if err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(dir, "regulator.jwk")
	if err := os.WriteFile(keyFile, jwk, 0o600); err != nil {
		t.Fatal(err)
	}
	return &logAudit{bin: bin, args: []string{"log", "verify", "--hub", hubURL, "--log-key", logKey, "--member", reg.id, "--key", keyFile,
		"--state", filepath.Join(dir, "state.json"), "--evidence", filepath.Join(dir, "evidence.json")}}
}

func (v *logAudit) run(t *testing.T, full bool) {
	t.Helper()
	args := v.args
	if full {
		args = append(slices.Clone(args), "--full")
	}
	cmd := exec.Command(v.bin, args...)
	cmd.Env = []string{"HOME=" + t.TempDir()}
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("sparr log verify: %v\n%s", err, out)
	}
}

// crashStore is what the store holds, read once.
type crashStore struct {
	records map[string]*state.Record // by jti
	flags   map[string]*state.Flag   // by id
	events  map[uint64]string        // seq → record jti
	logSize uint64
	entries []*protocol.LogEntry
	// submissions are the members' submissions the hub accepted, by
	// member and jti ("bank-a\x00jti").
	submissions map[string]*state.Submission
	// happened are the unanswered writes the store shows were applied.
	happened map[*crashWrite]bool
}

func readCrashStore(t *testing.T, st *store.Store) *crashStore {
	t.Helper()
	s := &crashStore{records: map[string]*state.Record{}, flags: map[string]*state.Flag{}, events: map[uint64]string{},
		submissions: map[string]*state.Submission{}, happened: map[*crashWrite]bool{}}
	err := st.Walk(func(bucket string, k, v []byte) error {
		switch bucket {
		case "records":
			r := new(state.Record)
			if err := json.Unmarshal(v, r); err != nil {
				return err
			}
			if r.ID != string(k) {
				t.Errorf("record under key %s has id %s", k, r.ID)
			}
			s.records[r.ID] = r
		case "flags":
			f := new(state.Flag)
			if err := json.Unmarshal(v, f); err != nil {
				return err
			}
			s.flags[f.ID] = f
		case "events":
			s.events[binary.BigEndian.Uint64(k)] = string(v)
		case "submissions":
			sub := new(state.Submission)
			if err := json.Unmarshal(v, sub); err != nil {
				return err
			}
			s.submissions[string(k)] = sub
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if s.logSize, err = st.LogSize(); err != nil {
		t.Fatal(err)
	}
	lines, err := st.LogEntries(0, s.logSize)
	if err != nil {
		t.Fatal(err)
	}
	for i, l := range lines {
		e, err := protocol.ParseLogEntry(l)
		if err != nil {
			t.Fatalf("log entry %d: %v", i, err)
		}
		s.entries = append(s.entries, e)
	}
	return s
}

// duplicates returns what the store holds twice: a record at two feed
// sequence numbers, two lift records of one flag, or a submission accepted
// twice — a log entry of an accepted placement or lift that is not the one
// entry its submission's idempotency row names.
func (s *crashStore) duplicates() []string {
	var out []string
	seqOf := map[string]uint64{}
	for _, seq := range slices.Sorted(maps.Keys(s.events)) {
		jti := s.events[seq]
		if first, ok := seqOf[jti]; ok {
			out = append(out, fmt.Sprintf("record %s is in the feed twice, as events %d and %d", jti, first, seq))
			continue
		}
		seqOf[jti] = seq
	}
	liftOf := map[string]string{}
	for _, id := range slices.Sorted(maps.Keys(s.records)) {
		r := s.records[id]
		if r.Type != protocol.EventFlagLifted {
			continue
		}
		if first, ok := liftOf[r.Ref]; ok {
			out = append(out, fmt.Sprintf("flag %s has two lift records, %s and %s", r.Ref, first, id))
			continue
		}
		liftOf[r.Ref] = id
	}
	accepted := map[uint64]string{} // log index → the submission it records
	for _, key := range slices.Sorted(maps.Keys(s.submissions)) {
		sub := s.submissions[key]
		if other, ok := accepted[sub.LogIndex]; ok {
			out = append(out, fmt.Sprintf("submissions %q and %q both name log entry %d", other, key, sub.LogIndex))
		}
		accepted[sub.LogIndex] = key
	}
	for _, e := range s.entries {
		if (e.Action != "flag-placed" && e.Action != "flag-lifted") || e.Result != "ok" {
			continue
		}
		key, ok := accepted[e.Index]
		member, _, _ := strings.Cut(key, "\x00")
		if !ok || member != e.Member || s.submissions[key].Action != e.Action {
			out = append(out, fmt.Sprintf("log entry %d records a %s by %s that is not the entry of its submission: a submission accepted twice, or none", e.Index, e.Action, e.Member))
		}
	}
	return out
}

func (s *crashStore) unansweredHappened(writes []*crashWrite) int {
	n := 0
	for _, w := range writes {
		if !w.acked && s.happened[w] {
			n++
		}
	}
	return n
}

// checkLog checks the exchange log itself: entries in place, times never
// going backwards, and every checkpoint fetched (and the final one kept in
// the store) the root of the entries up to its size.
func checkLog(t *testing.T, st *store.Store, cps *checkpoints, final *protocol.Checkpoint) {
	t.Helper()
	lines, err := st.LogEntries(0, final.Size)
	if err != nil {
		t.Fatal(err)
	}
	want := map[uint64]*protocol.Checkpoint{}
	for _, c := range cps.all() {
		want[c.Size] = c
	}
	var front protocol.Frontier
	var last time.Time
	for i, l := range lines {
		e, err := protocol.ParseLogEntry(l)
		if err != nil || e.Index != uint64(i) || e.Time.Before(last) {
			t.Fatalf("log entry %d: %q (%v), want index %d at or after %s", i, l, err, i, last)
		}
		last = e.Time
		front.Append(l)
		if c, ok := want[front.Size]; ok && front.Root() != c.Root {
			t.Errorf("the first %d entries do not hash to the root of checkpoint %s", c.Size, c)
		}
	}
	if front.Root() != final.Root {
		t.Errorf("the entries do not hash to the final checkpoint %s", final)
	}
	note, size, err := st.Checkpoint()
	if err != nil {
		t.Fatal(err)
	}
	kept, err := protocol.OpenCheckpoint(note, cps.key)
	if err != nil || kept.Size != size || size < final.Size {
		t.Fatalf("the store's latest checkpoint %q (%v) is not a verified one of size %d or more", note, err, final.Size)
	}
	root, err := st.TreeHash(kept.Size)
	if err != nil || root != kept.Root {
		t.Errorf("the store's latest checkpoint %s does not match its tree (%v)", kept, err)
	}
}

// checkWrites checks every write against the store: acknowledged ones are
// there, with their log entries; unanswered ones happened completely or
// not at all; nothing exists twice.
func checkWrites(t *testing.T, st *store.Store, s *crashStore, writes []*crashWrite, checks []crashCheck) {
	t.Helper()
	entry := func(i uint64) *protocol.LogEntry {
		if i >= uint64(len(s.entries)) {
			return nil
		}
		return s.entries[i]
	}
	// Which flags were lifted, by a lift acknowledged or applied.
	lifted := map[string]*crashWrite{}
	tokenOfFlag := map[string]string{}
	for _, w := range writes {
		sub, err := st.Submission(w.member, w.jti)
		switch {
		case errors.Is(err, store.ErrNotFound):
			if w.acked {
				t.Errorf("acknowledged %s %s of %s is not in the store", w.kind, w.jti, w.member)
			}
			// Not applied: nothing of it either.
			if f, err := st.FlagByToken(w.token); w.kind == "place" && !errors.Is(err, store.ErrNotFound) {
				t.Errorf("placement %s of %s was not applied, but its token has flag %+v (%v)", w.jti, w.member, f, err)
			}
			continue
		case err != nil:
			t.Fatal(err)
		}
		if !w.acked {
			s.happened[w] = true
		}
		if w.acked && (sub.LogIndex != w.logIndex || sub.Record != w.record || sub.Flag != w.flag) {
			t.Errorf("%s %s of %s: stored as log entry %d, record %s, flag %s; the answer said %d, %s, %s",
				w.kind, w.jti, w.member, sub.LogIndex, sub.Record, sub.Flag, w.logIndex, w.record, w.flag)
		}
		wantAction := map[string]protocol.LogAction{"place": protocol.LogFlagPlaced, "lift": protocol.LogFlagLifted}[w.kind]
		if e := entry(sub.LogIndex); e == nil || e.Member != w.member || e.Action != wantAction || e.Result != "ok" {
			t.Errorf("%s %s of %s: log entry %d is %+v, want %s by %s", w.kind, w.jti, w.member, sub.LogIndex, e, wantAction, w.member)
		}
		if _, ok := s.flags[sub.Flag]; !ok {
			t.Errorf("%s %s of %s: its flag %s is not in the store", w.kind, w.jti, w.member, sub.Flag)
		}
		if prev, ok := tokenOfFlag[sub.Flag]; ok && w.kind == "place" {
			t.Errorf("flag %s placed twice, for tokens %s and %s", sub.Flag, prev, w.token)
		}
		if w.kind == "place" {
			tokenOfFlag[sub.Flag] = w.token
		} else {
			lifted[sub.Flag] = w
		}
		w.flag = sub.Flag
	}
	// Every flag in the store is one the workers placed, once per token,
	// whole: an active one with its subject, index, record and consent; a
	// lifted one with only its lift record, its consent and placement gone.
	flagOfToken := map[string]string{}
	for id, f := range s.flags {
		tok, ok := tokenOfFlag[id]
		if !ok {
			t.Errorf("flag %s (%s) is in the store, but no submission placed it", id, f.Status)
			continue
		}
		if other, ok := flagOfToken[tok]; ok {
			t.Errorf("token %s has two flags, %s and %s", tok, other, id)
		}
		flagOfToken[tok] = id
		_, consentErr := st.Consent(id)
		byToken, tokenErr := st.FlagByToken(tok)
		switch lift := lifted[id]; {
		case lift == nil:
			if f.Status != api.FlagActive || f.Subject != tok || len(f.Records) != 1 || s.records[f.Records[0]] == nil ||
				consentErr != nil || tokenErr != nil || byToken.ID != id {
				t.Errorf("active flag %s is not whole: %+v (consent: %v, by token: %v)", id, f, consentErr, tokenErr)
			}
		default:
			if f.Status != api.FlagLifted || f.Subject != "" || len(f.Records) != 1 || s.records[f.Records[0]] == nil ||
				s.records[f.Records[0]].Type != protocol.EventFlagLifted || !errors.Is(consentErr, store.ErrNotFound) || !errors.Is(tokenErr, store.ErrNotFound) {
				t.Errorf("lifted flag %s is not wholly lifted: %+v (consent: %v, by token: %v)", id, f, consentErr, tokenErr)
			}
		}
	}
	// Each record once, and only the records of what the workers did: an
	// active flag's placement, a lift, and the receivers' verifications.
	placements := map[string]int{}
	for id, r := range s.records {
		switch r.Type {
		case protocol.EventFlagPlaced:
			placements[strings.Join(r.Subjects, ",")]++
			if f := s.flags[r.Ref]; f == nil || f.Status != api.FlagActive {
				t.Errorf("placement record %s of flag %s is kept, but the flag is not active", id, r.Ref)
			}
		case protocol.EventFlagLifted:
			if lifted[r.Ref] == nil {
				t.Errorf("lift record %s of flag %s, which no submission lifted", id, r.Ref)
			}
		case protocol.EventVerification:
		default:
			t.Errorf("record %s is a %s, which nothing here makes", id, r.Type.Short())
		}
	}
	for tok, n := range placements {
		if n != 1 {
			t.Errorf("token %s has %d placement records, want 1", tok, n)
		}
	}
	for _, c := range checks {
		got, err := st.Check(c.id)
		if err != nil || got.Member != c.member || got.Tokens != c.tokens {
			t.Errorf("acknowledged check %s of %s: stored %+v (%v)", c.id, c.member, got, err)
		}
		if e := entry(c.logIndex); e == nil || e.Member != c.member || e.Action != "check" || e.Result != "ok" {
			t.Errorf("acknowledged check %s of %s: log entry %d is %+v, want a check", c.id, c.member, c.logIndex, e)
		}
	}
}

// checkDeliveries checks what the receivers verified against the store and
// the writes, and returns how many deliveries they verified and how many of
// those were repeats.
func checkDeliveries(t *testing.T, st *store.Store, s *crashStore, receivers []*crashReceiver, writes []*crashWrite) (deliveries, repeats int) {
	t.Helper()
	// Delivery entries in the log, by member and event sequence number.
	logged := map[string]map[uint64]int{}
	for _, e := range s.entries {
		if e.Action != "delivery" || e.Result != "ok" {
			continue
		}
		seq, _ := e.Attr("event")
		n, err := strconv.ParseUint(seq, 10, 64)
		if err != nil {
			t.Errorf("delivery entry %d names event %q", e.Index, seq)
			continue
		}
		if logged[e.Member] == nil {
			logged[e.Member] = map[uint64]int{}
		}
		logged[e.Member][n]++
	}
	for _, r := range receivers {
		got := r.received()
		r.mu.Lock()
		invalid := slices.Clone(r.invalid)
		r.mu.Unlock()
		if len(invalid) > 0 {
			t.Errorf("receiver of %s refused deliveries: %q", r.member, invalid)
		}
		deliveries += len(got)
		bySeq := map[uint64]crashDelivery{}
		hooks := map[string]string{} // record → webhook-id
		for _, d := range got {
			if h, ok := hooks[d.rec.ID]; ok {
				repeats++
				if h != d.hook {
					t.Errorf("receiver of %s got record %s under webhook-ids %s and %s", r.member, d.rec.ID, h, d.hook)
				}
				continue
			}
			hooks[d.rec.ID] = d.hook
			if jti := s.events[d.seq]; jti != d.rec.ID {
				t.Errorf("receiver of %s got record %s as event %d, which is %q", r.member, d.rec.ID, d.seq, jti)
			}
			if d.hook != d.rec.ID+"_"+r.member {
				t.Errorf("receiver of %s got record %s under webhook-id %s", r.member, d.rec.ID, d.hook)
			}
			bySeq[d.seq] = d
		}
		// Every acknowledged event: each lift, and each placement unless its
		// flag was lifted (the hub then erases the placement and may skip
		// its delivery; the lift tells the member).
		for _, w := range writes {
			if !w.acked {
				continue
			}
			if _, ok := hooks[w.record]; !ok && (w.kind == "lift" || s.records[w.record] != nil) {
				t.Errorf("receiver of %s never got the acknowledged %s of flag %s (record %s)", r.member, w.kind, w.flag, w.record)
			}
		}
		// Everything the member's feed holds, acknowledged or not.
		m, err := st.Member(t.Context(), r.member)
		if err != nil {
			t.Fatal(err)
		}
		page, err := st.Events(m, 0, 1<<20)
		if err != nil {
			t.Fatal(err)
		}
		for _, rec := range page.Records {
			if _, ok := hooks[rec.ID]; !ok {
				t.Errorf("receiver of %s never got event %d (%s) of its feed", r.member, rec.Seq, rec.Type.Short())
			}
		}
		// The log records each delivery once, and only deliveries that
		// arrived; each arrived one whose record still exists is recorded.
		for seq, n := range logged[r.member] {
			if _, ok := bySeq[seq]; !ok || n != 1 {
				t.Errorf("receiver of %s: the log records %d deliveries of event %d; it verified %v", r.member, n, seq, ok)
			}
		}
		for seq, d := range bySeq {
			if s.records[d.rec.ID] != nil && logged[r.member][seq] != 1 {
				t.Errorf("receiver of %s got event %d, which the log does not record as delivered", r.member, seq)
			}
		}
		// Sparr-Previous-Sequence names the member's previous event: the
		// latest before it that was queued for the member (delivered, or
		// erased before it could be).
		seqs := slices.Sorted(func(yield func(uint64) bool) {
			for seq := range bySeq {
				if !yield(seq) {
					return
				}
			}
		})
		if len(seqs) == 0 {
			t.Errorf("receiver of %s got nothing", r.member)
			continue
		}
		first := seqs[0] // its verification
		for _, seq := range seqs {
			want := uint64(0)
			for p := seq - 1; p >= first && p > 0; p-- {
				jti, ok := s.events[p]
				if !ok {
					continue
				}
				rec := s.records[jti]
				if _, delivered := bySeq[p]; delivered || rec == nil || members.Entitled(m, rec.Audience, rec.Type) {
					want = p
					break
				}
			}
			if got := bySeq[seq].prev; got != want {
				t.Errorf("receiver of %s: event %d says the previous was %d, want %d", r.member, seq, got, want)
			}
		}
	}
	return deliveries, repeats
}

// TestCrashDuplicates: the crash test's check that nothing exists twice
// finds each kind of duplicate, and nothing in a store without one.
func TestCrashDuplicates(t *testing.T) {
	entry := func(i uint64, member string, action protocol.LogAction) *protocol.LogEntry {
		return &protocol.LogEntry{Index: i, Member: member, Action: action, Result: "ok"}
	}
	clean := func() *crashStore {
		return &crashStore{
			events: map[uint64]string{1: "rec-place", 2: "rec-lift"},
			records: map[string]*state.Record{
				"rec-lift": {ID: "rec-lift", Type: protocol.EventFlagLifted, Ref: "flag-1"},
			},
			entries: []*protocol.LogEntry{entry(0, "bank-a", "flag-placed"), entry(1, "bank-a", "flag-lifted"), entry(2, "bank-b", "check")},
			submissions: map[string]*state.Submission{
				"bank-a\x00jti-1": {Action: protocol.LogFlagPlaced, LogIndex: 0},
				"bank-a\x00jti-2": {Action: protocol.LogFlagLifted, LogIndex: 1},
			},
		}
	}
	if got := clean().duplicates(); len(got) != 0 {
		t.Errorf("got %q in a store without duplicates, want nothing", got)
	}
	for _, tc := range []struct {
		name  string
		spoil func(s *crashStore)
		want  string
	}{
		{"a record at two sequence numbers", func(s *crashStore) { s.events[3] = "rec-lift" }, "record rec-lift is in the feed twice, as events 2 and 3"},
		{"two lifts of a flag", func(s *crashStore) {
			s.records["rec-lift-2"] = &state.Record{ID: "rec-lift-2", Type: protocol.EventFlagLifted, Ref: "flag-1"}
		}, "flag flag-1 has two lift records"},
		{"a submission accepted twice", func(s *crashStore) {
			s.entries = append(s.entries, entry(3, "bank-a", "flag-placed"))
		}, "log entry 3 records a flag-placed by bank-a"},
		{"two submissions naming one entry", func(s *crashStore) {
			s.submissions["bank-a\x00jti-3"] = &state.Submission{Action: protocol.LogFlagPlaced, LogIndex: 0}
		}, "both name log entry 0"},
	} {
		s := clean()
		tc.spoil(s)
		got := s.duplicates()
		if len(got) != 1 || !strings.Contains(got[0], tc.want) {
			t.Errorf("%s: got %q, want one finding saying %q", tc.name, got, tc.want)
		}
	}
}
