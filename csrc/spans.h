/*
 * spans.h: the span recorder. Every finished span of the program is handed
 * to it; it keeps, per cycle and off the Go heap, what the output stage
 * sends: timings per span name and tag set, a bounded timeline of finished
 * spans, and the start stacks of head-sampled spans for the custom profile.
 *
 *   series    one per distinct (name, tags): count, total, min, max and a
 *             latency histogram (hist.h: quantiles within 3.125%). At most
 *             max_series; past that, or past the memory bound, a span is
 *             aggregated in the overflow series (name "", overflow = 1) and
 *             counted in `overflowed`, never lost.
 *   timeline  the slowest span of each series, plus a uniform sample
 *             (reservoir, max_samples) of all spans of the cycle; every span
 *             recorded and not in the timeline is counted in `unsampled`.
 *   stacks    per (series, start stack): count and wall time, for spans
 *             that come with a stack; at most max_stacks, the rest counted.
 *
 * Memory is bounded by max_bytes: everything the recorder allocates for the
 * cycle in progress is accounted, and what does not fit goes to the
 * overflow series (timings) or the counters (stacks). A taken cycle belongs
 * to the caller until pprofio_spans_cycle_free.
 *
 * The spans arrive one at a time (pprofio_spans_record) or as a block of
 * records encoded by the Go side (pprofio_spans_record_block, layout below).
 * Each call takes the recorder's mutex once; nothing else is shared. No
 * clock: times are the caller's.
 */
#ifndef PPROFIO_SPANS_H
#define PPROFIO_SPANS_H

#include <stddef.h>
#include <stdint.h>

#include "hist.h"
#include "pprofio.h"

typedef struct pprofio_spans pprofio_spans;

#define PPROFIO_SPANS_DEFAULT_BYTES (INT64_C(4) << 20)
#define PPROFIO_SPANS_MIN_BYTES (INT64_C(64) << 10)
#define PPROFIO_SPANS_DEFAULT_SERIES 1000
#define PPROFIO_SPANS_DEFAULT_SAMPLES 128
#define PPROFIO_SPANS_DEFAULT_STACKS 1024
#define PPROFIO_SPANS_MAX_NAME 256   /* longer names are cut */
#define PPROFIO_SPANS_MAX_TAGS 2048  /* longer tag blobs are cut at a pair */
#define PPROFIO_SPANS_MAX_PCS 64     /* deeper stacks are cut */

typedef struct {
    int64_t max_bytes;    /* 0: PPROFIO_SPANS_DEFAULT_BYTES; at least PPROFIO_SPANS_MIN_BYTES */
    uint32_t max_series;  /* 0: PPROFIO_SPANS_DEFAULT_SERIES */
    uint32_t max_samples; /* 0: PPROFIO_SPANS_DEFAULT_SAMPLES */
    uint32_t max_stacks;  /* 0: PPROFIO_SPANS_DEFAULT_STACKS */
    uint64_t seed;        /* the reservoir's random stream */
} pprofio_spans_config;

/*
 * One finished span. tags holds "key\0value\0" pairs (the same set must
 * come in the same order to make the same series; the Go side sorts them).
 * pcs is the stack where a head-sampled span started, or NULL.
 */
typedef struct {
    const char *name;
    size_t name_len;
    const char *tags;
    size_t tags_len;
    int64_t start_ns; /* Unix ns */
    int64_t dur_ns;   /* negative is taken as 0 */
    uint64_t span_id;
    uint64_t parent_id; /* 0 for a root span */
    const uint64_t *pcs;
    size_t n_pcs;
} pprofio_span;

/*
 * The block layout: records back to back, each 8-byte aligned:
 *   uint32 rec_len   the whole record, header included, a multiple of 8
 *   uint16 name_len
 *   uint16 tags_len
 *   uint32 n_pcs
 *   uint32 zero
 *   int64  start_ns, dur_ns
 *   uint64 span_id, parent_id
 *   name_len bytes, tags_len bytes, zero padding to 8, n_pcs uint64
 * in the machine's byte order.
 */
#define PPROFIO_SPANS_REC_HEADER 48

/* Per-cycle timings of one series. Read quantiles with pprofio_spans_quantile. */
typedef struct {
    char *name;       /* name_len bytes, then a NUL; "" for the overflow series */
    char *tags;       /* tags_len bytes (pairs as in pprofio_span) */
    uint32_t name_len, tags_len;
    int overflow;     /* 1: the overflow series */
    uint64_t hash;    /* private */
    uint64_t count;
    int64_t total_ns, min_ns, max_ns;
    pprofio_hist hist;
    int64_t slow_dur, slow_start; /* private: the slowest span so far */
    uint64_t slow_id, slow_parent;
} pprofio_spans_series;

/* A span in the timeline. */
typedef struct {
    uint32_t series; /* index into the cycle's series */
    int slowest;     /* 1: the slowest of its series this cycle */
    int uniform;     /* 1: picked by the uniform sample */
    int64_t start_ns, dur_ns;
    uint64_t span_id, parent_id;
} pprofio_spans_sample;

/* Spans that started at one stack (head-sampled spans only). */
typedef struct {
    uint32_t series;
    uint32_t n_pcs;
    uint64_t *pcs;
    uint64_t hash; /* private */
    uint64_t count;
    int64_t total_ns;
} pprofio_spans_stack;

/* One cycle's data, taken with pprofio_spans_take. */
typedef struct {
    pprofio_spans_series *series; /* the overflow series last, when it has spans */
    size_t n_series;
    pprofio_spans_sample *samples; /* by series, then start */
    size_t n_samples;
    pprofio_spans_stack *stacks;
    size_t n_stacks;
    uint64_t recorded;        /* spans recorded this cycle */
    uint64_t unsampled;       /* recorded, not in the timeline */
    uint64_t overflowed;      /* aggregated in the overflow series */
    uint64_t stacks_dropped;  /* stacks past max_stacks or the memory bound */
    uint64_t dropped;         /* lost: malformed records */
    int64_t bytes;            /* memory this cycle held */
} pprofio_spans_cycle;

/* Totals since new, for Stats. */
typedef struct {
    uint64_t recorded;   /* spans handed to the recorder */
    uint64_t sampled;    /* spans put in a taken timeline */
    uint64_t dropped;    /* spans lost (malformed records) */
    uint64_t overflowed; /* spans aggregated in an overflow series */
    int64_t bytes;       /* memory the cycle in progress holds now */
    int64_t bytes_peak;
} pprofio_spans_stats;

/* pprofio_spans_new checks cfg and makes an empty recorder. */
int pprofio_spans_new(const pprofio_spans_config *cfg, pprofio_spans **out, pprofio_error *err);

/* pprofio_spans_free releases the recorder (NULL is fine). */
void pprofio_spans_free(pprofio_spans *s);

/*
 * pprofio_spans_record records one finished span. It never fails: what does
 * not fit is aggregated in the overflow series and counted.
 */
void pprofio_spans_record(pprofio_spans *s, const pprofio_span *span);

/*
 * pprofio_spans_record_block records every record of a block (layout
 * above). A malformed record ends the block: PPROFIO_ERR_FORMAT, and one
 * span is counted as dropped; the records before it are kept.
 */
int pprofio_spans_record_block(pprofio_spans *s, const void *block, size_t len);

/*
 * pprofio_spans_take hands over the cycle in progress and starts an empty
 * one. The cycle's timeline is made here. PPROFIO_ERR_NOMEM leaves the data
 * in the recorder for the next take.
 */
int pprofio_spans_take(pprofio_spans *s, pprofio_spans_cycle **out);

/* pprofio_spans_cycle_free releases a taken cycle (NULL is fine). */
void pprofio_spans_cycle_free(pprofio_spans_cycle *c);

/* pprofio_spans_stats reads the totals. */
void pprofio_spans_stats_get(pprofio_spans *s, pprofio_spans_stats *out);

/*
 * pprofio_spans_quantile reads a series' q-quantile, within
 * PPROFIO_HIST_REL_ERROR of the exact one and inside [min_ns, max_ns].
 */
int64_t pprofio_spans_quantile(const pprofio_spans_series *sr, double q);

#endif
