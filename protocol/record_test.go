package protocol_test

import (
	"bytes"
	"crypto"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jws"

	"github.com/sparr-dev/sparr/protocol"
)

const hubIssuer = "https://hub.example"

// sampleRecords returns one record of each event type, about tokens of the
// token vectors.
func sampleRecords(t testing.TB) []*protocol.Record {
	t.Helper()
	pnr := testToken(t, protocol.TypePersonalNumber, "190905271474")
	email := testToken(t, protocol.TypeEmail, "anna.svensson@example.se")
	phone := testToken(t, protocol.TypePhone, "+46701234567")
	iban := testToken(t, protocol.TypeIBAN, "SE4550000000058398257466")
	report := &protocol.PoliceReport{Authority: "Polismyndigheten", CaseNumber: "5000-K123456-26", Date: "2026-11-20"}
	at := protocol.NewNumericDate(vectorTime)
	year := protocol.NewNumericDate(vectorTime.AddDate(1, 0, 0))
	events := []struct {
		subject *protocol.SubjectID
		event   protocol.Event
	}{
		{protocol.OpaqueSubject(pnr), protocol.FlagPlaced{FlagID: "019aa5f0-8c00-7000-8000-00000000f001", Kind: protocol.FlagKindStandard, Origin: "bank-a", ExpiresAt: year, ConsentRef: "019aa5f0-8c00-7000-8000-00000000c001", Reason: protocol.PlaceIdentityTheft}},
		{protocol.OpaqueSubject(pnr), protocol.FlagExtended{FlagID: "019aa5f0-8c00-7000-8000-00000000f001", Kind: protocol.FlagKindExtended, Origin: "bank-a", ExpiresAt: protocol.NewNumericDate(vectorTime.AddDate(5, 0, 0)), PoliceReport: report}},
		{protocol.OpaqueSubject(pnr), protocol.FlagThawed{FlagID: "019aa5f0-8c00-7000-8000-00000000f001", Origin: "bank-c", ThawedFrom: at, ThawedUntil: at + 3600}},
		{protocol.OpaqueSubject(pnr), protocol.FlagLifted{FlagID: "019aa5f0-8c00-7000-8000-00000000f001", Origin: "bank-a", Reason: protocol.LiftConsumerRequest}},
		{protocol.OpaqueSubject(pnr), protocol.FlagExpired{FlagID: "019aa5f0-8c00-7000-8000-00000000f001", ExpiredAt: year}},
		{protocol.OpaqueSubject(pnr), protocol.FlagExpiring{FlagID: "019aa5f0-8c00-7000-8000-00000000f001", ExpiresAt: year}},
		{protocol.SubjectOf(pnr, email, phone), protocol.SuspicionReported{SuspicionID: "019aa5f0-8c00-7000-8000-00000000s001", Origin: "bank-b", Category: protocol.CategoryApplicationFraud, PoliceReport: report, ExpiresAt: protocol.NewNumericDate(vectorTime.AddDate(2, 0, 0))}},
		{protocol.SubjectOf(pnr, email, phone), protocol.SuspicionRetracted{SuspicionID: "019aa5f0-8c00-7000-8000-00000000s001", Origin: "bank-b", Reason: protocol.RetractReportedInError}},
		{protocol.SubjectOf(pnr, email, phone), protocol.SuspicionExpired{SuspicionID: "019aa5f0-8c00-7000-8000-00000000s001", ExpiredAt: protocol.NewNumericDate(vectorTime.AddDate(2, 0, 0))}},
		{protocol.OpaqueSubject(pnr), protocol.SubjectErased{Origin: "operator", LegalBasis: "gdpr-art-17"}},
		{nil, protocol.Verification{State: "2b0c8e0e-verification-state"}},
		{protocol.StreamSubject("bank-a"), protocol.StreamVerification{State: "VGhpcyBpcyBhbiBleGFtcGxlIHN0YXRlIHZhbHVlLgo="}},
		{protocol.OpaqueSubject(pnr), protocol.SubjectChecked{CheckID: "019aa5f0-8c00-7000-8000-00000000k001", FlagID: "019aa5f0-8c00-7000-8000-00000000f001", Checker: "bank-b", Purpose: "credit-application", CheckedAt: at}},
		{protocol.OpaqueSubject(pnr), protocol.CheckDenied{CheckID: "019aa5f0-8c00-7000-8000-00000000k001", FlagID: "019aa5f0-8c00-7000-8000-00000000f001", Origin: "bank-a", CheckedAt: at, DeniedAt: at + 120,
			ConsumerAuth: &protocol.ConsumerAuth{Method: protocol.AuthBankID, AuthenticatedAt: at + 90, Level: protocol.LevelHigh, Reference: "a3d5c7e1-auth"}}},
		{protocol.OpaqueSubject(iban), protocol.PayeeReported{PayeeID: "019aa5f0-8c00-7000-8000-00000000p001", Version: 2,
			Reports: []protocol.PayeeMemberReport{
				{Member: "bank-a", Customers: 2, Category: protocol.PayeeImpersonation, FirstSeen: at - 86400, LastSeen: at - 3600},
				{Member: "bank-c", Customers: 3, Category: protocol.PayeeImpersonation, FirstSeen: at - 7200, LastSeen: at},
			},
			Customers: 5, FirstSeen: at - 86400, LastSeen: at, LegalBasis: "psr-art-83", ExpiresAt: year}},
		{protocol.OpaqueSubject(iban), protocol.PayeeExpired{PayeeID: "019aa5f0-8c00-7000-8000-00000000p001", Version: 2, ExpiredAt: year}},
		{protocol.OpaqueSubject(iban), protocol.RecallRequested{RecallID: "019aa5f0-8c00-7000-8000-00000000r001", From: "bank-a", To: "bank-b",
			Bank: protocol.BankRef{Country: "SE", BankCode: "500"}, Amount: protocol.Money{Minor: 4_000_000, Currency: "SEK"}, PaidAt: at - 600, Reference: "A-2026-11-21-0042"}},
		{protocol.OpaqueSubject(iban), protocol.RecallAcknowledged{RecallID: "019aa5f0-8c00-7000-8000-00000000r001", By: "bank-b", Reference: "A-2026-11-21-0042", At: at}},
		{protocol.OpaqueSubject(iban), protocol.RecallOutcome{RecallID: "019aa5f0-8c00-7000-8000-00000000r001", By: "bank-b", Reference: "A-2026-11-21-0042",
			Outcome: protocol.RecallFrozen, Amount: protocol.Money{Minor: 3_150_000, Currency: "SEK"}}},
		{protocol.SubjectOf(pnr, email, phone), protocol.DisputeOpened{DisputeID: "019aa5f0-8c00-7000-8000-00000000d001", SuspicionID: "019aa5f0-8c00-7000-8000-00000000s001",
			Disputant: "bank-a", Respondent: "bank-b", Grounds: protocol.GroundsNotMe, Statement: "I was abroad that week.", AcknowledgeBy: at + 7*86400, ResolveBy: at + 30*86400}},
		{protocol.SubjectOf(pnr, email, phone), protocol.DisputeAcknowledged{DisputeID: "019aa5f0-8c00-7000-8000-00000000d001", Respondent: "bank-b"}},
		{protocol.SubjectOf(pnr, email, phone), protocol.DisputeResolved{DisputeID: "019aa5f0-8c00-7000-8000-00000000d001", Outcome: protocol.AnswerReject, Reason: "The application was signed with the consumer's BankID."}},
		{protocol.SubjectOf(pnr, email, phone), protocol.DisputeLapsed{DisputeID: "019aa5f0-8c00-7000-8000-00000000d001", Missed: "acknowledge", Due: at + 7*86400}},
		{protocol.OpaqueSubject(pnr), protocol.AccessReport{RequestedBy: "bank-a", ConsumerAuth: protocol.ConsumerAuth{Method: protocol.AuthBankID, AuthenticatedAt: at - 60, Level: protocol.LevelHigh, Reference: "a3d5c7e1-auth"},
			Flag:        &protocol.FlagEntry{FlagID: "019aa5f0-8c00-7000-8000-00000000f001", Kind: protocol.FlagKindStandard, Origin: "bank-a", Status: "active", PlacedAt: at - 86400, ExpiresAt: year},
			FlagRecords: []string{}, Suspicions: []protocol.SuspicionEntry{}, Disputes: []protocol.DisputeEntry{},
			Accesses: []protocol.AccessEntry{{At: at - 3600, Action: "check", Member: "bank-c", MemberName: "Bank C", Purpose: "credit-application", CheckID: "019aa5f0-8c00-7000-8000-0000000c0001", Outcome: "verified"}}}},
	}
	var out []*protocol.Record
	for i, e := range events {
		out = append(out, &protocol.Record{
			Issuer:   hubIssuer,
			IssuedAt: vectorTime,
			ID:       fmt.Sprintf("019aa5f0-8c00-7000-8000-%012d", i+1),
			Txn:      fmt.Sprintf("019aa5f0-8b00-7000-8000-%012d", i+1),
			Subject:  e.subject,
			Event:    e.event,
		})
	}
	return out
}

func TestRecordRoundTrip(t *testing.T) {
	ed, p256 := hubKeys(t)
	keys := keySet(t, ed, p256)
	records := sampleRecords(t)
	if got, want := len(records), len(protocol.EventTypes()); got != want {
		t.Fatalf("sample records cover %d event types, want all %d", got, want)
	}
	for _, key := range []*protocol.SigningKey{ed, p256} {
		for _, r := range records {
			t.Run(r.Event.EventType().Short()+"/"+string(key.Algorithm()), func(t *testing.T) {
				signed, err := protocol.SignRecord(r, key)
				if err != nil {
					t.Fatal(err)
				}
				got, err := protocol.VerifyRecord(signed, keys)
				if err != nil {
					t.Fatal(err)
				}
				if !reflect.DeepEqual(got, r) {
					t.Errorf("got %+v, want %+v", got, r)
				}
				hdr := decodeHeader(t, signed)
				if hdr["typ"] != "secevent+jwt" || hdr["kid"] != key.KeyID() || hdr["alg"] != string(key.Algorithm()) {
					t.Errorf("header %v: want typ secevent+jwt, kid %s, alg %s", hdr, key.KeyID(), key.Algorithm())
				}
			})
		}
	}
}

func decodeHeader(t testing.TB, token []byte) map[string]any {
	t.Helper()
	part, _, _ := bytes.Cut(token, []byte("."))
	raw, err := base64.RawURLEncoding.DecodeString(string(part))
	if err != nil {
		t.Fatal(err)
	}
	var h map[string]any
	if err := json.Unmarshal(raw, &h); err != nil {
		t.Fatal(err)
	}
	return h
}

// signRaw signs an arbitrary payload with arbitrary protected headers, for
// building the objects a correct signer would never make.
func signRaw(t testing.TB, key *protocol.SigningKey, alg jwa.SignatureAlgorithm, header map[string]any, payload string) []byte {
	t.Helper()
	h := jws.NewHeaders()
	for k, v := range header {
		if err := h.Set(k, v); err != nil {
			t.Fatal(err)
		}
	}
	out, err := jws.Sign([]byte(payload), jws.WithKey(alg, key.Signer(), jws.WithProtectedHeaders(h)))
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// signHeaderJSON signs payload with an Ed25519 key under a protected
// header given as raw JSON, byte for byte: a header that no JOSE library
// would write, such as one naming a member twice.
func signHeaderJSON(t testing.TB, key *protocol.SigningKey, header, payload string) []byte {
	t.Helper()
	input := base64.RawURLEncoding.EncodeToString([]byte(header)) + "." + base64.RawURLEncoding.EncodeToString([]byte(payload))
	sig, err := key.Signer().Sign(nil, []byte(input), crypto.Hash(0))
	if err != nil {
		t.Fatal(err)
	}
	return []byte(input + "." + base64.RawURLEncoding.EncodeToString(sig))
}

// duplicateHeaders returns protected headers that each name one member
// twice, by name, for an Ed25519 key with id kid and the given typ and
// (if not empty) iss. The member's last value is always the valid one, so
// a parser that lets the last value win accepts them.
func duplicateHeaders(kid, typ, iss string) map[string]string {
	q := func(s string) string { b, _ := json.Marshal(s); return string(b) }
	tail := `"kid":` + q(kid) + `,"typ":` + q(typ)
	if iss != "" {
		tail += `,"iss":` + q(iss)
	}
	out := map[string]string{
		"alg":             `{"alg":"none",` + tail + `,"alg":"EdDSA"}`,
		"alg, escaped":    `{"alg":"none",` + tail + `,"al\u0067":"EdDSA"}`,
		"alg, same value": `{"alg":"EdDSA",` + tail + `,"alg":"EdDSA"}`,
		"kid":             `{"alg":"EdDSA","kid":"other",` + tail + `}`,
		"typ":             `{"alg":"EdDSA","typ":"JWT",` + tail + `}`,
		"crit":            `{"alg":"EdDSA","crit":["exp"],"crit":[],` + tail + `}`,
	}
	if iss != "" {
		out["iss"] = `{"alg":"EdDSA","iss":"bank-z",` + tail + `}`
	}
	return out
}

func TestVerifyRecordRefuses(t *testing.T) {
	ed, p256 := hubKeys(t)
	keys := keySet(t, ed, p256)
	other := ed25519Key(t, "another hub")
	good, err := protocol.SignRecord(sampleRecords(t)[0], ed)
	if err != nil {
		t.Fatal(err)
	}
	tok := testToken(t, protocol.TypePersonalNumber, "190905271474").String()
	hdr := map[string]any{"kid": ed.KeyID(), "typ": "secevent+jwt"}
	claims := func(edit func(map[string]any)) string {
		c := map[string]any{
			"iss": hubIssuer, "iat": 1763719200, "jti": "j1", "txn": "t1",
			"sub_id": map[string]any{"format": "opaque", "id": tok},
			"events": map[string]any{"urn:sparr:event:flag-lifted": map[string]any{"flag_id": "f1", "origin": "bank-a"}},
		}
		edit(c)
		b, _ := json.Marshal(c)
		return string(b)
	}
	parts := strings.Split(string(good), ".")
	tamperedPayload := parts[0] + "." + base64.RawURLEncoding.EncodeToString([]byte(claims(func(map[string]any) {}))) + "." + parts[2]
	submission := signRaw(t, ed, jwa.EdDSA(), map[string]any{"kid": ed.KeyID(), "typ": "sparr-submission+jwt", "iss": "bank-a"}, claims(func(map[string]any) {}))

	tests := []struct {
		name      string
		token     []byte
		want      error
		wantClaim string
	}{
		{"empty", nil, protocol.ErrMalformed, ""},
		{"two parts", []byte(parts[0] + "." + parts[1]), protocol.ErrMalformed, ""},
		{"JSON serialization", []byte(`{"payload":"e30","signatures":[]}`), protocol.ErrMalformed, ""},
		{"whitespace", []byte(parts[0] + ". " + parts[1] + "." + parts[2]), protocol.ErrMalformed, ""},
		{"header not JSON", []byte(base64.RawURLEncoding.EncodeToString([]byte("nope")) + "." + parts[1] + "." + parts[2]), protocol.ErrMalformed, ""},
		{"padded base64", []byte(parts[0] + "=." + parts[1] + "." + parts[2]), protocol.ErrMalformed, ""},
		{"oversized", bytes.Repeat([]byte("a"), protocol.MaxSignedSize+1), protocol.ErrMalformed, ""},
		{"crit header", signRaw(t, ed, jwa.EdDSA(), map[string]any{"kid": ed.KeyID(), "typ": "secevent+jwt", "crit": []string{"exp"}, "exp": 1}, claims(func(map[string]any) {})), protocol.ErrMalformed, ""},
		{"no kid", signRaw(t, ed, jwa.EdDSA(), map[string]any{"typ": "secevent+jwt"}, claims(func(map[string]any) {})), protocol.ErrMalformed, ""},
		{"unknown kid", func() []byte { b, _ := protocol.SignRecord(sampleRecords(t)[0], other); return b }(), protocol.ErrUnknownKey, ""},
		{"tampered payload", []byte(tamperedPayload), protocol.ErrBadSignature, ""},
		{"signed by another key under our kid", signRaw(t, other, jwa.EdDSA(), hdr, claims(func(map[string]any) {})), protocol.ErrBadSignature, ""},
		{"alg does not match key", signRaw(t, p256, jwa.ES256(), map[string]any{"kid": ed.KeyID(), "typ": "secevent+jwt"}, claims(func(map[string]any) {})), protocol.ErrBadSignature, ""},
		{"typ missing", signRaw(t, ed, jwa.EdDSA(), map[string]any{"kid": ed.KeyID()}, claims(func(map[string]any) {})), protocol.ErrWrongType, ""},
		{"typ JWT", signRaw(t, ed, jwa.EdDSA(), map[string]any{"kid": ed.KeyID(), "typ": "JWT"}, claims(func(map[string]any) {})), protocol.ErrWrongType, ""},
		{"a submission", submission, protocol.ErrWrongType, ""},
		{"payload not JSON", signRaw(t, ed, jwa.EdDSA(), hdr, "not json"), protocol.ErrMalformed, ""},
		{"iat as string", signRaw(t, ed, jwa.EdDSA(), hdr, claims(func(c map[string]any) { c["iat"] = "1763719200" })), protocol.ErrMalformed, ""},
		{"iat fractional", signRaw(t, ed, jwa.EdDSA(), hdr, claims(func(c map[string]any) { c["iat"] = 1763719200.5 })), protocol.ErrMalformed, ""},
	}
	for member, header := range duplicateHeaders(ed.KeyID(), "secevent+jwt", "") {
		tests = append(tests, struct {
			name      string
			token     []byte
			want      error
			wantClaim string
		}{"header names " + member + " twice", signHeaderJSON(t, ed, header, claims(func(map[string]any) {})), protocol.ErrMalformed, ""})
	}
	for _, claim := range []string{"iss", "iat", "jti", "txn", "sub_id", "events"} {
		tests = append(tests, struct {
			name      string
			token     []byte
			want      error
			wantClaim string
		}{"no " + claim, signRaw(t, ed, jwa.EdDSA(), hdr, claims(func(c map[string]any) { delete(c, claim) })), protocol.ErrMissingClaim, claim})
	}
	more := []struct {
		name      string
		edit      func(map[string]any)
		want      error
		wantClaim string
	}{
		{"two events", func(c map[string]any) {
			c["events"].(map[string]any)["urn:sparr:event:flag-expired"] = map[string]any{"flag_id": "f1", "expired_at": 1}
		}, protocol.ErrInvalidClaim, "events"},
		{"unknown event", func(c map[string]any) {
			c["events"] = map[string]any{"urn:sparr:event:flag-painted": map[string]any{}}
		}, protocol.ErrInvalidClaim, "events"},
		{"event field missing", func(c map[string]any) {
			c["events"] = map[string]any{"urn:sparr:event:flag-lifted": map[string]any{"flag_id": "f1"}}
		}, protocol.ErrMissingClaim, "events.flag-lifted.origin"},
		{"extended flag without police report", func(c map[string]any) {
			c["events"] = map[string]any{"urn:sparr:event:flag-extended": map[string]any{"flag_id": "f1", "kind": "extended", "origin": "b", "expires_at": 2}}
		}, protocol.ErrMissingClaim, "events.flag-extended.police_report"},
		{"bad token in sub_id", func(c map[string]any) {
			c["sub_id"] = map[string]any{"format": "opaque", "id": "190905271474"}
		}, protocol.ErrInvalidClaim, "sub_id.id"},
		{"email sub_id format", func(c map[string]any) {
			c["sub_id"] = map[string]any{"format": "email", "email": "a@b.se"}
		}, protocol.ErrInvalidClaim, "sub_id.format"},
		{"aliases with one identifier", func(c map[string]any) {
			c["sub_id"] = map[string]any{"format": "aliases", "identifiers": []any{map[string]any{"format": "opaque", "id": tok}}}
		}, protocol.ErrInvalidClaim, "sub_id.identifiers"},
		{"aliases repeating a token", func(c map[string]any) {
			id := map[string]any{"format": "opaque", "id": tok}
			c["sub_id"] = map[string]any{"format": "aliases", "identifiers": []any{id, id}}
		}, protocol.ErrInvalidClaim, "sub_id.identifiers[1].id"},
		{"verification with a subject", func(c map[string]any) {
			c["events"] = map[string]any{"urn:sparr:event:verification": map[string]any{"state": "x"}}
		}, protocol.ErrInvalidClaim, "sub_id"},
		{"jti with a space", func(c map[string]any) { c["jti"] = "a b" }, protocol.ErrInvalidClaim, "jti"},
		{"lift reason not a code", func(c map[string]any) {
			c["events"] = map[string]any{"urn:sparr:event:flag-lifted": map[string]any{"flag_id": "f1", "origin": "bank-a", "reason": "moved to Oslo"}}
		}, protocol.ErrInvalidClaim, "events.flag-lifted.reason"},
		{"lift reason of a placement", func(c map[string]any) {
			c["events"] = map[string]any{"urn:sparr:event:flag-lifted": map[string]any{"flag_id": "f1", "origin": "bank-a", "reason": "identity-theft"}}
		}, protocol.ErrInvalidClaim, "events.flag-lifted.reason"},
		{"place reason not a code", func(c map[string]any) {
			c["events"] = map[string]any{"urn:sparr:event:flag-placed": map[string]any{"flag_id": "f1", "kind": "standard", "origin": "bank-a",
				"expires_at": 2, "consent_ref": "c1", "reason": "Consumer-Request"}}
		}, protocol.ErrInvalidClaim, "events.flag-placed.reason"},
	}
	for _, m := range more {
		tests = append(tests, struct {
			name      string
			token     []byte
			want      error
			wantClaim string
		}{m.name, signRaw(t, ed, jwa.EdDSA(), hdr, claims(m.edit)), m.want, m.wantClaim})
	}

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := protocol.VerifyRecord(tt.token, keys)
			if !errors.Is(err, tt.want) {
				t.Fatalf("got %v (record %v), want %v", err, r, tt.want)
			}
			var ve *protocol.VerificationError
			if !errors.As(err, &ve) {
				t.Fatalf("got %T, want *protocol.VerificationError", err)
			}
			if ve.Claim != tt.wantClaim {
				t.Errorf("got claim %q, want %q (%v)", ve.Claim, tt.wantClaim, err)
			}
			if ve.Object != "record" || !strings.HasPrefix(err.Error(), "record: ") {
				t.Errorf("error %q does not say it is about a record", err)
			}
			// A duplicate is refused as one, not for what the value a
			// parser would have kept says (an empty "crit", say).
			if strings.HasSuffix(tt.name, " twice") && !strings.Contains(err.Error(), "appears twice") {
				t.Errorf("error %q does not say a header member appears twice", err)
			}
		})
	}
}

func TestSignRecordRefusesIncompleteRecords(t *testing.T) {
	ed, _ := hubKeys(t)
	for _, edit := range []func(*protocol.Record){
		func(r *protocol.Record) { r.Issuer = "" },
		func(r *protocol.Record) { r.ID = "" },
		func(r *protocol.Record) { r.Txn = "" },
		func(r *protocol.Record) { r.Subject = nil },
		func(r *protocol.Record) { r.Event = nil },
		func(r *protocol.Record) { r.IssuedAt = time.Time{} },
	} {
		r := sampleRecords(t)[0]
		edit(r)
		if _, err := protocol.SignRecord(r, ed); err == nil {
			t.Errorf("SignRecord(%+v) succeeded, want an error", r)
		}
	}
}

func TestEventTypes(t *testing.T) {
	for _, typ := range protocol.EventTypes() {
		got, err := protocol.ParseEventType(typ.Short())
		if err != nil || got != typ {
			t.Errorf("ParseEventType(%q) = %q, %v; want %q", typ.Short(), got, err, typ)
		}
		if got, _ := protocol.ParseEventType(string(typ)); got != typ {
			t.Errorf("ParseEventType(%q) = %q, want itself", typ, got)
		}
	}
	if _, err := protocol.ParseEventType("flag-painted"); err == nil {
		t.Error("ParseEventType accepted an unknown type")
	}
}

func ExampleVerifyRecord() {
	// The hub signs a record with its key …
	hubKey, _ := protocol.GenerateSigningKey(protocol.EdDSA, nil)
	hubKeys, _ := protocol.NewKeySet(hubKey.Public())
	tokenKey, _ := protocol.GenerateTokenKey(1, nil)
	subject, _ := tokenKey.Token(protocol.TypePersonalNumber, "190905271474")
	signed, _ := protocol.SignRecord(&protocol.Record{
		Issuer:   "https://hub.example",
		IssuedAt: time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC),
		ID:       "019aa5f0-8c00-7000-8000-000000000001",
		Txn:      "019aa5f0-8b00-7000-8000-000000000001",
		Subject:  protocol.OpaqueSubject(subject),
		Event: protocol.FlagPlaced{
			FlagID: "019aa5f0-8c00-7000-8000-00000000f001", Kind: protocol.FlagKindStandard, Origin: "bank-a",
			ExpiresAt:  protocol.NewNumericDate(time.Date(2027, 11, 21, 10, 0, 0, 0, time.UTC)),
			ConsentRef: "019aa5f0-8c00-7000-8000-00000000c001",
		},
	}, hubKey)

	// … and a member verifies it against the hub's published JWKS.
	r, err := protocol.VerifyRecord(signed, hubKeys)
	if err != nil {
		panic(err)
	}
	placed := r.Event.(protocol.FlagPlaced)
	fmt.Println(r.Event.EventType().Short(), placed.Kind, placed.Origin, placed.ExpiresAt)
	// Output: flag-placed standard bank-a 2027-11-21T10:00:00Z
}

// TestRepeatedHeaderMemberIsNamed: each verifier refuses a protected
// header that gives "alg" twice ("none", then the key's own algorithm),
// saying which member was repeated, before it looks up a key.
func TestRepeatedHeaderMemberIsNamed(t *testing.T) {
	ed, _ := hubKeys(t)
	a, _, members := memberKeys(t)
	record, err := protocol.SignRecord(sampleRecords(t)[3], ed)
	if err != nil {
		t.Fatal(err)
	}
	sub, err := protocol.SignSubmission(&protocol.Submission{Issuer: "bank-a", Audience: hubIssuer, IssuedAt: vectorTime, ID: "j1", Request: protocol.LiftFlag{FlagID: "f1"}}, a)
	if err != nil {
		t.Fatal(err)
	}
	bearer, err := protocol.NewBearer(a, "bank-a", hubIssuer, vectorTime, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	// resign keeps a signed object's payload and puts it under a header
	// that names "alg" twice.
	resign := func(key *protocol.SigningKey, signed []byte, typ, iss string) []byte {
		payload, err := base64.RawURLEncoding.DecodeString(strings.Split(string(signed), ".")[1])
		if err != nil {
			t.Fatal(err)
		}
		return signHeaderJSON(t, key, duplicateHeaders(key.KeyID(), typ, iss)["alg"], string(payload))
	}
	for _, tt := range []struct {
		object string
		verify func() error
	}{
		{"record", func() error {
			_, err := protocol.VerifyRecord(resign(ed, record, "secevent+jwt", ""), keySet(t, ed))
			return err
		}},
		{"submission", func() error {
			_, err := protocol.VerifySubmission(ctx, resign(a, sub, "sparr-submission+jwt", "bank-a"), members, submissionOptions())
			return err
		}},
		{"bearer token", func() error {
			_, err := protocol.VerifyBearer(ctx, string(resign(a, []byte(bearer), "sparr-bearer+jwt", "bank-a")), members, protocol.BearerOptions{Audience: hubIssuer, Now: vectorTime})
			return err
		}},
	} {
		t.Run(tt.object, func(t *testing.T) {
			err := tt.verify()
			var ve *protocol.VerificationError
			if !errors.As(err, &ve) || !errors.Is(err, protocol.ErrMalformed) {
				t.Fatalf("got %v, want a *VerificationError wrapping ErrMalformed", err)
			}
			if want := tt.object + `: malformed: protected header member "alg" appears twice`; err.Error() != want {
				t.Errorf("got %q, want %q", err, want)
			}
		})
	}
}
