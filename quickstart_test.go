//go:build cgo

package pprofio_test

import (
	"context"
	"testing"
	"time"

	"github.com/pprofio/pprofio"
)

// TestQuickStartRuns runs the README's Quick Start as written (with the
// period shortened so the test ends): New, Start and Stop succeed and
// nothing panics even though nothing is listening at IngestURL.
func TestQuickStartRuns(t *testing.T) {
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
}
