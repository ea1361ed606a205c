package main

import "github.com/pprofio/pprofio/internal/records"

// recordsPath reads the runtime's records into reused buffers and has the
// core subtract and write the delta (internal/records), then deflates it
// in C as a batch would. A mutex or block window's start is a snapshot
// that only keeps the values.
type recordsPath struct {
	heap         *records.Heap
	mutex, block *records.Contention
}

func newRecordsPath() *recordsPath {
	h, err := records.NewHeap()
	if err != nil {
		panic(err)
	}
	m, err := records.NewMutex()
	if err != nil {
		panic(err)
	}
	b, err := records.NewBlock()
	if err != nil {
		panic(err)
	}
	return &recordsPath{heap: h, mutex: m, block: b}
}

func (r *recordsPath) name() string { return "pprofio (runtime records + C delta)" }

// snapshotter is what records.Heap and records.Contention share.
type snapshotter interface {
	Snapshot(emit bool) (int, bool, error)
	Gzip() (int, error)
}

func (r *recordsPath) of(kind int) snapshotter {
	switch kind {
	case kindMutex:
		return r.mutex
	case kindBlock:
		return r.block
	}
	return r.heap
}

func (r *recordsPath) start(kind int) int {
	if kind == kindHeap {
		return -1
	}
	if _, _, err := r.of(kind).Snapshot(false); err != nil {
		panic(err)
	}
	return 0
}

func (r *recordsPath) delta(kind int) int {
	s := r.of(kind)
	if _, isDelta, err := s.Snapshot(true); err != nil {
		panic(err)
	} else if !isDelta {
		return 0
	}
	n, err := s.Gzip()
	if err != nil {
		panic(err)
	}
	return n
}
