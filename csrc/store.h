/*
 * store.h: local storage of profiles, as files `go tool pprof` opens.
 *
 *   <root>/<service>/<type>/<start>_<end>.pb.gz
 *
 * with <start> and <end> the window in UTC (20261129T214117.123Z), so names
 * sort by time. Each file is written whole or not at all: a temp file in the
 * same folder, fsync, rename without replacing, fsync of the folder. Files
 * are 0600 and the folders the store creates 0700.
 */
#ifndef PPROFIO_STORE_H
#define PPROFIO_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "gz.h"
#include "pprofio.h"

/* pprofio_store_format_time writes 20261129T214117.123Z (needs 21 bytes). */
void pprofio_store_format_time(int64_t unix_ns, char *out, size_t n);

/*
 * pprofio_store_write gzips raw (a serialized pprof Profile) into a new file
 * for the window [start_ns, end_ns]. On success *path_out (if not NULL) is
 * set to the file's path, to be freed with pprofio_free; *written counts
 * the bytes written. On failure no file is left behind.
 */
int pprofio_store_write(const char *root, const char *service, int type, int64_t start_ns,
                        int64_t end_ns, const void *raw, size_t n, size_t *written,
                        char **path_out, pprofio_error *err);

/*
 * pprofio_store_write_deflated is pprofio_store_write for a profile that
 * is deflated already: seg is a segment of a batch (pprofio_batch_encode_
 * shared) that becomes the file's body as it is.
 */
int pprofio_store_write_deflated(const char *root, const char *service, int type, int64_t start_ns, int64_t end_ns,
                                 const uint8_t *seg, const pprofio_deflated *d, size_t *written, char **path_out,
                                 pprofio_error *err);

#endif
