package spans

import (
	"encoding/binary"
	"time"
)

// Epoch is the origin of Now. A span's start travels as a Now reading
// until its block goes to the core, and becomes a Unix time then
// (toUnix): a span end reads one clock, where time.Now reads two, and
// touches no shared pairing of the clocks.
var Epoch = time.Now()

// Now reads the monotonic clock, in ns since Epoch.
func Now() int64 { return int64(time.Since(Epoch)) }

// unixOffset turns a Now reading into Unix ns, as of now: a start becomes
// the wall clock at that start give or take what the wall clock was slewed
// (at most 500 ppm) or stepped by since, and a buffer is handed over
// within about FlushEvery.
func unixOffset() int64 {
	t := time.Now()
	return t.UnixNano() - int64(t.Sub(Epoch))
}

// toUnix adds off to the start of every record of block b.
func toUnix(b []byte, off int64) {
	for len(b) >= header {
		n := int(binary.NativeEndian.Uint32(b))
		if n < header || n > len(b) {
			return // not a block of Sink's making: the core refuses it
		}
		start := b[16:24]
		binary.NativeEndian.PutUint64(start, binary.NativeEndian.Uint64(start)+uint64(off))
		b = b[n:]
	}
}
