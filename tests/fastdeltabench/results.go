// results.go: running both sides once per round, and the closing table.
package main

import (
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/pprofio/pprofio/internal/core"
)

// results holds, per input name and side, the MB/s of each round; ppCPU
// is pprofio's per second of its thread's CPU time, which a busy machine
// changes less than the wall-clock rate.
type results struct {
	fd, pp, ppCPU map[string][]float64
}

// threadCPU is the calling thread's CPU time (user + system).
func threadCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(1 /* RUSAGE_THREAD */, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func (r *results) add(m *map[string][]float64, name string, mbps float64) {
	if *m == nil {
		*m = map[string][]float64{}
	}
	(*m)[name] = append((*m)[name], mbps)
}

var benchLine = regexp.MustCompile(`^(Benchmark\S+?)(-\d+)?\s+\d+\s+([\d.]+) ns/op`)

// runFastdelta runs fastdelta's benchmarks once, in its package directory
// (its own benchmark reads testdata/ from there).
func (r *results) runFastdelta(bin, dir string, ins []input, benchtime string) error {
	var pairs []string
	for _, in := range ins {
		if len(in.files) == 2 {
			pairs = append(pairs, strings.TrimPrefix(in.fdName, "BenchmarkPprofioPairs/")+"="+in.files[0]+","+in.files[1])
		}
	}
	got := map[string]float64{}
	for _, pattern := range []string{"BenchmarkDelta/fastdelta/./steady-state", "BenchmarkPprofioPairs"} {
		cmd := exec.Command(bin, "-test.run", "^$", "-test.bench", pattern, "-test.benchtime", benchtime)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "PPROFIO_PAIRS="+strings.Join(pairs, ";"))
		cmd.Stderr = os.Stderr
		out, err := cmd.Output()
		if err != nil {
			return fmt.Errorf("fastdelta's benchmark: %v\n%s", err, out)
		}
		for _, line := range strings.Split(string(out), "\n") {
			if m := benchLine.FindStringSubmatch(line); m != nil {
				ns, _ := strconv.ParseFloat(m[3], 64)
				got[m[1]] = ns
			}
		}
	}
	for _, in := range ins {
		ns, ok := got[in.fdName]
		if !ok {
			return fmt.Errorf("fastdelta's benchmark printed no %s", in.fdName)
		}
		r.add(&r.fd, in.name, float64(in.bytes)/ns*1e3)
	}
	return nil
}

// runPprofio does each input's deltas with pprofio's engine for benchtime.
func (r *results) runPprofio(ins []input, benchtime string) error {
	d, err := time.ParseDuration(benchtime)
	if err != nil {
		return fmt.Errorf("-benchtime %q: pprofio's side takes a duration", benchtime)
	}
	runtime.LockOSThread() // the C calls run on this thread: its CPU clock is theirs
	defer runtime.UnlockOSThread()
	for _, in := range ins {
		data := make([][]byte, len(in.files))
		for i, f := range in.files {
			if data[i], err = os.ReadFile(f); err != nil {
				return err
			}
		}
		var ds core.Deltas
		if _, _, err := ds.Next(data[len(data)-1]); err != nil { // the baseline, as fastdelta's side starts
			return err
		}
		start, cpu0, n := time.Now(), threadCPU(), 0
		for time.Since(start) < d || n < 2 {
			for _, raw := range data {
				if _, _, err := ds.Next(raw); err != nil {
					ds.Close()
					return fmt.Errorf("pprofio on %s: %v", in.name, err)
				}
			}
			n++
		}
		ns := float64(time.Since(start).Nanoseconds()) / float64(n)
		cpuNs := float64((threadCPU() - cpu0).Nanoseconds()) / float64(n)
		ds.Close()
		r.add(&r.pp, in.name, float64(in.bytes)/ns*1e3)
		if cpuNs > 0 {
			r.add(&r.ppCPU, in.name, float64(in.bytes)/cpuNs*1e3)
		}
	}
	return nil
}

// stats returns the median, the minimum and the maximum.
func stats(v []float64) (med, lo, hi float64) {
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	n := len(s)
	if n == 0 {
		return 0, 0, 0
	}
	med = s[n/2]
	if n%2 == 0 {
		med = (s[n/2-1] + s[n/2]) / 2
	}
	return med, s[0], s[n-1]
}

func (r *results) table(ins []input, note string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "\n| input | MB per op | fastdelta MB/s | pprofio MB/s | pprofio / fastdelta | pprofio MB per CPU-s |\n")
	fmt.Fprintf(&b, "|---|---:|---:|---:|---:|---:|\n")
	for _, in := range ins {
		fd, pp := r.fd[in.name], r.pp[in.name]
		ratios := make([]float64, 0, len(fd))
		for i := range fd {
			if i < len(pp) {
				ratios = append(ratios, pp[i]/fd[i])
			}
		}
		fm, fl, fh := stats(fd)
		pm, pl, ph := stats(pp)
		rm, rl, rh := stats(ratios)
		cm, cl, ch := stats(r.ppCPU[in.name])
		fmt.Fprintf(&b, "| %s | %.2f | %.0f (%.0f–%.0f) | %.0f (%.0f–%.0f) | %.2f× (%.2f–%.2f) | %.0f (%.0f–%.0f) |\n",
			in.name, float64(in.bytes)/1e6, fm, fl, fh, pm, pl, ph, rm, rl, rh, cm, cl, ch)
	}
	fmt.Fprintf(&b, "\nMedians over rounds (range in brackets), MB/s of uncompressed pprof read, wall clock; "+
		"the ratio is the median of each round's ratio; the last column divides by the CPU time of "+
		"pprofio's thread instead. %s.\n", note)
	return b.String()
}
