//go:build ignore

/* retry.c: the contract's answer table and backoff (see retry.h). */
#include "retry.h"

#include "random.h"

#define RETRY_NS_PER_SEC INT64_C(1000000000)
#define MAX_BACKOFF_NS (INT64_C(300) * RETRY_NS_PER_SEC)

int64_t pprofio_backoff_ns(int attempt, uint64_t *rng) {
    int64_t cap = RETRY_NS_PER_SEC;
    for (int i = 0; i < attempt && cap < MAX_BACKOFF_NS; i++)
        cap *= 2;
    if (cap > MAX_BACKOFF_NS)
        cap = MAX_BACKOFF_NS;
    return pprofio_random_upto(rng, cap);
}

void pprofio_retry_init(pprofio_retry *r, uint64_t seed) {
    *r = (pprofio_retry){0};
    r->rng = seed;
    r->health = PPROFIO_HEALTH_OK;
}

static void set_health(pprofio_retry *r, int health, int *changed) {
    *changed = r->health != health;
    r->health = health;
}

int pprofio_retry_answer(pprofio_retry *r, const pprofio_upload_result *res, int64_t now, int *health_changed) {
    *health_changed = 0;
    switch (res->verdict) {
    case PPROFIO_UP_DONE:
        r->attempt = 0;
        r->next_at = 0;
        r->forced = 0;
        set_health(r, PPROFIO_HEALTH_OK, health_changed);
        return PPROFIO_RETRY_DONE;
    case PPROFIO_UP_DROP:
        return PPROFIO_RETRY_DROP;
    case PPROFIO_UP_SPLIT:
        return PPROFIO_RETRY_SPLIT;
    case PPROFIO_UP_AUTH:
    case PPROFIO_UP_MISSING: {
        int64_t wait = pprofio_backoff_ns(r->attempt++, &r->rng);
        r->next_at = now + (wait > PPROFIO_AUTH_PAUSE_NS ? wait : PPROFIO_AUTH_PAUSE_NS);
        r->forced = 1;
        set_health(r, res->verdict == PPROFIO_UP_AUTH ? PPROFIO_HEALTH_AUTH : PPROFIO_HEALTH_MISSING, health_changed);
        return PPROFIO_RETRY_WAIT;
    }
    default: {
        int64_t wait = res->retry_after_ns >= 0 ? res->retry_after_ns : pprofio_backoff_ns(r->attempt, &r->rng);
        r->attempt++;
        r->next_at = now + wait;
        r->forced = res->retry_after_ns >= 0;
        if (!res->aborted) /* cut short by Stop's deadline: not the service's fault */
            set_health(r, PPROFIO_HEALTH_FAILING, health_changed);
        return PPROFIO_RETRY_WAIT;
    }
    }
}

void pprofio_retry_closing(pprofio_retry *r, int64_t now) {
    if (!r->forced && r->next_at > now)
        r->next_at = now;
}

void pprofio_retry_defer(pprofio_retry *r, int64_t now, int64_t wait_ns) { r->next_at = now + wait_ns; }
