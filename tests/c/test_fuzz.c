/*
 * test_fuzz.c: the inputs the fuzz targets of tests/fuzz found, replayed.
 *
 * Each target (fuzz_spool.c, fuzz_batch.c, fuzz_retry_after.c,
 * fuzz_config.c) is compiled in here with FUZZ_REPLAY, so the very checks
 * the fuzzer ran (they abort when a promise breaks) run again, under ASan,
 * UBSan and LSan, on every file in tests/fuzz/regressions/<target>/. A fixed
 * bug that comes back fails its test. The pprof decoder's own regressions
 * (the files at the top of tests/fuzz/regressions/) are replayed by
 * test_pprof.c. Each target also runs on a few inputs written here, so a
 * replay that read nothing would still exercise it.
 */
#define FUZZ_REPLAY 1
#include "../fuzz/fuzz_batch.c"
#include "../fuzz/fuzz_config.c"
#include "../fuzz/fuzz_retry_after.c"
#include "../fuzz/fuzz_spool.c"
#include "helpers.h"

#include <libgen.h>

TestSuite(fuzz, .timeout = HANG_GUARD_S, .fini = scratch_cleanup);

/* repo_path returns tests/<rel>, found from this file's path. */
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

typedef int (*fuzz_one_fn)(const uint8_t *, size_t);

/* replay runs fn on every regular file in tests/fuzz/regressions/<target>/ and returns how many. */
static size_t replay(const char *target, fuzz_one_fn fn) {
    char sub[64];
    snprintf(sub, sizeof sub, "fuzz/regressions/%s", target);
    char *dir = repo_path(sub);
    size_t n = 0;
    DIR *d = opendir(dir);
    struct dirent *e;
    while (d && (e = readdir(d)) != NULL) {
        char *path = path_join(dir, e->d_name);
        struct stat st;
        if (e->d_name[0] != '.' && stat(path, &st) == 0 && S_ISREG(st.st_mode)) {
            size_t len;
            uint8_t *in = read_file(path, &len);
            cr_assert(in, "cannot read %s", path);
            cr_log_info("%s: %s", target, e->d_name);
            fn(in, len);
            free(in);
            n++;
        }
        free(path);
    }
    if (d)
        closedir(d);
    free(dir);
    return n;
}

LTest(fuzz, retry_after_inputs_the_fuzzer_found_parse_within_the_promised_range) {
    static const char *const v[] = {"120", " 3601 ", "Fri, 31 Dec 9999 23:59:59 GMT", "Sun Nov  6 08:49:37 1994", ""};
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++)
        fuzz_retry_after_one((const uint8_t *)v[i], strlen(v[i]));
    size_t n = replay("retry_after", fuzz_retry_after_one);
    cr_assert_geq(n, 1, "the regression input of the far-future date is missing");
}

LTest(fuzz, config_inputs_the_fuzzer_found_are_refused_or_build_an_agent) {
    uint8_t in[80 + 32] = {0};
    int64_t v[8] = {60 * SEC, 10 * SEC, 0, 16 << 20, 64 << 20, 10 * SEC, 30 * SEC, INT64_MAX};
    int32_t types = 0x6;
    memcpy(in, v, sizeof v);
    memcpy(in + 64, &types, 4);
    memcpy(in + 80, "svc\0\0https://127.0.0.1:9/\0", 27);
    fuzz_config_one(in, 80 + 27);
    size_t n = replay("config", fuzz_config_one);
    cr_assert_geq(n, 1, "the regression input of the stop timeout overflow is missing");
}

LTest(fuzz, batch_inputs_the_fuzzer_found_split_or_are_refused) {
    static const uint8_t junk[] = {0, 0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3};
    fuzz_batch_one(junk, sizeof junk);
    /* a real batch of three profiles, gzipped (mode byte 0): split into one and two */
    static const char *const keys[] = {"env"}, *const values[] = {"prod"};
    pprofio_source src = {.tag_keys = keys, .tag_values = values, .n_tags = 1, .service = "svc",
                          .instance_id = "0123456789abcdef0123456789abcdef"};
    pprofio_profile p[3], *pp[3];
    uint8_t raw[3][64];
    for (int i = 0; i < 3; i++) {
        memset(&p[i], 0, sizeof p[i]);
        memset(raw[i], 'a' + i, sizeof raw[i]);
        p[i].type = i + 1;
        p[i].raw.p = raw[i];
        p[i].raw.len = sizeof raw[i];
        pp[i] = &p[i];
    }
    pprofio_bytes gz = {0};
    assert_status(pprofio_batch_encode(&src, "0123456789abcdef0123456789abcdef", 9, pp, 3, NULL, 0, &gz, NULL),
                  PPROFIO_OK);
    uint8_t *in = malloc(gz.len + 1);
    cr_assert(in);
    in[0] = 0;
    memcpy(in + 1, gz.p, gz.len);
    fuzz_batch_one(in, gz.len + 1);
    free(in);
    pprofio_bytes_free(&gz);
    replay("batch", fuzz_batch_one);
}

LTest(fuzz, spool_files_the_fuzzer_found_are_delivered_whole_or_removed_and_counted) {
    static const uint8_t hdr_only[1 + 72] = {0x0f, 'P', 'P', 'R', 'Q', 'B', 'A', 'T', '1', 1};
    fuzz_spool_one(hdr_only, sizeof hdr_only);
    static const uint8_t junk[] = {0x5f, 1, 2, 3, 4, 5, 6, 7, 8, 9};
    fuzz_spool_one(junk, sizeof junk);
    replay("spool", fuzz_spool_one);
    rm_rf(root);
}
