/* SPDX-License-Identifier: MIT */
/*
 * backend-s3.c - the S3 backend of the store seam (backend.h): a store
 * is s3://BUCKET/PREFIX and a key is the object PREFIX/key.  S3 has no
 * rename and no directories, so the store's guarantees are built from
 * what it has (see README "Remote stores" for the whole layout):
 *
 *   - A checkpoint is committed when runs/R/X/ckpt-manifest.json exists.
 *     commit_if_absent copies the staged objects server-side to their
 *     final keys and puts the manifest LAST with If-None-Match: *, so of
 *     two committers of one RUN@STEP exactly one wins.  A prefix
 *     runs/R/X (X not starting with '.') without its manifest is never
 *     listed nor stat'ed as a checkpoint: what a crash leaves there is
 *     invisible, and the next commit of that RUN@STEP clears it first.
 *   - trash and remove_tree remove the manifest first, then the rest, so
 *     a half-removed checkpoint never looks complete.
 *   - The lock is an object created with If-None-Match: * holding its
 *     owner record plus "lease SECONDS".  Its age is read on the
 *     service's clock (Last-Modified against the Date of the same
 *     answer), never on another host's clock; the holder renews it
 *     (If-Match on its ETag) before every write once a fifth of the
 *     lease has passed, and stops with CKPT_ERR_LOCKED when someone
 *     broke it meanwhile.  store.c breaks a lock whose lease ran out.
 *   - A save stages its files in a local spool (*local of stage_begin),
 *     which stage_sync uploads to the staging prefix before the lock is
 *     taken; commit then only copies inside the service.
 *
 * Conditional writes are required: the store is refused at creation on
 * a service that ignores If-None-Match (backend_s3_create probes it).
 */
#include "util/internal.h"

#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "store/backend.h"
#include "store/s3.h"
#include "store/s3listix.h"
#include "store/store.h"

#define FINAL_PTR	"ckpt-commit-target"	/* in a staging area */
#define SMALL_MAX	((size_t)64 * 1024)

/* The lease of the store lock; the holder renews it every fifth. */
#define LEASE_SECONDS	300

/* A file of the spool as it was uploaded (to upload it only once). */
struct s3_up {
	char *rel;
	uint64_t size, ino;
	int64_t mtime_ns;
};

/* A staging area begun by this process: its local spool. */
struct s3_stage {
	struct s3_stage *next;
	char *key;		/* runs/R/.tmp-NAME.RANDOM */
	char *local;		/* the spool directory */
	struct s3_up *ups;
	size_t nups;
	unsigned ntaken;	/* the user's files moved in, not given back */
};

struct s3_be {
	struct ckpt_s3 *s3;
	char *bucket;
	char *prefix;		/* "" or "p/q/" */
	char *location;		/* s3://BUCKET/PREFIX, for messages */
	/* The store lock while this handle holds it, and the thread that
	 * renews its lease (all under mu). */
	pthread_mutex_t mu;
	pthread_cond_t cv;
	pthread_t renewer;
	bool renewing, stop;
	bool holding, lost;
	unsigned lease;		/* seconds */
	char lock_etag[CKPT_S3_ETAG_MAX];
	char *lock_text;
	struct timespec renewed;
	struct s3_stage *stages;
	struct s3_listix *ix;	/* while list.c lists a run (s3listix.c) */
	struct s3_ixop *ixq;	/* index changes, applied at unlock */
};

/* ---- keys and names ------------------------------------------------ */

/* PREFIX/key ("" is the prefix itself, without its '/'). */
static char *
obj_key(const struct s3_be *b, const char *key)
{
	char *p;

	if (!*key) {
		size_t n = strlen(b->prefix);

		return strndup(b->prefix, n ? n - 1 : 0);
	}
	return asprintf(&p, "%s%s", b->prefix, key) < 0 ? NULL : p;
}

/* PREFIX/key/ (the root: PREFIX/, or "" for a bucket-wide store). */
static char *
obj_dir(const struct s3_be *b, const char *key)
{
	char *p;

	if (!*key)
		return strdup(b->prefix);
	return asprintf(&p, "%s%s/", b->prefix, key) < 0 ? NULL : p;
}

static int
key_error(const struct s3_be *b, int code, const char *key,
    const char *what, struct ckpt_error *err)
{
	char path[CKPT_ERROR_PATH_MAX];

	snprintf(path, sizeof(path), "%s%s%s", b->location, *key ? "/" : "",
	    key);
	return ckpt_error_set(err, code, path, -1, "%s", what);
}

/* A component of a store key or prefix that S3 could hold but the
 * store never makes: foreign, and never followed or listed. */
static bool
component_ok(const char *s, size_t n)
{
	return n && !(n == 1 && s[0] == '.') && !(n == 2 && s[0] == '.' &&
	    s[1] == '.');
}

int
ckpt_s3_location_parse(const char *location, char **bucket, char **prefix,
    struct ckpt_error *err)
{
	const char *p, *slash;
	size_t n;

	*bucket = *prefix = NULL;
	if (strncmp(location, "s3://", 5))
		return ckpt_error_set(err, CKPT_ERR_INVALID, location, -1,
		    "not an s3:// URL");
	p = location + 5;
	slash = strchr(p, '/');
	n = slash ? (size_t)(slash - p) : strlen(p);
	if (!n)
		return ckpt_error_set(err, CKPT_ERR_INVALID, location, -1,
		    "no bucket in the URL (s3://BUCKET/PREFIX)");
	if (!(*bucket = strndup(p, n)))
		return ckpt_error_nomem(err);
	p = slash ? slash + 1 : p + n;
	/* One trailing '/' is the same store. */
	n = strlen(p);
	if (n && p[n - 1] == '/')
		n--;
	for (size_t i = 0, start = 0; i <= n; i++) {
		if (i < n && p[i] != '/') {
			if ((unsigned char)p[i] < 0x20 || p[i] == 0x7f ||
			    p[i] == '\\')
				goto bad;
			continue;
		}
		if (n && !component_ok(p + start, i - start))
			goto bad;
		start = i + 1;
	}
	if (asprintf(prefix, "%.*s%s", (int)n, p, n ? "/" : "") < 0) {
		*prefix = NULL;
		free(*bucket);
		*bucket = NULL;
		return ckpt_error_nomem(err);
	}
	return CKPT_OK;
bad:
	free(*bucket);
	*bucket = NULL;
	return ckpt_error_set(err, CKPT_ERR_INVALID, location, -1,
	    "the prefix has an empty, '.' or '..' component or a control "
	    "character");
}

/* The service's clock in this host's terms: t - skew. */
static int64_t
local_time(const struct s3_be *b, int64_t service_time)
{
	int64_t skew = 0;

	if (!service_time)
		return 0;
	ckpt_s3_clock_skew(b->s3, &skew);
	return service_time - skew;
}

/* ---- open, close --------------------------------------------------- */

static void renewer_stop(struct s3_be *b);
static int spool_mark_moved(struct s3_stage *st, bool on,
    struct ckpt_error *err);

static void
stage_forget(struct s3_be *b, struct s3_stage *st, bool rm_spool)
{
	struct s3_stage **pp;

	for (pp = &b->stages; *pp; pp = &(*pp)->next)
		if (*pp == st) {
			*pp = st->next;
			break;
		}
	if (rm_spool && st->local) {
		ckpt_rm_rf(st->local);
		spool_mark_moved(st, false, NULL);
	}
	for (size_t i = 0; i < st->nups; i++)
		free(st->ups[i].rel);
	free(st->ups);
	free(st->key);
	free(st->local);
	free(st);
}

static void
s3_close(void *be)
{
	struct s3_be *b = be;

	if (!b)
		return;
	renewer_stop(b);
	/* A spool holding files taken from the user (a --move that could
	 * not give them back) stays; copies and links go. */
	while (b->stages)
		stage_forget(b, b->stages, !b->stages->ntaken);
	ckpt_s3_listix_end(b->ix);
	ckpt_s3_listix_apply(b->s3, b->prefix, &b->ixq);
	ckpt_s3_free(b->s3);
	free(b->bucket);
	free(b->prefix);
	free(b->location);
	free(b->lock_text);
	pthread_cond_destroy(&b->cv);
	pthread_mutex_destroy(&b->mu);
	free(b);
}

static int
s3_open(const char *location, void **be, struct ckpt_error *err)
{
	struct ckpt_s3_config cfg;
	struct s3_be *b = calloc(1, sizeof(*b));
	pthread_condattr_t ca;
	int rc;

	if (!b)
		return ckpt_error_nomem(err);
	/* The renewer's timed waits run on the monotonic clock. */
	if (pthread_condattr_init(&ca)) {
		free(b);
		return ckpt_error_nomem(err);
	}
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	rc = pthread_cond_init(&b->cv, &ca);
	pthread_condattr_destroy(&ca);
	if (rc || pthread_mutex_init(&b->mu, NULL)) {
		if (!rc)
			pthread_cond_destroy(&b->cv);
		free(b);
		return ckpt_error_nomem(err);
	}
	b->lease = LEASE_SECONDS;
	if ((rc = ckpt_s3_location_parse(location, &b->bucket, &b->prefix,
	    err))) {
		s3_close(b);
		return rc;
	}
	if (asprintf(&b->location, "s3://%s%s%.*s", b->bucket,
	    *b->prefix ? "/" : "", (int)(strlen(b->prefix) ?
	    strlen(b->prefix) - 1 : 0), b->prefix) < 0) {
		b->location = NULL;
		s3_close(b);
		return ckpt_error_nomem(err);
	}
	ckpt_s3_config_init(&cfg);
	rc = ckpt_s3_config_load(&cfg, err);
	if (!rc)
		rc = ckpt_s3_open(&cfg, b->bucket, &b->s3, err);
	ckpt_s3_config_release(&cfg);
	if (rc) {
		s3_close(b);
		return rc;
	}
	*be = b;
	return CKPT_OK;
}

/*
 * As open, and the service must honour conditional creates: the lock and
 * the commit point rest on them.  A probe object is created twice with
 * If-None-Match: * (the second must be refused) and removed.
 */
static int
s3_create(const char *location, void **be, struct ckpt_error *err)
{
	struct s3_be *b;
	char name[64], *key;
	unsigned char rnd[8];
	int rc, rc2;

	if ((rc = s3_open(location, be, err)))
		return rc;
	b = *be;
	randombytes_buf(rnd, sizeof(rnd));
	snprintf(name, sizeof(name), ".ckpt/probe.%02x%02x%02x%02x%02x%02x"
	    "%02x%02x", rnd[0], rnd[1], rnd[2], rnd[3], rnd[4], rnd[5], rnd[6],
	    rnd[7]);
	if (!(key = obj_key(b, name))) {
		rc = ckpt_error_nomem(err);
		goto out;
	}
	rc = ckpt_s3_put(b->s3, key, "probe\n", 6, CKPT_S3_IF_ABSENT, NULL,
	    err);
	if (!rc) {
		struct ckpt_error e2;

		ckpt_error_clear(&e2);
		rc2 = ckpt_s3_put(b->s3, key, "probe2\n", 7, CKPT_S3_IF_ABSENT,
		    NULL, &e2);
		ckpt_s3_delete(b->s3, key, NULL);
		if (rc2 == CKPT_OK)
			rc = key_error(b, CKPT_ERR_UNSUPPORTED, "",
			    "the service "
			    "ignores conditional writes (If-None-Match: *): "
			    "the store lock and the commit of a checkpoint "
			    "cannot be made safe on it, so no store is created",
			    err);
		else if (rc2 != CKPT_ERR_EXISTS) {
			if (err)
				*err = e2;
			rc = rc2;
		}
	}
	free(key);
out:
	if (rc) {
		s3_close(b);
		*be = NULL;
	}
	return rc;
}

/* ---- the lease of the store lock ----------------------------------- */

static long
since(const struct timespec *t0)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (long)(now.tv_sec - t0->tv_sec);
}

/*
 * Renews the lock's lease (b->mu held): a PUT of the same record
 * If-Match its ETag, which moves Last-Modified on the service's clock.
 * CKPT_ERR_EXISTS: the lock is no longer ours (broken after its lease
 * ran out), and every further write of this handle stops.
 */
static int
renew_locked(struct s3_be *b, struct ckpt_error *err)
{
	struct ckpt_s3_object o;
	char *key;
	int rc;

	if (!(key = obj_key(b, CKPT_STORE_LOCK)))
		return ckpt_error_nomem(err);
	rc = ckpt_s3_put_if_match(b->s3, key, b->lock_text,
	    strlen(b->lock_text), b->lock_etag, &o, err);
	free(key);
	if (rc == CKPT_ERR_EXISTS) {
		b->lost = true;
		b->holding = false;
	} else if (!rc) {
		memcpy(b->lock_etag, o.etag, sizeof(b->lock_etag));
		clock_gettime(CLOCK_MONOTONIC, &b->renewed);
	}
	return rc;
}

/*
 * Before every write: stop if the lock was taken over, and renew the
 * lease here too once a fifth of it passed (should the renewing thread
 * be late or missing).
 */
static int
renew(struct s3_be *b, struct ckpt_error *err)
{
	int rc = CKPT_OK;

	pthread_mutex_lock(&b->mu);
	if (!b->lost && b->holding && since(&b->renewed) >= b->lease / 5)
		rc = renew_locked(b, err);
	if (b->lost)
		rc = key_error(b, CKPT_ERR_LOCKED, CKPT_STORE_LOCK,
		    "the store lock was taken over by another process "
		    "(its lease ran out): stopped before writing more", err);
	pthread_mutex_unlock(&b->mu);
	return rc;
}

/*
 * The renewing thread: while this handle holds the store lock, the
 * lease is renewed every fifth of it, whatever the handle is doing (one
 * long server-side copy, hashing, waiting for the service), so that a
 * live holder's lease never runs out; a failed renewal (the service
 * unreachable for a while) is tried again every second.  Only a holder
 * that stopped (killed, frozen, cut off) lets it run out.
 */
static void *
renewer_main(void *arg)
{
	struct s3_be *b = arg;
	struct timespec next;

	pthread_mutex_lock(&b->mu);
	next = b->renewed;
	next.tv_sec += b->lease / 5 ? b->lease / 5 : 1;
	while (!b->stop && b->holding) {
		struct ckpt_error ignored;

		if (pthread_cond_timedwait(&b->cv, &b->mu, &next) != ETIMEDOUT)
			continue;
		if (b->stop || !b->holding)
			break;
		ckpt_error_clear(&ignored);
		if (renew_locked(b, &ignored) == CKPT_OK) {
			next = b->renewed;
			next.tv_sec += b->lease / 5 ? b->lease / 5 : 1;
		} else {
			clock_gettime(CLOCK_MONOTONIC, &next);
			next.tv_sec += 1;
		}
	}
	pthread_mutex_unlock(&b->mu);
	return NULL;
}

static void
renewer_stop(struct s3_be *b)
{
	bool was;

	pthread_mutex_lock(&b->mu);
	was = b->renewing;
	b->stop = true;
	b->renewing = false;
	pthread_cond_broadcast(&b->cv);
	pthread_mutex_unlock(&b->mu);
	if (was)
		pthread_join(b->renewer, NULL);
}

void
ckpt_store_s3_set_lease(struct ckpt_store *s, unsigned seconds)
{
	struct s3_be *b;

	if (!s || s->ops != &ckpt_backend_s3 || !seconds)
		return;
	b = s->be;
	b->lease = seconds;
}

/* ---- reads ---------------------------------------------------------- */

static int
s3_read(void *be, const char *key, size_t max, char **data, size_t *len,
    struct ckpt_error *err)
{
	struct s3_be *b = be;
	char *k = obj_key(b, key);
	size_t n = 0;
	int rc;

	*data = NULL;
	if (!k)
		return ckpt_error_nomem(err);
	/* What the listing of the run being listed said (s3listix.c). */
	rc = ckpt_s3_listix_read(b->ix, key, data, &n);
	if (!rc && n > max) {
		free(*data);
		*data = NULL;
		rc = 1;
	}
	if (rc == CKPT_ERR_NOTFOUND) {
		free(k);
		return key_error(b, rc, key, "no such object", err);
	}
	if (rc == CKPT_OK) {
		free(k);
		if (len)
			*len = n;
		return rc;
	}
	rc = *k ? ckpt_s3_get_mem(b->s3, k, 0, CKPT_S3_TO_END, max, data, &n,
	    NULL, err) : key_error(b, CKPT_ERR_FORMAT, key, "not a regular "
	    "file", err);
	free(k);
	if (!rc)
		ckpt_s3_listix_learn(b->ix, key, *data, n);
	if (!rc && len)
		*len = n;
	return rc;
}

/* Everything under a prefix, recursively: the objects, with the newest
 * Last-Modified and their total size. */
struct walk {
	char **keys;
	uint64_t *sizes;
	size_t n, cap;
	int64_t newest;
	uint64_t bytes;
	bool first_only;
};

static int
walk_one(void *arg, const char *key, const struct ckpt_s3_object *obj)
{
	struct walk *w = arg;

	if (!obj)
		return 0;
	if (obj->mtime > w->newest)
		w->newest = obj->mtime;
	w->bytes += obj->size;
	if (w->n == w->cap) {
		size_t cap = w->cap ? w->cap * 2 : 16;
		char **v = realloc(w->keys, cap * sizeof(*v));
		uint64_t *z;

		if (!v)
			return CKPT_ERR_NOMEM;
		w->keys = v;
		if (!(z = realloc(w->sizes, cap * sizeof(*z))))
			return CKPT_ERR_NOMEM;
		w->sizes = z;
		w->cap = cap;
	}
	if (!(w->keys[w->n] = strdup(key)))
		return CKPT_ERR_NOMEM;
	w->sizes[w->n] = obj->size;
	w->n++;
	return w->first_only ? 1 : 0;
}

static void
walk_release(struct walk *w)
{
	for (size_t i = 0; i < w->n; i++)
		free(w->keys[i]);
	free(w->keys);
	free(w->sizes);
	memset(w, 0, sizeof(*w));
}

/* Lists every object under key/ into *w (fail closed). */
static int
walk_prefix(struct s3_be *b, const char *key, bool first_only,
    struct walk *w, struct ckpt_error *err)
{
	char *dir = obj_dir(b, key);
	int rc;

	memset(w, 0, sizeof(*w));
	w->first_only = first_only;
	if (!dir)
		return ckpt_error_nomem(err);
	rc = first_only ? ckpt_s3_list_first(b->s3, dir, walk_one, w, err) :
	    ckpt_s3_list(b->s3, dir, NULL, walk_one, w, err);
	free(dir);
	if (rc == 1)
		rc = CKPT_OK;
	else if (rc == CKPT_ERR_NOMEM)
		rc = ckpt_error_nomem(err);
	if (rc)
		walk_release(w);
	return rc;
}

/* runs/R/X with X not starting with '.': a checkpoint's prefix, which
 * exists only with its manifest. */
static bool
is_checkpoint_key(const char *key)
{
	const char *run, *x;

	if (strncmp(key, CKPT_STORE_RUNS "/", 5))
		return false;
	run = key + 5;
	if (!(x = strchr(run, '/')) || x == run)
		return false;
	x++;
	return *x && *x != '.' && !strchr(x, '/');
}

/* runs/R: its children are listed only when committed. */
static bool
is_run_key(const char *key)
{
	const char *run = key + 5;

	return !strncmp(key, CKPT_STORE_RUNS "/", 5) && *run &&
	    !strchr(run, '/');
}

/*
 * The listing index of the run of checkpoint key runs/R/X (s3listix.c)
 * gets X with that manifest ETag and summary, or loses it (summary
 * NULL); applied when the store lock is released.
 */
static void
index_change(struct s3_be *b, const char *key, const char *etag,
    const char *summary, size_t len)
{
	const char *x = strrchr(key, '/');
	char *runkey;

	if (!is_checkpoint_key(key) || !(runkey = strndup(key,
	    (size_t)(x - key))))
		return;
	if (summary)
		ckpt_s3_listix_queue_add(&b->ixq, runkey, x + 1, etag,
		    summary, len);
	else
		ckpt_s3_listix_queue_drop(&b->ixq, runkey, x + 1);
	free(runkey);
}

static int
s3_stat(void *be, const char *key, struct ckpt_be_info *out,
    struct ckpt_error *err)
{
	struct s3_be *b = be;
	struct ckpt_s3_object o;
	struct ckpt_error le;
	struct walk w;
	char *k, *m = NULL;
	const char *base;
	bool whole;
	int rc;

	memset(out, 0, sizeof(*out));
	if (!*key) {
		out->type = CKPT_BE_DIR;
		return CKPT_OK;
	}
	/* A checkpoint of the run being listed, as the listing saw it. */
	if (!ckpt_s3_listix_stat(b->ix, key, out)) {
		out->mtime = local_time(b, out->mtime);
		return CKPT_OK;
	}
	if (!(k = obj_key(b, key)))
		return ckpt_error_nomem(err);
	ckpt_error_clear(&le);
	rc = ckpt_s3_head(b->s3, k, &o, &le);
	free(k);
	if (!rc) {
		out->type = CKPT_BE_FILE;
		out->size = o.size;
		out->mtime = local_time(b, o.mtime);
		return CKPT_OK;
	}
	if (rc != CKPT_ERR_NOTFOUND) {
		if (err)
			*err = le;
		return rc;
	}
	if (is_checkpoint_key(key)) {
		/* A checkpoint is there when its manifest is. */
		if (asprintf(&m, "%s/%s", key, CKPT_MANIFEST_NAME) < 0 ||
		    !(k = obj_key(b, m))) {
			free(m);
			return ckpt_error_nomem(err);
		}
		free(m);
		rc = ckpt_s3_head(b->s3, k, &o, &le);
		free(k);
		if (rc == CKPT_ERR_NOTFOUND)
			return key_error(b, rc, key, "no such checkpoint "
			    "(no committed manifest)", err);
		if (rc) {
			if (err)
				*err = le;
			return rc;
		}
		out->type = CKPT_BE_DIR;
		out->mtime = local_time(b, o.mtime);
		return CKPT_OK;
	}
	/* The age of a staging area or a trash entry is its newest object
	 * (gc's threshold); any other prefix needs only one to exist (a
	 * stat of "runs" must not list the whole store). */
	base = strrchr(key, '/');
	if (base && !strcmp(base + 1, CKPT_MANIFEST_NAME))
		/* A manifest is an object or nothing: no prefix to walk
		 * (resolving a missing RUN@STEP costs one HEAD). */
		return key_error(b, CKPT_ERR_NOTFOUND, key, "no such object",
		    err);
	whole = (base ? base[1] : key[0]) == '.' ||
	    !strncmp(key, CKPT_STORE_TRASH "/", strlen(CKPT_STORE_TRASH) + 1);
	if ((rc = walk_prefix(b, key, !whole, &w, err)))
		return rc;
	if (!w.n) {
		walk_release(&w);
		return key_error(b, CKPT_ERR_NOTFOUND, key, "no such key or "
		    "prefix", err);
	}
	out->type = CKPT_BE_DIR;
	out->mtime = local_time(b, w.newest);
	walk_release(&w);
	return CKPT_OK;
}

/* ---- listing -------------------------------------------------------- */

struct child {
	char *name;
	struct ckpt_be_info info;
};

struct listing {
	struct s3_be *b;
	const char *prefix;	/* the store key listed */
	size_t skip;		/* strlen of the listed prefix */
	bool run;		/* runs/R: checkpoints only when committed */
	struct child *v;
	size_t n, cap;
	/* runs/R: the child being gathered and what it holds */
	char *cur;
	bool cur_manifest;
	int64_t cur_mtime;
};

static int
add_child(struct listing *l, const char *name, size_t len,
    enum ckpt_be_type type, uint64_t size, int64_t mtime)
{
	struct child *c;

	if (!component_ok(name, len) || memchr(name, '/', len))
		return 0;	/* foreign: "a//b", ".", ".." */
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 32;
		struct child *v = realloc(l->v, cap * sizeof(*v));

		if (!v)
			return CKPT_ERR_NOMEM;
		l->v = v;
		l->cap = cap;
	}
	c = &l->v[l->n];
	memset(c, 0, sizeof(*c));
	if (!(c->name = strndup(name, len)))
		return CKPT_ERR_NOMEM;
	c->info.type = type;
	c->info.size = size;
	c->info.mtime = local_time(l->b, mtime);
	l->n++;
	return 0;
}

/* runs/R: the child gathered so far goes out if it is committed (or a
 * staging area: '.'). */
static int
flush_child(struct listing *l)
{
	int rc = 0;

	if (l->cur && (l->cur[0] == '.' || l->cur_manifest))
		rc = add_child(l, l->cur, strlen(l->cur), CKPT_BE_DIR, 0,
		    l->cur_mtime);
	free(l->cur);
	l->cur = NULL;
	l->cur_manifest = false;
	l->cur_mtime = 0;
	return rc;
}

static int
list_one(void *arg, const char *key, const struct ckpt_s3_object *obj)
{
	struct listing *l = arg;
	const char *rel, *slash;
	size_t n;
	int rc;

	if (strlen(key) < l->skip)
		return 0;	/* not under the prefix: not the store's */
	rel = key + l->skip;
	n = strlen(rel);
	if (!obj) {		/* a common prefix "rel/" */
		return n > 1 ? add_child(l, rel, n - 1, CKPT_BE_DIR, 0, 0) : 0;
	}
	slash = strchr(rel, '/');
	if (l->run)
		ckpt_s3_listix_note(l->b->ix, l->prefix, rel, obj);
	if (!l->run || !slash)
		return n ? add_child(l, rel, n, CKPT_BE_FILE, obj->size,
		    obj->mtime) : 0;
	/* runs/R, recursively: objects of one child come together. */
	if (!l->cur || strncmp(l->cur, rel, (size_t)(slash - rel)) ||
	    l->cur[slash - rel]) {
		if ((rc = flush_child(l)))
			return rc;
		if (!(l->cur = strndup(rel, (size_t)(slash - rel))))
			return CKPT_ERR_NOMEM;
	}
	if (!strcmp(slash + 1, CKPT_MANIFEST_NAME)) {
		l->cur_manifest = true;
		l->cur_mtime = obj->mtime;
	} else if (l->cur[0] == '.' && obj->mtime > l->cur_mtime) {
		l->cur_mtime = obj->mtime;
	}
	return 0;
}

static int
s3_list(void *be, const char *prefix, ckpt_be_list_fn fn, void *arg,
    struct ckpt_error *err)
{
	struct s3_be *b = be;
	struct listing l = { .b = b, .prefix = prefix,
	    .run = is_run_key(prefix) };
	char *dir = obj_dir(b, prefix);
	int rc;

	if (!dir)
		return ckpt_error_nomem(err);
	l.skip = strlen(dir);
	rc = ckpt_s3_list(b->s3, *dir ? dir : NULL, l.run ? NULL : "/",
	    list_one, &l, err);
	if (!rc)
		rc = flush_child(&l);
	if (!rc && l.run)
		ckpt_s3_listix_listed(b->ix, prefix);
	free(l.cur);
	free(dir);
	if (rc == CKPT_ERR_NOMEM)
		rc = ckpt_error_nomem(err);
	if (!rc && !l.n && *prefix) {
		/* S3 has no empty prefixes; a run's may hold only
		 * uncommitted objects, which is an empty run. */
		struct walk w;

		if (l.run && !(rc = walk_prefix(b, prefix, true, &w, err))) {
			rc = w.n ? CKPT_OK : key_error(b, CKPT_ERR_NOTFOUND,
			    prefix, "no such prefix", err);
			walk_release(&w);
		} else if (!rc) {
			rc = key_error(b, CKPT_ERR_NOTFOUND, prefix, "no such "
			    "prefix", err);
		}
	}
	for (size_t i = 0; i < l.n; i++) {
		if (!rc)
			rc = fn(arg, l.v[i].name, &l.v[i].info);
		free(l.v[i].name);
	}
	free(l.v);
	return rc;
}

void
ckpt_store_list_index(const struct ckpt_store *s, const char *runkey)
{
	struct s3_be *b;

	if (!s || s->ops != &ckpt_backend_s3)
		return;
	b = s->be;
	ckpt_s3_listix_end(b->ix);
	b->ix = runkey ? ckpt_s3_listix_begin(b->s3, b->prefix, runkey) : NULL;
}

/* ---- writes --------------------------------------------------------- */

static int
s3_put(void *be, const char *key, const void *data, size_t len,
    unsigned int flags, struct ckpt_error *err)
{
	struct s3_be *b = be;
	char *k;
	int rc;

	if ((rc = renew(b, err)))
		return rc;
	if (!(k = obj_key(b, key)))
		return ckpt_error_nomem(err);
	rc = ckpt_s3_put(b->s3, k, data, len, flags & CKPT_BE_IF_ABSENT ?
	    CKPT_S3_IF_ABSENT : 0, NULL, err);
	free(k);
	return rc;
}

static int
s3_remove(void *be, const char *key, struct ckpt_error *err)
{
	struct s3_be *b = be;
	char *k;
	int rc;

	if ((rc = renew(b, err)))
		return rc;
	if (!(k = obj_key(b, key)))
		return ckpt_error_nomem(err);
	rc = ckpt_s3_delete(b->s3, k, err);
	free(k);
	return rc;
}

/* ---- the lock ------------------------------------------------------- */

/* What the lock object holds: the owner record and its lease. */
static char *
lease_text(const char *content, unsigned lease)
{
	char *t;

	return asprintf(&t, "%slease %u\n", content, lease) < 0 ? NULL : t;
}

static int
s3_lock(void *be, const char *key, const char *content,
    const char *fallback, bool *used_fallback, struct ckpt_error *err)
{
	struct s3_be *b = be;
	struct ckpt_s3_object o;
	char *k = obj_key(b, key), *text = lease_text(content, b->lease);
	int rc;

	(void)fallback;		/* a service is never "full" for 1 KiB */
	*used_fallback = false;
	if (!k || !text) {
		free(k);
		free(text);
		return ckpt_error_nomem(err);
	}
	rc = ckpt_s3_put(b->s3, k, text, strlen(text), CKPT_S3_IF_ABSENT, &o,
	    err);
	free(k);
	if (!rc && !strcmp(key, CKPT_STORE_LOCK)) {
		renewer_stop(b);
		pthread_mutex_lock(&b->mu);
		free(b->lock_text);
		b->lock_text = text;
		text = NULL;
		memcpy(b->lock_etag, o.etag, sizeof(b->lock_etag));
		b->holding = true;
		b->lost = false;
		b->stop = false;
		clock_gettime(CLOCK_MONOTONIC, &b->renewed);
		/* Without the thread, writes still renew (renew()). */
		b->renewing = !pthread_create(&b->renewer, NULL, renewer_main,
		    b);
		pthread_mutex_unlock(&b->mu);
	}
	free(text);
	return rc;
}

static int
s3_lock_read(void *be, const char *key, char **text, int64_t *mtime,
    struct ckpt_error *err)
{
	struct s3_be *b = be;
	struct ckpt_s3_object o;
	char *k = obj_key(b, key);
	size_t n;
	int rc;

	*text = NULL;
	if (!k)
		return ckpt_error_nomem(err);
	rc = ckpt_s3_get_mem(b->s3, k, 0, CKPT_S3_TO_END, SMALL_MAX, text, &n,
	    &o, err);
	free(k);
	/* The age on the service's clock: Last-Modified against the Date
	 * of the same answer, given in this host's terms. */
	if (!rc && mtime)
		*mtime = local_time(b, o.mtime);
	return rc;
}

/* text is expected, or expected with the lease this backend adds. */
static bool
lock_text_is(const char *text, const char *expected)
{
	size_t n = strlen(expected);
	const char *nl;

	if (!strcmp(text, expected))
		return true;
	/* An object's text: untrusted, perhaps without a final newline. */
	return !strncmp(text, expected, n) && !strncmp(text + n, "lease ", 6) &&
	    (nl = strchr(text + n, '\n')) && !nl[1];
}

static int
s3_unlock(void *be, const char *key, const char *expected,
    struct ckpt_error *err)
{
	struct s3_be *b = be;
	char *text = NULL, *k;
	int rc;

	if (!strcmp(key, CKPT_STORE_LOCK))
		renewer_stop(b);
	if ((rc = s3_lock_read(be, key, &text, NULL, err)))
		return rc;
	if (!lock_text_is(text, expected)) {
		free(text);
		return key_error(b, CKPT_ERR_EXISTS, key, "the lock is someone "
		    "else's now", err);
	}
	free(text);
	if (!(k = obj_key(b, key)))
		return ckpt_error_nomem(err);
	/* S3 has no conditional DELETE on RGW: between the read and this
	 * the lock could only change hands if its lease ran out. */
	rc = ckpt_s3_delete(b->s3, k, err);
	free(k);
	if (!strcmp(key, CKPT_STORE_LOCK)) {
		pthread_mutex_lock(&b->mu);
		b->holding = false;
		pthread_mutex_unlock(&b->mu);
		/* What the commits and removals under it changed. */
		ckpt_s3_listix_apply(b->s3, b->prefix, &b->ixq);
	}
	return rc;
}

/* ---- removing ------------------------------------------------------- */

/* Deletes the objects of w, those ending in /ckpt-manifest.json first. */
static int
delete_all(struct s3_be *b, struct walk *w, struct ckpt_error *err)
{
	int rc = CKPT_OK;

	for (int pass = 0; pass < 2 && !rc; pass++)
		for (size_t i = 0; i < w->n && !rc; i++) {
			const char *base = strrchr(w->keys[i], '/');
			bool m = !strcmp(base ? base + 1 : w->keys[i],
			    CKPT_MANIFEST_NAME);

			if (m == !pass && (rc = renew(b, err)) == CKPT_OK)
				rc = ckpt_s3_delete(b->s3, w->keys[i], err);
		}
	return rc;
}

static int
s3_remove_tree(void *be, const char *key, struct ckpt_error *err)
{
	struct s3_be *b = be;
	struct walk w;
	char *k;
	int rc;

	if ((rc = renew(b, err)))
		return rc;
	index_change(b, key, NULL, NULL, 0);
	if ((rc = walk_prefix(b, key, false, &w, err)))
		return rc;
	rc = delete_all(b, &w, err);
	walk_release(&w);
	if (!rc && *key) {
		if (!(k = obj_key(b, key)))
			return ckpt_error_nomem(err);
		rc = ckpt_s3_delete(b->s3, k, err);
		free(k);
	}
	return rc;
}

/*
 * Moves every object under from/ to to/ (server-side copies, then
 * deletes), the manifest removed first so that what is left behind is
 * never complete.
 */
static int
move_tree(struct s3_be *b, const char *from, const char *to,
    struct ckpt_error *err)
{
	char *src_dir = obj_dir(b, from), *dst_dir = obj_dir(b, to), *m, *dst;
	struct walk w;
	size_t skip;
	int rc;

	if (!src_dir || !dst_dir) {
		free(src_dir);
		free(dst_dir);
		return ckpt_error_nomem(err);
	}
	skip = strlen(src_dir);
	if ((rc = walk_prefix(b, from, false, &w, err)))
		goto out;
	if (!w.n) {
		rc = key_error(b, CKPT_ERR_NOTFOUND, from, "no such checkpoint "
		    "or staging area", err);
		goto out;
	}
	if (asprintf(&m, "%s%s", src_dir, CKPT_MANIFEST_NAME) < 0) {
		rc = ckpt_error_nomem(err);
		goto out;
	}
	/* The manifest goes first: it was the commit point; the copy in
	 * the trash only reports what was there. */
	for (size_t i = 0; i < w.n && !rc; i++)
		if (!strcmp(w.keys[i], m)) {
			if (asprintf(&dst, "%s%s", dst_dir,
			    CKPT_MANIFEST_NAME) < 0) {
				rc = ckpt_error_nomem(err);
				break;
			}
			rc = ckpt_s3_copy_sized(b->s3, m, w.sizes[i], dst,
			    err);
			free(dst);
			if (!rc)
				rc = ckpt_s3_delete(b->s3, m, err);
		}
	for (size_t i = 0; i < w.n && !rc; i++) {
		if (!strcmp(w.keys[i], m))
			continue;
		if ((rc = renew(b, err)))
			break;
		if (asprintf(&dst, "%s%s", dst_dir, w.keys[i] + skip) < 0) {
			rc = ckpt_error_nomem(err);
			break;
		}
		rc = ckpt_s3_copy_sized(b->s3, w.keys[i], w.sizes[i], dst, err);
		free(dst);
		if (!rc)
			rc = ckpt_s3_delete(b->s3, w.keys[i], err);
	}
	free(m);
out:
	walk_release(&w);
	free(src_dir);
	free(dst_dir);
	return rc;
}

static int manifest_exists(struct s3_be *b, const char *final, bool *yes,
    struct ckpt_error *err);

struct abort_walk {
	struct s3_be *b;
	struct ckpt_error *err;
};

static int
abort_one(void *arg, const struct ckpt_s3_upload *u)
{
	struct abort_walk *w = arg;

	return ckpt_s3_mpu_abort(w->b->s3, u->key, u->upload_id, w->err);
}

/*
 * Aborts the unfinished multipart uploads under key/: the multipart
 * copies of a commit that died there (under the store lock no other
 * commit of key runs).
 */
static int
abort_uploads(struct s3_be *b, const char *key, struct ckpt_error *err)
{
	struct abort_walk w = { b, err };
	char *dir = obj_dir(b, key);
	int rc;

	if (!dir)
		return ckpt_error_nomem(err);
	rc = ckpt_s3_list_uploads(b->s3, dir, abort_one, &w, err);
	free(dir);
	return rc;
}

/*
 * Objects at final without a manifest are what a commit that died left
 * (or an interrupted prune): invisible.  Removed under the store lock,
 * where no commit of final can run.
 */
static int
clear_leftovers(struct s3_be *b, const char *final, struct ckpt_error *err)
{
	struct walk w;
	bool exists;
	int rc;

	if ((rc = manifest_exists(b, final, &exists, err)) || exists)
		return rc;
	if ((rc = walk_prefix(b, final, false, &w, err)))
		return rc;
	rc = delete_all(b, &w, err);
	walk_release(&w);
	if (!rc)
		rc = abort_uploads(b, final, err);
	return rc;
}

/*
 * A staging area whose commit began names its target (FINAL_PTR): when
 * gc takes the area (under the lock), what the dead commit copied there
 * goes too, unless that commit had finished.
 */
static int
clear_commit_target(struct s3_be *b, const char *stage, struct ckpt_error *err)
{
	char *ptr, *final = NULL;
	int rc;

	if (asprintf(&ptr, "%s/%s", stage, FINAL_PTR) < 0)
		return ckpt_error_nomem(err);
	rc = s3_read(b, ptr, 4096, &final, NULL, err);
	free(ptr);
	if (rc == CKPT_ERR_NOTFOUND) {
		if (err)
			ckpt_error_clear(err);
		return CKPT_OK;
	}
	if (!rc && !is_checkpoint_key(final))
		rc = key_error(b, CKPT_ERR_FORMAT, stage, "the commit target "
		    "it names is not a checkpoint of the store", err);
	if (!rc)
		rc = clear_leftovers(b, final, err);
	free(final);
	return rc;
}

static int
s3_trash(void *be, const char *key, const char *name,
    struct ckpt_error *err)
{
	struct s3_be *b = be;
	const char *base = strrchr(key, '/');
	struct walk w;
	char *dst;
	int rc;

	if ((rc = renew(b, err)))
		return rc;
	if (base && !strncmp(base + 1, ".tmp-", 5) &&
	    (rc = clear_commit_target(b, key, err)))
		return rc;
	if (!component_ok(name, strlen(name)) || strchr(name, '/'))
		return key_error(b, CKPT_ERR_INVALID, name, "not a trash name",
		    err);
	index_change(b, key, NULL, NULL, 0);
	if (asprintf(&dst, "%s/%s", CKPT_STORE_TRASH, name) < 0)
		return ckpt_error_nomem(err);
	/* A fresh name: nothing of another removal may be mixed in. */
	if (!(rc = walk_prefix(b, dst, true, &w, err))) {
		if (w.n)
			rc = key_error(b, CKPT_ERR_EXISTS, dst, "exists "
			    "already", err);
		walk_release(&w);
	}
	if (!rc)
		rc = move_tree(b, key, dst, err);
	free(dst);
	return rc;
}

static int
s3_flush(void *be, const char *prefix, struct ckpt_error *err)
{
	/* Every call is durable when the service answers. */
	(void)be;
	(void)prefix;
	(void)err;
	return CKPT_OK;
}

static uint64_t
s3_usage(void *be, const char *key)
{
	struct s3_be *b = be;
	struct ckpt_be_info info;
	struct walk w;
	uint64_t n;

	if (!s3_stat(be, key, &info, NULL) && info.type == CKPT_BE_FILE)
		return info.size;
	if (walk_prefix(b, key, false, &w, NULL))
		return 0;
	n = w.bytes;
	walk_release(&w);
	return n;
}

static int
s3_mkprefix(void *be, const char *key, bool *made, struct ckpt_error *err)
{
	/* Prefixes are implicit in S3. */
	(void)be;
	(void)key;
	(void)err;
	if (made)
		*made = false;
	return CKPT_OK;
}

static int
s3_rmprefix(void *be, const char *key, struct ckpt_error *err)
{
	struct s3_be *b = be;
	struct walk w;
	int rc;

	if ((rc = walk_prefix(b, key, true, &w, err)))
		return rc;
	rc = w.n ? key_error(b, CKPT_ERR_EXISTS, key, "not empty", err) :
	    CKPT_OK;
	walk_release(&w);
	return rc;
}

/* ---- save's staging: a local spool, uploaded before the commit ------ */

static struct s3_stage *
stage_find(const struct s3_be *b, const char *stage)
{
	for (struct s3_stage *st = b->stages; st; st = st->next)
		if (!strcmp(st->key, stage))
			return st;
	return NULL;
}

/*
 * The upload spool of a save: $TMPDIR/ckpt-s3-spool.PID.BOOT.RANDOM, a
 * name that says whose it is, so that a spool left by a killed save is
 * recognised and removed by the next save or gc on this host
 * (spool_sweep).  SPOOL.moved marks a spool holding files a --move save
 * took from the user: such a spool is never swept (gc --restore, or the
 * user, takes them back).
 */
#define SPOOL_PREFIX	"ckpt-s3-spool."
#define SPOOL_MOVED	".moved"

static const char *
spool_root(void)
{
	const char *tmp = getenv("TMPDIR");

	return tmp && *tmp ? tmp : "/tmp";
}

/* The first 8 characters of the boot id, or "-" when unknown. */
static void
boot_tag(char out[9])
{
	const char *id = ckpt_boot_id();
	size_t n = 0;

	for (; id && id[n] && n < 8; n++)
		out[n] = (id[n] >= '0' && id[n] <= '9') ||
		    (id[n] >= 'a' && id[n] <= 'f') ? id[n] : 'x';
	if (!n)
		out[n++] = '-';
	out[n] = '\0';
}

static int
spool_dir(char **out, struct ckpt_error *err)
{
	char *t, boot[9];

	boot_tag(boot);
	if (asprintf(&t, "%s/" SPOOL_PREFIX "%ld.%s.XXXXXX", spool_root(),
	    (long)getpid(), boot) < 0)
		return ckpt_error_nomem(err);
	if (!mkdtemp(t)) {
		int rc = ckpt_error_errno(err, t, "cannot create the upload "
		    "spool");

		free(t);
		return rc;
	}
	*out = t;
	return CKPT_OK;
}

/* Whether the spool named name (SPOOL_PREFIX PID.BOOT.RANDOM) belongs to
 * a process known to be gone: of this boot and not alive, or of another
 * boot of this host. */
static bool
spool_is_dead(const char *name)
{
	const char *p = name + strlen(SPOOL_PREFIX), *dot;
	char boot[9], *end;
	long pid;

	pid = strtol(p, &end, 10);
	if (end == p || *end != '.' || pid <= 0)
		return false;
	p = end + 1;
	if (!(dot = strchr(p, '.')) || dot == p || strchr(dot + 1, '.'))
		return false;
	boot_tag(boot);
	if (!strcmp(boot, "-") || (size_t)(dot - p) != strlen(boot) ||
	    strncmp(p, boot, strlen(boot)))
		/* Another boot: every process of it is gone, unless the
		 * boot id cannot be read (then never guess). */
		return strcmp(boot, "-") && strncmp(p, "-", 1);
	return pid != (long)getpid() && !ckpt_proc_alive(pid, 0);
}

/*
 * Removes the spools of dead saves of this user in $TMPDIR (not those
 * with a .moved marker).  Best effort: a spool is only temporary data,
 * its save's staging area in the store is what gc judges.
 */
static void
spool_sweep(void)
{
	const char *root = spool_root();
	struct dirent *de;
	DIR *d = opendir(root);

	if (!d)
		return;
	while ((de = readdir(d))) {
		struct stat st;
		char *p, *m = NULL;

		if (strncmp(de->d_name, SPOOL_PREFIX, strlen(SPOOL_PREFIX)) ||
		    strstr(de->d_name, SPOOL_MOVED) ||
		    !spool_is_dead(de->d_name))
			continue;
		if (!(p = ckpt_join(root, de->d_name)))
			break;
		if (!lstat(p, &st) && S_ISDIR(st.st_mode) &&
		    st.st_uid == geteuid() && asprintf(&m, "%s" SPOOL_MOVED,
		    p) >= 0 && access(m, F_OK) && errno == ENOENT)
			ckpt_rm_rf(p);
		free(m);
		free(p);
	}
	closedir(d);
}

/* Marks st's spool as holding the user's files (durably, before they
 * are moved in), or unmarks it. */
static int
spool_mark_moved(struct s3_stage *st, bool on, struct ckpt_error *err)
{
	char *m;
	int fd, rc = CKPT_OK;

	if (asprintf(&m, "%s" SPOOL_MOVED, st->local) < 0)
		return ckpt_error_nomem(err);
	if (!on) {
		unlink(m);
	} else if ((fd = open(m, O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC,
	    0600)) < 0) {
		rc = ckpt_error_errno(err, m, "cannot create");
	} else {
		close(fd);
		rc = ckpt_fsync_dir(spool_root(), err);
	}
	free(m);
	return rc;
}

static int
s3_stage_begin(void *be, const char *dir, const char *name,
    const char *record, size_t len, char **stage, char **local,
    struct ckpt_error *err)
{
	struct s3_be *b = be;
	struct s3_stage *st;
	unsigned char rnd[6];
	char *rec = NULL;
	int rc;

	*stage = *local = NULL;
	/* What killed saves of this user left in $TMPDIR goes first. */
	spool_sweep();
	if (!(st = calloc(1, sizeof(*st))))
		return ckpt_error_nomem(err);
	randombytes_buf(rnd, sizeof(rnd));
	if (asprintf(&st->key, "%s/.tmp-%s.%02x%02x%02x%02x%02x%02x", dir,
	    name, rnd[0], rnd[1], rnd[2], rnd[3], rnd[4], rnd[5]) < 0) {
		free(st);
		return ckpt_error_nomem(err);
	}
	if ((rc = spool_dir(&st->local, err))) {
		free(st->key);
		free(st);
		return rc;
	}
	st->next = b->stages;
	b->stages = st;
	/* The record first: a staging prefix never exists without it. */
	if (asprintf(&rec, "%s/%s", st->key, CKPT_STAGING_NAME) < 0)
		rc = ckpt_error_nomem(err);
	else
		rc = s3_put(be, rec, record, len, CKPT_BE_IF_ABSENT, err);
	free(rec);
	if (!rc && (!(*stage = strdup(st->key)) ||
	    !(*local = strdup(st->local)))) {
		free(*stage);
		*stage = NULL;
		rc = ckpt_error_nomem(err);
	}
	if (rc)
		stage_forget(b, st, true);
	return rc;
}

/* Copies or links the tree src to dst (no link followed). */
static int
spool_tree(const char *src, const char *dst, unsigned flags, int depth,
    struct ckpt_error *err)
{
	struct dirent *de;
	struct stat st;
	DIR *d;
	int rc = CKPT_OK;

	if (lstat(src, &st))
		return ckpt_error_errno(err, src, "cannot stat");
	if (S_ISREG(st.st_mode)) {
		if ((flags & (CKPT_BE_STAGE_SHARE | CKPT_BE_STAGE_SHARE_ONLY))
		    && !link(src, dst))
			return CKPT_OK;
		if (flags & CKPT_BE_STAGE_SHARE_ONLY)
			return ckpt_error_errno(err, dst, "cannot link %s to",
			    src);
		return ckpt_copy_file(src, dst, err);
	}
	if (!S_ISDIR(st.st_mode) || depth > 64)
		return ckpt_error_set(err, CKPT_ERR_UNSAFE, src, -1, "not a "
		    "regular file or directory");
	if (mkdir(dst, 0700))
		return ckpt_error_errno(err, dst, "cannot create directory");
	if (!(d = opendir(src)))
		return ckpt_error_errno(err, src, "cannot list");
	while (!rc && (errno = 0, de = readdir(d))) {
		char *s, *t;

		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		s = ckpt_join(src, de->d_name);
		t = ckpt_join(dst, de->d_name);
		rc = s && t ? spool_tree(s, t, flags, depth + 1, err) :
		    ckpt_error_nomem(err);
		free(s);
		free(t);
	}
	if (!rc && errno)
		rc = ckpt_error_errno(err, src, "cannot list");
	closedir(d);
	return rc;
}

static int
s3_stage_file(void *be, const char *stage, const char *rel,
    const char *src, unsigned int flags, bool *taken,
    struct ckpt_error *err)
{
	struct s3_be *b = be;
	struct s3_stage *st = stage_find(b, stage);
	char *dst;
	int rc;

	if (taken)
		*taken = false;
	if (!st)
		return key_error(b, CKPT_ERR_INTERNAL, stage, "not a staging "
		    "area of this process", err);
	if (!(dst = ckpt_join(st->local, rel)))
		return ckpt_error_nomem(err);
	if ((flags & CKPT_BE_STAGE_TAKE) && !st->ntaken &&
	    (rc = spool_mark_moved(st, true, err))) {
		free(dst);
		return rc;
	}
	if ((flags & CKPT_BE_STAGE_TAKE) && !rename(src, dst)) {
		st->ntaken++;
		if (taken)
			*taken = true;
		free(dst);
		return CKPT_OK;
	}
	if ((flags & CKPT_BE_STAGE_TAKE) && !st->ntaken) {
		int e = errno;

		spool_mark_moved(st, false, NULL);
		errno = e;
	}
	if ((flags & CKPT_BE_STAGE_TAKE) && errno != EXDEV) {
		rc = ckpt_error_errno(err, src, "cannot move into the upload "
		    "spool");
		free(dst);
		return rc;
	}
	rc = spool_tree(src, dst, flags & ~CKPT_BE_STAGE_TAKE, 0, err);
	free(dst);
	return rc;
}

static int
s3_stage_untake(void *be, const char *stage, const char *rel,
    const char *dst, struct ckpt_error *err)
{
	struct s3_be *b = be;
	struct s3_stage *st = stage_find(b, stage);
	char *src;
	int rc = CKPT_OK;

	if (!st)
		return key_error(b, CKPT_ERR_NOTFOUND, stage, "not a staging "
		    "area of this process", err);
	if (!(src = ckpt_join(st->local, rel)))
		return ckpt_error_nomem(err);
	if (renameat2(AT_FDCWD, src, AT_FDCWD, dst, RENAME_NOREPLACE))
		rc = errno == ENOENT ? ckpt_error_set(err, CKPT_ERR_NOTFOUND,
		    src, -1, "not in the spool") : errno == EEXIST ?
		    ckpt_error_set(err, CKPT_ERR_EXISTS, dst, -1, "exists "
		    "already") : ckpt_error_errno(err, dst, "cannot move %s "
		    "back to", src);
	free(src);
	if (!rc && st->ntaken && !--st->ntaken)
		spool_mark_moved(st, false, NULL);
	if (!rc) {
		char *d = ckpt_dirname(dst);

		rc = d ? ckpt_fsync_dir(d, err) : ckpt_error_nomem(err);
		free(d);
	}
	return rc;
}

static int
s3_stage_record(void *be, const char *stage, const char *record,
    size_t len, bool durable, struct ckpt_error *err)
{
	char *key;
	int rc;

	(void)durable;		/* every PUT is durable */
	if (asprintf(&key, "%s/%s", stage, CKPT_STAGING_NAME) < 0)
		return ckpt_error_nomem(err);
	rc = record ? s3_put(be, key, record, len, 0, err) :
	    s3_remove(be, key, err);
	free(key);
	return rc;
}

/* The spool file rel was uploaded as it is now (st: its lstat). */
static bool
uploaded(const struct s3_stage *sg, const char *rel, const struct stat *st)
{
	for (size_t i = 0; i < sg->nups; i++)
		if (!strcmp(sg->ups[i].rel, rel))
			return sg->ups[i].size == (uint64_t)st->st_size &&
			    sg->ups[i].ino == (uint64_t)st->st_ino &&
			    sg->ups[i].mtime_ns == (int64_t)st->st_mtim.tv_sec *
			    1000000000 + st->st_mtim.tv_nsec;
	return false;
}

static int
note_upload(struct s3_stage *sg, const char *rel, const struct stat *st)
{
	struct s3_up *v, *u = NULL;

	for (size_t i = 0; i < sg->nups; i++)
		if (!strcmp(sg->ups[i].rel, rel))
			u = &sg->ups[i];
	if (!u) {
		if (!(v = realloc(sg->ups, (sg->nups + 1) * sizeof(*v))))
			return CKPT_ERR_NOMEM;
		sg->ups = v;
		u = &v[sg->nups];
		if (!(u->rel = strdup(rel)))
			return CKPT_ERR_NOMEM;
		sg->nups++;
	}
	u->size = (uint64_t)st->st_size;
	u->ino = (uint64_t)st->st_ino;
	u->mtime_ns = (int64_t)st->st_mtim.tv_sec * 1000000000 +
	    st->st_mtim.tv_nsec;
	return 0;
}

/* Uploads the spool's tree at dir (relative rel) under the stage: what
 * changed since it was last uploaded. */
static int
upload_tree(struct s3_be *b, struct s3_stage *sg, const char *dir,
    const char *rel, int depth, struct ckpt_error *err)
{
	const char *stage = sg->key;

	struct dirent *de;
	DIR *d;
	int rc = CKPT_OK;

	if (depth > 64)
		return ckpt_error_set(err, CKPT_ERR_LIMIT, dir, -1, "nested "
		    "too deeply");
	if (!(d = opendir(dir)))
		return ckpt_error_errno(err, dir, "cannot list");
	while (!rc && (errno = 0, de = readdir(d))) {
		char *p, *r = NULL, *k = NULL;
		struct stat st;
		int fd;

		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (!(p = ckpt_join(dir, de->d_name)) || asprintf(&r, "%s%s%s",
		    rel, *rel ? "/" : "", de->d_name) < 0) {
			free(p);
			rc = ckpt_error_nomem(err);
			break;
		}
		if (lstat(p, &st))
			rc = ckpt_error_errno(err, p, "cannot stat");
		else if (S_ISDIR(st.st_mode))
			rc = upload_tree(b, sg, p, r, depth + 1, err);
		else if (!S_ISREG(st.st_mode))
			rc = ckpt_error_set(err, CKPT_ERR_UNSAFE, p, -1,
			    "not a regular file");
		else if (uploaded(sg, r, &st))
			;
		else if (asprintf(&k, "%s%s/%s", b->prefix, stage, r) < 0)
			rc = ckpt_error_nomem(err);
		else if ((fd = open(p, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)) <
		    0)
			rc = ckpt_error_errno(err, p, "cannot open");
		else {
			rc = renew(b, err);
			if (!rc)
				rc = ckpt_s3_put_fd(b->s3, k, fd,
				    (uint64_t)st.st_size, 0, NULL, NULL, NULL,
				    err);
			close(fd);
			if (!rc && note_upload(sg, r, &st))
				rc = ckpt_error_nomem(err);
		}
		free(k);
		free(r);
		free(p);
	}
	if (!rc && errno)
		rc = ckpt_error_errno(err, dir, "cannot list");
	closedir(d);
	return rc;
}

static int
s3_stage_sync(void *be, const char *stage, struct ckpt_error *err)
{
	struct s3_be *b = be;
	struct s3_stage *st = stage_find(b, stage);

	/* A staging area of another process has nothing local. */
	return st ? upload_tree(b, st, st->local, "", 0, err) : CKPT_OK;
}

static int
s3_stage_abort(void *be, const char *stage, struct ckpt_error *err)
{
	struct s3_be *b = be;
	struct s3_stage *st = stage_find(b, stage);
	int rc = s3_remove_tree(be, stage, err);

	if (!rc && st)
		stage_forget(b, st, true);
	return rc;
}

/* ---- the commit point ----------------------------------------------- */

static int
manifest_exists(struct s3_be *b, const char *final, bool *yes,
    struct ckpt_error *err)
{
	struct ckpt_s3_object o;
	struct ckpt_error le;
	char *k;
	int rc;

	if (asprintf(&k, "%s%s/%s", b->prefix, final, CKPT_MANIFEST_NAME) < 0)
		return ckpt_error_nomem(err);
	ckpt_error_clear(&le);
	rc = ckpt_s3_head(b->s3, k, &o, &le);
	free(k);
	*yes = !rc;
	if (rc == CKPT_ERR_NOTFOUND)
		return CKPT_OK;
	if (rc && err)
		*err = le;
	return rc;
}

/* Copies the staged objects (not the record, not the manifest) to
 * final/, then puts the manifest there If-None-Match: *, last. */
static int
publish(struct s3_be *b, const char *stage, const char *final,
    struct ckpt_error *err)
{
	char *src_dir = obj_dir(b, stage), *dst_dir = obj_dir(b, final), *dst;
	char *text = NULL, *mkey = NULL, *summary = NULL;
	size_t skip, n = 0, slen = 0;
	struct ckpt_s3_object mo;
	struct walk w;
	int rc;

	memset(&w, 0, sizeof(w));
	if (!src_dir || !dst_dir) {
		rc = ckpt_error_nomem(err);
		goto out;
	}
	skip = strlen(src_dir);
	if ((rc = walk_prefix(b, stage, false, &w, err)))
		goto out;
	for (size_t i = 0; i < w.n && !rc; i++) {
		const char *rel = w.keys[i] + skip;

		if (!strcmp(rel, CKPT_MANIFEST_NAME)) {
			mkey = w.keys[i];
			continue;
		}
		if (!strcmp(rel, CKPT_STAGING_NAME) || !strcmp(rel, FINAL_PTR))
			continue;
		if (!strcmp(rel, CKPT_SUMMARY_NAME) && w.sizes[i] <= SMALL_MAX &&
		    ckpt_s3_get_mem(b->s3, w.keys[i], 0, CKPT_S3_TO_END,
		    SMALL_MAX, &summary, &slen, NULL, NULL)) {
			free(summary);	/* not for the index, then */
			summary = NULL;
		}
		if ((rc = renew(b, err)))
			break;
		if (asprintf(&dst, "%s%s", dst_dir, rel) < 0) {
			rc = ckpt_error_nomem(err);
			break;
		}
		rc = ckpt_s3_copy_sized(b->s3, w.keys[i], w.sizes[i], dst, err);
		free(dst);
	}
	if (!rc && !mkey)
		rc = key_error(b, CKPT_ERR_INTERNAL, stage, "the staged "
		    "checkpoint has no manifest", err);
	if (!rc)
		rc = ckpt_s3_get_mem(b->s3, mkey, 0, CKPT_S3_TO_END,
		    (size_t)256 << 20, &text, &n, NULL, err);
	if (!rc && !(rc = renew(b, err))) {
		if (asprintf(&dst, "%s%s", dst_dir, CKPT_MANIFEST_NAME) < 0) {
			rc = ckpt_error_nomem(err);
		} else {
			/* The commit point. */
			rc = ckpt_s3_put(b->s3, dst, text, n,
			    CKPT_S3_IF_ABSENT, &mo, err);
			free(dst);
			if (!rc)
				index_change(b, final, mo.etag, summary, slen);
		}
	}
	free(summary);
	free(text);
out:
	walk_release(&w);
	free(src_dir);
	free(dst_dir);
	return rc;
}

static int
s3_commit_if_absent(void *be, const char *stage, const char *final,
    struct ckpt_error *err)
{
	struct s3_be *b = be;
	struct s3_stage *st = stage_find(b, stage);
	bool exists;
	char *ptr;
	int rc;

	if ((rc = renew(b, err)))
		return rc;
	if ((rc = manifest_exists(b, final, &exists, err)))
		return rc;
	if (exists)
		return key_error(b, CKPT_ERR_EXISTS, final, "exists already",
		    err);
	/* What the spool got since stage_sync (the manifest, summary). */
	if (st && (rc = upload_tree(b, st, st->local, "", 0, err)))
		return rc;
	/* Where this commit copies to, before it copies: gc clears it
	 * with the staging area should we die half way. */
	if (asprintf(&ptr, "%s/%s", stage, FINAL_PTR) < 0)
		return ckpt_error_nomem(err);
	rc = s3_put(be, ptr, final, strlen(final), 0, err);
	free(ptr);
	if (rc)
		return rc;
	if (!(rc = clear_leftovers(b, final, err)))
		rc = publish(b, stage, final, err);
	if (rc) {
		/* Still under the lock: what we copied goes again (a
		 * committed final keeps its manifest and is left alone). */
		struct ckpt_error ignored;

		ckpt_error_clear(&ignored);
		clear_leftovers(b, final, &ignored);
	}
	if (!rc) {
		/* Committed: the staging objects are leftovers now. */
		struct ckpt_error ignored;

		ckpt_error_clear(&ignored);
		s3_remove_tree(be, stage, &ignored);
		if (st)
			stage_forget(b, st, true);
	}
	return rc;
}

static int
s3_commit_replace(void *be, const char *stage, const char *final,
    const char *trash_name, struct ckpt_error *err)
{
	struct s3_be *b = be;
	bool exists;
	int rc;

	if ((rc = renew(b, err)))
		return rc;
	if ((rc = manifest_exists(b, final, &exists, err)))
		return rc;
	/* No atomic exchange in S3: the old one leaves first (manifest
	 * first), then the new one is committed. */
	if (exists && (rc = s3_trash(be, final, trash_name, err)))
		return rc;
	return s3_commit_if_absent(be, stage, final, err);
}

/* ---- version 3: the registry's copies (promote) --------------------- */

/*
 * A copy inside the service (CopyObject), never through this host: from
 * must be an object, to must not be one (the registry stages a version
 * under a fresh prefix, so this is a check, not a race).  Never shared:
 * an object store has no links.
 */
static int
s3_copy(void *be, const char *from, const char *to, unsigned int flags,
    bool *shared, struct ckpt_error *err)
{
	struct s3_be *b = be;
	struct ckpt_s3_object o, exists;
	struct ckpt_error le;
	char *src = obj_key(b, from), *dst = obj_key(b, to);
	int rc;

	(void)flags;
	if (shared)
		*shared = false;
	if (!src || !dst) {
		rc = ckpt_error_nomem(err);
		goto out;
	}
	if ((rc = renew(b, err)))
		goto out;
	if ((rc = ckpt_s3_head(b->s3, src, &o, err)))
		goto out;
	ckpt_error_clear(&le);
	rc = ckpt_s3_head(b->s3, dst, &exists, &le);
	if (!rc) {
		rc = key_error(b, CKPT_ERR_EXISTS, to, "exists already", err);
		goto out;
	}
	if (rc != CKPT_ERR_NOTFOUND) {
		if (err)
			*err = le;
		goto out;
	}
	/* Above 5 GiB a multipart copy (ckpt_s3_copy_sized). */
	rc = ckpt_s3_copy_sized(b->s3, src, o.size, dst, err);
out:
	free(src);
	free(dst);
	return rc;
}

/* ---- unfinished multipart uploads, for gc --------------------------- */

struct uploads_walk {
	struct s3_be *b;
	ckpt_store_upload_fn fn;
	void *arg;
};

static int
upload_one(void *arg, const struct ckpt_s3_upload *u)
{
	struct uploads_walk *w = arg;
	size_t n = strlen(w->b->prefix);

	if (strncmp(u->key, w->b->prefix, n) || !u->key[n])
		return 0;	/* not the store's */
	return w->fn(w->arg, u->key + n, u->upload_id,
	    local_time(w->b, u->initiated));
}

int
ckpt_store_s3_uploads(struct ckpt_store *s, ckpt_store_upload_fn fn,
    void *arg, struct ckpt_error *err)
{
	struct uploads_walk w = { s->be, fn, arg };

	if (s->ops != &ckpt_backend_s3)
		return CKPT_OK;
	return ckpt_s3_list_uploads(w.b->s3, *w.b->prefix ? w.b->prefix :
	    NULL, upload_one, &w, err);
}

int
ckpt_store_s3_abort_upload(struct ckpt_store *s, const char *key,
    const char *upload_id, struct ckpt_error *err)
{
	struct s3_be *b = s->be;
	char *k;
	int rc;

	if (s->ops != &ckpt_backend_s3)
		return CKPT_OK;
	if ((rc = renew(b, err)))
		return rc;
	if (!(k = obj_key(b, key)))
		return ckpt_error_nomem(err);
	rc = ckpt_s3_mpu_abort(b->s3, k, upload_id, err);
	free(k);
	return rc;
}

int
ckpt_store_s3_spool(struct ckpt_store *s, char **dir, struct ckpt_error *err)
{
	*dir = NULL;
	if (!s || s->ops != &ckpt_backend_s3)
		return ckpt_error_set(err, CKPT_ERR_INTERNAL, NULL, -1,
		    "not a store on S3");
	/* what killed runs of this user left in $TMPDIR goes first */
	spool_sweep();
	return spool_dir(dir, err);
}

void
ckpt_store_s3_sweep_spools(struct ckpt_store *s)
{
	if (s && s->ops == &ckpt_backend_s3)
		spool_sweep();
}

struct ckpt_s3 *
ckpt_store_s3(const struct ckpt_store *s, const char **prefix)
{
	const struct s3_be *b;

	if (!s || s->ops != &ckpt_backend_s3)
		return NULL;
	b = s->be;
	if (prefix)
		*prefix = b->prefix;
	return b->s3;
}

const struct ckpt_backend_ops ckpt_backend_s3 = {
	.version = CKPT_BACKEND_VERSION,
	.name = "s3",
	.open = s3_open,
	.close = s3_close,
	.read = s3_read,
	.stat = s3_stat,
	.list = s3_list,
	.put = s3_put,
	.remove = s3_remove,
	.lock = s3_lock,
	.lock_read = s3_lock_read,
	.unlock = s3_unlock,
	.commit_if_absent = s3_commit_if_absent,
	.trash = s3_trash,
	.remove_tree = s3_remove_tree,
	.flush = s3_flush,
	.usage = s3_usage,
	.create = s3_create,
	.mkprefix = s3_mkprefix,
	.rmprefix = s3_rmprefix,
	.stage_begin = s3_stage_begin,
	.stage_file = s3_stage_file,
	.stage_untake = s3_stage_untake,
	.stage_record = s3_stage_record,
	.stage_sync = s3_stage_sync,
	.stage_abort = s3_stage_abort,
	.commit_replace = s3_commit_replace,
	.copy = s3_copy,
};
