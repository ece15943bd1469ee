package main

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"

	"go.opentelemetry.io/otel/trace"
	coltrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/protobuf/proto"
)

// A collector is an OTLP/HTTP trace receiver on loopback that decodes
// what it is sent and keeps the spans' names and services.
type collector struct {
	*httptest.Server
	mu                        sync.Mutex
	spans, services, versions []string
}

func startCollector(t *testing.T) *collector {
	c := &collector{}
	c.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var req coltrace.ExportTraceServiceRequest
		if r.URL.Path != "/v1/traces" || r.Header.Get("Content-Type") != "application/x-protobuf" || proto.Unmarshal(body, &req) != nil {
			http.Error(w, "not an OTLP trace export", http.StatusBadRequest)
			return
		}
		c.mu.Lock()
		for _, rs := range req.ResourceSpans {
			for _, a := range rs.GetResource().GetAttributes() {
				switch a.Key {
				case "service.name":
					c.services = append(c.services, a.GetValue().GetStringValue())
				case "service.version":
					c.versions = append(c.versions, a.GetValue().GetStringValue())
				}
			}
			for _, ss := range rs.ScopeSpans {
				for _, s := range ss.Spans {
					c.spans = append(c.spans, s.Name)
				}
			}
		}
		c.mu.Unlock()
		w.Header().Set("Content-Type", "application/x-protobuf")
		b, _ := proto.Marshal(&coltrace.ExportTraceServiceResponse{})
		w.Write(b)
	}))
	t.Cleanup(c.Close)
	return c
}

// got returns the names of the spans received, and their services.
func (c *collector) got() (spans, services []string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.spans), slices.Clone(c.services)
}

// TestTracingExportsOTLP: with an endpoint, the hub's spans reach an OTLP
// collector over HTTP, under the service name sparr-hub; without one, and
// without the standard variables, tracing is off; a bad endpoint is
// refused with a usage hint.
func TestTracingExportsOTLP(t *testing.T) {
	collector := startCollector(t)
	ctx := context.Background()
	none := func(string) string { return "" }
	tp, stop, err := tracing(ctx, collector.URL+"/v1/traces", "v1.2.3", none, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	// A caller that asks not to be sampled is traced all the same.
	unsampled := trace.NewSpanContext(trace.SpanContextConfig{TraceID: trace.TraceID{1}, SpanID: trace.SpanID{2}, Remote: true})
	_, span := tp.Tracer("test").Start(trace.ContextWithRemoteSpanContext(ctx, unsampled), "POST /v1/check")
	span.End()
	if err := stop(ctx); err != nil {
		t.Fatalf("flushing the spans: %v", err)
	}
	if spans, services := collector.got(); len(spans) != 1 || spans[0] != "POST /v1/check" || len(services) != 1 || services[0] != "sparr-hub" {
		t.Errorf("the collector got spans %q of services %q, want one POST /v1/check of sparr-hub", spans, services)
	}
	collector.mu.Lock()
	versions := slices.Clone(collector.versions)
	collector.mu.Unlock()
	if !slices.Equal(versions, []string{"v1.2.3"}) {
		t.Errorf("the spans' service.version is %q, want the release, v1.2.3", versions)
	}

	if tp, _, err := tracing(ctx, "", "v1.2.3", none, slog.New(slog.DiscardHandler)); tp != nil || err != nil {
		t.Errorf("no endpoint and no OTEL_EXPORTER_OTLP_*: got %v, %v; want tracing off", tp, err)
	}
	if err := checkOTLPEndpoint("collector:4318"); err == nil {
		t.Error("an endpoint that is not a URL: got no error")
	}
}
