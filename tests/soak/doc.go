// Package soak measures what New/Start/Stop cycles leave behind: RSS, the C
// heap, the Go heap, goroutines, file descriptors and threads, sampled after
// every cycle of an agent that takes all five profile types and uploads
// them over TLS to the reference receiver (a separate process on loopback,
// so its own memory and goroutines stay out of the figures).
//
//	make soak                       1,000 cycles, then the same under go test -asan (LSan at exit)
//	go test -run TestSoak ./soak/   30 cycles (part of make check)
//
// PPROFIO_SOAK_CYCLES sets the number of cycles. The test prints the growth
// per cycle after warm-up (a least-squares slope) and asserts only counts:
// goroutines and file descriptors come back to their baseline after every
// cycle, and the thread count stops growing after warm-up (within a few
// threads the Go runtime may add late). Memory figures
// are reported, not asserted.
package soak
