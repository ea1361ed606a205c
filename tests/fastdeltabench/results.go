// results.go: running both sides once per round.
package main

import (
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/pprofio/pprofio/internal/core"
)

// series holds one side's figures for one input, one per round: MB/s by
// the wall clock and MB per CPU-second.
type series struct {
	Wall, CPU []float64
}

// results is a run: what it ran on and, per input name, each side's series.
type results struct {
	Meta   meta
	Inputs []input
	FD, PP map[string]*series
}

func (r *results) add(m *map[string]*series, name string, wall, cpu float64) {
	if *m == nil {
		*m = map[string]*series{}
	}
	s := (*m)[name]
	if s == nil {
		s = &series{}
		(*m)[name] = s
	}
	s.Wall = append(s.Wall, wall)
	s.CPU = append(s.CPU, cpu)
}

// threadCPU is the calling thread's CPU time (user + system).
func threadCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(1 /* RUSAGE_THREAD */, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

var (
	benchLine = regexp.MustCompile(`^(Benchmark\S+?)(-\d+)?\s+\d+\s+([\d.]+) ns/op(.*)$`)
	cpuMetric = regexp.MustCompile(`\s([\d.]+) cpu-ns/op`)
)

// runFastdelta runs fastdelta's benchmarks once, in its package directory
// (its own benchmark reads testdata/ from there): BenchmarkDelta's steady
// state for the wall time of its files, the added benchmarks for the pairs
// and for the CPU time of every input.
func (r *results) runFastdelta(bin, dir, benchtime string) error {
	var pairs []string
	for _, in := range r.Inputs {
		if len(in.files) == 2 {
			pairs = append(pairs, strings.TrimPrefix(in.fdName, "BenchmarkPprofioPairs/")+"="+in.files[0]+","+in.files[1])
		}
	}
	wall, cpu := map[string]float64{}, map[string]float64{}
	for _, pattern := range []string{"BenchmarkDelta/fastdelta/./steady-state", "BenchmarkPprofioPairs", "BenchmarkPprofioSteady"} {
		cmd := exec.Command(bin, "-test.run", "^$", "-test.bench", pattern, "-test.benchtime", benchtime)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "PPROFIO_PAIRS="+strings.Join(pairs, ";"))
		cmd.Stderr = os.Stderr
		out, err := cmd.Output()
		if err != nil {
			return fmt.Errorf("fastdelta's benchmark: %v\n%s", err, out)
		}
		for _, line := range strings.Split(string(out), "\n") {
			m := benchLine.FindStringSubmatch(line)
			if m == nil {
				continue
			}
			wall[m[1]], _ = strconv.ParseFloat(m[3], 64)
			if c := cpuMetric.FindStringSubmatch(m[4]); c != nil {
				cpu[m[1]], _ = strconv.ParseFloat(c[1], 64)
			}
		}
	}
	for _, in := range r.Inputs {
		ns, cns := wall[in.fdName], cpu[in.fdCPU]
		if ns <= 0 || cns <= 0 {
			return fmt.Errorf("fastdelta's benchmarks printed no time for %s (%s, %s)", in.Name, in.fdName, in.fdCPU)
		}
		r.add(&r.FD, in.Name, float64(in.Bytes)/ns*1e3, float64(in.Bytes)/cns*1e3)
	}
	return nil
}

// runPprofio does each input's deltas with pprofio's engine for benchtime.
func (r *results) runPprofio(benchtime string) error {
	d, err := time.ParseDuration(benchtime)
	if err != nil {
		return fmt.Errorf("-benchtime %q: pprofio's side takes a duration", benchtime)
	}
	runtime.LockOSThread() // the C calls run on this thread: its CPU clock is theirs
	defer runtime.UnlockOSThread()
	for _, in := range r.Inputs {
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
					return fmt.Errorf("pprofio on %s: %v", in.Name, err)
				}
			}
			n++
		}
		ns := float64(time.Since(start).Nanoseconds()) / float64(n)
		cpuNs := float64((threadCPU() - cpu0).Nanoseconds()) / float64(n)
		ds.Close()
		if cpuNs <= 0 {
			return fmt.Errorf("pprofio on %s: no CPU time measured", in.Name)
		}
		r.add(&r.PP, in.Name, float64(in.Bytes)/ns*1e3, float64(in.Bytes)/cpuNs*1e3)
	}
	return nil
}
