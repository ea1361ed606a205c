// deploy_test.go: the Dockerfile's binary run in minimal roots, with and
// without libcurl, against the reference receiver over TLS.

package deploy

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/pprof/profile"

	"github.com/pprofio/pprofio/examples/ingest-server/receiver"
	"github.com/pprofio/pprofio/tests/internal/testreceiver"
)

const (
	repo       = "../.."
	dockerfile = repo + "/examples/deploy/Dockerfile"
	apiKey     = "deploy-test-key-51c2"
)

// The files the core's build reads from the system, and so the packages
// the Dockerfile's build stage must install.
var buildFiles = []string{
	"/usr/include/zlib.h",
	"/usr/include/protobuf-c/protobuf-c.h",
	"/usr/include/" + multiarch() + "/curl/curl.h",
	"/usr/lib/" + multiarch() + "/libz.a",
	"/usr/lib/" + multiarch() + "/libprotobuf-c.a",
}

func multiarch() string {
	out, err := exec.Command("gcc", "-print-multiarch").Output()
	if err != nil || len(bytes.TrimSpace(out)) == 0 {
		return "x86_64-linux-gnu"
	}
	return string(bytes.TrimSpace(out))
}

// One binary, built as the Dockerfile builds it, runs on a root holding
// what `ldd` and the runtime stage's packages give (uploads over TLS), on a
// root without libcurl (runs, writes locally, says once that uploads are
// off, keeps its batches), and then on the first root again, which sends
// what the second one left.
func TestExampleBinaryOnASlimRootAndOnOneWithoutLibcurl(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("the deployment checks use chroot, ldd and dpkg: Linux only")
	}
	if os.Geteuid() != 0 {
		t.Skip("skipped: running the binary in a minimal root needs chroot, which needs root " +
			"(CAP_SYS_CHROOT); CI runs the tests as root")
	}
	df, err := ParseDockerfile(dockerfile)
	if err != nil {
		t.Fatal(err)
	}
	checkBuildPackages(t, df)
	bin := build(t, df)
	checkLinkedLibraries(t, bin)

	var runtimeLibs []string
	for _, pkg := range df.RuntimePackages {
		libs, err := PackageLibraries(pkg)
		if err != nil {
			t.Fatalf("the runtime stage installs %s: %v", pkg, err)
		}
		runtimeLibs = append(runtimeLibs, libs...)
	}
	slim, err := NewRoot(t.TempDir(), bin, runtimeLibs)
	if err != nil {
		t.Fatal(err)
	}
	bare, err := NewRoot(t.TempDir(), bin, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("slim root (%s, packages %v): %v", df.RuntimeImage, df.RuntimePackages, slim.Files)
	t.Logf("root without libcurl: %v", bare.Files)
	if !slim.Has("libcurl.so.4") {
		t.Fatalf("the runtime stage's packages %v do not bring libcurl.so.4", df.RuntimePackages)
	}
	if bare.Has("libcurl.so.4") {
		t.Fatal("the binary itself needs libcurl.so.4")
	}
	in := testreceiver.Start(t, apiKey)
	for _, r := range []*Root{slim, bare} {
		if err := r.Copy(in.CAFile, "/ca.pem", 0o644); err != nil {
			t.Fatal(err)
		}
	}

	t.Run("slim root: profiles, writes locally, uploads over TLS", func(t *testing.T) {
		res := runIn(t, slim, in.URL, "/data/spool", "4s")
		if n := strings.Count(res.stderr, "uploads are off"); n != 0 {
			t.Fatalf("uploads are off on the slim root:\n%s", res.stderr)
		}
		checkLocalProfiles(t, slim)
		sent := res.stat(t, "batches sent")
		if sent < 1 || res.stat(t, "queued") != 0 {
			t.Fatalf("sent %d batch(es), %d left queued; want all sent", sent, res.stat(t, "queued"))
		}
		stored := storedBatches(t, in)
		if len(stored) != sent {
			t.Fatalf("the receiver stored %d batch(es), the program sent %d", len(stored), sent)
		}
		types := map[string]bool{}
		for _, b := range stored {
			for _, p := range b.Profiles {
				types[p.Type] = true
			}
		}
		if !types["cpu"] || !types["heap"] {
			t.Fatalf("the receiver got profile types %v, want cpu and heap", types)
		}
	})

	before := len(storedBatches(t, in))
	var left int
	t.Run("root without libcurl: runs, writes locally, uploads off, batches spooled", func(t *testing.T) {
		res := runIn(t, bare, in.URL, "/data/spool", "3s")
		if n := strings.Count(res.stderr, "uploads are off"); n != 1 {
			t.Fatalf("%d log lines say that uploads are off, want 1:\n%s", n, res.stderr)
		}
		if !strings.Contains(res.stderr, "libcurl.so.4") {
			t.Fatalf("the log does not say that libcurl.so.4 is missing:\n%s", res.stderr)
		}
		checkLocalProfiles(t, bare)
		left = res.stat(t, "queued")
		if res.stat(t, "batches sent") != 0 || left < 1 {
			t.Fatalf("sent %d, queued %d: want nothing sent and the batches queued", res.stat(t, "batches sent"), left)
		}
		if !strings.Contains(res.stdout, "uploads are off") {
			t.Fatalf("the program's Stats did not say uploads are off:\n%s", res.stdout)
		}
		if n := countBatches(t, bare.Path("/data/spool")); n != left {
			t.Fatalf("the spool holds %d batch file(s) after Stop, want the %d queued", n, left)
		}
		if after := len(storedBatches(t, in)); after != before {
			t.Fatalf("the receiver got %d batch(es) from a process without libcurl", after-before)
		}
	})
	if left == 0 {
		t.Fatal("no batches were left to hand over")
	}

	t.Run("slim root: a host with libcurl sends what the one without left", func(t *testing.T) {
		if err := copyTree(bare.Path("/data/spool"), slim.Path("/data/spool-handed-over")); err != nil {
			t.Fatal(err)
		}
		res := runIn(t, slim, in.URL, "/data/spool-handed-over", "2s")
		if res.stat(t, "queued") != 0 {
			t.Fatalf("%d batch(es) still queued", res.stat(t, "queued"))
		}
		if n := countBatches(t, slim.Path("/data/spool-handed-over")); n != 0 {
			t.Fatalf("%d batch file(s) left in the spool", n)
		}
		off := 0
		for _, b := range storedBatches(t, in)[before:] {
			for _, e := range b.Events {
				if e.Kind == "uploads_off" && strings.Contains(e.Message, "libcurl.so.4") {
					off++
				}
			}
		}
		if off != 1 {
			t.Fatalf("the receiver got %d uploads_off event(s) naming libcurl.so.4, want 1", off)
		}
	})
}

// checkBuildPackages checks that the build stage's packages are installed
// here and are the ones that provide what the core's build reads.
func checkBuildPackages(t *testing.T, df *Dockerfile) {
	t.Helper()
	listed := map[string]bool{}
	for _, p := range df.BuildPackages {
		listed[p] = true
		if out, err := exec.Command("dpkg-query", "-W", "-f=${Status}", p).Output(); err != nil ||
			!strings.Contains(string(out), "ok installed") {
			t.Fatalf("the Dockerfile's build stage installs %s, which is not installed here (make deps)", p)
		}
	}
	for _, f := range buildFiles {
		out, err := exec.Command("dpkg", "-S", f).Output()
		if err != nil {
			t.Fatalf("dpkg -S %s: %v (the core's build reads it)", f, err)
		}
		pkg, _, _ := strings.Cut(string(out), ":")
		if !listed[pkg] {
			t.Fatalf("%s comes from %s, which the Dockerfile's build stage does not install (%v)", f, pkg, df.BuildPackages)
		}
	}
}

// build runs the build stage's go build in the repository, into a temp dir.
func build(t *testing.T, df *Dockerfile) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "app")
	args, err := df.WithOutput(bin)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("go", append([]string{"build"}, args...)...)
	cmd.Dir = repo
	cmd.Env = append(os.Environ(), df.BuildEnv...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s go build %s: %v\n%s", strings.Join(df.BuildEnv, " "), strings.Join(args, " "), err, out)
	}
	return bin
}

// checkLinkedLibraries checks that the binary needs only the C library.
func checkLinkedLibraries(t *testing.T, bin string) {
	t.Helper()
	libs, err := Ldd(bin)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("ldd: %v", libs)
	for _, l := range libs {
		base := filepath.Base(l)
		for _, bad := range []string{"libcurl", "libz.", "libprotobuf-c", "libssl", "libcrypto"} {
			if strings.HasPrefix(base, bad) {
				t.Errorf("the binary is linked with %s", l)
			}
		}
	}
}

// ---- the receiver ---------------------------------------------------------

// storedBatch is a line of the receiver's batches file (what the test reads).
type storedBatch struct {
	Profiles []struct {
		Type string `json:"type"`
	} `json:"profiles"`
	Events []struct {
		Kind    string `json:"kind"`
		Message string `json:"message"`
	} `json:"events"`
}

// storedBatches reads the batches the receiver accepted.
func storedBatches(t *testing.T, in *testreceiver.Receiver) []storedBatch {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(in.DataDir, receiver.BatchesFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	var out []storedBatch
	dec := json.NewDecoder(bytes.NewReader(data))
	for dec.More() {
		var b storedBatch
		if err := dec.Decode(&b); err != nil {
			t.Fatalf("%s: %v", receiver.BatchesFile, err)
		}
		out = append(out, b)
	}
	return out
}

// ---- running in a root ----------------------------------------------------

type result struct{ stdout, stderr string }

var statRE = regexp.MustCompile(`([a-z ]+)=(\d+)`)

// stat reads a counter the example prints ("batches sent=3 queued=0").
func (r result) stat(t *testing.T, name string) int {
	t.Helper()
	for _, m := range statRE.FindAllStringSubmatch(r.stdout, -1) {
		if strings.TrimSpace(m[1]) == name {
			n, _ := strconv.Atoi(m[2])
			return n
		}
	}
	t.Fatalf("the program printed no %q:\n%s", name, r.stdout)
	return 0
}

// runIn runs /app in the root with chroot for about `duration`, uploading
// to url, and fails the test unless it exits 0 after Stop.
func runIn(t *testing.T, r *Root, url, spool, duration string) result {
	t.Helper()
	// A bound for a hang only: the run itself takes `duration`.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "/app", "-duration", duration, "-rate", "1s", "-cpu", "500ms",
		"-profiles", "cpu,heap", "-out", "/data/out", "-spool-dir", spool,
		"-ingest-url", url, "-ca-file", "/ca.pem", "-api-key", apiKey)
	cmd.SysProcAttr = &syscall.SysProcAttr{Chroot: r.Dir}
	cmd.Dir = "/"
	cmd.Env = []string{"PATH=/"}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	res := result{stdout.String(), stderr.String()}
	t.Logf("stdout:\n%s\nstderr:\n%s", res.stdout, res.stderr)
	if err != nil {
		t.Fatalf("/app in %s: %v", r.Dir, err)
	}
	return res
}

// checkLocalProfiles checks that CPU and heap profiles were written, and
// that the CPU profiles hold the example's hot function.
func checkLocalProfiles(t *testing.T, r *Root) {
	t.Helper()
	for _, typ := range []string{"cpu", "heap"} {
		files, _ := filepath.Glob(r.Path("/data/out/basic/" + typ + "/*.pb.gz"))
		if len(files) == 0 {
			t.Fatalf("no %s profile was written in %s", typ, r.Path("/data/out/basic"))
		}
		if typ != "cpu" {
			continue
		}
		hot := 0
		for _, f := range files {
			hot += samplesIn(t, f, "main.burnCPU")
		}
		if hot == 0 {
			t.Fatalf("no CPU sample of %d profile(s) is in main.burnCPU", len(files))
		}
	}
}

// samplesIn counts the samples of a profile file with fn on their stack.
func samplesIn(t *testing.T, path, fn string) int {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	p, err := profile.Parse(f)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	n := 0
	for _, s := range p.Sample {
	stack:
		for _, loc := range s.Location {
			for _, l := range loc.Line {
				if l.Function != nil && l.Function.Name == fn {
					n++
					break stack
				}
			}
		}
	}
	return n
}

// countBatches counts the batch files under a spool folder.
func countBatches(t *testing.T, dir string) int {
	t.Helper()
	n := 0
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && strings.HasSuffix(p, ".batch") {
			n++
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// copyTree copies a folder of regular files.
func copyTree(src, dst string) error {
	return filepath.WalkDir(src, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		to := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(to, 0o700)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(to, b, 0o600)
	})
}
