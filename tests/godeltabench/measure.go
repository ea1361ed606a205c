package main

import (
	"bufio"
	"bytes"
	"runtime"
	"runtime/pprof"
	"syscall"
	"time"
	"unsafe"

	"github.com/grafana/pyroscope-go/godeltaprof"

	"github.com/pprofio/pprofio/internal/core"
)

// cost is what producing one delta profile took.
// Its fields go to results.json as they are (durations in nanoseconds).
type cost struct {
	ThreadCPU time.Duration `json:"thread_cpu_ns"` // the measuring thread's CPU clock: Go and C work done in the call
	ProcCPU   time.Duration `json:"proc_cpu_ns"`   // the process's CPU (getrusage): adds what other threads did meanwhile (GC)
	AllocB    uint64        `json:"alloc_bytes"`   // Go heap bytes allocated
	AllocN    uint64        `json:"allocs"`        // Go heap objects allocated
	OutB      int           `json:"out_bytes"`     // the delta profile, gzipped, ready to send
}

func (c *cost) add(o cost) {
	c.ThreadCPU += o.ThreadCPU
	c.ProcCPU += o.ProcCPU
	c.AllocB += o.AllocB
	c.AllocN += o.AllocN
	c.OutB += o.OutB
}

const clockThreadCPUTimeID = 3 // CLOCK_THREAD_CPUTIME_ID

func threadCPU() time.Duration {
	var ts syscall.Timespec
	syscall.RawSyscall(syscall.SYS_CLOCK_GETTIME, clockThreadCPUTimeID, uintptr(unsafe.Pointer(&ts)), 0)
	return time.Duration(ts.Nano())
}

func procCPU() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// measure runs fn once and says what it cost; fn returns its output size.
// The caller holds its OS thread (runtime.LockOSThread).
func measure(fn func() int) cost {
	var m0, m1 runtime.MemStats
	runtime.ReadMemStats(&m0)
	t0, p0 := threadCPU(), procCPU()
	n := fn()
	t1, p1 := threadCPU(), procCPU()
	runtime.ReadMemStats(&m1)
	return cost{ThreadCPU: t1 - t0, ProcCPU: p1 - p0, AllocB: m1.TotalAlloc - m0.TotalAlloc,
		AllocN: m1.Mallocs - m0.Mallocs, OutB: n}
}

// A path produces delta profiles of the three types, one per call.
type path interface {
	name() string
	// start is called at a mutex/block window's start (pprofio takes its baseline there).
	start(kind int) int
	// delta makes the kind's delta profile and returns its size, gzipped.
	delta(kind int) int
}

// godelta is pyroscope-go's godeltaprof with its default options, writing
// into a reused buffer.
type godelta struct {
	heap   *godeltaprof.HeapProfiler
	mb, bb *godeltaprof.BlockProfiler
	buf    bytes.Buffer
}

func newGodelta() *godelta {
	return &godelta{heap: godeltaprof.NewHeapProfiler(), mb: godeltaprof.NewMutexProfiler(),
		bb: godeltaprof.NewBlockProfiler()}
}

func (g *godelta) name() string       { return "godeltaprof" }
func (g *godelta) start(kind int) int { return -1 } // nothing to do at a window's start

func (g *godelta) delta(kind int) int {
	g.buf.Reset()
	var err error
	switch kind {
	case kindHeap:
		err = g.heap.Profile(&g.buf)
	case kindMutex:
		err = g.mb.Profile(&g.buf)
	case kindBlock:
		err = g.bb.Profile(&g.buf)
	}
	if err != nil {
		panic(err)
	}
	return g.buf.Len()
}

// collectorPath is what pprofio's agent does today: the collector writes
// runtime/pprof's profile through a 32 KB bufio.Writer into C memory,
// inflated on the way in; the core subtracts the previous snapshot
// (heap: the last cycle's; mutex, block: the window's start) and the
// delta is deflated for the batch.
type collectorPath struct {
	snaps [3]*core.Snapshots
	w     *bufio.Writer
}

func newCollectorPath() *collectorPath {
	c := &collectorPath{w: bufio.NewWriterSize(nil, 32<<10)}
	for i := range c.snaps {
		s, err := core.NewSnapshots()
		if err != nil {
			panic(err)
		}
		c.snaps[i] = s
	}
	return c
}

var profileNames = [3]string{"heap", "mutex", "block"}

func (c *collectorPath) name() string { return "pprofio (runtime/pprof + C delta)" }

func (c *collectorPath) snapshot(kind int, emit, drop bool) int {
	s := c.snaps[kind]
	if err := s.Begin(); err != nil {
		panic(err)
	}
	c.w.Reset(s)
	err := pprof.Lookup(profileNames[kind]).WriteTo(c.w, 0)
	if err == nil {
		err = c.w.Flush()
	}
	c.w.Reset(nil)
	if err != nil {
		panic(err)
	}
	_, gz, err := s.End(emit, drop)
	if err != nil {
		panic(err)
	}
	return gz
}

func (c *collectorPath) start(kind int) int {
	if kind == kindHeap {
		return -1
	}
	return c.snapshot(kind, false, false)
}

func (c *collectorPath) delta(kind int) int { return c.snapshot(kind, true, kind != kindHeap) }
