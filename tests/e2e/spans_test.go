package e2e

import (
	"context"
	"path/filepath"
	"runtime/pprof"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/pprof/profile"
	"github.com/pprofio/pprofio"
)

// burnInSpan, burnAfterSpan and burnUnlabelled spin for a fixed amount of
// work: the first inside a span, the second after it inside the program's
// own labels, the third on a goroutine with no labels at all.
//
//go:noinline
func burnInSpan() uint64 { return burn(1 << 20) }

//go:noinline
func burnAfterSpan() uint64 { return burn(1 << 20) }

//go:noinline
func burnUnlabelled() uint64 { return burn(1 << 20) }

func burn(n int) uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < n; i++ {
		h = (h ^ uint64(i)) * 1099511628211
	}
	return h
}

// labelledSamples is what the CPU files hold, by function: how many samples
// have it on their stack, and the label sets those samples carry.
type labelledSamples map[string]map[string]int

func (ls labelledSamples) add(fn, labels string) {
	if ls[fn] == nil {
		ls[fn] = map[string]int{}
	}
	ls[fn][labels]++
}

func labelKey(s *profile.Sample) string {
	var kv []string
	for k, vs := range s.Label {
		kv = append(kv, k+"="+strings.Join(vs, ","))
	}
	sortStrings(kv)
	return strings.Join(kv, " ")
}

func sortStrings(s []string) {
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && s[j] < s[j-1]; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
}

// TestSpanLabelsIsolateASpansCPU: in the CPU profiles the agent stores, the
// samples labelled span=burn (what `go tool pprof -tagfocus span=burn`
// keeps) show the function that burns inside the span and neither of the
// ones outside it; the program's own labels are on the samples inside the
// span and after it.
func TestSpanLabelsIsolateASpansCPU(t *testing.T) {
	out := filepath.Join(t.TempDir(), "out")
	const service = "e2e-spans"
	p := startProfiler(t, pprofio.Config{
		ServiceName: service,
		OutputDir:   out,
		SampleRate:  2 * time.Second,
		CPUDuration: time.Second,
		StartJitter: -1,
	})
	var stop atomic.Bool
	var sink atomic.Uint64
	done := make(chan struct{}, 2)
	go pprof.Do(context.Background(), pprof.Labels("tenant", "acme"), func(ctx context.Context) {
		defer func() { done <- struct{}{} }()
		for !stop.Load() {
			_, span := pprofio.StartSpan(ctx, "burn", "kind", "cpu")
			sink.Add(burnInSpan())
			span.End()
			sink.Add(burnAfterSpan())
		}
	})
	go func() {
		defer func() { done <- struct{}{} }()
		for !stop.Load() {
			sink.Add(burnUnlabelled())
		}
	}()
	// Enough samples of each function, however busy the machine is: the
	// loop runs until the stored windows hold them.
	const enough = 10
	var samples labelledSamples
	waitFor(t, "CPU files with samples of all three functions", func() bool {
		samples = cpuSamplesByLabels(t, out, service)
		for _, fn := range []string{"burnInSpan", "burnAfterSpan", "burnUnlabelled"} {
			n := 0
			for _, c := range samples[fn] {
				n += c
			}
			if n < enough {
				return false
			}
		}
		return true
	})
	stop.Store(true)
	<-done
	<-done
	if err := p.Stop(); err != nil {
		t.Fatal(err)
	}
	t.Logf("samples by function and labels: %v", samples)
	for labels, n := range samples["burnInSpan"] {
		if labels != "kind=cpu span=burn tenant=acme" {
			t.Errorf("%d samples of burnInSpan carry %q, want the span's labels with the program's", n, labels)
		}
	}
	for _, fn := range []string{"burnAfterSpan", "burnUnlabelled"} {
		for labels, n := range samples[fn] {
			if strings.Contains(labels, "span=") {
				t.Errorf("%d samples of %s, outside the span, carry %q", n, fn, labels)
			}
		}
	}
	for labels, n := range samples["burnAfterSpan"] {
		if labels != "tenant=acme" {
			t.Errorf("%d samples of burnAfterSpan carry %q, want the program's own labels only", n, labels)
		}
	}
	if st := p.Stats(); st.SpansRecorded == 0 {
		t.Errorf("Stats.SpansRecorded = 0 after the burn spans")
	}
}

// cpuSamplesByLabels reads every stored CPU file of the service.
func cpuSamplesByLabels(t *testing.T, out, service string) labelledSamples {
	t.Helper()
	ls := labelledSamples{}
	for _, f := range listRunning(t, out, service, pprofio.ProfileCPU) {
		prof := parseFile(t, f.Path)
		for _, s := range prof.Sample {
			seen := map[string]bool{}
			for _, loc := range s.Location {
				for _, line := range loc.Line {
					name := line.Function.Name
					name = name[strings.LastIndex(name, ".")+1:]
					if !seen[name] {
						seen[name] = true
						ls.add(name, labelKey(s))
					}
				}
			}
		}
	}
	return ls
}
