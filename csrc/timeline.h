/*
 * timeline.h: a cycle's spans (spans.h) in the two forms they leave the
 * core in, so that neither the batch nor the local store has to know the
 * span recorder's layout:
 *
 *   the batch    the sampled timeline as the contract's Span messages
 *                (UploadRequest.spans): name, start, duration, tags as the
 *                proto map, span_id, parent_span_id. The messages point
 *                into the cycle's own strings: keep the cycle until packed.
 *   local files  OutputDir/<service>/timeline/<start>_<end>.jsonl, JSON
 *                lines a person can read: one line for the cycle's counts,
 *                one per series (count, total, min, max, p50/p90/p99), one
 *                per sampled span.
 *
 * The spans of the overflow series (past the recorder's bound) carry the
 * name PPROFIO_TIMELINE_OVERFLOW.
 */
#ifndef PPROFIO_TIMELINE_H
#define PPROFIO_TIMELINE_H

#include <stddef.h>
#include <stdint.h>

#include "buffer.h"
#include "ingest.pb-c.h"
#include "pprofio.h"
#include "spans.h"

#define PPROFIO_TIMELINE_OVERFLOW "(overflow)"

/* The Span messages of a batch; free with pprofio_timeline_pb_free. */
typedef struct {
    Pprofio__Ingest__V1__Span **spans;
    size_t n_spans;
    /* private */
    Pprofio__Ingest__V1__Span *msgs;
    Pprofio__Ingest__V1__Span__TagsEntry *tags, **tagp;
} pprofio_timeline_pb;

/* pprofio_timeline_series_name is a series' name as the timeline shows it. */
const char *pprofio_timeline_series_name(const pprofio_spans_series *sr);

/*
 * pprofio_timeline_pb_make builds the Span messages of every sampled span
 * of the profiles' span cycles (custom profiles carry one). Fails only
 * with PPROFIO_ERR_NOMEM, leaving out empty.
 */
int pprofio_timeline_pb_make(pprofio_profile *const *ps, size_t n, pprofio_timeline_pb *out);

/* pprofio_timeline_pb_free releases what make allocated (a zeroed one is fine). */
void pprofio_timeline_pb_free(pprofio_timeline_pb *t);

/*
 * pprofio_timeline_write writes the cycle [start_ns, end_ns] as a new
 * JSON lines file under root/service/timeline, atomically; *path_out
 * (if not NULL) gets its path, to be freed with pprofio_free.
 */
int pprofio_timeline_write(const char *root, const char *service, int64_t start_ns, int64_t end_ns,
                           const pprofio_spans_cycle *c, size_t *written, char **path_out, pprofio_error *err);

#endif
