/* SPDX-License-Identifier: MIT */
/*
 * vmanifest.c - the manifest as ckpt_verify() sees it: every file with its
 * size, SHA-256 and the digest-checked byte ranges (chunks and tensors)
 * that let one large file be verified on every core; plus where the
 * signature and the trusted keys of a checkpoint are.
 */
#include "util/internal.h"

#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include "verify/verify.h"

#define SIG_SUFFIX ".sig"

bool
ckpt_vman_is_own_file(const char *name)
{
	/* The staging file never survives a commit; if it is there it is
	 * a finding like any other unlisted file. */
	return !strcmp(name, CKPT_MANIFEST_NAME) ||
	    !strcmp(name, CKPT_MANIFEST_NAME SIG_SUFFIX) ||
	    !strcmp(name, CKPT_STATUS_NAME);
}

char *
ckpt_vman_signature_path(const struct vmanifest *m)
{
	char *s;

	if (asprintf(&s, "%s%s", m->path, SIG_SUFFIX) < 0)
		return NULL;
	return s;
}

char *
ckpt_vman_store_root(const char *dir)
{
	char *cur = realpath(dir, NULL);

	/* STORE/runs/RUN/NAME: the store is a few levels up; look a little
	 * further for checkpoints kept elsewhere inside a store. */
	for (int depth = 0; cur && depth < 8; depth++) {
		char *probe, *slash;
		struct stat st;

		if (asprintf(&probe, "%s/.ckpt", cur) < 0)
			break;
		if (!stat(probe, &st) && S_ISDIR(st.st_mode)) {
			free(probe);
			return cur;
		}
		free(probe);
		slash = strrchr(cur, '/');
		if (!slash || slash == cur)
			break;
		*slash = '\0';
	}
	free(cur);
	return NULL;
}

static int
push_key(char ***keys, size_t *n, const char *path)
{
	char **p = reallocarray(*keys, *n + 1, sizeof(*p));

	if (!p)
		return -1;
	*keys = p;
	if (!(p[*n] = strdup(path)))
		return -1;
	(*n)++;
	return 0;
}

int
ckpt_vman_trusted_keys(const struct ckpt_verify_options *o,
    const struct vmanifest *m, char ***keys, size_t *n)
{
	char *root = NULL, *dir = NULL;
	struct dirent **ents = NULL;
	int nents, rc = 0;

	*keys = NULL;
	*n = 0;
	for (size_t i = 0; o && i < o->nkeys; i++)
		if (push_key(keys, n, o->keys[i]))
			return -1;
	if (o && o->store)
		root = strdup(o->store);
	else if (m && m->dir)
		root = ckpt_vman_store_root(m->dir);
	if (!root)
		return 0;
	if (asprintf(&dir, "%s/.ckpt/keys", root) < 0) {
		free(root);
		return -1;
	}
	nents = scandir(dir, &ents, NULL, alphasort);
	for (int i = 0; i < nents; i++) {
		const char *d = ents[i]->d_name;
		size_t l = strlen(d);
		char *path;

		if (!rc && l > 4 && !strcmp(d + l - 4, ".pub")) {
			if (asprintf(&path, "%s/%s", dir, d) < 0)
				rc = -1;
			else {
				rc = push_key(keys, n, path);
				free(path);
			}
		}
		free(ents[i]);
	}
	free(ents);
	free(dir);
	free(root);
	return rc;
}

const struct vman_file *
ckpt_vman_find(struct vmanifest *m, const char *name)
{
	for (size_t i = 0; i < m->nfiles; i++)
		if (!strcmp(m->files[i].name, name)) {
			m->files[i].seen = true;
			return &m->files[i];
		}
	return NULL;
}

void
ckpt_vman_free(struct vmanifest *m)
{
	if (!m)
		return;
	for (size_t i = 0; i < m->nfiles; i++)
		free(m->files[i].ranges);
	free(m->files);
	free(m->path);
	free(m->dir);
	free(m->digest);
	free(m->run);
	ckpt_manifest_free(m->priv);
	free(m);
}

static int
cmp_range(const void *a, const void *b)
{
	const struct vman_range *x = a, *y = b;

	if (x->offset != y->offset)
		return x->offset < y->offset ? -1 : 1;
	return x->end < y->end ? -1 : x->end > y->end;
}

/* Whether the "first" ranges cover every byte of [0, size). */
static bool
covers(struct vman_range *r, size_t n, uint64_t size)
{
	struct vman_range *v;
	uint64_t reach = 0;
	size_t k = 0;

	v = calloc(n ? n : 1, sizeof(*v));
	if (!v)
		return false;
	for (size_t i = 0; i < n; i++)
		if (r[i].first)
			v[k++] = r[i];
	if (k)
		qsort(v, k, sizeof(*v), cmp_range);
	for (size_t i = 0; i < k && reach < size; i++) {
		if (v[i].offset > reach)
			break;
		if (v[i].end > reach)
			reach = v[i].end;
	}
	free(v);
	return reach >= size;
}

/*
 * Schema 1 keeps chunks for every byte that no tensor of at most
 * chunk_size bytes covers: chunks plus small tensors are hashed on every
 * verify, and larger tensors only to name one that changed.  When the
 * ranges do not cover the file (an older or foreign manifest), the whole
 * file is hashed instead and every tensor waits for a mismatch.
 */
static int
adapt_schema1(struct vman_file *vf, const struct ckpt_manifest_file *f)
{
	size_t n = f->nchunks + f->ntensors, k = 0;

	memcpy(vf->cache_key, f->sha256, CKPT_SHA256_BYTES);
	if (!n)
		return 0;
	vf->ranges = calloc(n, sizeof(*vf->ranges));
	if (!vf->ranges)
		return -1;
	for (size_t i = 0; i < f->nchunks; i++, k++) {
		vf->ranges[k].offset = f->chunks[i].offset;
		vf->ranges[k].end = f->chunks[i].end;
		memcpy(vf->ranges[k].sha256, f->chunks[i].sha256,
		    CKPT_SHA256_BYTES);
		vf->ranges[k].first = f->chunk_size > 0;
	}
	for (size_t i = 0; i < f->ntensors; i++, k++) {
		const struct ckpt_range_digest *b = &f->tensors[i].bytes;

		vf->ranges[k].offset = b->offset;
		vf->ranges[k].end = b->end;
		memcpy(vf->ranges[k].sha256, b->sha256, CKPT_SHA256_BYTES);
		vf->ranges[k].tensor = f->tensors[i].name;
		vf->ranges[k].first = f->chunk_size > 0 &&
		    b->end - b->offset <= f->chunk_size;
	}
	vf->nranges = n;
	if (!covers(vf->ranges, n, f->size))
		for (size_t i = 0; i < n; i++)
			vf->ranges[i].first = false;
	return 0;
}

static void
key_add(struct ckpt_sha256 *s, uint64_t v)
{
	unsigned char b[8];

	for (int i = 0; i < 8; i++)
		b[i] = (unsigned char)(v >> (8 * i));
	ckpt_sha256_update(s, b, sizeof(b));
}

/* Schema 2: the file's ranges partition it (checked when reading). */
static int
adapt_schema2(struct vman_file *vf, const struct ckpt_manifest_file *f)
{
	struct ckpt_sha256 s;

	if (ckpt_sha256_init(&s, NULL))
		return -1;
	key_add(&s, f->size);
	if (f->has_sha256)
		ckpt_sha256_update(&s, f->sha256, CKPT_SHA256_BYTES);
	if (f->nranges && !(vf->ranges = calloc(f->nranges,
	    sizeof(*vf->ranges)))) {
		ckpt_sha256_release(&s);
		return -1;
	}
	for (size_t i = 0; i < f->nranges; i++) {
		vf->ranges[i].offset = f->ranges[i].offset;
		vf->ranges[i].end = f->ranges[i].end;
		memcpy(vf->ranges[i].sha256, f->ranges[i].sha256,
		    CKPT_SHA256_BYTES);
		vf->ranges[i].first = true;
		key_add(&s, f->ranges[i].end);
		ckpt_sha256_update(&s, f->ranges[i].sha256, CKPT_SHA256_BYTES);
	}
	vf->nranges = f->nranges;
	for (size_t i = 0; i < f->ntensors; i++)
		if (f->tensors[i].has_content_sha256) {
			key_add(&s, i);
			ckpt_sha256_update(&s, f->tensors[i].content_sha256,
			    CKPT_SHA256_BYTES);
		}
	return ckpt_sha256_final(&s, vf->cache_key, NULL) ? -1 : 0;
}

static int
adapt_file(struct vman_file *vf, const struct ckpt_manifest_file *f,
    int schema)
{
	vf->name = f->path;
	vf->size = f->size;
	vf->has_sha256 = f->has_sha256;
	memcpy(vf->sha256, f->sha256, CKPT_SHA256_BYTES);
	vf->entry = f;
	vf->schema = schema;
	return schema == 1 ? adapt_schema1(vf, f) : adapt_schema2(vf, f);
}

int
ckpt_vman_load(const char *path, bool is_dir,
    const struct ckpt_verify_options *o, struct vmanifest **out,
    struct flist *top, struct ckpt_error *err)
{
	struct ckpt_manifest *cm;
	struct ckpt_error e;
	char *dir;
	int rc;

	*out = NULL;
	if (is_dir) {
		dir = strdup(path);
	} else {
		const char *slash = strrchr(path, '/');

		dir = slash ? strndup(path, (size_t)(slash - path + 1)) :
		    strdup(".");
	}
	if (!dir)
		return ckpt_error_nomem(err);
	ckpt_error_clear(&e);
	rc = ckpt_manifest_read(dir, &cm, &e);
	if (rc == CKPT_ERR_NOTFOUND) {
		free(dir);
		return CKPT_OK;
	}
	if (rc == CKPT_ERR_NOMEM) {
		free(dir);
		return ckpt_error_nomem(err);
	}
	if (rc) {
		/* A manifest that is there but does not read is as bad as a
		 * corrupt file, and nothing can be checked against it. */
		rc = ckpt_flist_add(top, rc == CKPT_ERR_IO ? "io-error" :
		    "manifest-invalid", CKPT_SEV_ERROR, e.path[0] ? e.path :
		    path, NULL, e.offset, "%s", e.message);
		free(dir);
		return rc ? ckpt_error_nomem(err) : CKPT_OK;
	}
	free(dir);
	return ckpt_vman_adopt(cm, o, out, top, err);
}

int
ckpt_vman_adopt(struct ckpt_manifest *cm, const struct ckpt_verify_options *o,
    struct vmanifest **out, struct flist *top, struct ckpt_error *err)
{
	struct vmanifest *m;

	*out = NULL;
	m = calloc(1, sizeof(*m));
	if (!m)
		goto nomem;
	m->priv = cm;
	m->dir = strdup(ckpt_manifest_dir(cm));
	m->digest = strdup(ckpt_manifest_digest(cm));
	m->run = strdup(ckpt_manifest_run(cm) ? ckpt_manifest_run(cm) : "");
	m->step = ckpt_manifest_step(cm);
	if (!m->dir || !m->digest || !m->run || asprintf(&m->path, "%s/%s",
	    m->dir, CKPT_MANIFEST_NAME) < 0) {
		m->path = NULL;
		goto nomem;
	}
	m->nfiles = ckpt_manifest_file_count(cm);
	m->files = calloc(m->nfiles ? m->nfiles : 1, sizeof(*m->files));
	if (!m->files)
		goto nomem;
	for (size_t i = 0; i < m->nfiles; i++)
		if (adapt_file(&m->files[i], ckpt_manifest_file(cm, i),
		    ckpt_manifest_schema(cm)))
			goto nomem;
	if (o && o->manifest_digest && strcmp(o->manifest_digest, m->digest))
		ckpt_flist_add(top, "manifest-digest-mismatch", CKPT_SEV_ERROR,
		    m->path, NULL, -1, "manifest is %s, the registry recorded "
		    "%s", m->digest, o->manifest_digest);
	*out = m;
	return CKPT_OK;
nomem:
	if (m)
		ckpt_vman_free(m);
	else
		ckpt_manifest_free(cm);
	return ckpt_error_nomem(err);
}
