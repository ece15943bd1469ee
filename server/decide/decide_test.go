package decide_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/sparr-dev/sparr/consent"
	"github.com/sparr-dev/sparr/protocol"
	"github.com/sparr-dev/sparr/protocol/api"
	"github.com/sparr-dev/sparr/server/decide"
	"github.com/sparr-dev/sparr/server/state"
)

// The rules of the hub, decided without a server: each table gives the
// state and the request, and what the decision must be.

var now = time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)

const day = 24 * time.Hour

func decider(t testing.TB, p decide.Policy) *decide.Decider {
	d, _ := deciderWithKeys(t, p)
	return d
}

// deciderWithKeys is a decider with a new record key, and that key's set.
func deciderWithKeys(t testing.TB, p decide.Policy) (*decide.Decider, *protocol.KeySet) {
	t.Helper()
	key, err := protocol.GenerateSigningKey(protocol.EdDSA, nil)
	if err != nil {
		t.Fatal(err)
	}
	ks, err := protocol.NewKeySet(key.Public())
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	return &decide.Decider{
		Issuer: "https://hub.example", Policy: p.WithDefaults(), TokenEpoch: 1,
		Sign:  func(r *protocol.Record) ([]byte, error) { return protocol.SignRecord(r, key) },
		NewID: func() string { n++; return fmt.Sprintf("id-%d", n) },
	}, ks
}

var (
	bankA = &api.Member{ID: "bank-a", Roles: []api.Role{api.RoleFlag, api.RoleSuspicion, api.RoleCheck}, Status: api.MemberActive}
	bankB = &api.Member{ID: "bank-b", Roles: []api.Role{api.RoleCheck}, Status: api.MemberActive}
	op    = &api.Member{ID: decide.OperatorID, Roles: []api.Role{api.RoleOperator}, Status: api.MemberActive}
	tok   = protocol.Token{Type: protocol.TypeEmail, Epoch: 1, Value: [64]byte{1, 2, 3}}
)

func submission(req protocol.Request) *protocol.Submission {
	return &protocol.Submission{Issuer: "bank-a", Audience: "https://hub.example", IssuedAt: now, ID: "jti-1", Request: req}
}

func validConsent() *protocol.Consent {
	return &protocol.Consent{
		ID: "c-1", Subject: tok, Controller: "bank-a", Purpose: "identity-fraud-protection", LegalBasis: "gdpr-art-6-1-a",
		Collection: protocol.ConsentCollection{Method: "mobile-app", At: protocol.NewNumericDate(now.Add(-time.Minute))},
		Notice:     "https://bank-a.example/privacy", ExpiresAt: protocol.NewNumericDate(now.AddDate(6, 0, 0)),
		Evidence: protocol.ConsentEvidence{AuthenticationMethod: "bankid", AssuranceLevel: "loa3", Reference: "auth-1"},
	}
}

// wantProblem fails unless err is a problem of the type slug, pointing at
// field (if given), a JSON Pointer.
func wantProblem(t *testing.T, err error, slug, field string) {
	t.Helper()
	var p *protocol.Problem
	if !errors.As(err, &p) {
		t.Fatalf("got %v, want a %s problem", err, slug)
	}
	if got := strings.TrimPrefix(p.Type, "urn:sparr:problem:"); got != slug {
		t.Fatalf("got problem %s (%s), want %s", got, p.Detail, slug)
	}
	if field != "" && (len(p.Errors) == 0 || p.Errors[0].Pointer != field) {
		t.Fatalf("got problem %s about %v, want it about %s", slug, p.Errors, field)
	}
}

func activeFlag(kind protocol.FlagKind, expires time.Time) *state.Flag {
	return &state.Flag{ID: "f-1", Version: 1, Subject: tok.String(), Kind: kind, Origin: "bank-a", Status: api.FlagActive,
		PlacedAt: now.Add(-day), ExpiresAt: expires, ConsentID: "c-1", Records: []string{"r-1"}}
}

func TestFlagKindsAndExpiry(t *testing.T) {
	d, keys := deciderWithKeys(t, decide.Policy{})
	report := &protocol.PoliceReport{Authority: "Polismyndigheten", CaseNumber: "5000-K1-26", Date: "2026-11-20"}
	for _, tc := range []struct {
		name    string
		kind    protocol.FlagKind
		asked   time.Time
		report  *protocol.PoliceReport
		want    time.Time // the flag's expiry, or zero for a refusal
		problem string
		field   string
	}{
		{name: "standard, the longest", kind: protocol.FlagKindStandard, want: now.Add(365 * day)},
		{name: "standard, shorter", kind: protocol.FlagKindStandard, asked: now.Add(30 * day), want: now.Add(30 * day)},
		{name: "standard, beyond a year", kind: protocol.FlagKindStandard, asked: now.Add(366 * day), problem: "validation-failed", field: "/request/expires_at"},
		{name: "in the past", kind: protocol.FlagKindStandard, asked: now.Add(-time.Hour), problem: "validation-failed", field: "/request/expires_at"},
		{name: "extended, the longest", kind: protocol.FlagKindExtended, report: report, want: now.Add(1826 * day)},
		{name: "extended, beyond five years", kind: protocol.FlagKindExtended, report: report, asked: now.Add(1827 * day), problem: "validation-failed", field: "/request/expires_at"},
		{name: "police report from the future", kind: protocol.FlagKindExtended, report: &protocol.PoliceReport{Authority: "Polismyndigheten", CaseNumber: "5000-K1-26", Date: "2026-12-01"},
			problem: "validation-failed", field: "/request/police_report/date"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := validConsent()
			req := protocol.PlaceFlag{Subject: tok, Kind: tc.kind, ExpiresAt: protocol.NewNumericDate(tc.asked), PoliceReport: tc.report, Consent: c}
			cmd, err := d.PlaceFlag(bankA, submission(req), []byte("hash"), nil, now)
			if tc.problem != "" {
				wantProblem(t, err, tc.problem, tc.field)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !cmd.Flag.ExpiresAt.Equal(tc.want) || cmd.Flag.Kind != tc.kind || cmd.Flag.Version != 1 || cmd.Flag.Status != api.FlagActive {
				t.Errorf("got flag %+v, want a new active %s flag until %s", cmd.Flag, tc.kind, tc.want)
			}
			if want := tc.want.Add(-30 * day); !cmd.Flag.RemindAt.Equal(want) {
				t.Errorf("got reminder at %s, want %s (30 days before expiry)", cmd.Flag.RemindAt, want)
			}
			rec, err := protocol.VerifyRecord([]byte(cmd.Record.JWS), keys)
			if err != nil {
				t.Fatal(err)
			}
			if ev, ok := rec.Event.(protocol.FlagPlaced); !ok || ev.FlagID != cmd.Flag.ID || !ev.ExpiresAt.Time().Equal(tc.want) || rec.Txn != "jti-1" {
				t.Errorf("got record %+v, want flag-placed of %s until %s for jti-1", rec, cmd.Flag.ID, tc.want)
			}
			if cmd.Entry.Action != protocol.LogFlagPlaced || len(cmd.Entry.Subjects) != 1 || bytes.Contains(cmd.Entry.Details, []byte(tok.String())) == false {
				t.Errorf("got log entry %+v, want flag-placed indexed under the subject, whose details name it", cmd.Entry)
			}
		})
	}
}

func TestPlacementEndsALapsedFlag(t *testing.T) {
	d := decider(t, decide.Policy{})
	req := protocol.PlaceFlag{Subject: tok, Kind: protocol.FlagKindStandard, Consent: validConsent()}
	lapsed := activeFlag(protocol.FlagKindStandard, now.Add(-time.Minute))
	cmd, err := d.PlaceFlag(bankA, submission(req), []byte("hash"), lapsed, now)
	if err != nil {
		t.Fatal(err)
	}
	if cmd.Lapsed == nil || cmd.Lapsed.Flag.ID != "f-1" || cmd.Lapsed.Flag.Status != api.FlagExpired || cmd.Lapsed.Flag.Version != 2 {
		t.Fatalf("got lapsed %+v, want f-1's expiry first", cmd.Lapsed)
	}
	active := activeFlag(protocol.FlagKindStandard, now.Add(time.Hour))
	cmd, err = d.PlaceFlag(bankA, submission(req), []byte("hash"), active, now)
	if err != nil || cmd.Active != "f-1" || cmd.Lapsed != nil || cmd.Record != nil || cmd.Flag != nil || cmd.Consent != nil {
		t.Fatalf("with an active flag: got %+v, %v; want an answer with f-1 that signs, keeps and ends nothing", cmd, err)
	}
	if cmd.Entry.Action != protocol.LogFlagAlreadyActive || string(cmd.Entry.Details) != `{"flag_id":"f-1","subject":"`+tok.String()+`"}` {
		t.Errorf("with an active flag: logged as %s %s, want flag-already-active naming f-1 and the subject", cmd.Entry.Action, cmd.Entry.Details)
	}
}

func TestConsentIsChecked(t *testing.T) {
	d := decider(t, decide.Policy{})
	c := validConsent()
	c.Controller = "bank-b"
	_, err := d.PlaceFlag(bankA, submission(protocol.PlaceFlag{Subject: tok, Kind: protocol.FlagKindStandard, Consent: c}), nil, nil, now)
	wantProblem(t, err, "invalid-consent", "/request/consent/controller")

	other := protocol.Token{Type: protocol.TypeEmail, Epoch: 2}
	_, err = d.PlaceFlag(bankA, submission(protocol.PlaceFlag{Subject: other, Kind: protocol.FlagKindStandard, Consent: validConsent()}), nil, nil, now)
	wantProblem(t, err, "invalid-token", "/request/subject")
}

func TestThawWindows(t *testing.T) {
	d := decider(t, decide.Policy{})
	f := activeFlag(protocol.FlagKindStandard, now.Add(10*day))
	for _, tc := range []struct {
		name        string
		from, until time.Time
		wantFrom    time.Time
		field       string
	}{
		{name: "from now", until: now.Add(24 * time.Hour), wantFrom: now},
		{name: "a moment ago", from: now.Add(-30 * time.Second), until: now.Add(time.Hour), wantFrom: now.Add(-30 * time.Second)},
		{name: "in a week", from: now.Add(7 * day), until: now.Add(7*day + time.Hour), wantFrom: now.Add(7 * day)},
		{name: "the longest", until: now.Add(72 * time.Hour), wantFrom: now},
		{name: "in the past", from: now.Add(-2 * time.Minute), until: now.Add(time.Hour), field: "/request/thaw_from"},
		{name: "too far ahead", from: now.Add(31 * day), until: now.Add(31*day + time.Hour), field: "/request/thaw_from"},
		{name: "ends before it starts", from: now.Add(time.Hour), until: now.Add(time.Hour), field: "/request/thaw_until"},
		{name: "too long", until: now.Add(73 * time.Hour), field: "/request/thaw_until"},
		{name: "past the flag's expiry", from: now.Add(10*day - time.Hour), until: now.Add(10*day + time.Hour), field: "/request/thaw_until"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := protocol.ThawFlag{FlagID: "f-1", ThawFrom: protocol.NewNumericDate(tc.from), ThawUntil: protocol.NewNumericDate(tc.until)}
			cmd, err := d.ThawFlag(bankA, submission(req), []byte("h"), f, now)
			if tc.field != "" {
				wantProblem(t, err, "validation-failed", tc.field)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if n := cmd.Flag; !n.ThawFrom.Equal(tc.wantFrom) || !n.ThawUntil.Equal(tc.until) || n.Version != 2 || len(n.Records) != 2 {
				t.Errorf("got flag %+v, want version 2 thawed %s–%s with the thaw's record", n, tc.wantFrom, tc.until)
			}
			if f.Version != 1 || len(f.Records) != 1 {
				t.Error("the decision changed the flag it was given")
			}
		})
	}
}

func TestChangesNeedAnActiveFlag(t *testing.T) {
	d := decider(t, decide.Policy{})
	ended := func(s api.FlagStatus) *state.Flag {
		f := activeFlag(protocol.FlagKindStandard, now.Add(day))
		f.Status, f.Subject = s, ""
		return f
	}
	lift := submission(protocol.LiftFlag{FlagID: "f-1"})
	for _, tc := range []struct {
		name string
		f    *state.Flag
		slug string
	}{
		{"none", nil, "not-found"},
		{"lifted", ended(api.FlagLifted), "state-conflict"},
		{"expired", ended(api.FlagExpired), "state-conflict"},
		{"erased", ended(api.FlagErased), "state-conflict"},
		{"active past its expiry", activeFlag(protocol.FlagKindStandard, now.Add(-time.Second)), "state-conflict"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := d.LiftFlag(bankA, lift, nil, tc.f, now)
			wantProblem(t, err, tc.slug, "")
			_, err = d.ThawFlag(bankA, submission(protocol.ThawFlag{FlagID: "f-1", ThawUntil: protocol.NewNumericDate(now.Add(time.Hour))}), nil, tc.f, now)
			wantProblem(t, err, tc.slug, "")
			_, err = d.ExtendFlag(bankA, submission(protocol.ExtendFlag{FlagID: "f-1", Kind: protocol.FlagKindStandard}), nil, tc.f, nil, now)
			wantProblem(t, err, tc.slug, "")
		})
	}
}

func TestLiftErasesWhatConsentCovered(t *testing.T) {
	d := decider(t, decide.Policy{})
	f := activeFlag(protocol.FlagKindStandard, now.Add(day))
	f.Records = []string{"r-1", "r-2"}
	cmd, err := d.LiftFlag(bankA, submission(protocol.LiftFlag{FlagID: "f-1", Reason: protocol.LiftReasons()[0]}), []byte("h"), f, now)
	if err != nil {
		t.Fatal(err)
	}
	if n := cmd.Flag; n.Status != api.FlagLifted || n.Subject != "" || n.ConsentID != "" || len(n.Records) != 1 || n.Version != 2 {
		t.Errorf("got flag %+v, want it lifted, keeping no subject or consent, with the lift's record only", n)
	}
	e := cmd.Erase
	if e.Consent != "f-1" || len(e.Records) != 2 || len(e.Subjects) != 1 || e.Subjects[0] != tok.String() || e.Basis != "consent-withdrawn" {
		t.Errorf("got erasure %+v, want the consent, both records and the subject's placements and checks", e)
	}
	for _, a := range []protocol.LogAction{protocol.LogFlagPlaced, protocol.LogFlagAlreadyActive, protocol.LogCheck} {
		if !containsAction(e.Actions, a) {
			t.Errorf("a lift does not erase the details of %s entries", a)
		}
	}
	if containsAction(e.Actions, protocol.LogSuspicionReported) {
		t.Error("a lift erases suspicions' details, which stand on their own legal basis")
	}
	exp, err := d.ExpireFlag(f, now)
	if err != nil {
		t.Fatal(err)
	}
	if exp.Flag.Status != api.FlagExpired || exp.Erase.Basis != "flag-expired" || exp.Actor != decide.Hub || exp.Submission != nil {
		t.Errorf("got expiry %+v, want the hub ending the flag as a lift does", exp)
	}
}

func containsAction(as []protocol.LogAction, a protocol.LogAction) bool {
	for _, x := range as {
		if x == a {
			return true
		}
	}
	return false
}

func TestExtend(t *testing.T) {
	d := decider(t, decide.Policy{})
	report := &protocol.PoliceReport{Authority: "Polismyndigheten", CaseNumber: "5000-K1-26", Date: "2026-11-20"}
	consentUntil := func(t time.Time) json.RawMessage {
		c := validConsent()
		c.ExpiresAt = protocol.NewNumericDate(t)
		b, _ := json.Marshal(consent.NewRecord(*c, "f-1", now))
		return b
	}
	for _, tc := range []struct {
		name    string
		f       *state.Flag
		req     protocol.ExtendFlag
		consent json.RawMessage
		want    time.Time
		slug    string
		field   string
	}{
		{name: "standard to the longest", f: activeFlag(protocol.FlagKindStandard, now.Add(day)), req: protocol.ExtendFlag{Kind: protocol.FlagKindStandard},
			consent: consentUntil(now.AddDate(6, 0, 0)), want: now.Add(365 * day)},
		{name: "standard past its consent", f: activeFlag(protocol.FlagKindStandard, now.Add(day)), req: protocol.ExtendFlag{Kind: protocol.FlagKindStandard},
			consent: consentUntil(now.Add(30 * day)), slug: "invalid-consent", field: "/request/expires_at"},
		{name: "to extended, with a report", f: activeFlag(protocol.FlagKindStandard, now.Add(day)), req: protocol.ExtendFlag{Kind: protocol.FlagKindExtended, PoliceReport: report},
			want: now.Add(1826 * day)},
		{name: "extended back to standard", f: activeFlag(protocol.FlagKindExtended, now.Add(day)), req: protocol.ExtendFlag{Kind: protocol.FlagKindStandard},
			slug: "validation-failed", field: "/request/kind"},
		{name: "not later", f: activeFlag(protocol.FlagKindStandard, now.Add(100*day)), req: protocol.ExtendFlag{Kind: protocol.FlagKindStandard, ExpiresAt: protocol.NewNumericDate(now.Add(50 * day))},
			consent: consentUntil(now.AddDate(6, 0, 0)), slug: "validation-failed", field: "/request/expires_at"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.req.FlagID = "f-1"
			cmd, err := d.ExtendFlag(bankA, submission(tc.req), []byte("h"), tc.f, tc.consent, now)
			if tc.slug != "" {
				wantProblem(t, err, tc.slug, tc.field)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if n := cmd.Flag; !n.ExpiresAt.Equal(tc.want) || n.Kind != tc.req.Kind || !n.RemindAt.Equal(tc.want.Add(-30*day)) || n.Version != 2 {
				t.Errorf("got flag %+v, want version 2, %s, until %s, reminded 30 days before", n, tc.req.Kind, tc.want)
			}
		})
	}
}

func TestSuspicionGating(t *testing.T) {
	off := decider(t, decide.Policy{})
	report := submission(protocol.ReportSuspicion{Subjects: []protocol.Token{tok}, Category: protocol.CategoryIdentityTheft,
		PoliceReport: &protocol.PoliceReport{Authority: "Polismyndigheten", CaseNumber: "5000-K1-26", Date: "2026-11-20"}})
	_, err := off.ReportSuspicion(bankA, report, nil, now)
	wantProblem(t, err, "suspicions-disabled", "")
	_, _, err = off.SuspicionDetails(bankB, "s-1", api.DetailsRequest{Purpose: api.PurposePayment, Justification: strings.Repeat("x", 30)}, nil, nil, now)
	wantProblem(t, err, "suspicions-disabled", "")

	on := decider(t, decide.Policy{SuspicionLegalBasis: "brottsdatalagen"})
	cmd, err := on.ReportSuspicion(bankA, report, []byte("h"), now)
	if err != nil {
		t.Fatal(err)
	}
	full := cmd.Records[0]
	if len(cmd.Records) != 1 || full.Audience != "bank-a" || !cmd.Suspicion.ExpiresAt.Equal(now.Add(730*day)) {
		t.Errorf("got %d records, the first for %q, expiry %s; want one record, for the reporter only (a suspicion never goes out in bulk), kept two years",
			len(cmd.Records), full.Audience, cmd.Suspicion.ExpiresAt)
	}
	if !strings.Contains(string(cmd.Entry.Details), "brottsdatalagen") {
		t.Error("the entry does not name the legal basis")
	}
	sp := cmd.Suspicion
	if _, err := on.RetractSuspicion(bankB, submission(protocol.RetractSuspicion{SuspicionID: sp.ID}), nil, sp, now); err == nil {
		t.Error("another member retracted the suspicion")
	} else {
		wantProblem(t, err, "not-found", "")
	}
	retracted, err := on.RetractSuspicion(bankA, submission(protocol.RetractSuspicion{SuspicionID: sp.ID, Reason: protocol.RetractCaseClosed}), nil, sp, now)
	if err != nil {
		t.Fatal(err)
	}
	if retracted.Record.Audience != "bank-a" {
		t.Errorf("the retraction's record is for %q, want the reporter only", retracted.Record.Audience)
	}
	if exp, err := on.ExpireSuspicion(sp, now); err != nil || exp.Record.Audience != "bank-a" {
		t.Errorf("the expiry's record: %+v, %v; want it for the reporter only", exp, err)
	}
	if _, err := on.RetractSuspicion(bankA, submission(protocol.RetractSuspicion{SuspicionID: sp.ID}), nil, retracted.Suspicion, now); err == nil {
		t.Error("a retracted suspicion was retracted again")
	} else {
		wantProblem(t, err, "state-conflict", "")
	}
	for _, tc := range []struct {
		name string
		req  api.DetailsRequest
		sp   *state.Suspicion
		slug string
	}{
		{"no purpose", api.DetailsRequest{Purpose: "curiosity", Justification: strings.Repeat("x", 30)}, sp, "validation-failed"},
		{"too short", api.DetailsRequest{Purpose: api.PurposePayment, Justification: "because"}, sp, "validation-failed"},
		{"too long", api.DetailsRequest{Purpose: api.PurposePayment, Justification: strings.Repeat("x", 1001)}, sp, "validation-failed"},
		{"ended", api.DetailsRequest{Purpose: api.PurposePayment, Justification: strings.Repeat("x", 30)}, retracted.Suspicion, "not-found"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := on.SuspicionDetails(bankB, sp.ID, tc.req, tc.sp, nil, now)
			wantProblem(t, err, tc.slug, "")
		})
	}
	note, resp, err := on.SuspicionDetails(bankB, sp.ID, api.DetailsRequest{Purpose: api.PurposePayment, Justification: strings.Repeat("x", 30)}, sp, cmd.Records, now)
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Records) != 1 || resp.Records[0] != full.JWS || resp.Suspicion.PoliceReport == nil || note.Entry.Action != protocol.LogSuspicionDetails {
		t.Errorf("got details %+v, want the full record and the report, logged as suspicion-details", resp)
	}
}

func TestAdvice(t *testing.T) {
	flag := activeFlag(protocol.FlagKindStandard, now.Add(day))
	thawed := activeFlag(protocol.FlagKindStandard, now.Add(day))
	thawed.ThawFrom, thawed.ThawUntil = now.Add(-time.Hour), now.Add(20*day)
	lapsed := activeFlag(protocol.FlagKindStandard, now)
	susp := func(cat protocol.SuspicionCategory, expires time.Time) *state.Suspicion {
		return &state.Suspicion{ID: "s-" + string(cat), Category: cat, Status: api.SuspicionActive, ExpiresAt: expires}
	}
	for _, tc := range []struct {
		name       string
		s          state.Subject
		advice     api.Advice
		flag       bool
		categories int
	}{
		{"nothing known", state.Subject{}, api.AdviceNone, false, 0},
		{"an active flag", state.Subject{Flag: flag}, api.AdviceVerify, true, 0},
		{"a thawed flag", state.Subject{Flag: thawed}, api.AdviceNone, true, 0},
		{"a flag past its expiry", state.Subject{Flag: lapsed}, api.AdviceNone, false, 0},
		{"suspicions", state.Subject{Suspicions: []*state.Suspicion{susp(protocol.CategoryIdentityTheft, now.Add(day)), susp(protocol.CategoryMoneyMule, now.Add(day))}}, api.AdviceReview, false, 2},
		{"a suspicion past its retention", state.Subject{Suspicions: []*state.Suspicion{susp(protocol.CategoryIdentityTheft, now)}}, api.AdviceNone, false, 0},
		{"a flag and a suspicion", state.Subject{Flag: flag, Suspicions: []*state.Suspicion{susp(protocol.CategoryIdentityTheft, now.Add(day))}}, api.AdviceVerify, true, 1},
		{"a thawed flag and a suspicion", state.Subject{Flag: thawed, Suspicions: []*state.Suspicion{susp(protocol.CategoryIdentityTheft, now.Add(day))}}, api.AdviceReview, true, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := decide.Advise(bankB, tok.String(), tc.s, now)
			if r.Advice != tc.advice || (r.Flag != nil) != tc.flag || r.Token != tok {
				t.Errorf("got advice %s, flag %v; want %s, flag %t", r.Advice, r.Flag, tc.advice, tc.flag)
			}
			if n := 0; r.Suspicions != nil {
				n = len(r.Suspicions.Categories)
				if n != tc.categories || r.Suspicions.Count != len(tc.s.Suspicions) {
					t.Errorf("got %d categories in %d hits, want %d", n, r.Suspicions.Count, tc.categories)
				}
			} else if tc.categories != 0 {
				t.Errorf("got no suspicion hits, want %d categories", tc.categories)
			}
		})
	}
}

func TestCheckCountsAndLogs(t *testing.T) {
	d := decider(t, decide.Policy{})
	other := protocol.Token{Type: protocol.TypeEmail, Epoch: 1, Value: [64]byte{9}}
	req := &api.CheckRequest{Purpose: api.PurposeCreditApplication, Tokens: []string{tok.String(), other.String()}}
	if err := d.CheckRequest(req); err != nil {
		t.Fatal(err)
	}
	cmd, resp, err := d.Check(bankB, req, []state.Subject{{Flag: activeFlag(protocol.FlagKindStandard, now.Add(day))}, {}}, now)
	if err != nil {
		t.Fatal(err)
	}
	if cmd.Check.Verify != 1 || cmd.Check.Review != 0 || cmd.Check.Tokens != 2 || resp.CheckID != cmd.Check.ID {
		t.Errorf("got check %+v, want 2 tokens, 1 verify", cmd.Check)
	}
	if len(cmd.Entry.Subjects) != 2 || cmd.Entry.Action != protocol.LogCheck {
		t.Errorf("got entry %+v, want a check entry indexed under both tokens (a lift erases it)", cmd.Entry)
	}
	for _, a := range cmd.Entry.Attrs {
		if strings.Contains(a.Value, tok.String()) {
			t.Errorf("attribute %s names a token", a.Key)
		}
	}
	for _, tc := range []struct {
		name string
		req  api.CheckRequest
		slug string
	}{
		{"no purpose", api.CheckRequest{Purpose: "fun", Tokens: []string{tok.String()}}, "validation-failed"},
		{"no tokens", api.CheckRequest{Purpose: api.PurposePayment}, "validation-failed"},
		{"too many", api.CheckRequest{Purpose: api.PurposePayment, Tokens: make([]string, 101)}, "validation-failed"},
		{"not a token", api.CheckRequest{Purpose: api.PurposePayment, Tokens: []string{"pnr.1.short"}}, "invalid-token"},
		{"another epoch", api.CheckRequest{Purpose: api.PurposePayment, Tokens: []string{protocol.Token{Type: protocol.TypeEmail, Epoch: 7}.String()}}, "invalid-token"},
	} {
		t.Run(tc.name, func(t *testing.T) { wantProblem(t, d.CheckRequest(&tc.req), tc.slug, "") })
	}
	chk := cmd.Check
	if _, err := d.Outcome(bankA, chk.ID, api.OutcomeRequest{Outcome: api.OutcomeVerified}, chk, now); err == nil {
		t.Error("another member reported the outcome")
	}
	set, err := d.Outcome(bankB, chk.ID, api.OutcomeRequest{Outcome: api.OutcomeVerified}, chk, now)
	if err != nil || set.Check.Outcome != api.OutcomeVerified || chk.Outcome != "" {
		t.Fatalf("got %+v, %v; want the outcome set on a copy", set, err)
	}
	_, err = d.Outcome(bankB, chk.ID, api.OutcomeRequest{Outcome: api.OutcomeAbandoned}, set.Check, now)
	wantProblem(t, err, "state-conflict", "")
}

func TestEndpointChanges(t *testing.T) {
	d := decider(t, decide.Policy{})
	fresh, secret, err := d.RegisterEndpoint(bankB, "https://hooks.bank-b.example/a", nil, nil, now)
	if err != nil || !strings.HasPrefix(secret, "whsec_") || fresh.Change.Secret == nil || fresh.Record == nil || fresh.Record.Audience != "bank-b" {
		t.Fatalf("new endpoint: got %+v, %q, %v; want a secret and a verification event for bank-b", fresh, secret, err)
	}
	e, ok, err := fresh.Change.ApplyTo(nil, now)
	if !ok || err != nil {
		t.Fatal(ok, err)
	}
	for _, tc := range []struct {
		name          string
		url           string
		status        api.EndpointStatus
		secret, check bool
	}{
		{"same URL", "https://hooks.bank-b.example/a", api.EndpointActive, false, false},
		{"another URL", "https://hooks.bank-b.example/b", api.EndpointActive, false, true},
		{"after it was disabled", "https://hooks.bank-b.example/a", api.EndpointDisabled, true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			old := *e
			old.Status = tc.status
			cmd, secret, err := d.RegisterEndpoint(bankB, tc.url, nil, &old, now)
			if err != nil {
				t.Fatal(err)
			}
			if (secret != "") != tc.secret || (cmd.Record != nil) != tc.check || cmd.Change.Verify != (tc.check && !tc.secret) {
				t.Errorf("got secret %t, verification %t (verify %t); want %t, %t", secret != "", cmd.Record != nil, cmd.Change.Verify, tc.secret, tc.check)
			}
		})
	}
	if _, err := d.ResumeEndpoint(bankB, e, now); err == nil {
		t.Error("resumed an endpoint that is not paused")
	} else {
		wantProblem(t, err, "state-conflict", "")
	}
	_, err = d.RemoveEndpoint(bankB, nil, now)
	wantProblem(t, err, "not-found", "")
	rot, s2, until, err := d.RotateSecret(bankB, e, now)
	if err != nil || s2 == secret || !until.Equal(now.Add(24*time.Hour)) || rot.Change.Op != state.EndpointRotate {
		t.Errorf("rotation: got %+v, until %s, %v; want a new secret, the old ones signing 24 h more", rot, until, err)
	}
	if _, err := decide.EndpointEvents(api.EndpointRequest{Events: []string{"verification"}}); err == nil {
		t.Error("subscribed to the verification event")
	}
}

func TestMembers(t *testing.T) {
	d := decider(t, decide.Policy{})
	jwks := keySetJSON(t)
	add, err := d.AddMember(op, api.MemberRequest{ID: "bank-c", Name: "Bank C", Roles: []api.Role{api.RoleFlag, api.RoleCheck, api.RoleFlag}, JWKS: jwks}, now)
	if err != nil {
		t.Fatal(err)
	}
	if m := add.Member; len(m.Roles) != 2 || m.Status != api.MemberActive || !add.Create || add.Actor != decide.OperatorID {
		t.Errorf("got %+v, want a new active member with its roles once each, by the operator", add)
	}
	_, err = d.AddMember(op, api.MemberRequest{ID: "Bank C", Name: "x", Roles: []api.Role{api.RoleCheck}, JWKS: jwks}, now)
	wantProblem(t, err, "validation-failed", "")
	if cmd, err := d.SetMemberStatus(op, "bank-c", add.Member, api.MemberActive, now); cmd != nil || err != nil {
		t.Errorf("resuming an active member: got %+v, %v; want nothing to do", cmd, err)
	}
	sus, err := d.SetMemberStatus(op, "bank-c", add.Member, api.MemberSuspended, now)
	if err != nil || sus.Member.Status != api.MemberSuspended || sus.Entry.Action != protocol.LogMemberSuspended || add.Member.Status != api.MemberActive {
		t.Errorf("got %+v, %v; want a suspension of a copy", sus, err)
	}
	operator := d.Operator(nil, jwks, now)
	if operator == nil || operator.Member.ID != decide.OperatorID || d.Operator(operator.Member, jwks, now) != nil {
		t.Errorf("the operator: got %+v; want it created once, then left alone", operator)
	}
	_, err = d.SetMemberStatus(op, decide.OperatorID, operator.Member, api.MemberSuspended, now)
	wantProblem(t, err, "state-conflict", "")
	roles := []api.Role{api.RoleCheck}
	_, err = d.UpdateMember(op, decide.OperatorID, operator.Member, api.MemberPatch{Roles: &roles}, now)
	wantProblem(t, err, "state-conflict", "")
	_, err = d.UpdateMember(op, "nobody", nil, api.MemberPatch{}, now)
	wantProblem(t, err, "not-found", "")
}

func TestErasure(t *testing.T) {
	d := decider(t, decide.Policy{})
	if _, err := decide.ErasureSubject(api.ErasureRequest{Subject: tok.String(), LegalBasis: "GDPR 17"}); err == nil {
		t.Error("a legal basis with spaces and capitals was accepted")
	}
	f := activeFlag(protocol.FlagKindStandard, now.Add(day))
	sp := &state.Suspicion{ID: "s-1", Version: 1, Origin: "bank-a", Subjects: []string{tok.String()}, Status: api.SuspicionActive, Records: []string{"r-s"}}
	cmd, err := d.EraseSubject(op, tok, "gdpr-art-17", state.Subject{Flag: f, Suspicions: []*state.Suspicion{sp}}, []string{"r-1", "r-s"}, []uint64{4}, now)
	if err != nil {
		t.Fatal(err)
	}
	if len(cmd.Records) != 1 || cmd.Records[0].Audience != "" {
		t.Errorf("with a flag, got %d erasure records (first for %q), want one for every member", len(cmd.Records), cmd.Records[0].Audience)
	}
	if cmd.Flag.Status != api.FlagErased || len(cmd.Flag.Records) != 0 || cmd.Erase.Consent != "f-1" ||
		len(cmd.Suspicions) != 1 || cmd.Suspicions[0].Status != api.SuspicionErased || len(cmd.Suspicions[0].Records) != 0 || cmd.Erase.Basis != "gdpr-art-17" {
		t.Errorf("got %+v, want the flag and suspicion ended as erased keeping no records, the consent and every record erased", cmd)
	}
	if len(cmd.Entry.Details) != 0 {
		t.Error("the erasure's own entry commits to details that would name the subject")
	}
	// Without a flag, only the suspicions' reporters are told: the others
	// would learn from the erasure that there was a suspicion.
	sp2 := &state.Suspicion{ID: "s-2", Version: 1, Origin: "bank-c", Subjects: []string{tok.String()}, Status: api.SuspicionActive}
	quiet, err := d.EraseSubject(op, tok, "gdpr-art-17", state.Subject{Suspicions: []*state.Suspicion{sp, sp2, sp}}, nil, nil, now)
	if err != nil {
		t.Fatal(err)
	}
	var to []string
	for _, r := range quiet.Records {
		to = append(to, r.Audience)
	}
	if strings.Join(to, ",") != "bank-a,bank-c" {
		t.Errorf("without a flag, erasure records go to %q, want the two reporters only", to)
	}
}

func TestRefusalCommitsToTheBodyOnly(t *testing.T) {
	d := decider(t, decide.Policy{})
	body := []byte(`{"subject":"` + tok.String() + `"}`)
	n := d.Refusal(bankA, protocol.LogFlagPlace, protocol.NewProblem(protocol.ProblemValidation, "no"), body, now)
	if n.Entry.Result != "rejected:validation-failed" || n.Entry.Action != protocol.LogFlagPlace || bytes.Contains(n.Entry.Details, []byte(tok.String())) {
		t.Errorf("got entry %+v, want flag-place rejected:validation-failed committing to the body's hash, not the body", n.Entry)
	}
}

func TestDefaultPolicy(t *testing.T) {
	p := decide.Policy{MaxThaw: time.Hour}.WithDefaults()
	if p.MaxThaw != time.Hour || p.StandardFlag != 365*day || p.SecretOverlap != 24*time.Hour || p.SuspicionLegalBasis != "" {
		t.Errorf("got %+v; want the hour kept, every other zero field its default, suspicions off", p)
	}
}

// TestFlagViewThaw: a flag is shown thawed only inside its thaw window; a
// window that has passed is not shown at all, one to come is shown with
// the flag not (yet) thawed.
func TestFlagViewThaw(t *testing.T) {
	f := activeFlag(protocol.FlagKindStandard, now.Add(10*day))
	f.ThawFrom, f.ThawUntil = now.Add(time.Hour), now.Add(3*time.Hour)
	for _, tc := range []struct {
		name   string
		at     time.Time
		thawed bool
		window bool
	}{
		{"before the window", now, false, true},
		{"at its start", now.Add(time.Hour), true, true},
		{"inside it", now.Add(2 * time.Hour), true, true},
		{"at its end", now.Add(3 * time.Hour), false, false},
		{"after it", now.Add(4 * time.Hour), false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := decide.FlagView(bankA, f, tc.at)
			if v.Thawed != tc.thawed || (!v.ThawUntil.IsZero()) != tc.window || v.Status != api.FlagActive {
				t.Errorf("got thawed %t, window %s–%s, %s; want thawed %t, window shown %t, active", v.Thawed, v.ThawFrom, v.ThawUntil, v.Status, tc.thawed, tc.window)
			}
		})
	}
	if v := decide.FlagView(bankA, f, now.Add(10*day)); v.Status != api.FlagExpired || v.Thawed {
		t.Errorf("past its expiry: got %s, thawed %t; want expired, not thawed", v.Status, v.Thawed)
	}
}

// TestReplicaChecksNameEveryFault: a report is refused whole, naming every
// check at fault by its JSON Pointer, under one problem type: a bad token
// beside another fault makes it validation-failed.
func TestReplicaChecksNameEveryFault(t *testing.T) {
	d := decider(t, decide.Policy{})
	stale := tok
	stale.Epoch++
	req := &api.ReplicaChecksRequest{Checks: []api.ReplicaCheck{
		{Token: tok.String(), Purpose: api.PurposePayment, At: now},
		{Token: stale.String(), Purpose: api.PurposePayment, At: now},
		{Token: tok.String(), Purpose: "curiosity", At: now},
	}}
	_, err := d.ReplicaChecksRequest(req, now)
	var p *protocol.Problem
	if !errors.As(err, &p) || p.Type != protocol.ProblemValidation.URI || p.Status != protocol.ProblemValidation.Status || len(p.Errors) != 2 ||
		p.Errors[0].Pointer != "/checks/1/token" || p.Errors[1].Pointer != "/checks/2/purpose" {
		t.Fatalf("got %v (%+v), want validation-failed naming /checks/1/token and /checks/2/purpose", err, p)
	}
	req.Checks = req.Checks[:2]
	if _, err := d.ReplicaChecksRequest(req, now); !errors.As(err, &p) || p.Type != protocol.ProblemInvalidToken.URI || len(p.Errors) != 1 {
		t.Errorf("one bad token: got %v, want invalid-token naming it", err)
	}
}

// TestCheckNotifiesTheOrigin: a check of a flagged token notifies the
// flag's origin only, with a record addressed to it; a check by the
// origin itself keeps a notice but signs nothing; an unflagged token gets
// no notice.
func TestCheckNotifiesTheOrigin(t *testing.T) {
	d, keys := deciderWithKeys(t, decide.Policy{})
	other := protocol.Token{Type: protocol.TypeEmail, Epoch: 1, Value: [64]byte{9}}
	req := &api.CheckRequest{Purpose: api.PurposeCreditApplication, Tokens: []string{tok.String(), other.String(), tok.String()}}
	f := activeFlag(protocol.FlagKindStandard, now.Add(day))
	subjects := []state.Subject{{Flag: f}, {}, {Flag: f}}
	cmd, _, err := d.Check(bankB, req, subjects, now)
	if err != nil {
		t.Fatal(err)
	}
	if len(cmd.Notices) != 1 {
		t.Fatalf("got %d notices, want 1 (one flagged token, named twice)", len(cmd.Notices))
	}
	n := cmd.Notices[0]
	if n.Record == nil || n.Record.Audience != "bank-a" || n.Record.Type != protocol.EventSubjectChecked || n.Member != "bank-b" || n.CheckID != cmd.Check.ID {
		t.Fatalf("got notice %+v, want one from bank-b's check with a subject-checked record for bank-a", n)
	}
	rec, err := protocol.VerifyRecord([]byte(n.Record.JWS), keys)
	if err != nil {
		t.Fatal(err)
	}
	if ev := rec.Event.(protocol.SubjectChecked); ev.Checker != "bank-b" || ev.Purpose != api.PurposeCreditApplication || ev.CheckID != cmd.Check.ID || ev.FlagID != f.ID {
		t.Errorf("got event %+v", ev)
	}
	own, _, err := d.Check(bankA, req, subjects, now)
	if err != nil {
		t.Fatal(err)
	}
	if len(own.Notices) != 1 || own.Notices[0].Record != nil {
		t.Errorf("the origin's own check: got %+v, want a notice without a record", own.Notices)
	}
}

// TestDenyCheckRules: only the flag's origin denies, once, while the flag
// is active, with a fresh authentication; a denial shows in later checks
// within the window, beside the advice, which it leaves alone.
func TestDenyCheckRules(t *testing.T) {
	d := decider(t, decide.Policy{DenialWindow: 10 * day})
	f := activeFlag(protocol.FlagKindStandard, now.Add(100*day))
	notice := &state.AccessNotice{CheckID: "k-1", FlagID: f.ID, Subject: tok.String(), Origin: "bank-a", Member: "bank-b", Purpose: api.PurposeCreditApplication, At: now.Add(-time.Hour)}
	auth := func(at time.Time) *protocol.ConsumerAuth {
		return &protocol.ConsumerAuth{Method: protocol.AuthBankID, AuthenticatedAt: protocol.NewNumericDate(at), Level: protocol.LevelHigh, Reference: "auth-1"}
	}
	sub := func(a *protocol.ConsumerAuth) *protocol.Submission {
		return &protocol.Submission{Issuer: "bank-a", ID: "jti-1", Request: protocol.DenyCheck{CheckID: "k-1", FlagID: f.ID, ConsumerAuth: a}}
	}
	denied := *notice
	denied.DeniedAt = now.Add(-time.Minute)
	lifted := *f
	lifted.Status = api.FlagLifted
	for _, tc := range []struct {
		name   string
		m      *api.Member
		n      *state.AccessNotice
		f      *state.Flag
		auth   *protocol.ConsumerAuth
		status int
	}{
		{"the origin", bankA, notice, f, auth(now.Add(-time.Minute)), 0},
		{"another member", bankB, notice, f, auth(now), 404},
		{"no notice", bankA, nil, nil, auth(now), 404},
		{"already denied", bankA, &denied, f, auth(now), 409},
		{"flag lifted", bankA, notice, &lifted, auth(now), 409},
		{"no flag", bankA, notice, nil, auth(now), 409},
		{"stale authentication", bankA, notice, f, auth(now.Add(-2 * time.Hour)), 422},
		{"authentication ahead", bankA, notice, f, auth(now.Add(time.Hour)), 422},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cmd, err := d.DenyCheck(tc.m, sub(tc.auth), []byte("hash"), tc.n, tc.f, now)
			var p *protocol.Problem
			switch {
			case tc.status == 0 && err != nil:
				t.Fatalf("got %v, want a denial", err)
			case tc.status == 0:
				if cmd.Denial.Record.Audience != "bank-b" || cmd.Denial.Record.Type != protocol.EventCheckDenied || cmd.Entry.Action != protocol.LogCheckDenied {
					t.Errorf("got %+v, want a check-denied record for bank-b", cmd.Denial.Record)
				}
				for _, a := range cmd.Entry.Attrs {
					if strings.Contains(a.Value, tok.String()) || strings.Contains(a.Value, "auth-1") {
						t.Errorf("attribute %s names the subject or the authentication", a.Key)
					}
				}
			case !errors.As(err, &p) || p.Status != tc.status:
				t.Errorf("got %v, want status %d", err, tc.status)
			}
		})
	}

	thawed := *f
	thawed.ThawFrom, thawed.ThawUntil = now.Add(-time.Hour), now.Add(20*day)
	dn := &state.Denial{CheckID: "k-1", FlagID: f.ID, Subject: tok.String(), Origin: "bank-a", Member: "bank-b", DeniedAt: now.Add(-day),
		Record: &state.Record{ID: "r-d", Type: protocol.EventCheckDenied, Audience: "bank-b", JWS: "jws-d"}}
	req := &api.CheckRequest{Purpose: api.PurposeCreditApplication, Tokens: []string{tok.String()}}
	for _, tc := range []struct {
		name    string
		m       *api.Member
		at      time.Time
		count   int
		records int
		advice  api.Advice
	}{
		{"the checker, within the window", bankB, now, 1, 1, api.AdviceNone},
		{"another member, within the window", bankA, now, 1, 0, api.AdviceNone},
		{"after the window", bankB, now.Add(10 * day), 0, 0, api.AdviceNone},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, resp, err := d.Check(tc.m, req, []state.Subject{{Flag: &thawed, Denials: []*state.Denial{dn}}}, tc.at)
			if err != nil {
				t.Fatal(err)
			}
			r := resp.Results[0]
			got := 0
			if r.Denied != nil {
				got = r.Denied.Count
				if len(r.Denied.Records) != tc.records {
					t.Errorf("got %d records, want %d", len(r.Denied.Records), tc.records)
				}
			}
			if got != tc.count || r.Advice != tc.advice {
				t.Errorf("got %d denials, advice %s; want %d, %s", got, r.Advice, tc.count, tc.advice)
			}
		})
	}
}
