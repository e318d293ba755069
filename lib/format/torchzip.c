/* SPDX-License-Identifier: MIT */
/*
 * torchzip.c - PyTorch checkpoints: the torch.save zip (>= 1.6, also
 * TorchScript archives, Lightning .ckpt), the legacy pickle stream (< 1.6)
 * and bare pickles.  data.pkl goes through the restricted pickle reader;
 * storages are located by offset in the zip (or in the legacy stream) and
 * every tensor view is bounds-checked against its storage, so that
 * ckpt_tensor_read() can read any element without trusting the pickle.
 */
#include "util/internal.h"

#ifdef __GLIBC__
#include <malloc.h>
#endif

#include "format/pickle.h"
#include "format/zip.h"

/* data.pkl and legacy pickles are read whole; beyond this is a bomb. */
#define MAX_PICKLE_BYTES ((size_t)1 << 30)

struct adder {
	struct ckpt_file *f;
	bool big_endian;
	/* the direct path (pk_opts.take): the archive, for storages, and
	 * whether a tensor would need a finding (then it is declined) */
	struct ckpt_zip *z;
	size_t pkl_len;
	bool quiet, refused;
};

static bool resolve_storage(struct ckpt_file *f, struct ckpt_zip *z,
    struct pk_storage *s, bool big, bool quiet);

static bool
contiguous(unsigned nd, const uint64_t *shape, const int64_t *stride)
{
	uint64_t want = 1;

	for (unsigned d = nd; d-- > 0;) {
		if (shape[d] != 1 && (uint64_t)stride[d] != want)
			return false;
		if (!ckpt_mul_u64(want, shape[d], &want))
			return false;
	}
	return true;
}

/*
 * One named tensor: bounds of the view within its storage (security.md
 * T03: offset + sum((size - 1) * stride) < storage numel, all checked), and
 * the absolute byte range ckpt_tensor_read() may touch.
 */
static int
add_tensor(void *ctx, const char *name, struct pk_node *n,
    struct ckpt_error *err)
{
	struct adder *a = ctx;
	struct pk_tensor *x = n->u.tensor;
	struct pk_storage *s = x->storage;
	struct ckpt_tensor t = { 0 };
	uint64_t numel = 1, esize, max = 0, selems = 0, v;
	bool ok = true;

	for (unsigned d = 0; d < x->ndim; d++)
		if (!ckpt_mul_u64(numel, x->shape[d], &numel))
			return a->quiet ? (a->refused = true, CKPT_OK) :
			    ckpt_file_add_finding(a->f, "torch-bad-tensor",
			    CKPT_SEV_ERROR, name, -1, "tensor '%s': element "
			    "count overflows", name);
	esize = ckpt_dtype_bits(x->dtype) / 8;
	t.name = name;
	t.dtype = x->dtype;
	t.ndim = x->ndim;
	t.shape = x->shape;
	t.strides = x->stride;
	t.numel = numel;
	t.nbytes = numel * esize;	/* <= storage bytes once checked */
	t.storage_offset = x->offset;
	t.kind = x->kind;
	t.contiguous = contiguous(x->ndim, x->shape, x->stride);
	if (!s) {
		/* meta tensors have no data */
		ok = false;
	} else {
		t.storage = s->key;
		t.big_endian = s->big_endian;
		selems = esize ? s->nbytes / esize : 0;
		if (!s->resolved)
			ok = false;
	}
	if (!ckpt_mul_u64(numel, esize, &t.nbytes))
		ok = false;
	if (s && s->sized && numel) {
		bool inb = true;

		max = x->offset;
		for (unsigned d = 0; d < x->ndim && inb; d++)
			if (!ckpt_mul_u64(x->shape[d] - 1,
			    (uint64_t)x->stride[d], &v) ||
			    !ckpt_add_u64(max, v, &max))
				inb = false;
		if ((!inb || max >= selems) && a->quiet) {
			a->refused = true;
			return CKPT_OK;
		}
		if (!inb || max >= selems) {
			ok = false;
			ckpt_file_add_finding(a->f, "torch-view-out-of-bounds",
			    CKPT_SEV_ERROR, name, s->pos, "tensor '%s' reaches "
			    "element %s%llu of storage '%s', which holds %llu",
			    name, inb ? "" : "beyond ",
			    (unsigned long long)max, s->key ? s->key : "",
			    (unsigned long long)selems);
		}
	}
	if (ok && numel) {
		t.offset = s->data_offset + x->offset * esize;
		t.span = (max - x->offset + 1) * esize;
	} else if (ok) {
		t.offset = s->data_offset;
	}
	/* Unreadable tensors keep offset/span 0: ckpt_tensor_read refuses
	 * them rather than read the wrong bytes. */
	return ckpt_file_add_tensor(a->f, &t, err);
}

/* A short text record ("version", "byteorder"): NUL-terminated, trimmed. */
static int
small_record(struct ckpt_file *f, struct ckpt_zip_entry *e, char *buf,
    size_t size, struct ckpt_error *err)
{
	unsigned char *data;
	size_t len;
	int rc;

	if (e->usize >= size) {
		buf[0] = '\0';
		return CKPT_OK;
	}
	rc = ckpt_zip_read(f, e, size, &data, &len, err);
	if (rc)
		return rc;
	memcpy(buf, data, len);
	buf[len] = '\0';
	while (len && (buf[len - 1] == '\n' || buf[len - 1] == '\r'))
		buf[--len] = '\0';
	free(data);
	return CKPT_OK;
}

static bool
known_record(const char *rest, bool script)
{
	static const char *const names[] = {
		"data.pkl", "version", "byteorder", ".format_version",
		".storage_alignment",
	};

	for (size_t i = 0; i < CKPT_ARRAY_SIZE(names); i++)
		if (!strcmp(rest, names[i]))
			return true;
	if (!strncmp(rest, ".data/", 6))
		return true;
	if (script && (!strcmp(rest, "constants.pkl") ||
	    !strcmp(rest, "attributes.pkl") || !strcmp(rest, "model.json") ||
	    !strncmp(rest, "code/", 5) || !strncmp(rest, "extra/", 6) ||
	    !strncmp(rest, "constants/", 10)))
		return true;
	return false;
}

/*
 * Storage s: data/<key> must exist, be stored, and hold numel x itemsize
 * bytes exactly (security.md T02, T07).  Quiet (the direct path): what
 * would be a finding only returns false.
 */
static bool
resolve_storage(struct ckpt_file *f, struct ckpt_zip *z,
    struct pk_storage *s, bool big, bool quiet)
{
	struct ckpt_zip_entry *e;
	uint64_t want;
	char rec[160];
	size_t kl = strlen(s->key);

	if (kl > sizeof(rec) - 6)	/* persistent() keeps them shorter */
		kl = sizeof(rec) - 6;
	memcpy(rec, "data/", 5);
	memcpy(rec + 5, s->key, kl);
	rec[5 + kl] = '\0';
	s->big_endian = big;
	e = ckpt_zip_find(z, rec);
	if (!e) {
		if (!quiet)
			ckpt_file_add_finding(f, "torch-missing-storage",
			    CKPT_SEV_ERROR, s->key, s->pos, "storage '%s' has "
			    "no record %s/%s", s->key, z->prefix, rec);
		return false;
	}
	if (s->untyped)
		want = s->numel;
	else if (!ckpt_mul_u64(s->numel, ckpt_dtype_bits(s->dtype) / 8,
	    &want))
		want = UINT64_MAX;
	if (quiet && (e->usize != want || e->method != 0 || e->encrypted))
		return false;
	/* views are checked against the bytes really there */
	s->nbytes = e->usize;
	s->sized = true;
	if (e->usize != want) {
		ckpt_file_add_finding(f, "torch-storage-size", CKPT_SEV_ERROR,
		    s->key, (int64_t)e->lho, "storage '%s' declares %llu "
		    "elements (%llu bytes) but its record holds %llu bytes",
		    s->key, (unsigned long long)s->numel,
		    (unsigned long long)want, (unsigned long long)e->usize);
		return false;
	}
	if (e->method != 0 || e->encrypted) {
		ckpt_file_add_finding(f, "torch-storage-compressed",
		    CKPT_SEV_WARNING, s->key, (int64_t)e->lho, "storage record"
		    " '%s' is compressed or encrypted; its tensors cannot be "
		    "read by offset", e->name);
		return false;
	}
	s->data_offset = e->data_offset;
	s->nbytes = e->usize;
	s->resolved = true;
	return true;
}

/* Every storage the direct path did not resolve already. */
static void
resolve_storages(struct ckpt_file *f, struct ckpt_zip *z,
    struct ckpt_pickle *p, bool big)
{
	for (size_t i = 0; i < p->nstorages; i++)
		if (!p->storages[i]->resolved)
			resolve_storage(f, z, p->storages[i], big, false);
}

/*
 * pk_opts.take: a tensor of the root dict into the table at once, when
 * it needs no finding (its storage resolves, its view is in bounds);
 * else declined, and the tree is walked as before.  The table is sized
 * at the first: about a tensor per data/ record, and no more than the
 * pickle could describe (a rebuild call takes over 40 bytes).
 */
static int
take_tensor(void *ctx, const char *key, size_t len, struct pk_node *n,
    const char **kept, struct ckpt_error *err)
{
	struct adder *a = ctx;
	struct pk_storage *s = n->u.tensor->storage;
	char small[256], *name = small;
	int rc;

	*kept = NULL;
	if (!a->f->tensors_cap) {
		size_t est = a->z->n < a->pkl_len / 40 ? a->z->n :
		    a->pkl_len / 40;

		if ((rc = ckpt_file_reserve_tensors(a->f, est ? est : 1,
		    err)))
			return rc;
	}
	if (s && !s->resolved && !resolve_storage(a->f, a->z, s,
	    a->big_endian, true))
		return CKPT_OK;
	if (len >= sizeof(small) && !(name = malloc(len + 1)))
		return ckpt_error_nomem(err);
	memcpy(name, key, len);
	name[len] = '\0';
	a->quiet = true;
	a->refused = false;
	rc = add_tensor(a, name, n, err);
	a->quiet = false;
	if (!rc && !a->refused)
		*kept = a->f->tensors[a->f->ntensors - 1].name;
	if (name != small)
		free(name);
	return rc;
}

static int
walk_into_file(struct ckpt_file *f, struct ckpt_pickle *p,
    const struct pk_opts *o, bool big, struct ckpt_error *err)
{
	struct adder a = { .f = f, .big_endian = big };
	char *json = NULL;
	int rc;

	/* the table at its size at once: doubling a 40,000-entry table
	 * leaves a quarter to a half of it unused (the direct path filled
	 * it already) */
	if (!p->direct_ok &&
	    (rc = ckpt_file_reserve_tensors(f, p->ntensors, err)))
		return rc;
	rc = ckpt_pickle_walk(f, p, o, add_tensor, &a, &json, err);
	if (rc) {
		free(json);
		return rc;
	}
	ckpt_file_set_metadata(f, json);
	return CKPT_OK;
}

static bool
has_suffix_entry(const struct ckpt_zip *z, const char *suffix)
{
	size_t sl = strlen(suffix);

	for (size_t i = 0; i < z->n; i++)
		if (z->entries[i].name_len >= sl && !memcmp(z->entries[i].name +
		    z->entries[i].name_len - sl, suffix, sl))
			return true;
	return false;
}

static void
priv_free_zip(void *priv)
{
	ckpt_zip_free(priv);
}

/* Forgets the findings of an attempt that is about to be repeated. */
static void
drop_findings(struct ckpt_file *f, size_t mark)
{
	ckpt_findings_truncate(f->findings, &f->nfindings, mark);
}

static int read_archive(struct ckpt_file *f, uint64_t base, uint64_t alen,
    struct ckpt_error *err);

/* DCP's FileSystemWriter names its shards *.distcp; nothing else does. */
static bool
distcp_name(const char *path)
{
	size_t n = strlen(path);

	return n > 7 && !strcmp(path + n - 7, ".distcp");
}

/* Copies what reading one archive of a shard found into the shard's
 * findings, saying which archive: the shard is what verify, inspect and
 * save judge. */
static int
keep_archive_findings(struct ckpt_file *f, const struct ckpt_file *a,
    uint64_t base, uint64_t len)
{
	int rc = CKPT_OK;

	for (size_t i = 0; !rc && i < a->nglobals; i++)
		rc = ckpt_file_add_global(f, a->globals[i].name,
		    a->globals[i].allowed);
	for (size_t i = 0; !rc && i < a->nfindings; i++) {
		const struct ckpt_finding *x = &a->findings[i];

		if (x->severity == CKPT_SEV_INFO)
			continue;
		rc = ckpt_file_add_finding(f, x->id, x->severity, x->subject,
		    x->offset, "archive at bytes %llu-%llu: %s",
		    (unsigned long long)base, (unsigned long long)(base + len),
		    x->message);
	}
	return rc;
}

/*
 * Reads the torch.save archive at [base, base + len) of shard f as a plain
 * torch file is read (read_archive: the strict pickle reader, f's
 * allowlist), so that a global in a chunk or bytes item is judged as it
 * would be in a .pt: torch.load runs each archive DCP points it at.  The
 * shard keeps no tensors (its .metadata says what they are).
 */
static int
scan_archive(struct ckpt_file *f, uint64_t base, uint64_t len,
    struct ckpt_error *err)
{
	struct ckpt_file *a = NULL;
	uint64_t *r;
	int rc;

	if (f->flags & CKPT_OPEN_NO_PICKLE)
		return CKPT_OK;
	/* where it lies, so that the .metadata's ranges can be held to the
	 * archives scanned here (dcpcheck.c) */
	r = realloc(f->archives, (f->narchives + 1) * 2 * sizeof(*r));
	if (!r)
		return ckpt_error_nomem(err);
	f->archives = r;
	r[f->narchives * 2] = base;
	r[f->narchives * 2 + 1] = base + len;
	f->narchives++;
	rc = ckpt_torchzip_open_archive(f, base, len, f->allow_globals,
	    f->nallow_globals, &a, err);
	if (rc == CKPT_ERR_FORMAT || rc == CKPT_ERR_LIMIT ||
	    rc == CKPT_ERR_UNSUPPORTED)
		rc = ckpt_file_add_finding(f, "dcp-archive-unreadable",
		    CKPT_SEV_ERROR, NULL, err && err->offset >= 0 ?
		    err->offset : (int64_t)base, "archive at bytes %llu-%llu: "
		    "%s", (unsigned long long)base, (unsigned long long)(base +
		    len), err ? err->message : "unreadable");
	else if (!rc)
		rc = keep_archive_findings(f, a, base, len);
	ckpt_torchzip_archive_free(a);
	return rc;
}

int
ckpt_torchzip_open_archive(const struct ckpt_file *f, uint64_t base,
    uint64_t len, const char *const *allow, size_t nallow,
    struct ckpt_file **out, struct ckpt_error *err)
{
	struct ckpt_file *a;
	uint64_t end;
	int rc;

	*out = NULL;
	if (!ckpt_add_u64(base, len, &end) || end > f->size)
		return ckpt_error_set(err, CKPT_ERR_INVALID, f->path,
		    (int64_t)base, "bad archive slice");
	if (!(a = calloc(1, sizeof(*a))))
		return ckpt_error_nomem(err);
	/* The shard's bytes, borrowed: its descriptor, or its source and
	 * block cache (a remote shard), given back before the free. */
	a->fd = f->fd;
	a->src = f->src;
	a->cache = f->cache;
	a->size = f->size;
	a->flags = f->flags;
	a->format = CKPT_FORMAT_TORCH_ZIP;
	a->allow_globals = allow;
	a->nallow_globals = nallow;
	if (!(a->path = strdup(f->path)))
		rc = ckpt_error_nomem(err);
	else
		rc = read_archive(a, base, len, err);
	a->allow_globals = NULL;
	a->nallow_globals = 0;
	if (rc) {
		ckpt_torchzip_archive_free(a);
		return rc;
	}
	*out = a;
	return CKPT_OK;
}

void
ckpt_torchzip_archive_free(struct ckpt_file *a)
{
	if (!a)
		return;
	a->fd = -1;
	a->src = NULL;
	a->cache = NULL;
	ckpt_file_free(a);
}

int
ckpt_torchzip_read(struct ckpt_file *f, struct ckpt_error *err)
{
	uint64_t start = 0;
	bool located = !ckpt_zip_locate(f, 0, f->size, &start, NULL);

	/* torch.save archives back to back: a DCP .distcp shard, read slice
	 * by slice through its .metadata.  A shard of one archive is one
	 * too: read alone, its chunk would pass for a tensor named "". */
	if (located && (start > 0 || distcp_name(f->path))) {
		size_t count = 1;
		uint64_t end = start;
		int rc = scan_archive(f, start, f->size - start, err);

		while (!rc && end > 0 && count < 1000000 &&
		    !ckpt_zip_locate(f, 0, end, &start, NULL) && start < end) {
			rc = scan_archive(f, start, end - start, err);
			count++;
			end = start;
		}
		if (rc)
			return rc;
		f->format = CKPT_FORMAT_DCP_SHARD;
		return ckpt_file_add_finding(f, "dcp-shard", CKPT_SEV_INFO,
		    NULL, -1, "%zu archive%s%s: a distributed checkpoint "
		    "shard, read through its .metadata", count, count == 1 ?
		    "" : "s back to back", end ? " after unrecognised bytes" :
		    "");
	}
	return read_archive(f, 0, f->size, err);
}

int
ckpt_torchzip_read_slice(struct ckpt_file *f, uint64_t base, uint64_t len,
    struct ckpt_error *err)
{
	uint64_t end;

	if (f->priv || !ckpt_add_u64(base, len, &end) || end > f->size)
		return ckpt_error_set(err, CKPT_ERR_INVALID, f->path,
		    (int64_t)base, "bad archive slice");
	return read_archive(f, base, len, err);
}

/*
 * data.pkl, its state dict's tensors taken into the table as it runs
 * (take_tensor).  When the pickle turns out to be more than a dict of
 * plain tensors after some were taken, what that attempt added goes and
 * the pickle runs again the old way, so that the findings and the tree
 * are exactly the walk's.
 */
static int
parse_data_pkl(struct ckpt_file *f, struct ckpt_zip *z, bool big,
    const unsigned char *buf, size_t len, struct pk_opts *o,
    struct ckpt_pickle **p, struct ckpt_error *err)
{
	struct adder a = { .f = f, .big_endian = big, .z = z,
	    .pkl_len = len };
	size_t mark = f->nfindings;
	int rc;

	if (!f->ntensors) {
		o->take = take_tensor;
		o->take_ctx = &a;
	}
	rc = ckpt_pickle_parse(f, buf, len, o, p, NULL, err);
	o->take = NULL;
	o->take_ctx = NULL;
	if (!*p || !(*p)->ndirect || (*p)->direct_ok)
		return rc;
	ckpt_pickle_free(*p);
	*p = NULL;
	drop_findings(f, mark);
	ckpt_file_clear_tensors(f);
	return ckpt_pickle_parse(f, buf, len, o, p, NULL, err);
}

/*
 * The nodes just freed were 64 KiB slabs in the middle of the heap, which
 * malloc keeps resident: the metadata text written next would add its
 * size to the peak instead of taking their place (40,000 tensors: 5 MB).
 * Not under AddressSanitizer, whose malloc is not glibc's: there glibc's
 * malloc_trim has nothing to give back, and it would set up glibc's own
 * arena for the calling thread behind the sanitizer, which glibc's
 * thread-exit accounting then trips on ("a->attached_threads > 0", seen
 * once in t1108 under ASan).
 */
static void
give_back_heap(void)
{
#if defined(__GLIBC__) && !defined(CKPT_ASAN)
	malloc_trim(0);
#endif
}

/* A stored data.pkl at absolute offset off of f (pk_opts.read). */
struct pkl_src {
	struct ckpt_file *f;
	uint64_t off;
};

static int
read_pkl(void *ctx, void *dst, size_t n, uint64_t off,
    struct ckpt_error *err)
{
	struct pkl_src *s = ctx;
	int rc = ckpt_file_pread(s->f, dst, n, s->off + off, err);

	/* the member's extent was checked at open: a read failing now is
	 * the file changing under us, never a malformed pickle */
	if (rc == CKPT_ERR_FORMAT) {
		rc = CKPT_ERR_IO;
		if (err)
			err->code = rc;
	}
	return rc;
}

/* One torch.save archive occupying [base, base + len) of f. */
static int
read_archive(struct ckpt_file *f, uint64_t base, uint64_t alen,
    struct ckpt_error *err)
{
	struct ckpt_zip *z = NULL;
	struct ckpt_zip_entry *pkl, *e;
	struct ckpt_pickle *p = NULL;
	struct pk_opts o = { .what = "data.pkl" };
	unsigned char *buf = NULL;
	char rec[64];
	size_t len = 0, plen;
	bool big = false, script, parsed = false;
	int rc;

	if ((rc = ckpt_zip_open(f, base, alen, &z, err)))
		return rc;
	f->priv = z;
	f->priv_free = priv_free_zip;
	pkl = z->prefix ? ckpt_zip_find(z, "data.pkl") : NULL;
	if (!pkl) {
		f->format = CKPT_FORMAT_ZIP;
		if (has_suffix_entry(z, "/data.pkl"))
			return ckpt_file_add_finding(f, "zip-prefix",
			    CKPT_SEV_ERROR, z->n ? z->entries[0].name : NULL,
			    0, "a torch archive whose first member '%s' is "
			    "not under the directory of its data.pkl; torch "
			    "cannot read it", z->n ? z->entries[0].name : "");
		return ckpt_file_add_finding(f, "not-torch", CKPT_SEV_INFO,
		    NULL, -1, "a zip archive with no <dir>/data.pkl: not a "
		    "PyTorch checkpoint");
	}
	script = ckpt_zip_find(z, "constants.pkl") != NULL;
	if (script) {
		f->format = CKPT_FORMAT_TORCHSCRIPT;
		ckpt_file_add_finding(f, "torchscript", CKPT_SEV_WARNING,
		    NULL, -1,
		    "a TorchScript archive (torch.jit.save): its code/ runs "
		    "when the model is called; not a plain checkpoint");
	}
	plen = strlen(z->prefix);
	for (size_t i = 0; i < z->n; i++) {
		e = &z->entries[i];
		if (e->name_len <= plen || memcmp(e->name, z->prefix, plen) ||
		    e->name[plen] != '/')
			ckpt_file_add_finding(f, "zip-stray-member",
			    CKPT_SEV_ERROR, e->name, (int64_t)e->lho, "member "
			    "'%s' is outside the archive's directory '%s/'; "
			    "torch never reads it", e->name, z->prefix);
	}
	/* version: .data/version first, then version (torch's order) */
	e = ckpt_zip_find(z, ".data/version");
	if (!e)
		e = ckpt_zip_find(z, "version");
	if (!e) {
		ckpt_file_add_finding(f, "torch-version", CKPT_SEV_ERROR, NULL,
		    -1, "no version record; torch refuses the archive");
	} else {
		char *end;
		unsigned long v;

		if ((rc = small_record(f, e, rec, sizeof(rec), err)))
			return rc;
		errno = 0;
		v = strtoul(rec, &end, 10);
		if (!rec[0] || *end || errno || v < 1 || v > 10)
			ckpt_file_add_finding(f, "torch-version",
			    CKPT_SEV_ERROR, e->name, (int64_t)e->data_offset,
			    "version record '%.20s' is not a file format "
			    "version torch reads (1 to 10)", rec);
	}
	if ((e = ckpt_zip_find(z, "byteorder"))) {
		if ((rc = small_record(f, e, rec, sizeof(rec), err)))
			return rc;
		if (!strcmp(rec, "big"))
			big = true;
		else if (strcmp(rec, "little"))
			ckpt_file_add_finding(f, "torch-byteorder",
			    CKPT_SEV_ERROR, e->name, (int64_t)e->data_offset,
			    "byteorder record '%.20s' is neither little nor "
			    "big", rec);
	}
	if (!(f->flags & CKPT_OPEN_NO_PICKLE)) {
		struct pkl_src src = { .f = f, .off = pkl->data_offset };

		if (pkl->method == 0 && !pkl->encrypted &&
		    pkl->usize <= MAX_PICKLE_BYTES) {
			/* stored: read through the parser's window */
			o.read = read_pkl;
			o.read_ctx = &src;
			len = (size_t)pkl->usize;
			rc = CKPT_OK;
		} else {
			rc = ckpt_zip_read(f, pkl, MAX_PICKLE_BYTES, &buf,
			    &len, err);
		}
		if (rc == CKPT_ERR_UNSUPPORTED || rc == CKPT_ERR_LIMIT ||
		    rc == CKPT_ERR_FORMAT) {
			ckpt_file_add_finding(f, "pickle-unreadable",
			    CKPT_SEV_ERROR, pkl->name, (int64_t)pkl->lho,
			    "%s", err ? err->message : "data.pkl unreadable");
			rc = CKPT_OK;
			goto unreferenced;
		}
		if (rc)
			return rc;
		o.base = pkl->method == 0 ? (int64_t)pkl->data_offset : -1;
		if (script)
			o.flags |= PK_TORCHSCRIPT;
		rc = parse_data_pkl(f, z, big, buf, len, &o, &p, err);
		if (rc == CKPT_ERR_NOMEM || rc == CKPT_ERR_IO ||
		    rc == CKPT_ERR_INTERNAL) {
			free(buf);
			return rc;
		}
		if (!rc && p->consumed != len)
			ckpt_file_add_finding(f, "pickle-trailing-data",
			    CKPT_SEV_ERROR, pkl->name, o.base >= 0 ? o.base +
			    (int64_t)p->consumed : -1, "%zu bytes after the "
			    "STOP of data.pkl", len - p->consumed);
		parsed = !rc;
		if (p) {
			resolve_storages(f, z, p, big);
			if (p->direct_ok) {
				/* the table holds all the walk needs */
				ckpt_pickle_drop_tree(p);
				free(buf);
				buf = NULL;
				give_back_heap();
			}
			rc = parsed ? walk_into_file(f, p, &o, big, err) :
			    CKPT_OK;
		}
		ckpt_pickle_free(p);
		free(buf);
		if (rc)
			return rc;
	}
unreferenced:
	for (size_t i = 0; i < z->n; i++) {
		e = &z->entries[i];
		if (e->referenced || e->name_len <= plen ||
		    memcmp(e->name, z->prefix, plen) || e->name[plen] != '/')
			continue;
		if (known_record(e->name + plen + 1, script))
			continue;
		if (!parsed && !strncmp(e->name + plen + 1, "data/", 5))
			continue;
		ckpt_file_add_finding(f, "zip-unreferenced", CKPT_SEV_WARNING,
		    e->name, (int64_t)e->lho, "member '%s' is not referenced "
		    "by data.pkl; torch ignores it", e->name);
	}
	return CKPT_OK;
}

/* ------------------------------------------------------------------ */
/* Legacy pickle stream and bare pickles                               */
/* ------------------------------------------------------------------ */

/*
 * Parses the pickle at off, reading more of the file while the stream
 * merely ended early.  *bufp receives the bytes (the result points into
 * them).
 */
static int
parse_at(struct ckpt_file *f, uint64_t off, const struct pk_opts *o0,
    struct ckpt_pickle **out, unsigned char **bufp, struct ckpt_error *err)
{
	struct pk_opts o = *o0;
	size_t chunk = 1 << 16;
	int rc;

	o.base = (int64_t)off;
	for (size_t mark = f->nfindings;;) {
		uint64_t avail = f->size - off;
		size_t n = avail < chunk ? (size_t)avail : chunk;
		unsigned char *buf = malloc(n ? n : 1);
		bool trunc = false;

		if (!buf)
			return ckpt_error_nomem(err);
		if ((rc = ckpt_file_pread(f, buf, n, off, err))) {
			free(buf);
			return rc;
		}
		rc = ckpt_pickle_parse(f, buf, n, &o, out,
		    n < avail ? &trunc : NULL, err);
		if (rc && trunc && chunk < MAX_PICKLE_BYTES) {
			drop_findings(f, mark);
			ckpt_pickle_free(*out);
			*out = NULL;
			free(buf);
			chunk *= 4;
			continue;
		}
		*bufp = buf;
		return rc;
	}
}

static const unsigned char legacy_magic[10] = {
	0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19
};

int
ckpt_torch_legacy_read(struct ckpt_file *f, struct ckpt_error *err)
{
	static const char *const whats[5] = {
		"legacy magic pickle", "legacy protocol pickle",
		"legacy sys_info pickle", "legacy object pickle",
		"legacy storage-key pickle",
	};
	struct ckpt_pickle *p[5] = { 0 };
	unsigned char *bufs[5] = { 0 };
	uint64_t off = 0;
	int rc = CKPT_OK, i;
	struct pk_node *r;

	for (i = 0; i < 5; i++) {
		struct pk_opts o = { .what = whats[i],
		    .flags = i == 3 ? PK_LEGACY : 0 };

		rc = parse_at(f, off, &o, &p[i], &bufs[i], err);
		if (rc == CKPT_ERR_FORMAT || rc == CKPT_ERR_LIMIT) {
			/* findings say what; the file still opens */
			rc = CKPT_OK;
			goto out;
		}
		if (rc)
			goto out;
		off += p[i]->consumed;
		if (f->flags & CKPT_OPEN_NO_PICKLE)
			goto out;
	}
	/* The magic must be a literal integer (security.md P06). */
	r = p[0]->root;
	if (r->kind != PK_BIGINT || r->i != 0 || r->len != 10 ||
	    memcmp(r->s, legacy_magic, 10))
		ckpt_file_add_finding(f, "torch-legacy-header", CKPT_SEV_ERROR,
		    NULL, 0, "the first pickle is not torch's magic number");
	r = p[1]->root;
	if (r->kind != PK_INT || r->i != 1001)
		ckpt_file_add_finding(f, "torch-legacy-header", CKPT_SEV_ERROR,
		    NULL, (int64_t)p[0]->consumed, "legacy protocol version is "
		    "not 1001");
	if (p[2]->root->kind != PK_DICT)
		ckpt_file_add_finding(f, "torch-legacy-header", CKPT_SEV_ERROR,
		    NULL, -1, "legacy sys_info is not a dict");
	/* Raw storages, in the order of the key list: int64 LE element
	 * count, then the little-endian elements. */
	r = p[4]->root;
	if (!r || r->kind != PK_LIST) {
		ckpt_file_add_finding(f, "torch-legacy-header", CKPT_SEV_ERROR,
		    NULL, (int64_t)off, "legacy storage-key list is not a "
		    "list");
		goto out;
	}
	for (size_t k = 0; k < r->n; k++) {
		struct pk_node *key = r->items[k];
		struct pk_storage *s = NULL;
		unsigned char cnt[8];
		uint64_t count = 0, nbytes;
		unsigned esize;

		for (size_t j = 0; key->kind == PK_STR && j <
		    p[3]->nstorages; j++) {
			struct pk_storage *c = p[3]->storages[j];

			if (strlen(c->key) == key->len &&
			    !memcmp(c->key, key->s, key->len))
				s = c;
		}
		if (!s) {
			ckpt_file_add_finding(f, "torch-missing-storage",
			    CKPT_SEV_ERROR, NULL, (int64_t)off, "legacy "
			    "storage key %zu names no storage of the object "
			    "pickle", k);
			goto out;
		}
		if (off > f->size || f->size - off < 8 ||
		    ckpt_file_pread(f, cnt, 8, off, NULL)) {
			ckpt_file_add_finding(f, "torch-truncated",
			    CKPT_SEV_ERROR, s->key, (int64_t)off, "legacy "
			    "storage '%s' is cut off", s->key);
			goto out;
		}
		for (int b = 0; b < 8; b++)
			count |= (uint64_t)cnt[b] << (8 * b);
		esize = ckpt_dtype_bits(s->dtype) / 8;
		if (count != s->numel || !ckpt_mul_u64(count, esize, &nbytes) ||
		    nbytes > f->size - off - 8) {
			ckpt_file_add_finding(f, "torch-storage-size",
			    CKPT_SEV_ERROR, s->key, (int64_t)off, "legacy "
			    "storage '%s' holds %llu elements, the pickle "
			    "declares %llu, %llu bytes remain", s->key,
			    (unsigned long long)count,
			    (unsigned long long)s->numel,
			    (unsigned long long)(f->size - off - 8));
			goto out;
		}
		s->data_offset = off + 8;
		s->nbytes = nbytes;
		s->sized = s->resolved = true;
		off += 8 + nbytes;
	}
	if (off != f->size)
		ckpt_file_add_finding(f, "torch-trailing-data", CKPT_SEV_ERROR,
		    NULL, (int64_t)off, "%llu bytes after the last legacy "
		    "storage (another pickle?)",
		    (unsigned long long)(f->size - off));
	for (size_t j = 0; j < p[3]->nstorages; j++)
		if (!p[3]->storages[j]->resolved)
			ckpt_file_add_finding(f, "torch-missing-storage",
			    CKPT_SEV_ERROR, p[3]->storages[j]->key,
			    p[3]->storages[j]->pos, "storage '%s' "
			    "is not in the legacy storage list",
			    p[3]->storages[j]->key);
out:
	if (!rc && p[3] && p[3]->root) {
		struct pk_opts o = { .what = whats[3], .base = -1 };

		rc = walk_into_file(f, p[3], &o, false, err);
	}
	for (i = 0; i < 5; i++) {
		ckpt_pickle_free(p[i]);
		free(bufs[i]);
	}
	return rc;
}

int
ckpt_pickle_file_read(struct ckpt_file *f, struct ckpt_error *err)
{
	struct pk_opts o = { .what = "pickle", .flags = PK_QUIET_COMPAT };
	struct ckpt_pickle *p = NULL;
	unsigned char *buf = NULL;
	int rc;

	if (f->flags & CKPT_OPEN_NO_PICKLE)
		return CKPT_OK;
	rc = parse_at(f, 0, &o, &p, &buf, err);
	if (rc == CKPT_ERR_FORMAT || rc == CKPT_ERR_LIMIT) {
		rc = CKPT_OK;
	} else if (!rc) {
		if (p->consumed != f->size)
			ckpt_file_add_finding(f, "pickle-trailing-data",
			    CKPT_SEV_ERROR, NULL, (int64_t)p->consumed, "%llu "
			    "bytes after the pickle's STOP (another pickle?)",
			    (unsigned long long)(f->size - p->consumed));
		for (size_t i = 0; i < p->nstorages; i++)
			ckpt_file_add_finding(f, "torch-missing-storage",
			    CKPT_SEV_WARNING, p->storages[i]->key,
			    p->storages[i]->pos, "a bare pickle "
			    "references storage '%s' it cannot hold",
			    p->storages[i]->key);
		o.base = 0;
		rc = walk_into_file(f, p, &o, false, err);
	}
	ckpt_pickle_free(p);
	free(buf);
	return rc;
}
