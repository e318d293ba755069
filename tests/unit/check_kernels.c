/* SPDX-License-Identifier: MIT */
/*
 * check_kernels.c - the numeric kernels (lib/format/kernels.c): the SIMD
 * and portable paths agree to the last bit, for decoding and for every
 * reduction; statistics and comparisons equal a naive long double oracle
 * whatever block boundary a NaN, an infinity or a zero falls on; the
 * numpy.isclose rule holds exactly at atol + rtol * |b|.
 */
#include "unit.h"

#include <math.h>

#include "format/kernels.h"

static void
force_kernel(bool portable)
{
	if (portable)
		setenv("CKPT_NUMERIC_KERNEL", "portable", 1);
	else
		unsetenv("CKPT_NUMERIC_KERNEL");
	ckpt_numeric_reset_kernel();
}

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint64_t
rnd(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return rng_state;
}

/* Random doubles of mixed sign and magnitude, some zero. */
static double
rvalue(void)
{
	uint64_t r = rnd();
	double x = (double)(r >> 11) / 9007199254740992.0 - 0.5;

	if (r % 17 == 0)
		return r % 2 ? 0.0 : -0.0;
	return x * ldexp(1.0, (int)(r % 40) - 20);
}

static bool
same_bits(double a, double b)
{
	return !memcmp(&a, &b, sizeof(a));
}

/* Every 16-bit pattern of F16, BF16 and C32, random F32 and C64 bit
 * patterns (NaN payloads included): both paths decode alike. */
START_TEST(test_decode_paths_agree)
{
	static const enum ckpt_dtype dts[] = { CKPT_DTYPE_F16,
	    CKPT_DTYPE_BF16, CKPT_DTYPE_C32, CKPT_DTYPE_F32, CKPT_DTYPE_C64 };
	enum { N = 65536 + 13 };
	static unsigned char raw[8 * N];
	static double d1[2 * N], d2[2 * N];

	for (size_t i = 0; i < sizeof(raw); i += 2) {
		uint64_t r = i / 2 < 65536 ? i / 2 : rnd();

		raw[i] = (unsigned char)r;
		raw[i + 1] = (unsigned char)(r >> 8);
	}
	for (size_t k = 0; k < CKPT_ARRAY_SIZE(dts); k++) {
		size_t n = N * 16 / ckpt_dtype_bits(dts[k]);

		n = n > N ? N : n;
		force_kernel(false);
		ck_assert_int_eq(ckpt_dtype_to_f64(dts[k], raw, n, d1), 0);
		force_kernel(true);
		ck_assert_str_eq(ckpt_numeric_kernel(), "portable");
		ck_assert_int_eq(ckpt_dtype_to_f64(dts[k], raw, n, d2), 0);
		ck_assert_msg(!memcmp(d1, d2, n * ckpt_dtype_components(dts[k]) *
		    sizeof(double)), "%s decodes differently",
		    ckpt_dtype_name(dts[k]));
	}
	force_kernel(false);
}
END_TEST

/* A naive oracle: long double sums over the finite values. */
static void
oracle_stats(const double *v, size_t n, struct ckpt_tensor_stats *st)
{
	long double sum = 0, m2 = 0, mean;

	ckpt_tensor_stats_init(st);
	st->count = n;
	for (size_t i = 0; i < n; i++) {
		double x = v[i];

		if (isnan(x)) {
			st->nan++;
		} else if (isinf(x)) {
			if (x > 0)
				st->pos_inf++;
			else
				st->neg_inf++;
		} else {
			if (!st->finite || x < st->min)
				st->min = x;
			if (!st->finite || x > st->max)
				st->max = x;
			st->zeros += x == 0;
			st->finite++;
			sum += x;
		}
	}
	if (!st->finite)
		return;
	mean = sum / st->finite;
	for (size_t i = 0; i < n; i++)
		if (isfinite(v[i]))
			m2 += (v[i] - mean) * (v[i] - mean);
	st->mean = (double)mean;
	st->std = sqrt((double)(m2 / st->finite));
}

static void
assert_close(double got, double want, double rel, const char *what)
{
	ck_assert_msg(got == want || fabs(got - want) <= rel * fabs(want) +
	    1e-300 || (isnan(got) && isnan(want)), "%s %.17g, wanted %.17g", what, got,
	    want);
}

/*
 * ckpt_tensor_stats_add of n values (into *g) against the oracle: counts
 * exact, min and max exact (a zero of either sign for a zero), mean and
 * std within their relative tolerances.
 */
static void
check_against_oracle(const double *d, size_t n, double mean_rel,
    double std_rel, struct ckpt_tensor_stats *g)
{
	struct ckpt_tensor_stats o;

	oracle_stats(d, n, &o);
	ckpt_tensor_stats_init(g);
	ckpt_tensor_stats_add(g, d, n);
	ck_assert_uint_eq(g->count, o.count);
	ck_assert_uint_eq(g->finite, o.finite);
	ck_assert_uint_eq(g->nan, o.nan);
	ck_assert_uint_eq(g->pos_inf, o.pos_inf);
	ck_assert_uint_eq(g->neg_inf, o.neg_inf);
	ck_assert_uint_eq(g->zeros, o.zeros);
	if (!o.finite)
		return;
	ck_assert(g->min == o.min && g->max == o.max);
	assert_close(g->mean, o.mean, mean_rel, "mean");
	assert_close(g->std, o.std, std_rel, "std");
}

/*
 * Specials on and around every block boundary, for lengths around
 * multiples of the block and of the lanes: counts exact, min and max
 * exact, mean and std to 1e-13; both paths give the same bits.
 */
START_TEST(test_stats_block_boundaries)
{
	static const size_t lens[] = { 0, 1, 7, 8, 9, 1023, 1024, 1025, 2047,
	    2048, 2049, 3 * 1024 + 5 };
	static double v[4 * 1024];

	for (size_t li = 0; li < CKPT_ARRAY_SIZE(lens); li++) {
		size_t n = lens[li];

		size_t pos_list[64], np = 0;

		/* the first lanes, both sides of each block boundary, the end */
		for (size_t i = 0; i < 10 && i < n; i++)
			pos_list[np++] = i;
		for (size_t kb = 1024; kb < n + 2; kb += 1024)
			for (size_t d = kb - 2; d < kb + 2 && d < n; d++)
				pos_list[np++] = d;
		if (n)
			pos_list[np++] = n - 1;
		for (size_t pi = 0; pi < np; pi++) {
			size_t pos = pos_list[pi];
			struct ckpt_tensor_stats a, b;
			static const double sp[] = { NAN, INFINITY, -INFINITY,
			    0.0, -0.0, 1e300 };

			for (size_t i = 0; i < n; i++)
				v[i] = rvalue();
			v[pos] = sp[pos % CKPT_ARRAY_SIZE(sp)];
			if (pos + 1 < n)
				v[pos + 1] = -NAN;
			force_kernel(false);
			check_against_oracle(v, n, 1e-13, 1e-13, &a);
			force_kernel(true);
			check_against_oracle(v, n, 1e-13, 1e-13, &b);
			unit_assert_stats_same(&a, &b);
		}
	}
	force_kernel(false);
}
END_TEST

/* Random floats of mixed sign and magnitude, with zeros and subnormals. */
static float
rfloat(void)
{
	uint64_t r = rnd();

	if (r % 23 == 0)
		return (r >> 8) % 2 ? 1e-45f * (float)((r >> 9) % 64) :
		    -1e-40f;	/* subnormals */
	return (float)rvalue();
}

/* Little-endian bytes of n floats and their exact doubles. */
static void
f32_bytes(const float *f, size_t n, unsigned char *raw, double *d)
{
	for (size_t i = 0; i < n; i++) {
		uint32_t u;

		memcpy(&u, &f[i], 4);
		for (unsigned b = 0; b < 4; b++)
			raw[4 * i + b] = (unsigned char)(u >> (8 * b));
		d[i] = f[i];
	}
}

/* F32 straight from the bytes, on both paths, against the general
 * kernel on the decoded doubles: the same bits. */
static void
check_f32_block(const float *f, size_t n)
{
	static unsigned char raw[4 * CKPT_KBLOCK];
	static double d[CKPT_KBLOCK];
	struct ckpt_tensor_stats want, simd, port;

	f32_bytes(f, n, raw, d);
	force_kernel(false);
	ckpt_kstats_block(d, n, &want);
	ck_assert(ckpt_kstats_f32_block(raw, n, &simd));
	force_kernel(true);
	ck_assert(ckpt_kstats_f32_block(raw, n, &port));
	force_kernel(false);
	unit_assert_stats_same(&simd, &want);
	unit_assert_stats_same(&port, &want);
}

/*
 * Every length from 0 to a whole block (so every tail of the 8-value
 * SIMD steps), finite values with zeros and subnormals, then a NaN
 * (payloads, negative), an infinity, a signed zero, a subnormal or
 * FLT_MAX at the start, the middle and the end, and blocks of nothing
 * but specials.
 */
START_TEST(test_f32_block_straight)
{
	static const uint32_t sp[] = { 0x7fc00000, 0xffc00001, 0x7f800001,
	    0x7f800000, 0xff800000, 0x00000000, 0x80000000, 0x00000001,
	    0x807fffff, 0x7f7fffff, 0xff7fffff };
	static float f[CKPT_KBLOCK];

	for (size_t n = 0; n <= CKPT_KBLOCK; n++) {
		for (size_t i = 0; i < n; i++)
			f[i] = rfloat();
		check_f32_block(f, n);
		for (size_t w = 0; n && w < 3; w++) {
			size_t pos = w == 0 ? 0 : w == 1 ? n / 2 : n - 1;
			float keep = f[pos];

			memcpy(&f[pos], &sp[(n + w) % CKPT_ARRAY_SIZE(sp)], 4);
			check_f32_block(f, n);
			f[pos] = keep;
		}
	}
	/* +0 and -0 only: which zero min and max keep is the lanes' */
	for (size_t n = 1; n <= 64; n++) {
		for (size_t i = 0; i < CKPT_KBLOCK; i++)
			f[i] = rnd() % 2 ? 0.0f : -0.0f;
		check_f32_block(f, n);
		check_f32_block(f, CKPT_KBLOCK - n);
	}
	for (size_t k = 0; k < CKPT_ARRAY_SIZE(sp); k++) {
		for (size_t i = 0; i < CKPT_KBLOCK; i++)
			memcpy(&f[i], &sp[(i + k) % CKPT_ARRAY_SIZE(sp)], 4);
		check_f32_block(f, CKPT_KBLOCK - k);
		for (size_t i = 0; i < CKPT_KBLOCK; i++)
			memcpy(&f[i], &sp[k], 4);
		check_f32_block(f, CKPT_KBLOCK - 3 * k);
	}
}
END_TEST

/*
 * Blocks where non-finite values are common (random bits: one F32 in
 * 256 is a NaN or an infinity, so nearly every block of 1024 holds
 * one; F64 with a quarter of NaNs of any payload and sign, and
 * infinities): the path that counts them and reduces the rest, on every
 * length, against the oracle, both kernels giving the same bits.
 */
START_TEST(test_blocks_full_of_specials)
{
	static unsigned char raw[4 * CKPT_KBLOCK];
	static double d[CKPT_KBLOCK];
	struct ckpt_tensor_stats simd, port, want;

	for (size_t n = 1; n <= CKPT_KBLOCK; n += n < 40 ? 1 : 37) {
		for (size_t i = 0; i < n; i++) {
			uint32_t u = (uint32_t)rnd();
			float f;

			memcpy(&f, &u, 4);
			memcpy(raw + 4 * i, &u, 4);	/* little-endian */
			d[i] = f;
		}
		force_kernel(false);
		ck_assert(ckpt_kstats_f32_block(raw, n, &simd));
		ckpt_kstats_block(d, n, &want);
		force_kernel(true);
		ck_assert(ckpt_kstats_f32_block(raw, n, &port));
		force_kernel(false);
		unit_assert_stats_same(&simd, &want);
		unit_assert_stats_same(&port, &want);
		check_against_oracle(d, n, 1e-12, 1e-9, &want);

		for (size_t i = 0; i < n; i++) {
			uint64_t r = rnd(), u;

			if (r % 4) {
				d[i] = rvalue() * 1e6;
				continue;
			}
			/* all exponent bits: an infinity (payload 0) or NaN */
			u = (r & (UINT64_C(1) << 63)) | UINT64_C(0x7ff) << 52 |
			    ((r >> 2) % 3 ? (rnd() & ((UINT64_C(1) << 52) - 1)) :
			    0);
			memcpy(&d[i], &u, 8);
		}
		force_kernel(false);
		ckpt_kstats_block(d, n, &simd);
		force_kernel(true);
		ckpt_kstats_block(d, n, &port);
		force_kernel(false);
		unit_assert_stats_same(&simd, &port);
		check_against_oracle(d, n, 1e-12, 1e-9, &port);
	}
}
END_TEST

/* Large offset, small spread, a million values: the pairwise tree
 * keeps the mean and std to within a few ulps of the oracle. */
START_TEST(test_stats_accuracy)
{
	enum { N = 1 << 20 };
	static double v[N];
	struct ckpt_tensor_stats a, o;

	for (size_t i = 0; i < N; i++)
		v[i] = 1e9 + rvalue() * 1e-3;
	oracle_stats(v, N, &o);
	ckpt_tensor_stats_init(&a);
	ckpt_tensor_stats_add(&a, v, N);
	assert_close(a.mean, o.mean, 1e-15, "mean");
	assert_close(a.std, o.std, 1e-9, "std");
}
END_TEST

/* numpy.isclose on float64, element by element. */
static void
oracle_compare(const double *a, const double *b, size_t n,
    const struct ckpt_compare_options *op, struct ckpt_compare_stats *st)
{
	long double sabs = 0, ssq = 0, sa2 = 0, sb2 = 0, sab = 0;

	ckpt_compare_stats_init(st);
	for (size_t i = 0; i < n; i++) {
		double x = a[i], y = b[i];
		bool na = isnan(x), nb = isnan(y), close;

		st->count++;
		st->nan_a += na;
		st->nan_b += nb;
		st->nan_both += na && nb;
		st->pos_inf_a += x == INFINITY;
		st->neg_inf_a += x == -INFINITY;
		st->pos_inf_b += y == INFINITY;
		st->neg_inf_b += y == -INFINITY;
		st->unequal += !(x == y || (na && nb));
		if (isfinite(x) && isfinite(y)) {
			double d = x - y;

			close = fabs(d) <= op->atol + op->rtol * fabs(y);
			st->finite++;
			if (fabs(d) > st->max_abs)
				st->max_abs = fabs(d);
			sabs += fabs(d);
			ssq += (long double)d * d;
			sa2 += (long double)x * x;
			sb2 += (long double)y * y;
			sab += (long double)x * y;
		} else if (na || nb) {
			close = na && nb && op->equal_nan;
		} else {
			close = x == y;
		}
		st->beyond += !close;
	}
	st->sum_abs = (double)sabs;
	st->sum_sq = (double)ssq;
	st->sum_a2 = (double)sa2;
	st->sum_b2 = (double)sb2;
	st->sum_ab = (double)sab;
}

static void
assert_compare(const struct ckpt_compare_stats *g,
    const struct ckpt_compare_stats *w, double rel)
{
	ck_assert_uint_eq(g->count, w->count);
	ck_assert_uint_eq(g->unequal, w->unequal);
	ck_assert_uint_eq(g->beyond, w->beyond);
	ck_assert_uint_eq(g->finite, w->finite);
	ck_assert_uint_eq(g->nan_a, w->nan_a);
	ck_assert_uint_eq(g->nan_b, w->nan_b);
	ck_assert_uint_eq(g->nan_both, w->nan_both);
	ck_assert_uint_eq(g->pos_inf_a, w->pos_inf_a);
	ck_assert_uint_eq(g->neg_inf_b, w->neg_inf_b);
	ck_assert(same_bits(g->max_abs, w->max_abs));
	assert_close(g->sum_abs, w->sum_abs, rel, "sum_abs");
	assert_close(g->sum_sq, w->sum_sq, rel, "sum_sq");
	assert_close(g->sum_a2, w->sum_a2, rel, "sum_a2");
	assert_close(g->sum_b2, w->sum_b2, rel, "sum_b2");
	assert_close(g->sum_ab, w->sum_ab, rel, "sum_ab");
}

START_TEST(test_compare_boundaries)
{
	enum { N = 3 * 1024 + 5 };
	static double a[N], b[N];
	struct ckpt_compare_options op = CKPT_COMPARE_OPTIONS_INIT;

	for (size_t pos = 0; pos < N; pos += pos % 1024 < 1020 ?
	    1020 - pos % 1024 : 1) {
		struct ckpt_compare_stats g1, g2, w;

		for (size_t i = 0; i < N; i++) {
			a[i] = rvalue();
			b[i] = i % 3 ? a[i] : a[i] + rvalue() * 1e-6;
		}
		a[pos] = pos % 2 ? NAN : INFINITY;
		b[pos] = pos % 4 < 2 ? NAN : INFINITY;
		op.equal_nan = pos % 3 == 0;
		oracle_compare(a, b, N, &op, &w);
		force_kernel(false);
		ckpt_compare_stats_init(&g1);
		ck_assert_int_eq(ckpt_compare_values(CKPT_DTYPE_F64, a,
		    CKPT_DTYPE_F64, b, N, &op, &g1), 0);
		force_kernel(true);
		ckpt_compare_stats_init(&g2);
		ck_assert_int_eq(ckpt_compare_values(CKPT_DTYPE_F64, a,
		    CKPT_DTYPE_F64, b, N, &op, &g2), 0);
		ck_assert(!memcmp(&g1, &g2, sizeof(g1)));
		assert_compare(&g1, &w, 1e-13);
	}
	force_kernel(false);
}
END_TEST

/*
 * The tolerance rule exactly at its boundary: |a - b| == atol + rtol *
 * |b| is close, one ulp beyond is not (values chosen so that every step
 * is exact in float64).
 */
START_TEST(test_compare_tolerance_edge)
{
	double b[] = { 1.0, 2.0, -4.0, 0.0, 8.0, 8.0 };
	double a[] = { 1.375, 2.5, -4.625, 0.125, 9.0, INFINITY };
	struct ckpt_compare_options op = {
	    .version = CKPT_COMPARE_OPTIONS_VERSION, .atol = 0.125, .rtol = 0.25 };
	struct ckpt_compare_stats st;

	/* atol + rtol|b|: 0.375, 0.625, 1.125, 0.125, 2.125 */
	a[1] = nextafter(2.0 + 0.625, 10);
	for (int path = 0; path < 2; path++) {
		force_kernel(path);
		ckpt_compare_stats_init(&st);
		ck_assert_int_eq(ckpt_compare_values(CKPT_DTYPE_F64, a,
		    CKPT_DTYPE_F64, b, 6, &op, &st), 0);
		/* beyond: a[1] (one ulp over) and a[5] (Inf vs 8) */
		ck_assert_uint_eq(st.beyond, 2);
		ck_assert_uint_eq(st.unequal, 6);
		ck_assert_uint_eq(st.finite, 5);
		ck_assert_uint_eq(st.pos_inf_a, 1);
	}
	force_kernel(false);
}
END_TEST

/* Different dtypes of the same values: BF16 against F32, exact. */
START_TEST(test_compare_across_dtypes)
{
	float f[1030];
	unsigned char bf[2 * 1030];
	struct ckpt_compare_options op = {
	    .version = CKPT_COMPARE_OPTIONS_VERSION };
	struct ckpt_compare_stats st;

	for (int i = 0; i < 1030; i++) {
		uint32_t u;

		f[i] = (float)(i % 256 - 128) * 0.5f;	/* 8 bits: exact in BF16 */
		memcpy(&u, &f[i], 4);
		bf[2 * i] = (unsigned char)(u >> 16);
		bf[2 * i + 1] = (unsigned char)(u >> 24);
	}
	ckpt_compare_stats_init(&st);
	ck_assert_int_eq(ckpt_compare_values(CKPT_DTYPE_F32, f,
	    CKPT_DTYPE_BF16, bf, 1030, &op, &st), 0);
	ck_assert_uint_eq(st.unequal, 0);
	ck_assert_uint_eq(st.beyond, 0);
	ck_assert(st.sum_ab == st.sum_a2);
	ck_assert_int_eq(ckpt_compare_values(CKPT_DTYPE_C64, f,
	    CKPT_DTYPE_F32, f, 2, &op, &st), CKPT_ERR_UNSUPPORTED);
}
END_TEST

Suite *
kernels_suite(void)
{
	Suite *s = suite_create("kernels");

	TCASE(s, "kernels", NULL, NULL, test_decode_paths_agree,
	    test_stats_block_boundaries, test_stats_accuracy,
	    test_f32_block_straight, test_blocks_full_of_specials,
	    test_compare_boundaries, test_compare_tolerance_edge,
	    test_compare_across_dtypes);
	return s;
}
