/*
 * test_ledger.c: the one place the core tells what happened (csrc/ledger.h):
 * a loss recorded once is in Stats and in the next batch's data_dropped
 * event alike; events wait for the batch of their cycle; the stats table
 * the Go binding reads covers pprofio_stats whole.
 */
#include "../../csrc/ledger.h"
#include "helpers.h"

#define assert_str(got, want) cr_assert_str_eq(or_null(got), want)

static const char *or_null(const char *s) { return s ? s : "(null)"; }

TestSuite(ledger, .timeout = HANG_GUARD_S, .fini = scratch_cleanup);

static pprofio_sim_clock the_clock;

static pprofio_ledger *new_ledger(int events_on) {
    pprofio_sim_clock_init(&the_clock, INT64_C(1795988477) * SEC);
    pprofio_ledger *l = NULL;
    assert_status(pprofio_ledger_new(&the_clock.base, events_on, &l), PPROFIO_OK);
    return l;
}

static const char *attr(const pprofio_event *ev, const char *key) {
    for (size_t i = 0; i < ev->n_attrs; i++)
        if (strcmp(ev->keys[i], key) == 0)
            return ev->values[i];
    return NULL;
}

LTest(ledger, one_call_counts_a_loss_in_stats_and_in_the_next_data_dropped_event) {
    pprofio_ledger *l = new_ledger(1);
    pprofio_ledger_lose(l, PPROFIO_LOSS_SPOOL, 7, 2, 9000);
    pprofio_ledger_lose(l, PPROFIO_LOSS_SPOOL, 1, 1, 1000);
    pprofio_ledger_lose(l, PPROFIO_LOSS_INVALID, 1, 0, 300);
    pprofio_stats s;
    pprofio_ledger_read(l, &s);
    assert_i64(s.batches_dropped_spool, 3);
    assert_i64(s.profiles_dropped_upload, 8);
    assert_i64(s.profiles_dropped_invalid, 1);
    assert_i64(s.bytes_dropped, 300); /* uncompressed profile bytes only */
    pprofio_event ev[PPROFIO_LEDGER_MAX_EVENTS];
    size_t n = pprofio_ledger_take_events(l, 0, ev);
    assert_i64(n, 2);
    for (size_t i = 0; i < n; i++)
        assert_str(ev[i].kind, "data_dropped");
    assert_str(attr(&ev[0], "reason"), "invalid_profile");
    assert_str(attr(&ev[1], "reason"), "spool_bound");
    assert_str(attr(&ev[1], "profiles"), "8");
    assert_str(attr(&ev[1], "batches"), "3");
    assert_str(attr(&ev[1], "bytes"), "10000");
    assert_i64(pprofio_ledger_take_events(l, 1, ev), 0); /* reported once */
    assert_i64(pprofio_ledger_pending(l), 0);
    pprofio_ledger_free(l);
}

LTest(ledger, an_event_of_a_later_cycle_waits_for_the_batch_of_its_cycle) {
    pprofio_ledger *l = new_ledger(1);
    pprofio_event ev;
    pprofio_event_init(&ev, "profile_skipped", 1, "cycle 5");
    pprofio_ledger_event_of(l, &ev, 5);
    pprofio_event_init(&ev, "goroutine_leak", 2, "now");
    pprofio_ledger_event(l, &ev);
    assert_i64(pprofio_ledger_pending(l), 1);
    pprofio_event out[PPROFIO_LEDGER_MAX_EVENTS];
    assert_i64(pprofio_ledger_take_events(l, 4, out), 1);
    assert_str(out[0].kind, "goroutine_leak");
    assert_i64(pprofio_ledger_take_events(l, 5, out), 1);
    assert_str(out[0].kind, "profile_skipped");
    pprofio_ledger_free(l);
}

LTest(ledger, without_uploads_no_event_is_kept_and_a_full_list_is_counted) {
    pprofio_ledger *off = new_ledger(0);
    pprofio_event ev, out[PPROFIO_LEDGER_MAX_EVENTS];
    pprofio_event_init(&ev, "profile_skipped", 1, "x");
    pprofio_ledger_event(off, &ev);
    assert_i64(pprofio_ledger_take_events(off, INT64_MAX, out), 0);
    pprofio_ledger_free(off);
    pprofio_ledger *l = new_ledger(1);
    for (int i = 0; i < PPROFIO_LEDGER_MAX_EVENTS + 3; i++)
        pprofio_ledger_event(l, &ev);
    pprofio_stats s;
    pprofio_ledger_read(l, &s);
    assert_i64(s.events_dropped, 3);
    assert_i64(pprofio_ledger_take_events(l, INT64_MAX, out), PPROFIO_LEDGER_MAX_EVENTS);
    pprofio_ledger_free(l);
}

LTest(ledger, log_lines_wait_in_order_and_a_full_ring_is_counted) {
    pprofio_ledger *l = new_ledger(0);
    for (int i = 0; i < 40; i++)
        pprofio_ledger_log(l, PPROFIO_LOG_WARN, "line %d", i);
    int level;
    char msg[PPROFIO_LOG_LINE];
    for (int i = 0; i < 32; i++) {
        cr_assert(pprofio_ledger_take_log(l, &level, msg));
        char want[32];
        snprintf(want, sizeof want, "line %d", i);
        assert_str(msg, want);
        assert_i64(level, PPROFIO_LOG_WARN);
    }
    cr_assert_not(pprofio_ledger_take_log(l, &level, msg));
    pprofio_stats s;
    pprofio_ledger_read(l, &s);
    assert_i64(s.logs_dropped, 8);
    pprofio_ledger_free(l);
}

/* The Go binding copies pprofio_stats by this table: it must cover every byte of it, once. */
LTest(ledger, the_stats_table_covers_pprofio_stats_whole) {
    size_t n = 0;
    const pprofio_stat_field *f = pprofio_stats_fields(&n);
    assert_i64(n * sizeof(uint64_t), sizeof(pprofio_stats));
    for (size_t i = 0; i < n; i++) {
        assert_i64(f[i].offset, i * sizeof(uint64_t));
        for (size_t j = 0; j < i; j++)
            cr_assert(strcmp(f[i].name, f[j].name) != 0, "%s twice", f[i].name);
    }
    pprofio_stats s;
    memset(&s, 0, sizeof s);
    s.uploads_off = -1;
    int found = 0;
    for (size_t i = 0; i < n; i++)
        if (strcmp(f[i].name, "uploads_off") == 0) {
            cr_assert(f[i].is_signed);
            assert_i64(*(int64_t *)((char *)&s + f[i].offset), -1);
            found = 1;
        }
    cr_assert(found);
}
