package server_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/sparr-dev/sparr/protocol"
	"github.com/sparr-dev/sparr/protocol/api"
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
// receiving cost. The baseline sends the signed records the hub made (a
// few placed first, so that it has some when run alone, then those of the
// hub's run) to the very receivers the hub delivered them to.

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
	origin := hub.AddMember(b, "bank-origin", api.RoleFlag)
	counters := make([]*counter, n)
	for i := range counters {
		counters[i] = newCounter(b)
		m := hub.AddMember(b, fmt.Sprintf("bank-%03d", i), api.RoleCheck)
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

// signFlags signs a flag placement on each token.
func signFlags(b *testing.B, origin *hubtest.Member, toks []protocol.Token) [][]byte {
	bodies := make([][]byte, len(toks))
	for i, tok := range toks {
		bodies[i] = origin.Sign(b, protocol.PlaceFlag{Subject: tok, Kind: protocol.FlagKindStandard, Consent: origin.Consent(tok)})
	}
	return bodies
}

// placeFlags submits signed placements and returns their records (the
// bodies the hub delivers), concurrently with parallel, one after another
// without.
func placeFlags(b *testing.B, origin *hubtest.Member, bodies [][]byte, parallel bool) []string {
	records := make([]string, len(bodies))
	place := func(i int) {
		resp := origin.Do(b, http.MethodPost, "/v1/flags", "application/jose", bodies[i])
		var placed struct {
			Record string `json:"record"`
		}
		resp.JSON(b, &placed)
		records[i] = placed.Record
	}
	var wg sync.WaitGroup
	for i := range bodies {
		if parallel {
			wg.Go(func() { place(i) })
		} else {
			place(i)
		}
	}
	wg.Wait()
	return records
}

// poolSize is how many records a baseline has to send before the hub's
// run has made any (when only the baseline is run).
const poolSize = 16

// fanout POSTs body to every counter at once with client, and waits for
// the answers.
func fanout(client *http.Client, counters []*counter, body string) {
	var wg sync.WaitGroup
	for _, c := range counters {
		wg.Go(func() { post(client, c, body) })
	}
	wg.Wait()
}

func post(client *http.Client, c *counter, body string) {
	resp, err := client.Post(c.srv.URL, protocol.DeliveryContentType, strings.NewReader(body))
	if err == nil {
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
}

func BenchmarkPropagate(b *testing.B) {
	for _, n := range []int{10, 100} {
		// One hub and one set of receivers serve both sides; the baseline
		// sends the records the hub made.
		_, origin, counters := propagationHub(b, n)
		records := placeFlags(b, origin, signFlags(b, origin, tokensFor(b, origin, poolSize)), true)
		for _, c := range counters {
			c.waitFor(records...)
		}
		b.Run(fmt.Sprintf("hub/receivers=%d", n), func(b *testing.B) {
			toks := tokensFor(b, origin, b.N)
			b.ResetTimer()
			for i := range b.N {
				record := placeFlags(b, origin, signFlags(b, origin, toks[i:i+1]), false)[0]
				for _, c := range counters {
					c.waitFor(record)
				}
				records = append(records, record)
			}
		})
		b.Run(fmt.Sprintf("baseline-fanout/receivers=%d", n), func(b *testing.B) {
			client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 8}}
			b.ResetTimer()
			for i := range b.N {
				fanout(client, counters, records[i%len(records)])
			}
		})
	}
}

// BenchmarkPropagationSustained places flags as fast as the hub takes them
// and reports deliveries per second to 100 receivers.
func BenchmarkPropagationSustained(b *testing.B) {
	const n, events = 100, 50
	_, origin, counters := propagationHub(b, n)
	records := placeFlags(b, origin, signFlags(b, origin, tokensFor(b, origin, poolSize)), true)
	for _, c := range counters {
		c.waitFor(records...)
	}
	b.Run("hub", func(b *testing.B) {
		b.StopTimer()
		for range b.N {
			bodies := signFlags(b, origin, tokensFor(b, origin, events))
			b.StartTimer()
			placed := placeFlags(b, origin, bodies, true)
			for _, c := range counters {
				c.waitFor(placed...)
			}
			b.StopTimer()
			records = append(records, placed...)
		}
		b.ReportMetric(float64(n*events*b.N)/b.Elapsed().Seconds(), "deliveries/s")
	})
	b.Run("baseline-fanout", func(b *testing.B) {
		client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 8}}
		for i := range b.N {
			var wg sync.WaitGroup
			for _, c := range counters {
				wg.Go(func() { // one sequential stream per receiver, as the hub does
					for j := range events {
						post(client, c, records[(i*events+j)%len(records)])
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
