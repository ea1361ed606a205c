package pprofio

// logdefault.go is the logger of a Profiler whose Config.Logger is nil. A
// user who copies the Quick Start sets no Logger, and must still learn when
// profiles stop getting through: each change of state that loses or
// withholds data (uploads failing, the API key refused, a full disk, an
// OutputDir that cannot be written) goes once to slog.Default(); steady
// operation and the agent's informational lines stay silent.

import (
	"context"
	"log/slog"
	"strings"
	"sync"
)

// episodeHandler forwards Warn and Error records to slog.Default(), one
// per episode. The core already reports its own failing states (uploads,
// the key, writes, leaks) once per episode, when they begin; those pass
// through. A failure reported per occurrence (a dropped profile or batch,
// a skipped CPU window) passes the first time, and again only after the
// agent has said that something recovered ("... again").
type episodeHandler struct {
	mu      sync.Mutex
	latched map[string]bool
}

func newEpisodeHandler() *episodeHandler { return &episodeHandler{latched: map[string]bool{}} }

// episodic are the beginnings of the core's messages that it already logs
// once per episode.
var episodic = []string{"uploads are failing", "the ingest service refused", "cannot write profiles",
	"goroutine leak suspected", "pushes to Pyroscope are failing", "Pyroscope refused", "Pyroscope has no push API"}

// Enabled lets Info through too: recoveries are Info, and end episodes.
func (h *episodeHandler) Enabled(context.Context, slog.Level) bool { return true }

func (h *episodeHandler) Handle(ctx context.Context, r slog.Record) error {
	msg := strings.TrimPrefix(r.Message, "pprofio: ")
	if r.Level < slog.LevelWarn {
		if strings.HasSuffix(msg, " again") {
			h.mu.Lock()
			clear(h.latched)
			h.mu.Unlock()
		}
		return nil
	}
	if !h.first(msg) {
		return nil
	}
	d := slog.Default().Handler() // the default at the time of the record, not at New
	if !d.Enabled(ctx, r.Level) {
		return nil
	}
	return d.Handle(ctx, r)
}

// first reports whether msg begins an episode.
func (h *episodeHandler) first(msg string) bool {
	for _, p := range episodic {
		if strings.HasPrefix(msg, p) {
			return true
		}
	}
	k := messageKind(msg)
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.latched[k] {
		return false
	}
	h.latched[k] = true
	return true
}

// messageKind is what stays of a message across occurrences: its first
// three words before any detail (':', '(' or ';'), leaving out words with
// digits (counts, batch IDs).
func messageKind(msg string) string {
	if i := strings.IndexAny(msg, ":(;"); i >= 0 {
		msg = msg[:i]
	}
	var words []string
	for _, w := range strings.Fields(msg) {
		if !strings.ContainsAny(w, "0123456789") {
			words = append(words, w)
		}
		if len(words) == 3 {
			break
		}
	}
	return strings.Join(words, " ")
}

// The handler has no attributes or groups of its own: the agent logs
// through the Logger as given.
func (h *episodeHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *episodeHandler) WithGroup(string) slog.Handler      { return h }
