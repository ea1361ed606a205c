/*
 * fuzz_seeds.c: writes the seed corpora of the fuzz targets, made by the
 * core's own writers so that they follow the formats as they are:
 *
 *   fuzz_seeds <dir>   fills <dir>/spool, <dir>/batch, <dir>/retry_after, <dir>/config
 *
 * spool: batch files written by pprofio_queue_push (one, and three of equal
 * size in one input), with and without the target's fix-up flags; batch:
 * batches of 0 to 5 profiles from pprofio_batch_encode, gzipped and raw;
 * retry_after: the header's forms; config: configurations that pass and
 * some that fail. `make fuzz` runs it before each target (tests/fuzz/fuzz.mk).
 */
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../csrc/batch.h"
#include "../../csrc/gz.h"
#include "../../csrc/queue.h"
#include "../../csrc/sysio.h"

#define NS INT64_C(1000000000)

static const char *out_dir;

static void die(const char *what) {
    fprintf(stderr, "fuzz_seeds: %s\n", what);
    exit(1);
}

static void put(const char *target, const char *name, const void *a, size_t na, const void *b, size_t nb) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", out_dir, target);
    if (pprofio_mkdirs(path, 0755) != 0)
        die("mkdir");
    snprintf(path, sizeof path, "%s/%s/%s", out_dir, target, name);
    FILE *f = fopen(path, "wb");
    if (!f || (na && fwrite(a, 1, na, f) != na) || (nb && fwrite(b, 1, nb, f) != nb) || fclose(f) != 0)
        die(path);
}

static const char *tag_keys[] = {"env", "region", "version"};
static const char *tag_values[] = {"prod", "eu-west-1", "1.2.3"};
static const pprofio_source source = {
    .tag_keys = tag_keys, .tag_values = tag_values, .n_tags = 3, .service = "checkout",
    .hostname = "host-1", .pid = 42, .instance_id = "0123456789abcdef0123456789abcdef",
    .agent_version = "0.1.0", .runtime_version = "go1.22.0", .os = "linux", .arch = "amd64",
    .process_start_ns = 1700000000 * NS};

/* batch_of encodes a batch of n profiles of a few hundred bytes each. */
static void batch_of(size_t n, uint64_t seq, pprofio_bytes *gz) {
    pprofio_profile p[5], *pp[5];
    char raw[5][300];
    for (size_t i = 0; i < n; i++) {
        memset(&p[i], 0, sizeof p[i]);
        p[i].type = (int)(i % 5) + 1;
        p[i].start_ns = 1700000000 * NS + (int64_t)i * NS;
        p[i].end_ns = p[i].start_ns + 10 * NS;
        memset(raw[i], 'a' + (int)i, sizeof raw[i]);
        p[i].raw.p = (uint8_t *)raw[i];
        p[i].raw.len = sizeof raw[i];
        pp[i] = &p[i];
    }
    pprofio_event ev;
    pprofio_event_init(&ev, "data_dropped", 1700000001 * NS, "seed");
    pprofio_event_attr_u64(&ev, "profiles", 3);
    pprofio_event_attr(&ev, "reason", "memory");
    char id[33];
    pprofio_batch_id(id);
    gz->len = 0;
    if (pprofio_batch_encode(&source, id, seq, pp, n, &ev, 1, gz, NULL) != PPROFIO_OK)
        die("encode");
}

static void batch_seeds(void) {
    for (size_t n = 0; n <= 5; n++) {
        pprofio_bytes gz = {0}, raw = {0};
        batch_of(n, 7 + n, &gz);
        if (pprofio_gunzip_bytes(gz.p, gz.len, &raw) != PPROFIO_OK)
            die("gunzip");
        char name[32];
        snprintf(name, sizeof name, "gz-%zu", n);
        put("batch", name, "\0", 1, gz.p, gz.len);
        snprintf(name, sizeof name, "raw-%zu", n);
        put("batch", name, "\1", 1, raw.p, raw.len);
        pprofio_bytes_free(&gz);
        pprofio_bytes_free(&raw);
    }
}

/* read_batch_files reads the .batch files of dir, in name order, into files[] (at most 3). */
static int read_batch_files(const char *dir, pprofio_bytes files[3]) {
    struct dirent **list;
    int n = scandir(dir, &list, NULL, alphasort), got = 0;
    for (int i = 0; i < n; i++) {
        size_t len = strlen(list[i]->d_name);
        if (got < 3 && len > 6 && strcmp(list[i]->d_name + len - 6, ".batch") == 0) {
            char path[4096];
            snprintf(path, sizeof path, "%s/%s", dir, list[i]->d_name);
            FILE *f = fopen(path, "rb");
            if (!f)
                die(path);
            files[got].len = 0;
            pprofio_bytes_grow(&files[got], 1 << 20, NULL, NULL);
            files[got].len = fread(files[got].p, 1, 1 << 20, f);
            fclose(f);
            got++;
        }
        free(list[i]);
    }
    free(list);
    return got;
}

static void spool_seeds(void) {
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/.spool-work", out_dir);
    pprofio_queue *q = NULL;
    if (pprofio_queue_open(dir, "00000000000000000000000000000001", INT64_C(1) << 40, INT64_C(1) << 40, &q, NULL) !=
        PPROFIO_OK)
        die("queue open");
    pprofio_bytes one = {0};
    batch_of(2, 100, &one); /* pushed three times: files of one size, so one input can hold the three */
    for (uint32_t i = 0; i < 3; i++) {
        pprofio_bytes gz = {0};
        if (pprofio_bytes_grow(&gz, one.len, NULL, NULL) != PPROFIO_OK)
            die("grow");
        memcpy(gz.p, one.p, one.len);
        gz.len = one.len;
        char id[33];
        pprofio_batch_id(id);
        if (pprofio_queue_push(q, id, 100 + i, 2, &gz, 0, NULL) != PPROFIO_OK)
            die("push");
        pprofio_bytes_free(&gz);
    }
    pprofio_bytes_free(&one);
    pprofio_queue_close(q);
    char own[4200];
    snprintf(own, sizeof own, "%s/00000000000000000000000000000001", dir);
    pprofio_bytes files[3] = {{0}};
    if (read_batch_files(own, files) != 3 || files[0].len != files[1].len || files[1].len != files[2].len)
        die("spool files");
    put("spool", "one-asis", "\x00", 1, files[0].p, files[0].len);
    put("spool", "one-fixed", "\x0f", 1, files[0].p, files[0].len);
    put("spool", "one-strangers", "\x18", 1, files[0].p, files[0].len);
    pprofio_bytes three = {0};
    for (int i = 0; i < 3; i++) {
        pprofio_bytes_grow(&three, files[i].len, NULL, NULL);
        memcpy(three.p + three.len, files[i].p, files[i].len);
        three.len += files[i].len;
    }
    put("spool", "three-asis", "\x48", 1, three.p, three.len);
    put("spool", "header-only", "\x0f", 1, files[0].p, 72);
    for (int i = 0; i < 3; i++)
        pprofio_bytes_free(&files[i]);
    pprofio_bytes_free(&three);
    char cmd[8300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        die(cmd);
}

static void retry_after_seeds(void) {
    static const char *const v[] = {"0", "120", " 3600 ", "3601", "18446744073709551616", "-1", "1.5",
                                    "Wed, 21 Oct 2015 07:28:00 GMT", "Sunday, 06-Nov-94 08:49:37 GMT",
                                    "Sun Nov  6 08:49:37 1994", "Tue, 01 Dec 2026 10:00:00 GMT",
                                    "Fri, 31 Dec 9999 23:59:59 GMT", "Thu, 01 Jan 1970 00:00:00 GMT"};
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        char name[16];
        snprintf(name, sizeof name, "v%zu", i);
        put("retry_after", name, v[i], strlen(v[i]), NULL, 0);
    }
}

static void config_seed(const char *name, int64_t period, int64_t cpu, unsigned types, const char *strs, size_t n) {
    int64_t v[8] = {period, cpu, 0, 16 << 20, 64 << 20, 10 * NS, 30 * NS, 5 * NS};
    int32_t w[4] = {(int32_t)types, 0, 0, 0};
    uint8_t nums[80];
    memcpy(nums, v, sizeof v);
    memcpy(nums + sizeof v, w, sizeof w);
    put("config", name, nums, sizeof nums, strs, n);
}

#define S(lit) lit, sizeof(lit) - 1

static void config_seeds(void) {
    unsigned all = 0x3e; /* cpu, heap, goroutine, mutex, block */
    config_seed("local", 60 * NS, 10 * NS, 0x6, S("checkout\0/tmp/pprofio-out"));
    config_seed("upload", 60 * NS, 10 * NS, all,
                S("checkout\0\0https://ingest.example:8443/base/\0key-123\0\0pprofio-go/0.1\0\0host-1\0"
                  "0123456789abcdef0123456789abcdef\0env\0prod\0region\0eu-west-1"));
    config_seed("spool", 10 * NS, 1 * NS, all,
                S("svc.a_b-c\0\0http://127.0.0.1:9/\0k\0/etc/ssl/ca.pem\0ua\0/tmp/spool\0h\0"
                  "0123456789abcdef0123456789abcdef\0t\0\xc3\xa9t\xc3\xa9"));
    config_seed("bad-period", 1, 1, 0x2, S("checkout"));
    config_seed("bad-url", 60 * NS, 10 * NS, 0x2, S("checkout\0\0ftp://x\0key\r\n"));
}

int main(int argc, char **argv) {
    if (argc != 2)
        die("usage: fuzz_seeds <dir>");
    out_dir = argv[1];
    batch_seeds();
    spool_seeds();
    retry_after_seeds();
    config_seeds();
    return 0;
}
