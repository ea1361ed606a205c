/*
 * test_store.c: profile files under the output folder (csrc/store.h).
 *
 *   <root>/<service>/<type>/<start>_<end>.pb.gz, UTC, 0600 in 0700 folders,
 *
 * written whole or not at all: a reader never sees a partial file, a name
 * that is taken is never overwritten, and a failure leaves nothing behind.
 * The tests run as root, so failures come from the file system's shape
 * (a file where a folder should be) and from RLIMIT_FSIZE, not permissions.
 */
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/resource.h>

#include "../../csrc/store.h"
#include "../../csrc/sysio.h"
#include "helpers.h"

#define START (INT64_C(1795988477) * SEC + 123456789) /* 2026-11-29T21:41:17.123456789Z */
#define END (START + 10 * SEC)
#define CPU_NAME "20261129T214117.123Z_20261129T214127.123Z.pb.gz"

TestSuite(store, .timeout = HANG_GUARD_S, .fini = scratch_cleanup);

/* ---- names --------------------------------------------------------------- */

static void expect_time(int64_t ns, const char *want) {
    char got[32];
    memset(got, '#', sizeof got);
    pprofio_store_format_time(ns, got, 21); /* store.h: needs 21 bytes */
    cr_assert_str_eq(got, want, "format_time(%lld) is %s, want %s", (long long)ns, got, want);
}

LTest(store, time_names_are_utc_to_the_millisecond_and_truncate) {
    expect_time(0, "19700101T000000.000Z");
    expect_time(START, "20261129T214117.123Z");
    expect_time(INT64_C(951782400) * SEC + 999999999, "20000229T000000.999Z");
    expect_time(INT64_C(4102444799) * SEC + 500 * MS, "20991231T235959.500Z");
    expect_time(INT64_MAX, "22620411T234716.854Z");
}

LTest(store, time_names_before_1970_round_down_like_those_after) {
    /* Each name is the millisecond the instant falls in, so names sort by time. */
    expect_time(-1, "19691231T235959.999Z");
    expect_time(-1 * MS, "19691231T235959.999Z");
    expect_time(-1 * MS - 1, "19691231T235959.998Z");
    expect_time(-1 * SEC, "19691231T235959.000Z");
    expect_time(-86400 * SEC, "19691231T000000.000Z");
    expect_time(-86400 * SEC + 1, "19691231T000000.000Z");
    expect_time(INT64_MIN, "16770921T001243.145Z");
}

LTest(store, time_names_never_write_past_the_buffer) {
    char buf[32];
    memset(buf, '#', sizeof buf);
    pprofio_store_format_time(START, buf, 10);
    cr_assert_str_eq(buf, "20261129T");
    for (size_t i = 10; i < sizeof buf; i++)
        cr_assert_eq(buf[i], '#', "byte %zu was written", i);
}

/* ---- writing --------------------------------------------------------------- */

LTest(store, writes_the_profile_to_root_service_type_start_end_pb_gz) {
    char *dir = scratch_dir();
    char *root = path_join(dir, "profiles"); /* does not exist yet */
    uint8_t *raw = text_bytes(200 * KiB, 1);
    size_t written = 0;
    char *path = NULL;
    pprofio_error err = {0};
    assert_status(pprofio_store_write(root, "checkout", PPROFIO_PROFILE_CPU, START, END, raw, 200 * KiB, &written,
                                      &path, &err),
                  PPROFIO_OK);
    char want[4096];
    snprintf(want, sizeof want, "%s/checkout/cpu/%s", root, CPU_NAME);
    cr_assert_str_eq(path, want);
    size_t len;
    uint8_t *file = read_file(want, &len);
    cr_assert(file, "no file at %s", want);
    assert_i64(written, len);
    cr_assert(gunzip_equals(file, len, raw, 200 * KiB), "the file does not gunzip to the profile");
    free(file);
    pprofio_free(path);
    free(raw);
    free(root);
    scratch_remove(dir);
}

LTest(store, each_profile_type_has_its_own_folder) {
    char *dir = scratch_dir();
    const char *names[] = {"", "cpu", "heap", "goroutine", "mutex", "block"};
    for (int t = PPROFIO_PROFILE_CPU; t <= PPROFIO_PROFILE_MAX; t++) {
        char *path = NULL;
        assert_status(pprofio_store_write(dir, "svc", t, START, END, names[t], strlen(names[t]), NULL, &path, NULL),
                      PPROFIO_OK);
        char want[4096];
        snprintf(want, sizeof want, "%s/svc/%s/%s", dir, names[t], CPU_NAME);
        cr_assert_str_eq(path, want);
        size_t len;
        uint8_t *file = read_file(path, &len);
        cr_assert(gunzip_equals(file, len, names[t], strlen(names[t])));
        free(file);
        pprofio_free(path);
    }
    scratch_remove(dir);
}

LTest(store, files_are_0600_and_the_folders_it_creates_0700_whatever_the_umask) {
    umask(0);
    char *dir = scratch_dir();
    char *root = path_join(dir, "a/b");
    char *path = NULL;
    assert_status(pprofio_store_write(root, "svc", PPROFIO_PROFILE_HEAP, START, END, "x", 1, NULL, &path, NULL),
                  PPROFIO_OK);
    cr_assert_eq(mode_of(path), 0600, "file mode %o", mode_of(path));
    char *svc = path_join(root, "svc"), *type = path_join(svc, "heap"), *a = path_join(dir, "a");
    const char *dirs[] = {a, root, svc, type};
    for (size_t i = 0; i < 4; i++)
        cr_assert_eq(mode_of(dirs[i]), 0700, "%s has mode %o", dirs[i], mode_of(dirs[i]));
    free(a);
    free(svc);
    free(type);
    pprofio_free(path);
    free(root);
    scratch_remove(dir);
}

LTest(store, a_name_that_is_taken_gets_a_numbered_suffix_instead_of_being_overwritten) {
    char *dir = scratch_dir();
    const char *contents[] = {"first", "second", "third"};
    const char *suffixes[] = {".pb.gz", "-1.pb.gz", "-2.pb.gz"};
    char *paths[3];
    for (int i = 0; i < 3; i++) {
        size_t written = 0;
        assert_status(pprofio_store_write(dir, "svc", PPROFIO_PROFILE_CPU, START, END, contents[i],
                                          strlen(contents[i]), &written, &paths[i], NULL),
                      PPROFIO_OK);
        char want[4096];
        snprintf(want, sizeof want, "%s/svc/cpu/20261129T214117.123Z_20261129T214127.123Z%s", dir, suffixes[i]);
        cr_assert_str_eq(paths[i], want);
        cr_assert_gt(written, 0);
    }
    for (int i = 0; i < 3; i++) {
        size_t len;
        uint8_t *file = read_file(paths[i], &len);
        cr_assert(gunzip_equals(file, len, contents[i], strlen(contents[i])), "%s does not hold \"%s\"", paths[i],
                  contents[i]);
        free(file);
        pprofio_free(paths[i]);
    }
    scratch_remove(dir);
}

/* ---- atomicity -------------------------------------------------------------- */

#define FILES 150

typedef struct {
    char *type_dir;
    char names[FILES][80];
    atomic_int writer_done;
    int seen[FILES];
    int verified, bad, passes;
    char bad_name[512];
} watch;

static size_t payload_size(int i) { return 1 + ((size_t)i * 7919u) % (160 * KiB); }

/* check_listing reads every new *.pb.gz in the folder once; all must be whole. */
static void check_listing(watch *w) {
    DIR *d = opendir(w->type_dir);
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        size_t len = strlen(e->d_name);
        if (len < 6 || strcmp(e->d_name + len - 6, ".pb.gz") != 0)
            continue;
        int i = 0;
        while (i < FILES && strcmp(w->names[i], e->d_name) != 0)
            i++;
        if (i == FILES || !w->seen[i]) {
            char path[4096];
            snprintf(path, sizeof path, "%s/%s", w->type_dir, e->d_name);
            size_t n;
            uint8_t *file = read_file(path, &n);
            uint8_t *want = i < FILES ? random_bytes(payload_size(i), (uint64_t)i) : NULL;
            int ok = file && want && gunzip_equals(file, n, want, payload_size(i));
            free(file);
            free(want);
            if (!ok) {
                if (w->bad++ == 0)
                    snprintf(w->bad_name, sizeof w->bad_name, "%s (%zu bytes)", e->d_name, n);
                continue;
            }
            w->seen[i] = 1;
            w->verified++;
        }
    }
    closedir(d);
}

static void *watch_main(void *arg) {
    watch *w = arg;
    while (!atomic_load(&w->writer_done)) {
        check_listing(w);
        w->passes++;
    }
    check_listing(w); /* and once more after the last write */
    return NULL;
}

LTest(store, a_reader_listing_the_folder_never_sees_a_partial_file) {
    char *dir = scratch_dir();
    static watch w; /* large: keep it off the stack */
    memset(&w, 0, sizeof w);
    char *svc = path_join(dir, "svc");
    w.type_dir = path_join(svc, "cpu");
    for (int i = 0; i < FILES; i++) {
        char a[32], b[32];
        pprofio_store_format_time(START + i * SEC, a, sizeof a);
        pprofio_store_format_time(START + i * SEC + SEC / 2, b, sizeof b);
        snprintf(w.names[i], sizeof w.names[i], "%s_%s.pb.gz", a, b);
    }
    pthread_t t;
    cr_assert_eq(pthread_create(&t, NULL, watch_main, &w), 0);
    int failures = 0;
    for (int i = 0; i < FILES; i++) {
        uint8_t *raw = random_bytes(payload_size(i), (uint64_t)i);
        failures += pprofio_store_write(dir, "svc", PPROFIO_PROFILE_CPU, START + i * SEC, START + i * SEC + SEC / 2,
                                        raw, payload_size(i), NULL, NULL, NULL) != PPROFIO_OK;
        free(raw);
    }
    atomic_store(&w.writer_done, 1);
    pthread_join(t, NULL);
    assert_i64(failures, 0);
    cr_assert_eq(w.bad, 0, "the reader saw %d file(s) that were not whole, the first %s", w.bad, w.bad_name);
    assert_i64(w.verified, FILES);
    assert_i64(count_entries(w.type_dir, NULL, ".pb.gz"), FILES);
    assert_i64(count_entries(w.type_dir, ".tmp-", NULL), 0);
    assert_i64(count_entries(w.type_dir, NULL, NULL), FILES);
    cr_log_info("the reader listed the folder %d times while %d files were written", w.passes, FILES);
    free(w.type_dir);
    free(svc);
    scratch_remove(dir);
}

/* ---- failures ------------------------------------------------------------- */

LTest(store, a_failed_disk_write_is_an_io_error_that_names_the_step_and_leaves_no_file) {
    char *dir = scratch_dir();
    uint8_t *raw = random_bytes(256 * KiB, 3); /* gzips to more than the limit below */
    signal(SIGXFSZ, SIG_IGN);                  /* this test's own process: Criterion forks per test */
    struct rlimit old, small;
    cr_assert_eq(getrlimit(RLIMIT_FSIZE, &old), 0);
    small = (struct rlimit){.rlim_cur = 4096, .rlim_max = old.rlim_max};
    cr_assert_eq(setrlimit(RLIMIT_FSIZE, &small), 0);
    size_t written = 99;
    char *path = (char *)"untouched";
    pprofio_error err = {0};
    int rc = pprofio_store_write(dir, "svc", PPROFIO_PROFILE_CPU, START, END, raw, 256 * KiB, &written, &path, &err);
    cr_assert_eq(setrlimit(RLIMIT_FSIZE, &old), 0);

    assert_status(rc, PPROFIO_ERR_IO);
    assert_i64(err.code, PPROFIO_ERR_IO);
    assert_contains(err.msg, "write");
    assert_contains(err.msg, strerror(EFBIG));
    assert_i64(written, 0);
    cr_assert_null(path);
    char *type_dir = path_join(dir, "svc/cpu");
    assert_i64(count_entries(type_dir, NULL, NULL), 0);
    free(type_dir);
    free(raw);
    scratch_remove(dir);
}

LTest(store, a_root_below_a_regular_file_is_an_io_error_naming_the_folder) {
    char *dir = scratch_dir();
    char *file = path_join(dir, "plain-file");
    write_file(file, "not a folder");
    char *root = path_join(file, "profiles");
    pprofio_error err = {0};
    char *path = NULL;
    assert_status(pprofio_store_write(root, "svc", PPROFIO_PROFILE_HEAP, START, END, "x", 1, NULL, &path, &err),
                  PPROFIO_ERR_IO);
    assert_i64(err.code, PPROFIO_ERR_IO);
    assert_contains(err.msg, "create");
    assert_contains(err.msg, root);
    assert_contains(err.msg, strerror(ENOTDIR));
    cr_assert_null(path);
    size_t len;
    uint8_t *text = read_file(file, &len);
    cr_assert(len == 12 && memcmp(text, "not a folder", 12) == 0, "the file in the way was changed");
    free(text);
    assert_i64(count_entries(dir, NULL, NULL), 1);
    free(root);
    free(file);
    scratch_remove(dir);
}

LTest(store, a_regular_file_where_the_service_folder_belongs_is_an_io_error) {
    char *dir = scratch_dir();
    char *svc = path_join(dir, "svc");
    write_file(svc, "in the way");
    pprofio_error err = {0};
    assert_status(pprofio_store_write(dir, "svc", PPROFIO_PROFILE_CPU, START, END, "x", 1, NULL, NULL, &err),
                  PPROFIO_ERR_IO);
    assert_contains(err.msg, strerror(ENOTDIR));
    size_t len;
    uint8_t *text = read_file(svc, &len);
    cr_assert(len == 10 && memcmp(text, "in the way", 10) == 0);
    free(text);
    free(svc);
    scratch_remove(dir);
}

LTest(store, when_every_name_is_taken_the_write_fails_at_rename_and_leaves_no_temp_file) {
    char *dir = scratch_dir();
    char *type_dir = path_join(dir, "svc/cpu");
    assert_i64(pprofio_mkdirs(type_dir, 0700), 0);
    for (int i = 0; i < 100; i++) {
        char name[4096];
        if (i == 0)
            snprintf(name, sizeof name, "%s/%s", type_dir, CPU_NAME);
        else
            snprintf(name, sizeof name, "%s/20261129T214117.123Z_20261129T214127.123Z-%d.pb.gz", type_dir, i);
        write_file(name, "taken");
    }
    pprofio_error err = {0};
    assert_status(pprofio_store_write(dir, "svc", PPROFIO_PROFILE_CPU, START, END, "x", 1, NULL, NULL, &err),
                  PPROFIO_ERR_IO);
    assert_contains(err.msg, "rename");
    assert_contains(err.msg, strerror(EEXIST));
    assert_i64(count_entries(type_dir, ".tmp-", NULL), 0);
    assert_i64(count_entries(type_dir, NULL, NULL), 100);
    free(type_dir);
    scratch_remove(dir);
}

LTest(store, mkdirs_creates_every_missing_parent_and_accepts_existing_ones) {
    char *dir = scratch_dir();
    char *deep = path_join(dir, "x/y/z/");
    assert_i64(pprofio_mkdirs(deep, 0700), 0);
    assert_i64(pprofio_mkdirs(deep, 0700), 0);
    struct stat st;
    cr_assert_eq(stat(deep, &st), 0);
    cr_assert(S_ISDIR(st.st_mode));
    assert_i64(pprofio_mkdirs("", 0700), -EINVAL);
    char *file = path_join(dir, "f");
    write_file(file, "f");
    assert_i64(pprofio_mkdirs(file, 0700), -ENOTDIR);
    free(file);
    free(deep);
    scratch_remove(dir);
}
