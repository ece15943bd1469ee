package protocol_test

import (
	"math"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/sparr-dev/sparr/protocol"
)

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		value string
		want  time.Duration
		ok    bool
	}{
		{"120", 120 * time.Second, true},
		{"0", 0, true},
		{" 5 ", 5 * time.Second, true},
		{now.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second, true},
		{now.Add(-time.Hour).Format(http.TimeFormat), 0, true}, // in the past
		{now.Format(http.TimeFormat), 0, true},
		{"Sunday, 06-Nov-94 08:49:37 GMT", 0, true}, // RFC 850 form, long past
		{"Sun Nov  6 08:49:37 1994", 0, true},       // asctime form, long past
		{"Sat Nov 21 10:01:00 2026", time.Minute, true},
		{"", 0, false},
		{"   ", 0, false},
		{"soon", 0, false},
		{"-5", 0, false},
		{"+5", 0, false},
		{"1.5", 0, false},
		{"5s", 0, false},
		{"0x10", 0, false},
		{"9223372036", 9223372036 * time.Second, true},         // the most seconds a Duration holds
		{"9223372037", math.MaxInt64, true},                    // one more
		{"99999999999999999999999999", math.MaxInt64, true},    // too long for any integer
		{"Fri, 31 Dec 9999 23:59:59 GMT", math.MaxInt64, true}, // further than a Duration reaches
	} {
		got, ok := protocol.ParseRetryAfter(tc.value, now)
		if got != tc.want || ok != tc.ok {
			t.Errorf("ParseRetryAfter(%q): got %s, %t, want %s, %t", tc.value, got, ok, tc.want, tc.ok)
		}
	}
}

func FuzzParseRetryAfter(f *testing.F) {
	now := time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)
	for _, s := range []string{"120", " 5 ", "-5", "+5", "1.5", "9223372037", "99999999999999999999999999",
		now.Add(90 * time.Second).Format(http.TimeFormat), "Sunday, 06-Nov-94 08:49:37 GMT", "Sun Nov  6 08:49:37 1994", "soon"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		d, ok := protocol.ParseRetryAfter(v, now)
		if d < 0 {
			t.Fatalf("ParseRetryAfter(%q): got %s, want no negative wait", v, d)
		}
		if !ok && d != 0 {
			t.Fatalf("ParseRetryAfter(%q): got %s with false, want 0", v, d)
		}
		digits := strings.TrimSpace(v)
		if digits != "" && strings.Trim(digits, "0123456789") == "" && !ok {
			t.Fatalf("ParseRetryAfter(%q): got false for a number of seconds", v)
		}
	})
}
