//go:build ignore

/*
 * agent.c: the handle the Go side holds. It builds the stages and wires
 * them in one direction,
 *
 *   collector ─► intake ─► output ─► delivery ─► ingest service, Pyroscope
 *                  (memory)  (files, batches)  (a spool and upload thread each)
 *
 * each recording what it has to tell in the ledger, and it runs the
 * schedule where the Go collector waits: pprofio_agent_next computes the
 * events due (scheduler.h), hands them out one at a time, seals a cycle in
 * the intake when its end comes, and otherwise sleeps until the next event
 * is due or a log line arrives. So the core has two threads of its own:
 * output (deltas, gzip, fsync: slow work that must not delay a command)
 * and, when uploading, one per destination (which block on the network). C never
 * calls into Go: log lines reach Go as LOG commands.
 *
 * The agent also owns the span recorder (spans.h), which the Go side
 * records finished spans into. Before sealing a cycle it hands the
 * collector a SPANS command: the collector takes the cycle's spans
 * (pprofio_agent_spans_take) and writes them back as the cycle's custom
 * profile with the cycle attached, so the output stage finds the timeline
 * with the cycle's other profiles.
 */
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "alloc.h"
#include "clock.h"
#include "delivery.h"
#include "errors.h"
#include "intake.h"
#include "ledger.h"
#include "output.h"
#include "pprofio.h"
#include "random.h"
#include "scheduler.h"
#include "spans.h"

#define AGENT_CMD_RING 32 /* > PPROFIO_SCHED_MAX_EVENTS twice over */

enum { AGENT_NEW, AGENT_RUNNING, AGENT_CLOSED };

struct pprofio_agent {
    const pprofio_clock *clock;
    pprofio_ledger *ledger;
    pprofio_intake *intake;
    pprofio_output *output;
    pprofio_delivery *delivery; /* NULL when there is neither an ingest nor a Pyroscope URL */
    pprofio_spans *spans;       /* NULL when max_span_bytes is 0 */
    int64_t period_ns, cpu_ns, jitter_ns, stop_timeout_ns;
    unsigned types;
    uint64_t rng;

    /* lifecycle: start, stop and close may come from any thread */
    pthread_mutex_t mu;
    int sync_ready;
    atomic_int state;
    atomic_int stop_requested;
    atomic_int exit_forced; /* close: the collector gets EXIT */
    int closing;

    /* the collector's own: touched only inside pprofio_agent_next */
    pprofio_sched sched;
    pprofio_sched_event ring[AGENT_CMD_RING];
    size_t ring_head, ring_len;
    int stop_emitted, exit_taken;
    int64_t spans_asked; /* the cycle whose SPANS command went out, + 1 */
    int64_t cpu_sched;
};

/* ---- construction ----------------------------------------------------- */

static int build_stages(pprofio_agent *a, const pprofio_config *cfg, pprofio_error *err) {
    int ingest = cfg->ingest_url && *cfg->ingest_url; /* events travel only in its batches */
    int uploading = ingest || (cfg->pyroscope_url && *cfg->pyroscope_url);
    int rc = pprofio_ledger_new(a->clock, ingest, &a->ledger);
    if (rc == PPROFIO_OK)
        rc = pprofio_intake_new(cfg->max_buffer_bytes, a->ledger, &a->intake);
    if (rc != PPROFIO_OK)
        return pprofio_set_error(err, rc, "agent: out of memory");
    if (uploading) {
        uint64_t seed = a->rng ^ UINT64_C(0x5DEECE66D);
        rc = pprofio_delivery_new(cfg, seed, a->clock, a->ledger, &a->delivery, err);
        if (rc != PPROFIO_OK)
            return rc;
    }
    rc = pprofio_output_new(cfg, a->intake, a->delivery, a->ledger, &a->output);
    if (rc != PPROFIO_OK)
        return pprofio_set_error(err, rc, "agent: out of memory");
    if (cfg->max_span_bytes > 0) {
        pprofio_spans_config sc = {.max_bytes = cfg->max_span_bytes, .seed = a->rng ^ UINT64_C(0x9E3779B97F4A7C15)};
        return pprofio_spans_new(&sc, &a->spans, err);
    }
    return PPROFIO_OK;
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
    if (pthread_mutex_init(&a->mu, NULL) != 0) {
        pprofio_free(a);
        return pprofio_set_error(err, PPROFIO_ERR_NOMEM, "agent: out of memory");
    }
    a->sync_ready = 1;
    a->period_ns = cfg->period_ns;
    a->cpu_ns = cfg->cpu_duration_ns;
    a->jitter_ns = cfg->start_jitter_ns;
    a->stop_timeout_ns = cfg->stop_timeout_ns;
    a->types = cfg->profile_types;
    a->rng = cfg->jitter_seed ? cfg->jitter_seed : pprofio_random_seed();
    a->clock = cfg->clock ? cfg->clock : pprofio_clock_system();
    if ((rc = build_stages(a, cfg, err)) != PPROFIO_OK) {
        pprofio_agent_free(a);
        return rc;
    }
    *out = a;
    return PPROFIO_OK;
}

/* ---- the schedule, where the collector waits ---------------------------- */

static void ring_put(pprofio_agent *a, const pprofio_sched_event *ev, size_t n) {
    for (size_t i = 0; i < n && a->ring_len < AGENT_CMD_RING; i++)
        a->ring[(a->ring_head + a->ring_len++) % AGENT_CMD_RING] = ev[i];
}

/* schedule queues the events due now, or sleeps until the next one is due. */
static void schedule(pprofio_agent *a) {
    pprofio_sched_event ev[PPROFIO_SCHED_MAX_EVENTS];
    int64_t at = pprofio_sched_next_at(&a->sched);
    if (a->clock->now_ns(a->clock) < at) {
        pprofio_ledger_wait(a->ledger, at); /* a log line or a stop ends it early */
        return;
    }
    int64_t cpu0 = pprofio_thread_cpu_ns();
    int64_t skipped = a->sched.skipped;
    ring_put(a, ev, pprofio_sched_due(&a->sched, a->clock->now_ns(a->clock), ev));
    if (a->sched.skipped != skipped)
        pprofio_ledger_log(a->ledger, PPROFIO_LOG_WARN, "pprofio: the schedule fell behind; skipped %lld cycle(s)",
                           (long long)(a->sched.skipped - skipped));
    a->cpu_sched += pprofio_thread_cpu_ns() - cpu0;
    pprofio_ledger_set(a->ledger, PPROFIO_STAT(cpu_scheduler_ns), a->cpu_sched);
}

/* stop_schedule queues the events that close the partial cycle, and EXIT. */
static void stop_schedule(pprofio_agent *a) {
    pprofio_sched_event ev[PPROFIO_SCHED_MAX_EVENTS];
    a->stop_emitted = 1;
    ring_put(a, ev, pprofio_sched_stop(&a->sched, a->clock->now_ns(a->clock), ev));
}

/* take_command moves the next queued command into cmd; 0 when the ring is empty. */
static int take_command(pprofio_agent *a, pprofio_command *cmd) {
    while (a->ring_len > 0) {
        pprofio_sched_event ev = a->ring[a->ring_head];
        if (ev.op == PPROFIO_EV_CYCLE_END && a->spans && a->spans_asked != ev.cycle + 1) {
            /* First the collector hands over the cycle's spans; the end comes next. */
            a->spans_asked = ev.cycle + 1;
            ev.op = PPROFIO_CMD_SPANS;
        } else {
            a->ring_head = (a->ring_head + 1) % AGENT_CMD_RING;
            a->ring_len--;
        }
        if (ev.op == PPROFIO_EV_CYCLE_END) { /* the cycle's profiles are all in */
            pprofio_intake_seal(a->intake, ev.cycle);
            pprofio_ledger_add(a->ledger, PPROFIO_STAT(cycles), 1);
            continue;
        }
        cmd->op = ev.op;
        cmd->cycle = ev.cycle;
        cmd->at_ns = ev.at_ns;
        cmd->window_start_ns = ev.window_start_ns;
        if (ev.op == PPROFIO_CMD_EXIT)
            a->exit_taken = 1;
        return 1;
    }
    return 0;
}

int pprofio_agent_next(pprofio_agent *a, pprofio_command *cmd) {
    memset(cmd, 0, sizeof *cmd);
    for (;;) {
        if (pprofio_ledger_take_log(a->ledger, &cmd->level, cmd->message)) {
            cmd->op = PPROFIO_CMD_LOG;
            return PPROFIO_OK;
        }
        if (take_command(a, cmd))
            return PPROFIO_OK;
        if (a->exit_taken || atomic_load(&a->exit_forced) || atomic_load(&a->state) != AGENT_RUNNING)
            break;
        if (atomic_load(&a->stop_requested)) {
            if (a->stop_emitted)
                break;
            stop_schedule(a);
            continue;
        }
        schedule(a);
    }
    cmd->op = PPROFIO_CMD_EXIT;
    a->exit_taken = 1;
    return PPROFIO_OK;
}

/* ---- lifecycle -------------------------------------------------------- */

int pprofio_agent_start(pprofio_agent *a, pprofio_error *err) {
    if (!a)
        return pprofio_set_error(err, PPROFIO_ERR_INVALID, "agent: NULL");
    pthread_mutex_lock(&a->mu);
    if (atomic_load(&a->state) != AGENT_NEW) {
        pthread_mutex_unlock(&a->mu);
        return pprofio_set_error(err, PPROFIO_ERR_STATE, "agent: already started");
    }
    int64_t now = a->clock->now_ns(a->clock);
    pprofio_sched_init(&a->sched, now, a->period_ns, a->cpu_ns, pprofio_jitter_delay(&a->rng, a->jitter_ns),
                       a->types);
    int rc = a->delivery ? pprofio_delivery_start(a->delivery) : 0;
    if (rc == 0)
        rc = pprofio_output_start(a->output);
    atomic_store(&a->state, AGENT_RUNNING);
    if (rc != 0) { /* unwind: whatever started is stopped by close */
        atomic_store(&a->stop_requested, 1);
        atomic_store(&a->exit_forced, 1);
    }
    pthread_mutex_unlock(&a->mu);
    if (rc != 0) {
        pprofio_agent_close(a, NULL);
        return pprofio_set_error(err, PPROFIO_ERR_NOMEM, "agent: cannot start a thread: %s", strerror(-rc));
    }
    return PPROFIO_OK;
}

void pprofio_agent_stop(pprofio_agent *a) {
    if (!a)
        return;
    pthread_mutex_lock(&a->mu);
    if (atomic_load(&a->state) == AGENT_RUNNING) { /* before start it does nothing (pprofio.h) */
        atomic_store(&a->stop_requested, 1);
        pprofio_output_final(a->output);
    }
    pthread_mutex_unlock(&a->mu);
    pprofio_ledger_wake(a->ledger);
}

int pprofio_agent_close(pprofio_agent *a, pprofio_error *err) {
    if (!a)
        return PPROFIO_OK;
    pthread_mutex_lock(&a->mu);
    if (atomic_load(&a->state) == AGENT_CLOSED || a->closing) {
        pthread_mutex_unlock(&a->mu);
        return PPROFIO_OK;
    }
    a->closing = 1;
    int64_t deadline = a->clock->now_ns(a->clock) + a->stop_timeout_ns;
    atomic_store(&a->stop_requested, 1);
    atomic_store(&a->exit_forced, 1);
    pprofio_output_final(a->output);
    pthread_mutex_unlock(&a->mu);
    pprofio_ledger_wake(a->ledger);

    /* Everything collected is final now: write and batch it all. */
    pprofio_intake_seal_all(a->intake);
    pprofio_error final = {0};
    int rc = pprofio_output_close(a->output, &final);
    /* Deliver what is queued until the stop deadline; the rest stays spooled. */
    pprofio_delivery_close(a->delivery, deadline);

    pthread_mutex_lock(&a->mu);
    atomic_store(&a->state, AGENT_CLOSED);
    pthread_mutex_unlock(&a->mu);
    if (rc != PPROFIO_OK && err)
        *err = final;
    return rc;
}

void pprofio_agent_free(pprofio_agent *a) {
    if (!a)
        return;
    if (a->sync_ready && a->ledger && a->intake && a->output)
        pprofio_agent_close(a, NULL);
    pprofio_output_free(a->output);
    pprofio_delivery_free(a->delivery);
    pprofio_intake_free(a->intake);
    pprofio_spans_free(a->spans);
    pprofio_ledger_free(a->ledger);
    if (a->sync_ready)
        pthread_mutex_destroy(&a->mu);
    pprofio_free(a);
}

/* ---- what the collector and the program report ------------------------ */

void pprofio_agent_stats(pprofio_agent *a, pprofio_stats *out) {
    pprofio_ledger_read(a->ledger, out);
    pprofio_intake_held(a->intake, &out->buffered_bytes, &out->buffered_bytes_peak);
    if (a->delivery)
        pprofio_delivery_gauges(a->delivery, out);
    if (a->spans) {
        pprofio_spans_stats st;
        pprofio_spans_stats_get(a->spans, &st);
        out->spans_recorded = st.recorded;
        out->spans_sampled = st.sampled;
        out->spans_dropped = st.dropped;
        out->spans_overflowed = st.overflowed;
    }
}

/* ---- spans: the recorder is the agent's -------------------------------- */

pprofio_spans *pprofio_agent_spans(pprofio_agent *a) { return a ? a->spans : NULL; }

int pprofio_agent_spans_take(pprofio_agent *a, pprofio_spans_cycle **out) {
    *out = NULL;
    if (!a || !a->spans)
        return PPROFIO_OK;
    pprofio_spans_cycle *c;
    int rc = pprofio_spans_take(a->spans, &c);
    if (rc != PPROFIO_OK)
        return rc; /* the spans stay for the next cycle */
    if (c->overflowed + c->dropped > 0)
        pprofio_ledger_lose_spans(a->ledger, c->overflowed + c->dropped);
    if (c->recorded == 0 && c->n_series == 0) {
        pprofio_spans_cycle_free(c);
        return PPROFIO_OK;
    }
    *out = c;
    return PPROFIO_OK;
}

void pprofio_agent_event(pprofio_agent *a, const char *kind, const char *message, const char *const *keys,
                         const char *const *values, size_t n_attrs) {
    pprofio_event ev;
    pprofio_event_init(&ev, kind, pprofio_ledger_now(a->ledger), message);
    for (size_t i = 0; i < n_attrs; i++)
        pprofio_event_attr(&ev, keys[i], values[i]);
    pprofio_ledger_event(a->ledger, &ev);
}

void pprofio_agent_skip(pprofio_agent *a, int type, int64_t cycle, const char *reason) {
    pprofio_ledger_add(a->ledger, PPROFIO_STAT(profiles_skipped), 1);
    char msg[300];
    const char *name = pprofio_profile_name(type);
    snprintf(msg, sizeof msg, "the %s profile of this cycle was not taken: %s", name, reason ? reason : "");
    pprofio_event ev;
    pprofio_event_init(&ev, "profile_skipped", pprofio_ledger_now(a->ledger), msg);
    pprofio_event_attr(&ev, "type", name);
    pprofio_event_attr(&ev, "reason", reason ? reason : "");
    pprofio_ledger_event_of(a->ledger, &ev, cycle); /* it goes in the batch of the cycle it skipped */
}

void pprofio_agent_records_held(pprofio_agent *a, int64_t bytes, int64_t peak) {
    pprofio_ledger_set(a->ledger, PPROFIO_STAT(records_bytes), bytes);
    pprofio_ledger_set(a->ledger, PPROFIO_STAT(records_bytes_peak), peak);
}

/* ---- profile writers: the intake's ------------------------------------ */

int pprofio_profile_begin(pprofio_agent *a, int type, int64_t cycle, int64_t start_ns,
                          pprofio_profile_writer **out) {
    return pprofio_intake_begin(a->intake, type, cycle, start_ns, 0, out);
}

int pprofio_profile_begin_ex(pprofio_agent *a, int type, int64_t cycle, int64_t start_ns, int flags,
                             pprofio_profile_writer **out) {
    return pprofio_intake_begin(a->intake, type, cycle, start_ns, flags, out);
}

int pprofio_profile_write(pprofio_profile_writer *w, const void *p, size_t len) {
    return pprofio_intake_write(w, p, len);
}

void pprofio_profile_attach_spans(pprofio_profile_writer *w, pprofio_spans_cycle *c) {
    pprofio_intake_attach_spans(w, c);
}

int pprofio_profile_finish(pprofio_profile_writer *w, int ok, int64_t end_ns) {
    return pprofio_intake_finish(w, ok, end_ns);
}
