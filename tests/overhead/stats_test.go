package main

import (
	"encoding/xml"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/pprofio/pprofio"
	"github.com/pprofio/pprofio/internal/collector"
)

func TestMedianCI(t *testing.T) {
	cases := []struct {
		n         int
		k         int     // expected order statistic (1-based) of the lower bound
		minCover  float64 // at least this coverage
		belowWant bool    // n too small for 95%
	}{
		{n: 3, k: 1, minCover: 0.75, belowWant: true},
		{n: 5, k: 1, minCover: 0.9375, belowWant: true},
		{n: 6, k: 1, minCover: 0.95},
		{n: 8, k: 1, minCover: 0.95},
		{n: 9, k: 2, minCover: 0.95},
		{n: 20, k: 6, minCover: 0.95},
	}
	for _, c := range cases {
		xs := make([]float64, c.n)
		for i := range xs {
			xs[i] = float64(c.n - i) // reversed: medianCI must sort
		}
		e := medianCI(xs, 0.95)
		if e.Lo != float64(c.k) || e.Hi != float64(c.n+1-c.k) {
			t.Errorf("n=%d: interval [%v, %v], want [%d, %d]", c.n, e.Lo, e.Hi, c.k, c.n+1-c.k)
		}
		if e.Cover < c.minCover-1e-12 || (e.Cover < 0.95) != c.belowWant {
			t.Errorf("n=%d: coverage %v", c.n, e.Cover)
		}
		if want := float64(c.n+1) / 2; e.Med != want {
			t.Errorf("n=%d: median %v, want %v", c.n, e.Med, want)
		}
	}
	if e := medianCI(nil, 0.95); !math.IsNaN(e.Med) {
		t.Errorf("empty: %+v", e)
	}
}

// TestReport renders a report from synthetic runs: every variant at both
// cadences, the Markdown names each, and the SVG is well-formed XML.
func TestReport(t *testing.T) {
	var runs []*run
	for r := range 6 {
		base := &run{Round: r, Variant: varBaseline, Cadence: "-", CPUUser: 20 + float64(r)/10, CPUSys: 1, MaxRSS: 100 << 20}
		base.Worker.WorkWall, base.Worker.HeapRunning, base.Worker.HeapStopped = 11, 36<<20, 36<<20
		runs = append(runs, base)
		for _, c := range []string{cadCompressed, cadDefault} {
			for i, v := range allVariants[1:] {
				rn := *base
				rn.Variant, rn.Cadence = v, c
				rn.CPUUser *= 1 + 0.002*float64(i+1) + 0.001*float64(r%3)
				rn.Worker.WorkWall *= 1.001
				rn.MaxRSS += 5 << 20
				rn.Worker.HeapRunning += 100 << 10
				switch v {
				case varPyroscope:
					rn.SinkRequests, rn.SinkCPUUploads, rn.SinkBytes, rn.SinkCPUBytes = 4, 2, 60000, 40000
				case varRuntimeCPU:
					rn.Worker.Windows = 2
				default:
					rn.Worker.Pprofio = &pprofio.Stats{BatchesSent: 2, BytesSent: 40000,
						CPUScheduler: time.Millisecond, CPUOutput: 10 * time.Millisecond, CPUUpload: 5 * time.Millisecond}
					// 2 batches: 1 ms of heap a cycle, (2 + r) ms of mutex.
					rn.Worker.Collector = map[string]collector.Cost{
						"heap":  {Commands: 2, CPU: 2 * time.Millisecond},
						"mutex": {Commands: 4, CPU: time.Duration(4+2*r) * time.Millisecond},
					}
				}
				runs = append(runs, &rn)
			}
		}
	}
	rep := analyse(runs, allVariants, []string{cadCompressed, cadDefault})
	rep.Rounds, rep.Work, rep.Conc = 6, 1000, 8
	md := rep.markdown()
	for _, want := range []string{"| pprofio |", "| pprofio-all |", "| pyroscope |", "| runtime-cpu |", "Product defaults", "Time-compressed",
		// The cost table: per cycle, a share of one core over 6 s, over 60 s, the budget.
		"| heap: collector goroutine | 1.0 ms | 0.017% | 0.002% | < 0.3% |",
		"| mutex: collector goroutine | 4.5 ms | 0.075% | 0.008% | < 0.2% |",
		"| **agent's own threads, total** | 13.5 ms |",
		"| cpu: the runtime's CPU profiler alone"} {
		if !strings.Contains(md, want) {
			t.Errorf("markdown lacks %q:\n%s", want, md)
		}
	}
	if strings.Contains(md, "NaN") {
		t.Errorf("markdown has NaN:\n%s", md)
	}
	svg := rep.svg()
	dec := xml.NewDecoder(strings.NewReader(svg))
	for {
		_, err := dec.Token()
		if err != nil {
			if err.Error() != "EOF" {
				t.Fatalf("svg: %v\n%s", err, svg)
			}
			break
		}
	}
}

// TestPairedBlocksAreBalanced checks that each place in a unit of four
// blocks holds as many blocks with spans as without, and that every pair
// has one of each.
func TestPairedBlocksAreBalanced(t *testing.T) {
	var on [4]int
	for i := range 16 {
		if pairedOn(i) {
			on[i%4]++
		}
		if i%2 == 1 && pairedOn(i) == pairedOn(i-1) {
			t.Errorf("blocks %d and %d: both %v", i-1, i, pairedOn(i))
		}
	}
	if on != [4]int{2, 2, 2, 2} {
		t.Errorf("blocks with spans by place in a unit: %v, want 2 each of 4", on)
	}
}

// TestPairedAnalysisFindsAKnownDifference analyses synthetic blocks whose
// spans cost 1% of block CPU, on a drifting load with noise, and renders
// the section.
func TestPairedAnalysisFindsAKnownDifference(t *testing.T) {
	p := &pairedResult{GCCPU: 1, GCs: 10, Allocs: 1e10, InRequest: true,
		Loop: spanLoop{N: 1000, ThreadCPU: 300, AllocBytes: 64, AllocObject: 1},
		Req:  spanLoop{N: 1000, ThreadCPU: 500, AllocBytes: 400, AllocObject: 2}}
	for i := range 400 {
		cpu := 100e6 * (1 + 0.2*math.Sin(float64(i)/50)) * (1 + 0.005*math.Sin(float64(i)*7.3))
		if pairedOn(i) {
			cpu *= 1.01
		}
		p.Blocks = append(p.Blocks, pairedBlock{Spans: pairedOn(i), Requests: 200, CPU: int64(cpu), Allocs: 13e6})
	}
	f := analysePaired(p)
	if f.Pairs != 200 || f.PairDiff.Lo > 0.01 || f.PairDiff.Hi < 0.01 || math.Abs(f.PairDiff.Med-0.01) > 0.003 {
		t.Errorf("pairs %d, median %.4f [%.4f, %.4f]: want 200 pairs around 0.01", f.Pairs, f.PairDiff.Med, f.PairDiff.Lo, f.PairDiff.Hi)
	}
	if f.TotalLo > 0.01 || f.TotalHi < 0.01 {
		t.Errorf("bootstrap interval [%.4f, %.4f] misses 0.01", f.TotalLo, f.TotalHi)
	}
	// 0.1 ns of GC per byte: 400 B a span is 40 ns; 65 KB a request 6.5 µs.
	if math.Abs(f.GCSpan-40) > 1e-9 || math.Abs(f.GCReq-6500) > 1e-6 {
		t.Errorf("GC per span %.1f ns, per request %.1f ns: want 40 and 6500", f.GCSpan, f.GCReq)
	}
	md := pairedMarkdown(p, 200)
	for _, want := range []string{"200 pairs of blocks of 200 requests", "puts the cost above 0.1%"} {
		if !strings.Contains(md, want) {
			t.Errorf("section lacks %q:\n%s", want, md)
		}
	}
	if strings.Contains(md, "NaN") {
		t.Errorf("section has NaN:\n%s", md)
	}
	// With the context handed down, the handler adds the span alone: the
	// first loop's CPU and bytes (64 B here).
	p.InRequest = false
	if f := analysePaired(p); math.Abs(f.GCSpan-6.4) > 1e-9 {
		t.Errorf("GC per span %.2f ns with the context handed down, want 6.4 (64 B)", f.GCSpan)
	}
}
