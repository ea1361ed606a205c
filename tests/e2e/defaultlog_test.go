package e2e

import (
	"log/slog"
	"net/http"
	"testing"
)

// TestDefaultLoggerOneRecordPerEpisode: with no Logger set, an agent
// uploading over TLS to a receiver that answers 200, then 500 (an
// episode), then 200, then 500 again (a second episode), then 200 puts
// exactly two records in slog.Default(), one as each episode begins, and
// none while uploads go through.
func TestDefaultLoggerOneRecordPerEpisode(t *testing.T) {
	isolateEnv(t)
	in := newIngest(t, ingestOpts{})
	def := &logCapture{}
	old := slog.Default()
	slog.SetDefault(slog.New(def))
	t.Cleanup(func() { slog.SetDefault(old) })
	defer func() {
		if t.Failed() {
			def.dump(t)
			in.dump(t)
		}
	}()
	cfg := deliveryConfig(in, "e2e-default-log", t.TempDir(), nil)
	cfg.Logger = nil
	p := startProfiler(t, cfg)

	steady := func(n int) {
		t.Helper()
		waitFor(t, "batches accepted", func() bool {
			s := p.Stats()
			return len(in.distinctAccepted()) >= n && s.QueuedBatches == 0
		})
	}
	outage := func() {
		t.Helper()
		failedBefore := p.Stats().BatchesRetried
		in.setDown(http.StatusInternalServerError)
		waitFor(t, "two failed attempts", func() bool {
			return p.Stats().BatchesRetried >= failedBefore+2
		})
		in.setDown(0)
	}

	steady(2)
	if recs := def.all(); len(recs) != 0 {
		t.Fatalf("%d records in slog.Default() while uploads went through, want none", len(recs))
	}
	outage()
	steady(len(in.distinctAccepted()) + 1)
	if recs := def.all(); len(recs) != 1 {
		t.Fatalf("%d records in slog.Default() after one outage, want 1", len(recs))
	}
	steady(len(in.distinctAccepted()) + 1) // steady again: nothing more
	outage()
	steady(len(in.distinctAccepted()) + 1)
	if err := stopWithin(t, p); err != nil {
		t.Errorf("Stop: %v", err)
	}
	recs := def.all()
	if len(recs) != 2 {
		t.Fatalf("%d records in slog.Default() over two outages, want 2", len(recs))
	}
	for _, r := range recs {
		if r.Level != slog.LevelWarn || len(def.find(slog.LevelWarn, "uploads are failing")) != 2 {
			t.Errorf("record %v %q: want a warning that uploads are failing", r.Level, r.Msg)
		}
	}
	if s := p.Stats(); s.BatchesRetried < 4 {
		t.Errorf("BatchesRetried = %d, want the failed attempts of both outages", s.BatchesRetried)
	}
}
