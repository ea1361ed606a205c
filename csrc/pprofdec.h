/*
 * pprofdec.h: a pprof profile decoded and checked (private to pprof.c).
 * Both the delta and the goroutine stacks start from the same thing: a
 * serialized perftools.profiles.Profile whose tables protobuf-c decodes,
 * into an arena bounded by the input's size and freed all at once, and
 * whose samples pbwire.c reads off the wire one at a time; every id and
 * string index checked, so that nothing later reads out of bounds; and a
 * key per sample that two dumps agree on (they number their locations
 * differently, so ids cannot be matched), hashed as the sample is read
 * from what each location adds to it, worked out once per location. This
 * module owns that state; pprof.c only reads it and uses the arena for its
 * scratch.
 */
#ifndef PPROFIO_PPROFDEC_H
#define PPROFIO_PPROFDEC_H

#include <stddef.h>
#include <stdint.h>

#include "pbwire.h"
#include "pprofio.h"
#include "profile.pb-c.h"

typedef Perftools__Profiles__Profile PbProfile;
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
    PbProfile *p;          /* every field but the samples */
    pprofio_pb_samples s;  /* where the samples lie */
    pprofio_pb_sample one; /* the sample last read by pprofio_pprofdec_sample */
    uint64_t *lkey;        /* per location, the two words its frame adds to a key's hashes */
    uint32_t *loc_id;      /* per location, its id (the tables may be pruned later) */
    uint64_t *shash;       /* per string, a hash of it (0: not worked out yet) */
    size_t n_str;          /* strings as decoded (the table may be pruned later) */
    pprofio_pprofdec_ids locs, fns, maps;
    size_t n_values;
    uint32_t cum_mask; /* which values are totals since start */
    uint64_t types_sig;
} pprofio_pprofdec;

/*
 * pprofio_pprofdec_decode decodes raw (n bytes, which must outlive *d)
 * into *d and checks every index of its tables: PPROFIO_ERR_FORMAT when it
 * is not a well-formed profile, PPROFIO_ERR_NOMEM. Its samples are checked
 * as they are read. Call pprofio_pprofdec_release on *d either way.
 */
int pprofio_pprofdec_decode(const uint8_t *raw, size_t n, pprofio_pprofdec *d, pprofio_error *err);

/* pprofio_pprofdec_release frees what pprofio_pprofdec_decode made. */
void pprofio_pprofdec_release(pprofio_pprofdec *d);

/*
 * pprofio_pprofdec_sample reads sample i into d->one and checks it: as
 * many values as sample types, location ids that name a location (turned
 * into indexes of d->p->location) and labels' string indexes in range.
 * PPROFIO_ERR_FORMAT (with err set) or PPROFIO_ERR_NOMEM.
 */
int pprofio_pprofdec_sample(pprofio_pprofdec *d, size_t i, pprofio_error *err);

/* pprofio_pprofdec_check_samples reads and checks every sample. */
int pprofio_pprofdec_check_samples(pprofio_pprofdec *d, pprofio_error *err);

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
 * pprofio_pprofdec_hash hashes the identity of the sample in d->one twice
 * (h1 never 0): its frames, each by its address (or, without one, its
 * functions' names and lines), and (with labels != 0) its labels as a set.
 * A stack too deep to key (more than ~2000 frames; the runtime keeps
 * 32-128) gets 0, 0.
 */
void pprofio_pprofdec_hash(pprofio_pprofdec *d, int labels, uint64_t *h1, uint64_t *h2);

#endif
