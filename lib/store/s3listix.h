/* SPDX-License-Identifier: MIT */
/*
 * s3listix.h - the listing index of a run in a store on S3 (internal;
 * s3listix.c says what it holds and when it is believed).  The S3
 * backend drives it while list.c lists one run (ckpt_store_list_index)
 * and keeps it current as it commits and removes checkpoints.
 */
#ifndef CKPT_S3LISTIX_H
#define CKPT_S3LISTIX_H

#include "store/backend.h"
#include "store/s3.h"

struct s3_listix;

/* For runkey "runs/R" of the store at prefix: reads its index object
 * (absent or malformed: empty).  NULL: no memory (then no index). */
struct s3_listix *ckpt_s3_listix_begin(struct ckpt_s3 *s3,
    const char *prefix, const char *runkey);
/* An object rel ("X/NAME") of the listing of the store key prefix. */
void ckpt_s3_listix_note(struct s3_listix *x, const char *prefix,
    const char *rel, const struct ckpt_s3_object *obj);
/* The listing of prefix is complete: what it saw is believed now. */
void ckpt_s3_listix_listed(struct s3_listix *x, const char *prefix);
/*
 * Answers for store key: 0 (*out filled, mtime on the service's clock),
 * CKPT_ERR_NOTFOUND (read: the listing showed no such object), or 1:
 * not known here, ask the service.
 */
int ckpt_s3_listix_stat(struct s3_listix *x, const char *key,
    struct ckpt_be_info *out);
int ckpt_s3_listix_read(struct s3_listix *x, const char *key, char **data,
    size_t *len);
/* A summary just read from the service, for the index. */
void ckpt_s3_listix_learn(struct s3_listix *x, const char *key,
    const char *data, size_t len);
/* Rewrites the index when it changed (best effort) and frees x. */
void ckpt_s3_listix_end(struct s3_listix *x);

/*
 * Changes that commits and removals make, queued (*q starts NULL) and
 * applied together by ckpt_s3_listix_apply: one read-modify-write of
 * each run's index, conditional on the ETag read, retried when another
 * writer changed it meanwhile; best effort (what fails is read from the
 * service by the next listing).  add: runs/R/X was committed with the
 * manifest of that ETag and that summary (NULL or too large: dropped
 * instead).  apply empties and frees the queue.
 */
struct s3_ixop;
void ckpt_s3_listix_queue_add(struct s3_ixop **q, const char *runkey,
    const char *name, const char *etag, const char *summary, size_t len);
void ckpt_s3_listix_queue_drop(struct s3_ixop **q, const char *runkey,
    const char *name);
void ckpt_s3_listix_apply(struct ckpt_s3 *s3, const char *prefix,
    struct s3_ixop **q);

/* Fuzzing: parses an index object and checks its entries; the number
 * of entries that would be believed for their own ETag, -1: no index. */
int ckpt_s3_listix_check(const void *data, size_t size);

#endif /* CKPT_S3LISTIX_H */
