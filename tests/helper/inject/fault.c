/* SPDX-License-Identifier: MIT */
/*
 * fault.c - an LD_PRELOAD shim for crash and failure tests (after jq's
 * inject_errors.c): it makes one call of write, fsync, fdatasync, rename,
 * renameat, renameat2, link, mkdir, unlink or unlinkat, or of the calls a
 * listing makes (opendir, readdir, stat, open), fail, or kills the process
 * with SIGKILL just before or after it, when the call's path matches a
 * pattern.  For calls on a descriptor the path is read from
 * /proc/self/fd; for the *at calls it is the directory's path, "/" and
 * the name.
 *
 *   CKPT_FAULT_OP      write (write, pwrite), read (pread: regular files),
 *                      fsync (fsync and fdatasync), rename (rename,
 *                      renameat, renameat2), link, mkdir, unlink (unlink,
 *                      unlinkat: the path is the directory's + "/" +
 *                      name), opendir (opendir, fdopendir, open/openat
 *                      with O_DIRECTORY), readdir (readdir, readdir64: a
 *                      listing cut short by EIO), stat (stat, lstat,
 *                      fstat, fstatat and their 64 forms), open (open,
 *                      openat without O_DIRECTORY), direct (pwrite
 *                      on a descriptor with O_DIRECT: "fail" gives
 *                      EINVAL, as from a filesystem or device that
 *                      refuses O_DIRECT), thread (pthread_create:
 *                      "fail" gives EAGAIN, as when a process may
 *                      start no more threads; the path is "-"), or any
 *   CKPT_FAULT_PATH    fnmatch(3) pattern (default "*"); a rename matches
 *                      on either path
 *   CKPT_FAULT_NTH     the Nth matching call is hit (default 1); "all":
 *                      every matching call
 *   CKPT_FAULT_ACTION  fail (EIO; ENOSPC for write), crash (SIGKILL
 *                      before the call), crash-after (SIGKILL after it),
 *                      or signal (sends itself CKPT_FAULT_SIGNAL, a
 *                      number, default SIGINT, just before the call: an
 *                      interrupt at an exact step), short (read and
 *                      write: do at most half of it, at least one
 *                      byte), run (runs CKPT_FAULT_RUN with system(3)
 *                      just before the call: a file changed by someone
 *                      else at an exact step), or delay (sleeps
 *                      CKPT_FAULT_DELAY_MS, default 200, then makes the
 *                      call: a slow disk, for progress output)
 *   CKPT_FAULT_ERRNO   the errno of "fail" for write (a number, default
 *                      ENOSPC): 22 (EINVAL) is a filesystem refusing an
 *                      O_DIRECT write
 *   CKPT_FAULT_LOG     a file that gets "call OP PATH" for each matching
 *                      call and "hit OP PATH" when the fault fires
 *
 * Only a process named "ckpt" is affected, so that the git and sh it
 * runs (which inherit LD_PRELOAD) are not.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static atomic_int counter;
/* The shim's own calls (log_line's open) are never faults. */
static __thread int busy;
/* Only the ckpt binary is hit, never git, sh or a load test it runs. */
static bool active;

__attribute__((constructor)) static void
init(void)
{
	active = !strcmp(program_invocation_short_name, "ckpt");
}

typedef ssize_t (*write_fn)(int, const void *, size_t);

static write_fn
real_write(void)
{
	static write_fn fn;

	if (!fn)
		fn = (write_fn)dlsym(RTLD_NEXT, "write");
	return fn;
}

static void
log_line(const char *what, const char *op, const char *path)
{
	const char *lp = getenv("CKPT_FAULT_LOG");
	char buf[4600];
	int fd, n;

	if (!lp)
		return;
	fd = open(lp, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0)
		return;
	n = snprintf(buf, sizeof(buf), "%s %s %s\n", what, op, path);
	if (n > 0 && (size_t)n < sizeof(buf))
		(void)!real_write()(fd, buf, (size_t)n);
	close(fd);
}

static bool
matches(const char *op, const char *a, const char *b)
{
	const char *o = getenv("CKPT_FAULT_OP");
	const char *pat = getenv("CKPT_FAULT_PATH");

	if (!active || !o || (strcmp(o, op) && strcmp(o, "any")))
		return false;
	if (!pat)
		pat = "*";
	return (a && !fnmatch(pat, a, 0)) || (b && !fnmatch(pat, b, 0));
}

enum action { PASS, FAIL, CRASH_AFTER, SHORT };

/* Decides what to do with a call; crashes right here for "crash". */
static enum action
decide(const char *op, const char *a, const char *b)
{
	const char *nth_s = getenv("CKPT_FAULT_NTH");
	const char *act = getenv("CKPT_FAULT_ACTION");
	bool every = nth_s && !strcmp(nth_s, "all");
	int nth = nth_s ? atoi(nth_s) : 1;	/* test code: atoi is fine */
	int n;

	if (busy || !matches(op, a, b))
		return PASS;
	n = atomic_fetch_add(&counter, 1) + 1;
	busy++;
	log_line(n == nth || every ? "hit" : "call", op, b ? b : a);
	busy--;
	if (n != nth && !every)
		return PASS;
	if (act && !strcmp(act, "crash")) {
		kill(getpid(), SIGKILL);
		pause();
	}
	if (act && !strcmp(act, "crash-after"))
		return CRASH_AFTER;
	if (act && !strcmp(act, "delay")) {
		const char *ms = getenv("CKPT_FAULT_DELAY_MS");

		usleep((useconds_t)(ms ? atoi(ms) : 200) * 1000);
		return PASS;
	}
	if (act && !strcmp(act, "signal")) {
		const char *sig = getenv("CKPT_FAULT_SIGNAL");

		kill(getpid(), sig ? atoi(sig) : SIGINT);
		return PASS;
	}
	if (act && !strcmp(act, "short"))
		return SHORT;
	if (act && !strcmp(act, "run")) {
		const char *cmd = getenv("CKPT_FAULT_RUN");

		busy++;
		if (cmd && system(cmd) != 0)
			log_line("run-failed", op, cmd);
		busy--;
		return PASS;
	}
	return FAIL;
}

/* The errno of a failed write: CKPT_FAULT_ERRNO, else ENOSPC. */
static int
write_errno(void)
{
	const char *e = getenv("CKPT_FAULT_ERRNO");

	return e ? atoi(e) : ENOSPC;
}

static const char *
fd_path(int fd, char *buf, size_t len)
{
	char link[64];
	ssize_t n;

	snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	n = readlink(link, buf, len - 1);
	if (n < 0)
		return NULL;
	buf[n] = '\0';
	return buf;
}

static void
after(enum action a)
{
	if (a == CRASH_AFTER) {
		kill(getpid(), SIGKILL);
		pause();
	}
}

ssize_t
write(int fd, const void *buf, size_t n)
{
	char p[4096];
	enum action a = PASS;
	ssize_t r;

	/* Only regular files: never the test's own stdout or pipes. */
	if (getenv("CKPT_FAULT_OP")) {
		struct stat st;

		if (!fstat(fd, &st) && S_ISREG(st.st_mode))
			a = decide("write", fd_path(fd, p, sizeof(p)), NULL);
	}
	if (a == FAIL) {
		errno = write_errno();
		return -1;
	}
	r = real_write()(fd, buf, a == SHORT && n > 1 ? n / 2 : n);
	after(a);
	return r;
}

/* The action for a read or write on fd: regular files only. */
static enum action
decide_fd(const char *op, int fd)
{
	char p[4096];
	struct stat st;

	if (!getenv("CKPT_FAULT_OP") || fstat(fd, &st) || !S_ISREG(st.st_mode))
		return PASS;
	return decide(op, fd_path(fd, p, sizeof(p)), NULL);
}

/* Whether a write on fd is a "direct" one: asked for, and fd has
 * O_DIRECT. */
static bool
fd_direct(int fd)
{
	const char *o = getenv("CKPT_FAULT_OP");
	int fl;

	if (!o || strcmp(o, "direct"))
		return false;
	fl = fcntl(fd, F_GETFL);
	return fl >= 0 && (fl & O_DIRECT);
}

#define PWRITE_CALL(name)						\
ssize_t									\
name(int fd, const void *buf, size_t n, off_t off)			\
{									\
	static ssize_t (*fn)(int, const void *, size_t, off_t);		\
	bool direct = fd_direct(fd);					\
	enum action a = decide_fd(direct ? "direct" : "write", fd);	\
	ssize_t r;							\
									\
	if (!fn)							\
		fn = (ssize_t (*)(int, const void *, size_t, off_t))	\
		    dlsym(RTLD_NEXT, #name);				\
	if (a == FAIL) {						\
		errno = direct ? EINVAL : write_errno();		\
		return -1;						\
	}								\
	r = fn(fd, buf, a == SHORT && n > 1 ? n / 2 : n, off);		\
	after(a);							\
	return r;							\
}

#define PREAD_CALL(name)						\
ssize_t									\
name(int fd, void *buf, size_t n, off_t off)				\
{									\
	static ssize_t (*fn)(int, void *, size_t, off_t);		\
	enum action a = decide_fd("read", fd);				\
	ssize_t r;							\
									\
	if (!fn)							\
		fn = (ssize_t (*)(int, void *, size_t, off_t))		\
		    dlsym(RTLD_NEXT, #name);				\
	if (a == FAIL) {						\
		errno = EIO;						\
		return -1;						\
	}								\
	r = fn(fd, buf, a == SHORT && n > 1 ? n / 2 : n, off);		\
	after(a);							\
	return r;							\
}

PWRITE_CALL(pwrite)
PWRITE_CALL(pwrite64)
PREAD_CALL(pread)
PREAD_CALL(pread64)

#define FD_CALL(name, op)						\
int									\
name(int fd)								\
{									\
	static int (*fn)(int);						\
	char p[4096];							\
	enum action a;							\
	int r;								\
									\
	if (!fn)							\
		fn = (int (*)(int))dlsym(RTLD_NEXT, #name);		\
	a = decide(op, fd_path(fd, p, sizeof(p)), NULL);		\
	if (a == FAIL) {						\
		errno = EIO;						\
		return -1;						\
	}								\
	r = fn(fd);							\
	after(a);							\
	return r;							\
}

FD_CALL(fsync, "fsync")
FD_CALL(fdatasync, "fsync")

int
rename(const char *from, const char *to)
{
	static int (*fn)(const char *, const char *);
	enum action a;
	int r;

	if (!fn)
		fn = (int (*)(const char *, const char *))dlsym(RTLD_NEXT,
		    "rename");
	a = decide("rename", from, to);
	if (a == FAIL) {
		errno = EIO;
		return -1;
	}
	r = fn(from, to);
	after(a);
	return r;
}

static const char *at_path(int dir, const char *name, char *buf,
    size_t len);

int
renameat(int fd1, const char *from, int fd2, const char *to)
{
	static int (*fn)(int, const char *, int, const char *);
	char pf[8192], pt[8192];
	enum action a;
	int r;

	if (!fn)
		fn = (int (*)(int, const char *, int, const char *))dlsym(
		    RTLD_NEXT, "renameat");
	a = decide("rename", at_path(fd1, from, pf, sizeof(pf)),
	    at_path(fd2, to, pt, sizeof(pt)));
	if (a == FAIL) {
		errno = EIO;
		return -1;
	}
	r = fn(fd1, from, fd2, to);
	after(a);
	return r;
}

int
renameat2(int fd1, const char *from, int fd2, const char *to,
    unsigned int flags)
{
	static int (*fn)(int, const char *, int, const char *, unsigned int);
	char pf[8192], pt[8192];
	enum action a;
	int r;

	if (!fn)
		fn = (int (*)(int, const char *, int, const char *,
		    unsigned int))dlsym(RTLD_NEXT, "renameat2");
	a = decide("rename", at_path(fd1, from, pf, sizeof(pf)),
	    at_path(fd2, to, pt, sizeof(pt)));
	if (a == FAIL) {
		errno = EIO;
		return -1;
	}
	r = fn(fd1, from, fd2, to, flags);
	after(a);
	return r;
}

int
link(const char *from, const char *to)
{
	static int (*fn)(const char *, const char *);
	enum action a;
	int r;

	if (!fn)
		fn = (int (*)(const char *, const char *))dlsym(RTLD_NEXT,
		    "link");
	a = decide("link", from, to);
	if (a == FAIL) {
		errno = EIO;
		return -1;
	}
	r = fn(from, to);
	after(a);
	return r;
}

int
mkdir(const char *path, mode_t mode)
{
	static int (*fn)(const char *, mode_t);
	enum action a;
	int r;

	if (!fn)
		fn = (int (*)(const char *, mode_t))dlsym(RTLD_NEXT, "mkdir");
	a = decide("mkdir", path, NULL);
	if (a == FAIL) {
		errno = EIO;
		return -1;
	}
	r = fn(path, mode);
	after(a);
	return r;
}

int
unlink(const char *path)
{
	static int (*fn)(const char *);
	enum action a;
	int r;

	if (!fn)
		fn = (int (*)(const char *))dlsym(RTLD_NEXT, "unlink");
	a = decide("unlink", path, NULL);
	if (a == FAIL) {
		errno = EIO;
		return -1;
	}
	r = fn(path);
	after(a);
	return r;
}

int
unlinkat(int dfd, const char *name, int flags)
{
	static int (*fn)(int, const char *, int);
	char dir[4096], full[8192];
	const char *p = name;
	enum action a;
	int r;

	if (!fn)
		fn = (int (*)(int, const char *, int))dlsym(RTLD_NEXT,
		    "unlinkat");
	if (name[0] != '/' && dfd != AT_FDCWD && fd_path(dfd, dir,
	    sizeof(dir))) {
		snprintf(full, sizeof(full), "%s/%s", dir, name);
		p = full;
	}
	a = decide("unlink", p, NULL);
	if (a == FAIL) {
		errno = EIO;
		return -1;
	}
	r = fn(dfd, name, flags);
	after(a);
	return r;
}

/* ---- the calls of a listing: opendir, readdir, stat, open ---- */

/* dir's path, "/" and name (name alone when absolute or AT_FDCWD). */
static const char *
at_path(int dir, const char *name, char *buf, size_t len)
{
	char d[4096];

	if (!name)
		return NULL;
	if (name[0] == '/' || dir == AT_FDCWD || !fd_path(dir, d, sizeof(d)))
		return name;
	snprintf(buf, len, "%s/%s", d, name);
	return buf;
}

#define REAL(name) \
	static __typeof__(&name) fn; \
	if (!fn) \
		fn = (__typeof__(&name))dlsym(RTLD_NEXT, #name)

static int
open_common(const char *sym, int dir, const char *path, int flags,
    mode_t mode)
{
	char p[8192];
	enum action a;
	int r;

	a = getenv("CKPT_FAULT_OP") ? decide(flags & O_DIRECTORY ? "opendir" :
	    "open", at_path(dir, path, p, sizeof(p)), NULL) : PASS;
	if (a == FAIL) {
		errno = EIO;
		return -1;
	}
	{
		static int (*fn)(int, const char *, int, ...);

		/* open(p) is openat(AT_FDCWD, p): one real call for all */
		if (!fn)
			fn = (int (*)(int, const char *, int, ...))dlsym(
			    RTLD_NEXT, "openat");
		(void)sym;
		r = fn(dir, path, flags, mode);
	}
	after(a);
	return r;
}

#define OPENAT_CALL(name)						\
int									\
name(int dir, const char *path, int flags, ...)				\
{									\
	mode_t mode = 0;						\
									\
	if (flags & (O_CREAT | __O_TMPFILE)) {				\
		va_list ap;						\
									\
		va_start(ap, flags);					\
		mode = (mode_t)va_arg(ap, int);				\
		va_end(ap);						\
	}								\
	return open_common(#name, dir, path, flags, mode);		\
}

#define OPEN_CALL(name, atname)						\
int									\
name(const char *path, int flags, ...)					\
{									\
	mode_t mode = 0;						\
									\
	if (flags & (O_CREAT | __O_TMPFILE)) {				\
		va_list ap;						\
									\
		va_start(ap, flags);					\
		mode = (mode_t)va_arg(ap, int);				\
		va_end(ap);						\
	}								\
	return open_common(#atname, AT_FDCWD, path, flags, mode);	\
}

OPENAT_CALL(openat)
OPENAT_CALL(openat64)
OPEN_CALL(open, openat)
OPEN_CALL(open64, openat64)

DIR *
opendir(const char *path)
{
	enum action a;
	DIR *d;

	REAL(opendir);
	a = decide("opendir", path, NULL);
	if (a == FAIL) {
		errno = EIO;
		return NULL;
	}
	d = fn(path);
	after(a);
	return d;
}

DIR *
fdopendir(int fd)
{
	char p[4096];
	enum action a;
	DIR *d;

	REAL(fdopendir);
	a = decide("opendir", fd_path(fd, p, sizeof(p)), NULL);
	if (a == FAIL) {
		errno = EIO;
		return NULL;
	}
	d = fn(fd);
	after(a);
	return d;
}

#define READDIR_CALL(name, type)					\
type *									\
name(DIR *d)								\
{									\
	char p[4096];							\
	enum action a;							\
	type *r;							\
									\
	REAL(name);					\
	a = getenv("CKPT_FAULT_OP") ? decide("readdir",			\
	    fd_path(dirfd(d), p, sizeof(p)), NULL) : PASS;		\
	if (a == FAIL) {						\
		errno = EIO;						\
		return NULL;						\
	}								\
	r = fn(d);							\
	after(a);							\
	return r;							\
}

READDIR_CALL(readdir, struct dirent)
READDIR_CALL(readdir64, struct dirent64)

#define STAT_CALL(name, type)						\
int									\
name(const char *path, type *st)					\
{									\
	enum action a;							\
	int r;								\
									\
	REAL(name);			\
	a = decide("stat", path, NULL);					\
	if (a == FAIL) {						\
		errno = EIO;						\
		return -1;						\
	}								\
	r = fn(path, st);						\
	after(a);							\
	return r;							\
}

#define FSTAT_CALL(name, type)						\
int									\
name(int fd, type *st)							\
{									\
	char p[4096];							\
	enum action a;							\
	int r;								\
									\
	REAL(name);				\
	a = getenv("CKPT_FAULT_OP") ? decide("stat",			\
	    fd_path(fd, p, sizeof(p)), NULL) : PASS;			\
	if (a == FAIL) {						\
		errno = EIO;						\
		return -1;						\
	}								\
	r = fn(fd, st);							\
	after(a);							\
	return r;							\
}

#define FSTATAT_CALL(name, type)					\
int									\
name(int dir, const char *path, type *st, int flags)			\
{									\
	char p[8192];							\
	enum action a;							\
	int r;								\
									\
	REAL(name);		\
	a = getenv("CKPT_FAULT_OP") ? decide("stat",			\
	    at_path(dir, path, p, sizeof(p)), NULL) : PASS;		\
	if (a == FAIL) {						\
		errno = EIO;						\
		return -1;						\
	}								\
	r = fn(dir, path, st, flags);					\
	after(a);							\
	return r;							\
}

STAT_CALL(stat, struct stat)
STAT_CALL(stat64, struct stat64)
STAT_CALL(lstat, struct stat)
STAT_CALL(lstat64, struct stat64)
FSTAT_CALL(fstat, struct stat)
FSTAT_CALL(fstat64, struct stat64)
FSTATAT_CALL(fstatat, struct stat)
FSTATAT_CALL(fstatat64, struct stat64)

typedef int (*thread_fn)(pthread_t *, const pthread_attr_t *,
    void *(*)(void *), void *);

int
pthread_create(pthread_t *t, const pthread_attr_t *attr,
    void *(*start)(void *), void *arg)
{
	static thread_fn real;
	enum action a = decide("thread", "-", NULL);

	if (a == FAIL)
		return EAGAIN;
	if (!real)
		real = (thread_fn)dlsym(RTLD_NEXT, "pthread_create");
	return real(t, attr, start, arg);
}
