/*
 * pprofio.h: the public API of the pprofio C core.
 *
 * The core runs the collection schedule, receives runtime/pprof output,
 * bounds the memory it keeps, and writes profiles out, on its own threads and
 * off the Go heap. The Go package drives it through this header only:
 *
 *   pprofio_agent_new      validate a config, build an agent (no threads yet)
 *   pprofio_agent_start    start the output (and, uploading, delivery) threads
 *   pprofio_agent_next     block until the next command for the Go collector
 *   pprofio_profile_*      stream one profile's bytes into C memory
 *   pprofio_agent_spans*   the span recorder the agent owns, and a cycle's spans
 *   pprofio_agent_stop     end the schedule: the final commands follow
 *   pprofio_agent_close    wait until every profile is written, join threads
 *   pprofio_agent_free     release everything (NULL is fine)
 *
 * Go asks, C answers: C never calls into Go. Every function that can fail
 * returns a pprofio_status and, where it takes one, fills a pprofio_error.
 */
#ifndef PPROFIO_H
#define PPROFIO_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define PPROFIO_VERSION "0.1.0"

/* Status codes. Zero is success; every failure is negative. */
typedef enum {
    PPROFIO_OK = 0,
    PPROFIO_ERR_INVALID = -1, /* a bad argument or config field */
    PPROFIO_ERR_NOMEM = -2,   /* an allocation failed */
    PPROFIO_ERR_IO = -3,      /* a system call failed */
    PPROFIO_ERR_STATE = -4,   /* called at the wrong time (e.g. start twice) */
    PPROFIO_ERR_FORMAT = -5,  /* bytes that are not what they claim to be */
    PPROFIO_ERR_LIMIT = -6,   /* a configured bound was reached */
    PPROFIO_ERR_CLOSED = -7   /* the agent is stopping or stopped */
} pprofio_status;

/* The config field an error is about (pprofio_error.field). */
typedef enum {
    PPROFIO_FIELD_NONE = 0,
    PPROFIO_FIELD_SERVICE_NAME = 1,
    PPROFIO_FIELD_PERIOD = 2,
    PPROFIO_FIELD_PROFILE_TYPES = 3,
    PPROFIO_FIELD_CPU_DURATION = 4,
    PPROFIO_FIELD_START_JITTER = 5,
    PPROFIO_FIELD_MAX_BUFFER_BYTES = 6,
    PPROFIO_FIELD_LEAK_RULE = 7,
    PPROFIO_FIELD_OUTPUT_DIR = 8,
    PPROFIO_FIELD_INGEST_URL = 9,
    PPROFIO_FIELD_API_KEY = 10,
    PPROFIO_FIELD_TIMEOUTS = 11,
    PPROFIO_FIELD_SPOOL_DIR = 12,
    PPROFIO_FIELD_MAX_SPOOL_BYTES = 13,
    PPROFIO_FIELD_INSTANCE_ID = 14,
    PPROFIO_FIELD_PYROSCOPE_URL = 15,
    PPROFIO_FIELD_PYROSCOPE_AUTH = 16 /* user, password, token or tenant ID */
} pprofio_config_field;

/*
 * An error: its code, the config field it is about (PPROFIO_FIELD_NONE
 * when none), and a message that names what failed. Callers branch on
 * code and field, never on the message.
 */
typedef struct {
    int code;
    int field;
    char msg[256];
} pprofio_error;

/* pprofio_version returns PPROFIO_VERSION as the core was compiled. */
const char *pprofio_version(void);

/* pprofio_strstatus returns a static description of a status code. */
const char *pprofio_strstatus(int status);

/* Profile types, as numbered by the ingest contract (ProfileType). */
typedef enum {
    PPROFIO_PROFILE_CPU = 1,
    PPROFIO_PROFILE_HEAP = 2,
    PPROFIO_PROFILE_GOROUTINE = 3,
    PPROFIO_PROFILE_MUTEX = 4,
    PPROFIO_PROFILE_BLOCK = 5,
    PPROFIO_PROFILE_CUSTOM = 6 /* the spans' start stacks and timings; written by the collector, never scheduled */
} pprofio_profile_type;

#define PPROFIO_PROFILE_MAX 6
#define PPROFIO_TYPE_BIT(t) (1u << (unsigned)(t))

/* pprofio_profile_name returns "cpu", "heap", ... or "unknown". */
const char *pprofio_profile_name(int type);

/* A clock the core reads and sleeps on. Tests inject a simulated one. */
typedef struct pprofio_clock pprofio_clock;

/* Who is sending: the Source of every UploadRequest. */
typedef struct {
    const char *const *tag_keys;   /* n_tags each */
    const char *const *tag_values;
    size_t n_tags;
    const char *service;
    const char *hostname;
    int64_t pid;
    const char *instance_id;       /* 32 lowercase hex characters */
    const char *agent_version;
    const char *runtime_version;   /* runtime.Version() */
    const char *os;                /* GOOS */
    const char *arch;              /* GOARCH */
    int64_t process_start_ns;
} pprofio_source;

/* Agent configuration. Strings are copied by pprofio_agent_new. */
typedef struct {
    const char *service_name; /* required; names the output folder */
    const char *output_dir;   /* local storage root; NULL or "" for none */
    /* Upload (NULL or "" ingest_url: none). */
    const char *ingest_url;   /* base URL; /v1/profiles is appended */
    const char *api_key;      /* sent only in the Authorization header */
    const char *ca_file;      /* PEM bundle to trust instead of the system's; NULL: system */
    const char *user_agent;
    int64_t connect_timeout_ns;
    int64_t request_timeout_ns;
    int64_t stop_timeout_ns;  /* how long close may spend delivering */
    const char *spool_dir;    /* crash-safe disk queue; NULL or "": memory only */
    int64_t max_spool_bytes;  /* per destination: Pyroscope's queue is <spool_dir>/pyroscope */
    /*
     * Grafana Pyroscope (NULL or "" pyroscope_url: none), a destination of
     * its own beside ingest_url, with the same TLS settings, timeouts and
     * spool bound. Basic auth (user and password) or a bearer token; the
     * tenant goes in X-Scope-OrgID. The secrets are sent only in the
     * Authorization header and never logged.
     */
    const char *pyroscope_url; /* base URL; /push.v1.PusherService/Push is appended */
    const char *pyroscope_user;
    const char *pyroscope_password;
    const char *pyroscope_token;
    const char *pyroscope_tenant_id;
    pprofio_source source;
    int64_t period_ns;        /* one cycle; >= 1 s */
    int64_t cpu_duration_ns;  /* CPU window per cycle; in (0, period_ns] */
    int64_t start_jitter_ns;  /* first cycle starts after U[0, this]; 0 = none */
    uint64_t jitter_seed;     /* 0 = seed from the system */
    int64_t max_buffer_bytes; /* bound on profile bytes held in memory */
    unsigned profile_types;   /* PPROFIO_TYPE_BIT(...) of each type to take */
    const pprofio_clock *clock; /* NULL = the system clock */
    /*
     * Goroutine leak rule: the count grew in each of the last leak_windows
     * cycles, by at least leak_min_growth_pct percent and leak_min_growth
     * goroutines over them. leak_windows 0 turns the rule off (the Go
     * package always sets it).
     */
    int leak_windows;
    int leak_min_growth_pct;
    int leak_min_growth;
    /*
     * Spans: the agent owns a span recorder (spans.h) bounded by
     * max_span_bytes, and the collector gets a SPANS command at each
     * cycle's end. 0 keeps no recorder (the Go package always sets it).
     */
    int64_t max_span_bytes;
} pprofio_config;

/* Commands handed to the Go collector, in the order it must run them. */
typedef enum {
    PPROFIO_CMD_NONE = 0,
    PPROFIO_CMD_CPU_START = 1, /* begin a CPU profile window */
    PPROFIO_CMD_CPU_STOP = 2,  /* end the window begun by CPU_START */
    PPROFIO_CMD_HEAP = 3,      /* take a heap snapshot */
    PPROFIO_CMD_LOG = 4,       /* log `message` at `level` */
    PPROFIO_CMD_EXIT = 5,      /* the agent has stopped: return */
    PPROFIO_CMD_MUTEX_START = 6, /* raise the mutex fraction, snapshot the window's base */
    PPROFIO_CMD_MUTEX_STOP = 7,  /* snapshot the window's end, put the fraction back */
    PPROFIO_CMD_BLOCK_START = 8, /* the same for the block profile rate */
    PPROFIO_CMD_BLOCK_STOP = 9,
    PPROFIO_CMD_GOROUTINE = 10,  /* take a goroutine snapshot */
    PPROFIO_CMD_SPANS = 11       /* the cycle ends: hand over the spans, write the custom profile */
} pprofio_command_op;

/* Log levels carried by PPROFIO_CMD_LOG; the same numbers as log/slog. */
enum { PPROFIO_LOG_DEBUG = -4, PPROFIO_LOG_INFO = 0, PPROFIO_LOG_WARN = 4, PPROFIO_LOG_ERROR = 8 };

typedef struct {
    int op;              /* pprofio_command_op */
    int64_t cycle;       /* the cycle the command belongs to, from 0 */
    int64_t at_ns;       /* when it was due (Unix ns) */
    int64_t window_start_ns; /* HEAP: when the cycle it closes began */
    int level;           /* PPROFIO_CMD_LOG only */
    char message[512];   /* PPROFIO_CMD_LOG only */
} pprofio_command;

/*
 * The core's counters, declared once: the struct pprofio_stats and the
 * table pprofio_stats_fields are both made from this list, and the Go
 * binding fills pprofio.Stats from the table by name (a test fails when
 * the two disagree). C(x) is a counter, a total since pprofio_agent_new;
 * G(x) a signed value (a gauge, or a CPU time). A name ending in _ns is
 * in nanoseconds.
 */
#define PPROFIO_STATS(C, G)                                                                  \
    C(cycles)                   /* cycles completed */                                      \
    C(profiles_collected)       /* profiles received whole */                               \
    C(profiles_written)         /* profile files written to output_dir */                   \
    C(profiles_skipped)         /* windows the collector could not take */                  \
    C(profiles_dropped_memory)  /* evicted by max_buffer_bytes */                           \
    C(profiles_dropped_invalid) /* bytes that did not inflate */                            \
    C(profiles_dropped_write)   /* output_dir write failed */                               \
    C(profiles_dropped_no_sink) /* no output configured for them */                         \
    C(profiles_dropped_upload)  /* in batches the uploader dropped */                       \
    C(batches_queued)           /* batches made for upload */                               \
    C(batches_sent)             /* accepted by the ingest service (or 409) */               \
    C(batches_retried)          /* attempts that will be tried again */                     \
    C(batches_split)            /* 413 answers split in two */                              \
    C(batches_dropped_rejected) /* 400, another 4xx, or too large alone */                  \
    C(batches_dropped_spool)    /* evicted by max_spool_bytes or the memory bound */        \
    C(batches_dropped_corrupt)  /* spool files that failed their checks */                  \
    C(batches_adopted)          /* taken over from an exited process's spool */             \
    C(bytes_sent)               /* request bodies uploaded */                               \
    C(spool_errors)             /* spool writes that failed (kept in memory) */             \
    C(events_dropped)           /* events lost to a full event list */                      \
    C(deltas)                   /* profiles sent as deltas */                               \
    C(deltas_failed)            /* profiles that did not decode: sent as they were */       \
    C(goroutine_leaks)          /* goroutine_leak events raised */                          \
    G(goroutines)               /* the goroutine count at the last snapshot */              \
    G(baseline_bytes)           /* memory held by delta baselines now */                    \
    G(records_bytes)            /* memory held by the collector's record tables now */      \
    G(records_bytes_peak)       /* the most they held */                                    \
    G(cpu_delta_ns)             /* part of cpu_output_ns spent on deltas */                 \
    G(cpu_scheduler_ns)         /* CPU time of the schedule (thread clocks) */              \
    G(cpu_output_ns)            /* of the output thread */                                  \
    G(cpu_upload_ns)            /* of the upload thread */                                  \
    G(spool_bytes)              /* bytes in the disk spool now */                           \
    G(queued_batches)           /* batches waiting for upload now */                        \
    C(bytes_dropped)            /* uncompressed bytes of all drops */                       \
    C(bytes_received)           /* gzipped bytes streamed in */                             \
    C(bytes_written)            /* gzipped bytes written to disk */                         \
    C(logs_dropped)             /* log lines lost to a full log queue */                    \
    G(buffered_bytes)           /* profile bytes held in memory now */                      \
    G(buffered_bytes_peak)      /* the most ever held */                                    \
    G(uploads_off)              /* 1: libcurl could not be loaded; batches stay queued */    \
    C(spans_recorded)           /* finished spans handed to the span recorder */            \
    C(spans_sampled)            /* spans put in a cycle's timeline */                       \
    C(spans_dropped)            /* spans lost (malformed records) */                        \
    C(spans_overflowed)         /* spans aggregated in the overflow series */               \
    C(pyroscope_batches_queued) /* pushes made for Pyroscope */                             \
    C(pyroscope_batches_sent)   /* accepted by Pyroscope */                                 \
    C(pyroscope_batches_retried) /* attempts that will be tried again */                    \
    C(pyroscope_batches_split)  /* 413 answers split by series */                           \
    C(pyroscope_batches_dropped_rejected) /* 400, another 4xx, too large alone */           \
    C(pyroscope_batches_dropped_old) /* older than Pyroscope takes (an hour) */             \
    C(pyroscope_batches_dropped_spool) /* evicted by the bound, or damaged files */          \
    C(pyroscope_batches_adopted) /* taken over from an exited process's spool */            \
    C(pyroscope_profiles_dropped) /* profiles in dropped pushes, or not encoded */          \
    C(pyroscope_bytes_sent)     /* request bodies uploaded to Pyroscope */                  \
    G(pyroscope_spool_bytes)    /* bytes in Pyroscope's disk spool now */                   \
    G(pyroscope_queued_batches) /* pushes waiting now */                                    \
    G(pyroscope_cpu_upload_ns)  /* CPU time of Pyroscope's upload thread */

#define PPROFIO_STAT_COUNTER_(name) uint64_t name;
#define PPROFIO_STAT_GAUGE_(name) int64_t name;
typedef struct {
    PPROFIO_STATS(PPROFIO_STAT_COUNTER_, PPROFIO_STAT_GAUGE_)
} pprofio_stats;

/* One field of pprofio_stats: its name, where it is, whether it is signed. */
typedef struct {
    const char *name;
    size_t offset;
    int is_signed;
} pprofio_stat_field;

/* pprofio_stats_fields returns the fields of pprofio_stats in order and their count in *n. */
const pprofio_stat_field *pprofio_stats_fields(size_t *n);

typedef struct pprofio_agent pprofio_agent;
typedef struct pprofio_profile_writer pprofio_profile_writer;
struct pprofio_spans;       /* the span recorder (csrc/spans.h) */
struct pprofio_spans_cycle; /* one cycle's spans, taken from it */

/*
 * pprofio_config_validate checks every field and names the first bad one in
 * err. It does not allocate.
 */
int pprofio_config_validate(const pprofio_config *cfg, pprofio_error *err);

/*
 * pprofio_agent_new validates cfg and builds an agent in *out. No thread runs
 * until pprofio_agent_start. On failure *out is NULL and err says why.
 */
int pprofio_agent_new(const pprofio_config *cfg, pprofio_agent **out, pprofio_error *err);

/*
 * pprofio_agent_start starts the schedule and the output thread (and the
 * delivery thread when uploading), once. The schedule has no thread: it
 * runs in pprofio_agent_next, where the collector waits.
 */
int pprofio_agent_start(pprofio_agent *a, pprofio_error *err);

/*
 * pprofio_agent_next blocks until the next command and copies it to *cmd;
 * while it waits it keeps the schedule (it sleeps until the next event is
 * due, or a log line or a stop arrives). After PPROFIO_CMD_EXIT every call returns EXIT at once, except that log
 * lines made later (by close) still come first: call it until EXIT after
 * close to drain them. Only one thread at a time may call it.
 */
int pprofio_agent_next(pprofio_agent *a, pprofio_command *cmd);

/*
 * pprofio_agent_stop ends the schedule. The collector then receives the
 * final partial cycle (CPU_STOP if a window is open, HEAP) and EXIT.
 * Calling it again, or before start, does nothing.
 */
void pprofio_agent_stop(pprofio_agent *a);

/*
 * pprofio_agent_close waits until the output thread has written every
 * profile collected, then joins the threads. Call it after the collector
 * has received EXIT (or was never started). It returns the first write
 * error of the final cycle, if any. Idempotent.
 */
int pprofio_agent_close(pprofio_agent *a, pprofio_error *err);

/* pprofio_agent_free releases the agent; NULL is fine. Closes first. */
void pprofio_agent_free(pprofio_agent *a);

/*
 * pprofio_agent_spans is the agent's span recorder (csrc/spans.h), which
 * the Go side records finished spans into; NULL when max_span_bytes is 0.
 * It lives as long as the agent.
 */
struct pprofio_spans *pprofio_agent_spans(pprofio_agent *a);

/*
 * pprofio_agent_spans_take hands over the spans of the cycle in progress
 * (a pprofio_spans_cycle, csrc/spans.h), to be encoded as the custom
 * profile of `cycle` and attached to it with pprofio_profile_attach_spans
 * (or freed with pprofio_spans_cycle_free). What the recorder lost this
 * cycle goes to the next batch's data_dropped event. *out is NULL when the
 * cycle recorded no span.
 */
int pprofio_agent_spans_take(pprofio_agent *a, struct pprofio_spans_cycle **out);

/* pprofio_agent_stats copies the counters. */
void pprofio_agent_stats(pprofio_agent *a, pprofio_stats *out);

/*
 * pprofio_agent_event adds an event (kind and attribute names as in the
 * ingest contract) to the next batch. keys/values hold n_attrs strings.
 */
void pprofio_agent_event(pprofio_agent *a, const char *kind, const char *message, const char *const *keys,
                         const char *const *values, size_t n_attrs);

/*
 * pprofio_agent_skip records that the collector could not take a profile
 * of `type` in `cycle` (reason: e.g. "cpu profiling already in use"). Its
 * profile_skipped event goes in the batch of that cycle (or a later one),
 * whenever it is reported.
 */
void pprofio_agent_skip(pprofio_agent *a, int type, int64_t cycle, const char *reason);

/* pprofio_agent_records_held sets records_bytes and records_bytes_peak (the collector's record tables). */
void pprofio_agent_records_held(pprofio_agent *a, int64_t bytes, int64_t peak);

/*
 * pprofio_profile_begin opens a writer for one profile of `type` covering a
 * window that began at start_ns (Unix ns). The bytes written must be one
 * gzip stream, as runtime/pprof writes it.
 */
int pprofio_profile_begin(pprofio_agent *a, int type, int64_t cycle, int64_t start_ns,
                          pprofio_profile_writer **out);

/* Flags of pprofio_profile_begin_ex. */
enum {
    /* The snapshot at a window's start: kept as the base the window's end is
     * measured against (mutex, block), never sent itself. */
    PPROFIO_PROFILE_BASELINE = 1,
    /* The bytes are raw pprof (not gzip) that the collector made from the
     * runtime's records: neither inflated nor subtracted by the core. */
    PPROFIO_PROFILE_RAW = 2,
    /* With PPROFIO_PROFILE_RAW: the profile is its window's delta (else totals). */
    PPROFIO_PROFILE_DELTA = 4
};

/* pprofio_profile_begin_ex is pprofio_profile_begin with flags. */
int pprofio_profile_begin_ex(pprofio_agent *a, int type, int64_t cycle, int64_t start_ns, int flags,
                             pprofio_profile_writer **out);

/*
 * pprofio_profile_write inflates len bytes into C memory. The bytes are
 * copied; the pointer is not kept. On failure the profile is dropped and
 * counted, and later writes fail too; pprofio_profile_finish must still be
 * called to release the writer.
 */
int pprofio_profile_write(pprofio_profile_writer *w, const void *p, size_t len);

/*
 * pprofio_profile_attach_spans gives a custom profile's writer the cycle
 * it encodes: its timeline goes into the batch's spans and the local
 * timeline file. The writer owns it from here, whatever happens.
 */
void pprofio_profile_attach_spans(pprofio_profile_writer *w, struct pprofio_spans_cycle *c);

/*
 * pprofio_profile_finish closes the writer. With ok != 0 the profile, whose
 * window ended at end_ns, is queued for output; with ok == 0 it is discarded
 * (the collector failed). Frees the writer in all cases.
 */
int pprofio_profile_finish(pprofio_profile_writer *w, int ok, int64_t end_ns);

#ifdef __cplusplus
}
#endif

#endif /* PPROFIO_H */
