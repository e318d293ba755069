/* SPDX-License-Identifier: MIT */
/*
 * findings.c - appending to and freeing findings lists (util/findings.h).
 */
#include "util/internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/findings.h"

static char *
dup_or_null(const char *s)
{
	return s ? strdup(s) : NULL;
}

int
ckpt_findings_vappend(struct ckpt_finding **list, size_t *n, const char *id,
    enum ckpt_severity sev, const char *path, const char *subject,
    int64_t offset, const char *fmt, va_list ap)
{
	struct ckpt_finding *p, *f;
	char *msg;

	if (vasprintf(&msg, fmt, ap) < 0)
		return CKPT_ERR_NOMEM;
	p = reallocarray(*list, *n + 1, sizeof(*p));
	if (!p) {
		free(msg);
		return CKPT_ERR_NOMEM;
	}
	*list = p;
	f = &p[*n];
	f->id = strdup(id);
	f->severity = sev;
	f->path = dup_or_null(path);
	f->subject = dup_or_null(subject);
	f->message = msg;
	f->offset = offset;
	if (!f->id || (path && !f->path) || (subject && !f->subject)) {
		free((char *)f->id);
		free((char *)f->path);
		free((char *)f->subject);
		free(msg);
		return CKPT_ERR_NOMEM;
	}
	(*n)++;
	return CKPT_OK;
}

static void
finding_release(struct ckpt_finding *f)
{
	free((char *)f->id);
	free((char *)f->path);
	free((char *)f->subject);
	free((char *)f->message);
}

void
ckpt_findings_free(struct ckpt_finding *list, size_t n)
{
	for (size_t i = 0; i < n; i++)
		finding_release(&list[i]);
	free(list);
}

void
ckpt_findings_truncate(struct ckpt_finding *list, size_t *n, size_t mark)
{
	while (*n > mark)
		finding_release(&list[--*n]);
}


int
ckpt_flist_vadd(struct flist *l, const char *id, enum ckpt_severity sev,
    const char *path, const char *subject, int64_t offset, const char *fmt,
    va_list ap)
{
	return ckpt_findings_vappend(&l->v, &l->n, id, sev, path, subject,
	    offset, fmt, ap);
}

int
ckpt_flist_add(struct flist *l, const char *id, enum ckpt_severity sev,
    const char *path, const char *subject, int64_t offset, const char *fmt,
    ...)
{
	va_list ap;
	int rc;

	va_start(ap, fmt);
	rc = ckpt_flist_vadd(l, id, sev, path, subject, offset, fmt, ap);
	va_end(ap);
	return rc;
}

void
ckpt_flist_free(struct flist *l)
{
	ckpt_findings_free(l->v, l->n);
	l->v = NULL;
	l->n = 0;
}
