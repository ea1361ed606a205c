/*
 * spool.h: the batches waiting for upload, oldest first, in memory and,
 * when a spool folder is configured, on disk so they survive a crash or a
 * restart.
 *
 * On disk each process owns one folder, <spool>/<instance_id>/, and holds
 * an flock on its .lock file for as long as it runs. A process that opens
 * the spool adopts the folders whose lock is free (their owner has exited)
 * by moving their batches into its own, so two live processes never send
 * each other's batches, and nothing a dead one left is lost.
 *
 * A batch file is <order>-<batch_id>.batch: a 72-byte header (magic,
 * version, profile count, sequence, payload length, CRC-32s of payload and
 * header, batch id) then the gzipped UploadRequest. It is written to a temp
 * file, fsynced and renamed, so it is whole or absent. A file that fails
 * any check is removed and counted, never sent.
 */
#ifndef PPROFIO_SPOOL_H
#define PPROFIO_SPOOL_H

#include <stddef.h>
#include <stdint.h>

#include "gz.h"
#include "pprofio.h"

typedef struct pprofio_spool pprofio_spool;

/* What the queue lost, to be reported in a data_dropped event and Stats. */
typedef struct {
    uint64_t batches;
    uint64_t profiles;
    uint64_t bytes;
} pprofio_spool_loss;

typedef struct {
    pprofio_spool_loss evicted; /* over a bound: the oldest went */
    uint64_t corrupt_files;     /* removed: failed a check */
    uint64_t adopted;           /* batches taken over from exited processes */
    uint64_t disk_errors;       /* writes that failed (kept in memory instead) */
} pprofio_spool_counts;

/*
 * pprofio_spool_open opens the queue. spool_dir NULL or "": memory only.
 * max_disk bounds the bytes on disk, max_mem the payload bytes held in
 * memory by batches that are not on disk.
 */
int pprofio_spool_open(const char *spool_dir, const char *instance_id, int64_t max_disk, int64_t max_mem,
                       pprofio_spool **out, pprofio_error *err);

/* pprofio_spool_close releases the lock and memory; files stay for the next process. */
void pprofio_spool_close(pprofio_spool *q);

/*
 * pprofio_spool_push takes ownership of *payload (left empty) and queues it
 * at the back, or, with front != 0, at the front (the parts of a split
 * batch, which must go before anything newer). It never loses the batch
 * for a disk error: it stays in memory, and err says what failed
 * (PPROFIO_ERR_IO is returned, the batch is still queued).
 */
int pprofio_spool_push(pprofio_spool *q, const char *batch_id, uint64_t sequence, uint32_t n_profiles,
                       pprofio_bytes *payload, int front, pprofio_error *err);

/* A view of the oldest batch; payload stays valid until the next call. */
typedef struct {
    char batch_id[33];
    uint64_t sequence;
    uint32_t n_profiles;
    const uint8_t *payload;
    size_t len;
} pprofio_spool_head;

/*
 * pprofio_spool_peek loads the oldest batch; 0 when there is one, 1 when
 * the queue is empty, -1 when it could not be loaded now (out of memory).
 * Corrupt files met on the way are removed and counted.
 */
int pprofio_spool_peek(pprofio_spool *q, pprofio_spool_head *head);

/* pprofio_spool_pop removes the oldest batch (after it was delivered or dropped). */
void pprofio_spool_pop(pprofio_spool *q);

size_t pprofio_spool_len(const pprofio_spool *q);
int64_t pprofio_spool_disk_bytes(const pprofio_spool *q);
int64_t pprofio_spool_mem_bytes(const pprofio_spool *q);

/* pprofio_spool_take_counts copies the counters and resets them to zero. */
void pprofio_spool_take_counts(pprofio_spool *q, pprofio_spool_counts *out);

#endif
