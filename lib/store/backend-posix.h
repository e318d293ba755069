/* SPDX-License-Identifier: MIT */
/*
 * backend-posix.h - what the two files of the POSIX backend share
 * (backend-posix.c: keys, reads, listings, the lock, commit, trash;
 * backend-posix-stage.c: creating a store and save's staging).  Internal
 * to the backend: the store's modules go through the ops table.
 */
#ifndef CKPT_BACKEND_POSIX_H
#define CKPT_BACKEND_POSIX_H

#include "store/backend.h"

/* ROOT/key (ROOT for ""), newly allocated; NULL when out of memory. */
char *ckpt_posix_path(const void *be, const char *key);
/* ROOT/key opened as a directory, no link followed: the descriptor, or
 * a negative CKPT_ERR_* (NOTFOUND, UNSAFE for a link). */
int ckpt_posix_open_dir(const void *be, const char *key,
    struct ckpt_error *err);
/* The directory holding key, opened the same way; *base: key's last
 * component. */
int ckpt_posix_open_parent(const void *be, const char *key,
    const char **base, struct ckpt_error *err);
/* err from errno for key: ENOENT is CKPT_ERR_NOTFOUND, ELOOP
 * CKPT_ERR_UNSAFE, the rest CKPT_ERR_IO (sys_errno set). */
int ckpt_posix_key_errno(const void *be, const char *key, const char *what,
    struct ckpt_error *err);
/* rename(2) that never replaces (CKPT_ERR_EXISTS); under the lock. */
int ckpt_posix_rename_noreplace(const char *from, const char *to,
    struct ckpt_error *err);
/* .ckpt/trash exists and is the store's own directory. */
int ckpt_posix_ensure_trash(const void *be, struct ckpt_error *err);
int ckpt_posix_open(const char *location, void **be, struct ckpt_error *err);

/* backend-posix-stage.c */
int ckpt_posix_create(const char *location, void **be,
    struct ckpt_error *err);
int ckpt_posix_mkprefix(void *be, const char *key, bool *made,
    struct ckpt_error *err);
int ckpt_posix_rmprefix(void *be, const char *key, struct ckpt_error *err);
int ckpt_posix_stage_begin(void *be, const char *dir, const char *name,
    const char *record, size_t len, char **stage, char **local,
    struct ckpt_error *err);
int ckpt_posix_stage_file(void *be, const char *stage, const char *rel,
    const char *src, unsigned int flags, bool *taken,
    struct ckpt_error *err);
int ckpt_posix_stage_untake(void *be, const char *stage, const char *rel,
    const char *dst, struct ckpt_error *err);
int ckpt_posix_stage_record(void *be, const char *stage, const char *record,
    size_t len, bool durable, struct ckpt_error *err);
int ckpt_posix_stage_sync(void *be, const char *stage,
    struct ckpt_error *err);
int ckpt_posix_stage_abort(void *be, const char *stage,
    struct ckpt_error *err);
int ckpt_posix_copy(void *be, const char *from, const char *to,
    unsigned int flags, bool *shared, struct ckpt_error *err);
int ckpt_posix_commit_replace(void *be, const char *stage, const char *final,
    const char *trash_name, struct ckpt_error *err);

#endif /* CKPT_BACKEND_POSIX_H */
