/*
 * helpers.h: what every C test of the core shares.
 *
 *   LTest(suite, name)  a Criterion Test whose end asks LeakSanitizer for
 *                       leaks, so a leak fails the very test that made it
 *                       (Criterion ignores a leak report printed at exit)
 *   assert_i64(...)     an equality check that prints both numbers
 *   scratch dirs, file reading, deterministic random bytes, gzip helpers
 */
#ifndef PPROFIO_TEST_HELPERS_H
#define PPROFIO_TEST_HELPERS_H

#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "pprofio.h"
#include "../../csrc/alloc.h"
#include "../../csrc/gz.h"

#define SEC INT64_C(1000000000)
#define MS INT64_C(1000000)
#define KiB ((size_t)1024)
#define MiB ((size_t)1024 * 1024)

/*
 * A test's verdict must not depend on how fast the machine is: each test
 * bounds its work, not its time. HANG_GUARD_S is the Criterion .timeout of
 * every suite, far above what any test takes on a busy machine, so only a
 * hang reaches it; WAIT_GUARD_S bounds a wait for an event (a request at
 * the receiver, a counter) the same way. A client timeout that a test does
 * not mean to hit is minutes long; one it means to hit faces a server that
 * never answers, so that the post returning at all is the proof.
 */
#define HANG_GUARD_S 600
#define WAIT_GUARD_S 300
#define HOUR (3600 * SEC)

/* ---- leaks --------------------------------------------------------------- */

/*
 * Weak, so that the tests still link (and simply skip the check) when they
 * are built without -fsanitize=address. Under ASan with detect_leaks=0 it
 * returns 0 as well: tests/c/ctest.mk turns detect_leaks on whenever it works.
 */
extern int __lsan_do_recoverable_leak_check(void) __attribute__((weak));

static inline void expect_no_leaks(void) {
    int (*check)(void) = __lsan_do_recoverable_leak_check;
    if (check)
        cr_assert_eq(check(), 0, "LeakSanitizer found memory that this test leaked (report above)");
}

/*
 * LTest declares a Criterion test; after its body returns, the test fails
 * if any allocation made so far is no longer reachable.
 */
#define LTest(suite, name, ...)                                                                    \
    static void suite##__##name##__body(void);                                                     \
    Test(suite, name, ##__VA_ARGS__) {                                                             \
        suite##__##name##__body();                                                                 \
        pprofio_alloc_fail_after(-1);                                                              \
        expect_no_leaks();                                                                         \
    }                                                                                              \
    static void suite##__##name##__body(void)

/* ---- assertions ----------------------------------------------------------- */

#define assert_i64(got, want)                                                                      \
    do {                                                                                           \
        long long got_ = (long long)(got), want_ = (long long)(want);                              \
        cr_assert_eq(got_, want_, "%s is %lld, want %lld (%s)", #got, got_, want_, #want);         \
    } while (0)

#define assert_status(got, want)                                                                   \
    do {                                                                                           \
        int got_ = (got), want_ = (want);                                                          \
        cr_assert_eq(got_, want_, "%s returned %d (%s), want %d (%s)", #got, got_,                 \
                     pprofio_strstatus(got_), want_, pprofio_strstatus(want_));                    \
    } while (0)

#define assert_contains(haystack, needle)                                                          \
    do {                                                                                           \
        const char *h_ = (haystack), *n_ = (needle);                                               \
        cr_assert(h_ && strstr(h_, n_), "%s is \"%s\", which does not contain \"%s\"", #haystack,  \
                  h_ ? h_ : "(null)", n_);                                                         \
    } while (0)

/* ---- deterministic data --------------------------------------------------- */

static inline uint64_t splitmix64(uint64_t *state) {
    uint64_t z = (*state += UINT64_C(0x9E3779B97F4A7C15));
    z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
    return z ^ (z >> 31);
}

/* random_bytes fills a new malloc'd buffer with n bytes that do not compress. */
static inline uint8_t *random_bytes(size_t n, uint64_t seed) {
    uint8_t *p = malloc(n ? n : 1);
    cr_assert(p);
    for (size_t i = 0; i < n; i++) {
        if (i % 8 == 0) {
            uint64_t r = splitmix64(&seed);
            memcpy(p + i, &r, n - i < 8 ? n - i : 8);
        }
    }
    return p;
}

/* text_bytes fills a new malloc'd buffer with n bytes that compress well. */
static inline uint8_t *text_bytes(size_t n, uint64_t seed) {
    static const char *words[] = {"runtime.mallocgc ", "main.handler ", "net/http.(*conn).serve ",
                                  "sync.(*Mutex).Lock ", "encoding/json.Marshal ", "\n"};
    uint8_t *p = malloc(n ? n : 1);
    cr_assert(p);
    size_t i = 0;
    while (i < n) {
        const char *w = words[splitmix64(&seed) % (sizeof words / sizeof words[0])];
        size_t k = strlen(w);
        if (k > n - i)
            k = n - i;
        memcpy(p + i, w, k);
        i += k;
    }
    return p;
}

/* ---- gzip ------------------------------------------------------------------ */

/* gzip_of returns in, gzipped by the core (asserts that this works). */
static inline pprofio_bytes gzip_of(const void *in, size_t n) {
    pprofio_bytes out = {0};
    int rc = pprofio_gzip_bytes(in, n, &out);
    cr_assert_eq(rc, PPROFIO_OK, "pprofio_gzip_bytes: %s", pprofio_strstatus(rc));
    return out;
}

/* gunzip_equals says whether gz inflates to exactly want[0:n]. */
static inline int gunzip_equals(const void *gz, size_t gz_len, const void *want, size_t n) {
    pprofio_bytes out = {0};
    int rc = pprofio_gunzip_bytes(gz, gz_len, &out);
    int same = rc == PPROFIO_OK && out.len == n && (n == 0 || memcmp(out.p, want, n) == 0);
    pprofio_bytes_free(&out);
    return same;
}

/* ---- files ------------------------------------------------------------------ */

static inline int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
    (void)st;
    (void)flag;
    (void)ftw;
    remove(path);
    return 0;
}

/*
 * The scratch folders of the running test, kept so that scratch_cleanup
 * (every suite's .fini) removes them even when a failed assertion ended the
 * test before its own scratch_remove.
 */
static char scratch_live[16][4096];

/* scratch_dir makes a new empty folder for one test; free with scratch_remove. */
static inline char *scratch_dir(void) {
    const char *base = getenv("TMPDIR");
    char tmpl[4096];
    snprintf(tmpl, sizeof tmpl, "%s/pprofio-ctest-XXXXXX", base && *base ? base : "/tmp");
    cr_assert(mkdtemp(tmpl), "mkdtemp %s: %s", tmpl, strerror(errno));
    for (size_t i = 0; i < sizeof scratch_live / sizeof scratch_live[0]; i++) {
        if (!scratch_live[i][0]) {
            memcpy(scratch_live[i], tmpl, sizeof tmpl);
            break;
        }
    }
    char *d = strdup(tmpl);
    cr_assert(d);
    return d;
}

/* scratch_remove deletes dir and everything in it, and frees the name. */
static inline void scratch_remove(char *dir) {
    if (!dir)
        return;
    nftw(dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
    for (size_t i = 0; i < sizeof scratch_live / sizeof scratch_live[0]; i++)
        if (!strcmp(scratch_live[i], dir))
            scratch_live[i][0] = '\0';
    free(dir);
}

/* scratch_cleanup removes what a failed test left; use it as a suite's .fini. */
static inline void scratch_cleanup(void) {
    for (size_t i = 0; i < sizeof scratch_live / sizeof scratch_live[0]; i++) {
        if (scratch_live[i][0])
            nftw(scratch_live[i], remove_entry, 16, FTW_DEPTH | FTW_PHYS);
        scratch_live[i][0] = '\0';
    }
}

/* path_join returns "a/b" in a new malloc'd string. */
static inline char *path_join(const char *a, const char *b) {
    size_t n = strlen(a) + strlen(b) + 2;
    char *p = malloc(n);
    cr_assert(p);
    snprintf(p, n, "%s/%s", a, b);
    return p;
}

/* read_file returns a file's bytes in a new malloc'd buffer, or NULL. */
static inline uint8_t *read_file(const char *path, size_t *len) {
    *len = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return NULL;
    size_t cap = 65536, n = 0;
    uint8_t *p = malloc(cap);
    for (;;) {
        if (n == cap) {
            cap *= 2;
            p = realloc(p, cap);
        }
        ssize_t r = read(fd, p + n, cap - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        n += (size_t)r;
    }
    close(fd);
    *len = n;
    return p;
}

static inline void write_file(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    cr_assert(f, "create %s: %s", path, strerror(errno));
    fputs(text, f);
    fclose(f);
}

/*
 * count_entries counts the names in dir that end in suffix (NULL: any name)
 * or, with prefix, that start with it. A missing dir has none.
 */
static inline int count_entries(const char *dir, const char *prefix, const char *suffix) {
    DIR *d = opendir(dir);
    if (!d)
        return 0;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        size_t len = strlen(e->d_name);
        if (prefix && strncmp(e->d_name, prefix, strlen(prefix)) != 0)
            continue;
        if (suffix && (len < strlen(suffix) || strcmp(e->d_name + len - strlen(suffix), suffix) != 0))
            continue;
        n++;
    }
    closedir(d);
    return n;
}

static inline int mode_of(const char *path) {
    struct stat st;
    cr_assert_eq(stat(path, &st), 0, "stat %s: %s", path, strerror(errno));
    return (int)(st.st_mode & 07777);
}

#endif
