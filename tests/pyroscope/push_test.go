// Package pyroscope checks the core's Grafana Pyroscope encoder
// (csrc/pyroscope.c) against Pyroscope's own published Go types: the bytes
// it makes from real runtime/pprof profiles decode as a
// push.v1.PushRequest, with the labels Pyroscope reads and samples that
// github.com/google/pprof parses.
package pyroscope

import (
	"bytes"
	"compress/gzip"
	"io"
	"runtime"
	"runtime/pprof"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/pprof/profile"
	pushv1 "github.com/grafana/pyroscope/api/gen/proto/go/push/v1"
	"google.golang.org/protobuf/proto"

	"github.com/pprofio/pprofio/internal/core"
)

// gunzip inflates what runtime/pprof wrote; the core holds profiles raw.
func gunzip(t *testing.T, b []byte) []byte {
	t.Helper()
	r, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	raw, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func lookup(t *testing.T, name string) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := pprof.Lookup(name).WriteTo(&buf, 0); err != nil {
		t.Fatal(err)
	}
	return gunzip(t, buf.Bytes())
}

// cpuProfile profiles a bounded amount of work (not a length of time).
func cpuProfile(t *testing.T) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := pprof.StartCPUProfile(&buf); err != nil {
		t.Skipf("the CPU profiler is in use: %v", err)
	}
	x := uint64(1)
	for i := 0; i < 50_000_000; i++ {
		x = x*6364136223846793005 + 1442695040888963407
	}
	pprof.StopCPUProfile()
	if x == 0 {
		t.Log(x)
	}
	return gunzip(t, buf.Bytes())
}

// contend makes some mutex contention and blocking for the profiles to hold.
func contend() {
	var mu sync.Mutex
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 2000; i++ {
				mu.Lock()
				runtime.Gosched()
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
}

// customProfile is a made-up profile of the custom type (span timings).
func customProfile(t *testing.T) []byte {
	t.Helper()
	fn := &profile.Function{ID: 1, Name: "checkout.handle"}
	loc := &profile.Location{ID: 1, Line: []profile.Line{{Function: fn, Line: 42}}}
	p := &profile.Profile{
		SampleType: []*profile.ValueType{{Type: "spans", Unit: "count"}, {Type: "duration", Unit: "nanoseconds"}},
		Sample:     []*profile.Sample{{Location: []*profile.Location{loc}, Value: []int64{3, 4500}}},
		Location:   []*profile.Location{loc},
		Function:   []*profile.Function{fn},
	}
	var buf bytes.Buffer
	if err := p.WriteUncompressed(&buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// realProfiles collects one profile of every type from this process.
func realProfiles(t *testing.T) []core.PyroscopeProfile {
	t.Helper()
	prevMutex := runtime.SetMutexProfileFraction(1)
	runtime.SetBlockProfileRate(1)
	contend()
	runtime.SetMutexProfileFraction(prevMutex)
	runtime.SetBlockProfileRate(0)
	start := time.Unix(1795988477, 123456789)
	win := func(typ core.Type, d time.Duration, raw []byte) core.PyroscopeProfile {
		start = start.Add(time.Minute)
		return core.PyroscopeProfile{Type: typ, Start: start, End: start.Add(d), Pprof: raw}
	}
	return []core.PyroscopeProfile{
		win(core.CPU, 10*time.Second, cpuProfile(t)),
		win(core.Heap, time.Minute, lookup(t, "heap")),
		win(core.Goroutine, 0, lookup(t, "goroutine")),
		win(core.Mutex, 10*time.Second, lookup(t, "mutex")),
		win(core.Block, 10*time.Second, lookup(t, "block")),
		win(core.Custom, time.Minute, customProfile(t)),
	}
}

var wantName = map[core.Type]string{
	core.CPU: "process_cpu", core.Heap: "memory", core.Goroutine: "goroutines",
	core.Mutex: "mutex", core.Block: "block", core.Custom: "custom",
}

// Every profile type becomes one series that Pyroscope's own types decode:
// __name__ for its type, service_name, every tag, __delta__="false", and
// one sample that google/pprof parses, equal to what was given except that
// its time is the profile's window.
func TestPushDecodesWithPyroscopeTypes(t *testing.T) {
	tags := map[string]string{"env": "prod", "k8s.namespace": "shop", "version": "v1.2.3 (build 7) ✓"}
	in := realProfiles(t)
	body, err := core.PyroscopeEncode("checkout", tags, in)
	if err != nil {
		t.Fatalf("encode: %v", err)
	}
	var req pushv1.PushRequest
	if err := proto.Unmarshal(body, &req); err != nil {
		t.Fatalf("Pyroscope's PushRequest does not decode the body: %v", err)
	}
	if len(req.Series) != len(in) {
		t.Fatalf("%d series for %d profiles", len(req.Series), len(in))
	}
	for i, s := range req.Series {
		p := in[i]
		labels := map[string]string{}
		var names []string
		for _, l := range s.Labels {
			if _, dup := labels[l.Name]; dup {
				t.Errorf("series %d: label %q twice", i, l.Name)
			}
			labels[l.Name] = l.Value
			names = append(names, l.Name)
		}
		want := map[string]string{"__name__": wantName[p.Type], "service_name": "checkout", "__delta__": "false"}
		for k, v := range tags {
			want[k] = v
		}
		if len(labels) != len(want) {
			sort.Strings(names)
			t.Errorf("series %d: labels %v, want %d", i, names, len(want))
		}
		for k, v := range want {
			if labels[k] != v {
				t.Errorf("series %d (%s): label %s = %q, want %q", i, wantName[p.Type], k, labels[k], v)
			}
		}
		if len(s.Samples) != 1 {
			t.Fatalf("series %d: %d samples, want 1", i, len(s.Samples))
		}
		checkSample(t, wantName[p.Type], p, s.Samples[0].RawProfile)
	}
}

// checkSample: the sample is the profile given, with the window's time.
func checkSample(t *testing.T, name string, p core.PyroscopeProfile, raw []byte) {
	t.Helper()
	got, err := profile.ParseData(raw)
	if err != nil {
		t.Errorf("%s: google/pprof cannot parse the sample: %v", name, err)
		return
	}
	orig, err := profile.ParseData(p.Pprof)
	if err != nil {
		t.Fatalf("%s: the input does not parse: %v", name, err)
	}
	if got.TimeNanos != p.Start.UnixNano() || got.DurationNanos != p.End.Sub(p.Start).Nanoseconds() {
		t.Errorf("%s: time %d duration %d, want the window's %d and %d", name, got.TimeNanos, got.DurationNanos,
			p.Start.UnixNano(), p.End.Sub(p.Start).Nanoseconds())
	}
	if len(got.Sample) != len(orig.Sample) || len(got.Location) != len(orig.Location) ||
		len(got.SampleType) != len(orig.SampleType) || got.String() != withTime(orig, got).String() {
		t.Errorf("%s: the sample's profile differs from the one given", name)
	}
}

// withTime is orig with got's time, for comparing everything else.
func withTime(orig, got *profile.Profile) *profile.Profile {
	c := orig.Copy()
	c.TimeNanos, c.DurationNanos = got.TimeNanos, got.DurationNanos
	return c
}

// No tags and no profiles are valid too: an empty request.
func TestPushEmptyAndUntagged(t *testing.T) {
	body, err := core.PyroscopeEncode("svc", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	var req pushv1.PushRequest
	if err := proto.Unmarshal(body, &req); err != nil || len(req.Series) != 0 {
		t.Fatalf("empty request: %d series, %v", len(req.Series), err)
	}
	body, err = core.PyroscopeEncode("svc", nil, []core.PyroscopeProfile{{Type: core.Heap,
		Start: time.Unix(100, 0), End: time.Unix(160, 0), Pprof: customProfile(t)}})
	if err != nil {
		t.Fatal(err)
	}
	if err := proto.Unmarshal(body, &req); err != nil || len(req.Series) != 1 || len(req.Series[0].Labels) != 3 {
		t.Fatalf("untagged request: %v, %v", &req, err)
	}
}

// What Pyroscope would refuse is refused before anything is made.
func TestPushRefusesWhatPyroscopeRefuses(t *testing.T) {
	ok := core.PyroscopeProfile{Type: core.CPU, Start: time.Unix(100, 0), End: time.Unix(110, 0), Pprof: []byte{}}
	bad := []struct {
		name     string
		service  string
		tags     map[string]string
		profiles []core.PyroscopeProfile
		words    string
	}{
		{"no service", "", nil, []core.PyroscopeProfile{ok}, "service"},
		{"dash in a tag", "svc", map[string]string{"k8s-ns": "x"}, nil, "label name"},
		{"reserved tag", "svc", map[string]string{"__name__": "x"}, nil, "label name"},
		{"service_name tag", "svc", map[string]string{"service_name": "x"}, nil, "label name"},
		{"unknown type", "svc", nil, []core.PyroscopeProfile{{Type: 9}}, "unknown type"},
		{"window backwards", "svc", nil, []core.PyroscopeProfile{{Type: core.CPU, Start: time.Unix(110, 0),
			End: time.Unix(100, 0)}}, "window"},
	}
	for _, c := range bad {
		t.Run(c.name, func(t *testing.T) {
			_, err := core.PyroscopeEncode(c.service, c.tags, c.profiles)
			if err == nil || !strings.Contains(err.Error(), c.words) {
				t.Fatalf("got %v, want an error about %s", err, c.words)
			}
		})
	}
}
