/* SPDX-License-Identifier: MIT */
/*
 * findings.h - the one findings list of libckpt (util/findings.c): file,
 * checkpoint and verify findings are all built with it, so that every
 * finding owns its strings the same way.
 */
#ifndef CKPT_FINDINGS_H
#define CKPT_FINDINGS_H

#include "util/internal.h"

#include <stdarg.h>

/*
 * Appends a finding to a list (file and checkpoint findings alike); every
 * string is copied.  ckpt_findings_free() releases the list.
 */
int ckpt_findings_vappend(struct ckpt_finding **list, size_t *n,
    const char *id, enum ckpt_severity sev, const char *path,
    const char *subject, int64_t offset, const char *fmt, va_list ap)
    CKPT_PRINTF(8, 0);
void ckpt_findings_free(struct ckpt_finding *list, size_t n);
/* Releases the findings from the mark-th on; *n becomes mark. */
void ckpt_findings_truncate(struct ckpt_finding *list, size_t *n,
    size_t mark);

/* A list with its count, for code that appends to one list in many places. */
struct flist {
	struct ckpt_finding *v;		/* every string owned */
	size_t n;
};

int ckpt_flist_add(struct flist *l, const char *id, enum ckpt_severity sev,
    const char *path, const char *subject, int64_t offset, const char *fmt,
    ...) CKPT_PRINTF(7, 8);
int ckpt_flist_vadd(struct flist *l, const char *id, enum ckpt_severity sev,
    const char *path, const char *subject, int64_t offset, const char *fmt,
    va_list ap) CKPT_PRINTF(7, 0);
void ckpt_flist_free(struct flist *l);

#endif /* CKPT_FINDINGS_H */
