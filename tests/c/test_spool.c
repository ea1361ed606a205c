/*
 * test_spool.c: the bounded in-memory queue of profiles (csrc/spool.h).
 * One byte bound over everything reserved; past it the oldest queued
 * profiles go first, and every eviction is counted.
 */
#include "../../csrc/spool.h"
#include "helpers.h"

#define LIMIT 10000

TestSuite(spool, .timeout = HANG_GUARD_S, .fini = scratch_cleanup);

/*
 * queued_profile makes a profile whose raw buffer holds len bytes in cap
 * bytes of capacity, reserves cap in the spool (as a writer would) and
 * queues it.
 */
static pprofio_profile *queued_profile(pprofio_spool *s, int64_t cycle, size_t len, size_t cap) {
    pprofio_profile *p = pprofio_profile_new(PPROFIO_PROFILE_HEAP, cycle, cycle * 60 * SEC);
    cr_assert(p);
    p->raw.p = pprofio_malloc(cap);
    cr_assert(p->raw.p);
    memset(p->raw.p, 'x', cap);
    p->raw.len = len;
    p->raw.cap = cap;
    assert_status(pprofio_spool_reserve(s, (int64_t)cap, NULL), PPROFIO_OK);
    pprofio_spool_push(s, p);
    return p;
}

LTest(spool, reservations_add_up_and_the_peak_remembers_the_most_held) {
    pprofio_spool s;
    pprofio_spool_init(&s, LIMIT);
    assert_status(pprofio_spool_reserve(&s, 100, NULL), PPROFIO_OK);
    assert_status(pprofio_spool_reserve(&s, 200, NULL), PPROFIO_OK);
    assert_i64(s.used, 300);
    assert_i64(s.peak, 300);
    assert_status(pprofio_spool_reserve(&s, -150, NULL), PPROFIO_OK);
    assert_i64(s.used, 150);
    assert_i64(s.peak, 300);
    assert_status(pprofio_spool_reserve(&s, 50, NULL), PPROFIO_OK);
    assert_i64(s.peak, 300);
    assert_status(pprofio_spool_reserve(&s, 400, NULL), PPROFIO_OK);
    assert_i64(s.used, 600);
    assert_i64(s.peak, 600);
}

LTest(spool, negative_deltas_give_bytes_back_without_evicting_anything) {
    pprofio_spool s;
    pprofio_spool_init(&s, LIMIT);
    queued_profile(&s, 0, 1000, 4000);
    assert_status(pprofio_spool_reserve(&s, 5000, NULL), PPROFIO_OK);
    assert_i64(s.used, 9000);
    uint64_t evicted = 0;
    assert_status(pprofio_spool_reserve(&s, -5000, &evicted), PPROFIO_OK);
    assert_i64(s.used, 4000);
    assert_i64(evicted, 0);
    assert_i64(s.count, 1);
    assert_i64(s.evicted_profiles, 0);
    pprofio_spool_clear(&s);
}

LTest(spool, a_reservation_up_to_the_limit_fits_exactly) {
    pprofio_spool s;
    pprofio_spool_init(&s, LIMIT);
    assert_status(pprofio_spool_reserve(&s, LIMIT - 1, NULL), PPROFIO_OK);
    assert_status(pprofio_spool_reserve(&s, 1, NULL), PPROFIO_OK);
    assert_i64(s.used, LIMIT);
    assert_i64(s.peak, LIMIT);
}

LTest(spool, a_reservation_that_does_not_fit_evicts_the_oldest_queued_profiles_first) {
    pprofio_spool s;
    pprofio_spool_init(&s, LIMIT);
    pprofio_profile *a = queued_profile(&s, 0, 1000, 3000);
    pprofio_profile *b = queued_profile(&s, 0, 2000, 3000);
    pprofio_profile *c = queued_profile(&s, 1, 2500, 3000);
    (void)a;
    assert_i64(s.used, 9000);

    /* 9000 + 2000 > 10000: dropping a (the oldest) is enough. */
    uint64_t evicted = 0;
    assert_status(pprofio_spool_reserve(&s, 2000, &evicted), PPROFIO_OK);
    assert_i64(evicted, 1);
    assert_i64(s.evicted_profiles, 1);
    assert_i64(s.evicted_bytes, 1000); /* what was lost: a's bytes, not its capacity */
    assert_i64(s.used, 8000);
    assert_i64(s.count, 2);
    cr_assert_eq(s.head, b, "b should be the oldest left");
    cr_assert_eq(s.tail, c);

    /* 8000 + 5000 > 10000: dropping b is enough, c stays. */
    assert_status(pprofio_spool_reserve(&s, 5000, &evicted), PPROFIO_OK);
    assert_i64(evicted, 2);
    assert_i64(s.evicted_profiles, 2);
    assert_i64(s.evicted_bytes, 3000);
    assert_i64(s.used, 10000);
    cr_assert_eq(s.head, c);
    cr_assert_eq(s.tail, c);
    assert_i64(s.count, 1);
    assert_i64(s.peak, 10000);

    pprofio_spool_reserve(&s, -(2000 + 5000), NULL); /* the two reservations not queued */
    pprofio_spool_clear(&s);
    assert_i64(s.used, 0);
}

LTest(spool, a_reservation_larger_than_the_limit_fails_and_reserves_and_evicts_nothing) {
    pprofio_spool s;
    pprofio_spool_init(&s, LIMIT);
    queued_profile(&s, 0, 100, 2000);
    uint64_t evicted = 0;
    assert_status(pprofio_spool_reserve(&s, LIMIT + 1, &evicted), PPROFIO_ERR_LIMIT);
    assert_i64(s.used, 2000);
    assert_i64(s.peak, 2000);
    assert_i64(s.count, 1);
    assert_i64(evicted, 0);
    assert_i64(s.evicted_profiles, 0);
    assert_i64(s.evicted_bytes, 0);
    pprofio_spool_clear(&s);
}

LTest(spool, a_reservation_that_eviction_cannot_make_room_for_reserves_nothing) {
    pprofio_spool s;
    pprofio_spool_init(&s, LIMIT);
    assert_status(pprofio_spool_reserve(&s, 8000, NULL), PPROFIO_OK); /* a profile being built */
    queued_profile(&s, 0, 500, 1000);
    uint64_t evicted = 0;
    assert_status(pprofio_spool_reserve(&s, 3000, &evicted), PPROFIO_ERR_LIMIT);
    /* Whatever was evicted is counted, and only the in-progress bytes remain. */
    assert_i64(s.evicted_profiles, evicted);
    assert_i64(s.used, 8000 + (int64_t)(1 - evicted) * 1000);
    assert_i64(s.count, 1 - evicted);
    assert_i64(s.peak, 9000);
    pprofio_spool_clear(&s);
}

LTest(spool, pop_hands_out_profiles_oldest_first_and_only_from_cycles_before_the_bound) {
    pprofio_spool s;
    pprofio_spool_init(&s, LIMIT);
    pprofio_profile *a = queued_profile(&s, 0, 10, 100);
    pprofio_profile *b = queued_profile(&s, 0, 10, 100);
    pprofio_profile *c = queued_profile(&s, 1, 10, 100);
    pprofio_profile *d = queued_profile(&s, 2, 10, 100);

    cr_assert_null(pprofio_spool_pop(&s, 0), "cycle 0 is not before 0");
    pprofio_profile *p = pprofio_spool_pop(&s, 1);
    cr_assert_eq(p, a);
    cr_assert_null(p->next, "a popped profile is unlinked");
    pprofio_spool_done(&s, p);
    cr_assert_eq(p = pprofio_spool_pop(&s, 1), b);
    pprofio_spool_done(&s, p);
    cr_assert_null(pprofio_spool_pop(&s, 1), "cycle 1 is not before 1");
    assert_i64(s.count, 2);
    cr_assert_eq(p = pprofio_spool_pop(&s, 3), c);
    pprofio_spool_done(&s, p);
    cr_assert_eq(p = pprofio_spool_pop(&s, INT64_MAX), d);
    pprofio_spool_done(&s, p);
    cr_assert_null(pprofio_spool_pop(&s, INT64_MAX));
    cr_assert_null(s.head);
    cr_assert_null(s.tail);
    assert_i64(s.count, 0);
}

LTest(spool, done_frees_a_popped_profile_and_gives_back_its_capacity) {
    pprofio_spool s;
    pprofio_spool_init(&s, LIMIT);
    queued_profile(&s, 0, 10, 1500);
    queued_profile(&s, 0, 10, 2500);
    assert_i64(s.used, 4000);
    pprofio_profile *p = pprofio_spool_pop(&s, 1);
    assert_i64(s.used, 4000); /* popped but not written yet: still held */
    pprofio_spool_done(&s, p);
    assert_i64(s.used, 2500);
    pprofio_spool_done(&s, NULL);
    assert_i64(s.used, 2500);
    pprofio_spool_clear(&s);
}

LTest(spool, the_queue_works_again_after_draining) {
    pprofio_spool s;
    pprofio_spool_init(&s, LIMIT);
    pprofio_profile *a = queued_profile(&s, 0, 10, 100);
    pprofio_profile *p = pprofio_spool_pop(&s, 1);
    cr_assert_eq(p, a);
    pprofio_spool_done(&s, p);
    pprofio_profile *b = queued_profile(&s, 1, 10, 100);
    pprofio_profile *c = queued_profile(&s, 1, 10, 100);
    cr_assert_eq(s.head, b);
    cr_assert_eq(s.tail, c);
    cr_assert_eq(p = pprofio_spool_pop(&s, 2), b);
    pprofio_spool_done(&s, p);
    cr_assert_eq(p = pprofio_spool_pop(&s, 2), c);
    pprofio_spool_done(&s, p);
    assert_i64(s.used, 0);
}

LTest(spool, clear_frees_every_queued_profile_without_counting_evictions) {
    pprofio_spool s;
    pprofio_spool_init(&s, LIMIT);
    assert_status(pprofio_spool_reserve(&s, 700, NULL), PPROFIO_OK); /* in progress: not queued */
    for (int i = 0; i < 5; i++)
        queued_profile(&s, i, 100, 1000);
    pprofio_spool_clear(&s);
    assert_i64(s.count, 0);
    cr_assert_null(s.head);
    cr_assert_null(s.tail);
    assert_i64(s.used, 700);
    assert_i64(s.evicted_profiles, 0);
    assert_i64(s.evicted_bytes, 0);
    /* LTest's leak check proves the five profiles and their bytes were freed. */
}

LTest(spool, eviction_frees_what_it_drops) {
    pprofio_spool s;
    pprofio_spool_init(&s, LIMIT);
    for (int i = 0; i < 50; i++) /* each push past 10 evicts the oldest */
        queued_profile(&s, i, 100, 1000);
    assert_i64(s.count, 10);
    assert_i64(s.evicted_profiles, 40);
    assert_i64(s.evicted_bytes, 4000);
    assert_i64(s.head->cycle, 40);
    assert_i64(s.tail->cycle, 49);
    pprofio_spool_clear(&s);
}

LTest(spool, a_reservation_that_evicting_everything_would_not_fit_evicts_nothing) {
    pprofio_spool s;
    pprofio_spool_init(&s, LIMIT);
    /* 4000 held by a profile still being built (not evictable) ... */
    assert_status(pprofio_spool_reserve(&s, 4000, NULL), PPROFIO_OK);
    /* ... and 5000 by two queued profiles. */
    queued_profile(&s, 0, 2000, 2000);
    queued_profile(&s, 0, 3000, 3000);
    uint64_t evicted = 0;
    /* 4000 + 7000 > 10000 even with both queued profiles gone. */
    assert_status(pprofio_spool_reserve(&s, 7000, &evicted), PPROFIO_ERR_LIMIT);
    assert_i64(evicted, 0);
    assert_i64(s.evicted_profiles, 0);
    assert_i64(s.count, 2);
    assert_i64(s.used, 9000);
    /* 4000 + 6000 fits once both are gone: then they go. */
    assert_status(pprofio_spool_reserve(&s, 6000, &evicted), PPROFIO_OK);
    assert_i64(evicted, 2);
    assert_i64(s.count, 0);
    assert_i64(s.used, 10000);
    pprofio_spool_reserve(&s, -10000, NULL);
}
