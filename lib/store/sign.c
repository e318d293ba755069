/* SPDX-License-Identifier: MIT */
/*
 * sign.c - "ckpt sign" of a checkpoint in any store, through its backend:
 * the manifest read as the store holds it (an object of an s3:// store),
 * signed in memory, and the signature put beside it as
 * ckpt-manifest.json.sig, replacing one that is there as a local sign
 * replaces its file.
 *
 * The manifest is the commit point of a checkpoint; its signature is not
 * part of it and never makes one look committed (ls, latest and prune
 * read manifests only).  Under the store lock the manifest is read and
 * the signature put: prune and gc, which remove manifests, take that lock
 * too, so no signature lands beside a manifest that a prune removed
 * meanwhile.  (A prune killed between its removal of the manifest and of
 * the rest leaves the signature with the rest, to gc, as any object of
 * the checkpoint.)
 */
#include "util/internal.h"

#include "crypto/sign.h"
#include "store/backend.h"
#include "store/store.h"

static int
manifest_bytes(struct ckpt_store *s, const char *key, const char *location,
    char **text, size_t *len, struct ckpt_error *err)
{
	char *mkey = ckpt_join(key, CKPT_MANIFEST_NAME);
	struct ckpt_error e;
	int rc;

	if (!mkey)
		return ckpt_error_nomem(err);
	ckpt_error_clear(&e);
	rc = s->ops->read(s->be, mkey, CKPT_MANIFEST_MAX, text, len, &e);
	free(mkey);
	if (rc == CKPT_ERR_NOTFOUND)
		return ckpt_error_set(err, CKPT_ERR_NOTFOUND, location, -1,
		    "has no manifest (%s): only committed checkpoints can be "
		    "signed", CKPT_MANIFEST_NAME);
	if (rc)
		*err = e;
	return rc;
}

/* A key of the store's layout: no empty, "." or ".." component (a URL
 * spelled to reach outside the checkpoint it names is refused). */
static bool
plain_key(const char *key)
{
	for (const char *c = key; *c; ) {
		size_t n = strcspn(c, "/");

		if (!n || (n == 1 && c[0] == '.') || (n == 2 && c[0] == '.' &&
		    c[1] == '.'))
			return false;
		c += n;
		if (*c && !*++c)
			return false;	/* a trailing '/' */
	}
	return true;
}

int
ckpt_store_sign_checkpoint(struct ckpt_store *s, const char *location,
    const char *sec_path, const char *passphrase, size_t passlen,
    const char *trusted_comment, char keyid[CKPT_KEYID_HEX],
    char **sig_location, struct ckpt_error *err)
{
	unsigned char digest[CKPT_SHA256_BYTES];
	const char *key = ckpt_store_key(s, location);
	char *text = NULL, *sig = NULL, *skey = NULL;
	size_t len = 0, siglen = 0;
	int rc;

	if (sig_location)
		*sig_location = NULL;
	if (!key || !*key || !plain_key(key))
		return ckpt_error_set(err, CKPT_ERR_INVALID, location, -1,
		    "not a checkpoint of the store %s", ckpt_store_root(s));
	if (!s->locked)
		return ckpt_error_set(err, CKPT_ERR_INTERNAL, location, -1,
		    "a checkpoint of a store is signed under its lock");
	if ((rc = manifest_bytes(s, key, location, &text, &len, err)))
		return rc;
	rc = ckpt_hash_buffer(CKPT_HASH_SHA256, text, len, digest, err);
	free(text);
	if (!rc)
		rc = ckpt_sign_manifest_mem(sec_path, passphrase, passlen,
		    digest, trusted_comment, &sig, &siglen, keyid, err);
	if (!rc && !(skey = ckpt_join(key, CKPT_MANIFEST_NAME ".sig")))
		rc = ckpt_error_nomem(err);
	/* replaced whole: readers see the old signature or the new one */
	if (!rc)
		rc = s->ops->put(s->be, skey, sig, siglen, 0, err);
	if (!rc && sig_location && !(*sig_location = ckpt_store_path(s,
	    skey)))
		rc = ckpt_error_nomem(err);
	free(skey);
	free(sig);
	return rc;
}
