//go:build ignore

/* store.c: atomic profile files under the output folder (see store.h). */
#include "store.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "alloc.h"
#include "clock.h"
#include "errors.h"
#include "gz.h"
#include "sysio.h"

#define MAX_RENAME_TRIES 100

void pprofio_store_format_time(int64_t unix_ns, char *out, size_t n) {
    int64_t sec = unix_ns / PPROFIO_NS_PER_SEC;
    int64_t rem = unix_ns % PPROFIO_NS_PER_SEC;
    if (rem < 0) { /* round down before 1970 too: -1 ns is 23:59:59.999 */
        rem += PPROFIO_NS_PER_SEC;
        sec--;
    }
    int64_t ms = rem / 1000000;
    time_t t = (time_t)sec;
    struct tm tm;
    gmtime_r(&t, &tm);
    char base[32];
    strftime(base, sizeof base, "%Y%m%dT%H%M%S", &tm);
    snprintf(out, n, "%s.%03dZ", base, (int)ms);
}

static char *join(const char *a, const char *b, const char *c) {
    size_t n = strlen(a) + strlen(b) + strlen(c) + 3;
    char *p = pprofio_malloc(n);
    if (p)
        snprintf(p, n, "%s/%s/%s", a, b, c);
    return p;
}

/* place renames the finished file into dir under stem, adding -1, -2, ... if it is taken. */
static int place(pprofio_atomic_file *f, const char *dir, const char *stem, char **path_out) {
    size_t n = strlen(dir) + strlen(stem) + 32;
    char *dst = pprofio_malloc(n);
    if (!dst)
        return -ENOMEM;
    int rc = -EEXIST;
    for (int i = 0; i < MAX_RENAME_TRIES && rc == -EEXIST; i++) {
        if (i == 0)
            snprintf(dst, n, "%s/%s.pb.gz", dir, stem);
        else
            snprintf(dst, n, "%s/%s-%d.pb.gz", dir, stem, i);
        rc = pprofio_atomic_rename(f, dst, 0);
    }
    if (rc == 0 && path_out)
        *path_out = dst;
    else
        pprofio_free(dst);
    return rc;
}

/* What goes into a file: raw bytes to gzip, or (seg) bytes deflated already. */
typedef struct {
    const void *raw;
    size_t n;
    const uint8_t *seg;
    const pprofio_deflated *d;
} store_body;

/* write_file gzips the body into a new file in dir named after the window. */
static int write_file(const char *dir, int64_t start_ns, int64_t end_ns, const store_body *body, size_t *written,
                      char **path_out, pprofio_error *err) {
    pprofio_atomic_file f;
    int rc = pprofio_atomic_create(&f, dir);
    if (rc != 0) {
        pprofio_set_error(err, PPROFIO_ERR_IO, "store: create temp file in %s: %s", dir, strerror(-rc));
        pprofio_atomic_end(&f);
        return rc;
    }
    size_t w = 0;
    f.step = "write";
    if (body->seg)
        rc = pprofio_gzip_fd_deflated(f.fd, body->seg, body->d, &w);
    else
        rc = pprofio_gzip_fd(f.fd, body->raw, body->n, &w);
    if (rc == 0)
        rc = pprofio_atomic_sync(&f);
    if (rc == 0) {
        char a[32], b[32], stem[80];
        pprofio_store_format_time(start_ns, a, sizeof a);
        pprofio_store_format_time(end_ns, b, sizeof b);
        snprintf(stem, sizeof stem, "%s_%s", a, b);
        rc = place(&f, dir, stem, path_out);
    }
    if (rc != 0)
        pprofio_set_error(err, PPROFIO_ERR_IO, "store: %s %s: %s", f.step, f.tmp, strerror(-rc));
    else if (written)
        *written = w;
    pprofio_atomic_end(&f);
    return rc;
}

static int store_body_write(const char *root, const char *service, int type, int64_t start_ns, int64_t end_ns,
                            const store_body *body, size_t *written, char **path_out, pprofio_error *err) {
    if (written)
        *written = 0;
    if (path_out)
        *path_out = NULL;
    char *dir = join(root, service, pprofio_profile_name(type));
    if (!dir)
        return pprofio_set_error(err, PPROFIO_ERR_NOMEM, "store: out of memory");
    int rc = pprofio_mkdirs(dir, 0700);
    if (rc != 0)
        pprofio_set_error(err, PPROFIO_ERR_IO, "store: create %s: %s", dir, strerror(-rc));
    else
        rc = write_file(dir, start_ns, end_ns, body, written, path_out, err);
    pprofio_free(dir);
    if (rc == 0)
        return PPROFIO_OK;
    int code = rc == -ENOMEM ? PPROFIO_ERR_NOMEM : PPROFIO_ERR_IO;
    if (err)
        err->code = code; /* the message says which step; the code must match the return */
    return code;
}

int pprofio_store_write(const char *root, const char *service, int type, int64_t start_ns, int64_t end_ns,
                        const void *raw, size_t n, size_t *written, char **path_out, pprofio_error *err) {
    store_body body = {raw, n, NULL, NULL};
    return store_body_write(root, service, type, start_ns, end_ns, &body, written, path_out, err);
}

int pprofio_store_write_deflated(const char *root, const char *service, int type, int64_t start_ns, int64_t end_ns,
                                 const uint8_t *seg, const pprofio_deflated *d, size_t *written, char **path_out,
                                 pprofio_error *err) {
    store_body body = {NULL, 0, seg, d};
    return store_body_write(root, service, type, start_ns, end_ns, &body, written, path_out, err);
}
