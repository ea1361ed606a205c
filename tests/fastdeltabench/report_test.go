package main

import (
	"github.com/pprofio/pprofio/tests/internal/benchmeta"

	"encoding/xml"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func sampleResults() *results {
	ins := []input{{Name: "steady <a&b>", Bytes: 30000}, {Name: "pair", Bytes: 16_000_000}}
	return &results{
		Meta:   meta{Rounds: 3, Fastdelta: "dd-trace-go v0", Machine: benchmeta.Machine{NProc: 2, CPU: "Test CPU", GoVersion: "go1.x", Date: "d"}},
		Inputs: ins,
		FD: map[string]*series{"steady <a&b>": {Wall: []float64{50, 40, 60}, CPU: []float64{45, 35, 55}},
			"pair": {Wall: []float64{20, 30, 25}, CPU: []float64{15, 25, 20}}},
		PP: map[string]*series{"steady <a&b>": {Wall: []float64{200, 100, 120}, CPU: []float64{210, 205, 200}},
			"pair": {Wall: []float64{150, 160, 250}, CPU: []float64{230, 240, 235}}},
	}
}

// The medians and ranges are over rounds, and a ratio is the median of the rounds' ratios, not a ratio of medians.
func TestRowsTakeMediansRangesAndRatiosRoundByRound(t *testing.T) {
	rows := sampleResults().rows()
	if len(rows) != 2 {
		t.Fatalf("%d rows, want 2", len(rows))
	}
	s := rows[0]
	if s.fdWall != (stat{50, 40, 60}) || s.ppCPU != (stat{205, 200, 210}) {
		t.Errorf("steady: fastdelta wall %+v, pprofio CPU %+v", s.fdWall, s.ppCPU)
	}
	// round ratios 4, 2.5, 2: median 2.5 (the ratio of medians would be 120/50 = 2.4)
	if math.Abs(s.wallX.Med-2.5) > 1e-9 || s.wallX.Lo != 2 || s.wallX.Hi != 4 {
		t.Errorf("steady: wall ratio %+v, want median 2.5 over 2..4", s.wallX)
	}
	if got := stats([]float64{4, 1, 3, 2}); got != (stat{2.5, 1, 4}) {
		t.Errorf("stats of an even count: %+v", got)
	}
}

// The report names every input, escapes them in the chart, and the chart is well-formed XML; -render redoes both from results.json.
func TestReportNamesEveryInputAndTheChartIsWellFormed(t *testing.T) {
	dir := t.TempDir()
	stdout := os.Stdout
	os.Stdout, _ = os.Open(os.DevNull)
	defer func() { os.Stdout = stdout }()
	if err := sampleResults().write(dir); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(dir, "fastdelta.svg")); err != nil {
		t.Fatal(err)
	}
	if err := rerender(dir); err != nil {
		t.Fatal(err)
	}
	md, err := os.ReadFile(filepath.Join(dir, "latest.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"| steady <a&b> | 0.03 | 50 (40–60) |", "| pair | 16.00 |", "2.5× (2.0–4.0)"} {
		if !strings.Contains(string(md), want) {
			t.Errorf("latest.md lacks %q:\n%s", want, md)
		}
	}
	svg, err := os.ReadFile(filepath.Join(dir, "fastdelta.svg"))
	if err != nil {
		t.Fatal(err)
	}
	dec := xml.NewDecoder(strings.NewReader(string(svg)))
	for {
		if _, err := dec.Token(); err == io.EOF {
			break
		} else if err != nil {
			t.Fatalf("fastdelta.svg: %v\n%s", err, svg)
		}
	}
	if !strings.Contains(string(svg), "steady &lt;a&amp;b&gt;") {
		t.Errorf("the chart does not name the first input, escaped")
	}
}
