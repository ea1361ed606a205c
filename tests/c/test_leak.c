/*
 * test_leak.c: the goroutine leak rule (csrc/leak.h), driven with made-up
 * snapshots: when it fires, that it fires once per episode, and what its
 * message names.
 */
#include "../../csrc/leak.h"
#include "helpers.h"

TestSuite(leak, .timeout = 30, .fini = scratch_cleanup);

/* snapshot makes a goroutine snapshot: `base` idle stacks and `leaky` of a growing one. */
static pprofio_stack_count *snapshot(int64_t base, int64_t leaky, size_t *n, int64_t *total) {
    pprofio_stack_count *sc = pprofio_calloc(2, sizeof *sc);
    cr_assert_not_null(sc);
    sc[0] = (pprofio_stack_count){.key = 1, .count = base};
    snprintf(sc[0].desc, sizeof sc[0].desc, "main.idle");
    sc[1] = (pprofio_stack_count){.key = 2, .count = leaky};
    snprintf(sc[1].desc, sizeof sc[1].desc, "main.leakyWorker < main.spawn");
    *n = 2;
    *total = base + leaky;
    return sc;
}

static int observe(pprofio_leak *l, int64_t base, int64_t leaky, pprofio_leak_alert *alert) {
    size_t n;
    int64_t total;
    pprofio_stack_count *sc = snapshot(base, leaky, &n, &total);
    return pprofio_leak_observe(l, sc, n, total, alert);
}

LTest(leak, steady_growth_over_the_windows_fires_once_and_names_the_growing_stack) {
    pprofio_leak l;
    pprofio_leak_init(&l, 3, 20, 50);
    pprofio_leak_alert alert;
    assert_i64(observe(&l, 100, 0, &alert), 0);
    assert_i64(observe(&l, 100, 30, &alert), 0);
    assert_i64(observe(&l, 100, 60, &alert), 0);
    assert_i64(observe(&l, 100, 90, &alert), 1); /* third growing window: +90 >= 50 and >= 20% */
    assert_i64(alert.count, 190);
    assert_i64(alert.growth, 90);
    assert_i64(alert.windows, 3);
    cr_assert(strstr(alert.message, "main.leakyWorker < main.spawn (+90)"), "%s", alert.message);
    assert_i64(observe(&l, 100, 120, &alert), 0); /* the same episode: said once */
    assert_i64(observe(&l, 100, 120, &alert), 0); /* it stops growing: the episode ends */
    assert_i64(observe(&l, 100, 150, &alert), 0);
    assert_i64(observe(&l, 100, 180, &alert), 0);
    assert_i64(observe(&l, 100, 210, &alert), 1); /* a new episode fires again */
    pprofio_leak_free(&l);
}

LTest(leak, growth_under_the_thresholds_or_with_a_pause_does_not_fire) {
    pprofio_leak l;
    pprofio_leak_init(&l, 3, 20, 50);
    pprofio_leak_alert alert;
    int64_t leaky[] = {0, 10, 20, 30, 40, 40, 80, 120};
    for (size_t i = 0; i < sizeof leaky / sizeof leaky[0]; i++)
        assert_i64(observe(&l, 1000, leaky[i], &alert), 0); /* +40 of 1000 is under both */
    pprofio_leak_free(&l);
}

LTest(leak, zero_windows_turn_the_rule_off) {
    pprofio_leak l;
    pprofio_leak_init(&l, 0, 0, 0);
    pprofio_leak_alert alert;
    for (int i = 0; i < 10; i++)
        assert_i64(observe(&l, 10, i * 1000, &alert), 0);
    pprofio_leak_free(&l);
}
