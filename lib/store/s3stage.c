/* SPDX-License-Identifier: MIT */
/*
 * s3stage.c - a local file uploaded straight into the staging area of a
 * store on S3 (ckpt_store_stage_upload), for save --copy and push: no
 * copy in the local spool, the bytes read once, seen by the caller's
 * observer (which digests or checks them) as the parallel multipart
 * upload sends them, each part's SHA-256 checked by the service
 * (ckpt_s3_put_fd).  The staging area's objects are published by the
 * backend's commit (backend-s3.c) like those it uploads from its spool.
 * ckpt_store_stage_upload_fd is the same from any file descriptor read
 * in order (import: a pipe fed from the bundle as it streams).
 */
#include "util/internal.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store/s3.h"
#include "store/store.h"

static bool
same_file(const struct stat *a, const struct stat *b)
{
	return a->st_dev == b->st_dev && a->st_ino == b->st_ino &&
	    a->st_size == b->st_size &&
	    a->st_mtim.tv_sec == b->st_mtim.tv_sec &&
	    a->st_mtim.tv_nsec == b->st_mtim.tv_nsec;
}

int
ckpt_store_stage_upload_fd(struct ckpt_store *s, const char *stage,
    const char *rel, int fd, uint64_t size,
    int (*observe)(void *arg, const void *data, size_t len), void *arg,
    struct ckpt_error *err)
{
	const char *prefix;
	struct ckpt_s3 *s3 = ckpt_store_s3(s, &prefix);
	char *key = NULL;
	int rc;

	if (!s3)
		return ckpt_error_set(err, CKPT_ERR_INTERNAL, rel, -1,
		    "not a store on S3");
	if (asprintf(&key, "%s%s/%s", prefix, stage, rel) < 0)
		return ckpt_error_nomem(err);
	rc = ckpt_s3_put_fd(s3, key, fd, size, 0, observe, arg, NULL, err);
	free(key);
	return rc;
}

int
ckpt_store_stage_upload(struct ckpt_store *s, const char *stage,
    const char *rel, const char *path, const struct stat *expect,
    int (*observe)(void *arg, const void *data, size_t len), void *arg,
    struct ckpt_error *err)
{
	struct stat before, after;
	int fd, rc;

	if (!ckpt_store_s3(s, NULL))
		return ckpt_error_set(err, CKPT_ERR_INTERNAL, path, -1,
		    "not a store on S3");
	fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return ckpt_error_errno(err, path, "cannot open");
	if (fstat(fd, &before)) {
		rc = ckpt_error_errno(err, path, "cannot stat");
		goto out;
	}
	if (!S_ISREG(before.st_mode)) {
		rc = ckpt_error_set(err, CKPT_ERR_INVALID, path, -1,
		    "not a regular file");
		goto out;
	}
	if (expect && !same_file(expect, &before)) {
		rc = ckpt_error_set(err, CKPT_ERR_IO, path, -1, "changed "
		    "before it was uploaded (%llu bytes, then %llu); nothing "
		    "was saved", (unsigned long long)expect->st_size,
		    (unsigned long long)before.st_size);
		goto out;
	}
	rc = ckpt_store_stage_upload_fd(s, stage, rel, fd,
	    (uint64_t)before.st_size, observe, arg, err);
	/* A file written to meanwhile gave a torn upload whose digests
	 * describe no state its writer ever left: refused. */
	if (!rc && (fstat(fd, &after) || !same_file(&before, &after)))
		rc = ckpt_error_set(err, CKPT_ERR_IO, path, -1, "changed "
		    "while it was uploaded; nothing was saved");
out:
	close(fd);
	return rc;
}
