package e2e

import (
	"log/slog"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pprofio/pprofio"
	"github.com/pprofio/pprofio/examples/ingest-server/ingestpb"
)

// The profile types beyond CPU and heap, and the deltas the core computes.

//go:noinline
func contendedLock(mu *sync.Mutex, stop *atomic.Bool) {
	for !stop.Load() {
		mu.Lock()
		time.Sleep(100 * time.Microsecond)
		mu.Unlock()
	}
}

//go:noinline
func waitOnChannel(ch chan int, stop *atomic.Bool) {
	for !stop.Load() {
		select {
		case <-ch:
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// run starts fn in goroutines and returns a func that stops them.
func run(n int, fn func(stop *atomic.Bool)) (stop func()) {
	var flag atomic.Bool
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() { defer wg.Done(); fn(&flag) }()
	}
	return func() { flag.Store(true); wg.Wait() }
}

func windowedConfig(t *testing.T, types ...pprofio.ProfileType) (pprofio.Config, string) {
	out := t.TempDir()
	return pprofio.Config{
		ServiceName: "types",
		OutputDir:   out,
		SampleRate:  time.Second,
		CPUDuration: 500 * time.Millisecond,
		StartJitter: -1,
		Profiles:    types,
	}, out
}

// A known contended mutex shows in the mutex profile, as contention
// during the window.
func TestMutexWindowShowsTheContendedFunction(t *testing.T) {
	// Two contenders: with the Go runtime, waits that began before the
	// window raised the fraction are not charged, and with three or more
	// goroutines queued on one lock the queue can stay in that state.
	var mu sync.Mutex
	stop := run(2, func(s *atomic.Bool) { contendedLock(&mu, s) })
	defer stop()
	cfg, out := windowedConfig(t, pprofio.ProfileMutex)
	p := startProfiler(t, cfg)
	waitFor(t, "3 cycles", func() bool { return p.Stats().Cycles >= 3 })
	if err := stopWithin(t, p); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	files := listProfiles(t, out, "types", pprofio.ProfileMutex)
	if len(files) < 3 {
		t.Fatalf("%d mutex files, want a window's profile per cycle", len(files))
	}
	found := 0
	for _, f := range files[:len(files)-1] { // the last window may be cut short by Stop
		prof := parseFile(t, f.Path)
		m, total := byFunction(prof, sampleIndex(t, prof, "delay"))
		if v := findFunc(m, "contendedLock"); v != nil && v.Cum > 0 {
			found++
		}
		// A window's share: far below the totals since start, which grow
		// cycle after cycle. One window of 0.5 s with 2 contenders cannot
		// hold much more than 0.5 s of delay (scaled by the fraction).
		if total > int64(10*time.Second) {
			t.Errorf("%s: %v of delay in a 0.5 s window: not a delta", f.Name, time.Duration(total))
		}
	}
	if found == 0 {
		for _, f := range files {
			prof := parseFile(t, f.Path)
			m, total := byFunction(prof, sampleIndex(t, prof, "delay"))
			t.Logf("%s: %d samples, total %v, top: %s", f.Name, len(prof.Sample), time.Duration(total), top(m, 5, cum))
		}
		t.Fatalf("contendedLock is in no mutex profile")
	}
	if s := p.Stats(); s.Deltas == 0 {
		t.Errorf("Stats.Deltas = 0: the mutex profiles were not sent as deltas: %+v", s)
	}
}

// A goroutine that blocks on a channel shows in the block profile.
func TestBlockWindowShowsTheBlockingFunction(t *testing.T) {
	ch := make(chan int)
	stop := run(2, func(s *atomic.Bool) { waitOnChannel(ch, s) })
	defer stop()
	cfg, out := windowedConfig(t, pprofio.ProfileBlock)
	p := startProfiler(t, cfg)
	waitFor(t, "3 cycles", func() bool { return p.Stats().Cycles >= 3 })
	if err := stopWithin(t, p); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	files := listProfiles(t, out, "types", pprofio.ProfileBlock)
	if len(files) < 3 {
		t.Fatalf("%d block files", len(files))
	}
	found := false
	for _, f := range files {
		prof := parseFile(t, f.Path)
		m, _ := byFunction(prof, sampleIndex(t, prof, "delay"))
		if v := findFunc(m, "waitOnChannel"); v != nil && v.Cum > 0 {
			found = true
		}
	}
	if !found {
		t.Fatalf("waitOnChannel is in no block profile")
	}
}

var heapSink [][]byte

//go:noinline
func allocEarly(stop *atomic.Bool) {
	for !stop.Load() {
		heapSink = append(heapSink[:0], make([]byte, 64<<10))
		time.Sleep(time.Millisecond)
	}
}

// A function that allocates shows in the heap delta of the cycles in which
// it allocates, and not in a later cycle after it stopped.
func TestHeapDeltaShowsOnlyThisCyclesAllocations(t *testing.T) {
	stopAlloc := run(1, allocEarly)
	cfg, out := windowedConfig(t, pprofio.ProfileHeap)
	p := startProfiler(t, cfg)
	waitFor(t, "2 cycles", func() bool { return p.Stats().Cycles >= 2 })
	stopAlloc()
	stoppedAt := p.Stats().Cycles
	// Heap profiles reflect the last completed GC: force some, then wait
	// for two whole cycles without allocEarly.
	waitFor(t, "2 more cycles", func() bool {
		runtime.GC()
		return p.Stats().Cycles >= stoppedAt+3
	})
	if err := stopWithin(t, p); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	files := listProfiles(t, out, "types", pprofio.ProfileHeap)
	if len(files) < 4 {
		t.Fatalf("%d heap files", len(files))
	}
	allocIn := func(f profileFile) int64 {
		prof := parseFile(t, f.Path)
		m, _ := byFunction(prof, sampleIndex(t, prof, "alloc_space"))
		if v := findFunc(m, "allocEarly"); v != nil {
			return v.Cum
		}
		return 0
	}
	if got := allocIn(files[1]); got == 0 {
		t.Errorf("%s: allocEarly allocated in this cycle but is not in its heap delta", files[1].Name)
	}
	last := files[len(files)-2] // the last whole cycle
	if got := allocIn(last); got != 0 {
		t.Errorf("%s: allocEarly stopped cycles ago but the heap profile shows %d bytes: not a delta", last.Name, got)
	}
	// in-use memory stays the state at the end, not a difference: the
	// runtime's own live heap is always there.
	prof := parseFile(t, last.Path)
	if _, inuse := byFunction(prof, sampleIndex(t, prof, "inuse_space")); inuse <= 0 {
		t.Errorf("%s: inuse_space total %d: in-use values must stay as they are", last.Name, inuse)
	}
	if s := p.Stats(); s.Deltas == 0 || s.DeltasFailed != 0 {
		t.Errorf("Stats: Deltas %d, DeltasFailed %d", s.Deltas, s.DeltasFailed)
	}
}

// The program's own mutex fraction and block rate are back in place after
// each window and after Stop.
func TestProgramRatesAreRestoredAfterEachWindowAndStop(t *testing.T) {
	prevMutex := runtime.SetMutexProfileFraction(3)
	defer runtime.SetMutexProfileFraction(prevMutex)
	pprofio.SetBlockProfileRate(0) // the program does not sample blocking
	defer pprofio.SetBlockProfileRate(0)

	cfg, _ := windowedConfig(t, pprofio.ProfileMutex, pprofio.ProfileBlock)
	cfg.MutexProfileFraction = 50 // samples less than the program: the program's 3 is kept
	p := startProfiler(t, cfg)
	seen := map[int]int{}
	deadline := time.Now().Add(3500 * time.Millisecond)
	for time.Now().Before(deadline) {
		seen[runtime.SetMutexProfileFraction(-1)]++
		time.Sleep(5 * time.Millisecond)
	}
	if err := stopWithin(t, p); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	for v := range seen {
		if v != 3 {
			t.Errorf("mutex fraction %d seen: the window must not lower the program's sampling (3)", v)
		}
	}
	if got := runtime.SetMutexProfileFraction(-1); got != 3 {
		t.Errorf("after Stop the mutex fraction is %d, want the program's 3", got)
	}

	// Block: the runtime has no getter, so check by behaviour. After Stop
	// the program's rate (0: off) is in force: blocking is not recorded.
	before := blockEvents()
	ch := make(chan int)
	go func() { time.Sleep(20 * time.Millisecond); ch <- 1 }()
	<-ch
	if after := blockEvents(); after != before {
		t.Errorf("after Stop blocking is still recorded (%d → %d events): the program's block rate 0 was not put back", before, after)
	}
}

// A program that raises the mutex fraction itself sees it kept, and a
// window raises a program's zero to the agent's rate only while it lasts.
func TestMutexFractionIsRaisedOnlyDuringTheWindow(t *testing.T) {
	prev := runtime.SetMutexProfileFraction(0)
	defer runtime.SetMutexProfileFraction(prev)
	cfg, _ := windowedConfig(t, pprofio.ProfileMutex)
	cfg.CPUDuration = 300 * time.Millisecond
	p := startProfiler(t, cfg)
	// Watch until both were seen (a window and a gap), however long a busy
	// machine takes to get there; only a hang meets waitGuard.
	seen := map[int]int{}
	deadline := time.Now().Add(waitGuard)
	for (seen[pprofio.DefaultMutexProfileFraction] == 0 || seen[0] == 0) && time.Now().Before(deadline) {
		seen[runtime.SetMutexProfileFraction(-1)]++
		time.Sleep(5 * time.Millisecond)
	}
	if err := stopWithin(t, p); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if seen[pprofio.DefaultMutexProfileFraction] == 0 || seen[0] == 0 {
		t.Errorf("fractions seen %v: want the agent's %d during windows and the program's 0 between them",
			seen, pprofio.DefaultMutexProfileFraction)
	}
	if got := runtime.SetMutexProfileFraction(-1); got != 0 {
		t.Errorf("after Stop the mutex fraction is %d, want 0", got)
	}
}

func blockEvents() int {
	var recs []runtime.BlockProfileRecord
	n, _ := runtime.BlockProfile(nil)
	for {
		recs = make([]runtime.BlockProfileRecord, n+16)
		var ok bool
		n, ok = runtime.BlockProfile(recs)
		if ok {
			break
		}
	}
	total := 0
	for _, r := range recs[:n] {
		total += int(r.Count)
	}
	return total
}

//go:noinline
func leakyWorker(never chan struct{}) { <-never }

// A program that leaks goroutines steadily raises exactly one
// goroutine_leak event, naming the leaking function.
func TestSteadyGoroutineLeakRaisesExactlyOneEvent(t *testing.T) {
	never := make(chan struct{})
	defer close(never)
	var stopped atomic.Bool
	go func() {
		for !stopped.Load() {
			for i := 0; i < 15; i++ {
				go leakyWorker(never)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}()
	defer stopped.Store(true)

	logs := &logCapture{}
	cfg, _ := windowedConfig(t, pprofio.ProfileGoroutine)
	cfg.LeakWindows = 3
	cfg.LeakMinGrowth = 30
	cfg.Logger = slog.New(logs)
	p := startProfiler(t, cfg)
	waitFor(t, "8 cycles", func() bool { return p.Stats().Cycles >= 8 })
	if err := stopWithin(t, p); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	s := p.Stats()
	if s.GoroutineLeaks != 1 {
		logs.dump(t)
		t.Fatalf("GoroutineLeaks = %d over %d cycles of steady leaking, want exactly 1", s.GoroutineLeaks, s.Cycles)
	}
	warn := logs.find(slog.LevelWarn, "goroutine leak")
	if len(warn) != 1 || !strings.Contains(warn[0].Msg, "leakyWorker") {
		logs.dump(t)
		t.Fatalf("want one warning naming leakyWorker, got %d", len(warn))
	}
}

// A busy but steady server under bursty load raises no leak alert over
// 20 cycles with the default rule.
func TestBurstyButSteadyServerRaisesNoLeak(t *testing.T) {
	if testing.Short() {
		t.Skip("20 cycles")
	}
	quit := make(chan struct{})
	var wg sync.WaitGroup
	for i := 0; i < 400; i++ { // the server's standing workers
		wg.Add(1)
		go func() { defer wg.Done(); <-quit }()
	}
	var stopped atomic.Bool
	go func() { // bursts of short requests, 0 to ~60 in flight
		for n := 0; !stopped.Load(); n++ {
			burst := (n * 37) % 60
			for i := 0; i < burst; i++ {
				go func(d time.Duration) { time.Sleep(d) }(time.Duration(10+(i*13)%150) * time.Millisecond)
			}
			time.Sleep(40 * time.Millisecond)
		}
	}()
	defer func() { stopped.Store(true); close(quit); wg.Wait() }()

	cfg, _ := windowedConfig(t, pprofio.ProfileGoroutine)
	p := startProfiler(t, cfg)
	waitFor(t, "20 cycles", func() bool { return p.Stats().Cycles >= 20 })
	if err := stopWithin(t, p); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if s := p.Stats(); s.GoroutineLeaks != 0 || s.Goroutines < 400 {
		t.Fatalf("GoroutineLeaks %d (want 0), last count %d (want >= 400)", s.GoroutineLeaks, s.Goroutines)
	}
}

// A goroutine profile is a snapshot: the contract gives it start == end,
// the instant it was taken, however long writing it took.
func TestGoroutineSnapshotStartsWhenItEnds(t *testing.T) {
	isolateEnv(t)
	in := newIngest(t, ingestOpts{})
	logs := &logCapture{}
	defer dumpOnFailure(t, logs, in)
	// Enough goroutines that writing their stacks takes a while.
	stop := run(200, func(s *atomic.Bool) { waitOnChannel(make(chan int), s) })
	defer stop()
	cfg := deliveryConfig(in, "e2e-snapshot", t.TempDir(), logs)
	cfg.Profiles = []pprofio.ProfileType{pprofio.ProfileGoroutine}
	p := startProfiler(t, cfg)
	waitFor(t, "three batches at the receiver", func() bool { return len(in.distinctAccepted()) >= 3 })
	timedStop(t, p)
	in.settle(t)
	n := 0
	for _, e := range in.distinctAccepted() {
		for _, prof := range e.Req.GetProfiles() {
			if prof.GetType() != ingestpb.ProfileType_PROFILE_TYPE_GOROUTINE {
				t.Errorf("batch %d: a %v profile; only goroutine profiles were asked for", e.Req.GetSequence(), prof.GetType())
				continue
			}
			n++
			if prof.GetStartUnixNano() != prof.GetEndUnixNano() || prof.GetStartUnixNano() == 0 {
				t.Errorf("batch %d: goroutine snapshot from %d to %d (%v): want start == end, the instant it was taken",
					e.Req.GetSequence(), prof.GetStartUnixNano(), prof.GetEndUnixNano(),
					time.Duration(prof.GetEndUnixNano()-prof.GetStartUnixNano()))
			}
		}
	}
	if n < 3 {
		t.Errorf("%d goroutine profiles arrived, want one per batch", n)
	}
}
