//go:build cgo && linux && go1.26 && !go1.27

package records

import (
	"runtime"
	"time"
	"unsafe"

	"github.com/pprofio/pprofio/internal/core"
)

// blockRecord mirrors internal/profilerecord.BlockProfileRecord of Go 1.26:
// the stack as the runtime keeps it (frame-pointer unwound, inlined
// frames not yet expanded) at runtime/pprof's depth.
type blockRecord struct {
	Count, Cycles int64
	Stack         []uintptr
}

//go:linkname pprof_blockProfileInternal runtime.pprof_blockProfileInternal
func pprof_blockProfileInternal(p []blockRecord) (n int, ok bool)

//go:linkname pprof_mutexProfileInternal runtime.pprof_mutexProfileInternal
func pprof_mutexProfileInternal(p []blockRecord) (n int, ok bool)

//go:linkname runtime_cyclesPerSecond runtime/pprof.runtime_cyclesPerSecond
func runtime_cyclesPerSecond() int64

//go:linkname pprof_makeProfStack runtime.pprof_makeProfStack
func pprof_makeProfStack() []uintptr

// Contention makes delta mutex or block profiles from the runtime's
// records, equal stack by stack to runtime/pprof's profile (contentions,
// delay) minus the previous snapshot.
type Contention struct {
	rec      *core.Records
	b        budget
	sym      *symbolizer
	read     func([]blockRecord) (int, bool)
	buckets  map[*uintptr]uint32 // the core's key of each runtime bucket, by its stack
	recs     []blockRecord
	vals     []int64
	locs     []uint32
	expanded []uintptr // runtime/pprof's expandInlinedFrames buffer, at its depth
}

// NewMutex makes a Contention for the mutex profile; Close frees it.
func NewMutex() (*Contention, error) { return newContention(pprof_mutexProfileInternal) }

// NewBlock makes a Contention for the block profile; Close frees it.
func NewBlock() (*Contention, error) { return newContention(pprof_blockProfileInternal) }

func newContention(read func([]blockRecord) (int, bool)) (*Contention, error) {
	rec, err := core.NewRecords(2, 0b11)
	if err != nil {
		return nil, err
	}
	c := &Contention{rec: rec, b: budget{rec: rec}, read: read, buckets: map[*uintptr]uint32{},
		expanded: pprof_makeProfStack()}
	c.sym = newSymbolizer(&c.b)
	c.b.take(int64(cap(c.expanded)) * pcSize) // no limit yet: never fails
	if err := c.sym.init([]string{"contentions", "count", "delay", "nanoseconds"}, "contentions", "count"); err != nil {
		rec.Close()
		return nil, err
	}
	return c, nil
}

// Snapshot reads the profile. With emit it writes the profile (Out, Gzip,
// WriteTo) and returns its raw size: the delta against the previous
// snapshot (isDelta), or without one the snapshot's totals.
func (c *Contention) Snapshot(emit bool) (int, bool, error) {
	now := time.Now().UnixNano()
	if err := c.readRecords(); err != nil {
		return 0, false, err
	}
	cpuGHz := float64(runtime_cyclesPerSecond()) / 1e9
	c.vals = c.vals[:0]
	for i := range c.recs {
		r := &c.recs[i]
		key, err := c.key(r.Stack)
		if err != nil {
			clear(c.recs)
			return 0, false, c.b.check(err)
		}
		c.vals = append(c.vals, int64(key), r.Count, int64(float64(r.Cycles)/cpuGHz))
	}
	clear(c.recs)
	n, isDelta, err := c.rec.Cycle(c.vals, now, 1, emit)
	return n, isDelta, c.b.check(err)
}

// SetLimit bounds the memory the table holds, C and Go (0: no bound): a
// Snapshot that would pass it fails with ErrBound.
func (c *Contention) SetLimit(n int64) { c.b.setLimit(n) }

// Bytes is the memory the table holds, C and Go (budget).
func (c *Contention) Bytes() int64 { return c.b.bytes() }

// blockRecordBytes is what each record the buffers have room for costs.
const blockRecordBytes = int64(unsafe.Sizeof(blockRecord{})) + 3*8

// readRecords fills c.recs with the runtime's records, growing it (and
// c.vals) only when the profile grew, and within the bound.
func (c *Contention) readRecords() error {
	for {
		n, ok := c.read(c.recs[:cap(c.recs)])
		if ok {
			c.recs = c.recs[:n]
			return nil
		}
		size := n + n/8 + 50
		if err := c.b.take(int64(size-cap(c.recs)) * blockRecordBytes); err != nil {
			return err
		}
		c.recs, c.vals = make([]blockRecord, size), make([]int64, 0, 3*size)
	}
}

// key is the core's key of a bucket's stack, made once: its inlined
// frames expanded as runtime/pprof's expandInlinedFrames does, then
// symbolized.
func (c *Contention) key(stk []uintptr) (uint32, error) {
	var b *uintptr
	if len(stk) > 0 {
		b = &stk[0]
		if k, ok := c.buckets[b]; ok {
			return k, nil
		}
	}
	if b != nil {
		if err := c.b.take(mapEntry(unsafe.Sizeof(b) + 4)); err != nil {
			return 0, err
		}
	}
	n := expandInlinedFrames(c.expanded, stk)
	var err error
	if c.locs, err = c.sym.appendLocs(c.locs[:0], c.expanded[:n]); err != nil {
		return 0, err
	}
	k, err := c.rec.Key(c.locs, 0, 0)
	if err == nil && b != nil {
		c.buckets[b] = k
	}
	return k, err
}

// expandInlinedFrames is runtime/pprof's: the stack with inlined calls
// expanded, as return PCs, at most len(dst) of them.
func expandInlinedFrames(dst, pcs []uintptr) int {
	cf := runtime.CallersFrames(pcs)
	var n int
	for n < len(dst) {
		f, more := cf.Next()
		dst[n] = f.PC + 1
		n++
		if !more {
			break
		}
	}
	return n
}

// WriteTo writes the last profile into w, opened by core.Agent.BeginRaw.
func (c *Contention) WriteTo(w *core.ProfileWriter) error { return c.rec.WriteTo(w) }

// Out returns a copy of the last delta, raw pprof.
func (c *Contention) Out() []byte { return c.rec.Out() }

// Gzip deflates the last delta in C memory and returns its size.
func (c *Contention) Gzip() (int, error) { return c.rec.Gzip() }

// Close frees the core's table.
func (c *Contention) Close() { c.rec.Close() }
