//go:build ignore

/* ledger.c: counters, losses, events and log lines (see ledger.h). */
#include "ledger.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "alloc.h"

#define LEDGER_LOG_RING 32
#define LEDGER_NONE SIZE_MAX

#define LEDGER_FIELD_U(name) {#name, offsetof(pprofio_stats, name), 0},
#define LEDGER_FIELD_I(name) {#name, offsetof(pprofio_stats, name), 1},
static const pprofio_stat_field stats_fields[] = {PPROFIO_STATS(LEDGER_FIELD_U, LEDGER_FIELD_I)};

const pprofio_stat_field *pprofio_stats_fields(size_t *n) {
    *n = sizeof stats_fields / sizeof stats_fields[0];
    return stats_fields;
}

/* Where each kind of loss is counted, and its data_dropped reason (API.md). */
static const struct {
    const char *reason; /* NULL: no event */
    size_t profiles, batches;
    int bytes; /* counts in bytes_dropped (uncompressed profile bytes) */
} loss_kinds[PPROFIO_LOSS_N] = {
    [PPROFIO_LOSS_MEMORY] = {"memory_bound", PPROFIO_STAT(profiles_dropped_memory), LEDGER_NONE, 1},
    [PPROFIO_LOSS_INVALID] = {"invalid_profile", PPROFIO_STAT(profiles_dropped_invalid), LEDGER_NONE, 1},
    [PPROFIO_LOSS_WRITE] = {"local_write_failed", PPROFIO_STAT(profiles_dropped_write), LEDGER_NONE, 1},
    [PPROFIO_LOSS_REJECTED] = {"rejected", PPROFIO_STAT(profiles_dropped_upload),
                               PPROFIO_STAT(batches_dropped_rejected), 0},
    [PPROFIO_LOSS_TOO_LARGE] = {"too_large", PPROFIO_STAT(profiles_dropped_upload),
                                PPROFIO_STAT(batches_dropped_rejected), 0},
    [PPROFIO_LOSS_SPOOL] = {"spool_bound", PPROFIO_STAT(profiles_dropped_upload), PPROFIO_STAT(batches_dropped_spool),
                            0},
    [PPROFIO_LOSS_CORRUPT] = {"corrupt_spool_file", LEDGER_NONE, PPROFIO_STAT(batches_dropped_corrupt), 0},
    [PPROFIO_LOSS_NO_SINK] = {NULL, PPROFIO_STAT(profiles_dropped_no_sink), LEDGER_NONE, 1},
    [PPROFIO_LOSS_SPANS] = {"span_bound", LEDGER_NONE, LEDGER_NONE, 0},
    [PPROFIO_LOSS_PYRO_REJECTED] = {NULL, PPROFIO_STAT(pyroscope_profiles_dropped),
                                    PPROFIO_STAT(pyroscope_batches_dropped_rejected), 0},
    [PPROFIO_LOSS_PYRO_OLD] = {NULL, PPROFIO_STAT(pyroscope_profiles_dropped), PPROFIO_STAT(pyroscope_batches_dropped_old),
                               0},
    [PPROFIO_LOSS_PYRO_SPOOL] = {NULL, PPROFIO_STAT(pyroscope_profiles_dropped),
                                 PPROFIO_STAT(pyroscope_batches_dropped_spool), 0},
};

typedef struct {
    uint64_t profiles, batches, bytes, spans;
} ledger_loss;

typedef struct {
    int level;
    char msg[PPROFIO_LOG_LINE];
} ledger_line;

struct pprofio_ledger {
    pthread_mutex_t mu;
    pthread_cond_t cond; /* a log line or a wake, for pprofio_ledger_wait */
    const pprofio_clock *clock;
    int events_on;
    int woken;
    pprofio_stats stats;
    ledger_loss losses[PPROFIO_LOSS_N]; /* since the last batch */
    pprofio_event events[PPROFIO_LEDGER_MAX_EVENTS];
    int64_t event_cycle[PPROFIO_LEDGER_MAX_EVENTS]; /* the cycle whose batch carries it; -1: the next batch */
    size_t n_events;
    ledger_line logs[LEDGER_LOG_RING];
    size_t log_head, log_len;
};

int pprofio_ledger_new(const pprofio_clock *clock, int events_on, pprofio_ledger **out) {
    *out = NULL;
    pprofio_ledger *l = pprofio_calloc(1, sizeof *l);
    if (!l)
        return PPROFIO_ERR_NOMEM;
    if (pthread_mutex_init(&l->mu, NULL) != 0) {
        pprofio_free(l);
        return PPROFIO_ERR_NOMEM;
    }
    if (pprofio_cond_init(&l->cond) != 0) {
        pthread_mutex_destroy(&l->mu);
        pprofio_free(l);
        return PPROFIO_ERR_NOMEM;
    }
    l->clock = clock;
    l->events_on = events_on;
    *out = l;
    return PPROFIO_OK;
}

void pprofio_ledger_free(pprofio_ledger *l) {
    if (!l)
        return;
    pthread_cond_destroy(&l->cond);
    pthread_mutex_destroy(&l->mu);
    pprofio_free(l);
}

static void add_locked(pprofio_ledger *l, size_t stat, uint64_t n) {
    if (stat != LEDGER_NONE)
        *(uint64_t *)((char *)&l->stats + stat) += n;
}

void pprofio_ledger_add(pprofio_ledger *l, size_t stat, uint64_t n) {
    pthread_mutex_lock(&l->mu);
    add_locked(l, stat, n);
    pthread_mutex_unlock(&l->mu);
}

void pprofio_ledger_set(pprofio_ledger *l, size_t stat, int64_t v) {
    pthread_mutex_lock(&l->mu);
    *(int64_t *)((char *)&l->stats + stat) = v;
    pthread_mutex_unlock(&l->mu);
}

void pprofio_ledger_lose(pprofio_ledger *l, int reason, uint64_t profiles, uint64_t batches, uint64_t bytes) {
    if (reason < 0 || reason >= PPROFIO_LOSS_N)
        return;
    pthread_mutex_lock(&l->mu);
    add_locked(l, loss_kinds[reason].profiles, profiles);
    add_locked(l, loss_kinds[reason].batches, batches);
    if (loss_kinds[reason].bytes)
        l->stats.bytes_dropped += bytes;
    l->losses[reason].profiles += profiles;
    l->losses[reason].batches += batches;
    l->losses[reason].bytes += bytes;
    pthread_mutex_unlock(&l->mu);
}

void pprofio_ledger_lose_spans(pprofio_ledger *l, uint64_t spans) {
    pthread_mutex_lock(&l->mu);
    l->losses[PPROFIO_LOSS_SPANS].spans += spans;
    pthread_mutex_unlock(&l->mu);
}

int64_t pprofio_ledger_now(const pprofio_ledger *l) { return l->clock->now_ns(l->clock); }

/* push_event makes room for an event of `cycle`; NULL when full (counted) or when events are off. */
static pprofio_event *push_event(pprofio_ledger *l, int64_t cycle) {
    if (!l->events_on)
        return NULL;
    if (l->n_events == PPROFIO_LEDGER_MAX_EVENTS) {
        l->stats.events_dropped++;
        return NULL;
    }
    l->event_cycle[l->n_events] = cycle;
    return &l->events[l->n_events++];
}

void pprofio_ledger_event(pprofio_ledger *l, const pprofio_event *ev) { pprofio_ledger_event_of(l, ev, -1); }

void pprofio_ledger_event_of(pprofio_ledger *l, const pprofio_event *ev, int64_t cycle) {
    pthread_mutex_lock(&l->mu);
    pprofio_event *slot = push_event(l, cycle);
    if (slot)
        *slot = *ev;
    pthread_mutex_unlock(&l->mu);
}

/* report_losses turns the losses since the last batch into data_dropped events (mu held). */
static void report_losses(pprofio_ledger *l) {
    int64_t now = pprofio_ledger_now(l);
    for (int r = 0; r < PPROFIO_LOSS_N; r++) {
        ledger_loss *x = &l->losses[r];
        if ((x->profiles == 0 && x->batches == 0 && x->spans == 0) || !loss_kinds[r].reason)
            continue;
        char msg[160];
        if (x->spans > 0)
            snprintf(msg, sizeof msg, "%llu span(s) past the span bound, kept only in the overflow series: %s",
                     (unsigned long long)x->spans, loss_kinds[r].reason);
        else
            snprintf(msg, sizeof msg, "%llu profile(s) in %llu batch(es) dropped: %s",
                     (unsigned long long)x->profiles, (unsigned long long)x->batches, loss_kinds[r].reason);
        pprofio_event *ev = push_event(l, -1);
        if (!ev)
            break;
        pprofio_event_init(ev, "data_dropped", now, msg);
        pprofio_event_attr_u64(ev, "profiles", x->profiles);
        pprofio_event_attr_u64(ev, "batches", x->batches);
        pprofio_event_attr_u64(ev, "bytes", x->bytes);
        if (x->spans > 0)
            pprofio_event_attr_u64(ev, "spans", x->spans);
        pprofio_event_attr(ev, "reason", loss_kinds[r].reason);
        *x = (ledger_loss){0};
    }
}

size_t pprofio_ledger_take_events(pprofio_ledger *l, int64_t cycle, pprofio_event *out) {
    pthread_mutex_lock(&l->mu);
    report_losses(l);
    size_t n = 0, kept = 0;
    for (size_t i = 0; i < l->n_events; i++) {
        if (l->event_cycle[i] <= cycle) {
            out[n++] = l->events[i];
            continue;
        }
        l->event_cycle[kept] = l->event_cycle[i];
        l->events[kept++] = l->events[i];
    }
    l->n_events = kept;
    pthread_mutex_unlock(&l->mu);
    return n;
}

int pprofio_ledger_pending(pprofio_ledger *l) {
    pthread_mutex_lock(&l->mu);
    int pending = l->n_events > 0;
    for (int r = 0; r < PPROFIO_LOSS_N && !pending; r++)
        pending = loss_kinds[r].reason &&
                  (l->losses[r].profiles > 0 || l->losses[r].batches > 0 || l->losses[r].spans > 0);
    pthread_mutex_unlock(&l->mu);
    return pending;
}

void pprofio_ledger_log(pprofio_ledger *l, int level, const char *fmt, ...) {
    pthread_mutex_lock(&l->mu);
    if (l->log_len == LEDGER_LOG_RING) { /* Go drains the ring, after close too */
        l->stats.logs_dropped++;
        pthread_mutex_unlock(&l->mu);
        return;
    }
    ledger_line *line = &l->logs[(l->log_head + l->log_len) % LEDGER_LOG_RING];
    line->level = level;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line->msg, sizeof line->msg, fmt, ap);
    va_end(ap);
    l->log_len++;
    pthread_cond_signal(&l->cond);
    pthread_mutex_unlock(&l->mu);
}

int pprofio_ledger_take_log(pprofio_ledger *l, int *level, char msg[PPROFIO_LOG_LINE]) {
    pthread_mutex_lock(&l->mu);
    int got = l->log_len > 0;
    if (got) {
        ledger_line *line = &l->logs[l->log_head];
        *level = line->level;
        memcpy(msg, line->msg, PPROFIO_LOG_LINE);
        l->log_head = (l->log_head + 1) % LEDGER_LOG_RING;
        l->log_len--;
    }
    pthread_mutex_unlock(&l->mu);
    return got;
}

void pprofio_ledger_wait(pprofio_ledger *l, int64_t deadline_ns) {
    pthread_mutex_lock(&l->mu);
    if (l->log_len == 0 && !l->woken)
        l->clock->wait_until(l->clock, &l->cond, &l->mu, deadline_ns);
    l->woken = 0;
    pthread_mutex_unlock(&l->mu);
}

void pprofio_ledger_wake(pprofio_ledger *l) {
    pthread_mutex_lock(&l->mu);
    l->woken = 1;
    pthread_cond_broadcast(&l->cond);
    pthread_mutex_unlock(&l->mu);
}

void pprofio_ledger_read(pprofio_ledger *l, pprofio_stats *out) {
    pthread_mutex_lock(&l->mu);
    *out = l->stats;
    pthread_mutex_unlock(&l->mu);
}
