/* SPDX-License-Identifier: MIT */
/*
 * prune.c - retention on a store: ckpt_store_prune() and ckpt_store_gc().
 *
 * Deciding is lib/policy/policy.c's job; this file lists the store, feeds the
 * engine and carries out its plan safely:
 *
 *  - Everything that changes runs/ happens under the store lock, which
 *    every commit also takes, so the listing prune decides on is the
 *    store as it is when it acts, and a save in flight (a .tmp-* staging
 *    directory, never listed as a checkpoint) cannot commit in between.
 *  - A checkpoint is removed by renaming its directory into
 *    STORE/.ckpt/trash/ -- one atomic rename on the store's filesystem --
 *    followed by an fsync of both directories.  Its manifest leaves runs/
 *    in the same instant, so whatever happens next, runs/ holds complete
 *    checkpoints only.  Deleting the trash entry (manifest first, so that
 *    a half-deleted entry never looks committed even if someone moves it
 *    back) happens after the lock is released: slow deletes on NFS or
 *    Lustre do not hold up training jobs waiting to commit.
 *  - Every plan is computed before anything is renamed: a refused run
 *    refuses the whole prune.
 *  - gc renames dead staging directories into the trash under the lock
 *    and empties the trash without it.  Concurrent deleters of the same
 *    trash entry are harmless: a vanished file is not an error.
 */
#include "util/internal.h"
#include "policy/policy.h"
#include "store/store.h"

#include <dirent.h>
#include <fcntl.h>
#include <math.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#define TRASH_DIR ".ckpt/trash"
#define RM_MAX_DEPTH 128

/* ------------------------------------------------------------------ */
/* Helpers                                                             */
/* ------------------------------------------------------------------ */

/* Strings owned by a report. */
struct strpool {
	char **v;
	size_t n;
};

static const char *
pool_add(struct strpool *p, char *s)
{
	char **v;

	if (!s)
		return NULL;
	v = realloc(p->v, (p->n + 1) * sizeof(*v));
	if (!v) {
		free(s);
		return NULL;
	}
	p->v = v;
	p->v[p->n++] = s;
	return s;
}

static const char *
pool_printf(struct strpool *p, const char *fmt, ...) CKPT_PRINTF(2, 3);

static const char *
pool_printf(struct strpool *p, const char *fmt, ...)
{
	va_list ap;
	char *s;
	int n;

	va_start(ap, fmt);
	n = vasprintf(&s, fmt, ap);
	va_end(ap);
	return n < 0 ? NULL : pool_add(p, s);
}

static void
pool_free(struct strpool *p)
{
	for (size_t i = 0; i < p->n; i++)
		free(p->v[i]);
	free(p->v);
}

static int
fsync_dir(const char *path)
{
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int rc;

	if (fd < 0)
		return -1;
	rc = fsync(fd);
	/* some filesystems refuse fsync on directories: not an error */
	if (rc && (errno == EINVAL || errno == EBADF))
		rc = 0;
	close(fd);
	return rc;
}

static char *
dirname_of(const char *path)
{
	const char *slash = strrchr(path, '/');

	if (!slash)
		return strdup(".");
	if (slash == path)
		return strdup("/");
	return strndup(path, (size_t)(slash - path));
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
	if (unlinkat(fd, "ckpt-manifest.json", 0) && errno != ENOENT)
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
	char *dir = dirname_of(path);
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

/* Bytes of the regular files under path (lstat, no symlinks followed). */
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

/* A unique name in the trash for a run's checkpoint or staging dir. */
static char *
trash_name(struct ckpt_store *s, const char *run, const char *name)
{
	static unsigned int seq;
	char *dir = ckpt_store_path(s, TRASH_DIR), *p = NULL;

	if (!dir)
		return NULL;
	if (asprintf(&p, "%s/%s@%s.%lld.%ld.%u", dir, run, name,
	    (long long)time(NULL), (long)getpid(), seq++) < 0)
		p = NULL;
	free(dir);
	return p;
}

/* Creates the trash; it must be a directory of the store, not a link. */
static int
ensure_trash(struct ckpt_store *s, struct ckpt_error *err)
{
	char *dir = ckpt_store_path(s, TRASH_DIR);
	int rc = 0, fd;

	if (!dir)
		return ckpt_error_nomem(err);
	if (mkdir(dir, 0777) && errno != EEXIST)
		rc = ckpt_error_errno(err, dir, "cannot create the trash");
	free(dir);
	if (rc)
		return rc;
	fd = ckpt_store_opendir(s, TRASH_DIR, err);
	if (fd == -2)
		return ckpt_error_set(err, CKPT_ERR_IO, TRASH_DIR, -1,
		    "vanished after it was created");
	if (fd < 0)
		return err ? err->code : CKPT_ERR_IO;
	close(fd);
	return 0;
}

/* ------------------------------------------------------------------ */
/* prune                                                               */
/* ------------------------------------------------------------------ */

struct ckpt_prune_report {
	struct ckpt_prune_item *items;
	size_t n;
	struct ckpt_prune_run *runs;
	size_t nruns;
	size_t failed, trash_left;
	struct ckpt_lock_holder broken;
	struct ckpt_list *list;		/* entries the items borrow from */
	struct ckpt_plan **plans;	/* reasons the items borrow */
	size_t nplans;
	struct strpool pool;
};

void
ckpt_prune_report_free(struct ckpt_prune_report *r)
{
	if (!r)
		return;
	for (size_t i = 0; i < r->nplans; i++)
		ckpt_plan_free(r->plans[i]);
	free(r->plans);
	ckpt_list_free(r->list);
	pool_free(&r->pool);
	free(r->items);
	free(r->runs);
	free(r);
}

size_t
ckpt_prune_report_count(const struct ckpt_prune_report *r)
{
	return r ? r->n : 0;
}

const struct ckpt_prune_item *
ckpt_prune_report_item(const struct ckpt_prune_report *r, size_t i)
{
	return r && i < r->n ? &r->items[i] : NULL;
}

size_t
ckpt_prune_report_run_count(const struct ckpt_prune_report *r)
{
	return r ? r->nruns : 0;
}

const struct ckpt_prune_run *
ckpt_prune_report_run(const struct ckpt_prune_report *r, size_t i)
{
	return r && i < r->nruns ? &r->runs[i] : NULL;
}

size_t
ckpt_prune_report_failed(const struct ckpt_prune_report *r)
{
	return r ? r->failed : 0;
}

size_t
ckpt_prune_report_trash_left(const struct ckpt_prune_report *r)
{
	return r ? r->trash_left : 0;
}

const struct ckpt_lock_holder *
ckpt_prune_report_broken_lock(const struct ckpt_prune_report *r)
{
	return r ? &r->broken : NULL;
}

size_t
ckpt_prune_report_foreign_count(const struct ckpt_prune_report *r)
{
	return r && r->list ? ckpt_list_foreign_count(r->list) : 0;
}

const struct ckpt_foreign *
ckpt_prune_report_foreign(const struct ckpt_prune_report *r, size_t i)
{
	return r && r->list ? ckpt_list_foreign(r->list, i) : NULL;
}

/* Plans one run: entries [first, first + count) of the listing. */
static int
plan_one_run(struct ckpt_prune_report *r, const struct ckpt_policy *pol,
    size_t first, size_t count, int64_t now, struct ckpt_error *err)
{
	const struct ckpt_entry *e0 = ckpt_list_entry(r->list, first);
	struct ckpt_prune_run *rs = &r->runs[r->nruns];
	struct ckpt_candidate *c;
	double *values;
	struct ckpt_plan *plan = NULL;
	const char *metric;
	char *desc;
	int rc;

	c = calloc(count, sizeof(*c));
	values = calloc(count, sizeof(*values));
	if (!c || !values) {
		free(c);
		free(values);
		return ckpt_error_nomem(err);
	}
	for (size_t i = 0; i < count; i++) {
		const struct ckpt_entry *e = ckpt_list_entry(r->list,
		    first + i);

		values[i] = NAN;
		if (pol->metric && !ckpt_entry_metric(e, pol->metric,
		    &values[i]))
			values[i] = NAN;
		c[i].run = e->run;
		c[i].step = e->step;
		c[i].created = e->created;
		c[i].size = e->size;
		c[i].nmetrics = pol->metric ? 1 : 0;
		c[i].metric_names = &pol->metric;
		c[i].metric_values = &values[i];
		c[i].pinned = e->pinned;
		c[i].registry = e->protected_by_registry;
		c[i].failed = e->failed;
	}
	rc = ckpt_policy_plan(pol, c, count, now, &plan, err);
	if (rc) {
		/* name the run in a refusal or a bad policy */
		if (rc == CKPT_ERR_INVALID) {
			char msg[CKPT_ERROR_MSG_MAX];

			snprintf(msg, sizeof(msg), "%s", err ? err->message :
			    "");
			ckpt_error_set(err, rc, NULL, -1, "policy of run '%s': "
			    "%s", e0->run, msg);
		} else if (rc == CKPT_ERR_REFUSED && ckpt_policy_is_empty(pol)) {
			bool zero = pol->keep_last == 0 || pol->keep_best == 0;

			for (int b = 0; b < CKPT_BUCKET_COUNT; b++)
				zero = zero || pol->keep_bucket[b] == 0;
			if (zero || pol->keep_within == 0)
				ckpt_error_set(err, rc, NULL, -1, "refusing a "
				    "policy that keeps nothing in run '%s' "
				    "(every rule is 0)", e0->run);
			else
				ckpt_error_set(err, rc, NULL, -1, "no "
				    "retention policy for run '%s': give keep "
				    "rules or --max-size, or write them in the "
				    "store's ckpt.yaml (ckpt-policy(5))",
				    e0->run);
		}
		free(c);
		free(values);
		return rc;
	}
	r->plans[r->nplans++] = plan;
	/* the policy's strings belong to ckpt.yaml's config, freed soon */
	metric = pol->metric ? pool_add(&r->pool, strdup(pol->metric)) : NULL;
	if (pol->metric && !metric) {
		free(c);
		free(values);
		return ckpt_error_nomem(err);
	}
	desc = ckpt_policy_describe(pol);
	rs->run = e0->run;
	rs->policy = pool_add(&r->pool, desc);
	if (!rs->policy) {
		free(c);
		free(values);
		return ckpt_error_nomem(err);
	}
	rs->first = first;
	rs->count = count;
	rs->over_budget = ckpt_plan_run(plan, 0)->over_budget;
	for (size_t i = 0; i < count; i++) {
		const struct ckpt_entry *e = ckpt_list_entry(r->list,
		    first + i);
		const struct ckpt_verdict *v = ckpt_plan_verdict(plan, i);
		struct ckpt_prune_item *it = &r->items[first + i];

		it->run = e->run;
		it->step = e->step;
		it->path = e->path;
		it->created = e->created;
		it->size = e->size;
		it->metric = metric;
		it->value = values[i];
		it->keep = v->keep;
		it->nreasons = v->nreasons;
		it->reasons = v->reasons;
		if (it->keep) {
			rs->kept++;
			rs->kept_bytes += e->size;
		}
	}
	r->nruns++;
	free(c);
	free(values);
	return 0;
}

/*
 * Renames runs/RUN/NAME into the trash without following a symbolic link
 * anywhere below the store root: the run and the trash are opened with
 * O_NOFOLLOW, and NAME must still be a directory, not a link to one.
 */
static int
rename_into_trash(struct ckpt_store *s, const struct ckpt_entry *e,
    const char *dst)
{
	char rel[PATH_MAX];
	struct stat st;
	int rfd, tfd, rc = -1, saved;

	snprintf(rel, sizeof(rel), "runs/%s", e->run);
	rfd = ckpt_open_dir_nofollow(ckpt_store_root(s), rel);
	if (rfd < 0)
		return -1;
	tfd = ckpt_open_dir_nofollow(ckpt_store_root(s), TRASH_DIR);
	if (tfd >= 0 && !fstatat(rfd, e->name, &st, AT_SYMLINK_NOFOLLOW)) {
		if (!S_ISDIR(st.st_mode))
			errno = ELOOP;
		else
			rc = renameat(rfd, e->name, tfd, strrchr(dst, '/') +
			    1);
	}
	saved = errno;
	close(rfd);
	if (tfd >= 0)
		close(tfd);
	errno = saved;
	return rc;
}

/* Moves item into the trash; records the outcome in it. */
static void
trash_item(struct ckpt_store *s, struct ckpt_prune_report *r,
    struct ckpt_prune_item *it, const struct ckpt_entry *e)
{
	char *dst = trash_name(s, e->run, e->name ? e->name : "ckpt");

	if (!dst) {
		it->error = "out of memory";
		return;
	}
	if (rename_into_trash(s, e, dst)) {
		it->error = pool_printf(&r->pool, "cannot move %s into the "
		    "trash: %s", e->path, strerror(errno));
		if (!it->error)
			it->error = "cannot move into the trash";
		free(dst);
		return;
	}
	it->removed = true;
	it->trash_path = pool_add(&r->pool, dst);
}

/*
 * Removes one planned checkpoint unless a pin or a registry version now
 * protects it; an error reading them keeps it and is reported.
 */
static void
recheck_then_trash(struct ckpt_store *s, struct ckpt_prune_report *r,
    struct ckpt_prune_run *rs, struct ckpt_prune_item *it,
    const struct ckpt_entry *e)
{
	static const char *const pinned[] = { "pinned" };
	static const char *const registry[] = { "registry" };
	struct ckpt_error err;
	const char *why;

	ckpt_error_clear(&err);
	if (ckpt_protection_recheck(s, e->run, e->step, &why, &err)) {
		it->error = pool_printf(&r->pool, "not removed: cannot check "
		    "pins and registry: %s", err.message);
		if (!it->error)
			it->error = "not removed: cannot check pins and "
			    "registry";
		return;
	}
	if (why) {
		it->keep = true;
		it->nreasons = 1;
		it->reasons = !strcmp(why, "pinned") ? pinned : registry;
		rs->kept++;
		rs->kept_bytes += e->size;
		return;
	}
	trash_item(s, r, it, e);
}

int
ckpt_store_prune(struct ckpt_store *s, const struct ckpt_prune_opts *opts,
    struct ckpt_prune_report **out, struct ckpt_error *err)
{
	struct ckpt_policy_config *cfg = NULL;
	struct ckpt_prune_report *r;
	bool locked = false;
	int64_t now;
	size_t n;
	char *path;
	int rc;

	if (!s || !opts || !out)
		return ckpt_error_set(err, CKPT_ERR_INVALID, NULL, -1,
		    "no store or options");
	now = opts->now ? opts->now : (int64_t)time(NULL);
	if (opts->run && (rc = ckpt_name_check(opts->run, "run name", err)))
		return rc;
	r = calloc(1, sizeof(*r));
	if (!r)
		return ckpt_error_nomem(err);
	/* read even when the flags replace its policy: trash behaviour */
	path = ckpt_store_path(s, "ckpt.yaml");
	if (!path) {
		rc = ckpt_error_nomem(err);
		goto out;
	}
	rc = ckpt_policy_config_load(path, &cfg, err);
	free(path);
	if (rc)
		goto out;
	if (!opts->dry_run) {
		if ((rc = ckpt_store_lock(s, "prune", opts->lock_timeout_ms,
		    &r->broken, err)))
			goto out;
		locked = true;
		if ((rc = ensure_trash(s, err)))
			goto out;
	}
	/* a removal is decided on the files themselves, never the index */
	if ((rc = ckpt_store_list(s, opts->run, opts->dry_run ? 0 :
	    CKPT_LIST_NO_INDEX, &r->list, err)))
		goto out;
	n = ckpt_list_count(r->list);
	if (opts->run && n == 0) {
		char *rd, *rel = NULL;
		struct stat st;

		if (asprintf(&rel, "runs/%s", opts->run) < 0)
			rel = NULL;
		rd = rel ? ckpt_store_path(s, rel) : NULL;
		free(rel);
		if (!rd) {
			rc = ckpt_error_nomem(err);
			goto out;
		}
		if (stat(rd, &st) || !S_ISDIR(st.st_mode)) {
			rc = ckpt_error_set(err, CKPT_ERR_NOTFOUND, NULL, -1,
			    "no run '%s' in the store", opts->run);
			free(rd);
			goto out;
		}
		free(rd);
	}
	r->n = n;
	r->items = calloc(n ? n : 1, sizeof(*r->items));
	r->runs = calloc(n ? n : 1, sizeof(*r->runs));
	r->plans = calloc(n ? n : 1, sizeof(*r->plans));
	if (!r->items || !r->runs || !r->plans) {
		rc = ckpt_error_nomem(err);
		goto out;
	}

	/* Decide everything first. */
	for (size_t i = 0; i < n;) {
		const char *run = ckpt_list_entry(r->list, i)->run;
		struct ckpt_policy pol;
		size_t j = i;

		while (j < n && !strcmp(ckpt_list_entry(r->list, j)->run, run))
			j++;
		ckpt_policy_config_lookup(opts->ignore_config ? NULL : cfg,
		    run, &pol);
		if (opts->policy)
			ckpt_policy_merge(&pol, opts->policy);
		if ((rc = plan_one_run(r, &pol, i, j - i, now, err)))
			goto out;
		i = j;
	}
	if (opts->dry_run)
		goto tally;

	/* Then act: renames under the lock, each after a fresh look at
	 * the pins and the registry (fail closed). */
	for (size_t g = 0; g < r->nruns; g++) {
		struct ckpt_prune_run *rs = &r->runs[g];

		for (size_t k = 0; k < rs->count; k++) {
			size_t i = rs->first + k;
			struct ckpt_prune_item *it = &r->items[i];

			if (it->keep)
				continue;
			recheck_then_trash(s, r, rs, it,
			    ckpt_list_entry(r->list, i));
		}
	}
	{
		char *td = ckpt_store_path(s, TRASH_DIR);

		if (td)
			fsync_dir(td);
		free(td);
		for (size_t g = 0; g < r->nruns; g++) {
			char *rd = r->runs[g].count ? dirname_of(
			    r->items[r->runs[g].first].path) : NULL;

			if (rd && fsync_dir(rd)) {
				/* renamed but perhaps not durable: say so */
				for (size_t k = 0; k < r->runs[g].count; k++) {
					struct ckpt_prune_item *it = &r->items[
					    r->runs[g].first + k];

					if (it->removed && !it->error)
						it->error = "moved into the "
						    "trash, but fsync of the "
						    "run directory failed";
				}
			}
			free(rd);
		}
	}
	ckpt_store_unlock(s);
	locked = false;

	/* Deleting the trash entries needs no lock. */
	if (ckpt_policy_config_trash(cfg) == CKPT_TRASH_DELETE)
		for (size_t i = 0; i < n; i++) {
			struct ckpt_prune_item *it = &r->items[i];

			if (!it->trash_path)
				continue;
			if (ckpt_rm_rf(it->trash_path))
				r->trash_left++;
			else
				it->trash_path = NULL;
		}
tally:
	for (size_t g = 0; g < r->nruns; g++) {
		struct ckpt_prune_run *rs = &r->runs[g];

		for (size_t k = 0; k < rs->count; k++) {
			struct ckpt_prune_item *it = &r->items[rs->first + k];

			if (it->keep)
				continue;
			if (it->error && !it->removed) {
				rs->failed++;
				r->failed++;
			} else {
				rs->removed++;
				rs->removed_bytes += it->size;
			}
		}
	}
	rc = 0;
out:
	if (locked)
		ckpt_store_unlock(s);
	ckpt_policy_config_free(cfg);
	if (rc) {
		ckpt_prune_report_free(r);
		return rc;
	}
	*out = r;
	return 0;
}

/* ------------------------------------------------------------------ */
/* gc                                                                  */
/* ------------------------------------------------------------------ */

struct ckpt_gc_report {
	struct ckpt_gc_item *items;
	size_t n, cap;
	int64_t older_than;
	size_t failed;
	struct ckpt_lock_holder broken;
	struct strpool pool;
};

const struct ckpt_lock_holder *
ckpt_gc_report_broken_lock(const struct ckpt_gc_report *r)
{
	return r ? &r->broken : NULL;
}

void
ckpt_gc_report_free(struct ckpt_gc_report *r)
{
	if (!r)
		return;
	pool_free(&r->pool);
	free(r->items);
	free(r);
}

size_t
ckpt_gc_report_count(const struct ckpt_gc_report *r)
{
	return r ? r->n : 0;
}

const struct ckpt_gc_item *
ckpt_gc_report_item(const struct ckpt_gc_report *r, size_t i)
{
	return r && i < r->n ? &r->items[i] : NULL;
}

int64_t
ckpt_gc_report_older_than(const struct ckpt_gc_report *r)
{
	return r ? r->older_than : 0;
}

size_t
ckpt_gc_report_failed(const struct ckpt_gc_report *r)
{
	return r ? r->failed : 0;
}

static struct ckpt_gc_item *
gc_add(struct ckpt_gc_report *r)
{
	if (r->n == r->cap) {
		size_t cap = r->cap ? r->cap * 2 : 16;
		struct ckpt_gc_item *v = realloc(r->items, cap * sizeof(*v));

		if (!v)
			return NULL;
		r->items = v;
		r->cap = cap;
	}
	memset(&r->items[r->n], 0, sizeof(r->items[0]));
	return &r->items[r->n++];
}

/* Lists the trash entries as items to remove. */
static int
gc_scan_trash(struct ckpt_store *s, struct ckpt_gc_report *r, int64_t now,
    struct ckpt_error *err)
{
	char *dir = ckpt_store_path(s, TRASH_DIR);
	struct dirent *de;
	DIR *d;
	int rc = 0;

	if (!dir)
		return ckpt_error_nomem(err);
	d = opendir(dir);
	if (!d) {
		rc = errno == ENOENT ? 0 : ckpt_error_errno(err, dir,
		    "cannot read the trash");
		free(dir);
		return rc;
	}
	while ((de = readdir(d))) {
		struct ckpt_gc_item *it;
		struct stat st;

		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (!(it = gc_add(r))) {
			rc = ckpt_error_nomem(err);
			break;
		}
		it->kind = CKPT_GC_TRASH;
		it->step = -1;
		it->path = pool_printf(&r->pool, "%s/%s", dir, de->d_name);
		if (!it->path) {
			rc = ckpt_error_nomem(err);
			break;
		}
		if (!fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW))
			it->age = now - (int64_t)st.st_mtime;
		it->size = du_at(dirfd(d), de->d_name, 0);
		it->remove = true;
		it->reason = "in the trash";
	}
	closedir(d);
	free(dir);
	return rc;
}

/* ---- Whose is a staging directory, and is its owner alive? ---- */

enum owner_state {
	OWNER_ALIVE,		/* its process runs: never touched */
	OWNER_GONE,		/* known dead (this machine could check) */
	OWNER_UNKNOWN		/* another host or pid namespace */
};

/* What ckpt-staging.json says (strings borrowed from rec). */
struct staging_rec {
	json_t *rec;		/* NULL: no record */
	long pid;
	unsigned long long start;
	const char *host, *boot, *pidns, *machine, *state, *transfer;
	json_t *sources;	/* [{"source": ABS, "path": REL}], or NULL */
	int64_t updated;
	bool unreadable;	/* there, but cannot be read or parsed */
};

static const char *
jstr(json_t *o, const char *k)
{
	return json_string_value(json_object_get(o, k));
}

static void
staging_rec_read(const char *dir, struct staging_rec *r)
{
	char *p = ckpt_join(dir, CKPT_STAGING_NAME), *text = NULL;
	json_t *v;
	int rc;

	memset(r, 0, sizeof(*r));
	if (!p) {
		r->unreadable = true;
		return;
	}
	rc = ckpt_read_file(p, (size_t)4 << 20, &text, NULL, NULL);
	free(p);
	if (rc) {
		/* Fail closed: only a record that is not there at all
		 * counts as none. */
		r->unreadable = rc != CKPT_ERR_NOTFOUND;
		return;
	}
	r->rec = json_loads(text, 0, NULL);
	free(text);
	if (!json_is_object(r->rec)) {
		json_decref(r->rec);
		r->rec = NULL;
		r->unreadable = true;
		return;
	}
	v = json_object_get(r->rec, "pid");
	r->pid = json_is_integer(v) ? (long)json_integer_value(v) : 0;
	v = json_object_get(r->rec, "start");
	r->start = json_is_integer(v) && json_integer_value(v) > 0 ?
	    (unsigned long long)json_integer_value(v) : 0;
	r->host = jstr(r->rec, "host");
	r->boot = jstr(r->rec, "boot");
	r->pidns = jstr(r->rec, "pidns");
	r->machine = jstr(r->rec, "machine");
	r->state = jstr(r->rec, "state");
	r->transfer = jstr(r->rec, "transfer");
	r->sources = json_object_get(r->rec, "sources");
	if (!json_is_array(r->sources))
		r->sources = NULL;
	r->updated = ckpt_parse_iso_time(jstr(r->rec, "updated"));
	if (r->updated <= 0)
		r->updated = ckpt_parse_iso_time(jstr(r->rec, "started"));
}

/*
 * The same rule as the store lock's (store.c): only a process of this
 * machine and pid namespace can be checked, by pid and start time; a
 * reboot (another boot id, the same machine id) ended it too.
 */
static enum owner_state
owner_state(const struct staging_rec *r)
{
	const char *ns = r->pidns && *r->pidns ? r->pidns : ckpt_pid_ns();

	if (!r->host || strcmp(r->host, ckpt_hostname()) || r->pid <= 0 ||
	    strcmp(ns, ckpt_pid_ns()))
		return OWNER_UNKNOWN;
	if (r->boot && *r->boot && ckpt_boot_id()[0] && strcmp(r->boot,
	    ckpt_boot_id()))
		return r->machine && *r->machine && ckpt_machine_id()[0] &&
		    !strcmp(r->machine, ckpt_machine_id()) ? OWNER_GONE :
		    OWNER_UNKNOWN;
	return ckpt_proc_alive(r->pid, r->start) ? OWNER_ALIVE : OWNER_GONE;
}

/* The pid in ".tmp-step-N.PID.RANDOM" (or .new-), 0 when none. */
static long
pid_of_name(const char *name)
{
	const char *dot = strchr(name, '.') ? strchr(name + 1, '.') : NULL;
	char *end;
	long pid;

	if (!dot)
		return 0;
	pid = strtol(dot + 1, &end, 10);
	return *end == '.' && pid > 0 ? pid : 0;
}

/*
 * Moves the sources of a --move save back where they came from, as the
 * save's own failure path does, never replacing anything: a source path
 * that exists again, a parent that is gone, another filesystem... keeps
 * the file where it is, and the staging directory with it.  Returns how
 * many could not go back; *why says the first reason.
 */
static size_t
restore_sources(struct ckpt_gc_report *r, const char *dir,
    const struct staging_rec *rec, size_t *restored, const char **why)
{
	size_t stuck = 0, i;
	json_t *el;

	*restored = 0;
	json_array_foreach(rec->sources, i, el) {
		const char *src = jstr(el, "source"), *rel = jstr(el, "path");
		struct stat st;
		char *in;

		/* A record is data in the store: only a top-level name, back
		 * to an absolute path, ever. */
		if (!src || !rel || src[0] != '/' || strstr(src, "/../") ||
		    strchr(rel, '/') || ckpt_manifest_path_problem(rel)) {
			stuck++;
			if (!*why)
				*why = "the record names a source oddly";
			continue;
		}
		in = ckpt_join(dir, rel);
		if (!in)
			continue;
		if (lstat(in, &st)) {
			free(in);	/* never moved in, or back already */
			continue;
		}
		if (!renameat2(AT_FDCWD, in, AT_FDCWD, src, RENAME_NOREPLACE) ||
		    ((errno == EINVAL || errno == ENOSYS) &&
		    access(src, F_OK) && errno == ENOENT && !rename(in, src))) {
			char *parent = dirname_of(src);

			if (parent)
				fsync_dir(parent);
			free(parent);
			(*restored)++;
		} else {
			stuck++;
			if (!*why)
				*why = pool_printf(&r->pool, "cannot move %s "
				    "back to %s: %s", rel, src,
				    strerror(errno == EINVAL ? EEXIST : errno));
		}
		free(in);
	}
	return stuck;
}

static struct ckpt_gc_item *
staging_item(struct ckpt_gc_report *r, const char *run, const char *path,
    const char *name)
{
	struct ckpt_gc_item *it = gc_add(r);
	char *dir;
	int dfd;

	if (!it)
		return NULL;
	it->kind = CKPT_GC_STAGING;
	it->step = -1;
	it->path = pool_add(&r->pool, strdup(path));
	it->run = pool_add(&r->pool, strdup(run));
	if (!it->path || !it->run)
		return NULL;
	dir = dirname_of(path);
	dfd = dir ? open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC) : -1;
	if (dfd >= 0) {
		it->size = du_at(dfd, name, 0);
		close(dfd);
	}
	free(dir);
	return it;
}

/*
 * Decides on one staging directory (under the lock).  A live owner is
 * never touched; an unknown one (another host or pid namespace) only
 * once its last sign of life is older than the threshold; a gone one
 * once older than the threshold (at once with --restore).  Whatever goes
 * has its moved files put back first (restore_sources), and stays if
 * they cannot go back.
 */
static int
gc_decide_staging(struct ckpt_store *s, struct ckpt_gc_report *r,
    const struct ckpt_gc_opts *opts, const char *run, const char *path,
    const char *name, bool incomplete, int64_t now, const char *dur)
{
	struct ckpt_gc_item *it = staging_item(r, run, path, name);
	struct staging_rec rec;
	enum owner_state os;
	bool failed, moved;
	struct stat st;

	if (!it)
		return -1;
	if (incomplete) {
		it->reason = "not a staging directory (no manifest, not "
		    ".tmp-*): left alone";
		return 0;
	}
	staging_rec_read(path, &rec);
	if (!lstat(path, &st))
		it->age = now - (int64_t)st.st_mtime;
	if (rec.unreadable) {
		/* It may list where moved files came from: never guess. */
		it->reason = "staging record unreadable: left alone (see its "
		    CKPT_STAGING_NAME ")";
		return 0;
	}
	if (!rec.rec) {
		long pid = pid_of_name(name);

		/* Savers write the record before the directory gets its
		 * .tmp- name: no record means no file of the user's. */
		if (pid && ckpt_proc_alive(pid, 0)) {
			it->reason = pool_printf(&r->pool, "no staging record; "
			    "pid %ld (in its name) is alive", pid);
		} else if (opts->restore) {
			it->reason = "crashed save: nothing to restore";
		} else if (it->age < r->older_than) {
			it->reason = pool_printf(&r->pool, "crashed save, "
			    "younger than %s", dur);
		} else {
			it->remove = true;
			it->reason = "crashed save";
		}
		return it->reason ? 0 : -1;
	}
	{
		json_t *v = json_object_get(rec.rec, "step");

		if (json_is_integer(v))
			it->step = json_integer_value(v);
	}
	if (rec.updated > 0)
		it->age = now - rec.updated;
	failed = rec.state && !strcmp(rec.state, "failed");
	moved = rec.transfer && !strcmp(rec.transfer, "move") && rec.sources;
	os = owner_state(&rec);
	if (os == OWNER_ALIVE && !failed) {
		it->reason = pool_printf(&r->pool, "save in flight (pid %ld is "
		    "alive)", rec.pid);
	} else if (opts->restore && (!moved || os == OWNER_UNKNOWN)) {
		it->reason = !moved ? "not a --move save: nothing to restore" :
		    "save on another host or pid namespace: not restored";
	} else if (!opts->restore && it->age < r->older_than) {
		it->reason = pool_printf(&r->pool, "%s, younger than %s",
		    failed ? "failed save" : os == OWNER_UNKNOWN ?
		    "save on another host" : "crashed save", dur);
	} else {
		it->remove = true;
		it->reason = failed ? "failed save" : os == OWNER_UNKNOWN ?
		    pool_printf(&r->pool, "save on host %s, no sign of life "
		    "for %s", rec.host ? rec.host : "?", dur) : "crashed save";
	}
	if (it->remove && moved && !opts->dry_run) {
		const char *why = NULL;
		size_t back, stuck;

		if (st.st_uid != geteuid()) {
			/* Never move files to paths a record names for
			 * another user (a record is only data). */
			it->remove = false;
			it->error = pool_printf(&r->pool, "kept: its moved "
			    "files belong to uid %ld; run 'ckpt gc --restore' "
			    "as that user", (long)st.st_uid);
		} else if ((stuck = restore_sources(r, path, &rec, &back,
		    &why))) {
			it->remove = false;
			it->error = pool_printf(&r->pool, "kept: %zu moved "
			    "file%s cannot go back (%s); they stay here, "
			    "listed in %s", stuck, stuck == 1 ? "" : "s",
			    why ? why : "?", CKPT_STAGING_NAME);
		} else if (back) {
			it->reason = pool_printf(&r->pool, "%s; %zu moved "
			    "file%s moved back", it->reason, back, back == 1 ?
			    "" : "s");
		}
	} else if (it->remove && moved) {
		it->reason = pool_printf(&r->pool, "%s; its moved files go "
		    "back first", it->reason);
	}
	json_decref(rec.rec);
	return it->reason ? 0 : -1;
}

/*
 * Staging directories being created (.new-*, see save.c): they hold no
 * file of the user's.  Removed once the pid in the name is gone and the
 * record inside (when there is one) says so too, and they are older
 * than the threshold.
 */
static int
gc_scan_new(struct ckpt_store *s, struct ckpt_gc_report *r,
    const struct ckpt_gc_opts *opts, int64_t now, const char *dur)
{
	char *runs = ckpt_store_path(s, "runs");
	struct dirent *de, *e2;
	DIR *d, *rd;
	int rc = 0;

	if (!runs)
		return -1;
	d = opendir(runs);
	if (!d) {
		free(runs);
		return 0;
	}
	while (!rc && (de = readdir(d))) {
		struct stat rst;
		char *rp;

		/* Never a symlink out of the store: only real run dirs. */
		if (de->d_name[0] == '.' || fstatat(dirfd(d), de->d_name, &rst,
		    AT_SYMLINK_NOFOLLOW) || !S_ISDIR(rst.st_mode))
			continue;
		rp = ckpt_join(runs, de->d_name);
		rd = rp ? opendir(rp) : NULL;
		while (rd && !rc && (e2 = readdir(rd))) {
			struct ckpt_gc_item *it;
			struct staging_rec rec;
			struct stat st;
			char *p;
			long pid;

			if (strncmp(e2->d_name, CKPT_STAGING_NEW_PREFIX,
			    strlen(CKPT_STAGING_NEW_PREFIX)))
				continue;
			p = ckpt_join(rp, e2->d_name);
			it = p ? staging_item(r, de->d_name, p, e2->d_name) :
			    NULL;
			if (!it) {
				free(p);
				rc = -1;
				break;
			}
			if (!lstat(p, &st))
				it->age = now - (int64_t)st.st_mtime;
			staging_rec_read(p, &rec);
			pid = rec.rec ? rec.pid : pid_of_name(e2->d_name);
			if (rec.unreadable)
				it->reason = "staging record unreadable: left "
				    "alone";
			else if (rec.rec ? owner_state(&rec) == OWNER_ALIVE :
			    ckpt_proc_alive(pid, 0))
				it->reason = pool_printf(&r->pool, "save being "
				    "set up (pid %ld is alive)", pid);
			else if (opts->restore || it->age < r->older_than)
				it->reason = pool_printf(&r->pool, "unfinished "
				    "staging directory, younger than %s", dur);
			else {
				it->remove = true;
				it->reason = "unfinished staging directory "
				    "(nothing of the user's in it)";
			}
			json_decref(rec.rec);
			free(p);
			if (!it->reason)
				rc = -1;
		}
		if (rd)
			closedir(rd);
		free(rp);
	}
	closedir(d);
	free(runs);
	return rc;
}

/* Decides on each staging directory; the live and the young stay. */
static int
gc_scan_staging(struct ckpt_store *s, struct ckpt_gc_report *r,
    const struct ckpt_gc_opts *opts, const struct ckpt_list *l, int64_t now,
    struct ckpt_error *err)
{
	char dur[64];

	ckpt_duration_format(r->older_than, dur, sizeof(dur));
	for (size_t i = 0; i < ckpt_list_staging_count(l); i++) {
		const struct ckpt_staging *st = ckpt_list_staging(l, i);

		if (gc_decide_staging(s, r, opts, st->run, st->path, st->name,
		    st->state == CKPT_STAGING_INCOMPLETE, now, dur))
			return ckpt_error_nomem(err);
	}
	if (gc_scan_new(s, r, opts, now, dur))
		return ckpt_error_nomem(err);
	return 0;
}

static int
cmp_gc_item(const void *a, const void *b)
{
	const struct ckpt_gc_item *x = a, *y = b;

	if (x->kind != y->kind)
		return x->kind < y->kind ? -1 : 1;
	return strcmp(x->path, y->path);
}

int
ckpt_store_gc(struct ckpt_store *s, const struct ckpt_gc_opts *opts,
    struct ckpt_gc_report **out, struct ckpt_error *err)
{
	struct ckpt_policy_config *cfg = NULL;
	struct ckpt_list *list = NULL;
	struct ckpt_gc_report *r;
	bool locked = false;
	int64_t now;
	char *path;
	int rc;

	if (!s || !opts || !out)
		return ckpt_error_set(err, CKPT_ERR_INVALID, NULL, -1,
		    "no store or options");
	now = opts->now ? opts->now : (int64_t)time(NULL);
	r = calloc(1, sizeof(*r));
	if (!r)
		return ckpt_error_nomem(err);
	r->older_than = opts->older_than;
	if (r->older_than < 0) {
		path = ckpt_store_path(s, "ckpt.yaml");
		if (!path) {
			rc = ckpt_error_nomem(err);
			goto out;
		}
		rc = ckpt_policy_config_load(path, &cfg, err);
		free(path);
		if (rc)
			goto out;
		r->older_than = ckpt_policy_config_gc_age(cfg);
	}
	if (!opts->dry_run) {
		if ((rc = ckpt_store_lock(s, "gc", opts->lock_timeout_ms,
		    &r->broken, err)))
			goto out;
		locked = true;
		if ((rc = ensure_trash(s, err)))
			goto out;
	}
	/* Everything is decided under the lock (a dry run excepted): a
	 * save commits, and a failed one marks its record, only under it. */
	if (!opts->restore && (rc = gc_scan_trash(s, r, now, err)))
		goto out;
	if ((rc = ckpt_store_list(s, NULL, CKPT_LIST_STAGING, &list, err)))
		goto out;
	if ((rc = gc_scan_staging(s, r, opts, list, now, err)))
		goto out;
	if (opts->dry_run)
		goto done;

	/* Under the lock: dead staging dirs go into the trash. */
	for (size_t i = 0; i < r->n; i++) {
		struct ckpt_gc_item *it = &r->items[i];
		const char *base;
		char *dst;

		if (it->kind != CKPT_GC_STAGING || !it->remove)
			continue;
		base = strrchr(it->path, '/');
		dst = trash_name(s, it->run, base ? base + 1 : it->path);
		if (!dst) {
			rc = ckpt_error_nomem(err);
			goto out;
		}
		if (rename(it->path, dst)) {
			it->error = pool_printf(&r->pool, "cannot move into "
			    "the trash: %s", strerror(errno));
			if (!it->error)
				it->error = "cannot move into the trash";
			free(dst);
			continue;
		}
		it->path = pool_add(&r->pool, dst);
	}
	ckpt_store_unlock(s);
	locked = false;

	/* Without the lock: delete. */
	for (size_t i = 0; i < r->n; i++) {
		struct ckpt_gc_item *it = &r->items[i];

		if (!it->remove || it->error)
			continue;
		if (ckpt_rm_rf(it->path))
			it->error = pool_printf(&r->pool, "cannot delete: %s",
			    strerror(errno));
		else
			it->removed = true;
	}
done:
	/* readdir order is the filesystem's: sort for stable output */
	if (r->n)	/* qsort(NULL, 0, ...) is undefined (UBSan) */
		qsort(r->items, r->n, sizeof(*r->items), cmp_gc_item);
	for (size_t i = 0; i < r->n; i++)
		if (r->items[i].error)
			r->failed++;
	rc = 0;
out:
	if (locked)
		ckpt_store_unlock(s);
	ckpt_list_free(list);
	ckpt_policy_config_free(cfg);
	if (rc) {
		ckpt_gc_report_free(r);
		return rc;
	}
	*out = r;
	return 0;
}
