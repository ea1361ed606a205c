package pyroscope

// The request the Pyroscope uploader will send, checked against
// Pyroscope's own generated Connect handler (pushv1connect) behind a real
// TLS server on loopback: the path, the headers and the body (the core's
// encoder, gzipped by the core's zlib path), and how the handler's errors
// come back as HTTP statuses, which decide what the uploader retries.

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect"
	pushv1 "github.com/grafana/pyroscope/api/gen/proto/go/push/v1"
	"github.com/grafana/pyroscope/api/gen/proto/go/push/v1/pushv1connect"

	"github.com/pprofio/pprofio/internal/core"
)

// pusher is a PusherService that records what it decoded and answers
// with the error the test sets.
type pusher struct {
	mu      sync.Mutex
	got     []*pushv1.PushRequest
	headers []http.Header
	answer  error
}

func (p *pusher) Push(_ context.Context, r *connect.Request[pushv1.PushRequest]) (*connect.Response[pushv1.PushResponse], error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.got = append(p.got, r.Msg)
	p.headers = append(p.headers, r.Header().Clone())
	if p.answer != nil {
		return nil, p.answer
	}
	return connect.NewResponse(&pushv1.PushResponse{}), nil
}

// post sends body as the uploader will: POST {url}/push.v1.PusherService/Push.
func post(t *testing.T, c *http.Client, url string, body []byte, hdr map[string]string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url+"/push.v1.PusherService/Push", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

func TestConnectPushAsTheUploaderWillSendIt(t *testing.T) {
	svc := &pusher{}
	mux := http.NewServeMux()
	mux.Handle(pushv1connect.NewPusherServiceHandler(svc))
	srv := httptest.NewTLSServer(mux)
	defer srv.Close()
	client := srv.Client()
	client.Timeout = time.Minute

	raw, err := core.PyroscopeEncode("checkout", map[string]string{"env": "prod"}, []core.PyroscopeProfile{
		{Type: core.CPU, Start: time.Unix(1795988477, 0), End: time.Unix(1795988487, 0), Pprof: customProfile(t)},
		{Type: core.Heap, Start: time.Unix(1795988477, 0), End: time.Unix(1795988537, 0), Pprof: customProfile(t)},
	})
	if err != nil {
		t.Fatal(err)
	}
	gz, err := core.Gzip(raw)
	if err != nil {
		t.Fatal(err)
	}
	basic := "Basic " + base64.StdEncoding.EncodeToString([]byte("123456:glc_token"))
	hdr := map[string]string{
		"Content-Type":             "application/proto",
		"Content-Encoding":         "gzip",
		"Connect-Protocol-Version": "1",
		"Connect-Timeout-Ms":       "30000",
		"Authorization":            basic,
		"X-Scope-OrgID":            "team-a",
		"User-Agent":               "pprofio-go/test",
	}

	// Accepted: 200, a PushResponse (empty) in application/proto.
	resp, body := post(t, client, srv.URL, gz, hdr)
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/proto" || len(body) != 0 {
		t.Fatalf("accepted push: %d %q %q", resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
	if len(svc.got) != 1 || len(svc.got[0].Series) != 2 {
		t.Fatalf("the handler decoded %v", svc.got)
	}
	if h := svc.headers[0]; h.Get("Authorization") != basic || h.Get("X-Scope-OrgID") != "team-a" {
		t.Errorf("auth and tenant headers did not reach the service: %v", h)
	}
	// Uncompressed works too, without the optional Connect headers.
	resp, _ = post(t, client, srv.URL, raw, map[string]string{"Content-Type": "application/proto"})
	if resp.StatusCode != http.StatusOK || len(svc.got) != 2 || len(svc.got[1].Series) != 2 {
		t.Fatalf("uncompressed push: %d", resp.StatusCode)
	}

	// Refusals: the HTTP status the uploader sees for each Connect code
	// Pyroscope uses, with a JSON body naming the code.
	for _, c := range []struct {
		code   connect.Code
		status int
	}{
		{connect.CodeInvalidArgument, 400}, // bad labels or profile, outside the ingestion window: drop
		{connect.CodeUnauthenticated, 401}, // no or wrong credentials, no tenant: pause as for a refused key
		{connect.CodePermissionDenied, 403},
		{connect.CodeNotFound, 404},
		{connect.CodeResourceExhausted, 429}, // rate or ingest limit: retry later
		{connect.CodeUnknown, 500},
		{connect.CodeInternal, 500},
		{connect.CodeUnimplemented, 501},
		{connect.CodeUnavailable, 503},
		{connect.CodeDeadlineExceeded, 504},
	} {
		svc.mu.Lock()
		svc.answer = connect.NewError(c.code, errors.New("refused by the test"))
		svc.mu.Unlock()
		resp, body := post(t, client, srv.URL, gz, hdr)
		var e struct{ Code, Message string }
		if err := json.Unmarshal(body, &e); err != nil || resp.StatusCode != c.status || e.Code != c.code.String() {
			t.Errorf("%v: HTTP %d %q (%s), want %d with code %q", c.code, resp.StatusCode, body,
				resp.Header.Get("Content-Type"), c.status, c.code.String())
		}
	}
	// A wrong content type is refused before the service sees it.
	before := len(svc.got)
	resp, _ = post(t, client, srv.URL, gz, map[string]string{"Content-Type": "application/x-protobuf"})
	if resp.StatusCode != http.StatusUnsupportedMediaType || len(svc.got) != before {
		t.Errorf("application/x-protobuf: HTTP %d, want 415 and nothing decoded", resp.StatusCode)
	}
}
