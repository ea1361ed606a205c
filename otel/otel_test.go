package otel_test

import (
	"bytes"
	"context"
	"fmt"
	"runtime/pprof"
	"testing"
	"time"

	"github.com/google/pprof/profile"
	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/pprofio/pprofio"
	"github.com/pprofio/pprofio/internal/spans"
	pprofiootel "github.com/pprofio/pprofio/otel"
)

// burnInOTelSpan spins for a fixed amount of work inside an OpenTelemetry span.
//
//go:noinline
func burnInOTelSpan() uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < 1<<20; i++ {
		h = (h ^ uint64(i)) * 1099511628211
	}
	return h
}

// startProfiler runs a Profiler that records spans and never takes a CPU
// profile itself (heap only), so the test can hold the CPU profiler.
func startProfiler(t *testing.T) *pprofio.Profiler {
	t.Helper()
	p, err := pprofio.New(pprofio.Config{ServiceName: "otel-test", OutputDir: t.TempDir(),
		SampleRate: time.Hour, Profiles: []pprofio.ProfileType{pprofio.ProfileHeap}})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Stop() })
	return p
}

// TestOTelSpansReachPprofioAndLabelCPUSamplesWithTheirSpanID runs a real
// SDK tracer provider, wrapped: the spans' names and ids reach pprofio's
// recorder, and the CPU samples taken inside a span carry its span id.
func TestOTelSpansReachPprofioAndLabelCPUSamplesWithTheirSpanID(t *testing.T) {
	p := startProfiler(t)
	ended := tracetest.NewSpanRecorder()
	sdk := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(ended))
	defer sdk.Shutdown(context.Background())
	tracer := pprofiootel.NewTracerProvider(sdk).Tracer("checkout-service")

	var sink uint64
	inSpan := map[string]int{} // samples of burnInOTelSpan by span_id label
	outside := 0               // samples of burnInOTelSpan without one
	spansRun := 0
	// However busy the machine, rounds go on until enough samples are in.
	for round := 0; round < 100 && len(inSpan) < 3; round++ {
		var buf bytes.Buffer
		if err := pprof.StartCPUProfile(&buf); err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 10; i++ {
			ctx, span := tracer.Start(context.Background(), "checkout", trace.WithAttributes(attribute.Int("i", i)))
			_, child := tracer.Start(ctx, "db.query")
			child.End()
			sink += burnInOTelSpan()
			span.End()
			spansRun++
		}
		pprof.StopCPUProfile()
		prof, err := profile.Parse(&buf)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range prof.Sample {
			if !onStack(s, "burnInOTelSpan") {
				continue
			}
			if ids, names := s.Label[pprofiootel.SpanIDLabel], s.Label["span"]; len(ids) == 1 && len(names) == 1 && names[0] == "checkout" {
				inSpan[ids[0]]++
			} else {
				outside++
			}
		}
	}
	_ = sink
	// Every labelled sample names a span the SDK ended, named checkout.
	otelSpans := map[string]sdktrace.ReadOnlySpan{}
	for _, s := range ended.Ended() {
		otelSpans[s.SpanContext().SpanID().String()] = s
	}
	if len(inSpan) < 3 || outside != 0 {
		t.Fatalf("samples of the burning function: %d spans' ids on them, %d samples without one", len(inSpan), outside)
	}
	for id := range inSpan {
		s, ok := otelSpans[id]
		if !ok || s.Name() != "checkout" {
			t.Fatalf("CPU samples carry span_id %s, which is not an ended checkout span", id)
		}
	}

	// The names and ids reached the recorder.
	c, err := spans.Active.Load().Take()
	if err != nil {
		t.Fatal(err)
	}
	counts := map[string]uint64{}
	for _, sr := range c.Series {
		counts[sr.Name] += sr.Count
	}
	if counts["checkout"] != uint64(spansRun) || counts["db.query"] != uint64(spansRun) {
		t.Fatalf("the recorder has %v, want %d checkout and %d db.query spans", counts, spansRun, spansRun)
	}
	for _, smp := range c.Samples {
		id := fmt.Sprintf("%016x", smp.ID)
		s, ok := otelSpans[id]
		if !ok || s.Name() != c.Series[smp.Series].Name {
			t.Fatalf("timeline span %s (%s) is not the SDK's span of that id", id, c.Series[smp.Series].Name)
		}
		if want := s.Parent().SpanID(); s.Parent().IsValid() && fmt.Sprintf("%016x", smp.ParentID) != want.String() {
			t.Fatalf("span %s: parent %016x in the timeline, %s in the trace", id, smp.ParentID, want)
		}
	}
	if st := p.Stats(); st.SpansRecorded != uint64(2*spansRun) {
		t.Fatalf("Stats.SpansRecorded = %d, want %d", st.SpansRecorded, 2*spansRun)
	}
}

// Without a running Profiler the wrapper hands back the SDK's own span.
func TestWithoutAProfilerTheSDKSpanIsReturnedAsIs(t *testing.T) {
	sdk := sdktrace.NewTracerProvider()
	defer sdk.Shutdown(context.Background())
	ctx, span := pprofiootel.NewTracerProvider(sdk).Tracer("t").Start(context.Background(), "op")
	defer span.End()
	if _, ok := span.(sdktrace.ReadOnlySpan); !ok {
		t.Fatalf("span is a %T, want the SDK's", span)
	}
	if trace.SpanFromContext(ctx) != span {
		t.Fatal("the context does not carry the span")
	}
	if _, ok := pprof.Label(ctx, pprofiootel.SpanIDLabel); ok {
		t.Fatal("a span_id label without a Profiler")
	}
}

func onStack(s *profile.Sample, fn string) bool {
	for _, loc := range s.Location {
		for _, l := range loc.Line {
			if n := l.Function.Name; len(n) >= len(fn) && n[len(n)-len(fn):] == fn {
				return true
			}
		}
	}
	return false
}
