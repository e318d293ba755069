/* SPDX-License-Identifier: MIT */
/*
 * s3listix.c - the listing index of a run in a store on S3, so that "ckpt
 * ls" of a run with 1,000 checkpoints costs its prefix listing and one
 * GET, not five requests per checkpoint.
 *
 * The index object PREFIX/.ckpt/index/R.json holds, per checkpoint X of
 * runs/R, the ETag of the manifest it was written for and the summary
 * of that manifest (with the summary's SHA-256):
 *
 *   {"ckpt-run-index": 1, "entries": {"X": {"etag": E, "sha256": H,
 *    "summary": S}}}
 *
 * It is a cache, never the truth.  While list.c lists runs/R (and only
 * when it may use an index: never for prune or gc, CKPT_LIST_NO_INDEX),
 * the backend (backend-s3.c) keeps what the one recursive ListObjectsV2
 * of runs/R said of every checkpoint X: its manifest's ETag, size and
 * time, and whether it has a summary and a status object.  From that
 * alone it answers the stat of runs/R/X and of its manifest, and "no
 * such object" for a status the listing did not show; and a summary
 * from the index only when the index recorded it for the very manifest
 * ETag the listing shows now and its SHA-256 matches (the summary is
 * named with its digest in that manifest: the same manifest, the same
 * summary).  So a checkpoint is listed because the listing shows its
 * manifest, never because the index names it; an entry missing, stale
 * (another ETag), damaged (digest) or an index truncated, malformed or
 * of another version costs only the reads of those summaries (fetched
 * PREFETCH_THREADS at a time once the listing is complete), and the
 * listing rewrites the index when that spared INDEX_MIN_GAIN reads or
 * more.
 *
 * Who writes it, always read-modify-write with a conditional PUT
 * (If-Match the ETag read, If-None-Match: * when there was none), so
 * that no writer replaces an index it did not read:
 *   - every commit (save, push, import: backend-s3.c publish) adds its
 *     checkpoint, every removal (prune, gc, trash) drops it; the backend
 *     queues these and applies them once per run when the store lock is
 *     released (ckpt_s3_listix_apply), retrying a lost race a few times;
 *   - a listing writes what it saw, and gives up when the index changed
 *     since it read it (a commit's entry is never undone by a listing
 *     that started before it).
 * Both are best effort: a failure (read-only credentials, a race lost
 * INDEX_ATTEMPTS times, a crash before the apply) leaves an entry out,
 * which the next listing reads from the service and writes back.
 */
#include "util/internal.h"

#include <pthread.h>

#include <jansson.h>
#include <sodium.h>
#include <time.h>

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
#define INDEX_FORMAT	1	/* "ckpt-run-index" */
/* A commit's entry is applied this many times at most when other
 * writers keep changing the index between its GET and its PUT. */
#define INDEX_ATTEMPTS	8
/* Summaries the index lacks are fetched this many at a time once the
 * listing is complete (a rebuild of 1,000 is then not 1,000 round trips
 * end to end); fewer than PREFETCH_MIN are left to list.c's reads. */
#define PREFETCH_THREADS	4
#define PREFETCH_MIN		8

struct ix_ent {
	char *name;		/* X, a child of runs/R */
	bool manifest, summary, status;
	struct ckpt_s3_object m;	/* the manifest, as listed */
	char *text;		/* the summary, when known for m.etag */
	size_t len;
	bool from_index;	/* text came from the index */
};

struct s3_listix {
	struct ckpt_s3 *s3;
	char *store;		/* PREFIX ("" or with its '/') */
	char *runkey;		/* runs/R */
	char *index_key;	/* PREFIX/.ckpt/index/R.json */
	json_t *old;		/* the entries of the index as read */
	bool had;		/* an index object was there (maybe bad) */
	char etag[CKPT_S3_ETAG_MAX];	/* its ETag: our PUT's If-Match */
	struct ix_ent *v;
	size_t n, cap;
	bool listed;
	size_t learned;		/* summaries read from the service */
	size_t used;		/* entries of old that matched the listing */
};

/* A change a commit or a removal makes to the index of its run. */
struct s3_ixop {
	struct s3_ixop *next;
	char *runkey;		/* runs/R */
	char *name;		/* X */
	char *summary;		/* NULL: drop X; else add X with it */
	size_t len;
	char etag[CKPT_S3_ETAG_MAX];	/* the committed manifest's */
};

static char *
index_key_of(const char *prefix, const char *runkey)
{
	char *k;

	if (strncmp(runkey, CKPT_STORE_RUNS "/", strlen(CKPT_STORE_RUNS) + 1)
	    || asprintf(&k, "%s" INDEX_DIR "%s.json", prefix, runkey +
	    strlen(CKPT_STORE_RUNS "/")) < 0)
		return NULL;
	return k;
}

static void
sha256_hex(const char *data, size_t len, char hex[65])
{
	unsigned char d[crypto_hash_sha256_BYTES];

	crypto_hash_sha256(d, (const unsigned char *)data, len);
	sodium_bin2hex(hex, 65, d, sizeof(d));
}

/*
 * The entries of an index document, or NULL when it is not one:
 * truncated, damaged, of another version.  Each entry is checked again
 * where it is used (entry_summary).
 */
static json_t *
index_parse(const char *text, size_t len)
{
	json_t *doc = json_loadb(text, len, JSON_REJECT_DUPLICATES, NULL);
	json_t *v = json_object_get(doc, "ckpt-run-index");
	json_t *entries = json_object_get(doc, "entries");

	if (!json_is_integer(v) || json_integer_value(v) != INDEX_FORMAT ||
	    !json_is_object(entries)) {
		json_decref(doc);
		return NULL;
	}
	json_incref(entries);
	json_decref(doc);
	return entries;
}

/*
 * The summary an entry holds for the manifest with etag: NULL when the
 * entry is for another manifest, malformed, or its summary does not
 * match its digest (damaged: as good as none).
 */
static const char *
entry_summary(json_t *o, const char *etag, size_t *len)
{
	const char *e = json_string_value(json_object_get(o, "etag"));
	const char *h = json_string_value(json_object_get(o, "sha256"));
	json_t *s = json_object_get(o, "summary");
	char hex[65];

	if (!e || !h || !json_is_string(s) || !*etag || strcmp(e, etag))
		return NULL;
	*len = json_string_length(s);
	sha256_hex(json_string_value(s), *len, hex);
	return strcmp(hex, h) ? NULL : json_string_value(s);
}

static json_t *
entry_new(const char *etag, const char *text, size_t len)
{
	char hex[65];

	sha256_hex(text, len, hex);
	return json_pack("{s:s, s:s, s:s%}", "etag", etag, "sha256", hex,
	    "summary", text, len);
}

/*
 * Writes entries as the index at key: If-Match the ETag it had when read
 * (had), else only if there is still none.  CKPT_ERR_EXISTS: someone
 * changed it meanwhile.
 */
static int
index_put(struct ckpt_s3 *s3, const char *key, json_t *entries, bool had,
    const char *etag)
{
	json_t *doc = json_pack("{s:i, s:O}", "ckpt-run-index", INDEX_FORMAT,
	    "entries", entries);
	char *text = doc ? json_dumps(doc, JSON_COMPACT | JSON_SORT_KEYS) :
	    NULL;
	struct ckpt_error e;
	int rc;

	json_decref(doc);
	if (!text)
		return CKPT_ERR_NOMEM;
	ckpt_error_clear(&e);
	rc = had ? ckpt_s3_put_if_match(s3, key, text, strlen(text), etag,
	    NULL, &e) : ckpt_s3_put(s3, key, text, strlen(text),
	    CKPT_S3_IF_ABSENT, NULL, &e);
	free(text);
	return rc;
}

/*
 * Reads the index at key: *entries (NULL: absent or not an index),
 * *had and etag (the object's, for index_put).  An error other than
 * "absent" is returned.
 */
static int
index_get(struct ckpt_s3 *s3, const char *key, json_t **entries, bool *had,
    char etag[CKPT_S3_ETAG_MAX])
{
	struct ckpt_s3_object o;
	struct ckpt_error e;
	char *text = NULL;
	size_t len = 0;
	int rc;

	*entries = NULL;
	*had = false;
	etag[0] = '\0';
	ckpt_error_clear(&e);
	rc = ckpt_s3_get_mem(s3, key, 0, CKPT_S3_TO_END, INDEX_MAX, &text,
	    &len, &o, &e);
	if (rc == CKPT_ERR_LIMIT) {
		/* Too large to read: replaced (If-Match its ETag). */
		ckpt_error_clear(&e);
		rc = ckpt_s3_head(s3, key, &o, &e);
		len = 0;
	}
	if (rc == CKPT_ERR_NOTFOUND)
		return CKPT_OK;
	if (rc)
		return rc;
	*had = true;
	snprintf(etag, CKPT_S3_ETAG_MAX, "%s", o.etag);
	if (text)
		*entries = index_parse(text, len);
	free(text);
	return CKPT_OK;
}

int
ckpt_s3_listix_check(const void *data, size_t size)
{
	json_t *entries = index_parse(data, size), *o;
	const char *name;
	int n = 0;

	if (!entries)
		return -1;
	json_object_foreach(entries, name, o) {
		const char *etag = json_string_value(json_object_get(o,
		    "etag"));
		size_t len;

		if (etag && entry_summary(o, etag, &len))
			n++;
	}
	json_decref(entries);
	return n;
}

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

	if (!x)
		return NULL;
	x->s3 = s3;
	if (!(x->store = strdup(prefix)) || !(x->runkey = strdup(runkey)) ||
	    !(x->index_key = index_key_of(prefix, runkey))) {
		ckpt_s3_listix_end(x);
		return NULL;
	}
	if (index_get(s3, x->index_key, &x->old, &x->had, x->etag)) {
		/* Unreadable now: used as none, and never replaced. */
		free(x->index_key);
		x->index_key = NULL;
	}
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

/* The summaries of the listed checkpoints the index did not give. */
struct prefetch {
	struct s3_listix *x;
	pthread_mutex_t mu;
	size_t next;
};

static void *
prefetch_main(void *arg)
{
	struct prefetch *p = arg;
	struct s3_listix *x = p->x;

	for (;;) {
		struct ix_ent *e = NULL;
		char *key, *text = NULL;
		size_t len = 0;

		pthread_mutex_lock(&p->mu);
		while (p->next < x->n && !e) {
			e = &x->v[p->next++];
			if (!e->manifest || !e->summary || e->text)
				e = NULL;
		}
		pthread_mutex_unlock(&p->mu);
		if (!e)
			return NULL;
		/* A failure is list.c's to meet (and report) on its read. */
		if (asprintf(&key, "%s%s/%s/" CKPT_SUMMARY_NAME, x->store,
		    x->runkey, e->name) < 0)
			continue;
		if (!ckpt_s3_get_mem(x->s3, key, 0, CKPT_S3_TO_END,
		    SUMMARY_KEEP, &text, &len, NULL, NULL) &&
		    !memchr(text, '\0', len)) {
			e->text = text;	/* this entry is this thread's */
			e->len = len;
			text = NULL;
		}
		free(text);
		free(key);
	}
}

static void
prefetch(struct s3_listix *x)
{
	struct prefetch p = { .x = x };
	pthread_t th[PREFETCH_THREADS];
	unsigned started = 0;
	size_t missing = 0;

	for (size_t i = 0; i < x->n; i++)
		missing += x->v[i].manifest && x->v[i].summary &&
		    !x->v[i].text;
	if (missing < PREFETCH_MIN || pthread_mutex_init(&p.mu, NULL))
		return;
	while (started < PREFETCH_THREADS && !pthread_create(&th[started],
	    NULL, prefetch_main, &p))
		started++;
	if (!started)
		(void)prefetch_main(&p);
	while (started)
		pthread_join(th[--started], NULL);
	pthread_mutex_destroy(&p.mu);
	for (size_t i = 0; i < x->n; i++)
		if (x->v[i].text && !x->v[i].from_index)
			x->learned++;
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
		const char *text;
		size_t len;

		if (!e->manifest || !e->summary || !(text = entry_summary(
		    json_object_get(x->old, e->name), e->m.etag, &len)))
			continue;
		if (!(e->text = malloc(len + 1)))
			continue;
		memcpy(e->text, text, len);
		e->text[len] = '\0';
		e->len = len;
		e->from_index = true;
		x->used++;
	}
	prefetch(x);
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

/* The index of what this listing saw, unless it changed since read. */
static void
write_index(struct s3_listix *x)
{
	json_t *entries = json_object();

	for (size_t i = 0; entries && i < x->n; i++) {
		const struct ix_ent *e = &x->v[i];

		if (e->manifest && e->text && *e->m.etag)
			json_object_set_new(entries, e->name, entry_new(
			    e->m.etag, e->text, e->len));
	}
	if (entries)
		(void)index_put(x->s3, x->index_key, entries, x->had,
		    x->etag);
	json_decref(entries);
}

void
ckpt_s3_listix_end(struct s3_listix *x)
{
	if (!x)
		return;
	/* Rewritten when it lacked what was read, or held more (gone,
	 * stale, damaged), or was no index at all. */
	if (x->listed && x->index_key && (x->learned + (x->old ?
	    json_object_size(x->old) - x->used : 0) >= INDEX_MIN_GAIN ||
	    (x->had && !x->old && x->learned)))
		write_index(x);
	for (size_t i = 0; i < x->n; i++) {
		free(x->v[i].name);
		free(x->v[i].text);
	}
	free(x->v);
	json_decref(x->old);
	free(x->store);
	free(x->runkey);
	free(x->index_key);
	free(x);
}

/* ---- commits and removals ------------------------------------------- */

static void
queue(struct s3_ixop **q, const char *runkey, const char *name,
    const char *etag, const char *summary, size_t len)
{
	struct s3_ixop *op = calloc(1, sizeof(*op));

	if (!op)
		return;		/* no memory: the next listing reads it */
	op->runkey = strdup(runkey);
	op->name = strdup(name);
	if (summary && (op->summary = malloc(len + 1))) {
		memcpy(op->summary, summary, len);
		op->summary[len] = '\0';
	}
	op->len = len;
	snprintf(op->etag, sizeof(op->etag), "%s", etag ? etag : "");
	if (!op->runkey || !op->name || (summary && !op->summary)) {
		free(op->runkey);
		free(op->name);
		free(op->summary);
		free(op);
		return;
	}
	/* In order: a later change of the same X wins. */
	while (*q)
		q = &(*q)->next;
	*q = op;
}

void
ckpt_s3_listix_queue_add(struct s3_ixop **q, const char *runkey,
    const char *name, const char *etag, const char *summary, size_t len)
{
	if (etag && *etag && summary && len <= SUMMARY_KEEP &&
	    !memchr(summary, '\0', len))
		queue(q, runkey, name, etag, summary, len);
	else
		queue(q, runkey, name, NULL, NULL, 0);	/* not kept */
}

void
ckpt_s3_listix_queue_drop(struct s3_ixop **q, const char *runkey,
    const char *name)
{
	queue(q, runkey, name, NULL, NULL, 0);
}

static void
op_free(struct s3_ixop *op)
{
	free(op->runkey);
	free(op->name);
	free(op->summary);
	free(op);
}

/* The changes of q for runkey, applied to entries; true if any did. */
static bool
apply_ops(json_t *entries, const struct s3_ixop *q, const char *runkey)
{
	bool changed = false;

	for (; q; q = q->next) {
		if (strcmp(q->runkey, runkey))
			continue;
		if (q->summary)
			changed |= !json_object_set_new(entries, q->name,
			    entry_new(q->etag, q->summary, q->len));
		else
			changed |= !json_object_del(entries, q->name);
	}
	return changed;
}

/* Waits a little longer after each lost race, at random. */
static void
backoff(unsigned attempt)
{
	long ms = (1L << (attempt < 6 ? attempt : 6)) +
	    (long)randombytes_uniform(4u << (attempt < 6 ? attempt : 6));
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

/* Read-modify-write of one run's index with the changes of q. */
static void
apply_run(struct ckpt_s3 *s3, const char *prefix, const struct s3_ixop *q,
    const char *runkey)
{
	char *key = index_key_of(prefix, runkey), etag[CKPT_S3_ETAG_MAX];
	json_t *entries;
	bool had;
	int rc = CKPT_ERR_EXISTS;

	for (unsigned a = 0; key && rc == CKPT_ERR_EXISTS &&
	    a < INDEX_ATTEMPTS; a++) {
		if (a)
			backoff(a);
		if (index_get(s3, key, &entries, &had, etag))
			break;
		/* Not an index (damaged, another version): what it held
		 * is as good as nothing, and it is replaced. */
		if (!entries && !(entries = json_object()))
			break;
		rc = apply_ops(entries, q, runkey) ? index_put(s3, key,
		    entries, had, etag) : CKPT_OK;
		json_decref(entries);
	}
	free(key);
}

void
ckpt_s3_listix_apply(struct ckpt_s3 *s3, const char *prefix,
    struct s3_ixop **q)
{
	struct s3_ixop *op, *done = NULL;

	/* One read-modify-write per run, in the order runs came. */
	while ((op = *q)) {
		bool first = true;

		for (const struct s3_ixop *p = done; p && first; p = p->next)
			first = strcmp(p->runkey, op->runkey) != 0;
		if (first)
			apply_run(s3, prefix, op, op->runkey);
		*q = op->next;
		op->next = done;
		done = op;
	}
	while ((op = done)) {
		done = op->next;
		op_free(op);
	}
}
