/* SPDX-License-Identifier: MIT */
/*
 * store.h - what the store modules share (store.c, list.c, manifest.c,
 * save.c, prune.c): the inside of struct ckpt_store.  The file and host
 * helpers they use are in util/util.h.
 */
#ifndef CKPT_STORE_H
#define CKPT_STORE_H

#include "util/internal.h"
#include "util/util.h"

#include <sys/types.h>

struct ckpt_store {
	char *root;			/* absolute, no trailing slash */
	bool locked;
	char lock_content[1024];	/* what we wrote, to check on unlock */
};

/* Copies a regular file to dst (created exclusively, 0644; not synced);
 * save.c. */
int ckpt_copy_file(const char *src, const char *dst, struct ckpt_error *err);
/* Removes path recursively (manifest first, no symlinks followed); 0 or
 * -1 with errno.  A path that is gone already is fine; prune.c. */
int ckpt_rm_rf(const char *path);

#endif /* CKPT_STORE_H */
