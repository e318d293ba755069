/* SPDX-License-Identifier: MIT */
/*
 * s3listix.c - the listing index of a run in a store on S3, so that "ckpt
 * ls" of a run with 1,000 checkpoints costs its prefix listing and one
 * GET, not five requests per checkpoint.
 *
 * While list.c lists runs/R (and only when it may use an index: never
 * for prune or gc, CKPT_LIST_NO_INDEX), the backend (backend-s3.c) keeps
 * what the one recursive ListObjectsV2 of runs/R said of every
 * checkpoint X: its manifest's ETag, size and time, and whether it has a
 * summary and a status object.  From that alone it answers the stat of
 * runs/R/X and of its manifest, and "no such object" for a status the
 * listing did not show; and a summary from the index object
 * PREFIX/.ckpt/index/R.json when the index recorded it for the very
 * manifest ETag the listing shows now (the summary is named with its
 * digest in that manifest: the same manifest, the same summary).  Every
 * other read goes to the service.  Summaries read from the service are
 * recorded, and the index is rewritten at the end when it changed by
 * INDEX_MIN_GAIN entries or more (best effort: a failure, read-only credentials for one, only costs reads the
 * next time).  The index is a cache: anything in it that does not match
 * the listing is ignored, a malformed one is as good as none.
 */
#include "util/internal.h"

#include <jansson.h>

#include "store/s3.h"
#include "store/s3listix.h"
#include "store/store.h"

#define INDEX_DIR	".ckpt/index/"
#define INDEX_MAX	((size_t)64 << 20)
#define SUMMARY_KEEP	((size_t)64 << 10)	/* larger ones: not kept */
/* A PUT of the index is worth it when it spares this many reads the
 * next time (or drops as many stale entries): a run of a few
 * checkpoints is read as it is, and a push or latest that finds its
 * checkpoint there writes nothing. */
#define INDEX_MIN_GAIN	8

struct ix_ent {
	char *name;		/* X, a child of runs/R */
	bool manifest, summary, status;
	struct ckpt_s3_object m;	/* the manifest, as listed */
	char *text;		/* the summary, when known for m.etag */
	size_t len;
};

struct s3_listix {
	struct ckpt_s3 *s3;
	char *runkey;		/* runs/R */
	char *index_key;	/* PREFIX/.ckpt/index/R.json */
	json_t *old;		/* the index as read: {X: {etag, summary}} */
	struct ix_ent *v;
	size_t n, cap;
	bool listed;
	size_t learned;		/* summaries read from the service */
	size_t used;		/* entries of old that matched the listing */
};

static struct ix_ent *
ent_find(struct s3_listix *x, const char *name, size_t len)
{
	/* The listing gives a child's objects together, in key order. */
	if (x->n && !strncmp(x->v[x->n - 1].name, name, len) &&
	    !x->v[x->n - 1].name[len])
		return &x->v[x->n - 1];
	for (size_t i = 0; i < x->n; i++)
		if (!strncmp(x->v[i].name, name, len) && !x->v[i].name[len])
			return &x->v[i];
	return NULL;
}

static struct ix_ent *
ent_add(struct s3_listix *x, const char *name, size_t len)
{
	struct ix_ent *e;

	if (x->n == x->cap) {
		size_t cap = x->cap ? 2 * x->cap : 64;

		if (!(e = realloc(x->v, cap * sizeof(*e))))
			return NULL;
		x->v = e;
		x->cap = cap;
	}
	e = &x->v[x->n];
	memset(e, 0, sizeof(*e));
	if (!(e->name = strndup(name, len)))
		return NULL;
	x->n++;
	return e;
}

struct s3_listix *
ckpt_s3_listix_begin(struct ckpt_s3 *s3, const char *prefix,
    const char *runkey)
{
	struct s3_listix *x = calloc(1, sizeof(*x));
	const char *run = runkey + strlen(CKPT_STORE_RUNS "/");
	char *text = NULL;
	size_t len = 0;

	if (!x)
		return NULL;
	x->s3 = s3;
	if (strncmp(runkey, CKPT_STORE_RUNS "/", strlen(CKPT_STORE_RUNS) + 1) ||
	    !(x->runkey = strdup(runkey)) || asprintf(&x->index_key,
	    "%s" INDEX_DIR "%s.json", prefix, run) < 0) {
		x->index_key = NULL;
		ckpt_s3_listix_end(x);
		return NULL;
	}
	if (!ckpt_s3_get_mem(s3, x->index_key, 0, CKPT_S3_TO_END, INDEX_MAX,
	    &text, &len, NULL, NULL)) {
		x->old = json_loadb(text, len, JSON_REJECT_DUPLICATES, NULL);
		if (!json_is_object(x->old)) {
			json_decref(x->old);
			x->old = NULL;
		}
	}
	free(text);
	return x;
}

/* key below runs/R/: the child's name and what follows it, else NULL. */
static const char *
child_of(const struct s3_listix *x, const char *key, size_t *len)
{
	size_t n = strlen(x->runkey);
	const char *c, *slash;

	if (!x->listed || strncmp(key, x->runkey, n) || key[n] != '/')
		return NULL;
	c = key + n + 1;
	slash = strchr(c, '/');
	*len = slash ? (size_t)(slash - c) : strlen(c);
	return *len ? c : NULL;
}

void
ckpt_s3_listix_note(struct s3_listix *x, const char *prefix,
    const char *rel, const struct ckpt_s3_object *obj)
{
	const char *slash = strchr(rel, '/');
	struct ix_ent *e;

	if (!x || strcmp(prefix, x->runkey) || !obj || !slash ||
	    strchr(slash + 1, '/'))
		return;
	if (!(e = ent_find(x, rel, (size_t)(slash - rel))) &&
	    !(e = ent_add(x, rel, (size_t)(slash - rel))))
		return;		/* no memory: that one is read */
	if (!strcmp(slash + 1, CKPT_MANIFEST_NAME)) {
		e->manifest = true;
		e->m = *obj;
	} else if (!strcmp(slash + 1, CKPT_SUMMARY_NAME)) {
		e->summary = true;
	} else if (!strcmp(slash + 1, CKPT_STATUS_NAME)) {
		e->status = true;
	}
}

void
ckpt_s3_listix_listed(struct s3_listix *x, const char *prefix)
{
	if (!x || strcmp(prefix, x->runkey))
		return;
	x->listed = true;
	/* Summaries the index holds for the manifests listed now. */
	for (size_t i = 0; i < x->n; i++) {
		struct ix_ent *e = &x->v[i];
		json_t *o = json_object_get(x->old, e->name);
		const char *etag = json_string_value(json_object_get(o,
		    "etag"));
		json_t *s = json_object_get(o, "summary");

		if (!e->manifest || !e->summary || !etag || !json_is_string(s)
		    || strcmp(etag, e->m.etag) || !*e->m.etag)
			continue;
		e->len = json_string_length(s);
		if (!(e->text = malloc(e->len + 1)))
			continue;
		memcpy(e->text, json_string_value(s), e->len);
		e->text[e->len] = '\0';
		x->used++;
	}
}

int
ckpt_s3_listix_stat(struct s3_listix *x, const char *key,
    struct ckpt_be_info *out)
{
	const char *c, *rest;
	struct ix_ent *e;
	size_t len;

	if (!x || !(c = child_of(x, key, &len)) || !(e = ent_find(x, c, len)) ||
	    !e->manifest)
		return 1;
	rest = c + len;
	memset(out, 0, sizeof(*out));
	if (!*rest) {
		out->type = CKPT_BE_DIR;
		out->mtime = e->m.mtime;
		return CKPT_OK;
	}
	if (strcmp(rest, "/" CKPT_MANIFEST_NAME))
		return 1;
	out->type = CKPT_BE_FILE;
	out->size = e->m.size;
	out->mtime = e->m.mtime;
	return CKPT_OK;
}

int
ckpt_s3_listix_read(struct s3_listix *x, const char *key, char **data,
    size_t *len)
{
	const char *c, *rest;
	struct ix_ent *e;
	size_t n;

	if (!x || !(c = child_of(x, key, &n)) || !(e = ent_find(x, c, n)) ||
	    !e->manifest)
		return 1;
	rest = c + n;
	if (!strcmp(rest, "/" CKPT_STATUS_NAME))
		return e->status ? 1 : CKPT_ERR_NOTFOUND;
	if (strcmp(rest, "/" CKPT_SUMMARY_NAME))
		return 1;
	if (!e->summary)
		return CKPT_ERR_NOTFOUND;
	if (!e->text || !(*data = malloc(e->len + 1)))
		return 1;
	memcpy(*data, e->text, e->len + 1);
	if (len)
		*len = e->len;
	return CKPT_OK;
}

void
ckpt_s3_listix_learn(struct s3_listix *x, const char *key, const char *data,
    size_t len)
{
	const char *c;
	struct ix_ent *e;
	size_t n;

	if (!x || len > SUMMARY_KEEP || memchr(data, '\0', len) ||
	    !(c = child_of(x, key, &n)) || !(e = ent_find(x, c, n)) ||
	    !e->manifest || e->text || strcmp(c + n, "/" CKPT_SUMMARY_NAME))
		return;
	if (!(e->text = malloc(len + 1)))
		return;
	memcpy(e->text, data, len);
	e->text[len] = '\0';
	e->len = len;
	x->learned++;
}

/* The index of what this listing saw: {X: {"etag", "summary"}}. */
static void
write_index(struct s3_listix *x)
{
	json_t *doc = json_object();
	char *text;

	for (size_t i = 0; doc && i < x->n; i++) {
		const struct ix_ent *e = &x->v[i];

		if (e->manifest && e->text && *e->m.etag)
			json_object_set_new(doc, e->name, json_pack("{s:s, "
			    "s:s%}", "etag", e->m.etag, "summary", e->text,
			    e->len));
	}
	text = doc ? json_dumps(doc, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
	if (text)
		(void)ckpt_s3_put(x->s3, x->index_key, text, strlen(text), 0,
		    NULL, NULL);
	free(text);
	json_decref(doc);
}

void
ckpt_s3_listix_end(struct s3_listix *x)
{
	if (!x)
		return;
	/* Rewritten when it lacked what was read, or held more (gone). */
	if (x->listed && x->index_key && x->learned + (x->old ?
	    json_object_size(x->old) - x->used : 0) >= INDEX_MIN_GAIN)
		write_index(x);
	for (size_t i = 0; i < x->n; i++) {
		free(x->v[i].name);
		free(x->v[i].text);
	}
	free(x->v);
	json_decref(x->old);
	free(x->runkey);
	free(x->index_key);
	free(x);
}
