//go:build ignore

/*
 * config.c: the checks of pprofio_config that the core itself relies on
 * (a folder name it creates, a timeline it can run, bounds it enforces).
 * Defaults and the user-facing checks are the Go package's (config.go);
 * a failure here names the field in err->field, a pprofio_config_field.
 */
#include <string.h>

#include "batch.h"
#include "errors.h"
#include "pprofio.h"

#define CONFIG_MIN_BYTES (INT64_C(1) << 20)
#define CONFIG_MAX_SERVICE_NAME 128
#define CONFIG_LEAK_MAX_WINDOWS 1000
#define CONFIG_NS_PER_SEC INT64_C(1000000000)
/* Durations past a year are mistakes, and a deadline of now + INT64_MAX would overflow. */
#define CONFIG_MAX_DURATION_NS (INT64_C(366) * 24 * 3600 * CONFIG_NS_PER_SEC)
#define CONFIG_MIN_TIMEOUT_NS INT64_C(1000000) /* libcurl counts in ms, and reads 0 as "no timeout" */
#define CONFIG_SUPPORTED_TYPES                                                                         \
    (PPROFIO_TYPE_BIT(PPROFIO_PROFILE_CPU) | PPROFIO_TYPE_BIT(PPROFIO_PROFILE_HEAP) |                  \
     PPROFIO_TYPE_BIT(PPROFIO_PROFILE_GOROUTINE) | PPROFIO_TYPE_BIT(PPROFIO_PROFILE_MUTEX) |           \
     PPROFIO_TYPE_BIT(PPROFIO_PROFILE_BLOCK))
#define CONFIG_WINDOWED_TYPES                                                                          \
    (PPROFIO_TYPE_BIT(PPROFIO_PROFILE_CPU) | PPROFIO_TYPE_BIT(PPROFIO_PROFILE_MUTEX) |                 \
     PPROFIO_TYPE_BIT(PPROFIO_PROFILE_BLOCK))

static int valid_service_char(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '_' || c == '-';
}

#define CONFIG_FAIL(field, ...) pprofio_set_field_error(err, PPROFIO_ERR_INVALID, field, __VA_ARGS__)

/* check_service: the name becomes a folder under output_dir. */
static int check_service(const char *s, pprofio_error *err) {
    if (!s || !*s)
        return CONFIG_FAIL(PPROFIO_FIELD_SERVICE_NAME, "service_name: required");
    size_t n = strlen(s);
    if (n > CONFIG_MAX_SERVICE_NAME)
        return CONFIG_FAIL(PPROFIO_FIELD_SERVICE_NAME, "service_name: longer than %d bytes", CONFIG_MAX_SERVICE_NAME);
    if (s[0] == '.')
        return CONFIG_FAIL(PPROFIO_FIELD_SERVICE_NAME, "service_name: must not start with '.'");
    for (size_t i = 0; i < n; i++)
        if (!valid_service_char(s[i]))
            return CONFIG_FAIL(PPROFIO_FIELD_SERVICE_NAME,
                               "service_name: only letters, digits, '.', '_' and '-' are allowed");
    return PPROFIO_OK;
}

/* check_timeline: what the scheduler, the memory bound and the leak rule need. */
static int check_timeline(const pprofio_config *cfg, pprofio_error *err) {
    if (cfg->period_ns < CONFIG_NS_PER_SEC || cfg->period_ns > CONFIG_MAX_DURATION_NS)
        return CONFIG_FAIL(PPROFIO_FIELD_PERIOD, "period_ns: must be in [1 s, 366 days]");
    if ((cfg->profile_types & ~CONFIG_SUPPORTED_TYPES) != 0)
        return CONFIG_FAIL(PPROFIO_FIELD_PROFILE_TYPES, "profile_types: unsupported profile type");
    if (cfg->profile_types == 0)
        return CONFIG_FAIL(PPROFIO_FIELD_PROFILE_TYPES, "profile_types: none selected");
    if ((cfg->profile_types & CONFIG_WINDOWED_TYPES) &&
        (cfg->cpu_duration_ns <= 0 || cfg->cpu_duration_ns > cfg->period_ns))
        return CONFIG_FAIL(PPROFIO_FIELD_CPU_DURATION, "cpu_duration_ns: must be in (0, period_ns]");
    if (cfg->start_jitter_ns < 0 || cfg->start_jitter_ns > cfg->period_ns)
        return CONFIG_FAIL(PPROFIO_FIELD_START_JITTER, "start_jitter_ns: must be in [0, period_ns]");
    if (cfg->max_buffer_bytes < CONFIG_MIN_BYTES)
        return CONFIG_FAIL(PPROFIO_FIELD_MAX_BUFFER_BYTES, "max_buffer_bytes: must be at least %lld",
                           (long long)CONFIG_MIN_BYTES);
    if (cfg->leak_windows < 0 || cfg->leak_windows > CONFIG_LEAK_MAX_WINDOWS || cfg->leak_min_growth_pct < 0 ||
        cfg->leak_min_growth < 0)
        return CONFIG_FAIL(PPROFIO_FIELD_LEAK_RULE, "leak rule: windows in [0, %d], growth and percentage >= 0",
                           CONFIG_LEAK_MAX_WINDOWS);
    /* close counts on the stop timeout, uploads or not */
    if (cfg->stop_timeout_ns < 0 || cfg->stop_timeout_ns > CONFIG_MAX_DURATION_NS)
        return CONFIG_FAIL(PPROFIO_FIELD_TIMEOUTS, "stop_timeout_ns: must be in [0, 366 days]");
    if (cfg->output_dir && strlen(cfg->output_dir) > 3072)
        return CONFIG_FAIL(PPROFIO_FIELD_OUTPUT_DIR, "output_dir: path too long");
    return PPROFIO_OK;
}

static int has_text(const char *s) { return s && *s; }

static int is_http_url(const char *url) {
    return strncmp(url, "https://", 8) == 0 || strncmp(url, "http://", 7) == 0;
}

/* header_safe: a value that goes in an HTTP header line. */
static int header_safe(const char *s) { return !s || !strpbrk(s, "\r\n"); }

/* check_ingest: what the client of the ingest service needs. */
static int check_ingest(const pprofio_config *cfg, pprofio_error *err) {
    if (!is_http_url(cfg->ingest_url))
        return CONFIG_FAIL(PPROFIO_FIELD_INGEST_URL, "ingest_url: must be https:// (or http:// to loopback)");
    if (strlen(cfg->ingest_url) > 2048)
        return CONFIG_FAIL(PPROFIO_FIELD_INGEST_URL, "ingest_url: too long");
    if (!header_safe(cfg->api_key))
        return CONFIG_FAIL(PPROFIO_FIELD_API_KEY, "api_key: has a line break");
    return PPROFIO_OK;
}

/* check_pyroscope: what the Pyroscope client needs; the values are never quoted back. */
static int check_pyroscope(const pprofio_config *cfg, pprofio_error *err) {
    if (!is_http_url(cfg->pyroscope_url))
        return CONFIG_FAIL(PPROFIO_FIELD_PYROSCOPE_URL, "pyroscope_url: must be https:// (or http:// to loopback)");
    if (strlen(cfg->pyroscope_url) > 2048)
        return CONFIG_FAIL(PPROFIO_FIELD_PYROSCOPE_URL, "pyroscope_url: too long");
    if (!header_safe(cfg->pyroscope_user) || !header_safe(cfg->pyroscope_password) ||
        !header_safe(cfg->pyroscope_token) || !header_safe(cfg->pyroscope_tenant_id))
        return CONFIG_FAIL(PPROFIO_FIELD_PYROSCOPE_AUTH, "pyroscope credentials: a value has a line break");
    if (has_text(cfg->pyroscope_user) != has_text(cfg->pyroscope_password))
        return CONFIG_FAIL(PPROFIO_FIELD_PYROSCOPE_AUTH, "pyroscope_user and pyroscope_password: set both or neither");
    if (has_text(cfg->pyroscope_user) && strchr(cfg->pyroscope_user, ':'))
        return CONFIG_FAIL(PPROFIO_FIELD_PYROSCOPE_AUTH, "pyroscope_user: must not contain ':'");
    if (has_text(cfg->pyroscope_user) && has_text(cfg->pyroscope_token))
        return CONFIG_FAIL(PPROFIO_FIELD_PYROSCOPE_AUTH, "pyroscope_token: set with pyroscope_user; use one");
    return PPROFIO_OK;
}

/* check_delivery: what the HTTP clients and the spools of either destination need. */
static int check_delivery(const pprofio_config *cfg, pprofio_error *err) {
    int spooling = cfg->spool_dir && *cfg->spool_dir;
    if (cfg->connect_timeout_ns < CONFIG_MIN_TIMEOUT_NS || cfg->request_timeout_ns < CONFIG_MIN_TIMEOUT_NS ||
        cfg->connect_timeout_ns > CONFIG_MAX_DURATION_NS || cfg->request_timeout_ns > CONFIG_MAX_DURATION_NS)
        return CONFIG_FAIL(PPROFIO_FIELD_TIMEOUTS, "timeouts: connect and request must be in [1 ms, 366 days]");
    if (spooling && cfg->max_spool_bytes < CONFIG_MIN_BYTES)
        return CONFIG_FAIL(PPROFIO_FIELD_MAX_SPOOL_BYTES, "max_spool_bytes: must be at least %lld",
                           (long long)CONFIG_MIN_BYTES);
    if (spooling && !pprofio_batch_id_valid(cfg->source.instance_id))
        return CONFIG_FAIL(PPROFIO_FIELD_INSTANCE_ID, "source.instance_id: must be 32 lowercase hex characters");
    return PPROFIO_OK;
}

int pprofio_config_validate(const pprofio_config *cfg, pprofio_error *err) {
    if (!cfg)
        return pprofio_set_error(err, PPROFIO_ERR_INVALID, "config: NULL");
    int rc = check_service(cfg->service_name, err);
    if (rc == PPROFIO_OK)
        rc = check_timeline(cfg, err);
    if (rc == PPROFIO_OK && has_text(cfg->ingest_url))
        rc = check_ingest(cfg, err);
    if (rc == PPROFIO_OK && has_text(cfg->pyroscope_url))
        rc = check_pyroscope(cfg, err);
    if (rc == PPROFIO_OK && (has_text(cfg->ingest_url) || has_text(cfg->pyroscope_url)))
        rc = check_delivery(cfg, err);
    return rc;
}
