package e2e

import (
	"sync"
	"testing"

	"github.com/pprofio/pprofio"
)

// Processes of a fleet start together on one host and share SpoolDir: no
// start may take another's folder for that of an exited process (which
// made New fail, or quietly lose the disk spool).
func TestAgentsStartingTogetherShareOneSpoolDir(t *testing.T) {
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	spool := t.TempDir()
	for round := 0; round < 40; round++ {
		var wg sync.WaitGroup
		ps := make([]*pprofio.Profiler, 8)
		errs := make([]error, 8)
		for i := range ps {
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				ps[i], errs[i] = pprofio.New(pprofio.Config{
					ServiceName: "fleet",
					IngestURL:   "https://127.0.0.1:1",
					APIKey:      "k",
					SpoolDir:    spool,
				})
			}(i)
		}
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Fatalf("round %d: New #%d on a shared SpoolDir: %v", round, i, err)
			}
			ps[i].Stop()
		}
	}
}
