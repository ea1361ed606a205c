//go:build !linux

// No thread CPU clock here: cost.go counts commands only.

package collector

import "time"

func threadCPU() time.Duration { return 0 }
