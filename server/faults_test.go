package server_test

import (
	"cmp"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sparr-dev/sparr/client"
	"github.com/sparr-dev/sparr/protocol"
	"github.com/sparr-dev/sparr/protocol/api"
	"github.com/sparr-dev/sparr/server"
	"github.com/sparr-dev/sparr/server/hubtest"
)

// A fault is how one misbehaving member's receiver answers deliveries,
// once it has been verified.
type fault int

const (
	faultNone  fault = iota // answers 202 once it has verified the delivery
	faultHang               // never answers
	fault500                // answers 500
	faultReset              // resets the connection
	faultDrip               // answers 202, then drips its body a byte every 100 ms
	fault429                // answers 429 with Retry-After now and then
	fault410                // answers 410 Gone
)

func (f fault) String() string {
	return [...]string{"healthy", "hangs", "answers 500", "resets", "drips", "answers 429", "answers 410"}[f]
}

// faultMix is the misbehaving tenth of the receivers of the faulty run.
var faultMix = []fault{faultHang, faultHang, fault500, fault500, faultReset, faultReset, faultDrip, fault429, fault429, fault410}

// faultDelivery is the delivery configuration of every run: a timeout
// long beside the healthy receivers' latency even under the race detector
// on two busy cores (where it reaches a few seconds when the machine is
// shared), so that a delivery that took it can only have waited for it;
// and a compressed schedule of two retries, so that the hung receivers run
// it out in three timeouts.
var faultDelivery = server.Delivery{Schedule: []time.Duration{0, 20 * time.Millisecond}, Timeout: 8 * time.Second}

const (
	faultReceivers = 100
	faultEvents    = 50
	// The flags come from faultPlacers goroutines, faultRate a second in
	// all: a steady stream the hub keeps up with even under the race
	// detector on two cores, so that what the latency shows is waiting,
	// not a backlog of the test's own making.
	faultPlacers = 5
	faultRate    = 5
	// retryAfter is what a rate-limiting receiver asks the hub to wait.
	retryAfter = time.Second
)

// TestMemberFaults places a stream of flags on a hub with 100 receivers,
// of which ten misbehave, and checks what the delivery rules promise: every
// healthy receiver gets every event, promptly, however the others fail;
// each misbehaving one ends where the rules put it. It measures the
// healthy receivers' propagation latency beside an all-healthy run of the
// same shape, after a shorter all-healthy run that warms the process up
// (the first hub of a test binary pays for code paths, heap growth and
// goroutine stacks), so that neither measured run pays for that.
func TestMemberFaults(t *testing.T) {
	if testing.Short() {
		t.Skip("runs three hubs with 100 receivers each")
	}
	start := time.Now()
	runFaults(t, "warm-up", nil, faultEvents/5)
	base := runFaults(t, "all healthy", nil, faultEvents)
	faulty := runFaults(t, "ten faulty", faultMix, faultEvents)

	b50, b99 := latencyQuantile(base.latencies, 0.50), latencyQuantile(base.latencies, 0.99)
	f50, f99 := latencyQuantile(faulty.latencies, 0.50), latencyQuantile(faulty.latencies, 0.99)
	t.Logf("propagation to healthy receivers, from the placement's request to the verified delivery (%d events, %d receivers):", faultEvents, faultReceivers)
	t.Logf("  all healthy:  p50 %v  p99 %v  (%d deliveries, %d reached the %v delivery timeout)",
		b50, b99, len(base.latencies), len(base.reached(faultDelivery.Timeout)), faultDelivery.Timeout)
	t.Logf("  ten faulty:   p50 %v  p99 %v  (%d deliveries to the 90 healthy, %d reached the timeout)",
		f50, f99, len(faulty.latencies), len(faulty.reached(faultDelivery.Timeout)))
	t.Logf("  ratio:        p50 %.2f  p99 %.2f;  whole test %v", ratio(f50, b50), ratio(f99, b99), time.Since(start).Round(time.Millisecond))

	// Latency is measured here, not asserted: on a loaded machine any
	// delivery can take the timeout. That no receiver waits for a hung
	// one is TestHungReceiverHoldsUpNoOne's, which does not depend on
	// time. The slowest deliveries are logged for whoever reads a run.
	if late := faulty.reached(faultDelivery.Timeout); len(late) > 0 {
		t.Logf("%d deliveries to healthy receivers beside hung ones took the %v delivery timeout or longer:\n%s\nthe slowest of the all-healthy run:\n%s",
			len(late), faultDelivery.Timeout, strings.Join(late, "\n"), base.slowest(5))
	}
}

// faultRun is what one run measured: the latency of every event to every
// healthy receiver.
type faultRun struct {
	latencies []time.Duration
	samples   []latencySample
}

// A latencySample is one event's latency to one receiver.
type latencySample struct {
	d    time.Duration
	what string
}

// reached describes the deliveries that took d or longer.
func (r faultRun) reached(d time.Duration) []string {
	var out []string
	for _, x := range r.samples {
		if x.d >= d {
			out = append(out, fmt.Sprintf("  %v: %s", x.d, x.what))
		}
	}
	return out
}

// slowest describes the n slowest deliveries.
func (r faultRun) slowest(n int) string {
	s := slices.SortedFunc(slices.Values(r.samples), func(a, b latencySample) int { return cmp.Compare(b.d, a.d) })
	var lines []string
	for _, x := range s[:min(n, len(s))] {
		lines = append(lines, fmt.Sprintf("  %v: %s", x.d, x.what))
	}
	return strings.Join(lines, "\n")
}

// runFaults starts a hub with faultReceivers receivers, the first of each
// ten misbehaving as mix says, places events flags from a few goroutines,
// and checks every receiver's outcome.
func runFaults(t *testing.T, name string, mix []fault, events int) faultRun {
	t.Helper()
	began := time.Now()
	hub := hubtest.Start(t, hubtest.Options{Delivery: faultDelivery, Limits: unlimited})
	origin := hub.AddMember(t, "bank-origin", api.RoleFlag)
	kinds := make([]fault, faultReceivers)
	for i := range kinds {
		if i%10 == 0 && i/10 < len(mix) {
			kinds[i] = mix[i/10]
		}
	}
	members := make([]*hubtest.Member, faultReceivers)
	receivers := make([]*hubtest.Receiver, faultReceivers)
	dripperOf := map[int]*dripReceiver{}
	for i, k := range kinds {
		members[i] = hub.AddMember(t, fmt.Sprintf("bank-%03d", i), api.RoleCheck)
		if k == faultDrip {
			dripperOf[i] = newDripReceiver(t, hub, members[i])
			continue
		}
		receivers[i] = hub.NewReceiver(t, members[i])
		receivers[i].Register(t)
	}
	for i, r := range receivers {
		if r != nil {
			r.WaitEvent(t, wait, protocol.EventVerification)
		} else {
			dripperOf[i].waitFor(t, 1)
		}
	}
	for _, m := range members {
		waitEndpoint(t, m, "verified", func(e api.Endpoint) bool { return e.Status == api.EndpointActive })
	}

	// Only now, verified, do the faulty ones start to misbehave.
	release := make(chan struct{})
	defer close(release)
	limited := map[int]*limiter{}
	for i, k := range kinds {
		switch k {
		case faultHang:
			receivers[i].Behave(func(_ int, _ http.ResponseWriter, r *http.Request) bool {
				select {
				case <-r.Context().Done():
				case <-release:
				}
				return true
			})
		case fault500:
			receivers[i].Behave(func(_ int, w http.ResponseWriter, _ *http.Request) bool {
				w.WriteHeader(http.StatusInternalServerError)
				return true
			})
		case faultReset:
			receivers[i].Behave(func(_ int, w http.ResponseWriter, _ *http.Request) bool {
				if conn, _, err := w.(http.Hijacker).Hijack(); err == nil {
					conn.(*net.TCPConn).SetLinger(0)
					conn.Close()
				}
				return true
			})
		case fault429:
			l := &limiter{}
			limited[i] = l
			receivers[i].Behave(l.behave)
		case fault410:
			receivers[i].Behave(func(_ int, w http.ResponseWriter, _ *http.Request) bool {
				w.WriteHeader(http.StatusGone)
				return true
			})
		}
	}

	sent := placeStream(t, hub, origin, events)
	flags := make([]string, 0, len(sent))
	var first time.Time
	for id, at := range sent {
		flags = append(flags, id)
		if first.IsZero() || at.Before(first) {
			first = at
		}
	}

	// Every healthy receiver gets every flag, once (a repeat only under the
	// same webhook-id), and nothing it refused. The latency of a delivery
	// is from just before the placement's request was sent: the hub starts
	// delivering once the placement is durable, before it answers.
	var run faultRun
	var firstRecord string // the record of the first flag placed, by sequence number
	var firstSeq uint64
	for i, r := range receivers {
		if kinds[i] != faultNone {
			continue
		}
		got := waitFlags(t, r.Member.ID, flags, r.Received, r.Invalid)
		for _, id := range flags {
			d := got[id].Sub(sent[id])
			run.latencies = append(run.latencies, d)
			run.samples = append(run.samples, latencySample{d, fmt.Sprintf("%s got flag %s, sent %v after the first", r.Member.ID, id, sent[id].Sub(first).Round(time.Millisecond))})
		}
		if firstRecord == "" {
			for _, g := range r.Received() {
				if _, ok := g.Record.Event.(protocol.FlagPlaced); ok && (firstRecord == "" || g.Seq < firstSeq) {
					firstRecord, firstSeq = g.Record.ID, g.Seq
				}
			}
		}
	}

	for i, k := range kinds {
		m := members[i]
		switch k {
		case faultHang, fault500, faultReset:
			// The schedule runs out: paused, with every event kept for it.
			e := waitEndpoint(t, m, "paused", func(e api.Endpoint) bool {
				return e.Status == api.EndpointPaused && e.Backlog == events
			})
			if e.Reason == "" || e.LastError == "" || e.Failures != len(faultDelivery.Schedule)+1 {
				t.Errorf("%s (%s): paused with reason %q, last error %q, %d failures; want a reason, the error and %d failures",
					m.ID, k, e.Reason, e.LastError, e.Failures, len(faultDelivery.Schedule)+1)
			}
			// One attempt and one per retry of the schedule, then no more.
			if n, want := receivers[i].Requests(), 1+len(faultDelivery.Schedule)+1; n != want {
				t.Errorf("%s (%s): %d requests, want the verification and %d attempts", m.ID, k, n, want-1)
			}
			// Every attempt was of the first flag, under its webhook-id: the
			// hub kept retrying the delivery it could not make, and never
			// went on to a later event.
			for j, hook := range receivers[i].Attempts()[1:] {
				if want := firstRecord + "_" + m.ID; hook != want {
					t.Errorf("%s (%s): attempt %d was of delivery %q, want %q (the first flag's) every time", m.ID, k, j+1, hook, want)
				}
			}
		case faultDrip:
			// It answered 202 before its body ended: delivered, every one,
			// even the one whose body outlasted the timeout.
			d := dripperOf[i]
			waitFlags(t, m.ID, flags, d.received, d.invalidDeliveries)
			drained(t, m, k)
			if n := d.cutOff(); n == 0 {
				t.Errorf("%s (%s): no answer was cut off by the timeout; the test did not drip long enough", m.ID, k)
			}
		case fault429:
			// Delivered, after waiting as long as it asked each time.
			waitFlags(t, m.ID, flags, receivers[i].Received, receivers[i].Invalid)
			drained(t, m, k)
			n, shortest := limited[i].waits()
			if n != limitedTimes || shortest < retryAfter-100*time.Millisecond {
				t.Errorf("%s (%s): the hub came back %d times after a 429, the soonest after %v; want %d times, each after at least the Retry-After of %v",
					m.ID, k, n, shortest, limitedTimes, retryAfter)
			}
		case fault410:
			// Disabled at once, its queue dropped, nothing queued since.
			e := waitEndpoint(t, m, "disabled", func(e api.Endpoint) bool { return e.Status == api.EndpointDisabled })
			if e.Backlog != 0 || e.Reason == "" {
				t.Errorf("%s (%s): disabled with backlog %d and reason %q, want none queued and a reason", m.ID, k, e.Backlog, e.Reason)
			}
			if got := receivers[i].Attempts(); len(got) != 2 || got[1] != firstRecord+"_"+m.ID {
				t.Errorf("%s (%s): got requests %q, want the verification and the first flag's delivery, answered 410", m.ID, k, got)
			}
		case faultNone:
			drained(t, m, k)
		}
	}
	t.Logf("%s: %d receivers, %d events, done in %v", name, faultReceivers, events, time.Since(began).Round(time.Millisecond))
	return run
}

// placeStream places events flags from faultPlacers goroutines, at
// faultRate a second, and returns when each flag's request was sent, by
// flag id.
func placeStream(t *testing.T, hub *hubtest.Hub, origin *hubtest.Member, events int) map[string]time.Time {
	t.Helper()
	values := make([]string, events)
	for i := range values {
		values[i] = fmt.Sprintf("fault%d@example.se", i)
	}
	toks := origin.Tokenize(t, protocol.TypeEmail, values...)
	bodies := make([][]byte, len(toks))
	for i, tok := range toks {
		bodies[i] = origin.Sign(t, protocol.PlaceFlag{Subject: tok, Kind: protocol.FlagKindStandard, Consent: origin.Consent(tok)})
	}
	c := origin.Client()
	var mu sync.Mutex
	sent := map[string]time.Time{}
	var errs []string
	var wg sync.WaitGroup
	gap := time.Second / faultRate
	began := time.Now()
	for p := range faultPlacers {
		wg.Go(func() {
			for i := p; i < len(bodies); i += faultPlacers {
				time.Sleep(time.Until(began.Add(time.Duration(i) * gap)))
				at := time.Now()
				resp, err := c.Raw(context.Background(), client.RawRequest{Method: http.MethodPost, Path: "/v1/flags", ContentType: "application/jose", Body: bodies[i]})
				if err != nil {
					mu.Lock()
					errs = append(errs, err.Error())
					mu.Unlock()
					continue
				}
				var placed flagResponse
				mu.Lock()
				if err := json.Unmarshal(resp.Body, &placed); resp.Status != http.StatusCreated || err != nil {
					errs = append(errs, fmt.Sprintf("status %d: %s", resp.Status, resp.Body))
				} else {
					sent[placed.Flag.FlagID] = at
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if len(errs) > 0 || len(sent) != events {
		t.Fatalf("placed %d flags, want %d; errors: %q", len(sent), events, errs)
	}
	return sent
}

// waitFlags waits until a receiver holds every flag, and checks that it
// holds each once (a repeat only under the same webhook-id) and refused
// nothing. It returns when each flag first arrived.
func waitFlags(t *testing.T, who string, flags []string, received func() []hubtest.Received, invalid func() []string) map[string]time.Time {
	t.Helper()
	deadline := time.Now().Add(wait)
	for {
		first := map[string]time.Time{}
		hooks := map[string]string{}
		var dups []string
		for _, g := range received() {
			ev, ok := g.Record.Event.(protocol.FlagPlaced)
			if !ok {
				if g.Record.Event.EventType() != protocol.EventVerification {
					t.Fatalf("%s got a %s, want only flags", who, g.Record.Event.EventType().Short())
				}
				continue
			}
			if h, seen := hooks[ev.FlagID]; seen {
				if h != g.WebhookID {
					dups = append(dups, fmt.Sprintf("flag %s under webhook-ids %s and %s", ev.FlagID, h, g.WebhookID))
				}
				continue
			}
			hooks[ev.FlagID], first[ev.FlagID] = g.WebhookID, g.At
		}
		if len(dups) > 0 {
			t.Fatalf("%s got a flag twice as different deliveries: %s", who, dups)
		}
		if len(first) == len(flags) {
			for _, id := range flags {
				if _, ok := first[id]; !ok {
					t.Fatalf("%s got %d flags, but not %s", who, len(first), id)
				}
			}
			if inv := invalid(); len(inv) > 0 {
				t.Errorf("%s refused deliveries: %q", who, inv)
			}
			return first
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: got %d of %d flags within %v", who, len(first), len(flags), wait)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// drained waits until a member's endpoint is active with nothing queued
// and no failure pending.
func drained(t *testing.T, m *hubtest.Member, k fault) {
	t.Helper()
	waitEndpoint(t, m, fmt.Sprintf("drained (%s)", k), func(e api.Endpoint) bool {
		return e.Status == api.EndpointActive && e.Backlog == 0 && e.Failures == 0
	})
}

// A limiter is a receiver that is over its own rate limit now and then:
// it answers 429 with Retry-After to the first flag, and again to the
// third request after the hub comes back, while the hub is catching up on
// the events that queued meanwhile (acknowledged ones just before it, more
// behind it), limitedTimes in all. It notes how long the hub waited each
// time before trying again.
type limiter struct {
	mu      sync.Mutex
	limited time.Time       // when it last answered 429; zero once the hub came back
	back    int             // requests since the hub came back
	waited  []time.Duration // from each 429 to the next request
}

const limitedTimes = 3

func (l *limiter) behave(n int, w http.ResponseWriter, _ *http.Request) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := time.Now()
	if !l.limited.IsZero() {
		l.waited = append(l.waited, now.Sub(l.limited))
		l.limited, l.back = time.Time{}, 0
	}
	l.back++
	first := n == 2 // n counts from the verification, 1
	again := len(l.waited) > 0 && len(l.waited) < limitedTimes && l.back == 3
	if !first && !again {
		return false
	}
	l.limited = now
	w.Header().Set("Retry-After", strconv.Itoa(int(retryAfter/time.Second)))
	w.WriteHeader(http.StatusTooManyRequests)
	return true
}

// waits returns how many times the hub came back after a 429, and the
// shortest it waited.
func (l *limiter) waits() (int, time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.waited) == 0 {
		return 0, 0
	}
	return len(l.waited), slices.Min(l.waited)
}

// A dripReceiver verifies each delivery as a member must (the HMAC with
// its secret and the hub's Ed25519 signature, then the record), keeps it,
// and only then answers: 202 at once, and its body a byte every 100 ms.
// Most answers end after a few bytes; the first flag's outlasts the hub's
// timeout.
type dripReceiver struct {
	srv       *httptest.Server
	jwks      *protocol.KeySet
	hubKey    ed25519.PublicKey
	mu        sync.Mutex
	secret    *protocol.WebhookSecret
	requests  int
	got       []hubtest.Received
	invalid   []string
	cut       int // answers the hub stopped reading
	delivered chan struct{}
}

func newDripReceiver(t *testing.T, hub *hubtest.Hub, m *hubtest.Member) *dripReceiver {
	t.Helper()
	key, err := protocol.ParseWebhookPublicKey(hub.Configuration().WebhookPublicKey)
	if err != nil {
		t.Fatal(err)
	}
	d := &dripReceiver{jwks: hub.JWKS(t), hubKey: key, delivered: make(chan struct{}, 1)}
	d.srv = httptest.NewServer(http.HandlerFunc(d.serve))
	t.Cleanup(d.srv.Close)
	resp := m.JSON(t, http.MethodPut, "/v1/members/self/endpoint", map[string]string{"url": d.srv.URL + "/events"})
	mustStatus(t, resp, http.StatusCreated)
	var out struct {
		Secret string `json:"secret"`
	}
	resp.JSON(t, &out)
	s, err := protocol.ParseWebhookSecret(out.Secret)
	if err != nil {
		t.Fatal(err)
	}
	d.mu.Lock()
	d.secret = &s
	d.mu.Unlock()
	return d
}

func (d *dripReceiver) serve(w http.ResponseWriter, r *http.Request) {
	d.mu.Lock()
	d.requests++
	n, secret := d.requests, d.secret
	d.mu.Unlock()
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return
	}
	// Both signatures must verify: the hub's key always, the HMAC once the
	// secret is known (the verification event may beat the answer that
	// carries it).
	verifiers := []protocol.WebhookVerifier{{PublicKeys: []ed25519.PublicKey{d.hubKey}}}
	if secret != nil {
		verifiers = append(verifiers, protocol.WebhookVerifier{Secrets: []protocol.WebhookSecret{*secret}})
	}
	for _, v := range verifiers {
		if err = v.VerifyHeaders(r.Header, body, time.Now()); err != nil {
			break
		}
	}
	var rec *protocol.Record
	if err == nil {
		rec, err = protocol.VerifyRecord(body, d.jwks)
	}
	seq, err1 := strconv.ParseUint(r.Header.Get(protocol.HeaderSequence), 10, 64)
	prev, err2 := strconv.ParseUint(r.Header.Get(protocol.HeaderPreviousSequence), 10, 64)
	if err == nil && (err1 != nil || err2 != nil) {
		err = fmt.Errorf("sequence headers %q, %q", r.Header.Get(protocol.HeaderSequence), r.Header.Get(protocol.HeaderPreviousSequence))
	}
	if err != nil {
		d.mu.Lock()
		d.invalid = append(d.invalid, err.Error())
		d.mu.Unlock()
		http.Error(w, `{"err":"authentication_failed"}`, http.StatusBadRequest)
		return
	}
	d.mu.Lock()
	d.got = append(d.got, hubtest.Received{Seq: seq, PrevSeq: prev, WebhookID: r.Header.Get(protocol.HeaderWebhookID), Record: rec, At: time.Now()})
	d.mu.Unlock()
	select {
	case d.delivered <- struct{}{}:
	default:
	}

	drip := 2
	if n == 2 { // the first flag: past the hub's timeout
		drip = int(faultDelivery.Timeout/(100*time.Millisecond)) + 10
	}
	w.WriteHeader(http.StatusAccepted)
	rc := http.NewResponseController(w)
	rc.Flush()
	for range drip {
		select {
		case <-r.Context().Done():
			d.mu.Lock()
			d.cut++
			d.mu.Unlock()
			return
		case <-time.After(100 * time.Millisecond):
		}
		if _, err := w.Write([]byte{'.'}); err != nil || rc.Flush() != nil {
			d.mu.Lock()
			d.cut++
			d.mu.Unlock()
			return
		}
	}
}

func (d *dripReceiver) received() []hubtest.Received {
	d.mu.Lock()
	defer d.mu.Unlock()
	return slices.Clone(d.got)
}

func (d *dripReceiver) invalidDeliveries() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return slices.Clone(d.invalid)
}

func (d *dripReceiver) cutOff() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.cut
}

// waitFor waits until the receiver holds n verified deliveries.
func (d *dripReceiver) waitFor(t *testing.T, n int) {
	t.Helper()
	deadline := time.After(wait)
	for len(d.received()) < n {
		select {
		case <-d.delivered:
		case <-time.After(20 * time.Millisecond):
		case <-deadline:
			t.Fatalf("dripping receiver: %d deliveries within %v, want %d (refused: %q)", len(d.received()), wait, n, d.invalidDeliveries())
		}
	}
}

// latencyQuantile returns the q-quantile of ds (nearest rank).
func latencyQuantile(ds []time.Duration, q float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := int(q*float64(len(s))+0.5) - 1
	return s[min(max(i, 0), len(s)-1)]
}

func ratio(a, b time.Duration) float64 {
	if b == 0 {
		return 0
	}
	return float64(a) / float64(b)
}
