// spanlabels.go: the label sets of spans, made once per name, tag set and
// parent label set instead of once per span. pprof.Labels and
// pprof.WithLabels allocate a label list, a label map and a context on
// every call; a service that opens the same few spans again and again
// needs only as many label maps as it has distinct (parent labels, name,
// tags), and the map itself is immutable, so spans can share it.

package pprofio

import (
	"context"
	"hash/maphash"
	"reflect"
	"runtime/pprof"
	"sync/atomic"

	"github.com/pprofio/pprofio/internal/spans"
)

// labelKey is the context key under which runtime/pprof keeps a context's
// label map, learnt once by asking pprof.Label of a context that records
// the key it is asked for; nil if that did not work, and then every span
// takes the pprof.WithLabels path.
var labelKey = findLabelKey()

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

// findLabelKey learns the key, then checks that a context answering with a
// label map under it is read by runtime/pprof as carrying those labels.
func findLabelKey() any {
	p := &keyProbe{Context: context.Background()}
	pprof.Label(p, "span")
	if p.key == nil || !reflect.TypeOf(p.key).Comparable() {
		return nil
	}
	lm := pprof.WithLabels(context.Background(), pprof.Labels("span", "probe")).Value(p.key)
	if lm == nil || reflect.TypeOf(lm).Kind() != reflect.Pointer {
		return nil
	}
	p.val = lm
	if v, ok := pprof.Label(p, "span"); !ok || v != "probe" {
		return nil
	}
	return p.key
}

// labelEntry is one cached label set: the merge of the parent's label map
// (nil: none) with "span", name and the sorted tags. A span with labels of
// its own has an entry of its own, with kv only.
type labelEntry struct {
	parent any        // the parent context's label map
	kv     []string   // "span", name, tags sorted by key: what the span records
	labels any        // the merged label map (runtime/pprof's), shared by every span of the entry
	text   spans.Text // name and tags as the span's record carries them
	cached bool       // text is set (a cached entry)
	// from is, in an entry of one span's own (not cached), the context
	// that span was started from, whose labels End puts back; a cached
	// entry's span was started from its context's parent.
	from context.Context
}

// labelBits bounds the cache: a direct-mapped table of 1<<labelBits
// entries, where a new entry replaces the one in its slot. An entry holds
// two label maps and the span's name and tags (a few hundred bytes at
// most with a few labels), so the cache keeps well under 200 KiB of heap.
const labelBits = 9

var (
	labelCache [1 << labelBits]atomic.Pointer[labelEntry]
	labelSeed  = maphash.MakeSeed()
)

// cachedLabels returns the entry for kv under parent labels plm, making
// and caching it (from ctx, whose labels are plm) when it is not there;
// nil when plm is not a pointer (a context answering the key with
// something else), which the cache does not hold.
func cachedLabels(ctx context.Context, plm any, kv []string) *labelEntry {
	h := uint64(0)
	if plm != nil {
		v := reflect.ValueOf(plm)
		if v.Kind() != reflect.Pointer {
			return nil
		}
		h = uint64(v.Pointer())
	}
	for _, s := range kv {
		h = (h ^ maphash.String(labelSeed, s)) * 0x9E3779B97F4A7C15
	}
	slot := &labelCache[h>>(64-labelBits)]
	if e := slot.Load(); e != nil && e.parent == plm && equalStrings(e.kv, kv) {
		return e
	}
	e := &labelEntry{parent: plm, kv: append([]string(nil), kv...), text: spans.EncodeText(kv[1], kv[2:]), cached: true}
	e.labels = pprof.WithLabels(ctx, pprof.Labels(kv...)).Value(labelKey)
	slot.Store(e)
	return e
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
