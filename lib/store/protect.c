/* SPDX-License-Identifier: MIT */
/*
 * protect.c - what keeps a checkpoint from being pruned whatever the
 * policy says: pins (.ckpt/pins/RUN@STEP) and registry versions
 * (registry/MODEL/vN.json naming a run and step).
 *
 * Both readers fail closed.  A listing that cannot be read (any error but
 * ENOENT, a symbolic link where a directory belongs) is an error, never
 * "nothing is protected": a pin lost to an EIO once let prune delete the
 * pinned checkpoint.  A registry entry that cannot be parsed protects
 * what it might name -- the whole run when its "run" is readable, every
 * checkpoint of the store otherwise -- and never unprotects anything.
 * No symbolic link is followed: directories are opened with O_NOFOLLOW
 * relative to their parent's descriptor.
 *
 * ckpt_registry_protection_read() is the one reader of registry
 * protection; the registry commands (promote) call it too.
 */
#include "util/internal.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "store/backend.h"
#include "store/store.h"
#include "store/registry.h"

#define REGISTRY_MAX	(1u << 20)
#define HISTORY_MAX	((size_t)256 << 20)

static int
strv_add(char ***v, size_t *n, const char *s)
{
	char **p = reallocarray(*v, *n + 1, sizeof(*p));

	if (!p)
		return -1;
	*v = p;
	if (!(p[*n] = strdup(s)))
		return -1;
	(*n)++;
	return 0;
}

static int
cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static bool
strv_has(char *const *v, size_t n, const char *s)
{
	return n && bsearch(&s, v, n, sizeof(*v), cmp_str);
}

static void
strv_free(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

void
ckpt_protection_release(struct ckpt_protection *p)
{
	if (!p)
		return;
	strv_free(p->pins, p->npins);
	strv_free(p->keys, p->nkeys);
	strv_free(p->runs, p->nruns);
	free(p->all);
	memset(p, 0, sizeof(*p));
}

struct pins_walk {
	struct ckpt_protection *p;
	struct ckpt_error *err;
};

static int
pin_entry(void *arg, const char *name, const struct ckpt_be_info *info)
{
	struct pins_walk *w = arg;

	(void)info;
	/* only the name counts: a pin's content is a note for people */
	if (name[0] == '.' || !strchr(name, '@') || strstr(name, ".tmp"))
		return 0;
	return strv_add(&w->p->pins, &w->p->npins, name) ?
	    ckpt_error_nomem(w->err) : 0;
}

int
ckpt_pins_read(const struct ckpt_store *s, struct ckpt_protection *p,
    struct ckpt_error *err)
{
	struct pins_walk w = { p, err };
	struct ckpt_error le;
	int rc;

	ckpt_error_clear(&le);
	rc = s->ops->list(s->be, CKPT_STORE_PINS, pin_entry, &w, &le);
	if (rc == CKPT_ERR_NOTFOUND && le.code == CKPT_ERR_NOTFOUND)
		return 0;	/* no pins directory: no pins */
	if (rc && le.code && err)
		*err = le;
	if (!rc && p->npins)
		qsort(p->pins, p->npins, sizeof(*p->pins), cmp_str);
	return rc;
}

bool
ckpt_protection_pinned(const struct ckpt_protection *p, const char *run,
    int64_t step)
{
	char key[CKPT_NAME_MAX + 32];

	snprintf(key, sizeof(key), "%s@%lld", run, (long long)step);
	return strv_has(p->pins, p->npins, key);
}

/* Protects everything; the first reason wins. */
static int
protect_all(struct ckpt_protection *p, const char *rel, const char *why,
    struct ckpt_error *err)
{
	if (p->all)
		return 0;
	if (asprintf(&p->all, "unreadable %s: %s", rel, why) < 0) {
		p->all = NULL;
		return ckpt_error_nomem(err);
	}
	return 0;
}

struct reg_walk {
	struct ckpt_protection *p;
	struct ckpt_error *err;
	const struct ckpt_store *s;
	const char *model;
};

static bool
is_version_file(const char *name)
{
	size_t n = strlen(name);

	if (name[0] != 'v' || n < 7 || strcmp(name + n - 5, ".json"))
		return false;
	for (size_t i = 1; i < n - 5; i++)
		if (name[i] < '0' || name[i] > '9')
			return false;
	return true;
}

/* Reads one version file; what it protects goes into the protection. */
static int
version_entry(void *arg, const char *name, const struct ckpt_be_info *info)
{
	struct reg_walk *w = arg;
	char rel[PATH_MAX], *text = NULL;
	json_t *j = NULL, *run, *step;
	const char *why = NULL;
	struct ckpt_error re;
	size_t len = 0;
	int rc = 0;

	(void)info;
	if (!is_version_file(name))
		return 0;
	snprintf(rel, sizeof(rel), "%s/%s/%s", CKPT_STORE_REGISTRY, w->model,
	    name);
	ckpt_error_clear(&re);
	switch ((rc = w->s->ops->read(w->s->be, rel, REGISTRY_MAX, &text,
	    &len, &re))) {
	case CKPT_OK:
		break;
	case CKPT_ERR_NOTFOUND:
		return 0;	/* removed meanwhile */
	case CKPT_ERR_UNSAFE:
		return protect_all(w->p, rel, "a symbolic link", w->err);
	case CKPT_ERR_LIMIT:
		return protect_all(w->p, rel, "larger than 1 MiB", w->err);
	case CKPT_ERR_FORMAT:
		return protect_all(w->p, rel, "not a regular file", w->err);
	default:
		if (w->err)
			*w->err = re;
		return rc;
	}
	if (!rc) {
		j = json_loadb(text, len, JSON_REJECT_DUPLICATES, NULL);
		run = json_object_get(j, "run");
		step = json_object_get(j, "step");
		if (!json_is_object(j))
			why = "not a JSON object";
		else if (!json_is_string(run) || ckpt_name_check(
		    json_string_value(run), NULL, NULL))
			why = "no valid \"run\"";
		else if (!json_is_integer(step) || json_integer_value(step) <
		    0)
			why = "no valid \"step\"";
		if (!why) {
			char key[CKPT_NAME_MAX + 32];

			snprintf(key, sizeof(key), "%s@%lld",
			    json_string_value(run),
			    (long long)json_integer_value(step));
			if (strv_add(&w->p->keys, &w->p->nkeys, key))
				rc = ckpt_error_nomem(w->err);
		} else if (json_is_string(run) && !ckpt_name_check(
		    json_string_value(run), NULL, NULL)) {
			/* the run is known, the step is not: all of it */
			if (strv_add(&w->p->runs, &w->p->nruns,
			    json_string_value(run)))
				rc = ckpt_error_nomem(w->err);
		} else {
			rc = protect_all(w->p, rel, why, w->err);
		}
	}
	json_decref(j);
	free(text);
	return rc;
}

static int
model_entry(void *arg, const char *name, const struct ckpt_be_info *info)
{
	struct reg_walk *w = arg, vw = *w;
	struct ckpt_error le;
	char rel[PATH_MAX];
	int rc;

	if (name[0] == '.')
		return 0;
	snprintf(rel, sizeof(rel), "%s/%s", CKPT_STORE_REGISTRY, name);
	if (info->type == CKPT_BE_LINK)
		return protect_all(w->p, rel, "a symbolic link", w->err);
	if (info->type != CKPT_BE_DIR || ckpt_name_check(name, NULL, NULL))
		return 0;	/* history.jsonl and the like */
	vw.model = name;
	ckpt_error_clear(&le);
	rc = w->s->ops->list(w->s->be, rel, version_entry, &vw, &le);
	if (rc == CKPT_ERR_NOTFOUND && le.code == CKPT_ERR_NOTFOUND)
		return 0;
	if (rc == CKPT_ERR_UNSAFE && le.code == CKPT_ERR_UNSAFE)
		return protect_all(w->p, rel, "replaced while read", w->err);
	if (rc && le.code && w->err)
		*w->err = le;
	return rc;
}

/* The sources of the versions the history names. */
static int
history_protection(const struct ckpt_store *s, struct ckpt_protection *p,
    struct ckpt_error *err)
{
	struct ckpt_registry *r = NULL;
	struct ckpt_error le;
	char *text = NULL;
	size_t len = 0;
	int rc;

	ckpt_error_clear(&le);
	switch ((rc = s->ops->read(s->be, REG_HISTORY, HISTORY_MAX, &text,
	    &len, &le))) {
	case CKPT_OK:
		break;
	case CKPT_ERR_NOTFOUND:
		return 0;	/* no history: no version */
	case CKPT_ERR_UNSAFE:
		return protect_all(p, REG_HISTORY, "a symbolic link", err);
	case CKPT_ERR_LIMIT:
		return protect_all(p, REG_HISTORY, "larger than 256 MiB", err);
	case CKPT_ERR_FORMAT:
		return protect_all(p, REG_HISTORY, "not a regular file", err);
	default:
		if (err)
			*err = le;
		return rc;
	}
	ckpt_error_clear(&le);
	rc = ckpt_registry_parse(text, len, REG_HISTORY, 0, &r, &le);
	free(text);
	if (rc == CKPT_ERR_NOMEM)
		return ckpt_error_nomem(err);
	if (rc) {
		char why[CKPT_ERROR_MSG_MAX + 32];

		snprintf(why, sizeof(why), "%s at byte %lld", le.message,
		    (long long)le.offset);
		return protect_all(p, REG_HISTORY, why, err);
	}
	for (size_t i = 0; !rc && i < ckpt_registry_version_count(r); i++) {
		const struct ckpt_reg_version *v = ckpt_registry_version(r, i);
		char key[CKPT_NAME_MAX + 32];

		snprintf(key, sizeof(key), "%s@%lld", v->run,
		    (long long)v->step);
		if (strv_add(&p->keys, &p->nkeys, key))
			rc = ckpt_error_nomem(err);
	}
	ckpt_registry_free(r);
	return rc;
}

int
ckpt_registry_protection_read(const struct ckpt_store *s,
    struct ckpt_protection *p, struct ckpt_error *err)
{
	struct reg_walk w = { p, err, s, NULL };
	struct ckpt_error le;
	int rc;

	if ((rc = history_protection(s, p, err)))
		return rc;
	ckpt_error_clear(&le);
	rc = s->ops->list(s->be, CKPT_STORE_REGISTRY, model_entry, &w, &le);
	if (rc == CKPT_ERR_NOTFOUND && le.code == CKPT_ERR_NOTFOUND)
		return 0;
	/* a symlinked registry protects, it is not an I/O error */
	if (rc == CKPT_ERR_UNSAFE && le.code == CKPT_ERR_UNSAFE)
		return protect_all(p, CKPT_STORE_REGISTRY, "a symbolic link "
		    "or not a directory", err);
	if (rc && le.code && err)
		*err = le;
	if (!rc && p->nkeys)
		qsort(p->keys, p->nkeys, sizeof(*p->keys), cmp_str);
	if (!rc && p->nruns)
		qsort(p->runs, p->nruns, sizeof(*p->runs), cmp_str);
	return rc;
}

const char *
ckpt_protection_registry(const struct ckpt_protection *p, const char *run,
    int64_t step)
{
	char key[CKPT_NAME_MAX + 32];

	if (p->all)
		return p->all;
	if (strv_has(p->runs, p->nruns, run))
		return
		    "a registry version of this run whose step is unreadable";
	snprintf(key, sizeof(key), "%s@%lld", run, (long long)step);
	return strv_has(p->keys, p->nkeys, key) ? "" : NULL;
}

int
ckpt_protection_load(const struct ckpt_store *s, struct ckpt_protection *p,
    struct ckpt_error *err)
{
	int rc;

	memset(p, 0, sizeof(*p));
	if ((rc = ckpt_pins_read(s, p, err)) ||
	    (rc = ckpt_registry_protection_read(s, p, err)))
		ckpt_protection_release(p);
	return rc;
}

int
ckpt_protection_recheck(const struct ckpt_store *s, const char *run,
    int64_t step, const char **why, struct ckpt_error *err)
{
	struct ckpt_protection p;
	char pin[CKPT_NAME_MAX + 64];
	struct ckpt_be_info st;
	int rc;

	*why = NULL;
	snprintf(pin, sizeof(pin), "%s/%s@%lld", CKPT_STORE_PINS, run,
	    (long long)step);
	/* absent (no pin, or no pins at all) is the only "not pinned" */
	rc = s->ops->stat(s->be, pin, &st, err);
	if (!rc) {
		*why = "pinned";
		return 0;
	}
	if (rc != CKPT_ERR_NOTFOUND)
		return rc;
	memset(&p, 0, sizeof(p));
	if ((rc = ckpt_registry_protection_read(s, &p, err)))
		return rc;
	if (ckpt_protection_registry(&p, run, step))
		*why = "protected by the registry";
	ckpt_protection_release(&p);
	return 0;
}
