package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/pprofio/pprofio/examples/ingest-server/receiver"
)

// config is the parsed command line.
type config struct {
	addr         string
	dataDir      string
	apiKeys      []string
	maxWireBytes int64
	maxBodyBytes int64
	certFile     string
	keyFile      string
	caOut        string
	plainHTTP    bool
	noKeepAlive  bool
	readyFile    string
	script       []receiver.Action
	recordPath   string
	ui           uiConfig
}

// listFlag is a flag that may be repeated, each value a comma-separated list.
type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ",") }

func (l *listFlag) Set(s string) error {
	*l = append(*l, splitList(s)...)
	return nil
}

// parseFlags parses the command line; usage errors are reported to stderr.
func parseFlags(args []string, stderr io.Writer) (*config, error) {
	cfg := &config{}
	var keys listFlag
	var script string
	fs := flag.NewFlagSet("ingest-server", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&cfg.addr, "addr", "127.0.0.1:8443", "listen address (127.0.0.1:0 picks a free port)")
	fs.StringVar(&cfg.dataDir, "data", "./ingest-data", "folder for received profiles and "+receiver.BatchesFile)
	fs.Var(&keys, "api-key", "accepted API key; repeat or separate with commas (default: $"+apiKeysEnv+")")
	fs.Int64Var(&cfg.maxWireBytes, "max-wire-bytes", receiver.DefaultMaxWireBytes, "largest request body on the wire (gzipped); 413 past it")
	fs.Int64Var(&cfg.maxBodyBytes, "max-body-bytes", receiver.DefaultMaxBodyBytes, "largest request body decompressed; 413 past it")
	fs.StringVar(&cfg.certFile, "cert", "", "server certificate chain, PEM (with -key); default: generate a self-signed one")
	fs.StringVar(&cfg.keyFile, "key", "", "server private key, PEM (with -cert)")
	fs.StringVar(&cfg.caOut, "ca-out", "", "write the generated CA certificate (PEM) to this file, for clients to trust")
	fs.BoolVar(&cfg.plainHTTP, "plain-http", false, "serve plain HTTP instead of HTTPS (local development only)")
	fs.BoolVar(&cfg.noKeepAlive, "no-keep-alive", false, "close each connection after its answer, as servers and proxies with short idle timeouts do")
	fs.StringVar(&cfg.readyFile, "ready-file", "", "once listening, write the base URL to this file (atomically)")
	fs.StringVar(&script, "script", "", "fault script: comma-separated actions, one per request (ok, 500, 429/ra=2, 429/date=3, 302, reset, hang, slow/ms=N)")
	fs.StringVar(&cfg.recordPath, "record", "", "append one JSON line per request to this file")
	cfg.ui.flags(fs)
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments: %q", fs.Args())
	}
	cfg.apiKeys = keys
	if len(cfg.apiKeys) == 0 {
		cfg.apiKeys = splitList(os.Getenv(apiKeysEnv))
	}
	var err error
	if cfg.script, err = receiver.ParseScript(script); err != nil {
		return nil, fmt.Errorf("-script: %w", err)
	}
	return cfg, cfg.check()
}

// check reports flags that contradict each other or are out of range.
func (cfg *config) check() error {
	switch {
	case cfg.maxWireBytes <= 0 || cfg.maxBodyBytes <= 0:
		return errors.New("-max-wire-bytes and -max-body-bytes must be positive")
	case (cfg.certFile == "") != (cfg.keyFile == ""):
		return errors.New("-cert and -key go together")
	case cfg.plainHTTP && (cfg.certFile != "" || cfg.caOut != ""):
		return errors.New("-plain-http serves no TLS: drop -cert, -key and -ca-out")
	case cfg.certFile != "" && cfg.caOut != "":
		return errors.New("-ca-out writes the generated CA; with -cert, give clients your own CA")
	case cfg.dataDir == "":
		return errors.New("-data must name a folder")
	}
	return cfg.ui.check()
}
