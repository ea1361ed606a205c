//go:build ignore

/*
 * agent.c: the agent handle. It owns two threads and one mutex:
 *
 *   scheduler thread  sleeps until the next event of the timeline (scheduler.c)
 *                     and queues it for the Go collector; it queues nothing
 *                     new until the collector has taken what is queued, so
 *                     a stalled collector never builds a backlog.
 *   output thread     takes the profiles of each finished cycle from the
 *                     memory spool (spool.c) and writes them (store.c).
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
#include "clock.h"
#include "errors.h"
#include "gz.h"
#include "pprofio.h"
#include "scheduler.h"
#include "spool.h"
#include "store.h"
#include "sysio.h"

#define CMD_QUEUE 32 /* > PPROFIO_SCHED_MAX_EVENTS twice over */
#define LOG_QUEUE 32
#define MIN_BUFFER_BYTES (INT64_C(1) << 20)
#define MAX_SERVICE_NAME 128
#define SUPPORTED_TYPES (PPROFIO_TYPE_BIT(PPROFIO_PROFILE_CPU) | PPROFIO_TYPE_BIT(PPROFIO_PROFILE_HEAP))

enum { STATE_NEW, STATE_RUNNING, STATE_CLOSED };

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
    int sync_ready;

    int state;
    int stop_requested;
    int exit_queued;   /* EXIT is in (or has left) the command queue */
    int exit_taken;    /* the collector has received EXIT */
    int closing;
    pthread_t sched_thread, out_thread;
    int threads;       /* how many of the two are running */

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
    if (cfg->period_ns < PPROFIO_NS_PER_SEC)
        return pprofio_set_error(err, PPROFIO_ERR_INVALID, "period_ns: must be at least 1 s");
    if ((cfg->profile_types & ~SUPPORTED_TYPES) != 0)
        return pprofio_set_error(err, PPROFIO_ERR_INVALID, "profile_types: unsupported profile type");
    if (cfg->profile_types == 0)
        return pprofio_set_error(err, PPROFIO_ERR_INVALID, "profile_types: none selected");
    if ((cfg->profile_types & PPROFIO_TYPE_BIT(PPROFIO_PROFILE_CPU)) &&
        (cfg->cpu_duration_ns <= 0 || cfg->cpu_duration_ns > cfg->period_ns))
        return pprofio_set_error(err, PPROFIO_ERR_INVALID, "cpu_duration_ns: must be in (0, period_ns]");
    if (cfg->start_jitter_ns < 0 || cfg->start_jitter_ns > cfg->period_ns)
        return pprofio_set_error(err, PPROFIO_ERR_INVALID, "start_jitter_ns: must be in [0, period_ns]");
    if (cfg->max_buffer_bytes < MIN_BUFFER_BYTES)
        return pprofio_set_error(err, PPROFIO_ERR_INVALID, "max_buffer_bytes: must be at least %lld",
                                 (long long)MIN_BUFFER_BYTES);
    if (cfg->output_dir && strlen(cfg->output_dir) > 3072)
        return pprofio_set_error(err, PPROFIO_ERR_INVALID, "output_dir: path too long");
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
    if (pprofio_cond_init(&a->cmd_cond) != 0)
        goto fail_mu;
    if (pprofio_cond_init(&a->sched_cond) != 0)
        goto fail_cmd;
    if (pprofio_cond_init(&a->out_cond) != 0)
        goto fail_sched;
    a->sync_ready = 1;
    return PPROFIO_OK;
fail_sched:
    pthread_cond_destroy(&a->sched_cond);
fail_cmd:
    pthread_cond_destroy(&a->cmd_cond);
fail_mu:
    pthread_mutex_destroy(&a->mu);
    return PPROFIO_ERR_NOMEM;
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
    a->clock = cfg->clock ? cfg->clock : pprofio_clock_system();
    a->evict_logged_cycle = -1;
    pprofio_spool_init(&a->spool, cfg->max_buffer_bytes);
    *out = a;
    return PPROFIO_OK;
}

/* ---- logging and the command queue (mu held) -------------------------- */

static void log_locked(pprofio_agent *a, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void log_locked(pprofio_agent *a, int level, const char *fmt, ...) {
    if (a->log_len == LOG_QUEUE || a->exit_taken) {
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
    }
    size_t n = pprofio_sched_stop(&a->sched, a->clock->now_ns(a->clock), ev);
    queue_events(a, ev, n);
    pthread_mutex_unlock(&a->mu);
    return NULL;
}

/* ---- the output thread ------------------------------------------------ */

static void deliver(pprofio_agent *a, pprofio_profile *p) {
    /* mu held on entry and exit; released while writing. */
    if (!a->output_dir) {
        a->stats.profiles_dropped_no_sink++;
        a->stats.bytes_dropped += p->raw.len;
        if (!a->no_sink_logged) {
            a->no_sink_logged = 1;
            log_locked(a, PPROFIO_LOG_WARN,
                       "pprofio: no output can take profiles (set OutputDir); they are counted as dropped");
        }
        return;
    }
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
    if (a->stop_requested && a->final_err.code == 0)
        a->final_err = err;
    if (!a->write_failing) {
        a->write_failing = 1;
        log_locked(a, PPROFIO_LOG_ERROR, "pprofio: cannot write profiles: %s", err.msg);
    }
}

static void *out_main(void *arg) {
    pprofio_agent *a = arg;
    pthread_mutex_lock(&a->mu);
    for (;;) {
        pprofio_profile *p = pprofio_spool_pop(&a->spool, a->sealed_before);
        if (p) {
            deliver(a, p);
            pprofio_spool_done(&a->spool, p);
            a->stats.buffered_bytes = a->spool.used;
            continue;
        }
        if (a->closing)
            break;
        a->clock->wait_until(a->clock, &a->out_cond, &a->mu, PPROFIO_FOREVER);
    }
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
    int rc = pprofio_thread_create(&a->out_thread, out_main, a);
    if (rc == 0) {
        a->threads = 1;
        rc = pprofio_thread_create(&a->sched_thread, sched_main, a);
        if (rc == 0)
            a->threads = 2;
    }
    a->state = STATE_RUNNING;
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
        if (a->exit_taken || a->state != STATE_RUNNING || (a->stop_requested && !a->threads)) {
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
    a->stop_requested = 1;
    int threads = a->threads;
    pthread_cond_broadcast(&a->sched_cond);
    pthread_mutex_unlock(&a->mu);
    if (threads == 2)
        pthread_join(a->sched_thread, NULL);

    pthread_mutex_lock(&a->mu);
    /* Everything collected is final now: write it all, then end. */
    a->sealed_before = INT64_MAX;
    a->closing = 1;
    a->exit_taken = 1;
    pthread_cond_broadcast(&a->out_cond);
    pthread_cond_broadcast(&a->cmd_cond);
    pthread_mutex_unlock(&a->mu);
    if (threads >= 1)
        pthread_join(a->out_thread, NULL);

    pthread_mutex_lock(&a->mu);
    a->threads = 0;
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
        pthread_cond_destroy(&a->out_cond);
        pthread_cond_destroy(&a->sched_cond);
        pthread_cond_destroy(&a->cmd_cond);
        pthread_mutex_destroy(&a->mu);
    }
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
}

void pprofio_agent_skip(pprofio_agent *a, int type, int64_t cycle, const char *reason) {
    (void)type;
    (void)cycle;
    (void)reason;
    pthread_mutex_lock(&a->mu);
    a->stats.profiles_skipped++;
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
    *out = NULL;
    if (type < PPROFIO_PROFILE_CPU || type > PPROFIO_PROFILE_MAX)
        return PPROFIO_ERR_INVALID;
    pprofio_profile_writer *w = pprofio_calloc(1, sizeof *w);
    if (!w)
        return PPROFIO_ERR_NOMEM;
    w->a = a;
    w->p = pprofio_profile_new(type, cycle, start_ns);
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
        log_locked(a, PPROFIO_LOG_ERROR, "pprofio: dropped a %s profile: its bytes are not gzip", name);
    } else {
        a->stats.profiles_dropped_memory++;
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
