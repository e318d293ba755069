/* SPDX-License-Identifier: MIT */
/*
 * store.c - the store: finding, opening and creating it, its lock, pins,
 * and name rules.
 *
 * The lock is a lockfile (.ckpt/lock) created with O_EXCL rather than
 * flock/fcntl locks: those are advisory per host and unreliable on NFS,
 * while an exclusive create is atomic on local filesystems and NFSv3+.
 * A lockfile outlives a crash, so its content says who holds it (pid,
 * host, boot id, process start time) and a lock of a dead process on this
 * host is broken.  Breaking is itself serialised by a second lockfile so
 * that two breakers cannot remove a fresh lock taken in between.
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
/* A break lock older than this is itself stale (breaking takes ms). */
#define LOCK_BREAK_STALE 30

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

struct lock_info {
	struct ckpt_lock_holder h;
	char boot[64];
	unsigned long long start;
};

/* Truncating copy: a lock file is untrusted and may hold long lines. */
static void
copy_str(char *dst, size_t size, const char *src)
{
	size_t n = strnlen(src, size - 1);

	memcpy(dst, src, n);
	dst[n] = '\0';
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
		else if (!strncmp(buf, "start ", 6))
			li->start = strtoull(buf + 6, NULL, 10);
		else if (!strncmp(buf, "purpose ", 8))
			copy_str(li->h.purpose, sizeof(li->h.purpose), buf + 8);
		line = nl ? nl + 1 : NULL;
	}
}

/* Whether the holder is known to be gone: only decidable on this host. */
static bool
lock_is_stale(const struct lock_info *li)
{
	if (strcmp(li->h.host, ckpt_hostname()))
		return false;
	if (li->boot[0] && ckpt_boot_id()[0] && strcmp(li->boot,
	    ckpt_boot_id()))
		return true;
	return !ckpt_proc_alive(li->h.pid, li->start);
}

static int
read_lock(const char *path, char **text, struct ckpt_error *err)
{
	return ckpt_read_file(path, 64 * 1024, text, NULL, err);
}

/*
 * Removes the lock at path if it still holds exactly stale_text.  The
 * break lock makes "check, then unlink" one step among breakers.
 */
static bool
break_lock(const struct ckpt_store *s, const char *path,
    const char *stale_text)
{
	char *bpath = ckpt_store_path(s, LOCK_BREAK_PATH);
	char *now_text = NULL;
	bool done = false;
	struct stat st;
	int fd;

	if (!bpath)
		return false;
	fd = open(bpath, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	if (fd < 0) {
		if (errno == EEXIST && !stat(bpath, &st) &&
		    time(NULL) - st.st_mtime > LOCK_BREAK_STALE)
			unlink(bpath);
		free(bpath);
		return false;
	}
	close(fd);
	if (!read_lock(path, &now_text, NULL) && !strcmp(now_text,
	    stale_text))
		done = !unlink(path);
	free(now_text);
	unlink(bpath);
	free(bpath);
	return done;
}

static void
holder_message(struct ckpt_error *err, const char *path,
    const struct lock_info *li)
{
	long long age = (long long)time(NULL) - (long long)li->h.time;

	ckpt_error_set(err, CKPT_ERR_LOCKED, path, -1,
	    "store is locked by pid %ld on host %s for '%s' (%lld s ago)%s",
	    li->h.pid, li->h.host[0] ? li->h.host : "?", li->h.purpose, age,
	    strcmp(li->h.host, ckpt_hostname()) ? "; if that process is "
	    "gone, remove the lock file by hand" : "");
}

int
ckpt_store_lock(struct ckpt_store *s, const char *purpose, long timeout_ms,
    struct ckpt_lock_holder *broken, struct ckpt_error *err)
{
	char *path = ckpt_store_path(s, LOCK_PATH);
	struct timespec t0, now;
	long sleep_ms = 5;
	char content[sizeof(s->lock_content)];
	int n, fd, rc;

	if (broken)
		memset(broken, 0, sizeof(*broken));
	if (!path)
		return ckpt_error_nomem(err);
	if (s->locked) {
		free(path);
		return ckpt_error_set(err, CKPT_ERR_INVALID, NULL, -1,
		    "store lock already held by this handle");
	}
	n = snprintf(content, sizeof(content), "pid %ld\nhost %s\ntime %lld\n"
	    "boot %s\nstart %llu\npurpose %s\n", (long)getpid(),
	    ckpt_hostname(), (long long)time(NULL), ckpt_boot_id(),
	    ckpt_proc_start((long)getpid()), purpose ? purpose : "");
	if (n < 0 || (size_t)n >= sizeof(content))
		n = (int)strlen(content);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		struct lock_info li;
		char *text = NULL;
		long elapsed;

		fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
		if (fd >= 0) {
			rc = ckpt_write_all(fd, content, (size_t)n, path, err);
			if (close(fd) && !rc)
				rc = ckpt_error_errno(err, path, "cannot close");
			if (rc) {
				unlink(path);
				free(path);
				return rc;
			}
			memcpy(s->lock_content, content, (size_t)n + 1);
			s->locked = true;
			free(path);
			return CKPT_OK;
		}
		if (errno != EEXIST) {
			rc = ckpt_error_errno(err, path, "cannot create lock");
			free(path);
			return rc;
		}
		rc = read_lock(path, &text, NULL);
		if (rc == CKPT_ERR_NOTFOUND)
			continue;	/* released meanwhile: try again */
		if (rc) {
			/* Unreadable: treat as held by someone unknown. */
			memset(&li, 0, sizeof(li));
		} else {
			parse_lock(text, &li);
			/* An empty lock is one being written right now. */
			if (text[0] && lock_is_stale(&li) &&
			    break_lock(s, path, text)) {
				if (broken)
					*broken = li.h;
				free(text);
				continue;
			}
		}
		free(text);
		clock_gettime(CLOCK_MONOTONIC, &now);
		elapsed = (now.tv_sec - t0.tv_sec) * 1000 +
		    (now.tv_nsec - t0.tv_nsec) / 1000000;
		if (timeout_ms >= 0 && elapsed >= timeout_ms) {
			holder_message(err, path, &li);
			free(path);
			return CKPT_ERR_LOCKED;
		}
		{
			struct timespec ts = { sleep_ms / 1000,
			    (sleep_ms % 1000) * 1000000L };

			nanosleep(&ts, NULL);
		}
		if (sleep_ms < 200)
			sleep_ms *= 2;
	}
}

void
ckpt_store_unlock(struct ckpt_store *s)
{
	char *path, *text = NULL;

	if (!s || !s->locked)
		return;
	s->locked = false;
	path = ckpt_store_path(s, LOCK_PATH);
	if (!path)
		return;
	/* Remove only our own lock: someone may have broken ours. */
	if (!read_lock(path, &text, NULL) && !strcmp(text, s->lock_content))
		unlink(path);
	free(text);
	free(path);
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
	parse_lock(text, &li);
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
