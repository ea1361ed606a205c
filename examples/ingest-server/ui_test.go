package main

import (
	"context"
	"io"
	"log"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// The UI listens on loopback only, and its other flags need -ui-addr.
func TestUIFlagsRefuseWhatCannotWork(t *testing.T) {
	for _, args := range [][]string{
		{"-ui-addr", "0.0.0.0:8080"}, {"-ui-addr", "192.0.2.1:8080"}, {"-ui-addr", "nonsense"},
		{"-ui-local", "/tmp"}, {"-ui-index", "/tmp/x.db"},
	} {
		if _, err := parseFlags(args, io.Discard); err == nil {
			t.Errorf("%v: accepted", args)
		}
	}
	for _, addr := range []string{"127.0.0.1:0", "[::1]:0", "localhost:8080"} {
		if _, err := parseFlags([]string{"-ui-addr", addr}, io.Discard); err != nil {
			t.Errorf("-ui-addr %s: %v", addr, err)
		}
	}
}

// With -ui-addr the command serves the UI over the data folder and the
// -ui-local folders, and says where.
func TestUIServesTheDataFolderAndOutputDirs(t *testing.T) {
	dir := t.TempDir()
	local := filepath.Join(dir, "out")
	os.MkdirAll(filepath.Join(local, "svc", "cpu"), 0o700)
	cfg, err := parseFlags([]string{"-data", filepath.Join(dir, "data"), "-ui-addr", "127.0.0.1:0", "-ui-local", local}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	var logs strings.Builder
	stop, err := startUI(context.Background(), cfg, log.New(&logs, "", 0))
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	url := regexp.MustCompile(`UI on (http://\S+)`).FindStringSubmatch(logs.String())
	if url == nil {
		t.Fatalf("no UI address logged: %q", logs.String())
	}
	resp, err := http.Get(url[1] + "s/local/svc/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), "No cycles are stored for service &#34;svc&#34; in source local") {
		t.Fatalf("GET %ss/local/svc/: %d\n%s", url[1], resp.StatusCode, body)
	}
	if _, err := os.Stat(filepath.Join(dir, "data", ".viewer", "index.db")); err != nil {
		t.Fatalf("the index is not in the data folder: %v", err)
	}
}
