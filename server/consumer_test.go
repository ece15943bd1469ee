package server_test

import (
	"context"
	"encoding/base64"
	"errors"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sparr-dev/sparr/client"
	"github.com/sparr-dev/sparr/protocol"
	"github.com/sparr-dev/sparr/protocol/api"
	"github.com/sparr-dev/sparr/server/decide"
	"github.com/sparr-dev/sparr/server/hubtest"
)

// consumerHub is a hub sharing suspicions, on clock, with Bank A (where
// the consumer banks and placed their flag), Bank B (which checks) and
// Bank C (which reports suspicions).
func consumerHub(t *testing.T, clock *hubtest.Clock) (hub *hubtest.Hub, a, b, c *hubtest.Member) {
	t.Helper()
	hub = hubtest.Start(t, hubtest.Options{Clock: clock, Delivery: fast, Policy: decide.Policy{SuspicionLegalBasis: "brottsdatalagen"}})
	a = hub.AddMember(t, "bank-a", api.RoleFlag, api.RoleCheck)
	b = hub.AddMember(t, "bank-b", api.RoleCheck)
	c = hub.AddMember(t, "bank-c", api.RoleSuspicion, api.RoleCheck)
	return hub, a, b, c
}

// bankID is a statement that the consumer authenticated with BankID at t.
func bankID(t time.Time) protocol.ConsumerAuth {
	return protocol.ConsumerAuth{Method: protocol.AuthBankID, AuthenticatedAt: protocol.NewNumericDate(t), Level: protocol.LevelHigh, Reference: "auth-" + t.Format("150405")}
}

// reportSuspicion reports a suspicion about tok by m and returns its id.
func reportSuspicion(t *testing.T, hub *hubtest.Hub, m *hubtest.Member, tok protocol.Token) string {
	t.Helper()
	report := &protocol.PoliceReport{Authority: "Polismyndigheten", CaseNumber: "5000-K42-26", Date: hub.Now().Format(time.DateOnly)}
	resp := m.Submit(t, "/v1/suspicions", protocol.ReportSuspicion{Subjects: []protocol.Token{tok}, Category: protocol.CategoryApplicationFraud, PoliceReport: report})
	mustStatus(t, resp, http.StatusCreated)
	var w api.WriteResponse
	resp.JSON(t, &w)
	return w.Suspicion.ID
}

// TestWhoCheckedMe: the consumer's bank, acting for them with a statement
// of how they authenticated, sees who checked them (member, purpose,
// time, outcome, not denied), online and by replica, their flag, the
// suspicion about them and how to contest it; the request is an access by
// the bank in the next history. Without a statement, or with a stale one,
// no member sees anything, and nothing changes but the log's refusal.
func TestWhoCheckedMe(t *testing.T) {
	ctx := context.Background()
	clock := hubtest.NewClock(time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC))
	hub, a, b, c := consumerHub(t, clock)
	tok := a.Tokenize(t, protocol.TypePersonalNumber, "190905271474")[0]
	flag := place(t, a, tok).Flag.FlagID
	clock.Advance(time.Minute)
	chk := check(t, b, api.PurposeCreditApplication, tok)
	mustStatus(t, b.JSON(t, http.MethodPost, "/v1/checks/"+chk.CheckID+"/outcome", api.OutcomeRequest{Outcome: api.OutcomeVerified}), http.StatusOK)
	clock.Advance(time.Minute)
	replicaAt := clock.Now().UTC().Truncate(time.Second)
	mustStatus(t, b.JSON(t, http.MethodPost, "/v1/checks/replica", api.ReplicaChecksRequest{Checks: []api.ReplicaCheck{{Token: tok.String(), Purpose: api.PurposePayment, At: replicaAt}}}), http.StatusOK)
	sid := reportSuspicion(t, hub, c, tok)
	clock.Advance(time.Minute)

	// No statement of the consumer's authentication: refused before
	// anything is read.
	before := hub.Dump(t)
	noAuth := b.Do(t, http.MethodPost, "/v1/subjects/history", "application/jose", signRaw(t, b.Key.Signer(), b.Key.KeyID(), b.ID, map[string]any{
		"iss": b.ID, "aud": hub.URL, "iat": clock.Now().Unix(), "jti": "history-without-auth", "action": "subject-history",
		"request": map[string]any{"subject": tok.String()}}))
	if p := wantProblem(t, noAuth, protocol.ProblemInvalidSubmission); !strings.Contains(p.Detail, "consumer_auth") {
		t.Errorf("got detail %q, want it to name consumer_auth", p.Detail)
	}
	conforms(t, "POST /v1/subjects/history", noAuth)
	stale := bankID(clock.Now().Add(-20 * time.Minute))
	resp := b.Submit(t, "/v1/subjects/history", protocol.SubjectHistory{Subject: tok, ConsumerAuth: &stale})
	if p := wantProblem(t, resp, protocol.ProblemValidation); !strings.Contains(p.Detail, "authenticated 20m0s ago") {
		t.Errorf("got detail %q, want it to say how old the authentication is", p.Detail)
	}
	conforms(t, "POST /v1/subjects/history", resp)
	after := hub.Dump(t)
	for bucket, kv := range after.Buckets {
		if bucket == "log" || bucket == "log_hashes" || bucket == "log_details" || bucket == "meta" || bucket == "usage" {
			continue // the refusals are logged, and their entries count against the member's quota
		}
		for k, v := range kv {
			if before.Buckets[bucket][k] != v {
				t.Errorf("a refused history request changed %s/%q", bucket, k)
			}
		}
	}
	var prob *client.Problem
	if _, err := b.Client().History(ctx, tok, stale); !errors.As(err, &prob) || prob.Status != http.StatusUnprocessableEntity {
		t.Errorf("SDK, stale authentication: got %v, want a 422 problem", err)
	}

	// Bank A, for the consumer who just logged in with BankID.
	resp = a.Submit(t, "/v1/subjects/history", protocol.SubjectHistory{Subject: tok, ConsumerAuth: ptr(bankID(clock.Now()))})
	mustStatus(t, resp, http.StatusOK)
	conforms(t, "POST /v1/subjects/history", resp)
	h, err := a.Client().History(ctx, tok, bankID(clock.Now()))
	if err != nil {
		t.Fatal(err)
	}
	if h.Flag == nil || h.Flag.FlagID != flag || h.Flag.Origin != "bank-a" || len(h.Records) != 1 {
		t.Errorf("got flag %+v with %d records, want flag %s of bank-a with its placement", h.Flag, len(h.Records), flag)
	}
	var checks, replicaChecks, histories int
	for _, e := range h.Accesses {
		switch e.Action {
		case "check":
			checks++
			if e.Member != "bank-b" || e.MemberName != "Test member bank-b" || e.Purpose != api.PurposeCreditApplication || e.CheckID != chk.CheckID || e.Outcome != api.OutcomeVerified || e.Denied {
				t.Errorf("got check %+v, want bank-b's credit check, verified, not denied", e)
			}
		case "replica-check":
			replicaChecks++
			if e.Member != "bank-b" || e.Purpose != api.PurposePayment || e.At.Time() != replicaAt {
				t.Errorf("got replica check %+v, want bank-b's payment check at %s", e, replicaAt)
			}
		case "subject-history":
			histories++
			if e.Member != "bank-a" {
				t.Errorf("got a history access by %s, want bank-a's", e.Member)
			}
		}
	}
	if checks != 1 || replicaChecks != 1 || histories != 1 {
		t.Errorf("got %d checks, %d replica checks and %d history accesses, want 1 of each: %+v", checks, replicaChecks, histories, h.Accesses)
	}
	if len(h.Suspicions) != 1 || h.Suspicions[0].SuspicionID != sid || h.Suspicions[0].Origin != "bank-c" ||
		h.Suspicions[0].Category != protocol.CategoryApplicationFraud || h.Suspicions[0].Contest == "" {
		t.Errorf("got suspicions %+v, want bank-c's, with its category and how to contest it", h.Suspicions)
	}
	var logged int
	for _, e := range hub.LogEntries(t) {
		if e.Action == protocol.LogSubjectHistory && e.Member == "bank-a" && e.Result == "ok" {
			logged++
			if m, _ := e.Attr("method"); m != "bankid" {
				t.Errorf("got method %q in the history entry, want bankid", m)
			}
		}
	}
	if logged != 2 {
		t.Errorf("got %d history entries by bank-a, want 2", logged)
	}
}

func ptr[T any](v T) *T { return &v }

// TestWithheldSuspicions: a deployment whose legal basis keeps suspicions
// from their subject shows none in the history, nor the details requests.
func TestWithheldSuspicions(t *testing.T) {
	hub := hubtest.Start(t, hubtest.Options{Policy: decide.Policy{SuspicionLegalBasis: "brottsdatalagen", WithholdSuspicionsFromSubject: true}})
	a := hub.AddMember(t, "bank-a", api.RoleFlag, api.RoleCheck)
	c := hub.AddMember(t, "bank-c", api.RoleSuspicion, api.RoleCheck)
	tok := a.Tokenize(t, protocol.TypePersonalNumber, "190905271474")[0]
	sid := reportSuspicion(t, hub, c, tok)
	mustStatus(t, a.JSON(t, http.MethodPost, "/v1/suspicions/"+sid+"/details", api.DetailsRequest{Purpose: api.PurposeCreditApplication, Justification: "an applicant for a loan of 90 000 kr"}), http.StatusOK)
	h, err := a.Client().History(context.Background(), tok, bankID(hub.Now()))
	if err != nil {
		t.Fatal(err)
	}
	if !h.SuspicionsWithheld || len(h.Suspicions) != 0 {
		t.Errorf("got suspicions %+v (withheld %v), want none, withheld", h.Suspicions, h.SuspicionsWithheld)
	}
	for _, e := range h.Accesses {
		if e.Action == string(protocol.LogSuspicionDetails) {
			t.Errorf("got access %+v, want no details request shown", e)
		}
	}
}

// TestAccessReport: the hub's signed report verifies with its keys alone,
// holds the flag, its consent and the checks, and fails once altered.
func TestAccessReport(t *testing.T) {
	ctx := context.Background()
	hub, a, b, _ := consumerHub(t, nil)
	tok := a.Tokenize(t, protocol.TypePersonalNumber, "190905271474")[0]
	place(t, a, tok)
	chk := check(t, b, api.PurposeAccountOpening, tok)
	resp := a.Submit(t, "/v1/subjects/report", protocol.RequestAccessReport{Subject: tok, ConsumerAuth: ptr(bankID(hub.Now()))})
	mustStatus(t, resp, http.StatusOK)
	conforms(t, "POST /v1/subjects/report", resp)
	var ans api.AccessReportResponse
	resp.JSON(t, &ans)

	// Anyone with the hub's keys: no client, no bearer.
	rec, rep, err := client.VerifyAccessReport([]byte(ans.Report), hub.JWKS(t), tok)
	if err != nil {
		t.Fatal(err)
	}
	if rec.Event.EventType() != protocol.EventAccessReport || rep.RequestedBy != "bank-a" || rep.ConsumerAuth.Method != "bankid" {
		t.Errorf("got a %s record for %q by %q, want an access report for bank-a by bankid", rec.Event.EventType(), rep.RequestedBy, rep.ConsumerAuth.Method)
	}
	if rep.Flag == nil || rep.Consent == nil || rep.Consent.Subject != tok || len(rep.FlagRecords) != 1 {
		t.Errorf("got flag %+v, consent %+v, %d flag records; want the flag, its consent and its placement", rep.Flag, rep.Consent, len(rep.FlagRecords))
	}
	if !slices.ContainsFunc(rep.Accesses, func(e protocol.AccessEntry) bool { return e.CheckID == chk.CheckID && e.Member == "bank-b" }) {
		t.Errorf("got accesses %+v, want bank-b's check", rep.Accesses)
	}
	// Another token's report is not this one's.
	other := a.Tokenize(t, protocol.TypePersonalNumber, "198112289874")[0]
	if _, _, err := client.VerifyAccessReport([]byte(ans.Report), hub.JWKS(t), other); !errors.Is(err, client.ErrWrongSubject) {
		t.Errorf("verify for another subject: got %v, want ErrWrongSubject", err)
	}
	// An altered report does not verify.
	parts := strings.Split(ans.Report, ".")
	payload, _ := base64.RawURLEncoding.DecodeString(parts[1])
	altered := strings.Replace(string(payload), "bank-b", "bank-x", 1)
	forged := parts[0] + "." + base64.RawURLEncoding.EncodeToString([]byte(altered)) + "." + parts[2]
	if _, _, err := client.VerifyAccessReport([]byte(forged), hub.JWKS(t), tok); err == nil {
		t.Error("an altered report verified")
	}
	// Through the SDK.
	r, err := a.Client().AccessReport(ctx, tok, bankID(hub.Now()))
	if err != nil {
		t.Fatal(err)
	}
	if r.Report.RequestedBy != "bank-a" {
		t.Errorf("got a report for %q, want bank-a", r.Report.RequestedBy)
	}
}

// suspicionHits is a check's answer about the suspicions of tok by m.
func suspicionHits(t *testing.T, m *hubtest.Member, tok protocol.Token) (api.Advice, *api.CheckSuspicions) {
	t.Helper()
	r := check(t, m, api.PurposeCreditApplication, tok).Results[0]
	return r.Advice, r.Suspicions
}

// TestDisputeTimesOut: a consumer contests Bank C's suspicion through
// Bank A. Bank C is told at once; checks show the suspicion as disputed.
// Bank C lets the five business days pass: the hub records the lapse,
// tells both, and the suspicion stops counting. Bank C then rejects the
// dispute with a reason: the consumer's bank is told, and the suspicion
// counts again. Every step is a signed record and a log entry.
func TestDisputeTimesOut(t *testing.T) {
	ctx := context.Background()
	clock := hubtest.NewClock(time.Now().UTC().Truncate(time.Second))
	hub, a, b, c := consumerHub(t, clock)
	tok := a.Tokenize(t, protocol.TypePersonalNumber, "190905271474")[0]
	sid := reportSuspicion(t, hub, c, tok)

	opened, err := a.Client().OpenDispute(ctx, protocol.OpenDispute{Subject: tok, SuspicionID: sid, Grounds: protocol.GroundsNotMe,
		Statement: "I was abroad when the application was made.", ConsumerAuth: ptr(bankID(clock.Now()))})
	if err != nil {
		t.Fatal(err)
	}
	d := opened.Dispute
	if d.Respondent != "bank-c" || d.Disputant != "bank-a" || d.Status != "open" ||
		d.AcknowledgeBy.Time() != decide.AddBusinessDays(clock.Now(), 5) || d.ResolveBy.Time() != clock.Now().AddDate(0, 0, 30) {
		t.Errorf("got dispute %+v, want bank-c to acknowledge within 5 business days and resolve within 30 days", d)
	}
	opens := disputeEvents(t, c, protocol.EventDisputeOpened)
	if len(opens) != 1 {
		t.Fatalf("bank-c got %d dispute-opened records, want 1", len(opens))
	}
	if ev := opens[0].(protocol.DisputeOpened); ev.DisputeID != d.DisputeID || ev.SuspicionID != sid || ev.Statement == "" {
		t.Errorf("bank-c got %+v, want the dispute of its suspicion with the consumer's statement", ev)
	}
	if n := len(disputeEvents(t, b, protocol.EventDisputeOpened)); n != 0 {
		t.Errorf("bank-b got %d dispute records, want none: it is no party", n)
	}
	if advice, hits := suspicionHits(t, b, tok); advice != api.AdviceReview || hits == nil || hits.Count != 1 || !slices.Equal(hits.Disputed, []string{sid}) {
		t.Errorf("got %s with %+v, want review with the suspicion counted and shown disputed", advice, hits)
	}
	// A second dispute of the same suspicion is refused.
	again := a.Submit(t, "/v1/disputes", protocol.OpenDispute{Subject: tok, SuspicionID: sid, Grounds: protocol.GroundsNotMe, ConsumerAuth: ptr(bankID(clock.Now()))})
	wantProblem(t, again, protocol.ProblemStateConflict)
	conforms(t, "POST /v1/disputes", again)
	// Only the member disputed answers.
	wrong := b.Submit(t, "/v1/disputes/"+d.DisputeID+"/answer", protocol.AnswerDispute{DisputeID: d.DisputeID, Answer: protocol.AnswerUphold})
	wantProblem(t, wrong, protocol.ProblemNotFound)
	wantProblem(t, b.Do(t, http.MethodGet, "/v1/disputes/"+d.DisputeID, "", nil), protocol.ProblemNotFound)

	// An hour before the deadline: not yet late.
	clock.Advance(d.AcknowledgeBy.Time().Sub(clock.Now()) - time.Hour)
	if err := hub.RunJobs(); err != nil {
		t.Fatal(err)
	}
	if _, hits := suspicionHits(t, b, tok); hits == nil || hits.Count != 1 {
		t.Errorf("before the deadline: got %+v, want the suspicion counted", hits)
	}
	// Past the deadline, before the job: the check already stops counting it.
	clock.Advance(time.Hour + time.Second)
	if advice, hits := suspicionHits(t, b, tok); advice != api.AdviceNone || hits == nil || hits.Count != 0 || !slices.Equal(hits.Suspended, []string{sid}) {
		t.Errorf("past the deadline: got %s with %+v, want none, the suspicion suspended", advice, hits)
	}
	if err := hub.RunJobs(); err != nil {
		t.Fatal(err)
	}
	for _, m := range []*hubtest.Member{a, c} {
		evs := disputeEvents(t, m, protocol.EventDisputeLapsed)
		if len(evs) != 1 || evs[0].(protocol.DisputeLapsed).DisputeID != d.DisputeID || evs[0].(protocol.DisputeLapsed).Missed != "acknowledge" {
			t.Errorf("%s got %+v, want the missed acknowledgement", m.ID, evs)
		}
	}
	seen, err := a.Client().Dispute(ctx, d.DisputeID)
	if err != nil {
		t.Fatal(err)
	}
	if !seen.Lapsed || seen.Status != "open" {
		t.Errorf("got %+v, want open and lapsed", seen)
	}
	h, err := a.Client().History(ctx, tok, bankID(clock.Now()))
	if err != nil {
		t.Fatal(err)
	}
	if len(h.Disputes) != 1 || !h.Disputes[0].Lapsed || len(h.Suspicions) != 1 || h.Suspicions[0].Disputed != d.DisputeID {
		t.Errorf("got disputes %+v and suspicions %+v, want the lapsed dispute beside its suspicion", h.Disputes, h.Suspicions)
	}

	// Bank C rejects it, late, with a reason.
	reason := "The application was signed with the consumer's own BankID."
	res, err := c.Client().AnswerDispute(ctx, d.DisputeID, protocol.AnswerReject, reason)
	if err != nil {
		t.Fatal(err)
	}
	if res.Dispute.Status != "rejected" || res.Dispute.Reason != reason || res.Record == nil {
		t.Errorf("got %+v, want rejected with the reason and a signed record", res)
	}
	resolved := disputeEvents(t, a, protocol.EventDisputeResolved)
	if len(resolved) != 1 || resolved[0].(protocol.DisputeResolved).Outcome != protocol.AnswerReject || resolved[0].(protocol.DisputeResolved).Reason != reason {
		t.Errorf("bank-a got %+v, want the rejection and its reason", resolved)
	}
	if advice, hits := suspicionHits(t, b, tok); advice != api.AdviceReview || hits == nil || hits.Count != 1 || len(hits.Disputed)+len(hits.Suspended) != 0 {
		t.Errorf("after the rejection: got %s with %+v, want the suspicion counted again", advice, hits)
	}
	late := c.Submit(t, "/v1/disputes/"+d.DisputeID+"/answer", protocol.AnswerDispute{DisputeID: d.DisputeID, Answer: protocol.AnswerUphold})
	wantProblem(t, late, protocol.ProblemStateConflict)

	var actions []protocol.LogAction
	for _, e := range hub.LogEntries(t) {
		if strings.HasPrefix(string(e.Action), "dispute-") && e.Result == "ok" {
			actions = append(actions, e.Action)
		}
	}
	if want := []protocol.LogAction{protocol.LogDisputeOpened, protocol.LogDisputeLapsed, protocol.LogDisputeResolved}; !slices.Equal(actions, want) {
		t.Errorf("got log actions %v, want %v", actions, want)
	}
}

// disputeEvents reads m's feed, every record verified, and returns the
// events of type typ.
func disputeEvents(t *testing.T, m *hubtest.Member, typ protocol.EventType) []protocol.Event {
	t.Helper()
	page, err := m.Client().Feed(context.Background(), 0, api.MaxFeedPage)
	if err != nil {
		t.Fatal(err)
	}
	var out []protocol.Event
	for _, e := range page.Events {
		if e.Type == typ {
			out = append(out, e.Record.Event)
		}
	}
	return out
}

// TestDisputeUpheld: Bank C acknowledges in time and upholds the dispute;
// the suspicion is retracted in the same change and no check finds it.
func TestDisputeUpheld(t *testing.T) {
	ctx := context.Background()
	hub, a, b, c := consumerHub(t, nil)
	rc := hub.NewReceiver(t, c)
	rc.Register(t)
	rc.WaitEvent(t, 10*time.Second, protocol.EventVerification)
	tok := a.Tokenize(t, protocol.TypePersonalNumber, "190905271474")[0]
	sid := reportSuspicion(t, hub, c, tok)
	opened, err := a.Client().OpenDispute(ctx, protocol.OpenDispute{Subject: tok, SuspicionID: sid, Grounds: protocol.GroundsInaccurate, ConsumerAuth: ptr(bankID(hub.Now()))})
	if err != nil {
		t.Fatal(err)
	}
	id := opened.Dispute.DisputeID
	// The reporting member's webhook has it at once.
	if ev := rc.WaitEvent(t, 10*time.Second, protocol.EventDisputeOpened).Record.Event.(protocol.DisputeOpened); ev.DisputeID != id {
		t.Errorf("bank-c's endpoint got dispute %s, want %s", ev.DisputeID, id)
	}
	if _, err := c.Client().AnswerDispute(ctx, id, protocol.AnswerAcknowledge, ""); err != nil {
		t.Fatal(err)
	}
	var prob *client.Problem
	if _, err := c.Client().AnswerDispute(ctx, id, protocol.AnswerAcknowledge, ""); !errors.As(err, &prob) || prob.Status != http.StatusConflict {
		t.Errorf("a second acknowledgement: got %v, want a 409 problem", err)
	}
	res, err := c.Client().AnswerDispute(ctx, id, protocol.AnswerUphold, "")
	if err != nil {
		t.Fatal(err)
	}
	if res.Dispute.Status != "upheld" {
		t.Errorf("got status %s, want upheld", res.Dispute.Status)
	}
	rc.WaitEvent(t, 10*time.Second, protocol.EventSuspicionRetracted)
	if _, hits := suspicionHits(t, b, tok); hits != nil {
		t.Errorf("got %+v, want no suspicion once the dispute is upheld", hits)
	}
	// A dispute of a suspicion that is gone, or of another subject's, finds nothing.
	other := a.Tokenize(t, protocol.TypePersonalNumber, "198112289874")[0]
	resp := a.Submit(t, "/v1/disputes", protocol.OpenDispute{Subject: other, SuspicionID: sid, Grounds: protocol.GroundsNotMe, ConsumerAuth: ptr(bankID(hub.Now()))})
	wantProblem(t, resp, protocol.ProblemNotFound)
}

// TestErasureTakesHistoryAndDisputes: an erasure of the subject removes
// the checks from their history, their dispute, and every byte of the
// consumer's statement from the hub's data file.
func TestErasureTakesHistoryAndDisputes(t *testing.T) {
	ctx := context.Background()
	hub, a, b, c := consumerHub(t, nil)
	tok := a.Tokenize(t, protocol.TypePersonalNumber, "190905271474")[0]
	sid := reportSuspicion(t, hub, c, tok)
	check(t, b, api.PurposeCreditApplication, tok)
	statement := "Jag var i Lund den dagen, fråga min granne Nils."
	if _, err := a.Client().OpenDispute(ctx, protocol.OpenDispute{Subject: tok, SuspicionID: sid, Grounds: protocol.GroundsNotMe, Statement: statement, ConsumerAuth: ptr(bankID(hub.Now()))}); err != nil {
		t.Fatal(err)
	}
	h, err := a.Client().History(ctx, tok, bankID(hub.Now()))
	if err != nil {
		t.Fatal(err)
	}
	if len(h.Accesses) == 0 || len(h.Disputes) != 1 {
		t.Fatalf("before the erasure: got %d accesses and %d disputes, want some of each", len(h.Accesses), len(h.Disputes))
	}
	mustStatus(t, hub.Operator.JSON(t, http.MethodPost, "/v1/admin/erasures", api.ErasureRequest{Subject: tok.String(), LegalBasis: "gdpr-art-17"}), http.StatusOK)

	h, err = a.Client().History(ctx, tok, bankID(hub.Now()))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range h.Accesses {
		if e.Action != string(protocol.LogSubjectHistory) || e.At.Time().Before(hub.Now().Add(-time.Second).Truncate(time.Second)) {
			t.Errorf("after the erasure: got access %+v, want only this history request", e)
		}
	}
	if len(h.Disputes) != 0 || len(h.Suspicions) != 0 || h.Flag != nil {
		t.Errorf("after the erasure: got disputes %+v, suspicions %+v, flag %+v; want none", h.Disputes, h.Suspicions, h.Flag)
	}
	for bucket, kv := range hub.Dump(t).Buckets {
		for k, v := range kv {
			if strings.Contains(v, "granne Nils") || strings.Contains(k, "granne Nils") {
				t.Errorf("after the erasure: %s/%q still holds the consumer's statement", bucket, k)
			}
			if bucket == "disputes" && strings.Contains(v, tok.String()) {
				t.Errorf("after the erasure: dispute %q still names the subject", k)
			}
		}
	}
}

// TestAttestationsReachEveryLiveMember: after a lift, the origin member
// sees how many members attested the deletion; the operator and the
// regulator see who has not after the deadline; once every live member
// has attested, "deleted at 3 of 3", and no one is overdue. A suspended
// member is not expected.
func TestAttestationsReachEveryLiveMember(t *testing.T) {
	ctx := context.Background()
	clock := hubtest.NewClock(time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC))
	hub, a, b, c := consumerHub(t, clock)
	hub.AddMember(t, "bank-s", api.RoleCheck)
	mustStatus(t, hub.Operator.Do(t, http.MethodPost, "/v1/admin/members/bank-s/suspend", "", nil), http.StatusOK)
	reg := hub.AddMember(t, "regulator", api.RoleRegulator)
	tok := a.Tokenize(t, protocol.TypePersonalNumber, "190905271474")[0]
	flag := place(t, a, tok).Flag.FlagID
	lifted, err := a.Client().LiftFlag(ctx, flag)
	if err != nil {
		t.Fatal(err)
	}
	jti := lifted.Record.ID

	if _, err := a.Client().AttestErasure(ctx, jti); err != nil {
		t.Fatal(err)
	}
	st, err := a.Client().AttestationStatus(ctx, jti)
	if err != nil {
		t.Fatal(err)
	}
	if st.Expected != 3 || st.Attested != 1 || !st.Self || st.Members != nil {
		t.Errorf("got %+v, want 1 of 3 attested, by bank-a, without names", st)
	}
	// A record that is not an erasure record is refused, naming it.
	resp := b.Submit(t, "/v1/erasure-attestations", protocol.AttestErasure{Records: []string{jti, "no-such-record"}})
	if p := wantProblem(t, resp, protocol.ProblemNotFound); len(p.Errors) != 1 || p.Errors[0].Pointer != "/request/records/1" {
		t.Errorf("got errors %+v, want records[1] named", p.Errors)
	}
	conforms(t, "POST /v1/erasure-attestations", resp)

	clock.Advance(8 * 24 * time.Hour)
	for _, m := range []*hubtest.Member{hub.Operator, reg} {
		over, err := m.Client().OverdueAttestations(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(over.Records) != 1 || over.Records[0].Record != jti || !slices.Equal(over.Records[0].Missing, []string{"bank-b", "bank-c"}) {
			t.Errorf("%s: got overdue %+v, want the lift, missing bank-b and bank-c", m.ID, over.Records)
		}
	}
	wantProblem(t, b.Do(t, http.MethodGet, "/v1/audit/erasure-attestations", "", nil), protocol.ProblemForbidden)

	for _, m := range []*hubtest.Member{b, c} {
		if _, err := m.Client().AttestErasure(ctx, jti); err != nil {
			t.Fatal(err)
		}
	}
	// Again: changes nothing.
	if _, err := b.Client().AttestErasure(ctx, jti); err != nil {
		t.Fatal(err)
	}
	st, err = reg.Client().AttestationStatus(ctx, jti)
	if err != nil {
		t.Fatal(err)
	}
	if st.Expected != 3 || st.Attested != 3 || len(st.Members) != 3 {
		t.Errorf("got %+v, want deleted at 3 of 3, each named for the regulator", st)
	}
	over, err := hub.Operator.Client().OverdueAttestations(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(over.Records) != 0 {
		t.Errorf("got overdue %+v, want none", over.Records)
	}
}
