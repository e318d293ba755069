/* SPDX-License-Identifier: MIT */
/*
 * sign.h - the signing and the signature check of sign.c for a manifest
 * and signature held in memory (a checkpoint in an object store: sign
 * and verify fetch the manifest, verify the signature and the store's
 * trusted keys, rather than reading files).
 */
#ifndef CKPT_CRYPTO_SIGN_H
#define CKPT_CRYPTO_SIGN_H

#include "util/internal.h"

/* A public key file's bytes; name is shown in messages. */
struct ckpt_key_text {
	const char *name;
	const char *text;
	size_t len;
};

/*
 * ckpt_signature_check() of the signature sig (sig_len bytes, named
 * sig_name) over the manifest named manifest_name whose SHA-256 is
 * digest, trusting the key files pubkeys and the keys texts: the same
 * rules, results and messages.
 */
int ckpt_signature_check_mem(const char *manifest_name,
    const unsigned char digest[CKPT_SHA256_BYTES], const char *sig_name,
    const char *sig, size_t sig_len, const char *const *pubkeys,
    size_t npubkeys, const struct ckpt_key_text *texts, size_t ntexts,
    char keyid[CKPT_KEYID_HEX], struct ckpt_error *err);

/*
 * ckpt_sign_manifest() of a manifest held elsewhere (an object store):
 * signs the manifest whose SHA-256 is digest and gives the signature
 * file's text in *sig (*sig_len bytes; the caller frees) rather than
 * writing a file.  The same key handling, errors and format.
 */
int ckpt_sign_manifest_mem(const char *sec_path, const char *passphrase,
    size_t passlen, const unsigned char digest[CKPT_SHA256_BYTES],
    const char *trusted_comment, char **sig, size_t *sig_len,
    char keyid[CKPT_KEYID_HEX], struct ckpt_error *err);

#endif /* CKPT_CRYPTO_SIGN_H */
