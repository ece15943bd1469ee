package client_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sparr-dev/sparr/client"
	"github.com/sparr-dev/sparr/protocol"
	"github.com/sparr-dev/sparr/protocol/api"
	"github.com/sparr-dev/sparr/server"
	"github.com/sparr-dev/sparr/server/decide"
	"github.com/sparr-dev/sparr/server/hubtest"
	"github.com/sparr-dev/sparr/server/keyring"
)

// TestFlagLifecycle follows one flag through every write and the checks in
// between, all against a real hub.
func TestFlagLifecycle(t *testing.T) {
	ctx := context.Background()
	hub := hubtest.Start(t, hubtest.Options{})
	a := newClient(t, hub, hub.AddMember(t, "bank-a", api.RoleFlag, api.RoleCheck))
	b := newClient(t, hub, hub.AddMember(t, "bank-b", api.RoleCheck))

	toks, err := a.Tokenize(ctx, protocol.TypePersonalNumber, pnr)
	if err != nil {
		t.Fatal(err)
	}
	tok := toks[0]
	// The same person, written another way, at another member: the same token.
	if other, err := b.Tokenize(ctx, protocol.TypePersonalNumber, "090527+1474"); err != nil || other[0] != tok {
		t.Fatalf("bank-b's token %v (%v), want bank-a's %s", other, err, tok)
	}

	placed := place(t, a, hub.Now(), tok)
	if placed.Existing || placed.Flag == nil || placed.Flag.Subject != tok || placed.Flag.Status != api.FlagActive {
		t.Fatalf("placed %+v, want a new active flag on the token", placed.Flag)
	}
	ev, ok := placed.Record.Event.(protocol.FlagPlaced)
	if !ok || ev.FlagID != placed.Flag.ID || placed.Record.Txn != placed.SubmissionID || placed.Seq == 0 {
		t.Fatalf("placed record %+v (seq %d), want flag-placed of %s for submission %s", placed.Record, placed.Seq, placed.Flag.ID, placed.SubmissionID)
	}
	flagID := placed.Flag.ID

	// A second flag on the same subject finds the first.
	again := place(t, a, hub.Now(), tok)
	if !again.Existing || again.Flag.ID != flagID || again.Record != nil {
		t.Errorf("second place: existing=%v flag %s record %v, want the existing flag %s and no record", again.Existing, again.Flag.ID, again.Record, flagID)
	}

	res, err := b.Check(ctx, api.PurposeCreditApplication, tok)
	if err != nil {
		t.Fatal(err)
	}
	r := res.Results[0]
	if r.Advice != api.AdviceVerify || r.Flag == nil || r.Flag.ID != flagID || len(r.Flag.Records) != 1 || r.Flag.Records[0].ID != placed.Record.ID {
		t.Fatalf("check: %+v, want verify with the placed record", r)
	}
	if _, err := b.ReportOutcome(ctx, res.ID, api.OutcomeNotVerified); err != nil {
		t.Errorf("report outcome: %v", err)
	}
	if _, err := b.ReportOutcome(ctx, res.ID, api.OutcomeVerified); !errors.Is(err, client.ErrStateConflict) {
		t.Errorf("second outcome: %v, want ErrStateConflict", err)
	}

	extended, err := a.ExtendFlag(ctx, client.ExtendFlagRequest{FlagID: flagID, Kind: protocol.FlagKindExtended,
		PoliceReport: &protocol.PoliceReport{Authority: "Polismyndigheten", CaseNumber: "5000-K1", Date: hub.Now().Format(time.DateOnly)}})
	if err != nil {
		t.Fatal(err)
	}
	if extended.Flag.Kind != protocol.FlagKindExtended || !extended.Flag.ExpiresAt.After(placed.Flag.ExpiresAt) {
		t.Errorf("extended flag %+v, want kind extended and a later expiry than %s", extended.Flag, placed.Flag.ExpiresAt)
	}

	until := hub.Now().Add(time.Hour).Truncate(time.Second)
	thawed, err := a.ThawFlag(ctx, flagID, time.Time{}, until)
	if err != nil {
		t.Fatal(err)
	}
	if !thawed.Flag.Thawed || !thawed.Flag.ThawUntil.Equal(until) {
		t.Errorf("thawed flag %+v, want thawed until %s", thawed.Flag, until)
	}
	res, err = b.Check(ctx, api.PurposeAccountOpening, tok)
	if err != nil {
		t.Fatal(err)
	}
	if r := res.Results[0]; r.Advice != api.AdviceNone || !r.Flag.Thawed || !r.Flag.ThawUntil.Equal(until) || len(r.Flag.Records) != 3 {
		t.Errorf("check during thaw: %+v, want none, thawed until %s, three records", r, until)
	}
	// A thaw longer than the policy allows is refused, with a problem
	// that says which field and why.
	_, err = a.ThawFlag(ctx, flagID, time.Time{}, hub.Now().Add(100*time.Hour))
	var p *client.Problem
	if !errors.As(err, &p) || !errors.Is(err, client.ErrValidation) || p.Status != http.StatusUnprocessableEntity ||
		len(p.Errors) != 1 || p.Errors[0].Pointer != "/request/thaw_until" || p.RequestID == "" || p.Op != "POST /v1/flags/"+flagID+"/thaw" {
		t.Errorf("long thaw: %v (%+v), want a validation-failed problem on /request/thaw_until", err, p)
	}

	got, err := b.Flag(ctx, flagID)
	if err != nil || got.ID != flagID || !got.Thawed {
		t.Errorf("read flag: %+v, %v", got, err)
	}

	lifted, err := a.LiftFlag(ctx, flagID)
	if err != nil {
		t.Fatal(err)
	}
	if lifted.Flag.Status != api.FlagLifted || lifted.Flag.Subject != (protocol.Token{}) {
		t.Errorf("lifted flag %+v, want lifted without a subject", lifted.Flag)
	}
	if _, ok := lifted.Record.Event.(protocol.FlagLifted); !ok {
		t.Errorf("lift record %T", lifted.Record.Event)
	}
	res, err = b.Check(ctx, api.PurposePayment, tok)
	if err != nil {
		t.Fatal(err)
	}
	if r := res.Results[0]; r.Advice != api.AdviceNone || r.Flag != nil {
		t.Errorf("check after lift: %+v, want none", r)
	}
	if _, err := a.LiftFlag(ctx, flagID); !errors.Is(err, client.ErrStateConflict) {
		t.Errorf("lifting twice: %v, want ErrStateConflict", err)
	}
	// The lift erased the earlier records; the lift record stays.
	if _, err := b.Record(ctx, placed.Record.ID); !errors.Is(err, client.ErrNotFound) {
		t.Errorf("placed record after the lift: %v, want ErrNotFound", err)
	}
	e, err := b.Record(ctx, lifted.Record.ID)
	if err != nil || e.Type != protocol.EventFlagLifted || e.Seq != lifted.Seq || e.JWS != lifted.RecordJWS {
		t.Errorf("lift record: %+v, %v", e, err)
	}
	// Roles: bank-b may check but not place.
	_, err = b.PlaceFlag(ctx, client.PlaceFlagRequest{Subject: tok, Consent: consent(hub.Now())})
	if !errors.Is(err, client.ErrForbidden) || errors.Is(err, client.ErrSuspended) {
		t.Errorf("bank-b placing a flag: %v, want ErrForbidden", err)
	}
}

// TestRetrySendsTheSameBytes loses the hub's answer to a write after the
// hub applied it; the client sends the same signed bytes again and gets
// the same answer, and the hub holds one flag.
func TestRetrySendsTheSameBytes(t *testing.T) {
	ctx := context.Background()
	hub := hubtest.Start(t, hubtest.Options{})
	m := hub.AddMember(t, "bank-a", api.RoleFlag, api.RoleCheck)
	net := newCounter()
	net.lose = func(op string, n int) bool { return op == "POST /v1/flags" && n == 1 }
	c := newClient(t, hub, m, func(cfg *client.Config) { cfg.HTTPClient = &http.Client{Transport: net} })
	toks, err := c.Tokenize(ctx, protocol.TypeEmail, "retry@example.se")
	if err != nil {
		t.Fatal(err)
	}
	s, err := c.Sign(ctx, protocol.PlaceFlag{Subject: toks[0], Kind: protocol.FlagKindStandard, Consent: func() *protocol.Consent {
		cons := consent(hub.Now())
		cons.ID, cons.Subject, cons.Controller, cons.Purpose, cons.LegalBasis = "consent-1", toks[0], m.ID, "identity-fraud-protection", "gdpr-art-6-1-a"
		return cons
	}()})
	if err != nil {
		t.Fatal(err)
	}
	first, err := c.Send(ctx, s)
	if err != nil {
		t.Fatal(err)
	}
	if n := net.count("POST /v1/flags"); n != 2 {
		t.Errorf("sent %d times, want 2 (one answer lost)", n)
	}
	// Sending the stored submission again, as after a crash, gets the
	// same answer.
	second, err := c.Send(ctx, s)
	if err != nil {
		t.Fatal(err)
	}
	if first.Flag.ID != second.Flag.ID || first.RecordJWS != second.RecordJWS || first.Seq != second.Seq || first.LogIndex != second.LogIndex {
		t.Errorf("answers differ: %+v and %+v", first, second)
	}
	if seq, _ := hub.Store.Sequence(); seq != first.Seq {
		t.Errorf("the hub's sequence is %d, want %d: one record only", seq, first.Seq)
	}
	// Another submission that reuses the id is refused.
	other, err := protocol.SignSubmission(&protocol.Submission{Issuer: m.ID, Audience: hub.URL, IssuedAt: hub.Now(), ID: s.ID,
		Request: protocol.LiftFlag{FlagID: first.Flag.ID}}, m.Key)
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Send(ctx, &client.Submission{ID: s.ID, Action: protocol.ActionLiftFlag, Path: "/v1/flags/" + first.Flag.ID + "/lift", JWS: other})
	if !errors.Is(err, client.ErrConflict) {
		t.Errorf("reused id: %v, want ErrConflict", err)
	}
}

// TestRateLimitHonoursRetryAfter: a member over its write limit waits as
// the hub's Retry-After says and then succeeds, or, with retries off, gets
// ErrRateLimited with the wait.
func TestRateLimitHonoursRetryAfter(t *testing.T) {
	ctx := context.Background()
	hub := hubtest.Start(t, hubtest.Options{Limits: server.Limits{Writes: server.Rate{PerSecond: 1, Burst: 1}}})
	m := hub.AddMember(t, "bank-a", api.RoleFlag)
	net := newCounter()
	c := newClient(t, hub, m, func(cfg *client.Config) { cfg.HTTPClient = &http.Client{Transport: net} })
	toks, err := c.Tokenize(ctx, protocol.TypeEmail, "one@example.se", "two@example.se", "three@example.se")
	if err != nil {
		t.Fatal(err)
	}
	place(t, c, hub.Now(), toks[0])
	place(t, c, hub.Now(), toks[1]) // over the limit: refused, waits for Retry-After, sent again
	if n := net.count("POST /v1/flags"); n < 3 {
		t.Errorf("two writes over a limit of one a second took %d requests; the second should have been refused and sent again", n)
	}
	impatient := newClient(t, hub, m, func(cfg *client.Config) { cfg.Retry.Attempts = 1 })
	_, err = impatient.PlaceFlag(ctx, client.PlaceFlagRequest{Subject: toks[2], Consent: consent(hub.Now())})
	var p *client.Problem
	if !errors.As(err, &p) || !errors.Is(err, client.ErrRateLimited) || p.RetryAfter < time.Second {
		t.Errorf("without retries: %v (%+v), want ErrRateLimited with Retry-After", err, p)
	}
}

// TestBearerReuse: one bearer token serves many requests, and a new one is
// minted a minute before it expires.
func TestBearerReuse(t *testing.T) {
	ctx := context.Background()
	clock := hubtest.NewClock(time.Now())
	hub := hubtest.Start(t, hubtest.Options{Clock: clock})
	net := newCounter()
	c := newClient(t, hub, hub.AddMember(t, "bank-a", api.RoleCheck), func(cfg *client.Config) { cfg.HTTPClient = &http.Client{Transport: net} })
	toks, err := c.Tokenize(ctx, protocol.TypeEmail, "bearer@example.se")
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if _, err := c.Check(ctx, api.PurposeOther, toks[0]); err != nil {
			t.Fatal(err)
		}
	}
	clock.Advance(3 * time.Minute) // 2 minutes left: still used
	if _, err := c.Check(ctx, api.PurposeOther, toks[0]); err != nil {
		t.Fatal(err)
	}
	clock.Advance(90 * time.Second) // 30 s left: replaced
	if _, err := c.Check(ctx, api.PurposeOther, toks[0]); err != nil {
		t.Fatal(err)
	}
	got := net.bearers()
	if len(got) != 6 || len(slices.Compact(slices.Clone(got))) != 2 || got[4] != got[0] || got[5] == got[0] {
		t.Errorf("bearer tokens used: %d requests with %d distinct tokens, want 6 requests with 2 (a new one for the last)", len(got), len(slices.Compact(slices.Clone(got))))
	}
}

// TestTokenizeAgainstHub: batches of at most 100, a cache, the same tokens
// as the hub's test members get, and identifier errors that never repeat
// the identifier.
func TestTokenizeAgainstHub(t *testing.T) {
	ctx := context.Background()
	hub := hubtest.Start(t, hubtest.Options{Limits: server.Limits{Tokens: server.Rate{PerSecond: 100, Burst: 100}}})
	m := hub.AddMember(t, "bank-a", api.RoleCheck)
	net := newCounter()
	c := newClient(t, hub, m, func(cfg *client.Config) { cfg.HTTPClient = &http.Client{Transport: net} })
	var emails []string
	for i := range 150 {
		emails = append(emails, fmt.Sprintf(" Person%d@Example.SE ", i))
	}
	toks, err := c.Tokenize(ctx, protocol.TypeEmail, emails...)
	if err != nil {
		t.Fatal(err)
	}
	if n := net.count("POST /v1/tokens"); n != 2 {
		t.Errorf("150 identifiers took %d requests, want 2", n)
	}
	want := m.Tokenize(t, protocol.TypeEmail, "person7@example.se", "person149@example.se")
	if toks[7] != want[0] || toks[149] != want[1] {
		t.Errorf("tokens differ from the hub's own evaluation")
	}
	// Cached: no request, duplicates answered too.
	again, err := c.Tokenize(ctx, protocol.TypeEmail, "person7@example.se", "PERSON7@example.se")
	if err != nil || again[0] != toks[7] || again[1] != toks[7] || net.count("POST /v1/tokens") != 2 {
		t.Errorf("cached tokenize: %v, %d requests; want the cached token twice and no request", err, net.count("POST /v1/tokens"))
	}

	_, err = c.Tokenize(ctx, protocol.TypePersonalNumber, "19090527+1475")
	var ie *protocol.IdentifierError
	if !errors.As(err, &ie) || !errors.Is(err, protocol.ErrCheckDigit) || strings.Contains(err.Error(), "1909") || strings.Contains(err.Error(), "1475") {
		t.Errorf("bad personnummer: %v, want an IdentifierError for the check digit without the number", err)
	}
}

// TestReferenceDate: the client's clock is the reference date of
// personnummer, so a ten-digit number's century follows it.
func TestReferenceDate(t *testing.T) {
	ctx := context.Background()
	clock := hubtest.NewClock(time.Date(2009, 1, 1, 12, 0, 0, 0, time.UTC))
	hub := hubtest.Start(t, hubtest.Options{Clock: clock})
	c := newClient(t, hub, hub.AddMember(t, "bank-a", api.RoleCheck))
	// On 1 January 2009, "-" means under a hundred: born 27 May 2009,
	// which is after the reference date.
	_, err := c.Tokenize(ctx, protocol.TypePersonalNumber, "090527-1474")
	if !errors.Is(err, protocol.ErrFutureDate) {
		t.Errorf("in January 2009, 090527-1474: %v, want ErrFutureDate", err)
	}
	// "+" means a hundred or older: born 1909, the same person as the
	// twelve-digit form.
	short, err1 := c.Tokenize(ctx, protocol.TypePersonalNumber, "090527+1474")
	long, err2 := c.Tokenize(ctx, protocol.TypePersonalNumber, pnr)
	if err1 != nil || err2 != nil || short[0] != long[0] {
		t.Errorf("in January 2009, 090527+1474 and %s: %v, %v; want the same token", pnr, err1, err2)
	}
}

// TestEventsAndSnapshot: the feed from 0 gives every record in order,
// verified; the snapshot gives the active flags; an expired cursor gives
// ErrCursorExpired.
func TestEventsAndSnapshot(t *testing.T) {
	ctx := context.Background()
	clock := hubtest.NewClock(time.Now())
	hub := hubtest.Start(t, hubtest.Options{Clock: clock, Policy: decide.Policy{FeedRetention: 24 * time.Hour}})
	c := newClient(t, hub, hub.AddMember(t, "bank-a", api.RoleFlag, api.RoleCheck))
	toks, err := c.Tokenize(ctx, protocol.TypeEmail, "a@example.se", "b@example.se", "c@example.se")
	if err != nil {
		t.Fatal(err)
	}
	var placed []*client.WriteResult
	for _, tok := range toks {
		placed = append(placed, place(t, c, hub.Now(), tok))
	}
	if _, err := c.LiftFlag(ctx, placed[0].Flag.ID); err != nil {
		t.Fatal(err)
	}
	var seqs []uint64
	var types []string
	for e, err := range c.Events(ctx, 0) {
		if err != nil {
			t.Fatal(err)
		}
		seqs = append(seqs, e.Seq)
		types = append(types, e.Type.Short())
	}
	// The first flag's placed record was erased by its lift.
	if want := "flag-placed flag-placed flag-lifted"; strings.Join(types, " ") != want || !slices.IsSorted(seqs) {
		t.Errorf("feed %v %v, want %s in order", seqs, types, want)
	}
	snap, err := c.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if seq, _ := hub.Store.Sequence(); snap.Seq != seq || len(snap.Events) != 2 {
		t.Errorf("snapshot at %d with %d records, want %d with the 2 active flags", snap.Seq, len(snap.Events), seq)
	}
	page, err := c.Feed(ctx, snap.Seq, 10)
	if err != nil || len(page.Events) != 0 || page.More || page.Next != snap.Seq {
		t.Errorf("feed after the snapshot: %+v, %v; want nothing more", page, err)
	}

	clock.Advance(48 * time.Hour)
	place(t, c, hub.Now(), toks[0])
	if err := hub.RunJobs(); err != nil {
		t.Fatal(err)
	}
	yielded := false
	for _, err := range c.Events(ctx, 0) {
		yielded = true
		if !errors.Is(err, client.ErrCursorExpired) {
			t.Errorf("feed from 0 after pruning: got %v, want ErrCursorExpired", err)
		}
		break
	}
	if !yielded {
		t.Error("feed from 0 after pruning: got nothing, want ErrCursorExpired")
	}
}

// TestSuspicions: report, check (review), details, retract, on a hub that
// shares suspicions; a hub that does not refuses with ErrSuspicionsDisabled.
func TestSuspicions(t *testing.T) {
	ctx := context.Background()
	hub := hubtest.Start(t, hubtest.Options{Policy: decide.Policy{SuspicionLegalBasis: "brottsdatalagen"}})
	rep := newClient(t, hub, hub.AddMember(t, "bank-a", api.RoleSuspicion))
	chk := newClient(t, hub, hub.AddMember(t, "bank-b", api.RoleCheck))
	toks, err := rep.Tokenize(ctx, protocol.TypeEmail, "mule@example.se")
	if err != nil {
		t.Fatal(err)
	}
	phone, err := rep.Tokenize(ctx, protocol.TypePhone, "070-123 45 67")
	if err != nil {
		t.Fatal(err)
	}
	report := &protocol.PoliceReport{Authority: "Polismyndigheten", CaseNumber: "5000-K2", Date: hub.Now().Format(time.DateOnly)}
	res, err := rep.ReportSuspicion(ctx, client.ReportSuspicionRequest{Subjects: []protocol.Token{toks[0], phone[0]}, Category: protocol.CategoryMoneyMule, PoliceReport: report})
	if err != nil {
		t.Fatal(err)
	}
	sid := res.Suspicion.ID
	if ev, ok := res.Record.Event.(protocol.SuspicionReported); !ok || ev.PoliceReport == nil {
		t.Errorf("the reporter's record %+v, want the full record with the police report", res.Record.Event)
	}
	cr, err := chk.Check(ctx, api.PurposeAccountOpening, phone[0])
	if err != nil {
		t.Fatal(err)
	}
	if r := cr.Results[0]; r.Advice != api.AdviceReview || r.Suspicions == nil || r.Suspicions.Count != 1 || r.Suspicions.IDs[0] != sid {
		t.Errorf("check: %+v, want review with the suspicion", r)
	}
	d, err := chk.SuspicionDetails(ctx, sid, api.PurposeAccountOpening, "applicant matches a reported money mule")
	if err != nil {
		t.Fatal(err)
	}
	if d.Suspicion.PoliceReport == nil || len(d.Records) != 1 || len(d.Suspicion.Subjects) != 2 {
		t.Errorf("details %+v, want the report, both subjects and the full record", d)
	}
	if _, err := chk.RetractSuspicion(ctx, sid, protocol.RetractCaseClosed); !errors.Is(err, client.ErrForbidden) {
		t.Errorf("retract by a checking member: %v, want ErrForbidden", err)
	}
	if _, err := rep.RetractSuspicion(ctx, sid, protocol.RetractCaseClosed); err != nil {
		t.Fatal(err)
	}
	if cr, err := chk.Check(ctx, api.PurposeAccountOpening, phone[0]); err != nil || cr.Results[0].Advice != api.AdviceNone {
		t.Errorf("check after retraction: %+v, %v; want none", cr, err)
	}

	off := hubtest.Start(t, hubtest.Options{})
	c := newClient(t, off, off.AddMember(t, "bank-a", api.RoleSuspicion))
	_, err = c.ReportSuspicion(ctx, client.ReportSuspicionRequest{Subjects: toks, Category: protocol.CategoryOther, PoliceReport: report})
	if !errors.Is(err, client.ErrSuspicionsDisabled) || !errors.Is(err, client.ErrForbidden) {
		t.Errorf("suspicion on a hub without a legal basis: %v, want ErrSuspicionsDisabled", err)
	}
}

// TestEndpointManagement registers, reads, rotates, resumes and removes an
// endpoint whose receiver is the client's own.
func TestEndpointManagement(t *testing.T) {
	ctx := context.Background()
	hub := hubtest.Start(t, hubtest.Options{Delivery: fast})
	c := newClient(t, hub, hub.AddMember(t, "bank-b", api.RoleCheck))
	got := newEvents()
	url, rcv := startReceiver(t, c, got.handle)

	secret, e, err := c.RegisterEndpoint(ctx, url, protocol.EventFlagPlaced, protocol.EventFlagLifted)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(secret.Encode(), "whsec_") || len(secret.Encode()) < 20 || e.URL != url || len(e.Events) != 2 {
		t.Fatalf("registered %+v with secret %v", e, secret)
	}
	rcv.SetSecrets(secret)
	got.waitFor(t, "verification event", ofType(protocol.EventVerification))
	e = waitEndpoint(t, c, func(e *api.Endpoint) bool { return e.Status == api.EndpointActive })
	if !e.Verified || e.LastDeliveredSeq == 0 {
		t.Errorf("endpoint %+v, want verified with the verification event delivered", e)
	}
	// Changing the subscriptions keeps the secret.
	same, e, err := c.RegisterEndpoint(ctx, url)
	if err != nil || same.Encode() != (protocol.WebhookSecret{}).Encode() || len(e.Events) != 0 {
		t.Errorf("changing the endpoint: %+v, %v; want no new secret and every event", e, err)
	}
	newSecret, e, err := c.RotateSecret(ctx)
	if err != nil || newSecret.Encode() == secret.Encode() || len(e.Secrets) != 2 || e.Secrets[1].ExpiresAt.IsZero() {
		t.Errorf("rotation: %+v, %v; want a new secret and the old one with an end", e, err)
	}
	if _, err := c.ResumeEndpoint(ctx); !errors.Is(err, client.ErrStateConflict) {
		t.Errorf("resuming an active endpoint: %v, want ErrStateConflict", err)
	}
	if e, err := c.RemoveEndpoint(ctx); err != nil || e.Status != api.EndpointDisabled {
		t.Errorf("remove: %+v, %v", e, err)
	}
	if _, _, err := c.RegisterEndpoint(ctx, "http://10.1.2.3/events"); !errors.Is(err, client.ErrEndpointRefused) {
		t.Errorf("private address: %v, want ErrEndpointRefused", err)
	}
}

func waitEndpoint(t *testing.T, c *client.Client, cond func(*api.Endpoint) bool) *api.Endpoint {
	t.Helper()
	deadline := time.Now().Add(wait)
	for {
		e, err := c.Endpoint(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if cond(e) {
			return e
		}
		if time.Now().After(deadline) {
			t.Fatalf("endpoint never got there: %+v", e)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestUnreachableHub: a hub that does not answer gives a plain error after
// the retries, and a cancelled context stops at once.
func TestUnreachableHub(t *testing.T) {
	key, _ := protocol.GenerateSigningKey(protocol.EdDSA, nil)
	c, err := client.New(client.Config{HubURL: "http://127.0.0.1:1", MemberID: "bank-a", Key: key, Retry: client.Retry{Attempts: 2, Backoff: time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Configuration(context.Background()); err == nil || !strings.Contains(err.Error(), "after 2 attempts") {
		t.Errorf("unreachable hub: %v, want an error after 2 attempts", err)
	}
	// AnsweredOnly: said at once, without a retry.
	counted := newCounter()
	once, err := client.New(client.Config{HubURL: "http://127.0.0.1:1", MemberID: "bank-a", Key: key, HTTPClient: &http.Client{Transport: counted},
		Retry: client.Retry{Attempts: 5, Backoff: time.Millisecond, AnsweredOnly: true}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := once.Configuration(context.Background()); err == nil || strings.Contains(err.Error(), "attempts") || counted.count("GET "+api.ConfigurationPath) != 1 {
		t.Errorf("unreachable hub, answered only: %v after %d requests, want an error after 1", err, counted.count("GET "+api.ConfigurationPath))
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := c.Tokenize(ctx, protocol.TypeEmail, "x@example.se"); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: %v, want context.Canceled", err)
	}
	for _, bad := range []client.Config{{MemberID: "m", Key: key}, {HubURL: "ftp://x", MemberID: "m", Key: key}, {HubURL: "https://x"}} {
		if _, err := client.New(bad); err == nil {
			t.Errorf("New(%+v): no error", bad)
		}
	}
}

// TestResumeEndpoint: an endpoint whose receiver failed until the hub's
// retries ran out is paused; once the receiver works again, resuming it
// delivers what waited.
func TestResumeEndpoint(t *testing.T) {
	ctx := context.Background()
	hub := hubtest.Start(t, hubtest.Options{Delivery: fast})
	origin := newClient(t, hub, hub.AddMember(t, "bank-a", api.RoleFlag))
	c := newClient(t, hub, hub.AddMember(t, "bank-b", api.RoleCheck))
	got := newEvents()
	var down atomic.Bool
	url, rcv := startReceiver(t, c, func(ctx context.Context, e *client.Event) error {
		if down.Load() {
			return errHandler
		}
		return got.handle(ctx, e)
	})
	secret, _, err := c.RegisterEndpoint(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	rcv.SetSecrets(secret)
	waitEndpoint(t, c, func(e *api.Endpoint) bool { return e.Status == api.EndpointActive })

	down.Store(true)
	toks, err := origin.Tokenize(ctx, protocol.TypeEmail, "paused@example.se")
	if err != nil {
		t.Fatal(err)
	}
	placed := place(t, origin, hub.Now(), toks[0])
	e := waitEndpoint(t, c, func(e *api.Endpoint) bool { return e.Status == api.EndpointPaused })
	if e.Backlog != 1 {
		t.Errorf("paused endpoint: got a backlog of %d, want the flag-placed event", e.Backlog)
	}
	down.Store(false)
	e, err = c.ResumeEndpoint(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if e.Status != api.EndpointActive {
		t.Errorf("resumed endpoint: got status %s, want active", e.Status)
	}
	if ev := got.waitFor(t, "flag-placed, after resuming", ofType(protocol.EventFlagPlaced)); ev.Record.ID != placed.Record.ID {
		t.Errorf("got record %s, want the placed flag's %s", ev.Record.ID, placed.Record.ID)
	}
}

// rotatingHub starts a hub whose token key is of the epoch *epoch holds
// when it (re)starts.
func rotatingHub(t *testing.T, epoch *atomic.Uint32) *hubtest.Hub {
	return hubtest.Start(t, hubtest.Options{Configure: func(cfg *server.Config) {
		if e := epoch.Load(); e > 1 {
			k, err := protocol.DeriveTokenKey(e, []byte(strings.Repeat("s", 32)))
			if err != nil {
				t.Fatal(err)
			}
			cfg.Keys.Token = k
		}
	}})
}

// TestRefresh: after the operator rotates the hub's record-signing key and
// token epoch, Refresh brings both into the client.
func TestRefresh(t *testing.T) {
	ctx := context.Background()
	var epoch atomic.Uint32
	epoch.Store(1)
	hub := rotatingHub(t, &epoch)
	c := newClient(t, hub, hub.AddMember(t, "bank-a", api.RoleCheck))
	if err := c.Keys().Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	conf, err := c.Configuration(ctx)
	if err != nil || conf.Token.Epoch != 1 || c.Keys().KeySet().Len() != 1 {
		t.Fatalf("before the rotation: got epoch %d and %d keys (%v), want epoch 1 and 1 key", conf.Token.Epoch, c.Keys().KeySet().Len(), err)
	}
	newKey, _, err := keyring.Rotate(filepath.Join(hub.Dir, "keys"), protocol.EdDSA, nil)
	if err != nil {
		t.Fatal(err)
	}
	epoch.Store(2)
	hub.Restart(t)
	if conf, _ := c.Configuration(ctx); conf.Token.Epoch != 1 {
		t.Fatalf("before Refresh: got epoch %d, want the cached 1", conf.Token.Epoch)
	}
	if err := c.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	conf, err = c.Configuration(ctx)
	if err != nil || conf.Token.Epoch != 2 {
		t.Errorf("after Refresh: got epoch %d (%v), want 2", conf.Token.Epoch, err)
	}
	if _, ok := c.Keys().KeySet().Key(newKey.KeyID()); !ok || c.Keys().KeySet().Len() != 2 {
		t.Errorf("after Refresh: got %d keys, want 2 with the new one", c.Keys().KeySet().Len())
	}
}

// TestTokenizeNewEpoch: a client that still holds the hub's previous token
// epoch is refused, reads the configuration again, and tokenizes under the
// new epoch, in one call.
func TestTokenizeNewEpoch(t *testing.T) {
	ctx := context.Background()
	var epoch atomic.Uint32
	epoch.Store(1)
	hub := rotatingHub(t, &epoch)
	m := hub.AddMember(t, "bank-a", api.RoleCheck)
	net := newCounter()
	c := newClient(t, hub, m, func(cfg *client.Config) { cfg.HTTPClient = &http.Client{Transport: net} })
	old, err := c.Tokenize(ctx, protocol.TypeEmail, "epoch@example.se")
	if err != nil || old[0].Epoch != 1 {
		t.Fatalf("got %v (%v), want a token of epoch 1", old, err)
	}
	epoch.Store(2)
	hub.Restart(t)
	toks, err := c.Tokenize(ctx, protocol.TypeEmail, "epoch@example.se", "new@example.se")
	if err != nil {
		t.Fatal(err)
	}
	want := m.Tokenize(t, protocol.TypeEmail, "epoch@example.se", "new@example.se")
	if toks[0] != want[0] || toks[1] != want[1] || toks[0].Epoch != 2 {
		t.Errorf("got tokens of epoch %d, want the hub's epoch 2 tokens", toks[0].Epoch)
	}
	if n := net.count("GET /.well-known/sparr-configuration"); n != 2 {
		t.Errorf("got %d reads of the configuration, want 2 (once more after the refusal)", n)
	}
}

// TestBearerExpiredRemint: a member whose clock is two minutes behind the
// hub's reuses a bearer token the hub finds expired; the hub refuses it,
// and the client mints a new one and sends the request again at once.
func TestBearerExpiredRemint(t *testing.T) {
	ctx := context.Background()
	clock := hubtest.NewClock(time.Now())
	hub := hubtest.Start(t, hubtest.Options{Clock: clock})
	m := hub.AddMember(t, "bank-a", api.RoleCheck)
	net := newCounter()
	c := newClient(t, hub, m, func(cfg *client.Config) {
		cfg.HTTPClient = &http.Client{Transport: net}
		cfg.Now = func() time.Time { return clock.Now().Add(-2 * time.Minute) }
	})
	tok := m.Tokenize(t, protocol.TypeEmail, "clock@example.se")[0]
	if _, err := c.Check(ctx, api.PurposeOther, tok); err != nil {
		t.Fatal(err)
	}
	// To the client, its token has 75 s left (more than the minute it
	// keeps in hand); to the hub it expired 45 s ago, past its 30 s of
	// tolerance.
	clock.Advance(3*time.Minute + 45*time.Second)
	if _, err := c.Check(ctx, api.PurposeOther, tok); err != nil {
		t.Fatalf("got %v, want the check answered after minting a new token", err)
	}
	got := net.bearers()
	if len(got) != 3 || got[1] != got[0] || got[2] == got[0] {
		t.Errorf("got %d requests, reusing the token %v and a new one %v; want 3: the first token twice, then a new one",
			len(got), len(got) > 1 && got[1] == got[0], len(got) > 2 && got[2] != got[0])
	}
}

// TestReportReplicaChecks: checks a member's replica answered are logged
// in one replica-check entry per report, with their count; a report the
// hub cannot take is refused whole, naming the check at fault; and the
// client sends no report of too few or too many checks.
func TestReportReplicaChecks(t *testing.T) {
	ctx := context.Background()
	hub := hubtest.Start(t, hubtest.Options{})
	counted := newCounter()
	c := newClient(t, hub, hub.AddMember(t, "bank-a", api.RoleCheck), func(cfg *client.Config) { cfg.HTTPClient = &http.Client{Transport: counted} })
	toks, err := c.Tokenize(ctx, protocol.TypeEmail, "replica1@example.se", "replica2@example.se")
	if err != nil {
		t.Fatal(err)
	}
	at := hub.Now().Add(-time.Minute)
	checks := []api.ReplicaCheck{
		{Token: toks[0].String(), Purpose: api.PurposePayment, At: at},
		{Token: toks[1].String(), Purpose: api.PurposeCreditApplication, At: at},
		{Token: toks[0].String(), Purpose: api.PurposePayment, At: at.Add(time.Second)},
	}
	res, err := c.ReportReplicaChecks(ctx, checks)
	if err != nil {
		t.Fatal(err)
	}
	entries := hub.LogEntries(t)
	if res.Count != 3 || res.LogIndex >= uint64(len(entries)) {
		t.Fatalf("got %+v, want 3 checks logged at an entry of the %d-entry log", res, len(entries))
	}
	e := entries[res.LogIndex]
	if n, _ := e.Attr("count"); e.Action != protocol.LogReplicaCheck || e.Member != "bank-a" || n != "3" {
		t.Errorf("entry %d: %s by %s, count %s; want replica-check by bank-a, count 3", e.Index, e.Action, e.Member, n)
	}

	checks[1].Purpose = "curiosity"
	_, err = c.ReportReplicaChecks(ctx, checks)
	var p *client.Problem
	if !errors.As(err, &p) || !errors.Is(err, client.ErrValidation) || len(p.Errors) != 1 || p.Errors[0].Pointer != "/checks/1/purpose" {
		t.Errorf("a report with an unknown purpose: got %v, want ErrValidation naming /checks/1/purpose", err)
	}
	sent := counted.count("POST /v1/checks/replica")
	for _, n := range []int{0, api.MaxReplicaChecks + 1} {
		if _, err := c.ReportReplicaChecks(ctx, make([]api.ReplicaCheck, n)); err == nil {
			t.Errorf("a report of %d checks: no error", n)
		}
	}
	if got := counted.count("POST /v1/checks/replica"); got != sent {
		t.Errorf("got %d reports sent of too few or too many checks, want none", got-sent)
	}
}
