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
#include "store/backend.h"
#include "store/store.h"
#include "store/registry.h"

#include <dirent.h>
#include <fcntl.h>
#include <math.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#define RM_MAX_DEPTH 128

/* ------------------------------------------------------------------ */
/* Helpers                                                             */
/* ------------------------------------------------------------------ */

/*
 * Strings owned by a report, packed in a listing's pool (no malloc and
 * no pointer slot each: a prune of 100,000 checkpoints has as many trash
 * paths).  pool_add takes s (malloc'd, may be NULL) and frees it.
 */
struct strpool {
	struct ckpt_pool p;
};

static const char *
pool_add(struct strpool *p, char *s)
{
	const char *d;

	if (!s)
		return NULL;
	d = ckpt_pool_strndup(&p->p, s, strlen(s), NULL);
	free(s);
	return d;
}

/* A copy of s (not NULL) in the pool. */
static const char *
pool_strdup(struct strpool *p, const char *s)
{
	return ckpt_pool_strndup(&p->p, s, strlen(s), NULL);
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
	ckpt_pool_release(&p->p);
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
 * Removes path (in the store) and everything under it through the
 * backend (remove_tree: no link followed, the manifest first).  Returns
 * 0 or -1 with errno.
 */
static int
rm_rf(struct ckpt_store *s, const char *path)
{
	const char *key = ckpt_store_key(s, path);
	struct ckpt_error e;

	if (!key) {
		errno = EINVAL;
		return -1;
	}
	ckpt_error_clear(&e);
	if (!s->ops->remove_tree(s->be, key, &e))
		return 0;
	errno = e.sys_errno ? e.sys_errno : e.code == CKPT_ERR_UNSAFE ?
	    ELOOP : EIO;
	return -1;
}

/* Bytes of the files under path (reports only). */
static uint64_t
du(struct ckpt_store *s, const char *path)
{
	const char *key = ckpt_store_key(s, path);

	return key ? s->ops->usage(s->be, key) : 0;
}

/* A unique name in the trash for a run's checkpoint or staging dir. */
static char *
trash_name(struct ckpt_store *s, const char *run, const char *name)
{
	static unsigned int seq;
	char *dir = ckpt_store_path(s, CKPT_STORE_TRASH), *p = NULL;

	if (!dir)
		return NULL;
	if (asprintf(&p, "%s/%s@%s.%lld.%ld.%u", dir, run, name,
	    (long long)time(NULL), (long)getpid(), seq++) < 0)
		p = NULL;
	free(dir);
	return p;
}

/*
 * The trash, if there is one, must be a directory of the store, not a
 * link (the backend's trash creates it when missing).
 */
static int
ensure_trash(struct ckpt_store *s, struct ckpt_error *err)
{
	struct ckpt_be_info st;
	char *dir;
	int rc;

	rc = s->ops->stat(s->be, CKPT_STORE_TRASH, &st, err);
	if (rc == CKPT_ERR_NOTFOUND)
		return 0;
	if (rc || st.type == CKPT_BE_DIR)
		return rc;
	dir = ckpt_store_path(s, CKPT_STORE_TRASH);
	rc = ckpt_error_set(err, CKPT_ERR_UNSAFE, dir ? dir : CKPT_STORE_TRASH,
	    -1, "%s: refusing to follow it out of the store", st.type ==
	    CKPT_BE_LINK ? "a symbolic link" : "not a directory");
	free(dir);
	return rc;
}

/* ------------------------------------------------------------------ */
/* prune                                                               */
/* ------------------------------------------------------------------ */

/*
 * The items of a prune report are in blocks of ITEM_BLOCK: they are made
 * from the listing's entries from the last block down, the entries
 * given back as each block is filled (ckpt_list_truncate), so that the
 * listing (152 bytes a checkpoint) and the report (96) are never both
 * whole.  The plan reads its candidates from the items and marks.
 */
#define ITEM_BLOCK	4096

enum {
	MARK_PINNED = 1,
	MARK_REGISTRY = 2,
	MARK_FAILED = 4
};

struct ckpt_prune_report {
	struct ckpt_prune_item **blocks;
	size_t n, nblocks;
	unsigned char *marks;		/* MARK_*, per item, while planning */
	struct ckpt_prune_run *runs;
	size_t nruns;
	size_t failed, trash_left;
	struct ckpt_lock_holder broken;
	struct ckpt_list *list;		/* its pool holds the items' strings;
					 * its entries are given back */
	struct ckpt_plan **plans;	/* reasons the items borrow */
	size_t nplans;
	struct strpool pool;
	char *history_error;		/* the prune event not recorded */
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
	free(r->history_error);
	for (size_t b = 0; b < r->nblocks; b++)
		free(r->blocks[b]);
	free(r->blocks);
	free(r->marks);
	free(r->runs);
	free(r);
}

static struct ckpt_prune_item *
item_at(const struct ckpt_prune_report *r, size_t i)
{
	return &r->blocks[i / ITEM_BLOCK][i % ITEM_BLOCK];
}

size_t
ckpt_prune_report_count(const struct ckpt_prune_report *r)
{
	return r ? r->n : 0;
}

const struct ckpt_prune_item *
ckpt_prune_report_item(const struct ckpt_prune_report *r, size_t i)
{
	return r && i < r->n ? item_at(r, i) : NULL;
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

const char *
ckpt_prune_report_history_error(const struct ckpt_prune_report *r)
{
	return r ? r->history_error : NULL;
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

/* The runs of a listing (sorted by run: each run's entries are together),
 * for a report's per-run arrays. */
static size_t
count_runs(const struct ckpt_list *l)
{
	size_t n = ckpt_list_count(l), runs = 0;

	for (size_t i = 0; i < n; i++)
		if (!i || strcmp(ckpt_list_entry(l, i)->run,
		    ckpt_list_entry(l, i - 1)->run))
			runs++;
	return runs;
}

/* The metric called name (may be NULL) of e, or NULL. */
static const struct ckpt_metric *
entry_metric(const struct ckpt_entry *e, const char *name)
{
	for (size_t k = 0; name && k < e->nmetrics; k++)
		if (!strcmp(e->metrics[k].name, name))
			return &e->metrics[k];
	return NULL;
}

/*
 * The runs of the listing (r->runs: run, first, count) and their
 * policies (pols), with each run's metric name in the report's pool.
 */
static int
runs_of_listing(struct ckpt_prune_report *r, size_t nruns,
    const struct ckpt_policy_config *cfg,
    const struct ckpt_prune_options *opts, struct ckpt_policy *pols,
    const char **metrics, struct ckpt_error *err)
{
	size_t n = ckpt_list_count(r->list), g = 0;

	for (size_t i = 0; i < n && g < nruns; g++) {
		const char *run = ckpt_list_entry(r->list, i)->run;
		struct ckpt_prune_run *rs = &r->runs[g];
		size_t j = i;

		while (j < n && !strcmp(ckpt_list_entry(r->list, j)->run, run))
			j++;
		ckpt_policy_config_lookup(opts->ignore_config ? NULL : cfg,
		    run, &pols[g]);
		if (opts->policy)
			ckpt_policy_merge(&pols[g], opts->policy);
		/* the policy's strings belong to ckpt.yaml's config, freed
		 * soon */
		metrics[g] = pols[g].metric ? pool_strdup(&r->pool,
		    pols[g].metric) : NULL;
		if (pols[g].metric && !metrics[g])
			return ckpt_error_nomem(err);
		rs->run = run;
		rs->first = i;
		rs->count = j - i;
		i = j;
	}
	return 0;
}

/* Fills item i (and its marks) from entry i of the listing. */
static void
item_from_entry(struct ckpt_prune_report *r, size_t i, const char *metric)
{
	const struct ckpt_entry *e = ckpt_list_entry(r->list, i);
	const struct ckpt_metric *m = entry_metric(e, metric);
	struct ckpt_prune_item *it = item_at(r, i);

	it->run = e->run;
	it->step = e->step;
	it->path = e->path;
	it->created = e->created;
	it->size = e->size;
	it->metric = metric;
	it->value = m ? m->value : NAN;
	r->marks[i] = (e->pinned ? MARK_PINNED : 0) |
	    (e->protected_by_registry ? MARK_REGISTRY : 0) |
	    (e->failed ? MARK_FAILED : 0);
}

/*
 * Makes the report's items from the listing, the last block first,
 * giving the listing's entries back block by block (their strings stay
 * in its pool: the items point at them).
 */
static int
items_from_listing(struct ckpt_prune_report *r, size_t nruns,
    const char *const *metrics, struct ckpt_error *err)
{
	size_t n = r->n, g = nruns, nblocks = (n + ITEM_BLOCK - 1) / ITEM_BLOCK;

	r->blocks = calloc(nblocks ? nblocks : 1, sizeof(*r->blocks));
	r->marks = malloc(n ? n : 1);
	if (!r->blocks || !r->marks)
		return ckpt_error_nomem(err);
	r->nblocks = nblocks;
	for (size_t b = r->nblocks; b-- > 0;) {
		size_t from = b * ITEM_BLOCK, to = n - from > ITEM_BLOCK ?
		    from + ITEM_BLOCK : n;

		if (!(r->blocks[b] = calloc(to - from, sizeof(**r->blocks))))
			return ckpt_error_nomem(err);
		for (size_t i = to; i-- > from;) {
			while (g > 0 && r->runs[g - 1].first > i)
				g--;
			item_from_entry(r, i, metrics[g - 1]);
		}
		ckpt_list_truncate(r->list, from);
	}
	return 0;
}

/* What the plan of one run reads its candidates from. */
struct item_source {
	const struct ckpt_prune_report *r;
	size_t first;
	const char *const *metric;	/* the policy's, or NULL */
};

/* Candidate i of a run: item first + i and its marks. */
static const struct ckpt_candidate *
item_candidate(void *arg, size_t i, struct ckpt_candidate *c)
{
	const struct item_source *src = arg;
	const struct ckpt_prune_item *it = item_at(src->r, src->first + i);
	unsigned char mark = src->r->marks[src->first + i];

	memset(c, 0, sizeof(*c));
	c->run = it->run;
	c->step = it->step;
	c->created = it->created;
	c->size = it->size;
	/* NaN when the checkpoint has no such metric: no value either way */
	c->nmetrics = *src->metric ? 1 : 0;
	c->metric_names = src->metric;
	c->metric_values = &it->value;
	c->pinned = mark & MARK_PINNED;
	c->registry = mark & MARK_REGISTRY;
	c->failed = mark & MARK_FAILED;
	return c;
}

/* Plans run g of the report (its items are made) with policy pol. */
static int
plan_one_run(struct ckpt_prune_report *r, size_t g,
    const struct ckpt_policy *pol, int64_t now, struct ckpt_error *err)
{
	struct ckpt_prune_run *rs = &r->runs[g];
	const char *metric = rs->count ? item_at(r, rs->first)->metric : NULL;
	struct item_source src = { r, rs->first, &metric };
	struct ckpt_plan *plan = NULL;
	char *desc;
	int rc;

	rc = ckpt_policy_plan_fn(pol, item_candidate, &src, rs->count, now,
	    &plan, err);
	if (rc) {
		/* name the run in a refusal or a bad policy */
		if (rc == CKPT_ERR_INVALID) {
			char msg[CKPT_ERROR_MSG_MAX];

			snprintf(msg, sizeof(msg), "%s", err ? err->message :
			    "");
			ckpt_error_set(err, rc, NULL, -1, "policy of run '%s': "
			    "%s", rs->run, msg);
		} else if (rc == CKPT_ERR_REFUSED &&
		    ckpt_policy_is_empty(pol)) {
			bool zero = pol->keep_last == 0 || pol->keep_best == 0;

			for (int b = 0; b < CKPT_BUCKET_COUNT; b++)
				zero = zero || pol->keep_bucket[b] == 0;
			if (zero || pol->keep_within == 0)
				ckpt_error_set(err, rc, NULL, -1, "refusing a "
				    "policy that keeps nothing in run '%s' "
				    "(every rule is 0)", rs->run);
			else
				ckpt_error_set(err, rc, NULL, -1, "no "
				    "retention policy for run '%s': give keep "
				    "rules or --max-size, or write them in the "
				    "store's ckpt.yaml (ckpt-policy(5))",
				    rs->run);
		}
		return rc;
	}
	r->plans[r->nplans++] = plan;
	desc = ckpt_policy_describe(pol);
	rs->policy = pool_add(&r->pool, desc);
	if (!rs->policy)
		return ckpt_error_nomem(err);
	rs->over_budget = ckpt_plan_run(plan, 0)->over_budget;
	for (size_t i = 0; i < rs->count; i++) {
		const struct ckpt_verdict *v = ckpt_plan_verdict(plan, i);
		struct ckpt_prune_item *it = item_at(r, rs->first + i);

		it->keep = v->keep;
		it->nreasons = v->nreasons;
		it->reasons = v->reasons;
		if (it->keep) {
			rs->kept++;
			rs->kept_bytes += it->size;
		}
	}
	return 0;
}

/* The checkpoint's name in runs/RUN/ (its path is the listing's
 * RUNPATH/NAME). */
static const char *
item_name(const struct ckpt_prune_item *it)
{
	const char *slash = strrchr(it->path, '/');

	return slash ? slash + 1 : it->path;
}

/*
 * Moves runs/RUN/NAME into the trash (backend.h: trash, no symbolic link
 * followed anywhere below the store root; NAME must still be a directory,
 * not a link to one).  Returns 0 or -1 with errno.
 */
static int
rename_into_trash(struct ckpt_store *s, const struct ckpt_prune_item *it,
    const char *dst, struct ckpt_error *err)
{
	char key[PATH_MAX];

	snprintf(key, sizeof(key), CKPT_STORE_RUNS "/%s/%s", it->run,
	    item_name(it));
	ckpt_error_clear(err);
	if (!s->ops->trash(s->be, key, strrchr(dst, '/') + 1, err))
		return 0;
	errno = err->sys_errno ? err->sys_errno : err->code ==
	    CKPT_ERR_UNSAFE ? ELOOP : EIO;
	return -1;
}

/* Moves item into the trash; records the outcome in it. */
static void
trash_item(struct ckpt_store *s, struct ckpt_prune_report *r,
    struct ckpt_prune_item *it)
{
	char *dst = trash_name(s, it->run, item_name(it));
	struct ckpt_error err;

	if (!dst) {
		it->error = "out of memory";
		return;
	}
	if (rename_into_trash(s, it, dst, &err)) {
		/* A remote store's error says more than errno can. */
		it->error = err.sys_errno || !err.message[0] ?
		    pool_printf(&r->pool, "cannot move %s into the trash: %s",
		    it->path, strerror(errno)) : pool_printf(&r->pool, "cannot "
		    "move %s into the trash: %s%s%s", it->path, err.path,
		    err.path[0] ? ": " : "", err.message);
		if (!it->error)
			it->error = "cannot move into the trash";
		free(dst);
		return;
	}
	it->removed = true;
	it->trash_path = pool_add(&r->pool, dst);
}

/*
 * Under the lock, after the removals: one "prune" record in the registry
 * history listing what went, so that "ckpt log" shows who removed which
 * checkpoints.  The removals stand either way; a record that could not
 * be written is reported (ckpt_prune_report_history_error()).
 */
static void
record_prune(struct ckpt_store *s, struct ckpt_prune_report *r)
{
	json_t *rec = json_pack("{s:s, s:[]}", "action", "prune", "removed");
	json_t *list = json_object_get(rec, "removed");
	struct ckpt_error err;

	for (size_t i = 0; list && i < r->n; i++) {
		const struct ckpt_prune_item *it = item_at(r, i);

		if (it->removed && json_array_append_new(list, json_pack(
		    "{s:s, s:I, s:I}", "run", it->run, "step",
		    (json_int_t)it->step, "size", (json_int_t)it->size)))
			list = NULL;
	}
	ckpt_error_clear(&err);
	if (!list)
		ckpt_error_nomem(&err);
	else if (json_array_size(list))
		ckpt_reg_record_event(s, rec, &err);
	json_decref(rec);
	if (err.code && !(r->history_error = strdup(err.message)))
		r->history_error = NULL;
}

/*
 * Removes one planned checkpoint unless a pin or a registry version now
 * protects it; an error reading them keeps it and is reported.
 */
static void
recheck_then_trash(struct ckpt_store *s, struct ckpt_prune_report *r,
    struct ckpt_prune_run *rs, struct ckpt_prune_item *it)
{
	static const char *const pinned[] = { "pinned" };
	static const char *const registry[] = { CKPT_STORE_REGISTRY };
	struct ckpt_error err;
	const char *why;

	ckpt_error_clear(&err);
	if (ckpt_protection_recheck(s, it->run, it->step, &why, &err)) {
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
		rs->kept_bytes += it->size;
		return;
	}
	trash_item(s, r, it);
}

int
ckpt_store_prune(struct ckpt_store *s, const struct ckpt_prune_options *opts,
    struct ckpt_prune_report **out, struct ckpt_error *err)
{
	struct ckpt_policy_config *cfg = NULL;
	struct ckpt_prune_report *r;
	struct ckpt_policy *pols = NULL;
	const char **metrics = NULL;
	bool locked = false;
	int64_t now;
	size_t n, nruns;
	int rc;

	if (!s || !opts || !out)
		return ckpt_error_set(err, CKPT_ERR_INVALID, NULL, -1,
		    "no store or options");
	if ((rc = ckpt_options_check(opts->version,
	    CKPT_PRUNE_OPTIONS_VERSION, "ckpt_prune_options", err)))
		return rc;
	now = opts->now ? opts->now : (int64_t)time(NULL);
	if (opts->run && (rc = ckpt_name_check(opts->run, "run name", err)))
		return rc;
	r = calloc(1, sizeof(*r));
	if (!r)
		return ckpt_error_nomem(err);
	/* read even when the flags replace its policy: trash behaviour */
	if ((rc = ckpt_store_config_load(s, &cfg, err)))
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
		char *rel = NULL;
		struct ckpt_be_info st;

		if (asprintf(&rel, CKPT_STORE_RUNS "/%s", opts->run) < 0) {
			rc = ckpt_error_nomem(err);
			goto out;
		}
		if (s->ops->stat(s->be, rel, &st, NULL) ||
		    st.type != CKPT_BE_DIR) {
			rc = ckpt_error_set(err, CKPT_ERR_NOTFOUND, NULL, -1,
			    "no run '%s' in the store", opts->run);
			free(rel);
			goto out;
		}
		free(rel);
	}
	r->n = n;
	nruns = count_runs(r->list);
	r->runs = calloc(nruns ? nruns : 1, sizeof(*r->runs));
	r->plans = calloc(nruns ? nruns : 1, sizeof(*r->plans));
	pols = calloc(nruns ? nruns : 1, sizeof(*pols));
	metrics = calloc(nruns ? nruns : 1, sizeof(*metrics));
	if (!r->runs || !r->plans || !pols || !metrics) {
		rc = ckpt_error_nomem(err);
		goto out;
	}
	if ((rc = runs_of_listing(r, nruns, cfg, opts, pols, metrics, err)) ||
	    (rc = items_from_listing(r, nruns, metrics, err)))
		goto out;

	/* Decide everything first. */
	for (size_t g = 0; g < nruns; g++) {
		if ((rc = plan_one_run(r, g, &pols[g], now, err)))
			goto out;
		r->nruns++;
	}
	free(r->marks);
	r->marks = NULL;
	if (opts->dry_run)
		goto tally;

	/* Then act: renames under the lock, each after a fresh look at
	 * the pins and the registry (fail closed). */
	for (size_t g = 0; g < r->nruns; g++) {
		struct ckpt_prune_run *rs = &r->runs[g];

		for (size_t k = 0; k < rs->count; k++) {
			struct ckpt_prune_item *it = item_at(r, rs->first + k);

			if (it->keep)
				continue;
			recheck_then_trash(s, r, rs, it);
		}
	}
	{
		s->ops->flush(s->be, CKPT_STORE_TRASH, NULL);
		for (size_t g = 0; g < r->nruns; g++) {
			char *rd = r->runs[g].count ? dirname_of(
			    item_at(r, r->runs[g].first)->path) : NULL;
			const char *rk = ckpt_store_key(s, rd);

			if (rk && s->ops->flush(s->be, rk, NULL)) {
				/* renamed but perhaps not durable: say so */
				for (size_t k = 0; k < r->runs[g].count; k++) {
					struct ckpt_prune_item *it = item_at(r,
					    r->runs[g].first + k);

					if (it->removed && !it->error)
						it->error = "moved into the "
						    "trash, but fsync of the "
						    "run directory failed";
				}
			}
			free(rd);
		}
	}
	record_prune(s, r);
	ckpt_store_unlock(s);
	locked = false;

	/* Deleting the trash entries needs no lock. */
	if (ckpt_policy_config_trash(cfg) == CKPT_TRASH_DELETE)
		for (size_t i = 0; i < n; i++) {
			struct ckpt_prune_item *it = item_at(r, i);

			if (!it->trash_path)
				continue;
			if (rm_rf(s, it->trash_path))
				r->trash_left++;
			else
				it->trash_path = NULL;
		}
tally:
	for (size_t g = 0; g < r->nruns; g++) {
		struct ckpt_prune_run *rs = &r->runs[g];

		for (size_t k = 0; k < rs->count; k++) {
			struct ckpt_prune_item *it = item_at(r, rs->first + k);

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
	free(pols);
	free(metrics);
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

/* Moves a staging directory into the trash: 0, or -1 with errno. */
static int
trash_staging(struct ckpt_store *s, const char *path, const char *dst)
{
	const char *key = ckpt_store_key(s, path);
	struct ckpt_error err;

	if (!key) {
		errno = EINVAL;
		return -1;
	}
	ckpt_error_clear(&err);
	if (!s->ops->trash(s->be, key, strrchr(dst, '/') + 1, &err))
		return 0;
	errno = err.sys_errno ? err.sys_errno : err.code == CKPT_ERR_UNSAFE ?
	    ELOOP : EIO;
	return -1;
}

struct trash_walk {
	struct ckpt_store *s;
	struct ckpt_gc_report *r;
	const char *dir;
	int64_t now;
	struct ckpt_error *err;
};

static int
trash_entry(void *arg, const char *name, const struct ckpt_be_info *info)
{
	struct trash_walk *w = arg;
	struct ckpt_gc_item *it;
	struct ckpt_be_info st;
	char key[PATH_MAX];

	(void)info;
	if (!(it = gc_add(w->r)))
		return ckpt_error_nomem(w->err);
	it->kind = CKPT_GC_TRASH;
	it->step = -1;
	it->path = pool_printf(&w->r->pool, "%s/%s", w->dir, name);
	if (!it->path)
		return ckpt_error_nomem(w->err);
	snprintf(key, sizeof(key), "%s/%s", CKPT_STORE_TRASH, name);
	if (!w->s->ops->stat(w->s->be, key, &st, NULL))
		it->age = w->now - st.mtime;
	it->size = w->s->ops->usage(w->s->be, key);
	it->remove = true;
	it->reason = "in the trash";
	return 0;
}

/* Lists the trash entries as items to remove. */
static int
gc_scan_trash(struct ckpt_store *s, struct ckpt_gc_report *r, int64_t now,
    struct ckpt_error *err)
{
	char *dir = ckpt_store_path(s, CKPT_STORE_TRASH);
	struct trash_walk w = { s, r, dir, now, err };
	struct ckpt_error le;
	int rc;

	if (!dir)
		return ckpt_error_nomem(err);
	ckpt_error_clear(&le);
	rc = s->ops->list(s->be, CKPT_STORE_TRASH, trash_entry, &w, &le);
	if (rc == CKPT_ERR_NOTFOUND && le.code == CKPT_ERR_NOTFOUND)
		rc = 0;
	else if (rc && le.code)
		rc = ckpt_error_set(err, rc, dir, -1, "cannot read the trash: "
		    "%s", le.message);
	free(dir);
	return rc;
}

/* ---- Whose is a staging directory, and is its owner alive? ---- */

/* What ckpt-staging.json says (strings borrowed from rec). */
struct staging_rec {
	json_t *rec;		/* NULL: no record */
	struct ckpt_owner owner;	/* owner.c */
	const char *state, *transfer;
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
staging_rec_read(struct ckpt_store *s, const char *dir,
    struct staging_rec *r)
{
	const char *key = ckpt_store_key(s, dir);
	char *p = key ? ckpt_join(key, CKPT_STAGING_NAME) : NULL, *text = NULL;
	int rc;

	memset(r, 0, sizeof(*r));
	if (!p) {
		r->unreadable = true;
		return;
	}
	rc = s->ops->read(s->be, p, (size_t)4 << 20, &text, NULL, NULL);
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
	ckpt_owner_from_record(r->rec, &r->owner);
	r->state = jstr(r->rec, "state");
	r->transfer = jstr(r->rec, "transfer");
	r->sources = json_object_get(r->rec, "sources");
	if (!json_is_array(r->sources))
		r->sources = NULL;
	r->updated = ckpt_parse_iso_time(jstr(r->rec, "updated"));
	if (r->updated <= 0)
		r->updated = ckpt_parse_iso_time(jstr(r->rec, "started"));
}

/* owner.c: the rule ls shares. */
static enum ckpt_owner_state
owner_state(const struct staging_rec *r)
{
	return ckpt_owner_state(&r->owner);
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
restore_sources(struct ckpt_store *s, struct ckpt_gc_report *r,
    const char *dir, const struct staging_rec *rec, size_t *restored,
    const char **why)
{
	const char *stage = ckpt_store_key(s, dir);
	size_t stuck = 0, i;
	json_t *el;

	*restored = 0;
	json_array_foreach(rec->sources, i, el) {
		const char *src = jstr(el, "source"), *rel = jstr(el, "path");
		struct ckpt_error err;
		int rc;

		/* A record is data in the store: only a top-level name, back
		 * to an absolute path, ever. */
		if (!stage || !src || !rel || src[0] != '/' ||
		    strstr(src, "/../") || strchr(rel, '/') ||
		    ckpt_manifest_path_problem(rel)) {
			stuck++;
			if (!*why)
				*why = "the record names a source oddly";
			continue;
		}
		ckpt_error_clear(&err);
		rc = s->ops->stage_untake(s->be, stage, rel, src, &err);
		if (!rc) {
			(*restored)++;
		} else if (rc != CKPT_ERR_NOTFOUND) {
			/* (NOTFOUND: never moved in, or back already) */
			stuck++;
			if (!*why)
				*why = pool_printf(&r->pool, "cannot move %s "
				    "back to %s: %s", rel, src, err.sys_errno ?
				    strerror(err.sys_errno) : err.message);
		}
	}
	return stuck;
}

static struct ckpt_gc_item *
staging_item(struct ckpt_store *s, struct ckpt_gc_report *r,
    const char *run, const char *path)
{
	struct ckpt_gc_item *it = gc_add(r);

	if (!it)
		return NULL;
	it->kind = CKPT_GC_STAGING;
	it->step = -1;
	it->path = pool_strdup(&r->pool, path);
	it->run = pool_strdup(&r->pool, run);
	if (!it->path || !it->run)
		return NULL;
	it->size = du(s, path);
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
    const struct ckpt_gc_options *opts, const char *run, const char *path,
    const char *name, bool incomplete, int64_t now, const char *dur)
{
	struct ckpt_gc_item *it = staging_item(s, r, run, path);
	struct staging_rec rec;
	enum ckpt_owner_state os;
	bool failed, moved;
	struct ckpt_be_info bi;

	if (!it)
		return -1;
	if (incomplete) {
		it->reason = "not a staging directory (no manifest, not "
		    ".tmp-*): left alone";
		return 0;
	}
	staging_rec_read(s, path, &rec);
	if (ckpt_store_key(s, path) && !s->ops->stat(s->be, ckpt_store_key(s,
	    path), &bi, NULL))
		it->age = now - bi.mtime;
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
	if (os == CKPT_OWNER_ALIVE && !failed) {
		it->reason = pool_printf(&r->pool, "save in flight (pid %ld is "
		    "alive)", rec.owner.pid);
	} else if (opts->restore && (!moved || os == CKPT_OWNER_UNKNOWN)) {
		it->reason = !moved ? "not a --move save: nothing to restore" :
		    "save on another host or pid namespace: not restored";
	} else if (!opts->restore && it->age < r->older_than) {
		it->reason = pool_printf(&r->pool, "%s, younger than %s",
		    failed ? "failed save" : os == CKPT_OWNER_UNKNOWN ?
		    "save on another host" : "crashed save", dur);
	} else {
		it->remove = true;
		it->reason = failed ? "failed save" : os == CKPT_OWNER_UNKNOWN ?
		    pool_printf(&r->pool, "save on host %s, no sign of life "
		    "for %s", rec.owner.host ? rec.owner.host : "?", dur) :
		    "crashed save";
	}
	if (it->remove && moved && !opts->dry_run) {
		const char *why = NULL;
		size_t back, stuck;

		const char *key = ckpt_store_key(s, path);
		bool known = key && !s->ops->stat(s->be, key, &bi, NULL) &&
		    bi.owned;

		if (!known || bi.uid != (uint32_t)geteuid()) {
			/* Never move files to paths a record names for
			 * another user (a record is only data).  Whose the
			 * moved files are is the staging area's owner on
			 * this host (stat's uid; a backend whose keys no
			 * local user owns cannot tell: kept). */
			it->remove = false;
			it->error = known ? pool_printf(&r->pool, "kept: its "
			    "moved files belong to uid %ld; run 'ckpt gc "
			    "--restore' as that user", (long)bi.uid) :
			    "kept: cannot tell whose its moved files are";
		} else if ((stuck = restore_sources(s, r, path, &rec, &back,
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
struct new_walk {
	struct ckpt_store *s;
	struct ckpt_gc_report *r;
	const struct ckpt_gc_options *opts;
	int64_t now;
	const char *dur, *run;
	char *rp;
	bool nomem;		/* the only failure: errors read as "none" */
};

/* One entry of a run: a .new-* staging directory being set up? */
static int
new_entry(void *arg, const char *name, const struct ckpt_be_info *info)
{
	struct new_walk *w = arg;
	struct ckpt_store *s = w->s;
	struct ckpt_gc_report *r = w->r;
	struct ckpt_gc_item *it;
	struct staging_rec rec;
	struct ckpt_be_info st;
	char *p;
	long pid;

	(void)info;
	if (strncmp(name, CKPT_STAGING_NEW_PREFIX,
	    strlen(CKPT_STAGING_NEW_PREFIX)))
		return 0;
	p = ckpt_join(w->rp, name);
	it = p ? staging_item(s, r, w->run, p) : NULL;
	if (!it) {
		free(p);
		w->nomem = true;
		return 1;
	}
	if (!s->ops->stat(s->be, ckpt_store_key(s, p), &st, NULL))
		it->age = w->now - st.mtime;
	staging_rec_read(s, p, &rec);
	pid = rec.rec ? rec.owner.pid : pid_of_name(name);
	if (rec.unreadable)
		it->reason = "staging record unreadable: left alone";
	else if (rec.rec ? owner_state(&rec) == CKPT_OWNER_ALIVE :
	    ckpt_proc_alive(pid, 0))
		it->reason = pool_printf(&r->pool, "save being "
		    "set up (pid %ld is alive)", pid);
	else if (w->opts->restore || it->age < r->older_than)
		it->reason = pool_printf(&r->pool, "unfinished "
		    "staging directory, younger than %s", w->dur);
	else {
		it->remove = true;
		it->reason = "unfinished staging directory "
		    "(nothing of the user's in it)";
	}
	json_decref(rec.rec);
	free(p);
	w->nomem = !it->reason;
	return w->nomem;
}

/* One run: its .new-* directories (unreadable runs: none, as before). */
static int
new_run(void *arg, const char *name, const struct ckpt_be_info *info)
{
	struct new_walk *w = arg;
	char key[PATH_MAX];

	if (name[0] == '.' || info->type != CKPT_BE_DIR)
		return 0;
	snprintf(key, sizeof(key), CKPT_STORE_RUNS "/%s", name);
	w->run = name;
	w->rp = ckpt_store_path(w->s, key);
	if (!w->rp) {
		w->nomem = true;
		return 1;
	}
	w->s->ops->list(w->s->be, key, new_entry, w, NULL);
	free(w->rp);
	return w->nomem;
}

static int
gc_scan_new(struct ckpt_store *s, struct ckpt_gc_report *r,
    const struct ckpt_gc_options *opts, int64_t now, const char *dur)
{
	struct new_walk w = { s, r, opts, now, dur, NULL, NULL, false };

	s->ops->list(s->be, CKPT_STORE_RUNS, new_run, &w, NULL);
	return w.nomem ? -1 : 0;
}

/* Decides on each staging directory; the live and the young stay. */
static int
gc_scan_staging(struct ckpt_store *s, struct ckpt_gc_report *r,
    const struct ckpt_gc_options *opts, const struct ckpt_list *l, int64_t now,
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

/*
 * s3:// stores: the unfinished multipart uploads under the store (under
 * the lock).  One inside a staging area shares its fate: kept with a
 * live or young save, aborted with a dead one.  Any other (a staging area
 * gone, a multipart copy of a killed commit or prune: those run under the
 * lock, which gc holds now) is aborted once older than the threshold.
 */
struct upload_scan {
	struct ckpt_store *s;
	struct ckpt_gc_report *r;
	const struct ckpt_gc_options *opts;
	size_t nstaging;	/* the staging items: r->items[0..nstaging) */
	int64_t now;
	const char *dur;
	struct ckpt_error *err;
};

/* The staging item whose area holds key, or NULL. */
static const struct ckpt_gc_item *
upload_owner(const struct upload_scan *u, const char *key)
{
	for (size_t i = 0; i < u->nstaging; i++) {
		const struct ckpt_gc_item *it = &u->r->items[i];
		const char *k;
		size_t n;

		if (it->kind != CKPT_GC_STAGING ||
		    !(k = ckpt_store_key(u->s, it->path)))
			continue;
		n = strlen(k);
		if (!strncmp(key, k, n) && key[n] == '/')
			return it;
	}
	return NULL;
}

/*
 * Whether key lies in a staging area (runs/R/.tmp-X/...) that has its
 * record now: a save that began after gc listed the staging areas (saves
 * upload without the lock), whose uploads are not gc's to judge yet.
 */
static bool
staging_appeared(const struct upload_scan *u, const char *key)
{
	const char *run = key + strlen(CKPT_STORE_RUNS "/"), *x, *end;
	struct ckpt_be_info bi;
	char rec[PATH_MAX];

	if (strncmp(key, CKPT_STORE_RUNS "/", strlen(CKPT_STORE_RUNS "/")) ||
	    !(x = strchr(run, '/')) || strncmp(x + 1, ".tmp-", 5) ||
	    !(end = strchr(x + 1, '/')))
		return false;
	snprintf(rec, sizeof(rec), "%.*s/%s", (int)(end - key), key,
	    CKPT_STAGING_NAME);
	return !u->s->ops->stat(u->s->be, rec, &bi, NULL);
}

static int
upload_entry(void *arg, const char *key, const char *upload_id,
    int64_t initiated)
{
	struct upload_scan *u = arg;
	const struct ckpt_gc_item *o = upload_owner(u, key);
	/* (gc_add may move the items: what the owner says, first) */
	bool owner = o, goes = o && o->remove && !o->error;
	bool late = !o && staging_appeared(u, key);
	const char *why = o ? o->reason : NULL;
	struct ckpt_gc_item *it = gc_add(u->r);
	char *p = ckpt_store_path(u->s, key);
	struct ckpt_error e;

	if (!it || !p) {
		free(p);
		return ckpt_error_nomem(u->err);
	}
	it->kind = CKPT_GC_UPLOAD;
	it->step = -1;
	it->path = pool_printf(&u->r->pool, "%s?uploadId=%s", p, upload_id);
	free(p);
	it->age = initiated ? u->now - initiated : 0;
	if (late)
		it->reason = "its save began after gc looked: left for the "
		    "next gc";
	else if (owner && !goes)
		it->reason = pool_printf(&u->r->pool, "part of a staging area "
		    "that stays (%s)", why);
	else if (owner)
		it->reason = pool_printf(&u->r->pool, "part of a staging area "
		    "that goes (%s)", why);
	else if (!initiated || it->age < u->r->older_than)
		it->reason = pool_printf(&u->r->pool, "unfinished upload, "
		    "younger than %s", u->dur);
	else
		it->reason = "unfinished upload of a killed save, commit or "
		    "prune";
	if (!it->path || !it->reason)
		return ckpt_error_nomem(u->err);
	it->remove = owner ? goes : !late && initiated &&
	    it->age >= u->r->older_than;
	if (it->remove && !u->opts->dry_run) {
		ckpt_error_clear(&e);
		if (ckpt_store_s3_abort_upload(u->s, key, upload_id, &e))
			it->error = pool_printf(&u->r->pool, "cannot abort: "
			    "%s", e.message);
		else
			it->removed = true;
	}
	return 0;
}

static int
gc_scan_uploads(struct ckpt_store *s, struct ckpt_gc_report *r,
    const struct ckpt_gc_options *opts, int64_t now, struct ckpt_error *err)
{
	struct upload_scan u = { s, r, opts, r->n, now, NULL, err };
	char dur[64];
	int rc;

	if (!ckpt_store_s3(s, NULL))
		return 0;
	ckpt_duration_format(r->older_than, dur, sizeof(dur));
	u.dur = dur;
	rc = ckpt_store_s3_uploads(s, upload_entry, &u, err);
	if (!opts->dry_run)
		ckpt_store_s3_sweep_spools(s);
	return rc;
}

static int
cmp_gc_item(const void *a, const void *b)
{
	const struct ckpt_gc_item *x = a, *y = b;

	if (x->kind != y->kind)
		return x->kind < y->kind ? -1 : 1;
	return strcmp(x->path, y->path);
}

/* Deletes what is to go (outside the lock), reporting bytes deleted. */
static void
gc_delete(struct ckpt_store *s, struct ckpt_gc_report *r,
    const struct ckpt_gc_options *opts)
{
	uint64_t done = 0, total = 0;

	for (size_t i = 0; i < r->n; i++)
		if (r->items[i].remove && !r->items[i].error &&
		    r->items[i].kind != CKPT_GC_UPLOAD)
			total += r->items[i].size;
	for (size_t i = 0; i < r->n; i++) {
		struct ckpt_gc_item *it = &r->items[i];

		/* (uploads were aborted under the lock) */
		if (!it->remove || it->error || it->kind == CKPT_GC_UPLOAD)
			continue;
		if (rm_rf(s, it->path))
			it->error = pool_printf(&r->pool, "cannot delete: %s",
			    strerror(errno));
		else
			it->removed = true;
		done += it->size;
		if (opts->progress)
			opts->progress(done, total, opts->progress_data);
	}
}

int
ckpt_store_gc(struct ckpt_store *s, const struct ckpt_gc_options *opts,
    struct ckpt_gc_report **out, struct ckpt_error *err)
{
	struct ckpt_policy_config *cfg = NULL;
	struct ckpt_list *list = NULL;
	struct ckpt_gc_report *r;
	bool locked = false;
	int64_t now;
	int rc;

	if (!s || !opts || !out)
		return ckpt_error_set(err, CKPT_ERR_INVALID, NULL, -1,
		    "no store or options");
	if ((rc = ckpt_options_check(opts->version,
	    CKPT_GC_OPTIONS_VERSION, "ckpt_gc_options", err)))
		return rc;
	now = opts->now ? opts->now : (int64_t)time(NULL);
	r = calloc(1, sizeof(*r));
	if (!r)
		return ckpt_error_nomem(err);
	r->older_than = opts->older_than;
	if (r->older_than < 0) {
		if ((rc = ckpt_store_config_load(s, &cfg, err)))
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
	if (!opts->restore && (rc = gc_scan_uploads(s, r, opts, now, err)))
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
		if (trash_staging(s, it->path, dst)) {
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
	gc_delete(s, r, opts);
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
