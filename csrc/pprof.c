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
    if (rc == PPROFIO_OK)
        rc = pprofio_pprofdec_check_samples(&d, err);
    pprofio_pprofdec_release(&d);
    return rc;
}

/*
 * The work of one delta: per sample its values (read, then the delta's)
 * and its entry in the fresh baseline; the samples kept, and the new index
 * of each string.
 */
typedef struct {
    pprofio_pprofdec d;
    int64_t *vals;     /* n_values per sample */
    uint64_t *hs;      /* per sample h1, h2 (0, 0 for a stack too deep to key) */
    uint32_t *entry_of; /* per sample its fresh baseline entry, or NO_ENTRY */
    size_t *kept;
    size_t n_kept;
    int64_t *remap; /* per string, its index in the delta */
} pp_delta;

#define NO_ENTRY UINT32_MAX
#define AHEAD 16 /* samples whose table slot is fetched ahead of its lookup */

/* ---- pruning and encoding --------------------------------------------- */

/*
 * pp_renumber_strings keeps the strings what is left references (the
 * kept samples' labels are marked already), numbered in their old order so
 * that "" stays at 0, and renumbers every reference in the tables.
 */
static void pp_renumber_strings(pp_delta *x) {
    PbProfile *p = x->d.p;
    int64_t *remap = x->remap;
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
#undef STR
    }
}

/*
 * pp_write_kept writes the kept samples, read once more: their location
 * ids as they were, their values the delta's. With renumber == 0 it marks
 * the locations and strings they use (in x->remap and lab_str) and leaves
 * the labels' strings as they were; with 1 it renumbers them (x->remap).
 */
static int pp_write_kept(pp_delta *x, uint8_t *loc_used, uint8_t *lab_str, int renumber, pprofio_bytes *out,
                         pprofio_error *err) {
    pprofio_pprofdec *d = &x->d;
    int rc = PPROFIO_OK;
    for (size_t i = 0; i < x->n_kept && rc == PPROFIO_OK; i++) {
        size_t s = x->kept[i];
        if ((rc = pprofio_pprofdec_sample(d, s, err)) != PPROFIO_OK)
            return rc;
        pprofio_pb_sample *o = &d->one;
        for (size_t k = 0; k < o->n_loc; k++) {
            loc_used[o->loc[k]] = 1;
            o->loc[k] = d->loc_id[o->loc[k]];
        }
        for (size_t k = 0; k < o->n_lab; k++) {
            pprofio_pb_label *l = &o->lab[k];
            if (renumber) {
                l->key = x->remap[l->key], l->str = x->remap[l->str], l->num_unit = x->remap[l->num_unit];
            } else {
                x->remap[l->key] = x->remap[l->str] = x->remap[l->num_unit] = 0;
                lab_str[l->key] = lab_str[l->str] = lab_str[l->num_unit] = 1;
            }
        }
        rc = pprofio_pb_put_sample(out, o->loc, o->n_loc, x->vals + s * d->n_values, d->n_values, o->lab, o->n_lab);
    }
    if (rc != PPROFIO_OK)
        return pprofio_set_error(err, rc, "pprof: out of memory for the delta");
    return PPROFIO_OK;
}

/* pp_prune keeps what the kept samples reference (loc_used, and the strings marked), renumbering strings. */
static void pp_prune(pp_delta *x, const uint8_t *loc_used, uint8_t *fn_used, uint8_t *map_used) {
    pprofio_pprofdec *d = &x->d;
    PbProfile *p = d->p;
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
    pp_renumber_strings(x);
}

/*
 * pp_encode writes the kept samples, then the tables they use (protobuf
 * allows fields in any order), so that the samples are read only once
 * more. Their labels keep their string indexes unless pruning the strings
 * moved one of those: then the samples are written again, renumbered.
 */
static int pp_encode(pp_delta *x, pprofio_bytes *out, pprofio_error *err) {
    pprofio_pprofdec *d = &x->d;
    PbProfile *p = d->p;
    pprofio_pprofdec_arena *a = &d->mem;
    uint8_t *loc_used = pprofio_pprofdec_alloc(a, p->n_location + 1);
    uint8_t *fn_used = pprofio_pprofdec_alloc(a, p->n_function + 1);
    uint8_t *map_used = pprofio_pprofdec_alloc(a, p->n_mapping + 1);
    uint8_t *lab_str = pprofio_pprofdec_alloc(a, d->n_str + 1);
    x->remap = pprofio_pprofdec_alloc(a, (d->n_str + 1) * sizeof *x->remap);
    if (!loc_used || !fn_used || !map_used || !lab_str || !x->remap)
        return pprofio_set_error(err, PPROFIO_ERR_NOMEM, "pprof: out of memory for the delta");
    memset(loc_used, 0, p->n_location + 1);
    memset(fn_used, 0, p->n_function + 1);
    memset(map_used, 0, p->n_mapping + 1);
    memset(lab_str, 0, d->n_str + 1);
    for (size_t i = 0; i < d->n_str; i++)
        x->remap[i] = -1;
    size_t room = 1;
    for (size_t i = 0; i < x->n_kept; i++) /* what a sample's values may grow by, and its tag and length */
        room += d->s.s[x->kept[i]].len + d->n_values * 10 + 16;
    out->len = 0;
    int rc = pprofio_bytes_grow(out, room, NULL, NULL);
    if (rc != PPROFIO_OK)
        return pprofio_set_error(err, rc, "pprof: out of memory for the delta");
    if ((rc = pp_write_kept(x, loc_used, lab_str, 0, out, err)) != PPROFIO_OK)
        return rc;
    pp_prune(x, loc_used, fn_used, map_used);
    for (size_t i = 0; i < d->n_str; i++)
        if (lab_str[i] && x->remap[i] != (int64_t)i) {
            out->len = 0;
            if ((rc = pp_write_kept(x, loc_used, lab_str, 1, out, err)) != PPROFIO_OK)
                return rc;
            break;
        }
    size_t n = perftools__profiles__profile__get_packed_size(p);
    if ((rc = pprofio_bytes_grow(out, n + 1, NULL, NULL)) != PPROFIO_OK)
        return pprofio_set_error(err, rc, "pprof: out of memory for the delta");
    out->len += perftools__profiles__profile__pack(p, out->p + out->len);
    return PPROFIO_OK;
}

/* ---- the delta -------------------------------------------------------- */

/*
 * pp_subtract applies old to the samples' values and collects those left
 * non-zero. A sample's key is the one pp_baseline_of stored in fresh
 * (entry_of[i]), where the cumulative values of all the samples with that
 * key are summed: the first such sample carries the key's whole
 * difference, the others none (else each would keep its own total and the
 * first one a negative remainder). The runtime writes a profile's stacks
 * in the same order each time, so the old entry after the last one matched
 * is tried before the table (whose slots are then not fetched ahead). old
 * is not changed, so a failure later leaves it as it was.
 */
static int pp_subtract(pp_delta *x, const pprofio_baseline *old, const pprofio_baseline *fresh) {
    pprofio_pprofdec *d = &x->d;
    size_t ns = d->s.n, nv = d->n_values;
    x->kept = pprofio_pprofdec_alloc(&d->mem, (ns + 1) * sizeof *x->kept);
    uint8_t *done = pprofio_pprofdec_alloc(&d->mem, fresh->n_entries + 1); /* the key's difference is placed */
    if (!x->kept || !done)
        return PPROFIO_ERR_NOMEM;
    memset(done, 0, fresh->n_entries + 1);
    size_t nk = 0, next = 0; /* the old entry after the last one matched: samples mostly come in the same order */
    int in_step = 0;
    for (size_t i = 0; i < ns; i++) {
        int64_t *value = x->vals + i * nv;
        if (!in_step && i + AHEAD < ns && x->entry_of[i + AHEAD] != NO_ENTRY)
            pprofio_baseline_prefetch(old, x->hs[2 * (i + AHEAD)]);
        uint32_t en = x->entry_of[i];
        if (en != NO_ENTRY) {
            const pprofio_base_entry *k = &fresh->entries[en], *e = NULL;
            in_step = next < old->n_entries && old->entries[next].h1 == k->h1 && old->entries[next].h2 == k->h2;
            e = in_step ? &old->entries[next] : pprofio_baseline_find(old, k->h1, k->h2);
            if (e)
                next = (size_t)(e - old->entries) + 1;
            for (size_t v = 0, c = 0; v < nv; v++)
                if (d->cum_mask & (1u << v)) {
                    value[v] = done[en] ? 0 : pp_sub64(fresh->vals[k->val_off + c], e ? old->vals[e->val_off + c] : 0);
                    c++;
                }
            done[en] = 1;
        }
        int nonzero = 0;
        for (size_t v = 0; v < nv; v++)
            nonzero |= value[v] != 0;
        if (nonzero)
            x->kept[nk++] = i;
    }
    x->n_kept = nk;
    return PPROFIO_OK;
}

/*
 * pp_read_all reads and checks every sample once: its values, and its
 * key's hashes.
 */
static int pp_read_all(pp_delta *x, size_t n, pprofio_error *err) {
    pprofio_pprofdec *d = &x->d;
    size_t ns = d->s.n, nv = d->n_values;
    if (nv && ns > n / nv) /* each value takes a byte at least: so do not make room for more */
        return pprofio_set_error(err, PPROFIO_ERR_FORMAT, "pprof: %zu samples of %zu values cannot fit in %zu bytes",
                                 ns, nv, n);
    x->vals = pprofio_pprofdec_alloc(&d->mem, (ns * nv + 1) * sizeof *x->vals);
    x->hs = pprofio_pprofdec_alloc(&d->mem, (2 * ns + 1) * sizeof *x->hs);
    x->entry_of = pprofio_pprofdec_alloc(&d->mem, (ns + 1) * sizeof *x->entry_of);
    if (!x->vals || !x->hs || !x->entry_of)
        return pprofio_set_error(err, PPROFIO_ERR_NOMEM, "pprof: out of memory for the samples");
    for (size_t i = 0; i < ns; i++) {
        int rc = pprofio_pprofdec_sample(d, i, err);
        if (rc != PPROFIO_OK)
            return rc;
        if (nv)
            memcpy(x->vals + i * nv, d->one.val, nv * sizeof *x->vals);
        pprofio_pprofdec_hash(d, 1, &x->hs[2 * i], &x->hs[2 * i + 1]);
    }
    return PPROFIO_OK;
}

/* pp_baseline_of builds the new baseline from the samples' values (before subtraction). */
static int pp_baseline_of(pp_delta *x, pprofio_baseline **out) {
    pprofio_pprofdec *d = &x->d;
    size_t ns = d->s.n;
    pprofio_baseline *b = pprofio_calloc(1, sizeof *b);
    if (!b)
        return PPROFIO_ERR_NOMEM;
    b->time_nanos = d->p->time_nanos;
    b->types_sig = d->types_sig;
    b->cum_mask = d->cum_mask;
    b->n_values = d->n_values;
    b->n_cum = (size_t)__builtin_popcount(d->cum_mask);
    if (pprofio_baseline_reserve(b, ns) != PPROFIO_OK) {
        pprofio_baseline_free(b);
        return PPROFIO_ERR_NOMEM;
    }
    for (size_t i = 0; i < ns; i++) {
        if (i + AHEAD < ns)
            pprofio_baseline_prefetch(b, x->hs[2 * (i + AHEAD)]);
        x->entry_of[i] = NO_ENTRY;
        if (x->hs[2 * i] == 0)
            continue; /* a stack too deep to key: never matched, always sent whole */
        size_t e;
        if (pprofio_baseline_add(b, x->hs[2 * i], x->hs[2 * i + 1], x->vals + i * d->n_values, &e) != PPROFIO_OK) {
            pprofio_baseline_free(b);
            return PPROFIO_ERR_NOMEM;
        }
        x->entry_of[i] = (uint32_t)e;
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

/* pp_emit writes fresh's snapshot minus old into out. */
static int pp_emit(pp_delta *x, const pprofio_baseline *old, const pprofio_baseline *fresh, pprofio_bytes *out,
                   pprofio_error *err) {
    int rc = pp_subtract(x, old, fresh);
    if (rc != PPROFIO_OK)
        return pprofio_set_error(err, rc, "pprof: out of memory for the delta");
    pp_set_window(x->d.p, old->time_nanos);
    return pp_encode(x, out, err);
}

int pprofio_pprof_delta(const uint8_t *raw, size_t n, pprofio_baseline **base, int emit,
                        size_t max_base_bytes, pprofio_bytes *out, int *is_delta, pprofio_error *err) {
    *is_delta = 0;
    out->len = 0;
    pp_delta x = {0};
    pprofio_baseline *fresh = NULL;
    int rc = pprofio_pprofdec_decode(raw, n, &x.d, err);
    if (rc == PPROFIO_OK)
        rc = pp_read_all(&x, n, err);
    if (rc != PPROFIO_OK)
        goto done;
    if ((rc = pp_baseline_of(&x, &fresh)) != PPROFIO_OK) {
        pprofio_set_error(err, rc, "pprof: out of memory for the baseline");
        goto done;
    }
    pprofio_baseline *old = *base;
    if (emit && old && old->types_sig == x.d.types_sig && old->cum_mask == x.d.cum_mask && x.d.cum_mask != 0) {
        if ((rc = pp_emit(&x, old, fresh, out, err)) != PPROFIO_OK)
            goto done;
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
    if (rc != PPROFIO_OK)
        out->len = 0;
    pprofio_baseline_free(fresh);
    pprofio_pprofdec_release(&x.d);
    return rc;
}

/* ---- goroutine stacks ------------------------------------------------- */

static int pp_by_key(const void *x, const void *y) {
    uint64_t a = ((const pprofio_stack_count *)x)->key, b = ((const pprofio_stack_count *)y)->key;
    return a < b ? -1 : a > b;
}

/* pp_describe names up to 3 frames of the sample read outside the runtime, leaf first. */
static void pp_describe(const pprofio_pprofdec *d, char *out, size_t cap) {
    const PbProfile *p = d->p;
    size_t used = 0, frames = 0;
    out[0] = '\0';
    for (size_t i = 0; i < d->one.n_loc && frames < 3; i++) {
        const PbLocation *l = p->location[d->one.loc[i]];
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
    pprofio_stack_count *sc = NULL;
    if (rc != PPROFIO_OK)
        goto done;
    if (d.n_values < 1) {
        rc = pprofio_set_error(err, PPROFIO_ERR_FORMAT, "pprof: a goroutine profile without values");
        goto done;
    }
    sc = pprofio_calloc(d.s.n + 1, sizeof *sc);
    if (!sc) {
        rc = pprofio_set_error(err, PPROFIO_ERR_NOMEM, "pprof: out of memory");
        goto done;
    }
    for (size_t i = 0; i < d.s.n; i++) {
        if ((rc = pprofio_pprofdec_sample(&d, i, err)) != PPROFIO_OK)
            goto done;
        uint64_t h2;
        pprofio_pprofdec_hash(&d, 0, &sc[i].key, &h2); /* the stack alone: labels are merged below */
        sc[i].count = d.one.val[0];
        *total = pp_add64(*total, sc[i].count);
        pp_describe(&d, sc[i].desc, sizeof sc[i].desc);
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
    if (rc != PPROFIO_OK)
        *total = 0;
    pprofio_free(sc);
    pprofio_pprofdec_release(&d);
    return rc;
}
