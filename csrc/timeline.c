//go:build ignore

/* timeline.c: a cycle's spans as Span messages and as a JSON lines file (see timeline.h). */
#include "timeline.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "alloc.h"
#include "errors.h"
#include "store.h"
#include "sysio.h"

#define TIMELINE_RENAME_TRIES 100

typedef Pprofio__Ingest__V1__Span SpanMsg;
typedef Pprofio__Ingest__V1__Span__TagsEntry SpanTagsEntry;

const char *pprofio_timeline_series_name(const pprofio_spans_series *sr) {
    return sr->overflow ? PPROFIO_TIMELINE_OVERFLOW : sr->name;
}

/* tl_next_tag reads the pair at *p of a "key\0value\0" blob ending at end; 0 when none is left. */
static int tl_next_tag(const char **p, const char *end, const char **key, const char **value) {
    if (*p >= end)
        return 0;
    *key = *p;
    *p += strnlen(*p, (size_t)(end - *p)) + 1;
    if (*p >= end)
        return 0;
    *value = *p;
    *p += strnlen(*p, (size_t)(end - *p)) + 1;
    return *p <= end;
}

static size_t tl_count_tags(const pprofio_spans_series *sr) {
    const char *p = sr->tags, *end = sr->tags + sr->tags_len, *k, *v;
    size_t n = 0;
    while (sr->tags && tl_next_tag(&p, end, &k, &v))
        n++;
    return n;
}

/* ---- the batch's Span messages ---------------------------------------- */

void pprofio_timeline_pb_free(pprofio_timeline_pb *t) {
    pprofio_free(t->spans);
    pprofio_free(t->msgs);
    pprofio_free(t->tags);
    pprofio_free(t->tagp);
    *t = (pprofio_timeline_pb){0};
}

/* tl_fill_span points m (and tags from *tag_at on) at one sample's fields. */
static void tl_fill_span(pprofio_timeline_pb *t, const pprofio_spans_cycle *c, const pprofio_spans_sample *sm, SpanMsg *m,
                      size_t *tag_at) {
    pprofio__ingest__v1__span__init(m);
    const pprofio_spans_series *sr = &c->series[sm->series];
    m->name = (char *)pprofio_timeline_series_name(sr);
    m->start_unix_nano = sm->start_ns;
    m->duration_nanos = sm->dur_ns;
    m->span_id = sm->span_id;
    m->parent_span_id = sm->parent_id;
    m->tags = &t->tagp[*tag_at];
    const char *p = sr->tags, *end = sr->tags + sr->tags_len, *k, *v;
    while (sr->tags && tl_next_tag(&p, end, &k, &v)) {
        SpanTagsEntry *e = &t->tags[*tag_at];
        pprofio__ingest__v1__span__tags_entry__init(e);
        e->key = (char *)k;
        e->value = (char *)v;
        t->tagp[(*tag_at)++] = e;
        m->n_tags++;
    }
}

int pprofio_timeline_pb_make(pprofio_profile *const *ps, size_t n, pprofio_timeline_pb *out) {
    *out = (pprofio_timeline_pb){0};
    size_t n_spans = 0, n_tags = 0;
    for (size_t i = 0; i < n; i++) {
        const pprofio_spans_cycle *c = ps[i]->spans;
        for (size_t j = 0; c && j < c->n_samples; j++) {
            n_spans++;
            n_tags += tl_count_tags(&c->series[c->samples[j].series]);
        }
    }
    if (n_spans == 0)
        return PPROFIO_OK;
    out->spans = pprofio_calloc(n_spans, sizeof *out->spans);
    out->msgs = pprofio_calloc(n_spans, sizeof *out->msgs);
    out->tags = pprofio_calloc(n_tags + 1, sizeof *out->tags);
    out->tagp = pprofio_calloc(n_tags + 1, sizeof *out->tagp);
    if (!out->spans || !out->msgs || !out->tags || !out->tagp) {
        pprofio_timeline_pb_free(out);
        return PPROFIO_ERR_NOMEM;
    }
    size_t tag_at = 0;
    for (size_t i = 0; i < n; i++) {
        const pprofio_spans_cycle *c = ps[i]->spans;
        for (size_t j = 0; c && j < c->n_samples; j++) {
            SpanMsg *m = &out->msgs[out->n_spans];
            tl_fill_span(out, c, &c->samples[j], m, &tag_at);
            out->spans[out->n_spans++] = m;
        }
    }
    return PPROFIO_OK;
}

/* ---- the JSON lines file ---------------------------------------------- */

typedef struct {
    char *p;
    size_t len, cap;
    int failed;
} tl_text;

static void tl_put(tl_text *t, const char *s, size_t n) {
    if (t->failed)
        return;
    if (t->len + n + 1 > t->cap) {
        size_t cap = t->cap ? t->cap : 4096;
        while (cap < t->len + n + 1)
            cap *= 2;
        char *q = pprofio_realloc(t->p, cap);
        if (!q) {
            t->failed = 1;
            return;
        }
        t->p = q;
        t->cap = cap;
    }
    memcpy(t->p + t->len, s, n);
    t->len += n;
}

static void tl_putf(tl_text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void tl_putf(tl_text *t, const char *fmt, ...) {
    char buf[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (n > 0)
        tl_put(t, buf, (size_t)n < sizeof buf ? (size_t)n : sizeof buf - 1);
}

/* tl_put_json_string writes s as a JSON string (control characters escaped). */
static void tl_put_json_string(tl_text *t, const char *s) {
    tl_put(t, "\"", 1);
    for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
        if (*c == '"' || *c == '\\') {
            char e[2] = {'\\', (char)*c};
            tl_put(t, e, 2);
        } else if (*c < 0x20 || *c == 0x7f) {
            tl_putf(t, "\\u%04x", *c);
        } else {
            tl_put(t, (const char *)c, 1);
        }
    }
    tl_put(t, "\"", 1);
}

static void tl_put_tags(tl_text *t, const pprofio_spans_series *sr) {
    tl_put(t, "\"tags\":{", 8);
    const char *p = sr->tags, *end = sr->tags + sr->tags_len, *k, *v;
    int first = 1;
    while (sr->tags && tl_next_tag(&p, end, &k, &v)) {
        if (!first)
            tl_put(t, ",", 1);
        first = 0;
        tl_put_json_string(t, k);
        tl_put(t, ":", 1);
        tl_put_json_string(t, v);
    }
    tl_put(t, "}", 1);
}

static void tl_put_time(tl_text *t, const char *key, int64_t ns) {
    char when[40];
    pprofio_store_format_time(ns, when, sizeof when);
    tl_putf(t, "\"%s\":\"%s\",\"%s_unix_nano\":%" PRId64, key, when, key, ns);
}

static void tl_put_series(tl_text *t, const pprofio_spans_series *sr) {
    tl_put(t, "{\"series\":", 10);
    tl_put_json_string(t, pprofio_timeline_series_name(sr));
    tl_put(t, ",", 1);
    tl_put_tags(t, sr);
    tl_putf(t, ",\"count\":%" PRIu64 ",\"total_ns\":%" PRId64 ",\"min_ns\":%" PRId64 ",\"max_ns\":%" PRId64, sr->count,
         sr->total_ns, sr->min_ns, sr->max_ns);
    tl_putf(t, ",\"p50_ns\":%" PRId64 ",\"p90_ns\":%" PRId64 ",\"p99_ns\":%" PRId64 "}\n",
         pprofio_spans_quantile(sr, 0.5), pprofio_spans_quantile(sr, 0.9), pprofio_spans_quantile(sr, 0.99));
}

static void tl_put_sample(tl_text *t, const pprofio_spans_cycle *c, const pprofio_spans_sample *sm) {
    const pprofio_spans_series *sr = &c->series[sm->series];
    tl_put(t, "{\"span\":", 8);
    tl_put_json_string(t, pprofio_timeline_series_name(sr));
    tl_put(t, ",", 1);
    tl_put_time(t, "start", sm->start_ns);
    tl_putf(t, ",\"duration_ns\":%" PRId64 ",", sm->dur_ns);
    tl_put_tags(t, sr);
    tl_putf(t, ",\"span_id\":\"%016" PRIx64 "\",\"parent_span_id\":\"%016" PRIx64 "\",\"slowest\":%s,\"uniform\":%s}\n",
         sm->span_id, sm->parent_id, sm->slowest ? "true" : "false", sm->uniform ? "true" : "false");
}

/* tl_render writes the whole file's text. */
static void tl_render(tl_text *t, int64_t start_ns, int64_t end_ns, const pprofio_spans_cycle *c) {
    tl_put(t, "{", 1);
    tl_put_time(t, "cycle_start", start_ns);
    tl_put(t, ",", 1);
    tl_put_time(t, "cycle_end", end_ns);
    tl_putf(t, ",\"recorded\":%" PRIu64 ",\"in_timeline\":%zu,\"not_in_timeline\":%" PRIu64, c->recorded, c->n_samples,
         c->unsampled);
    tl_putf(t, ",\"overflowed\":%" PRIu64 ",\"dropped\":%" PRIu64 ",\"stacks_dropped\":%" PRIu64 "}\n", c->overflowed,
         c->dropped, c->stacks_dropped);
    for (size_t i = 0; i < c->n_series; i++)
        tl_put_series(t, &c->series[i]);
    for (size_t i = 0; i < c->n_samples; i++)
        tl_put_sample(t, c, &c->samples[i]);
}

/* tl_place renames the file into dir as stem.jsonl, or stem-1.jsonl, ... when taken. */
static int tl_place(pprofio_atomic_file *f, const char *dir, const char *stem, char **path_out) {
    size_t n = strlen(dir) + strlen(stem) + 32;
    char *dst = pprofio_malloc(n);
    if (!dst)
        return -ENOMEM;
    int rc = -EEXIST;
    for (int i = 0; i < TIMELINE_RENAME_TRIES && rc == -EEXIST; i++) {
        if (i == 0)
            snprintf(dst, n, "%s/%s.jsonl", dir, stem);
        else
            snprintf(dst, n, "%s/%s-%d.jsonl", dir, stem, i);
        rc = pprofio_atomic_rename(f, dst, 0);
    }
    if (rc == 0 && path_out)
        *path_out = dst;
    else
        pprofio_free(dst);
    return rc;
}

static int tl_write_text(const char *dir, const char *stem, const tl_text *t, char **path_out, pprofio_error *err) {
    pprofio_atomic_file f;
    int rc = pprofio_atomic_create(&f, dir);
    if (rc == 0) {
        f.step = "write";
        rc = pprofio_write_all(f.fd, t->p, t->len);
    }
    if (rc == 0)
        rc = pprofio_atomic_sync(&f);
    if (rc == 0)
        rc = tl_place(&f, dir, stem, path_out);
    int code = PPROFIO_OK;
    if (rc != 0)
        code = pprofio_set_error(err, rc == -ENOMEM ? PPROFIO_ERR_NOMEM : PPROFIO_ERR_IO, "timeline: %s in %s: %s",
                                 f.step ? f.step : "create", dir, strerror(-rc));
    pprofio_atomic_end(&f);
    return code;
}

int pprofio_timeline_write(const char *root, const char *service, int64_t start_ns, int64_t end_ns,
                           const pprofio_spans_cycle *c, size_t *written, char **path_out, pprofio_error *err) {
    if (written)
        *written = 0;
    if (path_out)
        *path_out = NULL;
    tl_text t = {0};
    tl_render(&t, start_ns, end_ns, c);
    size_t n = strlen(root) + strlen(service) + 16;
    char *dir = pprofio_malloc(n);
    if (t.failed || !dir) {
        pprofio_free(t.p);
        pprofio_free(dir);
        return pprofio_set_error(err, PPROFIO_ERR_NOMEM, "timeline: out of memory");
    }
    snprintf(dir, n, "%s/%s/timeline", root, service);
    int rc = pprofio_mkdirs(dir, 0700);
    if (rc != 0) {
        rc = pprofio_set_error(err, PPROFIO_ERR_IO, "timeline: create %s: %s", dir, strerror(-rc));
    } else {
        char a[32], b[32], stem[80];
        pprofio_store_format_time(start_ns, a, sizeof a);
        pprofio_store_format_time(end_ns, b, sizeof b);
        snprintf(stem, sizeof stem, "%s_%s", a, b);
        rc = tl_write_text(dir, stem, &t, path_out, err);
    }
    if (rc == 0 && written)
        *written = t.len;
    pprofio_free(t.p);
    pprofio_free(dir);
    return rc;
}
