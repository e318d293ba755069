/* SPDX-License-Identifier: MIT */
/*
 * index.c - a per-run cache of what the listing read from each checkpoint,
 * so that ls, prune --dry-run and latest on a run of 100,000 checkpoints
 * need not open 200,000 small files.  It lives in the user's cache,
 * $XDG_CACHE_HOME/ckpt/index/ID/RUN (default ~/.cache/ckpt; ID: the first
 * 16 hex digits of the SHA-256 of the store's absolute path), not in the
 * store: listing, and every --dry-run, leave the store as it was, and a
 * read-only store gets an index too.
 *
 * It is a cache, never a source of truth:
 *  - Each record carries the stat stamp (inode, mtime, ctime in ns) of
 *    its checkpoint directory.  Creating, renaming or removing any file in
 *    a directory changes both times, so a record is used only while its
 *    directory's stamp is the same; else the checkpoint is read again.
 *    The header carries the run directory's stamp the same way: while it
 *    holds, the set of names is the recorded one.
 *  - A stamp taken less than RACY_NS before the index was written may not
 *    show a change made in the same clock tick (git's "racy" entries):
 *    it is recorded as racy and never trusted.
 *  - A SHA-256 of the whole file ends it; a missing, truncated, damaged,
 *    foreign-version or unsorted index is ignored and rewritten.
 *  - A destructive decision never uses it: prune itself (not --dry-run)
 *    lists with CKPT_LIST_NO_INDEX and reads every manifest.
 *  - It is written best effort (no cache directory: no index): a unique
 *    temporary file renamed into place, no fsync (a torn file fails its
 *    digest), the file itself never through a symbolic link.
 *
 * Format (little-endian): "CKPTIDX1", u32 version, u32 flags (1: run
 * stamp racy), u64 run inode, i64 run mtime ns, i64 run ctime ns, u32
 * count; then count records sorted by name, each u32 length then: u64
 * inode, i64 mtime ns, i64 ctime ns, u32 flags (1 racy, 2 failed), i64
 * step, i64 created, u64 size, u64 nfiles, f64 epoch, strings name,
 * created_iso, scope, note, validation, load_test (u32 length, 0xffffffff
 * for none, bytes), u32 metrics then (string, f64) each, u32 tags then
 * strings; last the SHA-256 of everything before it.
 */
#include "util/internal.h"

#include <fcntl.h>
#include <math.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "store/backend.h"
#include "store/store.h"

#define INDEX_MAGIC	"CKPTIDX1"
#define INDEX_VERSION	1u
#define INDEX_MAX	((size_t)1 << 31)
#define HEADER_SIZE	(8 + 4 + 4 + 8 + 8 + 8 + 4)
#define REC_FIXED	(8 + 8 + 8 + 4 + 8 + 8 + 8 + 8 + 8)
#define RACY_NS		(2LL * 1000000000LL)
#define NO_STRING	0xffffffffu

enum { REC_RACY = 1, REC_FAILED = 2 };

struct head {
	const unsigned char *rec;	/* after the length */
	size_t len;
	const char *name;
	uint32_t namelen;
	struct ckpt_stamp stamp;
	uint32_t flags;
	int64_t step;
};

struct ckpt_index {
	unsigned char *buf;
	size_t size;
	struct ckpt_stamp run;
	bool run_racy;
	struct head *heads;
	size_t n;
	uint32_t *slots;		/* open addressing: position + 1 */
	size_t mask;
};

/* FNV-1a, for the name lookups of a listing (one per checkpoint). */
static uint64_t
name_hash(const char *s, size_t n)
{
	uint64_t h = 0xcbf29ce484222325ull;

	for (size_t i = 0; i < n; i++)
		h = (h ^ (unsigned char)s[i]) * 0x100000001b3ull;
	return h;
}

static void
build_slots(struct ckpt_index *ix)
{
	size_t cap = 16;

	while (cap < 2 * ix->n)
		cap *= 2;
	ix->slots = calloc(cap, sizeof(*ix->slots));
	if (!ix->slots)
		return;		/* the binary search will do */
	ix->mask = cap - 1;
	for (size_t i = 0; i < ix->n; i++) {
		size_t k = (size_t)name_hash(ix->heads[i].name,
		    ix->heads[i].namelen) & ix->mask;

		while (ix->slots[k])
			k = (k + 1) & ix->mask;
		ix->slots[k] = (uint32_t)i + 1;
	}
}

static uint32_t
get32(const unsigned char *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	    (uint32_t)p[3] << 24;
}

static uint64_t
get64(const unsigned char *p)
{
	return (uint64_t)get32(p) | (uint64_t)get32(p + 4) << 32;
}

void
ckpt_stamp_of(const struct ckpt_be_info *info, struct ckpt_stamp *out)
{
	out->ino = info->ino;
	out->mtime_ns = info->mtime_ns;
	out->ctime_ns = info->ctime_ns;
}

bool
ckpt_stamp_usable(const struct ckpt_stamp *st)
{
	return st->ino || st->mtime_ns || st->ctime_ns;
}

/* Equal, and a stamp at all: a backend without stamps (all 0) never
 * lets the cache stand in for its files (backend.h). */
static bool
stamp_eq(const struct ckpt_stamp *a, const struct ckpt_stamp *b)
{
	return ckpt_stamp_usable(b) && a->ino == b->ino &&
	    a->mtime_ns == b->mtime_ns && a->ctime_ns == b->ctime_ns;
}

void
ckpt_index_free(struct ckpt_index *ix)
{
	if (!ix)
		return;
	free(ix->buf);
	free(ix->heads);
	free(ix->slots);
	free(ix);
}

/* Reads the whole file at fd; NULL on any problem. */
static unsigned char *
read_all(int fd, size_t *size)
{
	struct stat st;
	unsigned char *buf;
	size_t done = 0;
	ssize_t n;

	if (fstat(fd, &st) || !S_ISREG(st.st_mode) || st.st_size < 0 ||
	    (uint64_t)st.st_size > INDEX_MAX)
		return NULL;
	buf = malloc((size_t)st.st_size + 1);
	if (!buf)
		return NULL;
	while (done < (size_t)st.st_size) {
		n = read(fd, buf + done, (size_t)st.st_size - done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		done += (size_t)n;
	}
	if (done != (size_t)st.st_size) {
		free(buf);
		return NULL;
	}
	*size = done;
	return buf;
}

/* Skips one string at *p (bounded by end); false when it overruns. */
static bool
skip_string(const unsigned char **p, const unsigned char *end)
{
	uint32_t n;

	if (end - *p < 4)
		return false;
	n = get32(*p);
	*p += 4;
	if (n == NO_STRING)
		return true;
	if ((size_t)(end - *p) < n)
		return false;
	*p += n;
	return true;
}

/* Checks a record's bounds to the end, so that decoding cannot fail. */
static bool
record_ok(const unsigned char *p, const unsigned char *end)
{
	uint32_t k;

	p += REC_FIXED;
	for (int i = 0; i < 6; i++)
		if (!skip_string(&p, end))
			return false;
	if (end - p < 4)
		return false;
	k = get32(p);
	p += 4;
	for (uint32_t i = 0; i < k; i++) {
		if (!skip_string(&p, end) || end - p < 8)
			return false;
		p += 8;
	}
	if (end - p < 4)
		return false;
	k = get32(p);
	p += 4;
	for (uint32_t i = 0; i < k; i++)
		if (!skip_string(&p, end))
			return false;
	return p == end;
}

static bool
parse(struct ckpt_index *ix)
{
	const unsigned char *p = ix->buf, *end;
	unsigned char digest[CKPT_SHA256_BYTES];
	struct ckpt_sha256 sha;
	uint32_t count;

	if (ix->size < HEADER_SIZE + CKPT_SHA256_BYTES ||
	    memcmp(p, INDEX_MAGIC, 8) || get32(p + 8) != INDEX_VERSION)
		return false;
	end = ix->buf + ix->size - CKPT_SHA256_BYTES;
	if (ckpt_sha256_init(&sha, NULL))
		return false;
	ckpt_sha256_update(&sha, ix->buf, (size_t)(end - ix->buf));
	if (ckpt_sha256_final(&sha, digest, NULL) ||
	    memcmp(digest, end, CKPT_SHA256_BYTES))
		return false;
	ix->run_racy = get32(p + 12) & 1;
	ix->run.ino = get64(p + 16);
	ix->run.mtime_ns = (int64_t)get64(p + 24);
	ix->run.ctime_ns = (int64_t)get64(p + 32);
	count = get32(p + 40);
	p += HEADER_SIZE;
	if ((size_t)count > (size_t)(end - p) / (4 + REC_FIXED))
		return false;
	ix->heads = calloc(count ? count : 1, sizeof(*ix->heads));
	if (!ix->heads)
		return false;
	for (uint32_t i = 0; i < count; i++) {
		struct head *h = &ix->heads[i];
		uint32_t len;

		if (end - p < 4)
			return false;
		len = get32(p);
		p += 4;
		if ((size_t)(end - p) < len || len < REC_FIXED + 4 ||
		    !record_ok(p, p + len))
			return false;
		h->rec = p;
		h->len = len;
		h->stamp.ino = get64(p);
		h->stamp.mtime_ns = (int64_t)get64(p + 8);
		h->stamp.ctime_ns = (int64_t)get64(p + 16);
		h->flags = get32(p + 24);
		h->step = (int64_t)get64(p + 28);
		h->namelen = get32(p + REC_FIXED);
		if (h->namelen == NO_STRING || h->namelen == 0)
			return false;
		h->name = (const char *)p + REC_FIXED + 4;
		if (memchr(h->name, '\0', h->namelen))
			return false;
		if (i) {
			/* strictly sorted, for the binary search */
			const struct head *g = &ix->heads[i - 1];
			size_t m = g->namelen < h->namelen ? g->namelen :
			    h->namelen;
			int c = memcmp(g->name, h->name, m);

			if (c > 0 || (c == 0 && g->namelen >= h->namelen))
				return false;
		}
		p += len;
		ix->n++;
	}
	return p == end;
}

/*
 * The index directory of store s: $XDG_CACHE_HOME/ckpt/index/ID (or
 * ~/.cache/...), created when create is set.  NULL when there is none.
 */
static char *
index_dir(const struct ckpt_store *s, bool create)
{
	const char *env = getenv("XDG_CACHE_HOME"), *root = ckpt_store_root(s);
	unsigned char d[CKPT_SHA256_BYTES];
	struct ckpt_sha256 sha;
	char hex[2 * CKPT_SHA256_BYTES + 1], *base = NULL, *p = NULL;

	if (env && *env == '/') {
		base = strdup(env);
	} else if ((env = getenv("HOME")) && *env == '/') {
		if (asprintf(&base, "%s/.cache", env) < 0)
			base = NULL;
	}
	if (!base || ckpt_sha256_init(&sha, NULL)) {
		free(base);
		return NULL;
	}
	ckpt_sha256_update(&sha, root, strlen(root));
	if (ckpt_sha256_final(&sha, d, NULL)) {
		free(base);
		return NULL;
	}
	ckpt_hex(d, 8, hex);
	if (create) {
		char *q = NULL;

		(void)!mkdir(base, 0700);
		if (asprintf(&q, "%s/ckpt", base) >= 0) {
			(void)!mkdir(q, 0700);
			free(q);
		}
		if (asprintf(&q, "%s/ckpt/index", base) >= 0) {
			(void)!mkdir(q, 0700);
			free(q);
		}
	}
	if (asprintf(&p, "%s/ckpt/index/%s", base, hex) < 0)
		p = NULL;
	free(base);
	if (p && create)
		(void)!mkdir(p, 0700);
	return p;
}

int
ckpt_index_load(const struct ckpt_store *s, const char *run,
    struct ckpt_index **out)
{
	struct ckpt_index *ix;
	char *dir = index_dir(s, false);
	int dfd, fd;

	*out = NULL;
	dfd = dir ? open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC) : -1;
	free(dir);
	if (dfd < 0)
		return -1;
	fd = openat(dfd, run, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	close(dfd);
	if (fd < 0)
		return -1;
	ix = calloc(1, sizeof(*ix));
	if (ix)
		ix->buf = read_all(fd, &ix->size);
	close(fd);
	if (!ix || !ix->buf || !parse(ix)) {
		ckpt_index_free(ix);
		return -1;
	}
	build_slots(ix);
	*out = ix;
	return 0;
}

bool
ckpt_index_run_fresh(const struct ckpt_index *ix,
    const struct ckpt_stamp *run)
{
	return ix && !ix->run_racy && stamp_eq(&ix->run, run);
}

size_t
ckpt_index_count(const struct ckpt_index *ix)
{
	return ix ? ix->n : 0;
}

int64_t
ckpt_index_step(const struct ckpt_index *ix, size_t i)
{
	return ix->heads[i].step;
}

bool
ckpt_index_failed(const struct ckpt_index *ix, size_t i)
{
	return ix->heads[i].flags & REC_FAILED;
}

uint64_t
ckpt_index_ino(const struct ckpt_index *ix, size_t i)
{
	return ix->heads[i].stamp.ino;
}

/* The record's name, copied into buf (NUL-terminated). */
const char *
ckpt_index_name(const struct ckpt_index *ix, size_t i, char *buf,
    size_t len)
{
	const struct head *h = &ix->heads[i];
	size_t n = h->namelen < len - 1 ? h->namelen : len - 1;

	memcpy(buf, h->name, n);
	buf[n] = '\0';
	return buf;
}

bool
ckpt_index_find(const struct ckpt_index *ix, const char *name, size_t *at)
{
	size_t lo = 0, hi = ix ? ix->n : 0, len = strlen(name);

	if (ix && ix->slots) {
		size_t k = (size_t)name_hash(name, len) & ix->mask;

		for (; ix->slots[k]; k = (k + 1) & ix->mask) {
			const struct head *h = &ix->heads[ix->slots[k] - 1];

			if (h->namelen == len && !memcmp(h->name, name, len)) {
				*at = ix->slots[k] - 1;
				return true;
			}
		}
		return false;
	}
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		const struct head *h = &ix->heads[mid];
		size_t m = h->namelen < len ? h->namelen : len;
		int c = memcmp(h->name, name, m);

		if (c == 0)
			c = h->namelen < len ? -1 : h->namelen > len;
		if (c == 0) {
			*at = mid;
			return true;
		}
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return false;
}

bool
ckpt_index_matches(const struct ckpt_index *ix, size_t i,
    const struct ckpt_stamp *now)
{
	return !(ix->heads[i].flags & REC_RACY) &&
	    stamp_eq(&ix->heads[i].stamp, now);
}

/* The string at *p in pool (shared with like when equal), NULL for
 * none; a NUL inside ends it, as strndup's copy did. */
static const char *
take_string(const unsigned char **p, struct ckpt_pool *pool,
    const char *like, bool *oom)
{
	uint32_t n = get32(*p);
	const char *s;

	*p += 4;
	if (n == NO_STRING)
		return NULL;
	s = ckpt_pool_strndup(pool, (const char *)*p, strnlen((const char *)*p,
	    n), like);
	if (!s)
		*oom = true;
	*p += n;
	return s;
}

/* Steps over the string at *p. */
static void
pass_string(const unsigned char **p)
{
	uint32_t n = get32(*p);

	*p += 4 + (n == NO_STRING ? 0 : n);
}

static double
get_double(const unsigned char *p)
{
	uint64_t u = get64(p);
	double d;

	memcpy(&d, &u, sizeof(d));
	return d;
}

int
ckpt_index_decode(const struct ckpt_index *ix, size_t i,
    struct ckpt_pool *pool, const struct ckpt_entry *prev,
    struct ckpt_entry_priv *pv)
{
	const struct head *h = &ix->heads[i];
	const unsigned char *p = h->rec;
	struct ckpt_entry *e = &pv->e;
	struct ckpt_metric *metrics;
	const char **tags;
	bool oom = false;
	uint32_t k;

	e->step = h->step;
	e->failed = h->flags & REC_FAILED;
	e->created = (int64_t)get64(p + 36);
	e->size = get64(p + 44);
	e->nfiles = get64(p + 52);
	e->epoch = get_double(p + 60);
	p += REC_FIXED;
	pass_string(&p);	/* the name: the caller has it */
#define LIKE(f) (prev ? prev->f : NULL)
	e->created_iso = take_string(&p, pool, LIKE(created_iso), &oom);
	e->scope = take_string(&p, pool, LIKE(scope), &oom);
	e->note = take_string(&p, pool, LIKE(note), &oom);
	e->validation_raw = take_string(&p, pool, LIKE(validation_raw), &oom);
	e->load_test_raw = take_string(&p, pool, LIKE(load_test_raw), &oom);
#undef LIKE
	e->validation = ckpt_check_result_parse(e->validation_raw);
	e->load_test = ckpt_check_result_parse(e->load_test_raw);
	k = get32(p);
	p += 4;
	if (k) {
		if (!(metrics = ckpt_pool_alloc(pool, k * sizeof(*metrics))))
			return -1;
		for (uint32_t j = 0; j < k; j++) {
			metrics[j].name = take_string(&p, pool, prev &&
			    j < prev->nmetrics ? prev->metrics[j].name : NULL,
			    &oom);
			metrics[j].value = get_double(p);
			p += 8;
			if (!metrics[j].name)
				oom = true;
			else
				e->nmetrics++;
		}
		e->metrics = metrics;
	}
	k = get32(p);
	p += 4;
	if (k) {
		if (!(tags = ckpt_pool_alloc(pool, k * sizeof(*tags))))
			return -1;
		for (uint32_t j = 0; j < k; j++) {
			tags[j] = take_string(&p, pool, prev && j < prev->ntags ?
			    prev->tags[j] : NULL, &oom);
			if (!tags[j])
				oom = true;
			else
				e->ntags++;
		}
		e->tags = tags;
	}
	return oom ? -1 : 0;
}

/* ------------------------------------------------------------------ */
/* Writing                                                             */
/* ------------------------------------------------------------------ */

struct wrec {
	size_t off, len;		/* in the writer's buffer */
	const char *name;		/* into the buffer, not NUL-ended */
	uint32_t namelen;
};

struct ckpt_index_writer {
	unsigned char *buf;
	size_t len, cap;
	struct wrec *recs;
	size_t n, rcap;
	struct ckpt_stamp run;
	int64_t now_ns;
	bool failed;			/* out of memory: write nothing */
};

static void
put_bytes(struct ckpt_index_writer *w, const void *p, size_t n)
{
	if (w->failed)
		return;
	if (w->cap - w->len < n) {
		size_t cap = w->cap ? w->cap : 1 << 16;
		unsigned char *b;

		while (cap - w->len < n)
			cap *= 2;
		if (!(b = realloc(w->buf, cap))) {
			w->failed = true;
			return;
		}
		w->buf = b;
		w->cap = cap;
	}
	memcpy(w->buf + w->len, p, n);
	w->len += n;
}

static void
put32(struct ckpt_index_writer *w, uint32_t v)
{
	unsigned char b[4] = { (unsigned char)v, (unsigned char)(v >> 8),
		(unsigned char)(v >> 16), (unsigned char)(v >> 24) };

	put_bytes(w, b, 4);
}

static void
put64(struct ckpt_index_writer *w, uint64_t v)
{
	put32(w, (uint32_t)v);
	put32(w, (uint32_t)(v >> 32));
}

static void
put_double(struct ckpt_index_writer *w, double d)
{
	uint64_t u;

	memcpy(&u, &d, sizeof(u));
	put64(w, u);
}

static void
put_string(struct ckpt_index_writer *w, const char *s)
{
	size_t n = s ? strlen(s) : 0;

	if (!s || n >= NO_STRING) {
		put32(w, NO_STRING);
		return;
	}
	put32(w, (uint32_t)n);
	put_bytes(w, s, n);
}

static bool
racy(const struct ckpt_stamp *st, int64_t now_ns)
{
	return st->mtime_ns > now_ns - RACY_NS ||
	    st->ctime_ns > now_ns - RACY_NS;
}

struct ckpt_index_writer *
ckpt_index_writer_new(const struct ckpt_stamp *run)
{
	struct ckpt_index_writer *w;
	struct timespec ts;

	if (!ckpt_stamp_usable(run) || !(w = calloc(1, sizeof(*w))))
		return NULL;
	w->run = *run;
	clock_gettime(CLOCK_REALTIME, &ts);
	w->now_ns = (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
	put_bytes(w, INDEX_MAGIC, 8);
	put32(w, INDEX_VERSION);
	put32(w, racy(&w->run, w->now_ns) ? 1 : 0);
	put64(w, w->run.ino);
	put64(w, (uint64_t)w->run.mtime_ns);
	put64(w, (uint64_t)w->run.ctime_ns);
	put32(w, 0);		/* the count, set at commit */
	return w;
}

void
ckpt_index_writer_add(struct ckpt_index_writer *w, const char *name,
    const struct ckpt_stamp *st, const struct ckpt_entry *e)
{
	const struct ckpt_stamp stamp = *st;
	size_t start, len_at;

	if (!w || w->failed)
		return;
	if (w->n == w->rcap) {
		size_t cap = w->rcap ? 2 * w->rcap : 1024;
		struct wrec *r = reallocarray(w->recs, cap, sizeof(*r));

		if (!r) {
			w->failed = true;
			return;
		}
		w->recs = r;
		w->rcap = cap;
	}
	len_at = w->len;
	put32(w, 0);
	start = w->len;
	put64(w, stamp.ino);
	put64(w, (uint64_t)stamp.mtime_ns);
	put64(w, (uint64_t)stamp.ctime_ns);
	put32(w, (racy(&stamp, w->now_ns) ? REC_RACY : 0) |
	    (e->failed ? REC_FAILED : 0));
	put64(w, (uint64_t)e->step);
	put64(w, (uint64_t)e->created);
	put64(w, e->size);
	put64(w, e->nfiles);
	put_double(w, e->epoch);
	put_string(w, name);
	put_string(w, e->created_iso);
	put_string(w, e->scope);
	put_string(w, e->note);
	put_string(w, e->validation_raw);
	put_string(w, e->load_test_raw);
	put32(w, (uint32_t)e->nmetrics);
	for (size_t i = 0; i < e->nmetrics; i++) {
		put_string(w, e->metrics[i].name);
		put_double(w, e->metrics[i].value);
	}
	put32(w, (uint32_t)e->ntags);
	for (size_t i = 0; i < e->ntags; i++)
		put_string(w, e->tags[i]);
	if (w->failed)
		return;
	{
		uint32_t len = (uint32_t)(w->len - start);
		unsigned char b[4] = { (unsigned char)len,
			(unsigned char)(len >> 8), (unsigned char)(len >> 16),
			(unsigned char)(len >> 24) };

		memcpy(w->buf + len_at, b, 4);
	}
	w->recs[w->n].off = len_at;
	w->recs[w->n].len = w->len - len_at;
	w->recs[w->n].namelen = (uint32_t)strlen(name);
	w->n++;
}

void
ckpt_index_writer_free(struct ckpt_index_writer *w)
{
	if (!w)
		return;
	free(w->buf);
	free(w->recs);
	free(w);
}

/* By name; base: the writer's buffer (qsort_r: no global state). */
static int
cmp_wrec(const void *a, const void *b, void *base)
{
	const struct wrec *x = a, *y = b;
	const char *nx = (const char *)base + x->off + 4 + REC_FIXED + 4;
	const char *ny = (const char *)base + y->off + 4 + REC_FIXED + 4;
	size_t m = x->namelen < y->namelen ? x->namelen : y->namelen;
	int c = memcmp(nx, ny, m);

	if (c)
		return c;
	return x->namelen < y->namelen ? -1 : x->namelen > y->namelen;
}

/* Writes fd fully; false on any error. */
static bool
write_fully(int fd, const unsigned char *p, size_t n)
{
	while (n) {
		ssize_t k = write(fd, p, n);

		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			return false;
		p += k;
		n -= (size_t)k;
	}
	return true;
}

void
ckpt_index_writer_commit(struct ckpt_index_writer *w,
    const struct ckpt_store *s, const char *run)
{
	struct ckpt_index_writer out = { 0 };
	unsigned char digest[CKPT_SHA256_BYTES];
	struct ckpt_sha256 sha;
	char tmp[CKPT_NAME_MAX + 32];
	int dfd = -1, fd = -1;
	char *dir = NULL;

	if (!w || w->failed || w->n > 0xffffffffu)
		goto done;
	/* sorted by name: a copy of the header, then the records */
	if (w->n)	/* qsort_r(NULL, 0, ...) is undefined (UBSan) */
		qsort_r(w->recs, w->n, sizeof(*w->recs), cmp_wrec, w->buf);
	put_bytes(&out, w->buf, HEADER_SIZE);
	for (size_t i = 0; i < w->n; i++) {
		if (i && !cmp_wrec(&w->recs[i - 1], &w->recs[i], w->buf))
			goto done;	/* a duplicate name: not indexable */
		put_bytes(&out, w->buf + w->recs[i].off, w->recs[i].len);
	}
	if (out.failed || ckpt_sha256_init(&sha, NULL))
		goto done;
	{
		uint32_t n = (uint32_t)w->n;
		unsigned char b[4] = { (unsigned char)n,
			(unsigned char)(n >> 8), (unsigned char)(n >> 16),
			(unsigned char)(n >> 24) };

		memcpy(out.buf + 40, b, 4);
	}
	ckpt_sha256_update(&sha, out.buf, out.len);
	if (ckpt_sha256_final(&sha, digest, NULL))
		goto done;
	put_bytes(&out, digest, sizeof(digest));
	if (out.failed)
		goto done;
	dir = index_dir(s, true);
	dfd = dir ? open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC) : -1;
	if (dfd < 0)
		goto done;
	for (int attempt = 0; attempt < 8 && fd < 0; attempt++) {
		snprintf(tmp, sizeof(tmp), ".tmp-%s.%ld.%x", run,
		    (long)getpid(), (unsigned)(w->now_ns >> 8) ^
		    (unsigned)attempt * 0x9e3779b9u);
		fd = openat(dfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW |
		    O_CLOEXEC, 0600);
		if (fd < 0 && errno != EEXIST)
			break;
	}
	if (fd < 0)
		goto done;
	if (!write_fully(fd, out.buf, out.len) || close(fd)) {
		fd = -1;
		unlinkat(dfd, tmp, 0);
		goto done;
	}
	fd = -1;
	if (renameat(dfd, tmp, dfd, run))
		unlinkat(dfd, tmp, 0);
done:
	if (fd >= 0)
		close(fd);
	if (dfd >= 0)
		close(dfd);
	free(dir);
	free(out.buf);
	ckpt_index_writer_free(w);
}

/* ------------------------------------------------------------------ */
/* For the fuzz harness                                                */
/* ------------------------------------------------------------------ */

/*
 * Parses an index file held in memory and decodes and looks up every
 * record, as a listing would: 0 when it is a valid index, -1 when it
 * would be ignored (tests/fuzz/fuzz-index.c).
 */
int
ckpt_index_check(const void *data, size_t size)
{
	struct ckpt_index *ix = calloc(1, sizeof(*ix));
	char name[CKPT_NAME_MAX + 64];
	int rc = 0;

	if (!ix || !(ix->buf = malloc(size ? size : 1))) {
		free(ix);
		return -1;
	}
	memcpy(ix->buf, data, size);
	ix->size = size;
	if (!parse(ix)) {
		ckpt_index_free(ix);
		return -1;
	}
	build_slots(ix);
	for (size_t i = 0; i < ix->n; i++) {
		struct ckpt_entry_priv p[2];
		struct ckpt_pool pool = { 0 };
		size_t at;

		/* the second shares what it can with the first */
		memset(p, 0, sizeof(p));
		if (ckpt_index_decode(ix, i, &pool, NULL, &p[0]) ||
		    ckpt_index_decode(ix, i, &pool, &p[0].e, &p[1]))
			rc = -1;
		ckpt_pool_release(&pool);
		ckpt_index_name(ix, i, name, sizeof(name));
		if (strlen(name) == ix->heads[i].namelen &&
		    (!ckpt_index_find(ix, name, &at) || at != i))
			rc = -1;	/* sorted and unique: must find
					 * itself */
	}
	ckpt_index_free(ix);
	return rc;
}
