/* SPDX-License-Identifier: MIT */
/*
 * store.c - the store: finding, opening and creating it, its lock, pins,
 * and name rules.
 *
 * The lock is a lockfile (.ckpt/lock) created exclusively rather than
 * flock/fcntl locks: those are advisory per host and unreliable on NFS,
 * while link(2) of a new name is atomic on local filesystems and NFSv3+.
 * A lockfile outlives a crash, so its content says who holds it (pid,
 * host, pid namespace, boot id, machine id, process start time) and a
 * lock whose process is known to be gone is broken; the content is
 * written before the lock appears (link of a finished temporary file),
 * so a lock always says who holds it.  Breaking is itself serialised by
 * a second lockfile so that two breakers cannot remove a fresh lock
 * taken in between.
 */
#include "util/internal.h"

#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <pwd.h>
#include <signal.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "store/store.h"

#define STORE_MARKER	".ckpt/store.json"
#define LOCK_PATH	".ckpt/lock"
#define LOCK_BREAK_PATH	".ckpt/lock.break"

/* ------------------------------------------------------------------ */
/* Names                                                               */
/* ------------------------------------------------------------------ */

int
ckpt_name_check(const char *name, const char *what, struct ckpt_error *err)
{
	size_t n;

	if (!what)
		what = "name";
	if (!name || !*name)
		return ckpt_error_set(err, CKPT_ERR_INVALID, NULL, -1,
		    "empty %s", what);
	n = strlen(name);
	if (n > CKPT_NAME_MAX)
		return ckpt_error_set(err, CKPT_ERR_INVALID, NULL, -1,
		    "%s '%.40s...' is longer than %d characters", what, name,
		    CKPT_NAME_MAX);
	if (!((name[0] >= 'a' && name[0] <= 'z') ||
	    (name[0] >= 'A' && name[0] <= 'Z') ||
	    (name[0] >= '0' && name[0] <= '9')))
		return ckpt_error_set(err, CKPT_ERR_INVALID, NULL, -1,
		    "%s '%s' must start with a letter or digit", what, name);
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)name[i];

		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || c == '.' || c == '_' ||
		    c == '-' || c == '+')
			continue;
		return ckpt_error_set(err, CKPT_ERR_INVALID, NULL, -1,
		    "%s '%s' holds '%c'; allowed are letters, digits and "
		    "'.', '_', '-', '+'", what, name, c >= 0x20 && c < 0x7f ?
		    c : '?');
	}
	return CKPT_OK;
}

/* ------------------------------------------------------------------ */
/* Opening, finding, creating                                          */
/* ------------------------------------------------------------------ */

static bool
is_store(const char *dir)
{
	char *p = ckpt_join(dir, STORE_MARKER);
	struct stat st;
	bool yes;

	if (!p)
		return false;
	yes = !stat(p, &st) && S_ISREG(st.st_mode);
	free(p);
	return yes;
}

static int
store_new(const char *root, struct ckpt_store **out, struct ckpt_error *err)
{
	struct ckpt_store *s = calloc(1, sizeof(*s));
	char *abs;

	if (!s)
		return ckpt_error_nomem(err);
	abs = realpath(root, NULL);
	if (!abs) {
		free(s);
		return ckpt_error_errno(err, root, "cannot resolve");
	}
	s->root = abs;
	*out = s;
	return CKPT_OK;
}

static bool
dir_is_empty(const char *dir, const char *allowed)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	bool empty = true;

	if (!d)
		return false;
	while ((de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (allowed && !strcmp(de->d_name, allowed))
			continue;
		empty = false;
		break;
	}
	closedir(d);
	return empty;
}

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

static int
create_layout(const char *dir, struct ckpt_error *err)
{
	static const char *const subdirs[] = { ".ckpt", ".ckpt/pins",
		".ckpt/trash", "runs" };
	static const char marker[] = "{\n  \"schema\": 1\n}\n";
	char *p;
	int rc;

	for (size_t i = 0; i < CKPT_ARRAY_SIZE(subdirs); i++) {
		p = ckpt_join(dir, subdirs[i]);
		if (!p)
			return ckpt_error_nomem(err);
		if (mkdir(p, 0777) && errno != EEXIST) {
			rc = ckpt_error_errno(err, p, "cannot create directory");
			free(p);
			return rc;
		}
		free(p);
	}
	/* The marker last: a half-created store is not taken for one. */
	p = ckpt_join(dir, STORE_MARKER);
	if (!p)
		return ckpt_error_nomem(err);
	rc = ckpt_write_file_atomic(p, marker, sizeof(marker) - 1, err);
	free(p);
	if (!rc)
		rc = ckpt_fsync_dir(dir, err);
	return rc;
}

int
ckpt_store_open(const char *dir, unsigned int flags, struct ckpt_store **out,
    struct ckpt_error *err)
{
	struct stat st;
	int rc;

	if (!dir || !*dir)
		return ckpt_error_set(err, CKPT_ERR_INVALID, NULL, -1,
		    "no store directory given");
	if (is_store(dir))
		return store_new(dir, out, err);
	{
		/* Permission denied is not "no store here" (ckpt(1): 3). */
		char *marker = ckpt_join(dir, STORE_MARKER);
		int e = marker && stat(marker, &st) ? errno : 0;

		free(marker);
		if (e && e != ENOENT && e != ENOTDIR) {
			errno = e;
			return ckpt_error_errno(err, dir, "cannot open the "
			    "store");
		}
	}
	if (!(flags & CKPT_STORE_CREATE))
		return ckpt_error_set(err, CKPT_ERR_NOTFOUND, dir, -1,
		    "not a ckpt store (no .ckpt/store.json); run 'ckpt init'");
	if (stat(dir, &st)) {
		if (errno != ENOENT)
			return ckpt_error_errno(err, dir, "cannot stat");
		if ((rc = mkdir_p(dir, err)))
			return rc;
	} else if (!S_ISDIR(st.st_mode)) {
		return ckpt_error_set(err, CKPT_ERR_INVALID, dir, -1,
		    "not a directory");
	} else if (!dir_is_empty(dir, "ckpt.yaml")) {
		return ckpt_error_set(err, CKPT_ERR_REFUSED, dir, -1,
		    "not a ckpt store and not empty; refusing to create a "
		    "store here (use 'ckpt init' on an empty directory)");
	}
	if ((rc = create_layout(dir, err)))
		return rc;
	return store_new(dir, out, err);
}

int
ckpt_store_find(const char *start, struct ckpt_store **out,
    struct ckpt_error *err)
{
	char *cur = realpath(start ? start : ".", NULL);
	int rc;

	if (!cur)
		return ckpt_error_errno(err, start ? start : ".",
		    "cannot resolve");
	for (;;) {
		char *slash;

		if (is_store(cur)) {
			rc = store_new(cur, out, err);
			free(cur);
			return rc;
		}
		if (!strcmp(cur, "/"))
			break;
		slash = strrchr(cur, '/');
		if (slash == cur)
			slash[1] = '\0';
		else
			*slash = '\0';
	}
	free(cur);
	return ckpt_error_set(err, CKPT_ERR_NOTFOUND, NULL, -1,
	    "not in a ckpt store (nor any parent directory); use --store, "
	    "CKPT_STORE or 'ckpt init'");
}

int
ckpt_store_init(const char *dir, const char *policy_yaml, bool *created,
    struct ckpt_store **out, struct ckpt_error *err)
{
	struct ckpt_store *s;
	struct stat st;
	bool existed;
	char *p;
	int rc;

	existed = is_store(dir);
	if (created)
		*created = !existed;
	if (!existed) {
		if (!stat(dir, &st) && S_ISDIR(st.st_mode) &&
		    !dir_is_empty(dir, "ckpt.yaml"))
			return ckpt_error_set(err, CKPT_ERR_REFUSED, dir, -1,
			    "directory is not empty; a store is created in an "
			    "empty or new directory");
	}
	if ((rc = ckpt_store_open(dir, CKPT_STORE_CREATE, &s, err)))
		return rc;
	if (policy_yaml) {
		p = ckpt_store_path(s, "ckpt.yaml");
		if (!p) {
			ckpt_store_free(s);
			return ckpt_error_nomem(err);
		}
		if (stat(p, &st) && errno == ENOENT)
			rc = ckpt_write_file_atomic(p, policy_yaml,
			    strlen(policy_yaml), err);
		free(p);
		if (rc) {
			ckpt_store_free(s);
			return rc;
		}
	}
	*out = s;
	return CKPT_OK;
}

void
ckpt_store_free(struct ckpt_store *s)
{
	if (!s)
		return;
	if (s->locked)
		ckpt_store_unlock(s);
	free(s->root);
	free(s);
}

const char *
ckpt_store_root(const struct ckpt_store *s)
{
	return s->root;
}

char *
ckpt_store_path(const struct ckpt_store *s, const char *rel)
{
	return ckpt_join(s->root, rel);
}

/* ------------------------------------------------------------------ */
/* The lock                                                            */
/* ------------------------------------------------------------------ */

/*
 * Who holds a lock, as far as this host can tell.  Liveness is decided
 * on identity only, never on a clock: the holder is known to be gone when
 * it ran on this machine (same host name, same pid namespace) and either
 * the pid is gone or reused (start time), or -- same machine id -- the
 * machine was rebooted since (another boot id).
 */
struct lock_info {
	struct ckpt_lock_holder h;
	char boot[64];
	char pidns[64];
	char machine[64];
	unsigned long long start;
	uint32_t host_hash;		/* the compact (symlink) form */
	bool compact;
};

/* Truncating copy: a lock file is untrusted and may hold long lines. */
static void
copy_str(char *dst, size_t size, const char *src)
{
	size_t n = strnlen(src, size - 1);

	memcpy(dst, src, n);
	dst[n] = '\0';
}

static uint32_t
fnv1a(const char *s)
{
	uint32_t h = 2166136261u;

	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 16777619u;
	return h;
}

/* The first 8 hex digits of an id (boot id, machine id), dashes skipped. */
static void
id_prefix(const char *id, char out[9])
{
	size_t n = 0;

	for (; *id && n < 8; id++)
		if (*id != '-')
			out[n++] = *id;
	out[n] = '\0';
}

/* The number of "pid:[4026531836]". */
static unsigned long long
ns_number(const char *ns)
{
	const char *p = strchr(ns, '[');

	return p ? strtoull(p + 1, NULL, 10) : 0;
}

static void
parse_lock(const char *text, struct lock_info *li)
{
	const char *line = text;

	memset(li, 0, sizeof(*li));
	while (line && *line) {
		const char *nl = strchr(line, '\n');
		size_t n = nl ? (size_t)(nl - line) : strlen(line);
		char buf[512];

		if (n >= sizeof(buf))
			n = sizeof(buf) - 1;
		memcpy(buf, line, n);
		buf[n] = '\0';
		if (!strncmp(buf, "pid ", 4))
			li->h.pid = strtol(buf + 4, NULL, 10);
		else if (!strncmp(buf, "host ", 5))
			copy_str(li->h.host, sizeof(li->h.host), buf + 5);
		else if (!strncmp(buf, "time ", 5))
			li->h.time = strtoll(buf + 5, NULL, 10);
		else if (!strncmp(buf, "boot ", 5))
			copy_str(li->boot, sizeof(li->boot), buf + 5);
		else if (!strncmp(buf, "pidns ", 6))
			copy_str(li->pidns, sizeof(li->pidns), buf + 6);
		else if (!strncmp(buf, "machine ", 8))
			copy_str(li->machine, sizeof(li->machine), buf + 8);
		else if (!strncmp(buf, "start ", 6))
			li->start = strtoull(buf + 6, NULL, 10);
		else if (!strncmp(buf, "purpose ", 8))
			copy_str(li->h.purpose, sizeof(li->h.purpose), buf + 8);
		line = nl ? nl + 1 : NULL;
	}
	li->host_hash = fnv1a(li->h.host);
}

/*
 * The compact form, the target of a symlink lock taken on a full
 * filesystem: "ckpt1.PID.START.NS.BOOT8.MACHINE8.HOSTHASH" (under 60
 * bytes: the inode holds it, no data block is needed).
 */
static int
compact_lock(char *buf, size_t size)
{
	char boot[9], mach[9];

	id_prefix(ckpt_boot_id(), boot);
	id_prefix(ckpt_machine_id(), mach);
	return snprintf(buf, size, "ckpt1.%ld.%llu.%llu.%s.%s.%08x",
	    (long)getpid(), ckpt_proc_start((long)getpid()),
	    ns_number(ckpt_pid_ns()), boot[0] ? boot : "-",
	    mach[0] ? mach : "-", fnv1a(ckpt_hostname()));
}

static bool
parse_compact(const char *text, struct lock_info *li)
{
	char boot[16], mach[16];
	unsigned long long ns;
	long pid;

	memset(li, 0, sizeof(*li));
	if (sscanf(text, "ckpt1.%ld.%llu.%llu.%15[^.].%15[^.].%8x", &pid,
	    &li->start, &ns, boot, mach, &li->host_hash) != 6)
		return false;
	li->compact = true;
	li->h.pid = pid;
	copy_str(li->boot, sizeof(li->boot), strcmp(boot, "-") ? boot : "");
	copy_str(li->machine, sizeof(li->machine), strcmp(mach, "-") ? mach :
	    "");
	snprintf(li->pidns, sizeof(li->pidns), "pid:[%llu]", ns);
	if (li->host_hash == fnv1a(ckpt_hostname()))
		copy_str(li->h.host, sizeof(li->h.host), ckpt_hostname());
	snprintf(li->h.purpose, sizeof(li->h.purpose), "(taken on a full "
	    "filesystem)");
	return true;
}

/* a equals b, or (compact form) a's 8-digit prefix equals b's. */
static bool
same_id(const char *a, const char *b, bool compact)
{
	char pa[9], pb[9];

	if (!compact)
		return !strcmp(a, b);
	id_prefix(a, pa);
	id_prefix(b, pb);
	return !strcmp(pa, pb);
}

/* Whether the holder is known to be gone: only decidable on this host. */
static bool
lock_is_stale(const struct lock_info *li)
{
	if (!li->h.pid || li->host_hash != fnv1a(ckpt_hostname()) ||
	    (!li->compact && strcmp(li->h.host, ckpt_hostname())))
		return false;
	/* An older ckpt wrote no pid namespace: only the host's own
	 * namespace could check its pid, as that version did. */
	if (!ckpt_pid_ns()[0] || !same_id(li->pidns[0] ? li->pidns :
	    ckpt_pid_ns(), ckpt_pid_ns(), false))
		return false;
	if (li->boot[0] && ckpt_boot_id()[0] && !same_id(li->boot,
	    ckpt_boot_id(), li->compact))
		/* Another boot of this very machine, or another machine
		 * with our host name: only the machine id tells. */
		return li->machine[0] && ckpt_machine_id()[0] &&
		    same_id(li->machine, ckpt_machine_id(), li->compact);
	return !ckpt_proc_alive(li->h.pid, li->start);
}

/* The lock's text: a file's content, or a symlink's target. */
static int
read_lock(const char *path, char **text, struct ckpt_error *err)
{
	struct stat st;
	char *buf;
	ssize_t n;

	if (lstat(path, &st))
		return errno == ENOENT ? ckpt_error_set(err, CKPT_ERR_NOTFOUND,
		    path, -1, "no such file") : ckpt_error_errno(err, path,
		    "cannot stat");
	if (!S_ISLNK(st.st_mode))
		return ckpt_read_file(path, 64 * 1024, text, NULL, err);
	buf = malloc(PATH_MAX);
	if (!buf)
		return ckpt_error_nomem(err);
	n = readlink(path, buf, PATH_MAX - 1);
	if (n < 0) {
		free(buf);
		return errno == ENOENT ? ckpt_error_set(err, CKPT_ERR_NOTFOUND,
		    path, -1, "no such file") : ckpt_error_errno(err, path,
		    "cannot read");
	}
	buf[n] = '\0';
	*text = buf;
	return CKPT_OK;
}

/* Parses either form; false for an empty or garbled lock. */
static bool
lock_parse_any(const char *text, struct lock_info *li)
{
	if (!strncmp(text, "ckpt1.", 6))
		return parse_compact(text, li);
	parse_lock(text, li);
	return li->h.pid > 0 && li->h.host[0];
}

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
 * inode.  Returns 0, 1 when path exists, or a CKPT_ERR_*.
 */
static int
lock_create(const char *path, const char *content, struct ckpt_error *err)
{
	struct ckpt_error le;
	char compact[128], *tmp = NULL;
	int fd, rc;

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
		if (rc >= 0)
			return rc;
	}
	if (!no_space(le.sys_errno)) {
		if (err)
			*err = le;
		return le.code ? le.code : CKPT_ERR_IO;
	}
	/* A full filesystem: gc and prune must still run to free space. */
	compact_lock(compact, sizeof(compact));
	if (!symlink(compact, path))
		return 0;
	if (errno == EEXIST)
		return 1;
	return ckpt_error_errno(err, path, "cannot create lock");
}

/* The text a lock taken by this process holds (content or target). */
static void
own_lock_text(char *out, size_t size, bool compact, const char *purpose)
{
	if (compact) {
		compact_lock(out, size);
		return;
	}
	snprintf(out, size, "pid %ld\nhost %s\ntime %lld\nboot %s\n"
	    "start %llu\npidns %s\nmachine %s\npurpose %s\n", (long)getpid(),
	    ckpt_hostname(), (long long)time(NULL), ckpt_boot_id(),
	    ckpt_proc_start((long)getpid()), ckpt_pid_ns(),
	    ckpt_machine_id(), purpose ? purpose : "");
}

/*
 * Removes the lock at path if it still holds exactly stale_text.  The
 * break lock (taken like the lock, and itself broken only when its own
 * holder is known to be gone) makes "check, then unlink" one step among
 * breakers.
 */
static bool
break_lock(const struct ckpt_store *s, const char *path,
    const char *stale_text)
{
	char *bpath = ckpt_store_path(s, LOCK_BREAK_PATH);
	char content[1024], *now_text = NULL;
	bool done = false;
	int rc;

	if (!bpath)
		return false;
	own_lock_text(content, sizeof(content), false, "break a stale lock");
	ckpt_interrupt_hold();
	rc = lock_create(bpath, content, NULL);
	if (rc) {
		struct lock_info bi;

		if (rc == 1 && !read_lock(bpath, &now_text, NULL) &&
		    lock_parse_any(now_text, &bi) && lock_is_stale(&bi))
			unlink(bpath);
		free(now_text);
		free(bpath);
		ckpt_interrupt_release();
		return false;
	}
	if (!read_lock(path, &now_text, NULL) && !strcmp(now_text,
	    stale_text))
		done = !unlink(path);
	free(now_text);
	/* Our own break lock: same text check, as for the lock. */
	now_text = NULL;
	if (!read_lock(bpath, &now_text, NULL) && !strcmp(now_text, content))
		unlink(bpath);
	free(now_text);
	free(bpath);
	ckpt_interrupt_release();
	return done;
}

static void
holder_message(struct ckpt_error *err, const char *path,
    const struct lock_info *li, bool garbled)
{
	struct stat st;
	long long age = -1;

	if (garbled) {
		ckpt_error_set(err, CKPT_ERR_LOCKED, path, -1, "the store lock "
		    "is empty or unreadable, so who holds it cannot be told "
		    "(an older ckpt killed while taking it leaves such a "
		    "lock); it is never broken automatically: if no ckpt "
		    "runs on this store, remove it by hand");
		return;
	}
	/* For people only: the age never decides anything. */
	if (li->h.time)
		age = (long long)time(NULL) - (long long)li->h.time;
	else if (!lstat(path, &st))
		age = (long long)time(NULL) - (long long)st.st_mtime;
	ckpt_error_set(err, CKPT_ERR_LOCKED, path, -1,
	    "store is locked by pid %ld on host %s%s%s for '%s' (%lld s ago)"
	    "%s", li->h.pid, li->h.host[0] ? li->h.host : "?", li->pidns[0] &&
	    strcmp(li->pidns, ckpt_pid_ns()) ? " in pid namespace " : "",
	    li->pidns[0] && strcmp(li->pidns, ckpt_pid_ns()) ? li->pidns :
	    "", li->h.purpose, age, lock_is_stale(li) ? "" : strcmp(
	    li->h.host, ckpt_hostname()) || (li->pidns[0] && strcmp(
	    li->pidns, ckpt_pid_ns())) ? "; if that process is gone, "
	    "remove the lock file by hand" : "");
}

/*
 * Removes the temporary lock files (lock.tmp.*, lock.break.tmp.*) that
 * a process killed while taking the lock left behind, once their owner
 * -- they hold the same content as a lock -- is known to be gone.
 */
static void
sweep_lock_temps(const struct ckpt_store *s)
{
	char *dir = ckpt_store_path(s, ".ckpt");
	struct dirent *de;
	DIR *d;

	d = dir ? opendir(dir) : NULL;
	while (d && (de = readdir(d))) {
		struct lock_info li;
		char *p, *text = NULL;

		if (strncmp(de->d_name, "lock.", 5) || !strstr(de->d_name,
		    ".tmp."))
			continue;
		p = ckpt_join(dir, de->d_name);
		if (p && !read_lock(p, &text, NULL) && lock_parse_any(text,
		    &li) && lock_is_stale(&li))
			unlink(p);
		free(text);
		free(p);
	}
	if (d)
		closedir(d);
	free(dir);
}

static long
elapsed_ms(const struct timespec *t0)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (now.tv_sec - t0->tv_sec) * 1000 +
	    (now.tv_nsec - t0->tv_nsec) / 1000000;
}

int
ckpt_store_lock(struct ckpt_store *s, const char *purpose, long timeout_ms,
    struct ckpt_lock_holder *broken, struct ckpt_error *err)
{
	char *path = ckpt_store_path(s, LOCK_PATH);
	struct timespec t0;
	long sleep_ms = 5;
	char content[sizeof(s->lock_content)];
	int rc;

	if (broken)
		memset(broken, 0, sizeof(*broken));
	if (!path)
		return ckpt_error_nomem(err);
	if (s->locked) {
		free(path);
		return ckpt_error_set(err, CKPT_ERR_INVALID, NULL, -1,
		    "store lock already held by this handle");
	}
	own_lock_text(content, sizeof(content), false, purpose);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	/* Held from before the lock exists until after it is gone: a
	 * SIGINT in between unwinds and removes it (interrupt.c). */
	ckpt_interrupt_hold();
	for (;;) {
		struct lock_info li;
		char *text = NULL;
		bool garbled = false;

		if (ckpt_interrupt_pending()) {
			rc = ckpt_error_interrupted(err, "waiting for the "
			    "store lock");
			break;
		}
		rc = lock_create(path, content, err);
		if (rc == 0) {
			struct stat st;

			/* What unlock compares: the content, or the target
			 * of a symlink lock (taken on a full filesystem). */
			if (!lstat(path, &st) && S_ISLNK(st.st_mode))
				own_lock_text(s->lock_content,
				    sizeof(s->lock_content), true, purpose);
			else
				memcpy(s->lock_content, content,
				    sizeof(content));
			s->locked = true;
			free(path);
			sweep_lock_temps(s);
			return CKPT_OK;
		}
		if (rc < 0)
			break;
		rc = read_lock(path, &text, NULL);
		if (rc == CKPT_ERR_NOTFOUND)
			continue;	/* released meanwhile: try again */
		if (rc || !lock_parse_any(text, &li)) {
			/* Unreadable, empty or garbled: held by someone
			 * unknown, never broken (see holder_message). */
			memset(&li, 0, sizeof(li));
			garbled = true;
		} else if (lock_is_stale(&li) && break_lock(s, path, text)) {
			if (broken)
				*broken = li.h;
			free(text);
			continue;
		}
		free(text);
		if (timeout_ms >= 0 && elapsed_ms(&t0) >= timeout_ms) {
			holder_message(err, path, &li, garbled);
			rc = CKPT_ERR_LOCKED;
			break;
		}
		{
			struct timespec ts = { sleep_ms / 1000,
			    (sleep_ms % 1000) * 1000000L };

			nanosleep(&ts, NULL);
		}
		if (sleep_ms < 200)
			sleep_ms *= 2;
	}
	free(path);
	ckpt_interrupt_release();
	return rc;
}

void
ckpt_store_unlock(struct ckpt_store *s)
{
	char *path, *text = NULL;

	if (!s || !s->locked)
		return;
	s->locked = false;
	path = ckpt_store_path(s, LOCK_PATH);
	/* Remove only our own lock: someone may have broken ours. */
	if (path && !read_lock(path, &text, NULL) && !strcmp(text,
	    s->lock_content))
		unlink(path);
	free(text);
	free(path);
	ckpt_interrupt_release();
}

int
ckpt_store_lock_holder(const struct ckpt_store *s,
    struct ckpt_lock_holder *out, struct ckpt_error *err)
{
	char *path = ckpt_store_path(s, LOCK_PATH), *text;
	struct lock_info li;
	int rc;

	if (!path)
		return ckpt_error_nomem(err);
	rc = read_lock(path, &text, err);
	free(path);
	if (rc)
		return rc;
	if (!lock_parse_any(text, &li))
		memset(&li, 0, sizeof(li));
	free(text);
	*out = li.h;
	return CKPT_OK;
}

/* ------------------------------------------------------------------ */
/* Pins                                                                */
/* ------------------------------------------------------------------ */

static char *
pin_path(const struct ckpt_store *s, const char *run, int64_t step)
{
	char *p;

	if (asprintf(&p, "%s/.ckpt/pins/%s@%lld", s->root, run,
	    (long long)step) < 0)
		return NULL;
	return p;
}

int
ckpt_store_pin(struct ckpt_store *s, const char *run, int64_t step,
    const char *note, struct ckpt_error *err)
{
	char created[32], *p, *doc;
	int rc;

	if ((rc = ckpt_name_check(run, "run name", err)))
		return rc;
	if (step < 0)
		return ckpt_error_set(err, CKPT_ERR_INVALID, NULL, -1,
		    "negative step");
	p = pin_path(s, run, step);
	if (!p)
		return ckpt_error_nomem(err);
	ckpt_iso_time((int64_t)time(NULL), created, sizeof(created));
	{
		json_t *j = json_pack("{s:i, s:s, s:I, s:s, s:s}", "schema", 1,
		    "run", run, "step", (json_int_t)step, "time", created,
		    "user", ckpt_user_name());

		if (j && note)
			json_object_set_new(j, "note", json_string(note));
		doc = j ? json_dumps(j, JSON_INDENT(2) | JSON_SORT_KEYS) :
		    NULL;
		json_decref(j);
		if (!doc) {
			free(p);
			return ckpt_error_nomem(err);
		}
	}
	rc = ckpt_write_file_atomic(p, doc, strlen(doc), err);
	free(doc);
	free(p);
	return rc;
}

int
ckpt_store_unpin(struct ckpt_store *s, const char *run, int64_t step,
    struct ckpt_error *err)
{
	char *p, *dir;
	int rc = CKPT_OK;

	if ((rc = ckpt_name_check(run, "run name", err)))
		return rc;
	p = pin_path(s, run, step);
	if (!p)
		return ckpt_error_nomem(err);
	if (unlink(p)) {
		rc = errno == ENOENT ? ckpt_error_set(err, CKPT_ERR_NOTFOUND,
		    NULL, -1, "%s@%lld is not pinned", run, (long long)step) :
		    ckpt_error_errno(err, p, "cannot remove pin");
		free(p);
		return rc;
	}
	free(p);
	dir = ckpt_store_path(s, ".ckpt/pins");
	if (!dir)
		return ckpt_error_nomem(err);
	rc = ckpt_fsync_dir(dir, err);
	free(dir);
	return rc;
}

/*
 * Fails closed: a pin that cannot be checked (any error but ENOENT, or a
 * pins directory that is a symbolic link) counts as a pin, so that an I/O
 * error never lets a pinned checkpoint be replaced or removed.
 */
bool
ckpt_store_is_pinned(const struct ckpt_store *s, const char *run,
    int64_t step)
{
	char name[CKPT_NAME_MAX + 32];
	struct stat st;
	bool yes;
	int fd;

	if (ckpt_name_check(run, NULL, NULL))
		return false;
	fd = ckpt_store_opendir(s, ".ckpt/pins", NULL);
	if (fd == -2)
		return false;
	if (fd < 0)
		return true;
	snprintf(name, sizeof(name), "%s@%lld", run, (long long)step);
	yes = !fstatat(fd, name, &st, AT_SYMLINK_NOFOLLOW) || errno != ENOENT;
	close(fd);
	return yes;
}
