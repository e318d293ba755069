/* SPDX-License-Identifier: MIT */
/*
 * convert.c - ckpt_convert(): PyTorch checkpoints (and safetensors, and
 * directories of either) to safetensors, without executing any pickle.
 *
 * The pickle is read by the strict reader (format/pickle.c), which never
 * resolves or calls a global; a source whose pickle references globals
 * outside the allowlist is refused unless the caller admits them, since
 * torch.load would have executed them.  Choosing the weights:
 *  - --select PREFIX (repeatable): the tensors at PREFIX or under
 *    "PREFIX.", named as they are (or without "PREFIX." when
 *    strip_prefix);
 *  - by default, per file, the first of: the top-level object when it is
 *    a dict of tensors (nested dicts allowed), else its "state_dict",
 *    "model" or "module" member holding one (recursively, so that
 *    {"model": {"module": {...}}} works), with that prefix removed, as
 *    torch.load(f)["state_dict"] would give them.
 * Tensors that are the same view of the same storage (tied weights) are
 * written once, under the first of their names in byte order, and each
 * other name is recorded in __metadata__ as name -> kept name, as
 * safetensors' save_model does.  Distinct views of one storage are
 * distinct tensors and are each written out contiguously.
 *
 * Output is written to a temporary file beside the destination, fsynced
 * and renamed into place (without replacing an existing file unless
 * force), the directory fsynced; sharded output renames every shard
 * first and the index last.
 */
#include "util/internal.h"

#include <fcntl.h>
#include <pthread.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "checkpoint/dcptensor.h"
#include "format/file.h"
#include "store/s3src.h"
#include "store/store.h"
#include "util/util.h"

#define ST_HEADER_MAX	100000000ull	/* as the readers */

#define MAX_VALUES 1000		/* non-tensor values listed in the report */
#define MAX_VALUE_TEXT 200

struct ctensor {
	char *name;			/* output name */
	size_t file;			/* index into conv.files */
	const struct ckpt_tensor *src;	/* or */
	const struct ckpt_dcp_tensor *dcp;
	enum ckpt_dtype dtype;
	unsigned int ndim;
	const uint64_t *shape;
	const char *source;		/* name in the input */
	const char *alias_of;		/* kept name when tied, else NULL */
	uint64_t nbytes;
};

struct cfile {
	char *rel;			/* name inside the input */
	char *path;
	struct ckpt_file *f;
	const char *root;		/* chosen prefix ("" top-level) or
					 * NULL */
	const char *how;
	bool used;
	unsigned char sha256[CKPT_SHA256_BYTES];
};

struct conv {
	const struct ckpt_convert_options *o;
	const char *in;
	struct cfile *files;
	size_t nfiles;
	struct ctensor *t;
	size_t nt, cap;
	json_t *report, *left_out, *values, *roots;
	size_t nvalues;
	char **meta;			/* key/value pairs, owned */
	size_t nmeta;
	struct ckpt_checkpoint *cp;	/* a DCP checkpoint, read by */
	struct ckpt_dcp *dcp;		/* dcptensor.c, with */
	struct ckpt_open_options dcp_open;	/* convert's allowlist and */
	struct ckpt_dcp_options dcp_opts;	/* refusal of unsafe pickles */
	const struct ckpt_dcp_tensor **dt;	/* its tensors */
	size_t ndt;
	uint64_t done_base, total;
	int kick_fd;			/* output being written, or -1 */
	uint64_t kicked;		/* its bytes whose writeback began */
	struct prov {			/* the sources' digests (provenance) */
		struct ckpt_hash_job *jobs;
		size_t nj;
		char (*ph)[2 * CKPT_SHA256_BYTES + 1];	/* placeholders */
		bool ours;		/* __metadata__ holds our value */
		bool pending, threaded;
		pthread_t th;
		int rc;
		struct ckpt_error err;
	} prov;
};

/* ------------------------------------------------------------------ */
/* Choosing the weights                                                */
/* ------------------------------------------------------------------ */

static bool
is_tensor_node(json_t *v)
{
	return json_is_object(v) && json_object_size(v) == 1 &&
	    json_is_string(json_object_get(v, "$tensor"));
}

/* A dict of tensors, nested dicts allowed; at least one tensor. */
static bool
is_tensor_dict(json_t *v, int depth)
{
	const char *k;
	json_t *x;
	size_t ntensors = 0;

	if (!json_is_object(v) || depth > 32 || is_tensor_node(v))
		return false;
	json_object_foreach(v, k, x) {
		if (k[0] == '$')
			return false;
		if (is_tensor_node(x))
			ntensors++;
		else if (is_tensor_dict(x, depth + 1))
			ntensors++;
		else
			return false;
	}
	return ntensors > 0;
}

/* The default root: "" or "state_dict", "model.module", ...; NULL when
 * none.  *how says which rule chose it. */
static char *
discover_root(json_t *top, const char **how)
{
	static const char *const keys[] = { "state_dict", "model",
	    "module" };
	json_t *node = top;
	char *prefix = strdup("");

	if (!prefix)
		return NULL;
	for (int depth = 0; depth < 8; depth++) {
		bool stepped = false;

		/* {"module": {...}} is a wrapper (DDP), not the weights. */
		if (is_tensor_dict(node, 0) && !(json_object_size(node) == 1 &&
		    (json_object_get(node, "state_dict") ||
		    json_object_get(node, "model") ||
		    json_object_get(node, "module")))) {
			*how = depth ? "member" : "top-level";
			return prefix;
		}
		for (size_t i = 0; i < CKPT_ARRAY_SIZE(keys) && !stepped;
		    i++) {
			json_t *m = json_object_get(node, keys[i]);
			char *np;

			if (!json_is_object(m))
				continue;
			if (asprintf(&np, "%s%s%s", prefix, *prefix ? "." : "",
			    keys[i]) < 0)
				break;
			free(prefix);
			prefix = np;
			node = m;
			stepped = true;
		}
		if (!stepped)
			break;
	}
	free(prefix);
	return NULL;
}

static bool
under(const char *name, const char *prefix)
{
	size_t n = strlen(prefix);

	if (!n)
		return true;
	return !strncmp(name, prefix, n) && (!name[n] || name[n] == '.');
}

/* ------------------------------------------------------------------ */
/* The report                                                          */
/* ------------------------------------------------------------------ */

static void
left_out(struct conv *c, const char *file, const char *name,
    const char *reason)
{
	json_array_append_new(c->left_out, json_pack("{s:s, s:s, s:s}",
	    "file", file, "name", name, "reason", reason));
}

static void
add_meta(struct conv *c, const char *k, const char *v)
{
	char **p = reallocarray(c->meta, 2 * (c->nmeta + 1), sizeof(*p));

	if (!p)
		return;
	c->meta = p;
	for (size_t i = 0; i < c->nmeta; i++)
		if (!strcmp(p[2 * i], k))
			return;		/* first one wins, as save_model */
	p[2 * c->nmeta] = strdup(k);
	p[2 * c->nmeta + 1] = strdup(v);
	if (p[2 * c->nmeta] && p[2 * c->nmeta + 1])
		c->nmeta++;
}

static const char *
meta_value(const struct conv *c, const char *k)
{
	for (size_t i = 0; i < c->nmeta; i++)
		if (!strcmp(c->meta[2 * i], k))
			return c->meta[2 * i + 1];
	return NULL;
}

/* Replaces the value of key k (there already). */
static void
set_meta(struct conv *c, const char *k, const char *v)
{
	for (size_t i = 0; i < c->nmeta; i++)
		if (!strcmp(c->meta[2 * i], k)) {
			char *d = strdup(v);

			if (d) {
				free(c->meta[2 * i + 1]);
				c->meta[2 * i + 1] = d;
			}
			return;
		}
}

/* Lists the non-tensor leaves of a pickle's tree; with metadata_json the
 * scalars also become __metadata__ strings. */
static void
walk_values(struct conv *c, json_t *v, const char *path, int depth)
{
	if (is_tensor_node(v))
		return;
	/* {"$bytes": N}, {"$global": ...} and the like are values. */
	if (json_is_object(v) && !(json_object_iter(v) &&
	    json_object_iter_key(json_object_iter(v))[0] == '$') &&
	    depth < 32) {
		const char *k;
		json_t *x;

		json_object_foreach(v, k, x) {
			char *p;

			if (asprintf(&p, "%s%s%s", path, *path ? "." : "", k) <
			    0)
				return;
			walk_values(c, x, p, depth + 1);
			free(p);
		}
		return;
	}
	if (json_is_array(v) && depth < 32) {
		size_t i;
		json_t *x;

		json_array_foreach(v, i, x) {
			char *p;

			if (asprintf(&p, "%s%s%zu", path, *path ? "." : "", i) <
			    0)
				return;
			walk_values(c, x, p, depth + 1);
			free(p);
		}
		return;
	}
	if (c->o && c->o->metadata_json && (json_is_string(v) ||
	    json_is_number(v) || json_is_boolean(v) || json_is_null(v))) {
		char *text = json_is_string(v) ? strdup(json_string_value(v)) :
		    json_dumps(v, JSON_ENCODE_ANY);

		if (text && *path && strcmp(path, "format"))
			add_meta(c, path, text);
		free(text);
	}
	if (c->nvalues++ < MAX_VALUES) {
		char *text = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);

		if (text && strlen(text) > MAX_VALUE_TEXT)
			memcpy(text + MAX_VALUE_TEXT - 3, "...", 4);
		json_array_append_new(c->values, json_pack("{s:s, s:s}",
		    "path", path, "value", text ? text : "?"));
		free(text);
	}
}

/* ------------------------------------------------------------------ */
/* Opening and checking the input                                      */
/* ------------------------------------------------------------------ */

static bool
pickle_format(enum ckpt_format fmt)
{
	return fmt == CKPT_FORMAT_TORCH_ZIP ||
	    fmt == CKPT_FORMAT_TORCH_LEGACY || fmt == CKPT_FORMAT_PICKLE ||
	    fmt == CKPT_FORMAT_TORCH_TAR;
}

/* Refuses a pickle that references globals outside the allowlist. */
static int
check_safety(struct conv *c, struct cfile *cf, struct ckpt_error *err)
{
	char list[512] = "";
	size_t n = 0;

	for (size_t i = 0; i < ckpt_file_global_count(cf->f); i++) {
		bool allowed;
		const char *g = ckpt_file_global(cf->f, i, &allowed);

		if (allowed)
			continue;
		if (n++ < 4) {
			size_t l = strlen(list);

			snprintf(list + l, sizeof(list) - l, "%s%s",
			    l ? ", " : "", g);
		}
	}
	for (size_t i = 0; i < ckpt_file_finding_count(cf->f) && !n; i++) {
		const struct ckpt_finding *x = ckpt_file_finding(cf->f, i);

		if (!strncmp(x->id, "unsafe-", 7)) {
			n++;
			snprintf(list, sizeof(list), "%s", x->message);
		}
	}
	if (!n)
		return CKPT_OK;
	return ckpt_error_set(err, CKPT_ERR_UNSAFE, cf->path, -1,
	    "the pickle references %zu global%s outside the allowlist (%s%s);"
	    " torch.load would execute %s; admit %s with --allow-global if "
	    "you trust the file", n, n == 1 ? "" : "s", list, n > 4 ? ", ..." :
	    "", n == 1 ? "it" : "them", n == 1 ? "it" : "them");
}

static int open_dcp(struct conv *c, const struct ckpt_checkpoint *cp,
    struct ckpt_error *err);

static int
open_input(struct conv *c, struct ckpt_error *err)
{
	struct ckpt_checkpoint *cp;
	struct ckpt_open_options oo = CKPT_OPEN_OPTIONS_INIT;
	int rc;

	/* A local path or an s3:// location (ranged GETs, nothing stored). */
	oo.flags = CKPT_OPEN_NO_PICKLE;
	if ((rc = ckpt_checkpoint_open_location(c->in, &oo, &cp, err)))
		return rc;
	oo.flags = 0;
	if (!strcmp(ckpt_checkpoint_kind(cp), "dcp")) {
		/* Again with its .metadata read: the chunk coverage checks
		 * need it. */
		ckpt_checkpoint_free(cp);
		if ((rc = ckpt_checkpoint_open_location(c->in, &oo, &c->cp,
		    err)))
			return rc;
		return open_dcp(c, c->cp, err);
	}
	c->files = calloc(ckpt_checkpoint_file_count(cp) + 1,
	    sizeof(*c->files));
	if (!c->files) {
		ckpt_checkpoint_free(cp);
		return ckpt_error_nomem(err);
	}
	if (c->o) {
		oo.allow_globals = c->o->allow_globals;
		oo.nallow_globals = c->o->nallow_globals;
	}
	for (size_t i = 0; i < ckpt_checkpoint_file_count(cp) && !rc; i++) {
		const struct ckpt_file *f0 = ckpt_checkpoint_file(cp, i);
		const struct ckpt_error *fe = ckpt_checkpoint_file_error(cp, i);
		struct cfile *cf = &c->files[c->nfiles];
		enum ckpt_format fmt;

		if (!f0) {
			/* One unreadable file among others is reported; a
			 * single-file input fails with its error, and so does
			 * a file that could not be read at all (an I/O error,
			 * a remote service failing): that is no verdict on
			 * its content. */
			if (!ckpt_checkpoint_is_directory(cp) || (fe &&
			    (fe->code == CKPT_ERR_IO ||
			    fe->code == CKPT_ERR_NOMEM))) {
				if (err && fe)
					*err = *fe;
				rc = fe ? fe->code : CKPT_ERR_FORMAT;
				break;
			}
			json_array_append_new(c->left_out, json_pack(
			    "{s:s, s:s, s:s}", "file",
			    ckpt_checkpoint_file_name(cp, i), "name", "",
			    "reason", fe ? fe->message : "unreadable"));
			continue;
		}
		fmt = ckpt_file_format(f0);
		if (fmt != CKPT_FORMAT_SAFETENSORS && !pickle_format(fmt))
			continue;
		cf->rel = strdup(ckpt_checkpoint_file_name(cp, i));
		cf->path = strdup(ckpt_file_path(f0));
		if (!cf->rel || !cf->path) {
			free(cf->rel);
			free(cf->path);
			rc = ckpt_error_nomem(err);
			break;
		}
		c->nfiles++;
		if ((rc = ckpt_file_open_location(cf->path, &oo, &cf->f,
		    err)))
			break;
		if (pickle_format(fmt))
			rc = check_safety(c, cf, err);
	}
	ckpt_checkpoint_free(cp);
	return rc;
}

/* ------------------------------------------------------------------ */
/* Collecting the tensors                                              */
/* ------------------------------------------------------------------ */

static int
add_tensor(struct conv *c, size_t fi, const struct ckpt_tensor *t,
    const char *name, struct ckpt_error *err)
{
	struct ctensor *x;
	const char *why = NULL;

	if (t->kind)
		why = t->kind;
	else if ((unsigned)t->dtype >= CKPT_DTYPE_C32)
		why = "dtype";
	else if (t->numel && !t->span)
		why = "no readable data";
	else if ((ckpt_dtype_bits(t->dtype) % 8) && t->strides &&
	    !t->contiguous)
		why = "strided sub-byte tensor";
	if (why) {
		char r[128];

		if ((unsigned)t->dtype >= CKPT_DTYPE_C32 && !t->kind)
			snprintf(r, sizeof(r), "%s has no safetensors dtype",
			    ckpt_dtype_name(t->dtype));
		else
			snprintf(r, sizeof(r), "%s%s", why, t->kind ?
			    " tensor" : "");
		left_out(c, c->files[fi].rel, t->name, r);
		return CKPT_OK;
	}
	if (c->nt == c->cap) {
		size_t ncap = c->cap ? 2 * c->cap : 64;
		struct ctensor *p = reallocarray(c->t, ncap, sizeof(*p));

		if (!p)
			return ckpt_error_nomem(err);
		c->t = p;
		c->cap = ncap;
	}
	x = &c->t[c->nt];
	memset(x, 0, sizeof(*x));
	if (!(x->name = strdup(name)))
		return ckpt_error_nomem(err);
	x->file = fi;
	x->src = t;
	x->dtype = t->dtype;
	x->ndim = t->ndim;
	x->shape = t->shape;
	x->source = t->name;
	x->nbytes = t->nbytes;
	c->nt++;
	c->files[fi].used = true;
	return CKPT_OK;
}

/* Output name of tensor name under prefix p (stripped or not). */
static const char *
out_name(const char *name, const char *p, bool strip)
{
	size_t n = strlen(p);

	if (!strip || !n || !name[n])
		return name;
	return name + n + 1;
}

/* ------------------------------------------------------------------ */
/* Distributed checkpoints (DCP), consolidated                         */
/* ------------------------------------------------------------------ */

/* dcptensor.c's hook on every chunk archive: the same refusal of
 * globals outside the allowlist as any pickle convert reads. */
static int
dcp_check_archive(void *arg, struct ckpt_file *archive, const char *path,
    struct ckpt_error *err)
{
	struct cfile cf = { .f = archive, .path = (char *)path };

	return check_safety(arg, &cf, err);
}

/* Adds the file rel of the checkpoint to c->files (for provenance). */
static struct cfile *
dcp_file(struct conv *c, const char *root, const char *rel)
{
	struct cfile *cf;

	for (size_t i = 0; i < c->nfiles; i++)
		if (!strcmp(c->files[i].rel, rel))
			return &c->files[i];
	cf = reallocarray(c->files, c->nfiles + 1, sizeof(*cf));
	if (!cf)
		return NULL;
	c->files = cf;
	cf = &c->files[c->nfiles];
	memset(cf, 0, sizeof(*cf));
	cf->rel = strdup(rel);
	cf->path = ckpt_join(root, rel);
	if (!cf->rel || !cf->path) {
		free(cf->rel);
		free(cf->path);
		return NULL;
	}
	cf->used = true;
	c->nfiles++;
	return cf;
}

/* The FQNs as a tree of dicts, for the same weight discovery as pickles. */
static void
tree_put(json_t *tree, const char *fqn, json_t *leaf)
{
	char *p = strdup(fqn), *s, *dot;
	json_t *node = tree;

	for (s = p; p && (dot = strchr(s, '.')); s = dot + 1) {
		json_t *n;

		*dot = '\0';
		n = json_object_get(node, s);
		if (!n) {
			n = json_object();
			json_object_set_new(node, s, n);
		}
		if (!json_is_object(n) || is_tensor_node(n)) {
			json_decref(leaf);
			free(p);
			return;		/* "a" and "a.b": not a tree */
		}
		node = n;
	}
	if (p && !json_object_get(node, s))
		json_object_set_new(node, s, leaf);
	else
		json_decref(leaf);
	free(p);
}

/*
 * The tensors of a DCP checkpoint, each assembled from its chunks by
 * dcptensor.c (boxes, storage ranges and archives checked before any
 * output is written); its non-tensor (bytes) items are listed as values.
 */
static int
open_dcp(struct conv *c, const struct ckpt_checkpoint *cp,
    struct ckpt_error *err)
{
	const char *root = ckpt_checkpoint_path(cp), *fqn, *mname = NULL;
	json_t *meta, *sdm, *v, *tree;
	struct cfile *cf;
	char *r = NULL;
	const char *how = NULL;
	int rc = CKPT_OK;

	if (c->o) {
		c->dcp_open.allow_globals = c->o->allow_globals;
		c->dcp_open.nallow_globals = c->o->nallow_globals;
	}
	c->dcp_opts.open = &c->dcp_open;
	c->dcp_opts.check = dcp_check_archive;
	c->dcp_opts.arg = c;
	for (size_t i = 0; i < ckpt_checkpoint_finding_count(cp); i++) {
		const struct ckpt_finding *x = ckpt_checkpoint_finding(cp, i);

		if (x->severity == CKPT_SEV_ERROR)
			return ckpt_error_set(err, CKPT_ERR_FORMAT, x->path ?
			    x->path : root, x->offset, "%s", x->message);
	}
	for (size_t i = 0; i < ckpt_checkpoint_file_count(cp); i++) {
		const struct ckpt_file *f = ckpt_checkpoint_file(cp, i);

		if (f && ckpt_file_format(f) == CKPT_FORMAT_DCP_METADATA)
			mname = ckpt_checkpoint_file_name(cp, i);
	}
	if (!mname)
		return ckpt_error_set(err, CKPT_ERR_FORMAT, root, -1,
		    "a distributed checkpoint without a readable .metadata");
	if (!(cf = dcp_file(c, root, mname)))
		return ckpt_error_nomem(err);
	if ((rc = ckpt_file_open_location(cf->path, &c->dcp_open, &cf->f,
	    err)) ||
	    (rc = check_safety(c, cf, err)) ||
	    (rc = ckpt_dcp_open(cp, mname, &c->dcp_opts, &c->dcp, err)))
		return rc;
	meta = json_loads(ckpt_file_metadata_json(cf->f) ?
	    ckpt_file_metadata_json(cf->f) : "{}", 0, NULL);
	sdm = json_object_get(meta, "state_dict_metadata");
	tree = json_object();
	c->dt = calloc(json_object_size(sdm) + 1, sizeof(*c->dt));
	if (!meta || !tree || !c->dt) {
		json_decref(meta);
		json_decref(tree);
		return ckpt_error_nomem(err);
	}
	json_object_foreach(sdm, fqn, v) {
		const char *type =
		    json_string_value(json_object_get(v, "type"));
		const char *dn = json_string_value(json_object_get(v, "dtype"));
		const struct ckpt_dcp_tensor *t;
		enum ckpt_dtype dt;

		if (!type || strcmp(type, "tensor")) {
			tree_put(tree, fqn, json_pack("{s:i}", "$bytes", 0));
			continue;
		}
		if (!dn || ckpt_dtype_from_name(dn, &dt)) {
			left_out(c, mname, fqn,
			    "unreadable metadata or a dtype "
			    "safetensors lacks");
			continue;
		}
		if ((rc = ckpt_dcp_tensor(c->dcp, fqn, &t, err))) {
			if (rc != CKPT_ERR_UNSUPPORTED)
				break;
			left_out(c, mname, fqn, err->message);
			rc = CKPT_OK;
			continue;
		}
		/* its shards, for the provenance */
		for (size_t k = 0; k < t->nchunks && !rc; k++)
			if (!dcp_file(c, root, t->chunks[k].rel))
				rc = ckpt_error_nomem(err);
		if (rc)
			break;
		c->dt[c->ndt++] = t;
		tree_put(tree, fqn, json_pack("{s:s}", "$tensor", fqn));
	}
	if (!rc) {
		struct ctensor *x;

		r = discover_root(tree, &how);
		for (size_t i = 0; i < c->ndt && !rc; i++) {
			const struct ckpt_dcp_tensor *d = c->dt[i];
			const char *p = NULL;
			const struct ckpt_convert_options *o = c->o;

			if (o && o->nselect) {
				for (size_t k = 0; k < o->nselect && !p; k++)
					if (under(d->name, o->select[k]))
						p = o->select[k];
			} else if (r && under(d->name, r)) {
				p = r;
			}
			if (!p) {
				left_out(c, mname, d->name, o &&
				    o->nselect ? "not selected" : r ?
				    "outside the weights" : "no weights found");
				continue;
			}
			if (c->nt == c->cap) {
				size_t ncap = c->cap ? 2 * c->cap : 64;

				x = reallocarray(c->t, ncap, sizeof(*x));
				if (!x) {
					rc = ckpt_error_nomem(err);
					break;
				}
				c->t = x;
				c->cap = ncap;
			}
			x = &c->t[c->nt];
			memset(x, 0, sizeof(*x));
			x->name = strdup(out_name(d->name, p, !(o && o->nselect)
			    || o->strip_prefix));
			if (!x->name) {
				rc = ckpt_error_nomem(err);
				break;
			}
			x->dcp = d;
			x->dtype = d->t.dtype;
			x->ndim = d->t.ndim;
			x->shape = d->shape;
			x->source = d->name;
			x->nbytes = d->t.nbytes;
			c->nt++;
		}
		json_array_append_new(c->roots, json_pack("{s:s, s:s?, s:s}",
		    "file", mname, "root", r, "how", c->o &&
		    c->o->nselect ? "select" : r ? how : "none"));
		walk_values(c, tree, "", 0);
	}
	free(r);
	json_decref(tree);
	json_decref(meta);
	return rc;
}

static int
choose_file(struct conv *c, size_t fi, struct ckpt_error *err)
{
	struct cfile *cf = &c->files[fi];
	const struct ckpt_convert_options *o = c->o;
	json_t *top = NULL;
	char *root = NULL;
	int rc = CKPT_OK;

	if (ckpt_file_metadata_json(cf->f) &&
	    ckpt_file_format(cf->f) != CKPT_FORMAT_SAFETENSORS)
		top = json_loads(ckpt_file_metadata_json(cf->f), 0, NULL);
	if (o && o->nselect) {
		cf->how = "select";
	} else if (ckpt_file_format(cf->f) == CKPT_FORMAT_SAFETENSORS) {
		root = strdup("");
		cf->how = "top-level";
	} else if (top) {
		root = discover_root(top, &cf->how);
	}
	for (size_t i = 0; i < ckpt_file_tensor_count(cf->f) && !rc; i++) {
		const struct ckpt_tensor *t = ckpt_file_tensor(cf->f, i);
		const char *p = NULL;

		if (o && o->nselect) {
			for (size_t k = 0; k < o->nselect && !p; k++)
				if (under(t->name, o->select[k]))
					p = o->select[k];
			if (p)
				rc = add_tensor(c, fi, t, out_name(t->name, p,
				    o->strip_prefix), err);
		} else if (root && under(t->name, root)) {
			rc = add_tensor(c, fi, t, out_name(t->name, root,
			    true), err);
		} else {
			left_out(c, cf->rel, t->name, root ? "outside the "
			    "weights" : "no weights found in this file");
		}
		if (!p && o && o->nselect)
			left_out(c, cf->rel, t->name, "not selected");
	}
	if (!rc) {
		json_t *r = json_pack("{s:s, s:s?, s:s?}", "file", cf->rel,
		    "root", root, "how", cf->how);

		if (!(o && o->nselect) && !root)
			json_object_set_new(r, "how", json_string("none"));
		json_array_append_new(c->roots, r);
		if (top && cf->used)
			walk_values(c, top, "", 0);
	}
	if (!cf->used && cf->how && !strcmp(cf->how, "select"))
		cf->how = NULL;
	free(root);
	json_decref(top);
	return rc;
}

static int
cmp_ct_name(const void *a, const void *b)
{
	return strcmp(((const struct ctensor *)a)->name,
	    ((const struct ctensor *)b)->name);
}

/* Same file, same bytes, same view: one tensor under several names. */
static bool
same_view(const struct ctensor *a, const struct ctensor *b)
{
	const struct ckpt_tensor *x = a->src, *y = b->src;

	if (!x || !y || a->file != b->file || x->dtype != y->dtype ||
	    x->ndim != y->ndim || x->offset != y->offset ||
	    x->span != y->span || !x->storage != !y->storage || (x->storage &&
	    strcmp(x->storage, y->storage)) || !x->numel)
		return false;
	for (unsigned d = 0; d < x->ndim; d++) {
		int64_t sx = x->strides ? x->strides[d] : -1;
		int64_t sy = y->strides ? y->strides[d] : -1;

		if (x->shape[d] != y->shape[d])
			return false;
		if (x->strides && y->strides && sx != sy)
			return false;
	}
	return x->contiguous == y->contiguous || (!x->strides && !y->strides);
}

static int
find_aliases(struct conv *c, struct ckpt_error *err)
{
	/* Names in byte order, so the kept name is the first of a group,
	 * as save_model's sorted(...)[0]. */
	qsort(c->t, c->nt, sizeof(*c->t), cmp_ct_name);
	for (size_t i = 1; i < c->nt; i++)
		if (!strcmp(c->t[i].name, c->t[i - 1].name))
			return ckpt_error_set(err, CKPT_ERR_INVALID, c->in, -1,
			    "tensor '%s' is found twice (in %s and %s); choose "
			    "with --select", c->t[i].name,
			    c->files[c->t[i - 1].file].rel,
			    c->files[c->t[i].file].rel);
	for (size_t i = 0; i < c->nt; i++) {
		if (c->t[i].alias_of)
			continue;
		for (size_t j = i + 1; j < c->nt; j++)
			if (!c->t[j].alias_of && same_view(&c->t[i], &c->t[j]))
				c->t[j].alias_of = c->t[i].name;
	}
	return CKPT_OK;
}

/* ------------------------------------------------------------------ */
/* Writing                                                             */
/* ------------------------------------------------------------------ */

/* ------------------------------------------------------------------ */
/* Provenance                                                          */
/* ------------------------------------------------------------------ */

/*
 * The sources' SHA-256 go into each output's __metadata__, at its start,
 * yet the digest of a 1 GiB source is a one-core sequential chain about
 * as long as the whole copy.  So it runs on a thread of its own while
 * the outputs are written: each output is written with a placeholder of
 * the same length in the digest's place (random, so that no source can
 * hold it), then, once the digests are known, its header is patched in
 * place before the fsync and the rename.  A source that cannot be read
 * whole fails the conversion as before, and nothing is committed.
 */
static void *
prov_main(void *arg)
{
	struct prov *p = arg;

	/* A remote source is read a second time here, by streaming GETs. */
	p->rc = ckpt_hash_locations(p->jobs, p->nj, 0, NULL, NULL, &p->err);
	return NULL;
}

static int
prov_start(struct conv *c, struct ckpt_error *err)
{
	struct prov *p = &c->prov;
	json_t *m = json_object();
	unsigned char r[CKPT_SHA256_BYTES];
	const char *v;
	char *text;

	p->jobs = calloc(c->nfiles + 1, sizeof(*p->jobs));
	p->ph = calloc(c->nfiles + 1, sizeof(*p->ph));
	if (!p->jobs || !p->ph || !m) {
		json_decref(m);
		return ckpt_error_nomem(err);
	}
	for (size_t i = 0; i < c->nfiles; i++) {
		char hex[2 * CKPT_SHA256_BYTES + 8];

		if (!c->files[i].used)
			continue;
		if (getrandom(r, sizeof(r), 0) != (ssize_t)sizeof(r)) {
			json_decref(m);
			return ckpt_error_errno(err, NULL, "cannot get random "
			    "bytes");
		}
		ckpt_hex(r, sizeof(r), p->ph[p->nj]);
		memcpy(hex, "sha256:", 7);
		memcpy(hex + 7, p->ph[p->nj], sizeof(p->ph[0]));
		json_object_set_new(m, c->files[i].rel, json_string(hex));
		p->jobs[p->nj].path = c->files[i].path;
		p->jobs[p->nj].whole = true;
		p->nj++;
	}
	text = json_dumps(m, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(m);
	if (!text)
		return ckpt_error_nomem(err);
	add_meta(c, "ckpt.source_sha256", text);
	/* The input's own metadata may have the key first (first wins). */
	v = meta_value(c, "ckpt.source_sha256");
	p->ours = v && !strcmp(v, text);
	free(text);
	ckpt_error_clear(&p->err);
	p->pending = true;
	p->threaded = !pthread_create(&p->th, NULL, prov_main, p);
	return CKPT_OK;
}

/* Waits for the digests; records them in the report and __metadata__. */
static int
prov_finish(struct conv *c, struct ckpt_error *err)
{
	struct prov *p = &c->prov;
	json_t *m;
	size_t nj = 0;
	char *text;

	if (!p->pending)
		return p->rc;
	p->pending = false;
	if (p->threaded)
		pthread_join(p->th, NULL);
	else
		prov_main(p);
	if (p->rc) {
		if (err)
			*err = p->err;
		return p->rc;
	}
	if (!(m = json_object()))
		return p->rc = ckpt_error_nomem(err);
	for (size_t i = 0; i < c->nfiles; i++) {
		char hex[2 * CKPT_SHA256_BYTES + 8];

		if (!c->files[i].used)
			continue;
		memcpy(c->files[i].sha256, p->jobs[nj].sha256,
		    CKPT_SHA256_BYTES);
		memcpy(hex, "sha256:", 7);
		ckpt_hex(p->jobs[nj++].sha256, CKPT_SHA256_BYTES, hex + 7);
		json_object_set_new(m, c->files[i].rel, json_string(hex));
	}
	text = json_dumps(m, JSON_COMPACT | JSON_SORT_KEYS);
	json_object_set_new(c->report, "sources", m);
	if (!text)
		return p->rc = ckpt_error_nomem(err);
	if (p->ours)
		set_meta(c, "ckpt.source_sha256", text);
	free(text);
	return CKPT_OK;
}

/*
 * Puts the digests in the place of their placeholders in the header of
 * the safetensors file just written to fd (each placeholder is there
 * exactly once: the header is ours, the placeholders random).
 */
/* n bytes at offset off of fd, or an error naming path. */
static int
read_header_at(int fd, const char *path, void *buf, size_t n, uint64_t off,
    struct ckpt_error *err)
{
	size_t got = 0;

	while (got < n) {
		ssize_t r = pread(fd, (char *)buf + got, n - got,
		    (off_t)(off + got));

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return r ? ckpt_error_errno(err, path, "cannot read at "
			    "byte %llu", (unsigned long long)(off + got)) :
			    ckpt_error_set(err, CKPT_ERR_IO, path, (int64_t)(
			    off + got), "file ended at byte %llu",
			    (unsigned long long)(off + got));
		got += (size_t)r;
	}
	return CKPT_OK;
}

/*
 * Puts the digests in the place of their placeholders in the header of
 * the safetensors file just written at path, our temporary file (each
 * placeholder is there exactly once: the header is ours, the
 * placeholders random).  The caller's fsync covers the change.
 */
static int
prov_patch(struct conv *c, const char *path, struct ckpt_error *err)
{
	struct prov *p = &c->prov;
	unsigned char len8[8];
	uint64_t hlen = 0;
	char *h;
	int fd, rc;

	if (!p->ours || !p->nj)
		return CKPT_OK;
	if ((fd = open(path, O_RDWR | O_CLOEXEC | O_NOFOLLOW)) < 0)
		return ckpt_error_errno(err, path, "cannot open");
	if ((rc = read_header_at(fd, path, len8, sizeof(len8), 0, err))) {
		close(fd);
		return rc;
	}
	for (int i = 7; i >= 0; i--)
		hlen = hlen << 8 | len8[i];
	if (hlen > ST_HEADER_MAX || !(h = malloc((size_t)hlen + 1))) {
		close(fd);
		return hlen > ST_HEADER_MAX ? ckpt_error_set(err,
		    CKPT_ERR_FORMAT, path, 0, "header of %llu bytes",
		    (unsigned long long)hlen) : ckpt_error_nomem(err);
	}
	rc = read_header_at(fd, path, h, (size_t)hlen, 8, err);
	for (size_t j = 0; !rc && j < p->nj; j++) {
		const size_t n = 2 * CKPT_SHA256_BYTES;
		char *at = memmem(h, (size_t)hlen, p->ph[j], n);
		char hex[2 * CKPT_SHA256_BYTES + 1];

		if (!at || memmem(at + 1, (size_t)hlen - (size_t)(at + 1 - h),
		    p->ph[j], n)) {
			rc = ckpt_error_set(err, CKPT_ERR_INVALID, path, 8,
			    "the source digest's place in the header is not "
			    "unique");
			break;
		}
		ckpt_hex(p->jobs[j].sha256, CKPT_SHA256_BYTES, hex);
		memcpy(at, hex, n);
	}
	if (!rc && lseek(fd, 8, SEEK_SET) != 8)
		rc = ckpt_error_errno(err, path, "cannot seek");
	if (!rc)
		rc = ckpt_write_all(fd, h, (size_t)hlen, path, err);
	if (close(fd) && !rc)
		rc = ckpt_error_errno(err, path, "cannot close");
	free(h);
	return rc;
}

struct fd_sink {
	int fd;
	const char *path;
	struct ckpt_dwrite *dw;	/* O_DIRECT writes, or NULL */
};

static int
fd_write(void *arg, const void *buf, size_t len, struct ckpt_error *err)
{
	struct fd_sink *s = arg;

	return ckpt_write_all(s->fd, buf, len, s->path, err);
}

#define KICK_STEP	((uint64_t)32 << 20)

static void
on_progress(uint64_t done, uint64_t total, void *data)
{
	struct conv *c = data;

	/* The disk starts on the output as it is written, so that the
	 * fsync of the commit finds little left (a hint: the fsync reports
	 * any error). */
	if (c->kick_fd >= 0 && done >= c->kicked + KICK_STEP) {
		(void)sync_file_range(c->kick_fd, 0, 0, SYNC_FILE_RANGE_WRITE);
		c->kicked = done;
	}

	if (c->o && c->o->progress)
		c->o->progress(c->done_base + done, c->total,
		    c->o->progress_data);
}

int
ckpt_commit_file(const char *tmp, const char *path, bool force,
    struct ckpt_error *err)
{
	char *dir;
	int rc;

	if (force) {
		if (rename(tmp, path))
			return ckpt_error_errno(err, path,
			    "cannot rename %s to", tmp);
	} else if (renameat2(AT_FDCWD, tmp, AT_FDCWD, path,
	    RENAME_NOREPLACE)) {
		if (errno == EEXIST)
			return ckpt_error_set(err, CKPT_ERR_EXISTS, path, -1,
			    "exists already (use --force to replace it)");
		/* No RENAME_NOREPLACE here: link(2) never replaces. */
		if (link(tmp, path))
			return errno == EEXIST ? ckpt_error_set(err,
			    CKPT_ERR_EXISTS, path, -1, "exists already (use "
			    "--force to replace it)") : ckpt_error_errno(err,
			    path, "cannot create");
		unlink(tmp);
	}
	dir = ckpt_dirname(path);
	if (!dir)
		return ckpt_error_nomem(err);
	rc = ckpt_fsync_dir(dir, err);
	free(dir);
	return rc;
}

/* Writes one safetensors file at path, atomically. */
static int
write_one(struct conv *c, const char *path, const struct ckpt_st_tensor *t,
    size_t n, uint64_t *size, struct ckpt_error *err)
{
	struct ckpt_st_write_options wo = {
		.version = CKPT_ST_WRITE_OPTIONS_VERSION,
		.metadata = (const char *const *)c->meta,
		.nmetadata = c->nmeta,
		.progress = on_progress,
		.progress_data = c,
	};
	struct fd_sink s;
	char *tmp;
	int rc;

	if ((s.fd = ckpt_tempfile(path, 0644, &tmp, err)) < 0)
		return s.fd;
	s.path = tmp;
	s.dw = NULL;
	/*
	 * Where the filesystem can, the output goes to the disk with
	 * O_DIRECT (util/dwrite.c): a buffered copy (copy_file_range
	 * included) costs a core about as much as the disk's time, which
	 * the hashing of the source needs.  Else as cp: contiguous tensors
	 * file to file in the kernel, the writeback started as we go.
	 */
	if (ckpt_dwrite_start(s.fd, tmp, &s.dw, NULL)) {
		wo.sink_is_fd = true;
		wo.fd = s.fd;
		c->kick_fd = s.fd;
		c->kicked = 0;
	}
	rc = s.dw ? ckpt_safetensors_write_direct(t, n, &wo, s.dw, size, err) :
	    ckpt_safetensors_write(t, n, &wo, fd_write, &s, size, err);
	c->kick_fd = -1;
	if (s.dw) {
		int drc = ckpt_dwrite_finish(s.dw, !rc, rc ? NULL : err);

		if (!rc)
			rc = drc;
	}
	if (!rc && c->prov.pending) {
		/* The disk starts on the data while the digests finish. */
		(void)sync_file_range(s.fd, 0, 0, SYNC_FILE_RANGE_WRITE);
		if (!(rc = prov_finish(c, err)))
			rc = prov_patch(c, tmp, err);
	}
	if (!rc && fsync(s.fd))
		rc = ckpt_error_errno(err, tmp, "cannot fsync");
	if (close(s.fd) && !rc)
		rc = ckpt_error_errno(err, tmp, "cannot close");
	if (!rc)
		rc = ckpt_commit_file(tmp, path, c->o && c->o->force, err);
	if (rc)
		unlink(tmp);
	free(tmp);
	return rc;
}

static void
fill_st(const struct conv *c, const struct ctensor *x,
    struct ckpt_st_tensor *st)
{
	memset(st, 0, sizeof(*st));
	st->name = x->name;
	st->dtype = x->dtype;
	st->ndim = x->ndim;
	st->shape = x->shape;
	if (x->dcp) {
		st->read = ckpt_dcp_tensor_read;
		st->read_arg = (void *)x->dcp;
		return;
	}
	st->file = c->files[x->file].f;
	st->src = x->src;
}

/* "dir/model.safetensors" -> "dir/model-00002-of-00005.safetensors" */
static char *
shard_path(const char *out, size_t k, size_t n)
{
	size_t len = strlen(out);
	char *p;

	if (len > 12 && !strcmp(out + len - 12, ".safetensors"))
		len -= 12;
	if (asprintf(&p, "%.*s-%05zu-of-%05zu.safetensors", (int)len, out,
	    k, n) < 0)
		return NULL;
	return p;
}

static const char *
base(const char *p)
{
	const char *s = strrchr(p, '/');

	return s ? s + 1 : p;
}

static int
refuse_existing(const char *path, bool force, struct ckpt_error *err)
{
	struct stat st;

	if (!force && !lstat(path, &st))
		return ckpt_error_set(err, CKPT_ERR_EXISTS, path, -1,
		    "exists already (use --force to replace it)");
	return CKPT_OK;
}

static int
write_outputs(struct conv *c, const char *out, struct ckpt_error *err)
{
	const struct ckpt_convert_options *o = c->o;
	uint64_t limit = o && o->shard_size ? o->shard_size : UINT64_MAX;
	struct ckpt_st_tensor *st;
	size_t *shard_of, nshards = 0, n = 0;
	uint64_t cur = 0, total = 0;
	json_t *outs = json_array();
	bool force = o && o->force;
	int rc = CKPT_OK;

	st = calloc(c->nt + 1, sizeof(*st));
	shard_of = calloc(c->nt + 1, sizeof(*shard_of));
	if (!st || !shard_of || !outs) {
		free(st);
		free(shard_of);
		json_decref(outs);
		return ckpt_error_nomem(err);
	}
	/*
	 * Shards as huggingface_hub's split_state_dict_into_shards: in
	 * source order, a new shard when the next tensor would overflow a
	 * non-empty one; a tensor larger than the limit has one to itself.
	 */
	for (size_t i = 0; i < c->nt; i++) {
		if (c->t[i].alias_of)
			continue;
		if (!nshards || (cur && cur + c->t[i].nbytes > limit)) {
			nshards++;
			cur = 0;
		}
		shard_of[i] = nshards - 1;
		cur += c->t[i].nbytes;
		c->total += c->t[i].nbytes;
	}
	if (!nshards)
		nshards = 1;
	for (size_t k = 0; k < nshards && !rc; k++) {
		char *p = nshards > 1 ? shard_path(out, k + 1, nshards) :
		    strdup(out);

		rc = p ? refuse_existing(p, force, err) : ckpt_error_nomem(err);
		free(p);
	}
	if (!rc && nshards > 1) {
		char *idx;

		if (asprintf(&idx, "%s.index.json", out) < 0)
			rc = ckpt_error_nomem(err);
		else
			rc = refuse_existing(idx, force, err);
		free(idx);
	}
	for (size_t k = 0; k < nshards && !rc; k++) {
		char *p = nshards > 1 ? shard_path(out, k + 1, nshards) :
		    strdup(out);
		uint64_t size = 0, data = 0;

		n = 0;
		for (size_t i = 0; i < c->nt; i++)
			if (!c->t[i].alias_of && shard_of[i] == k) {
				fill_st(c, &c->t[i], &st[n++]);
				data += c->t[i].nbytes;
			}
		if (!p) {
			rc = ckpt_error_nomem(err);
			break;
		}
		rc = write_one(c, p, st, n, &size, err);
		c->done_base += data;
		total += data;
		if (!rc)
			json_array_append_new(outs, json_pack("{s:s, s:I, s:I}",
			    "path", p, "size", (json_int_t)size, "tensors",
			    (json_int_t)n));
		free(p);
	}
	if (!rc && nshards > 1) {
		/* model.safetensors.index.json, as transformers writes it. */
		json_t *idx = json_pack("{s:{s:I}, s:{}}", "metadata",
		    "total_size", (json_int_t)total, "weight_map");
		json_t *wm = json_object_get(idx, "weight_map");
		char *text, *ipath = NULL;

		for (size_t i = 0; i < c->nt; i++) {
			char *p;

			if (c->t[i].alias_of)
				continue;
			p = shard_path(out, shard_of[i] + 1, nshards);
			if (p)
				json_object_set_new(wm, c->t[i].name,
				    json_string(base(p)));
			free(p);
		}
		text = json_dumps(idx, JSON_INDENT(2) | JSON_SORT_KEYS);
		json_decref(idx);
		if (!text || asprintf(&ipath, "%s.index.json", out) < 0) {
			rc = ckpt_error_nomem(err);
		} else {
			size_t l = strlen(text);

			text[l] = '\n';	/* json.dump(...) + "\n" */
			rc = refuse_existing(ipath, force, err);
			if (!rc)
				rc = ckpt_write_file_atomic(ipath, text, l + 1,
				    err);
			text[l] = '\0';
		}
		if (!rc)
			json_object_set_new(c->report, "index",
			    json_string(ipath));
		free(ipath);
		free(text);
	}
	json_object_set_new(c->report, "outputs", outs);
	free(st);
	free(shard_of);
	return rc;
}

/* ------------------------------------------------------------------ */
/* The whole                                                           */
/* ------------------------------------------------------------------ */

static void
conv_release(struct conv *c)
{
	for (size_t i = 0; i < c->nfiles; i++) {
		ckpt_file_free(c->files[i].f);
		free(c->files[i].rel);
		free(c->files[i].path);
	}
	free(c->files);
	for (size_t i = 0; i < c->nt; i++)
		free(c->t[i].name);
	free(c->t);
	free(c->dt);
	ckpt_dcp_free(c->dcp);
	ckpt_checkpoint_free(c->cp);
	for (size_t i = 0; i < 2 * c->nmeta; i++)
		free(c->meta[i]);
	free(c->meta);
	free(c->prov.jobs);
	free(c->prov.ph);
	json_decref(c->report);
}

static json_t *
tensors_json(struct conv *c)
{
	json_t *a = json_array(), *al = json_object();

	for (size_t i = 0; i < c->nt; i++) {
		const struct ctensor *x = &c->t[i];
		const struct ckpt_tensor *t = x->src;
		json_t *shape = json_array();

		for (unsigned d = 0; d < x->ndim; d++)
			json_array_append_new(shape, json_integer(
			    (json_int_t)x->shape[d]));
		if (c->t[i].alias_of) {
			json_object_set_new(al, c->t[i].name,
			    json_string(c->t[i].alias_of));
			json_decref(shape);
			continue;
		}
		json_array_append_new(a, json_pack("{s:s, s:s, s:o, s:I, s:s,"
		    " s:s, s:b, s:b}", "name", x->name, "dtype",
		    ckpt_dtype_name(x->dtype), "shape", shape, "bytes",
		    (json_int_t)x->nbytes, "source", x->source, "file",
		    c->files[x->file].rel, "view", t && t->strides &&
		    !t->contiguous, "byteswapped", t && t->big_endian &&
		    ckpt_dtype_bits(t->dtype) > 8));
	}
	json_object_set_new(c->report, "aliases", al);
	return a;
}

int
ckpt_convert(const char *in, const char *out,
    const struct ckpt_convert_options *o, char **report, struct ckpt_error *err)
{
	struct conv c;
	int rc;

	if (o && (rc = ckpt_options_check(o->version,
	    CKPT_CONVERT_OPTIONS_VERSION, "ckpt_convert_options", err)))
		return rc;
	if (report)
		*report = NULL;
	memset(&c, 0, sizeof(c));
	c.kick_fd = -1;
	c.o = o;
	c.in = in;
	c.report = json_object();
	c.left_out = json_array();
	c.values = json_array();
	c.roots = json_array();
	if (!c.report || !c.left_out || !c.values || !c.roots) {
		json_decref(c.left_out);
		json_decref(c.values);
		json_decref(c.roots);
		conv_release(&c);
		return ckpt_error_nomem(err);
	}
	json_object_set_new(c.report, "input", json_string(in));
	json_object_set_new(c.report, "left_out", c.left_out);
	json_object_set_new(c.report, "values", c.values);
	json_object_set_new(c.report, "roots", c.roots);
	add_meta(&c, "format", "pt");
	rc = open_input(&c, err);
	for (size_t i = 0; i < c.nfiles && !rc && !c.dt; i++)
		rc = choose_file(&c, i, err);
	if (!rc && !c.nt) {
		if (o && o->nselect)
			rc = ckpt_error_set(err, CKPT_ERR_INVALID, in, -1,
			    "no tensor under the prefix%s given with "
			    "--select", o->nselect > 1 ? "es" : "");
		else
			rc = ckpt_error_set(err, CKPT_ERR_INVALID, in, -1,
			    "no weights found where expected (a top-level "
			    "dict of tensors, or a state_dict, model or "
			    "module member holding one); choose with "
			    "--select PREFIX");
	}
	if (!rc)
		rc = find_aliases(&c, err);
	for (size_t i = 0; i < c.nt && !rc; i++)
		if (c.t[i].alias_of)
			add_meta(&c, c.t[i].name, c.t[i].alias_of);
	if (!rc)
		json_object_set_new(c.report, "tensors", tensors_json(&c));
	json_object_set_new(c.report, "values_total",
	    json_integer((json_int_t)c.nvalues));
	if (!rc)
		rc = prov_start(&c, err);
	if (!rc && o && o->source_name)
		add_meta(&c, "ckpt.source", o->source_name);
	if (!rc)
		rc = write_outputs(&c, out, err);
	/* Joined whatever happened (a failure before the first output). */
	if (c.prov.pending && prov_finish(&c, rc ? NULL : err) && !rc)
		rc = c.prov.rc;
	if (report && (!rc || rc == CKPT_ERR_UNSAFE)) {
		json_t *m = json_object();

		for (size_t i = 0; i < c.nmeta; i++)
			json_object_set_new(m, c.meta[2 * i],
			    json_string(c.meta[2 * i + 1]));
		json_object_set_new(c.report, "metadata", m);
		*report = json_dumps(c.report, JSON_SORT_KEYS | JSON_INDENT(2));
	}
	conv_release(&c);
	return rc;
}
