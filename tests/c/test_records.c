/*
 * test_records.c: delta profiles from the runtime's records
 * (csrc/records.h). A table is filled the way internal/records fills it
 * (strings, a mapping, functions, locations, keys), fed snapshots of
 * cumulative values, and its output decoded with protobuf-c.
 */
#include "../../csrc/alloc.h"
#include "../../csrc/profile.pb-c.h"
#include "../../csrc/records.h"
#include "helpers.h"

TestSuite(records, .timeout = HANG_GUARD_S);

typedef Perftools__Profiles__Profile Prof;
typedef Perftools__Profiles__Sample Sample;

/* A table of two values: the first cumulative, the second kept as it is. */
typedef struct {
    pprofio_records *r;
    int64_t s_bytes;
    uint32_t loc[3];
    uint32_t key_ab, key_b, key_ab_labelled;
} fixture;

static int64_t str(pprofio_records *r, const char *s) {
    int64_t id;
    cr_assert_eq(pprofio_records_string(r, s, strlen(s), &id), PPROFIO_OK);
    return id;
}

static void fixture_init(fixture *f) {
    cr_assert_eq(pprofio_records_new(2, 0x1, &f->r), PPROFIO_OK);
    pprofio_records *r = f->r;
    int64_t types[] = {str(r, "alloc_space"), str(r, "bytes"), str(r, "inuse_space"), str(r, "bytes")};
    cr_assert_eq(pprofio_records_types(r, types, 2, str(r, "space"), str(r, "bytes")), PPROFIO_OK);
    f->s_bytes = str(r, "bytes");
    uint32_t m, fa, fb, fc;
    cr_assert_eq(pprofio_records_mapping(r, 0x400000, 0x500000, 0, str(r, "/bin/prog"), str(r, "abc"), 1, &m),
                 PPROFIO_OK);
    cr_assert_eq(pprofio_records_function(r, str(r, "main.a"), str(r, "a.go"), 10, &fa), PPROFIO_OK);
    cr_assert_eq(pprofio_records_function(r, str(r, "main.b"), str(r, "b.go"), 20, &fb), PPROFIO_OK);
    cr_assert_eq(pprofio_records_function(r, str(r, "main.inl"), str(r, "b.go"), 30, &fc), PPROFIO_OK);
    uint32_t fns[] = {fc, fb};
    int64_t lines[] = {31, 21};
    cr_assert_eq(pprofio_records_location(r, 0x401000, m, &fa, (int64_t[]){11}, 1, &f->loc[0]), PPROFIO_OK);
    cr_assert_eq(pprofio_records_location(r, 0x402000, m, fns, lines, 2, &f->loc[1]), PPROFIO_OK);
    cr_assert_eq(pprofio_records_location(r, 0x403000, m, &fb, (int64_t[]){22}, 1, &f->loc[2]), PPROFIO_OK);
    uint32_t ab[] = {f->loc[0], f->loc[1]}, b[] = {f->loc[2]};
    cr_assert_eq(pprofio_records_key(r, ab, 2, 0, 0, &f->key_ab), PPROFIO_OK);
    cr_assert_eq(pprofio_records_key(r, b, 1, 0, 0, &f->key_b), PPROFIO_OK);
    cr_assert_eq(pprofio_records_key(r, ab, 2, f->s_bytes, 64, &f->key_ab_labelled), PPROFIO_OK);
}

static Prof *decode(const pprofio_bytes *out) {
    Prof *p = perftools__profiles__profile__unpack(NULL, out->len, out->p);
    cr_assert(p, "the output does not decode");
    return p;
}

/* find returns the sample whose first location is loc and whose label is num (0: none). */
static Sample *find(Prof *p, uint64_t loc, int64_t num) {
    for (size_t i = 0; i < p->n_sample; i++) {
        Sample *s = p->sample[i];
        int64_t lab = s->n_label ? s->label[0]->num : 0;
        if (s->n_location_id > 0 && s->location_id[0] == loc && lab == num)
            return s;
    }
    return NULL;
}

LTest(records, a_snapshot_after_another_holds_the_cumulative_difference_and_the_other_values_as_they_are) {
    fixture f;
    fixture_init(&f);
    pprofio_bytes out = {0};
    int is_delta = -1;
    int64_t first[] = {f.key_ab, 100, 7, f.key_b, 50, 5, f.key_ab_labelled, 0, 0};
    cr_assert_eq(pprofio_records_cycle(f.r, first, 3, 1000, 512, 1, &out, &is_delta), PPROFIO_OK);
    cr_assert_eq(is_delta, 0, "without a previous snapshot, the output is the totals");
    Prof *p = decode(&out);
    cr_assert_eq(p->n_sample, 3, "the totals keep a stack of zeros, as runtime/pprof writes it");
    cr_assert(find(p, f.loc[0], 64));
    perftools__profiles__profile__free_unpacked(p, NULL);

    int64_t second[] = {f.key_ab, 160, 3, f.key_b, 50, 0, f.key_ab_labelled, 0, 2};
    cr_assert_eq(pprofio_records_cycle(f.r, second, 3, 4000, 512, 1, &out, &is_delta), PPROFIO_OK);
    cr_assert_eq(is_delta, 1);
    p = decode(&out);
    cr_assert_eq(p->n_sample, 2, "key_b changed nothing and is dropped");
    Sample *ab = find(p, f.loc[0], 0), *lab = find(p, f.loc[0], 64);
    cr_assert(ab && lab);
    cr_assert_eq(ab->value[0], 60);
    cr_assert_eq(ab->value[1], 3);
    cr_assert_eq(lab->value[0], 0);
    cr_assert_eq(lab->value[1], 2);
    cr_assert_str_eq(p->string_table[lab->label[0]->key], "bytes");
    cr_assert_eq(p->time_nanos, 1000);
    cr_assert_eq(p->duration_nanos, 3000);
    cr_assert_eq(p->period, 512);
    cr_assert_str_eq(p->string_table[p->period_type->type], "space");
    cr_assert_eq(p->n_sample_type, 2);
    cr_assert_str_eq(p->string_table[p->sample_type[1]->type], "inuse_space");
    cr_assert_eq(p->n_location, 2, "only the locations the samples use");
    perftools__profiles__profile__free_unpacked(p, NULL);
    pprofio_bytes_free(&out);
    pprofio_records_free(f.r);
}

LTest(records, an_inlined_location_keeps_its_lines_innermost_first_and_its_mapping) {
    fixture f;
    fixture_init(&f);
    pprofio_bytes out = {0};
    int is_delta;
    int64_t snap[] = {f.key_ab, 1, 1};
    cr_assert_eq(pprofio_records_cycle(f.r, snap, 1, 1, 1, 1, &out, &is_delta), PPROFIO_OK);
    Prof *p = decode(&out);
    int seen = 0;
    for (size_t i = 0; i < p->n_location; i++) {
        Perftools__Profiles__Location *l = p->location[i];
        if (l->address != 0x402000)
            continue;
        seen = 1;
        cr_assert_eq(l->n_line, 2);
        cr_assert_eq(l->line[0]->line, 31);
        cr_assert_eq(l->line[1]->line, 21);
        cr_assert_eq(l->mapping_id, 1);
        for (size_t k = 0; k < p->n_function; k++)
            if (p->function[k]->id == l->line[0]->function_id)
                cr_assert_str_eq(p->string_table[p->function[k]->name], "main.inl");
    }
    cr_assert(seen);
    cr_assert_eq(p->n_mapping, 1);
    cr_assert(p->mapping[0]->has_functions);
    cr_assert_str_eq(p->string_table[p->mapping[0]->filename], "/bin/prog");
    perftools__profiles__profile__free_unpacked(p, NULL);
    pprofio_bytes_free(&out);
    pprofio_records_free(f.r);
}

LTest(records, records_of_one_stack_and_label_share_a_key_and_are_summed) {
    fixture f;
    fixture_init(&f);
    uint32_t ab[] = {f.loc[0], f.loc[1]}, again;
    cr_assert_eq(pprofio_records_key(f.r, ab, 2, 0, 0, &again), PPROFIO_OK);
    cr_assert_eq(again, f.key_ab);
    pprofio_bytes out = {0};
    int is_delta;
    int64_t snap[] = {f.key_ab, 5, 1, f.key_ab, 7, 2};
    cr_assert_eq(pprofio_records_cycle(f.r, snap, 2, 1, 1, 1, &out, &is_delta), PPROFIO_OK);
    Prof *p = decode(&out);
    cr_assert_eq(p->n_sample, 1);
    cr_assert_eq(p->sample[0]->value[0], 12);
    cr_assert_eq(p->sample[0]->value[1], 3);
    perftools__profiles__profile__free_unpacked(p, NULL);
    pprofio_bytes_free(&out);
    pprofio_records_free(f.r);
}

LTest(records, a_reset_or_a_missed_snapshot_makes_the_next_one_totals_again) {
    fixture f;
    fixture_init(&f);
    pprofio_bytes out = {0};
    int is_delta;
    int64_t snap[] = {f.key_ab, 5, 1};
    cr_assert_eq(pprofio_records_cycle(f.r, snap, 1, 1, 1, 0, &out, &is_delta), PPROFIO_OK);
    cr_assert_eq(out.len, 0, "no output without emit");
    pprofio_records_reset(f.r);
    cr_assert_eq(pprofio_records_cycle(f.r, snap, 1, 2, 1, 1, &out, &is_delta), PPROFIO_OK);
    cr_assert_eq(is_delta, 0);
    Prof *p = decode(&out);
    cr_assert_eq(p->sample[0]->value[0], 5, "nothing subtracted after a reset");
    perftools__profiles__profile__free_unpacked(p, NULL);
    pprofio_bytes_free(&out);
    pprofio_records_free(f.r);
}

LTest(records, unknown_ids_are_refused) {
    fixture f;
    fixture_init(&f);
    uint32_t bad[] = {99}, key;
    cr_assert_eq(pprofio_records_key(f.r, bad, 1, 0, 0, &key), PPROFIO_ERR_INVALID);
    cr_assert_eq(pprofio_records_location(f.r, 1, 7, NULL, NULL, 0, &key), PPROFIO_ERR_INVALID);
    cr_assert_eq(pprofio_records_function(f.r, 9999, 0, 0, &key), PPROFIO_ERR_INVALID);
    pprofio_bytes out = {0};
    int is_delta;
    int64_t snap[] = {42, 1, 1};
    cr_assert_eq(pprofio_records_cycle(f.r, snap, 1, 1, 1, 1, &out, &is_delta), PPROFIO_ERR_INVALID);
    pprofio_bytes_free(&out);
    pprofio_records_free(f.r);
    pprofio_records *r;
    cr_assert_eq(pprofio_records_new(9, 0, &r), PPROFIO_ERR_INVALID);
}

/* build_and_cycle runs the fixture's whole life; PPROFIO_ERR_NOMEM when an allocation failed. */
static int build_and_cycle(void) {
    pprofio_records *r;
    int rc = pprofio_records_new(2, 0x1, &r);
    if (rc != PPROFIO_OK)
        return rc;
    int64_t id[4];
    const char *s[] = {"alloc_space", "bytes", "main.a", "a.go"};
    for (int i = 0; i < 4 && rc == PPROFIO_OK; i++)
        rc = pprofio_records_string(r, s[i], strlen(s[i]), &id[i]);
    int64_t types[] = {id[0], id[1], id[0], id[1]};
    uint32_t m = 0, fn = 0, loc = 0, key = 0;
    if (rc == PPROFIO_OK)
        rc = pprofio_records_types(r, types, 2, id[0], id[1]);
    if (rc == PPROFIO_OK)
        rc = pprofio_records_mapping(r, 0, 10, 0, id[3], 0, 1, &m);
    if (rc == PPROFIO_OK)
        rc = pprofio_records_function(r, id[2], id[3], 1, &fn);
    if (rc == PPROFIO_OK)
        rc = pprofio_records_location(r, 5, m, &fn, (int64_t[]){3}, 1, &loc);
    if (rc == PPROFIO_OK)
        rc = pprofio_records_key(r, &loc, 1, id[1], 8, &key);
    pprofio_bytes out = {0};
    int is_delta;
    for (int i = 1; i <= 2 && rc == PPROFIO_OK; i++)
        rc = pprofio_records_cycle(r, (int64_t[]){key, 10 * i, i}, 1, i, 1, 1, &out, &is_delta);
    pprofio_bytes_free(&out);
    pprofio_records_free(r);
    return rc;
}

LTest(records, every_allocation_failure_is_reported_and_leaks_nothing) {
    int failures = 0;
    for (long k = 0;; k++) {
        pprofio_alloc_fail_after(k);
        int rc = build_and_cycle();
        pprofio_alloc_fail_after(-1);
        if (rc == PPROFIO_OK)
            break;
        cr_assert_eq(rc, PPROFIO_ERR_NOMEM, "allocation %ld failed: %d", k, rc);
        failures++;
        cr_assert_lt(k, 1000, "runaway");
    }
    cr_assert_gt(failures, 5, "the table allocates: some failures must have been tried");
}

/* add_stack makes a function, a location and a key of their own for stack i. */
static int add_stack(pprofio_records *r, int i, uint32_t *key) {
    char name[32];
    snprintf(name, sizeof name, "main.f%d", i);
    int64_t s;
    uint32_t fn, loc;
    int rc = pprofio_records_string(r, name, strlen(name), &s);
    if (rc == PPROFIO_OK)
        rc = pprofio_records_function(r, s, 0, i, &fn);
    if (rc == PPROFIO_OK)
        rc = pprofio_records_location(r, 0x1000 + (uint64_t)i, 0, &fn, (int64_t[]){i}, 1, &loc);
    if (rc == PPROFIO_OK)
        rc = pprofio_records_key(r, &loc, 1, 0, 0, key);
    return rc;
}

LTest(records, a_table_never_holds_more_than_its_limit_and_says_so_when_full) {
    fixture f;
    fixture_init(&f);
    const size_t limit = 256 << 10;
    cr_assert_lt(pprofio_records_bytes(f.r), limit);
    pprofio_records_limit(f.r, limit);
    int rc = PPROFIO_OK, made = 0;
    uint32_t key;
    for (int i = 0; rc == PPROFIO_OK; i++) {
        cr_assert_lt(i, 1000000, "runaway: the table never filled");
        rc = add_stack(f.r, i, &key);
        cr_assert_leq(pprofio_records_bytes(f.r), limit, "over the limit after stack %d", i);
        made += rc == PPROFIO_OK;
    }
    cr_assert_eq(rc, PPROFIO_ERR_LIMIT, "a full table says so: %d", rc);
    cr_assert_gt(made, 100, "the limit holds more than a few stacks (%d)", made);
    /* What it holds stays valid: a known stack still finds its key. */
    uint32_t again;
    cr_assert_eq(pprofio_records_key(f.r, (uint32_t[]){f.loc[2]}, 1, 0, 0, &again), PPROFIO_OK);
    cr_assert_eq(again, f.key_b);
    pprofio_records_free(f.r);
}

LTest(records, a_cycle_whose_delta_would_pass_the_limit_fails_and_the_next_one_is_totals) {
    fixture f;
    fixture_init(&f);
    pprofio_bytes out = {0};
    int is_delta;
    int64_t first[] = {f.key_ab, 5, 1};
    cr_assert_eq(pprofio_records_cycle(f.r, first, 1, 1, 1, 1, &out, &is_delta), PPROFIO_OK);
    enum { N = 2000 };
    int64_t *snap = pprofio_calloc(3 * (N + 1), sizeof *snap);
    cr_assert(snap);
    snap[0] = f.key_ab, snap[1] = 9, snap[2] = 1;
    for (int i = 1; i <= N; i++) {
        uint32_t key;
        cr_assert_eq(add_stack(f.r, i, &key), PPROFIO_OK);
        snap[3 * i] = key, snap[3 * i + 1] = i, snap[3 * i + 2] = 1;
    }
    size_t held = pprofio_records_bytes(f.r);
    pprofio_records_limit(f.r, held); /* the delta of N new stacks needs more (its marks, its output) */
    cr_assert_eq(pprofio_records_cycle(f.r, snap, N + 1, 2, 1, 1, &out, &is_delta), PPROFIO_ERR_LIMIT);
    cr_assert_leq(pprofio_records_bytes(f.r), held);
    pprofio_records_limit(f.r, 0);
    cr_assert_eq(pprofio_records_cycle(f.r, snap, N + 1, 3, 1, 1, &out, &is_delta), PPROFIO_OK);
    cr_assert_eq(is_delta, 0, "the failed cycle forgot the previous snapshot: totals");
    Prof *p = decode(&out);
    cr_assert_eq(p->n_sample, N + 1);
    cr_assert_eq(find(p, f.loc[0], 0)->value[0], 9, "nothing subtracted");
    perftools__profiles__profile__free_unpacked(p, NULL);
    cr_assert_gt(pprofio_records_bytes(f.r), held, "the output's capacity is counted with the table");
    pprofio_free(snap);
    pprofio_bytes_free(&out);
    pprofio_records_free(f.r);
}
