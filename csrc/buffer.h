/*
 * buffer.h: the profiles the core holds in memory, oldest first, under one
 * byte bound. Bytes are reserved before they are allocated; a reservation
 * that does not fit evicts the oldest queued profiles first, and each
 * eviction is counted. Not locked: the intake (intake.h), which owns it,
 * holds its mutex around calls.
 */
#ifndef PPROFIO_BUFFER_H
#define PPROFIO_BUFFER_H

#include <stdint.h>

#include "gz.h"

struct pprofio_spans_cycle;

typedef struct pprofio_profile {
    struct pprofio_profile *next;
    int type;
    int64_t cycle;
    int64_t start_ns;
    int64_t end_ns;
    pprofio_bytes raw; /* serialized pprof, not gzipped; raw.cap is what it costs */
    int delta;         /* cumulative values were turned into this window's share */
    int flags;         /* PPROFIO_PROFILE_BASELINE: the base of a window, not sent */
    struct pprofio_spans_cycle *spans; /* custom profiles: the cycle's spans (owned), for the timeline */
    int64_t spans_bytes;               /* what spans holds, reserved with raw.cap */
} pprofio_profile;

/* pprofio_profile_cost is what p holds in the buffer's bound: its bytes and its spans. */
static inline int64_t pprofio_profile_cost(const pprofio_profile *p) {
    return (int64_t)p->raw.cap + p->spans_bytes;
}

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
} pprofio_buffer;

void pprofio_buffer_init(pprofio_buffer *s, int64_t limit);

/*
 * pprofio_buffer_reserve accounts delta bytes (negative gives bytes back).
 * A positive delta that does not fit evicts the oldest queued profiles,
 * unless evicting them all would still not make room: then nothing is
 * evicted, nothing is reserved, and PPROFIO_ERR_LIMIT is returned. *evicted (if not NULL) is increased by the profiles evicted.
 */
int pprofio_buffer_reserve(pprofio_buffer *s, int64_t delta, uint64_t *evicted);

/* pprofio_buffer_push queues p, whose raw.cap bytes are already reserved. */
void pprofio_buffer_push(pprofio_buffer *s, pprofio_profile *p);

/* pprofio_buffer_pop takes the oldest profile if its cycle is before `before`. */
pprofio_profile *pprofio_buffer_pop(pprofio_buffer *s, int64_t before);

/* pprofio_buffer_adjust accounts a change of delta bytes in a taken profile, never evicting. */
void pprofio_buffer_adjust(pprofio_buffer *s, int64_t delta);

/* pprofio_buffer_done frees a popped profile and gives back its bytes. */
void pprofio_buffer_done(pprofio_buffer *s, pprofio_profile *p);

/* pprofio_buffer_clear frees every queued profile (not counted as evicted). */
void pprofio_buffer_clear(pprofio_buffer *s);

#endif
