/* errors.h: filling a pprofio_error. */
#ifndef PPROFIO_ERRORS_H
#define PPROFIO_ERRORS_H

#include "pprofio.h"


/*
 * pprofio_set_error formats msg into err (NULL is fine) and returns code, so
 * that `return pprofio_set_error(err, CODE, ...)` reads as one step.
 */
int pprofio_set_error(pprofio_error *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
