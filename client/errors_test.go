package client

import (
	"io"
	"math"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestReadProblemRetryAfter: an answer's Retry-After is read as seconds or
// a date; one too large for a Duration is the largest, which is over any
// MaxWait, and any Retry-After at all makes the answer worth retrying.
func TestReadProblemRetryAfter(t *testing.T) {
	for _, tc := range []struct {
		value    string
		min, max time.Duration
		has      bool
		// told: the value was one the client could read, so that
		// RetryAfter, even zero, is what the hub asked for.
		told bool
	}{
		{"", 0, 0, false, false},
		{"120", 120 * time.Second, 120 * time.Second, true, true},
		{"0", 0, 0, true, true},
		{time.Now().Add(time.Hour).UTC().Format(http.TimeFormat), 58 * time.Minute, time.Hour, true, true},
		{"Sun, 06 Nov 1994 08:49:37 GMT", 0, 0, true, true},
		{"18446744074", math.MaxInt64, math.MaxInt64, true, true}, // 2⁶⁴ ns and a bit: not wrapped round
		{"soon", 0, 0, true, false},
	} {
		resp := &http.Response{StatusCode: http.StatusTooManyRequests, Header: http.Header{}, Body: io.NopCloser(strings.NewReader(""))}
		if tc.value != "" {
			resp.Header.Set("Retry-After", tc.value)
		}
		p := readProblem("test", resp)
		if p.RetryAfter < tc.min || p.RetryAfter > tc.max || p.hasRetryAfter != tc.has || p.toldWhen != tc.told {
			t.Errorf("Retry-After %q: got %s, has %t, told %t; want %s to %s, %t, %t", tc.value, p.RetryAfter, p.hasRetryAfter, p.toldWhen, tc.min, tc.max, tc.has, tc.told)
		}
	}
}
