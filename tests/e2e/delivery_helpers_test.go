package e2e

// Helpers of the delivery tests (delivery_test.go): the reference receiver
// (examples/ingest-server/receiver) run in-process over real TLS with every
// request captured whole, the spool on disk, child processes, and checks
// shared by several tests.

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/google/pprof/profile"
	"google.golang.org/protobuf/proto"

	"github.com/pprofio/pprofio"
	"github.com/pprofio/pprofio/examples/ingest-server/ingestpb"
	"github.com/pprofio/pprofio/examples/ingest-server/receiver"
	"github.com/pprofio/pprofio/tests/internal/testkit"
)

// testAPIKey is the key the agents send and the receiver accepts.
const testAPIKey = "e2e-test-key-3c9f"

// ---- the receiver -------------------------------------------------------

// ingestOpts configure newIngest.
type ingestOpts struct {
	// Script is the receiver's fault script (receiver.ParseScript).
	Script string
	// SmallRcvBuf shrinks the listening socket's receive buffer (inherited
	// by accepted connections), so a client can have little of a large
	// body in flight: a connection the server resets is then reset while
	// the client is still writing.
	SmallRcvBuf bool
}

// exchange is one request that reached the receiver, as the test saw it.
type exchange struct {
	At            time.Time
	Path          string
	Header        http.Header
	ContentLength int64
	// Wire is the body as far as the handler read it (all of it, except
	// for a "reset", which reads 100 bytes).
	Wire []byte
	// Body is Wire gunzipped; Req is Body decoded (nil when it did not).
	Body []byte
	Req  *ingestpb.UploadRequest
	// Status is the answer, 0 when there was none (reset, hang) or the
	// handler has not returned yet (Done false).
	Status int
	// Outage is set when the test's outage switch answered, not the receiver.
	Outage bool
	Done   bool
}

// accepted reports whether the receiver took the batch: stored it (200)
// or had it already (409).
func (e exchange) accepted() bool {
	return e.Req != nil && (e.Status == http.StatusOK || e.Status == http.StatusConflict)
}

func (e exchange) String() string {
	if e.Req == nil {
		return fmt.Sprintf("%s status %d wire %d/%d (undecoded)", e.At.Format("15:04:05.000"), e.Status,
			len(e.Wire), e.ContentLength)
	}
	return fmt.Sprintf("%s status %d seq %d id %s inst %.8s wire %d profiles %d events %v",
		e.At.Format("15:04:05.000"), e.Status, e.Req.GetSequence(), e.Req.GetBatchId(),
		e.Req.GetSource().GetInstanceId(), len(e.Wire), len(e.Req.GetProfiles()), eventKinds(e.Req))
}

func eventKinds(r *ingestpb.UploadRequest) []string {
	var out []string
	for _, e := range r.GetEvents() {
		out = append(out, e.GetKind())
	}
	return out
}

// ingest is the reference receiver behind an httptest TLS server. Its
// certificate comes from the receiver's own throwaway CA, whose PEM is in
// CAFile. Every request is captured (see exchange) before the receiver
// handles it; an outage switch can answer in its place.
type ingest struct {
	URL     string
	CAFile  string
	DataDir string
	srv     *receiver.Server
	ts      *httptest.Server

	down atomic.Int32 // while non-zero, answer this status (with Retry-After: 1) instead of the receiver

	mu   sync.Mutex
	reqs []*exchange
}

func newIngest(tb testing.TB, opts ingestOpts) *ingest {
	tb.Helper()
	script, err := receiver.ParseScript(opts.Script)
	if err != nil {
		tb.Fatalf("script %q: %v", opts.Script, err)
	}
	dir := tb.TempDir()
	in := &ingest{DataDir: filepath.Join(dir, "data"), CAFile: filepath.Join(dir, "ca.pem")}
	in.srv, err = receiver.New(receiver.Options{
		DataDir: in.DataDir,
		APIKeys: []string{testAPIKey},
		Script:  script,
	})
	if err != nil {
		tb.Fatalf("receiver.New: %v", err)
	}
	ss, err := receiver.GenerateSelfSigned()
	if err != nil {
		tb.Fatalf("GenerateSelfSigned: %v", err)
	}
	if err := os.WriteFile(in.CAFile, ss.CAPEM, 0o600); err != nil {
		tb.Fatal(err)
	}
	in.ts = httptest.NewUnstartedServer(in)
	if opts.SmallRcvBuf {
		in.ts.Listener.Close()
		in.ts.Listener = listenSmallRcvBuf(tb)
	}
	in.ts.TLS = &tls.Config{Certificates: []tls.Certificate{ss.Leaf}}
	// TLS handshake errors and hijacked connections are expected here.
	in.ts.Config.ErrorLog = log.New(io.Discard, "", 0)
	in.ts.StartTLS()
	in.URL = in.ts.URL
	tb.Cleanup(func() {
		in.srv.Close() // releases hanging handlers
		in.ts.Close()
	})
	return in
}

// ServeHTTP captures the request (its body as the handler reads it), then
// hands it to the receiver, or answers an outage.
func (in *ingest) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ex := &exchange{At: time.Now(), Path: r.URL.Path, Header: r.Header.Clone(), ContentLength: r.ContentLength}
	in.mu.Lock()
	in.reqs = append(in.reqs, ex)
	in.mu.Unlock()
	tee := &teeBody{rc: r.Body}
	r.Body = tee
	sw := &testkit.StatusWriter{ResponseWriter: w}
	defer func() {
		wire := tee.buf.Bytes()
		body, req := decodeUpload(wire)
		in.mu.Lock()
		ex.Wire, ex.Body, ex.Req, ex.Status, ex.Done = wire, body, req, sw.Status, true
		in.mu.Unlock()
	}()
	if st := int(in.down.Load()); st != 0 {
		_, _ = io.Copy(io.Discard, r.Body)
		ex.Outage = true
		w.Header().Set("Retry-After", "1")
		sw.WriteHeader(st)
		_, _ = io.WriteString(w, "outage\n")
		return
	}
	in.srv.ServeHTTP(sw, r)
}

// setDown starts an outage answering status (0 ends it).
func (in *ingest) setDown(status int) { in.down.Store(int32(status)) }

// all returns copies of every exchange so far, in arrival order.
func (in *ingest) all() []exchange {
	in.mu.Lock()
	defer in.mu.Unlock()
	out := make([]exchange, len(in.reqs))
	for i, e := range in.reqs {
		out[i] = *e
	}
	return out
}

// done returns the exchanges whose handler has returned, in arrival order.
func (in *ingest) done() []exchange {
	var out []exchange
	for _, e := range in.all() {
		if e.Done {
			out = append(out, e)
		}
	}
	return out
}

// acceptedUploads returns the exchanges in which the receiver took a batch
// (200 or 409), in arrival order.
func (in *ingest) acceptedUploads() []exchange {
	var out []exchange
	for _, e := range in.all() {
		if e.Done && e.accepted() {
			out = append(out, e)
		}
	}
	return out
}

// distinctAccepted returns the first acceptance of each batch_id, in order.
func (in *ingest) distinctAccepted() []exchange {
	seen := map[string]bool{}
	var out []exchange
	for _, e := range in.acceptedUploads() {
		if id := e.Req.GetBatchId(); !seen[id] {
			seen[id] = true
			out = append(out, e)
		}
	}
	return out
}

func (in *ingest) dump(tb testing.TB) {
	tb.Helper()
	for i, e := range in.all() {
		tb.Logf("request %d: %v", i+1, e)
	}
}

// storedBatch is a line of the receiver's batches.jsonl (the fields the
// tests use).
type storedBatch struct {
	BatchID  string `json:"batch_id"`
	Sequence uint64 `json:"sequence"`
	Source   struct {
		InstanceID string `json:"instance_id"`
		PID        int64  `json:"pid"`
	} `json:"source"`
	Profiles []struct {
		Type string `json:"type"`
		File string `json:"file"`
	} `json:"profiles"`
}

// stored reads what the receiver itself kept: one line per batch it
// accepted (200), in order.
func (in *ingest) stored(tb testing.TB) []storedBatch {
	tb.Helper()
	data, err := os.ReadFile(filepath.Join(in.DataDir, receiver.BatchesFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		tb.Fatal(err)
	}
	var out []storedBatch
	dec := json.NewDecoder(bytes.NewReader(data))
	for {
		var b storedBatch
		if err := dec.Decode(&b); err == io.EOF {
			return out
		} else if err != nil {
			tb.Fatalf("%s: %v", receiver.BatchesFile, err)
		}
		out = append(out, b)
	}
}

// decodeUpload gunzips and decodes a request body; nil when it does not.
func decodeUpload(wire []byte) ([]byte, *ingestpb.UploadRequest) {
	zr, err := gzip.NewReader(bytes.NewReader(wire))
	if err != nil {
		return nil, nil
	}
	body, err := io.ReadAll(zr)
	if err != nil {
		return nil, nil
	}
	req := new(ingestpb.UploadRequest)
	if proto.Unmarshal(body, req) != nil {
		return body, nil
	}
	return body, req
}

// teeBody keeps a copy of what is read through it.
type teeBody struct {
	rc  io.ReadCloser
	buf bytes.Buffer
}

func (b *teeBody) Read(p []byte) (int, error) {
	n, err := b.rc.Read(p)
	b.buf.Write(p[:n])
	return n, err
}

func (b *teeBody) Close() error { return b.rc.Close() }

// listenSmallRcvBuf listens on a loopback port whose accepted connections
// have a 4 KiB receive buffer.
func listenSmallRcvBuf(tb testing.TB) net.Listener {
	tb.Helper()
	lc := net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) {
			serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096)
		})
		if err != nil {
			return err
		}
		return serr
	}}
	l, err := lc.Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	return l
}

// closedPortURL returns an https URL to a loopback port nothing listens on
// (connection refused).
func closedPortURL(tb testing.TB) string {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return "https://" + addr
}

// ---- the agent ----------------------------------------------------------

// isolateEnv points the user cache folder (the default SpoolDir) at a
// temp folder, so no test touches the real one, and keeps any proxy of the
// environment away from the loopback receiver; children inherit both.
func isolateEnv(tb testing.TB) {
	tb.Helper()
	tb.Setenv("XDG_CACHE_HOME", tb.TempDir())
	for _, k := range []string{"NO_PROXY", "no_proxy"} {
		tb.Setenv(k, "127.0.0.1,localhost,::1")
	}
}

// deliveryConfig is an agent on the short cadence of the delivery tests,
// uploading to in with its own spool folder.
func deliveryConfig(in *ingest, service, spool string, logs *logCapture) pprofio.Config {
	return pprofio.Config{
		ServiceName: service,
		Tags:        map[string]string{"env": "e2e", "suite": "delivery"},
		IngestURL:   in.URL,
		CAFile:      in.CAFile,
		APIKey:      testAPIKey,
		SpoolDir:    spool,
		SampleRate:  time.Second,
		CPUDuration: 250 * time.Millisecond,
		StartJitter: -1,
		// Generous: Stop returns as soon as nothing is left to send, and a
		// busy machine must not turn a slow answer into a failed test.
		StopTimeout:    2 * time.Minute,
		ConnectTimeout: time.Minute,
		RequestTimeout: 2 * time.Minute,
		Logger:         slog.New(logs),
	}
}

// workload keeps a CPU-hot goroutine and an allocating one running until
// the test ends (or stop is called).
func workload(tb testing.TB) (stop func()) {
	var flag atomic.Bool
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		hotSpin(&flag)
	}()
	go func() {
		defer wg.Done()
		for !flag.Load() {
			allocHeavy(8)
			time.Sleep(20 * time.Millisecond)
		}
	}()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			flag.Store(true)
			wg.Wait()
		})
	}
	tb.Cleanup(stop)
	return stop
}

// waitForTB is waitFor for tests and benchmarks.
func waitForTB(tb testing.TB, what string, cond func() bool) {
	tb.Helper()
	testkit.WaitFor(tb, waitGuard, what, cond)
}

// timedStop runs p.Stop and returns how long it took; past stopGuard (a
// hang) the test fails.
func timedStop(t *testing.T, p *pprofio.Profiler) time.Duration {
	t.Helper()
	begin := time.Now()
	if err := stopWithin(t, p); err != nil {
		t.Errorf("Stop: %v", err)
	}
	return time.Since(begin)
}

// ---- the spool ----------------------------------------------------------

// spoolFileRE is a batch file of the spool: <order>-<batch_id>.batch.
var spoolFileRE = regexp.MustCompile(`^[0-9]{20}-([0-9a-f]{32})\.batch$`)

// spoolBatches returns the batch_ids of the batch files anywhere under dir,
// sorted by file name (the queue's order).
func spoolBatches(tb testing.TB, dir string) []string {
	tb.Helper()
	var names []string
	err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				return nil // removed while we walk
			}
			return err
		}
		if !d.IsDir() && spoolFileRE.MatchString(d.Name()) {
			names = append(names, d.Name())
		}
		return nil
	})
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		tb.Fatalf("walk %s: %v", dir, err)
	}
	sort.Strings(names)
	ids := make([]string, len(names))
	for i, n := range names {
		ids[i] = spoolFileRE.FindStringSubmatch(n)[1]
	}
	return ids
}

// ---- checks -------------------------------------------------------------

var hex32RE = regexp.MustCompile(`^[0-9a-f]{32}$`)

// wantUserAgent is the User-Agent of the contract, spelled out.
func wantUserAgent() string {
	return fmt.Sprintf("pprofio-go/%s (%s/%s; %s)", pprofio.Version, runtime.GOOS, runtime.GOARCH, runtime.Version())
}

// checkHeaders checks the headers of an upload against the contract.
func checkHeaders(t *testing.T, e exchange) {
	t.Helper()
	want := map[string]string{
		"Authorization":    "Bearer " + testAPIKey,
		"Content-Type":     "application/x-protobuf",
		"Content-Encoding": "gzip",
		"User-Agent":       wantUserAgent(),
	}
	for k, v := range want {
		if got := e.Header.Values(k); len(got) != 1 || got[0] != v {
			t.Errorf("request %v: %s = %q, want exactly %q", e, k, got, v)
		}
	}
	if e.Path != receiver.IngestPath {
		t.Errorf("request %v: path %q, want %q", e, e.Path, receiver.IngestPath)
	}
	key := e.Header.Values("Idempotency-Key")
	if len(key) != 1 || !hex32RE.MatchString(key[0]) {
		t.Errorf("request %v: Idempotency-Key %q, want one value of 32 lowercase hex digits", e, key)
	} else if e.Req != nil && key[0] != e.Req.GetBatchId() {
		t.Errorf("request %v: Idempotency-Key %q differs from batch_id %q", e, key[0], e.Req.GetBatchId())
	}
}

// checkHeadOfLine checks that the agent always sends its oldest undelivered
// batch: with no batch dropped, every upload of one instance carries
// sequence 1 + the number of its batches accepted before it, and each
// retry of a batch is byte for byte the same request.
func checkHeadOfLine(t *testing.T, exs []exchange, instance string) {
	t.Helper()
	acceptedSeqs := map[uint64]bool{}
	bodies := map[string][]byte{}
	seqOf := map[string]uint64{}
	for _, e := range exs {
		if e.Req == nil || e.Req.GetSource().GetInstanceId() != instance {
			continue
		}
		id, seq := e.Req.GetBatchId(), e.Req.GetSequence()
		if want := uint64(len(acceptedSeqs)) + 1; seq != want {
			t.Errorf("request %v: sequence %d sent while %d batch(es) were accepted: want the oldest, %d",
				e, seq, len(acceptedSeqs), want)
		}
		if prev, ok := bodies[id]; ok && !bytes.Equal(prev, e.Wire) {
			t.Errorf("request %v: a retry of batch %s with a different body", e, id)
		}
		if s, ok := seqOf[id]; ok && s != seq {
			t.Errorf("request %v: batch %s sent with sequences %d and %d", e, id, s, seq)
		}
		bodies[id], seqOf[id] = e.Wire, seq
		if e.accepted() {
			acceptedSeqs[seq] = true
		}
	}
}

// checkSequences checks that the distinct accepted batches of one instance
// have sequences 1..n in order, each exactly once.
func checkSequences(t *testing.T, accepted []exchange, instance string, n int) {
	t.Helper()
	var seqs []uint64
	ids := map[string]bool{}
	for _, e := range accepted {
		if e.Req.GetSource().GetInstanceId() != instance {
			continue
		}
		if ids[e.Req.GetBatchId()] {
			continue // a 409 for a batch already counted
		}
		ids[e.Req.GetBatchId()] = true
		seqs = append(seqs, e.Req.GetSequence())
	}
	ok := len(seqs) == n
	for i, s := range seqs {
		if s != uint64(i+1) {
			ok = false
		}
	}
	if !ok {
		t.Errorf("instance %.8s: accepted sequences %v, want 1..%d, each once, in order", instance, seqs, n)
	}
}

// checkProfiles checks that a batch holds one CPU and one heap profile,
// each a raw (not gzipped) pprof profile of its type, with a sane window.
func checkProfiles(t *testing.T, e exchange, notBefore, notAfter time.Time) {
	t.Helper()
	types := map[ingestpb.ProfileType]int{}
	for i, p := range e.Req.GetProfiles() {
		types[p.GetType()]++
		raw := p.GetPprof()
		if len(raw) >= 2 && raw[0] == 0x1f && raw[1] == 0x8b {
			t.Errorf("batch %d profile %d (%v): pprof bytes are gzipped; the contract wants them raw",
				e.Req.GetSequence(), i, p.GetType())
			continue
		}
		prof, err := profileParseData(raw)
		if err != nil {
			t.Errorf("batch %d profile %d (%v): %v", e.Req.GetSequence(), i, p.GetType(), err)
			continue
		}
		switch p.GetType() {
		case ingestpb.ProfileType_PROFILE_TYPE_CPU:
			if prof.PeriodType == nil || prof.PeriodType.Type != "cpu" {
				t.Errorf("batch %d: CPU profile with period type %v", e.Req.GetSequence(), prof.PeriodType)
			}
		case ingestpb.ProfileType_PROFILE_TYPE_HEAP:
			if !hasSampleType(prof, "inuse_space") || !hasSampleType(prof, "alloc_space") {
				t.Errorf("batch %d: heap profile without inuse_space/alloc_space", e.Req.GetSequence())
			}
		}
		start, end := time.Unix(0, p.GetStartUnixNano()), time.Unix(0, p.GetEndUnixNano())
		if end.Before(start) || start.Before(notBefore) || end.After(notAfter) {
			t.Errorf("batch %d profile %d (%v): window [%v, %v] outside the run [%v, %v]",
				e.Req.GetSequence(), i, p.GetType(), start, end, notBefore, notAfter)
		}
	}
	if len(e.Req.GetProfiles()) != 2 || types[ingestpb.ProfileType_PROFILE_TYPE_CPU] != 1 ||
		types[ingestpb.ProfileType_PROFILE_TYPE_HEAP] != 1 {
		t.Errorf("batch %d: profiles %v, want one CPU and one heap", e.Req.GetSequence(), types)
	}
}

// checkNoKeyInLogs fails if the API key shows in any log record.
func checkNoKeyInLogs(t *testing.T, logs *logCapture) {
	t.Helper()
	for _, r := range logs.all() {
		if strings.Contains(r.Msg, testAPIKey) || strings.Contains(fmt.Sprint(r.Attrs), testAPIKey) {
			t.Errorf("the API key is in a log record: %s %v", r.Msg, r.Attrs)
		}
	}
}

// noUploadDrops fails if Stats count any batch or profile lost on the way
// to the ingest service.
func noUploadDrops(t *testing.T, s pprofio.Stats) {
	t.Helper()
	if s.BatchesDroppedRejected != 0 || s.BatchesDroppedSpool != 0 || s.BatchesDroppedCorrupt != 0 ||
		s.ProfilesDroppedUpload != 0 || s.SpoolErrors != 0 || dropped(s) != 0 {
		t.Errorf("Stats count losses: rejected %d, spool %d, corrupt %d, profiles %d, spool errors %d, dropped %d",
			s.BatchesDroppedRejected, s.BatchesDroppedSpool, s.BatchesDroppedCorrupt, s.ProfilesDroppedUpload,
			s.SpoolErrors, dropped(s))
	}
}

// ---- child processes ----------------------------------------------------

// Environment of the delivery children (besides childEnv, memory_test.go).
const (
	envURL   = "PPROFIO_E2E_URL"
	envCA    = "PPROFIO_E2E_CA"
	envSpool = "PPROFIO_E2E_SPOOL"
)

// childCmd prepares a re-execution of the test binary that runs only test
// (in the child role named mode).
func childCmd(test, mode string, env ...string) *exec.Cmd {
	cmd := exec.Command(os.Args[0], "-test.run=^"+test+"$", "-test.v", "-test.count=1")
	cmd.Env = append(append(os.Environ(), childEnv+"="+mode), env...)
	return cmd
}

// syncBuffer is a bytes.Buffer safe for a child's output and the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// exitDescription says how a finished child ended.
func exitDescription(ps *os.ProcessState) string {
	if ws, ok := ps.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return fmt.Sprintf("killed by signal %v", ws.Signal())
	}
	return fmt.Sprintf("exit status %d", ps.ExitCode())
}

// ---- profiles -----------------------------------------------------------

// profileParseData parses a raw pprof profile and checks it is valid.
func profileParseData(raw []byte) (*profile.Profile, error) {
	p, err := profile.ParseData(raw)
	if err != nil {
		return nil, err
	}
	return p, p.CheckValid()
}

func hasSampleType(p *profile.Profile, typ string) bool {
	for _, st := range p.SampleType {
		if st.Type == typ {
			return true
		}
	}
	return false
}

// settle waits until the handler of every request so far has returned
// (the agent has its answer a moment before the handler's bookkeeping ends).
func (in *ingest) settle(tb testing.TB) {
	tb.Helper()
	waitForTB(tb, "the receiver's handlers to return", func() bool {
		for _, e := range in.all() {
			if !e.Done {
				return false
			}
		}
		return true
	})
}

// dumpOnFailure logs what the agent said and what the receiver saw when
// the test has failed.
func dumpOnFailure(t *testing.T, logs *logCapture, in *ingest) {
	t.Helper()
	if !t.Failed() {
		return
	}
	if logs != nil {
		logs.dump(t)
	}
	if in != nil {
		in.dump(t)
	}
}
