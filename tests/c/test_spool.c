/*
 * test_spool.c: the batches waiting for upload (csrc/spool.h), in memory
 * and in the crash-safe disk spool.
 *
 *   <spool>/<instance>/            0700, one per process, flocked via .lock
 *   <spool>/<instance>/<order>-<batch_id>.batch
 *                                  0600, a 72-byte header then the payload,
 *                                  written to .tmp-XXXXXX, fsynced, renamed
 *
 * Batches come out oldest first (push_front: before everything), byte for
 * byte as they went in. A bound evicts the oldest, never the batch being
 * sent, and counts it. A process that opens the spool adopts what exited
 * processes left (never what a live one holds). A damaged, truncated or
 * foreign file is removed and counted, never delivered. A full disk is
 * reported and the batch kept in memory. And a process SIGKILLed at any
 * point loses no batch whose push had returned and leaves nothing that
 * could be delivered wrong (the kill test).
 *
 * The tests run as root, so a full disk is made with a tiny tmpfs in a
 * private mount namespace when this sandbox allows it, and with
 * RLIMIT_FSIZE otherwise (and always, in its own test).
 */
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>

#include "../../csrc/batch.h"
#include "../../csrc/spool.h"
#include "../../csrc/sysio.h"
#include "helpers.h"

TestSuite(spool, .timeout = HANG_GUARD_S, .fini = scratch_cleanup);

#define HEADER_LEN 72 /* spool.h */
#define BIG (INT64_C(1) << 40)
#define MAX_RUNS 2000

/* ---- batches made from an index ------------------------------------------------ */

/*
 * Batch i has an id, a sequence, a profile count and payload bytes that all
 * follow from i, so whatever comes out of the queue can be checked against
 * what went in. The payload starts with i itself (8 bytes, when it has them).
 */
static void batch_id_of(uint64_t i, char out[33]) {
    uint64_t s = i * UINT64_C(0x2545F4914F6CDD1D) + 7;
    unsigned long long a = splitmix64(&s), b = splitmix64(&s);
    snprintf(out, 33, "%016llx%016llx", a, b);
}

static uint64_t seq_of(uint64_t i) { return 1000 + i; }
static uint32_t profiles_of(uint64_t i) { return (uint32_t)(i % 5) + 1; }
static void instance_of(unsigned n, char out[33]) { snprintf(out, 33, "%032x", n); }

static void fill_payload(uint64_t i, uint8_t *p, size_t n) {
    uint64_t s = i ^ UINT64_C(0x5eed5eed);
    for (size_t k = 0; k < n; k += 8) {
        uint64_t r = splitmix64(&s);
        memcpy(p + k, &r, n - k < 8 ? n - k : 8);
    }
    memcpy(p, &i, n < 8 ? n : 8);
}

/* payload_of returns batch i's n bytes in core memory, as the agent hands them over. */
static pprofio_bytes payload_of(uint64_t i, size_t n) {
    pprofio_bytes b = {0};
    cr_assert_eq(pprofio_bytes_grow(&b, n ? n : 1, NULL, NULL), PPROFIO_OK);
    fill_payload(i, b.p, n);
    b.len = n;
    return b;
}

static int payload_is(uint64_t i, const uint8_t *p, size_t n) {
    if (n == 0)
        return 1;
    uint8_t *want = malloc(n);
    cr_assert(want);
    fill_payload(i, want, n);
    int same = p && memcmp(p, want, n) == 0;
    free(want);
    return same;
}

static int push_batch(pprofio_spool *q, uint64_t i, size_t n, int front, pprofio_error *err) {
    pprofio_bytes b = payload_of(i, n);
    char id[33];
    batch_id_of(i, id);
    int rc = pprofio_spool_push(q, id, seq_of(i), profiles_of(i), &b, front, err);
    if (rc != PPROFIO_ERR_NOMEM)
        cr_assert(b.p == NULL && b.len == 0, "push of batch %llu returned %d but left the payload with the caller",
                  (unsigned long long)i, rc);
    pprofio_bytes_free(&b);
    return rc;
}

static void push_ok(pprofio_spool *q, uint64_t i, size_t n) {
    pprofio_error err = {0};
    int rc = push_batch(q, i, n, 0, &err);
    cr_assert_eq(rc, PPROFIO_OK, "push of batch %llu: %d (%s): %s", (unsigned long long)i, rc, pprofio_strstatus(rc),
                 err.msg);
}

static void push_front_ok(pprofio_spool *q, uint64_t i, size_t n) {
    pprofio_error err = {0};
    int rc = push_batch(q, i, n, 1, &err);
    cr_assert_eq(rc, PPROFIO_OK, "push_front of batch %llu: %d (%s): %s", (unsigned long long)i, rc,
                 pprofio_strstatus(rc), err.msg);
}

static uint64_t index_in(const uint8_t *p, size_t n) {
    uint64_t i = UINT64_MAX;
    if (n >= 8)
        memcpy(&i, p, 8);
    return i;
}

/* expect_head checks that the oldest batch is batch i, n bytes, whole. */
static void expect_head_is(pprofio_spool *q, uint64_t i, size_t n, pprofio_spool_head *h) {
    memset(h, 0, sizeof *h);
    int rc = pprofio_spool_peek(q, h);
    cr_assert_eq(rc, 0, "peek found no batch (%d); want batch %llu", rc, (unsigned long long)i);
    char id[33];
    batch_id_of(i, id);
    cr_assert(!strcmp(h->batch_id, id), "the head is batch %s (index %lld), want batch %llu (%s)", h->batch_id,
              (long long)index_in(h->payload, h->len), (unsigned long long)i, id);
    assert_i64(h->sequence, seq_of(i));
    assert_i64(h->n_profiles, profiles_of(i));
    assert_i64(h->len, n);
    cr_assert(payload_is(i, h->payload, h->len), "batch %llu: the payload differs from what was pushed",
              (unsigned long long)i);
}

static void expect_head(pprofio_spool *q, uint64_t i, size_t n) {
    pprofio_spool_head h;
    expect_head_is(q, i, n, &h);
}

static void deliver(pprofio_spool *q, uint64_t i, size_t n) {
    expect_head(q, i, n);
    pprofio_spool_pop(q);
}

static void expect_empty(pprofio_spool *q) {
    pprofio_spool_head h;
    memset(&h, 0, sizeof h);
    int rc = pprofio_spool_peek(q, &h);
    cr_assert_eq(rc, 1, "peek found batch %s (index %lld) in a queue that should be empty", h.batch_id,
                 rc == 0 ? (long long)index_in(h.payload, h.len) : -1LL);
    assert_i64(pprofio_spool_len(q), 0);
}

static pprofio_spool *open_queue(const char *spool, const char *instance, int64_t max_disk, int64_t max_mem) {
    pprofio_spool *q = NULL;
    pprofio_error err = {0};
    int rc = pprofio_spool_open(spool, instance, max_disk, max_mem, &q, &err);
    cr_assert_eq(rc, PPROFIO_OK, "open %s / %s: %d (%s): %s", spool ? spool : "(memory)",
                 instance ? instance : "-", rc, pprofio_strstatus(rc), err.msg);
    cr_assert_not_null(q);
    return q;
}

static pprofio_spool_counts take_counts(pprofio_spool *q) {
    pprofio_spool_counts c;
    memset(&c, 0xA5, sizeof c);
    pprofio_spool_take_counts(q, &c);
    return c;
}

static void expect_counts_zero(pprofio_spool *q) {
    pprofio_spool_counts c = take_counts(q);
    assert_i64(c.evicted.batches, 0);
    assert_i64(c.evicted.profiles, 0);
    assert_i64(c.evicted.bytes, 0);
    assert_i64(c.corrupt_files, 0);
    assert_i64(c.adopted, 0);
    assert_i64(c.disk_errors, 0);
}

/* ---- files -------------------------------------------------------------------------- */

static int batch_files(const char *dir) { return count_entries(dir, NULL, ".batch"); }
static int tmp_files(const char *dir) { return count_entries(dir, ".tmp-", NULL); }

static int exists(const char *path) {
    struct stat st;
    return lstat(path, &st) == 0;
}

static int64_t file_size(const char *path) {
    struct stat st;
    cr_assert_eq(stat(path, &st), 0, "stat %s: %s", path, strerror(errno));
    return (int64_t)st.st_size;
}

/* batch_bytes sums the sizes of the .batch files in dir. */
static int64_t batch_bytes(const char *dir) {
    DIR *d = opendir(dir);
    if (!d)
        return 0;
    int64_t sum = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        size_t len = strlen(e->d_name);
        if (len > 6 && !strcmp(e->d_name + len - 6, ".batch")) {
            char *p = path_join(dir, e->d_name);
            sum += file_size(p);
            free(p);
        }
    }
    closedir(d);
    return sum;
}

/* file_of returns the path of batch i's file in dir (new string), or NULL. */
static char *file_of(const char *dir, uint64_t i) {
    char id[33], suffix[64];
    batch_id_of(i, id);
    snprintf(suffix, sizeof suffix, "-%s.batch", id);
    DIR *d = opendir(dir);
    if (!d)
        return NULL;
    char *found = NULL;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        size_t len = strlen(e->d_name);
        if (len == 20 + strlen(suffix) && !strcmp(e->d_name + 20, suffix)) {
            cr_assert_null(found, "batch %llu has two files in %s", (unsigned long long)i, dir);
            found = path_join(dir, e->d_name);
        }
    }
    closedir(d);
    return found;
}

static char *must_file_of(const char *dir, uint64_t i) {
    char *p = file_of(dir, i);
    cr_assert_not_null(p, "batch %llu has no file in %s", (unsigned long long)i, dir);
    return p;
}

static void write_bytes(const char *path, const void *p, size_t n) {
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    cr_assert_geq(fd, 0, "create %s: %s", path, strerror(errno));
    cr_assert_eq(write(fd, p, n), (ssize_t)n, "write %s: %s", path, strerror(errno));
    close(fd);
}

/* poke xors one byte of a file at off. */
static void poke(const char *path, off_t off, uint8_t x) {
    int fd = open(path, O_RDWR | O_CLOEXEC);
    cr_assert_geq(fd, 0, "open %s: %s", path, strerror(errno));
    uint8_t b;
    cr_assert_eq(pread(fd, &b, 1, off), 1, "read %s at %lld", path, (long long)off);
    b ^= x;
    cr_assert_eq(pwrite(fd, &b, 1, off), 1, "write %s at %lld", path, (long long)off);
    close(fd);
}

/* spool_folders counts the folders in the spool root. */
static int spool_folders(const char *spool) {
    DIR *d = opendir(spool);
    if (!d)
        return 0;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        char *p = path_join(spool, e->d_name);
        struct stat st;
        if (lstat(p, &st) == 0 && S_ISDIR(st.st_mode))
            n++;
        free(p);
    }
    closedir(d);
    return n;
}

/* ---- memory only ------------------------------------------------------------------------ */

static const size_t fifo_sizes[] = {100, 5000, 8, 0, 70000, 3, 65536};
#define N_FIFO (sizeof fifo_sizes / sizeof fifo_sizes[0])

LTest(spool, a_memory_queue_delivers_in_push_order_and_peek_is_stable_until_pop) {
    const char *spools[] = {NULL, ""}; /* both mean memory only */
    for (int s = 0; s < 2; s++) {
        pprofio_spool *q = open_queue(spools[s], NULL, BIG, BIG);
        expect_empty(q);
        pprofio_spool_pop(q); /* on an empty queue: nothing */
        int64_t total = 0;
        for (size_t i = 0; i < N_FIFO; i++) {
            push_ok(q, i, fifo_sizes[i]);
            total += (int64_t)fifo_sizes[i];
            assert_i64(pprofio_spool_len(q), i + 1);
            assert_i64(pprofio_spool_mem_bytes(q), total);
            assert_i64(pprofio_spool_disk_bytes(q), 0);
        }
        for (size_t i = 0; i < N_FIFO; i++) {
            expect_head(q, i, fifo_sizes[i]);
            expect_head(q, i, fifo_sizes[i]); /* again: the same batch until pop */
            pprofio_spool_pop(q);
            total -= (int64_t)fifo_sizes[i];
            assert_i64(pprofio_spool_len(q), N_FIFO - i - 1);
            assert_i64(pprofio_spool_mem_bytes(q), total);
        }
        expect_empty(q);
        expect_counts_zero(q);
        pprofio_spool_close(q);
    }
    pprofio_spool_close(NULL);
}

LTest(spool, the_memory_bound_evicts_the_oldest_batches_and_counts_them_once) {
    const size_t size = 10 * KiB;
    pprofio_spool *q = open_queue(NULL, NULL, BIG, 3 * (int64_t)size + 100);
    for (uint64_t i = 0; i < 7; i++) {
        push_ok(q, i, size);
        cr_assert_leq(pprofio_spool_mem_bytes(q), 3 * (int64_t)size + 100, "after batch %llu",
                      (unsigned long long)i);
        assert_i64(pprofio_spool_len(q), i < 3 ? i + 1 : 3);
    }
    pprofio_spool_counts c = take_counts(q);
    assert_i64(c.evicted.batches, 4);
    assert_i64(c.evicted.profiles, profiles_of(0) + profiles_of(1) + profiles_of(2) + profiles_of(3));
    assert_i64(c.evicted.bytes, 4 * size);
    assert_i64(c.corrupt_files, 0);
    assert_i64(c.adopted, 0);
    assert_i64(c.disk_errors, 0);
    expect_counts_zero(q); /* taking the counts reset them */

    /* A batch that needs the room of two evicts the two oldest. */
    push_ok(q, 7, 2 * size);
    c = take_counts(q);
    assert_i64(c.evicted.batches, 2);
    assert_i64(c.evicted.profiles, profiles_of(4) + profiles_of(5));
    assert_i64(c.evicted.bytes, 2 * size);
    deliver(q, 6, size);
    deliver(q, 7, 2 * size);
    expect_empty(q);
    expect_counts_zero(q);
    pprofio_spool_close(q);
}

LTest(spool, the_memory_bound_never_evicts_the_batch_being_sent) {
    const size_t size = 10 * KiB;
    pprofio_spool *q = open_queue(NULL, NULL, BIG, 2 * (int64_t)size);
    push_ok(q, 0, size);
    push_ok(q, 1, size);
    pprofio_spool_head h;
    expect_head_is(q, 0, size, &h); /* batch 0 is being sent */
    push_ok(q, 2, size);            /* over the bound: 1 goes, not 0 */
    push_ok(q, 3, size);            /* and then 2 */
    cr_assert(payload_is(0, h.payload, h.len), "the batch being sent changed under the sender");
    pprofio_spool_counts c = take_counts(q);
    assert_i64(c.evicted.batches, 2);
    assert_i64(c.evicted.profiles, profiles_of(1) + profiles_of(2));
    pprofio_spool_pop(q); /* 0 was delivered */
    deliver(q, 3, size);
    expect_empty(q);
    pprofio_spool_close(q);
}

/* ---- the disk spool ------------------------------------------------------------------------ */

LTest(spool, push_writes_a_0600_batch_file_named_order_dash_id_in_a_0700_instance_folder) {
    char *dir = scratch_dir();
    char *spool = path_join(dir, "spool/nested"); /* neither exists yet */
    char inst[33];
    instance_of(0xa, inst);
    pprofio_spool *q = open_queue(spool, inst, BIG, BIG);
    char *own = path_join(spool, inst);
    char *lock = path_join(own, ".lock");
    assert_i64(mode_of(spool), 0700);
    assert_i64(mode_of(own), 0700);
    cr_assert(exists(lock), "no %s", lock);
    assert_i64(mode_of(lock), 0600);

    const size_t size = 50 * KiB + 3;
    push_ok(q, 0, size);
    assert_i64(batch_files(own), 1);
    assert_i64(tmp_files(own), 0);
    char *path = must_file_of(own, 0);
    const char *name = strrchr(path, '/') + 1;
    for (int k = 0; k < 20; k++)
        cr_assert(name[k] >= '0' && name[k] <= '9', "%s: the order is not 20 digits", name);
    cr_assert_eq(name[20], '-', "%s", name);
    assert_i64(strlen(name), 20 + 1 + 32 + 6);
    assert_i64(mode_of(path), 0600);
    size_t len;
    uint8_t *file = read_file(path, &len);
    assert_i64(len, HEADER_LEN + size);
    cr_assert(!memcmp(file, "PPRQBAT1", 8), "the file does not start with the magic");
    cr_assert(payload_is(0, file + HEADER_LEN, size), "the payload in the file is not the batch's");
    free(file);
    assert_i64(pprofio_spool_disk_bytes(q), HEADER_LEN + size);
    assert_i64(pprofio_spool_mem_bytes(q), 0);

    /* Names sort in push order. */
    push_ok(q, 1, 10);
    char *path1 = must_file_of(own, 1);
    cr_assert_lt(strcmp(name, strrchr(path1, '/') + 1), 0, "%s was pushed first but sorts after %s", name,
                 strrchr(path1, '/') + 1);
    assert_i64(pprofio_spool_disk_bytes(q), 2 * HEADER_LEN + size + 10);

    /* Delivering a batch removes its file. */
    deliver(q, 0, size);
    cr_assert_not(exists(path), "%s is still there after pop", path);
    assert_i64(pprofio_spool_disk_bytes(q), HEADER_LEN + 10);
    deliver(q, 1, 10);
    assert_i64(batch_files(own), 0);
    assert_i64(pprofio_spool_disk_bytes(q), 0);
    expect_empty(q);
    expect_counts_zero(q);
    pprofio_spool_close(q);
    free(path);
    free(path1);
    free(lock);
    free(own);
    free(spool);
    scratch_remove(dir);
}

LTest(spool, open_refuses_a_bad_instance_id_and_a_spool_that_cannot_be_made) {
    char *dir = scratch_dir();
    char *spool = path_join(dir, "spool");
    static const char *const bad[] = {"", "abc", "0123456789ABCDEF0123456789abcdef", "../../../../../../../../../etc",
                                      "0123456789abcdef0123456789abcdef0"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        pprofio_spool *q = (pprofio_spool *)dir;
        pprofio_error err = {0};
        assert_status(pprofio_spool_open(spool, bad[i], BIG, BIG, &q, &err), PPROFIO_ERR_INVALID);
        cr_assert_null(q);
        assert_contains(err.msg, "instance_id");
    }
    pprofio_spool *q = (pprofio_spool *)dir;
    pprofio_error err = {0};
    assert_status(pprofio_spool_open(spool, NULL, BIG, BIG, &q, &err), PPROFIO_ERR_INVALID);
    cr_assert_not(exists(spool), "a refused open created %s", spool);

    /* A spool under a regular file cannot be created. */
    char *file = path_join(dir, "file");
    write_file(file, "x");
    char *under = path_join(file, "spool");
    char inst[33];
    instance_of(1, inst);
    assert_status(pprofio_spool_open(under, inst, BIG, BIG, &q, &err), PPROFIO_ERR_IO);
    cr_assert_null(q);
    assert_contains(err.msg, "create");
    free(under);
    free(file);
    free(spool);
    scratch_remove(dir);
}

static const size_t adopt_sizes[] = {1000, 0, 200 * KiB, 8, 33333, 4096};
#define N_ADOPT (sizeof adopt_sizes / sizeof adopt_sizes[0])

LTest(spool, an_empty_folder_left_without_its_lock_goes_and_a_foreign_folder_with_files_stays) {
    /*
     * An adopter killed between removing an exited instance's lock file and
     * its folder leaves the folder empty and unlocked: the next process
     * removes it. A folder with files but no lock file is not a spool
     * folder: nothing in it is touched.
     */
    char *dir = scratch_dir();
    char *spool = path_join(dir, "spool");
    char a[33], b[33], c[33];
    instance_of(0xa, a);
    instance_of(0xb, b);
    instance_of(0xc, c);
    char *empty = path_join(spool, b), *foreign = path_join(spool, c);
    cr_assert_eq(pprofio_mkdirs(empty, 0700), 0);
    cr_assert_eq(pprofio_mkdirs(foreign, 0700), 0);
    char *kept = path_join(foreign, "notes.txt");
    write_file(kept, "x");

    pprofio_spool *q = open_queue(spool, a, BIG, BIG);
    pprofio_spool_counts cnt = take_counts(q);
    assert_i64(cnt.adopted, 0);
    assert_i64(cnt.corrupt_files, 0);
    cr_assert_not(exists(empty), "the empty, unlocked folder %s is still there", empty);
    cr_assert(exists(kept), "a file in a folder without a lock file was removed: %s", kept);
    assert_i64(spool_folders(spool), 2);
    pprofio_spool_close(q);
    free(kept);
    free(empty);
    free(foreign);
    free(spool);
    scratch_remove(dir);
}

LTest(spool, a_new_instance_adopts_what_an_exited_one_left_and_delivers_it_oldest_first) {
    char *dir = scratch_dir();
    char *spool = path_join(dir, "spool");
    char a[33], b[33], c[33];
    instance_of(0xa, a);
    instance_of(0xb, b);
    instance_of(0xc, c);
    char *dir_a = path_join(spool, a), *dir_b = path_join(spool, b);

    pprofio_spool *q = open_queue(spool, a, BIG, BIG);
    for (size_t i = 0; i < N_ADOPT; i++)
        push_ok(q, i, adopt_sizes[i]);
    deliver(q, 0, adopt_sizes[0]); /* one was sent before the process exited */
    pprofio_spool_close(q);
    assert_i64(batch_files(dir_a), N_ADOPT - 1); /* closing keeps the files */

    q = open_queue(spool, b, BIG, BIG);
    pprofio_spool_counts cnt = take_counts(q);
    assert_i64(cnt.adopted, N_ADOPT - 1);
    assert_i64(cnt.corrupt_files, 0);
    assert_i64(cnt.evicted.batches, 0);
    cr_assert_not(exists(dir_a), "the exited instance's folder %s is still there", dir_a);
    assert_i64(spool_folders(spool), 1);
    assert_i64(batch_files(dir_b), N_ADOPT - 1);
    assert_i64(pprofio_spool_len(q), N_ADOPT - 1);
    assert_i64(pprofio_spool_disk_bytes(q), batch_bytes(dir_b));
    assert_i64(pprofio_spool_mem_bytes(q), 0);
    for (size_t i = 1; i < N_ADOPT; i++)
        deliver(q, i, adopt_sizes[i]);
    expect_empty(q);
    assert_i64(batch_files(dir_b), 0);
    pprofio_spool_close(q);

    /* The next process finds an empty folder: nothing to adopt, and the folder goes. */
    q = open_queue(spool, c, BIG, BIG);
    expect_counts_zero(q);
    expect_empty(q);
    cr_assert_not(exists(dir_b), "the empty folder %s is still there", dir_b);
    pprofio_spool_close(q);
    free(dir_a);
    free(dir_b);
    free(spool);
    scratch_remove(dir);
}

LTest(spool, two_live_queues_on_one_spool_never_see_each_others_batches) {
    char *dir = scratch_dir();
    char *spool = path_join(dir, "spool");
    char a[33], b[33], c[33], d[33];
    instance_of(0xa, a);
    instance_of(0xb, b);
    instance_of(0xc, c);
    instance_of(0xd, d);
    char *dir_a = path_join(spool, a), *dir_b = path_join(spool, b);

    pprofio_spool *qa = open_queue(spool, a, BIG, BIG);
    push_ok(qa, 0, 1000);
    push_ok(qa, 1, 2000);
    pprofio_spool *qb = open_queue(spool, b, BIG, BIG); /* a is alive: its batches are not b's */
    expect_counts_zero(qb);
    assert_i64(pprofio_spool_len(qb), 0);
    assert_i64(batch_files(dir_a), 2);
    push_ok(qb, 10, 3000);
    assert_i64(pprofio_spool_len(qa), 2);

    /* The same instance cannot be opened twice. */
    pprofio_spool *again = (pprofio_spool *)dir;
    pprofio_error err = {0};
    assert_status(pprofio_spool_open(spool, a, BIG, BIG, &again, &err), PPROFIO_ERR_IO);
    cr_assert_null(again);
    assert_contains(err.msg, "lock");

    deliver(qa, 0, 1000);
    deliver(qb, 10, 3000);
    expect_empty(qb);
    push_ok(qa, 2, 4000);
    pprofio_spool_close(qb); /* b exits with nothing left */

    pprofio_spool *qc = open_queue(spool, c, BIG, BIG); /* a is still alive */
    expect_counts_zero(qc);
    expect_empty(qc);
    cr_assert_not(exists(dir_b), "b's empty folder was not removed");
    assert_i64(batch_files(dir_a), 2);
    pprofio_spool_close(qa); /* a exits and leaves 1 and 2 */

    pprofio_spool *qd = open_queue(spool, d, BIG, BIG); /* c is alive, a is not */
    pprofio_spool_counts cnt = take_counts(qd);
    assert_i64(cnt.adopted, 2);
    deliver(qd, 1, 2000);
    deliver(qd, 2, 4000);
    expect_empty(qd);
    expect_empty(qc);
    pprofio_spool_close(qc);
    pprofio_spool_close(qd);
    free(dir_a);
    free(dir_b);
    free(spool);
    scratch_remove(dir);
}

LTest(spool, push_front_goes_before_everything_and_keeps_its_place_on_disk) {
    for (int disk = 0; disk < 2; disk++) {
        char *dir = scratch_dir();
        char *spool = disk ? path_join(dir, "spool") : NULL;
        char a[33], b[33];
        instance_of(0xa, a);
        instance_of(0xb, b);
        pprofio_spool *q = open_queue(spool, a, BIG, BIG);
        push_front_ok(q, 5, 500); /* on an empty queue */
        push_ok(q, 0, 100);
        push_ok(q, 1, 200);
        push_front_ok(q, 11, 1100);
        push_front_ok(q, 10, 1000); /* now 10 11 5 0 1 */
        /* A 413 for 10: the agent pops it and pushes the second part, then the first, at the front. */
        expect_head(q, 10, 1000);
        pprofio_spool_pop(q);
        push_front_ok(q, 21, 2100);
        push_front_ok(q, 20, 2000);
        push_ok(q, 2, 300); /* newer batches still go at the back */
        if (disk) {         /* and the order survives a restart */
            pprofio_spool_close(q);
            q = open_queue(spool, b, BIG, BIG);
            assert_i64(take_counts(q).adopted, 7);
        }
        static const uint64_t want[] = {20, 21, 11, 5, 0, 1, 2};
        static const size_t sizes[] = {2000, 2100, 1100, 500, 100, 200, 300};
        for (size_t i = 0; i < 7; i++)
            deliver(q, want[i], sizes[i]);
        expect_empty(q);
        pprofio_spool_close(q);
        free(spool);
        scratch_remove(dir);
    }
}

/* ---- bounds on disk --------------------------------------------------------------------------- */

LTest(spool, the_disk_bound_evicts_the_oldest_files_and_is_never_exceeded) {
    char *dir = scratch_dir();
    char *spool = path_join(dir, "spool");
    char a[33];
    instance_of(0xa, a);
    char *own = path_join(spool, a);
    const size_t size = 20 * KiB;
    const int64_t file = HEADER_LEN + (int64_t)size, bound = 3 * file + file / 2;
    pprofio_spool *q = open_queue(spool, a, bound, BIG);
    for (uint64_t i = 0; i < 8; i++) {
        push_ok(q, i, size);
        cr_assert_leq(pprofio_spool_disk_bytes(q), bound, "after batch %llu", (unsigned long long)i);
        assert_i64(pprofio_spool_disk_bytes(q), batch_bytes(own)); /* the count is what is on disk */
        assert_i64(batch_files(own), i < 3 ? i + 1 : 3);
        assert_i64(pprofio_spool_mem_bytes(q), 0);
    }
    pprofio_spool_counts c = take_counts(q);
    assert_i64(c.evicted.batches, 5);
    assert_i64(c.evicted.profiles, profiles_of(0) + profiles_of(1) + profiles_of(2) + profiles_of(3) + profiles_of(4));
    assert_i64(c.evicted.bytes, 5 * file);
    assert_i64(c.corrupt_files, 0);
    expect_counts_zero(q);
    for (uint64_t i = 0; i < 5; i++) {
        char *p = file_of(own, i);
        cr_assert_null(p, "evicted batch %llu still has a file: %s", (unsigned long long)i, p);
    }
    deliver(q, 5, size);
    deliver(q, 6, size);
    deliver(q, 7, size);
    expect_empty(q);
    pprofio_spool_close(q);
    free(own);
    free(spool);
    scratch_remove(dir);
}

LTest(spool, the_disk_bound_never_evicts_the_batch_being_sent) {
    char *dir = scratch_dir();
    char *spool = path_join(dir, "spool");
    char a[33];
    instance_of(0xa, a);
    char *own = path_join(spool, a);
    const size_t size = 20 * KiB;
    const int64_t file = HEADER_LEN + (int64_t)size, bound = 2 * file + file / 2;
    pprofio_spool *q = open_queue(spool, a, bound, BIG);
    push_ok(q, 0, size);
    push_ok(q, 1, size);
    pprofio_spool_head h;
    expect_head_is(q, 0, size, &h); /* 0 is being sent */
    push_ok(q, 2, size);            /* 1 goes, not 0 */
    push_ok(q, 3, size);            /* then 2 */
    cr_assert_leq(pprofio_spool_disk_bytes(q), bound);
    cr_assert(payload_is(0, h.payload, h.len), "the batch being sent changed under the sender");
    char *p0 = must_file_of(own, 0);
    char *p1 = file_of(own, 1), *p2 = file_of(own, 2);
    cr_assert(!p1 && !p2, "evicted batches 1 and 2 left files: %s %s", p1 ? p1 : "-", p2 ? p2 : "-");
    pprofio_spool_counts c = take_counts(q);
    assert_i64(c.evicted.batches, 2);
    assert_i64(c.evicted.profiles, profiles_of(1) + profiles_of(2));
    assert_i64(c.evicted.bytes, 2 * file);
    pprofio_spool_pop(q); /* 0 delivered */
    cr_assert_not(exists(p0));
    deliver(q, 3, size);
    expect_empty(q);
    pprofio_spool_close(q);
    free(p0);
    free(own);
    free(spool);
    scratch_remove(dir);
}

LTest(spool, the_disk_bound_applies_to_adopted_batches_at_open) {
    char *dir = scratch_dir();
    char *spool = path_join(dir, "spool");
    char a[33], b[33];
    instance_of(0xa, a);
    instance_of(0xb, b);
    const size_t size = 10 * KiB;
    const int64_t file = HEADER_LEN + (int64_t)size;
    pprofio_spool *q = open_queue(spool, a, BIG, BIG);
    for (uint64_t i = 0; i < 5; i++)
        push_ok(q, i, size);
    pprofio_spool_close(q);
    q = open_queue(spool, b, 2 * file + 10, BIG);
    pprofio_spool_counts c = take_counts(q);
    assert_i64(c.adopted, 5);
    assert_i64(c.evicted.batches, 3);
    assert_i64(c.evicted.profiles, profiles_of(0) + profiles_of(1) + profiles_of(2));
    assert_i64(c.evicted.bytes, 3 * file);
    char *own = path_join(spool, b);
    assert_i64(batch_files(own), 2);
    deliver(q, 3, size);
    deliver(q, 4, size);
    expect_empty(q);
    pprofio_spool_close(q);
    free(own);
    free(spool);
    scratch_remove(dir);
}

/* ---- damaged and foreign files ------------------------------------------------------------------ */

LTest(spool, damaged_and_foreign_files_left_by_an_exited_process_are_removed_counted_and_never_sent) {
    char *dir = scratch_dir();
    char *spool = path_join(dir, "spool");
    char a[33], b[33];
    instance_of(0xa, a);
    instance_of(0xb, b);
    char *dir_a = path_join(spool, a), *dir_b = path_join(spool, b);
    const size_t size = 10 * KiB;
    pprofio_spool *q = open_queue(spool, a, BIG, BIG);
    for (uint64_t i = 0; i < 10; i++)
        push_ok(q, i, size + i);
    pprofio_spool_close(q);

    char *f[10];
    for (uint64_t i = 0; i < 10; i++)
        f[i] = must_file_of(dir_a, i);
    /* Found by the header checks when the files are listed (at open): */
    cr_assert_eq(truncate(f[2], HEADER_LEN + 10), 0);          /* truncated payload */
    cr_assert_eq(truncate(f[3], 30), 0);                       /* truncated header */
    write_bytes(f[4], "NOTMAGIC and then some garbage that is not a header at all", 58);
    poke(f[5], 16, 0x01);                                      /* the sequence, under the header CRC */
    int fd = open(f[6], O_WRONLY | O_APPEND);                  /* bytes after the payload */
    cr_assert_eq(write(fd, "trailing", 8), 8);
    close(fd);
    char misnamed[4096], other_id[33];
    batch_id_of(777, other_id);
    snprintf(misnamed, sizeof misnamed, "%.*s%s.batch", (int)(strlen(f[7]) - 38), f[7], other_id);
    cr_assert_eq(rename(f[7], misnamed), 0); /* a whole file under another batch's name */
    poke(f[8], 40, 0x02);                    /* the id inside the header */
    char zero[4096];
    batch_id_of(778, other_id);
    snprintf(zero, sizeof zero, "%s/00000000000000000001-%s.batch", dir_a, other_id);
    write_bytes(zero, "", 0); /* zero length */
    /* Found only by the payload CRC, when the batch is read to be sent: */
    poke(f[1], HEADER_LEN + 100, 0x80);
    /* Foreign names, and a temp file that a write never renamed: */
    char *notes = path_join(dir_a, "notes.txt");
    write_file(notes, "hello\n");
    char *upper = path_join(dir_a, "00000000000000000002-0123456789ABCDEF0123456789ABCDEF.batch");
    write_file(upper, "x");
    char *short_order = path_join(dir_a, "123-0123456789abcdef0123456789abcdef.batch");
    write_file(short_order, "x");
    char *tmp = path_join(dir_a, ".tmp-Ab12Cd");
    write_file(tmp, "half a batch");

    q = open_queue(spool, b, BIG, BIG);
    pprofio_spool_counts c = take_counts(q);
    /* Adopted: the ten batch names (one now misnamed) and the zero-length one. */
    assert_i64(c.adopted, 11);
    /* Removed at open: 2 3 4 5 6 7(misnamed) 8, the zero-length file, notes.txt, the uppercase id, the short order. */
    assert_i64(c.corrupt_files, 11);
    assert_i64(c.evicted.batches, 0);
    cr_assert_not(exists(dir_a), "the exited instance's folder is still there");
    assert_i64(batch_files(dir_b), 3); /* 0, 1 (its damage is not visible yet) and 9 */
    assert_i64(tmp_files(dir_b), 0);

    deliver(q, 0, size);
    deliver(q, 9, size + 9); /* 1 fails its CRC on the way */
    expect_empty(q);
    c = take_counts(q);
    assert_i64(c.corrupt_files, 1);
    assert_i64(c.evicted.batches, 0); /* damage is not a bound: counted once, as corrupt */
    assert_i64(c.evicted.profiles, 0);
    assert_i64(count_entries(dir_b, NULL, NULL), 1); /* only .lock is left */
    pprofio_spool_close(q);

    for (int i = 0; i < 10; i++)
        free(f[i]);
    free(notes);
    free(upper);
    free(short_order);
    free(tmp);
    free(dir_a);
    free(dir_b);
    free(spool);
    scratch_remove(dir);
}

LTest(spool, damaged_files_and_temp_files_in_the_queues_own_folder_are_removed_at_open) {
    char *dir = scratch_dir();
    char *spool = path_join(dir, "spool");
    char a[33];
    instance_of(0xa, a);
    char *own = path_join(spool, a);
    pprofio_spool *q = open_queue(spool, a, BIG, BIG);
    push_ok(q, 0, 5000);
    push_ok(q, 1, 6000);
    push_ok(q, 2, 7000);
    pprofio_spool_close(q);
    char *f1 = must_file_of(own, 1);
    cr_assert_eq(truncate(f1, HEADER_LEN + 10), 0);
    char zero[4096], id[33];
    batch_id_of(99, id);
    snprintf(zero, sizeof zero, "%s/00000000000000000001-%s.batch", own, id);
    write_bytes(zero, "", 0);
    char *notes = path_join(own, "notes.txt");
    write_file(notes, "hello\n");
    char *tmp1 = path_join(own, ".tmp-XXXX12"), *tmp2 = path_join(own, ".tmp-zzzzzz");
    write_file(tmp1, "a batch cut short by a crash");
    write_bytes(tmp2, "", 0);

    q = open_queue(spool, a, BIG, BIG); /* the same instance again, as after a restart with the same id */
    pprofio_spool_counts c = take_counts(q);
    assert_i64(c.corrupt_files, 3); /* the truncated batch, the empty one, notes.txt; temp files are not counted */
    assert_i64(c.adopted, 0);
    assert_i64(tmp_files(own), 0);
    cr_assert_not(exists(notes));
    cr_assert_not(exists(zero));
    cr_assert_not(exists(f1));
    deliver(q, 0, 5000);
    deliver(q, 2, 7000);
    expect_empty(q);
    pprofio_spool_close(q);
    free(tmp1);
    free(tmp2);
    free(notes);
    free(f1);
    free(own);
    free(spool);
    scratch_remove(dir);
}

LTest(spool, a_file_damaged_or_removed_while_queued_is_skipped_at_peek_and_counted) {
    char *dir = scratch_dir();
    char *spool = path_join(dir, "spool");
    char a[33];
    instance_of(0xa, a);
    char *own = path_join(spool, a);
    pprofio_spool *q = open_queue(spool, a, BIG, BIG);
    for (uint64_t i = 0; i < 6; i++)
        push_ok(q, i, 4000 + i);
    char *f1 = must_file_of(own, 1), *f3 = must_file_of(own, 3), *f4 = must_file_of(own, 4);
    poke(f1, HEADER_LEN + 3999, 0x01);          /* the payload's last byte */
    cr_assert_eq(truncate(f3, HEADER_LEN + 4002), 0); /* one byte short */
    cr_assert_eq(unlink(f4), 0);                /* gone behind the queue's back */
    deliver(q, 0, 4000);
    deliver(q, 2, 4002);
    deliver(q, 5, 4005);
    expect_empty(q);
    pprofio_spool_counts c = take_counts(q);
    assert_i64(c.corrupt_files, 3);
    assert_i64(c.evicted.batches, 0);
    assert_i64(pprofio_spool_disk_bytes(q), 0);
    assert_i64(batch_files(own), 0);
    pprofio_spool_close(q);
    free(f1);
    free(f3);
    free(f4);
    free(own);
    free(spool);
    scratch_remove(dir);
}

/*
 * The healthy path: a batch written to an empty queue is the next to go,
 * and it goes from memory. Its file is there for a restart, but reading it
 * back would be a second pass over bytes just written; a batch that waits
 * behind another is read from its file.
 */
LTest(spool, a_batch_pushed_to_an_empty_queue_is_sent_from_memory_and_the_ones_behind_it_from_disk) {
    char *dir = scratch_dir();
    char *spool = path_join(dir, "spool");
    char a[33];
    instance_of(0xa, a);
    char *own = path_join(spool, a);
    pprofio_spool *q = open_queue(spool, a, BIG, BIG);
    push_ok(q, 0, 5000);
    push_ok(q, 1, 5001);
    assert_i64(batch_files(own), 2);      /* both are on disk, crash-safe */
    assert_i64(pprofio_spool_mem_bytes(q), 0);
    char *f0 = must_file_of(own, 0), *f1 = must_file_of(own, 1);
    cr_assert_eq(unlink(f0), 0); /* the first is not read back: its file is not needed */
    long before = pprofio_alloc_calls();
    expect_head(q, 0, 5000);
    assert_i64(pprofio_alloc_calls(), before); /* no buffer to read a file into */
    pprofio_spool_pop(q);
    cr_assert_eq(unlink(f1), 0); /* the second waited behind it: it must come from its file */
    expect_empty(q);
    assert_i64(take_counts(q).corrupt_files, 1);
    pprofio_spool_close(q);
    free(f0);
    free(f1);
    free(own);
    free(spool);
    scratch_remove(dir);
}

LTest(spool, a_batch_that_cannot_be_moved_in_is_left_for_a_later_process_not_deleted) {
    char *dir = scratch_dir();
    char *spool = path_join(dir, "spool");
    char a[33], b[33], c[33];
    instance_of(0xa, a);
    instance_of(0xb, b);
    instance_of(0xc, c);
    char *dir_a = path_join(spool, a), *dir_b = path_join(spool, b);
    pprofio_spool *q = open_queue(spool, a, BIG, BIG);
    push_ok(q, 0, 1000);
    push_ok(q, 1, 2000);
    pprofio_spool_close(q);

    /* b's folder already holds a folder under batch 0's name: the rename into it fails. */
    char *f0 = must_file_of(dir_a, 0);
    char *obstacle = path_join(dir_b, strrchr(f0, '/') + 1);
    cr_assert_eq(pprofio_mkdirs(obstacle, 0700), 0);
    q = open_queue(spool, b, BIG, BIG);
    pprofio_spool_counts cnt = take_counts(q);
    assert_i64(cnt.adopted, 1);
    deliver(q, 1, 2000);
    expect_empty(q);
    cr_assert(exists(f0), "batch 0 could not be moved and was deleted");
    pprofio_spool_close(q);

    cr_assert_eq(rmdir(obstacle), 0);
    q = open_queue(spool, c, BIG, BIG);
    deliver(q, 0, 1000);
    expect_empty(q);
    pprofio_spool_close(q);
    free(obstacle);
    free(f0);
    free(dir_a);
    free(dir_b);
    free(spool);
    scratch_remove(dir);
}

/* ---- a full disk ------------------------------------------------------------------------------------ */

/*
 * full_disk runs the same story on a disk where a 64 KiB batch fits three
 * times but a 150 KiB one does not: the failed push is reported with the
 * step and the system's reason, leaves no temp file, and the batch waits in
 * memory, in its place; later pushes go to disk again.
 */
static void full_disk(const char *spool, const char *why) {
    char a[33];
    instance_of(0xa, a);
    char *own = path_join(spool, a);
    const size_t size = 64 * KiB;
    pprofio_spool *q = open_queue(spool, a, BIG, BIG);
    push_ok(q, 0, size);
    push_ok(q, 1, size);
    push_ok(q, 2, size);
    pprofio_error err = {0};
    int rc = push_batch(q, 3, 150 * KiB, 0, &err);
    assert_status(rc, PPROFIO_ERR_IO);
    assert_i64(err.code, PPROFIO_ERR_IO);
    assert_contains(err.msg, "write");
    assert_contains(err.msg, why);
    assert_contains(err.msg, "kept in memory");
    assert_contains(err.msg, own);
    assert_i64(tmp_files(own), 0);
    assert_i64(batch_files(own), 3);
    assert_i64(pprofio_spool_len(q), 4);
    assert_i64(pprofio_spool_mem_bytes(q), 150 * KiB);
    assert_i64(pprofio_spool_disk_bytes(q), 3 * (HEADER_LEN + size));
    pprofio_spool_counts c = take_counts(q);
    assert_i64(c.disk_errors, 1);
    assert_i64(c.evicted.batches, 0);

    push_ok(q, 4, 8 * KiB); /* small enough: on disk again */
    assert_i64(batch_files(own), 4);
    deliver(q, 0, size);
    push_ok(q, 5, size); /* the room 0 left */
    assert_i64(batch_files(own), 4);
    deliver(q, 1, size);
    deliver(q, 2, size);
    deliver(q, 3, 150 * KiB); /* from memory, in its place */
    assert_i64(pprofio_spool_mem_bytes(q), 0);
    deliver(q, 4, 8 * KiB);
    deliver(q, 5, size);
    expect_empty(q);
    expect_counts_zero(q);
    pprofio_spool_close(q);
    free(own);
}

static void full_disk_by_rlimit(const char *spool) {
    struct rlimit old, lim;
    cr_assert_eq(getrlimit(RLIMIT_FSIZE, &old), 0);
    signal(SIGXFSZ, SIG_IGN); /* this test's own process: Criterion forks per test */
    lim = old;
    lim.rlim_cur = 100 * KiB;
    cr_assert_eq(setrlimit(RLIMIT_FSIZE, &lim), 0, "setrlimit: %s", strerror(errno));
    full_disk(spool, strerror(EFBIG));
    cr_assert_eq(setrlimit(RLIMIT_FSIZE, &old), 0);
}

LTest(spool, a_file_size_limit_is_reported_and_the_batch_kept_in_memory) {
    char *dir = scratch_dir();
    char *spool = path_join(dir, "spool");
    full_disk_by_rlimit(spool);
    free(spool);
    scratch_remove(dir);
}

LTest(spool, a_full_file_system_is_reported_and_the_batch_kept_in_memory) {
    char *dir = scratch_dir();
    char *spool = path_join(dir, "spool");
    cr_assert_eq(mkdir(spool, 0700), 0);
    /* 256 KiB of tmpfs: three 64 KiB batches (17 pages each) fit, 150 KiB more does not. */
    const char *step = "unshare";
    int ok = unshare(CLONE_NEWNS) == 0;
    if (ok) {
        step = "make / private";
        ok = mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) == 0;
    }
    if (ok) {
        step = "mount tmpfs";
        ok = mount("pprofio-ctest", spool, "tmpfs", MS_NOSUID | MS_NODEV, "size=256k,mode=0700") == 0;
    }
    if (ok) {
        full_disk(spool, strerror(ENOSPC));
        cr_assert_eq(umount2(spool, MNT_DETACH), 0, "umount %s: %s", spool, strerror(errno));
    } else {
        cr_log_warn("cannot %s here (%s): a file size limit stands in for the full disk", step, strerror(errno));
        full_disk_by_rlimit(spool);
    }
    free(spool);
    scratch_remove(dir);
}

/* ---- out of memory ----------------------------------------------------------------------------------- */

static long armed_at;

static void arm(long n) {
    armed_at = pprofio_alloc_calls();
    pprofio_alloc_fail_after(n);
}

/* disarm turns failures off and says whether an allocation was made to fail. */
static int disarm(long n) {
    pprofio_alloc_fail_after(-1);
    return pprofio_alloc_calls() - armed_at > n;
}

/* A failed allocation in a file operation comes back as an i/o error that says so. */
static void expect_nomem_or_io(int rc, const pprofio_error *err, long n, const char *what) {
    cr_assert(rc == PPROFIO_ERR_NOMEM || rc == PPROFIO_ERR_IO, "%s with allocation %ld failing: %d (%s)", what, n, rc,
              pprofio_strstatus(rc));
    cr_assert_eq(err->code, rc, "%s returned %d but its error says %d: %s", what, rc, err->code, err->msg);
    assert_contains(err->msg, "memory");
}

/* Two exited instances with 3 + 2 batches and a leftover temp file. */
static void leave_two_exited_instances(const char *spool) {
    char a[33], b[33];
    instance_of(0xa, a);
    instance_of(0xb, b);
    pprofio_spool *qa = open_queue(spool, a, BIG, BIG);
    pprofio_spool *qb = open_queue(spool, b, BIG, BIG);
    push_ok(qa, 0, 3000);
    push_ok(qb, 1, 0);
    push_ok(qa, 2, 70 * KiB);
    push_ok(qb, 3, 10);
    push_ok(qa, 4, 5000);
    char *tmp = path_join(spool, a);
    char *t = path_join(tmp, ".tmp-000000");
    write_file(t, "x");
    free(t);
    free(tmp);
    pprofio_spool_close(qa);
    pprofio_spool_close(qb);
}

static const size_t left_sizes[] = {3000, 0, 70 * KiB, 10, 5000};

LTest(spool, open_fails_cleanly_at_every_allocation_and_loses_no_batch) {
    /* Memory only. */
    long n;
    for (n = 0;; n++) {
        cr_assert_lt(n, MAX_RUNS);
        pprofio_spool *q = (pprofio_spool *)&n;
        pprofio_error err = {0};
        arm(n);
        int rc = pprofio_spool_open(NULL, NULL, BIG, BIG, &q, &err);
        int failed = disarm(n);
        if (!failed) {
            assert_status(rc, PPROFIO_OK);
            pprofio_spool_close(q);
            break;
        }
        assert_status(rc, PPROFIO_ERR_NOMEM);
        cr_assert_null(q);
    }
    /* On disk, adopting two folders. */
    int failures = 0;
    for (n = 0;; n++) {
        cr_assert_lt(n, MAX_RUNS);
        char *dir = scratch_dir();
        char *spool = path_join(dir, "spool");
        leave_two_exited_instances(spool);
        char c[33], d[33];
        instance_of(0xc, c);
        instance_of(0xd, d);
        pprofio_spool *q = (pprofio_spool *)&n;
        pprofio_error err = {0};
        arm(n);
        int rc = pprofio_spool_open(spool, c, BIG, BIG, &q, &err);
        int failed = disarm(n);
        if (rc == PPROFIO_OK) {
            cr_assert_not_null(q);
            pprofio_spool_counts cnt = take_counts(q);
            assert_i64(cnt.corrupt_files, 0); /* a failed allocation never makes a batch "corrupt" */
            pprofio_spool_close(q);
        } else {
            expect_nomem_or_io(rc, &err, n, "open");
            cr_assert_null(q);
            failures++;
        }
        /* Whatever happened, the next process delivers all five. */
        q = open_queue(spool, d, BIG, BIG);
        assert_i64(take_counts(q).corrupt_files, 0);
        for (uint64_t i = 0; i < 5; i++)
            deliver(q, i, left_sizes[i]);
        expect_empty(q);
        pprofio_spool_close(q);
        free(spool);
        scratch_remove(dir);
        if (!failed) {
            assert_status(rc, PPROFIO_OK);
            break;
        }
    }
    cr_assert_gt(n, 10, "open made only %ld allocations", n);
    cr_assert_gt(failures, 3);
    cr_log_info("open: %ld allocations, %d of them fatal", n, failures);
}

LTest(spool, push_fails_cleanly_at_every_allocation) {
    const size_t size = 10 * KiB;
    const int64_t file = HEADER_LEN + (int64_t)size;
    long n;
    int seen[3] = {0};
    for (n = 0;; n++) {
        cr_assert_lt(n, MAX_RUNS);
        char *dir = scratch_dir();
        char *spool = path_join(dir, "spool");
        char a[33];
        instance_of(0xa, a);
        char *own = path_join(spool, a);
        /* Three batches fill the bound: pushing a fourth evicts the oldest. */
        pprofio_spool *q = open_queue(spool, a, 3 * file + 10, BIG);
        for (uint64_t i = 0; i < 3; i++)
            push_ok(q, i, size);
        pprofio_bytes b = payload_of(3, size);
        char id[33];
        batch_id_of(3, id);
        pprofio_error err = {0};
        arm(n);
        int rc = pprofio_spool_push(q, id, seq_of(3), profiles_of(3), &b, 0, &err);
        int failed = disarm(n);
        pprofio_spool_counts c = take_counts(q);
        if (rc == PPROFIO_OK) { /* on disk; 0 evicted, its file gone */
            seen[0]++;
            cr_assert_null(b.p);
            assert_i64(c.evicted.batches, 1);
            assert_i64(batch_files(own), 3);
            for (uint64_t i = 1; i <= 3; i++)
                deliver(q, i, size);
        } else if (rc == PPROFIO_ERR_NOMEM) { /* not queued: the caller still owns it */
            seen[1]++;
            cr_assert_not_null(b.p, "push failed but took the payload");
            assert_i64(b.len, size);
            assert_i64(c.evicted.batches, 0);
            assert_i64(batch_files(own), 3);
            for (uint64_t i = 0; i < 3; i++)
                deliver(q, i, size);
        } else { /* the file could not be written: queued in memory */
            seen[2]++;
            expect_nomem_or_io(rc, &err, n, "push");
            cr_assert_null(b.p);
            assert_i64(c.disk_errors, 1);
            assert_i64(c.evicted.batches, 0);
            assert_i64(pprofio_spool_mem_bytes(q), size);
            assert_i64(tmp_files(own), 0);
            for (uint64_t i = 0; i < 4; i++)
                deliver(q, i, size);
        }
        pprofio_bytes_free(&b);
        expect_empty(q);
        assert_i64(batch_files(own), 0);
        assert_i64(pprofio_spool_disk_bytes(q), 0);
        assert_i64(pprofio_spool_mem_bytes(q), 0);
        pprofio_spool_close(q);
        free(own);
        free(spool);
        scratch_remove(dir);
        if (!failed) {
            assert_status(rc, PPROFIO_OK);
            break;
        }
    }
    cr_assert(seen[1] > 0 && seen[2] > 0, "push failures: %d not queued, %d kept in memory", seen[1], seen[2]);
    cr_log_info("push: %ld allocations; %d ok, %d not queued, %d kept in memory", n, seen[0], seen[1], seen[2]);
}

LTest(spool, peek_fails_cleanly_at_every_allocation_without_calling_a_batch_corrupt) {
    char *dir = scratch_dir();
    char *spool = path_join(dir, "spool");
    char a[33], b[33];
    instance_of(0xa, a);
    instance_of(0xb, b);
    pprofio_spool *q = open_queue(spool, a, BIG, BIG);
    push_ok(q, 0, 100 * KiB);
    push_ok(q, 1, 300 * KiB);
    pprofio_spool_close(q);
    q = open_queue(spool, b, BIG, BIG);
    take_counts(q);
    for (uint64_t i = 0; i < 2; i++) {
        size_t size = i ? 300 * KiB : 100 * KiB;
        long n;
        for (n = 0;; n++) {
            cr_assert_lt(n, MAX_RUNS);
            pprofio_spool_head h;
            memset(&h, 0, sizeof h);
            arm(n);
            int rc = pprofio_spool_peek(q, &h);
            int failed = disarm(n);
            if (rc == -1) /* out of memory: "not now", try again later */
                cr_assert(failed, "peek could not load with %zu batches queued", pprofio_spool_len(q));
            else
                assert_i64(rc, 0);
            assert_i64(pprofio_spool_len(q), 2 - i);
            expect_counts_zero(q);
            if (!failed)
                break;
        }
        cr_assert_geq(n, 1);
        deliver(q, i, size);
    }
    expect_empty(q);
    pprofio_spool_close(q);
    free(spool);
    scratch_remove(dir);
}

/* ---- the kill test --------------------------------------------------------------------------------------- */

/*
 * A child process pushes batches into a disk queue as fast as it can and is
 * SIGKILLed at a random point: after it has completed a random number of
 * pushes (0-6), plus 0-3 ms, so that the kill lands somewhere inside a later
 * push; or (one round in eight) 0-5 ms after fork, while it opens and
 * adopts. It reports an index on a pipe only after pprofio_spool_push
 * returned, so the parent knows which batches were completed; the one in
 * flight may or may not land. The parent waits for the reports it needs
 * however long they take: the work is bounded, not the time, so a slow or
 * busy machine changes where kills land, never the verdict. Each round is a
 * new process with a new instance id on the same spool, adopting what the
 * killed ones left. After each epoch of rounds a fresh instance adopts
 * everything and delivers it, and every batch must be whole, in push order,
 * once, and every completed one there.
 */
#define KILL_ROUNDS 128
#define KILL_EPOCH 8
#define KILL_STRIDE UINT64_C(1000000) /* round r pushes r * STRIDE + 0, 1, 2, ... */
#define KILL_POOL (300 * KiB)
#define KILL_READY UINT64_MAX
#define KILL_MAX_TARGET 6

static uint8_t *kill_pool; /* 2 * KILL_POOL random bytes, made before the first fork */

static size_t kill_size(uint64_t i) {
    uint64_t s = i ^ UINT64_C(0xabcdef);
    return 1 * KiB + (size_t)(splitmix64(&s) % (299 * KiB + 1));
}

/* kill_fill makes batch i's payload: i, its size, then a slice of the pool that depends on i. */
static void kill_fill(uint64_t i, uint8_t *p, size_t n) {
    uint64_t s = i ^ UINT64_C(0x123456), n64 = n;
    memcpy(p, kill_pool + splitmix64(&s) % KILL_POOL, n);
    memcpy(p, &i, 8);
    memcpy(p + 8, &n64, 8);
}

static int write_u64(int fd, uint64_t v) {
    const char *p = (const char *)&v;
    size_t left = sizeof v;
    while (left > 0) {
        ssize_t w = write(fd, p, left);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        left -= (size_t)w;
    }
    return 0;
}

/* kill_child never returns: no cr_assert here, and _exit, never exit. */
static void kill_child(const char *spool, const char *instance, uint64_t first, int fd) {
    pprofio_spool *q = NULL;
    if (pprofio_spool_open(spool, instance, BIG, BIG, &q, NULL) != PPROFIO_OK)
        _exit(2);
    if (write_u64(fd, KILL_READY) != 0)
        _exit(3);
    for (uint64_t i = first; i < first + KILL_STRIDE; i++) {
        size_t n = kill_size(i);
        pprofio_bytes b = {0};
        if (pprofio_bytes_grow(&b, n, NULL, NULL) != PPROFIO_OK)
            _exit(4);
        kill_fill(i, b.p, n);
        b.len = n;
        char id[33];
        batch_id_of(i, id);
        if (pprofio_spool_push(q, id, seq_of(i), profiles_of(i), &b, 0, NULL) != PPROFIO_OK)
            _exit(5);
        if (write_u64(fd, i) != 0)
            _exit(6);
    }
    _exit(7);
}

static void sleep_us(uint64_t us) {
    struct timespec ts = {(time_t)(us / 1000000), (long)(us % 1000000) * 1000};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

typedef struct {
    int completed[KILL_ROUNDS]; /* pushes that returned, as the pipe said */
    int delivered[KILL_ROUNDS];
    int early_kills, tmp_left, in_flight_landed, empty_rounds;
    uint64_t total_completed, total_delivered, bytes_delivered, max_files, planned;
} kill_stats;

static void expect_wait_killed(pid_t pid, int round) {
    int st = 0;
    pid_t w;
    do {
        w = waitpid(pid, &st, 0);
    } while (w < 0 && errno == EINTR);
    cr_assert_eq(w, pid, "waitpid: %s", strerror(errno));
    cr_assert(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL,
              "round %d: the child was not killed but ended on its own (exit %d, signal %d)", round,
              WIFEXITED(st) ? WEXITSTATUS(st) : -1, WIFSIGNALED(st) ? WTERMSIG(st) : 0);
}

/* kill_round runs one child and records what it completed. */
static void kill_round(const char *spool, int r, uint64_t *rng, kill_stats *ks) {
    char inst[33];
    instance_of(0x10000u + (unsigned)r, inst);
    int fds[2];
    cr_assert_eq(pipe2(fds, O_CLOEXEC), 0);
    int early = splitmix64(rng) % 8 == 0;
    int target = early ? 0 : (int)(splitmix64(rng) % (KILL_MAX_TARGET + 1)); /* pushes to wait for */
    uint64_t delay = early ? splitmix64(rng) % 5001 : splitmix64(rng) % 3001;
    pid_t pid = fork();
    cr_assert_geq(pid, 0, "fork: %s", strerror(errno));
    if (pid == 0) {
        close(fds[0]);
        kill_child(spool, inst, (uint64_t)r * KILL_STRIDE, fds[1]);
    }
    close(fds[1]);
    int ready_seen = 0, completed = 0;
    uint64_t v;
    ssize_t got;
    /* Blocking reads: the child's reports come when they come. EOF means it died on its own. */
    while (!early && completed < target && (got = read(fds[0], &v, sizeof v)) == (ssize_t)sizeof v) {
        if (v == KILL_READY) {
            cr_assert_not(ready_seen, "round %d: two ready marks", r);
            ready_seen = 1;
            continue;
        }
        cr_assert_eq(v, (uint64_t)r * KILL_STRIDE + (uint64_t)completed, "round %d: the child reported %llu", r,
                     (unsigned long long)v);
        completed++;
    }
    if (!early && completed < target) {
        kill(pid, SIGKILL);
        expect_wait_killed(pid, r);
        cr_assert_fail("round %d: the child stopped after %d pushes, before it was killed", r, completed);
    }
    ks->planned += (uint64_t)target;
    sleep_us(delay);
    cr_assert_eq(kill(pid, SIGKILL), 0);
    expect_wait_killed(pid, r);
    ks->early_kills += early;

    while ((got = read(fds[0], &v, sizeof v)) == (ssize_t)sizeof v) {
        if (v == KILL_READY) {
            cr_assert_not(ready_seen, "round %d: two ready marks", r);
            ready_seen = 1;
            continue;
        }
        cr_assert_eq(v, (uint64_t)r * KILL_STRIDE + (uint64_t)completed, "round %d: the child reported %llu", r,
                     (unsigned long long)v);
        completed++;
    }
    cr_assert_eq(got, 0, "round %d: a partial index on the pipe", r);
    close(fds[0]);
    ks->completed[r] = completed;
    ks->total_completed += (uint64_t)completed;
    ks->empty_rounds += completed == 0;
    char *own = path_join(spool, inst);
    ks->tmp_left += tmp_files(own); /* a write the kill cut short */
    free(own);
}

/* kill_verify adopts everything as a new instance and checks rounds [r0, r1). */
static void kill_verify(const char *spool, int epoch, int r0, int r1, kill_stats *ks) {
    uint64_t files = 0;
    DIR *d = opendir(spool);
    cr_assert_not_null(d);
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        char *sub = path_join(spool, e->d_name);
        files += (uint64_t)batch_files(sub);
        free(sub);
    }
    closedir(d);
    if (files > ks->max_files)
        ks->max_files = files;

    char inst[33];
    instance_of(0xe0000u + (unsigned)epoch, inst);
    pprofio_spool *q = open_queue(spool, inst, BIG, BIG);
    pprofio_spool_counts c = take_counts(q);
    assert_i64(c.adopted, files);
    assert_i64(c.corrupt_files, 0); /* a kill never leaves a damaged .batch file */
    assert_i64(c.evicted.batches, 0);
    assert_i64(spool_folders(spool), 1); /* every killed instance's folder was taken over */
    assert_i64(pprofio_spool_len(q), files);

    uint8_t *want = malloc(300 * KiB);
    cr_assert(want);
    uint64_t last = 0;
    int any = 0;
    pprofio_spool_head h;
    while (pprofio_spool_peek(q, &h) == 0) {
        cr_assert_geq(h.len, 16, "a batch of %zu bytes", h.len);
        uint64_t i = index_in(h.payload, h.len);
        int r = (int)(i / KILL_STRIDE);
        int k = (int)(i % KILL_STRIDE);
        cr_assert(r >= r0 && r < r1, "epoch %d delivered batch %llu of round %d", epoch, (unsigned long long)i, r);
        cr_assert(!any || i > last, "batch %llu came after batch %llu: twice, or out of push order",
                  (unsigned long long)i, (unsigned long long)last);
        cr_assert_eq(k, ks->delivered[r], "round %d: batch %d came where batch %d was due (one was lost)", r, k,
                     ks->delivered[r]);
        cr_assert_leq(k, ks->completed[r], "round %d: batch %d came, but only %d were pushed and one was in flight",
                      r, k, ks->completed[r]);
        cr_assert_eq(h.len, kill_size(i), "batch %llu has %zu bytes, want %zu", (unsigned long long)i, h.len,
                     kill_size(i));
        kill_fill(i, want, h.len);
        cr_assert(!memcmp(h.payload, want, h.len), "batch %llu: the payload is not what was pushed",
                  (unsigned long long)i);
        char id[33];
        batch_id_of(i, id);
        cr_assert_str_eq(h.batch_id, id);
        assert_i64(h.sequence, seq_of(i));
        assert_i64(h.n_profiles, profiles_of(i));
        ks->delivered[r]++;
        ks->total_delivered++;
        ks->bytes_delivered += h.len;
        if (k == ks->completed[r])
            ks->in_flight_landed++;
        last = i;
        any = 1;
        pprofio_spool_pop(q);
    }
    free(want);
    for (int r = r0; r < r1; r++)
        cr_assert_geq(ks->delivered[r], ks->completed[r], "round %d: %d batches completed, %d delivered", r,
                      ks->completed[r], ks->delivered[r]);
    assert_i64(pprofio_spool_len(q), 0);
    expect_counts_zero(q);
    pprofio_spool_close(q);
}

LTest(spool, a_process_killed_at_any_moment_loses_no_completed_batch_and_leaves_nothing_damaged) {
    char *dir = scratch_dir();
    char *spool = path_join(dir, "spool");
    cr_assert_eq(pprofio_mkdirs(spool, 0700), 0);
    kill_pool = random_bytes(2 * KILL_POOL, 4242);
    static kill_stats ks;
    memset(&ks, 0, sizeof ks);
    uint64_t rng = 20261129;
    double t0 = now_s();
    for (int r = 0; r < KILL_ROUNDS; r++) {
        kill_round(spool, r, &rng, &ks);
        if ((r + 1) % KILL_EPOCH == 0)
            kill_verify(spool, r / KILL_EPOCH, r + 1 - KILL_EPOCH, r + 1, &ks);
    }
    double elapsed = now_s() - t0;
    cr_log_info("kill test: %d rounds (%d killed while opening) in %.1f s; %llu batches completed, %llu delivered "
                "(%d more that were in flight landed whole), %d cut-short writes left as temp files and discarded, "
                "%d rounds completed nothing; %.1f MiB delivered; at most %llu files adopted at once",
                KILL_ROUNDS, ks.early_kills, elapsed, (unsigned long long)ks.total_completed,
                (unsigned long long)ks.total_delivered, ks.in_flight_landed, ks.tmp_left, ks.empty_rounds,
                (double)ks.bytes_delivered / (double)MiB, (unsigned long long)ks.max_files);
    /* The test is worth something only if kills landed while batches were being written. */
    cr_assert_geq(ks.total_completed, ks.planned, "%llu batches completed, but the rounds waited for %llu",
                  (unsigned long long)ks.total_completed, (unsigned long long)ks.planned);
    cr_assert_gt(ks.planned, 100, "the rounds waited for only %llu pushes", (unsigned long long)ks.planned);
    cr_assert_gt(ks.tmp_left + ks.in_flight_landed, 0, "no kill landed during a push");
    free(kill_pool);
    kill_pool = NULL;
    free(spool);
    scratch_remove(dir);
}
