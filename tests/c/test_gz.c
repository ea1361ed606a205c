/*
 * test_gz.c: gzip in and out (csrc/gz.h). The core inflates what
 * runtime/pprof writes as it streams in, in pieces of any size, and
 * must refuse bytes that are not one or more whole gzip members.
 */
#include <pthread.h>
#include <signal.h>

#include "../../csrc/gz.h"
#include "helpers.h"

TestSuite(gz, .timeout = HANG_GUARD_S, .fini = scratch_cleanup);

static const size_t sizes[] = {0, 1, 64 * KiB, 3 * MiB + 17};

static void expect_round_trip(const uint8_t *in, size_t n, const char *what) {
    pprofio_bytes gz = {0};
    assert_status(pprofio_gzip_bytes(in, n, &gz), PPROFIO_OK);
    cr_assert_geq(gz.len, 18, "%s, %zu bytes: a gzip member has a 10-byte header and an 8-byte trailer", what, n);
    cr_assert(gz.p[0] == 0x1f && gz.p[1] == 0x8b && gz.p[2] == 8, "%s: no gzip magic", what);
    pprofio_bytes out = {0};
    assert_status(pprofio_gunzip_bytes(gz.p, gz.len, &out), PPROFIO_OK);
    assert_i64(out.len, n);
    cr_assert(n == 0 || memcmp(out.p, in, n) == 0, "%s, %zu bytes: the round trip changed the bytes", what, n);
    pprofio_bytes_free(&out);
    pprofio_bytes_free(&gz);
}

LTest(gz, random_bytes_of_every_size_survive_a_round_trip) {
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        uint8_t *in = random_bytes(sizes[i], 100 + i);
        expect_round_trip(in, sizes[i], "random");
        free(in);
    }
}

LTest(gz, compressible_bytes_of_every_size_survive_a_round_trip_and_shrink) {
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        uint8_t *in = text_bytes(sizes[i], 200 + i);
        expect_round_trip(in, sizes[i], "text");
        if (sizes[i] >= 64 * KiB) {
            pprofio_bytes gz = {0};
            assert_status(pprofio_gzip_bytes(in, sizes[i], &gz), PPROFIO_OK);
            cr_assert_lt(gz.len, sizes[i] / 3, "%zu text bytes deflated to %zu", sizes[i], gz.len);
            pprofio_bytes_free(&gz);
        }
        free(in);
    }
}

/* gunzip_in_pieces feeds gz to a streaming gunzip `piece` bytes at a time. */
static void gunzip_in_pieces(const pprofio_bytes *gz, size_t piece, pprofio_bytes *out) {
    pprofio_gunzip *g;
    assert_status(pprofio_gunzip_new(&g), PPROFIO_OK);
    for (size_t off = 0; off < gz->len; off += piece) {
        size_t k = gz->len - off < piece ? gz->len - off : piece;
        int rc = pprofio_gunzip_feed(g, gz->p + off, k, out, NULL, NULL);
        cr_assert_eq(rc, PPROFIO_OK, "feeding %zu bytes at %zu of %zu: %s", k, off, gz->len, pprofio_strstatus(rc));
    }
    assert_status(pprofio_gunzip_finish(g), PPROFIO_OK);
    pprofio_gunzip_free(g);
}

LTest(gz, streaming_gunzip_in_one_byte_pieces_gives_the_same_bytes) {
    const size_t n = 300 * KiB;
    uint8_t *in = text_bytes(n, 7);
    uint8_t *noise = random_bytes(64 * KiB, 8);
    memcpy(in + 100 * KiB, noise, 64 * KiB); /* some stored blocks among the compressed ones */
    pprofio_bytes gz = gzip_of(in, n), out = {0};
    gunzip_in_pieces(&gz, 1, &out);
    assert_i64(out.len, n);
    cr_assert(memcmp(out.p, in, n) == 0);
    pprofio_bytes_free(&out);
    pprofio_bytes_free(&gz);
    free(noise);
    free(in);
}

LTest(gz, streaming_gunzip_in_odd_sized_pieces_gives_the_same_bytes) {
    const size_t n = 3 * MiB + 5;
    uint8_t *in = random_bytes(n, 9);
    memset(in + MiB, 'a', MiB); /* and a long compressible stretch */
    pprofio_bytes gz = gzip_of(in, n);
    const size_t pieces[] = {3, 7, 4093, 65537, 1000003, SIZE_MAX / 4};
    for (size_t i = 0; i < sizeof pieces / sizeof pieces[0]; i++) {
        pprofio_bytes out = {0};
        gunzip_in_pieces(&gz, pieces[i], &out);
        cr_assert_eq(out.len, n, "pieces of %zu: %zu bytes out", pieces[i], out.len);
        cr_assert(memcmp(out.p, in, n) == 0, "pieces of %zu: different bytes", pieces[i]);
        pprofio_bytes_free(&out);
    }
    pprofio_bytes_free(&gz);
    free(in);
}

LTest(gz, a_truncated_stream_fails_at_finish) {
    uint8_t *in = text_bytes(100 * KiB, 11);
    pprofio_bytes gz = gzip_of(in, 100 * KiB);
    const size_t cuts[] = {0, 1, 9, 10, gz.len / 2, gz.len - 8, gz.len - 4, gz.len - 1};
    for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
        pprofio_gunzip *g;
        pprofio_bytes out = {0};
        assert_status(pprofio_gunzip_new(&g), PPROFIO_OK);
        int rc = pprofio_gunzip_feed(g, gz.p, cuts[i], &out, NULL, NULL);
        cr_assert_eq(rc, PPROFIO_OK, "a prefix of %zu bytes is not wrong yet: %s", cuts[i], pprofio_strstatus(rc));
        rc = pprofio_gunzip_finish(g);
        cr_assert_eq(rc, PPROFIO_ERR_FORMAT, "ending after %zu of %zu bytes: finish says %s", cuts[i], gz.len,
                     pprofio_strstatus(rc));
        pprofio_gunzip_free(g);
        pprofio_bytes_free(&out);

        out = (pprofio_bytes){0};
        assert_status(pprofio_gunzip_bytes(gz.p, cuts[i], &out), PPROFIO_ERR_FORMAT);
        pprofio_bytes_free(&out);
    }
    /* A whole member followed by a cut-short one is just as incomplete. */
    pprofio_bytes two = {0}, out = {0};
    assert_status(pprofio_bytes_grow(&two, 2 * gz.len, NULL, NULL), PPROFIO_OK);
    memcpy(two.p, gz.p, gz.len);
    memcpy(two.p + gz.len, gz.p, gz.len - 1);
    assert_status(pprofio_gunzip_bytes(two.p, 2 * gz.len - 1, &out), PPROFIO_ERR_FORMAT);
    pprofio_bytes_free(&out);
    pprofio_bytes_free(&two);
    pprofio_bytes_free(&gz);
    free(in);
}

LTest(gz, bytes_that_are_not_gzip_are_a_format_error) {
    const char *texts[] = {"this is not gzip at all", "\x1f\x8b\x07garbage-method", "PK\x03\x04 a zip file"};
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
        pprofio_bytes out = {0};
        assert_status(pprofio_gunzip_bytes(texts[i], strlen(texts[i]), &out), PPROFIO_ERR_FORMAT);
        pprofio_bytes_free(&out);
    }
    uint8_t *noise = random_bytes(10000, 12);
    pprofio_bytes out = {0};
    assert_status(pprofio_gunzip_bytes(noise, 10000, &out), PPROFIO_ERR_FORMAT);
    pprofio_bytes_free(&out);
    free(noise);
}

LTest(gz, a_failed_stream_refuses_further_input) {
    pprofio_gunzip *g;
    pprofio_bytes out = {0};
    uint8_t byte = 0;
    pprofio_bytes gz = gzip_of(&byte, 1);
    assert_status(pprofio_gunzip_new(&g), PPROFIO_OK);
    assert_status(pprofio_gunzip_feed(g, "garbage!", 8, &out, NULL, NULL), PPROFIO_ERR_FORMAT);
    assert_status(pprofio_gunzip_feed(g, gz.p, gz.len, &out, NULL, NULL), PPROFIO_ERR_FORMAT);
    assert_status(pprofio_gunzip_finish(g), PPROFIO_ERR_FORMAT);
    pprofio_gunzip_free(g);
    pprofio_bytes_free(&out);
    pprofio_bytes_free(&gz);
}

LTest(gz, a_corrupted_checksum_is_a_format_error) {
    uint8_t *in = text_bytes(50 * KiB, 13);
    pprofio_bytes gz = gzip_of(in, 50 * KiB), out = {0};
    gz.p[gz.len - 8] ^= 0x01; /* the CRC-32 of the trailer */
    assert_status(pprofio_gunzip_bytes(gz.p, gz.len, &out), PPROFIO_ERR_FORMAT);
    pprofio_bytes_free(&out);
    gz.p[gz.len - 8] ^= 0x01;
    gz.p[gz.len - 1] ^= 0x01; /* the length of the trailer */
    assert_status(pprofio_gunzip_bytes(gz.p, gz.len, &out), PPROFIO_ERR_FORMAT);
    pprofio_bytes_free(&out);
    pprofio_bytes_free(&gz);
    free(in);
}

LTest(gz, trailing_garbage_after_a_member_is_a_format_error) {
    uint8_t *in = text_bytes(20 * KiB, 14);
    pprofio_bytes gz = gzip_of(in, 20 * KiB);
    const char *tails[] = {"junk", "\0\0\0\0\0\0\0\0", "\x1f"};
    const size_t tail_lens[] = {4, 8, 1};
    for (size_t i = 0; i < 3; i++) {
        pprofio_bytes buf = {0};
        assert_status(pprofio_bytes_grow(&buf, gz.len + tail_lens[i], NULL, NULL), PPROFIO_OK);
        memcpy(buf.p, gz.p, gz.len);
        memcpy(buf.p + gz.len, tails[i], tail_lens[i]);
        buf.len = gz.len + tail_lens[i];
        pprofio_bytes out = {0};
        int rc = pprofio_gunzip_bytes(buf.p, buf.len, &out);
        cr_assert_eq(rc, PPROFIO_ERR_FORMAT, "a member followed by %zu garbage byte(s): %s", tail_lens[i],
                     pprofio_strstatus(rc));
        pprofio_bytes_free(&out);
        pprofio_bytes_free(&buf);
    }
    pprofio_bytes_free(&gz);
    free(in);
}

LTest(gz, concatenated_members_inflate_one_after_the_other) {
    uint8_t *a = text_bytes(70 * KiB, 15), *b = random_bytes(33 * KiB, 16);
    pprofio_bytes ga = gzip_of(a, 70 * KiB), gb = gzip_of(b, 33 * KiB), empty = gzip_of("", 0);
    pprofio_bytes both = {0};
    assert_status(pprofio_bytes_grow(&both, ga.len + empty.len + gb.len, NULL, NULL), PPROFIO_OK);
    memcpy(both.p, ga.p, ga.len);
    memcpy(both.p + ga.len, empty.p, empty.len);
    memcpy(both.p + ga.len + empty.len, gb.p, gb.len);
    both.len = ga.len + empty.len + gb.len;

    for (size_t piece = 1; piece <= both.len; piece = piece * 7 + 3) {
        pprofio_bytes out = {0};
        gunzip_in_pieces(&both, piece, &out);
        cr_assert_eq(out.len, (size_t)(103 * KiB), "pieces of %zu: %zu bytes", piece, out.len);
        cr_assert(memcmp(out.p, a, 70 * KiB) == 0 && memcmp(out.p + 70 * KiB, b, 33 * KiB) == 0,
                  "pieces of %zu: the members' bytes are not a then b", piece);
        pprofio_bytes_free(&out);
    }
    pprofio_bytes_free(&both);
    pprofio_bytes_free(&ga);
    pprofio_bytes_free(&gb);
    pprofio_bytes_free(&empty);
    free(a);
    free(b);
}

/* ---- the reserve hook ------------------------------------------------------ */

typedef struct {
    int64_t allowed; /* total capacity the hook grants */
    int64_t reserved;
    int refusals;
} budget;

static int budget_reserve(void *ctx, int64_t delta) {
    budget *b = ctx;
    if (delta > 0 && b->reserved + delta > b->allowed) {
        b->refusals++;
        return -1;
    }
    b->reserved += delta;
    return 0;
}

LTest(gz, every_byte_of_output_capacity_is_reserved_first) {
    uint8_t *in = text_bytes(2 * MiB, 17);
    pprofio_bytes gz = gzip_of(in, 2 * MiB), out = {0};
    budget b = {INT64_MAX, 0, 0};
    pprofio_gunzip *g;
    assert_status(pprofio_gunzip_new(&g), PPROFIO_OK);
    for (size_t off = 0; off < gz.len; off += 1000) {
        size_t k = gz.len - off < 1000 ? gz.len - off : 1000;
        assert_status(pprofio_gunzip_feed(g, gz.p + off, k, &out, budget_reserve, &b), PPROFIO_OK);
        assert_i64(b.reserved, out.cap);
    }
    assert_status(pprofio_gunzip_finish(g), PPROFIO_OK);
    assert_i64(out.len, 2 * MiB);
    assert_i64(b.refusals, 0);
    pprofio_gunzip_free(g);
    pprofio_bytes_free(&out);
    pprofio_bytes_free(&gz);
    free(in);
}

LTest(gz, a_reserve_hook_that_refuses_growth_is_a_limit_error) {
    uint8_t *in = text_bytes(2 * MiB, 18);
    pprofio_bytes gz = gzip_of(in, 2 * MiB), out = {0};
    budget b = {256 * KiB, 0, 0};
    pprofio_gunzip *g;
    assert_status(pprofio_gunzip_new(&g), PPROFIO_OK);
    assert_status(pprofio_gunzip_feed(g, gz.p, gz.len, &out, budget_reserve, &b), PPROFIO_ERR_LIMIT);
    assert_i64(b.refusals, 1);
    cr_assert_leq(out.cap, 256 * KiB, "the buffer grew to %zu past what the hook granted", out.cap);
    assert_i64(b.reserved, out.cap);
    /* The stream stays failed, and says why: more input and finish both
     * report the limit, not a format error. */
    assert_status(pprofio_gunzip_feed(g, gz.p, 16, &out, budget_reserve, &b), PPROFIO_ERR_LIMIT);
    assert_status(pprofio_gunzip_finish(g), PPROFIO_ERR_LIMIT);
    pprofio_gunzip_free(g);
    pprofio_bytes_free(&out);
    pprofio_bytes_free(&gz);
    free(in);
}

LTest(gz, bytes_grow_asks_the_hook_before_growing_and_keeps_what_it_has_on_refusal) {
    pprofio_bytes buf = {0};
    budget b = {8192, 0, 0};
    assert_status(pprofio_bytes_grow(&buf, 100, budget_reserve, &b), PPROFIO_OK);
    cr_assert_geq(buf.cap, 100);
    assert_i64(b.reserved, buf.cap);
    memcpy(buf.p, "kept", 4);
    buf.len = 4;
    size_t cap = buf.cap;
    assert_status(pprofio_bytes_grow(&buf, 100000, budget_reserve, &b), PPROFIO_ERR_LIMIT);
    assert_i64(buf.cap, cap);
    assert_i64(b.reserved, cap);
    cr_assert(memcmp(buf.p, "kept", 4) == 0);
    assert_status(pprofio_bytes_grow(&buf, SIZE_MAX - 2, NULL, NULL), PPROFIO_ERR_LIMIT);
    pprofio_bytes_free(&buf);
    cr_assert_null(buf.p);
    assert_i64(buf.cap, 0);
    pprofio_bytes_free(NULL);
}

/* ---- to a file descriptor ------------------------------------------------- */

typedef struct {
    int fd;
    uint8_t *p;
    size_t len;
} drain;

static void *drain_main(void *arg) {
    drain *d = arg;
    size_t cap = 1 << 16;
    d->p = malloc(cap);
    for (;;) {
        if (d->len == cap)
            d->p = realloc(d->p, cap *= 2);
        ssize_t r = read(d->fd, d->p + d->len, cap - d->len);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        d->len += (size_t)r;
    }
    return NULL;
}

LTest(gz, gzip_fd_streams_one_member_into_a_pipe) {
    const size_t n = 3 * MiB;
    uint8_t *in = random_bytes(n, 19); /* more than a pipe holds: the writer must keep going */
    int fds[2];
    cr_assert_eq(pipe(fds), 0);
    drain d = {fds[0], NULL, 0};
    pthread_t t;
    cr_assert_eq(pthread_create(&t, NULL, drain_main, &d), 0);
    size_t written = 0;
    int rc = pprofio_gzip_fd(fds[1], in, n, &written);
    close(fds[1]);
    pthread_join(t, NULL);
    close(fds[0]);
    assert_i64(rc, 0);
    assert_i64(written, d.len);
    cr_assert(gunzip_equals(d.p, d.len, in, n), "the piped member does not inflate to the input");
    free(d.p);
    free(in);
}

LTest(gz, gzip_fd_writes_one_member_into_a_file) {
    char *dir = scratch_dir();
    char *path = path_join(dir, "out.gz");
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
    cr_assert_geq(fd, 0);
    uint8_t *in = text_bytes(500 * KiB, 20);
    size_t written = 0;
    assert_i64(pprofio_gzip_fd(fd, in, 500 * KiB, &written), 0);
    close(fd);
    size_t len;
    uint8_t *file = read_file(path, &len);
    assert_i64(written, len);
    cr_assert(gunzip_equals(file, len, in, 500 * KiB));
    fd = open(path, O_WRONLY | O_TRUNC);
    assert_i64(pprofio_gzip_fd(fd, "", 0, NULL), 0); /* and written may be NULL */
    close(fd);
    free(file);
    file = read_file(path, &len);
    cr_assert(gunzip_equals(file, len, "", 0));
    free(file);
    free(in);
    free(path);
    scratch_remove(dir);
}

LTest(gz, gzip_fd_reports_the_errno_of_a_failed_write) {
    signal(SIGPIPE, SIG_IGN);
    uint8_t *in = random_bytes(200 * KiB, 21);
    int fds[2];
    cr_assert_eq(pipe(fds), 0);
    close(fds[0]);
    size_t written = 99;
    assert_i64(pprofio_gzip_fd(fds[1], in, 200 * KiB, &written), -EPIPE);
    assert_i64(written, 0);
    close(fds[1]);

    int ro = open("/dev/null", O_RDONLY);
    assert_i64(pprofio_gzip_fd(ro, in, 200 * KiB, &written), -EBADF);
    close(ro);
    free(in);
}
