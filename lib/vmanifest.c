/* SPDX-License-Identifier: MIT */
/*
 * vmanifest.c - the manifest as ckpt_verify() sees it: every file with its
 * size, SHA-256 and the digest-checked byte ranges (chunks and tensors)
 * that let one large file be verified on every core; plus where the
 * signature and the trusted keys of a checkpoint are.
 */
#include "internal.h"

#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include "verify.h"

#ifndef CKPT_MANIFEST_NAME
#define CKPT_MANIFEST_NAME "ckpt-manifest.json"
#endif
#ifndef CKPT_STATUS_NAME
#define CKPT_STATUS_NAME "ckpt-status.json"
#endif
#define SIG_SUFFIX ".sig"

bool
vman_is_own_file(const char *name)
{
	return !strcmp(name, CKPT_MANIFEST_NAME) ||
	    !strcmp(name, CKPT_MANIFEST_NAME SIG_SUFFIX) ||
	    !strcmp(name, CKPT_STATUS_NAME);
}

char *
vman_signature_path(const struct vmanifest *m)
{
	char *s;

	if (asprintf(&s, "%s%s", m->path, SIG_SUFFIX) < 0)
		return NULL;
	return s;
}

char *
vman_store_root(const char *dir)
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
vman_trusted_keys(const struct ckpt_verify_options *o,
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
		root = vman_store_root(m->dir);
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
vman_find(struct vmanifest *m, const char *name)
{
	for (size_t i = 0; i < m->nfiles; i++)
		if (!strcmp(m->files[i].name, name)) {
			m->files[i].seen = true;
			return &m->files[i];
		}
	return NULL;
}

void
vman_free(struct vmanifest *m)
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
	free(m);
}

int
vman_load(const char *path, bool is_dir, const struct ckpt_verify_options *o,
    struct vmanifest **out, struct flist *top, struct ckpt_error *err)
{
	(void)path;
	(void)is_dir;
	(void)o;
	(void)top;
	(void)err;
	/* Until the store's manifest reader lands (issue #4). */
	*out = NULL;
	return CKPT_OK;
}
