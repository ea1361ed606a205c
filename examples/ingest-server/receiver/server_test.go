package receiver

import (
	"bytes"
	"compress/gzip"
	"io"
	"log"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/pprofio/pprofio/examples/ingest-server/ingestpb"
)

const (
	cpu       = ingestpb.ProfileType_PROFILE_TYPE_CPU
	heap      = ingestpb.ProfileType_PROFILE_TYPE_HEAP
	goroutine = ingestpb.ProfileType_PROFILE_TYPE_GOROUTINE
)

func TestAcceptedBatchIsStored(t *testing.T) {
	f := newFixture(t, Options{})
	u := newUpload(t, cpu, heap, goroutine)
	u.Profiles[2].EndUnixNano = u.Profiles[2].StartUnixNano // a snapshot

	status, body := f.upload(u)
	if status != http.StatusOK || !strings.Contains(body, u.BatchId) {
		t.Fatalf("upload: %d %q, want 200 naming the batch", status, body)
	}
	id8 := u.BatchId[:8]
	want := map[string]string{
		"cpu":       "20261129T214117.123Z_20261129T214127.123Z_" + id8 + ".pb.gz",
		"heap":      "20261129T214117.123Z_20261129T214127.123Z_" + id8 + ".pb.gz",
		"goroutine": "20261129T214117.123Z_20261129T214117.123Z_" + id8 + ".pb.gz",
	}
	for typ, name := range want {
		path := filepath.Join(f.data, "checkout", typ, name)
		checkMode(t, path, 0o600)
		checkMode(t, filepath.Dir(path), 0o700|os.ModeDir)
		got := gunzipFile(t, path)
		if !bytes.Equal(got, rawHeapProfile(t)) {
			t.Errorf("%s: stored pprof differs from the one sent", path)
		}
		checkPprof(t, got)
	}
	checkMode(t, filepath.Join(f.data, "checkout"), 0o700|os.ModeDir)
	checkMode(t, filepath.Join(f.data, BatchesFile), 0o600)
	checkNoTempFiles(t, f.data)
}

func TestBatchesFileDescribesTheBatch(t *testing.T) {
	f := newFixture(t, Options{})
	u := newUpload(t, cpu, heap)
	if status, body := f.upload(u); status != http.StatusOK {
		t.Fatalf("upload: %d %q", status, body)
	}
	lines := readJSONLines[batchEntry](t, filepath.Join(f.data, BatchesFile))
	if len(lines) != 1 {
		t.Fatalf("%d lines in %s, want 1", len(lines), BatchesFile)
	}
	e := lines[0]
	src := u.Source
	if e.BatchID != u.BatchId || e.Sequence != 7 || e.Spans != 2 || time.Since(e.Received) > time.Minute {
		t.Errorf("entry = %+v", e)
	}
	if e.Source.Service != src.Service || e.Source.InstanceID != src.InstanceId ||
		e.Source.Hostname != src.Hostname || e.Source.PID != src.Pid || e.Source.AgentVersion != src.AgentVersion ||
		e.Source.RuntimeVersion != src.RuntimeVersion || e.Source.OS != src.Os || e.Source.Arch != src.Arch ||
		e.Source.Tags["env"] != "test" {
		t.Errorf("source = %+v, want the fields of %v", e.Source, src)
	}
	if len(e.Profiles) != 2 || e.Profiles[0].Type != "cpu" || e.Profiles[1].Type != "heap" ||
		e.Profiles[1].Bytes != len(rawHeapProfile(t)) || !e.Profiles[1].Delta ||
		!e.Profiles[0].Start.Equal(testWindowStart) || e.Profiles[0].End.Sub(e.Profiles[0].Start) != 10*time.Second {
		t.Errorf("profiles = %+v", e.Profiles)
	}
	if _, err := os.Stat(filepath.Join(f.data, e.Profiles[0].File)); err != nil {
		t.Errorf("profile file named in the entry: %v", err)
	}
	if len(e.Events) != 1 || e.Events[0].Kind != "profile_skipped" ||
		e.Events[0].Attributes["reason"] != "busy" || e.Events[0].Message == "" {
		t.Errorf("events = %+v", e.Events)
	}
}

func TestRepeatedBatchIs409(t *testing.T) {
	f := newFixture(t, Options{})
	u := newUpload(t, heap)
	if status, _ := f.upload(u); status != http.StatusOK {
		t.Fatalf("first upload: %d", status)
	}
	if status, _ := f.upload(u); status != http.StatusConflict {
		t.Fatalf("repeat: %d, want 409", status)
	}
	if n := len(readJSONLines[batchEntry](t, filepath.Join(f.data, BatchesFile))); n != 1 {
		t.Errorf("%d batch lines, want 1", n)
	}
}

func TestRepeatAcrossRestartIs409(t *testing.T) {
	dir := t.TempDir()
	u := newUpload(t, heap)
	first, err := New(Options{DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := first.store.accept(u, time.Now()); err != nil {
		t.Fatal(err)
	}
	second, err := New(Options{DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := second.store.accept(u, time.Now()); err != errDuplicate {
		t.Fatalf("accept after restart: %v, want errDuplicate", err)
	}
}

func TestAuthorization(t *testing.T) {
	tests := []struct {
		name   string
		keys   []string
		header string
		want   int
	}{
		{"good key", []string{"k1", testKey}, "Bearer " + testKey, 200},
		{"scheme is case-insensitive", nil, "bearer " + testKey, 200},
		{"wrong key", nil, "Bearer nope", 401},
		{"missing", nil, "", 401},
		{"not bearer", nil, "Basic " + testKey, 401},
		{"empty token", nil, "Bearer ", 401},
		{"no keys configured: any token", []string{}, "Bearer anything", 200},
		{"no keys configured: still needs one", []string{}, "Bearer ", 401},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, Options{APIKeys: tt.keys})
			u := newUpload(t, heap)
			req := f.request(encode(t, u), u.BatchId)
			req.Header.Set("Authorization", tt.header)
			if tt.header == "" {
				req.Header.Del("Authorization")
			}
			if resp, body := f.do(req); resp.StatusCode != tt.want {
				t.Fatalf("status %d %q, want %d", resp.StatusCode, body, tt.want)
			}
		})
	}
}

func TestMalformedBodyIs400(t *testing.T) {
	good := newUpload(t, heap)
	tests := []struct {
		name   string
		body   func(t *testing.T, u *ingestpb.UploadRequest) []byte
		key    func(u *ingestpb.UploadRequest) string
		reason string
	}{
		{"not gzip", func(*testing.T, *ingestpb.UploadRequest) []byte { return []byte("plain text") }, nil, "gzip"},
		{"truncated gzip", func(t *testing.T, u *ingestpb.UploadRequest) []byte { b := encode(t, u); return b[:len(b)/2] }, nil, "gzip"},
		{"not protobuf", func(t *testing.T, _ *ingestpb.UploadRequest) []byte { return gzipped(t, []byte{0xff, 0xff, 0xff}) }, nil, "UploadRequest"},
		{"batch_id uppercase", withBatchID(strings.ToUpper(good.BatchId)), nil, "batch_id"},
		{"batch_id short", withBatchID("abc123"), nil, "batch_id"},
		{"batch_id empty", withBatchID(""), nil, "batch_id"},
		{"Idempotency-Key differs", nil, func(*ingestpb.UploadRequest) string { return newID() }, "Idempotency-Key"},
		{"Idempotency-Key missing", nil, func(*ingestpb.UploadRequest) string { return "" }, "Idempotency-Key"},
		{"profile type unspecified", withProfileType(ingestpb.ProfileType_PROFILE_TYPE_UNSPECIFIED), nil, "type"},
		{"empty pprof", withEmptyPprof, nil, "empty pprof"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, Options{})
			u := proto.Clone(good).(*ingestpb.UploadRequest)
			body := encode(t, u)
			if tt.body != nil {
				body = tt.body(t, u)
			}
			key := u.BatchId
			if tt.key != nil {
				key = tt.key(u)
			}
			req := f.request(body, key)
			if key == "" {
				req.Header.Del("Idempotency-Key")
			}
			resp, text := f.do(req)
			if resp.StatusCode != http.StatusBadRequest || !strings.Contains(text, tt.reason) {
				t.Fatalf("got %d %q, want 400 mentioning %q", resp.StatusCode, text, tt.reason)
			}
			if _, err := os.Stat(filepath.Join(f.data, BatchesFile)); !os.IsNotExist(err) {
				t.Errorf("%s exists after a refused batch (err %v)", BatchesFile, err)
			}
		})
	}
}

func withBatchID(id string) func(*testing.T, *ingestpb.UploadRequest) []byte {
	return func(t *testing.T, u *ingestpb.UploadRequest) []byte {
		u.BatchId = id
		return encode(t, u)
	}
}

func withProfileType(typ ingestpb.ProfileType) func(*testing.T, *ingestpb.UploadRequest) []byte {
	return func(t *testing.T, u *ingestpb.UploadRequest) []byte {
		u.Profiles[0].Type = typ
		return encode(t, u)
	}
}

func withEmptyPprof(t *testing.T, u *ingestpb.UploadRequest) []byte {
	u.Profiles[0].Pprof = nil
	return encode(t, u)
}

func TestUnsupportedMediaIs415(t *testing.T) {
	tests := []struct{ name, header, value string }{
		{"json", "Content-Type", "application/json"},
		{"no content type", "Content-Type", ""},
		{"no encoding", "Content-Encoding", ""},
		{"deflate", "Content-Encoding", "deflate"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, Options{})
			u := newUpload(t, heap)
			req := f.request(encode(t, u), u.BatchId)
			req.Header.Set(tt.header, tt.value)
			if tt.value == "" {
				req.Header.Del(tt.header)
			}
			if resp, body := f.do(req); resp.StatusCode != http.StatusUnsupportedMediaType {
				t.Fatalf("status %d %q, want 415", resp.StatusCode, body)
			}
		})
	}
	t.Run("parameters allowed", func(t *testing.T) {
		f := newFixture(t, Options{})
		u := newUpload(t, heap)
		req := f.request(encode(t, u), u.BatchId)
		req.Header.Set("Content-Type", "application/x-protobuf; messageType=pprofio.ingest.v1.UploadRequest")
		if resp, body := f.do(req); resp.StatusCode != http.StatusOK {
			t.Fatalf("status %d %q, want 200", resp.StatusCode, body)
		}
	})
}

func TestOverWireLimitIs413(t *testing.T) {
	u := newUpload(t, cpu, heap, goroutine)
	body := encode(t, u)
	limit := int64(len(body)) - 1
	for _, chunked := range []bool{false, true} {
		f := newFixture(t, Options{MaxWireBytes: limit})
		req := f.request(body, u.BatchId)
		if chunked { // no Content-Length: the limit is found while reading
			req.Body = io.NopCloser(io.MultiReader(bytes.NewReader(body)))
			req.ContentLength = -1
		}
		resp, text := f.do(req)
		if resp.StatusCode != http.StatusRequestEntityTooLarge || !strings.Contains(text, "wire") {
			t.Fatalf("chunked=%v: %d %q, want 413 about the wire", chunked, resp.StatusCode, text)
		}
		recs := f.waitRecords(1)
		if len(recs) != 1 || recs[0].Status != 413 {
			t.Fatalf("records = %+v", recs)
		}
	}
	f := newFixture(t, Options{MaxWireBytes: int64(len(body))})
	if status, text := f.upload(u); status != http.StatusOK {
		t.Fatalf("at the limit: %d %q, want 200", status, text)
	}
}

func TestGzipBombIs413(t *testing.T) {
	f := newFixture(t, Options{}) // default limits: 16 MiB wire, 64 MiB decompressed
	bomb := gzipZeros(t, DefaultMaxBodyBytes+1)
	if len(bomb) > 1<<20 {
		t.Fatalf("bomb is %d bytes on the wire", len(bomb))
	}
	id := newID()
	resp, text := f.do(f.request(bomb, id))
	if resp.StatusCode != http.StatusRequestEntityTooLarge || !strings.Contains(text, "decompressed") {
		t.Fatalf("%d %q, want 413 about the decompressed size", resp.StatusCode, text)
	}
	recs := f.waitRecords(1)
	if recs[0].BodyBytes != DefaultMaxBodyBytes || recs[0].WireBytes != int64(len(bomb)) {
		t.Errorf("record sizes: wire %d body %d", recs[0].WireBytes, recs[0].BodyBytes)
	}
}

// gzipZeros returns n zero bytes, gzipped: copies of one gzip member of
// 1 MiB of zeros, back to back (gzip readers read all members), then one
// member for the rest. About n/1000 bytes.
func gzipZeros(t *testing.T, n int64) []byte {
	t.Helper()
	const chunk = 1 << 20
	one := gzipped(t, make([]byte, chunk))
	out := bytes.Repeat(one, int(n/chunk))
	return append(out, gzipped(t, make([]byte, n%chunk))...)
}

func TestMethodAndPath(t *testing.T) {
	f := newFixture(t, Options{})
	resp, _ := f.do(mustRequest(t, http.MethodGet, f.url(IngestPath)))
	if resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Allow") != "POST" {
		t.Errorf("GET: %d Allow=%q, want 405 Allow=POST", resp.StatusCode, resp.Header.Get("Allow"))
	}
	for _, path := range []string{"/", "/v1/profile", "/v1/profiles/x", "/v2/profiles"} {
		if resp, _ := f.do(mustRequest(t, http.MethodPost, f.url(path))); resp.StatusCode != http.StatusNotFound {
			t.Errorf("POST %s: %d, want 404", path, resp.StatusCode)
		}
	}
	u := newUpload(t, heap)
	req := f.request(encode(t, u), u.BatchId)
	req.URL.Path = "/some/prefix" + IngestPath
	if resp, body := f.do(req); resp.StatusCode != http.StatusOK {
		t.Errorf("POST with a prefix: %d %q, want 200", resp.StatusCode, body)
	}
}

func TestRecordLines(t *testing.T) {
	f := newFixture(t, Options{})
	u := newUpload(t, cpu, heap)
	body := encode(t, u)
	req := f.request(body, u.BatchId)
	req.Header.Set("Authorization", "Bearer "+testKey) // as received, key included
	f.do(req)
	bad := f.request(body, u.BatchId)
	bad.Header.Set("Authorization", "Bearer wrong")
	f.do(bad)

	recs := f.waitRecords(2)
	if len(recs) != 2 {
		t.Fatalf("%d records, want 2", len(recs))
	}
	r := recs[0]
	raw, _ := proto.Marshal(u)
	if r.Method != "POST" || r.Path != IngestPath || r.Status != 200 || r.Action != "ok" ||
		r.WireBytes != int64(len(body)) || r.BodyBytes != int64(len(raw)) || !r.Decoded ||
		r.BatchID != u.BatchId || r.Sequence != 7 || r.Profiles != 2 ||
		strings.Join(r.ProfileTypes, ",") != "cpu,heap" || strings.Join(r.EventKinds, ",") != "profile_skipped" ||
		r.Service != "checkout" || r.InstanceID != u.Source.InstanceId || time.Since(r.Time) > time.Minute {
		t.Errorf("record = %+v", r)
	}
	wantHeaders := map[string]string{
		"Authorization":    "Bearer " + testKey,
		"Content-Type":     "application/x-protobuf",
		"Content-Encoding": "gzip",
		"Idempotency-Key":  u.BatchId,
		"User-Agent":       "pprofio-go/0.0.1 (linux/amd64; go1.26.8)",
	}
	for k, v := range wantHeaders {
		if r.Headers[k] != v {
			t.Errorf("header %s = %q, want %q", k, r.Headers[k], v)
		}
	}
	if recs[1].Status != 401 || recs[1].Headers["Authorization"] != "Bearer wrong" || recs[1].Reason == "" {
		t.Errorf("second record = %+v", recs[1])
	}
}

func TestSafeName(t *testing.T) {
	tests := map[string]string{
		"checkout":     "checkout",
		"my-svc_1.2":   "my-svc_1.2",
		"":             "_",
		".":            "_.",
		"..":           "_..",
		"../../etc":    "_.._.._etc",
		"a/b":          "a_b",
		"spaces here!": "spaces_here_",
	}
	for in, want := range tests {
		if got := safeName(in); got != want {
			t.Errorf("safeName(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestServiceNameCannotEscapeDataDir(t *testing.T) {
	f := newFixture(t, Options{})
	u := newUpload(t, heap)
	u.Source.Service = "../../escaped"
	if status, body := f.upload(u); status != http.StatusOK {
		t.Fatalf("upload: %d %q", status, body)
	}
	matches, _ := filepath.Glob(filepath.Join(f.data, "_.._.._escaped", "heap", "*.pb.gz"))
	if len(matches) != 1 {
		t.Fatalf("stored files under the sanitized name: %v", matches)
	}
}

func TestSameTypeAndWindowTwiceInOneBatch(t *testing.T) {
	f := newFixture(t, Options{})
	u := newUpload(t, ingestpb.ProfileType_PROFILE_TYPE_CUSTOM, ingestpb.ProfileType_PROFILE_TYPE_CUSTOM)
	if status, body := f.upload(u); status != http.StatusOK {
		t.Fatalf("upload: %d %q", status, body)
	}
	matches, _ := filepath.Glob(filepath.Join(f.data, "checkout", "custom", "*.pb.gz"))
	if len(matches) != 2 {
		t.Fatalf("files: %v, want 2", matches)
	}
}

func mustRequest(t *testing.T, method, url string) *http.Request {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	return req
}

func checkMode(t *testing.T, path string, want os.FileMode) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := fi.Mode() & (os.ModePerm | os.ModeDir); got != want {
		t.Errorf("%s: mode %v, want %v", path, got, want)
	}
}

func checkNoTempFiles(t *testing.T, dir string) {
	t.Helper()
	filepath.Walk(dir, func(path string, fi os.FileInfo, err error) error {
		if err == nil && strings.HasPrefix(fi.Name(), ".tmp-") {
			t.Errorf("temporary file left: %s", path)
		}
		return nil
	})
}

func gunzipFile(t *testing.T, path string) []byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	b, err := io.ReadAll(zr)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return b
}

// The parts of a batch split after a 413 keep its sequence, each with its
// own batch_id (API.md): they are counted as parts, not duplicates, in the
// batches file, the record and the log; a repeated batch_id is the
// duplicate (409). The count of parts survives a restart.
func TestSplitPartsShareTheSequenceAndAreNotDuplicates(t *testing.T) {
	var logBuf syncBuffer
	f := newFixture(t, Options{Logger: log.New(&logBuf, "", 0)})
	whole := newUpload(t, cpu, heap)
	part1, part2 := newUpload(t, cpu), newUpload(t, heap)
	part1.Source, part2.Source = whole.Source, whole.Source
	for i, u := range []*ingestpb.UploadRequest{part1, part2, part1} {
		want := http.StatusOK
		if i == 2 {
			want = http.StatusConflict
		}
		if status, body := f.upload(u); status != want {
			t.Fatalf("upload %d: %d %q, want %d", i+1, status, body, want)
		}
	}
	lines := readJSONLines[map[string]any](t, filepath.Join(f.data, BatchesFile))
	if len(lines) != 2 || lines[0]["part"] != 1.0 || lines[1]["part"] != 2.0 {
		t.Errorf("batches file: %v, want parts 1 and 2 of sequence 7", lines)
	}
	recs := readJSONLines[map[string]any](t, f.record)
	if len(recs) != 3 || recs[0]["part"] != 1.0 || recs[1]["part"] != 2.0 || recs[2]["part"] != nil {
		t.Errorf("record: %v, want parts 1 and 2, then a duplicate without a part", recs)
	}
	logText := logBuf.String()
	if !strings.Contains(logText, "seq 7 part 2") || !strings.Contains(logText, "duplicate batch "+part1.GetBatchId()) ||
		strings.Count(logText, "duplicate") != 1 {
		t.Errorf("log:\n%s\nwant part 2 of seq 7 and one duplicate", logText)
	}
	if got, want := f.srv.Stats(), (Stats{Batches: 1, Parts: 1, Duplicates: 1}); got != want {
		t.Errorf("Stats() = %+v, want %+v", got, want)
	}

	again, err := New(Options{DataDir: f.data})
	if err != nil {
		t.Fatal(err)
	}
	part3 := newUpload(t, heap)
	part3.Source = whole.Source
	entry, err := again.store.accept(part3, time.Now())
	if err != nil || entry.Part != 3 {
		t.Errorf("a third part after a restart: part %v, %v; want part 3", entry, err)
	}
}
