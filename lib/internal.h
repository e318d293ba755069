/* SPDX-License-Identifier: MIT */
/*
 * internal.h - first include of every lib/ source file: feature macros, the public
 * header, error helpers shared by the library, and banned functions.
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

#include "include/ckpt.h"

#define CKPT_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

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

#include "banned.h"

#endif /* CKPT_INTERNAL_H */
