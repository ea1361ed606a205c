//go:build !cgo

package core

// Delta needs the C core.
func Delta(base, cur []byte) (out []byte, isDelta bool, err error) { return nil, false, ErrNoCgo }

// DeltaCost needs the C core.
func DeltaCost(base, cur []byte) (allocs, baselineBytes int64, err error) { return 0, 0, ErrNoCgo }
