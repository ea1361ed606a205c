// report.go: what a run leaves behind. results.json holds every cycle's
// figures and the machine they came from; latest.md (the table) and
// godeltaprof.svg (the chart) are made from it, so -render can make them
// again from an earlier run's folder.
package main

import (
	"github.com/pprofio/pprofio/tests/internal/benchmeta"

	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
)

const godeltaprofModule = "github.com/grafana/pyroscope-go/godeltaprof"

// meta is what the figures came from.
type meta struct {
	benchmeta.Machine
	Cycles, Warmup        int
	Platform, Godeltaprof string
}

func newMeta(cycles, warmup int) meta {
	return meta{Machine: benchmeta.Now(), Cycles: cycles, Warmup: warmup, Platform: runtime.GOOS + "/" + runtime.GOARCH,
		Godeltaprof: godeltaprofModule + " " + moduleVersion(godeltaprofModule)}
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
	if err := benchmeta.Save(dir, r); err != nil {
		return err
	}
	return r.report(dir)
}

// rerender makes the report again from dir/results.json.
func rerender(dir string) error {
	var r results
	if err := benchmeta.Load(dir, &r); err != nil {
		return err
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
