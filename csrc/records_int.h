/*
 * records_int.h: what records.c (the tables and keys) and recordspb.c (the
 * delta written as pprof) share inside the records module: the table's
 * layout and its growth within the limit. Not for other modules.
 */
#ifndef PPROFIO_RECORDS_INT_H
#define PPROFIO_RECORDS_INT_H

#include <string.h>

#include "alloc.h"
#include "records.h"

#define RC_MAX_VALUES 8

typedef struct {
    uint64_t start, limit, offset;
    int64_t file, build_id;
    int has_functions;
} rc_mapping;

typedef struct {
    int64_t name, file, start_line;
} rc_function;

typedef struct {
    uint64_t addr;
    uint32_t mapping, line_off, n_line;
} rc_location;

typedef struct {
    uint32_t fn;
    int64_t line;
} rc_line;

typedef struct {
    uint64_t h1;
    uint32_t loc_off, n_loc;
    int64_t label_key, label_num;
    int64_t seen;      /* the snapshot that last had this key */
    int64_t sum[RC_MAX_VALUES]; /* this snapshot's values (valid when seen is the current one) */
    int64_t prev[RC_MAX_VALUES]; /* the previous snapshot's (valid when seen was the previous one) */
} rc_key;

/* A growable array of fixed-size items. */
typedef struct {
    void *p;
    size_t n, cap;
} rc_vec;

struct pprofio_records {
    int n_values;
    uint32_t cum_mask;
    int64_t types[2 * RC_MAX_VALUES];
    int64_t period_type, period_unit;
    char *chars; /* the strings, each NUL-terminated */
    size_t n_chars, cap_chars;
    rc_vec str_off, str_len, mappings, functions, locations, lines, loc_ids, keys, touched;
    uint64_t *table; /* keys by h1: index + 1 */
    size_t table_cap;
    int64_t snap; /* snapshots read so far (the current one's number) */
    int have_prev;
    int64_t prev_time;
    /* per-emit scratch: what the delta references, and the strings renumbered */
    rc_vec loc_mark, fn_mark, map_mark, str_map, str_order, used_locs;
    pprofio_bytes msg;
    size_t out_cap; /* the capacity of the caller's out, counted with the table */
    size_t limit;   /* pprofio_records_limit; 0: none */
};

/* rc_fits says whether the table may take `more` bytes under its limit. */
static inline int rc_fits(const pprofio_records *r, size_t more) {
    if (!r->limit)
        return 1;
    size_t held = pprofio_records_bytes(r);
    return held <= r->limit && more <= r->limit - held;
}

/* rc_grow makes room for need items of size bytes in v, within the table's limit. */
static inline int rc_grow(pprofio_records *r, rc_vec *v, size_t need, size_t size) {
    if (need <= v->cap)
        return PPROFIO_OK;
    size_t c = v->cap ? v->cap : 64;
    while (c < need)
        c *= 2;
    if (!rc_fits(r, (c - v->cap) * size))
        return PPROFIO_ERR_LIMIT;
    void *q = pprofio_realloc(v->p, c * size);
    if (!q)
        return PPROFIO_ERR_NOMEM;
    v->p = q;
    v->cap = c;
    return PPROFIO_OK;
}

#define RC_AT(v, T, i) (((T *)(v).p)[i])

#endif
