package bench

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/sparr-dev/sparr/federation"
	"github.com/sparr-dev/sparr/protocol"
)

// runPropagate: how long one event takes to reach every one of N
// receivers, and how many deliveries per second the hub sustains; beside
// a raw fan-out of the same bodies to the same receivers. propagateTo says
// exactly what each side measures.
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

// propagateTo measures propagation to n receivers. Both sides deliver to
// the same counters, and a time of arrival is the one the receiving
// counter notes.
//
// One event's latency is from t0 until the last of the n receivers has
// it:
//
//   - The hub: t0 is just before the member sends POST /v1/flags with a
//     submission it signed beforehand. The latency covers the whole
//     placement — the request, the bearer and submission checks, signing
//     the record, the durable commit of record, log entry and outbox rows —
//     and the fan-out: the dispatcher signing each delivery (HMAC and
//     Ed25519) and POSTing it on a kept-alive connection. (The dispatcher
//     is woken as soon as the commit is durable, before the 201 is
//     written: the 201 is no start line.)
//   - The baseline: t0 is just before it commits the same record bytes to a
//     raw bbolt file (one fsync: a hub may not send an event it could
//     still lose), after which it POSTs them, unsigned, to every receiver
//     at once on a shared keep-alive client. It is the least any hub that
//     keeps what it sends must do; the ratio is what the rest costs.
//
// Sustained deliveries/s: the hub, from just before the first of
// [sustainedPlacements] placements (sent 8 at a time) until every receiver
// has every one; the baseline, from just before it commits the same bodies
// (one transaction, one fsync) until it has POSTed each to every receiver,
// one stream per receiver as the hub keeps, each answered 202.
func propagateTo(ctx context.Context, cfg *Config, n int) ([]Row, error) {
	h, err := startHub(cfg)
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
	raw, err := bolt.Open(filepath.Join(cfg.Dir, fmt.Sprintf("fanout-%d.db", n)), 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		return nil, err
	}
	defer func() { raw.Close(); os.Remove(raw.Path()) }()
	events, sustained := cfg.Events, sustainedPlacements(cfg.Events, n)
	fmt.Fprintf(cfg.Progress, "   %d receivers, %d events a run one at a time, %d sustained\n", n, events, sustained)
	var samples [][]byte // bodies the hub delivered, for the baseline to send
	// The baseline keeps a connection to every receiver, as the hub does:
	// no limit on idle connections in all (with one, the transport drops
	// connections a request is about to reuse, and the request fails).
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 2, MaxIdleConns: 0}}
	defer client.CloseIdleConnections()
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
	epoch := h.keys.Token.Epoch()
	// place places a flag and returns its record.
	place := func(body []byte) (*protocol.Record, []byte, error) {
		resp, err := origin.do(http.MethodPost, "/v1/flags", "application/jose", body, http.StatusCreated)
		if err != nil {
			return nil, nil, err
		}
		var placed struct {
			Record string `json:"record"`
		}
		if err := json.Unmarshal(resp, &placed); err != nil {
			return nil, nil, err
		}
		rec, err := protocol.VerifyRecord([]byte(placed.Record), h.keys.JWKS())
		return rec, []byte(placed.Record), err
	}
	system := func() (map[string]float64, error) {
		// One event at a time: latency.
		var lats []time.Duration
		for range events {
			body, err := origin.placeFlag(randomToken(epoch))
			if err != nil {
				return nil, err
			}
			t0 := time.Now()
			rec, jws, err := place(body)
			if err != nil {
				return nil, err
			}
			last, err := waitAll(func(c *counter) string { return protocol.DeliveryID(rec.ID, c.member) })
			if err != nil {
				return nil, err
			}
			lats = append(lats, last.Sub(t0))
			if len(samples) < events {
				samples = append(samples, jws)
			}
		}
		// As fast as the hub takes them: sustained deliveries.
		bodies := make([][]byte, sustained)
		for i := range bodies {
			if bodies[i], err = origin.placeFlag(randomToken(epoch)); err != nil {
				return nil, err
			}
		}
		ids := make([]string, sustained)
		start := time.Now()
		var wg sync.WaitGroup
		var firstErr atomic.Value
		sem := make(chan struct{}, 8)
		for i, b := range bodies {
			sem <- struct{}{}
			wg.Go(func() {
				defer func() { <-sem }()
				rec, _, err := place(b)
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
				if _, err := c.wait(ctx, 5*time.Minute, protocol.DeliveryID(id, c.member)); err != nil {
					return nil, err
				}
			}
		}
		rate := float64(sustained*n) / time.Since(start).Seconds()
		return map[string]float64{"p50": percentile(lats, 50), "p99": percentile(lats, 99), "rate": rate}, nil
	}
	run := 0
	var seq uint64
	baseline := func() (map[string]float64, error) {
		run++
		if len(samples) == 0 {
			return nil, fmt.Errorf("no delivered bodies to send")
		}
		var sent, failed atomic.Int64
		var firstErr atomic.Value
		send := func(c *counter, id string, body []byte) {
			sent.Add(1)
			if err := deliver(client, c.url, id, body); err != nil {
				failed.Add(1)
				firstErr.CompareAndSwap(nil, err)
			}
		}
		keep := func(bodies ...[]byte) error {
			return raw.Update(func(tx *bolt.Tx) error {
				b, err := tx.CreateBucketIfNotExists([]byte("events"))
				if err != nil {
					return err
				}
				for _, body := range bodies {
					seq++
					if err := b.Put(binary.BigEndian.AppendUint64(nil, seq), body); err != nil {
						return err
					}
				}
				return nil
			})
		}
		var lats []time.Duration
		for i := range events {
			body := samples[i%len(samples)]
			id := fmt.Sprintf("base-%d-%d", run, i)
			t0 := time.Now()
			if err := keep(body); err != nil {
				return nil, err
			}
			var wg sync.WaitGroup
			for _, c := range counters {
				wg.Go(func() { send(c, protocol.DeliveryID(id, c.member), body) })
			}
			wg.Wait()
			if failed.Load() > 0 {
				break
			}
			last, err := waitAll(func(c *counter) string { return protocol.DeliveryID(id, c.member) })
			if err != nil {
				return nil, err
			}
			lats = append(lats, last.Sub(t0))
		}
		if failed.Load() == 0 {
			bodies := make([][]byte, sustained)
			for i := range bodies {
				bodies[i] = samples[i%len(samples)]
			}
			start := time.Now()
			if err := keep(bodies...); err != nil {
				return nil, err
			}
			var wg sync.WaitGroup
			for _, c := range counters {
				wg.Go(func() { // one stream per receiver, as the hub keeps
					for i, body := range bodies {
						send(c, protocol.DeliveryID(fmt.Sprintf("base-sustained-%d-%d", run, i), c.member), body)
					}
				})
			}
			wg.Wait()
			if failed.Load() == 0 {
				rate := float64(sustained*n) / time.Since(start).Seconds()
				return map[string]float64{"p50": percentile(lats, 50), "p99": percentile(lats, 99), "rate": rate}, nil
			}
		}
		return nil, fmt.Errorf("raw fan-out: %d of %d deliveries failed; the first: %v", failed.Load(), sent.Load(), firstErr.Load())
	}
	sys, base, err := alternate(cfg.Runs, system, baseline)
	if err != nil {
		return nil, err
	}
	const baseName = "raw fan-out of the same bodies, after one raw bbolt commit"
	return []Row{
		row(fmt.Sprintf("one event to %d receivers, p50", n), "ms", false, sys, base, "p50", baseName),
		row(fmt.Sprintf("one event to %d receivers, p99", n), "ms", false, sys, base, "p99", baseName),
		row(fmt.Sprintf("sustained deliveries/s, %d receivers", n), "deliveries/s", true, sys, base, "rate", baseName),
	}, nil
}

// sustainedDeliveries is about how many deliveries a sustained
// propagation run makes: enough for the rate to settle, few enough that a
// wide fan-out does not take the run over.
const sustainedDeliveries = 10_000

// sustainedPlacements is how many placements a sustained propagation run
// to n receivers makes: events, or fewer where n is large, so that the run
// makes about [sustainedDeliveries] deliveries; never fewer than 20.
func sustainedPlacements(events, n int) int {
	return min(events, max(20, sustainedDeliveries/max(n, 1)))
}

// deliver POSTs a delivery body to a receiver as the raw fan-out does: no
// signature, and an error unless it answers 202.
func deliver(c *http.Client, url, webhookID string, body []byte) error {
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", protocol.DeliveryContentType)
	req.Header.Set("webhook-id", webhookID)
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		return fmt.Errorf("POST %s: %d %s", url, resp.StatusCode, b)
	}
	return nil
}
