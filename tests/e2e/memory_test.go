package e2e

import (
	"bytes"
	"compress/gzip"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"runtime"
	"runtime/pprof"
	"testing"
	"time"

	"github.com/pprofio/pprofio"
	"github.com/pprofio/pprofio/internal/collector"
)

const childEnv = "PPROFIO_E2E_CHILD"

// TestMemoryBound: with MaxBufferBytes at its minimum and a heap profile
// larger than that, the bound holds (the core never buffers more), and every
// profile of every cycle is accounted for: written, skipped, or counted as
// dropped. Both ways of taking the heap profile are run: runtime/pprof's
// (every cycle's profile arrives whole, over the bound) and the runtime's
// records (the record table, bounded at MaxBufferBytes/4 C and Go together,
// cannot hold the program's stacks: it is freed before it passes its bound,
// and the heap profiles are taken from runtime/pprof from then on).
//
// It runs in a child process: the workload sets MemProfileRate to 1 and
// leaves tens of thousands of allocation stacks in the runtime's heap
// profile for good, which would weigh on every later test of this process.
func TestMemoryBound(t *testing.T) {
	switch os.Getenv(childEnv) {
	case "memory":
		memoryBoundChild(t)
		return
	case "memory-pprof":
		collector.UseRecords = false
		memoryBoundChild(t)
		return
	}
	ways := []string{"memory-pprof"}
	if collector.UseRecords {
		ways = append(ways, "memory")
	}
	for _, way := range ways {
		cmd := exec.Command(os.Args[0], "-test.run=^TestMemoryBound$", "-test.v", "-test.count=1")
		cmd.Env = append(os.Environ(), childEnv+"="+way)
		out, err := cmd.CombinedOutput()
		t.Logf("child (%s):\n%s", way, out)
		if err != nil {
			t.Fatalf("child (%s): %v", way, err)
		}
		if !bytes.Contains(out, []byte("--- PASS: TestMemoryBound")) {
			t.Fatalf("the child (%s) did not run the test", way)
		}
	}
}

// Distinct allocation stacks: each level of the recursion goes through
// stackA or stackB, so depth d gives 2^d stacks.

var stackSink []byte

//go:noinline
func stackA(depth int, path uint32) {
	if depth == 0 {
		stackSink = make([]byte, 16)
		return
	}
	if path&1 == 0 {
		stackA(depth-1, path>>1)
	} else {
		stackB(depth-1, path>>1)
	}
}

//go:noinline
func stackB(depth int, path uint32) {
	if depth == 0 {
		stackSink = make([]byte, 16)
		return
	}
	if path&1 == 0 {
		stackA(depth-1, path>>1)
	} else {
		stackB(depth-1, path>>1)
	}
}

// heapProfileSize returns the uncompressed size of the heap profile now.
func heapProfileSize(t *testing.T) int64 {
	var gz bytes.Buffer
	if err := pprof.Lookup("heap").WriteTo(&gz, 0); err != nil {
		t.Fatal(err)
	}
	r, err := gzip.NewReader(&gz)
	if err != nil {
		t.Fatal(err)
	}
	n, err := io.Copy(io.Discard, r)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func memoryBoundChild(t *testing.T) {
	runtime.MemProfileRate = 1 // every allocation is a sample
	const depth = 16
	for path := uint32(0); path < 1<<depth; path++ {
		stackA(depth, path)
	}
	runtime.GC() // publish the samples to the heap profile
	runtime.GC()
	size := heapProfileSize(t)
	const bound = pprofio.MinMaxBufferBytes
	t.Logf("heap profile: %d bytes uncompressed; bound %d", size, bound)
	if size <= bound {
		t.Fatalf("the workload's heap profile (%d bytes) does not exceed the bound (%d): the test tests nothing", size, bound)
	}

	out := t.TempDir()
	const service = "e2e-memory"
	logs := &logCapture{}
	stopSpin := spin(t, hotSpin)
	p := startProfiler(t, pprofio.Config{
		ServiceName:    service,
		OutputDir:      out,
		SampleRate:     time.Second,
		CPUDuration:    500 * time.Millisecond,
		StartJitter:    -1,
		MaxBufferBytes: bound,
		Logger:         slog.New(logs),
	})
	waitFor(t, "two cycles", func() bool { return p.Stats().Cycles >= 2 })
	if err := p.Stop(); err != nil {
		t.Errorf("Stop: %v", err)
	}
	stopSpin()
	s := p.Stats()
	t.Logf("stats: %+v", s)
	logs.dump(t)

	// Every cycle has a CPU and a heap profile; each one is written,
	// skipped, or dropped for a counted reason.
	want := 2 * s.Cycles
	if got := s.ProfilesWritten + s.ProfilesSkipped + dropped(s); got != want {
		t.Errorf("written %d + skipped %d + dropped %d = %d, want 2 profiles x %d cycles = %d",
			s.ProfilesWritten, s.ProfilesSkipped, dropped(s), got, s.Cycles, want)
	}
	if s.ProfilesCollected < s.ProfilesWritten || s.ProfilesCollected > s.ProfilesWritten+s.ProfilesDroppedMemory {
		t.Errorf("ProfilesCollected = %d: want between written (%d) and written + dropped for memory (%d)",
			s.ProfilesCollected, s.ProfilesWritten, s.ProfilesWritten+s.ProfilesDroppedMemory)
	}
	nCPU := len(listProfiles(t, out, service, pprofio.ProfileCPU))
	nHeap := len(listProfiles(t, out, service, pprofio.ProfileHeap))
	if uint64(nCPU+nHeap) != s.ProfilesWritten {
		t.Errorf("%d CPU + %d heap files, but ProfilesWritten = %d", nCPU, nHeap, s.ProfilesWritten)
	}
	// The bound holds.
	if s.BufferedBytesPeak > bound {
		t.Errorf("BufferedBytesPeak = %d, over MaxBufferBytes = %d", s.BufferedBytesPeak, bound)
	}
	if s.BufferedBytes != 0 {
		t.Errorf("BufferedBytes = %d after Stop, want 0", s.BufferedBytes)
	}
	// A heap profile over the bound cannot be kept: it is dropped, counted,
	// and the loss is logged. From runtime/pprof every cycle's is over it;
	// the records' table gives up before it passes its own bound, and the
	// heap profiles come from runtime/pprof, in that cycle already.
	if nHeap != 0 {
		t.Errorf("%d heap files, but every heap profile (%d bytes) is over the bound", nHeap, size)
	}
	if s.ProfilesDroppedMemory < s.Cycles || s.BytesDropped == 0 {
		t.Errorf("ProfilesDroppedMemory = %d, BytesDropped = %d: want at least one heap profile dropped a cycle",
			s.ProfilesDroppedMemory, s.BytesDropped)
	}
	if collector.UseRecords {
		if s.RecordsBytesPeak <= 0 || s.RecordsBytesPeak > bound/4 || s.RecordsBytes != 0 {
			t.Errorf("RecordsBytes = %d, RecordsBytesPeak = %d: want a table that held at most "+
				"MaxBufferBytes/4 = %d, freed", s.RecordsBytes, s.RecordsBytesPeak, bound/4)
		}
		if len(logs.find(slog.LevelWarn, "record table", "memory bound")) == 0 {
			t.Error("no Warn record says the record table would pass its memory bound")
		}
	}
	if len(logs.find(slog.LevelWarn, "memory bound")) == 0 {
		t.Error("no Warn record mentions the memory bound")
	}
	if s.ProfilesDroppedInvalid != 0 || s.ProfilesDroppedWrite != 0 || s.ProfilesDroppedNoSink != 0 {
		t.Errorf("drops other than for memory: %+v", s)
	}
}
