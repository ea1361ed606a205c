package main

import "github.com/pprofio/pprofio/internal/records"

// recordsPath reads the runtime's records into reused buffers and has the
// core subtract and write the delta (internal/records), then deflates it
// in C as a batch would. Types it does not cover yet go the collector's way.
type recordsPath struct {
	heap     *records.Heap
	fallback *collectorPath
}

func newRecordsPath() *recordsPath {
	h, err := records.NewHeap()
	if err != nil {
		panic(err)
	}
	return &recordsPath{heap: h, fallback: newCollectorPath()}
}

func (r *recordsPath) name() string { return "pprofio (runtime records + C delta)" }

func (r *recordsPath) start(kind int) int {
	if kind == kindHeap {
		return -1
	}
	return r.fallback.start(kind)
}

func (r *recordsPath) delta(kind int) int {
	if kind != kindHeap {
		return r.fallback.delta(kind)
	}
	if _, isDelta, err := r.heap.Snapshot(true); err != nil {
		panic(err)
	} else if !isDelta {
		return 0
	}
	n, err := r.heap.Gzip()
	if err != nil {
		panic(err)
	}
	return n
}
