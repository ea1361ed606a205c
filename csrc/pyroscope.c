//go:build ignore

/* pyroscope.c: a cycle's profiles as a Pyroscope PyroPushRequest (see pyroscope.h). */
#include "pyroscope.h"

#include <string.h>

#include "alloc.h"
#include "errors.h"
#include "pyroscope_push.pb-c.h"

typedef Push__V1__PushRequest PyroPushRequest;
typedef Push__V1__RawProfileSeries PyroSeries;
typedef Push__V1__RawSample PyroSample;
typedef Types__V1__LabelPair PyroLabel;

/* Labels each series carries besides the tags. */
#define FIXED_LABELS 3
/* Room for the time fields appended to a sample: two tags and two varints. */
#define TIME_FIELDS_MAX 22

/* Field numbers of perftools.profiles.Profile (csrc/proto/profile.proto). */
#define PPROF_TIME_NANOS 9
#define PPROF_DURATION_NANOS 10

const char *pprofio_pyroscope_name(int type) {
    switch (type) {
    case PPROFIO_PROFILE_CPU:
        return "process_cpu";
    case PPROFIO_PROFILE_HEAP:
        return "memory";
    case PPROFIO_PROFILE_GOROUTINE:
        return "goroutines";
    case PPROFIO_PROFILE_MUTEX:
        return "mutex";
    case PPROFIO_PROFILE_BLOCK:
        return "block";
    case PPROFIO_PYROSCOPE_CUSTOM:
        return "custom";
    default:
        return NULL;
    }
}

static int pyro_is_alpha_(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }

int pprofio_pyroscope_label_name_valid(const char *name) {
    if (!name || !pyro_is_alpha_(name[0]) || strncmp(name, "__", 2) == 0 || strcmp(name, "service_name") == 0)
        return 0;
    for (const char *p = name; *p; p++)
        if (!pyro_is_alpha_(*p) && !(*p >= '0' && *p <= '9') && *p != '.')
            return 0;
    return 1;
}

/* pyro_utf8_valid reports whether s is well-formed UTF-8 (Pyroscope's rule for label values). */
static int pyro_utf8_valid(const char *s) {
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        unsigned c = *p++;
        int more = c < 0x80 ? 0 : (c >> 5) == 6 ? 1 : (c >> 4) == 14 ? 2 : (c >> 3) == 30 ? 3 : -1;
        if (more < 0 || (more == 1 && c < 0xc2) || (c == 0xf4 && *p > 0x8f) || c > 0xf4)
            return 0;
        unsigned lo = 0x80, hi = 0xbf; /* the second byte's range, narrower after e0, ed, f0 */
        if (c == 0xe0)
            lo = 0xa0;
        else if (c == 0xed)
            hi = 0x9f;
        else if (c == 0xf0)
            lo = 0x90;
        for (int i = 0; i < more; i++, p++) {
            if (*p < (i == 0 ? lo : 0x80) || *p > (i == 0 ? hi : 0xbf))
                return 0;
        }
    }
    return 1;
}

/* pyro_service_valid: letters, digits and -._/ (Pyroscope's service name rule). */
static int pyro_service_valid(const char *s) {
    if (!s || !*s)
        return 0;
    for (; *s; s++)
        if (!pyro_is_alpha_(*s) && !(*s >= '0' && *s <= '9') && !strchr("-./", *s))
            return 0;
    return 1;
}

/* pyro_check refuses what Pyroscope would refuse, before anything is allocated. */
static int pyro_check(const pprofio_source *src, const pprofio_pyroscope_profile *ps, size_t n, pprofio_error *err) {
    if (!src->service || !src->service[0])
        return pprofio_set_error(err, PPROFIO_ERR_INVALID, "pyroscope: no service name");
    if (!pyro_service_valid(src->service))
        return pprofio_set_error(err, PPROFIO_ERR_INVALID, "pyroscope: \"%.64s\" is not a service name", src->service);
    for (size_t i = 0; i < src->n_tags; i++) {
        if (!pprofio_pyroscope_label_name_valid(src->tag_keys[i]))
            return pprofio_set_error(err, PPROFIO_ERR_INVALID, "pyroscope: tag %zu: \"%.64s\" is not a label name", i,
                                     src->tag_keys[i] ? src->tag_keys[i] : "(null)");
        if (!src->tag_values[i] || !src->tag_values[i][0])
            return pprofio_set_error(err, PPROFIO_ERR_INVALID, "pyroscope: tag \"%.64s\" has no value",
                                     src->tag_keys[i]);
        if (!pyro_utf8_valid(src->tag_values[i]))
            return pprofio_set_error(err, PPROFIO_ERR_INVALID, "pyroscope: tag \"%.64s\": its value is not UTF-8",
                                     src->tag_keys[i]);
    }
    for (size_t i = 0; i < n; i++) {
        if (!pprofio_pyroscope_name(ps[i].type))
            return pprofio_set_error(err, PPROFIO_ERR_INVALID, "pyroscope: profile %zu: unknown type %d", i, ps[i].type);
        if (ps[i].end_ns < ps[i].start_ns)
            return pprofio_set_error(err, PPROFIO_ERR_INVALID, "pyroscope: profile %zu: its window ends before it starts",
                                     i);
        if (ps[i].len > 0 && !ps[i].pprof)
            return pprofio_set_error(err, PPROFIO_ERR_INVALID, "pyroscope: profile %zu: no bytes", i);
    }
    return PPROFIO_OK;
}

/* pyro_put_varint writes v as a protobuf varint at p and returns its length. */
static size_t pyro_put_varint(uint8_t *p, uint64_t v) {
    size_t n = 0;
    do {
        uint8_t b = v & 0x7f;
        v >>= 7;
        p[n++] = b | (v ? 0x80 : 0);
    } while (v);
    return n;
}

/* pyro_get_varint reads a varint at p[*at] (< n) and advances *at; 0 when malformed. */
static int pyro_get_varint(const uint8_t *p, size_t n, size_t *at, uint64_t *v) {
    *v = 0;
    for (int shift = 0; shift < 64 && *at < n; shift += 7) {
        uint8_t b = p[(*at)++];
        *v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80))
            return 1;
    }
    return 0;
}

/* pyro_field_end returns where the top-level field starting at `at` ends, or 0 when malformed. */
static size_t pyro_field_end(const uint8_t *p, size_t n, size_t at, uint64_t *field) {
    uint64_t key, len;
    if (!pyro_get_varint(p, n, &at, &key))
        return 0;
    *field = key >> 3;
    switch (key & 7) {
    case 0:
        return pyro_get_varint(p, n, &at, &len) ? at : 0;
    case 1:
        return n - at >= 8 ? at + 8 : 0;
    case 2:
        return pyro_get_varint(p, n, &at, &len) && len <= n - at ? at + (size_t)len : 0;
    case 5:
        return n - at >= 4 ? at + 4 : 0;
    default:
        return 0;
    }
}

/*
 * pyro_with_window copies a profile's pprof into dst with its time fields
 * (time_nanos, duration_nanos) replaced by the window. Only the top level
 * is walked: every other field is copied as it is. Bytes that do not walk
 * as protobuf are copied unchanged. Returns the length written.
 */
static size_t pyro_with_window(uint8_t *dst, const pprofio_pyroscope_profile *p) {
    const uint8_t *src = p->pprof;
    size_t n = 0, at = 0;
    while (at < p->len) {
        uint64_t field;
        size_t end = pyro_field_end(src, p->len, at, &field);
        if (end == 0) { /* not protobuf: leave it as it came */
            if (p->len > 0)
                memcpy(dst, src, p->len);
            return p->len;
        }
        if (field != PPROF_TIME_NANOS && field != PPROF_DURATION_NANOS) {
            memcpy(dst + n, src + at, end - at);
            n += end - at;
        }
        at = end;
    }
    n += pyro_put_varint(dst + n, PPROF_TIME_NANOS << 3);
    n += pyro_put_varint(dst + n, (uint64_t)p->start_ns);
    if (p->end_ns > p->start_ns) {
        n += pyro_put_varint(dst + n, PPROF_DURATION_NANOS << 3);
        n += pyro_put_varint(dst + n, (uint64_t)(p->end_ns - p->start_ns));
    }
    return n;
}

/* The request's messages, in arrays allocated and freed together. */
typedef struct {
    PyroSeries *series;
    PyroSeries **seriesp;
    PyroSample *samples;
    PyroSample **samplesp;
    PyroLabel *labels;  /* n_labels per series */
    PyroLabel **labelp;
    uint8_t *bytes; /* every sample's pprof and window */
} pyro_parts;

static void pyro_parts_free(pyro_parts *m) {
    pprofio_free(m->series);
    pprofio_free(m->seriesp);
    pprofio_free(m->samples);
    pprofio_free(m->samplesp);
    pprofio_free(m->labels);
    pprofio_free(m->labelp);
    pprofio_free(m->bytes);
}

static int pyro_parts_alloc(pyro_parts *m, size_t n, size_t n_labels, size_t n_bytes) {
    m->series = pprofio_calloc(n + 1, sizeof *m->series);
    m->seriesp = pprofio_calloc(n + 1, sizeof *m->seriesp);
    m->samples = pprofio_calloc(n + 1, sizeof *m->samples);
    m->samplesp = pprofio_calloc(n + 1, sizeof *m->samplesp);
    m->labels = pprofio_calloc(n * n_labels + 1, sizeof *m->labels);
    m->labelp = pprofio_calloc(n * n_labels + 1, sizeof *m->labelp);
    m->bytes = pprofio_malloc(n_bytes + 1);
    if (m->series && m->seriesp && m->samples && m->samplesp && m->labels && m->labelp && m->bytes)
        return PPROFIO_OK;
    pyro_parts_free(m);
    return PPROFIO_ERR_NOMEM;
}

static void pyro_set_label(PyroLabel *l, PyroLabel **slot, const char *name, const char *value) {
    types__v1__label_pair__init(l);
    l->name = (char *)name;
    l->value = (char *)value;
    *slot = l;
}

/* pyro_fill_series builds series i: its labels and its one sample. */
static void pyro_fill_series(pyro_parts *m, size_t i, const pprofio_source *src, const pprofio_pyroscope_profile *p,
                        size_t n_labels, uint8_t **bytes) {
    PyroLabel *l = &m->labels[i * n_labels];
    PyroLabel **lp = &m->labelp[i * n_labels];
    size_t k = 0;
    pyro_set_label(&l[k], &lp[k], "__name__", pprofio_pyroscope_name(p->type));
    k++;
    pyro_set_label(&l[k], &lp[k], "service_name", src->service);
    k++;
    for (size_t t = 0; t < src->n_tags; t++, k++)
        pyro_set_label(&l[k], &lp[k], src->tag_keys[t], src->tag_values[t]);
    pyro_set_label(&l[k], &lp[k], "__delta__", "false");

    PyroSample *s = &m->samples[i];
    push__v1__raw_sample__init(s);
    s->raw_profile.data = *bytes;
    s->raw_profile.len = pyro_with_window(*bytes, p);
    *bytes += s->raw_profile.len;
    m->samplesp[i] = s;

    PyroSeries *se = &m->series[i];
    push__v1__raw_profile_series__init(se);
    se->labels = lp;
    se->n_labels = n_labels;
    se->samples = &m->samplesp[i];
    se->n_samples = 1;
    m->seriesp[i] = se;
}

int pprofio_pyroscope_encode(const pprofio_source *src, const pprofio_pyroscope_profile *profiles, size_t n,
                             pprofio_bytes *out, pprofio_error *err) {
    int rc = pyro_check(src, profiles, n, err);
    if (rc != PPROFIO_OK)
        return rc;
    size_t n_labels = FIXED_LABELS + src->n_tags, n_bytes = 0;
    for (size_t i = 0; i < n; i++)
        n_bytes += profiles[i].len + TIME_FIELDS_MAX;
    pyro_parts m = {0};
    if (pyro_parts_alloc(&m, n, n_labels, n_bytes) != PPROFIO_OK)
        return pprofio_set_error(err, PPROFIO_ERR_NOMEM, "pyroscope: out of memory");
    uint8_t *bytes = m.bytes;
    for (size_t i = 0; i < n; i++)
        pyro_fill_series(&m, i, src, &profiles[i], n_labels, &bytes);
    PyroPushRequest req = PUSH__V1__PUSH_REQUEST__INIT;
    req.series = m.seriesp;
    req.n_series = n;

    size_t size = push__v1__push_request__get_packed_size(&req);
    out->len = 0;
    rc = pprofio_bytes_grow(out, size, NULL, NULL);
    if (rc == PPROFIO_OK)
        out->len = push__v1__push_request__pack(&req, out->p);
    else
        pprofio_set_error(err, rc, "pyroscope: cannot hold a %zu-byte request: %s", size, pprofio_strstatus(rc));
    pyro_parts_free(&m);
    return rc;
}

/* pyro_pack_gz serializes the series [from, to) of req and gzips them into out. */
static int pyro_pack_gz(const PyroPushRequest *req, size_t from, size_t to, pprofio_bytes *out) {
    PyroPushRequest part = PUSH__V1__PUSH_REQUEST__INIT;
    part.series = req->series + from;
    part.n_series = to - from;
    pprofio_bytes raw = {0};
    int rc = pprofio_bytes_grow(&raw, push__v1__push_request__get_packed_size(&part), NULL, NULL);
    if (rc == PPROFIO_OK) {
        raw.len = push__v1__push_request__pack(&part, raw.p);
        rc = pprofio_gzip_bytes(raw.p, raw.len, out);
    }
    pprofio_bytes_free(&raw);
    return rc;
}

/* protobuf-c allocates through pprofio_malloc (tests can fail it); *data counts failures. */
static void *pyro_pb_alloc(void *data, size_t n) {
    void *p = pprofio_malloc(n);
    if (!p && data)
        (*(int *)data)++;
    return p;
}

static void pyro_pb_free(void *data, void *p) {
    (void)data;
    pprofio_free(p);
}

int pprofio_pyroscope_split(const uint8_t *gz, size_t n, pprofio_bytes *first, pprofio_bytes *second,
                            size_t *n_first, size_t *n_second, pprofio_error *err) {
    *n_first = *n_second = 0;
    pprofio_bytes raw = {0};
    int rc = pprofio_gunzip_bytes(gz, n, &raw);
    if (rc != PPROFIO_OK) {
        pprofio_bytes_free(&raw);
        return pprofio_set_error(err, rc, "pyroscope: the push does not inflate: %s", pprofio_strstatus(rc));
    }
    int oom = 0;
    ProtobufCAllocator a = {pyro_pb_alloc, pyro_pb_free, &oom};
    PyroPushRequest *req = push__v1__push_request__unpack(&a, raw.len, raw.p);
    pprofio_bytes_free(&raw);
    if (!req && oom)
        return pprofio_set_error(err, PPROFIO_ERR_NOMEM, "pyroscope: out of memory decoding a push");
    if (!req)
        return pprofio_set_error(err, PPROFIO_ERR_FORMAT, "pyroscope: the push does not decode");
    if (req->n_series < 2) {
        push__v1__push_request__free_unpacked(req, &a);
        return pprofio_set_error(err, PPROFIO_ERR_INVALID, "pyroscope: one series cannot be split");
    }
    size_t half = req->n_series / 2;
    rc = pyro_pack_gz(req, 0, half, first);
    if (rc == PPROFIO_OK)
        rc = pyro_pack_gz(req, half, req->n_series, second);
    if (rc == PPROFIO_OK) {
        *n_first = half;
        *n_second = req->n_series - half;
    } else {
        pprofio_bytes_free(first);
        pprofio_bytes_free(second);
        pprofio_set_error(err, rc, "pyroscope: cannot split a push: %s", pprofio_strstatus(rc));
    }
    push__v1__push_request__free_unpacked(req, &a);
    return rc;
}
