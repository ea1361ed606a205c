//go:build ignore

// Command gen writes the pprof test data in tests/testdata: pairs of
// cumulative snapshots (a base, then the current one) of the heap, mutex,
// block and goroutine profiles of this very program, as raw (not gzipped)
// protobuf. Between the two snapshots of a pair it does known work in known
// functions, so that the tests can tell what a delta must contain.
//
// Run it from tests/ (see tests/testdata/README.md):
//
//	go run ./testdata/gen/main.go -out testdata
package main

import (
	"bytes"
	"compress/gzip"
	"context"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"sync"
	"time"
)

// Every allocation is sampled (set during package initialisation, before
// main allocates anything), so heap values are exact and numerous.
var _ = func() int { runtime.MemProfileRate = 1; return 0 }()

var (
	sink     []byte   // defeats escape analysis
	retained [][]byte // live across snapshots: inuse_* stays non-zero
	parked   = make(chan struct{})
)

func main() {
	out := flag.String("out", "testdata", "folder to write the .pb files into")
	flag.Parse()
	if err := os.MkdirAll(*out, 0o755); err != nil {
		log.Fatal(err)
	}
	write := func(name, profile string) {
		if profile == "heap" {
			runtime.GC()
			runtime.GC() // the heap profile is as of the last completed cycle
		}
		var gz bytes.Buffer
		if err := pprof.Lookup(profile).WriteTo(&gz, 0); err != nil {
			log.Fatal(err)
		}
		zr, err := gzip.NewReader(&gz)
		if err != nil {
			log.Fatal(err)
		}
		raw, err := io.ReadAll(zr)
		if err != nil {
			log.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(*out, name), raw, 0o644); err != nil {
			log.Fatal(err)
		}
		fmt.Printf("%-20s %7d bytes\n", name, len(raw))
	}

	// ---- heap ----
	allocEarlyFreed(2000)   // before the base only, all garbage: absent from the delta
	allocEarlyRetained(300) // before the base only, kept: in the delta with zero alloc_*
	allocGrowing(1000)      // before and after: its alloc_* grow
	for depth := 2; depth <= 40; depth += 2 {
		allocDeep(depth, 10) // stacks of many depths (recursion)
	}
	write("heap_base.pb", "heap")
	allocGrowing(700)
	allocBetween(1500)
	for depth := 1; depth <= 40; depth++ {
		allocDeep(depth, 10) // the odd depths are new, the even ones grow
	}
	allocSizes(40) // one call site, several sizes: samples told apart by their "bytes" label
	pprof.Do(context.Background(), pprof.Labels("phase", "between"), func(context.Context) {
		allocLabeled(500) // the runtime does not put labels on heap samples (only "bytes")
	})
	write("heap_cur.pb", "heap")

	// ---- mutex ----
	runtime.SetMutexProfileFraction(1)
	var muA, muB, muC sync.Mutex
	contend(contendOnce, &muC, 4, 5) // before the base only: absent from the delta
	contend(contendGrowing, &muA, 4, 10)
	write("mutex_base.pb", "mutex")
	contend(contendGrowing, &muA, 4, 10)
	contend(contendBetween, &muB, 6, 10)
	write("mutex_cur.pb", "mutex")
	runtime.SetMutexProfileFraction(0)

	// ---- block ----
	runtime.SetBlockProfileRate(1)
	blockOnceOnChan(5) // before the base only
	blockGrowingOnChan(10)
	write("block_base.pb", "block")
	blockGrowingOnChan(10)
	blockBetweenOnSelect(10)
	write("block_cur.pb", "block")
	runtime.SetBlockProfileRate(0)

	// ---- goroutine ----
	// The same function parked under different labels: one stack, several
	// samples (the goroutine profile keys samples by stack and labels).
	for i, worker := range []string{"a", "a", "a", "b", "b"} {
		pprof.Do(context.Background(), pprof.Labels("worker", worker), func(context.Context) {
			go parkedWorker(i)
		})
	}
	go parkedWorker(-1)
	go parkedWorker(-2)
	time.Sleep(50 * time.Millisecond)
	write("goroutine_base.pb", "goroutine")
	for i := 0; i < 20; i++ {
		go leakyWorker(i)
	}
	pprof.Do(context.Background(), pprof.Labels("worker", "c"), func(context.Context) {
		go parkedWorker(99)
	})
	time.Sleep(50 * time.Millisecond)
	write("goroutine_cur.pb", "goroutine")
	close(parked)
}

//go:noinline
func allocEarlyFreed(n int) {
	for i := 0; i < n; i++ {
		sink = make([]byte, 64)
	}
}

//go:noinline
func allocEarlyRetained(n int) {
	for i := 0; i < n; i++ {
		retained = append(retained, make([]byte, 256))
	}
}

//go:noinline
func allocGrowing(n int) {
	for i := 0; i < n; i++ {
		sink = make([]byte, 96)
	}
}

//go:noinline
func allocBetween(n int) {
	for i := 0; i < n; i++ {
		sink = make([]byte, 128)
	}
	retained = append(retained, make([]byte, 4096))
}

//go:noinline
func allocDeep(depth, n int) {
	if depth > 1 {
		allocDeep(depth-1, n)
		return
	}
	for i := 0; i < n; i++ {
		sink = make([]byte, 32)
	}
}

//go:noinline
func allocSizes(n int) {
	for i := 0; i < n; i++ {
		sink = make([]byte, 16<<(i%6)) // 16 B to 512 B: six size classes
	}
}

//go:noinline
func allocLabeled(n int) {
	for i := 0; i < n; i++ {
		sink = make([]byte, 48)
	}
}

// contend makes g goroutines run loop(mu, n), each in its own goroutine.
// The mutex profile records the stack that unlocks a contended mutex, so each
// loop function below is a stack of its own.
func contend(loop func(*sync.Mutex, int), mu *sync.Mutex, g, n int) {
	var wg sync.WaitGroup
	for i := 0; i < g; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			loop(mu, n)
		}()
	}
	wg.Wait()
}

//go:noinline
func lockLoop(mu *sync.Mutex, n int) {
	for k := 0; k < n; k++ {
		mu.Lock()
		time.Sleep(100 * time.Microsecond)
		mu.Unlock()
	}
}

//go:noinline
func contendOnce(mu *sync.Mutex, n int) { lockLoop(mu, n) }

//go:noinline
func contendGrowing(mu *sync.Mutex, n int) { lockLoop(mu, n) }

//go:noinline
func contendBetween(mu *sync.Mutex, n int) { lockLoop(mu, n) }

func sendLater(ch chan<- int, n int) {
	for i := 0; i < n; i++ {
		time.Sleep(200 * time.Microsecond)
		ch <- i
	}
}

//go:noinline
func blockOnceOnChan(n int) {
	ch := make(chan int)
	go sendLater(ch, n)
	for i := 0; i < n; i++ {
		<-ch
	}
}

//go:noinline
func blockGrowingOnChan(n int) {
	ch := make(chan int)
	go sendLater(ch, n)
	for i := 0; i < n; i++ {
		<-ch
	}
}

//go:noinline
func blockBetweenOnSelect(n int) {
	ch, other := make(chan int), make(chan int)
	go sendLater(ch, n)
	for i := 0; i < n; i++ {
		select {
		case <-ch:
		case <-other:
		}
	}
}

//go:noinline
func parkedWorker(id int) {
	<-parked
	_ = id
}

//go:noinline
func leakyWorker(id int) {
	<-parked
	_ = id
}
