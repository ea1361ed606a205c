/*
 * random.h: the core's randomness. Start jitter and retry backoff draw from
 * a small seeded generator (splitmix64), so tests replay them exactly;
 * batch ids take fresh bytes from the system.
 */
#ifndef PPROFIO_RANDOM_H
#define PPROFIO_RANDOM_H

#include <stddef.h>
#include <stdint.h>

/* pprofio_random_seed returns a seed from the system (getrandom, else time and pid). */
uint64_t pprofio_random_seed(void);

/* pprofio_random_next advances *state (splitmix64) and returns the next value. */
uint64_t pprofio_random_next(uint64_t *state);

/* pprofio_random_upto draws uniformly in [0, max] from *state; max <= 0 gives 0. */
int64_t pprofio_random_upto(uint64_t *state, int64_t max);

/* pprofio_random_fill fills p with n bytes from the system's generator. */
void pprofio_random_fill(void *p, size_t n);

#endif
