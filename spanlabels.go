// spanlabels.go: the label sets of spans, made once per name, tag set and
// parent label set instead of once per span. pprof.Labels and
// pprof.WithLabels allocate a label list, a label map and a context on
// every call; a service that opens the same few spans again and again
// needs only as many label maps as it has distinct (parent labels, name,
// tags), and the map itself is immutable, so spans can share it.

package pprofio

import (
	"context"
	"encoding/binary"
	"reflect"
	"runtime/pprof"
	"sync/atomic"
	"unsafe"

	"github.com/pprofio/pprofio/internal/spans"
)

// keyProbe is a context that records the keys it is asked for, and
// answers with its own value for the one it is told.
type keyProbe struct {
	context.Context
	key, val any
}

func (p *keyProbe) Value(key any) any {
	if p.val != nil {
		if key == p.key {
			return p.val
		}
		return p.Context.Value(key)
	}
	p.key = key
	return nil
}

// findLabelKey learns the context key under which runtime/pprof keeps a
// context's label map (spanHot.labelKey), by asking pprof.Label of a
// context that records the key it is asked for; nil if that did not work,
// and then every span takes the pprof.WithLabels path. With it comes the
// type word of runtime/pprof's label map (a pointer type), with which a
// parent's labels are told from anything else a context may answer under
// the key. It checks that a context answering with a label map under the
// key is read by runtime/pprof as carrying those labels.
func findLabelKey() (any, unsafe.Pointer) {
	p := &keyProbe{Context: context.Background()}
	pprof.Label(p, "span")
	if p.key == nil || !reflect.TypeOf(p.key).Comparable() {
		return nil, nil
	}
	lm := pprof.WithLabels(context.Background(), pprof.Labels("span", "probe")).Value(p.key)
	if lm == nil || reflect.TypeOf(lm).Kind() != reflect.Pointer {
		return nil, nil
	}
	p.val = lm
	if v, ok := pprof.Label(p, "span"); !ok || v != "probe" {
		return nil, nil
	}
	typ, _ := efaceWords(lm)
	return p.key, typ
}

// efaceWords are the two words of an interface value: its type and, for
// a pointer type, the pointer.
func efaceWords(v any) (typ, data unsafe.Pointer) {
	e := (*[2]unsafe.Pointer)(unsafe.Pointer(&v))
	return e[0], e[1]
}

// restoreCtx answers runtime/pprof's label key with a label map and
// nothing else: End hands it to pprof.SetGoroutineLabels to put the
// parent's labels back without walking up the span's context.
type restoreCtx struct {
	context.Context // context.Background()
	labels          any
}

func (r *restoreCtx) Value(key any) any {
	if key == spanHot.labelKey {
		return r.labels
	}
	return nil
}

// labelEntry is one cached label set: the merge of the parent's label map
// (nil: none) with "span", name and the sorted tags. A span with labels of
// its own has an entry of its own, with kv and from only.
type labelEntry struct {
	hash    uint64
	parent  unsafe.Pointer // the parent's label map (nil: none), compared by address
	name    string
	tags    []string   // in the order StartSpan got them, as lookups compare them
	labels  any        // the merged label map (runtime/pprof's), shared by every span of the entry
	restore restoreCtx // the parent's label map, which End puts back
	text    spans.Text // name and tags as the span's record carries them
	cached  bool       // a cached entry
	// kv and from are, in an entry of one span's own (not cached), "span",
	// name and the sorted tags, and the context the span was started from,
	// whose labels End puts back.
	kv   []string
	from context.Context
}

// labelBits bounds the cache: a direct-mapped table of 1<<labelBits
// entries, where a new entry replaces the one in its slot. An entry holds
// two label maps and the span's name and tags (a few hundred bytes at
// most with a few labels), so the cache keeps well under 200 KiB of heap.
const labelBits = 9

var labelCache [1 << labelBits]atomic.Pointer[labelEntry]

// cachedLabels returns the entry for name and tags (pairs) under parent
// labels plm, making and caching it when it is not there; nil when plm is
// not runtime/pprof's label map (a context answering the key with
// something else), which the cache does not hold.
func cachedLabels(plm any, name string, tags []string) *labelEntry {
	var parent unsafe.Pointer
	if plm != nil {
		var typ unsafe.Pointer
		if typ, parent = efaceWords(plm); typ != spanHot.labelMapType {
			return nil
		}
	}
	h := mix64(spanHot.seed ^ uint64(uintptr(parent)))
	h = hashString(h, name)
	for _, t := range tags {
		h = hashString(h, t)
	}
	slot := &labelCache[h>>(64-labelBits)]
	if e := slot.Load(); e != nil && e.hash == h && e.parent == parent && e.name == name && equalStrings(e.tags, tags) {
		return e
	}
	kv := spanKV(name, tags)
	e := &labelEntry{hash: h, parent: parent, name: name, tags: append([]string(nil), tags...),
		restore: restoreCtx{Context: context.Background(), labels: plm},
		text:    spans.EncodeText(name, kv[2:]), cached: true}
	e.labels = pprof.WithLabels(&e.restore, pprof.Labels(kv...)).Value(spanHot.labelKey)
	slot.Store(e)
	return e
}

// hashString folds s into h, eight bytes at a time.
func hashString(h uint64, s string) uint64 {
	b := unsafe.Slice(unsafe.StringData(s), len(s))
	for ; len(b) >= 8; b = b[8:] {
		h = mix64(h ^ binary.LittleEndian.Uint64(b))
	}
	var tail uint64
	for i, c := range b {
		tail |= uint64(c) << (8 * i)
	}
	return mix64(h ^ tail ^ uint64(len(s))<<56)
}

func mix64(x uint64) uint64 {
	x = (x ^ x>>32) * 0x9E3779B97F4A7C15
	return x ^ x>>29
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
