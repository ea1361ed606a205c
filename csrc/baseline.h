/*
 * baseline.h: the baseline of a delta profile (private to pprof.c): for each
 * stack of the last snapshot, its key's two hashes and its cumulative
 * values, in an open-addressing table that outlives the snapshot.
 */
#ifndef PPROFIO_BASELINE_H
#define PPROFIO_BASELINE_H

#include <stddef.h>
#include <stdint.h>

#include "pprof.h"

/*
 * A stack is kept as two independent 64-bit hashes of its key, not the key
 * itself: the baseline costs ~24 bytes a stack plus its values, a fraction
 * of the profile, and a false match needs a 128-bit collision.
 */
typedef struct {
    uint64_t h1, h2;
    size_t val_off; /* its cumulative values: n_cum of them */
} pprofio_base_entry;

struct pprofio_baseline {
    int64_t time_nanos; /* when the snapshot it was made from was taken */
    uint64_t types_sig;
    uint32_t cum_mask;
    size_t n_values;
    size_t n_cum; /* values kept per stack: only the cumulative ones */
    pprofio_base_entry *entries;
    size_t n_entries, cap_entries;
    uint64_t *table; /* open addressing: h1's high half << 32 | pprofio_base_entry index + 1 (0: empty) */
    size_t table_cap;
    int64_t *vals;
    size_t n_vals, cap_vals;
};

/* pprofio_baseline_hash hashes a key's words twice (h1 is never 0). */
void pprofio_baseline_hash(const uint64_t *w, size_t n, uint64_t *h1, uint64_t *h2);

/* pprofio_baseline_reserve sizes b for n keys at once: no rehash, no growth while they are added. */
int pprofio_baseline_reserve(pprofio_baseline *b, size_t n);

/* pprofio_baseline_find returns the entry with these hashes, or NULL. */
pprofio_base_entry *pprofio_baseline_find(const pprofio_baseline *b, uint64_t h1, uint64_t h2);

/* pprofio_baseline_add sums the cumulative values of one sample (all n_values of v) under its key. */
int pprofio_baseline_add(pprofio_baseline *b, uint64_t h1, uint64_t h2, const int64_t *v, size_t *index);

/* pprofio_baseline_trim gives back what growth left unused: a baseline is kept until the next snapshot. */
void pprofio_baseline_trim(pprofio_baseline *b);

/* pprofio_baseline_prefetch asks for the table slot of h1 ahead of its lookup: the table outgrows the caches. */
static inline void pprofio_baseline_prefetch(const pprofio_baseline *b, uint64_t h1) {
    if (b->table_cap)
        __builtin_prefetch(&b->table[h1 & (b->table_cap - 1)]);
}

#endif
