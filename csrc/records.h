/*
 * records.h: delta profiles built from the runtime's own records. The Go
 * side reads runtime.MemProfile / BlockProfile / MutexProfile records into
 * reused buffers and symbolizes only the program counters it has not seen
 * before; this module keeps what it was told (strings, mappings,
 * functions, locations, and each distinct stack with its labels: a key)
 * across cycles, keeps each key's previous cumulative values, and writes
 * the cycle's delta as pprof: the same samples, stack by stack, as
 * runtime/pprof's profile minus the previous one (csrc/pprof.h), without
 * writing, inflating and decoding a whole profile each cycle.
 */
#ifndef PPROFIO_RECORDS_H
#define PPROFIO_RECORDS_H

#include <stddef.h>
#include <stdint.h>

#include "gz.h"
#include "pprofio.h"

typedef struct pprofio_records pprofio_records;

/*
 * pprofio_records_new makes an empty table for samples of n_values values
 * (at most 8), of which those in cum_mask are cumulative (subtracted) and
 * the others are sent as they are.
 */
int pprofio_records_new(int n_values, uint32_t cum_mask, pprofio_records **out);
void pprofio_records_free(pprofio_records *r);

/* pprofio_records_string adds a string (n bytes) and returns its index in *id; "" is 0. */
int pprofio_records_string(pprofio_records *r, const char *s, size_t n, int64_t *id);

/* pprofio_records_types sets the sample types (type, unit string pairs) and the period type. */
int pprofio_records_types(pprofio_records *r, const int64_t *type_unit, size_t n_types, int64_t period_type,
                          int64_t period_unit);

/* pprofio_records_mapping adds a mapping; its id (1, 2, ...) goes to *id. */
int pprofio_records_mapping(pprofio_records *r, uint64_t start, uint64_t limit, uint64_t offset, int64_t file,
                            int64_t build_id, int has_functions, uint32_t *id);

/* pprofio_records_set_has_functions updates a mapping's has_functions. */
void pprofio_records_set_has_functions(pprofio_records *r, uint32_t mapping, int has_functions);

/* pprofio_records_function adds a function (name, file: string ids); its id goes to *id. */
int pprofio_records_function(pprofio_records *r, int64_t name, int64_t file, int64_t start_line, uint32_t *id);

/*
 * pprofio_records_location adds a location at addr (mapping 0: none) with
 * n lines, innermost first (function ids and line numbers); its id goes to *id.
 */
int pprofio_records_location(pprofio_records *r, uint64_t addr, uint32_t mapping, const uint32_t *fns,
                             const int64_t *lines, size_t n, uint32_t *id);

/*
 * pprofio_records_key returns in *key the key of a stack (n location ids,
 * leaf first) with a numeric label (label_key 0: none): the same stack and
 * label always give the same key.
 */
int pprofio_records_key(pprofio_records *r, const uint32_t *locs, size_t n, int64_t label_key, int64_t label_num,
                        uint32_t *key);

/*
 * pprofio_records_cycle reads one snapshot: n records of 1 + n_values
 * int64 each (a key, then its values), taken at time_ns, with the sampling
 * period. Records of the same key are summed. With emit != 0 it writes into
 * out the pprof of this snapshot minus the previous one (keys left with
 * only zeros are dropped; the window's start and duration are set) and
 * sets *is_delta = 1; without a previous snapshot, out is the snapshot's
 * totals, every key of it even of zeros as runtime/pprof writes them, and
 * *is_delta = 0. Either way this snapshot becomes the previous
 * one.
 */
int pprofio_records_cycle(pprofio_records *r, const int64_t *recs, size_t n, int64_t time_ns, int64_t period,
                          int emit, pprofio_bytes *out, int *is_delta);

/* pprofio_records_reset forgets the previous snapshot (the next window brings its own). */
void pprofio_records_reset(pprofio_records *r);

/* pprofio_records_bytes is the memory the table holds, with the capacity of the last cycle's out. */
size_t pprofio_records_bytes(const pprofio_records *r);

/*
 * pprofio_records_limit bounds pprofio_records_bytes at max_bytes (0: no
 * bound). A call that would take the table over it fails with
 * PPROFIO_ERR_LIMIT and adds nothing (a cycle that fails so forgets the
 * previous snapshot, as any failed cycle does); what the table holds stays
 * valid. The table never shrinks: the caller frees it and makes another
 * to start afresh.
 */
void pprofio_records_limit(pprofio_records *r, size_t max_bytes);

#endif
