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

	"github.com/sparr-dev/sparr/protocol"
	"github.com/sparr-dev/sparr/protocol/api"
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
	p := &propagation{n: n, events: cfg.Events, sustained: sustainedPlacements(cfg.Events, n)}
	defer p.close()
	if err := p.setUp(cfg); err != nil {
		return nil, err
	}
	fmt.Fprintf(cfg.Progress, "   %d receivers, %d events a run one at a time, %d sustained\n", n, p.events, p.sustained)
	sys, base, err := alternate(cfg.Runs,
		func() (map[string]float64, error) { return p.hubRun(ctx) },
		func() (map[string]float64, error) { return p.rawRun(ctx) })
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

// A propagation is what both sides of [propagateTo] share for n
// receivers: a hub with an origin member and the receivers subscribed,
// each a counter, and for the baseline a raw bbolt file and a client that
// keeps a connection to every receiver.
type propagation struct {
	n         int // receivers
	events    int // events a run times one at a time
	sustained int // placements a sustained run makes

	h        *hub
	origin   *member
	counters []*counter
	epoch    uint32 // of the hub's token key
	raw      *bolt.DB
	client   *http.Client

	samples [][]byte // bodies the hub delivered, for the baseline to send
	run     int      // baseline runs so far, to name their deliveries
	seq     uint64   // the last key the baseline committed in raw
}

// setUp starts the hub, adds the origin member, subscribes the receivers,
// and opens the baseline's raw bbolt file and client. [propagation.close]
// undoes what it made, also when it fails part way.
func (p *propagation) setUp(cfg *Config) error {
	var err error
	if p.h, err = startHub(cfg); err != nil {
		return err
	}
	if p.origin, err = p.h.addMember("bank-origin", api.RoleFlag); err != nil {
		return err
	}
	if p.counters, err = subscribe(p.h, p.n); err != nil {
		return err
	}
	p.raw, err = bolt.Open(filepath.Join(cfg.Dir, fmt.Sprintf("fanout-%d.db", p.n)), 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		return err
	}
	p.epoch = p.h.keys.Token.Epoch()
	// The baseline keeps a connection to every receiver, as the hub does:
	// no limit on idle connections in all (with one, the transport drops
	// connections a request is about to reuse, and the request fails).
	p.client = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 2, MaxIdleConns: 0}}
	return nil
}

// close closes what setUp made, the last first, and removes the raw file.
func (p *propagation) close() {
	if p.client != nil {
		p.client.CloseIdleConnections()
	}
	if p.raw != nil {
		p.raw.Close()
		os.Remove(p.raw.Path())
	}
	closeAll(p.counters)
	if p.h != nil {
		p.h.close()
	}
}

// hubRun is one system run: the latency of events placed one at a time,
// then the sustained rate.
func (p *propagation) hubRun(ctx context.Context) (map[string]float64, error) {
	lats, err := p.hubLatencies(ctx)
	if err != nil {
		return nil, err
	}
	rate, err := p.hubSustained(ctx)
	if err != nil {
		return nil, err
	}
	return map[string]float64{"p50": percentile(lats, 50), "p99": percentile(lats, 99), "rate": rate}, nil
}

// hubLatencies places one event at a time, each from a submission signed
// before its clock starts, and returns how long each took to reach the
// last receiver. It keeps the records delivered as samples for the
// baseline, up to one run's events.
func (p *propagation) hubLatencies(ctx context.Context) ([]time.Duration, error) {
	var lats []time.Duration
	for range p.events {
		body, err := p.origin.placeFlag(randomToken(p.epoch))
		if err != nil {
			return nil, err
		}
		t0 := time.Now()
		rec, jws, err := p.place(body)
		if err != nil {
			return nil, err
		}
		last, err := p.lastArrival(ctx, func(c *counter) string { return protocol.DeliveryID(rec.ID, c.member) })
		if err != nil {
			return nil, err
		}
		lats = append(lats, last.Sub(t0))
		if len(p.samples) < p.events {
			p.samples = append(p.samples, jws)
		}
	}
	return lats, nil
}

// hubSustained places the sustained run's events as fast as the hub takes
// them, from submissions signed beforehand, and returns the deliveries per
// second until every receiver has every one.
func (p *propagation) hubSustained(ctx context.Context) (float64, error) {
	bodies := make([][]byte, p.sustained)
	for i := range bodies {
		var err error
		if bodies[i], err = p.origin.placeFlag(randomToken(p.epoch)); err != nil {
			return 0, err
		}
	}
	start := time.Now()
	ids, err := p.placeAll(bodies)
	if err != nil {
		return 0, err
	}
	for _, c := range p.counters {
		for _, id := range ids {
			if _, err := c.wait(ctx, 5*time.Minute, protocol.DeliveryID(id, c.member)); err != nil {
				return 0, err
			}
		}
	}
	return float64(p.sustained*p.n) / time.Since(start).Seconds(), nil
}

// placeAll places the bodies 8 at a time and returns the ids of their
// records, in the bodies' order.
func (p *propagation) placeAll(bodies [][]byte) ([]string, error) {
	ids := make([]string, len(bodies))
	var wg sync.WaitGroup
	var firstErr atomic.Value
	sem := make(chan struct{}, 8)
	for i, b := range bodies {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			rec, _, err := p.place(b)
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
	return ids, nil
}

// place places a flag as the origin member and returns its record, both
// verified and as the signed bytes the hub answered with.
func (p *propagation) place(body []byte) (*protocol.Record, []byte, error) {
	resp, err := p.origin.place(context.Background(), body)
	if err != nil {
		return nil, nil, err
	}
	var placed api.WriteResponse
	if err := json.Unmarshal(resp, &placed); err != nil {
		return nil, nil, err
	}
	rec, err := protocol.VerifyRecord([]byte(placed.Record), p.h.keys.JWKS())
	return rec, []byte(placed.Record), err
}

// lastArrival waits until every receiver has the delivery ids names for
// it, and returns the latest time one of them arrived.
func (p *propagation) lastArrival(ctx context.Context, ids func(c *counter) string) (time.Time, error) {
	var last time.Time
	for _, c := range p.counters {
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

// rawRun is one baseline run: the latency of the hub's sample bodies
// committed and fanned out one at a time, then the sustained rate. It
// fails at the first failed delivery, saying how many failed.
func (p *propagation) rawRun(ctx context.Context) (map[string]float64, error) {
	p.run++
	if len(p.samples) == 0 {
		return nil, fmt.Errorf("no delivered bodies to send")
	}
	f := &rawFanout{client: p.client, counters: p.counters}
	lats, err := p.rawLatencies(ctx, f)
	if err != nil {
		return nil, err
	}
	rate, err := p.rawSustained(f)
	if err != nil {
		return nil, err
	}
	return map[string]float64{"p50": percentile(lats, 50), "p99": percentile(lats, 99), "rate": rate}, nil
}

// rawLatencies commits and fans out one sample at a time, and returns how
// long each took to reach the last receiver. An event with a failed
// delivery ends the run with [rawFanout.err].
func (p *propagation) rawLatencies(ctx context.Context, f *rawFanout) ([]time.Duration, error) {
	var lats []time.Duration
	for i := range p.events {
		body := p.samples[i%len(p.samples)]
		id := fmt.Sprintf("base-%d-%d", p.run, i)
		t0 := time.Now()
		if err := p.keep(body); err != nil {
			return nil, err
		}
		f.toEvery(id, body)
		if f.failed.Load() > 0 {
			return nil, f.err()
		}
		last, err := p.lastArrival(ctx, func(c *counter) string { return protocol.DeliveryID(id, c.member) })
		if err != nil {
			return nil, err
		}
		lats = append(lats, last.Sub(t0))
	}
	return lats, nil
}

// rawSustained commits the sustained run's bodies in one transaction,
// POSTs each to every receiver, one stream per receiver as the hub keeps,
// and returns the deliveries per second. A failed delivery ends the run
// with [rawFanout.err].
func (p *propagation) rawSustained(f *rawFanout) (float64, error) {
	bodies := make([][]byte, p.sustained)
	for i := range bodies {
		bodies[i] = p.samples[i%len(p.samples)]
	}
	start := time.Now()
	if err := p.keep(bodies...); err != nil {
		return 0, err
	}
	var wg sync.WaitGroup
	for _, c := range p.counters {
		wg.Go(func() { // one stream per receiver, as the hub keeps
			for i, body := range bodies {
				f.send(c, protocol.DeliveryID(fmt.Sprintf("base-sustained-%d-%d", p.run, i), c.member), body)
			}
		})
	}
	wg.Wait()
	if f.failed.Load() > 0 {
		return 0, f.err()
	}
	return float64(p.sustained*p.n) / time.Since(start).Seconds(), nil
}

// keep commits bodies to the raw bbolt file in one transaction: one
// fsync, as a hub may not send an event it could still lose.
func (p *propagation) keep(bodies ...[]byte) error {
	return p.raw.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists([]byte("events"))
		if err != nil {
			return err
		}
		for _, body := range bodies {
			p.seq++
			if err := b.Put(binary.BigEndian.AppendUint64(nil, p.seq), body); err != nil {
				return err
			}
		}
		return nil
	})
}

// A rawFanout POSTs the baseline's deliveries with [deliver], and counts
// those sent and those that failed, keeping the first failure.
type rawFanout struct {
	client   *http.Client
	counters []*counter

	sent, failed atomic.Int64
	firstErr     atomic.Value
}

// send POSTs one delivery to one receiver.
func (f *rawFanout) send(c *counter, id string, body []byte) {
	f.sent.Add(1)
	if err := deliver(f.client, c.url, id, body); err != nil {
		f.failed.Add(1)
		f.firstErr.CompareAndSwap(nil, err)
	}
}

// err says how many deliveries failed, of how many sent, and the first
// failure.
func (f *rawFanout) err() error {
	return fmt.Errorf("raw fan-out: %d of %d deliveries failed; the first: %v", f.failed.Load(), f.sent.Load(), f.firstErr.Load())
}

// toEvery POSTs one event's body to every receiver at once, and returns
// when all have answered.
func (f *rawFanout) toEvery(id string, body []byte) {
	var wg sync.WaitGroup
	for _, c := range f.counters {
		wg.Go(func() { f.send(c, protocol.DeliveryID(id, c.member), body) })
	}
	wg.Wait()
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
