/*
 * test_pyroscope.c: a cycle's profiles as a Grafana Pyroscope push
 * (csrc/pyroscope.h), decoded with the protobuf-c code of the project's
 * copy of Pyroscope's push.v1 messages (csrc/proto/pyroscope_push.proto).
 *
 * One series per profile, labelled __name__ (Pyroscope's name for the
 * type), service_name, every tag and __delta__="false"; its one sample is
 * the profile's bytes with the time fields replaced by the window. What
 * Pyroscope would refuse is refused before anything is made, and every
 * out-of-memory path ends in PPROFIO_ERR_NOMEM and leaks nothing.
 */
#include <libgen.h>

#include "../../csrc/profile.pb-c.h"
#include "../../csrc/pyroscope.h"
#include "../../csrc/pyroscope_push.pb-c.h"
#include "helpers.h"

TestSuite(pyroscope, .timeout = 60);

typedef Push__V1__PushRequest PushRequest;
typedef Push__V1__RawProfileSeries Series;

#define T0 (INT64_C(1795988477) * SEC + 123456789)

static const char *const tag_keys[] = {"env", "k8s.namespace", "_team"};
static const char *const tag_values[] = {"production", "shop", "checkout & payments ✓"};

static const pprofio_source the_source = {
    .tag_keys = tag_keys, .tag_values = tag_values, .n_tags = 3, .service = "checkout"};

/*
 * A small top-level pprof message: sample_type (1, bytes), time_nanos (9)
 * = 5, duration_nanos (10) = 7, string_table (6) "", "cpu", and period (12)
 * = 300 (the bytes a real profile has around its time fields).
 */
static const uint8_t fake_pprof[] = {0x0a, 0x04, 0x08, 0x01, 0x10, 0x02, /* sample_type {type: 1, unit: 2} */
                                     0x48, 0x05,                         /* time_nanos 5 */
                                     0x50, 0x07,                         /* duration_nanos 7 */
                                     0x32, 0x00,                         /* string_table "" */
                                     0x32, 0x03, 'c',  'p',  'u',        /* string_table "cpu" */
                                     0x60, 0xac, 0x02};                  /* period 300 */
/* fake_pprof without its time fields. */
static const uint8_t fake_rest[] = {0x0a, 0x04, 0x08, 0x01, 0x10, 0x02, 0x32, 0x00,
                                    0x32, 0x03, 'c',  'p',  'u',  0x60, 0xac, 0x02};

static pprofio_pyroscope_profile profile_of(int type, int64_t start, int64_t end) {
    return (pprofio_pyroscope_profile){type, start, end, fake_pprof, sizeof fake_pprof};
}

static PushRequest *decode(const pprofio_bytes *b) {
    PushRequest *req = push__v1__push_request__unpack(NULL, b->len, b->p);
    cr_assert(req, "the request does not decode as push.v1.PushRequest");
    return req;
}

/* label returns the value of the series' label name, or NULL. */
static const char *label(const Series *s, const char *name) {
    const char *v = NULL;
    for (size_t i = 0; i < s->n_labels; i++)
        if (strcmp(s->labels[i]->name, name) == 0) {
            cr_assert_null(v, "label %s appears twice", name);
            v = s->labels[i]->value;
        }
    return v;
}

/* get_varint reads a varint from p at *at; the test's own reader. */
static uint64_t get_varint(const uint8_t *p, size_t n, size_t *at) {
    uint64_t v = 0;
    for (int shift = 0; *at < n; shift += 7) {
        uint8_t b = p[(*at)++];
        v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80))
            break;
    }
    return v;
}

LTest(pyroscope, every_profile_type_is_one_series_with_pyroscopes_labels) {
    static const struct {
        int type;
        const char *name;
    } types[] = {{PPROFIO_PROFILE_CPU, "process_cpu"}, {PPROFIO_PROFILE_HEAP, "memory"},
                 {PPROFIO_PROFILE_GOROUTINE, "goroutines"}, {PPROFIO_PROFILE_MUTEX, "mutex"},
                 {PPROFIO_PROFILE_BLOCK, "block"}, {PPROFIO_PYROSCOPE_CUSTOM, "custom"}};
    pprofio_pyroscope_profile ps[6];
    for (size_t i = 0; i < 6; i++)
        ps[i] = profile_of(types[i].type, T0 + (int64_t)i * 60 * SEC, T0 + (int64_t)i * 60 * SEC + 10 * SEC);
    pprofio_bytes out = {0};
    pprofio_error err = {0};
    assert_status(pprofio_pyroscope_encode(&the_source, ps, 6, &out, &err), PPROFIO_OK);
    PushRequest *req = decode(&out);
    assert_i64(req->n_series, 6);
    for (size_t i = 0; i < 6; i++) {
        const Series *s = req->series[i];
        assert_i64(s->n_labels, 3 + the_source.n_tags);
        cr_assert_str_eq(label(s, "__name__"), types[i].name);
        cr_assert_str_eq(label(s, "service_name"), "checkout");
        cr_assert_str_eq(label(s, "__delta__"), "false");
        for (size_t t = 0; t < the_source.n_tags; t++)
            cr_assert_str_eq(label(s, tag_keys[t]), tag_values[t]);
        assert_i64(s->n_samples, 1);
    }
    push__v1__push_request__free_unpacked(req, NULL);
    pprofio_bytes_free(&out);
}

LTest(pyroscope, the_sample_is_the_profile_with_the_window_as_its_time) {
    pprofio_pyroscope_profile p = profile_of(PPROFIO_PROFILE_MUTEX, T0, T0 + 10 * SEC);
    pprofio_bytes out = {0};
    assert_status(pprofio_pyroscope_encode(&the_source, &p, 1, &out, NULL), PPROFIO_OK);
    PushRequest *req = decode(&out);
    const ProtobufCBinaryData *raw = &req->series[0]->samples[0]->raw_profile;
    /* Every other field, in its order, then the window's time fields, once each. */
    cr_assert_geq(raw->len, sizeof fake_rest);
    cr_assert_eq(memcmp(raw->data, fake_rest, sizeof fake_rest), 0, "the profile's other fields were changed");
    size_t at = sizeof fake_rest;
    assert_i64(get_varint(raw->data, raw->len, &at), 9 << 3);
    assert_i64(get_varint(raw->data, raw->len, &at), T0);
    assert_i64(get_varint(raw->data, raw->len, &at), 10 << 3);
    assert_i64(get_varint(raw->data, raw->len, &at), 10 * SEC);
    assert_i64(at, raw->len);
    push__v1__push_request__free_unpacked(req, NULL);
    pprofio_bytes_free(&out);
}

LTest(pyroscope, a_snapshot_has_a_time_and_no_duration) {
    pprofio_pyroscope_profile p = profile_of(PPROFIO_PROFILE_GOROUTINE, T0, T0);
    pprofio_bytes out = {0};
    assert_status(pprofio_pyroscope_encode(&the_source, &p, 1, &out, NULL), PPROFIO_OK);
    PushRequest *req = decode(&out);
    const ProtobufCBinaryData *raw = &req->series[0]->samples[0]->raw_profile;
    size_t at = sizeof fake_rest;
    assert_i64(get_varint(raw->data, raw->len, &at), 9 << 3);
    assert_i64(get_varint(raw->data, raw->len, &at), T0);
    assert_i64(at, raw->len);
    push__v1__push_request__free_unpacked(req, NULL);
    pprofio_bytes_free(&out);
}

LTest(pyroscope, bytes_that_are_not_protobuf_are_sent_as_they_are) {
    static const uint8_t junk[] = {0x0a, 0x7f, 0x01, 0x02}; /* a field longer than the buffer */
    pprofio_pyroscope_profile p = {PPROFIO_PROFILE_HEAP, T0, T0 + SEC, junk, sizeof junk};
    pprofio_bytes out = {0};
    assert_status(pprofio_pyroscope_encode(&the_source, &p, 1, &out, NULL), PPROFIO_OK);
    PushRequest *req = decode(&out);
    const ProtobufCBinaryData *raw = &req->series[0]->samples[0]->raw_profile;
    assert_i64(raw->len, sizeof junk);
    cr_assert_eq(memcmp(raw->data, junk, sizeof junk), 0);
    push__v1__push_request__free_unpacked(req, NULL);
    pprofio_bytes_free(&out);
}

LTest(pyroscope, tag_keys_are_checked_as_pyroscope_checks_label_names) {
    const char *good[] = {"env", "_x", "k8s.namespace", "A9_b.c"};
    const char *bad[] = {"", "9lives", "k8s-ns", "__name__", "__anything", "service_name", "région", "a b", NULL};
    for (size_t i = 0; i < sizeof good / sizeof *good; i++)
        cr_assert(pprofio_pyroscope_label_name_valid(good[i]), "\"%s\" refused", good[i]);
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        cr_assert(!pprofio_pyroscope_label_name_valid(bad[i]), "\"%s\" accepted", bad[i] ? bad[i] : "(null)");
}

LTest(pyroscope, what_pyroscope_would_refuse_is_refused_and_nothing_is_written) {
    const char *keys[] = {"k8s-ns"}, *values[] = {"x"}, *empty[] = {""};
    pprofio_source bad_tag = {.tag_keys = keys, .tag_values = values, .n_tags = 1, .service = "svc"};
    pprofio_source empty_value = {.tag_keys = tag_keys, .tag_values = empty, .n_tags = 1, .service = "svc"};
    pprofio_source no_service = {.service = ""};
    pprofio_source bad_service = {.service = "check out"};
    const char *bad_utf8[] = {"\xc3\x28", "\xed\xa0\x80", "\xf8\x88\x80\x80\x80", "\xe2\x82", "\xc0\xaf"};
    pprofio_source not_utf8 = {.tag_keys = tag_keys, .tag_values = bad_utf8, .n_tags = 1, .service = "svc"};
    pprofio_pyroscope_profile ok = profile_of(PPROFIO_PROFILE_CPU, T0, T0 + SEC);
    pprofio_pyroscope_profile unknown = profile_of(42, T0, T0 + SEC);
    pprofio_pyroscope_profile backwards = profile_of(PPROFIO_PROFILE_CPU, T0, T0 - 1);
    struct {
        const pprofio_source *src;
        const pprofio_pyroscope_profile *p;
        const char *words;
    } cases[] = {{&bad_tag, &ok, "label name"}, {&empty_value, &ok, "no value"}, {&no_service, &ok, "service"},
                 {&bad_service, &ok, "not a service name"}, {&not_utf8, &ok, "not UTF-8"},
                 {&the_source, &unknown, "unknown type 42"}, {&the_source, &backwards, "ends before"}};
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        pprofio_bytes out = {0};
        pprofio_error err = {0};
        assert_status(pprofio_pyroscope_encode(cases[i].src, cases[i].p, 1, &out, &err), PPROFIO_ERR_INVALID);
        assert_contains(err.msg, cases[i].words);
        cr_assert_null(out.p, "case %zu allocated output", i);
    }
}

LTest(pyroscope, encode_fails_cleanly_at_every_allocation) {
    pprofio_pyroscope_profile ps[3] = {profile_of(PPROFIO_PROFILE_CPU, T0, T0 + SEC),
                                       profile_of(PPROFIO_PROFILE_HEAP, T0, T0 + 60 * SEC),
                                       profile_of(PPROFIO_PROFILE_GOROUTINE, T0, T0)};
    pprofio_bytes want = {0};
    assert_status(pprofio_pyroscope_encode(&the_source, ps, 3, &want, NULL), PPROFIO_OK);
    long n;
    for (n = 0;; n++) {
        cr_assert_lt(n, 100);
        pprofio_bytes out = {0};
        pprofio_error err = {0};
        long before = pprofio_alloc_calls();
        pprofio_alloc_fail_after(n);
        int rc = pprofio_pyroscope_encode(&the_source, ps, 3, &out, &err);
        pprofio_alloc_fail_after(-1);
        int failed = pprofio_alloc_calls() - before > n;
        if (!failed) {
            assert_status(rc, PPROFIO_OK);
            cr_assert(out.len == want.len && memcmp(out.p, want.p, want.len) == 0,
                      "after %ld failures the request differs", n);
            pprofio_bytes_free(&out);
            break;
        }
        assert_status(rc, PPROFIO_ERR_NOMEM);
        assert_contains(err.msg, "pyroscope");
        pprofio_bytes_free(&out);
    }
    cr_assert_gt(n, 0, "no allocation was made to fail");
    pprofio_bytes_free(&want);
}

/* testdata reads tests/testdata/<name>, real profiles of a Go program. */
static uint8_t *testdata(const char *name, size_t *len) {
    char here[4096], path[4200];
    snprintf(here, sizeof here, "%s", __FILE__);
    snprintf(path, sizeof path, "%s/../testdata/%s", dirname(here), name);
    uint8_t *p = read_file(path, len);
    cr_assert(p && *len > 0, "cannot read %s", path);
    return p;
}

LTest(pyroscope, real_profiles_keep_everything_but_their_time) {
    const char *names[] = {"heap_base.pb", "goroutine_cur.pb", "block_cur.pb"};
    for (size_t i = 0; i < 3; i++) {
        size_t len;
        uint8_t *in = testdata(names[i], &len);
        Perftools__Profiles__Profile *want = perftools__profiles__profile__unpack(NULL, len, in);
        cr_assert(want, "%s does not decode", names[i]);
        pprofio_pyroscope_profile p = {PPROFIO_PROFILE_HEAP, T0, T0 + 60 * SEC, in, len};
        pprofio_bytes out = {0};
        assert_status(pprofio_pyroscope_encode(&the_source, &p, 1, &out, NULL), PPROFIO_OK);
        PushRequest *req = decode(&out);
        const ProtobufCBinaryData *raw = &req->series[0]->samples[0]->raw_profile;
        Perftools__Profiles__Profile *got = perftools__profiles__profile__unpack(NULL, raw->len, raw->data);
        cr_assert(got, "the sample of %s does not decode as a profile", names[i]);
        assert_i64(got->time_nanos, T0);
        assert_i64(got->duration_nanos, 60 * SEC);
        assert_i64(got->n_sample, want->n_sample);
        assert_i64(got->n_location, want->n_location);
        assert_i64(got->n_string_table, want->n_string_table);
        assert_i64(got->period, want->period);
        /* The same profile once the time is the same. */
        got->time_nanos = want->time_nanos;
        got->duration_nanos = want->duration_nanos;
        size_t a = perftools__profiles__profile__get_packed_size(got);
        size_t b = perftools__profiles__profile__get_packed_size(want);
        assert_i64(a, b);
        uint8_t *pa = malloc(a + 1), *pb = malloc(b + 1);
        perftools__profiles__profile__pack(got, pa);
        perftools__profiles__profile__pack(want, pb);
        cr_assert_eq(memcmp(pa, pb, a), 0, "%s changed beyond its time", names[i]);
        free(pa);
        free(pb);
        perftools__profiles__profile__free_unpacked(got, NULL);
        perftools__profiles__profile__free_unpacked(want, NULL);
        push__v1__push_request__free_unpacked(req, NULL);
        pprofio_bytes_free(&out);
        free(in);
    }
}

/*
 * Whatever the profile bytes (cut short, bits flipped, random), the encoder
 * makes a request that decodes, whose sample is at most 22 bytes longer
 * than the bytes given, and it neither crashes nor reads past them (ASan).
 */
LTest(pyroscope, any_profile_bytes_make_a_request_that_decodes) {
    size_t len;
    uint8_t *real = testdata("heap_cur.pb", &len);
    uint64_t seed = 42;
    for (int i = 0; i < 3000; i++) {
        size_t n = (size_t)(splitmix64(&seed) % (len + 1));
        uint8_t *in = malloc(n ? n : 1); /* exactly n bytes: ASan catches a read past them */
        memcpy(in, real, n);
        int flips = i % 4;
        for (int f = 0; f < flips && n > 0; f++)
            in[splitmix64(&seed) % n] ^= (uint8_t)(1u << (splitmix64(&seed) % 8));
        if (i % 7 == 0)
            for (size_t k = 0; k < n; k++)
                in[k] = (uint8_t)splitmix64(&seed);
        pprofio_pyroscope_profile p = {PPROFIO_PROFILE_CPU, T0, T0 + SEC, in, n};
        pprofio_bytes out = {0};
        assert_status(pprofio_pyroscope_encode(&the_source, &p, 1, &out, NULL), PPROFIO_OK);
        PushRequest *req = decode(&out);
        cr_assert_leq(req->series[0]->samples[0]->raw_profile.len, n + 22);
        push__v1__push_request__free_unpacked(req, NULL);
        pprofio_bytes_free(&out);
        free(in);
    }
    free(real);
}

LTest(pyroscope, tag_values_must_be_utf8_as_pyroscope_requires) {
    const char *good[] = {"plain", "checkout & payments ✓", "\xc3\xa9t\xc3\xa9", "\xf0\x9f\x94\xa5", "\xed\x9f\xbf"};
    const char *bad[] = {"\xc3\x28", "\xa0\xa1", "\xe2\x28\xa1", "\xe2\x82\x28", "\xf0\x28\x8c\xbc",
                         "\xed\xa0\x80", "\xc0\xaf", "\xf4\x90\x80\x80", "\xe2\x82"};
    for (size_t i = 0; i < sizeof good / sizeof *good + sizeof bad / sizeof *bad; i++) {
        int is_good = i < sizeof good / sizeof *good;
        const char *v = is_good ? good[i] : bad[i - sizeof good / sizeof *good];
        const char *keys[] = {"k"}, *values[] = {v};
        pprofio_source src = {.tag_keys = keys, .tag_values = values, .n_tags = 1, .service = "svc"};
        pprofio_pyroscope_profile p = profile_of(PPROFIO_PROFILE_CPU, T0, T0 + SEC);
        pprofio_bytes out = {0};
        int rc = pprofio_pyroscope_encode(&src, &p, 1, &out, NULL);
        cr_assert_eq(rc, is_good ? PPROFIO_OK : PPROFIO_ERR_INVALID, "value %zu: %d", i, rc);
        pprofio_bytes_free(&out);
    }
}
