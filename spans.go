// spans.go: the span API (StartSpan, Do, Span.End); the package
// documentation's Spans section says what a span gives.

package pprofio

import (
	"context"
	"math/rand/v2"
	"runtime"
	"runtime/pprof"
	"sync/atomic"
	"time"

	"github.com/pprofio/pprofio/internal/spans"
)

// spanLabel is the pprof label that carries the span's name.
const spanLabel = "span"

// spanStackEvery is how many spans, on average, share one start-stack
// sample (for the custom profile); 1 samples every span.
var spanStackEvery atomic.Uint32

func init() { spanStackEvery.Store(100) }

// Span is an open span. End finishes it; a nil *Span is valid and does
// nothing. It is kept small (it is allocated per span): the context
// StartSpan was given, whose labels End puts back, is ctx.Context for a
// span whose labels are cached and ctx.set.from otherwise.
type Span struct {
	ctx    spanContext
	sink   *spans.Sink
	id     uint64
	parent uint64
	start  int64      // monoNow() when it started
	stack  *[]uintptr // the start stack, when head-sampled
	ended  atomic.Bool
}

// spanContext is the context StartSpan returns: the span's context with
// the span in it. It lives inside the Span, so the two cost one
// allocation. When the span's labels entry holds a label map (one shared
// through the cache, spanlabels.go), Context is the parent and the labels
// are answered here; otherwise Context is the pprof.WithLabels context
// that holds them.
type spanContext struct {
	context.Context
	span *Span
	set  *labelEntry // the span's name and tags, and its shared labels
}

type spanKey struct{}

func (c *spanContext) Value(key any) any {
	if key == (spanKey{}) {
		return c.span
	}
	if c.set.labels != nil && key == labelKey {
		return c.set.labels
	}
	return c.Context.Value(key)
}

// SpanOptions are StartSpanWith's options.
type SpanOptions struct {
	// Tags are key, value pairs: pprof labels on the span's samples and,
	// with the name, what its timings are aggregated by. Keep their values
	// few (a tier, a route), not per request.
	Tags []string
	// Labels are key, value pairs put on the span's samples only, not
	// aggregated by: per-request values such as a trace's span id.
	Labels []string
	// ID and ParentID replace the span's own ids (e.g. OpenTelemetry's),
	// when not zero.
	ID, ParentID uint64
}

// StartSpan starts a span named name with tags given as key, value pairs
// (an odd last one is ignored), and returns a context that carries it and
// its labels. The span's parent is the innermost span open in ctx. Call
// End on the returned span, on the same goroutine, when the work is done:
//
//	ctx, span := pprofio.StartSpan(ctx, "db.query", "table", "orders")
//	defer span.End()
func StartSpan(ctx context.Context, name string, tags ...string) (context.Context, *Span) {
	sink := spans.Active.Load()
	if sink == nil {
		return ctx, nil
	}
	return startSpan(ctx, sink, name, tags, nil, 0, 0)
}

// StartSpanWith is StartSpan with options.
func StartSpanWith(ctx context.Context, name string, opt SpanOptions) (context.Context, *Span) {
	sink := spans.Active.Load()
	if sink == nil {
		return ctx, nil
	}
	return startSpan(ctx, sink, name, opt.Tags, opt.Labels, opt.ID, opt.ParentID)
}

// Do runs f inside a span named name with tags, as pprof.Do runs f with
// labels: f gets the span's context, and the goroutine's labels are put
// back when f returns.
func Do(ctx context.Context, name string, f func(context.Context), tags ...string) {
	ctx, span := StartSpan(ctx, name, tags...)
	defer span.End()
	f(ctx)
}

// SpanFromContext returns the innermost span open in ctx, or nil.
func SpanFromContext(ctx context.Context) *Span {
	s, _ := ctx.Value(spanKey{}).(*Span)
	return s
}

func startSpan(ctx context.Context, sink *spans.Sink, name string, tags, labels []string, id, parent uint64) (context.Context, *Span) {
	s := &Span{sink: sink, id: id, parent: parent}
	var buf [8]string
	kv := append(buf[:0], spanLabel, name)
	kv = append(kv, tags[:len(tags)&^1]...)
	sortPairs(kv[2:])
	if s.id == 0 {
		s.id = rand.Uint64() | 1
	}
	if s.parent == 0 {
		if p := SpanFromContext(ctx); p != nil {
			s.parent = p.id
		}
	}
	if n := spanStackEvery.Load(); n <= 1 || rand.Uint32N(n) == 0 {
		var pcs [spans.MaxPCs]uintptr
		stack := append([]uintptr(nil), pcs[:runtime.Callers(3, pcs[:])]...)
		s.stack = &stack
	}
	var e *labelEntry
	if labels = labels[:len(labels)&^1]; len(labels) == 0 && labelKey != nil {
		// The labels depend only on the parent's and on kv: share them.
		e = cachedLabels(ctx, ctx.Value(labelKey), kv)
	}
	if e != nil {
		s.ctx = spanContext{Context: ctx, span: s, set: e}
		pprof.SetGoroutineLabels(&s.ctx)
	} else {
		// Labels of its own (a trace's span id), or parent labels the
		// cache does not hold: this span's alone.
		e = &labelEntry{kv: append([]string(nil), kv...), from: ctx}
		lctx := pprof.WithLabels(ctx, pprof.Labels(append(kv, labels...)...))
		s.ctx = spanContext{Context: lctx, span: s, set: e}
		pprof.SetGoroutineLabels(lctx)
	}
	s.start = monoNow()
	return &s.ctx, s
}

// sortPairs sorts key, value pairs by key (insertion sort: there are few).
func sortPairs(kv []string) {
	for i := 2; i+1 < len(kv); i += 2 {
		for j := i; j >= 2 && kv[j] < kv[j-2]; j -= 2 {
			kv[j], kv[j-2] = kv[j-2], kv[j]
			kv[j+1], kv[j-1] = kv[j-1], kv[j+1]
		}
	}
}

// End finishes the span: its duration is recorded, and the goroutine's
// labels become those of the context the span was started from. Calling
// it again does nothing; a span that ends after its Profiler stopped is
// not recorded.
func (s *Span) End() {
	if s == nil || s.ended.Swap(true) {
		return
	}
	end := monoNow()
	d, start := end-s.start, unixAt(s.start, end)
	var pcs []uintptr
	if s.stack != nil {
		pcs = *s.stack
	}
	if e := s.ctx.set; e.cached {
		pprof.SetGoroutineLabels(s.ctx.Context)
		s.sink.RecordText(&e.text, start, d, s.id, s.parent, pcs)
	} else {
		pprof.SetGoroutineLabels(e.from)
		s.sink.Record(e.kv[1], e.kv[2:], start, d, s.id, s.parent, pcs)
	}
}

// monoEpoch is the origin of monoNow.
var monoEpoch = time.Now()

// monoNow reads the monotonic clock, in ns since monoEpoch: one clock
// read, where time.Now takes two (the wall clock as well); a span needs
// the wall clock only for its start, which unixAt derives.
func monoNow() int64 { return int64(time.Since(monoEpoch)) }

// wallBase pairs a monoNow reading with the wall clock (Unix ns) read at
// the same moment; unixAt renews it when it is older than
// wallBaseRenewEvery, so a step or slew of the wall clock reaches span
// starts within that.
type wallBase struct{ mono, unix int64 }

const wallBaseRenewEvery = int64(time.Second)

var curWallBase atomic.Pointer[wallBase]

// unixAt is the Unix time in ns of monotonic reading mono, now being the
// current reading.
func unixAt(mono, now int64) int64 {
	b := curWallBase.Load()
	if b == nil || now-b.mono >= wallBaseRenewEvery {
		t := time.Now()
		b = &wallBase{mono: int64(t.Sub(monoEpoch)), unix: t.UnixNano()}
		curWallBase.Store(b)
	}
	return b.unix + (mono - b.mono)
}

// ID is the span's id (0 for a nil span).
func (s *Span) ID() uint64 {
	if s == nil {
		return 0
	}
	return s.id
}

// ParentID is the id of the span's parent, 0 for a root span.
func (s *Span) ParentID() uint64 {
	if s == nil {
		return 0
	}
	return s.parent
}
