//go:build ignore

/* clock.c: the system clock and the simulated clock of tests. */
#include "clock.h"

#include <errno.h>
#include <time.h>

static int64_t ts_ns(const struct timespec *ts) {
    return (int64_t)ts->tv_sec * PPROFIO_NS_PER_SEC + ts->tv_nsec;
}

static int64_t system_now(const pprofio_clock *c) {
    (void)c;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return ts_ns(&ts);
}

static void system_wait(const pprofio_clock *c, pthread_cond_t *cond, pthread_mutex_t *mu,
                        int64_t deadline_ns) {
    if (deadline_ns == PPROFIO_FOREVER) {
        pthread_cond_wait(cond, mu);
        return;
    }
    int64_t left = deadline_ns - system_now(c);
    if (left <= 0)
        return;
    struct timespec mono;
    clock_gettime(CLOCK_MONOTONIC, &mono);
    int64_t until = ts_ns(&mono) + left;
    struct timespec ts = {.tv_sec = until / PPROFIO_NS_PER_SEC, .tv_nsec = until % PPROFIO_NS_PER_SEC};
    pthread_cond_timedwait(cond, mu, &ts); /* ETIMEDOUT or a wakeup: the caller re-checks */
}

static const pprofio_clock system_clock = {system_now, system_wait};

const pprofio_clock *pprofio_clock_system(void) { return &system_clock; }

int64_t pprofio_thread_cpu_ns(void) {
    struct timespec ts;
    if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts) != 0)
        return 0;
    return ts_ns(&ts);
}

int pprofio_cond_init(pthread_cond_t *cond) {
    pthread_condattr_t attr;
    int rc = pthread_condattr_init(&attr);
    if (rc != 0)
        return rc;
    rc = pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    if (rc == 0)
        rc = pthread_cond_init(cond, &attr);
    pthread_condattr_destroy(&attr);
    return rc;
}

static int64_t sim_now(const pprofio_clock *c) {
    const pprofio_sim_clock *s = (const pprofio_sim_clock *)c;
    return atomic_load(&((pprofio_sim_clock *)s)->now);
}

static void sim_wait(const pprofio_clock *c, pthread_cond_t *cond, pthread_mutex_t *mu,
                     int64_t deadline_ns) {
    pprofio_sim_clock *s = (pprofio_sim_clock *)c;
    if (deadline_ns == PPROFIO_FOREVER) {
        pthread_cond_wait(cond, mu);
        return;
    }
    int64_t now = atomic_load(&s->now);
    while (now < deadline_ns && !atomic_compare_exchange_weak(&s->now, &now, deadline_ns)) {
    }
}

void pprofio_sim_clock_init(pprofio_sim_clock *c, int64_t start_ns) {
    c->base.now_ns = sim_now;
    c->base.wait_until = sim_wait;
    atomic_store(&c->now, start_ns);
}
