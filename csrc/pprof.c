//go:build ignore

/*
 * pprof.c: delta profiles and goroutine stacks on raw pprof protobuf (see
 * pprof.h), over the decoded, checked profile of pprofdec.c.
 */
#include "pprof.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "baseline.h"
#include "errors.h"
#include "pprofdec.h"

/* Sums of hostile values wrap instead of overflowing (undefined behaviour). */
static int64_t pp_add64(int64_t a, int64_t b) { return (int64_t)((uint64_t)a + (uint64_t)b); }
static int64_t pp_sub64(int64_t a, int64_t b) { return (int64_t)((uint64_t)a - (uint64_t)b); }

int pprofio_pprof_check(const uint8_t *raw, size_t n, pprofio_error *err) {
    pprofio_pprofdec d;
    int rc = pprofio_pprofdec_decode(raw, n, &d, err);
    pprofio_pprofdec_release(&d);
    return rc;
}

/* ---- pruning and encoding --------------------------------------------- */

/*
 * pp_renumber_strings keeps the strings what is left references,
 * numbered in their old order so that "" stays at 0, and renumbers every
 * reference to them.
 */
static int pp_renumber_strings(pprofio_pprofdec *d, const size_t *kept, size_t n_kept) {
    PbProfile *p = d->p;
    int64_t *remap = pprofio_pprofdec_alloc(&d->mem, (p->n_string_table + 1) * sizeof *remap);
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
static int pp_prune(pprofio_pprofdec *d, const size_t *kept, size_t n_kept) {
    PbProfile *p = d->p;
    pprofio_pprofdec_arena *a = &d->mem;
    uint8_t *loc_used = pprofio_pprofdec_alloc(a, p->n_location + 1);
    uint8_t *fn_used = pprofio_pprofdec_alloc(a, p->n_function + 1);
    uint8_t *map_used = pprofio_pprofdec_alloc(a, p->n_mapping + 1);
    if (!loc_used || !fn_used || !map_used)
        return PPROFIO_ERR_NOMEM;
    memset(loc_used, 0, p->n_location + 1);
    memset(fn_used, 0, p->n_function + 1);
    memset(map_used, 0, p->n_mapping + 1);
    for (size_t i = 0; i < n_kept; i++) {
        uint32_t *loc = d->s.loc + d->s.s[kept[i]].loc_off;
        for (size_t k = 0; k < d->s.s[kept[i]].n_loc; k++) {
            loc_used[loc[k]] = 1;
            loc[k] = (uint32_t)p->location[loc[k]]->id; /* ids are small: pprofdec.c checks them */
        }
    }
    size_t nl = 0, nf = 0, nm = 0;
    for (size_t i = 0; i < p->n_location; i++) {
        if (!loc_used[i])
            continue;
        PbLocation *l = p->location[i];
        p->location[nl++] = l;
        if (l->mapping_id)
            map_used[pprofio_pprofdec_lookup(&d->maps, l->mapping_id)] = 1;
        for (size_t k = 0; k < l->n_line; k++)
            fn_used[pprofio_pprofdec_lookup(&d->fns, l->line[k]->function_id)] = 1;
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
static int pp_encode(const pprofio_pprofdec *d, const size_t *kept, size_t n_kept, pprofio_bytes *out) {
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
static int pp_subtract(pprofio_pprofdec *d, const pprofio_baseline *old, const pprofio_baseline *fresh,
                       const size_t *entry_of, size_t **kept_out, size_t *n_kept) {
    size_t *kept = pprofio_pprofdec_alloc(&d->mem, (d->s.n + 1) * sizeof *kept);
    uint8_t *done = pprofio_pprofdec_alloc(&d->mem, fresh->n_entries + 1); /* the key's difference is placed */
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
static void pp_hash_all(const pprofio_pprofdec *d, uint64_t *key, uint64_t *hs) {
    for (size_t i = 0; i < d->s.n; i++) {
        size_t n = pprofio_pprofdec_key(d, &d->s.s[i], 1, key, KEY_WORDS);
        hs[2 * i] = hs[2 * i + 1] = 0;
        if (n > 0)
            pprofio_baseline_hash(key, n, &hs[2 * i], &hs[2 * i + 1]);
    }
}

/* pp_baseline_of builds the new baseline from the current samples (before subtraction). */
static int pp_baseline_of(pprofio_pprofdec *d, pprofio_baseline **out, uint64_t *key, size_t *entry_of) {
    uint64_t *hs = pprofio_pprofdec_alloc(&d->mem, (2 * d->s.n + 1) * sizeof *hs);
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
    pprofio_pprofdec d;
    int rc = pprofio_pprofdec_decode(raw, n, &d, err);
    uint64_t *key = NULL;
    pprofio_baseline *fresh = NULL;
    if (rc != PPROFIO_OK)
        goto done;
    size_t ns = d.s.n;
    key = pprofio_malloc(KEY_WORDS * sizeof *key);
    size_t *entry_of = pprofio_pprofdec_alloc(&d.mem, (ns + 1) * sizeof *entry_of);
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
    pprofio_pprofdec_release(&d);
    return rc;
}

/* ---- goroutine stacks ------------------------------------------------- */

static int pp_by_key(const void *x, const void *y) {
    uint64_t a = ((const pprofio_stack_count *)x)->key, b = ((const pprofio_stack_count *)y)->key;
    return a < b ? -1 : a > b;
}

/* pp_describe names up to 3 frames of s outside the runtime, leaf first. */
static void pp_describe(const pprofio_pprofdec *d, const PbSample *s, char *out, size_t cap) {
    const PbProfile *p = d->p;
    size_t used = 0, frames = 0;
    out[0] = '\0';
    for (size_t i = 0; i < s->n_loc && frames < 3; i++) {
        const PbLocation *l = p->location[d->s.loc[s->loc_off + i]];
        for (size_t k = 0; k < l->n_line && frames < 3; k++) {
            const PbFunction *f = p->function[pprofio_pprofdec_lookup(&d->fns, l->line[k]->function_id)];
            const char *name = pprofio_pprofdec_str(p, f->name);
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
    pprofio_pprofdec d;
    int rc = pprofio_pprofdec_decode(raw, n, &d, err);
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
        size_t kn = pprofio_pprofdec_key(&d, s, 0, key, KEY_WORDS); /* the stack alone: labels are merged below */
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
    pprofio_pprofdec_release(&d);
    return rc;
}
