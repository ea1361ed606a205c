//go:build !cgo

package core

import "time"

// Custom is the custom profile type (user spans), as the ingest contract numbers it.
const Custom Type = 6

// PyroscopeProfile is one profile of a cycle for PyroscopeEncode.
type PyroscopeProfile struct {
	Type       Type
	Start, End time.Time
	Pprof      []byte
}

// PyroscopeEncode needs the C core.
func PyroscopeEncode(string, map[string]string, []PyroscopeProfile) ([]byte, error) { return nil, ErrNoCgo }
