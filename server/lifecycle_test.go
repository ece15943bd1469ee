package server_test

import (
	"bytes"
	"net/http"
	"testing"
	"time"

	"github.com/sparr-dev/sparr/federation"
	"github.com/sparr-dev/sparr/protocol"
	"github.com/sparr-dev/sparr/server"
	"github.com/sparr-dev/sparr/server/hubtest"
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
	bank := hub.AddMember(t, "bank-a", federation.RoleFlag)
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
	bank := hub.AddMember(t, "bank-a", federation.RoleFlag, federation.RoleCheck)
	toks := bank.Tokenize(t, protocol.TypePhone, "+46701234567", "+46701234568", "+46701234569")
	var flags []flagResponse
	for _, tok := range toks {
		flags = append(flags, place(t, bank, tok))
	}
	logBefore := hub.LogEntries(t)
	hub.Restart(t)

	res := check(t, bank, "payment", toks...)
	for i, r := range res.Results {
		if r.Advice != server.AdviceVerify || r.Flag == nil || r.Flag.FlagID != flags[i].Flag.FlagID {
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
	bank := hub.AddMember(t, "bank-a", federation.RoleFlag)
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
	hub := hubtest.Start(t, hubtest.Options{Clock: clock, Policy: server.Policy{Reminder: 24 * time.Hour}})
	bankA := hub.AddMember(t, "bank-a", federation.RoleFlag, federation.RoleCheck)
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
	if f, _ := hub.Store.Flag(placed.Flag.FlagID); !f.RemindedAt.IsZero() || f.Status != store.FlagActive {
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
	other := hub.AddMember(t, "bank-other", federation.RoleCheck)
	if r := check(t, other, "credit-application", tok).Results[0]; r.Flag == nil || len(r.Flag.Records) != 1 {
		t.Errorf("another bank's check: %+v, want the placement only", r.Flag)
	}

	// A check just before expiry still says verify; at expiry it says
	// none even before the job has run, and the job then ends the flag.
	clock.Advance(24*time.Hour - 2*time.Minute)
	if r := check(t, bankA, "credit-application", tok).Results[0]; r.Advice != server.AdviceVerify {
		t.Errorf("a minute before expiry: advice %s, want verify", r.Advice)
	}
	clock.Advance(2 * time.Minute)
	if r := check(t, bankA, "credit-application", tok).Results[0]; r.Advice != server.AdviceNone {
		t.Errorf("a minute after expiry, before the job: advice %s, want none", r.Advice)
	}
	if err := hub.RunJobs(); err != nil {
		t.Fatal(err)
	}
	f, _ = hub.Store.Flag(placed.Flag.FlagID)
	if f.Status != store.FlagExpired || f.Subject != "" || len(f.Records) != 1 {
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
	hub := hubtest.Start(t, hubtest.Options{Clock: clock, Policy: server.Policy{SuspicionLegalBasis: "brottsdatalagen", SuspicionRetention: 30 * 24 * time.Hour}})
	reporter := hub.AddMember(t, "bank-a", federation.RoleSuspicion)
	checker := hub.AddMember(t, "bank-b", federation.RoleCheck)
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
	if r.Advice != server.AdviceReview || r.Suspicions == nil || r.Suspicions.Count != 1 || r.Suspicions.Categories[0] != "application-fraud" || r.Flag != nil {
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
	other := hub.AddMember(t, "bank-c", federation.RoleSuspicion)
	resp = other.Submit(t, "/v1/suspicions/"+id+"/retract", protocol.RetractSuspicion{SuspicionID: id, Reason: protocol.RetractReportedInError})
	if resp.Status != http.StatusNotFound {
		t.Errorf("another member's retraction: %d %s, want 404", resp.Status, resp.Body)
	}
	resp = reporter.Submit(t, "/v1/suspicions/"+id+"/retract", protocol.RetractSuspicion{SuspicionID: id, Reason: protocol.RetractReportedInError})
	mustStatus(t, resp, http.StatusOK)
	if r := check(t, checker, "account-opening", toks...).Results; r[0].Advice != server.AdviceNone || r[1].Advice != server.AdviceNone {
		t.Errorf("after retraction: %+v, want none", r)
	}

	// A new suspicion ends with its retention.
	resp = reporter.Submit(t, "/v1/suspicions", protocol.ReportSuspicion{Subjects: toks[:1], Category: protocol.CategoryMoneyMule, PoliceReport: report})
	mustStatus(t, resp, http.StatusCreated)
	clock.Advance(31 * 24 * time.Hour)
	if r := check(t, checker, "payment", toks[0]).Results[0]; r.Advice != server.AdviceNone {
		t.Errorf("past retention: advice %s, want none", r.Advice)
	}
	if err := hub.RunJobs(); err != nil {
		t.Fatal(err)
	}
	// The expiry is logged, then a tombstone for each erased record's entry.
	e := hub.LogEntries(t)
	if exp := e[len(e)-2]; exp.Action != "suspicion-expired" || exp.Member != "hub" {
		t.Errorf("log entry %+v, want the hub's suspicion-expired", exp)
	}
	if tomb := e[len(e)-1]; tomb.Action != protocol.LogActionErased {
		t.Errorf("last log entry %+v, want a tombstone", tomb)
	}
	assertLogHoldsNoTokens(t, hub, toks...)
}

func TestCheckOutcome(t *testing.T) {
	hub := hubtest.Start(t, hubtest.Options{})
	bank := hub.AddMember(t, "bank-a", federation.RoleCheck)
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
