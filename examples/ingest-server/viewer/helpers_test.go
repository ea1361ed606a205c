package viewer

// Test data: pprof profiles of each type built from made-up stacks, sent
// as real batches over TLS to the real receiver (examples/ingest-server/
// receiver), or written in an agent's OutputDir layout.

import (
	"bytes"
	"compress/gzip"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"hash/fnv"
	"html"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/pprof/profile"
	"github.com/pprofio/pprofio/examples/ingest-server/ingestpb"
	"github.com/pprofio/pprofio/examples/ingest-server/receiver"
	"google.golang.org/protobuf/proto"
)

// stack is a made-up sample: frames leaf first, values, labels.
type stack struct {
	frames []string
	values []int64
	labels map[string][]string
}

// sampleTypes of each profile type, as the Go runtime writes them.
var sampleTypes = map[string][][2]string{
	"cpu":       {{"samples", "count"}, {"cpu", "nanoseconds"}},
	"heap":      {{"alloc_objects", "count"}, {"alloc_space", "bytes"}, {"inuse_objects", "count"}, {"inuse_space", "bytes"}},
	"goroutine": {{"goroutine", "count"}},
	"mutex":     {{"contentions", "count"}, {"delay", "nanoseconds"}},
	"block":     {{"contentions", "count"}, {"delay", "nanoseconds"}},
}

// buildProfile encodes a pprof profile (not gzipped) of the given stacks.
func buildProfile(tb testing.TB, typ string, start time.Time, stacks []stack) []byte {
	tb.Helper()
	p := &profile.Profile{TimeNanos: start.UnixNano(), DurationNanos: int64(10 * time.Second)}
	for _, st := range sampleTypes[typ] {
		p.SampleType = append(p.SampleType, &profile.ValueType{Type: st[0], Unit: st[1]})
	}
	p.PeriodType = p.SampleType[len(p.SampleType)-1]
	p.Period = 1
	funcs := map[string]*profile.Function{}
	locs := map[string]*profile.Location{}
	for _, s := range stacks {
		smp := &profile.Sample{Value: s.values, Label: s.labels}
		for _, name := range s.frames {
			if locs[name] == nil {
				f := &profile.Function{ID: uint64(len(funcs) + 1), Name: name, SystemName: name, Filename: "main.go"}
				funcs[name] = f
				p.Function = append(p.Function, f)
				l := &profile.Location{ID: uint64(len(locs) + 1), Address: addressOf(name), Line: []profile.Line{{Function: f, Line: 10}}}
				locs[name] = l
				p.Location = append(p.Location, l)
			}
			smp.Location = append(smp.Location, locs[name])
		}
		p.Sample = append(p.Sample, smp)
	}
	var buf bytes.Buffer
	if err := p.WriteUncompressed(&buf); err != nil {
		tb.Fatal(err)
	}
	return buf.Bytes()
}

// addressOf gives each function one program counter, the same in every
// profile, as a Go binary does (merges then add up the same locations).
func addressOf(name string) uint64 {
	h := fnv.New32a()
	h.Write([]byte(name))
	return 0x400000 + uint64(h.Sum32())*16
}

// cycleStacks are the stacks of cycle i of a test service: hotFunc burns
// CPU, allocFunc allocates, lockFunc contends, waitFunc blocks, and
// leakFunc goroutines grow by 10 a cycle.
func cycleStacks(i int) map[string][]stack {
	return map[string][]stack{
		"cpu": {
			{frames: []string{"main.hotFunc", "main.main"}, values: []int64{90, 900e6}, labels: map[string][]string{"span": {"checkout"}}},
			{frames: []string{"main.coldFunc", "main.main"}, values: []int64{10, 100e6}, labels: map[string][]string{"span": {"search"}}},
		},
		"heap": {
			{frames: []string{"main.allocFunc", "main.main"}, values: []int64{1000, 1 << 20, 10, 64 << 10}},
			{frames: []string{"main.smallAlloc", "main.main"}, values: []int64{10, 1 << 10, 1, 512}},
		},
		"goroutine": {
			{frames: []string{"runtime.gopark", "main.leakFunc", "runtime.goexit"}, values: []int64{int64(10 * (i + 1))}},
			{frames: []string{"runtime.gopark", "time.Sleep", "main.worker", "runtime.goexit"}, values: []int64{4}},
		},
		"mutex": {{frames: []string{"sync.(*Mutex).Unlock", "main.lockFunc", "main.main"}, values: []int64{50, 5e6}}},
		"block": {
			{frames: []string{"runtime.chanrecv1", "main.waitFunc", "main.main"}, values: []int64{200, 40e6}},
			{frames: []string{"sync.(*Cond).Wait", "main.condFunc", "main.main"}, values: []int64{20, 10e6}},
		},
	}
}

// ingest is the real receiver over TLS on loopback.
type ingest struct {
	dir    string
	url    string
	client *http.Client
}

func newIngest(tb testing.TB) *ingest {
	tb.Helper()
	dir := filepath.Join(tb.TempDir(), "received")
	srv, err := receiver.New(receiver.Options{DataDir: dir, APIKeys: []string{"k"}})
	if err != nil {
		tb.Fatal(err)
	}
	ss, err := receiver.GenerateSelfSigned()
	if err != nil {
		tb.Fatal(err)
	}
	ts := httptest.NewUnstartedServer(srv)
	ts.TLS = &tls.Config{Certificates: []tls.Certificate{ss.Leaf}}
	ts.StartTLS()
	tb.Cleanup(func() { srv.Close(); ts.Close() })
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ss.CAPEM)
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	return &ingest{dir: dir, url: ts.URL, client: client}
}

// send uploads req as the agent does and fails the test unless it is accepted.
func (in *ingest) send(tb testing.TB, req *ingestpb.UploadRequest) {
	tb.Helper()
	raw, err := proto.Marshal(req)
	if err != nil {
		tb.Fatal(err)
	}
	var body bytes.Buffer
	zw := gzip.NewWriter(&body)
	zw.Write(raw)
	zw.Close()
	hr, _ := http.NewRequest("POST", in.url+receiver.IngestPath, &body)
	hr.Header.Set("Authorization", "Bearer k")
	hr.Header.Set("Content-Type", "application/x-protobuf")
	hr.Header.Set("Content-Encoding", "gzip")
	hr.Header.Set("Idempotency-Key", req.GetBatchId())
	resp, err := in.client.Do(hr)
	if err != nil {
		tb.Fatal(err)
	}
	msg, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		tb.Fatalf("upload: %d %s", resp.StatusCode, msg)
	}
}

func batchID() string {
	b := make([]byte, 16)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// t0 is when test services start.
var t0 = time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)

// cycle is the test cadence.
const cycle = time.Minute

var typeEnum = map[string]ingestpb.ProfileType{
	"cpu": ingestpb.ProfileType_PROFILE_TYPE_CPU, "heap": ingestpb.ProfileType_PROFILE_TYPE_HEAP,
	"goroutine": ingestpb.ProfileType_PROFILE_TYPE_GOROUTINE, "mutex": ingestpb.ProfileType_PROFILE_TYPE_MUTEX,
	"block": ingestpb.ProfileType_PROFILE_TYPE_BLOCK,
}

// window returns a type's window in cycle i.
func window(typ string, i int) (time.Time, time.Time) {
	start := t0.Add(time.Duration(i) * cycle)
	switch typ {
	case "heap":
		return start, start.Add(cycle)
	case "goroutine":
		return start.Add(cycle), start.Add(cycle)
	}
	return start, start.Add(10 * time.Second)
}

// testBatch is cycle i of service svc, with every profile type, the given
// events, and spans (checkout with a child, search) when withSpans.
func testBatch(tb testing.TB, svc string, i int, events []*ingestpb.Event, withSpans bool) *ingestpb.UploadRequest {
	req := &ingestpb.UploadRequest{BatchId: batchID(), Sequence: uint64(i + 1), Events: events,
		Source: &ingestpb.Source{Service: svc, InstanceId: strings.Repeat("a", 32), Hostname: "host1", Tags: map[string]string{"env": "test"}}}
	stacks := cycleStacks(i)
	for _, typ := range profileTypes {
		start, end := window(typ, i)
		req.Profiles = append(req.Profiles, &ingestpb.Profile{Type: typeEnum[typ], StartUnixNano: start.UnixNano(),
			EndUnixNano: end.UnixNano(), Pprof: buildProfile(tb, typ, start, stacks[typ]), Delta: typ != "goroutine"})
	}
	if withSpans {
		base := t0.Add(time.Duration(i)*cycle + time.Second).UnixNano()
		for j := 0; j < 5; j++ {
			root := uint64(100*i + 10*j + 1)
			at := base + int64(j)*int64(time.Second)
			req.Spans = append(req.Spans,
				&ingestpb.Span{Name: "checkout", StartUnixNano: at, DurationNanos: int64(j+1) * int64(10*time.Millisecond), SpanId: root},
				&ingestpb.Span{Name: "db.query", StartUnixNano: at + 1e6, DurationNanos: int64(j+1) * int64(4*time.Millisecond), SpanId: root + 1, ParentSpanId: root},
				&ingestpb.Span{Name: "search", StartUnixNano: at + 5e8, DurationNanos: int64(3 * time.Millisecond), SpanId: root + 2, Tags: map[string]string{"q": "x"}})
		}
	}
	return req
}

// leakEvent is the agent's goroutine_leak event in cycle i.
func leakEvent(i int) *ingestpb.Event {
	return &ingestpb.Event{Kind: "goroutine_leak", TimeUnixNano: t0.Add(time.Duration(i+1) * cycle).UnixNano(),
		Message:    "goroutines grew from 20 to 60 over 4 cycles; top growing: main.leakFunc +40",
		Attributes: map[string]string{"count": fmt.Sprint(10*(i+1) + 4), "growth": "40", "windows": "4"}}
}

// writeLocal writes cycle i of svc in an agent OutputDir layout.
func writeLocal(tb testing.TB, dir, svc string, i int) {
	tb.Helper()
	stacks := cycleStacks(i)
	for _, typ := range profileTypes {
		start, end := window(typ, i)
		var gz bytes.Buffer
		zw := gzip.NewWriter(&gz)
		zw.Write(buildProfile(tb, typ, start, stacks[typ]))
		zw.Close()
		writeFile(tb, filepath.Join(dir, svc, typ, start.Format(fileTimeLayout)+"_"+end.Format(fileTimeLayout)+".pb.gz"), gz.Bytes())
	}
}

func writeFile(tb testing.TB, path string, data []byte) {
	tb.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		tb.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o600); err != nil {
		tb.Fatal(err)
	}
}

// newTestViewer shows a received folder and a local folder.
func newTestViewer(tb testing.TB, received, local string) *Viewer {
	tb.Helper()
	v, err := New(Options{IndexPath: filepath.Join(tb.TempDir(), "index.db"), Sources: []Source{
		{Name: "received", Dir: received, Kind: KindReceived}, {Name: "local", Dir: local, Kind: KindLocal}}})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { v.Close() })
	if err := v.Refresh(); err != nil {
		tb.Fatal(err)
	}
	return v
}

// get serves a GET and returns the status and body.
func get(tb testing.TB, h http.Handler, path string) (int, string) {
	tb.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
	return rec.Code, rec.Body.String()
}

// mustGet fails unless the page answers want and contains every string.
func mustGet(tb testing.TB, h http.Handler, path string, want int, contains ...string) string {
	tb.Helper()
	code, body := get(tb, h, path)
	if code != want {
		tb.Fatalf("GET %s: status %d, want %d\n%.2000s", path, code, want, body)
	}
	for _, c := range contains {
		if !strings.Contains(body, c) && !strings.Contains(body, html.EscapeString(c)) {
			tb.Fatalf("GET %s: the page does not contain %q\n%.3000s", path, c, body)
		}
	}
	noTrace(tb, path, body)
	return body
}

// noTrace fails when a page shows a Go stack trace.
func noTrace(tb testing.TB, path, body string) {
	tb.Helper()
	for _, bad := range []string{"goroutine 1 [", "panic(", "debug.Stack", "[running]"} {
		if strings.Contains(body, bad) {
			tb.Fatalf("GET %s: the page shows a stack trace (%q)", path, bad)
		}
	}
}
