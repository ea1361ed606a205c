package main

// The runtime-cpu variant: runtime/pprof's CPU profiler alone, switched on
// and off at pprofio's duty cycle (CPUDuration out of every SampleRate,
// the first window at once as pprofio's StartJitter -1 does), writing to
// io.Discard. No agent: what is left is the runtime's own cost of CPU
// profiling (SIGPROF handling, the profile writer's encoding) and whatever
// profiling does to the scheduler, which can make a run use less CPU.

import (
	"io"
	"runtime/pprof"
	"sync"
	"time"
)

type runtimeCPU struct {
	stop    chan struct{}
	done    sync.WaitGroup
	windows int // read after Stop
}

// runtimeCPUTimes is pprofio's cycle and CPU window at a cadence: its
// defaults (a 10 s window every 60 s) or the compressed 1 s every 6 s.
func runtimeCPUTimes(cadence string) (rate, window time.Duration) {
	if cadence == cadCompressed {
		return compressedSampleRate, compressedSampleRate / 6
	}
	return 60 * time.Second, 10 * time.Second
}

func startRuntimeCPU(cadence string) *runtimeCPU {
	rate, window := runtimeCPUTimes(cadence)
	r := &runtimeCPU{stop: make(chan struct{})}
	r.done.Add(1)
	go func() {
		defer r.done.Done()
		for next := time.Now(); ; next = next.Add(rate) {
			if !r.wait(time.Until(next)) {
				return
			}
			if pprof.StartCPUProfile(io.Discard) != nil {
				continue
			}
			r.windows++
			open := r.wait(window)
			pprof.StopCPUProfile()
			if !open {
				return
			}
		}
	}()
	return r
}

// wait sleeps for d; false if Stop came first.
func (r *runtimeCPU) wait(d time.Duration) bool {
	t := time.NewTimer(max(d, 0))
	defer t.Stop()
	select {
	case <-r.stop:
		return false
	case <-t.C:
		return true
	}
}

// Stop closes the open window, if any.
func (r *runtimeCPU) Stop() error {
	close(r.stop)
	r.done.Wait()
	return nil
}
