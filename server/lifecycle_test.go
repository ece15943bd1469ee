package server_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sparr-dev/sparr/protocol"
	"github.com/sparr-dev/sparr/protocol/api"
	"github.com/sparr-dev/sparr/server/decide"
	"github.com/sparr-dev/sparr/server/hubtest"
	"github.com/sparr-dev/sparr/server/state"
	"github.com/sparr-dev/sparr/server/store"
)

var (
	start  = time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)
	report = &protocol.PoliceReport{Authority: "Polismyndigheten", CaseNumber: "5000-K123456-26", Date: "2026-11-20"}
)

func place(t *testing.T, m *hubtest.Member, tok protocol.Token) flagResponse {
	t.Helper()
	resp := m.Submit(t, "/v1/flags", protocol.PlaceFlag{Subject: tok, Kind: protocol.FlagKindStandard, Consent: m.Consent(tok)})
	mustStatus(t, resp, http.StatusCreated)
	var out flagResponse
	resp.JSON(t, &out)
	return out
}

func TestSameSubmissionGetsTheSameAnswer(t *testing.T) {
	hub := hubtest.Start(t, hubtest.Options{})
	bank := hub.AddMember(t, "bank-a", api.RoleFlag)
	tok := bank.Tokenize(t, protocol.TypeEmail, "anna@example.se")[0]
	body := bank.Sign(t, protocol.PlaceFlag{Subject: tok, Kind: protocol.FlagKindStandard, Consent: bank.Consent(tok)})

	first := bank.Do(t, http.MethodPost, "/v1/flags", "application/jose", body)
	mustStatus(t, first, http.StatusCreated)
	size, _ := hub.Store.LogSize()
	again := bank.Do(t, http.MethodPost, "/v1/flags", "application/jose", body)
	mustStatus(t, again, http.StatusCreated)
	if !bytes.Equal(first.Body, again.Body) {
		t.Errorf("replay answered\n%s\nwant\n%s", again.Body, first.Body)
	}
	if n, _ := hub.Store.LogSize(); n != size {
		t.Errorf("the replay grew the log from %d to %d", size, n)
	}

	// A second, different placement on the same token gets the first flag.
	var placed flagResponse
	first.JSON(t, &placed)
	second := bank.Submit(t, "/v1/flags", protocol.PlaceFlag{Subject: tok, Kind: protocol.FlagKindStandard, Consent: bank.Consent(tok)})
	mustStatus(t, second, http.StatusOK)
	var existing flagResponse
	second.JSON(t, &existing)
	if !existing.Existing || existing.Flag.FlagID != placed.Flag.FlagID {
		t.Errorf("second placement answered %+v, want the existing flag %s", existing, placed.Flag.FlagID)
	}
}

func TestAcknowledgedWritesSurviveRestart(t *testing.T) {
	hub := hubtest.Start(t, hubtest.Options{})
	bank := hub.AddMember(t, "bank-a", api.RoleFlag, api.RoleCheck)
	toks := bank.Tokenize(t, protocol.TypePhone, "+46701234567", "+46701234568", "+46701234569")
	var flags []flagResponse
	for _, tok := range toks {
		flags = append(flags, place(t, bank, tok))
	}
	logBefore := hub.LogEntries(t)
	hub.Restart(t)

	res := check(t, bank, "payment", toks...)
	for i, r := range res.Results {
		if r.Advice != api.AdviceVerify || r.Flag == nil || r.Flag.FlagID != flags[i].Flag.FlagID {
			t.Errorf("after restart, token %d: %+v, want flag %s", i, r, flags[i].Flag.FlagID)
		}
	}
	logAfter := hub.LogEntries(t)
	for i, e := range logBefore {
		if a, _ := e.Marshal(); true {
			b, _ := logAfter[i].Marshal()
			if !bytes.Equal(a, b) {
				t.Errorf("log entry %d changed across restart", i)
			}
		}
	}
	// The member and its keys survive too: the same bearer still works.
	if resp := bank.Do(t, http.MethodGet, "/v1/flags/"+flags[0].Flag.FlagID, "", nil); resp.Status != http.StatusOK {
		t.Errorf("reading a flag after restart: %d %s", resp.Status, resp.Body)
	}
}

func TestExtendFlag(t *testing.T) {
	clock := hubtest.NewClock(start)
	hub := hubtest.Start(t, hubtest.Options{Clock: clock})
	bank := hub.AddMember(t, "bank-a", api.RoleFlag)
	tok := bank.Tokenize(t, protocol.TypePersonalNumber, "190905271474")[0]
	placed := place(t, bank, tok)
	id := placed.Flag.FlagID

	resp := bank.Submit(t, "/v1/flags/"+id+"/extend", protocol.ExtendFlag{FlagID: id, Kind: protocol.FlagKindExtended, PoliceReport: report})
	mustStatus(t, resp, http.StatusOK)
	var ext flagResponse
	resp.JSON(t, &ext)
	if ext.Flag.Kind != "extended" || !ext.Flag.ExpiresAt.Equal(start.Add(1826*24*time.Hour)) {
		t.Errorf("extended flag %+v, want kind extended expiring in 1826 days", ext.Flag)
	}
	rec, err := protocol.VerifyRecord([]byte(ext.Record), hub.JWKS(t))
	if err != nil {
		t.Fatal(err)
	}
	if ev, ok := rec.Event.(protocol.FlagExtended); !ok || ev.PoliceReport == nil || ev.PoliceReport.CaseNumber != report.CaseNumber {
		t.Errorf("extension record %+v, want the police report", rec.Event)
	}
	// An extended flag cannot go back to standard.
	resp = bank.Submit(t, "/v1/flags/"+id+"/extend", protocol.ExtendFlag{FlagID: id, Kind: protocol.FlagKindStandard})
	if p := resp.Problem(t); resp.Status != http.StatusUnprocessableEntity || p.Type != protocol.ProblemValidation.URI {
		t.Errorf("extended → standard: %d %+v, want 422 validation-failed", resp.Status, p)
	}
	// The URL and the submission must name the same flag.
	resp = bank.Submit(t, "/v1/flags/"+id+"/extend", protocol.ExtendFlag{FlagID: "another", Kind: protocol.FlagKindExtended, PoliceReport: report})
	if resp.Status != http.StatusBadRequest {
		t.Errorf("flag_id not the URL's: %d %s, want 400", resp.Status, resp.Body)
	}
}

func TestExpiryAndReminder(t *testing.T) {
	clock := hubtest.NewClock(start)
	hub := hubtest.Start(t, hubtest.Options{Clock: clock, Policy: decide.Policy{Reminder: 24 * time.Hour}})
	bankA := hub.AddMember(t, "bank-a", api.RoleFlag, api.RoleCheck)
	tok := bankA.Tokenize(t, protocol.TypePersonalNumber, "200002292399")[0]
	expires := start.Add(72 * time.Hour)
	resp := bankA.Submit(t, "/v1/flags", protocol.PlaceFlag{Subject: tok, Kind: protocol.FlagKindStandard, ExpiresAt: protocol.NewNumericDate(expires), Consent: bankA.Consent(tok)})
	mustStatus(t, resp, http.StatusCreated)
	var placed flagResponse
	resp.JSON(t, &placed)

	// Nothing is due yet.
	if err := hub.RunJobs(); err != nil {
		t.Fatal(err)
	}
	if f, _ := hub.Store.Flag(placed.Flag.FlagID); !f.RemindedAt.IsZero() || f.Status != api.FlagActive {
		t.Fatalf("flag %+v changed before anything was due", f)
	}

	// A day before expiry the origin member is reminded, once.
	clock.Advance(48*time.Hour + time.Minute)
	if err := hub.RunJobs(); err != nil {
		t.Fatal(err)
	}
	if err := hub.RunJobs(); err != nil {
		t.Fatal(err)
	}
	f, _ := hub.Store.Flag(placed.Flag.FlagID)
	if f.RemindedAt.IsZero() || len(f.Records) != 2 {
		t.Fatalf("flag %+v, want reminded with two records", f)
	}
	reminder, _ := hub.Store.Record(f.Records[1])
	if reminder.Type != protocol.EventFlagExpiring || reminder.Audience != "bank-a" {
		t.Errorf("reminder record %+v, want flag-expiring for bank-a only", reminder)
	}
	// The origin's check shows it the reminder; another bank's does not.
	if r := check(t, bankA, "credit-application", tok).Results[0]; r.Flag == nil || len(r.Flag.Records) != 2 {
		t.Errorf("origin's check: %+v, want the placement and the reminder", r.Flag)
	}
	other := hub.AddMember(t, "bank-other", api.RoleCheck)
	if r := check(t, other, "credit-application", tok).Results[0]; r.Flag == nil || len(r.Flag.Records) != 1 {
		t.Errorf("another bank's check: %+v, want the placement only", r.Flag)
	}

	// A check just before expiry still says verify; at expiry it says
	// none even before the job has run, and the job then ends the flag.
	clock.Advance(24*time.Hour - 2*time.Minute)
	if r := check(t, bankA, "credit-application", tok).Results[0]; r.Advice != api.AdviceVerify {
		t.Errorf("a minute before expiry: advice %s, want verify", r.Advice)
	}
	clock.Advance(2 * time.Minute)
	if r := check(t, bankA, "credit-application", tok).Results[0]; r.Advice != api.AdviceNone {
		t.Errorf("a minute after expiry, before the job: advice %s, want none", r.Advice)
	}
	if err := hub.RunJobs(); err != nil {
		t.Fatal(err)
	}
	f, _ = hub.Store.Flag(placed.Flag.FlagID)
	if f.Status != api.FlagExpired || f.Subject != "" || len(f.Records) != 1 {
		t.Fatalf("after the job: %+v, want expired, no subject, one record", f)
	}
	expired, _ := hub.Store.Record(f.Records[0])
	rec, err := protocol.VerifyRecord([]byte(expired.JWS), hub.JWKS(t))
	if err != nil {
		t.Fatal(err)
	}
	if ev, ok := rec.Event.(protocol.FlagExpired); !ok || ev.ExpiredAt != protocol.NewNumericDate(expires) {
		t.Errorf("expiry record %+v", rec.Event)
	}
	if _, err := hub.Store.Consent(placed.Flag.FlagID); err == nil {
		t.Error("consent survived expiry")
	}
}

func TestSuspicions(t *testing.T) {
	clock := hubtest.NewClock(start)
	hub := hubtest.Start(t, hubtest.Options{Clock: clock, Policy: decide.Policy{SuspicionLegalBasis: "brottsdatalagen", SuspicionRetention: 30 * 24 * time.Hour}})
	reporter := hub.AddMember(t, "bank-a", api.RoleSuspicion)
	checker := hub.AddMember(t, "bank-b", api.RoleCheck)
	toks := reporter.Tokenize(t, protocol.TypeEmail, "fraudster@example.se")
	toks = append(toks, reporter.Tokenize(t, protocol.TypePhone, "+46701112233")...)

	resp := reporter.Submit(t, "/v1/suspicions", protocol.ReportSuspicion{Subjects: toks, Category: protocol.CategoryApplicationFraud, PoliceReport: report})
	mustStatus(t, resp, http.StatusCreated)
	var reported struct {
		Suspicion struct {
			SuspicionID string `json:"suspicion_id"`
		} `json:"suspicion"`
		Record string `json:"record"`
	}
	resp.JSON(t, &reported)
	id := reported.Suspicion.SuspicionID

	// A check reveals the hit and its category, not the details.
	r := check(t, checker, "account-opening", toks[1]).Results[0]
	if r.Advice != api.AdviceReview || r.Suspicions == nil || r.Suspicions.Count != 1 || r.Suspicions.Categories[0] != "application-fraud" || r.Flag != nil {
		t.Fatalf("check: %+v, want review with one application-fraud hit", r)
	}
	// The record itself is the reporter's alone …
	rec, _ := protocol.VerifyRecord([]byte(reported.Record), hub.JWKS(t))
	if resp := checker.Do(t, http.MethodGet, "/v1/records/"+rec.ID, "", nil); resp.Status != http.StatusNotFound {
		t.Errorf("checker read the suspicion record: %d", resp.Status)
	}
	// … unless a checker asks, with a purpose and a justification, which is logged.
	resp = checker.JSON(t, http.MethodPost, "/v1/suspicions/"+id+"/details", map[string]string{
		"purpose": "account-opening", "justification": "applicant's e-mail matches; deciding whether to open the account",
	})
	mustStatus(t, resp, http.StatusOK)
	var det struct {
		Records []string `json:"records"`
	}
	resp.JSON(t, &det)
	if len(det.Records) != 1 || det.Records[0] != reported.Record {
		t.Errorf("details records %v, want the reported record", det.Records)
	}
	if e := hub.LogEntries(t); e[len(e)-1].Action != "suspicion-details" || e[len(e)-1].Member != "bank-b" {
		t.Errorf("last log entry %+v, want bank-b's suspicion-details", e[len(e)-1])
	}

	// Only the reporter may retract it.
	other := hub.AddMember(t, "bank-c", api.RoleSuspicion)
	resp = other.Submit(t, "/v1/suspicions/"+id+"/retract", protocol.RetractSuspicion{SuspicionID: id, Reason: protocol.RetractReportedInError})
	if resp.Status != http.StatusNotFound {
		t.Errorf("another member's retraction: %d %s, want 404", resp.Status, resp.Body)
	}
	resp = reporter.Submit(t, "/v1/suspicions/"+id+"/retract", protocol.RetractSuspicion{SuspicionID: id, Reason: protocol.RetractReportedInError})
	mustStatus(t, resp, http.StatusOK)
	if r := check(t, checker, "account-opening", toks...).Results; r[0].Advice != api.AdviceNone || r[1].Advice != api.AdviceNone {
		t.Errorf("after retraction: %+v, want none", r)
	}

	// A new suspicion ends with its retention.
	resp = reporter.Submit(t, "/v1/suspicions", protocol.ReportSuspicion{Subjects: toks[:1], Category: protocol.CategoryMoneyMule, PoliceReport: report})
	mustStatus(t, resp, http.StatusCreated)
	clock.Advance(31 * 24 * time.Hour)
	if r := check(t, checker, "payment", toks[0]).Results[0]; r.Advice != api.AdviceNone {
		t.Errorf("past retention: advice %s, want none", r.Advice)
	}
	if err := hub.RunJobs(); err != nil {
		t.Fatal(err)
	}
	// The expiry is logged at once; a tombstone for each entry it erased
	// follows in the batch after the erasure period (a day).
	expired := -1
	for i, e := range hub.LogEntries(t) {
		if e.Action == protocol.LogSuspicionExpired && e.Member == "hub" {
			expired = i
		}
	}
	if expired < 0 {
		t.Fatal("got no suspicion-expired entry by the hub, want the expiry logged")
	}
	tombstones := func() int {
		n := 0
		for _, e := range hub.LogEntries(t)[expired:] {
			if b, _ := e.Attr("basis"); e.Action == protocol.LogErased && b == "retention-ended" {
				n++
			}
		}
		return n
	}
	if n := tombstones(); n != 0 {
		t.Errorf("got %d tombstones of the expiry within its erasure period, want none until it ends", n)
	}
	clock.Advance(24 * time.Hour)
	if err := hub.RunJobs(); err != nil {
		t.Fatal(err)
	}
	if n := tombstones(); n == 0 {
		t.Error("got no tombstones of the expiry after its erasure period, want one per entry it erased")
	}
	assertLogHoldsNoTokens(t, hub, toks...)
}

func TestCheckOutcome(t *testing.T) {
	hub := hubtest.Start(t, hubtest.Options{})
	bank := hub.AddMember(t, "bank-a", api.RoleCheck)
	tok := bank.Tokenize(t, protocol.TypeEmail, "a@example.se")[0]
	res := check(t, bank, "card-issuance", tok)
	resp := bank.JSON(t, http.MethodPost, "/v1/checks/"+res.CheckID+"/outcome", map[string]string{"outcome": "verified"})
	mustStatus(t, resp, http.StatusOK)
	resp = bank.JSON(t, http.MethodPost, "/v1/checks/"+res.CheckID+"/outcome", map[string]string{"outcome": "abandoned"})
	if p := resp.Problem(t); p.Type != protocol.ProblemStateConflict.URI {
		t.Errorf("second outcome: %+v, want state-conflict", p)
	}
	if c, _ := hub.Store.Check(res.CheckID); c.Outcome != "verified" {
		t.Errorf("stored outcome %q, want verified", c.Outcome)
	}
}

// TestPlacementEndsALapsedFlag: a flag past its expiry protects no one,
// even before the expiry job has ended it. A new placement on its subject
// ends it, as the job would, and places the new flag.
func TestPlacementEndsALapsedFlag(t *testing.T) {
	clock := hubtest.NewClock(start)
	hub := hubtest.Start(t, hubtest.Options{Clock: clock})
	bank := hub.AddMember(t, "bank-a", api.RoleFlag, api.RoleCheck)
	tok := bank.Tokenize(t, protocol.TypePersonalNumber, "190905271474")[0]
	resp := bank.Submit(t, "/v1/flags", protocol.PlaceFlag{Subject: tok, Kind: protocol.FlagKindStandard,
		ExpiresAt: protocol.NewNumericDate(start.Add(time.Hour)), Consent: bank.Consent(tok)})
	mustStatus(t, resp, http.StatusCreated)
	var old flagResponse
	resp.JSON(t, &old)

	clock.Advance(2 * time.Hour) // past its expiry; no job runs
	body := bank.Sign(t, protocol.PlaceFlag{Subject: tok, Kind: protocol.FlagKindStandard, Consent: bank.Consent(tok)})
	resp = bank.Do(t, http.MethodPost, "/v1/flags", "application/jose", body)
	mustStatus(t, resp, http.StatusCreated)
	var placed flagResponse
	resp.JSON(t, &placed)
	if placed.Existing || placed.Flag.FlagID == old.Flag.FlagID || placed.Flag.Status != "active" {
		t.Fatalf("got %+v, want a new active flag, not the lapsed %s", placed, old.Flag.FlagID)
	}
	if r := check(t, bank, "credit-application", tok).Results[0]; r.Advice != api.AdviceVerify || r.Flag == nil || r.Flag.FlagID != placed.Flag.FlagID {
		t.Errorf("got check %+v, want verify with flag %s", r, placed.Flag.FlagID)
	}
	// The lapsed flag ended as the expiry job would have ended it.
	f, _ := hub.Store.Flag(old.Flag.FlagID)
	if f.Status != api.FlagExpired || f.Subject != "" || len(f.Records) != 1 {
		t.Fatalf("got lapsed flag %+v, want expired, no subject, one record", f)
	}
	rec, _ := hub.Store.Record(f.Records[0])
	if got, err := protocol.VerifyRecord([]byte(rec.JWS), hub.JWKS(t)); err != nil {
		t.Error(err)
	} else if ev, ok := got.Event.(protocol.FlagExpired); !ok || ev.ExpiredAt != protocol.NewNumericDate(start.Add(time.Hour)) {
		t.Errorf("got expiry record %+v, want flag-expired at the flag's expiry", got.Event)
	}
	if _, err := hub.Store.Consent(old.Flag.FlagID); err == nil {
		t.Error("got the lapsed flag's consent kept, want it deleted")
	}
	// The job finds nothing more to do, and the same submission again
	// gets the same answer.
	logSize, _ := hub.Store.LogSize()
	if err := hub.RunJobs(); err != nil {
		t.Fatal(err)
	}
	if n, _ := hub.Store.LogSize(); n != logSize {
		t.Errorf("got %d log entries after the job, want %d: nothing was due", n, logSize)
	}
	again := bank.Do(t, http.MethodPost, "/v1/flags", "application/jose", body)
	mustStatus(t, again, http.StatusCreated)
	if !bytes.Equal(again.Body, resp.Body) {
		t.Errorf("got replay %s, want %s", again.Body, resp.Body)
	}
}

// TestRecordEntitlement: GET /v1/records/{jti} gives a record to exactly
// the members the check, the feed and webhooks give it to.
func TestRecordEntitlement(t *testing.T) {
	hub := hubtest.Start(t, hubtest.Options{Policy: decide.Policy{SuspicionLegalBasis: "brottsdatalagen"}})
	flagger := hub.AddMember(t, "only-flag", api.RoleFlag)
	reporter := hub.AddMember(t, "reporter", api.RoleSuspicion)
	suspOnly := hub.AddMember(t, "only-suspicion", api.RoleSuspicion)
	checker := hub.AddMember(t, "only-check", api.RoleCheck)
	toks := flagger.Tokenize(t, protocol.TypeEmail, "flagged@example.se", "suspected@example.se")

	placed := place(t, flagger, toks[0])
	placedRec, err := protocol.VerifyRecord([]byte(placed.Record), hub.JWKS(t))
	if err != nil {
		t.Fatal(err)
	}
	resp := reporter.Submit(t, "/v1/suspicions", protocol.ReportSuspicion{Subjects: toks[1:], Category: protocol.CategoryMoneyMule, PoliceReport: report})
	mustStatus(t, resp, http.StatusCreated)
	var reported struct {
		Suspicion struct {
			SuspicionID string `json:"suspicion_id"`
		} `json:"suspicion"`
	}
	resp.JSON(t, &reported)
	sp, err := hub.Store.Suspicion(reported.Suspicion.SuspicionID)
	if err != nil {
		t.Fatal(err)
	}
	if len(sp.Records) != 1 {
		t.Fatalf("a suspicion has %d records, want one: its reporter's", len(sp.Records))
	}
	full := sp.Records[0] // the reporter's, with the police report; no one else gets a record of it

	cases := []struct {
		record string
		what   string
		member *hubtest.Member
		want   int
	}{
		{placedRec.ID, "flag-placed", flagger, http.StatusOK},
		{placedRec.ID, "flag-placed", checker, http.StatusOK},
		{placedRec.ID, "flag-placed", suspOnly, http.StatusNotFound},
		{full, "suspicion in full", reporter, http.StatusOK},
		{full, "suspicion in full", flagger, http.StatusNotFound}, // GDPR Art. 10 data
		{full, "suspicion in full", suspOnly, http.StatusNotFound},
		{full, "suspicion in full", checker, http.StatusNotFound},
	}
	for _, tc := range cases {
		t.Run(tc.what+"/"+tc.member.ID, func(t *testing.T) {
			resp := tc.member.Do(t, http.MethodGet, "/v1/records/"+tc.record, "", nil)
			if resp.Status != tc.want {
				t.Fatalf("got status %d, want %d: %s", resp.Status, tc.want, resp.Body)
			}
			conforms(t, "GET /v1/records/:jti", resp)
		})
	}
}

// TestGetFlagShowsOthersWhatACheckWould: the member that placed a flag
// reads all of it; another member reads its state and the signed records
// it is entitled to, not the subject, the consent or the police report.
func TestGetFlagShowsOthersWhatACheckWould(t *testing.T) {
	clock := hubtest.NewClock(start)
	hub := hubtest.Start(t, hubtest.Options{Clock: clock, Policy: decide.Policy{Reminder: 24 * time.Hour}})
	origin := hub.AddMember(t, "bank-a", api.RoleFlag, api.RoleCheck)
	other := hub.AddMember(t, "bank-b", api.RoleFlag, api.RoleCheck)
	tok := origin.Tokenize(t, protocol.TypePersonalNumber, "190905271474")[0]
	resp := origin.Submit(t, "/v1/flags", protocol.PlaceFlag{Subject: tok, Kind: protocol.FlagKindExtended, PoliceReport: report,
		ExpiresAt: protocol.NewNumericDate(start.Add(48 * time.Hour)), Consent: origin.Consent(tok)})
	mustStatus(t, resp, http.StatusCreated)
	var placed flagResponse
	resp.JSON(t, &placed)
	clock.Advance(25 * time.Hour) // the origin's reminder is due
	if err := hub.RunJobs(); err != nil {
		t.Fatal(err)
	}

	type view struct {
		Flag struct {
			Subject      string                 `json:"subject"`
			Status       string                 `json:"status"`
			ConsentRef   string                 `json:"consent_ref"`
			PoliceReport *protocol.PoliceReport `json:"police_report"`
		} `json:"flag"`
		Records []string `json:"records"`
	}
	read := func(m *hubtest.Member) view {
		t.Helper()
		resp := m.Do(t, http.MethodGet, "/v1/flags/"+placed.Flag.FlagID, "", nil)
		mustStatus(t, resp, http.StatusOK)
		conforms(t, "GET /v1/flags/:id", resp)
		var v view
		resp.JSON(t, &v)
		return v
	}
	mine := read(origin)
	if mine.Flag.Subject != tok.String() || mine.Flag.ConsentRef == "" || mine.Flag.PoliceReport == nil || len(mine.Records) != 2 {
		t.Errorf("got the origin's view %+v, want subject, consent, police report, and the placement and reminder", mine)
	}
	theirs := read(other)
	if theirs.Flag.Subject != "" || theirs.Flag.ConsentRef != "" || theirs.Flag.PoliceReport != nil || theirs.Flag.Status != "active" {
		t.Errorf("got another member's view %+v, want the active state without subject, consent or police report", theirs.Flag)
	}
	wantRecords := check(t, other, "payment", tok).Results[0].Flag.Records
	if !slices.Equal(theirs.Records, wantRecords) || len(wantRecords) != 1 {
		t.Errorf("got records %d, want the %d its check shows", len(theirs.Records), len(wantRecords))
	}
	// Nor does another member's placement on the subject, answered with
	// the flag already active, show the origin's consent.
	resp = other.Submit(t, "/v1/flags", protocol.PlaceFlag{Subject: tok, Kind: protocol.FlagKindStandard, Consent: other.Consent(tok)})
	mustStatus(t, resp, http.StatusOK)
	var existing view
	resp.JSON(t, &existing)
	if existing.Flag.ConsentRef != "" || existing.Flag.PoliceReport != nil || existing.Flag.Subject != "" {
		t.Errorf("got the existing flag %+v, want it without subject, consent or police report", existing.Flag)
	}
}

// TestLiftErasesEveryLogDetailNamingTheSubject: a lift deletes the details
// and salt of every log entry naming the subject — the placement, a second
// placement answered "already active", and checks, a check of several
// tokens included — and keeps the entries, with their commitments.
func TestLiftErasesEveryLogDetailNamingTheSubject(t *testing.T) {
	t.Run("lift", func(t *testing.T) {
		testEndErasesLogDetails(t, nil, func(hub *hubtest.Hub, origin *hubtest.Member, placed flagResponse) {
			resp := origin.Submit(t, "/v1/flags/"+placed.Flag.FlagID+"/lift", protocol.LiftFlag{FlagID: placed.Flag.FlagID})
			mustStatus(t, resp, http.StatusOK)
		})
	})
	// Expiry ends the consent's purpose as a lift withdraws it.
	t.Run("expiry", func(t *testing.T) {
		clock := hubtest.NewClock(time.Now())
		testEndErasesLogDetails(t, clock, func(hub *hubtest.Hub, _ *hubtest.Member, _ flagResponse) {
			clock.Advance(400 * 24 * time.Hour)
			if err := hub.RunJobs(); err != nil {
				t.Fatal(err)
			}
		})
	})
}

// testEndErasesLogDetails places a flag, checks and places it again, ends
// it with end, and checks that no log detail names the subject any more
// while every entry and commitment stays.
func testEndErasesLogDetails(t *testing.T, clock *hubtest.Clock, end func(*hubtest.Hub, *hubtest.Member, flagResponse)) {
	if clock == nil {
		clock = hubtest.NewClock(time.Now())
	}
	hub := hubtest.Start(t, hubtest.Options{Clock: clock})
	origin := hub.AddMember(t, "bank-a", api.RoleFlag, api.RoleCheck)
	checker := hub.AddMember(t, "bank-b", api.RoleFlag, api.RoleCheck)
	toks := origin.Tokenize(t, protocol.TypeEmail, "lifted@example.se", "bystander@example.se")
	tok := toks[0]

	placed := place(t, origin, tok)
	named := []uint64{placed.LogIndex}
	named = append(named, check(t, checker, "payment", tok).LogIndex, check(t, checker, "payment", toks...).LogIndex)
	resp := checker.Submit(t, "/v1/flags", protocol.PlaceFlag{Subject: tok, Kind: protocol.FlagKindStandard, Consent: checker.Consent(tok)})
	mustStatus(t, resp, http.StatusOK)
	var again flagResponse
	resp.JSON(t, &again)
	if !again.Existing {
		t.Fatalf("got %+v, want the flag already active", again)
	}
	named = append(named, again.LogIndex)
	before := hub.LogEntries(t)

	end(hub, origin, placed)

	for _, idx := range named {
		if _, err := hub.Store.LogDetails(idx); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("log entry %d (%s): got its details kept (%v), want them erased", idx, before[idx].Action, err)
		}
	}
	// Nothing left in the log's buckets names the token, details decoded.
	err := hub.Store.Walk(func(bucket string, k, v []byte) error {
		if !strings.HasPrefix(bucket, "log") {
			return nil
		}
		if bucket == "log_details" {
			var d state.Details
			if err := json.Unmarshal(v, &d); err != nil {
				return err
			}
			v = append(d.Details, strings.Join(d.Subjects, " ")...)
		}
		if bytes.Contains(k, []byte(tok.String())) || bytes.Contains(v, []byte(tok.String())) {
			t.Errorf("got bucket %s key %x naming the token after the flag ended, want none", bucket, k)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// The entries stay as they were, commitments and all, each erased one
	// with a tombstone in the batch after the erasure period (a day).
	clock.Advance(24 * time.Hour)
	if err := hub.RunJobs(); err != nil {
		t.Fatal(err)
	}
	after := hub.LogEntries(t)
	tombs := map[string]bool{}
	for _, e := range after[len(before):] {
		if idx, ok := e.Attr("index"); ok && e.Action == protocol.LogErased {
			tombs[idx] = true
		}
	}
	for _, idx := range named {
		if !reflect.DeepEqual(after[idx], before[idx]) || before[idx].Commitment == nil {
			t.Errorf("log entry %d: got %+v, want it unchanged with its commitment %x", idx, after[idx], before[idx].Commitment)
		}
		if !tombs[fmt.Sprint(idx)] {
			t.Errorf("log entry %d: got no tombstone, want one", idx)
		}
	}
}
