package main

import (
	"fmt"
	"html"
	"math"
	"sort"
	"strings"
	"time"
)

// report is the analysis of a benchmark run.
type report struct {
	Machine  machine
	Command  string
	Rounds   int
	Work     int
	Conc     int
	Elapsed  time.Duration
	Profile  *profileResult
	Warnings []string

	Cadences []string
	Base     baseRow
	Rows     map[string][]row    // by cadence
	Spans    map[string]spansRow // by cadence, when pprofio-spans and pprofio both ran
}

// spansRow is what a span around every request adds to pprofio: the CPU
// of pprofio-spans over that of pprofio in the same round (ratio - 1).
type spansRow struct {
	CPU   estimate
	Spans float64 // spans recorded per process (median)
}

// analyseSpans compares pprofio-spans with pprofio, round by round.
func analyseSpans(runs []*run, c string) (spansRow, bool) {
	plain := map[int]*run{}
	for _, r := range runs {
		if r.Variant == varPprofio && r.Cadence == c {
			plain[r.Round] = r
		}
	}
	var cpu, spans []float64
	for _, r := range runs {
		p := plain[r.Round]
		if r.Variant != varPprofioSpans || r.Cadence != c || p == nil {
			continue
		}
		cpu = append(cpu, r.cpu()/p.cpu()-1)
		if s := r.Worker.Pprofio; s != nil {
			spans = append(spans, float64(s.SpansRecorded))
		}
	}
	return spansRow{CPU: medianCI(cpu, 0.95), Spans: medianOf(spans)}, len(cpu) > 0
}

// baseRow is the baseline's absolute figures (medians over rounds).
type baseRow struct {
	N                    int
	CPU, Wall            float64 // seconds
	RSS                  float64 // bytes
	HeapRunning, HeapMax float64 // bytes
	Anon, File           float64 // resident memory at the end of the work (bytes)
	Threads              float64
	Allocs               float64  // bytes
	Cores                estimate // CPU / wall: how many CPUs the work kept busy
}

// row is one profiler at one cadence, each figure against the baseline
// of the same round.
type row struct {
	Variant, Cadence string
	N                int

	CPU, Wall estimate // ratio - 1 (0.01 is +1%)
	Steady    estimate // estimated steady-state CPU overhead (ratio - 1)
	DCPU      estimate // process CPU seconds more than the baseline
	DRSS      estimate // peak RSS more than the baseline (bytes)
	DAnon     estimate // resident anonymous memory at the end of the work, more than the baseline
	DFile     estimate // resident file-backed memory (code of shared libraries), more than the baseline
	DThreads  float64  // OS threads more than the baseline (median)
	DHeapRun  estimate // live Go heap more than the baseline, profiler running (bytes)
	DHeapStop estimate // the same after Stop
	DAllocs   estimate // Go heap bytes allocated more than the baseline

	Cycles        float64  // cycles (pprofio batches; pyroscope upload periods) per process
	Uploads       float64  // HTTP requests per process
	BytesPerCycle float64  // request bodies per cycle
	DCPUCycle     estimate // process CPU more than the baseline, per cycle (seconds)
	DAllocsCycle  estimate // Go heap allocated more than the baseline, per cycle (bytes)

	// pprofio only: the core's thread CPU per cycle (seconds), medians.
	CoreSched, CoreOutput, CoreDelta, CoreUpload, CoreTotal float64
	Sent, Collected                                         float64            // batches sent, profiles collected per process
	Dropped                                                 float64            // profiles and batches dropped, all reasons
	Collector                                               map[string]float64 // collector goroutine CPU per cycle by profile type (seconds), medians
}

// period is the length of a cycle at a cadence.
func period(variant, cadence string) time.Duration {
	switch {
	case variant == varPyroscope && cadence == cadCompressed:
		return compressedUploadRate
	case variant == varPyroscope:
		return defaultPyroscopeRate
	case cadence == cadCompressed:
		return compressedSampleRate
	}
	return 60 * time.Second
}

func analyse(runs []*run, variants, cadences []string) *report {
	rep := &report{Cadences: cadences, Rows: map[string][]row{}, Spans: map[string]spansRow{}}
	base := map[int]*run{}
	var bCPU, bWall, bRSS, bHeap, bHeapMax, bAllocs, bAnon, bFile, bThreads, bCores []float64
	for _, r := range runs {
		if r.Variant == varBaseline {
			base[r.Round] = r
			bCPU = append(bCPU, r.cpu())
			bWall = append(bWall, r.Worker.WorkWall)
			bRSS = append(bRSS, float64(r.MaxRSS))
			bHeap = append(bHeap, float64(r.Worker.HeapRunning))
			bHeapMax = append(bHeapMax, float64(r.Worker.HeapMax))
			bAllocs = append(bAllocs, float64(r.Worker.Allocs))
			bAnon = append(bAnon, float64(r.Worker.RSSAnon))
			bFile = append(bFile, float64(r.Worker.RSSFile))
			bThreads = append(bThreads, float64(r.Worker.Threads))
			bCores = append(bCores, r.cpu()/r.Worker.WorkWall)
		}
	}
	rep.Base = baseRow{N: len(bCPU), CPU: medianOf(bCPU), Wall: medianOf(bWall), RSS: medianOf(bRSS),
		HeapRunning: medianOf(bHeap), HeapMax: medianOf(bHeapMax), Allocs: medianOf(bAllocs),
		Anon: medianOf(bAnon), File: medianOf(bFile), Threads: medianOf(bThreads), Cores: medianCI(bCores, 0.95)}
	if n := len(bCores); n > 0 {
		// The range, not an interval: how busy the machine let it be.
		s := append([]float64(nil), bCores...)
		sort.Float64s(s)
		rep.Base.Cores.Lo, rep.Base.Cores.Hi = s[0], s[n-1]
	}

	for _, c := range cadences {
		for _, v := range variants {
			if v == varBaseline {
				continue
			}
			r := analyseRow(runs, base, v, c)
			r.Collector = collectorCosts(runs, v, c)
			rep.Rows[c] = append(rep.Rows[c], r)
		}
		if s, ok := analyseSpans(runs, c); ok {
			rep.Spans[c] = s
		}
	}
	return rep
}

func analyseRow(runs []*run, base map[int]*run, v, c string) row {
	var cpu, wall, steady, dcpu, drss, danon, dfile, dthreads, dheap, dheapStop, dallocs, dcpuCycle, dallocsCycle []float64
	var cycles, uploads, bytesCycle, sched, output, delta, upload, total, sent, collected, dropped []float64
	per := period(v, c).Seconds()
	for _, r := range runs {
		b := base[r.Round]
		if r.Variant != v || r.Cadence != c || b == nil {
			continue
		}
		cpu = append(cpu, r.cpu()/b.cpu()-1)
		wall = append(wall, r.Worker.WorkWall/b.Worker.WorkWall-1)
		d := r.cpu() - b.cpu()
		dcpu = append(dcpu, d)
		drss = append(drss, float64(r.MaxRSS-b.MaxRSS))
		danon = append(danon, float64(r.Worker.RSSAnon)-float64(b.Worker.RSSAnon))
		dfile = append(dfile, float64(r.Worker.RSSFile)-float64(b.Worker.RSSFile))
		dthreads = append(dthreads, float64(r.Worker.Threads-b.Worker.Threads))
		dheap = append(dheap, float64(r.Worker.HeapRunning)-float64(b.Worker.HeapRunning))
		dheapStop = append(dheapStop, float64(r.Worker.HeapStopped)-float64(b.Worker.HeapStopped))
		da := float64(r.Worker.Allocs) - float64(b.Worker.Allocs)
		dallocs = append(dallocs, da)

		var n, bytes, reqs float64
		if s := r.Worker.Pprofio; s != nil {
			n, bytes, reqs = float64(s.BatchesSent), float64(s.BytesSent), float64(r.IngestRequests)
			if n > 0 {
				sched = append(sched, s.CPUScheduler.Seconds()/n)
				output = append(output, s.CPUOutput.Seconds()/n)
				delta = append(delta, s.CPUDelta.Seconds()/n)
				upload = append(upload, s.CPUUpload.Seconds()/n)
				total = append(total, (s.CPUScheduler+s.CPUOutput+s.CPUUpload).Seconds()/n)
			}
			sent = append(sent, float64(s.BatchesSent))
			collected = append(collected, float64(s.ProfilesCollected))
			dropped = append(dropped, float64(s.ProfilesDroppedMemory+s.ProfilesDroppedInvalid+
				s.ProfilesDroppedNoSink+s.ProfilesDroppedUpload+s.BatchesDroppedRejected+s.BatchesDroppedSpool))
		} else if v == varRuntimeCPU {
			n = float64(r.Worker.Windows) // its cycles: no uploads, no bytes
		} else {
			n, bytes, reqs = float64(r.SinkCPUUploads), float64(r.SinkBytes), float64(r.SinkRequests)
		}
		cycles = append(cycles, n)
		uploads = append(uploads, reqs)
		switch {
		case v == varPyroscope:
			// One upload period sends a CPU profile and a heap profile,
			// as separate requests; a run need not end with both.
			var b float64
			if n > 0 {
				b += float64(r.SinkCPUBytes) / n
			}
			if hn := reqs - n; hn > 0 {
				b += (bytes - float64(r.SinkCPUBytes)) / hn
			}
			bytesCycle = append(bytesCycle, b)
		case n > 0:
			bytesCycle = append(bytesCycle, bytes/n)
		}
		// CPU and allocations per cycle. pprofio's come per cycle: divide
		// by the batches. pyroscope-go profiles CPU all the time, so its
		// costs grow with the run, not with the uploads it got to make:
		// divide by the run's length in upload periods.
		norm := n
		if v == varPyroscope {
			norm = r.Worker.WorkWall / per
		}
		if norm > 0 {
			dcpuCycle = append(dcpuCycle, d/norm)
			dallocsCycle = append(dallocsCycle, da/norm)
		}
		// Steady state. pprofio's cost comes per cycle (a CPU window, the
		// snapshots, a batch): its extra CPU per cycle over what the
		// baseline spends in one cycle period. pyroscope-go profiles CPU
		// all the time: its in-run ratio is its steady state.
		switch {
		case v == varPyroscope:
			steady = append(steady, r.cpu()/b.cpu()-1)
		case n > 0:
			steady = append(steady, (d/n)/(b.cpu()/b.Worker.WorkWall*per))
		}
	}
	const level = 0.95
	return row{
		Variant: v, Cadence: c, N: len(cpu),
		CPU: medianCI(cpu, level), Wall: medianCI(wall, level), Steady: medianCI(steady, level),
		DCPU: medianCI(dcpu, level), DRSS: medianCI(drss, level),
		DAnon: medianCI(danon, level), DFile: medianCI(dfile, level), DThreads: medianOf(dthreads),
		DHeapRun: medianCI(dheap, level), DHeapStop: medianCI(dheapStop, level), DAllocs: medianCI(dallocs, level),
		Cycles: medianOf(cycles), Uploads: medianOf(uploads), BytesPerCycle: medianOf(bytesCycle),
		DCPUCycle: medianCI(dcpuCycle, level), DAllocsCycle: medianCI(dallocsCycle, level),
		CoreSched: medianOf(sched), CoreOutput: medianOf(output), CoreDelta: medianOf(delta),
		CoreUpload: medianOf(upload), CoreTotal: medianOf(total),
		Sent: medianOf(sent), Collected: medianOf(collected), Dropped: medianOf(dropped),
	}
}

// Formatting.

func pct(e estimate) string {
	if math.IsNaN(e.Med) {
		return "–"
	}
	return fmt.Sprintf("%+.2f%% [%+.2f, %+.2f]", 100*e.Med, 100*e.Lo, 100*e.Hi)
}

func mib(b float64) string {
	if math.IsNaN(b) {
		return "–"
	}
	return fmt.Sprintf("%.1f MiB", b/(1<<20))
}

func dmib(e estimate) string {
	if math.IsNaN(e.Med) {
		return "–"
	}
	return fmt.Sprintf("%+.1f MiB [%+.1f, %+.1f]", e.Med/(1<<20), e.Lo/(1<<20), e.Hi/(1<<20))
}

func dkib(e estimate) string {
	if math.IsNaN(e.Med) {
		return "–"
	}
	return fmt.Sprintf("%+.0f KiB [%+.0f, %+.0f]", e.Med/1024, e.Lo/1024, e.Hi/1024)
}

func msec(e estimate) string {
	if math.IsNaN(e.Med) {
		return "–"
	}
	return fmt.Sprintf("%+.0f ms [%+.0f, %+.0f]", 1e3*e.Med, 1e3*e.Lo, 1e3*e.Hi)
}

func dmibShort(b float64) string {
	if math.IsNaN(b) {
		return "–"
	}
	return fmt.Sprintf("%+.1f MiB", b/(1<<20))
}

func kib(b float64) string {
	if math.IsNaN(b) {
		return "–"
	}
	return fmt.Sprintf("%.1f KiB", b/1024)
}

func num(x float64) string {
	if math.IsNaN(x) {
		return "–"
	}
	if x == math.Trunc(x) {
		return fmt.Sprintf("%.0f", x)
	}
	return fmt.Sprintf("%.1f", x)
}

func msf(s float64) string {
	if math.IsNaN(s) {
		return "–"
	}
	return fmt.Sprintf("%.1f", 1e3*s)
}

func (rep *report) coverage() string {
	var e estimate
	for _, rows := range rep.Rows {
		if len(rows) > 0 {
			e = rows[0].CPU
		}
	}
	if e.N == 0 {
		return ""
	}
	if e.Cover < 0.95 {
		return fmt.Sprintf("With %d rounds the widest such interval, [min, max], covers the median with probability %.1f%% only: run more rounds (-rounds 6 or more) for 95%%.", e.N, 100*e.Cover)
	}
	return fmt.Sprintf("With %d rounds the interval covers the median with probability %.1f%%.", e.N, 100*e.Cover)
}

func cadenceTitle(c string) string {
	if c == cadDefault {
		return "Product defaults"
	}
	return "Time-compressed cadence"
}

func cadenceText(c string) string {
	if c == cadDefault {
		return "pprofio: its `Config` defaults — a 10 s CPU profile every 60 s and a heap snapshot each cycle " +
			"(`pprofio-all` adds goroutine, mutex and block: every type) — uploading over TLS to the reference " +
			"receiver, with `StartJitter: -1` so the cycle starts at once and its whole 10-s CPU window falls inside " +
			"the run. One process therefore holds **one** cycle: its CPU window, its heap snapshot (at Stop) and one " +
			"batch. The in-run ratio packs that cycle into one short run, so it overstates the steady state (a " +
			"10-s window per 60 s) several times over; the steady-state column divides the cycle's extra CPU by " +
			"what the baseline spends in 60 s (process start and Stop included, so still an upper bound). " +
			"pyroscope-go: its defaults — CPU profiled without a break, uploads every 15 s (CPU and heap: " +
			"alloc/inuse objects and space) — over TLS to a counting sink; its in-run ratio is its steady state."
	}
	return "pprofio: a 6 s cycle with a 1 s CPU window (`SampleRate: 6s`; `CPUDuration` defaults to SampleRate/6): " +
		"the same CPU-window duty cycle as the product default, with every per-cycle cost (snapshots, deltas, " +
		"batch, upload) ten times as often, so they rise above the noise. A run of 12 s holds two cycles (more when the work takes longer). " +
		"pyroscope-go: `UploadRate: 6s` (CPU is profiled without a break at any rate, so only its per-upload " +
		"costs are multiplied). Both upper bounds for the product defaults."
}

func (rep *report) markdown() string {
	var b strings.Builder
	m := rep.Machine
	w := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	w("# pprofio overhead: pprofio vs no profiler vs pyroscope-go\n\n")
	w("| | |\n| --- | --- |\n")
	w("| machine | %d CPUs, %s; %s |\n", m.NProc, m.CPUModel, m.Kernel)
	w("| Go | %s |\n", m.GoVersion)
	w("| load average | %s at the start, %s at the end (1, 5, 15 min) |\n", m.LoadAvg, m.LoadAvgEnd)
	w("| date | %s; the run took %s |\n", m.Date, rep.Elapsed.Round(time.Second))
	w("| command | `%s` (in `tests/overhead`) |\n", rep.Command)
	w("| work per process | %d HTTP/JSON requests over %d loopback connections: sha256 hashing in 4 short-lived goroutines per request, sorting, a 34 MiB live cache under one mutex, ~%s allocated per request |\n",
		rep.Work, rep.Conc, kib(rep.Base.Allocs/float64(max(rep.Work, 1))))
	w("| baseline (median) | %.2f s wall for the work, %.2f s CPU (user+sys), peak RSS %s, live Go heap %s (%s at most); it kept %.2f CPUs busy (%.2f to %.2f over the rounds: on a quiet machine, all of them) |\n",
		rep.Base.Wall, rep.Base.CPU, mib(rep.Base.RSS), mib(rep.Base.HeapRunning), mib(rep.Base.HeapMax),
		rep.Base.Cores.Med, rep.Base.Cores.Lo, rep.Base.Cores.Hi)
	w("| rounds | %d; each round runs every variant at each cadence once, each a fresh process, in an order rotated every round; every figure is against the baseline of the same round |\n", rep.Rounds)
	w("\nIntervals are distribution-free 95%% confidence intervals of the median over rounds (order statistics). %s\n", rep.coverage())
	for _, warn := range rep.Warnings {
		w("\n**Warning:** %s\n", warn)
	}

	for _, c := range rep.Cadences {
		w("\n## %s\n\n%s\n\n", cadenceTitle(c), cadenceText(c))
		perMin := func(r row, x float64) float64 { return x * 60 / period(r.Variant, c).Seconds() }
		w("| variant | CPU vs baseline (in-run) | wall vs baseline | steady-state CPU overhead | cycles (uploads) per run | bytes sent per cycle | per minute at this cadence |\n")
		w("| --- | --- | --- | --- | --- | --- | --- |\n")
		w("| baseline | %.2f s | %.2f s | – | – | – | – |\n", rep.Base.CPU, rep.Base.Wall)
		for _, r := range rep.Rows[c] {
			w("| %s | %s | %s | %s | %s (%s) | %s | %s |\n", r.Variant, pct(r.CPU), pct(r.Wall), pct(r.Steady),
				num(r.Cycles), num(r.Uploads), kib(r.BytesPerCycle), kib(perMin(r, r.BytesPerCycle)))
		}
		w("\nMemory, against the same round's baseline:\n\n")
		w("| variant | peak RSS | resident anonymous / file-backed at the end of the work | OS threads | live Go heap: running / after Stop | Go heap allocated per cycle (per minute) |\n")
		w("| --- | --- | --- | --- | --- | --- |\n")
		w("| baseline | %s | %s / %s | %s | %s | %s in all |\n", mib(rep.Base.RSS), mib(rep.Base.Anon), mib(rep.Base.File),
			num(rep.Base.Threads), mib(rep.Base.HeapRunning), mib(rep.Base.Allocs))
		for _, r := range rep.Rows[c] {
			w("| %s | %s | %s / %s | %+.0f | %s / %s | %s (%s) |\n", r.Variant, dmib(r.DRSS), dmib(r.DAnon), dmib(r.DFile),
				r.DThreads, dkib(r.DHeapRun), dkib(r.DHeapStop), dmibShort(r.DAllocsCycle.Med), dmibShort(perMin(r, r.DAllocsCycle.Med)))
		}
		w("\nCPU per cycle (a pprofio cycle, per batch sent; for pyroscope-go, per %s upload period of the run's length):\n\n", period(varPyroscope, c))
		w("| variant | process CPU more than baseline | pprofio core threads: scheduler / output (of which deltas) / upload = total |\n")
		w("| --- | --- | --- |\n")
		for _, r := range rep.Rows[c] {
			core := "–"
			if !math.IsNaN(r.CoreTotal) {
				core = fmt.Sprintf("%s / %s (%s) / %s = %s ms", msf(r.CoreSched), msf(r.CoreOutput), msf(r.CoreDelta),
					msf(r.CoreUpload), msf(r.CoreTotal))
			}
			w("| %s | %s | %s |\n", r.Variant, msec(r.DCPUCycle), core)
		}
		if s, ok := rep.Spans[c]; ok {
			w("\nA span around every request: `pprofio-spans` (pprofio's defaults, every request of the service inside `pprofio.StartSpan`/`End`, %s spans per run) against `pprofio` in the same round: process CPU %s.\n",
				num(s.Spans), pct(s.CPU))
		}
		rep.costTable(w, c)
	}

	w("\n## How to read it\n\n")
	w("- **CPU** is the worker process's user+sys time from its rusage (the parent's wait4), for the whole process: the work, the runtime, the agent's Go side and the C core's threads, its start and Stop. **Wall** is the time the fixed work took. Both as the ratio to the same round's baseline, minus one.\n")
	w("- **Steady-state CPU overhead**: for pprofio, the extra process CPU per cycle divided by the CPU the baseline spends in one cycle period (60 s, or 6 s compressed); it charges the agent's start and Stop to the cycles of the run, so it is an upper bound. For pyroscope-go, which profiles CPU all the time, the in-run ratio.\n")
	w("- **Memory**: peak RSS is the worker's `ru_maxrss`. Resident anonymous and file-backed memory (`RssAnon`, `RssFile` in /proc/self/status) and the thread count are read at the end of the work with the profiler running: file-backed pages are the code of the shared libraries the profiler touches (libcurl and its TLS library for pprofio), shared with other processes; anonymous memory moves with the Go heap's own timing by a few MiB either way. **Live Go heap** is `/memory/classes/heap/objects:bytes` after two `runtime.GC()`: at the end of the work with the profiler running (larger if a CPU window is open then: runtime/pprof's CPU profile builder), and after its Stop. The workload's own live heap is the same in every variant (~%s), so the difference is the profiler's. **Go heap allocated** is `/gc/heap/allocs:bytes` more than the baseline, per cycle (pprofio: per batch; pyroscope-go, whose CPU profile never stops: per upload period of the run's length): garbage the profiler makes the collector deal with.\n", mib(rep.Base.HeapRunning))
	w("- **pprofio core threads** are the CPU clocks of the C core's threads from `Stats()` (`CPUScheduler`, `CPUOutput`, of which `CPUDelta`, `CPUUpload`), per batch sent. The rest of pprofio's extra process CPU is its Go side: runtime/pprof writing the profiles (the CPU profile's signal handling and encoding, the snapshots), the collector goroutine and its cgo calls. On a noisy machine the difference of two processes' CPU is far less precise than the core's own clocks.\n")
	w("- **runtime-cpu** is no agent at all: only `pprof.StartCPUProfile(io.Discard)` for pprofio's CPU window out of every cycle (10 s of 60 s; 1 s of 6 s compressed). It is the floor any CPU profiler at that duty cycle pays (SIGPROF handling, the runtime's profile writer), and it shows the artefact of this kind of workload: a profiled scheduler-heavy run can use *less* CPU than an unprofiled one, which is how a profiler can look cheaper than none.\n")
	w("- **Cost attributed to the agent** is measured on the agent's own threads, not as a difference of two processes: the collector goroutine's thread CPU clock around each command, by profile type (`runtime/pprof`'s `WriteTo`, `StartCPUProfile`, `StopCPUProfile`, the copy into C memory; the goroutine is locked to its thread), and the C core's threads (all types together: the heap, mutex and block deltas are in *output*). What this leaves out for the CPU type, the runtime's signal handling and profile writer, is the runtime-cpu row. Each is shown per cycle and as a share of one core over the cycle, next to the metrics matrix's budget for the product default (60 s).\n")
	w("- **Bytes sent per cycle**: pprofio's `Stats().BytesSent / BatchesSent` (one gzipped batch a cycle); pyroscope-go's request bodies received by the sink per upload period: the mean CPU-profile request plus the mean heap-profile request (two multipart requests a period). *Per minute* scales that to the cadence: one pprofio cycle a minute at product defaults, four pyroscope-go uploads.\n")
	w("- pprofio-all raises the mutex profile fraction (1 in 10) and the block profile rate (10 µs) during its window; the workload's mutex and its WaitGroups feed both.\n")
	if p := rep.Profile; p != nil {
		w("\n## Where pprofio-all's cost goes (compressed cadence)\n\n")
		w("A CPU profile of one more pprofio-all worker at the compressed cadence doing three times the work, for its whole run (`%s`, %d cycles). The process has one CPU profiler, so during this run pprofio skips its own CPU windows; runtime/pprof's cost of CPU profiling shows here at a 100%% duty cycle instead of 1/6. The C core's threads are not sampled by the Go profiler: their CPU is in the table above.\n\n", p.Path, p.Cycles)
		w("```\n%s```\n", p.Top)
	}
	return b.String()
}

// svg draws, for each profiler at each cadence, its CPU overhead in the
// run, its estimated steady-state CPU overhead and its wall-time overhead,
// each with its interval, in three panels with the 1% promise marked.
func (rep *report) svg() string {
	type item struct {
		label string
		est   [3]estimate
	}
	var items []item
	for _, c := range rep.Cadences {
		for _, r := range rep.Rows[c] {
			name := "product defaults"
			if c == cadCompressed {
				name = "compressed"
			}
			items = append(items, item{r.Variant + " · " + name, [3]estimate{r.CPU, r.Steady, r.Wall}})
		}
	}
	titles := [3]string{"process CPU, in the run", "CPU, steady state (estimate)", "wall time of the fixed work"}

	const (
		labelW = 210
		panelW = 270
		gap    = 36
		rowH   = 26
		top    = 74
		right  = 40
	)
	height := top + rowH*len(items) + 62
	width := labelW + 3*panelW + 2*gap + right
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	w(`<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">`+"\n", width, height, width, height)
	w(`<rect width="100%%" height="100%%" fill="white"/>` + "\n")
	cover := "95%"
	for _, it := range items {
		if e := it.est[0]; e.N > 0 && e.Cover < 0.95 {
			cover = fmt.Sprintf("%.1f%% ([min, max])", 100*e.Cover)
		}
	}
	w(`<text x="10" y="20" font-size="15" font-weight="bold">pprofio and pyroscope-go vs no profiler: overhead, median and %s interval over %d rounds</text>`+"\n", cover, rep.Rounds)
	w(`<text x="10" y="38" fill="#555">%s; %d CPUs; %s; %d requests per process; load average %s → %s</text>`+"\n",
		html.EscapeString(rep.Machine.CPUModel), rep.Machine.NProc, html.EscapeString(rep.Machine.GoVersion),
		rep.Work, rep.Machine.LoadAvg, rep.Machine.LoadAvgEnd)
	plotH := rowH * len(items)
	for p, title := range titles {
		// Each panel has its own range: every interval, 0 and +1%.
		lo, hi := -0.005, 0.015
		for _, it := range items {
			if e := it.est[p]; !math.IsNaN(e.Lo) {
				lo, hi = math.Min(lo, e.Lo), math.Max(hi, e.Hi)
			}
		}
		span := hi - lo
		lo, hi = lo-0.06*span, hi+0.06*span
		x0 := float64(labelW + p*(panelW+gap))
		xof := func(v float64) float64 { return x0 + (v-lo)/(hi-lo)*panelW }
		w(`<text x="%.1f" y="%d" text-anchor="middle" font-weight="bold">%s</text>`+"\n", x0+panelW/2, top-22, title)
		w(`<rect x="%.1f" y="%d" width="%d" height="%d" fill="none" stroke="#bbb"/>`+"\n", x0, top, panelW, plotH)
		step := niceStep(100 * (hi - lo) / 5)
		for t := math.Ceil(100*lo/step) * step; t <= 100*hi; t += step {
			x := xof(t / 100)
			w(`<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#eee"/>`+"\n", x, top, x, top+plotH)
			w(`<text x="%.1f" y="%d" text-anchor="middle" fill="#555">%s%%</text>`+"\n", x, top+plotH+16, trimFloat(t))
		}
		w(`<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="black"/>`+"\n", xof(0), top, xof(0), top+plotH)
		w(`<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#c00" stroke-dasharray="4 3"/>`+"\n", xof(0.01), top, xof(0.01), top+plotH)
		w(`<text x="%.1f" y="%d" text-anchor="middle" fill="#c00" font-size="10">1%%</text>`+"\n", xof(0.01), top-4)
		for i, it := range items {
			y := float64(top + rowH*i + rowH/2)
			if p == 0 {
				w(`<text x="%d" y="%.1f" text-anchor="end" dominant-baseline="middle">%s</text>`+"\n", labelW-10, y, html.EscapeString(it.label))
			}
			e := it.est[p]
			if math.IsNaN(e.Med) {
				continue
			}
			color := "#1f6fb4"
			if strings.HasPrefix(it.label, varPyroscope) {
				color = "#d9822b"
			} else if strings.HasPrefix(it.label, varRuntimeCPU) {
				color = "#777"
			}
			w(`<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="%s" stroke-width="2"/>`+"\n", xof(e.Lo), y, xof(e.Hi), y, color)
			for _, xv := range []float64{e.Lo, e.Hi} {
				w(`<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="%s" stroke-width="2"/>`+"\n", xof(xv), y-5, xof(xv), y+5, color)
			}
			w(`<circle cx="%.1f" cy="%.1f" r="4" fill="%s"/>`+"\n", xof(e.Med), y, color)
			w(`<text x="%.1f" y="%.1f" font-size="10" fill="#333">%+.2f%%</text>`+"\n", xof(e.Med)+6, y-6, 100*e.Med)
		}
	}
	w(`<text x="10" y="%d" fill="#555">Each process does the same fixed work; every figure is against the same round's baseline. At product defaults a run holds one whole</text>`+"\n", height-26)
	w(`<text x="10" y="%d" fill="#555">pprofio cycle (10-s CPU window) in a short run, so the in-run figure overstates its steady state; pyroscope-go profiles CPU all the time. See latest.md.</text>`+"\n", height-10)
	w("</svg>\n")
	return b.String()
}

// niceStep rounds a tick step (in percent) to 1, 2 or 5 times a power of ten.
func niceStep(raw float64) float64 {
	if raw <= 0 || math.IsNaN(raw) {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(raw)))
	for _, m := range []float64{1, 2, 5, 10} {
		if raw <= m*p {
			return m * p
		}
	}
	return 10 * p
}

func trimFloat(v float64) string {
	if math.Abs(v) < 1e-9 {
		return "0"
	}
	s := fmt.Sprintf("%.2f", v)
	s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	return s
}
