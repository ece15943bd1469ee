package main

import (
	"context"
	"fmt"
	"net/url"
	"os"

	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.37.0"
	"go.opentelemetry.io/otel/trace"
)

// otlpEnv are the standard variables that point an OTLP exporter at a
// collector; either turns tracing on without --otlp-endpoint.
var otlpEnv = []string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT"}

// tracing returns the hub's tracer provider, exporting spans over OTLP/HTTP
// to endpoint (a URL such as http://collector:4318/v1/traces), or, without
// one, where the standard OTEL_EXPORTER_OTLP_* variables say; and the
// function that flushes and stops it. With neither, tracing is off: it
// returns nil. The exporter's other settings (headers, TLS, sampling)
// follow the standard OTEL_* variables.
func tracing(ctx context.Context, endpoint string) (trace.TracerProvider, func(context.Context) error, error) {
	var opts []otlptracehttp.Option
	switch {
	case endpoint != "":
		u, err := url.Parse(endpoint)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, nil, fmt.Errorf("--otlp-endpoint %q: want an http or https URL, such as http://127.0.0.1:4318/v1/traces", endpoint)
		}
		opts = append(opts, otlptracehttp.WithEndpointURL(endpoint))
	case os.Getenv(otlpEnv[0]) == "" && os.Getenv(otlpEnv[1]) == "":
		return nil, func(context.Context) error { return nil }, nil
	}
	exp, err := otlptracehttp.New(ctx, opts...)
	if err != nil {
		return nil, nil, fmt.Errorf("OTLP exporter: %w", err)
	}
	res, err := resource.Merge(resource.Default(), resource.NewSchemaless(
		semconv.ServiceName("sparr-hub"), semconv.ServiceVersion(versionString())))
	if err != nil {
		return nil, nil, err
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res))
	return tp, tp.Shutdown, nil
}
