package e2e

// Spans through a real agent: a program with known span names and
// durations, uploading over TLS to the reference receiver and writing
// locally. What was received and what was stored must carry the right
// names, counts and quantiles, within the histogram's stated error.

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/pprof/profile"

	"github.com/pprofio/pprofio"
	"github.com/pprofio/pprofio/examples/ingest-server/ingestpb"
	"github.com/pprofio/pprofio/internal/core"
)

// spanBounds is what the test knows of one span name's durations: each
// span lasted at least inner (timed inside it) and at most outer (timed
// around StartSpan and End).
type spanBounds struct {
	tags         map[string]string
	inner, outer []time.Duration
}

func (b *spanBounds) add(inner, outer time.Duration) {
	b.inner = append(b.inner, inner)
	b.outer = append(b.outer, outer)
}

// nearestRank is the q-quantile of ds by nearest rank.
func nearestRank(ds []time.Duration, q float64) time.Duration {
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	k := int(math.Ceil(q*float64(len(s)))) - 1
	return s[max(k, 0)]
}

// timedSpan runs work inside a span and records its bounds.
func timedSpan(ctx context.Context, b *spanBounds, name string, tags []string, work func()) {
	t0 := time.Now()
	_, span := pprofio.StartSpan(ctx, name, tags...)
	t1 := time.Now()
	work()
	t2 := time.Now()
	span.End()
	b.add(t2.Sub(t1), time.Since(t0))
}

// runKnownSpans runs the program: 60 sleeps of 3 ms, 40 burns of a fixed
// amount of work, and 100 "mixed" spans (90 sleeps of 1 ms, 10 of 30 ms)
// as children of one "request" span. It returns the bounds by name and the
// request span's id.
func runKnownSpans() (map[string]*spanBounds, uint64) {
	ctx := context.Background()
	got := map[string]*spanBounds{
		"sleep":   {tags: map[string]string{"kind": "io"}},
		"burn":    {tags: map[string]string{"kind": "cpu"}},
		"mixed":   {tags: map[string]string{}},
		"request": {tags: map[string]string{"route": "/checkout"}},
	}
	for i := 0; i < 60; i++ {
		timedSpan(ctx, got["sleep"], "sleep", []string{"kind", "io"}, func() { time.Sleep(3 * time.Millisecond) })
	}
	var sink uint64
	for i := 0; i < 40; i++ {
		timedSpan(ctx, got["burn"], "burn", []string{"kind", "cpu"}, func() { sink += burn(1 << 18) })
	}
	t0 := time.Now()
	rctx, req := pprofio.StartSpan(ctx, "request", "route", "/checkout")
	t1 := time.Now()
	for i := 0; i < 100; i++ {
		d := time.Millisecond
		if i%10 == 9 {
			d = 30 * time.Millisecond
		}
		timedSpan(rctx, got["mixed"], "mixed", nil, func() { time.Sleep(d) })
	}
	t2 := time.Now()
	req.End()
	got["request"].add(t2.Sub(t1), time.Since(t0))
	_ = sink
	return got, req.ID()
}

// seriesTimings is one series' timings as the custom profile carries them.
type seriesTimings struct {
	tags                           map[string]string
	count                          int64
	total, min, max, p50, p90, p99 time.Duration
}

// customSeries reads the series' timing samples of a custom profile.
func customSeries(t *testing.T, p *profile.Profile) map[string]seriesTimings {
	t.Helper()
	idx := map[string]int{}
	for i, st := range p.SampleType {
		idx[st.Type] = i
	}
	for _, want := range []string{"spans", "wall", "span_count", "span_total", "span_min", "span_max", "span_p50", "span_p90", "span_p99"} {
		if _, ok := idx[want]; !ok {
			t.Fatalf("the custom profile has no sample type %q: %v", want, p.SampleType)
		}
	}
	out := map[string]seriesTimings{}
	for _, s := range p.Sample {
		if s.Value[idx["span_count"]] == 0 {
			continue // a start stack
		}
		tags := map[string]string{}
		for k, vs := range s.Label {
			if k != "span" {
				tags[k] = vs[0]
			}
		}
		v := func(k string) time.Duration { return time.Duration(s.Value[idx[k]]) }
		name := s.Label["span"][0]
		if _, dup := out[name]; dup {
			t.Errorf("two timing samples for span %q", name)
		}
		out[name] = seriesTimings{tags: tags, count: s.Value[idx["span_count"]], total: v("span_total"),
			min: v("span_min"), max: v("span_max"), p50: v("span_p50"), p90: v("span_p90"), p99: v("span_p99")}
	}
	return out
}

// checkTimings checks the series of one custom profile against the bounds.
func checkTimings(t *testing.T, where string, got map[string]seriesTimings, want map[string]*spanBounds) {
	t.Helper()
	e := core.SpanQuantileError
	for name, b := range want {
		s, ok := got[name]
		if !ok {
			t.Errorf("%s: no series %q (have %v)", where, name, keys(got))
			continue
		}
		if s.count != int64(len(b.inner)) {
			t.Errorf("%s: %s count %d, want %d", where, name, s.count, len(b.inner))
		}
		if fmt.Sprint(s.tags) != fmt.Sprint(b.tags) {
			t.Errorf("%s: %s tags %v, want %v", where, name, s.tags, b.tags)
		}
		var lo, hi time.Duration
		for i := range b.inner {
			lo, hi = lo+b.inner[i], hi+b.outer[i]
		}
		if s.total < lo || s.total > hi {
			t.Errorf("%s: %s total %v not in [%v, %v]", where, name, s.total, lo, hi)
		}
		if s.min < nearestRank(b.inner, 0) || s.max > nearestRank(b.outer, 1) {
			t.Errorf("%s: %s min/max %v/%v not in [%v, %v]", where, name, s.min, s.max,
				nearestRank(b.inner, 0), nearestRank(b.outer, 1))
		}
		for _, q := range []struct {
			q   float64
			got time.Duration
		}{{0.5, s.p50}, {0.9, s.p90}, {0.99, s.p99}} {
			lo := time.Duration(float64(nearestRank(b.inner, q.q)) * (1 - e))
			hi := time.Duration(float64(nearestRank(b.outer, q.q)) * (1 + e))
			if q.got < lo || q.got > hi {
				t.Errorf("%s: %s p%g = %v, not in [%v, %v] (exact bounds ± %.4g)", where, name, q.q*100, q.got, lo, hi, e)
			}
		}
	}
	if len(got) != len(want) {
		t.Errorf("%s: series %v, want those of %v", where, keys(got), keys(want))
	}
}

func keys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// TestSpansReachTheBatchAndTheDiskWithTheirTimings: one cycle (the final
// one Stop closes) of a program with known spans. The batch carries the
// custom profile, whose series timings have the right counts, totals and
// quantiles, and the sampled timeline (names, tags, ids, the slowest span
// of each name, children pointing at their parent); the receiver stored
// the custom profile; OutputDir holds the same custom profile and a
// timeline file with the same counts.
func TestSpansReachTheBatchAndTheDiskWithTheirTimings(t *testing.T) {
	isolateEnv(t)
	in := newIngest(t, ingestOpts{})
	logs := &logCapture{}
	out := filepath.Join(t.TempDir(), "out")
	cfg := deliveryConfig(in, "e2e-span-wiring", filepath.Join(t.TempDir(), "spool"), logs)
	cfg.OutputDir = out
	cfg.SampleRate = 10 * time.Minute // the whole program runs in cycle 0, which Stop ends
	cfg.StopTimeout = time.Minute     // Stop delivers the one batch, however busy the machine is
	cfg.Profiles = []pprofio.ProfileType{pprofio.ProfileHeap}
	p := startProfiler(t, cfg)
	want, requestID := runKnownSpans()
	if err := stopWithin(t, p); err != nil {
		t.Fatal(err)
	}
	dumpOnFailure(t, logs, in)
	st := p.Stats()
	if st.SpansRecorded != 201 || st.SpansDropped != 0 || st.SpansOverflowed != 0 {
		t.Errorf("Stats: recorded %d dropped %d overflowed %d, want 201, 0, 0", st.SpansRecorded, st.SpansDropped,
			st.SpansOverflowed)
	}

	ups := in.distinctAccepted()
	if len(ups) != 1 {
		t.Fatalf("%d batches accepted, want 1 (one cycle)", len(ups))
	}
	req := ups[0].Req
	var custom *ingestpb.Profile
	for _, pr := range req.GetProfiles() {
		if pr.GetType() == ingestpb.ProfileType_PROFILE_TYPE_CUSTOM {
			custom = pr
		}
	}
	if custom == nil {
		t.Fatalf("no custom profile in the batch: %v", ups[0])
	}
	received, err := profile.ParseData(custom.GetPprof())
	if err != nil {
		t.Fatalf("the received custom profile does not parse: %v", err)
	}
	if err := received.CheckValid(); err != nil {
		t.Fatal(err)
	}
	for name, s := range customSeries(t, received) {
		t.Logf("received %s%v: count %d total %v min %v max %v p50 %v p90 %v p99 %v", name, s.tags, s.count, s.total,
			s.min, s.max, s.p50, s.p90, s.p99)
	}
	checkTimings(t, "received", customSeries(t, received), want)
	checkTimeline(t, req.GetSpans(), want, requestID, uint64(st.SpansSampled))

	// The receiver's stored copy and the local one are the same profile.
	stored := in.stored(t)
	var storedCustom string
	for _, b := range stored {
		for _, pf := range b.Profiles {
			if pf.Type == "custom" {
				storedCustom = filepath.Join(in.DataDir, pf.File)
			}
		}
	}
	if storedCustom == "" {
		t.Fatalf("the receiver stored no custom profile: %+v", stored)
	}
	checkTimings(t, "stored by the receiver", customSeries(t, parseFile(t, storedCustom)), want)
	local := listProfiles(t, out, cfg.ServiceName, pprofio.ProfileType("custom"))
	if len(local) != 1 {
		t.Fatalf("%d local custom profiles, want 1", len(local))
	}
	checkTimings(t, "stored locally", customSeries(t, parseFile(t, local[0].Path)), want)
	checkTimelineFile(t, filepath.Join(out, cfg.ServiceName, "timeline"), want, len(req.GetSpans()))
}

// checkTimeline checks the batch's sampled spans.
func checkTimeline(t *testing.T, spans []*ingestpb.Span, want map[string]*spanBounds, requestID, sampled uint64) {
	t.Helper()
	if len(spans) == 0 || uint64(len(spans)) != sampled {
		t.Fatalf("%d spans in the batch, Stats.SpansSampled %d", len(spans), sampled)
	}
	slowest := map[string]time.Duration{}
	ids := map[uint64]bool{}
	for _, s := range spans {
		b, ok := want[s.GetName()]
		if !ok {
			t.Errorf("a span named %q", s.GetName())
			continue
		}
		if fmt.Sprint(s.GetTags()) != fmt.Sprint(b.tags) && !(len(b.tags) == 0 && len(s.GetTags()) == 0) {
			t.Errorf("span %s: tags %v, want %v", s.GetName(), s.GetTags(), b.tags)
		}
		if s.GetSpanId() == 0 || ids[s.GetSpanId()] {
			t.Errorf("span %s: id %x zero or repeated", s.GetName(), s.GetSpanId())
		}
		ids[s.GetSpanId()] = true
		d := time.Duration(s.GetDurationNanos())
		if d < nearestRank(b.inner, 0) || d > nearestRank(b.outer, 1) {
			t.Errorf("span %s: duration %v outside what the program timed", s.GetName(), d)
		}
		if parent := s.GetParentSpanId(); (s.GetName() == "mixed") != (parent == requestID) || (s.GetName() != "mixed" && parent != 0) {
			t.Errorf("span %s: parent %x (the request span is %x)", s.GetName(), parent, requestID)
		}
		slowest[s.GetName()] = max(slowest[s.GetName()], d)
	}
	for name, b := range want {
		// The slowest span of each name is always kept: it is at least the
		// slowest one the program timed from inside.
		if slowest[name] < nearestRank(b.inner, 1) {
			t.Errorf("the slowest %s span in the timeline took %v; the program timed one of at least %v", name,
				slowest[name], nearestRank(b.inner, 1))
		}
	}
}

// checkTimelineFile reads the local timeline: its first line's counts,
// one line per series with the series' count, one line per sampled span.
func checkTimelineFile(t *testing.T, dir string, want map[string]*spanBounds, sampled int) {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.jsonl"))
	if err != nil || len(files) != 1 {
		t.Fatalf("timeline files in %s: %v, %v (want one)", dir, files, err)
	}
	f, err := os.Open(files[0])
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var lines []map[string]any
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("%s: a line is not JSON: %v: %s", files[0], err, sc.Text())
		}
		lines = append(lines, m)
	}
	if len(lines) == 0 {
		t.Fatalf("%s is empty", files[0])
	}
	head := lines[0]
	if head["recorded"] != 201.0 || head["in_timeline"] != float64(sampled) ||
		head["in_timeline"].(float64)+head["not_in_timeline"].(float64) != 201 {
		t.Errorf("timeline head %v: want 201 recorded, %d in the timeline, the rest not", head, sampled)
	}
	series, spans := 0, 0
	for _, m := range lines[1:] {
		switch {
		case m["series"] != nil:
			series++
			name := m["series"].(string)
			if b := want[name]; b == nil || m["count"] != float64(len(b.inner)) {
				t.Errorf("timeline series line %v", m)
			}
		case m["span"] != nil:
			spans++
			if want[m["span"].(string)] == nil || !strings.HasSuffix(m["start"].(string), "Z") {
				t.Errorf("timeline span line %v", m)
			}
		default:
			t.Errorf("timeline line %v is neither a series nor a span", m)
		}
	}
	if series != len(want) || spans != sampled {
		t.Errorf("timeline: %d series and %d spans, want %d and %d", series, spans, len(want), sampled)
	}
}

// TestSpansPastTheBoundAreCountedAndReported: with the smallest
// MaxSpanBytes, spans of thousands of distinct names overflow; every one
// is counted (Stats, the custom profile's overflow series), and the batch
// carries a data_dropped event with reason span_bound saying how many.
func TestSpansPastTheBoundAreCountedAndReported(t *testing.T) {
	isolateEnv(t)
	in := newIngest(t, ingestOpts{})
	logs := &logCapture{}
	cfg := deliveryConfig(in, "e2e-span-bound", filepath.Join(t.TempDir(), "spool"), logs)
	cfg.SampleRate = 10 * time.Minute
	cfg.StopTimeout = time.Minute
	cfg.MaxSpanBytes = pprofio.MinMaxSpanBytes
	cfg.Profiles = []pprofio.ProfileType{pprofio.ProfileHeap}
	p := startProfiler(t, cfg)
	const n = 5000
	for i := 0; i < n; i++ {
		_, span := pprofio.StartSpan(context.Background(), fmt.Sprintf("op-%d", i))
		span.End()
	}
	if err := stopWithin(t, p); err != nil {
		t.Fatal(err)
	}
	dumpOnFailure(t, logs, in)
	st := p.Stats()
	if st.SpansRecorded != n || st.SpansOverflowed == 0 || st.SpansOverflowed >= n {
		t.Fatalf("Stats: recorded %d overflowed %d, want %d and some (not all) overflowed", st.SpansRecorded,
			st.SpansOverflowed, n)
	}
	ups := in.distinctAccepted()
	if len(ups) != 1 {
		t.Fatalf("%d batches accepted, want 1", len(ups))
	}
	req := ups[0].Req
	var reported string
	for _, ev := range req.GetEvents() {
		if ev.GetKind() == "data_dropped" && ev.GetAttributes()["reason"] == "span_bound" {
			reported = ev.GetAttributes()["spans"]
		}
	}
	if reported != fmt.Sprint(st.SpansOverflowed) {
		t.Errorf("data_dropped span_bound reports %q spans, Stats.SpansOverflowed %d; events %v", reported,
			st.SpansOverflowed, req.GetEvents())
	}
	var total, overflow int64
	for _, pr := range req.GetProfiles() {
		if pr.GetType() != ingestpb.ProfileType_PROFILE_TYPE_CUSTOM {
			continue
		}
		prof, err := profile.ParseData(pr.GetPprof())
		if err != nil {
			t.Fatal(err)
		}
		for name, s := range customSeries(t, prof) {
			total += s.count
			if name == "(overflow)" {
				overflow = s.count
			}
		}
	}
	if total != n || overflow != int64(st.SpansOverflowed) {
		t.Errorf("the custom profile counts %d spans, %d in the overflow series; want %d and %d", total, overflow, n,
			st.SpansOverflowed)
	}
}
