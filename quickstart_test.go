//go:build cgo

package pprofio_test

import (
	"context"
	"testing"
	"time"

	"github.com/pprofio/pprofio"
)

// TestQuickStartRuns runs the README's Quick Start as written : New, Start and Stop succeed and
// nothing panics even though nothing is listening at IngestURL.
func TestQuickStartRuns(t *testing.T) {
	t.Setenv("XDG_CACHE_HOME", t.TempDir()) // the default SpoolDir lives there
	cfg := pprofio.Config{
		APIKey:      "your-api-key",
		IngestURL:   "https://api.pprofio.com",
		SampleRate:  60 * time.Second,
		ServiceName: "my-service",
		Tags:        map[string]string{"env": "prod"},
	}
	p, err := pprofio.New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	if err := p.Start(context.Background()); err != nil {
		t.Fatalf("Start: %v", err)
	}
	if err := p.Stop(); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	// Nothing can reach api.pprofio.com from a test: the final batch was
	// made and kept for the next start, not lost.
	s := p.Stats()
	if s.BatchesQueued != 1 || s.BatchesSent != 0 || s.QueuedBatches != 1 || s.SpoolBytes == 0 {
		t.Fatalf("the final batch was not kept in the spool: %+v", s)
	}
}
