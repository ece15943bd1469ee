package server_test

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/sparr-dev/sparr/federation"
	"github.com/sparr-dev/sparr/protocol"
	"github.com/sparr-dev/sparr/server/hubtest"
)

// Propagation benchmarks: how long one event takes to reach N loopback
// receivers, and how many deliveries per second the hub sustains, each
// beside a raw fan-out of the same bodies to the same receivers in the same
// run (a shared keep-alive client POSTing concurrently: no signing, no
// outbox, no log):
//
//	go test ./server -run '^$' -bench Propagat -count 5
//
// The receivers only count what they get, so both sides pay the same
// receiving cost.

// counter is a receiver that acknowledges everything and counts bodies.
type counter struct {
	srv  *httptest.Server
	mu   sync.Mutex
	got  map[string]int
	cond *sync.Cond
}

func newCounter(b *testing.B) *counter {
	c := &counter{got: map[string]int{}}
	c.cond = sync.NewCond(&c.mu)
	c.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		c.mu.Lock()
		c.got[string(body)]++
		c.cond.Broadcast()
		c.mu.Unlock()
		w.WriteHeader(http.StatusAccepted)
	}))
	b.Cleanup(c.srv.Close)
	return c
}

// waitFor blocks until the counter has seen every body.
func (c *counter) waitFor(bodies ...string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, body := range bodies {
		for c.got[body] == 0 {
			c.cond.Wait()
		}
	}
}

// propagationHub starts a hub with n members whose endpoints are counters,
// all verified.
func propagationHub(b *testing.B, n int) (*hubtest.Hub, *hubtest.Member, []*counter) {
	hub := hubtest.Start(b, hubtest.Options{Limits: unlimited})
	origin := hub.AddMember(b, "bank-origin", federation.RoleFlag)
	counters := make([]*counter, n)
	for i := range counters {
		counters[i] = newCounter(b)
		m := hub.AddMember(b, fmt.Sprintf("bank-%03d", i), federation.RoleCheck)
		resp := m.JSON(b, http.MethodPut, "/v1/members/self/endpoint", map[string]string{"url": counters[i].srv.URL})
		if resp.Status != http.StatusCreated {
			b.Fatalf("register: %d %s", resp.Status, resp.Body)
		}
	}
	for _, m := range counters {
		m.mu.Lock()
		for len(m.got) == 0 { // the verification event
			m.cond.Wait()
		}
		m.mu.Unlock()
	}
	return hub, origin, counters
}

func BenchmarkPropagate(b *testing.B) {
	for _, n := range []int{10, 100} {
		b.Run(fmt.Sprintf("hub/receivers=%d", n), func(b *testing.B) {
			hub, origin, counters := propagationHub(b, n)
			toks := tokensFor(b, origin, b.N)
			b.ResetTimer()
			for i := range b.N {
				resp := origin.Submit(b, "/v1/flags", protocol.PlaceFlag{Subject: toks[i], Kind: protocol.FlagKindStandard, Consent: origin.Consent(toks[i])})
				var placed struct {
					Record string `json:"record"`
				}
				resp.JSON(b, &placed)
				for _, c := range counters {
					c.waitFor(placed.Record)
				}
			}
			b.StopTimer()
			_ = hub
		})
		b.Run(fmt.Sprintf("baseline-fanout/receivers=%d", n), func(b *testing.B) {
			counters := make([]*counter, n)
			for i := range counters {
				counters[i] = newCounter(b)
			}
			client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 8}}
			b.ResetTimer()
			for i := range b.N {
				body := fmt.Sprintf("event-%d-%s", i, bytes.Repeat([]byte("x"), 900))
				var wg sync.WaitGroup
				for _, c := range counters {
					wg.Go(func() {
						resp, err := client.Post(c.srv.URL, protocol.DeliveryContentType, bytes.NewReader([]byte(body)))
						if err == nil {
							io.Copy(io.Discard, resp.Body)
							resp.Body.Close()
						}
					})
				}
				wg.Wait()
			}
		})
	}
}

// BenchmarkPropagationSustained places flags as fast as the hub takes them
// and reports deliveries per second to 100 receivers.
func BenchmarkPropagationSustained(b *testing.B) {
	const n, events = 100, 50
	b.Run("hub", func(b *testing.B) {
		_, origin, counters := propagationHub(b, n)
		b.StopTimer()
		for range b.N {
			toks := tokensFor(b, origin, events)
			bodies := make([][]byte, events)
			for i, tok := range toks {
				bodies[i] = origin.Sign(b, protocol.PlaceFlag{Subject: tok, Kind: protocol.FlagKindStandard, Consent: origin.Consent(tok)})
			}
			b.StartTimer()
			records := make([]string, events)
			var wg sync.WaitGroup
			for i, body := range bodies {
				wg.Go(func() {
					resp := origin.Do(b, http.MethodPost, "/v1/flags", "application/jose", body)
					var placed struct {
						Record string `json:"record"`
					}
					resp.JSON(b, &placed)
					records[i] = placed.Record
				})
			}
			wg.Wait()
			for _, c := range counters {
				c.waitFor(records...)
			}
			b.StopTimer()
		}
		b.ReportMetric(float64(n*events*b.N)/b.Elapsed().Seconds(), "deliveries/s")
	})
	b.Run("baseline-fanout", func(b *testing.B) {
		counters := make([]*counter, n)
		for i := range counters {
			counters[i] = newCounter(b)
		}
		client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 8}}
		var seq atomic.Int64
		for range b.N {
			var wg sync.WaitGroup
			for _, c := range counters {
				wg.Go(func() { // one sequential stream per receiver, as the hub does
					for range events {
						body := fmt.Sprintf("event-%d-%s", seq.Add(1), bytes.Repeat([]byte("x"), 900))
						resp, err := client.Post(c.srv.URL, protocol.DeliveryContentType, bytes.NewReader([]byte(body)))
						if err == nil {
							io.Copy(io.Discard, resp.Body)
							resp.Body.Close()
						}
					}
				})
			}
			wg.Wait()
		}
		b.ReportMetric(float64(n*events*b.N)/b.Elapsed().Seconds(), "deliveries/s")
	})
}

var tokenSeq atomic.Int64

// tokensFor makes n fresh tokens through the hub.
func tokensFor(b *testing.B, m *hubtest.Member, n int) []protocol.Token {
	var out []protocol.Token
	for len(out) < n {
		batch := min(n-len(out), protocol.MaxTokenBatch)
		values := make([]string, batch)
		for i := range values {
			values[i] = fmt.Sprintf("bench%d@example.se", tokenSeq.Add(1))
		}
		out = append(out, m.Tokenize(b, protocol.TypeEmail, values...)...)
	}
	return out
}
