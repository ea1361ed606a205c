/*
 * clock.h: the time source of the scheduler. The system clock reads
 * CLOCK_REALTIME for timestamps and sleeps on CLOCK_MONOTONIC, so a wall
 * clock step cannot stall a wait. A simulated clock jumps straight to each
 * deadline, which lets tests run a day of cycles in milliseconds.
 */
#ifndef PPROFIO_CLOCK_H
#define PPROFIO_CLOCK_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "pprofio.h"

#define PPROFIO_NS_PER_SEC INT64_C(1000000000)
#define PPROFIO_FOREVER INT64_MAX

struct pprofio_clock {
    /* now_ns returns the current time in Unix nanoseconds. */
    int64_t (*now_ns)(const pprofio_clock *c);
    /*
     * wait_until waits on cond (mu held) until signalled or until now_ns()
     * reaches deadline_ns (PPROFIO_FOREVER: only a signal). Spurious wakeups
     * are allowed; callers re-check their condition.
     */
    void (*wait_until)(const pprofio_clock *c, pthread_cond_t *cond, pthread_mutex_t *mu,
                       int64_t deadline_ns);
};

const pprofio_clock *pprofio_clock_system(void);

/* pprofio_thread_cpu_ns is the CPU time the calling thread has used (0 if unknown). */
int64_t pprofio_thread_cpu_ns(void);

/* pprofio_cond_init makes a condition variable that waits on CLOCK_MONOTONIC. */
int pprofio_cond_init(pthread_cond_t *cond);

/* A simulated clock: time moves only when someone waits for a deadline. */
typedef struct {
    pprofio_clock base;
    _Atomic int64_t now;
} pprofio_sim_clock;

void pprofio_sim_clock_init(pprofio_sim_clock *c, int64_t start_ns);

#endif
