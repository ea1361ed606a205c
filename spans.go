// spans.go: the span API (StartSpan, Do, Span.End); the package
// documentation's Spans section says what a span gives.

package pprofio

import (
	"context"
	"math"
	"math/rand/v2"
	"runtime"
	"runtime/pprof"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/pprofio/pprofio/internal/spans"
)

// spanLabel is the pprof label that carries the span's name.
const spanLabel = "span"

// spanHot is what every span start and end reads, kept together: inside a
// service a span's data is out of the caches after each request's work,
// and each cache line it touches costs a miss.
var spanHot struct {
	sink atomic.Pointer[spans.Sink] // the running Profiler's; nil: spans are not recorded
	// stackEvery is how many spans, on average, share one start-stack
	// sample (for the custom profile); 1 samples every span.
	stackEvery atomic.Uint32
	// labelKey and labelMapType are runtime/pprof's (spanlabels.go).
	labelKey     any
	labelMapType unsafe.Pointer
	seed         uint64    // the label cache's hash seed
	idA, idB     uint64    // the span ids' seeds
	epoch        time.Time // spans.Epoch, the origin of monoNow
}

func init() {
	spanHot.stackEvery.Store(100)
	spanHot.labelKey, spanHot.labelMapType = findLabelKey()
	spanHot.seed, spanHot.idA, spanHot.idB = rand.Uint64(), rand.Uint64(), rand.Uint64()
	spanHot.epoch = spans.Epoch
}

// Span is an open span. End finishes it; a nil *Span is valid and does
// nothing. It is kept small (it is allocated per span): the context
// StartSpan returns is its first field, and what End hands to the sink is
// in it too, so the three cost one allocation of 80 bytes.
type Span struct {
	ctx  spanContext // first: a *spanContext is the address of its Span
	sink *spans.Sink
	// fin is what End hands to the sink: its id, its parent's, its start
	// (monoNow()) and its duration, spanOpen until End swaps it.
	fin spans.Finished
}

// A *spanContext is turned into its *Span: ctx must stay the first field.
// End swaps fin.Dur atomically: it must be 8-byte aligned on 32-bit
// platforms too.
var (
	_ = [1]struct{}{}[unsafe.Offsetof(Span{}.ctx)]
	_ = [1]struct{}{}[(unsafe.Offsetof(Span{}.fin)+unsafe.Offsetof(Span{}.fin.Dur))%8]
)

// spanOpen is the duration of a Span whose End has not run.
const spanOpen = math.MinInt64

// spanContext is the context StartSpan returns: the context it was given,
// with the span in it. When the span's labels entry holds a label map (one
// shared through the cache, spanlabels.go), Context is the context
// StartSpan was given and the labels are answered here; otherwise Context
// is the pprof.WithLabels context that holds them.
type spanContext struct {
	context.Context
	set *labelEntry // the span's name and tags, and its shared labels
}

type spanKey struct{}

func (c *spanContext) Value(key any) any {
	if key == (spanKey{}) {
		return (*Span)(unsafe.Pointer(c))
	}
	if c.set.labels != nil && key == spanHot.labelKey {
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
	sink := spanHot.sink.Load()
	if sink == nil {
		return ctx, nil
	}
	return startSpan(ctx, sink, name, tags, nil, 0, 0)
}

// StartSpanWith is StartSpan with options.
func StartSpanWith(ctx context.Context, name string, opt SpanOptions) (context.Context, *Span) {
	sink := spanHot.sink.Load()
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
	s := &Span{sink: sink, fin: spans.Finished{ID: id, Parent: parent, Dur: spanOpen}}
	p := SpanFromContext(ctx)
	if s.fin.Parent == 0 && p != nil {
		s.fin.Parent = p.fin.ID
	}
	tags = tags[:len(tags)&^1]
	var e *labelEntry
	if labels = labels[:len(labels)&^1]; len(labels) == 0 && spanHot.labelKey != nil {
		// The labels depend only on the parent's and on name and tags:
		// share them. The parent's labels are its span's when ctx is that
		// span's context, as it mostly is (no second walk up ctx).
		var plm any
		if p != nil && p.ctx.set.labels != nil && ctx == context.Context(&p.ctx) {
			plm = p.ctx.set.labels
		} else {
			plm = ctx.Value(spanHot.labelKey)
		}
		e = cachedLabels(plm, name, tags)
	}
	if e != nil {
		s.ctx = spanContext{Context: ctx, set: e}
		pprof.SetGoroutineLabels(&s.ctx)
	} else {
		// Labels of its own (a trace's span id), or parent labels the
		// cache does not hold: this span's alone.
		kv := spanKV(name, tags)
		e = &labelEntry{kv: kv, from: ctx}
		lctx := pprof.WithLabels(ctx, pprof.Labels(append(kv, labels...)...))
		s.ctx = spanContext{Context: lctx, set: e}
		pprof.SetGoroutineLabels(lctx)
	}
	// The span starts now: the labels are not its time, nor its stack.
	s.fin.Start = monoNow()
	h := spanID(s)
	if s.fin.ID == 0 {
		s.fin.ID = h
	}
	if n := spanHot.stackEvery.Load(); n <= 1 || uint32(splitmix(h^spanHot.idB)>>32)%n == 0 {
		var pcs [spans.MaxPCs]uintptr
		stack := append([]uintptr(nil), pcs[:runtime.Callers(3, pcs[:])]...)
		s.fin.Stack = &stack
		s.fin.Start = monoNow()
	}
	return &s.ctx, s
}

// spanID makes s's id from its address and start (the head sample of its
// start stack is drawn from it too): two spans open at once
// differ in address, two at one address in start (the later one starts
// after the earlier was collected). Each is hashed apart with its own
// seed, so ids collide no more often than random ones, and no random
// state is read (one more cache line per span).
func spanID(s *Span) uint64 {
	return (splitmix(uint64(uintptr(unsafe.Pointer(s)))^spanHot.idA) ^ splitmix(uint64(s.fin.Start)^spanHot.idB)) | 1
}

func splitmix(z uint64) uint64 {
	z = (z ^ z>>30) * 0xBF58476D1CE4E5B9
	z = (z ^ z>>27) * 0x94D049BB133111EB
	return z ^ z>>31
}

// spanKV is "span", name and the tags sorted by key.
func spanKV(name string, tags []string) []string {
	kv := append(make([]string, 0, 2+len(tags)), spanLabel, name)
	kv = append(kv, tags...)
	sortPairs(kv[2:])
	return kv
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
	if s == nil {
		return
	}
	d := max(monoNow()-s.fin.Start, 0)
	if !atomic.CompareAndSwapInt64(&s.fin.Dur, spanOpen, d) {
		return // ended before
	}
	if e := s.ctx.set; e.cached {
		pprof.SetGoroutineLabels(&e.restore)
		s.fin.Text = &e.text
		s.sink.Add(&s.fin)
	} else {
		pprof.SetGoroutineLabels(e.from)
		s.sink.Record(e.kv[1], e.kv[2:], s.fin.Start, d, s.fin.ID, s.fin.Parent, s.fin.PCs())
	}
}

// monoNow is spans.Now, the monotonic clock in ns since spans.Epoch (one
// clock read, where time.Now takes two); the sink turns a span's start
// into a Unix time when it hands the span over.
func monoNow() int64 { return int64(time.Since(spanHot.epoch)) }

// ID is the span's id (0 for a nil span).
func (s *Span) ID() uint64 {
	if s == nil {
		return 0
	}
	return s.fin.ID
}

// ParentID is the id of the span's parent, 0 for a root span.
func (s *Span) ParentID() uint64 {
	if s == nil {
		return 0
	}
	return s.fin.Parent
}
