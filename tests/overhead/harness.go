package main

// The harness: it runs the reference ingest receiver (for pprofio) and a
// small sink (for pyroscope-go) in this process, both over TLS on loopback
// (servers.go), then runs the workers, each a fresh copy of this program,
// round after round (this file: the flags and the round scheduler), measures
// each one's CPU time, wall time and peak RSS (launch.go), and writes the
// runs and the report (results.go).

import (
	"flag"
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/pprofio/pprofio/examples/ingest-server/receiver"
)

const apiKey = "overhead-bench-key"

type harnessFlags struct {
	rounds     int
	work       int
	conc       int
	cadence    string
	compressed bool
	variants   string
	outDir     string
	profile    bool
	keep       bool
	verbose    bool
	spanPairs  int // the paired span measurement (paired.go), when pprofio-spans runs
	spanBlock  int
	spanNull   bool
	spanFloor  bool
	spanInReq  bool
}

type harness struct {
	f       harnessFlags
	self    string
	tmp     string
	caFile  string
	ingest  *httptest.Server
	recv    *receiver.Server
	sink    *httptest.Server
	counts  counters
	started time.Time
}

func harnessMain(args []string) int {
	fs := flag.NewFlagSet("overhead", flag.ContinueOnError)
	var f harnessFlags
	fs.IntVar(&f.rounds, "rounds", 6, "rounds; each runs every variant once at each cadence, in a rotating order")
	fs.IntVar(&f.work, "work", 80000, "requests per worker process: the fixed work")
	fs.IntVar(&f.conc, "conc", 8, "client connections in the worker")
	fs.StringVar(&f.cadence, "cadence", "both", "both, default (product defaults) or compressed")
	fs.BoolVar(&f.compressed, "compressed", false, "only the time-compressed cadence (same as -cadence compressed)")
	fs.StringVar(&f.variants, "variants", strings.Join(allVariants, ","), "variants to run (baseline is always run)")
	fs.StringVar(&f.outDir, "out", "results", "folder for latest.md, overhead.svg and runs.jsonl")
	fs.BoolVar(&f.profile, "profile", false, "after the rounds, take a CPU profile of a pprofio-all compressed worker (see README)")
	fs.BoolVar(&f.keep, "keep", false, "keep the temporary folder (received profiles, spool folders)")
	fs.BoolVar(&f.verbose, "v", false, "print each worker's JSON line")
	fs.IntVar(&f.spanPairs, "span-pairs", 1000, "pairs of blocks of the paired span measurement, run when pprofio-spans is a variant (0: none)")
	fs.BoolVar(&f.spanInReq, "span-in-request", false, "the paired span measurement puts the span's context in the request (r.WithContext), as a middleware does, instead of handing it down as an argument")
	fs.BoolVar(&f.spanFloor, "span-floor", false, "the paired span measurement's floor: a context value carried into each request (context.WithValue, r.WithContext) instead of a span, the least a span middleware costs")
	fs.BoolVar(&f.spanNull, "span-null", false, "calibrate the paired span measurement: no spans in either block of a pair, so its difference must be 0 within its interval")
	fs.IntVar(&f.spanBlock, "span-block", 200, "requests per block of the paired span measurement (keep 4 blocks under the live heap in bytes allocated: the collector runs once per 4)")
	renderDir := fs.String("render", "", "redo the report (latest.md, overhead.svg) of an earlier run from its folder, without running anything")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *renderDir != "" {
		if err := render(*renderDir); err != nil {
			fmt.Fprintln(os.Stderr, "overhead:", err)
			return 1
		}
		return 0
	}
	if f.compressed {
		f.cadence = cadCompressed
	}
	if f.rounds < 0 || f.work < 1 || f.conc < 1 || f.spanPairs < 0 || f.spanBlock < 1 {
		fmt.Fprintln(os.Stderr, "overhead: -work, -conc and -span-block must be positive, -rounds and -span-pairs not negative")
		return 2
	}
	switch f.cadence {
	case "both", cadDefault, cadCompressed:
	default:
		fmt.Fprintf(os.Stderr, "overhead: -cadence %q: want both, default or compressed\n", f.cadence)
		return 2
	}
	h := &harness{f: f}
	if err := h.run(args); err != nil {
		fmt.Fprintln(os.Stderr, "overhead:", err)
		return 1
	}
	return 0
}

func (h *harness) cadences() []string {
	switch h.f.cadence {
	case cadDefault:
		return []string{cadDefault}
	case cadCompressed:
		return []string{cadCompressed}
	}
	return []string{cadCompressed, cadDefault}
}

func (h *harness) variants() ([]string, error) {
	out := []string{varBaseline}
	for _, v := range strings.Split(h.f.variants, ",") {
		v = strings.TrimSpace(v)
		switch v {
		case varBaseline, "":
		case varRuntimeCPU, varPprofio, varPprofioAll, varPyroscope, varPprofioSpans:
			out = append(out, v)
		default:
			return nil, fmt.Errorf("unknown variant %q (baseline, runtime-cpu, pprofio, pprofio-all, pyroscope, pprofio-spans)", v)
		}
	}
	return out, nil
}

// slot is one worker of a round.
type slot struct{ variant, cadence string }

// roundSlots lists a round's workers: baseline once (the cadence does not
// apply to it), then each profiler at each cadence.
func (h *harness) roundSlots(variants []string) []slot {
	slots := []slot{{varBaseline, "-"}}
	for _, c := range h.cadences() {
		for _, v := range variants[1:] {
			slots = append(slots, slot{v, c})
		}
	}
	return slots
}

func (h *harness) run(args []string) error {
	variants, err := h.variants()
	if err != nil {
		return err
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	h.self = self
	if h.tmp, err = os.MkdirTemp("", "pprofio-overhead-"); err != nil {
		return err
	}
	if !h.f.keep {
		defer os.RemoveAll(h.tmp)
	} else {
		fmt.Fprintln(os.Stderr, "overhead: keeping", h.tmp)
	}
	if err := h.startServers(); err != nil {
		return err
	}
	defer h.stopServers()

	m := machineInfo()
	slots := h.roundSlots(variants)
	fmt.Fprintf(os.Stderr, "overhead: %d rounds x %d workers of %d requests each; %s, %d CPUs, %s, load %s\n",
		h.f.rounds, len(slots), h.f.work, m.CPUModel, m.NProc, m.GoVersion, m.LoadAvg)
	h.started = time.Now()

	// One unmeasured worker first: page the binary in, warm the caches.
	if _, err := h.runWorker(slot{varBaseline, "-"}, max(h.f.work/10, 1000), ""); err != nil {
		return fmt.Errorf("warm-up: %w", err)
	}

	var runs []*run
	for r := range h.f.rounds {
		// Rotate the order each round so no variant always runs first or
		// right after another.
		for i := range slots {
			s := slots[(i+r)%len(slots)]
			rn, err := h.runWorker(s, h.f.work, "")
			if err != nil {
				return fmt.Errorf("round %d, %s/%s: %w", r+1, s.variant, s.cadence, err)
			}
			rn.Round, rn.Order = r, i
			runs = append(runs, rn)
			fmt.Fprintf(os.Stderr, "round %d/%d  %-12s %-10s  wall %6.2fs  cpu %6.2fs  rss %4d MiB  heap %5.1f MiB%s\n",
				r+1, h.f.rounds, s.variant, s.cadence, rn.Worker.WorkWall, rn.cpu(), rn.MaxRSS>>20,
				float64(rn.Worker.HeapRunning)/(1<<20), uploadNote(rn))
		}
	}
	var paired *pairedResult
	if contains(variants, varPprofioSpans) && h.f.spanPairs > 0 {
		if paired, err = h.runPairedWorker(); err != nil {
			return fmt.Errorf("paired span measurement: %w", err)
		}
	}
	if len(runs) == 0 && paired == nil {
		return fmt.Errorf("nothing ran: -rounds 0 runs only the paired span measurement (-variants pprofio-spans, -span-pairs > 0)")
	}

	m.LoadAvgEnd = loadAvg()
	elapsed := time.Since(h.started)

	var prof *profileResult
	if h.f.profile {
		if prof, err = h.profileWorker(); err != nil {
			return fmt.Errorf("profile: %w", err)
		}
	}

	if err := os.MkdirAll(h.f.outDir, 0o755); err != nil {
		return err
	}
	if err := writeRuns(filepath.Join(h.f.outDir, "runs.jsonl"), runs); err != nil {
		return err
	}
	meta := &runMeta{Machine: m, Command: commandLine(args), Rounds: h.f.rounds, Work: h.f.work, Conc: h.f.conc,
		Elapsed: elapsed, Variants: variants, Cadences: h.cadences(), Profile: prof,
		Paired: paired, SpanBlock: h.f.spanBlock}
	if err := writeJSON(filepath.Join(h.f.outDir, "meta.json"), meta); err != nil {
		return err
	}
	if err := writeReport(h.f.outDir, meta, runs); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "overhead: wrote latest.md, overhead.svg, runs.jsonl and meta.json in %s in %s\n",
		h.f.outDir, time.Since(h.started).Round(time.Second))
	return nil
}

func contains(xs []string, x string) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}

func uploadNote(r *run) string {
	switch {
	case r.Worker.Pprofio != nil:
		s := r.Worker.Pprofio
		return fmt.Sprintf("  batches %d (%d B)  core %.0f ms", s.BatchesSent, s.BytesSent,
			ms(s.CPUScheduler+s.CPUOutput+s.CPUUpload))
	case r.Variant == varPyroscope:
		return fmt.Sprintf("  uploads %d (%d B)", r.SinkRequests, r.SinkBytes)
	}
	return ""
}

func ms(d time.Duration) float64 { return float64(d) / 1e6 }

func commandLine(args []string) string {
	parts := []string{"go run ."}
	for _, a := range args {
		if strings.ContainsAny(a, " \t'\"") {
			a = "'" + a + "'"
		}
		parts = append(parts, a)
	}
	return strings.Join(parts, " ")
}
