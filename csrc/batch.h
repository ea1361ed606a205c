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

#include "buffer.h"
#include "event.h"
#include "gz.h"
#include "pprofio.h"

#define PPROFIO_BATCH_ID_LEN 32 /* lowercase hex characters */

/* pprofio_batch_id fills out (33 bytes) with 32 random lowercase hex characters. */
void pprofio_batch_id(char out[PPROFIO_BATCH_ID_LEN + 1]);

/* pprofio_batch_id_valid reports whether s is 32 lowercase hex characters. */
int pprofio_batch_id_valid(const char *s);

/*
 * pprofio_batch_encode writes gzip(UploadRequest) into out. profiles[i]
 * gives each profile's type, window and raw pprof bytes; the sampled spans
 * of a custom profile's span cycle become the request's spans.
 */
int pprofio_batch_encode(const pprofio_source *src, const char *batch_id, uint64_t sequence,
                         pprofio_profile *const *profiles, size_t n_profiles,
                         const pprofio_event *events, size_t n_events, pprofio_bytes *out,
                         pprofio_error *err);

/*
 * pprofio_batch_encode_shared is pprofio_batch_encode that also makes the
 * bytes of each profile of PPROFIO_BATCH_SHARE_MIN bytes or more a deflate
 * segment of out that inflates on its own: seg[i] (n_profiles of them;
 * len 0 for the others) says where profile i's is, so a local file can be
 * made of it (pprofio_gzip_fd_deflated) without deflating it a second time.
 * Smaller profiles are deflated with the rest of the batch: a segment
 * cannot refer back to the profiles before it, and for small profiles of
 * one program that costs more bytes on the wire (measured: +40% for a
 * batch of five profiles of a few KiB) than a second deflate costs CPU.
 */
#define PPROFIO_BATCH_SHARE_MIN (64 * 1024)
int pprofio_batch_encode_shared(const pprofio_source *src, const char *batch_id, uint64_t sequence,
                                pprofio_profile *const *profiles, size_t n_profiles, const pprofio_event *events,
                                size_t n_events, pprofio_bytes *out, pprofio_deflated *seg, pprofio_error *err);

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
