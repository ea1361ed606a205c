/*
 * event.h: an event of the ingest contract (Event in ingest.proto): what
 * happened to the agent (a drop, a skipped window, a leak), sent with the
 * next batch. Fixed-size, so recording one never allocates.
 */
#ifndef PPROFIO_EVENT_H
#define PPROFIO_EVENT_H

#include <stddef.h>
#include <stdint.h>

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

/* pprofio_event_init fills ev with kind, time and message. */
void pprofio_event_init(pprofio_event *ev, const char *kind, int64_t time_ns, const char *message);
/* pprofio_event_attr adds one attribute; past PPROFIO_EVENT_MAX_ATTRS it is ignored. */
void pprofio_event_attr(pprofio_event *ev, const char *key, const char *value);
void pprofio_event_attr_u64(pprofio_event *ev, const char *key, uint64_t value);

#endif
