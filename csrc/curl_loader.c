//go:build ignore

/* curl_loader.c: libcurl opened with dlopen, once, into a table (see curl_loader.h). */
#include "curl_loader.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "pprofio.h"

/* Headers older than 7.85.0 lack the name, not the option (318, a string). */
#if LIBCURL_VERSION_NUM >= 0x075500
#define OPT_PROTOCOLS_STR CURLOPT_PROTOCOLS_STR
#else
#define OPT_PROTOCOLS_STR ((CURLoption)(CURLOPTTYPE_STRINGPOINT + 318))
#endif

#define FN(field, name) {name, offsetof(pprofio_curl, field)}

/* Every function the core calls, by the field that holds it. */
static const struct {
    const char *name;
    size_t off;
} functions[] = {
    FN(global_init, "curl_global_init"),
    FN(easy_strerror, "curl_easy_strerror"),
    FN(easy_init, "curl_easy_init"),
    FN(easy_cleanup, "curl_easy_cleanup"),
    FN(easy_reset, "curl_easy_reset"),
    FN(easy_setopt, "curl_easy_setopt"),
    FN(easy_getinfo, "curl_easy_getinfo"),
    FN(multi_init, "curl_multi_init"),
    FN(multi_cleanup, "curl_multi_cleanup"),
    FN(multi_add_handle, "curl_multi_add_handle"),
    FN(multi_remove_handle, "curl_multi_remove_handle"),
    FN(multi_perform, "curl_multi_perform"),
    FN(multi_poll, "curl_multi_poll"),
    FN(multi_wakeup, "curl_multi_wakeup"),
    FN(multi_info_read, "curl_multi_info_read"),
    FN(slist_append, "curl_slist_append"),
    FN(slist_free_all, "curl_slist_free_all"),
    FN(getdate, "curl_getdate"),
};

int pprofio_curl_version_ok(unsigned version_num) { return version_num >= PPROFIO_CURL_MIN_VERSION; }

/* resolve stores the address of `name` in the table at off (POSIX: a
 * function pointer and a void * have the same representation). */
static int resolve(void *h, const char *name, pprofio_curl *out, size_t off) {
    dlerror();
    void *p = dlsym(h, name);
    if (!p || dlerror())
        return -1;
    memcpy((char *)out + off, &p, sizeof p);
    return 0;
}

/* check_version reads the library's version and refuses one too old. */
static int check_version(void *h, const char *soname, pprofio_curl *out, char *why, size_t n) {
    if (resolve(h, "curl_version_info", out, offsetof(pprofio_curl, version_info)) != 0) {
        snprintf(why, n, "%s is not libcurl (it has no curl_version_info)", soname);
        return PPROFIO_ERR_INVALID;
    }
    const curl_version_info_data *v = out->version_info(CURLVERSION_NOW);
    if (!v) {
        snprintf(why, n, "%s did not say its version", soname);
        return PPROFIO_ERR_INVALID;
    }
    out->version_num = v->version_num;
    snprintf(out->version, sizeof out->version, "%s", v->version ? v->version : "?");
    if (!pprofio_curl_version_ok(v->version_num)) {
        snprintf(why, n, "libcurl %s is too old (%s or newer is needed)", out->version,
                 PPROFIO_CURL_MIN_VERSION_TEXT);
        return PPROFIO_ERR_INVALID;
    }
    return PPROFIO_OK;
}

int pprofio_curl_load(const char *soname, pprofio_curl *out, char *why, size_t n) {
    memset(out, 0, sizeof *out);
    why[0] = '\0';
    void *h = dlopen(soname, RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        const char *e = dlerror();
        snprintf(why, n, "%s could not be loaded (%s)", soname, e ? e : "no reason given");
        return PPROFIO_ERR_IO;
    }
    int rc = check_version(h, soname, out, why, n);
    for (size_t i = 0; rc == PPROFIO_OK && i < sizeof functions / sizeof functions[0]; i++) {
        if (resolve(h, functions[i].name, out, functions[i].off) != 0) {
            snprintf(why, n, "libcurl %s has no %s", out->version, functions[i].name);
            rc = PPROFIO_ERR_INVALID;
        }
    }
    if (rc != PPROFIO_OK) {
        dlclose(h); /* nothing of it is in use */
        memset(out, 0, sizeof *out);
    }
    return rc; /* a loaded library stays open: its functions are in *out */
}

/* ---- once per process ---------------------------------------------------- */

static pthread_once_t once = PTHREAD_ONCE_INIT;
static pprofio_curl loaded;
static const pprofio_curl *loaded_ok;
static char load_why[PPROFIO_CURL_WHY];
static const char *load_soname = PPROFIO_CURL_SONAME;

static void load_once(void) {
    if (pprofio_curl_load(load_soname, &loaded, load_why, sizeof load_why) != PPROFIO_OK)
        return;
    CURLcode rc = loaded.global_init(CURL_GLOBAL_DEFAULT);
    if (rc != CURLE_OK) {
        snprintf(load_why, sizeof load_why, "libcurl %s did not initialise: %s", loaded.version,
                 loaded.easy_strerror(rc));
        return;
    }
    loaded_ok = &loaded;
}

const pprofio_curl *pprofio_curl_get(const char **why) {
    pthread_once(&once, load_once);
    if (why)
        *why = loaded_ok ? NULL : load_why;
    return loaded_ok;
}

void pprofio_curl_use_soname(const char *soname) { load_soname = soname; }

/* ---- typed shims ------------------------------------------------------ */

CURLcode pprofio_curl_setopt_long(const pprofio_curl *k, CURL *c, CURLoption opt, long v) {
    return k->easy_setopt(c, opt, v);
}

CURLcode pprofio_curl_setopt_off(const pprofio_curl *k, CURL *c, CURLoption opt, curl_off_t v) {
    return k->easy_setopt(c, opt, v);
}

CURLcode pprofio_curl_setopt_ptr(const pprofio_curl *k, CURL *c, CURLoption opt, const void *v) {
    return k->easy_setopt(c, opt, v);
}

CURLcode pprofio_curl_setopt_write(const pprofio_curl *k, CURL *c, CURLoption opt, curl_write_callback fn) {
    return k->easy_setopt(c, opt, fn);
}

CURLcode pprofio_curl_getinfo_long(const pprofio_curl *k, CURL *c, CURLINFO info, long *v) {
    return k->easy_getinfo(c, info, v);
}

CURLcode pprofio_curl_getinfo_off(const pprofio_curl *k, CURL *c, CURLINFO info, curl_off_t *v) {
    return k->easy_getinfo(c, info, v);
}

CURLcode pprofio_curl_setopt_protocols(const pprofio_curl *k, CURL *c) {
    if (k->version_num >= PPROFIO_CURL_PROTOCOLS_STR_VERSION)
        return pprofio_curl_setopt_ptr(k, c, OPT_PROTOCOLS_STR, "http,https");
    return pprofio_curl_setopt_long(k, c, CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
}
