// Package pprofio is a continuous profiler for Go programs.
//
// A program starts it once; from then on its CPU and heap profiles (and,
// when asked for, its goroutine, mutex and block profiles) are
// collected on a schedule and uploaded over HTTPS to the pprofio ingest
// service or pushed to Grafana Pyroscope, or kept on local disk as files
// that `go tool pprof` opens, or any of these together, for well under 1% of the program's CPU. The work that is not
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
// Each cycle's spans become its custom profile (type CUSTOM; stored as
// custom/<window>.pb.gz): a flame graph of where span time is spent, by
// the stacks where spans started (sample type wall, the default), and,
// since the ingest contract has no field for them, each name and tag set's
// timings as the sample types span_count, span_total, span_min, span_max,
// span_p50, span_p90 and span_p99, one sample per series whose frame is
// span:<name>{tags}:
//
//	go tool pprof -sample_index=span_p99 -top custom.pb.gz
//
// The sampled spans go in the batch's spans and in
// timeline/<window>.jsonl beside the profiles. Spans past the bound are
// counted in Stats and in the next batch's data_dropped event (reason
// span_bound).
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
// # Grafana Pyroscope
//
// With PyroscopeURL set, every cycle is also (or only) pushed to Grafana
// Pyroscope: POST {PyroscopeURL}/push.v1.PusherService/Push, one series
// per profile labelled __name__ (process_cpu, memory, goroutines, mutex,
// block), service_name, the Tags and __delta__="false", with HTTP basic
// auth (PyroscopeUser, PyroscopePassword), a bearer token (PyroscopeToken)
// and X-Scope-OrgID (PyroscopeTenantID) as configured. Pyroscope has its
// own queue under SpoolDir/pyroscope and its own retries and pauses, so
// neither destination delays or loses the other's data; Stats counts its
// side in the Pyroscope* fields. The service's CPU flame graph is the query
//
//	process_cpu:cpu:nanoseconds:cpu:nanoseconds{service_name="my-service"}
//
// # Inside
//
// Data flows one way through the C core, and C never calls into Go:
//
//	collector goroutine ── asks for its next command ──► agent (the schedule)
//	   │ runtime/pprof's gzipped bytes
//	   ▼
//	intake: inflate into memory reserved first (MaxBufferBytes)
//	   │ each finished cycle
//	   ▼
//	output thread: deltas, leak rule ──► OutputDir files
//	   │ one batch a cycle, gzipped once
//	   ▼
//	a delivery thread per destination: SpoolDir ──► HTTPS ──► IngestURL
//	                                   SpoolDir/pyroscope ──► PyroscopeURL
//
// Every stage records what it counts, drops and logs in one ledger: the
// counters are Stats, the losses ride the next batch as a data_dropped
// event, and log lines reach Config.Logger as commands the collector
// receives. The schedule has no thread: the collector goroutine, parked
// in the core between commands, waits there until the next event is due.
// The core's own threads are the output thread and one delivery thread
// for each of IngestURL and PyroscopeURL that is set.
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
