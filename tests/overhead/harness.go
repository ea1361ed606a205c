package main

// The harness: it runs the reference ingest receiver (for pprofio) and a
// small sink (for pyroscope-go) in this process, both over TLS on loopback,
// then runs the workers, each a fresh copy of this program, round after
// round, and measures each one's CPU time, wall time and peak RSS.

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/pprofio/pprofio"
	"github.com/pprofio/pprofio/examples/ingest-server/receiver"
)

const apiKey = "overhead-bench-key"

// profilerFrames matches the frames of profiler code in a CPU profile.
const profilerFrames = `pprofio|runtime/pprof|runtime\.cgocall|pyroscope|godeltaprof`

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
}

// run is one worker's measurement.
type run struct {
	Round   int    `json:"round"`
	Order   int    `json:"order"` // position in its round
	Variant string `json:"variant"`
	Cadence string `json:"cadence"`

	CPUUser float64 `json:"cpu_user_s"`
	CPUSys  float64 `json:"cpu_sys_s"`
	MaxRSS  int64   `json:"max_rss_bytes"`
	Wall    float64 `json:"process_wall_s"`

	// What the parent received from it.
	IngestRequests int64 `json:"ingest_requests,omitempty"`
	IngestBytes    int64 `json:"ingest_bytes,omitempty"`
	SinkRequests   int64 `json:"sink_requests,omitempty"`
	SinkCPUUploads int64 `json:"sink_cpu_uploads,omitempty"`
	SinkCPUBytes   int64 `json:"sink_cpu_bytes,omitempty"`
	SinkBytes      int64 `json:"sink_bytes,omitempty"`
	Non200         int64 `json:"non_200,omitempty"`

	Worker workerResult `json:"worker"`
}

func (r *run) cpu() float64 { return r.CPUUser + r.CPUSys }

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

// counters count what arrives at the receiver and the sink.
type counters struct {
	ingestRequests, ingestBytes atomic.Int64
	sinkRequests, sinkBytes     atomic.Int64
	sinkCPU, sinkCPUBytes       atomic.Int64
	non200                      atomic.Int64
}

func (c *counters) reset() {
	for _, v := range []*atomic.Int64{&c.ingestRequests, &c.ingestBytes, &c.sinkRequests,
		&c.sinkBytes, &c.sinkCPU, &c.sinkCPUBytes, &c.non200} {
		v.Store(0)
	}
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
	if f.rounds < 1 || f.work < 1 || f.conc < 1 {
		fmt.Fprintln(os.Stderr, "overhead: -rounds, -work and -conc must be positive")
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
		Elapsed: elapsed, Variants: variants, Cadences: h.cadences(), Profile: prof}
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

// runMeta is what a report needs besides the runs; kept in meta.json so
// that -render can redo the report from a run's files.
type runMeta struct {
	Machine      machine
	Command      string
	Rounds, Work int
	Conc         int
	Elapsed      time.Duration
	Variants     []string
	Cadences     []string
	Profile      *profileResult
}

func writeJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

// writeReport analyses runs, prints the Markdown report and writes it and
// the chart into dir.
func writeReport(dir string, meta *runMeta, runs []*run) error {
	rep := analyse(runs, meta.Variants, meta.Cadences)
	rep.Machine, rep.Command = meta.Machine, meta.Command
	rep.Rounds, rep.Work, rep.Conc = meta.Rounds, meta.Work, meta.Conc
	rep.Elapsed, rep.Profile = meta.Elapsed, meta.Profile
	if rep.Base.Wall < pprofioDefaultCPUWindow.Seconds()+0.5 && contains(meta.Cadences, cadDefault) {
		rep.Warnings = append(rep.Warnings, fmt.Sprintf("The baseline's work took %.1f s: at product defaults "+
			"pprofio's 10-s CPU window needs the run to last longer than that, and a window that Stop cuts short "+
			"is cheaper than a whole one. Raise -work until the baseline takes 11 s or more.", rep.Base.Wall))
	}
	if n := float64(meta.Machine.NProc); rep.Base.Cores.Med < 0.9*n && rep.Base.Wall > 5 {
		rep.Warnings = append(rep.Warnings, fmt.Sprintf("The machine was not quiet: the baseline kept %.2f of its "+
			"%.0f CPUs busy on median (%.2f to %.2f over the rounds); the fixed work alone keeps all of them busy. "+
			"Other load competed for the CPUs, so the wall times in the tables are mostly that load, and the CPU times "+
			"vary with it too (shared caches and cores). Rerun on a quiet machine.", rep.Base.Cores.Med, n,
			rep.Base.Cores.Lo, rep.Base.Cores.Hi))
	}
	if msg := deliveryProblems(runs); msg != "" {
		rep.Warnings = append(rep.Warnings, msg)
	}
	md := rep.markdown()
	fmt.Print(md)
	if err := os.WriteFile(filepath.Join(dir, "latest.md"), []byte(md), 0o644); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "overhead.svg"), []byte(rep.svg()), 0o644)
}

// deliveryProblems says which runs did not deliver everything they made.
func deliveryProblems(runs []*run) string {
	var bad []string
	for _, r := range runs {
		var why string
		switch s := r.Worker.Pprofio; {
		case r.Non200 > 0:
			why = fmt.Sprintf("%d uploads not answered 200", r.Non200)
		case s != nil && s.BatchesSent == 0:
			why = "no batch delivered"
		case s != nil && s.ProfilesDroppedMemory+s.ProfilesDroppedInvalid+s.ProfilesDroppedNoSink+
			s.ProfilesDroppedUpload+s.BatchesDroppedRejected+s.BatchesDroppedSpool > 0:
			why = "profiles or batches dropped"
		case r.Variant == varPyroscope && r.SinkRequests == 0:
			why = "nothing uploaded"
		}
		if why != "" {
			bad = append(bad, fmt.Sprintf("round %d %s/%s: %s", r.Round+1, r.Variant, r.Cadence, why))
		}
	}
	if len(bad) == 0 {
		return ""
	}
	return "Some runs did not deliver everything (see runs.jsonl): " + strings.Join(bad, "; ") + "."
}

// render redoes the report of an earlier run from its runs.jsonl and
// meta.json.
func render(dir string) error {
	var meta runMeta
	b, err := os.ReadFile(filepath.Join(dir, "meta.json"))
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, &meta); err != nil {
		return fmt.Errorf("meta.json: %w", err)
	}
	b, err = os.ReadFile(filepath.Join(dir, "runs.jsonl"))
	if err != nil {
		return err
	}
	var runs []*run
	for _, line := range bytes.Split(bytes.TrimSpace(b), []byte("\n")) {
		r := new(run)
		if err := json.Unmarshal(line, r); err != nil {
			return fmt.Errorf("runs.jsonl: %w", err)
		}
		runs = append(runs, r)
	}
	return writeReport(dir, &meta, runs)
}

// pprofioDefaultCPUWindow is pprofio's DefaultCPUDuration.
const pprofioDefaultCPUWindow = pprofio.DefaultCPUDuration

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

// startServers starts the ingest receiver and the pyroscope sink, both
// over TLS with one throwaway CA, written to caFile for the workers.
func (h *harness) startServers() error {
	ss, err := receiver.GenerateSelfSigned()
	if err != nil {
		return err
	}
	h.caFile = filepath.Join(h.tmp, "ca.pem")
	if err := os.WriteFile(h.caFile, ss.CAPEM, 0o600); err != nil {
		return err
	}
	h.recv, err = receiver.New(receiver.Options{DataDir: filepath.Join(h.tmp, "received"), APIKeys: []string{apiKey}})
	if err != nil {
		return err
	}
	h.ingest = httptest.NewUnstartedServer(h.countIngest(h.recv))
	h.ingest.TLS = &tls.Config{Certificates: []tls.Certificate{ss.Leaf}}
	h.ingest.StartTLS()

	h.sink = httptest.NewUnstartedServer(http.HandlerFunc(h.serveSink))
	h.sink.TLS = &tls.Config{Certificates: []tls.Certificate{ss.Leaf}}
	h.sink.StartTLS()
	return nil
}

func (h *harness) stopServers() {
	h.recv.Close()
	h.ingest.Close()
	h.sink.Close()
}

// statusWriter remembers the status a handler answered.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	w.status = code
	w.ResponseWriter.WriteHeader(code)
}

// countingBody counts the bytes read from a request body.
type countingBody struct {
	io.ReadCloser
	n *atomic.Int64
}

func (b countingBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.n.Add(int64(n))
	return n, err
}

// countIngest counts the requests and body bytes the receiver gets.
func (h *harness) countIngest(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.counts.ingestRequests.Add(1)
		r.Body = countingBody{r.Body, &h.counts.ingestBytes}
		sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
		next.ServeHTTP(sw, r)
		if sw.status != http.StatusOK {
			h.counts.non200.Add(1)
		}
	})
}

// serveSink is the pyroscope sink: POST /ingest, count the body, 200.
func (h *harness) serveSink(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || r.URL.Path != "/ingest" {
		h.counts.non200.Add(1)
		http.NotFound(w, r)
		return
	}
	n, _ := io.Copy(io.Discard, r.Body)
	h.counts.sinkRequests.Add(1)
	h.counts.sinkBytes.Add(n)
	// One upload period sends one CPU profile (name carries the SDK's
	// scope, "…/go"), and the heap profile separately (the godeltaprof
	// scope, "…/godeltaprof").
	if !strings.Contains(r.URL.Query().Get("name"), "godeltaprof") {
		h.counts.sinkCPU.Add(1)
		h.counts.sinkCPUBytes.Add(n)
	}
	w.WriteHeader(http.StatusOK)
}

// runWorker runs one worker process and measures it.
func (h *harness) runWorker(s slot, requests int, cpuProfile string) (*run, error) {
	spool, err := os.MkdirTemp(h.tmp, "spool-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(spool)
	cadence := s.cadence
	if cadence == "-" {
		cadence = cadCompressed // unused by the baseline
	}
	args := []string{"-worker",
		"-variant", s.variant, "-cadence", cadence,
		"-requests", fmt.Sprint(requests), "-conc", fmt.Sprint(h.f.conc),
		"-ingest-url", h.ingest.URL, "-ca-file", h.caFile, "-api-key", apiKey,
		"-spool-dir", spool, "-sink-url", h.sink.URL,
	}
	if cpuProfile != "" {
		args = append(args, "-cpuprofile", cpuProfile)
	}
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(h.self, args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	// A worker never outlives the harness. Pdeathsig follows the thread
	// that started the worker, so keep that thread until it has exited.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	h.counts.reset()
	t0 := time.Now()
	err = cmd.Run()
	wall := time.Since(t0)
	if msg := strings.TrimSpace(stderr.String()); msg != "" {
		fmt.Fprintf(os.Stderr, "overhead: %s/%s said:\n%s\n", s.variant, s.cadence, indent(msg))
	}
	if err != nil {
		return nil, err
	}
	ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	if !ok {
		return nil, errors.New("no rusage for the worker")
	}
	rn := &run{
		Variant: s.variant, Cadence: s.cadence,
		CPUUser: tvSeconds(ru.Utime), CPUSys: tvSeconds(ru.Stime),
		MaxRSS:         ru.Maxrss << 10, // KiB on Linux
		Wall:           wall.Seconds(),
		IngestRequests: h.counts.ingestRequests.Load(), IngestBytes: h.counts.ingestBytes.Load(),
		SinkRequests: h.counts.sinkRequests.Load(), SinkBytes: h.counts.sinkBytes.Load(),
		SinkCPUUploads: h.counts.sinkCPU.Load(), SinkCPUBytes: h.counts.sinkCPUBytes.Load(),
		Non200: h.counts.non200.Load(),
	}
	line := lastLine(stdout.Bytes())
	if err := json.Unmarshal(line, &rn.Worker); err != nil {
		return nil, fmt.Errorf("worker output %q: %w", line, err)
	}
	if h.f.verbose {
		fmt.Fprintf(os.Stderr, "%s\n", line)
	}
	if rn.Worker.Failed > 0 {
		return nil, fmt.Errorf("%d requests failed", rn.Worker.Failed)
	}
	if rn.Non200 > 0 {
		fmt.Fprintf(os.Stderr, "overhead: %s/%s: %d uploads were not answered 200\n", s.variant, s.cadence, rn.Non200)
	}
	return rn, nil
}

func indent(s string) string {
	return "    " + strings.ReplaceAll(s, "\n", "\n    ")
}

func lastLine(b []byte) []byte {
	lines := bytes.Split(bytes.TrimSpace(b), []byte("\n"))
	return lines[len(lines)-1]
}

func writeRuns(path string, runs []*run) error {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	for _, r := range runs {
		if err := enc.Encode(r); err != nil {
			return err
		}
	}
	return os.WriteFile(path, buf.Bytes(), 0o644)
}

// machine describes where the benchmark ran.
type machine struct {
	NProc      int
	CPUModel   string
	GoVersion  string
	Kernel     string
	LoadAvg    string // at the start
	LoadAvgEnd string
	Date       string
}

func machineInfo() machine {
	m := machine{
		NProc:     runtime.NumCPU(),
		CPUModel:  "unknown",
		GoVersion: runtime.Version() + " " + runtime.GOOS + "/" + runtime.GOARCH,
		LoadAvg:   loadAvg(),
		Date:      time.Now().UTC().Format("2006-01-02 15:04 UTC"),
	}
	if f, err := os.Open("/proc/cpuinfo"); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPUModel = strings.TrimSpace(v)
				break
			}
		}
		f.Close()
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = "Linux " + strings.TrimSpace(string(b))
	}
	return m
}

func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

// profileResult is the CPU profile of one pprofio-all compressed worker.
type profileResult struct {
	Path   string
	Top    string // go tool pprof -top, whole and focused on profiler frames
	Run    *run
	Cycles int // batches the worker sent
}

// profileWorker runs one more pprofio-all worker at the compressed
// cadence, with three times the work and a CPU profile of its whole run,
// and summarises it with go tool pprof -top. The process has one CPU
// profiler: while this
// profile runs, pprofio skips its own CPU windows (and says so), so the
// profile shows everything else the agent does, while runtime/pprof's own
// cost of CPU profiling appears at a 100% duty cycle instead of 1/6.
func (h *harness) profileWorker() (*profileResult, error) {
	if err := os.MkdirAll(h.f.outDir, 0o755); err != nil {
		return nil, err
	}
	path := filepath.Join(h.f.outDir, "pprofio-all-compressed.cpu.pb.gz")
	fmt.Fprintln(os.Stderr, "overhead: profiling a pprofio-all compressed worker")
	// Three times the work: more samples, more cycles.
	rn, err := h.runWorker(slot{varPprofioAll, cadCompressed}, 3*h.f.work, path)
	if err != nil {
		return nil, err
	}
	// The whole profile, then only the stacks that go through a profiler
	// (pprofio's Go side, runtime/pprof, cgo calls into the core).
	var top bytes.Buffer
	for _, extra := range [][]string{{"-nodecount=15"}, {"-nodecount=60", "-focus", profilerFrames}} {
		args := append([]string{"tool", "pprof", "-top"}, extra...)
		out, err := exec.Command("go", append(args, h.self, path)...).CombinedOutput()
		if err != nil {
			return nil, fmt.Errorf("go tool pprof: %v: %s", err, out)
		}
		fmt.Fprintf(&top, "$ go tool pprof %s\n%s\n", strings.Join(args[2:], " "), out)
	}
	if err := os.WriteFile(filepath.Join(h.f.outDir, "profile-top.txt"), top.Bytes(), 0o644); err != nil {
		return nil, err
	}
	res := &profileResult{Path: path, Top: top.String(), Run: rn}
	if s := rn.Worker.Pprofio; s != nil {
		res.Cycles = int(s.BatchesSent)
	}
	return res, nil
}
