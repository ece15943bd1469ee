package protocol_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwa"

	"github.com/sparr-dev/sparr/protocol"
)

var ctx = context.Background()

// memberKeys returns bank-a's and bank-b's keys and a resolver for both.
func memberKeys(t testing.TB) (a, b *protocol.SigningKey, keys members) {
	a = ed25519Key(t, "sparr test vectors: bank-a key")
	b = p256Key(t, "sparr test vectors: bank-b key")
	return a, b, members{"bank-a": keySet(t, a), "bank-b": keySet(t, b)}
}

func sampleConsent(subject protocol.Token) *protocol.Consent {
	return &protocol.Consent{
		ID: "019aa5f0-8c00-7000-8000-00000000c001", Subject: subject, Controller: "bank-a",
		Purpose: "identity-fraud-protection", LegalBasis: "gdpr-art-6-1-a",
		Collection: protocol.ConsentCollection{Method: "mobile-app", At: protocol.NewNumericDate(vectorTime.Add(-time.Minute))},
		Notice:     "https://bank-a.example/privacy/sparr-v3",
		ExpiresAt:  protocol.NewNumericDate(vectorTime.AddDate(1, 0, 0)),
		Evidence:   protocol.ConsentEvidence{AuthenticationMethod: "bankid", AssuranceLevel: "loa3", Reference: "a3d5c7e1-auth"},
	}
}

func sampleConsumerAuth() *protocol.ConsumerAuth {
	return &protocol.ConsumerAuth{Method: protocol.AuthBankID, AuthenticatedAt: protocol.NewNumericDate(vectorTime.Add(-time.Minute)), Level: protocol.LevelHigh, Reference: "a3d5c7e1-auth"}
}

// sampleRequests returns one request of each action.
func sampleRequests(t testing.TB) []protocol.Request {
	pnr := testToken(t, protocol.TypePersonalNumber, "190905271474")
	email := testToken(t, protocol.TypeEmail, "anna.svensson@example.se")
	report := &protocol.PoliceReport{Authority: "Polismyndigheten", CaseNumber: "5000-K123456-26", Date: "2026-11-20"}
	return []protocol.Request{
		protocol.PlaceFlag{Subject: pnr, Kind: protocol.FlagKindStandard, Consent: sampleConsent(pnr), Reason: protocol.PlaceLostIDDocument},
		protocol.ExtendFlag{FlagID: "f1", Kind: protocol.FlagKindExtended, PoliceReport: report},
		protocol.ThawFlag{FlagID: "f1", ThawUntil: protocol.NewNumericDate(vectorTime.Add(time.Hour))},
		protocol.LiftFlag{FlagID: "f1"},
		protocol.ReportSuspicion{Subjects: []protocol.Token{pnr, email}, Category: protocol.CategoryIdentityTheft, PoliceReport: report},
		protocol.RetractSuspicion{SuspicionID: "s1", Reason: protocol.RetractCaseClosed},
		protocol.DenyCheck{CheckID: "k1", FlagID: "f1", ConsumerAuth: &protocol.ConsumerAuth{Method: protocol.AuthBankID,
			AuthenticatedAt: protocol.NewNumericDate(vectorTime.Add(-time.Minute)), Level: protocol.LevelHigh, Reference: "a3d5c7e1-auth"}},
		protocol.ReportPayee{Payee: testToken(t, protocol.TypeIBAN, "SE4550000000058398257466"), Customers: 2, Category: protocol.PayeeImpersonation,
			FirstSeen: protocol.NewNumericDate(vectorTime.Add(-time.Hour)), LastSeen: protocol.NewNumericDate(vectorTime)},
		protocol.ContestPayee{PayeeID: "p1", Reason: protocol.ContestHolderDisputes},
		protocol.RequestRecall{Payee: testToken(t, protocol.TypeIBAN, "SE4550000000058398257466"), Bank: protocol.BankRef{Country: "SE", BankCode: "500"},
			Amount: protocol.Money{Minor: 4_000_000, Currency: "SEK"}, PaidAt: protocol.NewNumericDate(vectorTime.Add(-10 * time.Minute)), Reference: "A-0042"},
		protocol.AcknowledgeRecall{RecallID: "r1"},
		protocol.ReportRecallOutcome{RecallID: "r1", Outcome: protocol.RecallFrozen, Amount: protocol.Money{Minor: 3_150_000, Currency: "SEK"}},
		protocol.SubjectHistory{Subject: pnr, ConsumerAuth: sampleConsumerAuth()},
		protocol.RequestAccessReport{Subject: pnr, ConsumerAuth: sampleConsumerAuth()},
		protocol.OpenDispute{Subject: pnr, SuspicionID: "s1", Grounds: protocol.GroundsNotMe, Statement: "I was abroad.", ConsumerAuth: sampleConsumerAuth()},
		protocol.AnswerDispute{DisputeID: "d1", Answer: protocol.AnswerReject, Reason: "Signed with the consumer's BankID."},
		protocol.AttestErasure{Records: []string{"r1", "r2"}},
	}
}

func submissionOptions() protocol.SubmissionOptions {
	return protocol.SubmissionOptions{Audience: hubIssuer, Now: vectorTime}
}

func TestSubmissionRoundTrip(t *testing.T) {
	a, b, keys := memberKeys(t)
	reqs := sampleRequests(t)
	if len(reqs) != len(protocol.Actions()) {
		t.Fatalf("sample requests cover %d actions, want %d", len(reqs), len(protocol.Actions()))
	}
	for _, signer := range []struct {
		member string
		key    *protocol.SigningKey
	}{{"bank-a", a}, {"bank-b", b}} {
		for i, req := range reqs {
			t.Run(string(req.Action())+"/"+signer.member, func(t *testing.T) {
				s := &protocol.Submission{Issuer: signer.member, Audience: hubIssuer, IssuedAt: vectorTime, ID: fmt.Sprintf("jti-%d", i), Request: req}
				signed, err := protocol.SignSubmission(s, signer.key)
				if err != nil {
					t.Fatal(err)
				}
				got, err := protocol.VerifySubmission(ctx, signed, keys, submissionOptions())
				if err != nil {
					t.Fatal(err)
				}
				s.KeyID = signer.key.KeyID()
				if !reflect.DeepEqual(got, s) {
					t.Errorf("got %+v, want %+v", got, s)
				}
			})
		}
	}
}

func TestVerifySubmissionRefuses(t *testing.T) {
	a, b, keys := memberKeys(t)
	pnr := testToken(t, protocol.TypePersonalNumber, "190905271474")
	hdr := map[string]any{"kid": a.KeyID(), "typ": "sparr-submission+jwt", "iss": "bank-a"}
	claims := func(edit func(c, req map[string]any)) string {
		var consent map[string]any
		raw, _ := json.Marshal(sampleConsent(pnr))
		_ = json.Unmarshal(raw, &consent)
		req := map[string]any{"subject": pnr.String(), "kind": "standard", "consent": consent}
		c := map[string]any{"iss": "bank-a", "aud": hubIssuer, "iat": vectorTime.Unix(), "jti": "j1", "action": "flag-place", "request": req}
		edit(c, req)
		out, _ := json.Marshal(c)
		return string(out)
	}
	signA := func(edit func(c, req map[string]any)) []byte {
		return signRaw(t, a, jwa.EdDSA(), hdr, claims(edit))
	}
	bearer, _ := protocol.NewBearer(a, "bank-a", hubIssuer, vectorTime, time.Minute)
	tests := []struct {
		name      string
		token     []byte
		want      error
		wantClaim string
	}{
		{"garbage", []byte("not a jws"), protocol.ErrMalformed, ""},
		{"no iss header", signRaw(t, a, jwa.EdDSA(), map[string]any{"kid": a.KeyID(), "typ": "sparr-submission+jwt"}, claims(func(c, r map[string]any) {})), protocol.ErrMalformed, ""},
		{"a bearer token", []byte(bearer), protocol.ErrWrongType, ""},
		{"unknown member", signRaw(t, a, jwa.EdDSA(), map[string]any{"kid": a.KeyID(), "typ": "sparr-submission+jwt", "iss": "bank-z"}, claims(func(c, r map[string]any) {})), protocol.ErrUnknownKey, ""},
		{"another member's kid", signRaw(t, b, jwa.ES256(), map[string]any{"kid": b.KeyID(), "typ": "sparr-submission+jwt", "iss": "bank-a"}, claims(func(c, r map[string]any) {})), protocol.ErrUnknownKey, ""},
		{"signed by bank-b under bank-a's kid", signRaw(t, ed25519Key(t, "bank-b's other key"), jwa.EdDSA(), hdr, claims(func(c, r map[string]any) {})), protocol.ErrBadSignature, ""},
		{"iss claim differs from header", signA(func(c, r map[string]any) { c["iss"] = "bank-b" }), protocol.ErrInvalidClaim, "iss"},
		{"wrong audience", signA(func(c, r map[string]any) { c["aud"] = "https://other-hub.example" }), protocol.ErrInvalidClaim, "aud"},
		{"no aud", signA(func(c, r map[string]any) { delete(c, "aud") }), protocol.ErrMissingClaim, "aud"},
		{"no iat", signA(func(c, r map[string]any) { delete(c, "iat") }), protocol.ErrMissingClaim, "iat"},
		{"from the future", signA(func(c, r map[string]any) { c["iat"] = vectorTime.Add(time.Minute).Unix() }), protocol.ErrNotYetValid, "iat"},
		{"too old", signA(func(c, r map[string]any) { c["iat"] = vectorTime.Add(-25 * time.Hour).Unix() }), protocol.ErrExpired, "iat"},
		{"no jti", signA(func(c, r map[string]any) { delete(c, "jti") }), protocol.ErrMissingClaim, "jti"},
		{"unknown claim", signA(func(c, r map[string]any) { c["admin"] = true }), protocol.ErrMalformed, ""},
		{"unknown request field", signA(func(c, r map[string]any) { r["priority"] = "high" }), protocol.ErrMalformed, ""},
		{"no action", signA(func(c, r map[string]any) { delete(c, "action") }), protocol.ErrMissingClaim, "action"},
		{"unknown action", signA(func(c, r map[string]any) { c["action"] = "flag-paint" }), protocol.ErrInvalidClaim, "action"},
		{"no request", signA(func(c, r map[string]any) { delete(c, "request") }), protocol.ErrMissingClaim, "request"},
		{"missing consent", signA(func(c, r map[string]any) { delete(r, "consent") }), protocol.ErrMissingClaim, "request.consent"},
		{"consent without evidence reference", signA(func(c, r map[string]any) {
			delete(r["consent"].(map[string]any)["evidence"].(map[string]any), "reference")
		}), protocol.ErrMissingClaim, "request.consent.evidence.reference"},
		{"consent about someone else", signA(func(c, r map[string]any) {
			r["consent"].(map[string]any)["subject"] = testToken(t, protocol.TypeEmail, "x@example.se").String()
		}), protocol.ErrInvalidClaim, "request.consent.subject"},
		{"bad subject token", signA(func(c, r map[string]any) { r["subject"] = "190905271474" }), protocol.ErrMalformed, ""},
		{"extended without police report", signA(func(c, r map[string]any) { r["kind"] = "extended" }), protocol.ErrMissingClaim, "request.police_report"},
		{"thaw ending before it starts", signA(func(c, r map[string]any) {
			c["action"] = "flag-thaw"
			for k := range r {
				delete(r, k)
			}
			r["flag_id"], r["thaw_from"], r["thaw_until"] = "f1", 200, 100
		}), protocol.ErrInvalidClaim, "request.thaw_until"},
		{"suspicion without police report", signA(func(c, r map[string]any) {
			c["action"] = "suspicion-report"
			for k := range r {
				delete(r, k)
			}
			r["subjects"], r["category"] = []string{pnr.String()}, "identity-theft"
		}), protocol.ErrMissingClaim, "request.police_report"},
		{"suspicion with unknown category", signA(func(c, r map[string]any) {
			c["action"] = "suspicion-report"
			for k := range r {
				delete(r, k)
			}
			r["subjects"], r["category"] = []string{pnr.String()}, "bad-vibes"
			r["police_report"] = map[string]any{"authority": "P", "case_number": "1", "date": "2026-11-20"}
		}), protocol.ErrInvalidClaim, "request.category"},
		{"place reason not a code", signA(func(c, r map[string]any) { r["reason"] = "lost her passport in Malmö" }), protocol.ErrInvalidClaim, "request.reason"},
		{"place reason of a lift", signA(func(c, r map[string]any) { r["reason"] = "deceased" }), protocol.ErrInvalidClaim, "request.reason"},
		{"lift reason not a code", signA(func(c, r map[string]any) {
			c["action"] = "flag-lift"
			for k := range r {
				delete(r, k)
			}
			r["flag_id"], r["reason"] = "f1", "other: asked by phone"
		}), protocol.ErrInvalidClaim, "request.reason"},
		{"police report date not a date", signA(func(c, r map[string]any) {
			r["kind"] = "extended"
			r["police_report"] = map[string]any{"authority": "P", "case_number": "1", "date": "yesterday"}
		}), protocol.ErrInvalidClaim, "request.police_report.date"},
	}
	for member, header := range duplicateHeaders(a.KeyID(), "sparr-submission+jwt", "bank-a") {
		tests = append(tests, struct {
			name      string
			token     []byte
			want      error
			wantClaim string
		}{"header names " + member + " twice", signHeaderJSON(t, a, header, claims(func(c, r map[string]any) {})), protocol.ErrMalformed, ""})
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := protocol.VerifySubmission(ctx, tt.token, keys, submissionOptions())
			if !errors.Is(err, tt.want) {
				t.Fatalf("got %v (submission %+v), want %v", err, s, tt.want)
			}
			var ve *protocol.VerificationError
			if !errors.As(err, &ve) {
				t.Fatalf("got %T, want *protocol.VerificationError", err)
			}
			if ve.Claim != tt.wantClaim {
				t.Errorf("got claim %q, want %q (%v)", ve.Claim, tt.wantClaim, err)
			}
		})
	}
}

func TestVerifySubmissionPassesResolverFailures(t *testing.T) {
	a, _, _ := memberKeys(t)
	s := &protocol.Submission{Issuer: "bank-a", Audience: hubIssuer, IssuedAt: vectorTime, ID: "j1", Request: protocol.LiftFlag{FlagID: "f1"}}
	signed, err := protocol.SignSubmission(s, a)
	if err != nil {
		t.Fatal(err)
	}
	down := errors.New("JWKS endpoint unreachable")
	_, err = protocol.VerifySubmission(ctx, signed, protocol.KeyResolverFunc(func(context.Context, string, string) (*protocol.PublicKey, error) {
		return nil, down
	}), submissionOptions())
	var ve *protocol.VerificationError
	if !errors.Is(err, down) || errors.As(err, &ve) {
		t.Errorf("got %v, want the resolver's own error, not a verdict on the submission", err)
	}
}

func TestBearer(t *testing.T) {
	a, _, keys := memberKeys(t)
	opts := protocol.BearerOptions{Audience: hubIssuer, Now: vectorTime}
	tok, err := protocol.NewBearer(a, "bank-a", hubIssuer, vectorTime, protocol.MaxBearerLifetime)
	if err != nil {
		t.Fatal(err)
	}
	got, err := protocol.VerifyBearer(ctx, tok, keys, opts)
	if err != nil {
		t.Fatal(err)
	}
	want := &protocol.Bearer{Member: "bank-a", KeyID: a.KeyID(), IssuedAt: vectorTime, Expiry: vectorTime.Add(5 * time.Minute)}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %+v, want %+v", got, want)
	}
	if _, err := protocol.NewBearer(a, "bank-a", hubIssuer, vectorTime, 6*time.Minute); err == nil {
		t.Error("NewBearer made a token living 6 minutes")
	}

	hdr := map[string]any{"kid": a.KeyID(), "typ": "sparr-bearer+jwt", "iss": "bank-a"}
	claims := func(edit func(map[string]any)) string {
		c := map[string]any{"iss": "bank-a", "sub": "bank-a", "aud": hubIssuer, "iat": vectorTime.Unix(), "exp": vectorTime.Add(time.Minute).Unix()}
		edit(c)
		out, _ := json.Marshal(c)
		return string(out)
	}
	sub, _ := protocol.SignSubmission(&protocol.Submission{Issuer: "bank-a", Audience: hubIssuer, IssuedAt: vectorTime, ID: "j1", Request: protocol.LiftFlag{FlagID: "f1"}}, a)
	tests := []struct {
		name      string
		token     string
		now       time.Time
		want      error
		wantClaim string
	}{
		{"valid, aud as array, extra claims", string(signRaw(t, a, jwa.EdDSA(), hdr, claims(func(c map[string]any) { c["aud"] = []string{"x", hubIssuer}; c["jti"] = "n1" }))), vectorTime, nil, ""},
		{"valid at the last second of skew", tok, vectorTime.Add(5*time.Minute + protocol.DefaultSkew - time.Second), nil, ""},
		{"expired", tok, vectorTime.Add(5*time.Minute + protocol.DefaultSkew), protocol.ErrExpired, "exp"},
		{"issued in the future", tok, vectorTime.Add(-time.Minute), protocol.ErrNotYetValid, "iat"},
		{"nbf in the future", string(signRaw(t, a, jwa.EdDSA(), hdr, claims(func(c map[string]any) { c["nbf"] = vectorTime.Add(time.Minute).Unix() }))), vectorTime, protocol.ErrNotYetValid, "nbf"},
		{"lifetime over 5 minutes", string(signRaw(t, a, jwa.EdDSA(), hdr, claims(func(c map[string]any) { c["exp"] = vectorTime.Add(5*time.Minute + time.Second).Unix() }))), vectorTime, protocol.ErrInvalidClaim, "exp"},
		{"exp before iat", string(signRaw(t, a, jwa.EdDSA(), hdr, claims(func(c map[string]any) { c["exp"] = vectorTime.Add(-time.Second).Unix() }))), vectorTime, protocol.ErrInvalidClaim, "exp"},
		{"no exp", string(signRaw(t, a, jwa.EdDSA(), hdr, claims(func(c map[string]any) { delete(c, "exp") }))), vectorTime, protocol.ErrMissingClaim, "exp"},
		{"sub differs", string(signRaw(t, a, jwa.EdDSA(), hdr, claims(func(c map[string]any) { c["sub"] = "bank-b" }))), vectorTime, protocol.ErrInvalidClaim, "sub"},
		{"iss differs from header", string(signRaw(t, a, jwa.EdDSA(), hdr, claims(func(c map[string]any) { c["iss"], c["sub"] = "bank-b", "bank-b" }))), vectorTime, protocol.ErrInvalidClaim, "iss"},
		{"another hub", string(signRaw(t, a, jwa.EdDSA(), hdr, claims(func(c map[string]any) { c["aud"] = "https://other.example" }))), vectorTime, protocol.ErrInvalidClaim, "aud"},
		{"aud not a string", string(signRaw(t, a, jwa.EdDSA(), hdr, claims(func(c map[string]any) { c["aud"] = 7 }))), vectorTime, protocol.ErrMalformed, ""},
		{"typ JWT", string(signRaw(t, a, jwa.EdDSA(), map[string]any{"kid": a.KeyID(), "typ": "JWT", "iss": "bank-a"}, claims(func(map[string]any) {}))), vectorTime, protocol.ErrWrongType, ""},
		{"a submission", string(sub), vectorTime, protocol.ErrWrongType, ""},
		{"tampered", tok[:len(tok)-4] + "AAAA", vectorTime, protocol.ErrBadSignature, ""},
	}
	for member, header := range duplicateHeaders(a.KeyID(), "sparr-bearer+jwt", "bank-a") {
		tests = append(tests, struct {
			name      string
			token     string
			now       time.Time
			want      error
			wantClaim string
		}{"header names " + member + " twice", string(signHeaderJSON(t, a, header, claims(func(map[string]any) {}))), vectorTime, protocol.ErrMalformed, ""})
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts.Now = tt.now
			b, err := protocol.VerifyBearer(ctx, tt.token, keys, opts)
			if !errors.Is(err, tt.want) || (tt.want == nil) != (err == nil) {
				t.Fatalf("got %v (bearer %+v), want %v", err, b, tt.want)
			}
			var ve *protocol.VerificationError
			if err != nil && (!errors.As(err, &ve) || ve.Claim != tt.wantClaim) {
				t.Errorf("got %v, want claim %q", err, tt.wantClaim)
			}
		})
	}
}

func TestSignSubmissionRefusesIncompleteSubmissions(t *testing.T) {
	a, _, _ := memberKeys(t)
	base := func() *protocol.Submission {
		return &protocol.Submission{Issuer: "bank-a", Audience: hubIssuer, IssuedAt: vectorTime, ID: "j1", Request: protocol.LiftFlag{FlagID: "f1"}}
	}
	for name, edit := range map[string]func(*protocol.Submission){
		"no issuer":   func(s *protocol.Submission) { s.Issuer = "" },
		"no audience": func(s *protocol.Submission) { s.Audience = "" },
		"no time":     func(s *protocol.Submission) { s.IssuedAt = time.Time{} },
		"no id":       func(s *protocol.Submission) { s.ID = "" },
		"no request":  func(s *protocol.Submission) { s.Request = nil },
		"bad request": func(s *protocol.Submission) { s.Request = protocol.LiftFlag{} },
	} {
		s := base()
		edit(s)
		if _, err := protocol.SignSubmission(s, a); err == nil {
			t.Errorf("%s: SignSubmission succeeded, want an error", name)
		}
	}
	if _, err := protocol.SignSubmission(base(), a); err != nil {
		t.Errorf("base submission: %v", err)
	}
}

func ExampleVerifySubmission() {
	// A member signs a request to lift a flag with its own key …
	key, _ := protocol.GenerateSigningKey(protocol.EdDSA, nil)
	now := time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)
	signed, _ := protocol.SignSubmission(&protocol.Submission{
		Issuer: "bank-a", Audience: "https://hub.example", IssuedAt: now,
		ID: "019aa5f0-8c00-7000-8000-000000000042", Request: protocol.LiftFlag{FlagID: "f1"},
	}, key)

	// … and the hub checks it against the keys the member registered.
	registered, _ := protocol.NewKeySet(key.Public())
	resolver := protocol.KeyResolverFunc(func(_ context.Context, member, kid string) (*protocol.PublicKey, error) {
		if k, ok := registered.Key(kid); ok && member == "bank-a" {
			return k, nil
		}
		return nil, protocol.ErrUnknownKey
	})
	s, err := protocol.VerifySubmission(context.Background(), signed, resolver,
		protocol.SubmissionOptions{Audience: "https://hub.example", Now: now})
	if err != nil {
		panic(err)
	}
	fmt.Println(s.Issuer, s.Request.Action(), s.Request.(protocol.LiftFlag).FlagID)

	// A submission changed in transit does not verify.
	tampered := strings.Replace(string(signed), ".", ".e30", 1)
	_, err = protocol.VerifySubmission(context.Background(), []byte(tampered), resolver,
		protocol.SubmissionOptions{Audience: "https://hub.example", Now: now})
	fmt.Println(errors.Is(err, protocol.ErrBadSignature))
	// Output:
	// bank-a flag-lift f1
	// true
}

// TestReasonIsACode: a reason is one code of a fixed set, and a refusal
// names the set but never repeats what was given, which may be free text
// about the consumer.
func TestReasonIsACode(t *testing.T) {
	a, _, keys := memberKeys(t)
	for _, tt := range []struct {
		req  protocol.Request
		want string
	}{
		{protocol.LiftFlag{FlagID: "f1", Reason: "Anna Svensson died 2026-11-01"}, "consumer-request, deceased, other"},
		{protocol.PlaceFlag{Subject: testToken(t, protocol.TypePersonalNumber, "190905271474"), Kind: protocol.FlagKindStandard,
			Consent: sampleConsent(testToken(t, protocol.TypePersonalNumber, "190905271474")), Reason: "Anna Svensson lost her passport"},
			"consumer-request, identity-theft, lost-id-document, other"},
	} {
		_, err := protocol.SignSubmission(&protocol.Submission{Issuer: "bank-a", Audience: hubIssuer, IssuedAt: vectorTime, ID: "j1", Request: tt.req}, a)
		if !errors.Is(err, protocol.ErrInvalidClaim) {
			t.Fatalf("SignSubmission(%s with free text as reason): got %v, want ErrInvalidClaim", tt.req.Action(), err)
		}
		if strings.Contains(err.Error(), "Anna") || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("SignSubmission(%s): got %q, want the codes %s and not the text given", tt.req.Action(), err, tt.want)
		}
	}
	for _, reason := range protocol.LiftReasons() {
		signed, err := protocol.SignSubmission(&protocol.Submission{Issuer: "bank-a", Audience: hubIssuer, IssuedAt: vectorTime, ID: "j1",
			Request: protocol.LiftFlag{FlagID: "f1", Reason: reason}}, a)
		if err != nil {
			t.Fatal(err)
		}
		s, err := protocol.VerifySubmission(ctx, signed, keys, submissionOptions())
		if err != nil {
			t.Fatalf("lift with reason %q: %v", reason, err)
		}
		if got := s.Request.(protocol.LiftFlag).Reason; got != reason {
			t.Errorf("got reason %q, want %q", got, reason)
		}
	}
}

// TestClockSkew holds bearer tokens and submissions to the tolerance the
// options ask for, at the last second inside it and the first outside.
func TestClockSkew(t *testing.T) {
	a, _, keys := memberKeys(t)
	iat := vectorTime
	exp := iat.Add(protocol.MaxBearerLifetime)
	tok, err := protocol.NewBearer(a, "bank-a", hubIssuer, iat, protocol.MaxBearerLifetime)
	if err != nil {
		t.Fatal(err)
	}
	sub, err := protocol.SignSubmission(&protocol.Submission{Issuer: "bank-a", Audience: hubIssuer, IssuedAt: iat, ID: "j1", Request: protocol.LiftFlag{FlagID: "f1"}}, a)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name string
		skew time.Duration // the option
		want time.Duration // the tolerance it stands for
	}{
		{"none", protocol.NoSkew, 0},
		{"default", 0, protocol.DefaultSkew},
		{"two minutes", 2 * time.Minute, 2 * time.Minute},
		{"most allowed", protocol.MaxSkew, protocol.MaxSkew},
	} {
		for _, c := range []struct {
			name string
			now  time.Time
			want error
		}{
			{"last second before exp+skew", exp.Add(tt.want - time.Second), nil},
			{"at exp+skew", exp.Add(tt.want), protocol.ErrExpired},
			{"iat exactly skew ahead", iat.Add(-tt.want), nil},
			{"iat a second more than skew ahead", iat.Add(-tt.want - time.Second), protocol.ErrNotYetValid},
		} {
			_, err := protocol.VerifyBearer(ctx, tok, keys, protocol.BearerOptions{Audience: hubIssuer, Now: c.now, Skew: tt.skew})
			if !errors.Is(err, c.want) || (c.want == nil) != (err == nil) {
				t.Errorf("bearer, skew %s, %s: got %v, want %v", tt.name, c.name, err, c.want)
			}
		}
		for _, c := range []struct {
			name string
			now  time.Time
			want error
		}{
			{"iat exactly skew ahead", iat.Add(-tt.want), nil},
			{"iat a second more than skew ahead", iat.Add(-tt.want - time.Second), protocol.ErrNotYetValid},
		} {
			_, err := protocol.VerifySubmission(ctx, sub, keys, protocol.SubmissionOptions{Audience: hubIssuer, Now: c.now, Skew: tt.skew})
			if !errors.Is(err, c.want) || (c.want == nil) != (err == nil) {
				t.Errorf("submission, skew %s, %s: got %v, want %v", tt.name, c.name, err, c.want)
			}
		}
	}

	// A tolerance out of range is the verifier's mistake: refused, whatever
	// the token, and not a verdict on it.
	for _, skew := range []time.Duration{-time.Second, -protocol.DefaultSkew, protocol.MaxSkew + time.Second} {
		_, err := protocol.VerifyBearer(ctx, tok, keys, protocol.BearerOptions{Audience: hubIssuer, Now: iat, Skew: skew})
		var ve *protocol.VerificationError
		if !errors.Is(err, protocol.ErrInvalidSkew) || errors.As(err, &ve) {
			t.Errorf("bearer with skew %s: got %v, want ErrInvalidSkew and no VerificationError", skew, err)
		}
		_, err = protocol.VerifySubmission(ctx, sub, keys, protocol.SubmissionOptions{Audience: hubIssuer, Now: iat, Skew: skew})
		if !errors.Is(err, protocol.ErrInvalidSkew) || errors.As(err, &ve) {
			t.Errorf("submission with skew %s: got %v, want ErrInvalidSkew and no VerificationError", skew, err)
		}
	}
}

// TestTimeOutOfRange: a time past protocol.MaxNumericDate, up to and past
// the largest int64, is refused as out of range by every verifier, and the
// error says so, rather than wrapping round into a time in the past or a
// nonsense span.
func TestTimeOutOfRange(t *testing.T) {
	max := strconv.FormatInt(int64(protocol.MaxNumericDate), 10)
	for _, tt := range []struct {
		in, err string
	}{
		{max, ""},
		{"7258118400", "out of range"},
		{"9223372036854775807", "out of range"},
		{"9223372036854775808", "out of range"},
		{"99999999999999999999999999999999", "out of range"},
		{"-9223372036854775809", "before 1970"},
	} {
		var d protocol.NumericDate
		err := json.Unmarshal([]byte(tt.in), &d)
		if tt.err == "" && err != nil || tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)) {
			t.Errorf("NumericDate %s: got %v, want %q", tt.in, err, tt.err)
		}
	}
	if got := protocol.MaxNumericDate.String(); got != "2199-12-31T23:59:59Z" {
		t.Errorf("MaxNumericDate is %s, want 2199-12-31T23:59:59Z", got)
	}

	a, _, keys := memberKeys(t)
	const huge = "9223372036854775807"
	bearer := func(iat, exp string) string {
		return string(signRaw(t, a, jwa.EdDSA(), map[string]any{"kid": a.KeyID(), "typ": "sparr-bearer+jwt", "iss": "bank-a"},
			`{"iss":"bank-a","sub":"bank-a","aud":"`+hubIssuer+`","iat":`+iat+`,"exp":`+exp+`}`))
	}
	submission := func(iat, expires string) []byte {
		return signRaw(t, a, jwa.EdDSA(), map[string]any{"kid": a.KeyID(), "typ": "sparr-submission+jwt", "iss": "bank-a"},
			`{"iss":"bank-a","aud":"`+hubIssuer+`","iat":`+iat+`,"jti":"j1","action":"flag-extend","request":{"flag_id":"f1","kind":"standard","expires_at":`+expires+`}}`)
	}
	now := strconv.FormatInt(vectorTime.Unix(), 10)
	for _, tt := range []struct {
		name   string
		verify func() error
	}{
		{"bearer exp", func() error {
			_, err := protocol.VerifyBearer(ctx, bearer(now, huge), keys, protocol.BearerOptions{Audience: hubIssuer, Now: vectorTime})
			return err
		}},
		{"bearer iat and exp", func() error {
			_, err := protocol.VerifyBearer(ctx, bearer("9223372036854775000", huge), keys, protocol.BearerOptions{Audience: hubIssuer, Now: vectorTime})
			return err
		}},
		{"submission iat", func() error {
			_, err := protocol.VerifySubmission(ctx, submission(huge, "1800000000"), keys, submissionOptions())
			return err
		}},
		{"submission expires_at", func() error {
			_, err := protocol.VerifySubmission(ctx, submission(now, huge), keys, submissionOptions())
			return err
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.verify()
			var ve *protocol.VerificationError
			if !errors.As(err, &ve) || !errors.Is(err, protocol.ErrMalformed) || !strings.Contains(err.Error(), "out of range") {
				t.Errorf("got %v, want a malformed *VerificationError saying the time is out of range", err)
			}
		})
	}
}
