// Package benchmeta is what the benchmark tools (tests/fastdeltabench,
// tests/godeltabench) record about the machine a run came from, and how
// they keep a run's results as JSON so its report can be made again.
package benchmeta

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"
)

// Machine is the machine and moment of a run; tools embed it in their own
// metadata, so its fields sit at the top level of their results.json.
type Machine struct {
	Date, Command         string
	NProc                 int
	CPU, Kernel           string
	GoVersion             string
	LoadBefore, LoadAfter string
}

// Now describes this machine and this command, with the load average now.
func Now() Machine {
	m := Machine{Date: time.Now().UTC().Format("2006-01-02 15:04 UTC"), NProc: runtime.NumCPU(),
		GoVersion: runtime.Version(), Command: strings.TrimSpace("go run . " + strings.Join(os.Args[1:], " ")),
		LoadBefore: LoadAvg()}
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

// LoadAvg is the 1, 5 and 15 minute load averages, or "?".
func LoadAvg() string {
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

// Save writes v as dir/results.json, making dir.
func Save(dir string, v any) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "results.json"), append(b, '\n'), 0o644)
}

// Load reads dir/results.json into v; an error names the file.
func Load(dir string, v any) error {
	path := filepath.Join(dir, "results.json")
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("%s: %v", path, err)
	}
	return nil
}
