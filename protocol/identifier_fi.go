package protocol

import (
	"fmt"
	"strings"
	"time"
)

// TypeFinnishNumber is a Finnish personal identity code (henkilötunnus).
const TypeFinnishNumber IdentifierType = "hetu"

// A FinnishNumber is a well-formed Finnish personal identity code, held in
// its canonical form: the 11 characters DDMMYYCZZZQ with the century sign C
// and the control character Q in upper case. The zero value is no number.
type FinnishNumber struct {
	s     string
	birth time.Time
}

// finnishControl maps DDMMYYZZZ mod 31 to the control character.
const finnishControl = "0123456789ABCDEFHJKLMNPRSTUVWXY"

// ParseFinnishNumber parses a Finnish personal identity code relative to the
// reference date ref.
//
// s has the 11 characters DDMMYYCZZZQ; letters may be in either case,
// surrounding white space is ignored and nothing else is allowed. C is the
// century sign: "+" for 1800–1899; "-", or since 2023 "Y", "X", "W", "V" or
// "U", for 1900–1999; "A", or since 2023 "B", "C", "D", "E" or "F", for
// 2000–2099. The signs of one century are not interchangeable: the new ones
// were introduced to give more numbers to each date, so two codes that
// differ only in "-" and "Y" are two people, and the canonical form keeps
// the sign.
//
// DDMMYY must be a calendar date in that century no later than ref. ZZZ is
// the individual number, 002–899 for codes issued by the Digital and
// Population Data Services Agency; 000 and 001 are never issued, and
// 900–999 are temporary codes, which [FinnishNumber.Temporary] reports. Q is
// the control character: DDMMYYZZZ read as a nine-digit number, modulo 31,
// indexes "0123456789ABCDEFHJKLMNPRSTUVWXY".
//
// Every error is an [*IdentifierError] of type [TypeFinnishNumber].
func ParseFinnishNumber(s string, ref time.Time) (FinnishNumber, error) {
	s, err := splitFinnishNumber(strings.TrimSpace(s))
	if err != nil {
		return FinnishNumber{}, err
	}
	dd, mm, yy := atoi(s[0:2]), atoi(s[2:4]), atoi(s[4:6])
	year := finnishCentury(s[6]) + yy
	switch {
	case mm < 1 || mm > 12:
		return FinnishNumber{}, hetuError(ErrInvalidDate, fmt.Sprintf("there is no month %02d", mm))
	case dd < 1 || dd > 31:
		return FinnishNumber{}, hetuError(ErrInvalidDate, fmt.Sprintf("there is no day %02d", dd))
	case dd > daysIn(year, time.Month(mm)):
		return FinnishNumber{}, hetuError(ErrInvalidDate, fmt.Sprintf("%s of that year has no day %d", time.Month(mm), dd))
	}
	birth := time.Date(year, time.Month(mm), dd, 0, 0, 0, 0, time.UTC)
	if afterDate(birth, ref) {
		return FinnishNumber{}, hetuError(ErrFutureDate, fmt.Sprintf("the birth date is after the reference date %s", ref.Format(time.DateOnly)))
	}
	if ind := atoi(s[7:10]); ind < 2 {
		return FinnishNumber{}, hetuError(ErrInvalidSerial, "individual numbers 000 and 001 are never issued")
	}
	n := atoi(s[0:6] + s[7:10])
	if got, want := s[10], finnishControl[n%31]; got != want {
		return FinnishNumber{}, hetuError(ErrCheckDigit, fmt.Sprintf("control character is %c, expected %c", got, want))
	}
	return FinnishNumber{s: s, birth: birth}, nil
}

// String returns the canonical form, DDMMYYCZZZQ in upper case, or "" for
// the zero FinnishNumber.
func (n FinnishNumber) String() string { return n.s }

// BirthDate returns the date of birth encoded in n, at midnight UTC, or the
// zero time for the zero FinnishNumber.
func (n FinnishNumber) BirthDate() time.Time { return n.birth }

// Temporary reports whether n is a temporary code, with individual number
// 900–999. Such codes are assigned by an organisation to a person it
// cannot yet identify, and are not unique.
func (n FinnishNumber) Temporary() bool { return n.s != "" && n.s[7] == '9' }

// canonicalFinnish is [Canonicalize] for [TypeFinnishNumber].
func canonicalFinnish(s string, ref time.Time) (string, error) {
	n, err := ParseFinnishNumber(s, ref)
	if err != nil {
		return "", err
	}
	if n.Temporary() {
		return "", hetuError(ErrInterimNumber, "temporary codes (individual number 900-999) are assigned by one organisation to a person it cannot yet identify and are not unique, so they cannot identify a person across members")
	}
	return n.String(), nil
}

// finnishCentury returns the first year of the century a valid century
// sign stands for.
func finnishCentury(c byte) int {
	switch {
	case c == '+':
		return 1800
	case c >= 'A' && c <= 'F':
		return 2000
	}
	return 1900
}

// splitFinnishNumber checks the characters of a trimmed personal identity
// code and returns it in upper case.
func splitFinnishNumber(s string) (string, error) {
	n := 0
	for _, r := range s {
		n++
		if r >= 0x80 {
			return "", hetuError(ErrIdentifierSyntax, fmt.Sprintf("character %d is not a digit, letter or century sign", n))
		}
	}
	if len(s) != 11 {
		return "", hetuError(ErrIdentifierSyntax, fmt.Sprintf("there are %d characters; expected 11 (DDMMYYCZZZQ)", len(s)))
	}
	s = strings.ToUpper(s)
	for i := 0; i < 11; i++ {
		c := s[i]
		switch {
		case i == 6:
			if strings.IndexByte("+-YXWVUABCDEF", c) < 0 {
				return "", hetuError(ErrIdentifierSyntax, "character 7 is not a century sign (+ - Y X W V U A B C D E F)")
			}
		case i == 10:
			if strings.IndexByte(finnishControl, c) < 0 {
				return "", hetuError(ErrIdentifierSyntax, "character 11 is not a control character (a digit, or a letter other than G I O Q Z)")
			}
		case c < '0' || c > '9':
			return "", hetuError(ErrIdentifierSyntax, fmt.Sprintf("character %d is not a digit", i+1))
		}
	}
	return s, nil
}

func hetuError(sentinel error, detail string) error {
	return &IdentifierError{Type: TypeFinnishNumber, Err: sentinel, Detail: detail}
}
