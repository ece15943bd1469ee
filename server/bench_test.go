package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/sparr-dev/sparr/client"
	"github.com/sparr-dev/sparr/protocol"
	"github.com/sparr-dev/sparr/protocol/api"
	"github.com/sparr-dev/sparr/server"
	"github.com/sparr-dev/sparr/server/hubtest"
)

// Benchmarks of the two hot paths, each beside a baseline measured in the
// same run so that the ratio, not the noisy absolute, is what to compare:
//
//	go test ./server -run '^$' -bench 'Check|Place' -count 5
//
// Check: one token per request against a hub holding flags, over loopback
// HTTP with keep-alive (parallel clients) and in-process (no network),
// beside a bare net/http server answering a map lookup. Every check's log
// entry is durable before it is answered, as in production.

// unlimited lifts the per-member rate limits, which a benchmark would hit.
var unlimited = server.Limits{
	Tokens: server.Rate{PerSecond: 1e9, Burst: 1e9}, Writes: server.Rate{PerSecond: 1e9, Burst: 1e9},
	Checks: server.Rate{PerSecond: 1e9, Burst: 1e9}, Reads: server.Rate{PerSecond: 1e9, Burst: 1e9},
}

func benchHub(b *testing.B, flags int) (*hubtest.Hub, *hubtest.Member, []string) {
	hub := hubtest.Start(b, hubtest.Options{Limits: unlimited})
	bank := hub.AddMember(b, "bank-a", api.RoleFlag, api.RoleCheck)
	var values []string
	for i := range flags {
		values = append(values, fmt.Sprintf("user%d@example.se", i))
	}
	var toks []string
	for i := 0; i < len(values); i += protocol.MaxTokenBatch {
		for _, t := range bank.Tokenize(b, protocol.TypeEmail, values[i:min(i+protocol.MaxTokenBatch, len(values))]...) {
			toks = append(toks, t.String())
		}
	}
	for _, s := range toks[:len(toks)/10] { // a tenth are flagged
		tok, _ := protocol.ParseToken(s)
		resp := bank.Submit(b, "/v1/flags", protocol.PlaceFlag{Subject: tok, Kind: protocol.FlagKindStandard, Consent: bank.Consent(tok)})
		if resp.Status != http.StatusCreated {
			b.Fatalf("place: %d %s", resp.Status, resp.Body)
		}
	}
	return hub, bank, toks
}

func checkBodies(toks []string) [][]byte {
	out := make([][]byte, len(toks))
	for i, t := range toks {
		out[i], _ = json.Marshal(api.CheckRequest{Purpose: api.PurposeCreditApplication, Tokens: []string{t}})
	}
	return out
}

// loopbackClient returns the member SDK's client for m over hc, sending
// each request once: what the benchmarks send their prepared bodies with.
func loopbackClient(b *testing.B, hub *hubtest.Hub, m *hubtest.Member, hc *http.Client) *client.Client {
	c, err := client.New(client.Config{HubURL: hub.URL, MemberID: m.ID, Key: m.Key, Now: hub.Now, HTTPClient: hc, Retry: client.Retry{Attempts: 1}})
	if err != nil {
		b.Fatal(err)
	}
	return c
}

func BenchmarkCheck(b *testing.B) {
	hub, bank, toks := benchHub(b, 200)
	bodies := checkBodies(toks)
	bearer := bank.Bearer(b)
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}

	b.Run("http", func(b *testing.B) {
		c := loopbackClient(b, hub, bank, hc)
		var n atomic.Int64
		b.SetParallelism(8)
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				body := bodies[int(n.Add(1))%len(bodies)]
				resp, err := c.Raw(context.Background(), client.RawRequest{Method: http.MethodPost, Path: "/v1/check", ContentType: "application/json", Body: body})
				if err != nil {
					b.Fatal(err)
				}
				if resp.Status != http.StatusOK {
					b.Fatalf("status %d", resp.Status)
				}
			}
		})
	})
	b.Run("in-process", func(b *testing.B) {
		var n atomic.Int64
		b.SetParallelism(8)
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				body := bodies[int(n.Add(1))%len(bodies)]
				req := httptest.NewRequest(http.MethodPost, "/v1/check", bytes.NewReader(body))
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set("Authorization", "Bearer "+bearer)
				w := httptest.NewRecorder()
				hub.ServeHTTP(w, req)
				if w.Code != http.StatusOK {
					b.Fatalf("status %d: %s", w.Code, w.Body)
				}
			}
		})
	})
	b.Run("baseline-nethttp-map", func(b *testing.B) {
		// The least a check could cost over HTTP: decode the same JSON, look
		// the token up in a map, encode an answer. No auth, no log entry.
		flagged := map[string]bool{}
		for _, t := range toks[:len(toks)/10] {
			flagged[t] = true
		}
		var mu sync.RWMutex
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			var req struct {
				Purpose string   `json:"purpose"`
				Tokens  []string `json:"tokens"`
			}
			json.NewDecoder(r.Body).Decode(&req)
			mu.RLock()
			hit := flagged[req.Tokens[0]]
			mu.RUnlock()
			advice := "none"
			if hit {
				advice = "verify"
			}
			json.NewEncoder(w).Encode(map[string]any{"results": []map[string]string{{"token": req.Tokens[0], "advice": advice}}})
		}))
		defer srv.Close()
		var n atomic.Int64
		b.SetParallelism(8)
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				body := bodies[int(n.Add(1))%len(bodies)]
				resp, err := hc.Post(srv.URL, "application/json", bytes.NewReader(body))
				if err != nil {
					b.Fatal(err)
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		})
	})
}

// BenchmarkPlace: durable flag placements from parallel members, each a
// signed submission verified, decided, signed as a record and committed
// with its log entry, over loopback HTTP and in-process. Every run starts
// a fresh hub and places each flag on a token of its own, so that every
// placement is a new flag (201), never "already active". The store's own
// benchmark has the raw bbolt baseline.
func BenchmarkPlace(b *testing.B) {
	for _, mode := range []string{"http", "in-process"} {
		b.Run(mode, func(b *testing.B) {
			hub := hubtest.Start(b, hubtest.Options{Limits: unlimited})
			bank := hub.AddMember(b, "bank-a", api.RoleFlag)
			// Tokenize and sign outside the timed loop: both are the
			// member's cost.
			values := make([]string, b.N)
			for i := range values {
				values[i] = fmt.Sprintf("placed%d@example.se", i)
			}
			bodies := make([][]byte, 0, b.N)
			for i := 0; i < b.N; i += protocol.MaxTokenBatch {
				for _, tok := range bank.Tokenize(b, protocol.TypeEmail, values[i:min(i+protocol.MaxTokenBatch, b.N)]...) {
					bodies = append(bodies, bank.Sign(b, protocol.PlaceFlag{Subject: tok, Kind: protocol.FlagKindStandard, Consent: bank.Consent(tok)}))
				}
			}
			bearer := bank.Bearer(b)
			hc := &http.Client{Transport: &http.Transport{MaxIdleConns: 64, MaxIdleConnsPerHost: 64}}
			defer hc.CloseIdleConnections()
			c := loopbackClient(b, hub, bank, hc)
			var n atomic.Int64
			b.ResetTimer()
			b.SetParallelism(8)
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					body := bodies[n.Add(1)-1]
					var code int
					if mode == "http" {
						resp, err := c.Raw(context.Background(), client.RawRequest{Method: http.MethodPost, Path: "/v1/flags", ContentType: "application/jose", Body: body})
						if err != nil {
							b.Error(err)
							return
						}
						code = resp.Status
					} else {
						req := httptest.NewRequest(http.MethodPost, "/v1/flags", bytes.NewReader(body))
						req.Header.Set("Content-Type", "application/jose")
						req.Header.Set("Authorization", "Bearer "+bearer)
						w := httptest.NewRecorder()
						hub.ServeHTTP(w, req)
						code = w.Code
					}
					if code != http.StatusCreated {
						b.Errorf("got status %d, want 201: every placement is of a new flag", code)
						return
					}
				}
			})
		})
	}
}
