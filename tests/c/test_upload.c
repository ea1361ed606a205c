/*
 * test_upload.c: the uploader (csrc/upload.c) and the agent's upload thread
 * against the reference receiver (examples/ingest-server), a real HTTPS
 * server on loopback with its own throwaway CA, started per test as a
 * subprocess. Faults (statuses, Retry-After, redirects, resets, hangs, a
 * wire-size limit) are made by the server through its -script and
 * -max-wire-bytes flags; what it saw is read back from its -record file
 * (one JSON line per request) and its data folder (batches.jsonl and the
 * profile files).
 *
 * The receiver's build, processes and records are receiver.h's.
 */
#include <criterion/hooks.h>
#include <pthread.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>

#include "../../csrc/batch.h"
#include "../../csrc/clock.h"
#include "../../csrc/retry.h"
#include "../../csrc/upload.h"
#include "collector.h"
#include "receiver.h"

#define KEY RECEIVER_KEY
#define UA "pprofio-go/0.1.0 (linux/amd64; go1.26.8) upload-test"
#define SERVICE "upload-test"
#define INSTANCE "0123456789abcdef0123456789abcdef"
#define PERIOD (60 * SEC)
#define CPU_WINDOW (10 * SEC)
#define CPU_BIT PPROFIO_TYPE_BIT(PPROFIO_PROFILE_CPU)
#define HEAP_BIT PPROFIO_TYPE_BIT(PPROFIO_PROFILE_HEAP)

TestSuite(upload, .timeout = HANG_GUARD_S, .fini = receiver_fini);
TestSuite(upload_post, .timeout = HANG_GUARD_S, .fini = receiver_fini);
TestSuite(upload_agent, .timeout = HANG_GUARD_S, .fini = receiver_fini);

/* ---- what is sent ---------------------------------------------------------------- */

static const char *const tag_keys[] = {"env", "region"};
static const char *const tag_values[] = {"test", "eu-1"};

static pprofio_source test_source(void) {
    return (pprofio_source){
        .tag_keys = tag_keys,
        .tag_values = tag_values,
        .n_tags = 2,
        .service = SERVICE,
        .hostname = "host-7",
        .pid = 4242,
        .instance_id = INSTANCE,
        .agent_version = "0.1.0",
        .runtime_version = "go1.26.8",
        .os = "linux",
        .arch = "amd64",
        .process_start_ns = INT64_C(1795988000) * SEC + 123,
    };
}

/* upload_config is a config that posts to s (ca: the CA file to trust; NULL: s's own). */
static pprofio_config upload_config(const server *s, const char *ca) {
    return (pprofio_config){
        .service_name = SERVICE,
        .ingest_url = s->url,
        .api_key = KEY,
        .ca_file = ca ? ca : s->ca,
        .user_agent = UA,
        /* generous: a busy machine must not turn a slow answer into a failed test */
        .connect_timeout_ns = 60 * SEC,
        .request_timeout_ns = 120 * SEC,
        .stop_timeout_ns = 120 * SEC, /* close returns as soon as nothing is left to send */
        .source = test_source(),
        .period_ns = PERIOD,
        .cpu_duration_ns = CPU_WINDOW,
        .jitter_seed = 1,
        .max_buffer_bytes = 8 * (int64_t)MiB,
        .profile_types = CPU_BIT | HEAP_BIT,
    };
}

static pprofio_uploader *new_uploader(const pprofio_config *cfg) {
    pprofio_uploader *u = NULL;
    pprofio_error err = {0};
    int rc = pprofio_uploader_new(cfg, &u, &err);
    cr_assert_eq(rc, PPROFIO_OK, "pprofio_uploader_new: %s", err.msg);
    return u;
}

/* A batch as the agent makes it: its id, raw profiles and the gzipped UploadRequest. */
typedef struct {
    char id[PPROFIO_BATCH_ID_LEN + 1];
    uint64_t sequence;
    size_t n;
    int types[4];
    uint8_t *raw[4];
    size_t raw_len[4];
    pprofio_bytes body;
} test_batch;

/* make_batch encodes n profiles (heap, cpu, heap, ...) of the given sizes; random: incompressible. */
static void make_batch(test_batch *b, uint64_t sequence, size_t n, size_t size, int random) {
    memset(b, 0, sizeof *b);
    cr_assert_leq(n, 4);
    pprofio_batch_id(b->id);
    b->sequence = sequence;
    b->n = n;
    pprofio_profile ps[4];
    pprofio_profile *pp[4];
    const int64_t start = INT64_C(1795988400) * SEC;
    for (size_t i = 0; i < n; i++) {
        b->types[i] = i % 2 ? PPROFIO_PROFILE_CPU : PPROFIO_PROFILE_HEAP;
        b->raw_len[i] = size + i * 37;
        b->raw[i] = random ? random_bytes(b->raw_len[i], 1000 + sequence * 10 + i)
                           : text_bytes(b->raw_len[i], 1000 + sequence * 10 + i);
        ps[i] = (pprofio_profile){.type = b->types[i],
                                  .start_ns = start + (int64_t)i * SEC,
                                  .end_ns = start + (int64_t)i * SEC + 10 * SEC,
                                  .raw = {.p = b->raw[i], .len = b->raw_len[i], .cap = b->raw_len[i]}};
        pp[i] = &ps[i];
    }
    pprofio_source src = test_source();
    pprofio_error err = {0};
    int rc = pprofio_batch_encode(&src, b->id, sequence, pp, n, NULL, 0, &b->body, &err);
    cr_assert_eq(rc, PPROFIO_OK, "pprofio_batch_encode: %s", err.msg);
}

static void free_batch(test_batch *b) {
    for (size_t i = 0; i < b->n; i++)
        free(b->raw[i]);
    pprofio_bytes_free(&b->body);
}

/* post sends b and checks what every answer must satisfy: no API key in its detail. */
static pprofio_upload_result post(pprofio_uploader *u, const test_batch *b, uint64_t *sent) {
    pprofio_upload_result r;
    uint64_t dummy;
    pprofio_uploader_post(u, b->id, b->body.p, b->body.len, 0, &r, sent ? sent : &dummy);
    cr_assert_null(strstr(r.detail, KEY), "the API key is in the detail: %s", r.detail);
    cr_log_info("post %s: verdict %d, status %ld, retry_after %lld ns, aborted %d: %s", b->id, r.verdict,
                r.status, (long long)r.retry_after_ns, r.aborted, r.detail);
    return r;
}

#define assert_result(r, want_verdict, want_status)                                                \
    do {                                                                                           \
        cr_assert_eq((r).verdict, (want_verdict), "verdict %d, want %d (status %ld: %s)",          \
                     (r).verdict, (want_verdict), (r).status, (r).detail);                         \
        cr_assert_eq((r).status, (long)(want_status), "status %ld, want %ld (%s)", (r).status,     \
                     (long)(want_status), (r).detail);                                             \
    } while (0)

static int contains_ci(const char *hay, const char *needle) { return strcasestr(hay, needle) != NULL; }

/* ==== the pure parts ============================================================== */

LTest(upload, every_status_of_the_contract_table_maps_to_its_verdict) {
    static const struct {
        long status;
        int verdict;
    } table[] = {
        {200, PPROFIO_UP_DONE},  {201, PPROFIO_UP_DONE},  {202, PPROFIO_UP_DONE},  {204, PPROFIO_UP_DONE},
        {409, PPROFIO_UP_DONE},  {400, PPROFIO_UP_DROP},  {404, PPROFIO_UP_DROP},  {405, PPROFIO_UP_DROP},
        {415, PPROFIO_UP_DROP},  {422, PPROFIO_UP_DROP},  {401, PPROFIO_UP_AUTH},  {403, PPROFIO_UP_AUTH},
        {413, PPROFIO_UP_SPLIT}, {429, PPROFIO_UP_RETRY}, {503, PPROFIO_UP_RETRY}, {500, PPROFIO_UP_RETRY},
        {502, PPROFIO_UP_RETRY}, {504, PPROFIO_UP_RETRY}, {301, PPROFIO_UP_RETRY}, {302, PPROFIO_UP_RETRY},
        {307, PPROFIO_UP_RETRY}, {308, PPROFIO_UP_RETRY}, {0, PPROFIO_UP_RETRY},
    };
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++)
        cr_expect_eq(pprofio_upload_verdict_of(table[i].status), table[i].verdict, "status %ld: verdict %d, want %d",
                     table[i].status, pprofio_upload_verdict_of(table[i].status), table[i].verdict);
}

/* http_date formats t (Unix seconds) as an IMF-fixdate, as Retry-After carries it. */
static void http_date(time_t t, char *out, size_t n) {
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, n, "%a, %d %b %Y %H:%M:%S GMT", &tm);
}

LTest(upload, retry_after_reads_seconds_and_http_dates_caps_them_at_an_hour_and_refuses_garbage) {
    const int64_t now_s = 1795988477, now = now_s * SEC;
    /* delta seconds */
    assert_i64(pprofio_parse_retry_after("2", now), 2 * SEC);
    assert_i64(pprofio_parse_retry_after("0", now), 0);
    assert_i64(pprofio_parse_retry_after(" 120 ", now), 120 * SEC);
    assert_i64(pprofio_parse_retry_after("3600", now), 3600 * SEC);
    assert_i64(pprofio_parse_retry_after("3601", now), 3600 * SEC);
    assert_i64(pprofio_parse_retry_after("86400", now), 3600 * SEC);
    assert_i64(pprofio_parse_retry_after("99999999999999999999999", now), 3600 * SEC);
    /* HTTP dates: future, past, far future */
    char d[64];
    http_date((time_t)(now_s + 30), d, sizeof d);
    assert_i64(pprofio_parse_retry_after(d, now), 30 * SEC);
    assert_i64(pprofio_parse_retry_after(d, now + 500 * MS), 29 * SEC + 500 * MS);
    http_date((time_t)(now_s - 30), d, sizeof d);
    assert_i64(pprofio_parse_retry_after(d, now), 0);
    http_date((time_t)(now_s + 7200), d, sizeof d);
    assert_i64(pprofio_parse_retry_after(d, now), 3600 * SEC);
    http_date((time_t)(now_s + 3600), d, sizeof d);
    assert_i64(pprofio_parse_retry_after(d, now), 3600 * SEC);
    assert_i64(pprofio_parse_retry_after("Sun, 29 Nov 2026 21:41:47 GMT", now), 30 * SEC);
    /* a date centuries ahead, whose nanoseconds do not fit in int64 (found by tests/fuzz/fuzz_retry_after.c) */
    assert_i64(pprofio_parse_retry_after("Fri, 31 Dec 9999 23:59:59 GMT", now), 3600 * SEC);
    assert_i64(pprofio_parse_retry_after("Fri, 31 Dec 9999 23:59:59 GMT", INT64_MAX), 3600 * SEC);
    assert_i64(pprofio_parse_retry_after("Fri, 31 Dec 9999 23:59:59 GMT", 0), 3600 * SEC);
    /* garbage */
    static const char *const junk[] = {"", "   ", "soon", "12abc", "1.5", "2 s", "-5", "Sun, 99 Foo 2026 99:99:99 GMT"};
    for (size_t i = 0; i < sizeof junk / sizeof junk[0]; i++)
        cr_expect_eq(pprofio_parse_retry_after(junk[i], now), -1, "\"%s\" gave %lld, want -1", junk[i],
                     (long long)pprofio_parse_retry_after(junk[i], now));
    assert_i64(pprofio_parse_retry_after(NULL, now), -1);
}

LTest(upload, backoff_is_full_jitter_up_to_two_to_the_attempt_seconds_capped_at_300_s) {
    uint64_t rng = 42;
    for (int attempt = 0; attempt <= 20; attempt++) {
        int64_t cap = attempt >= 9 ? 300 * SEC : (SEC << attempt);
        int64_t lo = INT64_MAX, hi = INT64_MIN;
        double sum = 0;
        const int draws = 4000;
        for (int i = 0; i < draws; i++) {
            int64_t w = pprofio_backoff_ns(attempt, &rng);
            cr_assert(w >= 0 && w <= cap, "attempt %d: %lld ns is outside [0, %lld]", attempt, (long long)w,
                      (long long)cap);
            lo = w < lo ? w : lo;
            hi = w > hi ? w : hi;
            sum += (double)w;
        }
        /* uniform over the whole range: reaches near both ends, mean near the middle */
        cr_assert_gt(hi, cap - cap / 50, "attempt %d: the largest of %d draws is %lld, cap %lld", attempt, draws,
                     (long long)hi, (long long)cap);
        cr_assert_lt(lo, cap / 50, "attempt %d: the smallest of %d draws is %lld", attempt, draws, (long long)lo);
        double mean = sum / draws;
        cr_assert(mean > 0.45 * (double)cap && mean < 0.55 * (double)cap, "attempt %d: mean %.0f, cap %lld",
                  attempt, mean, (long long)cap);
    }
    for (int attempt = 21; attempt < 200; attempt += 7)
        cr_assert_leq(pprofio_backoff_ns(attempt, &rng), 300 * SEC);
    cr_assert_leq(pprofio_backoff_ns(INT32_MAX, &rng), 300 * SEC);
}

LTest(upload, the_endpoint_is_the_base_url_and_v1_profiles_with_one_slash_between) {
    static const char *const cases[][2] = {
        {"https://h", "https://h/v1/profiles"},
        {"https://h/", "https://h/v1/profiles"},
        {"https://h/prefix/", "https://h/prefix/v1/profiles"},
        {"https://h/prefix", "https://h/prefix/v1/profiles"},
        {"https://h/prefix///", "https://h/prefix/v1/profiles"},
        {"https://api.pprofio.com", "https://api.pprofio.com/v1/profiles"},
        {"http://127.0.0.1:8080//", "http://127.0.0.1:8080/v1/profiles"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char out[256];
        assert_status(pprofio_ingest_endpoint(cases[i][0], out, sizeof out), PPROFIO_OK);
        cr_expect_str_eq(out, cases[i][1], "%s -> %s, want %s", cases[i][0], out, cases[i][1]);
    }
    char small[16];
    assert_status(pprofio_ingest_endpoint("https://h/prefix/", small, sizeof small), PPROFIO_ERR_INVALID);
    /* the uploader posts there */
    pprofio_config cfg = {.ingest_url = "https://h/prefix//", .api_key = KEY};
    pprofio_uploader *u = new_uploader(&cfg);
    cr_assert_str_eq(pprofio_uploader_url(u), "https://h/prefix/v1/profiles");
    cr_assert_null(strstr(pprofio_uploader_url(u), KEY));
    pprofio_uploader_free(u);
}

/* ==== one post at a time, against the receiver ===================================== */

LTest(upload_post, a_200_is_done_and_the_request_carries_the_contract_headers_and_body) {
    server *s = server_start("", 0);
    pprofio_config cfg = upload_config(s, NULL);
    pprofio_uploader *u = new_uploader(&cfg);
    test_batch b;
    make_batch(&b, 7, 2, 3000, 0);
    uint64_t sent = 0;
    pprofio_upload_result r = post(u, &b, &sent);
    assert_result(r, PPROFIO_UP_DONE, 200);
    assert_i64(r.aborted, 0);
    assert_i64(r.retry_after_ns, -1);
    assert_i64(sent, b.body.len);
    assert_contains(r.detail, "HTTP 200");

    record rec = record_load(s);
    cr_assert_eq(rec.n, 1, "%zu requests recorded, want 1", rec.n);
    const request *q = &rec.r[0];
    cr_assert_str_eq(q->path, "/v1/profiles");
    assert_i64(q->status, 200);
    cr_assert_str_eq(q->auth, "Bearer " KEY);
    cr_assert_str_eq(q->ctype, "application/x-protobuf");
    cr_assert_str_eq(q->cenc, "gzip");
    cr_assert_str_eq(q->idem, b.id);
    cr_assert_str_eq(q->ua, UA);
    cr_assert(q->decoded, "the body did not decode: %s", q->text);
    cr_assert_str_eq(q->batch_id, b.id);
    assert_i64(q->sequence, 7);
    assert_i64(q->profiles, 2);
    assert_i64(q->wire_bytes, b.body.len);
    assert_contains(q->text, "\"profile_types\":[\"heap\",\"cpu\"]");
    record_free(&rec);
    free_batch(&b);
    pprofio_uploader_free(u);
    server_stop(s);
}

LTest(upload_post, the_stored_profiles_are_the_raw_bytes_sent_and_the_source_arrives_whole) {
    server *s = server_start("", 0);
    pprofio_config cfg = upload_config(s, NULL);
    pprofio_uploader *u = new_uploader(&cfg);
    test_batch b;
    make_batch(&b, 3, 2, 5000, 0);
    pprofio_upload_result r = post(u, &b, NULL);
    assert_result(r, PPROFIO_UP_DONE, 200);

    batches acc = batches_load(s);
    assert_i64(acc.n, 1);
    const char *line = batch_line(&acc, b.id);
    assert_i64(json_int(line, "sequence", -1), 3);
    expect_field(line, "service", SERVICE);
    expect_field(line, "instance_id", INSTANCE);
    expect_field(line, "hostname", "host-7");
    expect_field(line, "agent_version", "0.1.0");
    expect_field(line, "runtime_version", "go1.26.8");
    expect_field(line, "os", "linux");
    expect_field(line, "arch", "amd64");
    assert_i64(json_int(line, "pid", -1), 4242);
    assert_i64(json_int(line, "process_start_unix_nano", -1), INT64_C(1795988000) * SEC + 123);
    assert_contains(line, "\"tags\":{\"env\":\"test\",\"region\":\"eu-1\"}");
    assert_contains(line, "\"start_unix_nano\":1795988400000000000");
    assert_contains(line, "\"end_unix_nano\":1795988411000000000");
    for (size_t i = 0; i < b.n; i++) {
        size_t len;
        uint8_t *file = stored_file(s, line, (int)i, &len);
        cr_assert(gunzip_equals(file, len, b.raw[i], b.raw_len[i]),
                  "stored profile %zu does not gunzip to the %zu raw bytes sent", i, b.raw_len[i]);
        free(file);
    }
    batches_free(&acc);
    free_batch(&b);
    pprofio_uploader_free(u);
    server_stop(s);
}

LTest(upload_post, a_500_is_retried_and_the_same_batch_then_goes_through) {
    server *s = server_start("500,ok", 0);
    pprofio_config cfg = upload_config(s, NULL);
    pprofio_uploader *u = new_uploader(&cfg);
    test_batch b;
    make_batch(&b, 1, 1, 2000, 0);
    pprofio_upload_result r = post(u, &b, NULL);
    assert_result(r, PPROFIO_UP_RETRY, 500);
    assert_i64(r.retry_after_ns, -1);
    assert_contains(r.detail, "HTTP 500");
    r = post(u, &b, NULL);
    assert_result(r, PPROFIO_UP_DONE, 200);
    /* and once more: the receiver has seen it (409), which is done too */
    r = post(u, &b, NULL);
    assert_result(r, PPROFIO_UP_DONE, 409);

    record rec = record_load(s);
    assert_i64(rec.n, 3);
    assert_i64(rec.r[0].status, 500);
    assert_i64(rec.r[1].status, 200);
    assert_i64(rec.r[2].status, 409);
    for (size_t i = 0; i < rec.n; i++)
        cr_assert_str_eq(rec.r[i].idem, b.id);
    record_free(&rec);
    free_batch(&b);
    pprofio_uploader_free(u);
    server_stop(s);
}

LTest(upload_post, retry_after_in_seconds_on_429_and_503_is_the_retry_delay) {
    server *s = server_start("429/ra=2,503/ra=7", 0);
    pprofio_config cfg = upload_config(s, NULL);
    pprofio_uploader *u = new_uploader(&cfg);
    test_batch b;
    make_batch(&b, 1, 1, 2000, 0);
    pprofio_upload_result r = post(u, &b, NULL);
    assert_result(r, PPROFIO_UP_RETRY, 429);
    assert_i64(r.retry_after_ns, 2 * SEC);
    r = post(u, &b, NULL);
    assert_result(r, PPROFIO_UP_RETRY, 503);
    assert_i64(r.retry_after_ns, 7 * SEC);
    r = post(u, &b, NULL); /* the script ran out: no Retry-After is left over */
    assert_result(r, PPROFIO_UP_DONE, 200);
    assert_i64(r.retry_after_ns, -1);
    free_batch(&b);
    pprofio_uploader_free(u);
    server_stop(s);
}

LTest(upload_post, retry_after_as_an_http_date_on_429_and_503_is_the_time_until_then) {
    server *s = server_start("429/date=3,503/date=3", 0);
    pprofio_config cfg = upload_config(s, NULL);
    pprofio_uploader *u = new_uploader(&cfg);
    test_batch b;
    make_batch(&b, 1, 1, 2000, 0);
    pprofio_upload_result r = post(u, &b, NULL);
    assert_result(r, PPROFIO_UP_RETRY, 429);
    cr_assert(r.retry_after_ns > 0 && r.retry_after_ns <= 4 * SEC, "retry_after_ns %lld, want (0, 4 s]",
              (long long)r.retry_after_ns);
    r = post(u, &b, NULL);
    assert_result(r, PPROFIO_UP_RETRY, 503);
    cr_assert(r.retry_after_ns > 0 && r.retry_after_ns <= 4 * SEC, "retry_after_ns %lld, want (0, 4 s]",
              (long long)r.retry_after_ns);
    free_batch(&b);
    pprofio_uploader_free(u);
    server_stop(s);
}

LTest(upload_post, retry_after_on_answers_other_than_429_and_503_is_ignored) {
    /* API.md: Retry-After belongs to 429 and 503; other 5xx and 3xx back off. */
    server *s = server_start("500/ra=3000,302/ra=3000,502/date=3000,429/ra=3000", 0);
    pprofio_config cfg = upload_config(s, NULL);
    pprofio_uploader *u = new_uploader(&cfg);
    test_batch b;
    make_batch(&b, 1, 1, 2000, 0);
    pprofio_upload_result r = post(u, &b, NULL);
    assert_result(r, PPROFIO_UP_RETRY, 500);
    assert_i64(r.retry_after_ns, -1);
    r = post(u, &b, NULL);
    assert_result(r, PPROFIO_UP_RETRY, 302);
    assert_i64(r.retry_after_ns, -1);
    r = post(u, &b, NULL);
    assert_result(r, PPROFIO_UP_RETRY, 502);
    assert_i64(r.retry_after_ns, -1);
    r = post(u, &b, NULL);
    assert_result(r, PPROFIO_UP_RETRY, 429);
    assert_i64(r.retry_after_ns, 3000 * SEC);
    free_batch(&b);
    pprofio_uploader_free(u);
    server_stop(s);
}

LTest(upload_post, a_401_or_403_is_an_auth_failure) {
    server *s = server_start("401,403", 0);
    pprofio_config cfg = upload_config(s, NULL);
    pprofio_uploader *u = new_uploader(&cfg);
    test_batch b;
    make_batch(&b, 1, 1, 2000, 0);
    pprofio_upload_result r = post(u, &b, NULL);
    assert_result(r, PPROFIO_UP_AUTH, 401);
    r = post(u, &b, NULL);
    assert_result(r, PPROFIO_UP_AUTH, 403);
    /* and a key the receiver does not know, unscripted */
    cfg.api_key = "not-the-key";
    pprofio_uploader *u2 = new_uploader(&cfg);
    r = post(u2, &b, NULL);
    assert_result(r, PPROFIO_UP_AUTH, 401);
    assert_contains(r.detail, "unknown API key");
    cr_assert_null(strstr(r.detail, "not-the-key"), "the API key is in the detail: %s", r.detail);
    record rec = record_load(s);
    assert_i64(rec.n, 3);
    cr_assert_str_eq(rec.r[2].auth, "Bearer not-the-key");
    record_free(&rec);
    pprofio_uploader_free(u2);
    free_batch(&b);
    pprofio_uploader_free(u);
    server_stop(s);
}

LTest(upload_post, a_400_or_another_4xx_drops_with_the_response_body_in_the_detail) {
    server *s = server_start("400,404,422", 0);
    pprofio_config cfg = upload_config(s, NULL);
    pprofio_uploader *u = new_uploader(&cfg);
    test_batch b;
    make_batch(&b, 1, 1, 2000, 0);
    pprofio_upload_result r = post(u, &b, NULL);
    assert_result(r, PPROFIO_UP_DROP, 400);
    assert_contains(r.detail, "HTTP 400");
    assert_contains(r.detail, "scripted 400 Bad Request");
    r = post(u, &b, NULL);
    assert_result(r, PPROFIO_UP_DROP, 404);
    assert_contains(r.detail, "scripted 404 Not Found");
    r = post(u, &b, NULL);
    assert_result(r, PPROFIO_UP_DROP, 422);
    assert_contains(r.detail, "scripted 422 Unprocessable Entity");
    /* an unscripted 400: the Idempotency-Key does not match the body's batch_id */
    char other[PPROFIO_BATCH_ID_LEN + 1];
    pprofio_batch_id(other);
    uint64_t sent;
    pprofio_uploader_post(u, other, b.body.p, b.body.len, 0, &r, &sent);
    assert_result(r, PPROFIO_UP_DROP, 400);
    assert_contains(r.detail, "does not match batch_id");
    assert_contains(r.detail, b.id);
    cr_assert_null(strchr(r.detail, '\n'), "a control byte is left in the detail: %s", r.detail);
    free_batch(&b);
    pprofio_uploader_free(u);
    server_stop(s);
}

LTest(upload_post, a_413_asks_for_a_split_scripted_or_over_the_wire_limit) {
    server *s = server_start("413", 4096);
    pprofio_config cfg = upload_config(s, NULL);
    pprofio_uploader *u = new_uploader(&cfg);
    test_batch small, big;
    make_batch(&small, 1, 1, 1000, 0);
    make_batch(&big, 2, 2, 6000, 1);
    cr_assert_lt(small.body.len, 4096);
    cr_assert_gt(big.body.len, 4096);
    pprofio_upload_result r = post(u, &small, NULL);
    assert_result(r, PPROFIO_UP_SPLIT, 413);
    r = post(u, &big, NULL);
    assert_result(r, PPROFIO_UP_SPLIT, 413);
    assert_contains(r.detail, "over the limit");
    r = post(u, &small, NULL);
    assert_result(r, PPROFIO_UP_DONE, 200);
    free_batch(&small);
    free_batch(&big);
    pprofio_uploader_free(u);
    server_stop(s);
}

LTest(upload_post, a_redirect_is_retried_and_never_followed) {
    server *s = server_start("302,301", 0);
    pprofio_config cfg = upload_config(s, NULL);
    pprofio_uploader *u = new_uploader(&cfg);
    test_batch b;
    make_batch(&b, 1, 1, 2000, 0);
    pprofio_upload_result r = post(u, &b, NULL);
    assert_result(r, PPROFIO_UP_RETRY, 302);
    r = post(u, &b, NULL);
    assert_result(r, PPROFIO_UP_RETRY, 301);
    record rec = record_load(s);
    assert_i64(rec.n, 2);
    for (size_t i = 0; i < rec.n; i++)
        cr_assert_str_eq(rec.r[i].path, "/v1/profiles", "request %zu went to %s", i, rec.r[i].path);
    record_free(&rec);
    free_batch(&b);
    pprofio_uploader_free(u);
    server_stop(s);
}

LTest(upload_post, a_connection_reset_mid_body_is_retried_without_sigpipe) {
    /* SIGPIPE as a Go program leaves it for threads it did not make: fatal. */
    signal(SIGPIPE, SIG_DFL);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGPIPE);
    pthread_sigmask(SIG_UNBLOCK, &set, NULL);

    server *s = server_start("reset,reset,reset", 0);
    pprofio_config cfg = upload_config(s, NULL);
    pprofio_uploader *u = new_uploader(&cfg);
    test_batch b;
    make_batch(&b, 1, 1, MiB, 1);
    cr_assert_gt(b.body.len, MiB);
    for (int i = 0; i < 3; i++) {
        uint64_t sent = 0;
        pprofio_upload_result r = post(u, &b, &sent);
        assert_result(r, PPROFIO_UP_RETRY, 0);
        cr_assert(r.detail[0], "no detail");
        cr_log_info("reset %d: %llu of %zu bytes handed to the socket", i, (unsigned long long)sent, b.body.len);
    }
    record rec = record_load(s);
    assert_i64(rec.n, 3);
    for (size_t i = 0; i < rec.n; i++) {
        cr_assert_str_eq(rec.r[i].action, "reset");
        assert_i64(rec.r[i].status, 0);
    }
    record_free(&rec);
    /* The handle recovers: the next post goes through on a new connection. */
    pprofio_upload_result r = post(u, &b, NULL);
    assert_result(r, PPROFIO_UP_DONE, 200);
    free_batch(&b);
    pprofio_uploader_free(u);
    server_stop(s);
}

LTest(upload_post, a_server_that_never_answers_times_out_as_a_retry) {
    server *s = server_start("hang", 0);
    pprofio_config cfg = upload_config(s, NULL);
    cfg.request_timeout_ns = 1 * SEC;
    pprofio_uploader *u = new_uploader(&cfg);
    test_batch b;
    make_batch(&b, 1, 1, 2000, 0);
    double t0 = mono_seconds();
    pprofio_upload_result r = post(u, &b, NULL);
    double took = mono_seconds() - t0;
    assert_result(r, PPROFIO_UP_RETRY, 0);
    assert_i64(r.aborted, 0);
    cr_assert(contains_ci(r.detail, "timeout") || contains_ci(r.detail, "timed out"), "detail: %s", r.detail);
    /* The server never answers: that the post returned at all is the timeout at work. */
    cr_log_info("a 1 s request timeout returned after %.2f s", took);
    record rec = record_load(s);
    assert_i64(rec.n, 1);
    cr_assert_str_eq(rec.r[0].action, "hang");
    record_free(&rec);
    free_batch(&b);
    pprofio_uploader_free(u);
    server_stop(s);
}

typedef struct {
    pprofio_uploader *u;
    long after_ms;    /* sleep this long, */
    int64_t abort_in; /* then set the abort time this far ahead */
} aborter;

static void *abort_later(void *arg) {
    aborter *a = arg;
    sleep_ms(a->after_ms);
    pprofio_uploader_abort_at(a->u, wall_ns() + a->abort_in);
    return NULL;
}

LTest(upload_post, abort_at_from_another_thread_cuts_a_hanging_post_short) {
    server *s = server_start("hang", 0);
    pprofio_config cfg = upload_config(s, NULL);
    cfg.request_timeout_ns = HOUR; /* longer than any test may run: only the abort can end the post */
    pprofio_uploader *u = new_uploader(&cfg);
    test_batch b;
    make_batch(&b, 1, 1, 2000, 0);
    aborter ab = {.u = u, .after_ms = 100, .abort_in = 300 * MS};
    pthread_t t;
    cr_assert_eq(pthread_create(&t, NULL, abort_later, &ab), 0);
    double t0 = mono_seconds();
    pprofio_upload_result r = post(u, &b, NULL);
    double took = mono_seconds() - t0;
    pthread_join(t, NULL);
    assert_result(r, PPROFIO_UP_RETRY, 0);
    assert_i64(r.aborted, 1);
    cr_log_info("the abort 0.4 s in returned after %.2f s", took);
    wait_for_requests(s, 1); /* it did hang there */

    /* The abort time stays for later posts until it is cleared. */
    r = post(u, &b, NULL);
    assert_i64(r.aborted, 1);
    pprofio_uploader_abort_at(u, 0);
    r = post(u, &b, NULL);
    assert_result(r, PPROFIO_UP_DONE, 200);
    free_batch(&b);
    pprofio_uploader_free(u);
    server_stop(s);
}

LTest(upload_post, a_certificate_the_ca_file_does_not_trust_fails_before_anything_is_sent) {
    server *a = server_start("", 0);
    server *other = server_start("", 0);
    pprofio_config cfg = upload_config(a, other->ca); /* B's CA for A's certificate */
    pprofio_uploader *u = new_uploader(&cfg);
    test_batch b;
    make_batch(&b, 1, 1, 2000, 0);
    uint64_t sent = 0;
    pprofio_upload_result r = post(u, &b, &sent);
    assert_result(r, PPROFIO_UP_RETRY, 0);
    cr_assert(contains_ci(r.detail, "certificate") || contains_ci(r.detail, "SSL"), "detail: %s", r.detail);
    assert_i64(sent, 0);
    record rec = record_load(a);
    assert_i64(rec.n, 0);
    record_free(&rec);
    rec = record_load(other);
    assert_i64(rec.n, 0);
    record_free(&rec);
    /* with A's own CA it goes through: the failure was the trust, nothing else */
    pprofio_config good = upload_config(a, NULL);
    pprofio_uploader *u2 = new_uploader(&good);
    r = post(u2, &b, NULL);
    assert_result(r, PPROFIO_UP_DONE, 200);
    pprofio_uploader_free(u2);
    free_batch(&b);
    pprofio_uploader_free(u);
    server_stop(other);
    server_stop(a);
}

LTest(upload_post, the_api_key_is_in_no_detail_of_any_failure) {
    /*
     * The reset and the hang first, each on a fresh connection: when a kept-alive
     * connection dies before any answer, libcurl sends the request again on a
     * new one within the same post, which would take the next script item.
     */
    server *s = server_start("reset,hang,400,401,403,404,413,429/ra=1,500,503,302", 0);
    server *other = server_start("", 0);
    pprofio_config cfg = upload_config(s, NULL);
    cfg.request_timeout_ns = 1 * SEC;
    pprofio_uploader *u = new_uploader(&cfg);
    test_batch b;
    make_batch(&b, 1, 1, 2000, 0);
    char details[16][PPROFIO_UPLOAD_DETAIL];
    int n = 0;
    for (int i = 0; i < 11; i++) {
        pprofio_upload_result r = post(u, &b, NULL); /* asserts it too */
        cr_assert_neq(r.verdict, PPROFIO_UP_DONE, "item %d of the script was accepted", i);
        snprintf(details[n++], sizeof details[0], "%s", r.detail);
    }
    /* an untrusted certificate, a refused connection */
    pprofio_config bad_ca = upload_config(s, other->ca);
    pprofio_uploader *u2 = new_uploader(&bad_ca);
    pprofio_upload_result r = post(u2, &b, NULL);
    snprintf(details[n++], sizeof details[0], "%s", r.detail);
    pprofio_uploader_free(u2);
    server_kill(other); /* its port is closed now */
    pprofio_config refused = upload_config(other, NULL);
    u2 = new_uploader(&refused);
    r = post(u2, &b, NULL);
    assert_result(r, PPROFIO_UP_RETRY, 0);
    snprintf(details[n++], sizeof details[0], "%s", r.detail);
    pprofio_uploader_free(u2);
    for (int i = 0; i < n; i++) {
        cr_assert(details[i][0], "failure %d has no detail", i);
        cr_assert_null(strstr(details[i], KEY), "failure %d: %s", i, details[i]);
        cr_assert_null(strstr(details[i], "Bearer"), "failure %d: %s", i, details[i]);
    }
    free_batch(&b);
    pprofio_uploader_free(u);
    server_stop(other);
    server_stop(s);
}

/* ==== through the agent ============================================================= */

static pprofio_sim_clock sim;
static collector col; /* large: keep it off the stack */
static int64_t T0;

/*
 * agent_config posts to s on a simulated clock that starts now (the
 * uploader's deadlines are wall-clock times, so the simulated clock must
 * not lag behind it). With the simulated clock every wait of the upload
 * thread (backoff, Retry-After, the 401 pause) passes at once but moves the
 * clock by its length; the stop timeout is an hour of it.
 */
static pprofio_config agent_config(const server *s, unsigned types) {
    T0 = wall_ns() / SEC * SEC;
    pprofio_sim_clock_init(&sim, T0);
    pprofio_config cfg = upload_config(s, NULL);
    cfg.profile_types = types;
    cfg.clock = &sim.base;
    cfg.stop_timeout_ns = 3600 * SEC;
    return cfg;
}

static int count_logs(const collector *c, int level, const char *needle) {
    int n = 0;
    for (size_t i = 0; i < c->nlogs; i++)
        if (c->logs[i].level == level && strstr(c->logs[i].message, needle))
            n++;
    return n;
}

static void show_logs_and_check_no_key(const collector *c) {
    for (size_t i = 0; i < c->nlogs; i++) {
        cr_log_info("LOG %d: %s", c->logs[i].level, c->logs[i].message);
        cr_assert_null(strstr(c->logs[i].message, KEY), "the API key is in a log line: %s", c->logs[i].message);
    }
}

/* requests_with counts the recorded requests with this Idempotency-Key (and status, unless -1). */
static int requests_with(const record *rec, const char *key, int status) {
    int n = 0;
    for (size_t i = 0; i < rec->n; i++)
        if (!strcmp(rec->r[i].idem, key) && (status < 0 || rec->r[i].status == status))
            n++;
    return n;
}

/*
 * accepted_batches checks that no batch id was accepted twice and returns
 * how many distinct ids were accepted (answered 200).
 */
static int accepted_batches(const record *rec) {
    int distinct = 0;
    for (size_t i = 0; i < rec->n; i++) {
        if (rec->r[i].status != 200)
            continue;
        int n = requests_with(rec, rec->r[i].idem, 200);
        cr_assert_eq(n, 1, "batch %s was accepted %d times", rec->r[i].idem, n);
        distinct++;
    }
    return distinct;
}

LTest(upload_agent, a_batch_answered_500_is_retried_and_delivered_exactly_once) {
    server *s = server_start("500", 0);
    pprofio_config cfg = agent_config(s, CPU_BIT | HEAP_BIT);
    collector_init(&col, &sim, 0); /* cycle 0, then the final cycle 1: two batches */
    col.a = agent_new_ok(&cfg);
    agent_start_ok(col.a);
    collector_run(&col);
    agent_close_ok(col.a);
    collector_drain_logs(&col);
    show_logs_and_check_no_key(&col);

    pprofio_stats st;
    pprofio_agent_stats(col.a, &st);
    assert_i64(st.batches_queued, 2);
    assert_i64(st.batches_retried, 1);
    assert_i64(st.batches_sent, 2);
    assert_i64(st.queued_batches, 0);
    assert_i64(st.batches_dropped_rejected, 0);
    record rec = record_load(s);
    assert_i64(rec.n, 3);
    assert_i64(rec.r[0].status, 500);
    assert_i64(rec.r[1].status, 200);
    cr_assert_str_eq(rec.r[1].idem, rec.r[0].idem, "the retry has another Idempotency-Key");
    cr_assert_str_eq(rec.r[1].batch_id, rec.r[0].idem);
    assert_i64(rec.r[1].sequence, 1);
    assert_i64(rec.r[2].status, 200);
    assert_i64(rec.r[2].sequence, 2);
    assert_i64(accepted_batches(&rec), 2);
    batches acc = batches_load(s);
    assert_i64(acc.n, 2);
    batches_free(&acc);
    /* the retry came after a backoff of attempt 0: at most 1 s after the first try at T0 + 60 s */
    int64_t elapsed = atomic_load(&sim.now) - T0;
    cr_assert(elapsed >= PERIOD && elapsed <= PERIOD + SEC, "the simulated clock moved %.3f s, want [60, 61] s",
              (double)elapsed / 1e9);
    /* one line when failing begins, one when it ends */
    assert_i64(count_logs(&col, PPROFIO_LOG_WARN, "uploads are failing"), 1);
    assert_i64(count_logs(&col, PPROFIO_LOG_INFO, "going through again"), 1);
    record_free(&rec);
    pprofio_agent_free(col.a);
    collector_free(&col);
    server_stop(s);
}

LTest(upload_agent, a_429_waits_its_retry_after_and_a_500_backs_off_whatever_its_retry_after) {
    server *s = server_start("429/ra=120,500/ra=3000", 0);
    pprofio_config cfg = agent_config(s, CPU_BIT | HEAP_BIT);
    collector_init(&col, &sim, 0);
    col.a = agent_new_ok(&cfg);
    agent_start_ok(col.a);
    collector_run(&col);
    agent_close_ok(col.a);
    collector_drain_logs(&col);
    show_logs_and_check_no_key(&col);

    pprofio_stats st;
    pprofio_agent_stats(col.a, &st);
    assert_i64(st.batches_retried, 2);
    assert_i64(st.batches_sent, 2);
    record rec = record_load(s);
    assert_i64(rec.n, 4);
    assert_i64(requests_with(&rec, rec.r[0].idem, -1), 3);
    assert_i64(accepted_batches(&rec), 2);
    /*
     * The first try came at T0 + 60 s (the end of cycle 0); then 120 s for
     * the 429, and a backoff of attempt 1 (at most 2 s) for the 500. Only
     * the upload thread moves the simulated clock after the stop.
     */
    int64_t elapsed = atomic_load(&sim.now) - T0;
    cr_assert(elapsed >= PERIOD + 120 * SEC && elapsed <= PERIOD + 122 * SEC,
              "the simulated clock moved %.3f s, want [180, 182] s", (double)elapsed / 1e9);
    record_free(&rec);
    pprofio_agent_free(col.a);
    collector_free(&col);
    server_stop(s);
}

LTest(upload_agent, after_401s_the_batch_is_kept_retried_after_60_s_pauses_and_logged_once) {
    server *s = server_start("401,401,401", 0);
    pprofio_config cfg = agent_config(s, CPU_BIT | HEAP_BIT);
    collector_init(&col, &sim, 0);
    col.a = agent_new_ok(&cfg);
    agent_start_ok(col.a);
    collector_run(&col);
    agent_close_ok(col.a);
    collector_drain_logs(&col);
    show_logs_and_check_no_key(&col);

    pprofio_stats st;
    pprofio_agent_stats(col.a, &st);
    assert_i64(st.batches_retried, 3);
    assert_i64(st.batches_sent, 2);
    assert_i64(st.batches_dropped_rejected, 0);
    assert_i64(st.queued_batches, 0);
    record rec = record_load(s);
    assert_i64(rec.n, 5);
    for (int i = 0; i < 3; i++)
        assert_i64(rec.r[i].status, 401);
    assert_i64(rec.r[3].status, 200);
    assert_i64(requests_with(&rec, rec.r[0].idem, -1), 4); /* the same batch, kept */
    assert_i64(accepted_batches(&rec), 2);
    /*
     * The first try came after cycle 0 (T0 + 60 s); each 401 paused the
     * upload thread at least 60 s, and nothing else moves the simulated
     * clock after the stop. Backoff alone would have taken at most 7 s.
     */
    int64_t elapsed = atomic_load(&sim.now) - T0;
    cr_assert_geq(elapsed, PERIOD + 3 * 60 * SEC, "the simulated clock moved %.1f s, want >= 240 s",
                  (double)elapsed / 1e9);
    /* logged when the state began, not on every try */
    assert_i64(count_logs(&col, PPROFIO_LOG_ERROR, "API key"), 1);
    assert_i64(count_logs(&col, PPROFIO_LOG_INFO, "going through again"), 1);
    record_free(&rec);
    pprofio_agent_free(col.a);
    collector_free(&col);
    server_stop(s);
}

LTest(upload_agent, a_413_splits_a_batch_of_two_profiles_into_two_new_batches) {
    /* cycle 0: two incompressible 6 KiB profiles; the final cycle 1: the collector's small ones */
    server *s = server_start("", 9000);
    pprofio_config cfg = agent_config(s, CPU_BIT | HEAP_BIT);
    collector_init(&col, &sim, 0);
    collector_set(&col, PPROFIO_PROFILE_CPU, 0, random_bytes(6 * KiB, 11), 6 * KiB);
    collector_set(&col, PPROFIO_PROFILE_HEAP, 0, random_bytes(6 * KiB, 12), 6 * KiB);
    col.a = agent_new_ok(&cfg);
    agent_start_ok(col.a);
    collector_run(&col);
    agent_close_ok(col.a);
    collector_drain_logs(&col);
    show_logs_and_check_no_key(&col);

    pprofio_stats st;
    pprofio_agent_stats(col.a, &st);
    assert_i64(st.batches_queued, 2);
    assert_i64(st.batches_split, 1);
    assert_i64(st.batches_sent, 3);
    assert_i64(st.batches_dropped_rejected, 0);
    assert_i64(st.profiles_dropped_upload, 0);
    assert_i64(st.queued_batches, 0);

    record rec = record_load(s);
    assert_i64(rec.n, 4);
    const request *whole = &rec.r[0], *h1 = &rec.r[1], *h2 = &rec.r[2], *next = &rec.r[3];
    assert_i64(whole->status, 413);
    assert_contains(whole->reason, "over the limit"); /* the receiver's own limit, not a script */
    /* the halves: new ids, one profile each, before anything newer */
    assert_i64(h1->status, 200);
    assert_i64(h2->status, 200);
    cr_assert(strcmp(h1->idem, whole->idem) && strcmp(h2->idem, whole->idem) && strcmp(h1->idem, h2->idem),
              "the halves reuse a batch id: %s %s %s", whole->idem, h1->idem, h2->idem);
    cr_assert_str_eq(h1->batch_id, h1->idem);
    cr_assert_str_eq(h2->batch_id, h2->idem);
    assert_i64(h1->profiles, 1);
    assert_i64(h2->profiles, 1);
    assert_contains(h1->text, "\"profile_types\":[\"cpu\"]");
    assert_contains(h2->text, "\"profile_types\":[\"heap\"]");
    assert_i64(h1->sequence, 1);
    assert_i64(h2->sequence, 1);
    /* the receiver counts the halves as the parts of sequence 1, not as duplicates */
    assert_contains(h1->text, "\"part\":1,");
    assert_contains(h2->text, "\"part\":2,");
    assert_i64(next->status, 200);
    assert_i64(next->profiles, 2);
    assert_i64(next->sequence, 2);
    assert_i64(accepted_batches(&rec), 3);
    assert_i64(requests_with(&rec, whole->idem, -1), 1); /* the 413'd id never comes again */
    /* the halves hold the very bytes of cycle 0 */
    batches acc = batches_load(s);
    assert_i64(acc.n, 3);
    size_t len;
    uint8_t *f = stored_file(s, batch_line(&acc, h1->idem), 0, &len);
    collected_profile *cpu0 = collector_profile(&col, PPROFIO_PROFILE_CPU, 0);
    cr_assert(gunzip_equals(f, len, cpu0->raw, cpu0->raw_len), "the first half's profile is not cpu 0's");
    free(f);
    f = stored_file(s, batch_line(&acc, h2->idem), 0, &len);
    collected_profile *heap0 = collector_profile(&col, PPROFIO_PROFILE_HEAP, 0);
    cr_assert(gunzip_equals(f, len, heap0->raw, heap0->raw_len), "the second half's profile is not heap 0's");
    free(f);
    batches_free(&acc);
    record_free(&rec);
    pprofio_agent_free(col.a);
    collector_free(&col);
    server_stop(s);
}

/* wait_stat waits (up to WAIT_GUARD_S of real time) until *field of the stats reaches want. */
#define wait_stat(a, field, want)                                                                  \
    do {                                                                                           \
        double deadline_ = mono_seconds() + WAIT_GUARD_S;                                          \
        pprofio_stats st_;                                                                         \
        for (;;) {                                                                                 \
            pprofio_agent_stats((a), &st_);                                                        \
            if ((long long)st_.field >= (long long)(want))                                         \
                break;                                                                             \
            cr_assert_lt(mono_seconds(), deadline_, "stats." #field " is %lld after %d s, want %lld", \
                         (long long)st_.field, WAIT_GUARD_S, (long long)(want));                   \
            sleep_ms(5);                                                                           \
        }                                                                                          \
    } while (0)

LTest(upload_agent, a_413_on_one_profile_drops_it_counts_logs_and_reports_it_in_the_next_batch) {
    server *s = server_start("413", 0);
    pprofio_config cfg = agent_config(s, HEAP_BIT);
    collector_init(&col, &sim, -1);
    col.a = agent_new_ok(&cfg);
    agent_start_ok(col.a);
    /* The collector by hand: heap of cycle 0; the drop; heap of cycle 1; stop. */
    for (int i = 0; i < 100; i++) {
        pprofio_command cmd;
        assert_status(pprofio_agent_next(col.a, &cmd), PPROFIO_OK);
        if (cmd.op == PPROFIO_CMD_LOG) {
            col.logs[col.nlogs++] = cmd;
            continue;
        }
        if (cmd.op == PPROFIO_CMD_EXIT)
            break;
        assert_i64(cmd.op, PPROFIO_CMD_HEAP);
        if (cmd.cycle == 1) /* cycle 0 is sealed now: its batch goes, and is refused */
            wait_stat(col.a, batches_dropped_rejected, 1);
        collected_profile *p = collector_profile(&col, PPROFIO_PROFILE_HEAP, cmd.cycle);
        pprofio_profile_writer *w = begin(&col, PPROFIO_PROFILE_HEAP, &cmd, cmd.window_start_ns);
        cr_assert(w);
        stream(&col, w, p, 0, p->gz_len);
        assert_status(pprofio_profile_finish(w, 1, cmd.at_ns), PPROFIO_OK);
        if (cmd.cycle == 1)
            pprofio_agent_stop(col.a);
    }
    agent_close_ok(col.a);
    collector_drain_logs(&col);
    show_logs_and_check_no_key(&col);

    pprofio_stats st;
    pprofio_agent_stats(col.a, &st);
    assert_i64(st.batches_queued, 3); /* cycles 0 and 1, the final cycle 2 */
    assert_i64(st.batches_dropped_rejected, 1);
    assert_i64(st.profiles_dropped_upload, 1);
    assert_i64(st.batches_split, 0);
    assert_i64(st.batches_sent, 2);
    assert_i64(st.queued_batches, 0);
    cr_assert_eq(count_logs(&col, PPROFIO_LOG_ERROR, "dropped batch"), 1, "%zu log lines", col.nlogs);

    record rec = record_load(s);
    assert_i64(rec.n, 3);
    assert_i64(rec.r[0].status, 413);
    assert_i64(rec.r[0].profiles, 1);
    assert_i64(rec.r[0].sequence, 1);
    assert_i64(rec.r[1].status, 200);
    assert_i64(rec.r[1].sequence, 2);
    assert_contains(rec.r[1].text, "\"event_kinds\":[\"data_dropped\"]");
    assert_i64(rec.r[2].status, 200);
    cr_assert_null(strstr(rec.r[2].text, "data_dropped"), "the drop was reported twice: %s", rec.r[2].text);
    /* the id dropped is the one logged */
    cr_assert_eq(count_logs(&col, PPROFIO_LOG_ERROR, rec.r[0].idem), 1, "the log does not name batch %s",
                 rec.r[0].idem);
    batches acc = batches_load(s);
    const char *line = batch_line(&acc, rec.r[1].idem);
    assert_contains(line, "\"kind\":\"data_dropped\"");
    assert_contains(line, "\"reason\":\"too_large\"");
    assert_contains(line, "\"profiles\":\"1\"");
    assert_contains(line, "\"batches\":\"1\"");
    batches_free(&acc);
    record_free(&rec);
    pprofio_agent_free(col.a);
    collector_free(&col);
    server_stop(s);
}

/* dropped_reported sums the "profiles" of the data_dropped events with this reason in the accepted batches. */
static long long dropped_reported(const batches *acc, const char *reason) {
    char want[80];
    snprintf(want, sizeof want, "\"reason\":\"%s\"", reason);
    long long sum = 0;
    for (size_t i = 0; i < acc->n; i++)
        for (const char *p = acc->line[i]; (p = strstr(p, "\"kind\":\"data_dropped\"")) != NULL; p++) {
            const char *end = strstr(p + 1, "\"kind\":"); /* this event's attributes come before the next */
            const char *r = strstr(p, want), *n = strstr(p, "\"profiles\":\"");
            if (r && n && (!end || (r < end && n < end)))
                sum += strtoll(n + strlen("\"profiles\":\""), NULL, 10);
        }
    return sum;
}

/*
 * run_by_hand is the collector of cycles 0 and 1 (streaming the prepared
 * profiles), then the final cycle 2: before HEAP(1), so before cycle 1's
 * batch is made, it waits until the upload thread has rejected a batch.
 */
static void run_by_hand(collector *c) {
    pprofio_profile_writer *cpu = NULL;
    for (int i = 0; i < 100; i++) {
        pprofio_command cmd;
        assert_status(pprofio_agent_next(c->a, &cmd), PPROFIO_OK);
        if (cmd.op == PPROFIO_CMD_LOG) {
            cr_assert_lt(c->nlogs, COLLECTOR_LOGS);
            c->logs[c->nlogs++] = cmd;
            continue;
        }
        if (cmd.op == PPROFIO_CMD_EXIT)
            return;
        int type = cmd.op == PPROFIO_CMD_HEAP ? PPROFIO_PROFILE_HEAP : PPROFIO_PROFILE_CPU;
        collected_profile *p = collector_profile(c, type, cmd.cycle);
        if (cmd.op == PPROFIO_CMD_CPU_START) {
            cpu = begin(c, PPROFIO_PROFILE_CPU, &cmd, cmd.at_ns);
            stream(c, cpu, p, 0, p->gz_len);
            continue;
        }
        if (cmd.op == PPROFIO_CMD_CPU_STOP) {
            assert_status(pprofio_profile_finish(cpu, 1, cmd.at_ns), PPROFIO_OK);
            cpu = NULL;
            continue;
        }
        assert_i64(cmd.op, PPROFIO_CMD_HEAP);
        if (cmd.cycle == 1)
            wait_stat(c->a, batches_dropped_rejected, 1);
        pprofio_profile_writer *w = begin(c, PPROFIO_PROFILE_HEAP, &cmd, cmd.window_start_ns);
        stream(c, w, p, 0, p->gz_len);
        assert_status(pprofio_profile_finish(w, 1, cmd.at_ns), PPROFIO_OK);
        if (cmd.cycle == 1)
            pprofio_agent_stop(c->a);
    }
    cr_assert_fail("no EXIT after 100 commands");
}

/*
 * run_refused runs the agent by hand against s (the collector is ready),
 * then checks that every dropped profile is reported once, with reason, in
 * the batches the service took, and that the events of cycle 1's dropped
 * batch arrived as a part of their own (no profile, sequence 2).
 */
static void run_refused(server *s, const char *reason, pprofio_stats *st) {
    pprofio_config cfg = agent_config(s, CPU_BIT | HEAP_BIT);
    col.a = agent_new_ok(&cfg);
    agent_start_ok(col.a);
    run_by_hand(&col);
    agent_close_ok(col.a);
    collector_drain_logs(&col);
    show_logs_and_check_no_key(&col);
    pprofio_agent_stats(col.a, st);
    batches acc = batches_load(s);
    for (size_t i = 0; i < acc.n; i++)
        cr_log_info("accepted: %s", acc.line[i]);
    assert_i64(dropped_reported(&acc, reason), st->profiles_dropped_upload);
    record rec = record_load(s);
    int events_part = 0;
    for (size_t i = 0; i < rec.n; i++)
        if (rec.r[i].status == 200 && rec.r[i].profiles <= 0 && rec.r[i].sequence == 2)
            events_part++;
    assert_i64(events_part, 1);
    record_free(&rec);
    batches_free(&acc);
}

LTest(upload_agent, the_events_of_a_part_dropped_after_a_413_still_reach_the_service) {
    /*
     * Cycles 0 and 1 each have a CPU profile too large even alone, so each
     * batch is split and its first part, the CPU profile with the batch's
     * events, is dropped. Cycle 1's batch carries the data_dropped event of
     * cycle 0's drop: that event must not go with the profile.
     */
    server *s = server_start("", 9000);
    collector_init(&col, &sim, -1);
    collector_set(&col, PPROFIO_PROFILE_CPU, 0, random_bytes(12 * KiB, 21), 12 * KiB);
    collector_set(&col, PPROFIO_PROFILE_CPU, 1, random_bytes(12 * KiB, 22), 12 * KiB);
    pprofio_stats st;
    run_refused(s, "too_large", &st);
    /*
     * Cycles 0, 1 and the final 2. Cycle 1's drop is reported in the final
     * batch when the upload thread rejects cycle 1's part before that batch
     * is made, or else in one more batch made at close: either way once.
     */
    cr_assert(st.batches_queued == 3 || st.batches_queued == 4, "batches_queued is %lld, want 3 or 4",
              (long long)st.batches_queued);
    assert_i64(st.batches_split, 2);
    assert_i64(st.profiles_dropped_upload, 2);
    assert_i64(st.queued_batches, 0);
    pprofio_agent_free(col.a);
    collector_free(&col);
    server_stop(s);
}

LTest(upload_agent, the_events_of_a_batch_refused_with_400_still_reach_the_service) {
    /*
     * The service refuses cycles 0 and 1 with 400. Cycle 1's batch carries
     * the data_dropped event of cycle 0's refusal: the refusal is of the
     * batch, so that event must go on in a part of its own instead of
     * being dropped with the profiles.
     */
    server *s = server_start("400,400", 0);
    collector_init(&col, &sim, -1);
    pprofio_stats st;
    run_refused(s, "rejected", &st);
    assert_i64(st.batches_dropped_rejected, 2);
    cr_assert_gt(st.profiles_dropped_upload, 0);
    assert_i64(st.queued_batches, 0);
    pprofio_agent_free(col.a);
    collector_free(&col);
    server_stop(s);
}

LTest(upload_agent, a_skip_goes_in_the_batch_of_the_cycle_whose_window_was_skipped) {
    /*
     * The program holds the CPU profiler in cycle 1. The skip is reported
     * before cycle 0's batch is made (here: while cycle 0's heap profile is
     * taken, the widest form of the race at the cycle boundary), and must
     * still go in cycle 1's batch, not cycle 0's.
     */
    server *s = server_start("", 0);
    pprofio_config cfg = agent_config(s, CPU_BIT | HEAP_BIT);
    collector_init(&col, &sim, -1);
    col.a = agent_new_ok(&cfg);
    agent_start_ok(col.a);
    pprofio_profile_writer *cpu = NULL;
    for (int i = 0; i < 100; i++) {
        pprofio_command cmd;
        assert_status(pprofio_agent_next(col.a, &cmd), PPROFIO_OK);
        if (cmd.op == PPROFIO_CMD_LOG) {
            col.logs[col.nlogs++] = cmd;
            continue;
        }
        if (cmd.op == PPROFIO_CMD_EXIT)
            break;
        collected_profile *p = collector_profile(&col, cmd.op == PPROFIO_CMD_HEAP ? PPROFIO_PROFILE_HEAP
                                                                                 : PPROFIO_PROFILE_CPU, cmd.cycle);
        if (cmd.op == PPROFIO_CMD_CPU_START && cmd.cycle != 1) {
            cpu = begin(&col, PPROFIO_PROFILE_CPU, &cmd, cmd.at_ns);
            stream(&col, cpu, p, 0, p->gz_len);
        } else if (cmd.op == PPROFIO_CMD_CPU_STOP && cpu) {
            assert_status(pprofio_profile_finish(cpu, 1, cmd.at_ns), PPROFIO_OK);
            cpu = NULL;
        } else if (cmd.op == PPROFIO_CMD_HEAP) {
            if (cmd.cycle == 0)
                pprofio_agent_skip(col.a, PPROFIO_PROFILE_CPU, 1, "cpu profiling already in use");
            pprofio_profile_writer *w = begin(&col, PPROFIO_PROFILE_HEAP, &cmd, cmd.window_start_ns);
            stream(&col, w, p, 0, p->gz_len);
            assert_status(pprofio_profile_finish(w, 1, cmd.at_ns), PPROFIO_OK);
            if (cmd.cycle == 1)
                pprofio_agent_stop(col.a);
        }
    }
    agent_close_ok(col.a);
    collector_drain_logs(&col);
    show_logs_and_check_no_key(&col);

    pprofio_stats st;
    pprofio_agent_stats(col.a, &st);
    assert_i64(st.profiles_skipped, 1);
    assert_i64(st.batches_sent, 3);
    record rec = record_load(s);
    assert_i64(rec.n, 3);
    for (size_t i = 0; i < rec.n; i++) {
        cr_log_info("request %zu: %s", i, rec.r[i].text);
        int has_skip = strstr(rec.r[i].text, "profile_skipped") != NULL;
        cr_assert_eq(has_skip, rec.r[i].sequence == 2, "batch %lld %s the skip of cycle 1", rec.r[i].sequence,
                     has_skip ? "carries" : "lacks");
    }
    assert_i64(rec.r[1].sequence, 2);
    assert_contains(rec.r[1].text, "\"profile_types\":[\"heap\"]"); /* cycle 1: its CPU window was skipped */
    record_free(&rec);
    pprofio_agent_free(col.a);
    collector_free(&col);
    server_stop(s);
}

/*
 * A simulated clock that stands still at `limit`: a wait for a later
 * deadline lasts until it is signalled. A thread backing off past the
 * limit stays backing off for as long as the test needs.
 */
typedef struct {
    pprofio_clock base;
    _Atomic int64_t now, limit;
} held_clock;

static int64_t held_now(const pprofio_clock *c) { return atomic_load(&((held_clock *)c)->now); }

static void held_wait(const pprofio_clock *c, pthread_cond_t *cond, pthread_mutex_t *mu, int64_t deadline_ns) {
    held_clock *h = (held_clock *)c;
    if (deadline_ns == PPROFIO_FOREVER || deadline_ns > atomic_load(&h->limit)) {
        pthread_cond_wait(cond, mu);
        return;
    }
    int64_t now = atomic_load(&h->now);
    while (now < deadline_ns && !atomic_compare_exchange_weak(&h->now, &now, deadline_ns)) {
    }
}

static held_clock held;

/* held_config posts to s on the held clock, standing still at the end of cycle 0, with a 1 ms stop timeout. */
static pprofio_config held_config(const server *s) {
    pprofio_config cfg = agent_config(s, CPU_BIT | HEAP_BIT);
    held.base.now_ns = held_now;
    held.base.wait_until = held_wait;
    atomic_store(&held.now, T0);
    atomic_store(&held.limit, T0 + PERIOD);
    cfg.clock = &held.base;
    cfg.stop_timeout_ns = 1 * MS;
    return cfg;
}

/*
 * run_until_stop_in_backoff is the collector of cycle 0 and the final
 * cycle 1; it stops the agent at the start of cycle 1, once cycle 0's
 * batch has been answered and the upload thread waits to retry it.
 */
static void run_until_stop_in_backoff(collector *c) {
    pprofio_profile_writer *cpu = NULL;
    for (int i = 0; i < 100; i++) {
        pprofio_command cmd;
        assert_status(pprofio_agent_next(c->a, &cmd), PPROFIO_OK);
        if (cmd.op == PPROFIO_CMD_LOG) {
            if (c->nlogs < COLLECTOR_LOGS)
                c->logs[c->nlogs++] = cmd;
            continue;
        }
        if (cmd.op == PPROFIO_CMD_EXIT)
            return;
        int type = cmd.op == PPROFIO_CMD_HEAP ? PPROFIO_PROFILE_HEAP : PPROFIO_PROFILE_CPU;
        collected_profile *p = collector_profile(c, type, cmd.cycle);
        if (cmd.op == PPROFIO_CMD_CPU_START) {
            cpu = begin(c, PPROFIO_PROFILE_CPU, &cmd, cmd.at_ns);
            stream(c, cpu, p, 0, p->gz_len);
            if (cmd.cycle == 1) { /* cycle 0's batch was answered: the upload thread waits to retry */
                wait_stat(c->a, batches_retried, 1);
                pprofio_agent_stop(c->a);
            }
        } else if (cmd.op == PPROFIO_CMD_CPU_STOP) {
            assert_status(pprofio_profile_finish(cpu, 1, cmd.at_ns), PPROFIO_OK);
        } else {
            pprofio_profile_writer *w = begin(c, PPROFIO_PROFILE_HEAP, &cmd, cmd.window_start_ns);
            stream(c, w, p, 0, p->gz_len);
            assert_status(pprofio_profile_finish(w, 1, cmd.at_ns), PPROFIO_OK);
        }
    }
    cr_assert_fail("no EXIT after 100 commands");
}

LTest(upload_agent, a_stop_while_backing_off_tries_once_more_within_the_stop_timeout) {
    /*
     * Cycle 0's batch is answered 500; time stands still at the end of
     * cycle 0, so the upload thread is backing off (up to 1 s) when Stop
     * comes, with a stop timeout shorter than that. Without a Retry-After
     * or a 401/403 pause to honour, Stop must try once more: both batches go.
     */
    server *s = server_start("500", 0);
    pprofio_config cfg = held_config(s);
    collector_init(&col, NULL, -1);
    col.a = agent_new_ok(&cfg);
    agent_start_ok(col.a);
    run_until_stop_in_backoff(&col);
    agent_close_ok(col.a);
    collector_drain_logs(&col);
    show_logs_and_check_no_key(&col);

    pprofio_stats st;
    pprofio_agent_stats(col.a, &st);
    assert_i64(st.batches_queued, 2);
    assert_i64(st.batches_retried, 1);
    assert_i64(st.batches_sent, 2);
    assert_i64(st.queued_batches, 0);
    record rec = record_load(s);
    assert_i64(rec.n, 3);
    assert_i64(rec.r[0].status, 500);
    assert_i64(rec.r[1].status, 200);
    cr_assert_str_eq(rec.r[1].idem, rec.r[0].idem, "the try at Stop is not the batch that was backing off");
    assert_i64(rec.r[2].status, 200);
    assert_i64(rec.r[2].sequence, 2);
    /* time stood still: the try came at once, not after the backoff */
    assert_i64(atomic_load(&held.now), T0 + PERIOD);
    record_free(&rec);
    pprofio_agent_free(col.a);
    collector_free(&col);
    server_stop(s);
}

LTest(upload_agent, a_stop_during_a_retry_after_keeps_the_batches_for_later) {
    /* The service asked for 120 s: Stop does not try before then, and the batches stay queued. */
    server *s = server_start("429/ra=120", 0);
    pprofio_config cfg = held_config(s);
    collector_init(&col, NULL, -1);
    col.a = agent_new_ok(&cfg);
    agent_start_ok(col.a);
    run_until_stop_in_backoff(&col);
    agent_close_ok(col.a);
    collector_drain_logs(&col);
    show_logs_and_check_no_key(&col);

    pprofio_stats st;
    pprofio_agent_stats(col.a, &st);
    assert_i64(st.batches_queued, 2);
    assert_i64(st.batches_sent, 0);
    assert_i64(st.queued_batches, 2);
    record rec = record_load(s);
    assert_i64(rec.n, 1);
    assert_i64(rec.r[0].status, 429);
    record_free(&rec);
    pprofio_agent_free(col.a);
    collector_free(&col);
    server_stop(s);
}

LTest(upload_agent, close_with_a_hanging_server_returns_by_the_stop_timeout_and_keeps_the_batches_spooled) {
    server *s = server_start("hang,hang,hang,hang,hang,hang", 0);
    char *spool = scratch_dir();
    pprofio_config cfg = upload_config(s, NULL);
    cfg.profile_types = HEAP_BIT;
    cfg.period_ns = 1 * SEC; /* the real clock: cycle 0 ends a second after start */
    cfg.request_timeout_ns = HOUR; /* longer than any test may run: only the stop timeout can end close */
    cfg.stop_timeout_ns = 1 * SEC;
    cfg.spool_dir = spool;
    cfg.max_spool_bytes = 8 * (int64_t)MiB;
    collector_init(&col, NULL, 0);
    col.a = agent_new_ok(&cfg);
    agent_start_ok(col.a);
    collector_run(&col);
    wait_for_requests(s, 1); /* cycle 0's batch is in flight, and hangs */

    double t0 = mono_seconds();
    agent_close_ok(col.a);
    double took = mono_seconds() - t0;
    cr_log_info("close took %.2f s with a stop timeout of 1 s", took); /* it returned: the stop timeout held */
    collector_drain_logs(&col);
    show_logs_and_check_no_key(&col);

    pprofio_stats st;
    pprofio_agent_stats(col.a, &st);
    assert_i64(st.batches_queued, 2);
    assert_i64(st.batches_sent, 0);
    assert_i64(st.batches_dropped_rejected, 0);
    assert_i64(st.queued_batches, 2);
    char *own = path_join(spool, INSTANCE);
    assert_i64(count_entries(own, NULL, ".batch"), 2);
    pprofio_agent_free(col.a);
    assert_i64(count_entries(own, NULL, ".batch"), 2); /* they outlive the agent */
    record rec = record_load(s);
    cr_assert_geq(rec.n, 1);
    char hung[80];
    snprintf(hung, sizeof hung, "%s", rec.r[0].idem);
    record_free(&rec);
    server_stop(s);

    /* The next process adopts and delivers them. */
    server *s2 = server_start("", 0);
    pprofio_config cfg2 = upload_config(s2, NULL);
    cfg2.profile_types = HEAP_BIT;
    cfg2.period_ns = 1 * SEC;
    cfg2.stop_timeout_ns = 120 * SEC;
    cfg2.spool_dir = spool;
    cfg2.max_spool_bytes = 8 * (int64_t)MiB;
    cfg2.source.instance_id = "fedcba9876543210fedcba9876543210";
    collector_reset(&col, agent_new_ok(&cfg2));
    col.stop_at_heap_of = 0;
    agent_start_ok(col.a);
    collector_run(&col);
    agent_close_ok(col.a);
    collector_drain_logs(&col);
    pprofio_agent_stats(col.a, &st);
    assert_i64(st.batches_adopted, 2);
    assert_i64(st.batches_sent, 2 + st.batches_queued);
    assert_i64(st.queued_batches, 0);
    rec = record_load(s2);
    assert_i64(requests_with(&rec, hung, 200), 1);
    record_free(&rec);
    assert_i64(count_entries(own, NULL, ".batch"), 0);
    free(own);
    pprofio_agent_free(col.a);
    collector_free(&col);
    server_stop(s2);
    scratch_remove(spool);
}
