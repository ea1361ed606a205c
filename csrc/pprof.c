//go:build ignore

/* pprof.c: delta profiles on raw pprof protobuf (see pprof.h). */
#include "pprof.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "baseline.h"
#include "errors.h"
#include "pbwire.h"
#include "profile.pb-c.h"

typedef Perftools__Profiles__Profile PbProfile;
typedef pprofio_pb_sample PbSample; /* read by pbwire.c, not protobuf-c */
typedef Perftools__Profiles__Location PbLocation;
typedef Perftools__Profiles__Function PbFunction;
typedef Perftools__Profiles__Mapping PbMapping;
typedef Perftools__Profiles__ValueType PbValueType;

#define MAX_VALUES 32             /* sample types a profile may have */
#ifdef PPROFIO_PPROF_ARENA_CHUNK /* tests/fuzz/fuzz.mk: smaller chunks, faster under ASan */
#define ARENA_CHUNK PPROFIO_PPROF_ARENA_CHUNK
#else
#define ARENA_CHUNK (1u << 20)
#endif
#define ARENA_FACTOR 16           /* pp_decode memory allowed per input byte */

/* ---- an pp_arena for protobuf-c: freed all at once ----------------------- */

typedef struct pp_chunk {
    struct pp_chunk *next;
    size_t used, cap;
    max_align_t data[];
} pp_chunk;

typedef struct {
    pp_chunk *head;
    size_t total, limit;
} pp_arena;

static void *pp_arena_alloc(void *ctx, size_t n) {
    pp_arena *a = ctx;
    n = (n + sizeof(max_align_t) - 1) / sizeof(max_align_t) * sizeof(max_align_t);
    if (n == 0)
        n = sizeof(max_align_t);
    pp_chunk *c = a->head;
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
    (void)p; /* freed with the pp_arena */
}

static void pp_arena_release(pp_arena *a) {
    while (a->head) {
        pp_chunk *c = a->head;
        a->head = c->next;
        pprofio_free(c);
    }
    a->total = 0;
}

/* ---- ids to objects --------------------------------------------------- */

/* An id index: dense ids (the Go runtime numbers from 1) map through an array. */
typedef struct {
    uint64_t max;
    uint32_t *slot; /* slot[id] = index + 1, 0 = none */
} pp_id_index;

static int pp_index_ids(pp_arena *a, pp_id_index *ix, size_t n, uint64_t (*id_of)(void *, size_t), void *objs) {
    ix->max = 0;
    for (size_t i = 0; i < n; i++) {
        uint64_t id = id_of(objs, i);
        if (id == 0 || id > (uint64_t)n * 4 + 1024)
            return PPROFIO_ERR_FORMAT; /* ids are small and non-zero in any real profile */
        if (id > ix->max)
            ix->max = id;
    }
    ix->slot = pp_arena_alloc(a, (ix->max + 1) * sizeof *ix->slot);
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

static long pp_lookup(const pp_id_index *ix, uint64_t id) {
    if (id == 0 || id > ix->max || ix->slot[id] == 0)
        return -1;
    return (long)ix->slot[id] - 1;
}

static uint64_t pp_loc_id(void *o, size_t i) { return ((PbLocation **)o)[i]->id; }
static uint64_t pp_fn_id(void *o, size_t i) { return ((PbFunction **)o)[i]->id; }
static uint64_t pp_map_id(void *o, size_t i) { return ((PbMapping **)o)[i]->id; }

/* ---- a pp_decoded, checked profile ---------------------------------------- */

typedef struct {
    pp_arena mem;
    PbProfile *p;         /* every field but the samples */
    pprofio_pb_samples s; /* the samples; s.loc holds location indexes once checked */
    uint64_t *fkey;       /* per location, what a frame adds to a key: its address, or 0 and a hash of its lines */
    pp_id_index locs, fns, maps;
    size_t n_values;
    uint32_t cum_mask; /* which values are totals since start */
    uint64_t types_sig;
} pp_decoded;

static uint64_t pp_fnv(const void *p, size_t n, uint64_t h) {
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++)
        h = (h ^ b[i]) * UINT64_C(0x100000001b3);
    return h;
}

#define FNV_INIT UINT64_C(0xcbf29ce484222325)

/* Sums of hostile values wrap instead of overflowing (undefined behaviour). */
static int64_t pp_add64(int64_t a, int64_t b) { return (int64_t)((uint64_t)a + (uint64_t)b); }
static int64_t pp_sub64(int64_t a, int64_t b) { return (int64_t)((uint64_t)a - (uint64_t)b); }

static int pp_str_ok(const PbProfile *p, int64_t i) { return i >= 0 && (size_t)i < p->n_string_table; }

static const char *pp_str(const PbProfile *p, int64_t i) { return pp_str_ok(p, i) ? p->string_table[i] : ""; }

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
static int pp_check_refs(pp_decoded *d) {
    const PbProfile *p = d->p;
    for (size_t i = 0; i < p->n_location; i++) {
        PbLocation *l = p->location[i];
        if (l->mapping_id != 0 && pp_lookup(&d->maps, l->mapping_id) < 0)
            return 0;
        for (size_t k = 0; k < l->n_line; k++)
            if (pp_lookup(&d->fns, l->line[k]->function_id) < 0)
                return 0;
    }
    for (size_t i = 0; i < d->s.n; i++)
        if (d->s.s[i].n_val != d->n_values)
            return 0;
    for (size_t i = 0; i < d->s.n_loc; i++) {
        long ix = pp_lookup(&d->locs, d->s.loc[i]);
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

/* pp_release frees what pp_decode made. */
static void pp_release(pp_decoded *d) {
    pp_arena_release(&d->mem);
    pprofio_pb_samples_free(&d->s);
}

static int pp_frame_keys(pp_decoded *d);

static int pp_decode(const uint8_t *raw, size_t n, pp_decoded *d, pprofio_error *err) {
    memset(d, 0, sizeof *d);
    if (n == 0) /* protobuf-c reads no bytes as a profile with nothing in it */
        return pprofio_set_error(err, PPROFIO_ERR_FORMAT, "pprof: the input is empty (0 bytes)");
    d->mem.limit = n * ARENA_FACTOR + 4 * ARENA_CHUNK;
    int rc = pprofio_pb_split(raw, n, n * ARENA_FACTOR + ARENA_CHUNK, &d->s);
    if (rc == PPROFIO_ERR_NOMEM)
        return pprofio_set_error(err, rc, "pprof: out of memory for the samples");
    ProtobufCAllocator alloc = {pp_arena_alloc, pp_arena_free_one, &d->mem};
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
        const char *t = pp_str(p, p->sample_type[i]->type), *u = pp_str(p, p->sample_type[i]->unit);
        d->types_sig = pp_fnv(u, strlen(u) + 1, pp_fnv(t, strlen(t) + 1, d->types_sig));
        if (pp_is_cumulative(t))
            d->cum_mask |= 1u << i;
    }
    if (pp_frame_keys(d) != PPROFIO_OK)
        return pprofio_set_error(err, PPROFIO_ERR_NOMEM, "pprof: out of memory for the frames' keys");
    return PPROFIO_OK;
}

int pprofio_pprof_check(const uint8_t *raw, size_t n, pprofio_error *err) {
    pp_decoded d;
    int rc = pp_decode(raw, n, &d, err);
    pp_release(&d);
    return rc;
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
static int pp_frame_keys(pp_decoded *d) {
    const PbProfile *p = d->p;
    d->fkey = pp_arena_alloc(&d->mem, (2 * p->n_location + 1) * sizeof *d->fkey);
    if (!d->fkey)
        return PPROFIO_ERR_NOMEM;
    for (size_t i = 0; i < p->n_location; i++) {
        const PbLocation *l = p->location[i];
        uint64_t h = FNV_INIT;
        for (size_t k = 0; l->address == 0 && k < l->n_line; k++) {
            const PbFunction *f = p->function[pp_lookup(&d->fns, l->line[k]->function_id)];
            const char *name = pp_str(p, f->name);
            h = pp_fnv(name, strlen(name) + 1, h);
            h = pp_fnv(&l->line[k]->line, sizeof l->line[k]->line, h);
        }
        d->fkey[2 * i] = l->address;
        d->fkey[2 * i + 1] = h;
    }
    return PPROFIO_OK;
}

/*
 * pp_key_of writes a sample's identity as 64-bit words: for each frame its
 * address (or, without one, its functions' names and lines), then (with
 * labels != 0) its labels, sorted. Returns the word count, or 0 when buf is too small.
 */
static size_t pp_key_of(const pp_decoded *d, const PbSample *s, int labels, uint64_t *buf, size_t cap) {
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
        const char *k = pp_str(p, lb->key), *v = pp_str(p, lb->str);
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

/* ---- pruning and encoding --------------------------------------------- */

/*
 * pp_renumber_strings keeps the strings what is left references,
 * numbered in their old order so that "" stays at 0, and renumbers every
 * reference to them.
 */
static int pp_renumber_strings(pp_decoded *d, const size_t *kept, size_t n_kept) {
    PbProfile *p = d->p;
    int64_t *remap = pp_arena_alloc(&d->mem, (p->n_string_table + 1) * sizeof *remap);
    if (!remap)
        return PPROFIO_ERR_NOMEM;
    for (size_t i = 0; i < p->n_string_table; i++)
        remap[i] = -1;
    for (int pass = 0; pass < 2; pass++) { /* mark, then renumber */
        if (pass == 1) {
            size_t ns = 0;
            for (size_t i = 0; i < p->n_string_table; i++)
                if (remap[i] == 0) {
                    remap[i] = (int64_t)ns;
                    p->string_table[ns++] = p->string_table[i];
                }
            p->n_string_table = ns;
        }
#define STR(f) (pass == 0 ? (void)(remap[(f)] = 0) : (void)((f) = remap[(f)]))
        if (pass == 0)
            remap[0] = 0;
        STR(p->drop_frames), STR(p->keep_frames), STR(p->default_sample_type), STR(p->doc_url);
        for (size_t i = 0; i < p->n_comment; i++)
            STR(p->comment[i]);
        for (size_t i = 0; i < p->n_sample_type; i++)
            STR(p->sample_type[i]->type), STR(p->sample_type[i]->unit);
        if (p->period_type)
            STR(p->period_type->type), STR(p->period_type->unit);
        for (size_t i = 0; i < p->n_mapping; i++)
            STR(p->mapping[i]->filename), STR(p->mapping[i]->build_id);
        for (size_t i = 0; i < p->n_function; i++)
            STR(p->function[i]->name), STR(p->function[i]->system_name), STR(p->function[i]->filename);
        for (size_t i = 0; i < n_kept; i++)
            for (size_t k = 0; k < d->s.s[kept[i]].n_lab; k++) {
                pprofio_pb_label *l = &d->s.lab[d->s.s[kept[i]].lab_off + k];
                STR(l->key), STR(l->str), STR(l->num_unit);
            }
#undef STR
    }
    return PPROFIO_OK;
}

/*
 * pp_prune keeps what the kept samples (indexes into d->s.s) reference,
 * renumbering strings; their location indexes become ids again.
 */
static int pp_prune(pp_decoded *d, const size_t *kept, size_t n_kept) {
    PbProfile *p = d->p;
    pp_arena *a = &d->mem;
    uint8_t *loc_used = pp_arena_alloc(a, p->n_location + 1), *fn_used = pp_arena_alloc(a, p->n_function + 1),
            *map_used = pp_arena_alloc(a, p->n_mapping + 1);
    if (!loc_used || !fn_used || !map_used)
        return PPROFIO_ERR_NOMEM;
    memset(loc_used, 0, p->n_location + 1);
    memset(fn_used, 0, p->n_function + 1);
    memset(map_used, 0, p->n_mapping + 1);
    for (size_t i = 0; i < n_kept; i++) {
        uint32_t *loc = d->s.loc + d->s.s[kept[i]].loc_off;
        for (size_t k = 0; k < d->s.s[kept[i]].n_loc; k++) {
            loc_used[loc[k]] = 1;
            loc[k] = (uint32_t)p->location[loc[k]]->id; /* ids are small: pp_index_ids */
        }
    }
    size_t nl = 0, nf = 0, nm = 0;
    for (size_t i = 0; i < p->n_location; i++) {
        if (!loc_used[i])
            continue;
        PbLocation *l = p->location[i];
        p->location[nl++] = l;
        if (l->mapping_id)
            map_used[pp_lookup(&d->maps, l->mapping_id)] = 1;
        for (size_t k = 0; k < l->n_line; k++)
            fn_used[pp_lookup(&d->fns, l->line[k]->function_id)] = 1;
    }
    for (size_t i = 0; i < p->n_function; i++)
        if (fn_used[i])
            p->function[nf++] = p->function[i];
    for (size_t i = 0; i < p->n_mapping; i++)
        if (map_used[i])
            p->mapping[nm++] = p->mapping[i];
    p->n_location = nl;
    p->n_function = nf;
    p->n_mapping = nm;
    return pp_renumber_strings(d, kept, n_kept);
}

/* pp_encode writes the tables with protobuf-c, then the kept samples. */
static int pp_encode(const pp_decoded *d, const size_t *kept, size_t n_kept, pprofio_bytes *out) {
    size_t n = perftools__profiles__profile__get_packed_size(d->p);
    out->len = 0;
    int rc = pprofio_bytes_grow(out, n + d->s.n_loc * 2 + d->s.n_val * 4 + 1, NULL, NULL);
    if (rc != PPROFIO_OK)
        return rc;
    out->len = perftools__profiles__profile__pack(d->p, out->p);
    for (size_t i = 0; i < n_kept && rc == PPROFIO_OK; i++) {
        const PbSample *s = &d->s.s[kept[i]];
        rc = pprofio_pb_put_sample(out, d->s.loc + s->loc_off, s->n_loc, d->s.val + s->val_off, s->n_val,
                                   d->s.lab + s->lab_off, s->n_lab);
    }
    return rc;
}

/* ---- the delta -------------------------------------------------------- */

#define KEY_WORDS 4096 /* a stack of up to ~2000 frames; the runtime keeps 32-128 */
#define AHEAD 8        /* samples whose table slot is fetched ahead of its lookup */



/*
 * pp_subtract applies old to the current samples and collects those left
 * non-zero. A sample's key is the one pp_baseline_of stored in fresh
 * (entry_of[i]; SIZE_MAX for a sample too deep to key), where the
 * cumulative values of all the samples with that key are summed: the first
 * such sample carries the key's whole difference, the others none (else
 * each would keep its own total and the first one a negative remainder).
 * old is not changed, so a failure later leaves it as it was.
 */
static int pp_subtract(pp_decoded *d, const pprofio_baseline *old, const pprofio_baseline *fresh,
                       const size_t *entry_of, size_t **kept_out, size_t *n_kept) {
    size_t *kept = pp_arena_alloc(&d->mem, (d->s.n + 1) * sizeof *kept);
    uint8_t *done = pp_arena_alloc(&d->mem, fresh->n_entries + 1); /* the key's difference is placed */
    if (!kept || !done)
        return PPROFIO_ERR_NOMEM;
    memset(done, 0, fresh->n_entries + 1);
    size_t nk = 0;
    for (size_t i = 0; i < d->s.n; i++) {
        int64_t *value = d->s.val + d->s.s[i].val_off;
        if (i + AHEAD < d->s.n && entry_of[i + AHEAD] != SIZE_MAX)
            pprofio_baseline_prefetch(old, fresh->entries[entry_of[i + AHEAD]].h1);
        if (entry_of[i] != SIZE_MAX) {
            const pprofio_base_entry *k = &fresh->entries[entry_of[i]];
            const pprofio_base_entry *e = pprofio_baseline_find(old, k->h1, k->h2);
            for (size_t v = 0, c = 0; v < d->n_values; v++)
                if (d->cum_mask & (1u << v)) {
                    value[v] = done[entry_of[i]] ? 0
                                                    : pp_sub64(fresh->vals[k->val_off + c],
                                                               e ? old->vals[e->val_off + c] : 0);
                    c++;
                }
            done[entry_of[i]] = 1;
        }
        int nonzero = 0;
        for (size_t v = 0; v < d->n_values; v++)
            nonzero |= value[v] != 0;
        if (nonzero)
            kept[nk++] = i;
    }
    *kept_out = kept;
    *n_kept = nk;
    return PPROFIO_OK;
}

/* pp_hash_all hashes each sample's key into hs (h1, h2; 0, 0 for a stack too deep to key). */
static void pp_hash_all(const pp_decoded *d, uint64_t *key, uint64_t *hs) {
    for (size_t i = 0; i < d->s.n; i++) {
        size_t n = pp_key_of(d, &d->s.s[i], 1, key, KEY_WORDS);
        hs[2 * i] = hs[2 * i + 1] = 0;
        if (n > 0)
            pprofio_baseline_hash(key, n, &hs[2 * i], &hs[2 * i + 1]);
    }
}

/* pp_baseline_of builds the new baseline from the current samples (before subtraction). */
static int pp_baseline_of(pp_decoded *d, pprofio_baseline **out, uint64_t *key, size_t *entry_of) {
    uint64_t *hs = pp_arena_alloc(&d->mem, (2 * d->s.n + 1) * sizeof *hs);
    pprofio_baseline *b = hs ? pprofio_calloc(1, sizeof *b) : NULL;
    if (!b)
        return PPROFIO_ERR_NOMEM;
    pp_hash_all(d, key, hs);
    b->time_nanos = d->p->time_nanos;
    b->types_sig = d->types_sig;
    b->cum_mask = d->cum_mask;
    b->n_values = d->n_values;
    b->n_cum = (size_t)__builtin_popcount(d->cum_mask);
    if (pprofio_baseline_reserve(b, d->s.n) != PPROFIO_OK) {
        pprofio_baseline_free(b);
        return PPROFIO_ERR_NOMEM;
    }
    for (size_t i = 0; i < d->s.n; i++) {
        if (i + AHEAD < d->s.n)
            pprofio_baseline_prefetch(b, hs[2 * (i + AHEAD)]);
        entry_of[i] = SIZE_MAX;
        if (hs[2 * i] == 0)
            continue; /* a stack too deep to key: never matched, always sent whole */
        if (pprofio_baseline_add(b, hs[2 * i], hs[2 * i + 1], d->s.val + d->s.s[i].val_off, &entry_of[i]) != PPROFIO_OK) {
            pprofio_baseline_free(b);
            return PPROFIO_ERR_NOMEM;
        }
    }
    pprofio_baseline_trim(b);
    *out = b;
    return PPROFIO_OK;
}

/*
 * pp_set_window makes a delta's times those of its window: it starts when
 * the base snapshot was taken and lasts until this one was, so that
 * `go tool pprof` shows the window's duration. Unknown times are left alone.
 */
static void pp_set_window(PbProfile *p, int64_t base_time) {
    if (base_time <= 0 || p->time_nanos < base_time)
        return;
    p->duration_nanos = p->time_nanos - base_time;
    p->time_nanos = base_time;
}

int pprofio_pprof_delta(const uint8_t *raw, size_t n, pprofio_baseline **base, int emit,
                        size_t max_base_bytes, pprofio_bytes *out, int *is_delta, pprofio_error *err) {
    *is_delta = 0;
    out->len = 0;
    pp_decoded d;
    int rc = pp_decode(raw, n, &d, err);
    uint64_t *key = NULL;
    pprofio_baseline *fresh = NULL;
    if (rc != PPROFIO_OK)
        goto done;
    size_t ns = d.s.n;
    key = pprofio_malloc(KEY_WORDS * sizeof *key);
    size_t *entry_of = pp_arena_alloc(&d.mem, (ns + 1) * sizeof *entry_of);
    if (!key || !entry_of) {
        rc = pprofio_set_error(err, PPROFIO_ERR_NOMEM, "pprof: out of memory");
        goto done;
    }
    if ((rc = pp_baseline_of(&d, &fresh, key, entry_of)) != PPROFIO_OK) {
        pprofio_set_error(err, rc, "pprof: out of memory for the baseline");
        goto done;
    }
    pprofio_baseline *old = *base;
    if (emit && old && old->types_sig == d.types_sig && old->cum_mask == d.cum_mask && d.cum_mask != 0) {
        size_t *kept, n_kept;
        rc = pp_subtract(&d, old, fresh, entry_of, &kept, &n_kept);
        if (rc == PPROFIO_OK)
            rc = pp_prune(&d, kept, n_kept);
        if (rc == PPROFIO_OK) {
            pp_set_window(d.p, old->time_nanos);
            rc = pp_encode(&d, kept, n_kept, out);
        }
        if (rc != PPROFIO_OK) {
            pprofio_set_error(err, rc, "pprof: out of memory for the delta");
            goto done;
        }
        *is_delta = 1;
    }
    pprofio_baseline_free(*base);
    *base = pprofio_baseline_bytes(fresh) <= max_base_bytes ? fresh : NULL;
    if (*base != fresh)
        pprofio_baseline_free(fresh);
    fresh = NULL;
done:
    if (rc == PPROFIO_ERR_FORMAT) {
        pprofio_baseline_free(*base);
        *base = NULL;
    }
    pprofio_baseline_free(fresh);
    pprofio_free(key);
    pp_release(&d);
    return rc;
}

/* ---- goroutine stacks ------------------------------------------------- */

static int pp_by_key(const void *x, const void *y) {
    uint64_t a = ((const pprofio_stack_count *)x)->key, b = ((const pprofio_stack_count *)y)->key;
    return a < b ? -1 : a > b;
}

/* pp_describe names up to 3 frames of s outside the runtime, leaf first. */
static void pp_describe(const pp_decoded *d, const PbSample *s, char *out, size_t cap) {
    const PbProfile *p = d->p;
    size_t used = 0, frames = 0;
    out[0] = '\0';
    for (size_t i = 0; i < s->n_loc && frames < 3; i++) {
        const PbLocation *l = p->location[d->s.loc[s->loc_off + i]];
        for (size_t k = 0; k < l->n_line && frames < 3; k++) {
            const char *name = pp_str(p, p->function[pp_lookup(&d->fns, l->line[k]->function_id)]->name);
            if (strncmp(name, "runtime.", 8) == 0 || strncmp(name, "internal/", 9) == 0)
                continue;
            int w = snprintf(out + used, cap - used, "%s%s", frames ? " < " : "", name);
            if (w < 0 || (size_t)w >= cap - used)
                return;
            used += (size_t)w;
            frames++;
        }
    }
    if (frames == 0)
        snprintf(out, cap, "(runtime)");
}

int pprofio_pprof_stacks(const uint8_t *raw, size_t n, pprofio_stack_count **out, size_t *n_out, int64_t *total,
                         pprofio_error *err) {
    *out = NULL;
    *n_out = 0;
    *total = 0;
    pp_decoded d;
    int rc = pp_decode(raw, n, &d, err);
    uint64_t *key = NULL;
    pprofio_stack_count *sc = NULL;
    if (rc != PPROFIO_OK)
        goto done;
    if (d.n_values < 1) {
        rc = pprofio_set_error(err, PPROFIO_ERR_FORMAT, "pprof: a goroutine profile without values");
        goto done;
    }
    key = pprofio_malloc(KEY_WORDS * sizeof *key);
    sc = pprofio_calloc(d.s.n + 1, sizeof *sc);
    if (!key || !sc) {
        rc = pprofio_set_error(err, PPROFIO_ERR_NOMEM, "pprof: out of memory");
        goto done;
    }
    for (size_t i = 0; i < d.s.n; i++) {
        const PbSample *s = &d.s.s[i];
        size_t kn = pp_key_of(&d, s, 0, key, KEY_WORDS); /* the stack alone: labels are merged below */
        uint64_t h1 = 0, h2;
        if (kn)
            pprofio_baseline_hash(key, kn, &h1, &h2);
        sc[i].key = h1;
        sc[i].count = d.s.val[s->val_off];
        *total = pp_add64(*total, sc[i].count);
        pp_describe(&d, s, sc[i].desc, sizeof sc[i].desc);
    }
    qsort(sc, d.s.n, sizeof *sc, pp_by_key);
    size_t m = 0; /* merge samples of the same stack (different labels) */
    for (size_t i = 0; i < d.s.n; i++) {
        if (m > 0 && sc[m - 1].key == sc[i].key)
            sc[m - 1].count = pp_add64(sc[m - 1].count, sc[i].count);
        else
            sc[m++] = sc[i];
    }
    *out = sc;
    *n_out = m;
    sc = NULL;
done:
    pprofio_free(sc);
    pprofio_free(key);
    pp_release(&d);
    return rc;
}
