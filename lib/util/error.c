/* SPDX-License-Identifier: MIT */
/*
 * error.c - struct ckpt_error helpers.  Every error of the library is made
 * here, so that the message conventions (lower case, no full stop, the
 * problem first) hold in one place.
 */
#include "util/internal.h"

static void
copy_path(struct ckpt_error *err, const char *path)
{
	size_t n;

	if (!path) {
		err->path[0] = '\0';
		return;
	}
	n = strnlen(path, sizeof(err->path) - 1);
	memcpy(err->path, path, n);
	err->path[n] = '\0';
}

static int
error_vset(struct ckpt_error *err, int code, int sys_errno, const char *path,
    int64_t offset, const char *fmt, va_list ap)
{
	if (!err)
		return code;
	err->code = code;
	err->sys_errno = sys_errno;
	err->offset = offset;
	copy_path(err, path);
	/* Truncation of a diagnostic is acceptable; overflow is not. */
	vsnprintf(err->message, sizeof(err->message), fmt, ap);
	return code;
}

void
ckpt_error_clear(struct ckpt_error *err)
{
	if (!err)
		return;
	err->code = CKPT_OK;
	err->sys_errno = 0;
	err->offset = -1;
	err->path[0] = '\0';
	err->message[0] = '\0';
}

int
ckpt_error_set(struct ckpt_error *err, int code, const char *path,
    int64_t offset, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	error_vset(err, code, 0, path, offset, fmt, ap);
	va_end(ap);
	return code;
}

int
ckpt_error_errno(struct ckpt_error *err, const char *path, const char *fmt,
    ...)
{
	int saved = errno;
	va_list ap;
	size_t len;

	va_start(ap, fmt);
	error_vset(err, CKPT_ERR_IO, saved, path, -1, fmt, ap);
	va_end(ap);
	if (err) {
		len = strlen(err->message);
		snprintf(err->message + len, sizeof(err->message) - len,
		    ": %s", strerror(saved));
		if (saved == ENOMEM)
			err->code = CKPT_ERR_NOMEM;
	}
	errno = saved;
	return saved == ENOMEM ? CKPT_ERR_NOMEM : CKPT_ERR_IO;
}

int
ckpt_error_nomem(struct ckpt_error *err)
{
	return ckpt_error_set(err, CKPT_ERR_NOMEM, NULL, -1, "out of memory");
}

const char *
ckpt_strerror(int code)
{
	switch (code) {
	case CKPT_OK:			return "success";
	case CKPT_ERR_IO:		return "I/O error";
	case CKPT_ERR_FORMAT:		return "malformed input";
	case CKPT_ERR_NOMEM:		return "out of memory";
	case CKPT_ERR_INVALID:		return "invalid argument";
	case CKPT_ERR_UNSUPPORTED:	return "not supported";
	case CKPT_ERR_LOCKED:		return "store is locked";
	case CKPT_ERR_EXISTS:		return "already exists";
	case CKPT_ERR_NOTFOUND:		return "not found";
	case CKPT_ERR_LIMIT:		return "resource limit exceeded";
	case CKPT_ERR_UNSAFE:		return "unsafe content";
	case CKPT_ERR_REFUSED:		return "refused";
	case CKPT_ERR_CRYPTO:		return "cryptographic failure";
	case CKPT_ERR_INTERNAL:		return "internal error";
	}
	return "unknown error";
}

const char *
ckpt_version(void)
{
#define STR2(x) #x
#define STR(x) STR2(x)
	return STR(CKPT_VERSION_MAJOR) "." STR(CKPT_VERSION_MINOR) "."
	    STR(CKPT_VERSION_PATCH);
}

int
ckpt_version_number(void)
{
	return CKPT_VERSION_NUMBER;
}

int
ckpt_options_check(unsigned int version, unsigned int known,
    const char *what, struct ckpt_error *err)
{
	if (version <= known)
		return CKPT_OK;
	return ckpt_error_set(err, CKPT_ERR_UNSUPPORTED, NULL, -1,
	    "struct %s version %u is newer than this libckpt knows (%u)",
	    what, version, known);
}

_Noreturn void
ckpt_bug(const char *file, int line, const char *fmt, ...)
{
	va_list ap;

	/* The one place the library writes to stderr: a broken invariant. */
	fprintf(stderr, "BUG: %s:%d: ", file, line);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	abort();
}
