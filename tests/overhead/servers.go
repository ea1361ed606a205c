package main

// The receiving end of the benchmark: the reference ingest receiver (for
// pprofio) and a small sink (for pyroscope-go), both over TLS on loopback
// with one throwaway CA, each counting the requests, bytes and non-200
// answers it gets, so that a run can say what each worker delivered.

import (
	"crypto/tls"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"

	"github.com/pprofio/pprofio/examples/ingest-server/receiver"
)

// counters count what arrives at the receiver and the sink.
type counters struct {
	ingestRequests, ingestBytes atomic.Int64
	sinkRequests, sinkBytes     atomic.Int64
	sinkCPU, sinkCPUBytes       atomic.Int64
	non200                      atomic.Int64
}

func (c *counters) reset() {
	for _, v := range []*atomic.Int64{&c.ingestRequests, &c.ingestBytes, &c.sinkRequests,
		&c.sinkBytes, &c.sinkCPU, &c.sinkCPUBytes, &c.non200} {
		v.Store(0)
	}
}

// startServers starts the ingest receiver and the pyroscope sink, both
// over TLS with one throwaway CA, written to caFile for the workers.
func (h *harness) startServers() error {
	ss, err := receiver.GenerateSelfSigned()
	if err != nil {
		return err
	}
	h.caFile = filepath.Join(h.tmp, "ca.pem")
	if err := os.WriteFile(h.caFile, ss.CAPEM, 0o600); err != nil {
		return err
	}
	h.recv, err = receiver.New(receiver.Options{DataDir: filepath.Join(h.tmp, "received"), APIKeys: []string{apiKey}})
	if err != nil {
		return err
	}
	h.ingest = httptest.NewUnstartedServer(h.countIngest(h.recv))
	h.ingest.TLS = &tls.Config{Certificates: []tls.Certificate{ss.Leaf}}
	h.ingest.StartTLS()

	h.sink = httptest.NewUnstartedServer(http.HandlerFunc(h.serveSink))
	h.sink.TLS = &tls.Config{Certificates: []tls.Certificate{ss.Leaf}}
	h.sink.StartTLS()
	return nil
}

func (h *harness) stopServers() {
	h.recv.Close()
	h.ingest.Close()
	h.sink.Close()
}

// statusWriter remembers the status a handler answered.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	w.status = code
	w.ResponseWriter.WriteHeader(code)
}

// countingBody counts the bytes read from a request body.
type countingBody struct {
	io.ReadCloser
	n *atomic.Int64
}

func (b countingBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.n.Add(int64(n))
	return n, err
}

// countIngest counts the requests and body bytes the receiver gets.
func (h *harness) countIngest(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.counts.ingestRequests.Add(1)
		r.Body = countingBody{r.Body, &h.counts.ingestBytes}
		sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
		next.ServeHTTP(sw, r)
		if sw.status != http.StatusOK {
			h.counts.non200.Add(1)
		}
	})
}

// serveSink is the pyroscope sink: POST /ingest, count the body, 200.
func (h *harness) serveSink(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || r.URL.Path != "/ingest" {
		h.counts.non200.Add(1)
		http.NotFound(w, r)
		return
	}
	n, _ := io.Copy(io.Discard, r.Body)
	h.counts.sinkRequests.Add(1)
	h.counts.sinkBytes.Add(n)
	// One upload period sends one CPU profile (name carries the SDK's
	// scope, "…/go"), and the heap profile separately (the godeltaprof
	// scope, "…/godeltaprof").
	if !strings.Contains(r.URL.Query().Get("name"), "godeltaprof") {
		h.counts.sinkCPU.Add(1)
		h.counts.sinkCPUBytes.Add(n)
	}
	w.WriteHeader(http.StatusOK)
}
