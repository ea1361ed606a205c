/*
 * delivery.h: batches, from their making to each destination. It owns
 * who is sending and the batches' numbering, and one upload thread per
 * configured destination (destination.h): the pprofio ingest service, and
 * Grafana Pyroscope. Each cycle becomes one UploadRequest for the first
 * and one PushRequest (pyroscope.h) for the second, queued and delivered
 * independently, so one being down never loses or delays the other's.
 * At Stop, what the ledger still holds (losses during the last uploads)
 * goes in one more batch to the ingest service. The output stage has
 * batches made and pushes them; nothing here calls back up.
 */
#ifndef PPROFIO_DELIVERY_H
#define PPROFIO_DELIVERY_H

#include <stdint.h>

#include "buffer.h"
#include "gz.h"
#include "ledger.h"
#include "pprofio.h"

typedef struct pprofio_delivery pprofio_delivery;

/* pprofio_delivery_new opens the spool and the client of each destination cfg names. */
int pprofio_delivery_new(const pprofio_config *cfg, uint64_t seed, const pprofio_clock *clock,
                         pprofio_ledger *ledger, pprofio_delivery **out, pprofio_error *err);

/* pprofio_delivery_free releases it (after close); NULL is fine. Spooled files stay. */
void pprofio_delivery_free(pprofio_delivery *d);

/* pprofio_delivery_start starts one upload thread per destination. */
int pprofio_delivery_start(pprofio_delivery *d);

/*
 * A batch made for delivery: its id, sequence, profile count and gzipped
 * body for the ingest service (empty without one), and the gzipped push
 * for Pyroscope (empty without it, or without profiles) with the start of
 * its oldest window.
 */
typedef struct {
    char id[33];
    uint64_t sequence;
    uint32_t n_profiles;
    pprofio_bytes body;
    pprofio_bytes pyroscope;
    uint64_t pyroscope_stamp;
} pprofio_delivery_batch;

/*
 * pprofio_delivery_make wraps the profiles of one cycle (n of them; none
 * for a batch of events only) and the events that belong with them into a
 * batch in *b, numbered in order. With seg, large profiles' bytes get
 * deflate segments of their own (pprofio_batch_encode_shared); without an
 * ingest destination every seg is empty. The status is the ingest batch's:
 * a Pyroscope push that cannot be made is counted and logged here.
 */
int pprofio_delivery_make(pprofio_delivery *d, pprofio_profile **ps, size_t n, pprofio_deflated *seg,
                          pprofio_delivery_batch *b, pprofio_error *err);

/*
 * pprofio_delivery_push queues each part of a batch made by
 * pprofio_delivery_make (taken, even after a failed make) for its
 * destination. A spool write that fails keeps the batch in memory,
 * counted in spool_errors and logged.
 */
void pprofio_delivery_push(pprofio_delivery *d, pprofio_delivery_batch *b);

/* pprofio_delivery_batch_free releases a batch's bodies (not needed after push). */
void pprofio_delivery_batch_free(pprofio_delivery_batch *b);

/*
 * pprofio_delivery_close has every destination deliver what is queued
 * until deadline_ns (the request in flight is cut short then), then joins
 * the threads; what is left stays spooled.
 */
void pprofio_delivery_close(pprofio_delivery *d, int64_t deadline_ns);

/* pprofio_delivery_gauges fills the spools' gauges of s. */
void pprofio_delivery_gauges(pprofio_delivery *d, pprofio_stats *s);

#endif
