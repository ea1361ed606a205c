//go:build ignore

/* upload.c: the HTTPS client of the ingest contract (see upload.h). */
#include "upload.h"

#include <ctype.h>
#include <stdatomic.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "alloc.h"
#include "clock.h"
#include "curl_loader.h"
#include "errors.h"

#define BODY_CAP 1024
#define MAX_RETRY_AFTER_NS (INT64_C(3600) * PPROFIO_NS_PER_SEC)

struct pprofio_uploader {
    const pprofio_curl *k; /* libcurl's functions; NULL: uploads are off */
    const char *off;       /* why they are off */
    CURLM *multi; /* drives the transfer so a deadline can cut it short */
    CURL *curl;
    int kind;     /* pprofio_dest_kind */
    char *url;
    char *auth_header;   /* NULL: none (a Pyroscope without auth) */
    char *tenant_header; /* X-Scope-OrgID, or NULL */
    char *user_agent;
    char *ca_file;
    long connect_timeout_ms, timeout_ms;
    /* per request */
    char body[BODY_CAP + 1];
    size_t body_len;
    char retry_after[128];
    _Atomic int64_t abort_at_ns; /* 0: none; set by another thread too */
    char errbuf[CURL_ERROR_SIZE];
};

/* ---- pure parts ------------------------------------------------------- */

int pprofio_upload_verdict_of(long status) {
    switch (status) {
    case 200: case 201: case 202: case 204: case 409:
        return PPROFIO_UP_DONE;
    case 401: case 403:
        return PPROFIO_UP_AUTH;
    case 413:
        return PPROFIO_UP_SPLIT;
    case 429: case 503:
        return PPROFIO_UP_RETRY;
    }
    if (status >= 400 && status < 500)
        return PPROFIO_UP_DROP;
    /* other 5xx, 3xx, any other 2xx or 1xx we cannot trust, no status at all */
    if (status >= 200 && status < 300)
        return PPROFIO_UP_DONE;
    return PPROFIO_UP_RETRY;
}

int64_t pprofio_parse_retry_after(const char *value, int64_t now_ns) {
    while (value && isspace((unsigned char)*value))
        value++;
    if (!value || !*value)
        return -1;
    if (isdigit((unsigned char)*value)) {
        char *end;
        unsigned long long secs = strtoull(value, &end, 10);
        while (isspace((unsigned char)*end))
            end++;
        if (*end)
            return -1;
        if (secs > 3600)
            return MAX_RETRY_AFTER_NS;
        return (int64_t)secs * PPROFIO_NS_PER_SEC;
    }
    const pprofio_curl *k = pprofio_curl_get(NULL);
    time_t at = k ? k->getdate(value, NULL) : -1; /* RFC 1123 and the older HTTP forms */
    if (at < 0)
        return -1;
    /* In whole seconds first: a date centuries ahead would overflow as ns. */
    int64_t ahead = (int64_t)at - now_ns / PPROFIO_NS_PER_SEC;
    if (ahead > 3601)
        return MAX_RETRY_AFTER_NS;
    if (ahead < -1)
        return 0;
    int64_t wait = ahead * PPROFIO_NS_PER_SEC - now_ns % PPROFIO_NS_PER_SEC;
    if (wait < 0)
        return 0;
    return wait > MAX_RETRY_AFTER_NS ? MAX_RETRY_AFTER_NS : wait;
}

static int join_endpoint(const char *base, const char *path, char *out, size_t n) {
    size_t len = strlen(base);
    while (len > 0 && base[len - 1] == '/')
        len--;
    int w = snprintf(out, n, "%.*s%s", (int)len, base, path);
    return (w < 0 || (size_t)w >= n) ? PPROFIO_ERR_INVALID : PPROFIO_OK;
}

int pprofio_ingest_endpoint(const char *base, char *out, size_t n) { return join_endpoint(base, "/v1/profiles", out, n); }

int pprofio_pyroscope_endpoint(const char *base, char *out, size_t n) {
    return join_endpoint(base, "/push.v1.PusherService/Push", out, n);
}

int pprofio_pyroscope_verdict_of(long status) {
    if (status >= 200 && status < 300)
        return PPROFIO_UP_DONE;
    switch (status) {
    case 401: case 403:
        return PPROFIO_UP_AUTH;
    case 404: case 501:
        return PPROFIO_UP_MISSING;
    case 413:
        return PPROFIO_UP_SPLIT;
    case 408: case 429:
        return PPROFIO_UP_RETRY;
    }
    if (status >= 400 && status < 500)
        return PPROFIO_UP_DROP;
    return PPROFIO_UP_RETRY; /* 5xx, 3xx, 1xx, no status */
}

void pprofio_base64(const void *in, size_t n, char *out) {
    static const char digits[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    const unsigned char *p = in;
    size_t o = 0;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16;
        if (i + 1 < n)
            v |= (uint32_t)p[i + 1] << 8;
        if (i + 2 < n)
            v |= p[i + 2];
        out[o++] = digits[(v >> 18) & 63];
        out[o++] = digits[(v >> 12) & 63];
        out[o++] = i + 1 < n ? digits[(v >> 6) & 63] : '=';
        out[o++] = i + 2 < n ? digits[v & 63] : '=';
    }
    out[o] = '\0';
}

/* ---- the client ------------------------------------------------------- */

static char *dup_or_null(const char *s) { return s && *s ? pprofio_strdup(s) : NULL; }

/* wipe_free zeroes a string that holds a secret, then frees it. */
static void wipe_free(char *s) {
    if (!s)
        return;
    memset(s, 0, strlen(s));
    pprofio_free(s);
}

/* uploader_base makes an uploader with what both destinations share; url_n bytes for the URL. */
static pprofio_uploader *uploader_base(const pprofio_config *cfg, int kind, size_t url_n) {
    pprofio_uploader *u = pprofio_calloc(1, sizeof *u);
    if (!u)
        return NULL;
    u->kind = kind;
    u->k = pprofio_curl_get(&u->off); /* without libcurl the uploader exists, off */
    u->url = pprofio_malloc(url_n);
    u->user_agent = dup_or_null(cfg->user_agent);
    u->ca_file = dup_or_null(cfg->ca_file);
    if (u->k) {
        u->curl = u->k->easy_init();
        u->multi = u->k->multi_init();
    }
    if (!u->url || (u->k && (!u->multi || !u->curl)) || (cfg->user_agent && *cfg->user_agent && !u->user_agent) ||
        (cfg->ca_file && *cfg->ca_file && !u->ca_file)) {
        pprofio_uploader_free(u);
        return NULL;
    }
    u->connect_timeout_ms = (long)(cfg->connect_timeout_ns / 1000000);
    u->timeout_ms = (long)(cfg->request_timeout_ns / 1000000);
    return u;
}

int pprofio_uploader_new(const pprofio_config *cfg, pprofio_uploader **out, pprofio_error *err) {
    *out = NULL;
    if (!cfg->ingest_url || !*cfg->ingest_url)
        return pprofio_set_error(err, PPROFIO_ERR_INVALID, "ingest_url: required for uploads");
    size_t url_n = strlen(cfg->ingest_url) + 16;
    size_t auth_n = strlen(cfg->api_key ? cfg->api_key : "") + 32;
    pprofio_uploader *u = uploader_base(cfg, PPROFIO_DEST_INGEST, url_n);
    if (u && !(u->auth_header = pprofio_malloc(auth_n))) {
        pprofio_uploader_free(u);
        u = NULL;
    }
    if (!u)
        return pprofio_set_error(err, PPROFIO_ERR_NOMEM, "upload: out of memory");
    pprofio_ingest_endpoint(cfg->ingest_url, u->url, url_n);
    snprintf(u->auth_header, auth_n, "Authorization: Bearer %s", cfg->api_key ? cfg->api_key : "");
    *out = u;
    return PPROFIO_OK;
}

/* pyroscope_auth makes the Authorization line: basic (user, password), bearer (token), or none (NULL, ok). */
static int pyroscope_auth(const pprofio_config *cfg, char **line) {
    *line = NULL;
    const char *user = cfg->pyroscope_user, *pass = cfg->pyroscope_password, *tok = cfg->pyroscope_token;
    if (user && *user) {
        size_t n = strlen(user) + 1 + strlen(pass ? pass : "");
        char *plain = pprofio_malloc(n + 1);
        *line = pprofio_malloc(4 * ((n + 2) / 3) + 32);
        int ok = plain && *line;
        if (ok) {
            snprintf(plain, n + 1, "%s:%s", user, pass ? pass : "");
            strcpy(*line, "Authorization: Basic ");
            pprofio_base64(plain, n, *line + strlen(*line));
            wipe_free(plain);
        } else {
            pprofio_free(plain); /* nothing written in either yet */
            pprofio_free(*line);
            *line = NULL;
        }
        return ok ? PPROFIO_OK : PPROFIO_ERR_NOMEM;
    }
    if (tok && *tok) {
        size_t n = strlen(tok) + 32;
        if (!(*line = pprofio_malloc(n)))
            return PPROFIO_ERR_NOMEM;
        snprintf(*line, n, "Authorization: Bearer %s", tok);
    }
    return PPROFIO_OK;
}

int pprofio_uploader_new_pyroscope(const pprofio_config *cfg, pprofio_uploader **out, pprofio_error *err) {
    *out = NULL;
    if (!cfg->pyroscope_url || !*cfg->pyroscope_url)
        return pprofio_set_error(err, PPROFIO_ERR_INVALID, "pyroscope_url: required for Pyroscope");
    size_t url_n = strlen(cfg->pyroscope_url) + 32;
    pprofio_uploader *u = uploader_base(cfg, PPROFIO_DEST_PYROSCOPE, url_n);
    int rc = u ? pyroscope_auth(cfg, &u->auth_header) : PPROFIO_ERR_NOMEM;
    const char *tenant = cfg->pyroscope_tenant_id;
    if (rc == PPROFIO_OK && tenant && *tenant) {
        size_t n = strlen(tenant) + 32;
        if ((u->tenant_header = pprofio_malloc(n)) != NULL)
            snprintf(u->tenant_header, n, "X-Scope-OrgID: %s", tenant);
        else
            rc = PPROFIO_ERR_NOMEM;
    }
    if (rc != PPROFIO_OK) {
        pprofio_uploader_free(u);
        return pprofio_set_error(err, PPROFIO_ERR_NOMEM, "upload: out of memory");
    }
    pprofio_pyroscope_endpoint(cfg->pyroscope_url, u->url, url_n);
    *out = u;
    return PPROFIO_OK;
}

void pprofio_uploader_free(pprofio_uploader *u) {
    if (!u)
        return;
    if (u->curl)
        u->k->easy_cleanup(u->curl);
    if (u->multi)
        u->k->multi_cleanup(u->multi);
    wipe_free(u->auth_header); /* the credentials do not outlive the uploader in memory */
    pprofio_free(u->tenant_header);
    pprofio_free(u->url);
    pprofio_free(u->user_agent);
    pprofio_free(u->ca_file);
    pprofio_free(u);
}

const char *pprofio_uploader_url(const pprofio_uploader *u) { return u->url; }

const char *pprofio_uploader_off(const pprofio_uploader *u) { return u->k ? NULL : u->off; }

static size_t on_body(char *p, size_t size, size_t n, void *ctx) {
    pprofio_uploader *u = ctx;
    size_t len = size * n;
    size_t room = BODY_CAP - u->body_len;
    size_t take = len < room ? len : room;
    memcpy(u->body + u->body_len, p, take);
    u->body_len += take;
    return len; /* the rest is read and discarded */
}

static size_t on_header(char *p, size_t size, size_t n, void *ctx) {
    pprofio_uploader *u = ctx;
    size_t len = size * n;
    static const char name[] = "retry-after:";
    if (len > sizeof name - 1 && strncasecmp(p, name, sizeof name - 1) == 0) {
        size_t v = len - (sizeof name - 1);
        if (v >= sizeof u->retry_after)
            v = sizeof u->retry_after - 1;
        memcpy(u->retry_after, p + sizeof name - 1, v);
        u->retry_after[v] = '\0';
        char *end = u->retry_after + strlen(u->retry_after);
        while (end > u->retry_after && isspace((unsigned char)end[-1]))
            *--end = '\0';
    }
    return len;
}

static int64_t now_ns(void) { return pprofio_clock_system()->now_ns(pprofio_clock_system()); }

void pprofio_uploader_abort_at(pprofio_uploader *u, int64_t at_ns) {
    atomic_store(&u->abort_at_ns, at_ns);
    if (u->multi)
        u->k->multi_wakeup(u->multi);
}

/* perform runs the transfer, checking the deadline every 50 ms. */
static CURLcode perform(pprofio_uploader *u, int *aborted) {
    const pprofio_curl *k = u->k;
    CURLMcode mc = k->multi_add_handle(u->multi, u->curl);
    if (mc != CURLM_OK)
        return CURLE_OUT_OF_MEMORY;
    CURLcode rc = CURLE_OK;
    int running = 1;
    while (running) {
        mc = k->multi_perform(u->multi, &running);
        if (mc != CURLM_OK) {
            rc = CURLE_SEND_ERROR;
            break;
        }
        if (!running)
            break;
        int64_t at = atomic_load(&u->abort_at_ns);
        if (at != 0 && now_ns() >= at) {
            *aborted = 1;
            rc = CURLE_ABORTED_BY_CALLBACK;
            break;
        }
        k->multi_poll(u->multi, NULL, 0, 50, NULL);
    }
    if (!*aborted && mc == CURLM_OK) {
        int left;
        CURLMsg *msg;
        while ((msg = k->multi_info_read(u->multi, &left)) != NULL)
            if (msg->msg == CURLMSG_DONE)
                rc = msg->data.result;
    }
    k->multi_remove_handle(u->multi, u->curl);
    return rc;
}

/* printable copies a response body into dst with control bytes replaced. */
static void printable(char *dst, size_t n, const char *src, size_t len) {
    size_t i = 0;
    for (; i < len && i + 1 < n; i++)
        dst[i] = (src[i] >= 0x20 && src[i] < 0x7f) ? src[i] : '.';
    dst[i] = '\0';
}

/* request_headers lists the request's header lines; NULL when out of memory. */
static struct curl_slist *request_headers(const pprofio_uploader *u, const char *batch_id) {
    const pprofio_curl *k = u->k;
    char idem[64];
    snprintf(idem, sizeof idem, "Idempotency-Key: %s", batch_id);
    const char *ingest[] = {u->auth_header, "Content-Type: application/x-protobuf", "Content-Encoding: gzip", idem,
                            "Expect:"};
    const char *pyro[] = {u->auth_header, u->tenant_header, "Content-Type: application/proto",
                          "Content-Encoding: gzip", "Connect-Protocol-Version: 1", "Expect:"};
    const char **lines = u->kind == PPROFIO_DEST_PYROSCOPE ? pyro : ingest;
    size_t n = u->kind == PPROFIO_DEST_PYROSCOPE ? sizeof pyro / sizeof pyro[0] : sizeof ingest / sizeof ingest[0];
    struct curl_slist *h = NULL, *t;
    for (size_t i = 0; i < n; i++) {
        if (!lines[i]) /* no auth or no tenant */
            continue;
        if (!(t = k->slist_append(h, lines[i]))) {
            k->slist_free_all(h);
            return NULL;
        }
        h = t;
    }
    return h;
}

/* set_options prepares the easy handle for one POST of body. */
static void set_options(pprofio_uploader *u, const void *body, size_t n, struct curl_slist *h) {
    const pprofio_curl *k = u->k;
    CURL *c = u->curl;
    k->easy_reset(c); /* keeps the connection cache */
    pprofio_curl_setopt_ptr(k, c, CURLOPT_URL, u->url);
    pprofio_curl_setopt_long(k, c, CURLOPT_NOSIGNAL, 1L);
    pprofio_curl_setopt_long(k, c, CURLOPT_POST, 1L);
    pprofio_curl_setopt_ptr(k, c, CURLOPT_POSTFIELDS, body);
    pprofio_curl_setopt_off(k, c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)n);
    pprofio_curl_setopt_ptr(k, c, CURLOPT_HTTPHEADER, h);
    if (u->user_agent)
        pprofio_curl_setopt_ptr(k, c, CURLOPT_USERAGENT, u->user_agent);
    pprofio_curl_setopt_long(k, c, CURLOPT_FOLLOWLOCATION, 0L);
    pprofio_curl_setopt_protocols(k, c);
    pprofio_curl_setopt_long(k, c, CURLOPT_SSL_VERIFYPEER, 1L);
    pprofio_curl_setopt_long(k, c, CURLOPT_SSL_VERIFYHOST, 2L);
    if (u->ca_file)
        pprofio_curl_setopt_ptr(k, c, CURLOPT_CAINFO, u->ca_file);
    pprofio_curl_setopt_long(k, c, CURLOPT_CONNECTTIMEOUT_MS, u->connect_timeout_ms);
    pprofio_curl_setopt_long(k, c, CURLOPT_TIMEOUT_MS, u->timeout_ms);
    pprofio_curl_setopt_write(k, c, CURLOPT_WRITEFUNCTION, on_body);
    pprofio_curl_setopt_ptr(k, c, CURLOPT_WRITEDATA, u);
    pprofio_curl_setopt_write(k, c, CURLOPT_HEADERFUNCTION, on_header);
    pprofio_curl_setopt_ptr(k, c, CURLOPT_HEADERDATA, u);
    pprofio_curl_setopt_ptr(k, c, CURLOPT_ERRORBUFFER, u->errbuf);
}

/* read_answer turns the transfer's outcome into res. */
static void read_answer(pprofio_uploader *u, CURLcode rc, int aborted, pprofio_upload_result *res) {
    const pprofio_curl *k = u->k;
    if (rc != CURLE_OK) {
        res->verdict = PPROFIO_UP_RETRY;
        res->aborted = aborted;
        if (aborted)
            snprintf(res->detail, sizeof res->detail, "cut short: the stop timeout ran out");
        else
            snprintf(res->detail, sizeof res->detail, "%s%s%s", k->easy_strerror(rc), u->errbuf[0] ? ": " : "",
                     u->errbuf);
        return;
    }
    pprofio_curl_getinfo_long(k, u->curl, CURLINFO_RESPONSE_CODE, &res->status);
    res->verdict = u->kind == PPROFIO_DEST_PYROSCOPE ? pprofio_pyroscope_verdict_of(res->status)
                                                     : pprofio_upload_verdict_of(res->status);
    /* API.md: Retry-After is for 429 and 503; other answers back off whatever they say. */
    if (u->retry_after[0] && (res->status == 429 || res->status == 503))
        res->retry_after_ns = pprofio_parse_retry_after(u->retry_after, now_ns());
    char text[BODY_CAP + 1];
    printable(text, sizeof text, u->body, u->body_len);
    snprintf(res->detail, sizeof res->detail, "HTTP %ld%s%s", res->status, text[0] ? ": " : "", text);
}

void pprofio_uploader_post(pprofio_uploader *u, const char *batch_id, const void *body, size_t n,
                           int64_t abort_at_ns, pprofio_upload_result *res, uint64_t *bytes_sent) {
    memset(res, 0, sizeof *res);
    res->retry_after_ns = -1;
    u->body_len = 0;
    u->retry_after[0] = '\0';
    u->errbuf[0] = '\0';
    if (abort_at_ns != 0)
        atomic_store(&u->abort_at_ns, abort_at_ns);
    if (bytes_sent)
        *bytes_sent = 0;
    const pprofio_curl *k = u->k;
    if (!k) {
        res->verdict = PPROFIO_UP_RETRY;
        snprintf(res->detail, sizeof res->detail, "uploads are off: %s", u->off);
        return;
    }
    struct curl_slist *h = request_headers(u, batch_id);
    if (!h) {
        res->verdict = PPROFIO_UP_RETRY;
        snprintf(res->detail, sizeof res->detail, "out of memory");
        return;
    }
    set_options(u, body, n, h);
    int aborted = 0;
    CURLcode rc = perform(u, &aborted);
    k->slist_free_all(h);
    curl_off_t up = 0;
    pprofio_curl_getinfo_off(k, u->curl, CURLINFO_SIZE_UPLOAD_T, &up);
    if (bytes_sent)
        *bytes_sent = (uint64_t)up;
    read_answer(u, rc, aborted, res);
}
