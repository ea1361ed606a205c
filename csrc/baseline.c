//go:build ignore

/* baseline.c: the baseline's table (see baseline.h). */
#include "baseline.h"

#include <string.h>

#include "alloc.h"
#include "errors.h"

#define BL_SEED UINT64_C(0xcbf29ce484222325)

/* Sums of hostile values wrap instead of overflowing (undefined behaviour). */
static int64_t bl_add64(int64_t a, int64_t b) { return (int64_t)((uint64_t)a + (uint64_t)b); }

void pprofio_baseline_free(pprofio_baseline *b) {
    if (!b)
        return;
    pprofio_free(b->entries);
    pprofio_free(b->table);
    pprofio_free(b->vals);
    pprofio_free(b);
}

size_t pprofio_baseline_bytes(const pprofio_baseline *b) {
    if (!b)
        return 0;
    return sizeof *b + b->cap_entries * sizeof(pprofio_base_entry) + b->table_cap * sizeof(uint64_t) +
           b->cap_vals * sizeof(int64_t);
}

static int bl_grow(void **p, size_t *cap, size_t need, size_t size) {
    if (need <= *cap)
        return PPROFIO_OK;
    size_t c = *cap ? *cap : 64;
    while (c < need)
        c *= 2;
    void *q = pprofio_realloc(*p, c * size);
    if (!q)
        return PPROFIO_ERR_NOMEM;
    *p = q;
    *cap = c;
    return PPROFIO_OK;
}

/*
 * pp_hash_key hashes a key's words twice in one pass, a word at a time with
 * independent multipliers (the two chains run side by side in the CPU):
 * keying every sample is a large share of a delta's time. h1 is never 0.
 */
void pprofio_baseline_hash(const uint64_t *w, size_t n, uint64_t *h1, uint64_t *h2) {
    uint64_t a = BL_SEED ^ n, b = UINT64_C(0x9E3779B97F4A7C15) ^ n;
    size_t i = 0;
    for (; i + 2 <= n; i += 2) { /* two words a step: the second one's product is ready with the first's */
        a = (a ^ w[i]) * UINT64_C(0xFF51AFD7ED558CCD) + w[i + 1] * UINT64_C(0x9FB21C651E98DF25);
        a ^= a >> 32;
        b = ((b + w[i]) * UINT64_C(0xC4CEB9FE1A85EC53)) ^ (w[i + 1] * UINT64_C(0xD6E8FEB86659FD93));
        b ^= b >> 29;
    }
    if (i < n) {
        a = (a ^ w[i]) * UINT64_C(0xFF51AFD7ED558CCD);
        a ^= a >> 32;
        b = (b + w[i]) * UINT64_C(0xC4CEB9FE1A85EC53);
        b ^= b >> 29;
    }
    a = (a ^ (a >> 33)) * UINT64_C(0xBF58476D1CE4E5B9);
    b = (b ^ (b >> 31)) * UINT64_C(0x94D049BB133111EB);
    *h1 = (a ^ (a >> 31)) | 1;
    *h2 = b ^ (b >> 32);
}

#define BL_TAG(h1) ((h1) & ~UINT64_C(0xFFFFFFFF))

/* pp_find returns the pprofio_base_entry with this key's hashes, or NULL. */
pprofio_base_entry *pprofio_baseline_find(const pprofio_baseline *b, uint64_t h1, uint64_t h2) {
    if (!b->table_cap)
        return NULL;
    for (size_t i = h1 & (b->table_cap - 1);; i = (i + 1) & (b->table_cap - 1)) {
        uint64_t t = b->table[i];
        if (t == 0)
            return NULL;
        if ((t & ~UINT64_C(0xFFFFFFFF)) != BL_TAG(h1))
            continue; /* another key: no need to read its entry */
        pprofio_base_entry *e = &b->entries[(uint32_t)t - 1];
        if (e->h1 == h1 && e->h2 == h2)
            return e;
    }
}

/* pp_place puts entry k (whose first hash is h1) in the table. */
static void bl_place(uint64_t *t, size_t cap, uint64_t h1, size_t k) {
    size_t i = h1 & (cap - 1);
    while (t[i])
        i = (i + 1) & (cap - 1);
    t[i] = BL_TAG(h1) | ((uint64_t)k + 1);
}

static int bl_rehash(pprofio_baseline *b, size_t cap) {
    uint64_t *t = pprofio_calloc(cap, sizeof *t);
    if (!t)
        return PPROFIO_ERR_NOMEM;
    for (size_t k = 0; k < b->n_entries; k++)
        bl_place(t, cap, b->entries[k].h1, k);
    pprofio_free(b->table);
    b->table = t;
    b->table_cap = cap;
    return PPROFIO_OK;
}

/* pp_add sums the cumulative values of one sample into the baseline under its key. */
int pprofio_baseline_add(pprofio_baseline *b, uint64_t h, uint64_t h2, const int64_t *v, size_t *index) {
    pprofio_base_entry *e = pprofio_baseline_find(b, h, h2);
    if (!e) {
        if ((b->n_entries + 1) * 3 > b->table_cap * 2 && bl_rehash(b, b->table_cap ? b->table_cap * 2 : 1024) != 0)
            return PPROFIO_ERR_NOMEM;
        if (bl_grow((void **)&b->entries, &b->cap_entries, b->n_entries + 1, sizeof *b->entries) ||
            bl_grow((void **)&b->vals, &b->cap_vals, b->n_vals + b->n_cum, sizeof *b->vals))
            return PPROFIO_ERR_NOMEM;
        e = &b->entries[b->n_entries];
        *e = (pprofio_base_entry){h, h2, b->n_vals};
        if (b->n_cum > 0)
            memset(b->vals + b->n_vals, 0, b->n_cum * sizeof *b->vals);
        b->n_vals += b->n_cum;
        bl_place(b->table, b->table_cap, h, b->n_entries++);
    }
    for (size_t i = 0, k = 0; i < b->n_values; i++)
        if (b->cum_mask & (1u << i)) {
            b->vals[e->val_off + k] = bl_add64(b->vals[e->val_off + k], v[i]);
            k++;
        }
    *index = (size_t)(e - b->entries);
    return PPROFIO_OK;
}

int pprofio_baseline_reserve(pprofio_baseline *b, size_t n) {
    size_t cap = 1024;
    while (cap * 2 < n * 3) /* at most 2/3 full: probes stay short, and a smaller table misses the caches less */
        cap *= 2;
    if (bl_rehash(b, cap) || bl_grow((void **)&b->entries, &b->cap_entries, n, sizeof *b->entries) ||
        bl_grow((void **)&b->vals, &b->cap_vals, n * b->n_cum, sizeof *b->vals))
        return PPROFIO_ERR_NOMEM;
    return PPROFIO_OK;
}

void pprofio_baseline_trim(pprofio_baseline *b) {
    pprofio_base_entry *e = b->n_entries ? pprofio_realloc(b->entries, b->n_entries * sizeof *e) : NULL;
    if (e) {
        b->entries = e;
        b->cap_entries = b->n_entries;
    }
    int64_t *v = b->n_vals ? pprofio_realloc(b->vals, b->n_vals * sizeof *v) : NULL;
    if (v) {
        b->vals = v;
        b->cap_vals = b->n_vals;
    }
}
