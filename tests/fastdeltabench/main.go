// Command fastdeltabench sets pprofio's C delta engine (csrc/pprof.c) beside
// dd-trace-go's fastdelta, the fastest delta-profile code among Go profilers,
// on the same input files in one run:
//
//   - fastdelta's own benchmark (BenchmarkDelta, steady state: one delta of
//     its testdata heap.pprof or big-heap.pprof against the same file) runs
//     through its own `go test -bench` in a copy of dd-trace-go's module
//     (its package is internal, so it cannot be imported), and
//     pprofio's engine does the same deltas on the same files;
//   - pprofio's heap profile pairs of about 1 MB and 10 MB (made by
//     tests/internal/heapgen, as tests/deltabench's are) go through both: a benchmark added to
//     that copy of fastdelta's package, and pprofio's engine.
//
// The rounds alternate which side runs first. Each side is timed by the
// wall clock and by CPU time: pprofio's thread's clock (its delta runs on
// that one thread, in C), and fastdelta's process's (its goroutine and the
// garbage collector its allocations call on). The results (results.json)
// become a table (latest.md) and a chart (fastdelta.svg): medians and
// ranges over rounds, in MB of uncompressed pprof read per second.
//
//	cd tests/fastdeltabench && go run . [-rounds 5] [-benchtime 1s]
//	go run . -render results   # the table and chart again, from results/results.json
//
// It is its own module so that dd-trace-go never reaches pprofio's users;
// dd-trace-go is fetched with `go mod download`, not required here.
package main

import (
	"github.com/pprofio/pprofio/tests/internal/benchmeta"

	_ "embed"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"

	"github.com/pprofio/pprofio/tests/internal/heapgen"
)

// ddVersion is the dd-trace-go release whose fastdelta is measured.
const ddVersion = "v2.12.0"

//go:embed fastdelta_pairs_test.go.txt
var pairsBench []byte

// An input is one thing both engines do: deltas of these files, per operation.
type input struct {
	Name   string
	files  []string // steady state: one file, its delta against itself; a pair: base, cur
	fdName string   // the fastdelta benchmark that gives its wall time
	fdCPU  string   // the one that gives its CPU time (BenchmarkPprofio*, beside fastdelta's tests)
	Bytes  int64    // bytes read per operation
}

func main() {
	rounds := flag.Int("rounds", 5, "rounds, each running every benchmark on both sides once")
	benchtime := flag.String("benchtime", "1s", "time per benchmark per round (go test -benchtime)")
	out := flag.String("out", "results", "directory for results.json, latest.md and fastdelta.svg")
	write := flag.String("write-pairs", "", "only write pprofio's pairs (heap_*.{base,cur}.pb) into this directory, for profiling")
	render := flag.String("render", "", "redo latest.md and fastdelta.svg from the results.json in this directory, without running anything")
	flag.Parse()
	if *render != "" {
		if err := rerender(*render); err != nil {
			fmt.Fprintln(os.Stderr, "fastdeltabench:", err)
			os.Exit(1)
		}
		return
	}
	if *write != "" {
		if _, err := makeInputs(*write, ""); err != nil {
			fmt.Fprintln(os.Stderr, "fastdeltabench:", err)
			os.Exit(1)
		}
		return
	}
	if err := run(*rounds, *benchtime, *out); err != nil {
		fmt.Fprintln(os.Stderr, "fastdeltabench:", err)
		os.Exit(1)
	}
}

func run(rounds int, benchtime, outDir string) error {
	work, err := os.MkdirTemp("", "fastdeltabench")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	fdDir, err := fastdeltaDir()
	if err != nil {
		return err
	}
	inputs, err := makeInputs(work, fdDir)
	if err != nil {
		return err
	}
	fdTest, fdCopy, err := buildFastdelta(work, fdDir)
	if err != nil {
		return err
	}
	res := results{Meta: newMeta(rounds, benchtime), Inputs: inputs}
	for r := 0; r < rounds; r++ {
		fmt.Fprintf(os.Stderr, "round %d/%d (load %s)\n", r+1, rounds, benchmeta.LoadAvg())
		sides := []func() error{
			func() error { return res.runFastdelta(fdTest, fdCopy, benchtime) },
			func() error { return res.runPprofio(benchtime) },
		}
		if r%2 == 1 {
			sides[0], sides[1] = sides[1], sides[0]
		}
		for _, side := range sides {
			if err := side(); err != nil {
				return err
			}
		}
	}
	res.Meta.LoadAfter = benchmeta.LoadAvg()
	return res.write(outDir)
}

// fastdeltaDir downloads dd-trace-go into the module cache and returns the
// fastdelta package's directory there.
func fastdeltaDir() (string, error) {
	cmd := exec.Command("go", "mod", "download", "-json", "github.com/DataDog/dd-trace-go/v2@"+ddVersion)
	cmd.Stderr = os.Stderr
	b, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("go mod download dd-trace-go: %v", err)
	}
	var m struct{ Dir string }
	if err := json.Unmarshal(b, &m); err != nil || m.Dir == "" {
		return "", fmt.Errorf("go mod download dd-trace-go: no directory in %q", b)
	}
	return filepath.Join(m.Dir, "profiler", "internal", "fastdelta"), nil
}

// makeInputs lists fastdelta's own benchmark files and writes pprofio's pairs to work.
func makeInputs(work, fdDir string) ([]input, error) {
	var ins []input
	for _, f := range []string{"heap.pprof", "big-heap.pprof"} {
		if fdDir == "" {
			break
		}
		path := filepath.Join(fdDir, "testdata", f)
		st, err := os.Stat(path)
		if err != nil {
			return nil, err
		}
		ins = append(ins, input{"fastdelta's " + f + ", steady state", []string{path},
			"BenchmarkDelta/fastdelta/" + f + "/steady-state", "BenchmarkPprofioSteady/" + f, st.Size()})
	}
	fmt.Fprintln(os.Stderr, "making pprofio's heap profile pairs...")
	var small, large [2][]byte
	var err error
	if small[0], small[1], err = heapgen.Pair(heapgen.Small, heapgen.SmallPaths); err != nil {
		return nil, err
	}
	if large[0], large[1], err = heapgen.Pair(heapgen.Large, heapgen.LargePaths); err != nil {
		return nil, err
	}
	for _, p := range []struct {
		name string
		pair [2][]byte
	}{{"heap_1MB", small}, {"heap_10MB", large}} {
		base, cur := filepath.Join(work, p.name+".base.pb"), filepath.Join(work, p.name+".cur.pb")
		if err := os.WriteFile(base, p.pair[0], 0o644); err != nil {
			return nil, err
		}
		if err := os.WriteFile(cur, p.pair[1], 0o644); err != nil {
			return nil, err
		}
		ins = append(ins, input{fmt.Sprintf("pprofio's %s pair (%.1f + %.1f MB)", p.name, float64(len(p.pair[0]))/1e6,
			float64(len(p.pair[1]))/1e6), []string{base, cur}, "BenchmarkPprofioPairs/" + p.name,
			"BenchmarkPprofioPairs/" + p.name, int64(len(p.pair[0]) + len(p.pair[1]))})
	}
	return ins, nil
}

// buildFastdelta copies dd-trace-go out of the module cache (which the go
// command keeps read-only, overlays included), lays the pairs benchmark
// beside fastdelta's tests and compiles them. It returns the test binary
// and the copy's fastdelta directory.
func buildFastdelta(work, fdDir string) (bin, dir string, err error) {
	modDir := filepath.Dir(filepath.Dir(filepath.Dir(fdDir)))
	copyDir := filepath.Join(work, "dd-trace-go")
	if out, err := exec.Command("cp", "-r", modDir, copyDir).CombinedOutput(); err != nil {
		return "", "", fmt.Errorf("copying dd-trace-go: %v: %s", err, out)
	}
	if out, err := exec.Command("chmod", "-R", "u+w", copyDir).CombinedOutput(); err != nil {
		return "", "", fmt.Errorf("chmod: %v: %s", err, out)
	}
	dir = filepath.Join(copyDir, "profiler", "internal", "fastdelta")
	if err := os.WriteFile(filepath.Join(dir, "pprofio_pairs_test.go"), pairsBench, 0o644); err != nil {
		return "", "", err
	}
	bin = filepath.Join(work, "fastdelta.test")
	fmt.Fprintln(os.Stderr, "building fastdelta's tests...")
	cmd := exec.Command("go", "test", "-c", "-o", bin, ".")
	cmd.Dir = dir
	// dd-trace-go's own go.work names directories its module zip leaves out.
	cmd.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS=-mod=mod")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return "", "", fmt.Errorf("building fastdelta's tests: %v", err)
	}
	return bin, dir, nil
}
