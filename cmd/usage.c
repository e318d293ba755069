/* SPDX-License-Identifier: MIT */
/*
 * usage.c - die(), error(), warning() and the x-allocators of the ckpt
 * binary.  The library never prints; the binary prints here, to stderr, in
 * git's message style: "ckpt: cannot open 'x': No such file or directory".
 */
#include "ckpt.h"

#include <errno.h>

static void
vreport(const char *prefix, const char *fmt, va_list ap)
{
	fflush(stdout);
	fprintf(stderr, "ckpt: %s", prefix);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
}

void
die(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vreport("", fmt, ap);
	va_end(ap);
	exit(CKPT_EXIT_ERROR);
}

void
die_errno(const char *fmt, ...)
{
	char msg[1024];
	int saved = errno;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	die("%s: %s", msg, strerror(saved));
}

void
die_usage(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vreport("", fmt, ap);
	va_end(ap);
	usage_hint();
	exit(CKPT_EXIT_USAGE);
}

int
error(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vreport("", fmt, ap);
	va_end(ap);
	return -1;
}

void
warning(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vreport("warning: ", fmt, ap);
	va_end(ap);
}

void
info(const struct ctx *ctx, const char *fmt, ...)
{
	va_list ap;

	if (ctx->verbosity < 1)
		return;
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

void
error_ckpt(const struct ckpt_error *err)
{
	const char *msg = err->message[0] ? err->message :
	    ckpt_strerror(err->code);

	fflush(stdout);
	if (err->path[0])
		fprintf(stderr, "ckpt: %s: %s", err->path, msg);
	else
		fprintf(stderr, "ckpt: %s", msg);
	if (err->offset >= 0 && err->code == CKPT_ERR_FORMAT)
		fprintf(stderr, " (at byte %lld)", (long long)err->offset);
	fputc('\n', stderr);
}

int
exit_code_for(int status)
{
	switch (status) {
	case CKPT_OK:
		return CKPT_EXIT_OK;
	case CKPT_ERR_INVALID:
	case CKPT_ERR_REFUSED:
	case CKPT_ERR_EXISTS:
		return CKPT_EXIT_USAGE;
	default:
		return CKPT_EXIT_ERROR;
	}
}

int
exit_code_for_input(int status)
{
	switch (status) {
	case CKPT_ERR_FORMAT:
	case CKPT_ERR_UNSAFE:
	case CKPT_ERR_LIMIT:
		return CKPT_EXIT_FINDING;
	default:
		return exit_code_for(status);
	}
}

int
worse_exit(int a, int b)
{
	return a > b ? a : b;	/* the codes are ordered by gravity */
}

void
die_ckpt(const struct ckpt_error *err)
{
	error_ckpt(err);
	exit(exit_code_for(err->code));
}

static void *
check_alloc(void *p)
{
	if (!p)
		die("out of memory");
	return p;
}

void *
xmalloc(size_t n)
{
	return check_alloc(malloc(n ? n : 1));
}

void *
xcalloc(size_t n, size_t size)
{
	return check_alloc(calloc(n ? n : 1, size ? size : 1));
}

void *
xreallocarray(void *p, size_t n, size_t size)
{
	if (size && n > SIZE_MAX / size)
		die("out of memory");
	return check_alloc(realloc(p, n && size ? n * size : 1));
}

char *
xstrdup(const char *s)
{
	return check_alloc(strdup(s));
}

char *
xasprintf(const char *fmt, ...)
{
	va_list ap;
	char *s;

	va_start(ap, fmt);
	if (vasprintf(&s, fmt, ap) < 0)
		die("out of memory");
	va_end(ap);
	return s;
}

size_t
edit_distance(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	size_t *row = xcalloc(lb + 1, sizeof(*row));
	size_t result;

	for (size_t j = 0; j <= lb; j++)
		row[j] = j;
	for (size_t i = 1; i <= la; i++) {
		size_t diag = row[0];

		row[0] = i;
		for (size_t j = 1; j <= lb; j++) {
			size_t up = row[j];
			size_t best = diag + (a[i - 1] != b[j - 1]);

			if (row[j - 1] + 1 < best)
				best = row[j - 1] + 1;
			if (up + 1 < best)
				best = up + 1;
			row[j] = best;
			diag = up;
		}
	}
	result = row[lb];
	free(row);
	return result;
}

const char *
closest_name(const char *name, const char *const *cands, size_t n)
{
	const char *best = NULL;
	size_t best_d = SIZE_MAX, len = strlen(name);

	for (size_t i = 0; i < n; i++) {
		size_t d = edit_distance(name, cands[i]);

		if (len >= 3 && !strncmp(cands[i], name, len))
			d = d < 1 ? d : 1;
		if (d < best_d) {
			best_d = d;
			best = cands[i];
		}
	}
	return best_d <= 2 ? best : NULL;
}
