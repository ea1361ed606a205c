//go:build cgo

package core

/*
#include <stdint.h>
#include <stdlib.h>
#include "pprofio.h"
#include "../../csrc/gz.h"
#include "../../csrc/records.h"
*/
import "C"

import (
	"errors"
	"unsafe"
)

// Records is the core's table of a profile type's runtime records
// (csrc/records.h): the Go side registers what it symbolized once, then
// hands each snapshot's values in one call and gets the delta as pprof.
// Not safe for concurrent use.
type Records struct {
	r   *C.pprofio_records
	nv  int             // values per record
	out C.pprofio_bytes // the last delta, raw
	gz  C.pprofio_bytes // the last delta, gzipped (Gzip)
}

// NewRecords makes a table for samples of nValues values, those in
// cumMask cumulative (subtracted each snapshot).
func NewRecords(nValues int, cumMask uint32) (*Records, error) {
	var r *C.pprofio_records
	if rc := C.pprofio_records_new(C.int(nValues), C.uint32_t(cumMask), &r); rc != C.PPROFIO_OK {
		return nil, statusError(rc)
	}
	return &Records{r: r, nv: nValues}, nil
}

// String adds s and returns its index.
func (r *Records) String(s string) (int64, error) {
	var id C.int64_t
	rc := C.pprofio_records_string(r.r, (*C.char)(unsafe.Pointer(unsafe.StringData(s))), C.size_t(len(s)), &id)
	return int64(id), statusError(rc)
}

// Types sets the sample types (type, unit string pairs) and the period type.
func (r *Records) Types(typeUnit []int64, periodType, periodUnit int64) error {
	return statusError(C.pprofio_records_types(r.r, (*C.int64_t)(unsafe.Pointer(&typeUnit[0])),
		C.size_t(len(typeUnit)/2), C.int64_t(periodType), C.int64_t(periodUnit)))
}

// Mapping adds a mapping and returns its id.
func (r *Records) Mapping(start, limit, offset uint64, file, buildID int64, hasFunctions bool) (uint32, error) {
	var id C.uint32_t
	rc := C.pprofio_records_mapping(r.r, C.uint64_t(start), C.uint64_t(limit), C.uint64_t(offset),
		C.int64_t(file), C.int64_t(buildID), cBool(hasFunctions), &id)
	return uint32(id), statusError(rc)
}

// SetHasFunctions updates a mapping's has_functions.
func (r *Records) SetHasFunctions(mapping uint32, has bool) {
	C.pprofio_records_set_has_functions(r.r, C.uint32_t(mapping), cBool(has))
}

// Function adds a function and returns its id.
func (r *Records) Function(name, file, startLine int64) (uint32, error) {
	var id C.uint32_t
	rc := C.pprofio_records_function(r.r, C.int64_t(name), C.int64_t(file), C.int64_t(startLine), &id)
	return uint32(id), statusError(rc)
}

// Location adds a location at addr with its lines (innermost first) and returns its id.
func (r *Records) Location(addr uint64, mapping uint32, fns []uint32, lines []int64) (uint32, error) {
	if len(fns) != len(lines) {
		return 0, errors.New("records: a location's functions and lines differ in number")
	}
	var id C.uint32_t
	var f *C.uint32_t
	var l *C.int64_t
	if len(fns) > 0 {
		f, l = (*C.uint32_t)(unsafe.Pointer(&fns[0])), (*C.int64_t)(unsafe.Pointer(&lines[0]))
	}
	rc := C.pprofio_records_location(r.r, C.uint64_t(addr), C.uint32_t(mapping), f, l, C.size_t(len(fns)), &id)
	return uint32(id), statusError(rc)
}

// Key returns the key of a stack of locations (leaf first) with a numeric
// label (labelKey 0: none).
func (r *Records) Key(locs []uint32, labelKey, labelNum int64) (uint32, error) {
	var id C.uint32_t
	var p *C.uint32_t
	if len(locs) > 0 {
		p = (*C.uint32_t)(unsafe.Pointer(&locs[0]))
	}
	rc := C.pprofio_records_key(r.r, p, C.size_t(len(locs)), C.int64_t(labelKey), C.int64_t(labelNum), &id)
	return uint32(id), statusError(rc)
}

// Cycle reads a snapshot: recs holds, per record, its key and its values.
// With emit it writes the profile (Out, Gzip, WriteTo) and returns its raw
// size: the delta against the previous snapshot (isDelta), or without one
// the snapshot's totals.
func (r *Records) Cycle(recs []int64, timeNs, period int64, emit bool) (n int, isDelta bool, err error) {
	var p *C.int64_t
	if len(recs) > 0 {
		p = (*C.int64_t)(unsafe.Pointer(&recs[0]))
	}
	var isD C.int
	rc := C.pprofio_records_cycle(r.r, p, C.size_t(len(recs)/(1+r.nv)), C.int64_t(timeNs), C.int64_t(period), cBool(emit),
		&r.out, &isD)
	if rc != C.PPROFIO_OK {
		return 0, false, statusError(rc)
	}
	return int(r.out.len), isD != 0, nil
}

// Gzip deflates the last delta in C memory and returns its size.
func (r *Records) Gzip() (int, error) {
	r.gz.len = 0
	C.pprofio_bytes_free(&r.gz)
	if rc := C.pprofio_gzip_bytes(unsafe.Pointer(r.out.p), r.out.len, &r.gz); rc != C.PPROFIO_OK {
		return 0, statusError(rc)
	}
	return int(r.gz.len), nil
}

// WriteTo writes the last delta, raw, into a writer opened by BeginRaw,
// from C memory to C memory.
func (r *Records) WriteTo(w *ProfileWriter) error {
	if r.out.len == 0 {
		return nil
	}
	return statusError(C.pprofio_profile_write(w.w, unsafe.Pointer(r.out.p), r.out.len))
}

// Out returns a copy of the last delta, raw.
func (r *Records) Out() []byte { return C.GoBytes(unsafe.Pointer(r.out.p), C.int(r.out.len)) }

// SetLimit bounds the C memory the table holds (0: no bound): what would
// pass it fails with an error IsLimit recognises.
func (r *Records) SetLimit(n int64) {
	if n < 0 {
		n = 1 // nothing fits, but 0 would mean no bound
	}
	C.pprofio_records_limit(r.r, C.size_t(n))
}

// IsLimit says whether err is the core's PPROFIO_ERR_LIMIT: a bound was reached.
func IsLimit(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.Code == int(C.PPROFIO_ERR_LIMIT)
}

// Reset forgets the previous snapshot.
func (r *Records) Reset() { C.pprofio_records_reset(r.r) }

// Bytes is the C memory the table holds.
func (r *Records) Bytes() int64 { return int64(C.pprofio_records_bytes(r.r)) }

// Close frees the table.
func (r *Records) Close() {
	C.pprofio_records_free(r.r)
	C.pprofio_bytes_free(&r.out)
	C.pprofio_bytes_free(&r.gz)
	r.r = nil
}

func cBool(b bool) C.int {
	if b {
		return 1
	}
	return 0
}
