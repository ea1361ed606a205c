// The collector's own CPU time, by profile type: what taking each profile
// costs the collector goroutine (runtime/pprof's encoding, the copy into C
// memory, the core's Begin and Finish). The overhead benchmark reads it to
// hold each type against its budget; a few counters and one clock read per
// command keep it cheap enough to stay on.

package collector

import (
	"sync/atomic"
	"time"

	"github.com/pprofio/pprofio/internal/core"
)

// Cost is the collector's CPU time spent on one profile type.
type Cost struct {
	Commands uint64        // commands handled (a window's start and stop are two)
	CPU      time.Duration // the collector thread's CPU clock across them
}

// costTypes are the types costs are kept for, by core.Type.
var costTypes = [...]string{core.CPU: "cpu", core.Heap: "heap", core.Goroutine: "goroutine",
	core.Mutex: "mutex", core.Block: "block"}

// The counters of every collector of the process, by core.Type.
var costCommands, costNanos [len(costTypes)]atomic.Uint64

// Costs returns the collector CPU time by profile type name, summed over
// every collector the process ran. Types never taken are left out. On
// systems without a thread CPU clock, CPU is 0.
func Costs() map[string]Cost {
	out := map[string]Cost{}
	for t, name := range costTypes {
		if n := costCommands[t].Load(); name != "" && n > 0 {
			out[name] = Cost{Commands: n, CPU: time.Duration(costNanos[t].Load())}
		}
	}
	return out
}

// opType is the profile type a command works on (0 for none).
func opType(op core.Op) core.Type {
	switch op {
	case core.OpCPUStart, core.OpCPUStop:
		return core.CPU
	case core.OpHeap:
		return core.Heap
	case core.OpGoroutine:
		return core.Goroutine
	case core.OpMutexStart, core.OpMutexStop:
		return core.Mutex
	case core.OpBlockStart, core.OpBlockStop:
		return core.Block
	}
	return 0
}

// count adds one command of type t that began at thread CPU time start.
func count(t core.Type, start time.Duration) {
	if t <= 0 || int(t) >= len(costTypes) {
		return
	}
	costCommands[t].Add(1)
	if d := threadCPU() - start; start > 0 && d > 0 {
		costNanos[t].Add(uint64(d))
	}
}
