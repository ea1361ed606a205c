/*
 * pprof.h: delta profiles. The Go runtime reports allocations (heap),
 * contention (mutex) and blocking (block) as totals since the process
 * started; this module turns two such snapshots into the share of the
 * window between them, on the raw protobuf (perftools.profiles.Profile),
 * off the Go heap.
 *
 * A snapshot's tables are decoded with protobuf-c into an arena and its
 * samples are read off the wire one at a time (pprofdec.c, pbwire.c); each
 * sample is keyed by its stack's addresses and its labels (two dumps
 * number their locations differently, so ids cannot be matched), and the
 * cumulative values (alloc_objects, alloc_space, contentions, delay) of
 * the previous snapshot, kept as a compact baseline, are subtracted.
 * Samples left with only zeros are dropped, and so are the locations,
 * functions, mappings and strings no sample references any more. Other
 * values (inuse_*) are kept as they are.
 */
#ifndef PPROFIO_PPROF_H
#define PPROFIO_PPROF_H

#include <stddef.h>
#include <stdint.h>

#include "gz.h"
#include "pprofio.h"

typedef struct pprofio_baseline pprofio_baseline;

/* pprofio_baseline_free releases a baseline; NULL is fine. */
void pprofio_baseline_free(pprofio_baseline *b);

/* pprofio_baseline_bytes is the memory a baseline holds. */
size_t pprofio_baseline_bytes(const pprofio_baseline *b);

/*
 * pprofio_pprof_delta reads raw (n bytes of serialized pprof) and replaces
 * *base with its cumulative values. With emit != 0 and a compatible *base
 * (same sample types), it writes raw minus *base into out and sets
 * *is_delta = 1; without one it leaves out empty and sets *is_delta = 0
 * (send raw as it is). A new baseline larger than max_base_bytes is not
 * kept (*base becomes NULL). On PPROFIO_ERR_FORMAT (raw does not decode,
 * or breaks the format's rules) *base is freed and set to NULL.
 */
int pprofio_pprof_delta(const uint8_t *raw, size_t n, pprofio_baseline **base, int emit,
                        size_t max_base_bytes, pprofio_bytes *out, int *is_delta, pprofio_error *err);

/* One stack of a goroutine profile: its identity, count and a short name. */
typedef struct {
    uint64_t key;
    int64_t count;
    char desc[192]; /* up to 3 frames outside the runtime, leaf first: "main.worker < main.spawn" */
} pprofio_stack_count;

/*
 * pprofio_pprof_stacks reads a goroutine profile (count per stack) into a
 * new array sorted by key (free it with pprofio_free), and the total.
 */
int pprofio_pprof_stacks(const uint8_t *raw, size_t n, pprofio_stack_count **out, size_t *n_out, int64_t *total,
                         pprofio_error *err);

/*
 * pprofio_pprof_check decodes raw and checks every index in it; 0 when it
 * is a well-formed profile. For tests and tools.
 */
int pprofio_pprof_check(const uint8_t *raw, size_t n, pprofio_error *err);

#endif
