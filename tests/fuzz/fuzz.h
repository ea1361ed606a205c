/*
 * fuzz.h: what the libFuzzer targets in tests/fuzz share, so that each one
 * is also compiled into the Criterion suite (tests/c/test_fuzz.c), which
 * replays the inputs kept in tests/fuzz/regressions/<target>/.
 *
 *   FUZZ_ENTRY(name)   the target's entry point: LLVMFuzzerTestOneInput in a
 *                      fuzz build, fuzz_<name>_one when FUZZ_REPLAY is defined
 *   fuzz_require(c)    a promise of the code under test: when it does not
 *                      hold, print it and abort (a finding, or a failed test)
 */
#ifndef PPROFIO_FUZZ_H
#define PPROFIO_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#ifdef FUZZ_REPLAY
#define FUZZ_ENTRY(name) int fuzz_##name##_one(const uint8_t *data, size_t size)
#else
#define FUZZ_ENTRY(name) int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
#endif

#define fuzz_require(cond)                                                                         \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "fuzz: broken promise: %s (%s:%d)\n", #cond, __FILE__, __LINE__);     \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

/* fuzz_cstr copies n bytes into a new NUL-terminated string (free it). */
static inline char *fuzz_cstr(const uint8_t *p, size_t n) {
    char *s = malloc(n + 1);
    fuzz_require(s != NULL);
    for (size_t i = 0; i < n; i++)
        s[i] = (char)p[i];
    s[n] = '\0';
    return s;
}

#endif
