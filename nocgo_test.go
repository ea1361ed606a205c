//go:build !cgo

package pprofio_test

import (
	"strings"
	"testing"

	"github.com/pprofio/pprofio"
)

// Without cgo the package compiles and New says why it cannot work, and
// what building with cgo needs: every C library the core links.
func TestNewWithoutCgoSaysCgoIsRequired(t *testing.T) {
	_, err := pprofio.New(pprofio.Config{ServiceName: "svc", OutputDir: t.TempDir()})
	if err == nil {
		t.Fatal("New without cgo succeeded")
	}
	for _, want := range []string{"cgo", "CGO_ENABLED=1", "zlib", "libcurl", "protobuf-c"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("New without cgo: %q does not mention %s", err, want)
		}
	}
	// It says what a build with cgo needs.
	for _, need := range []string{"zlib1g-dev", "libprotobuf-c-dev", "libcurl4-openssl-dev", "libcurl.so.4"} {
		if !strings.Contains(err.Error(), need) {
			t.Errorf("New without cgo: %q does not name %s", err, need)
		}
	}
}
