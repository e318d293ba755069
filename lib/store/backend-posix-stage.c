/* SPDX-License-Identifier: MIT */
/*
 * backend-posix-stage.c - the POSIX backend's version-2 operations
 * (backend.h): creating a store's directory, prefixes as directories,
 * and save's staging area as a directory beside the run's checkpoints,
 * on the same filesystem so that the commit is one rename(2).  This is
 * the code save.c and store.c ran themselves before the seam, moved here
 * unchanged in what it does: --move renames, --link and adopt hard-link,
 * --copy uses copy_file_range(2) and never widens a source's mode.
 */
#include "util/internal.h"

#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store/backend.h"
#include "store/backend-posix.h"
#include "store/store.h"

#define MAX_DEPTH	64
#define COPY_BUF	((size_t)1 << 20)
#define COPY_CHUNK	((size_t)64 << 20)

/* ---- Creating a store ---- */

static int
mkdir_p(const char *path, struct ckpt_error *err)
{
	char buf[PATH_MAX];
	size_t n = strlen(path);

	if (n >= sizeof(buf))
		return ckpt_error_set(err, CKPT_ERR_INVALID, path, -1,
		    "path too long");
	memcpy(buf, path, n + 1);
	for (size_t i = 1; i <= n; i++) {
		if (buf[i] != '/' && buf[i] != '\0')
			continue;
		buf[i] = '\0';
		if (mkdir(buf, 0777) && errno != EEXIST)
			return ckpt_error_errno(err, buf, "cannot create "
			    "directory");
		buf[i] = path[i];
	}
	return CKPT_OK;
}

int
ckpt_posix_create(const char *location, void **be, struct ckpt_error *err)
{
	struct stat st;
	int rc;

	if (stat(location, &st)) {
		if (errno != ENOENT)
			return ckpt_error_errno(err, location, "cannot stat");
		if ((rc = mkdir_p(location, err)))
			return rc;
	} else if (!S_ISDIR(st.st_mode)) {
		return ckpt_error_set(err, CKPT_ERR_INVALID, location, -1,
		    "not a directory");
	}
	return ckpt_posix_open(location, be, err);
}

int
ckpt_posix_mkprefix(void *be, const char *key, bool *made,
    struct ckpt_error *err)
{
	const char *base;
	int dfd, fd, rc = CKPT_OK;

	if (made)
		*made = false;
	if (*key) {
		if ((dfd = ckpt_posix_open_parent(be, key, &base, err)) < 0)
			return dfd;
		if (!mkdirat(dfd, base, 0777)) {
			if (made)
				*made = true;
			/* durably: its name is in its parent */
			if (fsync(dfd) && errno != EINVAL && errno != EBADF)
				rc = ckpt_posix_key_errno(be, key, "cannot "
				    "fsync the directory holding", err);
		} else if (errno != EEXIST) {
			rc = ckpt_posix_key_errno(be, key, "cannot create "
			    "directory", err);
		}
		close(dfd);
		if (rc)
			return rc;
	}
	/* What is there now must be a directory of the store: not a link,
	 * not a file that had the name. */
	if ((fd = ckpt_posix_open_dir(be, key, err)) < 0)
		return fd == CKPT_ERR_NOTFOUND ? ckpt_error_set(err,
		    CKPT_ERR_IO, key, -1, "vanished after it was created") :
		    fd;
	close(fd);
	return CKPT_OK;
}

int
ckpt_posix_rmprefix(void *be, const char *key, struct ckpt_error *err)
{
	const char *base;
	int dfd, rc = CKPT_OK;

	if ((dfd = ckpt_posix_open_parent(be, key, &base, err)) < 0)
		return dfd == CKPT_ERR_NOTFOUND ? CKPT_OK : dfd;
	if (unlinkat(dfd, base, AT_REMOVEDIR) && errno != ENOENT) {
		if (errno == ENOTEMPTY || errno == EEXIST) {
			char *p = ckpt_posix_path(be, key);

			rc = ckpt_error_set(err, CKPT_ERR_EXISTS, p ? p : key,
			    -1, "not empty");
			free(p);
		} else {
			rc = ckpt_posix_key_errno(be, key, "cannot remove",
			    err);
		}
	}
	close(dfd);
	return rc;
}

/* ---- Bringing files in ---- */

int
ckpt_copy_file(const char *src, const char *dst, struct ckpt_error *err)
{
	int in, out, rc = CKPT_OK;
	struct stat st;

	in = open(src, O_RDONLY | O_CLOEXEC);
	if (in < 0)
		return ckpt_error_errno(err, src, "cannot open");
	if (fstat(in, &st)) {
		close(in);
		return ckpt_error_errno(err, src, "cannot stat");
	}
	/* The source's permission bits, less the umask: a copy of a 0600
	 * file is never readable by more people than the file. */
	out = open(dst, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
	    st.st_mode & 0777);
	if (out < 0) {
		close(in);
		return ckpt_error_errno(err, dst, "cannot create");
	}
	posix_fadvise(in, 0, 0, POSIX_FADV_SEQUENTIAL);
	for (;;) {
		ssize_t n;

		/* Chunks of 64 MiB: a SIGINT is noticed within one. */
		if (ckpt_interrupt_pending()) {
			rc = ckpt_error_interrupted(err, "copying");
			break;
		}
		n = copy_file_range(in, NULL, out, NULL, COPY_CHUNK, 0);
		if (n > 0)
			continue;
		if (n == 0)
			break;
		if (errno == EINTR)
			continue;
		if (errno == EXDEV || errno == ENOSYS || errno == EINVAL ||
		    errno == EOPNOTSUPP) {
			/* Fall back to read/write from where we are. */
			char *buf = malloc(COPY_BUF);

			if (!buf) {
				rc = ckpt_error_nomem(err);
				break;
			}
			for (;;) {
				ssize_t r;

				if (ckpt_interrupt_pending()) {
					rc = ckpt_error_interrupted(err,
					    "copying");
					break;
				}
				r = read(in, buf, COPY_BUF);
				if (r < 0 && errno == EINTR)
					continue;
				if (r < 0) {
					rc = ckpt_error_errno(err, src,
					    "cannot read");
					break;
				}
				if (!r)
					break;
				if ((rc = ckpt_write_all(out, buf, (size_t)r,
				    dst, err)))
					break;
			}
			free(buf);
			break;
		}
		rc = ckpt_error_errno(err, dst, "cannot copy into");
		break;
	}
	close(in);
	if (close(out) && !rc)
		rc = ckpt_error_errno(err, dst, "cannot close");
	return rc;
}

static int
mirror(const char *src, const char *dst, ckpt_mirror_leaf_fn leaf,
    void *data, int depth, struct ckpt_error *err)
{
	struct stat st;
	struct dirent *de;
	DIR *d;
	int rc = CKPT_OK;

	if (lstat(src, &st))
		return ckpt_error_errno(err, src, "cannot stat");
	if (S_ISREG(st.st_mode))
		return leaf(src, dst, &st, data, err);
	if (!S_ISDIR(st.st_mode) || depth > MAX_DEPTH)
		return ckpt_error_set(err, CKPT_ERR_INVALID, src, -1,
		    "not a regular file or directory");
	/* Never wider than the source directory (the owner keeps rwx to
	 * fill it). */
	if (mkdir(dst, (st.st_mode & 0777) | 0700))
		return ckpt_error_errno(err, dst, "cannot create directory");
	d = opendir(src);
	if (!d)
		return ckpt_error_errno(err, src, "cannot open directory");
	while (!rc && (de = readdir(d))) {
		char *s, *t;

		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		s = ckpt_join(src, de->d_name);
		t = ckpt_join(dst, de->d_name);
		rc = s && t ? mirror(s, t, leaf, data, depth + 1, err) :
		    ckpt_error_nomem(err);
		free(s);
		free(t);
	}
	closedir(d);
	return rc;
}

int
ckpt_mirror_tree(const char *src, const char *dst, ckpt_mirror_leaf_fn leaf,
    void *data, struct ckpt_error *err)
{
	return mirror(src, dst, leaf, data, 0, err);
}

/* How stage_file brings a file in that it does not move. */
enum clone_how {
	CLONE_COPY,		/* copy_file_range */
	CLONE_LINK,		/* a hard link, or fail */
	CLONE_LINK_OR_COPY	/* a hard link, else (other device) a copy */
};

static int
clone_leaf(const char *src, const char *dst, const struct stat *st,
    void *data, struct ckpt_error *err)
{
	enum clone_how how = *(const enum clone_how *)data;

	(void)st;
	if (how == CLONE_COPY)
		return ckpt_copy_file(src, dst, err);
	if (!link(src, dst))
		return CKPT_OK;
	if (how == CLONE_LINK_OR_COPY && (errno == EXDEV || errno == EPERM ||
	    errno == EMLINK))
		return ckpt_copy_file(src, dst, err);
	return ckpt_error_errno(err, dst, "cannot hard-link %s to", src);
}

/* ---- The staging area ---- */

/* STAGE/rel as a path, rel one component of a staging area. */
static char *
staged_path(void *be, const char *stage, const char *rel,
    struct ckpt_error *err)
{
	char *dir, *p;

	if (!*rel || strchr(rel, '/') || !strcmp(rel, ".") ||
	    !strcmp(rel, "..")) {
		ckpt_error_set(err, CKPT_ERR_INVALID, rel, -1, "not one name "
		    "of a staging area");
		return NULL;
	}
	if (!(dir = ckpt_posix_path(be, stage))) {
		ckpt_error_nomem(err);
		return NULL;
	}
	p = ckpt_join(dir, rel);
	free(dir);
	if (!p)
		ckpt_error_nomem(err);
	return p;
}

static int
write_record(const char *dir, const char *record, size_t len, bool durable,
    struct ckpt_error *err)
{
	char *p = ckpt_join(dir, CKPT_STAGING_NAME);
	int rc;

	if (!p)
		return ckpt_error_nomem(err);
	rc = ckpt_write_file_replace(p, record, len, durable, err);
	free(p);
	return rc;
}

/*
 * The area is made under a name that ls and gc do not take for a staging
 * directory (.new-NAME.RANDOM), the record is written and synced, and
 * only then is it renamed to .tmp-NAME.RANDOM.  So a .tmp-* directory
 * always has the record that says whose it is, and gc never takes a live
 * save's directory for an abandoned one.  A .new-* left by a crash holds
 * nothing of the user's (files come in after the rename); gc removes it
 * once the pid in its name is gone.
 */
int
ckpt_posix_stage_begin(void *be, const char *dir, const char *name,
    const char *record, size_t len, char **stage, char **local,
    struct ckpt_error *err)
{
	char *dpath, *tmpl = NULL, *final = NULL;
	size_t pre;
	int fd, rc;

	*stage = *local = NULL;
	/* The run must be a directory of the store, not a link out. */
	if ((fd = ckpt_posix_open_dir(be, dir, err)) < 0)
		return fd;
	close(fd);
	if (!(dpath = ckpt_posix_path(be, dir)))
		return ckpt_error_nomem(err);
	pre = strlen(dpath) + 1;
	if (asprintf(&tmpl, "%s/%s%s.XXXXXX", dpath, CKPT_STAGING_NEW_PREFIX,
	    name) < 0) {
		free(dpath);
		return ckpt_error_nomem(err);
	}
	if (!mkdtemp(tmpl)) {
		rc = ckpt_error_errno(err, dpath, "cannot create a staging "
		    "directory in");
		goto out;
	}
	chmod(tmpl, 0755);
	if (asprintf(&final, "%.*s%s%s", (int)pre, tmpl, CKPT_STAGING_PREFIX,
	    tmpl + pre + strlen(CKPT_STAGING_NEW_PREFIX)) < 0) {
		final = NULL;
		rc = ckpt_error_nomem(err);
	} else if (write_record(tmpl, record, len, true, NULL)) {
		/* Not best effort: without it, moved files could not be
		 * found. */
		rc = ckpt_error_set(err, CKPT_ERR_IO, tmpl, -1, "cannot write "
		    "the staging record in");
	} else if (rename(tmpl, final)) {
		rc = ckpt_error_errno(err, final, "cannot rename %s to",
		    tmpl);
	} else {
		rc = ckpt_fsync_dir(dpath, err);
		if (rc) {
			free(tmpl);
			tmpl = final;	/* undo below removes it */
			final = NULL;
		}
	}
	if (rc) {
		char *rec = ckpt_join(tmpl, CKPT_STAGING_NAME);

		if (rec)
			unlink(rec);
		free(rec);
		rmdir(tmpl);
		goto out;
	}
	*local = final;
	final = NULL;
	if (asprintf(stage, "%s%s%s", dir, *dir ? "/" : "", *local + pre) <
	    0) {
		*stage = NULL;
		rc = ckpt_error_nomem(err);
	}
out:
	free(dpath);
	free(tmpl);
	free(final);
	return rc;
}

int
ckpt_posix_stage_file(void *be, const char *stage, const char *rel,
    const char *src, unsigned int flags, bool *taken,
    struct ckpt_error *err)
{
	char *dst = staged_path(be, stage, rel, err);
	int rc;

	if (taken)
		*taken = false;
	if (!dst)
		return err ? err->code : CKPT_ERR_INVALID;
	if (flags & CKPT_BE_STAGE_TAKE) {
		rc = rename(src, dst) ? ckpt_error_errno(err, src,
		    "cannot move into %s", dst) : CKPT_OK;
		if (!rc && taken)
			*taken = true;
	} else {
		enum clone_how how = flags & CKPT_BE_STAGE_SHARE_ONLY ?
		    CLONE_LINK : flags & CKPT_BE_STAGE_SHARE ?
		    CLONE_LINK_OR_COPY : CLONE_COPY;

		rc = ckpt_mirror_tree(src, dst, clone_leaf, &how, err);
	}
	free(dst);
	return rc;
}

int
ckpt_posix_stage_untake(void *be, const char *stage, const char *rel,
    const char *dst, struct ckpt_error *err)
{
	char *from = staged_path(be, stage, rel, err), *parent;
	struct stat st;
	int rc = CKPT_OK, e;

	if (!from)
		return err ? err->code : CKPT_ERR_INVALID;
	if (lstat(from, &st)) {
		rc = errno == ENOENT ? ckpt_error_set(err, CKPT_ERR_NOTFOUND,
		    from, -1, "not in the staging area") :
		    ckpt_error_errno(err, from, "cannot stat");
		free(from);
		return rc;
	}
	/* Never replaces: a file the user made at dst meanwhile is theirs,
	 * and stays. */
	if ((e = renameat2(AT_FDCWD, from, AT_FDCWD, dst, RENAME_NOREPLACE) ?
	    errno : 0) == EINVAL || e == ENOSYS || e == EOPNOTSUPP)
		e = !access(dst, F_OK) || errno != ENOENT ? EEXIST :
		    rename(from, dst) ? errno : 0;
	if (e == EEXIST) {
		rc = ckpt_error_set(err, CKPT_ERR_EXISTS, dst, -1, "exists "
		    "again; %s stays in the staging area", rel);
		if (err)
			err->sys_errno = EEXIST;
	} else if (e) {
		errno = e;
		rc = ckpt_error_errno(err, dst, "cannot move %s back to", rel);
	}
	free(from);
	if (rc)
		return rc;
	if ((parent = ckpt_dirname(dst))) {
		(void)ckpt_fsync_dir(parent, NULL);	/* the move is done */
		free(parent);
	}
	return CKPT_OK;
}

int
ckpt_posix_stage_record(void *be, const char *stage, const char *record,
    size_t len, bool durable, struct ckpt_error *err)
{
	char *dir = ckpt_posix_path(be, stage), *p;
	int rc;

	if (!dir)
		return ckpt_error_nomem(err);
	if (record) {
		rc = write_record(dir, record, len, durable, err);
		free(dir);
		return rc;
	}
	if (!(p = ckpt_join(dir, CKPT_STAGING_NAME))) {
		free(dir);
		return ckpt_error_nomem(err);
	}
	rc = unlink(p) && errno != ENOENT ? ckpt_error_errno(err, p,
	    "cannot remove") : ckpt_fsync_dir(dir, err);
	free(p);
	free(dir);
	return rc;
}

static int
fsync_tree_dirs(const char *dir, int depth, struct ckpt_error *err)
{
	struct dirent *de;
	DIR *d;
	int rc;

	if ((rc = ckpt_fsync_dir(dir, err)) || depth > MAX_DEPTH)
		return rc;
	d = opendir(dir);
	if (!d)
		return ckpt_error_errno(err, dir, "cannot open directory");
	while (!rc && (de = readdir(d))) {
		struct stat st;
		char *c;

		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		c = ckpt_join(dir, de->d_name);
		if (!c)
			rc = ckpt_error_nomem(err);
		else if (!lstat(c, &st) && S_ISDIR(st.st_mode))
			rc = fsync_tree_dirs(c, depth + 1, err);
		free(c);
	}
	closedir(d);
	return rc;
}

int
ckpt_posix_stage_sync(void *be, const char *stage, struct ckpt_error *err)
{
	char *dir = ckpt_posix_path(be, stage);
	int rc;

	if (!dir)
		return ckpt_error_nomem(err);
	rc = fsync_tree_dirs(dir, 0, err);
	free(dir);
	return rc;
}

int
ckpt_posix_stage_abort(void *be, const char *stage, struct ckpt_error *err)
{
	char *dir = ckpt_posix_path(be, stage);
	int rc = CKPT_OK;

	if (!dir)
		return ckpt_error_nomem(err);
	if (ckpt_rm_rf(dir) && errno != ENOENT)
		rc = ckpt_error_errno(err, dir, "cannot remove");
	free(dir);
	return rc;
}

/* ---- save --force ---- */

int
ckpt_posix_commit_replace(void *be, const char *stage, const char *final,
    const char *trash_name, struct ckpt_error *err)
{
	char *from = ckpt_posix_path(be, stage), *to = ckpt_posix_path(be,
	    final), *trash = NULL;
	char *tdir = ckpt_posix_path(be, CKPT_STORE_TRASH);
	int rc = CKPT_OK;

	if (!from || !to || !tdir || !(trash = ckpt_join(tdir, trash_name))) {
		rc = ckpt_error_nomem(err);
		goto out;
	}
	if ((rc = ckpt_posix_ensure_trash(be, err)))
		goto out;
	if (!renameat2(AT_FDCWD, from, AT_FDCWD, to, RENAME_EXCHANGE)) {
		/* One atomic step: the old checkpoint is now at stage. */
		if (rename(from, trash))
			rc = ckpt_error_errno(err, trash, "replaced, but cannot"
			    " move the old checkpoint %s to", from);
	} else if (rename(to, trash)) {
		rc = ckpt_error_errno(err, to, "cannot move to the trash");
	} else {
		rc = ckpt_posix_rename_noreplace(from, to, err);
	}
	if (!rc)
		(void)ckpt_fsync_dir(tdir, NULL);
out:
	free(from);
	free(to);
	free(tdir);
	free(trash);
	return rc;
}

/* ---- Version 3: the registry's copies ---- */

/* The directories above key, made as mkprefix makes them. */
static int
make_parents(void *be, const char *key, struct ckpt_error *err)
{
	char *k = strdup(key), *slash;
	int rc = CKPT_OK;

	if (!k)
		return ckpt_error_nomem(err);
	for (slash = k; !rc && (slash = strchr(slash, '/')); slash++) {
		*slash = '\0';
		rc = ckpt_posix_mkprefix(be, k, NULL, err);
		*slash = '/';
	}
	free(k);
	return rc;
}

static int
fsync_path(const char *path, struct ckpt_error *err)
{
	int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC), rc = CKPT_OK;

	if (fd < 0)
		return ckpt_error_errno(err, path, "cannot open");
	if (fsync(fd))
		rc = ckpt_error_errno(err, path, "cannot fsync");
	close(fd);
	return rc;
}

/*
 * A hard link unless told to copy or the filesystem refuses one (another
 * filesystem, no links), then a copy, synced (a link's data is the
 * source's, synced when it was saved).  The source's directories are
 * walked without following a link; the source must be a regular file.
 */
int
ckpt_posix_copy(void *be, const char *from, const char *to,
    unsigned int flags, bool *shared, struct ckpt_error *err)
{
	const char *sbase, *dbase;
	char *src = NULL, *dst = NULL;
	struct stat st;
	int sfd = -1, dfd = -1, rc;

	if (shared)
		*shared = false;
	if ((rc = make_parents(be, to, err)))
		return rc;
	if ((sfd = ckpt_posix_open_parent(be, from, &sbase, err)) < 0)
		return sfd;
	if ((dfd = ckpt_posix_open_parent(be, to, &dbase, err)) < 0) {
		rc = dfd;
		goto out;
	}
	if (fstatat(sfd, sbase, &st, AT_SYMLINK_NOFOLLOW)) {
		rc = ckpt_posix_key_errno(be, from, "cannot stat", err);
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		errno = S_ISLNK(st.st_mode) ? ELOOP : EINVAL;
		rc = S_ISLNK(st.st_mode) ? ckpt_posix_key_errno(be, from,
		    "cannot copy", err) : ckpt_error_set(err,
		    CKPT_ERR_FORMAT, from, -1, "not a regular file");
		goto out;
	}
	if (!(flags & CKPT_BE_COPY_INDEPENDENT)) {
		if (!linkat(sfd, sbase, dfd, dbase, 0)) {
			if (shared)
				*shared = true;
			goto out;
		}
		if (errno == EEXIST) {
			dst = ckpt_posix_path(be, to);
			rc = ckpt_error_set(err, CKPT_ERR_EXISTS,
			    dst ? dst : to, -1, "exists already");
			goto out;
		}
		if (errno != EXDEV && errno != EPERM && errno != EMLINK &&
		    errno != ENOTSUP && errno != EOPNOTSUPP) {
			rc = ckpt_posix_key_errno(be, errno == ENOENT ? from :
			    to, "cannot hard-link", err);
			goto out;
		}
	}
	src = ckpt_posix_path(be, from);
	dst = ckpt_posix_path(be, to);
	if (!src || !dst)
		rc = ckpt_error_nomem(err);
	else if (!(rc = ckpt_copy_file(src, dst, err)))
		rc = fsync_path(dst, err);
out:
	if (sfd >= 0)
		close(sfd);
	if (dfd >= 0)
		close(dfd);
	free(src);
	free(dst);
	return rc;
}
