//go:build ignore

/* pprofdec.c: a pprof profile decoded and checked, and its samples' keys (see pprofdec.h). */
#include "pprofdec.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "errors.h"

#define MAX_VALUES 32             /* sample types a profile may have */
#ifdef PPROFIO_PPROF_ARENA_CHUNK /* tests/fuzz/fuzz.mk: smaller chunks, faster under ASan */
#define ARENA_CHUNK PPROFIO_PPROF_ARENA_CHUNK
#else
#define ARENA_CHUNK (1u << 20)
#endif
#define ARENA_FACTOR 16           /* decoding memory allowed per input byte */

/* ---- an arena for protobuf-c: freed all at once ----------------------- */

typedef struct pprofio_pprofdec_chunk {
    struct pprofio_pprofdec_chunk *next;
    size_t used, cap;
    max_align_t data[];
} pprofio_pprofdec_chunk;

void *pprofio_pprofdec_alloc(void *ctx, size_t n) {
    pprofio_pprofdec_arena *a = ctx;
    n = (n + sizeof(max_align_t) - 1) / sizeof(max_align_t) * sizeof(max_align_t);
    if (n == 0)
        n = sizeof(max_align_t);
    pprofio_pprofdec_chunk *c = a->head;
    if (!c || c->cap - c->used < n) {
        size_t cap = n > ARENA_CHUNK ? n : ARENA_CHUNK;
        if (a->total + cap > a->limit)
            return NULL; /* hostile input: more memory than any real profile needs */
        c = pprofio_malloc(sizeof *c + cap);
        if (!c)
            return NULL;
        c->next = a->head;
        c->used = 0;
        c->cap = cap;
        a->head = c;
        a->total += cap;
    }
    void *p = (char *)c->data + c->used;
    c->used += n;
    return p;
}

static void pp_arena_free_one(void *ctx, void *p) {
    (void)ctx;
    (void)p; /* freed with the arena */
}

static void pp_arena_release(pprofio_pprofdec_arena *a) {
    while (a->head) {
        pprofio_pprofdec_chunk *c = a->head;
        a->head = c->next;
        pprofio_free(c);
    }
    a->total = 0;
}

/* ---- ids to objects --------------------------------------------------- */

static int pp_index_ids(pprofio_pprofdec_arena *a, pprofio_pprofdec_ids *ix, size_t n,
                        uint64_t (*id_of)(void *, size_t), void *objs) {
    ix->max = 0;
    for (size_t i = 0; i < n; i++) {
        uint64_t id = id_of(objs, i);
        if (id == 0 || id > (uint64_t)n * 4 + 1024)
            return PPROFIO_ERR_FORMAT; /* ids are small and non-zero in any real profile */
        if (id > ix->max)
            ix->max = id;
    }
    ix->slot = pprofio_pprofdec_alloc(a, (ix->max + 1) * sizeof *ix->slot);
    if (!ix->slot)
        return PPROFIO_ERR_NOMEM;
    memset(ix->slot, 0, (ix->max + 1) * sizeof *ix->slot);
    for (size_t i = 0; i < n; i++) {
        uint64_t id = id_of(objs, i);
        if (ix->slot[id])
            return PPROFIO_ERR_FORMAT; /* duplicate id */
        ix->slot[id] = (uint32_t)i + 1;
    }
    return PPROFIO_OK;
}

long pprofio_pprofdec_lookup(const pprofio_pprofdec_ids *ix, uint64_t id) {
    if (id == 0 || id > ix->max || ix->slot[id] == 0)
        return -1;
    return (long)ix->slot[id] - 1;
}

static uint64_t pp_loc_id(void *o, size_t i) { return ((PbLocation **)o)[i]->id; }
static uint64_t pp_fn_id(void *o, size_t i) { return ((PbFunction **)o)[i]->id; }
static uint64_t pp_map_id(void *o, size_t i) { return ((PbMapping **)o)[i]->id; }

/* ---- a decoded, checked profile ---------------------------------------- */

static uint64_t pp_fnv(const void *p, size_t n, uint64_t h) {
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++)
        h = (h ^ b[i]) * UINT64_C(0x100000001b3);
    return h;
}

#define FNV_INIT UINT64_C(0xcbf29ce484222325)

static int pp_str_ok(const PbProfile *p, int64_t i) { return i >= 0 && (size_t)i < p->n_string_table; }

const char *pprofio_pprofdec_str(const PbProfile *p, int64_t i) { return pp_str_ok(p, i) ? p->string_table[i] : ""; }

static int pp_is_cumulative(const char *type) {
    static const char *const names[] = {"alloc_objects", "alloc_space", "contentions", "delay"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (strcmp(type, names[i]) == 0)
            return 1;
    return 0;
}

/* pp_check_strings verifies every string index the profile holds. */
static int pp_check_strings(const PbProfile *p) {
    if (p->n_string_table == 0 || p->string_table[0][0] != '\0')
        return 0; /* the table must start with "" */
    if (!pp_str_ok(p, p->drop_frames) || !pp_str_ok(p, p->keep_frames) || !pp_str_ok(p, p->default_sample_type) ||
        !pp_str_ok(p, p->doc_url))
        return 0;
    for (size_t i = 0; i < p->n_comment; i++)
        if (!pp_str_ok(p, p->comment[i]))
            return 0;
    for (size_t i = 0; i < p->n_sample_type; i++)
        if (!pp_str_ok(p, p->sample_type[i]->type) || !pp_str_ok(p, p->sample_type[i]->unit))
            return 0;
    if (p->period_type && (!pp_str_ok(p, p->period_type->type) || !pp_str_ok(p, p->period_type->unit)))
        return 0;
    for (size_t i = 0; i < p->n_mapping; i++)
        if (!pp_str_ok(p, p->mapping[i]->filename) || !pp_str_ok(p, p->mapping[i]->build_id))
            return 0;
    for (size_t i = 0; i < p->n_function; i++) {
        PbFunction *f = p->function[i];
        if (!pp_str_ok(p, f->name) || !pp_str_ok(p, f->system_name) || !pp_str_ok(p, f->filename))
            return 0;
    }
    return 1;
}

/*
 * pp_check_refs verifies every id the samples and locations refer to and
 * every string index of the labels, and turns the samples' location ids
 * into indexes.
 */
static int pp_check_refs(pprofio_pprofdec *d) {
    const PbProfile *p = d->p;
    for (size_t i = 0; i < p->n_location; i++) {
        PbLocation *l = p->location[i];
        if (l->mapping_id != 0 && pprofio_pprofdec_lookup(&d->maps, l->mapping_id) < 0)
            return 0;
        for (size_t k = 0; k < l->n_line; k++)
            if (pprofio_pprofdec_lookup(&d->fns, l->line[k]->function_id) < 0)
                return 0;
    }
    for (size_t i = 0; i < d->s.n; i++)
        if (d->s.s[i].n_val != d->n_values)
            return 0;
    for (size_t i = 0; i < d->s.n_loc; i++) {
        long ix = pprofio_pprofdec_lookup(&d->locs, d->s.loc[i]);
        if (ix < 0)
            return 0;
        d->s.loc[i] = (uint32_t)ix;
    }
    for (size_t i = 0; i < d->s.n_lab; i++) {
        const pprofio_pb_label *l = &d->s.lab[i];
        if (!pp_str_ok(p, l->key) || !pp_str_ok(p, l->str) || !pp_str_ok(p, l->num_unit))
            return 0;
    }
    return 1;
}

/* pprofio_pprofdec_release frees what pprofio_pprofdec_decode made. */
void pprofio_pprofdec_release(pprofio_pprofdec *d) {
    pp_arena_release(&d->mem);
    pprofio_pb_samples_free(&d->s);
}

static int pp_frame_keys(pprofio_pprofdec *d);

int pprofio_pprofdec_decode(const uint8_t *raw, size_t n, pprofio_pprofdec *d, pprofio_error *err) {
    memset(d, 0, sizeof *d);
    if (n == 0) /* protobuf-c reads no bytes as a profile with nothing in it */
        return pprofio_set_error(err, PPROFIO_ERR_FORMAT, "pprof: the input is empty (0 bytes)");
    d->mem.limit = n * ARENA_FACTOR + 4 * ARENA_CHUNK;
    int rc = pprofio_pb_split(raw, n, n * ARENA_FACTOR + ARENA_CHUNK, &d->s);
    if (rc == PPROFIO_ERR_NOMEM)
        return pprofio_set_error(err, rc, "pprof: out of memory for the samples");
    ProtobufCAllocator alloc = {pprofio_pprofdec_alloc, pp_arena_free_one, &d->mem};
    if (rc == PPROFIO_OK)
        d->p = perftools__profiles__profile__unpack(&alloc, d->s.n_rest, d->s.rest);
    if (!d->p)
        return pprofio_set_error(err, PPROFIO_ERR_FORMAT, "pprof: not a profile (or larger than its bytes allow)");
    PbProfile *p = d->p;
    if (p->n_sample_type > MAX_VALUES)
        return pprofio_set_error(err, PPROFIO_ERR_FORMAT, "pprof: %zu sample types", p->n_sample_type);
    d->n_values = p->n_sample_type;
    rc = pp_index_ids(&d->mem, &d->locs, p->n_location, pp_loc_id, p->location);
    if (rc == PPROFIO_OK)
        rc = pp_index_ids(&d->mem, &d->fns, p->n_function, pp_fn_id, p->function);
    if (rc == PPROFIO_OK)
        rc = pp_index_ids(&d->mem, &d->maps, p->n_mapping, pp_map_id, p->mapping);
    if (rc != PPROFIO_OK)
        return pprofio_set_error(err, rc, "pprof: %s ids", rc == PPROFIO_ERR_NOMEM ? "no memory for" : "bad");
    if (!pp_check_strings(p))
        return pprofio_set_error(err, PPROFIO_ERR_FORMAT, "pprof: a string index is out of range");
    if (!pp_check_refs(d))
        return pprofio_set_error(err, PPROFIO_ERR_FORMAT, "pprof: a sample or location refers to nothing");
    d->types_sig = FNV_INIT;
    for (size_t i = 0; i < d->n_values; i++) {
        const char *t = pprofio_pprofdec_str(p, p->sample_type[i]->type);
        const char *u = pprofio_pprofdec_str(p, p->sample_type[i]->unit);
        d->types_sig = pp_fnv(u, strlen(u) + 1, pp_fnv(t, strlen(t) + 1, d->types_sig));
        if (pp_is_cumulative(t))
            d->cum_mask |= 1u << i;
    }
    if (pp_frame_keys(d) != PPROFIO_OK)
        return pprofio_set_error(err, PPROFIO_ERR_NOMEM, "pprof: out of memory for the frames' keys");
    return PPROFIO_OK;
}

/* ---- sample keys ------------------------------------------------------ */

/* pp_cmp_label orders the (key, value, number) triples of a key's labels. */
static int pp_cmp_label(const void *x, const void *y) {
    const uint64_t *a = x, *b = y;
    for (int i = 0; i < 3; i++)
        if (a[i] != b[i])
            return a[i] < b[i] ? -1 : 1;
    return 0;
}

/*
 * pp_frame_keys works out once per location what its frames add to a
 * sample's key: its address, or without one 0 and a hash of its
 * functions' names and lines.
 */
static int pp_frame_keys(pprofio_pprofdec *d) {
    const PbProfile *p = d->p;
    d->fkey = pprofio_pprofdec_alloc(&d->mem, (2 * p->n_location + 1) * sizeof *d->fkey);
    if (!d->fkey)
        return PPROFIO_ERR_NOMEM;
    for (size_t i = 0; i < p->n_location; i++) {
        const PbLocation *l = p->location[i];
        uint64_t h = FNV_INIT;
        for (size_t k = 0; l->address == 0 && k < l->n_line; k++) {
            const PbFunction *f = p->function[pprofio_pprofdec_lookup(&d->fns, l->line[k]->function_id)];
            const char *name = pprofio_pprofdec_str(p, f->name);
            h = pp_fnv(name, strlen(name) + 1, h);
            h = pp_fnv(&l->line[k]->line, sizeof l->line[k]->line, h);
        }
        d->fkey[2 * i] = l->address;
        d->fkey[2 * i + 1] = h;
    }
    return PPROFIO_OK;
}

/*
 * pprofio_pprofdec_key writes a sample's identity as 64-bit words: for each frame its
 * address (or, without one, its functions' names and lines), then (with
 * labels != 0) its labels, sorted. Returns the word count, or 0 when buf is too small.
 */
size_t pprofio_pprofdec_key(const pprofio_pprofdec *d, const PbSample *s, int labels, uint64_t *buf, size_t cap) {
    const PbProfile *p = d->p;
    size_t n = 0;
    for (size_t i = 0; i < s->n_loc; i++) {
        const uint64_t *fk = d->fkey + 2 * d->s.loc[s->loc_off + i];
        if (n + 2 > cap)
            return 0;
        buf[n++] = fk[0];
        if (fk[0] == 0)
            buf[n++] = fk[1]; /* a frame known by name */
    }
    size_t first_label = n;
    for (size_t i = 0; labels && i < s->n_lab; i++) {
        const pprofio_pb_label *lb = &d->s.lab[s->lab_off + i];
        if (n + 3 > cap)
            return 0;
        const char *k = pprofio_pprofdec_str(p, lb->key), *v = pprofio_pprofdec_str(p, lb->str);
        buf[n++] = pp_fnv(k, strlen(k) + 1, FNV_INIT);
        buf[n++] = pp_fnv(v, strlen(v) + 1, FNV_INIT);
        buf[n++] = (uint64_t)lb->num;
    }
    /* Labels are a set (as google/pprof keys them): the order written means nothing. */
    if (n - first_label > 3)
        qsort(buf + first_label, (n - first_label) / 3, 3 * sizeof *buf, pp_cmp_label);
    if (n + 1 > cap)
        return 0;
    buf[n++] = s->n_loc; /* stacks of different depth never collide */
    return n;
}
