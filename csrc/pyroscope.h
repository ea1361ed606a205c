/*
 * pyroscope.h: one cycle's profiles as a Grafana Pyroscope push. Pyroscope
 * is a second destination beside the pprofio ingest service, with the same
 * cycle in another encoding: a push.v1.PushRequest (csrc/proto/
 * pyroscope_push.proto) with one series per profile, labelled
 *
 *   __name__      process_cpu, memory, goroutines, mutex, block, custom
 *   service_name  the source's service
 *   <tag>         every tag of the source
 *   __delta__     "false": heap alloc_*, mutex and block are already this
 *                 window's share; the server must not subtract again
 *
 * and the raw pprof bytes as its one sample, with the profile's time set to
 * its window. The request is serialized with protobuf-c, not compressed;
 * the caller may gzip it whole. Pure: no I/O, no clock, no locks.
 */
#ifndef PPROFIO_PYROSCOPE_H
#define PPROFIO_PYROSCOPE_H

#include <stddef.h>
#include <stdint.h>

#include "gz.h"
#include "pprofio.h"

/* The custom profile (user spans), numbered as the ingest contract numbers it. */
#define PPROFIO_PYROSCOPE_CUSTOM 6

/* One profile of a cycle, as the encoder takes it. The bytes are only read. */
typedef struct {
    int type;         /* pprofio_profile_type or PPROFIO_PYROSCOPE_CUSTOM */
    int64_t start_ns; /* the window, Unix ns; a snapshot has start == end */
    int64_t end_ns;
    const uint8_t *pprof; /* serialized pprof, not gzipped */
    size_t len;
} pprofio_pyroscope_profile;

/* pprofio_pyroscope_name returns the __name__ of a profile type, or NULL. */
const char *pprofio_pyroscope_name(int type);

/*
 * pprofio_pyroscope_label_name_valid reports whether a tag key can be a
 * Pyroscope label beside the ones the encoder sets: [A-Za-z_][A-Za-z0-9_.]*,
 * not starting with "__" and not "service_name".
 */
int pprofio_pyroscope_label_name_valid(const char *name);

/*
 * pprofio_pyroscope_encode writes the PushRequest of n profiles from src
 * (service and tags are used) into out, replacing its contents. Fails with
 * PPROFIO_ERR_INVALID (and writes nothing) on an unknown type, a window that
 * ends before it starts, a service name Pyroscope refuses (letters, digits
 * and -._/ only), or a tag whose key is not a label name or whose value is
 * empty or not UTF-8;
 * PPROFIO_ERR_NOMEM when an allocation fails. Nothing leaks either way.
 */
int pprofio_pyroscope_encode(const pprofio_source *src, const pprofio_pyroscope_profile *profiles, size_t n,
                             pprofio_bytes *out, pprofio_error *err);

/*
 * pprofio_pyroscope_split cuts a gzipped PushRequest (as queued) in two
 * gzipped requests holding the first and second half of its series (for a
 * 413 answer), in first and second (empty on entry), with their series
 * counts. A request of one series cannot be split (PPROFIO_ERR_INVALID);
 * bytes that do not inflate or decode give PPROFIO_ERR_FORMAT.
 */
int pprofio_pyroscope_split(const uint8_t *gz, size_t n, pprofio_bytes *first, pprofio_bytes *second,
                            size_t *n_first, size_t *n_second, pprofio_error *err);

#endif
