package viewer

// Page times over a synthetic week: 10,080 cycles of 60 s of one service,
// every profile type in each, in the receiver's layout, indexed once.
//
//	go test -run '^$' -bench Week -benchtime 5x ./viewer
//
// Writing the week takes minutes; VIEWER_WEEK_DIR=<folder> keeps it (and
// its index) there for the next run.

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"math/rand"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// weekCycles is a week of 60 s cycles.
const weekCycles = 7 * 24 * 60

var week struct {
	once sync.Once
	keep string // the week's folder
	dir  string // the same, when it is to be removed at the end
	v    *Viewer
	err  error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if week.v != nil {
		week.v.Close()
	}
	if week.dir != "" {
		os.RemoveAll(week.dir)
	}
	os.Exit(code)
}

// weekViewer builds (once per process) the synthetic week and its index.
func weekViewer(b *testing.B) *Viewer {
	week.once.Do(func() {
		start := time.Now()
		if keep := os.Getenv("VIEWER_WEEK_DIR"); keep != "" {
			week.keep = keep
			if _, err := os.Stat(filepath.Join(keep, "data", batchesFile)); err != nil {
				week.err = writeWeek(b, filepath.Join(keep, "data"))
			}
		} else if week.keep, week.err = os.MkdirTemp("", "viewer-week-"); week.err == nil {
			week.dir = week.keep // removed at the end
			week.err = writeWeek(b, filepath.Join(week.dir, "data"))
		}
		if week.err != nil {
			return
		}
		wrote := time.Since(start)
		start = time.Now()
		week.v, week.err = New(Options{IndexPath: filepath.Join(week.keep, "index.db"),
			Sources: []Source{{Name: "received", Dir: filepath.Join(week.keep, "data"), Kind: KindReceived}}})
		if week.err == nil {
			week.err = week.v.Refresh()
		}
		indexed := time.Since(start)
		start = time.Now()
		for n := rollupsPerRound; week.err == nil && n == rollupsPerRound; {
			n, week.err = week.v.BuildRollups()
		}
		fi, _ := os.Stat(filepath.Join(week.keep, "index.db"))
		b.Logf("synthetic week: %d cycles written in %v, indexed in %v, hourly rollups in %v (index %d MB)", weekCycles,
			wrote.Round(time.Second), indexed.Round(time.Second), time.Since(start).Round(time.Second), fi.Size()>>20)
	})
	if week.err != nil {
		b.Fatal(week.err)
	}
	return week.v
}

// weekFuncs is the pool of function names stacks are drawn from.
var weekFuncs = func() []string {
	var out []string
	for i := 0; i < 400; i++ {
		out = append(out, fmt.Sprintf("example.com/shop/pkg%d.(*Type%d).Method%d", i%23, i%7, i))
	}
	return out
}()

// weekPool is a service's distinct stacks: a program has a few thousand,
// and each cycle samples some of them, the hot ones most often.
var weekPool = func() [][]string {
	r := rand.New(rand.NewSource(2))
	pool := make([][]string, 3000)
	for i := range pool {
		depth := 6 + r.Intn(10)
		fs := make([]string, depth)
		for d := range fs {
			fs[d] = weekFuncs[(r.Intn(40)+d*37)%len(weekFuncs)]
		}
		pool[i] = fs
	}
	return pool
}()

// weekStacks draws n stacks from the pool (skewed to its start) with
// values from vals.
func weekStacks(r *rand.Rand, n int, vals func() []int64) []stack {
	out := make([]stack, 0, n)
	seen := map[int]bool{}
	for len(out) < n {
		i := int(r.ExpFloat64()*300) % len(weekPool)
		if !seen[i] {
			seen[i] = true
			out = append(out, stack{frames: weekPool[i], values: vals()})
		}
	}
	return out
}

// writeWeek writes the week as the receiver would have stored it.
func writeWeek(b *testing.B, dir string) error {
	r := rand.New(rand.NewSource(1))
	var all bytes.Buffer
	for i := 0; i < weekCycles; i++ {
		line := weekCycle(b, r, dir, i)
		all.Write(line)
		all.WriteByte('\n')
	}
	return writeFileB(filepath.Join(dir, batchesFile), all.Bytes())
}

// weekCycle writes cycle i's files and returns its batches.jsonl line.
func weekCycle(b *testing.B, r *rand.Rand, dir string, i int) []byte {
	id := fmt.Sprintf("%032x", i+1)
	base := t0.Add(time.Duration(i) * time.Minute)
	goroutines := 200 + (i%1440)/10 // a daily ramp
	stacks := map[string][]stack{
		"cpu": weekStacks(r, 200, func() []int64 { n := int64(1 + r.Intn(20)); return []int64{n, n * 1e7} }),
		"heap": weekStacks(r, 150, func() []int64 {
			n := int64(1 + r.Intn(100))
			return []int64{n, n * 512, n / 4, n * 128}
		}),
		"goroutine": weekStacks(r, 60, func() []int64 { return []int64{int64(goroutines / 60)} }),
		"mutex":     weekStacks(r, 30, func() []int64 { n := int64(1 + r.Intn(10)); return []int64{n, n * 1e5} }),
		"block":     weekStacks(r, 30, func() []int64 { n := int64(1 + r.Intn(10)); return []int64{n, n * 1e6} }),
	}
	entry := map[string]any{"batch_id": id, "sequence": i + 1, "received": base.Add(time.Minute),
		"source": map[string]any{"service": "week", "instance_id": "b", "hostname": "h", "tags": map[string]string{"env": "bench"}}}
	var profiles []map[string]any
	for _, typ := range profileTypes {
		start, end := base, base.Add(10*time.Second)
		if typ == "heap" {
			end = base.Add(time.Minute)
		}
		var gz bytes.Buffer
		zw := gzip.NewWriter(&gz)
		zw.Write(buildProfile(b, typ, start, stacks[typ]))
		zw.Close()
		rel := filepath.Join("week", typ, fmt.Sprintf("%s_%s_%s.pb.gz", start.Format(fileTimeLayout), end.Format(fileTimeLayout), id[:8]))
		if err := writeFileB(filepath.Join(dir, rel), gz.Bytes()); err != nil {
			b.Fatal(err)
		}
		profiles = append(profiles, map[string]any{"type": typ, "start_unix_nano": start.UnixNano(), "end_unix_nano": end.UnixNano(), "file": rel})
	}
	entry["profiles"] = profiles
	if i%1440 == 1000 {
		entry["events"] = []map[string]any{{"kind": "goroutine_leak", "time_unix_nano": base.UnixNano(), "message": "daily ramp",
			"attributes": map[string]string{"count": fmt.Sprint(goroutines)}}}
	}
	line, _ := json.Marshal(entry)
	return line
}

func writeFileB(path string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	return os.WriteFile(path, data, 0o600)
}

// benchPage times GETs of one page; fresh runs pprof's UI cache out first.
func benchPage(b *testing.B, path string, fresh bool, want string) {
	v := weekViewer(b)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if fresh {
			v.pprof.mu.Lock()
			v.pprof.cache, v.pprof.order = map[string]*uiEntry{}, nil
			v.pprof.mu.Unlock()
		}
		rec := httptest.NewRecorder()
		v.ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
		if rec.Code != 200 || !bytes.Contains(rec.Body.Bytes(), []byte(want)) {
			b.Fatalf("GET %s: %d, %d bytes, no %q", path, rec.Code, rec.Body.Len(), want)
		}
		b.ReportMetric(float64(rec.Body.Len()), "bytes/page")
	}
}

// weekRange selects the whole week.
func weekRange() *selection {
	return &selection{From: t0.UnixNano(), To: t0.Add(weekCycles * time.Minute).UnixNano()}
}

func BenchmarkWeekServicesList(b *testing.B) {
	benchPage(b, "/", false, "10080")
}

func BenchmarkWeekServicePage(b *testing.B) {
	benchPage(b, "/s/received/week/?"+selectionQuery(weekRange()), false, "10080 cycles")
}

func BenchmarkWeekGoroutineChart(b *testing.B) {
	benchPage(b, "/s/received/week/goroutines?"+selectionQuery(weekRange()), false, `id="goroutine-chart"`)
}

func BenchmarkWeekCPUPage(b *testing.B) {
	benchPage(b, "/s/received/week/cpu?"+selectionQuery(weekRange()), false, `id="cpu-chart"`)
}

func BenchmarkWeekMemoryPage(b *testing.B) {
	benchPage(b, "/s/received/week/memory?"+selectionQuery(weekRange()), false, `id="inuse-chart"`)
}

// The flame graph of one day (1,440 CPU profiles merged), built anew each
// time (no cache), and then served from the cache.
func BenchmarkWeekCPUFlameGraphOneDay(b *testing.B) {
	day := &selection{Source: "received", Service: "week", From: t0.Add(48 * time.Hour).UnixNano(), To: t0.Add(72*time.Hour).UnixNano() - 1}
	benchPage(b, pprofLink(day, "cpu", "flamegraph"), true, "Method")
}

func BenchmarkWeekCPUFlameGraphOneDayCached(b *testing.B) {
	day := &selection{Source: "received", Service: "week", From: t0.Add(48 * time.Hour).UnixNano(), To: t0.Add(72*time.Hour).UnixNano() - 1}
	benchPage(b, pprofLink(day, "cpu", "flamegraph"), false, "Method")
}

// The same day with a tag filter, answered by the rollups too (their
// samples carry the cycles' tags), built anew each time.
func BenchmarkWeekCPUFlameGraphOneDayTagFiltered(b *testing.B) {
	day := &selection{Source: "received", Service: "week", From: t0.Add(48 * time.Hour).UnixNano(), To: t0.Add(72*time.Hour).UnixNano() - 1,
		Tag: [2]string{"env", "bench"}}
	benchPage(b, pprofLink(day, "cpu", "flamegraph"), true, "Method")
}
