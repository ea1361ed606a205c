/*
 * errors.h: the core's one error convention. Every function that can fail
 * returns a pprofio_status (negative on failure) and, where it takes one,
 * fills a pprofio_error with the same code; system-call wrappers (sysio.h)
 * return -errno, which their callers turn into PPROFIO_ERR_IO with the
 * step and strerror in the message.
 */
#ifndef PPROFIO_ERRORS_H
#define PPROFIO_ERRORS_H

#include "pprofio.h"

/*
 * pprofio_set_error formats msg into err (NULL is fine) and returns code, so
 * that `return pprofio_set_error(err, CODE, ...)` reads as one step.
 */
int pprofio_set_error(pprofio_error *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* pprofio_set_field_error is pprofio_set_error about one config field. */
int pprofio_set_field_error(pprofio_error *err, int code, int field, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#endif
