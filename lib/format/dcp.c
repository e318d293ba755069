/* SPDX-License-Identifier: MIT */
/*
 * dcp.c - PyTorch Distributed Checkpoint metadata (.metadata): a protocol-4
 * pickle of dataclasses (torch.distributed.checkpoint.metadata).  torch
 * reads it with plain pickle.load; ckpt reads it with the same restricted
 * reader as data.pkl, extended by exactly the DCP classes, and turns it
 * into the JSON documented at ckpt_file_metadata_json() so that the
 * checkpoint reader can check chunk coverage and the .distcp shards.
 * Tensor data lives in the shards, so each logical tensor is listed with
 * offset and span 0 and kind "dcp".
 */
#include "util/internal.h"

#include <jansson.h>

#include "format/pickle.h"

#define MAX_METADATA_BYTES ((uint64_t)1 << 30)

static bool
cls_is(const struct pk_node *o, const char *name)
{
	size_t n = strlen(name), l;

	if (!o || o->kind != PK_OBJECT || !o->allowed || !o->cls ||
	    o->cls->kind != PK_GLOBAL)
		return false;
	l = strlen(o->cls->s);
	return l > n && o->cls->s[l - n - 1] == '.' &&
	    !strcmp(o->cls->s + l - n, name);
}

static int
bad(struct ckpt_file *f, const struct pk_node *n, const char *what)
{
	return ckpt_file_add_finding(f, "dcp-malformed", CKPT_SEV_ERROR, NULL,
	    n ? n->pos : -1, ".metadata: %s", what);
}

/* A tuple of non-negative ints (torch.Size pickles as its tuple). */
static json_t *
int_list(const struct pk_node *t, uint64_t *out, unsigned *nd)
{
	json_t *a;

	if (!t || (t->kind != PK_TUPLE && t->kind != PK_LIST) ||
	    t->n > CKPT_MAX_DIMS)
		return NULL;
	a = json_array();
	for (size_t i = 0; a && i < t->n; i++) {
		const struct pk_node *v = t->items[i];

		if (v->kind != PK_INT || v->i < 0) {
			json_decref(a);
			return NULL;
		}
		if (out)
			out[i] = (uint64_t)v->i;
		json_array_append_new(a, json_integer((json_int_t)v->i));
	}
	if (nd)
		*nd = (unsigned)t->n;
	return a;
}

/* TensorProperties: a 5-tuple state (2.x __getstate__) or a dict (1.13). */
static const struct pk_node *
props_dtype(const struct pk_node *p)
{
	const struct pk_node *s = p ? p->state : NULL;

	if (!s)
		return NULL;
	if (s->kind == PK_TUPLE && s->n >= 1)
		return s->items[0];
	if (s->kind == PK_DICT)
		return ckpt_pk_dict_get(s, "dtype");
	return NULL;
}

static int
tensor_md(struct ckpt_file *f, const char *fqn, const struct pk_node *md,
    json_t *out, struct ckpt_error *err)
{
	const struct pk_node *st = ckpt_pk_object_state(md), *chunks, *dt;
	struct ckpt_tensor t = { 0 };
	uint64_t shape[CKPT_MAX_DIMS];
	json_t *size, *cj;
	unsigned nd = 0;

	if (!st || st->kind != PK_DICT)
		return bad(f, md, "TensorStorageMetadata without state");
	dt = props_dtype(ckpt_pk_dict_get(st, "properties"));
	if (!dt || dt->kind != PK_DTYPE || dt->i < 0)
		return ckpt_file_add_finding(f, "dcp-malformed",
		    CKPT_SEV_ERROR, fqn, md->pos, ".metadata: tensor '%s' has "
		    "no dtype ckpt knows (%s)", fqn, dt && dt->s ? dt->s : "");
	size = int_list(ckpt_pk_dict_get(st, "size"), shape, &nd);
	if (!size)
		return ckpt_file_add_finding(f, "dcp-malformed",
		    CKPT_SEV_ERROR, fqn, md->pos, ".metadata: tensor '%s' has "
		    "no valid size", fqn);
	json_object_set_new(out, "type", json_string("tensor"));
	json_object_set_new(out, "at", json_integer((json_int_t)md->pos));
	json_object_set_new(out, "dtype",
	    json_string(ckpt_dtype_name((enum ckpt_dtype)dt->i)));
	json_object_set_new(out, "size", size);
	cj = json_array();
	json_object_set_new(out, "chunks", cj);
	chunks = ckpt_pk_dict_get(st, "chunks");
	if (!chunks || chunks->kind != PK_LIST)
		return ckpt_file_add_finding(f, "dcp-malformed",
		    CKPT_SEV_ERROR, fqn, md->pos, ".metadata: tensor '%s' has "
		    "no chunk list", fqn);
	for (size_t i = 0; i < chunks->n; i++) {
		const struct pk_node *c = chunks->items[i];
		const struct pk_node *cs = ckpt_pk_object_state(c);
		json_t *o, *off, *sz;

		if (!cls_is(c, "ChunkStorageMetadata") || !cs ||
		    cs->kind != PK_DICT ||
		    !(off = int_list(ckpt_pk_dict_get(cs, "offsets"),
		    NULL, NULL)))
			return ckpt_file_add_finding(f, "dcp-malformed",
			    CKPT_SEV_ERROR, fqn, c->pos, ".metadata: chunk %zu "
			    "of '%s' is not valid", i, fqn);
		if (!(sz = int_list(ckpt_pk_dict_get(cs, "sizes"),
		    NULL, NULL))) {
			json_decref(off);
			return ckpt_file_add_finding(f, "dcp-malformed",
			    CKPT_SEV_ERROR, fqn, c->pos, ".metadata: chunk %zu "
			    "of '%s' has no sizes", i, fqn);
		}
		o = json_object();
		json_object_set_new(o, "offsets", off);
		json_object_set_new(o, "sizes", sz);
		/* where it is, for readers' messages (dcptensor.c) */
		json_object_set_new(o, "at", json_integer((json_int_t)c->pos));
		json_array_append_new(cj, o);
	}
	t.name = fqn;
	t.dtype = (enum ckpt_dtype)dt->i;
	t.ndim = nd;
	t.shape = shape;
	t.numel = 1;
	for (unsigned d = 0; d < nd; d++)
		if (!ckpt_mul_u64(t.numel, shape[d], &t.numel))
			return bad(f, md, "tensor size overflows");
	if (!ckpt_mul_u64(t.numel, ckpt_dtype_bits(t.dtype) / 8, &t.nbytes))
		return bad(f, md, "tensor size overflows");
	t.contiguous = true;
	t.kind = "dcp";
	return ckpt_file_add_tensor(f, &t, err);
}

/* "fqn|o1,o2" for a MetadataIndex key. */
static char *
index_key(const struct pk_node *k)
{
	const struct pk_node *st = ckpt_pk_object_state(k), *fqn, *off;
	char *s = NULL, *t;

	if (!cls_is(k, "MetadataIndex") || !st || st->kind != PK_DICT)
		return NULL;
	fqn = ckpt_pk_dict_get(st, "fqn");
	off = ckpt_pk_dict_get(st, "offset");
	if (!fqn || fqn->kind != PK_STR)
		return NULL;
	if (asprintf(&s, "%.*s|", (int)fqn->len, fqn->s) < 0)
		return NULL;
	if (off && (off->kind == PK_TUPLE || off->kind == PK_LIST)) {
		for (size_t i = 0; i < off->n; i++) {
			if (off->items[i]->kind != PK_INT) {
				free(s);
				return NULL;
			}
			if (asprintf(&t, "%s%s%lld", s, i ? "," : "",
			    (long long)off->items[i]->i) < 0) {
				free(s);
				return NULL;
			}
			free(s);
			s = t;
		}
	} else if (off && off->kind != PK_NONE) {
		free(s);
		return NULL;
	}
	return s;
}

static json_t *
storage_info(const struct pk_node *v)
{
	const struct pk_node *st = ckpt_pk_object_state(v), *p, *o, *l;
	json_t *j;

	if (!cls_is(v, "_StorageInfo") || !st || st->kind != PK_DICT)
		return NULL;
	p = ckpt_pk_dict_get(st, "relative_path");
	o = ckpt_pk_dict_get(st, "offset");
	l = ckpt_pk_dict_get(st, "length");
	if (!p || p->kind != PK_STR || !o || o->kind != PK_INT || o->i < 0 ||
	    !l || l->kind != PK_INT || l->i < 0)
		return NULL;
	j = json_object();
	json_object_set_new(j, "relative_path", json_stringn(p->s, p->len));
	json_object_set_new(j, "offset", json_integer((json_int_t)o->i));
	json_object_set_new(j, "length", json_integer((json_int_t)l->i));
	return j;
}

static int
convert(struct ckpt_file *f, const struct pk_node *root, json_t *doc,
    struct ckpt_error *err)
{
	const struct pk_node *st, *sdm, *sd;
	json_t *mj = json_object(), *sj = json_object();
	int rc = CKPT_OK;

	json_object_set_new(doc, "state_dict_metadata", mj);
	json_object_set_new(doc, "storage_data", sj);
	if (!cls_is(root, "Metadata") || !(st = ckpt_pk_object_state(root)) ||
	    st->kind != PK_DICT)
		return bad(f, root, "the top-level object is not a DCP "
		    "Metadata");
	sdm = ckpt_pk_dict_get(st, "state_dict_metadata");
	if (!sdm || sdm->kind != PK_DICT)
		return bad(f, root, "no state_dict_metadata dict");
	for (size_t i = 0; i < sdm->n && !rc; i++) {
		const struct pk_node *k = sdm->keys[i], *v = sdm->items[i];
		char *fqn;
		json_t *e;

		if (k->kind != PK_STR || memchr(k->s, '\0', k->len)) {
			rc = bad(f, k, "a state_dict_metadata key is not a "
			    "string");
			break;
		}
		fqn = strndup(k->s, k->len);
		if (!fqn)
			return ckpt_error_nomem(err);
		e = json_object();
		json_object_set_new(mj, fqn, e);
		if (cls_is(v, "BytesStorageMetadata"))
			json_object_set_new(e, "type", json_string("bytes"));
		else if (cls_is(v, "TensorStorageMetadata"))
			rc = tensor_md(f, fqn, v, e, err);
		else
			rc = ckpt_file_add_finding(f, "dcp-malformed",
			    CKPT_SEV_ERROR, fqn, v->pos, ".metadata: entry "
			    "'%s' is neither tensor nor bytes metadata", fqn);
		free(fqn);
	}
	sd = ckpt_pk_dict_get(st, "storage_data");
	if (sd && sd->kind == PK_DICT) {
		for (size_t i = 0; i < sd->n && !rc; i++) {
			char *key = index_key(sd->keys[i]);
			json_t *v = storage_info(sd->items[i]);

			if (!key || !v) {
				free(key);
				json_decref(v);
				rc = bad(f, sd->keys[i], "a storage_data entry "
				    "is not MetadataIndex -> _StorageInfo");
				break;
			}
			json_object_set_new(sj, key, v);
			free(key);
		}
	} else if (sd && sd->kind != PK_NONE) {
		rc = bad(f, sd, "storage_data is not a dict");
	}
	return rc;
}

int
ckpt_dcp_metadata_read(struct ckpt_file *f, struct ckpt_error *err)
{
	struct pk_opts o = { .what = ".metadata", .base = 0,
	    .flags = PK_ALLOW_DCP | PK_QUIET_COMPAT };
	struct ckpt_pickle *p = NULL;
	unsigned char *buf;
	json_t *doc;
	int rc;

	if (f->flags & CKPT_OPEN_NO_PICKLE)
		return CKPT_OK;
	if (f->size > MAX_METADATA_BYTES)
		return ckpt_error_set(err, CKPT_ERR_LIMIT, f->path, -1,
		    "DCP metadata of %llu bytes is too large",
		    (unsigned long long)f->size);
	buf = malloc(f->size ? (size_t)f->size : 1);
	if (!buf)
		return ckpt_error_nomem(err);
	if ((rc = ckpt_file_pread(f, buf, (size_t)f->size, 0, err))) {
		free(buf);
		return rc;
	}
	rc = ckpt_pickle_parse(f, buf, (size_t)f->size, &o, &p, NULL, err);
	if (rc == CKPT_ERR_FORMAT || rc == CKPT_ERR_LIMIT) {
		/* the findings say why; the file still opens */
		rc = CKPT_OK;
		goto out;
	}
	if (rc)
		goto out;
	if (p->consumed != f->size)
		ckpt_file_add_finding(f, "pickle-trailing-data", CKPT_SEV_ERROR,
		    NULL, (int64_t)p->consumed, "%llu bytes after the STOP of "
		    ".metadata", (unsigned long long)(f->size - p->consumed));
	doc = json_object();
	if (!doc) {
		rc = ckpt_error_nomem(err);
		goto out;
	}
	rc = convert(f, p->root, doc, err);
	if (!rc) {
		char *s = json_dumps(doc, JSON_COMPACT | JSON_PRESERVE_ORDER);

		if (!s)
			rc = ckpt_error_nomem(err);
		else
			ckpt_file_set_metadata(f, s);
	}
	json_decref(doc);
out:
	ckpt_pickle_free(p);
	free(buf);
	return rc;
}
