package pyroscope

// The servers of the agent tests (agent_test.go), both over real TLS on
// loopback with one self-signed CA: a Pyroscope push endpoint made of
// Pyroscope's own generated Connect handler (pushv1connect) with faults
// put in front of it, and the pprofio reference receiver
// (examples/ingest-server/receiver) with every accepted batch decoded.

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/tls"
	"io"
	"log"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"connectrpc.com/connect"
	pushv1 "github.com/grafana/pyroscope/api/gen/proto/go/push/v1"
	"github.com/grafana/pyroscope/api/gen/proto/go/push/v1/pushv1connect"
	"google.golang.org/protobuf/proto"

	"github.com/pprofio/pprofio/examples/ingest-server/ingestpb"
	"github.com/pprofio/pprofio/examples/ingest-server/receiver"
	"github.com/pprofio/pprofio/tests/internal/testkit"
)

// waitGuard bounds a wait for something the agent must do; it only catches
// a hang (the work, not the time, decides every verdict).
const waitGuard = 5 * time.Minute

// tlsFiles is one self-signed CA and the server certificate it signed.
type tlsFiles struct {
	CAFile string
	cert   tls.Certificate
}

func newTLS(tb testing.TB) tlsFiles {
	tb.Helper()
	ss, err := receiver.GenerateSelfSigned()
	if err != nil {
		tb.Fatal(err)
	}
	f := tlsFiles{CAFile: filepath.Join(tb.TempDir(), "ca.pem"), cert: ss.Leaf}
	if err := os.WriteFile(f.CAFile, ss.CAPEM, 0o600); err != nil {
		tb.Fatal(err)
	}
	return f
}

func serveTLS(tb testing.TB, f tlsFiles, h http.Handler) *httptest.Server {
	ts := httptest.NewUnstartedServer(h)
	ts.TLS = &tls.Config{Certificates: []tls.Certificate{f.cert}}
	ts.Config.ErrorLog = log.New(io.Discard, "", 0) // resets and aborted handshakes are expected
	ts.StartTLS()
	tb.Cleanup(ts.Close)
	return ts
}

// push is one request that reached the Pyroscope server.
type push struct {
	Header http.Header
	Wire   int // bytes on the wire (gzipped)
	Raw    int // bytes once inflated
	Status int
	Req    *pushv1.PushRequest // decoded by the Connect handler; nil when refused before it
}

// pyroServer is Pyroscope's push API behind a fault switch.
type pyroServer struct {
	URL  string
	ts   *httptest.Server
	conn http.Handler

	// fault, while set, answers instead of the handler: an HTTP status, or
	// faultReset to drop the connection.
	fault atomic.Int32
	// maxSeries > 0 answers 413 to pushes of more series (a body limit).
	maxSeries atomic.Int32

	mu     sync.Mutex
	pushes []push
	script []int32 // faults for the next requests, one each, before fault
}

// setScript has the next requests answered with these faults, one each.
func (s *pyroServer) setScript(faults ...int32) {
	s.mu.Lock()
	s.script = append(s.script, faults...)
	s.mu.Unlock()
}

// scriptLeft is how many scripted faults have not been answered yet.
func (s *pyroServer) scriptLeft() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.script)
}

// nextFault takes the fault for this request: the script's next, or the switch.
func (s *pyroServer) nextFault() int32 {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.script) > 0 {
		f := s.script[0]
		s.script = s.script[1:]
		return f
	}
	return s.fault.Load()
}

const faultReset = -1

func newPyroServer(tb testing.TB, f tlsFiles) *pyroServer {
	s := &pyroServer{}
	mux := http.NewServeMux()
	mux.Handle(pushv1connect.NewPusherServiceHandler(s))
	s.conn = mux
	s.ts = serveTLS(tb, f, s)
	s.URL = s.ts.URL
	return s
}

// Push is the PusherService: it takes everything (the fault switch and the
// series limit answer before it).
func (s *pyroServer) Push(context.Context, *connect.Request[pushv1.PushRequest]) (*connect.Response[pushv1.PushResponse], error) {
	return connect.NewResponse(&pushv1.PushResponse{}), nil
}

func (s *pyroServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	wire, _ := io.ReadAll(r.Body)
	p := push{Header: r.Header.Clone(), Wire: len(wire)}
	raw := wire
	if r.Header.Get("Content-Encoding") == "gzip" {
		if zr, err := gzip.NewReader(bytes.NewReader(wire)); err == nil {
			raw, _ = io.ReadAll(zr)
		}
	}
	p.Raw = len(raw)
	req := &pushv1.PushRequest{}
	decoded := proto.Unmarshal(raw, req) == nil
	rec := &testkit.StatusWriter{ResponseWriter: w}
	switch f := s.nextFault(); {
	case f == faultReset:
		if hj, ok := w.(http.Hijacker); ok {
			if c, _, err := hj.Hijack(); err == nil {
				c.Close()
			}
		}
	case f != 0:
		w.Header().Set("Retry-After", "1")
		rec.WriteHeader(int(f))
		io.WriteString(rec, `{"code":"unavailable","message":"fault injected by the test"}`)
	case s.maxSeries.Load() > 0 && decoded && len(req.Series) > int(s.maxSeries.Load()):
		rec.WriteHeader(http.StatusRequestEntityTooLarge)
	default:
		r.Body = io.NopCloser(bytes.NewReader(wire))
		s.conn.ServeHTTP(rec, r)
		if rec.Status == 0 {
			rec.Status = http.StatusOK
		}
		if rec.Status == http.StatusOK && decoded {
			p.Req = req // what Pyroscope's handler took, as it decoded it
		}
	}
	p.Status = rec.Status
	s.mu.Lock()
	s.pushes = append(s.pushes, p)
	s.mu.Unlock()
}

func (s *pyroServer) all() []push {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]push(nil), s.pushes...)
}

// accepted are the pushes the handler took (200).
func (s *pyroServer) accepted() []push {
	var out []push
	for _, p := range s.all() {
		if p.Req != nil {
			out = append(out, p)
		}
	}
	return out
}

// series are the series of every accepted push, in arrival order.
func (s *pyroServer) series() []*pushv1.RawProfileSeries {
	var out []*pushv1.RawProfileSeries
	for _, p := range s.accepted() {
		out = append(out, p.Req.Series...)
	}
	return out
}

// ---- the pprofio reference receiver ----------------------------------------

const testAPIKey = "pyroscope-suite-key-71d2"

// ingestServer is the reference receiver with an outage switch; it keeps
// every batch it accepted, decoded.
type ingestServer struct {
	URL  string
	srv  *receiver.Server
	down atomic.Int32

	mu      sync.Mutex
	batches map[string]*ingestpb.UploadRequest // by batch_id
	order   []string
}

func newIngestServer(tb testing.TB, f tlsFiles) *ingestServer {
	srv, err := receiver.New(receiver.Options{DataDir: filepath.Join(tb.TempDir(), "data"), APIKeys: []string{testAPIKey}})
	if err != nil {
		tb.Fatal(err)
	}
	in := &ingestServer{srv: srv, batches: map[string]*ingestpb.UploadRequest{}}
	in.URL = serveTLS(tb, f, in).URL
	tb.Cleanup(srv.Close)
	return in
}

func (in *ingestServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	wire, _ := io.ReadAll(r.Body)
	if st := in.down.Load(); st != 0 {
		w.Header().Set("Retry-After", "1")
		w.WriteHeader(int(st))
		return
	}
	r.Body = io.NopCloser(bytes.NewReader(wire))
	rec := &testkit.StatusWriter{ResponseWriter: w}
	in.srv.ServeHTTP(rec, r)
	if rec.Status != http.StatusOK && rec.Status != http.StatusConflict {
		return
	}
	zr, err := gzip.NewReader(bytes.NewReader(wire))
	if err != nil {
		return
	}
	raw, _ := io.ReadAll(zr)
	req := &ingestpb.UploadRequest{}
	if proto.Unmarshal(raw, req) != nil {
		return
	}
	in.mu.Lock()
	defer in.mu.Unlock()
	if _, seen := in.batches[req.GetBatchId()]; !seen {
		in.batches[req.GetBatchId()] = req
		in.order = append(in.order, req.GetBatchId())
	}
}

// profiles are the profiles of every distinct accepted batch.
func (in *ingestServer) profiles() []*ingestpb.Profile {
	in.mu.Lock()
	defer in.mu.Unlock()
	var out []*ingestpb.Profile
	for _, id := range in.order {
		out = append(out, in.batches[id].GetProfiles()...)
	}
	return out
}

// ---- logs -------------------------------------------------------------------

// logCapture keeps every record the agent logs, with its attributes.
type logCapture struct {
	mu    sync.Mutex
	lines []string
}

func (c *logCapture) Enabled(context.Context, slog.Level) bool { return true }
func (c *logCapture) Handle(_ context.Context, r slog.Record) error {
	var b strings.Builder
	b.WriteString(r.Level.String() + " " + r.Message)
	r.Attrs(func(a slog.Attr) bool {
		b.WriteString(" " + a.String())
		return true
	})
	c.mu.Lock()
	c.lines = append(c.lines, b.String())
	c.mu.Unlock()
	return nil
}
func (c *logCapture) WithAttrs([]slog.Attr) slog.Handler { return c }
func (c *logCapture) WithGroup(string) slog.Handler      { return c }

func (c *logCapture) text() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return strings.Join(c.lines, "\n")
}

// count is how many lines contain every word.
func (c *logCapture) count(words ...string) int {
	n := 0
	for _, l := range strings.Split(c.text(), "\n") {
		all := true
		for _, w := range words {
			all = all && strings.Contains(l, w)
		}
		if all && l != "" {
			n++
		}
	}
	return n
}
