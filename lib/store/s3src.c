/* SPDX-License-Identifier: MIT */
/*
 * s3src.c - checkpoint files read from S3: the format layer's byte source
 * over ranged GETs (ckpt_s3_file_open), s3:// URLs, and the digests the
 * hashing engine computes for local files, here by streaming GETs that
 * hash in the read pass (ckpt_s3_hash_jobs).
 */
#include "util/internal.h"

#include <pthread.h>

#include "checkpoint/checkpoint.h"
#include "format/file.h"
#include "store/s3src.h"
#include "store/store.h"

/* The first GET of a file: a safetensors header of up to this much, or a
 * pickle, costs one request; later misses fetch this much at least. */
#define S3_READAHEAD ((size_t)1 << 20)

bool
ckpt_s3_is_url(const char *s)
{
	return s && !strncmp(s, "s3://", 5);
}

int
ckpt_s3_url_parse(const char *url, char **bucket, char **key,
    struct ckpt_error *err)
{
	const char *b = url + 5, *slash;
	size_t bl;

	*bucket = *key = NULL;
	if (!ckpt_s3_is_url(url))
		return ckpt_error_set(err, CKPT_ERR_INVALID, url, -1,
		    "not an s3://BUCKET/KEY location");
	slash = strchr(b, '/');
	bl = slash ? (size_t)(slash - b) : strlen(b);
	if (!bl)
		return ckpt_error_set(err, CKPT_ERR_INVALID, url, -1,
		    "no bucket name after s3://");
	*bucket = strndup(b, bl);
	*key = strdup(slash ? slash + 1 : "");
	if (!*bucket || !*key) {
		free(*bucket);
		free(*key);
		*bucket = *key = NULL;
		return ckpt_error_nomem(err);
	}
	return CKPT_OK;
}

int
ckpt_s3_url_client(const char *url, struct ckpt_s3 **s3, char **key,
    struct ckpt_error *err)
{
	struct ckpt_s3_config cfg;
	char *bucket;
	int rc;

	*s3 = NULL;
	if ((rc = ckpt_s3_url_parse(url, &bucket, key, err)))
		return rc;
	ckpt_s3_config_init(&cfg);
	rc = ckpt_s3_config_load(&cfg, err);
	if (!rc)
		rc = ckpt_s3_open(&cfg, bucket, s3, err);
	ckpt_s3_config_release(&cfg);
	free(bucket);
	if (rc) {
		free(*key);
		*key = NULL;
	}
	return rc;
}

/* ------------------------------------------------------------------ */
/* The byte source                                                     */
/* ------------------------------------------------------------------ */

/* A client shared by the files of one checkpoint, freed with the last. */
struct s3_shared {
	struct ckpt_s3 *s3;
	unsigned refs;			/* under shared_lock */
};

static pthread_mutex_t shared_lock = PTHREAD_MUTEX_INITIALIZER;

static struct s3_shared *
shared_new(struct ckpt_s3 *s3)
{
	struct s3_shared *sh = calloc(1, sizeof(*sh));

	if (sh) {
		sh->s3 = s3;
		sh->refs = 1;
	}
	return sh;
}

static void
shared_hold(struct s3_shared *sh)
{
	pthread_mutex_lock(&shared_lock);
	sh->refs++;
	pthread_mutex_unlock(&shared_lock);
}

static void
shared_drop(struct s3_shared *sh)
{
	bool last;

	if (!sh)
		return;
	pthread_mutex_lock(&shared_lock);
	last = !--sh->refs;
	pthread_mutex_unlock(&shared_lock);
	if (last) {
		ckpt_s3_free(sh->s3);
		free(sh);
	}
}

struct s3_source {
	struct ckpt_s3 *s3;
	struct s3_shared *sh;		/* NULL: the caller's client */
	char *key, *name;
	char etag[CKPT_S3_ETAG_MAX];
};

struct buf_sink {
	unsigned char *buf;
	size_t len, got;
};

static int
to_buffer(void *arg, const void *data, size_t n)
{
	struct buf_sink *b = arg;

	if (n > b->len - b->got)
		return CKPT_ERR_LIMIT;
	memcpy(b->buf + b->got, data, n);
	b->got += n;
	return 0;
}

static void
source_close(void *arg)
{
	struct s3_source *s = arg;

	if (!s)
		return;
	shared_drop(s->sh);
	free(s->key);
	free(s->name);
	free(s);
}

static int
source_pread(void *arg, void *buf, size_t len, uint64_t off,
    struct ckpt_error *err)
{
	struct s3_source *s = arg;
	struct buf_sink b = { buf, len, 0 };
	struct ckpt_s3_object o;
	int rc;

	if (!len)
		return CKPT_OK;
	if ((rc = ckpt_s3_get(s->s3, s->key, off, len, to_buffer, &b, &o,
	    err)))
		return rc;
	/* Bytes of two versions of an object are no file at all. */
	if (strcmp(o.etag, s->etag))
		return ckpt_error_set(err, CKPT_ERR_IO, s->name, (int64_t)off,
		    "the object changed while being read (ETag %s, was %s)",
		    o.etag, s->etag);
	if (b.got != len)
		return ckpt_error_set(err, CKPT_ERR_IO, s->name,
		    (int64_t)(off + b.got), "object shrank while being read");
	return CKPT_OK;
}

/* Opens key through s3; the source holds sh (when not NULL) until the
 * file is freed. */
static int
file_open(struct ckpt_s3 *s3, struct s3_shared *sh, const char *key,
    const struct ckpt_open_options *o, struct ckpt_file **out,
    struct ckpt_error *err)
{
	struct ckpt_source src = { .pread = source_pread,
	    .close = source_close, .readahead = S3_READAHEAD };
	struct s3_source *s = calloc(1, sizeof(*s));
	struct buf_sink b = { NULL, S3_READAHEAD, 0 };
	struct ckpt_s3_object obj;
	struct ckpt_error e;
	int rc;

	if (sh)
		shared_hold(sh);
	if (!s) {
		shared_drop(sh);
		return ckpt_error_nomem(err);
	}
	s->s3 = s3;
	s->sh = sh;
	if (!(s->key = strdup(key)) || asprintf(&s->name, "s3://%s/%s",
	    ckpt_s3_bucket(s3), key) < 0 || !(b.buf = malloc(S3_READAHEAD))) {
		source_close(s);
		return ckpt_error_nomem(err);
	}
	/* One request learns the size and brings the header. */
	rc = ckpt_s3_get(s3, key, 0, S3_READAHEAD, to_buffer, &b, &obj, err);
	if (rc && rc != CKPT_ERR_NOTFOUND && rc != CKPT_ERR_REFUSED) {
		/* An empty object has no byte 0 to range over (416). */
		ckpt_error_clear(&e);
		if (!ckpt_s3_head(s3, key, &obj, &e) && !obj.size) {
			rc = CKPT_OK;
			b.got = 0;
		}
	}
	if (!rc && b.got != (obj.size < S3_READAHEAD ? obj.size :
	    S3_READAHEAD))
		rc = ckpt_error_set(err, CKPT_ERR_IO, s->name, (int64_t)b.got,
		    "GET of the first bytes came short");
	if (rc) {
		free(b.buf);
		source_close(s);
		return rc;
	}
	memcpy(s->etag, obj.etag, sizeof(s->etag));
	src.arg = s;
	src.size = obj.size;
	src.head = b.buf;
	src.head_len = b.got;
	return ckpt_file_open_source(s->name, &src, o, out, err);
}

int
ckpt_s3_file_open(struct ckpt_s3 *s3, bool own_s3, const char *key,
    const struct ckpt_open_options *o, struct ckpt_file **out,
    struct ckpt_error *err)
{
	struct s3_shared *sh = NULL;
	int rc;

	if (own_s3 && !(sh = shared_new(s3))) {
		ckpt_s3_free(s3);
		return ckpt_error_nomem(err);
	}
	rc = file_open(s3, sh, key, o, out, err);
	shared_drop(sh);
	return rc;
}

int
ckpt_file_open_location(const char *location,
    const struct ckpt_open_options *o, struct ckpt_file **out,
    struct ckpt_error *err)
{
	struct ckpt_s3 *s3;
	char *key;
	int rc;

	if (!ckpt_s3_is_url(location))
		return ckpt_file_open_ex(location, o, out, err);
	if ((rc = ckpt_s3_url_client(location, &s3, &key, err)))
		return rc;
	rc = ckpt_s3_file_open(s3, true, key, o, out, err);
	free(key);
	return rc;
}

/* ------------------------------------------------------------------ */
/* A checkpoint under a prefix                                         */
/* ------------------------------------------------------------------ */

struct cp_list {
	const char *url_prefix;		/* "s3://BUCKET/" */
	size_t skip;			/* bytes of the key prefix */
	char **names, **paths;
	size_t n, cap;
};

static int
collect_object(void *arg, const char *key, const struct ckpt_s3_object *obj)
{
	struct cp_list *l = arg;
	size_t kl = strlen(key);

	/* A "folder" marker some tools create holds no file. */
	if (!obj || (kl && key[kl - 1] == '/'))
		return 0;
	if (l->n == l->cap) {
		size_t c = l->cap ? 2 * l->cap : 16;
		char **a = reallocarray(l->names, c, sizeof(*a));
		char **b = a ? reallocarray(l->paths, c, sizeof(*b)) : NULL;

		if (a)
			l->names = a;
		if (!b)
			return CKPT_ERR_NOMEM;
		l->paths = b;
		l->cap = c;
	}
	l->names[l->n] = strdup(key + l->skip);
	if (!l->names[l->n] || asprintf(&l->paths[l->n], "%s%s",
	    l->url_prefix, key) < 0) {
		free(l->names[l->n]);
		return CKPT_ERR_NOMEM;
	}
	l->n++;
	return 0;
}

static int
cp_open(void *arg, const char *path, const struct ckpt_open_options *o,
    struct ckpt_file **out, struct ckpt_error *err)
{
	struct s3_shared *sh = arg;
	const char *key = path + 5 + strlen(ckpt_s3_bucket(sh->s3)) + 1;

	return file_open(sh->s3, sh, key, o, out, err);
}

/* The objects under prefix (ending in '/') as one checkpoint. */
static int
open_prefix(struct s3_shared *sh, const char *url, const char *prefix,
    const struct ckpt_open_options *o, struct ckpt_checkpoint **out,
    struct ckpt_error *err)
{
	struct cp_list l = { .skip = strlen(prefix) };
	char *up = NULL;
	int rc;

	if (asprintf(&up, "s3://%s/", ckpt_s3_bucket(sh->s3)) < 0)
		return ckpt_error_nomem(err);
	l.url_prefix = up;
	rc = ckpt_s3_list(sh->s3, prefix, NULL, collect_object, &l, err);
	if (rc == CKPT_ERR_NOMEM)
		rc = ckpt_error_nomem(err);
	if (!rc && !l.n)
		rc = ckpt_error_set(err, CKPT_ERR_NOTFOUND, url, -1,
		    "no object at or under this location");
	if (!rc)
		rc = ckpt_checkpoint_open_with(url, true,
		    (const char *const *)l.names, (const char *const *)l.paths,
		    l.n, cp_open, sh, o, out, err);
	for (size_t i = 0; i < l.n; i++) {
		free(l.names[i]);
		free(l.paths[i]);
	}
	free(l.names);
	free(l.paths);
	free(up);
	return rc;
}

int
ckpt_checkpoint_open_location(const char *location,
    const struct ckpt_open_options *o, struct ckpt_checkpoint **out,
    struct ckpt_error *err)
{
	struct s3_shared *sh;
	struct ckpt_s3 *s3;
	char *key, *prefix = NULL;
	size_t kl;
	int rc;

	if (!ckpt_s3_is_url(location))
		return ckpt_checkpoint_open_ex(location, o, out, err);
	if ((rc = ckpt_s3_url_client(location, &s3, &key, err)))
		return rc;
	if (!(sh = shared_new(s3))) {
		ckpt_s3_free(s3);
		free(key);
		return ckpt_error_nomem(err);
	}
	kl = strlen(key);
	/* An object is one file (its first GET tells); a prefix, or a key
	 * that is no object, is a checkpoint directory. */
	if (kl && key[kl - 1] != '/') {
		const char *name = strrchr(key, '/') ? strrchr(key, '/') + 1 :
		    key;

		rc = ckpt_checkpoint_open_with(location, false, &name,
		    &location, 1, cp_open, sh, o, out, err);
		if (rc || (*out)->files[0].err.code != CKPT_ERR_NOTFOUND)
			goto done;
		ckpt_checkpoint_free(*out);
		*out = NULL;
		if (asprintf(&prefix, "%s/", key) < 0) {
			rc = ckpt_error_nomem(err);
			goto done;
		}
	}
	rc = open_prefix(sh, location, prefix ? prefix : key, o, out, err);
done:
	free(prefix);
	free(key);
	shared_drop(sh);
	return rc;
}

/* ------------------------------------------------------------------ */
/* Digests by streaming GETs                                           */
/* ------------------------------------------------------------------ */

/* Below this much per GET, splitting a file costs more than it brings. */
#define SPLIT_MIN ((uint64_t)32 << 20)

/* One GET: a span of one object and the ranges that start inside it. */
struct hunit {
	struct ckpt_hash_job *job;
	const char *key;
	size_t *idx;			/* job ranges, by offset */
	size_t n;
	bool whole, owns_idx;
	uint64_t from, to;		/* of the ranges; whole: 0 to the end */
};

struct hrun {
	struct ckpt_s3 *s3;
	struct hunit *units;
	size_t nunits, next;
	pthread_mutex_t lock;
	int fatal;
};

/* The state of one unit's GET as the bytes stream by. */
struct hstream {
	struct hunit *u;
	struct ckpt_sha256 whole;
	struct ckpt_sha256 *rs;		/* per unit range */
	size_t *active, nactive, next;
	uint64_t pos;
	int rc;
	struct ckpt_error err;
};

static const struct ckpt_range_digest *
urange(const struct hunit *u, size_t k)
{
	return &u->job->ranges[u->idx[k]];
}

static int
hash_sink(void *arg, const void *data, size_t n)
{
	struct hstream *h = arg;
	struct hunit *u = h->u;
	const unsigned char *p = data;
	uint64_t end = h->pos + n;
	size_t keep = 0;

	while (h->next < u->n && urange(u, h->next)->offset < end) {
		if (ckpt_sha256_init(&h->rs[h->next], &h->err))
			return h->rc = CKPT_ERR_NOMEM;
		h->active[h->nactive++] = h->next++;
	}
	/* The common case, one range over the whole piece: both digests
	 * in one interleaved pass. */
	if (u->whole && h->nactive == 1 && urange(u, h->active[0])->offset <=
	    h->pos && urange(u, h->active[0])->end >= end) {
		ckpt_sha256_update2(&h->whole, p, &h->rs[h->active[0]], p, n);
	} else {
		if (u->whole)
			ckpt_sha256_update(&h->whole, p, n);
		for (size_t a = 0; a < h->nactive; a++) {
			const struct ckpt_range_digest *r =
			    urange(u, h->active[a]);
			uint64_t s = r->offset > h->pos ? r->offset : h->pos;
			uint64_t e = r->end < end ? r->end : end;

			if (s < e)
				ckpt_sha256_update(&h->rs[h->active[a]],
				    p + (s - h->pos), (size_t)(e - s));
		}
	}
	for (size_t a = 0; a < h->nactive; a++) {
		size_t k = h->active[a];

		if (urange(u, k)->end > end) {
			h->active[keep++] = k;
			continue;
		}
		if (ckpt_sha256_final(&h->rs[k],
		    u->job->ranges[u->idx[k]].sha256, &h->err))
			return h->rc = CKPT_ERR_NOMEM;
	}
	h->nactive = keep;
	h->pos = end;
	return 0;
}

static void
unit_fail(struct hrun *run, struct hunit *u, int rc,
    const struct ckpt_error *e)
{
	pthread_mutex_lock(&run->lock);
	if (!u->job->status) {
		u->job->status = rc;
		u->job->err = *e;
	}
	pthread_mutex_unlock(&run->lock);
}

static void
unit_run(struct hrun *run, struct hunit *u)
{
	struct hstream h = { .u = u, .pos = u->from };
	struct ckpt_s3_object obj;
	uint64_t len = u->whole ? CKPT_S3_TO_END : u->to - u->from;
	bool whole_open = false;
	int rc;

	ckpt_error_clear(&h.err);
	h.rs = calloc(u->n ? u->n : 1, sizeof(*h.rs));
	h.active = calloc(u->n ? u->n : 1, sizeof(*h.active));
	if (h.rs && h.active && u->whole && !ckpt_sha256_init(&h.whole,
	    &h.err))
		whole_open = true;
	if (!h.rs || !h.active || whole_open != u->whole) {
		pthread_mutex_lock(&run->lock);
		run->fatal = CKPT_ERR_NOMEM;
		pthread_mutex_unlock(&run->lock);
		goto out;
	}
	memset(&obj, 0, sizeof(obj));
	rc = len ? ckpt_s3_get(run->s3, u->key, u->from, len, hash_sink, &h,
	    &obj, &h.err) : ckpt_s3_head(run->s3, u->key, &obj, &h.err);
	if (!rc && h.rc)
		rc = h.rc;
	if (!rc && h.next < u->n) {
		const struct ckpt_range_digest *r = urange(u, h.next);

		rc = ckpt_error_set(&h.err, CKPT_ERR_FORMAT, u->job->path,
		    (int64_t)obj.size, "object is %llu bytes, a range of the "
		    "manifest ends at byte %llu",
		    (unsigned long long)obj.size, (unsigned long long)r->end);
	}
	if (!rc && h.nactive) {
		rc = ckpt_error_set(&h.err, CKPT_ERR_FORMAT, u->job->path,
		    (int64_t)h.pos, "object is %llu bytes, a range of the "
		    "manifest ends at byte %llu", (unsigned long long)h.pos,
		    (unsigned long long)urange(u, h.active[0])->end);
	}
	if (!rc && u->whole) {
		u->job->size = obj.size;
		whole_open = false;	/* final releases it */
		rc = ckpt_sha256_final(&h.whole, u->job->sha256, &h.err);
	}
	if (rc)
		unit_fail(run, u, rc, &h.err);
out:
	if (whole_open)
		ckpt_sha256_release(&h.whole);
	for (size_t a = 0; h.active && a < h.nactive; a++)
		ckpt_sha256_release(&h.rs[h.active[a]]);
	free(h.rs);
	free(h.active);
}

static void *
hash_worker(void *arg)
{
	struct hrun *run = arg;

	for (;;) {
		struct hunit *u;

		pthread_mutex_lock(&run->lock);
		if (run->next >= run->nunits || run->fatal) {
			pthread_mutex_unlock(&run->lock);
			return NULL;
		}
		u = &run->units[run->next++];
		pthread_mutex_unlock(&run->lock);
		unit_run(run, u);
	}
}

static const struct ckpt_hash_job *sort_job;

static int
cmp_by_offset(const void *a, const void *b)
{
	const struct ckpt_range_digest *x =
	    &sort_job->ranges[*(const size_t *)a];
	const struct ckpt_range_digest *y =
	    &sort_job->ranges[*(const size_t *)b];

	if (x->offset != y->offset)
		return x->offset < y->offset ? -1 : 1;
	return x->end < y->end ? -1 : x->end > y->end;
}

static int
add_unit(struct hunit **units, size_t *nunits, size_t *cap,
    struct ckpt_hash_job *j, const char *key, size_t *idx, size_t n,
    bool owns)
{
	struct hunit *u;

	if (*nunits == *cap) {
		size_t c = *cap ? 2 * *cap : 16;
		struct hunit *p = reallocarray(*units, c, sizeof(*p));

		if (!p)
			return CKPT_ERR_NOMEM;
		*units = p;
		*cap = c;
	}
	u = &(*units)[(*nunits)++];
	memset(u, 0, sizeof(*u));
	u->job = j;
	u->key = key;
	u->idx = idx;
	u->n = n;
	u->owns_idx = owns;
	u->whole = j->whole;
	u->from = n && !j->whole ? j->ranges[idx[0]].offset : 0;
	u->to = u->from;
	for (size_t m = 0; m < n; m++)
		if (urange(u, m)->end > u->to)
			u->to = urange(u, m)->end;
	return CKPT_OK;
}

/* Cuts job into units: one whole-object GET, or up to parts ranged GETs
 * of about equal bytes, each over whole ranges. */
static int
plan_job(struct ckpt_hash_job *j, const char *key, unsigned parts,
    struct hunit **units, size_t *nunits, size_t *cap)
{
	static pthread_mutex_t sort_lock = PTHREAD_MUTEX_INITIALIZER;
	size_t *idx = calloc(j->nranges ? j->nranges : 1, sizeof(*idx));
	uint64_t total = 0, target, acc = 0;
	size_t start = 0;
	int rc = CKPT_OK;

	if (!idx)
		return CKPT_ERR_NOMEM;
	for (size_t k = 0; k < j->nranges; k++) {
		idx[k] = k;
		total += j->ranges[k].end - j->ranges[k].offset;
	}
	pthread_mutex_lock(&sort_lock);
	sort_job = j;
	qsort(idx, j->nranges, sizeof(*idx), cmp_by_offset);
	pthread_mutex_unlock(&sort_lock);
	if (j->whole || parts < 2 || total < 2 * SPLIT_MIN)
		parts = 1;
	if (parts == 1) {
		if (!j->whole && !j->nranges) {
			free(idx);
			return CKPT_OK;
		}
		rc = add_unit(units, nunits, cap, j, key, idx, j->nranges,
		    true);
		if (rc)
			free(idx);
		return rc;
	}
	target = (total + parts - 1) / parts;
	for (size_t k = 0; k < j->nranges && !rc; k++) {
		acc += j->ranges[idx[k]].end - j->ranges[idx[k]].offset;
		if (acc < target && k + 1 < j->nranges)
			continue;
		rc = add_unit(units, nunits, cap, j, key, idx + start,
		    k + 1 - start, start == 0);
		if (rc && !start)
			free(idx);
		start = k + 1;
		acc = 0;
	}
	return rc;
}

int
ckpt_s3_hash_jobs(struct ckpt_s3 *s3, const char *const *keys,
    struct ckpt_hash_job *jobs, size_t njobs, unsigned nthreads,
    struct ckpt_error *err)
{
	struct hrun run = { .s3 = s3 };
	unsigned parts = nthreads ? nthreads : 4;
	pthread_t *tid = NULL;
	size_t cap = 0, started = 0;
	int rc = CKPT_OK;

	pthread_mutex_init(&run.lock, NULL);
	for (size_t i = 0; i < njobs && !rc; i++) {
		jobs[i].status = CKPT_OK;
		ckpt_error_clear(&jobs[i].err);
		rc = plan_job(&jobs[i], keys[i], parts, &run.units,
		    &run.nunits, &cap);
	}
	if (!rc && run.nunits) {
		size_t n = run.nunits < parts ? run.nunits : parts;

		tid = calloc(n, sizeof(*tid));
		for (size_t t = 0; tid && t < n; t++) {
			if (pthread_create(&tid[t], NULL, hash_worker, &run))
				break;
			started++;
		}
		if (!started)
			hash_worker(&run);
		for (size_t t = 0; t < started; t++)
			pthread_join(tid[t], NULL);
		free(tid);
		rc = run.fatal;
	}
	for (size_t u = 0; u < run.nunits; u++)
		if (run.units[u].owns_idx)
			free(run.units[u].idx);
	free(run.units);
	pthread_mutex_destroy(&run.lock);
	if (rc)
		return ckpt_error_set(err, rc, NULL, -1, "out of memory while "
		    "hashing remote objects");
	return CKPT_OK;
}

/* ------------------------------------------------------------------ */
/* Locations: local paths or s3:// URLs                                */
/* ------------------------------------------------------------------ */

/* Whether key names a manifest object ("ckpt-manifest.json" or ".../"). */
static bool
is_manifest_key(const char *key)
{
	size_t kl = strlen(key), ml = strlen(CKPT_MANIFEST_NAME);

	return kl >= ml && !strcmp(key + kl - ml, CKPT_MANIFEST_NAME) &&
	    (kl == ml || key[kl - ml - 1] == '/');
}

int
ckpt_manifest_read_location(const char *location,
    struct ckpt_manifest **out, struct ckpt_error *err)
{
	struct ckpt_s3 *s3;
	char *key, *mkey = NULL, *mpath = NULL, *dir = NULL, *text = NULL;
	size_t kl, len = 0;
	int rc;

	*out = NULL;
	if (!ckpt_s3_is_url(location))
		return ckpt_manifest_read(location, out, err);
	if ((rc = ckpt_s3_url_client(location, &s3, &key, err)))
		return rc;
	kl = strlen(key);
	while (kl && key[kl - 1] == '/')
		key[--kl] = '\0';
	if (is_manifest_key(key)) {
		key[kl - strlen(CKPT_MANIFEST_NAME)] = '\0';
		kl = strlen(key);
		while (kl && key[kl - 1] == '/')
			key[--kl] = '\0';
	}
	/* key is now the checkpoint's prefix, without the trailing '/' */
	if (asprintf(&mkey, "%s%s%s", key, kl ? "/" : "",
	    CKPT_MANIFEST_NAME) < 0)
		mkey = NULL;
	if (asprintf(&mpath, "s3://%s/%s", ckpt_s3_bucket(s3),
	    mkey ? mkey : "") < 0)
		mpath = NULL;
	if (asprintf(&dir, "s3://%s/%s", ckpt_s3_bucket(s3), key) < 0)
		dir = NULL;
	if (!mkey || !mpath || !dir) {
		rc = ckpt_error_nomem(err);
		goto out;
	}
	rc = ckpt_s3_get_mem(s3, mkey, 0, CKPT_S3_TO_END, CKPT_MANIFEST_MAX,
	    &text, &len, NULL, err);
	if (rc == CKPT_ERR_NOTFOUND)
		ckpt_error_set(err, CKPT_ERR_NOTFOUND, mpath, -1, "no manifest "
		    "(not a committed checkpoint)");
	if (!rc)
		rc = ckpt_manifest_parse(text, len, mpath, dir, out, err);
out:
	free(mkey);
	free(mpath);
	free(dir);
	free(key);
	ckpt_s3_free(s3);
	return rc;
}

/* The jobs of one bucket (the first s3 job not yet done names it). */
static int
hash_bucket(struct ckpt_hash_job *jobs, size_t njobs, bool *done,
    unsigned nthreads, struct ckpt_error *err)
{
	struct ckpt_hash_job *sub = NULL;
	const char **keys = NULL;
	size_t *of = NULL, n = 0, first = 0;
	struct ckpt_s3 *s3 = NULL;
	char *key0 = NULL;
	int rc;

	while (first < njobs && done[first])
		first++;
	if ((rc = ckpt_s3_url_client(jobs[first].path, &s3, &key0, err)))
		return rc;
	sub = calloc(njobs, sizeof(*sub));
	keys = calloc(njobs, sizeof(*keys));
	of = calloc(njobs, sizeof(*of));
	if (!sub || !keys || !of) {
		rc = ckpt_error_nomem(err);
		goto out;
	}
	for (size_t i = first; i < njobs; i++) {
		const char *p = jobs[i].path, *b = ckpt_s3_bucket(s3);
		size_t bl = strlen(b);

		if (done[i] || strncmp(p + 5, b, bl) || (p[5 + bl] != '/' &&
		    p[5 + bl]))
			continue;
		done[i] = true;
		if (!p[5 + bl] || !p[5 + bl + 1]) {
			jobs[i].status = ckpt_error_set(&jobs[i].err,
			    CKPT_ERR_INVALID, p, -1, "names a bucket, not an "
			    "object");
			continue;
		}
		sub[n] = jobs[i];
		keys[n] = p + 5 + bl + 1;
		of[n++] = i;
	}
	rc = ckpt_s3_hash_jobs(s3, keys, sub, n, nthreads, err);
	for (size_t k = 0; k < n; k++)
		jobs[of[k]] = sub[k];
out:
	free(sub);
	free(keys);
	free(of);
	free(key0);
	ckpt_s3_free(s3);
	return rc;
}

int
ckpt_hash_locations(struct ckpt_hash_job *jobs, size_t njobs,
    unsigned int nthreads, ckpt_progress_fn progress, void *data,
    struct ckpt_error *err)
{
	struct ckpt_hash_job *local = NULL;
	size_t *of = NULL, nlocal = 0, nremote = 0;
	bool *done;
	int rc = CKPT_OK;

	for (size_t i = 0; i < njobs; i++)
		nremote += ckpt_s3_is_url(jobs[i].path);
	if (!nremote)
		return ckpt_hash_files(jobs, njobs, nthreads, progress, data,
		    err);
	done = calloc(njobs + 1, sizeof(*done));
	local = calloc(njobs + 1, sizeof(*local));
	of = calloc(njobs + 1, sizeof(*of));
	if (!done || !local || !of) {
		rc = ckpt_error_nomem(err);
		goto out;
	}
	for (size_t i = 0; i < njobs; i++) {
		if (ckpt_s3_is_url(jobs[i].path))
			continue;
		done[i] = true;
		local[nlocal] = jobs[i];
		of[nlocal++] = i;
	}
	if (nlocal) {
		/* Per-job outcomes are looked at below. */
		(void)ckpt_hash_files(local, nlocal, nthreads, progress, data,
		    NULL);
		for (size_t k = 0; k < nlocal; k++)
			jobs[of[k]] = local[k];
	}
	while (!rc && nremote) {
		size_t before = 0, after = 0;

		for (size_t i = 0; i < njobs; i++)
			before += !done[i];
		rc = hash_bucket(jobs, njobs, done, nthreads, err);
		for (size_t i = 0; i < njobs; i++)
			after += !done[i];
		nremote = after < before ? after : 0;
	}
	for (size_t i = 0; !rc && i < njobs; i++)
		if (jobs[i].status) {
			if (err)
				*err = jobs[i].err;
			rc = jobs[i].status;
		}
out:
	free(done);
	free(local);
	free(of);
	return rc;
}
