package main

// Launching and measuring one worker: a fresh copy of this program per
// run, its CPU time, wall time and peak RSS from the kernel (rusage), what
// the servers received from it, and its own JSON line; and the one extra
// worker run under a CPU profile (-profile).

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"
)

// profilerFrames matches the frames of profiler code in a CPU profile.
const profilerFrames = `pprofio|runtime/pprof|runtime\.cgocall|pyroscope|godeltaprof`

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
	h.counts.reset()
	stdout, ps, wall, err := h.execWorker(s.variant+"/"+s.cadence, args)
	if err != nil {
		return nil, err
	}
	ru, ok := ps.SysUsage().(*syscall.Rusage)
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
	line := lastLine(stdout)
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

// execWorker runs this program as a worker with args, echoes what it
// wrote to stderr under name, and returns its stdout, its exit state and
// its wall time.
func (h *harness) execWorker(name string, args []string) ([]byte, *os.ProcessState, time.Duration, error) {
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(h.self, args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	// A worker never outlives the harness. Pdeathsig follows the thread
	// that started the worker, so keep that thread until it has exited.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	t0 := time.Now()
	err := cmd.Run()
	wall := time.Since(t0)
	if msg := strings.TrimSpace(stderr.String()); msg != "" {
		fmt.Fprintf(os.Stderr, "overhead: %s said:\n%s\n", name, indent(msg))
	}
	return stdout.Bytes(), cmd.ProcessState, wall, err
}

func indent(s string) string {
	return "    " + strings.ReplaceAll(s, "\n", "\n    ")
}

func lastLine(b []byte) []byte {
	lines := bytes.Split(bytes.TrimSpace(b), []byte("\n"))
	return lines[len(lines)-1]
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
