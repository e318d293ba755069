/* SPDX-License-Identifier: MIT */
/*
 * hash.c - the one hash interface of libckpt.  SHA-256 comes from OpenSSL's
 * libcrypto, which uses the CPU's SHA extensions (about 5x libsodium's
 * portable code on this class of machine); builds without libcrypto
 * (CKPT_NO_OPENSSL) fall back to libsodium.  BLAKE2b always comes from
 * libsodium.  This is the only file that includes either library's headers
 * for hashing.
 */
#include "util/internal.h"

#include <sodium.h>
#ifndef CKPT_NO_OPENSSL
#include <openssl/evp.h>
#endif

struct ckpt_hash {
	enum ckpt_hash_algo algo;
	union {
#ifndef CKPT_NO_OPENSSL
		EVP_MD_CTX *evp;
#else
		crypto_hash_sha256_state sha256;
#endif
		crypto_generichash_state blake2b;
	} u;
};

#define BLAKE2B_BYTES 32

size_t
ckpt_hash_size(enum ckpt_hash_algo algo)
{
	return algo == CKPT_HASH_BLAKE2B ? BLAKE2B_BYTES : CKPT_SHA256_BYTES;
}

const char *
ckpt_hash_name(enum ckpt_hash_algo algo)
{
	return algo == CKPT_HASH_BLAKE2B ? "blake2b" : "sha256";
}

const char *
ckpt_hash_backend(void)
{
#ifndef CKPT_NO_OPENSSL
	return "openssl";
#else
	return "libsodium";
#endif
}

static int
sodium_ready(struct ckpt_error *err)
{
	/* sodium_init() is idempotent and thread-safe; 1 means "already". */
	if (sodium_init() < 0)
		return ckpt_error_set(err, CKPT_ERR_CRYPTO, NULL, -1,
		    "libsodium failed to initialise");
	return CKPT_OK;
}

int
ckpt_hash_new(enum ckpt_hash_algo algo, struct ckpt_hash **out,
    struct ckpt_error *err)
{
	struct ckpt_hash *h;

	if (algo != CKPT_HASH_SHA256 && algo != CKPT_HASH_BLAKE2B)
		return ckpt_error_set(err, CKPT_ERR_INVALID, NULL, -1,
		    "unknown hash algorithm %d", (int)algo);
	if (sodium_ready(err))
		return CKPT_ERR_CRYPTO;
	h = calloc(1, sizeof(*h));
	if (!h)
		return ckpt_error_nomem(err);
	h->algo = algo;
	if (algo == CKPT_HASH_BLAKE2B) {
		crypto_generichash_init(&h->u.blake2b, NULL, 0, BLAKE2B_BYTES);
	} else {
#ifndef CKPT_NO_OPENSSL
		h->u.evp = EVP_MD_CTX_new();
		if (!h->u.evp || !EVP_DigestInit_ex(h->u.evp, EVP_sha256(),
		    NULL)) {
			EVP_MD_CTX_free(h->u.evp);
			free(h);
			return ckpt_error_set(err, CKPT_ERR_CRYPTO, NULL, -1,
			    "libcrypto could not start SHA-256");
		}
#else
		crypto_hash_sha256_init(&h->u.sha256);
#endif
	}
	*out = h;
	return CKPT_OK;
}

void
ckpt_hash_update(struct ckpt_hash *h, const void *data, size_t len)
{
	if (!len)
		return;
	if (h->algo == CKPT_HASH_BLAKE2B) {
		crypto_generichash_update(&h->u.blake2b, data, len);
		return;
	}
#ifndef CKPT_NO_OPENSSL
	EVP_DigestUpdate(h->u.evp, data, len);
#else
	crypto_hash_sha256_update(&h->u.sha256, data, len);
#endif
}

int
ckpt_hash_final(struct ckpt_hash *h, unsigned char *out,
    struct ckpt_error *err)
{
	if (h->algo == CKPT_HASH_BLAKE2B) {
		crypto_generichash_final(&h->u.blake2b, out, BLAKE2B_BYTES);
		return CKPT_OK;
	}
#ifndef CKPT_NO_OPENSSL
	if (!EVP_DigestFinal_ex(h->u.evp, out, NULL))
		return ckpt_error_set(err, CKPT_ERR_CRYPTO, NULL, -1,
		    "libcrypto could not finish SHA-256");
#else
	(void)err;
	crypto_hash_sha256_final(&h->u.sha256, out);
#endif
	return CKPT_OK;
}

void
ckpt_hash_free(struct ckpt_hash *h)
{
	if (!h)
		return;
#ifndef CKPT_NO_OPENSSL
	if (h->algo == CKPT_HASH_SHA256)
		EVP_MD_CTX_free(h->u.evp);
#endif
	free(h);
}

int
ckpt_hash_buffer(enum ckpt_hash_algo algo, const void *data, size_t len,
    unsigned char *out, struct ckpt_error *err)
{
	struct ckpt_hash *h;
	int rc;

	if ((rc = ckpt_hash_new(algo, &h, err)))
		return rc;
	ckpt_hash_update(h, data, len);
	rc = ckpt_hash_final(h, out, err);
	ckpt_hash_free(h);
	return rc;
}

void
ckpt_hex(const unsigned char *digest, size_t len, char *hex)
{
	static const char digits[] = "0123456789abcdef";

	for (size_t i = 0; i < len; i++) {
		hex[2 * i] = digits[digest[i] >> 4];
		hex[2 * i + 1] = digits[digest[i] & 0xf];
	}
	hex[2 * len] = '\0';
}
