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
 *  - A SHA-256 of the whole file ends it; a missing, truncated, damaged
 *    or foreign-version index is ignored and rewritten.  It is checked
 *    on a first pass through the file, which keeps 24 bytes per record;
 *    a record is read again when the listing needs it, its bounds and
 *    heads checked again (a file changed in place since then: the
 *    record is not used, the checkpoint's files are read).
 *  - A destructive decision never uses it: prune itself (not --dry-run)
 *    lists with CKPT_LIST_NO_INDEX and reads every manifest.
 *  - It is written best effort (no cache directory: no index): a unique
 *    temporary file renamed into place, no fsync (a torn file fails its
 *    digest), the file itself never through a symbolic link.
 *  - Records are in the order the listing met them (readdir's, which
 *    the next listing follows again: the file is read forward, a block
 *    at a time, and looked up by hash only when the order differs).
 *    Two records of one name (never written) stand for one directory:
 *    the first is used, and its stamp decides as for any other.
 *
 * Format (little-endian): "CKPTIDX1", u32 version (2), u32 flags (1: run
 * stamp racy), u64 run inode, i64 run mtime ns, i64 run ctime ns, u32
 * count; then count records, each u32 length then: u64
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
#define INDEX_VERSION	2u
#define INDEX_MAX	((size_t)1 << 31)
#define HEADER_SIZE	(8 + 4 + 4 + 8 + 8 + 8 + 4)
#define REC_FIXED	(8 + 8 + 8 + 4 + 8 + 8 + 8 + 8 + 8)
#define RACY_NS		(2LL * 1000000000LL)
#define NO_STRING	0xffffffffu
#define WINDOW		((size_t)64 * 1024)

enum { REC_RACY = 1, REC_FAILED = 2 };

/* What the listing needs of a record without reading it again. */
struct head {
	uint32_t off;			/* of the record, after its length */
	uint32_t len;
	int64_t step;
	uint32_t flags;
	uint32_t hash;			/* of its name */
};

/*
 * The records are not kept: a window of the file is, and a record is
 * read again (pread) when the listing asks for one outside it.  The
 * listing asks in the order the index was written (the directory's),
 * so the window moves forward a block at a time.
 */
struct ckpt_index {
	int fd;				/* -1: mem holds the file */
	const unsigned char *mem;
	size_t end;			/* where the digest starts */
	struct ckpt_stamp run;
	bool run_racy;
	struct head *heads;
	size_t n;
	uint32_t *slots;		/* open addressing: position + 1 */
	size_t mask;
	bool no_slots;			/* could not build them */
	size_t cursor;			/* the record a listing asks next */
	size_t last;			/* the record read last, + 1 */
	unsigned char *win;
	size_t win_off, win_len, win_cap;
};

/* FNV-1a, for the name lookups of a listing (one per checkpoint). */
static uint32_t
name_hash(const char *s, size_t n)
{
	uint64_t h = 0xcbf29ce484222325ull;

	for (size_t i = 0; i < n; i++)
		h = (h ^ (unsigned char)s[i]) * 0x100000001b3ull;
	return (uint32_t)(h ^ h >> 32);
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
	if (ix->fd >= 0)
		close(ix->fd);
	free(ix->win);
	free(ix->heads);
	free(ix->slots);
	free(ix);
}

/* n bytes of the file at off into buf; false when it has fewer. */
static bool
read_at(const struct ckpt_index *ix, size_t off, unsigned char *buf,
    size_t n)
{
	size_t done = 0;
	ssize_t k;

	if (ix->fd < 0) {
		memcpy(buf, ix->mem + off, n);	/* bounded by the caller */
		return true;
	}
	while (done < n) {
		k = pread(ix->fd, buf + done, n - done, (off_t)(off + done));
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			return false;
		done += (size_t)k;
	}
	return true;
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

/* Checks a record's bounds to the end, so that decoding cannot fail,
 * and that it has a name (not empty, no NUL). */
static bool
record_ok(const unsigned char *p, const unsigned char *end)
{
	const unsigned char *name = p + REC_FIXED + 4;
	uint32_t k;

	if (end - p < REC_FIXED + 4)
		return false;
	k = get32(p + REC_FIXED);
	if (k == NO_STRING || k == 0 || (size_t)(end - name) < k ||
	    memchr(name, '\0', k))
		return false;
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

static void
head_of(struct head *h, const unsigned char *rec, size_t off, size_t len)
{
	h->off = (uint32_t)off;
	h->len = (uint32_t)len;
	h->flags = get32(rec + 24);
	h->step = (int64_t)get64(rec + 28);
	h->hash = name_hash((const char *)rec + REC_FIXED + 4,
	    get32(rec + REC_FIXED));
}

/*
 * The window holds file bytes [win_off, win_off + win_len).  Makes it
 * hold [at, at + need) (at least), reading forward from at as much as
 * fits up to ix->end; sha, when given, sees each byte read once (the
 * first pass reads the file in order).
 */
static bool
window_fill(struct ckpt_index *ix, size_t at, size_t need, size_t want,
    struct ckpt_sha256 *sha)
{
	size_t keep = 0, n;

	if (at > ix->end || need > ix->end - at)
		return false;
	if (at >= ix->win_off && at + need <= ix->win_off + ix->win_len)
		return true;
	if (sha && (at < ix->win_off || at > ix->win_off + ix->win_len))
		return false;	/* the digest must see every byte, once */
	if (sha) {
		/* reading on: keep the bytes from at already read */
		keep = ix->win_off + ix->win_len - at;
		if (keep)	/* no window yet: memmove(NULL) is undefined */
			memmove(ix->win, ix->win + (at - ix->win_off), keep);
	}
	if (want < need)
		want = need;
	if (want > ix->end - at)
		want = ix->end - at;
	if (want > ix->win_cap) {
		unsigned char *w = realloc(ix->win, want);

		if (!w)
			return false;
		ix->win = w;
		ix->win_cap = want;
	}
	ix->win_off = at;
	ix->win_len = keep;
	n = want - keep;
	if (n && !read_at(ix, at + keep, ix->win + keep, n)) {
		ix->win_len = 0;
		return false;
	}
	if (sha)
		ckpt_sha256_update(sha, ix->win + keep, n);
	ix->win_len = want;
	return true;
}

/*
 * Reads the whole file once, in order: its digest, the header, and the
 * bounds of every record (so that decoding one cannot fail), keeping
 * only the heads.  size: the file's.
 */
static bool
parse(struct ckpt_index *ix, size_t size)
{
	unsigned char digest[CKPT_SHA256_BYTES], want[CKPT_SHA256_BYTES];
	const unsigned char *p;
	struct ckpt_sha256 sha;
	size_t pos = HEADER_SIZE;
	uint32_t count;

	if (size < HEADER_SIZE + CKPT_SHA256_BYTES || size > INDEX_MAX)
		return false;
	ix->end = size - CKPT_SHA256_BYTES;
	if (ckpt_sha256_init(&sha, NULL) ||
	    !window_fill(ix, 0, HEADER_SIZE, WINDOW, &sha))
		return false;
	p = ix->win;
	if (memcmp(p, INDEX_MAGIC, 8) || get32(p + 8) != INDEX_VERSION)
		return false;
	ix->run_racy = get32(p + 12) & 1;
	ix->run.ino = get64(p + 16);
	ix->run.mtime_ns = (int64_t)get64(p + 24);
	ix->run.ctime_ns = (int64_t)get64(p + 32);
	count = get32(p + 40);
	if ((size_t)count > (ix->end - HEADER_SIZE) / (4 + REC_FIXED))
		return false;
	ix->heads = calloc(count ? count : 1, sizeof(*ix->heads));
	if (!ix->heads)
		return false;
	for (uint32_t i = 0; i < count; i++) {
		uint32_t len;

		if (!window_fill(ix, pos, 4, WINDOW, &sha))
			return false;
		len = get32(ix->win + (pos - ix->win_off));
		pos += 4;
		if (len > ix->end - pos || !window_fill(ix, pos, len, WINDOW,
		    &sha))
			return false;
		p = ix->win + (pos - ix->win_off);
		if (!record_ok(p, p + len))
			return false;
		head_of(&ix->heads[i], p, pos, len);
		pos += len;
		ix->n++;
	}
	/* nothing after the last record but the digest */
	if (pos != ix->end || !window_fill(ix, pos, 0, 0, &sha) ||
	    ix->win_off + ix->win_len != ix->end)
		return false;
	if (ckpt_sha256_final(&sha, digest, NULL) ||
	    !read_at(ix, ix->end, want, sizeof(want)))
		return false;
	ix->last = SIZE_MAX;
	return !memcmp(digest, want, sizeof(want));
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
	struct stat st;
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
	if (fstat(fd, &st) || !S_ISREG(st.st_mode) || st.st_size < 0 ||
	    !(ix = calloc(1, sizeof(*ix)))) {
		close(fd);
		return -1;
	}
	ix->fd = fd;
	if (!parse(ix, (uint64_t)st.st_size > INDEX_MAX ? SIZE_MAX :
	    (size_t)st.st_size)) {
		ckpt_index_free(ix);
		return -1;
	}
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

/*
 * Record i, read again when the window does not hold it (a block ahead
 * when the listing goes on in order, else just the record); NULL when
 * the file no longer gives what the first pass read (changed in place:
 * the record is then not used).
 */
static const unsigned char *
record(struct ckpt_index *ix, size_t i)
{
	const struct head *h = &ix->heads[i];
	const unsigned char *p;
	struct head again;

	if (ix->fd < 0)
		return ix->mem + h->off;	/* checked whole, unchanging */
	if (!window_fill(ix, h->off, h->len, ix->last == i ? WINDOW : 0,
	    NULL))
		return NULL;
	ix->last = i + 1;
	p = ix->win + (h->off - ix->win_off);
	if (!record_ok(p, p + h->len))
		return NULL;
	head_of(&again, p, h->off, h->len);
	return memcmp(&again, h, sizeof(again)) ? NULL : p;
}

/* The record's name, copied into buf (NUL-terminated); NULL when it
 * cannot be read. */
const char *
ckpt_index_name(struct ckpt_index *ix, size_t i, char *buf, size_t len)
{
	const unsigned char *p = record(ix, i);
	size_t n;

	if (!p)
		return NULL;
	n = get32(p + REC_FIXED);
	if (n > len - 1)
		n = len - 1;
	memcpy(buf, p + REC_FIXED + 4, n);
	buf[n] = '\0';
	return buf;
}

static bool
name_is(struct ckpt_index *ix, size_t i, const char *name, size_t len,
    uint32_t hash)
{
	const unsigned char *p;

	if (ix->heads[i].hash != hash || !(p = record(ix, i)))
		return false;
	return get32(p + REC_FIXED) == len && !memcmp(p + REC_FIXED + 4, name,
	    len);
}

/* The hash table of the names, built at the first lookup out of order:
 * a listing of an unchanged run never needs it. */
static bool
build_slots(struct ckpt_index *ix)
{
	size_t cap = 16;

	if (ix->slots || ix->no_slots)
		return ix->slots != NULL;
	while (cap < 2 * ix->n)
		cap *= 2;
	if (!(ix->slots = calloc(cap, sizeof(*ix->slots)))) {
		ix->no_slots = true;
		return false;
	}
	ix->mask = cap - 1;
	for (size_t i = 0; i < ix->n; i++) {
		size_t k = ix->heads[i].hash & ix->mask;

		while (ix->slots[k])
			k = (k + 1) & ix->mask;
		ix->slots[k] = (uint32_t)i + 1;
	}
	return true;
}

/*
 * The record named name: the one after the last found when the listing
 * goes in the index's order, else by hash (the first of that name).
 */
bool
ckpt_index_find(struct ckpt_index *ix, const char *name, size_t *at)
{
	size_t len = strlen(name);
	uint32_t hash = name_hash(name, len);

	if (!ix)
		return false;
	if (ix->cursor < ix->n && name_is(ix, ix->cursor, name, len, hash)) {
		*at = ix->cursor++;
		return true;
	}
	if (!build_slots(ix))
		return false;	/* no memory: read the files */
	for (size_t k = hash & ix->mask; ix->slots[k]; k = (k + 1) &
	    ix->mask) {
		size_t i = ix->slots[k] - 1;

		if (name_is(ix, i, name, len, hash)) {
			*at = i;
			ix->cursor = i + 1;
			return true;
		}
	}
	return false;
}

bool
ckpt_index_stamp(struct ckpt_index *ix, size_t i, struct ckpt_stamp *out)
{
	const unsigned char *p = i < ix->n ? record(ix, i) : NULL;

	if (!p)
		return false;
	out->ino = get64(p);
	out->mtime_ns = (int64_t)get64(p + 8);
	out->ctime_ns = (int64_t)get64(p + 16);
	return true;
}

bool
ckpt_index_matches(struct ckpt_index *ix, size_t i,
    const struct ckpt_stamp *now)
{
	struct ckpt_stamp rec;

	if ((ix->heads[i].flags & REC_RACY) || !ckpt_index_stamp(ix, i, &rec))
		return false;
	return stamp_eq(&rec, now);
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
ckpt_index_decode(struct ckpt_index *ix, size_t i, struct ckpt_pool *pool,
    const struct ckpt_entry *prev, struct ckpt_entry_priv *pv)
{
	const struct head *h = &ix->heads[i];
	const unsigned char *p = record(ix, i);
	struct ckpt_entry *e = &pv->e;
	struct ckpt_metric *metrics;
	const char **tags;
	bool oom = false;
	uint32_t k;

	if (!p)
		return 1;
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

/*
 * The file is written as the listing gives its records (the directory's
 * order, which the next listing reads in again), through a block buffer
 * into a temporary file renamed into place at commit: no copy of the
 * index is held.
 */
struct ckpt_index_writer {
	unsigned char *buf;		/* what is not written yet */
	size_t len, cap;
	unsigned char *rec;		/* the record being built */
	size_t rlen, rcap;
	struct ckpt_sha256 sha;
	uint32_t count, added;
	int64_t now_ns;
	int dfd, fd;
	char tmp[CKPT_NAME_MAX + 64], run[CKPT_NAME_MAX + 1];
	bool failed;			/* write nothing */
};

/* Appends n bytes to *b (len, cap); false when out of memory. */
static bool
grow_put(unsigned char **b, size_t *len, size_t *cap, const void *p,
    size_t n)
{
	if (*cap - *len < n) {
		size_t c = *cap ? *cap : 4096;
		unsigned char *nb;

		while (c - *len < n)
			c *= 2;
		if (!(nb = realloc(*b, c)))
			return false;
		*b = nb;
		*cap = c;
	}
	memcpy(*b + *len, p, n);
	*len += n;
	return true;
}

static void
put_bytes(struct ckpt_index_writer *w, const void *p, size_t n)
{
	if (!w->failed && !grow_put(&w->rec, &w->rlen, &w->rcap, p, n))
		w->failed = true;
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

/* Writes out the block buffer (all of it when all, else when full). */
static void
flush(struct ckpt_index_writer *w, bool all)
{
	if (w->failed || (!all && w->len < WINDOW))
		return;
	if (!write_fully(w->fd, w->buf, w->len))
		w->failed = true;
	w->len = 0;
}

/* The record built in w->rec, with its length, into the file. */
static void
emit(struct ckpt_index_writer *w, const void *p, size_t n)
{
	if (w->failed)
		return;
	ckpt_sha256_update(&w->sha, p, n);
	if (!grow_put(&w->buf, &w->len, &w->cap, p, n))
		w->failed = true;
	flush(w, false);
}

static bool
racy(const struct ckpt_stamp *st, int64_t now_ns)
{
	return st->mtime_ns > now_ns - RACY_NS ||
	    st->ctime_ns > now_ns - RACY_NS;
}

void
ckpt_index_writer_free(struct ckpt_index_writer *w)
{
	if (!w)
		return;
	if (w->fd >= 0) {
		close(w->fd);
		unlinkat(w->dfd, w->tmp, 0);
	}
	if (w->dfd >= 0)
		close(w->dfd);
	free(w->buf);
	free(w->rec);
	free(w);
}

struct ckpt_index_writer *
ckpt_index_writer_new(const struct ckpt_store *s, const char *run,
    const struct ckpt_stamp *st, size_t count)
{
	struct ckpt_index_writer *w;
	struct timespec ts;
	char *dir;

	if (!ckpt_stamp_usable(st) || count > 0xffffffffu ||
	    strlen(run) >= sizeof(w->run) || !(w = calloc(1, sizeof(*w))))
		return NULL;
	w->fd = -1;
	w->count = (uint32_t)count;
	snprintf(w->run, sizeof(w->run), "%s", run);
	clock_gettime(CLOCK_REALTIME, &ts);
	w->now_ns = (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
	dir = index_dir(s, true);
	w->dfd = dir ? open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC) : -1;
	free(dir);
	for (int attempt = 0; attempt < 8 && w->dfd >= 0 && w->fd < 0;
	    attempt++) {
		snprintf(w->tmp, sizeof(w->tmp), ".tmp-%s.%ld.%x", run,
		    (long)getpid(), (unsigned)(w->now_ns >> 8) ^
		    (unsigned)attempt * 0x9e3779b9u);
		w->fd = openat(w->dfd, w->tmp, O_WRONLY | O_CREAT | O_EXCL |
		    O_NOFOLLOW | O_CLOEXEC, 0600);
		if (w->fd < 0 && errno != EEXIST)
			break;
	}
	if (w->fd < 0 || ckpt_sha256_init(&w->sha, NULL)) {
		ckpt_index_writer_free(w);
		return NULL;
	}
	put_bytes(w, INDEX_MAGIC, 8);
	put32(w, INDEX_VERSION);
	put32(w, racy(st, w->now_ns) ? 1 : 0);
	put64(w, st->ino);
	put64(w, (uint64_t)st->mtime_ns);
	put64(w, (uint64_t)st->ctime_ns);
	put32(w, w->count);
	emit(w, w->rec, w->rlen);
	w->rlen = 0;
	return w;
}

void
ckpt_index_writer_add(struct ckpt_index_writer *w, const char *name,
    const struct ckpt_stamp *st, const struct ckpt_entry *e)
{
	unsigned char b[4];
	uint32_t len;

	if (!w || w->failed)
		return;
	if (w->added == w->count) {
		w->failed = true;	/* more than announced */
		return;
	}
	w->rlen = 0;
	put64(w, st->ino);
	put64(w, (uint64_t)st->mtime_ns);
	put64(w, (uint64_t)st->ctime_ns);
	put32(w, (racy(st, w->now_ns) ? REC_RACY : 0) |
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
	if (w->failed || w->rlen > INDEX_MAX) {
		w->failed = true;
		return;
	}
	len = (uint32_t)w->rlen;
	b[0] = (unsigned char)len;
	b[1] = (unsigned char)(len >> 8);
	b[2] = (unsigned char)(len >> 16);
	b[3] = (unsigned char)(len >> 24);
	emit(w, b, 4);
	emit(w, w->rec, w->rlen);
	w->added++;
}

void
ckpt_index_writer_commit(struct ckpt_index_writer *w)
{
	unsigned char digest[CKPT_SHA256_BYTES];

	if (!w)
		return;
	if (w->added != w->count)
		w->failed = true;
	if (!w->failed && !ckpt_sha256_final(&w->sha, digest, NULL)) {
		if (grow_put(&w->buf, &w->len, &w->cap, digest,
		    sizeof(digest)))
			flush(w, true);
		else
			w->failed = true;
	} else {
		w->failed = true;
	}
	if (!w->failed && w->len == 0 && !close(w->fd)) {
		w->fd = -1;
		if (renameat(w->dfd, w->tmp, w->dfd, w->run))
			unlinkat(w->dfd, w->tmp, 0);
	}
	ckpt_index_writer_free(w);
}

/* ------------------------------------------------------------------ */
/* For the fuzz harness                                                */
/* ------------------------------------------------------------------ */

/*
 * Parses an index file held in memory and decodes and looks up every
 * record, as a listing would (in order, then backwards): 0 when it is a
 * valid index, -1 when it would be ignored (tests/fuzz/fuzz-index.c).
 */
int
ckpt_index_check(const void *data, size_t size)
{
	struct ckpt_index *ix = calloc(1, sizeof(*ix));
	char name[CKPT_NAME_MAX + 64], again[CKPT_NAME_MAX + 64];
	int rc = 0;

	if (!ix)
		return -1;
	ix->fd = -1;
	ix->mem = data;
	if (!parse(ix, size)) {
		ckpt_index_free(ix);
		return -1;
	}
	for (size_t pass = 0; pass < 2; pass++)
		for (size_t k = 0; k < ix->n; k++) {
			size_t i = pass ? ix->n - 1 - k : k, at;
			struct ckpt_entry_priv p[2];
			struct ckpt_pool pool = { 0 };

			/* the second shares what it can with the first */
			memset(p, 0, sizeof(p));
			if (ckpt_index_decode(ix, i, &pool, NULL, &p[0]) ||
			    ckpt_index_decode(ix, i, &pool, &p[0].e, &p[1]))
				rc = -1;
			ckpt_pool_release(&pool);
			if (!ckpt_index_name(ix, i, name, sizeof(name)))
				rc = -1;
			else if (strlen(name) < sizeof(name) - 1 &&
			    (!ckpt_index_find(ix, name, &at) ||
			    !ckpt_index_name(ix, at, again, sizeof(again)) ||
			    strcmp(name, again)))
				rc = -1;	/* must find its name */
		}
	ckpt_index_free(ix);
	return rc;
}
