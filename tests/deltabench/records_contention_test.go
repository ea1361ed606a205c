package deltabench

import (
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/pprofio/pprofio/internal/records"
	"github.com/pprofio/pprofio/tests/internal/heapgen"
)

// The contention workload: a recursion along path's bits (or past the
// depth the runtime records) ends in a blocking receive or a contended
// unlock, reached through calls the compiler inlines.

var (
	blockCh = make(chan struct{})
	mu      sync.Mutex
	parked  = make(chan struct{})
)

//go:noinline
func contendDeep(path uint32, depth int, leaf func(uint32)) {
	if depth == 0 {
		leaf(path)
		return
	}
	if depth < 8 && path&(1<<depth) != 0 {
		contendOther(path, depth-1, leaf)
		return
	}
	contendDeep(path, depth-1, leaf)
}

//go:noinline
func contendOther(path uint32, depth int, leaf func(uint32)) { contendDeep(path, depth, leaf) }

func blockInlined(path uint32) {
	if path&1 == 0 {
		blockInner()
	} else {
		<-blockCh
	}
}

func blockInner() { <-blockCh }

func unlockInlined(path uint32) {
	if path&1 == 0 {
		unlockInner()
	} else {
		mu.Unlock()
	}
}

func unlockInner() { mu.Unlock() }

func spinFor(d time.Duration) {
	for t := time.Now(); time.Since(t) < d; {
	}
}

// blockEvents blocks along paths [from, to), shallow and past the recorded
// depth. It returns when every sender has finished: a sender that blocked
// records its own event when it resumes, and one still on its way could
// record it between the test's two reads of the profile.
func blockEvents(from, to uint32) {
	var senders sync.WaitGroup
	defer senders.Wait()
	for p := from; p < to; p++ {
		for _, depth := range []int{8, 200} {
			senders.Add(1)
			go func() {
				defer senders.Done()
				spinFor(20 * time.Microsecond)
				blockCh <- struct{}{}
			}()
			contendDeep(p, depth, blockInlined)
		}
	}
}

// mutexEvents unlocks a mutex another goroutine waits for along paths [from, to).
func mutexEvents(from, to uint32) {
	for p := from; p < to; p++ {
		for _, depth := range []int{8, 200} {
			mu.Lock()
			go func() { parked <- struct{}{}; mu.Lock(); mu.Unlock(); parked <- struct{}{} }()
			<-parked
			spinFor(30 * time.Microsecond) // the waiter parks on the lock
			contendDeep(p, depth, unlockInlined)
			<-parked
		}
	}
}

// TestRecordsContentionDeltasEqualRuntimePprof checks that the mutex and
// block deltas built from the runtime's records equal runtime/pprof's
// profiles minus the previous ones (the C delta engine), stack by stack and
// location by location, on stacks with inlined frames and truncated ones.
func TestRecordsContentionDeltasEqualRuntimePprof(t *testing.T) {
	if !records.Supported {
		t.Skip("this build does not read the runtime's records")
	}
	for _, kind := range []string{"block", "mutex"} {
		t.Run(kind, func(t *testing.T) {
			newC, events, on := records.NewBlock, blockEvents, func(on bool) {
				runtime.SetBlockProfileRate(map[bool]int{true: 1}[on])
			}
			if kind == "mutex" {
				newC, events = records.NewMutex, mutexEvents
				on = func(on bool) { runtime.SetMutexProfileFraction(map[bool]int{true: 1}[on]) }
			}
			c, err := newC()
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			var base []byte
			for round := 0; round < 3; round++ {
				on(true)
				from := uint32(round * 40)
				events(from, from+80)
				on(false) // no event between the two reads
				cur, err := heapgen.Raw(kind)
				if err != nil {
					t.Fatal(err)
				}
				_, isDelta, err := c.Snapshot(true)
				if err != nil {
					t.Fatal(err)
				}
				if round == 0 {
					base = cur
					continue
				}
				checkDeltaRound(t, round, &base, cur, isDelta, c.Out)
			}
		})
	}
}
