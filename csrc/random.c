//go:build ignore

/* random.c: seeded and system randomness (see random.h). */
#include "random.h"

#include <stdint.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

uint64_t pprofio_random_seed(void) {
    uint64_t seed = 0;
    if (getrandom(&seed, sizeof seed, GRND_NONBLOCK) != (ssize_t)sizeof seed) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        seed = (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 20) ^ (uint64_t)getpid();
    }
    return seed;
}

uint64_t pprofio_random_next(uint64_t *state) {
    uint64_t z = (*state += UINT64_C(0x9E3779B97F4A7C15));
    z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
    return z ^ (z >> 31);
}

int64_t pprofio_random_upto(uint64_t *state, int64_t max) {
    if (max <= 0)
        return 0;
    return (int64_t)(pprofio_random_next(state) % ((uint64_t)max + 1));
}

void pprofio_random_fill(void *p, size_t n) {
    uint8_t *r = p;
    size_t got = 0;
    while (got < n) {
        ssize_t k = getrandom(r + got, n - got, 0);
        if (k > 0) {
            got += (size_t)k;
            continue;
        }
        /* No entropy source: fall back to time and address mixing. */
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        uint64_t x = (uint64_t)ts.tv_nsec * UINT64_C(0x9E3779B97F4A7C15) ^ (uint64_t)getpid() ^ (uint64_t)(uintptr_t)p;
        for (; got < n; got++, x = x * UINT64_C(6364136223846793005) + UINT64_C(1442695040888963407))
            r[got] = (uint8_t)(x >> 56);
    }
}
