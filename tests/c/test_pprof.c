/*
 * test_pprof.c: delta profiles and goroutine stacks (csrc/pprof.h).
 *
 * The profiles come from a real Go program (tests/testdata, written by
 * tests/testdata/gen/main.go): pairs of cumulative snapshots of the heap,
 * mutex, block and goroutine profiles. The tests decode them on their own
 * with protobuf-c and check the promises of pprof.h stack by stack, then feed
 * the decoder truncated, corrupt and hostile bytes, and the inputs the fuzzer
 * (tests/fuzz) once found troublesome (tests/fuzz/regressions).
 */
#include <libgen.h>
#include <sys/wait.h>

#include "../../csrc/pprof.h"
#include "../../csrc/profile.pb-c.h"
#include "helpers.h"

TestSuite(pprof, .timeout = HANG_GUARD_S, .fini = scratch_cleanup);

typedef Perftools__Profiles__Profile Prof;
typedef Perftools__Profiles__Sample Sample;
typedef Perftools__Profiles__Location Loc;
typedef Perftools__Profiles__Function Fn;
typedef Perftools__Profiles__Mapping Mapping;
typedef Perftools__Profiles__Label Label;
typedef Perftools__Profiles__ValueType ValueType;
typedef Perftools__Profiles__Line Line;

#define MAXV 8

/* ---- files ------------------------------------------------------------------ */

/* repo_path returns tests/<rel> (rel is relative to tests/), found from this file's path. */
static char *repo_path(const char *rel) {
    char here[4096];
    snprintf(here, sizeof here, "%s", __FILE__);
    char *dir = dirname(here); /* tests/c */
    size_t n = strlen(dir) + strlen(rel) + 8;
    char *p = malloc(n);
    cr_assert(p);
    snprintf(p, n, "%s/../%s", dir, rel);
    return p;
}

typedef struct {
    uint8_t *p;
    size_t n;
} blob;

/* load reads tests/testdata/<name>. */
static blob load(const char *name) {
    char rel[256];
    snprintf(rel, sizeof rel, "testdata/%s", name);
    char *path = repo_path(rel);
    blob b;
    b.p = read_file(path, &b.n);
    cr_assert(b.p && b.n > 0, "cannot read %s (run tests/testdata/gen, see tests/testdata/README.md)", path);
    free(path);
    return b;
}

static void blob_free(blob *b) {
    free(b->p);
    b->p = NULL;
    b->n = 0;
}

/* ---- an independent view of a profile -------------------------------------- */

static Prof *unpack(const uint8_t *p, size_t n) { return perftools__profiles__profile__unpack(NULL, n, p); }

static Prof *unpack_ok(const uint8_t *p, size_t n, const char *what) {
    Prof *pr = unpack(p, n);
    cr_assert(pr, "%s: protobuf-c cannot decode %zu bytes", what, n);
    return pr;
}

static const char *str_of(const Prof *p, int64_t i) {
    return i >= 0 && (size_t)i < p->n_string_table ? p->string_table[i] : "<bad string index>";
}

static Loc *loc_by_id(const Prof *p, uint64_t id) {
    for (size_t i = 0; i < p->n_location; i++)
        if (p->location[i]->id == id)
            return p->location[i];
    return NULL;
}

static Fn *fn_by_id(const Prof *p, uint64_t id) {
    for (size_t i = 0; i < p->n_function; i++)
        if (p->function[i]->id == id)
            return p->function[i];
    return NULL;
}

static int is_cumulative(const char *type) {
    return !strcmp(type, "alloc_objects") || !strcmp(type, "alloc_space") || !strcmp(type, "contentions") ||
           !strcmp(type, "delay");
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/*
 * stack_key is a sample's identity, as text: each frame's address (or, for a
 * frame without one, its functions and lines), then its labels, sorted.
 */
static char *stack_key(const Prof *p, const Sample *s, int with_labels) {
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    cr_assert(f);
    for (size_t i = 0; i < s->n_location_id; i++) {
        const Loc *l = loc_by_id(p, s->location_id[i]);
        cr_assert(l, "sample refers to location %llu, which is not there", (unsigned long long)s->location_id[i]);
        if (l->address) {
            fprintf(f, "0x%llx;", (unsigned long long)l->address);
            continue;
        }
        fputs("{", f);
        for (size_t k = 0; k < l->n_line; k++) {
            const Fn *fn = fn_by_id(p, l->line[k]->function_id);
            fprintf(f, "%s:%lld,", fn ? str_of(p, fn->name) : "?", (long long)l->line[k]->line);
        }
        fputs("};", f);
    }
    if (with_labels && s->n_label) {
        char **ls = calloc(s->n_label, sizeof *ls);
        cr_assert(ls);
        for (size_t i = 0; i < s->n_label; i++) {
            const Label *lb = s->label[i];
            cr_assert(asprintf(&ls[i], "%s=%s#%lld", str_of(p, lb->key), str_of(p, lb->str), (long long)lb->num) > 0);
        }
        qsort(ls, s->n_label, sizeof *ls, cmp_str);
        for (size_t i = 0; i < s->n_label; i++) {
            fprintf(f, "|%s", ls[i]);
            free(ls[i]);
        }
        free(ls);
    }
    fclose(f);
    return buf;
}

typedef struct {
    char *key;
    int64_t v[MAXV];
    size_t samples; /* how many samples were summed into this row */
} stack_row;

typedef struct {
    stack_row *rows;
    size_t n, n_values;
    int cum[MAXV];
} stack_map;

static int cmp_row(const void *a, const void *b) { return strcmp(((const stack_row *)a)->key, ((const stack_row *)b)->key); }

/* map_of sums a profile's values per stack (and labels, with_labels). */
static stack_map map_of(const Prof *p, int with_labels) {
    stack_map m = {0};
    cr_assert_leq(p->n_sample_type, MAXV);
    m.n_values = p->n_sample_type;
    for (size_t i = 0; i < m.n_values; i++)
        m.cum[i] = is_cumulative(str_of(p, p->sample_type[i]->type));
    stack_row *rows = calloc(p->n_sample + 1, sizeof *rows);
    cr_assert(rows);
    for (size_t i = 0; i < p->n_sample; i++) {
        cr_assert_eq(p->sample[i]->n_value, m.n_values);
        rows[i].key = stack_key(p, p->sample[i], with_labels);
        for (size_t k = 0; k < m.n_values; k++)
            rows[i].v[k] = p->sample[i]->value[k];
        rows[i].samples = 1;
    }
    qsort(rows, p->n_sample, sizeof *rows, cmp_row);
    size_t n = 0;
    for (size_t i = 0; i < p->n_sample; i++) {
        if (n > 0 && !strcmp(rows[n - 1].key, rows[i].key)) {
            for (size_t k = 0; k < m.n_values; k++)
                rows[n - 1].v[k] += rows[i].v[k];
            rows[n - 1].samples++;
            free(rows[i].key);
        } else {
            rows[n++] = rows[i];
        }
    }
    m.rows = rows;
    m.n = n;
    return m;
}

static const stack_row *map_find(const stack_map *m, const char *key) {
    stack_row probe = {.key = (char *)key};
    return bsearch(&probe, m->rows, m->n, sizeof *m->rows, cmp_row);
}

static void map_free(stack_map *m) {
    for (size_t i = 0; i < m->n; i++)
        free(m->rows[i].key);
    free(m->rows);
    memset(m, 0, sizeof *m);
}

/* sample_calls says whether any frame of s is in the function named fn. */
static int sample_calls(const Prof *p, const Sample *s, const char *fn) {
    for (size_t i = 0; i < s->n_location_id; i++) {
        const Loc *l = loc_by_id(p, s->location_id[i]);
        for (size_t k = 0; l && k < l->n_line; k++) {
            const Fn *f = fn_by_id(p, l->line[k]->function_id);
            if (f && !strcmp(str_of(p, f->name), fn))
                return 1;
        }
    }
    return 0;
}

/* samples_calling counts the samples with a frame in fn. */
static size_t samples_calling(const Prof *p, const char *fn) {
    size_t n = 0;
    for (size_t i = 0; i < p->n_sample; i++)
        n += (size_t)sample_calls(p, p->sample[i], fn);
    return n;
}

static long value_index(const Prof *p, const char *type) {
    for (size_t i = 0; i < p->n_sample_type; i++)
        if (!strcmp(str_of(p, p->sample_type[i]->type), type))
            return (long)i;
    return -1;
}

/* ---- tidiness: no dangling index, nothing unreferenced ------------------------ */

static void mark_string(const Prof *p, uint8_t *used, int64_t i, const char *what, const char *field) {
    cr_assert(i >= 0 && (size_t)i < p->n_string_table, "%s: %s is string %lld of %zu", what, field, (long long)i,
              p->n_string_table);
    used[i] = 1;
}

/*
 * expect_tidy checks raw as pprofio_pprof_check does and more: every id is
 * unique and found, every location, function, mapping and string is used by
 * something, string 0 is "", and no sample is all zeros.
 */
static void expect_tidy(const uint8_t *raw, size_t n, const char *what) {
    pprofio_error err = {0};
    int rc = pprofio_pprof_check(raw, n, &err);
    cr_assert_eq(rc, PPROFIO_OK, "%s: pprofio_pprof_check: %s", what, err.msg);
    Prof *p = unpack_ok(raw, n, what);
    cr_assert_geq(p->n_string_table, 1, "%s: no string table", what);
    cr_assert_str_eq(p->string_table[0], "", "%s: string 0 is \"%s\"", what, p->string_table[0]);
    uint8_t *loc_used = calloc(p->n_location + 1, 1), *fn_used = calloc(p->n_function + 1, 1),
            *map_used = calloc(p->n_mapping + 1, 1), *str_used = calloc(p->n_string_table + 1, 1);
    cr_assert(loc_used && fn_used && map_used && str_used);
    for (size_t i = 0; i < p->n_location; i++)
        for (size_t k = i + 1; k < p->n_location; k++)
            cr_assert_neq(p->location[i]->id, p->location[k]->id, "%s: two locations numbered %llu", what,
                          (unsigned long long)p->location[i]->id);
    for (size_t i = 0; i < p->n_function; i++)
        for (size_t k = i + 1; k < p->n_function; k++)
            cr_assert_neq(p->function[i]->id, p->function[k]->id, "%s: two functions with one id", what);
    for (size_t i = 0; i < p->n_sample; i++) {
        const Sample *s = p->sample[i];
        cr_assert_eq(s->n_value, p->n_sample_type, "%s: sample %zu has %zu values for %zu types", what, i, s->n_value,
                     p->n_sample_type);
        int nonzero = 0;
        for (size_t k = 0; k < s->n_value; k++)
            nonzero |= s->value[k] != 0;
        cr_assert(nonzero, "%s: sample %zu has only zeros", what, i);
        for (size_t k = 0; k < s->n_location_id; k++) {
            const Loc *l = loc_by_id(p, s->location_id[k]);
            cr_assert(l, "%s: sample %zu refers to location %llu: dangling", what, i,
                      (unsigned long long)s->location_id[k]);
            for (size_t j = 0; j < p->n_location; j++)
                if (p->location[j] == l)
                    loc_used[j] = 1;
        }
        for (size_t k = 0; k < s->n_label; k++) {
            mark_string(p, str_used, s->label[k]->key, what, "a label key");
            mark_string(p, str_used, s->label[k]->str, what, "a label value");
            mark_string(p, str_used, s->label[k]->num_unit, what, "a label unit");
        }
    }
    for (size_t i = 0; i < p->n_location; i++) {
        const Loc *l = p->location[i];
        cr_assert(loc_used[i], "%s: location %llu is referenced by no sample", what, (unsigned long long)l->id);
        if (l->mapping_id) {
            int found = 0;
            for (size_t j = 0; j < p->n_mapping; j++)
                if (p->mapping[j]->id == l->mapping_id)
                    map_used[j] = 1, found = 1;
            cr_assert(found, "%s: location %llu refers to mapping %llu: dangling", what, (unsigned long long)l->id,
                      (unsigned long long)l->mapping_id);
        }
        for (size_t k = 0; k < l->n_line; k++) {
            int found = 0;
            for (size_t j = 0; j < p->n_function; j++)
                if (p->function[j]->id == l->line[k]->function_id)
                    fn_used[j] = 1, found = 1;
            cr_assert(found, "%s: location %llu refers to function %llu: dangling", what, (unsigned long long)l->id,
                      (unsigned long long)l->line[k]->function_id);
        }
    }
    for (size_t i = 0; i < p->n_function; i++) {
        const Fn *f = p->function[i];
        cr_assert(fn_used[i], "%s: function %llu (%s) is referenced by no location", what, (unsigned long long)f->id,
                  str_of(p, f->name));
        mark_string(p, str_used, f->name, what, "a function name");
        mark_string(p, str_used, f->system_name, what, "a function system name");
        mark_string(p, str_used, f->filename, what, "a function file name");
    }
    for (size_t i = 0; i < p->n_mapping; i++) {
        cr_assert(map_used[i], "%s: mapping %llu is referenced by no location", what,
                  (unsigned long long)p->mapping[i]->id);
        mark_string(p, str_used, p->mapping[i]->filename, what, "a mapping file name");
        mark_string(p, str_used, p->mapping[i]->build_id, what, "a build id");
    }
    for (size_t i = 0; i < p->n_sample_type; i++) {
        mark_string(p, str_used, p->sample_type[i]->type, what, "a sample type");
        mark_string(p, str_used, p->sample_type[i]->unit, what, "a sample unit");
    }
    if (p->period_type) {
        mark_string(p, str_used, p->period_type->type, what, "the period type");
        mark_string(p, str_used, p->period_type->unit, what, "the period unit");
    }
    for (size_t i = 0; i < p->n_comment; i++)
        mark_string(p, str_used, p->comment[i], what, "a comment");
    mark_string(p, str_used, p->drop_frames, what, "drop_frames");
    mark_string(p, str_used, p->keep_frames, what, "keep_frames");
    mark_string(p, str_used, p->default_sample_type, what, "default_sample_type");
    mark_string(p, str_used, p->doc_url, what, "doc_url");
    for (size_t i = 1; i < p->n_string_table; i++)
        cr_assert(str_used[i], "%s: string %zu (\"%s\") is referenced by nothing", what, i, p->string_table[i]);
    free(loc_used);
    free(fn_used);
    free(map_used);
    free(str_used);
    perftools__profiles__profile__free_unpacked(p, NULL);
}

/* ---- running the delta ---------------------------------------------------------- */

typedef struct {
    int rc, is_delta;
    pprofio_bytes out;
    pprofio_error err;
} delta_result;

static delta_result delta(const uint8_t *raw, size_t n, pprofio_baseline **base, int emit, size_t max_base) {
    delta_result r = {0};
    r.rc = pprofio_pprof_delta(raw, n, base, emit, max_base, &r.out, &r.is_delta, &r.err);
    return r;
}

/* baseline_of returns a baseline made from a real testdata file. */
static pprofio_baseline *baseline_of(const blob *b) {
    pprofio_baseline *base = NULL;
    delta_result r = delta(b->p, b->n, &base, 1, SIZE_MAX);
    cr_assert_eq(r.rc, PPROFIO_OK, "baseline: %s", r.err.msg);
    cr_assert(base);
    pprofio_bytes_free(&r.out);
    return base;
}

/* expect_format_error: raw is refused as PPROFIO_ERR_FORMAT by every entry point, and the baseline is dropped. */
static void expect_format_error(const uint8_t *raw, size_t n, const blob *good_base, const char *what) {
    pprofio_baseline *base = baseline_of(good_base);
    delta_result r = delta(raw, n, &base, 1, SIZE_MAX);
    cr_assert_eq(r.rc, PPROFIO_ERR_FORMAT, "%s: delta returned %d (%s), want PPROFIO_ERR_FORMAT", what, r.rc,
                 pprofio_strstatus(r.rc));
    cr_assert_null(base, "%s: the baseline survived a profile that does not decode", what);
    cr_assert_eq(r.is_delta, 0, "%s", what);
    cr_assert_eq(r.out.len, 0, "%s", what);
    cr_assert(r.err.msg[0], "%s: no error message", what);
    pprofio_bytes_free(&r.out);

    r = delta(raw, n, &base, 1, SIZE_MAX); /* as a first snapshot */
    cr_assert_eq(r.rc, PPROFIO_ERR_FORMAT, "%s (first snapshot): %d", what, r.rc);
    cr_assert_null(base);
    pprofio_bytes_free(&r.out);

    pprofio_error err = {0};
    cr_assert_eq(pprofio_pprof_check(raw, n, &err), PPROFIO_ERR_FORMAT, "%s: check accepted it", what);
    pprofio_stack_count *sc = (pprofio_stack_count *)1;
    size_t nsc = 99;
    int64_t total = 99;
    cr_assert_eq(pprofio_pprof_stacks(raw, n, &sc, &nsc, &total, &err), PPROFIO_ERR_FORMAT, "%s: stacks accepted it",
                 what);
    cr_assert_null(sc);
    cr_assert_eq(nsc, 0);
    cr_assert_eq(total, 0);
}

/* pack returns p serialized into a new malloc'd blob. */
static blob pack(const Prof *p) {
    blob b;
    b.n = perftools__profiles__profile__get_packed_size(p);
    b.p = malloc(b.n ? b.n : 1);
    cr_assert(b.p);
    cr_assert_eq(perftools__profiles__profile__pack(p, b.p), b.n);
    return b;
}

/* go_pprof_raw runs `go tool pprof -raw` on raw; returns its output (or NULL: no go on PATH). */
static char *go_pprof_raw(const uint8_t *raw, size_t n, int *status) {
    if (system("command -v go >/dev/null 2>&1") != 0)
        return NULL;
    char *dir = scratch_dir();
    char *pb = path_join(dir, "delta.pb"), *txt = path_join(dir, "raw.txt");
    FILE *f = fopen(pb, "wb");
    cr_assert(f);
    cr_assert_eq(fwrite(raw, 1, n, f), n);
    fclose(f);
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "go tool pprof -raw '%s' >'%s' 2>&1", pb, txt);
    *status = system(cmd);
    size_t len;
    uint8_t *out = read_file(txt, &len);
    cr_assert(out);
    char *s = malloc(len + 1);
    memcpy(s, out, len);
    s[len] = '\0';
    free(out);
    free(pb);
    free(txt);
    scratch_remove(dir);
    return s;
}

/*
 * expect_delta_of checks a delta stack by stack: for every stack (addresses
 * and labels), base + delta = current for each cumulative value, the other
 * values are the current ones, and a stack is absent exactly when nothing
 * changed and it holds no live memory.
 */
static void expect_delta_of(const blob *b, const blob *c, const pprofio_bytes *d, const char *what) {
    Prof *pb = unpack_ok(b->p, b->n, "base"), *pc = unpack_ok(c->p, c->n, "current"),
         *pd = unpack_ok(d->p, d->len, "delta");
    cr_assert_eq(pd->n_sample_type, pc->n_sample_type);
    for (size_t i = 0; i < pc->n_sample_type; i++) {
        cr_assert_str_eq(str_of(pd, pd->sample_type[i]->type), str_of(pc, pc->sample_type[i]->type));
        cr_assert_str_eq(str_of(pd, pd->sample_type[i]->unit), str_of(pc, pc->sample_type[i]->unit));
    }
    cr_assert_eq(pd->period, pc->period, "%s: period changed", what);
    /* The delta's window runs from the base snapshot to the current one. */
    cr_assert_eq(pd->time_nanos, pb->time_nanos, "%s: the delta's time is not the base's", what);
    cr_assert_eq(pd->duration_nanos, pc->time_nanos - pb->time_nanos, "%s: the duration is not the window's", what);
    /* Counts and sizes since the start only grow: no value of a delta of real profiles is negative. */
    for (size_t i = 0; i < pd->n_sample; i++)
        for (size_t k = 0; k < pd->sample[i]->n_value; k++)
            cr_assert_geq(pd->sample[i]->value[k], 0, "%s: sample %zu has value %zu = %lld", what, i, k,
                          (long long)pd->sample[i]->value[k]);
    stack_map mb = map_of(pb, 1), mc = map_of(pc, 1), md = map_of(pd, 1);
    size_t dup = 0;
    for (size_t i = 0; i < mc.n; i++)
        dup += mc.rows[i].samples > 1;
    int any_cum = 0;
    for (size_t i = 0; i < mc.n_values; i++)
        any_cum |= mc.cum[i];
    cr_assert(any_cum, "%s: no cumulative value type", what);
    for (size_t i = 0; i < md.n; i++)
        cr_assert(map_find(&mc, md.rows[i].key), "%s: the delta has a stack the current profile lacks: %s", what,
                  md.rows[i].key);
    size_t absent = 0, live_only = 0;
    for (size_t i = 0; i < mc.n; i++) {
        const stack_row *rc = &mc.rows[i], *rb = map_find(&mb, rc->key), *rd = map_find(&md, rc->key);
        int changed = 0, live = 0;
        for (size_t k = 0; k < mc.n_values; k++) {
            if (mc.cum[k])
                changed |= rc->v[k] != (rb ? rb->v[k] : 0);
            else
                live |= rc->v[k] != 0;
        }
        if (!changed && !live) {
            absent++;
            cr_assert(!rd || rc->samples > 1, "%s: an unchanged stack without live values was kept: %s", what,
                      rc->key);
            if (!rd)
                continue;
        }
        if (!changed && live)
            live_only++;
        cr_assert(rd, "%s: a stack that changed (or holds live values) is missing from the delta: %s", what, rc->key);
        for (size_t k = 0; k < mc.n_values; k++) {
            if (mc.cum[k])
                cr_assert_eq((rb ? rb->v[k] : 0) + rd->v[k], rc->v[k],
                             "%s: %s: base %lld + delta %lld != current %lld (value %zu)", what, rc->key,
                             (long long)(rb ? rb->v[k] : 0), (long long)rd->v[k], (long long)rc->v[k], k);
            else
                cr_assert_eq(rd->v[k], rc->v[k], "%s: %s: non-cumulative value %zu changed from %lld to %lld", what,
                             rc->key, k, (long long)rc->v[k], (long long)rd->v[k]);
        }
    }
    cr_log_info("%s: %zu stacks now (%zu of them in several samples), %zu in the base, %zu in the delta (%zu "
                "dropped, %zu kept only for live values)",
                what, mc.n, dup, mb.n, md.n, absent, live_only);
    cr_assert_lt(md.n, mc.n, "%s: the delta dropped nothing", what);
    map_free(&mb);
    map_free(&mc);
    map_free(&md);
    perftools__profiles__profile__free_unpacked(pb, NULL);
    perftools__profiles__profile__free_unpacked(pc, NULL);
    perftools__profiles__profile__free_unpacked(pd, NULL);
}

/* run_pair computes the delta of a real pair and checks everything about it. Returns the delta. */
static pprofio_bytes run_pair(const blob *b, const blob *c, const char *what) {
    pprofio_baseline *base = NULL;
    delta_result r = delta(b->p, b->n, &base, 1, SIZE_MAX);
    assert_status(r.rc, PPROFIO_OK);
    cr_assert_eq(r.is_delta, 0, "%s: a first snapshot made a delta", what);
    cr_assert_eq(r.out.len, 0);
    cr_assert_not_null(base, "%s: the first snapshot left no baseline", what);
    pprofio_bytes_free(&r.out);
    r = delta(c->p, c->n, &base, 1, SIZE_MAX);
    cr_assert_eq(r.rc, PPROFIO_OK, "%s: %s", what, r.err.msg);
    cr_assert_eq(r.is_delta, 1, "%s: no delta", what);
    cr_assert_gt(r.out.len, 0);
    cr_assert_not_null(base);
    pprofio_baseline_free(base);
    expect_tidy(r.out.p, r.out.len, what);
    expect_delta_of(b, c, &r.out, what);
    return r.out;
}

static const char *const kinds[] = {"heap", "mutex", "block"};

/* ---- the promises, on real profiles --------------------------------------------- */

LTest(pprof, the_testdata_profiles_are_real_and_well_formed) {
    static const char *const names[] = {"heap_base.pb",  "heap_cur.pb",      "mutex_base.pb",    "mutex_cur.pb",
                                        "block_base.pb", "block_cur.pb",     "goroutine_base.pb", "goroutine_cur.pb"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        blob b = load(names[i]);
        pprofio_error err = {0};
        cr_assert_eq(pprofio_pprof_check(b.p, b.n, &err), PPROFIO_OK, "%s: %s", names[i], err.msg);
        Prof *p = unpack_ok(b.p, b.n, names[i]);
        cr_assert_gt(p->n_sample, 0, "%s has no samples", names[i]);
        cr_assert_gt(samples_calling(p, "main.main") + samples_calling(p, "main.parkedWorker") +
                         samples_calling(p, "main.lockLoop"),
                     0, "%s: no sample in the generator's functions", names[i]);
        perftools__profiles__profile__free_unpacked(p, NULL);
        blob_free(&b);
    }
}

LTest(pprof, for_every_stack_base_plus_delta_is_current_and_inuse_values_are_kept) {
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++) {
        char bn[64], cn[64];
        snprintf(bn, sizeof bn, "%s_base.pb", kinds[i]);
        snprintf(cn, sizeof cn, "%s_cur.pb", kinds[i]);
        blob b = load(bn), c = load(cn);
        pprofio_bytes out = run_pair(&b, &c, kinds[i]);
        pprofio_bytes_free(&out);
        blob_free(&b);
        blob_free(&c);
    }
}

LTest(pprof, samples_written_in_another_order_than_the_base_still_find_their_stacks) {
    /* The runtime writes stacks in the same order each time, and the delta tries the next old stack first;
     * any other order must give the same delta per stack. */
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++) {
        char bn[64], cn[64];
        snprintf(bn, sizeof bn, "%s_base.pb", kinds[i]);
        snprintf(cn, sizeof cn, "%s_cur.pb", kinds[i]);
        blob b = load(bn), c = load(cn);
        Prof *pc = unpack_ok(c.p, c.n, cn);
        size_t n = pc->n_sample;
        cr_assert_gt(n, 2, "%s: too few samples to reorder", cn);
        Sample **orig = malloc(n * sizeof *orig);
        memcpy(orig, pc->sample, n * sizeof *orig);
        size_t k = 0; /* the odd positions backwards, then the even ones */
        for (size_t j = n; j-- > 0;)
            if (j % 2 == 1)
                pc->sample[k++] = orig[j];
        for (size_t j = 0; j < n; j += 2)
            pc->sample[k++] = orig[j];
        cr_assert_eq(k, n);
        blob shuffled = pack(pc);
        memcpy(pc->sample, orig, n * sizeof *orig);
        free(orig);
        pprofio_bytes out = run_pair(&b, &shuffled, kinds[i]);
        pprofio_bytes_free(&out);
        perftools__profiles__profile__free_unpacked(pc, NULL);
        blob_free(&shuffled);
        blob_free(&b);
        blob_free(&c);
    }
}

LTest(pprof, a_heap_delta_has_the_new_allocations_and_the_live_memory_but_not_old_garbage) {
    blob b = load("heap_base.pb"), c = load("heap_cur.pb");
    pprofio_bytes out = run_pair(&b, &c, "heap");
    Prof *d = unpack_ok(out.p, out.len, "delta");
    long ao = value_index(d, "alloc_objects"), io = value_index(d, "inuse_objects");
    cr_assert(ao >= 0 && io >= 0);
    cr_assert_gt(samples_calling(d, "main.allocBetween"), 0, "allocations made between the snapshots are missing");
    cr_assert_gt(samples_calling(d, "main.allocGrowing"), 0, "a stack that kept allocating is missing");
    cr_assert_eq(samples_calling(d, "main.allocEarlyFreed"), 0, "garbage from before the base is still there");
    int64_t growing = 0, retained_alloc = 0, retained_live = 0;
    for (size_t i = 0; i < d->n_sample; i++) {
        const Sample *s = d->sample[i];
        if (sample_calls(d, s, "main.allocGrowing"))
            growing += s->value[ao];
        if (sample_calls(d, s, "main.allocEarlyRetained")) {
            retained_alloc += s->value[ao];
            retained_live += s->value[io];
        }
    }
    assert_i64(growing, 700); /* MemProfileRate = 1: exact counts */
    assert_i64(retained_alloc, 0);
    cr_assert_geq(retained_live, 300, "the live objects allocated before the base are gone from the delta");
    perftools__profiles__profile__free_unpacked(d, NULL);
    pprofio_bytes_free(&out);
    blob_free(&b);
    blob_free(&c);
}

LTest(pprof, heap_samples_of_one_stack_are_told_apart_by_their_labels) {
    blob b = load("heap_base.pb"), c = load("heap_cur.pb");
    pprofio_bytes out = run_pair(&b, &c, "heap");
    Prof *d = unpack_ok(out.p, out.len, "delta");
    /* allocSizes allocates 16 B to 512 B from one line: one stack, six "bytes" labels. */
    char *stack = NULL;
    size_t n = 0;
    int64_t sizes_seen = 0;
    for (size_t i = 0; i < d->n_sample; i++) {
        const Sample *s = d->sample[i];
        if (!sample_calls(d, s, "main.allocSizes"))
            continue;
        char *k = stack_key(d, s, 0);
        if (!stack)
            stack = k;
        else {
            cr_assert_str_eq(k, stack, "allocSizes has two different stacks");
            free(k);
        }
        cr_assert_eq(s->n_label, 1);
        cr_assert_str_eq(str_of(d, s->label[0]->key), "bytes");
        sizes_seen |= s->label[0]->num;
        n++;
    }
    cr_assert_geq(n, 6, "%zu samples of allocSizes; want one per size class", n);
    cr_assert_eq(sizes_seen & 0x3f0, 0x3f0, "sizes seen: %llx", (long long)sizes_seen);
    free(stack);
    perftools__profiles__profile__free_unpacked(d, NULL);
    pprofio_bytes_free(&out);
    blob_free(&b);
    blob_free(&c);
}

LTest(pprof, mutex_and_block_deltas_name_only_the_contention_of_the_window) {
    struct {
        const char *kind, *between, *growing, *before_only;
    } cases[] = {{"mutex", "main.contendBetween", "main.contendGrowing", "main.contendOnce"},
                 {"block", "main.blockBetweenOnSelect", "main.blockGrowingOnChan", "main.blockOnceOnChan"}};
    for (size_t i = 0; i < 2; i++) {
        char bn[64], cn[64];
        snprintf(bn, sizeof bn, "%s_base.pb", cases[i].kind);
        snprintf(cn, sizeof cn, "%s_cur.pb", cases[i].kind);
        blob b = load(bn), c = load(cn);
        pprofio_bytes out = run_pair(&b, &c, cases[i].kind);
        Prof *d = unpack_ok(out.p, out.len, "delta");
        cr_assert_gt(samples_calling(d, cases[i].between), 0, "%s: %s missing", cases[i].kind, cases[i].between);
        cr_assert_gt(samples_calling(d, cases[i].growing), 0, "%s: %s missing", cases[i].kind, cases[i].growing);
        cr_assert_eq(samples_calling(d, cases[i].before_only), 0, "%s: %s is still there", cases[i].kind,
                     cases[i].before_only);
        long k = value_index(d, "contentions");
        cr_assert_geq(k, 0);
        for (size_t s = 0; s < d->n_sample; s++)
            cr_assert_gt(d->sample[s]->value[k], 0, "%s: a sample with %lld contentions", cases[i].kind,
                         (long long)d->sample[s]->value[k]);
        cr_assert_lt(d->n_mapping, 3, "%s: unused mappings ([vdso], [vsyscall]) were kept", cases[i].kind);
        perftools__profiles__profile__free_unpacked(d, NULL);
        pprofio_bytes_free(&out);
        blob_free(&b);
        blob_free(&c);
    }
}

LTest(pprof, a_snapshot_against_itself_keeps_only_live_memory) {
    const char *names[] = {"heap_cur.pb", "mutex_cur.pb", "block_cur.pb"};
    for (size_t i = 0; i < 3; i++) {
        blob c = load(names[i]);
        pprofio_baseline *base = baseline_of(&c);
        delta_result r = delta(c.p, c.n, &base, 1, SIZE_MAX);
        assert_status(r.rc, PPROFIO_OK);
        cr_assert_eq(r.is_delta, 1);
        expect_tidy(r.out.p, r.out.len, names[i]);
        Prof *d = unpack_ok(r.out.p, r.out.len, names[i]), *pc = unpack_ok(c.p, c.n, names[i]);
        size_t live = 0; /* samples holding live memory */
        for (size_t k = 0; k < pc->n_sample; k++) {
            int l = 0;
            for (size_t v = 0; v < pc->n_sample_type; v++)
                l |= !is_cumulative(str_of(pc, pc->sample_type[v]->type)) && pc->sample[k]->value[v] != 0;
            live += (size_t)l;
        }
        assert_i64(d->n_sample, live);
        for (size_t s = 0; s < d->n_sample; s++)
            for (size_t v = 0; v < d->n_sample_type; v++)
                if (is_cumulative(str_of(d, d->sample_type[v]->type)))
                    assert_i64(d->sample[s]->value[v], 0);
        if (i > 0)
            assert_i64(d->n_sample, 0); /* mutex and block hold nothing live */
        perftools__profiles__profile__free_unpacked(d, NULL);
        perftools__profiles__profile__free_unpacked(pc, NULL);
        pprofio_bytes_free(&r.out);
        pprofio_baseline_free(base);
        blob_free(&c);
    }
}

LTest(pprof, the_delta_parses_with_go_tool_pprof) {
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++) {
        char bn[64], cn[64];
        snprintf(bn, sizeof bn, "%s_base.pb", kinds[i]);
        snprintf(cn, sizeof cn, "%s_cur.pb", kinds[i]);
        blob b = load(bn), c = load(cn);
        pprofio_baseline *base = baseline_of(&b);
        delta_result r = delta(c.p, c.n, &base, 1, SIZE_MAX);
        assert_status(r.rc, PPROFIO_OK);
        int status = 0;
        char *text = go_pprof_raw(r.out.p, r.out.len, &status);
        if (!text) {
            pprofio_bytes_free(&r.out);
            pprofio_baseline_free(base);
            blob_free(&b);
            blob_free(&c);
            cr_skip_test("go is not on PATH");
        }
        cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "%s: go tool pprof -raw failed:\n%s", kinds[i], text);
        assert_contains(text, "Samples:");
        assert_contains(text, i == 0 ? "main.allocBetween" : i == 1 ? "main.contendBetween" : "main.blockBetweenOnSelect");
        free(text);
        pprofio_bytes_free(&r.out);
        pprofio_baseline_free(base);
        blob_free(&b);
        blob_free(&c);
    }
}

/* ---- baselines -------------------------------------------------------------------- */

LTest(pprof, the_first_snapshot_gives_no_delta_but_a_baseline) {
    blob b = load("heap_base.pb");
    pprofio_baseline *base = NULL;
    delta_result r = delta(b.p, b.n, &base, 1, SIZE_MAX);
    assert_status(r.rc, PPROFIO_OK);
    cr_assert_eq(r.is_delta, 0);
    cr_assert_eq(r.out.len, 0);
    cr_assert_not_null(base);
    cr_assert_gt(pprofio_baseline_bytes(base), 0);
    assert_i64(pprofio_baseline_bytes(NULL), 0);
    pprofio_bytes_free(&r.out);
    pprofio_baseline_free(base);
    pprofio_baseline_free(NULL);
    blob_free(&b);
}

LTest(pprof, emit_0_replaces_the_baseline_without_a_delta) {
    blob b = load("heap_base.pb"), c = load("heap_cur.pb");
    pprofio_baseline *base = baseline_of(&b);
    delta_result r = delta(c.p, c.n, &base, 0, SIZE_MAX);
    assert_status(r.rc, PPROFIO_OK);
    cr_assert_eq(r.is_delta, 0);
    cr_assert_eq(r.out.len, 0);
    cr_assert_not_null(base);
    pprofio_bytes_free(&r.out);
    /* The baseline is now heap_cur: heap_cur against it keeps only live stacks, all with zero allocations. */
    r = delta(c.p, c.n, &base, 1, SIZE_MAX);
    assert_status(r.rc, PPROFIO_OK);
    cr_assert_eq(r.is_delta, 1);
    Prof *d = unpack_ok(r.out.p, r.out.len, "delta");
    long ao = value_index(d, "alloc_objects");
    for (size_t i = 0; i < d->n_sample; i++)
        assert_i64(d->sample[i]->value[ao], 0);
    perftools__profiles__profile__free_unpacked(d, NULL);
    pprofio_bytes_free(&r.out);
    pprofio_baseline_free(base);
    blob_free(&b);
    blob_free(&c);
}

LTest(pprof, a_baseline_of_other_sample_types_gives_no_delta_and_is_replaced) {
    blob heap = load("heap_base.pb"), mutex = load("mutex_cur.pb"), gor = load("goroutine_cur.pb");
    pprofio_baseline *base = baseline_of(&heap);
    delta_result r = delta(mutex.p, mutex.n, &base, 1, SIZE_MAX);
    assert_status(r.rc, PPROFIO_OK);
    cr_assert_eq(r.is_delta, 0, "a mutex profile was subtracted from a heap baseline");
    cr_assert_eq(r.out.len, 0);
    cr_assert_not_null(base);
    pprofio_bytes_free(&r.out);
    r = delta(mutex.p, mutex.n, &base, 1, SIZE_MAX); /* the baseline is the mutex profile now */
    assert_status(r.rc, PPROFIO_OK);
    cr_assert_eq(r.is_delta, 1);
    Prof *d = unpack_ok(r.out.p, r.out.len, "delta");
    assert_i64(d->n_sample, 0);
    perftools__profiles__profile__free_unpacked(d, NULL);
    pprofio_bytes_free(&r.out);
    /* The other way round, and a profile without cumulative values (goroutines). */
    r = delta(heap.p, heap.n, &base, 1, SIZE_MAX);
    assert_status(r.rc, PPROFIO_OK);
    cr_assert_eq(r.is_delta, 0);
    pprofio_bytes_free(&r.out);
    r = delta(gor.p, gor.n, &base, 1, SIZE_MAX);
    assert_status(r.rc, PPROFIO_OK);
    cr_assert_eq(r.is_delta, 0);
    r = delta(gor.p, gor.n, &base, 1, SIZE_MAX);
    assert_status(r.rc, PPROFIO_OK);
    cr_assert_eq(r.is_delta, 0, "a goroutine profile has nothing cumulative to subtract");
    pprofio_bytes_free(&r.out);
    pprofio_baseline_free(base);
    blob_free(&heap);
    blob_free(&mutex);
    blob_free(&gor);
}

LTest(pprof, a_baseline_larger_than_max_base_bytes_is_not_kept) {
    blob b = load("heap_base.pb"), c = load("heap_cur.pb");
    pprofio_baseline *base = baseline_of(&b);
    size_t size = pprofio_baseline_bytes(base);
    pprofio_baseline_free(base);
    base = NULL;
    delta_result r = delta(b.p, b.n, &base, 1, size); /* exactly the limit: kept */
    assert_status(r.rc, PPROFIO_OK);
    cr_assert_not_null(base, "a baseline of exactly max_base_bytes (%zu) was dropped", size);
    pprofio_bytes_free(&r.out);
    r = delta(b.p, b.n, &base, 1, size - 1); /* one byte over: dropped, and the old one freed */
    assert_status(r.rc, PPROFIO_OK);
    cr_assert_null(base, "a baseline over max_base_bytes was kept");
    pprofio_bytes_free(&r.out);
    r = delta(c.p, c.n, &base, 1, 0);
    assert_status(r.rc, PPROFIO_OK);
    cr_assert_eq(r.is_delta, 0, "a delta without a baseline");
    cr_assert_null(base);
    pprofio_bytes_free(&r.out);
    blob_free(&b);
    blob_free(&c);
}

/* ---- synthetic profiles: labels, ids, names, sums ---------------------------------- */

typedef struct {
    size_t n_locs;
    uint64_t locs[4]; /* location ids */
    int64_t v[2];     /* contentions, delay */
    const char *lkey, *lstr;
    int64_t lnum;
} synth_sample;

/* A second string label of a synth_sample, written after its first. */
typedef struct {
    const char *key, *str;
} synth_label;

typedef struct {
    uint64_t id, address; /* address 0: known by its function and line */
    const char *fn;
    int64_t line;
} synth_loc;

typedef struct {
    const char *s[64];
    size_t n;
} strtab;

static int64_t intern(strtab *t, const char *s) {
    for (size_t i = 0; i < t->n; i++)
        if (!strcmp(t->s[i], s))
            return (int64_t)i;
    cr_assert_lt(t->n, 64);
    t->s[t->n] = s;
    return (int64_t)t->n++;
}

/*
 * synth_at builds a mutex-like profile (contentions, delay) from locations
 * and samples, taken at time_nanos (0: no time); second (NULL: none) gives
 * each labelled sample a second label.
 */
static blob synth_at(const synth_loc *locs, size_t nl, const synth_sample *ss, size_t ns, const synth_label *second,
                     int64_t time_nanos) {
    strtab t = {{""}, 1};
    ValueType vt[2] = {PERFTOOLS__PROFILES__VALUE_TYPE__INIT, PERFTOOLS__PROFILES__VALUE_TYPE__INIT};
    vt[0].type = intern(&t, "contentions"), vt[0].unit = intern(&t, "count");
    vt[1].type = intern(&t, "delay"), vt[1].unit = intern(&t, "nanoseconds");
    ValueType *vtp[2] = {&vt[0], &vt[1]};
    Loc l[8];
    Loc *lp[8];
    Fn f[8];
    Fn *fp[8];
    Line ln[8];
    Line *lnp[8];
    cr_assert_leq(nl, 8);
    for (size_t i = 0; i < nl; i++) {
        perftools__profiles__location__init(&l[i]);
        perftools__profiles__function__init(&f[i]);
        perftools__profiles__line__init(&ln[i]);
        f[i].id = i + 1;
        f[i].name = intern(&t, locs[i].fn);
        f[i].filename = intern(&t, "synth.go");
        ln[i].function_id = f[i].id;
        ln[i].line = locs[i].line;
        lnp[i] = &ln[i];
        l[i].id = locs[i].id;
        l[i].address = locs[i].address;
        l[i].n_line = 1;
        l[i].line = &lnp[i];
        lp[i] = &l[i];
        fp[i] = &f[i];
    }
    Sample s[8];
    Sample *sp[8];
    Label lb[8][2];
    Label *lbp[8][2];
    cr_assert_leq(ns, 8);
    for (size_t i = 0; i < ns; i++) {
        perftools__profiles__sample__init(&s[i]);
        s[i].n_location_id = ss[i].n_locs;
        s[i].location_id = (uint64_t *)ss[i].locs;
        s[i].n_value = 2;
        s[i].value = (int64_t *)ss[i].v;
        if (ss[i].lkey) {
            perftools__profiles__label__init(&lb[i][0]);
            lb[i][0].key = intern(&t, ss[i].lkey);
            lb[i][0].str = ss[i].lstr ? intern(&t, ss[i].lstr) : 0;
            lb[i][0].num = ss[i].lnum;
            lbp[i][0] = &lb[i][0];
            s[i].n_label = 1;
            s[i].label = lbp[i];
        }
        if (ss[i].lkey && second) {
            perftools__profiles__label__init(&lb[i][1]);
            lb[i][1].key = intern(&t, second[i].key);
            lb[i][1].str = intern(&t, second[i].str);
            lbp[i][1] = &lb[i][1];
            s[i].n_label = 2;
        }
        sp[i] = &s[i];
    }
    Prof p = PERFTOOLS__PROFILES__PROFILE__INIT;
    p.n_sample_type = 2;
    p.sample_type = vtp;
    p.n_sample = ns;
    p.sample = sp;
    p.n_location = nl;
    p.location = lp;
    p.n_function = nl;
    p.function = fp;
    p.n_string_table = t.n;
    p.string_table = (char **)t.s;
    p.period = 1;
    p.time_nanos = time_nanos;
    return pack(&p);
}

static blob synth(const synth_loc *locs, size_t nl, const synth_sample *ss, size_t ns) {
    return synth_at(locs, nl, ss, ns, NULL, 0);
}

/* synth_delta returns the delta of cur against base, both synthetic. */
static Prof *synth_delta(const blob *b, const blob *c) {
    pprofio_baseline *base = baseline_of(b);
    delta_result r = delta(c->p, c->n, &base, 1, SIZE_MAX);
    cr_assert_eq(r.rc, PPROFIO_OK, "%s", r.err.msg);
    cr_assert_eq(r.is_delta, 1);
    expect_tidy(r.out.p, r.out.len, "synthetic delta");
    Prof *d = unpack_ok(r.out.p, r.out.len, "synthetic delta");
    pprofio_bytes_free(&r.out);
    pprofio_baseline_free(base);
    return d;
}

static const synth_loc two_frames[] = {{1, 0x1000, "main.leaf", 10}, {2, 0x2000, "main.root", 20}};

LTest(pprof, samples_of_one_stack_with_different_labels_are_subtracted_apart) {
    synth_sample bs[] = {{2, {1, 2}, {10, 100}, "worker", "a", 0},
                         {2, {1, 2}, {20, 200}, "worker", "b", 0},
                         {2, {1, 2}, {5, 50}, NULL, NULL, 0},
                         {2, {1, 2}, {7, 70}, "bytes", NULL, 16}};
    synth_sample cs[] = {{2, {1, 2}, {15, 150}, "worker", "a", 0}, {2, {1, 2}, {20, 200}, "worker", "b", 0},
                         {2, {1, 2}, {5, 50}, NULL, NULL, 0},      {2, {1, 2}, {1, 1}, "worker", "c", 0},
                         {2, {1, 2}, {7, 70}, "bytes", NULL, 16},  {2, {1, 2}, {3, 30}, "bytes", NULL, 32}};
    blob b = synth(two_frames, 2, bs, 4), c = synth(two_frames, 2, cs, 6);
    Prof *d = synth_delta(&b, &c);
    assert_i64(d->n_sample, 3);
    int seen = 0;
    for (size_t i = 0; i < d->n_sample; i++) {
        const Sample *s = d->sample[i];
        cr_assert_eq(s->n_label, 1);
        const char *k = str_of(d, s->label[0]->key), *v = str_of(d, s->label[0]->str);
        int64_t want0, want1;
        if (!strcmp(k, "worker") && !strcmp(v, "a"))
            want0 = 5, want1 = 50, seen |= 1;
        else if (!strcmp(k, "worker") && !strcmp(v, "c"))
            want0 = 1, want1 = 1, seen |= 2;
        else if (!strcmp(k, "bytes") && s->label[0]->num == 32)
            want0 = 3, want1 = 30, seen |= 4;
        else
            cr_assert_fail("unexpected sample %s=%s#%lld", k, v, (long long)s->label[0]->num);
        assert_i64(s->value[0], want0);
        assert_i64(s->value[1], want1);
    }
    assert_i64(seen, 7);
    perftools__profiles__profile__free_unpacked(d, NULL);
    blob_free(&b);
    blob_free(&c);
}

LTest(pprof, labels_are_a_set_so_the_same_labels_written_in_another_order_match) {
    /* google/pprof keys a sample by its sorted labels; the order they are written in means nothing. */
    synth_sample bs[] = {{2, {1, 2}, {10, 100}, "worker", "a", 0}, {2, {1, 2}, {4, 40}, "worker", "b", 0}};
    synth_label bl[] = {{"region", "eu"}, {"region", "eu"}};
    synth_sample cs[] = {{2, {1, 2}, {15, 150}, "region", "eu", 0}, {2, {1, 2}, {6, 60}, "worker", "b", 0}};
    synth_label cl[] = {{"worker", "a"}, {"region", "eu"}};
    blob b = synth_at(two_frames, 2, bs, 2, bl, 0), c = synth_at(two_frames, 2, cs, 2, cl, 0);
    Prof *d = synth_delta(&b, &c);
    assert_i64(d->n_sample, 2);
    for (size_t i = 0; i < d->n_sample; i++) {
        const Sample *s = d->sample[i];
        cr_assert_eq(s->n_label, 2);
        int is_a = !strcmp(str_of(d, s->label[0]->str), "a") || !strcmp(str_of(d, s->label[1]->str), "a");
        assert_i64(s->value[0], is_a ? 5 : 2);
        assert_i64(s->value[1], is_a ? 50 : 20);
    }
    perftools__profiles__profile__free_unpacked(d, NULL);
    blob_free(&b);
    blob_free(&c);
}

LTest(pprof, a_delta_carries_its_window_start_as_time_and_its_length_as_duration) {
    const int64_t t1 = INT64_C(1795988000) * SEC + 250 * MS, t2 = t1 + 10 * SEC + 5 * MS;
    synth_sample bs[] = {{2, {1, 2}, {10, 100}, NULL, NULL, 0}};
    synth_sample cs[] = {{2, {1, 2}, {12, 130}, NULL, NULL, 0}};
    blob b = synth_at(two_frames, 2, bs, 1, NULL, t1), c = synth_at(two_frames, 2, cs, 1, NULL, t2);
    Prof *d = synth_delta(&b, &c);
    assert_i64(d->time_nanos, t1);
    assert_i64(d->duration_nanos, t2 - t1);
    perftools__profiles__profile__free_unpacked(d, NULL);
    blob_free(&b);
    blob_free(&c);
}

LTest(pprof, stacks_are_matched_by_address_not_by_location_id) {
    /* The second dump numbers the same two frames 7 and 3. */
    static const synth_loc renumbered[] = {{7, 0x1000, "main.leaf", 10}, {3, 0x2000, "main.root", 20}};
    synth_sample bs[] = {{2, {1, 2}, {10, 100}, NULL, NULL, 0}, {1, {2}, {4, 40}, NULL, NULL, 0}};
    synth_sample cs[] = {{2, {7, 3}, {12, 130}, NULL, NULL, 0}, {1, {3}, {4, 40}, NULL, NULL, 0},
                         {2, {3, 7}, {1, 1}, NULL, NULL, 0}};
    blob b = synth(two_frames, 2, bs, 2), c = synth(renumbered, 2, cs, 3);
    Prof *d = synth_delta(&b, &c);
    assert_i64(d->n_sample, 2);
    assert_i64(d->sample[0]->value[0], 2);
    assert_i64(d->sample[0]->value[1], 30);
    assert_i64(d->sample[1]->value[0], 1); /* the reversed stack is another stack */
    perftools__profiles__profile__free_unpacked(d, NULL);
    blob_free(&b);
    blob_free(&c);
}

LTest(pprof, frames_without_an_address_are_matched_by_function_and_line) {
    static const synth_loc base_locs[] = {{1, 0, "main.a", 10}, {2, 0, "main.b", 20}};
    static const synth_loc cur_locs[] = {{5, 0, "main.b", 20}, {6, 0, "main.a", 10}, {9, 0, "main.a", 11}};
    synth_sample bs[] = {{2, {1, 2}, {10, 100}, NULL, NULL, 0}};
    synth_sample cs[] = {{2, {6, 5}, {11, 110}, NULL, NULL, 0}, {2, {9, 5}, {10, 100}, NULL, NULL, 0}};
    blob b = synth(base_locs, 2, bs, 1), c = synth(cur_locs, 3, cs, 2);
    Prof *d = synth_delta(&b, &c);
    assert_i64(d->n_sample, 2);
    assert_i64(d->sample[0]->value[0], 1);   /* main.a:10 < main.b:20 matched */
    assert_i64(d->sample[1]->value[0], 10);  /* main.a:11 is another line */
    perftools__profiles__profile__free_unpacked(d, NULL);
    blob_free(&b);
    blob_free(&c);
}

LTest(pprof, duplicate_samples_of_one_stack_are_summed) {
    synth_sample bs[] = {{2, {1, 2}, {6, 60}, NULL, NULL, 0}, {2, {1, 2}, {9, 90}, NULL, NULL, 0}};
    synth_sample cs[] = {{2, {1, 2}, {10, 100}, NULL, NULL, 0}, {2, {1, 2}, {10, 100}, NULL, NULL, 0}};
    blob b = synth(two_frames, 2, bs, 2), c = synth(two_frames, 2, cs, 2);
    Prof *d = synth_delta(&b, &c);
    int64_t sum0 = 0, sum1 = 0;
    for (size_t i = 0; i < d->n_sample; i++)
        sum0 += d->sample[i]->value[0], sum1 += d->sample[i]->value[1];
    assert_i64(sum0, 5);
    assert_i64(sum1, 50);
    perftools__profiles__profile__free_unpacked(d, NULL);
    blob_free(&b);
    blob_free(&c);
}

LTest(pprof, values_at_the_ends_of_int64_do_not_overflow) {
    /* Hostile values: the sums and differences wrap (no undefined behaviour), nothing crashes. */
    synth_sample bs[] = {{2, {1, 2}, {-1, INT64_MIN}, NULL, NULL, 0}, {2, {1, 2}, {INT64_MIN, -1}, NULL, NULL, 0}};
    synth_sample cs[] = {{2, {1, 2}, {INT64_MAX, INT64_MAX}, NULL, NULL, 0},
                         {2, {1, 2}, {INT64_MAX, INT64_MAX}, NULL, NULL, 0},
                         {1, {1}, {INT64_MAX, 1}, NULL, NULL, 0},
                         {1, {1}, {INT64_MAX, 1}, NULL, NULL, 0}};
    blob b = synth(two_frames, 2, bs, 2), c = synth(two_frames, 2, cs, 4);
    pprofio_baseline *base = baseline_of(&b);
    delta_result r = delta(c.p, c.n, &base, 1, SIZE_MAX);
    assert_status(r.rc, PPROFIO_OK);
    cr_assert_eq(r.is_delta, 1);
    pprofio_bytes_free(&r.out);
    pprofio_baseline_free(base);
    pprofio_stack_count *sc;
    size_t n;
    int64_t total;
    pprofio_error err = {0};
    assert_status(pprofio_pprof_stacks(c.p, c.n, &sc, &n, &total, &err), PPROFIO_OK);
    assert_i64(n, 2);
    pprofio_free(sc);
    blob_free(&b);
    blob_free(&c);
}

/* synth_many builds a mutex-like profile of n samples on distinct two-frame stacks
 * (over 64 locations); sample i has values (i % 7 + bump(i), 1000 * that). */
static blob synth_many(size_t n, int bumped) {
    enum { NL = 64 };
    strtab t = {{""}, 1};
    ValueType vt[2] = {PERFTOOLS__PROFILES__VALUE_TYPE__INIT, PERFTOOLS__PROFILES__VALUE_TYPE__INIT};
    vt[0].type = intern(&t, "contentions"), vt[0].unit = intern(&t, "count");
    vt[1].type = intern(&t, "delay"), vt[1].unit = intern(&t, "nanoseconds");
    ValueType *vtp[2] = {&vt[0], &vt[1]};
    int64_t fname = intern(&t, "main.f");
    Loc l[NL];
    Loc *lp[NL];
    Fn f = PERFTOOLS__PROFILES__FUNCTION__INIT;
    Fn *fp = &f;
    f.id = 1;
    f.name = fname;
    Line ln[NL];
    Line *lnp[NL];
    for (size_t i = 0; i < NL; i++) {
        perftools__profiles__location__init(&l[i]);
        perftools__profiles__line__init(&ln[i]);
        ln[i].function_id = 1;
        ln[i].line = (int64_t)i;
        lnp[i] = &ln[i];
        l[i].id = i + 1;
        l[i].address = 0x400000 + 16 * i;
        l[i].n_line = 1;
        l[i].line = &lnp[i];
        lp[i] = &l[i];
    }
    Sample *s = calloc(n, sizeof *s);
    Sample **sp = calloc(n, sizeof *sp);
    uint64_t *ids = calloc(2 * n, sizeof *ids);
    int64_t *vals = calloc(2 * n, sizeof *vals);
    cr_assert(s && sp && ids && vals);
    for (size_t i = 0; i < n; i++) {
        perftools__profiles__sample__init(&s[i]);
        ids[2 * i] = i % NL + 1;
        ids[2 * i + 1] = (i / NL) % NL + 1; /* distinct pairs while n <= NL * NL */
        s[i].n_location_id = 2;
        s[i].location_id = &ids[2 * i];
        vals[2 * i] = (int64_t)(i % 7) + (bumped && i % 3 == 0 ? 5 : 0);
        vals[2 * i + 1] = 1000 * vals[2 * i];
        s[i].n_value = 2;
        s[i].value = &vals[2 * i];
        sp[i] = &s[i];
    }
    Prof p = PERFTOOLS__PROFILES__PROFILE__INIT;
    p.n_sample_type = 2;
    p.sample_type = vtp;
    p.n_sample = n;
    p.sample = sp;
    p.n_location = NL;
    p.location = lp;
    p.n_function = 1;
    p.function = &fp;
    p.n_string_table = t.n;
    p.string_table = (char **)t.s;
    blob b = pack(&p);
    free(s);
    free(sp);
    free(ids);
    free(vals);
    return b;
}

LTest(pprof, thousands_of_stacks_grow_the_baseline_table_and_still_match) {
    /* 4000 keys: the baseline's hash table (1024 slots at first) is rebuilt twice. */
    blob b = synth_many(3000, 0), c = synth_many(4000, 1);
    pprofio_baseline *base = baseline_of(&b);
    delta_result r = delta(c.p, c.n, &base, 1, SIZE_MAX);
    assert_status(r.rc, PPROFIO_OK);
    cr_assert_eq(r.is_delta, 1);
    expect_tidy(r.out.p, r.out.len, "4000 stacks");
    expect_delta_of(&b, &c, &r.out, "4000 stacks");
    Prof *d = unpack_ok(r.out.p, r.out.len, "4000 stacks");
    /* kept: the 1000 bumped of the first 3000, and the new ones (1000, less those with 0 values) */
    size_t want = 1000;
    for (size_t i = 3000; i < 4000; i++)
        want += (i % 7) + (i % 3 == 0 ? 5 : 0) != 0;
    assert_i64(d->n_sample, want);
    perftools__profiles__profile__free_unpacked(d, NULL);
    pprofio_bytes_free(&r.out);
    pprofio_baseline_free(base);
    blob_free(&b);
    blob_free(&c);
}

LTest(pprof, a_stack_too_deep_to_key_is_sent_whole_and_the_others_still_subtract) {
    /* 4200 frames with addresses: more than the 4096 words a key may have. */
    enum { DEEP = 4200 };
    blob b = load("mutex_base.pb");
    Prof *p = unpack_ok(b.p, b.n, "mutex");
    Sample *s0 = p->sample[0];
    uint64_t *keep = s0->location_id;
    size_t keep_n = s0->n_location_id;
    uint64_t *deep = malloc(DEEP * sizeof *deep);
    for (size_t i = 0; i < DEEP; i++)
        deep[i] = keep[i % keep_n];
    s0->location_id = deep;
    s0->n_location_id = DEEP;
    blob m = pack(p);
    s0->location_id = keep;
    s0->n_location_id = keep_n;
    pprofio_baseline *base = baseline_of(&m);
    delta_result r = delta(m.p, m.n, &base, 1, SIZE_MAX); /* against itself */
    assert_status(r.rc, PPROFIO_OK);
    cr_assert_eq(r.is_delta, 1);
    Prof *d = unpack_ok(r.out.p, r.out.len, "deep");
    assert_i64(d->n_sample, 1); /* only the deep one, whole */
    assert_i64(d->sample[0]->n_location_id, DEEP);
    assert_i64(d->sample[0]->value[0], p->sample[0]->value[0]);
    expect_tidy(r.out.p, r.out.len, "deep");
    perftools__profiles__profile__free_unpacked(d, NULL);
    pprofio_bytes_free(&r.out);
    pprofio_baseline_free(base);
    /* pprofio_pprof_stacks gives it key 0 and still counts it. */
    pprofio_stack_count *sc;
    size_t n;
    int64_t total;
    pprofio_error err = {0};
    assert_status(pprofio_pprof_stacks(m.p, m.n, &sc, &n, &total, &err), PPROFIO_OK);
    assert_i64(sc[0].key, 0);
    int64_t sum = 0;
    for (size_t i = 0; i < p->n_sample; i++)
        sum += p->sample[i]->value[0];
    assert_i64(total, sum);
    pprofio_free(sc);
    free(deep);
    blob_free(&m);
    perftools__profiles__profile__free_unpacked(p, NULL);
    blob_free(&b);
}

LTest(pprof, input_that_decodes_to_far_more_memory_than_its_size_is_refused) {
    /* 200 000 empty locations: 2 bytes each on the wire, ~90 bytes each decoded (45x). */
    blob base = load("mutex_base.pb");
    size_t n = 400000;
    uint8_t *raw = malloc(n);
    for (size_t i = 0; i < n; i += 2)
        raw[i] = 0x22, raw[i + 1] = 0x00;
    expect_format_error(raw, n, &base, "200000 empty locations");
    pprofio_error err = {0};
    pprofio_pprof_check(raw, n, &err);
    assert_contains(err.msg, "larger than its bytes allow");
    /* 200 000 empty samples: noted where they lie (8 bytes each), refused for their missing values. */
    for (size_t i = 0; i < n; i += 2)
        raw[i] = 0x12, raw[i + 1] = 0x00;
    expect_format_error(raw, n, &base, "200000 empty samples");
    free(raw);
    blob_free(&base);
}

/* ---- goroutine stacks --------------------------------------------------------------- */

/* expected_desc names up to 3 frames outside the runtime, leaf first, as pprof.h promises. */
static void expected_desc(const Prof *p, const Sample *s, char *out, size_t cap) {
    size_t used = 0, frames = 0;
    out[0] = '\0';
    for (size_t i = 0; i < s->n_location_id && frames < 3; i++) {
        const Loc *l = loc_by_id(p, s->location_id[i]);
        for (size_t k = 0; k < l->n_line && frames < 3; k++) {
            const char *name = str_of(p, fn_by_id(p, l->line[k]->function_id)->name);
            if (!strncmp(name, "runtime.", 8) || !strncmp(name, "internal/", 9))
                continue;
            used += (size_t)snprintf(out + used, cap - used, "%s%s", frames ? " < " : "", name);
            frames++;
        }
    }
    if (!frames)
        snprintf(out, cap, "(runtime)");
}

static void expect_stacks(const char *name, const char *worker, int64_t worker_count) {
    blob g = load(name);
    pprofio_stack_count *sc;
    size_t n;
    int64_t total;
    pprofio_error err = {0};
    assert_status(pprofio_pprof_stacks(g.p, g.n, &sc, &n, &total, &err), PPROFIO_OK);
    Prof *p = unpack_ok(g.p, g.n, name);
    int64_t sum = 0;
    for (size_t i = 0; i < p->n_sample; i++)
        sum += p->sample[i]->value[0];
    assert_i64(total, sum);
    /* One entry per stack: samples of the same stack under different labels are merged. */
    stack_map by_stack = map_of(p, 0), by_labels = map_of(p, 1);
    cr_assert_lt(by_stack.n, by_labels.n, "%s: no stack has samples under several labels", name);
    cr_assert_eq(n, by_stack.n, "%s: %zu stacks reported, the profile has %zu stacks (%zu with labels)", name, n,
                 by_stack.n, by_labels.n);
    for (size_t i = 1; i < n; i++)
        cr_assert_lt(sc[i - 1].key, sc[i].key, "%s: not sorted by key, or a key twice", name);
    /* Each reported stack is one of the profile's, with its summed count and its description. */
    uint8_t *taken = calloc(by_stack.n + 1, 1);
    int64_t reported = 0;
    int found_worker = 0;
    for (size_t i = 0; i < n; i++) {
        reported += sc[i].count;
        int matched = 0;
        for (size_t k = 0; k < by_stack.n && !matched; k++) {
            if (taken[k] || by_stack.rows[k].v[0] != sc[i].count)
                continue;
            /* the description of any sample of that stack */
            char want[192];
            for (size_t s = 0; s < p->n_sample; s++) {
                char *key = stack_key(p, p->sample[s], 0);
                int same = !strcmp(key, by_stack.rows[k].key);
                free(key);
                if (same) {
                    expected_desc(p, p->sample[s], want, sizeof want);
                    break;
                }
            }
            if (!strcmp(want, sc[i].desc))
                taken[k] = 1, matched = 1;
        }
        cr_assert(matched, "%s: stack \"%s\" x%lld matches no stack of the profile", name, sc[i].desc,
                  (long long)sc[i].count);
        cr_assert(!strstr(sc[i].desc, "runtime.") || !strncmp(sc[i].desc, "runtime/", 8), "%s: desc \"%s\"", name,
                  sc[i].desc);
        if (!strncmp(sc[i].desc, worker, strlen(worker))) {
            found_worker = 1;
            assert_i64(sc[i].count, worker_count);
        }
    }
    assert_i64(reported, total);
    cr_assert(found_worker, "%s: no stack described as %s...", name, worker);
    free(taken);
    map_free(&by_stack);
    map_free(&by_labels);
    perftools__profiles__profile__free_unpacked(p, NULL);
    pprofio_free(sc);
    blob_free(&g);
}

LTest(pprof, goroutine_stacks_total_the_counts_merge_labels_sort_by_key_and_name_user_frames) {
    /* parkedWorker: 3 goroutines labelled worker=a, 2 worker=b, 2 without labels (and 1 worker=c later). */
    expect_stacks("goroutine_base.pb", "main.parkedWorker", 7);
    expect_stacks("goroutine_cur.pb", "main.parkedWorker", 8);
    expect_stacks("goroutine_cur.pb", "main.leakyWorker", 20);
}

LTest(pprof, stacks_of_a_profile_without_samples_or_values) {
    static const synth_loc none[] = {{1, 0x1000, "main.leaf", 1}};
    blob b = synth(none, 1, NULL, 0);
    pprofio_stack_count *sc;
    size_t n;
    int64_t total;
    pprofio_error err = {0};
    assert_status(pprofio_pprof_stacks(b.p, b.n, &sc, &n, &total, &err), PPROFIO_OK);
    assert_i64(n, 0);
    assert_i64(total, 0);
    pprofio_free(sc);
    Prof *p = unpack_ok(b.p, b.n, "synth");
    p->n_sample_type = 0; /* no value at all: not a goroutine profile */
    blob nov = pack(p);
    p->n_sample_type = 2;
    perftools__profiles__profile__free_unpacked(p, NULL);
    assert_status(pprofio_pprof_stacks(nov.p, nov.n, &sc, &n, &total, &err), PPROFIO_ERR_FORMAT);
    cr_assert_null(sc);
    blob_free(&nov);
    blob_free(&b);
}

/* ---- truncated, corrupt and hostile input ---------------------------------------------- */

/*
 * cut_points picks at most TRUNC_CUTS lengths to cut a profile of n bytes
 * to: every one when there are that few, else the first and last
 * TRUNC_EDGE (where the header fields and the last message end) and a
 * seeded random spread between them, so the work is bounded whatever the
 * profile's size. The spread is the same on every run.
 */
#define TRUNC_CUTS 768
#define TRUNC_EDGE 192
static size_t cut_points(size_t n, size_t *out, uint64_t seed) {
    if (n <= TRUNC_CUTS) {
        for (size_t i = 0; i < n; i++)
            out[i] = i;
        return n;
    }
    size_t k = 0;
    for (size_t i = 0; i < TRUNC_EDGE; i++) {
        out[k++] = i;
        out[k++] = n - 1 - i;
    }
    while (k < TRUNC_CUTS)
        out[k++] = TRUNC_EDGE + (size_t)(splitmix64(&seed) % (n - 2 * TRUNC_EDGE));
    return k;
}

LTest(pprof, truncations_of_real_profiles_at_every_kind_of_cut_are_refused) {
    static const char *const names[] = {"mutex_cur.pb", "goroutine_base.pb", "heap_base.pb"};
    static size_t cuts[TRUNC_CUTS];
    blob base = load("mutex_base.pb");
    for (size_t f = 0; f < 3; f++) {
        blob b = load(names[f]);
        size_t ncuts = cut_points(b.n, cuts, 20261201 + f);
        for (size_t c = 0; c < ncuts; c++) {
            size_t n = cuts[c];
            uint8_t *copy = malloc(n ? n : 1); /* exactly n bytes: ASan sees any read past the end */
            memcpy(copy, b.p, n);
            char what[128];
            snprintf(what, sizeof what, "%s cut to %zu of %zu bytes", names[f], n, b.n);
            expect_format_error(copy, n, &base, what);
            free(copy);
        }
        blob_free(&b);
    }
    blob_free(&base);
}

/*
 * expect_self_delta_empty: raw minus itself leaves no cumulative value in any
 * sample whose stack can be keyed (KEY_WORDS = 4096 words in pprof.c).
 */
static void expect_self_delta_empty(const uint8_t *raw, size_t n, const char *what) {
    pprofio_baseline *base = NULL;
    delta_result r = delta(raw, n, &base, 1, SIZE_MAX);
    assert_status(r.rc, PPROFIO_OK);
    pprofio_bytes_free(&r.out);
    r = delta(raw, n, &base, 1, SIZE_MAX);
    assert_status(r.rc, PPROFIO_OK);
    if (r.is_delta) {
        Prof *d = unpack_ok(r.out.p, r.out.len, what);
        for (size_t i = 0; i < d->n_sample; i++) {
            const Sample *s = d->sample[i];
            if (s->n_location_id * 2 + s->n_label * 3 + 1 > 4096)
                continue;
            for (size_t v = 0; v < s->n_value; v++)
                if (is_cumulative(str_of(d, d->sample_type[v]->type)))
                    cr_assert_eq(s->value[v], 0, "%s: minus itself, sample %zu keeps %s = %lld", what, i,
                                 str_of(d, d->sample_type[v]->type), (long long)s->value[v]);
        }
        perftools__profiles__profile__free_unpacked(d, NULL);
    }
    pprofio_bytes_free(&r.out);
    pprofio_baseline_free(base);
}

/*
 * run_any feeds raw to every entry point and checks that the outcome is
 * consistent: an error drops the baseline, a success is a tidy delta, and
 * a profile that decodes, minus itself, keeps no cumulative value.
 */
static int run_any(const uint8_t *raw, size_t n, const blob *good_base, const char *what) {
    pprofio_error err = {0};
    int check = pprofio_pprof_check(raw, n, &err);
    cr_assert(check == PPROFIO_OK || check == PPROFIO_ERR_FORMAT, "%s: check returned %d", what, check);
    pprofio_baseline *base = good_base ? baseline_of(good_base) : NULL;
    delta_result r = delta(raw, n, &base, 1, SIZE_MAX);
    cr_assert_eq(r.rc, check, "%s: delta returned %d, check %d", what, r.rc, check);
    if (r.rc == PPROFIO_OK) {
        cr_assert_not_null(base, "%s", what);
        if (r.is_delta)
            expect_tidy(r.out.p, r.out.len, what);
    } else {
        cr_assert_null(base, "%s: the baseline survived an error", what);
        cr_assert_eq(r.is_delta, 0);
        cr_assert_eq(r.out.len, 0);
    }
    pprofio_bytes_free(&r.out);
    pprofio_baseline_free(base);
    if (check == PPROFIO_OK)
        expect_self_delta_empty(raw, n, what);
    pprofio_stack_count *sc;
    size_t nsc;
    int64_t total;
    int rc = pprofio_pprof_stacks(raw, n, &sc, &nsc, &total, &err);
    cr_assert(rc == PPROFIO_OK || rc == PPROFIO_ERR_FORMAT, "%s: stacks returned %d", what, rc);
    if (check != PPROFIO_OK)
        cr_assert_eq(rc, PPROFIO_ERR_FORMAT, "%s: stacks accepted what check refused", what);
    for (size_t i = 1; rc == PPROFIO_OK && i < nsc; i++)
        cr_assert_lt(sc[i - 1].key, sc[i].key);
    pprofio_free(sc);
    return check;
}

LTest(pprof, random_byte_flips_never_crash_and_leave_a_consistent_state) {
    static const char *const names[] = {"mutex_cur.pb", "block_cur.pb", "goroutine_cur.pb", "heap_base.pb"};
    static const char *const bases[] = {"mutex_base.pb", "block_base.pb", "goroutine_base.pb", "heap_base.pb"};
    uint64_t seed = 20241129;
    size_t ok = 0, refused = 0;
    for (size_t f = 0; f < 4; f++) {
        blob b = load(names[f]), base = load(bases[f]);
        uint8_t *copy = malloc(b.n);
        for (int iter = 0; iter < 600; iter++) {
            memcpy(copy, b.p, b.n);
            int flips = 1 + (int)(splitmix64(&seed) % 4);
            for (int k = 0; k < flips; k++) {
                uint64_t r = splitmix64(&seed);
                size_t at = (size_t)(r % b.n);
                if ((r >> 32) & 1)
                    copy[at] ^= (uint8_t)(1u << ((r >> 40) % 8)); /* one bit */
                else
                    copy[at] = (uint8_t)(r >> 48); /* a whole byte */
            }
            char what[128];
            snprintf(what, sizeof what, "%s, flip run %d", names[f], iter);
            if (run_any(copy, b.n, &base, what) == PPROFIO_OK)
                ok++;
            else
                refused++;
        }
        free(copy);
        blob_free(&b);
        blob_free(&base);
    }
    cr_log_info("byte flips: %zu decoded, %zu refused", ok, refused);
    cr_assert_gt(refused, 0);
}

/* Mutations of a real profile, decoded by protobuf-c, changed, and encoded again. */

LTest(pprof, a_location_id_pointing_nowhere_is_refused) {
    blob b = load("block_cur.pb"), base = load("block_base.pb");
    Prof *p = unpack_ok(b.p, b.n, "block");
    uint64_t keep = p->sample[0]->location_id[0];
    uint64_t bad[] = {0, 999, UINT64_C(1) << 63, UINT64_MAX};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        p->sample[0]->location_id[0] = bad[i];
        blob m = pack(p);
        char what[64];
        snprintf(what, sizeof what, "location_id %llu", (unsigned long long)bad[i]);
        expect_format_error(m.p, m.n, &base, what);
        blob_free(&m);
    }
    p->sample[0]->location_id[0] = keep;
    perftools__profiles__profile__free_unpacked(p, NULL);
    blob_free(&b);
    blob_free(&base);
}

LTest(pprof, a_function_id_or_mapping_id_pointing_nowhere_is_refused) {
    blob b = load("block_cur.pb"), base = load("block_base.pb");
    Prof *p = unpack_ok(b.p, b.n, "block");
    uint64_t bad[] = {0, 999, UINT64_C(1) << 63, UINT64_MAX};
    Line *line = p->location[0]->line[0];
    uint64_t keep = line->function_id;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        line->function_id = bad[i];
        blob m = pack(p);
        expect_format_error(m.p, m.n, &base, "function_id");
        blob_free(&m);
    }
    line->function_id = keep;
    keep = p->location[0]->mapping_id;
    for (size_t i = 1; i < sizeof bad / sizeof bad[0]; i++) { /* 0 is "no mapping" */
        p->location[0]->mapping_id = bad[i];
        blob m = pack(p);
        expect_format_error(m.p, m.n, &base, "mapping_id");
        blob_free(&m);
    }
    p->location[0]->mapping_id = keep;
    perftools__profiles__profile__free_unpacked(p, NULL);
    blob_free(&b);
    blob_free(&base);
}

LTest(pprof, huge_zero_or_duplicate_object_ids_are_refused) {
    blob b = load("mutex_cur.pb"), base = load("mutex_base.pb");
    Prof *p = unpack_ok(b.p, b.n, "mutex");
    cr_assert_geq(p->n_location, 2);
    cr_assert_geq(p->n_function, 2);
    uint64_t *ids[] = {&p->location[0]->id, &p->function[0]->id, &p->mapping[0]->id};
    uint64_t bad[] = {0, UINT64_C(1) << 63, UINT64_MAX, UINT64_C(1) << 32, 1000000};
    for (size_t w = 0; w < 3; w++) {
        uint64_t keep = *ids[w];
        for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
            *ids[w] = bad[i];
            /* Follow the new id everywhere, so that only its size is wrong. */
            for (size_t s = 0; w == 0 && s < p->n_sample; s++)
                for (size_t k = 0; k < p->sample[s]->n_location_id; k++)
                    if (p->sample[s]->location_id[k] == keep || (i > 0 && p->sample[s]->location_id[k] == bad[i - 1]))
                        p->sample[s]->location_id[k] = bad[i];
            for (size_t l = 0; w == 1 && l < p->n_location; l++)
                for (size_t k = 0; k < p->location[l]->n_line; k++)
                    if (p->location[l]->line[k]->function_id == keep ||
                        (i > 0 && p->location[l]->line[k]->function_id == bad[i - 1]))
                        p->location[l]->line[k]->function_id = bad[i];
            for (size_t l = 0; w == 2 && l < p->n_location; l++)
                if (p->location[l]->mapping_id == keep || (i > 0 && p->location[l]->mapping_id == bad[i - 1]))
                    p->location[l]->mapping_id = bad[i];
            blob m = pack(p);
            char what[64];
            snprintf(what, sizeof what, "object kind %zu, id %llu", w, (unsigned long long)bad[i]);
            if (bad[i] == 0 && w == 2) {
                /* mapping id 0 on the mapping, locations say "no mapping": the mapping itself is bad */
            }
            expect_format_error(m.p, m.n, &base, what);
            blob_free(&m);
        }
        /* put the id back everywhere */
        uint64_t last = bad[sizeof bad / sizeof bad[0] - 1];
        *ids[w] = keep;
        for (size_t s = 0; w == 0 && s < p->n_sample; s++)
            for (size_t k = 0; k < p->sample[s]->n_location_id; k++)
                if (p->sample[s]->location_id[k] == last)
                    p->sample[s]->location_id[k] = keep;
        for (size_t l = 0; w == 1 && l < p->n_location; l++)
            for (size_t k = 0; k < p->location[l]->n_line; k++)
                if (p->location[l]->line[k]->function_id == last)
                    p->location[l]->line[k]->function_id = keep;
        for (size_t l = 0; w == 2 && l < p->n_location; l++)
            if (p->location[l]->mapping_id == last)
                p->location[l]->mapping_id = keep;
        blob m = pack(p);
        run_any(m.p, m.n, &base, "restored");
        cr_assert_eq(pprofio_pprof_check(m.p, m.n, NULL), PPROFIO_OK, "restoring ids failed (test bug)");
        blob_free(&m);
    }
    /* Two locations, two functions with one id. */
    uint64_t keep = p->location[1]->id;
    p->location[1]->id = p->location[0]->id;
    blob m = pack(p);
    expect_format_error(m.p, m.n, &base, "duplicate location id");
    blob_free(&m);
    p->location[1]->id = keep;
    keep = p->function[1]->id;
    p->function[1]->id = p->function[0]->id;
    m = pack(p);
    expect_format_error(m.p, m.n, &base, "duplicate function id");
    blob_free(&m);
    p->function[1]->id = keep;
    perftools__profiles__profile__free_unpacked(p, NULL);
    blob_free(&b);
    blob_free(&base);
}

LTest(pprof, a_string_index_out_of_range_is_refused_wherever_it_is) {
    blob b = load("goroutine_cur.pb"), base = load("goroutine_base.pb");
    Prof *p = unpack_ok(b.p, b.n, "goroutine");
    const Sample *labelled = NULL;
    for (size_t i = 0; i < p->n_sample && !labelled; i++)
        if (p->sample[i]->n_label)
            labelled = p->sample[i];
    cr_assert(labelled, "goroutine_cur.pb has no labels");
    int64_t *fields[] = {&p->function[0]->name,     &p->function[0]->filename,  &p->function[0]->system_name,
                         &p->sample_type[0]->type,  &p->sample_type[0]->unit,   &p->mapping[0]->filename,
                         &p->mapping[0]->build_id,  &labelled->label[0]->key,   &labelled->label[0]->str,
                         &labelled->label[0]->num_unit, &p->drop_frames,        &p->keep_frames,
                         &p->default_sample_type,   &p->doc_url,                &p->period_type->type};
    int64_t bad[] = {-1, INT64_MIN, (int64_t)p->n_string_table, INT64_MAX, 1LL << 40};
    for (size_t f = 0; f < sizeof fields / sizeof fields[0]; f++) {
        int64_t keep = *fields[f];
        for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
            *fields[f] = bad[i];
            blob m = pack(p);
            char what[64];
            snprintf(what, sizeof what, "string field %zu = %lld", f, (long long)bad[i]);
            expect_format_error(m.p, m.n, &base, what);
            blob_free(&m);
        }
        *fields[f] = keep;
    }
    /* A comment pointing past the table. */
    int64_t comment = (int64_t)p->n_string_table + 5;
    p->comment = &comment;
    p->n_comment = 1;
    blob m = pack(p);
    expect_format_error(m.p, m.n, &base, "comment");
    blob_free(&m);
    p->comment = NULL;
    p->n_comment = 0;
    /* A table that does not begin with "", and one that is empty. */
    char *first = p->string_table[0];
    char notempty[] = "x";
    p->string_table[0] = notempty;
    m = pack(p);
    expect_format_error(m.p, m.n, &base, "string 0 is not empty");
    blob_free(&m);
    p->string_table[0] = first;
    size_t ns = p->n_string_table;
    p->n_string_table = 0;
    m = pack(p);
    expect_format_error(m.p, m.n, &base, "no string table");
    blob_free(&m);
    p->n_string_table = ns;
    perftools__profiles__profile__free_unpacked(p, NULL);
    blob_free(&b);
    blob_free(&base);
}

LTest(pprof, a_sample_with_more_or_fewer_values_than_sample_types_is_refused) {
    blob b = load("heap_cur.pb"), base = load("heap_base.pb");
    Prof *p = unpack_ok(b.p, b.n, "heap");
    Sample *s = p->sample[p->n_sample / 2];
    int64_t *keep = s->value;
    size_t nv = s->n_value;
    int64_t more[16] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
    s->value = more;
    s->n_value = nv + 1;
    blob m = pack(p);
    expect_format_error(m.p, m.n, &base, "5 values for 4 types");
    blob_free(&m);
    s->n_value = 16;
    m = pack(p);
    expect_format_error(m.p, m.n, &base, "16 values for 4 types");
    blob_free(&m);
    s->n_value = nv - 1;
    m = pack(p);
    expect_format_error(m.p, m.n, &base, "3 values for 4 types");
    blob_free(&m);
    s->n_value = 0;
    m = pack(p);
    expect_format_error(m.p, m.n, &base, "no values");
    blob_free(&m);
    s->value = keep;
    s->n_value = nv;
    /* More sample types than the engine takes (MAX_VALUES = 32). */
    ValueType *vt[40], one = PERFTOOLS__PROFILES__VALUE_TYPE__INIT;
    for (size_t i = 0; i < 40; i++)
        vt[i] = &one;
    ValueType **keep_types = p->sample_type;
    size_t keep_nt = p->n_sample_type;
    p->sample_type = vt;
    p->n_sample_type = 40;
    for (size_t i = 0; i < p->n_sample; i++)
        p->sample[i]->n_value = 0;
    m = pack(p);
    expect_format_error(m.p, m.n, &base, "40 sample types");
    blob_free(&m);
    for (size_t i = 0; i < p->n_sample; i++)
        p->sample[i]->n_value = nv;
    p->sample_type = keep_types;
    p->n_sample_type = keep_nt;
    perftools__profiles__profile__free_unpacked(p, NULL);
    blob_free(&b);
    blob_free(&base);
}

LTest(pprof, an_empty_input_is_refused) {
    blob base = load("mutex_base.pb");
    static const uint8_t nothing[1] = {0};
    expect_format_error(nothing, 0, &base, "0 bytes");
    expect_format_error(NULL, 0, &base, "NULL, 0 bytes");
    expect_format_error(nothing, 1, &base, "one zero byte");
    blob_free(&base);
}

LTest(pprof, an_empty_input_is_refused_as_empty_not_as_a_bad_string_index) {
    blob base = load("mutex_base.pb");
    pprofio_baseline *b = baseline_of(&base);
    static const uint8_t nothing[1] = {0};
    delta_result r = delta(nothing, 0, &b, 1, SIZE_MAX);
    assert_status(r.rc, PPROFIO_ERR_FORMAT);
    assert_contains(r.err.msg, "empty");
    cr_assert_null(strstr(r.err.msg, "string index"), "the error is \"%s\"", r.err.msg);
    pprofio_bytes_free(&r.out);
    pprofio_stack_count *sc = NULL;
    size_t n = 0;
    int64_t total = 0;
    pprofio_error err = {0};
    assert_status(pprofio_pprof_stacks(nothing, 0, &sc, &n, &total, &err), PPROFIO_ERR_FORMAT);
    assert_contains(err.msg, "empty");
    pprofio_free(sc);
    pprofio_baseline_free(b);
    blob_free(&base);
}

/* append_varint writes v as a protobuf varint; returns the bytes written. */
static size_t put_varint(uint8_t *p, uint64_t v) {
    size_t n = 0;
    do {
        p[n++] = (uint8_t)((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
        v >>= 7;
    } while (v);
    return n;
}

/* with_tail returns the bytes of b followed by tail[0:nt], in a new blob. */
static blob with_tail(const blob *b, const uint8_t *tail, size_t nt) {
    blob r = {malloc(b->n + nt), b->n + nt};
    cr_assert(r.p);
    memcpy(r.p, b->p, b->n);
    memcpy(r.p + b->n, tail, nt);
    return r;
}

LTest(pprof, length_prefixes_claiming_gigabytes_are_refused) {
    blob b = load("mutex_cur.pb"), base = load("mutex_base.pb");
    static const uint64_t lengths[] = {UINT64_C(1) << 31, UINT64_C(1) << 32, UINT64_C(5) << 30, UINT64_C(1) << 62,
                                       UINT64_MAX, (uint64_t)SIZE_MAX - 3};
    /* Fields 1 (sample_type), 2 (sample), 6 (string_table), 99 (unknown), each LEN, after a whole profile. */
    static const uint32_t fields[] = {1, 2, 3, 4, 5, 6, 99, 1000};
    for (size_t f = 0; f < sizeof fields / sizeof fields[0]; f++)
        for (size_t i = 0; i < sizeof lengths / sizeof lengths[0]; i++) {
            uint8_t tail[32];
            size_t n = put_varint(tail, (uint64_t)fields[f] << 3 | 2);
            n += put_varint(tail + n, lengths[i]);
            tail[n++] = 0x08; /* a few bytes of "content" */
            tail[n++] = 0x01;
            blob m = with_tail(&b, tail, n);
            char what[96];
            snprintf(what, sizeof what, "field %u claiming %llu bytes", fields[f], (unsigned long long)lengths[i]);
            expect_format_error(m.p, m.n, &base, what);
            blob_free(&m);
            expect_format_error(tail, n, &base, what); /* alone */
        }
    /* Inside a sample: its own length is right, its packed location ids claim 4 GiB. */
    uint8_t inner[32], tail[48];
    size_t ni = 0;
    inner[ni++] = 0x0a; /* location_id, LEN */
    ni += put_varint(inner + ni, UINT64_C(1) << 32);
    inner[ni++] = 1;
    size_t nt = 0;
    tail[nt++] = 0x12; /* sample, LEN */
    nt += put_varint(tail + nt, ni);
    memcpy(tail + nt, inner, ni);
    nt += ni;
    blob m = with_tail(&b, tail, nt);
    expect_format_error(m.p, m.n, &base, "packed ids claiming 4 GiB");
    blob_free(&m);
    /* A varint of 11 bytes (longer than any 64-bit number). */
    uint8_t overlong[16] = {0x50};
    memset(overlong + 1, 0xff, 10);
    overlong[11] = 0x01;
    m = with_tail(&b, overlong, 12);
    expect_format_error(m.p, m.n, &base, "an 11-byte varint");
    blob_free(&m);
    blob_free(&b);
    blob_free(&base);
}

LTest(pprof, deeply_nested_and_unknown_fields_neither_crash_nor_confuse) {
    blob b = load("mutex_cur.pb"), base = load("mutex_base.pb");
    enum { DEPTH = 20000 };
    /* Groups (start-group / end-group) of an unknown field, nested DEPTH deep. */
    uint8_t *g = malloc(DEPTH * 4 + 16);
    size_t n = 0;
    for (int i = 0; i < DEPTH; i++)
        n += put_varint(g + n, 100u << 3 | 3);
    for (int i = 0; i < DEPTH; i++)
        n += put_varint(g + n, 100u << 3 | 4);
    blob m = with_tail(&b, g, n);
    expect_format_error(m.p, m.n, &base, "nested groups");
    blob_free(&m);
    expect_format_error(g, n, &base, "nested groups alone");
    /* A lone end-group, and a group of a known field number. */
    uint8_t eg[] = {0x0c}; /* field 1, end group */
    m = with_tail(&b, eg, 1);
    expect_format_error(m.p, m.n, &base, "end group");
    blob_free(&m);
    uint8_t sg[] = {0x13, 0x14}; /* field 2 (sample) as a group */
    m = with_tail(&b, sg, 2);
    expect_format_error(m.p, m.n, &base, "sample as a group");
    blob_free(&m);
    free(g);

    /* Length-delimited unknown fields nested DEPTH deep: valid protobuf, skipped whole. */
    size_t cap = (size_t)DEPTH * 8 + 16;
    uint8_t *nest = malloc(cap);
    size_t len = 0, start = cap;
    nest[--start] = 0x01;
    nest[--start] = 0x08; /* innermost: field 1 = 1 */
    len = 2;
    for (int i = 0; i < DEPTH; i++) {
        uint8_t hdr[16];
        size_t h = put_varint(hdr, 100u << 3 | 2);
        h += put_varint(hdr + h, len);
        start -= h;
        memcpy(nest + start, hdr, h);
        len += h;
    }
    m = with_tail(&b, nest + start, len);
    int rc = run_any(m.p, m.n, &base, "nested unknown LEN fields");
    cr_assert_eq(rc, PPROFIO_OK, "an unknown field made a valid profile undecodable");
    /* The delta is still right: the unknown field does not disturb the samples. */
    blob mb = with_tail(&base, nest + start, len);
    pprofio_baseline *bl = baseline_of(&mb);
    delta_result r = delta(m.p, m.n, &bl, 1, SIZE_MAX);
    assert_status(r.rc, PPROFIO_OK);
    cr_assert_eq(r.is_delta, 1);
    expect_delta_of(&base, &b, &r.out, "with unknown fields");
    pprofio_bytes_free(&r.out);
    pprofio_baseline_free(bl);
    blob_free(&mb);
    blob_free(&m);
    /* The same inside a sample (a known submessage). */
    Prof *p = unpack_ok(b.p, b.n, "mutex");
    blob s0 = {NULL, perftools__profiles__sample__get_packed_size(p->sample[0])};
    s0.p = malloc(s0.n + len);
    perftools__profiles__sample__pack(p->sample[0], s0.p);
    memcpy(s0.p + s0.n, nest + start, len);
    uint8_t hdr[16];
    size_t h = put_varint(hdr, 2u << 3 | 2);
    h += put_varint(hdr + h, s0.n + len);
    blob t = with_tail(&b, hdr, h);
    blob m2 = with_tail(&t, s0.p, s0.n + len);
    run_any(m2.p, m2.n, &base, "nested unknown fields in a sample");
    blob_free(&m2);
    blob_free(&t);
    blob_free(&s0);
    perftools__profiles__profile__free_unpacked(p, NULL);
    free(nest);
    /* Wrong wire types for known fields. */
    static const uint8_t wrong[][3] = {{0x08, 0x01, 0}, /* sample_type as a varint */
                                       {0x31, 0, 0},    /* string_table as fixed64 (truncated) */
                                       {0x55, 0, 0}};   /* field 10 (period) as fixed32 (truncated) */
    for (size_t i = 0; i < 3; i++) {
        m = with_tail(&b, wrong[i], 3);
        run_any(m.p, m.n, &base, "wrong wire type");
        blob_free(&m);
    }
    blob_free(&b);
    blob_free(&base);
}

/* ---- out of memory ------------------------------------------------------------------ */

LTest(pprof, delta_fails_cleanly_at_every_allocation_and_a_kept_baseline_still_works) {
    blob b = load("heap_base.pb"), c = load("heap_cur.pb");
    pprofio_baseline *base = baseline_of(&b);
    delta_result want = delta(c.p, c.n, &base, 1, SIZE_MAX);
    assert_status(want.rc, PPROFIO_OK);
    pprofio_baseline_free(base);
    long k;
    for (k = 0;; k++) {
        cr_assert_lt(k, 100000, "no end to the allocations");
        base = baseline_of(&b);
        pprofio_alloc_fail_after(k);
        delta_result r = delta(c.p, c.n, &base, 1, SIZE_MAX);
        pprofio_alloc_fail_after(-1);
        if (r.rc == PPROFIO_OK) {
            cr_assert_eq(r.is_delta, 1);
            cr_assert(r.out.len == want.out.len && !memcmp(r.out.p, want.out.p, r.out.len));
            pprofio_bytes_free(&r.out);
            pprofio_baseline_free(base);
            break;
        }
        cr_assert(r.rc == PPROFIO_ERR_NOMEM || r.rc == PPROFIO_ERR_FORMAT, "failure %ld: %d", k, r.rc);
        cr_assert_eq(r.is_delta, 0, "failure %ld", k);
        cr_assert_eq(r.out.len, 0, "failure %ld", k);
        if (r.rc == PPROFIO_ERR_FORMAT)
            cr_assert_null(base);
        pprofio_bytes_free(&r.out);
        if (base) {
            /* The old baseline was kept: the next delta must be the right one. */
            r = delta(c.p, c.n, &base, 1, SIZE_MAX);
            assert_status(r.rc, PPROFIO_OK);
            cr_assert_eq(r.is_delta, 1);
            cr_assert(r.out.len == want.out.len && !memcmp(r.out.p, want.out.p, r.out.len),
                      "after a failure at allocation %ld, the kept baseline gives another delta", k);
            pprofio_bytes_free(&r.out);
        }
        pprofio_baseline_free(base);
    }
    cr_log_info("pprof delta: %ld allocation points", k);
    /* The first snapshot, and stacks. */
    for (k = 0;; k++) {
        cr_assert_lt(k, 100000);
        base = NULL;
        pprofio_alloc_fail_after(k);
        delta_result r = delta(b.p, b.n, &base, 1, SIZE_MAX);
        pprofio_alloc_fail_after(-1);
        pprofio_bytes_free(&r.out);
        if (r.rc == PPROFIO_OK) {
            cr_assert_not_null(base);
            pprofio_baseline_free(base);
            break;
        }
        cr_assert_null(base);
    }
    blob g = load("goroutine_cur.pb");
    for (k = 0;; k++) {
        cr_assert_lt(k, 100000);
        pprofio_stack_count *sc;
        size_t n;
        int64_t total;
        pprofio_error err = {0};
        pprofio_alloc_fail_after(k);
        int rc = pprofio_pprof_stacks(g.p, g.n, &sc, &n, &total, &err);
        pprofio_alloc_fail_after(-1);
        if (rc == PPROFIO_OK) {
            pprofio_free(sc);
            break;
        }
        cr_assert(rc == PPROFIO_ERR_NOMEM || rc == PPROFIO_ERR_FORMAT);
        cr_assert_null(sc);
    }
    pprofio_bytes_free(&want.out);
    blob_free(&g);
    blob_free(&b);
    blob_free(&c);
}

/* ---- what the fuzzer found ------------------------------------------------------------ */

LTest(pprof, the_fuzzers_regression_inputs_neither_crash_nor_leak) {
    char *dir = repo_path("fuzz/regressions");
    DIR *d = opendir(dir);
    blob base = load("heap_base.pb");
    size_t n = 0;
    if (d) {
        struct dirent *e;
        while ((e = readdir(d)) != NULL) {
            if (e->d_name[0] == '.' || !strcmp(e->d_name, "README.md"))
                continue;
            char *path = path_join(dir, e->d_name);
            struct stat st;
            if (stat(path, &st) != 0 || !S_ISREG(st.st_mode)) { /* the other targets' folders */
                free(path);
                continue;
            }
            blob in;
            in.p = read_file(path, &in.n);
            cr_assert(in.p, "cannot read %s", path);
            run_any(in.p, in.n, &base, e->d_name);
            run_any(in.p, in.n, NULL, e->d_name);
            blob_free(&in);
            free(path);
            n++;
        }
        closedir(d);
    }
    cr_log_info("%zu regression inputs", n);
    blob_free(&base);
    free(dir);
}
