//go:build cgo

package core

/*
#include <stdlib.h>
#include "pprofio.h"
#include "../../csrc/pyroscope.h"
*/
import "C"

import (
	"time"
	"unsafe"
)

// Custom is the custom profile type (user spans), as the ingest contract numbers it.
const Custom Type = 6

// PyroscopeProfile is one profile of a cycle for PyroscopeEncode.
type PyroscopeProfile struct {
	Type       Type
	Start, End time.Time // the window; a snapshot has Start == End
	Pprof      []byte    // serialized pprof, not gzipped
}

// PyroscopeEncode runs the core's Pyroscope encoder (csrc/pyroscope.h) on
// one cycle's profiles from service with tags, and returns the
// push.v1.PushRequest it makes. For tests and measurements: the uploader
// calls the encoder in C.
func PyroscopeEncode(service string, tags map[string]string, profiles []PyroscopeProfile) ([]byte, error) {
	var cs cstrings
	defer func() { cs.free() }()
	var src C.pprofio_source
	src.service = cs.str(service)
	if n := len(tags); n > 0 {
		keys, values := cs.array(n), cs.array(n)
		ks, vs := unsafe.Slice(keys, n), unsafe.Slice(values, n)
		i := 0
		for k, v := range tags {
			ks[i], vs[i] = C.CString(k), C.CString(v)
			cs = append(cs, unsafe.Pointer(ks[i]), unsafe.Pointer(vs[i]))
			i++
		}
		src.tag_keys, src.tag_values, src.n_tags = keys, values, C.size_t(n)
	}
	// C memory only: C may not read Go memory that holds Go pointers.
	arr := (*C.pprofio_pyroscope_profile)(C.calloc(C.size_t(len(profiles)+1), C.sizeof_pprofio_pyroscope_profile))
	cs = append(cs, unsafe.Pointer(arr))
	ps := unsafe.Slice(arr, len(profiles)+1)
	for i, p := range profiles {
		ps[i]._type = C.int(p.Type)
		ps[i].start_ns = C.int64_t(p.Start.UnixNano())
		ps[i].end_ns = C.int64_t(p.End.UnixNano())
		if len(p.Pprof) > 0 {
			b := C.CBytes(p.Pprof)
			cs = append(cs, b)
			ps[i].pprof, ps[i].len = (*C.uint8_t)(b), C.size_t(len(p.Pprof))
		}
	}
	var out C.pprofio_bytes
	defer C.pprofio_bytes_free(&out)
	var cerr C.pprofio_error
	if rc := C.pprofio_pyroscope_encode(&src, arr, C.size_t(len(profiles)), &out, &cerr); rc != C.PPROFIO_OK {
		return nil, cError(rc, &cerr)
	}
	return C.GoBytes(unsafe.Pointer(out.p), C.int(out.len)), nil
}
