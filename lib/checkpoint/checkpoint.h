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

struct ckpt_checkpoint {
	char *path;
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

/* Index of the file with relative name, or -1. */
ssize_t ckpt_checkpoint_find(const struct ckpt_checkpoint *c,
    const char *name);

/* The whole-checkpoint checks (checkpoint.c calls them on open). */
int ckpt_check_hf_index(struct ckpt_checkpoint *c, size_t index_file,
    struct ckpt_error *err);
int ckpt_check_dcp(struct ckpt_checkpoint *c, size_t metadata_file,
    struct ckpt_error *err);

#endif /* CKPT_CHECKPOINT_H */
