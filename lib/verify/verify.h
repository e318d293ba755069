/* SPDX-License-Identifier: MIT */
/*
 * verify.h - what verify.c shares with its helpers: the manifest as verify
 * sees it (vmanifest.c adapts the store's manifest to it), the digest
 * cache of --fast (vcache.c) and the finding list.
 */
#ifndef CKPT_VERIFY_H
#define CKPT_VERIFY_H

#include "util/internal.h"
#include "util/findings.h"

#include <sys/stat.h>

/*
 * A digest-checked byte range of a file: a chunk (tensor == NULL) or a
 * tensor.  "first" ranges are hashed on every verify and cover every byte
 * of the file; the others (tensors larger than a chunk) only when a chunk
 * over them failed, to name the tensor.
 */
struct vman_range {
	uint64_t offset, end;
	unsigned char sha256[CKPT_SHA256_BYTES];
	const char *tensor;
	bool first;
};

struct vman_file {
	const char *name;		/* relative path */
	uint64_t size;
	bool has_sha256;		/* whole-file digest recorded */
	unsigned char sha256[CKPT_SHA256_BYTES];
	struct vman_range *ranges;
	size_t nranges;
	/*
	 * What the --fast cache remembers for a file that verified: the
	 * whole-file digest (schema 1), else a digest of every digest the
	 * entry records, so that an edited entry misses the cache.
	 */
	unsigned char cache_key[CKPT_SHA256_BYTES];
	const struct ckpt_manifest_file *entry;	/* tensors, schema 2 */
	int schema;
	bool seen;
};

struct vmanifest {
	char *path;			/* the manifest file */
	char *dir;			/* the checkpoint directory */
	char *digest;			/* "sha256:..." of its bytes */
	char *run;
	int64_t step;
	struct vman_file *files;
	size_t nfiles;
	void *priv;			/* the store's handle */
};

/*
 * Loads the manifest of path (a checkpoint directory, or the directory of
 * a file): *out NULL when there is none.  A manifest that exists but does
 * not read becomes a finding in top and *out stays NULL.
 */
int ckpt_vman_load(const char *path, bool is_dir,
    const struct ckpt_verify_options *o, struct vmanifest **out,
    struct flist *top, struct ckpt_error *err);
/* The same for a manifest already read (cm is taken over, also on
 * failure): a remote checkpoint's. */
int ckpt_vman_adopt(struct ckpt_manifest *cm,
    const struct ckpt_verify_options *o, struct vmanifest **out,
    struct flist *top, struct ckpt_error *err);
void ckpt_vman_free(struct vmanifest *m);
/* The entry for a relative path (marked seen), or NULL. */
const struct vman_file *ckpt_vman_find(struct vmanifest *m, const char *name);
/* Whether name (relative) is the manifest machinery rather than payload:
 * the manifest, its signature, the mutable status file. */
bool ckpt_vman_is_own_file(const char *name);
/* <manifest>.sig, newly allocated. */
char *ckpt_vman_signature_path(const struct vmanifest *m);
/* The public keys to trust: opts->keys, then STORE/.ckpt/keys/ *.pub of
 * the store holding the checkpoint.  Newly allocated array of strings. */
int ckpt_vman_trusted_keys(const struct ckpt_verify_options *o,
    const struct vmanifest *m, char ***keys, size_t *n);
/* The store root holding dir (a directory with .ckpt/), or NULL. */
char *ckpt_vman_store_root(const char *dir);

/* Checks an OMS bundle (oms.c) against the model at model; findings go
 * to top ("oms-valid" info when it holds). */
void ckpt_vman_oms_check(const char *model, const char *bundle, const char *pem,
    unsigned int threads, struct flist *top);

/* The --fast digest cache. */
struct vcache;

void ckpt_vcache_open(const struct ckpt_verify_options *o,
    const struct vmanifest *m, struct vcache **out);
bool ckpt_vcache_lookup(struct vcache *c, const struct stat *st,
    unsigned char *sha256);
void ckpt_vcache_store(struct vcache *c, const struct stat *st,
    const unsigned char *sha256);
/* Writes the cache back when it changed (best effort) and frees it. */
void ckpt_vcache_close(struct vcache *c);

#endif /* CKPT_VERIFY_H */
