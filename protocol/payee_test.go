package protocol_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sparr-dev/sparr/protocol"
)

// payeeCase is one row of testdata/payee-identifiers.json.
type payeeCase struct {
	Type      protocol.IdentifierType `json:"type"`
	Input     string                  `json:"input"`
	Canonical string                  `json:"canonical"`
	IBAN      string                  `json:"iban"`
	Bank      string                  `json:"bank"`
	Error     string                  `json:"error"`
	Source    string                  `json:"source"`
}

func readPayeeCases(tb testing.TB) []payeeCase {
	tb.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", "payee-identifiers.json"))
	if err != nil {
		tb.Fatal(err)
	}
	var cases []payeeCase
	if err := json.Unmarshal(data, &cases); err != nil {
		tb.Fatalf("decode payee-identifiers.json: %v", err)
	}
	return cases
}

func TestPayeeVectors(t *testing.T) {
	cases := readPayeeCases(t)
	seen := map[protocol.IdentifierType]bool{}
	for _, c := range cases {
		seen[c.Type] = true
		t.Run(string(c.Type)+"/"+c.Input, func(t *testing.T) {
			got, err := protocol.Canonicalize(c.Type, c.Input, identifierRefDate)
			if c.Error != "" {
				if code := protocol.IdentifierErrorCode(err); code != c.Error {
					t.Fatalf("got %q, %v (code %q), want error code %q", got, err, code, c.Error)
				}
				if strings.Contains(err.Error(), onlyDigits(c.Input)) && len(onlyDigits(c.Input)) > 4 {
					t.Errorf("got error %q quoting the identifier, want it kept out", err)
				}
				return
			}
			if err != nil || got != c.Canonical {
				t.Fatalf("got %q, %v, want %q", got, err, c.Canonical)
			}
			again, err := protocol.Canonicalize(c.Type, got, identifierRefDate)
			if err != nil || again != got {
				t.Errorf("canonical form %q gives %q, %v; want itself", got, again, err)
			}
			if c.IBAN != "" {
				a, err := protocol.ParseSwedishAccount(c.Input)
				if err != nil || a.IBAN() != c.IBAN {
					t.Errorf("got IBAN %q, %v, want %q", a.IBAN(), err, c.IBAN)
				}
				if iban, err := protocol.CanonicalIBAN(a.IBAN()); err != nil || iban != c.IBAN {
					t.Errorf("the IBAN made is refused: %q, %v", iban, err)
				}
				ib, _ := protocol.BankOf(protocol.TypeIBAN, c.IBAN)
				if ib.String() != c.Bank {
					t.Errorf("got the IBAN's bank %s, want the account's %s", ib, c.Bank)
				}
			}
			b, ok := protocol.BankOf(c.Type, got)
			if ok != (c.Bank != "") || (ok && b.String() != c.Bank) {
				t.Errorf("got bank %s, %v, want %q", b, ok, c.Bank)
			}
		})
	}
	for _, typ := range protocol.PayeeTypes() {
		if !seen[typ] {
			t.Errorf("got no vector of type %s, want some", typ)
		}
	}
}

func TestPayeeTypesAreIdentifierTypes(t *testing.T) {
	for _, typ := range protocol.PayeeTypes() {
		if !slices.Contains(protocol.IdentifierTypes(), typ) || !protocol.IsPayeeType(typ) {
			t.Errorf("payee type %s is not an identifier type", typ)
		}
		if got := string(protocol.TokenInfo(typ, 1)); got != "sparr/v1/"+string(typ)+"/1" {
			t.Errorf("got info %q", got)
		}
	}
	if protocol.IsPayeeType(protocol.TypePhone) {
		t.Errorf("phone is a payee type, want a Swish number to be its own type")
	}
}

// TestSwishIsNotPhone checks that a mobile number tokenized as a Swish
// number and as a phone number gives two tokens: a payee report must not
// match a person's phone.
func TestSwishIsNotPhone(t *testing.T) {
	k, err := protocol.GenerateTokenKey(1, nil)
	if err != nil {
		t.Fatal(err)
	}
	phone, _ := k.Token(protocol.TypePhone, "+46701234567")
	swish, err := k.Token(protocol.TypeSwish, "+46701234567")
	if err != nil {
		t.Fatal(err)
	}
	if phone.Value == swish.Value {
		t.Errorf("got equal values for phone and swish tokens, want them apart")
	}
}

func TestParseBankRef(t *testing.T) {
	for _, s := range []string{"SE:500", "GB:WEST", "DE:37040044"} {
		b, err := protocol.ParseBankRef(s)
		if err != nil || b.String() != s {
			t.Errorf("ParseBankRef(%q) = %v, %v", s, b, err)
		}
	}
	for _, s := range []string{"", "SE", "se:500", "SE:", "SE:5 0", "SWE:500", "SE:123456789012"} {
		if _, err := protocol.ParseBankRef(s); err == nil {
			t.Errorf("ParseBankRef(%q): got no error, want one", s)
		}
	}
}

func FuzzCanonicalizePayee(f *testing.F) {
	for _, c := range readPayeeCases(f) {
		f.Add(string(c.Type), c.Input)
	}
	f.Fuzz(func(t *testing.T, typ, s string) {
		pt := protocol.IdentifierType(typ)
		if !protocol.IsPayeeType(pt) {
			return
		}
		c, err := protocol.Canonicalize(pt, s, time.Time{})
		if err != nil {
			checkFuzzError(t, err, pt)
			return
		}
		again, err := protocol.Canonicalize(pt, c, time.Time{})
		if err != nil || again != c {
			t.Fatalf("canonical form %q gives %q, %v; want itself", c, again, err)
		}
		if pt == protocol.TypeSwedishAccount {
			a, _ := protocol.ParseSwedishAccount(c)
			if iban, err := protocol.CanonicalIBAN(a.IBAN()); err != nil || iban != a.IBAN() {
				t.Fatalf("account %q gives IBAN %q, which is refused: %v", c, a.IBAN(), err)
			}
		}
		want := pt == protocol.TypeSwedishAccount || pt == protocol.TypeIBAN && knownBankCountry(c[:2])
		if _, ok := protocol.BankOf(pt, c); ok != want {
			t.Fatalf("BankOf(%s, %q) = %v", pt, c, ok)
		}
	})
}

func knownBankCountry(c string) bool {
	return strings.Contains(" SE NO DK FI DE NL GB AT BE EE ", " "+c+" ")
}

func ExampleSwedishAccount_IBAN() {
	a, err := protocol.ParseSwedishAccount("5839-825 74 66")
	if err != nil {
		panic(err)
	}
	b, _ := protocol.BankOf(protocol.TypeSwedishAccount, a.String())
	fmt.Println(a, a.Bank(), a.IBAN(), b)
	// Output: 5839-8257466 SEB SE4550000000058398257466 SE:500
}

func FuzzParseBankRef(f *testing.F) {
	for _, s := range []string{"SE:500", "GB:WEST", "DE:37040044", "se:500", "SE:", ":500", "SE:5:0", "SE:ÅÄÖ"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		b, err := protocol.ParseBankRef(s)
		if err != nil {
			if strings.Contains(err.Error(), s) && len(s) > 20 {
				t.Fatalf("error %q quotes all of a long input", err)
			}
			return
		}
		if b.String() != s {
			t.Fatalf("ParseBankRef(%q) = %s, want it back", s, b)
		}
	})
}

// TestPayeeRequestsRefused holds the payee and recall submissions to
// their rules: each bad request is refused when signed, naming the field.
func TestPayeeRequestsRefused(t *testing.T) {
	a, _, _ := memberKeys(t)
	iban := testToken(t, protocol.TypeIBAN, "SE4550000000058398257466")
	email := testToken(t, protocol.TypeEmail, "anna@example.se")
	at := protocol.NewNumericDate(vectorTime)
	sek := protocol.Money{Minor: 100, Currency: "SEK"}
	bank := protocol.BankRef{Country: "SE", BankCode: "500"}
	for _, tt := range []struct {
		name  string
		req   protocol.Request
		claim string
	}{
		{"person's token", protocol.ReportPayee{Payee: email, Customers: 2, Category: protocol.PayeeOther, FirstSeen: at, LastSeen: at}, "request.payee"},
		{"no customers", protocol.ReportPayee{Payee: iban, Customers: 0, Category: protocol.PayeeOther, FirstSeen: at, LastSeen: at}, "request.customers"},
		{"unknown category", protocol.ReportPayee{Payee: iban, Customers: 2, Category: "lottery", FirstSeen: at, LastSeen: at}, "request.category"},
		{"window backwards", protocol.ReportPayee{Payee: iban, Customers: 2, Category: protocol.PayeeOther, FirstSeen: at, LastSeen: at - 1}, "request.last_seen"},
		{"contest reason", protocol.ContestPayee{PayeeID: "p1", Reason: "because"}, "request.reason"},
		{"recall of a person", protocol.RequestRecall{Payee: email, Bank: bank, Amount: sek, PaidAt: at, Reference: "r1"}, "request.payee"},
		{"recall without bank", protocol.RequestRecall{Payee: iban, Amount: sek, PaidAt: at, Reference: "r1"}, "request.bank"},
		{"recall of nothing", protocol.RequestRecall{Payee: iban, Bank: bank, Amount: protocol.Money{Currency: "SEK"}, PaidAt: at, Reference: "r1"}, "request.amount.minor"},
		{"recall in kronor", protocol.RequestRecall{Payee: iban, Bank: bank, Amount: protocol.Money{Minor: 1, Currency: "kr"}, PaidAt: at, Reference: "r1"}, "request.amount.currency"},
		{"frozen nothing", protocol.ReportRecallOutcome{RecallID: "r1", Outcome: protocol.RecallFrozen, Amount: protocol.Money{Currency: "SEK"}}, "request.amount.minor"},
		{"unknown outcome", protocol.ReportRecallOutcome{RecallID: "r1", Outcome: "lost", Amount: sek}, "request.outcome"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := protocol.SignSubmission(&protocol.Submission{Issuer: "bank-a", Audience: hubIssuer, IssuedAt: vectorTime, ID: "j1", Request: tt.req}, a)
			if err == nil || !strings.Contains(err.Error(), tt.claim) {
				t.Errorf("got %v, want a refusal naming %s", err, tt.claim)
			}
		})
	}
	// Gone with nothing left is an outcome.
	if _, err := protocol.SignSubmission(&protocol.Submission{Issuer: "bank-a", Audience: hubIssuer, IssuedAt: vectorTime, ID: "j1",
		Request: protocol.ReportRecallOutcome{RecallID: "r1", Outcome: protocol.RecallGone, Amount: protocol.Money{Currency: "SEK"}}}, a); err != nil {
		t.Errorf("gone with 0 SEK: %v", err)
	}
}
