package receiver

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/pprofio/pprofio/examples/ingest-server/ingestpb"
)

const testKey = "test-key-1"

// fixture is a receiver served over HTTPS by httptest, with its data
// folder and request record in a temporary folder.
type fixture struct {
	t      *testing.T
	srv    *Server
	ts     *httptest.Server
	data   string
	record string
}

// newFixture starts a receiver; opts.DataDir and opts.Recorder are filled
// in, and APIKeys defaults to testKey.
func newFixture(t *testing.T, opts Options) *fixture {
	t.Helper()
	dir := t.TempDir()
	f := &fixture{t: t, data: filepath.Join(dir, "data"), record: filepath.Join(dir, "record.jsonl")}
	recFile, err := os.OpenFile(f.record, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { recFile.Close() })
	opts.DataDir = f.data
	opts.Recorder = NewRecorder(recFile)
	if opts.APIKeys == nil {
		opts.APIKeys = []string{testKey}
	}
	if f.srv, err = New(opts); err != nil {
		t.Fatal(err)
	}
	f.ts = httptest.NewUnstartedServer(f.srv)
	f.ts.StartTLS()
	t.Cleanup(func() {
		f.srv.Close()
		f.ts.Close()
	})
	return f
}

// client returns a client trusting the server, without keep-alives (so no
// request is retried on a reused connection) and following no redirects.
func (f *fixture) client(timeout time.Duration) *http.Client {
	tr := f.ts.Client().Transport.(*http.Transport).Clone()
	tr.DisableKeepAlives = true
	return &http.Client{
		Transport:     tr,
		Timeout:       timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// url returns the server's URL for path.
func (f *fixture) url(path string) string { return f.ts.URL + path }

// request builds a POST to the ingest path with the headers the agent
// sends, for the given body and batch_id.
func (f *fixture) request(body []byte, batchID string) *http.Request {
	return uploadRequest(f.t, f.url(IngestPath), body, batchID)
}

// uploadRequest builds a POST to url with the headers the agent sends.
func uploadRequest(t *testing.T, url string, body []byte, batchID string) *http.Request {
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+testKey)
	req.Header.Set("Content-Type", "application/x-protobuf")
	req.Header.Set("Content-Encoding", "gzip")
	req.Header.Set("Idempotency-Key", batchID)
	req.Header.Set("User-Agent", "pprofio-go/0.0.1 (linux/amd64; go1.26.8)")
	return req
}

// do sends req and returns the status and the body of the answer.
func (f *fixture) do(req *http.Request) (*http.Response, string) {
	f.t.Helper()
	resp, err := f.client(clientTimeout).Do(req)
	if err != nil {
		f.t.Fatalf("%s %s: %v", req.Method, req.URL.Path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		f.t.Fatal(err)
	}
	return resp, string(b)
}

// upload sends an upload and returns the status and answer body.
func (f *fixture) upload(u *ingestpb.UploadRequest) (int, string) {
	f.t.Helper()
	resp, body := f.do(f.request(encode(f.t, u), u.GetBatchId()))
	return resp.StatusCode, body
}

// records reads the request record.
func (f *fixture) records() []Record {
	f.t.Helper()
	return readJSONLines[Record](f.t, f.record)
}

// Verdicts must not depend on how fast the machine is: tests wait for
// events, and these bounds only turn a hang into a failure. clientTimeout
// is for requests that are meant to be answered; a test that means a
// request to hang cancels it itself once the server has recorded it.
const (
	waitGuard     = 2 * time.Minute
	clientTimeout = 2 * time.Minute
)

// waitRecords waits until the record has at least n lines (up to waitGuard).
func (f *fixture) waitRecords(n int) []Record {
	f.t.Helper()
	deadline := time.Now().Add(waitGuard)
	for {
		recs := f.records()
		if len(recs) >= n || time.Now().After(deadline) {
			return recs
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// readJSONLines decodes every line of a JSON-lines file.
func readJSONLines[T any](t *testing.T, path string) []T {
	t.Helper()
	f, err := os.Open(path)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []T
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 16<<20)
	for sc.Scan() {
		var v T
		if err := json.Unmarshal(sc.Bytes(), &v); err != nil {
			t.Fatalf("%s: line %q: %v", path, sc.Text(), err)
		}
		out = append(out, v)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

var (
	heapOnce sync.Once
	heapRaw  []byte
	// heapBallast holds allocations so that the heap profile has samples.
	heapBallast [][]byte
)

// rawHeapProfile returns real pprof bytes, not gzipped, as the agent sends
// them: this process's heap profile, decompressed.
func rawHeapProfile(t *testing.T) []byte {
	t.Helper()
	heapOnce.Do(func() {
		for i := 0; i < 64; i++ {
			heapBallast = append(heapBallast, make([]byte, 64<<10))
		}
		runtime.GC() // the heap profile shows the heap as of the last GC
		var buf bytes.Buffer
		if err := pprof.Lookup("heap").WriteTo(&buf, 0); err != nil {
			panic(err)
		}
		zr, err := gzip.NewReader(&buf)
		if err != nil {
			panic(err)
		}
		if heapRaw, err = io.ReadAll(zr); err != nil {
			panic(err)
		}
	})
	return heapRaw
}

// newID returns a random batch or instance id.
func newID() string {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b)
}

// testWindowStart is the start of the profiles' window in test uploads:
// 2026-11-29 21:41:17.123456789 UTC.
var testWindowStart = time.Date(2026, 11, 29, 21, 41, 17, 123456789, time.UTC)

// newUpload builds an upload with one profile per type, all with the same
// real heap pprof bytes over a 10 s window, plus an event and two spans.
func newUpload(t *testing.T, types ...ingestpb.ProfileType) *ingestpb.UploadRequest {
	raw := rawHeapProfile(t)
	start := testWindowStart.UnixNano()
	u := &ingestpb.UploadRequest{
		BatchId:  newID(),
		Sequence: 7,
		Source: &ingestpb.Source{
			Service:        "checkout",
			Tags:           map[string]string{"env": "test"},
			Hostname:       "host-1",
			Pid:            4242,
			InstanceId:     newID(),
			AgentVersion:   "0.0.1",
			RuntimeVersion: "go1.26.8",
			Os:             "linux",
			Arch:           "amd64",
		},
		Events: []*ingestpb.Event{{
			Kind:         "profile_skipped",
			TimeUnixNano: start,
			Message:      "another CPU profile was running",
			Attributes:   map[string]string{"type": "cpu", "reason": "busy"},
		}},
		Spans: []*ingestpb.Span{{Name: "a", SpanId: 1}, {Name: "b", SpanId: 2, ParentSpanId: 1}},
	}
	for _, typ := range types {
		u.Profiles = append(u.Profiles, &ingestpb.Profile{
			Type:          typ,
			StartUnixNano: start,
			EndUnixNano:   start + 10*int64(time.Second),
			Pprof:         raw,
			Delta:         typ == ingestpb.ProfileType_PROFILE_TYPE_HEAP,
		})
	}
	return u
}

// encode serializes and gzips an upload, as the agent does.
func encode(t *testing.T, u *ingestpb.UploadRequest) []byte {
	t.Helper()
	b, err := proto.Marshal(u)
	if err != nil {
		t.Fatal(err)
	}
	return gzipped(t, b)
}

// gzipped compresses b.
func gzipped(t *testing.T, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// checkPprof parses b as a perftools.profiles.Profile at the wire level:
// every field must decode, the string table must start with "" and the
// profile must have sample types and samples.
func checkPprof(t *testing.T, b []byte) {
	t.Helper()
	var strs []string
	var sampleTypes, samples int
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			t.Fatalf("pprof: bad tag: %v", protowire.ParseError(n))
		}
		b = b[n:]
		m := protowire.ConsumeFieldValue(num, typ, b)
		if m < 0 {
			t.Fatalf("pprof: field %d: %v", num, protowire.ParseError(m))
		}
		if typ == protowire.BytesType {
			v, _ := protowire.ConsumeBytes(b)
			switch num {
			case 1: // sample_type
				sampleTypes++
			case 2: // sample
				samples++
			case 6: // string_table
				strs = append(strs, string(v))
			}
		}
		b = b[m:]
	}
	if len(strs) == 0 || strs[0] != "" || sampleTypes == 0 || samples == 0 {
		t.Fatalf("pprof: %d strings (first %q), %d sample types, %d samples", len(strs), strs, sampleTypes, samples)
	}
}

// syncBuffer is a bytes.Buffer that the server's logger and the test can share.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
