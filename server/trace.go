package server

import (
	"context"
	"log/slog"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// tracerName names the hub's spans' instrumentation scope.
const tracerName = "github.com/sparr-dev/sparr/server"

// traceContext reads and writes W3C traceparent and tracestate headers.
var traceContext = propagation.TraceContext{}

// trace starts the request's span, a child of the caller's traceparent if
// it sent one, and puts it in the request's context for every span and
// log line under it. The span is named by the route (its OpenAPI path),
// and carries the status, the member and the request id; never the body
// or the query.
func (h *Hub) trace(c *gin.Context) {
	ctx := traceContext.Extract(c.Request.Context(), propagation.HeaderCarrier(c.Request.Header))
	ctx, span := h.tracer.Start(ctx, methodLabel(c.Request.Method), trace.WithSpanKind(trace.SpanKindServer))
	defer span.End()
	c.Request = c.Request.WithContext(ctx)
	c.Next()
	route := routeLabel(c.FullPath())
	status := c.Writer.Status()
	span.SetName(methodLabel(c.Request.Method) + " " + route)
	span.SetAttributes(
		attribute.String("http.request.method", methodLabel(c.Request.Method)),
		attribute.String("http.route", route),
		attribute.Int("http.response.status_code", status),
		attribute.String("sparr.request_id", c.GetString(keyRequestID)),
	)
	if m := member(c); m != nil {
		span.SetAttributes(attribute.String("sparr.member", m.ID))
	}
	if status >= 500 {
		span.SetStatus(codes.Error, "")
	}
}

// span starts a child span of the request's for one step of serving it
// (the decision, the store's commit, the token evaluation); the caller
// ends it. Steps are siblings under the request's span.
func (h *Hub) span(c *gin.Context, name string, attrs ...attribute.KeyValue) trace.Span {
	_, span := h.tracer.Start(c.Request.Context(), name, trace.WithAttributes(attrs...))
	return span
}

// requestID gives every request an id, returned in X-Request-Id and in
// every problem, and written to every log line about it: the caller's
// X-Request-Id if it is a UUID (as gateways make them), so that the hub's
// log lines join the caller's, else a new UUIDv7. Only a UUID is kept: a
// free-form id could carry a customer's number into the hub's logs.
func (h *Hub) requestID(c *gin.Context) {
	id, err := uuid.Parse(c.GetHeader("X-Request-Id"))
	if err != nil {
		id = uuid.Must(uuid.NewV7())
	}
	c.Set(keyRequestID, id.String())
	c.Header("X-Request-Id", id.String())
	c.Next()
}

// traceLogs adds the trace and span ids of the context's span, if it has
// one, to every log record, so that a log line leads to its trace.
type traceLogs struct{ slog.Handler }

func (t traceLogs) Handle(ctx context.Context, r slog.Record) error {
	if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
		r.AddAttrs(slog.String("trace_id", sc.TraceID().String()), slog.String("span_id", sc.SpanID().String()))
	}
	return t.Handler.Handle(ctx, r)
}

func (t traceLogs) WithAttrs(attrs []slog.Attr) slog.Handler {
	return traceLogs{t.Handler.WithAttrs(attrs)}
}

func (t traceLogs) WithGroup(name string) slog.Handler { return traceLogs{t.Handler.WithGroup(name)} }
