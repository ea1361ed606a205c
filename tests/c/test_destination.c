/*
 * test_destination.c: the second destination, Grafana Pyroscope, beside
 * the ingest service: the pure parts of its client (the answer table, the
 * endpoint, basic auth's base64, splitting a push by series), the request
 * it sends as a real HTTPS server records it, and an agent whose two
 * destinations fare differently: each keeps its own queue on disk (the
 * Pyroscope one under <spool>/pyroscope), retry state and pause, so one
 * that cannot take anything never holds back or loses the other's batches,
 * and a later process adopts each queue into its own.
 *
 * The server is the reference receiver (receiver.h). It has no Pyroscope
 * push API, so a Pyroscope URL pointing at it is answered 404, the answer
 * of a URL that names no Pyroscope. Pyroscope's own handler is exercised
 * by the Go tests (tests/pyroscope).
 */
#include <pthread.h>

#include "../../csrc/destination.h"
#include "../../csrc/pyroscope.h"
#include "../../csrc/pyroscope_push.pb-c.h"
#include "../../csrc/retry.h"
#include "../../csrc/upload.h"
#include "collector.h"
#include "receiver.h"

#define SERVICE "destination-test"
#define INSTANCE "00112233445566778899aabbccddeeff"
#define LATER_INSTANCE "ffeeddccbbaa99887766554433221100"
#define PERIOD (60 * SEC)
#define CPU_BIT PPROFIO_TYPE_BIT(PPROFIO_PROFILE_CPU)
#define HEAP_BIT PPROFIO_TYPE_BIT(PPROFIO_PROFILE_HEAP)
#define PYRO_USER "123456"
#define PYRO_PASSWORD "glc_secret-pass-word"
#define PYRO_TOKEN "tok-9f8e7d6c5b4a"

TestSuite(destination, .timeout = HANG_GUARD_S, .fini = receiver_fini);
TestSuite(destination_post, .timeout = HANG_GUARD_S, .fini = receiver_fini);
TestSuite(destination_agent, .timeout = HANG_GUARD_S, .fini = receiver_fini);

/* ---- pure parts ---------------------------------------------------------------- */

LTest(destination, pyroscope_answers_map_to_drop_pause_split_or_retry_as_pyroscope_means_them) {
    static const struct {
        long status;
        int verdict;
    } table[] = {
        {200, PPROFIO_UP_DONE},    {204, PPROFIO_UP_DONE},     {400, PPROFIO_UP_DROP},
        {409, PPROFIO_UP_DROP},    {415, PPROFIO_UP_DROP},     {422, PPROFIO_UP_DROP},
        {401, PPROFIO_UP_AUTH},    {403, PPROFIO_UP_AUTH},     {404, PPROFIO_UP_MISSING},
        {501, PPROFIO_UP_MISSING}, {413, PPROFIO_UP_SPLIT},    {429, PPROFIO_UP_RETRY},
        {408, PPROFIO_UP_RETRY},   {500, PPROFIO_UP_RETRY},    {502, PPROFIO_UP_RETRY},
        {503, PPROFIO_UP_RETRY},   {504, PPROFIO_UP_RETRY},    {301, PPROFIO_UP_RETRY},
        {0, PPROFIO_UP_RETRY},
    };
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++)
        cr_expect_eq(pprofio_pyroscope_verdict_of(table[i].status), table[i].verdict, "status %ld: verdict %d, want %d",
                     table[i].status, pprofio_pyroscope_verdict_of(table[i].status), table[i].verdict);
}

LTest(destination, the_push_endpoint_is_the_base_url_and_the_connect_path_with_one_slash_between) {
    char out[128];
    assert_status(pprofio_pyroscope_endpoint("https://p.example", out, sizeof out), PPROFIO_OK);
    cr_assert_str_eq(out, "https://p.example/push.v1.PusherService/Push");
    assert_status(pprofio_pyroscope_endpoint("https://p.example/prefix//", out, sizeof out), PPROFIO_OK);
    cr_assert_str_eq(out, "https://p.example/prefix/push.v1.PusherService/Push");
    assert_status(pprofio_pyroscope_endpoint("https://p.example", out, 20), PPROFIO_ERR_INVALID);
}

LTest(destination, base64_matches_rfc_4648_test_vectors) {
    static const char *const in[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar"};
    static const char *const want[] = {"", "Zg==", "Zm8=", "Zm9v", "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy"};
    char out[16];
    for (size_t i = 0; i < 7; i++) {
        pprofio_base64(in[i], strlen(in[i]), out);
        cr_expect_str_eq(out, want[i], "base64(%s)", in[i]);
    }
}

LTest(destination, a_404_or_501_pauses_at_least_60_s_as_a_refused_key_does_and_logs_once) {
    pprofio_retry r;
    pprofio_retry_init(&r, 7);
    pprofio_upload_result res = {.verdict = PPROFIO_UP_MISSING, .status = 404, .retry_after_ns = -1};
    int changed = 0;
    assert_i64(pprofio_retry_answer(&r, &res, 1000 * SEC, &changed), PPROFIO_RETRY_WAIT);
    cr_assert(changed);
    assert_i64(r.health, PPROFIO_HEALTH_MISSING);
    cr_assert_geq(r.next_at, 1000 * SEC + PPROFIO_AUTH_PAUSE_NS);
    res.status = 501;
    assert_i64(pprofio_retry_answer(&r, &res, 1100 * SEC, &changed), PPROFIO_RETRY_WAIT);
    cr_assert_not(changed, "a second 404/501 is the same state: not logged again");
    pprofio_retry_closing(&r, 1101 * SEC);
    cr_assert_geq(r.next_at, 1100 * SEC + PPROFIO_AUTH_PAUSE_NS, "Stop's last try does not cut the pause short");
}

/* push_of encodes n one-profile series (distinct bytes each) and gzips them. */
static pprofio_bytes push_of(size_t n) {
    static const char *const keys[] = {"env"}, *const values[] = {"test"};
    pprofio_source src = {.service = SERVICE, .tag_keys = keys, .tag_values = values, .n_tags = 1};
    pprofio_pyroscope_profile ps[8];
    uint8_t *bytes[8];
    for (size_t i = 0; i < n; i++) {
        bytes[i] = random_bytes(100 + i, i + 1);
        ps[i] = (pprofio_pyroscope_profile){PPROFIO_PROFILE_HEAP, (int64_t)(i + 1) * SEC, (int64_t)(i + 1) * SEC,
                                            bytes[i], 100 + i};
    }
    pprofio_bytes raw = {0}, gz = {0};
    pprofio_error err = {0};
    assert_status(pprofio_pyroscope_encode(&src, ps, n, &raw, &err), PPROFIO_OK);
    assert_status(pprofio_gzip_bytes(raw.p, raw.len, &gz), PPROFIO_OK);
    pprofio_bytes_free(&raw);
    for (size_t i = 0; i < n; i++)
        free(bytes[i]);
    return gz;
}

LTest(destination, a_push_too_large_splits_into_two_pushes_of_half_its_series_each) {
    pprofio_bytes gz = push_of(5);
    pprofio_bytes first = {0}, second = {0};
    size_t n1 = 0, n2 = 0;
    pprofio_error err = {0};
    assert_status(pprofio_pyroscope_split(gz.p, gz.len, &first, &second, &n1, &n2, &err), PPROFIO_OK);
    assert_i64(n1, 2);
    assert_i64(n2, 3);
    /* the halves together are the whole: decode each and count its series */
    pprofio_bytes raw = {0};
    size_t total = 0;
    pprofio_bytes *parts[2] = {&first, &second};
    for (int k = 0; k < 2; k++) {
        assert_status(pprofio_gunzip_bytes(parts[k]->p, parts[k]->len, &raw), PPROFIO_OK);
        Push__V1__PushRequest *req = push__v1__push_request__unpack(NULL, raw.len, raw.p);
        cr_assert_not_null(req);
        assert_i64(req->n_series, k == 0 ? 2 : 3);
        for (size_t i = 0; i < req->n_series; i++, total++)
            assert_i64(req->series[i]->samples[0]->raw_profile.len >= 100 + total, 1);
        push__v1__push_request__free_unpacked(req, NULL);
        pprofio_bytes_free(&raw);
    }
    assert_i64(total, 5);
    pprofio_bytes_free(&first);
    pprofio_bytes_free(&second);
    pprofio_bytes_free(&gz);

    pprofio_bytes one = push_of(1);
    assert_status(pprofio_pyroscope_split(one.p, one.len, &first, &second, &n1, &n2, &err), PPROFIO_ERR_INVALID);
    cr_assert(first.len == 0 && second.len == 0);
    uint8_t junk[] = {0x1f, 0x8b, 0, 1, 2, 3};
    cr_assert_neq(pprofio_pyroscope_split(junk, sizeof junk, &first, &second, &n1, &n2, &err), PPROFIO_OK);
    pprofio_bytes_free(&one);
}

/* ---- the request on the wire ---------------------------------------------------- */

static const char *const tag_keys[] = {"env", "region"};
static const char *const tag_values[] = {"test", "eu-1"};

static pprofio_config pyro_config(const server *s) {
    return (pprofio_config){
        .service_name = SERVICE,
        .pyroscope_url = s->url,
        .pyroscope_user = PYRO_USER,
        .pyroscope_password = PYRO_PASSWORD,
        .pyroscope_tenant_id = "team-a",
        .ca_file = s->ca,
        .user_agent = "pprofio-go/0.1.0 destination-test",
        .connect_timeout_ns = 60 * SEC,
        .request_timeout_ns = 120 * SEC,
        .stop_timeout_ns = 120 * SEC,
        .source = {.tag_keys = tag_keys, .tag_values = tag_values, .n_tags = 2, .service = SERVICE,
                   .instance_id = INSTANCE},
        .period_ns = PERIOD,
        .cpu_duration_ns = 10 * SEC,
        .jitter_seed = 1,
        .max_buffer_bytes = 8 * (int64_t)MiB,
        .max_spool_bytes = 8 * (int64_t)MiB,
        .profile_types = CPU_BIT | HEAP_BIT,
    };
}

/* post_once posts a small push with a Pyroscope client made from cfg; line gets what the receiver recorded. */
static void post_once(const server *s, const pprofio_config *cfg, pprofio_upload_result *res, char *line, size_t n) {
    pprofio_uploader *u = NULL;
    pprofio_error err = {0};
    assert_status(pprofio_uploader_new_pyroscope(cfg, &u, &err), PPROFIO_OK);
    pprofio_bytes gz = push_of(2);
    pprofio_uploader_post(u, "0123456789abcdef0123456789abcdef", gz.p, gz.len, 0, res, NULL);
    pprofio_bytes_free(&gz);
    pprofio_uploader_free(u);
    wait_for_requests(s, 1);
    size_t len;
    char *text = (char *)read_file(s->record, &len);
    cr_assert(text && len > 0 && len < n, "no record");
    memcpy(line, text, len);
    line[len] = '\0';
    free(text);
}

LTest(destination_post, a_push_goes_to_the_connect_path_as_gzipped_proto_with_basic_auth_and_the_tenant) {
    server *s = server_start("", 0);
    pprofio_config cfg = pyro_config(s);
    pprofio_upload_result res;
    static char line[65536];
    post_once(s, &cfg, &res, line, sizeof line);
    cr_log_info("%s", line);
    assert_i64(res.status, 404); /* the receiver has no push API: paused as a wrong URL */
    assert_i64(res.verdict, PPROFIO_UP_MISSING);
    expect_field(line, "path", "/push.v1.PusherService/Push");
    expect_field(line, "Content-Type", "application/proto");
    expect_field(line, "Content-Encoding", "gzip");
    char basic[128];
    pprofio_base64(PYRO_USER ":" PYRO_PASSWORD, strlen(PYRO_USER ":" PYRO_PASSWORD), basic);
    char want[160];
    snprintf(want, sizeof want, "Basic %s", basic);
    expect_field(line, "Authorization", want);
    cr_assert_null(strstr(line, "Idempotency-Key"), "Pyroscope gets no Idempotency-Key");
    cr_assert_null(strstr(res.detail, PYRO_PASSWORD));
    cr_assert_null(strstr(res.detail, basic));
    server_stop(s);
}

LTest(destination_post, a_bearer_token_replaces_basic_auth_and_no_tenant_sends_no_tenant_header) {
    server *s = server_start("", 0);
    pprofio_config cfg = pyro_config(s);
    cfg.pyroscope_user = cfg.pyroscope_password = NULL;
    cfg.pyroscope_token = PYRO_TOKEN;
    cfg.pyroscope_tenant_id = NULL;
    pprofio_upload_result res;
    static char line[65536];
    post_once(s, &cfg, &res, line, sizeof line);
    expect_field(line, "Authorization", "Bearer " PYRO_TOKEN);
    cr_assert_null(strcasestr(line, "X-Scope-OrgID"), "a tenant header without a tenant: %s", line);
    cr_assert_null(strstr(res.detail, PYRO_TOKEN));
    server_stop(s);
}

LTest(destination, the_config_refuses_half_basic_auth_both_auths_and_line_breaks_naming_the_field) {
    server dummy = {.url = "https://127.0.0.1:1", .ca = NULL};
    pprofio_config cfg = pyro_config(&dummy);
    pprofio_error err = {0};
    assert_status(pprofio_config_validate(&cfg, &err), PPROFIO_OK);
    cfg.pyroscope_password = NULL;
    assert_status(pprofio_config_validate(&cfg, &err), PPROFIO_ERR_INVALID);
    assert_i64(err.field, PPROFIO_FIELD_PYROSCOPE_AUTH);
    cfg = pyro_config(&dummy);
    cfg.pyroscope_token = PYRO_TOKEN;
    assert_status(pprofio_config_validate(&cfg, &err), PPROFIO_ERR_INVALID);
    assert_i64(err.field, PPROFIO_FIELD_PYROSCOPE_AUTH);
    cfg = pyro_config(&dummy);
    cfg.pyroscope_tenant_id = "a\r\nX-Evil: 1";
    assert_status(pprofio_config_validate(&cfg, &err), PPROFIO_ERR_INVALID);
    assert_i64(err.field, PPROFIO_FIELD_PYROSCOPE_AUTH);
    cr_assert_null(strstr(err.msg, "Evil"), "the value is quoted back: %s", err.msg);
    cfg = pyro_config(&dummy);
    cfg.pyroscope_url = "ftp://p.example";
    assert_status(pprofio_config_validate(&cfg, &err), PPROFIO_ERR_INVALID);
    assert_i64(err.field, PPROFIO_FIELD_PYROSCOPE_URL);
}

/* ---- two destinations in one agent ------------------------------------------------ */

static collector col; /* large: keep it off the stack */

static int count_logs(const collector *c, const char *needle) {
    int n = 0;
    for (size_t i = 0; i < c->nlogs; i++) {
        cr_assert_null(strstr(c->logs[i].message, PYRO_PASSWORD), "a secret in the log: %s", c->logs[i].message);
        cr_assert_null(strstr(c->logs[i].message, RECEIVER_KEY), "a secret in the log: %s", c->logs[i].message);
        if (strstr(c->logs[i].message, needle))
            n++;
    }
    return n;
}

static int accepted_ingest(const server *s) {
    record rec = record_load(s);
    int n = 0;
    for (size_t i = 0; i < rec.n; i++)
        n += rec.r[i].status == 200 && !strcmp(rec.r[i].path, "/v1/profiles");
    record_free(&rec);
    return n;
}

LTest(destination_agent, a_pyroscope_that_takes_nothing_holds_back_no_ingest_batch_and_keeps_its_own_on_disk) {
    server *s = server_start("", 0);
    char *spool = scratch_dir();
    /*
     * The system clock, a 1 s cycle: the 404's pause (60 s or more) holds
     * the Pyroscope thread for the whole run, and Stop's deadline comes
     * before its end, so Stop does not wait for it (the pause is not cut
     * short by Stop, as for a refused key). Generous for the ingest side.
     */
    pprofio_config cfg = pyro_config(s); /* the receiver answers the push path 404 */
    cfg.ingest_url = s->url;
    cfg.api_key = RECEIVER_KEY;
    cfg.spool_dir = spool;
    cfg.period_ns = SEC;
    cfg.cpu_duration_ns = SEC / 4;
    cfg.stop_timeout_ns = 50 * SEC;
    collector_init(&col, NULL, 2); /* cycles 0..2, then the final one: four of each */
    col.a = agent_new_ok(&cfg);
    pprofio_error err = {0};
    assert_status(pprofio_agent_start(col.a, &err), PPROFIO_OK);
    collector_run(&col);
    assert_status(pprofio_agent_close(col.a, &err), PPROFIO_OK);
    collector_drain_logs(&col);

    pprofio_stats st;
    pprofio_agent_stats(col.a, &st);
    for (size_t i = 0; i < col.nlogs; i++)
        cr_log_info("LOG %d: %s", col.logs[i].level, col.logs[i].message);
    /* the ingest service got every batch, and nothing was lost on either side */
    cr_assert_geq(st.batches_queued, 4);
    assert_i64(st.batches_sent, st.batches_queued);
    assert_i64(accepted_ingest(s), (int64_t)st.batches_queued);
    assert_i64(st.queued_batches, 0);
    assert_i64(st.pyroscope_batches_queued, st.batches_queued); /* one push per cycle */
    assert_i64(st.pyroscope_batches_sent, 0);
    cr_assert_geq(st.pyroscope_batches_retried, 1);
    assert_i64(st.pyroscope_queued_batches, (int64_t)st.pyroscope_batches_queued);
    assert_i64(st.pyroscope_batches_dropped_rejected + st.pyroscope_batches_dropped_old +
                   st.pyroscope_batches_dropped_spool + st.pyroscope_profiles_dropped,
               0);
    assert_i64(st.batches_dropped_rejected + st.batches_dropped_spool, 0);
    assert_i64(count_logs(&col, "no push API"), 1); /* once per episode, not per try */
    /* each queue in its own folder: Pyroscope's pushes wait under <spool>/pyroscope */
    char *ingest_dir = path_join(spool, INSTANCE);
    char *pyro_root = path_join(spool, "pyroscope");
    char *pyro_dir = path_join(pyro_root, INSTANCE);
    assert_i64(count_entries(ingest_dir, NULL, ".batch"), 0);
    assert_i64(count_entries(pyro_dir, NULL, ".batch"), (int64_t)st.pyroscope_batches_queued);
    pprofio_agent_free(col.a);
    collector_free(&col);

    /* a later process adopts them into its own Pyroscope queue, not the ingest one */
    pprofio_config later = cfg;
    later.source.instance_id = LATER_INSTANCE;
    pprofio_agent *b = agent_new_ok(&later);
    char *later_pyro = path_join(pyro_root, LATER_INSTANCE);
    char *later_ingest = path_join(spool, LATER_INSTANCE);
    assert_i64(count_entries(later_pyro, NULL, ".batch"), (int64_t)st.pyroscope_batches_queued);
    assert_i64(count_entries(later_ingest, NULL, ".batch"), 0);
    assert_i64(count_entries(pyro_dir, NULL, ".batch"), 0);
    pprofio_agent_free(b);
    free(later_pyro);
    free(later_ingest);
    free(ingest_dir);
    free(pyro_dir);
    free(pyro_root);
    scratch_remove(spool);
    server_stop(s);
}

/* ---- one destination driven by hand --------------------------------------------- */

LTest(destination_post, a_push_older_than_an_hour_is_dropped_and_counted_without_being_sent) {
    server *s = server_start("", 0);
    pprofio_sim_clock sim;
    int64_t now = (int64_t)time(NULL) * SEC;
    pprofio_sim_clock_init(&sim, now);
    pprofio_config cfg = pyro_config(s);
    cfg.clock = &sim.base;
    pprofio_ledger *l = NULL;
    assert_status(pprofio_ledger_new(&sim.base, 0, &l), PPROFIO_OK);
    pprofio_destination *d = NULL;
    pprofio_error err = {0};
    assert_status(pprofio_destination_new(&cfg, PPROFIO_DEST_PYROSCOPE, 1, &sim.base, l, &d, &err), PPROFIO_OK);

    pprofio_bytes old = push_of(3), fresh = push_of(2);
    pprofio_destination_push(d, "0123456789abcdef0123456789abcde0", (uint64_t)(now - 2 * 3600 * SEC), 3, &old);
    pprofio_destination_push(d, "0123456789abcdef0123456789abcde1", (uint64_t)(now - 600 * SEC), 2, &fresh);
    pprofio_destination_send(d); /* the old one: dropped here */
    pprofio_stats st;
    pprofio_ledger_read(l, &st);
    assert_i64(st.pyroscope_batches_dropped_old, 1);
    assert_i64(st.pyroscope_profiles_dropped, 3);
    record rec = record_load(s);
    assert_i64(rec.n, 0); /* never sent */
    record_free(&rec);
    pprofio_destination_send(d); /* the fresh one goes out (and meets the receiver's 404) */
    wait_for_requests(s, 1);
    pprofio_ledger_read(l, &st);
    assert_i64(st.pyroscope_batches_retried, 1);
    assert_i64(st.pyroscope_batches_dropped_old, 1);
    pprofio_destination_gauges(d, &st);
    assert_i64(st.pyroscope_queued_batches, 1); /* kept through the pause */
    int level;
    char msg[PPROFIO_LOG_LINE];
    int found = 0;
    while (pprofio_ledger_take_log(l, &level, msg))
        found += strstr(msg, "older than the hour Pyroscope takes") != NULL;
    assert_i64(found, 1);
    pprofio_destination_free(d);
    pprofio_ledger_free(l);
    server_stop(s);
}
