package server_test

import (
	"encoding/json"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sparr-dev/sparr/protocol"
	"github.com/sparr-dev/sparr/protocol/api"
	"github.com/sparr-dev/sparr/server"
	"github.com/sparr-dev/sparr/server/decide"
	"github.com/sparr-dev/sparr/server/hubtest"
)

// The privacy promise against members and readers of the log: each test
// names the finding it guards.

// TestSuspicionsNeverGoOutInBulk: a member that did not report a suspicion
// never receives it — not by webhook, feed or snapshot — and learns of it
// only by a logged check, as a hit with its count and categories.
func TestSuspicionsNeverGoOutInBulk(t *testing.T) {
	hub := hubtest.Start(t, hubtest.Options{Policy: decide.Policy{SuspicionLegalBasis: "brottsdatalagen"}, Delivery: fast})
	reporter := hub.AddMember(t, "reporter", api.RoleSuspicion, api.RoleCheck)
	checker := hub.AddMember(t, "checker", api.RoleCheck, api.RoleSuspicion)
	rr, rc := hub.NewReceiver(t, reporter), hub.NewReceiver(t, checker)
	rr.Register(t)
	rc.Register(t)
	rr.WaitEvent(t, wait, protocol.EventVerification)
	rc.WaitEvent(t, wait, protocol.EventVerification)

	tok := reporter.Tokenize(t, protocol.TypeEmail, "mule@example.se")[0]
	resp := reporter.Submit(t, "/v1/suspicions", protocol.ReportSuspicion{Subjects: []protocol.Token{tok}, Category: protocol.CategoryMoneyMule, PoliceReport: report})
	mustStatus(t, resp, http.StatusCreated)
	var reported api.WriteResponse
	resp.JSON(t, &reported)
	rr.WaitEvent(t, wait, protocol.EventSuspicionReported)
	retract := reporter.Submit(t, "/v1/suspicions/"+reported.Suspicion.ID+"/retract", protocol.RetractSuspicion{SuspicionID: reported.Suspicion.ID, Reason: protocol.RetractOther})
	mustStatus(t, retract, http.StatusOK)
	rr.WaitEvent(t, wait, protocol.EventSuspicionRetracted)
	resp = reporter.Submit(t, "/v1/suspicions", protocol.ReportSuspicion{Subjects: []protocol.Token{tok}, Category: protocol.CategoryMoneyMule, PoliceReport: report})
	mustStatus(t, resp, http.StatusCreated)
	flagged := reporter.Tokenize(t, protocol.TypeEmail, "flagged@example.se")[0]
	flagger := hub.AddMember(t, "flagger", api.RoleFlag)
	place(t, flagger, flagged) // an event the checker does get, so that its webhook is known to work
	rc.WaitEvent(t, wait, protocol.EventFlagPlaced)

	isSuspicion := func(typ protocol.EventType) bool { return strings.Contains(string(typ), "suspicion") }
	for _, got := range rc.Received() {
		if isSuspicion(got.Record.Event.EventType()) {
			t.Errorf("the checker's webhook received %s", got.Record.Event.EventType().Short())
		}
	}
	events, _ := feed(t, checker, 0)
	for _, e := range events {
		if isSuspicion(e.Type) {
			t.Errorf("the checker's feed holds %s at %d", e.Type.Short(), e.Seq)
		}
	}
	snap := checker.Do(t, http.MethodGet, "/v1/snapshot", "", nil)
	mustStatus(t, snap, http.StatusOK)
	var s api.Snapshot
	snap.JSON(t, &s)
	for _, e := range s.Records {
		if isSuspicion(e.Type) {
			t.Errorf("the checker's snapshot holds %s", e.Type.Short())
		}
	}
	mine, _ := feed(t, reporter, 0)
	n := 0
	for _, e := range mine {
		if isSuspicion(e.Type) {
			n++
		}
	}
	if n != 2 {
		t.Errorf("the reporter's feed holds %d suspicion records, want its 2 (the retraction, which erased the first report, and the second report)", n)
	}

	res := check(t, checker, api.PurposeAccountOpening, tok).Results[0]
	if res.Advice != api.AdviceReview || res.Suspicions == nil || res.Suspicions.Count != 1 || res.Suspicions.Categories[0] != protocol.CategoryMoneyMule {
		t.Errorf("the checker's check: %+v, want a review with one money-mule hit", res)
	}
}

// TestTokenQuotas: a member's daily quota of token evaluations is enforced
// before an evaluation is returned, the refusal names the quota and when it
// resets, and is logged; the sustained rate is enforced too.
func TestTokenQuotas(t *testing.T) {
	clock := hubtest.NewClock(start)
	hub := hubtest.Start(t, hubtest.Options{Clock: clock, Policy: decide.Policy{Quotas: api.Quotas{TokensPerSecond: 1000, TokensPerDay: 150}}})
	m := hub.AddMember(t, "bank-a", api.RoleCheck)
	values := func(prefix string, n int) []string {
		out := make([]string, n)
		for i := range out {
			out[i] = prefix + strconv.Itoa(i) + "@example.se"
		}
		return out
	}
	m.Tokenize(t, protocol.TypeEmail, values("a", 100)...)
	client, err := protocol.NewTokenClient(hub.Configuration().Token)
	if err != nil {
		t.Fatal(err)
	}
	_, req, err := client.Blind(protocol.TypeEmail, values("b", 100)...)
	if err != nil {
		t.Fatal(err)
	}
	before := hub.LogEntries(t)
	resp := m.JSON(t, http.MethodPost, "/v1/tokens", req)
	p := resp.Problem(t)
	if resp.Status != http.StatusTooManyRequests || p.Type != protocol.ProblemTokenQuota.URI || !strings.Contains(p.Detail, "150") || !strings.Contains(p.Detail, "2026-11-22T00:00:00Z") {
		t.Fatalf("a batch over the daily quota: got %d %+v, want 429 token-quota-exceeded naming the quota of 150 and midnight", resp.Status, p)
	}
	if ra, _ := strconv.Atoi(resp.Header.Get("Retry-After")); ra != int((14 * time.Hour).Seconds()) {
		t.Errorf("Retry-After %q, want the seconds until midnight UTC", resp.Header.Get("Retry-After"))
	}
	last := hub.LogEntries(t)
	if n := len(last) - len(before); n != 1 {
		t.Errorf("the refusal added %d log entries, want 1", n)
	}
	if e := last[len(last)-1]; e.Action != protocol.LogTokens || e.Result != "rejected:token-quota-exceeded" || e.Member != "bank-a" {
		t.Errorf("the refusal is logged as %+v, want tokens rejected:token-quota-exceeded by bank-a", e)
	}
	if strings.Contains(string(resp.Body), "evaluated\"") {
		t.Error("the refusal carries evaluated elements")
	}
	clock.Advance(14 * time.Hour)
	m.Tokenize(t, protocol.TypeEmail, values("c", 100)...) // a new day

	slow := hubtest.Start(t, hubtest.Options{Clock: clock, Policy: decide.Policy{Quotas: api.Quotas{TokensPerSecond: 1}}})
	s := slow.AddMember(t, "bank-s", api.RoleCheck)
	s.Tokenize(t, protocol.TypeEmail, values("d", 100)...) // the burst
	_, req, _ = client.Blind(protocol.TypeEmail, values("e", 2)...)
	resp = s.JSON(t, http.MethodPost, "/v1/tokens", req)
	if resp.Status != http.StatusTooManyRequests || resp.Problem(t).Type != protocol.ProblemRateLimited.URI || resp.Header.Get("Retry-After") == "" {
		t.Errorf("over the sustained rate: got %d %s, want 429 rate-limited with Retry-After", resp.Status, resp.Body)
	}
	// A request the hub would refuse anyway is told what is wrong with it,
	// not to wait: it is checked before it is held to the rate.
	_, full, err := client.Blind(protocol.TypeEmail, values("f", protocol.MaxTokenBatch)...)
	if err != nil {
		t.Fatal(err)
	}
	big := *full
	big.Blinded = append(slices.Clone(full.Blinded), full.Blinded[0])
	stale := *req
	stale.Epoch++
	for name, bad := range map[string]*protocol.TokenRequest{"a batch of 101": &big, "another epoch": &stale} {
		resp = s.JSON(t, http.MethodPost, "/v1/tokens", bad)
		if resp.Status != http.StatusBadRequest || resp.Problem(t).Type != protocol.ProblemInvalidTokenRequest.URI {
			t.Errorf("%s over the sustained rate: got %d %s, want 400 invalid-token-request", name, resp.Status, resp.Body)
		}
		if name == "a batch of 101" && !strings.Contains(resp.Problem(t).Detail, "101") {
			t.Errorf("a batch of 101: detail %q does not name its size", resp.Problem(t).Detail)
		}
	}
}

// TestMemberQuotasAreTheirOwn: the operator sets a member's quotas, which
// replace the hub's defaults for that member alone.
func TestMemberQuotasAreTheirOwn(t *testing.T) {
	hub := hubtest.Start(t, hubtest.Options{Policy: decide.Policy{Quotas: api.Quotas{TokensPerDay: 10}}})
	big := hub.AddMember(t, "big-bank", api.RoleCheck)
	resp := hub.Operator.JSON(t, http.MethodPatch, "/v1/admin/members/big-bank", api.MemberPatch{Quotas: &api.Quotas{TokensPerDay: 1000}})
	mustStatus(t, resp, http.StatusOK)
	eleven := []string{"a@example.se", "b@example.se", "c@example.se", "d@example.se", "e@example.se",
		"f@example.se", "g@example.se", "h@example.se", "i@example.se", "j@example.se", "k@example.se"}
	big.Tokenize(t, protocol.TypeEmail, eleven...)
	// Another member keeps the hub's default of 10 a day.
	small := hub.AddMember(t, "small-bank", api.RoleCheck)
	client, err := protocol.NewTokenClient(hub.Configuration().Token)
	if err != nil {
		t.Fatal(err)
	}
	_, req, err := client.Blind(protocol.TypeEmail, eleven...)
	if err != nil {
		t.Fatal(err)
	}
	if resp := small.JSON(t, http.MethodPost, "/v1/tokens", req); resp.Status != http.StatusTooManyRequests || resp.Problem(t).Type != protocol.ProblemTokenQuota.URI {
		t.Errorf("another member's batch of 11: got %d %s, want 429 token-quota-exceeded (the default of 10)", resp.Status, resp.Body)
	}
	resp = hub.Operator.JSON(t, http.MethodPatch, "/v1/admin/members/big-bank", api.MemberPatch{Quotas: &api.Quotas{TokensPerDay: -1}})
	if resp.Status != http.StatusUnprocessableEntity {
		t.Errorf("a negative quota: got %d, want 422", resp.Status)
	}
}

// TestReconciliation: a regulator sees, per member and day, identifiers
// tokenized beside identities checked — online and in the member's
// replica.
func TestReconciliation(t *testing.T) {
	hub := hubtest.Start(t, hubtest.Options{})
	prober := hub.AddMember(t, "prober", api.RoleCheck)
	honest := hub.AddMember(t, "honest", api.RoleCheck)
	regulator := hub.AddMember(t, "fi", api.RoleRegulator)
	var many []string
	for i := range 100 {
		many = append(many, "guess"+strconv.Itoa(i)+"@example.se")
	}
	prober.Tokenize(t, protocol.TypeEmail, many...)
	toks := honest.Tokenize(t, protocol.TypeEmail, "one@example.se", "two@example.se")
	check(t, honest, api.PurposeAccountOpening, toks...)
	resp := honest.JSON(t, http.MethodPost, "/v1/checks/replica", api.ReplicaChecksRequest{Checks: []api.ReplicaCheck{
		{Token: toks[0].String(), Purpose: api.PurposePayment, At: hub.Now()}, {Token: toks[1].String(), Purpose: api.PurposePayment, At: hub.Now()},
		{Token: toks[0].String(), Purpose: api.PurposePayment, At: hub.Now()}}})
	mustStatus(t, resp, http.StatusOK)

	resp = regulator.Do(t, http.MethodGet, "/v1/audit/stats", "", nil)
	mustStatus(t, resp, http.StatusOK)
	var st api.AuditStats
	resp.JSON(t, &st)
	day := hub.Now().UTC().Format(time.DateOnly)
	if r := st.Reconciliation["prober"][day]; r == nil || r.Tokenized != 100 || r.Checked != 0 {
		t.Errorf("prober: %+v, want 100 tokenized and none checked", r)
	}
	if r := st.Reconciliation["honest"][day]; r == nil || r.Tokenized != 2 || r.Checked != 2 || r.ReplicaChecked != 3 {
		t.Errorf("honest: %+v, want 2 tokenized, 2 checked online, 3 in its replica", r)
	}
}

// TestReplicaChecksAreLoggedAndErased: reported replica checks are logged
// like online checks, and go with a lift of their subject.
func TestReplicaChecksAreLoggedAndErased(t *testing.T) {
	hub := hubtest.Start(t, hubtest.Options{})
	bank := hub.AddMember(t, "bank-a", api.RoleFlag, api.RoleCheck)
	tok := bank.Tokenize(t, protocol.TypeEmail, "anna@example.se")[0]
	for _, tc := range []struct {
		name string
		rc   api.ReplicaCheck
	}{
		{"not a token", api.ReplicaCheck{Token: "email.1.x", Purpose: api.PurposePayment, At: hub.Now()}},
		{"no purpose", api.ReplicaCheck{Token: tok.String(), Purpose: "curiosity", At: hub.Now()}},
		{"from the future", api.ReplicaCheck{Token: tok.String(), Purpose: api.PurposePayment, At: hub.Now().Add(time.Hour)}},
	} {
		resp := bank.JSON(t, http.MethodPost, "/v1/checks/replica", api.ReplicaChecksRequest{Checks: []api.ReplicaCheck{tc.rc}})
		if resp.Status < 400 || resp.Status >= 500 {
			t.Errorf("%s: got %d, want a refusal", tc.name, resp.Status)
		}
	}
	placed := place(t, bank, tok)
	resp := bank.JSON(t, http.MethodPost, "/v1/checks/replica", api.ReplicaChecksRequest{Checks: []api.ReplicaCheck{{Token: tok.String(), Purpose: api.PurposeCreditApplication, At: hub.Now()}}})
	mustStatus(t, resp, http.StatusOK)
	var out api.ReplicaChecksResponse
	resp.JSON(t, &out)
	if _, err := hub.Store.LogDetails(out.LogIndex); err != nil {
		t.Fatalf("the reported check's details: %v", err)
	}
	mustStatus(t, bank.Submit(t, "/v1/flags/"+placed.Flag.FlagID+"/lift", protocol.LiftFlag{FlagID: placed.Flag.FlagID}), http.StatusOK)
	if _, err := hub.Store.LogDetails(out.LogIndex); err == nil {
		t.Error("the reported check's details survived the lift")
	}
}

// TestErasureCannotBeGrouped: after two subjects are lifted in one period,
// the log shows, besides each lift, one batch of tombstones at the
// period's end that mixes both in the order of the entries erased: no
// reader can tell which erased entries were one person's.
func TestErasureCannotBeGrouped(t *testing.T) {
	clock := hubtest.NewClock(start)
	hub := hubtest.Start(t, hubtest.Options{Clock: clock})
	bank := hub.AddMember(t, "bank-a", api.RoleFlag, api.RoleCheck)
	toks := bank.Tokenize(t, protocol.TypeEmail, "anna@example.se", "bertil@example.se")
	a, b := place(t, bank, toks[0]), place(t, bank, toks[1])
	for range 3 {
		check(t, bank, api.PurposeCreditApplication, toks[0])
		check(t, bank, api.PurposeCreditApplication, toks[1])
	}
	before := len(hub.LogEntries(t))
	mustStatus(t, bank.Submit(t, "/v1/flags/"+a.Flag.FlagID+"/lift", protocol.LiftFlag{FlagID: a.Flag.FlagID}), http.StatusOK)
	clock.Advance(time.Hour)
	mustStatus(t, bank.Submit(t, "/v1/flags/"+b.Flag.FlagID+"/lift", protocol.LiftFlag{FlagID: b.Flag.FlagID}), http.StatusOK)
	if err := hub.RunJobs(); err != nil {
		t.Fatal(err)
	}
	for _, e := range hub.LogEntries(t)[before:] {
		if e.Action == protocol.LogErased {
			t.Fatalf("tombstone %d published in the period of its erasure", e.Index)
		}
	}
	clock.Advance(24 * time.Hour)
	if err := hub.RunJobs(); err != nil {
		t.Fatal(err)
	}
	var tombs []*protocol.LogEntry
	for _, e := range hub.LogEntries(t)[before:] {
		if e.Action == protocol.LogErased {
			tombs = append(tombs, e)
		}
	}
	if len(tombs) != 8 {
		t.Fatalf("%d tombstones, want 8 (two placements and six checks)", len(tombs))
	}
	last := uint64(0)
	for i, e := range tombs {
		idx, _ := e.Attr("index")
		n, _ := strconv.ParseUint(idx, 10, 64)
		if i > 0 && (n <= last || !e.Time.Equal(tombs[0].Time) || e.Index != tombs[0].Index+uint64(i)) {
			t.Errorf("tombstone %d (of entry %s) at %s: want one contiguous batch, at one time, by the index of the entry erased", e.Index, idx, e.Time)
		}
		last = n
		if basis, _ := e.Attr("basis"); basis != "consent-withdrawn" {
			t.Errorf("tombstone of entry %s has basis %q", idx, basis)
		}
	}
}

// TestFreeTextGoesWithItsSubject: a details request's justification is
// erased with its subject, a refusal keeps no quoted input, and a problem
// quotes a member's input only briefly.
func TestFreeTextGoesWithItsSubject(t *testing.T) {
	hub := hubtest.Start(t, hubtest.Options{Policy: decide.Policy{SuspicionLegalBasis: "brottsdatalagen"}})
	reporter := hub.AddMember(t, "reporter", api.RoleSuspicion)
	checker := hub.AddMember(t, "checker", api.RoleCheck)
	tok := reporter.Tokenize(t, protocol.TypeEmail, "suspect@example.se")[0]
	resp := reporter.Submit(t, "/v1/suspicions", protocol.ReportSuspicion{Subjects: []protocol.Token{tok}, Category: protocol.CategoryIdentityTheft, PoliceReport: report})
	mustStatus(t, resp, http.StatusCreated)
	var reported api.WriteResponse
	resp.JSON(t, &reported)
	resp = checker.JSON(t, http.MethodPost, "/v1/suspicions/"+reported.Suspicion.ID+"/details",
		api.DetailsRequest{Purpose: api.PurposeCreditApplication, Justification: "the applicant Anna Andersson, born 1980, called from a new number"})
	mustStatus(t, resp, http.StatusOK)
	var details api.DetailsResponse
	resp.JSON(t, &details)
	mustStatus(t, hub.Operator.JSON(t, http.MethodPost, "/v1/admin/erasures", api.ErasureRequest{Subject: tok.String(), LegalBasis: "gdpr-art-17"}), http.StatusOK)
	if _, err := hub.Store.LogDetails(details.LogIndex); err == nil {
		t.Error("the justification of a details request survived the erasure of its subject")
	}

	long := strings.Repeat("A", 10_000)
	resp = checker.JSON(t, http.MethodPost, "/v1/check", api.CheckRequest{Purpose: long, Tokens: []string{tok.String()}})
	p := resp.Problem(t)
	if resp.Status != http.StatusUnprocessableEntity || len(p.Detail) > 400 || !strings.Contains(p.Detail, "…") {
		t.Errorf("a 10 000-character purpose: got %d and a detail of %d bytes; want a refusal quoting it briefly", resp.Status, len(p.Detail))
	}
	entries := hub.LogEntries(t)
	refusal := entries[len(entries)-1]
	if refusal.Result != "rejected:validation-failed" {
		t.Fatalf("last entry %+v, want the refusal", refusal)
	}
	d, err := hub.Store.LogDetails(refusal.Index)
	if err != nil {
		t.Fatal(err)
	}
	var kept map[string]any
	json.Unmarshal(d.Details, &kept)
	if strings.Contains(string(d.Details), "AAAA") || kept["problem"] != "validation-failed" || kept["body_sha256"] == nil {
		t.Errorf("the refusal keeps %s; want the body's hash and the kind of problem, none of the input", d.Details)
	}
}

// TestLogDetailsHaveARetention: details older than the retention are
// erased by the hub's jobs; the entries stay.
func TestLogDetailsHaveARetention(t *testing.T) {
	clock := hubtest.NewClock(start)
	hub := hubtest.Start(t, hubtest.Options{Clock: clock, Policy: decide.Policy{DetailsRetention: 48 * time.Hour}})
	bank := hub.AddMember(t, "bank-a", api.RoleCheck)
	tok := bank.Tokenize(t, protocol.TypeEmail, "anna@example.se")[0]
	old := check(t, bank, api.PurposePayment, tok)
	clock.Advance(47 * time.Hour)
	recent := check(t, bank, api.PurposePayment, tok)
	clock.Advance(2 * time.Hour)
	if err := hub.RunJobs(); err != nil {
		t.Fatal(err)
	}
	if _, err := hub.Store.LogDetails(old.LogIndex); err == nil {
		t.Error("details of a check past the retention are kept")
	}
	if _, err := hub.Store.LogDetails(recent.LogIndex); err != nil {
		t.Errorf("details of a recent check: %v", err)
	}
}

// TestStorageQuota: a member whose requests would have the hub store more
// than its daily allowance is refused with 429 until the day ends.
func TestStorageQuota(t *testing.T) {
	clock := hubtest.NewClock(start)
	hub := hubtest.Start(t, hubtest.Options{Clock: clock, Policy: decide.Policy{Quotas: api.Quotas{StoredBytesPerDay: 8 << 10}}})
	bank := hub.AddMember(t, "bank-a", api.RoleCheck)
	tok := bank.Tokenize(t, protocol.TypeEmail, "anna@example.se")[0]
	var refused *hubtest.Response
	for i := 0; i < 100 && refused == nil; i++ {
		body, _ := json.Marshal(api.CheckRequest{Purpose: api.PurposePayment, Tokens: []string{tok.String()}})
		if resp := bank.Do(t, http.MethodPost, "/v1/check", "application/json", body); resp.Status != http.StatusOK {
			refused = resp
		}
	}
	if refused == nil {
		t.Fatal("100 checks fit in an allowance of 8 KiB")
	}
	if p := refused.Problem(t); refused.Status != http.StatusTooManyRequests || p.Type != protocol.ProblemStorageQuota.URI || refused.Header.Get("Retry-After") == "" {
		t.Errorf("got %d %+v, want 429 storage-quota-exceeded with Retry-After", refused.Status, p)
	}
	clock.Advance(24 * time.Hour)
	check(t, bank, api.PurposePayment, tok) // a new day
}

// TestReplaysAreForgottenAfterTheirWindow: the hub answers a repeated
// submission the same for as long as it accepts it, and then forgets it.
func TestReplaysAreForgottenAfterTheirWindow(t *testing.T) {
	clock := hubtest.NewClock(start)
	hub := hubtest.Start(t, hubtest.Options{Clock: clock})
	bank := hub.AddMember(t, "bank-a", api.RoleFlag)
	tok := bank.Tokenize(t, protocol.TypeEmail, "anna@example.se")[0]
	body := bank.Sign(t, protocol.PlaceFlag{Subject: tok, Kind: protocol.FlagKindStandard, Consent: bank.Consent(tok)})
	mustStatus(t, bank.Do(t, http.MethodPost, "/v1/flags", "application/jose", body), http.StatusCreated)
	mustStatus(t, bank.Do(t, http.MethodPost, "/v1/flags", "application/jose", body), http.StatusCreated)
	rows := func() int {
		n := 0
		hub.Store.Walk(func(b string, _, _ []byte) error {
			if b == "submissions" {
				n++
			}
			return nil
		})
		return n
	}
	if rows() != 1 {
		t.Fatalf("%d submissions remembered, want 1", rows())
	}
	clock.Advance(decide.ReplayWindow + time.Minute)
	if err := hub.RunJobs(); err != nil {
		t.Fatal(err)
	}
	if rows() != 0 {
		t.Errorf("%d submissions remembered after the replay window, want none", rows())
	}
}

// TestErasureDeletesTheConsent: an operator's erasure of a subject deletes
// its flag's consent record.
func TestErasureDeletesTheConsent(t *testing.T) {
	hub := hubtest.Start(t, hubtest.Options{})
	bank := hub.AddMember(t, "bank-a", api.RoleFlag)
	tok := bank.Tokenize(t, protocol.TypeEmail, "anna@example.se")[0]
	placed := place(t, bank, tok)
	if _, err := hub.Store.Consent(placed.Flag.FlagID); err != nil {
		t.Fatalf("the placed flag's consent: %v", err)
	}
	mustStatus(t, hub.Operator.JSON(t, http.MethodPost, "/v1/admin/erasures", api.ErasureRequest{Subject: tok.String(), LegalBasis: "gdpr-art-17"}), http.StatusOK)
	if _, err := hub.Store.Consent(placed.Flag.FlagID); err == nil {
		t.Error("the flag's consent survived the erasure of its subject")
	}
}

// TestFlagIsNotThawedAfterItsWindow: GET /v1/flags/{id} says thawed only
// while the thaw window lasts.
func TestFlagIsNotThawedAfterItsWindow(t *testing.T) {
	clock := hubtest.NewClock(start)
	hub := hubtest.Start(t, hubtest.Options{Clock: clock})
	bank := hub.AddMember(t, "bank-a", api.RoleFlag)
	tok := bank.Tokenize(t, protocol.TypeEmail, "anna@example.se")[0]
	placed := place(t, bank, tok)
	id := placed.Flag.FlagID
	mustStatus(t, bank.Submit(t, "/v1/flags/"+id+"/thaw", protocol.ThawFlag{FlagID: id, ThawUntil: protocol.NewNumericDate(clock.Now().Add(2 * time.Hour))}), http.StatusOK)
	thawed := func() bool {
		t.Helper()
		resp := bank.Do(t, http.MethodGet, "/v1/flags/"+id, "", nil)
		mustStatus(t, resp, http.StatusOK)
		var out api.FlagResponse
		resp.JSON(t, &out)
		return out.Flag.Thawed
	}
	if !thawed() {
		t.Fatal("the flag is not thawed inside its window")
	}
	clock.Advance(3 * time.Hour)
	if thawed() {
		t.Error("the flag is still shown thawed after its window ended")
	}
}

// TestDefaultQuotasValidated: the hub refuses to start with a default quota
// that would turn a limit off (not a number) or is out of its bounds; a
// rate.Limiter given NaN would let every request through.
func TestDefaultQuotasValidated(t *testing.T) {
	hub := hubtest.Start(t, hubtest.Options{})
	for _, q := range []api.Quotas{
		{TokensPerSecond: math.NaN()},
		{TokensPerSecond: math.Inf(1)},
		{TokensPerSecond: -1},
		{TokensPerDay: -5},
		{StoredBytesPerDay: api.MaxStoredBytesPerDay + 1},
	} {
		policy := decide.DefaultPolicy()
		policy.Quotas = q
		h, err := server.New(server.Config{Store: hub.Store, Keys: hub.Keys, Issuer: hub.URL, Policy: policy})
		if err == nil {
			h.Close()
		}
		if err == nil || !strings.Contains(err.Error(), "Config.Policy.Quotas") {
			t.Errorf("default quotas %+v: got %v, want an error naming Config.Policy.Quotas", q, err)
		}
	}
}
