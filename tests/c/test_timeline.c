/*
 * test_timeline.c: a cycle's spans on their way out of the core. The
 * timeline module's two forms (the batch's Span messages, the JSON lines
 * file), and the agent's wiring: the recorder it owns, the SPANS command
 * before each cycle's end, the custom profile with its cycle attached, the
 * timeline in the batch and on disk, and spans past the bound reported in
 * the next batch's data_dropped event.
 */
#include "../../csrc/batch.h"
#include "../../csrc/clock.h"
#include "../../csrc/ledger.h"
#include "../../csrc/ingest.pb-c.h"
#include "../../csrc/spans.h"
#include "../../csrc/timeline.h"
#include "helpers.h"

#define T0 (INT64_C(1795988477) * SEC)

TestSuite(timeline, .timeout = 60, .fini = scratch_cleanup);

static pprofio_spans *new_recorder(int64_t max_bytes) {
    pprofio_spans_config cfg = {.max_bytes = max_bytes, .seed = 7};
    pprofio_spans *s = NULL;
    pprofio_error err = {0};
    assert_status(pprofio_spans_new(&cfg, &s, &err), PPROFIO_OK);
    return s;
}

static void record(pprofio_spans *s, const char *name, const char *tags, size_t tags_len, int64_t start, int64_t dur,
                   uint64_t id, uint64_t parent) {
    pprofio_span sp = {.name = name, .name_len = strlen(name), .tags = tags, .tags_len = tags_len,
                       .start_ns = start, .dur_ns = dur, .span_id = id, .parent_id = parent};
    pprofio_spans_record(s, &sp);
}

/* a_cycle records three spans of two series and takes the cycle. */
static pprofio_spans_cycle *a_cycle(void) {
    pprofio_spans *s = new_recorder(0);
    static const char tags[] = "quote\0a\"b\\c\n\0tier\0gold\0"; /* sorted by key, as Go sends them */
    record(s, "checkout", tags, sizeof tags - 1, T0, 5 * MS, 0x11, 0);
    record(s, "checkout", tags, sizeof tags - 1, T0 + SEC, 7 * MS, 0x12, 0);
    record(s, "db.query", NULL, 0, T0 + 2 * SEC, 1 * MS, 0x21, 0x12);
    pprofio_spans_cycle *c = NULL;
    assert_status(pprofio_spans_take(s, &c), PPROFIO_OK);
    pprofio_spans_free(s);
    return c;
}

LTest(timeline, the_batch_spans_carry_name_times_tags_and_ids_of_every_sampled_span) {
    pprofio_profile *p = pprofio_profile_new(PPROFIO_PROFILE_CUSTOM, 0, T0);
    p->spans = a_cycle();
    pprofio_timeline_pb pb;
    assert_status(pprofio_timeline_pb_make(&p, 1, &pb), PPROFIO_OK);
    assert_i64(pb.n_spans, 3);
    int seen_child = 0;
    for (size_t i = 0; i < pb.n_spans; i++) {
        Pprofio__Ingest__V1__Span *m = pb.spans[i];
        if (strcmp(m->name, "checkout") == 0) {
            assert_i64(m->n_tags, 2);
            cr_assert_str_eq(m->tags[0]->key, "quote");
            cr_assert_str_eq(m->tags[0]->value, "a\"b\\c\n");
            cr_assert_str_eq(m->tags[1]->key, "tier");
            cr_assert_str_eq(m->tags[1]->value, "gold");
            cr_assert(m->span_id == 0x11 || m->span_id == 0x12);
            assert_i64(m->duration_nanos, m->span_id == 0x11 ? 5 * MS : 7 * MS);
        } else {
            cr_assert_str_eq(m->name, "db.query");
            assert_i64(m->n_tags, 0);
            assert_i64(m->parent_span_id, 0x12);
            assert_i64(m->start_unix_nano, T0 + 2 * SEC);
            seen_child = 1;
        }
    }
    cr_assert(seen_child);
    pprofio_timeline_pb_free(&pb);
    pprofio_profile_free(p); /* frees the cycle too */
}

LTest(timeline, profiles_without_spans_make_no_span_messages) {
    pprofio_profile *p = pprofio_profile_new(PPROFIO_PROFILE_HEAP, 0, T0);
    pprofio_timeline_pb pb;
    assert_status(pprofio_timeline_pb_make(&p, 1, &pb), PPROFIO_OK);
    assert_i64(pb.n_spans, 0);
    cr_assert_null(pb.spans);
    pprofio_timeline_pb_free(&pb);
    pprofio_profile_free(p);
}

LTest(timeline, out_of_memory_while_making_span_messages_is_reported_and_leaks_nothing) {
    pprofio_profile *p = pprofio_profile_new(PPROFIO_PROFILE_CUSTOM, 0, T0);
    p->spans = a_cycle();
    for (long n = 0; n < 4; n++) {
        pprofio_timeline_pb pb;
        pprofio_alloc_fail_after(n);
        assert_status(pprofio_timeline_pb_make(&p, 1, &pb), PPROFIO_ERR_NOMEM);
        cr_assert_null(pb.spans);
        pprofio_alloc_fail_after(-1);
    }
    pprofio_profile_free(p);
}

LTest(timeline, the_file_holds_the_counts_each_series_and_each_sampled_span_as_json_lines) {
    char *dir = scratch_dir();
    pprofio_spans_cycle *c = a_cycle();
    char *path = NULL;
    size_t written = 0;
    pprofio_error err = {0};
    assert_status(pprofio_timeline_write(dir, "svc", T0, T0 + 60 * SEC, c, &written, &path, &err), PPROFIO_OK);
    assert_contains(path, "/svc/timeline/20261129T214117.000Z_20261129T214217.000Z.jsonl");
    size_t len;
    uint8_t *raw = read_file(path, &len);
    assert_i64(len, written);
    char *text = calloc(1, len + 1);
    memcpy(text, raw, len);
    free(raw);
    assert_contains(text, "\"recorded\":3,\"in_timeline\":3,\"not_in_timeline\":0");
    assert_contains(text, "{\"series\":\"checkout\",\"tags\":{\"quote\":\"a\\\"b\\\\c\\u000a\",\"tier\":\"gold\"},"
                          "\"count\":2,\"total_ns\":12000000,\"min_ns\":5000000,\"max_ns\":7000000");
    assert_contains(text, "{\"series\":\"db.query\",\"tags\":{},\"count\":1");
    assert_contains(text, "\"span_id\":\"0000000000000021\",\"parent_span_id\":\"0000000000000012\"");
    int lines = 0;
    for (char *q = text; *q; q++)
        lines += *q == '\n';
    assert_i64(lines, 1 + 2 + 3);
    assert_i64(mode_of(path) & 0777, 0600);
    /* The same window again gets a name of its own. */
    char *again = NULL;
    assert_status(pprofio_timeline_write(dir, "svc", T0, T0 + 60 * SEC, c, NULL, &again, &err), PPROFIO_OK);
    assert_contains(again, "_20261129T214217.000Z-1.jsonl");
    free(text);
    pprofio_free(path);
    pprofio_free(again);
    pprofio_spans_cycle_free(c);
    scratch_remove(dir);
}

LTest(timeline, a_folder_that_cannot_be_made_is_an_io_error_naming_it) {
    char *dir = scratch_dir();
    char *file = path_join(dir, "file");
    write_file(file, "x");
    pprofio_spans_cycle *c = a_cycle();
    pprofio_error err = {0};
    assert_status(pprofio_timeline_write(file, "svc", T0, T0 + SEC, c, NULL, NULL, &err), PPROFIO_ERR_IO);
    assert_contains(err.msg, "timeline");
    pprofio_spans_cycle_free(c);
    free(file);
    scratch_remove(dir);
}

LTest(timeline, the_overflow_series_is_named_for_what_it_is) {
    pprofio_spans_series sr = {.name = (char *)"", .overflow = 1};
    cr_assert_str_eq(pprofio_timeline_series_name(&sr), PPROFIO_TIMELINE_OVERFLOW);
    sr = (pprofio_spans_series){.name = (char *)"x"};
    cr_assert_str_eq(pprofio_timeline_series_name(&sr), "x");
}

LTest(timeline, a_batch_carries_the_spans_and_a_split_keeps_them_in_the_first_part_only) {
    pprofio_profile *ps[2] = {pprofio_profile_new(PPROFIO_PROFILE_HEAP, 0, T0),
                              pprofio_profile_new(PPROFIO_PROFILE_CUSTOM, 0, T0)};
    ps[1]->spans = a_cycle();
    pprofio_source src = {.service = "svc"};
    pprofio_bytes gz = {0}, a = {0}, b = {0};
    pprofio_error err = {0};
    assert_status(pprofio_batch_encode(&src, "0123456789abcdef0123456789abcdef", 1, ps, 2, NULL, 0, &gz, &err),
                  PPROFIO_OK);
    pprofio_bytes raw = {0};
    assert_status(pprofio_gunzip_bytes(gz.p, gz.len, &raw), PPROFIO_OK);
    Pprofio__Ingest__V1__UploadRequest *req = pprofio__ingest__v1__upload_request__unpack(NULL, raw.len, raw.p);
    cr_assert_not_null(req);
    assert_i64(req->n_spans, 3);
    assert_i64(req->n_profiles, 2);
    assert_i64(req->profiles[1]->type, PPROFIO__INGEST__V1__PROFILE_TYPE__PROFILE_TYPE_CUSTOM);
    pprofio__ingest__v1__upload_request__free_unpacked(req, NULL);
    char ida[33], idb[33];
    assert_status(pprofio_batch_split(gz.p, gz.len, &a, ida, &b, idb, &err), PPROFIO_OK);
    size_t counts[2];
    pprofio_bytes *parts[2] = {&a, &b};
    for (int i = 0; i < 2; i++) {
        pprofio_bytes r = {0};
        assert_status(pprofio_gunzip_bytes(parts[i]->p, parts[i]->len, &r), PPROFIO_OK);
        req = pprofio__ingest__v1__upload_request__unpack(NULL, r.len, r.p);
        counts[i] = req->n_spans;
        pprofio__ingest__v1__upload_request__free_unpacked(req, NULL);
        pprofio_bytes_free(&r);
    }
    assert_i64(counts[0], 3);
    assert_i64(counts[1], 0);
    pprofio_bytes_free(&raw);
    pprofio_bytes_free(&gz);
    pprofio_bytes_free(&a);
    pprofio_bytes_free(&b);
    pprofio_profile_free(ps[0]);
    pprofio_profile_free(ps[1]);
}

/* ---- the agent's wiring --------------------------------------------------- */

static int64_t attached_bytes; /* what the last cycle attached holds */

/* answer_spans does what the Go collector does on SPANS: take the cycle,
 * write its custom profile, attach the cycle. It returns the spans taken. */
static uint64_t answer_spans(pprofio_agent *a, const pprofio_command *cmd) {
    pprofio_spans_cycle *c = NULL;
    assert_status(pprofio_agent_spans_take(a, &c), PPROFIO_OK);
    if (!c)
        return 0;
    uint64_t n = c->recorded;
    attached_bytes = c->bytes;
    pprofio_profile_writer *w = NULL;
    assert_status(pprofio_profile_begin(a, PPROFIO_PROFILE_CUSTOM, cmd->cycle, cmd->window_start_ns, &w), PPROFIO_OK);
    pprofio_bytes gz = gzip_of("custom profile", 14);
    pprofio_profile_attach_spans(w, c);
    assert_status(pprofio_profile_write(w, gz.p, gz.len), PPROFIO_OK);
    assert_status(pprofio_profile_finish(w, 1, cmd->at_ns), PPROFIO_OK);
    pprofio_bytes_free(&gz);
    return n;
}

LTest(timeline, the_agent_asks_for_a_cycles_spans_before_its_end_and_writes_them_beside_its_profiles) {
    char *dir = scratch_dir();
    static pprofio_sim_clock sim;
    pprofio_sim_clock_init(&sim, T0);
    pprofio_config cfg = {.service_name = "svc", .output_dir = dir, .period_ns = 60 * SEC, .jitter_seed = 1,
                          .max_buffer_bytes = 8 * (int64_t)MiB, .clock = &sim.base, .max_span_bytes = 64 * (int64_t)KiB,
                          .profile_types = PPROFIO_TYPE_BIT(PPROFIO_PROFILE_HEAP)};
    pprofio_agent *a = NULL;
    pprofio_error err = {0};
    assert_status(pprofio_agent_new(&cfg, &a, &err), PPROFIO_OK);
    pprofio_spans *rec = pprofio_agent_spans(a);
    cr_assert_not_null(rec);
    assert_status(pprofio_agent_start(a, &err), PPROFIO_OK);
    record(rec, "checkout", NULL, 0, T0 + SEC, 3 * MS, 1, 0);
    record(rec, "checkout", NULL, 0, T0 + 2 * SEC, 4 * MS, 2, 0);
    int ops[8], n = 0;
    uint64_t taken[3] = {0};
    pprofio_command cmd;
    do {
        assert_status(pprofio_agent_next(a, &cmd), PPROFIO_OK);
        if (cmd.op == PPROFIO_CMD_LOG)
            continue;
        cr_assert_lt(n, 8);
        ops[n++] = cmd.op;
        if (cmd.op == PPROFIO_CMD_SPANS) {
            /* A cycle ends at its end; the one Stop cuts short, where it started. */
            assert_i64(cmd.at_ns, T0 + (cmd.cycle < 2 ? cmd.cycle + 1 : 2) * 60 * SEC);
            assert_i64(cmd.window_start_ns, T0 + cmd.cycle * 60 * SEC);
            taken[cmd.cycle] = answer_spans(a, &cmd);
            if (cmd.cycle == 1)
                pprofio_agent_stop(a);
        }
    } while (cmd.op != PPROFIO_CMD_EXIT);
    /* HEAP(0) SPANS(0) HEAP(1) SPANS(1), then Stop: HEAP(2) SPANS(2) EXIT. */
    int want[] = {PPROFIO_CMD_HEAP, PPROFIO_CMD_SPANS, PPROFIO_CMD_HEAP, PPROFIO_CMD_SPANS,
                  PPROFIO_CMD_HEAP, PPROFIO_CMD_SPANS, PPROFIO_CMD_EXIT};
    assert_i64(n, 7);
    for (int i = 0; i < n; i++)
        assert_i64(ops[i], want[i]);
    assert_i64(taken[0], 2);
    assert_i64(taken[1], 0); /* no span: no custom profile */
    assert_status(pprofio_agent_close(a, &err), PPROFIO_OK);
    char *custom = path_join(dir, "svc/custom"), *timeline = path_join(dir, "svc/timeline");
    assert_i64(count_entries(custom, "20261129T214117.000Z_20261129T214217.000Z", ".pb.gz"), 1);
    assert_i64(count_entries(timeline, "20261129T214117.000Z_20261129T214217.000Z", ".jsonl"), 1);
    assert_i64(count_entries(custom, NULL, ".pb.gz"), 1);
    pprofio_stats st;
    pprofio_agent_stats(a, &st);
    assert_i64(st.spans_recorded, 2);
    assert_i64(st.spans_sampled, 2);
    assert_i64(st.spans_overflowed, 0);
    /* The attached cycle counted in the memory bound while it was held, and was given back. */
    cr_assert_gt(attached_bytes, 0);
    cr_assert_geq(st.buffered_bytes_peak, attached_bytes);
    assert_i64(st.buffered_bytes, 0);
    free(custom);
    free(timeline);
    pprofio_agent_free(a);
    scratch_remove(dir);
}

LTest(timeline, without_max_span_bytes_the_agent_keeps_no_recorder_and_sends_no_spans_command) {
    static pprofio_sim_clock sim;
    pprofio_sim_clock_init(&sim, T0);
    pprofio_config cfg = {.service_name = "svc", .period_ns = 60 * SEC, .jitter_seed = 1,
                          .max_buffer_bytes = 8 * (int64_t)MiB, .clock = &sim.base,
                          .profile_types = PPROFIO_TYPE_BIT(PPROFIO_PROFILE_HEAP)};
    pprofio_agent *a = NULL;
    pprofio_error err = {0};
    assert_status(pprofio_agent_new(&cfg, &a, &err), PPROFIO_OK);
    cr_assert_null(pprofio_agent_spans(a));
    pprofio_spans_cycle *c = (pprofio_spans_cycle *)&cfg;
    assert_status(pprofio_agent_spans_take(a, &c), PPROFIO_OK);
    cr_assert_null(c);
    assert_status(pprofio_agent_start(a, &err), PPROFIO_OK);
    pprofio_command cmd;
    assert_status(pprofio_agent_next(a, &cmd), PPROFIO_OK);
    assert_i64(cmd.op, PPROFIO_CMD_HEAP);
    pprofio_agent_stop(a);
    do
        assert_status(pprofio_agent_next(a, &cmd), PPROFIO_OK);
    while (cmd.op != PPROFIO_CMD_EXIT && cmd.op != PPROFIO_CMD_SPANS);
    assert_i64(cmd.op, PPROFIO_CMD_EXIT);
    pprofio_agent_free(a);
}

LTest(timeline, spans_past_the_bound_ride_the_next_batch_as_a_span_bound_data_dropped_event) {
    static pprofio_sim_clock sim;
    pprofio_sim_clock_init(&sim, T0);
    pprofio_ledger *l = NULL;
    assert_status(pprofio_ledger_new(&sim.base, 1, &l), PPROFIO_OK);
    pprofio_ledger_lose_spans(l, 40);
    pprofio_ledger_lose_spans(l, 2);
    static pprofio_event evs[PPROFIO_LEDGER_MAX_EVENTS];
    size_t n = pprofio_ledger_take_events(l, INT64_MAX, evs);
    assert_i64(n, 1);
    cr_assert_str_eq(evs[0].kind, "data_dropped");
    int found = 0;
    for (size_t i = 0; i < evs[0].n_attrs; i++) {
        if (strcmp(evs[0].keys[i], "reason") == 0)
            found += strcmp(evs[0].values[i], "span_bound") == 0;
        if (strcmp(evs[0].keys[i], "spans") == 0)
            found += strcmp(evs[0].values[i], "42") == 0;
    }
    assert_i64(found, 2);
    assert_contains(evs[0].message, "42 span(s)");
    assert_i64(pprofio_ledger_take_events(l, INT64_MAX, evs), 0); /* reported once */
    pprofio_ledger_free(l);
}
