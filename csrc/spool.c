//go:build ignore

/* spool.c: the batch queue, in memory and in the disk spool (see spool.h). */
#include "spool.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "alloc.h"
#include "batch.h"
#include "clock.h"
#include "errors.h"
#include "sysio.h"

#define MAGIC "PPRQBAT1"
#define VERSION 1u
#define HEADER_LEN 72
#define NAME_LEN (20 + 1 + 32 + 6) /* <order>-<id>.batch */

typedef struct entry {
    struct entry *next;
    uint64_t order;
    char id[33];
    uint64_t seq;
    uint32_t n_profiles;
    int64_t file_bytes; /* > 0 when on disk */
    pprofio_bytes mem;  /* the payload when not on disk, or a copy of the file's (cached) */
    int cached;
} entry;

struct pprofio_spool {
    pthread_mutex_t mu;
    char *dir; /* our own folder, or NULL */
    int lock_fd;
    entry *head;
    size_t len;
    entry *pinned; /* the head while it is being sent: never evicted */
    int64_t max_disk, max_mem, disk_bytes, mem_bytes;
    uint64_t last_order;
    pprofio_bytes loaded; /* the head's file, read by peek */
    pprofio_spool_counts counts;
};

static void put32(uint8_t *p, uint32_t v) { memcpy(p, &v, 4); }
static void put64(uint8_t *p, uint64_t v) { memcpy(p, &v, 8); }
static uint32_t get32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return v; }
static uint64_t get64(const uint8_t *p) { uint64_t v; memcpy(&v, p, 8); return v; }

/* Header: magic[8] version[4] n_profiles[4] sequence[8] len[8] crc[4] hcrc[4] id[32]. */
static void make_header(uint8_t h[HEADER_LEN], const entry *e, const uint8_t *payload, size_t len) {
    memcpy(h, MAGIC, 8);
    put32(h + 8, VERSION);
    put32(h + 12, e->n_profiles);
    put64(h + 16, e->seq);
    put64(h + 24, (uint64_t)len);
    put32(h + 32, pprofio_crc32(payload, len));
    memcpy(h + 40, e->id, 32);
    put32(h + 36, pprofio_crc32(h, 36) ^ pprofio_crc32(h + 40, 32));
}

static int header_ok(const uint8_t h[HEADER_LEN], uint64_t *len) {
    if (memcmp(h, MAGIC, 8) != 0 || get32(h + 8) != VERSION)
        return 0;
    if (get32(h + 36) != (pprofio_crc32(h, 36) ^ pprofio_crc32(h + 40, 32)))
        return 0;
    *len = get64(h + 24);
    return 1;
}

/* path_of writes e's file name into buf; 0 when it does not fit. Allocates nothing. */
static int path_of(const pprofio_spool *q, const entry *e, char buf[PATH_MAX]) {
    int n = snprintf(buf, PATH_MAX, "%s/%020llu-%s.batch", q->dir, (unsigned long long)e->order, e->id);
    return n > 0 && n < PATH_MAX;
}

/* parse_name reads <order>-<id>.batch. */
static int parse_name(const char *name, uint64_t *order, char id[33]) {
    if (strlen(name) != NAME_LEN || name[20] != '-' || strcmp(name + 53, ".batch") != 0)
        return 0;
    for (int i = 0; i < 20; i++)
        if (name[i] < '0' || name[i] > '9')
            return 0;
    *order = strtoull(name, NULL, 10);
    memcpy(id, name + 21, 32);
    id[32] = '\0';
    return pprofio_batch_id_valid(id);
}

static void insert_sorted(pprofio_spool *q, entry *e) {
    entry **pp = &q->head;
    while (*pp && (*pp)->order <= e->order)
        pp = &(*pp)->next;
    e->next = *pp;
    *pp = e;
    q->len++;
    if (e->order > q->last_order)
        q->last_order = e->order;
}

/* unlink_file allocates nothing: a batch popped or evicted must not come back from disk. */
static void unlink_file(const pprofio_spool *q, const entry *e) {
    char p[PATH_MAX];
    if (path_of(q, e, p))
        unlink(p);
}

/* remove_entry takes e out of the list, deletes its file, frees it. */
static void remove_entry(pprofio_spool *q, entry *e) {
    entry **pp = &q->head;
    while (*pp && *pp != e)
        pp = &(*pp)->next;
    if (!*pp)
        return;
    *pp = e->next;
    q->len--;
    if (e->file_bytes > 0) {
        unlink_file(q, e);
        q->disk_bytes -= e->file_bytes;
    }
    if (!e->cached)
        q->mem_bytes -= (int64_t)e->mem.len;
    if (q->pinned == e)
        q->pinned = NULL;
    pprofio_bytes_free(&e->mem);
    pprofio_free(e);
}

static void evict(pprofio_spool *q, entry *e) {
    q->counts.evicted.batches++;
    q->counts.evicted.profiles += e->n_profiles;
    q->counts.evicted.bytes += (uint64_t)(e->file_bytes > 0 ? e->file_bytes : (int64_t)e->mem.len);
    remove_entry(q, e);
}

/* enforce_bounds evicts the oldest batches (never the one in flight) until both bounds hold. */
static void enforce_bounds(pprofio_spool *q) {
    while (q->disk_bytes > q->max_disk) {
        entry *e = q->head;
        while (e && (e == q->pinned || e->file_bytes == 0))
            e = e->next;
        if (!e)
            break;
        evict(q, e);
    }
    while (q->mem_bytes > q->max_mem) {
        entry *e = q->head;
        while (e && (e == q->pinned || e->mem.len == 0 || e->cached))
            e = e->next;
        if (!e)
            break;
        evict(q, e);
    }
}

/* ---- the disk side ---------------------------------------------------- */

static char *join2(const char *a, const char *b) {
    size_t n = strlen(a) + strlen(b) + 2;
    char *p = pprofio_malloc(n);
    if (p)
        snprintf(p, n, "%s/%s", a, b);
    return p;
}

static int is_tmp(const char *name) { return strncmp(name, ".tmp-", 5) == 0; }

/* adopt moves the batches of an exited process's folder into ours. */
static void adopt(pprofio_spool *q, const char *other) {
    char *lock = join2(other, ".lock");
    if (!lock)
        return;
    int fd = pprofio_open(lock, O_RDWR, 0); /* a folder without its lock file is not a spool folder */
    if (fd < 0) {
        if (fd == -ENOENT) /* ...unless an adopter was killed between unlinking the lock and rmdir */
            rmdir(other);  /* then, if empty, it goes: a live folder appears under its name only locked */
        pprofio_free(lock);
        return;
    }
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) { /* its owner is alive */
        pprofio_close(fd);
        pprofio_free(lock);
        return;
    }
    DIR *d = opendir(other);
    struct dirent *de;
    int left = d == NULL; /* batches that stay here for a later process */
    while (d && (de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.' && !is_tmp(de->d_name))
            continue;
        char *src = join2(other, de->d_name);
        char *dst = join2(q->dir, de->d_name);
        if (!src || !dst)
            left = 1;
        if (src && dst) {
            uint64_t order;
            char id[33];
            if (!is_tmp(de->d_name) && parse_name(de->d_name, &order, id)) {
                if (rename(src, dst) == 0)
                    q->counts.adopted++;
                else
                    left = 1; /* it stays where it is, for a later process: never delete a batch */
            } else {
                if (!is_tmp(de->d_name))
                    q->counts.corrupt_files++; /* a stranger: removed and counted, as in load_entry */
                unlink(src); /* a temp file or a stranger: nothing to deliver */
            }
        }
        pprofio_free(src);
        pprofio_free(dst);
    }
    if (d)
        closedir(d);
    if (!left) { /* empty now: the lock file goes, then the folder */
        unlink(lock);
        rmdir(other);
    } /* else the lock file stays, so a later process adopts what is left */
    pprofio_close(fd);
    pprofio_free(lock);
}

/* load_entry reads a batch file's header into a new entry, or removes the file. */
static void load_entry(pprofio_spool *q, const char *name) {
    uint64_t order;
    char id[33];
    char *path = join2(q->dir, name);
    if (!path)
        return;
    int ok = 0;
    struct stat st;
    uint8_t h[HEADER_LEN];
    uint64_t len = 0;
    if (parse_name(name, &order, id) && stat(path, &st) == 0 && S_ISREG(st.st_mode)) {
        int fd = pprofio_open(path, O_RDONLY, 0);
        if (fd >= 0) {
            ssize_t r;
            do {
                r = pread(fd, h, sizeof h, 0);
            } while (r < 0 && errno == EINTR);
            ok = r == HEADER_LEN && header_ok(h, &len) && (uint64_t)st.st_size == HEADER_LEN + len &&
                 memcmp(h + 40, id, 32) == 0;
            pprofio_close(fd);
        }
    }
    entry *e = ok ? pprofio_calloc(1, sizeof *e) : NULL;
    if (!e) {
        if (!ok) {
            unlink(path);
            q->counts.corrupt_files++;
        }
        pprofio_free(path);
        return;
    }
    e->order = order;
    memcpy(e->id, id, 33);
    e->seq = get64(h + 16);
    e->n_profiles = get32(h + 12);
    e->file_bytes = st.st_size;
    q->disk_bytes += e->file_bytes;
    insert_sorted(q, e);
    pprofio_free(path);
}

/* adopt_exited takes over the folders of exited processes (their lock is free). */
static void adopt_exited(pprofio_spool *q, const char *spool, const char *instance) {
    DIR *d = opendir(spool);
    struct dirent *de;
    while (d && (de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.' || strcmp(de->d_name, instance) == 0)
            continue;
        char *other = join2(spool, de->d_name);
        struct stat st;
        if (other && lstat(other, &st) == 0 && S_ISDIR(st.st_mode))
            adopt(q, other);
        pprofio_free(other);
    }
    if (d)
        closedir(d);
}

/* load_own queues the batches in our own folder and removes temp files left by a crash. */
static void load_own(pprofio_spool *q) {
    DIR *d = opendir(q->dir);
    struct dirent *de;
    while (d && (de = readdir(d)) != NULL) {
        if (is_tmp(de->d_name)) {
            char *p = join2(q->dir, de->d_name);
            if (p)
                unlink(p);
            pprofio_free(p);
        } else if (de->d_name[0] != '.') {
            load_entry(q, de->d_name);
        }
    }
    if (d)
        closedir(d);
}

static int open_disk(pprofio_spool *q, const char *spool, const char *instance, pprofio_error *err) {
    int rc = pprofio_mkdirs(spool, 0700);
    if (rc != 0)
        return pprofio_set_error(err, PPROFIO_ERR_IO, "spool: create %s: %s", spool, strerror(-rc));
    /*
     * The folder appears under its own name only with its lock held: it is
     * made as .tmp-<instance> (which no scan looks at), locked, then renamed,
     * so a process starting at the same moment never takes it for the
     * folder of an exited one.
     */
    q->dir = join2(spool, instance);
    char *tmpname = pprofio_malloc(strlen(instance) + 8);
    char *staging = NULL, *lock = NULL;
    if (tmpname) {
        snprintf(tmpname, strlen(instance) + 8, ".tmp-%s", instance);
        staging = join2(spool, tmpname);
    }
    if (staging)
        lock = join2(staging, ".lock");
    pprofio_free(tmpname);
    if (!q->dir || !lock) {
        pprofio_free(staging);
        pprofio_free(lock);
        return pprofio_set_error(err, PPROFIO_ERR_NOMEM, "spool: out of memory");
    }
    rc = pprofio_mkdirs(staging, 0700);
    if (rc == 0) {
        q->lock_fd = pprofio_open(lock, O_RDWR | O_CREAT, 0600);
        rc = q->lock_fd < 0 ? q->lock_fd : (flock(q->lock_fd, LOCK_EX | LOCK_NB) == 0 ? 0 : -errno);
    }
    if (rc == 0 && rename(staging, q->dir) != 0) {
        rc = -errno;
        if (rc == -ENOTEMPTY || rc == -EEXIST) { /* the folder is there already: this instance reopens it */
            pprofio_close(q->lock_fd);
            unlink(lock);
            char *own = join2(q->dir, ".lock");
            q->lock_fd = own ? pprofio_open(own, O_RDWR | O_CREAT, 0600) : -ENOMEM;
            rc = q->lock_fd < 0 ? q->lock_fd : (flock(q->lock_fd, LOCK_EX | LOCK_NB) == 0 ? 0 : -errno);
            pprofio_free(own);
        }
    }
    if (rc != 0 || access(staging, F_OK) == 0) {
        unlink(lock);
        rmdir(staging);
    }
    pprofio_free(lock);
    pprofio_free(staging);
    if (rc != 0)
        return pprofio_set_error(err, PPROFIO_ERR_IO, "spool: lock %s: %s", q->dir, strerror(-rc));
    adopt_exited(q, spool, instance);
    load_own(q);
    enforce_bounds(q);
    return PPROFIO_OK;
}

int pprofio_spool_open(const char *spool_dir, const char *instance_id, int64_t max_disk, int64_t max_mem,
                       pprofio_spool **out, pprofio_error *err) {
    *out = NULL;
    pprofio_spool *q = pprofio_calloc(1, sizeof *q);
    if (!q)
        return pprofio_set_error(err, PPROFIO_ERR_NOMEM, "spool: out of memory");
    q->lock_fd = -1;
    q->max_disk = max_disk;
    q->max_mem = max_mem;
    if (pthread_mutex_init(&q->mu, NULL) != 0) {
        pprofio_free(q);
        return pprofio_set_error(err, PPROFIO_ERR_NOMEM, "spool: out of memory");
    }
    if (spool_dir && *spool_dir) {
        if (!pprofio_batch_id_valid(instance_id)) {
            pprofio_spool_close(q);
            return pprofio_set_field_error(err, PPROFIO_ERR_INVALID, PPROFIO_FIELD_INSTANCE_ID,
                                           "instance_id: must be 32 lowercase hex characters");
        }
        int rc = open_disk(q, spool_dir, instance_id, err);
        if (rc != PPROFIO_OK) {
            if (err)
                err->field = PPROFIO_FIELD_SPOOL_DIR; /* the folder cannot be used */
            pprofio_spool_close(q);
            return rc;
        }
    }
    *out = q;
    return PPROFIO_OK;
}

void pprofio_spool_close(pprofio_spool *q) {
    if (!q)
        return;
    while (q->head) { /* frees memory only: files stay for the next process */
        entry *e = q->head;
        q->head = e->next;
        pprofio_bytes_free(&e->mem);
        pprofio_free(e);
    }
    pprofio_bytes_free(&q->loaded);
    if (q->lock_fd >= 0)
        pprofio_close(q->lock_fd); /* releases the flock */
    pprofio_free(q->dir);
    pthread_mutex_destroy(&q->mu);
    pprofio_free(q);
}

/*
 * keep_copy keeps the payload of a batch just written to disk in memory
 * when it goes to the front of an empty queue: the healthy case, where it
 * is sent next, is then sent from memory; files are read back only for
 * batches that waited behind another or were adopted. The copy is not
 * counted in mem_bytes: at most one batch has one, and it goes with it.
 */
static void keep_copy(pprofio_spool *q, entry *e, pprofio_bytes *payload, int front) {
    if (!front && q->len == 0 && (int64_t)payload->len <= q->max_mem) {
        e->mem = *payload;
        *payload = (pprofio_bytes){0};
        e->cached = 1;
        return;
    }
    pprofio_bytes_free(payload);
}

/* persist writes e's payload to its file atomically. Returns 0 or -errno. */
static int persist(pprofio_spool *q, entry *e, const uint8_t *payload, size_t len, const char **step) {
    char path[PATH_MAX];
    *step = "create";
    if (!path_of(q, e, path))
        return -ENAMETOOLONG;
    pprofio_atomic_file f;
    int rc = pprofio_atomic_create(&f, q->dir);
    if (rc == 0) {
        uint8_t h[HEADER_LEN];
        make_header(h, e, payload, len);
        f.step = "write";
        rc = pprofio_write_all(f.fd, h, sizeof h);
        if (rc == 0)
            rc = pprofio_write_all(f.fd, payload, len);
    }
    if (rc == 0)
        rc = pprofio_atomic_sync(&f);
    if (rc == 0)
        rc = pprofio_atomic_rename(&f, path, 1);
    *step = f.step;
    pprofio_atomic_end(&f);
    return rc;
}

int pprofio_spool_push(pprofio_spool *q, const char *batch_id, uint64_t sequence, uint32_t n_profiles,
                       pprofio_bytes *payload, int front, pprofio_error *err) {
    entry *e = pprofio_calloc(1, sizeof *e);
    if (!e)
        return pprofio_set_error(err, PPROFIO_ERR_NOMEM, "spool: out of memory");
    snprintf(e->id, sizeof e->id, "%s", batch_id);
    e->seq = sequence;
    e->n_profiles = n_profiles;
    pthread_mutex_lock(&q->mu);
    if (front && q->head) {
        e->order = q->head->order > 0 ? q->head->order - 1 : 0;
    } else {
        const pprofio_clock *clock = pprofio_clock_system();
        uint64_t now = (uint64_t)clock->now_ns(clock);
        e->order = now > q->last_order ? now : q->last_order + 1;
    }
    int rc = PPROFIO_OK;
    if (q->dir) {
        const char *step;
        int wrc = persist(q, e, payload->p, payload->len, &step);
        if (wrc == 0) {
            e->file_bytes = HEADER_LEN + (int64_t)payload->len;
            q->disk_bytes += e->file_bytes;
            keep_copy(q, e, payload, front);
        } else {
            q->counts.disk_errors++;
            rc = pprofio_set_error(err, PPROFIO_ERR_IO, "spool: %s a batch in %s: %s (kept in memory)", step,
                                   q->dir, strerror(-wrc));
        }
    }
    if (e->file_bytes == 0 && !e->cached) {
        e->mem = *payload;
        *payload = (pprofio_bytes){0};
        q->mem_bytes += (int64_t)e->mem.len;
    }
    if (front && q->pinned == NULL) {
        e->next = q->head;
        q->head = e;
        q->len++;
    } else {
        insert_sorted(q, e);
    }
    enforce_bounds(q);
    pthread_mutex_unlock(&q->mu);
    return rc;
}

/* read_file loads e's file into q->loaded and checks it whole. */
static int read_file(pprofio_spool *q, const entry *e) {
    char path[PATH_MAX];
    if (!path_of(q, e, path))
        return PPROFIO_ERR_IO;
    int fd = pprofio_open(path, O_RDONLY, 0);
    if (fd < 0)
        return PPROFIO_ERR_IO;
    q->loaded.len = 0;
    int rc = pprofio_bytes_grow(&q->loaded, (size_t)e->file_bytes, NULL, NULL);
    size_t got = 0;
    while (rc == PPROFIO_OK && got < (size_t)e->file_bytes) {
        ssize_t r = read(fd, q->loaded.p + got, (size_t)e->file_bytes - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            rc = PPROFIO_ERR_FORMAT;
        else
            got += (size_t)r;
    }
    pprofio_close(fd);
    if (rc != PPROFIO_OK)
        return rc;
    q->loaded.len = got;
    uint64_t len;
    const uint8_t *h = q->loaded.p;
    if (!header_ok(h, &len) || HEADER_LEN + len != got || memcmp(h + 40, e->id, 32) != 0 ||
        get32(h + 32) != pprofio_crc32(h + HEADER_LEN, (size_t)len))
        return PPROFIO_ERR_FORMAT;
    return PPROFIO_OK;
}

int pprofio_spool_peek(pprofio_spool *q, pprofio_spool_head *head) {
    pthread_mutex_lock(&q->mu);
    int rc = 1;
    while (q->head) {
        entry *e = q->head;
        if (e->file_bytes > 0 && !e->cached) {
            int r = read_file(q, e);
            if (r == PPROFIO_ERR_NOMEM) {
                rc = -1; /* not empty: try again later */
                break;
            }
            if (r != PPROFIO_OK) {
                q->counts.corrupt_files++; /* counted once: damage is not an eviction */
                remove_entry(q, e);
                continue;
            }
            head->payload = q->loaded.p + HEADER_LEN;
            head->len = q->loaded.len - HEADER_LEN;
        } else {
            head->payload = e->mem.p;
            head->len = e->mem.len;
        }
        memcpy(head->batch_id, e->id, 33);
        head->sequence = e->seq;
        head->n_profiles = e->n_profiles;
        q->pinned = e;
        rc = 0;
        break;
    }
    pthread_mutex_unlock(&q->mu);
    return rc;
}

void pprofio_spool_pop(pprofio_spool *q) {
    pthread_mutex_lock(&q->mu);
    if (q->head)
        remove_entry(q, q->head);
    q->pinned = NULL;
    pthread_mutex_unlock(&q->mu);
}

size_t pprofio_spool_len(const pprofio_spool *q) {
    pthread_mutex_lock((pthread_mutex_t *)&q->mu);
    size_t n = q->len;
    pthread_mutex_unlock((pthread_mutex_t *)&q->mu);
    return n;
}

int64_t pprofio_spool_disk_bytes(const pprofio_spool *q) {
    pthread_mutex_lock((pthread_mutex_t *)&q->mu);
    int64_t n = q->disk_bytes;
    pthread_mutex_unlock((pthread_mutex_t *)&q->mu);
    return n;
}

int64_t pprofio_spool_mem_bytes(const pprofio_spool *q) {
    pthread_mutex_lock((pthread_mutex_t *)&q->mu);
    int64_t n = q->mem_bytes;
    pthread_mutex_unlock((pthread_mutex_t *)&q->mu);
    return n;
}

void pprofio_spool_take_counts(pprofio_spool *q, pprofio_spool_counts *out) {
    pthread_mutex_lock(&q->mu);
    *out = q->counts;
    q->counts = (pprofio_spool_counts){0};
    pthread_mutex_unlock(&q->mu);
}
