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

#include "store/backend.h"
#include "store/store.h"
#include "store/registry.h"


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

/*
 * Is there a store at the open backend be?  CKPT_OK: its marker is there;
 * CKPT_ERR_NOTFOUND: no store (nothing, or not a directory); anything
 * else is an error (permission denied is not "no store here": ckpt(1)
 * exit 3).
 */
static int
has_marker(const struct ckpt_backend_ops *ops, void *be, const char *dir,
    struct ckpt_error *err)
{
	struct ckpt_be_info info;
	struct ckpt_error le;
	int rc;

	ckpt_error_clear(&le);
	rc = ops->stat(be, CKPT_STORE_MARKER, &info, &le);
	if (!rc)
		return info.type == CKPT_BE_FILE ? CKPT_OK : CKPT_ERR_NOTFOUND;
	if (rc == CKPT_ERR_NOTFOUND)
		return CKPT_ERR_NOTFOUND;
	return ckpt_error_set(err, rc, dir, -1, "cannot open the store: %s",
	    le.message);
}

/* Opens a backend for dir: CKPT_ERR_NOTFOUND when nothing is there. */
static int
backend_open(const struct ckpt_backend_ops *ops, const char *dir, void **be,
    struct ckpt_error *err)
{
	struct ckpt_error le;
	int rc;

	ckpt_error_clear(&le);
	if (!(rc = ops->open(dir, be, &le)))
		return CKPT_OK;
	if (le.sys_errno == ENOENT || le.sys_errno == ENOTDIR)
		return CKPT_ERR_NOTFOUND;
	if (err)
		*err = le;
	return rc;
}

static bool
is_store(const char *dir)
{
	void *be;
	bool yes;

	if (backend_open(&ckpt_backend_posix, dir, &be, NULL))
		return false;
	yes = !has_marker(&ckpt_backend_posix, be, dir, NULL);
	ckpt_backend_posix.close(be);
	return yes;
}

static int
store_new(const char *root, struct ckpt_store **out, struct ckpt_error *err)
{
	void *be;
	int rc;

	if ((rc = ckpt_backend_posix.open(root, &be, err)))
		return rc;
	return ckpt_store_open_backend(&ckpt_backend_posix, be, root, out,
	    err);
}

/* The first operation an open store needs that the table lacks (open
 * and create are the opener's business), or NULL. */
static const char *
missing_op(const struct ckpt_backend_ops *o)
{
#define NEED(op) if (!o->op) return #op
	NEED(close); NEED(read); NEED(stat); NEED(list); NEED(put);
	NEED(remove); NEED(lock); NEED(lock_read); NEED(unlock);
	NEED(commit_if_absent); NEED(trash); NEED(remove_tree); NEED(flush);
	NEED(usage); NEED(mkprefix); NEED(rmprefix); NEED(stage_begin);
	NEED(stage_file); NEED(stage_untake); NEED(stage_record);
	NEED(stage_sync); NEED(stage_abort); NEED(commit_replace);
	NEED(copy);
#undef NEED
	return NULL;
}

int
ckpt_store_open_backend(const struct ckpt_backend_ops *ops, void *be,
    const char *root, struct ckpt_store **out, struct ckpt_error *err)
{
	const char *missing;
	struct ckpt_store *s;

	if (ops->version != CKPT_BACKEND_VERSION) {
		ops->close(be);
		return ckpt_error_set(err, CKPT_ERR_INTERNAL, NULL, -1,
		    "storage backend '%s' has version %u, not %u", ops->name,
		    ops->version, CKPT_BACKEND_VERSION);
	}
	if ((missing = missing_op(ops))) {
		ops->close(be);
		return ckpt_error_set(err, CKPT_ERR_INTERNAL, NULL, -1,
		    "storage backend '%s' has no %s operation", ops->name,
		    missing);
	}
	s = calloc(1, sizeof(*s));
	if (!s || !(s->root = ops == &ckpt_backend_posix ?
	    realpath(root, NULL) : strdup(root))) {
		free(s);
		ops->close(be);
		return ops == &ckpt_backend_posix && errno != ENOMEM ?
		    ckpt_error_errno(err, root, "cannot resolve") :
		    ckpt_error_nomem(err);
	}
	s->ops = ops;
	s->be = be;
	*out = s;
	return CKPT_OK;
}

/* A store URL of a backend this version has not got (s3://...). */
static bool
is_remote(const char *dir)
{
	const char *colon = strstr(dir, "://");

	if (!colon || colon == dir)
		return false;
	for (const char *p = dir; p < colon; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
		    *p == '+' || *p == '-' || *p == '.'))
			return false;
	return true;
}

/* One child of a location that is to become a store. */
static int
refuse_child(void *arg, const char *name, const struct ckpt_be_info *info)
{
	(void)info;
	/* ckpt.yaml may come first (init --preset writes it after). */
	if (!strcmp(name, "ckpt.yaml"))
		return 0;
	*(bool *)arg = false;
	return 1;
}

/* Nothing at the location but perhaps ckpt.yaml (a listing error is no
 * "empty": fail closed). */
static int
location_empty(const struct ckpt_backend_ops *ops, void *be, bool *empty,
    struct ckpt_error *err)
{
	int rc;

	*empty = true;
	rc = ops->list(be, "", refuse_child, empty, err);
	if (rc == CKPT_ERR_NOTFOUND) {
		if (err)
			ckpt_error_clear(err);
		return CKPT_OK;
	}
	return rc == 1 ? CKPT_OK : rc;
}

/* The layout, then the marker last: a half-created store is not taken
 * for one. */
static int
create_layout(const struct ckpt_backend_ops *ops, void *be,
    struct ckpt_error *err)
{
	static const char *const prefixes[] = { CKPT_STORE_META,
		CKPT_STORE_PINS, CKPT_STORE_TRASH, CKPT_STORE_RUNS };
	static const char marker[] = "{\n  \"schema\": 1\n}\n";
	int rc;

	for (size_t i = 0; i < CKPT_ARRAY_SIZE(prefixes); i++)
		if ((rc = ops->mkprefix(be, prefixes[i], NULL, err)))
			return rc;
	rc = ops->put(be, CKPT_STORE_MARKER, marker, sizeof(marker) - 1,
	    CKPT_BE_IF_ABSENT, err);
	if (rc == CKPT_ERR_EXISTS) {	/* another init won: a store */
		if (err)
			ckpt_error_clear(err);
		rc = CKPT_OK;
	}
	return rc ? rc : ops->flush(be, "", err);
}

/* A new store at dir (CKPT_STORE_CREATE), through the backend. */
static int
store_create(const char *dir, struct ckpt_store **out,
    struct ckpt_error *err)
{
	const struct ckpt_backend_ops *ops = &ckpt_backend_posix;
	bool empty;
	void *be;
	int rc;

	if ((rc = ops->create(dir, &be, err)))
		return rc;
	if ((rc = location_empty(ops, be, &empty, err)) || (!empty &&
	    (rc = ckpt_error_set(err, CKPT_ERR_REFUSED, dir, -1, "not a ckpt "
	    "store and not empty; refusing to create a store here (use "
	    "'ckpt init' on an empty directory)"))) ||
	    (rc = create_layout(ops, be, err))) {
		ops->close(be);
		return rc;
	}
	return ckpt_store_open_backend(ops, be, dir, out, err);
}

/* ------------------------------------------------------------------ */
/* Remote stores (s3://BUCKET/PREFIX)                                  */
/* ------------------------------------------------------------------ */

/* Creates the store at url on be (the backend's create probed it). */
static int
remote_create(const struct ckpt_backend_ops *ops, void *be, const char *url,
    struct ckpt_error *err)
{
	bool empty;
	int rc;

	if ((rc = location_empty(ops, be, &empty, err)))
		return rc;
	if (!empty)
		return ckpt_error_set(err, CKPT_ERR_REFUSED, url, -1,
		    "not a ckpt store and not empty; refusing to create a "
		    "store here (use 'ckpt init' on an empty prefix)");
	return create_layout(ops, be, err);
}

/*
 * Opens (CKPT_STORE_CREATE: creates) the store at url on its backend;
 * *existed (may be NULL) says whether it was a store already.
 */
static int
remote_open(const char *url, unsigned int flags, bool *existed,
    struct ckpt_store **out, struct ckpt_error *err)
{
	const struct ckpt_backend_ops *ops = &ckpt_backend_s3;
	struct ckpt_error le;
	char *root, *marker = NULL;
	void *be;
	size_t n;
	int rc;

	if (strncmp(url, "s3://", 5))
		return ckpt_error_set(err, CKPT_ERR_UNSUPPORTED, url, -1,
		    "not a store location this ckpt knows (a directory or "
		    "s3://BUCKET/PREFIX)");
	if ((rc = ops->open(url, &be, err)))
		return rc;
	ckpt_error_clear(&le);
	/* A GET, not a HEAD: a refusal then names the service's code. */
	rc = ops->read(be, CKPT_STORE_MARKER, 4096, &marker, NULL, &le);
	free(marker);
	if (existed)
		*existed = !rc;
	if (rc == CKPT_ERR_NOTFOUND && (flags & CKPT_STORE_CREATE)) {
		/* create probes that the service honours If-None-Match */
		ops->close(be);
		if ((rc = ops->create(url, &be, err)))
			return rc;
		rc = remote_create(ops, be, url, err);
	} else if (rc == CKPT_ERR_NOTFOUND) {
		rc = ckpt_error_set(err, CKPT_ERR_NOTFOUND, url, -1, "not a "
		    "ckpt store (no .ckpt/store.json); run 'ckpt init'");
	} else if (rc && err) {
		*err = le;
	}
	if (rc) {
		ops->close(be);
		return rc;
	}
	/* The root as messages print it: no trailing '/'. */
	n = strlen(url);
	if (!(root = strndup(url, n > 5 && url[n - 1] == '/' ? n - 1 : n))) {
		ops->close(be);
		return ckpt_error_nomem(err);
	}
	rc = ckpt_store_open_backend(ops, be, root, out, err);
	free(root);
	return rc;
}

int
ckpt_store_open(const char *dir, unsigned int flags, struct ckpt_store **out,
    struct ckpt_error *err)
{
	const struct ckpt_backend_ops *ops = &ckpt_backend_posix;
	void *be;
	int rc;

	if (!dir || !*dir)
		return ckpt_error_set(err, CKPT_ERR_INVALID, NULL, -1,
		    "no store directory given");
	if (is_remote(dir))
		return remote_open(dir, flags, NULL, out, err);
	rc = backend_open(ops, dir, &be, err);
	if (!rc) {
		if (!(rc = has_marker(ops, be, dir, err)))
			return ckpt_store_open_backend(ops, be, dir, out, err);
		ops->close(be);
	}
	if (rc != CKPT_ERR_NOTFOUND)
		return rc;
	if (!(flags & CKPT_STORE_CREATE))
		return ckpt_error_set(err, CKPT_ERR_NOTFOUND, dir, -1,
		    "not a ckpt store (no .ckpt/store.json); run 'ckpt init'");
	return store_create(dir, out, err);
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
	bool existed;
	int rc;

	if (is_remote(dir)) {
		rc = remote_open(dir, CKPT_STORE_CREATE, &existed, &s, err);
	} else {
		existed = is_store(dir);
		rc = ckpt_store_open(dir, CKPT_STORE_CREATE, &s, err);
		if (rc == CKPT_ERR_REFUSED && !existed)
			rc = ckpt_error_set(err, CKPT_ERR_REFUSED, dir, -1,
			    "directory is not empty; a store is created in an "
			    "empty or new directory");
	}
	if (rc)
		return rc;
	if (created)
		*created = !existed;
	if (policy_yaml) {
		/* Only where none is yet: the user's policy stays. */
		rc = s->ops->put(s->be, "ckpt.yaml", policy_yaml,
		    strlen(policy_yaml), CKPT_BE_IF_ABSENT, err);
		if (rc == CKPT_ERR_EXISTS) {
			if (err)
				ckpt_error_clear(err);
			rc = CKPT_OK;
		}
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
	if (s->ops)
		s->ops->close(s->be);
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

int
ckpt_store_config_load(const struct ckpt_store *s,
    struct ckpt_policy_config **out, struct ckpt_error *err)
{
	char *path = ckpt_store_path(s, "ckpt.yaml"), *text = NULL;
	size_t len = 0;
	int rc;

	if (!path)
		return ckpt_error_nomem(err);
	/* One byte over the limit, so that the parser says "too large". */
	rc = s->ops->read(s->be, "ckpt.yaml", CKPT_POLICY_FILE_MAX + 1, &text,
	    &len, err);
	if (rc == CKPT_ERR_NOTFOUND) {
		/* no ckpt.yaml: the defaults */
		if (err)
			ckpt_error_clear(err);
		rc = ckpt_policy_config_parse("", 0, path, out, err);
	} else if (!rc) {
		rc = ckpt_policy_config_parse(text, len, path, out, err);
	}
	free(text);
	free(path);
	return rc;
}

const char *
ckpt_store_key(const struct ckpt_store *s, const char *path)
{
	size_t n = strlen(s->root);

	if (!path || strncmp(path, s->root, n) || path[n] != '/')
		return NULL;
	return path + n + 1;
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
	long lease;			/* s; 0: none (a local lock) */
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
		else if (!strncmp(buf, "lease ", 6))
			li->lease = strtol(buf + 6, NULL, 10);
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

/*
 * Whether the holder is gone (0), alive (1) or cannot be told (-1): only
 * decidable for a holder on this host, in this pid namespace and boot.
 */
static int
holder_state(const struct lock_info *li)
{
	if (!li->h.pid || li->host_hash != fnv1a(ckpt_hostname()) ||
	    (!li->compact && strcmp(li->h.host, ckpt_hostname())))
		return -1;
	/* An older ckpt wrote no pid namespace: only the host's own
	 * namespace could check its pid, as that version did. */
	if (!ckpt_pid_ns()[0] || !same_id(li->pidns[0] ? li->pidns :
	    ckpt_pid_ns(), ckpt_pid_ns(), false))
		return -1;
	if (li->boot[0] && ckpt_boot_id()[0] && !same_id(li->boot,
	    ckpt_boot_id(), li->compact))
		/* Another boot of this very machine, or another machine
		 * with our host name: only the machine id tells. */
		return li->machine[0] && ckpt_machine_id()[0] &&
		    same_id(li->machine, ckpt_machine_id(), li->compact) ?
		    0 : -1;
	return ckpt_proc_alive(li->h.pid, li->start) ? 1 : 0;
}

/* Whether the holder is known to be gone: only decidable on this host. */
static bool
lock_is_stale(const struct lock_info *li)
{
	return holder_state(li) == 0;
}

/*
 * A lock with a lease (the S3 backend adds "lease SECONDS" to what it
 * stores, and its holder renews it) is free once the lease ran out.
 * mtime is the backend's clock (S3: Last-Modified read against the
 * service's own Date, in this host's terms), never the holder's.  A
 * holder seen alive on this host keeps it all the same: a lease that
 * ran out there means a renewal failed (the service was unreachable),
 * not that the holder stopped.
 */
static bool
lease_expired(const struct lock_info *li, int64_t mtime)
{
	return li->lease > 0 && mtime > 0 &&
	    (int64_t)time(NULL) - mtime > (int64_t)li->lease &&
	    holder_state(li) != 1;
}

/* The lock's text (backend.h: lock_read); *mtime may be NULL. */
static int
read_lock(const struct ckpt_store *s, const char *key, char **text,
    int64_t *mtime, struct ckpt_error *err)
{
	*text = NULL;
	return s->ops->lock_read(s->be, key, text, mtime, err);
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

/*
 * Creates the lock at key holding content (backend.h: lock), or, where
 * the backend has no room for that, the compact form (*compact set).
 * Returns 0, 1 when key exists, or a CKPT_ERR_*.
 */
static int
lock_create(const struct ckpt_store *s, const char *key, const char *content,
    bool *compact, struct ckpt_error *err)
{
	char fallback[128];
	bool fell_back = false;
	int rc;

	compact_lock(fallback, sizeof(fallback));
	rc = s->ops->lock(s->be, key, content, fallback, &fell_back, err);
	if (compact)
		*compact = fell_back;
	return rc == CKPT_ERR_EXISTS ? 1 : rc;
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
break_lock(const struct ckpt_store *s, const char *key,
    const char *stale_text)
{
	char content[1024], *now_text = NULL;
	int64_t mtime = 0;
	bool done;
	int rc;

	own_lock_text(content, sizeof(content), false, "break a stale lock");
	ckpt_interrupt_hold();
	rc = lock_create(s, CKPT_STORE_LOCK_BREAK, content, NULL, NULL);
	if (rc) {
		struct lock_info bi;

		if (rc == 1 && !read_lock(s, CKPT_STORE_LOCK_BREAK, &now_text,
		    &mtime, NULL) && lock_parse_any(now_text, &bi) &&
		    (lock_is_stale(&bi) || lease_expired(&bi, mtime)))
			s->ops->unlock(s->be, CKPT_STORE_LOCK_BREAK, now_text,
			    NULL);
		free(now_text);
		ckpt_interrupt_release();
		return false;
	}
	done = !s->ops->unlock(s->be, key, stale_text, NULL);
	/* Our own break lock: same text check, as for the lock. */
	s->ops->unlock(s->be, CKPT_STORE_LOCK_BREAK, content, NULL);
	ckpt_interrupt_release();
	return done;
}

/*
 * When a lock was taken, for people: "12 s ago", or what is wrong with
 * the recorded time (a clock that jumped, a lock written by hand).  It
 * is compared, not subtracted: any int64 may be recorded.
 */
#define LOCK_TIME_MIN	946684800LL	/* 2000-01-01: before any ckpt */

static void
lock_age_text(int64_t when, char *buf, size_t size)
{
	long long now = (long long)time(NULL);

	if (!when)
		snprintf(buf, size, "taken at an unknown time");
	else if (when > now + 60)
		snprintf(buf, size, "its recorded time, %lld, is in the "
		    "future", (long long)when);
	else if (when < LOCK_TIME_MIN)
		snprintf(buf, size, "its recorded time, %lld, is not "
		    "believable", (long long)when);
	else
		snprintf(buf, size, "%lld s ago", when > now ? 0 : now - when);
}

static void
holder_message(struct ckpt_error *err, const char *path,
    const struct lock_info *li, int64_t mtime, bool garbled)
{
	char age[96];

	if (garbled) {
		ckpt_error_set(err, CKPT_ERR_LOCKED, path, -1, "the store lock "
		    "is empty or unreadable, so who holds it cannot be told "
		    "(an older ckpt killed while taking it leaves such a "
		    "lock); it is never broken automatically: if no ckpt "
		    "runs on this store, remove it by hand");
		return;
	}
	/* For people only: the age never decides anything. */
	lock_age_text(li->h.time ? li->h.time : mtime, age, sizeof(age));
	if (li->lease > 0) {
		/* A remote lock: its lease decides, on the service's clock. */
		long long left = (long long)li->lease - (mtime ?
		    (long long)time(NULL) - (long long)mtime : 0);

		ckpt_error_set(err, CKPT_ERR_LOCKED, path, -1, "store is "
		    "locked by pid %ld on host %s for '%s' (%s); its "
		    "holder renews a lease of %ld s while it works, so it is "
		    "broken only when the holder stopped for that long (in "
		    "%lld s at the earliest)", li->h.pid, li->h.host[0] ?
		    li->h.host : "?", li->h.purpose, age, li->lease,
		    left > 0 ? left : 0);
		return;
	}
	ckpt_error_set(err, CKPT_ERR_LOCKED, path, -1,
	    "store is locked by pid %ld on host %s%s%s for '%s' (%s)"
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
static int
sweep_one(void *arg, const char *name, const struct ckpt_be_info *info)
{
	const struct ckpt_store *s = arg;
	struct lock_info li;
	char key[512], *text = NULL;

	if (info->type != CKPT_BE_FILE || strncmp(name, "lock.", 5) ||
	    !strstr(name, ".tmp."))
		return 0;
	snprintf(key, sizeof(key), CKPT_STORE_META "/%s", name);
	/* removed only while it still holds what was judged stale */
	if (!read_lock(s, key, &text, NULL, NULL) && lock_parse_any(text,
	    &li) && lock_is_stale(&li))
		s->ops->unlock(s->be, key, text, NULL);
	free(text);
	return 0;
}

static void
sweep_lock_temps(const struct ckpt_store *s)
{
	s->ops->list(s->be, CKPT_STORE_META, sweep_one, (void *)s, NULL);
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
	char *path = ckpt_store_path(s, CKPT_STORE_LOCK);
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
		int64_t mtime = 0;
		bool compact = false, garbled = false;

		if (ckpt_interrupt_pending()) {
			rc = ckpt_error_interrupted(err, "waiting for the "
			    "store lock");
			break;
		}
		rc = lock_create(s, CKPT_STORE_LOCK, content, &compact, err);
		if (rc == 0) {
			/* What unlock compares: the content, or the target
			 * of a symlink lock (taken on a full filesystem). */
			if (compact)
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
		rc = read_lock(s, CKPT_STORE_LOCK, &text, &mtime, NULL);
		if (rc == CKPT_ERR_NOTFOUND)
			continue;	/* released meanwhile: try again */
		if (rc || !lock_parse_any(text, &li)) {
			/* Unreadable, empty or garbled: held by someone
			 * unknown, never broken (see holder_message). */
			memset(&li, 0, sizeof(li));
			garbled = true;
		} else if ((lock_is_stale(&li) || lease_expired(&li, mtime)) &&
		    break_lock(s, CKPT_STORE_LOCK, text)) {
			if (broken)
				*broken = li.h;
			free(text);
			continue;
		}
		free(text);
		if (timeout_ms >= 0 && elapsed_ms(&t0) >= timeout_ms) {
			holder_message(err, path, &li, mtime, garbled);
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
	if (!s || !s->locked)
		return;
	s->locked = false;
	/* Remove only our own lock: someone may have broken ours. */
	s->ops->unlock(s->be, CKPT_STORE_LOCK, s->lock_content, NULL);
	ckpt_interrupt_release();
}

int
ckpt_store_lock_holder(const struct ckpt_store *s,
    struct ckpt_lock_holder *out, struct ckpt_error *err)
{
	struct lock_info li;
	char *text;
	int rc;

	rc = read_lock(s, CKPT_STORE_LOCK, &text, NULL, err);
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

/* The pin's key, ".ckpt/pins/RUN@STEP". */
static char *
pin_path(const struct ckpt_store *s, const char *run, int64_t step)
{
	char *p;

	(void)s;
	if (asprintf(&p, CKPT_STORE_PINS "/%s@%lld", run, (long long)step) < 0)
		return NULL;
	return p;
}

/* Records a pin or unpin in the registry history (registry.c). */
static int
pin_event(struct ckpt_store *s, const char *action, const char *run,
    int64_t step, const char *note, struct ckpt_error *err)
{
	json_t *rec = json_pack("{s:s, s:s, s:I}", "action", action, "run",
	    run, "step", (json_int_t)step);
	int rc;

	if (!rec)
		return ckpt_error_nomem(err);
	if (note)
		json_object_set_new(rec, "note", json_string(note));
	rc = ckpt_reg_record_event(s, rec, err);
	json_decref(rec);
	return rc;
}

int
ckpt_store_pin(struct ckpt_store *s, const char *run, int64_t step,
    const char *note, struct ckpt_error *err)
{
	struct ckpt_be_info info;
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
	rc = s->ops->stat(s->be, p, &info, err);
	if (!rc) {
		/* pinned already: the note is replaced; what prune keeps
		 * does not change, so the history records nothing */
		rc = s->ops->put(s->be, p, doc, strlen(doc), 0, err);
	} else if (rc == CKPT_ERR_NOTFOUND) {
		ckpt_error_clear(err);
		rc = s->ops->put(s->be, p, doc, strlen(doc), 0, err);
		/* a pin the history does not show is taken back */
		if (!rc && (rc = pin_event(s, "pin", run, step, note, err)))
			(void)s->ops->remove(s->be, p, NULL);
	}
	free(doc);
	free(p);
	return rc;
}

int
ckpt_store_unpin(struct ckpt_store *s, const char *run, int64_t step,
    struct ckpt_error *err)
{
	struct ckpt_be_info info;
	char *p, *doc = NULL;
	size_t len = 0;
	int rc = CKPT_OK;

	if ((rc = ckpt_name_check(run, "run name", err)))
		return rc;
	p = pin_path(s, run, step);
	if (!p)
		return ckpt_error_nomem(err);
	/* remove: absent is success (backend.h), so ask first */
	rc = s->ops->stat(s->be, p, &info, err);
	if (rc == CKPT_ERR_NOTFOUND)
		rc = ckpt_error_set(err, CKPT_ERR_NOTFOUND, NULL, -1,
		    "%s@%lld is not pinned", run, (long long)step);
	/* the pin's content, to put back if the history cannot record
	 * its removal: an unpin is never unaudited */
	if (!rc)
		rc = s->ops->read(s->be, p, 1 << 20, &doc, &len, err);
	if (!rc)
		rc = s->ops->remove(s->be, p, err);
	if (!rc && (rc = pin_event(s, "unpin", run, step, NULL, err)))
		(void)s->ops->put(s->be, p, doc, len, 0, NULL);
	free(doc);
	free(p);
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
	struct ckpt_be_info info;
	char *key;
	bool yes;

	if (ckpt_name_check(run, NULL, NULL))
		return false;
	if (!(key = pin_path(s, run, step)))
		return true;
	/* absent (or no pins at all) is the only "not pinned" */
	yes = s->ops->stat(s->be, key, &info, NULL) != CKPT_ERR_NOTFOUND;
	free(key);
	return yes;
}
