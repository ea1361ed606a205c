//go:build ignore

/*
 * agent.c: the agent handle. It owns three threads and one mutex:
 *
 *   scheduler thread  sleeps until the next event of the timeline (scheduler.c)
 *                     and queues it for the Go collector; it queues nothing
 *                     new until the collector has taken what is queued, so
 *                     a stalled collector never builds a backlog.
 *   output thread     takes the profiles of each finished cycle from the
 *                     memory spool (spool.c), writes them (store.c), and
 *                     wraps them in one batch for upload (batch.c) in the
 *                     batch queue (queue.c, on disk when spooling).
 *   upload thread     sends the oldest batch (upload.c) and does what the
 *                     ingest contract says with the answer: done, drop,
 *                     split, or wait (Retry-After, backoff, the 401 pause).
 *
 * The Go collector parks in pprofio_agent_next and streams each profile in
 * through a pprofio_profile_writer. Log lines from C travel to Go as LOG
 * commands through a small ring, so C never calls into Go.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "alloc.h"
#include "batch.h"
#include "clock.h"
#include "errors.h"
#include "gz.h"
#include "pprof.h"
#include "pprofio.h"
#include "queue.h"
#include "scheduler.h"
#include "spool.h"
#include "store.h"
#include "sysio.h"
#include "upload.h"

#define CMD_QUEUE 32 /* > PPROFIO_SCHED_MAX_EVENTS twice over */
#define LOG_QUEUE 32
#define MIN_BUFFER_BYTES (INT64_C(1) << 20)
#define MAX_SERVICE_NAME 128
/* Durations past a year are mistakes, and a deadline of now + INT64_MAX would overflow. */
#define MAX_DURATION_NS (INT64_C(366) * 24 * 3600 * PPROFIO_NS_PER_SEC)
#define MIN_TIMEOUT_NS INT64_C(1000000) /* libcurl counts in ms, and reads 0 as "no timeout" */
#define MAX_EVENTS 16
#define AUTH_PAUSE_NS (INT64_C(60) * PPROFIO_NS_PER_SEC)
#define SUPPORTED_TYPES                                                                                \
    (PPROFIO_TYPE_BIT(PPROFIO_PROFILE_CPU) | PPROFIO_TYPE_BIT(PPROFIO_PROFILE_HEAP) |                  \
     PPROFIO_TYPE_BIT(PPROFIO_PROFILE_GOROUTINE) | PPROFIO_TYPE_BIT(PPROFIO_PROFILE_MUTEX) |           \
     PPROFIO_TYPE_BIT(PPROFIO_PROFILE_BLOCK))
#define WINDOWED_TYPES                                                                                 \
    (PPROFIO_TYPE_BIT(PPROFIO_PROFILE_CPU) | PPROFIO_TYPE_BIT(PPROFIO_PROFILE_MUTEX) |                 \
     PPROFIO_TYPE_BIT(PPROFIO_PROFILE_BLOCK))
#define LEAK_MAX_WINDOWS 1000

enum { STATE_NEW, STATE_RUNNING, STATE_CLOSED };
enum { UP_HEALTHY, UP_FAILING, UP_AUTH };

/* Why data was lost, as reported in data_dropped events. */
enum { LOSS_MEMORY, LOSS_INVALID, LOSS_WRITE, LOSS_REJECTED, LOSS_TOO_LARGE, LOSS_SPOOL, LOSS_CORRUPT, LOSS_N };
static const char *const loss_reason[LOSS_N] = {"memory_bound", "invalid_profile", "local_write_failed",
                                                "rejected", "too_large", "spool_bound", "corrupt_spool_file"};

typedef struct {
    uint64_t profiles, batches, bytes;
} loss;

/* An owned copy of a pprofio_source. */
typedef struct {
    pprofio_source s;
    char **keys, **values;
    char *strs[7];
} source_copy;

typedef struct {
    int level;
    char msg[512];
} log_line;

struct pprofio_agent {
    char *service;
    char *output_dir; /* NULL: no local storage */
    int64_t period_ns, cpu_ns, jitter_ns, max_buffer;
    unsigned types;
    uint64_t rng;
    const pprofio_clock *clock;

    pthread_mutex_t mu;
    pthread_cond_t cmd_cond;   /* the collector: a command or a log line */
    pthread_cond_t sched_cond; /* the scheduler: a deadline, a stop, an empty queue */
    pthread_cond_t out_cond;   /* the output thread: a sealed cycle, closing */
    pthread_cond_t up_cond;    /* the upload thread: a batch, a deadline, closing */
    int sync_ready;

    int state;
    int stop_requested;
    int exit_queued;   /* EXIT is in (or has left) the command queue */
    int exit_taken;    /* the collector has received EXIT */
    int closing;
    pthread_t sched_thread, out_thread, up_thread;
    int sched_started, out_started, up_started;

    pprofio_sched sched;
    pprofio_sched_event cmds[CMD_QUEUE];
    size_t cmd_head, cmd_len;
    log_line logs[LOG_QUEUE];
    size_t log_head, log_len;

    pprofio_spool spool;
    int64_t sealed_before; /* profiles of cycles before this are ready */
    int64_t evict_logged_cycle;
    int write_failing;
    int no_sink_logged;
    pprofio_error final_err;
    pprofio_stats stats;

    /* upload: NULL uploader and queue when there is no ingest URL */
    pprofio_uploader *uploader;
    pprofio_queue *queue;
    source_copy source;
    uint64_t sequence;
    uint64_t rng_up;
    int up_closing;
    int up_reported; /* closing: the batch of the last losses is made */
    int64_t up_deadline;
    int64_t stop_timeout_ns;
    int up_state;
    int up_attempt;
    int64_t up_next_at;
    int up_next_forced; /* up_next_at is a Retry-After or the 401/403 pause, not a backoff */
    pprofio_event events[MAX_EVENTS];
    int64_t event_cycle[MAX_EVENTS]; /* the cycle whose batch carries it; -1: the next batch */
    size_t n_events;
    loss losses[LOSS_N]; /* since the last batch */

    /* deltas and the leak rule: touched by the output thread only */
    pprofio_baseline *baselines[PPROFIO_PROFILE_MAX + 1];
    int leak_windows, leak_min_growth_pct, leak_min_growth;
    pprofio_stack_count *leak_prev, *leak_base; /* the last snapshot; the one before the growth began */
    size_t leak_prev_n, leak_base_n;
    int64_t leak_prev_total, leak_base_total;
    int leak_streak, leak_episode, leak_have_prev;
    int base_warned[PPROFIO_PROFILE_MAX + 1];
};

struct pprofio_profile_writer {
    pprofio_agent *a;
    pprofio_profile *p;
    pprofio_gunzip *gz;
    int failed;
};

/* ---- configuration ---------------------------------------------------- */

static int valid_service_char(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '_' || c == '-';
}

int pprofio_config_validate(const pprofio_config *cfg, pprofio_error *err) {
    if (!cfg)
        return pprofio_set_error(err, PPROFIO_ERR_INVALID, "config: NULL");
    const char *s = cfg->service_name;
    if (!s || !*s)
        return pprofio_set_error(err, PPROFIO_ERR_INVALID, "service_name: required");
    size_t n = strlen(s);
    if (n > MAX_SERVICE_NAME)
        return pprofio_set_error(err, PPROFIO_ERR_INVALID, "service_name: longer than %d bytes",
                                 MAX_SERVICE_NAME);
    if (s[0] == '.')
        return pprofio_set_error(err, PPROFIO_ERR_INVALID, "service_name: must not start with '.'");
    for (size_t i = 0; i < n; i++)
        if (!valid_service_char(s[i]))
            return pprofio_set_error(err, PPROFIO_ERR_INVALID,
                                     "service_name: only letters, digits, '.', '_' and '-' are allowed");
    if (cfg->period_ns < PPROFIO_NS_PER_SEC || cfg->period_ns > MAX_DURATION_NS)
        return pprofio_set_error(err, PPROFIO_ERR_INVALID, "period_ns: must be in [1 s, 366 days]");
    if ((cfg->profile_types & ~SUPPORTED_TYPES) != 0)
        return pprofio_set_error(err, PPROFIO_ERR_INVALID, "profile_types: unsupported profile type");
    if (cfg->profile_types == 0)
        return pprofio_set_error(err, PPROFIO_ERR_INVALID, "profile_types: none selected");
    if ((cfg->profile_types & WINDOWED_TYPES) &&
        (cfg->cpu_duration_ns <= 0 || cfg->cpu_duration_ns > cfg->period_ns))
        return pprofio_set_error(err, PPROFIO_ERR_INVALID, "cpu_duration_ns: must be in (0, period_ns]");
    if (cfg->start_jitter_ns < 0 || cfg->start_jitter_ns > cfg->period_ns)
        return pprofio_set_error(err, PPROFIO_ERR_INVALID, "start_jitter_ns: must be in [0, period_ns]");
    if (cfg->max_buffer_bytes < MIN_BUFFER_BYTES)
        return pprofio_set_error(err, PPROFIO_ERR_INVALID, "max_buffer_bytes: must be at least %lld",
                                 (long long)MIN_BUFFER_BYTES);
    if (cfg->leak_windows < 0 || cfg->leak_windows > LEAK_MAX_WINDOWS || cfg->leak_min_growth_pct < 0 ||
        cfg->leak_min_growth < 0)
        return pprofio_set_error(err, PPROFIO_ERR_INVALID,
                                 "leak rule: windows in [0, %d], growth and percentage >= 0", LEAK_MAX_WINDOWS);
    if (cfg->stop_timeout_ns < 0 || cfg->stop_timeout_ns > MAX_DURATION_NS) /* close counts on it, uploads or not */
        return pprofio_set_error(err, PPROFIO_ERR_INVALID, "stop_timeout_ns: must be in [0, 366 days]");
    if (cfg->output_dir && strlen(cfg->output_dir) > 3072)
        return pprofio_set_error(err, PPROFIO_ERR_INVALID, "output_dir: path too long");
    if (cfg->ingest_url && *cfg->ingest_url) {
        if (strncmp(cfg->ingest_url, "https://", 8) != 0 && strncmp(cfg->ingest_url, "http://", 7) != 0)
            return pprofio_set_error(err, PPROFIO_ERR_INVALID, "ingest_url: must be https:// (or http:// to loopback)");
        if (strlen(cfg->ingest_url) > 2048)
            return pprofio_set_error(err, PPROFIO_ERR_INVALID, "ingest_url: too long");
        if (cfg->api_key && strpbrk(cfg->api_key, "\r\n"))
            return pprofio_set_error(err, PPROFIO_ERR_INVALID, "api_key: has a line break");
        if (cfg->connect_timeout_ns < MIN_TIMEOUT_NS || cfg->request_timeout_ns < MIN_TIMEOUT_NS ||
            cfg->connect_timeout_ns > MAX_DURATION_NS || cfg->request_timeout_ns > MAX_DURATION_NS)
            return pprofio_set_error(err, PPROFIO_ERR_INVALID,
                                     "timeouts: connect and request must be in [1 ms, 366 days]");
        if (cfg->spool_dir && *cfg->spool_dir && cfg->max_spool_bytes < MIN_BUFFER_BYTES)
            return pprofio_set_error(err, PPROFIO_ERR_INVALID, "max_spool_bytes: must be at least %lld",
                                     (long long)MIN_BUFFER_BYTES);
        if (cfg->spool_dir && *cfg->spool_dir && !pprofio_batch_id_valid(cfg->source.instance_id))
            return pprofio_set_error(err, PPROFIO_ERR_INVALID, "source.instance_id: must be 32 lowercase hex characters");
    }
    return PPROFIO_OK;
}

/* ---- construction ----------------------------------------------------- */

static uint64_t seed_from_system(void) {
    uint64_t seed = 0;
    if (getrandom(&seed, sizeof seed, GRND_NONBLOCK) != (ssize_t)sizeof seed) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        seed = (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 20) ^ (uint64_t)getpid();
    }
    return seed;
}

static int init_sync(pprofio_agent *a) {
    if (pthread_mutex_init(&a->mu, NULL) != 0)
        return PPROFIO_ERR_NOMEM;
    pthread_cond_t *conds[] = {&a->cmd_cond, &a->sched_cond, &a->out_cond, &a->up_cond};
    size_t made = 0;
    for (; made < 4; made++)
        if (pprofio_cond_init(conds[made]) != 0)
            break;
    if (made == 4) {
        a->sync_ready = 1;
        return PPROFIO_OK;
    }
    while (made > 0)
        pthread_cond_destroy(conds[--made]);
    pthread_mutex_destroy(&a->mu);
    return PPROFIO_ERR_NOMEM;
}

static char *dup_str(const char *s, int *failed) {
    char *d = pprofio_strdup(s ? s : "");
    if (!d)
        *failed = 1;
    return d;
}

static void source_free(source_copy *c) {
    for (size_t i = 0; i < c->s.n_tags; i++) {
        pprofio_free(c->keys ? c->keys[i] : NULL);
        pprofio_free(c->values ? c->values[i] : NULL);
    }
    pprofio_free(c->keys);
    pprofio_free(c->values);
    for (size_t i = 0; i < 7; i++)
        pprofio_free(c->strs[i]);
    memset(c, 0, sizeof *c);
}

static int source_dup(source_copy *c, const pprofio_source *s, const char *service) {
    int failed = 0;
    memset(c, 0, sizeof *c);
    const char *in[7] = {service, s->hostname, s->instance_id, s->agent_version, s->runtime_version, s->os, s->arch};
    for (size_t i = 0; i < 7; i++)
        c->strs[i] = dup_str(in[i], &failed);
    c->keys = pprofio_calloc(s->n_tags + 1, sizeof *c->keys);
    c->values = pprofio_calloc(s->n_tags + 1, sizeof *c->values);
    if (!c->keys || !c->values)
        failed = 1;
    for (size_t i = 0; !failed && i < s->n_tags; i++) {
        c->keys[i] = dup_str(s->tag_keys[i], &failed);
        c->values[i] = dup_str(s->tag_values[i], &failed);
        c->s.n_tags = i + 1;
    }
    c->s.service = c->strs[0];
    c->s.hostname = c->strs[1];
    c->s.instance_id = c->strs[2];
    c->s.agent_version = c->strs[3];
    c->s.runtime_version = c->strs[4];
    c->s.os = c->strs[5];
    c->s.arch = c->strs[6];
    c->s.pid = s->pid;
    c->s.process_start_ns = s->process_start_ns;
    c->s.tag_keys = (const char *const *)c->keys;
    c->s.tag_values = (const char *const *)c->values;
    if (failed) {
        source_free(c);
        return PPROFIO_ERR_NOMEM;
    }
    return PPROFIO_OK;
}

/* open_upload builds the uploader and the batch queue (which opens the spool). */
static int open_upload(pprofio_agent *a, const pprofio_config *cfg, pprofio_error *err) {
    int rc = source_dup(&a->source, &cfg->source, cfg->service_name);
    if (rc != PPROFIO_OK)
        return pprofio_set_error(err, rc, "agent: out of memory");
    rc = pprofio_uploader_new(cfg, &a->uploader, err);
    if (rc != PPROFIO_OK)
        return rc;
    return pprofio_queue_open(cfg->spool_dir, cfg->source.instance_id, cfg->max_spool_bytes,
                              cfg->max_buffer_bytes, &a->queue, err);
}

int pprofio_agent_new(const pprofio_config *cfg, pprofio_agent **out, pprofio_error *err) {
    if (!out)
        return pprofio_set_error(err, PPROFIO_ERR_INVALID, "out: NULL");
    *out = NULL;
    int rc = pprofio_config_validate(cfg, err);
    if (rc != PPROFIO_OK)
        return rc;
    pprofio_agent *a = pprofio_calloc(1, sizeof *a);
    if (!a)
        return pprofio_set_error(err, PPROFIO_ERR_NOMEM, "agent: out of memory");
    a->service = pprofio_strdup(cfg->service_name);
    if (cfg->output_dir && *cfg->output_dir)
        a->output_dir = pprofio_strdup(cfg->output_dir);
    if (!a->service || (cfg->output_dir && *cfg->output_dir && !a->output_dir) ||
        init_sync(a) != PPROFIO_OK) {
        pprofio_agent_free(a);
        return pprofio_set_error(err, PPROFIO_ERR_NOMEM, "agent: out of memory");
    }
    a->period_ns = cfg->period_ns;
    a->cpu_ns = cfg->cpu_duration_ns;
    a->jitter_ns = cfg->start_jitter_ns;
    a->max_buffer = cfg->max_buffer_bytes;
    a->types = cfg->profile_types;
    a->rng = cfg->jitter_seed ? cfg->jitter_seed : seed_from_system();
    a->rng_up = a->rng ^ UINT64_C(0x5DEECE66D);
    a->clock = cfg->clock ? cfg->clock : pprofio_clock_system();
    a->evict_logged_cycle = -1;
    a->stop_timeout_ns = cfg->stop_timeout_ns;
    a->leak_windows = cfg->leak_windows ? cfg->leak_windows : 5;
    a->leak_min_growth_pct = cfg->leak_min_growth_pct ? cfg->leak_min_growth_pct : 20;
    a->leak_min_growth = cfg->leak_min_growth ? cfg->leak_min_growth : 50;
    pprofio_spool_init(&a->spool, cfg->max_buffer_bytes);
    if (cfg->ingest_url && *cfg->ingest_url && (rc = open_upload(a, cfg, err)) != PPROFIO_OK) {
        pprofio_agent_free(a);
        return rc;
    }
    *out = a;
    return PPROFIO_OK;
}

/* ---- logging, events and the command queue (mu held) ----------------- */

static void log_locked(pprofio_agent *a, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void log_locked(pprofio_agent *a, int level, const char *fmt, ...) {
    if (a->log_len == LOG_QUEUE) { /* Go drains the ring, after close too */
        a->stats.logs_dropped++;
        return;
    }
    log_line *l = &a->logs[(a->log_head + a->log_len) % LOG_QUEUE];
    l->level = level;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(l->msg, sizeof l->msg, fmt, ap);
    va_end(ap);
    a->log_len++;
    pthread_cond_signal(&a->cmd_cond);
}

/* event_locked adds an event to the next batch (when uploading). */
static pprofio_event *event_locked(pprofio_agent *a, const char *kind, const char *message) {
    if (!a->queue)
        return NULL;
    if (a->n_events == MAX_EVENTS) {
        a->stats.events_dropped++;
        return NULL;
    }
    a->event_cycle[a->n_events] = -1;
    pprofio_event *ev = &a->events[a->n_events++];
    pprofio_event_init(ev, kind, a->clock->now_ns(a->clock), message);
    return ev;
}

/*
 * report_off_locked says once, in the log, the stats and an event, that
 * this process cannot upload (no usable libcurl). Batches are still made
 * and kept (in the spool when there is one) for a process that can send
 * them; the event travels with them.
 */
static void report_off_locked(pprofio_agent *a) {
    const char *why = pprofio_uploader_off(a->uploader);
    if (!why)
        return;
    a->stats.uploads_off = 1;
    log_locked(a, PPROFIO_LOG_ERROR,
               "pprofio: uploads are off: %s; batches are kept in the spool for a process that can send them", why);
    pprofio_event *ev = event_locked(a, "uploads_off", why);
    if (ev)
        pprofio_event_attr(ev, "reason", why);
}

static void lose(pprofio_agent *a, int reason, uint64_t profiles, uint64_t batches, uint64_t bytes) {
    a->losses[reason].profiles += profiles;
    a->losses[reason].batches += batches;
    a->losses[reason].bytes += bytes;
}

/* report_losses turns the losses since the last batch into data_dropped events. */
static void report_losses(pprofio_agent *a) {
    for (int r = 0; r < LOSS_N; r++) {
        loss *l = &a->losses[r];
        if (l->profiles == 0 && l->batches == 0)
            continue;
        char msg[160];
        snprintf(msg, sizeof msg, "%llu profile(s) in %llu batch(es) dropped: %s",
                 (unsigned long long)l->profiles, (unsigned long long)l->batches, loss_reason[r]);
        pprofio_event *ev = event_locked(a, "data_dropped", msg);
        if (!ev)
            break;
        pprofio_event_attr_u64(ev, "profiles", l->profiles);
        pprofio_event_attr_u64(ev, "batches", l->batches);
        pprofio_event_attr_u64(ev, "bytes", l->bytes);
        pprofio_event_attr(ev, "reason", loss_reason[r]);
        *l = (loss){0};
    }
}

static void queue_events(pprofio_agent *a, const pprofio_sched_event *ev, size_t n) {
    for (size_t i = 0; i < n && a->cmd_len < CMD_QUEUE; i++) {
        a->cmds[(a->cmd_head + a->cmd_len) % CMD_QUEUE] = ev[i];
        a->cmd_len++;
        if (ev[i].op == PPROFIO_CMD_EXIT)
            a->exit_queued = 1;
    }
    pthread_cond_signal(&a->cmd_cond);
}

/* seal makes the profiles of `cycle` and before ready for output. */
static void seal(pprofio_agent *a, int64_t cycle) {
    if (cycle + 1 > a->sealed_before)
        a->sealed_before = cycle + 1;
    a->stats.cycles++;
    pthread_cond_signal(&a->out_cond);
}

/* thread_cpu_ns is the CPU time the calling thread has used. */
static int64_t thread_cpu_ns(void) {
    struct timespec ts;
    if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts) != 0)
        return 0;
    return (int64_t)ts.tv_sec * PPROFIO_NS_PER_SEC + ts.tv_nsec;
}

/* ---- the scheduler thread --------------------------------------------- */

static void *sched_main(void *arg) {
    pprofio_agent *a = arg;
    pprofio_sched_event ev[PPROFIO_SCHED_MAX_EVENTS];
    pthread_mutex_lock(&a->mu);
    while (!a->stop_requested) {
        if (a->cmd_len > 0) { /* the collector has not caught up yet */
            a->clock->wait_until(a->clock, &a->sched_cond, &a->mu, PPROFIO_FOREVER);
            continue;
        }
        int64_t at = pprofio_sched_next_at(&a->sched);
        if (a->clock->now_ns(a->clock) < at) {
            a->clock->wait_until(a->clock, &a->sched_cond, &a->mu, at);
            continue;
        }
        int64_t skipped = a->sched.skipped;
        size_t n = pprofio_sched_due(&a->sched, a->clock->now_ns(a->clock), ev);
        if (a->sched.skipped != skipped)
            log_locked(a, PPROFIO_LOG_WARN, "pprofio: the schedule fell behind; skipped %lld cycle(s)",
                       (long long)(a->sched.skipped - skipped));
        queue_events(a, ev, n);
        a->stats.cpu_ns_scheduler = thread_cpu_ns();
    }
    size_t n = pprofio_sched_stop(&a->sched, a->clock->now_ns(a->clock), ev);
    queue_events(a, ev, n);
    a->stats.cpu_ns_scheduler = thread_cpu_ns();
    pthread_mutex_unlock(&a->mu);
    return NULL;
}

/* ---- the output thread ------------------------------------------------ */

/* store_locally writes p under output_dir (mu held; released while writing). */
static void store_locally(pprofio_agent *a, pprofio_profile *p) {
    pprofio_error err = {0};
    size_t written = 0;
    pthread_mutex_unlock(&a->mu);
    int rc = pprofio_store_write(a->output_dir, a->service, p->type, p->start_ns, p->end_ns, p->raw.p,
                                 p->raw.len, &written, NULL, &err);
    pthread_mutex_lock(&a->mu);
    if (rc == PPROFIO_OK) {
        a->stats.profiles_written++;
        a->stats.bytes_written += written;
        if (a->write_failing) {
            a->write_failing = 0;
            log_locked(a, PPROFIO_LOG_INFO, "pprofio: writing profiles to %s again", a->output_dir);
        }
        return;
    }
    a->stats.profiles_dropped_write++;
    a->stats.bytes_dropped += p->raw.len;
    lose(a, LOSS_WRITE, 1, 0, p->raw.len);
    if (a->stop_requested && a->final_err.code == 0)
        a->final_err = err;
    if (!a->write_failing) {
        a->write_failing = 1;
        log_locked(a, PPROFIO_LOG_ERROR, "pprofio: cannot write profiles: %s", err.msg);
    }
}

/*
 * take_events moves into out the pending events that belong in the batch
 * of `cycle`: those of no cycle and those of this cycle or an earlier one.
 * An event of a later cycle (a skip reported at a cycle's start, before the
 * batch of the cycle before it is made) waits for its own (mu held).
 */
static size_t take_events(pprofio_agent *a, int64_t cycle, pprofio_event *out) {
    size_t n = 0, kept = 0;
    for (size_t i = 0; i < a->n_events; i++) {
        if (a->event_cycle[i] <= cycle) {
            out[n++] = a->events[i];
            continue;
        }
        a->event_cycle[kept] = a->event_cycle[i];
        a->events[kept++] = a->events[i];
    }
    a->n_events = kept;
    return n;
}

/* make_batch wraps one cycle's profiles and the pending events into a batch (mu held). */
static void make_batch(pprofio_agent *a, pprofio_profile **ps, size_t n) {
    report_losses(a);
    pprofio_event events[MAX_EVENTS];
    size_t n_events = take_events(a, n > 0 ? ps[0]->cycle : INT64_MAX, events);
    uint64_t seq = ++a->sequence;
    a->stats.batches_queued++;
    pthread_mutex_unlock(&a->mu);

    char id[PPROFIO_BATCH_ID_LEN + 1];
    pprofio_batch_id(id);
    pprofio_bytes body = {0};
    pprofio_error err = {0};
    int rc = pprofio_batch_encode(&a->source.s, id, seq, ps, n, events, n_events, &body, &err);
    pprofio_error qerr = {0};
    int qrc = rc == PPROFIO_OK ? pprofio_queue_push(a->queue, id, seq, (uint32_t)n, &body, 0, &qerr) : rc;
    pprofio_bytes_free(&body);

    pthread_mutex_lock(&a->mu);
    if (rc != PPROFIO_OK) {
        uint64_t bytes = 0;
        for (size_t i = 0; i < n; i++)
            bytes += ps[i]->raw.len;
        a->stats.profiles_dropped_memory += n;
        lose(a, LOSS_MEMORY, n, 1, bytes);
        log_locked(a, PPROFIO_LOG_ERROR, "pprofio: dropped a batch of %zu profile(s): %s", n, err.msg);
    } else if (qrc != PPROFIO_OK) {
        a->stats.spool_errors++;
        log_locked(a, PPROFIO_LOG_ERROR, "pprofio: %s", qerr.msg);
    }
    pthread_cond_signal(&a->up_cond);
}

/* deliver_cycle writes and batches the profiles of one cycle (mu held). */
static void deliver_cycle(pprofio_agent *a, pprofio_profile **ps, size_t n) {
    for (size_t i = 0; a->output_dir && i < n; i++)
        store_locally(a, ps[i]);
    if (a->queue) {
        make_batch(a, ps, n);
    } else if (!a->output_dir) {
        for (size_t i = 0; i < n; i++) {
            a->stats.profiles_dropped_no_sink++;
            a->stats.bytes_dropped += ps[i]->raw.len;
        }
        if (!a->no_sink_logged && n > 0) {
            a->no_sink_logged = 1;
            log_locked(a, PPROFIO_LOG_WARN, "pprofio: no output can take profiles; they are counted as dropped");
        }
    }
}

/* ---- deltas and the leak rule (output thread, mu not held) ------------ */

/* replace_raw swaps p's bytes for out's, keeping the memory bound's books. */
static void replace_raw(pprofio_agent *a, pprofio_profile *p, pprofio_bytes *out) {
    int64_t diff = (int64_t)out->cap - (int64_t)p->raw.cap;
    pprofio_bytes_free(&p->raw);
    p->raw = *out;
    *out = (pprofio_bytes){0};
    pthread_mutex_lock(&a->mu);
    a->spool.used += diff;
    if (a->spool.used > a->spool.peak)
        a->spool.peak = a->spool.used;
    pthread_mutex_unlock(&a->mu);
}

/*
 * make_delta turns a cumulative profile (heap, mutex, block) into this
 * window's share. The window-start snapshot of mutex and block only sets
 * the base. A profile that does not decode is sent as it is.
 */
static void make_delta(pprofio_agent *a, pprofio_profile *p) {
    int t = p->type;
    int baseline_only = (p->flags & PPROFIO_PROFILE_BASELINE) != 0;
    pprofio_bytes out = {0};
    pprofio_error err = {0};
    int is_delta = 0;
    size_t bound = (size_t)(a->max_buffer / 4);
    int rc = pprofio_pprof_delta(p->raw.p, p->raw.len, &a->baselines[t], !baseline_only, bound, &out, &is_delta,
                                 &err);
    int too_big = rc == PPROFIO_OK && a->baselines[t] == NULL; /* success keeps one unless over the bound */
    if (rc == PPROFIO_OK && is_delta) {
        replace_raw(a, p, &out);
        p->delta = 1;
    }
    pprofio_bytes_free(&out);
    if (t != PPROFIO_PROFILE_HEAP && !baseline_only) { /* the next window brings its own base */
        pprofio_baseline_free(a->baselines[t]);
        a->baselines[t] = NULL;
    }
    pthread_mutex_lock(&a->mu);
    if (too_big && !a->base_warned[t]) {
        a->base_warned[t] = 1;
        log_locked(a, PPROFIO_LOG_WARN,
                   "pprofio: the %s baseline needs more than %zu bytes (MaxBufferBytes/4); %s profiles are sent "
                   "as totals until it fits: raise MaxBufferBytes",
                   pprofio_profile_name(t), bound, pprofio_profile_name(t));
    }
    if (is_delta)
        a->stats.deltas++;
    if (rc != PPROFIO_OK) {
        a->stats.deltas_failed++;
        log_locked(a, PPROFIO_LOG_WARN, "pprofio: sending a %s profile as it is: %s", pprofio_profile_name(t),
                   err.msg);
    }
    int64_t held = 0;
    for (int i = 0; i <= PPROFIO_PROFILE_MAX; i++)
        held += (int64_t)pprofio_baseline_bytes(a->baselines[i]);
    a->stats.baseline_bytes = held;
    pthread_mutex_unlock(&a->mu);
}

/* growth_message lists the stacks whose counts grew most since base. */
static void growth_message(const pprofio_stack_count *base, size_t nb, const pprofio_stack_count *cur, size_t nc,
                           char *msg, size_t cap) {
    struct {
        int64_t growth;
        size_t i;
    } top[3] = {{0, 0}, {0, 0}, {0, 0}};
    size_t j = 0;
    for (size_t i = 0; i < nc; i++) {
        while (j < nb && base[j].key < cur[i].key)
            j++;
        int64_t g = cur[i].count - (j < nb && base[j].key == cur[i].key ? base[j].count : 0);
        for (int k = 0; k < 3; k++)
            if (g > top[k].growth) {
                memmove(&top[k + 1], &top[k], (size_t)(2 - k) * sizeof top[0]);
                top[k].growth = g;
                top[k].i = i;
                break;
            }
    }
    size_t used = strlen(msg);
    for (int k = 0; k < 3 && top[k].growth > 0 && used < cap; k++) {
        int w = snprintf(msg + used, cap - used, "%s%s (+%lld)", k ? "; " : " Top growing stacks: ",
                         cur[top[k].i].desc, (long long)top[k].growth);
        if (w < 0)
            break;
        used += (size_t)w;
    }
}

/* leak_rule checks the goroutine count's trend after a new snapshot. */
static void leak_rule(pprofio_agent *a, pprofio_stack_count *cur, size_t n, int64_t total) {
    if (a->leak_have_prev && total > a->leak_prev_total) {
        if (a->leak_streak++ == 0) { /* growth begins: remember where from */
            pprofio_free(a->leak_base);
            a->leak_base = a->leak_prev;
            a->leak_base_n = a->leak_prev_n;
            a->leak_base_total = a->leak_prev_total;
            a->leak_prev = NULL;
        }
    } else {
        a->leak_streak = 0;
        a->leak_episode = 0; /* the episode is over: a new one may fire again */
    }
    int64_t growth = total - a->leak_base_total;
    int fire = a->leak_streak >= a->leak_windows && !a->leak_episode && growth >= a->leak_min_growth &&
               growth * 100 >= (int64_t)a->leak_min_growth_pct * a->leak_base_total;
    if (fire) {
        a->leak_episode = 1;
        char msg[512];
        snprintf(msg, sizeof msg, "goroutines grew from %lld to %lld over %d cycles.", (long long)a->leak_base_total,
                 (long long)total, a->leak_streak);
        growth_message(a->leak_base, a->leak_base_n, cur, n, msg, sizeof msg);
        pthread_mutex_lock(&a->mu);
        a->stats.goroutine_leaks++;
        log_locked(a, PPROFIO_LOG_WARN, "pprofio: goroutine leak suspected: %s", msg);
        pprofio_event *ev = event_locked(a, "goroutine_leak", msg);
        if (ev) {
            pprofio_event_attr_u64(ev, "count", (uint64_t)total);
            pprofio_event_attr_u64(ev, "growth", (uint64_t)growth);
            pprofio_event_attr_u64(ev, "windows", (uint64_t)a->leak_streak);
        }
        pthread_mutex_unlock(&a->mu);
    }
    pprofio_free(a->leak_prev);
    a->leak_prev = cur;
    a->leak_prev_n = n;
    a->leak_prev_total = total;
    a->leak_have_prev = 1;
}

static void goroutines(pprofio_agent *a, pprofio_profile *p) {
    pprofio_stack_count *sc;
    size_t n;
    int64_t total;
    pprofio_error err = {0};
    if (pprofio_pprof_stacks(p->raw.p, p->raw.len, &sc, &n, &total, &err) != PPROFIO_OK) {
        pthread_mutex_lock(&a->mu);
        log_locked(a, PPROFIO_LOG_WARN, "pprofio: cannot read a goroutine profile: %s", err.msg);
        pthread_mutex_unlock(&a->mu);
        return;
    }
    pthread_mutex_lock(&a->mu);
    a->stats.goroutines = total;
    pthread_mutex_unlock(&a->mu);
    leak_rule(a, sc, n, total);
}

/* prepare runs the per-type work on a cycle's profiles before they go out. */
static void prepare(pprofio_agent *a, pprofio_profile **ps, size_t n) {
    int64_t cpu0 = thread_cpu_ns();
    for (size_t i = 0; i < n; i++) {
        switch (ps[i]->type) {
        case PPROFIO_PROFILE_HEAP:
        case PPROFIO_PROFILE_MUTEX:
        case PPROFIO_PROFILE_BLOCK:
            make_delta(a, ps[i]);
            break;
        case PPROFIO_PROFILE_GOROUTINE:
            goroutines(a, ps[i]);
            break;
        }
    }
    pthread_mutex_lock(&a->mu);
    a->stats.cpu_ns_delta += thread_cpu_ns() - cpu0;
    pthread_mutex_unlock(&a->mu);
}

#define CYCLE_MAX_PROFILES 16

static void *out_main(void *arg) {
    pprofio_agent *a = arg;
    pprofio_profile *ps[CYCLE_MAX_PROFILES];
    pthread_mutex_lock(&a->mu);
    for (;;) {
        size_t n = 0;
        pprofio_profile *p;
        while (n < CYCLE_MAX_PROFILES && (p = pprofio_spool_pop(&a->spool, a->sealed_before)) != NULL) {
            ps[n++] = p;
            if (!a->spool.head || a->spool.head->cycle != p->cycle)
                break; /* the next profile belongs to a later cycle */
        }
        if (n > 0) {
            pthread_mutex_unlock(&a->mu);
            prepare(a, ps, n);
            pthread_mutex_lock(&a->mu);
            size_t m = 0; /* window bases are not sent */
            for (size_t i = 0; i < n; i++)
                if (!(ps[i]->flags & PPROFIO_PROFILE_BASELINE))
                    ps[m++] = ps[i];
                else
                    pprofio_spool_done(&a->spool, ps[i]);
            n = m;
            if (n > 0)
                deliver_cycle(a, ps, n);
            for (size_t i = 0; i < n; i++)
                pprofio_spool_done(&a->spool, ps[i]);
            a->stats.cpu_ns_output = thread_cpu_ns();
            continue;
        }
        if (a->closing)
            break;
        a->clock->wait_until(a->clock, &a->out_cond, &a->mu, PPROFIO_FOREVER);
    }
    pthread_mutex_unlock(&a->mu);
    return NULL;
}

/* ---- the upload thread ------------------------------------------------ */

/* fail_state moves to a failing state, logging only when the state changes. */
static void fail_state(pprofio_agent *a, int state, const char *detail) {
    if (a->up_state == state)
        return;
    a->up_state = state;
    if (state == UP_AUTH)
        log_locked(a, PPROFIO_LOG_ERROR,
                   "pprofio: the ingest service refused the API key (%s); batches are kept, retrying in 60 s or more",
                   detail);
    else
        log_locked(a, PPROFIO_LOG_WARN, "pprofio: uploads are failing (%s); batches are kept and retried", detail);
}

/* split replaces the head batch by its two halves (mu held; released while working). */
static int split_head(pprofio_agent *a, const pprofio_queue_head *h) {
    pprofio_bytes first = {0}, second = {0};
    char id1[33], id2[33];
    pprofio_error err = {0};
    pthread_mutex_unlock(&a->mu);
    int rc = pprofio_batch_split(h->payload, h->len, &first, id1, &second, id2, &err);
    if (rc == PPROFIO_OK) {
        uint32_t n1 = h->n_profiles / 2, n2 = h->n_profiles - n1;
        uint64_t seq = h->sequence;
        pprofio_queue_pop(a->queue);
        pprofio_queue_push(a->queue, id2, seq, n2, &second, 1, NULL);
        pprofio_queue_push(a->queue, id1, seq, n1, &first, 1, NULL);
    }
    pprofio_bytes_free(&first);
    pprofio_bytes_free(&second);
    pthread_mutex_lock(&a->mu);
    return rc;
}

/* drop_head drops the head batch and counts it (mu held). */
static void drop_head(pprofio_agent *a, const pprofio_queue_head *h, int reason, const char *why) {
    a->stats.batches_dropped_rejected++;
    a->stats.profiles_dropped_upload += h->n_profiles;
    lose(a, reason, h->n_profiles, 1, h->len);
    log_locked(a, PPROFIO_LOG_ERROR, "pprofio: dropped batch %s (%u profile(s)): %s", h->batch_id, h->n_profiles,
               why);
    pthread_mutex_unlock(&a->mu);
    pprofio_queue_pop(a->queue);
    pthread_mutex_lock(&a->mu);
}

/*
 * drop_keeping_events drops a head batch that is too large even alone
 * (413), but sends its events (the losses and skips it reports) on as a
 * part of their own, same sequence, new id (mu held).
 */
static void drop_keeping_events(pprofio_agent *a, const pprofio_queue_head *h) {
    pprofio_bytes part = {0};
    char id[PPROFIO_BATCH_ID_LEN + 1];
    size_t n_events = 0;
    if (h->n_profiles > 0) { /* an events-only part refused too is dropped with them */
        pthread_mutex_unlock(&a->mu);
        if (pprofio_batch_events_only(h->payload, h->len, &part, id, &n_events, NULL) != PPROFIO_OK)
            n_events = 0;
        pthread_mutex_lock(&a->mu);
    }
    drop_head(a, h, LOSS_TOO_LARGE, "too large for the ingest service even alone (413)");
    if (n_events > 0) {
        pthread_mutex_unlock(&a->mu);
        pprofio_queue_push(a->queue, id, h->sequence, 0, &part, 1, NULL);
        pthread_mutex_lock(&a->mu);
    }
    pprofio_bytes_free(&part);
}

/* handle applies the contract's table to one answer (mu held). */
static void handle(pprofio_agent *a, const pprofio_queue_head *h, const pprofio_upload_result *r) {
    int64_t now = a->clock->now_ns(a->clock);
    switch (r->verdict) {
    case PPROFIO_UP_DONE:
        a->stats.batches_sent++;
        a->up_attempt = 0;
        a->up_next_at = 0;
        a->up_next_forced = 0;
        if (a->up_state != UP_HEALTHY) {
            a->up_state = UP_HEALTHY;
            log_locked(a, PPROFIO_LOG_INFO, "pprofio: uploads are going through again");
        }
        pthread_mutex_unlock(&a->mu);
        pprofio_queue_pop(a->queue);
        pthread_mutex_lock(&a->mu);
        return;
    case PPROFIO_UP_DROP:
        drop_head(a, h, LOSS_REJECTED, r->detail);
        return;
    case PPROFIO_UP_SPLIT:
        if (h->n_profiles >= 2 && split_head(a, h) == PPROFIO_OK) {
            a->stats.batches_split++;
            return;
        }
        drop_keeping_events(a, h);
        return;
    case PPROFIO_UP_AUTH: {
        a->stats.batches_retried++;
        int64_t wait = pprofio_backoff_ns(a->up_attempt++, &a->rng_up);
        a->up_next_at = now + (wait > AUTH_PAUSE_NS ? wait : AUTH_PAUSE_NS);
        a->up_next_forced = 1;
        fail_state(a, UP_AUTH, r->detail);
        return;
    }
    default: {
        a->stats.batches_retried++;
        int64_t wait = r->retry_after_ns >= 0 ? r->retry_after_ns : pprofio_backoff_ns(a->up_attempt, &a->rng_up);
        a->up_attempt++;
        a->up_next_at = now + wait;
        a->up_next_forced = r->retry_after_ns >= 0;
        if (!r->aborted)
            fail_state(a, UP_FAILING, r->detail);
        return;
    }
    }
}

/* take_queue_counts folds the queue's counters into the stats (mu held). */
static void take_queue_counts(pprofio_agent *a) {
    pprofio_queue_counts c;
    pprofio_queue_take_counts(a->queue, &c);
    a->stats.batches_dropped_spool += c.evicted.batches;
    a->stats.batches_dropped_corrupt += c.corrupt_files;
    a->stats.batches_adopted += c.adopted;
    a->stats.profiles_dropped_upload += c.evicted.profiles;
    if (c.evicted.batches > 0) {
        lose(a, LOSS_SPOOL, c.evicted.profiles, c.evicted.batches, c.evicted.bytes);
        log_locked(a, PPROFIO_LOG_WARN, "pprofio: the upload queue is full; dropped the oldest %llu batch(es)",
                   (unsigned long long)c.evicted.batches);
    }
    if (c.corrupt_files > 0) {
        lose(a, LOSS_CORRUPT, 0, c.corrupt_files, 0);
        log_locked(a, PPROFIO_LOG_WARN, "pprofio: removed %llu damaged or foreign file(s) from the spool",
                   (unsigned long long)c.corrupt_files);
    }
    if (c.adopted > 0)
        log_locked(a, PPROFIO_LOG_INFO, "pprofio: found %llu batch(es) left by an earlier process; sending them",
                   (unsigned long long)c.adopted);
    a->stats.spool_bytes = pprofio_queue_disk_bytes(a->queue);
    a->stats.queued_batches = (int64_t)pprofio_queue_len(a->queue);
}

/* report_pending says whether losses or events wait for a batch to carry them (mu held). */
static int report_pending(const pprofio_agent *a) {
    for (int r = 0; r < LOSS_N; r++)
        if (a->losses[r].profiles > 0 || a->losses[r].batches > 0)
            return 1;
    return a->n_events > 0;
}

static void *up_main(void *arg) {
    pprofio_agent *a = arg;
    pthread_mutex_lock(&a->mu);
    for (;;) {
        take_queue_counts(a);
        if (a->stats.uploads_off) { /* nothing can be sent: count what waits until closing */
            if (a->up_closing)
                break;
            a->clock->wait_until(a->clock, &a->up_cond, &a->mu, PPROFIO_FOREVER);
            continue;
        }
        int64_t now = a->clock->now_ns(a->clock);
        if (a->up_closing && a->stats.queued_batches == 0 && !a->up_reported && now < a->up_deadline &&
            report_pending(a)) {
            /* Losses (or events) since the last batch: one more batch says so. */
            a->up_reported = 1;
            make_batch(a, NULL, 0);
            continue;
        }
        if (a->up_closing && (a->stats.queued_batches == 0 || now >= a->up_deadline))
            break;
        if (a->stats.queued_batches == 0) {
            a->clock->wait_until(a->clock, &a->up_cond, &a->mu, PPROFIO_FOREVER);
            continue;
        }
        if (now < a->up_next_at) {
            if (a->up_closing && a->up_next_at >= a->up_deadline)
                break; /* the next try would come after the deadline */
            a->clock->wait_until(a->clock, &a->up_cond, &a->mu, a->up_next_at);
            continue;
        }
        pprofio_queue_head h;
        pthread_mutex_unlock(&a->mu);
        int empty = pprofio_queue_peek(a->queue, &h);
        pprofio_upload_result r;
        uint64_t sent = 0;
        if (!empty)
            pprofio_uploader_post(a->uploader, h.batch_id, h.payload, h.len, 0, &r, &sent);
        pthread_mutex_lock(&a->mu);
        if (empty < 0) /* could not load it now: wait rather than spin */
            a->up_next_at = a->clock->now_ns(a->clock) + PPROFIO_NS_PER_SEC;
        if (empty)
            continue;
        a->stats.bytes_sent += sent;
        handle(a, &h, &r);
        a->stats.cpu_ns_upload = thread_cpu_ns();
    }
    take_queue_counts(a);
    pthread_mutex_unlock(&a->mu);
    return NULL;
}

/* ---- lifecycle -------------------------------------------------------- */

int pprofio_agent_start(pprofio_agent *a, pprofio_error *err) {
    if (!a)
        return pprofio_set_error(err, PPROFIO_ERR_INVALID, "agent: NULL");
    pthread_mutex_lock(&a->mu);
    if (a->state != STATE_NEW) {
        pthread_mutex_unlock(&a->mu);
        return pprofio_set_error(err, PPROFIO_ERR_STATE, "agent: already started");
    }
    int64_t now = a->clock->now_ns(a->clock);
    pprofio_sched_init(&a->sched, now, a->period_ns, a->cpu_ns, pprofio_jitter_delay(&a->rng, a->jitter_ns),
                       a->types);
    a->state = STATE_RUNNING;
    if (a->queue)
        report_off_locked(a);
    int rc = 0;
    if (a->queue && (rc = pprofio_thread_create(&a->up_thread, up_main, a)) == 0)
        a->up_started = 1;
    if (rc == 0 && (rc = pprofio_thread_create(&a->out_thread, out_main, a)) == 0)
        a->out_started = 1;
    if (rc == 0 && (rc = pprofio_thread_create(&a->sched_thread, sched_main, a)) == 0)
        a->sched_started = 1;
    if (rc != 0) {
        /* Unwind: whatever started is stopped by close. */
        a->stop_requested = 1;
        a->exit_queued = 1;
        pthread_mutex_unlock(&a->mu);
        pprofio_agent_close(a, NULL);
        return pprofio_set_error(err, PPROFIO_ERR_NOMEM, "agent: cannot start a thread: %s", strerror(-rc));
    }
    pthread_mutex_unlock(&a->mu);
    return PPROFIO_OK;
}

int pprofio_agent_next(pprofio_agent *a, pprofio_command *cmd) {
    memset(cmd, 0, sizeof *cmd);
    pthread_mutex_lock(&a->mu);
    for (;;) {
        if (a->log_len > 0) {
            log_line *l = &a->logs[a->log_head];
            cmd->op = PPROFIO_CMD_LOG;
            cmd->level = l->level;
            memcpy(cmd->message, l->msg, sizeof cmd->message);
            a->log_head = (a->log_head + 1) % LOG_QUEUE;
            a->log_len--;
            break;
        }
        if (a->cmd_len > 0) {
            pprofio_sched_event ev = a->cmds[a->cmd_head];
            a->cmd_head = (a->cmd_head + 1) % CMD_QUEUE;
            a->cmd_len--;
            pthread_cond_signal(&a->sched_cond);
            if (ev.op == PPROFIO_EV_CYCLE_END) {
                seal(a, ev.cycle);
                continue;
            }
            cmd->op = ev.op;
            cmd->cycle = ev.cycle;
            cmd->at_ns = ev.at_ns;
            cmd->window_start_ns = ev.window_start_ns;
            if (ev.op == PPROFIO_CMD_EXIT)
                a->exit_taken = 1;
            break;
        }
        if (a->exit_taken || a->state != STATE_RUNNING || (a->stop_requested && !a->sched_started)) {
            cmd->op = PPROFIO_CMD_EXIT;
            a->exit_taken = 1;
            break;
        }
        a->clock->wait_until(a->clock, &a->cmd_cond, &a->mu, PPROFIO_FOREVER);
    }
    pthread_mutex_unlock(&a->mu);
    return PPROFIO_OK;
}

void pprofio_agent_stop(pprofio_agent *a) {
    if (!a)
        return;
    pthread_mutex_lock(&a->mu);
    if (a->state == STATE_RUNNING) /* before start it does nothing (pprofio.h) */
        a->stop_requested = 1;
    pthread_cond_broadcast(&a->sched_cond);
    pthread_cond_broadcast(&a->cmd_cond);
    pthread_mutex_unlock(&a->mu);
}

int pprofio_agent_close(pprofio_agent *a, pprofio_error *err) {
    if (!a)
        return PPROFIO_OK;
    pthread_mutex_lock(&a->mu);
    if (a->state == STATE_CLOSED || a->closing) {
        pthread_mutex_unlock(&a->mu);
        return PPROFIO_OK;
    }
    int64_t deadline = a->clock->now_ns(a->clock) + a->stop_timeout_ns;
    a->stop_requested = 1;
    int sched = a->sched_started, out = a->out_started, up = a->up_started;
    pthread_cond_broadcast(&a->sched_cond);
    pthread_mutex_unlock(&a->mu);
    if (sched)
        pthread_join(a->sched_thread, NULL);

    pthread_mutex_lock(&a->mu);
    /* Everything collected is final now: write and batch it all. */
    a->sealed_before = INT64_MAX;
    a->closing = 1;
    a->exit_taken = 1;
    pthread_cond_broadcast(&a->out_cond);
    pthread_cond_broadcast(&a->cmd_cond);
    pthread_mutex_unlock(&a->mu);
    if (out)
        pthread_join(a->out_thread, NULL);

    /* Deliver what is queued until the stop deadline; the rest stays spooled. */
    pthread_mutex_lock(&a->mu);
    a->up_closing = 1;
    a->up_deadline = deadline;
    /* A backoff gives way to one more try now; a Retry-After or the 401/403 pause does not. */
    if (!a->up_next_forced && a->up_next_at > a->clock->now_ns(a->clock))
        a->up_next_at = a->clock->now_ns(a->clock);
    if (a->uploader)
        pprofio_uploader_abort_at(a->uploader, deadline);
    pthread_cond_broadcast(&a->up_cond);
    pthread_mutex_unlock(&a->mu);
    if (up)
        pthread_join(a->up_thread, NULL);

    pthread_mutex_lock(&a->mu);
    a->sched_started = a->out_started = a->up_started = 0;
    a->state = STATE_CLOSED;
    pprofio_error final = a->final_err;
    pthread_mutex_unlock(&a->mu);
    if (final.code != 0) {
        if (err)
            *err = final;
        return final.code;
    }
    return PPROFIO_OK;
}

void pprofio_agent_free(pprofio_agent *a) {
    if (!a)
        return;
    if (a->sync_ready) {
        pprofio_agent_close(a, NULL);
        pprofio_spool_clear(&a->spool);
        pthread_cond_destroy(&a->up_cond);
        pthread_cond_destroy(&a->out_cond);
        pthread_cond_destroy(&a->sched_cond);
        pthread_cond_destroy(&a->cmd_cond);
        pthread_mutex_destroy(&a->mu);
    }
    for (int t = 0; t <= PPROFIO_PROFILE_MAX; t++)
        pprofio_baseline_free(a->baselines[t]);
    pprofio_free(a->leak_prev);
    pprofio_free(a->leak_base);
    pprofio_queue_close(a->queue);
    pprofio_uploader_free(a->uploader);
    source_free(&a->source);
    pprofio_free(a->service);
    pprofio_free(a->output_dir);
    pprofio_free(a);
}

void pprofio_agent_stats(pprofio_agent *a, pprofio_stats *out) {
    pthread_mutex_lock(&a->mu);
    *out = a->stats;
    out->buffered_bytes = a->spool.used;
    out->buffered_bytes_peak = a->spool.peak;
    pthread_mutex_unlock(&a->mu);
    if (a->queue) {
        out->spool_bytes = pprofio_queue_disk_bytes(a->queue);
        out->queued_batches = (int64_t)pprofio_queue_len(a->queue);
    }
}

void pprofio_agent_event(pprofio_agent *a, const char *kind, const char *message, const char *const *keys,
                         const char *const *values, size_t n_attrs) {
    pthread_mutex_lock(&a->mu);
    pprofio_event *ev = event_locked(a, kind, message);
    for (size_t i = 0; ev && i < n_attrs; i++)
        pprofio_event_attr(ev, keys[i], values[i]);
    pthread_mutex_unlock(&a->mu);
}

void pprofio_agent_skip(pprofio_agent *a, int type, int64_t cycle, const char *reason) {
    pthread_mutex_lock(&a->mu);
    a->stats.profiles_skipped++;
    char msg[300];
    snprintf(msg, sizeof msg, "the %s profile of this cycle was not taken: %s", pprofio_profile_name(type),
             reason ? reason : "");
    pprofio_event *ev = event_locked(a, "profile_skipped", msg);
    if (ev) {
        a->event_cycle[ev - a->events] = cycle; /* it goes in the batch of the cycle it skipped */
        pprofio_event_attr(ev, "type", pprofio_profile_name(type));
        pprofio_event_attr(ev, "reason", reason ? reason : "");
    }
    pthread_mutex_unlock(&a->mu);
}

/* ---- profile writers -------------------------------------------------- */

/* reserve is the pprofio_reserve_fn of a writer's output buffer. */
static int reserve(void *ctx, int64_t delta) {
    pprofio_profile_writer *w = ctx;
    pprofio_agent *a = w->a;
    pthread_mutex_lock(&a->mu);
    uint64_t evicted = 0, bytes_before = a->spool.evicted_bytes;
    int rc = pprofio_spool_reserve(&a->spool, delta, &evicted);
    if (evicted > 0) {
        a->stats.profiles_dropped_memory += evicted;
        a->stats.bytes_dropped += a->spool.evicted_bytes - bytes_before;
        lose(a, LOSS_MEMORY, evicted, 0, a->spool.evicted_bytes - bytes_before);
        if (a->evict_logged_cycle != w->p->cycle) {
            a->evict_logged_cycle = w->p->cycle;
            log_locked(a, PPROFIO_LOG_WARN,
                       "pprofio: memory bound of %lld bytes reached; dropped the oldest %llu profile(s)",
                       (long long)a->max_buffer, (unsigned long long)evicted);
        }
    }
    pthread_mutex_unlock(&a->mu);
    return rc;
}

int pprofio_profile_begin(pprofio_agent *a, int type, int64_t cycle, int64_t start_ns,
                          pprofio_profile_writer **out) {
    return pprofio_profile_begin_ex(a, type, cycle, start_ns, 0, out);
}

int pprofio_profile_begin_ex(pprofio_agent *a, int type, int64_t cycle, int64_t start_ns, int flags,
                             pprofio_profile_writer **out) {
    *out = NULL;
    if (type < PPROFIO_PROFILE_CPU || type > PPROFIO_PROFILE_MAX)
        return PPROFIO_ERR_INVALID;
    pprofio_profile_writer *w = pprofio_calloc(1, sizeof *w);
    if (!w)
        return PPROFIO_ERR_NOMEM;
    w->a = a;
    w->p = pprofio_profile_new(type, cycle, start_ns);
    if (w->p)
        w->p->flags = flags;
    int rc = w->p ? pprofio_gunzip_new(&w->gz) : PPROFIO_ERR_NOMEM;
    if (rc != PPROFIO_OK) {
        pprofio_profile_free(w->p);
        pprofio_free(w);
        return rc;
    }
    *out = w;
    return PPROFIO_OK;
}

/* drop gives back a failed profile's bytes and counts why it was lost. */
static void drop(pprofio_profile_writer *w, int why) {
    pprofio_agent *a = w->a;
    pthread_mutex_lock(&a->mu);
    pprofio_spool_reserve(&a->spool, -(int64_t)w->p->raw.cap, NULL);
    a->stats.bytes_dropped += w->p->raw.len;
    const char *name = pprofio_profile_name(w->p->type);
    if (why == PPROFIO_ERR_FORMAT) {
        a->stats.profiles_dropped_invalid++;
        lose(a, LOSS_INVALID, 1, 0, w->p->raw.len);
        log_locked(a, PPROFIO_LOG_ERROR, "pprofio: dropped a %s profile: its bytes are not gzip", name);
    } else {
        a->stats.profiles_dropped_memory++;
        lose(a, LOSS_MEMORY, 1, 0, w->p->raw.len);
        log_locked(a, PPROFIO_LOG_WARN, "pprofio: dropped a %s profile: %s (memory bound %lld bytes)", name,
                   pprofio_strstatus(why), (long long)a->max_buffer);
    }
    pthread_mutex_unlock(&a->mu);
    pprofio_bytes_free(&w->p->raw);
}

int pprofio_profile_write(pprofio_profile_writer *w, const void *p, size_t len) {
    if (w->failed)
        return w->failed;
    pthread_mutex_lock(&w->a->mu);
    w->a->stats.bytes_received += len;
    pthread_mutex_unlock(&w->a->mu);
    int rc = pprofio_gunzip_feed(w->gz, p, len, &w->p->raw, reserve, w);
    if (rc != PPROFIO_OK) {
        w->failed = rc;
        drop(w, rc);
    }
    return rc;
}

int pprofio_profile_finish(pprofio_profile_writer *w, int ok, int64_t end_ns) {
    if (!w)
        return PPROFIO_OK;
    pprofio_agent *a = w->a;
    int rc = w->failed;
    if (rc == PPROFIO_OK && !ok) {
        /* The collector gave up (the runtime refused): nothing to count. */
        pthread_mutex_lock(&a->mu);
        pprofio_spool_reserve(&a->spool, -(int64_t)w->p->raw.cap, NULL);
        pthread_mutex_unlock(&a->mu);
    } else if (rc == PPROFIO_OK) {
        rc = pprofio_gunzip_finish(w->gz);
        if (rc != PPROFIO_OK) {
            drop(w, rc);
        } else {
            w->p->end_ns = end_ns;
            pthread_mutex_lock(&a->mu);
            pprofio_spool_push(&a->spool, w->p);
            w->p = NULL;
            a->stats.profiles_collected++;
            pthread_cond_signal(&a->out_cond);
            pthread_mutex_unlock(&a->mu);
        }
    }
    pprofio_gunzip_free(w->gz);
    pprofio_profile_free(w->p);
    pprofio_free(w);
    return rc;
}
