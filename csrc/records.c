//go:build ignore

/* records.c: delta profiles from the runtime's records (see records.h). */
#include "records_int.h"

/* rc_push appends one item of size bytes; *at gets its index. */
static int rc_push(pprofio_records *r, rc_vec *v, const void *item, size_t size, size_t *at) {
    int rc = rc_grow(r, v, v->n + 1, size);
    if (rc != PPROFIO_OK)
        return rc;
    memcpy((char *)v->p + v->n * size, item, size);
    if (at)
        *at = v->n;
    v->n++;
    return PPROFIO_OK;
}

static void rc_vec_free(rc_vec *v) { pprofio_free(v->p); }

int pprofio_records_new(int n_values, uint32_t cum_mask, pprofio_records **out) {
    *out = NULL;
    if (n_values < 1 || n_values > RC_MAX_VALUES)
        return PPROFIO_ERR_INVALID;
    pprofio_records *r = pprofio_calloc(1, sizeof *r);
    if (!r)
        return PPROFIO_ERR_NOMEM;
    r->n_values = n_values;
    r->cum_mask = cum_mask;
    int64_t empty;
    if (pprofio_records_string(r, "", 0, &empty) != PPROFIO_OK) {
        pprofio_records_free(r);
        return PPROFIO_ERR_NOMEM;
    }
    *out = r;
    return PPROFIO_OK;
}

void pprofio_records_free(pprofio_records *r) {
    if (!r)
        return;
    rc_vec *vs[] = {&r->str_off, &r->str_len, &r->mappings, &r->functions, &r->locations, &r->lines,
                    &r->loc_ids, &r->keys, &r->touched, &r->loc_mark, &r->fn_mark, &r->map_mark,
                    &r->str_map, &r->str_order, &r->used_locs};
    for (size_t i = 0; i < sizeof vs / sizeof vs[0]; i++)
        rc_vec_free(vs[i]);
    pprofio_bytes_free(&r->msg);
    pprofio_free(r->chars);
    pprofio_free(r->table);
    pprofio_free(r);
}

size_t pprofio_records_bytes(const pprofio_records *r) {
    if (!r)
        return 0;
    return sizeof *r + r->cap_chars + r->str_off.cap * 8 + r->str_len.cap * 8 + r->mappings.cap * sizeof(rc_mapping) +
           r->functions.cap * sizeof(rc_function) + r->locations.cap * sizeof(rc_location) +
           r->lines.cap * sizeof(rc_line) + r->loc_ids.cap * 4 + r->keys.cap * sizeof(rc_key) + r->touched.cap * 4 +
           r->table_cap * 8 + r->loc_mark.cap * 8 + r->fn_mark.cap * 8 + r->map_mark.cap * 8 + r->str_map.cap * 16 +
           r->str_order.cap * 8 + r->used_locs.cap * 4 + r->msg.cap + r->out_cap;
}

void pprofio_records_limit(pprofio_records *r, size_t max_bytes) { r->limit = max_bytes; }

int pprofio_records_string(pprofio_records *r, const char *s, size_t n, int64_t *id) {
    if (r->n_chars + n + 1 > r->cap_chars) {
        size_t c = r->cap_chars ? r->cap_chars : 4096;
        while (c < r->n_chars + n + 1)
            c *= 2;
        if (!rc_fits(r, c - r->cap_chars))
            return PPROFIO_ERR_LIMIT;
        char *q = pprofio_realloc(r->chars, c);
        if (!q)
            return PPROFIO_ERR_NOMEM;
        r->chars = q;
        r->cap_chars = c;
    }
    uint64_t off = r->n_chars, len = n;
    size_t at;
    int rc = rc_grow(r, &r->str_len, r->str_off.n + 1, sizeof len);
    if (rc == PPROFIO_OK)
        rc = rc_push(r, &r->str_off, &off, sizeof off, &at);
    if (rc != PPROFIO_OK)
        return rc;
    rc_push(r, &r->str_len, &len, sizeof len, NULL); /* room was made above */
    if (n)
        memcpy(r->chars + off, s, n);
    r->chars[off + n] = '\0';
    r->n_chars += n + 1;
    *id = (int64_t)at;
    return PPROFIO_OK;
}

static int rc_valid_str(const pprofio_records *r, int64_t s) { return s >= 0 && (size_t)s < r->str_off.n; }

int pprofio_records_types(pprofio_records *r, const int64_t *type_unit, size_t n_types, int64_t period_type,
                          int64_t period_unit) {
    if (n_types != (size_t)r->n_values || !rc_valid_str(r, period_type) || !rc_valid_str(r, period_unit))
        return PPROFIO_ERR_INVALID;
    for (size_t i = 0; i < 2 * n_types; i++) {
        if (!rc_valid_str(r, type_unit[i]))
            return PPROFIO_ERR_INVALID;
        r->types[i] = type_unit[i];
    }
    r->period_type = period_type;
    r->period_unit = period_unit;
    return PPROFIO_OK;
}

int pprofio_records_mapping(pprofio_records *r, uint64_t start, uint64_t limit, uint64_t offset, int64_t file,
                            int64_t build_id, int has_functions, uint32_t *id) {
    if (!rc_valid_str(r, file) || !rc_valid_str(r, build_id))
        return PPROFIO_ERR_INVALID;
    rc_mapping m = {start, limit, offset, file, build_id, has_functions != 0};
    size_t at;
    int rc = rc_push(r, &r->mappings, &m, sizeof m, &at);
    if (rc != PPROFIO_OK)
        return rc;
    *id = (uint32_t)at + 1;
    return PPROFIO_OK;
}

void pprofio_records_set_has_functions(pprofio_records *r, uint32_t mapping, int has_functions) {
    if (mapping >= 1 && mapping <= r->mappings.n)
        RC_AT(r->mappings, rc_mapping, mapping - 1).has_functions = has_functions != 0;
}

int pprofio_records_function(pprofio_records *r, int64_t name, int64_t file, int64_t start_line, uint32_t *id) {
    if (!rc_valid_str(r, name) || !rc_valid_str(r, file))
        return PPROFIO_ERR_INVALID;
    rc_function f = {name, file, start_line};
    size_t at;
    int rc = rc_push(r, &r->functions, &f, sizeof f, &at);
    if (rc != PPROFIO_OK)
        return rc;
    *id = (uint32_t)at + 1;
    return PPROFIO_OK;
}

int pprofio_records_location(pprofio_records *r, uint64_t addr, uint32_t mapping, const uint32_t *fns,
                             const int64_t *lines, size_t n, uint32_t *id) {
    if (mapping > r->mappings.n)
        return PPROFIO_ERR_INVALID;
    for (size_t i = 0; i < n; i++)
        if (fns[i] < 1 || fns[i] > r->functions.n)
            return PPROFIO_ERR_INVALID;
    int rc = rc_grow(r, &r->lines, r->lines.n + n, sizeof(rc_line));
    if (rc != PPROFIO_OK)
        return rc;
    rc_location l = {addr, mapping, (uint32_t)r->lines.n, (uint32_t)n};
    size_t at;
    if ((rc = rc_push(r, &r->locations, &l, sizeof l, &at)) != PPROFIO_OK)
        return rc;
    for (size_t i = 0; i < n; i++)
        RC_AT(r->lines, rc_line, r->lines.n + i) = (rc_line){fns[i], lines[i]};
    r->lines.n += n;
    *id = (uint32_t)at + 1;
    return PPROFIO_OK;
}

/* ---- keys ------------------------------------------------------------- */

/* rc_hash hashes a stack and its label. */
static uint64_t rc_hash(const uint32_t *locs, size_t n, int64_t label_key, int64_t label_num) {
    uint64_t h = UINT64_C(0xcbf29ce484222325) ^ n;
    for (size_t i = 0; i < n; i++)
        h = (h ^ locs[i]) * UINT64_C(0x100000001b3);
    h = (h ^ (uint64_t)label_key) * UINT64_C(0xFF51AFD7ED558CCD);
    h = (h ^ (uint64_t)label_num) * UINT64_C(0xC4CEB9FE1A85EC53);
    return h ^ (h >> 29);
}

/* rc_find returns the key of this stack and label, or NULL and the empty slot where it goes. */
static rc_key *rc_find(const pprofio_records *r, uint64_t h, const uint32_t *locs, size_t n, int64_t label_key,
                       int64_t label_num, uint64_t **slot) {
    for (size_t i = h & (r->table_cap - 1);; i = (i + 1) & (r->table_cap - 1)) {
        if (r->table[i] == 0) {
            *slot = &r->table[i];
            return NULL;
        }
        rc_key *k = &RC_AT(r->keys, rc_key, r->table[i] - 1);
        if (k->h1 == h && k->n_loc == n && k->label_key == label_key && k->label_num == label_num &&
            (n == 0 || memcmp(&RC_AT(r->loc_ids, uint32_t, k->loc_off), locs, n * sizeof *locs) == 0))
            return k;
    }
}

static int rc_rehash(pprofio_records *r) {
    size_t cap = r->table_cap ? r->table_cap * 2 : 4096;
    if (!rc_fits(r, cap * sizeof(uint64_t))) /* the old table and the new one, while it is made */
        return PPROFIO_ERR_LIMIT;
    uint64_t *t = pprofio_calloc(cap, sizeof *t);
    if (!t)
        return PPROFIO_ERR_NOMEM;
    for (size_t k = 0; k < r->keys.n; k++) {
        size_t i = RC_AT(r->keys, rc_key, k).h1 & (cap - 1);
        while (t[i])
            i = (i + 1) & (cap - 1);
        t[i] = k + 1;
    }
    pprofio_free(r->table);
    r->table = t;
    r->table_cap = cap;
    return PPROFIO_OK;
}

int pprofio_records_key(pprofio_records *r, const uint32_t *locs, size_t n, int64_t label_key, int64_t label_num,
                        uint32_t *key) {
    if (label_key && !rc_valid_str(r, label_key))
        return PPROFIO_ERR_INVALID;
    for (size_t i = 0; i < n; i++)
        if (locs[i] < 1 || locs[i] > r->locations.n)
            return PPROFIO_ERR_INVALID;
    int rc = (r->keys.n + 1) * 2 > r->table_cap ? rc_rehash(r) : PPROFIO_OK;
    if (rc != PPROFIO_OK)
        return rc;
    uint64_t h = rc_hash(locs, n, label_key, label_num), *slot;
    rc_key *k = rc_find(r, h, locs, n, label_key, label_num, &slot);
    if (k) {
        *key = (uint32_t)(k - (rc_key *)r->keys.p) + 1;
        return PPROFIO_OK;
    }
    if ((rc = rc_grow(r, &r->loc_ids, r->loc_ids.n + n, sizeof(uint32_t))) != PPROFIO_OK ||
        (rc = rc_grow(r, &r->keys, r->keys.n + 1, sizeof(rc_key))) != PPROFIO_OK)
        return rc;
    rc_key nk = {.h1 = h, .loc_off = (uint32_t)r->loc_ids.n, .n_loc = (uint32_t)n,
                 .label_key = label_key, .label_num = label_num, .seen = -1};
    memcpy(&RC_AT(r->loc_ids, uint32_t, r->loc_ids.n), locs, n * sizeof *locs);
    r->loc_ids.n += n;
    size_t at;
    rc_push(r, &r->keys, &nk, sizeof nk, &at); /* room was made above */
    *slot = at + 1;
    *key = (uint32_t)at + 1;
    return PPROFIO_OK;
}
