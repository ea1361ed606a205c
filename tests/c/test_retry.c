/*
 * test_retry.c: what the upload thread does after each answer (csrc/retry.h),
 * driven with made-up answers and times, as test_scheduler.c drives the
 * timeline: the action, when the next try may come, and when delivery's
 * health changes (which is when the thread logs).
 */
#include "../../csrc/retry.h"
#include "helpers.h"

#define T0 (INT64_C(1795988477) * SEC)

TestSuite(retry, .timeout = 30, .fini = scratch_cleanup);

static pprofio_upload_result answer(int verdict, int64_t retry_after_ns, int aborted) {
    pprofio_upload_result r;
    memset(&r, 0, sizeof r);
    r.verdict = verdict;
    r.retry_after_ns = retry_after_ns;
    r.aborted = aborted;
    return r;
}

static int apply(pprofio_retry *r, int verdict, int64_t retry_after_ns, int aborted, int64_t now, int *changed) {
    pprofio_upload_result res = answer(verdict, retry_after_ns, aborted);
    return pprofio_retry_answer(r, &res, now, changed);
}

LTest(retry, a_failure_waits_a_backoff_that_grows_and_success_resets_it) {
    pprofio_retry r;
    pprofio_retry_init(&r, 42);
    uint64_t rng = 42; /* the same draws, replayed */
    int changed;
    for (int attempt = 0; attempt < 6; attempt++) {
        int64_t now = T0 + attempt * SEC;
        assert_i64(apply(&r, PPROFIO_UP_RETRY, -1, 0, now, &changed), PPROFIO_RETRY_WAIT);
        assert_i64(changed, attempt == 0); /* failing from the first failure on: said once */
        assert_i64(r.next_at, now + pprofio_backoff_ns(attempt, &rng));
        cr_assert_leq(r.next_at - now, (INT64_C(1) << attempt) * SEC);
    }
    assert_i64(r.health, PPROFIO_HEALTH_FAILING);
    assert_i64(apply(&r, PPROFIO_UP_DONE, -1, 0, T0 + 60 * SEC, &changed), PPROFIO_RETRY_DONE);
    assert_i64(changed, 1);
    assert_i64(r.health, PPROFIO_HEALTH_OK);
    assert_i64(r.attempt, 0);
    assert_i64(r.next_at, 0);
}

LTest(retry, retry_after_is_the_wait_when_the_service_gives_one) {
    pprofio_retry r;
    pprofio_retry_init(&r, 7);
    int changed;
    assert_i64(apply(&r, PPROFIO_UP_RETRY, 17 * SEC, 0, T0, &changed), PPROFIO_RETRY_WAIT);
    assert_i64(r.next_at, T0 + 17 * SEC);
    assert_i64(apply(&r, PPROFIO_UP_RETRY, 0, 0, T0 + 20 * SEC, &changed), PPROFIO_RETRY_WAIT);
    assert_i64(r.next_at, T0 + 20 * SEC);
    assert_i64(r.attempt, 2);
}

LTest(retry, a_refused_key_pauses_at_least_60_s_and_is_said_once) {
    pprofio_retry r;
    pprofio_retry_init(&r, 9);
    int changed;
    for (int i = 0; i < 4; i++) {
        int64_t now = T0 + i * 100 * SEC;
        assert_i64(apply(&r, PPROFIO_UP_AUTH, -1, 0, now, &changed), PPROFIO_RETRY_WAIT);
        assert_i64(changed, i == 0);
        cr_assert_geq(r.next_at - now, 60 * SEC);
    }
    assert_i64(r.health, PPROFIO_HEALTH_AUTH);
}

LTest(retry, a_request_cut_short_by_stop_waits_without_calling_delivery_failing) {
    pprofio_retry r;
    pprofio_retry_init(&r, 3);
    int changed;
    assert_i64(apply(&r, PPROFIO_UP_RETRY, -1, 1, T0, &changed), PPROFIO_RETRY_WAIT);
    assert_i64(changed, 0);
    assert_i64(r.health, PPROFIO_HEALTH_OK);
}

LTest(retry, drop_and_split_change_neither_the_wait_nor_the_health) {
    pprofio_retry r;
    pprofio_retry_init(&r, 5);
    int changed;
    assert_i64(apply(&r, PPROFIO_UP_RETRY, 5 * SEC, 0, T0, &changed), PPROFIO_RETRY_WAIT);
    assert_i64(apply(&r, PPROFIO_UP_DROP, -1, 0, T0 + 6 * SEC, &changed), PPROFIO_RETRY_DROP);
    assert_i64(changed, 0);
    assert_i64(apply(&r, PPROFIO_UP_SPLIT, -1, 0, T0 + 7 * SEC, &changed), PPROFIO_RETRY_SPLIT);
    assert_i64(changed, 0);
    assert_i64(r.next_at, T0 + 5 * SEC);
    assert_i64(r.health, PPROFIO_HEALTH_FAILING);
}

LTest(retry, a_batch_that_cannot_be_loaded_defers_the_next_try) {
    pprofio_retry r;
    pprofio_retry_init(&r, 1);
    pprofio_retry_defer(&r, T0, SEC);
    assert_i64(r.next_at, T0 + SEC);
    assert_i64(r.health, PPROFIO_HEALTH_OK);
}
