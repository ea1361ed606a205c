//go:build ignore

/* alloc.c: malloc with an injectable failure, for out-of-memory tests. */
#include "alloc.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

static atomic_long fail_countdown = -1;
static atomic_long calls;

static int should_fail(void) {
    atomic_fetch_add(&calls, 1);
    long n = atomic_load(&fail_countdown);
    while (n >= 0) {
        if (atomic_compare_exchange_weak(&fail_countdown, &n, n - 1))
            return n == 0;
    }
    return 0;
}

void pprofio_alloc_fail_after(long n) { atomic_store(&fail_countdown, n < 0 ? -1 : n); }

long pprofio_alloc_calls(void) { return atomic_load(&calls); }

void *pprofio_malloc(size_t n) {
    if (should_fail())
        return NULL;
    return malloc(n ? n : 1);
}

void *pprofio_calloc(size_t count, size_t size) {
    if (should_fail())
        return NULL;
    return calloc(count ? count : 1, size ? size : 1);
}

void *pprofio_realloc(void *p, size_t n) {
    if (should_fail())
        return NULL;
    return realloc(p, n ? n : 1);
}

void pprofio_free(void *p) { free(p); }

char *pprofio_strdup(const char *s) {
    size_t n = strlen(s) + 1;
    char *d = pprofio_malloc(n);
    if (d)
        memcpy(d, s, n);
    return d;
}
