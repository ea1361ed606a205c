/*
 * pbwire.h: the samples of a pprof profile (perftools.profiles.Profile),
 * read and written on the protobuf wire directly. Samples are most of a
 * profile's bytes; decoding each into its own protobuf-c messages (a
 * message, a value array, an id array and a message per label) was most of
 * a delta's time. pprofio_pb_split reads them into flat arrays in one pass
 * and hands every other field (the tables: strings, locations, functions,
 * mappings) on as bytes for protobuf-c; pprofio_pb_put_sample writes one
 * sample back. The input is untrusted: every length is checked against the
 * bytes left, and malformed wire data is an error.
 */
#ifndef PPROFIO_PBWIRE_H
#define PPROFIO_PBWIRE_H

#include <stddef.h>
#include <stdint.h>

#include "gz.h"

typedef struct {
    int64_t key, str, num, num_unit;
} pprofio_pb_label;

/* One sample: ranges of the arrays of its pprofio_pb_samples. */
typedef struct {
    size_t loc_off, n_loc;
    size_t val_off, n_val;
    size_t lab_off, n_lab;
} pprofio_pb_sample;

typedef struct {
    pprofio_pb_sample *s;
    size_t n, cap;
    uint32_t *loc; /* location ids as read (the caller may turn them into indexes); larger than 32 bits is an error */
    size_t n_loc, cap_loc;
    int64_t *val;
    size_t n_val, cap_val;
    pprofio_pb_label *lab;
    size_t n_lab, cap_lab;
    uint8_t *rest; /* every field but the samples, as it was */
    size_t n_rest;
    size_t bytes, limit; /* what the arrays hold, and may */
} pprofio_pb_samples;

/*
 * pprofio_pb_split reads raw (a serialized Profile): its samples into s,
 * every other field's bytes, tags included, into s->rest. s is zeroed
 * first; free it with pprofio_pb_samples_free (on failure too). The arrays
 * may take limit bytes. Returns PPROFIO_OK, PPROFIO_ERR_FORMAT for
 * malformed wire data or arrays past limit, or PPROFIO_ERR_NOMEM.
 */
int pprofio_pb_split(const uint8_t *raw, size_t n, size_t limit, pprofio_pb_samples *s);

void pprofio_pb_samples_free(pprofio_pb_samples *s);

/* pprofio_pb_put_sample appends one Sample (field 2 of Profile) to out. */
int pprofio_pb_put_sample(pprofio_bytes *out, const uint32_t *loc_ids, size_t n_loc, const int64_t *val,
                          size_t n_val, const pprofio_pb_label *lab, size_t n_lab);

#endif
