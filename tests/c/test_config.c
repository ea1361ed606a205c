/*
 * test_config.c: pprofio_config_validate and pprofio_agent_new refuse a
 * config that cannot work, with an error that names the bad field.
 */
#include "helpers.h"

#define CPU_BIT PPROFIO_TYPE_BIT(PPROFIO_PROFILE_CPU)
#define HEAP_BIT PPROFIO_TYPE_BIT(PPROFIO_PROFILE_HEAP)

TestSuite(config, .timeout = HANG_GUARD_S, .fini = scratch_cleanup);

static pprofio_config valid(void) {
    return (pprofio_config){
        .service_name = "checkout",
        .output_dir = "/tmp/pprofio-profiles",
        .period_ns = 60 * SEC,
        .cpu_duration_ns = 10 * SEC,
        .start_jitter_ns = 0,
        .jitter_seed = 1,
        .max_buffer_bytes = 64 * (int64_t)MiB,
        .profile_types = CPU_BIT | HEAP_BIT,
        .clock = NULL,
    };
}

/* expect_invalid checks that cfg is refused for `field`, by validate and by new. */
static void expect_invalid(const pprofio_config *cfg, const char *field, const char *why) {
    pprofio_error err = {0};
    int rc = pprofio_config_validate(cfg, &err);
    cr_assert_eq(rc, PPROFIO_ERR_INVALID, "%s: validate returned %s", why, pprofio_strstatus(rc));
    cr_assert_eq(err.code, PPROFIO_ERR_INVALID, "%s: err.code %d", why, err.code);
    cr_assert(strstr(err.msg, field), "%s: the error \"%s\" does not name %s", why, err.msg, field);

    pprofio_agent *a = (pprofio_agent *)&err; /* must be reset to NULL */
    pprofio_error err2 = {0};
    rc = pprofio_agent_new(cfg, &a, &err2);
    cr_assert_eq(rc, PPROFIO_ERR_INVALID, "%s: agent_new returned %s", why, pprofio_strstatus(rc));
    cr_assert_null(a, "%s: agent_new left *out set", why);
    cr_assert_str_eq(err2.msg, err.msg);
}

static void expect_valid(const pprofio_config *cfg, const char *why) {
    pprofio_error err = {0};
    int rc = pprofio_config_validate(cfg, &err);
    cr_assert_eq(rc, PPROFIO_OK, "%s: refused with \"%s\"", why, err.msg);
}

LTest(config, the_defaults_pass) {
    pprofio_config cfg = valid();
    expect_valid(&cfg, "defaults");
    pprofio_agent *a = NULL;
    assert_status(pprofio_agent_new(&cfg, &a, NULL), PPROFIO_OK);
    cr_assert_not_null(a);
    pprofio_agent_free(a);
}

LTest(config, validation_does_not_allocate) {
    pprofio_config cfg = valid();
    long before = pprofio_alloc_calls();
    pprofio_error err;
    pprofio_config_validate(&cfg, &err);
    cfg.service_name = "";
    pprofio_config_validate(&cfg, &err);
    assert_i64(pprofio_alloc_calls(), before);
}

LTest(config, a_null_config_or_out_is_invalid) {
    pprofio_error err = {0};
    assert_status(pprofio_config_validate(NULL, &err), PPROFIO_ERR_INVALID);
    assert_contains(err.msg, "config");
    pprofio_config cfg = valid();
    assert_status(pprofio_agent_new(&cfg, NULL, &err), PPROFIO_ERR_INVALID);
    assert_contains(err.msg, "out");
    assert_status(pprofio_config_validate(&(pprofio_config){0}, NULL), PPROFIO_ERR_INVALID); /* err may be NULL */
}

LTest(config, service_name_is_required) {
    pprofio_config cfg = valid();
    cfg.service_name = NULL;
    expect_invalid(&cfg, "service_name", "NULL service_name");
    cfg.service_name = "";
    expect_invalid(&cfg, "service_name", "empty service_name");
}

LTest(config, service_name_is_at_most_128_bytes) {
    char name[200];
    memset(name, 'a', sizeof name);
    pprofio_config cfg = valid();
    cfg.service_name = name;
    name[128] = '\0';
    expect_valid(&cfg, "128 bytes");
    name[128] = 'a';
    name[129] = '\0';
    expect_invalid(&cfg, "service_name", "129 bytes");
}

LTest(config, service_name_is_one_safe_folder_name) {
    const char *bad[] = {"a/b", "../etc", "a b", "tab\tname", "semi;colon", "caf\xc3\xa9", "star*", "new\nline"};
    pprofio_config cfg = valid();
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        cfg.service_name = bad[i];
        expect_invalid(&cfg, "service_name", bad[i]);
    }
    const char *good[] = {"checkout", "Checkout-API_v2.1", "a", "0", "a..b", "x-"};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        cfg.service_name = good[i];
        expect_valid(&cfg, good[i]);
    }
}

LTest(config, service_name_must_not_start_with_a_dot) {
    pprofio_config cfg = valid();
    const char *bad[] = {".", "..", ".hidden"};
    for (size_t i = 0; i < 3; i++) {
        cfg.service_name = bad[i];
        expect_invalid(&cfg, "service_name", bad[i]);
    }
}

/*
 * A year bounds every duration: a deadline of now + INT64_MAX overflowed
 * (found by tests/fuzz/fuzz_config.c with a huge stop timeout). Timeouts
 * under 1 ms would reach libcurl as 0 ms, which it reads as "none".
 */
LTest(config, durations_are_at_most_a_year_and_upload_timeouts_at_least_a_millisecond) {
    const int64_t year = 366 * 24 * 3600 * SEC;
    pprofio_config cfg = valid();
    cfg.period_ns = year + 1;
    expect_invalid(&cfg, "period_ns", "a period over 366 days");
    cfg.period_ns = INT64_MAX;
    expect_invalid(&cfg, "period_ns", "a period of INT64_MAX ns");
    cfg.period_ns = year;
    expect_valid(&cfg, "a period of 366 days");
    cfg = valid();
    cfg.ingest_url = "https://127.0.0.1:1";
    cfg.connect_timeout_ns = 10 * SEC;
    cfg.request_timeout_ns = 30 * SEC;
    cfg.stop_timeout_ns = 5 * SEC;
    expect_valid(&cfg, "upload timeouts of 10 s, 30 s, 5 s");
    int64_t *fields[] = {&cfg.connect_timeout_ns, &cfg.request_timeout_ns, &cfg.stop_timeout_ns};
    const char *names[] = {"timeouts", "timeouts", "stop_timeout_ns"};
    for (size_t i = 0; i < 3; i++) {
        int64_t keep = *fields[i];
        *fields[i] = INT64_MAX;
        expect_invalid(&cfg, names[i], "a timeout of INT64_MAX ns");
        *fields[i] = year + 1;
        expect_invalid(&cfg, names[i], "a timeout over 366 days");
        *fields[i] = year;
        expect_valid(&cfg, "a timeout of 366 days");
        *fields[i] = keep;
    }
    /* Without uploads too: close still counts the stop timeout from now (found by the fuzzer again). */
    pprofio_config local = valid();
    local.stop_timeout_ns = INT64_MAX;
    expect_invalid(&local, "stop_timeout_ns", "a stop timeout of INT64_MAX ns without uploads");
    local.stop_timeout_ns = -1;
    expect_invalid(&local, "stop_timeout_ns", "a negative stop timeout without uploads");
    cfg.connect_timeout_ns = MS - 1;
    expect_invalid(&cfg, "timeouts", "a connect timeout under 1 ms");
    cfg.connect_timeout_ns = MS;
    cfg.request_timeout_ns = MS - 1;
    expect_invalid(&cfg, "timeouts", "a request timeout under 1 ms");
    cfg.request_timeout_ns = MS;
    cfg.stop_timeout_ns = 0;
    expect_valid(&cfg, "timeouts of 1 ms and a stop timeout of 0");
}

LTest(config, period_is_at_least_one_second) {
    pprofio_config cfg = valid();
    cfg.cpu_duration_ns = 1 * SEC;
    cfg.period_ns = SEC - 1;
    expect_invalid(&cfg, "period_ns", "period 999999999 ns");
    cfg.period_ns = 0;
    expect_invalid(&cfg, "period_ns", "period 0");
    cfg.period_ns = -60 * SEC;
    expect_invalid(&cfg, "period_ns", "negative period");
    cfg.period_ns = SEC;
    expect_valid(&cfg, "period 1 s");
}

LTest(config, cpu_duration_is_within_the_period_when_cpu_is_on) {
    pprofio_config cfg = valid();
    cfg.cpu_duration_ns = 0;
    expect_invalid(&cfg, "cpu_duration_ns", "cpu 0");
    cfg.cpu_duration_ns = -1;
    expect_invalid(&cfg, "cpu_duration_ns", "cpu negative");
    cfg.cpu_duration_ns = cfg.period_ns + 1;
    expect_invalid(&cfg, "cpu_duration_ns", "cpu longer than the period");
    cfg.cpu_duration_ns = cfg.period_ns;
    expect_valid(&cfg, "cpu equal to the period");
    cfg.cpu_duration_ns = 1;
    expect_valid(&cfg, "cpu 1 ns");
}

LTest(config, cpu_duration_does_not_matter_when_cpu_is_off) {
    pprofio_config cfg = valid();
    cfg.profile_types = HEAP_BIT;
    cfg.cpu_duration_ns = 0;
    expect_valid(&cfg, "heap only, cpu 0");
    cfg.cpu_duration_ns = 10 * cfg.period_ns;
    expect_valid(&cfg, "heap only, cpu longer than the period");
}

LTest(config, start_jitter_is_between_zero_and_the_period) {
    pprofio_config cfg = valid();
    cfg.start_jitter_ns = -1;
    expect_invalid(&cfg, "start_jitter_ns", "negative jitter");
    cfg.start_jitter_ns = cfg.period_ns + 1;
    expect_invalid(&cfg, "start_jitter_ns", "jitter longer than the period");
    cfg.start_jitter_ns = cfg.period_ns;
    expect_valid(&cfg, "jitter equal to the period");
}

LTest(config, max_buffer_bytes_is_at_least_one_mib) {
    pprofio_config cfg = valid();
    cfg.max_buffer_bytes = (int64_t)MiB - 1;
    expect_invalid(&cfg, "max_buffer_bytes", "1 MiB - 1");
    cfg.max_buffer_bytes = 0;
    expect_invalid(&cfg, "max_buffer_bytes", "0");
    cfg.max_buffer_bytes = -1;
    expect_invalid(&cfg, "max_buffer_bytes", "negative");
    cfg.max_buffer_bytes = (int64_t)MiB;
    expect_valid(&cfg, "1 MiB");
}

LTest(config, profile_types_are_some_of_the_supported_ones) {
    pprofio_config cfg = valid();
    cfg.profile_types = 0;
    expect_invalid(&cfg, "profile_types", "no types");
    const unsigned bad[] = {1u /* bit 0: no type */, 1u << 31, PPROFIO_TYPE_BIT(6) /* custom: not a runtime profile */,
                            CPU_BIT | HEAP_BIT | PPROFIO_TYPE_BIT(7)};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        cfg.profile_types = bad[i];
        char why[64];
        snprintf(why, sizeof why, "types 0x%x", bad[i]);
        expect_invalid(&cfg, "profile_types", why);
    }
    cfg.profile_types = CPU_BIT;
    expect_valid(&cfg, "cpu only");
    cfg.profile_types = HEAP_BIT;
    expect_valid(&cfg, "heap only");
    cfg.profile_types = PPROFIO_TYPE_BIT(PPROFIO_PROFILE_GOROUTINE);
    expect_valid(&cfg, "goroutine only: no window, so no cpu_duration needed");
    cfg.profile_types = PPROFIO_TYPE_BIT(PPROFIO_PROFILE_MUTEX) | PPROFIO_TYPE_BIT(PPROFIO_PROFILE_BLOCK);
    expect_valid(&cfg, "mutex and block");
    cfg.cpu_duration_ns = 0;
    expect_invalid(&cfg, "cpu_duration_ns", "mutex and block windows need a duration");
    cfg.profile_types = PPROFIO_TYPE_BIT(PPROFIO_PROFILE_GOROUTINE) | HEAP_BIT;
    expect_valid(&cfg, "snapshots only: no window, so no cpu_duration needed");
}

LTest(config, output_dir_is_optional_but_not_endless) {
    pprofio_config cfg = valid();
    cfg.output_dir = NULL;
    expect_valid(&cfg, "no output_dir");
    cfg.output_dir = "";
    expect_valid(&cfg, "empty output_dir");
    static char long_dir[4000];
    memset(long_dir, 'd', sizeof long_dir - 1);
    cfg.output_dir = long_dir;
    expect_invalid(&cfg, "output_dir", "a 3999-byte output_dir");
}

LTest(config, status_and_type_names_are_stable) {
    cr_assert_str_eq(pprofio_strstatus(PPROFIO_OK), "ok");
    cr_assert_str_eq(pprofio_strstatus(PPROFIO_ERR_LIMIT), "limit reached");
    cr_assert_str_eq(pprofio_strstatus(12345), "unknown status");
    for (int s = PPROFIO_ERR_CLOSED; s <= PPROFIO_OK; s++)
        cr_assert_str_neq(pprofio_strstatus(s), "unknown status", "status %d has no name", s);
    cr_assert_str_eq(pprofio_profile_name(PPROFIO_PROFILE_CPU), "cpu");
    cr_assert_str_eq(pprofio_profile_name(PPROFIO_PROFILE_HEAP), "heap");
    cr_assert_str_eq(pprofio_profile_name(PPROFIO_PROFILE_BLOCK), "block");
    cr_assert_str_eq(pprofio_profile_name(0), "unknown");
    cr_assert_str_eq(pprofio_profile_name(99), "unknown");
}
