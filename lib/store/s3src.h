/* SPDX-License-Identifier: MIT */
/*
 * s3src.h - reading checkpoint files that live in S3 (internal): the
 * format layer's byte source over ranged GETs, s3:// URLs, and the
 * digests of the hashing engine's jobs computed by streaming GETs.
 */
#ifndef CKPT_S3SRC_H
#define CKPT_S3SRC_H

#include "util/internal.h"
#include "store/s3.h"

/* Whether s names an object store location ("s3://..."). */
bool ckpt_s3_is_url(const char *s);

/*
 * Splits "s3://BUCKET/KEY" into newly allocated *bucket and *key (KEY may
 * be empty; a trailing '/' is kept).  CKPT_ERR_INVALID for anything else.
 */
int ckpt_s3_url_parse(const char *url, char **bucket, char **key,
    struct ckpt_error *err);

/*
 * A client for the bucket of url, configured from the environment and
 * ~/.aws (ckpt_s3_config_load), and the key (newly allocated).
 */
int ckpt_s3_url_client(const char *url, struct ckpt_s3 **s3, char **key,
    struct ckpt_error *err);

/*
 * Opens the object key as a checkpoint file, named "s3://BUCKET/KEY":
 * the first request fetches the object's first readahead bytes and learns
 * its size, so a safetensors header of up to that much costs one GET.
 * An object that changes while it is read (another ETag) is an error.
 * When own_s3, the file frees s3 when it is freed (also on failure).
 */
int ckpt_s3_file_open(struct ckpt_s3 *s3, bool own_s3, const char *key,
    const struct ckpt_open_options *o, struct ckpt_file **out,
    struct ckpt_error *err);

/*
 * ckpt_file_open_ex() of a location: a local path, or "s3://BUCKET/KEY"
 * opened with ckpt_s3_file_open on a client of its own.
 */
int ckpt_file_open_location(const char *location,
    const struct ckpt_open_options *o, struct ckpt_file **out,
    struct ckpt_error *err);

/*
 * The contract of ckpt_hash_files for objects: job i reads keys[i]
 * (jobs[i].path names it in messages); ranges and, when whole, the whole
 * object's SHA-256, each object read once.  A whole-object digest is one
 * streaming GET; ranges alone are split into up to nthreads ranged GETs
 * in parallel.  Per-job failures land in jobs[i].status/err (CKPT_ERR_IO
 * for the service, CKPT_ERR_FORMAT for a short object); the return value
 * is for failures of the whole (out of memory).
 */
int ckpt_s3_hash_jobs(struct ckpt_s3 *s3, const char *const *keys,
    struct ckpt_hash_job *jobs, size_t njobs, unsigned nthreads,
    struct ckpt_error *err);

#endif /* CKPT_S3SRC_H */
