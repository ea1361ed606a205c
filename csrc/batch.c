//go:build ignore

/* batch.c: UploadRequest encoding, splitting and counting (see batch.h). */
#include "batch.h"

#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "alloc.h"
#include "errors.h"
#include "ingest.pb-c.h"

#define STAGE_SIZE 16384
#define OUT_CHUNK 65536

typedef Pprofio__Ingest__V1__UploadRequest UploadRequest;
typedef Pprofio__Ingest__V1__Source Source;
typedef Pprofio__Ingest__V1__Source__TagsEntry TagsEntry;
typedef Pprofio__Ingest__V1__Profile Profile;
typedef Pprofio__Ingest__V1__Event Event;
typedef Pprofio__Ingest__V1__Event__AttributesEntry AttrEntry;

/* ---- events and ids --------------------------------------------------- */

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

void pprofio_batch_id(char out[PPROFIO_BATCH_ID_LEN + 1]) {
    uint8_t r[PPROFIO_BATCH_ID_LEN / 2];
    size_t got = 0;
    while (got < sizeof r) {
        ssize_t n = getrandom(r + got, sizeof r - got, 0);
        if (n > 0) {
            got += (size_t)n;
            continue;
        }
        /* No entropy source: fall back to time and address mixing. */
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        uint64_t x = (uint64_t)ts.tv_nsec * 0x9E3779B97F4A7C15ull ^ (uint64_t)getpid() ^ (uint64_t)(uintptr_t)out;
        for (; got < sizeof r; got++, x = x * 6364136223846793005ull + 1442695040888963407ull)
            r[got] = (uint8_t)(x >> 56);
    }
    static const char hex[] = "0123456789abcdef";
    for (size_t i = 0; i < sizeof r; i++) {
        out[2 * i] = hex[r[i] >> 4];
        out[2 * i + 1] = hex[r[i] & 15];
    }
    out[PPROFIO_BATCH_ID_LEN] = '\0';
}

int pprofio_batch_id_valid(const char *s) {
    if (!s || strlen(s) != PPROFIO_BATCH_ID_LEN)
        return 0;
    for (const char *p = s; *p; p++)
        if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
            return 0;
    return 1;
}

/* ---- protobuf-c through the core's allocator --------------------------- */

/* data, when not NULL, is an int set to 1 when an allocation fails. */
static void *pb_alloc(void *data, size_t n) {
    void *p = pprofio_malloc(n);
    if (!p && data)
        *(int *)data = 1;
    return p;
}

static void pb_free(void *data, void *p) {
    (void)data;
    pprofio_free(p);
}

static ProtobufCAllocator pb_allocator = {pb_alloc, pb_free, NULL};

static voidpf z_alloc(voidpf opaque, uInt items, uInt size) {
    (void)opaque;
    return pprofio_calloc(items, size);
}

static void z_free(voidpf opaque, voidpf p) {
    (void)opaque;
    pprofio_free(p);
}

/* ---- a ProtobufCBuffer that deflates what protobuf-c packs ------------- */

typedef struct {
    ProtobufCBuffer base;
    z_stream zs;
    pprofio_bytes *out;
    uint8_t stage[STAGE_SIZE];
    size_t staged;
    int rc;
} gz_buffer;

static void gz_run(gz_buffer *b, const uint8_t *in, size_t n, int flush) {
    b->zs.next_in = (Bytef *)in;
    b->zs.avail_in = (uInt)n;
    do {
        if (pprofio_bytes_grow(b->out, OUT_CHUNK, NULL, NULL) != PPROFIO_OK) {
            b->rc = PPROFIO_ERR_NOMEM;
            return;
        }
        size_t room = b->out->cap - b->out->len;
        b->zs.next_out = b->out->p + b->out->len;
        b->zs.avail_out = (uInt)room;
        int zrc = deflate(&b->zs, flush);
        b->out->len += room - b->zs.avail_out;
        if (zrc == Z_STREAM_ERROR) {
            b->rc = PPROFIO_ERR_INVALID;
            return;
        }
    } while (b->zs.avail_out == 0 || b->zs.avail_in > 0);
}

static void gz_append(ProtobufCBuffer *base, size_t len, const uint8_t *data) {
    gz_buffer *b = (gz_buffer *)base;
    while (len > 0 && b->rc == PPROFIO_OK) {
        if (b->staged == STAGE_SIZE || (b->staged > 0 && len >= STAGE_SIZE)) {
            gz_run(b, b->stage, b->staged, Z_NO_FLUSH);
            b->staged = 0;
        }
        if (len >= STAGE_SIZE) { /* big fields (the pprof bytes) go straight in */
            size_t take = len > (1u << 30) ? (1u << 30) : len;
            gz_run(b, data, take, Z_NO_FLUSH);
            data += take;
            len -= take;
            continue;
        }
        size_t take = STAGE_SIZE - b->staged < len ? STAGE_SIZE - b->staged : len;
        memcpy(b->stage + b->staged, data, take);
        b->staged += take;
        data += take;
        len -= take;
    }
}

/* pack_gzip serializes msg and gzips it into out. */
static int pack_gzip(const ProtobufCMessage *msg, pprofio_bytes *out) {
    gz_buffer *b = pprofio_calloc(1, sizeof *b);
    if (!b)
        return PPROFIO_ERR_NOMEM;
    b->base.append = gz_append;
    b->out = out;
    b->zs.zalloc = z_alloc;
    b->zs.zfree = z_free;
    if (deflateInit2(&b->zs, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
        pprofio_free(b);
        return PPROFIO_ERR_NOMEM;
    }
    protobuf_c_message_pack_to_buffer(msg, &b->base);
    if (b->rc == PPROFIO_OK)
        gz_run(b, b->stage, b->staged, Z_FINISH);
    int rc = b->rc;
    deflateEnd(&b->zs);
    pprofio_free(b);
    return rc;
}

/* ---- encoding --------------------------------------------------------- */

static char *nz(const char *s) { return (char *)(s ? s : ""); }

int pprofio_batch_encode(const pprofio_source *src, const char *batch_id, uint64_t sequence,
                         pprofio_profile *const *profiles, size_t n_profiles,
                         const pprofio_event *events, size_t n_events, pprofio_bytes *out,
                         pprofio_error *err) {
    int rc = PPROFIO_ERR_NOMEM;
    size_t n_attrs = 0;
    for (size_t i = 0; i < n_events; i++)
        n_attrs += events[i].n_attrs;
    /* Every message lives in a few arrays freed together at the end. */
    TagsEntry *tags = pprofio_calloc(src->n_tags + 1, sizeof *tags);
    TagsEntry **tagp = pprofio_calloc(src->n_tags + 1, sizeof *tagp);
    Profile *prof = pprofio_calloc(n_profiles + 1, sizeof *prof);
    Profile **profp = pprofio_calloc(n_profiles + 1, sizeof *profp);
    Event *ev = pprofio_calloc(n_events + 1, sizeof *ev);
    Event **evp = pprofio_calloc(n_events + 1, sizeof *evp);
    AttrEntry *attrs = pprofio_calloc(n_attrs + 1, sizeof *attrs);
    AttrEntry **attrp = pprofio_calloc(n_attrs + 1, sizeof *attrp);
    if (!tags || !tagp || !prof || !profp || !ev || !evp || !attrs || !attrp) {
        pprofio_set_error(err, rc, "batch: out of memory");
        goto out;
    }
    Source source = PPROFIO__INGEST__V1__SOURCE__INIT;
    source.service = nz(src->service);
    source.hostname = nz(src->hostname);
    source.pid = src->pid;
    source.instance_id = nz(src->instance_id);
    source.agent_version = nz(src->agent_version);
    source.runtime_version = nz(src->runtime_version);
    source.os = nz(src->os);
    source.arch = nz(src->arch);
    source.process_start_unix_nano = src->process_start_ns;
    for (size_t i = 0; i < src->n_tags; i++) {
        pprofio__ingest__v1__source__tags_entry__init(&tags[i]);
        tags[i].key = nz(src->tag_keys[i]);
        tags[i].value = nz(src->tag_values[i]);
        tagp[i] = &tags[i];
    }
    source.n_tags = src->n_tags;
    source.tags = tagp;

    UploadRequest req = PPROFIO__INGEST__V1__UPLOAD_REQUEST__INIT;
    req.batch_id = (char *)batch_id;
    req.sequence = sequence;
    req.source = &source;
    for (size_t i = 0; i < n_profiles; i++) {
        pprofio__ingest__v1__profile__init(&prof[i]);
        prof[i].type = (Pprofio__Ingest__V1__ProfileType)profiles[i]->type;
        prof[i].start_unix_nano = profiles[i]->start_ns;
        prof[i].end_unix_nano = profiles[i]->end_ns;
        prof[i].pprof.data = profiles[i]->raw.p;
        prof[i].pprof.len = profiles[i]->raw.len;
        prof[i].delta = profiles[i]->delta;
        profp[i] = &prof[i];
    }
    req.n_profiles = n_profiles;
    req.profiles = profp;
    size_t a = 0;
    for (size_t i = 0; i < n_events; i++) {
        pprofio__ingest__v1__event__init(&ev[i]);
        ev[i].kind = (char *)events[i].kind;
        ev[i].time_unix_nano = events[i].time_ns;
        ev[i].message = (char *)events[i].message;
        ev[i].attributes = &attrp[a];
        ev[i].n_attributes = events[i].n_attrs;
        for (size_t k = 0; k < events[i].n_attrs; k++, a++) {
            pprofio__ingest__v1__event__attributes_entry__init(&attrs[a]);
            attrs[a].key = (char *)events[i].keys[k];
            attrs[a].value = (char *)events[i].values[k];
            attrp[a] = &attrs[a];
        }
        evp[i] = &ev[i];
    }
    req.n_events = n_events;
    req.events = evp;
    out->len = 0;
    rc = pack_gzip(&req.base, out);
    if (rc != PPROFIO_OK)
        pprofio_set_error(err, rc, "batch: cannot encode: %s", pprofio_strstatus(rc));
out:
    pprofio_free(tags);
    pprofio_free(tagp);
    pprofio_free(prof);
    pprofio_free(profp);
    pprofio_free(ev);
    pprofio_free(evp);
    pprofio_free(attrs);
    pprofio_free(attrp);
    return rc;
}

/* ---- decoding: split and count ---------------------------------------- */

static int decode(const void *gz, size_t n, UploadRequest **req, pprofio_bytes *raw) {
    *req = NULL;
    int rc = pprofio_gunzip_bytes(gz, n, raw);
    if (rc != PPROFIO_OK)
        return rc;
    /* protobuf-c answers NULL both for bad bytes and for a failed allocation. */
    int oom = 0;
    ProtobufCAllocator a = {pb_alloc, pb_free, &oom};
    *req = pprofio__ingest__v1__upload_request__unpack(&a, raw->len, raw->p);
    return *req ? PPROFIO_OK : oom ? PPROFIO_ERR_NOMEM : PPROFIO_ERR_FORMAT;
}

int pprofio_batch_count_profiles(const void *gz, size_t n, size_t *count) {
    pprofio_bytes raw = {0};
    UploadRequest *req;
    int rc = decode(gz, n, &req, &raw);
    if (rc == PPROFIO_OK)
        *count = req->n_profiles;
    if (req)
        pprofio__ingest__v1__upload_request__free_unpacked(req, &pb_allocator);
    pprofio_bytes_free(&raw);
    return rc;
}

/* pack_part re-encodes req with profiles [from, to) and a new id. */
static int pack_part(UploadRequest *req, size_t from, size_t to, int with_events, pprofio_bytes *out,
                     char id[33]) {
    UploadRequest part = *req;
    char *old_id = req->batch_id;
    pprofio_batch_id(id);
    part.batch_id = id;
    part.profiles = req->profiles + from;
    part.n_profiles = to - from;
    if (!with_events) {
        part.n_events = 0;
        part.events = NULL;
    }
    out->len = 0;
    int rc = pack_gzip(&part.base, out);
    req->batch_id = old_id;
    return rc;
}

int pprofio_batch_split(const void *gz, size_t n, pprofio_bytes *first, char first_id[33],
                        pprofio_bytes *second, char second_id[33], pprofio_error *err) {
    pprofio_bytes raw = {0};
    UploadRequest *req;
    int rc = decode(gz, n, &req, &raw);
    if (rc != PPROFIO_OK) {
        pprofio_set_error(err, rc, "batch: cannot decode for splitting: %s", pprofio_strstatus(rc));
    } else if (req->n_profiles < 2) {
        rc = pprofio_set_error(err, PPROFIO_ERR_INVALID, "batch: %zu profile(s) cannot be split",
                               req->n_profiles);
    } else {
        size_t half = req->n_profiles / 2;
        rc = pack_part(req, 0, half, 1, first, first_id);
        if (rc == PPROFIO_OK)
            rc = pack_part(req, half, req->n_profiles, 0, second, second_id);
        if (rc != PPROFIO_OK)
            pprofio_set_error(err, rc, "batch: cannot encode a part: %s", pprofio_strstatus(rc));
    }
    if (req)
        pprofio__ingest__v1__upload_request__free_unpacked(req, &pb_allocator);
    pprofio_bytes_free(&raw);
    return rc;
}

int pprofio_batch_events_only(const void *gz, size_t n, pprofio_bytes *out, char id[33], size_t *n_events,
                              pprofio_error *err) {
    pprofio_bytes raw = {0};
    UploadRequest *req;
    *n_events = 0;
    int rc = decode(gz, n, &req, &raw);
    if (rc != PPROFIO_OK)
        pprofio_set_error(err, rc, "batch: cannot decode for its events: %s", pprofio_strstatus(rc));
    else if ((*n_events = req->n_events) > 0 && (rc = pack_part(req, 0, 0, 1, out, id)) != PPROFIO_OK)
        pprofio_set_error(err, rc, "batch: cannot encode the events: %s", pprofio_strstatus(rc));
    if (req)
        pprofio__ingest__v1__upload_request__free_unpacked(req, &pb_allocator);
    pprofio_bytes_free(&raw);
    return rc;
}
