package e2e

import (
	"encoding/pem"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pprofio/pprofio"
)

// connectProxy is an HTTP proxy that tunnels CONNECT requests and
// remembers where they went.
type connectProxy struct {
	mu      sync.Mutex
	targets []string
}

func (p *connectProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodConnect {
		http.Error(w, "CONNECT only", http.StatusMethodNotAllowed)
		return
	}
	p.mu.Lock()
	p.targets = append(p.targets, r.Host)
	p.mu.Unlock()
	upstream, err := net.DialTimeout("tcp", r.Host, time.Minute)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	hj, ok := w.(http.Hijacker)
	if !ok {
		upstream.Close()
		http.Error(w, "no hijacking", http.StatusInternalServerError)
		return
	}
	w.WriteHeader(http.StatusOK)
	client, buf, err := hj.Hijack()
	if err != nil {
		upstream.Close()
		return
	}
	go func() {
		defer upstream.Close()
		defer client.Close()
		if n := buf.Reader.Buffered(); n > 0 {
			b, _ := buf.Reader.Peek(n)
			upstream.Write(b)
		}
		go io.Copy(upstream, client)
		io.Copy(client, upstream)
	}()
}

func (p *connectProxy) seen() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.targets...)
}

// ingestStub accepts every upload over TLS and counts them.
func ingestStub(t *testing.T) (url, caFile string, accepted *atomic.Int64) {
	t.Helper()
	accepted = new(atomic.Int64)
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		if r.URL.Path == "/v1/profiles" && r.Header.Get("Authorization") == "Bearer proxy-key" {
			accepted.Add(1)
			w.WriteHeader(http.StatusOK)
			return
		}
		w.WriteHeader(http.StatusBadRequest)
	}))
	t.Cleanup(srv.Close)
	caFile = filepath.Join(t.TempDir(), "ca.pem")
	cert := srv.Certificate()
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	return srv.URL, caFile, accepted
}

func uploadThrough(t *testing.T, url, caFile string) *pprofio.Profiler {
	t.Helper()
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	p := startProfiler(t, pprofio.Config{
		ServiceName: "proxied",
		IngestURL:   url,
		APIKey:      "proxy-key",
		CAFile:      caFile,
		SpoolDir:    t.TempDir(),
		SampleRate:  time.Second,
		CPUDuration: 100 * time.Millisecond,
		Profiles:    []pprofio.ProfileType{pprofio.ProfileHeap},
		StartJitter: -1,
	})
	waitFor(t, "2 batches sent", func() bool { return p.Stats().BatchesSent >= 2 })
	if err := stopWithin(t, p); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	return p
}

// HTTPS_PROXY is honoured: uploads are tunnelled through the proxy, and
// TLS is still verified end to end against the ingest service's CA.
func TestUploadsGoThroughHTTPSProxy(t *testing.T) {
	url, caFile, accepted := ingestStub(t)
	proxy := &connectProxy{}
	ps := httptest.NewServer(proxy)
	defer ps.Close()
	t.Setenv("HTTPS_PROXY", ps.URL)
	t.Setenv("https_proxy", ps.URL)
	t.Setenv("NO_PROXY", "")
	t.Setenv("no_proxy", "")

	uploadThrough(t, url, caFile)
	host := url[len("https://"):]
	targets := proxy.seen()
	if len(targets) == 0 {
		t.Fatalf("the proxy saw no CONNECT: HTTPS_PROXY was not honoured (%d uploads went direct)", accepted.Load())
	}
	for _, target := range targets {
		if target != host {
			t.Errorf("the proxy was asked for %q, want %q", target, host)
		}
	}
	if accepted.Load() < 2 {
		t.Fatalf("the ingest service accepted %d uploads through the proxy", accepted.Load())
	}
}

// NO_PROXY is honoured: a listed host is reached directly.
func TestNoProxyHostsAreReachedDirectly(t *testing.T) {
	url, caFile, accepted := ingestStub(t)
	proxy := &connectProxy{}
	ps := httptest.NewServer(proxy)
	defer ps.Close()
	t.Setenv("HTTPS_PROXY", ps.URL)
	t.Setenv("https_proxy", ps.URL)
	t.Setenv("NO_PROXY", "127.0.0.1")
	t.Setenv("no_proxy", "127.0.0.1")

	uploadThrough(t, url, caFile)
	if targets := proxy.seen(); len(targets) != 0 {
		t.Fatalf("the proxy was used for a NO_PROXY host: %v", targets)
	}
	if accepted.Load() < 2 {
		t.Fatalf("the ingest service accepted %d uploads", accepted.Load())
	}
}
