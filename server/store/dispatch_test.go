package store_test

import (
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sparr-dev/sparr/federation/webhook"
	"github.com/sparr-dev/sparr/protocol"
	"github.com/sparr-dev/sparr/protocol/api"
	"github.com/sparr-dev/sparr/server/state"
	"github.com/sparr-dev/sparr/server/store"
)

// These tests run federation's Dispatcher over the hub's real store, delivering to
// real receivers on loopback. Where a test must hold the dispatcher at one
// point of its work, it wraps the store (a gate): the store still does
// everything.

// patience bounds how long a test waits for something that happens in
// milliseconds when all is well.
const patience = 20 * time.Second

// bench is a store with one member, bank-b, and the receivers it points
// its endpoint at.
type bench struct {
	st     *store.Store
	member string
	seq    int
}

func newBench(t *testing.T) *bench {
	t.Helper()
	st, err := store.Open(filepath.Join(t.TempDir(), "hub.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	b := &bench{st: st, member: "bank-b"}
	b.apply(t, member(&api.Member{ID: b.member, Name: "Bank B", Roles: []api.Role{api.RoleCheck}, Status: api.MemberActive}, true))
	return b
}

func (b *bench) apply(t *testing.T, c state.Command) *store.Result {
	t.Helper()
	res, err := b.st.Apply(c)
	if err != nil {
		t.Fatal(err)
	}
	if res.Conflict {
		t.Fatalf("command %s conflicted", c.Kind())
	}
	return res
}

// register gives the member a new endpoint at url.
func (b *bench) register(t *testing.T, url string) {
	t.Helper()
	ws, err := protocol.GenerateWebhookSecret(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	b.change(t, state.EndpointChange{Op: state.EndpointRegister, Member: b.member, URL: url, Secret: &webhook.EndpointSecret{Secret: ws.Encode(), CreatedAt: t0}})
}

// change applies a change to the member's endpoint.
func (b *bench) change(t *testing.T, ch state.EndpointChange) *store.Result {
	t.Helper()
	return b.apply(t, &state.ChangeEndpoint{Head: state.Head{At: t0, Actor: b.member, Entry: state.Entry{Action: protocol.LogEndpointRegistered}}, Change: ch})
}

// event applies a flag event, queued for the member; its body is
// "event-N", which it returns.
func (b *bench) event(t *testing.T) string {
	t.Helper()
	b.seq++
	body := fmt.Sprintf("event-%d", b.seq)
	b.apply(t, withRecord(&state.Record{ID: fmt.Sprintf("rec-%d", b.seq), Type: protocol.EventFlagPlaced, IssuedAt: t0, JWS: body}))
	return body
}

func (b *bench) endpoint(t *testing.T) *webhook.Endpoint {
	t.Helper()
	e, err := b.st.Endpoint(b.member)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// waitUntil polls cond until it holds.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(patience)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not %s within %s", what, patience)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func (b *bench) dispatcher(t *testing.T, outbox webhook.Outbox, cfg webhook.DispatcherConfig) *webhook.Dispatcher {
	t.Helper()
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Outbox, cfg.HubKey = outbox, key
	cfg.Client = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	if cfg.Timeout == 0 {
		cfg.Timeout = patience
	}
	d := webhook.NewDispatcher(cfg)
	t.Cleanup(d.Close)
	return d
}

// A receiver answers each delivery with what answer says, by body, and
// keeps the bodies it accepted.
type receiver struct {
	*httptest.Server
	mu       sync.Mutex
	accepted []string
	arrived  chan string // every body, as it arrives
}

func newReceiver(t *testing.T, answer func(body string, w http.ResponseWriter, r *http.Request) int) *receiver {
	t.Helper()
	rc := &receiver{arrived: make(chan string, 100)}
	rc.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		raw, _ := io.ReadAll(r.Body)
		body := string(raw)
		select {
		case rc.arrived <- body:
		default:
		}
		status := http.StatusAccepted
		if answer != nil {
			status = answer(body, w, r)
		}
		if status >= 200 && status < 300 {
			rc.mu.Lock()
			rc.accepted = append(rc.accepted, body)
			rc.mu.Unlock()
		}
		w.WriteHeader(status)
	}))
	t.Cleanup(rc.Close)
	return rc
}

func (rc *receiver) got(body string) bool {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	for _, b := range rc.accepted {
		if b == body {
			return true
		}
	}
	return false
}

// endpointGate holds the dispatcher after it reads an endpoint that is
// disabled, once, until released.
type endpointGate struct {
	*store.Store
	once     sync.Once
	held     chan struct{}
	released chan struct{}
}

func (g *endpointGate) Endpoint(member string) (*webhook.Endpoint, error) {
	e, err := g.Store.Endpoint(member)
	if err == nil && e.Status == api.EndpointDisabled {
		g.once.Do(func() {
			close(g.held)
			<-g.released
		})
	}
	return e, err
}

// TestDispatcherWakeUpBetweenRoundAndExit: an endpoint registered again
// (and notified) just after the worker found the old one disabled, before
// the worker is gone, is delivered to at once, not at the next event.
func TestDispatcherWakeUpBetweenRoundAndExit(t *testing.T) {
	b := newBench(t)
	rc := newReceiver(t, nil)
	b.register(t, rc.URL)
	b.change(t, state.EndpointChange{Op: state.EndpointRemove, Member: b.member, Reason: "removed by the member"})

	gate := &endpointGate{Store: b.st, held: make(chan struct{}), released: make(chan struct{})}
	d := b.dispatcher(t, gate, webhook.DispatcherConfig{})
	d.Notify(b.member)
	<-gate.held // the worker found the endpoint disabled, and is about to stop

	b.register(t, rc.URL)
	body := b.event(t)
	d.Notify(b.member)
	close(gate.released)

	waitUntil(t, "delivered to the endpoint registered again", func() bool { return rc.got(body) })
}

// successGate notes whether the endpoint was disabled while a success was
// still being recorded. Each success waits (a bounded while) for a
// disable, so that one recorded too late is caught.
type successGate struct {
	*store.Store
	recording   atomic.Int32
	disabled    chan struct{}
	disableOnce sync.Once
	overlapped  atomic.Bool
}

func (g *successGate) Delivered(d webhook.Delivery, a webhook.Attempt) error {
	g.recording.Add(1)
	defer g.recording.Add(-1)
	select {
	case <-g.disabled:
	case <-time.After(time.Second):
	}
	return g.Store.Delivered(d, a)
}

func (g *successGate) Disable(d webhook.Delivery, a webhook.Attempt, reason string) error {
	if g.recording.Load() > 0 {
		g.overlapped.Store(true)
	}
	g.disableOnce.Do(func() { close(g.disabled) })
	return g.Store.Disable(d, a, reason)
}

// TestDispatcherRecordsSuccessBeforeGone: the delivery before a 410 keeps
// its exchange-log entry; the 410 does not drop its row first.
func TestDispatcherRecordsSuccessBeforeGone(t *testing.T) {
	b := newBench(t)
	first := "event-1"
	rc := newReceiver(t, func(body string, _ http.ResponseWriter, _ *http.Request) int {
		if body == first {
			return http.StatusAccepted
		}
		return http.StatusGone
	})
	b.register(t, rc.URL)
	b.event(t)
	b.event(t) // both queued before the dispatcher starts: one round
	gate := &successGate{Store: b.st, disabled: make(chan struct{})}
	d := b.dispatcher(t, gate, webhook.DispatcherConfig{})
	d.Notify(b.member)

	waitUntil(t, "disabled", func() bool { return b.endpoint(t).Status == api.EndpointDisabled })
	if gate.overlapped.Load() {
		t.Error("got the endpoint disabled while the success before the 410 was being recorded, want the success recorded first")
	}
	n, err := b.st.LogSize()
	if err != nil {
		t.Fatal(err)
	}
	lines, err := b.st.LogEntries(0, n)
	if err != nil {
		t.Fatal(err)
	}
	var delivered []string
	for _, line := range lines {
		e, err := protocol.ParseLogEntry(line)
		if err != nil {
			t.Fatal(err)
		}
		if e.Action == protocol.LogDelivery && e.Result == "ok" {
			ev, _ := e.Attr("event")
			delivered = append(delivered, ev)
		}
	}
	if len(delivered) != 1 || delivered[0] != "1" {
		t.Errorf("got delivery log entries for events %v, want one for event 1", delivered)
	}
}

// TestDispatcherKeepsBackoffAfterLaterSuccess: with deliveries in flight
// together, a success after a failure in the same window does not clear
// the failure's backoff.
func TestDispatcherKeepsBackoffAfterLaterSuccess(t *testing.T) {
	b := newBench(t)
	rc := newReceiver(t, func(body string, _ http.ResponseWriter, _ *http.Request) int {
		if body == "event-1" {
			return http.StatusInternalServerError
		}
		return http.StatusAccepted
	})
	b.register(t, rc.URL)
	b.event(t)
	second := b.event(t)
	off := 0.0
	d := b.dispatcher(t, b.st, webhook.DispatcherConfig{Concurrency: 2, Schedule: []time.Duration{time.Hour}, Jitter: &off})
	d.Notify(b.member)

	waitUntil(t, "the second delivered and the first retried once, then backing off", func() bool {
		rows, err := b.st.Pending(b.member, 10)
		return err == nil && rc.got(second) && len(rows) == 1 && rows[0].Attempts == 1
	})
	e := b.endpoint(t)
	if e.Failures != 1 || e.NextAttemptAt.IsZero() {
		t.Errorf("got failures %d, next attempt %v; want 1 and an hour after the failure", e.Failures, e.NextAttemptAt)
	}
}

// TestDispatcherCountsFailuresAfreshAfterSuccess: with one delivery in
// flight at a time, a success counts the endpoint's failures afresh for
// the rest of the round, as the store does: a failure after it is the
// first again, retried on the schedule's first step, not the pause or
// the backoff the failures before the success would have earned.
func TestDispatcherCountsFailuresAfreshAfterSuccess(t *testing.T) {
	for _, schedule := range [][]time.Duration{{0}, {0, time.Hour}} {
		t.Run(fmt.Sprint(schedule), func(t *testing.T) {
			b := newBench(t)
			var mu sync.Mutex
			tries := map[string]int{}
			rc := newReceiver(t, func(body string, _ http.ResponseWriter, _ *http.Request) int {
				mu.Lock()
				defer mu.Unlock()
				tries[body]++
				if tries[body] == 1 {
					return http.StatusServiceUnavailable
				}
				return http.StatusAccepted
			})
			b.register(t, rc.URL)
			first := b.event(t)
			second := b.event(t) // both queued before the dispatcher starts
			off := 0.0
			d := b.dispatcher(t, b.st, webhook.DispatcherConfig{Concurrency: 1, Schedule: schedule, Jitter: &off})
			d.Notify(b.member)

			waitUntil(t, "both delivered, or the endpoint paused or backing off", func() bool {
				n, err := b.st.Backlog(b.member)
				e := b.endpoint(t)
				return err == nil && n == 0 || e.Status == api.EndpointPaused || e.NextAttemptAt.After(time.Now().Add(time.Minute))
			})
			if e := b.endpoint(t); e.Status == api.EndpointPaused {
				t.Fatalf("got the endpoint paused (%s), want the second event's first failure retried", e.Reason)
			} else if !e.NextAttemptAt.IsZero() {
				t.Fatalf("got the endpoint backing off until %v, want the second event's first failure retried at once", e.NextAttemptAt)
			}
			if e := b.endpoint(t); e.Failures != 0 || e.LastDeliveredSeq == 0 {
				t.Errorf("got failures %d, last delivered %d; want 0 and the second event", e.Failures, e.LastDeliveredSeq)
			}
			mu.Lock()
			defer mu.Unlock()
			if tries[first] != 2 || tries[second] != 2 {
				t.Errorf("got %d attempts of the first event and %d of the second, want 2 each", tries[first], tries[second])
			}
		})
	}
}

// outcomes counts what the dispatcher reports.
type outcomes struct {
	mu  sync.Mutex
	got []string
}

func (o *outcomes) Attempted(_, outcome string, _ time.Duration) {
	o.mu.Lock()
	o.got = append(o.got, outcome)
	o.mu.Unlock()
}

func (o *outcomes) HubFailed(_, stage string) {
	o.mu.Lock()
	o.got = append(o.got, "hub-"+stage)
	o.mu.Unlock()
}

// TestDispatcherCloseRecordsNoFailure: an attempt cut off by Close is not a
// failure: the delivery stays queued as it was, the endpoint's retry state
// is untouched, and no outcome is reported.
func TestDispatcherCloseRecordsNoFailure(t *testing.T) {
	b := newBench(t)
	rc := newReceiver(t, func(_ string, _ http.ResponseWriter, r *http.Request) int {
		<-r.Context().Done() // never answers; the hub goes away
		return http.StatusServiceUnavailable
	})
	b.register(t, rc.URL)
	b.event(t)
	obs := &outcomes{}
	d := b.dispatcher(t, b.st, webhook.DispatcherConfig{Observer: obs})
	d.Notify(b.member)
	<-rc.arrived // the attempt is in flight
	d.Close()

	e := b.endpoint(t)
	if e.Failures != 0 || !e.NextAttemptAt.IsZero() || e.Status != api.EndpointUnverified || e.LastError != "" {
		t.Errorf("got endpoint with failures %d, next attempt %v, status %s, last error %q; want it untouched", e.Failures, e.NextAttemptAt, e.Status, e.LastError)
	}
	rows, err := b.st.Pending(b.member, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 1 || rows[0].Attempts != 0 {
		t.Errorf("got queue %+v, want the one delivery, with no attempt counted", rows)
	}
	obs.mu.Lock()
	defer obs.mu.Unlock()
	if len(obs.got) != 0 {
		t.Errorf("got outcomes %v reported, want none", obs.got)
	}
}

// TestDispatcherNotesAttemptURL: an outcome of an attempt to the URL the
// endpoint had before the member registered another changes only the
// delivery, not the new endpoint's state.
func TestDispatcherNotesAttemptURL(t *testing.T) {
	b := newBench(t)
	b.register(t, "http://127.0.0.1:9/old")
	body := b.event(t)
	rows, err := b.st.Pending(b.member, 10)
	if err != nil || len(rows) != 1 || string(rows[0].Body) != body {
		t.Fatalf("got queue %+v (%v), want the one delivery", rows, err)
	}
	b.change(t, state.EndpointChange{Op: state.EndpointRegister, Member: b.member, URL: "http://127.0.0.1:9/new", Verify: true})
	old := webhook.Attempt{At: t0, Status: http.StatusGone, URL: "http://127.0.0.1:9/old"}
	if err := b.st.Disable(rows[0], old, "gone"); err != nil {
		t.Fatal(err)
	}
	if err := b.st.Pause(rows[0], old, "paused"); err != nil {
		t.Fatal(err)
	}
	e := b.endpoint(t)
	if e.Status != api.EndpointUnverified || e.Failures != 0 {
		t.Errorf("got endpoint %s with %d failures after the old URL's 410 and pause, want unverified with none", e.Status, e.Failures)
	}
	if n, _ := b.st.Backlog(b.member); n != 1 {
		t.Errorf("got a backlog of %d, want the delivery still queued for the new URL", n)
	}
	if err := b.st.Delivered(rows[0], webhook.Attempt{At: t0, Status: http.StatusAccepted, URL: "http://127.0.0.1:9/old"}); err != nil {
		t.Fatal(err)
	}
	if n, _ := b.st.Backlog(b.member); n != 0 {
		t.Errorf("got a backlog of %d after the old URL took the delivery, want 0", n)
	}
	if e := b.endpoint(t); e.LastDeliveredSeq != 0 {
		t.Errorf("got the new endpoint's last delivered sequence %d, want 0: the old URL took it", e.LastDeliveredSeq)
	}
}

// TestEndpointChangeKeepsDeliveryOutcomes: a member's change to its
// endpoint applies to the endpoint as stored, so an outcome the dispatcher
// recorded after the member's request read the endpoint (the
// verification, a pause, a 410) is never undone; a change that no longer
// fits conflicts.
func TestEndpointChangeKeepsDeliveryOutcomes(t *testing.T) {
	b := newBench(t)
	url := "http://127.0.0.1:9/hook"
	b.register(t, url)
	// The changes are planned as the hub plans a request's (server/endpoints.go),
	// from what the request read: an existing endpoint is registered again
	// (verified again only if its URL changes), resumed only if it was read
	// paused; a rotation does not look at it.
	register := func(read *webhook.Endpoint, url string) *state.EndpointChange {
		return &state.EndpointChange{Op: state.EndpointRegister, Member: b.member, URL: url,
			Events: []protocol.EventType{protocol.EventFlagPlaced}, Verify: read.URL != url}
	}
	resume := func(read *webhook.Endpoint) *state.EndpointChange {
		if read.Status != api.EndpointPaused {
			t.Fatalf("planning a resumption: got a read of a %s endpoint, want paused", read.Status)
		}
		return &state.EndpointChange{Op: state.EndpointResume, Member: b.member}
	}
	rotate := func() *state.EndpointChange {
		ws, err := protocol.GenerateWebhookSecret(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return &state.EndpointChange{Op: state.EndpointRotate, Member: b.member,
			Secret: &webhook.EndpointSecret{Secret: ws.Encode(), CreatedAt: t0}, Until: t0.Add(time.Hour)}
	}
	change := func(ch *state.EndpointChange) *store.Result {
		t.Helper()
		res, err := b.st.Apply(&state.ChangeEndpoint{Head: state.Head{At: t0, Actor: b.member, Entry: state.Entry{Action: protocol.LogEndpointRegistered}}, Change: *ch})
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	queued := func() webhook.Delivery {
		t.Helper()
		rows, err := b.st.Pending(b.member, 10)
		if err != nil || len(rows) == 0 {
			t.Fatalf("got queue %v (%v), want a delivery", rows, err)
		}
		return rows[len(rows)-1]
	}
	ok := webhook.Attempt{At: t0, Status: http.StatusAccepted, URL: url}
	failed := webhook.Attempt{At: t0, Status: http.StatusServiceUnavailable, URL: url}

	// Verified while the requests were under way.
	read := b.endpoint(t) // unverified
	planned := []*state.EndpointChange{register(read, url), rotate()}
	b.apply(t, withRecord(&state.Record{ID: "verification-1", Type: protocol.EventVerification, Audience: b.member, IssuedAt: t0, JWS: "verification"}))
	if err := b.st.Delivered(queued(), ok); err != nil {
		t.Fatal(err)
	}
	for _, ch := range planned {
		if res := change(ch); res.Conflict || res.Endpoint.Status != api.EndpointActive || !res.Endpoint.Verified {
			t.Errorf("%s planned before the verification: got conflict %t, endpoint %+v; want it applied, active and verified", ch.Op, res.Conflict, res.Endpoint)
		}
	}
	if e := b.endpoint(t); len(e.Events) != 1 || len(e.Secrets) != 2 {
		t.Errorf("got events %v and %d secrets, want the registration's events and the rotation's two secrets", e.Events, len(e.Secrets))
	}

	// Paused while the requests were under way.
	read = b.endpoint(t) // active
	planned = []*state.EndpointChange{register(read, url), rotate()}
	b.event(t)
	if err := b.st.Pause(queued(), failed, "the schedule ran out"); err != nil {
		t.Fatal(err)
	}
	for _, ch := range planned {
		if res := change(ch); res.Conflict || res.Endpoint.Status != api.EndpointPaused || res.Endpoint.Failures != 1 {
			t.Errorf("%s planned before the pause: got conflict %t, endpoint %+v; want it applied, paused with its failure", ch.Op, res.Conflict, res.Endpoint)
		}
	}

	// Disabled by a 410 while the requests were under way.
	read = b.endpoint(t) // paused
	planned = []*state.EndpointChange{register(read, url), register(read, url+"2"), resume(read)}
	if err := b.st.Disable(queued(), webhook.Attempt{At: t0, Status: http.StatusGone, URL: url}, "gone"); err != nil {
		t.Fatal(err)
	}
	if res := change(rotate()); res.Conflict || res.Endpoint.Status != api.EndpointDisabled {
		t.Errorf("rotation after a 410: got conflict %t, endpoint %+v; want it applied, disabled", res.Conflict, res.Endpoint)
	}
	for _, ch := range planned {
		if res := change(ch); !res.Conflict {
			t.Errorf("%s (verify %t) planned before the 410: got it applied, want a conflict", ch.Op, ch.Verify)
		}
	}
	if e := b.endpoint(t); e.Status != api.EndpointDisabled {
		t.Errorf("got endpoint %s, want still disabled", e.Status)
	}
}
