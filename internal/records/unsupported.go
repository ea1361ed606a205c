//go:build !cgo || !linux || !go1.26 || go1.27

package records

import (
	"errors"

	"github.com/pprofio/pprofio/internal/core"
)

// Supported says whether this build reads the runtime's records.
const Supported = false

var errUnsupported = errors.New("records: reading the runtime's records is not supported by this build")

// Heap is not available in this build.
type Heap struct{}

// NewHeap returns an error in this build.
func NewHeap() (*Heap, error) { return nil, errUnsupported }

// Snapshot returns an error in this build.
func (h *Heap) Snapshot(emit bool) (int, bool, error) { return 0, false, errUnsupported }

// Out returns nil in this build.
func (h *Heap) Out() []byte { return nil }

// Gzip returns an error in this build.
func (h *Heap) Gzip() (int, error) { return 0, errUnsupported }

// Close does nothing in this build.
func (h *Heap) Close() {}

// Contention is not available in this build.
type Contention struct{}

// NewMutex returns an error in this build.
func NewMutex() (*Contention, error) { return nil, errUnsupported }

// NewBlock returns an error in this build.
func NewBlock() (*Contention, error) { return nil, errUnsupported }

// Snapshot returns an error in this build.
func (c *Contention) Snapshot(emit bool) (int, bool, error) { return 0, false, errUnsupported }

// Out returns nil in this build.
func (c *Contention) Out() []byte { return nil }

// Gzip returns an error in this build.
func (c *Contention) Gzip() (int, error) { return 0, errUnsupported }

// Close does nothing in this build.
func (c *Contention) Close() {}

// WriteTo returns an error in this build.
func (h *Heap) WriteTo(w *core.ProfileWriter) error { return errUnsupported }

// WriteTo returns an error in this build.
func (c *Contention) WriteTo(w *core.ProfileWriter) error { return errUnsupported }

// SetLimit does nothing in this build.
func (h *Heap) SetLimit(n int64) {}

// Bytes is 0 in this build.
func (h *Heap) Bytes() int64 { return 0 }

// SetLimit does nothing in this build.
func (c *Contention) SetLimit(n int64) {}

// Bytes is 0 in this build.
func (c *Contention) Bytes() int64 { return 0 }
