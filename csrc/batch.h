/*
 * batch.h: one upload. A batch is what one cycle collected (its profiles
 * and events) wrapped in the ingest contract's UploadRequest, serialized
 * with protobuf-c and gzipped once with zlib, as it goes on the wire:
 * protobuf-c packs straight into the deflate stream, so the raw request is
 * never held whole.
 */
#ifndef PPROFIO_BATCH_H
#define PPROFIO_BATCH_H

#include <stddef.h>
#include <stdint.h>

#include "gz.h"
#include "pprofio.h"
#include "spool.h"

#define PPROFIO_BATCH_ID_LEN 32 /* lowercase hex characters */
#define PPROFIO_EVENT_MAX_ATTRS 6

/* An event for the batch (kind and attribute names as in API.md). */
typedef struct {
    char kind[32];
    int64_t time_ns;
    char message[512];
    size_t n_attrs;
    char keys[PPROFIO_EVENT_MAX_ATTRS][24];
    char values[PPROFIO_EVENT_MAX_ATTRS][64];
} pprofio_event;

/* pprofio_event_set fills ev with kind, time and message. */
void pprofio_event_init(pprofio_event *ev, const char *kind, int64_t time_ns, const char *message);
/* pprofio_event_attr adds one attribute; past PPROFIO_EVENT_MAX_ATTRS it is ignored. */
void pprofio_event_attr(pprofio_event *ev, const char *key, const char *value);
void pprofio_event_attr_u64(pprofio_event *ev, const char *key, uint64_t value);

/* pprofio_batch_id fills out (33 bytes) with 32 random lowercase hex characters. */
void pprofio_batch_id(char out[PPROFIO_BATCH_ID_LEN + 1]);

/* pprofio_batch_id_valid reports whether s is 32 lowercase hex characters. */
int pprofio_batch_id_valid(const char *s);

/*
 * pprofio_batch_encode writes gzip(UploadRequest) into out. profiles[i]
 * gives each profile's type, window and raw pprof bytes.
 */
int pprofio_batch_encode(const pprofio_source *src, const char *batch_id, uint64_t sequence,
                         pprofio_profile *const *profiles, size_t n_profiles,
                         const pprofio_event *events, size_t n_events, pprofio_bytes *out,
                         pprofio_error *err);

/*
 * pprofio_batch_split reads a gzipped UploadRequest and writes two new
 * batches, each with a new batch_id and half of the profiles (the events go
 * with the first). Fails with PPROFIO_ERR_INVALID when the batch holds fewer
 * than two profiles, PPROFIO_ERR_FORMAT when it does not decode.
 */
int pprofio_batch_split(const void *gz, size_t n, pprofio_bytes *first, char first_id[33],
                        pprofio_bytes *second, char second_id[33], pprofio_error *err);

/*
 * pprofio_batch_events_only reads a gzipped UploadRequest and writes, with a
 * new batch_id into id, a batch of its events alone (no profile), setting
 * *n_events. With no event, *n_events is 0 and out is left empty.
 */
int pprofio_batch_events_only(const void *gz, size_t n, pprofio_bytes *out, char id[33], size_t *n_events,
                              pprofio_error *err);

/* pprofio_batch_count_profiles decodes a gzipped UploadRequest and counts its profiles. */
int pprofio_batch_count_profiles(const void *gz, size_t n, size_t *count);

#endif
