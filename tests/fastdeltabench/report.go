// report.go: what a run leaves behind. results.json holds every round's
// figures and the machine they came from; latest.md (the table) and
// fastdelta.svg (the chart) are made from it, so -render can make them
// again from an earlier run's folder.
package main

import (
	"github.com/pprofio/pprofio/tests/internal/benchmeta"

	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// goalMBps is the rate aimed at on the 10 MB heap profile.
const goalMBps = 200

// meta is what the figures came from.
type meta struct {
	benchmeta.Machine
	Benchtime, Fastdelta string
	Rounds               int
}

func newMeta(rounds int, benchtime string) meta {
	return meta{Machine: benchmeta.Now(), Rounds: rounds, Benchtime: benchtime, Fastdelta: "dd-trace-go " + ddVersion}
}

// write saves the results and the report made from them into dir, and prints the table.
func (r *results) write(dir string) error {
	if err := benchmeta.Save(dir, r); err != nil {
		return err
	}
	return r.report(dir)
}

// rerender makes the report again from dir/results.json.
func rerender(dir string) error {
	var r results
	if err := benchmeta.Load(dir, &r); err != nil {
		return err
	}
	return r.report(dir)
}

func (r *results) report(dir string) error {
	md := r.markdown()
	fmt.Print(md)
	if err := os.WriteFile(filepath.Join(dir, "latest.md"), []byte(md), 0o644); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "fastdelta.svg"), []byte(r.svg()), 0o644)
}

// stat is a median and the range over rounds.
type stat struct{ Med, Lo, Hi float64 }

func stats(v []float64) stat {
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	n := len(s)
	if n == 0 {
		return stat{math.NaN(), math.NaN(), math.NaN()}
	}
	med := s[n/2]
	if n%2 == 0 {
		med = (s[n/2-1] + s[n/2]) / 2
	}
	return stat{med, s[0], s[n-1]}
}

// ratios is pprofio's figure over fastdelta's, round by round.
func ratios(pp, fd []float64) stat {
	var r []float64
	for i := range fd {
		if i < len(pp) && fd[i] > 0 {
			r = append(r, pp[i]/fd[i])
		}
	}
	return stats(r)
}

// row is one input's figures.
type row struct {
	in                    input
	fdWall, ppWall, wallX stat
	fdCPU, ppCPU, cpuX    stat
}

func (r *results) rows() []row {
	var rows []row
	for _, in := range r.Inputs {
		fd, pp := r.FD[in.Name], r.PP[in.Name]
		if fd == nil || pp == nil {
			continue
		}
		rows = append(rows, row{in, stats(fd.Wall), stats(pp.Wall), ratios(pp.Wall, fd.Wall),
			stats(fd.CPU), stats(pp.CPU), ratios(pp.CPU, fd.CPU)})
	}
	return rows
}

func (r *results) markdown() string {
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	m := r.Meta
	w("# pprofio's delta beside fastdelta\n\n")
	w("| | |\n| --- | --- |\n")
	w("| machine | %d CPUs, %s; %s |\n| Go | %s |\n| fastdelta | %s |\n", m.NProc, m.CPU, m.Kernel, m.GoVersion, m.Fastdelta)
	w("| date | %s |\n| command | `%s` (in `tests/fastdeltabench`; `make bench-fastdelta`) |\n", m.Date, m.Command)
	w("| rounds | %d, -benchtime %s each, the side that runs first alternating |\n", m.Rounds, m.Benchtime)
	w("| load average | %s before, %s after (1, 5, 15 min) |\n\n", m.LoadBefore, m.LoadAfter)
	w("| input (uncompressed pprof) | MB per op | fastdelta MB/s | pprofio MB/s | pprofio / fastdelta | fastdelta MB per CPU-s | pprofio MB per CPU-s | pprofio / fastdelta, CPU |\n")
	w("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n")
	f := func(s stat) string { return fmt.Sprintf("%.0f (%.0f–%.0f)", s.Med, s.Lo, s.Hi) }
	x := func(s stat) string { return fmt.Sprintf("%.1f× (%.1f–%.1f)", s.Med, s.Lo, s.Hi) }
	for _, rw := range r.rows() {
		w("| %s | %.2f | %s | %s | %s | %s | %s | %s |\n", rw.in.Name, float64(rw.in.Bytes)/1e6, f(rw.fdWall), f(rw.ppWall),
			x(rw.wallX), f(rw.fdCPU), f(rw.ppCPU), x(rw.cpuX))
	}
	w("\nMedians over rounds, the range in brackets; a ratio is the median of each round's ratio. MB/s is by the wall "+
		"clock. MB per CPU-s divides by CPU time instead, which other load on the machine changes less: pprofio's "+
		"thread's (its delta runs in C on that thread alone), fastdelta's whole process's (its goroutine and the "+
		"garbage collector that its allocations make work). \"Steady state\" is fastdelta's own benchmark case, one "+
		"delta of a file against itself (its wall time from its BenchmarkDelta, its CPU time from the same case run "+
		"by a benchmark added beside it); a pair's operation is two deltas on one kept baseline (current against "+
		"base, then base against current). The goal on the 10 MB profile is %d MB/s.\n", goalMBps)
	return b.String()
}
