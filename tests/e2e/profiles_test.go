package e2e

import (
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/pprofio/pprofio"
)

// TestCPUProfiles: the CPU files parse as pprof CPU profiles, the hot
// function of the program is among their top entries, and the files and
// folders are named and protected as the package documents.
func TestCPUProfiles(t *testing.T) {
	out := filepath.Join(t.TempDir(), "out") // the agent creates it
	const service = "e2e-cpu"
	stopSpin := spin(t, hotSpin)

	begin := time.Now()
	p := startProfiler(t, pprofio.Config{
		ServiceName: service,
		OutputDir:   out,
		SampleRate:  2 * time.Second,
		CPUDuration: time.Second,
		StartJitter: -1,
		Tags:        map[string]string{"env": "test"},
	})
	// The first cycle's files are written when it ends, at about 2 s.
	waitFor(t, "the first CPU file", func() bool {
		return countRunning(t, out, service, pprofio.ProfileCPU) >= 1
	})
	if err := p.Stop(); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	end := time.Now()
	stopSpin()

	files := listProfiles(t, out, service, pprofio.ProfileCPU)
	if len(files) == 0 {
		t.Fatal("no CPU files")
	}
	for _, d := range []string{out, filepath.Join(out, service), filepath.Join(out, service, "cpu"),
		filepath.Join(out, service, "heap")} {
		checkDirMode(t, d)
	}
	// Every window with a few samples (the full ones; a partial one may
	// have none) must show hotSpin: it is the one busy goroutine.
	const minSamples = 5
	full := 0
	for _, f := range files {
		checkFile(t, f, begin, end)
		prof := parseFile(t, f.Path)
		if prof.PeriodType == nil || prof.PeriodType.Type != "cpu" {
			t.Errorf("%s: period type %v, want cpu", f.Name, prof.PeriodType)
		}
		sampleIndex(t, prof, "cpu")
		funcs, total := cpuSamples(t, prof)
		t.Logf("%s: %d samples", f.Name, total)
		if total < minSamples {
			continue
		}
		full++
		rf, rc := rank(funcs, "hotSpin", flat), rank(funcs, "hotSpin", cum)
		if (rf == 0 || rf > 3) && (rc == 0 || rc > 5) {
			t.Errorf("%s: hotSpin is not among the top entries (flat rank %d, cum rank %d); top by flat:%s\ntop by cum:%s",
				f.Name, rf, rc, top(funcs, 5, flat), top(funcs, 8, cum))
		}
		if hs := findFunc(funcs, "hotSpin"); hs == nil || hs.Cum*2 < total {
			t.Errorf("%s: hotSpin has under half of the %d samples: %+v", f.Name, total, hs)
		}
	}
	if full == 0 {
		t.Errorf("no CPU file has %d samples or more, though hotSpin ran through every window", minSamples)
	}
}

// TestHeapProfiles: the heap files parse, and the allocating function shows
// in alloc_space (and, as it keeps its last chunks alive, in inuse_space).
func TestHeapProfiles(t *testing.T) {
	out := t.TempDir()
	const service = "e2e-heap"
	begin := time.Now()
	p := startProfiler(t, pprofio.Config{
		ServiceName: service,
		OutputDir:   out,
		SampleRate:  time.Second,
		StartJitter: -1,
		Profiles:    []pprofio.ProfileType{pprofio.ProfileHeap},
	})
	// The heap profile reports as of the last completed GC: allocate, then
	// collect, through every cycle.
	work := func() {
		allocHeavy(256) // 16 MiB: about 32 samples at the default MemProfileRate
		runtime.GC()
	}
	for countRunning(t, out, service, pprofio.ProfileHeap) < 2 {
		if time.Since(begin) > waitGuard {
			t.Fatal("timed out waiting for two heap files")
		}
		work()
		time.Sleep(50 * time.Millisecond)
	}
	work() // the final, partial cycle has its allocations too
	if err := p.Stop(); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	end := time.Now()

	if n := len(listProfiles(t, out, service, pprofio.ProfileCPU)); n != 0 {
		t.Errorf("%d CPU files, but only heap profiles were selected", n)
	}
	files := listProfiles(t, out, service, pprofio.ProfileHeap)
	if len(files) < 3 {
		t.Fatalf("%d heap files, want at least 3 (two cycles and the final one)", len(files))
	}
	checkDirMode(t, filepath.Join(out, service, "heap"))
	for _, f := range files {
		checkFile(t, f, begin, end)
		prof := parseFile(t, f.Path)
		for _, typ := range []string{"alloc_objects", "alloc_space", "inuse_objects", "inuse_space"} {
			sampleIndex(t, prof, typ)
		}
		alloc, allocTotal := byFunction(prof, sampleIndex(t, prof, "alloc_space"))
		inuse, _ := byFunction(prof, sampleIndex(t, prof, "inuse_space"))
		ah := findFunc(alloc, "allocHeavy")
		if ah == nil || ah.Flat <= 0 {
			t.Errorf("%s: allocHeavy is not in alloc_space; top:%s", f.Name, top(alloc, 8, flat))
			continue
		}
		if r := rank(alloc, "allocHeavy", flat); r == 0 || r > 3 {
			t.Errorf("%s: allocHeavy ranks %d by alloc_space; top:%s", f.Name, r, top(alloc, 8, flat))
		}
		if ih := findFunc(inuse, "allocHeavy"); ih == nil || ih.Flat <= 0 {
			t.Errorf("%s: allocHeavy is not in inuse_space, though it keeps 16 MiB alive; top:%s",
				f.Name, top(inuse, 8, flat))
		}
		t.Logf("%s: allocHeavy alloc_space %d of %d", f.Name, ah.Flat, allocTotal)
	}
}

// TestStatsAfterCycles: after a few cycles with nothing in the way, every
// profile collected is written, nothing is dropped or skipped, the bytes
// written are the files' bytes, and nothing stays buffered after Stop.
func TestStatsAfterCycles(t *testing.T) {
	out := t.TempDir()
	const service = "e2e-stats"
	stopSpin := spin(t, hotSpin)
	p := startProfiler(t, pprofio.Config{
		ServiceName: service,
		OutputDir:   out,
		SampleRate:  time.Second,
		CPUDuration: 500 * time.Millisecond,
		StartJitter: -1,
	})
	waitFor(t, "three cycles", func() bool { return p.Stats().Cycles >= 3 })
	if err := p.Stop(); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	stopSpin()
	s := p.Stats()
	t.Logf("stats: %+v", s)

	if s.Cycles < 3 {
		t.Errorf("Cycles = %d, want >= 3", s.Cycles)
	}
	if s.ProfilesCollected != s.ProfilesWritten {
		t.Errorf("ProfilesCollected = %d, ProfilesWritten = %d: want equal", s.ProfilesCollected, s.ProfilesWritten)
	}
	// Every cycle, the final one included, has one CPU and one heap profile.
	if s.ProfilesWritten != 2*s.Cycles {
		t.Errorf("ProfilesWritten = %d, want 2*Cycles = %d", s.ProfilesWritten, 2*s.Cycles)
	}
	if d := dropped(s); d != 0 || s.BytesDropped != 0 {
		t.Errorf("dropped %d profiles (%d bytes), want none", d, s.BytesDropped)
	}
	if s.ProfilesSkipped != 0 {
		t.Errorf("ProfilesSkipped = %d, want 0", s.ProfilesSkipped)
	}
	if s.BytesReceived == 0 || s.BytesWritten == 0 {
		t.Errorf("BytesReceived = %d, BytesWritten = %d: want both > 0", s.BytesReceived, s.BytesWritten)
	}
	if s.BufferedBytes != 0 {
		t.Errorf("BufferedBytes = %d after Stop, want 0", s.BufferedBytes)
	}
	if s.BufferedBytesPeak <= 0 || s.BufferedBytesPeak > pprofio.DefaultMaxBufferBytes {
		t.Errorf("BufferedBytesPeak = %d, want in (0, %d]", s.BufferedBytesPeak, pprofio.DefaultMaxBufferBytes)
	}

	cpu := listProfiles(t, out, service, pprofio.ProfileCPU)
	heap := listProfiles(t, out, service, pprofio.ProfileHeap)
	if uint64(len(cpu)) != s.Cycles || uint64(len(heap)) != s.Cycles {
		t.Errorf("%d CPU and %d heap files, want %d of each (one per cycle)", len(cpu), len(heap), s.Cycles)
	}
	var size int64
	for _, f := range append(cpu, heap...) {
		size += f.Size
	}
	if uint64(size) != s.BytesWritten {
		t.Errorf("BytesWritten = %d, but the files hold %d bytes", s.BytesWritten, size)
	}
	// Stats after Stop are final.
	if s2 := p.Stats(); s2 != s {
		t.Errorf("Stats changed after Stop: %+v then %+v", s, s2)
	}
}
