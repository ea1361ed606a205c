// Package receiver implements the server side of the pprofio ingest
// contract (API.md, ingest.proto): it accepts POST {base}/v1/profiles,
// checks the API key, the headers and the limits, decodes the gzipped
// UploadRequest, refuses repeated batch_ids with 409, and stores each
// profile as a gzip file that `go tool pprof` opens.
//
// For tests it can also follow a fault script (see ParseScript) and record
// every request as a JSON line (see Recorder). A Server is an http.Handler,
// so tests can run it in-process with net/http/httptest. The "reset" and
// "hang" actions need HTTP/1.1 (the handler hijacks the connection); serve
// it without HTTP/2, as httptest does by default.
package receiver

import (
	"crypto/subtle"
	"errors"
	"io"
	"log"
	"net/http"
	"strings"
	"sync"
	"time"
)

// Default limits of the contract.
const (
	DefaultMaxWireBytes = 16 << 20
	DefaultMaxBodyBytes = 64 << 20
)

// IngestPath is the path the agent posts to, below its base URL.
const IngestPath = "/v1/profiles"

// RedirectPath is where scripted 3xx answers point. Nothing useful is
// served there; requests to it are answered 404 and recorded.
const RedirectPath = "/elsewhere"

// Options configure a Server.
type Options struct {
	// DataDir is the folder profiles and BatchesFile are written to; it is
	// created with mode 0700 if missing. Required.
	DataDir string
	// APIKeys are the accepted bearer tokens. When empty, any non-empty
	// bearer token is accepted.
	APIKeys []string
	// MaxWireBytes and MaxBodyBytes bound a request body as sent and once
	// decompressed; 0 means DefaultMaxWireBytes, DefaultMaxBodyBytes.
	MaxWireBytes int64
	MaxBodyBytes int64
	// Script is the fault script: one action per request to the ingest
	// path, in arrival order. After it runs out requests are handled normally.
	Script []Action
	// Recorder, if set, gets one Record per request, whatever the outcome.
	Recorder *Recorder
	// Logger, if set, gets a line per accepted batch and per internal error.
	Logger *log.Logger
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
}

// Server is the ingest receiver. It is an http.Handler.
type Server struct {
	opts      Options
	store     *store
	script    *script
	done      chan struct{}
	closeOnce sync.Once
}

// New returns a Server storing into opts.DataDir.
func New(opts Options) (*Server, error) {
	if opts.MaxWireBytes <= 0 {
		opts.MaxWireBytes = DefaultMaxWireBytes
	}
	if opts.MaxBodyBytes <= 0 {
		opts.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = log.New(io.Discard, "", 0)
	}
	st, err := openStore(opts.DataDir)
	if err != nil {
		return nil, err
	}
	return &Server{opts: opts, store: st, script: newScript(opts.Script), done: make(chan struct{})}, nil
}

// Close releases the handlers that are hanging or waiting on a script
// action, so that an http.Server can shut down. It does not stop serving.
func (s *Server) Close() {
	s.closeOnce.Do(func() { close(s.done) })
}

// Stats counts what a Server accepted since it started.
type Stats struct {
	// Batches is the batches accepted whole or as the first of their parts.
	Batches int
	// Parts is the further parts of batches split after a 413: new
	// batch_ids that share an instance's sequence with an earlier batch.
	Parts int
	// Duplicates is the batch_ids sent again after they were accepted (409).
	Duplicates int
}

// Stats returns the counts so far.
func (s *Server) Stats() Stats {
	s.store.mu.Lock()
	defer s.store.mu.Unlock()
	return s.store.stats
}

// ScriptRemaining reports how many script items are still to be consumed.
func (s *Server) ScriptRemaining() int {
	return s.script.remaining()
}

// ServeHTTP routes a request: the ingest path (ending in IngestPath)
// consumes one script action; every other path is answered 404.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ex := &exchange{srv: s, w: w, r: r, rec: newRecord(r, s.opts.Now())}
	defer ex.record()
	if !isIngestPath(r.URL.Path) {
		ex.reply(http.StatusNotFound, "not found: the ingest endpoint is POST {base}"+IngestPath)
		return
	}
	s.apply(ex, s.script.next())
}

// isIngestPath reports whether path is IngestPath, possibly below a prefix.
func isIngestPath(path string) bool {
	return path == IngestPath || strings.HasSuffix(path, IngestPath)
}

// checkAuth checks the Authorization header against the configured keys.
func (s *Server) checkAuth(r *http.Request) error {
	scheme, token, _ := strings.Cut(r.Header.Get("Authorization"), " ")
	if !strings.EqualFold(scheme, "Bearer") || token == "" {
		return reject(http.StatusUnauthorized, "missing bearer token")
	}
	if len(s.opts.APIKeys) == 0 {
		return nil
	}
	for _, k := range s.opts.APIKeys {
		if subtle.ConstantTimeCompare([]byte(k), []byte(token)) == 1 {
			return nil
		}
	}
	return reject(http.StatusUnauthorized, "unknown API key")
}

// exchange is one request in progress: the response writer, the request
// and the record being built.
type exchange struct {
	srv      *Server
	w        http.ResponseWriter
	r        *http.Request
	rec      Record
	recorded bool
}

// reply drains what is left of the request body, then answers status with
// a short text body.
func (ex *exchange) reply(status int, text string) {
	ex.replyType(status, "text/plain; charset=utf-8", text+"\n")
	if status >= 300 {
		ex.rec.Reason = text
	}
}

// replyType drains what is left of the request body, then answers status
// with body of the given content type.
func (ex *exchange) replyType(status int, contentType, body string) {
	drain(ex.r.Body)
	h := ex.w.Header()
	h.Set("Content-Type", contentType)
	h.Set("X-Content-Type-Options", "nosniff")
	ex.w.WriteHeader(status)
	_, _ = io.WriteString(ex.w, body)
	ex.rec.Status = status
}

// fail answers a rejection, or 500 for any other error.
func (ex *exchange) fail(err error) {
	var rj *rejection
	if errors.As(err, &rj) {
		ex.reply(rj.status, rj.reason)
		return
	}
	ex.srv.opts.Logger.Printf("internal error: %v", err)
	ex.reply(http.StatusInternalServerError, "internal error")
}

// record writes the exchange's record once, if a Recorder is set.
func (ex *exchange) record() {
	if ex.recorded || ex.srv.opts.Recorder == nil {
		return
	}
	ex.recorded = true
	if err := ex.srv.opts.Recorder.Write(ex.rec); err != nil {
		ex.srv.opts.Logger.Printf("record: %v", err)
	}
}
