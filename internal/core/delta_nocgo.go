//go:build !cgo

package core

// Delta needs the C core.
func Delta(base, cur []byte) (out []byte, isDelta bool, err error) { return nil, false, ErrNoCgo }

// DeltaCost needs the C core.
func DeltaCost(base, cur []byte) (allocs, baselineBytes int64, err error) { return 0, 0, ErrNoCgo }

// Deltas needs the C core.
type Deltas struct{}

// Next needs the C core.
func (d *Deltas) Next(raw []byte) (n int, isDelta bool, err error) { return 0, false, ErrNoCgo }

// Out needs the C core.
func (d *Deltas) Out() []byte { return nil }

// Close does nothing without the C core.
func (d *Deltas) Close() {}
