package protocol_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sparr-dev/sparr/protocol"
)

func TestParseNorwegianNumber(t *testing.T) {
	tests := []struct {
		name  string
		input string
		want  string
		kind  protocol.NorwegianNumberKind
	}{
		{"fødselsnummer", "13097248022", "13097248022", protocol.Fodselsnummer},
		{"with a space after the date", "130972 48022", "13097248022", protocol.Fodselsnummer},
		{"surrounding white space", " \t13097248022\n", "13097248022", protocol.Fodselsnummer},
		{"K1 would be 11, so 0", "15021951940", "15021951940", protocol.Fodselsnummer},
		{"leap day, year 96", "29029648784", "29029648784", protocol.Fodselsnummer},
		{"leap day, year 00", "29020075838", "29020075838", protocol.Fodselsnummer},
		{"D-number", "53097248016", "53097248016", protocol.DNumber},
		{"H-number", "13527248013", "13527248013", protocol.HNumber},
		{"D- and H-number", "68467038838", "68467038838", protocol.HNumber},
		{"synthetic", "10915596784", "10915596784", protocol.SyntheticNumber},
		{"synthetic D-number", "50846202355", "50846202355", protocol.SyntheticNumber},
		{"2032 rule, remainder 0", "30108299920", "30108299920", protocol.Fodselsnummer},
		{"2032 rule, remainder 1", "30108299939", "30108299939", protocol.Fodselsnummer},
		{"2032 rule, born 2032", "02013299997", "02013299997", protocol.Fodselsnummer},
		{"2032 rule, D-number", "70108299914", "70108299914", protocol.DNumber},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n, err := protocol.ParseNorwegianNumber(tt.input)
			if err != nil {
				t.Fatalf("got error %v, want %s", err, tt.want)
			}
			if got := n.String(); got != tt.want {
				t.Errorf("got %s, want %s", got, tt.want)
			}
			if got := n.Kind(); got != tt.kind {
				t.Errorf("got kind %v, want %v", got, tt.kind)
			}
		})
	}
}

func TestParseNorwegianNumberErrors(t *testing.T) {
	tests := []struct {
		name   string
		input  string
		want   error
		detail string
	}{
		{"empty", "", protocol.ErrIdentifierSyntax, "0 digits"},
		{"ten digits", "1309724802", protocol.ErrIdentifierSyntax, "10 digits"},
		{"twelve digits", "130972480221", protocol.ErrIdentifierSyntax, "12 digits"},
		{"letter", "1309724802A", protocol.ErrIdentifierSyntax, "character 11"},
		{"hyphen", "130972-48022", protocol.ErrIdentifierSyntax, "character 7"},
		{"space elsewhere", "13097 248022", protocol.ErrIdentifierSyntax, "space"},
		{"two spaces", "130972  48022", protocol.ErrIdentifierSyntax, "space"},
		{"full-width digit", "1309724802２", protocol.ErrIdentifierSyntax, "not a digit"},
		{"month 13", "13137248022", protocol.ErrInvalidDate, "month 13"},
		{"month 00", "13007248022", protocol.ErrInvalidDate, "month 00"},
		{"month 60", "13607248022", protocol.ErrInvalidDate, "month 60"},
		{"day 32", "32127248022", protocol.ErrInvalidDate, "day 32"},
		{"day 00", "00127248022", protocol.ErrInvalidDate, "day 00"},
		{"D-number day 72", "72127248022", protocol.ErrInvalidDate, "day 72"},
		{"29 February, year 01", "29020112345", protocol.ErrInvalidDate, "no day 29"},
		{"30 February in a D-number", "70020012345", protocol.ErrInvalidDate, "no day 30"},
		{"first control digit", "13097248062", protocol.ErrCheckDigit, "first control digit is 6, expected one of 2, 3, 4 or 5"},
		{"first control digit under the 2032 rule", "13097248032", protocol.ErrCheckDigit, "second control digit is 2, expected 0"},
		{"first control digit, 2032 rule", "02013299987", protocol.ErrCheckDigit, "one of 9, 0 or 1"},
		{"second control digit", "13097248023", protocol.ErrCheckDigit, "second control digit is 3, expected 2"},
		{"second control digit, 2032 rule", "02013299996", protocol.ErrCheckDigit, "expected 7"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n, err := protocol.ParseNorwegianNumber(tt.input)
			if n != (protocol.NorwegianNumber{}) {
				t.Errorf("got %v, want the zero NorwegianNumber", n)
			}
			checkIdentifierError(t, err, protocol.TypeNorwegianNumber, tt.input, tt.want)
			if err != nil && !strings.Contains(err.Error(), tt.detail) {
				t.Errorf("got error %q, want it to contain %q", err, tt.detail)
			}
		})
	}
}

// TestNorwegianNumberWithoutSecondControlDigit finds a number whose first
// ten digits admit no second control digit (it would be 10), which
// Skatteetaten never issues, and checks that no last digit is accepted.
func TestNorwegianNumberWithoutSecondControlDigit(t *testing.T) {
	w1 := []int{3, 7, 6, 1, 8, 9, 4, 5, 2}
	w2 := []int{5, 4, 3, 2, 7, 6, 5, 4, 3, 2}
	for ind := 100; ind < 1000; ind++ {
		digits := "130972" + string(rune('0'+ind/100)) + string(rune('0'+ind/10%10)) + string(rune('0'+ind%10))
		s1 := 0
		for i, w := range w1 {
			s1 += int(digits[i]-'0') * w
		}
		k1 := (11 - s1%11) % 11
		if k1 == 10 {
			continue
		}
		digits += string(rune('0' + k1))
		s2 := 0
		for i, w := range w2 {
			s2 += int(digits[i]-'0') * w
		}
		if (11-s2%11)%11 != 10 {
			continue
		}
		for k2 := '0'; k2 <= '9'; k2++ {
			_, err := protocol.ParseNorwegianNumber(digits + string(k2))
			checkIdentifierError(t, err, protocol.TypeNorwegianNumber, digits+string(k2), protocol.ErrCheckDigit)
			if err != nil && !strings.Contains(err.Error(), "no second control digit fits") {
				t.Errorf("got error %q, want it to say no second control digit fits", err)
			}
		}
		return
	}
	t.Fatal("found no individual number without a second control digit; the search is wrong")
}

// fnrvalidatorCase is one row of testdata/fnrvalidator-cases.json, the
// cases of navikt/fnrvalidator's test suite.
type fnrvalidatorCase struct {
	Name    string   `json:"name"`
	Input   string   `json:"input"`
	Status  string   `json:"status"`
	Type    string   `json:"type"`
	Reasons []string `json:"reasons"`
}

// TestFnrvalidatorCases checks navikt/fnrvalidator's cases: every valid one
// parses, as the same kind, and every invalid one is refused for one of the
// reasons it gives (this parser stops at the first).
func TestFnrvalidatorCases(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("testdata", "fnrvalidator-cases.json"))
	if err != nil {
		t.Fatal(err)
	}
	var cases []fnrvalidatorCase
	if err := json.Unmarshal(data, &cases); err != nil {
		t.Fatal(err)
	}
	if len(cases) < 20 {
		t.Fatalf("got %d cases, want the 23 of fnrvalidator", len(cases))
	}
	// fnrvalidator's kinds: a combined D- and H-number is an H-number
	// here, and a combined D- and synthetic number a synthetic one.
	kinds := map[string]protocol.NorwegianNumberKind{
		"fnr": protocol.Fodselsnummer, "dnr": protocol.DNumber, "hnr": protocol.HNumber, "tnr": protocol.SyntheticNumber,
		"dnr-and-hnr": protocol.HNumber, "dnr-and-tnr": protocol.SyntheticNumber,
	}
	reasons := map[string]error{
		"fnr, dnr or hnr must consist of 11 digits": protocol.ErrIdentifierSyntax,
		"checksums don't match":                     protocol.ErrCheckDigit,
		"invalid date":                              protocol.ErrInvalidDate,
	}
	for _, c := range cases {
		t.Run(c.Name, func(t *testing.T) {
			n, err := protocol.ParseNorwegianNumber(c.Input)
			if c.Status == "valid" {
				if err != nil {
					t.Fatalf("got error %v, want a valid %s", err, c.Type)
				}
				if want, ok := kinds[c.Type]; !ok || n.Kind() != want {
					t.Errorf("got kind %v, want %v (%s)", n.Kind(), want, c.Type)
				}
				return
			}
			for _, r := range c.Reasons {
				if errors.Is(err, reasons[r]) {
					return
				}
			}
			t.Errorf("got error %v, want one of %q", err, c.Reasons)
		})
	}
}

func TestNorwegianNumberKindString(t *testing.T) {
	for k, want := range map[protocol.NorwegianNumberKind]string{
		protocol.Fodselsnummer: "fnr", protocol.DNumber: "dnr", protocol.HNumber: "hnr", protocol.SyntheticNumber: "tnr",
		0: "NorwegianNumberKind(0)",
	} {
		if got := k.String(); got != want {
			t.Errorf("got %q, want %q", got, want)
		}
	}
}

func TestParseDanishNumber(t *testing.T) {
	tests := []struct {
		name  string
		input string
		want  string
		birth time.Time
		mod11 bool
	}{
		{"with hyphen", "070761-4285", "0707614285", utcDay(1961, 7, 7), true},
		{"without", "0707614285", "0707614285", utcDay(1961, 7, 7), true},
		{"with space", " 070761 4285 ", "0707614285", utcDay(1961, 7, 7), true},
		{"failing modulus 11 is accepted", "010100-4001", "0101004001", utcDay(2000, 1, 1), false},
		{"serial 0-3: 1900s", "150530-3000", "1505303000", utcDay(1930, 5, 15), false},
		{"serial 4, year 36: 2000s", "010136-4000", "0101364000", utcDay(2036, 1, 1), false},
		{"serial 4, year 37: 1900s", "010137-4000", "0101374000", utcDay(1937, 1, 1), false},
		{"serial 9, year 20: 2000s", "010120-9000", "0101209000", utcDay(2020, 1, 1), false},
		{"serial 9, year 37: 1900s", "010137-9000", "0101379000", utcDay(1937, 1, 1), true},
		{"serial 5-8, year 57: 2000s", "010157-5000", "0101575000", utcDay(2057, 1, 1), false},
		{"serial 5-8, year 58: 1800s", "010158-5000", "0101585000", utcDay(1858, 1, 1), false},
		{"serial 5-8, year 62: 1800s", "211062-5629", "2110625629", utcDay(1862, 10, 21), true},
		{"leap day 2000", "290200-4000", "2902004000", utcDay(2000, 2, 29), false},
		{"born on the reference date", "211126-4000", "2111264000", utcDay(2026, 11, 21), false},
	}
	ref := identifierRefDate.AddDate(40, 0, 0) // so that 2036 and 2057 are past
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := ref
			if tt.name == "born on the reference date" {
				r = identifierRefDate
			}
			n, err := protocol.ParseDanishNumber(tt.input, r)
			if err != nil {
				t.Fatalf("got error %v, want %s", err, tt.want)
			}
			if got := n.String(); got != tt.want {
				t.Errorf("got %s, want %s", got, tt.want)
			}
			if got := n.BirthDate(); !got.Equal(tt.birth) {
				t.Errorf("got birth date %v, want %v", got, tt.birth)
			}
			if got := n.Modulus11(); got != tt.mod11 {
				t.Errorf("got Modulus11 %v, want %v", got, tt.mod11)
			}
		})
	}
}

func TestParseDanishNumberErrors(t *testing.T) {
	tests := []struct {
		name   string
		input  string
		want   error
		detail string
	}{
		{"empty", "", protocol.ErrIdentifierSyntax, "0 digits"},
		{"nine digits", "070761428", protocol.ErrIdentifierSyntax, "9 digits"},
		{"eleven digits", "07076142851", protocol.ErrIdentifierSyntax, "11 digits"},
		{"separator misplaced", "07076-14285", protocol.ErrIdentifierSyntax, "separator"},
		{"two separators", "070761--4285", protocol.ErrIdentifierSyntax, "separator"},
		{"plus", "070761+4285", protocol.ErrIdentifierSyntax, "not a digit"},
		{"letter", "070761-428A", protocol.ErrIdentifierSyntax, "not a digit"},
		{"month 13", "071361-4285", protocol.ErrInvalidDate, "month 13"},
		{"day 32", "320761-4285", protocol.ErrInvalidDate, "day 32"},
		{"day 00", "000761-4285", protocol.ErrInvalidDate, "day 00"},
		{"1900 was no leap year", "290200-3000", protocol.ErrInvalidDate, "no day 29"},
		{"31 April", "310461-4285", protocol.ErrInvalidDate, "no day 31"},
		{"born the day after", "221126-4000", protocol.ErrFutureDate, "2026-11-21"},
		{"born in 2036", "010136-9000", protocol.ErrFutureDate, "first serial digit"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n, err := protocol.ParseDanishNumber(tt.input, identifierRefDate)
			if n != (protocol.DanishNumber{}) {
				t.Errorf("got %v, want the zero DanishNumber", n)
			}
			checkIdentifierError(t, err, protocol.TypeDanishNumber, tt.input, tt.want)
			if err != nil && !strings.Contains(err.Error(), tt.detail) {
				t.Errorf("got error %q, want it to contain %q", err, tt.detail)
			}
		})
	}
}

func TestParseFinnishNumber(t *testing.T) {
	tests := []struct {
		name      string
		input     string
		want      string
		birth     time.Time
		temporary bool
	}{
		{"+ 1800s", "010199+308X", "010199+308X", utcDay(1899, 1, 1), false},
		{"- 1900s", "131052-308T", "131052-308T", utcDay(1952, 10, 13), false},
		{"Y 1900s", "131052Y308T", "131052Y308T", utcDay(1952, 10, 13), false},
		{"X 1900s", "010594X308V", "010594X308V", utcDay(1994, 5, 1), false},
		{"W 1900s", "010594W308V", "010594W308V", utcDay(1994, 5, 1), false},
		{"V 1900s", "010594V308V", "010594V308V", utcDay(1994, 5, 1), false},
		{"U 1900s", "010594U308V", "010594U308V", utcDay(1994, 5, 1), false},
		{"A 2000s", "010120A308J", "010120A308J", utcDay(2020, 1, 1), false},
		{"B 2000s", "010120B308J", "010120B308J", utcDay(2020, 1, 1), false},
		{"C 2000s", "010120C308J", "010120C308J", utcDay(2020, 1, 1), false},
		{"D 2000s", "010120D308J", "010120D308J", utcDay(2020, 1, 1), false},
		{"E 2000s", "010120E308J", "010120E308J", utcDay(2020, 1, 1), false},
		{"F 2000s", "010120F308J", "010120F308J", utcDay(2020, 1, 1), false},
		{"lower case", " 010120b308j ", "010120B308J", utcDay(2020, 1, 1), false},
		{"leap day 2000", "290200A1239", "290200A1239", utcDay(2000, 2, 29), false},
		{"individual number 002", "131052-002X", "131052-002X", utcDay(1952, 10, 13), false},
		{"born on the reference date", "211126A1233", "211126A1233", utcDay(2026, 11, 21), false},
		{"temporary", "131052-900W", "131052-900W", utcDay(1952, 10, 13), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n, err := protocol.ParseFinnishNumber(tt.input, identifierRefDate)
			if err != nil {
				t.Fatalf("got error %v, want %s", err, tt.want)
			}
			if got := n.String(); got != tt.want {
				t.Errorf("got %s, want %s", got, tt.want)
			}
			if got := n.BirthDate(); !got.Equal(tt.birth) {
				t.Errorf("got birth date %v, want %v", got, tt.birth)
			}
			if got := n.Temporary(); got != tt.temporary {
				t.Errorf("got Temporary %v, want %v", got, tt.temporary)
			}
		})
	}
}

func TestParseFinnishNumberErrors(t *testing.T) {
	tests := []struct {
		name   string
		input  string
		want   error
		detail string
	}{
		{"empty", "", protocol.ErrIdentifierSyntax, "0 characters"},
		{"ten characters", "131052-308", protocol.ErrIdentifierSyntax, "10 characters"},
		{"twelve characters", "131052-308TT", protocol.ErrIdentifierSyntax, "12 characters"},
		{"no century sign", "1310521308T", protocol.ErrIdentifierSyntax, "century sign"},
		{"retired letter as century sign", "131052G308T", protocol.ErrIdentifierSyntax, "century sign"},
		{"letter in the date", "13105A-308T", protocol.ErrIdentifierSyntax, "character 6"},
		{"letter in the individual number", "131052-3O8T", protocol.ErrIdentifierSyntax, "character 9"},
		{"control character G", "131052-308G", protocol.ErrIdentifierSyntax, "control character"},
		{"non-ASCII", "131052–308T", protocol.ErrIdentifierSyntax, "character 7"},
		{"month 13", "131352-308T", protocol.ErrInvalidDate, "month 13"},
		{"day 32", "321052-308T", protocol.ErrInvalidDate, "day 32"},
		{"1900 was no leap year", "290200-1239", protocol.ErrInvalidDate, "no day 29"},
		{"born the day after", "221126A123R", protocol.ErrFutureDate, "2026-11-21"},
		{"individual number 000", "131052-000V", protocol.ErrInvalidSerial, "000 and 001"},
		{"individual number 001", "131052-001W", protocol.ErrInvalidSerial, "000 and 001"},
		{"control character", "131052-308U", protocol.ErrCheckDigit, "control character is U, expected T"},
		{"control character with a new century sign", "010120B308K", protocol.ErrCheckDigit, "control character is K, expected J"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n, err := protocol.ParseFinnishNumber(tt.input, identifierRefDate)
			if n != (protocol.FinnishNumber{}) {
				t.Errorf("got %v, want the zero FinnishNumber", n)
			}
			checkIdentifierError(t, err, protocol.TypeFinnishNumber, tt.input, tt.want)
			if err != nil && !strings.Contains(err.Error(), tt.detail) {
				t.Errorf("got error %q, want it to contain %q", err, tt.detail)
			}
		})
	}
}

// TestDVVTestCodes checks the test identity codes that the Digital and
// Population Data Services Agency published with the century signs of
// 2023 (testdata/hetu-dvv.json): each is valid, and each is temporary, so
// none is token input.
func TestDVVTestCodes(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("testdata", "hetu-dvv.json"))
	if err != nil {
		t.Fatal(err)
	}
	var codes []string
	if err := json.Unmarshal(data, &codes); err != nil {
		t.Fatal(err)
	}
	if len(codes) == 0 {
		t.Fatal("got no codes")
	}
	for _, c := range codes {
		t.Run(c, func(t *testing.T) {
			n, err := protocol.ParseFinnishNumber(c, identifierRefDate)
			if err != nil {
				t.Fatalf("got error %v, want a valid code", err)
			}
			if n.String() != c || !n.Temporary() {
				t.Errorf("got %s, temporary %v; want %s, temporary", n, n.Temporary(), c)
			}
			_, err = protocol.Canonicalize(protocol.TypeFinnishNumber, c, identifierRefDate)
			checkIdentifierError(t, err, protocol.TypeFinnishNumber, c, protocol.ErrInterimNumber)
		})
	}
}

func TestCanonicalizeNordic(t *testing.T) {
	tests := []struct {
		typ   protocol.IdentifierType
		input string
		want  string // "" if refused
		err   error
	}{
		{protocol.TypeNorwegianNumber, "130972 48022", "13097248022", nil},
		{protocol.TypeNorwegianNumber, "53097248016", "53097248016", nil},
		{protocol.TypeNorwegianNumber, "10915596784", "10915596784", nil},
		{protocol.TypeNorwegianNumber, "13527248013", "", protocol.ErrInterimNumber},
		{protocol.TypeNorwegianNumber, "68467038838", "", protocol.ErrInterimNumber},
		{protocol.TypeDanishNumber, "070761-4285", "0707614285", nil},
		{protocol.TypeDanishNumber, "010100-4001", "0101004001", nil},
		{protocol.TypeFinnishNumber, "131052y308t", "131052Y308T", nil},
		{protocol.TypeFinnishNumber, "131052-900W", "", protocol.ErrInterimNumber},
		{protocol.TypeNorwegianNumber, "131052-308T", "", protocol.ErrIdentifierSyntax},
		{protocol.TypeFinnishNumber, "13097248022", "", protocol.ErrIdentifierSyntax},
		{protocol.TypeDanishNumber, "13097248022", "", protocol.ErrIdentifierSyntax},
	}
	for _, tt := range tests {
		t.Run(string(tt.typ)+"/"+tt.input, func(t *testing.T) {
			got, err := protocol.Canonicalize(tt.typ, tt.input, identifierRefDate)
			if got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
			if tt.err == nil {
				if err != nil {
					t.Errorf("got error %v, want none", err)
				}
				return
			}
			checkIdentifierError(t, err, tt.typ, tt.input, tt.err)
		})
	}
}

func FuzzParseNorwegianNumber(f *testing.F) {
	for _, s := range []string{
		"13097248022", "130972 48022", "53097248016", "13527248013", "10915596784", "50846202355",
		"02013299997", "30108299939", "29020112345", "1309724802A", "1309724802２", " 13097248022 ", "",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := protocol.ParseNorwegianNumber(s)
		if err != nil {
			checkFuzzError(t, err, protocol.TypeNorwegianNumber)
			return
		}
		c := n.String()
		if len(c) != 11 || strings.Trim(c, "0123456789") != "" {
			t.Fatalf("got canonical form %q, want 11 digits", c)
		}
		again, err := protocol.ParseNorwegianNumber(c)
		if err != nil || again != n {
			t.Fatalf("canonical form %q gives %v, %v; want itself", c, again, err)
		}
		canon, err := protocol.Canonicalize(protocol.TypeNorwegianNumber, s, identifierRefDate)
		if n.Kind() == protocol.HNumber {
			if !errors.Is(err, protocol.ErrInterimNumber) {
				t.Fatalf("Canonicalize of an H-number: got %q, %v; want ErrInterimNumber", canon, err)
			}
		} else if canon != c || err != nil {
			t.Fatalf("Canonicalize: got %q, %v; want %q", canon, err, c)
		}
	})
}

func FuzzParseDanishNumber(f *testing.F) {
	for _, s := range []string{
		"070761-4285", "0707614285", "070761 4285", "010100-4001", "211062-5629", "290200-3000",
		"221126-4000", "07076-14285", "070761+4285", "",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := protocol.ParseDanishNumber(s, identifierRefDate)
		if err != nil {
			checkFuzzError(t, err, protocol.TypeDanishNumber)
			return
		}
		c := n.String()
		if len(c) != 10 || strings.Trim(c, "0123456789") != "" {
			t.Fatalf("got canonical form %q, want 10 digits", c)
		}
		if n.BirthDate().After(identifierRefDate) {
			t.Fatalf("got birth date %v after the reference date", n.BirthDate())
		}
		again, err := protocol.ParseDanishNumber(c, identifierRefDate)
		if err != nil || again != n {
			t.Fatalf("canonical form %q gives %v, %v; want itself", c, again, err)
		}
		if canon, err := protocol.Canonicalize(protocol.TypeDanishNumber, s, identifierRefDate); canon != c || err != nil {
			t.Fatalf("Canonicalize: got %q, %v; want %q", canon, err, c)
		}
	})
}

func FuzzParseFinnishNumber(f *testing.F) {
	for _, s := range []string{
		"131052-308T", "131052y308t", "010199+308X", "010120F308J", "131052-900W", "131052-001W",
		"290200-1239", "221126A123R", "131052G308T", "131052–308T", "010594Y9021", "",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := protocol.ParseFinnishNumber(s, identifierRefDate)
		if err != nil {
			checkFuzzError(t, err, protocol.TypeFinnishNumber)
			return
		}
		c := n.String()
		if len(c) != 11 || c != strings.ToUpper(c) {
			t.Fatalf("got canonical form %q, want 11 upper-case characters", c)
		}
		if n.BirthDate().After(identifierRefDate) {
			t.Fatalf("got birth date %v after the reference date", n.BirthDate())
		}
		again, err := protocol.ParseFinnishNumber(c, identifierRefDate)
		if err != nil || again != n {
			t.Fatalf("canonical form %q gives %v, %v; want itself", c, again, err)
		}
		canon, err := protocol.Canonicalize(protocol.TypeFinnishNumber, s, identifierRefDate)
		if n.Temporary() {
			if !errors.Is(err, protocol.ErrInterimNumber) {
				t.Fatalf("Canonicalize of a temporary code: got %q, %v; want ErrInterimNumber", canon, err)
			}
		} else if canon != c || err != nil {
			t.Fatalf("Canonicalize: got %q, %v; want %q", canon, err, c)
		}
	})
}

func ExampleCanonicalize_nordic() {
	ref := time.Date(2026, 11, 21, 0, 0, 0, 0, time.UTC)
	for _, id := range []struct {
		typ   protocol.IdentifierType
		input string
	}{
		{protocol.TypeNorwegianNumber, "130972 48022"},
		{protocol.TypeNorwegianNumber, "13527248013"},
		{protocol.TypeDanishNumber, "070761-4285"},
		{protocol.TypeFinnishNumber, "131052y308t"},
		{protocol.TypeFinnishNumber, "131052-308U"},
	} {
		c, err := protocol.Canonicalize(id.typ, id.input, ref)
		if err != nil {
			fmt.Printf("%s (%s)\n", err, protocol.IdentifierErrorCode(err))
			continue
		}
		fmt.Println(c)
	}
	// Output:
	// 13097248022
	// fnr: H-numbers (month + 40) are assigned inside the health sector, not by the Folkeregister, so they cannot identify a person across members (interim)
	// 0707614285
	// 131052Y308T
	// hetu: control character is U, expected T (check-digit)
}
