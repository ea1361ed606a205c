//go:build ignore

/* intake.c: writers, the memory bound and sealed cycles (see intake.h). */
#include "intake.h"

#include <pthread.h>
#include <string.h>

#include "alloc.h"
#include "gz.h"
#include "spans.h"

struct pprofio_intake {
    pthread_mutex_t mu;
    pthread_cond_t sealed; /* a cycle was sealed, or everything was */
    pprofio_buffer buffer;
    int64_t sealed_before; /* profiles of cycles before this are ready */
    int all_sealed;
    int64_t evict_logged_cycle;
    pprofio_ledger *ledger;
};

struct pprofio_profile_writer {
    pprofio_intake *in;
    pprofio_profile *p;
    pprofio_gunzip *gz;
    int failed;
};

int pprofio_intake_new(int64_t max_bytes, pprofio_ledger *ledger, pprofio_intake **out) {
    *out = NULL;
    pprofio_intake *in = pprofio_calloc(1, sizeof *in);
    if (!in)
        return PPROFIO_ERR_NOMEM;
    if (pthread_mutex_init(&in->mu, NULL) != 0) {
        pprofio_free(in);
        return PPROFIO_ERR_NOMEM;
    }
    if (pthread_cond_init(&in->sealed, NULL) != 0) {
        pthread_mutex_destroy(&in->mu);
        pprofio_free(in);
        return PPROFIO_ERR_NOMEM;
    }
    pprofio_buffer_init(&in->buffer, max_bytes);
    in->evict_logged_cycle = -1;
    in->ledger = ledger;
    *out = in;
    return PPROFIO_OK;
}

void pprofio_intake_free(pprofio_intake *in) {
    if (!in)
        return;
    pprofio_buffer_clear(&in->buffer);
    pthread_cond_destroy(&in->sealed);
    pthread_mutex_destroy(&in->mu);
    pprofio_free(in);
}

/* reserve accounts delta bytes for a profile of `cycle`, evicting the oldest if it must. */
static int reserve(pprofio_intake *in, int64_t delta, int64_t cycle) {
    pthread_mutex_lock(&in->mu);
    uint64_t evicted = 0, bytes_before = in->buffer.evicted_bytes;
    int rc = pprofio_buffer_reserve(&in->buffer, delta, &evicted);
    uint64_t bytes = in->buffer.evicted_bytes - bytes_before;
    int say = evicted > 0 && in->evict_logged_cycle != cycle;
    if (say)
        in->evict_logged_cycle = cycle;
    pthread_mutex_unlock(&in->mu);
    if (evicted > 0)
        pprofio_ledger_lose(in->ledger, PPROFIO_LOSS_MEMORY, evicted, 0, bytes);
    if (say)
        pprofio_ledger_log(in->ledger, PPROFIO_LOG_WARN,
                           "pprofio: memory bound of %lld bytes reached; dropped the oldest %llu profile(s)",
                           (long long)in->buffer.limit, (unsigned long long)evicted);
    return rc;
}

int pprofio_intake_begin(pprofio_intake *in, int type, int64_t cycle, int64_t start_ns, int flags,
                         pprofio_profile_writer **out) {
    *out = NULL;
    if (type < PPROFIO_PROFILE_CPU || type > PPROFIO_PROFILE_MAX)
        return PPROFIO_ERR_INVALID;
    pprofio_profile_writer *w = pprofio_calloc(1, sizeof *w);
    if (!w)
        return PPROFIO_ERR_NOMEM;
    w->in = in;
    w->p = pprofio_profile_new(type, cycle, start_ns);
    if (w->p)
        w->p->flags = flags;
    int rc = !w->p ? PPROFIO_ERR_NOMEM : (flags & PPROFIO_PROFILE_RAW) ? PPROFIO_OK : pprofio_gunzip_new(&w->gz);
    if (rc != PPROFIO_OK) {
        pprofio_profile_free(w->p);
        pprofio_free(w);
        return rc;
    }
    *out = w;
    return PPROFIO_OK;
}

/* make_room grows the profile's bytes so that inflating can go on, reserving first. */
static int make_room(pprofio_profile_writer *w) {
    pprofio_bytes *raw = &w->p->raw;
    if (raw->cap - raw->len >= PPROFIO_GUNZIP_ROOM)
        return PPROFIO_OK;
    size_t cap = pprofio_bytes_cap_for(raw, PPROFIO_GUNZIP_ROOM);
    if (cap == 0)
        return PPROFIO_ERR_LIMIT;
    int64_t delta = (int64_t)(cap - raw->cap);
    if (reserve(w->in, delta, w->p->cycle) != PPROFIO_OK)
        return PPROFIO_ERR_LIMIT;
    if (pprofio_bytes_resize(raw, cap) != PPROFIO_OK) {
        reserve(w->in, -delta, w->p->cycle);
        return PPROFIO_ERR_NOMEM;
    }
    return PPROFIO_OK;
}

/* drop gives back a failed profile's bytes and records why it was lost. */
static void drop(pprofio_profile_writer *w, int why) {
    pprofio_intake *in = w->in;
    reserve(in, -pprofio_profile_cost(w->p), w->p->cycle);
    const char *name = pprofio_profile_name(w->p->type);
    if (why == PPROFIO_ERR_FORMAT) {
        pprofio_ledger_lose(in->ledger, PPROFIO_LOSS_INVALID, 1, 0, w->p->raw.len);
        pprofio_ledger_log(in->ledger, PPROFIO_LOG_ERROR, "pprofio: dropped a %s profile: its bytes are not gzip",
                           name);
    } else {
        pprofio_ledger_lose(in->ledger, PPROFIO_LOSS_MEMORY, 1, 0, w->p->raw.len);
        pprofio_ledger_log(in->ledger, PPROFIO_LOG_WARN, "pprofio: dropped a %s profile: %s (memory bound %lld bytes)",
                           name, pprofio_strstatus(why), (long long)in->buffer.limit);
    }
    pprofio_bytes_free(&w->p->raw);
}

int pprofio_intake_write(pprofio_profile_writer *w, const void *p, size_t len) {
    if (w->failed)
        return w->failed;
    pprofio_ledger_add(w->in->ledger, PPROFIO_STAT(bytes_received), len);
    const uint8_t *src = p;
    int rc = PPROFIO_OK;
    while (rc == PPROFIO_OK && len > 0) {
        rc = make_room(w);
        if (rc == PPROFIO_OK && !w->gz) { /* raw bytes: copied as they are */
            size_t n = w->p->raw.cap - w->p->raw.len < len ? w->p->raw.cap - w->p->raw.len : len;
            memcpy(w->p->raw.p + w->p->raw.len, src, n);
            w->p->raw.len += n;
            src += n;
            len -= n;
        } else if (rc == PPROFIO_OK) {
            rc = pprofio_gunzip_into(w->gz, &src, &len, &w->p->raw);
        }
    }
    if (rc != PPROFIO_OK) {
        w->failed = rc;
        drop(w, rc);
    }
    return rc;
}

/* queue hands a whole profile to the buffer, where output will find it. */
static void queue(pprofio_intake *in, pprofio_profile *p) {
    pthread_mutex_lock(&in->mu);
    pprofio_buffer_push(&in->buffer, p);
    pthread_cond_signal(&in->sealed);
    pthread_mutex_unlock(&in->mu);
    pprofio_ledger_add(in->ledger, PPROFIO_STAT(profiles_collected), 1);
}

int pprofio_intake_finish(pprofio_profile_writer *w, int ok, int64_t end_ns) {
    if (!w)
        return PPROFIO_OK;
    int rc = w->failed;
    if (rc == PPROFIO_OK && !ok) {
        /* The collector gave up (the runtime refused): nothing to count. */
        reserve(w->in, -pprofio_profile_cost(w->p), w->p->cycle);
    } else if (rc == PPROFIO_OK) {
        rc = w->gz ? pprofio_gunzip_finish(w->gz) : PPROFIO_OK;
        if (rc != PPROFIO_OK) {
            drop(w, rc);
        } else {
            w->p->end_ns = end_ns;
            queue(w->in, w->p);
            w->p = NULL;
        }
    }
    pprofio_gunzip_free(w->gz);
    pprofio_profile_free(w->p);
    pprofio_free(w);
    return rc;
}

void pprofio_intake_attach_spans(pprofio_profile_writer *w, struct pprofio_spans_cycle *c) {
    if (!c)
        return;
    if (!w || !w->p || w->p->spans || w->failed || reserve(w->in, c->bytes, w->p->cycle) != PPROFIO_OK) {
        if (w && c->n_samples > 0) /* the timeline does not fit the memory bound */
            pprofio_ledger_lose_spans(w->in->ledger, c->n_samples);
        pprofio_spans_cycle_free(c);
        return;
    }
    w->p->spans = c;
    w->p->spans_bytes = c->bytes;
}

void pprofio_intake_seal(pprofio_intake *in, int64_t cycle) {
    pthread_mutex_lock(&in->mu);
    if (cycle + 1 > in->sealed_before)
        in->sealed_before = cycle + 1;
    pthread_cond_signal(&in->sealed);
    pthread_mutex_unlock(&in->mu);
}

void pprofio_intake_seal_all(pprofio_intake *in) {
    pthread_mutex_lock(&in->mu);
    in->sealed_before = INT64_MAX;
    in->all_sealed = 1;
    pthread_cond_broadcast(&in->sealed);
    pthread_mutex_unlock(&in->mu);
}

size_t pprofio_intake_take(pprofio_intake *in, pprofio_profile **ps, size_t max) {
    size_t n = 0;
    pthread_mutex_lock(&in->mu);
    for (;;) {
        pprofio_profile *p;
        while (n < max && (p = pprofio_buffer_pop(&in->buffer, in->sealed_before)) != NULL) {
            ps[n++] = p;
            if (!in->buffer.head || in->buffer.head->cycle != p->cycle)
                break; /* the next profile belongs to a later cycle */
        }
        if (n > 0 || in->all_sealed)
            break;
        pthread_cond_wait(&in->sealed, &in->mu);
    }
    pthread_mutex_unlock(&in->mu);
    return n;
}

void pprofio_intake_replace(pprofio_intake *in, pprofio_profile *p, pprofio_bytes *raw) {
    int64_t diff = (int64_t)raw->cap - (int64_t)p->raw.cap;
    pprofio_bytes_free(&p->raw);
    p->raw = *raw;
    *raw = (pprofio_bytes){0};
    pthread_mutex_lock(&in->mu);
    pprofio_buffer_adjust(&in->buffer, diff);
    pthread_mutex_unlock(&in->mu);
}

void pprofio_intake_done(pprofio_intake *in, pprofio_profile *p) {
    pthread_mutex_lock(&in->mu);
    pprofio_buffer_done(&in->buffer, p);
    pthread_mutex_unlock(&in->mu);
}

void pprofio_intake_held(pprofio_intake *in, int64_t *now, int64_t *peak) {
    pthread_mutex_lock(&in->mu);
    *now = in->buffer.used;
    *peak = in->buffer.peak;
    pthread_mutex_unlock(&in->mu);
}
