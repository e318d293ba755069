/* SPDX-License-Identifier: MIT */
/*
 * checkpoint.h - the inside of struct ckpt_checkpoint, for library code
 * that adds checks over a whole checkpoint (index weight_map against the
 * shards, DCP chunk coverage) or builds one from a file list.
 */
#ifndef CKPT_CHECKPOINT_H
#define CKPT_CHECKPOINT_H

#include "util/internal.h"

struct ckpt_cp_file {
	char *name;		/* relative to the root; basename for a file */
	char *path;		/* as opened: root/name */
	struct ckpt_file *file;	/* NULL when it could not be read */
	struct ckpt_error err;	/* why, when file is NULL */
};

/* Opens one file of a checkpoint that is not on the local disk. */
typedef int (*ckpt_cp_open_fn)(void *arg, const char *path,
    const struct ckpt_open_options *o, struct ckpt_file **out,
    struct ckpt_error *err);

struct ckpt_checkpoint {
	char *path;
	ckpt_cp_open_fn opener;		/* NULL: local files; open only */
	void *opener_arg;
	const char *kind;	/* static string */
	bool is_dir;
	struct ckpt_open_options open;	/* its lists borrowed while opening */
	struct ckpt_cp_file *files;	/* sorted by name (byte order) */
	size_t nfiles;
	struct ckpt_finding *findings;	/* strings owned here */
	size_t nfindings;
};

/* Adds a checkpoint-level finding; path and subject may be NULL. */
int ckpt_checkpoint_add_finding(struct ckpt_checkpoint *c, const char *id,
    enum ckpt_severity sev, const char *path, const char *subject,
    int64_t offset, const char *fmt, ...) CKPT_PRINTF(7, 8);

/*
 * A checkpoint of the n files names[i] (relative, any order) opened
 * through opener(arg, paths[i]) rather than from the disk: a remote
 * object store's.  path names it; is_dir says whether it is a directory
 * (every whole-checkpoint check runs) or one file.
 */
int ckpt_checkpoint_open_with(const char *path, bool is_dir,
    const char *const *names, const char *const *paths, size_t n,
    ckpt_cp_open_fn opener, void *arg, const struct ckpt_open_options *o,
    struct ckpt_checkpoint **out, struct ckpt_error *err);

/* Index of the file with relative name, or -1. */
ssize_t ckpt_checkpoint_find(const struct ckpt_checkpoint *c,
    const char *name);

/*
 * Whether file name (relative), of format fmt with the reader's metadata
 * JSON (or NULL), starts a whole-checkpoint check of its directory: an
 * HF index or DCP metadata.  Save asks before it opens the checkpoint.
 */
bool ckpt_checkpoint_whole_check_file(const char *name, enum ckpt_format fmt,
    const char *metadata_json);

/* The whole-checkpoint checks (checkpoint.c calls them on open). */
int ckpt_check_hf_index(struct ckpt_checkpoint *c, size_t index_file,
    struct ckpt_error *err);
int ckpt_check_dcp(struct ckpt_checkpoint *c, size_t metadata_file,
    struct ckpt_error *err);

#endif /* CKPT_CHECKPOINT_H */
