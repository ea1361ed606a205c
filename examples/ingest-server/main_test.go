package main

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strings"
	"syscall"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/pprofio/pprofio/examples/ingest-server/ingestpb"
	"github.com/pprofio/pprofio/examples/ingest-server/receiver"
)

// TestCommand builds ingest-server, runs it as the C tests do, uploads to
// it over TLS trusting only the -ca-out file, and stops it with SIGTERM
// while a request hangs.
func TestCommand(t *testing.T) {
	dir := t.TempDir()
	bin := buildCommand(t, dir)
	ready, ca, data, record := filepath.Join(dir, "url"), filepath.Join(dir, "ca.pem"),
		filepath.Join(dir, "data"), filepath.Join(dir, "record.jsonl")
	cmd := exec.Command(bin, "-addr", "127.0.0.1:0", "-ready-file", ready, "-ca-out", ca,
		"-data", data, "-record", record, "-api-key", "k1", "-script", "ok,hang")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()

	url := waitForFile(t, ready)
	line, _ := bufio.NewReader(stdout).ReadString('\n')
	if want := "ingest-server: listening on " + url + "\n"; line != want || !strings.HasPrefix(url, "https://127.0.0.1:") {
		t.Fatalf("stdout %q, ready file %q", line, url)
	}
	client := clientTrusting(t, ca)

	id := uploadHeap(t, client, url)
	stored, _ := filepath.Glob(filepath.Join(data, "cmd-test", "heap", "*_"+id[:8]+".pb.gz"))
	if len(stored) != 1 {
		t.Fatalf("stored files: %v", stored)
	}
	checkPprofOpens(t, stored[0])

	hung := make(chan error, 1)
	go func() { hung <- postHanging(client, url) }()
	waitForLines(t, record, 2)
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	checkExit(t, cmd, &stderr)
	select {
	case err := <-hung:
		if err == nil {
			t.Error("the hanging request got an answer")
		}
	case <-time.After(waitGuard):
		t.Error("the hanging request did not end with the server")
	}
}

// waitGuard bounds every wait for an event (a file, a line, an exit): only
// a hang reaches it, so a busy machine does not change a verdict.
const waitGuard = 2 * time.Minute

// buildCommand builds this package into dir.
func buildCommand(t *testing.T, dir string) string {
	t.Helper()
	goTool, err := exec.LookPath("go")
	if err != nil {
		goTool = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	bin := filepath.Join(dir, "ingest-server")
	out, err := exec.Command(goTool, "build", "-buildvcs=false", "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// waitForFile waits for path to appear and returns its content.
func waitForFile(t *testing.T, path string) string {
	t.Helper()
	deadline := time.Now().Add(waitGuard)
	for time.Now().Before(deadline) {
		if b, err := os.ReadFile(path); err == nil {
			return string(b)
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("%s did not appear", path)
	return ""
}

// waitForLines waits until the file at path has at least n lines.
func waitForLines(t *testing.T, path string, n int) {
	t.Helper()
	deadline := time.Now().Add(waitGuard)
	for time.Now().Before(deadline) {
		b, _ := os.ReadFile(path)
		if bytes.Count(b, []byte("\n")) >= n {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("%s has fewer than %d lines", path, n)
}

// clientTrusting returns a client whose only trusted CA is the PEM file.
func clientTrusting(t *testing.T, caFile string) *http.Client {
	t.Helper()
	pem, err := os.ReadFile(caFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		t.Fatalf("%s holds no certificate", caFile)
	}
	return &http.Client{
		Timeout:   waitGuard,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, DisableKeepAlives: true},
	}
}

// uploadHeap uploads one heap profile of this process and returns its
// batch_id; the answer must be 200.
func uploadHeap(t *testing.T, client *http.Client, url string) string {
	t.Helper()
	req, id := newRequest(t, url, heapProfile(t))
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("upload: %d %s", resp.StatusCode, body)
	}
	return id
}

// postHanging sends a request the script makes hang; it returns the error
// of the request, or nil if an answer came.
func postHanging(client *http.Client, url string) error {
	req, err := http.NewRequest(http.MethodPost, url+receiver.IngestPath, strings.NewReader("x"))
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err == nil {
		resp.Body.Close()
	}
	return err
}

// newRequest builds an upload of one heap profile, as the agent sends it.
func newRequest(t *testing.T, url string, pprofBytes []byte) (*http.Request, string) {
	t.Helper()
	idBytes := make([]byte, 16)
	rand.Read(idBytes)
	id := hex.EncodeToString(idBytes)
	now := time.Now().UnixNano()
	msg, err := proto.Marshal(&ingestpb.UploadRequest{
		BatchId:  id,
		Sequence: 1,
		Source:   &ingestpb.Source{Service: "cmd-test", InstanceId: id},
		Profiles: []*ingestpb.Profile{{
			Type: ingestpb.ProfileType_PROFILE_TYPE_HEAP, StartUnixNano: now - 1e10, EndUnixNano: now, Pprof: pprofBytes,
		}},
	})
	if err != nil {
		t.Fatal(err)
	}
	var body bytes.Buffer
	zw := gzip.NewWriter(&body)
	zw.Write(msg)
	zw.Close()
	req, err := http.NewRequest(http.MethodPost, url+receiver.IngestPath, &body)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer k1")
	req.Header.Set("Content-Type", "application/x-protobuf")
	req.Header.Set("Content-Encoding", "gzip")
	req.Header.Set("Idempotency-Key", id)
	return req, id
}

// heapProfile returns this process's heap profile as raw (not gzipped)
// pprof bytes.
func heapProfile(t *testing.T) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := pprof.Lookup("heap").WriteTo(&buf, 0); err != nil {
		t.Fatal(err)
	}
	zr, err := gzip.NewReader(&buf)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// checkPprofOpens runs `go tool pprof -raw` on a stored profile.
func checkPprofOpens(t *testing.T, path string) {
	t.Helper()
	goTool, err := exec.LookPath("go")
	if err != nil {
		goTool = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	out, err := exec.Command(goTool, "tool", "pprof", "-raw", path).CombinedOutput()
	if err != nil || !bytes.Contains(out, []byte("inuse_space")) {
		t.Fatalf("go tool pprof -raw %s: %v\n%s", path, err, out)
	}
}

// checkExit waits for the command to exit 0 after a signal.
func checkExit(t *testing.T, cmd *exec.Cmd, stderr *bytes.Buffer) {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("exit: %v\nstderr:\n%s", err, stderr)
		}
	case <-time.After(waitGuard):
		t.Fatalf("the server did not exit within %v of SIGTERM", waitGuard)
	}
	if !strings.Contains(stderr.String(), "shutting down") {
		t.Errorf("stderr:\n%s", stderr)
	}
}

func TestParseFlags(t *testing.T) {
	t.Setenv(apiKeysEnv, "env1, env2")
	cfg, err := parseFlags([]string{"-api-key", "a,b", "-api-key", "c", "-script", "ok,429/ra=2", "-max-wire-bytes", "1000"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(cfg.apiKeys, "|") != "a|b|c" || len(cfg.script) != 2 || cfg.maxWireBytes != 1000 ||
		cfg.maxBodyBytes != receiver.DefaultMaxBodyBytes || cfg.addr != "127.0.0.1:8443" || cfg.dataDir != "./ingest-data" {
		t.Errorf("cfg = %+v", cfg)
	}
	cfg, err = parseFlags(nil, io.Discard)
	if err != nil || strings.Join(cfg.apiKeys, "|") != "env1|env2" {
		t.Errorf("keys from the environment: %v, %v", cfg.apiKeys, err)
	}
}

func TestParseFlagsErrors(t *testing.T) {
	for _, args := range [][]string{
		{"-script", "ok,bogus"},
		{"-cert", "c.pem"},
		{"-key", "k.pem"},
		{"-plain-http", "-ca-out", "ca.pem"},
		{"-cert", "c.pem", "-key", "k.pem", "-ca-out", "ca.pem"},
		{"-max-wire-bytes", "0"},
		{"-data", ""},
		{"extra"},
		{"-no-such-flag"},
	} {
		if _, err := parseFlags(args, io.Discard); err == nil {
			t.Errorf("parseFlags(%q) succeeded", args)
		}
	}
	var stderr bytes.Buffer
	if code := run([]string{"-script", "bogus"}, io.Discard, &stderr); code != 2 || !strings.Contains(stderr.String(), "-script") {
		t.Errorf("run with a bad script: exit %d, stderr %q", code, stderr.String())
	}
}

func TestRecordFileIsJSONLines(t *testing.T) {
	// The command opens -record for appending: earlier lines stay.
	path := filepath.Join(t.TempDir(), "rec.jsonl")
	os.WriteFile(path, []byte(`{"earlier":true}`+"\n"), 0o600)
	rec, closeRec, err := openRecorder(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := rec.Write(receiver.Record{Method: "POST", Status: 200}); err != nil {
		t.Fatal(err)
	}
	closeRec()
	lines := strings.Split(strings.TrimSpace(readFile(t, path)), "\n")
	var last receiver.Record
	if len(lines) != 2 || json.Unmarshal([]byte(lines[1]), &last) != nil || last.Status != 200 {
		t.Errorf("lines = %q", lines)
	}
}

func TestWriteFileAtomic(t *testing.T) {
	path := filepath.Join(t.TempDir(), "url")
	if err := writeFileAtomic(path, []byte("https://127.0.0.1:1"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got := readFile(t, path); got != "https://127.0.0.1:1" {
		t.Errorf("content %q", got)
	}
	entries, _ := os.ReadDir(filepath.Dir(path))
	if len(entries) != 1 {
		t.Errorf("files left: %v", entries)
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	return string(b)
}
