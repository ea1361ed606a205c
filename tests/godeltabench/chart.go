// chart.go: godeltaprof.svg, the chart of a run (see report.go): per delta
// profile, CPU and Go allocations of each path, on log scales so that a few
// KB and thousands of KB can be read on one axis.
package main

import (
	"fmt"
	"html"
	"math"
	"strings"
)

// Path colours, in the order of results.Paths; more paths reuse the last.
var pathColors = []string{"#d9822b", "#9bb9d8", "#1f6fb4"}

// The chart's layout, in pixels.
const (
	labelW  = 250
	panelW  = 300
	gap     = 60
	right   = 90
	barH    = 10
	barStep = 16
	groupH  = 3*barStep + 26
	top     = 128
)

func pathColor(p int) string { return pathColors[min(p, len(pathColors)-1)] }

// shortName is a path's name without "pprofio" and the delta's side:
// "pprofio (runtime records + C delta)" is "runtime records".
func shortName(name string) string {
	if _, in, ok := strings.Cut(name, "("); ok {
		in, _, _ = strings.Cut(in, " +")
		return strings.TrimSuffix(in, ")")
	}
	return name
}

// A panel is one quantity: its title, its unit, its figure of a path, and the goal's fraction of godeltaprof's median.
type panelSpec struct {
	title, unit string
	of          func(figures) stat
	goal        float64
	goalText    string
	floor       float64 // the axis starts no lower
}

func (r *results) svg() string {
	nk := len(kindNames)
	groupStep := groupH
	if n := len(r.Paths); n > 3 {
		groupStep = n*barStep + 26
	}
	plotH := groupStep * nk
	width, height := labelW+2*panelW+gap+right, top+plotH+102
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	w(`<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">`+"\n", width, height, width, height)
	w(`<rect width="100%%" height="100%%" fill="white"/>` + "\n")
	m := r.Meta
	w(`<text x="10" y="20" font-size="15" font-weight="bold">One delta profile, ready to send: pprofio beside %s (lower is better)</text>`+"\n",
		html.EscapeString(strings.TrimPrefix(m.Godeltaprof, "github.com/grafana/pyroscope-go/")))
	w(`<text x="10" y="38" fill="#555">%d CPUs, %s; %s; %s %s</text>`+"\n", m.NProc, html.EscapeString(m.CPU),
		html.EscapeString(m.Kernel), html.EscapeString(m.GoVersion), html.EscapeString(m.Platform))
	w(`<text x="10" y="54" fill="#555">%s; %d cycles after %d warm-up; load average %s → %s (1, 5, 15 min)</text>`+"\n",
		html.EscapeString(m.Date), m.Cycles, m.Warmup, html.EscapeString(m.LoadBefore), html.EscapeString(m.LoadAfter))
	x := 10.0
	for p, name := range r.Paths {
		w(`<rect x="%.0f" y="66" width="12" height="10" fill="%s"/><text x="%.0f" y="75">%s</text>`+"\n", x, pathColor(p), x+17, html.EscapeString(name))
		x += 17 + 6.6*float64(len(name)) + 24
	}
	for k, kind := range kindNames {
		y := float64(top + groupStep*k)
		w(`<text x="%d" y="%.0f" text-anchor="end" font-weight="bold">%s</text>`+"\n", labelW-12, y+18, kind)
		w(`<text x="%d" y="%.0f" text-anchor="end" font-size="10" fill="#555">%s records; over godeltaprof:</text>`+"\n",
			labelW-12, y+32, num(float64(r.Counts[k]), 0))
		for p := 1; p < len(r.Paths); p++ {
			f := r.figures(p, k)
			w(`<text x="%d" y="%.0f" text-anchor="end" font-size="10" fill="#555">%s: %s× CPU, %s× alloc</text>`+"\n",
				labelW-12, y+32+13*float64(p), html.EscapeString(shortName(r.Paths[p])), ratioText(f.cpuX.Med), ratioText(f.allocX.Med))
		}
	}
	specs := []panelSpec{
		{"CPU ms per delta profile (thread: Go + C)", "ms", func(f figures) stat { return f.cpu }, goalCPU, "goal ≤ ½", 0},
		{"Go KB allocated per delta profile", "KB", func(f figures) stat { return f.allocKB }, goalAlloc, "goal ≤ 1/10", 0.01},
	}
	for i, s := range specs {
		r.panel(&b, i, s, groupStep)
	}
	yb := top + plotH + 52
	w(`<text x="10" y="%d" fill="#555">Bars: medians over cycles (log scales); black lines: the range. Red dashes: the goals, ½ of godeltaprof's median CPU and 1/10 of its</text>`+"\n", yb)
	w(`<text x="10" y="%d" fill="#555">Go allocations. Mutex and block include the snapshot at the window's start. Ratios on the left: medians of the cycles' ratios to</text>`+"\n", yb+16)
	w(`<text x="10" y="%d" fill="#555">godeltaprof's. Values below the axis are drawn at its start. Table: latest.md.</text>`+"\n", yb+32)
	w("</svg>\n")
	return b.String()
}

// panel draws panel i: its frame, log ticks, and for each kind the paths' bars and the goal.
func (r *results) panel(b *strings.Builder, i int, s panelSpec, groupStep int) {
	w := func(format string, args ...any) { fmt.Fprintf(b, format, args...) }
	plotH := groupStep * len(kindNames)
	lo, hi := math.Inf(1), 0.0
	for k := range kindNames {
		for p := range r.Paths {
			st := s.of(r.figures(p, k))
			for _, v := range []float64{st.Lo, st.Med, st.Hi} {
				if v > 0 {
					lo, hi = math.Min(lo, v), math.Max(hi, v)
				}
			}
		}
	}
	if hi == 0 {
		lo, hi = 1, 10
	}
	lo = math.Max(math.Pow(10, math.Floor(math.Log10(lo))), s.floor)
	hi = math.Pow(10, math.Ceil(math.Log10(hi)))
	if hi <= lo {
		hi = lo * 10
	}
	x0 := float64(labelW + i*(panelW+gap))
	xof := func(v float64) float64 {
		if v <= lo || math.IsNaN(v) {
			return x0
		}
		return x0 + math.Log10(v/lo)/math.Log10(hi/lo)*panelW
	}
	w(`<text x="%.1f" y="%d" text-anchor="middle" font-weight="bold">%s</text>`+"\n", x0+panelW/2, top-14, html.EscapeString(s.title))
	w(`<rect x="%.1f" y="%d" width="%d" height="%d" fill="none" stroke="#bbb"/>`+"\n", x0, top, panelW, plotH)
	for t := lo; t <= hi*1.0001; t *= 10 {
		w(`<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#ddd"/>`+"\n", xof(t), top, xof(t), top+plotH)
		w(`<text x="%.1f" y="%d" text-anchor="middle" fill="#555">%s</text>`+"\n", xof(t), top+plotH+16, tick(t))
	}
	w(`<text x="%.1f" y="%d" text-anchor="middle" fill="#555" font-size="10">%s (log scale)</text>`+"\n", x0+panelW/2, top+plotH+30, s.unit)
	for k := range kindNames {
		y := float64(top + groupStep*k)
		if k > 0 {
			w(`<line x1="%.1f" y1="%.0f" x2="%.1f" y2="%.0f" stroke="#bbb"/>`+"\n", x0, y, x0+panelW, y)
		}
		g := s.of(r.figures(0, k)).Med * s.goal
		if g > 0 && !math.IsNaN(g) {
			gx := xof(g)
			w(`<line x1="%.1f" y1="%.0f" x2="%.1f" y2="%.0f" stroke="#c00" stroke-width="1.5" stroke-dasharray="4 3"/>`+"\n", gx, y+13, gx, y+float64(groupStep)-4)
			w(`<text x="%.1f" y="%.0f" text-anchor="middle" fill="#c00" font-size="10">%s</text>`+"\n", gx, y+11, s.goalText)
		}
		for p := range r.Paths {
			bar(b, xof, y+16+float64(barStep*p), s.of(r.figures(p, k)), pathColor(p), s.unit)
		}
	}
}

// tick writes a power of ten briefly: 0.01, 1, 1k, 100k.
func tick(t float64) string {
	switch {
	case t >= 1e6:
		return num(t/1e6, 0) + "M"
	case t >= 1e3:
		return num(t/1e3, 0) + "k"
	}
	return num(t, max(0, -int(math.Floor(math.Log10(t)+1e-9))))
}

// bar draws one path's median as a bar from the axis's start, its range as a line, and its value.
func bar(b *strings.Builder, xof func(float64) float64, y float64, s stat, color, unit string) {
	if math.IsNaN(s.Med) {
		return
	}
	x0 := xof(0)
	fmt.Fprintf(b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%d" fill="%s"/>`+"\n", x0, y, xof(s.Med)-x0, barH, color)
	c := y + barH/2
	fmt.Fprintf(b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="black"/>`+"\n", xof(s.Lo), c, xof(s.Hi), c)
	for _, v := range []float64{s.Lo, s.Hi} {
		fmt.Fprintf(b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="black"/>`+"\n", xof(v), y+1, xof(v), y+barH-1)
	}
	fmt.Fprintf(b, `<text x="%.1f" y="%.1f" font-size="10" fill="#333" stroke="white" stroke-width="3" paint-order="stroke">%s %s</text>`+"\n", math.Max(xof(s.Hi), xof(s.Med))+4, y+barH-1,
		num(s.Med, precFor(s.Med)), unit)
}
