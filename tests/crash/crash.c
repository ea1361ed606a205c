/*
 * crash.c: the crash-safety figure (make crash). A real process pushes
 * batches into the disk spool and uploads them over HTTPS to the reference
 * receiver on loopback, with the core's own modules (queue.c, batch.c,
 * upload.c: a pusher thread and an uploader thread, as in the agent), and
 * is SIGKILLed at a random point, again and again: CRASH_KILLS times (1000).
 *
 * Each round is a new process with a new instance id on the same spool: it
 * adopts what the killed ones left and goes on uploading it while it pushes
 * its own batches. The parent kills it after it has completed a random
 * number of pushes (0-4) plus 0-20 ms, so kills land inside spool writes,
 * inside uploads (before, during and after the server's answer) and between
 * them; one round in eight is killed 0-5 ms after fork, while it opens and
 * adopts. The child reports each batch on a pipe only after
 * pprofio_queue_push returned: those are the completed batches. When all
 * rounds are done, a last process (not killed) adopts and delivers the rest.
 *
 * Then the receiver's record (-record) and its batches.jsonl say what
 * arrived, and the program checks and prints:
 *   corrupt   accepted batches whose id, sequence, profiles or bytes are not
 *             what was pushed (each stored profile is compared byte for byte)
 *   lost      completed batches that never arrived
 *   twice     batches accepted (200) more than once: a repeat must get 409
 * and exits 1 unless all three are 0. It also says where the kills landed:
 * the child marks on the pipe each push and each post it begins and ends.
 *
 *   crash <receiver binary> [kills]
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../../csrc/batch.h"
#include "../../csrc/gz.h"
#include "../../csrc/queue.h"
#include "../../csrc/sysio.h"
#include "../../csrc/upload.h"

#define SEC INT64_C(1000000000)
#define STRIDE 1000 /* round r pushes batches r * STRIDE + 0, 1, ... */
#define READY UINT64_MAX
/* Pipe messages: a completed push is its index alone; these tags mark work begun and ended. */
#define TAG_SHIFT 56
#define PUSH_BEGIN (UINT64_C(1) << TAG_SHIFT)
#define POST_BEGIN (UINT64_C(2) << TAG_SHIFT)
#define POST_END (UINT64_C(3) << TAG_SHIFT)
#define KEY "k-crash-5e1d"
#define BIG (INT64_C(1) << 40)
#define T0 (INT64_C(1795988000) * SEC)

static char work[256], spool[300], url[256], ca[300], record_path[300], data_dir[300];

static void die(const char *what) {
    fprintf(stderr, "crash: %s: %s\n", what, strerror(errno));
    exit(2);
}

static uint64_t splitmix(uint64_t *s) {
    uint64_t z = (*s += UINT64_C(0x9E3779B97F4A7C15));
    z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
    return z ^ (z >> 31);
}

/* ---- batch i, all of it derived from i ------------------------------------------------- */

static void id_of(uint64_t i, char out[33]) {
    uint64_t s = i * 7919 + 1;
    unsigned long long a = splitmix(&s), b = splitmix(&s);
    snprintf(out, 33, "%016llx%016llx", a, b);
}
static size_t nprof_of(uint64_t i) { return 1 + (size_t)(i % 3); }
static int type_of(uint64_t i, size_t k) { return 1 + (int)((i + k) % 5); }
static size_t size_of(uint64_t i, size_t k) {
    uint64_t s = i * 8 + k;
    return 256 + (size_t)(splitmix(&s) % (48 * 1024));
}
static void fill(uint64_t i, size_t k, uint8_t *p, size_t n) {
    uint64_t s = (i * 8 + k) ^ UINT64_C(0xfeed);
    for (size_t j = 0; j < n; j += 8) {
        uint64_t v = splitmix(&s);
        memcpy(p + j, &v, n - j < 8 ? n - j : 8);
    }
}

static void encode(uint64_t i, const char *instance, pprofio_bytes *out) {
    pprofio_profile p[3], *pp[3];
    for (size_t k = 0; k < nprof_of(i); k++) {
        memset(&p[k], 0, sizeof p[k]);
        p[k].type = type_of(i, k);
        p[k].start_ns = T0 + (int64_t)i * SEC;
        p[k].end_ns = p[k].start_ns + SEC;
        if (pprofio_bytes_grow(&p[k].raw, size_of(i, k), NULL, NULL) != PPROFIO_OK)
            _exit(4);
        p[k].raw.len = size_of(i, k);
        fill(i, k, p[k].raw.p, p[k].raw.len);
        pp[k] = &p[k];
    }
    pprofio_source src = {.service = "crash", .hostname = "loopback", .pid = getpid(), .instance_id = instance,
                          .agent_version = "crash", .runtime_version = "none", .os = "linux", .arch = "any"};
    char id[33];
    id_of(i, id);
    out->len = 0;
    int rc = pprofio_batch_encode(&src, id, i + 1, pp, nprof_of(i), NULL, 0, out, NULL);
    for (size_t k = 0; k < nprof_of(i); k++)
        pprofio_bytes_free(&p[k].raw);
    if (rc != PPROFIO_OK)
        _exit(5);
}

/* ---- the child: a pusher and an uploader ------------------------------------------------ */

static int write_u64(int fd, uint64_t v) { return pprofio_write_all(fd, &v, sizeof v); }

static void sleep_us(long us) {
    struct timespec ts = {us / 1000000, (us % 1000000) * 1000};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

typedef struct {
    pprofio_queue *q;
    pprofio_uploader *u;
    atomic_int stop_when_empty;
    uint64_t sent;
    int fd; /* where to mark posts begun and ended; -1: nowhere */
} up_state;

/* uploader delivers the queue's head, oldest first, until told to stop on an empty queue. */
static void *uploader(void *arg) {
    up_state *st = arg;
    for (;;) {
        pprofio_queue_head h;
        int rc = pprofio_queue_peek(st->q, &h);
        if (rc == 1 && atomic_load(&st->stop_when_empty))
            return NULL;
        if (rc != 0) {
            sleep_us(1000);
            continue;
        }
        pprofio_upload_result res;
        uint64_t bytes = 0;
        if (st->fd >= 0 && write_u64(st->fd, POST_BEGIN) != 0)
            _exit(9);
        pprofio_uploader_post(st->u, h.batch_id, h.payload, h.len, 0, &res, &bytes);
        if (st->fd >= 0 && write_u64(st->fd, POST_END) != 0)
            _exit(9);
        if (res.verdict == PPROFIO_UP_DONE) {
            pprofio_queue_pop(st->q);
            st->sent++;
        } else {
            fprintf(stderr, "crash: upload of %s: %ld %s\n", h.batch_id, res.status, res.detail);
            sleep_us(20000);
        }
    }
}

static int open_both(const char *instance, pprofio_queue **q, pprofio_uploader **u) {
    pprofio_config cfg = {.service_name = "crash", .ingest_url = url, .api_key = KEY, .ca_file = ca,
                          .connect_timeout_ns = 60 * SEC, .request_timeout_ns = 120 * SEC};
    pprofio_error err = {0};
    if (pprofio_queue_open(spool, instance, BIG, BIG, q, &err) != PPROFIO_OK ||
        pprofio_uploader_new(&cfg, u, &err) != PPROFIO_OK) {
        fprintf(stderr, "crash: open: %s\n", err.msg);
        return -1;
    }
    return 0;
}

/* child pushes batches first, first+1, ... while its uploader thread sends; it never returns. */
static void child(const char *instance, uint64_t first, int fd) {
    pprofio_queue *q;
    pprofio_uploader *u;
    if (open_both(instance, &q, &u) != 0)
        _exit(2);
    if (write_u64(fd, READY) != 0)
        _exit(3);
    up_state st = {.q = q, .u = u, .fd = fd};
    pthread_t t;
    if (pthread_create(&t, NULL, uploader, &st) != 0)
        _exit(3);
    for (uint64_t i = first; i < first + STRIDE; i++) {
        pprofio_bytes b = {0};
        encode(i, instance, &b);
        char id[33];
        id_of(i, id);
        if (write_u64(fd, PUSH_BEGIN) != 0)
            _exit(7);
        if (pprofio_queue_push(q, id, i + 1, (uint32_t)nprof_of(i), &b, 0, NULL) != PPROFIO_OK)
            _exit(6);
        if (write_u64(fd, i) != 0)
            _exit(7);
    }
    _exit(8);
}

/* drain adopts everything as a last, unkilled process and delivers it; returns the corrupt files it met. */
static void drain(int fd) {
    pprofio_queue *q;
    pprofio_uploader *u;
    if (open_both("ffffffffffffffffffffffffffffffff", &q, &u) != 0)
        _exit(2);
    up_state st = {.q = q, .u = u, .stop_when_empty = 1, .fd = -1};
    uploader(&st);
    pprofio_queue_counts c;
    pprofio_queue_take_counts(q, &c);
    write_u64(fd, c.adopted);
    write_u64(fd, c.corrupt_files);
    write_u64(fd, st.sent);
    pprofio_uploader_free(u);
    pprofio_queue_close(q);
    _exit(0);
}

/* ---- the parent ---------------------------------------------------------------------------- */

static double mono_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static pid_t start_receiver(const char *bin) {
    char ready[300], log[300];
    snprintf(ready, sizeof ready, "%s/url", work);
    snprintf(log, sizeof log, "%s/receiver.log", work);
    const char *argv[] = {bin, "-addr", "127.0.0.1:0", "-ready-file", ready, "-ca-out", ca, "-api-key", KEY,
                          "-data", data_dir, "-record", record_path, NULL};
    pid_t parent = getpid(), pid = fork();
    if (pid < 0)
        die("fork");
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(127);
        int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        dup2(fd, 1);
        dup2(fd, 2);
        execv(bin, (char *const *)argv);
        _exit(127);
    }
    while (access(ready, F_OK) != 0) { /* no deadline: it comes when it comes, or the receiver exits */
        int st;
        if (waitpid(pid, &st, WNOHANG) == pid) {
            fprintf(stderr, "crash: the receiver exited before it listened; see %s\n", log);
            exit(2);
        }
        sleep_us(10000);
    }
    FILE *f = fopen(ready, "r");
    if (!f || !fgets(url, sizeof url, f))
        die(ready);
    fclose(f);
    url[strcspn(url, "\n")] = '\0';
    return pid;
}

static void wait_killed(pid_t pid, int r) {
    int st;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
    }
    if (!WIFSIGNALED(st) || WTERMSIG(st) != SIGKILL) {
        fprintf(stderr, "crash: round %d: the child ended on its own (exit %d)\n", r,
                WIFEXITED(st) ? WEXITSTATUS(st) : -1);
        exit(1);
    }
}

typedef struct {
    int rounds, early, opening, in_push, in_post, in_both, between;
    int *completed; /* per round: pushes that returned */
    uint64_t total_completed;
} plan;

/* note reads one message of the child. */
static void note(uint64_t v, int *ready, int *completed, int *pushing, int *posting) {
    if (v == READY)
        *ready = 1;
    else if (v == PUSH_BEGIN)
        *pushing = 1;
    else if (v == POST_BEGIN)
        *posting = 1;
    else if (v == POST_END)
        *posting = 0;
    else {
        (*completed)++;
        *pushing = 0;
    }
}

/* round runs one child and kills it after `target` completed pushes plus a little, or while it opens. */
static void round_once(plan *pl, int r, uint64_t *rng) {
    char inst[33];
    snprintf(inst, sizeof inst, "%032x", 0x100000u + (unsigned)r);
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0)
        die("pipe");
    int early = splitmix(rng) % 8 == 0;
    int target = early ? 0 : (int)(splitmix(rng) % 5);
    long delay = early ? (long)(splitmix(rng) % 5001) : (long)(splitmix(rng) % 20001);
    pid_t pid = fork();
    if (pid < 0)
        die("fork");
    if (pid == 0) {
        close(fds[0]);
        child(inst, (uint64_t)r * STRIDE, fds[1]);
    }
    close(fds[1]);
    int completed = 0, ready = 0;
    uint64_t v;
    int pushing = 0, posting = 0; /* what the child was doing at the last message read */
    while (completed < target && read(fds[0], &v, sizeof v) == (ssize_t)sizeof v)
        note(v, &ready, &completed, &pushing, &posting);
    if (completed < target) {
        fprintf(stderr, "crash: round %d: the child stopped after %d pushes\n", r, completed);
        exit(1);
    }
    sleep_us(delay);
    kill(pid, SIGKILL);
    wait_killed(pid, r);
    while (read(fds[0], &v, sizeof v) == (ssize_t)sizeof v) {
        if (v < PUSH_BEGIN && v != (uint64_t)r * STRIDE + (uint64_t)completed) {
            fprintf(stderr, "crash: round %d: reported %llu out of order\n", r, (unsigned long long)v);
            exit(1);
        }
        note(v, &ready, &completed, &pushing, &posting);
    }
    close(fds[0]);
    /* Where the kill landed, as far as the child had said: a push or a post begun and not ended. */
    pl->opening += !ready; /* killed before it had opened its spool (and adopted) */
    if (ready) {
        pl->in_both += pushing && posting;
        pl->in_push += pushing && !posting;
        pl->in_post += posting && !pushing;
        pl->between += !pushing && !posting;
    }
    pl->completed[r] = completed;
    pl->total_completed += (uint64_t)completed;
    pl->early += early;
}

/* ---- what arrived ----------------------------------------------------------------------- */

static const char *json_at(const char *s, const char *key) {
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\":", key);
    const char *p = strstr(s, pat);
    return p ? p + strlen(pat) : NULL;
}
static long long json_int(const char *s, const char *key) {
    const char *p = json_at(s, key);
    return p ? strtoll(p, NULL, 10) : -1;
}
static void json_str(const char *s, const char *key, char *out, size_t n) {
    const char *p = json_at(s, key);
    out[0] = '\0';
    if (!p || *p != '"')
        return;
    size_t len = strcspn(p + 1, "\"");
    if (len >= n)
        len = n - 1;
    memcpy(out, p + 1, len);
    out[len] = '\0';
}

typedef struct {
    uint64_t requests, ok, conflicts, cut_short, refused_decoded, corrupt, lost, twice, never_pushed, accepted;
    uint8_t *ok_count, *acc_count; /* per batch index */
} tally;

static int index_of(const plan *pl, long long seq, uint64_t *i) {
    if (seq < 1 || (uint64_t)(seq - 1) >= (uint64_t)pl->rounds * STRIDE)
        return 0;
    *i = (uint64_t)(seq - 1);
    return 1;
}

static void read_record(const plan *pl, tally *t) {
    FILE *f = fopen(record_path, "r");
    if (!f)
        die(record_path);
    char *line = NULL;
    size_t cap = 0;
    while (getline(&line, &cap, f) > 0) {
        t->requests++;
        long long status = json_int(line, "status");
        const char *d = json_at(line, "decoded");
        int decoded = d && strncmp(d, "true", 4) == 0;
        char id[64], want[33];
        json_str(line, "batch_id", id, sizeof id);
        uint64_t i;
        if (status == 409) {
            t->conflicts++;
        } else if (status == 200) {
            t->ok++;
            if (!index_of(pl, json_int(line, "sequence"), &i) || (id_of(i, want), strcmp(id, want) != 0)) {
                t->corrupt++;
                fprintf(stderr, "crash: accepted %s with sequence %lld: not a batch that was pushed\n", id,
                        json_int(line, "sequence"));
            } else if (++t->ok_count[i] > 1) {
                t->twice++;
            }
        } else if (decoded) {
            t->refused_decoded++; /* a whole batch refused: would be a corrupt delivery */
            fprintf(stderr, "crash: a decoded batch was answered %lld: %s", status, line);
        } else {
            t->cut_short++; /* the kill ended the request before the body was whole */
        }
    }
    free(line);
    fclose(f);
}

/* check_profiles compares each profile of an accepted batch with what was pushed, byte for byte. */
static int check_profiles(const char *line, uint64_t i) {
    const char *p = strstr(line, "\"profiles\":[");
    const char *end = p ? strstr(p, "\"events\"") : NULL;
    size_t k = 0;
    for (const char *q = p ? strstr(p, "\"type\":") : NULL; q && (!end || q < end); q = strstr(q + 1, "\"type\":"), k++) {
        char type[32], file[512], path[1024];
        json_str(q, "type", type, sizeof type);
        json_str(q, "file", file, sizeof file);
        if (k >= nprof_of(i) || strcmp(type, pprofio_profile_name(type_of(i, k))) != 0 ||
            json_int(q, "bytes") != (long long)size_of(i, k) ||
            json_int(q, "start_unix_nano") != T0 + (long long)i * SEC)
            return 0;
        snprintf(path, sizeof path, "%s/%s", data_dir, file);
        FILE *f = fopen(path, "rb");
        if (!f)
            return 0;
        pprofio_bytes gz = {0}, raw = {0};
        pprofio_bytes_grow(&gz, 1 << 20, NULL, NULL);
        gz.len = fread(gz.p, 1, 1 << 20, f);
        fclose(f);
        int same = pprofio_gunzip_bytes(gz.p, gz.len, &raw) == PPROFIO_OK && raw.len == size_of(i, k);
        if (same) {
            uint8_t *want = malloc(raw.len);
            fill(i, k, want, raw.len);
            same = memcmp(want, raw.p, raw.len) == 0;
            free(want);
        }
        pprofio_bytes_free(&gz);
        pprofio_bytes_free(&raw);
        if (!same)
            return 0;
    }
    return k == nprof_of(i);
}

static void read_batches(const plan *pl, tally *t) {
    char path[400];
    snprintf(path, sizeof path, "%s/%s", data_dir, "batches.jsonl");
    FILE *f = fopen(path, "r");
    if (!f)
        die(path);
    char *line = NULL;
    size_t cap = 0;
    while (getline(&line, &cap, f) > 0) {
        t->accepted++;
        uint64_t i;
        char id[64], want[33];
        json_str(line, "batch_id", id, sizeof id);
        if (!index_of(pl, json_int(line, "sequence"), &i) || (id_of(i, want), strcmp(id, want) != 0) ||
            !check_profiles(line, i)) {
            t->corrupt++;
            fprintf(stderr, "crash: stored batch %s is not what was pushed\n", id);
            continue;
        }
        if (++t->acc_count[i] > 1)
            t->twice++;
        if ((int)(i % STRIDE) > pl->completed[i / STRIDE])
            t->never_pushed++; /* beyond the one in flight */
    }
    free(line);
    fclose(f);
    for (int r = 0; r < pl->rounds; r++)
        for (int k = 0; k < pl->completed[r]; k++)
            if (t->acc_count[(uint64_t)r * STRIDE + (uint64_t)k] == 0) {
                t->lost++;
                fprintf(stderr, "crash: batch %d of round %d was completed and never arrived\n", k, r);
            }
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: crash <ingest-server binary> [kills]\n");
        return 2;
    }
    int kills = argc > 2 ? atoi(argv[2]) : 1000;
    snprintf(work, sizeof work, "%s/pprofio-crash-XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (!mkdtemp(work))
        die("mkdtemp");
    snprintf(spool, sizeof spool, "%s/spool", work);
    snprintf(ca, sizeof ca, "%s/ca.pem", work);
    snprintf(record_path, sizeof record_path, "%s/record.jsonl", work);
    snprintf(data_dir, sizeof data_dir, "%s/data", work);
    pid_t srv = start_receiver(argv[1]);
    printf("crash: %d kills; receiver %s; work %s\n", kills, url, work);
    fflush(stdout);

    plan pl = {.rounds = kills, .completed = calloc((size_t)kills, sizeof(int))};
    uint64_t rng = getenv("CRASH_SEED") ? strtoull(getenv("CRASH_SEED"), NULL, 10) : 20261201;
    double t0 = mono_s();
    for (int r = 0; r < kills; r++) {
        round_once(&pl, r, &rng);
        if ((r + 1) % 100 == 0) {
            printf("crash: %d kills, %llu batches completed, %.0f s\n", r + 1,
                   (unsigned long long)pl.total_completed, mono_s() - t0);
            fflush(stdout);
        }
    }
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0)
        die("pipe");
    pid_t d = fork();
    if (d == 0) {
        close(fds[0]);
        drain(fds[1]);
    }
    close(fds[1]);
    uint64_t adopted = 0, corrupt_files = 0, drained = 0;
    int st;
    if (read(fds[0], &adopted, 8) != 8 || read(fds[0], &corrupt_files, 8) != 8 || read(fds[0], &drained, 8) != 8 ||
        waitpid(d, &st, 0) != d || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        fprintf(stderr, "crash: the last process did not deliver the rest\n");
        return 1;
    }
    kill(srv, SIGTERM);
    waitpid(srv, &st, 0);

    tally t = {.ok_count = calloc((size_t)kills * STRIDE, 1), .acc_count = calloc((size_t)kills * STRIDE, 1)};
    read_record(&pl, &t);
    read_batches(&pl, &t);
    printf("crash: %d SIGKILLs (%d aimed at the open, 0-5 ms after fork) in %.0f s; %llu batches completed, %llu accepted; "
           "%llu requests: %llu answered 200, %llu answered 409 (a repeat after a kill), %llu cut short by a kill; "
           "the last process adopted %llu files and sent %llu\n",
           kills, pl.early, mono_s() - t0, (unsigned long long)pl.total_completed, (unsigned long long)t.accepted,
           (unsigned long long)t.requests, (unsigned long long)t.ok, (unsigned long long)t.conflicts,
           (unsigned long long)t.cut_short, (unsigned long long)adopted, (unsigned long long)drained);
    printf("crash: the kills landed while the child opened and adopted: %d; inside a spool write: %d; inside an "
           "upload: %d; inside both at once: %d; between them: %d\n",
           pl.opening, pl.in_push, pl.in_post, pl.in_both, pl.between);
    printf("crash: corrupt batches delivered: %llu; completed batches lost: %llu; delivered twice without a 409: "
           "%llu; damaged spool files: %llu; decoded batches refused: %llu; batches never pushed: %llu\n",
           (unsigned long long)t.corrupt, (unsigned long long)t.lost, (unsigned long long)t.twice,
           (unsigned long long)corrupt_files, (unsigned long long)t.refused_decoded,
           (unsigned long long)t.never_pushed);
    int bad = t.corrupt || t.lost || t.twice || corrupt_files || t.refused_decoded || t.never_pushed;
    if (!bad && !getenv("CRASH_KEEP")) {
        char cmd[400];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", work);
        if (system(cmd) != 0)
            fprintf(stderr, "crash: could not remove %s\n", work);
    }
    printf("crash: %s\n", bad ? "FAILED" : "passed");
    free(t.ok_count);
    free(t.acc_count);
    free(pl.completed);
    return bad;
}
