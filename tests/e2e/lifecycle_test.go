package e2e

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/pprofio/pprofio"
)

// TestStopWritesPartialCycle: Stop in the middle of the first cycle closes
// the open CPU window, takes the last heap snapshot, and has written both
// when it returns.
func TestStopWritesPartialCycle(t *testing.T) {
	out := t.TempDir()
	const service = "e2e-partial"
	spin(t, hotSpin)
	begin := time.Now()
	p := startProfiler(t, pprofio.Config{
		ServiceName: service,
		OutputDir:   out,
		SampleRate:  time.Minute, // CPUDuration defaults to 10 s
		StartJitter: -1,
	})
	time.Sleep(1500 * time.Millisecond) // inside the first CPU window
	if s := p.Stats(); s.Cycles != 0 || s.ProfilesWritten != 0 {
		t.Fatalf("before Stop: %+v, want no cycle done and nothing written", s)
	}
	if err := p.Stop(); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	stopped := time.Now()

	// No waiting: the files exist when Stop returns.
	cpu := listProfiles(t, out, service, pprofio.ProfileCPU)
	heap := listProfiles(t, out, service, pprofio.ProfileHeap)
	if len(cpu) != 1 || len(heap) != 1 {
		t.Fatalf("after Stop: %d CPU and %d heap files, want 1 and 1", len(cpu), len(heap))
	}
	for _, f := range append(cpu, heap...) {
		checkFile(t, f, begin, stopped) // the CPU window ended by Stop, not 10 s on
		parseFile(t, f.Path)
	}
	s := p.Stats()
	if s.Cycles != 1 || s.ProfilesWritten != 2 || s.ProfilesCollected != 2 {
		t.Errorf("Stats: Cycles %d, ProfilesWritten %d, ProfilesCollected %d; want 1, 2, 2 (%+v)",
			s.Cycles, s.ProfilesWritten, s.ProfilesCollected, s)
	}
	if s.BufferedBytes != 0 {
		t.Errorf("BufferedBytes = %d after Stop, want 0", s.BufferedBytes)
	}
}

// TestContextCancelStops: cancelling Start's context stops the Profiler by
// itself (the final cycle is written), a later Stop returns nil, and Start
// then returns ErrStopped.
func TestContextCancelStops(t *testing.T) {
	out := t.TempDir()
	const service = "e2e-ctx"
	p, err := pprofio.New(pprofio.Config{
		ServiceName: service,
		OutputDir:   out,
		SampleRate:  time.Minute, // no cycle ends by itself during the test
		StartJitter: -1,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Stop() })
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := p.Start(ctx); err != nil {
		t.Fatalf("Start: %v", err)
	}
	time.Sleep(300 * time.Millisecond)
	cancel()

	// Only a stop ends a cycle of a minute this early, and writes its files.
	waitFor(t, "the profiler to stop after cancel", func() bool {
		s := p.Stats()
		return s.Cycles == 1 && s.ProfilesWritten == 2
	})
	waitFor(t, "the final cycle's files", func() bool {
		return countRunning(t, out, service, pprofio.ProfileCPU) == 1 &&
			countRunning(t, out, service, pprofio.ProfileHeap) == 1
	})
	if err := stopWithin(t, p); err != nil {
		t.Errorf("Stop after cancel: %v, want nil", err)
	}
	if err := p.Start(context.Background()); !errors.Is(err, pprofio.ErrStopped) {
		t.Errorf("Start after the context stopped it: %v, want ErrStopped", err)
	}
	if s := p.Stats(); s.Cycles != 1 || s.ProfilesWritten != 2 {
		t.Errorf("final Stats: %+v, want 1 cycle and 2 profiles written", s)
	}
	cpu := listProfiles(t, out, service, pprofio.ProfileCPU)
	heap := listProfiles(t, out, service, pprofio.ProfileHeap)
	if len(cpu) != 1 || len(heap) != 1 {
		t.Errorf("after Stop: %d CPU and %d heap files, want 1 and 1", len(cpu), len(heap))
	}
}

// TestStartStopStates: Start twice returns ErrStarted, Stop is idempotent
// and returns the same each time, Start after Stop returns ErrStopped.
func TestStartStopStates(t *testing.T) {
	t.Run("StartTwice", func(t *testing.T) {
		p := startProfiler(t, pprofio.Config{
			ServiceName: "e2e-states",
			OutputDir:   t.TempDir(),
			SampleRate:  time.Minute,
			StartJitter: -1,
			Profiles:    []pprofio.ProfileType{pprofio.ProfileHeap},
		})
		if err := p.Start(context.Background()); !errors.Is(err, pprofio.ErrStarted) {
			t.Errorf("second Start: %v, want ErrStarted", err)
		}
		err1 := p.Stop()
		if err1 != nil {
			t.Errorf("Stop: %v", err1)
		}
		if err2 := p.Stop(); err2 != err1 {
			t.Errorf("second Stop: %v, want %v", err2, err1)
		}
		if err := p.Start(context.Background()); !errors.Is(err, pprofio.ErrStopped) {
			t.Errorf("Start after Stop: %v, want ErrStopped", err)
		}
		if s := p.Stats(); s.Cycles != 1 || s.ProfilesWritten != 1 {
			t.Errorf("Stats: %+v, want the final cycle's heap profile written", s)
		}
	})

	t.Run("StopWithoutStart", func(t *testing.T) {
		out := t.TempDir()
		p, err := pprofio.New(pprofio.Config{ServiceName: "e2e-states", OutputDir: out})
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 3; i++ {
			if err := stopWithin(t, p); err != nil {
				t.Errorf("Stop #%d without Start: %v, want nil", i+1, err)
			}
		}
		if err := p.Start(context.Background()); !errors.Is(err, pprofio.ErrStopped) {
			t.Errorf("Start after Stop: %v, want ErrStopped", err)
		}
		if s := p.Stats(); s != (pprofio.Stats{}) {
			t.Errorf("Stats of a Profiler never started: %+v, want zero", s)
		}
		if entries, _ := os.ReadDir(out); len(entries) != 0 {
			t.Errorf("a Profiler never started wrote %d entries to OutputDir", len(entries))
		}
	})

	// A write error of the final cycle is Stop's result, every time it is
	// called. The service's folder is a regular file, so nothing can be
	// written under it.
	t.Run("StopErrorRepeats", func(t *testing.T) {
		out := t.TempDir()
		const service = "e2e-states"
		if err := os.WriteFile(filepath.Join(out, service), []byte("in the way"), 0o600); err != nil {
			t.Fatal(err)
		}
		p := startProfiler(t, pprofio.Config{
			ServiceName: service,
			OutputDir:   out,
			SampleRate:  time.Minute,
			StartJitter: -1,
			Profiles:    []pprofio.ProfileType{pprofio.ProfileHeap},
		})
		err1 := stopWithin(t, p)
		if err1 == nil {
			t.Fatal("Stop: nil, want the final cycle's write error")
		}
		t.Logf("Stop: %v", err1)
		for i := 0; i < 2; i++ {
			if err2 := p.Stop(); err2 != err1 {
				t.Errorf("Stop again: %v, want the same error %v", err2, err1)
			}
		}
		s := p.Stats()
		if s.ProfilesDroppedWrite != 1 || s.ProfilesWritten != 0 {
			t.Errorf("Stats: %+v, want one profile dropped by the write failure", s)
		}
	})
}
