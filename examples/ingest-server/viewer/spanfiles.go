package viewer

// Where the spans come from. The agent aggregates every span of a cycle
// per series (name and tag set): count, max and p50/p90/p99, sent as the
// custom profile's span_* sample types and written to an OutputDir's
// timeline/<window>.jsonl, which also holds the cycle's sampled spans.
// The receiver keeps a batch's sampled spans as a spans file
// (UploadRequest.spans). The percentiles come from the aggregates when a
// cycle has them, else from the sampled spans.

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/google/pprof/profile"
	"github.com/pprofio/pprofio/examples/ingest-server/ingestpb"
	"google.golang.org/protobuf/proto"
)

// spanLabel is the pprof label that names a span.
const spanLabel = "span"

// tagText writes a tag set as "k=v k=v", sorted by key.
func tagText(tags map[string]string) string {
	parts := make([]string, 0, len(tags))
	for k, v := range tags {
		parts = append(parts, k+"="+v)
	}
	sort.Strings(parts)
	return strings.Join(parts, " ")
}

// spanAggregates reads a custom profile's span series: the samples with a
// span_count, one per series, named by their span label and tagged by
// their other labels (or, without labels, by the frame span:<name>).
func spanAggregates(p *profile.Profile) []spanStatRow {
	idx := map[string]int{}
	for _, name := range []string{"span_count", "span_max", "span_p50", "span_p90", "span_p99"} {
		if idx[name] = sampleIndex(p, name); idx[name] < 0 {
			return nil
		}
	}
	var out []spanStatRow
	for _, smp := range p.Sample {
		if len(smp.Value) != len(p.SampleType) || smp.Value[idx["span_count"]] <= 0 {
			continue
		}
		row := spanStatRow{Count: smp.Value[idx["span_count"]], Max: smp.Value[idx["span_max"]],
			P50: smp.Value[idx["span_p50"]], P90: smp.Value[idx["span_p90"]], P99: smp.Value[idx["span_p99"]], Exact: true}
		tags := map[string]string{}
		for k, vs := range smp.Label {
			if k == spanLabel && len(vs) > 0 {
				row.Name = vs[0]
			} else if len(vs) > 0 {
				tags[k] = vs[0]
			}
		}
		if row.Name == "" {
			fs := frames(smp)
			if len(fs) == 0 {
				continue
			}
			row.Name = strings.TrimPrefix(fs[0], "span:")
		}
		row.Tags = tagText(tags)
		out = append(out, row)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name+"\x00"+out[i].Tags < out[j].Name+"\x00"+out[j].Tags })
	return out
}

// readSpans reads a spans file written by the receiver.
func readSpans(dir, rel string) (*ingestpb.UploadRequest, error) {
	if !filepath.IsLocal(rel) {
		return nil, fmt.Errorf("spans file %q is not inside the data folder", rel)
	}
	data, err := readLimited(filepath.Join(dir, rel))
	if err != nil {
		return nil, err
	}
	zr, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("%s: damaged: %v", rel, err)
	}
	raw, err := io.ReadAll(io.LimitReader(zr, maxFileBytes))
	if err != nil {
		return nil, fmt.Errorf("%s: damaged: %v", rel, err)
	}
	req := &ingestpb.UploadRequest{}
	if err := proto.Unmarshal(raw, req); err != nil {
		return nil, fmt.Errorf("%s: damaged: %v", rel, err)
	}
	return req, nil
}

// spanStatsOf computes the latency percentiles of each series in a spans
// file from its sampled spans, and the time they cover.
func spanStatsOf(dir, rel string) (stats []spanStatRow, first, last int64, err error) {
	req, err := readSpans(dir, rel)
	if err != nil {
		return nil, 0, 0, err
	}
	stats, first, last = sampledStats(req.GetSpans())
	return stats, first, last, nil
}

// sampledStats computes the percentiles of each series of spans.
func sampledStats(spans []*ingestpb.Span) (stats []spanStatRow, first, last int64) {
	type key struct{ name, tags string }
	byKey := make(map[key][]int64)
	for i, s := range spans {
		k := key{s.GetName(), tagText(s.GetTags())}
		byKey[k] = append(byKey[k], s.GetDurationNanos())
		if i == 0 || s.GetStartUnixNano() < first {
			first = s.GetStartUnixNano()
		}
		last = max(last, s.GetStartUnixNano()+s.GetDurationNanos())
	}
	for k, d := range byKey {
		sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
		stats = append(stats, spanStatRow{Name: k.name, Tags: k.tags, Count: int64(len(d)), P50: percentile(d, 50),
			P90: percentile(d, 90), P99: percentile(d, 99), Max: d[len(d)-1]})
	}
	sort.Slice(stats, func(i, j int) bool {
		return stats[i].Name+"\x00"+stats[i].Tags < stats[j].Name+"\x00"+stats[j].Tags
	})
	return stats, first, last
}

// percentile returns the p-th percentile (nearest rank) of sorted values.
func percentile(sorted []int64, p int) int64 {
	if len(sorted) == 0 {
		return 0
	}
	rank := (p*len(sorted) + 99) / 100
	return sorted[max(rank, 1)-1]
}

// timelineLine is any line of a timeline file: the cycle's counts (the
// first), a series' timings, or a sampled span.
type timelineLine struct {
	CycleStart   *int64            `json:"cycle_start_unix_nano"`
	CycleEnd     int64             `json:"cycle_end_unix_nano"`
	Series       *string           `json:"series"`
	Span         *string           `json:"span"`
	Tags         map[string]string `json:"tags"`
	Count        int64             `json:"count"`
	MaxNS        int64             `json:"max_ns"`
	P50NS        int64             `json:"p50_ns"`
	P90NS        int64             `json:"p90_ns"`
	P99NS        int64             `json:"p99_ns"`
	StartNS      int64             `json:"start_unix_nano"`
	DurationNS   int64             `json:"duration_ns"`
	SpanID       string            `json:"span_id"`
	ParentSpanID string            `json:"parent_span_id"`
}

// timeline is a timeline file read.
type timeline struct {
	StartNS, EndNS int64
	Stats          []spanStatRow
	Spans          []*ingestpb.Span
}

// readTimeline reads an OutputDir's timeline file.
func readTimeline(dir, rel string) (*timeline, error) {
	if !filepath.IsLocal(rel) {
		return nil, fmt.Errorf("timeline file %q is not inside the folder", rel)
	}
	data, err := readLimited(filepath.Join(dir, rel))
	if err != nil {
		return nil, err
	}
	tl := &timeline{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 64<<10), 16<<20)
	for n := 1; sc.Scan(); n++ {
		var l timelineLine
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			return nil, fmt.Errorf("%s: line %d is not JSON: %v", rel, n, err)
		}
		switch {
		case l.CycleStart != nil:
			tl.StartNS, tl.EndNS = *l.CycleStart, l.CycleEnd
		case l.Series != nil:
			tl.Stats = append(tl.Stats, spanStatRow{Name: *l.Series, Tags: tagText(l.Tags), Count: l.Count,
				P50: l.P50NS, P90: l.P90NS, P99: l.P99NS, Max: l.MaxNS, Exact: true})
		case l.Span != nil:
			id, _ := strconv.ParseUint(l.SpanID, 16, 64)
			parent, _ := strconv.ParseUint(l.ParentSpanID, 16, 64)
			tl.Spans = append(tl.Spans, &ingestpb.Span{Name: *l.Span, StartUnixNano: l.StartNS, DurationNanos: l.DurationNS,
				Tags: l.Tags, SpanId: id, ParentSpanId: parent})
		default:
			return nil, fmt.Errorf("%s: line %d is neither the cycle's counts, a series nor a span", rel, n)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %v", rel, err)
	}
	if tl.StartNS == 0 {
		return nil, fmt.Errorf("%s: no line with the cycle's start", rel)
	}
	return tl, nil
}

// scanTimelines indexes the new timeline files of one service folder.
func scanTimelines(b *batch, src Source, service string, known map[string]bool) error {
	return eachNewFile(b, src, filepath.Join(service, "timeline"), ".jsonl", known, func(name string) {
		tl, err := readTimeline(src.Dir, name)
		if err != nil {
			b.problems = append(b.problems, [4]string{src.Name, service, name, err.Error()})
			return
		}
		b.timelines = append(b.timelines, timelineRow{Source: src.Name, Service: service, File: name, StartNS: tl.StartNS, EndNS: tl.EndNS})
		for _, s := range tl.Stats {
			s.Source, s.Service, s.CycleKey, s.TimeNS = src.Name, service, name, tl.StartNS
			b.spanStats = append(b.spanStats, s)
		}
	})
}
