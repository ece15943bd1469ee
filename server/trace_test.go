package server_test

import (
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/sparr-dev/sparr/protocol"
	"github.com/sparr-dev/sparr/protocol/api"
	"github.com/sparr-dev/sparr/server"
	"github.com/sparr-dev/sparr/server/hubtest"
)

// TestTracing: a request that carries a W3C traceparent is served in a
// span of that trace, named by its route, with its decision, its store
// commit and (for tokens) its evaluation as child spans; its log line
// names the trace; the delivery it causes is a span of its own whose
// traceparent the receiver gets; and an incoming X-Request-Id is kept.
func TestTracing(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	logs := new(logBuffer)
	hub := hubtest.Start(t, hubtest.Options{Delivery: fast, Configure: func(c *server.Config) {
		c.TracerProvider = tp
		c.Logger = slog.New(slog.NewJSONHandler(logs, nil))
	}})
	a := hub.AddMember(t, "bank-a", api.RoleFlag, api.RoleCheck)
	b := hub.AddMember(t, "bank-b", api.RoleCheck)
	r := hub.NewReceiver(t, b)
	var mu sync.Mutex
	var parents []string
	r.Behave(func(_ int, _ http.ResponseWriter, req *http.Request) bool {
		mu.Lock()
		parents = append(parents, req.Header.Get("traceparent"))
		mu.Unlock()
		return false
	})
	r.Register(t)
	tok := a.Tokenize(t, protocol.TypeEmail, "traced@example.se")[0]

	// A placement, sent with the caller's trace and request id.
	const traceID, parentID = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
	req, err := http.NewRequest(http.MethodPost, hub.URL+"/v1/flags", strings.NewReader(string(a.Sign(t, protocol.PlaceFlag{Subject: tok, Kind: protocol.FlagKindStandard, Consent: a.Consent(tok)}))))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+a.Bearer(t))
	req.Header.Set("Content-Type", "application/jose")
	req.Header.Set("traceparent", "00-"+traceID+"-"+parentID+"-01")
	req.Header.Set("X-Request-Id", "0192a3b4-c5d6-7e8f-9a0b-1c2d3e4f5a6b")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated || resp.Header.Get("X-Request-Id") != "0192a3b4-c5d6-7e8f-9a0b-1c2d3e4f5a6b" {
		t.Fatalf("placement: got %d with request id %q, want 201 and the caller's 0192a3b4-c5d6-7e8f-9a0b-1c2d3e4f5a6b", resp.StatusCode, resp.Header.Get("X-Request-Id"))
	}
	r.WaitEvent(t, 10*time.Second, protocol.EventFlagPlaced)

	var request trace.SpanContext
	children := map[string]bool{}
	for _, s := range rec.Ended() {
		switch {
		case s.Name() == "POST /v1/flags":
			request = s.SpanContext()
			if s.Parent().SpanID().String() != parentID || s.SpanKind() != trace.SpanKindServer {
				t.Errorf("the request's span has parent %s and kind %s, want the caller's %s, server", s.Parent().SpanID(), s.SpanKind(), parentID)
			}
		}
	}
	if request.TraceID().String() != traceID {
		t.Fatalf("the request's span is of trace %s, want the caller's %s", request.TraceID(), traceID)
	}
	for _, s := range rec.Ended() {
		if s.Parent().SpanID() == request.SpanID() {
			children[s.Name()] = true
		}
	}
	for _, want := range []string{"decide place flag", "store.commit"} {
		if !children[want] {
			t.Errorf("the request's span has children %v, want %q among them", children, want)
		}
	}
	if !strings.Contains(logs.String(), `"trace_id":"`+traceID+`"`) || !strings.Contains(logs.String(), `"request_id":"0192a3b4-c5d6-7e8f-9a0b-1c2d3e4f5a6b"`) {
		t.Errorf("no log line names the trace %s and request id 0192a3b4-c5d6-7e8f-9a0b-1c2d3e4f5a6b:\n%s", traceID, logs)
	}
	// Every request the receiver got carried the traceparent of a
	// delivery span, of client kind. A span ends after the receiver's
	// answer is read, so wait for those that are still open.
	mu.Lock()
	got := slices.Clone(parents)
	mu.Unlock()
	if len(got) == 0 {
		t.Fatal("the receiver got no request")
	}
	var missing []string
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		spans := map[string]bool{}
		for _, d := range rec.Ended() {
			if d.Name() == "webhook.deliver" && d.SpanKind() == trace.SpanKindClient {
				spans["00-"+d.SpanContext().TraceID().String()+"-"+d.SpanContext().SpanID().String()+"-01"] = true
			}
		}
		missing = slices.DeleteFunc(slices.Clone(got), func(p string) bool { return spans[p] })
		if len(missing) == 0 || time.Now().After(deadline) {
			break
		}
	}
	if len(missing) > 0 {
		t.Errorf("deliveries carried traceparents %q of no delivery span", missing)
	}

	// A token batch: its evaluation is a span of its own, under the
	// request's.
	a.Tokenize(t, protocol.TypeEmail, "another@example.se")
	var tokensRequest, evaluation sdktrace.ReadOnlySpan
	for _, s := range rec.Ended() {
		switch s.Name() {
		case "POST /v1/tokens":
			tokensRequest = s
		case "tokens.evaluate":
			evaluation = s
		}
	}
	if tokensRequest == nil || evaluation == nil || evaluation.Parent().SpanID() != tokensRequest.SpanContext().SpanID() {
		t.Error("no tokens.evaluate span under the POST /v1/tokens request's span")
	}

	// A request id that is not a UUID (it could carry a customer's
	// number, or forge log lines) is not kept: the hub makes its own.
	for _, bad := range []string{"gw-7f3a9c", "190905271474", "id with spaces", `x","level":"ERROR`} {
		req, err := http.NewRequest(http.MethodGet, hub.URL+"/healthz", nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("X-Request-Id", bad)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if id := resp.Header.Get("X-Request-Id"); id == bad || len(id) != 36 {
			t.Errorf("request id %q: answered with %q, want a new UUID", bad, id)
		}
	}
}
