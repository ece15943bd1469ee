package protocol_test

import (
	"strings"
	"testing"
	"time"

	"github.com/sparr-dev/sparr/protocol"
)

// An identifierVector is one row of testdata/identifiers.json: an input, the
// reference date it is canonicalized against, and either its canonical form
// or the code of the error that refuses it.
type identifierVector struct {
	Type          string `json:"type"`
	Input         string `json:"input"`
	ReferenceDate string `json:"reference_date"`
	Canonical     string `json:"canonical,omitempty"`
	Error         string `json:"error,omitempty"`
}

// An identifierInput is an identifier type's wire name and an input.
type identifierInput struct {
	typ   string
	input string
}

// identifierVectorInputs returns the inputs of testdata/identifiers.json, by
// type: every case of the personnummer project's list in its long and its
// separated format, then one or more inputs for each rule of [Canonicalize].
func identifierVectorInputs(t *testing.T) []identifierInput {
	type in = identifierInput
	var ins []in
	for _, c := range readPersonnummerCases(t, "personnummer-list.json") {
		ins = append(ins, in{"pnr", c.LongFormat}, in{"pnr", c.SeparatedFormat})
	}
	for _, s := range []string{
		"8112189876",    // century: under 100 in the reference year
		"121212+1212",   // century: 100 or older
		"0905271474",    // century: the same digits as 090527+1474 without "+"
		" 811218-9876 ", // surrounding white space
		"880261-2344",   // samordningsnummer
		"261121-1232",   // born on the reference date
		"261122-1231",   // born the day after
		"000229+2399",   // 1900 was no leap year
		"811318-9876",   // month 13
		"811292-9876",   // day 92
		"81121-89876",   // separator misplaced
		"811218/9876",   // another separator
		"20000101T220",  // interim number
		"000101-t220",   // interim number, lower case
		"20000101E221",  // not an interim letter
		"20000101T221",  // interim number, wrong check digit
	} {
		ins = append(ins, in{"pnr", s})
	}
	for _, s := range []string{
		"Anna.Svensson@Example.SE",
		" anna+bedrageri@example.se ",
		"info@BÜCHER.example",
		"A\u030asa@exempel.se",
		"用户@例子.广告",
		"anna@exa\u200bmple.se", // IDNA mapping drops the zero-width space
		"an\u200bna@example.se", // which the local part refuses
		`"anna"@example.se`,
		"anna(work)@example.se",
		"an..na@example.se",
		"anna@example.se.",
		"anna@localhost",
		strings.Repeat("a", 65) + "@example.se",
	} {
		ins = append(ins, in{"email", s})
	}
	for _, s := range []string{
		"070-123 45 67",
		"+46 70 123 45 67",
		"08-123 456 78",
		"+47 412 34 567",
		"+1 650-253-0000",
		"+46 99 123 45 67",
		"+999 123456789",
		"call me",
	} {
		ins = append(ins, in{"phone", s})
	}
	for _, c := range []struct{ typ, input string }{
		{"fnr", "13097248022"},  // fødselsnummer
		{"fnr", "130972 48022"}, // with a space after the date
		{"fnr", "53097248016"},  // D-number
		{"fnr", "30108299939"},  // first control digit under the 2032 rule
		{"fnr", "10915596784"},  // synthetic (month + 80)
		{"fnr", "13527248013"},  // H-number
		{"fnr", "13097248062"},  // first control digit
		{"fnr", "13097248023"},  // second control digit
		{"fnr", "29020112345"},  // no 29 February in year 01
		{"cpr", "070761-4285"},
		{"cpr", "0101004001"},  // fails modulus 11, accepted
		{"cpr", "010158-5000"}, // 1858 by the first serial digit
		{"cpr", "221126-4000"}, // born the day after
		{"cpr", "290200-3000"}, // 1900 was no leap year
		{"hetu", "131052-308T"},
		{"hetu", "131052y308t"}, // a century sign of 2023, lower case
		{"hetu", "010199+308X"},
		{"hetu", "010120F308J"},
		{"hetu", "131052-900W"}, // temporary
		{"hetu", "131052-001W"}, // individual number 001
		{"hetu", "131052-308U"}, // control character
		{"hetu", "131052G308T"}, // not a century sign
	} {
		ins = append(ins, in{c.typ, c.input})
	}
	ins = append(ins, in{"ssn", "811218-9876"})
	return ins
}

// TestGoldenIdentifiers builds testdata/identifiers.json, the vectors other
// implementations of identifier canonicalization test against.
func TestGoldenIdentifiers(t *testing.T) {
	var vectors []identifierVector
	codes := map[string]bool{}
	for _, in := range identifierVectorInputs(t) {
		v := identifierVector{Type: in.typ, Input: in.input, ReferenceDate: identifierRefDate.Format(time.DateOnly)}
		c, err := protocol.Canonicalize(protocol.IdentifierType(in.typ), in.input, identifierRefDate)
		if err != nil {
			v.Error = protocol.IdentifierErrorCode(err)
			if v.Error == "" {
				t.Fatalf("%s %q: got error %v without a code", in.typ, in.input, err)
			}
			codes[v.Error] = true
		} else {
			v.Canonical = c
		}
		vectors = append(vectors, v)
	}
	for _, code := range []string{"type", "syntax", "check-digit", "date", "future-date", "serial", "interim", "email", "phone"} {
		if !codes[code] {
			t.Errorf("no vector has error %q; want every code covered", code)
		}
	}
	checkGolden(t, "identifiers.json", marshalGolden(t, vectors))
}

// TestIdentifierVectors checks every row of testdata/identifiers.json
// against [protocol.Canonicalize], as another implementation would.
func TestIdentifierVectors(t *testing.T) {
	var vectors []identifierVector
	readGolden(t, "identifiers.json", &vectors)
	if len(vectors) == 0 {
		t.Fatal("got no vectors in testdata/identifiers.json")
	}
	for _, v := range vectors {
		t.Run(v.Type+"/"+v.Input, func(t *testing.T) {
			if (v.Canonical == "") == (v.Error == "") {
				t.Fatalf("got canonical %q and error %q, want exactly one", v.Canonical, v.Error)
			}
			ref, err := time.Parse(time.DateOnly, v.ReferenceDate)
			if err != nil {
				t.Fatal(err)
			}
			got, err := protocol.Canonicalize(protocol.IdentifierType(v.Type), v.Input, ref)
			if code := protocol.IdentifierErrorCode(err); code != v.Error {
				t.Errorf("got error %q (%v), want %q", code, err, v.Error)
			}
			if got != v.Canonical {
				t.Errorf("got %q, want %q", got, v.Canonical)
			}
		})
	}
}
