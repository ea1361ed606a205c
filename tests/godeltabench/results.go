package main

import (
	"fmt"
	"runtime"
	"sort"
	"strings"
	"time"
)

type results struct {
	paths  []path
	counts [3]int
	costs  [][3][]cost // by path, kind
}

func newResults(paths []path, counts [3]int) *results {
	return &results{paths: paths, counts: counts, costs: make([][3][]cost, len(paths))}
}

func (r *results) add(p, kind int, c cost) { r.costs[p][kind] = append(r.costs[p][kind], c) }

// stat is a median and a range.
type stat struct{ med, lo, hi float64 }

func statOf(xs []float64) stat {
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	if len(s) == 0 {
		return stat{}
	}
	m := s[len(s)/2]
	if len(s)%2 == 0 {
		m = (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	return stat{m, s[0], s[len(s)-1]}
}

func field(cs []cost, f func(cost) float64) stat {
	xs := make([]float64, len(cs))
	for i, c := range cs {
		xs[i] = f(c)
	}
	return statOf(xs)
}

func ms(d time.Duration) float64 { return float64(d) / 1e6 }

func (s stat) fmt(prec int) string {
	return fmt.Sprintf("%.*f (%.*f–%.*f)", prec, s.med, prec, s.lo, prec, s.hi)
}

var kindNames = [3]string{"heap", "mutex", "block"}

func (r *results) markdown(cycles, warmup int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "# Delta profiles against godeltaprof\n\n")
	fmt.Fprintf(&b, "%s, %s/%s, %d CPUs; %d measured cycles after %d warm-up; "+
		"records: %d heap, %d mutex, %d block; a quarter of each changes per cycle.\n\n",
		runtime.Version(), runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), cycles, warmup,
		r.counts[0], r.counts[1], r.counts[2])
	b.WriteString("Per delta profile, ready to send (gzipped); median (range). Thread CPU: the measuring " +
		"thread's CPU clock (Go and C); process CPU: all threads over the same interval (adds GC). " +
		"Ratios: the path's median over godeltaprof's.\n\n")
	for k := range kindNames {
		fmt.Fprintf(&b, "## %s\n\n", kindNames[k])
		b.WriteString("| path | thread CPU ms | process CPU ms | Go alloc KB | Go allocs | out KB | CPU ratio | alloc ratio |\n")
		b.WriteString("| --- | --- | --- | --- | --- | --- | --- | --- |\n")
		var refCPU, refAlloc float64
		for i, p := range r.paths {
			cs := r.costs[i][k]
			cpu := field(cs, func(c cost) float64 { return ms(c.threadCPU) })
			proc := field(cs, func(c cost) float64 { return ms(c.procCPU) })
			ab := field(cs, func(c cost) float64 { return float64(c.allocB) / 1024 })
			an := field(cs, func(c cost) float64 { return float64(c.allocN) })
			ob := field(cs, func(c cost) float64 { return float64(c.outB) / 1024 })
			if i == 0 {
				refCPU, refAlloc = cpu.med, ab.med
			}
			fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s | %.3f | %.4f |\n", p.name(), cpu.fmt(1), proc.fmt(1),
				ab.fmt(0), an.fmt(0), ob.fmt(0), cpu.med/refCPU, ab.med/refAlloc)
		}
		b.WriteString("\n")
	}
	return b.String()
}
