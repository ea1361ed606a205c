// Package core binds the pprofio C core (include/pprofio.h) for the Go
// side. It is the only package that speaks cgo; everything it hands back is
// Go values, and C keeps no Go pointer.
package core

import (
	"errors"
	"time"
)

// ErrNoCgo is returned by New when the package was built without cgo.
var ErrNoCgo = errors.New("the C core needs cgo: build with CGO_ENABLED=1, a C compiler, pkg-config " +
	"and the headers of zlib, libcurl and protobuf-c " +
	"(Debian: gcc pkg-config zlib1g-dev libcurl4-openssl-dev libprotobuf-c-dev)")

// Type is a profile type, numbered as the ingest contract numbers them.
type Type int

// The profile types.
const (
	CPU       Type = 1
	Heap      Type = 2
	Goroutine Type = 3
	Mutex     Type = 4
	Block     Type = 5
)

// Op is a command the core hands to the collector.
type Op int

// The commands, as in pprofio_command_op.
const (
	OpNone       Op = 0
	OpCPUStart   Op = 1
	OpCPUStop    Op = 2
	OpHeap       Op = 3
	OpLog        Op = 4
	OpExit       Op = 5
	OpMutexStart Op = 6
	OpMutexStop  Op = 7
	OpBlockStart Op = 8
	OpBlockStop  Op = 9
	OpGoroutine  Op = 10
)

// Command is the next thing the collector must do.
type Command struct {
	Op          Op
	Cycle       int64
	At          time.Time // when it was due
	WindowStart time.Time // OpHeap: when the cycle began
	Level       int       // OpLog: a slog.Level
	Message     string    // OpLog
}

// Config configures the core; New validates it again in C.
type Config struct {
	Service        string
	OutputDir      string
	Period         time.Duration
	CPUDuration    time.Duration
	StartJitter    time.Duration
	JitterSeed     uint64
	MaxBufferBytes int64
	Types          []Type

	// The goroutine leak rule (0: the core's defaults).
	LeakWindows      int
	LeakMinGrowthPct int
	LeakMinGrowth    int

	// Upload; IngestURL "" turns it off.
	IngestURL      string
	APIKey         string
	CAFile         string
	UserAgent      string
	ConnectTimeout time.Duration
	RequestTimeout time.Duration
	StopTimeout    time.Duration
	SpoolDir       string
	MaxSpoolBytes  int64
	Source         Source
}

// Source says who is sending (UploadRequest.source).
type Source struct {
	Tags           map[string]string
	Hostname       string
	PID            int64
	InstanceID     string
	AgentVersion   string
	RuntimeVersion string
	OS             string
	Arch           string
	ProcessStart   time.Time
}

// Stats mirrors pprofio_stats.
type Stats struct {
	Cycles                 uint64
	ProfilesCollected      uint64
	ProfilesWritten        uint64
	ProfilesSkipped        uint64
	ProfilesDroppedMemory  uint64
	ProfilesDroppedInvalid uint64
	ProfilesDroppedWrite   uint64
	ProfilesDroppedNoSink  uint64
	BytesDropped           uint64
	BytesReceived          uint64
	BytesWritten           uint64
	LogsDropped            uint64
	BufferedBytes          int64
	BufferedBytesPeak      int64

	ProfilesDroppedUpload  uint64
	BatchesQueued          uint64
	BatchesSent            uint64
	BatchesRetried         uint64
	BatchesSplit           uint64
	BatchesDroppedRejected uint64
	BatchesDroppedSpool    uint64
	BatchesDroppedCorrupt  uint64
	BatchesAdopted         uint64
	BytesSent              uint64
	SpoolErrors            uint64
	EventsDropped          uint64
	SpoolBytes             int64
	QueuedBatches          int64
	Deltas                 uint64
	DeltasFailed           uint64
	GoroutineLeaks         uint64
	Goroutines             int64
	BaselineBytes          int64
	CPUDelta               time.Duration
	CPUScheduler           time.Duration
	CPUOutput              time.Duration
	CPUUpload              time.Duration
}
