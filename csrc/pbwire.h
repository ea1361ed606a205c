/*
 * pbwire.h: the samples of a pprof profile (perftools.profiles.Profile),
 * read and written on the protobuf wire directly. Samples are most of a
 * profile's bytes; decoding each into its own protobuf-c messages (a
 * message, a value array, an id array and a message per label) was most of
 * a delta's time. pprofio_pb_split notes where each sample lies in one
 * pass and hands every other field (the tables: strings, locations,
 * functions, mappings) on as bytes for protobuf-c; pprofio_pb_read reads
 * one sample at a time into arrays reused for the next, so that nothing
 * per sample outlives its reading but what the caller keeps; and
 * pprofio_pb_put_sample writes one sample back. The input is untrusted:
 * every length is checked against the bytes left, and malformed wire data
 * is an error.
 */
#ifndef PPROFIO_PBWIRE_H
#define PPROFIO_PBWIRE_H

#include <stddef.h>
#include <stdint.h>

#include "gz.h"

typedef struct {
    int64_t key, str, num, num_unit;
} pprofio_pb_label;

/*
 * Where each sample lies in the input: its message's body, by offset and
 * length (a profile past 4 GiB is refused). 8 bytes a sample, whatever the
 * sample holds: the samples are read one at a time where they lie.
 */
typedef struct {
    uint32_t off, len;
} pprofio_pb_span;

typedef struct {
    const uint8_t *raw; /* the input the spans point into */
    pprofio_pb_span *s;
    size_t n, cap;
    uint8_t *rest; /* every field but the samples, as it was */
    size_t n_rest;
    size_t bytes, limit; /* what the spans hold, and may */
} pprofio_pb_samples;

/* One sample, read: arrays reused from one sample to the next. */
typedef struct {
    uint32_t *loc; /* location ids as read (or indexes: pprofio_pb_read); larger than 32 bits is an error */
    size_t n_loc, cap_loc;
    int64_t *val;
    size_t n_val, cap_val;
    pprofio_pb_label *lab;
    size_t n_lab, cap_lab;
} pprofio_pb_sample;

/*
 * pprofio_pb_split reads raw (a serialized Profile, which must outlive s):
 * where its samples lie into s, every other field's bytes, tags included,
 * into s->rest. s is zeroed first; free it with pprofio_pb_samples_free (on
 * failure too). The spans may take limit bytes. Returns PPROFIO_OK,
 * PPROFIO_ERR_FORMAT for malformed wire data (a sample's inside is read by
 * pprofio_pb_read) or spans past limit, or PPROFIO_ERR_NOMEM.
 */
int pprofio_pb_split(const uint8_t *raw, size_t n, size_t limit, pprofio_pb_samples *s);

void pprofio_pb_samples_free(pprofio_pb_samples *s);

/*
 * pprofio_pb_read reads sample i of s into o (its arrays grow as needed, to
 * at most a few times the sample's bytes). With slot, each location id
 * (at most max) becomes slot[id] - 1, an index, as it is read; an id whose
 * slot is 0 is an error. Returns PPROFIO_OK, PPROFIO_ERR_FORMAT for
 * malformed wire data or an unknown id, PPROFIO_ERR_NOMEM. Free o with
 * pprofio_pb_sample_free.
 */
int pprofio_pb_read(const pprofio_pb_samples *s, size_t i, pprofio_pb_sample *o, const uint32_t *slot, uint64_t max);

void pprofio_pb_sample_free(pprofio_pb_sample *o);

/* pprofio_pb_put_sample appends one Sample (field 2 of Profile) to out. */
int pprofio_pb_put_sample(pprofio_bytes *out, const uint32_t *loc_ids, size_t n_loc, const int64_t *val,
                          size_t n_val, const pprofio_pb_label *lab, size_t n_lab);

#endif
