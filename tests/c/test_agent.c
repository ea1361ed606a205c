/*
 * test_agent.c: the agent with its real schedule and output thread, on a
 * simulated clock (csrc/clock.h), with this thread as the Go collector.
 *
 * The scheduler queues nothing new until the collector has taken what is
 * queued, and the simulated clock jumps to each deadline at once, so the
 * two run in lockstep: a dozen one-minute cycles take milliseconds and
 * every command's time is exact.
 */
#include <time.h>

#include "../../csrc/scheduler.h"
#include "collector.h"

#define T0 (INT64_C(1795988477) * SEC) /* 2026-11-29T21:41:17Z */
#define PERIOD (60 * SEC)
#define CPU_WINDOW (10 * SEC)
#define CPU_BIT PPROFIO_TYPE_BIT(PPROFIO_PROFILE_CPU)
#define HEAP_BIT PPROFIO_TYPE_BIT(PPROFIO_PROFILE_HEAP)
#define SERVICE "checkout"

TestSuite(agent, .timeout = HANG_GUARD_S, .fini = scratch_cleanup);

static pprofio_sim_clock sim;
static collector col; /* large: keep it off the stack */

static pprofio_config config_for(const char *output_dir) {
    pprofio_sim_clock_init(&sim, T0);
    return (pprofio_config){
        .service_name = SERVICE,
        .output_dir = output_dir,
        .period_ns = PERIOD,
        .cpu_duration_ns = CPU_WINDOW,
        .start_jitter_ns = 0,
        .jitter_seed = 1,
        .max_buffer_bytes = 8 * (int64_t)MiB,
        .profile_types = CPU_BIT | HEAP_BIT,
        .clock = &sim.base,
    };
}

/* ---- the expected command sequence ----------------------------------------- */

static const char *op_name(int op) {
    switch (op) {
    case PPROFIO_CMD_CPU_START: return "CPU_START";
    case PPROFIO_CMD_CPU_STOP: return "CPU_STOP";
    case PPROFIO_CMD_HEAP: return "HEAP";
    case PPROFIO_CMD_LOG: return "LOG";
    case PPROFIO_CMD_EXIT: return "EXIT";
    default: return "?";
    }
}

static const char *describe(const pprofio_command *c, char *buf, size_t n) {
    snprintf(buf, n, "%s(cycle %lld, at T0%+.3fs, window from T0%+.3fs)", op_name(c->op), (long long)c->cycle,
             (double)(c->at_ns - T0) / 1e9, (double)(c->window_start_ns - T0) / 1e9);
    return buf;
}

typedef struct {
    pprofio_command cmds[COLLECTOR_CMDS];
    size_t n;
} script;

static void want(script *s, int op, int64_t cycle, int64_t at, int64_t from) {
    cr_assert_lt(s->n, COLLECTOR_CMDS);
    s->cmds[s->n++] = (pprofio_command){.op = op, .cycle = cycle, .at_ns = at, .window_start_ns = from};
}

/*
 * lockstep_script is what the collector must receive when the first cycle
 * starts at S and it stops the agent after HEAP(stop_cycle), with the clock
 * moved `late` into the next cycle, which is inside its CPU window.
 */
static void lockstep_script(script *s, int64_t S, int64_t stop_cycle, int64_t late) {
    s->n = 0;
    for (int64_t c = 0; c <= stop_cycle; c++) {
        const int64_t Sc = S + c * PERIOD;
        want(s, PPROFIO_CMD_CPU_START, c, Sc, Sc);
        want(s, PPROFIO_CMD_CPU_STOP, c, Sc + CPU_WINDOW, Sc);
        want(s, PPROFIO_CMD_HEAP, c, Sc + PERIOD, Sc);
    }
    const int64_t last = stop_cycle + 1, Sl = S + last * PERIOD, stop = Sl + late;
    want(s, PPROFIO_CMD_CPU_START, last, Sl, Sl);
    want(s, PPROFIO_CMD_CPU_STOP, last, stop, Sl);
    want(s, PPROFIO_CMD_HEAP, last, stop, Sl);
    want(s, PPROFIO_CMD_EXIT, last, stop, stop);
}

static void expect_commands(const collector *c, const script *s) {
    char a[160], b[160];
    for (size_t i = 0; i < c->ncmds && i < s->n; i++) {
        const pprofio_command *g = &c->cmds[i], *w = &s->cmds[i];
        int same = g->op == w->op && g->cycle == w->cycle && g->at_ns == w->at_ns &&
                   g->window_start_ns == w->window_start_ns;
        cr_assert(same, "command %zu is %s, want %s", i, describe(g, a, sizeof a), describe(w, b, sizeof b));
    }
    cr_assert_eq(c->ncmds, s->n, "%zu commands, want %zu", c->ncmds, s->n);
}

/* expect_file checks that the profile of [start, end] is on disk and holds raw. */
static void expect_file(const char *root, int type, int64_t start, int64_t end, const collected_profile *p) {
    char path[4096];
    profile_path(path, sizeof path, root, SERVICE, type, start, end);
    size_t len;
    uint8_t *file = read_file(path, &len);
    cr_assert(file, "no file %s", path);
    cr_assert(gunzip_equals(file, len, p->raw, p->raw_len), "%s does not gunzip to its profile", path);
    free(file);
}

static int64_t file_bytes(const char *dir) {
    DIR *d = opendir(dir);
    if (!d)
        return 0;
    int64_t total = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        char *p = path_join(dir, e->d_name);
        struct stat st;
        if (e->d_name[0] != '.' && stat(p, &st) == 0)
            total += st.st_size;
        free(p);
    }
    closedir(d);
    return total;
}

static double real_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- the whole loop ------------------------------------------------------- */

LTest(agent, runs_a_dozen_cycles_in_lockstep_in_simulated_time_and_writes_every_profile) {
    char *dir = scratch_dir();
    char *root = path_join(dir, "profiles");
    pprofio_config cfg = config_for(root);
    const int64_t STOP_CYCLE = 11, LATE = 5 * SEC;
    collector_init(&col, &sim, STOP_CYCLE);
    col.stop_after_ns = LATE;
    col.a = agent_new_ok(&cfg);

    double t0 = real_seconds();
    agent_start_ok(col.a);
    collector_run(&col);
    agent_close_ok(col.a);
    double elapsed = real_seconds() - t0;

    static script s;
    lockstep_script(&s, T0, STOP_CYCLE, LATE);
    expect_commands(&col, &s);
    cr_assert_eq(col.nlogs, 0, "unexpected LOG: %s", col.nlogs ? col.logs[0].message : "");
    const double simulated = (double)(s.cmds[s.n - 1].at_ns - T0) / 1e9;
    /* Were the real clock slept on, the 660 simulated seconds would outlast HANG_GUARD_S. */
    cr_log_info("%.0f s of cycles in %.3f s", simulated, elapsed);

    /* Every profile made it to disk whole, under the name of its window. */
    int64_t gz_in = 0;
    for (int64_t c = 0; c <= STOP_CYCLE + 1; c++) {
        const int64_t Sc = T0 + c * PERIOD, last = c == STOP_CYCLE + 1;
        for (int t = PPROFIO_PROFILE_CPU; t <= PPROFIO_PROFILE_HEAP; t++) {
            collected_profile *p = collector_profile(&col, t, c);
            cr_assert(p->begun && p->begin_rc == 0 && p->write_rc == 0 && p->finish_rc == 0,
                      "%s profile of cycle %lld: begin %d, write %d, finish %d", pprofio_profile_name(t),
                      (long long)c, p->begin_rc, p->write_rc, p->finish_rc);
            gz_in += (int64_t)p->gz_len;
        }
        expect_file(root, PPROFIO_PROFILE_CPU, Sc, last ? Sc + LATE : Sc + CPU_WINDOW,
                    collector_profile(&col, PPROFIO_PROFILE_CPU, c));
        expect_file(root, PPROFIO_PROFILE_HEAP, Sc, last ? Sc + LATE : Sc + PERIOD,
                    collector_profile(&col, PPROFIO_PROFILE_HEAP, c));
    }
    char *cpu_dir = path_join(root, SERVICE "/cpu"), *heap_dir = path_join(root, SERVICE "/heap");
    const int profiles = (int)STOP_CYCLE + 2;
    assert_i64(count_entries(cpu_dir, NULL, ".pb.gz"), profiles);
    assert_i64(count_entries(heap_dir, NULL, ".pb.gz"), profiles);
    assert_i64(count_entries(cpu_dir, NULL, NULL), profiles);
    assert_i64(count_entries(heap_dir, NULL, NULL), profiles);

    pprofio_stats st;
    pprofio_agent_stats(col.a, &st);
    assert_i64(st.cycles, profiles);
    assert_i64(st.profiles_collected, 2 * profiles);
    assert_i64(st.profiles_written, 2 * profiles);
    assert_i64(st.profiles_skipped, 0);
    assert_i64(st.profiles_dropped_memory, 0);
    assert_i64(st.profiles_dropped_invalid, 0);
    assert_i64(st.profiles_dropped_write, 0);
    assert_i64(st.profiles_dropped_no_sink, 0);
    assert_i64(st.bytes_dropped, 0);
    assert_i64(st.bytes_received, gz_in);
    assert_i64(st.bytes_written, file_bytes(cpu_dir) + file_bytes(heap_dir));
    assert_i64(st.logs_dropped, 0);
    assert_i64(st.buffered_bytes, 0);
    cr_assert(st.buffered_bytes_peak > 0 && st.buffered_bytes_peak <= cfg.max_buffer_bytes, "peak %lld",
              (long long)st.buffered_bytes_peak);

    pprofio_agent_free(col.a);
    collector_free(&col);
    free(cpu_dir);
    free(heap_dir);
    free(root);
    scratch_remove(dir);
}

LTest(agent, stopping_right_after_a_cycle_ends_closes_the_next_cycle_at_its_start) {
    char *dir = scratch_dir();
    pprofio_config cfg = config_for(dir);
    collector_init(&col, &sim, 0);
    col.a = agent_new_ok(&cfg);
    agent_start_ok(col.a);
    collector_run(&col);
    agent_close_ok(col.a);
    static script s;
    lockstep_script(&s, T0, 0, 0);
    expect_commands(&col, &s);
    pprofio_stats st;
    pprofio_agent_stats(col.a, &st);
    assert_i64(st.cycles, 2);
    assert_i64(st.profiles_written, 4);
    pprofio_agent_free(col.a);
    collector_free(&col);
    scratch_remove(dir);
}

LTest(agent, the_first_cycle_starts_after_the_seeded_start_jitter) {
    pprofio_config cfg = config_for(NULL);
    cfg.start_jitter_ns = 45 * SEC;
    cfg.jitter_seed = 77;
    uint64_t seed = 77;
    const int64_t delay = pprofio_jitter_delay(&seed, 45 * SEC);
    cr_assert_gt(delay, 0);
    collector_init(&col, &sim, 0);
    col.a = agent_new_ok(&cfg);
    agent_start_ok(col.a);
    collector_run(&col);
    agent_close_ok(col.a);
    static script s;
    lockstep_script(&s, T0 + delay, 0, 0);
    expect_commands(&col, &s);
    pprofio_agent_free(col.a);
    collector_free(&col);
}

LTest(agent, a_heap_only_agent_sends_only_heap_commands) {
    char *dir = scratch_dir();
    pprofio_config cfg = config_for(dir);
    cfg.profile_types = HEAP_BIT;
    collector_init(&col, &sim, 4);
    col.a = agent_new_ok(&cfg);
    agent_start_ok(col.a);
    collector_run(&col);
    agent_close_ok(col.a);
    static script s;
    s.n = 0;
    for (int64_t c = 0; c <= 4; c++)
        want(&s, PPROFIO_CMD_HEAP, c, T0 + (c + 1) * PERIOD, T0 + c * PERIOD);
    const int64_t S5 = T0 + 5 * PERIOD;
    want(&s, PPROFIO_CMD_HEAP, 5, S5, S5);
    want(&s, PPROFIO_CMD_EXIT, 5, S5, S5);
    expect_commands(&col, &s);
    char *cpu_dir = path_join(dir, SERVICE "/cpu"), *heap_dir = path_join(dir, SERVICE "/heap");
    assert_i64(count_entries(cpu_dir, NULL, NULL), 0);
    assert_i64(count_entries(heap_dir, NULL, ".pb.gz"), 6);
    for (int64_t c = 0; c < 5; c++)
        expect_file(dir, PPROFIO_PROFILE_HEAP, T0 + c * PERIOD, T0 + (c + 1) * PERIOD,
                    collector_profile(&col, PPROFIO_PROFILE_HEAP, c));
    free(cpu_dir);
    free(heap_dir);
    pprofio_agent_free(col.a);
    collector_free(&col);
    scratch_remove(dir);
}

/* ---- profiles that cannot be kept ------------------------------------------- */

LTest(agent, a_profile_of_bytes_that_are_not_gzip_is_dropped_counted_and_logged) {
    char *dir = scratch_dir();
    pprofio_config cfg = config_for(dir);
    collector_init(&col, &sim, 2);
    const char junk[] = "this is a heap of bytes but certainly not gzip";
    collector_set_gz(&col, PPROFIO_PROFILE_CPU, 1, junk, sizeof junk);
    col.a = agent_new_ok(&cfg);
    agent_start_ok(col.a);
    collector_run(&col);
    agent_close_ok(col.a);

    collected_profile *bad = collector_profile(&col, PPROFIO_PROFILE_CPU, 1);
    assert_status(bad->write_rc, PPROFIO_ERR_FORMAT);
    assert_status(bad->finish_rc, PPROFIO_ERR_FORMAT);
    cr_assert_eq(col.nlogs, 1, "%zu LOG commands, want 1", col.nlogs);
    assert_i64(col.logs[0].level, PPROFIO_LOG_ERROR);
    assert_contains(col.logs[0].message, "cpu");
    assert_contains(col.logs[0].message, "gzip");
    /* The log comes before the next command: right after CPU_START(1). */
    const pprofio_command *before = &col.cmds[col.log_at[0] - 1];
    cr_assert(before->op == PPROFIO_CMD_CPU_START && before->cycle == 1, "the LOG came after %s of cycle %lld",
              op_name(before->op), (long long)before->cycle);

    pprofio_stats st;
    pprofio_agent_stats(col.a, &st);
    assert_i64(st.profiles_dropped_invalid, 1);
    assert_i64(st.profiles_dropped_memory, 0);
    assert_i64(st.profiles_collected, 2 * 4 - 1);
    assert_i64(st.profiles_written, 2 * 4 - 1);
    assert_i64(st.buffered_bytes, 0);
    char path[4096];
    profile_path(path, sizeof path, dir, SERVICE, PPROFIO_PROFILE_CPU, T0 + PERIOD, T0 + PERIOD + CPU_WINDOW);
    cr_assert_neq(access(path, F_OK), 0, "%s was written", path);
    expect_file(dir, PPROFIO_PROFILE_CPU, T0 + 2 * PERIOD, T0 + 2 * PERIOD + CPU_WINDOW,
                collector_profile(&col, PPROFIO_PROFILE_CPU, 2));
    pprofio_agent_free(col.a);
    collector_free(&col);
    scratch_remove(dir);
}

LTest(agent, a_profile_cut_short_is_dropped_as_invalid) {
    pprofio_config cfg = config_for(NULL);
    collector_init(&col, &sim, 0);
    collected_profile *p = collector_profile(&col, PPROFIO_PROFILE_HEAP, 0);
    p->gz_len -= 5; /* the trailer is missing */
    col.a = agent_new_ok(&cfg);
    agent_start_ok(col.a);
    collector_run(&col);
    agent_close_ok(col.a);
    assert_status(p->write_rc, PPROFIO_OK);
    assert_status(p->finish_rc, PPROFIO_ERR_FORMAT);
    pprofio_stats st;
    pprofio_agent_stats(col.a, &st);
    assert_i64(st.profiles_dropped_invalid, 1);
    assert_i64(st.buffered_bytes, 0);
    pprofio_agent_free(col.a);
    collector_free(&col);
}

LTest(agent, a_profile_larger_than_max_buffer_bytes_is_dropped_counted_and_logged) {
    char *dir = scratch_dir();
    pprofio_config cfg = config_for(dir);
    cfg.max_buffer_bytes = (int64_t)MiB;
    collector_init(&col, &sim, 1);
    uint8_t *big = calloc(1, 2 * MiB); /* 2 MiB of zeros gzip to 2 KiB */
    collector_set(&col, PPROFIO_PROFILE_CPU, 0, big, 2 * MiB);
    col.a = agent_new_ok(&cfg);
    agent_start_ok(col.a);
    collector_run(&col);
    agent_close_ok(col.a);

    collected_profile *p = collector_profile(&col, PPROFIO_PROFILE_CPU, 0);
    assert_status(p->write_rc, PPROFIO_ERR_LIMIT);
    assert_status(p->finish_rc, PPROFIO_ERR_LIMIT);
    cr_assert_eq(col.nlogs, 1, "%zu LOG commands, want 1", col.nlogs);
    assert_i64(col.logs[0].level, PPROFIO_LOG_WARN);
    assert_contains(col.logs[0].message, "cpu");
    assert_contains(col.logs[0].message, "memory bound");

    pprofio_stats st;
    pprofio_agent_stats(col.a, &st);
    assert_i64(st.profiles_dropped_memory, 1);
    assert_i64(st.profiles_dropped_invalid, 0);
    cr_assert_gt(st.bytes_dropped, 0);
    assert_i64(st.profiles_collected, 2 * 3 - 1);
    assert_i64(st.profiles_written, 2 * 3 - 1);
    assert_i64(st.buffered_bytes, 0);
    cr_assert_leq(st.buffered_bytes_peak, (int64_t)MiB);
    char *cpu_dir = path_join(dir, SERVICE "/cpu");
    assert_i64(count_entries(cpu_dir, NULL, ".pb.gz"), 2);
    expect_file(dir, PPROFIO_PROFILE_HEAP, T0, T0 + PERIOD, collector_profile(&col, PPROFIO_PROFILE_HEAP, 0));
    free(cpu_dir);
    pprofio_agent_free(col.a);
    collector_free(&col);
    scratch_remove(dir);
}

LTest(agent, when_memory_runs_out_the_oldest_queued_profile_is_evicted_for_the_newest) {
    char *dir = scratch_dir();
    pprofio_config cfg = config_for(dir);
    /*
     * Cycle 0's CPU profile (600 KiB, in a 1 MiB buffer) waits in memory
     * until the cycle ends; its heap profile (400 KiB, in a 512 KiB buffer)
     * cannot grow beside it under 1.25 MiB. Once the heap profile is in,
     * the small profiles of cycle 1 fit beside it, whether or not the
     * output thread is still writing it.
     */
    cfg.max_buffer_bytes = (int64_t)(MiB + MiB / 4);
    collector_init(&col, &sim, 0);
    collector_set(&col, PPROFIO_PROFILE_CPU, 0, random_bytes(600 * KiB, 1), 600 * KiB);
    /* Not pprof: the agent sends it as it is (and says so once). */
    collector_set(&col, PPROFIO_PROFILE_HEAP, 0, random_bytes(400 * KiB, 2), 400 * KiB);
    col.a = agent_new_ok(&cfg);
    agent_start_ok(col.a);
    collector_run(&col);
    agent_close_ok(col.a);

    assert_status(collector_profile(&col, PPROFIO_PROFILE_CPU, 0)->finish_rc, PPROFIO_OK);
    assert_status(collector_profile(&col, PPROFIO_PROFILE_HEAP, 0)->finish_rc, PPROFIO_OK);
    size_t bound_logs = 0;
    for (size_t i = 0; i < col.nlogs; i++) {
        if (strstr(col.logs[i].message, "as it is"))
            continue; /* the heap profile of this test is not pprof */
        bound_logs++;
        assert_i64(col.logs[i].level, PPROFIO_LOG_WARN);
        assert_contains(col.logs[i].message, "memory bound");
        assert_contains(col.logs[i].message, "oldest 1 profile");
    }
    cr_assert_eq(bound_logs, 1, "%zu memory-bound warnings, want 1", bound_logs);
    pprofio_stats st;
    pprofio_agent_stats(col.a, &st);
    assert_i64(st.profiles_dropped_memory, 1);
    assert_i64(st.bytes_dropped, 600 * KiB);
    assert_i64(st.profiles_collected, 4);
    assert_i64(st.profiles_written, 3);
    cr_assert_leq(st.buffered_bytes_peak, cfg.max_buffer_bytes);
    char path[4096];
    profile_path(path, sizeof path, dir, SERVICE, PPROFIO_PROFILE_CPU, T0, T0 + CPU_WINDOW);
    cr_assert_neq(access(path, F_OK), 0, "the evicted profile %s was written", path);
    expect_file(dir, PPROFIO_PROFILE_HEAP, T0, T0 + PERIOD, collector_profile(&col, PPROFIO_PROFILE_HEAP, 0));
    pprofio_agent_free(col.a);
    collector_free(&col);
    scratch_remove(dir);
}

LTest(agent, a_profile_the_collector_abandons_is_neither_written_nor_counted_as_dropped) {
    char *dir = scratch_dir();
    pprofio_config cfg = config_for(dir);
    pprofio_agent *a = agent_new_ok(&cfg);
    agent_start_ok(a);
    pprofio_command cmd;
    pprofio_agent_next(a, &cmd);
    assert_i64(cmd.op, PPROFIO_CMD_CPU_START);
    pprofio_profile_writer *w;
    assert_status(pprofio_profile_begin(a, PPROFIO_PROFILE_CPU, 0, cmd.at_ns, &w), PPROFIO_OK);
    uint8_t *raw = text_bytes(300 * KiB, 3);
    pprofio_bytes gz = gzip_of(raw, 300 * KiB);
    assert_status(pprofio_profile_write(w, gz.p, gz.len), PPROFIO_OK);
    pprofio_stats st;
    pprofio_agent_stats(a, &st);
    cr_assert_geq(st.buffered_bytes, 300 * KiB, "the bytes being received are counted as held");
    assert_status(pprofio_profile_finish(w, 0, cmd.at_ns + CPU_WINDOW), PPROFIO_OK);
    pprofio_agent_stats(a, &st);
    assert_i64(st.buffered_bytes, 0);
    pprofio_agent_stop(a);
    do
        pprofio_agent_next(a, &cmd);
    while (cmd.op != PPROFIO_CMD_EXIT);
    agent_close_ok(a);
    pprofio_agent_stats(a, &st);
    assert_i64(st.profiles_collected, 0);
    assert_i64(st.profiles_written, 0);
    assert_i64(st.profiles_dropped_memory + st.profiles_dropped_invalid + st.profiles_dropped_write, 0);
    assert_i64(st.bytes_received, gz.len);
    assert_i64(pprofio_profile_finish(NULL, 1, 0), PPROFIO_OK);
    pprofio_agent_free(a);
    pprofio_bytes_free(&gz);
    free(raw);
    scratch_remove(dir);
}

LTest(agent, profile_begin_refuses_an_unknown_type) {
    pprofio_config cfg = config_for(NULL);
    pprofio_agent *a = agent_new_ok(&cfg);
    pprofio_profile_writer *w = (pprofio_profile_writer *)&cfg;
    assert_status(pprofio_profile_begin(a, 0, 0, T0, &w), PPROFIO_ERR_INVALID);
    cr_assert_null(w);
    assert_status(pprofio_profile_begin(a, PPROFIO_PROFILE_MAX + 1, 0, T0, &w), PPROFIO_ERR_INVALID);
    cr_assert_null(w);
    pprofio_agent_free(a);
}

LTest(agent, without_an_output_dir_profiles_are_counted_as_dropped_for_no_sink) {
    pprofio_config cfg = config_for(NULL);
    collector_init(&col, &sim, 2);
    col.a = agent_new_ok(&cfg);
    agent_start_ok(col.a);
    collector_run(&col);
    agent_close_ok(col.a);
    pprofio_stats st;
    pprofio_agent_stats(col.a, &st);
    assert_i64(st.profiles_collected, 8);
    assert_i64(st.profiles_dropped_no_sink, 8);
    assert_i64(st.profiles_written, 0);
    int64_t raw = 0;
    for (int64_t c = 0; c < 4; c++)
        raw += (int64_t)(collector_profile(&col, PPROFIO_PROFILE_CPU, c)->raw_len +
                         collector_profile(&col, PPROFIO_PROFILE_HEAP, c)->raw_len);
    assert_i64(st.bytes_dropped, raw);
    assert_i64(st.buffered_bytes, 0);
    pprofio_agent_free(col.a);
    collector_free(&col);
}

LTest(agent, when_the_output_dir_cannot_be_written_close_reports_the_error) {
    char *dir = scratch_dir();
    char *file = path_join(dir, "file");
    write_file(file, "x");
    char *root = path_join(file, "profiles");
    pprofio_config cfg = config_for(root);
    collector_init(&col, &sim, 1);
    col.a = agent_new_ok(&cfg);
    agent_start_ok(col.a);
    collector_run(&col);
    pprofio_error err = {0};
    assert_status(pprofio_agent_close(col.a, &err), PPROFIO_ERR_IO);
    assert_i64(err.code, PPROFIO_ERR_IO);
    assert_contains(err.msg, root);
    assert_status(pprofio_agent_close(col.a, NULL), PPROFIO_OK); /* once only */
    pprofio_stats st;
    pprofio_agent_stats(col.a, &st);
    assert_i64(st.profiles_collected, 6);
    assert_i64(st.profiles_dropped_write, 6);
    assert_i64(st.profiles_written, 0);
    assert_i64(st.buffered_bytes, 0);
    pprofio_agent_free(col.a);
    collector_free(&col);
    free(root);
    free(file);
    scratch_remove(dir);
}

LTest(agent, the_agent_keeps_its_own_copy_of_the_config_strings) {
    char *dir = scratch_dir();
    char name[] = SERVICE;
    char *root = path_join(dir, "profiles");
    pprofio_config cfg = config_for(root);
    cfg.service_name = name;
    collector_init(&col, &sim, 0);
    col.a = agent_new_ok(&cfg);
    memcpy(name, "changed!", sizeof name); /* same length: still a valid name */
    memset(root + strlen(dir), 'X', strlen(root) - strlen(dir));
    agent_start_ok(col.a);
    collector_run(&col);
    agent_close_ok(col.a);
    char *kept = path_join(dir, "profiles/" SERVICE "/heap");
    assert_i64(count_entries(kept, NULL, ".pb.gz"), 2);
    assert_i64(count_entries(dir, NULL, NULL), 1);
    free(kept);
    pprofio_agent_free(col.a);
    collector_free(&col);
    free(root);
    scratch_remove(dir);
}

LTest(agent, skips_reported_by_the_collector_are_counted) {
    pprofio_config cfg = config_for(NULL);
    pprofio_agent *a = agent_new_ok(&cfg);
    pprofio_agent_skip(a, PPROFIO_PROFILE_CPU, 0, "cpu profiling already in use");
    pprofio_agent_skip(a, PPROFIO_PROFILE_CPU, 1, "cpu profiling already in use");
    pprofio_stats st;
    pprofio_agent_stats(a, &st);
    assert_i64(st.profiles_skipped, 2);
    pprofio_agent_free(a);
}

/* ---- lifecycle ----------------------------------------------------------------- */

LTest(agent, starting_twice_is_a_state_error) {
    pprofio_config cfg = config_for(NULL);
    pprofio_agent *a = agent_new_ok(&cfg);
    agent_start_ok(a);
    pprofio_error err = {0};
    assert_status(pprofio_agent_start(a, &err), PPROFIO_ERR_STATE);
    assert_i64(err.code, PPROFIO_ERR_STATE);
    assert_contains(err.msg, "started");
    pprofio_agent_stop(a);
    pprofio_command cmd;
    do
        pprofio_agent_next(a, &cmd);
    while (cmd.op != PPROFIO_CMD_EXIT);
    agent_close_ok(a);
    assert_status(pprofio_agent_start(a, &err), PPROFIO_ERR_STATE); /* nor after close */
    pprofio_agent_free(a);
    assert_status(pprofio_agent_start(NULL, &err), PPROFIO_ERR_INVALID);
}

LTest(agent, an_agent_never_started_closes_and_frees_cleanly) {
    pprofio_config cfg = config_for("/nonexistent/never/written");
    pprofio_agent *a = agent_new_ok(&cfg);
    pprofio_command cmd;
    assert_status(pprofio_agent_next(a, &cmd), PPROFIO_OK);
    assert_i64(cmd.op, PPROFIO_CMD_EXIT); /* nothing to wait for */
    agent_close_ok(a);
    agent_close_ok(a);
    pprofio_agent_free(a);
    pprofio_agent_free(agent_new_ok(&cfg)); /* free closes by itself */
    pprofio_agent_free(NULL);
    assert_status(pprofio_agent_close(NULL, NULL), PPROFIO_OK);
    pprofio_agent_stop(NULL);
}

LTest(agent, stop_is_idempotent_and_exit_repeats) {
    char *dir = scratch_dir();
    pprofio_config cfg = config_for(dir);
    collector_init(&col, &sim, 0);
    col.a = agent_new_ok(&cfg);
    agent_start_ok(col.a);
    pprofio_agent_stop(col.a); /* before any command was taken */
    pprofio_agent_stop(col.a);
    collector_run(&col);
    pprofio_agent_stop(col.a);
    for (int i = 0; i < 3; i++) {
        pprofio_command cmd;
        assert_status(pprofio_agent_next(col.a, &cmd), PPROFIO_OK);
        assert_i64(cmd.op, PPROFIO_CMD_EXIT);
    }
    agent_close_ok(col.a);
    pprofio_agent_stop(col.a);
    agent_close_ok(col.a);
    int exits = 0;
    for (size_t i = 0; i < col.ncmds; i++)
        exits += col.cmds[i].op == PPROFIO_CMD_EXIT;
    assert_i64(exits, 1);
    const pprofio_command *last = &col.cmds[col.ncmds - 1];
    assert_i64(last->op, PPROFIO_CMD_EXIT);
    /* Stopped at once: the partial first cycle is still closed and kept. */
    pprofio_stats st;
    pprofio_agent_stats(col.a, &st);
    assert_i64(st.cycles, 1);
    assert_i64(st.profiles_written, st.profiles_collected);
    pprofio_agent_free(col.a);
    collector_free(&col);
    scratch_remove(dir);
}

LTest(agent, stop_before_start_does_nothing) {
    char *dir = scratch_dir();
    pprofio_config cfg = config_for(dir);
    collector_init(&col, &sim, 1);
    col.a = agent_new_ok(&cfg);
    pprofio_agent_stop(col.a);
    agent_start_ok(col.a);
    collector_run(&col);
    agent_close_ok(col.a);
    static script s;
    lockstep_script(&s, T0, 1, 0);
    expect_commands(&col, &s);
    pprofio_agent_free(col.a);
    collector_free(&col);
    scratch_remove(dir);
}
