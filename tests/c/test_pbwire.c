/*
 * test_pbwire.c: the samples of a profile read on the wire (csrc/pbwire.h)
 * the way protobuf-c reads them. A profile may write a sample's ids and
 * values packed or one by one, put samples before, between or after the
 * tables, and carry fields pprofio does not know; every such spelling of
 * the same real profile (tests/testdata) must give the same delta, byte for
 * byte, as the plain one.
 */
#include <libgen.h>

#include "../../csrc/pbwire.h"
#include "../../csrc/pprof.h"
#include "../../csrc/profile.pb-c.h"
#include "helpers.h"

TestSuite(pbwire, .timeout = 120);

typedef Perftools__Profiles__Profile Prof;
typedef Perftools__Profiles__Sample Sample;

static uint8_t *load(const char *name, size_t *n) {
    char here[4096], path[4200];
    snprintf(here, sizeof here, "%s", __FILE__);
    snprintf(path, sizeof path, "%s/../testdata/%s", dirname(here), name);
    uint8_t *p = read_file(path, n);
    cr_assert(p && *n > 0, "cannot read %s", path);
    return p;
}

/* A growing byte buffer and the protobuf wire's pieces. */
typedef struct {
    uint8_t *p;
    size_t n, cap;
} buf;

static void put_bytes(buf *b, const void *p, size_t n) {
    if (b->n + n > b->cap) {
        b->cap = (b->n + n) * 2;
        b->p = realloc(b->p, b->cap);
        cr_assert(b->p);
    }
    memcpy(b->p + b->n, p, n);
    b->n += n;
}

static void put_varint(buf *b, uint64_t v) {
    uint8_t tmp[10];
    size_t n = 0;
    while (v >= 0x80) {
        tmp[n++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    tmp[n++] = (uint8_t)v;
    put_bytes(b, tmp, n);
}

/*
 * put_sample_oddly writes s as field 2 of a Profile, spelled as protobuf-c
 * never writes it: an unknown field first, an empty packed run of ids, the
 * ids and values one varint each and interleaved, then its labels.
 */
static void put_sample_oddly(buf *out, const Sample *s) {
    buf body = {0};
    put_varint(&body, (15 << 3) | 0); /* an unknown varint field */
    put_varint(&body, 12345);
    put_varint(&body, (1 << 3) | 2); /* an empty packed run of location ids */
    put_varint(&body, 0);
    size_t n = s->n_location_id > s->n_value ? s->n_location_id : s->n_value;
    for (size_t i = 0; i < n; i++) {
        if (i < s->n_location_id) {
            put_varint(&body, (1 << 3) | 0);
            put_varint(&body, s->location_id[i]);
        }
        if (i < s->n_value) {
            put_varint(&body, (2 << 3) | 0);
            put_varint(&body, (uint64_t)s->value[i]);
        }
    }
    for (size_t i = 0; i < s->n_label; i++) {
        size_t len = perftools__profiles__label__get_packed_size(s->label[i]);
        uint8_t *l = malloc(len + 1);
        cr_assert(l);
        perftools__profiles__label__pack(s->label[i], l);
        put_varint(&body, (3 << 3) | 2);
        put_varint(&body, len);
        put_bytes(&body, l, len);
        free(l);
    }
    put_varint(out, (2 << 3) | 2);
    put_varint(out, body.n);
    put_bytes(out, body.p, body.n);
    free(body.p);
}

/* respell writes p's first half of samples, then its tables, then the other half. */
static buf respell(Prof *p) {
    size_t ns = p->n_sample, half = ns / 2;
    p->n_sample = 0; /* the tables alone */
    size_t tn = perftools__profiles__profile__get_packed_size(p);
    uint8_t *tables = malloc(tn + 1);
    cr_assert(tables);
    perftools__profiles__profile__pack(p, tables);
    p->n_sample = ns;
    buf out = {0};
    for (size_t i = 0; i < half; i++)
        put_sample_oddly(&out, p->sample[i]);
    put_bytes(&out, tables, tn);
    for (size_t i = half; i < ns; i++)
        put_sample_oddly(&out, p->sample[i]);
    free(tables);
    return out;
}

static pprofio_bytes delta_of(const uint8_t *base, size_t nb, const uint8_t *cur, size_t nc, const char *what) {
    pprofio_baseline *b = NULL;
    pprofio_bytes out = {0};
    pprofio_error err = {0};
    int is_delta = 0;
    cr_assert_eq(pprofio_pprof_delta(base, nb, &b, 1, SIZE_MAX, &out, &is_delta, &err), PPROFIO_OK, "%s: base: %s",
                 what, err.msg);
    cr_assert_eq(pprofio_pprof_delta(cur, nc, &b, 1, SIZE_MAX, &out, &is_delta, &err), PPROFIO_OK, "%s: %s", what,
                 err.msg);
    cr_assert(is_delta, "%s: no delta", what);
    pprofio_baseline_free(b);
    return out;
}

Test(pbwire, samples_spelled_unpacked_with_unknown_fields_around_the_tables_give_the_same_delta) {
    const char *kinds[] = {"heap", "mutex", "block"};
    for (size_t k = 0; k < 3; k++) {
        char bname[64], cname[64];
        snprintf(bname, sizeof bname, "%s_base.pb", kinds[k]);
        snprintf(cname, sizeof cname, "%s_cur.pb", kinds[k]);
        size_t nb, nc;
        uint8_t *base = load(bname, &nb), *cur = load(cname, &nc);
        Prof *pc = perftools__profiles__profile__unpack(NULL, nc, cur);
        Prof *pb = perftools__profiles__profile__unpack(NULL, nb, base);
        cr_assert(pc && pb && pc->n_sample > 1, "%s: a real profile with samples", kinds[k]);
        buf odd_cur = respell(pc), odd_base = respell(pb);
        cr_assert_neq(odd_cur.n, nc, "%s: the respelled profile should differ in size", kinds[k]);
        pprofio_error err = {0};
        cr_assert_eq(pprofio_pprof_check(odd_cur.p, odd_cur.n, &err), PPROFIO_OK, "%s: %s", kinds[k], err.msg);

        pprofio_bytes plain = delta_of(base, nb, cur, nc, kinds[k]);
        pprofio_bytes odd = delta_of(odd_base.p, odd_base.n, odd_cur.p, odd_cur.n, kinds[k]);
        cr_assert_gt(plain.len, 0);
        cr_assert(plain.len == odd.len && memcmp(plain.p, odd.p, plain.len) == 0,
                  "%s: the delta of the respelled profiles differs (%zu bytes, plain %zu)", kinds[k], odd.len,
                  plain.len);
        pprofio_bytes_free(&plain);
        pprofio_bytes_free(&odd);
        free(odd_cur.p);
        free(odd_base.p);
        perftools__profiles__profile__free_unpacked(pc, NULL);
        perftools__profiles__profile__free_unpacked(pb, NULL);
        free(base);
        free(cur);
    }
}

Test(pbwire, a_location_id_past_32_bits_or_a_sample_cut_short_is_refused) {
    size_t n;
    uint8_t *raw = load("heap_cur.pb", &n);
    Prof *p = perftools__profiles__profile__unpack(NULL, n, raw);
    cr_assert(p && p->n_sample > 0 && p->sample[0]->n_location_id > 0);
    p->sample[0]->location_id[0] = UINT64_C(1) << 33;
    size_t bn = perftools__profiles__profile__get_packed_size(p);
    uint8_t *bad = malloc(bn);
    cr_assert(bad);
    perftools__profiles__profile__pack(p, bad);
    pprofio_error err = {0};
    cr_assert_eq(pprofio_pprof_check(bad, bn, &err), PPROFIO_ERR_FORMAT, "a location id of 2^33 was accepted");

    pprofio_pb_samples s;
    pprofio_pb_sample one = {0};
    const uint8_t cut[] = {0x12, 0x09, 0x0a, 0x02, 0x01}; /* a sample longer than the input */
    cr_assert_eq(pprofio_pb_split(cut, sizeof cut, 1 << 20, &s), PPROFIO_ERR_FORMAT);
    pprofio_pb_samples_free(&s);
    const uint8_t inner[] = {0x12, 0x04, 0x0a, 0x05, 0x01, 0x02}; /* a packed run longer than its sample */
    cr_assert_eq(pprofio_pb_split(inner, sizeof inner, 1 << 20, &s), PPROFIO_OK);
    cr_assert_eq(s.n, 1);
    cr_assert_eq(pprofio_pb_read(&s, 0, &one, NULL, 0), PPROFIO_ERR_FORMAT);
    pprofio_pb_samples_free(&s);
    const uint8_t group[] = {0x12, 0x02, 0x0b, 0x0c}; /* a group (wire type 3) in a sample */
    cr_assert_eq(pprofio_pb_split(group, sizeof group, 1 << 20, &s), PPROFIO_OK);
    cr_assert_eq(pprofio_pb_read(&s, 0, &one, NULL, 0), PPROFIO_ERR_FORMAT);
    pprofio_pb_samples_free(&s);
    const uint8_t ok[] = {0x12, 0x06, 0x0a, 0x02, 0x01, 0x02, 0x10, 0x07}; /* ids 1, 2 packed; value 7 alone */
    cr_assert_eq(pprofio_pb_split(ok, sizeof ok, 1 << 20, &s), PPROFIO_OK);
    cr_assert_eq(s.n, 1);
    cr_assert_eq(s.n_rest, 0);
    cr_assert_eq(pprofio_pb_read(&s, 0, &one, NULL, 0), PPROFIO_OK);
    cr_assert_eq(one.n_loc, 2);
    cr_assert_eq(one.loc[1], 2);
    cr_assert_eq(one.n_val, 1);
    cr_assert_eq(one.val[0], 7);
    pprofio_pb_samples_free(&s);
    pprofio_pb_sample_free(&one);
    free(bad);
    perftools__profiles__profile__free_unpacked(p, NULL);
    free(raw);
}
