/* SPDX-License-Identifier: MIT */
/*
 * sign.c - Ed25519 keys and detached manifest signatures (libsodium), in the
 * spirit of signify and minisign: small text files holding a comment line
 * and one base64 line, a key id in every key and signature so that a
 * verifier picks the right public key, and secret keys optionally sealed
 * with a passphrase (Argon2id + XSalsa20-Poly1305).  The formats are
 * documented in ckpt-signature(5); this file is their one implementation.
 *
 * What is signed is not the manifest bytes themselves but a short,
 * domain-separated statement naming the key, the manifest's SHA-256 and the
 * trusted comment, so that the comment cannot be altered and a signature
 * can never be replayed as something else.  Secret material (the secret
 * key, the derived key, the passphrase copy) lives in sodium_malloc()
 * memory, which is guarded, locked and wiped when freed.
 */
#include "util/internal.h"

#include <fcntl.h>
#include <sodium.h>
#include <sys/stat.h>
#include <unistd.h>

#include "crypto/sign.h"
#include "util/util.h"

#define ALG "Ed"
#define KDF_ARGON2ID "A2"
#define KDF_NONE "NO"
#define KEYID_BYTES 8

#define PUB_BYTES (2 + KEYID_BYTES + crypto_sign_PUBLICKEYBYTES)	/* 42 */
#define SIG_BYTES (2 + KEYID_BYTES + crypto_sign_BYTES)		/* 74 */
#define BOX_BYTES (crypto_secretbox_MACBYTES + crypto_sign_SECRETKEYBYTES)
#define SEC_SALT 12
#define SEC_OPS (SEC_SALT + crypto_pwhash_SALTBYTES)
#define SEC_MEM (SEC_OPS + 8)
#define SEC_NONCE (SEC_MEM + 8)
#define SEC_BOX (SEC_NONCE + crypto_secretbox_NONCEBYTES)
#define SEC_BYTES (SEC_BOX + BOX_BYTES)				/* 148 */

#define KEYFILE_MAX 4096

static int
ready(struct ckpt_error *err)
{
	if (sodium_init() < 0)
		return ckpt_error_set(err, CKPT_ERR_CRYPTO, NULL, -1,
		    "libsodium failed to initialise");
	return CKPT_OK;
}

static int
key_id(const unsigned char *pk, unsigned char id[KEYID_BYTES],
    struct ckpt_error *err)
{
	unsigned char d[CKPT_SHA256_BYTES];
	int rc = ckpt_hash_buffer(CKPT_HASH_SHA256, pk,
	    crypto_sign_PUBLICKEYBYTES, d, err);

	if (!rc)
		memcpy(id, d, KEYID_BYTES);
	return rc;
}

static void
put_le64(unsigned char *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}

static uint64_t
get_le64(const unsigned char *p)
{
	uint64_t v = 0;

	for (int i = 0; i < 8; i++)
		v |= (uint64_t)p[i] << (8 * i);
	return v;
}

/* Reads a small text file whole; *out is NUL-terminated, caller frees. */
static int
slurp(const char *path, char **out, size_t *len, struct ckpt_error *err)
{
	char *buf;
	size_t n = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return ckpt_error_errno(err, path, "cannot open");
	buf = malloc(KEYFILE_MAX + 1);
	if (!buf) {
		close(fd);
		return ckpt_error_nomem(err);
	}
	for (;;) {
		ssize_t r = read(fd, buf + n, KEYFILE_MAX + 1 - n);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			int rc = ckpt_error_errno(err, path, "cannot read");

			close(fd);
			free(buf);
			return rc;
		}
		if (r == 0)
			break;
		n += (size_t)r;
		if (n > KEYFILE_MAX) {
			close(fd);
			free(buf);
			return ckpt_error_set(err, CKPT_ERR_FORMAT, path, -1,
			    "larger than %d bytes: not a ckpt key or "
			    "signature file", KEYFILE_MAX);
		}
	}
	close(fd);
	buf[n] = '\0';
	*out = buf;
	if (len)
		*len = n;
	return CKPT_OK;
}

/*
 * Splits "untrusted comment: ...\nBASE64\n[trusted comment: ...\n]" and
 * decodes the base64 line into bin (exactly want bytes).  *tc (optional)
 * points into text at the trusted comment, NUL-terminated in place.
 */
static int
parse_text(const char *path, char *text, const char *what,
    unsigned char *bin, size_t want, char **tc, struct ckpt_error *err)
{
	static const char uc[] = "untrusted comment: ";
	static const char tcp[] = "trusted comment: ";
	char *line2, *end, *line3;
	size_t binlen = 0;

	if (strncmp(text, uc, sizeof(uc) - 1))
		return ckpt_error_set(err, CKPT_ERR_FORMAT, path, 0,
		    "not a ckpt %s: the first line must start with "
		    "\"untrusted comment: \"", what);
	line2 = strchr(text, '\n');
	if (!line2)
		return ckpt_error_set(err, CKPT_ERR_FORMAT, path, -1,
		    "not a ckpt %s: no key line", what);
	line2++;
	end = strchr(line2, '\n');
	line3 = end ? end + 1 : NULL;
	if (end)
		*end = '\0';
	if (end && end > line2 && end[-1] == '\r')
		end[-1] = '\0';
	if (sodium_base642bin(bin, want, line2, strlen(line2), NULL,
	    &binlen, NULL, sodium_base64_VARIANT_ORIGINAL) || binlen != want)
		return ckpt_error_set(err, CKPT_ERR_FORMAT, path,
		    (int64_t)(line2 - text), "malformed %s: the second line "
		    "must be %zu bytes in base64", what, want);
	if (memcmp(bin, ALG, 2))
		return ckpt_error_set(err, CKPT_ERR_UNSUPPORTED, path,
		    (int64_t)(line2 - text), "%s uses an unknown algorithm "
		    "(only Ed25519, \"Ed\", is known)", what);
	if (tc) {
		*tc = NULL;
		if (!line3 || strncmp(line3, tcp, sizeof(tcp) - 1))
			return ckpt_error_set(err, CKPT_ERR_FORMAT, path,
			    line3 ? (int64_t)(line3 - text) : -1,
			    "malformed %s: no \"trusted comment: \" line",
			    what);
		line3 += sizeof(tcp) - 1;
		end = strchr(line3, '\n');
		if (end) {
			*end = '\0';
			if (end[1])
				return ckpt_error_set(err, CKPT_ERR_FORMAT,
				    path, (int64_t)(end + 1 - text),
				    "trailing data after the trusted "
				    "comment");
		}
		*tc = line3;
	}
	return CKPT_OK;
}

/* Writes "untrusted comment: <c>\n<base64(bin)>\n[trusted comment: ]" to fd. */
static int
write_text(int fd, const char *path, const char *comment,
    const unsigned char *bin, size_t len, const char *tc,
    struct ckpt_error *err)
{
	char b64[512];
	char *doc;
	size_t n, done = 0;
	int m;

	sodium_bin2base64(b64, sizeof(b64), bin, len,
	    sodium_base64_VARIANT_ORIGINAL);
	if (tc)
		m = asprintf(&doc, "untrusted comment: %s\n%s\n"
		    "trusted comment: %s\n", comment, b64, tc);
	else
		m = asprintf(&doc, "untrusted comment: %s\n%s\n", comment,
		    b64);
	sodium_memzero(b64, sizeof(b64));
	if (m < 0)
		return ckpt_error_nomem(err);
	n = (size_t)m;
	while (done < n) {
		ssize_t w = write(fd, doc + done, n - done);

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0) {
			int rc = ckpt_error_errno(err, path, "cannot write");

			sodium_memzero(doc, n);
			free(doc);
			return rc;
		}
		done += (size_t)w;
	}
	sodium_memzero(doc, n);
	free(doc);
	if (fsync(fd))
		return ckpt_error_errno(err, path, "cannot sync");
	return CKPT_OK;
}

static int
create_excl(const char *path, mode_t mode, struct ckpt_error *err)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW |
	    O_CLOEXEC, mode);

	if (fd < 0 && errno == EEXIST)
		return ckpt_error_set(err, CKPT_ERR_EXISTS, path, -1,
		    "already exists; refusing to overwrite a key");
	if (fd < 0)
		return ckpt_error_errno(err, path, "cannot create");
	/* O_CREAT honours the umask; the secret key must be 0600 whatever
	 * it is, and the public key is meant to be readable. */
	if (fchmod(fd, mode)) {
		int rc = ckpt_error_errno(err, path, "cannot chmod");

		close(fd);
		unlink(path);
		return rc;
	}
	return fd;
}

/* Derives the 32-byte sealing key: Argon2id of the passphrase, or zeros
 * for an unprotected key (the box then serves as a checksum only). */
static int
seal_key(unsigned char *key, const char *kdf, const unsigned char *salt,
    uint64_t ops, uint64_t mem, const char *pass, size_t passlen,
    const char *path, struct ckpt_error *err)
{
	if (!memcmp(kdf, KDF_NONE, 2)) {
		sodium_memzero(key, crypto_secretbox_KEYBYTES);
		return CKPT_OK;
	}
	if (memcmp(kdf, KDF_ARGON2ID, 2))
		return ckpt_error_set(err, CKPT_ERR_UNSUPPORTED, path, -1,
		    "secret key sealed with an unknown method");
	if (ops < crypto_pwhash_OPSLIMIT_MIN ||
	    ops > crypto_pwhash_OPSLIMIT_SENSITIVE * 4 ||
	    mem < crypto_pwhash_MEMLIMIT_MIN ||
	    mem > (uint64_t)crypto_pwhash_MEMLIMIT_SENSITIVE * 4)
		return ckpt_error_set(err, CKPT_ERR_FORMAT, path, -1,
		    "secret key has out-of-range Argon2id limits");
	if (crypto_pwhash(key, crypto_secretbox_KEYBYTES, pass, passlen,
	    salt, ops, (size_t)mem, crypto_pwhash_ALG_ARGON2ID13))
		return ckpt_error_set(err, CKPT_ERR_NOMEM, path, -1,
		    "Argon2id needs more memory than is available");
	return CKPT_OK;
}

static void
hexid(const unsigned char *id, char keyid[CKPT_KEYID_HEX])
{
	if (keyid)
		ckpt_hex(id, KEYID_BYTES, keyid);
}

int
ckpt_keygen(const char *pub_path, const char *sec_path,
    const char *passphrase, size_t passlen, char keyid[CKPT_KEYID_HEX],
    struct ckpt_error *err)
{
	unsigned char pub[PUB_BYTES], sec[SEC_BYTES];
	unsigned char pk[crypto_sign_PUBLICKEYBYTES];
	unsigned char *sk = NULL, *key = NULL;
	char comment[64], hex[CKPT_KEYID_HEX];
	const char *kdf = passphrase ? KDF_ARGON2ID : KDF_NONE;
	int pfd = -1, sfd = -1, rc;
	struct stat st;

	if ((rc = ready(err)))
		return rc;
	if (!lstat(pub_path, &st))
		return ckpt_error_set(err, CKPT_ERR_EXISTS, pub_path, -1,
		    "already exists; refusing to overwrite a key");
	if (!lstat(sec_path, &st))
		return ckpt_error_set(err, CKPT_ERR_EXISTS, sec_path, -1,
		    "already exists; refusing to overwrite a key");
	sk = sodium_malloc(crypto_sign_SECRETKEYBYTES);
	key = sodium_malloc(crypto_secretbox_KEYBYTES);
	if (!sk || !key) {
		rc = ckpt_error_nomem(err);
		goto out;
	}
	crypto_sign_keypair(pk, sk);
	memset(sec, 0, sizeof(sec));
	memcpy(pub, ALG, 2);
	if ((rc = key_id(pk, pub + 2, err)))
		goto out;
	memcpy(pub + 2 + KEYID_BYTES, pk, sizeof(pk));
	memcpy(sec, ALG, 2);
	memcpy(sec + 2, kdf, 2);
	memcpy(sec + 4, pub + 2, KEYID_BYTES);
	if (passphrase) {
		randombytes_buf(sec + SEC_SALT, crypto_pwhash_SALTBYTES);
		put_le64(sec + SEC_OPS, crypto_pwhash_OPSLIMIT_INTERACTIVE);
		put_le64(sec + SEC_MEM, crypto_pwhash_MEMLIMIT_INTERACTIVE);
	}
	randombytes_buf(sec + SEC_NONCE, crypto_secretbox_NONCEBYTES);
	if ((rc = seal_key(key, kdf, sec + SEC_SALT, get_le64(sec + SEC_OPS),
	    get_le64(sec + SEC_MEM), passphrase, passlen, sec_path, err)))
		goto out;
	crypto_secretbox_easy(sec + SEC_BOX, sk, crypto_sign_SECRETKEYBYTES,
	    sec + SEC_NONCE, key);
	hexid(pub + 2, hex);

	if ((pfd = create_excl(pub_path, 0644, err)) < 0) {
		rc = pfd;
		goto out;
	}
	if ((sfd = create_excl(sec_path, 0600, err)) < 0) {
		rc = sfd;
		close(pfd);
		pfd = -1;
		unlink(pub_path);
		goto out;
	}
	snprintf(comment, sizeof(comment), "ckpt public key %s", hex);
	rc = write_text(pfd, pub_path, comment, pub, sizeof(pub), NULL, err);
	if (!rc) {
		snprintf(comment, sizeof(comment), "ckpt secret key %s%s",
		    hex, passphrase ? " (passphrase-protected)" : "");
		rc = write_text(sfd, sec_path, comment, sec, sizeof(sec),
		    NULL, err);
	}
	if (close(pfd) && !rc)
		rc = ckpt_error_errno(err, pub_path, "cannot close");
	if (close(sfd) && !rc)
		rc = ckpt_error_errno(err, sec_path, "cannot close");
	pfd = sfd = -1;
	if (rc) {
		unlink(pub_path);
		unlink(sec_path);
		goto out;
	}
	if (keyid)
		memcpy(keyid, hex, CKPT_KEYID_HEX);
out:
	sodium_memzero(sec, sizeof(sec));
	sodium_free(sk);
	sodium_free(key);
	return rc;
}

static int
read_seckey_blob(const char *path, unsigned char sec[SEC_BYTES],
    struct ckpt_error *err)
{
	char *text;
	size_t len;
	int rc;

	if ((rc = slurp(path, &text, &len, err)))
		return rc;
	rc = parse_text(path, text, "secret key file", sec, SEC_BYTES, NULL,
	    err);
	sodium_memzero(text, len);
	free(text);
	return rc;
}

int
ckpt_seckey_encrypted(const char *sec_path, bool *encrypted,
    struct ckpt_error *err)
{
	unsigned char sec[SEC_BYTES];
	int rc;

	if ((rc = ready(err)) || (rc = read_seckey_blob(sec_path, sec, err)))
		return rc;
	*encrypted = !memcmp(sec + 2, KDF_ARGON2ID, 2);
	sodium_memzero(sec, sizeof(sec));
	return CKPT_OK;
}

/* A public key's text (NUL-terminated, modified in place) into pub. */
static int
parse_pubkey(const char *name, char *text, unsigned char pub[PUB_BYTES],
    struct ckpt_error *err)
{
	unsigned char id[KEYID_BYTES];
	int rc;

	if ((rc = parse_text(name, text, "public key file", pub, PUB_BYTES,
	    NULL, err)))
		return rc;
	if ((rc = key_id(pub + 2 + KEYID_BYTES, id, err)))
		return rc;
	if (memcmp(id, pub + 2, KEYID_BYTES))
		return ckpt_error_set(err, CKPT_ERR_FORMAT, name, -1,
		    "public key does not match its key id");
	return CKPT_OK;
}

static int
read_pubkey(const char *path, unsigned char pub[PUB_BYTES],
    struct ckpt_error *err)
{
	char *text;
	int rc;

	if ((rc = slurp(path, &text, NULL, err)))
		return rc;
	rc = parse_pubkey(path, text, pub, err);
	free(text);
	return rc;
}

/* A key or signature held in memory as slurp() would give it: a
 * NUL-terminated copy, refused above KEYFILE_MAX as a file would be. */
static int
copy_text(const char *name, const char *data, size_t len, char **out,
    struct ckpt_error *err)
{
	if (len > KEYFILE_MAX)
		return ckpt_error_set(err, CKPT_ERR_FORMAT, name, -1,
		    "larger than %d bytes: not a ckpt key or signature file",
		    KEYFILE_MAX);
	if (!(*out = malloc(len + 1)))
		return ckpt_error_nomem(err);
	memcpy(*out, data, len);
	(*out)[len] = '\0';
	return CKPT_OK;
}

/* Whether a key in memory (unreadable: false) has the id of sig. */
static bool
text_key_matches(const struct ckpt_key_text *k, const unsigned char *sig,
    unsigned char pub[PUB_BYTES])
{
	struct ckpt_error e;
	char *text;
	bool found;

	if (copy_text(k->name, k->text, k->len, &text, &e))
		return false;
	found = !parse_pubkey(k->name, text, pub, &e) &&
	    !memcmp(pub + 2, sig + 2, KEYID_BYTES);
	free(text);
	return found;
}

int
ckpt_pubkey_id(const char *pub_path, char keyid[CKPT_KEYID_HEX],
    struct ckpt_error *err)
{
	unsigned char pub[PUB_BYTES];
	int rc;

	if ((rc = ready(err)) || (rc = read_pubkey(pub_path, pub, err)))
		return rc;
	hexid(pub + 2, keyid);
	return CKPT_OK;
}

/* The statement that is signed; see ckpt-signature(5). */
static char *
statement(const unsigned char *id, const unsigned char *digest,
    const char *tc)
{
	char idhex[CKPT_KEYID_HEX], dhex[2 * CKPT_SHA256_BYTES + 1];
	char *s;

	ckpt_hex(id, KEYID_BYTES, idhex);
	ckpt_hex(digest, CKPT_SHA256_BYTES, dhex);
	if (asprintf(&s, "ckpt-signature-v1\nkey %s\nmanifest sha256:%s\n"
	    "comment %s\n", idhex, dhex, tc) < 0)
		return NULL;
	return s;
}

static int
digest_file(const char *path, unsigned char *d, struct ckpt_error *err)
{
	unsigned char buf[65536];
	struct ckpt_hash *h;
	int fd, rc;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return ckpt_error_errno(err, path, "cannot open");
	if ((rc = ckpt_hash_new(CKPT_HASH_SHA256, &h, err))) {
		close(fd);
		return rc;
	}
	for (;;) {
		ssize_t n = read(fd, buf, sizeof(buf));

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rc = ckpt_error_errno(err, path, "cannot read");
			break;
		}
		if (n == 0) {
			rc = ckpt_hash_final(h, d, err);
			break;
		}
		ckpt_hash_update(h, buf, (size_t)n);
	}
	ckpt_hash_free(h);
	close(fd);
	return rc;
}

static bool
valid_comment(const char *s)
{
	for (; *s; s++)
		if (*s == '\n' || *s == '\r')
			return false;
	return true;
}

/* "untrusted comment: <c>\n<base64(bin)>\n[trusted comment: ]" in a
 * new string (*len: its length); sodium_memzero before free. */
static int
format_text(const char *comment, const unsigned char *bin, size_t len,
    const char *tc, char **out, size_t *outlen, struct ckpt_error *err)
{
	char b64[512];
	int m;

	sodium_bin2base64(b64, sizeof(b64), bin, len,
	    sodium_base64_VARIANT_ORIGINAL);
	if (tc)
		m = asprintf(out, "untrusted comment: %s\n%s\n"
		    "trusted comment: %s\n", comment, b64, tc);
	else
		m = asprintf(out, "untrusted comment: %s\n%s\n", comment,
		    b64);
	sodium_memzero(b64, sizeof(b64));
	if (m < 0) {
		*out = NULL;
		return ckpt_error_nomem(err);
	}
	*outlen = (size_t)m;
	return CKPT_OK;
}

/*
 * The signature of the manifest whose SHA-256 is digest, as the text of
 * a signature file (ckpt-signature(5)) in *text (*len bytes; the
 * caller frees).  The one place a secret key is unsealed for signing.
 */
static int
sign_digest(const char *sec_path, const char *passphrase, size_t passlen,
    const unsigned char digest[CKPT_SHA256_BYTES], const char *tc,
    char **text, size_t *len, char keyid[CKPT_KEYID_HEX],
    struct ckpt_error *err)
{
	unsigned char sec[SEC_BYTES], sig[SIG_BYTES];
	unsigned char pk[crypto_sign_PUBLICKEYBYTES];
	unsigned char id[KEYID_BYTES];
	unsigned char *sk = NULL, *key = NULL;
	char comment[64], hex[CKPT_KEYID_HEX];
	char *msg = NULL;
	int rc;

	*text = NULL;
	if (!valid_comment(tc))
		return ckpt_error_set(err, CKPT_ERR_INVALID, NULL, -1,
		    "the trusted comment must be one line");
	if ((rc = read_seckey_blob(sec_path, sec, err)))
		return rc;
	sk = sodium_malloc(crypto_sign_SECRETKEYBYTES);
	key = sodium_malloc(crypto_secretbox_KEYBYTES);
	if (!sk || !key) {
		rc = ckpt_error_nomem(err);
		goto out;
	}
	if (!memcmp(sec + 2, KDF_ARGON2ID, 2) && !passphrase) {
		rc = ckpt_error_set(err, CKPT_ERR_CRYPTO, sec_path, -1,
		    "secret key is passphrase-protected and no passphrase "
		    "was given");
		goto out;
	}
	if ((rc = seal_key(key, (const char *)sec + 2, sec + SEC_SALT,
	    get_le64(sec + SEC_OPS), get_le64(sec + SEC_MEM), passphrase,
	    passlen, sec_path, err)))
		goto out;
	if (crypto_secretbox_open_easy(sk, sec + SEC_BOX, BOX_BYTES,
	    sec + SEC_NONCE, key)) {
		rc = ckpt_error_set(err, CKPT_ERR_CRYPTO, sec_path, -1,
		    !memcmp(sec + 2, KDF_ARGON2ID, 2) ? "wrong passphrase "
		    "(or a damaged secret key)" : "damaged secret key");
		goto out;
	}
	/* The key id must be the one of the sealed key: a file whose id
	 * was edited would otherwise make signatures nobody can check. */
	crypto_sign_ed25519_sk_to_pk(pk, sk);
	if ((rc = key_id(pk, id, err)))
		goto out;
	if (memcmp(id, sec + 4, KEYID_BYTES)) {
		rc = ckpt_error_set(err, CKPT_ERR_FORMAT, sec_path, -1,
		    "secret key does not match its key id");
		goto out;
	}
	msg = statement(id, digest, tc);
	if (!msg) {
		rc = ckpt_error_nomem(err);
		goto out;
	}
	memcpy(sig, ALG, 2);
	memcpy(sig + 2, id, KEYID_BYTES);
	crypto_sign_detached(sig + 2 + KEYID_BYTES, NULL,
	    (const unsigned char *)msg, strlen(msg), sk);
	hexid(id, hex);
	snprintf(comment, sizeof(comment), "ckpt signature by key %s", hex);
	rc = format_text(comment, sig, sizeof(sig), tc, text, len, err);
	if (!rc && keyid)
		memcpy(keyid, hex, CKPT_KEYID_HEX);
out:
	free(msg);
	sodium_memzero(sec, sizeof(sec));
	sodium_free(sk);
	sodium_free(key);
	return rc;
}

int
ckpt_sign_manifest(const char *sec_path, const char *passphrase,
    size_t passlen, const char *manifest_path, const char *sig_path,
    const char *trusted_comment, char keyid[CKPT_KEYID_HEX],
    struct ckpt_error *err)
{
	unsigned char digest[CKPT_SHA256_BYTES];
	char *text = NULL;
	size_t len = 0;
	int rc;

	if ((rc = ready(err)) || (rc = digest_file(manifest_path, digest,
	    err)) || (rc = sign_digest(sec_path, passphrase, passlen, digest,
	    trusted_comment ? trusted_comment : "", &text, &len, keyid, err)))
		return rc;
	rc = ckpt_write_file_atomic(sig_path, text, len, err);
	free(text);
	return rc;
}

int
ckpt_sign_manifest_mem(const char *sec_path, const char *passphrase,
    size_t passlen, const unsigned char digest[CKPT_SHA256_BYTES],
    const char *trusted_comment, char **sig, size_t *sig_len,
    char keyid[CKPT_KEYID_HEX], struct ckpt_error *err)
{
	int rc;

	*sig = NULL;
	if ((rc = ready(err)))
		return rc;
	return sign_digest(sec_path, passphrase, passlen, digest,
	    trusted_comment ? trusted_comment : "", sig, sig_len, keyid, err);
}

/*
 * The one signature check: sigtext (slurped, modified in place) against
 * the manifest whose SHA-256 is digest (NULL: read manifest_path), with
 * the first trusted key, from files or from memory, of the signature's
 * key id.
 */
static int
check_signature(const char *manifest_path, const unsigned char *digest,
    const char *sig_path, char *text, const char *const *pubkeys,
    size_t npubkeys, const struct ckpt_key_text *texts, size_t ntexts,
    char keyid[CKPT_KEYID_HEX], struct ckpt_error *err)
{
	unsigned char sig[SIG_BYTES], pub[PUB_BYTES];
	unsigned char d[CKPT_SHA256_BYTES];
	char *tc = NULL, *msg = NULL;
	bool found = false;
	int rc;

	if ((rc = parse_text(sig_path, text, "signature file", sig,
	    SIG_BYTES, &tc, err)))
		return rc;
	hexid(sig + 2, keyid);
	for (size_t i = 0; i < npubkeys && !found; i++) {
		struct ckpt_error e;

		/* An unreadable key among several trusted ones is not a
		 * reason to fail a check another key can make. */
		if (read_pubkey(pubkeys[i], pub, &e))
			continue;
		found = !memcmp(pub + 2, sig + 2, KEYID_BYTES);
	}
	for (size_t i = 0; i < ntexts && !found; i++)
		found = text_key_matches(&texts[i], sig, pub);
	if (!found) {
		char hex[CKPT_KEYID_HEX];

		hexid(sig + 2, hex);
		return ckpt_error_set(err, CKPT_ERR_NOTFOUND, sig_path, -1,
		    "signed by key %s, which is not among the %zu trusted "
		    "key(s)", hex, npubkeys + ntexts);
	}
	if (!digest) {
		if ((rc = digest_file(manifest_path, d, err)))
			return rc;
		digest = d;
	}
	msg = statement(sig + 2, digest, tc);
	if (!msg)
		return ckpt_error_nomem(err);
	if (crypto_sign_verify_detached(sig + 2 + KEYID_BYTES,
	    (const unsigned char *)msg, strlen(msg),
	    pub + 2 + KEYID_BYTES))
		rc = ckpt_error_set(err, CKPT_ERR_CRYPTO, sig_path, -1,
		    "signature does not match the manifest %s",
		    manifest_path);
	free(msg);
	return rc;
}

int
ckpt_signature_check(const char *manifest_path, const char *sig_path,
    const char *const *pubkeys, size_t npubkeys, char keyid[CKPT_KEYID_HEX],
    struct ckpt_error *err)
{
	char *text = NULL;
	int rc;

	if ((rc = ready(err)) || (rc = slurp(sig_path, &text, NULL, err)))
		return rc;
	rc = check_signature(manifest_path, NULL, sig_path, text, pubkeys,
	    npubkeys, NULL, 0, keyid, err);
	free(text);
	return rc;
}

int
ckpt_signature_check_mem(const char *manifest_name,
    const unsigned char digest[CKPT_SHA256_BYTES], const char *sig_name,
    const char *sig, size_t sig_len, const char *const *pubkeys,
    size_t npubkeys, const struct ckpt_key_text *texts, size_t ntexts,
    char keyid[CKPT_KEYID_HEX], struct ckpt_error *err)
{
	char *text = NULL;
	int rc;

	if ((rc = ready(err)) || (rc = copy_text(sig_name, sig, sig_len,
	    &text, err)))
		return rc;
	rc = check_signature(manifest_name, digest, sig_name, text, pubkeys,
	    npubkeys, texts, ntexts, keyid, err);
	free(text);
	return rc;
}
