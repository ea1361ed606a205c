//go:build ignore

/* errors.c: status strings and error formatting. */
#include "errors.h"

#include <stdarg.h>
#include <stdio.h>

int pprofio_set_error(pprofio_error *err, int code, const char *fmt, ...) {
    if (err) {
        err->code = code;
        err->field = PPROFIO_FIELD_NONE;
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
    }
    return code;
}

int pprofio_set_field_error(pprofio_error *err, int code, int field, const char *fmt, ...) {
    if (err) {
        err->code = code;
        err->field = field;
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
    }
    return code;
}

const char *pprofio_version(void) { return PPROFIO_VERSION; }

const char *pprofio_strstatus(int status) {
    switch (status) {
    case PPROFIO_OK: return "ok";
    case PPROFIO_ERR_INVALID: return "invalid argument";
    case PPROFIO_ERR_NOMEM: return "out of memory";
    case PPROFIO_ERR_IO: return "i/o error";
    case PPROFIO_ERR_STATE: return "wrong state";
    case PPROFIO_ERR_FORMAT: return "malformed data";
    case PPROFIO_ERR_LIMIT: return "limit reached";
    case PPROFIO_ERR_CLOSED: return "closed";
    default: return "unknown status";
    }
}

const char *pprofio_profile_name(int type) {
    switch (type) {
    case PPROFIO_PROFILE_CPU: return "cpu";
    case PPROFIO_PROFILE_HEAP: return "heap";
    case PPROFIO_PROFILE_GOROUTINE: return "goroutine";
    case PPROFIO_PROFILE_MUTEX: return "mutex";
    case PPROFIO_PROFILE_BLOCK: return "block";
    case PPROFIO_PROFILE_CUSTOM: return "custom";
    default: return "unknown";
    }
}
