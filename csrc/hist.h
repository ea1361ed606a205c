/*
 * hist.h: a log-linear latency histogram (HDR-style) that the span recorder
 * keeps per span name and tag set, off the Go heap.
 *
 * Values (nanoseconds) below 16 have a bucket each; above, every power of
 * two is split into 16 equal buckets, so a bucket is at most 1/16 of its
 * lower bound wide. A quantile is read as the middle of the bucket holding
 * the value of that rank, so it is within 1/32 (3.125%) of the exact
 * nearest-rank quantile of the values added: PPROFIO_HIST_REL_ERROR.
 *
 * The buckets held are a window of whole powers of two that grows to cover
 * the values seen: a span whose durations stay within 1 ms..100 ms costs 7
 * rows of 16 counters, not the 61 rows of the full range. Pure: no clock,
 * no lock, no global state.
 */
#ifndef PPROFIO_HIST_H
#define PPROFIO_HIST_H

#include <stddef.h>
#include <stdint.h>

#define PPROFIO_HIST_SUB_BITS 4
#define PPROFIO_HIST_SUB (1u << PPROFIO_HIST_SUB_BITS) /* buckets per power of two */
#define PPROFIO_HIST_BUCKETS (PPROFIO_HIST_SUB * (64 - PPROFIO_HIST_SUB_BITS + 1))
#define PPROFIO_HIST_REL_ERROR (1.0 / (2.0 * PPROFIO_HIST_SUB))

typedef struct {
    uint32_t lo;      /* bucket index of counts[0]; a multiple of PPROFIO_HIST_SUB */
    uint32_t n;       /* buckets held; a multiple of PPROFIO_HIST_SUB */
    uint32_t *counts; /* NULL while empty */
    uint64_t total;   /* values added */
} pprofio_hist;

/* pprofio_hist_index is the bucket of value v (0 <= index < PPROFIO_HIST_BUCKETS). */
uint32_t pprofio_hist_index(uint64_t v);

/* pprofio_hist_lower is the smallest value of bucket idx; pprofio_hist_width its width. */
uint64_t pprofio_hist_lower(uint32_t idx);
uint64_t pprofio_hist_width(uint32_t idx);

/*
 * pprofio_hist_grow_bytes is how many more bytes h needs before it can count
 * v (0 when v falls in the window already).
 */
size_t pprofio_hist_grow_bytes(const pprofio_hist *h, uint64_t v);

/*
 * pprofio_hist_add counts v once. It returns PPROFIO_ERR_NOMEM, h unchanged,
 * when the window had to grow and could not. A bucket saturates at UINT32_MAX.
 */
int pprofio_hist_add(pprofio_hist *h, uint64_t v);

/*
 * pprofio_hist_quantile reads the q-quantile (0 <= q <= 1) by nearest rank:
 * the middle of the bucket holding the ceil(q * total)-th smallest value
 * (the first for q = 0). An empty histogram gives 0.
 */
uint64_t pprofio_hist_quantile(const pprofio_hist *h, double q);

/*
 * pprofio_hist_reserve_all makes h hold the whole range, so that no later
 * add can fail (the overflow series). PPROFIO_ERR_NOMEM leaves h unchanged.
 */
int pprofio_hist_reserve_all(pprofio_hist *h);

/* pprofio_hist_bytes is the memory h holds. */
size_t pprofio_hist_bytes(const pprofio_hist *h);

/* pprofio_hist_free releases the buckets and empties h. */
void pprofio_hist_free(pprofio_hist *h);

#endif
