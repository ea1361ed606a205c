//go:build cgo

package pprofio

import (
	"bytes"
	"context"
	"fmt"
	"runtime"
	"runtime/pprof"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pprofio/pprofio/internal/core"
)

// take flushes the Profiler's buffered spans and takes the recorder's cycle.
func take(t *testing.T, p *Profiler) *core.SpanCycle {
	t.Helper()
	c, err := p.spans.Take()
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func seriesNamed(t *testing.T, c *core.SpanCycle, name string) core.SpanSeries {
	t.Helper()
	for _, s := range c.Series {
		if s.Name == name && !s.Overflow {
			return s
		}
	}
	t.Fatalf("no series %q in %+v", name, c.Series)
	return core.SpanSeries{}
}

func TestSpansWithoutAStartedProfilerCostNothingAndEndSafely(t *testing.T) {
	ctx := context.Background()
	sctx, s := StartSpan(ctx, "checkout", "tier", "gold")
	if sctx != ctx || s != nil {
		t.Fatalf("StartSpan without a Profiler returned %v, %v; want ctx as is and nil", sctx, s)
	}
	s.End()
	s.End()
	if s.ID() != 0 || SpanFromContext(sctx) != nil {
		t.Fatal("a nil span has an id or is in the context")
	}
	ran := false
	Do(ctx, "checkout", func(c context.Context) { ran = c == ctx })
	if !ran {
		t.Fatal("Do did not run f with ctx")
	}
	if n := testing.AllocsPerRun(100, func() {
		_, s := StartSpan(ctx, "checkout", "tier", "gold")
		s.End()
	}); n != 0 {
		t.Fatalf("a span without a Profiler allocates %v times", n)
	}
}

func TestSpanTimingsNestingAndIDsReachTheRecorder(t *testing.T) {
	p := startForSpans(t, Config{})
	ctx := context.Background()
	for i := 0; i < 20; i++ {
		octx, outer := StartSpan(ctx, "checkout", "tier", "gold", "region", "eu")
		if got := SpanFromContext(octx); got != outer {
			t.Fatalf("SpanFromContext = %p, want the span %p", got, outer)
		}
		_, inner := StartSpan(octx, "db.query")
		time.Sleep(2 * time.Millisecond)
		inner.End()
		if inner.ParentID() != outer.ID() || outer.ParentID() != 0 {
			t.Fatalf("parent ids: inner %x (want %x), outer %x (want 0)", inner.ParentID(), outer.ID(), outer.ParentID())
		}
		outer.End()
	}
	c := take(t, p)
	if c.Recorded != 40 {
		t.Fatalf("recorded %d spans, want 40", c.Recorded)
	}
	ck := seriesNamed(t, c, "checkout")
	// Tags are sorted by key whatever order they came in.
	if strings.Join(ck.Tags, ",") != "region,eu,tier,gold" || ck.Count != 20 {
		t.Fatalf("checkout: tags %q, count %d", ck.Tags, ck.Count)
	}
	db := seriesNamed(t, c, "db.query")
	if db.Count != 20 || db.Min < 2*time.Millisecond || ck.Min < db.Min {
		t.Fatalf("db.query: count %d, min %v; checkout min %v: want 20 spans of at least 2ms inside longer ones",
			db.Count, db.Min, ck.Min)
	}
	if db.P50 < db.Min || db.P99 > db.Max || db.P50 > db.P99 {
		t.Fatalf("db.query quantiles out of order: min %v p50 %v p99 %v max %v", db.Min, db.P50, db.P99, db.Max)
	}
	// Every span is in the timeline (fewer than the sample bound), each
	// child under its parent.
	ids := map[uint64]string{}
	for _, s := range c.Samples {
		ids[s.ID] = c.Series[s.Series].Name
	}
	for _, s := range c.Samples {
		if name := c.Series[s.Series].Name; name == "db.query" && ids[s.ParentID] != "checkout" {
			t.Fatalf("db.query span %x has parent %x (%q), want a checkout span", s.ID, s.ParentID, ids[s.ParentID])
		}
	}
	if len(c.Samples) != 40 || c.Unsampled != 0 {
		t.Fatalf("timeline has %d spans, %d unsampled; want all 40", len(c.Samples), c.Unsampled)
	}
	if st := p.Stats(); st.SpansRecorded != 40 || st.SpansSampled != 40 {
		t.Fatalf("Stats: recorded %d, sampled %d; want 40, 40", st.SpansRecorded, st.SpansSampled)
	}
}

func TestASpanEndedTwiceOrNeverIsRecordedOnceOrNot(t *testing.T) {
	p := startForSpans(t, Config{})
	_, s := StartSpan(context.Background(), "twice")
	s.End()
	s.End()
	_, never := StartSpan(context.Background(), "never")
	_ = never
	c := take(t, p)
	if c.Recorded != 1 || len(c.Series) != 1 || c.Series[0].Name != "twice" {
		t.Fatalf("recorded %d in %+v; want the span ended twice, once", c.Recorded, c.Series)
	}
}

func TestSpansEndingAfterStopAreNotRecordedAndDoNotCrash(t *testing.T) {
	p := startForSpans(t, Config{})
	ctx, open := StartSpan(context.Background(), "open-at-stop")
	_, done := StartSpan(ctx, "done")
	done.End()
	if err := p.Stop(); err != nil {
		t.Fatal(err)
	}
	open.End()
	open.End()
	_, after := StartSpan(context.Background(), "after-stop")
	if after != nil {
		t.Fatal("a span started after Stop is recorded")
	}
	after.End()
	if st := p.Stats(); st.SpansRecorded != 1 {
		t.Fatalf("Stats after Stop: %d spans recorded, want 1 (the one ended before Stop)", st.SpansRecorded)
	}
}

func TestTenThousandNamesAreBoundedAndTheOverflowIsCounted(t *testing.T) {
	p := startForSpans(t, Config{})
	for i := 0; i < 10000; i++ {
		_, s := StartSpan(context.Background(), fmt.Sprintf("name-%05d", i))
		s.End()
	}
	c := take(t, p)
	var overflow core.SpanSeries
	named := 0
	for _, s := range c.Series {
		if s.Overflow {
			overflow = s
		} else {
			named++
		}
	}
	if c.Recorded != 10000 || uint64(named)+overflow.Count != 10000 || overflow.Count == 0 {
		t.Fatalf("recorded %d: %d named series, %d spans in the overflow series", c.Recorded, named, overflow.Count)
	}
	if named > 1000 {
		t.Fatalf("%d series: the cardinality bound (1000) did not hold", named)
	}
	if st := p.Stats(); st.SpansOverflowed != overflow.Count {
		t.Fatalf("Stats.SpansOverflowed = %d, want %d", st.SpansOverflowed, overflow.Count)
	}
	if c.Bytes > DefaultMaxSpanBytes {
		t.Fatalf("the cycle held %d bytes, over MaxSpanBytes %d", c.Bytes, DefaultMaxSpanBytes)
	}
}

func TestSpansFromAThousandGoroutinesAtOnceAreAllRecorded(t *testing.T) {
	p := startForSpans(t, Config{})
	const goroutines, each = 1000, 20
	var wg sync.WaitGroup
	start := make(chan struct{})
	root, rs := StartSpan(context.Background(), "request")
	for g := 0; g < goroutines; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			<-start
			for i := 0; i < each; i++ {
				ctx, s := StartSpan(root, "work", "shard", fmt.Sprint(g%4))
				Do(ctx, "step", func(context.Context) {})
				if s.ParentID() != rs.ID() {
					t.Errorf("a span on another goroutine has parent %x, want %x", s.ParentID(), rs.ID())
				}
				s.End()
			}
		}(g)
	}
	close(start)
	wg.Wait()
	rs.End()
	c := take(t, p)
	if want := uint64(goroutines*each*2 + 1); c.Recorded != want {
		t.Fatalf("recorded %d spans, want %d", c.Recorded, want)
	}
	var work uint64
	for _, s := range c.Series {
		if s.Name == "work" {
			work += s.Count
		}
	}
	if work != goroutines*each || len(c.Series) != 6 {
		t.Fatalf("%d work spans in %d series, want %d in 6 (4 shards, step, request)", work, len(c.Series), goroutines*each)
	}
}

// goroutineLabels returns the labels of the goroutines whose stack holds fn,
// from the goroutine profile: what its samples carry.
func goroutineLabels(t *testing.T, fn string) string {
	t.Helper()
	var buf bytes.Buffer
	pprof.Lookup("goroutine").WriteTo(&buf, 1)
	for _, rec := range strings.Split(buf.String(), "\n\n") {
		if !strings.Contains(rec, fn) {
			continue
		}
		for _, line := range strings.Split(rec, "\n") {
			if strings.HasPrefix(line, "# labels: ") {
				return strings.TrimPrefix(line, "# labels: ")
			}
		}
		return "{}"
	}
	t.Fatalf("no goroutine in %s", fn)
	return ""
}

// parkedInSpan and parkedAfterSpan block so that the goroutine profile can
// be taken inside the span and after it.
func parkedInSpan(ready chan<- struct{}, release <-chan struct{}) { ready <- struct{}{}; <-release }

func parkedAfterSpan(ready chan<- struct{}, release <-chan struct{}) { ready <- struct{}{}; <-release }

func TestSpanLabelsAreMergedWithTheProgramsAndPutBackAtEnd(t *testing.T) {
	startForSpans(t, Config{})
	ready, release := make(chan struct{}), make(chan struct{})
	done := make(chan struct{})
	go pprof.Do(context.Background(), pprof.Labels("user", "alice", "tier", "free"), func(ctx context.Context) {
		defer close(done)
		_, s := StartSpan(ctx, "checkout", "tier", "gold")
		parkedInSpan(ready, release)
		s.End()
		parkedAfterSpan(ready, release)
	})
	<-ready
	in := goroutineLabels(t, "parkedInSpan")
	release <- struct{}{}
	<-ready
	after := goroutineLabels(t, "parkedAfterSpan")
	release <- struct{}{}
	<-done
	if want := `{"span":"checkout", "tier":"gold", "user":"alice"}`; in != want {
		t.Errorf("labels inside the span: %s, want %s", in, want)
	}
	if want := `{"tier":"free", "user":"alice"}`; after != want {
		t.Errorf("labels after the span: %s, want %s", after, want)
	}
}

func TestLabelsOnlyOptionsLabelSamplesButDoNotSplitTimings(t *testing.T) {
	p := startForSpans(t, Config{})
	for i := 0; i < 3; i++ {
		ctx, s := StartSpanWith(context.Background(), "rpc", SpanOptions{
			Tags: []string{"method", "get"}, Labels: []string{"span_id", fmt.Sprint(i)}, ID: uint64(100 + i), ParentID: 7})
		if v, _ := pprof.Label(ctx, "span_id"); v != fmt.Sprint(i) {
			t.Fatalf("label span_id = %q, want %d", v, i)
		}
		s.End()
	}
	c := take(t, p)
	if len(c.Series) != 1 || c.Series[0].Count != 3 {
		t.Fatalf("series %+v: want one rpc series of 3 spans", c.Series)
	}
	for _, s := range c.Samples {
		if s.ID < 100 || s.ID > 102 || s.ParentID != 7 {
			t.Fatalf("sample ids %d/%d: want the ids given", s.ID, s.ParentID)
		}
	}
}

func TestSampledSpansCarryTheirStartStack(t *testing.T) {
	p := startForSpans(t, Config{})
	old := spanHot.stackEvery.Swap(1)
	defer spanHot.stackEvery.Store(old)
	for i := 0; i < 5; i++ {
		_, s := StartSpan(context.Background(), "stacked")
		s.End()
	}
	c := take(t, p)
	if len(c.Stacks) != 1 || c.Stacks[0].Count != 5 {
		t.Fatalf("stacks %+v: want one stack counted 5 times", c.Stacks)
	}
	fn := ""
	if f := runtimeFunc(c.Stacks[0].PCs[0]); f != "" {
		fn = f
	}
	if !strings.Contains(fn, "TestSampledSpansCarryTheirStartStack") {
		t.Fatalf("the stack starts in %q, want the test that started the span", fn)
	}
}

func TestMaxSpanBytesIsCheckedByNew(t *testing.T) {
	_, err := New(Config{ServiceName: "x", OutputDir: t.TempDir(), MaxSpanBytes: 1000})
	if ce, ok := err.(*ConfigError); !ok || ce.Field != "MaxSpanBytes" {
		t.Fatalf("New with MaxSpanBytes 1000: %v, want a ConfigError on MaxSpanBytes", err)
	}
}

func runtimeFunc(pc uintptr) string {
	frames := runtime.CallersFrames([]uintptr{pc})
	f, _ := frames.Next()
	return f.Function
}

// labelsOf lists ctx's pprof labels as runtime/pprof reads them.
func labelsOf(ctx context.Context) string {
	var kv []string
	pprof.ForLabels(ctx, func(k, v string) bool {
		kv = append(kv, k+"="+v)
		return true
	})
	return strings.Join(kv, ",")
}

func TestSpansOfOneNameAndTagSetShareOneLabelMapWithTheRightLabels(t *testing.T) {
	startForSpans(t, Config{})
	if spanHot.labelKey == nil {
		t.Fatal("runtime/pprof's label key was not found: every span would build its own labels")
	}
	prog := pprof.WithLabels(context.Background(), pprof.Labels("user", "alice", "tier", "free"))
	for _, c := range []struct {
		name string
		ctx  context.Context
		tags []string
		want string
	}{
		{"no labels before", context.Background(), []string{"tier", "gold"}, "span=checkout,tier=gold"},
		{"tags out of order", context.Background(), []string{"zone", "b", "route", "/x"}, "route=/x,span=checkout,zone=b"},
		{"the program's labels", prog, []string{"tier", "gold"}, "span=checkout,tier=gold,user=alice"},
	} {
		ctx1, s1 := StartSpan(c.ctx, "checkout", c.tags...)
		s1.End()
		ctx2, s2 := StartSpan(c.ctx, "checkout", c.tags...)
		if got := labelsOf(ctx2); got != c.want || labelsOf(ctx1) != c.want {
			t.Errorf("%s: labels %s and %s, want %s", c.name, labelsOf(ctx1), got, c.want)
		}
		if s1.ctx.set != s2.ctx.set || s2.ctx.set.labels == nil {
			t.Errorf("%s: two spans of one name and tag set built two label maps", c.name)
		}
		inner, s3 := StartSpan(ctx2, "db.query", "table", "orders")
		want := strings.Replace(c.want, "span=checkout", "span=db.query", 1)
		if !strings.Contains(want, "table=") {
			want = strings.Replace(want, "span=db.query", "span=db.query,table=orders", 1)
		}
		if got := labelsOf(inner); got != want {
			t.Errorf("%s: nested span's labels %s, want %s", c.name, got, want)
		}
		s3.End()
		s2.End()
	}
	_, own := StartSpanWith(context.Background(), "checkout", SpanOptions{Tags: []string{"tier", "gold"}, Labels: []string{"span_id", "1"}})
	if own.ctx.set.labels != nil {
		t.Error("a span with labels of its own shares a label map")
	}
	own.End()
}

func TestSpansCollidingInTheLabelCacheFromManyGoroutinesKeepTheirLabels(t *testing.T) {
	p := startForSpans(t, Config{})
	const goroutines, names, each = 8, 4 << labelBits, 3000
	var wg sync.WaitGroup
	for g := 0; g < goroutines; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			parent, ps := StartSpan(context.Background(), "outer", "g", fmt.Sprint(g%2))
			defer ps.End()
			for i := 0; i < each; i++ {
				name := fmt.Sprint("n", (i*7+g*13)%names)
				ctx, s := StartSpan(parent, name, "k", "v")
				want := fmt.Sprintf("g=%d,k=v,span=%s", g%2, name)
				if got := labelsOf(ctx); got != want {
					t.Errorf("labels %s, want %s", got, want)
				}
				if s.ParentID() != ps.ID() {
					t.Errorf("parent %x, want %x", s.ParentID(), ps.ID())
				}
				s.End()
			}
		}(g)
	}
	wg.Wait()
	if c := take(t, p); c.Recorded != goroutines*(each+1) {
		t.Fatalf("recorded %d spans, want %d", c.Recorded, goroutines*(each+1))
	}
}

// oddLabels answers runtime/pprof's label key with something that is not
// a label map (and cannot be compared).
type oddLabels struct{ context.Context }

func (o oddLabels) Value(key any) any {
	if key == spanHot.labelKey {
		return []string{"not", "labels"}
	}
	return o.Context.Value(key)
}

func TestAContextAnsweringTheLabelKeyOddlyGetsTheSpansLabelsWithoutAPanic(t *testing.T) {
	startForSpans(t, Config{})
	for i := 0; i < 2; i++ {
		ctx, s := StartSpan(oddLabels{context.Background()}, "odd", "k", "v")
		if got := labelsOf(ctx); got != "k=v,span=odd" {
			t.Errorf("labels %s, want k=v,span=odd", got)
		}
		s.End()
	}
}

// A span's start in the timeline is the wall clock when it started, also
// when its buffer is handed to the core long after it ended (the start
// travels as a monotonic reading and becomes a Unix time at the hand-over).
// It may differ from a wall clock read beside it by the wall clock's slew
// in between (at most 500 ppm; a step would move it by the step): a
// millisecond is allowed.
func TestSpanStartsInTheTimelineAreTheWallClockAtTheirStart(t *testing.T) {
	p := startForSpans(t, Config{})
	const slack = time.Millisecond
	for _, handOverAfter := range []time.Duration{0, 200 * time.Millisecond} {
		before := time.Now()
		_, s := StartSpan(context.Background(), "clocked")
		time.Sleep(time.Millisecond)
		s.End()
		after := time.Now()
		time.Sleep(handOverAfter)
		c := take(t, p)
		if len(c.Samples) != 1 {
			t.Fatalf("handed over after %v: %d spans in the timeline, want 1", handOverAfter, len(c.Samples))
		}
		got := c.Samples[0]
		if got.Start.Before(before.Add(-slack)) || got.Start.Add(got.Duration).After(after.Add(slack)) ||
			got.Duration < time.Millisecond {
			t.Fatalf("handed over after %v: span from %v for %v; want it within [%v, %v], at least 1ms long",
				handOverAfter, got.Start, got.Duration, before, after)
		}
	}
}
