/* SPDX-License-Identifier: MIT */
/*
 * fault.c - an LD_PRELOAD shim for crash and failure tests (after jq's
 * inject_errors.c): it makes one call of write, fsync, fdatasync, rename,
 * renameat, renameat2, link, mkdir, unlink or unlinkat fail, or kills the process
 * with SIGKILL just before or after it, when the call's path matches a
 * pattern.  For calls on a descriptor the path is read from
 * /proc/self/fd.
 *
 *   CKPT_FAULT_OP      write, fsync (fsync and fdatasync), rename (rename,
 *                      renameat, renameat2), link, mkdir, unlink (unlink,
 *                      unlinkat: the path is the directory's + "/" +
 *                      name), or any
 *   CKPT_FAULT_PATH    fnmatch(3) pattern (default "*"); a rename matches
 *                      on either path
 *   CKPT_FAULT_NTH     the Nth matching call is hit (default 1)
 *   CKPT_FAULT_ACTION  fail (EIO; ENOSPC for write), crash (SIGKILL
 *                      before the call), crash-after (SIGKILL after it),
 *                      or signal (sends itself CKPT_FAULT_SIGNAL, a
 *                      number, default SIGINT, just before the call: an
 *                      interrupt at an exact step)
 *   CKPT_FAULT_LOG     a file that gets "call OP PATH" for each matching
 *                      call and "hit OP PATH" when the fault fires
 *
 * Only a process named "ckpt" is affected, so that the git and sh it
 * runs (which inherit LD_PRELOAD) are not.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static atomic_int counter;
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

enum action { PASS, FAIL, CRASH_AFTER };

/* Decides what to do with a call; crashes right here for "crash". */
static enum action
decide(const char *op, const char *a, const char *b)
{
	const char *nth_s = getenv("CKPT_FAULT_NTH");
	const char *act = getenv("CKPT_FAULT_ACTION");
	int nth = nth_s ? atoi(nth_s) : 1;	/* test code: atoi is fine */
	int n;

	if (!matches(op, a, b))
		return PASS;
	n = atomic_fetch_add(&counter, 1) + 1;
	log_line(n == nth ? "hit" : "call", op, b ? b : a);
	if (n != nth)
		return PASS;
	if (act && !strcmp(act, "crash")) {
		kill(getpid(), SIGKILL);
		pause();
	}
	if (act && !strcmp(act, "crash-after"))
		return CRASH_AFTER;
	if (act && !strcmp(act, "signal")) {
		const char *sig = getenv("CKPT_FAULT_SIGNAL");

		kill(getpid(), sig ? atoi(sig) : SIGINT);
		return PASS;
	}
	return FAIL;
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
		errno = ENOSPC;
		return -1;
	}
	r = real_write()(fd, buf, n);
	after(a);
	return r;
}

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

int
renameat(int fd1, const char *from, int fd2, const char *to)
{
	static int (*fn)(int, const char *, int, const char *);
	enum action a;
	int r;

	if (!fn)
		fn = (int (*)(int, const char *, int, const char *))dlsym(
		    RTLD_NEXT, "renameat");
	a = decide("rename", from, to);
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
	enum action a;
	int r;

	if (!fn)
		fn = (int (*)(int, const char *, int, const char *,
		    unsigned int))dlsym(RTLD_NEXT, "renameat2");
	a = decide("rename", from, to);
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
