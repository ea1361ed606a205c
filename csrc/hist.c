//go:build ignore

/* hist.c: the log-linear latency histogram (see hist.h). */
#include "hist.h"

#include <string.h>

#include "alloc.h"
#include "pprofio.h"

#define SUB PPROFIO_HIST_SUB
#define SUB_BITS PPROFIO_HIST_SUB_BITS

uint32_t pprofio_hist_index(uint64_t v) {
    if (v < SUB)
        return (uint32_t)v;
    uint32_t e = 63u - (uint32_t)__builtin_clzll(v); /* SUB_BITS <= e <= 63 */
    uint32_t sub = (uint32_t)(v >> (e - SUB_BITS)) - SUB;
    return (e - SUB_BITS + 1) * SUB + sub;
}

uint64_t pprofio_hist_lower(uint32_t idx) {
    if (idx < 2 * SUB)
        return idx;
    uint32_t shift = idx / SUB - 1;
    return (uint64_t)(SUB + idx % SUB) << shift;
}

uint64_t pprofio_hist_width(uint32_t idx) {
    if (idx < 2 * SUB)
        return 1;
    return UINT64_C(1) << (idx / SUB - 1);
}

/* window computes the row-aligned window [*lo, *lo + *n) that also covers idx. */
static void window(const pprofio_hist *h, uint32_t idx, uint32_t *lo, uint32_t *n) {
    uint32_t row = idx - idx % SUB;
    if (!h->counts) {
        *lo = row;
        *n = SUB;
        return;
    }
    uint32_t a = h->lo < row ? h->lo : row;
    uint32_t b = h->lo + h->n > row + SUB ? h->lo + h->n : row + SUB;
    *lo = a;
    *n = b - a;
}

static int covers(const pprofio_hist *h, uint32_t idx) {
    return h->counts && idx >= h->lo && idx < h->lo + h->n;
}

size_t pprofio_hist_grow_bytes(const pprofio_hist *h, uint64_t v) {
    uint32_t idx = pprofio_hist_index(v), lo, n;
    if (covers(h, idx))
        return 0;
    window(h, idx, &lo, &n);
    return (size_t)(n - h->n) * sizeof(uint32_t);
}

int pprofio_hist_add(pprofio_hist *h, uint64_t v) {
    uint32_t idx = pprofio_hist_index(v);
    if (!covers(h, idx)) {
        uint32_t lo, n;
        window(h, idx, &lo, &n);
        uint32_t *c = pprofio_calloc(n, sizeof *c);
        if (!c)
            return PPROFIO_ERR_NOMEM;
        if (h->counts)
            memcpy(c + (h->lo - lo), h->counts, h->n * sizeof *c);
        pprofio_free(h->counts);
        h->counts = c;
        h->lo = lo;
        h->n = n;
    }
    uint32_t *slot = &h->counts[idx - h->lo];
    if (*slot < UINT32_MAX)
        (*slot)++;
    h->total++;
    return PPROFIO_OK;
}

uint64_t pprofio_hist_quantile(const pprofio_hist *h, double q) {
    if (!h->counts || h->total == 0)
        return 0;
    if (q < 0)
        q = 0;
    if (q > 1)
        q = 1;
    double r = q * (double)h->total;
    uint64_t rank = (uint64_t)r;
    if ((double)rank < r)
        rank++;
    if (rank == 0)
        rank = 1;
    uint64_t seen = 0;
    uint32_t last = 0;
    for (uint32_t i = 0; i < h->n; i++) {
        if (!h->counts[i])
            continue;
        last = i;
        seen += h->counts[i];
        if (seen >= rank)
            break;
    }
    uint32_t idx = h->lo + last;
    return pprofio_hist_lower(idx) + pprofio_hist_width(idx) / 2;
}

int pprofio_hist_reserve_all(pprofio_hist *h) {
    uint32_t *c = pprofio_calloc(PPROFIO_HIST_BUCKETS, sizeof *c);
    if (!c)
        return PPROFIO_ERR_NOMEM;
    if (h->counts)
        memcpy(c + h->lo, h->counts, h->n * sizeof *c);
    pprofio_free(h->counts);
    h->counts = c;
    h->lo = 0;
    h->n = PPROFIO_HIST_BUCKETS;
    return PPROFIO_OK;
}

size_t pprofio_hist_bytes(const pprofio_hist *h) { return h->counts ? h->n * sizeof(uint32_t) : 0; }

void pprofio_hist_free(pprofio_hist *h) {
    pprofio_free(h->counts);
    *h = (pprofio_hist){0};
}
