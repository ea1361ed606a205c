package viewer

// Server-drawn SVG charts: lines, stacked areas, bars and a waterfall.
// They need no script and no network; every data point is an element with
// a title (its tooltip) so that a page can be read, tested and printed.
// Flame graphs are not drawn here: they are pprof's own.

import (
	"fmt"
	"html/template"
	"math"
	"strings"
	"time"
)

// maxPoints bounds the points a chart draws; past it, neighbouring
// points are averaged into buckets of equal time.
const maxPoints = 1500

// maxMarkers bounds the points drawn as markers with a tooltip; past it a
// chart is its lines and areas only.
const maxMarkers = 500

const (
	chartW, chartH          = 960.0, 220.0
	padL, padR, padT, padB  = 74.0, 16.0, 10.0, 26.0
	plotW                   = chartW - padL - padR
	plotH                   = chartH - padT - padB
	unitNanos, unitBytes    = "ns", "bytes"
	unitCount               = ""
	markerRadius, barMinPix = 2.2, 1.0
)

var palette = []string{"#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac", "#86bcb6", "#d37295", "#a0cbe8"}

func color(i int) string { return palette[i%len(palette)] }

// series is one named line or layer: a value per x.
type series struct {
	Name string
	Y    []float64
}

// frame maps times and values onto the plot.
type frame struct {
	x0, x1 int64
	ymax   float64
	unit   string
}

func (f frame) x(t int64) float64 {
	if f.x1 <= f.x0 {
		return padL + plotW/2
	}
	return padL + plotW*float64(t-f.x0)/float64(f.x1-f.x0)
}

func (f frame) y(v float64) float64 {
	if f.ymax <= 0 {
		return padT + plotH
	}
	return padT + plotH - plotH*v/f.ymax
}

// axes draws the frame's value and time axes.
func (f frame) axes(b *strings.Builder) {
	fmt.Fprintf(b, `<rect x="%.0f" y="%.0f" width="%.0f" height="%.0f" class="plot"/>`, padL, padT, plotW, plotH)
	for i := 0; i <= 4; i++ {
		v := f.ymax * float64(i) / 4
		y := f.y(v)
		fmt.Fprintf(b, `<line x1="%.0f" x2="%.0f" y1="%.1f" y2="%.1f" class="grid"/><text x="%.0f" y="%.1f" class="ylab">%s</text>`,
			padL, padL+plotW, y, y, padL-6, y+4, template.HTMLEscapeString(formatValue(v, f.unit)))
	}
	for i := 0; i <= 5; i++ {
		t := f.x0 + (f.x1-f.x0)*int64(i)/5
		fmt.Fprintf(b, `<text x="%.1f" y="%.0f" class="xlab" text-anchor="%s">%s</text>`, f.x(t), chartH-8, anchor(i), formatTick(t, f.x1-f.x0))
	}
}

// bucket averages (xs, ys) into at most maxPoints points of equal time.
func bucket(xs []int64, ys []series) ([]int64, []series) {
	if len(xs) <= maxPoints {
		return xs, ys
	}
	x0, x1 := xs[0], xs[len(xs)-1]
	width := (x1 - x0) / maxPoints
	var bx []int64
	by := make([]series, len(ys))
	for i := range ys {
		by[i].Name = ys[i].Name
	}
	for i := 0; i < len(xs); {
		b := min(int64(maxPoints-1), (xs[i]-x0)/max(width, 1))
		j := i
		sum := make([]float64, len(ys))
		for ; j < len(xs) && min(int64(maxPoints-1), (xs[j]-x0)/max(width, 1)) == b; j++ {
			for k := range ys {
				sum[k] += ys[k].Y[j]
			}
		}
		bx = append(bx, xs[(i+j)/2])
		for k := range ys {
			by[k].Y = append(by[k].Y, sum[k]/float64(j-i))
		}
		i = j
	}
	return bx, by
}

// marker is a vertical line at a time, with a label (an alert, an event).
type marker struct {
	T     int64
	Label string
	Class string
}

// stackedArea draws layers stacked per x (goroutines by function), with
// a point per x carrying the total, and markers.
func stackedArea(id string, xs []int64, layers []series, unit string, marks []marker) template.HTML {
	if len(xs) == 0 {
		return emptyChart("no data in this range")
	}
	xs, layers = bucket(xs, layers)
	totals := make([]float64, len(xs))
	for _, l := range layers {
		for i, y := range l.Y {
			totals[i] += y
		}
	}
	f := frame{x0: xs[0], x1: xs[len(xs)-1], ymax: niceMax(maxOf(totals)), unit: unit}
	var b strings.Builder
	openSVG(&b, id)
	f.axes(&b)
	base := make([]float64, len(xs))
	for li, l := range layers {
		var top, bottom []string
		for i := range xs {
			top = append(top, fmt.Sprintf("%.1f,%.1f", f.x(xs[i]), f.y(base[i]+l.Y[i])))
			bottom = append(bottom, fmt.Sprintf("%.1f,%.1f", f.x(xs[len(xs)-1-i]), f.y(base[len(xs)-1-i])))
		}
		fmt.Fprintf(&b, `<polygon class="layer" fill="%s" points="%s %s"><title>%s</title></polygon>`,
			color(li), strings.Join(top, " "), strings.Join(bottom, " "), template.HTMLEscapeString(l.Name))
		for i := range xs {
			base[i] += l.Y[i]
		}
	}
	for i, x := range xs {
		if len(xs) > maxMarkers {
			break
		}
		fmt.Fprintf(&b, `<circle class="pt" data-t="%d" data-v="%g" cx="%.1f" cy="%.1f" r="%.1f"><title>%s: %s</title></circle>`,
			x, totals[i], f.x(x), f.y(totals[i]), markerRadius, formatTime(x), formatValue(totals[i], unit))
	}
	drawMarkers(&b, f, marks)
	b.WriteString(`</svg>`)
	return template.HTML(b.String()) + legend(layers)
}

// lineChart draws one line per series over the same xs.
func lineChart(id string, xs []int64, lines []series, unit string, marks []marker) template.HTML {
	if len(xs) == 0 {
		return emptyChart("no data in this range")
	}
	xs, lines = bucket(xs, lines)
	var all []float64
	for _, l := range lines {
		all = append(all, l.Y...)
	}
	f := frame{x0: xs[0], x1: xs[len(xs)-1], ymax: niceMax(maxOf(all)), unit: unit}
	var b strings.Builder
	openSVG(&b, id)
	f.axes(&b)
	for li, l := range lines {
		var pts []string
		for i, y := range l.Y {
			if !math.IsNaN(y) {
				pts = append(pts, fmt.Sprintf("%.1f,%.1f", f.x(xs[i]), f.y(y)))
			}
		}
		fmt.Fprintf(&b, `<polyline class="line" stroke="%s" points="%s"><title>%s</title></polyline>`, color(li), strings.Join(pts, " "), template.HTMLEscapeString(l.Name))
		for i, y := range l.Y {
			if !math.IsNaN(y) && len(xs) <= maxMarkers {
				fmt.Fprintf(&b, `<circle class="pt" fill="%s" data-t="%d" data-v="%g" cx="%.1f" cy="%.1f" r="%.1f"><title>%s %s: %s</title></circle>`,
					color(li), xs[i], y, f.x(xs[i]), f.y(y), markerRadius, template.HTMLEscapeString(l.Name), formatTime(xs[i]), formatValue(y, unit))
			}
		}
	}
	drawMarkers(&b, f, marks)
	b.WriteString(`</svg>`)
	return template.HTML(b.String()) + legend(lines)
}

// stackedBars draws one column per x, stacked by layer (block per cycle).
func stackedBars(id string, xs []int64, layers []series, unit string) template.HTML {
	if len(xs) == 0 {
		return emptyChart("no data in this range")
	}
	xs, layers = bucket(xs, layers)
	totals := make([]float64, len(xs))
	for _, l := range layers {
		for i, y := range l.Y {
			totals[i] += y
		}
	}
	f := frame{x0: xs[0], x1: xs[len(xs)-1], ymax: niceMax(maxOf(totals)), unit: unit}
	if step := (f.x1 - f.x0) / int64(max(len(xs)-1, 1)); step > 0 {
		f.x0, f.x1 = f.x0-step/2, f.x1+step/2 // room for the first and last bars
	} else {
		f.x0, f.x1 = f.x0-int64(time.Minute), f.x1+int64(time.Minute)
	}
	w := math.Max(barMinPix, plotW/float64(len(xs))*0.7)
	var b strings.Builder
	openSVG(&b, id)
	f.axes(&b)
	base := make([]float64, len(xs))
	for li, l := range layers {
		for i, y := range l.Y {
			if y <= 0 {
				continue
			}
			fmt.Fprintf(&b, `<rect class="bar" fill="%s" x="%.1f" y="%.1f" width="%.1f" height="%.1f"><title>%s %s: %s</title></rect>`,
				color(li), f.x(xs[i])-w/2, f.y(base[i]+y), w, f.y(base[i])-f.y(base[i]+y), template.HTMLEscapeString(l.Name), formatTime(xs[i]), formatValue(y, unit))
			base[i] += y
		}
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String()) + legend(layers)
}

// hbars draws horizontal bars, largest first, each with its share.
func hbars(id string, items []funcValue, unit string) template.HTML {
	if len(items) == 0 {
		return emptyChart("no data in this range")
	}
	var total, top float64
	for _, it := range items {
		total += float64(it.V0)
		top = math.Max(top, float64(it.V0))
	}
	rowH := 22.0
	h := rowH*float64(len(items)) + 8
	var b strings.Builder
	fmt.Fprintf(&b, `<svg id="%s" class="chart" viewBox="0 0 %.0f %.0f" width="%.0f" height="%.0f" xmlns="http://www.w3.org/2000/svg">`, id, chartW, h, chartW, h)
	labelW, barW := 420.0, chartW-420.0-190
	for i, it := range items {
		y := 4 + rowH*float64(i)
		w := 0.0
		if top > 0 {
			w = barW * float64(it.V0) / top
		}
		share := 0.0
		if total > 0 {
			share = 100 * float64(it.V0) / total
		}
		name := template.HTMLEscapeString(it.Name)
		fmt.Fprintf(&b, `<g class="hbar" data-func="%s"><text x="%.0f" y="%.1f" class="flab">%s</text><rect fill="%s" x="%.0f" y="%.1f" width="%.1f" height="%.0f"><title>%s: %s (%.1f%%)</title></rect><text x="%.1f" y="%.1f" class="vlab">%s · %.1f%%</text></g>`,
			name, labelW-8, y+15, template.HTMLEscapeString(shorten(it.Name, 60)), color(i), labelW, y+2, math.Max(w, barMinPix), rowH-6, name, formatValue(float64(it.V0), unit), share,
			labelW+w+6, y+15, formatValue(float64(it.V0), unit), share)
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}

// drawMarkers draws vertical marker lines with their labels.
func drawMarkers(b *strings.Builder, f frame, marks []marker) {
	for _, m := range marks {
		x := f.x(m.T)
		fmt.Fprintf(b, `<g class="marker %s"><line x1="%.1f" x2="%.1f" y1="%.0f" y2="%.0f"/><text x="%.1f" y="%.0f">▲</text><title>%s %s</title></g>`,
			m.Class, x, x, padT, padT+plotH, x-5, padT+12, formatTime(m.T), template.HTMLEscapeString(m.Label))
	}
}

func openSVG(b *strings.Builder, id string) {
	fmt.Fprintf(b, `<svg id="%s" class="chart" viewBox="0 0 %.0f %.0f" width="%.0f" height="%.0f" xmlns="http://www.w3.org/2000/svg">`, id, chartW, chartH, chartW, chartH)
}

func legend(ls []series) template.HTML {
	var b strings.Builder
	b.WriteString(`<div class="legend">`)
	for i, l := range ls {
		fmt.Fprintf(&b, `<span><i style="background:%s"></i>%s</span>`, color(i), template.HTMLEscapeString(l.Name))
	}
	b.WriteString(`</div>`)
	return template.HTML(b.String())
}

func emptyChart(msg string) template.HTML {
	return template.HTML(`<p class="empty">` + template.HTMLEscapeString(msg) + `</p>`)
}

func maxOf(vs []float64) float64 {
	m := 0.0
	for _, v := range vs {
		if !math.IsNaN(v) {
			m = math.Max(m, v)
		}
	}
	return m
}

// niceMax rounds a maximum up to 1, 2 or 5 times a power of ten.
func niceMax(v float64) float64 {
	if v <= 0 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*p >= v {
			return m * p
		}
	}
	return 10 * p
}

// formatValue prints a value in its unit.
func formatValue(v float64, unit string) string {
	switch unit {
	case unitNanos:
		return time.Duration(v).Round(durationRound(v)).String()
	case unitBytes:
		for _, u := range []string{"B", "KiB", "MiB", "GiB"} {
			if math.Abs(v) < 1024 || u == "GiB" {
				return trimFloat(v) + " " + u
			}
			v /= 1024
		}
	}
	return trimFloat(v)
}

func durationRound(v float64) time.Duration {
	switch {
	case v >= 10e9:
		return 100 * time.Millisecond
	case v >= 1e9:
		return 10 * time.Millisecond
	case v >= 1e6:
		return 10 * time.Microsecond
	}
	return 1
}

func trimFloat(v float64) string {
	if v == math.Trunc(v) || math.Abs(v) >= 100 {
		return fmt.Sprintf("%.0f", v)
	}
	return fmt.Sprintf("%.1f", v)
}

func formatTime(ns int64) string {
	return time.Unix(0, ns).UTC().Format("2006-01-02 15:04:05Z")
}

// formatTick prints a time axis label fit for a span of the given length.
func formatTick(ns, span int64) string {
	t := time.Unix(0, ns).UTC()
	switch {
	case span > int64(48*time.Hour):
		return t.Format("Jan 2 15:04")
	case span > int64(2*time.Minute):
		return t.Format("15:04")
	}
	return t.Format("15:04:05")
}

func shorten(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "…" + s[len(s)-n+1:]
}

// topNames returns the names of funcs in order, otherFunc last.
func topNames(fs []funcValue) []string {
	var out []string
	for _, f := range fs {
		if f.Name != otherFunc {
			out = append(out, f.Name)
		}
	}
	return out
}

// anchor keeps the first and last of six axis labels inside the chart.
func anchor(i int) string {
	switch i {
	case 0:
		return "start"
	case 5:
		return "end"
	}
	return "middle"
}
