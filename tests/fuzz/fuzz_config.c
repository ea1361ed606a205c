/*
 * fuzz_config.c: a libFuzzer target for the configuration and tag checks of
 * the C API (pprofio_config_validate and pprofio_agent_new in csrc/agent.c),
 * and for what a configuration that passes them turns into on the wire (the
 * batch's Source, with its tags: csrc/batch.c).
 *
 * Input: 80 bytes of numbers (period, CPU window, jitter, memory and spool
 * bounds, three timeouts as int64; profile types and the leak rule as
 * 32-bit), then NUL-separated strings: service name, output dir, ingest URL,
 * API key, CA file, user agent, spool dir, hostname, instance id, then tag
 * keys and values in turn (up to 80 tags).
 *
 * Promises (pprofio.h): validate answers OK or PPROFIO_ERR_INVALID with a
 * message that names a field, twice the same; a configuration it accepts
 * builds an agent (pprofio_agent_new; the folders are left out, so the
 * target touches no disk) and its Source encodes into a batch that decodes
 * back with every tag as it was; a rejected one never builds an agent.
 */
#include <string.h>

#include "../../csrc/batch.h"
#include "../../csrc/gz.h"
#include "../../csrc/ingest.pb-c.h"
#include "fuzz.h"

#define NUMS_LEN 80
#define MAX_STRS 9
#define MAX_TAGS 80

typedef struct {
    char *strs[MAX_STRS + 2 * MAX_TAGS];
    size_t n;
} strings;

static void split(const uint8_t *p, size_t n, strings *out) {
    out->n = 0;
    size_t start = 0;
    for (size_t i = 0; i <= n && out->n < MAX_STRS + 2 * MAX_TAGS; i++) {
        if (i == n || p[i] == 0) {
            if (i == n && start == n && out->n >= MAX_STRS)
                break;
            out->strs[out->n++] = fuzz_cstr(p + start, i - start);
            start = i + 1;
        }
    }
}

static const char *str_or_null(const strings *s, size_t i) { return i < s->n && s->strs[i][0] ? s->strs[i] : NULL; }

static void numbers(const uint8_t *p, pprofio_config *cfg) {
    int64_t v[8];
    int32_t w[4];
    memcpy(v, p, sizeof v);
    memcpy(w, p + sizeof v, sizeof w);
    cfg->period_ns = v[0];
    cfg->cpu_duration_ns = v[1];
    cfg->start_jitter_ns = v[2];
    cfg->max_buffer_bytes = v[3];
    cfg->max_spool_bytes = v[4];
    cfg->connect_timeout_ns = v[5];
    cfg->request_timeout_ns = v[6];
    cfg->stop_timeout_ns = v[7];
    cfg->profile_types = (unsigned)w[0];
    cfg->leak_windows = w[1];
    cfg->leak_min_growth_pct = w[2];
    cfg->leak_min_growth = w[3];
}

/* check_wire encodes a batch from the accepted config's Source and decodes it again. */
static void check_wire(const pprofio_config *cfg) {
    pprofio_source src = cfg->source;
    src.service = cfg->service_name;
    pprofio_event ev;
    pprofio_event_init(&ev, "profile_skipped", 1, "config fuzz");
    char id[33];
    pprofio_batch_id(id);
    pprofio_bytes gz = {0}, raw = {0};
    pprofio_error err = {0};
    fuzz_require(pprofio_batch_encode(&src, id, 1, NULL, 0, &ev, 1, &gz, &err) == PPROFIO_OK);
    fuzz_require(pprofio_gunzip_bytes(gz.p, gz.len, &raw) == PPROFIO_OK);
    Pprofio__Ingest__V1__UploadRequest *r = pprofio__ingest__v1__upload_request__unpack(NULL, raw.len, raw.p);
    fuzz_require(r != NULL && r->source != NULL);
    fuzz_require(strcmp(r->source->service, cfg->service_name) == 0);
    fuzz_require(r->source->n_tags == src.n_tags);
    for (size_t i = 0; i < src.n_tags; i++) {
        /* a map on the wire: the encoder keeps the order, so entry i is tag i */
        fuzz_require(strcmp(r->source->tags[i]->key, src.tag_keys[i]) == 0);
        fuzz_require(strcmp(r->source->tags[i]->value, src.tag_values[i]) == 0);
    }
    pprofio__ingest__v1__upload_request__free_unpacked(r, NULL);
    pprofio_bytes_free(&raw);
    pprofio_bytes_free(&gz);
}

FUZZ_ENTRY(config) {
    if (size < NUMS_LEN)
        return 0;
    pprofio_config cfg;
    memset(&cfg, 0, sizeof cfg);
    numbers(data, &cfg);
    strings s;
    split(data + NUMS_LEN, size - NUMS_LEN, &s);
    const char *empty = "";
    cfg.service_name = str_or_null(&s, 0);
    cfg.output_dir = str_or_null(&s, 1);
    cfg.ingest_url = str_or_null(&s, 2);
    cfg.api_key = str_or_null(&s, 3);
    cfg.ca_file = str_or_null(&s, 4);
    cfg.user_agent = str_or_null(&s, 5);
    cfg.spool_dir = str_or_null(&s, 6);
    cfg.source.hostname = str_or_null(&s, 7);
    cfg.source.instance_id = s.n > 8 ? s.strs[8] : empty;
    const char *keys[MAX_TAGS], *values[MAX_TAGS];
    size_t nt = 0;
    for (size_t i = MAX_STRS; i + 1 < s.n; i += 2, nt++) {
        keys[nt] = s.strs[i];
        values[nt] = s.strs[i + 1];
    }
    cfg.source.tag_keys = keys;
    cfg.source.tag_values = values;
    cfg.source.n_tags = nt;
    cfg.jitter_seed = 1;

    pprofio_error err = {0}, err2 = {0};
    int rc = pprofio_config_validate(&cfg, &err);
    fuzz_require(rc == PPROFIO_OK || rc == PPROFIO_ERR_INVALID);
    fuzz_require(pprofio_config_validate(&cfg, &err2) == rc && strcmp(err.msg, err2.msg) == 0);
    pprofio_config built = cfg;
    built.output_dir = NULL; /* no disk: the checks of the folders are not what is fuzzed here */
    built.spool_dir = NULL;
    pprofio_agent *a = NULL;
    int nrc = pprofio_agent_new(&built, &a, &err2);
    if (rc != PPROFIO_OK) {
        fuzz_require(err.msg[0] && strchr(err.msg, ':') != NULL);
        if (!(cfg.output_dir || cfg.spool_dir)) /* without folders, new runs the same checks */
            fuzz_require(nrc == PPROFIO_ERR_INVALID && a == NULL);
    } else {
        fuzz_require(nrc == PPROFIO_OK && a != NULL);
        check_wire(&cfg);
    }
    pprofio_agent_free(a);
    for (size_t i = 0; i < s.n; i++)
        free(s.strs[i]);
    return 0;
}
