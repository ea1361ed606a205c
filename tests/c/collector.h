/*
 * collector.h: a stand-in for the Go collector, for tests of the agent.
 *
 * It does what internal/ does in Go: park in pprofio_agent_next, and for each
 * CPU_START / CPU_STOP / HEAP stream a gzipped profile into the agent through
 * pprofio_profile_begin/write/finish. Each profile's bytes are made up front
 * (so that an allocation-failure test can arm its failure after them) and are
 * different for every type and cycle, so a file on disk can be traced back to
 * the one profile it must hold.
 */
#ifndef PPROFIO_TEST_COLLECTOR_H
#define PPROFIO_TEST_COLLECTOR_H

#include <stdatomic.h>

#include "../../csrc/clock.h"
#include "../../csrc/profile.pb-c.h"
#include "../../csrc/store.h"
#include "helpers.h"

#define COLLECTOR_CYCLES 24
#define COLLECTOR_CMDS 512
#define COLLECTOR_LOGS 64

typedef struct {
    uint8_t *raw; /* the serialized profile the agent should end up with */
    size_t raw_len;
    uint8_t *gz; /* what the collector streams in */
    size_t gz_len;
    /* what happened to it */
    int begun, begin_rc, write_rc, finish_rc;
} collected_profile;

typedef struct {
    pprofio_agent *a;
    pprofio_sim_clock *clock; /* the agent's; moved only by a stop */
    int64_t stop_at_heap_of;  /* call pprofio_agent_stop after HEAP of this cycle (-1: never) */
    int64_t stop_after_ns;    /* ... with the clock moved this far past the HEAP */
    size_t chunk;             /* bytes per pprofio_profile_write */

    collected_profile prof[PPROFIO_PROFILE_MAX + 1][COLLECTOR_CYCLES];
    pprofio_command cmds[COLLECTOR_CMDS]; /* every command but LOG, in order */
    size_t ncmds;
    pprofio_command logs[COLLECTOR_LOGS];
    size_t log_at[COLLECTOR_LOGS]; /* how many commands had come before each LOG */
    size_t nlogs;
} collector;

/*
 * heap_pprof wraps text in a real pprof profile (its comment), with one
 * sample of in-use values only: the agent decodes every heap profile for its
 * delta, and one without cumulative values is kept byte for byte.
 */
static inline uint8_t *heap_pprof(const uint8_t *text, size_t n, size_t *len) {
    char *comment = malloc(n + 1);
    for (size_t i = 0; i < n; i++)
        comment[i] = text[i] ? (char)text[i] : ' ';
    comment[n] = '\0';
    char *strings[] = {"", "inuse_space", "bytes", "main.work", comment};
    Perftools__Profiles__ValueType st = PERFTOOLS__PROFILES__VALUE_TYPE__INIT, *stp = &st;
    st.type = 1, st.unit = 2;
    Perftools__Profiles__Function fn = PERFTOOLS__PROFILES__FUNCTION__INIT, *fnp = &fn;
    fn.id = 1, fn.name = 3;
    Perftools__Profiles__Line line = PERFTOOLS__PROFILES__LINE__INIT, *linep = &line;
    line.function_id = 1, line.line = 7;
    Perftools__Profiles__Location loc = PERFTOOLS__PROFILES__LOCATION__INIT, *locp = &loc;
    loc.id = 1, loc.address = 0x401000, loc.n_line = 1, loc.line = &linep;
    uint64_t loc_ids[] = {1};
    int64_t values[] = {(int64_t)n};
    Perftools__Profiles__Sample s = PERFTOOLS__PROFILES__SAMPLE__INIT, *sp = &s;
    s.n_location_id = 1, s.location_id = loc_ids, s.n_value = 1, s.value = values;
    int64_t comments[] = {4};
    Perftools__Profiles__Profile p = PERFTOOLS__PROFILES__PROFILE__INIT;
    p.n_sample_type = 1, p.sample_type = &stp;
    p.n_sample = 1, p.sample = &sp;
    p.n_location = 1, p.location = &locp;
    p.n_function = 1, p.function = &fnp;
    p.n_string_table = 5, p.string_table = strings;
    p.n_comment = 1, p.comment = comments;
    *len = perftools__profiles__profile__get_packed_size(&p);
    uint8_t *out = malloc(*len);
    perftools__profiles__profile__pack(&p, out);
    free(comment);
    return out;
}

/* profile_bytes makes the raw bytes of one profile: text, a little noise, a tag. */
static inline uint8_t *profile_bytes(int type, int64_t cycle, size_t *len) {
    size_t n = 2 * KiB + (size_t)cycle * 531 + (size_t)type * 1777;
    uint64_t seed = (uint64_t)type * 1000 + (uint64_t)cycle;
    uint8_t *p = text_bytes(n, seed);
    uint8_t *noise = random_bytes(256, seed);
    memcpy(p + n / 2, noise, 256);
    free(noise);
    char tag[64];
    int k = snprintf(tag, sizeof tag, "profile type=%d cycle=%lld|", type, (long long)cycle);
    memcpy(p, tag, (size_t)k);
    *len = n;
    if (type == PPROFIO_PROFILE_HEAP) {
        uint8_t *pp = heap_pprof(p, n, len);
        free(p);
        return pp;
    }
    return p;
}

/* collector_set sets the bytes of one profile: raw is kept, gz is made from it. */
static inline void collector_set(collector *c, int type, int64_t cycle, uint8_t *raw, size_t n) {
    collected_profile *p = &c->prof[type][cycle];
    free(p->raw);
    free(p->gz);
    pprofio_bytes gz = gzip_of(raw, n);
    p->raw = raw;
    p->raw_len = n;
    p->gz = malloc(gz.len);
    memcpy(p->gz, gz.p, gz.len);
    p->gz_len = gz.len;
    pprofio_bytes_free(&gz);
}

/* collector_set_gz replaces what is streamed in for one profile (raw: none). */
static inline void collector_set_gz(collector *c, int type, int64_t cycle, const void *gz, size_t n) {
    collected_profile *p = &c->prof[type][cycle];
    free(p->raw);
    free(p->gz);
    p->raw = NULL;
    p->raw_len = 0;
    p->gz = malloc(n);
    memcpy(p->gz, gz, n);
    p->gz_len = n;
}

static inline void collector_init(collector *c, pprofio_sim_clock *clock, int64_t stop_at_heap_of) {
    memset(c, 0, sizeof *c);
    c->clock = clock;
    c->stop_at_heap_of = stop_at_heap_of;
    c->chunk = 1000;
    for (int t = PPROFIO_PROFILE_CPU; t <= PPROFIO_PROFILE_HEAP; t++) {
        for (int64_t k = 0; k < COLLECTOR_CYCLES; k++) {
            size_t n;
            uint8_t *raw = profile_bytes(t, k, &n);
            collector_set(c, t, k, raw, n);
        }
    }
}

/* collector_reset forgets what a run did, keeping the prepared bytes. */
static inline void collector_reset(collector *c, pprofio_agent *a) {
    c->a = a;
    c->ncmds = 0;
    c->nlogs = 0;
    for (int t = 0; t <= PPROFIO_PROFILE_MAX; t++) {
        for (int k = 0; k < COLLECTOR_CYCLES; k++) {
            collected_profile *p = &c->prof[t][k];
            p->begun = p->begin_rc = p->write_rc = p->finish_rc = 0;
        }
    }
}

static inline void collector_free(collector *c) {
    for (int t = 0; t <= PPROFIO_PROFILE_MAX; t++) {
        for (int k = 0; k < COLLECTOR_CYCLES; k++) {
            free(c->prof[t][k].raw);
            free(c->prof[t][k].gz);
        }
    }
}

static inline collected_profile *collector_profile(collector *c, int type, int64_t cycle) {
    cr_assert(cycle >= 0 && cycle < COLLECTOR_CYCLES, "cycle %lld is past what the collector prepared",
              (long long)cycle);
    return &c->prof[type][cycle];
}

/* stream writes gz[from:to] in chunks; the first failure ends it. */
static inline void stream(collector *c, pprofio_profile_writer *w, collected_profile *p, size_t from, size_t to) {
    for (size_t off = from; off < to && p->write_rc == PPROFIO_OK; off += c->chunk) {
        size_t k = to - off < c->chunk ? to - off : c->chunk;
        p->write_rc = pprofio_profile_write(w, p->gz + off, k);
    }
}

static inline pprofio_profile_writer *begin(collector *c, int type, const pprofio_command *cmd, int64_t start) {
    collected_profile *p = collector_profile(c, type, cmd->cycle);
    pprofio_profile_writer *w = NULL;
    p->begun = 1;
    p->begin_rc = pprofio_profile_begin(c->a, type, cmd->cycle, start, &w);
    if (p->begin_rc != PPROFIO_OK) {
        cr_assert_null(w, "a failed begin left a writer");
        pprofio_agent_skip(c->a, type, cmd->cycle, "pprofio_profile_begin failed");
    }
    return w;
}

/*
 * collector_run takes commands until EXIT. The CPU profile streams in
 * while its window is open (half at CPU_START, half at CPU_STOP), the heap
 * profile all at once, as runtime/pprof writes them.
 */
static inline void collector_run(collector *c) {
    pprofio_profile_writer *cpu = NULL;
    collected_profile *cpu_p = NULL;
    for (;;) {
        pprofio_command cmd;
        cr_assert_lt(c->ncmds, COLLECTOR_CMDS, "no EXIT after %d commands", COLLECTOR_CMDS);
        assert_status(pprofio_agent_next(c->a, &cmd), PPROFIO_OK);
        if (cmd.op == PPROFIO_CMD_LOG) {
            cr_assert_lt(c->nlogs, COLLECTOR_LOGS, "too many LOG commands");
            c->log_at[c->nlogs] = c->ncmds;
            c->logs[c->nlogs++] = cmd;
            continue;
        }
        c->cmds[c->ncmds++] = cmd;
        switch (cmd.op) {
        case PPROFIO_CMD_CPU_START:
            cr_assert_null(cpu, "CPU_START while a CPU window is open");
            cpu_p = collector_profile(c, PPROFIO_PROFILE_CPU, cmd.cycle);
            cpu = begin(c, PPROFIO_PROFILE_CPU, &cmd, cmd.at_ns);
            if (cpu)
                stream(c, cpu, cpu_p, 0, cpu_p->gz_len / 2);
            break;
        case PPROFIO_CMD_CPU_STOP:
            cr_assert(cpu_p && cpu_p == collector_profile(c, PPROFIO_PROFILE_CPU, cmd.cycle),
                      "CPU_STOP of cycle %lld without its CPU_START", (long long)cmd.cycle);
            if (cpu) {
                stream(c, cpu, cpu_p, cpu_p->gz_len / 2, cpu_p->gz_len);
                cpu_p->finish_rc = pprofio_profile_finish(cpu, 1, cmd.at_ns);
            }
            cpu = NULL;
            cpu_p = NULL;
            break;
        case PPROFIO_CMD_HEAP: {
            collected_profile *p = collector_profile(c, PPROFIO_PROFILE_HEAP, cmd.cycle);
            pprofio_profile_writer *w = begin(c, PPROFIO_PROFILE_HEAP, &cmd, cmd.window_start_ns);
            if (w) {
                stream(c, w, p, 0, p->gz_len);
                p->finish_rc = pprofio_profile_finish(w, 1, cmd.at_ns);
            }
            if (cmd.cycle == c->stop_at_heap_of) {
                if (c->clock && c->stop_after_ns)
                    atomic_store(&c->clock->now, cmd.at_ns + c->stop_after_ns);
                pprofio_agent_stop(c->a);
            }
            break;
        }
        case PPROFIO_CMD_EXIT:
            if (cpu) /* cannot happen: a stop closes the window first */
                pprofio_profile_finish(cpu, 0, cmd.at_ns);
            return;
        default:
            cr_assert_fail("unknown command %d", cmd.op);
        }
    }
}

/* agent_new_ok, agent_start_ok and agent_close_ok do the step or fail the test, naming the error. */
static inline pprofio_agent *agent_new_ok(const pprofio_config *cfg) {
    pprofio_agent *a = NULL;
    pprofio_error err = {0};
    int rc = pprofio_agent_new(cfg, &a, &err);
    cr_assert_eq(rc, PPROFIO_OK, "pprofio_agent_new: %s", err.msg);
    return a;
}

static inline void agent_start_ok(pprofio_agent *a) {
    pprofio_error err = {0};
    int rc = pprofio_agent_start(a, &err);
    cr_assert_eq(rc, PPROFIO_OK, "pprofio_agent_start: %s", err.msg);
}

static inline void agent_close_ok(pprofio_agent *a) {
    pprofio_error err = {0};
    int rc = pprofio_agent_close(a, &err);
    cr_assert_eq(rc, PPROFIO_OK, "pprofio_agent_close: %s (%s)", pprofio_strstatus(rc), err.msg);
}

/* collector_drain_logs takes the log lines made by close (pprofio.h: call next until EXIT). */
static inline void collector_drain_logs(collector *c) {
    for (int i = 0; i < 1000; i++) {
        pprofio_command cmd;
        assert_status(pprofio_agent_next(c->a, &cmd), PPROFIO_OK);
        if (cmd.op == PPROFIO_CMD_EXIT)
            return;
        if (cmd.op == PPROFIO_CMD_LOG && c->nlogs < COLLECTOR_LOGS)
            c->logs[c->nlogs++] = cmd;
    }
    cr_assert_fail("no EXIT after close");
}

/* profile_path is where the store puts the profile of [start, end]. */
static inline void profile_path(char *out, size_t n, const char *root, const char *service, int type,
                                int64_t start, int64_t end) {
    char a[32], b[32];
    pprofio_store_format_time(start, a, sizeof a);
    pprofio_store_format_time(end, b, sizeof b);
    snprintf(out, n, "%s/%s/%s/%s_%s.pb.gz", root, service, pprofio_profile_name(type), a, b);
}

#endif
