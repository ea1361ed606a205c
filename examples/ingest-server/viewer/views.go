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

// valueSeries takes one sample type of each readable point.
func valueSeries(pts []point, name string) ([]int64, []float64) {
	var xs []int64
	var ys []float64
	for _, p := range pts {
		if p.Status != "" {
			continue
		}
		if i := valueIndex(p.SampleTypes, name); i >= 0 {
			xs = append(xs, p.StartNS)
			ys = append(ys, float64(p.V[i]))
		}
	}
	return xs, ys
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
	pageOf := map[string]string{"cpu": "cpu", "heap": "memory", "goroutine": "goroutines", "mutex": "mutex", "block": "block"}
	for _, typ := range profileTypes {
		pts, err := v.points(d.Sel, typ)
		if err != nil {
			return err
		}
		bad := 0
		for _, p := range pts {
			if p.Status != "" {
				bad++
			}
		}
		row := []cell{{Text: typ}, {Text: strconv.Itoa(len(pts))}, {Text: strconv.Itoa(bad)}, {}, {}, {Text: "open", Href: d.href(pageOf[typ], nil)}}
		if len(pts) > 0 {
			row[3].Text, row[4].Text = formatTime(pts[0].StartNS), formatTime(pts[len(pts)-1].StartNS)
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
	return nil
}

func cpuPage(v *Viewer, d *pageData) error {
	pts, err := v.points(d.Sel, "cpu")
	if err != nil {
		return err
	}
	d.ShowLabels = true
	d.Labels, _ = v.labelValues(d.Sel, "cpu")
	xs, ys := valueSeries(pts, "cpu")
	d.Sections = append(d.Sections, section{ID: "cpu-time", Title: "CPU time per window",
		Chart: lineChart("cpu-chart", xs, []series{{"CPU time", ys}}, unitNanos, nil)})
	title := fmt.Sprintf("Flame graph: merge of %d windows", len(pts))
	if d.Sel.Label[0] != "" {
		title += fmt.Sprintf(", samples labelled %s=%s", d.Sel.Label[0], d.Sel.Label[1])
	}
	if len(pts) > 0 {
		d.Sections = append(d.Sections, section{ID: "flame", Title: title, Frame: pprofLink(d.Sel, "cpu", "flamegraph"), Links: pprofLinks(d.Sel, "cpu")})
	}
	wt := &table{Head: []string{"window start", "end", "CPU time", "flame graph of this window"}}
	for i := len(pts) - 1; i >= 0 && i >= len(pts)-20; i-- {
		p := pts[i]
		one := *d.Sel
		one.From, one.To = p.StartNS, p.StartNS
		val := p.Status
		if val == "" {
			if j := valueIndex(p.SampleTypes, "cpu"); j >= 0 {
				val = formatValue(float64(p.V[j]), unitNanos)
			}
		}
		wt.Rows = append(wt.Rows, []cell{{Text: formatTime(p.StartNS)}, {Text: formatTime(p.EndNS)}, {Text: val},
			{Text: "open", Href: pprofLink(&one, "cpu", "flamegraph")}})
	}
	d.Sections = append(d.Sections, section{ID: "windows", Title: "Latest windows", Table: wt})
	return nil
}

func memoryPage(v *Viewer, d *pageData) error {
	pts, err := v.points(d.Sel, "heap")
	if err != nil {
		return err
	}
	xs, bytes := valueSeries(pts, "alloc_space")
	_, objs := valueSeries(pts, "alloc_objects")
	ixs, inuse := valueSeries(pts, "inuse_space")
	ends := make([]int64, 0, len(ixs))
	for _, p := range pts {
		if p.Status == "" && valueIndex(p.SampleTypes, "inuse_space") >= 0 {
			ends = append(ends, p.EndNS)
		}
	}
	d.Sections = append(d.Sections,
		section{ID: "alloc-bytes", Title: "Bytes allocated per cycle", Chart: lineChart("alloc-bytes-chart", xs, []series{{"alloc_space", bytes}}, unitBytes, nil)},
		section{ID: "alloc-objects", Title: "Objects allocated per cycle", Chart: lineChart("alloc-objects-chart", xs, []series{{"alloc_objects", objs}}, unitCount, nil)},
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
	if len(pts) > 0 {
		d.Sections = append(d.Sections, section{ID: "flame", Title: "Allocation flame graph (alloc_space)", Frame: pprofLink(d.Sel, "heap", "flamegraph"), Links: pprofLinks(d.Sel, "heap")})
	}
	return nil
}

func goroutinesPage(v *Viewer, d *pageData) error {
	pts, err := v.points(d.Sel, "goroutine")
	if err != nil {
		return err
	}
	top, err := v.topFunctions(d.Sel, "goroutine", 9)
	if err != nil {
		return err
	}
	names := topNames(top)
	if len(names) > 8 {
		names = names[:8]
	}
	per, err := v.funcSeries(d.Sel, "goroutine", names)
	if err != nil {
		return err
	}
	layers := make([]series, len(names)+1)
	for i, n := range names {
		layers[i].Name = n
	}
	layers[len(names)].Name = otherFunc
	var xs []int64
	for _, p := range pts {
		if p.Status != "" {
			continue
		}
		xs = append(xs, p.StartNS)
		for i := range layers {
			layers[i].Y = append(layers[i].Y, float64(per[p.ID][layers[i].Name]))
		}
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
	d.Sections = append(d.Sections, section{ID: "goroutines", Title: fmt.Sprintf("Goroutines per cycle (%d cycles), by entry function", len(xs)),
		Chart: stackedArea("goroutine-chart", xs, layers, unitCount, marks)})
	note := "No goroutine_leak event in this range."
	if len(leaks) > 0 {
		note = fmt.Sprintf("%d goroutine_leak event(s) in this range, marked ▲ on the chart.", len(leaks))
	}
	d.Sections = append(d.Sections, section{ID: "leaks", Title: "Leak alerts", Note: note, Table: lt})
	if len(pts) > 0 {
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
	top, err := v.topFunctions(d.Sel, "block", 9)
	if err != nil {
		return err
	}
	d.Sections = append(d.Sections, section{ID: "share", Title: "Share of blocking by function (delay in range)", Chart: hbars("block-share-chart", top, unitNanos)})
	names := topNames(top)
	if len(names) > 8 {
		names = names[:8]
	}
	pts, err := v.points(d.Sel, "block")
	if err != nil {
		return err
	}
	per, err := v.funcSeries(d.Sel, "block", names)
	if err != nil {
		return err
	}
	layers := make([]series, len(names)+1)
	for i, n := range names {
		layers[i].Name = n
	}
	layers[len(names)].Name = otherFunc
	var xs []int64
	for _, p := range pts {
		if p.Status == "" {
			xs = append(xs, p.StartNS)
			for i := range layers {
				layers[i].Y = append(layers[i].Y, float64(per[p.ID][layers[i].Name]))
			}
		}
	}
	d.Sections = append(d.Sections, section{ID: "timeline", Title: "Blocking per cycle", Chart: stackedBars("block-timeline-chart", xs, layers, unitNanos), Links: pprofLinks(d.Sel, "block")})
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
		note += " An agent's OutputDir holds profiles only: events arrive with uploaded batches."
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
