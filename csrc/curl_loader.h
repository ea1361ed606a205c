/*
 * curl_loader.h: libcurl, loaded at run time.
 *
 * A program that links pprofio must start on any host, with or without
 * libcurl. Linking libcurl would put libcurl.so.4 and a dozen TLS, IDN and
 * Kerberos libraries in the program's list of needed libraries, and the
 * dynamic loader refuses to start a program when one is missing. So the
 * core never links libcurl: the first upload destination to need it opens
 * the versioned soname libcurl.so.4 with dlopen, checks its version, and
 * resolves every function the core uses, once for the process, into one
 * table. When any step fails the table is NULL and one sentence says why;
 * uploads are then off and everything else keeps working.
 *
 * curl/curl.h is used only for types and constants, at build time.
 * curl_easy_setopt and curl_easy_getinfo are variadic: the typed shims
 * below are the only way the core calls them, so each option gets exactly
 * the type libcurl reads (a long, not an int; a curl_off_t; a pointer).
 */
#ifndef PPROFIO_CURL_LOADER_H
#define PPROFIO_CURL_LOADER_H

#include <stddef.h>
#include <time.h>

/* CURLOPT_PROTOCOLS is deprecated since 7.85.0 but is the only way for 7.68 to 7.84. */
#ifndef CURL_DISABLE_DEPRECATION
#define CURL_DISABLE_DEPRECATION
#endif
#include <curl/curl.h>

/* The soname of libcurl's ABI 4 (every libcurl since 7.16, all its TLS flavours). */
#define PPROFIO_CURL_SONAME "libcurl.so.4"
/* 7.68.0: the oldest libcurl with every function used (curl_multi_wakeup). */
#define PPROFIO_CURL_MIN_VERSION 0x074400
#define PPROFIO_CURL_MIN_VERSION_TEXT "7.68.0"
/* 7.85.0: CURLOPT_PROTOCOLS_STR; older libcurl gets CURLOPT_PROTOCOLS. */
#define PPROFIO_CURL_PROTOCOLS_STR_VERSION 0x075500

/* The functions the core uses, resolved from the loaded library. */
typedef struct {
    unsigned version_num; /* the loaded library's, e.g. 0x075801 for 7.88.1 */
    char version[32];
    curl_version_info_data *(*version_info)(CURLversion);
    CURLcode (*global_init)(long flags);
    const char *(*easy_strerror)(CURLcode);
    CURL *(*easy_init)(void);
    void (*easy_cleanup)(CURL *);
    void (*easy_reset)(CURL *);
    CURLcode (*easy_setopt)(CURL *, CURLoption, ...);  /* through the shims only */
    CURLcode (*easy_getinfo)(CURL *, CURLINFO, ...);   /* through the shims only */
    CURLM *(*multi_init)(void);
    CURLMcode (*multi_cleanup)(CURLM *);
    CURLMcode (*multi_add_handle)(CURLM *, CURL *);
    CURLMcode (*multi_remove_handle)(CURLM *, CURL *);
    CURLMcode (*multi_perform)(CURLM *, int *);
    CURLMcode (*multi_poll)(CURLM *, struct curl_waitfd[], unsigned int, int, int *);
    CURLMcode (*multi_wakeup)(CURLM *);
    CURLMsg *(*multi_info_read)(CURLM *, int *);
    struct curl_slist *(*slist_append)(struct curl_slist *, const char *);
    void (*slist_free_all)(struct curl_slist *);
    time_t (*getdate)(const char *, const time_t *);
} pprofio_curl;

#define PPROFIO_CURL_WHY 256

/*
 * pprofio_curl_get loads libcurl.so.4 and runs curl_global_init, the first
 * time it is called in the process (any thread), and returns the table; or
 * NULL with *why (when why is not NULL) set to a sentence that says what is
 * missing. Later calls return the same answer. The library is never closed.
 */
const pprofio_curl *pprofio_curl_get(const char **why);

/*
 * pprofio_curl_use_soname makes pprofio_curl_get open soname instead of
 * libcurl.so.4. It has an effect only before the first pprofio_curl_get of
 * the process (tests load a missing library this way).
 */
void pprofio_curl_use_soname(const char *soname);

/*
 * pprofio_curl_load opens soname (a name the dynamic loader looks up, or a
 * path), checks its version and fills *out; PPROFIO_OK, or an error with
 * the reason in why[n]. It does not call curl_global_init. Tests use it to
 * load a library that is missing or too old; the core uses pprofio_curl_get.
 */
int pprofio_curl_load(const char *soname, pprofio_curl *out, char *why, size_t n);

/* pprofio_curl_version_ok says whether a libcurl version_num is new enough. */
int pprofio_curl_version_ok(unsigned version_num);

/* The typed shims of curl_easy_setopt: one per argument type libcurl reads. */
CURLcode pprofio_curl_setopt_long(const pprofio_curl *k, CURL *c, CURLoption opt, long v);
CURLcode pprofio_curl_setopt_off(const pprofio_curl *k, CURL *c, CURLoption opt, curl_off_t v);
CURLcode pprofio_curl_setopt_ptr(const pprofio_curl *k, CURL *c, CURLoption opt, const void *v);
CURLcode pprofio_curl_setopt_write(const pprofio_curl *k, CURL *c, CURLoption opt, curl_write_callback fn);

/* The typed shims of curl_easy_getinfo. */
CURLcode pprofio_curl_getinfo_long(const pprofio_curl *k, CURL *c, CURLINFO info, long *v);
CURLcode pprofio_curl_getinfo_off(const pprofio_curl *k, CURL *c, CURLINFO info, curl_off_t *v);

/*
 * pprofio_curl_setopt_protocols limits a transfer to http and https with
 * the option the loaded version has (CURLOPT_PROTOCOLS_STR from 7.85.0).
 */
CURLcode pprofio_curl_setopt_protocols(const pprofio_curl *k, CURL *c);

#endif
