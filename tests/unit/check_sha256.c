/* SPDX-License-Identifier: MIT */
/*
 * check_sha256.c - the engine's SHA-256 streams (sha256.c) against the
 * hash interface (libcrypto): every length around the block and padding
 * boundaries, every pair of phases update2 can meet, the same and
 * different bytes, and the portable path the environment can force.
 */
#include "unit.h"

#define DATA_LEN 4096

static unsigned char data[DATA_LEN + 256];

static void
fill_data(void)
{
	uint32_t x = 2463534242u;

	for (size_t i = 0; i < sizeof(data); i++) {
		x ^= x << 13;
		x ^= x >> 17;
		x ^= x << 5;
		data[i] = (unsigned char)x;
	}
}

static void
reference(const void *p, size_t n, unsigned char out[32])
{
	ck_assert_int_eq(ckpt_hash_buffer(CKPT_HASH_SHA256, p, n, out, NULL),
	    0);
}

static void
stream_of(const void *p, size_t n, size_t piece, unsigned char out[32])
{
	struct ckpt_sha256 s;
	const unsigned char *q = p;

	ck_assert_int_eq(ckpt_sha256_init(&s, NULL), 0);
	for (size_t off = 0; off < n; off += piece)
		ckpt_sha256_update(&s, q + off, n - off < piece ? n - off :
		    piece);
	ck_assert_int_eq(ckpt_sha256_final(&s, out, NULL), 0);
}

/* Every length 0..300 (one to four blocks and both padding cases). */
static void
check_lengths(void)
{
	unsigned char want[32], got[32];

	fill_data();
	for (size_t n = 0; n <= 300; n++) {
		reference(data, n, want);
		stream_of(data, n, n ? n : 1, got);
		ck_assert_msg(!memcmp(want, got, 32), "length %zu", n);
		stream_of(data, n, 7, got);
		ck_assert_msg(!memcmp(want, got, 32), "length %zu in 7s", n);
	}
}

/*
 * Stream a has taken pa bytes and b has taken pb bytes before update2
 * feeds both n more: of the same bytes (same) or of different ones.
 */
static void
check_pair(size_t pa, size_t pb, size_t n, bool same)
{
	unsigned char want_a[32], want_b[32], got_a[32], got_b[32];
	const unsigned char *da = data + 1000, *db = same ? da : data + 2017;
	unsigned char *ra = malloc(pa + n), *rb = malloc(pb + n);
	struct ckpt_sha256 a, b;

	ck_assert_ptr_nonnull(ra);
	ck_assert_ptr_nonnull(rb);
	memcpy(ra, data, pa);
	memcpy(ra + pa, da, n);
	memcpy(rb, data + 3, pb);
	memcpy(rb + pb, db, n);
	reference(ra, pa + n, want_a);
	reference(rb, pb + n, want_b);
	ck_assert_int_eq(ckpt_sha256_init(&a, NULL), 0);
	ck_assert_int_eq(ckpt_sha256_init(&b, NULL), 0);
	ckpt_sha256_update(&a, data, pa);
	ckpt_sha256_update(&b, data + 3, pb);
	ckpt_sha256_update2(&a, da, &b, db, n);
	ck_assert_int_eq(ckpt_sha256_final(&a, got_a, NULL), 0);
	ck_assert_int_eq(ckpt_sha256_final(&b, got_b, NULL), 0);
	ck_assert_msg(!memcmp(want_a, got_a, 32), "a: %zu + %zu (%s)", pa, n,
	    same ? "same" : "different");
	ck_assert_msg(!memcmp(want_b, got_b, 32), "b: %zu + %zu (%s)", pb, n,
	    same ? "same" : "different");
	free(ra);
	free(rb);
}

static void
check_pairs(void)
{
	static const size_t lens[] = { 0, 1, 55, 63, 64, 65, 127, 128, 200,
	    640, 1000, 2048 + 37 };

	fill_data();
	for (size_t pa = 0; pa < 64; pa += 3)
		for (size_t pb = 0; pb < 64; pb += 5)
			for (size_t i = 0; i < CKPT_ARRAY_SIZE(lens); i++) {
				check_pair(pa, pb, lens[i], true);
				check_pair(pa, pb, lens[i], false);
			}
	/* Whole blocks already taken, and more than a block in the buffer's
	 * worth of earlier input. */
	check_pair(64, 128, 1000, true);
	check_pair(130, 7, 999, false);
}

START_TEST(test_sha256_lengths)
{
	check_lengths();
}
END_TEST

START_TEST(test_sha256_pairs)
{
	check_pairs();
}
END_TEST

START_TEST(test_sha256_portable_path)
{
	setenv("CKPT_SHA256_KERNEL", "portable", 1);
	ckpt_sha256_reset_kernel();
	ck_assert_str_eq(ckpt_sha256_kernel(), ckpt_hash_backend());
	check_lengths();
	check_pairs();
	unsetenv("CKPT_SHA256_KERNEL");
	ckpt_sha256_reset_kernel();
}
END_TEST

START_TEST(test_sha256_same_stream_twice)
{
	unsigned char want[32], got[32];
	struct ckpt_sha256 a;

	/* update2 of a stream with itself takes the bytes once. */
	fill_data();
	reference(data, 100, want);
	ck_assert_int_eq(ckpt_sha256_init(&a, NULL), 0);
	ckpt_sha256_update2(&a, data, &a, data, 100);
	ck_assert_int_eq(ckpt_sha256_final(&a, got, NULL), 0);
	ck_assert_mem_eq(want, got, 32);
}
END_TEST

START_TEST(test_sha256_release_without_final)
{
	struct ckpt_sha256 a;

	/* Under ASan this would report the leak of a libcrypto context. */
	setenv("CKPT_SHA256_KERNEL", "portable", 1);
	ckpt_sha256_reset_kernel();
	ck_assert_int_eq(ckpt_sha256_init(&a, NULL), 0);
	ck_assert_ptr_nonnull(a.lib);
	ckpt_sha256_update(&a, "abc", 3);
	ckpt_sha256_release(&a);
	ck_assert_ptr_null(a.lib);
	unsetenv("CKPT_SHA256_KERNEL");
	ckpt_sha256_reset_kernel();
}
END_TEST

Suite *
sha256_suite(void)
{
	Suite *s = suite_create("sha256");

	TCASE(s, "streams", NULL, NULL, test_sha256_lengths,
	    test_sha256_pairs, test_sha256_portable_path,
	    test_sha256_same_stream_twice, test_sha256_release_without_final);
	return s;
}
