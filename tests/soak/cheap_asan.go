//go:build asan

package soak

/*
#include <stddef.h>

// From the sanitizer runtime (sanitizer/allocator_interface.h, which gcc's
// packages do not always ship).
size_t __sanitizer_get_current_allocated_bytes(void);

// Under ASan, malloc is the sanitizer's: glibc's mallinfo2 does not see it.
static size_t pprofio_soak_c_heap(void) { return __sanitizer_get_current_allocated_bytes(); }
*/
import "C"

const cHeapSource = "__sanitizer_get_current_allocated_bytes"

// cHeapInUse is the C heap in use, in bytes.
func cHeapInUse() int64 { return int64(C.pprofio_soak_c_heap()) }
