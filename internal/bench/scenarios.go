package bench

import (
	"bytes"
	"context"
	crand "crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cloudflare/circl/oprf"
	bolt "go.etcd.io/bbolt"

	"github.com/sparr-dev/sparr/protocol"
	"github.com/sparr-dev/sparr/protocol/api"
)

// load keeps workers busy sending requests for d, and returns how many
// were sent ("n"), requests per second over the time the run took, and the
// latency percentiles. send makes one request; its error stops the run,
// unless it is errExhausted, which ends the worker's part of it.
func load(ctx context.Context, workers int, d time.Duration, send func(worker, i int) error) (map[string]float64, error) {
	var (
		mu    sync.Mutex
		lats  []time.Duration
		total atomic.Int64
		first atomic.Value
	)
	deadline := time.Now().Add(d)
	var wg sync.WaitGroup
	start := time.Now()
	for w := range workers {
		wg.Go(func() {
			var mine []time.Duration
			for i := 0; time.Now().Before(deadline) && ctx.Err() == nil; i++ {
				t := time.Now()
				if err := send(w, i); err != nil {
					if !errors.Is(err, errExhausted) {
						first.CompareAndSwap(nil, err)
					}
					break
				}
				mine = append(mine, time.Since(t))
				total.Add(1)
			}
			mu.Lock()
			lats = append(lats, mine...)
			mu.Unlock()
		})
	}
	wg.Wait()
	if err, _ := first.Load().(error); err != nil {
		return nil, err
	}
	elapsed := time.Since(start).Seconds()
	n := float64(total.Load())
	return map[string]float64{"n": n, "rps": n / elapsed, "p50": percentile(lats, 50), "p99": percentile(lats, 99)}, nil
}

// errExhausted, returned by a load's send, ends that worker's part of the
// run cleanly: what was prepared for the run is used up.
var errExhausted = errors.New("prepared requests used up")

// post sends a body to a baseline's server and drains the answer: the
// same work a request to the hub costs its client ([send]), without the
// hub.
func post(c *http.Client, url, contentType string, body []byte, want int) error {
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", contentType)
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != want {
		return fmt.Errorf("POST %s: %d %s", url, resp.StatusCode, b)
	}
	return nil
}

func keepAlive(n int) *http.Client {
	return &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: n, MaxIdleConns: 4 * n}}
}

// serveLocal serves h on a loopback port.
func serveLocal(h http.Handler) (string, func(), error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	srv := &http.Server{Handler: h}
	go srv.Serve(ln)
	return "http://" + ln.Addr().String(), func() { srv.Close() }, nil
}

// runCheck: authenticated checks of one token each against a hub where 1%
// of tokens are flagged; every check's log entry is durable before it is
// answered. The baseline decodes the same request, looks the token up in a
// map and answers, with no authentication and no log.
func runCheck(ctx context.Context, cfg *Config) ([]Row, error) {
	h, err := startHub(cfg)
	if err != nil {
		return nil, err
	}
	defer h.close()
	flagger, err := h.addMember("bank-flagger", api.RoleFlag)
	if err != nil {
		return nil, err
	}
	checker, err := h.addMember("bank-checker", api.RoleCheck)
	if err != nil {
		return nil, err
	}
	toks := make([]protocol.Token, 10_000)
	for i := range toks {
		toks[i] = randomToken(h.keys.Token.Epoch())
	}
	flagged := map[string]bool{}
	for _, tok := range toks[:len(toks)/100] {
		body, err := flagger.placeFlag(tok)
		if err != nil {
			return nil, err
		}
		if _, err := flagger.place(ctx, body); err != nil {
			return nil, err
		}
		flagged[tok.String()] = true
	}
	bodies := make([][]byte, len(toks))
	for i, tok := range toks {
		bodies[i], _ = json.Marshal(api.CheckRequest{Purpose: api.PurposeCreditApplication, Tokens: []string{tok.String()}})
	}
	baseURL, stop, err := serveLocal(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Purpose string   `json:"purpose"`
			Tokens  []string `json:"tokens"`
		}
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil || len(req.Tokens) != 1 {
			http.Error(w, "bad", http.StatusBadRequest)
			return
		}
		advice := "none"
		if flagged[req.Tokens[0]] { // read-only after setup
			advice = "verify"
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{"results": []map[string]string{{"token": req.Tokens[0], "advice": advice}}})
	}))
	if err != nil {
		return nil, err
	}
	defer stop()
	hubClient, baseClient := keepAlive(cfg.Concurrency), keepAlive(cfg.Concurrency)
	checks, err := checker.connect(hubClient)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(cfg.Progress, "   %d clients, %s a run, %d runs each\n", cfg.Concurrency, cfg.Duration, cfg.Runs)
	pick := func(w, i int) []byte { return bodies[(w*7919+i*104729)%len(bodies)] }
	sys, base, err := alternate(cfg.Runs,
		func() (map[string]float64, error) {
			return load(ctx, cfg.Concurrency, cfg.Duration, func(w, i int) error {
				_, err := send(ctx, checks, "/v1/check", "application/json", pick(w, i), http.StatusOK)
				return err
			})
		},
		func() (map[string]float64, error) {
			return load(ctx, cfg.Concurrency, cfg.Duration, func(w, i int) error {
				return post(baseClient, baseURL, "application/json", pick(w, i), http.StatusOK)
			})
		})
	if err != nil {
		return nil, err
	}
	const baseName = "bare net/http map lookup"
	c := fmt.Sprintf("C=%d", cfg.Concurrency)
	return []Row{
		row("checks/s, "+c, "req/s", true, sys, base, "rps", baseName),
		row("check p50, "+c, "ms", false, sys, base, "p50", baseName),
		row("check p99, "+c, "ms", false, sys, base, "p99", baseName),
	}, nil
}

// runPlace: durable placements per second from concurrent members, with
// each number of subscribed members (10 and 100 by default; each placement
// queues a delivery per member, which the dispatcher sends meanwhile). The
// baseline commits, with the same group commit from as many goroutines,
// values of the size one placement writes.
func runPlace(ctx context.Context, cfg *Config) ([]Row, error) {
	var rows []Row
	for _, n := range cfg.Subscribers {
		r, err := placeWith(ctx, cfg, n)
		if err != nil {
			return nil, err
		}
		rows = append(rows, r...)
	}
	return rows, nil
}

// placeWorkers is how many members' clients place at once.
const placeWorkers = 16

func placeWith(ctx context.Context, cfg *Config, subscribers int) ([]Row, error) {
	bytesPer, err := quietPlacementBytes(cfg, subscribers)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(cfg.Progress, "   %d subscribed members: one placement writes %d bytes\n", subscribers, bytesPer)
	// Each system run places on fresh tokens (a placement on a token
	// already flagged answers with the existing flag, which is cheaper),
	// from submissions signed before the clock starts: the first run
	// prepares a generous guess, each later one twice the most a run has
	// placed. A run that uses up what it prepared ends there; its rate is
	// over the time it ran.
	prepare := int(3000 * cfg.Duration.Seconds())
	short := 0
	system := func() (map[string]float64, error) {
		m, err := placeRun(ctx, cfg, subscribers, prepare)
		if err != nil {
			return nil, err
		}
		placed := int(m["n"])
		if placed >= prepare {
			short++
		}
		prepare = max(prepare, 2*placed)
		return m, nil
	}
	run := 0
	baseline := func() (map[string]float64, error) {
		// A fresh file each run, as each system run has a fresh hub.
		run++
		path := filepath.Join(cfg.Dir, fmt.Sprintf("raw-%d-%d.db", subscribers, run))
		raw, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
		if err != nil {
			return nil, err
		}
		defer func() { raw.Close(); os.Remove(path) }()
		if err := raw.Update(func(tx *bolt.Tx) error { _, err := tx.CreateBucketIfNotExists([]byte("b")); return err }); err != nil {
			return nil, err
		}
		commit := newGroupCommit(raw, bytes.Repeat([]byte{'x'}, bytesPer))
		defer commit.close()
		return load(ctx, placeWorkers, cfg.Duration, func(_, _ int) error { return commit.put() })
	}
	sys, base, err := alternate(cfg.Runs, system, baseline)
	if err != nil {
		return nil, err
	}
	name := fmt.Sprintf("placements/s, %d subscribed", subscribers)
	r := row(name, "req/s", true, sys, base, "rps", fmt.Sprintf("raw bbolt group commits of %d B", bytesPer))
	p99 := row(fmt.Sprintf("place p99, %d subscribed", subscribers), "ms", false, sys, base, "p99", "raw bbolt group commit")
	if short > 0 {
		r.Note = fmt.Sprintf("(%d of %d hub runs used up their prepared placements and ended early)", short, cfg.Runs)
	}
	return []Row{r, p99}, nil
}

// placeRun is one system run of the place scenario: a fresh hub with
// subscribers members subscribed, and placeWorkers members' clients placing
// for cfg.Duration (or until the prepare submissions signed beforehand
// are used up), while the hub's dispatcher delivers what they queue. Then
// it closes the hub, dispatcher and all, so the baseline run after it has
// the machine to itself, not a hub still sending what this run queued
// (the queued deliveries go with the hub's temporary file; the propagate
// scenario measures delivery). It returns the load's figures; "n" is how
// many flags were placed, and "queued" how many deliveries the placements
// queued in all, delivered or not, and "delivered" how many of them the
// receivers had when the hub closed.
func placeRun(ctx context.Context, cfg *Config, subscribers, prepare int) (map[string]float64, error) {
	h, err := startHub(cfg)
	if err != nil {
		return nil, err
	}
	defer h.close()
	placer, err := h.addMember("bank-placer", api.RoleFlag)
	if err != nil {
		return nil, err
	}
	counters, err := subscribe(h, subscribers)
	if err != nil {
		return nil, err
	}
	defer closeAll(counters)
	bodies := make([][]byte, prepare)
	for i := range bodies {
		if bodies[i], err = placer.placeFlag(randomToken(h.keys.Token.Epoch())); err != nil {
			return nil, err
		}
	}
	client := keepAlive(placeWorkers)
	defer client.CloseIdleConnections()
	places, err := placer.connect(client)
	if err != nil {
		return nil, err
	}
	var used atomic.Int64
	m, err := load(ctx, placeWorkers, cfg.Duration, func(_, _ int) error {
		i := used.Add(1) - 1
		if i >= int64(len(bodies)) {
			return errExhausted
		}
		_, err := send(ctx, places, "/v1/flags", "application/jose", bodies[i], http.StatusCreated)
		return err
	})
	if err != nil {
		return nil, err
	}
	// Stop delivering, then count what the placements queued: what the
	// receivers have, and what is still in the outbox.
	// (A delivery cut off by the close may be counted both as received
	// and as queued.)
	h.hub.Close()
	delivered, queued := 0, 0
	for _, c := range counters {
		c.mu.Lock()
		delivered += len(c.got) - 1 // each has had the verification first
		c.mu.Unlock()
		n, err := h.st.Backlog(c.member)
		if err != nil {
			return nil, err
		}
		queued += n
	}
	m["delivered"], m["queued"] = float64(delivered), float64(delivered+queued)
	return m, nil
}

// A groupCommit writes fixed values to raw bbolt the way the hub's store
// commits: whatever is queued when a transaction starts goes into it, and
// each writer returns once its transaction is fsynced. It is the least a
// durable write of that many bytes can cost with this strategy.
type groupCommit struct {
	db    *bolt.DB
	value []byte
	queue chan chan error
	next  uint64
	done  chan struct{}
}

func newGroupCommit(db *bolt.DB, value []byte) *groupCommit {
	g := &groupCommit{db: db, value: value, queue: make(chan chan error, 1024), done: make(chan struct{})}
	go g.loop()
	return g
}

func (g *groupCommit) put() error {
	ch := make(chan error, 1)
	g.queue <- ch
	return <-ch
}

func (g *groupCommit) loop() {
	defer close(g.done)
	for first := range g.queue {
		batch := []chan error{first}
	drain:
		for {
			select {
			case ch, ok := <-g.queue:
				if !ok {
					break drain
				}
				batch = append(batch, ch)
			default:
				break drain
			}
		}
		err := g.db.Update(func(tx *bolt.Tx) error {
			b := tx.Bucket([]byte("b"))
			for range batch {
				g.next++
				if err := b.Put(fmt.Appendf(nil, "%016x", g.next), g.value); err != nil {
					return err
				}
			}
			return nil
		})
		for _, ch := range batch {
			ch <- err
		}
	}
}

func (g *groupCommit) close() { close(g.queue); <-g.done }

// quietPlacementBytes returns how many bytes one placement writes with
// subscribers members subscribed, measured on a hub of its own whose
// dispatcher and jobs never run (see [placementBytes]).
func quietPlacementBytes(cfg *Config, subscribers int) (int, error) {
	h, err := openHub(cfg)
	if err != nil {
		return 0, err
	}
	defer h.close()
	placer, err := h.addMember("bank-placer", api.RoleFlag)
	if err != nil {
		return 0, err
	}
	counters, err := register(h, subscribers)
	if err != nil {
		return 0, err
	}
	defer closeAll(counters)
	return placementBytes(h, placer)
}

// placementBytes returns how many bytes of keys and values one placement
// as placer adds or changes in the store: what the raw baseline writes per
// placement. h must be quiet (see [openHub]), so that nothing else writes
// meanwhile. It is the mean of several placements, each compared with the
// store just before it, because the Merkle tree's stored hashes grow by one
// or more per log entry, depending on its index; a first placement is not
// counted, so that nothing a member's first request writes is.
func placementBytes(h *hub, placer *member) (int, error) {
	const placements = 16
	place := func() error {
		body, err := placer.placeFlag(randomToken(h.keys.Token.Epoch()))
		if err != nil {
			return err
		}
		_, err = placer.place(context.Background(), body)
		return err
	}
	if err := place(); err != nil {
		return 0, err
	}
	total := 0
	for range placements {
		before := map[string][]byte{}
		if err := h.st.Walk(func(b string, k, v []byte) error { before[b+"\x00"+string(k)] = bytes.Clone(v); return nil }); err != nil {
			return 0, err
		}
		if err := place(); err != nil {
			return 0, err
		}
		err := h.st.Walk(func(b string, k, v []byte) error {
			if old, ok := before[b+"\x00"+string(k)]; !ok || !bytes.Equal(old, v) {
				total += len(k) + len(v)
			}
			return nil
		})
		if err != nil {
			return 0, err
		}
	}
	return (total + placements/2) / placements, nil
}

// subscribe adds n members with the check role, each with a counter as
// its endpoint, and waits until every endpoint is verified.
func subscribe(h *hub, n int) ([]*counter, error) {
	counters, err := register(h, n)
	if err != nil {
		return nil, err
	}
	deadline := time.Now().Add(time.Minute)
	for _, c := range counters {
		for c.n.Load() == 0 {
			if time.Now().After(deadline) {
				closeAll(counters)
				return nil, fmt.Errorf("endpoint of %s not verified within a minute", c.member)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	return counters, nil
}

// register adds n members with the check role, each with a counter as its
// endpoint.
func register(h *hub, n int) ([]*counter, error) {
	var counters []*counter
	for i := range n {
		c, err := newCounter()
		if err != nil {
			closeAll(counters)
			return nil, err
		}
		counters = append(counters, c)
		m, err := h.addMember(fmt.Sprintf("bank-%03d", i), api.RoleCheck)
		if err != nil {
			closeAll(counters)
			return nil, err
		}
		c.member = m.id
		if _, _, err := m.c.RegisterEndpoint(context.Background(), c.url); err != nil {
			closeAll(counters)
			return nil, err
		}
	}
	return counters, nil
}

func closeAll(cs []*counter) {
	for _, c := range cs {
		c.close()
	}
}

// runTokens: token evaluations per second through POST /v1/tokens
// (authenticated, logged, rate-limited), in batches of 1 and 100, beside
// circl evaluating the same batches in-process.
func runTokens(ctx context.Context, cfg *Config) ([]Row, error) {
	h, err := startHub(cfg)
	if err != nil {
		return nil, err
	}
	defer h.close()
	m, err := h.addMember("bank-tokens", api.RoleCheck)
	if err != nil {
		return nil, err
	}
	tc, err := protocol.NewTokenClient(h.keys.Token.Public())
	if err != nil {
		return nil, err
	}
	priv, err := oprf.GenerateKey(oprf.SuiteRistretto255, crand.Reader)
	if err != nil {
		return nil, err
	}
	server := oprf.NewPartialObliviousServer(oprf.SuiteRistretto255, priv)
	workers := 4
	tokens, err := m.connect(keepAlive(workers))
	if err != nil {
		return nil, err
	}
	var rows []Row
	for _, batch := range []int{1, 100} {
		// Members blind before they send: prepared once, outside the clock,
		// and sent again and again (the hub evaluates each time).
		const prepared = 16
		bodies := make([][]byte, prepared)
		reqs := make([]*oprf.EvaluationRequest, prepared)
		for i := range prepared {
			values := make([]string, batch)
			for j := range values {
				values[j] = fmt.Sprintf("t%d-%d-%d@bench.example", batch, i, j)
			}
			_, req, err := tc.Blind(protocol.TypeEmail, values...)
			if err != nil {
				return nil, err
			}
			bodies[i], _ = json.Marshal(req)
			inputs := make([][]byte, batch)
			for j := range inputs {
				inputs[j] = []byte(values[j])
			}
			_, er, err := oprf.NewPartialObliviousClient(oprf.SuiteRistretto255, priv.Public()).Blind(inputs)
			if err != nil {
				return nil, err
			}
			reqs[i] = er
		}
		info := protocol.TokenInfo(protocol.TypeEmail, 1)
		sys, base, err := alternate(cfg.Runs,
			func() (map[string]float64, error) {
				m, err := load(ctx, workers, cfg.Duration, func(w, i int) error {
					_, err := send(ctx, tokens, "/v1/tokens", "application/json", bodies[(w+i)%prepared], http.StatusOK)
					return err
				})
				if m != nil {
					m["eps"] = m["rps"] * float64(batch)
				}
				return m, err
			},
			func() (map[string]float64, error) {
				m, err := load(ctx, workers, cfg.Duration, func(w, i int) error {
					_, err := server.Evaluate(reqs[(w+i)%prepared], info)
					return err
				})
				if m != nil {
					m["eps"] = m["rps"] * float64(batch)
				}
				return m, err
			})
		if err != nil {
			return nil, err
		}
		rows = append(rows, row(fmt.Sprintf("tokens evaluated/s, batches of %d", batch), "tokens/s", true, sys, base, "eps", "circl in-process"))
	}
	return rows, nil
}
