/* SPDX-License-Identifier: MIT */
/*
 * internal.h - first include of every lib/ source file: feature macros, the
 * public header, error helpers shared by the library, and banned functions.
 */
#ifndef CKPT_INTERNAL_H
#define CKPT_INTERNAL_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE	/* pread/posix_fadvise/O_NOFOLLOW/strnlen on glibc */
#endif
#define _FILE_OFFSET_BITS 64

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ckpt.h"
#include "ckpt-cli.h"

#define CKPT_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* CKPT_ASAN: built with AddressSanitizer (gcc's macro, clang's feature). */
#if defined(__SANITIZE_ADDRESS__)
#define CKPT_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define CKPT_ASAN 1
#endif
#endif

#if defined(__GNUC__)
#define CKPT_PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define CKPT_PRINTF(f, a)
#endif

/*
 * Fills *err (when not NULL) and returns code, so that callers can write
 * "return ckpt_error_set(err, CKPT_ERR_FORMAT, path, off, "...", ...);".
 * path may be NULL; offset is -1 when it does not apply.
 */
int ckpt_error_set(struct ckpt_error *err, int code, const char *path,
    int64_t offset, const char *fmt, ...) CKPT_PRINTF(5, 6);
/* Same, with sys_errno = errno and CKPT_ERR_IO; message gets strerror. */
int ckpt_error_errno(struct ckpt_error *err, const char *path,
    const char *fmt, ...) CKPT_PRINTF(3, 4);
int ckpt_error_nomem(struct ckpt_error *err);
/*
 * The version check of a caller's options struct (see "Options structs"
 * in ckpt.h): 0 reads as 1, a version above known is CKPT_ERR_UNSUPPORTED
 * naming the struct.  Returns 0 or that error.
 */
int ckpt_options_check(unsigned int version, unsigned int known,
    const char *what, struct ckpt_error *err);

/* Checked arithmetic: return false on overflow. */
static inline bool
ckpt_mul_u64(uint64_t a, uint64_t b, uint64_t *out)
{
	return !__builtin_mul_overflow(a, b, out);
}

static inline bool
ckpt_add_u64(uint64_t a, uint64_t b, uint64_t *out)
{
	return !__builtin_add_overflow(a, b, out);
}

#define BUG(...) ckpt_bug(__FILE__, __LINE__, __VA_ARGS__)
_Noreturn void ckpt_bug(const char *file, int line, const char *fmt, ...)
    CKPT_PRINTF(3, 4);

#include "util/banned.h"

/*
 * SHA-256 streams of the hashing engine (sha256.c).  update2 feeds n bytes
 * to each of two streams (da and db may be the same bytes or not); on
 * SHA-NI CPUs it compresses both interleaved, at about 1.35x the cost of
 * one.  A stream must end in final (which releases it) or release.
 */
struct ckpt_sha256 {
	uint32_t h[8];
	uint64_t len;
	unsigned char block[64];
	size_t fill;
	struct ckpt_hash *lib;	/* not NULL: libcrypto does the work */
};
int ckpt_sha256_init(struct ckpt_sha256 *s, struct ckpt_error *err);
void ckpt_sha256_update(struct ckpt_sha256 *s, const void *data, size_t n);
void ckpt_sha256_update2(struct ckpt_sha256 *a, const void *da,
    struct ckpt_sha256 *b, const void *db, size_t n);
int ckpt_sha256_final(struct ckpt_sha256 *s,
    unsigned char out[CKPT_SHA256_BYTES], struct ckpt_error *err);
void ckpt_sha256_release(struct ckpt_sha256 *s);
/*
 * ckpt_hash_files that also copies: job i's file is written, byte for
 * byte as it is read and digested, to copies[i].fd (pwrite at the same
 * offsets; fd < 0: hash only), which the caller opened for writing and
 * closes, and fsyncs: the writeback is only started here.  copies may be
 * NULL.  A source that ends early fails its job as in ckpt_hash_files;
 * one that grows is copied up to the size it had when the job started.
 */
struct ckpt_hash_copy {
	int fd;
	int dfd;		/* the same file opened with O_DIRECT, or -1 */
	const char *path;	/* for messages */
};
int ckpt_hash_copy_files(struct ckpt_hash_job *jobs,
    const struct ckpt_hash_copy *copies, size_t njobs, unsigned int nthreads,
    ckpt_progress_fn progress, void *data, struct ckpt_error *err);
/* "sha-ni x2", or the libcrypto/libsodium backend's name. */
const char *ckpt_sha256_kernel(void);
/* Tests: read CKPT_SHA256_KERNEL again on the next use. */
void ckpt_sha256_reset_kernel(void);

#endif /* CKPT_INTERNAL_H */
