package soak

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pprofio/pprofio"
)

const apiKey = "k-soak-7f3a"

// waitGuard bounds a wait for an event (the receiver listening, goroutines
// ending): only a hang reaches it.
const waitGuard = 2 * time.Minute

type sample struct {
	rss, cHeap, goHeap       int64
	goroutines, fds, threads int
}

// receiver builds the reference receiver and runs it as its own process;
// it returns the base URL and the CA file to trust.
func receiver(t *testing.T) (string, string) {
	t.Helper()
	dir := t.TempDir()
	bin := filepath.Join(dir, "ingest-server")
	build := exec.Command("go", "build", "-o", bin, ".")
	build.Dir = filepath.Join("..", "..", "examples", "ingest-server")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build the receiver: %v\n%s", err, out)
	}
	ready, ca := filepath.Join(dir, "url"), filepath.Join(dir, "ca.pem")
	cmd := exec.Command(bin, "-addr", "127.0.0.1:0", "-ready-file", ready, "-ca-out", ca,
		"-api-key", apiKey, "-data", filepath.Join(dir, "data"))
	var log bytes.Buffer
	cmd.Stdout, cmd.Stderr = &log, &log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	deadline := time.Now().Add(waitGuard)
	for {
		if b, err := os.ReadFile(ready); err == nil && len(b) > 0 {
			return strings.TrimSpace(string(b)), ca
		}
		if time.Now().After(deadline) {
			t.Fatalf("the receiver did not listen within %v:\n%s", waitGuard, log.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func procStatus(field string) int64 {
	b, _ := os.ReadFile("/proc/self/status")
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, field+":") {
			f := strings.Fields(line[len(field)+1:])
			if len(f) > 0 {
				v, _ := strconv.ParseInt(f[0], 10, 64)
				if len(f) > 1 && f[1] == "kB" {
					v *= 1024
				}
				return v
			}
		}
	}
	return -1
}

func openFDs() int {
	ents, _ := os.ReadDir("/proc/self/fd")
	return len(ents)
}

func take() sample {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return sample{
		rss:        procStatus("VmRSS"),
		cHeap:      cHeapInUse(),
		goHeap:     int64(ms.HeapAlloc),
		goroutines: runtime.NumGoroutine(),
		fds:        openFDs(),
		threads:    int(procStatus("Threads")),
	}
}

// work gives each profile type something to see for about d (CPU,
// allocations, a contended mutex, a blocking channel, a few goroutines), so
// that the 100 ms windows usually open and close before Stop. How many
// windows a cycle gets does not change a verdict: it is only reported.
func work(d time.Duration) {
	for end := time.Now().Add(d); time.Now().Before(end); {
		workOnce()
	}
}

func workOnce() {
	var mu sync.Mutex
	var wg sync.WaitGroup
	ch := make(chan int)
	sink := 0
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 200; i++ {
				mu.Lock()
				b := make([]byte, 1024)
				sink += len(b)
				mu.Unlock()
			}
		}()
	}
	go func() { ch <- 1 }()
	<-ch
	wg.Wait()
	_ = sink
}

// slope is the least-squares growth per cycle of v over xs.
func slope(v []int64) float64 {
	n := float64(len(v))
	if n < 2 {
		return 0
	}
	var sx, sy, sxx, sxy float64
	for i, y := range v {
		x := float64(i)
		sx, sy, sxx, sxy = sx+x, sy+float64(y), sxx+x*x, sxy+x*float64(y)
	}
	return (n*sxy - sx*sy) / (n*sxx - sx*sx)
}

func cycles() int {
	if s := os.Getenv("PPROFIO_SOAK_CYCLES"); s != "" {
		if n, err := strconv.Atoi(s); err == nil && n > 0 {
			return n
		}
	}
	return 30
}

// TestSoak runs New/Start/Stop cycles with every profile type and uploads,
// and checks that goroutines, file descriptors and threads come back.
func TestSoak(t *testing.T) {
	url, ca := receiver(t)
	spool := t.TempDir()
	n := cycles()
	warm := n / 10
	if warm < 5 {
		warm = 5
	}
	cfg := pprofio.Config{
		ServiceName:    "soak",
		IngestURL:      url,
		CAFile:         ca,
		APIKey:         apiKey,
		SpoolDir:       spool,
		SampleRate:     time.Second,
		CPUDuration:    100 * time.Millisecond,
		StartJitter:    -1,
		Profiles:       []pprofio.ProfileType{pprofio.ProfileCPU, pprofio.ProfileHeap, pprofio.ProfileGoroutine, pprofio.ProfileMutex, pprofio.ProfileBlock},
		StopTimeout:    2 * time.Minute, // Stop returns once the last batch is delivered
		ConnectTimeout: time.Minute,
		RequestTimeout: 2 * time.Minute,
		Logger:         slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
	}
	var base sample
	var rss, cHeap, goHeap []int64
	maxThreadsWarm, maxThreadsAfter := 0, 0
	var sent, profiles uint64
	begin := time.Now()
	for c := 0; c < n+warm; c++ {
		p, err := pprofio.New(cfg)
		if err != nil {
			t.Fatalf("cycle %d: New: %v", c, err)
		}
		if err := p.Start(context.Background()); err != nil {
			t.Fatalf("cycle %d: Start: %v", c, err)
		}
		work(150 * time.Millisecond)
		if err := p.Stop(); err != nil {
			t.Fatalf("cycle %d: Stop: %v", c, err)
		}
		st := p.Stats()
		// Stop always takes the heap and goroutine snapshots; CPU, mutex and
		// block come from windows that a busy machine may not reach.
		if st.BatchesSent < 1 || st.QueuedBatches != 0 || st.ProfilesCollected < 2 {
			t.Fatalf("cycle %d: %d batches sent, %d queued, %d profiles: want the cycle's batch delivered (%+v)",
				c, st.BatchesSent, st.QueuedBatches, st.ProfilesCollected, st)
		}
		sent += st.BatchesSent
		profiles += st.ProfilesCollected
		s := take()
		if c == warm-1 {
			base = s
		}
		if c >= warm {
			// Goroutines end when Stop returns; let the runtime finish unwinding them.
			deadline := time.Now().Add(waitGuard)
			for s.goroutines > base.goroutines && time.Now().Before(deadline) {
				time.Sleep(5 * time.Millisecond)
				s.goroutines = runtime.NumGoroutine()
			}
			if s.goroutines != base.goroutines || s.fds != base.fds {
				t.Fatalf("cycle %d: %d goroutines, %d fds; after warm-up %d and %d", c, s.goroutines, s.fds,
					base.goroutines, base.fds)
			}
			rss, cHeap, goHeap = append(rss, s.rss), append(cHeap, s.cHeap), append(goHeap, s.goHeap)
			maxThreadsAfter = max(maxThreadsAfter, s.threads)
		} else {
			maxThreadsWarm = max(maxThreadsWarm, s.threads)
		}
	}
	last := take()
	t.Logf("soak: %d cycles after %d of warm-up, %v; %d batches with %d profiles (%.1f a cycle, of 5 types) delivered over TLS",
		n, warm, time.Since(begin).Round(time.Second), sent, profiles, float64(profiles)/float64(n+warm))
	t.Logf("soak: per cycle after warm-up: RSS %+.1f B, C heap %+.1f B (%s), Go heap %+.1f B",
		slope(rss), slope(cHeap), cHeapSource, slope(goHeap))
	h := len(rss) / 2
	t.Logf("soak: per cycle, first and second half after warm-up: RSS %+.1f / %+.1f B, C heap %+.1f / %+.1f B, Go heap %+.1f / %+.1f B",
		slope(rss[:h]), slope(rss[h:]), slope(cHeap[:h]), slope(cHeap[h:]), slope(goHeap[:h]), slope(goHeap[h:]))
	t.Logf("soak: after warm-up -> end: RSS %d -> %d KiB, C heap %d -> %d B, Go heap %d -> %d B",
		base.rss/1024, last.rss/1024, base.cHeap, last.cHeap, base.goHeap, last.goHeap)
	t.Logf("soak: goroutines %d -> %d, fds %d -> %d, threads %d (max in warm-up %d, after %d)",
		base.goroutines, last.goroutines, base.fds, last.fds, last.threads, maxThreadsWarm, maxThreadsAfter)
	// The Go runtime keeps the threads it starts and may start a few more
	// late; a thread the agent failed to join would add one or more every
	// cycle, far past this allowance.
	const runtimeThreadSlack = 4
	if maxThreadsAfter > maxThreadsWarm+runtimeThreadSlack {
		t.Errorf("threads grew after warm-up: at most %d during it, %d after", maxThreadsWarm, maxThreadsAfter)
	}
}
