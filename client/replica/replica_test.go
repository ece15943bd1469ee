package replica_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sparr-dev/sparr/client"
	"github.com/sparr-dev/sparr/client/replica"
	"github.com/sparr-dev/sparr/protocol"
	"github.com/sparr-dev/sparr/protocol/api"
	"github.com/sparr-dev/sparr/server"
	"github.com/sparr-dev/sparr/server/decide"
	"github.com/sparr-dev/sparr/server/hubtest"
)

const wait = 20 * time.Second

var fast = server.Delivery{
	Schedule: []time.Duration{0, 20 * time.Millisecond, 40 * time.Millisecond, 60 * time.Millisecond},
	Timeout:  2 * time.Second,
}

// A bank is a member with a client and a replica in a file of its own.
type bank struct {
	id     string
	client *client.Client
	rep    *replica.Replica // replaced by reopen: receivers read it under mu
	mu     sync.Mutex
	path   string
	now    func() time.Time
	logs   *logBuffer
}

// logBuffer keeps what a replica logs.
type logBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func newBank(t *testing.T, hub *hubtest.Hub, id string, roles ...api.Role) *bank {
	t.Helper()
	m := hub.AddMember(t, id, roles...)
	c, err := client.New(client.Config{HubURL: hub.URL, MemberID: id, Key: m.Key, Now: hub.Now, Retry: client.Retry{Backoff: 10 * time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	b := &bank{id: id, client: c, path: filepath.Join(t.TempDir(), id+".db"), now: hub.Now, logs: &logBuffer{}}
	b.open(t)
	t.Cleanup(func() { b.rep.Close() })
	return b
}

func (b *bank) open(t *testing.T) {
	t.Helper()
	r, err := replica.Open(b.path, replica.Config{Client: b.client, Now: b.now, Logger: slog.New(slog.NewTextHandler(b.logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	b.mu.Lock()
	b.rep = r
	b.mu.Unlock()
}

func (b *bank) reopen(t *testing.T) {
	t.Helper()
	if err := b.rep.Close(); err != nil {
		t.Fatal(err)
	}
	b.open(t)
}

func (b *bank) sync(t *testing.T) {
	t.Helper()
	if err := b.rep.Sync(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// receiver returns a receiver whose events go to the replica, except
// those drop says to lose after acknowledging them, as a member that
// crashed between answering and storing would.
func (b *bank) receiver(t *testing.T, drop func(*client.Event) bool) *client.Receiver {
	t.Helper()
	rcv, err := client.NewReceiver(client.ReceiverConfig{Client: b.client, Handle: func(ctx context.Context, e *client.Event) error {
		if drop != nil && drop(e) {
			return nil
		}
		b.mu.Lock()
		rep := b.rep
		b.mu.Unlock()
		return rep.Apply(ctx, e)
	}})
	if err != nil {
		t.Fatal(err)
	}
	return rcv
}

// listen serves a receiver (see receiver) on loopback and registers it as
// the bank's endpoint for the given event types (none: all). It returns
// the receiver and a tap that keeps every delivery as the hub sent it.
func (b *bank) listen(t *testing.T, drop func(*client.Event) bool, types ...protocol.EventType) (*client.Receiver, *tap) {
	t.Helper()
	rcv := b.receiver(t, drop)
	tp := &tap{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		tp.mu.Lock()
		tp.got = append(tp.got, delivery{req.Header.Clone(), body})
		tp.mu.Unlock()
		req.Body = io.NopCloser(bytes.NewReader(body))
		rcv.ServeHTTP(w, req)
	}))
	t.Cleanup(srv.Close)
	secret, _, err := b.client.RegisterEndpoint(context.Background(), srv.URL, types...)
	if err != nil {
		t.Fatal(err)
	}
	rcv.SetSecrets(secret)
	return rcv, tp
}

// A delivery is a request as the hub sent it.
type delivery struct {
	header http.Header
	body   []byte
}

// A tap keeps the deliveries a receiver got.
type tap struct {
	mu  sync.Mutex
	got []delivery
}

// of returns the delivery of record id.
func (tp *tap) of(t *testing.T, id string) delivery {
	t.Helper()
	tp.mu.Lock()
	defer tp.mu.Unlock()
	for _, d := range tp.got {
		if strings.HasPrefix(d.header.Get(protocol.HeaderWebhookID), id+"_") {
			return d
		}
	}
	t.Fatalf("no delivery of record %s among %d", id, len(tp.got))
	return delivery{}
}

// caughtUp waits until the replica has applied every event of the hub
// that the member is entitled to: the last of the member's feed. (Events
// of others' suspicions are not pushed to it, so a replica fed by pushes
// alone may lag the hub's own sequence number.)
func (b *bank) caughtUp(t *testing.T, hub *hubtest.Hub) {
	t.Helper()
	last := b.lastEvent(t)
	deadline := time.Now().Add(wait)
	for b.rep.Seq() < last {
		if time.Now().After(deadline) {
			head, _ := hub.Store.Sequence()
			t.Fatalf("%s's replica is at %d, the last event of its feed at %d (the hub at %d)", b.id, b.rep.Seq(), last, head)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// lastEvent returns the sequence number of the last event in the member's
// feed, 0 if none.
func (b *bank) lastEvent(t *testing.T) uint64 {
	t.Helper()
	var after, last uint64
	for {
		page, err := b.client.Feed(context.Background(), after, api.MaxFeedPage)
		if err != nil {
			t.Fatal(err)
		}
		if n := len(page.Events); n > 0 {
			last = page.Events[n-1].Seq
		}
		if !page.More {
			return last
		}
		after = page.Next
	}
}

// converged checks that the replica answers every token as the rule says,
// and holds exactly the records of the hub's snapshot for the member: for
// flags it advises as the hub's check does; of the hub's suspicion hits it
// holds those the member reported itself and no other, and advises review
// only for those. It returns how many of the hub's hits the replica does
// not hold, being other members' suspicions. The comparisons are lookups,
// not checks: nothing is reported.
func (b *bank) converged(t *testing.T, toks []protocol.Token) (othersHits int) {
	t.Helper()
	ctx := context.Background()
	snap, err := b.client.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	own := map[string]bool{} // the suspicions the member reported
	var want, got []string
	for _, e := range snap.Events {
		want = append(want, e.JWS)
		if id, ok := client.SuspicionID(e.Record.Event); ok {
			own[id] = true
		}
	}
	res, err := b.client.Check(ctx, api.PurposeOther, toks...)
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range res.Results {
		local := b.rep.Lookup(toks[i])
		msg, others := same(r, local, own)
		if msg != "" {
			t.Errorf("%s, token %d: %s", b.id, i, msg)
		}
		for _, s := range local.Suspicions {
			if s.Origin != b.id {
				t.Errorf("%s, token %d: holds suspicion %s of %s", b.id, i, s.ID, s.Origin)
			}
		}
		othersHits += others
	}
	for _, r := range b.rep.Records() {
		got = append(got, r.JWS)
	}
	slices.Sort(want)
	slices.Sort(got)
	if !slices.Equal(want, got) {
		t.Errorf("%s holds %d records, the hub's snapshot %d; they differ", b.id, len(got), len(want))
	}
	return othersHits
}

// same compares the hub's answer for a token with the replica's: the
// flag alike; of the hub's suspicion hits, those the member reported
// (own) alike, and no other. It returns what differs, and how many of the
// hub's hits are others' suspicions, which the replica rightly lacks.
func same(hub client.TokenResult, local replica.Advice, own map[string]bool) (msg string, others int) {
	var wantIDs []string
	if s := hub.Suspicions; s != nil {
		for _, id := range s.IDs {
			if own[id] {
				wantIDs = append(wantIDs, id)
			} else {
				others++
			}
		}
	}
	want := hub.Advice
	if want == api.AdviceReview && len(wantIDs) == 0 {
		want = api.AdviceNone // the hub's review stands on others' suspicions alone
	}
	if want != local.Advice {
		return fmt.Sprintf("advice: hub %s (%d hits of others' suspicions), replica %s, want %s", hub.Advice, others, local.Advice, want), others
	}
	if (hub.Flag == nil) != (local.Flag == nil) {
		return fmt.Sprintf("flag: hub %v, replica %v", hub.Flag, local.Flag), others
	}
	if f, l := hub.Flag, local.Flag; f != nil {
		var jws []string
		for _, r := range l.Records {
			jws = append(jws, r.JWS)
		}
		switch {
		case f.ID != l.ID || f.Kind != l.Kind || !f.ExpiresAt.Equal(l.ExpiresAt):
			return fmt.Sprintf("flag: hub %s %s until %s, replica %s %s until %s", f.ID, f.Kind, f.ExpiresAt, l.ID, l.Kind, l.ExpiresAt), others
		case f.Thawed != local.Thawed || (f.Thawed && !f.ThawUntil.Equal(l.ThawUntil)):
			return fmt.Sprintf("thawed: hub %v until %s, replica %v until %s", f.Thawed, f.ThawUntil, local.Thawed, l.ThawUntil), others
		case !slices.Equal(f.JWS, jws):
			return fmt.Sprintf("records: hub %d, replica %d, not the same", len(f.JWS), len(jws)), others
		}
	}
	var ids []string
	var cats []protocol.SuspicionCategory
	for _, s := range local.Suspicions {
		ids = append(ids, s.ID)
		if !slices.Contains(cats, s.Category) {
			cats = append(cats, s.Category)
		}
	}
	if !slices.Equal(ids, wantIDs) {
		return fmt.Sprintf("suspicions: hub %v, of which the member's own %v; replica %v", hub.Suspicions, wantIDs, ids), others
	}
	if s := hub.Suspicions; s != nil && others == 0 && !slices.Equal(s.Categories, cats) {
		return fmt.Sprintf("categories: hub %v, replica %v", s.Categories, cats), others
	}
	for _, c := range cats {
		if s := hub.Suspicions; s == nil || !slices.Contains(s.Categories, c) {
			return fmt.Sprintf("categories: hub %v, replica %v", hub.Suspicions, cats), others
		}
	}
	return "", others
}

// origin is the member where consumers place, thaw and lift flags.
type origin struct {
	*bank
	t   *testing.T
	hub *hubtest.Hub
}

func (o origin) place(tok protocol.Token, expires time.Time) *client.WriteResult {
	o.t.Helper()
	now := o.hub.Now()
	res, err := o.client.PlaceFlag(context.Background(), client.PlaceFlagRequest{Subject: tok, ExpiresAt: expires, Consent: &protocol.Consent{
		Collection: protocol.ConsentCollection{Method: "branch", At: protocol.NewNumericDate(now.Add(-time.Minute))},
		Notice:     "https://bank.example/privacy", ExpiresAt: protocol.NewNumericDate(now.AddDate(2, 0, 0)),
		Evidence: protocol.ConsentEvidence{AuthenticationMethod: "bankid", Reference: "auth"},
	}})
	if err != nil {
		o.t.Fatal(err)
	}
	return res
}

func (o origin) do(res *client.WriteResult, err error) *client.WriteResult {
	o.t.Helper()
	if err != nil {
		o.t.Fatal(err)
	}
	return res
}

func tokens(t *testing.T, c *client.Client, prefix string, n int) []protocol.Token {
	t.Helper()
	var values []string
	for i := range n {
		values = append(values, fmt.Sprintf("%s%d@example.se", prefix, i))
	}
	toks, err := c.Tokenize(context.Background(), protocol.TypeEmail, values...)
	if err != nil {
		t.Fatal(err)
	}
	return toks
}

var report = &protocol.PoliceReport{Authority: "Polismyndigheten", CaseNumber: "5000-K9", Date: "2026-01-02"}

// story makes every kind of change the hub knows: flags placed, extended,
// thawed and lifted, suspicions reported and retracted.
func story(t *testing.T, o origin, toks []protocol.Token) {
	ctx := context.Background()
	var flags []*client.WriteResult
	for _, tok := range toks[:4] {
		flags = append(flags, o.place(tok, time.Time{}))
	}
	o.do(o.client.ExtendFlag(ctx, client.ExtendFlagRequest{FlagID: flags[1].Flag.ID, Kind: protocol.FlagKindExtended, PoliceReport: report}))
	o.do(o.client.ThawFlag(ctx, flags[2].Flag.ID, time.Time{}, o.hub.Now().Add(2*time.Hour)))
	o.do(o.client.LiftFlag(ctx, flags[3].Flag.ID))
	s := o.do(o.client.ReportSuspicion(ctx, client.ReportSuspicionRequest{Subjects: toks[4:6], Category: protocol.CategoryApplicationFraud, PoliceReport: report}))
	o.do(o.client.ReportSuspicion(ctx, client.ReportSuspicionRequest{Subjects: toks[5:7], Category: protocol.CategoryMoneyMule, PoliceReport: report}))
	o.do(o.client.RetractSuspicion(ctx, s.Suspicion.ID, protocol.RetractReportedInError))
	o.do(o.client.ReportSuspicion(ctx, client.ReportSuspicionRequest{Subjects: toks[:1], Category: protocol.CategoryIdentityTheft, PoliceReport: report}))
}

func suspicionHub(t *testing.T, opts hubtest.Options) *hubtest.Hub {
	opts.Policy.SuspicionLegalBasis = "brottsdatalagen"
	return hubtest.Start(t, opts)
}

// TestConvergesAfterRestart: a replica that was closed while the hub went
// on answers from its file on reopening, and catches up from its last
// sequence number. The reporter's replica holds its suspicions; the other
// member's holds the flags and none of them.
func TestConvergesAfterRestart(t *testing.T) {
	hub := suspicionHub(t, hubtest.Options{})
	a := origin{newBank(t, hub, "bank-a", api.RoleFlag, api.RoleSuspicion, api.RoleCheck), t, hub}
	b := newBank(t, hub, "bank-b", api.RoleCheck)
	a.sync(t)
	b.sync(t) // bootstraps from an empty hub
	toks := tokens(t, a.client, "restart", 10)
	story(t, a, toks)
	a.sync(t)
	b.sync(t)
	if n := a.converged(t, toks); n != 0 || a.rep.Stats().Suspicions != 2 {
		t.Errorf("the reporter's replica lacks %d of the hub's hits and holds %d suspicions; want none lacking, its 2", n, a.rep.Stats().Suspicions)
	}
	if n := b.converged(t, toks); n == 0 {
		t.Fatal("the hub answered no hit of bank-a's suspicions; the test proves nothing about bank-b lacking them")
	}
	before := b.rep.Stats()

	// bank-b stops; the hub goes on.
	if err := b.rep.Close(); err != nil {
		t.Fatal(err)
	}
	res, err := a.client.Check(context.Background(), api.PurposeOther, toks[0])
	if err != nil {
		t.Fatal(err)
	}
	a.do(a.client.LiftFlag(context.Background(), res.Results[0].Flag.ID))
	a.place(toks[7], time.Time{})
	a.place(toks[8], time.Time{})

	b.open(t)
	if got := b.rep.Stats(); got != before {
		t.Errorf("reopened replica holds %+v, it held %+v", got, before)
	}
	if a := b.rep.Lookup(toks[0]); a.Advice != api.AdviceVerify {
		t.Errorf("reopened replica, before syncing: %s, want verify as it last knew", a)
	}
	b.sync(t)
	b.converged(t, toks)
	if a := b.rep.Lookup(toks[0]); a.Flag != nil {
		t.Errorf("the flag lifted while the replica was down is still held")
	}
}

// TestFillsGap: a member that loses one delivery notices the gap at the
// next one and fills it from the feed.
func TestFillsGap(t *testing.T) {
	hub := suspicionHub(t, hubtest.Options{Delivery: fast})
	a := origin{newBank(t, hub, "bank-a", api.RoleFlag, api.RoleSuspicion, api.RoleCheck), t, hub}
	b := newBank(t, hub, "bank-b", api.RoleCheck)
	b.sync(t)
	var placed atomic.Int32
	var lost atomic.Uint64
	b.listen(t, func(e *client.Event) bool {
		if e.Type == protocol.EventFlagPlaced && placed.Add(1) == 2 {
			lost.Store(e.Seq)
			return true
		}
		return false
	})
	toks := tokens(t, a.client, "gap", 10)
	story(t, a, toks)
	b.caughtUp(t, hub)
	if lost.Load() == 0 {
		t.Fatal("no delivery was lost")
	}
	b.converged(t, toks)
	if a := b.rep.Lookup(toks[1]); a.Flag == nil {
		t.Errorf("the flag whose delivery was lost is not held")
	}
}

// TestLongAbsence: a member away longer than the feed keeps is told its
// cursor expired, takes a snapshot, and converges, having forgotten what
// was lifted meanwhile.
func TestLongAbsence(t *testing.T) {
	clock := hubtest.NewClock(time.Now())
	hub := suspicionHub(t, hubtest.Options{Clock: clock, Policy: decide.Policy{FeedRetention: 24 * time.Hour}})
	a := origin{newBank(t, hub, "bank-a", api.RoleFlag, api.RoleSuspicion, api.RoleCheck), t, hub}
	b := newBank(t, hub, "bank-b", api.RoleCheck)
	toks := tokens(t, a.client, "away", 10)
	first := a.place(toks[9], time.Time{})
	a.sync(t)
	b.sync(t)
	if b.rep.Lookup(toks[9]).Advice != api.AdviceVerify {
		t.Fatal("the first flag is not held")
	}
	// Away for two days: everything happens, the first flag is lifted,
	// and the hub prunes the feed.
	story(t, a, toks)
	a.do(a.client.LiftFlag(context.Background(), first.Flag.ID))
	clock.Advance(48 * time.Hour)
	a.place(toks[8], time.Time{})
	if err := hub.RunJobs(); err != nil {
		t.Fatal(err)
	}
	if _, err := b.client.Feed(context.Background(), b.rep.Seq(), 10); !errors.Is(err, client.ErrCursorExpired) {
		t.Fatalf("the feed from the replica's cursor: %v, want it expired", err)
	}
	for _, bk := range []*bank{a.bank, b} {
		bk.sync(t)
		if !strings.Contains(bk.logs.String(), "starting again from a snapshot") {
			t.Errorf("%s's replica did not start again from a snapshot; it logged:\n%s", bk.id, bk.logs)
		}
		if bk.rep.Lookup(toks[9]).Flag != nil {
			t.Errorf("%s: the flag lifted while the member was away is still held", bk.id)
		}
	}
	if n := a.converged(t, toks); n != 0 {
		t.Errorf("the reporter's replica lacks %d of the hub's hits of its own suspicions", n)
	}
	if n := b.converged(t, toks); n == 0 {
		t.Error("the hub answered no hit of bank-a's suspicions; the test proves nothing about bank-b lacking them")
	}
}

// TestThawAndExpiryAtCallTime: the replica judges thaw windows and expiry
// when it is asked, as the hub does, before any record says so.
func TestThawAndExpiryAtCallTime(t *testing.T) {
	ctx := context.Background()
	start := time.Now().Truncate(time.Second)
	clock := hubtest.NewClock(start)
	hub := hubtest.Start(t, hubtest.Options{Clock: clock})
	a := origin{newBank(t, hub, "bank-a", api.RoleFlag, api.RoleCheck), t, hub}
	b := newBank(t, hub, "bank-b", api.RoleCheck)
	toks := tokens(t, a.client, "thaw", 1)
	f := a.place(toks[0], start.Add(3*time.Hour))
	a.do(a.client.ThawFlag(ctx, f.Flag.ID, start.Add(10*time.Minute), start.Add(70*time.Minute)))
	b.sync(t)
	seq := b.rep.Seq()
	for _, step := range []struct {
		after  time.Duration
		advice api.Advice
		thawed bool
		flag   bool
	}{
		{0, api.AdviceVerify, false, true},
		{15 * time.Minute, api.AdviceNone, true, true},    // in the thaw window
		{55 * time.Minute, api.AdviceVerify, false, true}, // the window closed
		{115 * time.Minute, api.AdviceNone, false, false}, // past expiry; the hub has not said so yet
	} {
		clock.Advance(step.after)
		got := b.rep.Check(api.PurposeCreditApplication, toks[0])
		if got.Advice != step.advice || got.Thawed != step.thawed || (got.Flag != nil) != step.flag {
			t.Errorf("at %s: %s thawed=%v flag=%v, want %s thawed=%v flag=%v", clock.Now().Sub(start), got, got.Thawed, got.Flag != nil, step.advice, step.thawed, step.flag)
		}
		if l := b.rep.Lookup(toks[0]); l.Advice != got.Advice || l.Thawed != got.Thawed || l.Flag != got.Flag {
			t.Errorf("at %s: the check says %s, a lookup %s", clock.Now().Sub(start), got, l)
		}
		b.converged(t, toks)
	}
	if b.rep.Seq() != seq {
		t.Fatal("the replica applied events meanwhile; the test proves nothing")
	}
	if err := b.rep.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if s := b.rep.Stats(); s.ChecksReported != 4 || s.ChecksUnreported != 0 {
		t.Errorf("after a flush: %d checks reported, %d not; want 4 and 0", s.ChecksReported, s.ChecksUnreported)
	}
	// The hub's expiry job sends the record; the replica forgets the flag.
	if err := hub.RunJobs(); err != nil {
		t.Fatal(err)
	}
	b.sync(t)
	if s := b.rep.Stats(); s.Flags != 0 || s.Tokens != 0 || len(b.rep.Records()) != 0 {
		t.Errorf("after the expiry record: %+v, want nothing held", s)
	}
}

// TestDeletesOnLift: pushed lifts make every replica forget the flag, in
// memory and in its file.
func TestDeletesOnLift(t *testing.T) {
	hub := hubtest.Start(t, hubtest.Options{Delivery: fast})
	a := origin{newBank(t, hub, "bank-a", api.RoleFlag, api.RoleCheck), t, hub}
	var banks []*bank
	for _, id := range []string{"bank-b", "bank-c"} {
		b := newBank(t, hub, id, api.RoleCheck)
		b.sync(t)
		b.listen(t, nil)
		banks = append(banks, b)
	}
	toks := tokens(t, a.client, "lift", 2)
	f := a.place(toks[0], time.Time{})
	a.place(toks[1], time.Time{})
	for _, b := range banks {
		b.caughtUp(t, hub)
		if got := b.rep.Lookup(toks[0]); got.Advice != api.AdviceVerify || got.Flag.ID != f.Flag.ID {
			t.Fatalf("%s: %s, want verify", b.id, got)
		}
	}
	a.do(a.client.LiftFlag(context.Background(), f.Flag.ID))
	for _, b := range banks {
		b.caughtUp(t, hub)
		if got := b.rep.Lookup(toks[0]); got.Advice != api.AdviceNone || got.Flag != nil {
			t.Errorf("%s after the lift: %s, want none", b.id, got)
		}
		b.reopen(t)
		for _, r := range b.rep.Records() {
			if r.Seq <= f.Seq {
				t.Errorf("%s's file still holds record %s of the lifted flag", b.id, r.ID)
			}
		}
		if s := b.rep.Stats(); s.Flags != 1 {
			t.Errorf("%s holds %d flags, want the other one", b.id, s.Flags)
		}
		b.converged(t, toks)
	}
}

// TestConcurrentChecks runs checks and lookups while events are applied
// and checks are reported, for the race detector; every check is reported
// once, in order of the queue.
func TestConcurrentChecks(t *testing.T) {
	ctx := context.Background()
	hub := hubtest.Start(t, hubtest.Options{Delivery: fast})
	a := origin{newBank(t, hub, "bank-a", api.RoleFlag, api.RoleCheck), t, hub}
	b := newBank(t, hub, "bank-b", api.RoleCheck)
	b.sync(t)
	b.listen(t, nil)
	toks := tokens(t, a.client, "busy", 5)
	stop := make(chan struct{})
	// Checks until 3 000 were made (a few reports' worth), then lookups.
	const maxChecks = 3000
	var checks atomic.Int64
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				for _, tok := range toks {
					adv := b.rep.Lookup(tok)
					if checks.Add(1) <= maxChecks {
						adv = b.rep.Check(api.PurposePayment, tok)
					}
					if adv.Flag != nil && len(adv.Flag.Records) == 0 {
						t.Error("a flag without records")
					}
				}
			}
		})
	}
	wg.Go(func() {
		for {
			select {
			case <-stop:
				return
			case <-time.After(time.Millisecond):
			}
			if err := b.rep.Flush(ctx); err != nil {
				t.Errorf("flush: %v", err)
			}
		}
	})
	for _, tok := range toks {
		f := a.place(tok, time.Time{})
		a.do(a.client.LiftFlag(ctx, f.Flag.ID))
	}
	b.caughtUp(t, hub)
	for checks.Load() < maxChecks {
		time.Sleep(time.Millisecond)
	}
	close(stop)
	wg.Wait()
	b.converged(t, toks)
	if err := b.rep.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if s := b.rep.Stats(); s.ChecksReported != maxChecks || s.ChecksUnreported != 0 || s.ChecksDropped != 0 || s.ChecksRefused != 0 {
		t.Errorf("got %d checks reported, %d unreported, %d dropped, %d refused; want %d reported", s.ChecksReported, s.ChecksUnreported, s.ChecksDropped, s.ChecksRefused, maxChecks)
	}
	if got := replicaChecksLogged(t, hub, b.id); got != maxChecks {
		t.Errorf("the hub logged %d of bank-b's replica checks, want %d", got, maxChecks)
	}
}

// TestRun: without a webhook, Run's polling of the feed brings changes in,
// and Run reports the checks answered meanwhile.
func TestRun(t *testing.T) {
	hub := hubtest.Start(t, hubtest.Options{})
	a := origin{newBank(t, hub, "bank-a", api.RoleFlag, api.RoleCheck), t, hub}
	b := newBank(t, hub, "bank-b", api.RoleCheck)
	b.rep.Close()
	r, err := replica.Open(b.path, replica.Config{Client: b.client, PollInterval: 10 * time.Millisecond, ReportInterval: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	b.rep = r
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	toks := tokens(t, a.client, "poll", 1)
	a.place(toks[0], time.Time{})
	b.caughtUp(t, hub)
	if r.Check(api.PurposeAccountOpening, toks[0]).Advice != api.AdviceVerify {
		t.Errorf("the polled replica does not hold the flag")
	}
	deadline := time.Now().Add(wait)
	for r.Stats().ChecksReported != 1 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if s := r.Stats(); s.ChecksReported != 1 || s.ChecksUnreported != 0 {
		t.Errorf("Run reported %d checks, left %d; want the one check reported", s.ChecksReported, s.ChecksUnreported)
	}
	if got := replicaChecksLogged(t, hub, b.id); got != 1 {
		t.Errorf("the hub logged %d of bank-b's replica checks, want 1", got)
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("Run returned %v, want context.Canceled", err)
	}
}
