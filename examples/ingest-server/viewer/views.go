package viewer

// The content of each service page: which numbers of the index become
// which chart, and where pprof's own views are embedded.

import (
	"fmt"
	"strconv"
	"strings"
)

// valueIndex returns the position of a sample type in a profile's
// "type/unit ..." list, or -1.
func valueIndex(sampleTypes, name string) int {
	for i, st := range strings.Fields(sampleTypes) {
		if strings.SplitN(st, "/", 2)[0] == name && i < 4 {
			return i
		}
	}
	return -1
}

// pprofLinks are the links to pprof's views of a type over the selection.
func pprofLinks(s *selection, typ string) []link {
	return []link{
		{"Flame graph", pprofLink(s, typ, "flamegraph")}, {"Graph", pprofLink(s, typ, "")},
		{"Top", pprofLink(s, typ, "top")}, {"Source", pprofLink(s, typ, "source")},
		{"Download merged profile", pprofLink(s, typ, "download")},
	}
}

func overviewPage(v *Viewer, d *pageData) error {
	t := &table{Head: []string{"profile type", "profiles in range", "unreadable", "first", "last", "page"}}
	pageOf := map[string]string{"cpu": "cpu", "heap": "memory", "goroutine": "goroutines", "mutex": "mutex", "block": "block", "custom": "spans"}
	counts, err := v.countTypes(d.Sel)
	if err != nil {
		return err
	}
	for _, typ := range append(profileTypes[:len(profileTypes):len(profileTypes)], "custom") { // custom: the spans
		c := counts[typ]
		row := []cell{{Text: typ}, {Text: strconv.FormatInt(c.Profiles, 10)}, {Text: strconv.FormatInt(c.Unreadable, 10)}, {}, {}, {Text: "open", Href: d.href(pageOf[typ], nil)}}
		if c.Profiles > 0 {
			row[3].Text, row[4].Text = formatTime(c.First), formatTime(c.Last)
		}
		t.Rows = append(t.Rows, row)
	}
	d.Sections = append(d.Sections, section{ID: "types", Title: "Profiles", Table: t})
	alerts := v.openAlerts(d.Sel.Source, d.Sel.Service)
	at := &table{Head: []string{"time", "instance", "message"}}
	for _, e := range alerts {
		at.Rows = append(at.Rows, []cell{{Text: formatTime(e.TimeNS)}, {Text: e.Instance}, {Text: e.Message, Class: "msg"}})
	}
	note := "No open alert."
	if len(alerts) > 0 {
		note = fmt.Sprintf("%d goroutine leak alert(s) open: the goroutine count has not come back under the count they reported.", len(alerts))
	}
	d.Sections = append(d.Sections, section{ID: "alerts", Title: "Open alerts", Note: note, Table: at})
	return overviewCharts(v, d)
}

// overviewCharts are the trend of each type's main value over the range.
func overviewCharts(v *Viewer, d *pageData) error {
	for _, c := range []struct{ typ, value, xcol, title, unit string }{
		{"cpu", "cpu", "start_ns", "CPU time per window", unitNanos},
		{"heap", "inuse_space", "end_ns", "In-use heap at each cycle's end", unitBytes},
		{"goroutine", "goroutine", "start_ns", "Goroutines", unitCount},
	} {
		xs, ys, err := v.valueSeries(d.Sel, c.typ, c.value, c.xcol)
		if err != nil {
			return err
		}
		if len(xs) > 0 {
			d.Sections = append(d.Sections, section{ID: "trend-" + c.typ, Title: c.title,
				Chart: lineChart("trend-"+c.typ+"-chart", xs, []series{{c.value, ys}}, c.unit, nil)})
		}
	}
	return nil
}

func cpuPage(v *Viewer, d *pageData) error {
	counts, err := v.countTypes(d.Sel)
	if err != nil {
		return err
	}
	n := counts["cpu"].Profiles
	d.ShowLabels = true
	d.Labels, _ = v.labelValues(d.Sel, "cpu")
	xs, ys, err := v.valueSeries(d.Sel, "cpu", "cpu", "start_ns")
	if err != nil {
		return err
	}
	d.Sections = append(d.Sections, section{ID: "cpu-time", Title: "CPU time per window",
		Chart: lineChart("cpu-chart", xs, []series{{"CPU time", ys}}, unitNanos, nil)})
	title := fmt.Sprintf("Flame graph: merge of %d windows", n)
	if d.Sel.Label[0] != "" {
		title += fmt.Sprintf(", samples labelled %s=%s", d.Sel.Label[0], d.Sel.Label[1])
	}
	if n > 0 {
		d.Sections = append(d.Sections, section{ID: "flame", Title: title, Frame: pprofLink(d.Sel, "cpu", "flamegraph"), Links: pprofLinks(d.Sel, "cpu")})
	}
	last, err := v.lastPoints(d.Sel, "cpu", 20)
	if err != nil {
		return err
	}
	wt := &table{Head: []string{"window start", "end", "CPU time", "flame graph of this window"}}
	for _, p := range last {
		one := *d.Sel
		one.From, one.To = p.StartNS, p.StartNS
		val := p.Status
		if j := valueIndex(p.SampleTypes, "cpu"); val == "" && j >= 0 {
			val = formatValue(float64(p.V[j]), unitNanos)
		}
		wt.Rows = append(wt.Rows, []cell{{Text: formatTime(p.StartNS)}, {Text: formatTime(p.EndNS)}, {Text: val},
			{Text: "open", Href: pprofLink(&one, "cpu", "flamegraph")}})
	}
	d.Sections = append(d.Sections, section{ID: "windows", Title: "Latest windows", Table: wt})
	return nil
}

func memoryPage(v *Viewer, d *pageData) error {
	xs, bytes, err := v.valueSeries(d.Sel, "heap", "alloc_space", "start_ns")
	if err != nil {
		return err
	}
	oxs, objs, err := v.valueSeries(d.Sel, "heap", "alloc_objects", "start_ns")
	if err != nil {
		return err
	}
	ends, inuse, err := v.valueSeries(d.Sel, "heap", "inuse_space", "end_ns")
	if err != nil {
		return err
	}
	d.Sections = append(d.Sections,
		section{ID: "alloc-bytes", Title: "Bytes allocated per cycle", Chart: lineChart("alloc-bytes-chart", xs, []series{{"alloc_space", bytes}}, unitBytes, nil)},
		section{ID: "alloc-objects", Title: "Objects allocated per cycle", Chart: lineChart("alloc-objects-chart", oxs, []series{{"alloc_objects", objs}}, unitCount, nil)},
		section{ID: "inuse", Title: "In-use heap at each cycle's end", Chart: lineChart("inuse-chart", ends, []series{{"inuse_space", inuse}}, unitBytes, nil)})
	top, err := v.topFunctions(d.Sel, "heap", 15)
	if err != nil {
		return err
	}
	t := &table{Head: []string{"function", "bytes allocated", "objects allocated"}}
	for _, f := range top {
		t.Rows = append(t.Rows, []cell{{Text: f.Name}, {Text: formatValue(float64(f.V0), unitBytes)}, {Text: strconv.FormatInt(f.V1, 10)}})
	}
	d.Sections = append(d.Sections, section{ID: "top-alloc", Title: "Top allocating functions", Chart: hbars("top-alloc-chart", top, unitBytes), Table: t})
	if len(xs) > 0 {
		d.Sections = append(d.Sections, section{ID: "flame", Title: "Allocation flame graph (alloc_space)", Frame: pprofLink(d.Sel, "heap", "flamegraph"), Links: pprofLinks(d.Sel, "heap")})
	}
	return nil
}

// layersByFunc charts a type's value per point stacked by its top functions.
func layersByFunc(v *Viewer, d *pageData, typ string) ([]funcValue, []int64, []series, error) {
	top, err := v.topFunctions(d.Sel, typ, 9)
	if err != nil {
		return nil, nil, nil, err
	}
	names := topNames(top)
	if len(names) > 8 {
		names = names[:8]
	}
	xs, layers, err := v.funcLayers(d.Sel, typ, names)
	return top, xs, layers, err
}

func goroutinesPage(v *Viewer, d *pageData) error {
	_, xs, layers, err := layersByFunc(v, d, "goroutine")
	if err != nil {
		return err
	}
	leaks, err := v.events(d.Sel, "goroutine_leak")
	if err != nil {
		return err
	}
	var marks []marker
	lt := &table{Head: []string{"time", "instance", "count", "growth", "message"}}
	for _, e := range leaks {
		marks = append(marks, marker{T: e.TimeNS, Label: "goroutine_leak: " + e.Message, Class: "leak"})
		lt.Rows = append(lt.Rows, []cell{{Text: formatTime(e.TimeNS)}, {Text: e.Instance}, {Text: e.Attrs["count"]}, {Text: e.Attrs["growth"]}, {Text: e.Message, Class: "msg"}})
	}
	title := fmt.Sprintf("Goroutines per cycle (%d cycles), by entry function", len(xs))
	if n, _ := v.countTypes(d.Sel); n["goroutine"].Profiles > int64(len(xs)) {
		title = fmt.Sprintf("Goroutines per cycle (%d cycles, averaged into %d points), by entry function", n["goroutine"].Profiles, len(xs))
	}
	d.Sections = append(d.Sections, section{ID: "goroutines", Title: title, Chart: stackedArea("goroutine-chart", xs, layers, unitCount, marks)})
	note := "No goroutine_leak event in this range."
	if len(leaks) > 0 {
		note = fmt.Sprintf("%d goroutine_leak event(s) in this range, marked ▲ on the chart.", len(leaks))
	}
	d.Sections = append(d.Sections, section{ID: "leaks", Title: "Leak alerts", Note: note, Table: lt})
	if len(xs) > 0 {
		d.Sections = append(d.Sections, section{ID: "stacks", Title: "Goroutine stacks (merged)", Links: pprofLinks(d.Sel, "goroutine")})
	}
	return nil
}

func mutexPage(v *Viewer, d *pageData) error {
	top, err := v.topFunctions(d.Sel, "mutex", 15)
	if err != nil {
		return err
	}
	d.Sections = append(d.Sections, section{ID: "contended", Title: "Most contended functions (wait time in range)",
		Chart: hbars("mutex-chart", top, unitNanos), Links: pprofLinks(d.Sel, "mutex")})
	return nil
}

func blockPage(v *Viewer, d *pageData) error {
	top, xs, layers, err := layersByFunc(v, d, "block")
	if err != nil {
		return err
	}
	d.Sections = append(d.Sections,
		section{ID: "share", Title: "Share of blocking by function (delay in range)", Chart: hbars("block-share-chart", top, unitNanos)},
		section{ID: "timeline", Title: "Blocking per cycle", Chart: stackedBars("block-timeline-chart", xs, layers, unitNanos), Links: pprofLinks(d.Sel, "block")})
	return nil
}

func eventsPage(v *Viewer, d *pageData) error {
	evs, err := v.events(d.Sel, "")
	if err != nil {
		return err
	}
	seqs := v.cycleSeqs(d.Sel)
	t := &table{Head: []string{"time", "kind", "cycle", "instance", "message", "attributes"}}
	for _, e := range evs {
		var attrs []string
		for k, val := range e.Attrs {
			attrs = append(attrs, k+"="+val)
		}
		sortStrings(attrs)
		t.Rows = append(t.Rows, []cell{{Text: formatTime(e.TimeNS)}, {Text: e.Kind, Class: "kind-" + e.Kind}, {Text: seqs[e.CycleKey]},
			{Text: e.Instance}, {Text: e.Message, Class: "msg"}, {Text: strings.Join(attrs, " ")}})
	}
	note := fmt.Sprintf("%d event(s) in this range.", len(evs))
	if d.Kind == KindLocal {
		note += " An agent's OutputDir has no events: they arrive with uploaded batches."
	}
	d.Sections = append(d.Sections, section{ID: "events", Title: "Events", Note: note, Table: t})
	return nil
}

// cycleSeqs names each cycle of the selection by "#sequence".
func (v *Viewer) cycleSeqs(s *selection) map[string]string {
	out := map[string]string{}
	rows, err := v.ix.db.Query(`SELECT key, seq FROM cycles WHERE source = ? AND service = ?`, s.Source, s.Service)
	if err != nil {
		return out
	}
	defer rows.Close()
	for rows.Next() {
		var k string
		var seq int64
		if rows.Scan(&k, &seq) == nil {
			out[k] = "#" + strconv.FormatInt(seq, 10)
		}
	}
	return out
}

func sortStrings(s []string) {
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && s[j] < s[j-1]; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
}
