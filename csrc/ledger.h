/*
 * ledger.h: what the core has to tell, kept in one place: the counters of
 * pprofio_stats, the losses since the last batch (sent with it as
 * data_dropped events), the other events for the next batch, and the log
 * lines waiting for the Go collector. Every stage records here, and a loss
 * is one call (pprofio_ledger_lose) that counts it in Stats and in the
 * next data_dropped event alike. The ledger calls nothing above it; it is
 * locked inside, so any thread may record.
 */
#ifndef PPROFIO_LEDGER_H
#define PPROFIO_LEDGER_H

#include <stddef.h>
#include <stdint.h>

#include "clock.h"
#include "event.h"
#include "pprofio.h"

typedef struct pprofio_ledger pprofio_ledger;

/* Why data was lost; each counts in its own Stats fields (ledger.c) and, but
 * NO_SINK and Pyroscope's, in a data_dropped event with the contract's reason. */
enum {
    PPROFIO_LOSS_MEMORY,    /* the memory bound (or no memory) */
    PPROFIO_LOSS_INVALID,   /* the runtime's bytes were not gzip */
    PPROFIO_LOSS_WRITE,     /* writing to output_dir failed */
    PPROFIO_LOSS_REJECTED,  /* refused for good by the ingest service */
    PPROFIO_LOSS_TOO_LARGE, /* 413 with one profile */
    PPROFIO_LOSS_SPOOL,     /* the spool's bound */
    PPROFIO_LOSS_CORRUPT,   /* spool files that failed their checks */
    PPROFIO_LOSS_NO_SINK,   /* no output configured */
    PPROFIO_LOSS_SPANS,     /* spans past the span recorder's bound (pprofio_ledger_lose_spans) */
    /* Pyroscope's own queue: counted in its Stats only (the ingest contract has no reason for them) */
    PPROFIO_LOSS_PYRO_REJECTED, /* 400, another 4xx, too large alone, or not encodable */
    PPROFIO_LOSS_PYRO_OLD,      /* older than Pyroscope takes */
    PPROFIO_LOSS_PYRO_SPOOL,    /* its spool's bound, or damaged files */
    PPROFIO_LOSS_N
};

/* The most events one batch carries; more are counted in events_dropped. */
#define PPROFIO_LEDGER_MAX_EVENTS 16
/* The longest log line. */
#define PPROFIO_LOG_LINE 512

/* PPROFIO_STAT names a field of pprofio_stats for pprofio_ledger_add/set. */
#define PPROFIO_STAT(field) offsetof(pprofio_stats, field)

/* pprofio_ledger_new makes a ledger; events_on = 0 keeps no events (nothing uploads them). */
int pprofio_ledger_new(const pprofio_clock *clock, int events_on, pprofio_ledger **out);
void pprofio_ledger_free(pprofio_ledger *l);

/* pprofio_ledger_add adds n to a counter; pprofio_ledger_set sets a signed value. */
void pprofio_ledger_add(pprofio_ledger *l, size_t stat, uint64_t n);
void pprofio_ledger_set(pprofio_ledger *l, size_t stat, int64_t v);

/* pprofio_ledger_lose records a loss: its Stats counters, and its share of the next data_dropped event. */
void pprofio_ledger_lose(pprofio_ledger *l, int reason, uint64_t profiles, uint64_t batches, uint64_t bytes);

/*
 * pprofio_ledger_lose_spans records spans the span recorder could not keep
 * as their own series (past its cardinality or memory bound, or
 * malformed): the next data_dropped event says how many, with reason
 * "span_bound". Stats counts them in the recorder itself.
 */
void pprofio_ledger_lose_spans(pprofio_ledger *l, uint64_t spans);

/* pprofio_ledger_event copies ev into the next batch (when events are on). */
void pprofio_ledger_event(pprofio_ledger *l, const pprofio_event *ev);

/* pprofio_ledger_event_of copies ev into the batch of `cycle` (or a later one). */
void pprofio_ledger_event_of(pprofio_ledger *l, const pprofio_event *ev, int64_t cycle);

/* pprofio_ledger_now is the ledger's clock, for event times. */
int64_t pprofio_ledger_now(const pprofio_ledger *l);

/*
 * pprofio_ledger_take_events turns the losses recorded since the last call
 * into data_dropped events, then moves the pending events that belong in
 * the batch of `cycle` (those of no cycle, and of this cycle or an earlier
 * one) into out (room for PPROFIO_LEDGER_MAX_EVENTS) and returns how many.
 * An event of a later cycle (a skip reported at a cycle's start, before the
 * batch of the cycle before it is made) waits for its own.
 */
size_t pprofio_ledger_take_events(pprofio_ledger *l, int64_t cycle, pprofio_event *out);

/* pprofio_ledger_pending says whether losses or events wait for a batch to carry them. */
int pprofio_ledger_pending(pprofio_ledger *l);

/* pprofio_ledger_log queues a log line for Go; when the ring is full it is counted in logs_dropped. */
void pprofio_ledger_log(pprofio_ledger *l, int level, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* pprofio_ledger_take_log moves the oldest log line into level and msg; 0 when there is none. */
int pprofio_ledger_take_log(pprofio_ledger *l, int *level, char msg[PPROFIO_LOG_LINE]);

/*
 * pprofio_ledger_wait returns when a log line is waiting, when
 * pprofio_ledger_wake was called since the last wait, or at deadline_ns
 * (PPROFIO_FOREVER: never). The Go collector parks here between commands.
 */
void pprofio_ledger_wait(pprofio_ledger *l, int64_t deadline_ns);
void pprofio_ledger_wake(pprofio_ledger *l);

/* pprofio_ledger_read copies the counters. */
void pprofio_ledger_read(pprofio_ledger *l, pprofio_stats *out);

#endif
