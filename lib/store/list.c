/* SPDX-License-Identifier: MIT */
/*
 * list.c - listing a store's checkpoints and resolving references.
 *
 * ls over 10,000 checkpoints must take well under a second, so a listing
 * reads one small file per checkpoint (ckpt-summary.json, written at save
 * and covered by the manifest) and checks that the manifest exists with
 * one stat; the manifest itself, with its tensor lists, is read
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

#define SUMMARY_MAX	(1u << 20)
#define STATUS_MAX	(1u << 20)
#define REGISTRY_MAX	(1u << 20)

struct entry_priv {
	struct ckpt_entry e;
	struct ckpt_metric *metrics;
	char **tags;
};

struct ckpt_list {
	struct entry_priv *entries;
	size_t n, cap;
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

static struct entry_priv *
list_new_entry(struct ckpt_list *l)
{
	if (l->n == l->cap) {
		size_t cap = l->cap ? 2 * l->cap : 64;
		struct entry_priv *p = reallocarray(l->entries, cap,
		    sizeof(*p));

		if (!p)
			return NULL;
		l->entries = p;
		l->cap = cap;
	}
	memset(&l->entries[l->n], 0, sizeof(l->entries[l->n]));
	return &l->entries[l->n++];
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

/* Fills e from a summary (or a manifest: the same top-level keys). */
static int
entry_from_json(struct entry_priv *p, json_t *j)
{
	struct ckpt_entry *e = &p->e;
	json_t *v, *m, *val;
	const char *key;
	size_t i;

	v = json_object_get(j, "step");
	if (!json_is_integer(v) || json_integer_value(v) < 0)
		return -1;
	e->step = json_integer_value(v);
	e->created_iso = jstrdup(j, "created");
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
	e->scope = jstrdup(j, "scope");
	e->note = jstrdup(j, "note");
	v = json_object_get(j, "validation");
	if (json_is_object(v))
		v = json_object_get(v, "result");
	e->validation = json_is_string(v) ? strdup(json_string_value(v)) :
	    strdup("skipped");
	if (e->validation && !strcmp(e->validation, "failed"))
		e->failed = true;
	m = json_object_get(j, "metrics");
	if (json_is_object(m) && json_object_size(m)) {
		p->metrics = calloc(json_object_size(m), sizeof(*p->metrics));
		if (!p->metrics)
			return -1;
		json_object_foreach(m, key, val) {
			struct ckpt_metric *mt = &p->metrics[e->nmetrics];

			mt->name = strdup(key);
			if (!mt->name)
				return -1;
			mt->value = json_is_number(val) ?
			    json_number_value(val) : NAN;
			e->nmetrics++;
		}
		e->metrics = p->metrics;
	}
	v = json_object_get(j, "tags");
	if (json_is_array(v) && json_array_size(v)) {
		p->tags = calloc(json_array_size(v), sizeof(*p->tags));
		if (!p->tags)
			return -1;
		json_array_foreach(v, i, val) {
			if (!json_is_string(val))
				continue;
			p->tags[e->ntags] = strdup(json_string_value(val));
			if (!p->tags[e->ntags])
				return -1;
			e->ntags++;
		}
		e->tags = (const char *const *)p->tags;
	}
	return 0;
}

static void
entry_apply_status(struct entry_priv *p, json_t *st)
{
	json_t *lt = json_object_get(st, "load_test");
	json_t *r = json_is_object(lt) ? json_object_get(lt, "result") : NULL;

	if (json_is_string(r)) {
		p->e.load_test = strdup(json_string_value(r));
		if (p->e.load_test && strcmp(p->e.load_test, "ok"))
			p->e.failed = true;
	}
	if (json_is_true(json_object_get(st, "failed")))
		p->e.failed = true;
}

static void
entry_release(struct entry_priv *p)
{
	struct ckpt_entry *e = &p->e;

	free((char *)e->run);
	free((char *)e->path);
	free((char *)e->name);
	free((char *)e->created_iso);
	free((char *)e->scope);
	free((char *)e->note);
	free((char *)e->validation);
	free((char *)e->load_test);
	for (size_t i = 0; i < e->nmetrics; i++)
		free((char *)p->metrics[i].name);
	free(p->metrics);
	for (size_t i = 0; i < e->ntags; i++)
		free(p->tags[i]);
	free(p->tags);
}

static void
staging_release(struct ckpt_staging *st)
{
	free((char *)st->run);
	free((char *)st->path);
	free((char *)st->name);
	free((char *)st->phase);
	free((char *)st->message);
	free((char *)st->host);
}

void
ckpt_list_free(struct ckpt_list *l)
{
	if (!l)
		return;
	for (size_t i = 0; i < l->n; i++)
		entry_release(&l->entries[i]);
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
add_staging(struct ckpt_list *l, const char *run, const char *runpath,
    const struct ckpt_store *s, const char *runkey, const char *name,
    bool incomplete)
{
	struct ckpt_staging *st = list_new_staging(l);
	struct ckpt_be_info sb;
	char sub[PATH_MAX];
	json_t *j;

	if (!st)
		return -1;
	st->run = strdup(run);
	st->name = strdup(name);
	st->path = ckpt_join(runpath, name);
	if (!st->run || !st->name || !st->path)
		return -1;
	snprintf(sub, sizeof(sub), "%s/%s", runkey, name);
	if (!s->ops->stat(s->be, sub, &sb, NULL))
		st->updated = st->started = sb.mtime;
	if (incomplete) {
		st->state = CKPT_STAGING_INCOMPLETE;
		return 0;
	}
	snprintf(sub, sizeof(sub), "%s/%s/%s", runkey, name,
	    CKPT_STAGING_NAME);
	st->state = CKPT_STAGING_ABANDONED;
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
		st->phase = jstrdup(j, "phase");
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
		} else if (st->host && !strcmp(st->host, ckpt_hostname())) {
			json_t *sv = json_object_get(j, "start");
			json_t *bv = json_object_get(j, "boot");
			unsigned long long start = json_is_integer(sv) ?
			    (unsigned long long)json_integer_value(sv) : 0;
			bool same_boot = !json_is_string(bv) ||
			    !strcmp(json_string_value(bv), ckpt_boot_id());

			st->state = same_boot && ckpt_proc_alive(st->pid,
			    start) ? CKPT_STAGING_ACTIVE :
			    CKPT_STAGING_ABANDONED;
		} else {
			/* Another host: we cannot tell; assume it runs. */
			st->state = CKPT_STAGING_ACTIVE;
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
	struct entry_priv *p;
	char key[PATH_MAX];
	json_t *j = NULL;
	enum load lr;
	int rc = 0;

	*added = *bad = false;
	snprintf(key, sizeof(key), "%s/%s/%s", runkey, name,
	    CKPT_SUMMARY_NAME);
	lr = load_json(s, key, SUMMARY_MAX, &j);
	if (lr == LOAD_MISSING || lr == LOAD_BAD) {
		/* No summary: fall back to the (larger) manifest. */
		snprintf(key, sizeof(key), "%s/%s/%s", runkey, name,
		    CKPT_MANIFEST_NAME);
		lr = load_json(s, key, (size_t)1 << 30, &j);
	}
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
	p->e.run = strdup(run);
	p->e.name = strdup(name);
	p->e.path = ckpt_join(runpath, name);
	if (!p->e.run || !p->e.name || !p->e.path) {
		entry_release(p);
		l->n--;
		rc = ckpt_error_nomem(err);
		goto out;
	}
	if (lr == LOAD_BAD || entry_from_json(p, j)) {
		/* Unreadable: not a checkpoint we can count. */
		entry_release(p);
		l->n--;
		*bad = true;
		goto out;
	}
	json_decref(j);
	j = NULL;
	snprintf(key, sizeof(key), "%s/%s/%s", runkey, name, CKPT_STATUS_NAME);
	switch (load_json(s, key, STATUS_MAX, &j)) {
	case LOAD_OK:
		entry_apply_status(p, j);
		break;
	case LOAD_MISSING:
		break;
	case LOAD_BAD:
		/* a damaged status may hide a failure: never trust it */
		p->e.failed = true;
		free((char *)p->e.load_test);
		p->e.load_test = strdup("unreadable");
		break;
	default:
		rc = list_io_error(err, runpath, name, "cannot read "
		    CKPT_STATUS_NAME " in");
		goto out;
	}
	p->e.pinned = ckpt_protection_pinned(prot, run, p->e.step);
	p->e.protected_by_registry = ckpt_protection_registry(prot, run,
	    p->e.step) != NULL;
	*added = true;
out:
	json_decref(j);
	return rc;
}

/* What listing one run needs (list_run_entry is the backend's callback). */
struct run_walk {
	struct ckpt_list *l;
	const struct ckpt_store *s;
	const char *runkey, *runpath, *run;
	unsigned int flags;
	const struct ckpt_protection *prot;
	struct ckpt_error *err;
};

/* Lists one entry of runs/RUN. */
static int
list_run_entry(void *arg, const char *name, const struct ckpt_be_info *info)
{
	struct run_walk *w = arg;
	struct ckpt_list *l = w->l;
	const char *runpath = w->runpath, *run = w->run;
	unsigned int flags = w->flags;
	struct ckpt_error *err = w->err;
	struct ckpt_be_info st;
	struct ckpt_error se;
	char sub[PATH_MAX], key[PATH_MAX];
	bool added, bad = false;
	int rc;

	if (info->type == CKPT_BE_LINK && name[0] != '.')
		return add_foreign(l, run, ckpt_join(runpath, name),
		    "a symbolic link, not part of the store: left alone", err);
	if (info->type != CKPT_BE_DIR)
		return 0;
	if (!strncmp(name, CKPT_STAGING_PREFIX,
	    strlen(CKPT_STAGING_PREFIX))) {
		if ((flags & CKPT_LIST_STAGING) && add_staging(l, run,
		    runpath, w->s, w->runkey, name, false))
			return list_io_error(err, runpath, name,
			    "cannot read the save record in");
		return 0;
	}
	if (name[0] == '.')
		return 0;
	snprintf(sub, sizeof(sub), "%s/%s", name, CKPT_MANIFEST_NAME);
	if ((size_t)snprintf(key, sizeof(key), "%s/%s", w->runkey, sub) >=
	    sizeof(key))
		return 0;	/* no such name fits a checkpoint */
	ckpt_error_clear(&se);
	rc = w->s->ops->stat(w->s->be, key, &st, &se);
	if (rc == CKPT_ERR_NOTFOUND) {
		bad = true;
	} else if (rc == CKPT_ERR_UNSAFE) {
		return 0;	/* replaced by a link meanwhile: not ours */
	} else if (rc) {
		errno = se.sys_errno ? se.sys_errno : EIO;
		return list_io_error(err, runpath, sub, "cannot stat");
	} else if (st.type == CKPT_BE_LINK) {
		return add_foreign(l, run, ckpt_join(runpath, name),
		    "its manifest is a symbolic link: left alone", err);
	} else {
		if ((rc = read_checkpoint(l, w->s, w->runkey, runpath, run,
		    name, w->prot, &added, &bad, err)))
			return rc;
		if (added)
			return 0;
	}
	if (bad && (flags & CKPT_LIST_STAGING) && add_staging(l, run, runpath,
	    w->s, w->runkey, name, true))
		return ckpt_error_nomem(err);
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
	struct run_walk w = { l, s, runkey, runpath, run, flags, prot, err };
	struct ckpt_be_info st;
	struct ckpt_error le;
	int rc = 0;

	if (!runpath)
		return ckpt_error_nomem(err);
	snprintf(runkey, sizeof(runkey), "runs/%s", run);
	ckpt_error_clear(&le);
	rc = s->ops->list(s->be, runkey, list_run_entry, &w, &le);
	if (rc == CKPT_ERR_NOTFOUND && le.code == CKPT_ERR_NOTFOUND &&
	    !strcmp(le.path, runpath)) {
		rc = 0;		/* removed meanwhile, or never there */
	} else if (rc == CKPT_ERR_UNSAFE && le.code == CKPT_ERR_UNSAFE &&
	    !strcmp(le.path, runpath)) {
		rc = 0;
		if (s->ops->stat(s->be, runkey, &st, NULL) ||
		    st.type != CKPT_BE_LINK) {
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
	} else if (rc && le.code && err) {
		/* the backend's own error (an entry's is in err already) */
		*err = le;
	}
	free(runpath);
	return rc;
}

static int
cmp_entry(const void *a, const void *b)
{
	const struct ckpt_entry *x = &((const struct entry_priv *)a)->e;
	const struct ckpt_entry *y = &((const struct entry_priv *)b)->e;
	int c = strcmp(x->run, y->run);

	if (c)
		return c;
	if (x->step != y->step)
		return x->step < y->step ? -1 : 1;
	return strcmp(x->name, y->name);
}

static int
cmp_staging(const void *a, const void *b)
{
	const struct ckpt_staging *x = a, *y = b;
	int c = strcmp(x->run, y->run);

	return c ? c : strcmp(x->name, y->name);
}

struct runs_walk {
	struct ckpt_list *l;
	const struct ckpt_store *s;
	const char *runs;
	unsigned int flags;
	const struct ckpt_protection *prot;
	struct ckpt_error *err;
};

static int
list_one_run(void *arg, const char *name, const struct ckpt_be_info *info)
{
	struct runs_walk *w = arg;

	(void)info;
	if (name[0] == '.' || ckpt_name_check(name, NULL, NULL))
		return 0;
	return list_run(w->l, w->s, w->runs, name, w->flags, w->prot, false,
	    w->err);
}

/* Lists every run of runs/ (absent: none). */
static int
list_all_runs(struct ckpt_list *l, const struct ckpt_store *s,
    const char *runs, unsigned int flags, const struct ckpt_protection *prot,
    struct ckpt_error *err)
{
	struct runs_walk w = { l, s, runs, flags, prot, err };
	struct ckpt_error le;
	int rc;

	ckpt_error_clear(&le);
	rc = s->ops->list(s->be, "runs", list_one_run, &w, &le);
	if (rc == CKPT_ERR_NOTFOUND && le.code == CKPT_ERR_NOTFOUND &&
	    !strcmp(le.path, runs))
		return 0;
	if (rc && le.code && err)
		*err = le;
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
	runs = ckpt_store_path(s, "runs");
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
	    "registry"), prot.all, err)))
		goto out;
	if (run) {
		struct ckpt_be_info st;

		/* runs/ itself: absent is empty, a link is no store's */
		rc = s->ops->stat(s->be, "runs", &st, err);
		if (rc == CKPT_ERR_NOTFOUND)
			goto sort;
		if (!rc && st.type != CKPT_BE_DIR)
			rc = ckpt_error_set(err, CKPT_ERR_UNSAFE, runs, -1,
			    "%s: refusing to follow it out of the store",
			    st.type == CKPT_BE_LINK ? "a symbolic link" :
			    "not a directory");
		if (!rc)
			rc = list_run(l, s, runs, run, flags, &prot, true,
			    err);
	} else
		rc = list_all_runs(l, s, runs, flags, &prot, err);
	if (rc)
		goto out;
sort:
	if (l->n)
		qsort(l->entries, l->n, sizeof(*l->entries), cmp_entry);
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

static int
resolve_model(struct ckpt_store *s, const char *model, const char *what,
    struct ckpt_ref *out, struct ckpt_error *err)
{
	char rel[PATH_MAX], *path, *text;
	int64_t version = -1;
	bool parsed;
	json_t *j, *v;
	int rc;

	if (what[0] == 'v' && all_digits(what + 1)) {
		if (parse_u63(what + 1, &version) || version <= 0)
			return ckpt_error_set(err, CKPT_ERR_INVALID, NULL, -1,
			    "bad version '%s'", what);
	} else {
		if ((rc = ckpt_name_check(what, "alias", err)))
			return rc;
		snprintf(rel, sizeof(rel), "registry/%s/aliases.json", model);
		path = ckpt_store_path(s, rel);
		if (!path)
			return ckpt_error_nomem(err);
		rc = s->ops->read(s->be, rel, REGISTRY_MAX, &text, NULL, err);
		if (rc == CKPT_ERR_NOTFOUND)
			ckpt_error_set(err, CKPT_ERR_NOTFOUND, NULL, -1,
			    "model '%s' has no aliases", model);
		if (rc) {
			free(path);
			return rc;
		}
		j = json_loads(text, JSON_REJECT_DUPLICATES, NULL);
		free(text);
		parsed = j != NULL;
		v = json_object_get(json_object_get(j, "aliases"), what);
		if (json_is_integer(v))
			version = json_integer_value(v);
		else if (json_is_object(v) && json_is_integer(
		    json_object_get(v, "version")))
			version = json_integer_value(json_object_get(v,
			    "version"));
		json_decref(j);
		if (version <= 0) {
			rc = parsed ? ckpt_error_set(err, CKPT_ERR_NOTFOUND,
			    NULL, -1, "model '%s' has no alias '%s'", model,
			    what) : ckpt_error_set(err, CKPT_ERR_FORMAT, path,
			    -1, "not valid JSON");
			free(path);
			return rc;
		}
		free(path);
	}
	snprintf(rel, sizeof(rel), "registry/%s/v%lld.json", model,
	    (long long)version);
	path = ckpt_store_path(s, rel);
	if (!path)
		return ckpt_error_nomem(err);
	rc = s->ops->read(s->be, rel, REGISTRY_MAX, &text, NULL, err);
	if (rc == CKPT_ERR_NOTFOUND)
		ckpt_error_set(err, CKPT_ERR_NOTFOUND, NULL, -1,
		    "model '%s' has no version %lld", model,
		    (long long)version);
	if (rc) {
		free(path);
		return rc;
	}
	j = json_loads(text, JSON_REJECT_DUPLICATES, NULL);
	free(text);
	if (!json_is_object(j) || !json_is_string(json_object_get(j, "run")) ||
	    !json_is_integer(json_object_get(j, "step"))) {
		json_decref(j);
		rc = ckpt_error_set(err, CKPT_ERR_FORMAT, path, -1,
		    "registry version lacks \"run\" or \"step\"");
		free(path);
		return rc;
	}
	free(path);
	{
		char ref_step[32];
		const char *run = json_string_value(json_object_get(j, "run"));
		const char *vpath = json_string_value(json_object_get(j,
		    "path"));

		if ((rc = ckpt_name_check(run, "run name", err))) {
			json_decref(j);
			return rc;
		}
		if (vpath && *vpath && vpath[0] != '/' && !strstr(vpath,
		    "..")) {
			/* An exported copy (promote --weights-only). */
			out->run = strdup(run);
			out->step = json_integer_value(json_object_get(j,
			    "step"));
			out->path = ckpt_store_path(s, vpath);
			rc = out->run && out->path ? CKPT_OK :
			    ckpt_error_nomem(err);
		} else {
			snprintf(ref_step, sizeof(ref_step), "%lld",
			    (long long)json_integer_value(json_object_get(j,
			    "step")));
			rc = resolve_run(s, run, ref_step, NULL, 0, out, err);
		}
		if (!rc) {
			out->model = strdup(model);
			out->version = version;
			out->manifest_digest = jstrdup(j, "manifest");
			if (!out->model)
				rc = ckpt_error_nomem(err);
		}
		json_decref(j);
		if (rc)
			ckpt_ref_release(out);
		return rc;
	}
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
