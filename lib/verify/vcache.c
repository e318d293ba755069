/* SPDX-License-Identifier: MIT */
/*
 * vcache.c - the digest cache of "ckpt verify --fast": which SHA-256 a file
 * had when it was last hashed, keyed by (device, inode, size, mtime in
 * nanoseconds), so that an unchanged file is not read again.  Like git's
 * index, it trusts that a file whose stat data did not change did not
 * change; it is meant to catch accidents cheaply, and a full verify (the
 * default) never reads it.
 *
 * File: <cache dir>/digests, text, first line "ckpt-digest-cache 1", then
 * one line per file: "DEV INO SIZE MTIME_SEC MTIME_NSEC HEX".  It is
 * rewritten whole into a temporary file and renamed over the old one, so
 * readers never see half of it; two verifies writing at once lose one
 * side's additions, which only costs a rehash later.  Every failure here
 * is silent: without a cache, --fast just hashes.
 */
#include "util/internal.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/util.h"
#include "verify/verify.h"

#define CACHE_MAGIC "ckpt-digest-cache 1"
#define CACHE_MAX_ENTRIES 1000000

struct centry {
	uint64_t dev, ino, size;
	int64_t sec;
	long nsec;
	unsigned char sha256[CKPT_SHA256_BYTES];
};

struct vcache {
	char *path;
	struct centry *v;
	size_t n, cap, nloaded;
	bool dirty;
};

static int
cmp_key(const void *a, const void *b)
{
	const struct centry *x = a, *y = b;

	if (x->dev != y->dev)
		return x->dev < y->dev ? -1 : 1;
	return x->ino < y->ino ? -1 : x->ino > y->ino;
}

static void
key_of(const struct stat *st, struct centry *e)
{
	e->dev = (uint64_t)st->st_dev;
	e->ino = (uint64_t)st->st_ino;
	e->size = (uint64_t)st->st_size;
	e->sec = (int64_t)st->st_mtim.tv_sec;
	e->nsec = st->st_mtim.tv_nsec;
}

static bool
push(struct vcache *c, const struct centry *e)
{
	if (c->n == c->cap) {
		size_t cap = c->cap ? 2 * c->cap : 256;
		struct centry *p = reallocarray(c->v, cap, sizeof(*p));

		if (!p)
			return false;
		c->v = p;
		c->cap = cap;
	}
	c->v[c->n++] = *e;
	return true;
}

static int
unhex(const char *s, unsigned char *out, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned int v;

		if (sscanf(s + 2 * i, "%2x", &v) != 1)
			return -1;
		out[i] = (unsigned char)v;
	}
	return 0;
}

static char *
cache_dir(const struct ckpt_verify_options *o, const struct vmanifest *m)
{
	const char *env;
	char *root, *s;

	if (o && o->cache_dir)
		return strdup(o->cache_dir);
	root = o && o->store ? strdup(o->store) :
	    (m && m->dir ? ckpt_vman_store_root(m->dir) : NULL);
	if (root) {
		if (asprintf(&s, "%s/.ckpt/cache", root) < 0)
			s = NULL;
		free(root);
		return s;
	}
	if ((env = getenv("XDG_CACHE_HOME")) && *env == '/') {
		mkdir(env, 0700);
		if (asprintf(&s, "%s/ckpt", env) < 0)
			return NULL;
		return s;
	}
	if (!(env = getenv("HOME")) || *env != '/')
		return NULL;
	if (asprintf(&s, "%s/.cache", env) < 0)
		return NULL;
	mkdir(s, 0700);
	free(s);
	if (asprintf(&s, "%s/.cache/ckpt", env) < 0)
		return NULL;
	return s;
}

void
ckpt_vcache_open(const struct ckpt_verify_options *o, const struct vmanifest *m,
    struct vcache **out)
{
	struct vcache *c;
	char *dir, line[256];
	FILE *fp;

	*out = NULL;
	if (!(dir = cache_dir(o, m)))
		return;
	mkdir(dir, 0700);
	c = calloc(1, sizeof(*c));
	if (!c || asprintf(&c->path, "%s/digests", dir) < 0) {
		free(c);
		free(dir);
		return;
	}
	free(dir);
	fp = fopen(c->path, "re");
	if (fp && fgets(line, sizeof(line), fp) &&
	    !strncmp(line, CACHE_MAGIC "\n", sizeof(CACHE_MAGIC))) {
		while (fgets(line, sizeof(line), fp) &&
		    c->n < CACHE_MAX_ENTRIES) {
			unsigned long long dev, ino, size;
			long long sec;
			long nsec;
			char hex[65];
			struct centry e;

			if (sscanf(line, "%llu %llu %llu %lld %ld %64s", &dev,
			    &ino, &size, &sec, &nsec, hex) != 6 ||
			    strlen(hex) != 64 || unhex(hex, e.sha256, 32))
				continue;
			e.dev = dev;
			e.ino = ino;
			e.size = size;
			e.sec = sec;
			e.nsec = nsec;
			if (!push(c, &e))
				break;
		}
	}
	if (fp)
		fclose(fp);
	if (c->n)
		qsort(c->v, c->n, sizeof(*c->v), cmp_key);
	c->nloaded = c->n;
	*out = c;
}

bool
ckpt_vcache_lookup(struct vcache *c, const struct stat *st,
    unsigned char *sha256)
{
	struct centry k, *e;

	if (!c || !c->nloaded)
		return false;
	key_of(st, &k);
	e = bsearch(&k, c->v, c->nloaded, sizeof(*c->v), cmp_key);
	if (!e || e->size != k.size || e->sec != k.sec || e->nsec != k.nsec)
		return false;
	memcpy(sha256, e->sha256, CKPT_SHA256_BYTES);
	return true;
}

void
ckpt_vcache_store(struct vcache *c, const struct stat *st,
    const unsigned char *sha256)
{
	struct centry k, *e;

	if (!c)
		return;
	key_of(st, &k);
	memcpy(k.sha256, sha256, CKPT_SHA256_BYTES);
	e = c->nloaded ? bsearch(&k, c->v, c->nloaded, sizeof(*c->v),
	    cmp_key) : NULL;
	if (e) {
		if (!memcmp(e, &k, sizeof(k)))
			return;
		*e = k;
	} else if (!push(c, &k)) {
		return;
	}
	c->dirty = true;
}

void
ckpt_vcache_close(struct vcache *c)
{
	char *tmp = NULL;
	FILE *fp = NULL;
	int fd;

	if (!c)
		return;
	if (!c->dirty)
		goto out;
	fd = ckpt_tempfile(c->path, 0600, &tmp, NULL);
	if (fd < 0) {
		tmp = NULL;
		goto out;
	}
	if (!(fp = fdopen(fd, "w"))) {
		close(fd);
		unlink(tmp);
		goto out;
	}
	fprintf(fp, "%s\n", CACHE_MAGIC);
	for (size_t i = 0; i < c->n; i++) {
		char hex[65];

		ckpt_hex(c->v[i].sha256, CKPT_SHA256_BYTES, hex);
		fprintf(fp, "%llu %llu %llu %lld %ld %s\n",
		    (unsigned long long)c->v[i].dev,
		    (unsigned long long)c->v[i].ino,
		    (unsigned long long)c->v[i].size,
		    (long long)c->v[i].sec, c->v[i].nsec, hex);
	}
	if (fclose(fp) || rename(tmp, c->path))
		unlink(tmp);
out:
	free(tmp);
	free(c->v);
	free(c->path);
	free(c);
}
