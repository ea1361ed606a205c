// aggregates.go: the series' timings in the custom profile, since the
// ingest contract has no field for them (see EncodeProfile).

package spans

import (
	"fmt"
	"strings"

	"github.com/pprofio/pprofio/internal/core"
)

// The custom profile's sample types: the start stacks' two, then the
// series' timings (see EncodeProfile).
var sampleTypes = [][2]string{
	{"spans", "count"}, {"wall", "nanoseconds"},
	{"span_count", "count"}, {"span_total", "nanoseconds"}, {"span_min", "nanoseconds"},
	{"span_max", "nanoseconds"}, {"span_p50", "nanoseconds"}, {"span_p90", "nanoseconds"},
	{"span_p99", "nanoseconds"},
}

// OverflowName is the name the overflow series (spans past the recorder's
// bound) goes by in the custom profile and the timeline.
const OverflowName = "(overflow)"

// SeriesName is a series' span name, OverflowName for the overflow series.
func SeriesName(sr core.SpanSeries) string {
	if sr.Overflow {
		return OverflowName
	}
	return sr.Name
}

// SeriesFunction is the function name of a series' timing sample:
// "span:<name>" and its tags in braces, "span:checkout{tier=gold}".
func SeriesFunction(sr core.SpanSeries) string {
	var b strings.Builder
	b.WriteString("span:")
	b.WriteString(SeriesName(sr))
	for i := 0; i+1 < len(sr.Tags); i += 2 {
		if i == 0 {
			b.WriteByte('{')
		} else {
			b.WriteByte(',')
		}
		b.WriteString(sr.Tags[i] + "=" + sr.Tags[i+1])
		if i+3 >= len(sr.Tags) {
			b.WriteByte('}')
		}
	}
	return b.String()
}

// seriesSample is the timing sample of one series: zero in the start
// stacks' types, the timings in the others, one synthetic frame.
func (e *profileEncoder) seriesSample(sr core.SpanSeries) []byte {
	name := SeriesFunction(sr)
	fn, ok := e.functions[name]
	if !ok {
		fn = uint64(len(e.functions) + 1)
		e.functions[name] = fn
		f := appendVarintField(nil, 1, fn)
		f = appendVarintField(f, 2, uint64(e.str(name)))
		f = appendVarintField(f, 3, uint64(e.str(name)))
		e.funcBytes = appendMessage(e.funcBytes, 5, f)
	}
	e.nLocs++
	loc := appendVarintField(nil, 1, e.nLocs)
	loc = appendMessage(loc, 4, appendVarintField(nil, 1, fn))
	e.locBytes = appendMessage(e.locBytes, 4, loc)
	b := appendPacked(nil, 1, []uint64{e.nLocs})
	b = appendPacked(b, 2, []uint64{0, 0, sr.Count, uint64(sr.Total), uint64(sr.Min), uint64(sr.Max),
		uint64(sr.P50), uint64(sr.P90), uint64(sr.P99)})
	return e.labels(b, sr)
}

// comments are the cycle's counts, as the profile's comments (string indexes).
func (e *profileEncoder) comments(c *core.SpanCycle) []uint64 {
	lines := []string{
		fmt.Sprintf("pprofio spans: %d recorded in %d series, %d in the timeline, %d not in the timeline",
			c.Recorded, len(c.Series), len(c.Samples), c.Unsampled),
		fmt.Sprintf("pprofio spans: %d overflowed (past the span bound), %d dropped, %d start stacks dropped",
			c.Overflowed, c.Dropped, c.StacksDropped),
		fmt.Sprintf("pprofio spans: span_p50/p90/p99 are within %.3g%% of the exact quantiles",
			100*core.SpanQuantileError),
	}
	ids := make([]uint64, len(lines))
	for i, l := range lines {
		ids[i] = uint64(e.str(l))
	}
	return ids
}
