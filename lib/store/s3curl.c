/* SPDX-License-Identifier: MIT */
/*
 * s3curl.c - loads libcurl on the first s3:// store (see s3curl.h for
 * why not at start-up).
 */
#include "util/internal.h"

#include <pthread.h>

#include "store/s3curl.h"
#include "util/dl.h"

/* Sets the function pointer fn to the library's symbol name. */
#define LOAD(lib, soname, fn, name, err) do {				\
		int rc_ = ckpt_dl_sym(lib, soname, "libcurl", name,	\
		    &(fn), err);					\
									\
		if (rc_)						\
			return rc_;					\
	} while (0)

/* The loaded library's version, which may be older than the headers. */
static int
check_version(void *lib, const char *soname, struct ckpt_error *err)
{
	curl_version_info_data *(*info)(CURLversion);
	curl_version_info_data *v;

	LOAD(lib, soname, info, "curl_version_info", err);
	v = info(CURLVERSION_NOW);
	if (!v || v->version_num < CKPT_CURL_MIN)
		return ckpt_error_set(err, CKPT_ERR_IO, NULL, -1,
		    "s3:// stores need libcurl %s or later; %s is %s",
		    CKPT_CURL_MIN_TEXT, soname, v && v->version ? v->version :
		    "of unknown version");
	return CKPT_OK;
}

int
ckpt_curl_load_from(const char *soname, struct ckpt_curl *api,
    struct ckpt_error *err)
{
	void *lib;
	int rc;

	memset(api, 0, sizeof(*api));
	if ((rc = ckpt_dl_open(soname, "s3:// stores need libcurl",
	    "install libcurl4", &lib, err)))
		return rc;
	if ((rc = check_version(lib, soname, err)))
		return rc;
	LOAD(lib, soname, api->global_init, "curl_global_init", err);
	LOAD(lib, soname, api->easy_init, "curl_easy_init", err);
	LOAD(lib, soname, api->easy_setopt, "curl_easy_setopt", err);
	LOAD(lib, soname, api->easy_perform, "curl_easy_perform", err);
	LOAD(lib, soname, api->easy_getinfo, "curl_easy_getinfo", err);
	LOAD(lib, soname, api->easy_reset, "curl_easy_reset", err);
	LOAD(lib, soname, api->easy_cleanup, "curl_easy_cleanup", err);
	LOAD(lib, soname, api->easy_strerror, "curl_easy_strerror", err);
	LOAD(lib, soname, api->slist_append, "curl_slist_append", err);
	LOAD(lib, soname, api->slist_free_all, "curl_slist_free_all", err);
	LOAD(lib, soname, api->getdate, "curl_getdate", err);
	/* Never dlclosed: the table and curl's own state live until exit. */
	return CKPT_OK;
}

static pthread_once_t load_once = PTHREAD_ONCE_INIT;
static struct ckpt_curl loaded;
static struct ckpt_error load_err;
static int load_rc;

static void
load(void)
{
	CURLcode cc;

	ckpt_error_clear(&load_err);
	if ((load_rc = ckpt_curl_load_from(CKPT_CURL_SONAME, &loaded,
	    &load_err)))
		return;
	if ((cc = loaded.global_init(CURL_GLOBAL_DEFAULT)))
		load_rc = ckpt_error_set(&load_err, CKPT_ERR_INTERNAL, NULL,
		    -1, "curl_global_init: %s", loaded.easy_strerror(cc));
}

int
ckpt_curl_load(const struct ckpt_curl **out, struct ckpt_error *err)
{
	pthread_once(&load_once, load);
	if (load_rc) {
		*err = load_err;
		return load_rc;
	}
	*out = &loaded;
	return CKPT_OK;
}
