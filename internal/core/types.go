// Package core binds the pprofio C core (include/pprofio.h) for the Go
// side. It is the only package that speaks cgo; everything it hands back is
// Go values, and C keeps no Go pointer.
package core

import (
	"errors"
	"reflect"
	"strings"
	"time"
	"unicode"
)

// ErrNoCgo is returned by New when the package was built without cgo.
var ErrNoCgo = errors.New("the C core needs cgo: build with CGO_ENABLED=1, a C compiler, " +
	"the static libraries and headers of zlib and protobuf-c, and libcurl's headers " +
	"(Debian/Ubuntu: gcc zlib1g-dev libprotobuf-c-dev libcurl4-openssl-dev; " +
	"at run time libcurl.so.4 is loaded for uploads if the host has it)")

// Error is an error reported by the C core: its status code, the config
// field it is about (FieldNone or one of the Field constants), and the
// core's message. Callers branch on Code and Field, never on Msg.
type Error struct {
	Code  int
	Field int
	Msg   string
}

func (e *Error) Error() string { return e.Msg }

// The config fields a core Error can be about (pprofio_config_field); the
// ones the Go side acts on.
const (
	FieldNone       = 0
	FieldSpoolDir   = 12 // PPROFIO_FIELD_SPOOL_DIR: the spool folder cannot be used
	FieldInstanceID = 14
)

// Type is a profile type, numbered as the ingest contract numbers them.
type Type int

// The profile types.
const (
	CPU       Type = 1
	Heap      Type = 2
	Goroutine Type = 3
	Mutex     Type = 4
	Block     Type = 5
	Custom    Type = 6 // the spans' start stacks and timings (PPROFIO_PROFILE_CUSTOM)
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
	OpSpans      Op = 11 // the cycle ends: hand over its spans (Agent.WriteSpans)
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
	MaxSpanBytes   int64 // the span recorder's bound; 0: no recorder

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

	// Grafana Pyroscope; PyroscopeURL "" turns it off. It shares CAFile,
	// the timeouts and the spool settings with the ingest upload.
	PyroscopeURL      string
	PyroscopeUser     string
	PyroscopePassword string
	PyroscopeToken    string
	PyroscopeTenantID string
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

// CName is the pprofio_stats field (include/pprofio.h) that a Go stats
// field mirrors: its name in snake case ("ProfilesDroppedMemory":
// "profiles_dropped_memory", "CPUOutput": "cpu_output"), with "_ns" after
// it for a time.Duration.
func CName(f reflect.StructField) string {
	var b strings.Builder
	r := []rune(f.Name)
	for i, c := range r {
		if unicode.IsUpper(c) && i > 0 {
			prevLower := unicode.IsLower(r[i-1]) || unicode.IsDigit(r[i-1])
			nextLower := i+1 < len(r) && unicode.IsLower(r[i+1])
			if prevLower || (unicode.IsUpper(r[i-1]) && nextLower) {
				b.WriteByte('_')
			}
		}
		b.WriteRune(unicode.ToLower(c))
	}
	if f.Type == reflect.TypeOf(time.Duration(0)) {
		b.WriteString("_ns")
	}
	return b.String()
}
