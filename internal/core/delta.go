//go:build cgo

package core

/*
#include <stdint.h>
#include "pprofio.h"
#include "../../csrc/alloc.h"
#include "../../csrc/gz.h"
#include "../../csrc/pprof.h"
*/
import "C"

import "unsafe"

// bytesPtr returns b's first byte for C (nil for an empty slice). C reads it
// during the call only and keeps no pointer to it.
func bytesPtr(b []byte) *C.uint8_t {
	if len(b) == 0 {
		return nil
	}
	return (*C.uint8_t)(unsafe.Pointer(&b[0]))
}

// Delta runs the core's delta engine (csrc/pprof.h) the way the agent does:
// pprofio_pprof_delta on base (raw, uncompressed pprof), which makes the
// baseline, then on cur. With a compatible base it returns cur minus base as
// raw pprof and isDelta = true; otherwise (sample types differ, or nothing
// cumulative to subtract) out is nil and isDelta false: send cur as it is.
// For tests and benchmarks.
func Delta(base, cur []byte) (out []byte, isDelta bool, err error) {
	out, isDelta, _, err = delta(base, cur)
	return out, isDelta, err
}

// DeltaCost runs Delta(base, cur) and reports what it took on the C side:
// the allocation calls made through the core's allocator, and the size of
// the baseline that cur leaves behind. For benchmarks; the allocation count
// is process-wide, so nothing else may run C code meanwhile.
func DeltaCost(base, cur []byte) (allocs, baselineBytes int64, err error) {
	before := C.pprofio_alloc_calls()
	_, _, baselineBytes, err = delta(base, cur)
	return int64(C.pprofio_alloc_calls() - before), baselineBytes, err
}

func delta(base, cur []byte) (out []byte, isDelta bool, baselineBytes int64, err error) {
	var b *C.pprofio_baseline
	defer func() { C.pprofio_baseline_free(b) }()
	var res C.pprofio_bytes
	defer C.pprofio_bytes_free(&res)
	var isD C.int
	var cerr C.pprofio_error
	noLimit := ^C.size_t(0)
	rc := C.pprofio_pprof_delta(bytesPtr(base), C.size_t(len(base)), &b, 1, noLimit, &res, &isD, &cerr)
	if rc != C.PPROFIO_OK {
		return nil, false, 0, cError(rc, &cerr)
	}
	rc = C.pprofio_pprof_delta(bytesPtr(cur), C.size_t(len(cur)), &b, 1, noLimit, &res, &isD, &cerr)
	if rc != C.PPROFIO_OK {
		return nil, false, 0, cError(rc, &cerr)
	}
	baselineBytes = int64(C.pprofio_baseline_bytes(b))
	if isD == 0 {
		return nil, false, baselineBytes, nil
	}
	return C.GoBytes(unsafe.Pointer(res.p), C.int(res.len)), true, baselineBytes, nil
}

// Deltas keeps one baseline across snapshots, as the agent does for each
// profile type: each Next subtracts the previous snapshot from raw. The
// output stays in C memory until the next call (Out copies it), so a
// benchmark measures the engine alone. For benchmarks; not safe for
// concurrent use.
type Deltas struct {
	b   *C.pprofio_baseline
	out C.pprofio_bytes
}

// Next reads raw (uncompressed pprof): with a compatible previous snapshot
// it returns the delta's length and isDelta = true.
func (d *Deltas) Next(raw []byte) (n int, isDelta bool, err error) {
	var isD C.int
	var cerr C.pprofio_error
	rc := C.pprofio_pprof_delta(bytesPtr(raw), C.size_t(len(raw)), &d.b, 1, ^C.size_t(0), &d.out, &isD, &cerr)
	if rc != C.PPROFIO_OK {
		return 0, false, cError(rc, &cerr)
	}
	return int(d.out.len), isD != 0, nil
}

// Out returns a copy of the last delta Next made.
func (d *Deltas) Out() []byte { return C.GoBytes(unsafe.Pointer(d.out.p), C.int(d.out.len)) }

// Close frees the baseline and the output buffer.
func (d *Deltas) Close() {
	C.pprofio_baseline_free(d.b)
	d.b = nil
	C.pprofio_bytes_free(&d.out)
}
