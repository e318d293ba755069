/* SPDX-License-Identifier: MIT */
/*
 * verify.c - ckpt_verify(): check one checkpoint completely and report
 * every finding, never only the first.
 *
 * Two kinds of work run side by side.  Structure: a small pool opens
 * every file through its format reader (zip CRCs, the strict pickle
 * reader, storage sizes and view bounds), adds what verify checks on top
 * (tensor bounds, globals no reader reported, protocol-0 pickles that
 * sniff as text) and, with --numerics, counts NaN and infinities through
 * the readers' tensor statistics.  Integrity: the store's hashing engine
 * (ckpt_hash_files) digests the byte ranges the manifest records - chunks
 * and tensors no larger than a chunk, which together cover every byte
 * once - on every core, so that one large file is as fast as many; a file
 * whose ranges do not cover it is hashed whole.  Memory is a fixed buffer
 * per thread (pread), whatever the file size.  Results land in per-file
 * slots and are merged in file order, so the report is deterministic
 * whatever the schedule.
 *
 * When a chunk fails, the tensors larger than a chunk that overlap it are
 * hashed in a second pass, to say which tensor changed; smaller tensors
 * say so from the first pass.
 *
 * With CKPT_VERIFY_FAST, files are checked by size and by a digest cache
 * keyed by (device, inode, size, mtime in ns): a file unchanged since it
 * was last hashed is not read again, and zip CRCs are not checked.  The
 * cache is a plain text file replaced atomically (see ckpt-verify(1)).
 */
#include "util/internal.h"

#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "crypto/hashing.h"
#include "crypto/sign.h"
#include "format/file.h"
#include "format/kernels.h"
#include "store/s3src.h"
#include "store/store.h"
#include "verify/verify.h"

#define WALK_DEPTH_MAX 64

/* ------------------------------------------------------------------ */
/* The report                                                          */
/* ------------------------------------------------------------------ */

/*
 * --numerics of a range that is exactly one tensor, counted on the bytes
 * the hashing engine reads (fuse_observe) rather than read again.  The
 * engine's steps do not end on elements: a partial one waits in carry.
 */
struct nf_acc {
	enum ckpt_dtype dtype;
	unsigned int esize;		/* bytes per element; 0: not fused */
	unsigned int ncarry;
	unsigned char carry[16];
	struct ckpt_tensor_stats found;	/* its NaN and infinity counts */
};

/* A float tensor's tensor-nonfinite finding, made once hashing is done
 * (in reader order, as the scan alone would make them). */
struct nf_note {
	char *name;
	enum ckpt_dtype dtype;
	uint64_t offset, count;
	const struct nf_acc *acc;	/* fused: the counts are there */
	uint64_t nan, pos_inf, neg_inf;	/* else: the scan's */
};

struct vfile {
	struct ckpt_verify_file pub;
	char *path, *name, *reason;
	struct stat st;
	bool present;
	const struct vman_file *m;	/* manifest entry or NULL */
	struct flist findings;
	pthread_mutex_t lock;		/* findings, from several jobs */
	unsigned char digest[CKPT_SHA256_BYTES];
	bool digest_ok;			/* whole-file digest computed */
	bool cached;			/* the cache vouched for it */
	bool hash_failed;		/* a range or the file mismatched */
	bool io_failed;
	bool *range_bad;		/* per manifest range */
	bool want_hash;			/* planned for the first pass */
	bool whole_bad;			/* the whole-file digest mismatched */
	size_t nranges_checked;		/* ranges hashed in the first pass */
	uint64_t bad_chunks;
	struct nf_acc *acc;		/* --numerics on the hashing's read:
					 * per manifest range, or NULL */
	bool acc_lost;			/* its first-pass hash job failed */
	struct nf_note *notes;		/* tensor-nonfinite, after hashing */
	size_t nnotes;
};

struct ckpt_report {
	char *path;
	char *manifest;
	enum ckpt_sig_state sig_state;
	char keyid[CKPT_KEYID_HEX];
	struct vfile *files;
	size_t nfiles;
	struct ckpt_verify_file *pubfiles;
	struct flist findings;		/* merged, in report order */
	struct flist top;		/* checkpoint-level, before merge */
	uint64_t hashed, cached;
	size_t ntop;
	bool ok;
	struct vprogress *vp;		/* during ckpt_verify() only */
};

const char *
ckpt_verify_status_name(enum ckpt_verify_status s)
{
	static const char *const names[] = { "OK", "FAILED", "MISSING",
	    "EXTRA", "UNREADABLE" };

	return (unsigned)s < CKPT_ARRAY_SIZE(names) ? names[s] : "FAILED";
}

void
ckpt_report_free(struct ckpt_report *r)
{
	if (!r)
		return;
	for (size_t i = 0; i < r->nfiles; i++) {
		free(r->files[i].path);
		free(r->files[i].name);
		free(r->files[i].reason);
		free(r->files[i].range_bad);
		free(r->files[i].acc);
		for (size_t k = 0; k < r->files[i].nnotes; k++)
			free(r->files[i].notes[k].name);
		free(r->files[i].notes);
		ckpt_flist_free(&r->files[i].findings);
		pthread_mutex_destroy(&r->files[i].lock);
	}
	free(r->files);
	free(r->pubfiles);
	ckpt_flist_free(&r->findings);
	ckpt_flist_free(&r->top);
	free(r->path);
	free(r->manifest);
	free(r);
}

const char *
ckpt_report_path(const struct ckpt_report *r)
{
	return r->path;
}

bool
ckpt_report_ok(const struct ckpt_report *r)
{
	return r->ok;
}

const char *
ckpt_report_manifest(const struct ckpt_report *r)
{
	return r->manifest;
}

const char *
ckpt_sig_state_name(enum ckpt_sig_state s)
{
	static const char *const names[] = { "none", "valid", "invalid",
	    "unknown-key" };

	return (unsigned)s < CKPT_ARRAY_SIZE(names) ? names[s] : "invalid";
}

enum ckpt_sig_state
ckpt_report_signature(const struct ckpt_report *r, const char **keyid)
{
	if (keyid)
		*keyid = r->keyid[0] ? r->keyid : NULL;
	return r->sig_state;
}

uint64_t
ckpt_report_bytes_hashed(const struct ckpt_report *r)
{
	return r->hashed;
}

uint64_t
ckpt_report_bytes_cached(const struct ckpt_report *r)
{
	return r->cached;
}

size_t
ckpt_report_file_count(const struct ckpt_report *r)
{
	return r->nfiles;
}

const struct ckpt_verify_file *
ckpt_report_file(const struct ckpt_report *r, size_t i)
{
	return i < r->nfiles ? &r->pubfiles[i] : NULL;
}

size_t
ckpt_report_finding_count(const struct ckpt_report *r)
{
	return r->findings.n;
}

size_t
ckpt_report_checkpoint_finding_count(const struct ckpt_report *r)
{
	return r->ntop;
}

const struct ckpt_finding *
ckpt_report_finding(const struct ckpt_report *r, size_t i)
{
	return i < r->findings.n ? &r->findings.v[i] : NULL;
}

bool
ckpt_verify_in_subset(const char *run, int64_t step, unsigned int k,
    unsigned int n)
{
	unsigned char d[CKPT_SHA256_BYTES];
	uint64_t v = 0;
	char *s;

	if (!n || !k || k > n)
		return false;
	if (asprintf(&s, "%s@%lld", run, (long long)step) < 0)
		return false;
	if (ckpt_hash_buffer(CKPT_HASH_SHA256, s, strlen(s), d, NULL)) {
		free(s);
		return false;
	}
	free(s);
	for (int i = 0; i < 8; i++)
		v = (v << 8) | d[i];
	return v % n == k - 1;
}

static int CKPT_PRINTF(6, 7)
file_finding(struct vfile *vf, const char *id, enum ckpt_severity sev,
    const char *subject, int64_t offset, const char *fmt, ...)
{
	va_list ap;
	int rc;

	pthread_mutex_lock(&vf->lock);
	va_start(ap, fmt);
	rc = ckpt_flist_vadd(&vf->findings, id, sev, vf->path, subject, offset,
	    fmt, ap);
	va_end(ap);
	pthread_mutex_unlock(&vf->lock);
	return rc;
}

/* ------------------------------------------------------------------ */
/* Walking a checkpoint                                                */
/* ------------------------------------------------------------------ */

struct walk {
	struct ckpt_report *r;
	const char *root;
	size_t cap;
};

static char *
join(const char *a, const char *b)
{
	char *s;

	if (!*a)
		return strdup(b);
	if (asprintf(&s, "%s%s%s", a, a[strlen(a) - 1] == '/' ? "" : "/",
	    b) < 0)
		return NULL;
	return s;
}

static struct vfile *
add_file(struct walk *w, const char *name, const char *path,
    struct ckpt_error *err)
{
	struct vfile *vf;

	if (w->r->nfiles == w->cap) {
		size_t cap = w->cap ? 2 * w->cap : 32;
		struct vfile *p = reallocarray(w->r->files, cap, sizeof(*p));

		if (!p)
			return ckpt_error_nomem(err), NULL;
		w->r->files = p;
		w->cap = cap;
	}
	vf = &w->r->files[w->r->nfiles];
	memset(vf, 0, sizeof(*vf));
	vf->name = strdup(name);
	vf->path = strdup(path);
	if (!vf->name || !vf->path) {
		free(vf->name);
		free(vf->path);
		return ckpt_error_nomem(err), NULL;
	}
	pthread_mutex_init(&vf->lock, NULL);
	w->r->nfiles++;
	return vf;
}

static int
walk_dir(struct walk *w, const char *rel, int depth, struct ckpt_error *err)
{
	struct dirent **ents = NULL;
	char *dir;
	int n, rc = CKPT_OK;

	dir = *rel ? join(w->root, rel) : strdup(w->root);
	if (!dir)
		return ckpt_error_nomem(err);
	if (depth > WALK_DEPTH_MAX) {
		rc = ckpt_flist_add(&w->r->top, "tree-too-deep", CKPT_SEV_ERROR,
		    dir, NULL, -1, "directories nested deeper than %d levels "
		    "were not checked", WALK_DEPTH_MAX);
		free(dir);
		return rc;
	}
	n = scandir(dir, &ents, NULL, alphasort);
	if (n < 0) {
		rc = ckpt_flist_add(&w->r->top, "unreadable", CKPT_SEV_ERROR,
		    dir, NULL, -1, "cannot list the directory: %s",
		    strerror(errno));
		free(dir);
		return rc;
	}
	for (int i = 0; i < n && !rc; i++) {
		const char *d = ents[i]->d_name;
		char *name, *path;
		struct vfile *vf;
		struct stat st;

		if (!strcmp(d, ".") || !strcmp(d, ".."))
			continue;
		name = *rel ? join(rel, d) : strdup(d);
		path = join(w->root, name);
		if (!name || !path) {
			free(name);
			free(path);
			rc = ckpt_error_nomem(err);
			break;
		}
		if (ckpt_vman_is_own_file(name)) {
			/* The manifest and its signature are checked as
			 * such, not as payload. */
		} else if (lstat(path, &st)) {
			rc = ckpt_flist_add(&w->r->top, "unreadable",
			    CKPT_SEV_ERROR, path, NULL, -1, "cannot stat: %s",
			    strerror(errno));
		} else if (S_ISDIR(st.st_mode)) {
			rc = walk_dir(w, name, depth + 1, err);
		} else if ((vf = add_file(w, name, path, err)) == NULL) {
			rc = err ? err->code : CKPT_ERR_NOMEM;
		} else {
			vf->st = st;
			vf->present = true;
		}
		free(name);
		free(path);
	}
	for (int i = 0; i < n; i++)
		free(ents[i]);
	free(ents);
	free(dir);
	return rc;
}

static int
cmp_vfile(const void *a, const void *b)
{
	return strcmp(((const struct vfile *)a)->name,
	    ((const struct vfile *)b)->name);
}

/* ------------------------------------------------------------------ */
/* Progress                                                            */
/* ------------------------------------------------------------------ */

/*
 * One progress for the whole verification: the bytes the hashing engine
 * has done and has to do, plus, with --numerics, the float tensor bytes
 * scanned and to scan.  The scan's total starts as the size of every file
 * to open (known before any is read) and shrinks to the float tensors'
 * bytes as each file is opened, so the figure only ever grows towards
 * 100%.  The hashing engine and the structure pool report from their own
 * threads: the lock serialises them.
 */
struct vprogress {
	ckpt_progress_fn fn;
	void *data;
	pthread_mutex_t lock;
	uint64_t hash_base, hash_done, hash_total;
	uint64_t scan_done, scan_total;
};

static void
vprogress_report(struct vprogress *vp)
{
	vp->fn(vp->hash_base + vp->hash_done + vp->scan_done,
	    vp->hash_base + vp->hash_total + vp->scan_total, vp->data);
}

/* The hashing engine's figures (of the current pass). */
static void
vprogress_hash(uint64_t done, uint64_t total, void *data)
{
	struct vprogress *vp = data;

	pthread_mutex_lock(&vp->lock);
	vp->hash_done = done;
	vp->hash_total = total;
	vprogress_report(vp);
	pthread_mutex_unlock(&vp->lock);
}

/* The numerics scan of one file: estimate replaced by what it has.  Told
 * at once: a file whose tensors the hashing counts has no scan whose
 * reports would carry the new total. */
static void
vprogress_rescale(struct vprogress *vp, uint64_t estimate, uint64_t actual)
{
	if (!vp->fn)
		return;
	pthread_mutex_lock(&vp->lock);
	vp->scan_total = vp->scan_total - estimate + actual;
	vprogress_report(vp);
	pthread_mutex_unlock(&vp->lock);
}

/* ckpt_tensor_nonfinite_many() counts from 0 for each file. */
struct scan_relay {
	struct vprogress *vp;
	uint64_t last;
};

static void
vprogress_scan(uint64_t done, uint64_t total, void *data)
{
	struct scan_relay *sr = data;
	struct vprogress *vp = sr->vp;

	(void)total;
	pthread_mutex_lock(&vp->lock);
	vp->scan_done += done - sr->last;
	sr->last = done;
	vprogress_report(vp);
	pthread_mutex_unlock(&vp->lock);
}

/* ------------------------------------------------------------------ */
/* Numerics                                                            */
/* ------------------------------------------------------------------ */

static const struct vman_range *exact_range(const struct vman_file *m,
    uint64_t off, uint64_t end);

static void
nonfinite_finding(struct vfile *vf, const char *name, enum ckpt_dtype dt,
    uint64_t offset, uint64_t nan, uint64_t pos_inf, uint64_t neg_inf,
    uint64_t count)
{
	if (nan || pos_inf || neg_inf)
		file_finding(vf, "tensor-nonfinite", CKPT_SEV_ERROR, name,
		    (int64_t)offset, "tensor %s (%s) has %llu NaN, %llu +Inf, "
		    "%llu -Inf of %llu values", name, ckpt_dtype_name(dt),
		    (unsigned long long)nan, (unsigned long long)pos_inf,
		    (unsigned long long)neg_inf, (unsigned long long)count);
}

/* Counts n whole elements: the kernel first, the bits only where it
 * found something (as the scan does). */
static void
fuse_count(struct nf_acc *a, const unsigned char *p, size_t n)
{
	size_t bad;

	if (n && ckpt_knonfinite_count(a->dtype, p, n, &bad) && bad)
		(void)ckpt_knonfinite_classify(a->dtype, p, n, &a->found);
}

/* The hashing engine's view of a first-pass range (arg: the hplans). */
static void fuse_observe(void *arg, size_t job, size_t range,
    const unsigned char *data, size_t n);

/*
 * The accumulator that counted t on the hashing's read: t's bytes are
 * exactly one first-pass range, of the dtype the manifest gave it.
 */
static const struct nf_acc *
fused_acc(const struct vfile *vf, const struct ckpt_tensor *t)
{
	const struct vman_range *r;
	const struct nf_acc *a;

	if (!vf->acc || !ckpt_tensor_content_is_bytes(t) || !(r =
	    exact_range(vf->m, t->offset, t->offset + t->span)) || !r->first)
		return NULL;
	a = &vf->acc[r - vf->m->ranges];
	return a->esize && a->dtype == t->dtype ? a : NULL;
}

/*
 * Notes every float tensor of a file that has fused ranges, so that its
 * findings come out in reader order once hashing has counted; false
 * without memory (then nothing is fused).
 */
static bool
note_tensors(struct vfile *vf, const struct ckpt_file *f)
{
	size_t n = ckpt_file_tensor_count(f);

	if (!vf->acc || !(vf->notes = calloc(n ? n : 1, sizeof(*vf->notes))))
		return false;
	for (size_t i = 0; i < n; i++) {
		const struct ckpt_tensor *t = ckpt_file_tensor(f, i);
		struct nf_note *nt = &vf->notes[vf->nnotes];

		if (!ckpt_dtype_is_float(t->dtype) || t->kind)
			continue;
		if (t->name && !(nt->name = strdup(t->name)))
			return false;
		nt->dtype = t->dtype;
		nt->offset = t->offset;
		nt->count = t->numel * ckpt_dtype_components(t->dtype);
		nt->acc = fused_acc(vf, t);
		vf->nnotes++;
	}
	return true;
}

/* Forgets the notes: the scan makes every finding itself. */
static void
drop_notes(struct vfile *vf)
{
	for (size_t k = 0; k < vf->nnotes; k++)
		free(vf->notes[k].name);
	free(vf->notes);
	vf->notes = NULL;
	vf->nnotes = 0;
}

/*
 * The counts of the next scanned tensor (items and notes are both in
 * reader order; the fused notes between are skipped): into its note, or
 * a finding now.
 */
static void
scan_result(struct vfile *vf, struct nf_note **next,
    const struct ckpt_stats_item *it)
{
	const struct ckpt_tensor *t = it->t;
	struct nf_note *nt = *next;

	if (vf->notes) {
		while (nt->acc)
			nt++;
		*next = nt + 1;
	}
	if (it->rc) {
		file_finding(vf, "tensor-unreadable", CKPT_SEV_ERROR, t->name,
		    it->err.offset, "cannot read tensor data: %s",
		    it->err.message);
	} else if (!vf->notes) {
		nonfinite_finding(vf, t->name, t->dtype, t->offset, it->st.nan,
		    it->st.pos_inf, it->st.neg_inf, it->st.count);
	} else {
		nt->nan = it->st.nan;
		nt->pos_inf = it->st.pos_inf;
		nt->neg_inf = it->st.neg_inf;
		nt->count = it->st.count;
	}
}

/* NaN and infinities through the library's kernels on every core
 * (ckpt_tensor_nonfinite_many: the raw bits where the format allows, the
 * same decoders as inspect --stats elsewhere: BF16, the F8 variants with
 * their own NaN/Inf encodings, complex as two values).  It runs on the
 * structure pool, beside the hashing engine: the two overlap.  A tensor
 * that the hashing engine counts as it reads (fused_acc) is skipped: its
 * bytes would be read twice. */
static void
scan_numerics(struct vfile *vf, const struct ckpt_file *f,
    unsigned int threads, struct vprogress *vp)
{
	struct scan_relay sr = { vp, 0 };
	struct ckpt_stats_item *items;
	struct nf_note *next;
	struct ckpt_error e;
	uint64_t bytes = 0;
	size_t n = 0;

	if (!note_tensors(vf, f))
		drop_notes(vf);
	next = vf->notes;
	items = calloc(ckpt_file_tensor_count(f) ? ckpt_file_tensor_count(f) :
	    1, sizeof(*items));
	if (!items) {
		drop_notes(vf);
		vprogress_rescale(vp, (uint64_t)vf->st.st_size, 0);
		file_finding(vf, "tensor-unreadable", CKPT_SEV_ERROR, NULL, -1,
		    "out of memory for the numerics scan");
		return;
	}
	for (size_t i = 0; i < ckpt_file_tensor_count(f); i++) {
		const struct ckpt_tensor *t = ckpt_file_tensor(f, i);

		if (!ckpt_dtype_is_float(t->dtype) || t->kind ||
		    (vf->notes && fused_acc(vf, t)))
			continue;
		items[n].f = f;
		items[n++].t = t;
		bytes += t->numel * ckpt_dtype_bits(t->dtype) / 8;
	}
	vprogress_rescale(vp, (uint64_t)vf->st.st_size, bytes);
	ckpt_error_clear(&e);
	if (ckpt_tensor_nonfinite_many(items, n, threads, vp->fn ?
	    vprogress_scan : NULL, &sr, &e)) {
		file_finding(vf, "tensor-unreadable", CKPT_SEV_ERROR, NULL,
		    e.offset, "cannot scan numerics: %s", e.message);
		n = 0;
	}
	for (size_t i = 0; i < n; i++)
		scan_result(vf, &next, &items[i]);
	free(items);
}

/*
 * After hashing (main thread): the noted findings, in reader order.  A
 * file whose hash job failed gets none from the fused counts: the hash
 * finding already fails it, and the counts may be partial.
 */
static void
emit_notes(struct vfile *vf)
{
	for (size_t k = 0; k < vf->nnotes; k++) {
		const struct nf_note *nt = &vf->notes[k];
		const struct nf_acc *a = nt->acc;

		if (a && vf->acc_lost)
			continue;
		nonfinite_finding(vf, nt->name, nt->dtype, nt->offset,
		    a ? a->found.nan : nt->nan, a ? a->found.pos_inf :
		    nt->pos_inf, a ? a->found.neg_inf : nt->neg_inf, nt->count);
	}
}

/* ------------------------------------------------------------------ */
/* Jobs                                                                */
/* ------------------------------------------------------------------ */

/*
 * The structure checks run on a pool of their own, beside the hashing
 * engine: reading headers is cheap, but checking zip CRCs reads every
 * member, and that should overlap with hashing rather than add to it.
 */
struct job {
	struct vfile *vf;
};

/*
 * A checkpoint in an object store (s3://BUCKET/PREFIX): its objects are
 * its files, listed once; the manifest is fetched and parsed in memory;
 * structure is read through ranged GETs and digests by streaming GETs
 * (store/s3src.h); the signature object is checked like a local one
 * (remote_signature).  Not (yet) for remote checkpoints: the layout
 * check and OMS bundles.
 */
struct remote {
	struct ckpt_s3 *s3;
	char *prefix;			/* key prefix, "" or ending in '/' */
	size_t url_len;			/* of "s3://BUCKET/" */
	bool has_sig;			/* the listing holds a signature */
};

static const char *
remote_key(const struct remote *rem, const char *url)
{
	return url + rem->url_len;
}

static void
remote_close(struct remote *rem)
{
	ckpt_s3_free(rem->s3);
	free(rem->prefix);
}

/* Opens url: an object (*st a regular file) or a prefix (a directory). */
static int
remote_open(const char *url, struct remote *rem, struct stat *st,
    struct ckpt_error *err)
{
	struct ckpt_s3_object obj;
	size_t kl;
	int rc;

	memset(rem, 0, sizeof(*rem));
	memset(st, 0, sizeof(*st));
	if ((rc = ckpt_s3_url_client(url, &rem->s3, &rem->prefix, err)))
		return rc;
	rem->url_len = 5 + strlen(ckpt_s3_bucket(rem->s3)) + 1;
	kl = strlen(rem->prefix);
	st->st_mode = S_IFDIR | 0755;
	if (kl && rem->prefix[kl - 1] != '/') {
		rc = ckpt_s3_head(rem->s3, rem->prefix, &obj, err);
		if (!rc) {
			st->st_mode = S_IFREG | 0644;
			st->st_size = (off_t)obj.size;
			st->st_nlink = 1;
			return CKPT_OK;
		}
		if (rc != CKPT_ERR_NOTFOUND)
			goto fail;
		ckpt_error_clear(err);
		free(rem->prefix);
		if (asprintf(&rem->prefix, "%.*s/", (int)kl, url +
		    rem->url_len) < 0) {
			rem->prefix = NULL;
			rc = ckpt_error_nomem(err);
			goto fail;
		}
	}
	return CKPT_OK;
fail:
	remote_close(rem);
	return rc;
}

/* The manifest under the prefix, as ckpt_vman_load gives a local one. */
static int
remote_manifest(const struct remote *rem, const char *url,
    const struct ckpt_verify_options *o, struct vmanifest **out,
    struct flist *top, struct ckpt_error *err)
{
	struct ckpt_manifest *cm;
	struct ckpt_error e;
	char *key = NULL, *mpath = NULL, *text = NULL, *dir;
	size_t len = 0;
	int rc;

	*out = NULL;
	dir = strndup(url, strlen(url) - (url[strlen(url) - 1] == '/'));
	if (!dir || asprintf(&key, "%s%s", rem->prefix, CKPT_MANIFEST_NAME) <
	    0 || asprintf(&mpath, "%s/%s", dir, CKPT_MANIFEST_NAME) < 0) {
		free(dir);
		free(key);
		return ckpt_error_nomem(err);
	}
	ckpt_error_clear(&e);
	rc = ckpt_s3_get_mem(rem->s3, key, 0, CKPT_S3_TO_END,
	    CKPT_MANIFEST_MAX, &text, &len, NULL, &e);
	if (!rc)
		rc = ckpt_manifest_parse(text, len, mpath, dir, &cm, &e);
	if (!rc)
		rc = ckpt_vman_adopt(cm, o, out, top, err);
	else if (rc == CKPT_ERR_NOMEM)
		rc = ckpt_error_nomem(err);
	else if (rc == CKPT_ERR_NOTFOUND)
		rc = CKPT_OK;
	else if (rc == CKPT_ERR_FORMAT || rc == CKPT_ERR_UNSUPPORTED)
		rc = ckpt_flist_add(top, "manifest-invalid", CKPT_SEV_ERROR,
		    e.path[0] ? e.path : mpath, NULL, e.offset, "%s",
		    e.message) ? ckpt_error_nomem(err) : CKPT_OK;
	else if (err)
		*err = e;	/* the service failed: nothing was checked */
	free(key);
	free(mpath);
	free(dir);
	return rc;
}

struct remote_walk {
	struct walk *w;
	struct remote *rem;
	const char *url;
	struct ckpt_error *err;
};

static int
remote_object(void *arg, const char *key, const struct ckpt_s3_object *obj)
{
	struct remote_walk *rw = arg;
	const char *name = key + strlen(rw->rem->prefix);
	struct vfile *vf;
	char *path;

	if (!obj || !*name || name[strlen(name) - 1] == '/')
		return 0;
	if (ckpt_vman_is_own_file(name)) {
		rw->rem->has_sig |= strcmp(name, CKPT_MANIFEST_NAME) != 0;
		return 0;
	}
	if (asprintf(&path, "%.*s%s", (int)rw->rem->url_len, rw->url, key) <
	    0)
		return ckpt_error_nomem(rw->err);
	vf = add_file(rw->w, name, path, rw->err);
	free(path);
	if (!vf)
		return CKPT_ERR_NOMEM;
	vf->st.st_mode = S_IFREG | 0644;
	vf->st.st_size = (off_t)obj->size;
	vf->st.st_nlink = 1;
	vf->present = true;
	return 0;
}

/* Every object under the prefix, as walk_dir lists a directory. */
static int
remote_walk(struct walk *w, struct remote *rem, const char *url,
    struct ckpt_error *err)
{
	struct remote_walk rw = { w, rem, url, err };

	return ckpt_s3_list(rem->s3, rem->prefix, NULL, remote_object, &rw,
	    err);
}

struct worker {
	struct pool *p;
	pthread_t tid;
};

struct pool {
	struct job *jobs;
	size_t njobs, next;
	unsigned int flags;
	unsigned int threads;		/* for the numerics scan */
	const char *const *allow;	/* extra allowed globals */
	size_t nallow;
	pthread_mutex_t lock;
	struct worker *w;
	unsigned int started;
	int fatal;			/* out of memory */
	const struct remote *remote;	/* NULL: local files */
	struct vprogress *vp;
};

/* Copies what the reader found, and adds what verify checks on top. */
static void
collect_file(struct vfile *vf, const struct ckpt_file *f)
{
	uint64_t size = ckpt_file_size(f);

	for (size_t i = 0; i < ckpt_file_finding_count(f); i++) {
		const struct ckpt_finding *x = ckpt_file_finding(f, i);

		file_finding(vf, x->id, x->severity, x->subject, x->offset,
		    "%s", x->message);
	}
	/* A global the strict reader did not allow is a finding even if
	 * a reader forgot to say so: never "clean" with one in it. */
	for (size_t i = 0; i < ckpt_file_global_count(f); i++) {
		bool allowed, said = false;
		const char *g = ckpt_file_global(f, i, &allowed);

		if (allowed)
			continue;
		for (size_t k = 0; k < ckpt_file_finding_count(f); k++) {
			const struct ckpt_finding *x = ckpt_file_finding(f, k);

			said |= x->subject && !strcmp(x->subject, g);
		}
		if (!said)
			file_finding(vf, "unsafe-global", CKPT_SEV_ERROR, g,
			    -1, "pickle references %s, which is not in the "
			    "allowlist", g);
	}
	for (size_t i = 0; i < ckpt_file_tensor_count(f); i++) {
		const struct ckpt_tensor *t = ckpt_file_tensor(f, i);
		uint64_t end;

		if (t->kind && !strcmp(t->kind, "meta"))
			continue;
		if (!ckpt_add_u64(t->offset, t->span, &end) || end > size)
			file_finding(vf, "tensor-out-of-bounds",
			    CKPT_SEV_ERROR, t->name, (int64_t)t->offset,
			    "tensor %s spans bytes %llu+%llu beyond the end "
			    "of the file (%llu)", t->name ? t->name : "",
			    (unsigned long long)t->offset,
			    (unsigned long long)t->span,
			    (unsigned long long)size);
	}
}

static bool
identifier_like(const char *g)
{
	if (!*g)
		return false;
	for (; *g; g++)
		if (!(*g == '_' || *g == '.' || (*g >= 'a' && *g <= 'z') ||
		    (*g >= 'A' && *g <= 'Z') || (*g >= '0' && *g <= '9')))
			return false;
	return true;
}

/*
 * A protocol-0 pickle is printable ASCII ("cposix\nsystem\n(S'...'\ntR."),
 * so sniffing calls it text, yet torch.load would run it.  A text file
 * that starts like a pickle is read by the strict reader too; it counts
 * as a pickle when that reader got to a clean STOP or met a global with a
 * Python name, so that a README is not mistaken for one.
 */
static void
text_pickle_check(struct vfile *vf, const struct ckpt_file *f)
{
	static const char starts[] = "(cSVILFNP]})i";
	struct ckpt_file *p;
	struct ckpt_error e;
	unsigned char c;
	bool broken = false, named = false;

	/* A remote file has no descriptor to read it again through. */
	if (f->fd < 0 || (ckpt_file_format(f) != CKPT_FORMAT_TEXT &&
	    ckpt_file_format(f) != CKPT_FORMAT_UNKNOWN) || !f->size ||
	    ckpt_file_pread(f, &c, 1, 0, &e) || !c || !strchr(starts, c))
		return;
	p = calloc(1, sizeof(*p));
	if (!p)
		return;
	p->path = strdup(f->path);
	p->fd = dup(f->fd);
	p->size = f->size;
	p->format = CKPT_FORMAT_PICKLE;
	if (!p->path || p->fd < 0 || ckpt_pickle_file_read(p, &e)) {
		ckpt_file_free(p);
		return;
	}
	for (size_t i = 0; i < p->nfindings; i++)
		broken |= !strcmp(p->findings[i].id, "pickle-malformed") ||
		    !strcmp(p->findings[i].id, "pickle-limit");
	for (size_t i = 0; i < p->nglobals; i++)
		named |= identifier_like(p->globals[i].name);
	if (!broken || named) {
		file_finding(vf, "text-pickle", named ? CKPT_SEV_ERROR :
		    CKPT_SEV_WARNING, NULL, 0, "a protocol-0 pickle that "
		    "looks like text: torch.load would unpickle it");
		collect_file(vf, p);
	}
	ckpt_file_free(p);
}

/* The reader's tensor that manifest tensor k of e stands for, or NULL. */
static const struct ckpt_tensor *
reader_tensor(const struct ckpt_file *f, const struct ckpt_manifest_file *e,
    size_t k, size_t *cursor)
{
	const struct ckpt_manifest_tensor *mt = &e->tensors[k];
	size_t n = ckpt_file_tensor_count(f);

	/* Save lists them in the reader's order: look there first. */
	for (size_t i = 0; i < n; i++) {
		size_t at = (*cursor + i) % n;
		const struct ckpt_tensor *t = ckpt_file_tensor(f, at);

		if (t->name && !strcmp(t->name, mt->name) && t->offset ==
		    mt->bytes.offset && t->offset + t->span == mt->bytes.end) {
			*cursor = at + 1;
			return t;
		}
	}
	return NULL;
}

/* The schema-2 range that is exactly [off, end), or NULL. */
static const struct vman_range *
exact_range(const struct vman_file *m, uint64_t off, uint64_t end)
{
	size_t lo = 0, hi = m->nranges;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (m->ranges[mid].offset < off)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < m->nranges && m->ranges[lo].offset == off &&
	    m->ranges[lo].end == end ? &m->ranges[lo] : NULL;
}

/*
 * Every content digest the manifest records is checked: one whose tensor
 * is its own range's bytes must be that range's digest (which the hashing
 * checks); any other (views, strided, big-endian) is computed from the
 * elements, which hashes only the tensor's elements.
 */
static void
check_contents(struct vfile *vf, const struct ckpt_file *f)
{
	const struct ckpt_manifest_file *e = vf->m->entry;
	size_t cursor = 0;

	for (size_t k = 0; vf->m->schema >= 2 && k < e->ntensors; k++) {
		const struct ckpt_manifest_tensor *mt = &e->tensors[k];
		const struct ckpt_tensor *t;
		const struct vman_range *r;
		unsigned char d[CKPT_SHA256_BYTES];
		struct ckpt_error err;
		int rc;

		if (!mt->has_content_sha256)
			continue;
		if (!(t = reader_tensor(f, e, k, &cursor))) {
			file_finding(vf, "content-unchecked", CKPT_SEV_ERROR,
			    mt->name, (int64_t)mt->bytes.offset, "tensor %s "
			    "has a content digest in the manifest but the file "
			    "has no such tensor", mt->name);
			continue;
		}
		if (ckpt_tensor_content_is_bytes(t) && (r = exact_range(vf->m,
		    t->offset, t->offset + t->span))) {
			if (memcmp(r->sha256, mt->content_sha256,
			    CKPT_SHA256_BYTES))
				file_finding(vf, "content-digest-mismatch",
				    CKPT_SEV_ERROR, mt->name, (int64_t)
				    t->offset, "tensor %s: the manifest's "
				    "content digest differs from its range's "
				    "(bytes %llu-%llu)", mt->name,
				    (unsigned long long)r->offset,
				    (unsigned long long)r->end);
			continue;
		}
		ckpt_error_clear(&err);
		rc = ckpt_tensor_content_sha256(f, t, d, &err);
		if (rc)
			file_finding(vf, rc == CKPT_ERR_IO ? "io-error" :
			    "content-unchecked", CKPT_SEV_ERROR, mt->name,
			    err.offset, "tensor %s: cannot compute its content "
			    "digest: %s", mt->name, err.message);
		else if (memcmp(d, mt->content_sha256, CKPT_SHA256_BYTES))
			file_finding(vf, "content-digest-mismatch",
			    CKPT_SEV_ERROR, mt->name, (int64_t)t->offset,
			    "tensor %s: content SHA-256 differs from the "
			    "manifest", mt->name);
	}
}

static void
job_open(struct pool *p, struct job *j)
{
	struct vfile *vf = j->vf;
	struct ckpt_open_options oo = {
	    .version = CKPT_OPEN_OPTIONS_VERSION, .allow_globals = p->allow,
	    .nallow_globals = p->nallow };
	struct ckpt_file *f;
	struct ckpt_error e;
	int rc;

	/* Remotely, the manifest's digests cover every byte: zip CRCs
	 * would read the file a second time. */
	if (!(p->flags & CKPT_VERIFY_FAST) && !(p->remote && vf->m))
		oo.flags |= CKPT_OPEN_CHECK_CRC;
	ckpt_error_clear(&e);
	rc = p->remote ? ckpt_s3_file_open(p->remote->s3, false,
	    remote_key(p->remote, vf->path), &oo, &f, &e) :
	    ckpt_file_open_ex(vf->path, &oo, &f, &e);
	if (rc && (p->flags & CKPT_VERIFY_NUMERICS))
		vprogress_rescale(p->vp, (uint64_t)vf->st.st_size, 0);
	if (rc) {
		const char *id = "format-error";

		switch (rc) {
		case CKPT_ERR_IO:
			id = "io-error";
			vf->io_failed = true;
			break;
		case CKPT_ERR_UNSAFE:
			id = "unsafe-content";
			break;
		case CKPT_ERR_UNSUPPORTED:
			id = "unsupported-format";
			break;
		case CKPT_ERR_LIMIT:
			id = "limit-exceeded";
			break;
		case CKPT_ERR_NOMEM:
			pthread_mutex_lock(&p->lock);
			p->fatal = rc;
			pthread_mutex_unlock(&p->lock);
			return;
		default:
			break;
		}
		file_finding(vf, id, CKPT_SEV_ERROR, NULL, e.offset, "%s",
		    e.message);
		return;
	}
	vf->pub.format = ckpt_file_format(f);
	collect_file(vf, f);
	text_pickle_check(vf, f);
	if (vf->m && !vf->cached)
		check_contents(vf, f);
	if (p->flags & CKPT_VERIFY_NUMERICS)
		scan_numerics(vf, f, p->threads, p->vp);
	ckpt_file_free(f);
}

static void *
worker_main(void *arg)
{
	struct pool *p = ((struct worker *)arg)->p;

	for (;;) {
		struct job *j;

		pthread_mutex_lock(&p->lock);
		if (p->next >= p->njobs || p->fatal) {
			pthread_mutex_unlock(&p->lock);
			break;
		}
		j = &p->jobs[p->next++];
		pthread_mutex_unlock(&p->lock);
		job_open(p, j);
	}
	return NULL;
}

static unsigned int
thread_count(const struct ckpt_verify_options *o)
{
	long n;

	if (o && o->threads)
		return o->threads;
	n = sysconf(_SC_NPROCESSORS_ONLN);
	return n > 0 && n < 256 ? (unsigned int)n : 1;
}

static void
pool_start(struct pool *p, const struct ckpt_verify_options *o)
{
	unsigned int n = thread_count(o);

	if (!p->njobs)
		return;
	if (n > p->njobs)
		n = (unsigned int)p->njobs;
	p->w = calloc(n, sizeof(*p->w));
	for (unsigned int i = 0; p->w && i < n; i++) {
		p->w[i].p = p;
		if (pthread_create(&p->w[i].tid, NULL, worker_main, &p->w[i]))
			break;
		p->started++;
	}
}

static int
pool_wait(struct pool *p, struct ckpt_error *err)
{
	/* Without a thread (none could start), the caller does the work. */
	if (p->njobs && !p->started) {
		struct worker w = { p, pthread_self() };

		worker_main(&w);
	}
	for (unsigned int i = 0; i < p->started; i++)
		pthread_join(p->w[i].tid, NULL);
	free(p->w);
	p->w = NULL;
	p->started = 0;
	if (p->fatal)
		return ckpt_error_set(err, p->fatal, NULL, -1,
		    "out of memory while verifying");
	return CKPT_OK;
}

/* ------------------------------------------------------------------ */
/* Hashing, on the store's engine                                      */
/* ------------------------------------------------------------------ */

struct hplan {
	struct vfile *vf;
	size_t *idx;			/* manifest range of each job range */
};

static void
fuse_observe(void *arg, size_t job, size_t range, const unsigned char *data,
    size_t n)
{
	const struct hplan *pl = &((const struct hplan *)arg)[job];
	struct nf_acc *a;
	size_t whole;

	if (!pl->vf->acc || !(a = &pl->vf->acc[pl->idx[range]])->esize)
		return;
	if (a->ncarry) {
		size_t take = a->esize - a->ncarry < n ? a->esize - a->ncarry :
		    n;

		memcpy(a->carry + a->ncarry, data, take);
		a->ncarry += (unsigned int)take;
		data += take;
		n -= take;
		if (a->ncarry < a->esize)
			return;
		fuse_count(a, a->carry, 1);
		a->ncarry = 0;
	}
	whole = n / a->esize;
	fuse_count(a, data, whole);
	a->ncarry = (unsigned int)(n - whole * a->esize);
	memcpy(a->carry, data + whole * a->esize, a->ncarry);
}

/*
 * --numerics of a file hashed here and now: an accumulator for each
 * first-pass range that is exactly one tensor of a dtype the kernel
 * counts (the manifest's dtype; the scan checks the file's agrees).
 */
static int
fuse_plan(struct vfile *vf, struct ckpt_error *err)
{
	const struct ckpt_manifest_file *e = vf->m->entry;

	if (vf->m->schema < 2 || !e->ntensors)
		return CKPT_OK;
	if (!(vf->acc = calloc(vf->m->nranges ? vf->m->nranges : 1,
	    sizeof(*vf->acc))))
		return ckpt_error_nomem(err);
	for (size_t k = 0; k < e->ntensors; k++) {
		const struct ckpt_range_digest *b = &e->tensors[k].bytes;
		const struct vman_range *r = exact_range(vf->m, b->offset,
		    b->end);
		enum ckpt_dtype dt;
		unsigned char probe[16];
		size_t c;

		if (!r || !r->first || !e->tensors[k].dtype ||
		    ckpt_dtype_from_name(e->tensors[k].dtype, &dt) ||
		    !ckpt_knonfinite_count(dt, probe, 0, &c) ||
		    ckpt_dtype_bits(dt) % 8 || ckpt_dtype_bits(dt) > 128 ||
		    (r->end - r->offset) % (ckpt_dtype_bits(dt) / 8))
			continue;
		vf->acc[r - vf->m->ranges].dtype = dt;
		vf->acc[r - vf->m->ranges].esize = ckpt_dtype_bits(dt) / 8;
	}
	return CKPT_OK;
}

static bool
overlaps_bad_chunk(const struct vfile *vf, const struct vman_range *t)
{
	for (size_t i = 0; i < vf->m->nranges; i++) {
		const struct vman_range *c = &vf->m->ranges[i];

		if (vf->range_bad[i] && !c->tensor && c->offset < t->end &&
		    t->offset < c->end)
			return true;
	}
	return false;
}

/*
 * Schema 2: a range whose digest failed names every tensor whose bytes
 * overlap it; a range outside every tensor counts as a changed chunk.
 */
static void
name_tensors(struct vfile *vf, const struct vman_range *mr)
{
	const struct ckpt_manifest_file *e = vf->m->entry;
	bool any = false;

	for (size_t i = 0; i < e->ntensors; i++) {
		const struct ckpt_manifest_tensor *t = &e->tensors[i];

		if (t->bytes.offset >= mr->end || mr->offset >= t->bytes.end)
			continue;
		any = true;
		file_finding(vf, "tensor-changed", CKPT_SEV_ERROR, t->name,
		    (int64_t)mr->offset, "tensor %s changed (bytes %llu-%llu "
		    "differ from the manifest)", t->name,
		    (unsigned long long)mr->offset,
		    (unsigned long long)mr->end);
	}
	if (!any)
		vf->bad_chunks++;
}

/*
 * Hashes what the files need: in the first pass the ranges that cover
 * every byte (or the whole file when there are none); in the second,
 * tensors larger than a chunk that lie in a chunk that failed.
 */
static int
hash_phase(struct ckpt_report *r, const struct ckpt_verify_options *o,
    const struct remote *rem, bool second, struct ckpt_error *err)
{
	struct ckpt_hash_job *jobs;
	struct hplan *plans;
	size_t nj = 0;
	int rc = CKPT_OK;

	jobs = calloc(r->nfiles ? r->nfiles : 1, sizeof(*jobs));
	plans = calloc(r->nfiles ? r->nfiles : 1, sizeof(*plans));
	if (!jobs || !plans) {
		free(jobs);
		free(plans);
		return ckpt_error_nomem(err);
	}
	for (size_t i = 0; i < r->nfiles; i++) {
		struct vfile *vf = &r->files[i];
		struct ckpt_hash_job *j = &jobs[nj];
		size_t n = 0;

		if (second ? !vf->bad_chunks || vf->io_failed : !vf->want_hash)
			continue;
		j->ranges = calloc(vf->m->nranges ? vf->m->nranges : 1,
		    sizeof(*j->ranges));
		plans[nj].idx = calloc(vf->m->nranges ? vf->m->nranges : 1,
		    sizeof(size_t));
		if (!j->ranges || !plans[nj].idx) {
			free(j->ranges);
			free(plans[nj].idx);
			rc = ckpt_error_nomem(err);
			goto out;
		}
		for (size_t k = 0; k < vf->m->nranges; k++) {
			const struct vman_range *mr = &vf->m->ranges[k];

			if (second ? mr->first || !mr->tensor ||
			    !overlaps_bad_chunk(vf, mr) : !mr->first)
				continue;
			j->ranges[n].offset = mr->offset;
			j->ranges[n].end = mr->end;
			plans[nj].idx[n++] = k;
		}
		/* Every recorded whole-file digest is checked, in the same
		 * read as the ranges (schema 1 always records one). */
		j->whole = !second && (vf->m->has_sha256 || !n);
		if (!n && !j->whole) {
			free(j->ranges);
			free(plans[nj].idx);
			j->ranges = NULL;
			plans[nj].idx = NULL;
			continue;
		}
		j->path = vf->path;
		j->nranges = n;
		plans[nj].vf = vf;
		nj++;
	}
	if (r->vp->fn) {
		pthread_mutex_lock(&r->vp->lock);
		r->vp->hash_base = r->hashed;
		r->vp->hash_done = r->vp->hash_total = 0;
		pthread_mutex_unlock(&r->vp->lock);
	}
	if (nj && rem) {
		const char **keys = calloc(nj, sizeof(*keys));

		for (size_t i = 0; keys && i < nj; i++)
			keys[i] = remote_key(rem, jobs[i].path);
		rc = keys ? ckpt_s3_hash_jobs(rem->s3, keys, jobs, nj, o ?
		    o->threads : 0, err) : ckpt_error_nomem(err);
		free(keys);
		if (rc)
			goto out;
	} else if (nj) {
		ckpt_hash_files_observed(jobs, nj, o ? o->threads : 0,
		    r->vp->fn ? vprogress_hash : NULL, r->vp, second ? NULL :
		    fuse_observe, plans, NULL);
	}
	for (size_t i = 0; i < nj; i++) {
		struct ckpt_hash_job *j = &jobs[i];
		struct vfile *vf = plans[i].vf;

		if (j->status) {
			vf->io_failed = j->status == CKPT_ERR_IO;
			file_finding(vf, j->status == CKPT_ERR_IO ? "io-error" :
			    "truncated", CKPT_SEV_ERROR, NULL, j->err.offset,
			    "%s", j->err.message);
			vf->hash_failed = true;
			vf->acc_lost |= !second;
			continue;
		}
		if (j->whole) {
			r->hashed += vf->m->size;
			memcpy(vf->digest, j->sha256, CKPT_SHA256_BYTES);
			vf->digest_ok = true;
			if (!vf->m->has_sha256 || memcmp(j->sha256,
			    vf->m->sha256, CKPT_SHA256_BYTES))
				vf->whole_bad = vf->hash_failed = true;
		}
		if (!second)
			vf->nranges_checked = j->nranges;
		for (size_t k = 0; k < j->nranges; k++) {
			size_t mi = plans[i].idx[k];
			const struct vman_range *mr = &vf->m->ranges[mi];

			r->hashed += mr->end - mr->offset;
			if (!memcmp(j->ranges[k].sha256, mr->sha256,
			    CKPT_SHA256_BYTES))
				continue;
			vf->range_bad[mi] = true;
			vf->hash_failed = true;
			if (vf->m->schema >= 2) {
				name_tensors(vf, mr);
				continue;
			}
			if (!mr->tensor) {
				vf->bad_chunks++;
				continue;
			}
			file_finding(vf, "tensor-changed", CKPT_SEV_ERROR,
			    mr->tensor, (int64_t)mr->offset, "tensor %s "
			    "changed (bytes %llu-%llu)", mr->tensor,
			    (unsigned long long)mr->offset,
			    (unsigned long long)mr->end);
		}
	}
out:
	for (size_t i = 0; i < r->nfiles; i++) {
		free(jobs[i].ranges);
		free(plans[i].idx);
	}
	free(jobs);
	free(plans);
	return rc;
}

static int
push_job(struct pool *p, size_t *cap, const struct job *j,
    struct ckpt_error *err)
{
	if (p->njobs == *cap) {
		size_t c = *cap ? 2 * *cap : 64;
		struct job *n = reallocarray(p->jobs, c, sizeof(*n));

		if (!n)
			return ckpt_error_nomem(err);
		p->jobs = n;
		*cap = c;
	}
	p->jobs[p->njobs++] = *j;
	return CKPT_OK;
}

/* ------------------------------------------------------------------ */
/* Putting it together                                                 */
/* ------------------------------------------------------------------ */

static const char *
short_reason(const struct ckpt_finding *x, char *buf, size_t len)
{
	if (!strcmp(x->id, "tensor-changed") && x->subject)
		snprintf(buf, len, "tensor %s changed", x->subject);
	else if ((!strcmp(x->id, "unsafe-global") ||
	    !strcmp(x->id, "pickle-global-not-allowed")) && x->subject)
		snprintf(buf, len, "unsafe global %s", x->subject);
	else if (!strcmp(x->id, "tensor-nonfinite") && x->subject)
		snprintf(buf, len, "tensor %s not finite", x->subject);
	else if (!strcmp(x->id, "size-mismatch") ||
	    !strcmp(x->id, "digest-mismatch"))
		snprintf(buf, len, "%s", x->message);
	else if (x->subject)
		snprintf(buf, len, "%s %s", x->id, x->subject);
	else
		snprintf(buf, len, "%s", x->id);
	return buf;
}

/* Ranks findings for the one-line reason: what changed first, then what
 * is unsafe, then the rest, errors before warnings. */
static int
reason_rank(const struct ckpt_finding *x)
{
	int base = x->severity == CKPT_SEV_ERROR ? 0 : 10;

	if (!strcmp(x->id, "tensor-changed"))
		return base;
	if (!strcmp(x->id, "size-mismatch") || !strcmp(x->id, "truncated"))
		return base + 1;
	if (strstr(x->id, "global") || strstr(x->id, "opcode") ||
	    strstr(x->id, "unsafe"))
		return base + 2;
	if (!strcmp(x->id, "digest-mismatch"))
		return base + 4;
	return base + 3;
}

static int
finish_file(struct ckpt_report *r, struct vfile *vf, struct ckpt_error *err)
{
	const struct ckpt_finding *best = NULL;
	char buf[512];

	vf->pub.path = vf->path;
	vf->pub.name = vf->name;
	vf->pub.size = vf->present ? (uint64_t)vf->st.st_size :
	    (vf->m ? vf->m->size : 0);
	vf->pub.has_digest = vf->digest_ok || (vf->cached &&
	    vf->m->has_sha256);
	memcpy(vf->pub.sha256, vf->digest, sizeof(vf->digest));
	vf->pub.hashed = vf->digest_ok;
	for (size_t i = 0; i < vf->findings.n; i++) {
		const struct ckpt_finding *x = &vf->findings.v[i];

		if (x->severity < CKPT_SEV_WARNING)
			continue;
		if (!best || reason_rank(x) < reason_rank(best))
			best = x;
	}
	if (!vf->present && vf->m)
		vf->pub.status = CKPT_VERIFY_MISSING;
	else if (vf->present && r->manifest && !vf->m)
		vf->pub.status = CKPT_VERIFY_EXTRA;
	else if (vf->io_failed)
		vf->pub.status = CKPT_VERIFY_UNREADABLE;
	else
		vf->pub.status = best ? CKPT_VERIFY_FAILED : CKPT_VERIFY_OK;
	if (best && vf->pub.status == CKPT_VERIFY_FAILED) {
		vf->reason = strdup(short_reason(best, buf, sizeof(buf)));
		if (!vf->reason)
			return ckpt_error_nomem(err);
	}
	vf->pub.reason = vf->reason;
	return CKPT_OK;
}

static int
merge_findings(struct flist *dst, const struct flist *src,
    struct ckpt_error *err)
{
	for (size_t i = 0; i < src->n; i++) {
		const struct ckpt_finding *x = &src->v[i];

		if (ckpt_flist_add(dst, x->id, x->severity, x->path, x->subject,
		    x->offset, "%s", x->message))
			return ckpt_error_nomem(err);
	}
	return CKPT_OK;
}

/*
 * Whole-checkpoint structure: an index's weight_map against its shards, a
 * DCP directory's chunk coverage.  Only directories that hold an index or
 * DCP metadata need it, and only those pay for reading headers twice.
 */
static void
check_layout(struct ckpt_report *r, const char *path, const struct pool *p)
{
	/* the allowlist too: a DCP range the shard walk did not find is
	 * read here (dcpcheck.c) and judged like every other pickle */
	struct ckpt_open_options oo = {
	    .version = CKPT_OPEN_OPTIONS_VERSION, .allow_globals = p->allow,
	    .nallow_globals = p->nallow };
	struct ckpt_checkpoint *c;
	struct ckpt_error e;
	bool need = false;

	for (size_t i = 0; i < r->nfiles; i++) {
		const char *n = r->files[i].name;
		const char *b = strrchr(n, '/');
		size_t l = strlen(n);

		b = b ? b + 1 : n;
		need |= r->files[i].present && ((l > 11 &&
		    !strcmp(n + l - 11, ".index.json")) ||
		    !strcmp(b, ".metadata"));
	}
	if (!need)
		return;
	ckpt_error_clear(&e);
	if (ckpt_checkpoint_open_ex(path, &oo, &c, &e)) {
		ckpt_flist_add(&r->top, "checkpoint-unreadable", CKPT_SEV_ERROR,
		    e.path[0] ? e.path : path, NULL, e.offset, "%s",
		    e.message);
		return;
	}
	for (size_t i = 0; i < ckpt_checkpoint_finding_count(c); i++) {
		const struct ckpt_finding *x = ckpt_checkpoint_finding(c, i);

		struct vfile *vf = NULL;

		/* Links are verify's own finding, per file. */
		if (!strcmp(x->id, "symlink"))
			continue;
		/* About one file: on that file's line. */
		for (size_t k = 0; x->path && k < r->nfiles && !vf; k++)
			if (!strcmp(r->files[k].path, x->path))
				vf = &r->files[k];
		if (vf)
			file_finding(vf, x->id, x->severity, x->subject,
			    x->offset, "%s", x->message);
		else
			ckpt_flist_add(&r->top, x->id, x->severity, x->path ?
			    x->path : path, x->subject, x->offset, "%s",
			    x->message);
	}
	ckpt_checkpoint_free(c);
}

/* The finding and state of a signature check's outcome rc (e: why). */
static void
note_signature(struct ckpt_report *r, int rc, const char *sig,
    const struct ckpt_error *e)
{
	switch (rc) {
	case CKPT_OK:
		r->sig_state = CKPT_SIG_VALID;
		ckpt_flist_add(&r->top, "signature-valid", CKPT_SEV_INFO, sig,
		    r->keyid, -1, "good signature by key %s", r->keyid);
		break;
	case CKPT_ERR_NOTFOUND:
		r->sig_state = CKPT_SIG_UNKNOWN_KEY;
		ckpt_flist_add(&r->top, "signature-unknown-key", CKPT_SEV_ERROR,
		    sig, r->keyid[0] ? r->keyid : NULL, -1, "%s",
		    e->message);
		break;
	case CKPT_ERR_CRYPTO:
		r->sig_state = CKPT_SIG_INVALID;
		ckpt_flist_add(&r->top, "signature-invalid", CKPT_SEV_ERROR,
		    sig, r->keyid[0] ? r->keyid : NULL, -1, "%s", e->message);
		break;
	default:
		r->sig_state = CKPT_SIG_INVALID;
		ckpt_flist_add(&r->top, "signature-malformed", CKPT_SEV_ERROR,
		    sig, NULL, e->offset, "%s", e->message);
		break;
	}
}

static void
check_signature(struct ckpt_report *r, const struct vmanifest *man,
    const struct ckpt_verify_options *o)
{
	struct ckpt_error e;
	char **keys = NULL;
	size_t nkeys = 0;
	char *sig;
	int rc;

	r->sig_state = CKPT_SIG_NONE;
	if (!man) {
		if (o && (o->flags & CKPT_VERIFY_REQUIRE_SIGNATURE))
			ckpt_flist_add(&r->top, "signature-missing",
			    CKPT_SEV_ERROR, r->path, NULL, -1, "no manifest, "
			    "so nothing is signed");
		return;
	}
	sig = ckpt_vman_signature_path(man);
	if (!sig || access(sig, F_OK)) {
		if (o && (o->flags & CKPT_VERIFY_REQUIRE_SIGNATURE))
			ckpt_flist_add(&r->top, "signature-missing",
			    CKPT_SEV_ERROR, man->path, NULL, -1, "the "
			    "manifest is not signed (no %s)", sig ? sig :
			    "signature");
		free(sig);
		return;
	}
	if (ckpt_vman_trusted_keys(o, man, &keys, &nkeys)) {
		ckpt_flist_add(&r->top, "signature-unchecked", CKPT_SEV_ERROR,
		    sig, NULL, -1, "out of memory listing trusted keys");
		free(sig);
		return;
	}
	rc = ckpt_signature_check(man->path, sig, (const char *const *)keys,
	    nkeys, r->keyid, &e);
	note_signature(r, rc, sig, &e);
	for (size_t i = 0; i < nkeys; i++)
		free(keys[i]);
	free(keys);
	free(sig);
}

/*
 * A checkpoint in an object store: the store holding it, as "s3://B/P"
 * (newly allocated; NULL when it is not in a store).  The caller's store
 * when it names one, else the one whose layout url is inside
 * (P/runs/RUN/NAME, with P/.ckpt/store.json), as verify finds the store
 * of a local directory.
 */
static char *
remote_store_url(const struct remote *rem, const char *url,
    const struct ckpt_verify_options *o)
{
	struct ckpt_s3_object obj;
	struct ckpt_error e;
	char *root, *marker = NULL, *slash;
	size_t n;

	if (o && o->store)
		return ckpt_s3_is_url(o->store) ? strdup(o->store) : NULL;
	if (!(root = strdup(url)))
		return NULL;
	n = strlen(root);
	while (n && root[n - 1] == '/')
		root[--n] = '\0';
	/* up three: NAME, RUN, then "runs" itself */
	for (int up = 0; up < 3; up++) {
		slash = strrchr(root, '/');
		if (!slash || (size_t)(slash - root) + 1 < rem->url_len ||
		    (up == 2 && strcmp(slash + 1, CKPT_STORE_RUNS))) {
			free(root);
			return NULL;
		}
		*slash = '\0';
	}
	/* "s3://B" is a store at the top of the bucket */
	n = strlen(root);
	if (asprintf(&marker, "%s%s%s", n >= rem->url_len ? root +
	    rem->url_len : "", n >= rem->url_len ? "/" : "",
	    CKPT_STORE_MARKER) < 0 || ckpt_s3_head(rem->s3, marker, &obj,
	    &e)) {
		free(marker);
		free(root);
		return NULL;
	}
	free(marker);
	return root;
}

struct key_objects {
	struct ckpt_s3 *s3;
	size_t plen;			/* of the keys' prefix */
	char **names, **texts;
	size_t *lens, n;
};

/* *p grown to n elements of size each; false (unchanged) when out of
 * memory. */
static bool
grow(void **p, size_t n, size_t size)
{
	void *q = reallocarray(*p, n, size);

	if (q)
		*p = q;
	return q != NULL;
}

/* Fetches each STORE/.ckpt/keys/NAME.pub (unreadable ones are left out,
 * as a local key file that does not read). */
static int
key_object(void *arg, const char *key, const struct ckpt_s3_object *obj)
{
	struct key_objects *k = arg;
	const char *name = key + k->plen;
	size_t l = strlen(name);
	struct ckpt_error e;
	char *text;
	size_t len;

	if (!obj || strchr(name, '/') || l <= 4 || strcmp(name + l - 4,
	    ".pub"))
		return 0;
	if (ckpt_s3_get_mem(k->s3, key, 0, CKPT_S3_TO_END, 4096, &text, &len,
	    NULL, &e))
		return 0;
	if (!grow((void **)&k->names, k->n + 1, sizeof(*k->names)) ||
	    !grow((void **)&k->texts, k->n + 1, sizeof(*k->texts)) ||
	    !grow((void **)&k->lens, k->n + 1, sizeof(*k->lens)) ||
	    !(k->names[k->n] = strdup(key))) {
		free(text);
		return CKPT_ERR_NOMEM;
	}
	k->texts[k->n] = text;
	k->lens[k->n++] = len;
	return 0;
}

static void
key_objects_free(struct key_objects *k)
{
	for (size_t i = 0; i < k->n; i++) {
		free(k->names[i]);
		free(k->texts[i]);
	}
	free(k->names);
	free(k->texts);
	free(k->lens);
	ckpt_s3_free(k->s3);
}

/* The trusted keys of a store in an object store: its .ckpt/keys/ *.pub
 * objects, in key order (as a local store's, sorted by name). */
static int
remote_store_keys(const char *store, struct key_objects *k,
    struct ckpt_error *err)
{
	char *prefix = NULL, *kp = NULL;
	size_t n;
	int rc;

	memset(k, 0, sizeof(*k));
	if ((rc = ckpt_s3_url_client(store, &k->s3, &prefix, err)))
		return rc;
	n = strlen(prefix);
	if (asprintf(&kp, "%s%s%s", prefix, n && prefix[n - 1] != '/' ?
	    "/" : "", CKPT_STORE_META "/keys/") < 0) {
		free(prefix);
		return ckpt_error_nomem(err);
	}
	k->plen = strlen(kp);
	rc = ckpt_s3_list(k->s3, kp, NULL, key_object, k, err);
	if (rc == CKPT_ERR_NOMEM)
		rc = ckpt_error_nomem(err);
	free(kp);
	free(prefix);
	return rc;
}

/* "sha256:" and 64 lower-case hex digits into d. */
static bool
digest_bytes(const char *s, unsigned char d[CKPT_SHA256_BYTES])
{
	if (!s || strncmp(s, "sha256:", 7) || strlen(s) != 7 + 2 *
	    CKPT_SHA256_BYTES)
		return false;
	for (size_t i = 0; i < 2 * CKPT_SHA256_BYTES; i++) {
		char c = s[7 + i];
		int v = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ?
		    c - 'a' + 10 : -1;

		if (v < 0)
			return false;
		if (i % 2)
			d[i / 2] = (unsigned char)(d[i / 2] | v);
		else
			d[i / 2] = (unsigned char)(v << 4);
	}
	return true;
}

/*
 * check_signature() for a checkpoint in an object store: its signature
 * object against the manifest fetched (by the digest of its bytes), the
 * keys trusted as locally: --key files, then the store's .ckpt/keys/
 * *.pub objects.  The same findings and states.
 */
static void
remote_signature(struct ckpt_report *r, const struct remote *rem,
    const struct vmanifest *man, const struct ckpt_verify_options *o)
{
	unsigned char d[CKPT_SHA256_BYTES];
	struct ckpt_verify_options lo;
	struct ckpt_key_text *texts = NULL;
	struct key_objects ko;
	struct ckpt_error e;
	char **keys = NULL, *sig = NULL, *key = NULL, *text = NULL, *store;
	size_t nkeys = 0, len = 0;
	int rc;

	memset(&ko, 0, sizeof(ko));
	ckpt_error_clear(&e);
	r->sig_state = CKPT_SIG_NONE;
	if (!man) {
		/* nothing signed: as check_signature says it */
		check_signature(r, man, o);
		return;
	}
	if (!rem->has_sig) {
		if (o && (o->flags & CKPT_VERIFY_REQUIRE_SIGNATURE))
			ckpt_flist_add(&r->top, "signature-missing",
			    CKPT_SEV_ERROR, man->path, NULL, -1, "the "
			    "manifest is not signed (no %s%s)", man->path,
			    ".sig");
		return;
	}
	if (!(sig = ckpt_vman_signature_path(man)) || asprintf(&key, "%s%s%s",
	    rem->prefix, CKPT_MANIFEST_NAME, ".sig") < 0) {
		key = NULL;
		rc = ckpt_error_nomem(&e);
		goto unchecked;
	}
	rc = ckpt_s3_get_mem(rem->s3, key, 0, CKPT_S3_TO_END, 4096, &text,
	    &len, NULL, &e);
	if (rc == CKPT_ERR_LIMIT) {
		note_signature(r, CKPT_ERR_FORMAT, sig, &e);
		goto out;
	}
	if (rc)
		goto unchecked;
	/* --key files only: the store's keys are objects (below), never
	 * a local directory spelled like the store's URL */
	if (o) {
		lo = *o;
		lo.store = NULL;
	}
	if (ckpt_vman_trusted_keys(o ? &lo : NULL, NULL, &keys, &nkeys)) {
		rc = ckpt_error_nomem(&e);
		goto unchecked;
	}
	store = remote_store_url(rem, r->path, o);
	rc = store ? remote_store_keys(store, &ko, &e) : CKPT_OK;
	free(store);
	if (rc)
		goto unchecked;
	if (ko.n && !(texts = calloc(ko.n, sizeof(*texts)))) {
		rc = ckpt_error_nomem(&e);
		goto unchecked;
	}
	for (size_t i = 0; i < ko.n; i++)
		texts[i] = (struct ckpt_key_text){ ko.names[i], ko.texts[i],
		    ko.lens[i] };
	if (!digest_bytes(man->digest, d)) {
		rc = ckpt_error_set(&e, CKPT_ERR_INTERNAL, man->path, -1,
		    "no digest of the manifest");
		goto unchecked;
	}
	rc = ckpt_signature_check_mem(man->path, d, sig, text, len,
	    (const char *const *)keys, nkeys, texts, ko.n, r->keyid, &e);
	note_signature(r, rc, sig, &e);
	goto out;
unchecked:
	/* The service failed us: said, never taken for a good signature. */
	ckpt_flist_add(&r->top, "signature-unchecked", CKPT_SEV_ERROR,
	    sig ? sig : r->path, NULL, -1, "the signature could not be "
	    "checked: %s", e.message);
out:
	for (size_t i = 0; i < nkeys; i++)
		free(keys[i]);
	free(keys);
	free(texts);
	key_objects_free(&ko);
	free(text);
	free(key);
	free(sig);
}

/* Queues the structure check of one file and decides its hashing. */
static int
plan_file(struct pool *p, size_t *cap, struct vfile *vf,
    const struct ckpt_verify_options *o, struct vcache *cache,
    struct ckpt_error *err)
{
	unsigned int flags = o ? o->flags : 0;
	struct job j;
	int rc;

	memset(&j, 0, sizeof(j));
	j.vf = vf;
	if (!vf->present)
		return CKPT_OK;
	if (!S_ISREG(vf->st.st_mode))
		return file_finding(vf, S_ISLNK(vf->st.st_mode) ? "symlink" :
		    "not-regular-file", CKPT_SEV_ERROR, NULL, -1, "%s; a "
		    "checkpoint holds regular files only",
		    S_ISLNK(vf->st.st_mode) ? "a symbolic link, not followed"
		    : "not a regular file");
	/* Remote --fast: the listing against the manifest, nothing read. */
	if (!(p->remote && vf->m && (flags & CKPT_VERIFY_FAST)) &&
	    (rc = push_job(p, cap, &j, err)))
		return rc;
	if (!vf->m)
		return CKPT_OK;
	if ((uint64_t)vf->st.st_size != vf->m->size) {
		vf->hash_failed = true;
		return file_finding(vf, "size-mismatch", CKPT_SEV_ERROR, NULL,
		    -1, "size %llu, expected %llu",
		    (unsigned long long)vf->st.st_size,
		    (unsigned long long)vf->m->size);
	}
	if (p->remote && (flags & CKPT_VERIFY_FAST))
		return CKPT_OK;
	if ((flags & CKPT_VERIFY_FAST) && ckpt_vcache_lookup(cache, &vf->st,
	    vf->digest) && !memcmp(vf->digest, vf->m->cache_key,
	    CKPT_SHA256_BYTES)) {
		vf->cached = true;
		memcpy(vf->digest, vf->m->sha256, CKPT_SHA256_BYTES);
		return CKPT_OK;
	}
	vf->range_bad = calloc(vf->m->nranges ? vf->m->nranges : 1,
	    sizeof(bool));
	if (!vf->range_bad)
		return ckpt_error_nomem(err);
	vf->want_hash = true;
	if ((flags & CKPT_VERIFY_NUMERICS) && !p->remote)
		return fuse_plan(vf, err);
	return CKPT_OK;
}

static bool
file_has_finding(const struct vfile *vf, const char *id)
{
	for (size_t k = 0; k < vf->findings.n; k++)
		if (!strcmp(vf->findings.v[k].id, id))
			return true;
	return false;
}

static void
note_mismatches(struct ckpt_report *r)
{
	for (size_t i = 0; i < r->nfiles; i++) {
		struct vfile *vf = &r->files[i];
		bool tensor = false;
		size_t nchunks = 0;

		/* Content changed while another name links to the same
		 * inode: the likely cause is an in-place edit through that
		 * name (the trainer's directory of save --adopt or --link). */
		if (vf->present && !vf->io_failed && vf->m &&
		    S_ISREG(vf->st.st_mode) && vf->st.st_nlink > 1 &&
		    (vf->hash_failed || (uint64_t)vf->st.st_size !=
		    vf->m->size))
			file_finding(vf, "hard-link-modified", CKPT_SEV_WARNING,
			    NULL, -1, "the file has %llu hard links and its "
			    "content changed: it was probably modified in "
			    "place through another link (such as the "
			    "directory 'ckpt save --adopt' or '--link' took it "
			    "from)", (unsigned long long)vf->st.st_nlink);
		if (!vf->hash_failed || vf->io_failed || !vf->present ||
		    (uint64_t)vf->st.st_size != vf->m->size)
			continue;
		for (size_t k = 0; k < vf->findings.n; k++)
			tensor |= !strcmp(vf->findings.v[k].id,
			    "tensor-changed");
		for (size_t k = 0; k < vf->m->nranges; k++)
			nchunks += !vf->m->ranges[k].tensor;
		if (vf->bad_chunks)
			file_finding(vf, "digest-mismatch", CKPT_SEV_ERROR,
			    NULL, -1, "%llu of %zu %s differ from the "
			    "manifest%s", (unsigned long long)vf->bad_chunks,
			    nchunks, vf->m->schema >= 2 ? "ranges" : "chunks",
			    tensor ? "" : ", outside any recorded tensor");
		else if (!tensor && vf->whole_bad && vf->nranges_checked)
			file_finding(vf, "digest-mismatch", CKPT_SEV_ERROR,
			    NULL, -1, "the whole-file SHA-256 differs from "
			    "the manifest, though every range matches: the "
			    "manifest's sha256 of this file is wrong");
		else if (!tensor)
			file_finding(vf, "digest-mismatch", CKPT_SEV_ERROR,
			    NULL, -1, "SHA-256 differs from the manifest");
	}
}

/*
 * The globals to admit: the caller's, then those of the store's ckpt.yaml
 * (verify.allow_globals).  A ckpt.yaml that does not parse admits nothing
 * more, which can only fail more pickles; a finding says why.
 */
static int
allowed_globals(const struct ckpt_verify_options *o,
    const struct vmanifest *man, struct ckpt_policy_config **cfg,
    const char ***list, size_t *n, struct flist *top)
{
	char *root = o && o->store ? strdup(o->store) : man && man->dir ?
	    ckpt_vman_store_root(man->dir) : NULL;
	const char *const *extra = NULL;
	size_t nextra = 0, nown = o ? o->nallow_globals : 0;
	char *yaml = NULL;
	struct ckpt_error e;

	*cfg = NULL;
	*list = NULL;
	*n = 0;
	if (root && asprintf(&yaml, "%s/ckpt.yaml", root) < 0)
		yaml = NULL;
	free(root);
	ckpt_error_clear(&e);
	/* A missing ckpt.yaml loads as an empty one. */
	if (yaml) {
		if (ckpt_policy_config_load(yaml, cfg, &e))
			ckpt_flist_add(top, "config-unreadable", CKPT_SEV_INFO,
			    yaml, NULL, -1,
			    "%s; its verify.allow_globals were not "
			    "applied", e.message);
		else
			extra = ckpt_policy_config_allow_globals(*cfg, &nextra);
	}
	free(yaml);
	if (!nown && !nextra)
		return CKPT_OK;
	*list = calloc(nown + nextra, sizeof(**list));
	if (!*list)
		return CKPT_ERR_NOMEM;
	for (size_t i = 0; i < nown; i++)
		(*list)[(*n)++] = o->allow_globals[i];
	for (size_t i = 0; i < nextra; i++)
		(*list)[(*n)++] = extra[i];
	return CKPT_OK;
}

/* What verify of a remote checkpoint does not do, said rather than
 * passed over in silence. */
static void
remote_limits(struct ckpt_report *r, const struct vmanifest *man,
    const struct ckpt_verify_options *o)
{
	unsigned int flags = o ? o->flags : 0;

	if (man && (flags & CKPT_VERIFY_FAST))
		ckpt_flist_add(&r->top, "sizes-only", CKPT_SEV_INFO, r->path,
		    NULL, -1, "--fast on an object store: the listing's sizes "
		    "against the manifest; no byte was read");
}

int
ckpt_verify(const char *path, const struct ckpt_verify_options *o,
    struct ckpt_report **out, struct ckpt_error *err)
{
	struct ckpt_policy_config *cfg = NULL;
	const char **allow = NULL;
	struct vmanifest *man = NULL;
	struct vcache *cache = NULL;
	struct ckpt_report *r;
	struct remote rem, *remote = NULL;
	struct vprogress vp = { .fn = o ? o->progress : NULL,
	    .data = o ? o->progress_data : NULL };
	struct walk w;
	struct pool p;
	struct stat st;
	size_t cap = 0;
	int rc;

	if (o && (rc = ckpt_options_check(o->version,
	    CKPT_VERIFY_OPTIONS_VERSION, "ckpt_verify_options", err)))
		return rc;
	if (ckpt_s3_is_url(path)) {
		if ((rc = remote_open(path, &rem, &st, err)))
			return rc;
		remote = &rem;
	} else if (stat(path, &st)) {
		return ckpt_error_errno(err, path, "cannot verify");
	}
	r = calloc(1, sizeof(*r));
	if (!r || !(r->path = strdup(path))) {
		free(r);
		if (remote)
			remote_close(remote);
		return ckpt_error_nomem(err);
	}
	r->sig_state = CKPT_SIG_NONE;
	memset(&p, 0, sizeof(p));
	pthread_mutex_init(&p.lock, NULL);
	pthread_mutex_init(&vp.lock, NULL);
	r->vp = p.vp = &vp;
	p.flags = o ? o->flags : 0;
	p.threads = o ? o->threads : 0;
	p.remote = remote;
	memset(&w, 0, sizeof(w));
	w.r = r;

	rc = remote ? (S_ISDIR(st.st_mode) ? remote_manifest(remote, path, o,
	    &man, &r->top, err) : CKPT_OK) : ckpt_vman_load(path,
	    S_ISDIR(st.st_mode), o, &man, &r->top, err);
	if (rc)
		goto out;
	if (allowed_globals(o, man, &cfg, &allow, &p.nallow, &r->top)) {
		rc = ckpt_error_nomem(err);
		goto out;
	}
	p.allow = allow;
	if (man && !(r->manifest = strdup(man->path))) {
		rc = ckpt_error_nomem(err);
		goto out;
	}
	if (S_ISDIR(st.st_mode)) {
		w.root = path;
		if ((rc = remote ? remote_walk(&w, remote, path, err) :
		    walk_dir(&w, "", 0, err)))
			goto out;
	} else {
		const char *base = strrchr(path, '/');
		struct vfile *vf = add_file(&w, base ? base + 1 : path, path,
		    err);

		if (!vf) {
			rc = err ? err->code : CKPT_ERR_NOMEM;
			goto out;
		}
		if (remote)
			vf->st = st;
		else
			lstat(path, &vf->st);
		vf->present = true;
	}
	/* Match the listing with the manifest; what it lists and the disk
	 * lacks is missing. */
	if (man) {
		for (size_t i = 0; i < r->nfiles; i++)
			r->files[i].m = ckpt_vman_find(man, r->files[i].name);
		for (size_t i = 0; i < man->nfiles; i++) {
			struct vfile *vf;
			char *fp;

			if (man->files[i].seen || !S_ISDIR(st.st_mode))
				continue;
			fp = join(path, man->files[i].name);
			vf = fp ? add_file(&w, man->files[i].name, fp, err) :
			    NULL;
			free(fp);
			if (!vf) {
				rc = ckpt_error_nomem(err);
				goto out;
			}
			vf->m = &man->files[i];
			file_finding(vf, "file-missing", CKPT_SEV_ERROR, NULL,
			    -1, "listed in the manifest, missing on disk");
		}
		if (r->nfiles)
			qsort(r->files, r->nfiles, sizeof(*r->files),
			    cmp_vfile);
		/* The locks moved with the array: make them new. */
		for (size_t i = 0; i < r->nfiles; i++)
			pthread_mutex_init(&r->files[i].lock, NULL);
		for (size_t i = 0; i < r->nfiles; i++)
			if (r->files[i].present && !r->files[i].m)
				file_finding(&r->files[i], "file-extra",
				    CKPT_SEV_ERROR, NULL, -1, "on disk, not "
				    "in the manifest");
	} else if (!S_ISDIR(st.st_mode) || r->nfiles) {
		ckpt_flist_add(&r->top, "no-manifest", CKPT_SEV_INFO, path,
		    NULL, -1, "no manifest: structure, safety%s only",
		    p.flags & CKPT_VERIFY_NUMERICS ? " and numerics" : "");
	}
	if (!man) {
		if (r->nfiles)
			qsort(r->files, r->nfiles, sizeof(*r->files),
			    cmp_vfile);
		for (size_t i = 0; i < r->nfiles; i++)
			pthread_mutex_init(&r->files[i].lock, NULL);
	}
	if (!r->nfiles)
		ckpt_flist_add(&r->top, "empty", CKPT_SEV_ERROR, path, NULL, -1,
		    "no files to verify");
	/* The mutexes must not move once threads run: the array is final
	 * from here on. */
	if (man && !remote && !(p.flags & CKPT_VERIFY_NO_CACHE))
		ckpt_vcache_open(o, man, &cache);
	for (size_t i = 0; i < r->nfiles; i++)
		if ((rc = plan_file(&p, &cap, &r->files[i], o, cache, err)))
			goto out;
	if (p.flags & CKPT_VERIFY_NUMERICS)
		for (size_t i = 0; i < p.njobs; i++)
			vp.scan_total += (uint64_t)p.jobs[i].vf->st.st_size;
	if (remote) {
		remote_signature(r, remote, man, o);
		remote_limits(r, man, o);
	} else {
		check_signature(r, man, o);
		if (S_ISDIR(st.st_mode))
			check_layout(r, path, &p);
	}
	if (!remote && o && o->oms_bundle && o->oms_key)
		ckpt_vman_oms_check(path, o->oms_bundle, o->oms_key, o->threads,
		    &r->top);
	pool_start(&p, o);
	rc = hash_phase(r, o, p.remote, false, err);
	if (!rc)
		rc = hash_phase(r, o, p.remote, true, err);
	if (pool_wait(&p, err) && !rc)
		rc = err ? err->code : CKPT_ERR_NOMEM;
	if (rc)
		goto out;
	for (size_t i = 0; i < r->nfiles; i++)
		emit_notes(&r->files[i]);
	note_mismatches(r);
	for (size_t i = 0; i < r->nfiles; i++) {
		struct vfile *vf = &r->files[i];

		if (vf->cached)
			r->cached += vf->m->size;
		/* A file whose every recorded digest matched: the cache may
		 * remember it (keyed by what the entry records). */
		if (vf->m && !vf->hash_failed && !vf->io_failed &&
		    !vf->cached && vf->present && S_ISREG(vf->st.st_mode) &&
		    !file_has_finding(vf, "content-digest-mismatch") &&
		    !file_has_finding(vf, "content-unchecked"))
			ckpt_vcache_store(cache, &vf->st, vf->m->cache_key);
	}
	ckpt_vcache_close(cache);
	cache = NULL;

	if ((rc = merge_findings(&r->findings, &r->top, err)))
		goto out;
	r->ntop = r->findings.n;
	r->pubfiles = calloc(r->nfiles ? r->nfiles : 1,
	    sizeof(*r->pubfiles));
	if (!r->pubfiles) {
		rc = ckpt_error_nomem(err);
		goto out;
	}
	for (size_t i = 0; i < r->nfiles; i++) {
		if ((rc = finish_file(r, &r->files[i], err)) ||
		    (rc = merge_findings(&r->findings, &r->files[i].findings,
		    err)))
			goto out;
		r->pubfiles[i] = r->files[i].pub;
	}
	r->ok = true;
	for (size_t i = 0; i < r->findings.n; i++)
		if (r->findings.v[i].severity >= CKPT_SEV_WARNING)
			r->ok = false;
out:
	ckpt_vcache_close(cache);
	free(p.jobs);
	free(allow);
	ckpt_policy_config_free(cfg);
	pthread_mutex_destroy(&p.lock);
	pthread_mutex_destroy(&vp.lock);
	r->vp = NULL;
	ckpt_vman_free(man);
	if (remote)
		remote_close(remote);
	if (rc) {
		ckpt_report_free(r);
		return rc;
	}
	*out = r;
	return CKPT_OK;
}
