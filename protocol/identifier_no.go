package protocol

import (
	"fmt"
	"strings"
	"time"
)

// TypeNorwegianNumber is a Norwegian fødselsnummer or D-number.
const TypeNorwegianNumber IdentifierType = "fnr"

// A NorwegianNumberKind says which kind of Norwegian identity number a
// [NorwegianNumber] is.
type NorwegianNumberKind int

const (
	// Fodselsnummer is a birth number, issued by the Folkeregister
	// (Skatteetaten) to residents of Norway.
	Fodselsnummer NorwegianNumberKind = iota + 1
	// DNumber is issued by the Folkeregister to people who are not
	// residents; 40 is added to the day of birth (41–71).
	DNumber
	// HNumber is a help number, assigned inside the health sector to a
	// patient whose fødselsnummer or D-number is not known; 40 is added to
	// the month (41–52). NAV's synthetic test numbers use the same range
	// and cannot be told apart from it.
	HNumber
	// SyntheticNumber is a test number of Skatteetaten's test population
	// (Tenor, "Test Norge"): 80 is added to the month (81–92), so it never
	// coincides with a number issued to a person. Its day may carry the
	// D-number's 40.
	SyntheticNumber
)

// String returns "fnr", "dnr", "hnr" or "tnr", the names navikt/fnrvalidator
// uses for the same kinds.
func (k NorwegianNumberKind) String() string {
	switch k {
	case Fodselsnummer:
		return "fnr"
	case DNumber:
		return "dnr"
	case HNumber:
		return "hnr"
	case SyntheticNumber:
		return "tnr"
	}
	return fmt.Sprintf("NorwegianNumberKind(%d)", int(k))
}

// A NorwegianNumber is a well-formed Norwegian fødselsnummer, D-number,
// H-number or synthetic test number, held in its canonical form: the 11
// digits DDMMYYIIIKK as issued. The zero value is no number.
type NorwegianNumber struct {
	s    string
	kind NorwegianNumberKind
}

// Weights of the two mod-11 control digits over DDMMYYIII (and K1).
var (
	norwegianK1Weights = [9]int{3, 7, 6, 1, 8, 9, 4, 5, 2}
	norwegianK2Weights = [10]int{5, 4, 3, 2, 7, 6, 5, 4, 3, 2}
)

// ParseNorwegianNumber parses a Norwegian fødselsnummer, D-number, H-number
// or synthetic test number.
//
// s has the 11 digits DDMMYYIIIKK, optionally with one space after the
// year (DDMMYY IIIKK); surrounding white space is ignored and nothing else
// is allowed. DD is the day of birth, plus 40 for a D-number; MM the month,
// plus 40 for an H-number and plus 80 for a synthetic test number; the day
// and month must form a calendar date in a year ending in YY (29 February
// needs YY divisible by 4, as 2000 was a leap year). III is the individual
// number, and K1 K2 are the mod-11 control digits:
//
//   - K1 with weights 3 7 6 1 8 9 4 5 2 over DDMMYYIII: the weighted sum plus
//     K1 must leave a remainder of 0 modulo 11 (numbers issued until 2031),
//     or of 0, 1, 2 or 3 (numbers issued from 2032, when Skatteetaten runs
//     out of individual numbers: K1 may then take up to four values, and the
//     individual number no longer tells gender or century).
//   - K2 with weights 5 4 3 2 7 6 5 4 3 2 over DDMMYYIIIK1: the weighted sum
//     plus K2 must be divisible by 11.
//
// Because a number issued from 2032 carries no century, the birth date is
// not resolved to a year, and unlike the other national numbers a Norwegian
// one is not compared with a reference date.
//
// Every error is an [*IdentifierError] of type [TypeNorwegianNumber].
func ParseNorwegianNumber(s string) (NorwegianNumber, error) {
	digits, err := splitNorwegianNumber(strings.TrimSpace(s))
	if err != nil {
		return NorwegianNumber{}, err
	}
	dd, mm, yy := atoi(digits[0:2]), atoi(digits[2:4]), atoi(digits[4:6])

	kind := Fodselsnummer
	day, month := dd, mm
	if dd > 40 {
		day -= 40
		kind = DNumber
	}
	switch {
	case mm > 80:
		month -= 80
		kind = SyntheticNumber
	case mm > 40:
		month -= 40
		kind = HNumber
	}
	if month < 1 || month > 12 {
		return NorwegianNumber{}, fnrError(ErrInvalidDate, fmt.Sprintf("month %02d is neither a month (01-12), an H-number's month (41-52) nor a synthetic number's (81-92)", mm))
	}
	// A year ending in yy that is a leap year exactly when yy is divisible
	// by 4: 2000 + yy does.
	if day < 1 || day > daysIn(2000+yy, time.Month(month)) {
		if day < 1 || day > 31 {
			return NorwegianNumber{}, fnrError(ErrInvalidDate, fmt.Sprintf("day %02d is neither a day of the month (01-31) nor a D-number's day (41-71)", dd))
		}
		return NorwegianNumber{}, fnrError(ErrInvalidDate, fmt.Sprintf("%s of that year has no day %d", time.Month(month), day))
	}

	sum1 := weightedSum(digits[:9], norwegianK1Weights[:])
	k1 := int(digits[9] - '0')
	if rest := (sum1 + k1) % 11; rest > 3 {
		return NorwegianNumber{}, fnrError(ErrCheckDigit, fmt.Sprintf("first control digit is %d, expected one of %s", k1, norwegianK1Candidates(sum1)))
	}
	sum2 := weightedSum(digits[:10], norwegianK2Weights[:])
	k2 := int(digits[10] - '0')
	want := (11 - sum2%11) % 11
	if want == 10 {
		return NorwegianNumber{}, fnrError(ErrCheckDigit, "no second control digit fits the first ten digits, so no such number is issued")
	}
	if k2 != want {
		return NorwegianNumber{}, fnrError(ErrCheckDigit, fmt.Sprintf("second control digit is %d, expected %d", k2, want))
	}
	return NorwegianNumber{s: digits, kind: kind}, nil
}

// String returns the canonical form, the 11 digits DDMMYYIIIKK, or "" for
// the zero NorwegianNumber.
func (n NorwegianNumber) String() string { return n.s }

// Kind returns whether n is a fødselsnummer, a D-number, an H-number or a
// synthetic test number.
func (n NorwegianNumber) Kind() NorwegianNumberKind { return n.kind }

// canonicalNorwegian is [Canonicalize] for [TypeNorwegianNumber].
func canonicalNorwegian(s string) (string, error) {
	n, err := ParseNorwegianNumber(s)
	if err != nil {
		return "", err
	}
	if n.Kind() == HNumber {
		return "", fnrError(ErrInterimNumber, "H-numbers (month + 40) are assigned inside the health sector, not by the Folkeregister, so they cannot identify a person across members")
	}
	return n.String(), nil
}

// splitNorwegianNumber checks the characters of a trimmed Norwegian number
// and returns its 11 digits.
func splitNorwegianNumber(s string) (string, error) {
	if len(s) == 12 && s[6] == ' ' {
		s = s[:6] + s[7:]
	}
	n := 0
	for _, r := range s {
		n++
		if r < '0' || r > '9' {
			if r == ' ' {
				return "", fnrError(ErrIdentifierSyntax, fmt.Sprintf("character %d is a space; only one, after the six-digit date, is allowed", n))
			}
			return "", fnrError(ErrIdentifierSyntax, fmt.Sprintf("character %d is not a digit", n))
		}
	}
	if len(s) != 11 {
		return "", fnrError(ErrIdentifierSyntax, fmt.Sprintf("there are %d digits; expected 11 (DDMMYYIIIKK)", len(s)))
	}
	return s, nil
}

// norwegianK1Candidates lists the first control digits that a weighted
// sum admits, as "2, 3, 4 or 5".
func norwegianK1Candidates(sum int) string {
	var ks []string
	for rest := 0; rest <= 3; rest++ {
		if k := (11 + rest - sum%11) % 11; k != 10 {
			ks = append(ks, fmt.Sprint(k))
		}
	}
	if len(ks) == 1 {
		return ks[0]
	}
	return strings.Join(ks[:len(ks)-1], ", ") + " or " + ks[len(ks)-1]
}

// weightedSum returns the sum of the digits of s times weights.
func weightedSum(s string, weights []int) int {
	sum := 0
	for i := 0; i < len(s); i++ {
		sum += int(s[i]-'0') * weights[i]
	}
	return sum
}

func fnrError(sentinel error, detail string) error {
	return &IdentifierError{Type: TypeNorwegianNumber, Err: sentinel, Detail: detail}
}
