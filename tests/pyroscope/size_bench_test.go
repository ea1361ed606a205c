package pyroscope

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/pprof"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pprofio/pprofio"
	"github.com/pprofio/pprofio/internal/core"
)

// BenchmarkPushBytesPerCycle measures what one cycle at the product's
// defaults (CPU for 10 s, a heap snapshot; one cycle a minute) weighs as a
// Pyroscope push, against the same profiles as one gzipped pprofio batch
// would carry them. The workload: two goroutines hashing and sorting, one
// allocating. Run it with
//
//	cd tests && go test -run '^$' -bench PushBytes -benchtime 1x ./pyroscope
func BenchmarkPushBytesPerCycle(b *testing.B) {
	for i := 0; i < b.N; i++ {
		stopWork := startWork()
		var cpu bytes.Buffer
		start := time.Now()
		if err := pprof.StartCPUProfile(&cpu); err != nil {
			b.Fatal(err)
		}
		time.Sleep(10 * time.Second)
		pprof.StopCPUProfile()
		stopWork()
		var heap bytes.Buffer
		pprof.Lookup("heap").WriteTo(&heap, 0)
		profiles := []core.PyroscopeProfile{
			{Type: core.CPU, Start: start, End: start.Add(10 * time.Second), Pprof: gunzipB(b, cpu.Bytes())},
			{Type: core.Heap, Start: start, End: start.Add(time.Minute), Pprof: gunzipB(b, heap.Bytes())},
		}
		body, err := core.PyroscopeEncode("checkout", map[string]string{"env": "prod", "region": "eu-west-1"}, profiles)
		if err != nil {
			b.Fatal(err)
		}
		var raw []byte
		for _, p := range profiles {
			raw = append(raw, p.Pprof...)
		}
		b.ReportMetric(float64(len(body)), "push-B/cycle")
		b.ReportMetric(float64(gzLen(body)), "push-gzip-B/cycle")
		b.ReportMetric(float64(gzLen(raw)), "pprofio-batch-B/cycle")
		b.ReportMetric(float64(cpu.Len()+heap.Len()), "runtime-gzip-B/cycle")
	}
}

// startWork runs the workload (work) on three goroutines until the
// function it returns is called, which waits for them to end.
func startWork() (stop func()) {
	var flag atomic.Bool
	var wg sync.WaitGroup
	for g := 0; g < 3; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			work(g, &flag)
		}(g)
	}
	return func() {
		flag.Store(true)
		wg.Wait()
	}
}

func work(g int, stop *atomic.Bool) {
	var sink [][]byte
	for n := 0; !stop.Load(); n++ {
		switch g {
		case 0:
			h := sha256.Sum256([]byte{byte(n), byte(n >> 8)})
			for k := 0; k < 200; k++ {
				h = sha256.Sum256(h[:])
			}
		case 1:
			xs := make([]int, 512)
			for k := range xs {
				xs[k] = (k * 7919) % 512
			}
			sort.Ints(xs)
		default:
			sink = append(sink, make([]byte, 64<<10))
			if len(sink) > 64 {
				sink = sink[:0]
			}
			time.Sleep(time.Millisecond)
		}
	}
}

func gunzipB(b *testing.B, gz []byte) []byte {
	r, err := gzip.NewReader(bytes.NewReader(gz))
	if err != nil {
		b.Fatal(err)
	}
	var out bytes.Buffer
	if _, err := out.ReadFrom(r); err != nil {
		b.Fatal(err)
	}
	return out.Bytes()
}

func gzLen(p []byte) int {
	var buf bytes.Buffer
	w := gzip.NewWriter(&buf)
	w.Write(p)
	w.Close()
	return buf.Len()
}

// BenchmarkPushBytesOfStoredProfiles encodes, cycle by cycle, the profiles
// an agent kept in OutputDir (what it would have sent: deltas computed)
// and reports the average Pyroscope push per cycle, raw and gzipped. Point
// PYROSCOPE_BENCH_DIR at OutputDir/<service>; e.g. run the overhead
// benchmark's worker with PPROFIO_OUTPUT_DIR set:
//
//	PPROFIO_OUTPUT_DIR=/tmp/out go run ./tests/overhead -worker -variant pprofio -cadence default -requests 600000
//	PYROSCOPE_BENCH_DIR=/tmp/out/overhead-bench go test -run '^$' -bench Stored -benchtime 1x ./pyroscope
func BenchmarkPushBytesOfStoredProfiles(b *testing.B) {
	dir := os.Getenv("PYROSCOPE_BENCH_DIR")
	if dir == "" {
		b.Skip("PYROSCOPE_BENCH_DIR is not set")
	}
	types := map[string]core.Type{"cpu": core.CPU, "heap": core.Heap, "goroutine": core.Goroutine,
		"mutex": core.Mutex, "block": core.Block}
	cycles := map[int][]core.PyroscopeProfile{} // by index within each type: one a cycle
	for name, typ := range types {
		files, _ := filepath.Glob(filepath.Join(dir, name, "*.pb.gz"))
		sort.Strings(files)
		for i, f := range files {
			gz, err := os.ReadFile(f)
			if err != nil {
				b.Fatal(err)
			}
			cycles[i] = append(cycles[i], core.PyroscopeProfile{Type: typ, Start: time.Unix(0, 0),
				End: time.Unix(0, 0), Pprof: gunzipB(b, gz)})
		}
	}
	if len(cycles) == 0 {
		b.Fatalf("no profiles under %s", dir)
	}
	for i := 0; i < b.N; i++ {
		var push, pushGz, batchGz int
		for _, ps := range cycles {
			body, err := core.PyroscopeEncode("overhead-bench", nil, ps)
			if err != nil {
				b.Fatal(err)
			}
			var raw []byte
			for _, p := range ps {
				raw = append(raw, p.Pprof...)
			}
			push, pushGz, batchGz = push+len(body), pushGz+gzLen(body), batchGz+gzLen(raw)
		}
		n := float64(len(cycles))
		b.ReportMetric(n, "cycles")
		b.ReportMetric(float64(push)/n, "push-B/cycle")
		b.ReportMetric(float64(pushGz)/n, "push-gzip-B/cycle")
		b.ReportMetric(float64(batchGz)/n, "pprofio-batch-B/cycle")
	}
}

// benchCycles is how many full cycles (pushes) the per-minute benchmarks
// wait for: PYROSCOPE_BENCH_CYCLES, 3 unless set.
func benchCycles() int {
	if n, err := strconv.Atoi(os.Getenv("PYROSCOPE_BENCH_CYCLES")); err == nil && n > 0 {
		return n
	}
	return 3
}

// reportPerMinute reports what the pushes of full cycles (one a minute)
// weigh on the wire (gzipped) and inflated, and how many series they hold,
// per minute.
func reportPerMinute(b *testing.B, full []push) {
	var wire, raw, series int
	for _, x := range full {
		wire += x.Wire
		raw += x.Raw
		series += len(x.Req.Series)
	}
	n := float64(len(full))
	b.ReportMetric(float64(wire)/n/1024, "gzip-KiB/min")
	b.ReportMetric(float64(raw)/n/1024, "raw-KiB/min")
	b.ReportMetric(float64(series)/n, "series/min")
}

// BenchmarkAgentPushBytesPerMinute runs the real agent at the product's
// defaults (a 60 s cycle, 10 s of CPU, CPU and heap profiles) on the
// workload above, pushing over TLS to Pyroscope's own handler, and reports
// what the full cycles' pushes weigh on the wire (gzipped) and inflated,
// per minute. The final, partial cycle of Stop is left out. About
// PYROSCOPE_BENCH_CYCLES (3) minutes:
//
//	cd tests && go test -run '^$' -bench AgentPushBytes -benchtime 1x -timeout 30m ./pyroscope
func BenchmarkAgentPushBytesPerMinute(b *testing.B) {
	cycles := benchCycles()
	for i := 0; i < b.N; i++ {
		isolate(b)
		f := newTLS(b)
		pyro := newPyroServer(b, f)
		p, err := pprofio.New(pprofio.Config{
			ServiceName:  "checkout",
			Tags:         map[string]string{"env": "prod", "region": "eu-west-1"},
			PyroscopeURL: pyro.URL,
			CAFile:       f.CAFile,
			SpoolDir:     b.TempDir(),
			Logger:       slog.New(&logCapture{}),
		})
		if err != nil {
			b.Fatal(err)
		}
		stopWork := startWork()
		if err := p.Start(b.Context()); err != nil {
			b.Fatal(err)
		}
		for len(pyro.accepted()) < cycles {
			time.Sleep(100 * time.Millisecond)
		}
		full := pyro.accepted()[:cycles]
		p.Stop()
		stopWork()
		reportPerMinute(b, full)
	}
}

// BenchmarkOverheadServicePushBytesPerMinute is the same measure on the
// overhead benchmark's reference service (tests/overhead, its worker with
// variant pprofio at the default cadence), whose profiles hold many more
// stacks: the figure beside pyroscope-go's bytes per minute in the README.
// The worker is built from ../overhead, pushes (through
// PPROFIO_PYROSCOPE_URL) to the handler here, and is ended after
// PYROSCOPE_BENCH_CYCLES (3) pushes. It keeps the CPUs busy that long:
//
//	cd tests && nice go test -run '^$' -bench OverheadService -benchtime 1x -timeout 30m ./pyroscope
func BenchmarkOverheadServicePushBytesPerMinute(b *testing.B) {
	cycles := benchCycles()
	bin := filepath.Join(b.TempDir(), "overhead")
	build := exec.Command("go", "build", "-o", bin, ".")
	build.Dir = filepath.Join("..", "overhead")
	if out, err := build.CombinedOutput(); err != nil {
		b.Fatalf("building the overhead worker: %v\n%s", err, out)
	}
	for i := 0; i < b.N; i++ {
		isolate(b)
		f := newTLS(b)
		pyro := newPyroServer(b, f)
		cmd := exec.Command(bin, "-worker", "-variant", "pprofio", "-cadence", "default",
			"-requests", "100000000", "-ca-file", f.CAFile, "-spool-dir", b.TempDir())
		cmd.Env = append(os.Environ(), "PPROFIO_PYROSCOPE_URL="+pyro.URL)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
	wait:
		for len(pyro.accepted()) < cycles {
			select {
			case err := <-done:
				b.Fatalf("the worker ended before %d pushes: %v\n%s", cycles, err, stderr.String())
			case <-time.After(200 * time.Millisecond):
				continue wait
			}
		}
		full := pyro.accepted()[:cycles]
		cmd.Process.Kill()
		<-done
		reportPerMinute(b, full)
	}
}
