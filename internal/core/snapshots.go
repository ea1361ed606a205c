//go:build cgo

package core

/*
#include <stdint.h>
#include <stdlib.h>
#include "pprofio.h"
#include "../../csrc/alloc.h"
#include "../../csrc/gz.h"
#include "../../csrc/pprof.h"

// A profile type's snapshots as the agent takes them: the gzipped bytes
// stream into raw (inflated on the way in), the delta replaces base, and
// the result is deflated as a batch would deflate it.
typedef struct {
	pprofio_gunzip *gz;
	pprofio_bytes raw, out, zout;
	pprofio_baseline *base;
} pprofio_go_snaps;

static int pprofio_go_snaps_begin(pprofio_go_snaps *s) {
	pprofio_gunzip_free(s->gz);
	s->gz = NULL;
	s->raw.len = 0;
	return pprofio_gunzip_new(&s->gz);
}

static int pprofio_go_snaps_write(pprofio_go_snaps *s, const void *p, size_t n) {
	return pprofio_gunzip_feed(s->gz, p, n, &s->raw, NULL, NULL);
}

// pprofio_go_snaps_end ends the stream and runs the delta (emit: against
// the previous snapshot; drop: forget the baseline after, as a mutex or
// block window does), then deflates the delta.
static int pprofio_go_snaps_end(pprofio_go_snaps *s, int emit, int drop, int *is_delta, pprofio_error *err) {
	int rc = pprofio_gunzip_finish(s->gz);
	if (rc != PPROFIO_OK)
		return rc;
	rc = pprofio_pprof_delta(s->raw.p, s->raw.len, &s->base, emit, ~(size_t)0, &s->out, is_delta, err);
	if (rc == PPROFIO_OK && *is_delta) {
		s->zout.len = 0;
		pprofio_bytes_free(&s->zout);
		rc = pprofio_gzip_bytes(s->out.p, s->out.len, &s->zout);
	}
	if (drop) {
		pprofio_baseline_free(s->base);
		s->base = NULL;
	}
	return rc;
}

static void pprofio_go_snaps_free(pprofio_go_snaps *s) {
	if (!s)
		return;
	pprofio_gunzip_free(s->gz);
	pprofio_bytes_free(&s->raw);
	pprofio_bytes_free(&s->out);
	pprofio_bytes_free(&s->zout);
	pprofio_baseline_free(s->base);
	free(s);
}
*/
import "C"

import (
	"errors"
	"unsafe"
)

// Snapshots takes one profile type's snapshots through the core's path:
// runtime/pprof's gzipped bytes are inflated into C memory as they are
// written (Write, as the collector's writer does), End subtracts the
// previous snapshot (csrc/pprof.h) and deflates the delta. For
// benchmarks; not safe for concurrent use.
type Snapshots struct {
	s *C.pprofio_go_snaps
}

// NewSnapshots makes an empty Snapshots; Close frees it.
func NewSnapshots() (*Snapshots, error) {
	s := (*C.pprofio_go_snaps)(C.calloc(1, C.sizeof_pprofio_go_snaps))
	if s == nil {
		return nil, errors.New("out of memory")
	}
	return &Snapshots{s: s}, nil
}

// Begin starts a snapshot.
func (s *Snapshots) Begin() error { return statusError(C.pprofio_go_snaps_begin(s.s)) }

// Write implements io.Writer: it inflates p into C memory.
func (s *Snapshots) Write(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	if rc := C.pprofio_go_snaps_write(s.s, unsafe.Pointer(&p[0]), C.size_t(len(p))); rc != C.PPROFIO_OK {
		return 0, statusError(rc)
	}
	return len(p), nil
}

// End ends the snapshot. emit: make the delta against the previous one;
// drop: keep no baseline after it (the next window brings its own). It
// returns the delta's size raw and deflated (0 without a delta).
func (s *Snapshots) End(emit, drop bool) (raw, gz int, err error) {
	var isD C.int
	var cerr C.pprofio_error
	e, d := C.int(0), C.int(0)
	if emit {
		e = 1
	}
	if drop {
		d = 1
	}
	if rc := C.pprofio_go_snaps_end(s.s, e, d, &isD, &cerr); rc != C.PPROFIO_OK {
		return 0, 0, cError(rc, &cerr)
	}
	if isD == 0 {
		return 0, 0, nil
	}
	return int(s.s.out.len), int(s.s.zout.len), nil
}

// Out returns a copy of the last delta, raw.
func (s *Snapshots) Out() []byte { return C.GoBytes(unsafe.Pointer(s.s.out.p), C.int(s.s.out.len)) }

// Close frees what s holds.
func (s *Snapshots) Close() {
	C.pprofio_go_snaps_free(s.s)
	s.s = nil
}
