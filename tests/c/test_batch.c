/*
 * test_batch.c: one upload (csrc/batch.h), checked against the ingest
 * contract (/work/shared/ingest-api/API.md, csrc/proto/ingest.proto).
 *
 * A batch is gzip(UploadRequest): one gzip member that inflates to a
 * protobuf which the generated protobuf-c code (csrc/ingest.pb-c.h) unpacks
 * into exactly the fields that were given. A 413 splits a batch into two new
 * batches (new ids, half of the profiles each, the events with the first),
 * and bytes that are not a batch are refused with an error, never a crash.
 * Every out-of-memory path of encode, split and count ends in
 * PPROFIO_ERR_NOMEM and leaks nothing.
 */
#include <zlib.h>

#include "../../csrc/batch.h"
#include "../../csrc/ingest.pb-c.h"
#include "../../csrc/spool.h"
#include "helpers.h"

TestSuite(batch, .timeout = HANG_GUARD_S, .fini = scratch_cleanup);

typedef Pprofio__Ingest__V1__UploadRequest UploadRequest;
typedef Pprofio__Ingest__V1__Source Source;
typedef Pprofio__Ingest__V1__Profile Profile;
typedef Pprofio__Ingest__V1__Event Event;

#define MAX_RUNS 4000
#define T0 (INT64_C(1795988477) * SEC + 123456789)
#define BATCH_ID "0123456789abcdef0123456789abcdef"

/* ---- fixtures --------------------------------------------------------------- */

static const char *const tag_keys[] = {"env", "region", "team"};
static const char *const tag_values[] = {"production", "eu-west-1", "checkout & payments"};

static const pprofio_source the_source = {
    .tag_keys = tag_keys,
    .tag_values = tag_values,
    .n_tags = 3,
    .service = "checkout",
    .hostname = "web-7.example.internal",
    .pid = INT64_C(4194303),
    .instance_id = "fedcba9876543210fedcba9876543210",
    .agent_version = "0.1.0",
    .runtime_version = "go1.26.8",
    .os = "linux",
    .arch = "arm64",
    .process_start_ns = T0 - 3600 * SEC,
};

/* A set of profiles whose raw bytes the test owns (the core only reads them). */
typedef struct {
    size_t n;
    pprofio_profile p[16];
    pprofio_profile *ptr[16];
} profile_set;

/*
 * add_profile appends a profile of `type` over [start, end] whose raw bytes
 * are n bytes made from seed: text (compressible) or random (not).
 */
static void add_profile(profile_set *s, int type, int64_t start, int64_t end, size_t n, int random, int delta,
                        uint64_t seed) {
    cr_assert_lt(s->n, 16);
    pprofio_profile *p = &s->p[s->n];
    memset(p, 0, sizeof *p);
    p->type = type;
    p->start_ns = start;
    p->end_ns = end;
    p->delta = delta;
    p->raw.p = n ? (random ? random_bytes(n, seed) : text_bytes(n, seed)) : NULL;
    p->raw.len = p->raw.cap = n;
    s->ptr[s->n] = p;
    s->n++;
}

static void free_profiles(profile_set *s) {
    for (size_t i = 0; i < s->n; i++)
        free(s->p[i].raw.p);
    s->n = 0;
}

/* five_profiles: one of each type, of different sizes, one of them empty. */
static void five_profiles(profile_set *s) {
    memset(s, 0, sizeof *s);
    add_profile(s, PPROFIO_PROFILE_CPU, T0, T0 + 10 * SEC, 120 * KiB, 0, 0, 1);
    add_profile(s, PPROFIO_PROFILE_HEAP, T0 - 50 * SEC, T0 + 10 * SEC, 33 * KiB, 1, 1, 2);
    add_profile(s, PPROFIO_PROFILE_GOROUTINE, T0 + 10 * SEC, T0 + 10 * SEC, 0, 0, 0, 3);
    add_profile(s, PPROFIO_PROFILE_MUTEX, -7, INT64_MAX, 1, 1, 1, 4);
    add_profile(s, PPROFIO_PROFILE_BLOCK, INT64_MIN, 0, 17 * KiB + 5, 0, 1, 5);
}

/* three_events: attributes 2, 0 and the maximum (a 7th is ignored). */
static size_t three_events(pprofio_event ev[3]) {
    pprofio_event_init(&ev[0], "profile_skipped", T0 + 1, "cpu profiling already in use");
    pprofio_event_attr(&ev[0], "type", "cpu");
    pprofio_event_attr(&ev[0], "reason", "another CPU profile was running");
    pprofio_event_init(&ev[1], "goroutine_leak", T0 + 2, NULL);
    pprofio_event_init(&ev[2], "data_dropped", -3, "the upload queue is full");
    pprofio_event_attr_u64(&ev[2], "profiles", 7);
    pprofio_event_attr_u64(&ev[2], "batches", UINT64_MAX);
    pprofio_event_attr_u64(&ev[2], "bytes", 0);
    pprofio_event_attr(&ev[2], "reason", "spool");
    pprofio_event_attr(&ev[2], "k5", "v5");
    pprofio_event_attr(&ev[2], "k6", "");
    pprofio_event_attr(&ev[2], "k7", "ignored: past PPROFIO_EVENT_MAX_ATTRS");
    return 3;
}

static pprofio_bytes encode_ok(const pprofio_source *src, const char *id, uint64_t seq, const profile_set *s,
                               const pprofio_event *ev, size_t n_ev) {
    pprofio_bytes out = {0};
    pprofio_error err = {0};
    int rc = pprofio_batch_encode(src, id, seq, (pprofio_profile *const *)s->ptr, s->n, ev, n_ev, &out, &err);
    cr_assert_eq(rc, PPROFIO_OK, "encode returned %d (%s): %s", rc, pprofio_strstatus(rc), err.msg);
    return out;
}

/* ---- decoding, as the ingest service does ----------------------------------------- */

/*
 * is_one_gzip_member says whether gz is exactly one gzip member (magic,
 * deflate, trailer) with nothing after it, as Content-Encoding: gzip wants.
 */
static int is_one_gzip_member(const pprofio_bytes *gz) {
    if (gz->len < 18 || gz->p[0] != 0x1f || gz->p[1] != 0x8b || gz->p[2] != 8)
        return 0;
    z_stream zs;
    memset(&zs, 0, sizeof zs);
    if (inflateInit2(&zs, 15 + 16) != Z_OK)
        return 0;
    static uint8_t sink[1 << 16];
    zs.next_in = gz->p;
    zs.avail_in = (uInt)gz->len;
    int zrc;
    do {
        zs.next_out = sink;
        zs.avail_out = sizeof sink;
        zrc = inflate(&zs, Z_NO_FLUSH);
    } while (zrc == Z_OK);
    int whole = zrc == Z_STREAM_END && zs.avail_in == 0;
    inflateEnd(&zs);
    return whole;
}

/* decode_batch gunzips with the core and unpacks with protobuf-c's own allocator. */
static UploadRequest *decode_batch(const void *gz, size_t n) {
    pprofio_bytes raw = {0};
    int rc = pprofio_gunzip_bytes(gz, n, &raw);
    cr_assert_eq(rc, PPROFIO_OK, "the batch does not gunzip: %s", pprofio_strstatus(rc));
    UploadRequest *req = pprofio__ingest__v1__upload_request__unpack(NULL, raw.len, raw.p);
    pprofio_bytes_free(&raw);
    cr_assert_not_null(req, "the batch gunzips but is not an UploadRequest");
    return req;
}

static void free_request(UploadRequest *req) { pprofio__ingest__v1__upload_request__free_unpacked(req, NULL); }

#define assert_str(got, want)                                                                      \
    do {                                                                                           \
        const char *g_ = (got), *w_ = (want);                                                      \
        cr_assert(g_ && !strcmp(g_, w_), "%s is \"%s\", want \"%s\"", #got, g_ ? g_ : "(null)", w_); \
    } while (0)

static void expect_source(const Source *got, const pprofio_source *want) {
    cr_assert_not_null(got, "the request has no source");
    assert_str(got->service, want->service);
    assert_str(got->hostname, want->hostname);
    assert_i64(got->pid, want->pid);
    assert_str(got->instance_id, want->instance_id);
    assert_str(got->agent_version, want->agent_version);
    assert_str(got->runtime_version, want->runtime_version);
    assert_str(got->os, want->os);
    assert_str(got->arch, want->arch);
    assert_i64(got->process_start_unix_nano, want->process_start_ns);
    assert_i64(got->n_tags, want->n_tags);
    for (size_t i = 0; i < want->n_tags; i++) {
        assert_str(got->tags[i]->key, want->tag_keys[i]);
        assert_str(got->tags[i]->value, want->tag_values[i]);
    }
}

static void expect_profile(const Profile *got, const pprofio_profile *want, size_t i) {
    cr_assert_eq((int)got->type, want->type, "profile %zu has type %d, want %d", i, (int)got->type, want->type);
    assert_i64(got->start_unix_nano, want->start_ns);
    assert_i64(got->end_unix_nano, want->end_ns);
    cr_assert_eq(!!got->delta, !!want->delta, "profile %zu: delta is %d, want %d", i, (int)got->delta, want->delta);
    cr_assert_eq(got->pprof.len, want->raw.len, "profile %zu has %zu pprof bytes, want %zu", i, got->pprof.len,
                 want->raw.len);
    cr_assert(want->raw.len == 0 || memcmp(got->pprof.data, want->raw.p, want->raw.len) == 0,
              "profile %zu: the pprof bytes differ", i);
}

static void expect_event(const Event *got, const pprofio_event *want, size_t i) {
    assert_str(got->kind, want->kind);
    assert_i64(got->time_unix_nano, want->time_ns);
    assert_str(got->message, want->message);
    cr_assert_eq(got->n_attributes, want->n_attrs, "event %zu has %zu attributes, want %zu", i, got->n_attributes,
                 want->n_attrs);
    for (size_t k = 0; k < want->n_attrs; k++) {
        assert_str(got->attributes[k]->key, want->keys[k]);
        assert_str(got->attributes[k]->value, want->values[k]);
    }
}

/* expect_request checks every field of req against what was given. */
static void expect_request(const UploadRequest *req, const char *id, uint64_t seq, const pprofio_source *src,
                           pprofio_profile *const *profiles, size_t n_profiles, const pprofio_event *ev,
                           size_t n_ev) {
    assert_str(req->batch_id, id);
    assert_i64(req->sequence, seq);
    expect_source(req->source, src);
    assert_i64(req->n_profiles, n_profiles);
    for (size_t i = 0; i < n_profiles; i++)
        expect_profile(req->profiles[i], profiles[i], i);
    assert_i64(req->n_events, n_ev);
    for (size_t i = 0; i < n_ev; i++)
        expect_event(req->events[i], &ev[i], i);
    assert_i64(req->n_spans, 0);
}

/* ---- encoding ------------------------------------------------------------------- */

LTest(batch, encode_makes_one_gzip_member_that_unpacks_into_exactly_the_fields_given) {
    profile_set s;
    five_profiles(&s);
    pprofio_event ev[3];
    size_t n_ev = three_events(ev);
    assert_i64(ev[2].n_attrs, PPROFIO_EVENT_MAX_ATTRS);
    pprofio_bytes gz = encode_ok(&the_source, BATCH_ID, 42, &s, ev, n_ev);
    cr_assert(is_one_gzip_member(&gz), "the %zu-byte body is not exactly one gzip member", gz.len);
    UploadRequest *req = decode_batch(gz.p, gz.len);
    expect_request(req, BATCH_ID, 42, &the_source, s.ptr, s.n, ev, n_ev);
    /* Spot checks that do not go through the fixtures. */
    assert_str(req->events[2]->attributes[1]->value, "18446744073709551615");
    assert_str(req->events[1]->message, "");
    assert_i64(req->profiles[3]->end_unix_nano, INT64_MAX);
    free_request(req);
    pprofio_bytes_free(&gz);
    free_profiles(&s);
}

LTest(batch, encode_of_an_empty_batch_keeps_the_source_and_sequence) {
    profile_set s = {0};
    pprofio_bytes gz = encode_ok(&the_source, BATCH_ID, UINT64_MAX, &s, NULL, 0);
    cr_assert(is_one_gzip_member(&gz));
    UploadRequest *req = decode_batch(gz.p, gz.len);
    expect_request(req, BATCH_ID, UINT64_MAX, &the_source, NULL, 0, NULL, 0);
    free_request(req);
    pprofio_bytes_free(&gz);
}

LTest(batch, encode_sends_missing_source_strings_as_empty_and_no_tags) {
    pprofio_source src = {.pid = 1, .service = "svc"}; /* every other string NULL */
    profile_set s = {0};
    add_profile(&s, PPROFIO_PROFILE_HEAP, T0, T0, 10, 0, 0, 9);
    pprofio_bytes gz = encode_ok(&src, BATCH_ID, 1, &s, NULL, 0);
    UploadRequest *req = decode_batch(gz.p, gz.len);
    assert_str(req->source->service, "svc");
    assert_str(req->source->hostname, "");
    assert_str(req->source->instance_id, "");
    assert_str(req->source->runtime_version, "");
    assert_i64(req->source->n_tags, 0);
    assert_i64(req->source->pid, 1);
    expect_profile(req->profiles[0], &s.p[0], 0);
    free_request(req);
    pprofio_bytes_free(&gz);
    free_profiles(&s);
}

LTest(batch, encode_replaces_what_the_output_buffer_held) {
    profile_set s;
    five_profiles(&s);
    pprofio_bytes gz = {0};
    assert_status(pprofio_bytes_grow(&gz, 1000, NULL, NULL), PPROFIO_OK);
    memset(gz.p, 0xAB, 1000);
    gz.len = 1000;
    pprofio_error err = {0};
    assert_status(pprofio_batch_encode(&the_source, BATCH_ID, 3, s.ptr, s.n, NULL, 0, &gz, &err), PPROFIO_OK);
    cr_assert(is_one_gzip_member(&gz), "stale bytes were left before the batch");
    UploadRequest *req = decode_batch(gz.p, gz.len);
    expect_request(req, BATCH_ID, 3, &the_source, s.ptr, s.n, NULL, 0);
    free_request(req);
    pprofio_bytes_free(&gz);
    free_profiles(&s);
}

LTest(batch, large_profiles_of_random_and_compressible_bytes_round_trip) {
    profile_set s = {0};
    /* One profile of 3 MiB random then 3 MiB text, one of 5 MiB text, and a small one. */
    const size_t half = 3 * MiB + 11;
    uint8_t *mixed = malloc(2 * half);
    uint8_t *r = random_bytes(half, 77), *t = text_bytes(half, 78);
    memcpy(mixed, r, half);
    memcpy(mixed + half, t, half);
    free(r);
    free(t);
    s.p[0] = (pprofio_profile){.type = PPROFIO_PROFILE_CPU, .start_ns = T0, .end_ns = T0 + 10 * SEC,
                               .raw = {mixed, 2 * half, 2 * half}};
    s.ptr[0] = &s.p[0];
    s.n = 1;
    add_profile(&s, PPROFIO_PROFILE_HEAP, T0, T0 + 60 * SEC, 5 * MiB, 0, 1, 79);
    add_profile(&s, PPROFIO_PROFILE_GOROUTINE, T0 + 60 * SEC, T0 + 60 * SEC, 999, 1, 0, 80);
    pprofio_bytes gz = encode_ok(&the_source, BATCH_ID, 9, &s, NULL, 0);
    cr_assert(is_one_gzip_member(&gz));
    size_t raw_total = 2 * half + 5 * MiB + 999;
    cr_assert_gt(gz.len, half, "%zu random bytes cannot deflate to %zu", half, gz.len);
    cr_assert_lt(gz.len, raw_total / 2, "%zu bytes, mostly text, deflated only to %zu", raw_total, gz.len);
    UploadRequest *req = decode_batch(gz.p, gz.len);
    expect_request(req, BATCH_ID, 9, &the_source, s.ptr, s.n, NULL, 0);
    free_request(req);
    pprofio_bytes_free(&gz);
    free_profiles(&s);
}

LTest(batch, event_attributes_past_the_maximum_are_ignored_and_long_strings_cut) {
    pprofio_event ev;
    char long_kind[100], long_value[200];
    memset(long_kind, 'k', sizeof long_kind - 1);
    long_kind[sizeof long_kind - 1] = '\0';
    memset(long_value, 'v', sizeof long_value - 1);
    long_value[sizeof long_value - 1] = '\0';
    pprofio_event_init(&ev, long_kind, 5, "m");
    for (int i = 0; i < PPROFIO_EVENT_MAX_ATTRS + 3; i++)
        pprofio_event_attr(&ev, "key", long_value);
    assert_i64(ev.n_attrs, PPROFIO_EVENT_MAX_ATTRS);
    assert_i64(strlen(ev.kind), sizeof ev.kind - 1);
    assert_i64(strlen(ev.values[0]), sizeof ev.values[0] - 1);
    profile_set s = {0};
    pprofio_bytes gz = encode_ok(&the_source, BATCH_ID, 1, &s, &ev, 1);
    UploadRequest *req = decode_batch(gz.p, gz.len);
    expect_request(req, BATCH_ID, 1, &the_source, NULL, 0, &ev, 1);
    free_request(req);
    pprofio_bytes_free(&gz);
}

/* ---- ids ---------------------------------------------------------------------------- */

static int cmp_ids(const void *a, const void *b) { return strcmp((const char *)a, (const char *)b); }

LTest(batch, ids_are_32_lowercase_hex_characters_and_differ_between_calls) {
    enum { N = 2000 };
    static char ids[N][33];
    int seen[32][16] = {{0}};
    for (int i = 0; i < N; i++) {
        memset(ids[i], '#', sizeof ids[i]);
        pprofio_batch_id(ids[i]);
        assert_i64(strlen(ids[i]), 32);
        for (int k = 0; k < 32; k++) {
            char c = ids[i][k];
            cr_assert((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'), "id %s has '%c' at %d", ids[i], c, k);
            seen[k][c <= '9' ? c - '0' : c - 'a' + 10]++;
        }
        cr_assert(pprofio_batch_id_valid(ids[i]), "a fresh id %s is not valid", ids[i]);
    }
    qsort(ids, N, sizeof ids[0], cmp_ids);
    for (int i = 1; i < N; i++)
        cr_assert(strcmp(ids[i - 1], ids[i]) != 0, "the id %s came twice in %d calls", ids[i], N);
    /* Every position takes every hex digit: the ids are random, not counters. */
    for (int k = 0; k < 32; k++)
        for (int d = 0; d < 16; d++)
            cr_assert_gt(seen[k][d], 40, "digit %x appeared %d times at position %d in %d ids", d, seen[k][d], k,
                         N);
}

LTest(batch, id_valid_accepts_only_32_lowercase_hex_characters) {
    cr_assert(pprofio_batch_id_valid("0123456789abcdef0123456789abcdef"));
    cr_assert(pprofio_batch_id_valid("00000000000000000000000000000000"));
    cr_assert(pprofio_batch_id_valid("ffffffffffffffffffffffffffffffff"));
    static const char *const bad[] = {
        "",
        "0123456789abcdef0123456789abcde",   /* 31 */
        "0123456789abcdef0123456789abcdef0", /* 33 */
        "0123456789ABCDEF0123456789abcdef",  /* uppercase */
        "0123456789abcdeF0123456789abcdef",  /* one uppercase */
        "0123456789abcdeg0123456789abcdef",  /* g */
        "0123456789abcdef 123456789abcdef",  /* space */
        "0123456789abcdef-123456789abcdef",  /* dash */
        "../../../../../../../../etc/pass",  /* a path */
        "0123456789abcdef0123456789abcde\xe9", /* not ASCII */
        "0123456789abcdef0123456789abcd\n",  /* newline, 31 + 1 */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        cr_assert_not(pprofio_batch_id_valid(bad[i]), "\"%s\" was accepted as a batch id", bad[i]);
    cr_assert_not(pprofio_batch_id_valid(NULL));
    char embedded[33];
    memcpy(embedded, "0123456789abcdef0123456789abcdef", 33);
    embedded[10] = '\0';
    cr_assert_not(pprofio_batch_id_valid(embedded), "an id cut by a NUL was accepted");
}

/* ---- split ------------------------------------------------------------------------- */

/* split_ok splits gz and checks both parts against the original. */
static void expect_split(const pprofio_bytes *gz, const char *orig_id, uint64_t seq, const profile_set *s,
                         const pprofio_event *ev, size_t n_ev) {
    pprofio_bytes first = {0}, second = {0};
    char id1[33], id2[33];
    memset(id1, '#', sizeof id1);
    memset(id2, '#', sizeof id2);
    pprofio_error err = {0};
    int rc = pprofio_batch_split(gz->p, gz->len, &first, id1, &second, id2, &err);
    cr_assert_eq(rc, PPROFIO_OK, "splitting %zu profiles: %d (%s): %s", s->n, rc, pprofio_strstatus(rc), err.msg);
    cr_assert(pprofio_batch_id_valid(id1) && pprofio_batch_id_valid(id2), "part ids \"%.33s\" and \"%.33s\"", id1,
              id2);
    cr_assert(strcmp(id1, id2) != 0, "both parts have the id %s", id1);
    cr_assert(strcmp(id1, orig_id) != 0 && strcmp(id2, orig_id) != 0, "a part kept the id %s", orig_id);
    cr_assert(is_one_gzip_member(&first) && is_one_gzip_member(&second), "a part is not one gzip member");

    size_t half = s->n / 2;
    UploadRequest *a = decode_batch(first.p, first.len), *b = decode_batch(second.p, second.len);
    expect_request(a, id1, seq, &the_source, s->ptr, half, ev, n_ev);
    expect_request(b, id2, seq, &the_source, s->ptr + half, s->n - half, NULL, 0);
    size_t count = 999;
    assert_status(pprofio_batch_count_profiles(first.p, first.len, &count), PPROFIO_OK);
    assert_i64(count, half);
    assert_status(pprofio_batch_count_profiles(second.p, second.len, &count), PPROFIO_OK);
    assert_i64(count, s->n - half);
    free_request(a);
    free_request(b);
    pprofio_bytes_free(&first);
    pprofio_bytes_free(&second);
}

LTest(batch, split_halves_the_profiles_in_order_with_new_ids_and_the_events_in_the_first) {
    profile_set s;
    five_profiles(&s);
    pprofio_event ev[3];
    size_t n_ev = three_events(ev);
    pprofio_bytes gz = encode_ok(&the_source, BATCH_ID, 17, &s, ev, n_ev);
    expect_split(&gz, BATCH_ID, 17, &s, ev, n_ev); /* 5: 2 then 3 */
    pprofio_bytes_free(&gz);
    free_profiles(&s);
}

LTest(batch, split_works_for_every_count_from_two_and_parts_split_again) {
    for (size_t n = 2; n <= 9; n++) {
        profile_set s = {0};
        for (size_t i = 0; i < n; i++)
            add_profile(&s, 1 + (int)(i % PPROFIO_PROFILE_MAX), T0 + (int64_t)i * SEC, T0 + (int64_t)(i + 1) * SEC,
                        (i + 1) * 3 * KiB, (int)(i % 2), (int)(i % 3 == 0), 300 + n * 16 + i);
        pprofio_event ev;
        pprofio_event_init(&ev, "profile_skipped", T0, "x");
        pprofio_bytes gz = encode_ok(&the_source, BATCH_ID, n, &s, &ev, 1);
        expect_split(&gz, BATCH_ID, n, &s, &ev, 1);
        pprofio_bytes_free(&gz);
        free_profiles(&s);
    }
    /* A part is a batch like any other: its second half splits again. */
    profile_set s = {0};
    for (size_t i = 0; i < 4; i++)
        add_profile(&s, PPROFIO_PROFILE_HEAP, T0, T0, 1000 + i, 1, 0, 900 + i);
    pprofio_bytes gz = encode_ok(&the_source, BATCH_ID, 5, &s, NULL, 0);
    pprofio_bytes a = {0}, b = {0};
    char id1[33], id2[33];
    assert_status(pprofio_batch_split(gz.p, gz.len, &a, id1, &b, id2, NULL), PPROFIO_OK);
    profile_set back = {.n = 2, .ptr = {s.ptr[2], s.ptr[3]}};
    expect_split(&b, id2, 5, &back, NULL, 0);
    pprofio_bytes_free(&a);
    pprofio_bytes_free(&b);
    pprofio_bytes_free(&gz);
    free_profiles(&s);
}

static void expect_split_fails(const void *p, size_t n, int want, const char *what) {
    pprofio_bytes first = {0}, second = {0};
    char id1[33] = "", id2[33] = "";
    pprofio_error err = {0};
    int rc = pprofio_batch_split(p, n, &first, id1, &second, id2, &err);
    cr_assert_eq(rc, want, "splitting %s returned %d (%s), want %d (%s)", what, rc, pprofio_strstatus(rc), want,
                 pprofio_strstatus(want));
    cr_assert_eq(err.code, rc, "%s: the error says %d: %s", what, err.code, err.msg);
    assert_contains(err.msg, "batch");
    cr_assert(first.len == 0 && second.len == 0, "%s: a failed split wrote %zu and %zu bytes", what, first.len,
              second.len);
    pprofio_bytes_free(&first);
    pprofio_bytes_free(&second);
    size_t count = 12345;
    rc = pprofio_batch_count_profiles(p, n, &count);
    if (want == PPROFIO_ERR_FORMAT) {
        cr_assert_eq(rc, PPROFIO_ERR_FORMAT, "counting %s returned %d (%s)", what, rc, pprofio_strstatus(rc));
        assert_i64(count, 12345);
    }
}

LTest(batch, split_refuses_a_batch_of_fewer_than_two_profiles) {
    profile_set s = {0};
    add_profile(&s, PPROFIO_PROFILE_CPU, T0, T0 + SEC, 50 * KiB, 1, 0, 11);
    pprofio_event ev[3];
    size_t n_ev = three_events(ev);
    pprofio_bytes gz = encode_ok(&the_source, BATCH_ID, 1, &s, ev, n_ev);
    expect_split_fails(gz.p, gz.len, PPROFIO_ERR_INVALID, "one profile");
    pprofio_error err = {0};
    pprofio_bytes a = {0}, b = {0};
    char id1[33], id2[33];
    pprofio_batch_split(gz.p, gz.len, &a, id1, &b, id2, &err);
    assert_contains(err.msg, "cannot be split");
    pprofio_bytes_free(&gz);

    profile_set none = {0};
    gz = encode_ok(&the_source, BATCH_ID, 1, &none, ev, n_ev);
    expect_split_fails(gz.p, gz.len, PPROFIO_ERR_INVALID, "no profiles");
    pprofio_bytes_free(&gz);
    free_profiles(&s);
}

LTest(batch, events_only_keeps_the_events_and_sequence_under_a_new_id_without_the_profiles) {
    profile_set s = {0};
    add_profile(&s, PPROFIO_PROFILE_CPU, T0, T0 + SEC, 50 * KiB, 1, 0, 12);
    pprofio_event ev[3];
    size_t n_ev = three_events(ev);
    pprofio_bytes gz = encode_ok(&the_source, BATCH_ID, 23, &s, ev, n_ev);
    pprofio_bytes part = {0};
    char id[33] = "";
    size_t n = 0;
    assert_status(pprofio_batch_events_only(gz.p, gz.len, &part, id, &n, NULL), PPROFIO_OK);
    assert_i64(n, n_ev);
    cr_assert(pprofio_batch_id_valid(id) && strcmp(id, BATCH_ID) != 0, "the part's id is \"%s\"", id);
    UploadRequest *req = decode_batch(part.p, part.len);
    expect_request(req, id, 23, &the_source, NULL, 0, ev, n_ev);
    free_request(req);
    pprofio_bytes_free(&part);
    pprofio_bytes_free(&gz);

    gz = encode_ok(&the_source, BATCH_ID, 24, &s, NULL, 0); /* no events: nothing to keep */
    assert_status(pprofio_batch_events_only(gz.p, gz.len, &part, id, &n, NULL), PPROFIO_OK);
    assert_i64(n, 0);
    assert_i64(part.len, 0);
    pprofio_bytes_free(&gz);
    pprofio_error err = {0};
    static const uint8_t junk[] = "not a batch";
    assert_status(pprofio_batch_events_only(junk, sizeof junk, &part, id, &n, &err), PPROFIO_ERR_FORMAT);
    assert_contains(err.msg, "batch");
    pprofio_bytes_free(&part);
    free_profiles(&s);
}

LTest(batch, split_and_count_refuse_bytes_that_are_not_a_batch) {
    profile_set s;
    five_profiles(&s);
    pprofio_bytes gz = encode_ok(&the_source, BATCH_ID, 1, &s, NULL, 0);

    /* Not gzip at all. */
    uint8_t *noise = random_bytes(4096, 21);
    expect_split_fails(noise, 4096, PPROFIO_ERR_FORMAT, "random bytes");
    expect_split_fails(noise, 0, PPROFIO_ERR_FORMAT, "nothing");
    expect_split_fails("\x1f\x8b", 2, PPROFIO_ERR_FORMAT, "a gzip magic alone");
    /* The batch cut short, and with a damaged byte in the middle. */
    expect_split_fails(gz.p, gz.len / 2, PPROFIO_ERR_FORMAT, "half a batch");
    expect_split_fails(gz.p, gz.len - 1, PPROFIO_ERR_FORMAT, "a batch without its last byte");
    uint8_t *bent = malloc(gz.len);
    memcpy(bent, gz.p, gz.len);
    bent[gz.len / 2] ^= 0x40;
    expect_split_fails(bent, gz.len, PPROFIO_ERR_FORMAT, "a batch with a flipped bit");
    /* Whole gzip of bytes that are not an UploadRequest. */
    pprofio_bytes gz_noise = gzip_of(noise, 4096);
    expect_split_fails(gz_noise.p, gz_noise.len, PPROFIO_ERR_FORMAT, "gzipped random bytes");
    /* A request cut inside a field, then gzipped whole. */
    pprofio_bytes raw = {0};
    assert_status(pprofio_gunzip_bytes(gz.p, gz.len, &raw), PPROFIO_OK);
    pprofio_bytes gz_cut = gzip_of(raw.p, raw.len - 100);
    expect_split_fails(gz_cut.p, gz_cut.len, PPROFIO_ERR_FORMAT, "a gzipped request cut inside a profile");
    /* An empty request is well-formed: no profiles to split, zero to count. */
    pprofio_bytes gz_empty = gzip_of("", 0);
    expect_split_fails(gz_empty.p, gz_empty.len, PPROFIO_ERR_INVALID, "an empty request");
    size_t count = 99;
    assert_status(pprofio_batch_count_profiles(gz_empty.p, gz_empty.len, &count), PPROFIO_OK);
    assert_i64(count, 0);
    assert_status(pprofio_batch_count_profiles(gz.p, gz.len, &count), PPROFIO_OK);
    assert_i64(count, 5);

    pprofio_bytes_free(&gz_empty);
    pprofio_bytes_free(&gz_cut);
    pprofio_bytes_free(&raw);
    pprofio_bytes_free(&gz_noise);
    free(bent);
    free(noise);
    pprofio_bytes_free(&gz);
    free_profiles(&s);
}

/* ---- out of memory --------------------------------------------------------------------- */

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

LTest(batch, encode_fails_cleanly_at_every_allocation) {
    profile_set s;
    five_profiles(&s);
    add_profile(&s, PPROFIO_PROFILE_CPU, T0, T0 + SEC, 700 * KiB, 0, 0, 31); /* the output grows several times */
    pprofio_event ev[3];
    size_t n_ev = three_events(ev);
    long n;
    for (n = 0;; n++) {
        cr_assert_lt(n, MAX_RUNS);
        pprofio_bytes out = {0};
        pprofio_error err = {0};
        arm(n);
        int rc = pprofio_batch_encode(&the_source, BATCH_ID, 8, s.ptr, s.n, ev, n_ev, &out, &err);
        int failed = disarm(n);
        if (failed) {
            cr_assert_eq(rc, PPROFIO_ERR_NOMEM, "encode with allocation %ld failing returned %d (%s)", n, rc,
                         pprofio_strstatus(rc));
            assert_i64(err.code, PPROFIO_ERR_NOMEM);
            assert_contains(err.msg, "memory");
        } else {
            assert_status(rc, PPROFIO_OK);
            UploadRequest *req = decode_batch(out.p, out.len);
            expect_request(req, BATCH_ID, 8, &the_source, s.ptr, s.n, ev, n_ev);
            free_request(req);
        }
        pprofio_bytes_free(&out); /* the caller owns out, whatever encode returned */
        if (!failed)
            break;
    }
    cr_assert_gt(n, 10, "encode made only %ld allocations", n);
    cr_log_info("encode failed cleanly at each of its %ld allocations", n);
    free_profiles(&s);
}

LTest(batch, split_and_count_fail_cleanly_at_every_allocation) {
    profile_set s;
    five_profiles(&s);
    add_profile(&s, PPROFIO_PROFILE_CPU, T0, T0 + SEC, 500 * KiB, 0, 0, 32);
    pprofio_event ev[3];
    size_t n_ev = three_events(ev);
    pprofio_bytes gz = encode_ok(&the_source, BATCH_ID, 8, &s, ev, n_ev);
    long n;
    for (n = 0;; n++) {
        cr_assert_lt(n, MAX_RUNS);
        pprofio_bytes first = {0}, second = {0};
        char id1[33], id2[33];
        pprofio_error err = {0};
        arm(n);
        int rc = pprofio_batch_split(gz.p, gz.len, &first, id1, &second, id2, &err);
        int failed = disarm(n);
        if (failed) {
            cr_assert_eq(rc, PPROFIO_ERR_NOMEM, "split with allocation %ld failing returned %d (%s): %s", n, rc,
                         pprofio_strstatus(rc), err.msg);
            assert_i64(err.code, PPROFIO_ERR_NOMEM);
        } else {
            assert_status(rc, PPROFIO_OK);
            UploadRequest *a = decode_batch(first.p, first.len), *b = decode_batch(second.p, second.len);
            expect_request(a, id1, 8, &the_source, s.ptr, 3, ev, n_ev);
            expect_request(b, id2, 8, &the_source, s.ptr + 3, 3, NULL, 0);
            free_request(a);
            free_request(b);
        }
        pprofio_bytes_free(&first); /* the caller owns both parts, whatever split returned */
        pprofio_bytes_free(&second);
        if (!failed)
            break;
    }
    cr_assert_gt(n, 10, "split made only %ld allocations", n);
    cr_log_info("split failed cleanly at each of its %ld allocations", n);

    for (n = 0;; n++) {
        cr_assert_lt(n, MAX_RUNS);
        size_t count = 777;
        arm(n);
        int rc = pprofio_batch_count_profiles(gz.p, gz.len, &count);
        int failed = disarm(n);
        if (!failed) {
            assert_status(rc, PPROFIO_OK);
            assert_i64(count, 6);
            break;
        }
        cr_assert_eq(rc, PPROFIO_ERR_NOMEM, "count with allocation %ld failing returned %d (%s)", n, rc,
                     pprofio_strstatus(rc));
        assert_i64(count, 777);
    }
    cr_assert_gt(n, 5);
    pprofio_bytes_free(&gz);
    free_profiles(&s);
}
