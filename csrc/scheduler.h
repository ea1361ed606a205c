/*
 * scheduler.h: the collection timeline as a pure state machine. It knows no
 * threads and no clock: the agent, where the Go collector waits for its next
 * command, asks when the next event is due, sleeps until then, and collects
 * the events. Tests drive it with made-up times and check every event exactly.
 *
 * Cycle c starts at S = first + c * period. Its window (CPU, mutex and
 * block, each if on) lasts `cpu`:
 *   S             CPU_START(c), MUTEX_START(c), BLOCK_START(c)
 *   S + cpu       CPU_STOP(c), MUTEX_STOP(c), BLOCK_STOP(c)
 *   S + period    HEAP(c), GOROUTINE(c), CYCLE_END(c), then cycle c + 1 starts
 * A stop emits what closes the partial cycle (the stops of an open window,
 * HEAP, GOROUTINE, CYCLE_END) and EXIT.
 */
#ifndef PPROFIO_SCHEDULER_H
#define PPROFIO_SCHEDULER_H

#include <stddef.h>
#include <stdint.h>

#include "pprofio.h"

/* Scheduler events: the collector's commands plus the core's own. */
enum { PPROFIO_EV_CYCLE_END = 100 };

typedef struct {
    int op;         /* PPROFIO_CMD_* or PPROFIO_EV_CYCLE_END */
    int64_t cycle;
    int64_t at_ns;  /* when it was due */
    int64_t window_start_ns; /* the window it closes (CPU_STOP, HEAP, CYCLE_END) */
} pprofio_sched_event;

/* The most events one call can produce. */
#define PPROFIO_SCHED_MAX_EVENTS 16

typedef struct {
    int64_t period_ns;
    int64_t cpu_ns;
    unsigned types;
    int64_t cycle;        /* the current (or first) cycle */
    int64_t cycle_start;  /* when it started, or the agent's start before the first */
    int64_t first_start;  /* when cycle 0 starts */
    int64_t cpu_start;    /* when the open CPU window began */
    int64_t skipped;      /* cycles skipped because the scheduler fell behind */
    int phase;            /* private */
} pprofio_sched;

/*
 * pprofio_sched_init begins a timeline at now whose first cycle starts
 * after delay_ns (the start jitter).
 */
void pprofio_sched_init(pprofio_sched *s, int64_t now, int64_t period_ns, int64_t cpu_ns,
                        int64_t delay_ns, unsigned types);

/* pprofio_sched_next_at is when the next event is due (PPROFIO_SCHED_NEVER after stop). */
#define PPROFIO_SCHED_NEVER INT64_MAX
int64_t pprofio_sched_next_at(const pprofio_sched *s);

/*
 * pprofio_sched_due appends to ev the events due at or before now, in order,
 * and returns how many (at most PPROFIO_SCHED_MAX_EVENTS). Whole cycles
 * missed while the caller was late are skipped, not replayed.
 */
size_t pprofio_sched_due(pprofio_sched *s, int64_t now, pprofio_sched_event *ev);

/* pprofio_sched_stop ends the timeline at now and returns its last events. */
size_t pprofio_sched_stop(pprofio_sched *s, int64_t now, pprofio_sched_event *ev);

/*
 * pprofio_jitter_delay draws a delay uniform in [0, max_ns] from *state
 * (splitmix64). max_ns <= 0 gives 0.
 */
int64_t pprofio_jitter_delay(uint64_t *state, int64_t max_ns);

#endif
