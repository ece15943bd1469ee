package server

import (
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/sparr-dev/sparr/federation/webhook"
	"github.com/sparr-dev/sparr/protocol/api"
	"github.com/sparr-dev/sparr/server/store"
)

// metrics are the hub's Prometheus series. None carries an identifier, a
// token, a URL or a member's request content; labels are routes (as
// docs/openapi.yaml writes them), methods, status codes, rate classes,
// identifier types, quotas, delivery outcomes and stages of the hub's own
// failures, and member ids, each from a bounded set the hub chooses (a
// method the API does not use is "other", see [methodLabel]; a path no
// route serves is the route "unmatched", see [routeLabel]; a member id is
// a registered member's, never one taken from a request).
type metrics struct {
	requests     *prometheus.CounterVec
	latency      *prometheus.HistogramVec
	rateLimited  *prometheus.CounterVec
	apply        prometheus.Histogram
	commit       prometheus.Histogram
	batch        prometheus.Histogram
	tokens       *prometheus.CounterVec
	quotaRefused *prometheus.CounterVec
	deliveries   *prometheus.CounterVec
	deliveryLat  *prometheus.HistogramVec
	hubErrors    *prometheus.CounterVec
	// witnesses counts add-checkpoint requests by witness and outcome.
	witnesses *prometheus.CounterVec

	watched sync.Map // member id → true, once its delivery series exist
}

func newMetrics(reg *prometheus.Registry, build Build) (*metrics, error) {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sparr_http_requests_total", Help: "HTTP requests by route, method and status.",
		}, []string{"route", "method", "status"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "sparr_http_request_duration_seconds", Help: "HTTP request latency by route.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
		}, []string{"route"}),
		rateLimited: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sparr_rate_limited_total", Help: "Requests refused by a member's rate limit, by class.",
		}, []string{"class"}),
		apply: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "sparr_store_apply_seconds", Help: "Time from submitting a command to its durable commit, queueing included.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5},
		}),
		commit: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "sparr_store_commit_seconds", Help: "Duration of one store transaction, fsync included.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5},
		}),
		batch: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "sparr_store_commit_commands", Help: "Commands committed per store transaction (group commit).",
			Buckets: []float64{1, 2, 4, 8, 16, 32, 64, 128, 256, 512},
		}),
		tokens: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sparr_tokens_evaluated_total", Help: "Blinded identifiers evaluated, by member and identifier type.",
		}, []string{"member", "type"}),
		quotaRefused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sparr_quota_refused_total", Help: "Requests refused by a member's quota, by member and quota (token-rate, tokens-per-day, stored-bytes-per-day).",
		}, []string{"member", "quota"}),
		deliveries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sparr_deliveries_total", Help: "Webhook delivery attempts by member and outcome (delivered; failed, to be retried or, its schedule run out, pausing the endpoint; dead-lettered; gone, disabling the endpoint; skipped: record erased before it went out, no attempt made).",
		}, []string{"member", "outcome"}),
		deliveryLat: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "sparr_delivery_duration_seconds", Help: "Time from sending a delivery to the receiver's answer, or to giving up on one, by member.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"member"}),
		witnesses: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sparr_witness_requests_total", Help: "add-checkpoint requests to witnesses, by witness and outcome (cosigned; conflict: the witness named the tree size it holds, and the hub asks again from there; refused: the witness answered 4xx or an invalid cosignature; failed: unreachable, timed out or 5xx).",
		}, []string{"witness", "outcome"}),
		hubErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sparr_delivery_hub_errors_total", Help: "The hub's own delivery failures, not the receiver's, by member and stage (sign: a delivery it could not sign, not attempted and still queued; store: its outbox it could not read or record in). The member's deliveries wait and are tried again.",
		}, []string{"member", "stage"}),
	}
	revision := build.Revision
	if build.Modified {
		revision += "-modified"
	}
	info := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "sparr_build_info", Help: "The hub's build: always 1, its labels the release, the Go version and the VCS revision (empty if the build recorded none; -modified for a build from uncommitted changes).",
		ConstLabels: prometheus.Labels{"version": build.Version, "goversion": build.GoVersion, "revision": revision},
	})
	info.Set(1)
	for _, class := range []rateClass{classTokens, classWrites, classChecks, classReads} {
		m.rateLimited.WithLabelValues(string(class))
	}
	for _, c := range []prometheus.Collector{info, m.requests, m.latency, m.rateLimited, m.apply, m.commit, m.batch, m.tokens, m.quotaRefused, m.deliveries, m.deliveryLat, m.hubErrors, m.witnesses,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{})} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

func (m *metrics) observeCommit(commands int, took time.Duration) {
	m.commit.Observe(took.Seconds())
	m.batch.Observe(float64(commands))
}

// deliveryOutcomes are the outcomes of attempts made (webhook.Observer).
var deliveryOutcomes = []string{"delivered", "failed", "dead-lettered", "gone"}

// watch makes a member's delivery series exist, at zero, once it has an
// endpoint: so that the first failure shows as a rise (increase and rate
// see nothing of a series that appears already counting), and an alert
// on one can fire.
func (m *metrics) watch(member string) {
	if _, seen := m.watched.LoadOrStore(member, true); seen {
		return
	}
	for _, o := range deliveryOutcomes {
		m.deliveries.WithLabelValues(member, o)
	}
	for _, stage := range []string{webhook.HubSign, webhook.HubStore} {
		m.hubErrors.WithLabelValues(member, stage)
	}
}

// Attempted counts a delivery attempt (webhook.Observer) and, when one
// was made, its latency.
func (m *metrics) Attempted(member, outcome string, latency time.Duration) {
	m.deliveries.WithLabelValues(member, outcome).Inc()
	if outcome != "skipped" {
		m.deliveryLat.WithLabelValues(member).Observe(latency.Seconds())
	}
}

// HubFailed counts the hub's own delivery failures (webhook.Observer),
// apart from the receivers'.
func (m *metrics) HubFailed(member, stage string) {
	m.hubErrors.WithLabelValues(member, stage).Inc()
}

var _ webhook.Observer = (*metrics)(nil)

// queueCollector reports, at each scrape, every endpoint's backlog and
// how many endpoints are paused.
type queueCollector struct{ store *store.Store }

var (
	backlogDesc = prometheus.NewDesc("sparr_delivery_backlog", "Deliveries queued for a member's endpoint.", []string{"member", "status"}, nil)
	pausedDesc  = prometheus.NewDesc("sparr_endpoints_paused", "Endpoints paused after their retry schedule ran out.", nil, nil)
)

func (q *queueCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- backlogDesc
	ch <- pausedDesc
}

// A store that cannot be read makes an invalid metric, which the
// handler logs ([promhttpHandler]), so that the failure is seen, not
// only series gone quiet.
func (q *queueCollector) Collect(ch chan<- prometheus.Metric) {
	eps, err := q.store.Endpoints()
	if err != nil {
		ch <- prometheus.NewInvalidMetric(pausedDesc, err)
		return
	}
	paused := 0
	for _, e := range eps {
		if e.Status == api.EndpointPaused {
			paused++
		}
		n, err := q.store.Backlog(e.Member)
		if err != nil {
			ch <- prometheus.NewInvalidMetric(backlogDesc, err)
			continue
		}
		ch <- prometheus.MustNewConstMetric(backlogDesc, prometheus.GaugeValue, float64(n), e.Member, string(e.Status))
	}
	ch <- prometheus.MustNewConstMetric(pausedDesc, prometheus.GaugeValue, float64(paused))
}

// logCollector reports, at each scrape, the exchange log's size (its
// bucket's sequence, one short read) and the latest checkpoint the hub
// signed, which it keeps in memory.
type logCollector struct{ hub *Hub }

var (
	logEntriesDesc        = prometheus.NewDesc("sparr_log_entries", "Entries in the exchange log.", nil, nil)
	checkpointEntriesDesc = prometheus.NewDesc("sparr_checkpoint_entries", "Exchange-log entries the latest signed checkpoint covers.", nil, nil)
	checkpointAgeDesc     = prometheus.NewDesc("sparr_checkpoint_age_seconds", "Seconds since the latest checkpoint was signed (for one signed before the hub started, since the newest entry it covers). A checkpoint is signed only when the log has grown.", nil, nil)
)

func (l *logCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- logEntriesDesc
	ch <- checkpointEntriesDesc
	ch <- checkpointAgeDesc
}

func (l *logCollector) Collect(ch chan<- prometheus.Metric) {
	if n, err := l.hub.store.LogSize(); err != nil {
		ch <- prometheus.NewInvalidMetric(logEntriesDesc, err)
	} else {
		ch <- prometheus.MustNewConstMetric(logEntriesDesc, prometheus.GaugeValue, float64(n))
	}
	if cp := l.hub.latestCheckpoint(); !cp.SignedAt.IsZero() {
		ch <- prometheus.MustNewConstMetric(checkpointEntriesDesc, prometheus.GaugeValue, float64(cp.Entries))
		ch <- prometheus.MustNewConstMetric(checkpointAgeDesc, prometheus.GaugeValue, max(l.hub.now().Sub(cp.SignedAt).Seconds(), 0))
	}
}

// promhttpHandler serves reg. A series that cannot be read (the store
// failing) is left out and logged to log, and the rest is served: the
// hub's own error counters are what an operator needs most then.
func promhttpHandler(reg *prometheus.Registry, log *slog.Logger) http.Handler {
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{EnableOpenMetrics: true,
		ErrorHandling: promhttp.ContinueOnError, ErrorLog: metricsLog{log}})
}

// metricsLog logs promhttp's errors as the hub's.
type metricsLog struct{ log *slog.Logger }

func (l metricsLog) Println(v ...any) {
	l.log.Error("reading a metric failed; the scrape leaves it out", "error", fmt.Sprint(v...))
}
