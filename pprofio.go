// Package pprofio is a continuous profiler for Go programs.
//
// A program starts it once; from then on its CPU and heap profiles (and,
// when asked for, its goroutine, mutex and block profiles) are
// collected on a schedule and uploaded over HTTPS to the pprofio ingest
// service, or kept on local disk as files that `go tool pprof` opens, or
// both, for well under 1% of the program's CPU. The work that is not
// runtime/pprof itself (the schedule, the buffers, decompression and
// compression, the disk spool, the upload) runs in a C core on its own
// threads, off the Go heap, so the program's goroutines and garbage
// collector do not pay for it.
//
// # Quick start
//
//	cfg := pprofio.Config{
//		APIKey:      "your-api-key",
//		IngestURL:   "https://api.pprofio.com",
//		SampleRate:  60 * time.Second,
//		ServiceName: "my-service",
//		Tags:        map[string]string{"env": "prod"},
//	}
//	p, _ := pprofio.New(cfg)
//	ctx := context.Background()
//	p.Start(ctx)
//	defer p.Stop()
//
// # The cycle
//
// Every SampleRate (60 s by default) is one cycle. A cycle opens with a CPU
// profile of CPUDuration (10 s by default) and closes with a heap snapshot.
// The first cycle starts after a random delay of up to a tenth of
// SampleRate (StartJitter), so that a fleet started together does not
// profile in step. Stop ends the schedule early: it closes the open CPU
// window, takes the last heap snapshot, writes everything, and returns.
//
// # Deltas, windows and leaks
//
// Allocations, contention and blocking are totals since the process
// started in the Go runtime; the C core sends each cycle's share (heap
// alloc_*) or each window's (mutex, block). The mutex profile fraction and
// block profile rate are raised only during the window and put back after
// it; a program that sets its own block rate should do it with
// SetBlockProfileRate. A goroutine count that keeps growing raises one
// goroutine_leak event per episode (LeakWindows, LeakMinGrowthPercent,
// LeakMinGrowth).
//
// # Local storage
//
// With OutputDir set, each profile is written to
//
//	OutputDir/<ServiceName>/<type>/<start>_<end>.pb.gz
//
// whole or not at all (temp file, fsync, rename), readable by the owner
// only. Names sort by time; start and end are the profile's window in UTC:
//
//	go tool pprof -top pprofio-data/my-service/cpu/20261129T214117.123Z_20261129T214127.123Z.pb.gz
//
// # Delivery
//
// Each cycle's profiles go to IngestURL as one gzipped batch. A batch is
// written to the disk spool (SpoolDir) first and deleted once the service
// has accepted it, so an outage, a restart or a crash loses nothing that
// fits in MaxSpoolBytes; a later process with the same SpoolDir sends what
// an earlier one left. Failed uploads are retried oldest first, after
// Retry-After or with exponential backoff and full jitter; a refused API
// key pauses uploads for a minute or more. Stop spends at most StopTimeout
// delivering the last batch. Everything lost on purpose (past a bound, or
// refused by the service) is counted in Stats and reported to the service
// in a data_dropped event.
//
// # The program's own CPU profiling
//
// A process has one CPU profiler. When the program holds it (its own
// pprof.StartCPUProfile, or a /debug/pprof/profile request) as a window
// opens, pprofio skips that window, logs why, and counts it in
// Stats.ProfilesSkipped; it never stops a profile it did not start.
// Between windows the program can profile freely.
//
// # Spans
//
// Spans mark the program's own units of work ("checkout", "db.query"):
//
//	ctx, span := pprofio.StartSpan(ctx, "checkout", "tier", "gold")
//	defer span.End()
//
// While a span is open on a goroutine, the CPU and goroutine profiles'
// samples of that goroutine carry the pprof labels span=<name> and its
// tags, added to the labels the context already had, which are kept; End
// puts back those of the context the span started from. One span's flame
// graph is then
//
//	go tool pprof -tagfocus span=checkout cpu.pb.gz
//
// Every finished span's duration goes to the C core, which keeps count,
// total, min, max and a latency histogram (p50/p90/p99 within 3.125%) per
// name and tag set, and a bounded sample of finished spans per cycle,
// within MaxSpanBytes. Without a started Profiler, StartSpan returns ctx
// as it is and a nil *Span whose End does nothing.
//
// # Bounds
//
// The C core holds at most MaxBufferBytes of profile data in memory.
// Past that the oldest profile goes first, and each loss is logged and
// counted in Stats. pprofio never panics into the program: failures go to
// Config.Logger and to the counters.
//
// # Environment
//
// Operators can configure a service without touching its code. New fills
// each Config field left at its zero value from its variable, so a field
// set in code wins, and a Config{} with only the environment set works:
//
//	PPROFIO_SERVICE_NAME   ServiceName
//	PPROFIO_API_KEY        APIKey
//	PPROFIO_INGEST_URL     IngestURL
//	PPROFIO_TAGS           Tags, as env=prod,region=eu
//	PPROFIO_SAMPLE_RATE    SampleRate, as 60s or 1m
//	PPROFIO_CPU_DURATION   CPUDuration, as 10s
//	PPROFIO_PROFILES       Profiles, as cpu,heap,goroutine,mutex,block
//	PPROFIO_OUTPUT_DIR     OutputDir
//	PPROFIO_SPOOL_DIR      SpoolDir
//	PPROFIO_CA_FILE        CAFile
//	PPROFIO_PYROSCOPE_URL, PPROFIO_PYROSCOPE_USER, PPROFIO_PYROSCOPE_PASSWORD,
//	PPROFIO_PYROSCOPE_TOKEN, PPROFIO_PYROSCOPE_TENANT_ID   the Pyroscope* fields
//
// An empty variable counts as unset. A bad value is a *ConfigError whose
// message names the variable. PPROFIO_ENABLED=false turns the agent off:
// New, Start and Stop then succeed and do nothing.
//
// # Building and deploying
//
// The core is compiled by cgo with the package. Building needs a C
// compiler, the static archives and headers of zlib and protobuf-c, and
// libcurl's headers (Debian/Ubuntu: gcc, zlib1g-dev, libprotobuf-c-dev,
// libcurl4-openssl-dev). Without cgo the package still compiles, and New
// returns an error that says why and lists them.
//
// zlib and protobuf-c are linked into the program, so the only shared
// library it needs is the C library (build with -tags pprofio_shared to
// link them as shared libraries where their static archives are missing). libcurl, for uploads, is loaded at
// run time (libcurl.so.4, 7.68.0 or newer; Debian/Ubuntu package libcurl4,
// plus ca-certificates): linked, a host without it or one of the libraries
// behind it would refuse to start the program, and the TLS stack would
// stop being the host's to update. On a host without a usable libcurl the
// program runs as usual, profiles are written locally, pprofio logs once
// that uploads are off and why, Stats.UploadsOff is true, and batches wait
// in SpoolDir (with an uploads_off event) for a process that can send
// them. See Deploying in the README for runtime images and a Dockerfile.
package pprofio

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

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

	// CAFile is a PEM bundle of certificates to trust for IngestURL
	// instead of the system's (a private CA). Verification is never off.
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
	// ConnectTimeout bounds connecting to IngestURL (default 10 s);
	// RequestTimeout bounds a whole upload (default 30 s).
	ConnectTimeout time.Duration
	RequestTimeout time.Duration

	// PyroscopeURL is the base URL of a Grafana Pyroscope server (or
	// Grafana Cloud Profiles), e.g. "https://profiles-prod-001.grafana.net";
	// profiles are pushed to {PyroscopeURL}/push.v1.PusherService/Push.
	// The same rules as IngestURL apply. Pushing to Pyroscope is not
	// delivered by this version yet: New checks these fields as Pyroscope
	// would and then refuses a Config that sets PyroscopeURL, rather than
	// accept profiles it would not send.
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

	// CPU time spent by the core's threads (their thread CPU clocks).
	CPUScheduler time.Duration
	CPUOutput    time.Duration // writing files, encoding and gzipping batches
	CPUUpload    time.Duration

	// Spans (StartSpan).
	SpansRecorded   uint64 // finished spans handed to the core
	SpansSampled    uint64 // spans kept in a cycle's timeline
	SpansDropped    uint64 // spans lost: ended while Stop ran (later ones are not counted), or malformed
	SpansOverflowed uint64 // spans past the cardinality or MaxSpanBytes bound, aggregated in the overflow series
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
		Types:          types,

		LeakWindows:      cfg.LeakWindows,
		LeakMinGrowthPct: cfg.LeakMinGrowthPercent,
		LeakMinGrowth:    cfg.LeakMinGrowth,
	}
	spoolDefaulted := false
	if cfg.IngestURL != "" {
		ccfg.IngestURL, ccfg.APIKey, ccfg.CAFile = cfg.IngestURL, cfg.APIKey, cfg.CAFile
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
	if err != nil && spoolDefaulted && ccfg.SpoolDir != "" && strings.HasPrefix(err.Error(), "spool:") {
		// The default spool folder is not usable here (a read-only home,
		// say): run with the batch queue in memory only, and say so.
		log.Warn("pprofio: no disk spool; undelivered batches will not survive a restart",
			"spool_dir", ccfg.SpoolDir, "err", err)
		ccfg.SpoolDir = ""
		agent, err = core.New(ccfg)
	}
	if err != nil {
		if strings.HasPrefix(err.Error(), "spool:") {
			return nil, origin.blame(&ConfigError{"SpoolDir", err.Error()})
		}
		return nil, fmt.Errorf("pprofio: %w", err)
	}
	sink, err := spans.New(core.SpanConfig{MaxBytes: cfg.MaxSpanBytes})
	if err != nil {
		agent.Free()
		return nil, fmt.Errorf("pprofio: spans: %w", err)
	}
	return &Profiler{cfg: cfg, log: log, agent: agent, spans: sink}, nil
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
	if !spans.Active.CompareAndSwap(nil, p.spans) {
		p.log.Warn("pprofio: another Profiler is running: this one records no spans")
	}
	p.done = make(chan struct{})
	c := collector.New(p.agent, p.log, collector.Rates{
		MutexFraction: p.cfg.MutexProfileFraction,
		BlockRate:     p.cfg.BlockProfileRate,
	})
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
	spans.Active.CompareAndSwap(p.spans, nil)
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
	p.agent.Free()
	p.spans.Free()
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
	s := p.agent.Stats()
	sp := p.spans.Stats()
	return Stats{
		SpansRecorded:          sp.Recorded,
		SpansSampled:           sp.Sampled,
		SpansDropped:           sp.Dropped + p.spans.Late(),
		SpansOverflowed:        sp.Overflowed,
		Cycles:                 s.Cycles,
		ProfilesCollected:      s.ProfilesCollected,
		ProfilesWritten:        s.ProfilesWritten,
		ProfilesSkipped:        s.ProfilesSkipped,
		ProfilesDroppedMemory:  s.ProfilesDroppedMemory,
		ProfilesDroppedInvalid: s.ProfilesDroppedInvalid,
		ProfilesDroppedWrite:   s.ProfilesDroppedWrite,
		ProfilesDroppedNoSink:  s.ProfilesDroppedNoSink,
		BytesDropped:           s.BytesDropped,
		BytesReceived:          s.BytesReceived,
		BytesWritten:           s.BytesWritten,
		BufferedBytes:          s.BufferedBytes,
		BufferedBytesPeak:      s.BufferedBytesPeak,
		LogsDropped:            s.LogsDropped,
		BatchesQueued:          s.BatchesQueued,
		BatchesSent:            s.BatchesSent,
		BatchesRetried:         s.BatchesRetried,
		BatchesSplit:           s.BatchesSplit,
		BatchesDroppedRejected: s.BatchesDroppedRejected,
		BatchesDroppedSpool:    s.BatchesDroppedSpool,
		BatchesDroppedCorrupt:  s.BatchesDroppedCorrupt,
		BatchesAdopted:         s.BatchesAdopted,
		ProfilesDroppedUpload:  s.ProfilesDroppedUpload,
		BytesSent:              s.BytesSent,
		SpoolErrors:            s.SpoolErrors,
		EventsDropped:          s.EventsDropped,
		SpoolBytes:             s.SpoolBytes,
		QueuedBatches:          s.QueuedBatches,
		UploadsOff:             s.UploadsOff,
		Deltas:                 s.Deltas,
		DeltasFailed:           s.DeltasFailed,
		GoroutineLeaks:         s.GoroutineLeaks,
		Goroutines:             s.Goroutines,
		BaselineBytes:          s.BaselineBytes,
		CPUDelta:               s.CPUDelta,
		CPUScheduler:           s.CPUScheduler,
		CPUOutput:              s.CPUOutput,
		CPUUpload:              s.CPUUpload,
	}
}

// normalize checks cfg and fills in its defaults.
func normalize(cfg Config) (Config, error) {
	if err := checkServiceName(cfg.ServiceName); err != nil {
		return cfg, err
	}
	if cfg.SampleRate == 0 {
		cfg.SampleRate = DefaultSampleRate
	}
	if cfg.SampleRate < MinSampleRate {
		return cfg, &ConfigError{"SampleRate", fmt.Sprintf("%v is under the minimum of %v", cfg.SampleRate, MinSampleRate)}
	}
	if cfg.CPUDuration == 0 {
		cfg.CPUDuration = min(DefaultCPUDuration, cfg.SampleRate/6)
	}
	if cfg.CPUDuration <= 0 || cfg.CPUDuration > cfg.SampleRate {
		return cfg, &ConfigError{"CPUDuration", fmt.Sprintf("%v is not in (0, SampleRate=%v]", cfg.CPUDuration, cfg.SampleRate)}
	}
	if cfg.StartJitter == 0 {
		cfg.StartJitter = cfg.SampleRate / 10
	}
	if cfg.StartJitter > cfg.SampleRate {
		return cfg, &ConfigError{"StartJitter", fmt.Sprintf("%v is longer than SampleRate=%v", cfg.StartJitter, cfg.SampleRate)}
	}
	if cfg.MaxBufferBytes == 0 {
		cfg.MaxBufferBytes = DefaultMaxBufferBytes
	}
	if cfg.MaxBufferBytes < MinMaxBufferBytes {
		return cfg, &ConfigError{"MaxBufferBytes", fmt.Sprintf("%d is under the minimum of %d", cfg.MaxBufferBytes, MinMaxBufferBytes)}
	}
	if cfg.MaxSpanBytes == 0 {
		cfg.MaxSpanBytes = DefaultMaxSpanBytes
	}
	if cfg.MaxSpanBytes < MinMaxSpanBytes {
		return cfg, &ConfigError{"MaxSpanBytes", fmt.Sprintf("%d is under the minimum of %d", cfg.MaxSpanBytes, MinMaxSpanBytes)}
	}
	profiles, err := checkProfiles(cfg.Profiles)
	if err != nil {
		return cfg, err
	}
	cfg.Profiles = profiles
	if err := checkRates(&cfg); err != nil {
		return cfg, err
	}
	if err := checkTags(cfg.Tags); err != nil {
		return cfg, err
	}
	if cfg.IngestURL == "" && cfg.OutputDir == "" {
		return cfg, &ConfigError{"IngestURL", "neither IngestURL nor OutputDir is set: profiles would have nowhere to go"}
	}
	if cfg.IngestURL != "" {
		if err := checkIngestURL(cfg.IngestURL); err != nil {
			return cfg, err
		}
		if err := checkAPIKey(cfg.APIKey); err != nil {
			return cfg, err
		}
		if err := checkDelivery(&cfg); err != nil {
			return cfg, err
		}
	}
	if cfg.OutputDir != "" {
		dir, err := filepath.Abs(cfg.OutputDir)
		if err != nil {
			return cfg, &ConfigError{"OutputDir", err.Error()}
		}
		if err := checkWritableDir(dir); err != nil {
			return cfg, &ConfigError{"OutputDir", err.Error()}
		}
		cfg.OutputDir = dir
	}
	return cfg, nil
}

// checkWritableDir says why files could not be written under dir: the
// nearest folder on its path that exists (dir itself, or the parent it
// will be made in) must be a directory that takes a new file. A probe file
// is created and removed there, since root passes any mode-bit check.
func checkWritableDir(dir string) error {
	at := dir
	for {
		fi, err := os.Stat(at)
		if err == nil && fi.IsDir() {
			break
		}
		if err == nil && at == dir {
			return fmt.Errorf("%s exists and is not a directory", dir)
		}
		if err == nil {
			return fmt.Errorf("cannot create %s: %s is not a directory", dir, at)
		}
		if !errors.Is(err, os.ErrNotExist) || filepath.Dir(at) == at {
			return fmt.Errorf("cannot create %s: %v", dir, err)
		}
		at = filepath.Dir(at)
	}
	f, err := os.CreateTemp(at, ".pprofio-probe-*")
	if err != nil {
		return fmt.Errorf("cannot write in %s: %v", at, err)
	}
	name := f.Name()
	f.Close()
	return os.Remove(name)
}

func checkServiceName(s string) error {
	switch {
	case s == "":
		return &ConfigError{"ServiceName", "required"}
	case len(s) > MaxServiceNameLen:
		return &ConfigError{"ServiceName", fmt.Sprintf("longer than %d bytes", MaxServiceNameLen)}
	case s[0] == '.':
		return &ConfigError{"ServiceName", "must not start with '.'"}
	}
	for _, r := range s {
		if !(r < utf8.RuneSelf && (r == '.' || r == '_' || r == '-' || unicode.IsLetter(r) || unicode.IsDigit(r))) {
			return &ConfigError{"ServiceName", fmt.Sprintf("%q: only ASCII letters, digits, '.', '_' and '-' are allowed", s)}
		}
	}
	return nil
}

func checkProfiles(ps []ProfileType) ([]ProfileType, error) {
	if ps == nil {
		return []ProfileType{ProfileCPU, ProfileHeap}, nil
	}
	if len(ps) == 0 {
		return nil, &ConfigError{"Profiles", "empty: select at least one profile type (nil means the default)"}
	}
	seen := map[ProfileType]bool{}
	out := make([]ProfileType, 0, len(ps))
	for _, t := range ps {
		if _, ok := coreTypes[t]; !ok {
			return nil, &ConfigError{"Profiles", fmt.Sprintf("unknown profile type %q (supported: cpu, heap, goroutine, mutex, block)", t)}
		}
		if !seen[t] {
			seen[t] = true
			out = append(out, t)
		}
	}
	return out, nil
}

// checkRates fills in and checks the sampling rates and the leak rule.
func checkRates(cfg *Config) error {
	fields := []struct {
		name string
		v    *int
		def  int
		max  int
	}{
		{"MutexProfileFraction", &cfg.MutexProfileFraction, DefaultMutexProfileFraction, 1 << 30},
		{"BlockProfileRate", &cfg.BlockProfileRate, DefaultBlockProfileRate, 1 << 40},
		{"LeakWindows", &cfg.LeakWindows, DefaultLeakWindows, 1000},
		{"LeakMinGrowthPercent", &cfg.LeakMinGrowthPercent, DefaultLeakMinGrowthPercent, 1 << 20},
		{"LeakMinGrowth", &cfg.LeakMinGrowth, DefaultLeakMinGrowth, 1 << 30},
	}
	for _, f := range fields {
		if *f.v == 0 {
			*f.v = f.def
		}
		if *f.v < 0 || *f.v > f.max {
			return &ConfigError{f.name, fmt.Sprintf("%d is not in [1, %d]", *f.v, f.max)}
		}
	}
	return nil
}

func hasControl(s string) bool {
	return strings.ContainsFunc(s, unicode.IsControl)
}

func checkTags(tags map[string]string) error {
	if len(tags) > MaxTags {
		return &ConfigError{"Tags", fmt.Sprintf("%d tags; at most %d are allowed", len(tags), MaxTags)}
	}
	keys := make([]string, 0, len(tags))
	for k := range tags {
		keys = append(keys, k)
	}
	sort.Strings(keys) // report the same bad tag every time
	for _, k := range keys {
		v := tags[k]
		field := fmt.Sprintf("Tags[%q]", k)
		switch {
		case k == "":
			return &ConfigError{"Tags", "a tag key is empty"}
		case len(k) > MaxTagKeyLen:
			return &ConfigError{field, fmt.Sprintf("key longer than %d bytes", MaxTagKeyLen)}
		case !utf8.ValidString(k) || hasControl(k):
			return &ConfigError{field, "key has control characters or is not UTF-8"}
		case v == "":
			return &ConfigError{field, "value is empty"}
		case len(v) > MaxTagValueLen:
			return &ConfigError{field, fmt.Sprintf("value longer than %d bytes", MaxTagValueLen)}
		case !utf8.ValidString(v) || hasControl(v):
			return &ConfigError{field, "value has control characters or is not UTF-8"}
		}
	}
	return nil
}

func checkIngestURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return &ConfigError{"IngestURL", "not a URL: " + err.Error()}
	}
	if u.Host == "" {
		return &ConfigError{"IngestURL", fmt.Sprintf("%q has no host", raw)}
	}
	if u.User != nil {
		return &ConfigError{"IngestURL", "must not carry credentials; use APIKey"}
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return &ConfigError{"IngestURL", "must be a base URL without query or fragment"}
	}
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		if isLoopback(u.Hostname()) {
			return nil
		}
		return &ConfigError{"IngestURL", "http:// is allowed only to a loopback address; use https://"}
	default:
		return &ConfigError{"IngestURL", fmt.Sprintf("scheme %q: only https:// is allowed", u.Scheme)}
	}
}

// checkDelivery fills in and checks the upload fields.
func checkDelivery(cfg *Config) error {
	durations := []struct {
		name string
		v    *time.Duration
		def  time.Duration
	}{
		{"StopTimeout", &cfg.StopTimeout, DefaultStopTimeout},
		{"ConnectTimeout", &cfg.ConnectTimeout, DefaultConnectTimeout},
		{"RequestTimeout", &cfg.RequestTimeout, DefaultRequestTimeout},
	}
	for _, d := range durations {
		if *d.v == 0 {
			*d.v = d.def
		}
		if *d.v < time.Millisecond {
			return &ConfigError{d.name, fmt.Sprintf("%v is under 1ms", *d.v)}
		}
	}
	if cfg.MaxSpoolBytes == 0 {
		cfg.MaxSpoolBytes = DefaultMaxSpoolBytes
	}
	if cfg.MaxSpoolBytes < MinMaxSpoolBytes {
		return &ConfigError{"MaxSpoolBytes", fmt.Sprintf("%d is under the minimum of %d", cfg.MaxSpoolBytes, MinMaxSpoolBytes)}
	}
	if cfg.CAFile != "" {
		b, err := os.ReadFile(cfg.CAFile)
		if err != nil {
			return &ConfigError{"CAFile", err.Error()}
		}
		if !strings.Contains(string(b), "-----BEGIN CERTIFICATE-----") {
			return &ConfigError{"CAFile", cfg.CAFile + " holds no PEM certificate"}
		}
	}
	if cfg.SpoolDir != "" {
		dir, err := filepath.Abs(cfg.SpoolDir)
		if err != nil {
			return &ConfigError{"SpoolDir", err.Error()}
		}
		cfg.SpoolDir = dir
	}
	return nil
}

func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func checkAPIKey(key string) error {
	if key == "" {
		return &ConfigError{"APIKey", "required when IngestURL is set"}
	}
	if strings.ContainsFunc(key, func(r rune) bool { return r <= ' ' || r == 0x7f }) || !utf8.ValidString(key) {
		return &ConfigError{"APIKey", "has spaces or control characters"}
	}
	return nil
}
