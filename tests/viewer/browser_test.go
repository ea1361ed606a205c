// Package viewer_test loads the web UI of the reference service
// (examples/ingest-server/viewer) in a real headless browser (Debian's
// chromium, installed by .ci/deps.sh), over data that a real run of
// examples/basic uploaded over TLS to the real receiver and wrote to its
// OutputDir. Screenshots of every page are written to $VIEWER_SCREENSHOTS
// (default: the test's temporary folder).
package viewer_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pprofio/pprofio/examples/ingest-server/ingestpb"
	"github.com/pprofio/pprofio/examples/ingest-server/receiver"
	"github.com/pprofio/pprofio/examples/ingest-server/viewer"
	"google.golang.org/protobuf/proto"
)

const apiKey = "browser-test-key"

// receiverTLS is the real receiver over TLS on loopback.
type receiverTLS struct {
	URL, CAFile, DataDir string
	client               *http.Client
}

func newReceiver(t *testing.T) *receiverTLS {
	t.Helper()
	dir := t.TempDir()
	r := &receiverTLS{DataDir: filepath.Join(dir, "received"), CAFile: filepath.Join(dir, "ca.pem")}
	srv, err := receiver.New(receiver.Options{DataDir: r.DataDir, APIKeys: []string{apiKey}})
	if err != nil {
		t.Fatal(err)
	}
	ss, err := receiver.GenerateSelfSigned()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(r.CAFile, ss.CAPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewUnstartedServer(srv)
	ts.TLS = &tls.Config{Certificates: []tls.Certificate{ss.Leaf}}
	ts.Config.ErrorLog = log.New(io.Discard, "", 0)
	ts.StartTLS()
	t.Cleanup(func() { srv.Close(); ts.Close() })
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ss.CAPEM)
	r.URL, r.client = ts.URL, &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	return r
}

// batches returns the receiver's batches file.
func (r *receiverTLS) batches() string {
	data, _ := os.ReadFile(filepath.Join(r.DataDir, receiver.BatchesFile))
	return string(data)
}

// runBasic runs examples/basic, leaking goroutines, with every profile
// type, until the receiver has minBatches batches and a goroutine_leak
// event; then interrupts it and waits for its last batch.
func runBasic(t *testing.T, r *receiverTLS, out string, minBatches int) {
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
		b := r.batches()
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

// sendSpans sends n cycles of a "checkout" service whose batches carry
// spans (the agent cannot make spans yet), as the agent would: gzipped
// protobuf over TLS.
func sendSpans(t *testing.T, r *receiverTLS, n int) {
	t.Helper()
	t0 := time.Now().Add(-time.Duration(n) * time.Minute).Truncate(time.Minute)
	for i := 0; i < n; i++ {
		id := make([]byte, 16)
		rand.Read(id)
		req := &ingestpb.UploadRequest{BatchId: hex.EncodeToString(id), Sequence: uint64(i + 1),
			Source: &ingestpb.Source{Service: "checkout", InstanceId: strings.Repeat("c", 32), Hostname: "web-1"}}
		base := t0.Add(time.Duration(i) * time.Minute)
		for j := 0; j < 6; j++ {
			at := base.Add(time.Duration(j) * 120 * time.Millisecond).UnixNano()
			root := uint64(1000*i + 10*j + 1)
			d := time.Duration(20+10*j+3*i) * time.Millisecond
			req.Spans = append(req.Spans,
				&ingestpb.Span{Name: "POST /checkout", StartUnixNano: at, DurationNanos: int64(d), SpanId: root, Tags: map[string]string{"route": "/checkout"}},
				&ingestpb.Span{Name: "db.query", StartUnixNano: at + int64(2*time.Millisecond), DurationNanos: int64(d / 2), SpanId: root + 1, ParentSpanId: root},
				&ingestpb.Span{Name: "payment.authorize", StartUnixNano: at + int64(d/2+3*time.Millisecond), DurationNanos: int64(d / 3), SpanId: root + 2, ParentSpanId: root})
		}
		raw, _ := proto.Marshal(req)
		var body bytes.Buffer
		zw := gzip.NewWriter(&body)
		zw.Write(raw)
		zw.Close()
		hr, _ := http.NewRequest("POST", r.URL+receiver.IngestPath, &body)
		hr.Header.Set("Authorization", "Bearer "+apiKey)
		hr.Header.Set("Content-Type", "application/x-protobuf")
		hr.Header.Set("Content-Encoding", "gzip")
		hr.Header.Set("Idempotency-Key", req.BatchId)
		resp, err := r.client.Do(hr)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("span batch %d: status %d", i, resp.StatusCode)
		}
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
// point per cycle and the leak alert, the spans page its waterfall.
func TestPagesInABrowserShowARealRun(t *testing.T) {
	br := newBrowser(t)
	r := newReceiver(t)
	out := filepath.Join(t.TempDir(), "out")
	runBasic(t, r, out, 8)
	sendSpans(t, r, 6)
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
	profiles := strings.Count(r.batches(), `"type":"goroutine"`)
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

	spans := br.dom(t, ui.URL+"/s/received/checkout/spans")
	if n := strings.Count(spans, `<g class="span"`); n != 18 || !strings.Contains(spans, "POST /checkout: latency percentiles (36 spans)") {
		t.Errorf("spans page: %d spans in the waterfall, want the last cycle's 18, and the percentiles of 36 checkout spans", n)
	}

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
		{"/s/received/checkout/spans", "spans", 1500}, {"/s/received/basic/events", "events", 520},
	} {
		br.screenshot(t, base+p.path, p.name, p.height)
	}
}
