/*
 * receiver.h: the pprofio reference receiver (examples/ingest-server) as a
 * real HTTPS server for the C tests that upload (test_upload.c,
 * test_destination.c): built once per test binary (a Criterion PRE_ALL
 * hook; PPROFIO_INGEST_SERVER names a prebuilt one), started per test as a
 * subprocess with its own throwaway CA and a fault script, and read back
 * from its -record file (one JSON line per request) and its data folder.
 * Include it once, from the test file; the suite's .fini must call
 * receiver_fini so a failed test leaves no server behind.
 */
#ifndef PPROFIO_TEST_RECEIVER_H
#define PPROFIO_TEST_RECEIVER_H

#include <criterion/hooks.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>

#include "helpers.h"

/* The API key every receiver accepts. */
#define RECEIVER_KEY "k-test-3c9e1f7a2b"

/* ---- time ------------------------------------------------------------------- */

static inline int64_t wall_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * SEC + ts.tv_nsec;
}

static inline double mono_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static inline void sleep_ms(long ms) {
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

/* ---- the receiver binary ------------------------------------------------------ */

/* repo_root is the repository, from this file's path (ctest.mk compiles it by its absolute path). */
static __attribute__((unused)) const char *repo_root(void) {
    static char root[4096];
    if (!root[0]) {
        snprintf(root, sizeof root, "%s", __FILE__);
        char *end = strstr(root, "/tests/c/receiver.h");
        if (end)
            *end = '\0';
        else
            snprintf(root, sizeof root, ".");
    }
    return root;
}

static __attribute__((unused)) const char *server_bin(void) {
    static char path[4096];
    const char *env = getenv("PPROFIO_INGEST_SERVER");
    if (env && *env)
        return env;
    snprintf(path, sizeof path, "%s/build/ctest/ingest-server", repo_root());
    return path;
}

/*
 * Before any test: build the receiver (go build caches, so this takes about
 * a second). A failure is printed here; every test that needs the server
 * then fails saying the binary is missing.
 */
ReportHook(PRE_ALL)(struct criterion_test_set *set) {
    (void)set;
    const char *env = getenv("PPROFIO_INGEST_SERVER");
    if (env && *env)
        return;
    char cmd[16384];
    snprintf(cmd, sizeof cmd,
             "cd '%s/examples/ingest-server' && mkdir -p '%s/build/ctest' && "
             "PATH=\"$PATH:/usr/local/go/bin\" go build -o '%s.tmp' . && mv -f '%s.tmp' '%s'",
             repo_root(), repo_root(), server_bin(), server_bin(), server_bin());
    int rc = system(cmd);
    if (rc != 0)
        fprintf(stderr, "building the ingest receiver failed (%d): %s\n", rc, cmd);
}

/* ---- servers ------------------------------------------------------------------ */

typedef struct {
    pid_t pid;
    char *dir;
    char *ca, *record, *data, *ready, *log;
    char url[256];
} server;

#define MAX_SERVERS 4
static server *live_servers[MAX_SERVERS];

/* server_start runs the receiver with a fault script ("" for none) and waits until it listens. */
static inline server *server_start(const char *script, long long max_wire_bytes) {
    const char *bin = server_bin();
    cr_assert_eq(access(bin, X_OK), 0, "no ingest receiver at %s (the PRE_ALL build failed?): %s", bin,
                 strerror(errno));
    int slot = 0;
    while (slot < MAX_SERVERS && live_servers[slot])
        slot++;
    cr_assert_lt(slot, MAX_SERVERS, "more than %d servers in one test", MAX_SERVERS);
    server *s = calloc(1, sizeof *s);
    cr_assert(s);
    live_servers[slot] = s;
    s->dir = scratch_dir();
    s->ca = path_join(s->dir, "ca.pem");
    s->record = path_join(s->dir, "record.jsonl");
    s->data = path_join(s->dir, "data");
    s->ready = path_join(s->dir, "url");
    s->log = path_join(s->dir, "server.log");
    char wire[32];
    snprintf(wire, sizeof wire, "%lld", max_wire_bytes > 0 ? max_wire_bytes : 16LL << 20);
    const char *argv[] = {bin,       "-addr",   "127.0.0.1:0", "-ready-file", s->ready, "-ca-out", s->ca,
                          "-api-key", RECEIVER_KEY,      "-data",       s->data,       "-record", s->record,
                          "-script", script,   "-max-wire-bytes", wire,       NULL};
    pid_t parent = getpid();
    pid_t pid = fork();
    cr_assert_geq(pid, 0, "fork: %s", strerror(errno));
    if (pid == 0) {
        /* The server goes when this (main) thread of the test process does. */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(127);
        int fd = open(s->log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
        }
        execv(bin, (char *const *)argv);
        _exit(127);
    }
    s->pid = pid;
    double deadline = mono_seconds() + WAIT_GUARD_S;
    while (access(s->ready, F_OK) != 0) {
        int status;
        if (waitpid(pid, &status, WNOHANG) == pid) {
            s->pid = 0;
            size_t n;
            char *log = (char *)read_file(s->log, &n);
            cr_assert_fail("the ingest receiver exited (status %d) before it was ready: %.*s", status,
                           (int)n, log ? log : "");
        }
        cr_assert_lt(mono_seconds(), deadline, "the ingest receiver was not ready within %d s", WAIT_GUARD_S);
        sleep_ms(10);
    }
    size_t n;
    uint8_t *url = read_file(s->ready, &n);
    cr_assert(url && n > 0 && n < sizeof s->url, "cannot read %s", s->ready);
    memcpy(s->url, url, n);
    s->url[n] = '\0';
    free(url);
    return s;
}

/* server_kill ends the receiver: SIGTERM, up to 5 s for a graceful exit, then SIGKILL. */
static inline void server_kill(server *s) {
    if (s->pid <= 0)
        return;
    kill(s->pid, SIGTERM);
    double deadline = mono_seconds() + 5;
    int status;
    while (waitpid(s->pid, &status, WNOHANG) == 0) {
        if (mono_seconds() > deadline) {
            kill(s->pid, SIGKILL);
            waitpid(s->pid, &status, 0);
            break;
        }
        sleep_ms(5);
    }
    s->pid = 0;
}

/* server_stop ends the receiver and removes its folder. */
static inline void server_stop(server *s) {
    if (!s)
        return;
    server_kill(s);
    for (int i = 0; i < MAX_SERVERS; i++)
        if (live_servers[i] == s)
            live_servers[i] = NULL;
    free(s->ca);
    free(s->record);
    free(s->data);
    free(s->ready);
    free(s->log);
    scratch_remove(s->dir);
    free(s);
}

/* The suite's .fini: runs after every test, also one that failed an assertion. */
static inline void receiver_fini(void) {
    for (int i = 0; i < MAX_SERVERS; i++)
        if (live_servers[i])
            server_kill(live_servers[i]);
    scratch_cleanup();
}


/* ---- reading JSON lines (flat enough for strstr) -------------------------------- */

/* json_str copies the string value of "key" (escapes left as they are); 0 if absent. */
static inline int json_str(const char *line, const char *key, char *out, size_t n) {
    char pat[80];
    snprintf(pat, sizeof pat, "\"%s\":\"", key);
    out[0] = '\0';
    const char *p = strstr(line, pat);
    if (!p)
        return 0;
    p += strlen(pat);
    size_t i = 0;
    while (*p && *p != '"') {
        if (*p == '\\' && p[1]) {
            if (i + 1 < n)
                out[i++] = *p;
            p++;
        }
        if (i + 1 < n)
            out[i++] = *p;
        p++;
    }
    out[i] = '\0';
    return 1;
}

/* json_int reads the number value of "key", or def. */
static inline long long json_int(const char *line, const char *key, long long def) {
    char pat[80];
    snprintf(pat, sizeof pat, "\"%s\":", key);
    const char *p = strstr(line, pat);
    if (!p)
        return def;
    return strtoll(p + strlen(pat), NULL, 10);
}

/* One request as the receiver recorded it. */
typedef struct {
    char *text; /* the whole line */
    int status, decoded, profiles;
    long long sequence, wire_bytes;
    char path[128], action[32], reason[256], batch_id[80];
    char auth[256], ctype[128], cenc[64], idem[80], ua[256];
} request;

typedef struct {
    request *r;
    size_t n;
} record;

/* for_each_line calls fn for each non-empty line of a file (none if it is missing). */
static inline void for_each_line(const char *path, void (*fn)(void *, const char *), void *ctx) {
    size_t len;
    char *text = (char *)read_file(path, &len);
    if (!text)
        return;
    text = realloc(text, len + 1);
    text[len] = '\0';
    for (char *line = text, *nl; line && *line; line = nl ? nl + 1 : NULL) {
        nl = strchr(line, '\n');
        if (nl)
            *nl = '\0';
        if (*line)
            fn(ctx, line);
    }
    free(text);
}

static inline void add_request(void *ctx, const char *line) {
    record *rec = ctx;
    rec->r = realloc(rec->r, (rec->n + 1) * sizeof rec->r[0]);
    request *q = &rec->r[rec->n++];
    memset(q, 0, sizeof *q);
    q->text = strdup(line);
    q->status = (int)json_int(line, "status", -1);
    q->decoded = strstr(line, "\"decoded\":true") != NULL;
    q->profiles = (int)json_int(line, "profiles", -1);
    q->sequence = json_int(line, "sequence", 0);
    q->wire_bytes = json_int(line, "wire_bytes", -1);
    json_str(line, "path", q->path, sizeof q->path);
    json_str(line, "action", q->action, sizeof q->action);
    json_str(line, "reason", q->reason, sizeof q->reason);
    json_str(line, "batch_id", q->batch_id, sizeof q->batch_id);
    json_str(line, "Authorization", q->auth, sizeof q->auth);
    json_str(line, "Content-Type", q->ctype, sizeof q->ctype);
    json_str(line, "Content-Encoding", q->cenc, sizeof q->cenc);
    json_str(line, "Idempotency-Key", q->idem, sizeof q->idem);
    json_str(line, "User-Agent", q->ua, sizeof q->ua);
}

/* record_load reads what the receiver has recorded so far. */
static inline record record_load(const server *s) {
    record rec = {0};
    for_each_line(s->record, add_request, &rec);
    return rec;
}

static inline void record_free(record *rec) {
    for (size_t i = 0; i < rec->n; i++)
        free(rec->r[i].text);
    free(rec->r);
    *rec = (record){0};
}

/* Accepted batches: the lines of the receiver's batches.jsonl. */
typedef struct {
    char **line;
    size_t n;
} batches;

static inline void add_batch(void *ctx, const char *line) {
    batches *b = ctx;
    b->line = realloc(b->line, (b->n + 1) * sizeof b->line[0]);
    b->line[b->n++] = strdup(line);
}

static inline batches batches_load(const server *s) {
    batches b = {0};
    char *path = path_join(s->data, "batches.jsonl");
    for_each_line(path, add_batch, &b);
    free(path);
    return b;
}

static inline void batches_free(batches *b) {
    for (size_t i = 0; i < b->n; i++)
        free(b->line[i]);
    free(b->line);
    *b = (batches){0};
}

/* batch_line is the batches.jsonl line of batch id (asserts that there is one). */
static inline const char *batch_line(const batches *b, const char *id) {
    char want[128];
    snprintf(want, sizeof want, "\"batch_id\":\"%s\"", id);
    for (size_t i = 0; i < b->n; i++)
        if (strstr(b->line[i], want))
            return b->line[i];
    cr_assert_fail("batch %s is not in batches.jsonl (%zu batches)", id, b->n);
    return NULL;
}

/* expect_field checks the string value of "key" in a JSON line. */
static inline void expect_field(const char *line, const char *key, const char *want) {
    char v[512];
    cr_assert(json_str(line, key, v, sizeof v), "no \"%s\" in %s", key, line);
    cr_assert_str_eq(v, want, "\"%s\" is \"%s\", want \"%s\"", key, v, want);
}

/* stored_file returns the bytes of the k-th profile file of an accepted batch. */
static inline uint8_t *stored_file(const server *s, const char *line, int k, size_t *len) {
    const char *p = line;
    for (int i = 0; i <= k; i++) {
        p = strstr(p, "\"file\":\"");
        cr_assert(p, "profile %d has no file in %s", k, line);
        p += 1;
    }
    char rel[1024];
    json_str(p - 1, "file", rel, sizeof rel);
    char *path = path_join(s->data, rel);
    uint8_t *bytes = read_file(path, len);
    cr_assert(bytes, "cannot read %s", path);
    free(path);
    return bytes;
}

/* wait_for_requests waits (up to WAIT_GUARD_S) until the receiver has recorded n requests. */
static inline void wait_for_requests(const server *s, size_t n) {
    double deadline = mono_seconds() + WAIT_GUARD_S;
    for (;;) {
        record rec = record_load(s);
        size_t got = rec.n;
        record_free(&rec);
        if (got >= n)
            return;
        cr_assert_lt(mono_seconds(), deadline, "the receiver recorded %zu request(s) in %d s, want %zu", got,
                     WAIT_GUARD_S, n);
        sleep_ms(10);
    }
}

#endif
