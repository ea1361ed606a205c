//go:build ignore

/*
 * recordspb.c: the records module's output: each cycle's delta of the keys
 * the snapshot touched, written as pprof with only the tables it references
 * (see records.h; the tables and keys are records.c's).
 */
#include "records_int.h"

/* ---- protobuf --------------------------------------------------------- */

/* rc_room makes room for n more bytes in b (the table's msg, or the caller's out), within the limit. */
static int rc_room(pprofio_records *r, pprofio_bytes *b, size_t n) {
    if (b->cap - b->len >= n)
        return PPROFIO_OK;
    size_t cap = pprofio_bytes_cap_for(b, n);
    if (cap == 0 || !rc_fits(r, cap - b->cap))
        return PPROFIO_ERR_LIMIT;
    int rc = pprofio_bytes_resize(b, cap);
    if (rc == PPROFIO_OK && b != &r->msg)
        r->out_cap = cap;
    return rc;
}

/* The writers below assume room was made: at most 11 bytes a varint field. */
static void rc_varint(pprofio_bytes *b, uint64_t v) {
    while (v >= 0x80) {
        b->p[b->len++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    b->p[b->len++] = (uint8_t)v;
}

/* rc_field writes a varint field, omitted when 0 (as runtime/pprof writes them). */
static void rc_field(pprofio_bytes *b, int field, uint64_t v) {
    if (v == 0)
        return;
    rc_varint(b, (uint64_t)field << 3);
    rc_varint(b, v);
}

/* rc_bytes writes a length-delimited field. */
static int rc_bytes(pprofio_records *r, pprofio_bytes *b, int field, const void *p, size_t n) {
    int rc = rc_room(r, b, n + 16);
    if (rc != PPROFIO_OK)
        return rc;
    rc_varint(b, (uint64_t)field << 3 | 2);
    rc_varint(b, n);
    if (n)
        memcpy(b->p + b->len, p, n);
    b->len += n;
    return PPROFIO_OK;
}

/* rc_str is the string's index in the delta's table, numbering it on first use. */
static int64_t rc_str(pprofio_records *r, int64_t s) {
    int64_t *m = &RC_AT(r->str_map, int64_t, 2 * (size_t)s);
    if (m[0] != r->snap) {
        m[0] = r->snap;
        m[1] = (int64_t)r->str_order.n;
        RC_AT(r->str_order, int64_t, r->str_order.n++) = s; /* room: one per string */
    }
    return m[1];
}

/* rc_mark stamps item i of marks for this snapshot; 1 when it was not yet. */
static int rc_mark(pprofio_records *r, rc_vec *marks, size_t i) {
    int64_t *m = &RC_AT(*marks, int64_t, i);
    if (*m == r->snap)
        return 0;
    *m = r->snap;
    return 1;
}

/* rc_value_type writes a ValueType message. */
static int rc_value_type(pprofio_records *r, pprofio_bytes *out, int field, int64_t type, int64_t unit) {
    pprofio_bytes *m = &r->msg;
    m->len = 0;
    int rc = rc_room(r, m, 32);
    if (rc != PPROFIO_OK)
        return rc;
    rc_field(m, 1, (uint64_t)rc_str(r, type));
    rc_field(m, 2, (uint64_t)rc_str(r, unit));
    return rc_bytes(r, out, field, m->p, m->len);
}

/* rc_sample writes key k's sample with values v; its locations are marked as used. */
static int rc_sample(pprofio_records *r, pprofio_bytes *out, const rc_key *k, const int64_t *v) {
    pprofio_bytes *m = &r->msg;
    m->len = 0;
    int rc = rc_room(r, m, 64 + 11 * ((size_t)k->n_loc + (size_t)r->n_values));
    if (rc != PPROFIO_OK)
        return rc;
    size_t nv = 0, nl = 0;
    for (int i = 0; i < r->n_values; i++)
        nv += v[i] < 0 ? 10 : (size_t)(64 - __builtin_clzll((uint64_t)v[i] | 1) + 6) / 7;
    rc_varint(m, 2 << 3 | 2); /* value: packed int64 */
    rc_varint(m, nv);
    for (int i = 0; i < r->n_values; i++)
        rc_varint(m, (uint64_t)v[i]);
    const uint32_t *locs = &RC_AT(r->loc_ids, uint32_t, k->loc_off);
    for (uint32_t i = 0; i < k->n_loc; i++) {
        nl += (size_t)(64 - __builtin_clzll((uint64_t)locs[i] | 1) + 6) / 7;
        if (rc_mark(r, &r->loc_mark, locs[i] - 1))
            RC_AT(r->used_locs, uint32_t, r->used_locs.n++) = locs[i];
    }
    if (k->n_loc) {
        rc_varint(m, 1 << 3 | 2); /* location_id: packed uint64 */
        rc_varint(m, nl);
        for (uint32_t i = 0; i < k->n_loc; i++)
            rc_varint(m, locs[i]);
    }
    if (k->label_key) { /* Label{key, num}: runtime/pprof's bytes label */
        uint8_t lab[32];
        pprofio_bytes lb = {lab, 0, sizeof lab};
        rc_field(&lb, 1, (uint64_t)rc_str(r, k->label_key));
        rc_field(&lb, 3, (uint64_t)k->label_num);
        rc_varint(m, 3 << 3 | 2);
        rc_varint(m, lb.len);
        memcpy(m->p + m->len, lab, lb.len);
        m->len += lb.len;
    }
    return rc_bytes(r, out, 2, m->p, m->len);
}

/* rc_location_msg writes location id (used), marking its functions and mapping. */
static int rc_location_msg(pprofio_records *r, pprofio_bytes *out, uint32_t id) {
    const rc_location *l = &RC_AT(r->locations, rc_location, id - 1);
    pprofio_bytes *m = &r->msg;
    m->len = 0;
    int rc = rc_room(r, m, 48 + 28 * (size_t)l->n_line);
    if (rc != PPROFIO_OK)
        return rc;
    rc_field(m, 1, id);
    rc_field(m, 2, l->mapping);
    rc_field(m, 3, l->addr);
    if (l->mapping)
        rc_mark(r, &r->map_mark, l->mapping - 1);
    for (uint32_t i = 0; i < l->n_line; i++) {
        const rc_line *ln = &RC_AT(r->lines, rc_line, l->line_off + i);
        uint8_t buf[24];
        pprofio_bytes lb = {buf, 0, sizeof buf};
        rc_field(&lb, 1, ln->fn);
        rc_field(&lb, 2, (uint64_t)ln->line);
        rc_varint(m, 4 << 3 | 2);
        rc_varint(m, lb.len);
        memcpy(m->p + m->len, buf, lb.len);
        m->len += lb.len;
        rc_mark(r, &r->fn_mark, ln->fn - 1);
    }
    return rc_bytes(r, out, 4, m->p, m->len);
}

/* rc_tables writes the mappings, locations and functions the samples use, then the strings. */
static int rc_tables(pprofio_records *r, pprofio_bytes *out) {
    int rc = PPROFIO_OK;
    for (size_t i = 0; i < r->used_locs.n && rc == PPROFIO_OK; i++)
        rc = rc_location_msg(r, out, RC_AT(r->used_locs, uint32_t, i));
    pprofio_bytes *m = &r->msg;
    for (size_t i = 0; i < r->functions.n && rc == PPROFIO_OK; i++) {
        if (RC_AT(r->fn_mark, int64_t, i) != r->snap)
            continue;
        const rc_function *f = &RC_AT(r->functions, rc_function, i);
        m->len = 0;
        if ((rc = rc_room(r, m, 64)) != PPROFIO_OK)
            break;
        int64_t name = rc_str(r, f->name);
        rc_field(m, 1, i + 1);
        rc_field(m, 2, (uint64_t)name);
        rc_field(m, 3, (uint64_t)name);
        rc_field(m, 4, (uint64_t)rc_str(r, f->file));
        rc_field(m, 5, (uint64_t)f->start_line);
        rc = rc_bytes(r, out, 5, m->p, m->len);
    }
    for (size_t i = 0; i < r->mappings.n && rc == PPROFIO_OK; i++) {
        if (RC_AT(r->map_mark, int64_t, i) != r->snap)
            continue;
        const rc_mapping *mp = &RC_AT(r->mappings, rc_mapping, i);
        m->len = 0;
        if ((rc = rc_room(r, m, 80)) != PPROFIO_OK)
            break;
        rc_field(m, 1, i + 1);
        rc_field(m, 2, mp->start);
        rc_field(m, 3, mp->limit);
        rc_field(m, 4, mp->offset);
        rc_field(m, 5, (uint64_t)rc_str(r, mp->file));
        rc_field(m, 6, (uint64_t)rc_str(r, mp->build_id));
        rc_field(m, 7, (uint64_t)mp->has_functions);
        rc = rc_bytes(r, out, 3, m->p, m->len);
    }
    for (size_t i = 0; i < r->str_order.n && rc == PPROFIO_OK; i++) {
        int64_t s = RC_AT(r->str_order, int64_t, i);
        rc = rc_bytes(r, out, 6, r->chars + RC_AT(r->str_off, uint64_t, s), RC_AT(r->str_len, uint64_t, s));
    }
    return rc;
}

/* rc_scratch sizes the per-emit marks for every item there is. */
static int rc_scratch(pprofio_records *r) {
    rc_vec *marks[] = {&r->loc_mark, &r->fn_mark, &r->map_mark};
    size_t counts[] = {r->locations.n, r->functions.n, r->mappings.n};
    for (int i = 0; i < 3; i++) {
        size_t had = marks[i]->n;
        int rc = rc_grow(r, marks[i], counts[i], sizeof(int64_t));
        if (rc != PPROFIO_OK)
            return rc;
        for (size_t k = had; k < counts[i]; k++)
            RC_AT(*marks[i], int64_t, k) = 0;
        marks[i]->n = counts[i];
    }
    size_t ns = r->str_off.n, had = r->str_map.n;
    int rc;
    if ((rc = rc_grow(r, &r->str_map, 2 * ns, sizeof(int64_t))) != PPROFIO_OK ||
        (rc = rc_grow(r, &r->str_order, ns, sizeof(int64_t))) != PPROFIO_OK ||
        (rc = rc_grow(r, &r->used_locs, r->locations.n, sizeof(uint32_t))) != PPROFIO_OK)
        return rc;
    for (size_t k = had; k < 2 * ns; k++)
        RC_AT(r->str_map, int64_t, k) = 0;
    r->str_map.n = 2 * ns;
    r->str_order.n = 0;
    r->used_locs.n = 0;
    return PPROFIO_OK;
}

/* rc_sum adds the snapshot's records into their keys (the first touch moves the last values to prev). */
static int rc_sum(pprofio_records *r, const int64_t *recs, size_t n) {
    size_t stride = 1 + (size_t)r->n_values;
    int rc = rc_grow(r, &r->touched, n, sizeof(uint32_t));
    if (rc != PPROFIO_OK)
        return rc;
    r->touched.n = 0;
    for (size_t i = 0; i < n; i++) {
        const int64_t *rec = recs + i * stride;
        if (rec[0] < 1 || (uint64_t)rec[0] > r->keys.n)
            return PPROFIO_ERR_INVALID;
        rc_key *k = &RC_AT(r->keys, rc_key, rec[0] - 1);
        if (k->seen != r->snap) {
            for (int v = 0; v < r->n_values; v++) {
                k->prev[v] = r->have_prev && k->seen == r->snap - 1 ? k->sum[v] : 0;
                k->sum[v] = 0;
            }
            k->seen = r->snap;
            RC_AT(r->touched, uint32_t, r->touched.n++) = (uint32_t)rec[0];
        }
        for (int v = 0; v < r->n_values; v++) /* wraps instead of overflowing */
            k->sum[v] = (int64_t)((uint64_t)k->sum[v] + (uint64_t)rec[1 + v]);
    }
    return PPROFIO_OK;
}

/* rc_emit writes the delta of the keys this snapshot touched. */
static int rc_emit(pprofio_records *r, int64_t time_ns, int64_t period, pprofio_bytes *out) {
    r->out_cap = out->cap;
    int rc = rc_scratch(r);
    if (rc != PPROFIO_OK)
        return rc;
    out->len = 0;
    rc_str(r, 0); /* "" is 0 */
    rc_str(r, r->period_type); /* numbered before the table is written; the message comes after it */
    rc_str(r, r->period_unit);
    for (int i = 0; i < r->n_values && rc == PPROFIO_OK; i++)
        rc = rc_value_type(r, out, 1, r->types[2 * i], r->types[2 * i + 1]);
    for (size_t i = 0; i < r->touched.n && rc == PPROFIO_OK; i++) {
        const rc_key *k = &RC_AT(r->keys, rc_key, RC_AT(r->touched, uint32_t, i) - 1);
        int64_t v[RC_MAX_VALUES];
        int nonzero = 0;
        for (int j = 0; j < r->n_values; j++) {
            v[j] = r->cum_mask & (1u << j) ? (int64_t)((uint64_t)k->sum[j] - (uint64_t)k->prev[j]) : k->sum[j];
            nonzero |= v[j] != 0;
        }
        if (nonzero || !r->have_prev) /* totals keep every stack, as runtime/pprof writes them */
            rc = rc_sample(r, out, k, v);
    }
    if (rc == PPROFIO_OK)
        rc = rc_tables(r, out);
    if (rc == PPROFIO_OK)
        rc = rc_room(r, out, 64);
    if (rc != PPROFIO_OK)
        return rc;
    int64_t start = r->prev_time > 0 && time_ns >= r->prev_time ? r->prev_time : time_ns;
    rc_field(out, 9, (uint64_t)start);
    rc_field(out, 10, (uint64_t)(time_ns - start));
    rc = rc_value_type(r, out, 11, r->period_type, r->period_unit);
    if (rc == PPROFIO_OK && (rc = rc_room(r, out, 16)) == PPROFIO_OK)
        rc_field(out, 12, (uint64_t)period);
    return rc;
}

int pprofio_records_cycle(pprofio_records *r, const int64_t *recs, size_t n, int64_t time_ns, int64_t period,
                          int emit, pprofio_bytes *out, int *is_delta) {
    *is_delta = 0;
    r->snap++;
    int rc = rc_sum(r, recs, n);
    if (rc == PPROFIO_OK && emit) {
        rc = rc_emit(r, time_ns, period, out);
        *is_delta = rc == PPROFIO_OK && r->have_prev;
    }
    if (rc != PPROFIO_OK) {
        pprofio_records_reset(r); /* values half summed: the next snapshot starts afresh */
        return rc;
    }
    r->have_prev = 1;
    r->prev_time = time_ns;
    return PPROFIO_OK;
}

void pprofio_records_reset(pprofio_records *r) {
    r->have_prev = 0;
    r->prev_time = 0;
    r->snap++;
}
