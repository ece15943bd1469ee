package federation

import (
	"bytes"
	"cmp"
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/sparr-dev/sparr/protocol"
)

// DefaultSchedule is when a failed delivery is tried again, counted from
// each failure: at once, then after 5 seconds, 5 minutes, 30 minutes, 2, 5,
// 10 and 10 hours. When it runs out the endpoint is paused.
var DefaultSchedule = []time.Duration{0, 5 * time.Second, 5 * time.Minute, 30 * time.Minute,
	2 * time.Hour, 5 * time.Hour, 10 * time.Hour, 10 * time.Hour}

// A DeliveryObserver is told the outcome of every delivery attempt, for
// metrics.
type DeliveryObserver interface {
	Attempted(member, outcome string, latency time.Duration)
}

// DispatcherConfig configures a [Dispatcher]. Outbox, Client and HubKey are
// required.
type DispatcherConfig struct {
	Outbox Outbox
	// Client is shared by every endpoint; it must not follow redirects
	// (see [TargetPolicy]) and should dial through a TargetPolicy.
	Client *http.Client
	// HubKey signs every attempt (v1a), beside the endpoint's secrets (v1).
	HubKey ed25519.PrivateKey
	// Schedule is the retry schedule; nil means DefaultSchedule. Tests
	// compress it.
	Schedule []time.Duration
	// Jitter spreads each retry by up to ± this fraction; default 0.1.
	Jitter float64
	// Timeout bounds one attempt, response included; default 10 s.
	Timeout time.Duration
	// Concurrency is how many deliveries to one endpoint may be in flight
	// at once; default 1, which keeps each member's deliveries in sequence
	// order.
	Concurrency int
	// MaxRetryAfter caps a receiver's Retry-After; default 24 h.
	MaxRetryAfter time.Duration
	Now           func() time.Time
	Logger        *slog.Logger
	Observer      DeliveryObserver
}

// A Dispatcher drains the outbox: one worker per endpoint, so that a member
// that hangs, fails or answers slowly delays only its own deliveries.
type Dispatcher struct {
	cfg DispatcherConfig

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu      sync.Mutex
	workers map[string]chan struct{} // member → wake-up signal
}

// NewDispatcher returns a dispatcher; Start sets it going.
func NewDispatcher(cfg DispatcherConfig) *Dispatcher {
	if cfg.Schedule == nil {
		cfg.Schedule = DefaultSchedule
	}
	if cfg.Jitter == 0 {
		cfg.Jitter = 0.1
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 10 * time.Second
	}
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = 1
	}
	if cfg.MaxRetryAfter == 0 {
		cfg.MaxRetryAfter = 24 * time.Hour
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Dispatcher{cfg: cfg, ctx: ctx, cancel: cancel, workers: make(map[string]chan struct{})}
}

// Start starts a worker for every endpoint that has deliveries queued or
// may get some. Deliveries left from before a restart go out first.
func (d *Dispatcher) Start() error {
	eps, err := d.cfg.Outbox.Endpoints()
	if err != nil {
		return fmt.Errorf("dispatcher: list endpoints: %w", err)
	}
	for _, e := range eps {
		if e.Queues() {
			d.Notify(e.Member)
		}
	}
	return nil
}

// Notify wakes the member's worker, starting one if needed: new
// deliveries were queued for it, or its endpoint changed.
func (d *Dispatcher) Notify(member string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.ctx.Err() != nil {
		return
	}
	wake, ok := d.workers[member]
	if !ok {
		wake = make(chan struct{}, 1)
		d.workers[member] = wake
		d.wg.Add(1)
		go func() {
			defer d.wg.Done()
			d.work(member, wake)
		}()
	}
	select {
	case wake <- struct{}{}:
	default:
	}
}

// Close stops every worker and waits for attempts in flight to end.
func (d *Dispatcher) Close() {
	d.cancel()
	d.wg.Wait()
}

// work delivers one member's queue until the dispatcher closes or the
// endpoint is gone.
func (d *Dispatcher) work(member string, wake chan struct{}) {
	defer func() {
		d.mu.Lock()
		delete(d.workers, member)
		d.mu.Unlock()
	}()
	for {
		wait, done := d.round(member)
		if done {
			return
		}
		var timer *time.Timer
		var fire <-chan time.Time
		if wait > 0 {
			timer = time.NewTimer(wait)
			fire = timer.C
		}
		select {
		case <-d.ctx.Done():
		case <-wake:
		case <-fire:
		}
		if timer != nil {
			timer.Stop()
		}
		if d.ctx.Err() != nil {
			return
		}
	}
}

// round delivers what it can of the member's queue. It returns how long to
// sleep before the next round (0: until woken), or done when the worker
// should stop.
//
// Successful deliveries are recorded while the next ones go out: delivery
// is at-least-once with a stable webhook-id, so a crash before a record is
// durable only means the receiver sees that delivery again, and an
// endpoint's throughput is not held to one fsync per delivery. The round
// waits for every record before it reads the queue again.
func (d *Dispatcher) round(member string) (wait time.Duration, done bool) {
	log := d.cfg.Logger.With("member", member)
	for d.ctx.Err() == nil {
		ep, err := d.cfg.Outbox.Endpoint(member)
		if err != nil || !ep.Queues() {
			return 0, true
		}
		if ep.Status == EndpointPaused {
			return 0, false
		}
		if now := d.cfg.Now(); now.Before(ep.NextAttemptAt) {
			return ep.NextAttemptAt.Sub(now), false
		}
		rows, err := d.cfg.Outbox.Pending(member, 16*d.cfg.Concurrency)
		if err != nil {
			log.Error("reading queued deliveries failed", "error", err)
			return time.Second, false
		}
		if len(rows) == 0 {
			return 0, false
		}
		rec := &recorder{outbox: d.cfg.Outbox}
		stop := false
		for i := 0; i < len(rows) && !stop; i += d.cfg.Concurrency {
			stop = d.window(ep, rows[i:min(i+d.cfg.Concurrency, len(rows))], rec)
		}
		if err := rec.wait(); err != nil {
			log.Error("recording a delivery failed", "error", err)
			return time.Second, false
		}
	}
	return 0, true
}

// A recorder records deliveries' outcomes: successes in the background,
// everything else at once.
type recorder struct {
	outbox Outbox
	wg     sync.WaitGroup
	mu     sync.Mutex
	err    error
}

func (r *recorder) fail(err error) {
	if err != nil {
		r.mu.Lock()
		r.err = cmp.Or(r.err, err)
		r.mu.Unlock()
	}
}

func (r *recorder) delivered(row Delivery, a Attempt) {
	r.wg.Go(func() { r.fail(r.outbox.Delivered(row, a)) })
}

func (r *recorder) wait() error {
	r.wg.Wait()
	return r.err
}

// window sends up to Concurrency deliveries at once and records each
// outcome in sequence order. It reports stop when the endpoint is to back
// off, pause or be disabled, or a record failed.
func (d *Dispatcher) window(ep *Endpoint, rows []Delivery, rec *recorder) (stop bool) {
	attempts := make([]Attempt, len(rows))
	var wg sync.WaitGroup
	for i, row := range rows {
		if row.Body == nil {
			continue
		}
		wg.Go(func() { attempts[i] = d.attempt(ep, row) })
	}
	wg.Wait()
	for i, row := range rows {
		if row.Body == nil {
			rec.fail(d.cfg.Outbox.Skip(row))
			continue
		}
		a := attempts[i]
		outcome := classify(a)
		if outcome == "dead-lettered" && row.Type == protocol.EventVerification {
			// A receiver that refuses the verification event is most likely
			// not set up yet (it has just been given its secret): try
			// again on the schedule rather than give up on it.
			outcome = "failed"
		}
		if d.cfg.Observer != nil {
			d.cfg.Observer.Attempted(ep.Member, outcome, a.Latency)
		}
		switch outcome {
		case "delivered":
			rec.delivered(row, a)
		case "dead-lettered":
			rec.fail(d.cfg.Outbox.DeadLetter(row, a))
		case "gone":
			rec.fail(d.cfg.Outbox.Disable(row, a, fmt.Sprintf("the receiver answered 410 Gone at %s; register the endpoint again to resume", a.At.Format(time.RFC3339))))
			return true
		default: // failed
			if stop {
				continue // the endpoint already backs off for an earlier row
			}
			stop = true
			// The successes before it are recorded first: recorded after
			// it, a success would clear its backoff and failure count.
			rec.wg.Wait()
			if ep.Failures >= len(d.cfg.Schedule) {
				rec.fail(d.cfg.Outbox.Pause(row, a, fmt.Sprintf("%d attempts failed, the last at %s: %s; fix the receiver, then resume the endpoint",
					ep.Failures+1, a.At.Format(time.RFC3339), attemptText(a))))
			} else {
				rec.fail(d.cfg.Outbox.Retry(row, a, d.next(ep.Failures, a)))
			}
		}
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return stop || rec.err != nil
}

// next returns when to try again after the failures-th consecutive
// failure: the receiver's Retry-After if it gave one, otherwise the
// schedule, spread by the jitter.
func (d *Dispatcher) next(failures int, a Attempt) time.Time {
	if a.RetryAfter > 0 {
		return a.At.Add(min(a.RetryAfter, d.cfg.MaxRetryAfter))
	}
	wait := d.cfg.Schedule[failures]
	if wait > 0 && d.cfg.Jitter > 0 {
		wait = time.Duration(float64(wait) * (1 + d.cfg.Jitter*(2*rand.Float64()-1)))
	}
	return a.At.Add(wait)
}

// classify names an attempt's outcome: delivered (any 2xx), gone (410),
// failed (no answer, 429, 5xx, or a redirect, which is not followed), or
// dead-lettered (any other status).
func classify(a Attempt) string {
	switch {
	case a.Status >= 200 && a.Status < 300:
		return "delivered"
	case a.Status == http.StatusGone:
		return "gone"
	case a.Status == 0 || a.Status == http.StatusTooManyRequests || a.Status == http.StatusRequestTimeout ||
		a.Status >= 500 || (a.Status >= 300 && a.Status < 400):
		return "failed"
	}
	return "dead-lettered"
}

func attemptText(a Attempt) string {
	switch {
	case a.Status != 0 && a.Error != "":
		return fmt.Sprintf("HTTP %d (%s)", a.Status, a.Error)
	case a.Status != 0:
		return fmt.Sprintf("HTTP %d", a.Status)
	}
	return a.Error
}

// maxResponse is how much of a receiver's answer is kept.
const maxResponse = 2048

// attempt makes one signed POST of a delivery.
func (d *Dispatcher) attempt(ep *Endpoint, row Delivery) Attempt {
	now := d.cfg.Now()
	a := Attempt{At: now}
	ctx, cancel := context.WithTimeout(d.ctx, d.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, ep.URL, bytes.NewReader(row.Body))
	if err != nil {
		a.Error = "bad endpoint URL: " + err.Error()
		return a
	}
	req.Header.Set("Content-Type", protocol.DeliveryContentType)
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "sparr-hub/1")
	req.Header.Set(protocol.HeaderSequence, strconv.FormatUint(row.Seq, 10))
	req.Header.Set(protocol.HeaderPreviousSequence, strconv.FormatUint(row.PrevSeq, 10))
	signer := protocol.WebhookSigner{Secrets: ep.SigningSecrets(now), Keys: []ed25519.PrivateKey{d.cfg.HubKey}}
	if err := signer.SignRequest(req, row.WebhookID, now, row.Body); err != nil {
		a.Error = "signing failed: " + err.Error()
		return a
	}
	start := time.Now()
	resp, err := d.cfg.Client.Do(req)
	if err != nil {
		a.Latency = time.Since(start)
		a.Error = describe(err, d.cfg.Timeout)
		return a
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse))
	a.Latency = time.Since(start)
	a.Status = resp.StatusCode
	a.Response = string(body)
	if err != nil && a.Status >= 200 && a.Status < 300 {
		// A receiver that acknowledged but could not finish its answer
		// (a slow drip past the timeout) did get the delivery.
		a.Error = ""
	}
	if a.Status >= 300 && a.Status < 400 {
		a.Error = "redirects are not followed; register the final URL"
	}
	if ra := resp.Header.Get("Retry-After"); ra != "" && (a.Status == http.StatusTooManyRequests || a.Status == http.StatusServiceUnavailable) {
		a.RetryAfter = parseRetryAfter(ra, now)
	}
	return a
}

// describe turns a transport error into a sentence for the member.
func describe(err error, timeout time.Duration) string {
	if errors.Is(err, context.DeadlineExceeded) {
		return fmt.Sprintf("no answer within %s", timeout)
	}
	if errors.Is(err, ErrTargetRefused) {
		return err.Error()
	}
	var ue interface{ Unwrap() error }
	if errors.As(err, &ue) && ue.Unwrap() != nil {
		return ue.Unwrap().Error()
	}
	return err.Error()
}

// parseRetryAfter reads a Retry-After header: seconds, or an HTTP date.
func parseRetryAfter(v string, now time.Time) time.Duration {
	if s, err := strconv.Atoi(v); err == nil && s >= 0 {
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}
