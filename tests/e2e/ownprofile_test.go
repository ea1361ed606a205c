package e2e

import (
	"bytes"
	"io"
	"log/slog"
	"runtime/pprof"
	"testing"
	"time"

	"github.com/google/pprof/profile"
	"github.com/pprofio/pprofio"
)

// TestProgramOwnCPUProfile: the program holds the one CPU profiler when a
// window opens. The agent skips that window, says so at Warn level and in
// Stats.ProfilesSkipped, and leaves the program's profile alone; once the
// program lets go, the agent's windows produce CPU files again, and between
// windows the program can profile freely.
func TestProgramOwnCPUProfile(t *testing.T) {
	out := t.TempDir()
	const service = "e2e-own"
	// The gap between windows (3.5 s) is far longer than the program's own
	// 0.3 s profile in step 6, so a busy machine that wakes it late still
	// finds the profiler free.
	const (
		rate   = 4 * time.Second
		window = 500 * time.Millisecond
	)
	spin(t, ownHot)
	logs := &logCapture{}
	defer func() {
		if t.Failed() {
			logs.dump(t)
		}
	}()

	// 1. The program starts its own CPU profile before the agent's first
	// window opens.
	var own bytes.Buffer
	if err := pprof.StartCPUProfile(&own); err != nil {
		t.Fatalf("the program's StartCPUProfile: %v (did an earlier test leave the profiler on?)", err)
	}
	ownStopped := false
	defer func() {
		if !ownStopped {
			pprof.StopCPUProfile()
		}
	}()
	p := startProfiler(t, pprofio.Config{
		ServiceName: service,
		OutputDir:   out,
		SampleRate:  rate,
		CPUDuration: window,
		StartJitter: -1,
		Logger:      slog.New(logs),
	})

	// 2. The first window is skipped; the program keeps its profile across
	// the whole window, until the first cycle has ended.
	waitFor(t, "a skipped window", func() bool { return p.Stats().ProfilesSkipped >= 1 })
	waitFor(t, "the first cycle to end", func() bool { return p.Stats().Cycles >= 1 })
	// The profiler is still taken (by the program: the agent skipped).
	if err := pprof.StartCPUProfile(io.Discard); err == nil {
		pprof.StopCPUProfile()
		t.Fatal("the CPU profiler was free while the program's profile should have been running: " +
			"someone stopped it")
	}
	beforeOwnStop := time.Now()
	pprof.StopCPUProfile()
	ownStopped = true

	// 3. The program's profile is whole: it parses, ran until the program
	// stopped it, and holds the program's hot function.
	ownProf, err := profile.Parse(bytes.NewReader(own.Bytes()))
	if err != nil {
		t.Fatalf("the program's own CPU profile does not parse: %v", err)
	}
	if ownProf.PeriodType == nil || ownProf.PeriodType.Type != "cpu" {
		t.Errorf("the program's profile: period type %v, want cpu", ownProf.PeriodType)
	}
	profEnd := time.Unix(0, ownProf.TimeNanos+ownProf.DurationNanos)
	if profEnd.Before(beforeOwnStop) {
		t.Errorf("the program's profile ended at %v, before the program stopped it at %v", profEnd, beforeOwnStop)
	}
	funcs, total := cpuSamples(t, ownProf)
	if oh := findFunc(funcs, "ownHot"); oh == nil || oh.Cum == 0 {
		t.Errorf("the program's profile (%d samples) lacks ownHot; top:%s", total, top(funcs, 8, cum))
	}

	// 4. The skip was logged at Warn level, naming the CPU profiler in use.
	if recs := logs.find(slog.LevelWarn, "cpu profil", "in use"); len(recs) == 0 {
		t.Error("no Warn record says the CPU profiler is in use")
	}

	// 5. With the profiler free, the agent's windows produce CPU files again;
	// none of them ran while the program held the profiler.
	waitFor(t, "a CPU file after the program let go", func() bool {
		return countRunning(t, out, service, pprofio.ProfileCPU) >= 1
	})
	cpu := listRunning(t, out, service, pprofio.ProfileCPU)
	withHot := 0
	for _, f := range cpu {
		if !f.End.After(beforeOwnStop) {
			t.Errorf("%s: an agent window ended while the program held the CPU profiler", f.Name)
		}
		prof := parseFile(t, f.Path)
		funcs, total := cpuSamples(t, prof)
		t.Logf("%s: %d samples", f.Name, total)
		if findFunc(funcs, "ownHot") != nil {
			withHot++
		}
	}
	if withHot == 0 {
		t.Errorf("no agent CPU file has samples of ownHot, which ran throughout")
	}

	// 6. Between windows the program profiles freely: half a second after a
	// window closed and well before the next opens (the windows repeat every
	// SampleRate from the last one's start), its StartCPUProfile succeeds,
	// and the agent's next window is not skipped for it.
	last := cpu[len(cpu)-1]
	slot := last.Start.Add(window + 600*time.Millisecond)
	for time.Until(slot) < 100*time.Millisecond {
		slot = slot.Add(rate)
	}
	skippedBefore := p.Stats().ProfilesSkipped
	time.Sleep(time.Until(slot))
	var own2 bytes.Buffer
	if err := pprof.StartCPUProfile(&own2); err != nil {
		t.Fatalf("the program's StartCPUProfile between windows (window %s, now %v): %v",
			last.Name, time.Now().UTC(), err)
	}
	time.Sleep(300 * time.Millisecond)
	pprof.StopCPUProfile()
	ownStop2 := time.Now()
	prof2, err := profile.Parse(bytes.NewReader(own2.Bytes()))
	if err != nil {
		t.Fatalf("the program's profile taken between windows does not parse: %v", err)
	}
	if prof2.PeriodType == nil || prof2.PeriodType.Type != "cpu" {
		t.Errorf("the program's profile taken between windows: period type %v, want cpu", prof2.PeriodType)
	}
	_, total2 := cpuSamples(t, prof2)
	t.Logf("the program's profile taken between windows: %d samples", total2)
	waitFor(t, "an agent CPU file after the program's second profile", func() bool {
		for _, f := range listRunning(t, out, service, pprofio.ProfileCPU) {
			if f.Start.After(ownStop2) {
				return true
			}
		}
		return false
	})
	if s := p.Stats(); s.ProfilesSkipped != skippedBefore {
		t.Errorf("ProfilesSkipped went from %d to %d: the program's profile between windows cost a window",
			skippedBefore, s.ProfilesSkipped)
	}

	if err := p.Stop(); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	s := p.Stats()
	t.Logf("stats: %+v", s)
	if s.ProfilesSkipped < 1 {
		t.Errorf("ProfilesSkipped = %d, want >= 1", s.ProfilesSkipped)
	}
	if s.ProfilesCollected != s.ProfilesWritten || dropped(s) != 0 {
		t.Errorf("Stats: %+v: want every collected profile written, none dropped", s)
	}
	// Each cycle has a heap profile and either a CPU profile or a skip.
	nCPU := uint64(len(listProfiles(t, out, service, pprofio.ProfileCPU)))
	nHeap := uint64(len(listProfiles(t, out, service, pprofio.ProfileHeap)))
	if nHeap != s.Cycles || nCPU+s.ProfilesSkipped != s.Cycles {
		t.Errorf("%d CPU files + %d skipped, %d heap files: want %d cycles of each", nCPU, s.ProfilesSkipped,
			nHeap, s.Cycles)
	}
}
