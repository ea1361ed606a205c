//go:build ignore

/* buffer.c: the bounded in-memory queue of profiles (see buffer.h). */
#include "buffer.h"

#include "alloc.h"
#include "spans.h"

pprofio_profile *pprofio_profile_new(int type, int64_t cycle, int64_t start_ns) {
    pprofio_profile *p = pprofio_calloc(1, sizeof *p);
    if (p) {
        p->type = type;
        p->cycle = cycle;
        p->start_ns = start_ns;
        p->end_ns = start_ns;
    }
    return p;
}

void pprofio_profile_free(pprofio_profile *p) {
    if (!p)
        return;
    pprofio_bytes_free(&p->raw);
    pprofio_spans_cycle_free(p->spans);
    pprofio_free(p);
}

void pprofio_buffer_init(pprofio_buffer *s, int64_t limit) {
    *s = (pprofio_buffer){0};
    s->limit = limit;
}

static pprofio_profile *unlink_head(pprofio_buffer *s) {
    pprofio_profile *p = s->head;
    if (p) {
        s->head = p->next;
        if (!s->head)
            s->tail = NULL;
        p->next = NULL;
        s->count--;
        s->queued -= pprofio_profile_cost(p);
    }
    return p;
}

int pprofio_buffer_reserve(pprofio_buffer *s, int64_t delta, uint64_t *evicted) {
    if (delta <= 0) {
        s->used += delta;
        return PPROFIO_OK;
    }
    if (delta > s->limit || s->used - s->queued + delta > s->limit)
        return PPROFIO_ERR_LIMIT; /* evicting every queued profile would not make room */
    while (s->used + delta > s->limit && s->head) {
        pprofio_profile *old = unlink_head(s);
        s->used -= pprofio_profile_cost(old);
        s->evicted_profiles++;
        s->evicted_bytes += old->raw.len;
        if (evicted)
            (*evicted)++;
        pprofio_profile_free(old);
    }
    if (s->used + delta > s->limit)
        return PPROFIO_ERR_LIMIT;
    s->used += delta;
    if (s->used > s->peak)
        s->peak = s->used;
    return PPROFIO_OK;
}

void pprofio_buffer_push(pprofio_buffer *s, pprofio_profile *p) {
    p->next = NULL;
    if (s->tail)
        s->tail->next = p;
    else
        s->head = p;
    s->tail = p;
    s->count++;
    s->queued += pprofio_profile_cost(p);
}

pprofio_profile *pprofio_buffer_pop(pprofio_buffer *s, int64_t before) {
    if (!s->head || s->head->cycle >= before)
        return NULL;
    return unlink_head(s);
}

void pprofio_buffer_adjust(pprofio_buffer *s, int64_t delta) {
    s->used += delta;
    if (s->used > s->peak)
        s->peak = s->used;
}

void pprofio_buffer_done(pprofio_buffer *s, pprofio_profile *p) {
    if (!p)
        return;
    s->used -= pprofio_profile_cost(p);
    pprofio_profile_free(p);
}

void pprofio_buffer_clear(pprofio_buffer *s) {
    pprofio_profile *p;
    while ((p = unlink_head(s)) != NULL)
        pprofio_buffer_done(s, p);
}
