//go:build !cgo

package pprofio_test

import (
	"strings"
	"testing"

	"github.com/pprofio/pprofio"
)

// Without cgo the package compiles and New says why it cannot work and
// what building with cgo needs.
func TestNewWithoutCgoSaysCgoIsRequired(t *testing.T) {
	_, err := pprofio.New(pprofio.Config{ServiceName: "svc", OutputDir: t.TempDir()})
	if err == nil || !strings.Contains(err.Error(), "cgo") {
		t.Fatalf("New without cgo: got %v, want an error that names cgo", err)
	}
	// It says what a build with cgo needs.
	for _, need := range []string{"zlib1g-dev", "libprotobuf-c-dev", "libcurl4-openssl-dev", "libcurl.so.4"} {
		if !strings.Contains(err.Error(), need) {
			t.Errorf("New without cgo: %q does not name %s", err, need)
		}
	}
}
