// Package viewer_test loads the web UI of the reference service
// (examples/ingest-server/viewer) in a real headless browser (Debian's
// chromium, installed by .ci/deps.sh), over data that a real run of
// examples/basic uploaded over TLS to the real receiver and wrote to its
// OutputDir. Screenshots of every page are written to $VIEWER_SCREENSHOTS
// (default: the test's temporary folder).
package viewer_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/pprof/profile"
	"github.com/pprofio/pprofio/examples/ingest-server/viewer"
	"github.com/pprofio/pprofio/tests/internal/testreceiver"
)

const apiKey = "browser-test-key"

// runBasic runs examples/basic, leaking goroutines, with every profile
// type, until the receiver has minBatches batches and a goroutine_leak
// event; then interrupts it and waits for its last batch.
func runBasic(t *testing.T, r *testreceiver.Receiver, out string, minBatches int) {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "basic")
	build := exec.Command(filepath.Join(runtime.GOROOT(), "bin", "go"), "build", "-o", bin, "./examples/basic")
	build.Dir = filepath.Join("..", "..")
	if msg, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building examples/basic: %v\n%s", err, msg)
	}
	cmd := exec.Command(bin, "-duration", "0", "-rate", "1s", "-cpu", "500ms", "-out", out, "-service", "basic",
		"-ingest-url", r.URL, "-ca-file", r.CAFile, "-api-key", apiKey, "-spool-dir", filepath.Join(t.TempDir(), "spool"),
		"-profiles", "cpu,heap,goroutine,mutex,block", "-leak", "40")
	var logs bytes.Buffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(3 * time.Minute) // guards a hang; the run ends on data, not time
	for {
		b := r.Batches()
		if strings.Count(b, "\n") >= minBatches && strings.Contains(b, `"kind":"goroutine_leak"`) {
			break
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatalf("examples/basic: no %d batches with a goroutine_leak event in 3 minutes; output:\n%s", minBatches, logs.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	cmd.Process.Signal(syscall.SIGINT)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("examples/basic: %v\n%s", err, logs.String())
	}
}

// browser runs headless chromium.
type browser struct {
	bin, profile, shots string
}

func newBrowser(t *testing.T) *browser {
	t.Helper()
	bin, err := exec.LookPath("chromium")
	if err != nil {
		t.Fatal("chromium is not installed: run make deps (.ci/deps.sh installs Debian's chromium)")
	}
	shots := os.Getenv("VIEWER_SCREENSHOTS")
	if shots == "" {
		shots = filepath.Join(t.TempDir(), "screenshots")
	}
	if err := os.MkdirAll(shots, 0o755); err != nil {
		t.Fatal(err)
	}
	return &browser{bin: bin, profile: t.TempDir(), shots: shots}
}

func (b *browser) run(t *testing.T, args ...string) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute) // guards a hang
	defer cancel()
	all := append([]string{"--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--no-first-run",
		"--user-data-dir=" + b.profile, "--virtual-time-budget=3000"}, args...)
	cmd := exec.CommandContext(ctx, b.bin, all...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("chromium %v: %v\n%s", args, err, stderr.String())
	}
	return out
}

// dom loads url and returns the document after its scripts ran.
func (b *browser) dom(t *testing.T, url string) string {
	return string(b.run(t, "--dump-dom", url))
}

// screenshot saves a PNG of url as name.png.
func (b *browser) screenshot(t *testing.T, url, name string, height int) {
	path := filepath.Join(b.shots, name+".png")
	b.run(t, fmt.Sprintf("--window-size=1000,%d", height), "--screenshot="+path, url)
	if fi, err := os.Stat(path); err != nil || fi.Size() < 1000 {
		t.Fatalf("screenshot %s was not written", path)
	}
}

// Each page loads in a real browser with a real run's data: the CPU flame
// graph holds examples/basic's hot function, the goroutine chart has one
// point per cycle and the leak alert, the spans pages (of what the
// receiver stored and of the OutputDir) the example's spans: percentiles
// per series over every span the agent recorded, and a cycle's waterfall.
func TestPagesInABrowserShowARealRun(t *testing.T) {
	br := newBrowser(t)
	r := testreceiver.Start(t, apiKey)
	out := filepath.Join(t.TempDir(), "out")
	runBasic(t, r, out, 8)
	v, err := viewer.New(viewer.Options{IndexPath: filepath.Join(t.TempDir(), "index.db"), Sources: []viewer.Source{
		{Name: "received", Dir: r.DataDir, Kind: viewer.KindReceived}, {Name: "local", Dir: out, Kind: viewer.KindLocal}}})
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	if err := v.Refresh(); err != nil {
		t.Fatal(err)
	}
	ui := httptest.NewServer(v)
	defer ui.Close()
	t.Logf("screenshots in %s", br.shots)

	services := br.dom(t, ui.URL+"/")
	if !regexp.MustCompile(`href="/s/received/basic/"`).MatchString(services) || !strings.Contains(services, `<td class="alert">1</td>`) {
		t.Fatalf("services page: no basic service with its open leak alert:\n%s", services)
	}

	base := ui.URL + "/s/received/basic/"
	goroutines := br.dom(t, base+"goroutines")
	profiles := strings.Count(r.Batches(), `"type":"goroutine"`)
	if n := strings.Count(goroutines, `class="pt"`); n != profiles || n < 8 {
		t.Errorf("goroutine chart: %d points for %d goroutine profiles (cycles), want one per cycle", n, profiles)
	}
	if !strings.Contains(goroutines, `class="marker leak"`) || !strings.Contains(goroutines, "main.leakedWorker") {
		t.Errorf("goroutine chart: no leak alert marker naming main.leakedWorker")
	}

	cpu := br.dom(t, base+"cpu")
	frame := regexp.MustCompile(`<iframe class="pprof" src="([^"]+)"`).FindStringSubmatch(cpu)
	if frame == nil {
		t.Fatalf("cpu page: no flame graph frame")
	}
	flame := br.dom(t, ui.URL+strings.ReplaceAll(frame[1], "&amp;", "&"))
	if !regexp.MustCompile(`class="boxtext"[^>]*>[^<]*main\.burnCPU`).MatchString(flame) {
		t.Errorf("the CPU flame graph draws no box for examples/basic's hot function main.burnCPU")
	}

	localFiles, _ := filepath.Glob(filepath.Join(out, "basic", "goroutine", "*.pb.gz"))
	localGoroutines := br.dom(t, ui.URL+"/s/local/basic/goroutines")
	if n := strings.Count(localGoroutines, `class="pt"`); n != len(localFiles) {
		t.Errorf("OutputDir goroutine chart: %d points for %d goroutine files", n, len(localFiles))
	}

	checkSpans(t, br, ui.URL+"/s/received/basic/spans", requestsIn(t, r.DataDir, "basic/custom/*.pb.gz", customCount))
	checkSpans(t, br, ui.URL+"/s/local/basic/spans", requestsIn(t, out, "basic/timeline/*.jsonl", timelineCount))

	screenshots(t, br, ui.URL)
}

// screenshots saves a PNG of each page.
func screenshots(t *testing.T, br *browser, base string) {
	for _, p := range []struct {
		path, name string
		height     int
	}{
		{"/", "services", 420}, {"/s/received/basic/", "overview", 1250}, {"/s/received/basic/cpu", "cpu", 1250},
		{"/s/received/basic/memory", "memory", 1500}, {"/s/received/basic/goroutines", "goroutines", 720},
		{"/s/received/basic/mutex", "mutex", 420}, {"/s/received/basic/block", "block", 820},
		{"/s/received/basic/spans", "spans", 1500}, {"/s/received/basic/events", "events", 520},
	} {
		br.screenshot(t, base+p.path, p.name, p.height)
	}
}

// checkSpans loads a spans page of examples/basic's run: each of its span
// series has its percentiles chart, the request's over every request the
// agent recorded (requests), and the waterfall draws the cycle's sampled
// spans with db.query and render under their request.
func checkSpans(t *testing.T, br *browser, url string, requests int64) {
	t.Helper()
	page := br.dom(t, url)
	for _, title := range []string{fmt.Sprintf("request {route=/checkout}: latency percentiles (%d spans)", requests),
		"db.query {table=orders}: latency percentiles", "render: latency percentiles"} {
		if !strings.Contains(page, title) {
			t.Errorf("%s: no chart titled %q", url, title)
		}
	}
	if requests == 0 || strings.Count(page, `<polyline`) < 9 {
		t.Errorf("%s: %d requests recorded, %d lines charted; want the p50, p90 and p99 of three series", url, requests, strings.Count(page, `<polyline`))
	}
	m := regexp.MustCompile(`Sampled spans of [^(<]+\((\d+) spans\)`).FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("%s: no waterfall of a cycle's sampled spans:\n%.3000s", url, page)
	}
	sampled, _ := strconv.Atoi(m[1])
	if n := strings.Count(page, `<g class="span"`); n == 0 || n != min(sampled, 400) { // the waterfall draws 400 at most
		t.Errorf("%s: %d spans drawn in the waterfall of %d sampled spans", url, n, sampled)
	}
	child := regexp.MustCompile(`data-name="request"><text x="8"[^>]*>request</text>(?:[^<]|<[^g])*<g class="span" data-name="(?:db\.query|render)"><text x="20"`)
	if !child.MatchString(page) {
		t.Errorf("%s: the waterfall draws no db.query or render span under its request", url)
	}
}

// requestsIn sums the request spans the agent recorded, as count reads
// them from each file matching pattern under dir.
func requestsIn(t *testing.T, dir, pattern string, count func(*testing.T, string) int64) int64 {
	files, err := filepath.Glob(filepath.Join(dir, pattern))
	if err != nil || len(files) == 0 {
		t.Fatalf("no %s under %s (%v)", pattern, dir, err)
	}
	var n int64
	for _, f := range files {
		n += count(t, f)
	}
	return n
}

// customCount reads the request series' span_count in a custom profile.
func customCount(t *testing.T, path string) int64 {
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	p, err := profile.ParseData(data)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	i := -1
	for j, st := range p.SampleType {
		if st.Type == "span_count" {
			i = j
		}
	}
	var n int64
	for _, smp := range p.Sample {
		if i >= 0 && len(smp.Label["span"]) == 1 && smp.Label["span"][0] == "request" {
			n += smp.Value[i]
		}
	}
	return n
}

// timelineCount reads the request series' count in a timeline file.
func timelineCount(t *testing.T, path string) int64 {
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var n int64
	for _, line := range strings.Split(string(data), "\n") {
		var l struct {
			Series *string `json:"series"`
			Count  int64   `json:"count"`
		}
		if json.Unmarshal([]byte(line), &l) == nil && l.Series != nil && *l.Series == "request" {
			n += l.Count
		}
	}
	return n
}
