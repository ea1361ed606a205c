package viewer

// The spans page: latency percentiles of each span series (name and tag
// set) over time (from the index) and the waterfall of one cycle's sampled
// spans (from the cycle's spans file, UploadRequest.spans as the agent
// sent them, or from an OutputDir's timeline file).

import (
	"fmt"
	"html/template"
	"net/url"
	"sort"
	"strings"

	"github.com/pprofio/pprofio/examples/ingest-server/ingestpb"
)

// maxSpanNames bounds the percentile charts; maxWaterfall the spans drawn.
const (
	maxSpanNames = 8
	maxWaterfall = 400
)

func spansPage(v *Viewer, d *pageData) error {
	stats, err := v.spanStats(d.Sel)
	if err != nil {
		return err
	}
	if len(stats) == 0 {
		d.Sections = append(d.Sections, section{ID: "spans", Title: "Span latency",
			Note: "No span in this range: the program made none (pprofio.StartSpan, pprofio.Do)."})
		return nil
	}
	byName := map[string][]spanStat{}
	var names []string
	var lastKey string
	sampled := 0
	for _, st := range stats {
		n := seriesName(st.Name, st.Tags)
		if byName[n] == nil {
			names = append(names, n)
		}
		byName[n] = append(byName[n], st)
		lastKey = st.CycleKey
		if !st.Exact {
			sampled++
		}
	}
	sort.Strings(names)
	for i, n := range names {
		if i == maxSpanNames {
			d.Sections = append(d.Sections, section{Note: fmt.Sprintf("%d more span series not charted.", len(names)-maxSpanNames)})
			break
		}
		d.Sections = append(d.Sections, percentileSection(i, n, byName[n]))
	}
	if sampled > 0 {
		d.Sections = append(d.Sections, section{Note: fmt.Sprintf("%d of %d points are the percentiles of the cycle's sampled spans "+
			"(its batch had no span timings); the others are the agent's, over every span.", sampled, len(stats))})
	}
	key := d.r.URL.Query().Get("cycle")
	if key == "" {
		key = lastKey
	}
	d.Sections = append(d.Sections, v.waterfallSection(d, key, stats))
	return nil
}

// waterfallSection draws the spans of one cycle, with links to the others.
func (v *Viewer) waterfallSection(d *pageData, key string, stats []spanStat) section {
	sec := section{ID: "waterfall", Title: "Sampled spans of one cycle"}
	seen := map[string]bool{}
	seqs := v.cycleSeqs(d.Sel)
	for i := len(stats) - 1; i >= 0 && len(sec.Links) < 12; i-- {
		k := stats[i].CycleKey
		if !seen[k] {
			seen[k] = true
			text := "cycle " + formatTime(stats[i].TimeNS)
			if seqs[k] != "" {
				text = "cycle " + seqs[k] + " " + formatTime(stats[i].TimeNS)
			}
			sec.Links = append(sec.Links, link{Text: text, Href: d.href("spans", url.Values{"cycle": {k}})})
		}
	}
	src, _ := v.sourceOf(d.Sel.Source)
	file := v.spansFileOf(d.Sel.Source, d.Sel.Service, key)
	if file == "" {
		sec.Note = "This cycle has no spans file."
		return sec
	}
	spans, err := readCycleSpans(src, file)
	if err != nil {
		sec.Note = "The spans of this cycle cannot be read: " + err.Error()
		return sec
	}
	sec.Title = fmt.Sprintf("Sampled spans of %s (%d spans)", cycleName(seqs, key, stats), len(spans))
	sec.Chart = waterfall(spans)
	return sec
}

// readCycleSpans reads a cycle's sampled spans from its file.
func readCycleSpans(src Source, file string) ([]*ingestpb.Span, error) {
	if src.Kind == KindLocal {
		tl, err := readTimeline(src.Dir, file)
		if err != nil {
			return nil, err
		}
		return tl.Spans, nil
	}
	req, err := readSpans(src.Dir, file)
	return req.GetSpans(), err
}

// cycleName names a cycle by its sequence number, or (an OutputDir's,
// which have none) by its start.
func cycleName(seqs map[string]string, key string, stats []spanStat) string {
	if seq := seqs[key]; seq != "" {
		return "cycle " + seq
	}
	for _, st := range stats {
		if st.CycleKey == key {
			return "the cycle of " + formatTime(st.TimeNS)
		}
	}
	return "a cycle"
}

// waterfall draws spans as bars on their cycle's time line, children
// below their parents.
func waterfall(spans []*ingestpb.Span) template.HTML {
	if len(spans) == 0 {
		return emptyChart("no span in this cycle")
	}
	ordered := treeOrder(spans)
	if len(ordered) > maxWaterfall {
		ordered = ordered[:maxWaterfall]
	}
	t0, t1 := ordered[0].s.GetStartUnixNano(), int64(0)
	for _, o := range ordered {
		t0 = min(t0, o.s.GetStartUnixNano())
		t1 = max(t1, o.s.GetStartUnixNano()+o.s.GetDurationNanos())
	}
	rowH, labelW := 18.0, 300.0
	barW := chartW - labelW - 120
	h := rowH*float64(len(ordered)) + 8
	var b strings.Builder
	fmt.Fprintf(&b, `<svg id="waterfall" class="chart" viewBox="0 0 %.0f %.0f" width="%.0f" height="%.0f" xmlns="http://www.w3.org/2000/svg">`, chartW, h, chartW, h)
	span := float64(max(t1-t0, 1))
	for i, o := range ordered {
		s := o.s
		y := 4 + rowH*float64(i)
		x := labelW + barW*float64(s.GetStartUnixNano()-t0)/span
		w := max(barW*float64(s.GetDurationNanos())/span, barMinPix)
		name := template.HTMLEscapeString(s.GetName())
		fmt.Fprintf(&b, `<g class="span" data-name="%s"><text x="%.0f" y="%.1f" class="wlab">%s%s</text><rect fill="%s" x="%.1f" y="%.1f" width="%.1f" height="%.0f"><title>%s: %s at +%s%s</title></rect><text x="%.1f" y="%.1f" class="vlab">%s</text></g>`,
			name, 8+12*float64(o.depth), y+13, "", name, color(o.depth), x, y+2, w, rowH-5, name,
			formatValue(float64(s.GetDurationNanos()), unitNanos), formatValue(float64(s.GetStartUnixNano()-t0), unitNanos), spanTags(s.GetTags()),
			x+w+4, y+13, formatValue(float64(s.GetDurationNanos()), unitNanos))
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}

// percentileSection charts one series' p50, p90 and p99 per cycle.
func percentileSection(i int, name string, stats []spanStat) section {
	var xs []int64
	ls := []series{{Name: "p50"}, {Name: "p90"}, {Name: "p99"}}
	count := int64(0)
	for _, st := range stats {
		xs = append(xs, st.TimeNS)
		ls[0].Y = append(ls[0].Y, float64(st.P50))
		ls[1].Y = append(ls[1].Y, float64(st.P90))
		ls[2].Y = append(ls[2].Y, float64(st.P99))
		count += st.Count
	}
	return section{ID: "latency-" + name, Title: fmt.Sprintf("%s: latency percentiles (%d spans)", name, count),
		Chart: lineChart(fmt.Sprintf("span-chart-%d", i), xs, ls, unitNanos, nil)}
}

// seriesName names a span series: its name, then its tags in braces.
func seriesName(name, tags string) string {
	if tags == "" {
		return name
	}
	return name + " {" + tags + "}"
}

// spanTags writes a span's tags for its tooltip.
func spanTags(tags map[string]string) string {
	if len(tags) == 0 {
		return ""
	}
	return template.HTMLEscapeString(" (" + tagText(tags) + ")")
}

type orderedSpan struct {
	s     *ingestpb.Span
	depth int
}

// treeOrder lists spans parent first, children by start time; spans whose
// parent is not in the batch are roots.
func treeOrder(spans []*ingestpb.Span) []orderedSpan {
	ids := map[uint64]bool{}
	for _, s := range spans {
		ids[s.GetSpanId()] = true
	}
	children := map[uint64][]*ingestpb.Span{}
	var roots []*ingestpb.Span
	for _, s := range spans {
		if p := s.GetParentSpanId(); p != 0 && ids[p] && p != s.GetSpanId() {
			children[p] = append(children[p], s)
		} else {
			roots = append(roots, s)
		}
	}
	byStart := func(l []*ingestpb.Span) {
		sort.SliceStable(l, func(i, j int) bool { return l[i].GetStartUnixNano() < l[j].GetStartUnixNano() })
	}
	var out []orderedSpan
	visited := map[*ingestpb.Span]bool{}
	var walk func(s *ingestpb.Span, depth int)
	walk = func(s *ingestpb.Span, depth int) {
		if visited[s] || depth > 32 {
			return
		}
		visited[s] = true
		out = append(out, orderedSpan{s, depth})
		kids := children[s.GetSpanId()]
		byStart(kids)
		for _, k := range kids {
			walk(k, depth+1)
		}
	}
	byStart(roots)
	for _, r := range roots {
		walk(r, 0)
	}
	return out
}
