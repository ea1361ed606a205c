//go:build ignore

/* output.c: deltas, the leak rule, local files and batches (see output.h). */
#include "output.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "alloc.h"
#include "leak.h"
#include "pprof.h"
#include "store.h"
#include "sysio.h"
#include "timeline.h"

#define OUTPUT_CYCLE_MAX 16 /* profiles of one cycle taken at once */

struct pprofio_output {
    char *service;
    char *output_dir; /* NULL: no local storage */
    int64_t max_buffer;
    pprofio_intake *intake;
    pprofio_delivery *delivery; /* NULL: no upload */
    pprofio_ledger *ledger;

    /* the output thread's own */
    pprofio_baseline *baselines[PPROFIO_PROFILE_MAX + 1];
    int base_warned[PPROFIO_PROFILE_MAX + 1];
    pprofio_leak leak;
    int write_failing, no_sink_logged;
    int64_t cpu_delta;

    atomic_int final;
    pprofio_error final_err; /* read by close after the join */
    pthread_t thread;
    int started;
};

/* ---- construction ----------------------------------------------------- */

int pprofio_output_new(const pprofio_config *cfg, pprofio_intake *intake, pprofio_delivery *delivery,
                       pprofio_ledger *ledger, pprofio_output **out) {
    *out = NULL;
    pprofio_output *o = pprofio_calloc(1, sizeof *o);
    if (!o)
        return PPROFIO_ERR_NOMEM;
    o->intake = intake;
    o->delivery = delivery;
    o->ledger = ledger;
    o->max_buffer = cfg->max_buffer_bytes;
    pprofio_leak_init(&o->leak, cfg->leak_windows, cfg->leak_min_growth_pct, cfg->leak_min_growth);
    o->service = pprofio_strdup(cfg->service_name);
    int failed = !o->service;
    if (cfg->output_dir && *cfg->output_dir && !(o->output_dir = pprofio_strdup(cfg->output_dir)))
        failed = 1;
    if (failed) {
        pprofio_output_free(o);
        return PPROFIO_ERR_NOMEM;
    }
    *out = o;
    return PPROFIO_OK;
}

void pprofio_output_free(pprofio_output *o) {
    if (!o)
        return;
    pprofio_output_close(o, NULL);
    for (int t = 0; t <= PPROFIO_PROFILE_MAX; t++)
        pprofio_baseline_free(o->baselines[t]);
    pprofio_leak_free(&o->leak);
    pprofio_free(o->service);
    pprofio_free(o->output_dir);
    pprofio_free(o);
}

/* ---- deltas and the leak rule ----------------------------------------- */

/* report_delta records how a delta went. */
static void report_delta(pprofio_output *o, int t, int rc, int is_delta, int too_big, size_t bound,
                         const pprofio_error *err) {
    pprofio_ledger *l = o->ledger;
    const char *name = pprofio_profile_name(t);
    if (too_big && !o->base_warned[t]) {
        o->base_warned[t] = 1;
        pprofio_ledger_log(l, PPROFIO_LOG_WARN,
                           "pprofio: the %s baseline needs more than %zu bytes (MaxBufferBytes/4); %s profiles are "
                           "sent as totals until it fits: raise MaxBufferBytes",
                           name, bound, name);
    }
    if (is_delta)
        pprofio_ledger_add(l, PPROFIO_STAT(deltas), 1);
    if (rc != PPROFIO_OK) {
        pprofio_ledger_add(l, PPROFIO_STAT(deltas_failed), 1);
        pprofio_ledger_log(l, PPROFIO_LOG_WARN, "pprofio: sending a %s profile as it is: %s", name, err->msg);
    }
    int64_t held = 0;
    for (int i = 0; i <= PPROFIO_PROFILE_MAX; i++)
        held += (int64_t)pprofio_baseline_bytes(o->baselines[i]);
    pprofio_ledger_set(l, PPROFIO_STAT(baseline_bytes), held);
}

/*
 * make_delta turns a cumulative profile (heap, mutex, block) into this
 * window's share. The window-start snapshot of mutex and block only sets
 * the base. A profile that does not decode is sent as it is.
 */
static void make_delta(pprofio_output *o, pprofio_profile *p) {
    int t = p->type;
    if (p->flags & PPROFIO_PROFILE_RAW) { /* the collector made it from the runtime's records */
        p->delta = (p->flags & PPROFIO_PROFILE_DELTA) != 0;
        if (p->delta)
            pprofio_ledger_add(o->ledger, PPROFIO_STAT(deltas), 1);
        return;
    }
    int baseline_only = (p->flags & PPROFIO_PROFILE_BASELINE) != 0;
    pprofio_bytes out = {0};
    pprofio_error err = {0};
    int is_delta = 0;
    size_t bound = (size_t)(o->max_buffer / 4);
    int rc = pprofio_pprof_delta(p->raw.p, p->raw.len, &o->baselines[t], !baseline_only, bound, &out, &is_delta,
                                 &err);
    int too_big = rc == PPROFIO_OK && o->baselines[t] == NULL; /* success keeps one unless over the bound */
    if (rc == PPROFIO_OK && is_delta) {
        pprofio_intake_replace(o->intake, p, &out);
        p->delta = 1;
    }
    pprofio_bytes_free(&out);
    if (t != PPROFIO_PROFILE_HEAP && !baseline_only) { /* the next window brings its own base */
        pprofio_baseline_free(o->baselines[t]);
        o->baselines[t] = NULL;
    }
    report_delta(o, t, rc, is_delta, too_big, bound, &err);
}

/* goroutines counts a goroutine snapshot's stacks and runs the leak rule on them. */
static void goroutines(pprofio_output *o, pprofio_profile *p) {
    pprofio_stack_count *sc;
    size_t n;
    int64_t total;
    pprofio_error err = {0};
    if (pprofio_pprof_stacks(p->raw.p, p->raw.len, &sc, &n, &total, &err) != PPROFIO_OK) {
        pprofio_ledger_log(o->ledger, PPROFIO_LOG_WARN, "pprofio: cannot read a goroutine profile: %s", err.msg);
        return;
    }
    pprofio_ledger_set(o->ledger, PPROFIO_STAT(goroutines), total);
    pprofio_leak_alert alert;
    if (!pprofio_leak_observe(&o->leak, sc, n, total, &alert))
        return;
    pprofio_ledger_add(o->ledger, PPROFIO_STAT(goroutine_leaks), 1);
    pprofio_ledger_log(o->ledger, PPROFIO_LOG_WARN, "pprofio: goroutine leak suspected: %s", alert.message);
    pprofio_event ev;
    pprofio_event_init(&ev, "goroutine_leak", pprofio_ledger_now(o->ledger), alert.message);
    pprofio_event_attr_u64(&ev, "count", (uint64_t)alert.count);
    pprofio_event_attr_u64(&ev, "growth", (uint64_t)alert.growth);
    pprofio_event_attr_u64(&ev, "windows", (uint64_t)alert.windows);
    pprofio_ledger_event(o->ledger, &ev);
}

/* prepare runs the per-type work on a cycle's profiles before they go out. */
static void prepare(pprofio_output *o, pprofio_profile **ps, size_t n) {
    int64_t cpu0 = pprofio_thread_cpu_ns();
    for (size_t i = 0; i < n; i++) {
        switch (ps[i]->type) {
        case PPROFIO_PROFILE_HEAP:
        case PPROFIO_PROFILE_MUTEX:
        case PPROFIO_PROFILE_BLOCK:
            make_delta(o, ps[i]);
            break;
        case PPROFIO_PROFILE_GOROUTINE:
            goroutines(o, ps[i]);
            break;
        }
    }
    o->cpu_delta += pprofio_thread_cpu_ns() - cpu0;
    pprofio_ledger_set(o->ledger, PPROFIO_STAT(cpu_delta_ns), o->cpu_delta);
}

/* ---- local files and batches ------------------------------------------ */

/* store_locally writes p under output_dir: from seg, its bytes deflated already, when there is one. */
static void store_locally(pprofio_output *o, pprofio_profile *p, const uint8_t *body, const pprofio_deflated *seg) {
    pprofio_error err = {0};
    size_t written = 0;
    int rc = seg && seg->len > 0
                 ? pprofio_store_write_deflated(o->output_dir, o->service, p->type, p->start_ns, p->end_ns,
                                                body + seg->offset, seg, &written, NULL, &err)
                 : pprofio_store_write(o->output_dir, o->service, p->type, p->start_ns, p->end_ns, p->raw.p,
                                       p->raw.len, &written, NULL, &err);
    if (rc == PPROFIO_OK && p->spans) /* a custom profile's timeline goes beside it */
        rc = pprofio_timeline_write(o->output_dir, o->service, p->start_ns, p->end_ns, p->spans, NULL, NULL, &err);
    if (rc == PPROFIO_OK) {
        pprofio_ledger_add(o->ledger, PPROFIO_STAT(profiles_written), 1);
        pprofio_ledger_add(o->ledger, PPROFIO_STAT(bytes_written), written);
        if (o->write_failing) {
            o->write_failing = 0;
            pprofio_ledger_log(o->ledger, PPROFIO_LOG_INFO, "pprofio: writing profiles to %s again", o->output_dir);
        }
        return;
    }
    pprofio_ledger_lose(o->ledger, PPROFIO_LOSS_WRITE, 1, 0, p->raw.len);
    if (atomic_load(&o->final) && o->final_err.code == 0)
        o->final_err = err;
    if (!o->write_failing) {
        o->write_failing = 1;
        pprofio_ledger_log(o->ledger, PPROFIO_LOG_ERROR, "pprofio: cannot write profiles: %s", err.msg);
    }
}

/*
 * batch_cycle has delivery make one cycle's batch, writes the local files
 * (a large profile's from the batch's own deflate segment: it is deflated
 * once for both; see batch.h), and pushes the batch.
 */
static void batch_cycle(pprofio_output *o, pprofio_profile **ps, size_t n) {
    pprofio_delivery_batch b;
    pprofio_deflated seg[OUTPUT_CYCLE_MAX];
    pprofio_error err = {0};
    int rc = pprofio_delivery_make(o->delivery, ps, n, o->output_dir ? seg : NULL, &b, &err);
    for (size_t i = 0; o->output_dir && i < n; i++)
        store_locally(o, ps[i], b.body.p, rc == PPROFIO_OK ? &seg[i] : NULL);
    pprofio_delivery_push(o->delivery, &b); /* what was made: Pyroscope's push even when the batch failed */
    if (rc == PPROFIO_OK)
        return;
    uint64_t bytes = 0;
    for (size_t i = 0; i < n; i++)
        bytes += ps[i]->raw.len;
    pprofio_ledger_lose(o->ledger, PPROFIO_LOSS_MEMORY, n, 1, bytes);
    pprofio_ledger_log(o->ledger, PPROFIO_LOG_ERROR, "pprofio: dropped a batch of %zu profile(s): %s", n, err.msg);
}

/* deliver_cycle writes and batches the profiles of one cycle. */
static void deliver_cycle(pprofio_output *o, pprofio_profile **ps, size_t n) {
    if (o->delivery) {
        batch_cycle(o, ps, n);
        return;
    }
    for (size_t i = 0; o->output_dir && i < n; i++)
        store_locally(o, ps[i], NULL, NULL);
    if (o->output_dir || n == 0)
        return;
    for (size_t i = 0; i < n; i++)
        pprofio_ledger_lose(o->ledger, PPROFIO_LOSS_NO_SINK, 1, 0, ps[i]->raw.len);
    if (!o->no_sink_logged) {
        o->no_sink_logged = 1;
        pprofio_ledger_log(o->ledger, PPROFIO_LOG_WARN,
                           "pprofio: no output can take profiles; they are counted as dropped");
    }
}

static void *output_main(void *arg) {
    pprofio_output *o = arg;
    pprofio_profile *ps[OUTPUT_CYCLE_MAX];
    size_t n;
    while ((n = pprofio_intake_take(o->intake, ps, OUTPUT_CYCLE_MAX)) > 0) {
        prepare(o, ps, n);
        size_t m = 0; /* window bases are not sent */
        for (size_t i = 0; i < n; i++)
            if (!(ps[i]->flags & PPROFIO_PROFILE_BASELINE))
                ps[m++] = ps[i];
            else
                pprofio_intake_done(o->intake, ps[i]);
        if (m > 0)
            deliver_cycle(o, ps, m);
        for (size_t i = 0; i < m; i++)
            pprofio_intake_done(o->intake, ps[i]);
        pprofio_ledger_set(o->ledger, PPROFIO_STAT(cpu_output_ns), pprofio_thread_cpu_ns());
    }
    return NULL;
}

int pprofio_output_start(pprofio_output *o) {
    int rc = pprofio_thread_create(&o->thread, output_main, o);
    if (rc == 0)
        o->started = 1;
    return rc;
}

void pprofio_output_final(pprofio_output *o) { atomic_store(&o->final, 1); }

int pprofio_output_close(pprofio_output *o, pprofio_error *err) {
    if (!o)
        return PPROFIO_OK;
    if (o->started) {
        pthread_join(o->thread, NULL);
        o->started = 0;
    }
    if (o->final_err.code == 0)
        return PPROFIO_OK;
    if (err)
        *err = o->final_err;
    return o->final_err.code;
}
