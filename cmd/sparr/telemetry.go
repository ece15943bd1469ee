package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/url"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.37.0"
	"go.opentelemetry.io/otel/trace"
)

// otlpEnv are the standard variables that point an OTLP exporter at a
// collector; either turns tracing on without --otlp-endpoint.
var otlpEnv = []string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT"}

// checkOTLPEndpoint checks --otlp-endpoint: empty, or an http or https URL.
func checkOTLPEndpoint(endpoint string) error {
	if endpoint == "" {
		return nil
	}
	u, err := url.Parse(endpoint)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("--otlp-endpoint %q: want an http or https URL, such as http://127.0.0.1:4318/v1/traces", endpoint)
	}
	return nil
}

// tracesTo says where the hub's traces go: the endpoint, the variable
// that names one, or "off".
func tracesTo(endpoint string, getenv func(string) string) string {
	if endpoint != "" {
		return endpoint
	}
	for _, v := range otlpEnv {
		if getenv(v) != "" {
			return v
		}
	}
	return "off"
}

// tracing returns the hub's tracer provider, exporting spans over OTLP/HTTP
// to endpoint (checked by checkOTLPEndpoint), or, without one, where the
// standard OTEL_EXPORTER_OTLP_* variables say; and the function that
// flushes and stops it. With neither, tracing is off: it returns nil. The
// exporter's other settings (headers, TLS) and the resource
// (OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES) follow the standard
// variables; so does sampling if OTEL_TRACES_SAMPLER is set. Otherwise
// every request is traced, whatever a caller's traceparent asks: a caller
// must not be able to keep its requests out of the hub's traces. Export
// failures are logged to log.
func tracing(ctx context.Context, endpoint, version string, getenv func(string) string, log *slog.Logger) (trace.TracerProvider, func(context.Context) error, error) {
	if tracesTo(endpoint, getenv) == "off" {
		return nil, func(context.Context) error { return nil }, nil
	}
	var opts []otlptracehttp.Option
	if endpoint != "" {
		opts = append(opts, otlptracehttp.WithEndpointURL(endpoint))
	}
	exp, err := otlptracehttp.New(ctx, opts...)
	if err != nil {
		return nil, nil, fmt.Errorf("OTLP exporter: %w", err)
	}
	// The variables come last, so that an operator's service name wins.
	res, err := resource.New(ctx, resource.WithTelemetrySDK(),
		resource.WithAttributes(semconv.ServiceName("sparr-hub"), semconv.ServiceVersion(version)), resource.WithFromEnv())
	if err != nil {
		return nil, nil, fmt.Errorf("OTLP resource: %w", err)
	}
	tpOpts := []sdktrace.TracerProviderOption{sdktrace.WithBatcher(exp), sdktrace.WithResource(res)}
	if getenv("OTEL_TRACES_SAMPLER") == "" {
		tpOpts = append(tpOpts, sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.AlwaysSample(),
			sdktrace.WithRemoteParentNotSampled(sdktrace.AlwaysSample()))))
	}
	otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) { log.Warn("sending traces failed", "error", err) }))
	tp := sdktrace.NewTracerProvider(tpOpts...)
	return tp, tp.Shutdown, nil
}
