package main

import (
	"runtime"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"
)

// The workload makes many distinct stacks: a recursion of two functions
// along the bits of a path (each path is its own stack, ~20 frames deep),
// with an inlined chain at the leaf of some, ending in an allocation (heap),
// a contended Unlock (mutex) or a blocking receive (block).

var sink []byte

// The leaf's action, by kind.
const (
	kindHeap = iota
	kindMutex
	kindBlock
)

//go:noinline
func walkA(path uint32, depth, kind int) {
	if depth == 0 {
		leaf(path, kind)
		return
	}
	if path&1 == 0 {
		walkA(path>>1, depth-1, kind)
	} else {
		walkB(path>>1, depth-1, kind)
	}
}

//go:noinline
func walkB(path uint32, depth, kind int) {
	if depth == 0 {
		leaf(path, kind)
		return
	}
	if path&1 == 0 {
		walkA(path>>1, depth-1, kind)
	} else {
		walkB(path>>1, depth-1, kind)
	}
}

//go:noinline
func leaf(path uint32, kind int) {
	switch kind {
	case kindHeap:
		if path&1 == 0 {
			inlinedAlloc(path)
		} else {
			sink = make([]byte, 64)
		}
	case kindMutex:
		contend.unlock()
	case kindBlock:
		blocker.wait()
	}
}

// inlinedAlloc allocates through a chain the compiler inlines.
func inlinedAlloc(path uint32) { inlinedB(path) }

func inlinedB(path uint32) { sink = make([]byte, 48+16*int(path&2)) }

// heapStacks allocates along paths [from, to) with every allocation sampled.
func heapStacks(from, to uint32, depth int) {
	old := runtime.MemProfileRate
	runtime.MemProfileRate = 1
	for p := from; p < to; p++ {
		walkA(p, depth, kindHeap)
	}
	runtime.MemProfileRate = old
}

// spin busy-waits d, so that the other side of a handshake parks.
func spin(d time.Duration) {
	for t := time.Now(); time.Since(t) < d; {
	}
}

// contention makes one contended sync.Mutex unlock per call: a waiter
// goroutine parks on the lock, and the walk's leaf unlocks it, so the
// mutex profile records the leaf's stack.
type contention struct {
	mu    sync.Mutex
	start chan struct{}
	done  chan struct{}
}

var contend = &contention{start: make(chan struct{}), done: make(chan struct{})}

func (c *contention) waiter() {
	for range c.start {
		c.mu.Lock()
		c.mu.Unlock()
		c.done <- struct{}{}
	}
}

func (c *contention) unlock() { c.mu.Unlock() }

// waitForWaiter spins until the mutex counts a waiter: sync.Mutex's state
// (its first word) keeps the count above its three flag bits.
func (c *contention) waitForWaiter() {
	state := (*int32)(unsafe.Pointer(&c.mu))
	for t := time.Now(); atomic.LoadInt32(state)>>3 == 0 && time.Since(t) < time.Millisecond; {
	}
}

func mutexStacks(from, to uint32, depth int) {
	for p := from; p < to; p++ {
		contend.mu.Lock()
		contend.start <- struct{}{}
		contend.waitForWaiter()
		spin(20 * time.Microsecond) // the waiter parks on the lock
		walkA(p, depth, kindMutex)
		<-contend.done
	}
}

// blocking makes the walk's leaf block on a receive that a helper goroutine
// answers after a short spin, so the block profile records the leaf's stack.
type blocking struct {
	go_, ch chan struct{}
}

var blocker = &blocking{go_: make(chan struct{}, 1), ch: make(chan struct{})}

func (b *blocking) helper() {
	for range b.go_ {
		spin(20 * time.Microsecond)
		b.ch <- struct{}{}
	}
}

func (b *blocking) wait() { <-b.ch }

func blockStacks(from, to uint32, depth int) {
	for p := from; p < to; p++ {
		blocker.go_ <- struct{}{}
		walkA(p, depth, kindBlock)
	}
}

// A job asks the worker for one kind's stacks along paths [from, to).
type job struct {
	kind     int
	from, to uint32
}

var (
	jobs = make(chan job)
	done = make(chan struct{})
)

// worker runs every job on one goroutine, so that a path's stack is the
// same whichever cycle asks for it (a caller's frames are part of it).
func worker() {
	for j := range jobs {
		switch j.kind {
		case kindHeap:
			heapStacks(j.from, j.to, depth)
		case kindMutex:
			mutexStacks(j.from, j.to, depth)
		case kindBlock:
			blockStacks(j.from, j.to, depth)
		}
		done <- struct{}{}
	}
}

// run has the worker make kind's stacks along [from, to).
func run(kind int, from, to uint32) {
	jobs <- job{kind, from, to}
	<-done
}

// startHelpers starts the worker and the goroutines the mutex and block leaves need.
func startHelpers() {
	go worker()
	go contend.waiter()
	go blocker.helper()
}
