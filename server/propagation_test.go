package server_test

import (
	"fmt"
	"net"
	"net/http"
	"slices"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/sparr-dev/sparr/federation"
	"github.com/sparr-dev/sparr/protocol"
	"github.com/sparr-dev/sparr/server"
	"github.com/sparr-dev/sparr/server/hubtest"
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

func endpointOf(t *testing.T, m *hubtest.Member) server.EndpointView {
	t.Helper()
	resp := m.Do(t, http.MethodGet, "/v1/members/self/endpoint", "", nil)
	mustStatus(t, resp, http.StatusOK)
	var out struct {
		Endpoint server.EndpointView `json:"endpoint"`
	}
	resp.JSON(t, &out)
	return out.Endpoint
}

// waitEndpoint polls a member's endpoint until cond holds.
func waitEndpoint(t *testing.T, m *hubtest.Member, what string, cond func(server.EndpointView) bool) server.EndpointView {
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

func TestFlagReachesTwentyReceivers(t *testing.T) {
	hub := hubtest.Start(t, hubtest.Options{Delivery: fast})
	origin := hub.AddMember(t, "bank-origin", federation.RoleFlag)
	var receivers []*hubtest.Receiver
	for i := range 20 {
		m := hub.AddMember(t, fmt.Sprintf("bank-%02d", i), federation.RoleCheck)
		r := hub.NewReceiver(t, m)
		if i%2 == 1 {
			r.Register(t) // verifies v1 (HMAC with its secret)
		} else {
			r.Register(t)
			r.RequireKey(t) // verifies v1a (the hub's Ed25519 key) only
		}
		receivers = append(receivers, r)
	}
	for _, r := range receivers {
		r.WaitEvent(t, wait, protocol.EventVerification)
		waitEndpoint(t, r.Member, "verified", func(e server.EndpointView) bool { return e.Verified && e.Status == federation.EndpointActive })
	}

	tok := origin.Tokenize(t, protocol.TypePersonalNumber, "190905271474")[0]
	placed := place(t, origin, tok)
	for _, r := range receivers {
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
		waitEndpoint(t, r.Member, "drained", func(e server.EndpointView) bool { return e.Backlog == 0 })
	}
	deliveries := 0
	for _, e := range hub.LogEntries(t) {
		if e.Action == "delivery" && e.Result == "ok" {
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
	origin := hub.AddMember(t, "bank-origin", federation.RoleFlag)
	add := func(id string) *hubtest.Receiver {
		r := hub.NewReceiver(t, hub.AddMember(t, id, federation.RoleCheck))
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
	start := time.Now()
	first := place(t, origin, toks[0])
	// Healthy receivers get the flag without waiting for the hung one's
	// timeout: the generous bound is the point here.
	for _, r := range healthy {
		r.WaitEvent(t, wait, protocol.EventFlagPlaced)
	}
	if took := time.Since(start); took >= fast.Timeout {
		t.Errorf("healthy receivers took %s, as long as a hung receiver's timeout (%s)", took, fast.Timeout)
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
	waitEndpoint(t, flaky.Member, "recovered", func(e server.EndpointView) bool { return e.Failures == 0 && e.Backlog == 0 })

	// The hung and the resetting ones run out of schedule and are paused,
	// with their events kept.
	for _, r := range []*hubtest.Receiver{hung, reset} {
		e := waitEndpoint(t, r.Member, "paused", func(e server.EndpointView) bool { return e.Status == federation.EndpointPaused })
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
	e := waitEndpoint(t, gone.Member, "disabled", func(e server.EndpointView) bool { return e.Status == federation.EndpointDisabled })
	if e.Backlog != 0 {
		t.Errorf("disabled endpoint keeps %d deliveries", e.Backlog)
	}
	// The refusing one dead-lettered the first flag, with its answer, and
	// got the second.
	refusing.WaitFor(t, wait, "second flag", func(g hubtest.Received) bool {
		ev, ok := g.Record.Event.(protocol.FlagPlaced)
		return ok && ev.FlagID == second.Flag.FlagID
	})
	e = waitEndpoint(t, refusing.Member, "one dead letter", func(e server.EndpointView) bool { return e.DeadLetters == 1 })
	if len(e.RecentDead) != 1 || e.RecentDead[0].Status != http.StatusUnprocessableEntity || e.RecentDead[0].Response == "" {
		t.Errorf("dead letters %+v, want the 422 with its answer", e.RecentDead)
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
		Endpoints []server.EndpointView `json:"endpoints"`
	}
	resp.JSON(t, &all)
	if len(all.Endpoints) != 9 {
		t.Errorf("operator sees %d endpoints, want 9", len(all.Endpoints))
	}
}

// TestRestartWithBacklog closes the hub while deliveries are queued and in
// flight, and opens it again: every event arrives, and an event that
// arrives twice carries the same webhook-id both times.
func TestRestartWithBacklog(t *testing.T) {
	hub := hubtest.Start(t, hubtest.Options{Delivery: server.Delivery{Schedule: fast.Schedule, Timeout: 5 * time.Second}})
	origin := hub.AddMember(t, "bank-origin", federation.RoleFlag)
	r := hub.NewReceiver(t, hub.AddMember(t, "bank-b", federation.RoleCheck))
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
	waitEndpoint(t, r.Member, "drained", func(e server.EndpointView) bool { return e.Backlog == 0 })
}

// feed reads a member's whole feed after a cursor.
func feed(t *testing.T, m *hubtest.Member, after uint64) ([]server.FeedEvent, uint64) {
	t.Helper()
	var out []server.FeedEvent
	for {
		resp := m.Do(t, http.MethodGet, fmt.Sprintf("/v1/events?after=%d&limit=3", after), "", nil)
		mustStatus(t, resp, http.StatusOK)
		var page server.FeedPage
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
	origin := hub.AddMember(t, "bank-origin", federation.RoleFlag, federation.RoleCheck)
	member := hub.AddMember(t, "bank-b", federation.RoleCheck)
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
	waitEndpoint(t, member, "paused", func(e server.EndpointView) bool { return e.Status == federation.EndpointPaused })

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
	waitEndpoint(t, member, "drained", func(e server.EndpointView) bool { return e.Backlog == 0 && e.Status == federation.EndpointActive })
	// Resuming an active endpoint is refused.
	if resp := member.Do(t, http.MethodPost, "/v1/members/self/endpoint/resume", "", nil); resp.Status != http.StatusConflict {
		t.Errorf("resuming an active endpoint: %d, want 409", resp.Status)
	}
}

// TestNewMemberBootstraps: a member joining late takes the snapshot, then
// follows the feed from its sequence number, and ends with exactly the
// hub's active flags and suspicion hits.
func TestNewMemberBootstraps(t *testing.T) {
	hub := hubtest.Start(t, hubtest.Options{Policy: server.Policy{SuspicionLegalBasis: "brottsdatalagen"}})
	origin := hub.AddMember(t, "bank-origin", federation.RoleFlag, federation.RoleSuspicion, federation.RoleCheck)
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

	late := hub.AddMember(t, "bank-late", federation.RoleCheck)
	resp := late.Do(t, http.MethodGet, "/v1/snapshot", "", nil)
	mustStatus(t, resp, http.StatusOK)
	var snap struct {
		Seq     uint64             `json:"seq"`
		Records []server.FeedEvent `json:"records"`
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
		if hits := len(state.hits[texts[i]]); (r.Suspicions == nil && hits != 0) || (r.Suspicions != nil && r.Suspicions.Count != hits) {
			t.Errorf("token %d: mirror has %d hits, hub %+v", i, hits, r.Suspicions)
		}
	}
	// A hit record carries no police report: details need their own request.
	for _, e := range snap.Records {
		rec, _ := protocol.VerifyRecord([]byte(e.JWS), hub.JWKS(t))
		if ev, ok := rec.Event.(protocol.SuspicionReported); ok && ev.PoliceReport != nil {
			t.Errorf("the snapshot gave a checking member the police report of suspicion %s", ev.SuspicionID)
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
	hub := hubtest.Start(t, hubtest.Options{Clock: clock, Policy: server.Policy{FeedRetention: 24 * time.Hour}})
	origin := hub.AddMember(t, "bank-origin", federation.RoleFlag, federation.RoleCheck)
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
	origin := hub.AddMember(t, "bank-origin", federation.RoleFlag)
	m := hub.AddMember(t, "bank-b", federation.RoleCheck)
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
	hub := hubtest.Start(t, hubtest.Options{Configure: func(c *server.Config) { c.Targets = federation.TargetPolicy{} }})
	m := hub.AddMember(t, "bank-b", federation.RoleCheck)
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
	origin := hub.AddMember(t, "bank-origin", federation.RoleFlag)
	m := hub.AddMember(t, "bank-b", federation.RoleCheck)
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
