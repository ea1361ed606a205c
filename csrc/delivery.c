//go:build ignore

/* delivery.c: the upload thread over the spool (see delivery.h). */
#include "delivery.h"

#include <pthread.h>
#include <string.h>

#include "alloc.h"
#include "batch.h"
#include "errors.h"
#include "retry.h"
#include "spool.h"
#include "sysio.h"
#include "upload.h"

#define DELIVERY_SOURCE_STRS 7

/* An owned copy of a pprofio_source. */
typedef struct {
    pprofio_source s;
    char **keys, **values;
    char *strs[DELIVERY_SOURCE_STRS];
} source_copy;

struct pprofio_delivery {
    pprofio_uploader *uploader;
    pprofio_spool *spool;
    pprofio_ledger *ledger;
    const pprofio_clock *clock;
    source_copy source;  /* who is sending, in every batch */
    uint64_t sequence;   /* of the last batch made (under mu) */
    pprofio_retry retry; /* the upload thread's own */
    int off;             /* no usable libcurl: nothing is sent */
    int close_seen, reported; /* the upload thread's own, while closing */

    pthread_mutex_t mu;
    pthread_cond_t cond; /* a batch was pushed, or closing */
    int sync_ready;
    int closing;
    int64_t deadline;
    pthread_t thread;
    int started;
};

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
    for (size_t i = 0; i < DELIVERY_SOURCE_STRS; i++)
        pprofio_free(c->strs[i]);
    memset(c, 0, sizeof *c);
}

static int source_dup(source_copy *c, const pprofio_source *s, const char *service) {
    int failed = 0;
    memset(c, 0, sizeof *c);
    const char *in[DELIVERY_SOURCE_STRS] = {service, s->hostname, s->instance_id, s->agent_version,
                                          s->runtime_version, s->os, s->arch};
    for (size_t i = 0; i < DELIVERY_SOURCE_STRS; i++)
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

int pprofio_delivery_new(const pprofio_config *cfg, uint64_t seed, const pprofio_clock *clock,
                         pprofio_ledger *ledger, pprofio_delivery **out, pprofio_error *err) {
    *out = NULL;
    pprofio_delivery *d = pprofio_calloc(1, sizeof *d);
    if (!d)
        return pprofio_set_error(err, PPROFIO_ERR_NOMEM, "agent: out of memory");
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
    int rc = source_dup(&d->source, &cfg->source, cfg->service_name);
    if (rc != PPROFIO_OK) {
        pprofio_delivery_free(d);
        return pprofio_set_error(err, rc, "agent: out of memory");
    }
    rc = pprofio_uploader_new(cfg, &d->uploader, err);
    if (rc == PPROFIO_OK)
        rc = pprofio_spool_open(cfg->spool_dir, cfg->source.instance_id, cfg->max_spool_bytes,
                                cfg->max_buffer_bytes, &d->spool, err);
    if (rc != PPROFIO_OK) {
        pprofio_delivery_free(d);
        return rc;
    }
    *out = d;
    return PPROFIO_OK;
}

void pprofio_delivery_free(pprofio_delivery *d) {
    if (!d)
        return;
    pprofio_delivery_close(d, 0);
    pprofio_spool_close(d->spool);
    pprofio_uploader_free(d->uploader);
    source_free(&d->source);
    if (d->sync_ready) {
        pthread_cond_destroy(&d->cond);
        pthread_mutex_destroy(&d->mu);
    }
    pprofio_free(d);
}

/* take_spool_counts records what the spool lost, found or adopted. */
static void take_spool_counts(pprofio_delivery *d) {
    pprofio_spool_counts c;
    pprofio_spool_take_counts(d->spool, &c);
    pprofio_ledger *l = d->ledger;
    pprofio_ledger_add(l, PPROFIO_STAT(batches_adopted), c.adopted);
    if (c.evicted.batches > 0) {
        pprofio_ledger_lose(l, PPROFIO_LOSS_SPOOL, c.evicted.profiles, c.evicted.batches, c.evicted.bytes);
        pprofio_ledger_log(l, PPROFIO_LOG_WARN, "pprofio: the upload queue is full; dropped the oldest %llu batch(es)",
                           (unsigned long long)c.evicted.batches);
    }
    if (c.corrupt_files > 0) {
        pprofio_ledger_lose(l, PPROFIO_LOSS_CORRUPT, 0, c.corrupt_files, 0);
        pprofio_ledger_log(l, PPROFIO_LOG_WARN, "pprofio: removed %llu damaged or foreign file(s) from the spool",
                           (unsigned long long)c.corrupt_files);
    }
    if (c.adopted > 0)
        pprofio_ledger_log(l, PPROFIO_LOG_INFO,
                           "pprofio: found %llu batch(es) left by an earlier process; sending them",
                           (unsigned long long)c.adopted);
    pprofio_ledger_set(l, PPROFIO_STAT(spool_bytes), pprofio_spool_disk_bytes(d->spool));
    pprofio_ledger_set(l, PPROFIO_STAT(queued_batches), (int64_t)pprofio_spool_len(d->spool));
}

int pprofio_delivery_make(pprofio_delivery *d, pprofio_profile **ps, size_t n, pprofio_deflated *seg,
                          pprofio_delivery_batch *b, pprofio_error *err) {
    pprofio_event events[PPROFIO_LEDGER_MAX_EVENTS];
    size_t n_events = pprofio_ledger_take_events(d->ledger, n > 0 ? ps[0]->cycle : INT64_MAX, events);
    pthread_mutex_lock(&d->mu);
    b->sequence = ++d->sequence;
    pthread_mutex_unlock(&d->mu);
    pprofio_ledger_add(d->ledger, PPROFIO_STAT(batches_queued), 1);
    pprofio_batch_id(b->id);
    b->n_profiles = (uint32_t)n;
    b->body = (pprofio_bytes){0};
    int rc = pprofio_batch_encode_shared(&d->source.s, b->id, b->sequence, ps, n, events, n_events, &b->body, seg,
                                         err);
    if (rc != PPROFIO_OK)
        pprofio_bytes_free(&b->body);
    return rc;
}

void pprofio_delivery_push(pprofio_delivery *d, pprofio_delivery_batch *b) {
    pprofio_error err = {0};
    if (pprofio_spool_push(d->spool, b->id, b->sequence, b->n_profiles, &b->body, 0, &err) != PPROFIO_OK) {
        pprofio_ledger_add(d->ledger, PPROFIO_STAT(spool_errors), 1);
        pprofio_ledger_log(d->ledger, PPROFIO_LOG_ERROR, "pprofio: %s", err.msg);
    }
    pprofio_bytes_free(&b->body);
    pthread_mutex_lock(&d->mu);
    pthread_cond_signal(&d->cond);
    pthread_mutex_unlock(&d->mu);
}

/* report_last makes one more batch, of events only, for the losses and events still waiting at close. */
static void report_last(pprofio_delivery *d) {
    pprofio_delivery_batch b;
    pprofio_error err = {0};
    if (pprofio_delivery_make(d, NULL, 0, NULL, &b, &err) == PPROFIO_OK)
        pprofio_delivery_push(d, &b);
    else
        pprofio_ledger_log(d->ledger, PPROFIO_LOG_ERROR, "pprofio: cannot report the last losses: %s", err.msg);
}

/* drop_head drops the batch just sent and records why. */
static void drop_head(pprofio_delivery *d, const pprofio_spool_head *h, int reason, const char *why) {
    pprofio_ledger_lose(d->ledger, reason, h->n_profiles, 1, h->len);
    pprofio_ledger_log(d->ledger, PPROFIO_LOG_ERROR, "pprofio: dropped batch %s (%u profile(s)): %s", h->batch_id,
                       h->n_profiles, why);
    pprofio_spool_pop(d->spool);
}

/* split_head replaces the batch just sent by its two halves, at the front. */
static int split_head(pprofio_delivery *d, const pprofio_spool_head *h) {
    pprofio_bytes first = {0}, second = {0};
    char id1[33], id2[33];
    pprofio_error err = {0};
    int rc = pprofio_batch_split(h->payload, h->len, &first, id1, &second, id2, &err);
    if (rc == PPROFIO_OK) {
        uint32_t n1 = h->n_profiles / 2, n2 = h->n_profiles - n1;
        pprofio_spool_pop(d->spool);
        pprofio_spool_push(d->spool, id2, h->sequence, n2, &second, 1, NULL);
        pprofio_spool_push(d->spool, id1, h->sequence, n1, &first, 1, NULL);
    }
    pprofio_bytes_free(&first);
    pprofio_bytes_free(&second);
    return rc;
}

/*
 * drop_keeping_events drops a batch that is too large even alone (413),
 * but sends its events (the losses and skips it reports) on as a part of
 * their own, same sequence, new id, at the front.
 */
static void drop_keeping_events(pprofio_delivery *d, const pprofio_spool_head *h) {
    pprofio_bytes part = {0};
    char id[PPROFIO_BATCH_ID_LEN + 1];
    size_t n_events = 0;
    uint64_t sequence = h->sequence;
    if (h->n_profiles > 0 && /* an events-only part refused too is dropped with them */
        pprofio_batch_events_only(h->payload, h->len, &part, id, &n_events, NULL) != PPROFIO_OK)
        n_events = 0;
    drop_head(d, h, PPROFIO_LOSS_TOO_LARGE, "too large for the ingest service even alone (413)");
    if (n_events > 0)
        pprofio_spool_push(d->spool, id, sequence, 0, &part, 1, NULL);
    pprofio_bytes_free(&part);
}

/* log_health says once per change how delivery is doing. */
static void log_health(pprofio_delivery *d, const pprofio_upload_result *r) {
    if (d->retry.health == PPROFIO_HEALTH_OK)
        pprofio_ledger_log(d->ledger, PPROFIO_LOG_INFO, "pprofio: uploads are going through again");
    else if (d->retry.health == PPROFIO_HEALTH_AUTH)
        pprofio_ledger_log(d->ledger, PPROFIO_LOG_ERROR,
                           "pprofio: the ingest service refused the API key (%s); batches are kept, retrying in 60 s "
                           "or more",
                           r->detail);
    else
        pprofio_ledger_log(d->ledger, PPROFIO_LOG_WARN,
                           "pprofio: uploads are failing (%s); batches are kept and retried", r->detail);
}

/* handle applies what retry.h says about one answer. */
static void handle(pprofio_delivery *d, const pprofio_spool_head *h, const pprofio_upload_result *r) {
    int changed = 0;
    int act = pprofio_retry_answer(&d->retry, r, d->clock->now_ns(d->clock), &changed);
    if (changed)
        log_health(d, r);
    switch (act) {
    case PPROFIO_RETRY_DONE:
        pprofio_ledger_add(d->ledger, PPROFIO_STAT(batches_sent), 1);
        pprofio_spool_pop(d->spool);
        return;
    case PPROFIO_RETRY_DROP:
        drop_head(d, h, PPROFIO_LOSS_REJECTED, r->detail);
        return;
    case PPROFIO_RETRY_SPLIT:
        if (h->n_profiles >= 2 && split_head(d, h) == PPROFIO_OK)
            pprofio_ledger_add(d->ledger, PPROFIO_STAT(batches_split), 1);
        else
            drop_keeping_events(d, h);
        return;
    default:
        pprofio_ledger_add(d->ledger, PPROFIO_STAT(batches_retried), 1);
        return;
    }
}

/* send_head posts the oldest batch and handles the answer. */
static void send_head(pprofio_delivery *d) {
    pprofio_spool_head h;
    int empty = pprofio_spool_peek(d->spool, &h);
    if (empty < 0) /* could not load it now: wait rather than spin */
        pprofio_retry_defer(&d->retry, d->clock->now_ns(d->clock), PPROFIO_NS_PER_SEC);
    if (empty)
        return;
    pprofio_upload_result r;
    uint64_t sent = 0;
    pprofio_uploader_post(d->uploader, h.batch_id, h.payload, h.len, 0, &r, &sent);
    pprofio_ledger_add(d->ledger, PPROFIO_STAT(bytes_sent), sent);
    handle(d, &h, &r);
    pprofio_ledger_set(d->ledger, PPROFIO_STAT(cpu_upload_ns), pprofio_thread_cpu_ns());
}

/* ready waits until a batch may be sent (mu held); 0 when the thread should end. */
static int ready(pprofio_delivery *d) {
    for (;;) {
        take_spool_counts(d);
        if (d->off) { /* nothing can be sent: count what waits until closing */
            if (d->closing)
                return 0;
            d->clock->wait_until(d->clock, &d->cond, &d->mu, PPROFIO_FOREVER);
            continue;
        }
        int64_t now = d->clock->now_ns(d->clock);
        size_t queued = pprofio_spool_len(d->spool);
        if (d->closing && !d->close_seen) {
            d->close_seen = 1;
            pprofio_retry_closing(&d->retry, now);
        }
        if (d->closing && queued == 0 && !d->reported && now < d->deadline && pprofio_ledger_pending(d->ledger)) {
            d->reported = 1; /* losses (or events) since the last batch: one more batch says so */
            pthread_mutex_unlock(&d->mu);
            report_last(d);
            pthread_mutex_lock(&d->mu);
            continue;
        }
        if (d->closing && (queued == 0 || now >= d->deadline))
            return 0;
        if (queued == 0) {
            d->clock->wait_until(d->clock, &d->cond, &d->mu, PPROFIO_FOREVER);
            continue;
        }
        if (now >= d->retry.next_at)
            return 1;
        if (d->closing && d->retry.next_at >= d->deadline)
            return 0; /* the next try would come after the deadline */
        d->clock->wait_until(d->clock, &d->cond, &d->mu, d->retry.next_at);
    }
}

static void *delivery_main(void *arg) {
    pprofio_delivery *d = arg;
    pthread_mutex_lock(&d->mu);
    while (ready(d)) {
        pthread_mutex_unlock(&d->mu);
        send_head(d);
        pthread_mutex_lock(&d->mu);
    }
    pthread_mutex_unlock(&d->mu);
    take_spool_counts(d);
    return NULL;
}

/*
 * report_off says once, in the log, the stats and an event, that this
 * process cannot upload (no usable libcurl). Batches are still made and
 * kept (in the spool when there is one) for a process that can send them;
 * the event travels with them.
 */
static void report_off(pprofio_delivery *d) {
    const char *why = pprofio_uploader_off(d->uploader);
    if (!why)
        return;
    d->off = 1;
    pprofio_ledger_set(d->ledger, PPROFIO_STAT(uploads_off), 1);
    pprofio_ledger_log(d->ledger, PPROFIO_LOG_ERROR,
                       "pprofio: uploads are off: %s; batches are kept in the spool for a process that can send them",
                       why);
    pprofio_event ev;
    pprofio_event_init(&ev, "uploads_off", pprofio_ledger_now(d->ledger), why);
    pprofio_event_attr(&ev, "reason", why);
    pprofio_ledger_event(d->ledger, &ev);
}

int pprofio_delivery_start(pprofio_delivery *d) {
    report_off(d);
    int rc = pprofio_thread_create(&d->thread, delivery_main, d);
    if (rc == 0)
        d->started = 1;
    return rc;
}

void pprofio_delivery_close(pprofio_delivery *d, int64_t deadline_ns) {
    if (!d || !d->sync_ready)
        return;
    pthread_mutex_lock(&d->mu);
    int started = d->started;
    d->started = 0;
    if (started) {
        d->closing = 1;
        d->deadline = deadline_ns;
        if (d->uploader)
            pprofio_uploader_abort_at(d->uploader, deadline_ns);
        pthread_cond_broadcast(&d->cond);
    }
    pthread_mutex_unlock(&d->mu);
    if (started)
        pthread_join(d->thread, NULL);
}

void pprofio_delivery_gauges(pprofio_delivery *d, pprofio_stats *s) {
    s->spool_bytes = pprofio_spool_disk_bytes(d->spool);
    s->queued_batches = (int64_t)pprofio_spool_len(d->spool);
}
