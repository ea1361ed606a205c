/*
 * test_spans.c: the span recorder (csrc/spans.h) and its latency histogram
 * (csrc/hist.h), fed made-up spans with known durations.
 *
 * Timings per name and tag set are exact (count, total, min, max) and the
 * quantiles are within the histogram's stated error of the exact ones on
 * known distributions. Cardinality and memory are bounded, and what does
 * not fit is aggregated in the overflow series and counted. The timeline
 * holds the slowest span of each series plus a bounded uniform sample, and
 * every span not in it is counted. Blocks in the Go side's layout are
 * decoded, and a malformed one is refused and counted. Every allocation can
 * fail without a crash, a leak or a lost count.
 */
#include <pthread.h>

#include "../../csrc/hist.h"
#include "../../csrc/spans.h"
#include "helpers.h"

TestSuite(spans, .timeout = 60);

#define T0 (INT64_C(1795988477) * SEC)
#define MAX_RUNS 4000

/* ---- helpers ------------------------------------------------------------------- */

static pprofio_spans *recorder(int64_t max_bytes, uint32_t series, uint32_t samples, uint32_t stacks) {
    pprofio_spans_config cfg = {.max_bytes = max_bytes, .max_series = series, .max_samples = samples,
                                .max_stacks = stacks, .seed = 42};
    pprofio_spans *s = NULL;
    pprofio_error err = {0};
    int rc = pprofio_spans_new(&cfg, &s, &err);
    cr_assert_eq(rc, PPROFIO_OK, "pprofio_spans_new: %s", err.msg);
    return s;
}

static void record(pprofio_spans *s, const char *name, const char *tags, size_t tags_len, int64_t start,
                   int64_t dur, uint64_t id) {
    pprofio_span sp = {.name = name, .name_len = strlen(name), .tags = tags, .tags_len = tags_len,
                       .start_ns = start, .dur_ns = dur, .span_id = id, .parent_id = id / 2};
    pprofio_spans_record(s, &sp);
}

static pprofio_spans_cycle *take(pprofio_spans *s) {
    pprofio_spans_cycle *c = NULL;
    assert_status(pprofio_spans_take(s, &c), PPROFIO_OK);
    cr_assert(c);
    return c;
}

static const pprofio_spans_series *series_named(const pprofio_spans_cycle *c, const char *name,
                                                const char *tags, size_t tags_len) {
    for (size_t i = 0; i < c->n_series; i++) {
        const pprofio_spans_series *sr = &c->series[i];
        if (!sr->overflow && !strcmp(sr->name, name) && sr->tags_len == tags_len &&
            !memcmp(sr->tags, tags, tags_len))
            return sr;
    }
    cr_assert_fail("no series %s in the cycle", name);
    return NULL;
}

static const pprofio_spans_series *overflow_of(const pprofio_spans_cycle *c) {
    for (size_t i = 0; i < c->n_series; i++)
        if (c->series[i].overflow)
            return &c->series[i];
    return NULL;
}

static int cmp_i64(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* exact_quantile is the nearest-rank q-quantile of sorted v[0:n]. */
static int64_t exact_quantile(const int64_t *v, size_t n, double q) {
    double r = q * (double)n;
    size_t rank = (size_t)r;
    if ((double)rank < r)
        rank++;
    if (rank == 0)
        rank = 1;
    return v[rank - 1];
}

static void expect_within_error(int64_t got, int64_t want, const char *what) {
    double d = (double)got - (double)want;
    double err = want ? (d < 0 ? -d : d) / (double)want : (d != 0);
    cr_assert(err <= PPROFIO_HIST_REL_ERROR + 1e-12, "%s: %lld, exact %lld: off by %.4f%%, stated error %.4f%%",
              what, (long long)got, (long long)want, err * 100, PPROFIO_HIST_REL_ERROR * 100);
}

/* ---- the histogram ------------------------------------------------------------- */

LTest(spans, every_value_falls_in_its_bucket_and_a_bucket_is_at_most_a_sixteenth_of_its_lower_bound) {
    uint64_t seed = 7;
    for (int i = 0; i < 200000; i++) {
        uint64_t v = i < 4096 ? (uint64_t)i : splitmix64(&seed) >> (splitmix64(&seed) % 64);
        uint32_t idx = pprofio_hist_index(v);
        cr_assert_lt(idx, PPROFIO_HIST_BUCKETS);
        uint64_t lo = pprofio_hist_lower(idx), w = pprofio_hist_width(idx);
        cr_assert(v >= lo && v - lo < w, "%llu is not in bucket %u [%llu, +%llu)", (unsigned long long)v, idx,
                  (unsigned long long)lo, (unsigned long long)w);
        cr_assert(w == 1 || w * PPROFIO_HIST_SUB <= lo, "bucket %u: width %llu, lower %llu", idx,
                  (unsigned long long)w, (unsigned long long)lo);
    }
    assert_i64(pprofio_hist_index(UINT64_MAX), PPROFIO_HIST_BUCKETS - 1);
}

static void check_quantiles(const char *what, int64_t *v, size_t n) {
    pprofio_hist h = {0};
    for (size_t i = 0; i < n; i++)
        cr_assert_eq(pprofio_hist_add(&h, (uint64_t)v[i]), PPROFIO_OK);
    qsort(v, n, sizeof *v, cmp_i64);
    const double qs[] = {0, 0.01, 0.25, 0.5, 0.9, 0.99, 0.999, 1};
    char label[128];
    for (size_t i = 0; i < sizeof qs / sizeof qs[0]; i++) {
        snprintf(label, sizeof label, "%s q=%.3f", what, qs[i]);
        expect_within_error((int64_t)pprofio_hist_quantile(&h, qs[i]), exact_quantile(v, n, qs[i]), label);
    }
    assert_i64(h.total, n);
    pprofio_hist_free(&h);
}

LTest(spans, quantiles_are_within_the_stated_error_on_known_distributions) {
    enum { N = 100000 };
    int64_t *v = malloc(N * sizeof *v);
    uint64_t seed = 1;
    for (size_t i = 0; i < N; i++) /* uniform 1 µs .. 100 ms */
        v[i] = 1000 + (int64_t)(splitmix64(&seed) % (100 * MS));
    check_quantiles("uniform", v, N);
    for (size_t i = 0; i < N; i++) { /* log-uniform, 1 µs .. 1 s: as many per power of two */
        int e = 10 + (int)(splitmix64(&seed) % 20);
        v[i] = (INT64_C(1) << e) + (int64_t)(splitmix64(&seed) % (UINT64_C(1) << e));
    }
    check_quantiles("log-uniform", v, N);
    for (size_t i = 0; i < N; i++) /* bimodal: 90% near 50 µs, 10% near 800 ms */
        v[i] = i % 10 ? 50000 + (int64_t)(splitmix64(&seed) % 5000) : 800 * MS + (int64_t)(splitmix64(&seed) % MS);
    check_quantiles("bimodal", v, N);
    for (size_t i = 0; i < N; i++) /* tiny values are exact */
        v[i] = (int64_t)(i % 40);
    check_quantiles("tiny", v, N);
    free(v);
}

LTest(spans, a_histogram_holds_only_the_powers_of_two_it_has_seen) {
    pprofio_hist h = {0};
    assert_i64(pprofio_hist_quantile(&h, 0.5), 0);
    cr_assert_eq(pprofio_hist_add(&h, 1500000), PPROFIO_OK); /* 1.5 ms */
    assert_i64(pprofio_hist_bytes(&h), PPROFIO_HIST_SUB * sizeof(uint32_t));
    cr_assert_eq(pprofio_hist_add(&h, 90000000), PPROFIO_OK); /* 90 ms: 6 powers of two up */
    assert_i64(pprofio_hist_bytes(&h), 7 * PPROFIO_HIST_SUB * sizeof(uint32_t));
    assert_i64(pprofio_hist_grow_bytes(&h, 3000000), 0);
    cr_assert_gt(pprofio_hist_grow_bytes(&h, 100), 0);
    pprofio_hist_free(&h);
}

/* ---- timings ----------------------------------------------------------------- */

LTest(spans, timings_per_name_and_tag_set_are_exact) {
    pprofio_spans *s = recorder(0, 0, 0, 0);
    static const char gold[] = "tier\0gold\0", free_[] = "tier\0free\0";
    for (int i = 1; i <= 100; i++) {
        record(s, "checkout", gold, sizeof gold - 1, T0 + i, i * MS, (uint64_t)i);
        record(s, "checkout", free_, sizeof free_ - 1, T0 + i, 2 * i * MS, 1000 + (uint64_t)i);
        record(s, "db.query", NULL, 0, T0 + i, 10 * MS, 2000 + (uint64_t)i);
    }
    record(s, "db.query", NULL, 0, T0, -5, 1); /* a negative duration counts as 0 */
    pprofio_spans_cycle *c = take(s);
    assert_i64(c->n_series, 3);
    assert_i64(c->recorded, 301);
    assert_i64(c->overflowed, 0);
    const pprofio_spans_series *g = series_named(c, "checkout", gold, sizeof gold - 1);
    assert_i64(g->count, 100);
    assert_i64(g->total_ns, 5050 * MS);
    assert_i64(g->min_ns, 1 * MS);
    assert_i64(g->max_ns, 100 * MS);
    expect_within_error(pprofio_spans_quantile(g, 0.5), 50 * MS, "checkout{gold} p50");
    expect_within_error(pprofio_spans_quantile(g, 0.9), 90 * MS, "checkout{gold} p90");
    expect_within_error(pprofio_spans_quantile(g, 0.99), 99 * MS, "checkout{gold} p99");
    const pprofio_spans_series *f = series_named(c, "checkout", free_, sizeof free_ - 1);
    assert_i64(f->count, 100);
    assert_i64(f->max_ns, 200 * MS);
    const pprofio_spans_series *d = series_named(c, "db.query", "", 0);
    assert_i64(d->count, 101);
    assert_i64(d->min_ns, 0);
    assert_i64(d->max_ns, 10 * MS);
    assert_i64(pprofio_spans_quantile(d, 0.5), 10 * MS); /* clamped into [min, max] */
    pprofio_spans_cycle_free(c);
    pprofio_spans_free(s);
}

LTest(spans, a_take_hands_over_the_cycle_and_the_next_starts_empty) {
    pprofio_spans *s = recorder(0, 0, 0, 0);
    record(s, "a", NULL, 0, T0, MS, 1);
    pprofio_spans_cycle *c1 = take(s);
    record(s, "b", NULL, 0, T0, MS, 2);
    record(s, "b", NULL, 0, T0, MS, 3);
    pprofio_spans_cycle *c2 = take(s);
    pprofio_spans_cycle *c3 = take(s);
    assert_i64(c1->n_series, 1);
    cr_assert_str_eq(c1->series[0].name, "a");
    assert_i64(c2->n_series, 1);
    assert_i64(c2->series[0].count, 2);
    assert_i64(c3->n_series, 0);
    assert_i64(c3->recorded, 0);
    assert_i64(c3->n_samples, 0);
    pprofio_spans_stats st;
    pprofio_spans_stats_get(s, &st);
    assert_i64(st.recorded, 3);
    assert_i64(st.sampled, 3); /* every span fit in the timelines */
    assert_i64(st.dropped, 0);
    pprofio_spans_cycle_free(c1);
    pprofio_spans_cycle_free(c2);
    pprofio_spans_cycle_free(c3);
    pprofio_spans_cycle_free(NULL);
    pprofio_spans_free(s);
    pprofio_spans_free(NULL);
}

LTest(spans, names_past_the_cardinality_bound_go_to_the_counted_overflow_series) {
    pprofio_spans *s = recorder(0, 100, 0, 0);
    char name[32];
    for (int i = 0; i < 10000; i++) {
        snprintf(name, sizeof name, "name-%d", i);
        record(s, name, NULL, 0, T0, (i + 1) * 1000, (uint64_t)i + 1);
    }
    record(s, "name-7", NULL, 0, T0, 1000, 99999); /* a known name still lands in its series */
    pprofio_spans_cycle *c = take(s);
    assert_i64(c->n_series, 101);
    assert_i64(c->recorded, 10001);
    assert_i64(c->overflowed, 9900);
    const pprofio_spans_series *o = overflow_of(c);
    cr_assert(o, "no overflow series");
    cr_assert_str_eq(o->name, "");
    assert_i64(o->count, 9900);
    assert_i64(o->min_ns, 101 * 1000);
    assert_i64(o->max_ns, 10000 * 1000);
    assert_i64(series_named(c, "name-7", "", 0)->count, 2);
    for (size_t i = 0; i < c->n_samples; i++)
        cr_assert(!c->series[c->samples[i].series].overflow, "an overflowed span is in the timeline");
    assert_i64(c->n_samples + c->unsampled, c->recorded);
    pprofio_spans_stats st;
    pprofio_spans_stats_get(s, &st);
    assert_i64(st.overflowed, 9900);
    pprofio_spans_cycle_free(c);
    pprofio_spans_free(s);
}

LTest(spans, memory_stays_under_the_byte_bound_and_what_does_not_fit_is_counted) {
    const int64_t bound = PPROFIO_SPANS_MIN_BYTES;
    pprofio_spans *s = recorder(bound, 1u << 20, 16, 1u << 20);
    char name[300], tags[600];
    uint64_t seed = 3, pcs[PPROFIO_SPANS_MAX_PCS];
    for (int i = 0; i < 20000; i++) {
        int n = snprintf(name, sizeof name, "%0200d", i);
        int t = snprintf(tags, sizeof tags, "key%c%0300d", 0, i) + 1;
        for (size_t k = 0; k < PPROFIO_SPANS_MAX_PCS; k++)
            pcs[k] = splitmix64(&seed);
        pprofio_span sp = {.name = name, .name_len = (size_t)n, .tags = tags, .tags_len = (size_t)t,
                           .start_ns = T0, .dur_ns = (int64_t)(splitmix64(&seed) % SEC), .span_id = (uint64_t)i,
                           .pcs = pcs, .n_pcs = PPROFIO_SPANS_MAX_PCS};
        pprofio_spans_record(s, &sp);
        pprofio_spans_stats st;
        pprofio_spans_stats_get(s, &st);
        cr_assert_leq(st.bytes, bound, "after %d spans: %lld bytes", i + 1, (long long)st.bytes);
    }
    pprofio_spans_stats st;
    pprofio_spans_stats_get(s, &st);
    cr_assert_leq(st.bytes_peak, bound);
    pprofio_spans_cycle *c = take(s);
    cr_assert_gt(c->overflowed, 0);
    cr_assert_gt(c->stacks_dropped, 0);
    assert_i64(c->recorded, 20000);
    uint64_t in_series = 0;
    for (size_t i = 0; i < c->n_series; i++)
        in_series += c->series[i].count;
    assert_i64(in_series, 20000); /* nothing lost: in a series or in the overflow */
    assert_i64(c->overflowed, overflow_of(c)->count);
    pprofio_spans_cycle_free(c);
    pprofio_spans_free(s);
}

LTest(spans, long_names_and_tags_are_cut_at_the_limits_tags_at_a_whole_pair) {
    pprofio_spans *s = recorder(0, 0, 0, 0);
    char name[PPROFIO_SPANS_MAX_NAME + 50];
    memset(name, 'n', sizeof name - 1);
    name[sizeof name - 1] = '\0';
    char tags[PPROFIO_SPANS_MAX_TAGS + 100];
    size_t n = 0;
    while (n + 20 < sizeof tags) { /* "k\0vvvvvvvvvvvvvvvvv\0" pairs of 20 bytes */
        memcpy(tags + n, "k\0vvvvvvvvvvvvvvvvv", 20);
        n += 20;
    }
    record(s, name, tags, n, T0, MS, 1);
    record(s, "odd", "k\0v\0dangling", 12, T0, MS, 2);
    pprofio_spans_cycle *c = take(s);
    assert_i64(c->series[0].name_len, PPROFIO_SPANS_MAX_NAME);
    assert_i64(c->series[0].tags_len, PPROFIO_SPANS_MAX_TAGS / 20 * 20);
    assert_i64(c->series[1].tags_len, 4);
    pprofio_spans_cycle_free(c);
    pprofio_spans_free(s);
}

LTest(spans, a_config_that_cannot_work_is_refused_with_a_reason) {
    pprofio_spans *s = (pprofio_spans *)&s;
    pprofio_error err = {0};
    pprofio_spans_config small = {.max_bytes = 1000};
    assert_status(pprofio_spans_new(&small, &s, &err), PPROFIO_ERR_INVALID);
    cr_assert_null(s);
    assert_contains(err.msg, "max_bytes");
    pprofio_spans_config crowded = {.max_bytes = PPROFIO_SPANS_MIN_BYTES, .max_samples = 100000};
    assert_status(pprofio_spans_new(&crowded, &s, &err), PPROFIO_ERR_INVALID);
    assert_contains(err.msg, "samples");
    assert_status(pprofio_spans_new(NULL, &s, &err), PPROFIO_OK);
    pprofio_spans_free(s);
}

/* ---- the timeline ------------------------------------------------------------ */

LTest(spans, the_timeline_keeps_the_slowest_span_of_each_series_and_a_bounded_uniform_sample) {
    enum { K = 32, N = 5000 };
    pprofio_spans *s = recorder(0, 0, K, 0);
    uint64_t seed = 11;
    for (int i = 0; i < N; i++) {
        const char *name = i % 2 ? "render" : "db.query";
        int64_t dur = (int64_t)(splitmix64(&seed) % (10 * MS)) + 1;
        if (i == 1234)
            dur = 50 * MS; /* the slowest db.query */
        if (i == 4321)
            dur = 70 * MS; /* the slowest render */
        record(s, name, NULL, 0, T0 + i, dur, (uint64_t)i + 1);
    }
    pprofio_spans_cycle *c = take(s);
    cr_assert_leq(c->n_samples, 2 + K);
    cr_assert_geq(c->n_samples, K);
    assert_i64(c->n_samples + c->unsampled, N);
    int slowest = 0;
    for (size_t i = 0; i < c->n_samples; i++) {
        const pprofio_spans_sample *smp = &c->samples[i];
        cr_assert(smp->slowest || smp->uniform);
        cr_assert_eq(smp->parent_id, smp->span_id / 2);
        if (i > 0)
            cr_assert(c->samples[i - 1].series < smp->series ||
                          (c->samples[i - 1].series == smp->series && c->samples[i - 1].start_ns <= smp->start_ns),
                      "the timeline is not in order at %zu", i);
        if (!smp->slowest)
            continue;
        slowest++;
        const char *name = c->series[smp->series].name;
        if (!strcmp(name, "db.query"))
            cr_assert(smp->span_id == 1235 && smp->dur_ns == 50 * MS && smp->start_ns == T0 + 1234);
        else
            cr_assert(smp->span_id == 4322 && smp->dur_ns == 70 * MS);
    }
    assert_i64(slowest, 2);
    pprofio_spans_stats st;
    pprofio_spans_stats_get(s, &st);
    assert_i64(st.sampled, c->n_samples);
    pprofio_spans_cycle_free(c);
    pprofio_spans_free(s);
}

LTest(spans, the_uniform_sample_is_uniform_over_the_cycle) {
    /* Over many cycles, where in the cycle a sampled span came from averages out at the middle. */
    enum { K = 16, N = 2000, CYCLES = 200 };
    pprofio_spans *s = recorder(0, 0, K, 0);
    double sum = 0;
    size_t n = 0, first_half = 0;
    for (int cyc = 0; cyc < CYCLES; cyc++) {
        for (int i = 0; i < N; i++)
            record(s, "op", NULL, 0, T0 + i, MS, (uint64_t)i + 1); /* equal durations: the first is slowest */
        pprofio_spans_cycle *c = take(s);
        for (size_t i = 0; i < c->n_samples; i++) {
            if (!c->samples[i].uniform)
                continue;
            double pos = (double)(c->samples[i].start_ns - T0) / N;
            sum += pos;
            first_half += pos < 0.5;
            n++;
        }
        pprofio_spans_cycle_free(c);
    }
    assert_i64(n, K * CYCLES);
    double mean = sum / (double)n;
    cr_assert(mean > 0.45 && mean < 0.55, "mean position %.3f of %zu sampled spans", mean, n);
    cr_assert(first_half > n * 45 / 100 && first_half < n * 55 / 100, "%zu of %zu from the first half",
              first_half, n);
    pprofio_spans_free(s);
}

/* ---- stacks ----------------------------------------------------------------- */

LTest(spans, start_stacks_are_aggregated_per_series_and_bounded) {
    pprofio_spans *s = recorder(0, 0, 0, 3);
    uint64_t a[] = {0x401000, 0x402000, 0x403000}, b[] = {0x501000, 0x402000};
    pprofio_span sp = {.name = "checkout", .name_len = 8, .start_ns = T0, .dur_ns = 2 * MS, .span_id = 1,
                       .pcs = a, .n_pcs = 3};
    pprofio_spans_record(s, &sp);
    pprofio_spans_record(s, &sp);
    sp.pcs = b;
    sp.n_pcs = 2;
    pprofio_spans_record(s, &sp);
    sp.name = "render"; /* same stack, other series: another entry */
    sp.name_len = 6;
    pprofio_spans_record(s, &sp);
    uint64_t c4[] = {1, 2, 3, 4};
    sp.pcs = c4;
    sp.n_pcs = 4;
    pprofio_spans_record(s, &sp); /* a fourth stack: past max_stacks */
    sp.pcs = NULL;
    pprofio_spans_record(s, &sp); /* no stack: not head-sampled */
    pprofio_spans_cycle *c = take(s);
    assert_i64(c->n_stacks, 3);
    assert_i64(c->stacks_dropped, 1);
    const pprofio_spans_stack *st = &c->stacks[0];
    cr_assert_str_eq(c->series[st->series].name, "checkout");
    assert_i64(st->n_pcs, 3);
    cr_assert(!memcmp(st->pcs, a, sizeof a));
    assert_i64(st->count, 2);
    assert_i64(st->total_ns, 4 * MS);
    cr_assert_str_eq(c->series[c->stacks[2].series].name, "render");
    assert_i64(c->stacks[2].count, 1);
    pprofio_spans_cycle_free(c);
    pprofio_spans_free(s);
}

/* ---- blocks ----------------------------------------------------------------- */

/* put_record appends one record in the block layout at p; its length. */
static size_t put_record(unsigned char *p, const char *name, const char *tags, uint16_t tags_len, int64_t start,
                         int64_t dur, uint64_t id, uint64_t parent, const uint64_t *pcs, uint32_t n_pcs) {
    uint16_t nl = (uint16_t)strlen(name);
    size_t text = (PPROFIO_SPANS_REC_HEADER + nl + tags_len + 7) & ~(size_t)7;
    uint32_t len = (uint32_t)(text + n_pcs * 8), zero = 0;
    memset(p, 0, len);
    memcpy(p, &len, 4);
    memcpy(p + 4, &nl, 2);
    memcpy(p + 6, &tags_len, 2);
    memcpy(p + 8, &n_pcs, 4);
    memcpy(p + 12, &zero, 4);
    memcpy(p + 16, &start, 8);
    memcpy(p + 24, &dur, 8);
    memcpy(p + 32, &id, 8);
    memcpy(p + 40, &parent, 8);
    memcpy(p + PPROFIO_SPANS_REC_HEADER, name, nl);
    if (tags_len)
        memcpy(p + PPROFIO_SPANS_REC_HEADER + nl, tags, tags_len);
    if (n_pcs)
        memcpy(p + text, pcs, n_pcs * 8);
    return len;
}

LTest(spans, a_block_of_records_in_the_go_layout_is_recorded_whole) {
    pprofio_spans *s = recorder(0, 0, 0, 0);
    unsigned char *block = malloc(1 << 16);
    uint64_t pcs[] = {0x1000, 0x2000, 0x3000};
    size_t n = 0;
    for (int i = 0; i < 100; i++)
        n += put_record(block + n, i % 2 ? "render" : "checkout", "tier\0gold\0", 10, T0 + i, (i + 1) * MS,
                        (uint64_t)i + 1, 7, i == 5 ? pcs : NULL, i == 5 ? 3 : 0);
    assert_status(pprofio_spans_record_block(s, block + 0, n), PPROFIO_OK);
    /* a block that starts at an odd address decodes the same */
    memmove(block + 1, block, n);
    assert_status(pprofio_spans_record_block(s, block + 1, n), PPROFIO_OK);
    pprofio_spans_cycle *c = take(s);
    assert_i64(c->recorded, 200);
    const pprofio_spans_series *ck = series_named(c, "checkout", "tier\0gold\0", 10);
    assert_i64(ck->count, 100);
    assert_i64(ck->min_ns, 1 * MS);
    assert_i64(ck->max_ns, 99 * MS);
    assert_i64(c->n_stacks, 1);
    assert_i64(c->stacks[0].count, 2);
    cr_assert(!memcmp(c->stacks[0].pcs, pcs, sizeof pcs));
    for (size_t i = 0; i < c->n_samples; i++)
        assert_i64(c->samples[i].parent_id, 7);
    pprofio_spans_cycle_free(c);
    free(block);
    pprofio_spans_free(s);
}

LTest(spans, a_malformed_record_ends_its_block_is_counted_and_keeps_the_records_before_it) {
    unsigned char block[4096];
    struct {
        const char *what;
        size_t at;   /* offset in the second record to damage */
        uint32_t v;  /* value written there (4 bytes) */
        size_t keep; /* or: how much of the second record the block keeps (the third is gone) */
    } cases[] = {
        {"rec_len not a multiple of 8", 0, 61, 0},
        {"rec_len past the block", 0, 4096, 0},
        {"rec_len that disagrees with the lengths", 0, 48, 0},
        {"reserved field not zero", 12, 1, 0},
        {"a huge pc count", 8, 0x40000000, 0},
        {"a truncated header", 0, 0, 20},
        {"a truncated record", 0, 0, 50},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        pprofio_spans *s = recorder(0, 0, 0, 0);
        size_t first = put_record(block, "ok", "", 0, T0, MS, 1, 0, NULL, 0);
        size_t n = first + put_record(block + first, "bad", "", 0, T0, MS, 2, 0, NULL, 0); /* 56 bytes */
        n += put_record(block + n, "after", "", 0, T0, MS, 3, 0, NULL, 0);
        if (cases[k].keep)
            n = first + cases[k].keep;
        else
            memcpy(block + first + cases[k].at, &cases[k].v, 4);
        int rc = pprofio_spans_record_block(s, block, n);
        cr_assert_eq(rc, PPROFIO_ERR_FORMAT, "%s: %s", cases[k].what, pprofio_strstatus(rc));
        pprofio_spans_cycle *c = take(s);
        cr_assert_eq(c->recorded, 1, "%s: %llu recorded", cases[k].what, (unsigned long long)c->recorded);
        cr_assert_str_eq(c->series[0].name, "ok");
        assert_i64(c->dropped, 1);
        pprofio_spans_stats st;
        pprofio_spans_stats_get(s, &st);
        assert_i64(st.dropped, 1);
        pprofio_spans_cycle_free(c);
        pprofio_spans_free(s);
    }
}

/* ---- out of memory ----------------------------------------------------------- */

static long armed_at;

static void arm(long n) {
    armed_at = pprofio_alloc_calls();
    pprofio_alloc_fail_after(n);
}

/* disarm turns failures off and says whether an allocation was made to fail. */
static int disarm(long n) {
    pprofio_alloc_fail_after(-1);
    return pprofio_alloc_calls() - armed_at > n;
}

LTest(spans, new_fails_cleanly_at_every_allocation) {
    for (long n = 0; n < MAX_RUNS; n++) {
        pprofio_spans *s = NULL;
        pprofio_error err = {0};
        arm(n);
        int rc = pprofio_spans_new(NULL, &s, &err);
        int failed = disarm(n);
        if (rc == PPROFIO_OK) {
            cr_assert(s);
            pprofio_spans_free(s);
            if (!failed)
                return;
            continue;
        }
        assert_status(rc, PPROFIO_ERR_NOMEM);
        cr_assert_null(s);
        assert_contains(err.msg, "out of memory");
    }
    cr_assert_fail("pprofio_spans_new still failing after %d runs", MAX_RUNS);
}

/* feed records a mixed workload: new series, growing histograms, stacks, overflow. */
static void feed(pprofio_spans *s) {
    static const uint64_t pcs[][3] = {{1, 2, 3}, {4, 5, 6}};
    char name[16];
    for (int i = 0; i < 60; i++) {
        snprintf(name, sizeof name, "op-%d", i % 12);
        int64_t dur = (int64_t)1 << (i % 30);
        pprofio_span sp = {.name = name, .name_len = strlen(name), .tags = "k\0v\0", .tags_len = 4,
                           .start_ns = T0 + i, .dur_ns = dur, .span_id = (uint64_t)i + 1,
                           .pcs = pcs[i % 2], .n_pcs = 3};
        pprofio_spans_record(s, &sp);
    }
}

LTest(spans, recording_and_taking_fail_cleanly_at_every_allocation_and_no_span_is_lost) {
    for (long n = 0; n < MAX_RUNS; n++) {
        pprofio_spans *s = recorder(0, 10, 8, 0); /* 12 names, 10 series: some overflow */
        arm(n);
        feed(s);
        pprofio_spans_cycle *c = NULL;
        int rc = pprofio_spans_take(s, &c);
        int failed = disarm(n);
        if (rc != PPROFIO_OK) {
            assert_status(rc, PPROFIO_ERR_NOMEM);
            cr_assert_null(c);
            c = take(s); /* the data stayed for the next take */
        }
        uint64_t counted = 0;
        for (size_t i = 0; i < c->n_series; i++)
            counted += c->series[i].count;
        cr_assert_eq(c->recorded, 60, "run %ld: %llu recorded", n, (unsigned long long)c->recorded);
        cr_assert_eq(counted, 60, "run %ld: %llu counted in series", n, (unsigned long long)counted);
        assert_i64(c->n_samples + c->unsampled, 60);
        uint64_t stacked = c->stacks_dropped; /* every span came with a stack */
        for (size_t i = 0; i < c->n_stacks; i++)
            stacked += c->stacks[i].count;
        assert_i64(stacked, 60);
        pprofio_spans_cycle_free(c);
        pprofio_spans_free(s);
        if (!failed)
            return;
    }
    cr_assert_fail("still failing after %d runs", MAX_RUNS);
}

/* ---- threads ------------------------------------------------------------------- */

typedef struct {
    pprofio_spans *s;
    int id;
} worker_arg;

static void *worker(void *p) {
    worker_arg *a = p;
    unsigned char block[2048];
    for (int round = 0; round < 500; round++) {
        size_t n = 0;
        for (int i = 0; i < 10; i++)
            n += put_record(block + n, i % 2 ? "a" : "b", "t\0x\0", 4, T0, (round + 1) * 1000,
                            (uint64_t)(a->id * 100000 + round * 10 + i), 0, NULL, 0);
        cr_assert_eq(pprofio_spans_record_block(a->s, block, n), PPROFIO_OK);
        record(a->s, "single", NULL, 0, T0, 5, 1);
    }
    return NULL;
}

LTest(spans, threads_recording_while_cycles_are_taken_lose_no_span) {
    pprofio_spans *s = recorder(0, 0, 0, 0);
    enum { THREADS = 4 };
    pthread_t th[THREADS];
    worker_arg args[THREADS];
    for (int i = 0; i < THREADS; i++) {
        args[i] = (worker_arg){s, i};
        cr_assert_eq(pthread_create(&th[i], NULL, worker, &args[i]), 0);
    }
    uint64_t recorded = 0, counted = 0;
    for (int k = 0; k < 50; k++) {
        pprofio_spans_cycle *c = take(s);
        recorded += c->recorded;
        for (size_t i = 0; i < c->n_series; i++)
            counted += c->series[i].count;
        pprofio_spans_cycle_free(c);
    }
    for (int i = 0; i < THREADS; i++)
        pthread_join(th[i], NULL);
    pprofio_spans_cycle *c = take(s);
    recorded += c->recorded;
    for (size_t i = 0; i < c->n_series; i++)
        counted += c->series[i].count;
    pprofio_spans_cycle_free(c);
    assert_i64(recorded, THREADS * 500 * 11);
    assert_i64(counted, THREADS * 500 * 11);
    pprofio_spans_free(s);
}
