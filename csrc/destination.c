//go:build ignore

/* destination.c: one destination's queue, client and retry state (see destination.h). */
#include "destination.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "alloc.h"
#include "batch.h"
#include "errors.h"
#include "pyroscope.h"
#include "retry.h"
#include "spool.h"
#include "sysio.h"

/* What differs between the two destinations: their names, counters and losses. */
typedef struct {
    const char *who; /* in log lines: "the ingest service", "Pyroscope" */
    const char *what; /* "uploads", "pushes to Pyroscope" */
    const char *cred; /* what a 401/403 refuses */
    size_t sent, retried, split, bytes_sent, cpu, spool_bytes, queued, adopted;
    int loss_rejected, loss_too_large, loss_spool, loss_corrupt;
} dest_kind;

static const dest_kind kinds[] = {
    [PPROFIO_DEST_INGEST] = {"the ingest service", "uploads", "the API key", PPROFIO_STAT(batches_sent),
                             PPROFIO_STAT(batches_retried), PPROFIO_STAT(batches_split), PPROFIO_STAT(bytes_sent),
                             PPROFIO_STAT(cpu_upload_ns), PPROFIO_STAT(spool_bytes), PPROFIO_STAT(queued_batches),
                             PPROFIO_STAT(batches_adopted), PPROFIO_LOSS_REJECTED, PPROFIO_LOSS_TOO_LARGE,
                             PPROFIO_LOSS_SPOOL, PPROFIO_LOSS_CORRUPT},
    [PPROFIO_DEST_PYROSCOPE] = {"Pyroscope", "pushes to Pyroscope", "the credentials", PPROFIO_STAT(pyroscope_batches_sent),
                                PPROFIO_STAT(pyroscope_batches_retried), PPROFIO_STAT(pyroscope_batches_split),
                                PPROFIO_STAT(pyroscope_bytes_sent), PPROFIO_STAT(pyroscope_cpu_upload_ns),
                                PPROFIO_STAT(pyroscope_spool_bytes), PPROFIO_STAT(pyroscope_queued_batches),
                                PPROFIO_STAT(pyroscope_batches_adopted), PPROFIO_LOSS_PYRO_REJECTED,
                                PPROFIO_LOSS_PYRO_REJECTED, PPROFIO_LOSS_PYRO_SPOOL, PPROFIO_LOSS_PYRO_SPOOL},
};

struct pprofio_destination {
    int kind;
    const dest_kind *k;
    pprofio_uploader *uploader;
    pprofio_spool *spool;
    pprofio_ledger *ledger;
    const pprofio_clock *clock;
    pprofio_retry retry;      /* the upload thread's own */
    int off;                  /* no usable libcurl: nothing is sent */
    int close_seen, reported; /* the upload thread's own, while closing */

    pthread_mutex_t mu;
    pthread_cond_t cond; /* a batch was pushed, or closing */
    int sync_ready;
    int closing;
    int64_t deadline;
};

/* open_spool opens the queue: <spool_dir> for ingest, <spool_dir>/pyroscope for Pyroscope. */
static int open_spool(pprofio_destination *d, const pprofio_config *cfg, pprofio_error *err) {
    const char *dir = cfg->spool_dir;
    char *own = NULL;
    if (d->kind == PPROFIO_DEST_PYROSCOPE && dir && *dir) {
        size_t n = strlen(dir) + sizeof "/pyroscope";
        if (!(own = pprofio_malloc(n)))
            return pprofio_set_error(err, PPROFIO_ERR_NOMEM, "agent: out of memory");
        snprintf(own, n, "%s/pyroscope", dir);
        dir = own;
    }
    int rc = pprofio_spool_open(dir, cfg->source.instance_id, cfg->max_spool_bytes, cfg->max_buffer_bytes,
                                &d->spool, err);
    pprofio_free(own);
    return rc;
}

int pprofio_destination_new(const pprofio_config *cfg, int kind, uint64_t seed, const pprofio_clock *clock,
                            pprofio_ledger *ledger, pprofio_destination **out, pprofio_error *err) {
    *out = NULL;
    pprofio_destination *d = pprofio_calloc(1, sizeof *d);
    if (!d)
        return pprofio_set_error(err, PPROFIO_ERR_NOMEM, "agent: out of memory");
    d->kind = kind;
    d->k = &kinds[kind];
    d->ledger = ledger;
    d->clock = clock;
    pprofio_retry_init(&d->retry, seed);
    if (pthread_mutex_init(&d->mu, NULL) != 0) {
        pprofio_free(d);
        return pprofio_set_error(err, PPROFIO_ERR_NOMEM, "agent: out of memory");
    }
    if (pprofio_cond_init(&d->cond) != 0) {
        pthread_mutex_destroy(&d->mu);
        pprofio_free(d);
        return pprofio_set_error(err, PPROFIO_ERR_NOMEM, "agent: out of memory");
    }
    d->sync_ready = 1;
    int rc = kind == PPROFIO_DEST_PYROSCOPE ? pprofio_uploader_new_pyroscope(cfg, &d->uploader, err)
                                            : pprofio_uploader_new(cfg, &d->uploader, err);
    if (rc == PPROFIO_OK)
        rc = open_spool(d, cfg, err);
    if (rc != PPROFIO_OK) {
        pprofio_destination_free(d);
        return rc;
    }
    *out = d;
    return PPROFIO_OK;
}

void pprofio_destination_free(pprofio_destination *d) {
    if (!d)
        return;
    pprofio_spool_close(d->spool);
    pprofio_uploader_free(d->uploader);
    if (d->sync_ready) {
        pthread_cond_destroy(&d->cond);
        pthread_mutex_destroy(&d->mu);
    }
    pprofio_free(d);
}

const char *pprofio_destination_off(pprofio_destination *d) {
    const char *why = pprofio_uploader_off(d->uploader);
    if (!why)
        return NULL;
    d->off = 1;
    pprofio_ledger_set(d->ledger, PPROFIO_STAT(uploads_off), 1);
    pprofio_ledger_log(d->ledger, PPROFIO_LOG_ERROR,
                       "pprofio: %s are off: %s; batches are kept in the spool for a process that can send them",
                       d->k->what, why);
    return why;
}

/* take_spool_counts records what the spool lost, found or adopted. */
static void take_spool_counts(pprofio_destination *d) {
    pprofio_spool_counts c;
    pprofio_spool_take_counts(d->spool, &c);
    pprofio_ledger *l = d->ledger;
    pprofio_ledger_add(l, d->k->adopted, c.adopted);
    if (c.evicted.batches > 0) {
        pprofio_ledger_lose(l, d->k->loss_spool, c.evicted.profiles, c.evicted.batches, c.evicted.bytes);
        pprofio_ledger_log(l, PPROFIO_LOG_WARN, "pprofio: the queue for %s is full; dropped the oldest %llu batch(es)",
                           d->k->who, (unsigned long long)c.evicted.batches);
    }
    if (c.corrupt_files > 0) {
        pprofio_ledger_lose(l, d->k->loss_corrupt, 0, c.corrupt_files, 0);
        pprofio_ledger_log(l, PPROFIO_LOG_WARN, "pprofio: removed %llu damaged or foreign file(s) from the spool",
                           (unsigned long long)c.corrupt_files);
    }
    if (c.adopted > 0)
        pprofio_ledger_log(l, PPROFIO_LOG_INFO,
                           "pprofio: found %llu batch(es) for %s left by an earlier process; sending them",
                           (unsigned long long)c.adopted, d->k->who);
    pprofio_ledger_set(l, d->k->spool_bytes, pprofio_spool_disk_bytes(d->spool));
    pprofio_ledger_set(l, d->k->queued, (int64_t)pprofio_spool_len(d->spool));
}

void pprofio_destination_push(pprofio_destination *d, const char *id, uint64_t stamp, uint32_t n_profiles,
                              pprofio_bytes *body) {
    pprofio_error err = {0};
    if (pprofio_spool_push(d->spool, id, stamp, n_profiles, body, 0, &err) != PPROFIO_OK) {
        pprofio_ledger_add(d->ledger, PPROFIO_STAT(spool_errors), 1);
        pprofio_ledger_log(d->ledger, PPROFIO_LOG_ERROR, "pprofio: %s", err.msg);
    }
    pprofio_bytes_free(body);
    pthread_mutex_lock(&d->mu);
    pthread_cond_signal(&d->cond);
    pthread_mutex_unlock(&d->mu);
}

/* drop_head drops the batch just sent (or too old to send) and records why. */
static void drop_head(pprofio_destination *d, const pprofio_spool_head *h, int reason, const char *why) {
    pprofio_ledger_lose(d->ledger, reason, h->n_profiles, 1, h->len);
    pprofio_ledger_log(d->ledger, PPROFIO_LOG_ERROR, "pprofio: dropped batch %s for %s (%u profile(s)): %s",
                       h->batch_id, d->k->who, h->n_profiles, why);
    pprofio_spool_pop(d->spool);
}

/* split_head replaces the batch just sent by its two halves, at the front. */
static int split_head(pprofio_destination *d, const pprofio_spool_head *h) {
    pprofio_bytes first = {0}, second = {0};
    char id1[33], id2[33];
    uint32_t n1 = h->n_profiles / 2, n2 = h->n_profiles - n1;
    pprofio_error err = {0};
    int rc;
    if (d->kind == PPROFIO_DEST_PYROSCOPE) {
        size_t s1 = 0, s2 = 0;
        rc = pprofio_pyroscope_split(h->payload, h->len, &first, &second, &s1, &s2, &err);
        n1 = (uint32_t)s1, n2 = (uint32_t)s2;
        pprofio_batch_id(id1);
        pprofio_batch_id(id2);
    } else {
        rc = pprofio_batch_split(h->payload, h->len, &first, id1, &second, id2, &err);
    }
    if (rc == PPROFIO_OK) {
        pprofio_spool_pop(d->spool);
        pprofio_spool_push(d->spool, id2, h->sequence, n2, &second, 1, NULL);
        pprofio_spool_push(d->spool, id1, h->sequence, n1, &first, 1, NULL);
    }
    pprofio_bytes_free(&first);
    pprofio_bytes_free(&second);
    return rc;
}

/*
 * drop_keeping_events drops a batch that is refused (400, other 4xx) or
 * too large even alone (413), but sends its events (the losses, skips and
 * leak alerts it reports) on as a part of their own, same sequence, new
 * id, at the front: the refusal is of the batch, and the events would
 * otherwise go with it unreported. Pyroscope's pushes carry no events:
 * they are just dropped.
 */
static void drop_keeping_events(pprofio_destination *d, const pprofio_spool_head *h, int reason, const char *why) {
    pprofio_bytes part = {0};
    char id[PPROFIO_BATCH_ID_LEN + 1];
    size_t n_events = 0;
    uint64_t sequence = h->sequence;
    if (d->kind == PPROFIO_DEST_INGEST && h->n_profiles > 0 && /* an events-only part refused too is dropped */
        pprofio_batch_events_only(h->payload, h->len, &part, id, &n_events, NULL) != PPROFIO_OK)
        n_events = 0;
    drop_head(d, h, reason, why);
    if (n_events > 0)
        pprofio_spool_push(d->spool, id, sequence, 0, &part, 1, NULL);
    pprofio_bytes_free(&part);
}

/* log_health says once per change how delivery to this destination is doing. */
static void log_health(pprofio_destination *d, const pprofio_upload_result *r) {
    const char *who = d->k->who;
    switch (d->retry.health) {
    case PPROFIO_HEALTH_OK:
        pprofio_ledger_log(d->ledger, PPROFIO_LOG_INFO, "pprofio: %s are going through again", d->k->what);
        return;
    case PPROFIO_HEALTH_AUTH:
        pprofio_ledger_log(d->ledger, PPROFIO_LOG_ERROR,
                           "pprofio: %s refused %s (%s); batches are kept, retrying in 60 s or more", who,
                           d->k->cred, r->detail);
        return;
    case PPROFIO_HEALTH_MISSING:
        pprofio_ledger_log(d->ledger, PPROFIO_LOG_ERROR,
                           "pprofio: %s has no push API at the configured URL (%s); check PyroscopeURL; batches are "
                           "kept, retrying in 60 s or more",
                           who, r->detail);
        return;
    default:
        pprofio_ledger_log(d->ledger, PPROFIO_LOG_WARN, "pprofio: %s are failing (%s); batches are kept and retried",
                           d->k->what, r->detail);
    }
}

/* handle applies what retry.h says about one answer. */
static void handle(pprofio_destination *d, const pprofio_spool_head *h, const pprofio_upload_result *r) {
    int changed = 0;
    int act = pprofio_retry_answer(&d->retry, r, d->clock->now_ns(d->clock), &changed);
    if (changed)
        log_health(d, r);
    switch (act) {
    case PPROFIO_RETRY_DONE:
        pprofio_ledger_add(d->ledger, d->k->sent, 1);
        pprofio_spool_pop(d->spool);
        return;
    case PPROFIO_RETRY_DROP:
        drop_keeping_events(d, h, d->k->loss_rejected, r->detail);
        return;
    case PPROFIO_RETRY_SPLIT:
        if (h->n_profiles >= 2 && split_head(d, h) == PPROFIO_OK)
            pprofio_ledger_add(d->ledger, d->k->split, 1);
        else
            drop_keeping_events(d, h, d->k->loss_too_large, "too large even alone (413)");
        return;
    default:
        pprofio_ledger_add(d->ledger, d->k->retried, 1);
        return;
    }
}

/* too_old says whether a queued Pyroscope push is past what Pyroscope takes. */
static int too_old(const pprofio_destination *d, const pprofio_spool_head *h, int64_t now) {
    return d->kind == PPROFIO_DEST_PYROSCOPE && h->sequence > 0 && h->sequence < (uint64_t)INT64_MAX &&
           now - (int64_t)h->sequence > PPROFIO_PYROSCOPE_MAX_AGE_NS;
}

void pprofio_destination_send(pprofio_destination *d) {
    pprofio_spool_head h;
    int64_t now = d->clock->now_ns(d->clock);
    int empty = pprofio_spool_peek(d->spool, &h);
    if (empty < 0) /* could not load it now: wait rather than spin */
        pprofio_retry_defer(&d->retry, now, PPROFIO_NS_PER_SEC);
    if (empty)
        return;
    if (too_old(d, &h, now)) {
        drop_head(d, &h, PPROFIO_LOSS_PYRO_OLD, "older than the hour Pyroscope takes");
        return;
    }
    pprofio_upload_result r;
    uint64_t sent = 0;
    pprofio_uploader_post(d->uploader, h.batch_id, h.payload, h.len, 0, &r, &sent);
    pprofio_ledger_add(d->ledger, d->k->bytes_sent, sent);
    handle(d, &h, &r);
    pprofio_ledger_set(d->ledger, d->k->cpu, pprofio_thread_cpu_ns());
}

/* wait_locked is pprofio_destination_wait with mu held. */
static int wait_locked(pprofio_destination *d) {
    for (;;) {
        take_spool_counts(d);
        if (d->off) { /* nothing can be sent: count what waits until closing */
            if (d->closing)
                return PPROFIO_DEST_EXIT;
            d->clock->wait_until(d->clock, &d->cond, &d->mu, PPROFIO_FOREVER);
            continue;
        }
        int64_t now = d->clock->now_ns(d->clock);
        size_t queued = pprofio_spool_len(d->spool);
        if (d->closing && !d->close_seen) {
            d->close_seen = 1;
            pprofio_retry_closing(&d->retry, now);
        }
        if (d->closing && queued == 0 && !d->reported && now < d->deadline && d->kind == PPROFIO_DEST_INGEST &&
            pprofio_ledger_pending(d->ledger)) {
            d->reported = 1; /* losses (or events) since the last batch: one more batch says so */
            return PPROFIO_DEST_LAST;
        }
        if (d->closing && (queued == 0 || now >= d->deadline))
            return PPROFIO_DEST_EXIT;
        if (queued == 0) {
            d->clock->wait_until(d->clock, &d->cond, &d->mu, PPROFIO_FOREVER);
            continue;
        }
        if (now >= d->retry.next_at)
            return PPROFIO_DEST_SEND;
        if (d->closing && d->retry.next_at >= d->deadline)
            return PPROFIO_DEST_EXIT; /* the next try would come after the deadline */
        d->clock->wait_until(d->clock, &d->cond, &d->mu, d->retry.next_at);
    }
}

int pprofio_destination_wait(pprofio_destination *d) {
    pthread_mutex_lock(&d->mu);
    int act = wait_locked(d);
    pthread_mutex_unlock(&d->mu);
    return act;
}

void pprofio_destination_closing(pprofio_destination *d, int64_t deadline_ns) {
    pthread_mutex_lock(&d->mu);
    d->closing = 1;
    d->deadline = deadline_ns;
    pprofio_uploader_abort_at(d->uploader, deadline_ns);
    pthread_cond_broadcast(&d->cond);
    pthread_mutex_unlock(&d->mu);
}

void pprofio_destination_finish(pprofio_destination *d) { take_spool_counts(d); }

void pprofio_destination_gauges(pprofio_destination *d, pprofio_stats *s) {
    *(int64_t *)((char *)s + d->k->spool_bytes) = pprofio_spool_disk_bytes(d->spool);
    *(int64_t *)((char *)s + d->k->queued) = (int64_t)pprofio_spool_len(d->spool);
}
