/*
 * test_alloc.c: every out-of-memory path (csrc/alloc.h).
 *
 * Each test runs one operation again and again, for n = 0, 1, 2, ..., with
 * pprofio_alloc_fail_after(n) making the allocation after the first n fail,
 * until a run makes no more than n allocations and so meets no failure. Every
 * run must end in success or in the error that the failed step owes (never a
 * crash), leave nothing half-done behind, and leak nothing: LTest asks
 * LeakSanitizer at the end, and a leak from any run is still there to find.
 */
#include "../../csrc/pyroscope.h"
#include "../../csrc/store.h"
#include "../../csrc/sysio.h"
#include "collector.h"

#define MAX_RUNS 2000
#define T0 (INT64_C(1795988477) * SEC)

TestSuite(alloc, .timeout = HANG_GUARD_S, .fini = scratch_cleanup);

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

static void expect_ok_or_nomem(int rc, long n, const char *what) {
    cr_assert(rc == PPROFIO_OK || rc == PPROFIO_ERR_NOMEM, "%s with allocation %ld failing: %s", what, n,
              pprofio_strstatus(rc));
}

LTest(alloc, fail_after_fails_exactly_the_allocation_after_n_then_recovers) {
    pprofio_alloc_fail_after(2);
    void *a = pprofio_malloc(8), *b = pprofio_calloc(1, 8), *c = pprofio_malloc(8), *d = pprofio_realloc(NULL, 8);
    pprofio_alloc_fail_after(-1);
    cr_assert(a && b && !c && d, "want ok, ok, fail, ok: %p %p %p %p", a, b, c, d);
    pprofio_alloc_fail_after(0);
    cr_assert_null(pprofio_strdup("x"));
    char *e = pprofio_strdup("x");
    cr_assert_str_eq(e, "x");
    pprofio_free(a);
    pprofio_free(b);
    pprofio_free(d);
    pprofio_free(e);
    pprofio_free(NULL);
}

/*
 * agent_new_at_every_failure runs pprofio_agent_new with allocation n failing,
 * for n = 0, 1, ..., until a run meets no failure, and returns that n. A run
 * that fails must leave *out unset, and check judges its status and error.
 */
static long agent_new_at_every_failure(const pprofio_config *cfg, void (*check)(int rc, const pprofio_error *err)) {
    for (long n = 0;; n++) {
        cr_assert_lt(n, MAX_RUNS);
        pprofio_agent *a = (pprofio_agent *)cfg;
        pprofio_error err = {0};
        arm(n);
        int rc = pprofio_agent_new(cfg, &a, &err);
        int failed = disarm(n);
        if (!failed) {
            assert_status(rc, PPROFIO_OK);
            pprofio_agent_free(a);
            return n;
        }
        if (rc == PPROFIO_OK) {
            pprofio_agent_free(a);
            continue;
        }
        check(rc, &err);
        cr_assert_null(a, "a failed agent_new left *out set");
    }
}

/* expect_nomem: the failure is reported as out of memory, in the status and the error. */
static void expect_nomem(int rc, const pprofio_error *err) {
    assert_status(rc, PPROFIO_ERR_NOMEM);
    assert_i64(err->code, PPROFIO_ERR_NOMEM);
    assert_contains(err->msg, "memory");
}

/* expect_failed: the run reports a failure, whichever status it is. */
static void expect_failed(int rc, const pprofio_error *err) {
    (void)err;
    cr_assert_neq(rc, PPROFIO_OK);
}

LTest(alloc, agent_new_fails_cleanly_at_every_allocation) {
    pprofio_config cfg = {
        .service_name = "checkout",
        .output_dir = "/tmp/pprofio-never-written",
        .period_ns = 60 * SEC,
        .cpu_duration_ns = 10 * SEC,
        .max_buffer_bytes = 8 * (int64_t)MiB,
        .profile_types = PPROFIO_TYPE_BIT(PPROFIO_PROFILE_CPU) | PPROFIO_TYPE_BIT(PPROFIO_PROFILE_HEAP),
        .jitter_seed = 1,
    };
    long n = agent_new_at_every_failure(&cfg, expect_nomem);
    cr_assert_geq(n, 3, "agent_new allocates the agent and two strings, but only %ld allocations were seen", n);
}

/* With both destinations and a spool, each destination's queue and client fail as cleanly. */
LTest(alloc, agent_new_with_ingest_and_pyroscope_fails_cleanly_at_every_allocation) {
    char *spool = scratch_dir();
    pprofio_config cfg = {
        .service_name = "checkout",
        .ingest_url = "https://127.0.0.1:1",
        .api_key = "k",
        .pyroscope_url = "https://127.0.0.1:2/prefix",
        .pyroscope_user = "123",
        .pyroscope_password = "pw",
        .pyroscope_tenant_id = "team-a",
        .spool_dir = spool,
        .max_spool_bytes = 8 * (int64_t)MiB,
        .connect_timeout_ns = SEC,
        .request_timeout_ns = SEC,
        .source = {.service = "checkout", .instance_id = "0123456789abcdef0123456789abcdef"},
        .period_ns = 60 * SEC,
        .cpu_duration_ns = 10 * SEC,
        .max_buffer_bytes = 8 * (int64_t)MiB,
        .profile_types = PPROFIO_TYPE_BIT(PPROFIO_PROFILE_CPU),
        .jitter_seed = 1,
    };
    long n = agent_new_at_every_failure(&cfg, expect_failed);
    cr_assert_geq(n, 10, "two destinations allocate more than %ld times", n);
    scratch_remove(spool);
}

/* ---- the whole agent ------------------------------------------------------ */

static pprofio_sim_clock sim;
static collector col;

typedef struct {
    int new_rc, close_rc;
    pprofio_error close_err;
    pprofio_stats st;
} agent_run;

/* run_agent runs two cycles and a stop, as the Go side would, and cleans up. */
static void run_agent(const char *root, agent_run *r) {
    pprofio_sim_clock_init(&sim, T0);
    pprofio_config cfg = {
        .service_name = "checkout",
        .output_dir = root,
        .period_ns = 60 * SEC,
        .cpu_duration_ns = 10 * SEC,
        .max_buffer_bytes = 8 * (int64_t)MiB,
        .profile_types = PPROFIO_TYPE_BIT(PPROFIO_PROFILE_CPU) | PPROFIO_TYPE_BIT(PPROFIO_PROFILE_HEAP),
        .jitter_seed = 1,
        .clock = &sim.base,
    };
    pprofio_agent *a = NULL;
    memset(r, 0, sizeof *r);
    r->new_rc = pprofio_agent_new(&cfg, &a, NULL);
    if (r->new_rc != PPROFIO_OK) {
        cr_assert_null(a);
        return;
    }
    collector_reset(&col, a);
    pprofio_error err = {0};
    int rc = pprofio_agent_start(a, &err);
    cr_assert_eq(rc, PPROFIO_OK, "start: %s", err.msg);
    collector_run(&col);
    r->close_rc = pprofio_agent_close(a, &r->close_err);
    pprofio_agent_stats(a, &r->st);
    pprofio_agent_free(a);
}

LTest(alloc, the_agent_survives_a_failure_at_every_allocation_of_a_whole_run) {
    collector_init(&col, &sim, 1); /* cycles 0 and 1, then the partial cycle 2: six profiles */
    long n;
    int runs_with_losses = 0;
    for (n = 0;; n++) {
        cr_assert_lt(n, MAX_RUNS);
        char *dir = scratch_dir();
        char *root = path_join(dir, "out");
        agent_run r;
        arm(n);
        run_agent(root, &r);
        int failed = disarm(n);

        char *cpu_dir = path_join(root, "checkout/cpu"), *heap_dir = path_join(root, "checkout/heap");
        int files = count_entries(cpu_dir, NULL, ".pb.gz") + count_entries(heap_dir, NULL, ".pb.gz");
        int temps = count_entries(cpu_dir, ".tmp-", NULL) + count_entries(heap_dir, ".tmp-", NULL);
        free(cpu_dir);
        free(heap_dir);
        free(root);
        scratch_remove(dir);

        assert_i64(temps, 0);
        if (!failed) {
            assert_status(r.new_rc, PPROFIO_OK);
            assert_status(r.close_rc, PPROFIO_OK);
            assert_i64(r.st.profiles_collected, 6);
            assert_i64(r.st.profiles_written, 6);
            assert_i64(files, 6);
            break;
        }
        expect_ok_or_nomem(r.new_rc, n, "agent_new");
        if (r.new_rc != PPROFIO_OK)
            continue;
        cr_assert(r.close_rc == PPROFIO_OK || r.close_rc == PPROFIO_ERR_NOMEM || r.close_rc == PPROFIO_ERR_IO,
                  "close with allocation %ld failing: %s", n, pprofio_strstatus(r.close_rc));
        cr_assert_eq(r.close_err.code, r.close_rc, "close returned %d but its error says %d (%s)", r.close_rc,
                     r.close_err.code, r.close_err.msg);
        for (int t = PPROFIO_PROFILE_CPU; t <= PPROFIO_PROFILE_HEAP; t++) {
            for (int k = 0; k <= 2; k++) {
                collected_profile *p = collector_profile(&col, t, k);
                cr_assert(p->begun, "no %s profile was asked for in cycle %d", pprofio_profile_name(t), k);
                expect_ok_or_nomem(p->begin_rc, n, "profile_begin");
                expect_ok_or_nomem(p->write_rc, n, "profile_write");
                expect_ok_or_nomem(p->finish_rc, n, "profile_finish");
            }
        }
        /* What was written is on disk; nothing was kept twice or lost uncounted. */
        assert_i64(files, r.st.profiles_written);
        assert_i64(r.st.profiles_written + r.st.profiles_dropped_write + r.st.profiles_dropped_memory +
                       r.st.profiles_skipped,
                   6);
        assert_i64(r.st.buffered_bytes, 0);
        runs_with_losses += r.st.profiles_written < 6;
    }
    cr_assert_gt(runs_with_losses, 10, "only %d runs lost a profile to a failed allocation", runs_with_losses);
    cr_log_info("the agent survived %ld failing allocations", n);
    collector_free(&col);
}

/* ---- gzip ------------------------------------------------------------------ */

LTest(alloc, pyroscope_split_fails_cleanly_at_every_allocation) {
    pprofio_source src = {.service = "checkout"};
    pprofio_pyroscope_profile ps[3];
    uint8_t *bytes[3];
    for (int i = 0; i < 3; i++) {
        bytes[i] = text_bytes(2 * KiB, (uint64_t)i + 1);
        ps[i] = (pprofio_pyroscope_profile){PPROFIO_PROFILE_HEAP, SEC, 2 * SEC, bytes[i], 2 * KiB};
    }
    pprofio_bytes raw = {0}, gz = {0};
    assert_status(pprofio_pyroscope_encode(&src, ps, 3, &raw, NULL), PPROFIO_OK);
    assert_status(pprofio_gzip_bytes(raw.p, raw.len, &gz), PPROFIO_OK);
    long n;
    for (n = 0;; n++) {
        cr_assert_lt(n, MAX_RUNS);
        pprofio_bytes first = {0}, second = {0};
        size_t n1 = 0, n2 = 0;
        arm(n);
        int rc = pprofio_pyroscope_split(gz.p, gz.len, &first, &second, &n1, &n2, NULL);
        int failed = disarm(n);
        if (!failed)
            assert_status(rc, PPROFIO_OK);
        expect_ok_or_nomem(rc, n, "pyroscope_split");
        if (rc == PPROFIO_OK)
            cr_assert(n1 == 1 && n2 == 2 && first.len > 0 && second.len > 0, "run %ld: %zu + %zu series", n, n1, n2);
        else
            cr_assert(first.len == 0 && second.len == 0, "run %ld: a failed split left a part", n);
        pprofio_bytes_free(&first);
        pprofio_bytes_free(&second);
        if (!failed)
            break;
    }
    cr_assert_gt(n, 5);
    pprofio_bytes_free(&raw);
    pprofio_bytes_free(&gz);
    for (int i = 0; i < 3; i++)
        free(bytes[i]);
}

LTest(alloc, gzip_bytes_fails_cleanly_at_every_allocation) {
    const size_t size = 300 * KiB;
    uint8_t *in = text_bytes(size, 1);
    long n;
    for (n = 0;; n++) {
        cr_assert_lt(n, MAX_RUNS);
        pprofio_bytes out = {0};
        arm(n);
        int rc = pprofio_gzip_bytes(in, size, &out);
        int failed = disarm(n);
        if (!failed)
            assert_status(rc, PPROFIO_OK);
        expect_ok_or_nomem(rc, n, "gzip_bytes");
        if (rc == PPROFIO_OK)
            cr_assert(gunzip_equals(out.p, out.len, in, size), "run %ld: the gzip does not round trip", n);
        pprofio_bytes_free(&out);
        if (!failed)
            break;
    }
    cr_assert_gt(n, 5);
    free(in);
}

LTest(alloc, gunzip_bytes_fails_cleanly_at_every_allocation) {
    const size_t size = 2 * MiB;
    uint8_t *in = text_bytes(size, 2);
    pprofio_bytes gz = gzip_of(in, size);
    long n;
    for (n = 0;; n++) {
        cr_assert_lt(n, MAX_RUNS);
        pprofio_bytes out = {0};
        arm(n);
        int rc = pprofio_gunzip_bytes(gz.p, gz.len, &out);
        int failed = disarm(n);
        if (!failed)
            assert_status(rc, PPROFIO_OK);
        expect_ok_or_nomem(rc, n, "gunzip_bytes");
        if (rc == PPROFIO_OK)
            cr_assert(out.len == size && memcmp(out.p, in, size) == 0, "run %ld: different bytes", n);
        pprofio_bytes_free(&out);
        if (!failed)
            break;
    }
    cr_assert_gt(n, 5);
    pprofio_bytes_free(&gz);
    free(in);
}

typedef struct {
    int64_t reserved;
} ledger;

static int ledger_reserve(void *ctx, int64_t delta) {
    ((ledger *)ctx)->reserved += delta;
    return 0;
}

LTest(alloc, a_failed_growth_gives_its_reservation_back) {
    const size_t size = 1 * MiB;
    uint8_t *in = text_bytes(size, 3);
    pprofio_bytes gz = gzip_of(in, size);
    long n;
    for (n = 0;; n++) {
        cr_assert_lt(n, MAX_RUNS);
        pprofio_bytes out = {0};
        ledger l = {0};
        pprofio_gunzip *g = NULL;
        arm(n);
        int rc = pprofio_gunzip_new(&g);
        if (rc == PPROFIO_OK) {
            rc = pprofio_gunzip_feed(g, gz.p, gz.len, &out, ledger_reserve, &l);
            if (rc == PPROFIO_OK)
                rc = pprofio_gunzip_finish(g);
        } else {
            cr_assert_null(g);
        }
        int failed = disarm(n);
        expect_ok_or_nomem(rc, n, "gunzip_feed");
        assert_i64(l.reserved, out.cap);
        pprofio_gunzip_free(g);
        pprofio_bytes_free(&out);
        if (!failed) {
            assert_status(rc, PPROFIO_OK);
            break;
        }
    }
    pprofio_bytes_free(&gz);
    free(in);
}

LTest(alloc, gzip_fd_reports_a_failed_allocation_as_enomem) {
    uint8_t *in = text_bytes(100 * KiB, 4);
    long n;
    for (n = 0;; n++) {
        cr_assert_lt(n, MAX_RUNS);
        int fd = open("/dev/null", O_WRONLY);
        arm(n);
        int rc = pprofio_gzip_fd(fd, in, 100 * KiB, NULL);
        int failed = disarm(n);
        close(fd);
        cr_assert(rc == 0 || rc == -ENOMEM, "run %ld: %d", n, rc);
        if (!failed) {
            assert_i64(rc, 0);
            break;
        }
    }
    cr_assert_gt(n, 1);
    free(in);
}

/* ---- the store ---------------------------------------------------------------- */

LTest(alloc, store_write_fails_cleanly_at_every_allocation_and_leaves_no_file) {
    const size_t size = 100 * KiB;
    uint8_t *in = text_bytes(size, 5);
    long n;
    for (n = 0;; n++) {
        cr_assert_lt(n, MAX_RUNS);
        char *dir = scratch_dir();
        char *root = path_join(dir, "out");
        char *type_dir = path_join(root, "svc/heap");
        char *path = NULL;
        size_t written = 0;
        pprofio_error err = {0};
        arm(n);
        int rc = pprofio_store_write(root, "svc", PPROFIO_PROFILE_HEAP, T0, T0 + 60 * SEC, in, size, &written, &path,
                                     &err);
        int failed = disarm(n);
        expect_ok_or_nomem(rc, n, "store_write");
        if (rc == PPROFIO_OK) {
            size_t len;
            uint8_t *file = read_file(path, &len);
            cr_assert(file && gunzip_equals(file, len, in, size), "run %ld: the file is not the profile", n);
            assert_i64(written, len);
            assert_i64(count_entries(type_dir, NULL, NULL), 1);
            free(file);
            pprofio_free(path);
        } else {
            cr_assert_eq(err.code, rc, "run %ld: store_write returned %d (%s) but its error says %d: %s", n, rc,
                         pprofio_strstatus(rc), err.code, err.msg);
            cr_assert_null(path);
            assert_i64(written, 0);
            assert_i64(count_entries(type_dir, NULL, NULL), 0);
        }
        free(type_dir);
        free(root);
        scratch_remove(dir);
        if (!failed) {
            assert_status(rc, PPROFIO_OK);
            break;
        }
    }
    cr_assert_gt(n, 5);
    free(in);
}

LTest(alloc, mkdirs_fails_cleanly_when_it_cannot_allocate) {
    char *dir = scratch_dir();
    char *deep = path_join(dir, "a/b/c");
    long n;
    for (n = 0;; n++) {
        cr_assert_lt(n, MAX_RUNS);
        arm(n);
        int rc = pprofio_mkdirs(deep, 0700);
        int failed = disarm(n);
        if (!failed) {
            assert_i64(rc, 0);
            break;
        }
        assert_i64(rc, -ENOMEM);
        assert_i64(count_entries(dir, NULL, NULL), 0);
    }
    assert_i64(n, 1);
    struct stat st;
    cr_assert_eq(stat(deep, &st), 0);
    free(deep);
    scratch_remove(dir);
}
