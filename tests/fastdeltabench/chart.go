// chart.go: fastdelta.svg, the chart of a run (see report.go).
package main

import (
	"fmt"
	"html"
	"math"
	"strconv"
	"strings"
)

const (
	colorFastdelta = "#d9822b"
	colorPprofio   = "#1f6fb4"
)

// The chart's layout, in pixels.
const (
	labelW = 290
	panelW = 310
	gap    = 40
	rowH   = 54
	top    = 92
	right  = 30
)

// svg draws, for each input, fastdelta's and pprofio's rate (median, with
// the range over rounds) in two panels: by the wall clock and per
// CPU-second, with the goal marked.
func (r *results) svg() string {
	rows := r.rows()
	plotH := rowH * len(rows)
	width, height := labelW+2*panelW+gap+right, top+plotH+70
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	w(`<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">`+"\n", width, height, width, height)
	w(`<rect width="100%%" height="100%%" fill="white"/>` + "\n")
	m := r.Meta
	w(`<text x="10" y="20" font-size="15" font-weight="bold">Delta profiles: pprofio vs fastdelta (%s), MB of raw pprof per second, %d rounds</text>`+"\n",
		html.EscapeString(m.Fastdelta), m.Rounds)
	w(`<text x="10" y="38" fill="#555">%s; %d CPUs; %s; %s; load average %s → %s</text>`+"\n",
		html.EscapeString(m.CPU), m.NProc, html.EscapeString(m.GoVersion), html.EscapeString(m.Date),
		html.EscapeString(m.LoadBefore), html.EscapeString(m.LoadAfter))
	w(`<rect x="10" y="50" width="12" height="10" fill="%s"/><text x="27" y="59">fastdelta</text>`+"\n", colorFastdelta)
	w(`<rect x="100" y="50" width="12" height="10" fill="%s"/><text x="117" y="59">pprofio</text>`+"\n", colorPprofio)
	for i, rw := range rows {
		y := float64(top + rowH*i + rowH/2)
		w(`<text x="%d" y="%.1f" text-anchor="end">%s</text>`+"\n", labelW-10, y-4, html.EscapeString(rw.in.Name))
		w(`<text x="%d" y="%.1f" text-anchor="end" font-size="10" fill="#555">pprofio: %.1f× by the clock, %.1f× per CPU-second</text>`+"\n",
			labelW-10, y+10, rw.wallX.Med, rw.cpuX.Med)
	}
	panel(&b, 0, "wall clock: MB/s", rows, func(rw row) (stat, stat) { return rw.fdWall, rw.ppWall })
	panel(&b, 1, "CPU time: MB per CPU-second", rows, func(rw row) (stat, stat) { return rw.fdCPU, rw.ppCPU })
	w(`<text x="10" y="%d" fill="#555">Bars: medians; black lines: the range over rounds. Per CPU-second: pprofio's thread's CPU clock (its delta runs in C on it),</text>`+"\n", height-26)
	w(`<text x="10" y="%d" fill="#555">fastdelta's process's (its garbage collector included). The goal, %d MB/s, is for the 10 MB heap profile. See latest.md.</text>`+"\n", height-10, goalMBps)
	w("</svg>\n")
	return b.String()
}

// panel draws panel p: its frame, ticks, the goal and each row's two bars (fastdelta's and pprofio's of sides).
func panel(b *strings.Builder, p int, title string, rows []row, sides func(row) (stat, stat)) {
	w := func(format string, args ...any) { fmt.Fprintf(b, format, args...) }
	plotH := rowH * len(rows)
	hi := float64(goalMBps)
	for _, rw := range rows {
		fd, pp := sides(rw)
		hi = math.Max(hi, math.Max(fd.Hi, pp.Hi))
	}
	hi *= 1.12
	x0 := float64(labelW + p*(panelW+gap))
	xof := func(v float64) float64 { return x0 + v/hi*panelW }
	w(`<text x="%.1f" y="%d" text-anchor="middle" font-weight="bold">%s</text>`+"\n", x0+panelW/2, top-12, title)
	w(`<rect x="%.1f" y="%d" width="%d" height="%d" fill="none" stroke="#bbb"/>`+"\n", x0, top, panelW, plotH)
	step := niceStep(hi / 5)
	for t := 0.0; t <= hi; t += step {
		w(`<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#eee"/>`+"\n", xof(t), top, xof(t), top+plotH)
		w(`<text x="%.1f" y="%d" text-anchor="middle" fill="#555">%s</text>`+"\n", xof(t), top+plotH+16,
			strconv.FormatFloat(t, 'f', -1, 64))
	}
	w(`<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#c00" stroke-dasharray="4 3"/>`+"\n", xof(goalMBps), top, xof(goalMBps), top+plotH)
	w(`<text x="%.1f" y="%d" text-anchor="middle" fill="#c00" font-size="10">goal %d</text>`+"\n", xof(goalMBps), top-1, goalMBps)
	for i, rw := range rows {
		yc := float64(top + rowH*i + rowH/2)
		fd, pp := sides(rw)
		bar(b, xof, yc-11, fd, colorFastdelta)
		bar(b, xof, yc+3, pp, colorPprofio)
	}
}

// bar draws one side's median as a bar of height 9 from y, its range as a line, and its value.
func bar(b *strings.Builder, xof func(float64) float64, y float64, s stat, color string) {
	if math.IsNaN(s.Med) {
		return
	}
	x0 := xof(0)
	fmt.Fprintf(b, `<rect x="%.1f" y="%.1f" width="%.1f" height="9" fill="%s"/>`+"\n", x0, y, xof(s.Med)-x0, color)
	fmt.Fprintf(b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="black"/>`+"\n", xof(s.Lo), y+4.5, xof(s.Hi), y+4.5)
	for _, v := range []float64{s.Lo, s.Hi} {
		fmt.Fprintf(b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="black"/>`+"\n", xof(v), y+1, xof(v), y+8)
	}
	fmt.Fprintf(b, `<text x="%.1f" y="%.1f" font-size="10" fill="#333">%.0f</text>`+"\n", xof(s.Hi)+4, y+8, s.Med)
}

// niceStep rounds a tick step to 1, 2 or 5 times a power of ten.
func niceStep(raw float64) float64 {
	if raw <= 0 || math.IsNaN(raw) {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(raw)))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*p >= raw {
			return m * p
		}
	}
	return 10 * p
}
