//go:build cgo

package core

/*
#include <stdlib.h>
#include "pprofio.h"
#include "../../csrc/spans.h"

// Both are short and keep no pointer: Go need not move their arguments to
// the heap, nor prepare for a callback.
#cgo noescape pprofio_go_span_record
#cgo nocallback pprofio_go_span_record
#cgo noescape pprofio_spans_record_block
#cgo nocallback pprofio_spans_record_block

// pprofio_go_span_record records one span from Go strings, without a copy.
static void pprofio_go_span_record(pprofio_spans *s, _GoString_ name, const void *tags, size_t tags_len,
                                   int64_t start_ns, int64_t dur_ns, uint64_t id, uint64_t parent) {
    pprofio_span sp = {.name = _GoStringPtr(name), .name_len = _GoStringLen(name), .tags = tags,
                       .tags_len = tags_len, .start_ns = start_ns, .dur_ns = dur_ns, .span_id = id,
                       .parent_id = parent};
    pprofio_spans_record(s, &sp);
}
*/
import "C"

import (
	"strings"
	"time"
	"unsafe"
)

// SpanQuantileError is the most a quantile read from a recorder is off,
// relative to the exact one.
const SpanQuantileError = float64(C.PPROFIO_HIST_REL_ERROR)

// SpanRecorder is a handle on a C span recorder (csrc/spans.h). Its
// methods are safe for concurrent use; Free must be the last call.
type SpanRecorder struct {
	r *C.pprofio_spans
}

// NewSpanRecorder makes an empty recorder.
func NewSpanRecorder(cfg SpanConfig) (*SpanRecorder, error) {
	ccfg := C.pprofio_spans_config{
		max_bytes:   C.int64_t(cfg.MaxBytes),
		max_series:  C.uint32_t(cfg.MaxSeries),
		max_samples: C.uint32_t(cfg.MaxSamples),
		max_stacks:  C.uint32_t(cfg.MaxStacks),
		seed:        C.uint64_t(cfg.Seed),
	}
	var r *C.pprofio_spans
	var cerr C.pprofio_error
	if rc := C.pprofio_spans_new(&ccfg, &r, &cerr); rc != C.PPROFIO_OK {
		return nil, cError(rc, &cerr)
	}
	return &SpanRecorder{r: r}, nil
}

// Free releases the recorder. No method may be called after it.
func (r *SpanRecorder) Free() {
	C.pprofio_spans_free(r.r)
	r.r = nil
}

// Record hands one finished span to the core: one cgo call, no copy, no
// allocation. tags holds "key\x00value\x00" pairs.
func (r *SpanRecorder) Record(name string, tags []byte, start, dur int64, id, parent uint64) {
	var tp unsafe.Pointer
	if len(tags) > 0 {
		tp = unsafe.Pointer(&tags[0])
	}
	C.pprofio_go_span_record(r.r, name, tp, C.size_t(len(tags)), C.int64_t(start), C.int64_t(dur),
		C.uint64_t(id), C.uint64_t(parent))
}

// RecordBlock hands the core a block of records (see AppendSpanRecord).
func (r *SpanRecorder) RecordBlock(b []byte) error {
	if len(b) == 0 {
		return nil
	}
	return statusError(C.pprofio_spans_record_block(r.r, unsafe.Pointer(&b[0]), C.size_t(len(b))))
}

// Stats reads the recorder's totals.
func (r *SpanRecorder) Stats() SpanStats {
	var s C.pprofio_spans_stats
	C.pprofio_spans_stats_get(r.r, &s)
	return SpanStats{Recorded: uint64(s.recorded), Sampled: uint64(s.sampled), Dropped: uint64(s.dropped),
		Overflowed: uint64(s.overflowed), Bytes: int64(s.bytes), BytesPeak: int64(s.bytes_peak)}
}

// Take hands over the cycle in progress, copied into Go values, and starts
// an empty one.
func (r *SpanRecorder) Take() (*SpanCycle, error) {
	var c *C.pprofio_spans_cycle
	if rc := C.pprofio_spans_take(r.r, &c); rc != C.PPROFIO_OK {
		return nil, statusError(rc)
	}
	defer C.pprofio_spans_cycle_free(c)
	out := &SpanCycle{Recorded: uint64(c.recorded), Unsampled: uint64(c.unsampled),
		Overflowed: uint64(c.overflowed), StacksDropped: uint64(c.stacks_dropped),
		Dropped: uint64(c.dropped), Bytes: int64(c.bytes)}
	for _, sr := range unsafe.Slice(c.series, c.n_series) {
		out.Series = append(out.Series, goSeries(&sr))
	}
	for _, sm := range unsafe.Slice(c.samples, c.n_samples) {
		out.Samples = append(out.Samples, SpanSample{Series: int(sm.series), Slowest: sm.slowest != 0,
			Uniform: sm.uniform != 0, Start: time.Unix(0, int64(sm.start_ns)),
			Duration: time.Duration(sm.dur_ns), ID: uint64(sm.span_id), ParentID: uint64(sm.parent_id)})
	}
	for _, st := range unsafe.Slice(c.stacks, c.n_stacks) {
		pcs := make([]uintptr, st.n_pcs)
		for i, pc := range unsafe.Slice(st.pcs, st.n_pcs) {
			pcs[i] = uintptr(pc)
		}
		out.Stacks = append(out.Stacks, SpanStack{Series: int(st.series), PCs: pcs, Count: uint64(st.count),
			Total: time.Duration(st.total_ns)})
	}
	return out, nil
}

func goSeries(sr *C.pprofio_spans_series) SpanSeries {
	q := func(v float64) time.Duration { return time.Duration(C.pprofio_spans_quantile(sr, C.double(v))) }
	s := SpanSeries{Overflow: sr.overflow != 0, Count: uint64(sr.count), Total: time.Duration(sr.total_ns),
		Min: time.Duration(sr.min_ns), Max: time.Duration(sr.max_ns), P50: q(0.5), P90: q(0.9), P99: q(0.99)}
	s.Name = C.GoStringN(sr.name, C.int(sr.name_len))
	if sr.tags_len > 0 {
		kv := strings.Split(C.GoStringN(sr.tags, C.int(sr.tags_len)), "\x00")
		s.Tags = kv[:len(kv)-1] // the blob ends in a NUL
	}
	return s
}
