package main

import (
	"context"
	"errors"
	"fmt"
	mathrand "math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/sparr-dev/sparr/client"
	"github.com/sparr-dev/sparr/internal/clustertest"
	"github.com/sparr-dev/sparr/protocol"
	"github.com/sparr-dev/sparr/protocol/api"
	"github.com/sparr-dev/sparr/server/store"
)

// The shape of the cluster tests' load.
const (
	clusterWorkers   = 6   // goroutines placing, lifting, checking and tokenizing, three per bank
	clusterTokens    = 150 // fresh identifiers each worker may place a flag on
	clusterReceivers = 3
)

// clusterKills is how often TestClusterLeaderKilledUnderLoad kills the
// leader: SPARR_CLUSTER_KILLS if set, otherwise 3 in a -race build (CI's
// short version) and 10 in another (go test ./cmd/sparr -run Cluster).
func clusterKills(t *testing.T) int {
	t.Helper()
	if s := os.Getenv("SPARR_CLUSTER_KILLS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 {
			t.Fatalf("SPARR_CLUSTER_KILLS=%q: want a number", s)
		}
		return n
	}
	if raceBuild {
		return 3
	}
	return 10
}

// clusterSeed returns the seed of the cluster tests' random choices:
// SPARR_CLUSTER_SEED if set, to replay a run, or a new one. It logs it.
func clusterSeed(t *testing.T) uint64 {
	t.Helper()
	if s := os.Getenv("SPARR_CLUSTER_SEED"); s != "" {
		seed, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("SPARR_CLUSTER_SEED=%q: want a number", s)
		}
		t.Logf("seed %d, from SPARR_CLUSTER_SEED", seed)
		return seed
	}
	seed := mathrand.Uint64()
	t.Logf("seed %d; SPARR_CLUSTER_SEED=%d makes the same random choices again", seed, seed)
	return seed
}

// TestClusterLeaderKilledUnderLoad runs three nodes under load from several
// members, through every node, and kills the leader with SIGKILL again and
// again, starting it again each time, while the members' receivers stay up
// and a regulator fetches checkpoints from any node. Afterwards:
//
//   - every acknowledged placement and lift is on every node, with its log
//     entry where its answer said, and nothing exists twice;
//   - every node's store is the same, bucket by bucket, byte for byte;
//   - every checkpoint served is consistent with the final log (consistency
//     proofs through the SDK), and the log hashes to each of them;
//   - every acknowledged event reached every receiver, verified;
//   - the history of placements, lifts and checks, with the times each was
//     called and answered, is linearizable per token (porcupine).
func TestClusterLeaderKilledUnderLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary, runs three nodes and kills their leader repeatedly")
	}
	bin := buildSparr(t)
	seed := clusterSeed(t)
	kills := clusterKills(t)
	rng := mathrand.New(mathrand.NewPCG(seed, 0))
	began := time.Now()
	c := newTestCluster(t, bin, 3)
	c.startAll(t)
	op := c.operator(t)
	banks := []*crashMember{
		c.addMember(t, op, 0, "bank-a", api.RoleFlag, api.RoleCheck),
		c.addMember(t, op, 1, "bank-b", api.RoleFlag, api.RoleCheck),
	}
	reg := c.addMember(t, op, 2, "finansinspektionen", api.RoleRegulator)
	var receivers []*crashReceiver
	for i := range clusterReceivers {
		r := newCrashReceiver(t, c.keys)
		r.register(t, c.addMember(t, op, i, fmt.Sprintf("bank-r%d", i), api.RoleCheck))
		receivers = append(receivers, r)
	}
	for _, r := range receivers {
		r.waitVerified(t)
	}
	logKey, err := protocol.NewLogVerifier(c.keys.LogVerifier)
	if err != nil {
		t.Fatal(err)
	}

	rec := clustertest.NewRecorder()
	workers := make([]*clusterWorker, clusterWorkers)
	// Each bank's workers check each other's tokens too, through other
	// nodes. (Only a bank's own: a check of another bank's flag sends that
	// bank an access notice, which a lift erases, and the deliveries'
	// check cannot tell such an erased notice from an erased placement.)
	pools := map[string][]protocol.Token{}
	for i := range workers {
		bank := banks[i%len(banks)]
		w := &clusterWorker{t: t, n: i, m: c.member(t, i, bank.id, bank.key, clusterRetry), rec: rec,
			active: map[string]protocol.Token{}, rng: mathrand.New(mathrand.NewPCG(seed, uint64(i)+1))}
		w.fresh = w.m.tokenize(t, clusterTokens, fmt.Sprintf("cluster-w%d", i))
		pools[bank.id] = append(pools[bank.id], w.fresh...)
		workers[i] = w
	}
	for _, w := range workers {
		w.pool = pools[w.m.id]
	}

	stop := make(chan struct{})
	var wg sync.WaitGroup
	for _, w := range workers {
		wg.Go(func() { w.run(stop) })
	}
	cps := &checkpoints{t: t, key: logKey, m: reg, bySize: map[uint64]*protocol.Checkpoint{}, runOf: map[uint64]int{}}
	pollStop := make(chan struct{})
	var polling sync.WaitGroup
	polling.Go(func() { pollCheckpoints(cps, pollStop) })

	var killed []string
	for k := range kills {
		time.Sleep(time.Duration(rng.IntN(1000)+300) * time.Millisecond)
		leader := c.waitLeader(t, nil)
		before, _ := c.status(leader)
		leader.kill(t)
		at := time.Now()
		cps.crashed()
		killed = append(killed, leader.id)
		next := c.waitLeader(t, []*clusterNode{leader})
		after, _ := c.status(next)
		t.Logf("kill %d: leader %s (term %d) killed; %s leads (term %d) %v later", k+1, leader.id, before.Term, next.id, after.Term, time.Since(at).Round(time.Millisecond))
		time.Sleep(time.Duration(rng.IntN(300)) * time.Millisecond)
		leader.start(t, c.bin)
	}
	time.Sleep(500 * time.Millisecond)
	close(stop)
	wg.Wait()

	drainEndpoints(t, op, receivers)
	c.waitApplied(t)
	time.Sleep(1200 * time.Millisecond) // one checkpoint interval and a bit
	final := fetchCheckpoint(cps)
	close(pollStop)
	polling.Wait()
	if final == nil {
		t.Fatal("no final checkpoint")
	}
	for _, cp := range cps.all() {
		p := consistencyProof(t, reg, cp.Size, final.Size)
		if err := tlog.CheckTree(p, int64(final.Size), final.Root, int64(cp.Size), cp.Root); err != nil {
			t.Errorf("checkpoint %s is not consistent with the final %s: %v", cp, final, err)
		}
	}

	// Linearizability of what the members saw.
	ops := rec.Operations()
	result := checkLinearizable(t, ops)

	c.stopAll(t)
	stores := c.openStores(t)
	keys := c.compareStores(t, stores)
	var writes []*crashWrite
	var checks []crashCheck
	lost, batches := 0, 0
	for _, w := range workers {
		writes = append(writes, w.writes...)
		checks = append(checks, w.checks...)
		lost += w.lost
		batches += w.batches
	}
	var st0 *crashStore
	for i, st := range stores {
		s := readCrashStore(t, st)
		checkLog(t, st, cps, final)
		checkWrites(t, st, s, writes, checks)
		for _, d := range s.duplicates() {
			t.Errorf("node %s: %s", c.nodes[i].id, d)
		}
		if i == 0 {
			st0 = s
		}
	}
	deliveries, repeats := checkDeliveries(t, stores[0], st0, receivers, writes)

	acked := 0
	for _, w := range writes {
		if w.acked {
			acked++
		}
	}
	t.Logf("%d leaders killed (SIGKILL), %v, in %v", kills, killed, time.Since(began).Round(time.Millisecond))
	t.Logf("acknowledged: %d of %d writes, %d checks, %d token batches; %d operations left without an answer",
		acked, len(writes), len(checks), batches, lost)
	t.Logf("unanswered writes that happened: %d", st0.unansweredHappened(writes))
	t.Logf("deliveries: %d verified by %d receivers, %d of them repeats under the same webhook-id", deliveries, len(receivers), repeats)
	t.Logf("log: %d entries; %d checkpoints served across the kills, each consistent with the final one", st0.logSize, len(cps.all()))
	t.Logf("stores: %d keys, equal on all %d nodes", keys, len(stores))
	t.Logf("porcupine: %s over %d operations", result, len(ops))
}

// checkLinearizable checks a history with porcupine against the per-token
// flag model, and on failure writes the visualization beside the test's
// files (and to SPARR_CLUSTER_VIS, if set, to keep it).
func checkLinearizable(t *testing.T, ops []porcupine.Operation) porcupine.CheckResult {
	t.Helper()
	path := os.Getenv("SPARR_CLUSTER_VIS")
	if path == "" {
		path = filepath.Join(t.TempDir(), "linearizability.html")
	}
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	res, err := clustertest.CheckFlags(ops, time.Minute, f)
	if err != nil {
		t.Errorf("porcupine visualization: %v", err)
	}
	switch res {
	case porcupine.Ok:
		os.Remove(path)
	case porcupine.Illegal:
		t.Errorf("the history of %d operations is not linearizable; porcupine's visualization: %s", len(ops), path)
	default:
		t.Logf("porcupine could not decide within a minute (%s); visualization: %s", res, path)
	}
	return res
}

// pollCheckpoints fetches the latest checkpoint from any node every 200
// ms until stop.
func pollCheckpoints(c *checkpoints, stop chan struct{}) {
	for {
		fetchCheckpoint(c)
		select {
		case <-stop:
			return
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// fetchCheckpoint fetches, verifies and keeps the latest checkpoint, if a
// node answers: in a cluster a node may be down or without a leader.
func fetchCheckpoint(c *checkpoints) *protocol.Checkpoint {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	body, err := c.m.c.Log().Checkpoint(ctx)
	if err != nil {
		return nil
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
	return cp
}

// A clusterWorker places flags on fresh tokens, lifts flags it placed,
// checks tokens (its own and others'), and has identifiers tokenized,
// through a member's SDK client over every node, until stopped. It records
// every placement, lift and check in the history.
type clusterWorker struct {
	t   *testing.T
	n   int
	m   *crashMember
	rng *mathrand.Rand
	rec *clustertest.Recorder

	fresh  []protocol.Token          // never submitted
	active map[string]protocol.Token // acknowledged flags, not lifted, by flag id
	lifted []protocol.Token
	pool   []protocol.Token // the tokens of every worker of the bank, for checks
	writes []*crashWrite
	checks []crashCheck
	// lost counts operations left without an answer; batches the token
	// batches evaluated.
	lost, batches int
}

func (w *clusterWorker) run(stop chan struct{}) {
	for {
		select {
		case <-stop:
			return
		case <-time.After(time.Duration(w.rng.IntN(15)) * time.Millisecond):
		}
		switch r := w.rng.IntN(20); {
		case r < 8 && len(w.fresh) > 0:
			w.place()
		case r < 12 && len(w.active) > 0:
			w.lift()
		case r < 19:
			w.check()
		default:
			w.tokenize()
		}
	}
}

// refused reports whether err is the hub's answer that it did not act:
// a 4xx problem other than 408 and 429.
func refused(err error) bool {
	var p *client.Problem
	return errors.As(err, &p) && p.StatusCode() >= 400 && p.StatusCode() < 500 &&
		p.StatusCode() != http.StatusRequestTimeout && p.StatusCode() != http.StatusTooManyRequests
}

func (w *clusterWorker) ctx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), time.Minute)
}

func (w *clusterWorker) place() {
	tok := w.fresh[0]
	w.fresh = w.fresh[1:]
	ctx, cancel := w.ctx()
	defer cancel()
	sub, err := w.m.c.Sign(ctx, protocol.PlaceFlag{Subject: tok, Kind: protocol.FlagKindStandard, Consent: crashConsent(w.m.id, tok)})
	if err != nil {
		w.t.Error(err)
		return
	}
	wr := &crashWrite{member: w.m.id, kind: "place", jti: sub.ID, token: tok.String()}
	w.writes = append(w.writes, wr)
	in := clustertest.FlagInput{Token: tok.String(), Op: clustertest.Place}
	call := w.rec.Now()
	res, err := w.m.c.Send(ctx, sub)
	switch {
	case err == nil:
		w.rec.Add(w.n, in, call, clustertest.FlagOutput{FlagID: res.Flag.ID, Existing: res.Existing})
		if res.Existing || res.Record == nil || res.Flag.Status != api.FlagActive {
			w.t.Errorf("worker %d: placing a flag on a fresh token: got existing %v, flag %+v", w.n, res.Existing, res.Flag)
			return
		}
		wr.acked, wr.flag, wr.record, wr.logIndex = true, res.Flag.ID, res.Record.ID, res.LogIndex
		w.active[res.Flag.ID] = tok
	case refused(err):
		w.t.Errorf("worker %d: placing a flag on a fresh token: %v", w.n, err)
	default:
		w.rec.Lost(w.n, in, call)
		w.lost++
	}
}

func (w *clusterWorker) lift() {
	ids := make([]string, 0, len(w.active))
	for id := range w.active {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	id := ids[w.rng.IntN(len(ids))]
	tok := w.active[id]
	delete(w.active, id)
	ctx, cancel := w.ctx()
	defer cancel()
	sub, err := w.m.c.Sign(ctx, protocol.LiftFlag{FlagID: id})
	if err != nil {
		w.t.Error(err)
		return
	}
	wr := &crashWrite{member: w.m.id, kind: "lift", jti: sub.ID, token: tok.String(), flag: id}
	w.writes = append(w.writes, wr)
	in := clustertest.FlagInput{Token: tok.String(), Op: clustertest.Lift, FlagID: id}
	call := w.rec.Now()
	res, err := w.m.c.Send(ctx, sub)
	switch {
	case err == nil:
		w.rec.Add(w.n, in, call, clustertest.FlagOutput{Lifted: true})
		if res.Record == nil || res.Flag == nil || res.Flag.ID != id || res.Flag.Status != api.FlagLifted {
			w.t.Errorf("worker %d: lifting flag %s: got %+v", w.n, id, res.Flag)
			return
		}
		wr.acked, wr.record, wr.logIndex = true, res.Record.ID, res.LogIndex
		w.lifted = append(w.lifted, tok)
	case refused(err):
		w.rec.Add(w.n, in, call, clustertest.FlagOutput{})
		w.t.Errorf("worker %d: lifting acknowledged flag %s: %v", w.n, id, err)
	default:
		w.rec.Lost(w.n, in, call)
		w.lost++
	}
}

// check checks one of the worker's tokens and two of any of its bank's
// workers'.
func (w *clusterWorker) check() {
	var own []protocol.Token
	own = append(own, w.lifted...)
	for _, id := range slices.Sorted(func(yield func(string) bool) {
		for id := range w.active {
			if !yield(id) {
				return
			}
		}
	}) {
		own = append(own, w.active[id])
	}
	if len(w.fresh) > 0 {
		own = append(own, w.fresh[len(w.fresh)-1])
	}
	var toks []protocol.Token
	if len(own) > 0 {
		toks = append(toks, own[w.rng.IntN(len(own))])
	}
	for range 2 {
		if tok := w.pool[w.rng.IntN(len(w.pool))]; !slices.Contains(toks, tok) {
			toks = append(toks, tok)
		}
	}
	ctx, cancel := w.ctx()
	defer cancel()
	call := w.rec.Now()
	res, err := w.m.c.Check(ctx, api.PurposeCreditApplication, toks...)
	if err != nil {
		if refused(err) {
			w.t.Errorf("worker %d: check: %v", w.n, err)
		}
		w.lost++
		return
	}
	for _, r := range res.Results {
		out := clustertest.FlagOutput{}
		if r.Flag != nil {
			out.FlagID = r.Flag.ID
		}
		w.rec.Add(w.n, clustertest.FlagInput{Token: r.Token.String(), Op: clustertest.Check}, call, out)
	}
	w.checks = append(w.checks, crashCheck{member: w.m.id, id: res.ID, logIndex: res.LogIndex, tokens: len(toks)})
}

// tokenize has ten new identifiers evaluated.
func (w *clusterWorker) tokenize() {
	ctx, cancel := w.ctx()
	defer cancel()
	values := make([]string, 10)
	for i := range values {
		values[i] = fmt.Sprintf("cluster-w%d-batch%d-%d@example.se", w.n, w.batches, i)
	}
	if _, err := w.m.c.Tokenize(ctx, protocol.TypeEmail, values...); err != nil {
		if refused(err) {
			w.t.Errorf("worker %d: tokenize: %v", w.n, err)
		}
		w.lost++
		return
	}
	w.batches++
}

// TestClusterPartition cuts the leader off from the other two nodes: the
// writes sent to it meanwhile are never acknowledged, the two others
// elect a leader and acknowledge theirs; after healing, the old leader
// takes the majority's log, nothing acknowledged is lost, nothing the
// minority was sent happened, and every node's store is the same.
func TestClusterPartition(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and runs three nodes")
	}
	bin := buildSparr(t)
	c := newTestCluster(t, bin, 3)
	old := c.startAll(t)
	op := c.operator(t)
	bank := c.addMember(t, op, 0, "bank-a", api.RoleFlag, api.RoleCheck)
	toks := bank.tokenize(t, 40, "partition")
	ctx := context.Background()
	var acked []*crashWrite
	place := func(m *crashMember, tok protocol.Token) (*crashWrite, error) {
		sub, err := m.c.Sign(ctx, protocol.PlaceFlag{Subject: tok, Kind: protocol.FlagKindStandard, Consent: crashConsent(m.id, tok)})
		if err != nil {
			t.Fatal(err)
		}
		wr := &crashWrite{member: m.id, kind: "place", jti: sub.ID, token: tok.String()}
		res, err := m.c.Send(ctx, sub)
		if err == nil {
			wr.acked, wr.flag, wr.record, wr.logIndex = true, res.Flag.ID, res.Record.ID, res.LogIndex
		}
		return wr, err
	}
	for _, tok := range toks[:5] {
		wr, err := place(bank, tok)
		if err != nil {
			t.Fatalf("placing before the partition: %v", err)
		}
		acked = append(acked, wr)
	}

	// The leader alone on one side, its links dropping every byte.
	c.net.Isolate(old.id, clustertest.Blackhole)
	// A client of the old leader alone, sending each request once.
	mc, err := client.New(client.Config{HubURL: old.url, MemberID: bank.id, Key: bank.key, HTTPClient: c.hc,
		Retry: client.Retry{Attempts: 1, AttemptTimeout: 10 * time.Second}})
	if err != nil {
		t.Fatal(err)
	}
	minority := &crashMember{id: bank.id, key: bank.key, hub: old.url, hc: c.hc, c: mc}
	var unacked []*crashWrite
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, tok := range toks[5:10] {
		wg.Go(func() {
			wr, err := place(minority, tok)
			mu.Lock()
			defer mu.Unlock()
			if err == nil {
				t.Errorf("the isolated old leader %s acknowledged placement %s", old.id, wr.jti)
			}
			unacked = append(unacked, wr)
		})
	}
	newLeader := c.waitLeader(t, []*clusterNode{old})
	var others []string
	for _, n := range c.nodes {
		if n != old {
			others = append(others, n.url)
		}
	}
	majority, err := client.New(client.Config{HubURL: newLeader.url, HubURLs: others, MemberID: bank.id, Key: bank.key, HTTPClient: c.hc, Retry: clusterRetry})
	if err != nil {
		t.Fatal(err)
	}
	mm := &crashMember{id: bank.id, key: bank.key, hub: newLeader.url, hc: c.hc, c: majority}
	for _, tok := range toks[10:20] {
		wr, err := place(mm, tok)
		if err != nil {
			t.Fatalf("the majority (leader %s) did not acknowledge a placement: %v", newLeader.id, err)
		}
		acked = append(acked, wr)
	}
	wg.Wait()

	c.net.HealAll()
	c.waitApplied(t)
	// Every acknowledged flag is seen through the old leader.
	via, err := client.New(client.Config{HubURL: old.url, MemberID: bank.id, Key: bank.key, HTTPClient: c.hc, Retry: clusterRetry})
	if err != nil {
		t.Fatal(err)
	}
	for _, wr := range acked {
		tok, _ := protocol.ParseToken(wr.token)
		res, err := via.Check(ctx, api.PurposeOther, tok)
		if err != nil {
			t.Fatal(err)
		}
		if f := res.Results[0].Flag; f == nil || f.ID != wr.flag {
			t.Errorf("after healing, %s answers flag %+v for an acknowledged placement of flag %s", old.id, f, wr.flag)
		}
	}
	c.stopAll(t)
	stores := c.openStores(t)
	keys := c.compareStores(t, stores)
	for i, st := range stores {
		for _, wr := range acked {
			if sub, err := st.Submission(wr.member, wr.jti); err != nil || sub.Flag != wr.flag {
				t.Errorf("node %s: acknowledged placement %s: %+v, %v", c.nodes[i].id, wr.jti, sub, err)
			}
		}
		for _, wr := range unacked {
			if _, err := st.Submission(wr.member, wr.jti); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("node %s: placement %s sent only to the isolated node is stored (%v)", c.nodes[i].id, wr.jti, err)
			}
		}
	}
	t.Logf("leader %s isolated: %d writes sent to it, none acknowledged; leader %s elected by the majority, %d writes acknowledged; %d keys equal on every node after healing",
		old.id, len(unacked), newLeader.id, len(acked), keys)
}

// TestClusterPause stops the leader with SIGSTOP: the other two elect a
// leader and acknowledge writes meanwhile, sent through a client that
// still tries the paused node first; after SIGCONT the paused node
// catches up, and every node's store is the same.
func TestClusterPause(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and runs three nodes")
	}
	bin := buildSparr(t)
	c := newTestCluster(t, bin, 3)
	leader := c.startAll(t)
	op := c.operator(t)
	i := slices.Index(c.nodes, leader)
	bank := c.addMember(t, op, i, "bank-a", api.RoleFlag, api.RoleCheck)
	toks := bank.tokenize(t, 20, "pause")
	ctx := context.Background()
	retry := clusterRetry
	retry.AttemptTimeout = 2 * time.Second
	m := c.member(t, i, bank.id, bank.key, retry) // the paused node first

	leader.pause(t)
	newLeader := c.waitLeader(t, []*clusterNode{leader})
	var acked []*client.WriteResult
	for _, tok := range toks[:10] {
		res, err := m.c.PlaceFlag(ctx, client.PlaceFlagRequest{Subject: tok, Consent: crashConsent(m.id, tok)})
		if err != nil {
			t.Fatalf("placing while %s is paused: %v", leader.id, err)
		}
		acked = append(acked, res)
	}
	leader.resume(t)
	c.waitApplied(t)
	via, err := client.New(client.Config{HubURL: leader.url, MemberID: bank.id, Key: bank.key, HTTPClient: c.hc, Retry: clusterRetry})
	if err != nil {
		t.Fatal(err)
	}
	res, err := via.Check(ctx, api.PurposeOther, toks[:10]...)
	if err != nil {
		t.Fatal(err)
	}
	for k, r := range res.Results {
		if r.Flag == nil || r.Flag.ID != acked[k].Flag.ID {
			t.Errorf("after SIGCONT, %s answers flag %+v for acknowledged flag %s", leader.id, r.Flag, acked[k].Flag.ID)
		}
	}
	c.stopAll(t)
	stores := c.openStores(t)
	keys := c.compareStores(t, stores)
	for n, st := range stores {
		for _, a := range acked {
			if sub, err := st.Submission(bank.id, a.SubmissionID); err != nil || sub.Flag != a.Flag.ID {
				t.Errorf("node %s: acknowledged placement %s: %+v, %v", c.nodes[n].id, a.SubmissionID, sub, err)
			}
		}
	}
	t.Logf("leader %s paused: %s elected, %d writes acknowledged meanwhile; %d keys equal on every node after SIGCONT", leader.id, newLeader.id, len(acked), keys)
}
