/* SPDX-License-Identifier: MIT */
/*
 * fs.c - the file helpers every layer uses, so that durability and path
 * handling are got right once: joining paths, reading a whole file,
 * writing all of a buffer, fsync of a directory, the one way to create a
 * temporary file (a unique name, O_EXCL|O_NOFOLLOW, as mkstemp), and the
 * atomic write-temp/fsync/rename/fsync-directory replacement of a file.
 */
#include "util/internal.h"

#include <fcntl.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "util/util.h"


char *
ckpt_join(const char *a, const char *b)
{
	char *p;

	if (asprintf(&p, "%s/%s", a, b) < 0)
		return NULL;
	return p;
}

char *
ckpt_dirname(const char *path)
{
	const char *slash = strrchr(path, '/');

	if (!slash)
		return strdup(".");
	if (slash == path)
		return strdup("/");
	return strndup(path, (size_t)(slash - path));
}

int
ckpt_read_fd(int fd, size_t max, char **out, size_t *len)
{
	struct stat st;
	size_t done = 0;
	char *buf;
	int e;

	if (fstat(fd, &st))
		return -1;
	if (!S_ISREG(st.st_mode)) {
		errno = EINVAL;
		return -1;
	}
	if ((uint64_t)st.st_size > max) {
		errno = EFBIG;
		return -1;
	}
	buf = malloc((size_t)st.st_size + 1);
	if (!buf) {
		errno = ENOMEM;
		return -1;
	}
	while (done < (size_t)st.st_size) {
		ssize_t n = read(fd, buf + done, (size_t)st.st_size - done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			e = errno;
			free(buf);
			errno = e;
			return -1;
		}
		if (n == 0)
			break;		/* shrank: take what is there */
		done += (size_t)n;
	}
	buf[done] = '\0';
	*out = buf;
	if (len)
		*len = done;
	return 0;
}

int
ckpt_read_file(const char *path, size_t max, char **out, size_t *len,
    struct ckpt_error *err)
{
	struct stat st;
	int fd, rc = CKPT_OK;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? ckpt_error_set(err, CKPT_ERR_NOTFOUND,
		    path, -1, "no such file") : ckpt_error_errno(err, path,
		    "cannot open");
	if (ckpt_read_fd(fd, max, out, len)) {
		if (errno == EINVAL)
			rc = ckpt_error_set(err, CKPT_ERR_INVALID, path, -1,
			    "not a regular file");
		else if (errno == EFBIG && !fstat(fd, &st))
			rc = ckpt_error_set(err, CKPT_ERR_LIMIT, path, -1,
			    "file of %lld bytes exceeds the limit of %zu "
			    "bytes", (long long)st.st_size, max);
		else if (errno == ENOMEM)
			rc = ckpt_error_nomem(err);
		else
			rc = ckpt_error_errno(err, path, "cannot read");
	}
	close(fd);
	return rc;
}

int
ckpt_write_all(int fd, const void *buf, size_t len, const char *path,
    struct ckpt_error *err)
{
	const char *p = buf;

	while (len) {
		ssize_t n = write(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return ckpt_error_errno(err, path, "cannot write");
		p += n;
		len -= (size_t)n;
	}
	return CKPT_OK;
}

int
ckpt_fsync_dir(const char *path, struct ckpt_error *err)
{
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd < 0)
		return ckpt_error_errno(err, path, "cannot open directory");
	/* EINVAL: the filesystem cannot sync directories; nothing to do. */
	if (fsync(fd) && errno != EINVAL) {
		int rc = ckpt_error_errno(err, path, "cannot fsync directory");

		close(fd);
		return rc;
	}
	close(fd);
	return CKPT_OK;
}

int
ckpt_write_file_atomic(const char *path, const void *data, size_t len,
    struct ckpt_error *err)
{
	return ckpt_write_file_replace(path, data, len, true, err);
}

/* Six random characters of [a-z0-9]: 36^6 names per prefix. */
static void
random_suffix(char *out, size_t n)
{
	static const char set[] = "abcdefghijklmnopqrstuvwxyz0123456789";
	unsigned char r[16];

	if (getrandom(r, sizeof(r), GRND_NONBLOCK) != (ssize_t)sizeof(r)) {
		struct timespec ts;
		uint64_t x;

		/* No entropy yet (early boot): O_EXCL still keeps it safe. */
		clock_gettime(CLOCK_MONOTONIC, &ts);
		x = (uint64_t)ts.tv_nsec * 0x9e3779b97f4a7c15ULL ^
		    (uint64_t)getpid() << 32 ^ (uint64_t)ts.tv_sec;
		for (size_t i = 0; i < sizeof(r); i++, x >>= 4)
			r[i] = (unsigned char)(x * (i + 7));
	}
	for (size_t i = 0; i < n && i < sizeof(r); i++)
		out[i] = set[r[i] % (sizeof(set) - 1)];
}

int
ckpt_tempfile(const char *path, mode_t mode, char **tmp,
    struct ckpt_error *err)
{
	char *name;
	size_t n;

	if (asprintf(&name, "%s.tmp.XXXXXX", path) < 0)
		return ckpt_error_nomem(err);
	n = strlen(name);
	for (int tries = 0; tries < 100; tries++) {
		int fd;

		random_suffix(name + n - 6, 6);
		/* O_EXCL: never an existing file, nor a symlink planted at
		 * the name (O_CREAT|O_EXCL does not follow one); O_NOFOLLOW
		 * says so once more for readers. */
		fd = open(name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW |
		    O_CLOEXEC, mode);
		if (fd >= 0) {
			*tmp = name;
			return fd;
		}
		if (errno != EEXIST) {
			int rc = ckpt_error_errno(err, name, "cannot create");

			free(name);
			return rc;
		}
	}
	free(name);
	return ckpt_error_set(err, CKPT_ERR_IO, path, -1,
	    "cannot find a free temporary name beside it");
}

int
ckpt_write_file_replace(const char *path, const void *data, size_t len,
    bool durable, struct ckpt_error *err)
{
	char *tmp, *dir;
	int fd, rc;

	fd = ckpt_tempfile(path, 0644, &tmp, err);
	if (fd < 0)
		return fd;
	rc = ckpt_write_all(fd, data, len, tmp, err);
	/* Any fsync error fails the write: no retry-and-trust (fsyncgate). */
	if (!rc && durable && fsync(fd))
		rc = ckpt_error_errno(err, tmp, "cannot fsync");
	if (close(fd) && !rc)
		rc = ckpt_error_errno(err, tmp, "cannot close");
	/* rename(2) replaces a symlink at path, never its target. */
	if (!rc && rename(tmp, path))
		rc = ckpt_error_errno(err, path, "cannot rename %s into place",
		    tmp);
	if (rc) {
		unlink(tmp);
		free(tmp);
		return rc;
	}
	free(tmp);
	if (!durable)
		return CKPT_OK;
	dir = ckpt_dirname(path);
	if (!dir)
		return ckpt_error_nomem(err);
	rc = ckpt_fsync_dir(dir, err);
	free(dir);
	return rc;
}
