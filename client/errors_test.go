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
	}{
		{"", 0, 0, false},
		{"120", 120 * time.Second, 120 * time.Second, true},
		{time.Now().Add(time.Hour).UTC().Format(http.TimeFormat), 58 * time.Minute, time.Hour, true},
		{"Sun, 06 Nov 1994 08:49:37 GMT", 0, 0, true},
		{"18446744074", math.MaxInt64, math.MaxInt64, true}, // 2⁶⁴ ns and a bit: not wrapped round
		{"soon", 0, 0, true},
	} {
		resp := &http.Response{StatusCode: http.StatusTooManyRequests, Header: http.Header{}, Body: io.NopCloser(strings.NewReader(""))}
		if tc.value != "" {
			resp.Header.Set("Retry-After", tc.value)
		}
		p := readProblem("test", resp)
		if p.RetryAfter < tc.min || p.RetryAfter > tc.max || p.hasRetryAfter != tc.has {
			t.Errorf("Retry-After %q: got %s, %t, want %s to %s, %t", tc.value, p.RetryAfter, p.hasRetryAfter, tc.min, tc.max, tc.has)
		}
	}
}
