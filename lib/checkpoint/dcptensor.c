/* SPDX-License-Identifier: MIT */
/*
 * dcptensor.c - the tensors of a PyTorch distributed checkpoint (DCP) as
 * logical tensors, assembled from their chunks, for element-wise readers
 * (diff) that must see the tensor torch's consolidated state dict would
 * hold, whatever the sharding.
 *
 * The .metadata JSON (dcp.c) gives each tensor's dtype, size and chunks
 * (a box: offsets and sizes per dimension) and, per chunk, where its
 * torch.save archive lies in a .distcp shard.  A tensor is prepared once,
 * on demand: every chunk's box is checked (rank, bounds, no overlap, full
 * coverage), its storage range checked against its shard, its archive
 * read by the strict pickle reader and its one tensor checked against the
 * box; only the tensor's descriptor is kept (shape, strides, byte range),
 * so no file stays open per chunk: the reads go through the shard's own
 * handle of the checkpoint with pread, and any thread may read.
 */
#include "util/internal.h"

#include <jansson.h>

#include "checkpoint/checkpoint.h"
#include "checkpoint/dcptensor.h"
#include "format/file.h"

struct ckpt_dcp {
	const struct ckpt_checkpoint *c;
	struct ckpt_dcp_options o;
	char *dir;			/* directory of .metadata, "" or "x/" */
	const char *mpath;		/* path of .metadata, for messages */
	json_t *doc;
	json_t *sdm, *sd;		/* state_dict_metadata, storage_data */
	struct ckpt_dcp_tensor **t;	/* prepared, by lookup order */
	size_t nt;
	json_t *prepared;		/* fqn -> index into t */
};

int
ckpt_dcp_open(const struct ckpt_checkpoint *c, const char *metadata_name,
    const struct ckpt_dcp_options *o, struct ckpt_dcp **out,
    struct ckpt_error *err)
{
	ssize_t mx = ckpt_checkpoint_find(c, metadata_name);
	const char *js;
	struct ckpt_dcp *d;
	char *slash;

	if (mx < 0 || !c->files[mx].file ||
	    !(js = ckpt_file_metadata_json(c->files[mx].file)))
		return ckpt_error_set(err, CKPT_ERR_FORMAT, metadata_name, -1,
		    "unreadable DCP metadata");
	if (!(d = calloc(1, sizeof(*d))) || !(d->dir = strdup(metadata_name)))
		goto nomem;
	d->c = c;
	if (o)
		d->o = *o;
	d->mpath = c->files[mx].path;
	slash = strrchr(d->dir, '/');
	if (slash)
		slash[1] = '\0';
	else
		d->dir[0] = '\0';
	if (!(d->doc = json_loads(js, 0, NULL)) ||
	    !(d->prepared = json_object()))
		goto nomem;
	d->sdm = json_object_get(d->doc, "state_dict_metadata");
	d->sd = json_object_get(d->doc, "storage_data");
	if (!json_is_object(d->sdm) || !json_is_object(d->sd)) {
		ckpt_dcp_free(d);
		return ckpt_error_set(err, CKPT_ERR_FORMAT, c->files[mx].path,
		    -1, "DCP metadata without state_dict_metadata or "
		    "storage_data");
	}
	*out = d;
	return CKPT_OK;
nomem:
	ckpt_dcp_free(d);
	return ckpt_error_nomem(err);
}

static void
tensor_free(struct ckpt_dcp_tensor *t)
{
	if (!t)
		return;
	free(t->name);
	free(t->chunks);
	free(t);
}

void
ckpt_dcp_free(struct ckpt_dcp *d)
{
	if (!d)
		return;
	for (size_t i = 0; i < d->nt; i++)
		tensor_free(d->t[i]);
	free(d->t);
	json_decref(d->prepared);
	json_decref(d->doc);
	free(d->dir);
	free(d);
}

bool
ckpt_dcp_u64s(json_t *a, uint64_t *out, unsigned int *n)
{
	size_t i;
	json_t *v;

	if (!json_is_array(a) || json_array_size(a) > CKPT_MAX_DIMS)
		return false;
	json_array_foreach(a, i, v) {
		if (!json_is_integer(v) || json_integer_value(v) < 0)
			return false;
		out[i] = (uint64_t)json_integer_value(v);
	}
	*n = (unsigned int)json_array_size(a);
	return true;
}

int64_t
ckpt_dcp_at(json_t *o)
{
	json_t *v = json_object_get(o, "at");

	return json_is_integer(v) && json_integer_value(v) >= 0 ?
	    (int64_t)json_integer_value(v) : -1;
}

/* "[2, 0]" for messages. */
static const char *
box_str(const uint64_t *v, unsigned int n, char *buf, size_t len)
{
	size_t o = (size_t)snprintf(buf, len, "[");

	for (unsigned int i = 0; i < n && o < len; i++)
		o += (size_t)snprintf(buf + o, len - o, "%s%llu", i ? ", " : "",
		    (unsigned long long)v[i]);
	if (o < len)
		snprintf(buf + o, len - o, "]");
	return buf;
}

/* "a F16 tensor of shape [2, 3]": an archive's tensor, for messages. */
static const char *
held(const struct ckpt_tensor *x, char *buf, size_t len)
{
	char shape[200];
	const char *dt = ckpt_dtype_name(x->dtype);

	snprintf(buf, len, "a %s%s%s tensor of shape %s", x->kind ? x->kind :
	    "", x->kind ? " " : "", dt ? dt : "?", x->ndim <= CKPT_MAX_DIMS ?
	    box_str(x->shape, x->ndim, shape, sizeof(shape)) : "?");
	return buf;
}

bool
ckpt_dcp_boxes_overlap(const uint64_t *aoff, const uint64_t *alen,
    const uint64_t *boff, const uint64_t *blen, unsigned int nd)
{
	for (unsigned int i = 0; i < nd; i++)
		if (aoff[i] >= boff[i] + blen[i] ||
		    boff[i] >= aoff[i] + alen[i])
			return false;
	return true;
}

char *
ckpt_dcp_storage_key(const char *fqn, const uint64_t *off, unsigned int nd)
{
	size_t cap = strlen(fqn) + 2 + (size_t)nd * 21, o;
	char *key = malloc(cap);

	if (!key)
		return NULL;
	o = (size_t)snprintf(key, cap, "%s|", fqn);
	for (unsigned int i = 0; i < nd; i++)
		o += (size_t)snprintf(key + o, cap - o, "%s%llu", i ? "," : "",
		    (unsigned long long)off[i]);
	return key;
}

/* The storage entry of a chunk (off: its offsets) or, with nd 0, a bytes
 * item; NULL when there is none or no memory for its key. */
static json_t *
chunk_storage(const struct ckpt_dcp *d, const char *fqn, const uint64_t *off,
    unsigned int nd)
{
	char *key = ckpt_dcp_storage_key(fqn, off, nd);
	json_t *v = key ? json_object_get(d->sd, key) : NULL;

	free(key);
	return v;
}

/* The chunk's box from the metadata, within the tensor. */
static int
chunk_box(const struct ckpt_dcp *d, const struct ckpt_dcp_tensor *t,
    json_t *cj, size_t i, struct ckpt_dcp_chunk *k, struct ckpt_error *err)
{
	unsigned int no, ns;
	char b1[256], b2[256], b3[256];

	k->at = ckpt_dcp_at(cj);
	if (!ckpt_dcp_u64s(json_object_get(cj, "offsets"), k->off, &no) ||
	    !ckpt_dcp_u64s(json_object_get(cj, "sizes"), k->len, &ns) ||
	    no != t->t.ndim || ns != t->t.ndim)
		return ckpt_error_set(err, CKPT_ERR_FORMAT, d->mpath, k->at,
		    "chunk %zu of tensor '%s' does not have %u offsets and "
		    "sizes", i, t->name, t->t.ndim);
	for (unsigned int j = 0; j < t->t.ndim; j++) {
		uint64_t end;

		if (!ckpt_add_u64(k->off[j], k->len[j], &end) ||
		    end > t->shape[j])
			return ckpt_error_set(err, CKPT_ERR_FORMAT, d->mpath,
			    k->at, "chunk %zu of tensor '%s' (offsets %s, "
			    "sizes %s) lies outside its size %s", i, t->name,
			    box_str(k->off, no, b1, sizeof(b1)),
			    box_str(k->len, ns, b2, sizeof(b2)),
			    box_str(t->shape, t->t.ndim, b3, sizeof(b3)));
	}
	return CKPT_OK;
}

/*
 * Where an item (a chunk, "chunk [2, 0] of 'w'", or a bytes item) is
 * stored: its storage entry si names a file beside the metadata and a
 * byte range inside it; *fi is that file's index in the checkpoint.
 */
static int
storage_range(const struct ckpt_dcp *d, json_t *si, const char *what,
    int64_t at, ssize_t *fi, uint64_t *base, uint64_t *len,
    struct ckpt_error *err)
{
	const char *rel = json_string_value(json_object_get(si,
	    "relative_path"));
	json_t *jo = json_object_get(si, "offset");
	json_t *jl = json_object_get(si, "length");
	uint64_t end, fsize;
	char *name;

	if (!rel || !*rel || strchr(rel, '/') || !strcmp(rel, "..") ||
	    !json_is_integer(jo) || json_integer_value(jo) < 0 ||
	    !json_is_integer(jl) || json_integer_value(jl) < 0)
		return ckpt_error_set(err, CKPT_ERR_FORMAT, d->mpath, at,
		    "the storage entry of %s lacks a file beside the metadata, "
		    "an offset or a length", what);
	*base = (uint64_t)json_integer_value(jo);
	*len = (uint64_t)json_integer_value(jl);
	if (asprintf(&name, "%s%s", d->dir, rel) < 0)
		return ckpt_error_nomem(err);
	*fi = ckpt_checkpoint_find(d->c, name);
	free(name);
	if (*fi < 0)
		return ckpt_error_set(err, CKPT_ERR_FORMAT, d->mpath, at,
		    "%s is stored in '%s', which is missing", what, rel);
	if (!d->c->files[*fi].file) {
		*err = d->c->files[*fi].err;
		return err->code ? err->code : CKPT_ERR_FORMAT;
	}
	fsize = ckpt_file_size(d->c->files[*fi].file);
	if (!ckpt_add_u64(*base, *len, &end) || end > fsize)
		return ckpt_error_set(err, CKPT_ERR_FORMAT,
		    d->c->files[*fi].path, (int64_t)*base, "%s is stored at "
		    "bytes %llu + %llu, past the end of the file (%llu bytes)",
		    what, (unsigned long long)*base, (unsigned long long)*len,
		    (unsigned long long)fsize);
	return CKPT_OK;
}

/* The archive at [base, base + len) of file fi, through the caller's
 * check; findings are for the caller to judge. */
static int
open_archive(const struct ckpt_dcp *d, ssize_t fi, uint64_t base,
    uint64_t len, struct ckpt_file **out, struct ckpt_error *err)
{
	const char *path = d->c->files[fi].path;
	int rc;

	if ((rc = ckpt_file_open_slice(path, base, len, d->o.open, out, err)))
		return rc;
	if (d->o.check && (rc = d->o.check(d->o.arg, *out, path, err))) {
		ckpt_file_free(*out);
		*out = NULL;
	}
	return rc;
}

int
ckpt_dcp_chunk_holds(const struct ckpt_file *a, const char *path,
    uint64_t base, uint64_t len, enum ckpt_dtype dtype, unsigned int nd,
    const uint64_t *sizes, const char *what, const struct ckpt_tensor **out,
    struct ckpt_error *err)
{
	size_t nt = ckpt_file_tensor_count(a);
	const struct ckpt_tensor *x = nt == 1 ? ckpt_file_tensor(a, 0) : NULL;
	char b1[256], b2[256];

	if (!x)
		return ckpt_error_set(err, CKPT_ERR_FORMAT, path,
		    (int64_t)base, "%s holds %zu tensors, not one %s "
		    "tensor", what, nt, ckpt_dtype_name(dtype));
	if (x->kind || x->dtype != dtype || x->ndim != nd ||
	    (x->numel && !x->span))
		return ckpt_error_set(err, CKPT_ERR_FORMAT, path,
		    (int64_t)base, "%s is %s, not one readable %s tensor "
		    "of %u dimensions", what, held(x, b1, sizeof(b1)),
		    ckpt_dtype_name(dtype), nd);
	for (unsigned int j = 0; j < nd; j++)
		if (x->shape[j] != sizes[j])
			return ckpt_error_set(err, CKPT_ERR_FORMAT, path,
			    (int64_t)base, "%s has shape %s, the metadata "
			    "says %s", what, box_str(x->shape, nd, b1,
			    sizeof(b1)), box_str(sizes, nd, b2, sizeof(b2)));
	/* the strict reader keeps data inside the archive; say so here */
	if (x->numel && (x->offset < base || x->offset - base > len ||
	    x->span > len - (x->offset - base)))
		return ckpt_error_set(err, CKPT_ERR_FORMAT, path,
		    (int64_t)x->offset, "the data of %s lies outside its "
		    "archive (bytes %llu-%llu)", what,
		    (unsigned long long)base, (unsigned long long)(base + len));
	*out = x;
	return CKPT_OK;
}

/*
 * Opens the chunk's archive at [base, base + length) of its shard and
 * keeps the descriptor of the one tensor it must hold: the dtype and
 * number of dimensions of the whole, the shape of the box.
 */
static int
chunk_archive(const struct ckpt_dcp *d, const struct ckpt_dcp_tensor *t,
    json_t *si, struct ckpt_dcp_chunk *k, struct ckpt_error *err)
{
	const struct ckpt_tensor *x;
	struct ckpt_file *f = NULL;
	uint64_t base, len;
	char b1[256], *what;
	ssize_t fi;
	int rc;

	box_str(k->off, t->t.ndim, b1, sizeof(b1));
	if (asprintf(&what, "chunk %s of '%s'", b1, t->name) < 0)
		return ckpt_error_nomem(err);
	if ((rc = storage_range(d, si, what, k->at, &fi, &base, &len, err)))
		goto out;
	k->file = d->c->files[fi].file;
	k->rel = d->c->files[fi].name;
	if ((rc = open_archive(d, fi, base, len, &f, err)))
		goto out;
	for (size_t i = 0; i < ckpt_file_finding_count(f); i++) {
		const struct ckpt_finding *x2 = ckpt_file_finding(f, i);

		if (x2->severity == CKPT_SEV_ERROR) {
			rc = ckpt_error_set(err, CKPT_ERR_FORMAT,
			    d->c->files[fi].path, x2->offset >= 0 ? x2->offset :
			    (int64_t)base, "%s: %s", what, x2->message);
			goto out;
		}
	}
	if ((rc = ckpt_dcp_chunk_holds(f, d->c->files[fi].path, base, len,
	    t->t.dtype, t->t.ndim, k->len, what, &x, err)))
		goto out;
	k->t = *x;
	k->t.name = t->name;
	k->t.storage = NULL;
	k->t.shape = k->len;
	k->t.strides = NULL;
	if (x->strides) {
		memcpy(k->strides, x->strides, x->ndim * sizeof(*k->strides));
		k->t.strides = k->strides;
	}
out:
	ckpt_file_free(f);
	free(what);
	return rc;
}

static int
prepare(const struct ckpt_dcp *d, const char *fqn, json_t *e,
    struct ckpt_dcp_tensor *t, struct ckpt_error *err)
{
	json_t *ch = json_object_get(e, "chunks"), *cj;
	const char *dt = json_string_value(json_object_get(e, "dtype"));
	uint64_t vol_sum = 0;
	size_t i;
	int rc;

	if (!dt || ckpt_dtype_from_name(dt, &t->t.dtype) ||
	    !ckpt_dcp_u64s(json_object_get(e, "size"), t->shape,
	    &t->t.ndim) || !json_is_array(ch))
		return ckpt_error_set(err, CKPT_ERR_FORMAT, d->mpath,
		    ckpt_dcp_at(e), "tensor '%s' has no dtype, size or chunk "
		    "list ckpt can read", fqn);
	if (ckpt_dtype_bits(t->t.dtype) % 8)
		return ckpt_error_set(err, CKPT_ERR_UNSUPPORTED, d->mpath,
		    ckpt_dcp_at(e), "tensor '%s': sub-byte %s chunks are not "
		    "supported", fqn, ckpt_dtype_name(t->t.dtype));
	t->t.shape = t->shape;
	t->t.contiguous = true;
	t->t.kind = "dcp";
	t->t.numel = 1;
	for (unsigned int j = 0; j < t->t.ndim; j++)
		if (!ckpt_mul_u64(t->t.numel, t->shape[j], &t->t.numel))
			return ckpt_error_set(err, CKPT_ERR_FORMAT, d->mpath,
			    -1, "tensor '%s': element count overflows", fqn);
	if (!ckpt_mul_u64(t->t.numel, ckpt_dtype_bits(t->t.dtype) / 8,
	    &t->t.nbytes))
		return ckpt_error_set(err, CKPT_ERR_FORMAT, d->mpath,
		    ckpt_dcp_at(e), "tensor '%s': byte count overflows",
		    fqn);
	t->chunks = calloc(json_array_size(ch) + 1, sizeof(*t->chunks));
	if (!t->chunks)
		return ckpt_error_nomem(err);
	json_array_foreach(ch, i, cj) {
		struct ckpt_dcp_chunk *k = &t->chunks[i];
		uint64_t vol = 1;
		json_t *si;

		if ((rc = chunk_box(d, t, cj, i, k, err)))
			return rc;
		for (unsigned int j = 0; j < t->t.ndim; j++)
			vol *= k->len[j];	/* <= numel: inside the size */
		for (size_t m = 0; m < i && i < CKPT_DCP_MAX_PAIRWISE; m++)
			if (t->t.ndim && vol && ckpt_dcp_boxes_overlap(
			    t->chunks[m].off, t->chunks[m].len, k->off, k->len,
			    t->t.ndim))
				return ckpt_error_set(err, CKPT_ERR_FORMAT,
				    d->mpath, k->at, "chunks %zu and %zu of "
				    "tensor '%s' overlap", m, i, fqn);
		if (!ckpt_add_u64(vol_sum, vol, &vol_sum))
			vol_sum = UINT64_MAX;
		if (!(si = chunk_storage(d, fqn, k->off, t->t.ndim)))
			return ckpt_error_set(err, CKPT_ERR_FORMAT, d->mpath,
			    k->at, "chunk %zu of tensor '%s' has no storage "
			    "entry", i, fqn);
		if ((rc = chunk_archive(d, t, si, k, err)))
			return rc;
		t->nchunks++;
	}
	/* a scalar is one chunk of one element */
	if (vol_sum != t->t.numel && !(t->t.ndim == 0 && t->nchunks >= 1))
		return ckpt_error_set(err, CKPT_ERR_FORMAT, d->mpath,
		    ckpt_dcp_at(e), "the chunks of tensor '%s' cover %llu of "
		    "its %llu elements", fqn, (unsigned long long)vol_sum,
		    (unsigned long long)t->t.numel);
	return CKPT_OK;
}

int
ckpt_dcp_tensor(struct ckpt_dcp *d, const char *fqn,
    const struct ckpt_dcp_tensor **out, struct ckpt_error *err)
{
	struct ckpt_dcp_tensor *t, **n;
	json_t *e, *i = json_object_get(d->prepared, fqn);
	int rc;

	if (i) {
		*out = d->t[json_integer_value(i)];
		return CKPT_OK;
	}
	e = json_object_get(d->sdm, fqn);
	if (!e || strcmp(json_string_value(json_object_get(e, "type")) ?
	    json_string_value(json_object_get(e, "type")) : "", "tensor"))
		return ckpt_error_set(err, CKPT_ERR_FORMAT, d->mpath, -1,
		    "no tensor '%s' in the DCP metadata", fqn);
	if (!(t = calloc(1, sizeof(*t))) || !(t->name = strdup(fqn))) {
		free(t);
		return ckpt_error_nomem(err);
	}
	t->t.name = t->name;
	t->mpath = d->mpath;
	if ((rc = prepare(d, fqn, e, t, err))) {
		tensor_free(t);
		return rc;
	}
	if (!(n = reallocarray(d->t, d->nt + 1, sizeof(*n)))) {
		tensor_free(t);
		return ckpt_error_nomem(err);
	}
	d->t = n;
	if (json_object_set_new(d->prepared, fqn,
	    json_integer((json_int_t)d->nt))) {
		tensor_free(t);
		return ckpt_error_nomem(err);
	}
	d->t[d->nt++] = t;
	*out = t;
	return CKPT_OK;
}

/* Findings of a pickle that still give its whole object tree: a global
 * outside the allowlist is named in the tree, never resolved or called. */
static bool
named_not_run(const struct ckpt_finding *x)
{
	return !strcmp(x->id, "unsafe-global") || !strcmp(x->id, "unsafe-call");
}

/* The object tree of bytes item fqn, read from its torch.save archive. */
static int
bytes_item(const struct ckpt_dcp *d, const char *fqn, json_t *e,
    json_t **out, struct ckpt_error *err)
{
	struct ckpt_file *f = NULL;
	const char *js;
	uint64_t base, len;
	char *what;
	json_t *si = chunk_storage(d, fqn, NULL, 0);
	ssize_t fi = -1;
	int rc;

	if (asprintf(&what, "bytes item '%s'", fqn) < 0)
		return ckpt_error_nomem(err);
	if (!si)
		rc = ckpt_error_set(err, CKPT_ERR_FORMAT, d->mpath,
		    ckpt_dcp_at(e), "%s has no storage entry", what);
	else
		rc = storage_range(d, si, what, ckpt_dcp_at(e), &fi, &base,
		    &len, err);
	if (rc)
		goto out;
	if ((rc = open_archive(d, fi, base, len, &f, err))) {
		struct ckpt_error why = *err;

		if (rc != CKPT_ERR_NOMEM)
			ckpt_error_set(err, rc, d->c->files[fi].path,
			    why.offset >= 0 ? why.offset : (int64_t)base,
			    "%s: %s", what, why.message);
		goto out;
	}
	for (size_t i = 0; i < ckpt_file_finding_count(f); i++) {
		const struct ckpt_finding *x = ckpt_file_finding(f, i);

		if (x->severity == CKPT_SEV_ERROR && !named_not_run(x)) {
			rc = ckpt_error_set(err, CKPT_ERR_FORMAT,
			    d->c->files[fi].path, x->offset >= 0 ? x->offset :
			    (int64_t)base, "%s: %s", what, x->message);
			goto out;
		}
	}
	if (!(js = ckpt_file_metadata_json(f))) {
		rc = ckpt_error_set(err, CKPT_ERR_FORMAT, d->c->files[fi].path,
		    (int64_t)base, "%s here holds no object ckpt can read",
		    what);
		goto out;
	}
	if (!(*out = json_loads(js, JSON_DECODE_ANY, NULL)))
		rc = ckpt_error_nomem(err);
out:
	ckpt_file_free(f);
	free(what);
	return rc;
}

int
ckpt_dcp_bytes(struct ckpt_dcp *d, json_t **out, struct ckpt_error *err)
{
	json_t *all = json_object(), *e;
	const char *fqn;
	size_t n = 0;

	if (!all)
		return ckpt_error_nomem(err);
	json_object_foreach(d->sdm, fqn, e) {
		const char *type = json_string_value(json_object_get(e,
		    "type"));
		json_t *tree;
		int rc;

		if (!type || strcmp(type, "bytes"))
			continue;
		if ((rc = bytes_item(d, fqn, e, &tree, err))) {
			json_decref(all);
			return rc;
		}
		if (json_object_set_new(all, fqn, tree)) {
			json_decref(all);
			return ckpt_error_nomem(err);
		}
		n++;
	}
	if (!n) {
		json_decref(all);
		all = NULL;
	}
	*out = all;
	return CKPT_OK;
}

static const struct ckpt_dcp_chunk *
chunk_of(const struct ckpt_dcp_tensor *t, const uint64_t *idx,
    const struct ckpt_dcp_chunk *hint)
{
	for (size_t j = 0; j <= t->nchunks; j++) {
		const struct ckpt_dcp_chunk *k = j ? &t->chunks[j - 1] : hint;
		bool in = k != NULL;

		for (unsigned int i = 0; in && i < t->t.ndim; i++)
			in = idx[i] >= k->off[i] && idx[i] - k->off[i] <
			    k->len[i];
		if (in)
			return k;
	}
	return NULL;
}

/*
 * Elements [first, first + n) in the whole tensor's row-major order: each
 * run that is consecutive both in the whole and in one chunk (to the end
 * of the chunk's last dimension, and across outer dimensions while the
 * chunk spans the inner ones whole) is one read of that chunk.
 */
int
ckpt_dcp_tensor_read(void *arg, uint64_t first, uint64_t n, void *buf,
    struct ckpt_error *err)
{
	const struct ckpt_dcp_tensor *t = arg;
	const struct ckpt_dcp_chunk *k = NULL;
	size_t esize = ckpt_dtype_bits(t->t.dtype) / 8;
	unsigned char *out = buf;
	unsigned int L = t->t.ndim;
	int rc;

	if (first > t->t.numel || n > t->t.numel - first)
		return ckpt_error_set(err, CKPT_ERR_INVALID, t->mpath, -1,
		    "elements %llu+%llu out of range for tensor '%s'",
		    (unsigned long long)first, (unsigned long long)n, t->name);
	while (n) {
		uint64_t idx[CKPT_MAX_DIMS], rest = first, run = 1, ci = 0;

		for (unsigned int i = L; i-- > 0;) {
			idx[i] = rest % t->shape[i];
			rest /= t->shape[i];
		}
		if (!(k = chunk_of(t, idx, k)))
			return ckpt_error_set(err, CKPT_ERR_FORMAT, t->mpath,
			    -1, "element %llu of tensor '%s' is in no chunk",
			    (unsigned long long)first, t->name);
		if (L) {
			uint64_t inner = idx[L - 1], span = t->shape[L - 1];
			bool full = !k->off[L - 1] &&
			    k->len[L - 1] == t->shape[L - 1];

			run = k->off[L - 1] + k->len[L - 1] - idx[L - 1];
			for (unsigned int i = L - 1; i-- > 0 && full;) {
				run = (k->off[i] + k->len[i] - idx[i]) * span -
				    inner;
				inner += idx[i] * span;
				span *= t->shape[i];
				full = !k->off[i] && k->len[i] == t->shape[i];
			}
			for (unsigned int i = 0; i < L; i++)
				ci = ci * k->len[i] + (idx[i] - k->off[i]);
		}
		if (run > n)
			run = n;
		if ((rc = ckpt_tensor_read(k->file, &k->t, ci, run, out, err)))
			return rc;
		out += run * esize;
		first += run;
		n -= run;
	}
	return CKPT_OK;
}
