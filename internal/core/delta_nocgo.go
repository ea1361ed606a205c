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

// Snapshots needs the C core.
type Snapshots struct{}

// NewSnapshots needs the C core.
func NewSnapshots() (*Snapshots, error) { return nil, ErrNoCgo }

// Begin needs the C core.
func (s *Snapshots) Begin() error { return ErrNoCgo }

// Write needs the C core.
func (s *Snapshots) Write(p []byte) (int, error) { return 0, ErrNoCgo }

// End needs the C core.
func (s *Snapshots) End(emit, drop bool) (raw, gz int, err error) { return 0, 0, ErrNoCgo }

// Out needs the C core.
func (s *Snapshots) Out() []byte { return nil }

// Close does nothing without the C core.
func (s *Snapshots) Close() {}
