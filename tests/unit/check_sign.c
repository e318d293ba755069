/* SPDX-License-Identifier: MIT */
/*
 * check_sign.c - keys and signatures (lib/crypto/sign.c) and the verify slicing
 * (ckpt_verify_in_subset): every way a signature must fail, and slices
 * that are deterministic and cover every checkpoint exactly once.
 */
#include "unit.h"

#include <unistd.h>

#include "crypto/sign.h"
#include "util/util.h"

static char pub[4200], sec[4200], man[4200], sig[4300];

static void
paths(const char *name)
{
	snprintf(pub, sizeof(pub), "%s/%s.pub", unit_tmpdir, name);
	snprintf(sec, sizeof(sec), "%s/%s.key", unit_tmpdir, name);
}

START_TEST(test_sign_roundtrip)
{
	char id[CKPT_KEYID_HEX], id2[CKPT_KEYID_HEX], id3[CKPT_KEYID_HEX];
	const char *keys[1];
	struct ckpt_error e;

	paths("k");
	snprintf(man, sizeof(man), "%s", unit_write_file("m.json",
	    "{\"schema\":1}\n", 13));
	snprintf(sig, sizeof(sig), "%s.sig", man);
	ck_assert_int_eq(ckpt_keygen(pub, sec, "pw", 2, id, &e), 0);
	ck_assert_int_eq(strlen(id), 16);
	ck_assert_int_eq(ckpt_pubkey_id(pub, id2, &e), 0);
	ck_assert_str_eq(id, id2);
	ck_assert_int_eq(ckpt_sign_manifest(sec, "pw", 2, man, sig, "c", id3,
	    &e), 0);
	ck_assert_str_eq(id, id3);
	keys[0] = pub;
	ck_assert_int_eq(ckpt_signature_check(man, sig, keys, 1, id3, &e), 0);
	/* The manifest changes: the signature no longer matches. */
	unit_write_file("m.json", "{\"schema\":2}\n", 13);
	ck_assert_int_eq(ckpt_signature_check(man, sig, keys, 1, NULL, &e),
	    CKPT_ERR_CRYPTO);
}
END_TEST

START_TEST(test_sign_failures)
{
	char id[CKPT_KEYID_HEX];
	const char *keys[1];
	char other_pub[4200];
	struct ckpt_error e;
	bool enc;

	paths("a");
	snprintf(man, sizeof(man), "%s", unit_write_file("m.json", "{}", 2));
	snprintf(sig, sizeof(sig), "%s.sig", man);
	ck_assert_int_eq(ckpt_keygen(pub, sec, "secret", 6, id, &e), 0);
	ck_assert_int_eq(ckpt_seckey_encrypted(sec, &enc, &e), 0);
	ck_assert(enc);
	/* Never overwrite a key. */
	ck_assert_int_eq(ckpt_keygen(pub, sec, NULL, 0, id, &e),
	    CKPT_ERR_EXISTS);
	/* Wrong and missing passphrases. */
	ck_assert_int_eq(ckpt_sign_manifest(sec, "secreT", 6, man, sig, "",
	    NULL, &e), CKPT_ERR_CRYPTO);
	ck_assert_ptr_nonnull(strstr(e.message, "wrong passphrase"));
	ck_assert_int_eq(ckpt_sign_manifest(sec, NULL, 0, man, sig, "", NULL,
	    &e), CKPT_ERR_CRYPTO);
	ck_assert_int_eq(access(sig, F_OK), -1);
	/* A trusted comment must be one line. */
	ck_assert_int_eq(ckpt_sign_manifest(sec, "secret", 6, man, sig,
	    "a\nb", NULL, &e), CKPT_ERR_INVALID);
	ck_assert_int_eq(ckpt_sign_manifest(sec, "secret", 6, man, sig, "ok",
	    NULL, &e), 0);
	/* Another key with its own id is not the signer. */
	snprintf(other_pub, sizeof(other_pub), "%s", pub);
	paths("b");
	ck_assert_int_eq(ckpt_keygen(pub, sec, NULL, 0, id, &e), 0);
	keys[0] = pub;
	ck_assert_int_eq(ckpt_signature_check(man, sig, keys, 1, NULL, &e),
	    CKPT_ERR_NOTFOUND);
	ck_assert_int_eq(ckpt_signature_check(man, sig, NULL, 0, NULL, &e),
	    CKPT_ERR_NOTFOUND);
	/* A public key file with a forged id is refused. */
	unit_write_file("forged.pub", "untrusted comment: x\n"
	    "RWQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\n",
	    81);
	ck_assert_int_ne(ckpt_pubkey_id(unit_write_file("forged.pub",
	    "untrusted comment: x\nRWQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\n",
	    81), id, &e), 0);
	/* Garbage is malformed, not a crash. */
	ck_assert_int_eq(ckpt_signature_check(man, unit_write_file("g.sig",
	    "garbage", 7), keys, 1, NULL, &e), CKPT_ERR_FORMAT);
	(void)other_pub;
}
END_TEST

START_TEST(test_subset_partition)
{
	unsigned int counts[7] = { 0 };

	for (int64_t step = 0; step < 700; step++) {
		unsigned int hits = 0;

		for (unsigned int k = 1; k <= 7; k++)
			if (ckpt_verify_in_subset("run", step, k, 7)) {
				hits++;
				counts[k - 1]++;
			}
		ck_assert_uint_eq(hits, 1);
		/* Deterministic. */
		ck_assert(ckpt_verify_in_subset("run", step, 1, 1));
	}
	for (unsigned int k = 0; k < 7; k++)
		ck_assert_uint_gt(counts[k], 50);
	ck_assert(!ckpt_verify_in_subset("run", 1, 0, 7));
	ck_assert(!ckpt_verify_in_subset("run", 1, 8, 7));
	ck_assert(!ckpt_verify_in_subset("run", 1, 1, 0));
}
END_TEST

/*
 * The check of a signature and keys held in memory (a remote
 * checkpoint's): the same answers as from files, the manifest given by
 * the digest of its bytes.
 */
START_TEST(test_sign_memory)
{
	static const char body[] = "{\"schema\":1}\n";
	unsigned char d[CKPT_SHA256_BYTES];
	char id[CKPT_KEYID_HEX], got[CKPT_KEYID_HEX], *sigtext, *pubtext;
	char big[5000];
	size_t siglen, publen;
	struct ckpt_key_text kt[2];
	const char *keys[1];
	struct ckpt_error e;

	paths("m");
	snprintf(man, sizeof(man), "%s", unit_write_file("mm.json", body,
	    sizeof(body) - 1));
	snprintf(sig, sizeof(sig), "%s.sig", man);
	ck_assert_int_eq(ckpt_keygen(pub, sec, NULL, 0, id, &e), 0);
	ck_assert_int_eq(ckpt_sign_manifest(sec, NULL, 0, man, sig, "c", NULL,
	    &e), 0);
	ck_assert_int_eq(ckpt_read_file(sig, 8192, &sigtext, &siglen, &e), 0);
	ck_assert_int_eq(ckpt_read_file(pub, 8192, &pubtext, &publen, &e), 0);
	ck_assert_int_eq(ckpt_hash_buffer(CKPT_HASH_SHA256, body,
	    sizeof(body) - 1, d, &e), 0);
	/* a key that does not read is passed over, as a key file is */
	kt[0] = (struct ckpt_key_text){ "bad.pub", "garbage\n", 8 };
	kt[1] = (struct ckpt_key_text){ "k.pub", pubtext, publen };
	ck_assert_int_eq(ckpt_signature_check_mem("m", d, "m.sig", sigtext,
	    siglen, NULL, 0, kt, 2, got, &e), 0);
	ck_assert_str_eq(got, id);
	keys[0] = pub;
	ck_assert_int_eq(ckpt_signature_check_mem("m", d, "m.sig", sigtext,
	    siglen, keys, 1, NULL, 0, NULL, &e), 0);
	ck_assert_int_eq(ckpt_signature_check_mem("m", d, "m.sig", sigtext,
	    siglen, NULL, 0, kt, 1, NULL, &e), CKPT_ERR_NOTFOUND);
	d[3] ^= 1;	/* another manifest */
	ck_assert_int_eq(ckpt_signature_check_mem("m", d, "m.sig", sigtext,
	    siglen, NULL, 0, kt, 2, NULL, &e), CKPT_ERR_CRYPTO);
	memset(big, 'x', sizeof(big));
	ck_assert_int_eq(ckpt_signature_check_mem("m", d, "m.sig", big,
	    sizeof(big), NULL, 0, kt, 2, NULL, &e), CKPT_ERR_FORMAT);
	free(sigtext);
	free(pubtext);
}
END_TEST

Suite *
sign_suite(void)
{
	Suite *s = suite_create("sign");
	TCase *tc = tcase_create("keys");

	tcase_add_checked_fixture(tc, tmpdir_setup, tmpdir_teardown);
	/* Argon2id takes 64 MiB and a good fraction of a second each time,
	 * more on a loaded machine. */
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_sign_roundtrip);
	tcase_add_test(tc, test_sign_failures);
	tcase_add_test(tc, test_sign_memory);
	suite_add_tcase(s, tc);
	TCASE(s, "subset", NULL, NULL, test_subset_partition);
	return s;
}
