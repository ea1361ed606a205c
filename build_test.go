//go:build cgo

package pprofio_test

import (
	"debug/elf"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// These tests run the go command on copies of this module: they pin down
// how the package builds for the people who import it.

// copyModule copies the files a consumer of the module gets into dst.
func copyModule(t *testing.T, dst string) {
	t.Helper()
	for _, dir := range []string{".", "csrc", "include", "internal/core", "internal/collector", "internal/records", "internal/spans"} {
		entries, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(filepath.Join(dst, dir), 0o755); err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			name := e.Name()
			if e.IsDir() || strings.HasSuffix(name, "_test.go") {
				continue
			}
			b, err := os.ReadFile(filepath.Join(dir, name))
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dst, dir, name), b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
}

func goCmd(t *testing.T, dir string, env []string, args ...string) string {
	t.Helper()
	cmd := exec.Command("go", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("go %s (in %s): %v\n%s", strings.Join(args, " "), dir, err, out)
	}
	return string(out)
}

func edit(t *testing.T, path, old, new string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), old) {
		t.Fatalf("%s does not contain %q", path, old)
	}
	if err := os.WriteFile(path, []byte(strings.Replace(string(b), old, new, 1)), 0o644); err != nil {
		t.Fatal(err)
	}
}

// An edit to a file in csrc/ or include/ must reach the next go build,
// though cgo itself does not track files included from other folders.
func TestEditToCSourcesRebuildsTheCore(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the go command several times")
	}
	mod := t.TempDir()
	copyModule(t, mod)
	probe := filepath.Join(mod, "internal", "probe")
	os.MkdirAll(probe, 0o755)
	os.WriteFile(filepath.Join(probe, "main.go"), []byte(`package main

import (
	"fmt"

	"github.com/pprofio/pprofio/internal/core"
)

func main() { fmt.Print(core.Version(), " ", core.StatusText(-1)) }
`), 0o644)
	bin := filepath.Join(t.TempDir(), "probe")
	run := func() string {
		t.Helper()
		goCmd(t, mod, nil, "build", "-o", bin, "./internal/probe")
		out, err := exec.Command(bin).Output()
		if err != nil {
			t.Fatal(err)
		}
		return string(out)
	}
	if got := run(); !strings.HasSuffix(got, " invalid argument") {
		t.Fatalf("probe printed %q before any edit", got)
	}
	edit(t, filepath.Join(mod, "csrc", "errors.c"), `"invalid argument"`, `"edited in csrc"`)
	if got := run(); !strings.HasSuffix(got, " edited in csrc") {
		t.Fatalf("after editing csrc/errors.c the probe still prints %q: the core was not rebuilt", got)
	}
	edit(t, filepath.Join(mod, "include", "pprofio.h"), `#define PPROFIO_VERSION "`, `#define PPROFIO_VERSION "edited-`)
	if got := run(); !strings.HasPrefix(got, "edited-") {
		t.Fatalf("after editing include/pprofio.h the probe still prints %q: the core was not rebuilt", got)
	}
}

// A consumer that vendors its dependencies still builds and runs the core:
// `go mod vendor` drops folders without .go files, so csrc and include
// must be packages.
func TestConsumerBuildsFromVendor(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the go command several times")
	}
	lib := t.TempDir()
	copyModule(t, lib)
	app := t.TempDir()
	os.WriteFile(filepath.Join(app, "go.mod"), []byte(`module example.com/app

go 1.22

require github.com/pprofio/pprofio v0.0.0

replace github.com/pprofio/pprofio => `+lib+"\n"), 0o644)
	os.WriteFile(filepath.Join(app, "main.go"), []byte(`package main

import (
	"context"
	"fmt"
	"os"

	"github.com/pprofio/pprofio"
)

func main() {
	p, err := pprofio.New(pprofio.Config{ServiceName: "app", OutputDir: os.Args[1], StartJitter: -1})
	if err != nil {
		panic(err)
	}
	if err := p.Start(context.Background()); err != nil {
		panic(err)
	}
	if err := p.Stop(); err != nil {
		panic(err)
	}
	fmt.Print(p.Stats().ProfilesWritten)
}
`), 0o644)
	goCmd(t, app, []string{"GOFLAGS=-mod=mod"}, "mod", "vendor")
	for _, f := range []string{"csrc/agent.c", "csrc/gz.h", "include/pprofio.h", "internal/core/core.c"} {
		if _, err := os.Stat(filepath.Join(app, "vendor/github.com/pprofio/pprofio", f)); err != nil {
			t.Errorf("vendor tree lacks %s: %v", f, err)
		}
	}
	bin := filepath.Join(t.TempDir(), "app")
	goCmd(t, app, []string{"GOFLAGS=-mod=vendor"}, "build", "-o", bin, ".")
	checkOwnLibraries(t, bin)
	out, err := exec.Command(bin, t.TempDir()).CombinedOutput()
	if err != nil {
		t.Fatalf("vendored app failed: %v\n%s", err, out)
	}
	// Stopped at once: the final cycle has its heap snapshot, and a CPU
	// profile too if the first window opened before Stop.
	if string(out) != "1" && string(out) != "2" {
		t.Fatalf("vendored app wrote %q profiles, want 1 or 2", out)
	}
}

// checkOwnLibraries checks what a program that imports pprofio needs from
// the host at run time: the C library only. zlib and protobuf-c are linked
// in from their static archives without exporting a symbol (a libz.so.1
// that libcurl or the host loads keeps its own), and libcurl is loaded at
// run time when there is one.
func checkOwnLibraries(t *testing.T, bin string) {
	t.Helper()
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	libs, err := f.ImportedLibraries()
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range libs {
		if !strings.HasPrefix(l, "libc.so") && !strings.HasPrefix(l, "libpthread.so") && !strings.HasPrefix(l, "libdl.so") {
			t.Errorf("the program needs %s at run time (needs %v)", l, libs)
		}
	}
	syms, err := f.DynamicSymbols()
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range syms {
		if s.Section != elf.SHN_UNDEF && (strings.HasPrefix(s.Name, "deflate") || strings.HasPrefix(s.Name, "inflate") ||
			strings.HasPrefix(s.Name, "protobuf_c_") || strings.HasPrefix(s.Name, "curl_")) {
			t.Errorf("the program exports %s", s.Name)
		}
	}
}

// A program that links zlib itself (another cgo package with -lz) builds
// and runs with pprofio: the linker resolves both to one zlib (the shared
// one the program asks for, which then leaves the archive unused), so
// nothing is defined twice and both compute with it.
func TestConsumerThatLinksZlibItself(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the go command")
	}
	lib := t.TempDir()
	copyModule(t, lib)
	app := t.TempDir()
	os.MkdirAll(filepath.Join(app, "zl"), 0o755)
	os.WriteFile(filepath.Join(app, "go.mod"), []byte(`module example.com/app

go 1.22

require github.com/pprofio/pprofio v0.0.0

replace github.com/pprofio/pprofio => `+lib+"\n"), 0o644)
	os.WriteFile(filepath.Join(app, "zl", "zl.go"), []byte(`package zl

/*
#cgo LDFLAGS: -lz
#include <zlib.h>
static unsigned long crc(void) { return crc32(0L, (const Bytef *)"pprofio", 7); }
*/
import "C"

func CRC() uint64 { return uint64(C.crc()) }
`), 0o644)
	os.WriteFile(filepath.Join(app, "main.go"), []byte(`package main

import (
	"context"
	"fmt"
	"os"

	"example.com/app/zl"
	"github.com/pprofio/pprofio"
)

func main() {
	p, err := pprofio.New(pprofio.Config{ServiceName: "app", OutputDir: os.Args[1], StartJitter: -1})
	if err != nil {
		panic(err)
	}
	if err := p.Start(context.Background()); err != nil {
		panic(err)
	}
	if err := p.Stop(); err != nil {
		panic(err)
	}
	fmt.Print(zl.CRC(), " ", p.Stats().ProfilesWritten)
}
`), 0o644)
	bin := filepath.Join(t.TempDir(), "app")
	goCmd(t, app, []string{"GOFLAGS=-mod=mod"}, "build", "-o", bin, ".")
	out, err := exec.Command(bin, t.TempDir()).CombinedOutput()
	if err != nil {
		t.Fatalf("the app failed: %v\n%s", err, out)
	}
	// crc32("pprofio"), as zlib computes it; then 1 or 2 profiles (see above).
	if got := string(out); got != "3206106587 1" && got != "3206106587 2" {
		t.Fatalf("the app printed %q", got)
	}
}

// With -tags pprofio_shared, for distributions without the static
// archives, zlib and protobuf-c are linked as shared libraries and the
// program still runs; libcurl is still loaded at run time, not linked.
func TestSharedTagLinksZlibAndProtobufCAsSharedLibraries(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the go command")
	}
	bin := filepath.Join(t.TempDir(), "basic")
	goCmd(t, ".", nil, "build", "-tags", "pprofio_shared", "-o", bin, "./examples/basic")
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	libs, err := f.ImportedLibraries()
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Join(libs, " ")
	if !strings.Contains(got, "libz.so.1") || !strings.Contains(got, "libprotobuf-c.so.1") || strings.Contains(got, "libcurl") {
		t.Fatalf("built with pprofio_shared, the program needs %v; want libz.so.1 and libprotobuf-c.so.1, no libcurl", libs)
	}
	out, err := exec.Command(bin, "-duration", "1500ms", "-rate", "1s", "-cpu", "200ms", "-out", t.TempDir()).CombinedOutput()
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if !strings.Contains(string(out), "profiles written=") || strings.Contains(string(out), "profiles written=0 ") {
		t.Fatalf("the program wrote no profile:\n%s", out)
	}
}

// Without cgo everything still compiles, and New says cgo is required.
func TestBuildWithoutCgo(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the go command")
	}
	env := []string{"CGO_ENABLED=0"}
	goCmd(t, ".", env, "build", "./...")
	goCmd(t, ".", env, "vet", ".")
	out := goCmd(t, ".", env, "test", "-count=1", "-run", "TestNewWithoutCgoSaysCgoIsRequired", "-v", ".")
	if !strings.Contains(out, "--- PASS: TestNewWithoutCgoSaysCgoIsRequired") {
		t.Fatalf("the !cgo test did not run and pass:\n%s", out)
	}
}

// The package compiles for 32-bit platforms too (without cgo here: there
// is no cross C toolchain), whose int is 32 bits and whose 64-bit atomics
// need 8-byte alignment (checked at compile time in spans.go).
func TestBuildFor32BitPlatforms(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the go command")
	}
	for _, arch := range []string{"386", "arm"} {
		goCmd(t, ".", []string{"CGO_ENABLED=0", "GOARCH=" + arch}, "vet", "./...")
	}
}
