package server_test

import (
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sparr-dev/sparr/protocol"
	"github.com/sparr-dev/sparr/protocol/api"
	"github.com/sparr-dev/sparr/server"
	"github.com/sparr-dev/sparr/server/hubtest"
)

// TestMetricLabelsAreBounded: requests with made-up methods, to routes
// that exist and to routes that do not, with and without a bearer, add no
// series beyond one "other" method per route and status. Every label
// value comes from the hub, never from the request.
func TestMetricLabelsAreBounded(t *testing.T) {
	reg := prometheus.NewRegistry()
	hub := hubtest.Start(t, hubtest.Options{Configure: func(c *server.Config) { c.Registry = reg }})
	for i := range 200 {
		for _, path := range []string{"/v1/events", "/healthz", fmt.Sprintf("/no/such/%d", i)} {
			hub.Anonymous(t, fmt.Sprintf("M%06d", i), path, "", nil)
		}
	}
	hub.Operator.Do(t, http.MethodGet, "/v1/admin/members", "", nil)
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	series := map[string]int{}
	methods := map[string]bool{}
	for _, f := range families {
		series[f.GetName()] = len(f.GetMetric())
		if f.GetName() != "sparr_http_requests_total" {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "method" {
					methods[l.GetValue()] = true
				}
			}
		}
	}
	if n := series["sparr_http_requests_total"]; n > 10 {
		t.Errorf("got %d series of sparr_http_requests_total after 600 requests with made-up methods, want at most 10", n)
	}
	if n := series["sparr_http_request_duration_seconds"]; n > 10 {
		t.Errorf("got %d series of sparr_http_request_duration_seconds, want at most 10", n)
	}
	if len(methods) != 2 || !methods["other"] || !methods[http.MethodGet] {
		t.Errorf("got %d method labels, want 2 (GET and other)", len(methods))
	}
}

// TestBuildInfo: sparr_build_info is 1, labelled with the build the hub
// is given, and with the binary's own when it is given none.
func TestBuildInfo(t *testing.T) {
	build := server.Build{Version: "v1.2.3", Revision: "0123456789abcdef", Modified: true, GoVersion: "go1.26.0"}
	hub := hubtest.Start(t, hubtest.Options{Configure: func(c *server.Config) { c.Build = build }})
	series := `sparr_build_info{goversion="go1.26.0",revision="0123456789abcdef-modified",version="v1.2.3"}`
	if got := metricValue(t, hub, series); got != 1 {
		t.Errorf("got %s = %v, want 1", series, got)
	}

	hub = hubtest.Start(t, hubtest.Options{})
	own := server.ReadBuild("")
	series = fmt.Sprintf(`sparr_build_info{goversion=%q,revision=%q,version=%q}`, runtime.Version(), own.Revision, own.Version)
	if got := metricValue(t, hub, series); got != 1 {
		t.Errorf("got %s = %v, want 1", series, got)
	}
}

// TestLogMetrics: sparr_log_entries is the exchange log's size at each
// scrape; sparr_checkpoint_entries and sparr_checkpoint_age_seconds follow
// the latest checkpoint the hub signed, and a restarted hub dates the
// checkpoint it finds by the newest entry it covers.
func TestLogMetrics(t *testing.T) {
	clock := hubtest.NewClock(time.Now().UTC().Truncate(time.Second))
	// The hub signs no checkpoint of its own during the test, however
	// slowly it runs: the one signed here is the one measured.
	hub := hubtest.Start(t, hubtest.Options{Clock: clock, Configure: func(c *server.Config) { c.CheckpointInterval = 24 * time.Hour }})
	bank := hub.AddMember(t, "bank-a", api.RoleFlag)
	place(t, bank, bank.Tokenize(t, protocol.TypeEmail, "log-metrics@example.se")[0])
	if _, err := hub.PublishCheckpoint(); err != nil {
		t.Fatal(err)
	}
	place(t, bank, bank.Tokenize(t, protocol.TypeEmail, "log-metrics-2@example.se")[0])
	clock.Advance(90 * time.Second)

	check := func(when string, age float64) {
		t.Helper()
		size, err := hub.Store.LogSize()
		if err != nil {
			t.Fatal(err)
		}
		_, covered, err := hub.Store.Checkpoint()
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range []struct {
			series string
			want   float64
		}{
			{"sparr_log_entries", float64(size)},
			{"sparr_checkpoint_entries", float64(covered)},
			{"sparr_checkpoint_age_seconds", age},
		} {
			if got := metricValue(t, hub, m.series); got != m.want {
				t.Errorf("%s: got %s = %v, want %v", when, m.series, got, m.want)
			}
		}
	}
	check("a placement after the checkpoint", 90)

	if _, err := hub.PublishCheckpoint(); err != nil {
		t.Fatal(err)
	}
	clock.Advance(5 * time.Second)
	check("5 s after a checkpoint", 5)
	if got, want := metricValue(t, hub, "sparr_checkpoint_entries"), metricValue(t, hub, "sparr_log_entries"); got != want {
		t.Errorf("got sparr_checkpoint_entries = %v after a checkpoint, want the log's %v", got, want)
	}

	// Restarted, with the log unchanged: no new checkpoint is signed, and
	// the one found is dated by its newest entry.
	entries := hub.LogEntries(t)
	newest := entries[len(entries)-1].Time
	clock.Advance(time.Hour)
	hub.Restart(t)
	check("after a restart", hub.Now().Sub(newest).Seconds())
}

// waitMetric waits until series reaches at least want, and returns it.
func waitMetric(t *testing.T, hub *hubtest.Hub, series string, want float64) float64 {
	t.Helper()
	deadline := time.Now().Add(wait)
	for {
		got := metricValue(t, hub, series)
		if got >= want {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("got %s = %v after %s, want at least %v", series, got, wait, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestDeliveryMetricsPerMember: each member's delivery attempts are
// counted by outcome, and timed, under its own id: a receiver that
// accepts everything shows only deliveries, one that fails after its
// verification only failures after it, one attempt timed for each.
func TestDeliveryMetricsPerMember(t *testing.T) {
	hub := hubtest.Start(t, hubtest.Options{Delivery: fast})
	origin := hub.AddMember(t, "bank-origin", api.RoleFlag)
	good, bad := hub.AddMember(t, "bank-good", api.RoleCheck), hub.AddMember(t, "bank-bad", api.RoleCheck)
	rg, rb := hub.NewReceiver(t, good), hub.NewReceiver(t, bad)
	rb.Behave(func(n int, w http.ResponseWriter, _ *http.Request) bool {
		if n == 1 {
			return false // the verification event is accepted
		}
		w.WriteHeader(http.StatusServiceUnavailable)
		return true
	})
	for _, r := range []*hubtest.Receiver{rg, rb} {
		r.Register(t)
		r.WaitEvent(t, wait, protocol.EventVerification)
	}
	place(t, origin, origin.Tokenize(t, protocol.TypeEmail, "per-member@example.se")[0])
	rg.WaitEvent(t, wait, protocol.EventFlagPlaced)
	waitEndpoint(t, bad, "paused", func(e api.Endpoint) bool { return e.Status == api.EndpointPaused })
	waitMetric(t, hub, `sparr_deliveries_total{member="bank-good",outcome="delivered"}`, 2)

	attempts := 1 + len(fast.Schedule) // the first and every retry
	for _, m := range []struct {
		series string
		want   float64
	}{
		{`sparr_deliveries_total{member="bank-good",outcome="delivered"}`, float64(rg.Requests())},
		{`sparr_deliveries_total{member="bank-good",outcome="failed"}`, 0},
		{`sparr_delivery_duration_seconds_count{member="bank-good"}`, float64(rg.Requests())},
		{`sparr_deliveries_total{member="bank-bad",outcome="delivered"}`, 1},
		{`sparr_deliveries_total{member="bank-bad",outcome="failed"}`, float64(attempts)},
		{`sparr_delivery_duration_seconds_count{member="bank-bad"}`, float64(1 + attempts)},
		{`sparr_delivery_hub_errors_total{member="bank-bad",stage="store"}`, 0},
	} {
		if got := metricValue(t, hub, m.series); got != m.want {
			t.Errorf("got %s = %v, want %v", m.series, got, m.want)
		}
	}
	if n := rb.Requests(); n != 1+attempts {
		t.Errorf("got %d requests at the failing receiver, want %d", n, 1+attempts)
	}
}

// TestDeliveryStoreFailureIsTheHubs: a delivery the receiver accepted but
// the hub could not record (its store is gone) is counted as delivered
// and, apart, as the hub's own failure at the store stage; never as the
// receiver's failure.
func TestDeliveryStoreFailureIsTheHubs(t *testing.T) {
	hub := hubtest.Start(t, hubtest.Options{Delivery: fast})
	origin := hub.AddMember(t, "bank-origin", api.RoleFlag)
	m := hub.AddMember(t, "bank-b", api.RoleCheck)
	r := hub.NewReceiver(t, m)
	r.Register(t)
	r.WaitEvent(t, wait, protocol.EventVerification)
	waitEndpoint(t, m, "verified", func(e api.Endpoint) bool { return e.Status == api.EndpointActive })

	arrived, release := make(chan struct{}), make(chan struct{})
	r.Behave(func(n int, _ http.ResponseWriter, _ *http.Request) bool {
		if n == 2 {
			close(arrived)
			<-release
		}
		return false
	})
	place(t, origin, origin.Tokenize(t, protocol.TypeEmail, "unrecorded@example.se")[0])
	select {
	case <-arrived:
	case <-time.After(wait):
		t.Fatal("the placement was not delivered")
	}
	if err := hub.Store.Close(); err != nil {
		t.Fatal(err)
	}
	close(release)
	waitMetric(t, hub, `sparr_delivery_hub_errors_total{member="bank-b",stage="store"}`, 1)
	if got := metricValue(t, hub, `sparr_deliveries_total{member="bank-b",outcome="failed"}`); got != 0 {
		t.Errorf("got %v failed deliveries counted, want 0: the receiver did not fail", got)
	}
	if got := metricValue(t, hub, `sparr_deliveries_total{member="bank-b",outcome="delivered"}`); got != 2 {
		t.Errorf("got %v deliveries counted, want 2: the verification and the placement", got)
	}
}

// TestRouteLabelsAreOpenAPIPaths: the route label is the route's path as
// docs/openapi.yaml writes it, "/v1/flags/{id}" rather than gin's
// "/v1/flags/:id", and every path no route serves is "unmatched".
func TestRouteLabelsAreOpenAPIPaths(t *testing.T) {
	reg := prometheus.NewRegistry()
	hub := hubtest.Start(t, hubtest.Options{Configure: func(c *server.Config) { c.Registry = reg }})
	bank := hub.AddMember(t, "bank-a", api.RoleFlag)
	bank.Do(t, http.MethodGet, "/v1/flags/no-such-flag", "", nil)
	bank.Do(t, http.MethodGet, "/v1/flags/no-such-flag/nor-this", "", nil)
	hub.Anonymous(t, http.MethodGet, "/v1/flags/:id", "", nil)

	known := map[string]bool{"unmatched": true}
	for _, r := range server.Routes() {
		known[r.OpenAPIPath()] = true
	}
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	routes := map[string]bool{}
	for _, f := range families {
		if f.GetName() != "sparr_http_requests_total" && f.GetName() != "sparr_http_request_duration_seconds" {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "route" {
					routes[l.GetValue()] = true
				}
			}
		}
	}
	for r := range routes {
		if !known[r] {
			t.Errorf("got the route label %q, want a path of docs/openapi.yaml or unmatched", r)
		}
	}
	for _, want := range []string{"/v1/flags/{id}", "unmatched"} {
		if !routes[want] {
			t.Errorf("got route labels %v, want %q among them", slices.Sorted(maps.Keys(routes)), want)
		}
	}
}

// TestMetricsOpenMetrics: a scraper that asks for OpenMetrics gets it,
// ended by "# EOF"; one that does not gets the Prometheus text format.
func TestMetricsOpenMetrics(t *testing.T) {
	hub := hubtest.Start(t, hubtest.Options{})
	for _, tc := range []struct {
		accept, contentType string
		eof                 bool
	}{
		{"application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5", "application/openmetrics-text", true},
		{"", "text/plain", false},
	} {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest(http.MethodGet, "/metrics", nil)
		if tc.accept != "" {
			req.Header.Set("Accept", tc.accept)
		}
		hub.MetricsHandler().ServeHTTP(rec, req)
		if ct := rec.Header().Get("Content-Type"); !strings.HasPrefix(ct, tc.contentType) {
			t.Errorf("Accept %q: got Content-Type %q, want %s", tc.accept, ct, tc.contentType)
		}
		if eof := strings.HasSuffix(rec.Body.String(), "# EOF\n"); eof != tc.eof {
			t.Errorf("Accept %q: got a body ending in # EOF %v, want %v", tc.accept, eof, tc.eof)
		}
	}
}

// hasSeries reports whether the hub's /metrics has the series, whatever
// its value.
func hasSeries(t *testing.T, hub *hubtest.Hub, series string) bool {
	t.Helper()
	rec := httptest.NewRecorder()
	hub.MetricsHandler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	for line := range strings.SplitSeq(rec.Body.String(), "\n") {
		if strings.HasPrefix(line, series+" ") {
			return true
		}
	}
	return false
}

// TestAlertableSeriesStartAtZero: the series an alert watches for a rise
// exist at zero before the first event, so that the first one shows as a
// rise: every rate class's refusals from the start, and a member's
// failures and the hub's own failures from its endpoint's registration,
// and again after a restart.
func TestAlertableSeriesStartAtZero(t *testing.T) {
	hub := hubtest.Start(t, hubtest.Options{})
	for _, class := range []string{"tokens", "writes", "checks", "reads"} {
		if series := fmt.Sprintf(`sparr_rate_limited_total{class=%q}`, class); !hasSeries(t, hub, series) {
			t.Errorf("got no %s, want it at 0", series)
		}
	}
	m := hub.AddMember(t, "bank-b", api.RoleCheck)
	series := []string{
		`sparr_deliveries_total{member="bank-b",outcome="failed"}`,
		`sparr_deliveries_total{member="bank-b",outcome="gone"}`,
		`sparr_delivery_hub_errors_total{member="bank-b",stage="sign"}`,
		`sparr_delivery_hub_errors_total{member="bank-b",stage="store"}`,
	}
	if hasSeries(t, hub, series[0]) {
		t.Errorf("got %s before bank-b has an endpoint, want none", series[0])
	}
	r := hub.NewReceiver(t, m)
	r.Register(t)
	for _, restarted := range []bool{false, true} {
		if restarted {
			hub.Restart(t)
		}
		for _, s := range series {
			if !hasSeries(t, hub, s) {
				t.Errorf("restarted %v: got no %s, want it at 0", restarted, s)
			}
		}
	}
}

// TestScrapeLogsWhatTheStoreCannotGive: with a store the collectors cannot
// read, the scrape serves the rest and the hub logs what it left out,
// rather than leaving those series out unnoticed.
func TestScrapeLogsWhatTheStoreCannotGive(t *testing.T) {
	logs := new(logBuffer)
	hub := hubtest.Start(t, hubtest.Options{Configure: func(c *server.Config) { c.Logger = slog.New(slog.NewJSONHandler(logs, nil)) }})
	hub.Hub.Close()
	if err := hub.Store.Close(); err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	hub.MetricsHandler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), "sparr_build_info") {
		t.Errorf("scrape of a closed store: got %d, want 200 with the series that could be read", rec.Code)
	}
	if !hasLogLine(logs.String(), "ERROR", "reading a metric failed") || !strings.Contains(logs.String(), "sparr_log_entries") {
		t.Errorf("got logs %s, want the series left out logged", logs)
	}
}
