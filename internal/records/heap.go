//go:build cgo && linux && go1.26 && !go1.27

package records

import (
	"math"
	"runtime"
	"time"
	"unsafe"

	"github.com/pprofio/pprofio/internal/core"
)

// memRecord mirrors internal/profilerecord.MemProfileRecord of Go 1.26,
// which the runtime fills through pprof_memProfileInternal: the stack at
// the depth runtime/pprof records (debug.profstackdepth, 128 by default),
// not the 32 frames of the public runtime.MemProfile.
type memRecord struct {
	AllocBytes, FreeBytes     int64
	AllocObjects, FreeObjects int64
	Stack                     []uintptr
}

//go:linkname pprof_memProfileInternal runtime.pprof_memProfileInternal
func pprof_memProfileInternal(p []memRecord, inuseZero bool) (n int, ok bool)

// Supported says whether this build reads the runtime's records (else the
// agent keeps writing runtime/pprof profiles).
const Supported = true

// heapKeys are the core's keys of one runtime bucket: its stack without
// and with the bytes label (a bucket has no label until it allocates).
type heapKeys struct {
	plain, labelled uint32
	size            int64
}

// Heap makes delta heap profiles from the runtime's records: alloc_* as
// the window's share, inuse_* as they are, equal stack by stack to
// runtime/pprof's heap profile minus the previous one.
type Heap struct {
	rec     *core.Records
	b       budget
	sym     *symbolizer
	buckets map[*uintptr]heapKeys // by the runtime bucket's stack, which never moves
	recs    []memRecord
	vals    []int64
	locs    []uint32
	bytesID int64
}

// NewHeap makes a Heap; Close frees it.
func NewHeap() (*Heap, error) {
	rec, err := core.NewRecords(4, 0b0011)
	if err != nil {
		return nil, err
	}
	h := &Heap{rec: rec, b: budget{rec: rec}, buckets: map[*uintptr]heapKeys{}}
	h.sym = newSymbolizer(&h.b)
	if err := h.init(); err != nil {
		rec.Close()
		return nil, err
	}
	return h, nil
}

func (h *Heap) init() error {
	types := []string{"alloc_objects", "count", "alloc_space", "bytes", "inuse_objects", "count", "inuse_space", "bytes"}
	if err := h.sym.init(types, "space", "bytes"); err != nil {
		return err
	}
	var err error
	h.bytesID, err = h.sym.str("bytes")
	return err
}

// SetLimit bounds the memory the table holds, C and Go (0: no bound): a
// Snapshot that would pass it fails with ErrBound.
func (h *Heap) SetLimit(n int64) { h.b.setLimit(n) }

// Bytes is the memory the table holds, C and Go (budget).
func (h *Heap) Bytes() int64 { return h.b.bytes() }

// heapRecordBytes is what each record the buffers have room for costs:
// its memRecord and its key and values.
const heapRecordBytes = int64(unsafe.Sizeof(memRecord{})) + 5*8

// read fills h.recs with the runtime's records, growing it (and h.vals)
// only when the profile grew, and within the bound.
func (h *Heap) read() error {
	for {
		n, ok := pprof_memProfileInternal(h.recs[:cap(h.recs)], true)
		if ok {
			h.recs = h.recs[:n]
			return nil
		}
		c := n + n/8 + 50
		if err := h.b.take(int64(c-cap(h.recs)) * heapRecordBytes); err != nil {
			return err
		}
		h.recs, h.vals = make([]memRecord, c), make([]int64, 0, 5*c)
	}
}

// Snapshot reads the profile. With emit it writes the profile (Out, Gzip,
// WriteTo) and returns its raw size: the delta against the previous
// snapshot (isDelta), or without one the snapshot's totals.
func (h *Heap) Snapshot(emit bool) (int, bool, error) {
	now := time.Now().UnixNano()
	if err := h.read(); err != nil {
		return 0, false, err
	}
	rate := int64(runtime.MemProfileRate)
	h.vals = h.vals[:0]
	for i := range h.recs {
		r := &h.recs[i]
		var blockSize int64
		if r.AllocObjects > 0 {
			blockSize = r.AllocBytes / r.AllocObjects
		}
		key, err := h.key(r, blockSize)
		if err != nil {
			clear(h.recs)
			return 0, false, h.b.check(err)
		}
		ao, ab := scaleHeapSample(r.AllocObjects, r.AllocBytes, rate)
		io, ib := scaleHeapSample(r.AllocObjects-r.FreeObjects, r.AllocBytes-r.FreeBytes, rate)
		h.vals = append(h.vals, int64(key), ao, ab, io, ib)
	}
	clear(h.recs) // keeps no stack slice of the runtime's alive past the snapshot
	n, isDelta, err := h.rec.Cycle(h.vals, now, rate, emit)
	return n, isDelta, h.b.check(err)
}

// key is the core's key of a record: looked up by its bucket, made once.
func (h *Heap) key(r *memRecord, blockSize int64) (uint32, error) {
	var b *uintptr
	if len(r.Stack) > 0 {
		b = &r.Stack[0]
	}
	k, ok := h.buckets[b]
	if ok && b != nil {
		if blockSize == 0 && k.plain != 0 {
			return k.plain, nil
		}
		if blockSize != 0 && k.labelled != 0 && k.size == blockSize {
			return k.labelled, nil
		}
	}
	if !ok && b != nil {
		if err := h.b.take(mapEntry(unsafe.Sizeof(b) + unsafe.Sizeof(k))); err != nil {
			return 0, err
		}
	}
	id, err := h.newKey(r.Stack, blockSize)
	if err != nil || b == nil {
		return id, err
	}
	if blockSize == 0 {
		k.plain = id
	} else {
		k.labelled, k.size = id, blockSize
	}
	h.buckets[b] = k
	return id, nil
}

// newKey symbolizes a stack as writeHeapProto does: runtime frames at the
// top are hidden unless nothing else is left.
func (h *Heap) newKey(stk []uintptr, blockSize int64) (uint32, error) {
	var err error
	for tries, hide := 0, true; tries < 2; tries, hide = tries+1, false {
		s := stk
		if hide {
			for i, addr := range s {
				if isRuntime(addr) {
					continue
				}
				s = s[i:]
				break
			}
		}
		if h.locs, err = h.sym.appendLocs(h.locs[:0], s); err != nil {
			return 0, err
		}
		if len(h.locs) > 0 {
			break
		}
	}
	var labelKey int64
	if blockSize != 0 {
		labelKey = h.bytesID
	}
	return h.rec.Key(h.locs, labelKey, blockSize)
}

// scaleHeapSample is runtime/pprof's (protomem.go), to the bit.
func scaleHeapSample(count, size, rate int64) (int64, int64) {
	if count == 0 || size == 0 {
		return 0, 0
	}
	if rate <= 1 {
		return count, size
	}
	avgSize := float64(size) / float64(count)
	scale := 1 / (1 - math.Exp(-avgSize/float64(rate)))
	return int64(float64(count) * scale), int64(float64(size) * scale)
}

// WriteTo writes the last profile into w, opened by core.Agent.BeginRaw.
func (h *Heap) WriteTo(w *core.ProfileWriter) error { return h.rec.WriteTo(w) }

// Out returns a copy of the last delta, raw pprof.
func (h *Heap) Out() []byte { return h.rec.Out() }

// Gzip deflates the last delta in C memory and returns its size.
func (h *Heap) Gzip() (int, error) { return h.rec.Gzip() }

// Close frees the core's table.
func (h *Heap) Close() { h.rec.Close() }
