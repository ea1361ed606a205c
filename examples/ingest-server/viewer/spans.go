package viewer

// The spans page: latency percentiles of each span name over time (from
// the index) and the waterfall of one cycle's sampled spans (from the
// cycle's spans file, UploadRequest.spans as the agent sent them).

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
		note := "No span in this range."
		if d.Kind == KindLocal {
			note += " An agent's OutputDir holds profiles only: spans arrive with uploaded batches."
		}
		d.Sections = append(d.Sections, section{ID: "spans", Title: "Span latency", Note: note})
		return nil
	}
	byName := map[string][]spanStat{}
	var names []string
	var lastKey string
	for _, st := range stats {
		if byName[st.Name] == nil {
			names = append(names, st.Name)
		}
		byName[st.Name] = append(byName[st.Name], st)
		lastKey = st.CycleKey
	}
	sort.Strings(names)
	for i, n := range names {
		if i == maxSpanNames {
			d.Sections = append(d.Sections, section{Note: fmt.Sprintf("%d more span names not charted.", len(names)-maxSpanNames)})
			break
		}
		var xs []int64
		ls := []series{{Name: "p50"}, {Name: "p90"}, {Name: "p99"}}
		count := int64(0)
		for _, st := range byName[n] {
			xs = append(xs, st.TimeNS)
			ls[0].Y = append(ls[0].Y, float64(st.P50))
			ls[1].Y = append(ls[1].Y, float64(st.P90))
			ls[2].Y = append(ls[2].Y, float64(st.P99))
			count += st.Count
		}
		d.Sections = append(d.Sections, section{ID: "latency-" + n, Title: fmt.Sprintf("%s: latency percentiles (%d spans)", n, count),
			Chart: lineChart(fmt.Sprintf("span-chart-%d", i), xs, ls, unitNanos, nil)})
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
			sec.Links = append(sec.Links, link{Text: "cycle " + seqs[k] + " " + formatTime(stats[i].TimeNS), Href: d.href("spans", url.Values{"cycle": {k}})})
		}
	}
	src, _ := v.sourceOf(d.Sel.Source)
	file := v.spansFileOf(d.Sel.Source, d.Sel.Service, key)
	if file == "" {
		sec.Note = "This cycle has no spans file."
		return sec
	}
	req, err := readSpans(src.Dir, file)
	if err != nil {
		sec.Note = "The spans of this cycle cannot be read: " + err.Error()
		return sec
	}
	sec.Title = fmt.Sprintf("Sampled spans of cycle %s (%d spans)", seqs[key], len(req.GetSpans()))
	sec.Chart = waterfall(req.GetSpans())
	return sec
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
			formatValue(float64(s.GetDurationNanos()), unitNanos), formatValue(float64(s.GetStartUnixNano()-t0), unitNanos), tagText(s.GetTags()),
			x+w+4, y+13, formatValue(float64(s.GetDurationNanos()), unitNanos))
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}

func tagText(tags map[string]string) string {
	var parts []string
	for k, v := range tags {
		parts = append(parts, k+"="+v)
	}
	sort.Strings(parts)
	if len(parts) == 0 {
		return ""
	}
	return template.HTMLEscapeString(" (" + strings.Join(parts, " ") + ")")
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
