package e2e

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/pprof/profile"
	"github.com/pprofio/pprofio"
)

// ---- the workload -------------------------------------------------------

var spinSink atomic.Uint64

// hotSpin hashes (FNV-1a) in a loop until stop is set: the CPU-hot function
// whose samples the agent's CPU profiles must show.
//
//go:noinline
func hotSpin(stop *atomic.Bool) {
	h := uint64(14695981039346656037)
	for !stop.Load() {
		for i := 0; i < 1<<16; i++ {
			h ^= uint64(i)
			h *= 1099511628211
		}
	}
	spinSink.Add(h)
}

// ownHot is the hot function of the program's own CPU profile (a different
// function from hotSpin, so the two profiles can be told apart).
//
//go:noinline
func ownHot(stop *atomic.Bool) {
	h := uint64(2166136261)
	for !stop.Load() {
		for i := 0; i < 1<<16; i++ {
			h = (h ^ uint64(i)) * 16777619
			h ^= h >> 7
		}
	}
	spinSink.Add(h)
}

// spin runs fn in a goroutine until the returned stop function is called
// (or the test ends).
func spin(t *testing.T, fn func(*atomic.Bool)) (stop func()) {
	t.Helper()
	var flag atomic.Bool
	done := make(chan struct{})
	go func() {
		defer close(done)
		fn(&flag)
	}()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			flag.Store(true)
			<-done
		})
	}
	t.Cleanup(stop)
	return stop
}

const allocChunk = 64 << 10

var (
	allocMu   sync.Mutex
	allocLive [256][]byte // keeps up to 16 MiB of allocHeavy's chunks alive
	allocNext int
)

// allocHeavy allocates n chunks of 64 KiB and keeps the last 256 alive: the
// allocating function the heap profiles must show, in alloc_space and in
// inuse_space.
//
//go:noinline
func allocHeavy(n int) {
	allocMu.Lock()
	defer allocMu.Unlock()
	for i := 0; i < n; i++ {
		b := make([]byte, allocChunk)
		b[0] = byte(i)
		allocLive[allocNext%len(allocLive)] = b
		allocNext++
	}
}

// ---- logs ---------------------------------------------------------------

type logRecord struct {
	Level slog.Level
	Msg   string
	Attrs map[string]string
}

// logCapture is a slog.Handler that keeps every record.
type logCapture struct {
	mu      sync.Mutex
	records []logRecord
}

func (c *logCapture) Enabled(context.Context, slog.Level) bool { return true }

func (c *logCapture) Handle(_ context.Context, r slog.Record) error {
	rec := logRecord{Level: r.Level, Msg: r.Message, Attrs: map[string]string{}}
	r.Attrs(func(a slog.Attr) bool {
		rec.Attrs[a.Key] = a.Value.String()
		return true
	})
	c.mu.Lock()
	c.records = append(c.records, rec)
	c.mu.Unlock()
	return nil
}

func (c *logCapture) WithAttrs([]slog.Attr) slog.Handler { return c }
func (c *logCapture) WithGroup(string) slog.Handler      { return c }

func (c *logCapture) all() []logRecord {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]logRecord(nil), c.records...)
}

// find returns the records at level whose message contains every one of
// words (case-insensitive).
func (c *logCapture) find(level slog.Level, words ...string) []logRecord {
	var out []logRecord
	for _, r := range c.all() {
		if r.Level != level {
			continue
		}
		msg := strings.ToLower(r.Msg)
		ok := true
		for _, w := range words {
			if !strings.Contains(msg, strings.ToLower(w)) {
				ok = false
				break
			}
		}
		if ok {
			out = append(out, r)
		}
	}
	return out
}

func (c *logCapture) dump(t *testing.T) {
	t.Helper()
	for _, r := range c.all() {
		t.Logf("log: %v %s %v", r.Level, r.Msg, r.Attrs)
	}
}

// ---- the profiler -------------------------------------------------------

// startProfiler makes a Profiler from cfg, starts it, and stops it when the
// test ends (Stop is idempotent, so tests may stop it themselves).
func startProfiler(t *testing.T, cfg pprofio.Config) *pprofio.Profiler {
	t.Helper()
	p, err := pprofio.New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { p.Stop() })
	if err := p.Start(context.Background()); err != nil {
		t.Fatalf("Start: %v", err)
	}
	return p
}

// A test's verdict must not depend on how fast the machine is: the tests
// wait for events (a count reached, a file written, Stop returned), and
// these guards only turn a hang into a failure with a message. They are far
// above what any wait takes on a busy machine (make check runs with
// go test -timeout 30m).
const (
	waitGuard = 4 * time.Minute
	stopGuard = 4 * time.Minute
)

// waitFor polls cond until it holds; past waitGuard (a hang) the test fails.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	waitForTB(t, what, cond)
}

// stopWithin runs p.Stop and fails the test if it does not return within
// stopGuard (a hang guard, not a speed assertion).
func stopWithin(t *testing.T, p *pprofio.Profiler) error {
	t.Helper()
	ch := make(chan error, 1)
	go func() { ch <- p.Stop() }()
	select {
	case err := <-ch:
		return err
	case <-time.After(stopGuard):
		t.Fatalf("Stop did not return within %v", stopGuard)
		return nil
	}
}

func dropped(s pprofio.Stats) uint64 {
	return s.ProfilesDroppedMemory + s.ProfilesDroppedInvalid + s.ProfilesDroppedWrite + s.ProfilesDroppedNoSink
}

// ---- files --------------------------------------------------------------

// fileNameRE is <start>_<end>.pb.gz, both in UTC with milliseconds.
var fileNameRE = regexp.MustCompile(`^(\d{8}T\d{6}\.\d{3}Z)_(\d{8}T\d{6}\.\d{3}Z)\.pb\.gz$`)

const nameTimeLayout = "20060102T150405.000Z"

type profileFile struct {
	Path       string
	Name       string
	Start, End time.Time
	Mode       os.FileMode
	Size       int64
}

// listProfiles returns the profile files of one type, sorted by name (and
// so by time). Every entry of the folder must be a profile file named
// <start>_<end>.pb.gz: a temp file or anything else left over fails the
// test. A folder that does not exist yet holds no files. Use it once the
// Profiler has stopped; while it runs, use listRunning.
func listProfiles(t *testing.T, outDir, service string, typ pprofio.ProfileType) []profileFile {
	t.Helper()
	return list(t, outDir, service, typ, true)
}

// listRunning is listProfiles for a running Profiler: the temp file of a
// profile being written (".tmp-*") may be there, and is passed over.
func listRunning(t *testing.T, outDir, service string, typ pprofio.ProfileType) []profileFile {
	t.Helper()
	return list(t, outDir, service, typ, false)
}

func list(t *testing.T, outDir, service string, typ pprofio.ProfileType, stopped bool) []profileFile {
	t.Helper()
	dir := filepath.Join(outDir, service, string(typ))
	entries, err := os.ReadDir(dir)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatalf("read %s: %v", dir, err)
	}
	var out []profileFile
	for _, e := range entries {
		m := fileNameRE.FindStringSubmatch(e.Name())
		if m == nil && !stopped && strings.HasPrefix(e.Name(), ".tmp-") {
			continue // being written
		}
		if m == nil {
			t.Fatalf("%s: unexpected entry %q (want <start>_<end>.pb.gz)", dir, e.Name())
		}
		start, err1 := time.Parse(nameTimeLayout, m[1])
		end, err2 := time.Parse(nameTimeLayout, m[2])
		if err1 != nil || err2 != nil {
			t.Fatalf("%s: bad times in %q: %v %v", dir, e.Name(), err1, err2)
		}
		fi, err := e.Info()
		if err != nil && !stopped && os.IsNotExist(err) {
			continue
		}
		if err != nil {
			t.Fatalf("stat %s: %v", e.Name(), err)
		}
		out = append(out, profileFile{Path: filepath.Join(dir, e.Name()), Name: e.Name(),
			Start: start, End: end, Mode: fi.Mode(), Size: fi.Size()})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// countRunning counts the profile files of a running Profiler.
func countRunning(t *testing.T, outDir, service string, typ pprofio.ProfileType) int {
	t.Helper()
	return len(listRunning(t, outDir, service, typ))
}

// checkFile checks what every profile file promises: a regular file readable
// by the owner only, whose window starts no later than it ends, inside
// [notBefore, notAfter] (the test's own bounds, a millisecond of slack for
// the names' precision).
func checkFile(t *testing.T, f profileFile, notBefore, notAfter time.Time) {
	t.Helper()
	if !f.Mode.IsRegular() {
		t.Errorf("%s: not a regular file: %v", f.Name, f.Mode)
	}
	if perm := f.Mode.Perm(); perm != 0o600 {
		t.Errorf("%s: mode %#o, want 0600", f.Name, perm)
	}
	if f.End.Before(f.Start) {
		t.Errorf("%s: ends before it starts", f.Name)
	}
	if f.Start.Before(notBefore.Truncate(time.Millisecond)) || f.End.After(notAfter.Add(time.Millisecond)) {
		t.Errorf("%s: window [%v, %v] is outside the test's run [%v, %v]", f.Name, f.Start, f.End,
			notBefore.UTC(), notAfter.UTC())
	}
	if f.Start.Location() != time.UTC {
		t.Errorf("%s: start not in UTC", f.Name)
	}
}

// checkDirMode fails the test unless dir is a folder with mode 0700.
func checkDirMode(t *testing.T, dir string) {
	t.Helper()
	fi, err := os.Stat(dir)
	if err != nil {
		t.Errorf("stat %s: %v", dir, err)
		return
	}
	if !fi.IsDir() {
		t.Errorf("%s: not a folder", dir)
		return
	}
	if perm := fi.Mode().Perm(); perm != 0o700 {
		t.Errorf("%s: mode %#o, want 0700", dir, perm)
	}
}

// ---- profiles -----------------------------------------------------------

func parseFile(t *testing.T, path string) *profile.Profile {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatalf("open %s: %v", path, err)
	}
	defer f.Close()
	p, err := profile.Parse(f)
	if err != nil {
		t.Fatalf("parse %s: %v", filepath.Base(path), err)
	}
	if err := p.CheckValid(); err != nil {
		t.Fatalf("%s: invalid profile: %v", filepath.Base(path), err)
	}
	return p
}

// sampleIndex returns the index of the sample type named typ.
func sampleIndex(t *testing.T, p *profile.Profile, typ string) int {
	t.Helper()
	for i, st := range p.SampleType {
		if st.Type == typ {
			return i
		}
	}
	var have []string
	for _, st := range p.SampleType {
		have = append(have, st.Type+"/"+st.Unit)
	}
	t.Fatalf("profile has no %q sample type (has %v)", typ, have)
	return -1
}

type funcValue struct {
	Name      string
	Flat, Cum int64
}

// byFunction sums the value at index idx by function: flat for the leaf
// function of each sample, cum once for every function on its stack.
func byFunction(p *profile.Profile, idx int) (map[string]*funcValue, int64) {
	m := map[string]*funcValue{}
	get := func(name string) *funcValue {
		v := m[name]
		if v == nil {
			v = &funcValue{Name: name}
			m[name] = v
		}
		return v
	}
	var total int64
	for _, s := range p.Sample {
		v := s.Value[idx]
		total += v
		seen := map[string]bool{}
		leaf := true
		for _, loc := range s.Location {
			// Line[0] is the innermost (possibly inlined) function.
			for _, ln := range loc.Line {
				if ln.Function == nil {
					continue
				}
				name := ln.Function.Name
				if leaf {
					get(name).Flat += v
					leaf = false
				}
				if !seen[name] {
					seen[name] = true
					get(name).Cum += v
				}
			}
		}
	}
	return m, total
}

// findFunc returns the entry of the function whose name ends in "."+short.
func findFunc(m map[string]*funcValue, short string) *funcValue {
	for name, v := range m {
		if strings.HasSuffix(name, "."+short) {
			return v
		}
	}
	return nil
}

// rank returns the 1-based rank of the function ending in "."+short when
// functions are sorted by key (descending), or 0 if it is absent.
func rank(m map[string]*funcValue, short string, key func(*funcValue) int64) int {
	vals := make([]*funcValue, 0, len(m))
	for _, v := range m {
		vals = append(vals, v)
	}
	sort.Slice(vals, func(i, j int) bool {
		if key(vals[i]) != key(vals[j]) {
			return key(vals[i]) > key(vals[j])
		}
		return vals[i].Name < vals[j].Name
	})
	for i, v := range vals {
		if strings.HasSuffix(v.Name, "."+short) && key(v) > 0 {
			return i + 1
		}
	}
	return 0
}

func flat(v *funcValue) int64 { return v.Flat }
func cum(v *funcValue) int64  { return v.Cum }

// top describes the n first functions by key, for failure messages.
func top(m map[string]*funcValue, n int, key func(*funcValue) int64) string {
	vals := make([]*funcValue, 0, len(m))
	for _, v := range m {
		vals = append(vals, v)
	}
	sort.Slice(vals, func(i, j int) bool { return key(vals[i]) > key(vals[j]) })
	var b strings.Builder
	for i, v := range vals {
		if i == n {
			break
		}
		fmt.Fprintf(&b, "\n  %d %s", key(v), v.Name)
	}
	return b.String()
}

// cpuSamples returns the CPU profile's samples by function and its total.
func cpuSamples(t *testing.T, p *profile.Profile) (map[string]*funcValue, int64) {
	t.Helper()
	return byFunction(p, sampleIndex(t, p, "samples"))
}
