// Package testkit holds the small pieces that the test suites of this
// module (tests/e2e, tests/pyroscope) share: waiting for work done under a
// hang guard, and noting the status a handler answered.
package testkit

import (
	"net/http"
	"testing"
	"time"
)

// WaitFor polls cond until it holds. guard only turns a hang into a
// failure with a message: the verdict never depends on how fast the
// machine is.
func WaitFor(tb testing.TB, guard time.Duration, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(guard)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("still waiting after %v for %s", guard, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// StatusWriter notes the status answered through it (200 when the handler
// writes without one). Unwrap lets the handler hijack the connection
// through it (http.ResponseController).
type StatusWriter struct {
	http.ResponseWriter
	Status int
}

func (w *StatusWriter) WriteHeader(code int) {
	if w.Status == 0 {
		w.Status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *StatusWriter) Write(p []byte) (int, error) {
	if w.Status == 0 {
		w.Status = http.StatusOK
	}
	return w.ResponseWriter.Write(p)
}

func (w *StatusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
