//go:build cgo

package pprofio_test

import (
	"context"
	"runtime"
	"syscall"
	"testing"
	"time"

	"github.com/pprofio/pprofio"
)

func processCPU() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func heapAfterGC() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// BenchmarkAgentCycle runs the whole agent (scheduler, collector, core,
// local store) on an otherwise idle program, one op per collection cycle
// of 1 s with a 200 ms CPU window, and reports:
//
//	cpu-ms/cycle   process CPU (user+sys) per cycle: the agent's whole cost,
//	               Go side, C threads and the runtime's profiling signals
//	alloc-B/cycle  Go heap allocated per cycle (runtime/pprof's own buffers)
//	running-retained-B  Go heap in use between CPU windows minus before New:
//	                    what the agent keeps on the Go heap between cycles
//	retained-B     the same after Stop: what it leaves behind
//
// Run with: go test -run '^$' -bench AgentCycle -benchtime 10x .
func BenchmarkAgentCycle(b *testing.B) {
	before := heapAfterGC()
	var ms0, ms1 runtime.MemStats
	p, err := pprofio.New(pprofio.Config{
		ServiceName: "bench",
		OutputDir:   b.TempDir(),
		SampleRate:  time.Second,
		CPUDuration: 200 * time.Millisecond,
		StartJitter: -1,
	})
	if err != nil {
		b.Fatal(err)
	}
	runtime.ReadMemStats(&ms0)
	cpu0 := processCPU()
	b.ResetTimer()
	if err := p.Start(context.Background()); err != nil {
		b.Fatal(err)
	}
	for p.Stats().Cycles < uint64(b.N) {
		time.Sleep(20 * time.Millisecond)
	}
	b.StopTimer()
	// The heap the agent holds between CPU windows: the window of the cycle
	// that has just begun ends after 200 ms.
	time.Sleep(500 * time.Millisecond)
	running := heapAfterGC()
	cpu := processCPU() - cpu0
	runtime.ReadMemStats(&ms1)
	if err := p.Stop(); err != nil {
		b.Fatal(err)
	}
	after := heapAfterGC()
	b.ReportMetric(float64(cpu.Microseconds())/1000/float64(b.N), "cpu-ms/cycle")
	b.ReportMetric(float64(ms1.TotalAlloc-ms0.TotalAlloc)/float64(b.N), "alloc-B/cycle")
	b.ReportMetric(float64(int64(running)-int64(before)), "running-retained-B")
	b.ReportMetric(float64(int64(after)-int64(before)), "retained-B")
	if s := p.Stats(); s.ProfilesWritten == 0 {
		b.Fatalf("no profile written: %+v", s)
	}
}
