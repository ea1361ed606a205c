//go:build ignore

/* scheduler.c: the cycle timeline (see scheduler.h). */
#include "scheduler.h"

#include "random.h"

enum { PHASE_WAIT_FIRST, PHASE_CPU_OPEN, PHASE_CPU_CLOSED, PHASE_STOPPED };

static int has(const pprofio_sched *s, int type) { return (s->types & PPROFIO_TYPE_BIT(type)) != 0; }

static size_t emit(pprofio_sched_event *ev, size_t n, int op, int64_t cycle, int64_t at, int64_t from) {
    ev[n] = (pprofio_sched_event){op, cycle, at, from};
    return n + 1;
}

void pprofio_sched_init(pprofio_sched *s, int64_t now, int64_t period_ns, int64_t cpu_ns,
                        int64_t delay_ns, unsigned types) {
    *s = (pprofio_sched){0};
    s->period_ns = period_ns;
    s->cpu_ns = cpu_ns;
    s->types = types;
    s->cycle_start = now;
    s->first_start = now + (delay_ns > 0 ? delay_ns : 0);
    s->phase = PHASE_WAIT_FIRST;
}

int64_t pprofio_sched_next_at(const pprofio_sched *s) {
    switch (s->phase) {
    case PHASE_WAIT_FIRST:
        return s->first_start;
    case PHASE_CPU_OPEN:
        return s->cpu_start + s->cpu_ns;
    case PHASE_CPU_CLOSED:
        return s->cycle_start + s->period_ns;
    default:
        return PPROFIO_SCHED_NEVER;
    }
}

/* The profiles taken over the window, with their start and stop commands. */
static const struct {
    int type, start, stop;
} windowed[] = {
    {PPROFIO_PROFILE_CPU, PPROFIO_CMD_CPU_START, PPROFIO_CMD_CPU_STOP},
    {PPROFIO_PROFILE_MUTEX, PPROFIO_CMD_MUTEX_START, PPROFIO_CMD_MUTEX_STOP},
    {PPROFIO_PROFILE_BLOCK, PPROFIO_CMD_BLOCK_START, PPROFIO_CMD_BLOCK_STOP},
};
#define N_WINDOWED (sizeof windowed / sizeof windowed[0])

static int has_window(const pprofio_sched *s) {
    for (size_t i = 0; i < N_WINDOWED; i++)
        if (has(s, windowed[i].type))
            return 1;
    return 0;
}

/* begin_cycle opens the cycle that starts at `at`, and its window. */
static size_t begin_cycle(pprofio_sched *s, int64_t at, pprofio_sched_event *ev, size_t n) {
    s->cycle_start = at;
    if (!has_window(s)) {
        s->phase = PHASE_CPU_CLOSED;
        return n;
    }
    s->cpu_start = at;
    s->phase = PHASE_CPU_OPEN;
    for (size_t i = 0; i < N_WINDOWED; i++)
        if (has(s, windowed[i].type))
            n = emit(ev, n, windowed[i].start, s->cycle, at, at);
    return n;
}

/* close_window ends the open window at `at`. */
static size_t close_window(pprofio_sched *s, int64_t at, pprofio_sched_event *ev, size_t n) {
    for (size_t i = 0; i < N_WINDOWED; i++)
        if (has(s, windowed[i].type))
            n = emit(ev, n, windowed[i].stop, s->cycle, at, s->cpu_start);
    s->phase = PHASE_CPU_CLOSED;
    return n;
}

/* end_cycle closes the current cycle at `at` (HEAP, GOROUTINE, CYCLE_END). */
static size_t end_cycle(pprofio_sched *s, int64_t at, pprofio_sched_event *ev, size_t n) {
    if (has(s, PPROFIO_PROFILE_HEAP))
        n = emit(ev, n, PPROFIO_CMD_HEAP, s->cycle, at, s->cycle_start);
    if (has(s, PPROFIO_PROFILE_GOROUTINE))
        n = emit(ev, n, PPROFIO_CMD_GOROUTINE, s->cycle, at, at);
    return emit(ev, n, PPROFIO_EV_CYCLE_END, s->cycle, at, s->cycle_start);
}

size_t pprofio_sched_due(pprofio_sched *s, int64_t now, pprofio_sched_event *ev) {
    size_t n = 0;
    int64_t at = pprofio_sched_next_at(s);
    if (at == PPROFIO_SCHED_NEVER || now < at)
        return 0;
    switch (s->phase) {
    case PHASE_WAIT_FIRST:
        n = begin_cycle(s, at, ev, n);
        break;
    case PHASE_CPU_OPEN:
        n = close_window(s, at, ev, n);
        if (s->cpu_ns == s->period_ns) /* the window fills the cycle: close it too */
            n += pprofio_sched_due(s, now, ev + n);
        break;
    case PHASE_CPU_CLOSED: {
        n = end_cycle(s, at, ev, n);
        s->cycle++;
        int64_t next = at;
        if (now - at >= s->period_ns) { /* late by whole cycles: skip them */
            int64_t missed = (now - at) / s->period_ns;
            s->skipped += missed;
            s->cycle += missed; /* cycle c starts at first + c * period (scheduler.h) */
            next = at + missed * s->period_ns;
        }
        n = begin_cycle(s, next, ev, n);
        break;
    }
    }
    return n;
}

size_t pprofio_sched_stop(pprofio_sched *s, int64_t now, pprofio_sched_event *ev) {
    size_t n = 0;
    if (s->phase == PHASE_STOPPED)
        return 0;
    if (s->phase == PHASE_CPU_OPEN)
        n = close_window(s, now, ev, n);
    n = end_cycle(s, now, ev, n);
    n = emit(ev, n, PPROFIO_CMD_EXIT, s->cycle, now, now);
    s->phase = PHASE_STOPPED;
    return n;
}

int64_t pprofio_jitter_delay(uint64_t *state, int64_t max_ns) { return pprofio_random_upto(state, max_ns); }
