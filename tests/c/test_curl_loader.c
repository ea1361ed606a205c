/*
 * test_curl_loader.c: libcurl loaded at run time (csrc/curl_loader.c), and
 * what the uploader and the agent do on a host where it cannot be: the
 * agent starts, writes locally, says once that uploads are off and why, and
 * keeps every batch in the spool.
 *
 * This binary is not linked with libcurl; the loader opens the host's
 * libcurl.so.4 as it would in a Go program. A missing library is a name
 * that no host has; a too old one is build/ctest/libcurl-7.58.so
 * (old_curl.c). pprofio_curl_get loads once per process, and Criterion runs
 * each test in its own process, so each test may choose what it loads.
 */
#include <stdatomic.h>

#include "../../csrc/curl_loader.h"
#include "../../csrc/upload.h"
#include "collector.h"

#define ABSENT "libpprofio-absent-curl.so.4"
#define SERVICE "loader-test"
#define INSTANCE "00112233445566778899aabbccddeeff"
#define PERIOD (60 * SEC)

TestSuite(curl_loader, .timeout = 60);
TestSuite(uploads_off, .timeout = 60);

/* old_curl is the path of the fake libcurl 7.58.0, next to this binary. */
static const char *old_curl(void) {
    static char path[4096];
    snprintf(path, sizeof path, "%s", __FILE__);
    char *end = strstr(path, "/tests/c/test_curl_loader.c");
    cr_assert_not_null(end, "cannot find the repository from %s", __FILE__);
    snprintf(end, sizeof path - (size_t)(end - path), "/build/ctest/libcurl-7.58.so");
    return path;
}

LTest(curl_loader, the_hosts_libcurl_so_4_loads_with_every_function_resolved_and_its_version) {
    pprofio_curl k;
    char why[PPROFIO_CURL_WHY];
    assert_status(pprofio_curl_load(PPROFIO_CURL_SONAME, &k, why, sizeof why), PPROFIO_OK);
    cr_assert_str_empty(why);
    /* every field after the version is a resolved function */
    void *fns[(sizeof k - offsetof(pprofio_curl, version_info)) / sizeof(void *)];
    memcpy(fns, (char *)&k + offsetof(pprofio_curl, version_info), sizeof fns);
    for (size_t i = 0; i < sizeof fns / sizeof fns[0]; i++)
        cr_assert_not_null(fns[i], "function %zu of the table was not resolved", i);
    const curl_version_info_data *v = k.version_info(CURLVERSION_NOW);
    cr_assert_eq(k.version_num, v->version_num);
    cr_assert_str_eq(k.version, v->version);
    cr_assert(pprofio_curl_version_ok(k.version_num), "the host's libcurl %s is refused", k.version);
}

LTest(curl_loader, the_shared_table_is_loaded_once_and_initialised) {
    const char *why = "unset";
    const pprofio_curl *k = pprofio_curl_get(&why);
    cr_assert_not_null(k, "pprofio_curl_get: %s", why);
    cr_assert_null(why);
    cr_assert_eq(pprofio_curl_get(NULL), k, "a second call loaded again");
    /* it works: an easy handle with the typed shims */
    CURL *c = k->easy_init();
    cr_assert_not_null(c);
    assert_i64(pprofio_curl_setopt_long(k, c, CURLOPT_NOSIGNAL, 1L), CURLE_OK);
    assert_i64(pprofio_curl_setopt_ptr(k, c, CURLOPT_URL, "https://127.0.0.1:1/"), CURLE_OK);
    assert_i64(pprofio_curl_setopt_off(k, c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)12), CURLE_OK);
    assert_i64(pprofio_curl_setopt_protocols(k, c), CURLE_OK);
    long code = -1;
    assert_i64(pprofio_curl_getinfo_long(k, c, CURLINFO_RESPONSE_CODE, &code), CURLE_OK);
    assert_i64(code, 0);
    k->easy_cleanup(c);
}

LTest(curl_loader, a_missing_library_is_refused_with_its_name_and_the_dynamic_loaders_reason) {
    pprofio_curl k;
    char why[PPROFIO_CURL_WHY];
    cr_assert_neq(pprofio_curl_load(ABSENT, &k, why, sizeof why), PPROFIO_OK);
    cr_assert_not_null(strstr(why, ABSENT), "%s", why);
    cr_assert_not_null(strstr(why, "No such file"), "%s", why);
    cr_assert_null(k.easy_setopt, "a refused table keeps a function");
}

LTest(curl_loader, a_library_that_is_not_libcurl_is_refused) {
    pprofio_curl k;
    char why[PPROFIO_CURL_WHY];
    cr_assert_neq(pprofio_curl_load("libz.so.1", &k, why, sizeof why), PPROFIO_OK);
    cr_assert_str_eq(why, "libz.so.1 is not libcurl (it has no curl_version_info)");
}

LTest(curl_loader, a_libcurl_older_than_7_68_0_is_refused_by_its_version) {
    pprofio_curl k;
    char why[PPROFIO_CURL_WHY];
    cr_assert_neq(pprofio_curl_load(old_curl(), &k, why, sizeof why), PPROFIO_OK);
    cr_assert_str_eq(why, "libcurl 7.58.0 is too old (7.68.0 or newer is needed)");
    cr_assert(!pprofio_curl_version_ok(0x074300), "7.67.0 accepted");
    cr_assert(pprofio_curl_version_ok(0x074400), "7.68.0 refused");
    cr_assert(pprofio_curl_version_ok(0x080b00), "8.11.0 refused");
}

LTest(curl_loader, without_a_library_the_shared_table_is_null_with_the_reason_every_time) {
    pprofio_curl_use_soname(ABSENT);
    const char *why = NULL;
    cr_assert_null(pprofio_curl_get(&why));
    cr_assert_not_null(why);
    cr_assert_not_null(strstr(why, ABSENT), "%s", why);
    const char *again = NULL;
    cr_assert_null(pprofio_curl_get(&again));
    cr_assert_str_eq(again, why);
}

/* ---- the uploader and the agent without libcurl -------------------------------- */

static pprofio_config off_config(void) {
    return (pprofio_config){
        .service_name = SERVICE,
        .ingest_url = "https://127.0.0.1:9", /* nothing may ever connect */
        .api_key = "k-loader-test",
        .connect_timeout_ns = 5 * SEC,
        .request_timeout_ns = 20 * SEC,
        .stop_timeout_ns = 3600 * SEC,
        .source = {.service = SERVICE, .instance_id = INSTANCE, .pid = 7},
        .period_ns = PERIOD,
        .cpu_duration_ns = 10 * SEC,
        .jitter_seed = 1,
        .max_buffer_bytes = 8 * (int64_t)MiB,
        .max_spool_bytes = 8 * (int64_t)MiB,
        .profile_types = PPROFIO_TYPE_BIT(PPROFIO_PROFILE_CPU) | PPROFIO_TYPE_BIT(PPROFIO_PROFILE_HEAP),
    };
}

LTest(uploads_off, an_uploader_without_libcurl_exists_says_why_and_posts_nothing) {
    pprofio_curl_use_soname(ABSENT);
    pprofio_config cfg = off_config();
    pprofio_uploader *u = NULL;
    pprofio_error err = {0};
    assert_status(pprofio_uploader_new(&cfg, &u, &err), PPROFIO_OK);
    cr_assert_str_eq(pprofio_uploader_url(u), "https://127.0.0.1:9/v1/profiles");
    const char *off = pprofio_uploader_off(u);
    cr_assert_not_null(off);
    cr_assert_not_null(strstr(off, ABSENT), "%s", off);
    pprofio_upload_result r;
    uint64_t sent = 99;
    pprofio_uploader_post(u, "0123456789abcdef0123456789abcdef", "x", 1, 0, &r, &sent);
    assert_i64(r.verdict, PPROFIO_UP_RETRY);
    assert_i64(r.status, 0);
    assert_i64(sent, 0);
    cr_assert_not_null(strstr(r.detail, "uploads are off"), "%s", r.detail);
    pprofio_uploader_abort_at(u, 1); /* no transfer to cut short: nothing to do */
    pprofio_uploader_free(u);
}

static pprofio_sim_clock sim;
static collector col; /* large: keep it off the stack */

static int count_logs(const collector *c, int level, const char *needle) {
    int n = 0;
    for (size_t i = 0; i < c->nlogs; i++)
        if (c->logs[i].level == level && strstr(c->logs[i].message, needle))
            n++;
    return n;
}

LTest(uploads_off, without_libcurl_the_agent_writes_locally_says_once_why_and_keeps_every_batch_spooled) {
    pprofio_curl_use_soname(ABSENT);
    char *out = scratch_dir(), *spool = scratch_dir();
    pprofio_config cfg = off_config();
    cfg.output_dir = out;
    cfg.spool_dir = spool;
    int64_t t0 = INT64_C(1795988000) * SEC;
    pprofio_sim_clock_init(&sim, t0);
    cfg.clock = &sim.base;
    collector_init(&col, &sim, 0); /* cycle 0, then the final cycle 1: two batches */
    pprofio_error err = {0};
    assert_status(pprofio_agent_new(&cfg, &col.a, &err), PPROFIO_OK);
    assert_status(pprofio_agent_start(col.a, &err), PPROFIO_OK);
    collector_run(&col);
    assert_status(pprofio_agent_close(col.a, &err), PPROFIO_OK);
    for (pprofio_command cmd; pprofio_agent_next(col.a, &cmd) == PPROFIO_OK && cmd.op != PPROFIO_CMD_EXIT;)
        if (cmd.op == PPROFIO_CMD_LOG && col.nlogs < COLLECTOR_LOGS)
            col.logs[col.nlogs++] = cmd;
    for (size_t i = 0; i < col.nlogs; i++)
        cr_log_info("LOG %d: %s", col.logs[i].level, col.logs[i].message);

    pprofio_stats st;
    pprofio_agent_stats(col.a, &st);
    assert_i64(st.uploads_off, 1);
    cr_assert_geq(st.profiles_written, 3, "local storage stopped working");
    assert_i64(st.batches_queued, 2);
    assert_i64(st.queued_batches, 2);
    assert_i64(st.batches_sent + st.batches_retried + st.batches_dropped_rejected + st.batches_dropped_spool, 0);
    assert_i64(st.bytes_sent, 0);
    cr_assert_gt(st.spool_bytes, 0);
    assert_i64(count_logs(&col, PPROFIO_LOG_ERROR, "uploads are off"), 1);
    cr_assert_eq(count_logs(&col, PPROFIO_LOG_ERROR, ABSENT), 1, "the log line does not say what is missing");
    assert_i64(count_logs(&col, PPROFIO_LOG_WARN, "uploads are failing"), 0);
    /* close did not wait for the stop timeout (an hour of the simulated clock) */
    cr_assert_lt(atomic_load(&sim.now) - t0, PERIOD + SEC, "the upload thread waited after the stop");
    char *own = path_join(spool, INSTANCE);
    pprofio_agent_free(col.a);
    assert_i64(count_entries(own, NULL, ".batch"), 2); /* they outlive the agent, for a host that can send */
    free(own);
    collector_free(&col);
    scratch_remove(out);
    scratch_remove(spool);
}
