/* SPDX-License-Identifier: MIT */
/*
 * diff.c - ckpt_diff(): two checkpoints compared tensor by tensor, across
 * formats, with their metadata.
 *
 * Each side is opened with ckpt_checkpoint_open() (headers only) and its
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

#include "format/file.h"

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
};

struct side {
	struct ckpt_checkpoint *c;
	struct entry *e;
	size_t n;
	json_t *manifest;		/* parsed manifest, or NULL */
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
		const char *path = json_string_value(json_object_get(f, "path"));
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
	if (ckpt_manifest_read(path, &m, &e))
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

static int
open_side(struct side *s, const char *path, const struct ckpt_diff_options *o,
    struct ckpt_error *err)
{
	size_t cap = 0;
	int rc;

	if ((rc = ckpt_checkpoint_open(path, 0, &s->c, err)))
		return rc;
	for (size_t i = 0; i < ckpt_checkpoint_file_count(s->c); i++) {
		const struct ckpt_error *fe = ckpt_checkpoint_file_error(s->c, i);

		if (fe) {
			*err = *fe;
			return fe->code ? fe->code : CKPT_ERR_FORMAT;
		}
		if ((rc = check_recognised(s, i, err)))
			return rc;
	}
	for (size_t i = 0; i < ckpt_checkpoint_file_count(s->c); i++) {
		const struct ckpt_file *f = ckpt_checkpoint_file(s->c, i);

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
	load_manifest(s, path);
	if (s->manifest && !(o && (o->flags & CKPT_DIFF_NO_DIGESTS)))
		attach_digests(s);
	return CKPT_OK;
}

static void
close_side(struct side *s)
{
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

static int
match_tensors(struct diff_priv *d, const struct ckpt_diff_options *o,
    struct ckpt_compare_item **items, size_t **slots, size_t *nitems,
    struct ckpt_error *err)
{
	size_t cap = 0;

	for (size_t i = 0; i < d->a.n; i++) {
		struct entry *ea = &d->a.e[i], *eb;
		struct ckpt_diff_tensor *x;
		const char *why;
		char *nb;

		if (!selected(o, ea->name))
			continue;
		d->pub.ntensors_a++;
		if (!(nb = mapped_name(o, ea->name)) || !(x = add_tensor(d))) {
			free(nb);
			return ckpt_error_nomem(err);
		}
		x->name = ea->name;
		eb = find_entry(&d->b, nb);
		free(nb);
		if (!eb) {
			x->where = CKPT_DIFF_ONLY_A;
			x->dtype_a = ea->t->dtype;
			x->ndim_a = ea->t->ndim;
			x->shape_a = ea->t->shape;
			continue;
		}
		eb->matched = true;
		x->name_b = eb->name;
		fill_common(x, ea, eb);
		if (x->shape_changed) {
			x->note = "shape changed: values not compared";
			continue;
		}
		if (digests_say_identical(ea, eb)) {
			x->compared = x->by_digest = x->identical = true;
			continue;
		}
		if ((why = why_unreadable(ea->t)) ||
		    (why = why_unreadable(eb->t))) {
			x->note = keep(d, xfmt("values not compared: "
			    "%s tensor", why));
			continue;
		}
		if (ckpt_dtype_components(ea->t->dtype) !=
		    ckpt_dtype_components(eb->t->dtype)) {
			x->note = "complex against real: values not compared";
			continue;
		}
		if (*nitems == cap) {
			size_t c = cap ? 2 * cap : 64;
			struct ckpt_compare_item *n = reallocarray(*items, c,
			    sizeof(*n));
			size_t *s = n ? reallocarray(*slots, c, sizeof(*s)) :
			    NULL;

			if (n)
				*items = n;
			if (!n || !s)
				return ckpt_error_nomem(err);
			*slots = s;
			cap = c;
		}
		memset(&(*items)[*nitems], 0, sizeof(**items));
		(*items)[*nitems].fa = ea->f;
		(*items)[*nitems].ta = ea->t;
		(*items)[*nitems].fb = eb->f;
		(*items)[*nitems].tb = eb->t;
		(*slots)[(*nitems)++] = d->nt - 1;
	}
	for (size_t i = 0; i < d->b.n; i++) {
		struct entry *eb = &d->b.e[i];
		struct ckpt_diff_tensor *x;

		if (eb->matched)
			d->pub.ntensors_b++;
		if (eb->matched || !selected(o, eb->name))
			continue;
		d->pub.ntensors_b++;
		if (!(x = add_tensor(d)))
			return ckpt_error_nomem(err);
		x->name = eb->name;
		x->where = CKPT_DIFF_ONLY_B;
		x->dtype_b = eb->t->dtype;
		x->ndim_b = eb->t->ndim;
		x->shape_b = eb->t->shape;
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
	return m->path ? CKPT_OK : CKPT_ERR_NOMEM;
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

	if (json_equal(a, b))
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
			if (json_is_object(v) && json_object_get(v, "$tensor"))
				json_object_del(j, k);
			else
				strip_tensors(v, depth + 1);
		}
	} else if (json_is_array(j)) {
		for (i = json_array_size(j); i-- > 0;) {
			v = json_array_get(j, i);
			if (json_is_object(v) && json_object_get(v, "$tensor"))
				json_array_set_new(j, i, json_string("$tensor"));
			else
				strip_tensors(v, depth + 1);
		}
	}
}

static bool
is_pickle(enum ckpt_format f)
{
	return f == CKPT_FORMAT_TORCH_ZIP || f == CKPT_FORMAT_TORCH_LEGACY ||
	    f == CKPT_FORMAT_TORCH_TAR || f == CKPT_FORMAT_PICKLE ||
	    f == CKPT_FORMAT_TORCHSCRIPT;
}

/*
 * The metadata of one kind of file on a side: the tree of the one such
 * file, or {relative path: tree} when there are several.  Store files
 * (the manifest, the summary) are not weights metadata.
 */
static json_t *
side_meta(const struct side *s, bool pickles)
{
	json_t *all = json_object(), *one = NULL;
	size_t n = 0;

	for (size_t i = 0; i < ckpt_checkpoint_file_count(s->c); i++) {
		const struct ckpt_file *f = ckpt_checkpoint_file(s->c, i);
		const char *js;
		json_t *j;

		if (!f || !(js = ckpt_file_metadata_json(f)))
			continue;
		if (pickles ? !is_pickle(ckpt_file_format(f)) :
		    ckpt_file_format(f) != CKPT_FORMAT_SAFETENSORS)
			continue;
		if (!(j = json_loads(js, JSON_DECODE_ANY, NULL)))
			continue;
		if (pickles)
			strip_tensors(j, 0);
		json_object_set(all, ckpt_checkpoint_file_name(s->c, i), j);
		json_decref(one);
		one = j;
		n++;
	}
	if (n == 1) {
		json_decref(all);
		return one;
	}
	json_decref(one);
	if (!n) {
		json_decref(all);
		return NULL;
	}
	return all;
}

static const char *const manifest_keys[] = { "run", "step", "epoch",
    "metrics", "config", "git", "data", "env", "tags", "note", "scope" };

static int
diff_metadata(struct diff_priv *d)
{
	int rc = CKPT_OK;

	if (d->a.manifest && d->b.manifest)
		for (size_t i = 0; !rc && i < CKPT_ARRAY_SIZE(manifest_keys);
		    i++)
			rc = json_diff(d, "manifest", manifest_keys[i],
			    json_object_get(d->a.manifest, manifest_keys[i]),
			    json_object_get(d->b.manifest, manifest_keys[i]),
			    0);
	for (int pickles = 1; !rc && pickles >= 0; pickles--) {
		json_t *a = side_meta(&d->a, pickles);
		json_t *b = side_meta(&d->b, pickles);

		if (a && b)
			rc = json_diff(d, pickles ? "pickle" : "safetensors",
			    "", a, b, 0);
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
    struct ckpt_compare_item *items, const size_t *slots, size_t n,
    struct ckpt_error *err)
{
	struct ckpt_compare_options def = {
	    .version = CKPT_COMPARE_OPTIONS_VERSION };
	int rc;

	rc = ckpt_tensor_compare_many(items, n, o ? &o->cmp : &def,
	    o ? o->threads : 0, o ? o->progress : NULL,
	    o ? o->progress_data : NULL, err);
	if (rc)
		return rc;
	for (size_t i = 0; i < n; i++) {
		struct ckpt_diff_tensor *x = &d->t[slots[i]];

		if (items[i].rc) {
			x->error = keep(d, xfmt("%s%s%s", items[i].err.path,
			    *items[i].err.path ? ": " : "",
			    items[i].err.message));
			if (!x->error)
				return ckpt_error_nomem(err);
			continue;
		}
		x->st = items[i].st;
		x->compared = true;
		x->identical = !x->st.unequal;
		d->pub.bytes_read += items[i].ta->nbytes + items[i].tb->nbytes;
	}
	return CKPT_OK;
}

int
ckpt_diff(const char *a, const char *b, const struct ckpt_diff_options *o,
    struct ckpt_diff **out, struct ckpt_error *err)
{
	struct diff_priv *d = calloc(1, sizeof(*d));
	struct ckpt_compare_item *items = NULL;
	size_t *slots = NULL, nitems = 0;
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
	    (rc = match_tensors(d, o, &items, &slots, &nitems, err)) ||
	    (rc = compare_values(d, o, items, slots, nitems, err)))
		goto out;
	suggest_map(d, o);
	if (diff_metadata(d)) {
		rc = ckpt_error_nomem(err);
		goto out;
	}
	if (d->nt)
		qsort(d->t, d->nt, sizeof(*d->t), cmp_tensor_name);
	d->pub.kind_a = ckpt_checkpoint_kind(d->a.c);
	d->pub.kind_b = ckpt_checkpoint_kind(d->b.c);
	d->pub.tensors = d->t;
	d->pub.ntensors = d->nt;
	d->pub.meta = d->m;
	d->pub.nmeta = d->nm;
out:
	free(items);
	free(slots);
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
