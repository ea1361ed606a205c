// Package collector is the Go half of the agent: one goroutine that parks
// in the C core until the core hands it a command, runs runtime/pprof for
// it, and streams the profile's bytes into C memory.
package collector

import (
	"bufio"
	"context"
	"fmt"
	"log/slog"
	"runtime"
	"runtime/pprof"
	"sync"
	"time"

	"github.com/pprofio/pprofio/internal/core"
	"github.com/pprofio/pprofio/internal/spans"
)

// bufferSize is what runtime/pprof's small writes are gathered into before
// one cgo call copies them into C memory. Two such buffers live as long as
// the collector: one for the CPU window, one for snapshots.
const bufferSize = 32 << 10

// Agent is what the collector needs of the core (core.Agent implements it).
type Agent interface {
	Next() core.Command
	Begin(t core.Type, cycle int64, start time.Time, baseline bool) (*core.ProfileWriter, error)
	BeginRaw(t core.Type, cycle int64, start time.Time, delta bool) (*core.ProfileWriter, error)
	Skip(t core.Type, cycle int64, reason string)
	RecordsHeld(bytes, peak int64)
	WriteSpans(cycle int64, start, end time.Time, encode func(*core.SpanCycle) []byte) (uint64, error)
}

// SpanSink is what the collector needs of the span sink: the spans it
// still buffers, handed to the core before a cycle's spans are taken.
type SpanSink interface {
	Flush()
}

// Rates are the sampling rates the collector raises for its mutex and
// block windows.
type Rates struct {
	MutexFraction int // runtime.SetMutexProfileFraction during the window
	BlockRate     int // runtime.SetBlockProfileRate during the window (ns)
}

// The program's own block profile rate. The runtime has no getter for it,
// so the program sets it through SetBlockProfileRate (pprofio exports it)
// for the collector to put it back after each window.
var (
	blockMu       sync.Mutex
	programBlock  int
	blockWindowOn int // windows open (one collector per Profiler; several may run)
)

// SetBlockProfileRate records the program's block profile rate and
// applies it, unless a window is open: then it applies when the window
// ends.
func SetBlockProfileRate(rate int) {
	blockMu.Lock()
	defer blockMu.Unlock()
	programBlock = rate
	if blockWindowOn == 0 {
		runtime.SetBlockProfileRate(rate)
	}
}

// raise returns the rate that samples more of program and ours (for both
// runtime settings, 0 is off and a smaller positive value samples more).
func raise(program, ours int) int {
	if program > 0 && program < ours {
		return program
	}
	return ours
}

// Collector runs the commands of one agent.
type Collector struct {
	agent Agent
	log   *slog.Logger
	rates Rates

	mutexOpen, blockOpen bool
	mutexProgram         int       // the program's mutex fraction, put back after the window
	windowStart          time.Time // when the open mutex/block window began

	spans SpanSink // nil: no spans

	recs *recordSet // nil: heap, mutex and block from runtime/pprof's profiles

	cpu      *core.ProfileWriter // the open CPU window, if this collector started one
	cpuCycle int64
	cpuBuf   *bufio.Writer
	snapBuf  *bufio.Writer
}

// New makes a collector for agent that logs to log.
func New(agent Agent, log *slog.Logger, rates Rates) *Collector {
	c := &Collector{
		agent:   agent,
		log:     log,
		rates:   rates,
		cpuBuf:  bufio.NewWriterSize(nil, bufferSize),
		snapBuf: bufio.NewWriterSize(nil, bufferSize),
	}
	if UseRecords {
		c.recs = &recordSet{}
	}
	return c
}

// SetRecordsBound bounds each record table's memory, C and Go (the
// heap, mutex and block profiles from the runtime's records).
func (c *Collector) SetRecordsBound(n int64) {
	if c.recs != nil {
		c.recs.bound = n
	}
}

// SetSpans gives the collector the span sink to flush at each cycle's end.
func (c *Collector) SetSpans(s SpanSink) { c.spans = s }

// Run handles commands until the core says EXIT. It never panics: a panic
// in one command is logged and the loop goes on.
//
// The goroutine keeps its OS thread: it spends its idle time parked in C,
// which holds a thread anyway, and the thread's CPU clock is then its own
// (Costs).
func (c *Collector) Run() {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	defer c.recs.close()
	defer c.closeWindows() // a window still open at EXIT (it never is) is closed
	for {
		cmd := c.agent.Next()
		if cmd.Op == core.OpExit {
			return
		}
		c.safeHandle(cmd)
	}
}

func (c *Collector) safeHandle(cmd core.Command) {
	defer func() {
		if r := recover(); r != nil {
			c.log.Error("pprofio: collector command failed", "op", int(cmd.Op), "panic", fmt.Sprint(r))
		}
	}()
	c.Handle(cmd)
}

// Handle runs one command.
func (c *Collector) Handle(cmd core.Command) {
	if t := opType(cmd.Op); t != 0 {
		defer count(t, threadCPU())
	}
	switch cmd.Op {
	case core.OpCPUStart:
		c.startCPU(cmd.Cycle)
	case core.OpCPUStop:
		c.closeCPU()
	case core.OpHeap:
		c.snapshot(core.Heap, "heap", cmd.Cycle, cmd.WindowStart, false)
	case core.OpGoroutine:
		c.snapshot(core.Goroutine, "goroutine", cmd.Cycle, time.Now(), false)
	case core.OpMutexStart:
		c.startMutex(cmd.Cycle)
	case core.OpMutexStop:
		c.stopMutex(cmd.Cycle)
	case core.OpBlockStart:
		c.startBlock(cmd.Cycle)
	case core.OpBlockStop:
		c.stopBlock(cmd.Cycle)
	case core.OpSpans:
		c.writeSpans(cmd)
	case core.OpLog:
		c.log.Log(context.Background(), slog.Level(cmd.Level), cmd.Message)
	}
}

func (c *Collector) startCPU(cycle int64) {
	if c.cpu != nil { // cannot happen with the core's timeline; be safe
		c.closeCPU()
	}
	w, err := c.agent.Begin(core.CPU, cycle, time.Now(), false)
	if err != nil {
		c.log.Error("pprofio: cannot take the CPU profile", "err", err)
		return
	}
	c.cpuBuf.Reset(w)
	if err := pprof.StartCPUProfile(c.cpuBuf); err != nil {
		// The program (or a /debug/pprof/profile request) holds the one CPU
		// profiler of the process. Skip this window; never stop theirs.
		w.Finish(false, time.Now())
		c.cpuBuf.Reset(nil)
		c.agent.Skip(core.CPU, cycle, err.Error())
		c.log.Warn("pprofio: skipped this cycle's CPU profile: the CPU profiler is in use by the program",
			"cycle", cycle, "reason", err.Error())
		return
	}
	c.cpu, c.cpuCycle = w, cycle
}

// closeCPU stops the CPU profile this collector started, if any.
func (c *Collector) closeCPU() {
	if c.cpu == nil {
		return
	}
	pprof.StopCPUProfile() // returns after the profile's last write
	w := c.cpu
	c.cpu = nil
	err := c.cpuBuf.Flush()
	c.cpuBuf.Reset(nil)
	if ferr := w.Finish(err == nil, time.Now()); err == nil && ferr != nil {
		err = ferr
	}
	if err != nil {
		c.log.Warn("pprofio: the CPU profile was not kept", "cycle", c.cpuCycle, "err", err)
	}
}

// closeWindows ends every window this collector opened.
func (c *Collector) closeWindows() {
	c.closeCPU()
	if c.mutexOpen {
		c.stopMutex(-1)
	}
	if c.blockOpen {
		c.stopBlock(-1)
	}
}

// startMutex raises the mutex profile fraction for the window and takes
// the snapshot the window's end is measured against.
func (c *Collector) startMutex(cycle int64) {
	if c.mutexOpen {
		return
	}
	c.mutexProgram = runtime.SetMutexProfileFraction(-1)
	runtime.SetMutexProfileFraction(raise(c.mutexProgram, c.rates.MutexFraction))
	c.mutexOpen = true
	c.snapshot(core.Mutex, "mutex", cycle, time.Now(), true)
}

// stopMutex takes the window's end snapshot and puts the program's
// fraction back. cycle < 0: closing without a snapshot.
func (c *Collector) stopMutex(cycle int64) {
	if !c.mutexOpen {
		return
	}
	if cycle >= 0 {
		c.snapshot(core.Mutex, "mutex", cycle, c.windowStart, false)
	}
	runtime.SetMutexProfileFraction(c.mutexProgram)
	c.mutexOpen = false
}

func (c *Collector) startBlock(cycle int64) {
	if c.blockOpen {
		return
	}
	blockMu.Lock()
	blockWindowOn++
	runtime.SetBlockProfileRate(raise(programBlock, c.rates.BlockRate))
	blockMu.Unlock()
	c.blockOpen = true
	c.snapshot(core.Block, "block", cycle, time.Now(), true)
}

func (c *Collector) stopBlock(cycle int64) {
	if !c.blockOpen {
		return
	}
	if cycle >= 0 {
		c.snapshot(core.Block, "block", cycle, c.windowStart, false)
	}
	blockMu.Lock()
	blockWindowOn--
	if blockWindowOn == 0 {
		runtime.SetBlockProfileRate(programBlock)
	}
	blockMu.Unlock()
	c.blockOpen = false
}

// snapshot writes the named runtime/pprof profile as a profile of type t
// whose window began at start; a baseline is kept by the core, not sent.
func (c *Collector) snapshot(t core.Type, name string, cycle int64, start time.Time, baseline bool) {
	tab, err := c.recs.table(t)
	if err != nil {
		c.log.Warn("pprofio: cannot read the runtime's records; taking runtime/pprof profiles instead",
			"type", name, "err", err)
	}
	if tab != nil && c.snapshotRecords(tab, t, name, cycle, start, baseline) {
		return
	}
	p := pprof.Lookup(name)
	if p == nil {
		c.agent.Skip(t, cycle, "no such runtime profile: "+name)
		return
	}
	if baseline {
		c.windowStart = start
	}
	w, err := c.agent.Begin(t, cycle, start, baseline)
	if err != nil {
		c.log.Error("pprofio: cannot take a profile", "type", name, "err", err)
		return
	}
	c.snapBuf.Reset(w)
	err = p.WriteTo(c.snapBuf, 0)
	if err == nil {
		err = c.snapBuf.Flush()
	}
	c.snapBuf.Reset(nil)
	end := time.Now()
	if t == core.Goroutine {
		// A goroutine profile is a snapshot with no window: the contract
		// gives it start == end, the instant it was taken, however long
		// writing it took.
		end = start
	}
	if ferr := w.Finish(err == nil, end); err == nil && ferr != nil {
		err = ferr
	}
	if err != nil {
		c.log.Warn("pprofio: a profile was not kept", "type", name, "cycle", cycle, "err", err)
	}
}

// writeSpans ends a cycle's spans: what the sink still buffers goes to the
// core first, so the cycle's spans are those that ended before its end;
// then the core hands them over, and they are written as the cycle's
// custom profile (start stacks and timings, symbolized here) with the
// cycle's timeline attached.
func (c *Collector) writeSpans(cmd core.Command) {
	if c.spans != nil {
		c.spans.Flush()
	}
	if _, err := c.agent.WriteSpans(cmd.Cycle, cmd.WindowStart, cmd.At, func(sc *core.SpanCycle) []byte {
		return spans.EncodeProfile(sc, cmd.WindowStart, cmd.At)
	}); err != nil {
		c.log.Warn("pprofio: the custom profile (spans) was not kept", "cycle", cmd.Cycle, "err", err)
	}
}
