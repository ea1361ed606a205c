package core

import "time"

// SpanConfig bounds a span recorder (pprofio_spans_config); zero fields
// take the core's defaults.
type SpanConfig struct {
	MaxBytes   int64
	MaxSeries  uint32
	MaxSamples uint32
	MaxStacks  uint32
	Seed       uint64
}

// SpanSeries is one span name and tag set's timings over a cycle.
type SpanSeries struct {
	Name          string
	Tags          []string // key, value pairs, sorted by key
	Overflow      bool     // the series of spans past the cardinality or memory bound
	Count         uint64
	Total         time.Duration
	Min, Max      time.Duration
	P50, P90, P99 time.Duration // within SpanQuantileError of the exact ones
}

// SpanSample is a finished span in a cycle's timeline.
type SpanSample struct {
	Series   int // index into SpanCycle.Series
	Slowest  bool
	Uniform  bool
	Start    time.Time
	Duration time.Duration
	ID       uint64
	ParentID uint64
}

// SpanStack is the spans of one series that started at one stack.
type SpanStack struct {
	Series int
	PCs    []uintptr
	Count  uint64
	Total  time.Duration
}

// SpanCycle is a cycle's data taken from a recorder.
type SpanCycle struct {
	Series        []SpanSeries
	Samples       []SpanSample
	Stacks        []SpanStack
	Recorded      uint64
	Unsampled     uint64
	Overflowed    uint64
	StacksDropped uint64
	Dropped       uint64
	Bytes         int64
}

// SpanStats mirrors pprofio_spans_stats.
type SpanStats struct {
	Recorded   uint64
	Sampled    uint64
	Dropped    uint64
	Overflowed uint64
	Bytes      int64
	BytesPeak  int64
}
