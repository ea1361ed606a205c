package main

// The worker: one fresh process per measurement. It starts the variant's
// profiler (or none), runs the fixed work, stops the profiler, and prints
// one JSON line (workerResult) on standard output. The parent measures the
// process's CPU time and peak RSS from its rusage.

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"runtime"
	"runtime/metrics"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/grafana/pyroscope-go"
	"github.com/pprofio/pprofio"
	"github.com/pprofio/pprofio/internal/collector"
)

// The variants, in the order of a round.
const (
	varBaseline   = "baseline"
	varPprofio    = "pprofio"
	varPprofioAll = "pprofio-all"
	varPyroscope  = "pyroscope"
	// pprofio with its defaults and a span around every request.
	varPprofioSpans = "pprofio-spans"
	// Only the runtime's CPU profiler, at pprofio's duty cycle, to
	// io.Discard: the floor of any CPU profiler's cost.
	varRuntimeCPU = "runtime-cpu"
)

var allVariants = []string{varBaseline, varRuntimeCPU, varPprofio, varPprofioAll, varPyroscope, varPprofioSpans}

// The cadences.
const (
	cadDefault    = "default"    // product defaults
	cadCompressed = "compressed" // time-compressed
)

// Cadence settings.
const (
	// Compressed: pprofio's cycle is 6 s, so its CPU window is 1 s
	// (CPUDuration defaults to SampleRate/6 below 60 s): the same duty
	// cycle as 10 s every 60 s, with the per-cycle costs ten times as often.
	compressedSampleRate = 6 * time.Second
	// pyroscope-go profiles CPU without a break; its upload period is its
	// cycle. Its own default is 15 s.
	compressedUploadRate = 6 * time.Second
	defaultPyroscopeRate = 15 * time.Second
)

// workerResult is what a worker reports on its one line of output.
type workerResult struct {
	Variant  string `json:"variant"`
	Cadence  string `json:"cadence"`
	Requests int    `json:"requests"`
	Failed   int64  `json:"failed"`
	Digest   string `json:"digest"` // the same for the same work in every variant

	WorkWall    float64 `json:"work_wall_s"`   // the fixed work, wall clock
	AgentStart  float64 `json:"agent_start_s"` // New + Start
	AgentStop   float64 `json:"agent_stop_s"`  // Stop (last snapshot, last upload)
	SelfCPU     float64 `json:"self_cpu_s"`    // rusage of itself before printing (cross-check)
	HeapMax     uint64  `json:"heap_max"`      // max of heap objects bytes, sampled every 50 ms
	HeapRunning uint64  `json:"heap_running"`  // live heap after the work, profiler still running (after GC)
	HeapStopped uint64  `json:"heap_stopped"`  // live heap after the profiler's Stop (after GC)
	Allocs      uint64  `json:"alloc_bytes"`   // Go heap bytes allocated over the whole run
	GCs         uint64  `json:"gc_cycles"`     // completed GC cycles
	// /proc/self/status at the end of the work, profiler running (bytes).
	RSSAnon uint64 `json:"rss_anon"` // anonymous memory: heaps (Go and C), stacks
	RSSFile uint64 `json:"rss_file"` // file-backed pages: the binary and shared libraries
	Threads int    `json:"threads"`  // OS threads

	Pprofio *pprofio.Stats `json:"pprofio,omitempty"`
	// pprofio: the collector goroutine's CPU by profile type.
	Collector map[string]collector.Cost `json:"collector,omitempty"`
	Windows   int                       `json:"cpu_windows,omitempty"` // runtime-cpu: CPU windows started
}

type workerFlags struct {
	variant, cadence string
	requests, conc   int
	ingestURL        string
	caFile, apiKey   string
	spoolDir         string
	sinkURL          string
	cpuProfile       string
	inRequest        bool
}

func workerMain(args []string) int {
	fs := flag.NewFlagSet("worker", flag.ContinueOnError)
	var f workerFlags
	fs.StringVar(&f.variant, "variant", varBaseline, "baseline, runtime-cpu, pprofio, pprofio-all, pyroscope or pprofio-spans")
	fs.StringVar(&f.cadence, "cadence", cadCompressed, "default or compressed")
	fs.IntVar(&f.requests, "requests", 1000, "requests of the fixed work")
	fs.IntVar(&f.conc, "conc", 8, "client connections")
	fs.StringVar(&f.ingestURL, "ingest-url", "", "pprofio IngestURL")
	fs.StringVar(&f.caFile, "ca-file", "", "CA of the ingest receiver and of the pyroscope sink")
	fs.StringVar(&f.apiKey, "api-key", "", "pprofio APIKey")
	fs.StringVar(&f.spoolDir, "spool-dir", "", "pprofio SpoolDir")
	fs.StringVar(&f.sinkURL, "sink-url", "", "pyroscope-go ServerAddress")
	fs.StringVar(&f.cpuProfile, "cpuprofile", "", "write a CPU profile of the whole run here (pprofio then skips its CPU windows)")
	pairs := fs.Int("pairs", 0, "the paired span measurement (paired.go): pairs of blocks, spans on and off")
	block := fs.Int("block", 200, "requests per block of the paired span measurement")
	null := fs.Bool("null", false, "the paired measurement's calibration: no spans in either block")
	fs.BoolVar(&f.inRequest, "span-in-request", false, "the span's context goes into the request (r.WithContext), as a middleware would do, instead of down as an argument")
	floor := fs.Bool("floor", false, "the paired measurement's floor: a context value in the request instead of a span")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	var res any
	var err error
	if *pairs > 0 {
		res, err = runPaired(f, *pairs, *block, *null, *floor)
	} else {
		res, err = runWorker(f)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "worker:", err)
		return 1
	}
	if err := json.NewEncoder(os.Stdout).Encode(res); err != nil {
		fmt.Fprintln(os.Stderr, "worker:", err)
		return 1
	}
	return 0
}

// profiler is the variant's agent.
type profiler interface {
	Stop() error
}

func runWorker(f workerFlags) (*workerResult, error) {
	res := &workerResult{Variant: f.variant, Cadence: f.cadence, Requests: f.requests}
	if f.cpuProfile != "" {
		out, err := os.Create(f.cpuProfile)
		if err != nil {
			return nil, err
		}
		if err := pprof.StartCPUProfile(out); err != nil {
			return nil, err
		}
		defer func() {
			pprof.StopCPUProfile()
			out.Close()
		}()
	}

	svc := newService()
	svc.spans = f.variant == varPprofioSpans
	svc.inRequest = f.inRequest
	if err := svc.start(); err != nil {
		return nil, err
	}
	sampler := startHeapSampler()

	t0 := time.Now()
	prof, pp, err := startProfiler(f)
	if err != nil {
		return nil, err
	}
	res.AgentStart = time.Since(t0).Seconds()

	// The fixed work.
	t1 := time.Now()
	svc.fill()
	digest, failed, derr := drive(svc.url, f.requests, f.conc)
	res.WorkWall = time.Since(t1).Seconds()
	res.Digest, res.Failed = digest, failed
	if derr != nil {
		fmt.Fprintln(os.Stderr, "worker:", derr)
	}
	svc.stop()

	res.HeapRunning = liveHeap()
	res.RSSAnon, res.RSSFile, res.Threads = procStatus()
	t2 := time.Now()
	if prof != nil {
		if err := prof.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, "worker: stop:", err)
		}
	}
	res.AgentStop = time.Since(t2).Seconds()
	res.HeapStopped = liveHeap()
	runtime.KeepAlive(svc)
	res.HeapMax = sampler.stop()
	if pp != nil {
		s := pp.Stats()
		res.Pprofio = &s
		res.Collector = collector.Costs()
	}
	if rc, ok := prof.(*runtimeCPU); ok {
		res.Windows = rc.windows
	}
	ms := readMetrics("/gc/heap/allocs:bytes", "/gc/cycles/total:gc-cycles")
	res.Allocs, res.GCs = ms[0].Value.Uint64(), ms[1].Value.Uint64()
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err == nil {
		res.SelfCPU = tvSeconds(ru.Utime) + tvSeconds(ru.Stime)
	}
	return res, nil
}

func tvSeconds(tv syscall.Timeval) float64 { return float64(tv.Nano()) / 1e9 }

// startProfiler starts the variant's profiler.
func startProfiler(f workerFlags) (profiler, *pprofio.Profiler, error) {
	switch f.variant {
	case varBaseline:
		return nil, nil, nil
	case varPprofio, varPprofioAll, varPprofioSpans:
		cfg := pprofio.Config{
			ServiceName: "overhead-bench",
			IngestURL:   f.ingestURL,
			APIKey:      f.apiKey,
			CAFile:      f.caFile,
			SpoolDir:    f.spoolDir,
			// The first cycle starts at once instead of after up to
			// SampleRate/10, so that the first CPU window falls inside
			// the run at both cadences. Everything else is the default.
			StartJitter: -1,
			Logger:      slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
		}
		if f.cadence == cadCompressed {
			cfg.SampleRate = compressedSampleRate
		}
		if f.variant == varPprofioAll {
			cfg.Profiles = []pprofio.ProfileType{pprofio.ProfileCPU, pprofio.ProfileHeap,
				pprofio.ProfileGoroutine, pprofio.ProfileMutex, pprofio.ProfileBlock}
		}
		p, err := pprofio.New(cfg)
		if err != nil {
			return nil, nil, err
		}
		if err := p.Start(context.Background()); err != nil {
			return nil, nil, err
		}
		return p, p, nil
	case varRuntimeCPU:
		return startRuntimeCPU(f.cadence), nil, nil
	case varPyroscope:
		client, err := tlsClient(f.caFile)
		if err != nil {
			return nil, nil, err
		}
		cfg := pyroscope.Config{
			ApplicationName: "overhead-bench",
			ServerAddress:   f.sinkURL,
			HTTPClient:      client,
			ProfileTypes: []pyroscope.ProfileType{pyroscope.ProfileCPU,
				pyroscope.ProfileAllocObjects, pyroscope.ProfileAllocSpace,
				pyroscope.ProfileInuseObjects, pyroscope.ProfileInuseSpace},
			UploadRate: defaultPyroscopeRate,
		}
		if f.cadence == cadCompressed {
			cfg.UploadRate = compressedUploadRate
		}
		p, err := pyroscope.Start(cfg)
		if err != nil {
			return nil, nil, err
		}
		return p, nil, nil
	}
	return nil, nil, fmt.Errorf("unknown variant %q", f.variant)
}

// tlsClient is an HTTPS client that trusts only the CA in caFile, as
// pprofio's CAFile does.
func tlsClient(caFile string) (*http.Client, error) {
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, errors.New("no certificate in " + caFile)
	}
	return &http.Client{
		Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, MaxConnsPerHost: 5},
		Timeout:   30 * time.Second,
	}, nil
}

func readMetrics(names ...string) []metrics.Sample {
	ms := make([]metrics.Sample, len(names))
	for i, n := range names {
		ms[i].Name = n
	}
	metrics.Read(ms)
	return ms
}

// procStatus reads the resident anonymous and file-backed memory and the
// thread count from /proc/self/status.
func procStatus() (anon, file uint64, threads int) {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, 0, 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		f := strings.Fields(v)
		if len(f) == 0 {
			continue
		}
		n, _ := strconv.ParseUint(f[0], 10, 64)
		switch k {
		case "RssAnon":
			anon = n << 10 // kB
		case "RssFile":
			file = n << 10
		case "Threads":
			threads = int(n)
		}
	}
	return anon, file, threads
}

// liveHeap is the Go heap in use after two garbage collections.
func liveHeap() uint64 {
	runtime.GC()
	runtime.GC()
	return readMetrics("/memory/classes/heap/objects:bytes")[0].Value.Uint64()
}

// heapSampler records the largest heap objects bytes seen every 50 ms.
type heapSampler struct {
	done chan struct{}
	wg   sync.WaitGroup
	max  uint64
}

func startHeapSampler() *heapSampler {
	h := &heapSampler{done: make(chan struct{})}
	h.wg.Add(1)
	go func() {
		defer h.wg.Done()
		t := time.NewTicker(50 * time.Millisecond)
		defer t.Stop()
		ms := readMetrics("/memory/classes/heap/objects:bytes")
		for {
			metrics.Read(ms)
			h.max = max(h.max, ms[0].Value.Uint64())
			select {
			case <-h.done:
				return
			case <-t.C:
			}
		}
	}()
	return h
}

func (h *heapSampler) stop() uint64 {
	close(h.done)
	h.wg.Wait()
	return h.max
}
