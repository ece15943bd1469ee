package server_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/sparr-dev/sparr/protocol"
	"github.com/sparr-dev/sparr/protocol/api"
	"github.com/sparr-dev/sparr/server"
	"github.com/sparr-dev/sparr/server/decide"
	"github.com/sparr-dev/sparr/server/hubtest"
)

// liveMetrics starts a hub, has members tokenize, place a flag, check it,
// receive its delivery at a receiver on loopback and run out of their
// daily tokens, and returns the hub's /metrics, scraped over HTTP as
// Prometheus scrapes it.
func liveMetrics(t *testing.T) []byte {
	t.Helper()
	witness := hubtest.StartWitness(t, "metrics.example")
	hub := hubtest.Start(t, hubtest.Options{Delivery: fast, Policy: decide.Policy{
		Quotas: api.Quotas{TokensPerSecond: 1e5, TokensPerDay: 4, StoredBytesPerDay: 1 << 40},
	}, Configure: func(cfg *server.Config) {
		cfg.Witnesses, cfg.WitnessRetry = []server.Witness{witness.Config()}, 5*time.Millisecond
	}})
	witness.AddLog(t, hub.Keys.LogVerifier)
	origin := hub.AddMember(t, "bank-origin", api.RoleFlag)
	checker := hub.AddMember(t, "bank-check", api.RoleCheck)
	r := hub.NewReceiver(t, checker)
	r.Register(t)
	r.WaitEvent(t, wait, protocol.EventVerification)

	tok := origin.Tokenize(t, protocol.TypeEmail, "live-metrics@example.se")[0]
	place(t, origin, tok)
	r.WaitEvent(t, wait, protocol.EventFlagPlaced)
	check(t, checker, "credit-application", checker.Tokenize(t, protocol.TypeEmail, "live-metrics@example.se")[0])
	if _, err := checker.Client().Tokenize(context.Background(), protocol.TypeEmail, "a@example.se", "b@example.se", "c@example.se", "d@example.se"); err == nil {
		t.Fatal("got tokens beyond the day's quota, want a refusal")
	}
	hub.Anonymous(t, http.MethodGet, "/no/such/route", "", nil)
	waitMetric(t, hub, `sparr_deliveries_total{member="bank-check",outcome="delivered"}`, 2)
	if _, err := hub.PublishCheckpoint(); err != nil {
		t.Fatal(err)
	}
	waitMetric(t, hub, `sparr_witness_requests_total{outcome="cosigned",witness="metrics.example"}`, 1)

	srv := httptest.NewServer(hub.MetricsHandler())
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: %d, %v", resp.StatusCode, err)
	}
	return body
}

// needPromtool returns promtool's path, or skips the test without it on
// PATH, unless SPARR_REQUIRE_PROMTOOL=1 (as in CI, which installs it).
func needPromtool(t *testing.T) string {
	t.Helper()
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		if os.Getenv("SPARR_REQUIRE_PROMTOOL") == "1" {
			t.Fatal("promtool is not on PATH and SPARR_REQUIRE_PROMTOOL=1: install it (Debian package prometheus; .ci/run does)")
		}
		t.Skip("promtool is not on PATH: install it (Debian package prometheus) to run this check, or set SPARR_REQUIRE_PROMTOOL=1 to fail without it")
	}
	return promtool
}

// TestPromtoolChecksMetrics pipes a live hub's /metrics to promtool check
// metrics, Prometheus's own linter of metric names, types, help and
// units. Without promtool on PATH it is skipped, unless
// SPARR_REQUIRE_PROMTOOL=1 (as in CI, which installs it).
func TestPromtoolChecksMetrics(t *testing.T) {
	promtool := needPromtool(t)
	body := liveMetrics(t)
	cmd := exec.Command(promtool, "check", "metrics")
	cmd.Stdin = bytes.NewReader(body)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("promtool check metrics: %v\n%s", err, out)
	}
}
