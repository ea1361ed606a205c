package pprofio

import (
	"context"
	"log/slog"
	"sync"
	"testing"
)

// recorder is a slog.Handler that keeps every record.
type recorder struct {
	mu   sync.Mutex
	msgs []string
}

func (r *recorder) Enabled(context.Context, slog.Level) bool { return true }
func (r *recorder) Handle(_ context.Context, rec slog.Record) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.msgs = append(r.msgs, rec.Message)
	return nil
}
func (r *recorder) WithAttrs([]slog.Attr) slog.Handler { return r }
func (r *recorder) WithGroup(string) slog.Handler      { return r }

// useDefault makes slog.Default() a recorder for the test.
func useDefault(t *testing.T) *recorder {
	rec := &recorder{}
	old := slog.Default()
	slog.SetDefault(slog.New(rec))
	t.Cleanup(func() { slog.SetDefault(old) })
	return rec
}

// Without a Logger: failures reach slog.Default() once per episode,
// information never; a failure logged per occurrence is reported again
// only after a recovery.
func TestDefaultLoggerReportsEachEpisodeOnce(t *testing.T) {
	rec := useDefault(t)
	log := slog.New(newEpisodeHandler())
	steps := []struct {
		level slog.Level
		msg   string
		want  int // records at slog.Default() after this step
	}{
		{slog.LevelInfo, "pprofio: started", 0},
		{slog.LevelWarn, "pprofio: uploads are failing (HTTP 500); batches are kept and retried", 1},
		{slog.LevelError, "pprofio: dropped batch 0123abcd0123abcd0123abcd0123abcd (2 profile(s)): HTTP 400", 2},
		{slog.LevelError, "pprofio: dropped batch 9999abcd0123abcd0123abcd0123abcd (3 profile(s)): HTTP 400", 2},
		{slog.LevelWarn, "pprofio: skipped this cycle's CPU profile: the CPU profiler is in use by the program", 3},
		{slog.LevelWarn, "pprofio: skipped this cycle's CPU profile: the CPU profiler is in use by the program", 3},
		{slog.LevelInfo, "pprofio: uploads are going through again", 3},
		{slog.LevelWarn, "pprofio: uploads are failing (HTTP 503); batches are kept and retried", 4},
		{slog.LevelError, "pprofio: dropped batch 7777abcd0123abcd0123abcd0123abcd (1 profile(s)): HTTP 400", 5},
		{slog.LevelError, "pprofio: cannot write profiles: write /x: no space left on device", 6},
		{slog.LevelInfo, "pprofio: writing profiles to /x again", 6},
		{slog.LevelError, "pprofio: cannot write profiles: write /x: no space left on device", 7},
		{slog.LevelInfo, "pprofio: stopped", 7},
	}
	for i, s := range steps {
		log.Log(context.Background(), s.level, s.msg)
		rec.mu.Lock()
		got := len(rec.msgs)
		rec.mu.Unlock()
		if got != s.want {
			t.Fatalf("after step %d (%s) slog.Default() has %d records, want %d: %q", i, s.msg, got, s.want, rec.msgs)
		}
	}
}

// The default logger is read when a record is made, not at New: a program
// that sets its default after New still gets the reports.
func TestDefaultLoggerFollowsSetDefault(t *testing.T) {
	log := slog.New(newEpisodeHandler())
	rec := useDefault(t)
	log.Warn("pprofio: uploads are failing (HTTP 500)")
	if len(rec.msgs) != 1 {
		t.Fatalf("slog.Default() set after the logger was made got %d records, want 1", len(rec.msgs))
	}
}
