/* SPDX-License-Identifier: MIT */
/*
 * list.c - listing a store's checkpoints and resolving references.
 *
 * ls over 10,000 checkpoints must take well under a second, so a listing
 * reads one small file per checkpoint (ckpt-summary.json, written at save
 * and covered by the manifest) and checks that the manifest exists with
 * one faccessat(); the manifest itself, with its tensor lists, is read
 * only when a summary is missing.  Pins and registry versions are read
 * once per listing, not per checkpoint.
 */
#include "util/internal.h"

#include <limits.h>
#include <math.h>
#include <time.h>

#include <jansson.h>

#include "store/backend.h"
#include "store/store.h"
#include "store/registry.h"

#define SUMMARY_MAX	(1u << 20)
#define STATUS_MAX	(1u << 20)
#define REGISTRY_MAX	(1u << 20)

struct ckpt_list {
	struct ckpt_entry_priv *entries;
	size_t n, cap;
	struct ckpt_pool pool;		/* every entry's strings */
	struct ckpt_staging *staging;
	size_t nstaging, staging_cap;
	struct ckpt_foreign *foreign;
	size_t nforeign;
};

static char *
jstrdup(json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);

	return json_is_string(v) ? strdup(json_string_value(v)) : NULL;
}

/* ------------------------------------------------------------------ */
/* The pool of a listing's strings                                     */
/* ------------------------------------------------------------------ */

#define POOL_BLOCK	((size_t)64 * 1024 - 64)

struct ckpt_pool_block {
	struct ckpt_pool_block *next;
	size_t used, cap;
	unsigned char data[];
};

/* n bytes aligned to align (a power of 2, at most 8), or NULL. */
static void *
pool_take(struct ckpt_pool *p, size_t n, size_t align)
{
	struct ckpt_pool_block *b = p->blocks;
	size_t at = b ? (b->used + align - 1) & ~(align - 1) : 0;

	if (!b || at > b->cap || b->cap - at < n) {
		size_t cap = n > POOL_BLOCK ? n : POOL_BLOCK;

		if (n > SIZE_MAX - sizeof(*b) || !(b = malloc(sizeof(*b) +
		    cap)))
			return NULL;
		b->next = p->blocks;
		b->cap = cap;
		p->blocks = b;
		at = 0;
	}
	b->used = at + n;
	return b->data + at;
}

void *
ckpt_pool_alloc(struct ckpt_pool *p, size_t n)
{
	return pool_take(p, n ? n : 1, 8);
}

const char *
ckpt_pool_strndup(struct ckpt_pool *p, const char *s, size_t n,
    const char *like)
{
	char *d;

	if (like && !strncmp(like, s, n) && like[n] == '\0')
		return like;
	if (n == SIZE_MAX || !(d = pool_take(p, n + 1, 1)))
		return NULL;
	memcpy(d, s, n);
	d[n] = '\0';
	return d;
}

void
ckpt_pool_release(struct ckpt_pool *p)
{
	while (p->blocks) {
		struct ckpt_pool_block *next = p->blocks->next;

		free(p->blocks);
		p->blocks = next;
	}
}

/* s (may be NULL) in the pool; *oom when it did not fit. */
static const char *
pool_str(struct ckpt_pool *p, const char *s, const char *like, bool *oom)
{
	const char *d;

	if (!s)
		return NULL;
	if (!(d = ckpt_pool_strndup(p, s, strlen(s), like)))
		*oom = true;
	return d;
}

/* The JSON string at key of o in the pool, or NULL. */
static const char *
jpool(struct ckpt_pool *p, json_t *o, const char *key, const char *like,
    bool *oom)
{
	json_t *v = json_object_get(o, key);

	return json_is_string(v) ? pool_str(p, json_string_value(v), like,
	    oom) : NULL;
}

static double
jnum(json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);

	return json_is_number(v) ? json_number_value(v) : NAN;
}

/* What reading one small JSON file gave. */
enum load {
	LOAD_OK = 0,
	LOAD_MISSING,		/* ENOENT: absent, or removed meanwhile */
	LOAD_BAD,		/* not a regular file, too big, not a JSON
				 * object, or a symbolic link */
	LOAD_ERROR		/* an I/O error; errno says which */
};

/*
 * Reads key (backend.h: read, no symbolic link followed anywhere in it)
 * as a JSON object into *out.
 */
static enum load
load_json(const struct ckpt_store *s, const char *key, size_t max,
    json_t **out)
{
	struct ckpt_error e;
	char *buf = NULL;
	size_t n = 0;
	json_t *j;

	*out = NULL;
	ckpt_error_clear(&e);
	switch (s->ops->read(s->be, key, max, &buf, &n, &e)) {
	case CKPT_OK:
		break;
	case CKPT_ERR_NOTFOUND:
		return LOAD_MISSING;
	case CKPT_ERR_UNSAFE:
	case CKPT_ERR_FORMAT:
	case CKPT_ERR_LIMIT:
		return LOAD_BAD;
	case CKPT_ERR_NOMEM:
		errno = ENOMEM;
		return LOAD_ERROR;
	default:
		errno = e.sys_errno ? e.sys_errno : EIO;
		return LOAD_ERROR;
	}
	j = json_loadb(buf, n, JSON_REJECT_DUPLICATES, NULL);
	free(buf);
	if (!json_is_object(j)) {
		json_decref(j);
		return LOAD_BAD;
	}
	*out = j;
	return LOAD_OK;
}

/* "runs/RUN/NAME[/FILE]" into buf; false when it cannot fit (no such
 * name is a checkpoint's). */
static bool
run_key(char *buf, size_t size, const char *runkey, const char *name,
    const char *file)
{
	size_t n = (size_t)snprintf(buf, size, "%s/%s%s%s", runkey, name,
	    file ? "/" : "", file ? file : "");

	return n < size;
}

static struct ckpt_entry_priv *
list_new_entry(struct ckpt_list *l)
{
	if (l->n == l->cap) {
		size_t cap = l->cap ? 2 * l->cap : 64;
		struct ckpt_entry_priv *p = reallocarray(l->entries, cap,
		    sizeof(*p));

		if (!p)
			return NULL;
		l->entries = p;
		l->cap = cap;
	}
	memset(&l->entries[l->n], 0, sizeof(l->entries[l->n]));
	return &l->entries[l->n++];
}

/* Room for extra more entries at once (a run the index says is that
 * big): no doubling past what the listing needs.  Best effort. */
static void
list_reserve(struct ckpt_list *l, size_t extra)
{
	struct ckpt_entry_priv *p;

	if (!extra || l->cap - l->n >= extra || extra > SIZE_MAX / 2 - l->n)
		return;
	p = reallocarray(l->entries, l->n + extra, sizeof(*p));
	if (!p)
		return;
	l->entries = p;
	l->cap = l->n + extra;
}

static struct ckpt_staging *
list_new_staging(struct ckpt_list *l)
{
	if (l->nstaging == l->staging_cap) {
		size_t cap = l->staging_cap ? 2 * l->staging_cap : 8;
		struct ckpt_staging *p = reallocarray(l->staging, cap,
		    sizeof(*p));

		if (!p)
			return NULL;
		l->staging = p;
		l->staging_cap = cap;
	}
	memset(&l->staging[l->nstaging], 0, sizeof(l->staging[0]));
	l->staging[l->nstaging].step = -1;
	return &l->staging[l->nstaging++];
}

/* Fills e from a summary (or a manifest: the same top-level keys), its
 * strings in pool, sharing those equal to prev's (may be NULL). */
static int
entry_from_json(struct ckpt_entry_priv *p, json_t *j, struct ckpt_pool *pool,
    const struct ckpt_entry *prev)
{
	struct ckpt_entry *e = &p->e;
	json_t *v, *m, *val;
	const char *key;
	bool oom = false;
	size_t i;

	v = json_object_get(j, "step");
	if (!json_is_integer(v) || json_integer_value(v) < 0)
		return -1;
	e->step = json_integer_value(v);
	e->created_iso = jpool(pool, j, "created", prev ? prev->created_iso :
	    NULL, &oom);
	e->created = e->created_iso ? ckpt_parse_iso_time(e->created_iso) : 0;
	if (e->created < 0)
		e->created = 0;
	v = json_object_get(j, "size");
	e->size = json_is_integer(v) && json_integer_value(v) > 0 ?
	    (uint64_t)json_integer_value(v) : 0;
	v = json_object_get(j, "nfiles");
	e->nfiles = json_is_integer(v) && json_integer_value(v) > 0 ?
	    (uint64_t)json_integer_value(v) : 0;
	/* A manifest has no size/nfiles: sum its files. */
	if (!json_object_get(j, "size") && json_is_array(v =
	    json_object_get(j, "files"))) {
		json_array_foreach(v, i, val) {
			json_t *sz = json_object_get(val, "size");

			if (json_is_integer(sz) && json_integer_value(sz) > 0)
				e->size += (uint64_t)json_integer_value(sz);
			e->nfiles++;
		}
	}
	e->epoch = jnum(j, "epoch");
	e->scope = jpool(pool, j, "scope", prev ? prev->scope : NULL, &oom);
	e->note = jpool(pool, j, "note", prev ? prev->note : NULL, &oom);
	v = json_object_get(j, "validation");
	if (json_is_object(v))
		v = json_object_get(v, "result");
	e->validation_raw = pool_str(pool, json_is_string(v) ?
	    json_string_value(v) : "skipped", prev ? prev->validation_raw :
	    NULL, &oom);
	e->validation = ckpt_check_result_parse(e->validation_raw);
	if (e->validation == CKPT_CHECK_FAILED)
		e->failed = true;
	m = json_object_get(j, "metrics");
	if (json_is_object(m) && json_object_size(m)) {
		struct ckpt_metric *mt = ckpt_pool_alloc(pool,
		    json_object_size(m) * sizeof(*mt));

		if (!mt)
			return -1;
		json_object_foreach(m, key, val) {
			size_t k = e->nmetrics;

			mt[k].name = pool_str(pool, key, prev &&
			    k < prev->nmetrics ? prev->metrics[k].name : NULL,
			    &oom);
			if (!mt[k].name)
				return -1;
			mt[k].value = json_is_number(val) ?
			    json_number_value(val) : NAN;
			e->nmetrics++;
		}
		e->metrics = mt;
	}
	v = json_object_get(j, "tags");
	if (json_is_array(v) && json_array_size(v)) {
		const char **tags = ckpt_pool_alloc(pool, json_array_size(v) *
		    sizeof(*tags));

		if (!tags)
			return -1;
		json_array_foreach(v, i, val) {
			size_t k = e->ntags;

			if (!json_is_string(val))
				continue;
			tags[k] = pool_str(pool, json_string_value(val), prev &&
			    k < prev->ntags ? prev->tags[k] : NULL, &oom);
			if (!tags[k])
				return -1;
			e->ntags++;
		}
		e->tags = tags;
	}
	return oom ? -1 : 0;
}

static const char *const save_phase_names[] = { NULL, "staging",
	"started", "validating", "hashing", "copying", "syncing", "committing",
	"failing", "failed", "unknown" };

const char *
ckpt_save_phase_name(enum ckpt_save_phase p)
{
	return (unsigned)p < CKPT_ARRAY_SIZE(save_phase_names) ?
	    save_phase_names[p] : "unknown";
}

enum ckpt_save_phase
ckpt_save_phase_parse(const char *name)
{
	if (!name)
		return CKPT_PHASE_NONE;
	for (size_t i = 1; i < CKPT_ARRAY_SIZE(save_phase_names) - 1; i++)
		if (!strcmp(name, save_phase_names[i]))
			return (enum ckpt_save_phase)i;
	return CKPT_PHASE_UNKNOWN;
}

static const char *const staging_state_names[] = { "in-progress",
	"failed", "abandoned", "incomplete" };

const char *
ckpt_staging_state_name(enum ckpt_staging_state s)
{
	return (unsigned)s < CKPT_ARRAY_SIZE(staging_state_names) ?
	    staging_state_names[s] : "incomplete";
}

static const char *const check_result_names[] = { NULL, "ok", "failed",
	"skipped", "unreadable", "unknown" };

const char *
ckpt_check_result_name(enum ckpt_check_result r)
{
	return (unsigned)r < CKPT_ARRAY_SIZE(check_result_names) ?
	    check_result_names[r] : "unknown";
}

enum ckpt_check_result
ckpt_check_result_parse(const char *name)
{
	if (!name)
		return CKPT_CHECK_NONE;
	for (size_t i = 1; i < CKPT_ARRAY_SIZE(check_result_names) - 1; i++)
		if (!strcmp(name, check_result_names[i]))
			return (enum ckpt_check_result)i;
	return CKPT_CHECK_UNKNOWN;
}

static int
entry_apply_status(struct ckpt_entry_priv *p, json_t *st,
    struct ckpt_pool *pool, const struct ckpt_entry *prev)
{
	json_t *lt = json_object_get(st, "load_test");
	json_t *r = json_is_object(lt) ? json_object_get(lt, "result") : NULL;
	bool oom = false;

	if (json_is_string(r)) {
		p->e.load_test_raw = pool_str(pool, json_string_value(r),
		    prev ? prev->load_test_raw : NULL, &oom);
		p->e.load_test = ckpt_check_result_parse(p->e.load_test_raw);
		if (p->e.load_test_raw && p->e.load_test != CKPT_CHECK_OK)
			p->e.failed = true;
	}
	if (json_is_true(json_object_get(st, "failed")))
		p->e.failed = true;
	return oom ? -1 : 0;
}

/* The entry listed before p in l when it is of the same run: its strings
 * are likely p's too (ckpt_pool_strndup's like). */
static const struct ckpt_entry *
entry_prev(const struct ckpt_list *l, const struct ckpt_entry_priv *p)
{
	const struct ckpt_entry_priv *q;

	if (p == l->entries)
		return NULL;
	q = p - 1;
	return q->e.run == p->e.run ? &q->e : NULL;
}

/* run, name and path of a new entry: path RUNPATH/NAME in the pool, name
 * its last component; run is the listing's (one string per run). */
static int
entry_names(struct ckpt_list *l, struct ckpt_entry_priv *p, const char *run,
    const char *runpath, const char *name)
{
	size_t a = strlen(runpath), b = strlen(name);
	char *path = a + b + 2 > a ? pool_take(&l->pool, a + b + 2, 1) : NULL;

	if (!path)
		return -1;
	memcpy(path, runpath, a);
	path[a] = '/';
	memcpy(path + a + 1, name, b + 1);
	p->e.run = run;
	p->e.path = path;
	p->e.name = path + a + 1;
	return 0;
}

/* Pins and registry versions: most stores have none (no lookup then). */
static void
entry_protection(struct ckpt_entry *e, const struct ckpt_protection *prot)
{
	e->pinned = prot->npins && ckpt_protection_pinned(prot, e->run,
	    e->step);
	e->protected_by_registry = (prot->all || prot->nruns ||
	    prot->nkeys) && ckpt_protection_registry(prot, e->run, e->step) !=
	    NULL;
}

static void
staging_release(struct ckpt_staging *st)
{
	free((char *)st->run);
	free((char *)st->path);
	free((char *)st->name);
	free((char *)st->phase_raw);
	free((char *)st->message);
	free((char *)st->host);
}

void
ckpt_list_free(struct ckpt_list *l)
{
	if (!l)
		return;
	ckpt_pool_release(&l->pool);
	free(l->entries);
	for (size_t i = 0; i < l->nstaging; i++)
		staging_release(&l->staging[i]);
	free(l->staging);
	for (size_t i = 0; i < l->nforeign; i++) {
		free((char *)l->foreign[i].run);
		free((char *)l->foreign[i].path);
		free((char *)l->foreign[i].what);
	}
	free(l->foreign);
	free(l);
}

size_t
ckpt_list_count(const struct ckpt_list *l)
{
	return l->n;
}

const struct ckpt_entry *
ckpt_list_entry(const struct ckpt_list *l, size_t i)
{
	return i < l->n ? &l->entries[i].e : NULL;
}

void
ckpt_list_truncate(struct ckpt_list *l, size_t n)
{
	struct ckpt_entry_priv *p;

	if (!l || n >= l->n)
		return;
	l->n = n;
	if (!n) {
		free(l->entries);
		l->entries = NULL;
		l->cap = 0;
		return;
	}
	/* best effort: a failed shrink keeps the memory, not the entries */
	if ((p = reallocarray(l->entries, n, sizeof(*p)))) {
		l->entries = p;
		l->cap = n;
	}
}

size_t
ckpt_list_staging_count(const struct ckpt_list *l)
{
	return l->nstaging;
}

const struct ckpt_staging *
ckpt_list_staging(const struct ckpt_list *l, size_t i)
{
	return i < l->nstaging ? &l->staging[i] : NULL;
}

size_t
ckpt_list_foreign_count(const struct ckpt_list *l)
{
	return l->nforeign;
}

const struct ckpt_foreign *
ckpt_list_foreign(const struct ckpt_list *l, size_t i)
{
	return i < l->nforeign ? &l->foreign[i] : NULL;
}

/* Records something the listing leaves alone; takes over path. */
static int
add_foreign(struct ckpt_list *l, const char *run, char *path,
    const char *what, struct ckpt_error *err)
{
	struct ckpt_foreign *f = reallocarray(l->foreign, l->nforeign + 1,
	    sizeof(*f));

	if (!f || !path) {
		free(path);
		if (f)
			l->foreign = f;
		return ckpt_error_nomem(err);
	}
	l->foreign = f;
	f = &l->foreign[l->nforeign];
	f->run = run ? strdup(run) : NULL;
	f->path = path;
	f->what = strdup(what);
	l->nforeign++;
	if ((run && !f->run) || !f->what)
		return ckpt_error_nomem(err);
	return 0;
}

bool
ckpt_entry_metric(const struct ckpt_entry *e, const char *name,
    double *value)
{
	for (size_t i = 0; i < e->nmetrics; i++)
		if (!strcmp(e->metrics[i].name, name)) {
			if (value)
				*value = e->metrics[i].value;
			return true;
		}
	return false;
}

static int
add_staging(struct ckpt_list *l, const struct ckpt_store *s,
    const char *runkey, const char *run, const char *runpath,
    const char *name, bool incomplete)
{
	struct ckpt_staging *st = list_new_staging(l);
	char sub[PATH_MAX];
	struct ckpt_be_info sb;
	json_t *j;

	if (!st)
		return -1;
	st->run = strdup(run);
	st->name = strdup(name);
	st->path = ckpt_join(runpath, name);
	if (!st->run || !st->name || !st->path)
		return -1;
	if (run_key(sub, sizeof(sub), runkey, name, NULL) &&
	    !s->ops->stat(s->be, sub, &sb, NULL))
		st->updated = st->started = sb.mtime;
	if (incomplete) {
		st->state = CKPT_STAGING_INCOMPLETE;
		return 0;
	}
	st->state = CKPT_STAGING_ABANDONED;
	if (!run_key(sub, sizeof(sub), runkey, name, CKPT_STAGING_NAME))
		return 0;
	switch (load_json(s, sub, STATUS_MAX, &j)) {
	case LOAD_OK:
		break;
	case LOAD_ERROR:
		return -1;	/* an I/O error: never guess "abandoned" */
	default:
		return 0;	/* crashed before its status was written */
	}
	{
		json_t *v;
		const char *state;
		int64_t t;

		v = json_object_get(j, "step");
		if (json_is_integer(v))
			st->step = json_integer_value(v);
		v = json_object_get(j, "pid");
		if (json_is_integer(v))
			st->pid = (long)json_integer_value(v);
		st->host = jstrdup(j, "host");
		st->phase_raw = jstrdup(j, "phase");
		st->phase = ckpt_save_phase_parse(st->phase_raw);
		st->message = jstrdup(j, "message");
		if ((t = ckpt_parse_iso_time(json_string_value(
		    json_object_get(j, "started")))) > 0)
			st->started = t;
		if ((t = ckpt_parse_iso_time(json_string_value(
		    json_object_get(j, "updated")))) > 0)
			st->updated = t;
		v = json_object_get(j, "done");
		if (json_is_integer(v) && json_integer_value(v) >= 0)
			st->done = (uint64_t)json_integer_value(v);
		v = json_object_get(j, "total");
		if (json_is_integer(v) && json_integer_value(v) >= 0)
			st->total = (uint64_t)json_integer_value(v);
		state = json_string_value(json_object_get(j, "state"));
		if (state && !strcmp(state, "failed")) {
			st->state = CKPT_STAGING_FAILED;
		} else {
			struct ckpt_owner o;

			/* gc's rule (owner.c): another host or pid
			 * namespace cannot be told, so it may run. */
			ckpt_owner_from_record(j, &o);
			st->state = ckpt_owner_state(&o) == CKPT_OWNER_GONE ?
			    CKPT_STAGING_ABANDONED : CKPT_STAGING_ACTIVE;
		}
	}
	json_decref(j);
	return 0;
}

/* An I/O error at STORE/runs/RUN[/NAME[/FILE]]: the listing fails. */
static int
list_io_error(struct ckpt_error *err, const char *runpath, const char *sub,
    const char *what)
{
	char *p = sub ? ckpt_join(runpath, sub) : NULL;
	int rc;

	if (errno == ENOMEM)
		return ckpt_error_nomem(err);
	rc = ckpt_error_errno(err, p ? p : runpath, "%s", what);
	free(p);
	return rc;
}

/*
 * Reads one committed checkpoint runs/RUN/NAME (its manifest exists) into
 * a new entry.  *added: it was listed; *bad: its content cannot be read
 * (listed as incomplete).  Neither: it vanished meanwhile (prune).
 */
static int
read_checkpoint(struct ckpt_list *l, const struct ckpt_store *s,
    const char *runkey, const char *runpath, const char *run,
    const char *name, const struct ckpt_protection *prot, bool *added,
    bool *bad, struct ckpt_error *err)
{
	const struct ckpt_entry *prev;
	struct ckpt_entry_priv *p;
	char key[PATH_MAX];
	json_t *j = NULL;
	enum load lr = LOAD_BAD;
	int rc = 0;

	*added = *bad = false;
	if (run_key(key, sizeof(key), runkey, name, CKPT_SUMMARY_NAME))
		lr = load_json(s, key, SUMMARY_MAX, &j);
	if ((lr == LOAD_MISSING || lr == LOAD_BAD) && run_key(key,
	    sizeof(key), runkey, name, CKPT_MANIFEST_NAME))
		/* No summary: fall back to the (larger) manifest. */
		lr = load_json(s, key, (size_t)1 << 30, &j);
	if (lr == LOAD_ERROR) {
		rc = list_io_error(err, runpath, name, "cannot read the "
		    "summary or manifest in");
		goto out;
	}
	if (lr == LOAD_MISSING)
		goto out;	/* removed while we looked (prune) */
	if (!(p = list_new_entry(l))) {
		rc = ckpt_error_nomem(err);
		goto out;
	}
	if (entry_names(l, p, run, runpath, name)) {
		l->n--;
		rc = ckpt_error_nomem(err);
		goto out;
	}
	prev = entry_prev(l, p);
	if (lr == LOAD_BAD || entry_from_json(p, j, &l->pool, prev)) {
		/* Unreadable (or no memory for it): not a checkpoint we can
		 * count.  Its strings stay in the pool until the list goes. */
		l->n--;
		*bad = true;
		goto out;
	}
	json_decref(j);
	j = NULL;
	run_key(key, sizeof(key), runkey, name, CKPT_STATUS_NAME);
	switch (load_json(s, key, STATUS_MAX, &j)) {
	case LOAD_OK:
		if (entry_apply_status(p, j, &l->pool, prev)) {
			l->n--;
			rc = ckpt_error_nomem(err);
			goto out;
		}
		break;
	case LOAD_MISSING:
		break;
	case LOAD_BAD:
		/* a damaged status may hide a failure: never trust it */
		p->e.failed = true;
		p->e.load_test_raw = "unreadable";
		p->e.load_test = CKPT_CHECK_UNREADABLE;
		break;
	default:
		l->n--;
		rc = list_io_error(err, runpath, name, "cannot read "
		    CKPT_STATUS_NAME " in");
		goto out;
	}
	entry_protection(&p->e, prot);
	*added = true;
out:
	json_decref(j);
	return rc;
}

/* An entry whose stamp is in run_cache's fresh[], not a record's. */
#define FROM_FILES	UINT32_MAX

/*
 * The index of one run while it is listed, and where each entry's
 * directory stamp is for writing it anew: an entry taken from the index
 * has its record's (which it matched), so only the record's position is
 * kept, 4 bytes a checkpoint where the stamp would be 24; an entry read
 * from its files has its stamp in fresh[], in listing order.
 */
struct run_cache {
	struct ckpt_index *ix;		/* NULL: none, or not to be used */
	size_t first;			/* the run's first entry in the list */
	size_t reused, fresh;
	uint32_t *src;			/* per entry: its record, or
					 * FROM_FILES */
	size_t nsrc, src_cap;
	struct ckpt_stamp *fresh_st;
	size_t nfresh_st, fresh_cap;
	bool lost;			/* out of memory: no index written */
};

/* Notes where the stamp of the entry just listed is: record at, or st
 * (at FROM_FILES).  Out of memory only costs the index's rewrite. */
static void
cache_note(struct run_cache *c, size_t at, const struct ckpt_stamp *st)
{
	if (c->lost || (at >= FROM_FILES && !st)) {
		c->lost = true;		/* (no index has 2^32 records) */
		return;
	}
	if (c->nsrc == c->src_cap) {
		size_t cap = c->src_cap ? 2 * c->src_cap : 64;
		uint32_t *v = reallocarray(c->src, cap, sizeof(*v));

		if (!v) {
			c->lost = true;
			return;
		}
		c->src = v;
		c->src_cap = cap;
	}
	if (at >= FROM_FILES) {
		if (c->nfresh_st == c->fresh_cap) {
			size_t cap = c->fresh_cap ? 2 * c->fresh_cap : 64;
			struct ckpt_stamp *v = reallocarray(c->fresh_st, cap,
			    sizeof(*v));

			if (!v) {
				c->lost = true;
				return;
			}
			c->fresh_st = v;
			c->fresh_cap = cap;
		}
		c->fresh_st[c->nfresh_st++] = *st;
		at = FROM_FILES;
	}
	c->src[c->nsrc++] = (uint32_t)at;
}

static void
cache_release(struct run_cache *c)
{
	ckpt_index_free(c->ix);
	free(c->src);
	free(c->fresh_st);
}

/* Records entries [c->first, l->n) of the list as the index of run, in
 * the order they were listed (the directory's).  Best effort: a record
 * of the old index that cannot be read again leaves the old one. */
static void
write_index(const struct ckpt_list *l, const struct ckpt_store *s,
    const char *run, struct run_cache *c, const struct ckpt_stamp *run_st)
{
	struct ckpt_index_writer *w;
	size_t f = 0;

	if (c->lost || c->nsrc != l->n - c->first)
		return;
	if (!(w = ckpt_index_writer_new(s, run, run_st, c->nsrc)))
		return;		/* no memory, or no stamps: no cache */
	for (size_t k = 0; k < c->nsrc; k++) {
		const struct ckpt_entry *e = &l->entries[c->first + k].e;
		struct ckpt_stamp st;

		if (c->src[k] != FROM_FILES) {
			if (!c->ix || !ckpt_index_stamp(c->ix, c->src[k],
			    &st)) {
				ckpt_index_writer_free(w);
				return;
			}
		} else if (f < c->nfresh_st) {
			st = c->fresh_st[f++];
		} else {
			ckpt_index_writer_free(w);
			return;
		}
		ckpt_index_writer_add(w, e->name, &st, e);
	}
	ckpt_index_writer_commit(w);
}

/* A checkpoint taken from the index: its directory is unchanged.  1:
 * the record could not be read after all (the files are then). */
static int
entry_from_index(struct ckpt_list *l, struct ckpt_index *ix, size_t at,
    const char *runpath, const char *run, const char *name,
    const struct ckpt_protection *prot, struct ckpt_error *err)
{
	struct ckpt_entry_priv *p = list_new_entry(l);
	int rc;

	if (!p)
		return ckpt_error_nomem(err);
	if (entry_names(l, p, run, runpath, name) ||
	    (rc = ckpt_index_decode(ix, at, &l->pool, entry_prev(l, p), p))
	    < 0) {
		l->n--;
		return ckpt_error_nomem(err);
	}
	if (rc) {
		l->n--;
		return 1;
	}
	entry_protection(&p->e, prot);
	return 0;
}

/* What listing one run needs (list_run_entry is the backend's callback). */
struct run_walk {
	struct ckpt_list *l;
	const struct ckpt_store *s;
	const char *runkey, *runpath, *run;
	unsigned int flags;
	const struct ckpt_protection *prot;
	struct run_cache *cache;
	struct ckpt_error *err;
};

/* An error of the backend's for key under runs/RUN: the listing fails. */
static int
list_be_error(struct ckpt_error *err, const char *runpath, const char *sub,
    const struct ckpt_error *be, const char *what)
{
	errno = be->sys_errno ? be->sys_errno : be->code == CKPT_ERR_NOMEM ?
	    ENOMEM : EIO;
	return list_io_error(err, runpath, sub, what);
}

/*
 * A checkpoint directory runs/RUN/NAME: from the index when its stamp is
 * the recorded one, else read from its files (and recorded anew).
 */
static int
list_checkpoint(struct run_walk *w, const char *name)
{
	struct ckpt_list *l = w->l;
	const struct ckpt_store *s = w->s;
	const char *runpath = w->runpath, *run = w->run;
	struct ckpt_error *err = w->err;
	struct run_cache *rc_ = w->cache;
	char sub[PATH_MAX], key[PATH_MAX];
	struct ckpt_be_info dst, st;
	struct ckpt_stamp stamp;
	struct ckpt_error se;
	bool added, bad = false;
	size_t at;
	int rc;

	if (!run_key(key, sizeof(key), w->runkey, name, NULL))
		return 0;	/* no such name fits a checkpoint */
	ckpt_error_clear(&se);
	if ((rc = s->ops->stat(s->be, key, &dst, &se))) {
		if (rc == CKPT_ERR_NOTFOUND)
			return 0;	/* removed while we looked */
		return list_be_error(err, runpath, name, &se, "cannot stat");
	}
	if (dst.type == CKPT_BE_LINK)
		return add_foreign(l, run, ckpt_join(runpath, name),
		    "a symbolic link, not part of the store: left alone", err);
	if (dst.type != CKPT_BE_DIR)
		return 0;
	ckpt_stamp_of(&dst, &stamp);
	if (rc_->ix && ckpt_index_find(rc_->ix, name, &at) &&
	    ckpt_index_matches(rc_->ix, at, &stamp) &&
	    (rc = entry_from_index(l, rc_->ix, at, runpath, run, name,
	    w->prot, err)) != 1) {
		if (rc)
			return rc;
		cache_note(rc_, at, NULL);
		rc_->reused++;
		return 0;
	}
	snprintf(sub, sizeof(sub), "%s/%s", name, CKPT_MANIFEST_NAME);
	if (!run_key(key, sizeof(key), w->runkey, name, CKPT_MANIFEST_NAME))
		return 0;
	ckpt_error_clear(&se);
	rc = s->ops->stat(s->be, key, &st, &se);
	if (rc == CKPT_ERR_NOTFOUND) {
		bad = true;
	} else if (rc == CKPT_ERR_UNSAFE) {
		bad = false;	/* replaced by a link meanwhile: not ours */
	} else if (rc) {
		return list_be_error(err, runpath, sub, &se, "cannot stat");
	} else if (st.type == CKPT_BE_LINK) {
		return add_foreign(l, run, ckpt_join(runpath, name),
		    "its manifest is a symbolic link: left alone", err);
	} else {
		if ((rc = read_checkpoint(l, s, w->runkey, runpath, run, name,
		    w->prot, &added, &bad, err)))
			return rc;
		if (added) {
			cache_note(rc_, FROM_FILES, &stamp);
			rc_->fresh++;
			return 0;
		}
	}
	if (bad && (w->flags & CKPT_LIST_STAGING) && add_staging(l, s,
	    w->runkey, run, runpath, name, true))
		return ckpt_error_nomem(err);
	return 0;
}

/* Lists one entry of runs/RUN (the backend's list callback). */
static int
list_run_entry(void *arg, const char *name, const struct ckpt_be_info *info)
{
	struct run_walk *w = arg;

	if (name[0] != '.' && (info->type == CKPT_BE_DIR ||
	    info->type == CKPT_BE_LINK))
		return list_checkpoint(w, name);
	if (info->type != CKPT_BE_DIR)
		return 0;
	if (!strncmp(name, CKPT_STAGING_PREFIX,
	    strlen(CKPT_STAGING_PREFIX))) {
		if ((w->flags & CKPT_LIST_STAGING) && add_staging(w->l, w->s,
		    w->runkey, w->run, w->runpath, name, false))
			return list_io_error(w->err, w->runpath, name,
			    "cannot read the save record in");
		return 0;
	}
	return 0;
}

/*
 * The stamp of runs/RUN, before it is listed (a change while it is read
 * makes the stamp stale, never the index wrong).  CKPT_ERR_NOTFOUND: no
 * such run; CKPT_ERR_UNSAFE: not a directory (*type says what).
 */
static int
run_stat(const struct ckpt_store *s, const char *runkey, const char *runpath,
    struct ckpt_be_info *st, struct ckpt_error *err)
{
	struct ckpt_error se;
	int rc;

	ckpt_error_clear(&se);
	rc = s->ops->stat(s->be, runkey, st, &se);
	if (rc == CKPT_ERR_NOTFOUND)
		return rc;
	if (rc)
		return list_be_error(err, runpath, NULL, &se, "cannot stat");
	return st->type == CKPT_BE_DIR ? CKPT_OK : CKPT_ERR_UNSAFE;
}

/* A run's entries in listing order: step, then name (cmp_entry). */
struct step_key {
	int64_t step;
	size_t i;
};

static int
cmp_step_key(const struct step_key *x, const struct step_key *y,
    const struct ckpt_entry_priv *base)
{
	if (x->step != y->step)
		return x->step < y->step ? -1 : 1;
	return strcmp(base[x->i].e.name, base[y->i].e.name);
}

static void
sift_down(struct step_key *k, size_t root, size_t n,
    const struct ckpt_entry_priv *base)
{
	struct step_key v = k[root];

	for (;;) {
		size_t c = 2 * root + 1;

		if (c >= n)
			break;
		if (c + 1 < n && cmp_step_key(&k[c], &k[c + 1], base) < 0)
			c++;
		if (cmp_step_key(&v, &k[c], base) >= 0)
			break;
		k[root] = k[c];
		root = c;
	}
	k[root] = v;
}

/* k[0, n) by cmp_step_key (a total order: names in a directory are
 * unique), in place: qsort's merge sort would take a copy of the keys,
 * 16 bytes a checkpoint, at the listing's peak. */
static void
sort_keys(struct step_key *k, size_t n, const struct ckpt_entry_priv *base)
{
	for (size_t i = n / 2; i-- > 0;)
		sift_down(k, i, n, base);
	for (size_t end = n; end-- > 1;) {
		struct step_key t = k[0];

		k[0] = k[end];
		k[end] = t;
		sift_down(k, 0, end, base);
	}
}

/*
 * Sorts entries [first, l->n) (one run) by step, then name: the keys
 * are sorted, then the entries moved once each along the permutation's
 * cycles, so that no copy of the entries is ever made (qsort's merge
 * sort would double them).
 */
static int
sort_run(struct ckpt_list *l, size_t first, struct ckpt_error *err)
{
	struct ckpt_entry_priv *a, tmp;
	size_t n = l->n - first;
	struct step_key *k;
	bool sorted = true;

	/* Before the pointer: an empty listing may have no array at all,
	 * and NULL + 0 is undefined. */
	if (n < 2)
		return 0;
	a = l->entries + first;
	for (size_t i = 1; i < n && sorted; i++)
		sorted = a[i - 1].e.step < a[i].e.step ||
		    (a[i - 1].e.step == a[i].e.step &&
		    strcmp(a[i - 1].e.name, a[i].e.name) < 0);
	if (sorted)
		return 0;
	if (!(k = reallocarray(NULL, n, sizeof(*k))))
		return ckpt_error_nomem(err);
	for (size_t i = 0; i < n; i++) {
		k[i].step = a[i].e.step;
		k[i].i = i;
	}
	sort_keys(k, n, a);
	/* position j takes the entry at k[j].i */
	for (size_t i = 0; i < n; i++) {
		size_t j = i;

		if (k[i].i == i)
			continue;
		tmp = a[i];
		for (;;) {
			size_t from = k[j].i;

			k[j].i = j;
			if (from == i) {
				a[j] = tmp;
				break;
			}
			a[j] = a[from];
			j = from;
		}
	}
	free(k);
	return 0;
}

/*
 * Lists runs/RUN.  A run that is a symbolic link is foreign: recorded,
 * never followed (CKPT_ERR_UNSAFE when the caller named it).
 */
static int
list_run(struct ckpt_list *l, const struct ckpt_store *s, const char *runs,
    const char *run, unsigned int flags, const struct ckpt_protection *prot,
    bool named, struct ckpt_error *err)
{
	char *runpath = ckpt_join(runs, run), runkey[PATH_MAX];
	struct run_cache cache = { 0 };
	struct run_walk w = { l, s, runkey, runpath, run, flags, prot, &cache,
		err };
	struct ckpt_be_info st;
	struct ckpt_stamp stamp;
	struct ckpt_error le;
	int rc = 0;

	if (!runpath)
		return ckpt_error_nomem(err);
	snprintf(runkey, sizeof(runkey), CKPT_STORE_RUNS "/%s", run);
	rc = run_stat(s, runkey, runpath, &st, err);
	if (rc == CKPT_ERR_NOTFOUND) {
		free(runpath);
		return 0;
	}
	if (rc == CKPT_ERR_UNSAFE) {
		if (st.type != CKPT_BE_LINK) {
			free(runpath);
			return 0;	/* a stray file in runs/ */
		}
		if (named) {
			rc = ckpt_error_set(err, CKPT_ERR_UNSAFE, runpath, -1,
			    "a symbolic link, not a run of the store: "
			    "refusing to follow it");
			free(runpath);
			return rc;
		}
		return add_foreign(l, NULL, runpath, "a symbolic link, not a "
		    "run of the store: left alone", err);
	}
	if (rc) {
		free(runpath);
		return rc;
	}
	/* one string for every entry of the run */
	if (!(w.run = ckpt_pool_strndup(&l->pool, run, strlen(run), NULL))) {
		free(runpath);
		return ckpt_error_nomem(err);
	}
	ckpt_stamp_of(&st, &stamp);
	/* the index only spares reads; never for a destructive decision */
	if (!(flags & CKPT_LIST_NO_INDEX) && ckpt_stamp_usable(&stamp) &&
	    !ckpt_index_load(s, run, &cache.ix))
		list_reserve(l, ckpt_index_count(cache.ix));
	cache.first = l->n;
	ckpt_error_clear(&le);
	if (!(flags & CKPT_LIST_NO_INDEX))
		ckpt_store_list_index(s, runkey);
	rc = s->ops->list(s->be, runkey, list_run_entry, &w, &le);
	ckpt_store_list_index(s, NULL);
	if (rc == CKPT_ERR_NOTFOUND && le.code == CKPT_ERR_NOTFOUND &&
	    !strcmp(le.path, runpath)) {
		rc = 0;		/* removed meanwhile */
	} else if (rc && le.code && err) {
		/* the backend's own error (an entry's is in err already) */
		*err = le;
	}
	/* rewritten when anything was read, racy, gone or new */
	if (!rc && (!cache.ix || cache.fresh || !ckpt_index_run_fresh(
	    cache.ix, &stamp) || cache.reused != ckpt_index_count(cache.ix)))
		write_index(l, s, run, &cache, &stamp);
	cache_release(&cache);
	free(runpath);
	if (!rc)
		rc = sort_run(l, cache.first, err);
	return rc;
}

static int
cmp_staging(const void *a, const void *b)
{
	const struct ckpt_staging *x = a, *y = b;
	int c = strcmp(x->run, y->run);

	return c ? c : strcmp(x->name, y->name);
}

/* The names of runs/, collected first: runs are listed in name order,
 * so that the entries come out sorted by run without moving them. */
struct run_names {
	char **v;
	size_t n, cap;
};

static int
add_run_name(void *arg, const char *name, const struct ckpt_be_info *info)
{
	struct run_names *r = arg;

	(void)info;
	if (name[0] == '.' || ckpt_name_check(name, NULL, NULL))
		return 0;
	if (r->n == r->cap) {
		size_t cap = r->cap ? 2 * r->cap : 16;
		char **v = reallocarray(r->v, cap, sizeof(*v));

		if (!v)
			return CKPT_ERR_NOMEM;
		r->v = v;
		r->cap = cap;
	}
	if (!(r->v[r->n] = strdup(name)))
		return CKPT_ERR_NOMEM;
	r->n++;
	return 0;
}

static int
cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Lists every run of runs/ (absent: none). */
static int
list_all_runs(struct ckpt_list *l, const struct ckpt_store *s,
    const char *runs, unsigned int flags, const struct ckpt_protection *prot,
    struct ckpt_error *err)
{
	struct run_names r = { 0 };
	struct ckpt_error le;
	int rc;

	ckpt_error_clear(&le);
	rc = s->ops->list(s->be, CKPT_STORE_RUNS, add_run_name, &r, &le);
	if (rc == CKPT_ERR_NOTFOUND && le.code == CKPT_ERR_NOTFOUND &&
	    !strcmp(le.path, runs)) {
		rc = 0;
	} else if (rc == CKPT_ERR_NOMEM && !le.code) {
		rc = ckpt_error_nomem(err);
	} else if (rc && le.code && err) {
		*err = le;
	}
	if (!rc && r.n)
		qsort(r.v, r.n, sizeof(*r.v), cmp_str);
	for (size_t i = 0; i < r.n && !rc; i++)
		rc = list_run(l, s, runs, r.v[i], flags, prot, false, err);
	for (size_t i = 0; i < r.n; i++)
		free(r.v[i]);
	free(r.v);
	return rc;
}

/* runs/ itself: CKPT_OK, CKPT_ERR_NOTFOUND (no run yet), or an error (a
 * link or a file is no store's). */
static int
runs_check(const struct ckpt_store *s, const char *runs,
    struct ckpt_error *err)
{
	struct ckpt_be_info st;
	int rc = s->ops->stat(s->be, CKPT_STORE_RUNS, &st, err);

	if (rc == CKPT_ERR_NOTFOUND) {
		if (err)
			ckpt_error_clear(err);
		return rc;
	}
	if (!rc && st.type != CKPT_BE_DIR)
		rc = ckpt_error_set(err, CKPT_ERR_UNSAFE, runs, -1, "%s: "
		    "refusing to follow it out of the store", st.type ==
		    CKPT_BE_LINK ? "a symbolic link" : "not a directory");
	return rc;
}

int
ckpt_store_list(struct ckpt_store *s, const char *run, unsigned int flags,
    struct ckpt_list **out, struct ckpt_error *err)
{
	struct ckpt_protection prot;
	struct ckpt_list *l;
	char *runs;
	int rc;

	if (run && (rc = ckpt_name_check(run, "run name", err)))
		return rc;
	l = calloc(1, sizeof(*l));
	runs = ckpt_store_path(s, CKPT_STORE_RUNS);
	if (!l || !runs) {
		free(l);
		free(runs);
		return ckpt_error_nomem(err);
	}
	if ((rc = ckpt_protection_load(s, &prot, err))) {
		free(l);
		free(runs);
		return rc;
	}
	if (prot.all && (rc = add_foreign(l, NULL, ckpt_store_path(s,
	    CKPT_STORE_REGISTRY), prot.all, err)))
		goto out;
	rc = runs_check(s, runs, err);
	if (rc == CKPT_ERR_NOTFOUND)
		rc = 0;
	else if (!rc && run)
		rc = list_run(l, s, runs, run, flags, &prot, true, err);
	else if (!rc)
		rc = list_all_runs(l, s, runs, flags, &prot, err);
	if (rc)
		goto out;
	/* entries: sorted run by run as listed (list_all_runs, sort_run) */
	if (l->nstaging)
		qsort(l->staging, l->nstaging, sizeof(*l->staging),
		    cmp_staging);
out:
	ckpt_protection_release(&prot);
	free(runs);
	if (rc) {
		ckpt_list_free(l);
		return rc;
	}
	*out = l;
	return CKPT_OK;
}

/* ------------------------------------------------------------------ */
/* References                                                          */
/* ------------------------------------------------------------------ */

static bool
all_digits(const char *s)
{
	if (!*s)
		return false;
	for (; *s; s++)
		if (*s < '0' || *s > '9')
			return false;
	return true;
}

bool
ckpt_ref_syntax_ok(const char *s)
{
	const char *at = strchr(s, '@');
	char name[CKPT_NAME_MAX + 1];
	size_t n;

	if (!at || !at[1] || strchr(at + 1, '@') || strchr(at + 1, '/'))
		return false;
	n = (size_t)(at - s);
	if (n == 0 || n > CKPT_NAME_MAX)
		return false;
	memcpy(name, s, n);
	name[n] = '\0';
	return !ckpt_name_check(name, NULL, NULL);
}

void
ckpt_ref_release(struct ckpt_ref *r)
{
	if (!r)
		return;
	free(r->run);
	free(r->path);
	free(r->model);
	free(r->manifest_digest);
	memset(r, 0, sizeof(*r));
}

static int
parse_u63(const char *s, int64_t *out)
{
	long long v;
	char *end;

	if (!all_digits(s) || strlen(s) > 18)
		return -1;
	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno || *end)
		return -1;
	*out = v;
	return 0;
}

/* RUN@latest: the first checkpoint ckpt_store_newest() offers. */
static int
take_first(const struct ckpt_entry *e, void *arg)
{
	struct ckpt_ref *out = arg;

	out->run = strdup(e->run);
	out->path = strdup(e->path);
	out->step = e->step;
	return 1;
}

/*
 * RUN@STEP read where save puts it, runs/RUN/step-STEP, without listing
 * the run: its manifest is there (committed) and its summary (else the
 * manifest) says that step.  On a store on S3 that is one HEAD and one
 * GET, where the listing of a run of 1,000 checkpoints is pages of keys.
 * 1: not so (absent, another step, unreadable, a link): the caller lists
 * the run, which finds a checkpoint of that step under another name or
 * says why there is none.
 */
static int
resolve_step_direct(struct ckpt_store *s, const char *run, int64_t step,
    struct ckpt_ref *out)
{
	char name[32], runkey[CKPT_NAME_MAX + 8], key[PATH_MAX];
	struct ckpt_pool pool = { 0 };
	struct ckpt_entry_priv p;
	struct ckpt_be_info st;
	char *runs, *runpath;
	json_t *j = NULL;
	enum load lr;
	bool ok;

	snprintf(name, sizeof(name), "step-%lld", (long long)step);
	snprintf(runkey, sizeof(runkey), CKPT_STORE_RUNS "/%s", run);
	if (!run_key(key, sizeof(key), runkey, name, CKPT_MANIFEST_NAME) ||
	    s->ops->stat(s->be, key, &st, NULL) || st.type != CKPT_BE_FILE)
		return 1;
	run_key(key, sizeof(key), runkey, name, CKPT_SUMMARY_NAME);
	lr = load_json(s, key, SUMMARY_MAX, &j);
	if (lr == LOAD_MISSING || lr == LOAD_BAD) {
		run_key(key, sizeof(key), runkey, name, CKPT_MANIFEST_NAME);
		lr = load_json(s, key, (size_t)1 << 30, &j);
	}
	memset(&p, 0, sizeof(p));
	ok = lr == LOAD_OK && !entry_from_json(&p, j, &pool, NULL) &&
	    p.e.step == step;
	ckpt_pool_release(&pool);
	json_decref(j);
	if (!ok)
		return 1;
	runs = ckpt_store_path(s, CKPT_STORE_RUNS);
	runpath = runs ? ckpt_join(runs, run) : NULL;
	out->run = strdup(run);
	out->path = runpath ? ckpt_join(runpath, name) : NULL;
	out->step = step;
	free(runs);
	free(runpath);
	if (!out->run || !out->path) {
		ckpt_ref_release(out);
		return 1;
	}
	return CKPT_OK;
}

static int
resolve_run(struct ckpt_store *s, const char *run, const char *what,
    const char *metric, enum ckpt_metric_mode mode, struct ckpt_ref *out,
    struct ckpt_error *err)
{
	const struct ckpt_entry *best = NULL;
	struct ckpt_list *l;
	int64_t step = -1;
	double bv = 0;
	int rc;

	if (all_digits(what) && parse_u63(what, &step))
		return ckpt_error_set(err, CKPT_ERR_INVALID, NULL, -1,
		    "step '%s' is out of range", what);
	if (step < 0 && strcmp(what, "latest") && strcmp(what, "best"))
		return ckpt_error_set(err, CKPT_ERR_INVALID, NULL, -1,
		    "'%s@%s': expected a step, 'latest' or 'best'", run, what);
	if (!strcmp(what, "best") && (!metric || !*metric))
		return ckpt_error_set(err, CKPT_ERR_INVALID, NULL, -1,
		    "'%s@best' needs a metric (--metric, or the policy's)",
		    run);
	if (!strcmp(what, "latest")) {
		rc = ckpt_store_newest(s, run, take_first, out, err);
		if (rc < 0)
			return rc;
		if (!rc)
			return ckpt_error_set(err, CKPT_ERR_NOTFOUND, NULL, -1,
			    "run '%s' has no committed checkpoint", run);
		if (!out->run || !out->path) {
			ckpt_ref_release(out);
			return ckpt_error_nomem(err);
		}
		return CKPT_OK;
	}
	if (step >= 0 && !resolve_step_direct(s, run, step, out))
		return CKPT_OK;
	if ((rc = ckpt_store_list(s, run, 0, &l, err)))
		return rc;
	for (size_t i = 0; i < ckpt_list_count(l); i++) {
		const struct ckpt_entry *e = ckpt_list_entry(l, i);
		double v;

		if (step >= 0) {
			if (e->step == step)
				best = e;
			continue;
		}
		if (e->failed)
			continue;
		if (!strcmp(what, "latest")) {
			best = e;	/* sorted by step: the last wins */
			continue;
		}
		if (!ckpt_entry_metric(e, metric, &v) || isnan(v))
			continue;
		/* Ties go to the newer (higher step): ">=" / "<=". */
		if (!best || (mode == CKPT_METRIC_MAX ? v >= bv : v <= bv)) {
			best = e;
			bv = v;
		}
	}
	if (!best) {
		if (step >= 0)
			rc = ckpt_error_set(err, CKPT_ERR_NOTFOUND, NULL, -1,
			    "no committed checkpoint %s@%lld", run,
			    (long long)step);
		else if (!strcmp(what, "best"))
			rc = ckpt_error_set(err, CKPT_ERR_NOTFOUND, NULL, -1,
			    "no checkpoint of run '%s' has a value for "
			    "metric '%s'", run, metric);
		else
			rc = ckpt_error_set(err, CKPT_ERR_NOTFOUND, NULL, -1,
			    "run '%s' has no committed checkpoint", run);
		ckpt_list_free(l);
		return rc;
	}
	out->run = strdup(best->run);
	out->path = strdup(best->path);
	out->step = best->step;
	ckpt_list_free(l);
	if (!out->run || !out->path) {
		ckpt_ref_release(out);
		return ckpt_error_nomem(err);
	}
	return CKPT_OK;
}

/*
 * MODEL@vN and MODEL@ALIAS come from the registry's history (registry.c),
 * never from the state files: the history is what a promotion commits,
 * and one that does not verify fails the resolution (fail closed).
 */
static int
resolve_model(struct ckpt_store *s, const char *model, const char *what,
    struct ckpt_ref *out, struct ckpt_error *err)
{
	const struct ckpt_reg_version *v;
	const struct ckpt_reg_alias *a;
	struct ckpt_registry *r;
	int64_t version = -1;
	int rc;

	if (what[0] == 'v' && all_digits(what + 1)) {
		if (parse_u63(what + 1, &version) || version <= 0)
			return ckpt_error_set(err, CKPT_ERR_INVALID, NULL, -1,
			    "bad version '%s'", what);
	} else if ((rc = ckpt_name_check(what, "alias", err))) {
		return rc;
	}
	if ((rc = ckpt_registry_load(s, 0, &r, err)))
		return rc;
	if (version < 0 && (a = ckpt_registry_find_alias(r, model, what)))
		version = a->version;
	v = version > 0 ? ckpt_registry_find_version(r, model, version) :
	    NULL;
	if (!v) {
		if (!ckpt_reg_version_count(r, model))
			rc = ckpt_error_set(err, CKPT_ERR_NOTFOUND, NULL, -1,
			    "no model '%s' in the registry", model);
		else if (version < 0)
			rc = ckpt_error_set(err, CKPT_ERR_NOTFOUND, NULL, -1,
			    "model '%s' has no alias '%s'", model, what);
		else
			rc = ckpt_error_set(err, CKPT_ERR_NOTFOUND, NULL, -1,
			    "model '%s' has no version %lld", model,
			    (long long)version);
		ckpt_registry_free(r);
		return rc;
	}
	out->run = strdup(v->run);
	out->step = v->step;
	out->path = strdup(v->path);
	out->model = strdup(model);
	out->version = version;
	out->manifest_digest = strdup(v->manifest);
	ckpt_registry_free(r);
	if (!out->run || !out->path || !out->model || !out->manifest_digest) {
		ckpt_ref_release(out);
		return ckpt_error_nomem(err);
	}
	return CKPT_OK;
}

int
ckpt_store_resolve(struct ckpt_store *s, const char *ref, const char *metric,
    enum ckpt_metric_mode mode, struct ckpt_ref *out,
    struct ckpt_error *err)
{
	char name[CKPT_NAME_MAX + 1];
	const char *at, *what;
	size_t n;
	int rc;

	memset(out, 0, sizeof(*out));
	at = ref ? strchr(ref, '@') : NULL;
	if (!at)
		return ckpt_error_set(err, CKPT_ERR_INVALID, NULL, -1,
		    "'%s' is not a reference (RUN@STEP, RUN@latest, RUN@best, "
		    "MODEL@vN, MODEL@ALIAS)", ref ? ref : "");
	n = (size_t)(at - ref);
	what = at + 1;
	if (n > CKPT_NAME_MAX)
		return ckpt_error_set(err, CKPT_ERR_INVALID, NULL, -1,
		    "name in reference '%s' is too long", ref);
	memcpy(name, ref, n);
	name[n] = '\0';
	if ((rc = ckpt_name_check(name, "name", err)))
		return rc;
	if (!*what || strchr(what, '@') || strchr(what, '/'))
		return ckpt_error_set(err, CKPT_ERR_INVALID, NULL, -1,
		    "malformed reference '%s'", ref);
	if (all_digits(what) || !strcmp(what, "latest") ||
	    !strcmp(what, "best"))
		return resolve_run(s, name, what, metric, mode, out, err);
	return resolve_model(s, name, what, out, err);
}

/* ------------------------------------------------------------------ */
/* The newest first                                                    */
/* ------------------------------------------------------------------ */

/* Positions of the index by step, then name (the index is sorted by
 * name: its position), like a listing. */
struct by_step {
	int64_t step;
	size_t i;
};

static int
cmp_by_step(const void *a, const void *b)
{
	const struct by_step *x = a, *y = b;

	if (x->step != y->step)
		return x->step < y->step ? -1 : 1;
	return x->i < y->i ? -1 : x->i > y->i;
}

/*
 * The fast path of ckpt_store_newest: the run directory is as the index
 * saw it, so its names are the index's.  From the newest down, a record
 * marked failed is skipped while its directory is unchanged; any other is
 * read from its files before fn sees it.  Returns 1 when the index turned
 * out stale (the caller lists the run instead).
 */
static int
newest_from_index(struct ckpt_store *s, struct ckpt_index *ix,
    const char *runkey, const char *runpath, const char *run,
    const struct ckpt_protection *prot,
    int (*fn)(const struct ckpt_entry *, void *), void *arg, int *fnrc,
    struct ckpt_error *err)
{
	size_t n = ckpt_index_count(ix);
	struct by_step *order = calloc(n ? n : 1, sizeof(*order));
	int rc = 0;

	if (!order)
		return ckpt_error_nomem(err);
	for (size_t i = 0; i < n; i++) {
		order[i].step = ckpt_index_step(ix, i);
		order[i].i = i;
	}
	qsort(order, n, sizeof(*order), cmp_by_step);
	for (size_t k = n; k-- > 0 && !*fnrc && !rc;) {
		const struct by_step *o = &order[k];
		struct ckpt_list one = { 0 };
		char sub[PATH_MAX], key[PATH_MAX], name[CKPT_NAME_MAX + 64];
		struct ckpt_be_info st;
		struct ckpt_stamp stamp;
		struct ckpt_error se;
		bool added, bad;

		if (!ckpt_index_name(ix, o->i, name, sizeof(name))) {
			rc = 1;
			break;
		}
		if (ckpt_index_failed(ix, o->i)) {
			ckpt_error_clear(&se);
			if (!run_key(key, sizeof(key), runkey, name, NULL)) {
				rc = 1;
				break;
			}
			if ((rc = s->ops->stat(s->be, key, &st, &se))) {
				rc = rc == CKPT_ERR_NOTFOUND ? 1 :
				    list_be_error(err, runpath, name, &se,
				    "cannot stat");
				break;
			}
			ckpt_stamp_of(&st, &stamp);
			if (ckpt_index_matches(ix, o->i, &stamp))
				continue;	/* still failed */
		}
		/* committed: its manifest is there (fail closed) */
		snprintf(sub, sizeof(sub), "%s/%s", name,
		    CKPT_MANIFEST_NAME);
		if (!run_key(key, sizeof(key), runkey, name,
		    CKPT_MANIFEST_NAME)) {
			rc = 1;
			break;
		}
		ckpt_error_clear(&se);
		if ((rc = s->ops->stat(s->be, key, &st, &se))) {
			rc = rc == CKPT_ERR_NOTFOUND || rc == CKPT_ERR_UNSAFE ?
			    1 : list_be_error(err, runpath, sub, &se,
			    "cannot stat");
			break;
		}
		if (st.type != CKPT_BE_FILE) {
			rc = 1;
			break;
		}
		rc = read_checkpoint(&one, s, runkey, runpath, run, name, prot,
		    &added, &bad, err);
		if (!rc && (!added || one.entries[0].e.step != o->step))
			rc = 1;		/* gone, damaged or changed: stale */
		if (!rc && !one.entries[0].e.failed)
			*fnrc = fn(&one.entries[0].e, arg);
		ckpt_pool_release(&one.pool);
		free(one.entries);
	}
	free(order);
	return rc;
}

int
ckpt_store_newest(struct ckpt_store *s, const char *run, ckpt_entry_fn fn,
    void *arg, struct ckpt_error *err)
{
	struct ckpt_protection prot;
	struct ckpt_index *ix = NULL;
	struct ckpt_list *l = NULL;
	char *runs = NULL, *runpath = NULL, runkey[PATH_MAX];
	struct ckpt_be_info st;
	struct ckpt_stamp stamp;
	bool have_prot = false;
	int rc, fnrc = 0;

	if ((rc = ckpt_name_check(run, "run name", err)))
		return rc;
	snprintf(runkey, sizeof(runkey), CKPT_STORE_RUNS "/%s", run);
	runs = ckpt_store_path(s, CKPT_STORE_RUNS);
	runpath = runs ? ckpt_join(runs, run) : NULL;
	if (!runpath) {
		rc = ckpt_error_nomem(err);
		goto out;
	}
	/* A backend without stamps (S3) has no index cache to try: the
	 * listing at once, without the checks that only serve the cache. */
	if (!s->ops->stat(s->be, "", &st, NULL)) {
		ckpt_stamp_of(&st, &stamp);
		if (!ckpt_stamp_usable(&stamp))
			goto slow;
	}
	/* runs/ or the run missing, or a link: the listing says what */
	if ((rc = runs_check(s, runs, err)) == CKPT_ERR_NOTFOUND)
		goto slow;
	if (rc)
		goto out;
	rc = run_stat(s, runkey, runpath, &st, err);
	if (rc == CKPT_ERR_NOTFOUND || rc == CKPT_ERR_UNSAFE)
		goto slow;
	if (rc)
		goto out;
	ckpt_stamp_of(&st, &stamp);
	if (ckpt_index_load(s, run, &ix) || !ckpt_index_run_fresh(ix, &stamp))
		goto slow;	/* the listing says why, and fills the index */
	if ((rc = ckpt_protection_load(s, &prot, err)))
		goto out;
	have_prot = true;
	rc = newest_from_index(s, ix, runkey, runpath, run, &prot, fn, arg,
	    &fnrc, err);
	if (rc != 1)
		goto out;
	fnrc = 0;
slow:
	if ((rc = ckpt_store_list(s, run, 0, &l, err)))
		goto out;
	for (size_t i = ckpt_list_count(l); i-- > 0 && !fnrc;)
		if (!l->entries[i].e.failed)
			fnrc = fn(&l->entries[i].e, arg);
out:
	ckpt_list_free(l);
	ckpt_index_free(ix);
	if (have_prot)
		ckpt_protection_release(&prot);
	free(runs);
	free(runpath);
	return rc ? rc : fnrc;
}
