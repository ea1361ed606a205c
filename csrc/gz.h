/*
 * gz.h: gzip in and out, and CRC-32, with zlib. runtime/pprof writes
 * gzipped protobuf; the core inflates it once as it streams in
 * (pprofio_gunzip), works on the raw bytes, and deflates once on the way
 * out (pprofio_gzip_*).
 */
#ifndef PPROFIO_GZ_H
#define PPROFIO_GZ_H

#include <stddef.h>
#include <stdint.h>

#include "pprofio.h"

/* A growable byte buffer owned by the core. */
typedef struct {
    uint8_t *p;
    size_t len;
    size_t cap;
} pprofio_bytes;

void pprofio_bytes_free(pprofio_bytes *b);

/*
 * pprofio_bytes_cap_for is the capacity b needs for `need` more bytes (its
 * own if they fit, else doubled from 4096); 0 when that overflows (or when
 * nothing is needed of an empty b: check the fit first).
 */
size_t pprofio_bytes_cap_for(const pprofio_bytes *b, size_t need);

/* pprofio_bytes_resize sets b's capacity to cap (at least b->len). */
int pprofio_bytes_resize(pprofio_bytes *b, size_t cap);

/*
 * A reservation hook: called with delta > 0 before an output buffer grows by
 * delta bytes of capacity (non-zero refuses the growth), and with delta < 0
 * to give back a reservation that was not used.
 */
typedef int (*pprofio_reserve_fn)(void *ctx, int64_t delta);

/* pprofio_bytes_grow makes room for `need` more bytes, asking reserve first. */
int pprofio_bytes_grow(pprofio_bytes *b, size_t need, pprofio_reserve_fn reserve, void *ctx);

typedef struct pprofio_gunzip pprofio_gunzip;

/* pprofio_gunzip_new starts inflating a gzip stream (one or more members). */
int pprofio_gunzip_new(pprofio_gunzip **out);
void pprofio_gunzip_free(pprofio_gunzip *g);

/*
 * pprofio_gunzip_feed inflates n input bytes and appends the output to out,
 * growing it through reserve (pprofio_gunzip_into with room made first).
 * Returns PPROFIO_ERR_FORMAT on bytes that are not gzip, PPROFIO_ERR_LIMIT
 * when reserve refused to grow out, PPROFIO_ERR_NOMEM.
 */
int pprofio_gunzip_feed(pprofio_gunzip *g, const void *in, size_t n, pprofio_bytes *out,
                        pprofio_reserve_fn reserve, void *ctx);

/* The output room pprofio_gunzip_feed makes before each step. */
#define PPROFIO_GUNZIP_ROOM 16384

/*
 * pprofio_gunzip_into inflates from *in (*n bytes) into out's spare room
 * only, never growing out: it returns when the input is used up or out is
 * full, with *in and *n advanced past what it used. The caller makes room
 * (and accounts for it) before calling again.
 */
int pprofio_gunzip_into(pprofio_gunzip *g, const uint8_t **in, size_t *n, pprofio_bytes *out);

/* pprofio_gunzip_finish reports whether the input ended on a whole member. */
int pprofio_gunzip_finish(pprofio_gunzip *g);

/* pprofio_gunzip_bytes inflates a whole gzip buffer into out. */
int pprofio_gunzip_bytes(const void *in, size_t n, pprofio_bytes *out);

/*
 * The core's one deflater: a gzip member made in steps, so protobuf-c can
 * pack a batch straight into it and a file can be written in slices.
 */
typedef struct pprofio_gzip pprofio_gzip;

int pprofio_gzip_new(pprofio_gzip **out);
void pprofio_gzip_free(pprofio_gzip *z);

/*
 * pprofio_gzip_add deflates n more bytes and appends the output to out;
 * last != 0 ends the member. Returns PPROFIO_ERR_NOMEM when out cannot grow.
 */
int pprofio_gzip_add(pprofio_gzip *z, const void *in, size_t n, int last, pprofio_bytes *out);

/*
 * pprofio_gzip_flush ends the blocks so far on a byte boundary and forgets
 * the window (Z_FULL_FLUSH): what is added next, up to the next flush, is
 * a deflate segment that inflates on its own.
 */
int pprofio_gzip_flush(pprofio_gzip *z, pprofio_bytes *out);

/* A segment of a gzip stream between two flushes: where it is, and its input's CRC-32 and size. */
typedef struct {
    size_t offset, len;
    uint32_t crc, isize;
} pprofio_deflated;

/*
 * pprofio_gzip_fd_deflated writes a whole gzip member made of a segment
 * (seg, d->len bytes) to fd without deflating again: a header, the
 * segment, an empty final block and the trailer. Returns 0 or -errno.
 */
int pprofio_gzip_fd_deflated(int fd, const uint8_t *seg, const pprofio_deflated *d, size_t *written);

/* pprofio_gzip_bytes deflates n bytes into out as one gzip member. */
int pprofio_gzip_bytes(const void *in, size_t n, pprofio_bytes *out);

/*
 * pprofio_gzip_fd deflates n bytes into fd as one gzip member and stores
 * the count of bytes written in *written. Returns 0, or -errno for a write
 * failure (errno), PPROFIO_ERR_NOMEM as -ENOMEM.
 */
int pprofio_gzip_fd(int fd, const void *in, size_t n, size_t *written);

/* pprofio_crc32 is the CRC-32 (zlib's) of n bytes. */
uint32_t pprofio_crc32(const void *p, size_t n);

#endif
