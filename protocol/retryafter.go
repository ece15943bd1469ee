package protocol

import (
	"errors"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// ParseRetryAfter reads the value of a Retry-After header (RFC 9110,
// section 10.2.3): a number of seconds (digits only, no sign) or an HTTP
// date. It reports whether v is either; for anything else it returns 0,
// false. A date not after now gives 0, true: the sender asked for no
// wait. A number of seconds or a date too far for a Duration gives the
// largest Duration, for the caller to cap. Surrounding white space is
// ignored.
func ParseRetryAfter(v string, now time.Time) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	s, err := strconv.ParseUint(v, 10, 64)
	switch {
	case err == nil && s <= math.MaxInt64/uint64(time.Second):
		return time.Duration(s) * time.Second, true
	case err == nil || errors.Is(err, strconv.ErrRange):
		return math.MaxInt64, true
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(t.Sub(now), 0), true
	}
	return 0, false
}
