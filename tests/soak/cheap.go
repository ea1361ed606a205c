//go:build !asan

package soak

/*
#include <malloc.h>

// pprofio_soak_c_heap is the C heap in use (glibc's count of allocated bytes).
static size_t pprofio_soak_c_heap(void) {
	struct mallinfo2 m = mallinfo2();
	return m.uordblks + m.hblkhd;
}
*/
import "C"

const cHeapSource = "mallinfo2 (uordblks + hblkhd)"

// cHeapInUse is the C heap in use, in bytes.
func cHeapInUse() int64 { return int64(C.pprofio_soak_c_heap()) }
