/*
 * fuzz_batch.c: a libFuzzer target for the batch decoder that splits a batch
 * after a 413 (pprofio_batch_split and pprofio_batch_count_profiles in
 * csrc/batch.c). Its input is a batch read back from memory or from a spool
 * file: gzip, then a protobuf UploadRequest (ingest.proto).
 *
 * The first byte chooses the mode: odd, the rest is a raw UploadRequest that
 * the target gzips first (so mutations reach the protobuf decoder); even,
 * the rest is fed as it is (the gzip reader). Promises (batch.h): what does
 * not decode is refused by both functions; a batch of fewer than two
 * profiles is not split; otherwise both parts decode, hold half of the
 * profiles each (the first the smaller half and every event), keep the
 * sequence and source, and carry new, valid, different batch ids.
 */
#include <string.h>

#include "../../csrc/batch.h"
#include "../../csrc/gz.h"
#include "../../csrc/ingest.pb-c.h"
#include "fuzz.h"

typedef Pprofio__Ingest__V1__UploadRequest Req;

/* unpack decodes a gzipped UploadRequest with protobuf-c's own allocator, or NULL. */
static Req *unpack(const uint8_t *gz, size_t n) {
    pprofio_bytes raw = {0};
    Req *r = NULL;
    if (pprofio_gunzip_bytes(gz, n, &raw) == PPROFIO_OK)
        r = pprofio__ingest__v1__upload_request__unpack(NULL, raw.len, raw.p);
    pprofio_bytes_free(&raw);
    return r;
}

static int same_str(const char *a, const char *b) { return strcmp(a ? a : "", b ? b : "") == 0; }

static void check_part(const Req *whole, const pprofio_bytes *part, const char *id, size_t from, size_t to,
                       int events) {
    fuzz_require(pprofio_batch_id_valid(id));
    Req *p = unpack(part->p, part->len);
    fuzz_require(p != NULL);
    fuzz_require(strcmp(p->batch_id, id) == 0);
    fuzz_require(p->sequence == whole->sequence);
    fuzz_require(p->n_profiles == to - from);
    for (size_t i = from; i < to; i++) {
        const Pprofio__Ingest__V1__Profile *a = whole->profiles[i], *b = p->profiles[i - from];
        fuzz_require(a->type == b->type && a->pprof.len == b->pprof.len);
        fuzz_require(a->pprof.len == 0 || memcmp(a->pprof.data, b->pprof.data, a->pprof.len) == 0);
    }
    fuzz_require(p->n_events == (events ? whole->n_events : 0));
    fuzz_require((p->source == NULL) == (whole->source == NULL));
    if (p->source)
        fuzz_require(same_str(p->source->service, whole->source->service) &&
                     same_str(p->source->instance_id, whole->source->instance_id) &&
                     p->source->n_tags == whole->source->n_tags);
    pprofio__ingest__v1__upload_request__free_unpacked(p, NULL);
}

FUZZ_ENTRY(batch) {
    if (size == 0)
        return 0;
    pprofio_bytes gz = {0};
    const uint8_t *in = data + 1;
    size_t n = size - 1;
    if (data[0] & 1) {
        fuzz_require(pprofio_gzip_bytes(data + 1, size - 1, &gz) == PPROFIO_OK);
        in = gz.p;
        n = gz.len;
    }
    size_t count = 0;
    int crc = pprofio_batch_count_profiles(in, n, &count);
    fuzz_require(crc == PPROFIO_OK || crc == PPROFIO_ERR_FORMAT);
    pprofio_bytes a = {0}, b = {0};
    char ida[33] = "", idb[33] = "";
    pprofio_error err = {0};
    int src = pprofio_batch_split(in, n, &a, ida, &b, idb, &err);
    if (crc != PPROFIO_OK) {
        fuzz_require(src == PPROFIO_ERR_FORMAT && err.msg[0]);
    } else if (count < 2) {
        fuzz_require(src == PPROFIO_ERR_INVALID && err.msg[0]);
    } else {
        fuzz_require(src == PPROFIO_OK);
        fuzz_require(strcmp(ida, idb) != 0);
        Req *whole = unpack(in, n);
        fuzz_require(whole != NULL && whole->n_profiles == count);
        check_part(whole, &a, ida, 0, count / 2, 1);
        check_part(whole, &b, idb, count / 2, count, 0);
        size_t ca = 0, cb = 0;
        fuzz_require(pprofio_batch_count_profiles(a.p, a.len, &ca) == PPROFIO_OK && ca == count / 2);
        fuzz_require(pprofio_batch_count_profiles(b.p, b.len, &cb) == PPROFIO_OK && ca + cb == count);
        pprofio__ingest__v1__upload_request__free_unpacked(whole, NULL);
    }
    if (src != PPROFIO_OK)
        fuzz_require(a.len == 0 && b.len == 0);
    pprofio_bytes_free(&a);
    pprofio_bytes_free(&b);
    pprofio_bytes_free(&gz);
    return 0;
}
