package protocol

import (
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/nyaruka/phonenumbers"
	"golang.org/x/net/idna"
	"golang.org/x/text/unicode/norm"
)

// ErrUnknownIdentifierType is returned by [ParseIdentifierType] and
// [Canonicalize] when the identifier type is not one of [IdentifierTypes].
var ErrUnknownIdentifierType = errors.New("unknown identifier type")

// ErrIdentifierSyntax is returned by [ParsePersonalNumber], the parsers of
// the other national numbers ([ParseNorwegianNumber], [ParseDanishNumber],
// [ParseFinnishNumber]) and [Canonicalize] when a number has the wrong
// length, a character that does not belong, or a misplaced separator.
var ErrIdentifierSyntax = errors.New("malformed identifier")

// ErrCheckDigit is returned by [ParsePersonalNumber] and [Canonicalize] when a
// personnummer's last digit is not its Luhn check digit, and by the parsers
// of the other national numbers when a control digit or character is wrong
// (never for a Danish number: see [ParseDanishNumber]).
var ErrCheckDigit = errors.New("wrong check digit")

// ErrInvalidDate is returned by [ParsePersonalNumber], the parsers of the
// other national numbers and [Canonicalize] when a number's date part names
// no calendar date.
var ErrInvalidDate = errors.New("no such date")

// ErrFutureDate is returned by [ParsePersonalNumber], [ParseDanishNumber],
// [ParseFinnishNumber] and [Canonicalize] when a number's birth date is after
// the reference date.
var ErrFutureDate = errors.New("birth date after the reference date")

// ErrInvalidSerial is returned by [ParsePersonalNumber], [ParseFinnishNumber]
// and [Canonicalize] when a number's serial is one that is never issued:
// 000 in a personnummer, 000 or 001 in a Finnish personal identity code.
var ErrInvalidSerial = errors.New("serial number never issued")

// ErrInterimNumber is returned by [Canonicalize] for numbers that the
// parsers recognise but that cannot be tokens, because no national register
// issues them: Swedish interim numbers, Norwegian H-numbers and Finnish
// temporary codes.
var ErrInterimNumber = errors.New("interim number")

// ErrInvalidEmail is returned by [CanonicalEmail] and [Canonicalize] when a
// string is not an e-mail address of the form this package accepts.
var ErrInvalidEmail = errors.New("malformed e-mail address")

// ErrInvalidPhone is returned by [CanonicalPhone] and [Canonicalize] when a
// string is not a valid phone number.
var ErrInvalidPhone = errors.New("not a valid phone number")

// identifierErrorCodes maps each sentinel to its stable short code.
var identifierErrorCodes = []struct {
	err  error
	code string
}{
	{ErrUnknownIdentifierType, "type"},
	{ErrIdentifierSyntax, "syntax"},
	{ErrCheckDigit, "check-digit"},
	{ErrInvalidDate, "date"},
	{ErrFutureDate, "future-date"},
	{ErrInvalidSerial, "serial"},
	{ErrInterimNumber, "interim"},
	{ErrInvalidEmail, "email"},
	{ErrInvalidPhone, "phone"},
	{ErrUnknownBank, "bank"},
}

// An IdentifierType names a kind of identifier. It is the first field of a
// token's text form and part of the OPRF info string, so its values are wire
// format.
type IdentifierType string

const (
	// TypePersonalNumber is a Swedish personnummer or samordningsnummer.
	TypePersonalNumber IdentifierType = "pnr"
	// TypeEmail is an e-mail address.
	TypeEmail IdentifierType = "email"
	// TypePhone is a phone number.
	TypePhone IdentifierType = "phone"
)

// IdentifierTypes returns every identifier type, in a fixed order.
func IdentifierTypes() []IdentifierType {
	return append([]IdentifierType{TypePersonalNumber, TypeEmail, TypePhone,
		TypeNorwegianNumber, TypeDanishNumber, TypeFinnishNumber}, PayeeTypes()...)
}

// ParseIdentifierType returns the identifier type whose wire name is s. The
// match is exact: "PNR" and " pnr" are not identifier types. An unknown name
// gives an [*IdentifierError] wrapping [ErrUnknownIdentifierType].
func ParseIdentifierType(s string) (IdentifierType, error) {
	for _, t := range IdentifierTypes() {
		if s == string(t) {
			return t, nil
		}
	}
	return "", unknownTypeError(s)
}

// An IdentifierError says why an identifier was refused. It never contains
// the identifier itself: errors get logged, and raw identifiers must never be.
type IdentifierError struct {
	// Type is the type the identifier was parsed as, or "" when the type
	// itself was unknown.
	Type IdentifierType
	// Err is one of the sentinels of this package, such as [ErrCheckDigit].
	Err error
	// Detail says what was wrong, for a person: "check digit is 3, expected 6".
	Detail string
}

// Error returns the type and the detail, as in "pnr: check digit is 3, expected 6".
func (e *IdentifierError) Error() string {
	prefix := string(e.Type)
	if prefix == "" {
		prefix = "identifier"
	}
	detail := e.Detail
	if detail == "" && e.Err != nil {
		detail = e.Err.Error()
	}
	return prefix + ": " + detail
}

// Unwrap returns the sentinel, so that errors.Is(err, ErrCheckDigit) works.
func (e *IdentifierError) Unwrap() error { return e.Err }

// IdentifierErrorCode returns the stable short code of err's sentinel
// ("type", "syntax", "check-digit", "date", "future-date", "serial",
// "interim", "email", "phone", "bank"), or "" if err is not an identifier error. The
// codes appear in testdata/identifiers.json and in API problem details.
func IdentifierErrorCode(err error) string {
	for _, c := range identifierErrorCodes {
		if errors.Is(err, c.err) {
			return c.code
		}
	}
	return ""
}

// Canonicalize returns the canonical form of s as an identifier of type t:
// the exact bytes that are tokenized. Two strings that name the same person,
// mailbox or line have the same canonical form.
//
//   - [TypePersonalNumber]: the 12-character form YYYYMMDDNNNC of
//     [ParsePersonalNumber], with a samordningsnummer's day kept at +60.
//     ref is the reference date for resolving the century of a 10-digit
//     form; callers pass it in (typically the date of the event reported).
//     Interim numbers are refused with [ErrInterimNumber]: no authority
//     issues them, so the same interim number may name different people.
//   - [TypeEmail]: the form of [CanonicalEmail]; ref is unused.
//   - [TypePhone]: the E.164 form of [CanonicalPhone]; ref is unused.
//   - [TypeNorwegianNumber]: the 11 digits of [ParseNorwegianNumber]; ref
//     is unused. H-numbers are refused with [ErrInterimNumber]: they are
//     assigned inside the health sector, not by the Folkeregister, and a
//     bank never authenticates anyone by one. Synthetic test numbers
//     (month + 80) are accepted: see [SyntheticNumber].
//   - [TypeDanishNumber]: the 10 digits of [ParseDanishNumber], whether or
//     not they pass the modulus-11 check.
//   - [TypeFinnishNumber]: the 11 upper-case characters of
//     [ParseFinnishNumber]. Temporary codes (individual number 900–999) are
//     refused with [ErrInterimNumber], as Swedish interim numbers are.
//   - The payee types ([PayeeTypes]): [CanonicalIBAN], the form of
//     [SwedishAccount.String], the digits of a bankgiro or plusgiro number,
//     and [CanonicalSwish]; ref is unused.
//
// Every error is an [*IdentifierError].
func Canonicalize(t IdentifierType, s string, ref time.Time) (string, error) {
	switch t {
	case TypePersonalNumber:
		p, err := ParsePersonalNumber(s, ref)
		if err != nil {
			return "", err
		}
		if p.Kind() == InterimNumber {
			return "", pnrError(ErrInterimNumber, "interim numbers are assigned locally and issued by no authority, so they cannot identify a person across members")
		}
		return p.String(), nil
	case TypeEmail:
		return CanonicalEmail(s)
	case TypePhone:
		return CanonicalPhone(s)
	case TypeNorwegianNumber:
		return canonicalNorwegian(s)
	case TypeDanishNumber:
		return canonicalDanish(s, ref)
	case TypeFinnishNumber:
		return canonicalFinnish(s, ref)
	}
	return canonicalPayee(t, s)
}

// A PersonalNumberKind says which kind of Swedish personal identity number a
// [PersonalNumber] is.
type PersonalNumberKind int

const (
	// Personnummer is a personal identity number issued by Skatteverket to
	// people registered in Sweden.
	Personnummer PersonalNumberKind = iota + 1
	// Samordningsnummer is a coordination number, issued to people who are
	// not registered in Sweden; its day of birth is increased by 60.
	Samordningsnummer
	// InterimNumber is a temporary number assigned locally, for instance by a
	// hospital, with a letter in place of the first serial digit.
	InterimNumber
)

// String returns "ssn", "con" or "interim", the names used by the
// personnummer project's shared test data.
func (k PersonalNumberKind) String() string {
	switch k {
	case Personnummer:
		return "ssn"
	case Samordningsnummer:
		return "con"
	case InterimNumber:
		return "interim"
	}
	return fmt.Sprintf("PersonalNumberKind(%d)", int(k))
}

// A PersonalNumber is a well-formed Swedish personnummer, samordningsnummer
// or interim number, held in its canonical 12-character form. The zero value
// is no number.
type PersonalNumber struct {
	s    string // YYYYMMDDNNNC, with an upper-case letter for N in interim numbers
	kind PersonalNumberKind
}

// interimLetters are the letters that may replace the first serial digit of
// an interim number.
const interimLetters = "TRSUWXJKLMN"

// ParsePersonalNumber parses a personnummer, samordningsnummer or interim
// number relative to the reference date ref.
//
// s has 10 digits (YYMMDDNNNC) or 12 (YYYYMMDDNNNC), optionally with a "-"
// or "+" just before the last four; surrounding white space is ignored and
// nothing else is allowed. The century of a 10-digit form follows
// Skatteverket's rule, by year: with "-" or no separator the person turns at
// most 99 in ref's year, with "+" at least 100 (and at most 199). A 12-digit
// form carries its century, so its separator, if any, is ignored. ref's
// calendar date is taken in ref's own location.
//
// The date part must be a calendar date no later than ref, with 60 added to
// the day for a samordningsnummer; the serial number must not be 000; and the
// last digit must be the Luhn check digit of the 10-digit form YYMMDDNNN. An
// interim number has one of the letters T R S U W X J K L M N (in either case)
// as the first serial character, counted as 1 for the check digit.
//
// Every error is an [*IdentifierError] of type [TypePersonalNumber].
func ParsePersonalNumber(s string, ref time.Time) (PersonalNumber, error) {
	body, sep, err := splitPersonalNumber(strings.TrimSpace(s))
	if err != nil {
		return PersonalNumber{}, err
	}
	off := len(body) - 10 // 0 or 2: where YYMMDDNNNC begins
	kind := Personnummer
	serial := []byte(body[off+6 : off+9])
	if c := serial[0]; c >= 'A' {
		c &^= 'a' - 'A' // upper case
		if strings.IndexByte(interimLetters, c) < 0 {
			return PersonalNumber{}, pnrError(ErrIdentifierSyntax, "the first serial character is a letter that no interim number uses (only T R S U W X J K L M N)")
		}
		serial[0] = c
		kind = InterimNumber
	}

	yy := atoi(body[off : off+2])
	month := atoi(body[off+2 : off+4])
	dd := atoi(body[off+4 : off+6])

	refYear, refMonth, refDay := ref.Date()
	var year int
	if off == 2 {
		year = atoi(body[:4])
	} else {
		year = refYear - (refYear-yy)%100
		if (refYear-yy)%100 < 0 {
			year -= 100
		}
		if sep == '+' {
			year -= 100
		}
		if year < 0 {
			return PersonalNumber{}, pnrError(ErrInvalidDate, fmt.Sprintf("the reference date %s is too early to resolve the century", ref.Format(time.DateOnly)))
		}
	}

	day := dd
	if dd > 60 {
		day = dd - 60
		if kind == Personnummer {
			kind = Samordningsnummer
		}
	}
	switch {
	case month < 1 || month > 12:
		return PersonalNumber{}, pnrError(ErrInvalidDate, fmt.Sprintf("there is no month %02d", month))
	case dd == 0 || (dd > 31 && dd < 61) || dd > 91:
		return PersonalNumber{}, pnrError(ErrInvalidDate, fmt.Sprintf("day %02d is neither a day of the month (01-31) nor a coordination number's day (61-91)", dd))
	case day > daysIn(year, time.Month(month)):
		return PersonalNumber{}, pnrError(ErrInvalidDate, fmt.Sprintf("%s of that year has no day %d", time.Month(month), day))
	}
	if year > refYear ||
		year == refYear && (time.Month(month) > refMonth || time.Month(month) == refMonth && day > refDay) {
		return PersonalNumber{}, pnrError(ErrFutureDate, fmt.Sprintf("the birth date is after the reference date %s", ref.Format(time.DateOnly)))
	}

	if string(serial) == "000" {
		return PersonalNumber{}, pnrError(ErrInvalidSerial, "serial number 000 is never issued")
	}
	if got, want := int(body[off+9]-'0'), luhn(body[off:off+9]); got != want {
		return PersonalNumber{}, pnrError(ErrCheckDigit, fmt.Sprintf("check digit is %d, expected %d", got, want))
	}

	canonical := fmt.Sprintf("%04d%02d%02d%s%c", year, month, dd, serial, body[off+9])
	return PersonalNumber{s: canonical, kind: kind}, nil
}

// String returns the canonical 12-character form YYYYMMDDNNNC, or "" for the
// zero PersonalNumber.
func (p PersonalNumber) String() string { return p.s }

// Kind returns whether p is a personnummer, a samordningsnummer or an
// interim number.
func (p PersonalNumber) Kind() PersonalNumberKind { return p.kind }

// BirthDate returns the calendar date of birth encoded in p, at midnight UTC;
// for a samordningsnummer, that is the encoded day minus 60. It returns the
// zero time for the zero PersonalNumber.
func (p PersonalNumber) BirthDate() time.Time {
	if p.s == "" {
		return time.Time{}
	}
	day := atoi(p.s[6:8])
	if day > 60 {
		day -= 60
	}
	return time.Date(atoi(p.s[:4]), time.Month(atoi(p.s[4:6])), day, 0, 0, 0, 0, time.UTC)
}

// CanonicalEmail returns the canonical form of the e-mail address s.
//
// Surrounding white space is trimmed. The address must have exactly one "@";
// quoted local parts, comments, angle brackets and address literals such as
// "[192.0.2.1]" are refused. The domain is converted to ASCII with the IDNA
// lookup profile (so "BÜCHER.example" becomes "xn--bcher-kva.example"),
// lower-cased, and must have at least two labels and no trailing dot. The
// IDNA (UTS 46) mapping removes the characters it ignores, invisible ones
// among them, such as the zero-width space U+200B, the soft hyphen U+00AD
// and the byte order mark U+FEFF: "anna@exa\u200bmple.se" is
// "anna@example.se", so an invisible character cannot make a second domain
// of the same name. The zero-width joiners U+200C and U+200D are refused
// there (IDNA allows them only after a virama and similar contexts). In the
// local part, invisible format characters (Unicode category Cf) such as
// U+200B are refused.
//
// The local part is normalised to NFC and lower-cased. RFC 5321 lets a mail
// server treat it as case-sensitive, but providers treat it
// case-insensitively in practice, and a fraudster must not evade a flag by
// changing case. Dots and "+tags" are kept: whether they matter is
// provider-specific, and removing them would merge distinct mailboxes. The
// local part consists of RFC 5322 atext and non-ASCII UTF-8 (RFC 6531)
// letters, marks, numbers, punctuation and symbols, with dots neither leading,
// trailing nor doubled. In canonical form the local part is at most 64 octets
// and the address at most 254.
//
// Every error is an [*IdentifierError] of type [TypeEmail] wrapping
// [ErrInvalidEmail].
func CanonicalEmail(s string) (string, error) {
	if !utf8.ValidString(s) {
		return "", emailError("the address is not valid UTF-8")
	}
	s = strings.TrimSpace(s)
	switch {
	case s == "":
		return "", emailError("the address is empty")
	case strings.ContainsRune(s, '"'):
		return "", emailError(`quoted local parts ("...") are not accepted`)
	case strings.ContainsAny(s, "()"):
		return "", emailError("comments in parentheses are not accepted")
	case strings.ContainsAny(s, "<>"):
		return "", emailError("angle brackets are not accepted; give the bare address")
	}
	local, domain, ok := strings.Cut(s, "@")
	switch {
	case !ok:
		return "", emailError("the address has no @")
	case strings.Contains(domain, "@"):
		return "", emailError("the address has more than one @")
	case local == "":
		return "", emailError("the local part (before the @) is empty")
	case domain == "":
		return "", emailError("the domain (after the @) is empty")
	}

	local = norm.NFC.String(strings.ToLower(norm.NFC.String(local)))
	if err := checkEmailLocal(local); err != nil {
		return "", err
	}
	domain, err := canonicalDomain(domain)
	if err != nil {
		return "", err
	}

	addr := local + "@" + domain
	if len(local) > 64 {
		return "", emailError(fmt.Sprintf("the local part is %d octets long; at most 64 are allowed", len(local)))
	}
	if len(addr) > 254 {
		return "", emailError(fmt.Sprintf("the address is %d octets long; at most 254 are allowed", len(addr)))
	}
	return addr, nil
}

// CanonicalPhone returns the E.164 form of the phone number s, such as
// "+46701234567". Numbers without a country calling code are read as
// Swedish, so "070-123 45 67" and "+46 70 123 45 67" have the same canonical
// form. The number must be valid, not merely possible, for its region: a
// number in a range no operator is assigned is refused. An extension is not
// part of the canonical form.
//
// Every error is an [*IdentifierError] of type [TypePhone] wrapping
// [ErrInvalidPhone].
func CanonicalPhone(s string) (string, error) {
	if !utf8.ValidString(s) {
		return "", phoneError("the number is not valid UTF-8")
	}
	s = strings.TrimSpace(s)
	if s == "" {
		return "", phoneError("the number is empty")
	}
	num, err := phonenumbers.Parse(s, "SE")
	if err != nil {
		switch {
		case errors.Is(err, phonenumbers.ErrInvalidCountryCode):
			return "", phoneError("the country calling code does not exist")
		case errors.Is(err, phonenumbers.ErrTooShortNSN), errors.Is(err, phonenumbers.ErrTooShortAfterIDD):
			return "", phoneError("the number has too few digits")
		case errors.Is(err, phonenumbers.ErrNumTooLong):
			return "", phoneError("the number is too long")
		}
		return "", phoneError("the text is not a phone number")
	}
	if !phonenumbers.IsValidNumber(num) {
		switch phonenumbers.IsPossibleNumberWithReason(num) {
		case phonenumbers.INVALID_COUNTRY_CODE:
			return "", phoneError("the country calling code does not exist")
		case phonenumbers.TOO_SHORT:
			return "", phoneError("the number has too few digits for its country")
		case phonenumbers.TOO_LONG:
			return "", phoneError("the number has too many digits for its country")
		case phonenumbers.INVALID_LENGTH:
			return "", phoneError("the number has the wrong number of digits for its country")
		}
		return "", phoneError("the number is not in a range assigned in its country")
	}
	return phonenumbers.Format(num, phonenumbers.E164), nil
}

// splitPersonalNumber checks the characters and separator of a trimmed
// personnummer and returns its 10 or 12 characters without the separator,
// and the separator ('-', '+' or 0). On success, body is ASCII: digits,
// except perhaps a letter at the first serial position.
func splitPersonalNumber(s string) (body string, sep byte, err error) {
	sepAt := -1
	n := 0 // characters seen
	for _, r := range s {
		n++
		switch {
		case r >= '0' && r <= '9', r >= 'A' && r <= 'Z', r >= 'a' && r <= 'z':
		case r == '-' || r == '+':
			if sepAt >= 0 {
				return "", 0, pnrError(ErrIdentifierSyntax, "there is more than one separator")
			}
			sepAt = n - 1
		case unicode.IsSpace(r):
			return "", 0, pnrError(ErrIdentifierSyntax, fmt.Sprintf("character %d is a space; only digits and one - or + before the last four are allowed", n))
		default:
			return "", 0, pnrError(ErrIdentifierSyntax, fmt.Sprintf("character %d is not a digit or separator", n))
		}
	}
	// s is now known to be ASCII.
	body = s
	if sepAt >= 0 {
		if sepAt != len(s)-5 {
			return "", 0, pnrError(ErrIdentifierSyntax, fmt.Sprintf("the separator is character %d; it belongs just before the last four", sepAt+1))
		}
		sep = s[sepAt]
		body = s[:sepAt] + s[sepAt+1:]
	}
	if len(body) != 10 && len(body) != 12 {
		return "", 0, pnrError(ErrIdentifierSyntax, fmt.Sprintf("there are %d digits; expected 10 (YYMMDDNNNC) or 12 (YYYYMMDDNNNC)", len(body)))
	}
	for i := 0; i < len(body); i++ {
		if c := body[i]; (c < '0' || c > '9') && i != len(body)-4 {
			return "", 0, pnrError(ErrIdentifierSyntax, "a letter stands where a digit belongs; only the first serial character of an interim number may be a letter")
		}
	}
	return body, sep, nil
}

// luhn returns the Luhn check digit of s, a string of digits in which a
// letter counts as 1, with weights 2, 1, 2, … from the left.
func luhn(s string) int {
	sum := 0
	for i := 0; i < len(s); i++ {
		d := 1
		if c := s[i]; c >= '0' && c <= '9' {
			d = int(c - '0')
		}
		if i%2 == 0 {
			d *= 2
			if d > 9 {
				d -= 9
			}
		}
		sum += d
	}
	return (10 - sum%10) % 10
}

// atoi returns the value of s, a string of ASCII digits.
func atoi(s string) int {
	n := 0
	for i := 0; i < len(s); i++ {
		n = n*10 + int(s[i]-'0')
	}
	return n
}

// daysIn returns the number of days in month m of year.
func daysIn(year int, m time.Month) int {
	return time.Date(year, m+1, 0, 0, 0, 0, 0, time.UTC).Day()
}

// checkEmailLocal checks a canonical local part's characters and dots.
func checkEmailLocal(local string) error {
	if local[0] == '.' || local[len(local)-1] == '.' {
		return emailError("the local part starts or ends with a dot")
	}
	if strings.Contains(local, "..") {
		return emailError("the local part has two dots in a row")
	}
	for i, r := range local {
		switch {
		case r < utf8.RuneSelf:
			if !isAtext(byte(r)) && r != '.' {
				if r == ' ' || r == '\t' {
					return emailError("the local part contains white space")
				}
				return emailError(fmt.Sprintf("the local part contains %q, which is not allowed unquoted", string(r)))
			}
		case !unicode.IsGraphic(r) || unicode.IsSpace(r):
			return emailError(fmt.Sprintf("the local part contains an invisible or control character (U+%04X) at octet %d", r, i+1))
		}
	}
	return nil
}

// isAtext reports whether c is an ASCII character of RFC 5322 atext.
func isAtext(c byte) bool {
	switch {
	case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		return true
	}
	return strings.IndexByte("!#$%&'*+-/=?^_`{|}~", c) >= 0
}

// canonicalDomain returns the lower-case ASCII form of an e-mail domain.
func canonicalDomain(domain string) (string, error) {
	if strings.HasPrefix(domain, "[") {
		return "", emailError("address literals ([...]) are not accepted")
	}
	ascii, err := idna.Lookup.ToASCII(domain)
	if err != nil {
		// The idna error quotes the offending label; keep it out.
		return "", emailError("the domain is not a valid domain name")
	}
	ascii = strings.ToLower(ascii)
	if strings.HasSuffix(ascii, ".") {
		return "", emailError("the domain ends with a dot")
	}
	labels := strings.Split(ascii, ".")
	for _, l := range labels {
		if l == "" {
			return "", emailError("the domain has an empty label")
		}
		if len(l) > 63 {
			return "", emailError(fmt.Sprintf("a domain label is %d octets long; at most 63 are allowed", len(l)))
		}
	}
	if len(labels) < 2 {
		return "", emailError("the domain has a single label; expected a name such as example.se")
	}
	if strings.Trim(labels[len(labels)-1], "0123456789") == "" {
		return "", emailError("the domain ends in a numeric label; IP addresses are not accepted")
	}
	return ascii, nil
}

func unknownTypeError(name string) error {
	return &IdentifierError{
		Err:    ErrUnknownIdentifierType,
		Detail: fmt.Sprintf("unknown identifier type %.20q; the types are %s", name, typeList()),
	}
}

func pnrError(sentinel error, detail string) error {
	return &IdentifierError{Type: TypePersonalNumber, Err: sentinel, Detail: detail}
}

func emailError(detail string) error {
	return &IdentifierError{Type: TypeEmail, Err: ErrInvalidEmail, Detail: detail}
}

func phoneError(detail string) error {
	return &IdentifierError{Type: TypePhone, Err: ErrInvalidPhone, Detail: detail}
}
