/* SPDX-License-Identifier: MIT */
/*
 * libarchive.c - loads libarchive when a bundle or a deflated zip member
 * first needs it (see libarchive.h for why not at start-up).
 */
#include "util/internal.h"

#include <pthread.h>
#include <stddef.h>

#include "util/dl.h"
#include "util/libarchive.h"

/* Each member of struct ckpt_la and the symbol it takes. */
#define FN(m) { "archive_" #m, offsetof(struct ckpt_la, m) }

static const struct {
	const char *name;
	size_t off;
} functions[] = {
	FN(read_new), FN(read_support_filter_gzip),
	FN(read_support_filter_zstd), FN(read_support_format_raw),
	FN(read_support_format_tar), FN(read_open_fd), FN(read_open_memory),
	FN(read_next_header), FN(read_header_position), FN(read_data),
	FN(read_data_block), FN(read_free),
	FN(write_new), FN(write_set_format_pax_restricted),
	FN(write_add_filter_gzip), FN(write_add_filter_zstd),
	FN(write_add_filter_none), FN(write_set_filter_option),
	FN(write_set_bytes_per_block), FN(write_set_bytes_in_last_block),
	FN(write_open), FN(write_header), FN(write_data), FN(write_close),
	FN(write_free),
	FN(error_string), FN(set_error), FN(filter_bytes),
	FN(entry_new), FN(entry_free), FN(entry_pathname),
	FN(entry_set_pathname), FN(entry_filetype), FN(entry_set_filetype),
	FN(entry_set_perm), FN(entry_size), FN(entry_size_is_set),
	FN(entry_set_size), FN(entry_set_mtime), FN(entry_hardlink),
	FN(entry_symlink), FN(entry_sparse_count),
};

/* Every member is a function pointer, and every one is in the table. */
_Static_assert(sizeof(struct ckpt_la) ==
    CKPT_ARRAY_SIZE(functions) * sizeof(void (*)(void)),
    "struct ckpt_la and its table of symbols differ");

int
ckpt_la_load_from(const char *soname, struct ckpt_la *api,
    struct ckpt_error *err)
{
	void *lib;
	int rc;

	memset(api, 0, sizeof(*api));
	if ((rc = ckpt_dl_open(soname, "bundles and deflated zip members "
	    "need libarchive", "install libarchive13", &lib, err)))
		return rc;
	for (size_t i = 0; i < CKPT_ARRAY_SIZE(functions); i++)
		if ((rc = ckpt_dl_sym(lib, soname, "libarchive",
		    functions[i].name, (char *)api + functions[i].off, err)))
			return rc;
	/* Never dlclosed: the table lives until exit. */
	return CKPT_OK;
}

static pthread_once_t load_once = PTHREAD_ONCE_INIT;
static struct ckpt_la loaded;
static struct ckpt_error load_err;
static int load_rc;

static void
load(void)
{
	ckpt_error_clear(&load_err);
	load_rc = ckpt_la_load_from(CKPT_LIBARCHIVE_SONAME, &loaded,
	    &load_err);
}

int
ckpt_la_load(const struct ckpt_la **out, struct ckpt_error *err)
{
	pthread_once(&load_once, load);
	if (load_rc) {
		if (err)
			*err = load_err;
		return load_rc;
	}
	*out = &loaded;
	return CKPT_OK;
}
