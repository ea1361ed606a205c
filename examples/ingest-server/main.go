// Command ingest-server is the reference receiver of the pprofio ingest API:
// it accepts the agent's uploads over HTTPS and stores each profile as a
// file that `go tool pprof` opens. It serves people trying the agent without
// the service, and the project's tests, which inject faults with -script and
// read what arrived with -record. README.md beside this file has the usage.
//
//	ingest-server -addr 127.0.0.1:0 -api-key k -ca-out ca.pem -ready-file url.txt
package main

//go:generate bash generate.sh

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/pprofio/pprofio/examples/ingest-server/receiver"
)

// shutdownGrace bounds how long a graceful shutdown waits for requests.
const shutdownGrace = 5 * time.Second

// apiKeysEnv names the environment variable read when no -api-key is given.
const apiKeysEnv = "PPROFIO_API_KEYS"

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run is the whole command: it returns the exit status (0 after a graceful
// shutdown, 1 on a runtime error, 2 on a usage error).
func run(args []string, stdout, stderr io.Writer) int {
	cfg, err := parseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "ingest-server: %v\n", err)
		return 2
	}
	logger := log.New(stderr, "ingest-server: ", log.LstdFlags)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := serve(ctx, cfg, stdout, logger); err != nil {
		logger.Print(err)
		return 1
	}
	return 0
}

// serve runs the server until ctx is done, then shuts it down gracefully.
func serve(ctx context.Context, cfg *config, stdout io.Writer, logger *log.Logger) error {
	recorder, closeRecord, err := openRecorder(cfg.recordPath)
	if err != nil {
		return err
	}
	defer closeRecord()
	srv, err := newReceiver(cfg, recorder, logger)
	if err != nil {
		return err
	}
	tlsCfg, err := tlsConfig(cfg, logger)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", cfg.addr)
	if err != nil {
		return err
	}
	url := baseURL(ln.Addr(), tlsCfg != nil)
	if tlsCfg != nil {
		ln = tls.NewListener(ln, tlsCfg)
	}
	stopUI, err := startUI(ctx, cfg, logger)
	if err != nil {
		ln.Close()
		return err
	}
	defer stopUI()
	httpSrv := newHTTPServer(srv, logger)
	httpSrv.SetKeepAlivesEnabled(!cfg.noKeepAlive)
	errc := make(chan error, 1)
	go func() { errc <- httpSrv.Serve(ln) }()
	if err := announce(cfg, url, stdout); err != nil {
		httpSrv.Close()
		return err
	}
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	return shutdown(httpSrv, srv, logger)
}

// newReceiver builds the receiver from the configuration.
func newReceiver(cfg *config, recorder *receiver.Recorder, logger *log.Logger) (*receiver.Server, error) {
	if len(cfg.apiKeys) == 0 {
		logger.Print("WARNING: no API key configured (-api-key or " + apiKeysEnv +
			"): any non-empty bearer token is accepted")
	}
	return receiver.New(receiver.Options{
		DataDir:      cfg.dataDir,
		APIKeys:      cfg.apiKeys,
		MaxWireBytes: cfg.maxWireBytes,
		MaxBodyBytes: cfg.maxBodyBytes,
		Script:       cfg.script,
		Recorder:     recorder,
		Logger:       logger,
	})
}

// newHTTPServer returns an HTTP/1.1-only server for h: the "reset" and
// "hang" script actions take over the connection, which HTTP/2 forbids.
func newHTTPServer(h http.Handler, logger *log.Logger) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          logger,
		TLSNextProto:      map[string]func(*http.Server, *tls.Conn, http.Handler){},
	}
}

// announce prints the listening line and writes the ready file.
func announce(cfg *config, url string, stdout io.Writer) error {
	if _, err := fmt.Fprintf(stdout, "ingest-server: listening on %s\n", url); err != nil {
		return err
	}
	if cfg.readyFile == "" {
		return nil
	}
	return writeFileAtomic(cfg.readyFile, []byte(url), 0o644)
}

// shutdown releases hanging handlers, then stops the HTTP server, waiting
// up to shutdownGrace for requests in progress.
func shutdown(httpSrv *http.Server, srv *receiver.Server, logger *log.Logger) error {
	st := srv.Stats()
	logger.Printf("shutting down: accepted %d batches and %d further parts of split batches; %d duplicates (409)",
		st.Batches, st.Parts, st.Duplicates)
	srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	if err := httpSrv.Shutdown(ctx); err != nil {
		logger.Printf("graceful shutdown: %v; closing connections", err)
		return httpSrv.Close()
	}
	return nil
}

// baseURL is the URL clients use for the listener's address. An
// unspecified address (all interfaces) is named localhost.
func baseURL(addr net.Addr, useTLS bool) string {
	host, port, _ := net.SplitHostPort(addr.String())
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		host = "localhost"
	}
	scheme := "https"
	if !useTLS {
		scheme = "http"
	}
	return scheme + "://" + net.JoinHostPort(host, port)
}

// tlsConfig returns the server's TLS configuration, or nil with -plain-http.
func tlsConfig(cfg *config, logger *log.Logger) (*tls.Config, error) {
	if cfg.plainHTTP {
		logger.Print("WARNING: -plain-http: serving plain HTTP, for local development only")
		return nil, nil
	}
	cert, err := serverCert(cfg, logger)
	if err != nil {
		return nil, err
	}
	return &tls.Config{
		Certificates: []tls.Certificate{cert},
		MinVersion:   tls.VersionTLS12,
		NextProtos:   []string{"http/1.1"},
	}, nil
}

// serverCert loads -cert/-key, or generates a self-signed CA and leaf and
// writes the CA to -ca-out.
func serverCert(cfg *config, logger *log.Logger) (tls.Certificate, error) {
	if cfg.certFile != "" {
		return tls.LoadX509KeyPair(cfg.certFile, cfg.keyFile)
	}
	ss, err := receiver.GenerateSelfSigned()
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("generating a certificate: %w", err)
	}
	if cfg.caOut == "" {
		logger.Print("generated a self-signed certificate; give -ca-out FILE to get its CA for clients")
		return ss.Leaf, nil
	}
	if err := writeFileAtomic(cfg.caOut, ss.CAPEM, 0o644); err != nil {
		return tls.Certificate{}, fmt.Errorf("writing -ca-out: %w", err)
	}
	abs, _ := filepath.Abs(cfg.caOut)
	logger.Printf("generated a self-signed certificate; its CA is in %s", abs)
	return ss.Leaf, nil
}

// openRecorder opens the -record file for appending; with no path it
// returns a nil Recorder.
func openRecorder(path string) (*receiver.Recorder, func(), error) {
	if path == "" {
		return nil, func() {}, nil
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return nil, nil, fmt.Errorf("opening -record: %w", err)
	}
	return receiver.NewRecorder(f), func() { f.Close() }, nil
}

// writeFileAtomic writes data to path through a temporary file in the same
// folder and a rename, so a reader sees either nothing or all of it.
func writeFileAtomic(path string, data []byte, mode os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // fails harmlessly after the rename
	_, err = tmp.Write(data)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(tmp.Name(), mode)
	}
	if err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// splitList splits a comma-separated list, dropping empty items.
func splitList(s string) []string {
	var out []string
	for _, item := range strings.Split(s, ",") {
		if item = strings.TrimSpace(item); item != "" {
			out = append(out, item)
		}
	}
	return out
}
