package main

// The -ui flags: the web UI (package viewer) over what this receiver
// stores and over agents' OutputDirs, served on its own loopback address.

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"path/filepath"
	"time"

	"github.com/pprofio/pprofio/examples/ingest-server/viewer"
)

// uiRefresh is how often the UI indexes what arrived.
const uiRefresh = 2 * time.Second

type uiConfig struct {
	addr      string
	local     listFlag
	indexPath string
}

func (u *uiConfig) flags(fs *flag.FlagSet) {
	fs.StringVar(&u.addr, "ui-addr", "", "serve the web UI over plain HTTP on this loopback address (e.g. 127.0.0.1:8080; port 0 picks one)")
	fs.Var(&u.local, "ui-local", "also show this agent OutputDir in the UI; repeat for more")
	fs.StringVar(&u.indexPath, "ui-index", "", "the UI's SQLite index file (default: <data>/.viewer/index.db)")
}

// check refuses a UI address off loopback: the UI has no authentication.
func (u *uiConfig) check() error {
	if u.addr == "" {
		if len(u.local) > 0 || u.indexPath != "" {
			return errors.New("-ui-local and -ui-index need -ui-addr")
		}
		return nil
	}
	host, _, err := net.SplitHostPort(u.addr)
	if err != nil {
		return fmt.Errorf("-ui-addr: %v", err)
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return fmt.Errorf("-ui-addr %s: the UI has no authentication, so it listens on loopback only (127.0.0.1, ::1, localhost)", u.addr)
	}
	return nil
}

// startUI starts the UI when -ui-addr is set; the returned function stops it.
func startUI(ctx context.Context, cfg *config, logger *log.Logger) (func(), error) {
	if cfg.ui.addr == "" {
		return func() {}, nil
	}
	opts := viewer.Options{
		Sources:   []viewer.Source{{Name: "received", Dir: cfg.dataDir, Kind: viewer.KindReceived}},
		IndexPath: cfg.ui.indexPath,
		Logger:    logger,
	}
	if opts.IndexPath == "" {
		opts.IndexPath = filepath.Join(cfg.dataDir, ".viewer", "index.db")
	}
	for i, dir := range cfg.ui.local {
		name := "local"
		if i > 0 {
			name = fmt.Sprintf("local%d", i+1)
		}
		opts.Sources = append(opts.Sources, viewer.Source{Name: name, Dir: dir, Kind: viewer.KindLocal})
	}
	v, err := viewer.New(opts)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", cfg.ui.addr)
	if err != nil {
		v.Close()
		return nil, fmt.Errorf("-ui-addr: %w", err)
	}
	uiCtx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); v.Run(uiCtx, uiRefresh) }()
	srv := &http.Server{Handler: v, ReadHeaderTimeout: 10 * time.Second, ErrorLog: logger}
	go func() { _ = srv.Serve(ln) }()
	logger.Printf("UI on http://%s/", ln.Addr())
	return func() {
		cancel()
		srv.Close()
		<-done
		v.Close()
	}, nil
}
