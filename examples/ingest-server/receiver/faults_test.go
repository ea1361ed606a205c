package receiver

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// scripted starts a receiver with the given fault script.
func scripted(t *testing.T, script string, opts Options) *fixture {
	t.Helper()
	actions, err := ParseScript(script)
	if err != nil {
		t.Fatal(err)
	}
	opts.Script = actions
	return newFixture(t, opts)
}

func TestScriptedStatuses(t *testing.T) {
	codes := []int{500, 503, 401, 403, 400, 404, 413}
	f := scripted(t, "500,503,401,403,400,404,413", Options{})
	for _, code := range codes {
		status, body := f.upload(newUpload(t, cpu, heap))
		if status != code || !strings.Contains(body, "scripted") {
			t.Errorf("got %d %q, want scripted %d", status, body, code)
		}
	}
	if status, body := f.upload(newUpload(t, heap)); status != http.StatusOK {
		t.Fatalf("after the script: %d %q, want 200", status, body)
	}
	if n := len(readJSONLines[batchEntry](t, filepath.Join(f.data, BatchesFile))); n != 1 {
		t.Errorf("%d batches stored, want only the last", n)
	}
	recs := f.waitRecords(len(codes) + 1)
	for i, code := range codes {
		r := recs[i]
		if r.Status != code || r.Action != strconv.Itoa(code) || !r.Decoded || r.Profiles != 2 {
			t.Errorf("record %d = %+v", i, r)
		}
	}
	if last := recs[len(codes)]; last.Action != "ok" || last.Status != 200 {
		t.Errorf("last record = %+v", last)
	}
}

func TestScriptedRetryAfter(t *testing.T) {
	now := time.Date(2026, 11, 29, 21, 41, 17, 0, time.UTC)
	f := scripted(t, "429/ra=2,429/date=3,503/ra=5,503,429", Options{Now: func() time.Time { return now }})
	want := []struct {
		status int
		header string
	}{
		{429, "2"},
		{429, "Sun, 29 Nov 2026 21:41:20 GMT"},
		{503, "5"},
		{503, ""},
		{429, ""},
	}
	for i, w := range want {
		u := newUpload(t, heap)
		resp, _ := f.do(f.request(encode(t, u), u.BatchId))
		if resp.StatusCode != w.status || resp.Header.Get("Retry-After") != w.header {
			t.Errorf("answer %d: %d Retry-After %q, want %d %q", i, resp.StatusCode, resp.Header.Get("Retry-After"), w.status, w.header)
		}
	}
}

func TestScriptedRetryAfterDateIsInTheFuture(t *testing.T) {
	f := scripted(t, "429/date=3", Options{})
	u := newUpload(t, heap)
	// Bracketed by the times the request was sent and answered, so a slow
	// answer does not move the verdict: 3 s after some moment in between
	// (the date drops the fraction of a second).
	before := time.Now()
	resp, _ := f.do(f.request(encode(t, u), u.BatchId))
	after := time.Now()
	at, err := http.ParseTime(resp.Header.Get("Retry-After"))
	if err != nil {
		t.Fatalf("Retry-After %q: %v", resp.Header.Get("Retry-After"), err)
	}
	if lo, hi := before.Truncate(time.Second).Add(3*time.Second), after.Add(3*time.Second); at.Before(lo) || at.After(hi) {
		t.Errorf("Retry-After is %v, want 3 s after a moment in [%v, %v]", at, before, after)
	}
}

func TestScriptedRedirect(t *testing.T) {
	f := scripted(t, "302,302,500", Options{})
	u := newUpload(t, heap)
	resp, _ := f.do(f.request(encode(t, u), u.BatchId))
	if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != RedirectPath {
		t.Fatalf("got %d Location %q, want 302 %s", resp.StatusCode, resp.Header.Get("Location"), RedirectPath)
	}

	// A client that follows the redirect lands on a 404, and is recorded
	// there; /elsewhere consumes no script item.
	follower := f.client(clientTimeout)
	follower.CheckRedirect = nil
	resp, err := follower.Do(f.request(encode(t, u), u.BatchId))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound || resp.Request.URL.Path != RedirectPath {
		t.Fatalf("followed: %d at %s, want 404 at %s", resp.StatusCode, resp.Request.URL.Path, RedirectPath)
	}
	if status, _ := f.upload(u); status != http.StatusInternalServerError {
		t.Errorf("next upload: %d, want the script's 500", status)
	}
	recs := f.waitRecords(4)
	if len(recs) != 4 || recs[2].Path != RedirectPath || recs[2].Status != 404 || recs[3].Action != "500" {
		t.Errorf("records = %+v", recs)
	}
}

func TestScriptedReset(t *testing.T) {
	f := scripted(t, "reset,ok", Options{})
	u := newUpload(t, heap)
	_, err := f.client(clientTimeout).Do(f.request(encode(t, u), u.BatchId))
	if !isReset(err) {
		t.Fatalf("err = %v, want a connection reset", err)
	}
	recs := f.waitRecords(1)
	if r := recs[0]; r.Action != "reset" || r.Status != 0 || r.WireBytes != resetAfterBytes {
		t.Errorf("record = %+v", r)
	}
	if status, _ := f.upload(newUpload(t, heap)); status != http.StatusOK {
		t.Errorf("after the reset: %d, want 200", status)
	}
}

// TestScriptedResetMidBody sends the headers and the first KiB of a 1 MiB
// body over a raw TLS connection: the server must answer with a TCP RST,
// not a response and not an orderly close.
func TestScriptedResetMidBody(t *testing.T) {
	f := scripted(t, "reset", Options{})
	conn, err := tls.Dial("tcp", f.ts.Listener.Addr().String(), f.ts.Client().Transport.(*http.Transport).TLSClientConfig)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(waitGuard))
	head := "POST " + IngestPath + " HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + testKey +
		"\r\nContent-Type: application/x-protobuf\r\nContent-Encoding: gzip\r\nContent-Length: 1048576\r\n\r\n"
	if _, err := conn.Write(append([]byte(head), make([]byte, 1024)...)); err != nil {
		t.Fatal(err)
	}
	n, err := conn.Read(make([]byte, 1024))
	if n != 0 || !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("read %d bytes, err %v; want ECONNRESET", n, err)
	}
	if r := f.waitRecords(1)[0]; r.Action != "reset" || r.WireBytes != resetAfterBytes {
		t.Errorf("record = %+v", r)
	}
}

// isReset reports whether err is a connection reset or the broken pipe a
// writer sees after one.
func isReset(err error) bool {
	return errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

func TestScriptedHang(t *testing.T) {
	f := scripted(t, "hang,ok", Options{})
	u := newUpload(t, heap)
	// No client timeout: the client gives up only once the server has
	// recorded the request it hangs on, so a slow machine changes nothing.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	errc := make(chan error, 1)
	go func() {
		resp, err := f.client(0).Do(f.request(encode(t, u), u.BatchId).WithContext(ctx))
		if err == nil {
			resp.Body.Close()
			err = errors.New("got an answer: " + resp.Status)
		}
		errc <- err
	}()
	recs := f.waitRecords(1)
	select {
	case err := <-errc:
		t.Fatalf("the request ended before the client gave up: %v", err)
	default:
	}
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want the client's own cancel (no answer)", err)
	}
	if r := recs[0]; r.Action != "hang" || r.Status != 0 || !r.Decoded || r.BatchID != u.BatchId {
		t.Errorf("record = %+v", r)
	}
	if status, _ := f.upload(u); status != http.StatusOK {
		t.Errorf("after the hang: %d, want 200", status)
	}
}

func TestHangEndsWhenServerCloses(t *testing.T) {
	f := scripted(t, "hang", Options{})
	u := newUpload(t, heap)
	errc := make(chan error, 1)
	go func() {
		resp, err := f.client(0).Do(f.request(encode(t, u), u.BatchId)) // no client timeout: only Close ends it
		if err == nil {
			resp.Body.Close()
			err = errors.New("got an answer: " + resp.Status)
		}
		errc <- err
	}()
	f.waitRecords(1) // the request is hanging
	f.srv.Close()
	select {
	case err := <-errc:
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() || strings.Contains(err.Error(), "got an answer") {
			t.Fatalf("err = %v, want the connection dropped", err)
		}
	case <-time.After(waitGuard):
		t.Fatal("the hanging request did not end after Close")
	}
}

func TestScriptedSlow(t *testing.T) {
	f := scripted(t, "slow/ms=300", Options{})
	start := time.Now()
	status, body := f.upload(newUpload(t, heap))
	if status != http.StatusOK {
		t.Fatalf("%d %q, want 200", status, body)
	}
	if d := time.Since(start); d < 300*time.Millisecond {
		t.Errorf("answered after %v, want at least 300ms", d)
	}
	if r := f.waitRecords(1)[0]; r.Action != "slow/ms=300" || r.Status != 200 {
		t.Errorf("record = %+v", r)
	}
}

func TestOtherPathsDoNotConsumeScript(t *testing.T) {
	f := scripted(t, "503", Options{})
	if resp, _ := f.do(mustRequest(t, http.MethodPost, f.url("/other"))); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("/other: %d", resp.StatusCode)
	}
	if status, _ := f.upload(newUpload(t, heap)); status != http.StatusServiceUnavailable {
		t.Fatalf("upload: %d, want the script's 503", status)
	}
	if f.srv.ScriptRemaining() != 0 {
		t.Errorf("script items left: %d", f.srv.ScriptRemaining())
	}
}
