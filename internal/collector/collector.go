// Package collector is the Go half of the agent: one goroutine that parks
// in the C core until the core hands it a command, runs runtime/pprof for
// it, and streams the profile's bytes into C memory.
package collector

import (
	"bufio"
	"context"
	"fmt"
	"log/slog"
	"runtime/pprof"
	"time"

	"github.com/pprofio/pprofio/internal/core"
)

// bufferSize is what runtime/pprof's small writes are gathered into before
// one cgo call copies them into C memory. Two such buffers live as long as
// the collector: one for the CPU window, one for snapshots.
const bufferSize = 32 << 10

// Agent is what the collector needs of the core (core.Agent implements it).
type Agent interface {
	Next() core.Command
	Begin(t core.Type, cycle int64, start time.Time) (*core.ProfileWriter, error)
	Skip(t core.Type, cycle int64, reason string)
}

// Collector runs the commands of one agent.
type Collector struct {
	agent Agent
	log   *slog.Logger

	cpu      *core.ProfileWriter // the open CPU window, if this collector started one
	cpuCycle int64
	cpuBuf   *bufio.Writer
	snapBuf  *bufio.Writer
}

// New makes a collector for agent that logs to log.
func New(agent Agent, log *slog.Logger) *Collector {
	return &Collector{
		agent:   agent,
		log:     log,
		cpuBuf:  bufio.NewWriterSize(nil, bufferSize),
		snapBuf: bufio.NewWriterSize(nil, bufferSize),
	}
}

// Run handles commands until the core says EXIT. It never panics: a panic
// in one command is logged and the loop goes on.
func (c *Collector) Run() {
	defer c.closeCPU() // a window still open at EXIT (it never is) is closed
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
	switch cmd.Op {
	case core.OpCPUStart:
		c.startCPU(cmd.Cycle)
	case core.OpCPUStop:
		c.closeCPU()
	case core.OpHeap:
		c.snapshot(core.Heap, "heap", cmd)
	case core.OpLog:
		c.log.Log(context.Background(), slog.Level(cmd.Level), cmd.Message)
	}
}

func (c *Collector) startCPU(cycle int64) {
	if c.cpu != nil { // cannot happen with the core's timeline; be safe
		c.closeCPU()
	}
	w, err := c.agent.Begin(core.CPU, cycle, time.Now())
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

// snapshot writes the named runtime/pprof profile as a profile of type t.
func (c *Collector) snapshot(t core.Type, name string, cmd core.Command) {
	p := pprof.Lookup(name)
	if p == nil {
		c.agent.Skip(t, cmd.Cycle, "no such runtime profile: "+name)
		return
	}
	w, err := c.agent.Begin(t, cmd.Cycle, cmd.WindowStart)
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
	if ferr := w.Finish(err == nil, time.Now()); err == nil && ferr != nil {
		err = ferr
	}
	if err != nil {
		c.log.Warn("pprofio: a profile was not kept", "type", name, "cycle", cmd.Cycle, "err", err)
	}
}
