package receiver

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/tls"
	"crypto/x509"
	"net"
	"net/http"
	"testing"
	"time"
)

func TestSelfSignedVerifiesForLoopbackNames(t *testing.T) {
	ss, err := GenerateSelfSigned()
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(ss.CAPEM) {
		t.Fatal("CAPEM holds no certificate")
	}
	leaf, err := x509.ParseCertificate(ss.Leaf.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"127.0.0.1", "::1", "localhost"} {
		_, err := leaf.Verify(x509.VerifyOptions{Roots: pool, DNSName: name, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}})
		if err != nil {
			t.Errorf("verify for %s: %v", name, err)
		}
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: pool, DNSName: "example.com"}); err == nil {
		t.Error("leaf verifies for example.com")
	}
	if key, ok := ss.Leaf.PrivateKey.(*ecdsa.PrivateKey); !ok || key.Curve != elliptic.P256() {
		t.Errorf("leaf key %T, want ECDSA P-256", ss.Leaf.PrivateKey)
	}
	if time.Until(leaf.NotAfter) < 24*time.Hour || time.Since(leaf.NotBefore) < 0 {
		t.Errorf("validity %v .. %v", leaf.NotBefore, leaf.NotAfter)
	}
}

// TestSelfSignedServesTLS serves the receiver with a generated certificate
// and uploads to it trusting only the generated CA.
func TestSelfSignedServesTLS(t *testing.T) {
	ss, err := GenerateSelfSigned()
	if err != nil {
		t.Fatal(err)
	}
	srv, err := New(Options{DataDir: t.TempDir(), APIKeys: []string{testKey}})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{ss.Leaf}})
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: srv}
	go hs.Serve(ln)
	defer hs.Close()

	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ss.CAPEM)
	client := &http.Client{Timeout: 2 * time.Minute, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	u := newUpload(t, heap)
	req := uploadRequest(t, "https://localhost:"+port+IngestPath, encode(t, u), u.BatchId)
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d, want 200", resp.StatusCode)
	}
}
