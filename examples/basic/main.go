// Command basic is a small program profiled by pprofio: one function burns
// CPU, another allocates, a third serves requests inside spans, and the
// agent keeps their profiles and span timings on local disk.
//
//	go run ./examples/basic -duration 30s -rate 5s -cpu 2s -out ./pprofio-data
//	go tool pprof -top pprofio-data/basic/cpu/<file>.pb.gz
package main

import (
	"context"
	"crypto/sha256"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/pprofio/pprofio"
)

func main() {
	duration := flag.Duration("duration", 30*time.Second, "how long to run (0: until interrupted)")
	rate := flag.Duration("rate", 5*time.Second, "pprofio SampleRate: one collection cycle")
	cpu := flag.Duration("cpu", 2*time.Second, "pprofio CPUDuration: the CPU window of each cycle")
	out := flag.String("out", "./pprofio-data", "pprofio OutputDir (\"\" for none)")
	service := flag.String("service", "basic", "pprofio ServiceName")
	ingest := flag.String("ingest-url", "", "pprofio IngestURL (e.g. the URL examples/ingest-server prints)")
	caFile := flag.String("ca-file", "", "pprofio CAFile: the CA that signed the ingest server's certificate")
	apiKey := flag.String("api-key", os.Getenv("PPROFIO_API_KEY"), "pprofio APIKey (default $PPROFIO_API_KEY)")
	spool := flag.String("spool-dir", "", "pprofio SpoolDir (default: under the user cache directory)")
	profiles := flag.String("profiles", "cpu,heap", "profile types: any of cpu,heap,goroutine,mutex,block")
	leak := flag.Int("leak", 0, "start this many goroutines a second that never return (a leak, for the goroutine_leak alert)")
	flag.Parse()

	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	p, err := pprofio.New(pprofio.Config{
		ServiceName: *service,
		SampleRate:  *rate,
		CPUDuration: *cpu,
		OutputDir:   *out,
		IngestURL:   *ingest,
		APIKey:      *apiKey,
		CAFile:      *caFile,
		SpoolDir:    *spool,
		StartJitter: -1, // start the first cycle at once: this is a demo
		Tags:        map[string]string{"env": "demo"},
		Logger:      logger,
		Profiles:    profileTypes(*profiles),
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()
	if *duration > 0 {
		ctx, cancel = context.WithTimeout(ctx, *duration)
		defer cancel()
	}
	if err := p.Start(ctx); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}

	if *leak > 0 {
		go leakGoroutines(ctx, *leak)
	}
	var wg sync.WaitGroup
	wg.Add(5)
	go func() { defer wg.Done(); burnCPU(ctx) }()
	go func() { defer wg.Done(); serve(ctx) }()
	go func() { defer wg.Done(); allocate(ctx) }()
	go func() { defer wg.Done(); contend(ctx) }()
	go func() { defer wg.Done(); waitOnChannel(ctx) }()
	wg.Wait()

	if err := p.Stop(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	s := p.Stats()
	fmt.Printf("cycles=%d profiles written=%d skipped=%d dropped=%d\n", s.Cycles, s.ProfilesWritten,
		s.ProfilesSkipped, s.ProfilesDroppedMemory+s.ProfilesDroppedInvalid+s.ProfilesDroppedWrite+s.ProfilesDroppedNoSink)
	if *ingest != "" {
		fmt.Printf("batches sent=%d queued=%d retried=%d bytes sent=%d\n", s.BatchesSent, s.QueuedBatches,
			s.BatchesRetried, s.BytesSent)
		if s.UploadsOff {
			fmt.Println("uploads are off on this host (the log says why); the batches stay in the spool")
		}
	}
}

func profileTypes(list string) []pprofio.ProfileType {
	var out []pprofio.ProfileType
	for _, t := range strings.Split(list, ",") {
		if t = strings.TrimSpace(t); t != "" {
			out = append(out, pprofio.ProfileType(t))
		}
	}
	return out
}

// contend makes two goroutines fight over one lock: the mutex profile's
// contended function.
func contend(ctx context.Context) {
	var mu sync.Mutex
	var wg sync.WaitGroup
	for g := 0; g < 2; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				mu.Lock()
				time.Sleep(100 * time.Microsecond)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
}

// waitOnChannel blocks on a channel fed every 5 ms: the block profile's
// blocking function.
func waitOnChannel(ctx context.Context) {
	ch := make(chan int)
	go func() {
		for i := 0; ctx.Err() == nil; i++ {
			time.Sleep(5 * time.Millisecond)
			select {
			case ch <- i:
			case <-ctx.Done():
			}
		}
	}()
	for {
		select {
		case <-ch:
		case <-ctx.Done():
			return
		}
	}
}

// burnCPU hashes in a loop: the CPU profile's hot function.
func burnCPU(ctx context.Context) {
	sum := sha256.Sum256([]byte("pprofio"))
	for ctx.Err() == nil {
		for i := 0; i < 10000; i++ {
			sum = sha256.Sum256(sum[:])
		}
	}
	_ = sum
}

// serve handles a request every 10 ms inside a "request" span tagged with
// its route, whose two children are a "db.query" that waits about 2 ms and
// a "render" that hashes: the spans' latency percentiles and waterfall.
func serve(ctx context.Context) {
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		pprofio.Do(ctx, "request", func(ctx context.Context) {
			pprofio.Do(ctx, "db.query", func(context.Context) { time.Sleep(2 * time.Millisecond) }, "table", "orders")
			_, span := pprofio.StartSpan(ctx, "render")
			render()
			span.End()
		}, "route", "/checkout")
	}
}

// render hashes for about a millisecond: the CPU inside the render spans.
func render() {
	sum := sha256.Sum256([]byte("page"))
	for i := 0; i < 2000; i++ {
		sum = sha256.Sum256(sum[:])
	}
}

// leakGoroutines starts perSecond goroutines a second, each parked
// forever in leakedWorker: the goroutine profile's growing function.
func leakGoroutines(ctx context.Context, perSecond int) {
	never := make(chan struct{})
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for i := 0; ctx.Err() == nil; i++ {
		for j := 0; j < perSecond*(i+1)/10-perSecond*i/10; j++ {
			go leakedWorker(never)
		}
		select {
		case <-ctx.Done():
		case <-tick.C:
		}
	}
}

//go:noinline
func leakedWorker(never chan struct{}) { <-never }

// allocate keeps a rolling window of buffers alive: the heap profile's
// allocating function.
func allocate(ctx context.Context) {
	live := make([][]byte, 256)
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for i := 0; ; i++ {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		live[i%len(live)] = make([]byte, 64<<10)
	}
}
