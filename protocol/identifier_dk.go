package protocol

import (
	"fmt"
	"strings"
	"time"
)

// TypeDanishNumber is a Danish CPR number (personnummer).
const TypeDanishNumber IdentifierType = "cpr"

// A DanishNumber is a well-formed Danish CPR number, held in its canonical
// form: the 10 digits DDMMYYSSSS. The zero value is no number.
type DanishNumber struct {
	s     string
	birth time.Time
	mod11 bool
}

// danishWeights are the weights of the CPR modulus-11 check.
var danishWeights = [10]int{4, 3, 2, 7, 6, 5, 4, 3, 2, 1}

// ParseDanishNumber parses a Danish CPR number relative to the reference
// date ref.
//
// s has the 10 digits DDMMYYSSSS, optionally with a "-" or a space after
// the year (DDMMYY-SSSS); surrounding white space is ignored and nothing
// else is allowed. The century follows from the year YY and the first
// serial digit, as the CPR office defines it:
//
//	first serial digit   YY 00–36    YY 37–57    YY 58–99
//	0, 1, 2, 3           19YY        19YY        19YY
//	4, 9                 20YY        19YY        19YY
//	5, 6, 7, 8           20YY        20YY        18YY
//
// The birth date must be a calendar date no later than ref.
//
// The modulus-11 check (weights 4 3 2 7 6 5 4 3 2 1, sum divisible by 11)
// is computed but does not refuse a number: since 2007 the CPR office has
// issued numbers that fail it, once the dates ran out of numbers that pass.
// [DanishNumber.Modulus11] reports its outcome.
//
// Every error is an [*IdentifierError] of type [TypeDanishNumber].
func ParseDanishNumber(s string, ref time.Time) (DanishNumber, error) {
	digits, err := splitDanishNumber(strings.TrimSpace(s))
	if err != nil {
		return DanishNumber{}, err
	}
	dd, mm, yy := atoi(digits[0:2]), atoi(digits[2:4]), atoi(digits[4:6])
	year := danishCentury(digits[6], yy) + yy
	switch {
	case mm < 1 || mm > 12:
		return DanishNumber{}, cprError(ErrInvalidDate, fmt.Sprintf("there is no month %02d", mm))
	case dd < 1 || dd > 31:
		return DanishNumber{}, cprError(ErrInvalidDate, fmt.Sprintf("there is no day %02d", dd))
	case dd > daysIn(year, time.Month(mm)):
		return DanishNumber{}, cprError(ErrInvalidDate, fmt.Sprintf("%s of that year has no day %d", time.Month(mm), dd))
	}
	birth := time.Date(year, time.Month(mm), dd, 0, 0, 0, 0, time.UTC)
	if afterDate(birth, ref) {
		return DanishNumber{}, cprError(ErrFutureDate, fmt.Sprintf("the birth date, with the century the first serial digit gives, is after the reference date %s", ref.Format(time.DateOnly)))
	}
	return DanishNumber{s: digits, birth: birth, mod11: weightedSum(digits, danishWeights[:])%11 == 0}, nil
}

// String returns the canonical form, the 10 digits DDMMYYSSSS, or "" for
// the zero DanishNumber.
func (n DanishNumber) String() string { return n.s }

// BirthDate returns the date of birth encoded in n, at midnight UTC, or the
// zero time for the zero DanishNumber.
func (n DanishNumber) BirthDate() time.Time { return n.birth }

// Modulus11 reports whether n passes the CPR modulus-11 check. Numbers
// issued before 2007 all do; a failed check does not make a number invalid.
func (n DanishNumber) Modulus11() bool { return n.mod11 }

// canonicalDanish is [Canonicalize] for [TypeDanishNumber].
func canonicalDanish(s string, ref time.Time) (string, error) {
	n, err := ParseDanishNumber(s, ref)
	if err != nil {
		return "", err
	}
	return n.String(), nil
}

// danishCentury returns the first year of the century of a CPR number with
// first serial digit c and two-digit year yy.
func danishCentury(c byte, yy int) int {
	switch c {
	case '4', '9':
		if yy <= 36 {
			return 2000
		}
	case '5', '6', '7', '8':
		if yy <= 57 {
			return 2000
		}
		return 1800
	}
	return 1900
}

// splitDanishNumber checks the characters of a trimmed CPR number and
// returns its 10 digits.
func splitDanishNumber(s string) (string, error) {
	if len(s) == 11 && (s[6] == '-' || s[6] == ' ') {
		s = s[:6] + s[7:]
	}
	n := 0
	for _, r := range s {
		n++
		if r < '0' || r > '9' {
			if r == '-' || r == ' ' {
				return "", cprError(ErrIdentifierSyntax, fmt.Sprintf("character %d is a separator; only one, after the six-digit date, is allowed", n))
			}
			return "", cprError(ErrIdentifierSyntax, fmt.Sprintf("character %d is not a digit", n))
		}
	}
	if len(s) != 10 {
		return "", cprError(ErrIdentifierSyntax, fmt.Sprintf("there are %d digits; expected 10 (DDMMYY-SSSS)", len(s)))
	}
	return s, nil
}

// afterDate reports whether the calendar date of birth (UTC) is after
// ref's calendar date in ref's own location.
func afterDate(birth, ref time.Time) bool {
	y, m, d := ref.Date()
	return birth.After(time.Date(y, m, d, 0, 0, 0, 0, time.UTC))
}

func cprError(sentinel error, detail string) error {
	return &IdentifierError{Type: TypeDanishNumber, Err: sentinel, Detail: detail}
}
