package main

import (
	"github.com/pprofio/pprofio/tests/internal/benchmeta"

	"encoding/xml"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// c makes a cost of ms milliseconds of thread CPU and kb KB allocated.
func c(ms float64, kb uint64) cost {
	d := time.Duration(ms * 1e6)
	return cost{ThreadCPU: d, ProcCPU: d + time.Millisecond, AllocB: kb * 1024, AllocN: kb, OutB: 2048}
}

func sampleResults() *results {
	return &results{
		Meta: meta{Cycles: 3, Warmup: 1, Platform: "linux/amd64", Godeltaprof: godeltaprofModule + " v0",
			Machine: benchmeta.Machine{NProc: 2, CPU: "Test <CPU> & co", GoVersion: "go1.x", Date: "d",
				LoadBefore: "1.00 2.00 3.00", LoadAfter: "4.00 5.00 6.00"}},
		Counts: [3]int{60005, 5917, 6007},
		Paths:  []string{"godeltaprof", "pprofio (runtime/pprof + C delta)", "pprofio (runtime records + C delta)"},
		Costs: [][3][]cost{
			{{c(100, 8000), c(200, 8000), c(160, 8000)}, {c(8, 600), c(8, 600), c(8, 600)}, {c(7, 600), c(7, 600), c(7, 600)}},
			{{c(130, 23000), c(130, 23000), c(130, 23000)}, {c(60, 9000), c(60, 9000), c(60, 9000)}, {c(60, 9000), c(60, 9000), c(60, 9000)}},
			{{c(40, 3), c(40, 3), c(32, 3)}, {c(3, 0), c(3, 0), c(3, 0)}, {c(3, 0), c(3, 1), c(3, 0)}},
		},
	}
}

// Medians and ranges are over cycles, and a ratio is the median of the cycles' ratios, not a ratio of medians.
func TestFiguresTakeMediansRangesAndRatiosCycleByCycle(t *testing.T) {
	f := sampleResults().figures(2, kindHeap)
	if f.cpu != (stat{40, 32, 40}) || f.allocKB != (stat{3, 3, 3}) {
		t.Errorf("records heap: CPU %+v, alloc %+v", f.cpu, f.allocKB)
	}
	// cycle ratios 0.4, 0.2, 0.2: median 0.2 (the ratio of medians would be 40/160 = 0.25)
	if math.Abs(f.cpuX.Med-0.2) > 1e-9 || math.Abs(f.cpuX.Hi-0.4) > 1e-9 {
		t.Errorf("records heap: CPU ratio %+v, want median 0.2 up to 0.4", f.cpuX)
	}
	if got := statOf([]float64{4, 1, 3, 2}); got != (stat{2.5, 1, 4}) {
		t.Errorf("statOf of an even count: %+v", got)
	}
	if got := statOf(nil); !math.IsNaN(got.Med) {
		t.Errorf("statOf of nothing: %+v, want NaN", got)
	}
}

func TestNumbersAreWrittenForReading(t *testing.T) {
	for _, tc := range []struct {
		got, want string
	}{
		{num(22973.4, 0), "22,973"}, {num(1234567.891, 2), "1,234,567.89"}, {num(-0.001, 1), "0.0"}, {num(-1500, 0), "-1,500"},
		{stat{28.4, 27.05, 30}.String(), "28.4 (27.1–30.0)"}, {stat{8005, 7990, 8010}.String(), "8,005 (7,990–8,010)"},
		{ratioText(0.18), "0.18"}, {ratioText(0.00034), "0.00034"}, {ratioText(2.9), "2.90"},
	} {
		if tc.got != tc.want {
			t.Errorf("got %q, want %q", tc.got, tc.want)
		}
	}
}

// The report says for each kind and pprofio path whether the goals are met, by how much they are missed, and what ran where.
func TestReportJudgesTheGoalsAndNamesTheMachine(t *testing.T) {
	md := sampleResults().markdown()
	for _, want := range []string{
		"| heap | pprofio (runtime records + C delta) | 0.20 (0.20–0.40) | met | 0.00038 (0.00038–0.00038) | met |",
		"| heap | pprofio (runtime/pprof + C delta) | 0.81 (0.65–1.30) | missed (1.6× the goal) | 2.88 (2.88–2.88) | missed (28.8× the goal) |",
		"| block | pprofio (runtime records + C delta) | 0.43 (0.43–0.43) | met | 0 (0–0.0017) | met |",
		"| pprofio (runtime records + C delta) | 40.0 (32.0–40.0) | 41.0 (33.0–41.0) | 3.00 (3.00–3.00) | 3 (3–3) |",
		"## heap (60,005 records)", "1.00 2.00 3.00 before, 4.00 5.00 6.00 after", "2 CPUs, Test <CPU> & co",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("latest.md lacks %q:\n%s", want, md)
		}
	}
}

// write saves results.json, latest.md and the chart; -render makes the last two again from the JSON alone; the chart is well-formed XML with its goals.
func TestRenderRedoesTheReportFromResultsJSON(t *testing.T) {
	dir := t.TempDir()
	stdout := os.Stdout
	os.Stdout, _ = os.Open(os.DevNull)
	defer func() { os.Stdout = stdout }()
	want := sampleResults()
	if err := want.write(dir); err != nil {
		t.Fatal(err)
	}
	first, err := os.ReadFile(filepath.Join(dir, "latest.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"latest.md", "godeltaprof.svg"} {
		if err := os.Remove(filepath.Join(dir, f)); err != nil {
			t.Fatal(err)
		}
	}
	if err := rerender(dir); err != nil {
		t.Fatal(err)
	}
	again, err := os.ReadFile(filepath.Join(dir, "latest.md"))
	if err != nil {
		t.Fatal(err)
	}
	if string(again) != string(first) || string(again) != want.markdown() {
		t.Errorf("latest.md from results.json differs from the run's:\n%s\nwant:\n%s", again, first)
	}
	svg, err := os.ReadFile(filepath.Join(dir, "godeltaprof.svg"))
	if err != nil {
		t.Fatal(err)
	}
	dec := xml.NewDecoder(strings.NewReader(string(svg)))
	for {
		if _, err := dec.Token(); err == io.EOF {
			break
		} else if err != nil {
			t.Fatalf("godeltaprof.svg: %v\n%s", err, svg)
		}
	}
	for _, want := range []string{"Test &lt;CPU&gt; &amp; co", "goal ≤ ½", "goal ≤ 1/10", "runtime records: 0.20× CPU, 0.00038× alloc",
		"8,000 KB", "load average 1.00 2.00 3.00 → 4.00 5.00 6.00"} {
		if !strings.Contains(string(svg), want) {
			t.Errorf("the chart lacks %q", want)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "results.json"), []byte(`{"Paths": ["a"]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := rerender(dir); err == nil {
		t.Errorf("rerender of a results.json without costs: no error")
	}
}

// On the log scale a few KB and thousands of KB both get a visible bar, and a tenfold value lies a fixed distance further.
func TestChartScalesAreLogarithmic(t *testing.T) {
	var b strings.Builder
	r := sampleResults()
	r.panel(&b, 1, panelSpec{"t", "KB", func(f figures) stat { return f.allocKB }, goalAlloc, "g", 0.01}, groupH)
	svg := b.String()
	// the positive alloc values span 1 KB (axis 1) .. 23,000 KB (axis 100,000): 5 decades over panelW
	dec := float64(panelW) / 5
	for _, want := range []string{
		`width="` + ftoa(math.Log10(3)*dec) + `"`,    // records heap: 3 KB
		`width="` + ftoa(math.Log10(8000)*dec) + `"`, // godeltaprof heap: 8,000 KB
		`width="0.0"`,               // records mutex: 0 KB, at the axis's start
		`>100k</text>`, `>1</text>`, // the axis's ends
	} {
		if !strings.Contains(svg, want) {
			t.Errorf("panel lacks a bar of %s:\n%s", want, svg)
		}
	}
}

func ftoa(v float64) string { return fmt.Sprintf("%.1f", v) }
