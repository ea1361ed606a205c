/*
 * retry.h: what the upload thread does after each answer of the ingest
 * service, as a pure function of the answer, the time and its own state
 * (as scheduler.h is for the timeline): go on with the next batch, drop
 * this one, split it, or wait until a given time (Retry-After, backoff
 * with full jitter, the pause after a refused API key). It also says when
 * delivery's health changes, so the thread logs once per change. No
 * thread, no clock, no I/O: tests drive it with made-up answers and times.
 */
#ifndef PPROFIO_RETRY_H
#define PPROFIO_RETRY_H

#include <stdint.h>

#include "upload.h"

/* What to do with the batch that was just sent. */
enum {
    PPROFIO_RETRY_DONE = 0,  /* delivered: remove it, send the next */
    PPROFIO_RETRY_DROP = 1,  /* refused for good: drop and count it */
    PPROFIO_RETRY_SPLIT = 2, /* too large: split it in two (or drop it if it holds one profile) */
    PPROFIO_RETRY_WAIT = 3   /* keep it; send nothing before next_at */
};

/* Delivery's health, as logged. */
enum { PPROFIO_HEALTH_OK = 0, PPROFIO_HEALTH_FAILING = 1, PPROFIO_HEALTH_AUTH = 2, PPROFIO_HEALTH_MISSING = 3 };

#define PPROFIO_AUTH_PAUSE_NS (INT64_C(60) * 1000000000)

typedef struct {
    int attempt;     /* failed attempts in a row */
    int64_t next_at; /* send nothing before this (Unix ns; 0: at once) */
    int health;
    int forced;      /* next_at is a Retry-After or the 401/403 (404/501) pause, not a backoff */
    uint64_t rng;    /* the backoff's jitter (splitmix64 state) */
} pprofio_retry;

/* pprofio_retry_init starts healthy, with the backoff drawn from seed. */
void pprofio_retry_init(pprofio_retry *r, uint64_t seed);

/*
 * pprofio_retry_answer applies the contract's table to the answer res
 * received at now and returns a PPROFIO_RETRY_* action. A verdict of
 * PPROFIO_UP_MISSING (Pyroscope's 404/501) pauses as PPROFIO_UP_AUTH does,
 * with health PPROFIO_HEALTH_MISSING. *health_changed is
 * set to 1 when r->health changed (0 otherwise).
 */
int pprofio_retry_answer(pprofio_retry *r, const pprofio_upload_result *res, int64_t now, int *health_changed);

/*
 * pprofio_retry_closing is called once when Stop begins: a backoff gives
 * way to one more try now; a Retry-After or the 401/403 pause does not.
 */
void pprofio_retry_closing(pprofio_retry *r, int64_t now);

/* pprofio_retry_defer sends nothing for wait_ns from now (a batch that could not be loaded). */
void pprofio_retry_defer(pprofio_retry *r, int64_t now, int64_t wait_ns);

/*
 * pprofio_backoff_ns draws a full-jitter wait for a retry: uniform in
 * [0, min(300 s, 1 s * 2^attempt)], from *rng (splitmix64).
 */
int64_t pprofio_backoff_ns(int attempt, uint64_t *rng);

#endif
