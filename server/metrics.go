package server

import (
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// metrics are the hub's Prometheus series. None carries an identifier, a
// token or a member's request content; labels are routes, methods, status
// codes, rate classes and identifier types.
type metrics struct {
	requests    *prometheus.CounterVec
	latency     *prometheus.HistogramVec
	rateLimited *prometheus.CounterVec
	apply       prometheus.Histogram
	commit      prometheus.Histogram
	batch       prometheus.Histogram
	tokens      *prometheus.CounterVec
}

func newMetrics(reg *prometheus.Registry) (*metrics, error) {
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
			Name: "sparr_tokens_evaluated_total", Help: "Blinded identifiers evaluated, by identifier type.",
		}, []string{"type"}),
	}
	for _, c := range []prometheus.Collector{m.requests, m.latency, m.rateLimited, m.apply, m.commit, m.batch, m.tokens,
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

func promhttpHandler(reg *prometheus.Registry) http.Handler {
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
}
