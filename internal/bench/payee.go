package bench

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"time"

	"github.com/sparr-dev/sparr/client"
	"github.com/sparr-dev/sparr/client/replica"
	"github.com/sparr-dev/sparr/protocol"
	"github.com/sparr-dev/sparr/protocol/api"
)

// benchHolder is the member that holds the accounts of bank SE:500 in
// the payee scenario's hub ([newHub] maps it).
const benchHolder = "bank-000"

// payeeRecalls is how many recalls each routing run times.
const payeeRecalls = 100

// runPayee measures payee screening and recall routing: a paying member's
// online payment checks of payee tokens (1% reported) through POST
// /v1/check, beside a bare net/http map lookup; the same checks answered
// by its replica, beside a bare map lookup; and the time from sending a
// recall request to its arrival at the holder's receiver, beside a bare
// POST of the same bytes to the same receiver.
func runPayee(ctx context.Context, cfg *Config) ([]Row, error) {
	h, err := startHub(cfg)
	if err != nil {
		return nil, err
	}
	defer h.close()
	counters, err := subscribe(h, 1) // bank-000, the holder of SE:500
	if err != nil {
		return nil, err
	}
	defer closeAll(counters)
	holder := counters[0]
	reporter, err := h.addMember("bank-reporter", api.RoleCheck)
	if err != nil {
		return nil, err
	}
	payer, err := h.addMember("bank-payer", api.RoleCheck)
	if err != nil {
		return nil, err
	}
	toks := make([]protocol.Token, 10_000)
	for i := range toks {
		toks[i] = protocol.Token{Type: protocol.TypeIBAN, Epoch: h.keys.Token.Epoch()}
		rand.Read(toks[i].Value[:])
	}
	reported := map[protocol.Token]bool{}
	reportedText := map[string]bool{}
	now := time.Now()
	for _, tok := range toks[:len(toks)/100] {
		if _, err := reporter.c.ReportPayee(ctx, client.ReportPayeeRequest{Payee: tok, Customers: 2, Category: protocol.PayeeImpersonation,
			FirstSeen: now.Add(-time.Hour), LastSeen: now}); err != nil {
			return nil, err
		}
		reported[tok], reportedText[tok.String()] = true, true
	}
	fmt.Fprintf(cfg.Progress, "   %d payee tokens, %d reported; %d clients, %s a run, %d runs each\n", len(toks), len(reported), cfg.Concurrency, cfg.Duration, cfg.Runs)

	// Online payment checks.
	bodies := make([][]byte, len(toks))
	for i, tok := range toks {
		bodies[i], _ = json.Marshal(api.CheckRequest{Purpose: api.PurposePayment, Tokens: []string{tok.String()}})
	}
	baseURL, stop, err := serveLocal(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req api.CheckRequest
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil || len(req.Tokens) != 1 {
			http.Error(w, "bad", http.StatusBadRequest)
			return
		}
		advice := api.AdviceNone
		if reportedText[req.Tokens[0]] { // read-only after setup
			advice = api.AdviceWarn
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{"results": []map[string]any{{"token": req.Tokens[0], "advice": advice}}})
	}))
	if err != nil {
		return nil, err
	}
	defer stop()
	hubClient, baseClient := keepAlive(cfg.Concurrency), keepAlive(cfg.Concurrency)
	checks, err := payer.connect(hubClient)
	if err != nil {
		return nil, err
	}
	pick := func(w, i int) []byte { return bodies[(w*7919+i*104729)%len(bodies)] }
	onSys, onBase, err := alternate(cfg.Runs,
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

	// The same checks in the payer's replica.
	c, err := payer.client()
	if err != nil {
		return nil, err
	}
	rep, err := replica.Open(filepath.Join(h.dir, "replica-payee.db"), replica.Config{Client: reportsDiscarded{c}})
	if err != nil {
		return nil, err
	}
	defer rep.Close()
	if err := rep.Sync(ctx); err != nil {
		return nil, err
	}
	n, recalls := 1_000_000, payeeRecalls
	if cfg.Duration < time.Second { // a test's small run
		n, recalls = 20_000, 10
	}
	repSys, repBase, err := alternate(cfg.Runs,
		func() (map[string]float64, error) {
			return measureChecks(toks, n, func(t protocol.Token) bool { return rep.Check(api.PurposePayment, t).Advice == api.AdviceWarn },
				func() error { return rep.Flush(ctx) })
		},
		func() (map[string]float64, error) {
			return measureChecks(toks, n, func(t protocol.Token) bool { return reported[t] }, nil)
		})
	if err != nil {
		return nil, err
	}

	// Recall routing: request to arrival at the holder's receiver.
	bank := protocol.BankRef{Country: "SE", BankCode: "500"}
	raw := keepAlive(1)
	var body []byte
	rcSys, rcBase, err := alternate(cfg.Runs,
		func() (map[string]float64, error) {
			var lats []time.Duration
			for i := range recalls {
				start := time.Now()
				res, err := reporter.c.RequestRecall(ctx, client.RecallRequest{Payee: toks[i], Bank: bank,
					Amount: protocol.Money{Minor: 4_000_000, Currency: "SEK"}, PaidAt: start.Add(-time.Minute), Reference: newJTI()})
				if err != nil {
					return nil, err
				}
				if res.Recall.To != benchHolder {
					return nil, fmt.Errorf("recall routed to %s, want %s", res.Recall.To, benchHolder)
				}
				at, err := holder.wait(ctx, time.Minute, protocol.DeliveryID(res.Record.ID, benchHolder))
				if err != nil {
					return nil, err
				}
				lats = append(lats, at.Sub(start))
				body = []byte(res.RecordJWS)
			}
			return map[string]float64{"p50": percentile(lats, 50), "p99": percentile(lats, 99)}, nil
		},
		func() (map[string]float64, error) {
			var lats []time.Duration
			for range recalls {
				id := "raw-" + newJTI()
				start := time.Now()
				if err := deliver(raw, holder.url, id, body); err != nil {
					return nil, err
				}
				at, err := holder.wait(ctx, time.Minute, id)
				if err != nil {
					return nil, err
				}
				lats = append(lats, at.Sub(start))
			}
			return map[string]float64{"p50": percentile(lats, 50), "p99": percentile(lats, 99)}, nil
		})
	if err != nil {
		return nil, err
	}
	const httpBase, mapBase, rawBase = "bare net/http map lookup", "bare map lookup", "bare POST of the record to the same receiver"
	cc := fmt.Sprintf("C=%d", cfg.Concurrency)
	return []Row{
		row("payee checks/s, online, "+cc, "req/s", true, onSys, onBase, "rps", httpBase),
		row("payee check p99, online, "+cc, "ms", false, onSys, onBase, "p99", httpBase),
		row("payee check, replica", "ns/check", false, repSys, repBase, "ns", mapBase),
		row("payee checks/s, replica, one goroutine", "checks/s", true, repSys, repBase, "cps", mapBase),
		row("recall routed to the holder, p50", "ms", false, rcSys, rcBase, "p50", rawBase),
		row("recall routed to the holder, p99", "ms", false, rcSys, rcBase, "p99", rawBase),
	}, nil
}
