package webhook

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
	"strings"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/sparr-dev/sparr/protocol"
	"github.com/sparr-dev/sparr/protocol/api"
)

// DefaultSchedule is when a failed delivery is tried again, counted from
// each failure: at once, then after 5 seconds, 5 minutes, 30 minutes, 2, 5,
// 10 and 10 hours. With the first attempt that makes nine attempts over
// about 27.6 hours; when the ninth fails the endpoint is paused.
var DefaultSchedule = []time.Duration{0, 5 * time.Second, 5 * time.Minute, 30 * time.Minute,
	2 * time.Hour, 5 * time.Hour, 10 * time.Hour, 10 * time.Hour}

// DefaultTimeout bounds one delivery attempt, the receiver's answer
// included, unless the hub is configured otherwise: 15 seconds, the
// Standard Webhooks recommendation, which receivers are written to.
const DefaultTimeout = 15 * time.Second

// DefaultConcurrency is how many deliveries to one endpoint are in flight
// at once by default: one, so that each member gets its events in order.
const DefaultConcurrency = 1

// DefaultJitter is the default [DispatcherConfig.Jitter].
const DefaultJitter = 0.1

// HubErrorWait is how long a member's deliveries wait after the hub could
// not sign one, unless its endpoint changes first (a rotation wakes them).
const HubErrorWait = time.Minute

// An Observer is told the outcome of every delivery attempt, for
// metrics: delivered, failed, dead-lettered or gone (see [Dispatcher]),
// with the time from sending to the receiver's answer; and skipped, with
// no latency, for a delivery whose record was erased before it went out.
// An attempt cut off because the dispatcher is closing is not an outcome
// and is not reported.
//
// It is told apart of the hub's own failures, which are not the
// receiver's: a delivery the hub could not sign ([HubSign]; no attempt
// was made) and a read or write of the outbox that failed ([HubStore]).
type Observer interface {
	Attempted(member, outcome string, latency time.Duration)
	HubFailed(member, stage string)
}

// noObserver is the Observer of a dispatcher configured without one.
type noObserver struct{}

func (noObserver) Attempted(string, string, time.Duration) {}
func (noObserver) HubFailed(string, string)                {}

// Stages of the hub's own failures, as an [Observer] is told them.
const (
	HubSign  = "sign"  // the hub could not sign a delivery
	HubStore = "store" // the hub could not read or record its outbox
)

// DispatcherConfig configures a [Dispatcher]. Outbox, Client and HubKey are
// required.
type DispatcherConfig struct {
	Outbox Outbox
	// Client is shared by every endpoint; it must not follow redirects
	// (see [TargetPolicy]) and should dial through a TargetPolicy.
	Client *http.Client
	// HubKey signs every attempt (v1a), beside the endpoint's secrets (v1).
	HubKey ed25519.PrivateKey
	// Schedule is the retry schedule: the wait before each retry after
	// consecutive failures, so len(Schedule)+1 attempts are made before
	// the endpoint is paused. Nil means DefaultSchedule; an empty one
	// pauses the endpoint at its first failure.
	Schedule []time.Duration
	// Jitter spreads each scheduled wait uniformly by up to ± this
	// fraction of it, so that receivers that failed together are not
	// retried together; nil means DefaultJitter, 0 turns jitter off, and
	// values outside [0, 1] are taken as the nearest bound.
	Jitter *float64
	// Timeout bounds one attempt, response included; default
	// DefaultTimeout.
	Timeout time.Duration
	// Concurrency is how many deliveries to one endpoint may be in flight
	// at once; default 1, which keeps each member's deliveries in sequence
	// order.
	Concurrency int
	// MaxRetryAfter caps a receiver's Retry-After; default 24 h.
	MaxRetryAfter time.Duration
	Now           func() time.Time
	Logger        *slog.Logger
	Observer      Observer
	// Tracer makes a span of every attempt; nil makes none.
	Tracer trace.Tracer
}

// TracerName names the instrumentation scope of a dispatcher's spans.
const TracerName = "github.com/sparr-dev/sparr/federation/webhook"

// A Dispatcher drains the outbox: one worker per endpoint, so that a member
// that hangs, fails or answers slowly delays only its own deliveries.
//
// Outcomes: any 2xx is delivered. No answer (a timeout, a refused or reset
// connection), 408, 429, any 5xx, and a redirect (3xx, never followed: a
// receiver that redirects is misconfigured rather than refusing the event)
// fail, and are retried on the schedule, or after the receiver's
// Retry-After if it sent one; when the schedule runs out the endpoint is
// paused, its deliveries kept. 410 Gone disables the endpoint. Any other
// status dead-letters that delivery, and the next goes out.
//
// A delivery the hub cannot sign (a secret it cannot use, more signatures
// than a webhook-signature may carry) is the hub's failure, not the
// receiver's: no attempt is made, nothing is recorded, the endpoint's
// failures are not counted, and it is logged as an error and observed as
// a hub failure. The member's deliveries wait [HubErrorWait], or until its
// endpoint changes, and the delivery is tried again as it was.
type Dispatcher struct {
	cfg    DispatcherConfig
	jitter float64

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
	jitter := DefaultJitter
	if cfg.Jitter != nil {
		jitter = min(max(*cfg.Jitter, 0), 1)
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = DefaultConcurrency
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
	if cfg.Observer == nil {
		cfg.Observer = noObserver{}
	}
	if cfg.Tracer == nil {
		cfg.Tracer = noop.NewTracerProvider().Tracer(TracerName)
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Dispatcher{cfg: cfg, jitter: jitter, ctx: ctx, cancel: cancel, workers: make(map[string]chan struct{})}
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
	for {
		wait, done := d.round(member)
		if done {
			if d.retire(member, wake) {
				return
			}
			continue
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
	}
}

// retire removes the member's worker, unless a wake-up is pending:
// Notify signals under the lock, so a wake-up sent before retire takes the
// lock is seen here (and the worker looks again), and one sent after
// starts a new worker. Closing retires every worker.
func (d *Dispatcher) retire(member string, wake chan struct{}) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.ctx.Err() == nil {
		select {
		case <-wake:
			return false
		default:
		}
	}
	delete(d.workers, member)
	return true
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
	hubFailed := func() { d.cfg.Observer.HubFailed(member, HubStore) }
	for d.ctx.Err() == nil {
		ep, err := d.cfg.Outbox.Endpoint(member)
		if errors.Is(err, ErrNoEndpoint) {
			return 0, true
		}
		if err != nil {
			log.Error("reading the endpoint failed; trying again in a second", "error", err)
			hubFailed()
			return time.Second, false
		}
		if !ep.Queues() || ep.Polled() {
			return 0, true
		}
		if ep.Status == api.EndpointPaused {
			return 0, false
		}
		if now := d.cfg.Now(); now.Before(ep.NextAttemptAt) {
			return ep.NextAttemptAt.Sub(now), false
		}
		rows, err := d.cfg.Outbox.Pending(member, 16*d.cfg.Concurrency)
		if err != nil {
			log.Error("reading queued deliveries failed; trying again in a second", "error", err)
			hubFailed()
			return time.Second, false
		}
		if len(rows) == 0 {
			return 0, false
		}
		rec := &recorder{outbox: d.cfg.Outbox}
		stop, held := false, false
		for i := 0; i < len(rows) && !stop; i += d.cfg.Concurrency {
			stop, held = d.window(ep, rows[i:min(i+d.cfg.Concurrency, len(rows))], rec, log)
		}
		if err := rec.wait(); err != nil {
			log.Error("recording a delivery failed; trying again in a second", "error", err)
			hubFailed()
			return time.Second, false
		}
		if held {
			return HubErrorWait, false
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

// window sends up to Concurrency deliveries at once and records their
// outcomes. It reports stop when the endpoint is to back off, pause or be
// disabled, when the dispatcher is closing, or when a record failed; and
// held (with stop) when the hub could not sign a delivery.
//
// Successes (and dead letters) are recorded before a failure or a 410:
// recorded after a failure, a success would clear its backoff; recorded
// after a 410, it would find its row dropped with the endpoint's queue,
// and its exchange-log entry would be lost.
//
// ep is the round's own copy of the endpoint, read once for all its
// windows: window keeps its Failures in step with what it records, as the
// store counts them (a success resets them, a retry or pause adds one),
// so that a failure after a success in an earlier window of the round
// counts afresh.
func (d *Dispatcher) window(ep *Endpoint, rows []Delivery, rec *recorder, log *slog.Logger) (stop, held bool) {
	attempts := make([]Attempt, len(rows))
	cut := make([]bool, len(rows))
	unsigned := make([]error, len(rows))
	var wg sync.WaitGroup
	for i, row := range rows {
		if row.Body == nil {
			continue
		}
		wg.Go(func() { attempts[i], cut[i], unsigned[i] = d.attempt(ep, row) })
	}
	wg.Wait()
	failed, gone := -1, -1
	for i, row := range rows {
		if row.Body == nil {
			log.Info("delivery skipped: its record was erased before it went out", "event", row.Seq, "record", row.Record)
			d.cfg.Observer.Attempted(ep.Member, "skipped", 0)
			rec.fail(d.cfg.Outbox.Skip(row))
			continue
		}
		if cut[i] {
			// Cut off by Close: not the receiver's failure. The delivery
			// stays queued as it was, to go out after a restart.
			stop = true
			continue
		}
		if err := unsigned[i]; err != nil {
			// Not sent: the receiver did nothing wrong. The delivery stays
			// queued as it was, and the endpoint's failures are not counted.
			log.Error("signing a delivery failed: the hub's own failure, not the receiver's; the delivery stays queued and the endpoint is not paused. A rotation of the endpoint's secret gives it one the hub can sign with",
				"event", row.Seq, "retry_in", HubErrorWait.String(), "error", err)
			d.cfg.Observer.HubFailed(ep.Member, HubSign)
			stop, held = true, true
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
		d.cfg.Observer.Attempted(ep.Member, outcome, a.Latency)
		switch outcome {
		case "delivered":
			rec.delivered(row, a)
			ep.Failures = 0 // the endpoint answers: count its failures afresh
		case "dead-lettered":
			rec.fail(d.cfg.Outbox.DeadLetter(row, a))
		case "gone":
			if gone < 0 {
				gone = i
			}
		default: // failed
			if failed < 0 {
				failed = i
			}
		}
	}
	if gone >= 0 || failed >= 0 {
		rec.wg.Wait()
	}
	switch {
	case gone >= 0:
		a := attempts[gone]
		rec.fail(d.cfg.Outbox.Disable(rows[gone], a, fmt.Sprintf("the receiver answered 410 Gone at %s; register the endpoint again to resume", a.At.Format(time.RFC3339))))
		return true, held
	case failed >= 0:
		row, a := rows[failed], attempts[failed]
		if ep.Failures >= len(d.cfg.Schedule) {
			rec.fail(d.cfg.Outbox.Pause(row, a, fmt.Sprintf("%d attempts failed, the last at %s: %s; fix the receiver, then resume the endpoint",
				ep.Failures+1, a.At.Format(time.RFC3339), attemptText(a))))
		} else {
			rec.fail(d.cfg.Outbox.Retry(row, a, d.next(ep.Failures, a)))
		}
		ep.Failures++
		return true, held
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return stop || rec.err != nil, held
}

// next returns when to try again after the failures-th consecutive
// failure: the receiver's Retry-After if it gave one, counted from its
// answer (the attempt's start plus its latency), otherwise the schedule,
// spread by the jitter.
func (d *Dispatcher) next(failures int, a Attempt) time.Time {
	if a.RetryAfter > 0 {
		return a.At.Add(a.Latency + min(a.RetryAfter, d.cfg.MaxRetryAfter))
	}
	return a.At.Add(jittered(d.cfg.Schedule[failures], d.jitter, rand.Float64()))
}

// jittered spreads wait by up to ± jitter of it: r, uniform in [0, 1),
// picks where in [wait·(1-jitter), wait·(1+jitter)).
func jittered(wait time.Duration, jitter, r float64) time.Duration {
	if wait <= 0 || jitter <= 0 {
		return wait
	}
	return time.Duration(float64(wait) * (1 + jitter*(2*r-1)))
}

// classify names an attempt's outcome: delivered (any 2xx), gone (410),
// dead-lettered (any other 4xx but 408 Request Timeout and 429 Too Many
// Requests), or failed (everything else: no answer, 408, 429, a 3xx
// redirect, which is not followed, any 5xx).
func classify(a Attempt) string {
	switch {
	case a.Status >= 200 && a.Status < 300:
		return "delivered"
	case a.Status == http.StatusGone:
		return "gone"
	case a.Status >= 400 && a.Status < 500 && a.Status != http.StatusRequestTimeout && a.Status != http.StatusTooManyRequests:
		return "dead-lettered"
	}
	return "failed"
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

// attempt makes one signed POST of a delivery. It reports cut if the
// attempt got no answer because the dispatcher is closing, and unsigned,
// with no attempt made, if the hub could not sign it.
//
// Each attempt is a span (client kind) of its own trace, whose
// traceparent the request carries, so that a receiver can join its own.
func (d *Dispatcher) attempt(ep *Endpoint, row Delivery) (a Attempt, cut bool, unsigned error) {
	now := d.cfg.Now()
	a = Attempt{At: now, URL: ep.URL}
	ctx, span := d.cfg.Tracer.Start(d.ctx, "webhook.deliver", trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(
		attribute.String("sparr.member", row.Member), attribute.Int64("sparr.seq", int64(row.Seq)), attribute.String("sparr.webhook_id", row.WebhookID)))
	defer func() {
		outcome := classify(a)
		switch {
		case unsigned != nil:
			outcome = "hub-error" // no attempt was made
		case cut:
			outcome = "cut" // the dispatcher is closing
		}
		span.SetAttributes(attribute.String("sparr.delivery.outcome", outcome))
		if a.Status != 0 {
			span.SetAttributes(attribute.Int("http.response.status_code", a.Status))
		}
		if outcome != "delivered" {
			span.SetStatus(codes.Error, "")
		}
		span.End()
	}()
	ctx, cancel := context.WithTimeout(ctx, d.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, ep.URL, bytes.NewReader(row.Body))
	if err != nil {
		a.Error = "bad endpoint URL: " + err.Error()
		return a, false, nil
	}
	req.Header.Set("Content-Type", protocol.DeliveryContentType)
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "sparr-hub/1")
	if ep.Authorization != "" {
		req.Header.Set("Authorization", ep.Authorization)
	}
	req.Header.Set(protocol.HeaderSequence, strconv.FormatUint(row.Seq, 10))
	req.Header.Set(protocol.HeaderPreviousSequence, strconv.FormatUint(row.PrevSeq, 10))
	if len(row.Via) > 0 {
		req.Header.Set(protocol.HeaderVia, strings.Join(row.Via, ","))
	}
	propagation.TraceContext{}.Inject(ctx, propagation.HeaderCarrier(req.Header))
	secrets, err := ep.SigningSecrets(now)
	if err != nil {
		return a, false, err
	}
	signer := protocol.WebhookSigner{Secrets: secrets, Keys: []ed25519.PrivateKey{d.cfg.HubKey}}
	if err := signer.SignRequest(req, row.WebhookID, now, row.Body); err != nil {
		return a, false, err
	}
	start := time.Now()
	resp, err := d.cfg.Client.Do(req)
	if err != nil {
		a.Latency = time.Since(start)
		a.Error = describe(err, d.cfg.Timeout)
		return a, d.ctx.Err() != nil, nil
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
	if ra := resp.Header.Get("Retry-After"); ra != "" && classify(a) == "failed" {
		a.RetryAfter, _ = protocol.ParseRetryAfter(ra, now.Add(a.Latency))
	}
	return a, false, nil
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
