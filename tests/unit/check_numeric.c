/* SPDX-License-Identifier: MIT */
/*
 * check_numeric.c - element decoders against known bit patterns and
 * independent oracles (the compiler's _Float16 for F16, F16's top byte for
 * F8_E5M2), the NaN/Inf rules of each 8-bit format, and the statistics:
 * merging partial results equals one pass, and a multi-chunk tensor read
 * from a file gives the numbers computed here.
 */
#include "unit.h"

#include <math.h>

#include "format/kernels.h"

static double
dec1(enum ckpt_dtype dt, const void *p)
{
	double d[2];

	ck_assert_int_eq(ckpt_dtype_to_f64(dt, p, 1, d), 0);
	return d[0];
}

static double
dec8(enum ckpt_dtype dt, unsigned b)
{
	unsigned char c = (unsigned char)b;

	return dec1(dt, &c);
}

/* Same value, NaN equal to NaN, and -0 distinct from +0. */
static bool
same(double a, double b)
{
	if (isnan(a) || isnan(b))
		return isnan(a) && isnan(b);
	return a == b && signbit(a) == signbit(b);
}

#define ASSERT_SAME(a, b) \
	ck_assert_msg(same((a), (b)), "%s = %.17g, wanted %.17g", #a, \
	    (double)(a), (double)(b))

START_TEST(test_f16_exhaustive)
{
	static unsigned char le[2 * 65536];
	static double d[65536];
	unsigned char top[256];
	double t[256];

	/* all 65,536 patterns in one call, compared outside ck_assert (a
	 * Check assertion per value is slow under sanitizers) */
	for (unsigned b = 0; b < 65536; b++) {
		le[2 * b] = (unsigned char)b;
		le[2 * b + 1] = (unsigned char)(b >> 8);
	}
	ck_assert_int_eq(ckpt_dtype_to_f64(CKPT_DTYPE_F16, le, 65536, d), 0);
	for (unsigned b = 0; b < 256; b++)
		top[b] = (unsigned char)b;
	ck_assert_int_eq(ckpt_dtype_to_f64(CKPT_DTYPE_F8_E5M2, top, 256, t),
	    0);
	for (unsigned b = 0; b < 65536; b++) {
#if defined(__FLT16_MAX__)
		uint16_t v = (uint16_t)b;
		_Float16 h;

		memcpy(&h, &v, 2);
		if (!same(d[b], (double)h))
			ck_abort_msg("F16 0x%04x: %.17g, wanted %.17g", b, d[b],
			    (double)h);
#endif
		/* F8_E5M2 is F16's top byte */
		if (!(b & 0xff) && !same(t[b >> 8], d[b]))
			ck_abort_msg("F8_E5M2 0x%02x: %.17g, wanted %.17g",
			    b >> 8, t[b >> 8], d[b]);
	}
	{
		unsigned char one[2] = { 0x00, 0x3c }, sub[2] = { 0x01, 0x00 },
		    max[2] = { 0xff, 0x7b }, inf[2] = { 0x00, 0xfc };

		ASSERT_SAME(dec1(CKPT_DTYPE_F16, one), 1.0);
		ASSERT_SAME(dec1(CKPT_DTYPE_F16, sub), ldexp(1, -24));
		ASSERT_SAME(dec1(CKPT_DTYPE_F16, max), 65504.0);
		ASSERT_SAME(dec1(CKPT_DTYPE_F16, inf), -INFINITY);
	}
}
END_TEST

START_TEST(test_bf16)
{
	unsigned char v[][2] = { { 0x80, 0x3f }, { 0x40, 0xc0 },
		{ 0x80, 0x7f }, { 0x80, 0xff }, { 0xc0, 0x7f }, { 0x49, 0x40 },
		{ 0x01, 0x00 }, { 0x7f, 0x7f } };
	/* 0x7f7f is BF16's largest finite value, (2 - 2^-7) * 2^127 */
	double want[] = { 1.0, -3.0, INFINITY, -INFINITY, NAN, 3.140625,
		ldexp(1, -133), ldexp(255, 120) };

	for (size_t i = 0; i < CKPT_ARRAY_SIZE(want); i++)
		ASSERT_SAME(dec1(CKPT_DTYPE_BF16, v[i]), want[i]);
}
END_TEST

static void
count_specials(enum ckpt_dtype dt, unsigned *nan, unsigned *inf,
    unsigned *negzero, double *max)
{
	*nan = *inf = *negzero = 0;
	*max = 0;
	for (unsigned b = 0; b < 256; b++) {
		double x = dec8(dt, b);

		if (isnan(x))
			(*nan)++;
		else if (isinf(x))
			(*inf)++;
		else if (x == 0 && signbit(x))
			(*negzero)++;
		else if (x > *max)
			*max = x;
	}
}

START_TEST(test_f8_e4m3fn)
{
	unsigned nan, inf, nz;
	double max;

	count_specials(CKPT_DTYPE_F8_E4M3, &nan, &inf, &nz, &max);
	ck_assert_uint_eq(nan, 2);	/* S.1111.111 only */
	ck_assert_uint_eq(inf, 0);
	ck_assert_uint_eq(nz, 1);
	ASSERT_SAME(max, 448.0);
	ck_assert(isnan(dec8(CKPT_DTYPE_F8_E4M3, 0x7f)));
	ck_assert(isnan(dec8(CKPT_DTYPE_F8_E4M3, 0xff)));
	ASSERT_SAME(dec8(CKPT_DTYPE_F8_E4M3, 0x38), 1.0);
	ASSERT_SAME(dec8(CKPT_DTYPE_F8_E4M3, 0x78), 256.0);
	ASSERT_SAME(dec8(CKPT_DTYPE_F8_E4M3, 0x08), ldexp(1, -6));
	ASSERT_SAME(dec8(CKPT_DTYPE_F8_E4M3, 0x07), 7 * ldexp(1, -9));
	ASSERT_SAME(dec8(CKPT_DTYPE_F8_E4M3, 0x01), ldexp(1, -9));
	ASSERT_SAME(dec8(CKPT_DTYPE_F8_E4M3, 0xfe), -448.0);
	ASSERT_SAME(dec8(CKPT_DTYPE_F8_E4M3, 0x80), -0.0);
}
END_TEST

START_TEST(test_f8_e5m2)
{
	unsigned nan, inf, nz;
	double max;

	count_specials(CKPT_DTYPE_F8_E5M2, &nan, &inf, &nz, &max);
	ck_assert_uint_eq(nan, 6);
	ck_assert_uint_eq(inf, 2);
	ck_assert_uint_eq(nz, 1);
	ASSERT_SAME(max, 57344.0);
	ASSERT_SAME(dec8(CKPT_DTYPE_F8_E5M2, 0x7c), INFINITY);
	ASSERT_SAME(dec8(CKPT_DTYPE_F8_E5M2, 0xfc), -INFINITY);
	ASSERT_SAME(dec8(CKPT_DTYPE_F8_E5M2, 0x01), ldexp(1, -16));
}
END_TEST

START_TEST(test_f8_fnuz)
{
	unsigned nan, inf, nz;
	double max;

	count_specials(CKPT_DTYPE_F8_E4M3FNUZ, &nan, &inf, &nz, &max);
	ck_assert_uint_eq(nan, 1);
	ck_assert_uint_eq(inf, 0);
	ck_assert_uint_eq(nz, 0);
	ASSERT_SAME(max, 240.0);
	ck_assert(isnan(dec8(CKPT_DTYPE_F8_E4M3FNUZ, 0x80)));
	ASSERT_SAME(dec8(CKPT_DTYPE_F8_E4M3FNUZ, 0x40), 1.0);
	ASSERT_SAME(dec8(CKPT_DTYPE_F8_E4M3FNUZ, 0xff), -240.0);
	ASSERT_SAME(dec8(CKPT_DTYPE_F8_E4M3FNUZ, 0x01), ldexp(1, -10));
	ASSERT_SAME(dec8(CKPT_DTYPE_F8_E4M3FNUZ, 0x00), 0.0);

	count_specials(CKPT_DTYPE_F8_E5M2FNUZ, &nan, &inf, &nz, &max);
	ck_assert_uint_eq(nan, 1);
	ck_assert_uint_eq(inf, 0);
	ck_assert_uint_eq(nz, 0);
	ASSERT_SAME(max, 57344.0);
	ck_assert(isnan(dec8(CKPT_DTYPE_F8_E5M2FNUZ, 0x80)));
	ASSERT_SAME(dec8(CKPT_DTYPE_F8_E5M2FNUZ, 0x40), 1.0);
	ASSERT_SAME(dec8(CKPT_DTYPE_F8_E5M2FNUZ, 0x7c), 32768.0);
	ASSERT_SAME(dec8(CKPT_DTYPE_F8_E5M2FNUZ, 0x01), ldexp(1, -17));
}
END_TEST

START_TEST(test_f8_e8m0)
{
	for (unsigned b = 0; b < 255; b++)
		ASSERT_SAME(dec8(CKPT_DTYPE_F8_E8M0, b), ldexp(1, (int)b - 127));
	ck_assert(isnan(dec8(CKPT_DTYPE_F8_E8M0, 0xff)));
}
END_TEST

START_TEST(test_f4)
{
	static const double want[16] = { 0, 0.5, 1, 1.5, 2, 3, 4, 6,
		-0.0, -0.5, -1, -1.5, -2, -3, -4, -6 };
	unsigned char packed[8];
	double d[16];

	/* element 2k in the low nibble, 2k+1 in the high one */
	for (int k = 0; k < 8; k++)
		packed[k] = (unsigned char)((2 * k) | ((2 * k + 1) << 4));
	ck_assert_int_eq(ckpt_dtype_to_f64(CKPT_DTYPE_F4, packed, 16, d), 0);
	for (int i = 0; i < 16; i++)
		ASSERT_SAME(d[i], want[i]);
}
END_TEST

START_TEST(test_f6)
{
	unsigned char packed[48];
	double d[64], max = 0;
	int nonfinite = 0;

	/* 64 codes, four per little-endian 24-bit word */
	for (int w = 0; w < 16; w++) {
		uint32_t v = 0;

		for (int k = 0; k < 4; k++)
			v |= (uint32_t)(4 * w + k) << (6 * k);
		packed[3 * w] = (unsigned char)v;
		packed[3 * w + 1] = (unsigned char)(v >> 8);
		packed[3 * w + 2] = (unsigned char)(v >> 16);
	}
	ck_assert_int_eq(ckpt_dtype_to_f64(CKPT_DTYPE_F6_E2M3, packed, 64, d),
	    0);
	for (int i = 0; i < 64; i++) {
		nonfinite += !isfinite(d[i]);
		max = d[i] > max ? d[i] : max;
	}
	ck_assert_int_eq(nonfinite, 0);
	ASSERT_SAME(max, 7.5);
	ASSERT_SAME(d[0x08], 1.0);
	ASSERT_SAME(d[0x01], 0.125);
	ASSERT_SAME(d[0x07], 0.875);
	ASSERT_SAME(d[0x3f], -7.5);
	ASSERT_SAME(d[0x20], -0.0);

	ck_assert_int_eq(ckpt_dtype_to_f64(CKPT_DTYPE_F6_E3M2, packed, 64, d),
	    0);
	max = 0;
	for (int i = 0; i < 64; i++) {
		nonfinite += !isfinite(d[i]);
		max = d[i] > max ? d[i] : max;
	}
	ck_assert_int_eq(nonfinite, 0);
	ASSERT_SAME(max, 28.0);
	ASSERT_SAME(d[0x0c], 1.0);
	ASSERT_SAME(d[0x01], 0.0625);
	ASSERT_SAME(d[0x04], 0.25);
	ASSERT_SAME(d[0x3f], -28.0);
}
END_TEST

START_TEST(test_integers_and_complex)
{
	unsigned char i8[] = { 0x80, 0x7f, 0xff };
	unsigned char u16[] = { 0xff, 0xff, 0x01, 0x00 };
	unsigned char i64[] = { 0, 0, 0, 0, 0, 0, 0, 0x80 };
	unsigned char u64[] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };
	unsigned char b[] = { 0, 1, 7 };
	float c64[] = { 1.5f, -2.0f, NAN, INFINITY };
	double cd[] = { 0.25, -0.5 };
	uint16_t c32[] = { 0x3c00, 0xc000 };
	double d[4];

	ck_assert_int_eq(ckpt_dtype_to_f64(CKPT_DTYPE_I8, i8, 3, d), 0);
	ASSERT_SAME(d[0], -128.0);
	ASSERT_SAME(d[1], 127.0);
	ASSERT_SAME(d[2], -1.0);
	ck_assert_int_eq(ckpt_dtype_to_f64(CKPT_DTYPE_U16, u16, 2, d), 0);
	ASSERT_SAME(d[0], 65535.0);
	ASSERT_SAME(d[1], 1.0);
	ck_assert_int_eq(ckpt_dtype_to_f64(CKPT_DTYPE_I64, i64, 1, d), 0);
	ASSERT_SAME(d[0], -ldexp(1, 63));
	ck_assert_int_eq(ckpt_dtype_to_f64(CKPT_DTYPE_U64, u64, 1, d), 0);
	ASSERT_SAME(d[0], ldexp(1, 64));
	ck_assert_int_eq(ckpt_dtype_to_f64(CKPT_DTYPE_BOOL, b, 3, d), 0);
	ASSERT_SAME(d[2], 1.0);
	ck_assert_uint_eq(ckpt_dtype_components(CKPT_DTYPE_C64), 2);
	ck_assert_uint_eq(ckpt_dtype_components(CKPT_DTYPE_F32), 1);
	ck_assert_int_eq(ckpt_dtype_to_f64(CKPT_DTYPE_C64, c64, 2, d), 0);
	ASSERT_SAME(d[0], 1.5);
	ASSERT_SAME(d[1], -2.0);
	ck_assert(isnan(d[2]));
	ASSERT_SAME(d[3], INFINITY);
	ck_assert_int_eq(ckpt_dtype_to_f64(CKPT_DTYPE_C128, cd, 1, d), 0);
	ASSERT_SAME(d[0], 0.25);
	ASSERT_SAME(d[1], -0.5);
	ck_assert_int_eq(ckpt_dtype_to_f64(CKPT_DTYPE_C32, c32, 1, d), 0);
	ASSERT_SAME(d[0], 1.0);
	ASSERT_SAME(d[1], -2.0);
	ck_assert_int_eq(ckpt_dtype_to_f64(CKPT_DTYPE_QU4X2, b, 1, d),
	    CKPT_ERR_UNSUPPORTED);
	ck_assert_int_eq(ckpt_dtype_to_f64(CKPT_DTYPE_COUNT, b, 1, d),
	    CKPT_ERR_UNSUPPORTED);
}
END_TEST

START_TEST(test_stats_basic)
{
	double v[] = { 1, 2, 3, 4, NAN, INFINITY, -INFINITY, 0, -0.0 };
	struct ckpt_tensor_stats st;

	ckpt_tensor_stats_init(&st);
	ck_assert(isnan(st.mean));
	ckpt_tensor_stats_add(&st, v, CKPT_ARRAY_SIZE(v));
	ck_assert_uint_eq(st.count, 9);
	ck_assert_uint_eq(st.finite, 6);
	ck_assert_uint_eq(st.nan, 1);
	ck_assert_uint_eq(st.pos_inf, 1);
	ck_assert_uint_eq(st.neg_inf, 1);
	ck_assert_uint_eq(st.zeros, 2);
	ck_assert(st.min == 0);
	ASSERT_SAME(st.max, 4.0);
	ASSERT_SAME(st.mean, 10.0 / 6);
	ck_assert_double_eq_tol(st.std, sqrt((2 * (10.0 / 6) * (10.0 / 6) +
	    pow(1 - 10.0 / 6, 2) + pow(2 - 10.0 / 6, 2) +
	    pow(3 - 10.0 / 6, 2) + pow(4 - 10.0 / 6, 2)) / 6), 1e-15);
}
END_TEST

START_TEST(test_stats_merge_equals_one_pass)
{
	enum { N = 10007 };
	static double v[N];
	struct ckpt_tensor_stats whole, parts, p;
	uint64_t x = 88172645463325252ull;

	for (int i = 0; i < N; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		v[i] = 1e6 + (double)(x % 1000000) / 1000.0;
	}
	ckpt_tensor_stats_init(&whole);
	ckpt_tensor_stats_add(&whole, v, N);
	ckpt_tensor_stats_init(&parts);
	for (size_t off = 0; off < N; off += 997) {
		size_t n = N - off < 997 ? N - off : 997;

		ckpt_tensor_stats_init(&p);
		ckpt_tensor_stats_add(&p, v + off, n);
		ckpt_tensor_stats_merge(&parts, &p);
	}
	ck_assert_uint_eq(parts.count, N);
	ck_assert_double_eq_tol(parts.mean, whole.mean, 1e-7);
	ck_assert_double_eq_tol(parts.std, whole.std, 1e-9);
	ASSERT_SAME(parts.min, whole.min);
	ASSERT_SAME(parts.max, whole.max);
	/* large offset, small spread: a naive sum of squares loses it */
	ck_assert_msg(whole.std > 280 && whole.std < 297, "std %g", whole.std);
}
END_TEST

START_TEST(test_stats_from_file)
{
	/* 200,000 F16 elements: several read chunks */
	enum { N = 200000 };
	static unsigned char buf[8 + 128 + 2 * N];
	char hdr[129];
	struct ckpt_tensor_stats st;
	struct ckpt_file *f;
	struct ckpt_error err;
	double sum = 0;
	int hl;

	hl = snprintf(hdr, sizeof(hdr), "{\"h\":{\"dtype\":\"F16\",\"shape\":"
	    "[%d],\"data_offsets\":[0,%d]}}", N, 2 * N);
	memset(hdr + hl, ' ', (size_t)(128 - hl));
	memset(buf, 0, 8);
	buf[0] = 128;
	memcpy(buf + 8, hdr, 128);
	for (int i = 0; i < N; i++) {
		/* values 0, 1, 2, 3 as F16: 0x0000 0x3c00 0x4000 0x4200 */
		static const uint16_t h[] = { 0x0000, 0x3c00, 0x4000, 0x4200 };
		uint16_t e = i == 7 ? 0x7c00 : i == 9 ? 0x7e00 : h[i % 4];

		buf[136 + 2 * i] = (unsigned char)e;
		buf[136 + 2 * i + 1] = (unsigned char)(e >> 8);
		if (i != 7 && i != 9)
			sum += i % 4;
	}
	ck_assert_int_eq(ckpt_file_open(unit_write_file("h.safetensors", buf,
	    sizeof(buf)), 0, &f, &err), 0);
	ck_assert_int_eq(ckpt_tensor_stats(f, ckpt_file_tensor(f, 0), &st,
	    &err), 0);
	ck_assert_uint_eq(st.count, N);
	ck_assert_uint_eq(st.nan, 1);
	ck_assert_uint_eq(st.pos_inf, 1);
	ck_assert_uint_eq(st.zeros, N / 4);
	ASSERT_SAME(st.min, 0.0);
	ASSERT_SAME(st.max, 3.0);
	ck_assert_double_eq_tol(st.mean, sum / (N - 2), 1e-12);
	/* a range in the middle */
	ckpt_tensor_stats_init(&st);
	ck_assert_int_eq(ckpt_tensor_stats_range(f, ckpt_file_tensor(f, 0),
	    65536, 8, &st, &err), 0);
	ck_assert_uint_eq(st.count, 8);
	ASSERT_SAME(st.mean, 1.5);
	ck_assert_int_eq(ckpt_tensor_stats_range(f, ckpt_file_tensor(f, 0),
	    N - 1, 2, &st, &err), CKPT_ERR_INVALID);
	ckpt_file_free(f);
}
END_TEST

/*
 * F32 and C64 are reduced straight from the bytes read (no decoding to
 * doubles): over several reads, with NaN, infinities, signed zeros and
 * subnormals around the read and block boundaries, both kernels give
 * the bits of the general path (ckpt_tensor_stats_add on the decoded
 * values), for the whole tensor and for ranges starting mid-block.
 */
START_TEST(test_stats_f32_from_file)
{
	/* two reads of 256 Ki elements and a tail of 1027 */
	enum { N = 2 * 262144 + 1027, HDR = 256 };
	/* a: N values; c: the first N - 1 of them again, as C64 */
	static unsigned char buf[8 + HDR + 4 * N + 4 * (N - 1)];
	static double d[N];
	static const uint32_t sp[] = { 0x7fc00000, 0xff800000, 0x7f800000,
	    0x80000000, 0x00000000, 0x00000001, 0x807fffff, 0x7f7fffff };
	static const size_t at[] = { 0, 1023, 1024, 262143, 262144, 262145,
	    2 * 262144 - 1, 2 * 262144, N - 1 };
	uint64_t r = 12345;
	char hdr[HDR + 1];
	struct ckpt_file *f;
	struct ckpt_error err;
	int hl;

	hl = snprintf(hdr, sizeof(hdr), "{\"a\":{\"dtype\":\"F32\",\"shape\":"
	    "[%d],\"data_offsets\":[0,%d]},\"c\":{\"dtype\":\"C64\","
	    "\"shape\":[%d],\"data_offsets\":[%d,%d]}}", N, 4 * N, N / 2,
	    4 * N, 4 * N + 4 * (N - 1));
	ck_assert_int_lt(hl, HDR);
	memset(hdr + hl, ' ', (size_t)(HDR - hl));
	memset(buf, 0, 8);
	buf[1] = HDR >> 8;
	memcpy(buf + 8, hdr, HDR);
	for (size_t i = 0; i < N; i++) {
		uint32_t u;
		float x;

		r = r * 6364136223846793005ull + 1442695040888963407ull;
		x = (float)((double)(r >> 11) / 9007199254740992.0 - 0.5) *
		    (float)(1 << (r % 16));
		memcpy(&u, &x, 4);
		for (size_t k = 0; k < CKPT_ARRAY_SIZE(at); k++)
			if (at[k] == i)
				u = sp[k % CKPT_ARRAY_SIZE(sp)];
		memcpy(buf + 8 + HDR + 4 * i, &u, 4);
	}
	memcpy(buf + 8 + HDR + 4 * N, buf + 8 + HDR, 4 * (N - 1));
	ck_assert_int_eq(ckpt_dtype_to_f64(CKPT_DTYPE_F32, buf + 8 + HDR, N,
	    d), 0);
	ck_assert_int_eq(ckpt_file_open(unit_write_file("f.safetensors", buf,
	    sizeof(buf)), 0, &f, &err), 0);
	for (int portable = 0; portable < 2; portable++) {
		struct ckpt_tensor_stats got, want;

		if (portable)
			setenv("CKPT_NUMERIC_KERNEL", "portable", 1);
		ckpt_numeric_reset_kernel();
		/* the whole F32 tensor, the C64 one (N - 1 values), and
		 * ranges that start mid-block */
		for (int k = 0; k < 4; k++) {
			size_t first = k < 2 ? 0 : k == 2 ? 5 : 262140;
			size_t nv = k == 1 ? N - 1 : N - first;

			ckpt_tensor_stats_init(&want);
			ckpt_tensor_stats_add(&want, d + first, nv);
			ckpt_tensor_stats_init(&got);
			ck_assert_int_eq(ckpt_tensor_stats_range(f,
			    ckpt_file_tensor(f, k == 1), first, k == 1 ?
			    nv / 2 : nv, &got, &err), 0);
			unit_assert_stats_same(&got, &want);
		}
	}
	unsetenv("CKPT_NUMERIC_KERNEL");
	ckpt_numeric_reset_kernel();
	ckpt_file_free(f);
}
END_TEST

Suite *
numeric_suite(void)
{
	Suite *s = suite_create("numeric");

	TCASE(s, "decode", NULL, NULL, test_f16_exhaustive, test_bf16,
	    test_f8_e4m3fn, test_f8_e5m2, test_f8_fnuz, test_f8_e8m0, test_f4,
	    test_f6, test_integers_and_complex);
	TCASE(s, "stats", NULL, NULL, test_stats_basic,
	    test_stats_merge_equals_one_pass);
	{
		TCase *tc = tcase_create("file");

		tcase_add_checked_fixture(tc, tmpdir_setup, tmpdir_teardown);
		tcase_add_test(tc, test_stats_from_file);
		tcase_add_test(tc, test_stats_f32_from_file);
		suite_add_tcase(s, tc);
	}
	return s;
}
