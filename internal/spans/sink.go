// Package spans hands the program's finished spans to the C core's span
// recorder (csrc/spans.h) without making the program's goroutines share a
// lock or cross into C once per span.
//
// A finished span is appended, in the core's block layout, to one of a few
// shard buffers (about two per P), picked at random and skipped when busy,
// so goroutines on different Ps almost never meet. A buffer goes to the
// core in one cgo call when it holds FlushBytes, and every FlushEvery in
// any case, so a span reaches the core at most about FlushEvery after it
// ends. BenchmarkHandoff (in the root package) measured this against one
// cgo call per span end, the other way DESIGN.md names.
//
// EncodeProfile turns a cycle taken from the recorder into the custom
// profile, symbolizing the start stacks with the Go runtime.
package spans

import (
	"math/bits"
	"math/rand/v2"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pprofio/pprofio/internal/core"
)

const (
	// FlushBytes is the size at which a shard buffer goes to the core
	// (about a hundred spans).
	FlushBytes = 8 << 10
	// FlushEvery is how often every buffer goes to the core anyway.
	FlushEvery = time.Second
	maxShards  = 64
)

// Active is the running Profiler's sink, which StartSpan records into;
// spans started while it is nil are not recorded.
var Active atomic.Pointer[Sink]

type shard struct {
	mu     sync.Mutex
	buf    []byte
	closed bool
	_      [64]byte // keep shards on their own cache lines
}

// Sink buffers finished spans for one recorder. Its methods are safe for
// concurrent use.
type Sink struct {
	rec    *core.SpanRecorder
	shards []shard
	mask   uint32
	direct bool // one cgo call per span (BenchmarkHandoff only)

	closed  atomic.Bool
	late    atomic.Uint64 // spans that ended after Close
	stop    chan struct{}
	done    chan struct{}
	started bool
	freeMu  sync.RWMutex // Stats and Take read rec under it; Free frees it under it
	freed   bool
}

// New makes a recorder bounded by cfg and a sink in front of it (for
// tests and benchmarks; a Profiler's sink is On its agent's recorder).
func New(cfg core.SpanConfig) (*Sink, error) {
	rec, err := core.NewSpanRecorder(cfg)
	if err != nil {
		return nil, err
	}
	return On(rec), nil
}

// On makes a sink in front of rec, which Free frees unless it is an
// agent's (core.Agent.Spans).
func On(rec *core.SpanRecorder) *Sink {
	n := 1 << bits.Len(uint(2*runtime.GOMAXPROCS(0)-1)) // a power of two, at least 2 per P
	n = min(n, maxShards)
	return &Sink{rec: rec, shards: make([]shard, n), mask: uint32(n - 1),
		stop: make(chan struct{}), done: make(chan struct{})}
}

// SetDirect makes Record call the core once per span instead of
// buffering: the alternative BenchmarkHandoff measures. Call it before any
// Record.
func (s *Sink) SetDirect(on bool) { s.direct = on }

// Start starts the goroutine that flushes every FlushEvery.
func (s *Sink) Start() {
	s.started = true
	go func() {
		defer close(s.done)
		t := time.NewTicker(FlushEvery)
		defer t.Stop()
		for {
			select {
			case <-s.stop:
				return
			case <-t.C:
				s.Flush()
			}
		}
	}()
}

// Record hands one finished span over. tags are sorted key, value pairs;
// pcs is the start stack of a head-sampled span, or nil.
func (s *Sink) Record(name string, tags []string, start, dur int64, id, parent uint64, pcs []uintptr) {
	if s.direct {
		s.recordDirect(name, tags, start, dur, id, parent, nil)
		return
	}
	if sh := s.lockOpenShard(); sh != nil {
		sh.buf = AppendRecord(sh.buf, name, tags, start, dur, id, parent, pcs)
		s.unlockShard(sh)
	}
}

// RecordText is Record with the name and tags already laid out (a span
// whose name and tags are shared keeps their Text).
func (s *Sink) RecordText(t *Text, start, dur int64, id, parent uint64, pcs []uintptr) {
	if s.direct {
		s.recordDirect(string(t.b[:t.nameLen]), nil, start, dur, id, parent, t.b[t.nameLen:t.nameLen+t.tagsLen])
		return
	}
	if sh := s.lockOpenShard(); sh != nil {
		sh.buf = AppendText(sh.buf, t, start, dur, id, parent, pcs)
		s.unlockShard(sh)
	}
}

// lockOpenShard locks a shard to append to; nil (the span counted as
// late) after Close.
func (s *Sink) lockOpenShard() *shard {
	sh := s.lockShard()
	if sh.closed {
		sh.mu.Unlock()
		s.late.Add(1)
		return nil
	}
	return sh
}

// unlockShard hands sh's buffer to the core when it is full, and unlocks it.
func (s *Sink) unlockShard(sh *shard) {
	if len(sh.buf) >= FlushBytes {
		s.flushLocked(sh)
	}
	sh.mu.Unlock()
}

// lockShard locks a random shard, moving on from those that are busy.
func (s *Sink) lockShard() *shard {
	i := rand.Uint32()
	for tries := uint32(0); tries < s.mask; tries++ {
		sh := &s.shards[(i+tries)&s.mask]
		if sh.mu.TryLock() {
			return sh
		}
	}
	sh := &s.shards[i&s.mask]
	sh.mu.Lock()
	return sh
}

// recordDirect calls the core for one span; blob, when not nil, is the
// tags already encoded.
func (s *Sink) recordDirect(name string, tags []string, start, dur int64, id, parent uint64, blob []byte) {
	if s.closed.Load() {
		s.late.Add(1)
		return
	}
	if strings.IndexByte(name, 0) >= 0 {
		name = string(appendText(nil, name))
	}
	if blob == nil {
		var buf [256]byte
		blob = EncodeTags(buf[:0], tags)
	}
	s.rec.Record(name, blob, start, dur, id, parent)
}

func (s *Sink) flushLocked(sh *shard) {
	if len(sh.buf) == 0 {
		return
	}
	_ = s.rec.RecordBlock(sh.buf) // a malformed block is counted by the core as dropped
	if cap(sh.buf) > 4*FlushBytes {
		sh.buf = nil // a burst of huge records: give the memory back
	} else {
		sh.buf = sh.buf[:0]
	}
}

// Flush hands every buffered span to the core.
func (s *Sink) Flush() {
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.Lock()
		if !sh.closed {
			s.flushLocked(sh)
		}
		sh.mu.Unlock()
	}
}

// Close flushes what is buffered; spans that end after it are not
// recorded (counted in Late). It does not free the recorder.
func (s *Sink) Close() {
	if s.closed.Swap(true) {
		return
	}
	if s.started {
		close(s.stop)
		<-s.done
	}
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.Lock()
		s.flushLocked(sh)
		sh.closed = true
		sh.buf = nil
		sh.mu.Unlock()
	}
}

// Late is how many spans ended after Close.
func (s *Sink) Late() uint64 { return s.late.Load() }

// Take flushes and hands over the recorder's cycle in progress.
func (s *Sink) Take() (*core.SpanCycle, error) {
	s.Flush()
	s.freeMu.RLock()
	defer s.freeMu.RUnlock()
	if s.freed {
		return &core.SpanCycle{}, nil
	}
	return s.rec.Take()
}

// Stats reads the recorder's totals (zero after Free).
func (s *Sink) Stats() core.SpanStats {
	s.freeMu.RLock()
	defer s.freeMu.RUnlock()
	if s.freed {
		return core.SpanStats{}
	}
	return s.rec.Stats()
}

// Free closes the sink and frees the recorder.
func (s *Sink) Free() {
	s.Close()
	s.freeMu.Lock()
	defer s.freeMu.Unlock()
	if !s.freed {
		s.freed = true
		s.rec.Free()
	}
}
