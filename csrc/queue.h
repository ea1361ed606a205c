/*
 * queue.h: the batches waiting for upload, oldest first, in memory and,
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
#ifndef PPROFIO_QUEUE_H
#define PPROFIO_QUEUE_H

#include <stddef.h>
#include <stdint.h>

#include "gz.h"
#include "pprofio.h"

typedef struct pprofio_queue pprofio_queue;

/* What the queue lost, to be reported in a data_dropped event and Stats. */
typedef struct {
    uint64_t batches;
    uint64_t profiles;
    uint64_t bytes;
} pprofio_queue_loss;

typedef struct {
    pprofio_queue_loss evicted; /* over a bound: the oldest went */
    uint64_t corrupt_files;     /* removed: failed a check */
    uint64_t adopted;           /* batches taken over from exited processes */
    uint64_t disk_errors;       /* writes that failed (kept in memory instead) */
} pprofio_queue_counts;

/*
 * pprofio_queue_open opens the queue. spool_dir NULL or "": memory only.
 * max_disk bounds the bytes on disk, max_mem the payload bytes held in
 * memory by batches that are not on disk.
 */
int pprofio_queue_open(const char *spool_dir, const char *instance_id, int64_t max_disk, int64_t max_mem,
                       pprofio_queue **out, pprofio_error *err);

/* pprofio_queue_close releases the lock and memory; files stay for the next process. */
void pprofio_queue_close(pprofio_queue *q);

/*
 * pprofio_queue_push takes ownership of *payload (left empty) and queues it
 * at the back, or, with front != 0, at the front (the parts of a split
 * batch, which must go before anything newer). It never loses the batch
 * for a disk error: it stays in memory, and err says what failed
 * (PPROFIO_ERR_IO is returned, the batch is still queued).
 */
int pprofio_queue_push(pprofio_queue *q, const char *batch_id, uint64_t sequence, uint32_t n_profiles,
                       pprofio_bytes *payload, int front, pprofio_error *err);

/* A view of the oldest batch; payload stays valid until the next call. */
typedef struct {
    char batch_id[33];
    uint64_t sequence;
    uint32_t n_profiles;
    const uint8_t *payload;
    size_t len;
} pprofio_queue_head;

/*
 * pprofio_queue_peek loads the oldest batch; 0 when there is one, 1 when
 * the queue is empty, -1 when it could not be loaded now (out of memory).
 * Corrupt files met on the way are removed and counted.
 */
int pprofio_queue_peek(pprofio_queue *q, pprofio_queue_head *head);

/* pprofio_queue_pop removes the oldest batch (after it was delivered or dropped). */
void pprofio_queue_pop(pprofio_queue *q);

size_t pprofio_queue_len(const pprofio_queue *q);
int64_t pprofio_queue_disk_bytes(const pprofio_queue *q);
int64_t pprofio_queue_mem_bytes(const pprofio_queue *q);

/* pprofio_queue_take_counts copies the counters and resets them to zero. */
void pprofio_queue_take_counts(pprofio_queue *q, pprofio_queue_counts *out);

/* pprofio_crc32 is the CRC-32 (zlib's) of n bytes. */
uint32_t pprofio_crc32(const void *p, size_t n);

#endif
