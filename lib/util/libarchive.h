/* SPDX-License-Identifier: MIT */
/*
 * libarchive.h - libarchive, loaded the first time a bundle is written or
 * read (store/bundle.c) or a deflated zip member inflated (format/zip.c).
 *
 * Linked, it made every command map it and the eleven libraries it needs
 * (libxml2, ICU, libstdc++, nettle, the compressors) before main: 1.3 ms
 * of the 2.7 ms a program linking ckpt's libraries takes to start and
 * exit here, for every `ckpt ls` or `ckpt latest` of a job script.
 * Built against <archive.h> (types and constants), loaded by its soname
 * at run time (util/dl.h).
 */
#ifndef CKPT_LIBARCHIVE_H
#define CKPT_LIBARCHIVE_H

#include <archive.h>
#include <archive_entry.h>
#include <time.h>

#include "util/internal.h"

/* The soname of libarchive's ABI 13, the same since libarchive 3.0. */
#ifndef CKPT_LIBARCHIVE_SONAME
#define CKPT_LIBARCHIVE_SONAME "libarchive.so.13"
#endif

/*
 * The libarchive functions ckpt calls, named without "archive_", with
 * their own types.  A call through them misses the compiler's format
 * check of archive_set_error: its format is the caller's to get right.
 */
struct ckpt_la {
	/* Reading */
	struct archive *(*read_new)(void);
	int (*read_support_filter_gzip)(struct archive *a);
	int (*read_support_filter_zstd)(struct archive *a);
	int (*read_support_format_raw)(struct archive *a);
	int (*read_support_format_tar)(struct archive *a);
	int (*read_open_fd)(struct archive *a, int fd, size_t block);
	int (*read_open_memory)(struct archive *a, const void *buf,
	    size_t len);
	int (*read_next_header)(struct archive *a,
	    struct archive_entry **e);
	la_int64_t (*read_header_position)(struct archive *a);
	la_ssize_t (*read_data)(struct archive *a, void *buf, size_t len);
	int (*read_data_block)(struct archive *a, const void **buf,
	    size_t *len, la_int64_t *off);
	int (*read_free)(struct archive *a);
	/* Writing */
	struct archive *(*write_new)(void);
	int (*write_set_format_pax_restricted)(struct archive *a);
	int (*write_add_filter_gzip)(struct archive *a);
	int (*write_add_filter_zstd)(struct archive *a);
	int (*write_add_filter_none)(struct archive *a);
	int (*write_set_filter_option)(struct archive *a, const char *m,
	    const char *o, const char *v);
	int (*write_set_bytes_per_block)(struct archive *a, int n);
	int (*write_set_bytes_in_last_block)(struct archive *a, int n);
	int (*write_open)(struct archive *a, void *arg,
	    archive_open_callback *open, archive_write_callback *write,
	    archive_close_callback *close);
	int (*write_header)(struct archive *a, struct archive_entry *e);
	la_ssize_t (*write_data)(struct archive *a, const void *buf,
	    size_t len);
	int (*write_close)(struct archive *a);
	int (*write_free)(struct archive *a);
	/* Both */
	const char *(*error_string)(struct archive *a);
	void (*set_error)(struct archive *a, int err, const char *fmt, ...);
	la_int64_t (*filter_bytes)(struct archive *a, int n);
	/* Entries */
	struct archive_entry *(*entry_new)(void);
	void (*entry_free)(struct archive_entry *e);
	const char *(*entry_pathname)(struct archive_entry *e);
	void (*entry_set_pathname)(struct archive_entry *e, const char *p);
	__LA_MODE_T (*entry_filetype)(struct archive_entry *e);
	void (*entry_set_filetype)(struct archive_entry *e, unsigned int t);
	void (*entry_set_perm)(struct archive_entry *e, __LA_MODE_T perm);
	la_int64_t (*entry_size)(struct archive_entry *e);
	int (*entry_size_is_set)(struct archive_entry *e);
	void (*entry_set_size)(struct archive_entry *e, la_int64_t size);
	void (*entry_set_mtime)(struct archive_entry *e, time_t t, long ns);
	const char *(*entry_hardlink)(struct archive_entry *e);
	const char *(*entry_symlink)(struct archive_entry *e);
	int (*entry_sparse_count)(struct archive_entry *e);
};

/*
 * Loads libarchive (CKPT_LIBARCHIVE_SONAME) once per process; *out gets
 * its functions, valid until exit.  Thread-safe.  CKPT_ERR_IO when it is
 * not installed or lacks a function (err names the library and says
 * why).  A failure is remembered: every later call returns it again.
 */
int ckpt_la_load(const struct ckpt_la **out, struct ckpt_error *err);

/*
 * The work of ckpt_la_load for the library soname, without the once,
 * into *api: for the tests.  The library stays loaded.
 */
int ckpt_la_load_from(const char *soname, struct ckpt_la *api,
    struct ckpt_error *err);

#endif
