/* SPDX-License-Identifier: MIT */
/*
 * backend-posix.c - the POSIX backend of the store seam (backend.h): a
 * store is a directory tree, a key is ROOT/key.  This is the code that
 * store.c, list.c, protect.c, prune.c and save.c ran themselves before
 * the seam, moved here unchanged in what it does: every key is walked
 * below ROOT with O_NOFOLLOW (a symbolic link is foreign, never
 * followed), errors other than ENOENT are errors, the lock is a finished
 * temporary file link()ed into place (a symlink on a full filesystem),
 * and a checkpoint is committed by rename(2) without replacing.
 */
#include "util/internal.h"

#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store/backend.h"
#include "store/backend-posix.h"
#include "store/store.h"

#define RM_MAX_DEPTH	64

struct posix_be {
	char *root;		/* absolute, no trailing slash */
	/*
	 * The directory a list is reading, while its callback runs: keys
	 * below it are walked from there, as the store did with the run's
	 * descriptor before the seam (ls reads 10,000 checkpoints without
	 * walking from the root each time).  A stack, for nested lists.
	 * So a backend handle is for one thread at a time.
	 */
	const char *cur_prefix;
	int cur_fd;
	/* The last directory opened below it, for the callback's next
	 * reads (a checkpoint's summary, manifest and status); dropped
	 * when the listing moves on. */
	char leaf[PATH_MAX];
	int leaf_fd;
};

static void
drop_leaf(struct posix_be *pb)
{
	if (pb->leaf_fd >= 0)
		close(pb->leaf_fd);
	pb->leaf_fd = -1;
	pb->leaf[0] = '\0';
}

int
ckpt_posix_open(const char *location, void **be, struct ckpt_error *err)
{
	struct posix_be *pb = calloc(1, sizeof(*pb));
	struct stat st;
	int rc;

	if (!pb)
		return ckpt_error_nomem(err);
	pb->cur_fd = -1;
	pb->leaf_fd = -1;
	pb->root = realpath(location, NULL);
	if (!pb->root) {
		free(pb);
		return ckpt_error_errno(err, location, "cannot resolve");
	}
	/* A store is a directory: anything else is "no store here". */
	errno = stat(pb->root, &st) ? errno : S_ISDIR(st.st_mode) ? 0 :
	    ENOTDIR;
	if (errno) {
		rc = ckpt_error_errno(err, location, "cannot open the store");
		free(pb->root);
		free(pb);
		return rc;
	}
	*be = pb;
	return CKPT_OK;
}

static void
posix_close(void *be)
{
	struct posix_be *pb = be;

	if (!pb)
		return;
	drop_leaf(pb);
	free(pb->root);
	free(pb);
}

/* ROOT/key (ROOT for ""), newly allocated. */
static char *
full_path(const struct posix_be *pb, const char *key)
{
	return *key ? ckpt_join(pb->root, key) : strdup(pb->root);
}

/* Walks rel down from the directory fd (which it takes over). */
static int
walk_nofollow(int fd, const char *rel)
{
	char buf[PATH_MAX];
	char *save = NULL, *tok;
	int next;

	if (strlen(rel) >= sizeof(buf)) {
		if (fd >= 0)
			close(fd);
		errno = ENAMETOOLONG;
		return -1;
	}
	memcpy(buf, rel, strlen(rel) + 1);
	for (tok = strtok_r(buf, "/", &save); fd >= 0 && tok;
	    tok = strtok_r(NULL, "/", &save)) {
		next = openat(fd, tok, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
		    O_CLOEXEC);
		if (next < 0) {
			int e = errno;

			close(fd);
			errno = e;
			return -1;
		}
		close(fd);
		fd = next;
	}
	return fd;
}

/* Opens ROOT/rel as a directory, no symbolic link followed below root. */
static int
open_dir_nofollow(const char *root, const char *rel)
{
	return walk_nofollow(open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC),
	    rel);
}

/* ROOT/rel, from the directory being listed when rel is below it. */
static int
open_dir_fast(const struct posix_be *cpb, const char *rel)
{
	struct posix_be *pb = (struct posix_be *)cpb;
	size_t n;
	int fd;

	if (pb->cur_fd < 0)
		return open_dir_nofollow(pb->root, rel);
	n = strlen(pb->cur_prefix);
	if (strncmp(rel, pb->cur_prefix, n) || (rel[n] != '/' && rel[n]))
		return open_dir_nofollow(pb->root, rel);
	if (pb->leaf_fd >= 0 && !strcmp(rel, pb->leaf))
		return fcntl(pb->leaf_fd, F_DUPFD_CLOEXEC, 0);
	fd = walk_nofollow(openat(pb->cur_fd, ".", O_RDONLY | O_DIRECTORY |
	    O_CLOEXEC), rel + n);
	if (fd >= 0 && rel[n] && strlen(rel) < sizeof(pb->leaf)) {
		drop_leaf(pb);
		pb->leaf_fd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
		if (pb->leaf_fd >= 0)
			memcpy(pb->leaf, rel, strlen(rel) + 1);
	}
	return fd;
}

/*
 * Opens ROOT/rel as a directory, no link followed: the descriptor, or a
 * negative CKPT_ERR_* with err (CKPT_ERR_NOTFOUND when missing,
 * CKPT_ERR_UNSAFE for a link or a non-directory on the way).
 */
static int
open_dir(const struct posix_be *pb, const char *rel, struct ckpt_error *err)
{
	char *path;
	int fd = open_dir_fast(pb, rel);

	if (fd >= 0)
		return fd;
	path = full_path(pb, rel);
	if (!path)
		return ckpt_error_nomem(err);
	if (errno == ENOENT) {
		fd = ckpt_error_set(err, CKPT_ERR_NOTFOUND, path, -1,
		    "no such directory");
		if (err)
			err->sys_errno = ENOENT;
	} else if (errno == ELOOP || errno == ENOTDIR) {
		struct stat st;
		/* O_DIRECTORY|O_NOFOLLOW on a link gives either errno */
		bool link = !lstat(path, &st) && S_ISLNK(st.st_mode);

		fd = ckpt_error_set(err, CKPT_ERR_UNSAFE, path, -1, "%s: "
		    "refusing to follow it out of the store", link ?
		    "a symbolic link" : "not a directory");
		if (err)
			err->sys_errno = ELOOP;
	} else {
		fd = ckpt_error_errno(err, path, "cannot open");
	}
	free(path);
	return fd;
}

/* The directory holding key, opened; *base: key's last component. */
static int
open_parent(const struct posix_be *pb, const char *key, const char **base,
    struct ckpt_error *err)
{
	const char *slash = strrchr(key, '/');
	char dir[PATH_MAX];

	*base = slash ? slash + 1 : key;
	if (!slash)
		return open_dir(pb, "", err);
	if ((size_t)(slash - key) >= sizeof(dir)) {
		errno = ENAMETOOLONG;
		return ckpt_error_errno(err, key, "cannot open");
	}
	memcpy(dir, key, (size_t)(slash - key));
	dir[slash - key] = '\0';
	return open_dir(pb, dir, err);
}

static int
key_errno(const struct posix_be *pb, const char *key, const char *what,
    struct ckpt_error *err)
{
	char *path = full_path(pb, key);
	int rc, e = errno;

	if (e == ENOENT)
		rc = ckpt_error_set(err, CKPT_ERR_NOTFOUND, path ? path : key,
		    -1, "no such file");
	else if (e == ELOOP)
		rc = ckpt_error_set(err, CKPT_ERR_UNSAFE, path ? path : key,
		    -1, "a symbolic link: refusing to follow it out of the "
		    "store");
	else
		rc = ckpt_error_errno(err, path ? path : key, "%s", what);
	if (err)
		err->sys_errno = e;
	free(path);
	return rc;
}

static enum ckpt_be_type
type_of(mode_t m)
{
	return S_ISREG(m) ? CKPT_BE_FILE : S_ISDIR(m) ? CKPT_BE_DIR :
	    S_ISLNK(m) ? CKPT_BE_LINK : CKPT_BE_OTHER;
}

static int
posix_read(void *be, const char *key, size_t max, char **data, size_t *len,
    struct ckpt_error *err)
{
	const struct posix_be *pb = be;
	const char *base;
	int dfd, fd, rc;

	*data = NULL;
	if ((dfd = open_parent(pb, key, &base, err)) < 0)
		return dfd;
	fd = openat(dfd, base, O_RDONLY | O_NOFOLLOW | O_NONBLOCK |
	    O_CLOEXEC);
	if (fd < 0) {
		rc = key_errno(pb, key, "cannot open", err);
		close(dfd);
		return rc;
	}
	close(dfd);
	if (!ckpt_read_fd(fd, max, data, len)) {
		close(fd);
		return CKPT_OK;
	}
	if (errno == EINVAL || errno == EFBIG) {
		bool irregular = errno == EINVAL;
		char *path = full_path(pb, key);

		rc = irregular ? ckpt_error_set(err, CKPT_ERR_FORMAT,
		    path ? path : key, -1, "not a regular file") :
		    ckpt_error_set(err, CKPT_ERR_LIMIT, path ? path : key, -1,
		    "larger than %zu bytes", max);
		free(path);
	} else if (errno == ENOMEM) {
		rc = ckpt_error_nomem(err);
	} else {
		rc = key_errno(pb, key, "cannot read", err);
	}
	close(fd);
	return rc;
}

/* key is NAME directly below the prefix being listed: *base = NAME. */
static bool
child_of_listed(const struct posix_be *pb, const char *key,
    const char **base)
{
	size_t n;

	if (pb->cur_fd < 0)
		return false;
	n = strlen(pb->cur_prefix);
	if (strncmp(key, pb->cur_prefix, n) || key[n] != '/' ||
	    !key[n + 1] || strchr(key + n + 1, '/'))
		return false;
	*base = key + n + 1;
	return true;
}

/* The stamp the listing cache compares (backend.h: struct ckpt_be_info). */
static void
stamp_info(const struct stat *st, struct ckpt_be_info *out)
{
	out->ino = (uint64_t)st->st_ino;
	out->mtime_ns = (int64_t)st->st_mtim.tv_sec * 1000000000LL +
	    st->st_mtim.tv_nsec;
	out->ctime_ns = (int64_t)st->st_ctim.tv_sec * 1000000000LL +
	    st->st_ctim.tv_nsec;
}

static int
posix_stat(void *be, const char *key, struct ckpt_be_info *out,
    struct ckpt_error *err)
{
	const struct posix_be *pb = be;
	const char *base;
	struct stat st;
	int dfd, rc = CKPT_OK;

	memset(out, 0, sizeof(*out));
	if (!*key) {
		if (stat(pb->root, &st))
			return key_errno(pb, key, "cannot stat", err);
	} else if (child_of_listed(pb, key, &base)) {
		/* a child of the directory being listed: one fstatat */
		if (fstatat(pb->cur_fd, base, &st, AT_SYMLINK_NOFOLLOW))
			return key_errno(pb, key, "cannot stat", err);
	} else {
		if ((dfd = open_parent(pb, key, &base, err)) < 0)
			return dfd;
		if (fstatat(dfd, base, &st, AT_SYMLINK_NOFOLLOW))
			rc = key_errno(pb, key, "cannot stat", err);
		close(dfd);
		if (rc)
			return rc;
	}
	out->type = type_of(st.st_mode);
	out->size = S_ISREG(st.st_mode) ? (uint64_t)st.st_size : 0;
	out->mtime = (int64_t)st.st_mtime;
	stamp_info(&st, out);
	out->owned = true;
	out->uid = (uint32_t)st.st_uid;
	return CKPT_OK;
}

static int
posix_list(void *be, const char *prefix, ckpt_be_list_fn fn, void *arg,
    struct ckpt_error *err)
{
	struct posix_be *pb = be;
	const char *saved_prefix;
	struct dirent *de;
	char *path;
	DIR *d;
	int fd, saved_fd, rc = 0;

	if ((fd = open_dir(pb, prefix, err)) < 0)
		return fd;
	path = full_path(pb, prefix);
	if (!path) {
		close(fd);
		return ckpt_error_nomem(err);
	}
	if (!(d = fdopendir(fd))) {
		rc = ckpt_error_errno(err, path, "cannot list");
		close(fd);
		free(path);
		return rc;
	}
	saved_prefix = pb->cur_prefix;
	saved_fd = pb->cur_fd;
	drop_leaf(pb);
	pb->cur_prefix = prefix;
	pb->cur_fd = dirfd(d);
	for (;;) {
		struct ckpt_be_info info;
		struct stat st;

		errno = 0;
		if (!(de = readdir(d))) {
			if (errno)
				rc = ckpt_error_errno(err, path,
				    "cannot list");
			break;
		}
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		memset(&info, 0, sizeof(info));
		switch (de->d_type) {
		case DT_REG:
			info.type = CKPT_BE_FILE;
			break;
		case DT_DIR:
			info.type = CKPT_BE_DIR;
			break;
		case DT_LNK:
			info.type = CKPT_BE_LINK;
			break;
		case DT_UNKNOWN:
			if (fstatat(dirfd(d), de->d_name, &st,
			    AT_SYMLINK_NOFOLLOW)) {
				if (errno == ENOENT)
					continue;	/* gone meanwhile */
				rc = ckpt_error_errno(err, path, "cannot stat "
				    "%s in", de->d_name);
				goto out;
			}
			info.type = type_of(st.st_mode);
			break;
		default:
			info.type = CKPT_BE_OTHER;
			break;
		}
		rc = fn(arg, de->d_name, &info);
		drop_leaf(pb);
		if (rc)
			break;
	}
out:
	drop_leaf(pb);
	pb->cur_prefix = saved_prefix;
	pb->cur_fd = saved_fd;
	closedir(d);
	free(path);
	return rc;
}

static int
posix_put(void *be, const char *key, const void *data, size_t len,
    unsigned int flags, struct ckpt_error *err)
{
	const struct posix_be *pb = be;
	char *path = full_path(pb, key), *tmp = NULL;
	int fd, rc;

	if (!path)
		return ckpt_error_nomem(err);
	if (!(flags & CKPT_BE_IF_ABSENT)) {
		rc = ckpt_write_file_atomic(path, data, len, err);
		free(path);
		return rc;
	}
	fd = ckpt_tempfile(path, 0644, &tmp, err);
	if (fd < 0) {
		free(path);
		return fd;
	}
	rc = ckpt_write_all(fd, data, len, tmp, err);
	if (!rc && fsync(fd))
		rc = ckpt_error_errno(err, tmp, "cannot fsync");
	close(fd);
	if (!rc && link(tmp, path))
		rc = errno == EEXIST ? ckpt_error_set(err, CKPT_ERR_EXISTS,
		    path, -1, "exists already") : ckpt_error_errno(err, path,
		    "cannot create");
	unlink(tmp);
	free(tmp);
	if (!rc) {
		char *dir = ckpt_dirname(path);

		rc = dir ? ckpt_fsync_dir(dir, err) : ckpt_error_nomem(err);
		free(dir);
	}
	free(path);
	return rc;
}

static int
posix_remove(void *be, const char *key, struct ckpt_error *err)
{
	const struct posix_be *pb = be;
	char *path = full_path(pb, key), *dir;
	int rc;

	if (!path)
		return ckpt_error_nomem(err);
	if (unlink(path)) {
		rc = errno == ENOENT ? CKPT_OK : ckpt_error_errno(err, path,
		    "cannot remove");
		free(path);
		return rc;
	}
	dir = ckpt_dirname(path);
	rc = dir ? ckpt_fsync_dir(dir, err) : ckpt_error_nomem(err);
	free(dir);
	free(path);
	return rc;
}

/* ---- The lock ---- */

static bool
no_space(int e)
{
	return e == ENOSPC || e == EDQUOT;
}

/*
 * Creates the lock file at path holding content, atomically with its
 * content: the content goes into a fresh temporary file (fsynced, so that
 * not even a crash of the host leaves an empty lock), which is then
 * link()ed to path -- an exclusive create, like O_EXCL, that never shows
 * a half-written lock.  Where the filesystem has no room for that file,
 * the lock is a symlink to the compact form instead, which needs only an
 * inode.
 */
static int
posix_lock(void *be, const char *key, const char *content,
    const char *fallback, bool *used_fallback, struct ckpt_error *err)
{
	const struct posix_be *pb = be;
	struct ckpt_error le;
	char *path = full_path(pb, key), *tmp = NULL;
	int fd, rc;

	*used_fallback = false;
	if (!path)
		return ckpt_error_nomem(err);
	ckpt_error_clear(&le);
	fd = ckpt_tempfile(path, 0644, &tmp, &le);
	if (fd >= 0) {
		rc = ckpt_write_all(fd, content, strlen(content), tmp, &le);
		if (!rc && fsync(fd))
			rc = ckpt_error_errno(&le, tmp, "cannot fsync");
		close(fd);
		if (!rc && link(tmp, path))
			rc = errno == EEXIST ? 1 : ckpt_error_errno(&le, path,
			    "cannot create lock");
		unlink(tmp);
		free(tmp);
		if (rc >= 0) {
			free(path);
			return rc == 1 ? CKPT_ERR_EXISTS : CKPT_OK;
		}
	}
	if (!no_space(le.sys_errno) || !fallback) {
		free(path);
		if (err)
			*err = le;
		return le.code ? le.code : CKPT_ERR_IO;
	}
	/* A full filesystem: gc and prune must still run to free space. */
	if (!symlink(fallback, path)) {
		*used_fallback = true;
		rc = CKPT_OK;
	} else {
		rc = errno == EEXIST ? CKPT_ERR_EXISTS : ckpt_error_errno(err,
		    path, "cannot create lock");
	}
	free(path);
	return rc;
}

/* The lock's text: a file's content, or a symlink's target. */
static int
posix_lock_read(void *be, const char *key, char **text, int64_t *mtime,
    struct ckpt_error *err)
{
	const struct posix_be *pb = be;
	char *path = full_path(pb, key), *buf;
	struct stat st;
	ssize_t n;
	int rc;

	*text = NULL;
	if (!path)
		return ckpt_error_nomem(err);
	if (lstat(path, &st)) {
		rc = errno == ENOENT ? ckpt_error_set(err, CKPT_ERR_NOTFOUND,
		    path, -1, "no such file") : ckpt_error_errno(err, path,
		    "cannot stat");
		free(path);
		return rc;
	}
	if (mtime)
		*mtime = (int64_t)st.st_mtime;
	if (!S_ISLNK(st.st_mode)) {
		rc = ckpt_read_file(path, 64 * 1024, text, NULL, err);
		free(path);
		return rc;
	}
	buf = malloc(PATH_MAX);
	if (!buf) {
		free(path);
		return ckpt_error_nomem(err);
	}
	n = readlink(path, buf, PATH_MAX - 1);
	if (n < 0) {
		free(buf);
		rc = errno == ENOENT ? ckpt_error_set(err, CKPT_ERR_NOTFOUND,
		    path, -1, "no such file") : ckpt_error_errno(err, path,
		    "cannot read");
		free(path);
		return rc;
	}
	free(path);
	buf[n] = '\0';
	*text = buf;
	return CKPT_OK;
}

static int
posix_unlock(void *be, const char *key, const char *expected,
    struct ckpt_error *err)
{
	const struct posix_be *pb = be;
	char *text = NULL, *path;
	int rc;

	if ((rc = posix_lock_read(be, key, &text, NULL, err)))
		return rc;
	if (strcmp(text, expected)) {
		free(text);
		return ckpt_error_set(err, CKPT_ERR_EXISTS, key, -1,
		    "the lock is someone else's now");
	}
	free(text);
	if (!(path = full_path(pb, key)))
		return ckpt_error_nomem(err);
	rc = unlink(path) ? ckpt_error_errno(err, path, "cannot remove") :
	    CKPT_OK;
	free(path);
	return rc;
}

/* ---- Checkpoints ---- */

static int
rename_noreplace(const char *from, const char *to, struct ckpt_error *err)
{
	if (!renameat2(AT_FDCWD, from, AT_FDCWD, to, RENAME_NOREPLACE))
		return CKPT_OK;
	if (errno == EEXIST)
		return ckpt_error_set(err, CKPT_ERR_EXISTS, to, -1,
		    "exists already");
	if (errno != EINVAL && errno != ENOSYS && errno != EOPNOTSUPP)
		return ckpt_error_errno(err, to, "cannot rename %s to", from);
	/*
	 * No RENAME_NOREPLACE here (NFS, older kernels): we hold the store
	 * lock, so no other ckpt commits meanwhile, and rename(2) cannot
	 * replace a non-empty directory, which every checkpoint is.
	 */
	if (!access(to, F_OK))
		return ckpt_error_set(err, CKPT_ERR_EXISTS, to, -1,
		    "exists already");
	if (rename(from, to))
		return ckpt_error_errno(err, to, "cannot rename %s to", from);
	return CKPT_OK;
}

static int
posix_commit_if_absent(void *be, const char *stage, const char *final,
    struct ckpt_error *err)
{
	const struct posix_be *pb = be;
	char *from = full_path(pb, stage), *to = full_path(pb, final);
	int rc = from && to ? rename_noreplace(from, to, err) :
	    ckpt_error_nomem(err);

	free(from);
	free(to);
	return rc;
}

/* Creates the trash; it must be a directory of the store, not a link. */
static int
ensure_trash(const struct posix_be *pb, struct ckpt_error *err)
{
	char *dir = full_path(pb, CKPT_STORE_TRASH);
	int rc = 0, fd;

	if (!dir)
		return ckpt_error_nomem(err);
	if (mkdir(dir, 0777) && errno != EEXIST)
		rc = ckpt_error_errno(err, dir, "cannot create the trash");
	free(dir);
	if (rc)
		return rc;
	fd = open_dir(pb, CKPT_STORE_TRASH, err);
	if (fd == CKPT_ERR_NOTFOUND)
		return ckpt_error_set(err, CKPT_ERR_IO, CKPT_STORE_TRASH, -1,
		    "vanished after it was created");
	if (fd < 0)
		return fd;
	close(fd);
	return 0;
}

/*
 * Renames key into the trash without following a symbolic link anywhere
 * below the store root: its directory and the trash are opened with
 * O_NOFOLLOW, and key must still be a directory, not a link to one.
 */
static int
posix_trash(void *be, const char *key, const char *name,
    struct ckpt_error *err)
{
	const struct posix_be *pb = be;
	const char *base;
	struct stat st;
	int rfd, tfd, rc;

	if ((rc = ensure_trash(pb, err)))
		return rc;
	if ((rfd = open_parent(pb, key, &base, err)) < 0)
		return rfd;
	if ((tfd = open_dir(pb, CKPT_STORE_TRASH, err)) < 0) {
		close(rfd);
		return tfd;
	}
	if (fstatat(rfd, base, &st, AT_SYMLINK_NOFOLLOW))
		rc = key_errno(pb, key, "cannot stat", err);
	else if (!S_ISDIR(st.st_mode)) {
		errno = ELOOP;
		rc = key_errno(pb, key, "cannot move", err);
	} else if (renameat(rfd, base, tfd, name))
		rc = key_errno(pb, key, "cannot move", err);
	close(rfd);
	close(tfd);
	return rc;
}

/*
 * Removes name under dfd, recursively, never following symlinks and never
 * leaving the filesystem.  A name that vanished meanwhile is fine (another
 * gc got there first).  Returns 0 or -1 with errno.
 */
static int
rm_rf_at(int dfd, const char *name, int depth)
{
	struct dirent *de;
	DIR *d;
	int fd, rc = 0, saved = 0;

	if (!unlinkat(dfd, name, 0) || errno == ENOENT)
		return 0;
	if (errno != EISDIR && errno != EPERM)
		return -1;
	if (depth > RM_MAX_DEPTH) {
		errno = ELOOP;
		return -1;
	}
	fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
	    O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? 0 : -1;
	d = fdopendir(fd);
	if (!d) {
		saved = errno;
		close(fd);
		errno = saved;
		return -1;
	}
	/* the manifest first: a half-deleted directory is never complete */
	if (unlinkat(fd, CKPT_MANIFEST_NAME, 0) && errno != ENOENT)
		saved = errno;
	/*
	 * Another deleter of the same entry (gc beside prune) or a late
	 * writer may leave a name our pass did not see: "Directory not
	 * empty" then means "look again", a few times.
	 */
	for (int pass = 0; pass < 5; pass++) {
		if (pass)
			rewinddir(d);
		for (;;) {
			errno = 0;
			if (!(de = readdir(d))) {
				if (errno && !saved)
					saved = errno;
				break;
			}
			if (!strcmp(de->d_name, ".") ||
			    !strcmp(de->d_name, ".."))
				continue;
			if (rm_rf_at(fd, de->d_name, depth + 1) && !saved)
				saved = errno;
		}
		if (!unlinkat(dfd, name, AT_REMOVEDIR) || errno == ENOENT)
			break;
		if (errno != ENOTEMPTY && errno != EEXIST) {
			if (!saved)
				saved = errno;
			break;
		}
		if (pass == 4 && !saved)
			saved = errno;
	}
	closedir(d);
	if (saved) {
		errno = saved;
		rc = -1;
	}
	return rc;
}

int
ckpt_rm_rf(const char *path)
{
	char *dir = ckpt_dirname(path);
	const char *base = strrchr(path, '/');
	int dfd, rc, saved;

	if (!dir)
		return -1;
	/* never through a symbolic link: the trash must be the store's */
	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	free(dir);
	if (dfd < 0)
		return -1;
	rc = rm_rf_at(dfd, base ? base + 1 : path, 0);
	saved = errno;
	close(dfd);
	errno = saved;
	return rc;
}

static int
posix_remove_tree(void *be, const char *key, struct ckpt_error *err)
{
	const struct posix_be *pb = be;
	const char *base;
	int dfd, rc = CKPT_OK;

	/* never through a symbolic link: the trash must be the store's */
	if ((dfd = open_parent(pb, key, &base, err)) < 0)
		return dfd == CKPT_ERR_NOTFOUND ? CKPT_OK : dfd;
	if (rm_rf_at(dfd, base, 0))
		rc = key_errno(pb, key, "cannot remove", err);
	close(dfd);
	return rc;
}

static int
posix_flush(void *be, const char *prefix, struct ckpt_error *err)
{
	const struct posix_be *pb = be;
	int fd = open_dir(pb, prefix, err), rc = CKPT_OK;

	if (fd < 0)
		return fd;
	/* some filesystems refuse fsync on directories: not an error */
	if (fsync(fd) && errno != EINVAL && errno != EBADF) {
		char *path = full_path(pb, prefix);

		rc = ckpt_error_errno(err, path ? path : prefix,
		    "cannot fsync");
		free(path);
	}
	close(fd);
	return rc;
}

/* Bytes of the regular files under name (no symlinks followed). */
static uint64_t
du_at(int dfd, const char *name, int depth)
{
	struct stat st;
	struct dirent *de;
	uint64_t total = 0;
	DIR *d;
	int fd;

	if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW))
		return 0;
	if (!S_ISDIR(st.st_mode))
		return S_ISREG(st.st_mode) ? (uint64_t)st.st_size : 0;
	if (depth > RM_MAX_DEPTH)
		return 0;
	fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
	    O_CLOEXEC);
	if (fd < 0)
		return 0;
	d = fdopendir(fd);
	if (!d) {
		close(fd);
		return 0;
	}
	while ((de = readdir(d)))
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
			total += du_at(fd, de->d_name, depth + 1);
	closedir(d);
	return total;
}

static uint64_t
posix_usage(void *be, const char *key)
{
	const struct posix_be *pb = be;
	const char *base;
	uint64_t n;
	int dfd = open_parent(pb, key, &base, NULL);

	if (dfd < 0)
		return 0;
	n = du_at(dfd, base, 0);
	close(dfd);
	return n;
}

/* ---- Shared with backend-posix-stage.c (backend-posix.h) ---- */

char *
ckpt_posix_path(const void *be, const char *key)
{
	return full_path(be, key);
}

int
ckpt_posix_open_dir(const void *be, const char *key, struct ckpt_error *err)
{
	return open_dir(be, key, err);
}

int
ckpt_posix_open_parent(const void *be, const char *key, const char **base,
    struct ckpt_error *err)
{
	return open_parent(be, key, base, err);
}

int
ckpt_posix_key_errno(const void *be, const char *key, const char *what,
    struct ckpt_error *err)
{
	return key_errno(be, key, what, err);
}

int
ckpt_posix_rename_noreplace(const char *from, const char *to,
    struct ckpt_error *err)
{
	return rename_noreplace(from, to, err);
}

int
ckpt_posix_ensure_trash(const void *be, struct ckpt_error *err)
{
	return ensure_trash(be, err);
}

const struct ckpt_backend_ops ckpt_backend_posix = {
	.version = CKPT_BACKEND_VERSION,
	.name = "posix",
	.open = ckpt_posix_open,
	.close = posix_close,
	.read = posix_read,
	.stat = posix_stat,
	.list = posix_list,
	.put = posix_put,
	.remove = posix_remove,
	.lock = posix_lock,
	.lock_read = posix_lock_read,
	.unlock = posix_unlock,
	.commit_if_absent = posix_commit_if_absent,
	.trash = posix_trash,
	.remove_tree = posix_remove_tree,
	.flush = posix_flush,
	.usage = posix_usage,
	.create = ckpt_posix_create,
	.mkprefix = ckpt_posix_mkprefix,
	.rmprefix = ckpt_posix_rmprefix,
	.stage_begin = ckpt_posix_stage_begin,
	.stage_file = ckpt_posix_stage_file,
	.stage_untake = ckpt_posix_stage_untake,
	.stage_record = ckpt_posix_stage_record,
	.stage_sync = ckpt_posix_stage_sync,
	.stage_abort = ckpt_posix_stage_abort,
	.commit_replace = ckpt_posix_commit_replace,
	.copy = ckpt_posix_copy,
};
