//go:build cgo && linux && go1.26 && !go1.27

package records

import (
	"fmt"
	"runtime"
	"unsafe"

	"github.com/pprofio/pprofio/internal/core"
)

// budget bounds what one table holds, C and Go together: the core's
// tables, which refuse to pass what Go's share leaves of the limit, and an
// estimate of the Go memory kept across snapshots (the symbol caches, the
// bucket index, the reused record buffers), which is checked against what
// the core holds before it grows. Go's share is counted per entry as twice
// its key and value plus 8 bytes (a map's slots, its control bytes, and
// the room of its last doubling) and per slice by its capacity; the frames
// and PCs a cached location keeps are counted too.
type budget struct {
	rec   *core.Records
	limit int64 // 0: none
	goMem int64 // the estimate of Go's share
}

// Sizes the estimate counts by.
var (
	frameSize = int64(unsafe.Sizeof(runtime.Frame{}))
	pcSize    = int64(unsafe.Sizeof(uintptr(0)))
)

// mapEntry is the estimate of one map entry of key and value of kv bytes.
func mapEntry(kv uintptr) int64 { return 2*int64(kv) + 8 }

// take counts n more bytes of Go memory, to be kept: ErrBound (and
// nothing counted) when the table would pass the limit with them. Call it
// before keeping them.
func (b *budget) take(n int64) error {
	if b.limit != 0 && b.bytes()+n > b.limit {
		return b.over()
	}
	b.goMem += n
	b.refit()
	return nil
}

// bytes is the table's memory, C and Go.
func (b *budget) bytes() int64 { return b.rec.Bytes() + b.goMem }

// setLimit sets the limit (0: none).
func (b *budget) setLimit(n int64) {
	b.limit = n
	b.refit()
}

// refit gives the core what Go's share leaves of the limit.
func (b *budget) refit() {
	if b.limit != 0 {
		b.rec.SetLimit(b.limit - b.goMem)
	}
}

func (b *budget) over() error {
	return fmt.Errorf("%w (%d bytes)", ErrBound, b.limit)
}

// check turns the core's PPROFIO_ERR_LIMIT into ErrBound.
func (b *budget) check(err error) error {
	if err != nil && core.IsLimit(err) {
		return b.over()
	}
	return err
}
