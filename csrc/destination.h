/*
 * destination.h: one place batches go, the pprofio ingest service or
 * Grafana Pyroscope, with everything that is its own: its queue (spool.h;
 * Pyroscope's on disk under <spool_dir>/pyroscope), its HTTPS client
 * (upload.h), its retry, backoff and pause state (retry.h), and the
 * counters it keeps in the ledger. Each destination has its own, so one
 * being down, paused or slow never holds back or loses the other's data.
 *
 * Delivery (delivery.h) owns one upload thread per destination and drives
 * it with two calls, as the collector drives the agent: wait returns what
 * to do next (send the oldest batch, make the last report, or end), send
 * posts the oldest batch and applies the answer (pop, drop, split or
 * wait). Nothing here calls back up.
 *
 * A queued Pyroscope push carries, in the spool's sequence field, the
 * start of its oldest window (Unix ns): Pyroscope refuses profiles older
 * than an hour, so such a push is dropped and counted instead of sent.
 */
#ifndef PPROFIO_DESTINATION_H
#define PPROFIO_DESTINATION_H

#include <stdint.h>

#include "clock.h"
#include "gz.h"
#include "ledger.h"
#include "pprofio.h"
#include "upload.h"

typedef struct pprofio_destination pprofio_destination;

/* Pyroscope refuses profiles older than this (its reject_older_than default). */
#define PPROFIO_PYROSCOPE_MAX_AGE_NS (INT64_C(3600) * 1000000000)

/* What the upload thread does next (pprofio_destination_wait). */
enum {
    PPROFIO_DEST_EXIT = 0, /* closing and done (or out of time): end the thread */
    PPROFIO_DEST_SEND = 1, /* send the oldest batch (pprofio_destination_send) */
    PPROFIO_DEST_LAST = 2  /* closing, queue empty, losses wait: make one more batch (ingest only, once) */
};

/*
 * pprofio_destination_new opens the queue and the client of one
 * destination (a pprofio_dest_kind) of cfg. seed draws the backoff.
 */
int pprofio_destination_new(const pprofio_config *cfg, int kind, uint64_t seed, const pprofio_clock *clock,
                            pprofio_ledger *ledger, pprofio_destination **out, pprofio_error *err);

/* pprofio_destination_free releases it (after its thread ended); NULL is fine. Spooled files stay. */
void pprofio_destination_free(pprofio_destination *d);

/*
 * pprofio_destination_off says once (log, stats) that this process cannot
 * upload, and returns why, or NULL when it can.
 */
const char *pprofio_destination_off(pprofio_destination *d);

/*
 * pprofio_destination_push queues a batch (its body is taken) for upload:
 * id, stamp (the ingest sequence, or for Pyroscope its oldest window
 * start), profile count. A spool write that fails keeps the batch in
 * memory, counted in spool_errors and logged.
 */
void pprofio_destination_push(pprofio_destination *d, const char *id, uint64_t stamp, uint32_t n_profiles,
                              pprofio_bytes *body);

/* pprofio_destination_wait blocks until there is something to do and returns a PPROFIO_DEST_* action. */
int pprofio_destination_wait(pprofio_destination *d);

/* pprofio_destination_send posts the oldest batch and applies the answer. */
void pprofio_destination_send(pprofio_destination *d);

/*
 * pprofio_destination_closing asks the thread to deliver what is queued
 * until deadline_ns (the request in flight is cut short then) and end.
 */
void pprofio_destination_closing(pprofio_destination *d, int64_t deadline_ns);

/* pprofio_destination_gauges fills its queue's gauges of s. */
void pprofio_destination_gauges(pprofio_destination *d, pprofio_stats *s);

/* pprofio_destination_finish records the spool's last counts (after the thread ended). */
void pprofio_destination_finish(pprofio_destination *d);

#endif
