/*
 * alloc.h: the core's allocator. Every allocation in the core (and zlib's,
 * through its zalloc hook) goes through here so that tests can make the
 * n-th allocation fail and prove each out-of-memory path.
 */
#ifndef PPROFIO_ALLOC_H
#define PPROFIO_ALLOC_H

#include <stddef.h>

void *pprofio_malloc(size_t n);
void *pprofio_calloc(size_t count, size_t size);
void *pprofio_realloc(void *p, size_t n);
void pprofio_free(void *p);
char *pprofio_strdup(const char *s);

/*
 * pprofio_alloc_fail_after makes the allocation after the next n succeed
 * calls fail (n = 0: the very next one fails); n < 0 turns failures off.
 * For tests only.
 */
void pprofio_alloc_fail_after(long n);

/* pprofio_alloc_calls counts allocation calls made so far. For tests. */
long pprofio_alloc_calls(void);

#endif
