/*
 * fuzz_spool.c: a libFuzzer target for the disk spool's file reader
 * (pprofio_queue_open, _peek and _pop in csrc/queue.c), which reads back
 * files that a crash, a full disk, another version or another program may
 * have left: a 72-byte header (magic, version, profile count, sequence,
 * payload length, CRC-32s of payload and header, batch id), then the payload.
 *
 * Each input becomes one to three files in the folder of an exited process
 * (its lock free); a new queue adopts them and delivers everything it keeps.
 * The first byte steers: bits 0-2 fix the header CRC, the payload CRC and
 * the length field after the mutation (so mutations get past the checks
 * they do not target), bit 3 names a file after the id in its own header
 * (else the target writes a fixed id into both), bit 4 adds a temp file
 * and a file with a foreign name, bits 5-6 the number of files.
 *
 * Promises (queue.h): opening never fails on what is in the folder; each
 * batch delivered is exactly a file's payload, whose length and CRC-32 match
 * its header, in file order; every file is either delivered or removed and
 * counted as corrupt; nothing is left on disk once all is delivered.
 */
#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../csrc/batch.h"
#include "../../csrc/queue.h"
#include "../../csrc/sysio.h"
#include "fuzz.h"

#define HEADER_LEN 72
#define MAX_FILES 3
#define OWNER "0000000000000000000000000000dead" /* the exited process */
#define SELF "0000000000000000000000000000beef"

static char root[256];

static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *f) {
    (void)st;
    (void)flag;
    (void)f;
    remove(p);
    return 0;
}

static void rm_rf(const char *p) { nftw(p, rm_one, 16, FTW_DEPTH | FTW_PHYS); }

static void put_file(const char *dir, const char *name, const uint8_t *p, size_t n) {
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    fuzz_require(fd >= 0);
    fuzz_require(n == 0 || write(fd, p, n) == (ssize_t)n);
    close(fd);
}

static void put32(uint8_t *p, uint32_t v) { memcpy(p, &v, 4); }
static void put64(uint8_t *p, uint64_t v) { memcpy(p, &v, 8); }
static uint32_t get32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return v; }
static uint64_t get64(const uint8_t *p) { uint64_t v; memcpy(&v, p, 8); return v; }

static int entries_in(const char *dir) {
    DIR *d = opendir(dir);
    int n = 0;
    struct dirent *e;
    while (d && (e = readdir(d)) != NULL)
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..") && strcmp(e->d_name, ".lock"))
            n++;
    if (d)
        closedir(d);
    return n;
}

typedef struct {
    uint8_t *p;
    size_t n;
    char id[33];
    int delivered;
} file;

/* make_file cuts one file from the input and applies the fix-ups that flags ask for. */
static void make_file(file *f, const uint8_t *p, size_t n, int k, uint8_t flags) {
    f->p = malloc(n ? n : 1);
    fuzz_require(f->p != NULL);
    memcpy(f->p, p, n);
    f->n = n;
    f->delivered = 0;
    snprintf(f->id, sizeof f->id, "%031x%x", 0xabcu, (unsigned)k);
    if (n >= HEADER_LEN && (flags & 8)) {
        char own[33];
        memcpy(own, f->p + 40, 32);
        own[32] = '\0';
        if (pprofio_batch_id_valid(own))
            memcpy(f->id, own, 33);
    } else if (n >= HEADER_LEN) {
        memcpy(f->p + 40, f->id, 32);
    }
    if (n >= HEADER_LEN && (flags & 4))
        put64(f->p + 24, n - HEADER_LEN);
    if (n >= HEADER_LEN && (flags & 2))
        put32(f->p + 32, pprofio_crc32(f->p + HEADER_LEN, n - HEADER_LEN));
    if (n >= HEADER_LEN && (flags & 1))
        put32(f->p + 36, pprofio_crc32(f->p, 36) ^ pprofio_crc32(f->p + 40, 32));
}

/* matches: whether h is exactly file f's batch (its payload, length, CRC and header fields). */
static int matches(const file *f, const pprofio_queue_head *h) {
    return !f->delivered && strcmp(f->id, h->batch_id) == 0 && f->n >= HEADER_LEN && h->len == f->n - HEADER_LEN &&
           h->len == get64(f->p + 24) && (h->len == 0 || memcmp(h->payload, f->p + HEADER_LEN, h->len) == 0) &&
           pprofio_crc32(h->payload, h->len) == get32(f->p + 32) && h->sequence == get64(f->p + 16) &&
           h->n_profiles == get32(f->p + 12);
}

/*
 * check_head finds the file h came from: the oldest one not yet delivered
 * that it matches exactly (two files may carry one id; the damaged one of
 * them is skipped by the queue, and so here).
 */
static void check_head(file *files, int nf, int *next, const pprofio_queue_head *h) {
    int k = *next;
    while (k < nf && !matches(&files[k], h))
        k++;
    fuzz_require(k < nf);
    files[k].delivered = 1;
    *next = k + 1;
}

FUZZ_ENTRY(spool) {
    if (size == 0)
        return 0;
    if (!root[0]) {
        const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
        snprintf(root, sizeof root, "%s/pprofio-fuzz-spool-%d", base, (int)getpid());
    }
    uint8_t flags = data[0];
    data++;
    size--;
    char spool[300], owner[340], self[340];
    snprintf(spool, sizeof spool, "%s/spool", root);
    snprintf(owner, sizeof owner, "%s/%s", spool, OWNER);
    snprintf(self, sizeof self, "%s/%s", spool, SELF);
    rm_rf(root);
    fuzz_require(pprofio_mkdirs(owner, 0700) == 0);
    put_file(owner, ".lock", NULL, 0);

    int nf = 1 + (flags >> 5) % MAX_FILES;
    file files[MAX_FILES];
    for (int k = 0; k < nf; k++) {
        size_t from = size * (size_t)k / (size_t)nf, to = size * (size_t)(k + 1) / (size_t)nf;
        make_file(&files[k], data + from, to - from, k, flags);
        char name[64];
        snprintf(name, sizeof name, "%020d-%s.batch", k + 1, files[k].id);
        put_file(owner, name, files[k].p, files[k].n);
    }
    int strangers = 0;
    if (flags & 16) {
        put_file(owner, ".tmp-000001", data, size);
        put_file(owner, "00000000000000000009-notabatch.batch", data, size);
        strangers = 1;
    }

    pprofio_queue *q = NULL;
    pprofio_error err = {0};
    fuzz_require(pprofio_queue_open(spool, SELF, INT64_C(1) << 40, INT64_C(1) << 40, &q, &err) == PPROFIO_OK);
    pprofio_queue_head h;
    int r, next = 0, delivered = 0;
    while ((r = pprofio_queue_peek(q, &h)) == 0) {
        check_head(files, nf, &next, &h);
        delivered++;
        pprofio_queue_pop(q);
    }
    fuzz_require(r == 1);
    pprofio_queue_counts c;
    pprofio_queue_take_counts(q, &c);
    fuzz_require((uint64_t)delivered + c.corrupt_files == (uint64_t)(nf + strangers));
    fuzz_require(pprofio_queue_len(q) == 0 && pprofio_queue_disk_bytes(q) == 0);
    pprofio_queue_close(q);
    fuzz_require(entries_in(self) == 0);
    fuzz_require(access(owner, F_OK) != 0); /* the exited process's folder was emptied and removed */
    for (int k = 0; k < nf; k++)
        free(files[k].p);
    rm_rf(root);
    return 0;
}
