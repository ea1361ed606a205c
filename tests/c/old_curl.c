/*
 * old_curl.c: a shared library that answers curl_version_info as libcurl
 * 7.58.0 (Ubuntu 18.04's) does, and has nothing else. ctest.mk builds it
 * into build/ctest/libcurl-7.58.so for test_curl_loader.c: a libcurl too
 * old for the core must be refused by its version, before any function
 * is looked for.
 */
#include <curl/curl.h>

static curl_version_info_data old = {
    .age = CURLVERSION_FOURTH,
    .version = "7.58.0",
    .version_num = 0x073a00,
    .host = "x86_64-pc-linux-gnu",
};

curl_version_info_data *curl_version_info(CURLversion v) {
    (void)v;
    return &old;
}
