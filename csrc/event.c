//go:build ignore

/* event.c: filling a pprofio_event (see event.h). */
#include "event.h"

#include <stdio.h>
#include <string.h>

void pprofio_event_init(pprofio_event *ev, const char *kind, int64_t time_ns, const char *message) {
    memset(ev, 0, sizeof *ev);
    snprintf(ev->kind, sizeof ev->kind, "%s", kind);
    ev->time_ns = time_ns;
    snprintf(ev->message, sizeof ev->message, "%s", message ? message : "");
}

void pprofio_event_attr(pprofio_event *ev, const char *key, const char *value) {
    if (ev->n_attrs >= PPROFIO_EVENT_MAX_ATTRS)
        return;
    snprintf(ev->keys[ev->n_attrs], sizeof ev->keys[0], "%s", key);
    snprintf(ev->values[ev->n_attrs], sizeof ev->values[0], "%s", value);
    ev->n_attrs++;
}

void pprofio_event_attr_u64(pprofio_event *ev, const char *key, uint64_t value) {
    char v[24];
    snprintf(v, sizeof v, "%llu", (unsigned long long)value);
    pprofio_event_attr(ev, key, v);
}
