// Package testreceiver starts the reference receiver
// (examples/ingest-server/receiver) over real TLS on loopback, with a
// self-signed CA written to a file, for the tests that run a real agent
// against it.
package testreceiver

import (
	"crypto/tls"
	"crypto/x509"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

	"github.com/pprofio/pprofio/examples/ingest-server/receiver"
)

// Receiver is a running receiver.
type Receiver struct {
	URL     string       // https://127.0.0.1:port
	CAFile  string       // the CA that signed its certificate (PEM, mode 0644: readable in a chroot)
	DataDir string       // where it stores what it accepts
	Client  *http.Client // trusts CAFile
}

// Start starts a receiver that accepts apiKey, storing in a temporary
// folder; it is closed when the test ends.
func Start(t testing.TB, apiKey string) *Receiver {
	t.Helper()
	dir := t.TempDir()
	r := &Receiver{CAFile: filepath.Join(dir, "ca.pem"), DataDir: filepath.Join(dir, "data")}
	srv, err := receiver.New(receiver.Options{DataDir: r.DataDir, APIKeys: []string{apiKey}})
	if err != nil {
		t.Fatal(err)
	}
	ss, err := receiver.GenerateSelfSigned()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(r.CAFile, ss.CAPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewUnstartedServer(srv)
	ts.TLS = &tls.Config{Certificates: []tls.Certificate{ss.Leaf}}
	ts.Config.ErrorLog = log.New(io.Discard, "", 0)
	ts.StartTLS() // on 127.0.0.1:0
	t.Cleanup(func() {
		srv.Close()
		ts.Close()
	})
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ss.CAPEM)
	r.URL = ts.URL
	r.Client = &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	return r
}

// Batches returns the receiver's batches file ("" before the first batch).
func (r *Receiver) Batches() string {
	data, _ := os.ReadFile(filepath.Join(r.DataDir, receiver.BatchesFile))
	return string(data)
}
