// Package spans hands the program's finished spans to the C core's span
// recorder (csrc/spans.h) without making the program's goroutines share a
// lock or cross into C once per span.
//
// A finished span goes to a shard that the goroutine's P borrows from a
// sync.Pool, so that the shard and its lock mostly stay in the cache of the
// core running that P and goroutines on different Ps seldom meet (past
// maxShards shards, Ps share them). The shard keeps the span (its Finished
// record, inside the span; Add) until it holds PendMax of them or is
// flushed, then lays them out in the core's block layout in its buffer;
// a span with labels of its own comes as a record (Record) and goes to the
// buffer at once. A buffer goes to the core in one cgo call when it holds
// FlushBytes, and every FlushEvery in any case, so a span reaches the core
// at most about FlushEvery after it ends.
// BenchmarkHandoff (in the root package) measured this against one cgo
// call per span end, the other way DESIGN.md names.
//
// EncodeProfile turns a cycle taken from the recorder into the custom
// profile, symbolizing the start stacks with the Go runtime.
package spans

import (
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

// Active is the running Profiler's sink; spans started while it is nil
// are not recorded. (StartSpan reads a copy kept beside the other data
// every span reads.)
var Active atomic.Pointer[Sink]

type shard struct {
	mu     sync.Mutex
	buf    []byte
	pend   []*Finished // spans ended and not yet laid out in buf
	closed bool
}

// Finished is a span as End leaves it for the sink (Add): it lives in the
// span itself, so End writes to memory it has just read rather than to a
// buffer the request's work pushed out of the caches, and the sink lays
// spans out for the core together, when a shard holds PendMax of them or
// at a flush. The span, and the context it was started from, stay alive
// until then: at most PendMax spans per shard, for at most FlushEvery.
type Finished struct {
	Start int64 // a Now reading
	// Dur is read and written atomically: End sets it once, swapping it
	// from the span's open mark (8-byte aligned: the root package checks
	// that at compile time).
	Dur        int64
	ID, Parent uint64
	Text       *Text
	Stack      *[]uintptr // the start stack, when head-sampled
}

// PCs is the start stack, or nil.
func (f *Finished) PCs() []uintptr {
	if f.Stack == nil {
		return nil
	}
	return *f.Stack
}

// PendMax is how many finished spans a shard keeps before laying them out.
const PendMax = 64

// holder is what the sink's pool holds: one shard, lent to one P at a
// time. The pool lets go of what it holds at garbage collections; a
// finalizer then puts the holder's shard on the free list for the next
// holder. Every shard stays on the sink's list, which Flush and Close
// walk, so a span buffered in a shard whose holder went is not lost.
type holder struct{ sh *shard }

// Sink buffers finished spans for one recorder. Its methods are safe for
// concurrent use.
type Sink struct {
	rec    *core.SpanRecorder
	pool   sync.Pool // of *holder
	direct bool      // one cgo call per span (BenchmarkHandoff only)

	regMu sync.Mutex
	all   []*shard // every shard made, at most maxShards
	free  []*shard // shards whose holder the pool let go of

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
	return &Sink{rec: rec, stop: make(chan struct{}), done: make(chan struct{})}
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

// Record hands one finished span over. start is a Now reading; tags are
// sorted key, value pairs; pcs is the start stack of a head-sampled span,
// or nil.
func (s *Sink) Record(name string, tags []string, start, dur int64, id, parent uint64, pcs []uintptr) {
	if s.direct {
		s.recordDirect(name, tags, start, dur, id, parent, nil)
		return
	}
	if h, sh := s.lockOpenShard(); sh != nil {
		sh.buf = AppendRecord(sh.buf, name, tags, start, dur, id, parent, pcs)
		s.unlockShard(h, sh)
	}
}

// RecordText is Record with the name and tags already laid out (a span
// whose name and tags are shared keeps their Text).
func (s *Sink) RecordText(t *Text, start, dur int64, id, parent uint64, pcs []uintptr) {
	if s.direct {
		s.recordDirect(string(t.b[:t.nameLen]), nil, start, dur, id, parent, t.b[t.nameLen:t.nameLen+t.tagsLen])
		return
	}
	if h, sh := s.lockOpenShard(); sh != nil {
		sh.buf = AppendText(sh.buf, t, start, dur, id, parent, pcs)
		s.unlockShard(h, sh)
	}
}

// Add hands a finished span over; f must not change afterwards.
func (s *Sink) Add(f *Finished) {
	if s.direct {
		s.RecordText(f.Text, f.Start, atomic.LoadInt64(&f.Dur), f.ID, f.Parent, f.PCs())
		return
	}
	if h, sh := s.lockOpenShard(); sh != nil {
		sh.pend = append(sh.pend, f)
		if len(sh.pend) >= PendMax {
			layOut(sh)
		}
		s.unlockShard(h, sh)
	}
}

// layOut appends sh's pending spans to its buffer.
func layOut(sh *shard) {
	for i, f := range sh.pend {
		sh.buf = AppendText(sh.buf, f.Text, f.Start, atomic.LoadInt64(&f.Dur), f.ID, f.Parent, f.PCs())
		sh.pend[i] = nil
	}
	sh.pend = sh.pend[:0]
}

// lockOpenShard locks a shard to append to; a nil shard (the span counted
// as late) after Close.
func (s *Sink) lockOpenShard() (*holder, *shard) {
	h, sh := s.lockShard()
	if sh.closed {
		sh.mu.Unlock()
		s.putHolder(h)
		s.late.Add(1)
		return nil, nil
	}
	return h, sh
}

// unlockShard hands sh's buffer to the core when it is full, unlocks it
// and gives its holder back to the pool.
func (s *Sink) unlockShard(h *holder, sh *shard) {
	if len(sh.buf) >= FlushBytes {
		s.flushLocked(sh)
	}
	sh.mu.Unlock()
	s.putHolder(h)
}

// lockShard locks the shard this P holds, or a new one's.
func (s *Sink) lockShard() (*holder, *shard) {
	h, _ := s.pool.Get().(*holder)
	if h == nil {
		h = s.newHolder()
	}
	h.sh.mu.Lock()
	return h, h.sh
}

func (s *Sink) putHolder(h *holder) { s.pool.Put(h) }

// newHolder lends a free shard, or a new one, to a new holder. Past
// maxShards shards, with none free, the holder lends one of them, shared
// (its lock makes that safe), and has no finalizer: the pool keeps it per
// P like the others, so this runs again only when the pool lets go of it.
func (s *Sink) newHolder() *holder {
	s.regMu.Lock()
	defer s.regMu.Unlock()
	var sh *shard
	switch {
	case len(s.free) > 0:
		sh = s.free[len(s.free)-1]
		s.free = s.free[:len(s.free)-1]
	case len(s.all) < maxShards:
		sh = &shard{closed: s.closed.Load()}
		s.all = append(s.all, sh)
	default:
		return &holder{sh: s.all[rand.IntN(len(s.all))]}
	}
	h := &holder{sh: sh}
	runtime.SetFinalizer(h, func(h *holder) { s.release(h.sh) })
	return h
}

// release takes back the shard of a holder the pool let go of.
func (s *Sink) release(sh *shard) {
	s.regMu.Lock()
	s.free = append(s.free, sh)
	s.regMu.Unlock()
}

// shardList is every shard made so far.
func (s *Sink) shardList() []*shard {
	s.regMu.Lock()
	defer s.regMu.Unlock()
	return append([]*shard(nil), s.all...)
}

// recordDirect calls the core for one span; blob, when not nil, is the
// tags already encoded.
func (s *Sink) recordDirect(name string, tags []string, start, dur int64, id, parent uint64, blob []byte) {
	if s.closed.Load() {
		s.late.Add(1)
		return
	}
	start += unixOffset()
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
	layOut(sh)
	if len(sh.buf) == 0 {
		return
	}
	toUnix(sh.buf, unixOffset())
	_ = s.rec.RecordBlock(sh.buf) // a malformed block is counted by the core as dropped
	if cap(sh.buf) > 4*FlushBytes {
		sh.buf = nil // a burst of huge records: give the memory back
	} else {
		sh.buf = sh.buf[:0]
	}
}

// Flush hands every buffered span to the core.
func (s *Sink) Flush() {
	for _, sh := range s.shardList() {
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
	// A shard made from here on is made closed (newHolder reads closed
	// under regMu, which shardList takes after closed was set).
	for _, sh := range s.shardList() {
		sh.mu.Lock()
		s.flushLocked(sh)
		sh.closed = true
		sh.buf, sh.pend = nil, nil
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
