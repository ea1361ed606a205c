package deltabench

import (
	"errors"
	"runtime"
	"testing"

	"github.com/pprofio/pprofio/internal/records"
	"github.com/pprofio/pprofio/tests/internal/heapgen"
)

// TestRecordsHeapTableStaysWithinItsBound: a heap record table given a
// bound below what the program's stacks need refuses the snapshot with
// ErrBound and holds no more than the bound (C and Go together), and a
// bound above it takes the same snapshot. The bounds are set from what an
// unbounded table holds for the same records, so the test assumes no size
// per stack.
func TestRecordsHeapTableStaysWithinItsBound(t *testing.T) {
	if !records.Supported {
		t.Skip("this build does not read the runtime's records")
	}
	old := runtime.MemProfileRate
	runtime.MemProfileRate = 1
	for p := uint32(0); p < 2000; p++ { // distinct stacks
		heapgen.Edge(p)
		heapgen.Small(p)
	}
	runtime.MemProfileRate = old
	runtime.GC()
	runtime.GC()

	snapshot := func(limit int64) (int64, error) {
		h, err := records.NewHeap()
		if err != nil {
			t.Fatal(err)
		}
		defer h.Close()
		h.SetLimit(limit)
		_, _, err = h.Snapshot(true)
		return h.Bytes(), err
	}
	full, err := snapshot(0)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("an unbounded table holds %d bytes", full)
	for _, limit := range []int64{full / 2, full / 8} {
		held, err := snapshot(limit)
		if !errors.Is(err, records.ErrBound) {
			t.Errorf("bound %d (an unbounded table holds %d): err = %v, want ErrBound", limit, full, err)
		}
		if held > limit {
			t.Errorf("bound %d: the table holds %d", limit, held)
		}
	}
	if held, err := snapshot(2 * full); err != nil || held > 2*full {
		t.Errorf("bound %d, twice what it needs: err = %v, holds %d", 2*full, err, held)
	}
}
