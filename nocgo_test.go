//go:build !cgo

package pprofio_test

import (
	"strings"
	"testing"

	"github.com/pprofio/pprofio"
)

// Without cgo the package compiles and New says why it cannot work.
func TestNewWithoutCgoSaysCgoIsRequired(t *testing.T) {
	_, err := pprofio.New(pprofio.Config{ServiceName: "svc", OutputDir: t.TempDir()})
	if err == nil || !strings.Contains(err.Error(), "cgo") {
		t.Fatalf("New without cgo: got %v, want an error that names cgo", err)
	}
}
