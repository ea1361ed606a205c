/*
 * test_scheduler.c: the collection timeline (csrc/scheduler.h), driven with
 * made-up times. Every event is checked exactly: its op, cycle, due time
 * and the window it belongs to, and which events come out together.
 */
#include "../../csrc/scheduler.h"
#include "helpers.h"

#define T0 (INT64_C(1795988477) * SEC) /* 2026-11-29T21:41:17Z */
#define PERIOD (60 * SEC)
#define CPU_WINDOW (10 * SEC)
#define CPU_BIT PPROFIO_TYPE_BIT(PPROFIO_PROFILE_CPU)
#define HEAP_BIT PPROFIO_TYPE_BIT(PPROFIO_PROFILE_HEAP)
#define CYCLES 12

TestSuite(scheduler, .timeout = HANG_GUARD_S, .fini = scratch_cleanup);

static const char *op_name(int op) {
    switch (op) {
    case PPROFIO_CMD_CPU_START: return "CPU_START";
    case PPROFIO_CMD_CPU_STOP: return "CPU_STOP";
    case PPROFIO_CMD_HEAP: return "HEAP";
    case PPROFIO_CMD_EXIT: return "EXIT";
    case PPROFIO_EV_CYCLE_END: return "CYCLE_END";
    default: return "?";
    }
}

static pprofio_sched_event E(int op, int64_t cycle, int64_t at, int64_t from) {
    return (pprofio_sched_event){op, cycle, at, from};
}

/* describe renders an event with times relative to T0, for failure messages. */
static const char *describe(const pprofio_sched_event *e, char *buf, size_t n) {
    snprintf(buf, n, "%s(cycle %lld, at T0%+.3fs, window from T0%+.3fs)", op_name(e->op),
             (long long)e->cycle, (double)(e->at_ns - T0) / 1e9, (double)(e->window_start_ns - T0) / 1e9);
    return buf;
}

/* expect_events checks that got[0:n] is exactly want[0:wn], in order. */
static void expect_events(const char *when, const pprofio_sched_event *got, size_t n,
                          const pprofio_sched_event *want, size_t wn) {
    char a[160], b[160];
    for (size_t i = 0; i < n && i < wn; i++) {
        int same = got[i].op == want[i].op && got[i].cycle == want[i].cycle &&
                   got[i].at_ns == want[i].at_ns && got[i].window_start_ns == want[i].window_start_ns;
        cr_assert(same, "%s: event %zu is %s, want %s", when, i, describe(&got[i], a, sizeof a),
                  describe(&want[i], b, sizeof b));
    }
    cr_assert_eq(n, wn, "%s: %zu events (first extra/missing: %s), want %zu", when, n,
                 n > wn ? describe(&got[wn], a, sizeof a) : (wn > n ? describe(&want[n], b, sizeof b) : "-"),
                 wn);
}

#define EXPECT(when, got, n, ...)                                                                  \
    do {                                                                                           \
        const pprofio_sched_event want_[] = {__VA_ARGS__};                                         \
        expect_events(when, got, n, want_, sizeof want_ / sizeof want_[0]);                        \
    } while (0)

/*
 * catch_up calls pprofio_sched_due at `now` until nothing more is due, the
 * way the agent's scheduler thread does, appending every event to out.
 */
static size_t catch_up(pprofio_sched *s, int64_t now, pprofio_sched_event *out, size_t max) {
    size_t n = 0;
    for (int guard = 0; pprofio_sched_next_at(s) <= now; guard++) {
        cr_assert_lt(guard, 1000, "pprofio_sched_due never catches up with now");
        cr_assert_leq(n + PPROFIO_SCHED_MAX_EVENTS, max);
        size_t k = pprofio_sched_due(s, now, out + n);
        cr_assert_leq(k, PPROFIO_SCHED_MAX_EVENTS);
        n += k;
    }
    return n;
}

/* run_until collects every event due up to `until`, each at its own due time. */
static size_t run_until(pprofio_sched *s, int64_t until, pprofio_sched_event *out, size_t max) {
    size_t n = 0;
    while (pprofio_sched_next_at(s) <= until) {
        cr_assert_leq(n + PPROFIO_SCHED_MAX_EVENTS, max);
        n += pprofio_sched_due(s, pprofio_sched_next_at(s), out + n);
    }
    return n;
}

/* ---- the timeline ---------------------------------------------------------- */

LTest(scheduler, starts_each_cycle_with_cpu_and_ends_it_with_heap_on_the_exact_timeline) {
    pprofio_sched s;
    pprofio_sched_event ev[PPROFIO_SCHED_MAX_EVENTS];
    const int64_t delay = 7 * SEC + 250 * MS;
    const int64_t S = T0 + delay;
    pprofio_sched_init(&s, T0, PERIOD, CPU_WINDOW, delay, CPU_BIT | HEAP_BIT);

    assert_i64(pprofio_sched_next_at(&s), S);
    assert_i64(pprofio_sched_due(&s, T0, ev), 0);
    assert_i64(pprofio_sched_due(&s, S - 1, ev), 0);
    size_t n = pprofio_sched_due(&s, S, ev);
    EXPECT("first cycle", ev, n, E(PPROFIO_CMD_CPU_START, 0, S, S));

    char when[64];
    for (int64_t c = 0; c < CYCLES; c++) {
        const int64_t Sc = S + c * PERIOD;
        snprintf(when, sizeof when, "cycle %lld, CPU window end", (long long)c);
        assert_i64(pprofio_sched_next_at(&s), Sc + CPU_WINDOW);
        assert_i64(pprofio_sched_due(&s, Sc + CPU_WINDOW - 1, ev), 0);
        n = pprofio_sched_due(&s, Sc + CPU_WINDOW, ev);
        EXPECT(when, ev, n, E(PPROFIO_CMD_CPU_STOP, c, Sc + CPU_WINDOW, Sc));

        snprintf(when, sizeof when, "cycle %lld, cycle end", (long long)c);
        assert_i64(pprofio_sched_next_at(&s), Sc + PERIOD);
        assert_i64(pprofio_sched_due(&s, Sc + PERIOD - 1, ev), 0);
        n = pprofio_sched_due(&s, Sc + PERIOD, ev);
        EXPECT(when, ev, n, E(PPROFIO_CMD_HEAP, c, Sc + PERIOD, Sc), E(PPROFIO_EV_CYCLE_END, c, Sc + PERIOD, Sc),
               E(PPROFIO_CMD_CPU_START, c + 1, Sc + PERIOD, Sc + PERIOD));
    }
    assert_i64(s.skipped, 0);
}

LTest(scheduler, starts_the_first_cycle_at_once_without_a_start_delay) {
    pprofio_sched s;
    pprofio_sched_event ev[PPROFIO_SCHED_MAX_EVENTS];
    pprofio_sched_init(&s, T0, PERIOD, CPU_WINDOW, 0, CPU_BIT | HEAP_BIT);
    assert_i64(pprofio_sched_next_at(&s), T0);
    size_t n = pprofio_sched_due(&s, T0, ev);
    EXPECT("start", ev, n, E(PPROFIO_CMD_CPU_START, 0, T0, T0));
}

LTest(scheduler, treats_a_negative_start_delay_as_none) {
    pprofio_sched s;
    pprofio_sched_init(&s, T0, PERIOD, CPU_WINDOW, -5 * SEC, CPU_BIT | HEAP_BIT);
    assert_i64(pprofio_sched_next_at(&s), T0);
}

LTest(scheduler, takes_only_heap_snapshots_when_cpu_is_off) {
    pprofio_sched s;
    pprofio_sched_event ev[CYCLES * 4 + 8];
    const int64_t S = T0 + 3 * SEC;
    pprofio_sched_init(&s, T0, PERIOD, CPU_WINDOW, 3 * SEC, HEAP_BIT);
    size_t n = run_until(&s, S + CYCLES * PERIOD, ev, sizeof ev / sizeof ev[0]);
    cr_assert_eq(n, 2 * CYCLES, "%zu events in %d heap-only cycles, want %d", n, CYCLES, 2 * CYCLES);
    for (int64_t c = 0; c < CYCLES; c++) {
        const int64_t Sc = S + c * PERIOD;
        EXPECT("heap-only cycle", ev + 2 * c, 2, E(PPROFIO_CMD_HEAP, c, Sc + PERIOD, Sc),
               E(PPROFIO_EV_CYCLE_END, c, Sc + PERIOD, Sc));
    }
    const int64_t stop = S + CYCLES * PERIOD + 20 * SEC;
    n = pprofio_sched_stop(&s, stop, ev);
    EXPECT("heap-only stop", ev, n, E(PPROFIO_CMD_HEAP, CYCLES, stop, S + CYCLES * PERIOD),
           E(PPROFIO_EV_CYCLE_END, CYCLES, stop, S + CYCLES * PERIOD), E(PPROFIO_CMD_EXIT, CYCLES, stop, stop));
}

LTest(scheduler, takes_only_cpu_windows_when_heap_is_off) {
    pprofio_sched s;
    pprofio_sched_event ev[CYCLES * 4 + 8];
    pprofio_sched_init(&s, T0, PERIOD, CPU_WINDOW, 0, CPU_BIT);
    /* up to the start of the last cycle: CPU_START(0), then CPU_STOP, CYCLE_END, CPU_START */
    size_t n = run_until(&s, T0 + (CYCLES - 1) * PERIOD, ev, sizeof ev / sizeof ev[0]);
    cr_assert_eq(n, 1 + 3 * (CYCLES - 1), "%zu events", n);
    EXPECT("cpu-only start", ev, 1, E(PPROFIO_CMD_CPU_START, 0, T0, T0));
    for (int64_t c = 0; c + 1 < CYCLES; c++) {
        const int64_t Sc = T0 + c * PERIOD;
        EXPECT("cpu-only cycle", ev + 1 + 3 * c, 3, E(PPROFIO_CMD_CPU_STOP, c, Sc + CPU_WINDOW, Sc),
               E(PPROFIO_EV_CYCLE_END, c, Sc + PERIOD, Sc), E(PPROFIO_CMD_CPU_START, c + 1, Sc + PERIOD, Sc + PERIOD));
    }
    const int64_t last = T0 + (CYCLES - 1) * PERIOD;
    const int64_t stop = last + 4 * SEC; /* inside the last CPU window */
    n = pprofio_sched_stop(&s, stop, ev);
    EXPECT("cpu-only stop", ev, n, E(PPROFIO_CMD_CPU_STOP, CYCLES - 1, stop, last),
           E(PPROFIO_EV_CYCLE_END, CYCLES - 1, stop, last), E(PPROFIO_CMD_EXIT, CYCLES - 1, stop, stop));
}

LTest(scheduler, keeps_one_cpu_window_open_across_cycles_when_cpu_equals_the_period) {
    pprofio_sched s;
    pprofio_sched_event ev[PPROFIO_SCHED_MAX_EVENTS];
    pprofio_sched_init(&s, T0, PERIOD, PERIOD, 0, CPU_BIT | HEAP_BIT);
    size_t n = pprofio_sched_due(&s, T0, ev);
    EXPECT("start", ev, n, E(PPROFIO_CMD_CPU_START, 0, T0, T0));
    for (int64_t c = 0; c < CYCLES; c++) {
        const int64_t Sc = T0 + c * PERIOD, end = Sc + PERIOD;
        assert_i64(pprofio_sched_next_at(&s), end);
        assert_i64(pprofio_sched_due(&s, end - 1, ev), 0);
        n = pprofio_sched_due(&s, end, ev);
        EXPECT("cycle end", ev, n, E(PPROFIO_CMD_CPU_STOP, c, end, Sc), E(PPROFIO_CMD_HEAP, c, end, Sc),
               E(PPROFIO_EV_CYCLE_END, c, end, Sc), E(PPROFIO_CMD_CPU_START, c + 1, end, end));
    }
}

/* ---- stopping ----------------------------------------------------------- */

LTest(scheduler, stop_inside_a_cpu_window_closes_it_then_takes_heap_and_exits) {
    pprofio_sched s;
    pprofio_sched_event ev[64];
    pprofio_sched_init(&s, T0, PERIOD, CPU_WINDOW, 0, CPU_BIT | HEAP_BIT);
    run_until(&s, T0 + 3 * PERIOD, ev, sizeof ev / sizeof ev[0]); /* cycle 3's window just opened */
    const int64_t S3 = T0 + 3 * PERIOD, stop = S3 + 4 * SEC + 500 * MS;
    size_t n = pprofio_sched_stop(&s, stop, ev);
    EXPECT("stop", ev, n, E(PPROFIO_CMD_CPU_STOP, 3, stop, S3), E(PPROFIO_CMD_HEAP, 3, stop, S3),
           E(PPROFIO_EV_CYCLE_END, 3, stop, S3), E(PPROFIO_CMD_EXIT, 3, stop, stop));
}

LTest(scheduler, stop_after_the_cpu_window_takes_heap_and_exits_without_a_second_cpu_stop) {
    pprofio_sched s;
    pprofio_sched_event ev[64];
    pprofio_sched_init(&s, T0, PERIOD, CPU_WINDOW, 0, CPU_BIT | HEAP_BIT);
    run_until(&s, T0 + 2 * PERIOD + CPU_WINDOW, ev, sizeof ev / sizeof ev[0]);
    const int64_t S2 = T0 + 2 * PERIOD, stop = S2 + 42 * SEC;
    size_t n = pprofio_sched_stop(&s, stop, ev);
    EXPECT("stop", ev, n, E(PPROFIO_CMD_HEAP, 2, stop, S2), E(PPROFIO_EV_CYCLE_END, 2, stop, S2),
           E(PPROFIO_CMD_EXIT, 2, stop, stop));
}

LTest(scheduler, stop_before_the_first_cycle_never_starts_cpu_and_takes_one_heap_since_start) {
    pprofio_sched s;
    pprofio_sched_event ev[PPROFIO_SCHED_MAX_EVENTS];
    pprofio_sched_init(&s, T0, PERIOD, CPU_WINDOW, 30 * SEC, CPU_BIT | HEAP_BIT);
    assert_i64(pprofio_sched_due(&s, T0 + 29 * SEC, ev), 0);
    const int64_t stop = T0 + 12 * SEC;
    size_t n = pprofio_sched_stop(&s, stop, ev);
    EXPECT("stop before the first cycle", ev, n, E(PPROFIO_CMD_HEAP, 0, stop, T0),
           E(PPROFIO_EV_CYCLE_END, 0, stop, T0), E(PPROFIO_CMD_EXIT, 0, stop, stop));
    assert_i64(pprofio_sched_due(&s, T0 + 31 * SEC, ev), 0);
}

LTest(scheduler, a_stopped_timeline_is_never_due_again_and_a_second_stop_emits_nothing) {
    pprofio_sched s;
    pprofio_sched_event ev[64];
    pprofio_sched_init(&s, T0, PERIOD, CPU_WINDOW, 0, CPU_BIT | HEAP_BIT);
    run_until(&s, T0 + PERIOD + 5 * SEC, ev, sizeof ev / sizeof ev[0]);
    cr_assert_gt(pprofio_sched_stop(&s, T0 + PERIOD + 6 * SEC, ev), 0);
    assert_i64(pprofio_sched_next_at(&s), PPROFIO_SCHED_NEVER);
    assert_i64(pprofio_sched_due(&s, T0 + 100 * PERIOD, ev), 0);
    assert_i64(pprofio_sched_due(&s, INT64_MAX - 1, ev), 0);
    assert_i64(pprofio_sched_stop(&s, T0 + 100 * PERIOD, ev), 0);
    assert_i64(pprofio_sched_next_at(&s), PPROFIO_SCHED_NEVER);
}

/* ---- falling behind ----------------------------------------------------- */

LTest(scheduler, a_caller_late_by_whole_cycles_skips_them_instead_of_replaying_them) {
    pprofio_sched s;
    pprofio_sched_event ev[64];
    pprofio_sched_init(&s, T0, PERIOD, CPU_WINDOW, 0, CPU_BIT | HEAP_BIT);
    run_until(&s, T0 + CPU_WINDOW, ev, sizeof ev / sizeof ev[0]); /* cycle 0's window closed */

    /* Cycle 0 ended at T0+60s; the caller next looks 3 cycles and 5 s later. */
    const int64_t now = T0 + PERIOD + 3 * PERIOD + 5 * SEC;
    const int64_t S4 = T0 + 4 * PERIOD; /* the latest cycle start before now */
    size_t n = catch_up(&s, now, ev, sizeof ev / sizeof ev[0]);
    EXPECT("late", ev, n, E(PPROFIO_CMD_HEAP, 0, T0 + PERIOD, T0), E(PPROFIO_EV_CYCLE_END, 0, T0 + PERIOD, T0),
           E(PPROFIO_CMD_CPU_START, 4, S4, S4));
    assert_i64(s.skipped, 3);
    assert_i64(pprofio_sched_next_at(&s), S4 + CPU_WINDOW);

    /* From there the timeline goes on as if nothing happened. */
    n = run_until(&s, S4 + PERIOD, ev, sizeof ev / sizeof ev[0]);
    EXPECT("after catching up", ev, n, E(PPROFIO_CMD_CPU_STOP, 4, S4 + CPU_WINDOW, S4),
           E(PPROFIO_CMD_HEAP, 4, S4 + PERIOD, S4), E(PPROFIO_EV_CYCLE_END, 4, S4 + PERIOD, S4),
           E(PPROFIO_CMD_CPU_START, 5, S4 + PERIOD, S4 + PERIOD));
    assert_i64(s.skipped, 3);
}

LTest(scheduler, a_caller_late_inside_a_cpu_window_closes_it_then_skips_to_the_current_cycle) {
    pprofio_sched s;
    pprofio_sched_event ev[64];
    pprofio_sched_init(&s, T0, PERIOD, CPU_WINDOW, 0, CPU_BIT | HEAP_BIT);
    run_until(&s, T0, ev, sizeof ev / sizeof ev[0]); /* cycle 0's window is open */
    const int64_t now = T0 + 3 * PERIOD + 25 * SEC, S3 = T0 + 3 * PERIOD;
    size_t n = catch_up(&s, now, ev, sizeof ev / sizeof ev[0]);
    EXPECT("late", ev, n, E(PPROFIO_CMD_CPU_STOP, 0, T0 + CPU_WINDOW, T0),
           E(PPROFIO_CMD_HEAP, 0, T0 + PERIOD, T0), E(PPROFIO_EV_CYCLE_END, 0, T0 + PERIOD, T0),
           E(PPROFIO_CMD_CPU_START, 3, S3, S3), E(PPROFIO_CMD_CPU_STOP, 3, S3 + CPU_WINDOW, S3));
    assert_i64(s.skipped, 2);
    assert_i64(pprofio_sched_next_at(&s), S3 + PERIOD);
}

LTest(scheduler, a_caller_late_by_less_than_a_cycle_skips_nothing_and_keeps_due_times) {
    pprofio_sched s;
    pprofio_sched_event ev[64];
    pprofio_sched_init(&s, T0, PERIOD, CPU_WINDOW, 0, CPU_BIT | HEAP_BIT);
    run_until(&s, T0 + CPU_WINDOW, ev, sizeof ev / sizeof ev[0]);
    const int64_t S1 = T0 + PERIOD, now = S1 + 30 * SEC;
    size_t n = catch_up(&s, now, ev, sizeof ev / sizeof ev[0]);
    EXPECT("late", ev, n, E(PPROFIO_CMD_HEAP, 0, S1, T0), E(PPROFIO_EV_CYCLE_END, 0, S1, T0),
           E(PPROFIO_CMD_CPU_START, 1, S1, S1), E(PPROFIO_CMD_CPU_STOP, 1, S1 + CPU_WINDOW, S1));
    assert_i64(s.skipped, 0);
    assert_i64(pprofio_sched_next_at(&s), S1 + PERIOD);
}

/* ---- start jitter -------------------------------------------------------- */

LTest(scheduler, jitter_stays_within_zero_and_max_and_reaches_both_ends) {
    const uint64_t seeds[] = {1, 2, 42, 0xdeadbeef, UINT64_MAX};
    for (size_t k = 0; k < sizeof seeds / sizeof seeds[0]; k++) {
        uint64_t state = seeds[k];
        int seen[11] = {0};
        for (int i = 0; i < 20000; i++) {
            int64_t d = pprofio_jitter_delay(&state, 10);
            cr_assert(d >= 0 && d <= 10, "seed %llu draw %d: %lld outside [0, 10]", (unsigned long long)seeds[k], i,
                      (long long)d);
            seen[d]++;
        }
        for (int v = 0; v <= 10; v++)
            cr_assert_gt(seen[v], 0, "seed %llu: %d never drawn in 20000 draws from [0, 10]",
                         (unsigned long long)seeds[k], v);
    }
}

LTest(scheduler, jitter_spreads_over_the_whole_range) {
    const uint64_t seeds[] = {7, 1234567, 0x9E3779B97F4A7C15};
    const int64_t max = 60 * SEC;
    for (size_t k = 0; k < sizeof seeds / sizeof seeds[0]; k++) {
        uint64_t state = seeds[k];
        int low = 0, high = 0;
        double sum = 0;
        const int draws = 10000;
        for (int i = 0; i < draws; i++) {
            int64_t d = pprofio_jitter_delay(&state, max);
            cr_assert(d >= 0 && d <= max, "draw %lld outside [0, %lld]", (long long)d, (long long)max);
            if (d < max / 2)
                low++;
            else
                high++;
            sum += (double)d;
        }
        cr_assert(low > draws / 3 && high > draws / 3, "seed %llu: %d draws in the low half, %d in the high",
                  (unsigned long long)seeds[k], low, high);
        double mean = sum / draws;
        cr_assert(mean > 0.45 * (double)max && mean < 0.55 * (double)max, "mean %.3fs, want about 30s",
                  mean / 1e9);
    }
}

LTest(scheduler, jitter_is_zero_when_max_is_zero_or_negative) {
    uint64_t state = 99;
    for (int i = 0; i < 100; i++) {
        assert_i64(pprofio_jitter_delay(&state, 0), 0);
        assert_i64(pprofio_jitter_delay(&state, -1), 0);
        assert_i64(pprofio_jitter_delay(&state, INT64_MIN), 0);
    }
}

LTest(scheduler, jitter_with_the_largest_max_is_never_negative) {
    uint64_t state = 5;
    for (int i = 0; i < 10000; i++)
        cr_assert_geq(pprofio_jitter_delay(&state, INT64_MAX), 0);
}

LTest(scheduler, jitter_is_a_function_of_the_seed) {
    uint64_t a = 2024, b = 2024, c = 2025;
    int differ = 0;
    for (int i = 0; i < 100; i++) {
        int64_t x = pprofio_jitter_delay(&a, 60 * SEC);
        assert_i64(pprofio_jitter_delay(&b, 60 * SEC), x);
        differ += pprofio_jitter_delay(&c, 60 * SEC) != x;
    }
    cr_assert_gt(differ, 90, "another seed drew the same delays %d times out of 100", 100 - differ);
}
