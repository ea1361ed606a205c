/*
 * fuzz_retry_after.c: a libFuzzer target for the Retry-After parser
 * (pprofio_parse_retry_after in csrc/upload.c), which reads a header the
 * ingest server sends: delta seconds or an HTTP date (curl_getdate).
 *
 * The input, cut at its first NUL, is parsed at several moments. Promises
 * (upload.h): the wait is -1 (does not parse) or in [0, 1 h]; digits alone
 * (with spaces around) are that many seconds, capped at an hour; a date
 * gives a wait that never grows as the moment moves later; the same input
 * at the same moment gives the same answer. Under UBSan, arithmetic that
 * overflows (a date far in the future) is a finding too.
 */
#include <ctype.h>
#include <string.h>

#include "../../csrc/upload.h"
#include "fuzz.h"

#define NS INT64_C(1000000000)
#define HOUR_NS (3600 * NS)

/* digits_value: whether s is only digits between spaces, and their value capped at 3601. */
static int digits_value(const char *s, uint64_t *v) {
    while (isspace((unsigned char)*s))
        s++;
    if (!isdigit((unsigned char)*s))
        return 0;
    *v = 0;
    while (isdigit((unsigned char)*s)) {
        if (*v <= 3600)
            *v = *v * 10 + (uint64_t)(*s - '0');
        s++;
    }
    while (isspace((unsigned char)*s))
        s++;
    return *s == '\0';
}

FUZZ_ENTRY(retry_after) {
    char *s = fuzz_cstr(data, size);
    /* 1970, 2026-12-01, 2100-01-01, and the last nanosecond int64 holds (2262) */
    static const int64_t nows[] = {0, INT64_C(1796083200) * NS, INT64_C(4102444800) * NS, INT64_MAX};
    int64_t prev = INT64_MAX;
    uint64_t secs;
    int digits = digits_value(s, &secs);
    for (size_t i = 0; i < sizeof nows / sizeof nows[0]; i++) {
        int64_t w = pprofio_parse_retry_after(s, nows[i]);
        fuzz_require(w == -1 || (w >= 0 && w <= HOUR_NS));
        fuzz_require(w == pprofio_parse_retry_after(s, nows[i]));
        if (digits)
            fuzz_require(w == (secs > 3600 ? HOUR_NS : (int64_t)secs * NS));
        if (i > 0 && w != -1 && prev != -1)
            fuzz_require(w <= prev); /* a later moment never waits longer */
        if (i > 0)
            fuzz_require((w == -1) == (prev == -1)); /* whether it parses does not depend on the moment */
        prev = w;
    }
    fuzz_require(pprofio_parse_retry_after(NULL, 0) == -1);
    free(s);
    return 0;
}
