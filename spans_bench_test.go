//go:build cgo

package pprofio

import (
	"context"
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/pprofio/pprofio/internal/core"
	"github.com/pprofio/pprofio/internal/spans"
)

// startForSpans starts a Profiler that records spans and takes no profile
// while a test or benchmark runs (the first cycle is minutes away).
func startForSpans(tb testing.TB, cfg Config) *Profiler {
	tb.Helper()
	if cfg.ServiceName == "" {
		cfg.ServiceName = "spans-test"
	}
	if cfg.OutputDir == "" {
		cfg.OutputDir = tb.TempDir()
	}
	cfg.SampleRate = time.Hour
	p, err := New(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	if err := p.Start(context.Background()); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { p.Stop() })
	return p
}

// cpuMeter reports cpu-ns/op, the process CPU time (user+sys) per op: on
// a machine shared with other work, ns/op (wall time) also counts the time
// the benchmark waited for a CPU.
func cpuMeter(b *testing.B) func() {
	cpu := func() time.Duration {
		var ru syscall.Rusage
		syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
		return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	b.ResetTimer()
	start := cpu()
	return func() {
		b.StopTimer()
		b.ReportMetric(float64(cpu()-start)/float64(b.N), "cpu-ns/op")
	}
}

// BenchmarkSpan is the cost of a span start and end, side by side:
//
//	stopped   no Profiler was ever started: StartSpan returns ctx as is
//	running   a Profiler runs: labels set and put back, the span recorded
//	sampled   the same, and the span's start stack taken (one span in
//	          spanStackEvery is, for the custom profile)
//
// Run with: go test -run '^$' -bench 'Span$' -benchmem .
func BenchmarkSpan(b *testing.B) {
	ctx := context.Background()
	run := func(b *testing.B) {
		b.ReportAllocs()
		defer cpuMeter(b)()
		for i := 0; i < b.N; i++ {
			_, s := StartSpan(ctx, "checkout", "tier", "gold")
			s.End()
		}
	}
	b.Run("stopped", run)
	b.Run("running", func(b *testing.B) {
		startForSpans(b, Config{})
		old := spanHot.stackEvery.Swap(1 << 30)
		defer spanHot.stackEvery.Store(old)
		run(b)
	})
	b.Run("sampled", func(b *testing.B) {
		startForSpans(b, Config{})
		old := spanHot.stackEvery.Swap(1)
		defer spanHot.stackEvery.Store(old)
		run(b)
	})
}

// BenchmarkHandoff decided how a finished span reaches the C core
// (DESIGN.md: measure both): one short cgo call per span end into the
// recorder, whose mutex every goroutine then shares ("direct"), or
// records buffered in Go in shards borrowed per P and handed over a block
// at a time ("batched", what internal/spans does). Serial and from every
// P at once; the span's labels are not part of it.
//
// Run with: go test -run '^$' -bench Handoff -benchmem -cpu 1,2 .
func BenchmarkHandoff(b *testing.B) {
	tags := []string{"tier", "gold"}
	for _, mode := range []string{"direct", "batched"} {
		sink := func(b *testing.B) *spans.Sink {
			s, err := spans.New(core.SpanConfig{})
			if err != nil {
				b.Fatal(err)
			}
			s.SetDirect(mode == "direct")
			b.Cleanup(s.Free)
			return s
		}
		b.Run(fmt.Sprintf("%s/serial", mode), func(b *testing.B) {
			s := sink(b)
			b.ReportAllocs()
			defer cpuMeter(b)()
			for i := 0; i < b.N; i++ {
				s.Record("checkout", tags, int64(i), 1500000, uint64(i)+1, 0, nil)
			}
		})
		b.Run(fmt.Sprintf("%s/parallel", mode), func(b *testing.B) {
			s := sink(b)
			b.ReportAllocs()
			defer cpuMeter(b)()
			b.RunParallel(func(pb *testing.PB) {
				i := 0
				for pb.Next() {
					i++
					s.Record("checkout", tags, int64(i), 1500000, uint64(i)+1, 0, nil)
				}
			})
		})
	}
}
