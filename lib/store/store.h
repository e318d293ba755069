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

/*
 * Why path cannot name a file in a manifest (relative, '/'-separated, no
 * empty, "." or ".." component, valid UTF-8, no control character or
 * backslash, at most 4096 bytes), or NULL when it can.  The manifest
 * reader and save share it: save refuses before it commits every name
 * the reader would reject.
 */
const char *ckpt_manifest_path_problem(const char *path);

#endif /* CKPT_STORE_H */
