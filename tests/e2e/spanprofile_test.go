package e2e

import (
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/google/pprof/profile"
	"github.com/pprofio/pprofio/internal/core"
	"github.com/pprofio/pprofio/internal/spans"
)

// startCheckout and startRender stand for the places where spans start:
// each returns its own stack as a head-sampled span would carry it.
//
//go:noinline
func startCheckout() []uintptr { return callers() }

//go:noinline
func startRender() []uintptr { return callers() }

func callers() []uintptr {
	pcs := make([]uintptr, spans.MaxPCs)
	return pcs[:runtime.Callers(2, pcs)]
}

// TestTheCustomProfileIsAFlameGraphOfSpanTimeByStartStack: the encoded
// custom profile parses as a valid pprof profile whose samples are the
// start stacks, symbolized, labelled with the span and its tags, valued by
// count and wall time.
func TestTheCustomProfileIsAFlameGraphOfSpanTimeByStartStack(t *testing.T) {
	sink, err := spans.New(core.SpanConfig{})
	if err != nil {
		t.Fatal(err)
	}
	defer sink.Free()
	checkout, render := startCheckout(), startRender()
	for i := 0; i < 3; i++ {
		sink.Record("checkout", []string{"tier", "gold"}, int64(i), int64(5*time.Millisecond), uint64(i)+1, 0, checkout)
	}
	sink.Record("render", nil, 9, int64(time.Millisecond), 99, 0, render)
	sink.Record("unsampled", nil, 9, int64(time.Millisecond), 100, 0, nil)
	c, err := sink.Take()
	if err != nil {
		t.Fatal(err)
	}
	start := time.Unix(1795988477, 0)
	raw := spans.EncodeProfile(c, start, start.Add(time.Minute))
	prof, err := profile.ParseData(raw)
	if err != nil {
		t.Fatal(err)
	}
	if err := prof.CheckValid(); err != nil {
		t.Fatal(err)
	}
	if len(prof.SampleType) != 2 || prof.SampleType[0].Type != "spans" || prof.SampleType[1].Unit != "nanoseconds" {
		t.Fatalf("sample types %v, want spans/count and wall/nanoseconds", prof.SampleType)
	}
	if prof.TimeNanos != start.UnixNano() || prof.DurationNanos != int64(time.Minute) {
		t.Fatalf("window %d + %d", prof.TimeNanos, prof.DurationNanos)
	}
	if len(prof.Sample) != 2 {
		t.Fatalf("%d samples, want 2 (one per span start stack)", len(prof.Sample))
	}
	for _, s := range prof.Sample {
		var funcs []string
		for _, loc := range s.Location {
			for _, l := range loc.Line {
				funcs = append(funcs, l.Function.Name)
			}
		}
		stack := strings.Join(funcs, " < ")
		switch s.Label["span"][0] {
		case "checkout":
			if !strings.HasSuffix(funcs[0], "startCheckout") || s.Value[0] != 3 || s.Value[1] != int64(15*time.Millisecond) ||
				s.Label["tier"][0] != "gold" {
				t.Errorf("checkout sample: stack %s, values %v, labels %v", stack, s.Value, s.Label)
			}
		case "render":
			if !strings.HasSuffix(funcs[0], "startRender") || s.Value[0] != 1 || len(s.Label) != 1 {
				t.Errorf("render sample: stack %s, values %v, labels %v", stack, s.Value, s.Label)
			}
		default:
			t.Errorf("a sample of span %v", s.Label["span"])
		}
		if !strings.Contains(stack, "TestTheCustomProfileIsAFlameGraphOfSpanTimeByStartStack") {
			t.Errorf("the stack %s does not reach the test", stack)
		}
	}
}
