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
