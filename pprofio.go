// This file is the package's public API; doc.go is its documentation.

package pprofio

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"time"

	"github.com/pprofio/pprofio/internal/collector"
	"github.com/pprofio/pprofio/internal/core"
	"github.com/pprofio/pprofio/internal/spans"
)

// Version is the agent's version.
const Version = "0.1.0"

// ProfileType names a kind of profile.
type ProfileType string

// The profile types pprofio collects.
const (
	ProfileCPU       ProfileType = "cpu"       // CPU time by stack, over CPUDuration each cycle
	ProfileHeap      ProfileType = "heap"      // allocations this cycle and in-use memory, once a cycle
	ProfileGoroutine ProfileType = "goroutine" // goroutine count and stacks, once a cycle; leak alerts
	ProfileMutex     ProfileType = "mutex"     // lock contention during the window (CPUDuration)
	ProfileBlock     ProfileType = "block"     // blocking during the window (CPUDuration)
)

// Defaults for the Config fields left zero.
const (
	DefaultSampleRate     = 60 * time.Second
	DefaultCPUDuration    = 10 * time.Second
	DefaultMaxBufferBytes = 32 << 20
	DefaultMaxSpoolBytes  = 64 << 20
	DefaultMaxSpanBytes   = 4 << 20
	// DefaultMutexProfileFraction samples 1 in 10 contention events during
	// the mutex window.
	DefaultMutexProfileFraction = 10
	// DefaultBlockProfileRate samples one blocking event per 10 µs spent
	// blocked during the block window (events longer than that always).
	DefaultBlockProfileRate = 10000
	// The goroutine leak rule: the count grew in each of the last
	// DefaultLeakWindows cycles, by at least DefaultLeakMinGrowthPercent
	// percent and DefaultLeakMinGrowth goroutines over them.
	DefaultLeakWindows          = 5
	DefaultLeakMinGrowthPercent = 20
	DefaultLeakMinGrowth        = 50
	DefaultStopTimeout          = 5 * time.Second
	DefaultConnectTimeout       = 10 * time.Second
	DefaultRequestTimeout       = 30 * time.Second
)

// Limits that New enforces.
const (
	MinSampleRate     = time.Second
	MinMaxBufferBytes = 1 << 20
	MinMaxSpoolBytes  = 1 << 20
	MinMaxSpanBytes   = 64 << 10
	MaxTags           = 64
	MaxTagKeyLen      = 128
	MaxTagValueLen    = 256
	MaxServiceNameLen = 128
)

// Config configures a Profiler. New first fills each field left at its
// zero value from its PPROFIO_* environment variable, if set (see
// Environment in the package documentation); the fields still zero take
// the defaults given on each. New rejects what cannot work with a
// *ConfigError.
type Config struct {
	// APIKey authenticates uploads to IngestURL. It travels only in the
	// Authorization header, never in URLs, logs or files.
	APIKey string
	// IngestURL is the base URL of the pprofio ingest service, e.g.
	// "https://api.pprofio.com". Only https:// is allowed, except http://
	// to a loopback address for local development.
	IngestURL string
	// SampleRate is the length of one collection cycle. Default 60 s,
	// at least 1 s.
	SampleRate time.Duration
	// ServiceName names the program in profiles and in OutputDir: letters,
	// digits, '.', '_' and '-'. Required.
	ServiceName string
	// Tags label every profile (env, region, version, ...).
	Tags map[string]string

	// CPUDuration is how long the CPU profile runs each cycle. Default
	// 10 s, or SampleRate/6 when SampleRate is shorter than 60 s; it must
	// be in (0, SampleRate].
	CPUDuration time.Duration
	// Profiles selects the profile types. Default: CPU and heap;
	// goroutine, mutex and block are opt-in.
	Profiles []ProfileType
	// MutexProfileFraction is the mutex profile fraction during the mutex
	// window (runtime.SetMutexProfileFraction); outside it the program's
	// own setting is in force. Default 10.
	MutexProfileFraction int
	// BlockProfileRate is the block profile rate, in nanoseconds, during the
	// block window (runtime.SetBlockProfileRate). Default 10000 (10 µs).
	// The runtime cannot report the program's own rate: a program that sets
	// one should do it with SetBlockProfileRate, so pprofio puts it back.
	BlockProfileRate int
	// LeakWindows, LeakMinGrowthPercent and LeakMinGrowth set the goroutine
	// leak rule: a goroutine_leak event (and a warning) when the count grew
	// in each of the last LeakWindows cycles (default 5), by at least
	// LeakMinGrowthPercent (20) percent and LeakMinGrowth (50) goroutines
	// over them. One event per episode: the count must stop growing before
	// another can fire.
	LeakWindows          int
	LeakMinGrowthPercent int
	LeakMinGrowth        int
	// OutputDir is where profiles are kept on local disk; see the package
	// documentation for the layout. At least one of IngestURL and
	// OutputDir must be set. New checks that it can be made and written
	// (it is made at the first write).
	OutputDir string
	// MaxBufferBytes bounds the profile data the core holds in memory.
	// Default 32 MiB, at least 1 MiB.
	MaxBufferBytes int64
	// MaxSpanBytes bounds the memory the core keeps for a cycle's spans
	// (timings, timeline, start stacks). Past it, spans of new names and
	// tag sets are aggregated in one overflow series, counted in
	// Stats.SpansOverflowed. Default 4 MiB, at least 64 KiB.
	MaxSpanBytes int64
	// StartJitter is the most the first cycle waits after Start, drawn at
	// random so a fleet does not profile in step. Zero means SampleRate/10;
	// a negative value starts the first cycle at once.
	StartJitter time.Duration
	// Logger receives what the agent has to say. When nil, the agent is
	// silent while everything works, and reports to slog.Default() once
	// per episode what loses or withholds data: uploads failing, the API
	// key refused, a full disk, an OutputDir it cannot write.
	Logger *slog.Logger

	// CAFile is a PEM bundle of certificates to trust for IngestURL and
	// PyroscopeURL instead of the system's (a private CA). Verification is never off.
	CAFile string
	// SpoolDir keeps batches that are not delivered yet on disk, so an
	// outage, a restart or a crash loses nothing that fits in
	// MaxSpoolBytes. Default: <user cache dir>/pprofio/<ServiceName>
	// (falling back to memory only, with a warning, when that cannot be
	// used). Processes may share it; each sends only its own batches and
	// those of processes that have exited. New makes it, and fails when it
	// cannot be made or written.
	SpoolDir string
	// MaxSpoolBytes bounds SpoolDir; past it the oldest batches go first,
	// counted and reported. Default 64 MiB, at least 1 MiB.
	MaxSpoolBytes int64
	// StopTimeout bounds how long Stop spends delivering the last batches;
	// what is not delivered by then stays in SpoolDir for the next start.
	// Default 5 s.
	StopTimeout time.Duration
	// ConnectTimeout bounds connecting to IngestURL or PyroscopeURL (default 10 s);
	// RequestTimeout bounds a whole upload (default 30 s).
	ConnectTimeout time.Duration
	RequestTimeout time.Duration

	// PyroscopeURL is the base URL of a Grafana Pyroscope server (or
	// Grafana Cloud Profiles), e.g. "https://profiles-prod-001.grafana.net";
	// profiles are pushed to {PyroscopeURL}/push.v1.PusherService/Push.
	// The same rules as IngestURL apply, and its own queue (under
	// SpoolDir/pyroscope, MaxSpoolBytes), retries and pauses, so Pyroscope
	// and IngestURL (either or both may be set) never hold each other back.
	// CAFile, the timeouts and StopTimeout apply to both. New checks
	// ServiceName and Tags as Pyroscope would. See the package
	// documentation's "Grafana Pyroscope".
	PyroscopeURL string
	// PyroscopeUser and PyroscopePassword are HTTP basic auth credentials
	// (on Grafana Cloud: the stack's user ID and an access policy token).
	// Set both or neither.
	PyroscopeUser     string
	PyroscopePassword string
	// PyroscopeToken is a bearer token, instead of basic auth.
	PyroscopeToken string
	// PyroscopeTenantID is sent as X-Scope-OrgID to a multi-tenant
	// Pyroscope.
	PyroscopeTenantID string
}

// ConfigError reports a Config field New cannot accept.
type ConfigError struct {
	Field  string // the Config field, e.g. "SampleRate" or "Tags[env]"
	Reason string
}

func (e *ConfigError) Error() string { return "pprofio: Config." + e.Field + ": " + e.Reason }

// Errors returned by Start.
var (
	ErrStarted = errors.New("pprofio: already started")
	ErrStopped = errors.New("pprofio: stopped")
)

// Stats are the agent's counters, totals since New.
type Stats struct {
	Cycles            uint64 // collection cycles completed
	ProfilesCollected uint64 // profiles received whole by the core
	ProfilesWritten   uint64 // profile files written to OutputDir
	ProfilesSkipped   uint64 // windows not taken (e.g. the CPU profiler was in use)
	// Profiles dropped, by reason.
	ProfilesDroppedMemory  uint64 // the MaxBufferBytes bound was reached
	ProfilesDroppedInvalid uint64 // the runtime's bytes did not decode
	ProfilesDroppedWrite   uint64 // writing to OutputDir failed
	ProfilesDroppedNoSink  uint64 // no configured output could take them
	BytesDropped           uint64 // uncompressed bytes of all dropped profiles
	BytesReceived          uint64 // gzipped bytes received from runtime/pprof
	BytesWritten           uint64 // gzipped bytes written to OutputDir
	BufferedBytes          int64  // profile bytes held in memory now
	BufferedBytesPeak      int64  // the most ever held
	LogsDropped            uint64 // log lines lost because nobody read them in time

	// Delivery to IngestURL.
	BatchesQueued          uint64 // batches made for upload (one a cycle)
	BatchesSent            uint64 // accepted by the ingest service (or already, 409)
	BatchesRetried         uint64 // attempts that failed and will be tried again
	BatchesSplit           uint64 // batches split in two after a 413
	BatchesDroppedRejected uint64 // refused for good: 400, another 4xx, too large alone
	BatchesDroppedSpool    uint64 // evicted by MaxSpoolBytes (or MaxBufferBytes without a spool)
	BatchesDroppedCorrupt  uint64 // damaged or foreign spool files removed
	BatchesAdopted         uint64 // left in SpoolDir by an earlier process, taken over
	ProfilesDroppedUpload  uint64 // profiles in dropped batches
	BytesSent              uint64 // request bodies uploaded (gzipped)
	SpoolErrors            uint64 // spool writes that failed (the batch stayed in memory)
	EventsDropped          uint64 // events lost to a full event list
	SpoolBytes             int64  // bytes in SpoolDir now
	QueuedBatches          int64  // batches waiting for upload now
	// UploadsOff is true when this process cannot upload at all: libcurl
	// (libcurl.so.4, 7.68.0 or newer) could not be loaded. The reason is
	// logged once; batches stay in SpoolDir for a process that can send them.
	UploadsOff bool

	// Deltas and goroutines.
	Deltas         uint64 // heap, mutex and block profiles sent as this window's share
	DeltasFailed   uint64 // profiles that did not decode: sent as they were (delta false)
	GoroutineLeaks uint64 // goroutine_leak events raised
	Goroutines     int64  // the goroutine count at the last snapshot
	BaselineBytes  int64  // memory the delta baselines hold now (bounded by MaxBufferBytes/4 each)
	CPUDelta       time.Duration
	// The record tables heap, mutex and block profiles are made from where
	// the build reads the runtime's records: their memory, C and Go (an
	// estimate of the Go maps), bounded by MaxBufferBytes/4 each.
	RecordsBytes     int64 // held now
	RecordsBytesPeak int64 // the most held

	// CPU time spent by the core (thread CPU clocks).
	CPUScheduler time.Duration // computing the schedule, on the collector's thread
	CPUOutput    time.Duration // the output thread: writing files, encoding and gzipping batches
	CPUUpload    time.Duration // the delivery thread

	// Spans (StartSpan).
	SpansRecorded   uint64 // finished spans handed to the core
	SpansSampled    uint64 // spans kept in a cycle's timeline
	SpansDropped    uint64 // spans lost: ended while Stop ran (later ones are not counted), or malformed
	SpansOverflowed uint64 // spans past the cardinality or MaxSpanBytes bound, aggregated in the overflow series

	// Delivery to PyroscopeURL: its own queue, as above for IngestURL.
	PyroscopeBatchesQueued          uint64        // pushes made (one a cycle)
	PyroscopeBatchesSent            uint64        // accepted by Pyroscope
	PyroscopeBatchesRetried         uint64        // attempts that failed and will be tried again
	PyroscopeBatchesSplit           uint64        // pushes split by series after a 413
	PyroscopeBatchesDroppedRejected uint64        // refused for good: 400, another 4xx, too large alone
	PyroscopeBatchesDroppedOld      uint64        // older than the hour Pyroscope takes
	PyroscopeBatchesDroppedSpool    uint64        // evicted by MaxSpoolBytes, or damaged spool files
	PyroscopeBatchesAdopted         uint64        // left in SpoolDir/pyroscope by an earlier process, taken over
	PyroscopeProfilesDropped        uint64        // profiles in dropped pushes
	PyroscopeBytesSent              uint64        // request bodies pushed (gzipped)
	PyroscopeSpoolBytes             int64         // bytes in SpoolDir/pyroscope now
	PyroscopeQueuedBatches          int64         // pushes waiting now
	PyroscopeCPUUpload              time.Duration // CPU time of Pyroscope's delivery thread
}

// Profiler is a running (or ready, or stopped) agent. Its methods are
// safe for concurrent use.
type Profiler struct {
	cfg   Config
	log   *slog.Logger
	agent *core.Agent
	spans *spans.Sink

	mu      sync.Mutex
	started bool
	stopped bool
	done    chan struct{} // closed when the collector returns
	stopErr error
	final   Stats
	stopMu  sync.Mutex   // serializes Stop; the second caller waits for the first
	freeMu  sync.RWMutex // Stats reads the agent under it; Stop frees it under it
	freed   bool
}

// New validates cfg, fills in defaults, and prepares a Profiler. Nothing
// runs until Start.
func New(cfg Config) (*Profiler, error) {
	cfg, origin, enabled, err := prepare(cfg) // env.go: the environment, then normalize
	if err != nil {
		return nil, err
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(newEpisodeHandler()) // failures only, once each, to slog.Default()
	}
	if !enabled { // PPROFIO_ENABLED=false: a Profiler without an agent does nothing
		log.Info("pprofio: disabled by " + EnvEnabled)
		return &Profiler{cfg: cfg, log: log}, nil
	}
	jitter := cfg.StartJitter
	if jitter < 0 {
		jitter = 0
	}
	types := make([]core.Type, 0, len(cfg.Profiles))
	for _, t := range cfg.Profiles {
		types = append(types, coreTypes[t])
	}
	ccfg := core.Config{
		Service:        cfg.ServiceName,
		OutputDir:      cfg.OutputDir,
		Period:         cfg.SampleRate,
		CPUDuration:    cfg.CPUDuration,
		StartJitter:    jitter,
		MaxBufferBytes: cfg.MaxBufferBytes,
		MaxSpanBytes:   cfg.MaxSpanBytes,
		Types:          types,

		LeakWindows:      cfg.LeakWindows,
		LeakMinGrowthPct: cfg.LeakMinGrowthPercent,
		LeakMinGrowth:    cfg.LeakMinGrowth,
	}
	spoolDefaulted := false
	if cfg.IngestURL != "" || cfg.PyroscopeURL != "" {
		ccfg.IngestURL, ccfg.APIKey, ccfg.CAFile = cfg.IngestURL, cfg.APIKey, cfg.CAFile
		ccfg.PyroscopeURL, ccfg.PyroscopeUser, ccfg.PyroscopePassword = cfg.PyroscopeURL, cfg.PyroscopeUser, cfg.PyroscopePassword
		ccfg.PyroscopeToken, ccfg.PyroscopeTenantID = cfg.PyroscopeToken, cfg.PyroscopeTenantID
		ccfg.UserAgent = UserAgent()
		ccfg.ConnectTimeout, ccfg.RequestTimeout = cfg.ConnectTimeout, cfg.RequestTimeout
		ccfg.StopTimeout, ccfg.MaxSpoolBytes = cfg.StopTimeout, cfg.MaxSpoolBytes
		ccfg.SpoolDir = cfg.SpoolDir
		if ccfg.SpoolDir == "" {
			ccfg.SpoolDir, spoolDefaulted = defaultSpoolDir(cfg.ServiceName), true
		}
		ccfg.Source = source(cfg)
	}
	agent, err := core.New(ccfg)
	if err != nil && spoolDefaulted && ccfg.SpoolDir != "" && isSpoolError(err) {
		// The default spool folder is not usable here (a read-only home,
		// say): run with the batch queue in memory only, and say so.
		log.Warn("pprofio: no disk spool; undelivered batches will not survive a restart",
			"spool_dir", ccfg.SpoolDir, "err", err)
		ccfg.SpoolDir = ""
		agent, err = core.New(ccfg)
	}
	if err != nil {
		if isSpoolError(err) {
			return nil, origin.blame(&ConfigError{"SpoolDir", err.Error()})
		}
		return nil, fmt.Errorf("pprofio: %w", err)
	}
	// The span recorder is the agent's; the sink buffers spans in front of it.
	return &Profiler{cfg: cfg, log: log, agent: agent, spans: spans.On(agent.Spans())}, nil
}

// isSpoolError reports whether the core refused the spool folder.
func isSpoolError(err error) bool {
	var ce *core.Error
	return errors.As(err, &ce) && ce.Field == core.FieldSpoolDir
}

// processStart is when this package was initialized: close to the
// program's start, which Source.process_start_unix_nano reports.
var processStart = time.Now()

// UserAgent is the User-Agent header of uploads.
func UserAgent() string {
	return fmt.Sprintf("pprofio-go/%s (%s/%s; %s)", Version, runtime.GOOS, runtime.GOARCH, runtime.Version())
}

func source(cfg Config) core.Source {
	host, _ := os.Hostname()
	id := make([]byte, 16)
	if _, err := rand.Read(id); err != nil {
		binary.LittleEndian.PutUint64(id, uint64(time.Now().UnixNano()))
		binary.LittleEndian.PutUint64(id[8:], uint64(os.Getpid()))
	}
	return core.Source{
		Tags:           cfg.Tags,
		Hostname:       host,
		PID:            int64(os.Getpid()),
		InstanceID:     hex.EncodeToString(id),
		AgentVersion:   Version,
		RuntimeVersion: runtime.Version(),
		OS:             runtime.GOOS,
		Arch:           runtime.GOARCH,
		ProcessStart:   processStart,
	}
}

func defaultSpoolDir(service string) string {
	dir, err := os.UserCacheDir()
	if err != nil {
		return ""
	}
	return filepath.Join(dir, "pprofio", service)
}

var coreTypes = map[ProfileType]core.Type{
	ProfileCPU: core.CPU, ProfileHeap: core.Heap, ProfileGoroutine: core.Goroutine,
	ProfileMutex: core.Mutex, ProfileBlock: core.Block,
}

// SetBlockProfileRate sets the program's block profile rate, as
// runtime.SetBlockProfileRate does, and tells pprofio, which raises the
// rate during its block windows and puts the program's back after each.
// While a window is open the new rate takes effect when it ends.
func SetBlockProfileRate(rate int) { collector.SetBlockProfileRate(rate) }

// Start starts collecting. Cancelling ctx stops the Profiler as Stop does.
// It returns ErrStarted if called twice and ErrStopped after Stop.
func (p *Profiler) Start(ctx context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	switch {
	case p.agent == nil: // disabled
		return nil
	case p.stopped:
		return ErrStopped
	case p.started:
		return ErrStarted
	}
	if err := p.agent.Start(); err != nil {
		return fmt.Errorf("pprofio: start: %w", err)
	}
	p.started = true
	p.spans.Start()
	if spans.Active.CompareAndSwap(nil, p.spans) {
		spanHot.sink.Store(p.spans)
	} else {
		p.log.Warn("pprofio: another Profiler is running: this one records no spans")
	}
	p.done = make(chan struct{})
	c := collector.New(p.agent, p.log, collector.Rates{
		MutexFraction: p.cfg.MutexProfileFraction,
		BlockRate:     p.cfg.BlockProfileRate,
	})
	c.SetRecordsBound(p.cfg.MaxBufferBytes / 4)
	c.SetSpans(p.spans)
	go func() {
		defer close(p.done)
		c.Run()
	}()
	if ctx.Done() != nil {
		go func() {
			select {
			case <-ctx.Done():
				p.Stop()
			case <-p.done:
			}
		}()
	}
	p.log.Info("pprofio: started", "service", p.cfg.ServiceName, "sample_rate", p.cfg.SampleRate,
		"cpu_duration", p.cfg.CPUDuration, "output_dir", p.cfg.OutputDir)
	return nil
}

// Stop ends collection: it closes the open CPU window, takes the final
// (partial) cycle's heap snapshot, and returns once every profile has been
// written. It is safe to call without Start, and more than once: later
// calls return what the first returned.
func (p *Profiler) Stop() error {
	if p.agent == nil { // disabled
		return nil
	}
	p.stopMu.Lock()
	defer p.stopMu.Unlock()
	p.mu.Lock()
	if p.stopped {
		err := p.stopErr
		p.mu.Unlock()
		return err
	}
	p.stopped = true
	started := p.started
	p.mu.Unlock()

	// Spans that end from now on are not recorded.
	if spans.Active.CompareAndSwap(p.spans, nil) {
		spanHot.sink.CompareAndSwap(p.spans, nil)
	}
	p.spans.Close()
	var err error
	if started {
		p.agent.Stop()
		<-p.done
		if cerr := p.agent.Close(); cerr != nil {
			err = fmt.Errorf("pprofio: stop: %w", cerr)
		}
		// What the core said while closing (delivery, write errors).
		for cmd := p.agent.Next(); cmd.Op == core.OpLog; cmd = p.agent.Next() {
			p.log.Log(context.Background(), slog.Level(cmd.Level), cmd.Message)
		}
		if err != nil {
			p.log.Error("pprofio: stop", "err", err)
		}
	}
	p.freeMu.Lock()
	final := p.stats()
	p.spans.Free() // before the agent, which frees the recorder
	p.agent.Free()
	p.freed = true
	p.freeMu.Unlock()

	p.mu.Lock()
	p.stopErr, p.final = err, final
	p.mu.Unlock()
	if started {
		p.log.Info("pprofio: stopped", "cycles", final.Cycles, "profiles_written", final.ProfilesWritten)
	}
	return err
}

// Stats returns the agent's counters; after Stop, their final values.
func (p *Profiler) Stats() Stats {
	if p.agent == nil { // disabled
		return Stats{}
	}
	p.freeMu.RLock()
	defer p.freeMu.RUnlock()
	if p.freed {
		p.mu.Lock()
		defer p.mu.Unlock()
		return p.final
	}
	return p.stats()
}

func (p *Profiler) stats() Stats {
	var s Stats
	p.agent.ReadStats(&s)            // field by field, by name (see stats_test.go)
	s.SpansDropped += p.spans.Late() // ended after Stop began: they never reached the core
	return s
}
