//go:build ignore

/* spans.c: the span recorder (see spans.h). */
#include "spans.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "errors.h"

/*
 * A generation is the cycle in progress: the public cycle first (so that a
 * taken cycle can be freed as its generation), then the lookup tables.
 */
typedef struct {
    pprofio_spans_cycle c;
    size_t series_cap, stacks_cap;
    uint32_t *series_slots; /* open addressing: series index + 1, 0 empty */
    size_t series_slots_n;  /* a power of two */
    uint32_t *stack_slots;
    size_t stack_slots_n;
    pprofio_spans_sample *reservoir;
    size_t n_reservoir;
    uint64_t seen; /* spans offered to the reservoir */
    pprofio_spans_series overflow;
} gen;

struct pprofio_spans {
    pthread_mutex_t mu;
    pprofio_spans_config cfg;
    uint64_t rng;
    gen *cur;
    pprofio_spans_stats tot;
};

#define OVERFLOW_INDEX UINT32_MAX

static uint64_t mix64(uint64_t z) {
    z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
    return z ^ (z >> 31);
}

static uint64_t next_rand(uint64_t *state) { return mix64(*state += UINT64_C(0x9E3779B97F4A7C15)); }

/* hash_bytes mixes n bytes into h eight at a time. */
static uint64_t hash_bytes(uint64_t h, const void *p, size_t n) {
    const unsigned char *b = p;
    for (; n >= 8; b += 8, n -= 8) {
        uint64_t w;
        memcpy(&w, b, 8);
        h = (h ^ w) * UINT64_C(0x9E3779B97F4A7C15);
        h ^= h >> 29;
    }
    uint64_t w = 0;
    memcpy(&w, b, n);
    return (h ^ w ^ ((uint64_t)n << 56)) * UINT64_C(0xBF58476D1CE4E5B9);
}

/* ---- generations ----------------------------------------------------------- */

static void gen_free(gen *g) {
    if (!g)
        return;
    for (size_t i = 0; i < g->c.n_series; i++) {
        if (!g->c.series[i].overflow)
            pprofio_free(g->c.series[i].name);
        pprofio_hist_free(&g->c.series[i].hist);
    }
    for (size_t i = 0; i < g->c.n_stacks; i++)
        pprofio_free(g->c.stacks[i].pcs);
    pprofio_free(g->c.series);
    pprofio_free(g->c.stacks);
    pprofio_free(g->c.samples);
    pprofio_free(g->series_slots);
    pprofio_free(g->stack_slots);
    pprofio_free(g->reservoir);
    pprofio_hist_free(&g->overflow.hist);
    pprofio_free(g);
}

#define FIRST_SERIES 16 /* series slots made with a generation: one is always spare for the overflow */

static size_t gen_base_bytes(const pprofio_spans_config *cfg) {
    return sizeof(gen) + cfg->max_samples * sizeof(pprofio_spans_sample) +
           PPROFIO_HIST_BUCKETS * sizeof(uint32_t) + FIRST_SERIES * sizeof(pprofio_spans_series);
}

/* gen_new makes an empty generation: the reservoir and the overflow series. */
static gen *gen_new(const pprofio_spans_config *cfg) {
    gen *g = pprofio_calloc(1, sizeof *g);
    if (!g)
        return NULL;
    g->reservoir = pprofio_calloc(cfg->max_samples, sizeof *g->reservoir);
    g->c.series = pprofio_calloc(FIRST_SERIES, sizeof *g->c.series);
    g->series_cap = FIRST_SERIES;
    if (!g->reservoir || !g->c.series || pprofio_hist_reserve_all(&g->overflow.hist) != PPROFIO_OK) {
        gen_free(g);
        return NULL;
    }
    g->overflow.overflow = 1;
    g->overflow.name = (char *)"";
    g->c.bytes = (int64_t)gen_base_bytes(cfg);
    return g;
}

static int fits(const pprofio_spans *s, const gen *g, size_t more) {
    return g->c.bytes + (int64_t)more <= s->cfg.max_bytes;
}

static void charge(pprofio_spans *s, gen *g, int64_t n) {
    g->c.bytes += n;
    if (g->c.bytes > s->tot.bytes_peak)
        s->tot.bytes_peak = g->c.bytes;
}

/*
 * grow_slots doubles a hash table of indices (want: at least twice n) and
 * re-inserts entries 0..n-1 by their hash. 0 on success.
 */
static int grow_slots(pprofio_spans *s, gen *g, uint32_t **slots, size_t *size, size_t n,
                      uint64_t (*hash_of)(const gen *, size_t)) {
    if ((n + 1) * 2 <= *size)
        return 0;
    size_t ns = *size ? *size * 2 : 64;
    size_t bytes = ns * sizeof(uint32_t), old = *size * sizeof(uint32_t);
    if (!fits(s, g, bytes - old))
        return -1;
    uint32_t *t = pprofio_calloc(ns, sizeof *t);
    if (!t)
        return -1;
    for (size_t i = 0; i < n; i++) {
        size_t j = hash_of(g, i) & (ns - 1);
        while (t[j])
            j = (j + 1) & (ns - 1);
        t[j] = (uint32_t)i + 1;
    }
    pprofio_free(*slots);
    *slots = t;
    *size = ns;
    charge(s, g, (int64_t)(bytes - old));
    return 0;
}

/* grow_array makes room for one more element (and a spare) in *arr. 0 on success. */
static int grow_array(pprofio_spans *s, gen *g, void **arr, size_t *cap, size_t n, size_t elem) {
    if (n + 2 <= *cap)
        return 0;
    size_t nc = *cap ? *cap * 2 : 16;
    if (!fits(s, g, (nc - *cap) * elem))
        return -1;
    void *p = pprofio_realloc(*arr, nc * elem);
    if (!p)
        return -1;
    memset((char *)p + *cap * elem, 0, (nc - *cap) * elem);
    charge(s, g, (int64_t)((nc - *cap) * elem));
    *arr = p;
    *cap = nc;
    return 0;
}

/* ---- series ------------------------------------------------------------------ */

static uint64_t series_hash(const gen *g, size_t i) { return g->c.series[i].hash; }

static uint64_t key_hash(const char *name, size_t nl, const char *tags, size_t tl) {
    uint64_t h = hash_bytes(UINT64_C(0xcbf29ce484222325), name, nl);
    h = hash_bytes(h ^ 0xff, tags, tl);
    return mix64(h);
}

/* find_series returns the series of (name, tags), or OVERFLOW_INDEX when there is none. */
static uint32_t find_series(const gen *g, uint64_t h, const char *name, size_t nl, const char *tags,
                            size_t tl) {
    if (!g->series_slots_n)
        return OVERFLOW_INDEX;
    size_t mask = g->series_slots_n - 1;
    for (size_t j = h & mask;; j = (j + 1) & mask) {
        uint32_t v = g->series_slots[j];
        if (!v)
            return OVERFLOW_INDEX;
        const pprofio_spans_series *sr = &g->c.series[v - 1];
        if (sr->hash == h && sr->name_len == nl && sr->tags_len == tl && !memcmp(sr->name, name, nl) &&
            !memcmp(sr->tags, tags, tl))
            return v - 1;
    }
}

/*
 * add_series makes a new series for (name, tags) holding its first value v,
 * or returns OVERFLOW_INDEX when the cardinality or memory bound, or an
 * allocation, says no.
 */
static uint32_t add_series(pprofio_spans *s, gen *g, uint64_t h, const char *name, size_t nl,
                           const char *tags, size_t tl, int64_t v) {
    if (g->c.n_series >= s->cfg.max_series)
        return OVERFLOW_INDEX;
    size_t key = nl + 1 + tl;
    pprofio_hist hist = {0};
    if (!fits(s, g, key + pprofio_hist_grow_bytes(&hist, (uint64_t)v) + sizeof(pprofio_spans_series)))
        return OVERFLOW_INDEX;
    if (grow_array(s, g, (void **)&g->c.series, &g->series_cap, g->c.n_series, sizeof *g->c.series) ||
        grow_slots(s, g, &g->series_slots, &g->series_slots_n, g->c.n_series, series_hash))
        return OVERFLOW_INDEX;
    char *k = pprofio_malloc(key);
    if (!k || pprofio_hist_add(&hist, (uint64_t)v) != PPROFIO_OK) {
        pprofio_free(k);
        return OVERFLOW_INDEX;
    }
    memcpy(k, name, nl);
    k[nl] = '\0';
    if (tl)
        memcpy(k + nl + 1, tags, tl);
    uint32_t idx = (uint32_t)g->c.n_series;
    g->c.series[idx] = (pprofio_spans_series){.name = k, .tags = k + nl + 1, .name_len = (uint32_t)nl,
                                              .tags_len = (uint32_t)tl, .hash = h, .count = 1,
                                              .total_ns = v, .min_ns = v, .max_ns = v, .hist = hist};
    size_t slot = h & (g->series_slots_n - 1);
    while (g->series_slots[slot])
        slot = (slot + 1) & (g->series_slots_n - 1);
    g->series_slots[slot] = idx + 1;
    g->c.n_series++;
    charge(s, g, (int64_t)(key + pprofio_hist_bytes(&hist)));
    return idx;
}

/* add_value counts v in sr; -1 when its histogram could not grow. */
static int add_value(pprofio_spans *s, gen *g, pprofio_spans_series *sr, int64_t v) {
    size_t more = pprofio_hist_grow_bytes(&sr->hist, (uint64_t)v);
    if (more && !fits(s, g, more))
        return -1;
    if (pprofio_hist_add(&sr->hist, (uint64_t)v) != PPROFIO_OK)
        return -1;
    charge(s, g, (int64_t)more);
    if (sr->count == 0 || v < sr->min_ns)
        sr->min_ns = v;
    if (sr->count == 0 || v > sr->max_ns)
        sr->max_ns = v;
    sr->count++;
    sr->total_ns += v;
    return 0;
}

/* ---- timeline and stacks --------------------------------------------------- */

static void sample(pprofio_spans *s, gen *g, uint32_t idx, const pprofio_span *sp, int64_t dur) {
    pprofio_spans_series *sr = &g->c.series[idx];
    if (sr->count == 1 || dur > sr->slow_dur) {
        sr->slow_dur = dur;
        sr->slow_start = sp->start_ns;
        sr->slow_id = sp->span_id;
        sr->slow_parent = sp->parent_id;
    }
    pprofio_spans_sample smp = {.series = idx, .start_ns = sp->start_ns, .dur_ns = dur,
                                .span_id = sp->span_id, .parent_id = sp->parent_id, .uniform = 1};
    g->seen++;
    if (g->n_reservoir < s->cfg.max_samples) {
        g->reservoir[g->n_reservoir++] = smp;
        return;
    }
    uint64_t j = (uint64_t)(((unsigned __int128)next_rand(&s->rng) * g->seen) >> 64); /* uniform in [0, seen) */
    if (j < s->cfg.max_samples)
        g->reservoir[j] = smp;
}

static uint64_t stack_hash(const gen *g, size_t i) { return g->c.stacks[i].hash; }

static void add_stack(pprofio_spans *s, gen *g, uint32_t idx, const uint64_t *pcs, size_t n, int64_t dur) {
    uint64_t h = mix64(hash_bytes(mix64(idx + 1), pcs, n * sizeof *pcs));
    size_t mask = g->stack_slots_n - 1, j = h & mask;
    for (; g->stack_slots_n && g->stack_slots[j]; j = (j + 1) & mask) {
        pprofio_spans_stack *st = &g->c.stacks[g->stack_slots[j] - 1];
        if (st->hash == h && st->series == idx && st->n_pcs == n && !memcmp(st->pcs, pcs, n * sizeof *pcs)) {
            st->count++;
            st->total_ns += dur;
            return;
        }
    }
    size_t bytes = n * sizeof *pcs;
    uint64_t *copy = NULL;
    if (g->c.n_stacks >= s->cfg.max_stacks || !fits(s, g, bytes + sizeof(pprofio_spans_stack)) ||
        grow_array(s, g, (void **)&g->c.stacks, &g->stacks_cap, g->c.n_stacks, sizeof *g->c.stacks) ||
        grow_slots(s, g, &g->stack_slots, &g->stack_slots_n, g->c.n_stacks, stack_hash) ||
        !(copy = pprofio_malloc(bytes))) {
        g->c.stacks_dropped++;
        return;
    }
    memcpy(copy, pcs, bytes);
    pprofio_spans_stack *st = &g->c.stacks[g->c.n_stacks];
    *st = (pprofio_spans_stack){.series = idx, .n_pcs = (uint32_t)n, .pcs = copy, .hash = h,
                                .count = 1, .total_ns = dur};
    mask = g->stack_slots_n - 1;
    for (j = h & mask; g->stack_slots[j]; j = (j + 1) & mask) {
    }
    g->stack_slots[j] = (uint32_t)g->c.n_stacks + 1;
    g->c.n_stacks++;
    charge(s, g, (int64_t)bytes);
}

/* ---- recording ---------------------------------------------------------------- */

/* cut_tags is the length of the longest prefix of whole "k\0v\0" pairs within the limit. */
static size_t cut_tags(const char *tags, size_t n) {
    size_t whole = 0, nuls = 0, at = 0;
    if (n > PPROFIO_SPANS_MAX_TAGS)
        n = PPROFIO_SPANS_MAX_TAGS;
    const char *z;
    while (at < n && (z = memchr(tags + at, '\0', n - at)) != NULL) {
        at = (size_t)(z - tags) + 1;
        if (++nuls % 2 == 0)
            whole = at;
    }
    return whole;
}

static void record_locked(pprofio_spans *s, const pprofio_span *sp) {
    gen *g = s->cur;
    int64_t dur = sp->dur_ns > 0 ? sp->dur_ns : 0;
    size_t nl = sp->name_len < PPROFIO_SPANS_MAX_NAME ? sp->name_len : PPROFIO_SPANS_MAX_NAME;
    size_t tl = sp->tags ? cut_tags(sp->tags, sp->tags_len) : 0;
    const char *name = nl ? sp->name : "", *tags = tl ? sp->tags : "";
    g->c.recorded++;
    s->tot.recorded++;
    uint64_t h = key_hash(name, nl, tags, tl);
    uint32_t idx = find_series(g, h, name, nl, tags, tl);
    int counted = 0;
    if (idx == OVERFLOW_INDEX) {
        idx = add_series(s, g, h, name, nl, tags, tl, dur);
        counted = idx != OVERFLOW_INDEX;
    }
    if (idx != OVERFLOW_INDEX && !counted && add_value(s, g, &g->c.series[idx], dur) != 0)
        idx = OVERFLOW_INDEX;
    if (idx == OVERFLOW_INDEX) {
        add_value(s, g, &g->overflow, dur); /* its histogram holds the whole range */
        g->c.overflowed++;
        s->tot.overflowed++;
        if (sp->pcs && sp->n_pcs)
            g->c.stacks_dropped++;
        return;
    }
    sample(s, g, idx, sp, dur);
    if (sp->pcs && sp->n_pcs)
        add_stack(s, g, idx, sp->pcs, sp->n_pcs < PPROFIO_SPANS_MAX_PCS ? sp->n_pcs : PPROFIO_SPANS_MAX_PCS,
                  dur);
}

void pprofio_spans_record(pprofio_spans *s, const pprofio_span *span) {
    pthread_mutex_lock(&s->mu);
    record_locked(s, span);
    pthread_mutex_unlock(&s->mu);
}

/* parse_record reads the record at p (left bytes); its length, or 0 when malformed. */
static size_t parse_record(const unsigned char *p, size_t left, pprofio_span *sp, uint64_t *pcs) {
    uint32_t rec_len, n_pcs, zero;
    uint16_t nl, tl;
    if (left < PPROFIO_SPANS_REC_HEADER)
        return 0;
    memcpy(&rec_len, p, 4);
    memcpy(&nl, p + 4, 2);
    memcpy(&tl, p + 6, 2);
    memcpy(&n_pcs, p + 8, 4);
    memcpy(&zero, p + 12, 4);
    size_t text = (PPROFIO_SPANS_REC_HEADER + (size_t)nl + tl + 7) & ~(size_t)7;
    if (zero || rec_len % 8 || rec_len > left || rec_len != text + (size_t)n_pcs * 8)
        return 0;
    *sp = (pprofio_span){.name = (const char *)p + PPROFIO_SPANS_REC_HEADER, .name_len = nl,
                         .tags = (const char *)p + PPROFIO_SPANS_REC_HEADER + nl, .tags_len = tl};
    memcpy(&sp->start_ns, p + 16, 8);
    memcpy(&sp->dur_ns, p + 24, 8);
    memcpy(&sp->span_id, p + 32, 8);
    memcpy(&sp->parent_id, p + 40, 8);
    size_t keep = n_pcs < PPROFIO_SPANS_MAX_PCS ? n_pcs : PPROFIO_SPANS_MAX_PCS;
    memcpy(pcs, p + text, keep * 8); /* the block need not be 8-byte aligned */
    sp->pcs = keep ? pcs : NULL;
    sp->n_pcs = keep;
    return rec_len;
}

int pprofio_spans_record_block(pprofio_spans *s, const void *block, size_t len) {
    const unsigned char *p = block;
    uint64_t pcs[PPROFIO_SPANS_MAX_PCS];
    int rc = PPROFIO_OK;
    pthread_mutex_lock(&s->mu);
    for (size_t off = 0; off < len;) {
        pprofio_span sp;
        size_t n = parse_record(p + off, len - off, &sp, pcs);
        if (!n) {
            s->cur->c.dropped++;
            s->tot.dropped++;
            rc = PPROFIO_ERR_FORMAT;
            break;
        }
        record_locked(s, &sp);
        off += n;
    }
    pthread_mutex_unlock(&s->mu);
    return rc;
}

/* ---- taking a cycle ------------------------------------------------------------ */

static int cmp_sample(const void *pa, const void *pb) {
    const pprofio_spans_sample *a = pa, *b = pb;
    if (a->series != b->series)
        return a->series < b->series ? -1 : 1;
    if (a->start_ns != b->start_ns)
        return a->start_ns < b->start_ns ? -1 : 1;
    return (a->span_id > b->span_id) - (a->span_id < b->span_id);
}

/*
 * finish turns a generation into its cycle: the overflow series goes last,
 * and the timeline is the slowest span of each series (samples[i] for series
 * i) plus the reservoir, each span once. smp has room for both.
 */
static void finish(gen *g, pprofio_spans_sample *smp) {
    size_t n = 0;
    for (size_t i = 0; i < g->c.n_series; i++) {
        const pprofio_spans_series *sr = &g->c.series[i];
        smp[n++] = (pprofio_spans_sample){.series = (uint32_t)i, .slowest = 1, .start_ns = sr->slow_start,
                                          .dur_ns = sr->slow_dur, .span_id = sr->slow_id,
                                          .parent_id = sr->slow_parent};
    }
    for (size_t i = 0; i < g->n_reservoir; i++) {
        const pprofio_spans_sample *r = &g->reservoir[i];
        pprofio_spans_sample *slow = &smp[r->series];
        if (slow->span_id == r->span_id && slow->start_ns == r->start_ns && slow->dur_ns == r->dur_ns)
            slow->uniform = 1;
        else
            smp[n++] = *r;
    }
    qsort(smp, n, sizeof *smp, cmp_sample);
    g->c.samples = smp;
    g->c.n_samples = n;
    g->c.unsampled = g->c.recorded - n;
    if (g->overflow.count) {
        g->c.series[g->c.n_series++] = g->overflow; /* there is always a spare slot */
        g->overflow = (pprofio_spans_series){0};
    }
}

int pprofio_spans_take(pprofio_spans *s, pprofio_spans_cycle **out) {
    *out = NULL;
    gen *ng = gen_new(&s->cfg);
    if (!ng)
        return PPROFIO_ERR_NOMEM;
    pthread_mutex_lock(&s->mu);
    gen *g = s->cur;
    size_t cap = g->c.n_series + g->n_reservoir;
    pprofio_spans_sample *smp = pprofio_calloc(cap ? cap : 1, sizeof *smp);
    if (!smp) {
        pthread_mutex_unlock(&s->mu);
        gen_free(ng);
        return PPROFIO_ERR_NOMEM;
    }
    s->cur = ng;
    finish(g, smp);
    g->c.bytes += (int64_t)(cap * sizeof *smp);
    s->tot.sampled += g->c.n_samples;
    pthread_mutex_unlock(&s->mu);
    *out = &g->c;
    return PPROFIO_OK;
}

void pprofio_spans_cycle_free(pprofio_spans_cycle *c) { gen_free((gen *)c); }

/* ---- the recorder ------------------------------------------------------------ */

static int check_config(pprofio_spans_config *c, pprofio_error *err) {
    if (!c->max_bytes)
        c->max_bytes = PPROFIO_SPANS_DEFAULT_BYTES;
    if (!c->max_series)
        c->max_series = PPROFIO_SPANS_DEFAULT_SERIES;
    if (!c->max_samples)
        c->max_samples = PPROFIO_SPANS_DEFAULT_SAMPLES;
    if (!c->max_stacks)
        c->max_stacks = PPROFIO_SPANS_DEFAULT_STACKS;
    if (c->max_bytes < PPROFIO_SPANS_MIN_BYTES)
        return pprofio_set_error(err, PPROFIO_ERR_INVALID, "spans: max_bytes %lld is under the minimum of %lld",
                                 (long long)c->max_bytes, (long long)PPROFIO_SPANS_MIN_BYTES);
    if (c->max_series > (1u << 24) || c->max_stacks > (1u << 24) || c->max_samples > (1u << 20))
        return pprofio_set_error(err, PPROFIO_ERR_INVALID, "spans: max_series, max_stacks or max_samples too large");
    if ((int64_t)gen_base_bytes(c) * 2 > c->max_bytes)
        return pprofio_set_error(err, PPROFIO_ERR_INVALID,
                                 "spans: max_bytes %lld leaves no room: %u samples need %zu bytes",
                                 (long long)c->max_bytes, c->max_samples, gen_base_bytes(c));
    return PPROFIO_OK;
}

int pprofio_spans_new(const pprofio_spans_config *cfg, pprofio_spans **out, pprofio_error *err) {
    *out = NULL;
    pprofio_spans_config c = cfg ? *cfg : (pprofio_spans_config){0};
    int rc = check_config(&c, err);
    if (rc != PPROFIO_OK)
        return rc;
    pprofio_spans *s = pprofio_calloc(1, sizeof *s);
    if (!s)
        return pprofio_set_error(err, PPROFIO_ERR_NOMEM, "spans: out of memory");
    s->cfg = c;
    s->rng = c.seed;
    s->cur = gen_new(&c);
    if (!s->cur || pthread_mutex_init(&s->mu, NULL) != 0) {
        gen_free(s->cur);
        pprofio_free(s);
        return pprofio_set_error(err, PPROFIO_ERR_NOMEM, "spans: out of memory");
    }
    s->tot.bytes_peak = s->cur->c.bytes;
    *out = s;
    return PPROFIO_OK;
}

void pprofio_spans_free(pprofio_spans *s) {
    if (!s)
        return;
    gen_free(s->cur);
    pthread_mutex_destroy(&s->mu);
    pprofio_free(s);
}

void pprofio_spans_stats_get(pprofio_spans *s, pprofio_spans_stats *out) {
    pthread_mutex_lock(&s->mu);
    *out = s->tot;
    out->bytes = s->cur->c.bytes;
    pthread_mutex_unlock(&s->mu);
}

int64_t pprofio_spans_quantile(const pprofio_spans_series *sr, double q) {
    if (!sr->count)
        return 0;
    int64_t v = (int64_t)pprofio_hist_quantile(&sr->hist, q);
    if (v < sr->min_ns)
        v = sr->min_ns;
    if (v > sr->max_ns)
        v = sr->max_ns;
    return v;
}
