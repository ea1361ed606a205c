// Package otel turns OpenTelemetry spans into pprofio spans, so that a
// service already instrumented with OpenTelemetry gets span timings and
// span flame graphs from pprofio with one line:
//
//	tp := sdktrace.NewTracerProvider(...)
//	otel.SetTracerProvider(pprofiootel.NewTracerProvider(tp))
//
// Every span started through the wrapped provider's tracers, while a
// pprofio Profiler runs, is also a pprofio span of the same name, with the
// OpenTelemetry span's id and its parent's as its own. While it is open,
// the goroutine's CPU samples carry the pprof labels span=<name> and
// span_id=<16 hex digits>, the trace's span id, as Grafana Pyroscope's
// otel-profiling-go does: a trace viewer can link a span to the CPU
// samples taken inside it. The span id is a label only: timings are
// aggregated per span name.
//
// It lives in a module of its own so that the pprofio module does not
// depend on OpenTelemetry.
package otel

import (
	"context"
	"encoding/binary"

	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/embedded"

	"github.com/pprofio/pprofio"
)

// SpanIDLabel is the pprof label that carries the OpenTelemetry span id.
const SpanIDLabel = "span_id"

// NewTracerProvider wraps tp: its tracers start pprofio spans alongside
// the OpenTelemetry ones.
func NewTracerProvider(tp trace.TracerProvider) trace.TracerProvider {
	return &tracerProvider{tp: tp}
}

type tracerProvider struct {
	embedded.TracerProvider
	tp trace.TracerProvider
}

func (p *tracerProvider) Tracer(name string, opts ...trace.TracerOption) trace.Tracer {
	return &tracer{tr: p.tp.Tracer(name, opts...)}
}

type tracer struct {
	embedded.Tracer
	tr trace.Tracer
}

// Start starts the OpenTelemetry span and, when a pprofio Profiler runs and
// the span has a valid id, a pprofio span with its name and ids.
func (t *tracer) Start(ctx context.Context, name string, opts ...trace.SpanStartOption) (context.Context, trace.Span) {
	parent := trace.SpanContextFromContext(ctx)
	ctx, span := t.tr.Start(ctx, name, opts...)
	sc := span.SpanContext()
	if !sc.HasSpanID() {
		return ctx, span
	}
	var parentID uint64
	if parent.HasSpanID() && parent.TraceID() == sc.TraceID() {
		parentID = spanID(parent.SpanID())
	}
	pctx, ps := pprofio.StartSpanWith(ctx, name, pprofio.SpanOptions{
		Labels:   []string{SpanIDLabel, sc.SpanID().String()},
		ID:       spanID(sc.SpanID()),
		ParentID: parentID,
	})
	if ps == nil { // no Profiler runs
		return ctx, span
	}
	w := &wrappedSpan{Span: span, ps: ps}
	return trace.ContextWithSpan(pctx, w), w
}

func spanID(id trace.SpanID) uint64 { return binary.BigEndian.Uint64(id[:]) }

// wrappedSpan ends its pprofio span with the OpenTelemetry one.
type wrappedSpan struct {
	trace.Span
	ps *pprofio.Span
}

func (s *wrappedSpan) End(opts ...trace.SpanEndOption) {
	s.ps.End()
	s.Span.End(opts...)
}
