// Command godeltabench sets the whole cost of one delta heap, mutex and
// block profile, ready to send, beside pyroscope-go's godeltaprof, in one
// program with large profiles (by default 60,000 heap stacks, 6,000 mutex
// and 6,000 block stacks):
//
//   - godeltaprof: HeapProfiler / MutexProfiler / BlockProfiler.Profile
//     into a reused buffer (it reads the runtime's records, keeps the
//     previous ones and writes a gzipped delta);
//   - pprofio's paths (measure.go), driving the same internal code the
//     agent runs.
//
// Each cycle first adds allocations, contentions and blocking along a
// quarter of the stacks (the delta), then each path makes its delta of
// each type, the order alternating between cycles. A mutex or block cost
// includes what a path does at the window's start (pprofio takes a
// baseline snapshot there). Per delta: the CPU clock of the measuring
// thread (the Go work and the C work the calls did on it), the process's
// CPU over the same interval (adds GC work done meanwhile by other
// threads), the Go heap bytes and objects allocated, and the gzipped size.
// The figures of every cycle after warm-up (results/results.json) become a
// table (results/latest.md) and a chart (results/godeltaprof.svg): medians
// and ranges over cycles, and the ratios to godeltaprof's beside the goals
// (at most half its CPU, a tenth of its Go allocations).
//
//	cd tests/godeltabench && go run . [-cycles 9] [-heap 60000]
//	go run . -render results   # the table and chart again, from results/results.json
//
// It is its own module so that godeltaprof never reaches pprofio's users.
package main

import (
	"github.com/pprofio/pprofio/tests/internal/benchmeta"

	"flag"
	"fmt"
	"os"
	"runtime"
	"time"
)

const depth = 17 // frames of the walk: 2^17 paths, each its own stack

func main() {
	cycles := flag.Int("cycles", 9, "measured cycles (after -warmup)")
	warmup := flag.Int("warmup", 4, "cycles run first and not counted (4: each quarter of the stacks once)")
	nHeap := flag.Int("heap", 60000, "distinct heap stacks")
	nMutex := flag.Int("mutex", 6000, "distinct mutex stacks")
	nBlock := flag.Int("block", 6000, "distinct block stacks")
	out := flag.String("out", "results", "directory for results.json, latest.md and godeltaprof.svg")
	render := flag.String("render", "", "redo latest.md and godeltaprof.svg from the results.json in this directory, without running anything")
	flag.Parse()
	if *render != "" {
		if err := rerender(*render); err != nil {
			fmt.Fprintln(os.Stderr, "godeltabench:", err)
			os.Exit(1)
		}
		return
	}
	m := newMeta(*cycles, *warmup)
	runtime.LockOSThread()

	runtime.SetMutexProfileFraction(1)
	runtime.SetBlockProfileRate(1)
	startHelpers()
	t0 := time.Now()
	run(kindHeap, 0, uint32(*nHeap))
	run(kindMutex, 0, uint32(*nMutex))
	run(kindBlock, 0, uint32(*nBlock))
	runtime.GC()
	runtime.GC()
	counts := recordCounts()
	fmt.Fprintf(os.Stderr, "godeltabench: %d heap, %d mutex, %d block records (made in %v)\n",
		counts[0], counts[1], counts[2], time.Since(t0).Round(time.Millisecond))

	paths := makePaths()
	res := newResults(m, paths, counts)
	for c := 0; c < *warmup+*cycles; c++ {
		starts := make([][3]cost, len(paths))
		for i, p := range paths {
			for _, k := range []int{kindMutex, kindBlock} {
				starts[i][k] = measure(func() int { return p.start(k) })
			}
		}
		churn(c, *nHeap, *nMutex, *nBlock)
		for k := kindHeap; k <= kindBlock; k++ {
			for j := range paths {
				i := (j + c) % len(paths) // alternate which path goes first
				p := paths[i]
				d := measure(func() int { return p.delta(k) })
				d.add(starts[i][k])
				d.OutB -= starts[i][k].OutB
				if c >= *warmup {
					res.add(i, k, d)
				}
			}
		}
		fmt.Fprintf(os.Stderr, "godeltabench: cycle %d/%d\n", c+1, *warmup+*cycles)
	}
	res.Meta.LoadAfter = benchmeta.LoadAvg()
	if err := res.write(*out); err != nil {
		fmt.Fprintln(os.Stderr, "godeltabench:", err)
		os.Exit(1)
	}
}

// churn adds this cycle's share: a quarter of each kind's stacks, a
// different quarter each cycle.
func churn(cycle, nHeap, nMutex, nBlock int) {
	q := func(n int) (uint32, uint32) {
		from := (cycle % 4) * n / 4
		return uint32(from), uint32(from + n/4)
	}
	a, b := q(nHeap)
	run(kindHeap, a, b)
	a, b = q(nMutex)
	run(kindMutex, a, b)
	a, b = q(nBlock)
	run(kindBlock, a, b)
	runtime.GC()
	runtime.GC()
}

func recordCounts() [3]int {
	h, _ := runtime.MemProfile(nil, true)
	m, _ := runtime.MutexProfile(nil)
	b, _ := runtime.BlockProfile(nil)
	return [3]int{h, m, b}
}
