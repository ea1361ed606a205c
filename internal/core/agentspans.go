//go:build cgo

// agentspans.go: the span recorder as the agent owns it, and a cycle's
// spans on their way back into the core as its custom profile.

package core

/*
#include "pprofio.h"
#include "../../csrc/spans.h"
*/
import "C"

import (
	"fmt"
	"time"
)

// Spans is the agent's span recorder, which the span sink records into,
// or nil when the agent keeps none (Config.MaxSpanBytes 0). It lives as
// long as the agent: freeing it is the agent's job.
func (a *Agent) Spans() *SpanRecorder {
	r := C.pprofio_agent_spans(a.a)
	if r == nil {
		return nil
	}
	return &SpanRecorder{r: r, borrowed: true}
}

// WriteSpans hands over the spans of the cycle in progress as cycle's
// custom profile: encode turns them into a pprof profile (not gzipped),
// which goes through the profile path like any other, and the core keeps
// the cycle's timeline with it for the batch and the local timeline file.
// It returns how many spans the cycle recorded (0: no profile is made).
func (a *Agent) WriteSpans(cycle int64, start, end time.Time, encode func(*SpanCycle) []byte) (uint64, error) {
	var c *C.pprofio_spans_cycle
	if rc := C.pprofio_agent_spans_take(a.a, &c); rc != C.PPROFIO_OK {
		return 0, fmt.Errorf("take the cycle's spans: %w", statusError(rc))
	}
	if c == nil {
		return 0, nil
	}
	attached := false
	defer func() {
		if !attached {
			C.pprofio_spans_cycle_free(c)
		}
	}()
	recorded := uint64(c.recorded)
	gz, err := Gzip(encode(goCycle(c)))
	if err != nil {
		return recorded, fmt.Errorf("gzip the custom profile: %w", err)
	}
	w, err := a.Begin(Custom, cycle, start, false)
	if err != nil {
		return recorded, err
	}
	C.pprofio_profile_attach_spans(w.w, c)
	attached = true
	_, werr := w.Write(gz)
	if err := w.Finish(werr == nil, end); werr == nil && err != nil {
		werr = err
	}
	return recorded, werr
}
