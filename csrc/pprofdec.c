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

/* pp_check_refs verifies every id the locations refer to. */
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
    return 1;
}

int pprofio_pprofdec_sample(pprofio_pprofdec *d, size_t i, pprofio_error *err) {
    pprofio_pb_sample *o = &d->one;
    int rc = pprofio_pb_read(&d->s, i, o, d->locs.slot, d->locs.max);
    if (rc == PPROFIO_ERR_NOMEM)
        return pprofio_set_error(err, rc, "pprof: out of memory for a sample");
    if (rc != PPROFIO_OK)
        return pprofio_set_error(err, PPROFIO_ERR_FORMAT,
                                 "pprof: sample %zu is not a Sample message, or refers to a location that does not exist", i);
    if (o->n_val != d->n_values)
        return pprofio_set_error(err, PPROFIO_ERR_FORMAT, "pprof: sample %zu has %zu values for %zu sample types", i,
                                 o->n_val, d->n_values);
    for (size_t k = 0; k < o->n_lab; k++) {
        const pprofio_pb_label *l = &o->lab[k];
        if ((uint64_t)l->key >= d->n_str || (uint64_t)l->str >= d->n_str || (uint64_t)l->num_unit >= d->n_str)
            return pprofio_set_error(err, PPROFIO_ERR_FORMAT,
                                     "pprof: a string index is out of range (a label of sample %zu)", i);
    }
    return PPROFIO_OK;
}

int pprofio_pprofdec_check_samples(pprofio_pprofdec *d, pprofio_error *err) {
    for (size_t i = 0; i < d->s.n; i++) {
        int rc = pprofio_pprofdec_sample(d, i, err);
        if (rc != PPROFIO_OK)
            return rc;
    }
    return PPROFIO_OK;
}

/* pprofio_pprofdec_release frees what pprofio_pprofdec_decode made. */
void pprofio_pprofdec_release(pprofio_pprofdec *d) {
    pp_arena_release(&d->mem);
    pprofio_pb_samples_free(&d->s);
    pprofio_pb_sample_free(&d->one);
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
        return pprofio_set_error(err, PPROFIO_ERR_FORMAT, "pprof: a location refers to nothing");
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

#define KEY_WORDS 4096 /* what a key may hold: 2 words a frame, 3 a label */

/* pp_mix is a bijection of 64-bit words that spreads every bit over all of them (splitmix64's finaliser). */
static inline uint64_t pp_mix(uint64_t x) {
    x = (x ^ (x >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
    x = (x ^ (x >> 27)) * UINT64_C(0x94D049BB133111EB);
    return x ^ (x >> 31);
}

/*
 * pp_frame_keys works out once per location the two words its frame adds
 * to a sample's hashes: mixes of its address, or without one of a hash of
 * its functions' names and lines (other seeds: no address can pass for
 * one). It also keeps each location's id and makes room for the strings'
 * hashes.
 */
static int pp_frame_keys(pprofio_pprofdec *d) {
    const PbProfile *p = d->p;
    d->lkey = pprofio_pprofdec_alloc(&d->mem, (2 * p->n_location + 1) * sizeof *d->lkey);
    d->loc_id = pprofio_pprofdec_alloc(&d->mem, (p->n_location + 1) * sizeof *d->loc_id);
    d->shash = pprofio_pprofdec_alloc(&d->mem, (p->n_string_table + 1) * sizeof *d->shash);
    if (!d->lkey || !d->loc_id || !d->shash)
        return PPROFIO_ERR_NOMEM;
    memset(d->shash, 0, (p->n_string_table + 1) * sizeof *d->shash);
    d->n_str = p->n_string_table;
    for (size_t i = 0; i < p->n_location; i++) {
        const PbLocation *l = p->location[i];
        uint64_t h = FNV_INIT, s1 = UINT64_C(0x243F6A8885A308D3), s2 = UINT64_C(0x13198A2E03707344);
        for (size_t k = 0; l->address == 0 && k < l->n_line; k++) {
            const PbFunction *f = p->function[pprofio_pprofdec_lookup(&d->fns, l->line[k]->function_id)];
            const char *name = pprofio_pprofdec_str(p, f->name);
            h = pp_fnv(name, strlen(name) + 1, h);
            h = pp_fnv(&l->line[k]->line, sizeof l->line[k]->line, h);
        }
        if (l->address == 0) /* a frame known by name */
            s1 = UINT64_C(0xA4093822299F31D0), s2 = UINT64_C(0x082EFA98EC4E6C89);
        d->lkey[2 * i] = pp_mix((l->address ? l->address : h) ^ s1);
        d->lkey[2 * i + 1] = pp_mix((l->address ? l->address : h) ^ s2);
        d->loc_id[i] = (uint32_t)l->id; /* ids are small: pp_index_ids checks them */
    }
    return PPROFIO_OK;
}

/* pp_str_hash is string i's hash, worked out on its first use. */
static inline uint64_t pp_str_hash(pprofio_pprofdec *d, int64_t i) {
    if (!d->shash[i]) {
        const char *s = pprofio_pprofdec_str(d->p, i);
        d->shash[i] = pp_fnv(s, strlen(s) + 1, FNV_INIT) | 1;
    }
    return d->shash[i];
}

/*
 * pprofio_pprofdec_hash: each pair of frames steps two chains (running side
 * by side in the CPU) with words worked out per location; for given frames
 * each step is a bijection of the state, so once two stacks' chains part
 * they meet again only by a chance of about 2^-64 per chain. Labels
 * are a set (as google/pprof keys them): a mix of each one's key, value
 * and number goes into a sum and an exclusive or, blind to their order.
 */
void pprofio_pprofdec_hash(pprofio_pprofdec *d, int labels, uint64_t *h1, uint64_t *h2) {
    const pprofio_pb_sample *o = &d->one;
    size_t n_lab = labels ? o->n_lab : 0;
    *h1 = *h2 = 0;
    if (o->n_loc > (KEY_WORDS - 1) / 2 || n_lab > (KEY_WORDS - 1 - 2 * o->n_loc) / 3)
        return; /* too deep to key: never matched */
    uint64_t a = UINT64_C(0x9E3779B97F4A7C15) ^ o->n_loc, b = UINT64_C(0xC2B2AE3D27D4EB4F) + o->n_loc;
    const uint64_t *lk = d->lkey;
    size_t i = 0;
    for (; i + 2 <= o->n_loc; i += 2) { /* two frames a step: the second one's product is ready with the first's */
        const uint64_t *k = lk + 2 * o->loc[i], *k2 = lk + 2 * o->loc[i + 1];
        a = (a ^ k[0]) * UINT64_C(0xFF51AFD7ED558CCD) + k2[0] * UINT64_C(0x9FB21C651E98DF25);
        b = (b + k[1]) * UINT64_C(0xC4CEB9FE1A85EC53) ^ k2[1] * UINT64_C(0xD6E8FEB86659FD93);
    }
    if (i < o->n_loc) {
        const uint64_t *k = lk + 2 * o->loc[i];
        a = (a ^ k[0]) * UINT64_C(0xFF51AFD7ED558CCD);
        b = (b + k[1]) * UINT64_C(0xC4CEB9FE1A85EC53);
    }
    uint64_t la = 0, lb = 0; /* a sum and an exclusive or of the labels' mixes: both blind to order */
    for (size_t i = 0; i < n_lab; i++) {
        const pprofio_pb_label *l = &o->lab[i];
        uint64_t t = pp_mix(pp_str_hash(d, l->key) * UINT64_C(0x9FB21C651E98DF25) ^
                            pp_str_hash(d, l->str) * UINT64_C(0xD6E8FEB86659FD93) ^
                            (uint64_t)l->num * UINT64_C(0xFF51AFD7ED558CCD));
        la += t;
        lb ^= t;
    }
    *h1 = pp_mix(a ^ (la * UINT64_C(0xC4CEB9FE1A85EC53) + n_lab)) | 1; /* spread: the table uses its bits */
    *h2 = b + (lb ^ n_lab) * UINT64_C(0x94D049BB133111EB);           /* only compared */
}
