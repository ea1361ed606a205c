//go:build cgo

package pprofio_test

import (
	"context"
	"fmt"
	"os"
	"runtime/pprof"
	"time"

	"github.com/pprofio/pprofio"
)

// startExample starts a Profiler that keeps its profiles in a temporary
// folder; the returned function stops it and removes the folder.
func startExample() func() {
	dir, err := os.MkdirTemp("", "pprofio-example-")
	if err != nil {
		panic(err)
	}
	p, err := pprofio.New(pprofio.Config{ServiceName: "shop", OutputDir: dir, SampleRate: time.Hour})
	if err != nil {
		panic(err)
	}
	if err := p.Start(context.Background()); err != nil {
		panic(err)
	}
	return func() {
		p.Stop()
		fmt.Println("spans recorded:", p.Stats().SpansRecorded)
		os.RemoveAll(dir)
	}
}

// A span around a unit of work: while it is open, the goroutine's CPU and
// goroutine samples carry the labels span=checkout and tier=gold, so
// `go tool pprof -tagfocus span=checkout cpu.pb.gz` shows where its CPU
// goes; its duration is aggregated with every other checkout's.
func ExampleStartSpan() {
	stop := startExample()
	defer stop()

	ctx, span := pprofio.StartSpan(context.Background(), "checkout", "tier", "gold")
	name, _ := pprof.Label(ctx, "span")
	tier, _ := pprof.Label(ctx, "tier")
	fmt.Println("labels:", name, tier)

	// A span started from the context is a child of the open one, on
	// this goroutine or on another.
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, query := pprofio.StartSpan(ctx, "db.query", "table", "orders")
		defer query.End()
		fmt.Println("child of checkout:", query.ParentID() == span.ID())
	}()
	<-done
	span.End()
	span.End() // a second End does nothing
	// Output:
	// labels: checkout gold
	// child of checkout: true
	// spans recorded: 2
}

// Do runs a function inside a span, as pprof.Do runs one with labels; the
// labels the program set before are kept inside it and after it.
func ExampleDo() {
	stop := startExample()
	defer stop()

	ctx := pprof.WithLabels(context.Background(), pprof.Labels("tenant", "acme"))
	pprofio.Do(ctx, "render", func(ctx context.Context) {
		span, _ := pprof.Label(ctx, "span")
		tenant, _ := pprof.Label(ctx, "tenant")
		fmt.Println("inside:", span, tenant)
	}, "page", "home")
	// Output:
	// inside: render acme
	// spans recorded: 1
}

// Without a started Profiler a span costs one atomic load: StartSpan
// returns the context as it is and a nil span, whose End does nothing.
func ExampleSpan_End_withoutProfiler() {
	ctx := context.Background()
	sctx, span := pprofio.StartSpan(ctx, "checkout")
	defer span.End()
	fmt.Println(sctx == ctx, span == nil)
	// Output: true true
}
