//go:build !cgo

package core

import (
	"io"
	"time"
)

// Agent stands in for the C agent in a build without cgo; New refuses to
// make one, so none of its methods is ever reached.
type Agent struct{}

// New always fails without cgo.
func New(Config) (*Agent, error) { return nil, ErrNoCgo }

func (*Agent) Start() error                                               { return ErrNoCgo }
func (*Agent) Next() Command                                              { return Command{Op: OpExit} }
func (*Agent) Stop()                                                      {}
func (*Agent) Close() error                                               { return nil }
func (*Agent) Free()                                                      {}
func (*Agent) Skip(Type, int64, string)                                   {}
func (*Agent) RecordsHeld(int64, int64)                                   {}
func (*Agent) ReadStats(any)                                              {}
func (*Agent) Begin(Type, int64, time.Time, bool) (*ProfileWriter, error) { return nil, ErrNoCgo }

// BeginRaw needs the C core.
func (*Agent) BeginRaw(Type, int64, time.Time, bool) (*ProfileWriter, error) { return nil, ErrNoCgo }
func (*Agent) Spans() *SpanRecorder                                          { return nil }
func (*Agent) WriteSpans(int64, time.Time, time.Time, func(*SpanCycle) []byte) (uint64, error) {
	return 0, ErrNoCgo
}

// ProfileWriter stands in for the C writer.
type ProfileWriter struct{ io.Writer }

func (*ProfileWriter) Finish(bool, time.Time) error { return ErrNoCgo }

// Gzip needs the C core.
func Gzip([]byte) ([]byte, error) { return nil, ErrNoCgo }

// Gunzip needs the C core.
func Gunzip([]byte) ([]byte, error) { return nil, ErrNoCgo }

// Version needs the C core.
func Version() string { return "" }

// StatusText needs the C core.
func StatusText(int) string { return "" }

// StatField is one field of the C core's stats.
type StatField struct {
	Name   string
	Signed bool
}

// StatsFields needs the C core.
func StatsFields() []StatField { return nil }

// SpanQuantileError is the C histogram's error bound.
const SpanQuantileError = 1.0 / 32

// SpanRecorder stands in for the C span recorder; NewSpanRecorder refuses
// to make one.
type SpanRecorder struct{}

// NewSpanRecorder always fails without cgo.
func NewSpanRecorder(SpanConfig) (*SpanRecorder, error) { return nil, ErrNoCgo }

func (*SpanRecorder) Free()                                               {}
func (*SpanRecorder) Record(string, []byte, int64, int64, uint64, uint64) {}
func (*SpanRecorder) RecordBlock([]byte) error                            { return ErrNoCgo }
func (*SpanRecorder) Stats() SpanStats                                    { return SpanStats{} }
func (*SpanRecorder) Take() (*SpanCycle, error)                           { return nil, ErrNoCgo }
