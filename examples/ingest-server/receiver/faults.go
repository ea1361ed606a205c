package receiver

import (
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/pprofio/pprofio/examples/ingest-server/ingestpb"
)

// resetAfterBytes is how much of the body the "reset" action reads before
// it aborts the connection.
const resetAfterBytes = 100

// apply carries out one script action for a request to the ingest path.
func (s *Server) apply(ex *exchange, a Action) {
	ex.rec.Action = a.String()
	switch a.Kind {
	case ActStatus:
		s.answerScripted(ex, a)
	case ActReset:
		s.reset(ex)
	case ActHang:
		s.hang(ex)
	case ActSlow:
		s.wait(ex, a.Delay)
		s.handleIngest(ex)
	default:
		s.handleIngest(ex)
	}
}

// answerScripted reads the body (decoding it for the record when it can)
// and answers the scripted status, with Retry-After or Location as asked.
func (s *Server) answerScripted(ex *exchange, a Action) {
	s.inspect(ex)
	h := ex.w.Header()
	switch a.RetryAfter {
	case RetryAfterSeconds:
		h.Set("Retry-After", strconv.Itoa(a.RetryAfterSecs))
	case RetryAfterDate:
		at := s.opts.Now().Add(time.Duration(a.RetryAfterSecs) * time.Second)
		h.Set("Retry-After", at.UTC().Format(http.TimeFormat))
	}
	if a.Status >= 300 && a.Status < 400 {
		h.Set("Location", RedirectPath)
	}
	ex.reply(a.Status, fmt.Sprintf("scripted %d %s", a.Status, http.StatusText(a.Status)))
}

// inspect reads the body within the limits and, when it decodes, notes the
// upload in the record. Errors only leave the record shorter.
func (s *Server) inspect(ex *exchange) {
	wire, err := readWire(ex.r, s.opts.MaxWireBytes)
	ex.rec.WireBytes = int64(len(wire))
	if err != nil {
		return
	}
	body, err := gunzip(wire, s.opts.MaxBodyBytes)
	ex.rec.BodyBytes = int64(len(body))
	if err != nil {
		return
	}
	req := new(ingestpb.UploadRequest)
	if proto.Unmarshal(body, req) == nil {
		ex.rec.noteUpload(req)
	}
}

// reset reads the first bytes of the body, records the request, and aborts
// the TCP connection with a reset.
func (s *Server) reset(ex *exchange) {
	n, _ := io.ReadFull(ex.r.Body, make([]byte, resetAfterBytes))
	ex.rec.WireBytes = int64(n)
	ex.record()
	abortConn(ex.w, true)
}

// hang reads the body, records the request, and then never answers: it
// returns, dropping the connection, when the client goes away or the
// server is closed.
func (s *Server) hang(ex *exchange) {
	s.inspect(ex)
	ex.record()
	select {
	case <-ex.r.Context().Done():
	case <-s.done:
	}
	abortConn(ex.w, false)
}

// wait sleeps for d, or less if the client goes away or the server closes.
func (s *Server) wait(ex *exchange, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ex.r.Context().Done():
	case <-s.done:
	}
}

// abortConn takes the connection over and closes it without an answer.
// With reset set it first sets SO_LINGER 0 on the TCP connection (below
// TLS), so closing sends a TCP RST rather than a FIN. When the connection
// cannot be taken over (HTTP/2), it aborts the handler instead, which drops
// the stream.
func abortConn(w http.ResponseWriter, reset bool) {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		panic(http.ErrAbortHandler)
	}
	raw := conn
	if tc, ok := conn.(*tls.Conn); ok {
		raw = tc.NetConn()
	}
	if l, ok := raw.(interface{ SetLinger(int) error }); ok && reset {
		_ = l.SetLinger(0)
	}
	_ = raw.Close()
}
