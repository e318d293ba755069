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

struct ckpt_backend_ops;

struct ckpt_store {
	char *root;			/* absolute, no trailing slash */
	/* Where the store keeps its objects (backend.h): every read,
	 * listing, write, lock and removal of the store goes through it. */
	const struct ckpt_backend_ops *ops;
	void *be;
	bool locked;
	char lock_content[1024];	/* what we wrote, to check on unlock */
};

/*
 * What protects checkpoints from prune (protect.c): pins and registry
 * versions, as sorted "RUN@STEP" keys.  runs: registry entries whose run
 * is readable but not their step (the whole run is protected); all: an
 * unreadable registry entry, which protects every checkpoint (the text
 * says which entry).
 */
struct ckpt_protection {
	char **pins;
	size_t npins;
	char **keys;
	size_t nkeys;
	char **runs;
	size_t nruns;
	char *all;
};

int ckpt_protection_load(const struct ckpt_store *s,
    struct ckpt_protection *p, struct ckpt_error *err);
int ckpt_pins_read(const struct ckpt_store *s, struct ckpt_protection *p,
    struct ckpt_error *err);
/* The one reader of registry protection (prune, ls, promote). */
int ckpt_registry_protection_read(const struct ckpt_store *s,
    struct ckpt_protection *p, struct ckpt_error *err);
bool ckpt_protection_pinned(const struct ckpt_protection *p,
    const char *run, int64_t step);
/* NULL when unprotected; else why ("" for a plain registry version). */
const char *ckpt_protection_registry(const struct ckpt_protection *p,
    const char *run, int64_t step);
void ckpt_protection_release(struct ckpt_protection *p);
/* Reads pins and the registry afresh for one checkpoint: *why is NULL
 * when nothing protects it.  Errors are errors (fail closed). */
int ckpt_protection_recheck(const struct ckpt_store *s, const char *run,
    int64_t step, const char **why, struct ckpt_error *err);

/* The backend key of path (a path in the store: ROOT/key), NULL when
 * path is not in the store. */
const char *ckpt_store_key(const struct ckpt_store *s, const char *path);

/* Opens ROOT/rel as a directory, no symbolic link followed below root
 * (backend-posix.c). */
int ckpt_open_dir_nofollow(const char *root, const char *rel);
/* Same for a store path: the descriptor, -2 when missing, -1 with err.
 * POSIX only: the store's own modules go through s->ops (backend.h). */
int ckpt_store_opendir(const struct ckpt_store *s, const char *rel,
    struct ckpt_error *err);
/* Removes path recursively, manifest first, never following symlinks nor
 * leaving its filesystem (backend-posix.c; POSIX only: the store's own
 * removals go through s->ops->remove_tree).  0, or -1 with errno. */
int ckpt_rm_rf(const char *path);

/*
 * Why path cannot name a file in a manifest (relative, '/'-separated, no
 * empty, "." or ".." component, valid UTF-8, no control character or
 * backslash, at most 4096 bytes), or NULL when it can.  The manifest
 * reader and save share it: save refuses before it commits every name
 * the reader would reject.
 */
const char *ckpt_manifest_path_problem(const char *path);

#endif /* CKPT_STORE_H */
