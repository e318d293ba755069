/* SPDX-License-Identifier: MIT */
/* check_hash.c - the hash interface against published test vectors. */
#include "unit.h"

static const char *
hex_of(enum ckpt_hash_algo algo, const void *data, size_t len)
{
	static char hex[CKPT_HASH_HEX_MAX];
	unsigned char d[CKPT_HASH_MAX_BYTES];

	ck_assert_int_eq(ckpt_hash_buffer(algo, data, len, d, NULL), 0);
	ckpt_hex(d, ckpt_hash_size(algo), hex);
	return hex;
}

START_TEST(test_hash_sha256_vectors)
{
	/* FIPS 180-2 examples. */
	ck_assert_str_eq(hex_of(CKPT_HASH_SHA256, "", 0),
	    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
	ck_assert_str_eq(hex_of(CKPT_HASH_SHA256, "abc", 3),
	    "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	ck_assert_str_eq(hex_of(CKPT_HASH_SHA256,
	    "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq", 56),
	    "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
}
END_TEST

START_TEST(test_hash_blake2b_vector)
{
	/* b2sum -l 256 of an empty input. */
	ck_assert_str_eq(hex_of(CKPT_HASH_BLAKE2B, "", 0),
	    "0e5751c026e543b2e8ab2eb06099daa1d1e5df47778f7787faab45cdf12fe3a8");
}
END_TEST

START_TEST(test_hash_streaming_matches_oneshot)
{
	unsigned char buf[100000], a[32], b[32];
	struct ckpt_hash *h;

	for (size_t i = 0; i < sizeof(buf); i++)
		buf[i] = (unsigned char)(i * 7 + 3);
	ck_assert_int_eq(ckpt_hash_buffer(CKPT_HASH_SHA256, buf, sizeof(buf),
	    a, NULL), 0);
	ck_assert_int_eq(ckpt_hash_new(CKPT_HASH_SHA256, &h, NULL), 0);
	for (size_t off = 0; off < sizeof(buf); off += 777)
		ckpt_hash_update(h, buf + off, sizeof(buf) - off < 777 ?
		    sizeof(buf) - off : 777);
	ck_assert_int_eq(ckpt_hash_final(h, b, NULL), 0);
	ckpt_hash_free(h);
	ck_assert_mem_eq(a, b, 32);
}
END_TEST

START_TEST(test_hash_rejects_unknown_algo)
{
	struct ckpt_hash *h = NULL;
	struct ckpt_error err;

	ckpt_error_clear(&err);
	ck_assert_int_eq(ckpt_hash_new((enum ckpt_hash_algo)7, &h, &err),
	    CKPT_ERR_INVALID);
	ck_assert_ptr_null(h);
	ck_assert_int_eq(err.code, CKPT_ERR_INVALID);
	ck_assert_str_ne(err.message, "");
}
END_TEST

Suite *
hash_suite(void)
{
	Suite *s = suite_create("hash");

	TCASE(s, "vectors", NULL, NULL, test_hash_sha256_vectors,
	    test_hash_blake2b_vector, test_hash_streaming_matches_oneshot,
	    test_hash_rejects_unknown_algo);
	return s;
}
