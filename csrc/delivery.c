//go:build ignore

/* delivery.c: batches made for each destination, and their upload threads (see delivery.h). */
#include "delivery.h"

#include <pthread.h>
#include <string.h>

#include "alloc.h"
#include "batch.h"
#include "errors.h"
#include "destination.h"
#include "pyroscope.h"
#include "sysio.h"

#define DELIVERY_SOURCE_STRS 7
#define DELIVERY_CYCLE_MAX 16 /* profiles of one cycle (output.c takes at most as many) */

/* An owned copy of a pprofio_source. */
typedef struct {
    pprofio_source s;
    char **keys, **values;
    char *strs[DELIVERY_SOURCE_STRS];
} source_copy;

/* One destination and the upload thread that drives it. */
typedef struct {
    pprofio_delivery *d;
    pprofio_destination *dest; /* NULL: not configured */
    pthread_t thread;
    int started;
} lane;

struct pprofio_delivery {
    lane lanes[2]; /* by pprofio_dest_kind */
    pprofio_ledger *ledger;
    source_copy source; /* who is sending, in every batch */
    pthread_mutex_t mu;
    int mu_ready;
    uint64_t sequence; /* of the last batch made (under mu) */
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
    if (pthread_mutex_init(&d->mu, NULL) != 0) {
        pprofio_free(d);
        return pprofio_set_error(err, PPROFIO_ERR_NOMEM, "agent: out of memory");
    }
    d->mu_ready = 1;
    int rc = source_dup(&d->source, &cfg->source, cfg->service_name);
    if (rc != PPROFIO_OK) {
        pprofio_delivery_free(d);
        return pprofio_set_error(err, rc, "agent: out of memory");
    }
    const char *urls[2] = {[PPROFIO_DEST_INGEST] = cfg->ingest_url, [PPROFIO_DEST_PYROSCOPE] = cfg->pyroscope_url};
    for (int k = 0; k < 2 && rc == PPROFIO_OK; k++) {
        d->lanes[k].d = d;
        if (urls[k] && *urls[k]) /* each its own backoff draws */
            rc = pprofio_destination_new(cfg, k, seed + (uint64_t)k * 0x9e3779b97f4a7c15u, clock, ledger,
                                         &d->lanes[k].dest, err);
    }
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
    for (int k = 0; k < 2; k++)
        pprofio_destination_free(d->lanes[k].dest);
    source_free(&d->source);
    if (d->mu_ready)
        pthread_mutex_destroy(&d->mu);
    pprofio_free(d);
}

/* make_pyroscope encodes a cycle's profiles as a gzipped push into b; a failure is counted and logged. */
static void make_pyroscope(pprofio_delivery *d, pprofio_profile **ps, size_t n, pprofio_delivery_batch *b) {
    pprofio_pyroscope_profile pp[DELIVERY_CYCLE_MAX];
    pprofio_bytes raw = {0};
    pprofio_error err = {0};
    if (n > DELIVERY_CYCLE_MAX)
        n = DELIVERY_CYCLE_MAX;
    uint64_t oldest = UINT64_MAX;
    for (size_t i = 0; i < n; i++) {
        pp[i] = (pprofio_pyroscope_profile){ps[i]->type, ps[i]->start_ns, ps[i]->end_ns, ps[i]->raw.p, ps[i]->raw.len};
        if ((uint64_t)ps[i]->start_ns < oldest)
            oldest = (uint64_t)ps[i]->start_ns;
    }
    int rc = pprofio_pyroscope_encode(&d->source.s, pp, n, &raw, &err);
    if (rc == PPROFIO_OK && (rc = pprofio_gzip_bytes(raw.p, raw.len, &b->pyroscope)) != PPROFIO_OK)
        pprofio_set_error(&err, rc, "pyroscope: cannot gzip a push: %s", pprofio_strstatus(rc));
    pprofio_bytes_free(&raw);
    if (rc == PPROFIO_OK) {
        b->pyroscope_stamp = oldest;
        pprofio_ledger_add(d->ledger, PPROFIO_STAT(pyroscope_batches_queued), 1);
        return;
    }
    pprofio_bytes_free(&b->pyroscope);
    pprofio_ledger_lose(d->ledger, PPROFIO_LOSS_PYRO_REJECTED, n, 1, 0);
    pprofio_ledger_log(d->ledger, PPROFIO_LOG_ERROR, "pprofio: dropped a push of %zu profile(s) for Pyroscope: %s", n,
                       err.msg);
}

int pprofio_delivery_make(pprofio_delivery *d, pprofio_profile **ps, size_t n, pprofio_deflated *seg,
                          pprofio_delivery_batch *b, pprofio_error *err) {
    memset(b, 0, sizeof *b);
    b->n_profiles = (uint32_t)n;
    if (d->lanes[PPROFIO_DEST_PYROSCOPE].dest && n > 0)
        make_pyroscope(d, ps, n, b);
    if (!d->lanes[PPROFIO_DEST_INGEST].dest) {
        if (seg)
            memset(seg, 0, n * sizeof *seg); /* local files are deflated on their own */
        return PPROFIO_OK;
    }
    pprofio_event events[PPROFIO_LEDGER_MAX_EVENTS];
    size_t n_events = pprofio_ledger_take_events(d->ledger, n > 0 ? ps[0]->cycle : INT64_MAX, events);
    pthread_mutex_lock(&d->mu);
    b->sequence = ++d->sequence;
    pthread_mutex_unlock(&d->mu);
    pprofio_ledger_add(d->ledger, PPROFIO_STAT(batches_queued), 1);
    pprofio_batch_id(b->id);
    int rc = pprofio_batch_encode_shared(&d->source.s, b->id, b->sequence, ps, n, events, n_events, &b->body, seg,
                                         err);
    if (rc != PPROFIO_OK)
        pprofio_bytes_free(&b->body);
    return rc;
}

void pprofio_delivery_push(pprofio_delivery *d, pprofio_delivery_batch *b) {
    pprofio_destination *ingest = d->lanes[PPROFIO_DEST_INGEST].dest, *pyro = d->lanes[PPROFIO_DEST_PYROSCOPE].dest;
    if (ingest && b->body.len > 0)
        pprofio_destination_push(ingest, b->id, b->sequence, b->n_profiles, &b->body);
    if (pyro && b->pyroscope.len > 0) {
        char id[PPROFIO_BATCH_ID_LEN + 1];
        pprofio_batch_id(id);
        pprofio_destination_push(pyro, id, b->pyroscope_stamp, b->n_profiles, &b->pyroscope);
    }
    pprofio_delivery_batch_free(b);
}

void pprofio_delivery_batch_free(pprofio_delivery_batch *b) {
    pprofio_bytes_free(&b->body);
    pprofio_bytes_free(&b->pyroscope);
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

static void *lane_main(void *arg) {
    lane *ln = arg;
    int act;
    while ((act = pprofio_destination_wait(ln->dest)) != PPROFIO_DEST_EXIT) {
        if (act == PPROFIO_DEST_SEND)
            pprofio_destination_send(ln->dest);
        else
            report_last(ln->d);
    }
    pprofio_destination_finish(ln->dest);
    return NULL;
}

/*
 * report_off says once, in the log, the stats and an event, that this
 * process cannot upload (no usable libcurl). Batches are still made and
 * kept (in the spool when there is one) for a process that can send them;
 * the event travels with them.
 */
static void report_off(pprofio_delivery *d) {
    const char *why = NULL;
    for (int k = 0; k < 2; k++)
        if (d->lanes[k].dest) {
            const char *w = pprofio_destination_off(d->lanes[k].dest);
            why = why ? why : w;
        }
    if (!why || !d->lanes[PPROFIO_DEST_INGEST].dest)
        return;
    pprofio_event ev;
    pprofio_event_init(&ev, "uploads_off", pprofio_ledger_now(d->ledger), why);
    pprofio_event_attr(&ev, "reason", why);
    pprofio_ledger_event(d->ledger, &ev);
}

int pprofio_delivery_start(pprofio_delivery *d) {
    report_off(d);
    for (int k = 0; k < 2; k++) {
        lane *ln = &d->lanes[k];
        if (!ln->dest)
            continue;
        int rc = pprofio_thread_create(&ln->thread, lane_main, ln);
        if (rc != 0)
            return rc; /* close ends the lanes that started */
        ln->started = 1;
    }
    return 0;
}

void pprofio_delivery_close(pprofio_delivery *d, int64_t deadline_ns) {
    if (!d)
        return;
    for (int k = 0; k < 2; k++) /* both at once: each spends the same deadline */
        if (d->lanes[k].started)
            pprofio_destination_closing(d->lanes[k].dest, deadline_ns);
    for (int k = 0; k < 2; k++)
        if (d->lanes[k].started) {
            pthread_join(d->lanes[k].thread, NULL);
            d->lanes[k].started = 0;
        }
}

void pprofio_delivery_gauges(pprofio_delivery *d, pprofio_stats *s) {
    for (int k = 0; k < 2; k++)
        if (d->lanes[k].dest)
            pprofio_destination_gauges(d->lanes[k].dest, s);
}
