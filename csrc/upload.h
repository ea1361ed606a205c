/*
 * upload.h: one HTTPS POST of a batch with libcurl, and what the ingest
 * contract (API.md), or Grafana Pyroscope's push API, says to do with the
 * answer. One easy handle is reused
 * so the connection stays open between batches. libcurl is loaded at run
 * time (curl_loader.h): on a host without it the uploader still exists,
 * says why it is off, and posts nothing. The pure parts (the verdict of a
 * status, Retry-After) are separate functions so tests can pin them down
 * without a network; what to do next is retry.h's.
 */
#ifndef PPROFIO_UPLOAD_H
#define PPROFIO_UPLOAD_H

#include <stddef.h>
#include <stdint.h>

#include "pprofio.h"

typedef enum {
    PPROFIO_UP_DONE = 0,  /* accepted, or accepted before (409) */
    PPROFIO_UP_DROP = 1,  /* 400 or another 4xx: drop the batch and count it */
    PPROFIO_UP_SPLIT = 2, /* 413: split a batch of several profiles */
    PPROFIO_UP_RETRY = 3, /* 429/503 (Retry-After), 5xx, 3xx, network, TLS, timeout */
    PPROFIO_UP_AUTH = 4,  /* 401/403: keep the batch, pause at least 60 s */
    PPROFIO_UP_MISSING = 5 /* Pyroscope's 404/501: no push API there; keep the batch, pause as for 401 */
} pprofio_upload_verdict;

/* The two destinations a batch goes to, each with its own uploader. */
typedef enum { PPROFIO_DEST_INGEST = 0, PPROFIO_DEST_PYROSCOPE = 1 } pprofio_dest_kind;

#define PPROFIO_UPLOAD_DETAIL 1100 /* up to 1 KiB of a response body, and some words */

typedef struct {
    int verdict;
    long status;            /* the HTTP status, 0 when none came */
    int64_t retry_after_ns; /* from Retry-After of a 429 or 503, or -1 */
    int aborted;            /* the caller's deadline cut the request short */
    char detail[PPROFIO_UPLOAD_DETAIL]; /* what went wrong, never a key, password or token */
} pprofio_upload_result;

typedef struct pprofio_uploader pprofio_uploader;

/*
 * pprofio_uploader_new prepares a client for cfg's ingest URL (the base URL;
 * /v1/profiles is appended with one slash between).
 */
int pprofio_uploader_new(const pprofio_config *cfg, pprofio_uploader **out, pprofio_error *err);

/*
 * pprofio_uploader_new_pyroscope prepares a client for cfg's Pyroscope URL:
 * it posts to {pyroscope_url}/push.v1.PusherService/Push (Connect protocol,
 * application/proto, gzip), with HTTP basic auth (pyroscope_user and
 * pyroscope_password) or a bearer token (pyroscope_token), and
 * X-Scope-OrgID when pyroscope_tenant_id is set. Answers are read by
 * pprofio_pyroscope_verdict_of.
 */
int pprofio_uploader_new_pyroscope(const pprofio_config *cfg, pprofio_uploader **out, pprofio_error *err);
void pprofio_uploader_free(pprofio_uploader *u);

/*
 * pprofio_uploader_off is NULL when the uploader can send, or a sentence
 * that says why it cannot (libcurl missing or too old); then every post
 * answers PPROFIO_UP_RETRY without touching the network.
 */
const char *pprofio_uploader_off(const pprofio_uploader *u);

/* pprofio_uploader_url is the endpoint the uploader posts to. */
const char *pprofio_uploader_url(const pprofio_uploader *u);

/*
 * pprofio_uploader_post sends one gzipped batch (an UploadRequest, or a
 * PushRequest for Pyroscope). abort_at_ns
 * (CLOCK_REALTIME Unix ns; 0 = keep what pprofio_uploader_abort_at set)
 * ends the request early, e.g. when Stop's timeout runs out. *bytes_sent counts the body bytes uploaded.
 */
void pprofio_uploader_post(pprofio_uploader *u, const char *batch_id, const void *body, size_t n,
                           int64_t abort_at_ns, pprofio_upload_result *res, uint64_t *bytes_sent);

/*
 * pprofio_uploader_abort_at sets (from any thread) the time at which the
 * request in flight, and any later one, is cut short; 0 clears it.
 */
void pprofio_uploader_abort_at(pprofio_uploader *u, int64_t at_ns);

/* pprofio_upload_verdict_of maps an HTTP status to a verdict (the contract's table). */
int pprofio_upload_verdict_of(long status);

/*
 * pprofio_pyroscope_verdict_of maps a status of Pyroscope's push to a
 * verdict: 2xx done; 401/403 auth; 404/501 missing; 413 split; 429, 408,
 * 5xx and no answer retry; 400 and the other 4xx drop (Pyroscope ingests
 * the valid series of a request and refuses the rest with 400, so sending
 * it again would store them twice).
 */
int pprofio_pyroscope_verdict_of(long status);

/*
 * pprofio_base64 writes the base64 of n bytes of in into out (room for
 * 4 * ((n + 2) / 3) + 1 bytes), NUL-terminated.
 */
void pprofio_base64(const void *in, size_t n, char *out);

/*
 * pprofio_parse_retry_after reads a Retry-After value (delta seconds or an
 * HTTP date) at now_ns and returns the wait in ns, capped at 1 hour, or -1
 * when it does not parse.
 */
int64_t pprofio_parse_retry_after(const char *value, int64_t now_ns);

/* pprofio_ingest_endpoint joins a base URL and /v1/profiles with one slash. */
int pprofio_ingest_endpoint(const char *base, char *out, size_t n);

/* pprofio_pyroscope_endpoint joins a base URL and /push.v1.PusherService/Push with one slash. */
int pprofio_pyroscope_endpoint(const char *base, char *out, size_t n);

#endif
