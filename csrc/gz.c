//go:build ignore

/* gz.c: streaming gunzip into core memory, gzip to memory or a file. */
#include "gz.h"

#include <errno.h>
#include <string.h>
#include <zlib.h>

#include "alloc.h"
#include "sysio.h"

#define GZ_WINDOW (15 + 16) /* a gzip header and trailer, 32 KiB window */
#define GZ_CHUNK 65536 /* deflate output per step */
#define GZ_FD_SLICE (256 * 1024) /* input deflated per write to a file */

static voidpf gz_alloc(voidpf opaque, uInt items, uInt size) {
    (void)opaque;
    return pprofio_calloc(items, size);
}

static void gz_free(voidpf opaque, voidpf p) {
    (void)opaque;
    pprofio_free(p);
}

void pprofio_bytes_free(pprofio_bytes *b) {
    if (!b)
        return;
    pprofio_free(b->p);
    b->p = NULL;
    b->len = b->cap = 0;
}

size_t pprofio_bytes_cap_for(const pprofio_bytes *b, size_t need) {
    if (b->cap - b->len >= need)
        return b->cap; /* 0 only when need is 0 and b is empty: nothing to grow */
    if (need > SIZE_MAX / 2 - b->len)
        return 0;
    size_t cap = b->cap ? b->cap : 4096;
    while (cap - b->len < need)
        cap *= 2;
    return cap;
}

int pprofio_bytes_resize(pprofio_bytes *b, size_t cap) {
    uint8_t *p = pprofio_realloc(b->p, cap);
    if (!p)
        return PPROFIO_ERR_NOMEM;
    b->p = p;
    b->cap = cap;
    return PPROFIO_OK;
}

int pprofio_bytes_grow(pprofio_bytes *b, size_t need, pprofio_reserve_fn reserve, void *ctx) {
    if (b->cap - b->len >= need)
        return PPROFIO_OK;
    size_t cap = pprofio_bytes_cap_for(b, need);
    if (cap == 0)
        return PPROFIO_ERR_LIMIT;
    int64_t delta = (int64_t)(cap - b->cap);
    if (reserve && reserve(ctx, delta) != 0)
        return PPROFIO_ERR_LIMIT;
    if (pprofio_bytes_resize(b, cap) != PPROFIO_OK) {
        if (reserve)
            reserve(ctx, -delta);
        return PPROFIO_ERR_NOMEM;
    }
    return PPROFIO_OK;
}

struct pprofio_gunzip {
    z_stream zs;
    int in_member; /* inside a member: more input is required */
    int members;   /* whole members inflated */
    int failed;    /* the status that stopped the stream, or 0 */
};

int pprofio_gunzip_new(pprofio_gunzip **out) {
    *out = NULL;
    pprofio_gunzip *g = pprofio_calloc(1, sizeof *g);
    if (!g)
        return PPROFIO_ERR_NOMEM;
    g->zs.zalloc = gz_alloc;
    g->zs.zfree = gz_free;
    int rc = inflateInit2(&g->zs, GZ_WINDOW);
    if (rc != Z_OK) {
        pprofio_free(g);
        return rc == Z_MEM_ERROR ? PPROFIO_ERR_NOMEM : PPROFIO_ERR_FORMAT;
    }
    *out = g;
    return PPROFIO_OK;
}

void pprofio_gunzip_free(pprofio_gunzip *g) {
    if (!g)
        return;
    inflateEnd(&g->zs);
    pprofio_free(g);
}

/* inflate_step runs inflate once on the next part of *in into out's spare room. */
static int inflate_step(pprofio_gunzip *g, const uint8_t **in, size_t *n, pprofio_bytes *out) {
    uInt take = *n > (1u << 30) ? (1u << 30) : (uInt)*n;
    size_t room = out->cap - out->len;
    g->zs.next_in = (Bytef *)*in;
    g->zs.avail_in = take;
    g->zs.next_out = out->p + out->len;
    g->zs.avail_out = room > UINT32_MAX ? UINT32_MAX : (uInt)room;
    g->in_member = 1;
    uInt before_out = g->zs.avail_out;
    int zrc = inflate(&g->zs, Z_NO_FLUSH);
    size_t used = take - g->zs.avail_in, made = before_out - g->zs.avail_out;
    *in += used;
    *n -= used;
    out->len += made;
    if (zrc == Z_BUF_ERROR && made == 0 && used == 0)
        return PPROFIO_ERR_FORMAT; /* no progress with input and room: corrupt */
    if (zrc == Z_STREAM_END) {
        g->in_member = 0;
        g->members++;
        return inflateReset(&g->zs) == Z_OK ? PPROFIO_OK : PPROFIO_ERR_FORMAT;
    }
    if (zrc == Z_MEM_ERROR)
        return PPROFIO_ERR_NOMEM;
    return zrc == Z_OK || zrc == Z_BUF_ERROR ? PPROFIO_OK : PPROFIO_ERR_FORMAT;
}

int pprofio_gunzip_into(pprofio_gunzip *g, const uint8_t **in, size_t *n, pprofio_bytes *out) {
    if (g->failed)
        return g->failed;
    while (*n > 0 && out->cap > out->len) {
        int rc = inflate_step(g, in, n, out);
        if (rc != PPROFIO_OK) {
            g->failed = rc;
            return rc;
        }
    }
    return PPROFIO_OK;
}

int pprofio_gunzip_feed(pprofio_gunzip *g, const void *in, size_t n, pprofio_bytes *out,
                        pprofio_reserve_fn reserve, void *ctx) {
    const uint8_t *src = in;
    if (g->failed)
        return g->failed;
    while (n > 0) {
        int rc = pprofio_bytes_grow(out, PPROFIO_GUNZIP_ROOM, reserve, ctx);
        if (rc == PPROFIO_OK)
            rc = pprofio_gunzip_into(g, &src, &n, out);
        if (rc != PPROFIO_OK) {
            g->failed = rc;
            return rc;
        }
    }
    return PPROFIO_OK;
}

int pprofio_gunzip_finish(pprofio_gunzip *g) {
    if (g->failed)
        return g->failed;
    if (g->in_member || g->members == 0)
        return PPROFIO_ERR_FORMAT;
    return PPROFIO_OK;
}

int pprofio_gunzip_bytes(const void *in, size_t n, pprofio_bytes *out) {
    pprofio_gunzip *g;
    int rc = pprofio_gunzip_new(&g);
    if (rc != PPROFIO_OK)
        return rc;
    rc = pprofio_gunzip_feed(g, in, n, out, NULL, NULL);
    if (rc == PPROFIO_OK)
        rc = pprofio_gunzip_finish(g);
    pprofio_gunzip_free(g);
    return rc;
}

/* ---- the one deflater ------------------------------------------------- */

struct pprofio_gzip {
    z_stream zs;
};

int pprofio_gzip_new(pprofio_gzip **out) {
    *out = NULL;
    pprofio_gzip *z = pprofio_calloc(1, sizeof *z);
    if (!z)
        return PPROFIO_ERR_NOMEM;
    z->zs.zalloc = gz_alloc;
    z->zs.zfree = gz_free;
    int zrc = deflateInit2(&z->zs, Z_DEFAULT_COMPRESSION, Z_DEFLATED, GZ_WINDOW, 8, Z_DEFAULT_STRATEGY);
    if (zrc != Z_OK) {
        pprofio_free(z);
        return zrc == Z_MEM_ERROR ? PPROFIO_ERR_NOMEM : PPROFIO_ERR_INVALID;
    }
    *out = z;
    return PPROFIO_OK;
}

void pprofio_gzip_free(pprofio_gzip *z) {
    if (!z)
        return;
    deflateEnd(&z->zs);
    pprofio_free(z);
}

/* gzip_run deflates n bytes with flush, appending the output to out. */
static int gzip_run(pprofio_gzip *z, const uint8_t *src, size_t n, int flush, pprofio_bytes *out) {
    int last_flush;
    do {
        uInt take = n > (1u << 30) ? (1u << 30) : (uInt)n;
        z->zs.next_in = (Bytef *)src;
        z->zs.avail_in = take;
        src += take;
        n -= take;
        last_flush = n == 0 ? flush : Z_NO_FLUSH;
        do {
            if (pprofio_bytes_grow(out, GZ_CHUNK, NULL, NULL) != PPROFIO_OK)
                return PPROFIO_ERR_NOMEM;
            size_t room = out->cap - out->len;
            z->zs.next_out = out->p + out->len;
            z->zs.avail_out = room > UINT32_MAX ? UINT32_MAX : (uInt)room;
            int zrc = deflate(&z->zs, last_flush);
            out->len += room - z->zs.avail_out;
            if (zrc == Z_STREAM_ERROR)
                return PPROFIO_ERR_INVALID;
        } while (z->zs.avail_out == 0 || z->zs.avail_in > 0);
    } while (n > 0);
    return PPROFIO_OK;
}

int pprofio_gzip_add(pprofio_gzip *z, const void *in, size_t n, int last, pprofio_bytes *out) {
    return gzip_run(z, in, n, last ? Z_FINISH : Z_NO_FLUSH, out);
}

int pprofio_gzip_flush(pprofio_gzip *z, pprofio_bytes *out) { return gzip_run(z, NULL, 0, Z_FULL_FLUSH, out); }

int pprofio_gzip_fd_deflated(int fd, const uint8_t *seg, const pprofio_deflated *d, size_t *written) {
    /* A gzip header (no name, no time, Unix), the segment, an empty final block, the trailer. */
    static const uint8_t head[10] = {0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3};
    uint8_t tail[10] = {0x03, 0x00};
    for (int i = 0; i < 4; i++) {
        tail[2 + i] = (uint8_t)(d->crc >> (8 * i));
        tail[6 + i] = (uint8_t)(d->isize >> (8 * i));
    }
    int rc = pprofio_write_all(fd, head, sizeof head);
    if (rc == 0)
        rc = pprofio_write_all(fd, seg, d->len);
    if (rc == 0)
        rc = pprofio_write_all(fd, tail, sizeof tail);
    if (rc == 0 && written)
        *written = sizeof head + d->len + sizeof tail;
    return rc;
}

int pprofio_gzip_bytes(const void *in, size_t n, pprofio_bytes *out) {
    pprofio_gzip *z;
    int rc = pprofio_gzip_new(&z);
    if (rc == PPROFIO_OK)
        rc = pprofio_gzip_add(z, in, n, 1, out);
    pprofio_gzip_free(z);
    return rc;
}

/* gzip_fd_slices deflates in slices, writing each slice's output to fd and reusing the buffer. */
static int gzip_fd_slices(pprofio_gzip *z, int fd, const uint8_t *src, size_t n, pprofio_bytes *buf,
                          size_t *written) {
    int last;
    do {
        size_t take = n > GZ_FD_SLICE ? GZ_FD_SLICE : n;
        last = take == n;
        buf->len = 0;
        int rc = pprofio_gzip_add(z, src, take, last, buf);
        if (rc != PPROFIO_OK)
            return rc == PPROFIO_ERR_NOMEM ? -ENOMEM : -EINVAL;
        src += take;
        n -= take;
        rc = pprofio_write_all(fd, buf->p, buf->len);
        if (rc != 0)
            return rc;
        *written += buf->len;
    } while (!last);
    return 0;
}

int pprofio_gzip_fd(int fd, const void *in, size_t n, size_t *written) {
    size_t w = 0;
    pprofio_gzip *z;
    int rc = pprofio_gzip_new(&z);
    pprofio_bytes buf = {0};
    if (rc == PPROFIO_OK)
        rc = gzip_fd_slices(z, fd, in, n, &buf, &w);
    else
        rc = rc == PPROFIO_ERR_NOMEM ? -ENOMEM : -EINVAL;
    pprofio_bytes_free(&buf);
    pprofio_gzip_free(z);
    if (written)
        *written = w;
    return rc;
}

uint32_t pprofio_crc32(const void *p, size_t n) {
    uLong c = crc32(0L, Z_NULL, 0);
    const Bytef *b = p;
    while (n > 0) {
        uInt take = n > (1u << 30) ? (1u << 30) : (uInt)n;
        c = crc32(c, b, take);
        b += take;
        n -= take;
    }
    return (uint32_t)c;
}
