// report.go: what a run leaves behind. results.json holds every cycle's
// figures and the machine they came from; latest.md (the table) and
// godeltaprof.svg (the chart) are made from it, so -render can make them
// again from an earlier run's folder.
package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
	"time"
)

const godeltaprofModule = "github.com/grafana/pyroscope-go/godeltaprof"

// meta is what the figures came from.
type meta struct {
	Date, Command                    string
	Cycles, Warmup, NProc            int
	CPU, Kernel, GoVersion, Platform string
	Godeltaprof                      string
	LoadBefore, LoadAfter            string
}

func newMeta(cycles, warmup int) meta {
	m := meta{Date: time.Now().UTC().Format("2006-01-02 15:04 UTC"), Cycles: cycles, Warmup: warmup,
		NProc: runtime.NumCPU(), GoVersion: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH,
		Godeltaprof: godeltaprofModule + " " + moduleVersion(godeltaprofModule),
		Command:     strings.TrimSpace("go run . " + strings.Join(os.Args[1:], " ")), LoadBefore: loadavg()}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPU = strings.TrimSpace(v)
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = "Linux " + strings.TrimSpace(string(b))
	}
	return m
}

// moduleVersion is the version of module path built into this program.
func moduleVersion(path string) string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, d := range bi.Deps {
			if d.Path == path {
				return d.Version
			}
		}
	}
	return "(version unknown)"
}

// write saves the results and the report made from them into dir, and prints the table.
func (r *results) write(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "results.json"), append(b, '\n'), 0o644); err != nil {
		return err
	}
	return r.report(dir)
}

// rerender makes the report again from dir/results.json.
func rerender(dir string) error {
	b, err := os.ReadFile(filepath.Join(dir, "results.json"))
	if err != nil {
		return err
	}
	var r results
	if err := json.Unmarshal(b, &r); err != nil {
		return fmt.Errorf("%s: %v", filepath.Join(dir, "results.json"), err)
	}
	if len(r.Paths) == 0 || len(r.Costs) != len(r.Paths) {
		return fmt.Errorf("%s: %d paths but costs for %d", filepath.Join(dir, "results.json"), len(r.Paths), len(r.Costs))
	}
	return r.report(dir)
}

func (r *results) report(dir string) error {
	md := r.markdown()
	fmt.Print(md)
	if err := os.WriteFile(filepath.Join(dir, "latest.md"), []byte(md), 0o644); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "godeltaprof.svg"), []byte(r.svg()), 0o644)
}

func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}
