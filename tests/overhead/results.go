package main

// What a run leaves behind: runs.jsonl, meta.json (the machine, the
// command, the settings) and the report written from them, so that
// -render can redo the report from an earlier run's folder.

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/pprofio/pprofio"
)

// runMeta is what a report needs besides the runs; kept in meta.json so
// that -render can redo the report from a run's files.
type runMeta struct {
	Machine      machine
	Command      string
	Rounds, Work int
	Conc         int
	Elapsed      time.Duration
	Variants     []string
	Cadences     []string
	Profile      *profileResult
	Paired       *pairedResult // the paired span measurement, if it ran
	SpanBlock    int
}

func writeJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

// writeReport analyses runs, prints the Markdown report and writes it and
// the chart into dir.
func writeReport(dir string, meta *runMeta, runs []*run) error {
	rep := analyse(runs, meta.Variants, meta.Cadences)
	rep.Machine, rep.Command = meta.Machine, meta.Command
	rep.Rounds, rep.Work, rep.Conc = meta.Rounds, meta.Work, meta.Conc
	rep.Elapsed, rep.Profile = meta.Elapsed, meta.Profile
	if rep.Base.Wall < pprofioDefaultCPUWindow.Seconds()+0.5 && contains(meta.Cadences, cadDefault) {
		rep.Warnings = append(rep.Warnings, fmt.Sprintf("The baseline's work took %.1f s: at product defaults "+
			"pprofio's 10-s CPU window needs the run to last longer than that, and a window that Stop cuts short "+
			"is cheaper than a whole one. Raise -work until the baseline takes 11 s or more.", rep.Base.Wall))
	}
	if n := float64(meta.Machine.NProc); rep.Base.Cores.Med < 0.9*n && rep.Base.Wall > 5 {
		rep.Warnings = append(rep.Warnings, fmt.Sprintf("The machine was not quiet: the baseline kept %.2f of its "+
			"%.0f CPUs busy on median (%.2f to %.2f over the rounds); the fixed work alone keeps all of them busy. "+
			"Other load competed for the CPUs, so the wall times in the tables are mostly that load, and the CPU times "+
			"vary with it too (shared caches and cores). Rerun on a quiet machine.", rep.Base.Cores.Med, n,
			rep.Base.Cores.Lo, rep.Base.Cores.Hi))
	}
	if msg := deliveryProblems(runs); msg != "" {
		rep.Warnings = append(rep.Warnings, msg)
	}
	md := rep.markdown()
	if len(runs) == 0 {
		md = fmt.Sprintf("# Overhead benchmark: the paired span measurement only\n\n%s, %d CPUs, %s; load average %s at the start, %s at the end; `%s`\n",
			meta.Machine.CPUModel, meta.Machine.NProc, meta.Machine.GoVersion, meta.Machine.LoadAvg, meta.Machine.LoadAvgEnd, meta.Command)
	}
	if meta.Paired != nil {
		md += pairedMarkdown(meta.Paired, meta.SpanBlock)
	}
	fmt.Print(md)
	if err := os.WriteFile(filepath.Join(dir, "latest.md"), []byte(md), 0o644); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "overhead.svg"), []byte(rep.svg()), 0o644)
}

// deliveryProblems says which runs did not deliver everything they made.
func deliveryProblems(runs []*run) string {
	var bad []string
	for _, r := range runs {
		var why string
		switch s := r.Worker.Pprofio; {
		case r.Non200 > 0:
			why = fmt.Sprintf("%d uploads not answered 200", r.Non200)
		case s != nil && s.BatchesSent == 0:
			why = "no batch delivered"
		case s != nil && s.ProfilesDroppedMemory+s.ProfilesDroppedInvalid+s.ProfilesDroppedNoSink+
			s.ProfilesDroppedUpload+s.BatchesDroppedRejected+s.BatchesDroppedSpool > 0:
			why = "profiles or batches dropped"
		case r.Variant == varPyroscope && r.SinkRequests == 0:
			why = "nothing uploaded"
		}
		if why != "" {
			bad = append(bad, fmt.Sprintf("round %d %s/%s: %s", r.Round+1, r.Variant, r.Cadence, why))
		}
	}
	if len(bad) == 0 {
		return ""
	}
	return "Some runs did not deliver everything (see runs.jsonl): " + strings.Join(bad, "; ") + "."
}

// render redoes the report of an earlier run from its runs.jsonl and
// meta.json.
func render(dir string) error {
	var meta runMeta
	b, err := os.ReadFile(filepath.Join(dir, "meta.json"))
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, &meta); err != nil {
		return fmt.Errorf("meta.json: %w", err)
	}
	b, err = os.ReadFile(filepath.Join(dir, "runs.jsonl"))
	if err != nil {
		return err
	}
	var runs []*run
	for _, line := range bytes.Split(bytes.TrimSpace(b), []byte("\n")) {
		if len(line) == 0 {
			continue // a run of the paired measurement only
		}
		r := new(run)
		if err := json.Unmarshal(line, r); err != nil {
			return fmt.Errorf("runs.jsonl: %w", err)
		}
		runs = append(runs, r)
	}
	return writeReport(dir, &meta, runs)
}

// pprofioDefaultCPUWindow is pprofio's DefaultCPUDuration.
const pprofioDefaultCPUWindow = pprofio.DefaultCPUDuration

func writeRuns(path string, runs []*run) error {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	for _, r := range runs {
		if err := enc.Encode(r); err != nil {
			return err
		}
	}
	return os.WriteFile(path, buf.Bytes(), 0o644)
}

// machine describes where the benchmark ran.
type machine struct {
	NProc      int
	CPUModel   string
	GoVersion  string
	Kernel     string
	LoadAvg    string // at the start
	LoadAvgEnd string
	Date       string
}

func machineInfo() machine {
	m := machine{
		NProc:     runtime.NumCPU(),
		CPUModel:  "unknown",
		GoVersion: runtime.Version() + " " + runtime.GOOS + "/" + runtime.GOARCH,
		LoadAvg:   loadAvg(),
		Date:      time.Now().UTC().Format("2006-01-02 15:04 UTC"),
	}
	if f, err := os.Open("/proc/cpuinfo"); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPUModel = strings.TrimSpace(v)
				break
			}
		}
		f.Close()
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = "Linux " + strings.TrimSpace(string(b))
	}
	return m
}

func loadAvg() string {
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
