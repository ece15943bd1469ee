package bench

import (
	"bytes"
	"context"
	crand "crypto/rand"
	"encoding/json"
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

	"github.com/sparr-dev/sparr/federation"
	"github.com/sparr-dev/sparr/protocol"
)

// load keeps workers busy sending requests for d, and returns requests per
// second and the latency percentiles. send makes one request; its error
// stops the run.
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
					first.CompareAndSwap(nil, err)
					return
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
	return map[string]float64{"rps": float64(total.Load()) / elapsed, "p50": percentile(lats, 50), "p99": percentile(lats, 99)}, nil
}

// post sends a body and drains the answer.
func post(c *http.Client, url, contentType, bearer string, body []byte, want int) error {
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", contentType)
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
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
	h, err := startHub(cfg.Dir)
	if err != nil {
		return nil, err
	}
	defer h.close()
	flagger, err := h.addMember("bank-flagger", federation.RoleFlag)
	if err != nil {
		return nil, err
	}
	checker, err := h.addMember("bank-checker", federation.RoleCheck)
	if err != nil {
		return nil, err
	}
	toks, err := h.tokens("check", 10_000)
	if err != nil {
		return nil, err
	}
	flagged := map[string]bool{}
	for _, tok := range toks[:len(toks)/100] {
		body, err := flagger.placeFlag(tok)
		if err != nil {
			return nil, err
		}
		if _, err := flagger.do(http.MethodPost, "/v1/flags", "application/jose", body, http.StatusCreated); err != nil {
			return nil, err
		}
		flagged[tok.String()] = true
	}
	bodies := make([][]byte, len(toks))
	for i, tok := range toks {
		bodies[i], _ = json.Marshal(map[string]any{"purpose": "credit-application", "tokens": []string{tok.String()}})
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
	bearer, err := checker.token()
	if err != nil {
		return nil, err
	}
	hubClient, baseClient := keepAlive(cfg.Concurrency), keepAlive(cfg.Concurrency)
	fmt.Fprintf(cfg.Progress, "   %d clients, %s a run, %d runs each\n", cfg.Concurrency, cfg.Duration, cfg.Runs)
	pick := func(w, i int) []byte { return bodies[(w*7919+i*104729)%len(bodies)] }
	sys, base, err := alternate(cfg.Runs,
		func() (map[string]float64, error) {
			return load(ctx, cfg.Concurrency, cfg.Duration, func(w, i int) error {
				return post(hubClient, h.url+"/v1/check", "application/json", bearer, pick(w, i), http.StatusOK)
			})
		},
		func() (map[string]float64, error) {
			return load(ctx, cfg.Concurrency, cfg.Duration, func(w, i int) error {
				return post(baseClient, baseURL, "application/json", "", pick(w, i), http.StatusOK)
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

// runPlace: durable placements per second from concurrent members, with 10
// and 100 members subscribed (each placement queues a delivery per member,
// which the dispatcher sends meanwhile). The baseline commits, with bbolt's
// own batching from as many goroutines, values of the size one placement
// writes.
func runPlace(ctx context.Context, cfg *Config) ([]Row, error) {
	var rows []Row
	for _, n := range []int{10, 100} {
		r, err := placeWith(ctx, cfg, n)
		if err != nil {
			return nil, err
		}
		rows = append(rows, r...)
	}
	return rows, nil
}

func placeWith(ctx context.Context, cfg *Config, subscribers int) ([]Row, error) {
	h, err := startHub(cfg.Dir)
	if err != nil {
		return nil, err
	}
	defer h.close()
	placer, err := h.addMember("bank-placer", federation.RoleFlag)
	if err != nil {
		return nil, err
	}
	counters, err := subscribe(h, subscribers)
	if err != nil {
		return nil, err
	}
	defer closeAll(counters)
	const workers = 16
	// Enough fresh tokens for every run: a placement on a token already
	// flagged answers with the existing flag, which is cheaper.
	need := int(3000*cfg.Duration.Seconds()) * cfg.Runs
	toks, err := h.tokens(fmt.Sprintf("place%d-", subscribers), need)
	if err != nil {
		return nil, err
	}
	bytesPer, err := placementBytes(h, placer, toks[0])
	if err != nil {
		return nil, err
	}
	toks = toks[1:]
	raw, err := bolt.Open(filepath.Join(cfg.Dir, fmt.Sprintf("raw-%d.db", subscribers)), 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		return nil, err
	}
	defer func() { raw.Close(); os.Remove(raw.Path()) }()
	raw.Update(func(tx *bolt.Tx) error { _, err := tx.CreateBucketIfNotExists([]byte("b")); return err })
	commit := newGroupCommit(raw, bytes.Repeat([]byte{'x'}, bytesPer))
	defer commit.close()

	bearer, err := placer.token()
	if err != nil {
		return nil, err
	}
	client := keepAlive(workers)
	next := 0
	fmt.Fprintf(cfg.Progress, "   %d subscribed members: one placement writes %d bytes\n", subscribers, bytesPer)
	sys, base, err := alternate(cfg.Runs,
		func() (map[string]float64, error) {
			// Members sign their submissions: done before the clock starts.
			per := min(len(toks)-next, need/cfg.Runs)
			bodies := make([][]byte, per)
			for i := range bodies {
				if bodies[i], err = placer.placeFlag(toks[next+i]); err != nil {
					return nil, err
				}
			}
			next += per
			var used atomic.Int64
			return load(ctx, workers, cfg.Duration, func(_, _ int) error {
				i := used.Add(1) - 1
				if int(i) >= len(bodies) {
					return fmt.Errorf("ran out of %d prepared placements: the hub placed more than expected; lower the duration", len(bodies))
				}
				return post(client, h.url+"/v1/flags", "application/jose", bearer, bodies[i], http.StatusCreated)
			})
		},
		func() (map[string]float64, error) {
			return load(ctx, workers, cfg.Duration, func(_, _ int) error { return commit.put() })
		})
	if err != nil {
		return nil, err
	}
	name := fmt.Sprintf("placements/s, %d subscribed", subscribers)
	r := row(name, "req/s", true, sys, base, "rps", fmt.Sprintf("raw bbolt group commits of %d B", bytesPer))
	p99 := row(fmt.Sprintf("place p99, %d subscribed", subscribers), "ms", false, sys, base, "p99", "raw bbolt group commit")
	return []Row{r, p99}, nil
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

// placementBytes places one flag and returns how many bytes of keys and
// values the store gained or changed: what the raw baseline writes per
// operation.
func placementBytes(h *hub, placer *member, tok protocol.Token) (int, error) {
	before := map[string]int{}
	if err := h.st.Walk(func(b string, k, v []byte) error { before[b+"/"+string(k)] = len(v); return nil }); err != nil {
		return 0, err
	}
	body, err := placer.placeFlag(tok)
	if err != nil {
		return 0, err
	}
	if _, err := placer.do(http.MethodPost, "/v1/flags", "application/jose", body, http.StatusCreated); err != nil {
		return 0, err
	}
	n := 0
	err = h.st.Walk(func(b string, k, v []byte) error {
		if old, ok := before[b+"/"+string(k)]; !ok || old != len(v) {
			n += len(k) + len(v)
		}
		return nil
	})
	return n, err
}

// subscribe adds n members with the check role, each with a counter as
// its endpoint, and waits until every endpoint is verified.
func subscribe(h *hub, n int) ([]*counter, error) {
	counters := make([]*counter, n)
	for i := range counters {
		c, err := newCounter()
		if err != nil {
			return nil, err
		}
		counters[i] = c
		m, err := h.addMember(fmt.Sprintf("bank-%03d", i), federation.RoleCheck)
		if err != nil {
			return nil, err
		}
		c.member = m.id
		body, _ := json.Marshal(map[string]string{"url": c.url})
		if _, err := m.do(http.MethodPut, "/v1/members/self/endpoint", "application/json", body, http.StatusCreated); err != nil {
			return nil, err
		}
	}
	deadline := time.Now().Add(time.Minute)
	for _, c := range counters {
		for c.n.Load() == 0 {
			if time.Now().After(deadline) {
				return nil, fmt.Errorf("endpoint of %s not verified within a minute", c.member)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	return counters, nil
}

func closeAll(cs []*counter) {
	for _, c := range cs {
		c.close()
	}
}

// runPropagate: how long one event takes to reach every one of N
// receivers (from the hub's 201 to the last receiver's 202), and how many
// deliveries per second the hub sustains; beside a raw fan-out that POSTs
// the same bodies to the same receivers with a shared keep-alive client.
func runPropagate(ctx context.Context, cfg *Config) ([]Row, error) {
	var rows []Row
	for _, n := range cfg.Receivers {
		r, err := propagateTo(ctx, cfg, n)
		if err != nil {
			return nil, err
		}
		rows = append(rows, r...)
	}
	return rows, nil
}

func propagateTo(ctx context.Context, cfg *Config, n int) ([]Row, error) {
	h, err := startHub(cfg.Dir)
	if err != nil {
		return nil, err
	}
	defer h.close()
	origin, err := h.addMember("bank-origin", federation.RoleFlag)
	if err != nil {
		return nil, err
	}
	counters, err := subscribe(h, n)
	if err != nil {
		return nil, err
	}
	defer closeAll(counters)
	events := cfg.Events
	toks, err := h.tokens(fmt.Sprintf("prop%d-", n), 2*events*cfg.Runs)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(cfg.Progress, "   %d receivers, %d events a run\n", n, events)
	var samples [][]byte // bodies the hub delivered, for the baseline to send
	client := keepAlive(8)
	run := 0
	waitAll := func(ids func(c *counter) string) (time.Time, error) {
		var last time.Time
		for _, c := range counters {
			t, err := c.wait(ctx, time.Minute, ids(c))
			if err != nil {
				return last, err
			}
			if t.After(last) {
				last = t
			}
		}
		return last, nil
	}
	next := 0
	system := func() (map[string]float64, error) {
		// One event at a time: latency.
		var lats []time.Duration
		for range events {
			body, err := origin.placeFlag(toks[next])
			next++
			if err != nil {
				return nil, err
			}
			resp, err := origin.do(http.MethodPost, "/v1/flags", "application/jose", body, http.StatusCreated)
			t0 := time.Now()
			if err != nil {
				return nil, err
			}
			var placed struct {
				Record string `json:"record"`
			}
			json.Unmarshal(resp, &placed)
			rec, err := protocol.VerifyRecord([]byte(placed.Record), h.keys.JWKS())
			if err != nil {
				return nil, err
			}
			last, err := waitAll(func(c *counter) string { return rec.ID + "_" + c.member })
			if err != nil {
				return nil, err
			}
			lats = append(lats, last.Sub(t0))
			if len(samples) < events {
				samples = append(samples, []byte(placed.Record))
			}
		}
		// As fast as the hub takes them: sustained deliveries.
		bodies := make([][]byte, events)
		for i := range bodies {
			if bodies[i], err = origin.placeFlag(toks[next]); err != nil {
				return nil, err
			}
			next++
		}
		ids := make([]string, events)
		start := time.Now()
		var wg sync.WaitGroup
		var firstErr atomic.Value
		sem := make(chan struct{}, 8)
		for i, b := range bodies {
			sem <- struct{}{}
			wg.Go(func() {
				defer func() { <-sem }()
				resp, err := origin.do(http.MethodPost, "/v1/flags", "application/jose", b, http.StatusCreated)
				if err != nil {
					firstErr.CompareAndSwap(nil, err)
					return
				}
				var placed struct {
					Record string `json:"record"`
				}
				json.Unmarshal(resp, &placed)
				rec, err := protocol.VerifyRecord([]byte(placed.Record), h.keys.JWKS())
				if err != nil {
					firstErr.CompareAndSwap(nil, err)
					return
				}
				ids[i] = rec.ID
			})
		}
		wg.Wait()
		if err, _ := firstErr.Load().(error); err != nil {
			return nil, err
		}
		for _, c := range counters {
			for _, id := range ids {
				if _, err := c.wait(ctx, 5*time.Minute, id+"_"+c.member); err != nil {
					return nil, err
				}
			}
		}
		rate := float64(events*n) / time.Since(start).Seconds()
		return map[string]float64{"p50": percentile(lats, 50), "p99": percentile(lats, 99), "rate": rate}, nil
	}
	baseline := func() (map[string]float64, error) {
		run++
		if len(samples) == 0 {
			return nil, fmt.Errorf("no delivered bodies to send")
		}
		send := func(c *counter, id string, body []byte) error {
			req, _ := http.NewRequest(http.MethodPost, c.url, bytes.NewReader(body))
			req.Header.Set("Content-Type", protocol.DeliveryContentType)
			req.Header.Set("webhook-id", id)
			resp, err := client.Do(req)
			if err != nil {
				return err
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			return nil
		}
		var lats []time.Duration
		for i := range events {
			body := samples[i%len(samples)]
			t0 := time.Now()
			var wg sync.WaitGroup
			for _, c := range counters {
				wg.Go(func() { send(c, fmt.Sprintf("base-%d-%d", run, i), body) })
			}
			wg.Wait()
			lats = append(lats, time.Since(t0))
		}
		start := time.Now()
		var wg sync.WaitGroup
		for _, c := range counters {
			wg.Go(func() { // one stream per receiver, as the hub keeps
				for i := range events {
					send(c, fmt.Sprintf("base-sustained-%d-%d", run, i), samples[i%len(samples)])
				}
			})
		}
		wg.Wait()
		rate := float64(events*n) / time.Since(start).Seconds()
		return map[string]float64{"p50": percentile(lats, 50), "p99": percentile(lats, 99), "rate": rate}, nil
	}
	sys, base, err := alternate(cfg.Runs, system, baseline)
	if err != nil {
		return nil, err
	}
	const baseName = "raw fan-out, same bodies"
	return []Row{
		row(fmt.Sprintf("one event to %d receivers, p50", n), "ms", false, sys, base, "p50", baseName),
		row(fmt.Sprintf("one event to %d receivers, p99", n), "ms", false, sys, base, "p99", baseName),
		row(fmt.Sprintf("sustained deliveries/s, %d receivers", n), "deliveries/s", true, sys, base, "rate", baseName),
	}, nil
}

// runTokens: token evaluations per second through POST /v1/tokens
// (authenticated, logged, rate-limited), in batches of 1 and 100, beside
// circl evaluating the same batches in-process.
func runTokens(ctx context.Context, cfg *Config) ([]Row, error) {
	h, err := startHub(cfg.Dir)
	if err != nil {
		return nil, err
	}
	defer h.close()
	m, err := h.addMember("bank-tokens", federation.RoleCheck)
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
	bearer, err := m.token()
	if err != nil {
		return nil, err
	}
	workers := 4
	client := keepAlive(workers)
	var rows []Row
	for _, batch := range []int{1, 100} {
		// Members blind before they send: prepared once, outside the clock.
		const prepared = 64
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
					return post(client, h.url+"/v1/tokens", "application/json", bearer, bodies[(w+i)%prepared], http.StatusOK)
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
