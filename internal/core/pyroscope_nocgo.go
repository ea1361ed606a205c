//go:build !cgo

package core

import "time"

// PyroscopeProfile is one profile of a cycle for PyroscopeEncode.
type PyroscopeProfile struct {
	Type       Type
	Start, End time.Time
	Pprof      []byte
}

// PyroscopeEncode needs the C core.
func PyroscopeEncode(string, map[string]string, []PyroscopeProfile) ([]byte, error) {
	return nil, ErrNoCgo
}
