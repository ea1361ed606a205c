// results.go: a run's figures (saved as results.json) and the table made
// from them (latest.md).
package main

import (
	"fmt"
	"math"
	"sort"
	"strings"
)

// The goals, as fractions of godeltaprof's medians.
const (
	goalCPU   = 0.5 // at most half its CPU per delta profile
	goalAlloc = 0.1 // at most a tenth of its Go allocations
)

var kindNames = [3]string{"heap", "mutex", "block"}

// results is a run: what it ran on and every measured cycle's cost of each
// path's delta profile of each kind.
type results struct {
	Meta   meta
	Counts [3]int      // heap, mutex and block records before the cycles
	Paths  []string    // the first, godeltaprof, is the reference
	Costs  [][3][]cost // by path, then kind (heap, mutex, block): one per measured cycle
}

func newResults(m meta, paths []path, counts [3]int) *results {
	r := &results{Meta: m, Counts: counts, Costs: make([][3][]cost, len(paths))}
	for _, p := range paths {
		r.Paths = append(r.Paths, p.name())
	}
	return r
}

func (r *results) add(p, kind int, c cost) { r.Costs[p][kind] = append(r.Costs[p][kind], c) }

// stat is a median and the range over cycles.
type stat struct{ Med, Lo, Hi float64 }

func statOf(xs []float64) stat {
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	if len(s) == 0 {
		return stat{math.NaN(), math.NaN(), math.NaN()}
	}
	m := s[len(s)/2]
	if len(s)%2 == 0 {
		m = (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	return stat{m, s[0], s[len(s)-1]}
}

// figures are one path's figures for one kind: CPU in ms, sizes in KB, and
// the ratios to godeltaprof's, each the median of the cycles' ratios.
type figures struct {
	cpu, proc, allocKB, allocs, outKB stat
	cpuX, allocX                      stat
}

func (r *results) figures(p, kind int) figures {
	cs, ref := r.Costs[p][kind], r.Costs[0][kind]
	of := func(f func(cost) float64) stat {
		xs := make([]float64, len(cs))
		for i, c := range cs {
			xs[i] = f(c)
		}
		return statOf(xs)
	}
	ratio := func(f func(cost) float64) stat {
		var xs []float64
		for i := range cs {
			if i < len(ref) && f(ref[i]) > 0 {
				xs = append(xs, f(cs[i])/f(ref[i]))
			}
		}
		return statOf(xs)
	}
	cpu := func(c cost) float64 { return float64(c.ThreadCPU) / 1e6 }
	alloc := func(c cost) float64 { return float64(c.AllocB) / 1024 }
	return figures{
		cpu:     of(cpu),
		proc:    of(func(c cost) float64 { return float64(c.ProcCPU) / 1e6 }),
		allocKB: of(alloc),
		allocs:  of(func(c cost) float64 { return float64(c.AllocN) }),
		outKB:   of(func(c cost) float64 { return float64(c.OutB) / 1024 }),
		cpuX:    ratio(cpu),
		allocX:  ratio(alloc),
	}
}

// num writes v with thousands separators and prec decimals.
func num(v float64, prec int) string {
	if math.IsNaN(v) {
		return "–"
	}
	s := fmt.Sprintf("%.*f", prec, math.Abs(v))
	whole, frac, _ := strings.Cut(s, ".")
	for i := len(whole) - 3; i > 0; i -= 3 {
		whole = whole[:i] + "," + whole[i:]
	}
	if frac != "" {
		whole += "." + frac
	}
	if v < 0 && strings.Trim(s, "0.") != "" {
		whole = "-" + whole
	}
	return whole
}

// precFor gives a figure of this size about three significant digits, at most two decimals.
func precFor(v float64) int {
	switch a := math.Abs(v); {
	case a >= 100 || a == 0:
		return 0
	case a >= 10:
		return 1
	default:
		return 2
	}
}

func (s stat) String() string { return s.fixed(precFor(s.Med)) }

func (s stat) fixed(p int) string {
	return fmt.Sprintf("%s (%s–%s)", num(s.Med, p), num(s.Lo, p), num(s.Hi, p))
}

// ratioText writes a ratio with two significant digits, without an exponent.
func ratioText(x float64) string {
	if x == 0 || math.IsNaN(x) || math.IsInf(x, 0) {
		return fmt.Sprint(x)
	}
	d := 2
	if a := math.Abs(x); a < 0.1 {
		d = int(-math.Floor(math.Log10(a))) + 1
	}
	return fmt.Sprintf("%.*f", d, x)
}

func (s stat) ratio() string {
	return fmt.Sprintf("%s (%s–%s)", ratioText(s.Med), ratioText(s.Lo), ratioText(s.Hi))
}

func verdict(x, goal float64) string {
	if x <= goal {
		return "met"
	}
	return fmt.Sprintf("missed (%.1f× the goal)", x/goal)
}

func (r *results) markdown() string {
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	m := r.Meta
	w("# Delta profiles against godeltaprof\n\n")
	w("| | |\n| --- | --- |\n")
	w("| machine | %d CPUs, %s; %s |\n| Go | %s %s |\n| godeltaprof | %s |\n", m.NProc, m.CPU, m.Kernel, m.GoVersion, m.Platform, m.Godeltaprof)
	w("| date | %s |\n| command | `%s` (in `tests/godeltabench`; `make bench-godeltaprof`) |\n", m.Date, m.Command)
	w("| cycles | %d measured after %d warm-up; which path goes first rotates each cycle |\n", m.Cycles, m.Warmup)
	w("| records | %s heap, %s mutex, %s block; a quarter of each kind's stacks changes per cycle |\n",
		num(float64(r.Counts[0]), 0), num(float64(r.Counts[1]), 0), num(float64(r.Counts[2]), 0))
	w("| load average | %s before, %s after (1, 5, 15 min) |\n\n", m.LoadBefore, m.LoadAfter)
	w("## Goals: at most %s of godeltaprof's CPU and %s of its Go allocations\n\n", "½", "1/10")
	w("| profile | path | CPU / godeltaprof | | Go alloc / godeltaprof | |\n| --- | --- | ---: | --- | ---: | --- |\n")
	for k := range kindNames {
		for p := 1; p < len(r.Paths); p++ {
			f := r.figures(p, k)
			w("| %s | %s | %s | %s | %s | %s |\n", kindNames[k], r.Paths[p], f.cpuX.ratio(), verdict(f.cpuX.Med, goalCPU),
				f.allocX.ratio(), verdict(f.allocX.Med, goalAlloc))
		}
	}
	w("\nPer delta profile, ready to send (gzipped); median (range) over cycles. Thread CPU: the measuring " +
		"thread's CPU clock (Go and C work done in the call); process CPU: all threads over the same interval " +
		"(adds garbage collection and other goroutines). A mutex or block figure includes the snapshot taken " +
		"at the window's start. A ratio is the median of the cycles' ratios to godeltaprof's.\n\n")
	for k := range kindNames {
		w("## %s (%s records)\n\n", kindNames[k], num(float64(r.Counts[k]), 0))
		w("| path | thread CPU ms | process CPU ms | Go alloc KB | Go allocs | out KB | CPU ratio | alloc ratio |\n")
		w("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n")
		for p, name := range r.Paths {
			f := r.figures(p, k)
			w("| %s | %s | %s | %s | %s | %s | %s | %s |\n", name, f.cpu, f.proc, f.allocKB, f.allocs.fixed(0), f.outKB,
				ratioText(f.cpuX.Med), ratioText(f.allocX.Med))
		}
		w("\n")
	}
	return b.String()
}
