/* SPDX-License-Identifier: MIT */
/* check_dtype.c - dtype names round-trip; sizes match safetensors. */
#include "unit.h"

START_TEST(test_dtype_names_round_trip)
{
	for (int i = 0; i <= CKPT_DTYPE_U64; i++) {
		enum ckpt_dtype dt;

		ck_assert_int_eq(ckpt_dtype_from_name(ckpt_dtype_name(i), &dt),
		    0);
		ck_assert_int_eq(dt, i);
	}
}
END_TEST

START_TEST(test_dtype_rejects_other_spellings)
{
	enum ckpt_dtype dt;

	/* Case-sensitive and exact, as the reference reader is. */
	ck_assert_int_eq(ckpt_dtype_from_name("f32", &dt), CKPT_ERR_FORMAT);
	ck_assert_int_eq(ckpt_dtype_from_name("F8_E4M3FN", &dt),
	    CKPT_ERR_FORMAT);
	ck_assert_int_eq(ckpt_dtype_from_name("C128", &dt), CKPT_ERR_FORMAT);
	ck_assert_int_eq(ckpt_dtype_from_name("", &dt), CKPT_ERR_FORMAT);
}
END_TEST

START_TEST(test_dtype_bits)
{
	ck_assert_uint_eq(ckpt_dtype_bits(CKPT_DTYPE_F4), 4);
	ck_assert_uint_eq(ckpt_dtype_bits(CKPT_DTYPE_F6_E3M2), 6);
	ck_assert_uint_eq(ckpt_dtype_bits(CKPT_DTYPE_BF16), 16);
	ck_assert_uint_eq(ckpt_dtype_bits(CKPT_DTYPE_C64), 64);
	ck_assert_uint_eq(ckpt_dtype_bits(CKPT_DTYPE_COUNT), 0);
	ck_assert(ckpt_dtype_is_float(CKPT_DTYPE_F8_E5M2FNUZ));
	ck_assert(!ckpt_dtype_is_float(CKPT_DTYPE_U16));
}
END_TEST

Suite *
dtype_suite(void)
{
	Suite *s = suite_create("dtype");

	TCASE(s, "names", NULL, NULL, test_dtype_names_round_trip,
	    test_dtype_rejects_other_spellings, test_dtype_bits);
	return s;
}
