package viewer

import (
	"bytes"
	"fmt"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/pprof/profile"
	"github.com/pprofio/pprofio/examples/ingest-server/ingestpb"
)

// customProfile is a cycle's custom profile as the agent makes it: one
// start-stack sample, then one sample per series carrying its timings
// (span_count, span_total, span_min, span_max, span_p50, span_p90,
// span_p99) on the frame span:<name>{tags}, labelled by name and tags.
func customProfile(tb testing.TB, start time.Time, series map[string][7]int64, tags map[string]map[string]string) []byte {
	tb.Helper()
	p := &profile.Profile{TimeNanos: start.UnixNano(), DurationNanos: int64(cycle), PeriodType: &profile.ValueType{Type: "wall", Unit: "nanoseconds"}}
	for _, st := range [][2]string{{"spans", "count"}, {"wall", "nanoseconds"}, {"span_count", "count"}, {"span_total", "nanoseconds"},
		{"span_min", "nanoseconds"}, {"span_max", "nanoseconds"}, {"span_p50", "nanoseconds"}, {"span_p90", "nanoseconds"}, {"span_p99", "nanoseconds"}} {
		p.SampleType = append(p.SampleType, &profile.ValueType{Type: st[0], Unit: st[1]})
	}
	fn := func(name string) *profile.Location {
		f := &profile.Function{ID: uint64(len(p.Function) + 1), Name: name}
		p.Function = append(p.Function, f)
		l := &profile.Location{ID: uint64(len(p.Location) + 1), Line: []profile.Line{{Function: f}}}
		p.Location = append(p.Location, l)
		return l
	}
	p.Sample = append(p.Sample, &profile.Sample{Location: []*profile.Location{fn("main.handle")}, Value: []int64{3, 9e6, 0, 0, 0, 0, 0, 0, 0},
		Label: map[string][]string{"span": {"checkout"}}})
	for name, v := range series {
		labels := map[string][]string{"span": {name}}
		for k, val := range tags[name] {
			labels[k] = []string{val}
		}
		p.Sample = append(p.Sample, &profile.Sample{Location: []*profile.Location{fn("span:" + name)},
			Value: append([]int64{0, 0}, v[:]...), Label: labels})
	}
	var buf bytes.Buffer
	if err := p.WriteUncompressed(&buf); err != nil {
		tb.Fatal(err)
	}
	return buf.Bytes()
}

// A batch with the agent's span timings charts them (over every span),
// not the percentiles of its few sampled spans.
func TestSpanPercentilesAreTheAgentsAggregatesWhenTheBatchHasThem(t *testing.T) {
	in := newIngest(t)
	for i := 0; i < 3; i++ {
		req := testBatch(t, "shop", i, nil, true) // sampled checkouts: 10..50 ms, p50 30 ms
		start := t0.Add(time.Duration(i) * cycle)
		req.Profiles = append(req.Profiles, &ingestpb.Profile{Type: ingestpb.ProfileType_PROFILE_TYPE_CUSTOM,
			StartUnixNano: start.UnixNano(), EndUnixNano: start.Add(cycle).UnixNano(), Delta: true,
			Pprof: customProfile(t, start, map[string][7]int64{
				"checkout": {1000, 7e9, 1e6, 90e6, int64(7+i) * 1e6, 20e6, 80e6},
				"db.query": {400, 1e9, 1e6, 9e6, 2e6, 3e6, 8e6},
			}, map[string]map[string]string{"checkout": {"tier": "gold"}})})
		in.send(t, req)
	}
	v := newTestViewer(t, in.dir, t.TempDir())
	body := mustGet(t, v, "/s/received/shop/spans", 200, "checkout {tier=gold}: latency percentiles (3000 spans)",
		"db.query: latency percentiles (1200 spans)", `id="waterfall"`, "Sampled spans of cycle #3 (15 spans)")
	if !strings.Contains(body, "p50 2026-11-30 12:02:00Z: 9ms") || !strings.Contains(body, "p99 2026-11-30 12:00:00Z: 80ms") {
		t.Fatalf("spans page: the agent's checkout percentiles (p50 7, 8, 9 ms; p99 80 ms) are not charted:\n%.5000s", body)
	}
	if strings.Contains(body, "sampled spans (its batch") || strings.Contains(body, "checkout: latency percentiles") {
		t.Fatalf("spans page: percentiles of the sampled spans shown beside the agent's")
	}
	overview := mustGet(t, v, "/s/received/shop/", 200)
	if !regexp.MustCompile(`<td>custom</td>\s*<td>3</td>[\s\S]*?href="/s/received/shop/spans`).MatchString(overview) {
		t.Fatalf("overview: no row of the 3 custom profiles linking to the spans page:\n%.6000s", overview)
	}
}

// timelineFile is an OutputDir timeline file as the agent writes it: the
// cycle's counts, a line per series, a line per sampled span (request
// with two children).
func timelineFile(start time.Time, requests int) []byte {
	var b bytes.Buffer
	ns := start.UnixNano()
	fmt.Fprintf(&b, `{"cycle_start":"%s","cycle_start_unix_nano":%d,"cycle_end":"%s","cycle_end_unix_nano":%d,"recorded":%d,"in_timeline":%d,"not_in_timeline":0,"overflowed":0,"dropped":0,"stacks_dropped":0}`+"\n",
		start.Format(fileTimeLayout), ns, start.Add(cycle).Format(fileTimeLayout), ns+int64(cycle), 3*requests, 3*requests)
	fmt.Fprintf(&b, `{"series":"db.query","tags":{"table":"orders"},"count":%d,"total_ns":1,"min_ns":1,"max_ns":4000000,"p50_ns":2000000,"p90_ns":3000000,"p99_ns":4000000}`+"\n", requests)
	fmt.Fprintf(&b, `{"series":"render","tags":{},"count":%d,"total_ns":1,"min_ns":1,"max_ns":2000000,"p50_ns":1000000,"p90_ns":1500000,"p99_ns":2000000}`+"\n", requests)
	fmt.Fprintf(&b, `{"series":"request","tags":{"route":"/checkout"},"count":%d,"total_ns":1,"min_ns":1,"max_ns":9000000,"p50_ns":5000000,"p90_ns":7000000,"p99_ns":9000000}`+"\n", requests)
	for j := 0; j < requests; j++ {
		at := ns + int64(j)*int64(10*time.Millisecond)
		id := 100*j + 1
		span := func(name string, off, dur int64, tags string, id, parent int) {
			fmt.Fprintf(&b, `{"span":"%s","start":"x","start_unix_nano":%d,"duration_ns":%d,"tags":{%s},"span_id":"%016x","parent_span_id":"%016x","slowest":false,"uniform":true}`+"\n",
				name, at+off, dur, tags, id, parent)
		}
		span("request", 0, 5e6, `"route":"/checkout"`, id, 0)
		span("db.query", 1e5, 2e6, `"table":"orders"`, id+1, id)
		span("render", 3e6, 1e6, ``, id+2, id)
	}
	return b.Bytes()
}

// An OutputDir's timeline files give the spans page of a local source:
// the agent's percentiles per series and each cycle's waterfall; a damaged
// one is named on the page and the others still show.
func TestSpanPagesOfAnOutputDirReadItsTimelineFiles(t *testing.T) {
	local := filepath.Join(t.TempDir(), "out")
	for i := 0; i < 3; i++ {
		writeLocal(t, local, "basic", i)
		start := t0.Add(time.Duration(i) * cycle)
		writeFile(t, filepath.Join(local, "basic", "timeline", start.Format(fileTimeLayout)+"_"+start.Add(cycle).Format(fileTimeLayout)+".jsonl"),
			timelineFile(start, 4+i))
	}
	writeFile(t, filepath.Join(local, "basic", "timeline", "20261130T120500.000Z_20261130T120600.000Z.jsonl"), []byte("{\"series\":\n"))
	v := newTestViewer(t, t.TempDir(), local)
	body := mustGet(t, v, "/s/local/basic/spans", 200, "request {route=/checkout}: latency percentiles (15 spans)",
		"db.query {table=orders}: latency percentiles (15 spans)", "render: latency percentiles (15 spans)",
		"p50 2026-11-30 12:01:00Z: 5ms", `id="waterfall"`, "Sampled spans of the cycle of 2026-11-30 12:02:00Z (18 spans)")
	if n := strings.Count(body, `<g class="span"`); n != 18 {
		t.Fatalf("waterfall: %d spans drawn, want the last cycle's 18", n)
	}
	if !regexp.MustCompile(`data-name="request"><text x="8"[^>]*>request</text>.*?data-name="db.query"><text x="20"[^>]*>db.query</text>.*?data-name="render"><text x="20"`).MatchString(body) {
		t.Fatalf("waterfall: db.query and render are not drawn under their request")
	}
	first := filepath.Join("basic", "timeline", t0.Format(fileTimeLayout)+"_"+t0.Add(cycle).Format(fileTimeLayout)+".jsonl")
	mustGet(t, v, "/s/local/basic/spans?cycle="+first, 200, "Sampled spans of the cycle of 2026-11-30 12:00:00Z (12 spans)")
	mustGet(t, v, "/s/local/basic/", 200, "20261130T120500.000Z_20261130T120600.000Z.jsonl: line 1 is not JSON")
}
