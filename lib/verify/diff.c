/* SPDX-License-Identifier: MIT */
/*
 * diff.c - ckpt_diff(): two checkpoints compared tensor by tensor, across
 * formats, with their metadata.
 *
 * Each side is opened with ckpt_checkpoint_open_location() (headers
 * only; a local path or an s3:// location read by ranged GETs) and its
 * tensors listed by name, sorted; names are matched after the maps, so a
 * torch file and its safetensors export, a sharded directory and a single
 * file, a store checkpoint and a bare file all compare alike.  Values go
 * through the numeric kernels (ckpt_tensor_compare_many): every core, a
 * fixed buffer per thread, whatever the sizes.  Store checkpoints bring
 * their manifests, whose digests can answer "identical" without reading
 * any data (see ckpt.h for exactly when a digest is trusted).
 */
#include "util/internal.h"

#include <fnmatch.h>
#include <jansson.h>
#include <math.h>

#include "checkpoint/dcptensor.h"
#include "format/file.h"

struct sparse;

struct entry {
	const char *name;
	const struct ckpt_file *f;
	const struct ckpt_tensor *t;
	const char *file;		/* relative path in the checkpoint */
	unsigned char content[CKPT_SHA256_BYTES];	/* schema 2 */
	unsigned char bytes[CKPT_SHA256_BYTES];		/* schema 1 */
	json_int_t bytes_offset, bytes_size;		/* its range */
	bool has_content, has_bytes;
	bool matched;
	bool hidden;			/* a part of a sparse tensor */
	const struct sparse *sp;	/* a sparse tensor, or NULL */
};

/*
 * A sparse tensor of a torch pickle (torch._utils._rebuild_sparse_tensor,
 * or 1.13's _rebuild_sparse_csr_tensor): its parts are plain tensors the
 * reader lists as NAME.0, NAME.1, ... (indices first, values last), its
 * size is in the pickle.  It is compared as one tensor: the same layout
 * and size, index parts equal element for element, values as numbers.
 */
#define SPARSE_MAX_PARTS 4

struct sparse {
	char *name;
	char *layout;			/* "sparse_coo", "sparse_csr", ... */
	char *part[SPARSE_MAX_PARTS];
	size_t nparts;
	const struct entry *pe[SPARSE_MAX_PARTS];	/* once resolved */
	struct ckpt_tensor t;		/* values' dtype, the sparse size */
	uint64_t shape[CKPT_MAX_DIMS];
};

struct side {
	struct ckpt_checkpoint *c;
	struct entry *e;
	size_t n;
	json_t *manifest;		/* parsed manifest, or NULL */
	struct sparse *sp;
	size_t nsp;
	struct ckpt_dcp *dcp;		/* a DCP checkpoint's tensors */
	struct ckpt_error dcp_err;	/* why they cannot be read */
	bool dcp_tried;
};

struct diff_priv {
	struct ckpt_diff pub;
	struct ckpt_diff_tensor *t;
	size_t nt, capt;
	struct ckpt_diff_meta *m;
	size_t nm, capm;
	char **strings;			/* owned strings */
	size_t ns, caps;
	struct side a, b;
};

static char *
xfmt(const char *fmt, ...) CKPT_PRINTF(1, 2);

static char *
xfmt(const char *fmt, ...)
{
	va_list ap;
	char *s;
	int n;

	va_start(ap, fmt);
	n = vasprintf(&s, fmt, ap);
	va_end(ap);
	return n < 0 ? NULL : s;
}

static const char *
keep(struct diff_priv *d, char *s)
{
	if (!s)
		return NULL;
	if (d->ns == d->caps) {
		size_t c = d->caps ? 2 * d->caps : 64;
		char **n = reallocarray(d->strings, c, sizeof(*n));

		if (!n) {
			free(s);
			return NULL;
		}
		d->strings = n;
		d->caps = c;
	}
	return d->strings[d->ns++] = s;
}

static int
cmp_entry(const void *x, const void *y)
{
	return strcmp(((const struct entry *)x)->name,
	    ((const struct entry *)y)->name);
}

static struct entry *
find_entry(const struct side *s, const char *name)
{
	struct entry key = { .name = name };

	return s->n ? bsearch(&key, s->e, s->n, sizeof(*s->e), cmp_entry) :
	    NULL;
}

static bool
selected(const struct ckpt_diff_options *o, const char *name)
{
	if (!o || !o->nfilters)
		return true;
	for (size_t i = 0; i < o->nfilters; i++)
		if (!fnmatch(o->filters[i], name, 0))
			return true;
	return false;
}

/* ------------------------------------------------------------------ */
/* Opening a side                                                      */
/* ------------------------------------------------------------------ */

static bool
parse_digest(json_t *v, unsigned char out[CKPT_SHA256_BYTES])
{
	const char *s = json_string_value(v);

	if (!s || strncmp(s, "sha256:", 7) || strlen(s) != 7 + 64)
		return false;
	for (size_t i = 0; i < CKPT_SHA256_BYTES; i++) {
		unsigned int x;

		if (sscanf(s + 7 + 2 * i, "%2x", &x) != 1)
			return false;
		out[i] = (unsigned char)x;
	}
	return true;
}

/* The manifest's digests of each tensor, by (file, name). */
static void
attach_digests(struct side *s)
{
	size_t i;
	json_t *f;

	json_array_foreach(json_object_get(s->manifest, "files"), i, f) {
		const char *path =
		    json_string_value(json_object_get(f, "path"));
		size_t k;
		json_t *t;

		if (!path)
			continue;
		json_array_foreach(json_object_get(f, "tensors"), k, t) {
			const char *name = json_string_value(
			    json_object_get(t, "name"));
			struct entry *e = name ? find_entry(s, name) : NULL;

			if (!e || strcmp(e->file, path))
				continue;
			e->has_content = parse_digest(json_object_get(t,
			    "content_sha256"), e->content);
			e->has_bytes = parse_digest(json_object_get(t,
			    "sha256"), e->bytes);
			e->bytes_offset = json_integer_value(
			    json_object_get(t, "offset"));
			e->bytes_size = json_integer_value(
			    json_object_get(t, "size"));
		}
	}
}

static void
load_manifest(struct side *s, const char *path)
{
	struct ckpt_manifest *m;
	struct ckpt_error e;

	if (!ckpt_checkpoint_is_directory(s->c))
		return;
	ckpt_error_clear(&e);
	/* No manifest, or one this build cannot read: no digests, and the
	 * data decides. */
	if (ckpt_manifest_read_location(path, &m, &e))
		return;
	s->manifest = json_loads(ckpt_manifest_json(m), 0, NULL);
	ckpt_manifest_free(m);
}

/* Where weights were expected (the argument itself, or a weights file
 * name inside a directory), an unrecognised file is an error: a Git LFS
 * pointer or an HTML page must not compare as "no tensors". */
static bool
weights_name(const char *name)
{
	static const char *const exts[] = { ".safetensors", ".bin", ".pt",
		".pth", ".ckpt", ".distcp" };
	size_t n = strlen(name);

	for (size_t i = 0; i < CKPT_ARRAY_SIZE(exts); i++) {
		size_t m = strlen(exts[i]);

		if (n > m && !strcmp(name + n - m, exts[i]))
			return true;
	}
	return false;
}

static int
check_recognised(const struct side *s, size_t i, struct ckpt_error *err)
{
	const struct ckpt_file *f = ckpt_checkpoint_file(s->c, i);
	const char *why = "unrecognised format";

	if (!f || ckpt_file_format(f) != CKPT_FORMAT_UNKNOWN ||
	    (ckpt_checkpoint_is_directory(s->c) &&
	    !weights_name(ckpt_checkpoint_file_name(s->c, i))))
		return CKPT_OK;
	for (size_t k = 0; k < ckpt_file_finding_count(f); k++)
		if (!strcmp(ckpt_file_finding(f, k)->id, "unrecognised-format"))
			why = ckpt_file_finding(f, k)->message;
	return ckpt_error_set(err, CKPT_ERR_FORMAT, ckpt_file_path(f), -1,
	    "%s", why);
}

static bool
is_pickle(enum ckpt_format f)
{
	return f == CKPT_FORMAT_TORCH_ZIP || f == CKPT_FORMAT_TORCH_LEGACY ||
	    f == CKPT_FORMAT_TORCH_TAR || f == CKPT_FORMAT_PICKLE ||
	    f == CKPT_FORMAT_TORCHSCRIPT;
}

/* A shard of a distributed checkpoint: its tensors are chunks, read
 * through the .metadata (a shard of one archive reads as a torch file
 * whose chunk would otherwise pass for a tensor named ""). */
static bool
dcp_shard(const struct side *s, size_t i)
{
	const char *name = ckpt_checkpoint_file_name(s->c, i);
	size_t n = strlen(name);

	return !strcmp(ckpt_checkpoint_kind(s->c), "dcp") && n >= 7 &&
	    !strcmp(name + n - 7, ".distcp");
}

/* A sparse tensor node of a pickle's object tree (ckpt_file_metadata_json):
 * its layout and parts, and how many name components the reader added to
 * the sparse tensor's name for its first part ("X.0", or "X.1.0" through
 * the $args of 1.13's CSR rebuild). */
static const char *
sparse_node(json_t *o, json_t **parts, unsigned int *depth)
{
	json_t *sp = json_object_get(o, "$sparse");
	const char *g = json_string_value(json_object_get(o, "$global"));

	if (json_is_object(sp)) {
		*parts = json_object_get(sp, "parts");
		*depth = 1;
		return json_string_value(json_object_get(sp, "layout"));
	}
	if (g && !strcmp(g, "torch._utils._rebuild_sparse_csr_tensor")) {
		json_t *args = json_object_get(o, "$args");

		*parts = json_array_get(args, 1);
		*depth = 2;
		return json_string_value(json_array_get(args, 0));
	}
	return NULL;
}

static bool
is_sparse_node(json_t *o)
{
	json_t *parts;
	unsigned int depth;

	return json_is_object(o) && sparse_node(o, &parts, &depth);
}

/* The sparse tensor's name: the first part's without its last depth
 * components, which must be the ones the reader adds. */
static char *
sparse_name(const char *part0, unsigned int depth)
{
	const char *suffix = depth == 1 ? ".0" : ".1.0";
	size_t n = strlen(part0), m = strlen(suffix);

	if (n <= m || strcmp(part0 + n - m, suffix))
		return NULL;
	return strndup(part0, n - m);
}

/* Records a sparse tensor whose parts are all tensors of this side; one
 * that does not fit is left alone, its parts compared as plain tensors. */
static int
add_sparse(struct side *s, const char *layout, json_t *parts,
    unsigned int depth, struct ckpt_error *err)
{
	struct sparse sp = { 0 }, *n;
	const struct entry *vals = NULL;
	json_t *v, *size = NULL;
	unsigned int nd = 0;
	size_t i;

	if (!layout || !json_is_array(parts))
		return CKPT_OK;
	json_array_foreach(parts, i, v) {
		const char *tn = json_string_value(json_object_get(v,
		    "$tensor"));

		if (tn && !size && sp.nparts < SPARSE_MAX_PARTS) {
			if (!find_entry(s, tn))
				goto skip;
			if (!(sp.part[sp.nparts++] = strdup(tn)))
				goto nomem;
			vals = find_entry(s, tn);
		} else if (json_is_array(v) && !size) {
			size = v;
		}
	}
	if (sp.nparts < 2 || !size || json_array_size(size) > CKPT_MAX_DIMS)
		goto skip;
	sp.t.numel = 1;
	json_array_foreach(size, i, v) {
		if (!json_is_integer(v) || json_integer_value(v) < 0 ||
		    !ckpt_mul_u64(sp.t.numel, (uint64_t)json_integer_value(v),
		    &sp.t.numel))
			goto skip;
		sp.shape[nd++] = (uint64_t)json_integer_value(v);
	}
	if (!(sp.name = sparse_name(sp.part[0], depth)) ||
	    !(sp.layout = strdup(strncmp(layout, "torch.", 6) ? layout :
	    layout + 6)))
		goto nomem;
	sp.t.dtype = vals->t->dtype;
	sp.t.ndim = nd;
	sp.t.kind = "sparse";
	if (!(n = reallocarray(s->sp, s->nsp + 1, sizeof(*n))))
		goto nomem;
	s->sp = n;
	s->sp[s->nsp++] = sp;
	return CKPT_OK;
nomem:
	free(sp.name);
	free(sp.layout);
	for (i = 0; i < sp.nparts; i++)
		free(sp.part[i]);
	return ckpt_error_nomem(err);
skip:
	for (i = 0; i < sp.nparts; i++)
		free(sp.part[i]);
	free(sp.name);
	return CKPT_OK;
}

static int
collect_sparse(struct side *s, json_t *j, int depth, struct ckpt_error *err)
{
	json_t *parts, *v;
	const char *layout, *k;
	unsigned int strip;
	int rc = CKPT_OK;
	size_t i;

	if (depth > 256)
		return CKPT_OK;
	if (json_is_object(j) && (layout = sparse_node(j, &parts, &strip)))
		return add_sparse(s, layout, parts, strip, err);
	if (json_is_object(j)) {
		json_object_foreach(j, k, v)
			if ((rc = collect_sparse(s, v, depth + 1, err)))
				break;
	} else if (json_is_array(j)) {
		json_array_foreach(j, i, v)
			if ((rc = collect_sparse(s, v, depth + 1, err)))
				break;
	}
	return rc;
}

/* The sparse tensors of the side's pickles become entries of their own,
 * their parts hidden. */
static int
find_sparse(struct side *s, struct ckpt_error *err)
{
	struct entry *n;
	int rc = CKPT_OK;

	for (size_t i = 0; !rc && i < ckpt_checkpoint_file_count(s->c); i++) {
		const struct ckpt_file *f = ckpt_checkpoint_file(s->c, i);
		const char *js;
		json_t *j;

		if (!f || dcp_shard(s, i) || !is_pickle(ckpt_file_format(f)) ||
		    !(js = ckpt_file_metadata_json(f)) ||
		    !strstr(js, "sparse"))
			continue;
		if (!(j = json_loads(js, JSON_DECODE_ANY, NULL)))
			continue;
		rc = collect_sparse(s, j, 0, err);
		json_decref(j);
	}
	if (rc || !s->nsp)
		return rc;
	if (!(n = reallocarray(s->e, s->n + s->nsp, sizeof(*n))))
		return ckpt_error_nomem(err);
	s->e = n;
	for (size_t i = 0; i < s->nsp; i++) {
		struct sparse *sp = &s->sp[i];
		const struct entry *v = find_entry(s, sp->part[sp->nparts - 1]);

		sp->t.name = sp->name;
		sp->t.shape = sp->shape;
		memset(&s->e[s->n + i], 0, sizeof(*s->e));
		s->e[s->n + i].name = sp->name;
		s->e[s->n + i].t = &sp->t;
		s->e[s->n + i].f = v->f;
		s->e[s->n + i].file = v->file;
		s->e[s->n + i].sp = sp;
	}
	s->n += s->nsp;
	qsort(s->e, s->n, sizeof(*s->e), cmp_entry);
	/* a sparse tensor named like a dense one: keep the first */
	{
		size_t k = 0;

		for (size_t i = 0; i < s->n; i++)
			if (!k || strcmp(s->e[k - 1].name, s->e[i].name))
				s->e[k++] = s->e[i];
		s->n = k;
	}
	for (size_t i = 0; i < s->nsp; i++) {
		struct sparse *sp = &s->sp[i];
		const struct entry *se = find_entry(s, sp->name);

		if (!se || se->sp != sp)
			continue;
		for (size_t k = 0; k < sp->nparts; k++) {
			struct entry *pe = find_entry(s, sp->part[k]);

			pe->hidden = true;
			sp->pe[k] = pe;
		}
	}
	return CKPT_OK;
}

static int
open_side(struct side *s, const char *path, const struct ckpt_diff_options *o,
    struct ckpt_error *err)
{
	size_t cap = 0;
	int rc;

	if ((rc = ckpt_checkpoint_open_location(path, NULL, &s->c, err)))
		return rc;
	for (size_t i = 0; i < ckpt_checkpoint_file_count(s->c); i++) {
		const struct ckpt_error *fe =
		    ckpt_checkpoint_file_error(s->c, i);

		if (fe) {
			*err = *fe;
			return fe->code ? fe->code : CKPT_ERR_FORMAT;
		}
		if ((rc = check_recognised(s, i, err)))
			return rc;
	}
	for (size_t i = 0; i < ckpt_checkpoint_file_count(s->c); i++) {
		const struct ckpt_file *f = dcp_shard(s, i) ? NULL :
		    ckpt_checkpoint_file(s->c, i);

		for (size_t j = 0; f && j < ckpt_file_tensor_count(f); j++) {
			const struct ckpt_tensor *t = ckpt_file_tensor(f, j);

			if (s->n == cap) {
				size_t c = cap ? 2 * cap : 64;
				struct entry *n = reallocarray(s->e, c,
				    sizeof(*n));

				if (!n)
					return ckpt_error_nomem(err);
				s->e = n;
				cap = c;
			}
			memset(&s->e[s->n], 0, sizeof(*s->e));
			s->e[s->n].name = t->name ? t->name : "";
			s->e[s->n].f = f;
			s->e[s->n].t = t;
			s->e[s->n++].file = ckpt_checkpoint_file_name(s->c, i);
		}
	}
	/* A name twice (two shards) keeps one occurrence. */
	if (s->n)
		qsort(s->e, s->n, sizeof(*s->e), cmp_entry);
	{
		size_t k = 0;

		for (size_t i = 0; i < s->n; i++)
			if (!k || strcmp(s->e[k - 1].name, s->e[i].name))
				s->e[k++] = s->e[i];
		s->n = k;
	}
	if ((rc = find_sparse(s, err)))
		return rc;
	load_manifest(s, path);
	if (s->manifest && !(o && (o->flags & CKPT_DIFF_NO_DIGESTS)))
		attach_digests(s);
	return CKPT_OK;
}

static void
close_side(struct side *s)
{
	for (size_t i = 0; i < s->nsp; i++) {
		free(s->sp[i].name);
		free(s->sp[i].layout);
		for (size_t k = 0; k < s->sp[i].nparts; k++)
			free(s->sp[i].part[k]);
	}
	free(s->sp);
	ckpt_dcp_free(s->dcp);
	ckpt_checkpoint_free(s->c);
	free(s->e);
	json_decref(s->manifest);
}

/* ------------------------------------------------------------------ */
/* Tensors                                                             */
/* ------------------------------------------------------------------ */

static struct ckpt_diff_tensor *
add_tensor(struct diff_priv *d)
{
	if (d->nt == d->capt) {
		size_t c = d->capt ? 2 * d->capt : 64;
		struct ckpt_diff_tensor *n = reallocarray(d->t, c, sizeof(*n));

		if (!n)
			return NULL;
		d->t = n;
		d->capt = c;
	}
	memset(&d->t[d->nt], 0, sizeof(*d->t));
	ckpt_compare_stats_init(&d->t[d->nt].st);
	return &d->t[d->nt++];
}

/* The name of B that name of A maps to (newly allocated). */
static char *
mapped_name(const struct ckpt_diff_options *o, const char *name)
{
	for (size_t i = 0; o && i < o->nmaps; i++) {
		const char *eq = strchr(o->maps[i], '=');
		size_t la;
		char *out;

		if (!eq)
			continue;
		la = (size_t)(eq - o->maps[i]);
		if (strncmp(name, o->maps[i], la))
			continue;
		if (asprintf(&out, "%s%s", eq + 1, name + la) < 0)
			return NULL;
		return out;
	}
	return strdup(name);
}

static bool
same_shape(const struct ckpt_tensor *a, const struct ckpt_tensor *b)
{
	if (a->ndim != b->ndim)
		return false;
	for (unsigned i = 0; i < a->ndim; i++)
		if (a->shape[i] != b->shape[i])
			return false;
	return true;
}

/* Tensors whose elements a reader can hand out: plain ones, quantized
 * (their raw integers), numpy arrays. */
static const char *
why_unreadable(const struct ckpt_tensor *t)
{
	if (t->kind && strcmp(t->kind, "quantized") && strcmp(t->kind, "numpy"))
		return t->kind;
	if (t->dtype == CKPT_DTYPE_QU4X2 || t->dtype == CKPT_DTYPE_QU2X4 ||
	    !ckpt_dtype_bits(t->dtype))
		return ckpt_dtype_name(t->dtype);
	return NULL;
}

/* Schema-1 evidence: the manifest's byte range is the tensor as this
 * reader sees it, and holds exactly its elements, in row-major
 * little-endian order. */
static bool
plain_bytes(const struct entry *e)
{
	const struct ckpt_tensor *t = e->t;

	return (!t->strides || t->contiguous) && !t->big_endian &&
	    t->span == t->nbytes && e->bytes_offset >= 0 &&
	    (uint64_t)e->bytes_offset == t->offset && e->bytes_size >= 0 &&
	    (uint64_t)e->bytes_size == t->nbytes;
}

static bool
digests_say_identical(const struct entry *a, const struct entry *b)
{
	if (a->has_content && b->has_content)
		return !memcmp(a->content, b->content, CKPT_SHA256_BYTES);
	return a->has_bytes && b->has_bytes && a->t->dtype == b->t->dtype &&
	    same_shape(a->t, b->t) && plain_bytes(a) && plain_bytes(b) &&
	    !memcmp(a->bytes, b->bytes, CKPT_SHA256_BYTES);
}

static void
fill_common(struct ckpt_diff_tensor *x, const struct entry *a,
    const struct entry *b)
{
	x->where = CKPT_DIFF_COMMON;
	x->dtype_a = a->t->dtype;
	x->dtype_b = b->t->dtype;
	x->ndim_a = a->t->ndim;
	x->ndim_b = b->t->ndim;
	x->shape_a = a->t->shape;
	x->shape_b = b->t->shape;
	x->dtype_changed = a->t->dtype != b->t->dtype;
	x->shape_changed = !same_shape(a->t, b->t);
}

/* The compare items, and for each the entry of d->t it belongs to: a
 * sparse tensor has an item per index part (which must be equal) and one
 * for its values. */
struct plan {
	struct ckpt_compare_item *items;
	struct item_of {
		size_t slot;
		bool index;
	} *of;
	size_t n, cap;
};

static struct ckpt_compare_item *
add_item(struct plan *p, size_t slot, bool index, const struct entry *ea,
    const struct entry *eb)
{
	struct ckpt_compare_item *it;

	if (p->n == p->cap) {
		size_t c = p->cap ? 2 * p->cap : 64;
		struct ckpt_compare_item *n = reallocarray(p->items, c,
		    sizeof(*n));
		struct item_of *s = n ? reallocarray(p->of, c, sizeof(*s)) :
		    NULL;

		if (n)
			p->items = n;
		if (!n || !s)
			return NULL;
		p->of = s;
		p->cap = c;
	}
	it = &p->items[p->n];
	memset(it, 0, sizeof(*it));
	it->fa = ea->f;
	it->ta = ea->t;
	it->fb = eb->f;
	it->tb = eb->t;
	p->of[p->n].slot = slot;
	p->of[p->n++].index = index;
	return it;
}

/* "FILE: problem (at byte N)", as the command line prints errors. */
static const char *
error_text(struct diff_priv *d, const struct ckpt_error *e)
{
	const char *msg = e->message[0] ? e->message : ckpt_strerror(e->code);

	if (e->offset >= 0)
		return keep(d, xfmt("%s%s%s (at byte %lld)", e->path,
		    *e->path ? ": " : "", msg, (long long)e->offset));
	return keep(d, xfmt("%s%s%s", e->path, *e->path ? ": " : "", msg));
}

static bool
is_kind(const struct ckpt_tensor *t, const char *kind)
{
	return t->kind && !strcmp(t->kind, kind);
}

static const char *
layout_of(const struct entry *e)
{
	return e->sp ? e->sp->layout : is_kind(e->t, "meta") ? "meta" : NULL;
}

/* The side's DCP reader over its metadata file mname, opened once; NULL
 * with *why set when it cannot be. */
static struct ckpt_dcp *
side_dcp(struct side *s, const char *mname, struct ckpt_error *why)
{
	if (!s->dcp_tried) {
		s->dcp_tried = true;
		ckpt_error_clear(&s->dcp_err);
		if (ckpt_dcp_open(s->c, mname, NULL, &s->dcp,
		    &s->dcp_err))
			s->dcp = NULL;
	}
	if (!s->dcp)
		*why = s->dcp_err;
	return s->dcp;
}

/* A DCP tensor's reader: its chunks, assembled (dcptensor.c).  NULL with
 * *why set when they cannot be read. */
static const struct ckpt_dcp_tensor *
dcp_source(struct side *s, const struct entry *e, struct ckpt_error *why)
{
	const struct ckpt_dcp_tensor *t;

	ckpt_error_clear(why);
	if (!side_dcp(s, e->file, why))
		return NULL;
	return ckpt_dcp_tensor(s->dcp, e->name, &t, why) ? NULL : t;
}

/* Meta tensors have no data: two of them are identical when their dtype
 * and shape are (said so in the note), one against data is different. */
static void
plan_meta(struct diff_priv *d, struct ckpt_diff_tensor *x)
{
	if (x->layout_a && x->layout_b && !strcmp(x->layout_a, "meta") &&
	    !strcmp(x->layout_b, "meta")) {
		if (x->dtype_changed) {
			x->note = "meta tensors (no data): dtype changed";
			return;
		}
		x->compared = x->identical = x->no_data = true;
		x->note = "meta tensors (no data): dtype and shape compared";
		return;
	}
	x->note = keep(d, xfmt("a meta tensor (no data) in %s only: values "
	    "not compared", x->layout_a && !strcmp(x->layout_a, "meta") ?
	    "a" : "b"));
}

/* Two sparse tensors of one layout and size: each index part must have
 * the same shape (the same number of stored elements) to be compared. */
static int
plan_sparse(struct diff_priv *d, struct plan *p, struct ckpt_diff_tensor *x,
    const struct entry *ea, const struct entry *eb, struct ckpt_error *err)
{
	const struct sparse *sa = ea->sp, *sb = eb->sp;
	const char *why;

	if (sa->nparts != sb->nparts) {
		x->note = keep(d, xfmt("%s tensors of %zu and %zu parts: "
		    "values not compared", sa->layout, sa->nparts, sb->nparts));
		return CKPT_OK;
	}
	for (size_t k = 0; k < sa->nparts; k++) {
		const struct ckpt_tensor *pa = sa->pe[k]->t, *pb = sb->pe[k]->t;

		if ((why = why_unreadable(pa)) || (why = why_unreadable(pb))) {
			x->note = keep(d, xfmt("values not compared: %s part",
			    why));
			return CKPT_OK;
		}
		if (!same_shape(pa, pb) || ckpt_dtype_components(pa->dtype) !=
		    ckpt_dtype_components(pb->dtype)) {
			x->note = keep(d, xfmt("sparsity pattern differs (%llu "
			    "against %llu stored values): values not "
			    "compared", (unsigned long long)
			    sa->pe[sa->nparts - 1]->t->numel,
			    (unsigned long long)
			    sb->pe[sb->nparts - 1]->t->numel));
			return CKPT_OK;
		}
	}
	for (size_t k = 0; k < sa->nparts; k++)
		if (!add_item(p, d->nt - 1, k + 1 < sa->nparts, sa->pe[k],
		    sb->pe[k]))
			return ckpt_error_nomem(err);
	x->note = keep(d, xfmt("%s: statistics of the stored values "
	    "(indices equal)", sa->layout));
	return x->note ? CKPT_OK : ckpt_error_nomem(err);
}

/* How the values of a common pair x (the last entry of d->t) are to be
 * compared: by digest, not at all (with a note or an error), or by data
 * through items of p. */
static int
plan_values(struct diff_priv *d, struct plan *p, struct ckpt_diff_tensor *x,
    struct entry *ea, struct entry *eb, struct ckpt_error *err)
{
	const struct ckpt_dcp_tensor *da = NULL, *db = NULL;
	struct ckpt_compare_item *it;
	struct ckpt_error why;
	const char *w;

	x->layout_a = layout_of(ea);
	x->layout_b = layout_of(eb);
	if (x->shape_changed) {
		x->note = "shape changed: values not compared";
		return CKPT_OK;
	}
	if (digests_say_identical(ea, eb)) {
		x->compared = x->by_digest = x->identical = true;
		return CKPT_OK;
	}
	if ((x->layout_a && !strcmp(x->layout_a, "meta")) ||
	    (x->layout_b && !strcmp(x->layout_b, "meta"))) {
		plan_meta(d, x);
		return CKPT_OK;
	}
	if (!x->layout_a != !x->layout_b || (x->layout_a &&
	    strcmp(x->layout_a, x->layout_b))) {
		x->note = keep(d, xfmt("layout changed (%s against %s): values "
		    "not compared", x->layout_a ? x->layout_a : "strided",
		    x->layout_b ? x->layout_b : "strided"));
		return CKPT_OK;
	}
	if (ea->sp)
		return plan_sparse(d, p, x, ea, eb, err);
	if ((is_kind(ea->t, "dcp") && !(da = dcp_source(&d->a, ea, &why))) ||
	    (is_kind(eb->t, "dcp") && !(db = dcp_source(&d->b, eb, &why)))) {
		if (why.code == CKPT_ERR_NOMEM)
			return ckpt_error_nomem(err);
		x->error = error_text(d, &why);
		return x->error ? CKPT_OK : ckpt_error_nomem(err);
	}
	if ((!da && (w = why_unreadable(ea->t))) ||
	    (!db && (w = why_unreadable(eb->t)))) {
		x->note = keep(d, xfmt("values not compared: %s tensor", w));
		return CKPT_OK;
	}
	if (ckpt_dtype_components(ea->t->dtype) !=
	    ckpt_dtype_components(eb->t->dtype)) {
		x->note = "complex against real: values not compared";
		return CKPT_OK;
	}
	if (!(it = add_item(p, d->nt - 1, false, ea, eb)))
		return ckpt_error_nomem(err);
	if (da) {
		it->ta = &da->t;
		it->read_a = ckpt_dcp_tensor_read;
		it->arg_a = (void *)da;
	}
	if (db) {
		it->tb = &db->t;
		it->read_b = ckpt_dcp_tensor_read;
		it->arg_b = (void *)db;
	}
	return CKPT_OK;
}

static int
match_tensors(struct diff_priv *d, const struct ckpt_diff_options *o,
    struct plan *p, struct ckpt_error *err)
{
	int rc;

	for (size_t i = 0; i < d->a.n; i++) {
		struct entry *ea = &d->a.e[i], *eb;
		struct ckpt_diff_tensor *x;
		char *nb;

		if (ea->hidden || !selected(o, ea->name))
			continue;
		d->pub.ntensors_a++;
		if (!(nb = mapped_name(o, ea->name)) || !(x = add_tensor(d))) {
			free(nb);
			return ckpt_error_nomem(err);
		}
		x->name = ea->name;
		eb = find_entry(&d->b, nb);
		free(nb);
		if (!eb || eb->hidden) {
			x->where = CKPT_DIFF_ONLY_A;
			x->dtype_a = ea->t->dtype;
			x->ndim_a = ea->t->ndim;
			x->shape_a = ea->t->shape;
			x->layout_a = layout_of(ea);
			continue;
		}
		eb->matched = true;
		x->name_b = eb->name;
		fill_common(x, ea, eb);
		if ((rc = plan_values(d, p, x, ea, eb, err)))
			return rc;
	}
	for (size_t i = 0; i < d->b.n; i++) {
		struct entry *eb = &d->b.e[i];
		struct ckpt_diff_tensor *x;

		if (eb->matched)
			d->pub.ntensors_b++;
		if (eb->matched || eb->hidden || !selected(o, eb->name))
			continue;
		d->pub.ntensors_b++;
		if (!(x = add_tensor(d)))
			return ckpt_error_nomem(err);
		x->name = eb->name;
		x->where = CKPT_DIFF_ONLY_B;
		x->dtype_b = eb->t->dtype;
		x->ndim_b = eb->t->ndim;
		x->shape_b = eb->t->shape;
		x->layout_b = layout_of(eb);
	}
	return CKPT_OK;
}

/*
 * Prefixes that training wrappers add: DDP's "module.", Lightning's
 * "model.", torch.compile's "_orig_mod.", a checkpoint dict's
 * "state_dict.".  When nothing matched, the map that would match the most
 * names is suggested.
 */
static void
suggest_map(struct diff_priv *d, const struct ckpt_diff_options *o)
{
	static const char *const pre[] = { "", "module.", "model.",
	    "_orig_mod.", "state_dict.", "model.module.",
	    "state_dict.module.", "state_dict.model." };
	size_t best = 0;
	const char *ba = NULL, *bb = NULL;

	for (size_t i = 0; i < d->nt; i++)
		if (d->t[i].where == CKPT_DIFF_COMMON)
			return;
	for (size_t p = 0; p < CKPT_ARRAY_SIZE(pre); p++)
		for (size_t q = 0; q < CKPT_ARRAY_SIZE(pre); q++) {
			size_t hits = 0, lp = strlen(pre[p]);

			if (p == q)
				continue;
			for (size_t i = 0; i < d->a.n; i++) {
				char *nb;

				if (strncmp(d->a.e[i].name, pre[p], lp) ||
				    !selected(o, d->a.e[i].name))
					continue;
				if (asprintf(&nb, "%s%s", pre[q],
				    d->a.e[i].name + lp) < 0)
					return;
				hits += find_entry(&d->b, nb) != NULL;
				free(nb);
			}
			if (hits > best) {
				best = hits;
				ba = pre[p];
				bb = pre[q];
			}
		}
	if (best)
		d->pub.suggested_map = keep(d, xfmt("%s=%s", ba, bb));
}

/* ------------------------------------------------------------------ */
/* Metadata                                                            */
/* ------------------------------------------------------------------ */

/* 16 significant digits: 0.1 prints as 0.1 (17 would say
 * 0.10000000000000001), and values that differ in the 17th digit only
 * are rare enough in metadata. */
#define META_JSON (JSON_ENCODE_ANY | JSON_COMPACT | JSON_SORT_KEYS | \
	JSON_REAL_PRECISION(16))

static int
add_meta(struct diff_priv *d, const char *section, const char *path,
    json_t *a, json_t *b)
{
	struct ckpt_diff_meta *m;

	if (d->nm == d->capm) {
		size_t c = d->capm ? 2 * d->capm : 32;
		struct ckpt_diff_meta *n = reallocarray(d->m, c, sizeof(*n));

		if (!n)
			return CKPT_ERR_NOMEM;
		d->m = n;
		d->capm = c;
	}
	m = &d->m[d->nm++];
	m->section = section;
	m->path = keep(d, strdup(path));
	m->a = a ? keep(d, json_dumps(a, META_JSON)) : NULL;
	m->b = b ? keep(d, json_dumps(b, META_JSON)) : NULL;
	if (!m->path || (a && !m->a) || (b && !m->b))
		return CKPT_ERR_NOMEM;
	return CKPT_OK;
}

static char *
child_path(const char *path, const char *key, size_t index, bool is_index)
{
	char *out;
	int n;

	if (is_index)
		n = asprintf(&out, "%s[%zu]", path, index);
	else
		n = asprintf(&out, "%s%s%s", path, *path ? "." : "", key);
	return n < 0 ? NULL : out;
}

/* Added, removed and changed values of two JSON trees, by path; objects
 * by key, arrays by index, anything else by value. */
static int
json_diff(struct diff_priv *d, const char *section, const char *path,
    json_t *a, json_t *b, int depth)
{
	int rc = CKPT_OK;

	/* json_equal() calls two absent values unequal. */
	if (a == b || json_equal(a, b))
		return CKPT_OK;
	if (depth > 64 || !json_is_object(a) || !json_is_object(b)) {
		if (depth <= 64 && json_is_array(a) && json_is_array(b)) {
			size_t na = json_array_size(a), nb = json_array_size(b);

			for (size_t i = 0; !rc && i < (na > nb ? na : nb);
			    i++) {
				char *p = child_path(path, NULL, i, true);

				if (!p)
					return CKPT_ERR_NOMEM;
				rc = json_diff(d, section, p,
				    json_array_get(a, i), json_array_get(b, i),
				    depth + 1);
				free(p);
			}
			return rc;
		}
		return add_meta(d, section, path, a, b);
	}
	{
		const char *k;
		json_t *v;

		json_object_foreach(a, k, v) {
			char *p = child_path(path, k, 0, false);

			if (!p)
				return CKPT_ERR_NOMEM;
			rc = json_diff(d, section, p, v, json_object_get(b, k),
			    depth + 1);
			free(p);
			if (rc)
				return rc;
		}
		json_object_foreach(b, k, v) {
			char *p;

			if (json_object_get(a, k))
				continue;
			if (!(p = child_path(path, k, 0, false)))
				return CKPT_ERR_NOMEM;
			rc = add_meta(d, section, p, NULL, v);
			free(p);
			if (rc)
				return rc;
		}
	}
	return rc;
}

/* A pickle's object tree without its tensors, which are compared as
 * values: {"$tensor": NAME} leaves are dropped. */
static void
strip_tensors(json_t *j, int depth)
{
	const char *k;
	json_t *v;
	void *tmp;
	size_t i;

	if (depth > 256)
		return;
	if (json_is_object(j)) {
		json_object_foreach_safe(j, tmp, k, v) {
			if (json_is_object(v) && (json_object_get(v, "$tensor")
			    || is_sparse_node(v)))
				json_object_del(j, k);
			else
				strip_tensors(v, depth + 1);
		}
	} else if (json_is_array(j)) {
		for (i = json_array_size(j); i-- > 0;) {
			v = json_array_get(j, i);
			if (json_is_object(v) && (json_object_get(v, "$tensor")
			    || is_sparse_node(v)))
				json_array_set_new(j, i,
				    json_string("$tensor"));
			else
				strip_tensors(v, depth + 1);
		}
	}
}

/*
 * The metadata of one kind of file on a side: the tree of the one such
 * file, or {relative path: tree} when there are several.  Store files
 * (the manifest, the summary) are not weights metadata.
 */
/*
 * The pickled non-tensor values of a DCP checkpoint whose metadata is file
 * i: its bytes items, {fqn: object tree}, the same tree torch.save gives
 * the consolidated state dict's non-tensor values.  *out NULL when file i
 * is not such metadata or there are none.
 */
static int
dcp_bytes_meta(struct side *s, size_t i, json_t **out, struct ckpt_error *err)
{
	const struct ckpt_file *f = ckpt_checkpoint_file(s->c, i);
	struct ckpt_dcp *dcp;

	*out = NULL;
	if (!f || ckpt_file_format(f) != CKPT_FORMAT_DCP_METADATA ||
	    strcmp(ckpt_checkpoint_kind(s->c), "dcp"))
		return CKPT_OK;
	if (!(dcp = side_dcp(s, ckpt_checkpoint_file_name(s->c, i), err)))
		return err->code ? err->code : CKPT_ERR_FORMAT;
	return ckpt_dcp_bytes(dcp, out, err);
}

/* The object tree of file i for the section (pickles or safetensors):
 * *out NULL when it has none. */
static int
file_meta(struct side *s, size_t i, bool pickles, json_t **out,
    struct ckpt_error *err)
{
	const struct ckpt_file *f = ckpt_checkpoint_file(s->c, i);
	const char *js;
	int rc;

	*out = NULL;
	if (!f || dcp_shard(s, i))
		return CKPT_OK;
	if (pickles && (rc = dcp_bytes_meta(s, i, out, err)))
		return rc;
	if (!*out && (js = ckpt_file_metadata_json(f)) && (pickles ?
	    is_pickle(ckpt_file_format(f)) :
	    ckpt_file_format(f) == CKPT_FORMAT_SAFETENSORS))
		*out = json_loads(js, JSON_DECODE_ANY, NULL);
	if (*out && pickles)
		strip_tensors(*out, 0);
	return CKPT_OK;
}

static int
side_meta(struct side *s, bool pickles, json_t **out, struct ckpt_error *err)
{
	json_t *all = json_object(), *one = NULL;
	size_t n = 0;
	int rc = CKPT_OK;

	*out = NULL;
	if (!all)
		return ckpt_error_nomem(err);
	for (size_t i = 0; i < ckpt_checkpoint_file_count(s->c); i++) {
		json_t *j;

		if ((rc = file_meta(s, i, pickles, &j, err)))
			break;
		if (!j)
			continue;
		json_object_set(all, ckpt_checkpoint_file_name(s->c, i), j);
		json_decref(one);
		one = j;
		n++;
	}
	if (!rc && n == 1) {
		*out = one;
		one = NULL;
	} else if (!rc && n) {
		*out = all;
		all = NULL;
	}
	json_decref(one);
	json_decref(all);
	return rc;
}

static const char *const manifest_keys[] = { "run", "step", "epoch",
    "metrics", "config", "git", "data", "env", "tags", "note", "scope" };

static int
diff_metadata(struct diff_priv *d, struct ckpt_error *err)
{
	int rc = CKPT_OK;

	if (d->a.manifest && d->b.manifest)
		for (size_t i = 0; !rc && i < CKPT_ARRAY_SIZE(manifest_keys);
		    i++)
			rc = json_diff(d, "manifest", manifest_keys[i],
			    json_object_get(d->a.manifest, manifest_keys[i]),
			    json_object_get(d->b.manifest, manifest_keys[i]),
			    0);
	if (rc)
		return ckpt_error_nomem(err);
	for (int pickles = 1; !rc && pickles >= 0; pickles--) {
		json_t *a = NULL, *b = NULL;

		if ((rc = side_meta(&d->a, pickles, &a, err)) ||
		    (rc = side_meta(&d->b, pickles, &b, err)))
			;
		else if (a && b && json_diff(d, pickles ? "pickle" :
		    "safetensors", "", a, b, 0))
			rc = ckpt_error_nomem(err);
		json_decref(a);
		json_decref(b);
	}
	return rc;
}

/* ------------------------------------------------------------------ */
/* The whole                                                           */
/* ------------------------------------------------------------------ */

static int
cmp_tensor_name(const void *x, const void *y)
{
	return strcmp(((const struct ckpt_diff_tensor *)x)->name,
	    ((const struct ckpt_diff_tensor *)y)->name);
}

static int
compare_values(struct diff_priv *d, const struct ckpt_diff_options *o,
    struct plan *p, struct ckpt_error *err)
{
	struct ckpt_compare_options def = {
	    .version = CKPT_COMPARE_OPTIONS_VERSION };
	int rc;

	rc = ckpt_tensor_compare_many(p->items, p->n, o ? &o->cmp : &def,
	    o ? o->threads : 0, o ? o->progress : NULL,
	    o ? o->progress_data : NULL, err);
	if (rc)
		return rc;
	for (size_t i = 0; i < p->n; i++) {
		struct ckpt_compare_item *it = &p->items[i];
		struct ckpt_diff_tensor *x = &d->t[p->of[i].slot];

		if (it->rc) {
			if (!x->error && !(x->error = error_text(d, &it->err)))
				return ckpt_error_nomem(err);
			continue;
		}
		d->pub.bytes_read += it->ta->nbytes + it->tb->nbytes;
		if (p->of[i].index)
			continue;
		x->st = it->st;
		x->compared = true;
		x->identical = !x->st.unequal;
	}
	/* Values stored at other indices are not the same elements. */
	for (size_t i = 0; i < p->n; i++) {
		struct ckpt_diff_tensor *x = &d->t[p->of[i].slot];

		if (!p->of[i].index || p->items[i].rc ||
		    !p->items[i].st.unequal || x->error)
			continue;
		x->compared = x->identical = false;
		x->note = "sparsity pattern differs (indices not equal): "
		    "values not compared";
	}
	return CKPT_OK;
}

int
ckpt_diff(const char *a, const char *b, const struct ckpt_diff_options *o,
    struct ckpt_diff **out, struct ckpt_error *err)
{
	struct diff_priv *d = calloc(1, sizeof(*d));
	struct plan p = { 0 };
	int rc;

	if (!d)
		return ckpt_error_nomem(err);
	if (o && ((rc = ckpt_options_check(o->version,
	    CKPT_DIFF_OPTIONS_VERSION, "ckpt_diff_options", err)) ||
	    (rc = ckpt_options_check(o->cmp.version,
	    CKPT_COMPARE_OPTIONS_VERSION, "ckpt_compare_options", err)))) {
		free(d);
		return rc;
	}
	if ((rc = open_side(&d->a, a, o, err)) ||
	    (rc = open_side(&d->b, b, o, err)) ||
	    (rc = match_tensors(d, o, &p, err)) ||
	    (rc = compare_values(d, o, &p, err)))
		goto out;
	suggest_map(d, o);
	if ((rc = diff_metadata(d, err)))
		goto out;
	if (d->nt)
		qsort(d->t, d->nt, sizeof(*d->t), cmp_tensor_name);
	d->pub.kind_a = ckpt_checkpoint_kind(d->a.c);
	d->pub.kind_b = ckpt_checkpoint_kind(d->b.c);
	d->pub.tensors = d->t;
	d->pub.ntensors = d->nt;
	d->pub.meta = d->m;
	d->pub.nmeta = d->nm;
out:
	free(p.items);
	free(p.of);
	if (rc) {
		ckpt_diff_free(&d->pub);
		return rc;
	}
	*out = &d->pub;
	return CKPT_OK;
}

void
ckpt_diff_free(struct ckpt_diff *pub)
{
	struct diff_priv *d = (struct diff_priv *)pub;

	if (!d)
		return;
	close_side(&d->a);
	close_side(&d->b);
	for (size_t i = 0; i < d->ns; i++)
		free(d->strings[i]);
	free(d->strings);
	free(d->t);
	free(d->m);
	free(d);
}
