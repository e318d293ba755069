/* SPDX-License-Identifier: MIT */
/*
 * oms.c - checking an OpenSSF model signing (OMS v1.0) bundle against a
 * model directory: the "key" method (an ECDSA P-256/P-384/P-521 public key
 * in PEM) with the "files" serialization and SHA-256, which is what
 * `model_signing sign key` produces by default.  Verification only; see
 * ckpt-signature(5), "Interoperability", for what is not covered.
 *
 * Order, as the reference verifier: the DSSE signature over the PAE of the
 * payload, then the statement and predicate types, then the root digest
 * recomputed over the resources in the order given, then the directory
 * hashed and compared as a map (extra, missing, changed), with duplicate
 * resource names rejected rather than collapsed.
 */
#include "util/internal.h"

#include <dirent.h>
#include <sys/stat.h>

#include "verify/verify.h"

#ifdef CKPT_NO_OPENSSL
void
ckpt_vman_oms_check(const char *model, const char *bundle, const char *pem,
    unsigned int threads, struct flist *top)
{
	(void)model;
	(void)pem;
	(void)threads;
	ckpt_flist_add(top, "oms-unsupported", CKPT_SEV_ERROR, bundle, NULL, -1,
	    "this build has no libcrypto: OMS bundles cannot be checked");
}
#else
#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <sodium.h>

#define PAYLOAD_TYPE "application/vnd.in-toto+json"
#define PREDICATE_TYPE "https://model_signing/signature/v1.0"
#define STATEMENT_TYPE "https://in-toto.io/Statement/v1"
#define OMS_MAX_FILES 1000000

static unsigned char *
b64(const char *s, size_t *len)
{
	size_t n = strlen(s), out = 0;
	unsigned char *buf = malloc(n + 1);

	if (!buf)
		return NULL;
	if (sodium_base642bin(buf, n + 1, s, n, NULL, &out, NULL,
	    sodium_base64_VARIANT_ORIGINAL)) {
		free(buf);
		return NULL;
	}
	*len = out;
	return buf;
}

static bool
sig_ok(const char *pem_path, const unsigned char *pae, size_t paelen,
    const unsigned char *sig, size_t siglen, char *why, size_t whylen)
{
	EVP_PKEY *pk = NULL;
	EVP_MD_CTX *ctx = NULL;
	const EVP_MD *md = EVP_sha256();
	char group[64] = "";
	bool ok = false;
	FILE *fp = fopen(pem_path, "re");

	if (!fp) {
		snprintf(why, whylen, "cannot open %s: %s", pem_path,
		    strerror(errno));
		return false;
	}
	pk = PEM_read_PUBKEY(fp, NULL, NULL, NULL);
	fclose(fp);
	if (!pk || EVP_PKEY_get_base_id(pk) != EVP_PKEY_EC) {
		snprintf(why, whylen, "%s is not an EC public key in PEM",
		    pem_path);
		goto out;
	}
	EVP_PKEY_get_utf8_string_param(pk, "group", group, sizeof(group),
	    NULL);
	if (!strcmp(group, "secp384r1"))
		md = EVP_sha384();
	else if (!strcmp(group, "secp521r1"))
		md = EVP_sha512();
	else if (strcmp(group, "prime256v1")) {
		snprintf(why, whylen, "curve %s is not one of OMS's (P-256, "
		    "P-384, P-521)", group);
		goto out;
	}
	ctx = EVP_MD_CTX_new();
	if (!ctx || EVP_DigestVerifyInit(ctx, NULL, md, NULL, pk) != 1)
		goto out;
	ok = EVP_DigestVerify(ctx, sig, siglen, pae, paelen) == 1;
	if (!ok)
		snprintf(why, whylen, "the DSSE signature does not verify "
		    "with %s", pem_path);
out:
	EVP_MD_CTX_free(ctx);
	EVP_PKEY_free(pk);
	return ok;
}

struct lfile {
	char *name;
	bool seen;
};

static int
walk(const char *root, const char *rel, const char *skip, struct lfile **v,
    size_t *n, struct flist *top, int depth)
{
	struct dirent **ents = NULL;
	char *dir;
	int cnt;

	if (depth > 64 || *n > OMS_MAX_FILES)
		return -1;
	if (asprintf(&dir, "%s%s%s", root, *rel ? "/" : "", rel) < 0)
		return -1;
	cnt = scandir(dir, &ents, NULL, alphasort);
	free(dir);
	if (cnt < 0)
		return -1;
	for (int i = 0; i < cnt; i++) {
		const char *d = ents[i]->d_name;
		char *name = NULL, *path = NULL;
		struct stat st;

		if (!strcmp(d, ".") || !strcmp(d, "..") || (!*rel &&
		    (!strcmp(d, ".git") || !strcmp(d, ".gitignore") ||
		    !strcmp(d, ".gitattributes") || !strcmp(d, ".github"))))
			goto next;
		if (asprintf(&name, "%s%s%s", rel, *rel ? "/" : "", d) < 0 ||
		    asprintf(&path, "%s/%s", root, name) < 0)
			goto next;
		if (!strcmp(path, skip) || lstat(path, &st))
			goto next;
		if (S_ISDIR(st.st_mode)) {
			walk(root, name, skip, v, n, top, depth + 1);
		} else if (S_ISREG(st.st_mode)) {
			struct lfile *p = reallocarray(*v, *n + 1, sizeof(*p));

			if (p) {
				*v = p;
				p[*n].name = name;
				p[*n].seen = false;
				(*n)++;
				name = NULL;
			}
		} else {
			ckpt_flist_add(top, "oms-not-regular", CKPT_SEV_ERROR,
			    path, NULL, -1,
			    "not a regular file (OMS signs regular "
			    "files only; symbolic links are refused)");
		}
next:
		free(name);
		free(path);
		free(ents[i]);
	}
	free(ents);
	return 0;
}

static int
unhex(const char *s, unsigned char *out)
{
	if (!s || strlen(s) != 64)
		return -1;
	for (int i = 0; i < 32; i++) {
		unsigned int v;

		if (sscanf(s + 2 * i, "%2x", &v) != 1)
			return -1;
		out[i] = (unsigned char)v;
	}
	return 0;
}

void
ckpt_vman_oms_check(const char *model, const char *bundle, const char *pem,
    unsigned int threads, struct flist *top)
{
	json_error_t je;
	json_t *b = NULL, *st = NULL, *env, *res, *ser, *el;
	unsigned char *payload = NULL, *sig = NULL, *pae = NULL;
	unsigned char root[CKPT_SHA256_BYTES], want[CKPT_SHA256_BYTES];
	size_t plen = 0, slen = 0, paelen, i, nres, nlocal = 0;
	struct lfile *local = NULL;
	struct ckpt_hash_job *jobs = NULL;
	struct ckpt_hash *h = NULL;
	const char *pt, *s;
	char why[512];
	bool bad = false;

	b = json_load_file(bundle, JSON_REJECT_DUPLICATES, &je);
	env = json_object_get(b, "dsseEnvelope");
	pt = json_string_value(json_object_get(env, "payloadType"));
	s = json_string_value(json_object_get(json_array_get(
	    json_object_get(env, "signatures"), 0), "sig"));
	if (!b || !pt || !s || !json_string_value(json_object_get(env,
	    "payload"))) {
		ckpt_flist_add(top, "oms-malformed", CKPT_SEV_ERROR, bundle,
		    NULL, -1,
		    "not an OMS (Sigstore) bundle with a DSSE envelope%s%s",
		    b ? "" : ": ", b ? "" : je.text);
		goto out;
	}
	payload = b64(json_string_value(json_object_get(env, "payload")),
	    &plen);
	sig = b64(s, &slen);
	if (!payload || !sig || strcmp(pt, PAYLOAD_TYPE)) {
		ckpt_flist_add(top, "oms-malformed", CKPT_SEV_ERROR, bundle,
		    NULL, -1, "bad payload, signature or payload type");
		goto out;
	}
	{
		char head[128];
		int hl = snprintf(head, sizeof(head), "DSSEv1 %zu %s %zu ",
		    strlen(PAYLOAD_TYPE), PAYLOAD_TYPE, plen);

		paelen = (size_t)hl + plen;
		pae = malloc(paelen);
		if (!pae)
			goto out;
		memcpy(pae, head, (size_t)hl);
		memcpy(pae + hl, payload, plen);
	}
	if (!sig_ok(pem, pae, paelen, sig, slen, why, sizeof(why))) {
		ckpt_flist_add(top, "oms-signature-invalid", CKPT_SEV_ERROR,
		    bundle, NULL, -1, "%s", why);
		goto out;
	}
	st = json_loadb((const char *)payload, plen, JSON_REJECT_DUPLICATES,
	    &je);
	res = json_object_get(json_object_get(st, "predicate"), "resources");
	ser = json_object_get(json_object_get(st, "predicate"),
	    "serialization");
	if (!st || strcmp(json_string_value(json_object_get(st, "_type")) ?
	    json_string_value(json_object_get(st, "_type")) : "",
	    STATEMENT_TYPE) || strcmp(json_string_value(json_object_get(st,
	    "predicateType")) ? json_string_value(json_object_get(st,
	    "predicateType")) : "", PREDICATE_TYPE) ||
	    !json_array_size(res) || unhex(json_string_value(
	    json_object_get(json_object_get(json_array_get(json_object_get(st,
	    "subject"), 0), "digest"), "sha256")), want)) {
		ckpt_flist_add(top, "oms-malformed", CKPT_SEV_ERROR, bundle,
		    NULL, -1,
		    "the signed statement is not an OMS v1.0 statement");
		goto out;
	}
	s = json_string_value(json_object_get(ser, "method"));
	pt = json_string_value(json_object_get(ser, "hash_type"));
	if (!s || strcmp(s, "files") || !pt || strcmp(pt, "sha256")) {
		ckpt_flist_add(top, "oms-unsupported", CKPT_SEV_ERROR, bundle,
		    NULL, -1,
		    "serialization %s/%s: only files/sha256 is checked",
		    s ? s : "?", pt ? pt : "?");
		goto out;
	}
	/* The root digest, over the resources in the order given. */
	nres = json_array_size(res);
	if (ckpt_hash_new(CKPT_HASH_SHA256, &h, NULL))
		goto out;
	json_array_foreach(res, i, el) {
		unsigned char d[CKPT_SHA256_BYTES];

		if (unhex(json_string_value(json_object_get(el,
		    "digest")), d) ||
		    !json_string_value(json_object_get(el, "name"))) {
			ckpt_flist_add(top, "oms-malformed", CKPT_SEV_ERROR,
			    bundle, NULL, -1, "resource %zu is malformed", i);
			goto out;
		}
		for (size_t k = 0; k < i; k++)
			if (!strcmp(json_string_value(json_object_get(
			    json_array_get(res, k), "name")),
			    json_string_value(json_object_get(el, "name")))) {
				ckpt_flist_add(top, "oms-malformed",
				    CKPT_SEV_ERROR, bundle, json_string_value(
				    json_object_get(el, "name")), -1,
				    "duplicate resource name");
				goto out;
			}
		ckpt_hash_update(h, d, sizeof(d));
	}
	if (ckpt_hash_final(h, root, NULL) || memcmp(root, want, 32)) {
		ckpt_flist_add(top, "oms-malformed", CKPT_SEV_ERROR, bundle,
		    NULL, -1, "the root digest does not match the resources");
		goto out;
	}
	/* The model as it is now, hashed and compared as a map. */
	{
		char *abs_b = realpath(bundle, NULL), *abs_m = realpath(model,
		    NULL);

		if (!abs_m || walk(abs_m, "", abs_b ? abs_b : "", &local,
		    &nlocal, top, 0)) {
			free(abs_b);
			free(abs_m);
			ckpt_flist_add(top, "oms-unreadable", CKPT_SEV_ERROR,
			    model, NULL, -1, "cannot list the model directory");
			goto out;
		}
		jobs = calloc(nlocal ? nlocal : 1, sizeof(*jobs));
		for (size_t k = 0; jobs && k < nlocal; k++) {
			if (asprintf((char **)&jobs[k].path, "%s/%s", abs_m,
			    local[k].name) < 0)
				jobs[k].path = NULL;
			jobs[k].whole = true;
		}
		free(abs_b);
		free(abs_m);
		if (!jobs)
			goto out;
		ckpt_hash_files(jobs, nlocal, threads, NULL, NULL, NULL);
	}
	json_array_foreach(res, i, el) {
		const char *name = json_string_value(json_object_get(el,
		    "name"));
		unsigned char d[CKPT_SHA256_BYTES];
		size_t k;

		unhex(json_string_value(json_object_get(el, "digest")), d);
		for (k = 0; k < nlocal; k++)
			if (!strcmp(local[k].name, name))
				break;
		if (k == nlocal) {
			ckpt_flist_add(top, "oms-file-missing", CKPT_SEV_ERROR,
			    bundle, name, -1, "signed file %s is missing",
			    name);
			bad = true;
			continue;
		}
		local[k].seen = true;
		if (jobs[k].status || memcmp(jobs[k].sha256, d, sizeof(d))) {
			ckpt_flist_add(top, "oms-digest-mismatch",
			    CKPT_SEV_ERROR, bundle, name, -1,
			    "hash mismatch for %s", name);
			bad = true;
		}
	}
	for (size_t k = 0; k < nlocal; k++)
		if (!local[k].seen) {
			ckpt_flist_add(top, "oms-file-extra", CKPT_SEV_ERROR,
			    bundle, local[k].name, -1, "%s is not signed",
			    local[k].name);
			bad = true;
		}
	if (!bad)
		ckpt_flist_add(top, "oms-valid", CKPT_SEV_INFO, bundle, NULL,
		    -1, "OMS bundle verified: %zu files, signed with %s", nres,
		    pem);
out:
	for (size_t k = 0; k < nlocal; k++) {
		free(local[k].name);
		if (jobs)
			free((char *)jobs[k].path);
	}
	free(local);
	free(jobs);
	ckpt_hash_free(h);
	json_decref(st);
	json_decref(b);
	free(payload);
	free(sig);
	free(pae);
}
#endif /* CKPT_NO_OPENSSL */
