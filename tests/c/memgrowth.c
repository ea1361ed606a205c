/*
 * memgrowth.c: how much C heap the agent keeps per cycle, measured with
 * glibc's mallinfo2 over many cycles (`make memgrowth`). Not a test: it
 * prints figures for the reports. Built without sanitizers (ASan replaces
 * malloc, and mallinfo2 would see nothing).
 *
 * The agent runs on a simulated clock with this program as its collector:
 * CPU windows of made-up bytes and real heap profiles
 * (tests/testdata/heap_*.pb, alternating, so every cycle makes a delta).
 * With uploads, the reference receiver (examples/ingest-server, built by
 * the make target) runs as a subprocess over HTTPS on loopback, and each
 * cycle waits until the batches of the cycles before it are delivered (or,
 * without uploads, their profiles written), so nothing piles up in a queue
 * and what is measured is what stays.
 * After each cycle it reads mallinfo2's in-use bytes (uordblks + hblkhd)
 * and prints the growth per cycle after the warm-up, overall and for each
 * quarter of the run (levelling off shows as quarters going to 0).
 *
 *   memgrowth [-cycles N] [-warmup W] [-server PATH [-plain] [-new-connections]] [-spool]
 *
 * Without -server there is no upload (profiles go to a temporary folder).
 * -new-connections makes the receiver close each connection after its
 * answer (-no-keep-alive), so every batch makes a new TLS connection, as
 * it does behind a server or proxy whose idle timeout is shorter than the
 * cycle; -plain serves plain HTTP, to tell TLS apart from the rest.
 *
 * mallinfo2 counts the freed chunks that glibc parks in each thread's cache
 * (tcache, at most 7 per size class) as in use. A TLS handshake per batch
 * fills the upload thread's cache a few sizes at a time, which shows as
 * growth for the first thousand or so handshakes and then stops; run with
 * GLIBC_TUNABLES=glibc.malloc.tcache_count=0 to see only what is held.
 */
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../../csrc/clock.h"
#include "../../csrc/gz.h"
#include "pprofio.h"

#define SEC INT64_C(1000000000)

static void die(const char *what) {
    fprintf(stderr, "memgrowth: %s\n", what);
    exit(1);
}

static uint8_t *slurp(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    size_t cap = 1 << 16, len = 0;
    uint8_t *p = malloc(cap);
    size_t r;
    while (p && (r = fread(p + len, 1, cap - len, f)) > 0) {
        len += r;
        if (len == cap)
            p = realloc(p, cap *= 2);
    }
    fclose(f);
    *n = len;
    return p;
}

static size_t in_use(void) {
    struct mallinfo2 mi = mallinfo2();
    return mi.uordblks + mi.hblkhd;
}

static void sleep_ms(long ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

/* start_server runs the receiver and returns its base URL (in url), its CA in ca. */
static pid_t start_server(const char *bin, const char *dir, int plain, int close_each, char *url, size_t n,
                          char *ca) {
    char ready[4096], data[4096];
    snprintf(ready, sizeof ready, "%s/url", dir);
    snprintf(data, sizeof data, "%s/data", dir);
    snprintf(ca, 4096, "%s/ca.pem", dir);
    pid_t pid = fork();
    if (pid < 0)
        die("fork");
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        int fd = open("/dev/null", O_WRONLY);
        dup2(fd, 1);
        dup2(fd, 2);
        const char *argv[16] = {bin, "-addr", "127.0.0.1:0", "-ready-file", ready, "-api-key", "k", "-data", data};
        int k = 9;
        if (plain)
            argv[k++] = "-plain-http";
        else
            argv[k++] = "-ca-out", argv[k++] = ca;
        if (close_each)
            argv[k++] = "-no-keep-alive";
        execv(bin, (char *const *)argv);
        _exit(127);
    }
    for (int i = 0; i < 3000 && access(ready, F_OK) != 0; i++)
        sleep_ms(10);
    size_t len;
    char *u = (char *)slurp(ready, &len);
    if (!u || len == 0 || len >= n)
        die("the receiver did not start");
    memcpy(url, u, len);
    url[len] = '\0';
    while (len > 0 && (url[len - 1] == '\n' || url[len - 1] == ' '))
        url[--len] = '\0';
    free(u);
    return pid;
}

typedef struct {
    pprofio_agent *a;
    pprofio_bytes cpu, heap[2];
    int uploading;
    size_t *mem; /* in use after each cycle */
    int64_t cycles;
} run;

static void feed(pprofio_agent *a, int type, const pprofio_command *c, int64_t start, const pprofio_bytes *b) {
    pprofio_profile_writer *w;
    if (pprofio_profile_begin(a, type, c->cycle, start, &w) != PPROFIO_OK)
        die("profile_begin");
    pprofio_profile_write(w, b->p, b->len);
    pprofio_profile_finish(w, 1, c->at_ns);
}

/*
 * wait_done waits (real time) until the cycles before `cycle` are through:
 * their batches delivered (uploading) or their profiles written.
 */
static void wait_done(pprofio_agent *a, int uploading, uint64_t cycle) {
    for (int i = 0; i < 100000; i++) {
        pprofio_stats st;
        pprofio_agent_stats(a, &st);
        if (uploading ? st.batches_sent >= cycle : st.profiles_written >= 2 * cycle)
            return;
        if (st.batches_dropped_rejected || st.batches_retried)
            die("an upload failed");
        sleep_ms(1);
    }
    die("uploads stopped");
}

static void collect(run *r) {
    for (;;) {
        pprofio_command c;
        pprofio_agent_next(r->a, &c);
        switch (c.op) {
        case PPROFIO_CMD_EXIT:
            return;
        case PPROFIO_CMD_LOG:
            break;
        case PPROFIO_CMD_CPU_START:
            break;
        case PPROFIO_CMD_CPU_STOP:
            feed(r->a, PPROFIO_PROFILE_CPU, &c, c.window_start_ns, &r->cpu);
            break;
        case PPROFIO_CMD_HEAP:
            wait_done(r->a, r->uploading, (uint64_t)c.cycle);
            if (c.cycle < r->cycles)
                r->mem[c.cycle] = in_use();
            feed(r->a, PPROFIO_PROFILE_HEAP, &c, c.window_start_ns, &r->heap[c.cycle % 2]);
            if (c.cycle + 1 == r->cycles)
                pprofio_agent_stop(r->a);
            break;
        default:
            die("unexpected command");
        }
    }
}

/* slope is the least-squares growth per cycle of mem over [from, to). */
static double slope(const size_t *mem, int64_t from, int64_t to) {
    double n = (double)(to - from), sx = 0, sy = 0, sxx = 0, sxy = 0;
    for (int64_t i = from; i < to; i++) {
        double x = (double)i, y = (double)mem[i];
        sx += x, sy += y, sxx += x * x, sxy += x * y;
    }
    return (n * sxy - sx * sy) / (n * sxx - sx * sx);
}

int main(int argc, char **argv) {
    int64_t cycles = 2000, warmup = 200;
    const char *server = NULL;
    int plain = 0, spool = 0, close_each = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-cycles") && i + 1 < argc)
            cycles = atoll(argv[++i]);
        else if (!strcmp(argv[i], "-warmup") && i + 1 < argc)
            warmup = atoll(argv[++i]);
        else if (!strcmp(argv[i], "-server") && i + 1 < argc)
            server = argv[++i];
        else if (!strcmp(argv[i], "-plain"))
            plain = 1;
        else if (!strcmp(argv[i], "-spool"))
            spool = 1;
        else if (!strcmp(argv[i], "-new-connections"))
            close_each = 1;
        else
            die("usage: memgrowth [-cycles N] [-warmup W] [-server PATH [-plain] [-new-connections]] [-spool]");
    }
    if (warmup < 1 || cycles < warmup + 8)
        die("want -cycles >= -warmup + 8 and -warmup >= 1");
    signal(SIGPIPE, SIG_IGN);
    char dir[] = "/tmp/pprofio-memgrowth-XXXXXX";
    if (!mkdtemp(dir))
        die("mkdtemp");
    char url[512] = "", ca[4096] = "", spool_dir[4200], out_dir[4200];
    snprintf(spool_dir, sizeof spool_dir, "%s/spool", dir);
    snprintf(out_dir, sizeof out_dir, "%s/profiles", dir);
    pid_t pid = server ? start_server(server, dir, plain, close_each, url, sizeof url, ca) : 0;

    run r = {.uploading = server != NULL, .cycles = cycles};
    r.mem = calloc((size_t)cycles, sizeof *r.mem);
    size_t n;
    uint8_t *raw = slurp("tests/testdata/heap_base.pb", &n);
    if (!raw)
        die("run from the repository root (tests/testdata/heap_base.pb)");
    pprofio_gzip_bytes(raw, n, &r.heap[0]);
    free(raw);
    raw = slurp("tests/testdata/heap_cur.pb", &n);
    pprofio_gzip_bytes(raw, n, &r.heap[1]);
    free(raw);
    char text[8192];
    for (size_t i = 0; i < sizeof text; i++)
        text[i] = "runtime.mallocgc main.work\n"[i % 27];
    pprofio_gzip_bytes(text, sizeof text, &r.cpu);

    pprofio_sim_clock sim;
    pprofio_sim_clock_init(&sim, (int64_t)time(NULL) * SEC);
    pprofio_config cfg = {
        .service_name = "memgrowth",
        .period_ns = 60 * SEC,
        .cpu_duration_ns = 10 * SEC,
        .jitter_seed = 1,
        .max_buffer_bytes = 32 << 20,
        .profile_types = PPROFIO_TYPE_BIT(PPROFIO_PROFILE_CPU) | PPROFIO_TYPE_BIT(PPROFIO_PROFILE_HEAP),
        .clock = &sim.base,
        .connect_timeout_ns = 10 * SEC,
        .request_timeout_ns = 30 * SEC,
        .stop_timeout_ns = 3600 * SEC,
        .source = {.instance_id = "0123456789abcdef0123456789abcdef", .hostname = "h"},
    };
    if (server) {
        cfg.ingest_url = url;
        cfg.api_key = "k";
        cfg.ca_file = plain ? NULL : ca;
        if (spool) {
            cfg.spool_dir = spool_dir;
            cfg.max_spool_bytes = 64 << 20;
        }
    } else {
        cfg.output_dir = out_dir;
    }
    pprofio_error err = {0};
    if (pprofio_agent_new(&cfg, &r.a, &err) != PPROFIO_OK || pprofio_agent_start(r.a, &err) != PPROFIO_OK) {
        fprintf(stderr, "memgrowth: %s\n", err.msg);
        return 1;
    }
    collect(&r);
    pprofio_agent_close(r.a, NULL);
    pprofio_stats st;
    pprofio_agent_stats(r.a, &st);
    pprofio_agent_free(r.a);

    const char *tunables = getenv("GLIBC_TUNABLES");
    printf("memgrowth: %s%s%s%s%s, %lld cycles (warm-up %lld), %llu batches sent, %llu profiles written\n",
           server ? (plain ? "upload over plain HTTP" : "upload over HTTPS") : "no upload (local files)",
           spool ? " with a disk spool" : "", close_each ? ", a new connection per batch" : "",
           tunables ? ", GLIBC_TUNABLES=" : "", tunables ? tunables : "", (long long)cycles, (long long)warmup,
           (unsigned long long)st.batches_sent, (unsigned long long)st.profiles_written);
    printf("memgrowth: in use after warm-up %zu B, at the end %zu B: %+.2f B/cycle (least squares %+.2f B/cycle)\n",
           r.mem[warmup], r.mem[cycles - 1],
           (double)((long long)r.mem[cycles - 1] - (long long)r.mem[warmup]) / (double)(cycles - 1 - warmup),
           slope(r.mem, warmup, cycles));
    int64_t q = (cycles - warmup) / 4;
    for (int k = 0; k < 4; k++)
        printf("memgrowth:   quarter %d (cycles %lld-%lld): %+.2f B/cycle\n", k + 1, (long long)(warmup + k * q),
               (long long)(warmup + (k + 1) * q - 1), slope(r.mem, warmup + k * q, warmup + (k + 1) * q));
    if (pid > 0) {
        kill(pid, SIGTERM);
        waitpid(pid, NULL, 0);
    }
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "memgrowth: could not remove %s\n", dir);
    free(r.mem);
    pprofio_bytes_free(&r.cpu);
    pprofio_bytes_free(&r.heap[0]);
    pprofio_bytes_free(&r.heap[1]);
    return 0;
}
