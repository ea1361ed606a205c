/*
 * fuzz_delta.c: a libFuzzer target for the pprof decoder and the delta
 * engine (csrc/pprof.c). Build and run it with `make fuzz` (tests/fuzz/fuzz.mk).
 *
 * Each input is fed
 *   - as the current profile against baselines made from real profiles
 *     (tests/testdata: a heap one, and a mutex one, whose sample types the
 *     block profile shares), so that the subtraction, pruning and encoding run;
 *   - as a first snapshot, and, when it decodes, again against its own
 *     baseline: nothing changed, so no cumulative value may be left;
 *   - to pprofio_pprof_stacks and pprofio_pprof_check.
 * Besides the sanitizers (address, undefined, leaks), it checks what pprof.h
 * promises: an error drops the baseline, a success keeps one, every delta is
 * a well-formed profile (pprofio_pprof_check), and the stacks are sorted by
 * key with counts that add up to the total. A broken promise aborts.
 *
 * Byte-level mutations rarely get past the decoder's checks with a profile
 * that still means something, so a custom mutator also works on the
 * decoded profile: it sets values, ids, string indexes and label numbers to
 * values at the edges, duplicates, drops and reorders samples, adds labels,
 * and makes frames share or lose their addresses, then encodes it again.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../csrc/alloc.h"
#include "../../csrc/pprof.h"
#include "../../csrc/profile.pb-c.h"

#ifndef FUZZ_TESTDATA
#define FUZZ_TESTDATA "tests/testdata"
#endif

static pprofio_bytes bases[2]; /* heap_base.pb, mutex_base.pb */

#define require(cond)                                                                              \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "fuzz_delta: broken promise: %s (%s:%d)\n", #cond, __FILE__, __LINE__); \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

static void load(const char *name, pprofio_bytes *out) {
    const char *dir = getenv("FUZZ_TESTDATA");
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir && *dir ? dir : FUZZ_TESTDATA, name);
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "fuzz_delta: cannot open %s (set FUZZ_TESTDATA to tests/testdata)\n", path);
        exit(1);
    }
    size_t cap = 1 << 16;
    out->p = malloc(cap);
    out->len = 0;
    size_t r;
    while ((r = fread(out->p + out->len, 1, cap - out->len, f)) > 0) {
        out->len += r;
        if (out->len == cap)
            out->p = realloc(out->p, cap *= 2);
    }
    fclose(f);
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    load("heap_base.pb", &bases[0]);
    load("mutex_base.pb", &bases[1]);
    return 0;
}

/* run feeds data against *base and checks the outcome; returns the status. */
static int run(const uint8_t *data, size_t size, pprofio_baseline **base) {
    pprofio_bytes out = {0};
    pprofio_error err = {0};
    int is_delta = -1;
    int had_base = *base != NULL;
    int rc = pprofio_pprof_delta(data, size, base, 1, SIZE_MAX, &out, &is_delta, &err);
    require(rc == PPROFIO_OK || rc == PPROFIO_ERR_FORMAT || rc == PPROFIO_ERR_NOMEM);
    if (rc == PPROFIO_OK) {
        require(*base != NULL);
        require(is_delta == 0 || had_base);
        if (is_delta) {
            pprofio_error e2 = {0};
            int crc = pprofio_pprof_check(out.p, out.len, &e2);
            if (crc != PPROFIO_OK)
                fprintf(stderr, "fuzz_delta: the delta does not check: %s\n", e2.msg);
            require(crc == PPROFIO_OK);
        } else {
            require(out.len == 0);
        }
    } else {
        require(is_delta == 0);
        require(out.len == 0);
        require(err.msg[0] != '\0');
        if (rc == PPROFIO_ERR_FORMAT)
            require(*base == NULL);
    }
    pprofio_bytes_free(&out);
    return rc;
}

static int is_cumulative(const char *t) {
    return !strcmp(t, "alloc_objects") || !strcmp(t, "alloc_space") || !strcmp(t, "contentions") ||
           !strcmp(t, "delay");
}

/*
 * self_delta runs data against its own baseline: nothing changed, so every
 * sample left must have zeros for its cumulative values (unless its stack is
 * too deep to key: more than KEY_WORDS = 4096 words, sent whole).
 */
static void self_delta(const uint8_t *data, size_t size, pprofio_baseline **base) {
    pprofio_bytes out = {0};
    pprofio_error err = {0};
    int is_delta = 0;
    int rc = pprofio_pprof_delta(data, size, base, 1, SIZE_MAX, &out, &is_delta, &err);
    require(rc == PPROFIO_OK);
    if (is_delta) {
        require(pprofio_pprof_check(out.p, out.len, &err) == PPROFIO_OK);
        Perftools__Profiles__Profile *p = perftools__profiles__profile__unpack(NULL, out.len, out.p);
        require(p != NULL);
        for (size_t i = 0; i < p->n_sample; i++) {
            const Perftools__Profiles__Sample *s = p->sample[i];
            if (s->n_location_id * 2 + s->n_label * 3 + 1 > 4096)
                continue;
            for (size_t v = 0; v < s->n_value; v++) {
                const char *t = p->string_table[p->sample_type[v]->type];
                if (is_cumulative(t) && s->value[v] != 0) {
                    fprintf(stderr, "fuzz_delta: a profile minus itself has %s = %lld in sample %zu\n", t,
                            (long long)s->value[v], i);
                    abort();
                }
            }
        }
        perftools__profiles__profile__free_unpacked(p, NULL);
    }
    pprofio_bytes_free(&out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    /* As the current profile against real baselines. */
    for (int i = 0; i < 2; i++) {
        pprofio_baseline *base = NULL;
        pprofio_bytes out = {0};
        int is_delta;
        require(pprofio_pprof_delta(bases[i].p, bases[i].len, &base, 1, SIZE_MAX, &out, &is_delta, NULL) ==
                PPROFIO_OK);
        pprofio_bytes_free(&out);
        run(data, size, &base);
        pprofio_baseline_free(base);
    }

    /* As a first snapshot, then against itself. */
    pprofio_baseline *base = NULL;
    int rc = run(data, size, &base);
    pprofio_error err = {0};
    require(pprofio_pprof_check(data, size, &err) == rc);
    if (rc == PPROFIO_OK)
        self_delta(data, size, &base);
    pprofio_baseline_free(base);

    /* As a goroutine profile. */
    pprofio_stack_count *sc = NULL;
    size_t n = 0;
    int64_t total = 0;
    int src = pprofio_pprof_stacks(data, size, &sc, &n, &total, &err);
    require(src == PPROFIO_OK || src == PPROFIO_ERR_FORMAT);
    if (src == PPROFIO_OK) {
        uint64_t sum = 0;
        for (size_t i = 0; i < n; i++) {
            require(i == 0 || sc[i - 1].key < sc[i].key);
            require(memchr(sc[i].desc, '\0', sizeof sc[i].desc) != NULL);
            sum += (uint64_t)sc[i].count;
        }
        require(sum == (uint64_t)total);
    } else {
        require(sc == NULL && n == 0 && total == 0);
    }
    pprofio_free(sc);
    return 0;
}

/* ---- a structure-aware mutator ------------------------------------------- */

size_t LLVMFuzzerMutate(uint8_t *data, size_t size, size_t max_size);

typedef Perftools__Profiles__Profile Prof;
typedef Perftools__Profiles__Sample Sample;

static uint64_t rng_next(uint64_t *s) {
    uint64_t z = (*s += UINT64_C(0x9E3779B97F4A7C15));
    z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
    return z ^ (z >> 31);
}

static int64_t edge_value(uint64_t *r, int64_t near) {
    static const int64_t edges[] = {0, 1, -1, 2, INT64_MAX, INT64_MIN, INT64_MAX / 2 + 1, INT64_MIN / 2,
                                    (int64_t)1 << 32, (int64_t)1 << 31, 1000000007};
    uint64_t k = rng_next(r) % 16;
    if (k < sizeof edges / sizeof edges[0])
        return edges[k];
    if (k < 14)
        return (int64_t)((uint64_t)near + rng_next(r) % 5 - 2); /* wraps */
    return (int64_t)rng_next(r);
}

/* A copy of one sample, made by protobuf-c itself (so free_unpacked can free it). */
static Sample *copy_sample(const Sample *s) {
    size_t n = perftools__profiles__sample__get_packed_size(s);
    uint8_t *buf = malloc(n ? n : 1);
    if (!buf)
        return NULL;
    perftools__profiles__sample__pack(s, buf);
    Sample *c = perftools__profiles__sample__unpack(NULL, n, buf);
    free(buf);
    return c;
}

static int mutate_profile(Prof *p, uint64_t *r) {
    size_t ns = p->n_sample, nl = p->n_location, nf = p->n_function, nstr = p->n_string_table;
    Sample *s = ns ? p->sample[rng_next(r) % ns] : NULL;
    switch (rng_next(r) % 14) {
    case 0: /* a value at an edge */
    case 1:
        if (!s || !s->n_value)
            return 0;
        {
            size_t v = rng_next(r) % s->n_value;
            s->value[v] = edge_value(r, s->value[v]);
        }
        return 1;
    case 2: /* a sample twice (the same key) */
        if (!s)
            return 0;
        {
            Sample *c = copy_sample(s);
            Sample **arr = c ? realloc(p->sample, (ns + 1) * sizeof *arr) : NULL;
            if (!arr) {
                if (c)
                    perftools__profiles__sample__free_unpacked(c, NULL);
                return 0;
            }
            arr[ns] = c;
            p->sample = arr;
            p->n_sample = ns + 1;
        }
        return 1;
    case 3: /* a sample less */
        if (!s)
            return 0;
        {
            size_t i = rng_next(r) % ns;
            perftools__profiles__sample__free_unpacked(p->sample[i], NULL);
            p->sample[i] = p->sample[ns - 1];
            p->n_sample = ns - 1;
        }
        return 1;
    case 4: /* two samples swapped */
        if (ns < 2)
            return 0;
        {
            size_t i = rng_next(r) % ns, j = rng_next(r) % ns;
            Sample *t = p->sample[i];
            p->sample[i] = p->sample[j];
            p->sample[j] = t;
        }
        return 1;
    case 5: /* a frame of a sample pointing elsewhere (another location, or nowhere) */
        if (!s || !s->n_location_id)
            return 0;
        s->location_id[rng_next(r) % s->n_location_id] =
            nl && rng_next(r) % 4 ? p->location[rng_next(r) % nl]->id : (uint64_t)edge_value(r, 0);
        return 1;
    case 6: /* a label added */
        if (!s)
            return 0;
        {
            Perftools__Profiles__Label *lb = malloc(sizeof *lb);
            Perftools__Profiles__Label **arr = lb ? realloc(s->label, (s->n_label + 1) * sizeof *arr) : NULL;
            if (!arr) {
                free(lb);
                return 0;
            }
            perftools__profiles__label__init(lb);
            lb->key = nstr ? (int64_t)(rng_next(r) % nstr) : 0;
            if (rng_next(r) % 2)
                lb->str = nstr ? (int64_t)(rng_next(r) % nstr) : 0;
            else
                lb->num = edge_value(r, 64);
            arr[s->n_label] = lb;
            s->label = arr;
            s->n_label++;
        }
        return 1;
    case 7: /* a label's number or strings changed */
        if (!s || !s->n_label)
            return 0;
        {
            Perftools__Profiles__Label *lb = s->label[rng_next(r) % s->n_label];
            switch (rng_next(r) % 3) {
            case 0: lb->num = edge_value(r, lb->num); break;
            case 1: lb->key = edge_value(r, lb->key); break;
            default: lb->str = nstr && rng_next(r) % 2 ? (int64_t)(rng_next(r) % nstr) : edge_value(r, lb->str);
            }
        }
        return 1;
    case 8: /* a location without its address (known by name), or with another's */
        if (!nl)
            return 0;
        p->location[rng_next(r) % nl]->address = rng_next(r) % 2 ? 0 : p->location[rng_next(r) % nl]->address;
        return 1;
    case 9: /* an id changed */
        {
            uint64_t *id = NULL;
            switch (rng_next(r) % 3) {
            case 0: id = nl ? &p->location[rng_next(r) % nl]->id : NULL; break;
            case 1: id = nf ? &p->function[rng_next(r) % nf]->id : NULL; break;
            default: id = p->n_mapping ? &p->mapping[rng_next(r) % p->n_mapping]->id : NULL;
            }
            if (!id)
                return 0;
            *id = rng_next(r) % 2 ? *id + 1 : (uint64_t)edge_value(r, (int64_t)*id);
        }
        return 1;
    case 10: /* a line pointing to another function, or nowhere */
        if (!nl || !p->location[0]->n_line)
            return 0;
        {
            Perftools__Profiles__Location *l = p->location[rng_next(r) % nl];
            if (!l->n_line)
                return 0;
            l->line[rng_next(r) % l->n_line]->function_id =
                nf && rng_next(r) % 4 ? p->function[rng_next(r) % nf]->id : (uint64_t)edge_value(r, 1);
        }
        return 1;
    case 11: /* a function's name index changed */
        if (!nf)
            return 0;
        {
            Perftools__Profiles__Function *f = p->function[rng_next(r) % nf];
            f->name = nstr && rng_next(r) % 2 ? (int64_t)(rng_next(r) % nstr) : edge_value(r, f->name);
        }
        return 1;
    case 12: /* a sample type renamed (cumulative or not), or its index out of range */
        if (!p->n_sample_type)
            return 0;
        p->sample_type[rng_next(r) % p->n_sample_type]->type =
            nstr && rng_next(r) % 4 ? (int64_t)(rng_next(r) % nstr) : edge_value(r, 0);
        return 1;
    default: /* a header index at an edge */
        switch (rng_next(r) % 4) {
        case 0: p->drop_frames = edge_value(r, 0); break;
        case 1: p->default_sample_type = nstr ? (int64_t)(rng_next(r) % nstr) : 0; break;
        case 2: p->doc_url = edge_value(r, 0); break;
        default: p->period = edge_value(r, p->period);
        }
        return 1;
    }
}

size_t LLVMFuzzerCustomMutator(uint8_t *data, size_t size, size_t max_size, unsigned int seed) {
    uint64_t r = seed;
    if (rng_next(&r) % 3 == 0)
        return LLVMFuzzerMutate(data, size, max_size);
    Prof *p = perftools__profiles__profile__unpack(NULL, size, data);
    if (!p)
        return LLVMFuzzerMutate(data, size, max_size);
    int changed = 0;
    for (int k = 1 + (int)(rng_next(&r) % 3); k > 0; k--)
        changed |= mutate_profile(p, &r);
    size_t n = perftools__profiles__profile__get_packed_size(p);
    if (changed && n <= max_size)
        size = perftools__profiles__profile__pack(p, data);
    perftools__profiles__profile__free_unpacked(p, NULL);
    return changed && n <= max_size ? size : LLVMFuzzerMutate(data, size, max_size);
}
