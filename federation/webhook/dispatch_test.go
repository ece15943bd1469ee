package webhook

import (
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
	"time"
)

func TestClassify(t *testing.T) {
	for _, tc := range []struct {
		status int
		want   string
	}{
		{0, "failed"}, // no answer: timeout, refused or reset connection
		{101, "failed"},
		{200, "delivered"}, {201, "delivered"}, {202, "delivered"}, {204, "delivered"}, {299, "delivered"},
		{300, "failed"}, {301, "failed"}, {302, "failed"}, {304, "failed"}, {307, "failed"}, {308, "failed"},
		{400, "dead-lettered"}, {401, "dead-lettered"}, {403, "dead-lettered"}, {404, "dead-lettered"},
		{405, "dead-lettered"}, {409, "dead-lettered"}, {413, "dead-lettered"}, {415, "dead-lettered"},
		{422, "dead-lettered"}, {451, "dead-lettered"}, {499, "dead-lettered"},
		{408, "failed"}, {429, "failed"},
		{410, "gone"},
		{500, "failed"}, {501, "failed"}, {502, "failed"}, {503, "failed"}, {504, "failed"}, {599, "failed"},
		{600, "failed"},
	} {
		if got := classify(Attempt{Status: tc.status}); got != tc.want {
			t.Errorf("classify(HTTP %d): got %s, want %s", tc.status, got, tc.want)
		}
	}
}

func TestDefaultSchedule(t *testing.T) {
	want := []time.Duration{0, 5 * time.Second, 5 * time.Minute, 30 * time.Minute, 2 * time.Hour, 5 * time.Hour, 10 * time.Hour, 10 * time.Hour}
	if !slices.Equal(DefaultSchedule, want) {
		t.Errorf("got DefaultSchedule %v, want %v", DefaultSchedule, want)
	}
	d := NewDispatcher(DispatcherConfig{})
	if !slices.Equal(d.cfg.Schedule, want) {
		t.Errorf("got schedule %v from a nil Schedule, want the default", d.cfg.Schedule)
	}
	var total time.Duration
	for _, w := range want {
		total += w
	}
	if want := 27*time.Hour + 35*time.Minute + 5*time.Second; total != want {
		t.Errorf("got the schedule spanning %s, want %s (as docs/delivery.md says)", total, want)
	}
}

func TestJitter(t *testing.T) {
	const wait = 10 * time.Minute
	for _, tc := range []struct {
		jitter, r float64
		want      time.Duration
	}{
		{0.1, 0, 9 * time.Minute},
		{0.1, 0.5, wait},
		{0.1, 0.75, wait + 30*time.Second},
		{0, 0, wait},
		{0, 0.999, wait},
		{1, 0, 0},
		{1, 0.5, wait},
	} {
		if got := jittered(wait, tc.jitter, tc.r); got != tc.want {
			t.Errorf("jittered(%s, %v, %v): got %s, want %s", wait, tc.jitter, tc.r, got, tc.want)
		}
	}
	if got := jittered(0, 0.1, 0); got != 0 {
		t.Errorf("jittered(0, 0.1, 0): got %s, want 0: an immediate retry stays immediate", got)
	}
	if got := jittered(wait, 0.1, math.Nextafter(1, 0)); got > 11*time.Minute || got < 10*time.Minute {
		t.Errorf("jittered(%s, 0.1, just under 1): got %s, want in [10m, 11m]", wait, got)
	}

	ptr := func(f float64) *float64 { return &f }
	for _, tc := range []struct {
		cfg  *float64
		want float64
	}{
		{nil, DefaultJitter}, {ptr(0), 0}, {ptr(0.25), 0.25}, {ptr(-1), 0}, {ptr(3), 1},
	} {
		if got := NewDispatcher(DispatcherConfig{Jitter: tc.cfg}).jitter; got != tc.want {
			t.Errorf("Jitter %v: got jitter %v, want %v", tc.cfg, got, tc.want)
		}
	}
}

// TestNext: a retry waits for the schedule's step, spread by no more than
// the jitter, or for the receiver's Retry-After, capped.
func TestNext(t *testing.T) {
	at := time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)
	off := 0.0
	exact := NewDispatcher(DispatcherConfig{Jitter: &off})
	for i, w := range DefaultSchedule {
		if got := exact.next(i, Attempt{At: at}).Sub(at); got != w {
			t.Errorf("without jitter, after %d failures: got a wait of %s, want %s", i, got, w)
		}
	}
	spread := NewDispatcher(DispatcherConfig{})
	for range 1000 {
		w := DefaultSchedule[3]
		got := spread.next(3, Attempt{At: at}).Sub(at)
		if lo, hi := w*9/10, w*11/10; got < lo || got > hi {
			t.Fatalf("with the default jitter: got a wait of %s, want within [%s, %s]", got, lo, hi)
		}
	}
	if got := spread.next(0, Attempt{At: at, RetryAfter: 90 * time.Second}).Sub(at); got != 90*time.Second {
		t.Errorf("with Retry-After 90 s: got a wait of %s, want 90s", got)
	}
	// The wait counts from the answer: a receiver that took 300 ms to say
	// "retry after 1 s" is not tried again 700 ms after it answered.
	if got := spread.next(0, Attempt{At: at, Latency: 300 * time.Millisecond, RetryAfter: time.Second}).Sub(at); got != 1300*time.Millisecond {
		t.Errorf("with Retry-After 1 s after 300 ms: got a wait of %s from the start, want 1.3s", got)
	}
	if got := spread.next(0, Attempt{At: at, RetryAfter: math.MaxInt64}).Sub(at); got != 24*time.Hour {
		t.Errorf("with a huge Retry-After: got a wait of %s, want the 24h cap", got)
	}
}

// TestAttemptRetryAfter: a receiver's Retry-After is kept for every answer
// that is retried (408, 429, 3xx, 5xx), and for no other.
func TestAttemptRetryAfter(t *testing.T) {
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		status int
		want   time.Duration
	}{
		{http.StatusTooManyRequests, 7 * time.Second},
		{http.StatusInternalServerError, 7 * time.Second},
		{http.StatusBadGateway, 7 * time.Second},
		{http.StatusServiceUnavailable, 7 * time.Second},
		{http.StatusGatewayTimeout, 7 * time.Second},
		{http.StatusRequestTimeout, 7 * time.Second},
		{http.StatusTemporaryRedirect, 7 * time.Second},
		{http.StatusAccepted, 0},
		{http.StatusBadRequest, 0},
		{http.StatusGone, 0},
	} {
		t.Run(fmt.Sprint(tc.status), func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.Method != http.MethodPost {
					t.Errorf("got method %s, want POST", r.Method)
				}
				w.Header().Set("Retry-After", "7")
				w.Header().Set("Location", "/elsewhere")
				w.WriteHeader(tc.status)
			}))
			defer srv.Close()
			client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
			d := NewDispatcher(DispatcherConfig{Client: client, HubKey: key})
			defer d.Close()
			a, cut, unsigned := d.attempt(&Endpoint{Member: "bank-b", URL: srv.URL}, Delivery{Seq: 1, WebhookID: "rec_bank-b", Body: []byte("body")})
			if cut || unsigned != nil {
				t.Fatalf("got the attempt cut off (%t) or unsigned (%v), want an answer", cut, unsigned)
			}
			if a.Status != tc.status || a.RetryAfter != tc.want || a.URL != srv.URL {
				t.Errorf("got status %d, Retry-After %s, URL %q; want %d, %s, %q", a.Status, a.RetryAfter, a.URL, tc.status, tc.want, srv.URL)
			}
		})
	}
}
