package protocol

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"time"
)

// A NumericDate is a time on the wire: whole seconds since the Unix epoch,
// as in JWT (RFC 7519, section 2), from 0 to [MaxNumericDate]. Every time
// in a record, submission or bearer token is a NumericDate.
type NumericDate int64

// MaxNumericDate is the latest time a NumericDate may hold on the wire,
// 2199-12-31T23:59:59Z. The span between any two times in range, or
// between one and the present, then fits a signed 64-bit count of
// nanoseconds (Go's time.Duration, and duration types of other languages),
// so no comparison of times overflows; and no flag, consent or token
// lasts anywhere near so long.
const MaxNumericDate NumericDate = 7258118399

// NewNumericDate returns t as a NumericDate, dropping fractions of a second.
// The zero time gives 0, which every verifier treats as absent.
func NewNumericDate(t time.Time) NumericDate {
	if t.IsZero() {
		return 0
	}
	return NumericDate(t.Unix())
}

// Time returns d as a time in UTC.
func (d NumericDate) Time() time.Time {
	return time.Unix(int64(d), 0).UTC()
}

// IsZero reports whether d is absent.
func (d NumericDate) IsZero() bool { return d == 0 }

// String formats d as RFC 3339, for people.
func (d NumericDate) String() string {
	if d == 0 {
		return "(none)"
	}
	return d.Time().Format(time.RFC3339)
}

// UnmarshalJSON accepts a JSON integer only: no fractions, no strings, no
// exponent, so that one time has one encoding; and from 0 to
// [MaxNumericDate] only.
func (d *NumericDate) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		return fmt.Errorf("time must be an integer number of seconds, not null")
	}
	n, err := strconv.ParseInt(string(b), 10, 64)
	switch {
	case errors.Is(err, strconv.ErrRange) && b[0] == '-', err == nil && n < 0:
		return fmt.Errorf("time must not be before 1970")
	case errors.Is(err, strconv.ErrRange), err == nil && n > int64(MaxNumericDate):
		digits := string(b)
		if len(digits) > 24 {
			digits = digits[:20] + "…"
		}
		return fmt.Errorf("time %s is out of range: seconds since 1970 must be at most %d (%s)", digits, int64(MaxNumericDate), MaxNumericDate)
	case err != nil:
		return fmt.Errorf("time must be an integer number of seconds since 1970-01-01T00:00:00Z")
	}
	*d = NumericDate(n)
	return nil
}

// Base64URL is a byte string that travels in JSON as unpadded base64url
// (RFC 4648, section 5), the encoding JOSE uses. Decoding is strict: padding,
// line breaks and non-canonical trailing bits are refused, so each byte
// string has exactly one text.
type Base64URL []byte

var b64url = base64.RawURLEncoding.Strict()

// MarshalText encodes b as unpadded base64url.
func (b Base64URL) MarshalText() ([]byte, error) {
	out := make([]byte, b64url.EncodedLen(len(b)))
	b64url.Encode(out, b)
	return out, nil
}

// UnmarshalText decodes unpadded base64url.
func (b *Base64URL) UnmarshalText(text []byte) error {
	// encoding/base64 skips '\r' and '\n' even in strict mode.
	if i := bytes.IndexAny(text, "\r\n"); i >= 0 {
		return fmt.Errorf("not unpadded base64url: line break at offset %d", i)
	}
	out := make([]byte, b64url.DecodedLen(len(text)))
	n, err := b64url.Decode(out, text)
	if err != nil {
		return fmt.Errorf("not unpadded base64url: %w", err)
	}
	*b = out[:n]
	return nil
}

// String returns the base64url text.
func (b Base64URL) String() string { return b64url.EncodeToString(b) }
