/*
 * leak.h: the goroutine leak rule as a pure state machine. Each goroutine
 * snapshot (its count per stack) is observed in turn; the rule fires once
 * per episode when the count grew in each of the last `windows` cycles, by
 * at least min_growth_pct percent and min_growth goroutines over them, and
 * names the stacks that grew most. No thread, no clock, no logging: the
 * output stage reports what it says.
 */
#ifndef PPROFIO_LEAK_H
#define PPROFIO_LEAK_H

#include <stddef.h>
#include <stdint.h>

#include "pprof.h"

typedef struct {
    int windows, min_growth_pct, min_growth;
    pprofio_stack_count *prev, *base; /* the last snapshot; the one before the growth began */
    size_t prev_n, base_n;
    int64_t prev_total, base_total;
    int streak, episode, have_prev;
} pprofio_leak;

/* What a firing rule reports. */
typedef struct {
    int64_t count;  /* goroutines now */
    int64_t growth; /* since the growth began */
    int windows;    /* cycles of growth */
    char message[512];
} pprofio_leak_alert;

void pprofio_leak_init(pprofio_leak *l, int windows, int min_growth_pct, int min_growth);
void pprofio_leak_free(pprofio_leak *l);

/*
 * pprofio_leak_observe takes a snapshot (cur: n stacks sorted by key, as
 * pprofio_pprof_stacks makes them; ownership passes to l) whose total is
 * `total`. It returns 1 and fills *alert when the rule fires, else 0.
 */
int pprofio_leak_observe(pprofio_leak *l, pprofio_stack_count *cur, size_t n, int64_t total,
                         pprofio_leak_alert *alert);

#endif
