//go:build cgo

package pprofio_test

import (
	"context"
	"runtime"
	"testing"
	"time"

	"github.com/pprofio/pprofio"
	"github.com/pprofio/pprofio/internal/collector"
)

// TestCollectorCostsPerType: after a whole cycle of every profile type,
// the collector's cost counters (read by the overhead benchmark) have
// counted each type's commands and, on Linux, a CPU time for each.
func TestCollectorCostsPerType(t *testing.T) {
	before := collector.Costs()
	p, err := pprofio.New(pprofio.Config{
		ServiceName: "costs",
		OutputDir:   t.TempDir(),
		SampleRate:  2 * time.Second,
		CPUDuration: time.Second,
		StartJitter: -1,
		Profiles: []pprofio.ProfileType{pprofio.ProfileCPU, pprofio.ProfileHeap,
			pprofio.ProfileGoroutine, pprofio.ProfileMutex, pprofio.ProfileBlock},
	})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	if err := p.Start(context.Background()); err != nil {
		t.Fatalf("Start: %v", err)
	}
	// A hang guard, not a speed limit: a cycle takes 2 s.
	for deadline := time.Now().Add(2 * time.Minute); p.Stats().Cycles < 1; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("no cycle completed")
		}
	}
	if err := p.Stop(); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	after := collector.Costs()
	for _, typ := range []string{"cpu", "heap", "goroutine", "mutex", "block"} {
		b, a := before[typ], after[typ]
		// A CPU window and a mutex or block window are a start and a stop.
		want := uint64(1)
		if typ == "cpu" || typ == "mutex" || typ == "block" {
			want = 2
		}
		if a.Commands-b.Commands < want {
			t.Errorf("%s: %d commands counted, want at least %d", typ, a.Commands-b.Commands, want)
		}
		if runtime.GOOS == "linux" && a.CPU <= b.CPU {
			t.Errorf("%s: no collector CPU time counted (%v before, %v after)", typ, b.CPU, a.CPU)
		}
	}
}
