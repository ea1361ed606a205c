//go:build ignore

/* pbwire.c: pprof samples on the protobuf wire (see pbwire.h). */
#include "pbwire.h"

#include <string.h>

#include "alloc.h"
#include "errors.h"

typedef struct {
    const uint8_t *p, *end;
} pb_rd;

static int pb_varint(pb_rd *r, uint64_t *v) {
    const uint8_t *p = r->p;
    size_t left = (size_t)(r->end - p), max = left < 10 ? left : 10; /* 10 bytes hold 64 bits */
    uint64_t x = 0;
    for (size_t i = 0; i < max; i++) {
        x |= (uint64_t)(p[i] & 0x7f) << (7 * i);
        if (p[i] < 0x80) {
            r->p = p + i + 1;
            *v = x;
            return 1;
        }
    }
    return 0; /* cut short, or longer than 10 bytes */
}

/* pb_tag reads a field's tag: its number (never 0) and wire type. */
static int pb_tag(pb_rd *r, uint32_t *field, uint32_t *wt) {
    uint64_t t;
    if (!pb_varint(r, &t) || t > UINT32_MAX || (t >> 3) == 0)
        return 0;
    *field = (uint32_t)(t >> 3);
    *wt = (uint32_t)(t & 7);
    return 1;
}

/* pb_len reads a length-delimited field's length and checks the bytes are there. */
static int pb_len(pb_rd *r, size_t *len) {
    uint64_t v;
    if (!pb_varint(r, &v) || v > (uint64_t)(r->end - r->p))
        return 0;
    *len = (size_t)v;
    return 1;
}

static int pb_skip(pb_rd *r, uint32_t wt) {
    uint64_t v;
    size_t len;
    switch (wt) {
    case 0:
        return pb_varint(r, &v);
    case 1:
    case 5:
        len = wt == 1 ? 8 : 4;
        if ((size_t)(r->end - r->p) < len)
            return 0;
        r->p += len;
        return 1;
    case 2:
        if (!pb_len(r, &len))
            return 0;
        r->p += len;
        return 1;
    default:
        return 0; /* groups (deprecated) and the wire types that do not exist */
    }
}

/*
 * pb_grow makes room for need elements of size bytes in *p. A sample's
 * arrays stay within a few times its bytes: the caller asks for no more
 * elements than the bytes it reads.
 */
static int pb_grow(void **p, size_t *cap, size_t need, size_t size) {
    if (need <= *cap)
        return PPROFIO_OK;
    size_t c = *cap ? *cap : 64;
    while (c < need) {
        if (c > SIZE_MAX / 4 / size)
            return PPROFIO_ERR_FORMAT;
        c *= 2;
    }
    void *q = pprofio_realloc(*p, c * size);
    if (!q)
        return PPROFIO_ERR_NOMEM;
    *p = q;
    *cap = c;
    return PPROFIO_OK;
}

/*
 * pb_store puts v into element k of arr (size-byte elements). 4-byte
 * elements are at most max, and with slot become slot[v] - 1 (0: an error).
 */
static inline __attribute__((always_inline)) int pb_store(void *arr, size_t k, uint64_t v, size_t size,
                                                          const uint32_t *slot, uint64_t max) {
    if (size == 8) {
        ((uint64_t *)arr)[k] = v;
        return 1;
    }
    if (v > max || (slot && slot[v] == 0))
        return 0;
    ((uint32_t *)arr)[k] = slot ? slot[v] - 1 : (uint32_t)v;
    return 1;
}

/*
 * pb_numbers appends a repeated integer field's values to the array *arr of
 * size-byte elements (see pb_store): one varint (wire type 0) or a packed
 * run (2). Inlined, so that each caller's loop is compiled for its element
 * size.
 */
static inline __attribute__((always_inline)) int pb_numbers(pb_rd *r, uint32_t wt, void **arr, size_t *n,
                                                            size_t *cap, size_t size, const uint32_t *slot,
                                                            uint64_t max) {
    uint64_t v;
    size_t len;
    int rc;
    if (wt == 0) {
        if (!pb_varint(r, &v))
            return PPROFIO_ERR_FORMAT;
        if ((rc = pb_grow(arr, cap, *n + 1, size)) != PPROFIO_OK)
            return rc;
        if (!pb_store(*arr, *n, v, size, slot, max))
            return PPROFIO_ERR_FORMAT;
        (*n)++;
        return PPROFIO_OK;
    }
    if (wt != 2 || !pb_len(r, &len))
        return PPROFIO_ERR_FORMAT;
    if ((rc = pb_grow(arr, cap, *n + len, size)) != PPROFIO_OK) /* a varint takes at least a byte */
        return rc;
    const uint8_t *p = r->p, *end = r->p + len;
    r->p = end;
    size_t k = *n;
    while (p < end) {
        if (*p < 0x80) { /* most ids and counts take one or two bytes */
            v = *p++;
        } else if (end - p >= 2 && p[1] < 0x80) {
            v = (uint64_t)(p[0] & 0x7f) | (uint64_t)p[1] << 7;
            p += 2;
        } else {
            pb_rd sub = {p, end};
            if (!pb_varint(&sub, &v))
                return PPROFIO_ERR_FORMAT;
            p = sub.p;
        }
        if (!pb_store(*arr, k++, v, size, slot, max))
            return PPROFIO_ERR_FORMAT;
    }
    *n = k;
    return PPROFIO_OK;
}

/* pb_label reads a Label message; its fields are all int64. */
static int pb_label(pprofio_pb_sample *o, const uint8_t *p, size_t len) {
    void *arr = o->lab;
    int rc = pb_grow(&arr, &o->cap_lab, o->n_lab + 1, sizeof *o->lab);
    o->lab = arr;
    if (rc != PPROFIO_OK)
        return rc;
    pprofio_pb_label *l = &o->lab[o->n_lab];
    memset(l, 0, sizeof *l);
    pb_rd r = {p, p + len};
    while (r.p < r.end) {
        uint32_t f, wt;
        uint64_t v;
        if (!pb_tag(&r, &f, &wt))
            return PPROFIO_ERR_FORMAT;
        if (f > 4) {
            if (!pb_skip(&r, wt))
                return PPROFIO_ERR_FORMAT;
            continue;
        }
        if (wt != 0 || !pb_varint(&r, &v))
            return PPROFIO_ERR_FORMAT;
        int64_t *field[] = {&l->key, &l->str, &l->num, &l->num_unit};
        *field[f - 1] = (int64_t)v;
    }
    o->n_lab++;
    return PPROFIO_OK;
}

int pprofio_pb_read(const pprofio_pb_samples *s, size_t i, pprofio_pb_sample *o, const uint32_t *slot, uint64_t max) {
    if (!slot || max > UINT32_MAX)
        max = UINT32_MAX;
    const uint8_t *p = s->raw + s->s[i].off;
    pb_rd r = {p, p + s->s[i].len};
    int rc = PPROFIO_OK;
    o->n_loc = o->n_val = o->n_lab = 0;
    while (r.p < r.end && rc == PPROFIO_OK) {
        uint32_t f, wt;
        size_t sub;
        void *arr;
        if (!pb_tag(&r, &f, &wt))
            return PPROFIO_ERR_FORMAT;
        if (f == 1) {
            arr = o->loc;
            rc = pb_numbers(&r, wt, &arr, &o->n_loc, &o->cap_loc, sizeof *o->loc, slot, max);
            o->loc = arr;
        } else if (f == 2) {
            arr = o->val;
            rc = pb_numbers(&r, wt, &arr, &o->n_val, &o->cap_val, sizeof *o->val, NULL, 0);
            o->val = arr;
        } else if (f == 3) {
            if (wt != 2 || !pb_len(&r, &sub))
                return PPROFIO_ERR_FORMAT;
            rc = pb_label(o, r.p, sub);
            r.p += sub;
        } else if (!pb_skip(&r, wt)) {
            return PPROFIO_ERR_FORMAT;
        }
    }
    return rc;
}

void pprofio_pb_sample_free(pprofio_pb_sample *o) {
    pprofio_free(o->loc);
    pprofio_free(o->val);
    pprofio_free(o->lab);
    memset(o, 0, sizeof *o);
}

int pprofio_pb_split(const uint8_t *raw, size_t n, size_t limit, pprofio_pb_samples *s) {
    memset(s, 0, sizeof *s);
    s->raw = raw;
    s->limit = limit;
    if (n == 0)
        return PPROFIO_OK;
    if (n > UINT32_MAX)
        return PPROFIO_ERR_FORMAT; /* spans are 32-bit */
    s->rest = pprofio_malloc(n);
    void *arr = NULL;
    int rc = s->rest ? pb_grow(&arr, &s->cap, n / 128 + 1, sizeof *s->s) : PPROFIO_ERR_NOMEM; /* rarely copied */
    s->s = arr;
    if (rc != PPROFIO_OK)
        return rc;
    s->bytes = s->cap * sizeof *s->s;
    pb_rd r = {raw, raw + n};
    while (r.p < r.end) {
        const uint8_t *start = r.p;
        uint32_t f, wt;
        size_t len;
        if (!pb_tag(&r, &f, &wt))
            return PPROFIO_ERR_FORMAT;
        if (f == 2) { /* a sample: noted, read later */
            if (wt != 2 || !pb_len(&r, &len))
                return PPROFIO_ERR_FORMAT;
            if (s->n == s->cap) {
                if ((s->cap * 2 - s->cap) * sizeof *s->s + s->bytes > s->limit)
                    return PPROFIO_ERR_FORMAT; /* far more memory than its bytes can need */
                size_t old = s->cap;
                arr = s->s;
                if ((rc = pb_grow(&arr, &s->cap, s->n + 1, sizeof *s->s)) != PPROFIO_OK)
                    return rc;
                s->s = arr;
                s->bytes += (s->cap - old) * sizeof *s->s;
            }
            s->s[s->n++] = (pprofio_pb_span){(uint32_t)(r.p - raw), (uint32_t)len};
            r.p += len;
            continue;
        }
        if (!pb_skip(&r, wt))
            return PPROFIO_ERR_FORMAT;
        memcpy(s->rest + s->n_rest, start, (size_t)(r.p - start));
        s->n_rest += (size_t)(r.p - start);
    }
    return PPROFIO_OK;
}

void pprofio_pb_samples_free(pprofio_pb_samples *s) {
    pprofio_free(s->s);
    pprofio_free(s->rest);
    memset(s, 0, sizeof *s);
}

/* ---- writing ----------------------------------------------------------- */

static size_t pb_vsize(uint64_t v) {
    size_t n = 1;
    while (v >= 0x80) {
        v >>= 7;
        n++;
    }
    return n;
}

static uint8_t *pb_put(uint8_t *p, uint64_t v) {
    while (v >= 0x80) {
        *p++ = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    *p++ = (uint8_t)v;
    return p;
}

/* pb_label_size is a label's body: proto3 leaves out the fields that are 0. */
static size_t pb_label_size(const pprofio_pb_label *l) {
    const int64_t f[] = {l->key, l->str, l->num, l->num_unit};
    size_t n = 0;
    for (int i = 0; i < 4; i++)
        if (f[i])
            n += 1 + pb_vsize((uint64_t)f[i]);
    return n;
}

int pprofio_pb_put_sample(pprofio_bytes *out, const uint32_t *loc_ids, size_t n_loc, const int64_t *val,
                          size_t n_val, const pprofio_pb_label *lab, size_t n_lab) {
    size_t locs = 0, vals = 0, body = 0;
    for (size_t i = 0; i < n_loc; i++)
        locs += pb_vsize(loc_ids[i]);
    for (size_t i = 0; i < n_val; i++)
        vals += pb_vsize((uint64_t)val[i]);
    if (n_loc)
        body += 1 + pb_vsize(locs) + locs;
    if (n_val)
        body += 1 + pb_vsize(vals) + vals;
    for (size_t i = 0; i < n_lab; i++) {
        size_t l = pb_label_size(&lab[i]);
        body += 1 + pb_vsize(l) + l;
    }
    int rc = pprofio_bytes_grow(out, 1 + pb_vsize(body) + body, NULL, NULL);
    if (rc != PPROFIO_OK)
        return rc;
    uint8_t *p = out->p + out->len;
    *p++ = 0x12; /* Profile.sample: field 2, length-delimited */
    p = pb_put(p, body);
    if (n_loc) {
        *p++ = 0x0a; /* Sample.location_id, packed */
        p = pb_put(p, locs);
        for (size_t i = 0; i < n_loc; i++)
            p = pb_put(p, loc_ids[i]);
    }
    if (n_val) {
        *p++ = 0x12; /* Sample.value, packed */
        p = pb_put(p, vals);
        for (size_t i = 0; i < n_val; i++)
            p = pb_put(p, (uint64_t)val[i]);
    }
    for (size_t i = 0; i < n_lab; i++) {
        *p++ = 0x1a; /* Sample.label */
        p = pb_put(p, pb_label_size(&lab[i]));
        const int64_t f[] = {lab[i].key, lab[i].str, lab[i].num, lab[i].num_unit};
        for (int k = 0; k < 4; k++)
            if (f[k]) {
                *p++ = (uint8_t)((k + 1) << 3); /* Label fields 1-4, varints */
                p = pb_put(p, (uint64_t)f[k]);
            }
    }
    out->len = (size_t)(p - out->p);
    return PPROFIO_OK;
}
