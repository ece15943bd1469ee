package server_test

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/sparr-dev/sparr/federation/webhook"
	"github.com/sparr-dev/sparr/protocol"
	"github.com/sparr-dev/sparr/protocol/api"
	"github.com/sparr-dev/sparr/server"
	"github.com/sparr-dev/sparr/server/decide"
	"github.com/sparr-dev/sparr/server/hubtest"
	"github.com/sparr-dev/sparr/server/store"
)

// wait bounds how long a test waits for something that happens in
// milliseconds when all is well. It is generous: the point is that it
// happens, not how fast.
const wait = 30 * time.Second

// fast is a compressed retry schedule: the real one's shape in
// milliseconds.
var fast = server.Delivery{
	Schedule: []time.Duration{0, 20 * time.Millisecond, 40 * time.Millisecond, 60 * time.Millisecond},
	Timeout:  500 * time.Millisecond,
}

func endpointOf(t *testing.T, m *hubtest.Member) api.Endpoint {
	t.Helper()
	resp := m.Do(t, http.MethodGet, "/v1/members/self/endpoint", "", nil)
	mustStatus(t, resp, http.StatusOK)
	var out struct {
		Endpoint api.Endpoint `json:"endpoint"`
	}
	resp.JSON(t, &out)
	return out.Endpoint
}

// waitEndpoint polls a member's endpoint until cond holds.
func waitEndpoint(t *testing.T, m *hubtest.Member, what string, cond func(api.Endpoint) bool) api.Endpoint {
	t.Helper()
	deadline := time.Now().Add(wait)
	for {
		e := endpointOf(t, m)
		if cond(e) {
			return e
		}
		if time.Now().After(deadline) {
			t.Fatalf("endpoint of %s: not %s within %s; it is %+v", m.ID, what, wait, e)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// register registers r as its member's endpoint, as r.Register does, and
// returns the secret.
func register(t *testing.T, r *hubtest.Receiver) string {
	t.Helper()
	resp := r.Member.JSON(t, http.MethodPut, "/v1/members/self/endpoint", map[string]any{"url": r.URL})
	mustStatus(t, resp, http.StatusCreated)
	var out struct {
		Secret string `json:"secret"`
	}
	resp.JSON(t, &out)
	r.Trust(t, out.Secret)
	return out.Secret
}

// A signed is what one delivery carried, checked apart from the
// receiver's own verification.
type signed struct {
	Method, Accept, ContentType string
	// V1 says, by name, which secrets a v1 entry verifies under; V1a
	// whether a v1a entry verifies under the hub's webhook key. Each is
	// checked on its own, at the hub's time.
	V1  map[string]bool
	V1a bool
}

// inspect checks every delivery r gets from now on, before r verifies it
// as usual, and sends what it found. With answer, r does not go on: the
// delivery is answered 202 there (for a hub whose clock is not the
// receiver's).
func inspect(t *testing.T, hub *hubtest.Hub, r *hubtest.Receiver, secrets map[string]string, answer bool) <-chan signed {
	t.Helper()
	var cfg struct {
		WebhookPublicKey string `json:"webhook_public_key"`
	}
	hub.Anonymous(t, http.MethodGet, "/.well-known/sparr-configuration", "", nil).JSON(t, &cfg)
	pub, err := protocol.ParseWebhookPublicKey(cfg.WebhookPublicKey)
	if err != nil {
		t.Fatal(err)
	}
	bySecret := map[string]protocol.WebhookVerifier{}
	for name, s := range secrets {
		ws, err := protocol.ParseWebhookSecret(s)
		if err != nil {
			t.Fatal(err)
		}
		bySecret[name] = protocol.WebhookVerifier{Secrets: []protocol.WebhookSecret{ws}}
	}
	byKey := protocol.WebhookVerifier{PublicKeys: []ed25519.PublicKey{pub}}
	out := make(chan signed, 100)
	r.Behave(func(_ int, w http.ResponseWriter, req *http.Request) bool {
		body, err := io.ReadAll(req.Body)
		if err != nil {
			return true
		}
		req.Body = io.NopCloser(bytes.NewReader(body))
		now := hub.Now()
		got := signed{Method: req.Method, Accept: req.Header.Get("Accept"), ContentType: req.Header.Get("Content-Type"), V1: map[string]bool{},
			V1a: byKey.VerifyHeaders(req.Header, body, now) == nil}
		for name, v := range bySecret {
			got.V1[name] = v.VerifyHeaders(req.Header, body, now) == nil
		}
		out <- got
		if answer {
			w.WriteHeader(http.StatusAccepted)
		}
		return answer
	})
	return out
}

// nextDelivery returns the next delivery inspect saw.
func nextDelivery(t *testing.T, deliveries <-chan signed) signed {
	t.Helper()
	select {
	case d := <-deliveries:
		return d
	case <-time.After(wait):
		t.Fatalf("no delivery within %s", wait)
		return signed{}
	}
}

func TestFlagReachesTwentyReceivers(t *testing.T) {
	hub := hubtest.Start(t, hubtest.Options{Delivery: fast})
	origin := hub.AddMember(t, "bank-origin", api.RoleFlag)
	var receivers []*hubtest.Receiver
	var secrets []string
	for i := range 20 {
		m := hub.AddMember(t, fmt.Sprintf("bank-%02d", i), api.RoleCheck)
		r := hub.NewReceiver(t, m)
		secrets = append(secrets, register(t, r)) // the receiver verifies v1 (HMAC with its secret)
		if i%2 == 0 {
			r.RequireKey(t) // verifies v1a (the hub's Ed25519 key) only
		}
		receivers = append(receivers, r)
	}
	checks := make([]<-chan signed, len(receivers))
	for i, r := range receivers {
		r.WaitEvent(t, wait, protocol.EventVerification)
		waitEndpoint(t, r.Member, "verified", func(e api.Endpoint) bool { return e.Verified && e.Status == api.EndpointActive })
		checks[i] = inspect(t, hub, r, map[string]string{"secret": secrets[i]}, false)
	}

	tok := origin.Tokenize(t, protocol.TypePersonalNumber, "190905271474")[0]
	placed := place(t, origin, tok)
	for i, r := range receivers {
		// Every delivery carries both signatures, each valid on its own.
		if d := nextDelivery(t, checks[i]); d.Method != http.MethodPost || d.Accept != "application/json" || d.ContentType != protocol.DeliveryContentType || !d.V1["secret"] || !d.V1a {
			t.Errorf("%s got a delivery with %+v, want POST, Accept application/json, Content-Type %s, and valid v1 and v1a signatures",
				r.Member.ID, d, protocol.DeliveryContentType)
		}
		got := r.WaitEvent(t, wait, protocol.EventFlagPlaced)
		ev := got.Record.Event.(protocol.FlagPlaced)
		if ev.FlagID != placed.Flag.FlagID {
			t.Errorf("%s got flag %s, want %s", r.Member.ID, ev.FlagID, placed.Flag.FlagID)
		}
		// The member's previous event is its verification.
		all := r.Received()
		if got.PrevSeq != all[0].Seq || all[0].Record.Event.EventType() != protocol.EventVerification {
			t.Errorf("%s: flag's previous sequence %d, want the verification's %d", r.Member.ID, got.PrevSeq, all[0].Seq)
		}
		if inv := r.Invalid(); len(inv) > 0 {
			t.Errorf("%s refused deliveries: %v", r.Member.ID, inv)
		}
	}
	// Each successful delivery is in the exchange log, once the dispatcher
	// has recorded it.
	for _, r := range receivers {
		waitEndpoint(t, r.Member, "drained", func(e api.Endpoint) bool { return e.Backlog == 0 })
	}
	deliveries := 0
	for _, e := range hub.LogEntries(t) {
		if e.Action == protocol.LogDelivery && e.Result == "ok" {
			deliveries++
			if _, ok := e.Attr("latency_ms"); !ok {
				t.Errorf("delivery entry without latency: %+v", e)
			}
		}
	}
	if deliveries != 40 { // a verification and a flag each
		t.Errorf("got %d delivery log entries, want 40", deliveries)
	}
}

func TestFaultyReceivers(t *testing.T) {
	hub := hubtest.Start(t, hubtest.Options{Delivery: fast})
	origin := hub.AddMember(t, "bank-origin", api.RoleFlag)
	add := func(id string) *hubtest.Receiver {
		r := hub.NewReceiver(t, hub.AddMember(t, id, api.RoleCheck))
		r.Register(t)
		r.WaitEvent(t, wait, protocol.EventVerification)
		return r
	}
	healthy := []*hubtest.Receiver{add("healthy-1"), add("healthy-2"), add("healthy-3")}
	flaky, hung, reset, limited, gone, refusing := add("flaky"), add("hung"), add("reset"), add("limited"), add("gone"), add("refusing")

	// The flaky one fails twice with 500, then recovers.
	flakyFails := 0
	flaky.Behave(func(_ int, w http.ResponseWriter, _ *http.Request) bool {
		if flakyFails < 2 {
			flakyFails++
			w.WriteHeader(http.StatusInternalServerError)
			return true
		}
		return false
	})
	// The hung one never answers within the timeout.
	release := make(chan struct{})
	defer close(release)
	hung.Behave(func(_ int, w http.ResponseWriter, r *http.Request) bool {
		select {
		case <-r.Context().Done():
		case <-release:
		}
		return true
	})
	// The resetting one drops every connection.
	reset.Behave(func(_ int, w http.ResponseWriter, _ *http.Request) bool {
		conn, _, err := w.(http.Hijacker).Hijack()
		if err == nil {
			conn.(*net.TCPConn).SetLinger(0)
			conn.Close()
		}
		return true
	})
	// The limited one says 429, retry after a second, once.
	var limitedAt []time.Time
	var mu sync.Mutex
	limited.Behave(func(_ int, w http.ResponseWriter, _ *http.Request) bool {
		mu.Lock()
		defer mu.Unlock()
		limitedAt = append(limitedAt, time.Now())
		if len(limitedAt) == 1 {
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(http.StatusTooManyRequests)
			return true
		}
		return false
	})
	// The gone one has unsubscribed.
	gone.Behave(func(_ int, w http.ResponseWriter, _ *http.Request) bool { w.WriteHeader(http.StatusGone); return true })
	// The refusing one answers 422 to the first flag only.
	refusing.Behave(func(n int, w http.ResponseWriter, _ *http.Request) bool {
		if n == 2 { // 1 was the verification
			w.WriteHeader(http.StatusUnprocessableEntity)
			w.Write([]byte(`{"err":"invalid_request","description":"cannot handle this"}`))
			return true
		}
		return false
	})

	toks := origin.Tokenize(t, protocol.TypeEmail, "one@example.se", "two@example.se")
	first := place(t, origin, toks[0])
	// That they do not wait for the hung one's timeout is
	// TestHungReceiverHoldsUpNoOne's, where the timeout cannot end first.
	for _, r := range healthy {
		r.WaitEvent(t, wait, protocol.EventFlagPlaced)
	}
	second := place(t, origin, toks[1])
	for _, r := range healthy {
		r.WaitFor(t, wait, "second flag", func(g hubtest.Received) bool {
			ev, ok := g.Record.Event.(protocol.FlagPlaced)
			return ok && ev.FlagID == second.Flag.FlagID
		})
	}

	// The flaky one gets both after its failures, and is healthy again.
	flaky.WaitFor(t, wait, "second flag", func(g hubtest.Received) bool {
		ev, ok := g.Record.Event.(protocol.FlagPlaced)
		return ok && ev.FlagID == second.Flag.FlagID
	})
	waitEndpoint(t, flaky.Member, "recovered", func(e api.Endpoint) bool { return e.Failures == 0 && e.Backlog == 0 })

	// The hung and the resetting ones run out of schedule and are paused,
	// with their events kept.
	for _, r := range []*hubtest.Receiver{hung, reset} {
		e := waitEndpoint(t, r.Member, "paused", func(e api.Endpoint) bool { return e.Status == api.EndpointPaused })
		if e.Backlog != 2 || e.Reason == "" || e.LastError == "" {
			t.Errorf("%s paused with %+v, want both flags queued and a reason", r.Member.ID, e)
		}
	}
	// The limited one waited for its Retry-After.
	limited.WaitEvent(t, wait, protocol.EventFlagPlaced)
	mu.Lock()
	if len(limitedAt) < 2 || limitedAt[1].Sub(limitedAt[0]) < 900*time.Millisecond {
		t.Errorf("retried a 429 with Retry-After: 1 after %s, want at least a second", limitedAt[1].Sub(limitedAt[0]))
	}
	mu.Unlock()
	// The gone one is disabled, its queue dropped.
	e := waitEndpoint(t, gone.Member, "disabled", func(e api.Endpoint) bool { return e.Status == api.EndpointDisabled })
	if e.Backlog != 0 {
		t.Errorf("disabled endpoint keeps %d deliveries", e.Backlog)
	}
	// The refusing one dead-lettered the first flag, with its answer, and
	// got the second.
	refusing.WaitFor(t, wait, "second flag", func(g hubtest.Received) bool {
		ev, ok := g.Record.Event.(protocol.FlagPlaced)
		return ok && ev.FlagID == second.Flag.FlagID
	})
	e = waitEndpoint(t, refusing.Member, "one dead letter", func(e api.Endpoint) bool { return e.DeadLetters == 1 })
	if len(e.RecentDeadLetters) != 1 || e.RecentDeadLetters[0].Status != http.StatusUnprocessableEntity || e.RecentDeadLetters[0].Response == "" {
		t.Errorf("dead letters %+v, want the 422 with its answer", e.RecentDeadLetters)
	}
	for _, g := range refusing.Received() {
		if ev, ok := g.Record.Event.(protocol.FlagPlaced); ok && ev.FlagID == first.Flag.FlagID {
			t.Error("the refused delivery was delivered anyway")
		}
	}
	// The operator sees every endpoint's state.
	resp := hub.Operator.Do(t, http.MethodGet, "/v1/admin/endpoints", "", nil)
	mustStatus(t, resp, http.StatusOK)
	var all struct {
		Endpoints []api.Endpoint `json:"endpoints"`
	}
	resp.JSON(t, &all)
	if len(all.Endpoints) != 9 {
		t.Errorf("operator sees %d endpoints, want 9", len(all.Endpoints))
	}
}

// TestHungReceiverHoldsUpNoOne shows that no receiver waits for another:
// the hung receiver holds every request until the test ends, and the
// hub's delivery timeout is longer than the test, so the hung attempt is
// still open while the healthy receivers get the flag. A dispatcher that
// made any of them wait for it would never deliver within the test.
func TestHungReceiverHoldsUpNoOne(t *testing.T) {
	patient := fast
	patient.Timeout = 10 * time.Minute
	hub := hubtest.Start(t, hubtest.Options{Delivery: patient})
	origin := hub.AddMember(t, "bank-origin", api.RoleFlag)
	add := func(id string) *hubtest.Receiver {
		r := hub.NewReceiver(t, hub.AddMember(t, id, api.RoleCheck))
		r.Register(t)
		r.WaitEvent(t, wait, protocol.EventVerification)
		return r
	}
	hung := add("hung")
	release := make(chan struct{})
	entered := make(chan struct{}, 16)
	hung.Behave(func(_ int, w http.ResponseWriter, r *http.Request) bool {
		entered <- struct{}{}
		select {
		case <-r.Context().Done():
		case <-release:
		}
		return true
	})
	healthy := []*hubtest.Receiver{add("healthy-1"), add("healthy-2"), add("healthy-3")}
	defer close(release)

	toks := origin.Tokenize(t, protocol.TypeEmail, "one@example.se", "two@example.se")
	place(t, origin, toks[0])
	select {
	case <-entered:
	case <-time.After(wait):
		t.Fatal("the hub never tried the hung receiver")
	}
	for _, r := range healthy {
		r.WaitEvent(t, wait, protocol.EventFlagPlaced)
	}
	// And the next flag too, while the first still hangs.
	second := place(t, origin, toks[1])
	for _, r := range healthy {
		r.WaitFor(t, wait, "second flag", func(g hubtest.Received) bool {
			ev, ok := g.Record.Event.(protocol.FlagPlaced)
			return ok && ev.FlagID == second.Flag.FlagID
		})
	}
	if e := endpointOf(t, hung.Member); e.Status == api.EndpointPaused || e.Failures != 0 {
		t.Errorf("the hung endpoint: got %+v, want its first attempt still open (no failure counted)", e)
	}
}

// TestRestartWithBacklog closes the hub while deliveries are queued and in
// flight, and opens it again: every event arrives, and an event that
// arrives twice carries the same webhook-id both times.
func TestRestartWithBacklog(t *testing.T) {
	hub := hubtest.Start(t, hubtest.Options{Delivery: server.Delivery{Schedule: fast.Schedule, Timeout: 5 * time.Second}})
	origin := hub.AddMember(t, "bank-origin", api.RoleFlag)
	r := hub.NewReceiver(t, hub.AddMember(t, "bank-b", api.RoleCheck))
	r.Register(t)
	r.WaitEvent(t, wait, protocol.EventVerification)

	// The receiver accepts the third delivery's request but never answers
	// before the hub goes down.
	block := make(chan struct{})
	r.Behave(func(n int, w http.ResponseWriter, req *http.Request) bool {
		if n == 3 {
			select {
			case <-block:
			case <-req.Context().Done():
			}
			return true
		}
		return false
	})
	var values []string
	for i := range 10 {
		values = append(values, fmt.Sprintf("backlog%d@example.se", i))
	}
	toks := origin.Tokenize(t, protocol.TypeEmail, values...)
	var flags []string
	for _, tok := range toks {
		flags = append(flags, place(t, origin, tok).Flag.FlagID)
	}
	r.WaitFor(t, wait, "the first flag", func(g hubtest.Received) bool { return g.Record.Event.EventType() == protocol.EventFlagPlaced })
	hub.Restart(t)
	close(block)
	r.Behave(nil)

	for _, id := range flags {
		r.WaitFor(t, wait, "flag "+id, func(g hubtest.Received) bool {
			ev, ok := g.Record.Event.(protocol.FlagPlaced)
			return ok && ev.FlagID == id
		})
	}
	byRecord := map[string]string{}
	for _, g := range r.Received() {
		if id, ok := byRecord[g.Record.ID]; ok && id != g.WebhookID {
			t.Errorf("record %s delivered with webhook-ids %s and %s", g.Record.ID, id, g.WebhookID)
		}
		byRecord[g.Record.ID] = g.WebhookID
	}
	waitEndpoint(t, r.Member, "drained", func(e api.Endpoint) bool { return e.Backlog == 0 })
}

// feed reads a member's whole feed after a cursor.
func feed(t *testing.T, m *hubtest.Member, after uint64) ([]api.FeedEvent, uint64) {
	t.Helper()
	var out []api.FeedEvent
	for {
		resp := m.Do(t, http.MethodGet, fmt.Sprintf("/v1/events?after=%d&limit=3", after), "", nil)
		mustStatus(t, resp, http.StatusOK)
		var page api.FeedPage
		resp.JSON(t, &page)
		out = append(out, page.Events...)
		if page.Next < after {
			t.Fatalf("feed went backwards from %d to %d", after, page.Next)
		}
		after = page.Next
		if !page.More {
			return out, after
		}
	}
}

func TestPausedMemberCatchesUp(t *testing.T) {
	hub := hubtest.Start(t, hubtest.Options{Delivery: fast})
	origin := hub.AddMember(t, "bank-origin", api.RoleFlag, api.RoleCheck)
	member := hub.AddMember(t, "bank-b", api.RoleCheck)
	r := hub.NewReceiver(t, member)
	r.Register(t)
	r.WaitEvent(t, wait, protocol.EventVerification)
	last := r.Received()[0].Seq

	// The member goes down past the schedule.
	r.Behave(func(_ int, w http.ResponseWriter, _ *http.Request) bool {
		w.WriteHeader(http.StatusServiceUnavailable)
		return true
	})
	toks := origin.Tokenize(t, protocol.TypePhone, "+46701000001", "+46701000002", "+46701000003")
	var placed []flagResponse
	for _, tok := range toks {
		placed = append(placed, place(t, origin, tok))
	}
	origin.Submit(t, "/v1/flags/"+placed[1].Flag.FlagID+"/lift", protocol.LiftFlag{FlagID: placed[1].Flag.FlagID})
	waitEndpoint(t, member, "paused", func(e api.Endpoint) bool { return e.Status == api.EndpointPaused })

	// Back up, it reads what it missed from the feed, with no gap: the
	// placements still active, and the lift (the lifted flag's placement
	// is gone from the feed, erased with it).
	r.Behave(nil)
	events, next := feed(t, member, last)
	var types []protocol.EventType
	for _, e := range events {
		types = append(types, e.Type)
	}
	want := []protocol.EventType{protocol.EventFlagPlaced, protocol.EventFlagPlaced, protocol.EventFlagLifted}
	if !slices.Equal(types, want) {
		t.Fatalf("feed after %d: %v, want %v", last, types, want)
	}
	if seq, _ := hub.Store.Sequence(); next != seq {
		t.Errorf("feed ends at cursor %d, want the hub's sequence %d", next, seq)
	}
	// It resumes its endpoint; the queued deliveries follow.
	resp := member.Do(t, http.MethodPost, "/v1/members/self/endpoint/resume", "", nil)
	mustStatus(t, resp, http.StatusOK)
	r.WaitEvent(t, wait, protocol.EventFlagLifted)
	waitEndpoint(t, member, "drained", func(e api.Endpoint) bool { return e.Backlog == 0 && e.Status == api.EndpointActive })
	// Resuming an active endpoint is refused.
	if resp := member.Do(t, http.MethodPost, "/v1/members/self/endpoint/resume", "", nil); resp.Status != http.StatusConflict {
		t.Errorf("resuming an active endpoint: %d, want 409", resp.Status)
	}
}

// TestNewMemberBootstraps: a member joining late takes the snapshot, then
// follows the feed from its sequence number, and ends with exactly the
// hub's active flags. Suspicions never reach it: it learns of them only
// by checking online.
func TestNewMemberBootstraps(t *testing.T) {
	hub := hubtest.Start(t, hubtest.Options{Policy: decide.Policy{SuspicionLegalBasis: "brottsdatalagen"}})
	origin := hub.AddMember(t, "bank-origin", api.RoleFlag, api.RoleSuspicion, api.RoleCheck)
	var values []string
	for i := range 8 {
		values = append(values, fmt.Sprintf("boot%d@example.se", i))
	}
	toks := origin.Tokenize(t, protocol.TypeEmail, values...)
	var placed []flagResponse
	for _, tok := range toks[:5] {
		placed = append(placed, place(t, origin, tok))
	}
	origin.Submit(t, "/v1/flags/"+placed[0].Flag.FlagID+"/lift", protocol.LiftFlag{FlagID: placed[0].Flag.FlagID})
	mustStatus(t, origin.Submit(t, "/v1/suspicions", protocol.ReportSuspicion{Subjects: toks[5:7], Category: protocol.CategoryMoneyMule, PoliceReport: report}), http.StatusCreated)

	late := hub.AddMember(t, "bank-late", api.RoleCheck)
	resp := late.Do(t, http.MethodGet, "/v1/snapshot", "", nil)
	mustStatus(t, resp, http.StatusOK)
	var snap struct {
		Seq     uint64          `json:"seq"`
		Records []api.FeedEvent `json:"records"`
	}
	resp.JSON(t, &snap)
	state := newMirror(t, hub)
	for _, e := range snap.Records {
		state.apply(t, e.JWS)
	}
	// More happens after the snapshot.
	origin.Submit(t, "/v1/flags/"+placed[1].Flag.FlagID+"/lift", protocol.LiftFlag{FlagID: placed[1].Flag.FlagID})
	place(t, origin, toks[7])
	events, _ := feed(t, late, snap.Seq)
	for _, e := range events {
		state.apply(t, e.JWS)
	}

	// Compare with the hub's own answer for every token.
	texts := make([]string, len(toks))
	for i, tok := range toks {
		texts[i] = tok.String()
	}
	res := check(t, late, "account-opening", toks...)
	for i, r := range res.Results {
		_, flagged := state.flags[texts[i]]
		if flagged != (r.Flag != nil) {
			t.Errorf("token %d: mirror flagged=%v, hub %+v", i, flagged, r.Flag)
		}
		if hits := len(state.hits[texts[i]]); hits != 0 {
			t.Errorf("token %d: mirror has %d suspicion hits, want none: suspicions are their reporter's", i, hits)
		}
		if suspected := i == 5 || i == 6; suspected != (r.Suspicions != nil && r.Suspicions.Count == 1) {
			t.Errorf("token %d: the hub's check answered suspicions %+v, want one hit exactly for the suspected tokens", i, r.Suspicions)
		}
	}
}

// A mirror is the least a member keeps to answer checks: active flags and
// suspicion hits by token, built from verified records.
type mirror struct {
	keys  *protocol.KeySet
	flags map[string]string              // token → flag id
	hits  map[string]map[string]struct{} // token → suspicion ids
}

func newMirror(t *testing.T, hub *hubtest.Hub) *mirror {
	return &mirror{keys: hub.JWKS(t), flags: map[string]string{}, hits: map[string]map[string]struct{}{}}
}

func (m *mirror) apply(t *testing.T, jws string) {
	t.Helper()
	rec, err := protocol.VerifyRecord([]byte(jws), m.keys)
	if err != nil {
		t.Fatal(err)
	}
	toks, _ := rec.Subject.Tokens()
	for _, tok := range toks {
		s := tok.String()
		switch ev := rec.Event.(type) {
		case protocol.FlagPlaced:
			m.flags[s] = ev.FlagID
		case protocol.FlagLifted, protocol.FlagExpired:
			delete(m.flags, s)
		case protocol.SuspicionReported:
			if m.hits[s] == nil {
				m.hits[s] = map[string]struct{}{}
			}
			m.hits[s][ev.SuspicionID] = struct{}{}
		case protocol.SuspicionRetracted:
			delete(m.hits[s], ev.SuspicionID)
		case protocol.SuspicionExpired:
			delete(m.hits[s], ev.SuspicionID)
		}
	}
}

func TestFeedRetention(t *testing.T) {
	clock := hubtest.NewClock(start)
	hub := hubtest.Start(t, hubtest.Options{Clock: clock, Policy: decide.Policy{FeedRetention: 24 * time.Hour}})
	origin := hub.AddMember(t, "bank-origin", api.RoleFlag, api.RoleCheck)
	toks := origin.Tokenize(t, protocol.TypeEmail, "old@example.se", "new@example.se")
	old := place(t, origin, toks[0])
	clock.Advance(48 * time.Hour)
	place(t, origin, toks[1])
	if err := hub.RunJobs(); err != nil {
		t.Fatal(err)
	}
	resp := origin.Do(t, http.MethodGet, "/v1/events?after=0", "", nil)
	if p := resp.Problem(t); resp.Status != http.StatusGone || p.Type != protocol.ProblemCursorExpired.URI {
		t.Errorf("cursor 0 after pruning: %d %+v, want 410 cursor-expired", resp.Status, p)
	}
	events, _ := feed(t, origin, 1)
	if len(events) != 1 {
		t.Errorf("feed after the floor: %d events, want the new flag only", len(events))
	}
	// The old flag is still active: its record stays for checks and the
	// snapshot, though it left the feed.
	r := check(t, origin, "payment", toks[0]).Results[0]
	if r.Flag == nil || r.Flag.FlagID != old.Flag.FlagID || len(r.Flag.Records) != 1 {
		t.Errorf("old flag after pruning: %+v, want it with its record", r)
	}
}

func TestSecretRotationKeepsDeliveriesVerifying(t *testing.T) {
	hub := hubtest.Start(t, hubtest.Options{Delivery: fast})
	origin := hub.AddMember(t, "bank-origin", api.RoleFlag)
	m := hub.AddMember(t, "bank-b", api.RoleCheck)
	r := hub.NewReceiver(t, m)
	r.Register(t) // trusts the first secret only
	r.WaitEvent(t, wait, protocol.EventVerification)

	resp := m.Do(t, http.MethodPost, "/v1/members/self/endpoint/secret", "", nil)
	mustStatus(t, resp, http.StatusOK)
	var rot struct {
		Secret string    `json:"secret"`
		Until  time.Time `json:"previous_secrets_valid_until"`
	}
	resp.JSON(t, &rot)
	if rot.Secret == "" || time.Until(rot.Until) < 23*time.Hour {
		t.Fatalf("rotation answered %+v, want a new secret and a day's overlap", rot)
	}
	tok := origin.Tokenize(t, protocol.TypeEmail, "rotate@example.se")[0]
	place(t, origin, tok)
	r.WaitEvent(t, wait, protocol.EventFlagPlaced) // still verifies with the old secret
	r.Trust(t, rot.Secret)                         // switches to the new one
	place(t, origin, origin.Tokenize(t, protocol.TypeEmail, "rotate2@example.se")[0])
	r.WaitFor(t, wait, "a second flag", func(g hubtest.Received) bool {
		n := 0
		for _, x := range r.Received() {
			if x.Record.Event.EventType() == protocol.EventFlagPlaced {
				n++
			}
		}
		return n == 2
	})
	if inv := r.Invalid(); len(inv) > 0 {
		t.Errorf("deliveries refused during rotation: %v", inv)
	}
	// The secret is never shown again.
	if v := endpointOf(t, m); len(v.Secrets) != 2 {
		t.Errorf("endpoint lists %d secrets, want the new one and the old one in its overlap", len(v.Secrets))
	}
}

func TestWebhookURLRules(t *testing.T) {
	hub := hubtest.Start(t, hubtest.Options{Configure: func(c *server.Config) { c.Targets = webhook.TargetPolicy{} }})
	m := hub.AddMember(t, "bank-b", api.RoleCheck)
	for _, url := range []string{
		"http://127.0.0.1:9/hook",      // loopback, and plain HTTP
		"https://127.0.0.1:9/hook",     // loopback
		"https://10.1.2.3/hook",        // private
		"https://169.254.169.254/hook", // link-local: cloud metadata
		"https://[::1]/hook",
		"https://user:pw@bank.example/hook",
		"ftp://bank.example/hook",
	} {
		resp := m.JSON(t, http.MethodPut, "/v1/members/self/endpoint", map[string]string{"url": url})
		if p := resp.Problem(t); resp.Status != http.StatusUnprocessableEntity || p.Type != protocol.ProblemEndpointRefused.URI {
			t.Errorf("PUT endpoint %s: %d %+v, want 422 endpoint-refused", url, resp.Status, p)
		}
	}
	if _, err := hub.Store.Endpoint("bank-b"); err == nil {
		t.Error("a refused URL was stored")
	}
}

// TestEventFilter: an endpoint subscribed to some event types gets only
// those; the feed still serves everything the member is entitled to.
func TestEventFilter(t *testing.T) {
	hub := hubtest.Start(t, hubtest.Options{Delivery: fast})
	origin := hub.AddMember(t, "bank-origin", api.RoleFlag)
	m := hub.AddMember(t, "bank-b", api.RoleCheck)
	r := hub.NewReceiver(t, m)
	r.Register(t, protocol.EventFlagLifted)
	r.WaitEvent(t, wait, protocol.EventVerification)
	tok := origin.Tokenize(t, protocol.TypeEmail, "filter@example.se")[0]
	f := place(t, origin, tok)
	origin.Submit(t, "/v1/flags/"+f.Flag.FlagID+"/lift", protocol.LiftFlag{FlagID: f.Flag.FlagID})
	r.WaitEvent(t, wait, protocol.EventFlagLifted)
	var types []string
	for _, g := range r.Received() {
		types = append(types, g.Record.Event.EventType().Short())
	}
	sort.Strings(types)
	if !slices.Equal(types, []string{"flag-lifted", "verification"}) {
		t.Errorf("filtered endpoint got %v, want the verification and the lift", types)
	}
}

// TestPausedBacklogGrows: events placed while an endpoint is paused queue
// for it, and all of them are delivered, in order, once it resumes.
func TestPausedBacklogGrows(t *testing.T) {
	hub := hubtest.Start(t, hubtest.Options{Delivery: fast})
	origin := hub.AddMember(t, "bank-origin", api.RoleFlag)
	member := hub.AddMember(t, "bank-b", api.RoleCheck)
	r := hub.NewReceiver(t, member)
	r.Register(t)
	r.WaitEvent(t, wait, protocol.EventVerification)

	r.Behave(func(_ int, w http.ResponseWriter, _ *http.Request) bool {
		w.WriteHeader(http.StatusServiceUnavailable)
		return true
	})
	var values []string
	for i := range 5 {
		values = append(values, fmt.Sprintf("paused%d@example.se", i))
	}
	toks := origin.Tokenize(t, protocol.TypeEmail, values...)
	flags := []string{place(t, origin, toks[0]).Flag.FlagID}
	waitEndpoint(t, member, "paused", func(e api.Endpoint) bool { return e.Status == api.EndpointPaused })
	for i, tok := range toks[1:] {
		flags = append(flags, place(t, origin, tok).Flag.FlagID)
		if e := endpointOf(t, member); e.Backlog != i+2 || e.Status != api.EndpointPaused {
			t.Errorf("after %d placements: got backlog %d, status %s; want %d, paused", i+2, e.Backlog, e.Status, i+2)
		}
	}

	r.Behave(nil)
	mustStatus(t, member.Do(t, http.MethodPost, "/v1/members/self/endpoint/resume", "", nil), http.StatusOK)
	waitEndpoint(t, member, "drained", func(e api.Endpoint) bool { return e.Backlog == 0 && e.Status == api.EndpointActive })
	var got []string
	var last uint64
	for _, g := range r.Received() {
		if ev, ok := g.Record.Event.(protocol.FlagPlaced); ok {
			got = append(got, ev.FlagID)
			if g.Seq <= last {
				t.Errorf("got event %d after %d, want sequence order", g.Seq, last)
			}
			last = g.Seq
		}
	}
	if !slices.Equal(got, flags) {
		t.Errorf("got flags %v delivered, want %v", got, flags)
	}
}

// TestPausedLiftOutlivesFeedRetention: a lift queued for a paused endpoint
// is delivered when it resumes, though the feed's retention window passed
// meanwhile; the record goes once delivered. Pruning is a logged command.
func TestPausedLiftOutlivesFeedRetention(t *testing.T) {
	// The hub's clock runs two days behind, then catches up with the
	// receiver's, which checks webhook timestamps against its own.
	clock := hubtest.NewClock(time.Now().Add(-48 * time.Hour))
	hub := hubtest.Start(t, hubtest.Options{Clock: clock, Policy: decide.Policy{FeedRetention: 24 * time.Hour},
		Delivery: server.Delivery{Schedule: []time.Duration{0, 0}, Timeout: 5 * time.Second}})
	origin := hub.AddMember(t, "bank-origin", api.RoleFlag)
	member := hub.AddMember(t, "bank-b", api.RoleCheck)
	r := hub.NewReceiver(t, member)
	r.Behave(func(_ int, w http.ResponseWriter, _ *http.Request) bool {
		w.WriteHeader(http.StatusServiceUnavailable)
		return true
	})
	r.Register(t)
	waitEndpoint(t, member, "paused", func(e api.Endpoint) bool { return e.Status == api.EndpointPaused })
	tok := origin.Tokenize(t, protocol.TypeEmail, "lifted@example.se")[0]
	f := place(t, origin, tok)
	mustStatus(t, origin.Submit(t, "/v1/flags/"+f.Flag.FlagID+"/lift", protocol.LiftFlag{FlagID: f.Flag.FlagID}), http.StatusOK)
	if e := endpointOf(t, member); e.Backlog != 3 {
		t.Fatalf("got backlog %d, want the verification, the placement and the lift", e.Backlog)
	}

	clock.Advance(48 * time.Hour)
	logSize, _ := hub.Store.LogSize()
	if err := hub.RunJobs(); err != nil {
		t.Fatal(err)
	}
	seq, _ := hub.Store.Sequence()
	var pruned []*protocol.LogEntry
	for _, e := range hub.LogEntries(t)[logSize:] {
		if e.Action == protocol.LogFeedPruned {
			pruned = append(pruned, e)
		}
	}
	if len(pruned) != 1 {
		t.Fatalf("got %d feed-pruned log entries, want 1", len(pruned))
	}
	count, _ := pruned[0].Attr("count")
	floor, _ := pruned[0].Attr("floor")
	if pruned[0].Member != "hub" || count != "3" || floor != strconv.FormatUint(seq, 10) {
		t.Errorf("got %s pruning count=%s floor=%s, want hub, 3 and %d", pruned[0].Member, count, floor, seq)
	}
	resp := member.Do(t, http.MethodGet, "/v1/events?after=0", "", nil)
	if p := resp.Problem(t); resp.Status != http.StatusGone || p.Type != protocol.ProblemCursorExpired.URI {
		t.Errorf("cursor 0 after pruning: %d %+v, want 410 cursor-expired", resp.Status, p)
	}

	r.Behave(nil)
	mustStatus(t, member.Do(t, http.MethodPost, "/v1/members/self/endpoint/resume", "", nil), http.StatusOK)
	lift := r.WaitEvent(t, wait, protocol.EventFlagLifted)
	waitEndpoint(t, member, "drained", func(e api.Endpoint) bool { return e.Backlog == 0 && e.Verified })
	if _, err := hub.Store.Record(lift.Record.ID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("got the delivered lift's record kept past the feed's window (%v), want it deleted", err)
	}
	logSize, _ = hub.Store.LogSize()
	if err := hub.RunJobs(); err != nil {
		t.Fatal(err)
	}
	for _, e := range hub.LogEntries(t)[logSize:] {
		if e.Action == protocol.LogFeedPruned {
			t.Errorf("got a second feed-pruned entry %+v, want none: nothing more was due", e)
		}
	}
}

// TestOldSecretStopsSigning: after a rotation both secrets sign until the
// overlap window ends; then only the new one does.
func TestOldSecretStopsSigning(t *testing.T) {
	clock := hubtest.NewClock(time.Now())
	hub := hubtest.Start(t, hubtest.Options{Clock: clock, Delivery: fast})
	origin := hub.AddMember(t, "bank-origin", api.RoleFlag)
	m := hub.AddMember(t, "bank-b", api.RoleCheck)
	r := hub.NewReceiver(t, m)
	old := register(t, r)
	r.WaitEvent(t, wait, protocol.EventVerification)

	resp := m.Do(t, http.MethodPost, "/v1/members/self/endpoint/secret", "", nil)
	mustStatus(t, resp, http.StatusOK)
	var rot struct {
		Secret string    `json:"secret"`
		Until  time.Time `json:"previous_secrets_valid_until"`
	}
	resp.JSON(t, &rot)
	if want := clock.Now().Add(24 * time.Hour); !rot.Until.Equal(want) {
		t.Fatalf("got the old secret valid until %s, want %s", rot.Until, want)
	}
	// The hub's clock moves past the receiver's: the receiver's own check
	// of the timestamp would fail, so deliveries are checked and answered
	// here, at the hub's time.
	deliveries := inspect(t, hub, r, map[string]string{"old": old, "new": rot.Secret}, true)
	toks := origin.Tokenize(t, protocol.TypeEmail, "overlap@example.se", "after@example.se")
	place(t, origin, toks[0])
	if d := nextDelivery(t, deliveries); !d.V1["old"] || !d.V1["new"] || !d.V1a {
		t.Errorf("within the overlap: got %+v, want v1 under both secrets and v1a", d)
	}
	clock.Advance(24 * time.Hour)
	place(t, origin, toks[1])
	if d := nextDelivery(t, deliveries); d.V1["old"] || !d.V1["new"] || !d.V1a {
		t.Errorf("after the overlap: got %+v, want v1 under the new secret only, and v1a", d)
	}
	if v := endpointOf(t, m); len(v.Secrets) != 1 {
		t.Errorf("got %d secrets listed after the overlap, want the new one only", len(v.Secrets))
	}
}

// TestErasureLeavesFeedAndSnapshot: after a subject's erasure, the feed
// and the snapshot hold nothing of its earlier events; the feed has the
// subject-erased record that tells members to erase theirs.
func TestErasureLeavesFeedAndSnapshot(t *testing.T) {
	hub := hubtest.Start(t, hubtest.Options{Policy: decide.Policy{SuspicionLegalBasis: "brottsdatalagen"}})
	origin := hub.AddMember(t, "bank-origin", api.RoleFlag, api.RoleSuspicion, api.RoleCheck)
	member := hub.AddMember(t, "bank-b", api.RoleCheck)
	toks := origin.Tokenize(t, protocol.TypeEmail, "erased@example.se", "kept@example.se")
	place(t, origin, toks[0])
	kept := place(t, origin, toks[1])
	mustStatus(t, origin.Submit(t, "/v1/suspicions", protocol.ReportSuspicion{Subjects: toks[:1], Category: protocol.CategoryMoneyMule, PoliceReport: report}), http.StatusCreated)
	if events, _ := feed(t, member, 0); len(events) != 2 {
		t.Fatalf("got %d events before the erasure, want the two placements (the suspicion is its reporter's)", len(events))
	}

	resp := hub.Operator.JSON(t, http.MethodPost, "/v1/admin/erasures", map[string]string{"subject": toks[0].String(), "legal_basis": "gdpr-art-17"})
	mustStatus(t, resp, http.StatusOK)

	keys := hub.JWKS(t)
	about := func(jws string) (protocol.EventType, string) {
		t.Helper()
		rec, err := protocol.VerifyRecord([]byte(jws), keys)
		if err != nil {
			t.Fatal(err)
		}
		subjects, _ := rec.Subject.Tokens()
		var texts []string
		for _, s := range subjects {
			texts = append(texts, s.String())
		}
		return rec.Event.EventType(), fmt.Sprint(texts)
	}
	events, _ := feed(t, member, 0)
	var got []string
	for _, e := range events {
		typ, subject := about(e.JWS)
		got = append(got, typ.Short()+" "+subject)
	}
	want := []string{"flag-placed [" + toks[1].String() + "]", "subject-erased [" + toks[0].String() + "]"}
	if !slices.Equal(got, want) {
		t.Errorf("got feed %v, want %v", got, want)
	}

	resp = member.Do(t, http.MethodGet, "/v1/snapshot", "", nil)
	mustStatus(t, resp, http.StatusOK)
	var snap struct {
		Records []api.FeedEvent `json:"records"`
	}
	resp.JSON(t, &snap)
	got = nil
	for _, e := range snap.Records {
		typ, subject := about(e.JWS)
		got = append(got, typ.Short()+" "+subject)
	}
	if want := []string{"flag-placed [" + toks[1].String() + "]"}; !slices.Equal(got, want) {
		t.Errorf("got snapshot %v, want %v (flag %s only)", got, want, kept.Flag.FlagID)
	}
}
