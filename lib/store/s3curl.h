/* SPDX-License-Identifier: MIT */
/*
 * s3curl.h - libcurl, loaded the first time an s3:// store is opened
 * (through util/dl.h).
 *
 * Only the S3 client speaks HTTP, yet linking libcurl made every command
 * pay for it: the loader mapped and relocated libcurl and the thirty-odd
 * libraries it needs (GnuTLS, LDAP, Kerberos, SSH, ...) before main, about
 * 3 ms of CPU and 5 ms of wall time here, half of `ckpt --version`, and
 * the serial part of every -j run.  git keeps curl out of its commands the
 * same way, in a separate remote helper.  Built against <curl/curl.h>
 * (types and constants), loaded by its soname at run time.
 */
#ifndef CKPT_S3CURL_H
#define CKPT_S3CURL_H

#include <curl/curl.h>
#include <time.h>

#include <ckpt.h>

/* The soname of libcurl's ABI 4, the same since curl 7.16 (2006). */
#ifndef CKPT_CURL_SONAME
#define CKPT_CURL_SONAME "libcurl.so.4"
#endif

/*
 * The oldest libcurl the S3 client works with: CURLOPT_PROTOCOLS_STR
 * came in 7.85.0 (CURLOPT_AWS_SIGV4 in 7.75.0).  Checked when built and
 * again when loaded, as the library found at run time may be older than
 * the headers.
 */
#define CKPT_CURL_MIN 0x075500
#define CKPT_CURL_MIN_TEXT "7.85.0"
#if LIBCURL_VERSION_NUM < CKPT_CURL_MIN
#error "libcurl 7.85.0 or later is needed (CURLOPT_PROTOCOLS_STR)"
#endif

/*
 * The libcurl functions the S3 client calls, with their own types.
 * Through these pointers a call misses curl's compile-time checks of
 * curl_easy_setopt's argument (typecheck-gcc.h): a long option takes a
 * long (1L, not 1), a _LARGE one a curl_off_t, a callback its exact type.
 */
struct ckpt_curl {
	CURLcode (*global_init)(long flags);
	CURL *(*easy_init)(void);
	CURLcode (*easy_setopt)(CURL *h, CURLoption opt, ...);
	CURLcode (*easy_perform)(CURL *h);
	CURLcode (*easy_getinfo)(CURL *h, CURLINFO info, ...);
	void (*easy_reset)(CURL *h);
	void (*easy_cleanup)(CURL *h);
	const char *(*easy_strerror)(CURLcode cc);
	struct curl_slist *(*slist_append)(struct curl_slist *l,
	    const char *s);
	void (*slist_free_all)(struct curl_slist *l);
	time_t (*getdate)(const char *s, const time_t *unused);
};

/*
 * Loads libcurl (CKPT_CURL_SONAME) once per process and initialises it
 * (curl_global_init); *out gets its functions, valid until exit.  Thread-
 * safe.  CKPT_ERR_IO when it is not installed, lacks a function or is
 * older than CKPT_CURL_MIN (err names the library and says why: the
 * machine, not the request, is at fault), CKPT_ERR_INTERNAL when
 * curl_global_init fails.  A failure is remembered: every later call
 * returns it again.
 */
int ckpt_curl_load(const struct ckpt_curl **out, struct ckpt_error *err);

/*
 * The work of ckpt_curl_load for the library soname, without the once
 * and without curl_global_init, into *api: for the tests.  The library
 * stays loaded.
 */
int ckpt_curl_load_from(const char *soname, struct ckpt_curl *api,
    struct ckpt_error *err);

#endif
