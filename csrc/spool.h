/*
 * spool.h: the profiles the core holds in memory, oldest first, under one
 * byte bound. Bytes are reserved before they are allocated; a reservation
 * that does not fit evicts the oldest queued profiles first, and each
 * eviction is counted. Not locked: the agent holds its mutex around calls.
 */
#ifndef PPROFIO_SPOOL_H
#define PPROFIO_SPOOL_H

#include <stdint.h>

#include "gz.h"

typedef struct pprofio_profile {
    struct pprofio_profile *next;
    int type;
    int64_t cycle;
    int64_t start_ns;
    int64_t end_ns;
    pprofio_bytes raw; /* serialized pprof, not gzipped; raw.cap is what it costs */
    int delta;         /* cumulative values were turned into this window's share */
    int flags;         /* PPROFIO_PROFILE_BASELINE: the base of a window, not sent */
} pprofio_profile;

/* pprofio_profile_new allocates an empty profile; free it with pprofio_profile_free. */
pprofio_profile *pprofio_profile_new(int type, int64_t cycle, int64_t start_ns);
void pprofio_profile_free(pprofio_profile *p);

typedef struct {
    pprofio_profile *head;
    pprofio_profile *tail;
    size_t count;
    int64_t limit;
    int64_t used;   /* reserved bytes: queued profiles and those still being built */
    int64_t queued; /* the part of used that queued profiles hold (evictable) */
    int64_t peak;
    uint64_t evicted_profiles;
    uint64_t evicted_bytes;
} pprofio_spool;

void pprofio_spool_init(pprofio_spool *s, int64_t limit);

/*
 * pprofio_spool_reserve accounts delta bytes (negative gives bytes back).
 * A positive delta that does not fit evicts the oldest queued profiles,
 * unless evicting them all would still not make room: then nothing is
 * evicted, nothing is reserved, and PPROFIO_ERR_LIMIT is returned. *evicted (if not NULL) is increased by the profiles evicted.
 */
int pprofio_spool_reserve(pprofio_spool *s, int64_t delta, uint64_t *evicted);

/* pprofio_spool_push queues p, whose raw.cap bytes are already reserved. */
void pprofio_spool_push(pprofio_spool *s, pprofio_profile *p);

/* pprofio_spool_pop takes the oldest profile if its cycle is before `before`. */
pprofio_profile *pprofio_spool_pop(pprofio_spool *s, int64_t before);

/* pprofio_spool_done frees a popped profile and gives back its bytes. */
void pprofio_spool_done(pprofio_spool *s, pprofio_profile *p);

/* pprofio_spool_clear frees every queued profile (not counted as evicted). */
void pprofio_spool_clear(pprofio_spool *s);

#endif
