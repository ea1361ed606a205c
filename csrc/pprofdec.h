/*
 * pprofdec.h: a pprof profile decoded and checked (private to pprof.c).
 * Both the delta and the goroutine stacks start from the same thing: a
 * serialized perftools.profiles.Profile whose samples pbwire.c reads off
 * the wire into flat arrays and whose tables protobuf-c decodes, into an
 * arena bounded by the input's size and freed all at once; every id and
 * string index checked, so that nothing later reads out of bounds; and a
 * key per sample that two dumps agree on (they number their locations
 * differently, so ids cannot be matched). This module owns that state;
 * pprof.c only reads it and uses the arena for its scratch.
 */
#ifndef PPROFIO_PPROFDEC_H
#define PPROFIO_PPROFDEC_H

#include <stddef.h>
#include <stdint.h>

#include "pbwire.h"
#include "pprofio.h"
#include "profile.pb-c.h"

typedef Perftools__Profiles__Profile PbProfile;
typedef pprofio_pb_sample PbSample; /* read by pbwire.c, not protobuf-c */
typedef Perftools__Profiles__Location PbLocation;
typedef Perftools__Profiles__Function PbFunction;
typedef Perftools__Profiles__Mapping PbMapping;
typedef Perftools__Profiles__ValueType PbValueType;

/* The memory of one decoded profile: chunks, freed all at once. */
typedef struct {
    struct pprofio_pprofdec_chunk *head;
    size_t total, limit;
} pprofio_pprofdec_arena;

/* An id index: dense ids (the Go runtime numbers from 1) map through an array. */
typedef struct {
    uint64_t max;
    uint32_t *slot; /* slot[id] = index + 1, 0 = none */
} pprofio_pprofdec_ids;

typedef struct {
    pprofio_pprofdec_arena mem;
    PbProfile *p;         /* every field but the samples */
    pprofio_pb_samples s; /* the samples; s.loc holds location indexes once checked */
    uint64_t *fkey;       /* per location, what a frame adds to a key: its address, or 0 and a hash of its lines */
    pprofio_pprofdec_ids locs, fns, maps;
    size_t n_values;
    uint32_t cum_mask; /* which values are totals since start */
    uint64_t types_sig;
} pprofio_pprofdec;

/*
 * pprofio_pprofdec_decode decodes raw (n bytes) into *d and checks every
 * index in it: PPROFIO_ERR_FORMAT when it is not a well-formed profile,
 * PPROFIO_ERR_NOMEM. Call pprofio_pprofdec_release on *d either way.
 */
int pprofio_pprofdec_decode(const uint8_t *raw, size_t n, pprofio_pprofdec *d, pprofio_error *err);

/* pprofio_pprofdec_release frees what pprofio_pprofdec_decode made. */
void pprofio_pprofdec_release(pprofio_pprofdec *d);

/*
 * pprofio_pprofdec_alloc takes n bytes from the arena ctx (a
 * pprofio_pprofdec_arena), freed with it; NULL past its limit.
 */
void *pprofio_pprofdec_alloc(void *ctx, size_t n);

/* pprofio_pprofdec_lookup is the index of the object with id, or -1. */
long pprofio_pprofdec_lookup(const pprofio_pprofdec_ids *ix, uint64_t id);

/* pprofio_pprofdec_str is string i of p's table, or "" when i is out of range. */
const char *pprofio_pprofdec_str(const PbProfile *p, int64_t i);

/*
 * pprofio_pprofdec_key writes a sample's identity as 64-bit words: for each
 * frame its address (or, without one, its functions' names and lines), then
 * (with labels != 0) its labels, sorted. Returns the word count, or 0 when
 * buf (cap words) is too small.
 */
size_t pprofio_pprofdec_key(const pprofio_pprofdec *d, const PbSample *s, int labels, uint64_t *buf, size_t cap);

#endif
