/* SPDX-License-Identifier: MIT */
/*
 * kernels.c - the one set of numeric kernels: statistics for inspect
 * --stats and verify --numerics, element-wise comparison for diff.
 *
 * Values arrive decoded to float64 in blocks of CKPT_KBLOCK (1024)
 * values, which stay in L1; memory is read once, by the decoder.  F32
 * (and C64) skip the decoding: their statistics read the floats in the
 * read buffer directly (ckpt_kstats_f32_block), to the same bits.  A block
 * is reduced in lanes (8 for statistics, 4 for comparisons), lane k
 * taking the values i with i % lanes == k, and the lanes are summed in a
 * fixed tree.  The AVX2 path keeps each lane in a vector element, the
 * portable path in an array: both add the same values in the same order,
 * so they agree to the last bit (the unit tests check it).  The file is
 * built with -ffp-contract=off semantics (-std=c11), so no multiply-add
 * is fused on one path and not the other.  Lane totals add up with
 * Neumaier's compensation.
 *
 * Every block first runs a fast path that assumes finite values and
 * notices, through sum(x - x) (NaN as soon as one value is NaN or
 * infinite), when that is false; such a block is then classified value
 * by value and its finite values compacted and reduced again.
 *
 * Statistics: per block, a corrected two-pass mean and sum of squared
 * deviations (Chan, Golub and LeVeque 1983: m2 = sum d^2 - (sum d)^2 / n
 * with d = x - mean, both passes over the block in L1); blocks merge with
 * Chan's formula in a pairwise tree (ckpt_kstats_tree), so the error of
 * the mean is about (1024/8 + log2(blocks) + 2) * 2^-53 * max |x|, and of
 * m2 a few times that relative to m2, for any tensor size.
 *
 * CKPT_NUMERIC_KERNEL=portable forces the portable path (tests, and a way
 * out should the SIMD path ever misbehave); CPPFLAGS=-DCKPT_NO_AVX2
 * leaves it out of the build.
 */
#include "util/internal.h"

#include <math.h>
#include <pthread.h>
#include <unistd.h>

#include "format/kernels.h"
#include "util/util.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__)) && \
    !defined(CKPT_NO_AVX2)
#define HAVE_AVX2_KERNEL 1
#include <cpuid.h>
#include <immintrin.h>
#define AVX2 __attribute__((target("avx2")))
#endif

/* ------------------------------------------------------------------ */
/* Kernel choice                                                       */
/* ------------------------------------------------------------------ */

static int kernel_state;	/* 0: not decided; 1: AVX2; 2: portable */

#ifdef HAVE_AVX2_KERNEL
static bool
cpu_has_avx2(void)
{
	__builtin_cpu_init();
	return __builtin_cpu_supports("avx2");
}
#else
#define cpu_has_avx2 NULL
#endif

static bool
use_avx2(void)
{
	return ckpt_cpu_kernel_pick(&kernel_state, "CKPT_NUMERIC_KERNEL",
	    cpu_has_avx2);
}

const char *
ckpt_numeric_kernel(void)
{
	return use_avx2() ? "avx2" : "portable";
}

void
ckpt_numeric_reset_kernel(void)
{
	__atomic_store_n(&kernel_state, 0, __ATOMIC_RELAXED);
}

/* ------------------------------------------------------------------ */
/* Statistics                                                          */
/* ------------------------------------------------------------------ */

/*
 * Neumaier's compensated addition of x into *s with error term *c.  The
 * error of s + x is taken by Knuth's TwoSum, which needs no comparison
 * of magnitudes (a branch the processor mispredicts half the time):
 * it is the exact rounding error, as Neumaier's |s| >= |x| case split
 * computes it, so the result is the same to the bit.
 */
static inline void
kahan_add(double *s, double *c, double x)
{
	double t = *s + x, z = t - *s;

	/* Past DBL_MAX there is nothing to compensate (and Inf - Inf
	 * would make the compensation NaN). */
	if (isfinite(t))
		*c += (*s - (t - z)) + (x - z);
	*s = t;
}

/* Lanes add up in a fixed order, compensated, on both paths: lanes that
 * cancel (1e150 in one, -1e150 in another) lose nothing else. */
static double
reduce_n(const double *s, unsigned n)
{
	double sum = 0, c = 0;

	for (unsigned k = 0; k < n; k++)
		kahan_add(&sum, &c, s[k]);
	return isfinite(sum) ? sum + c : sum;
}

static double
reduce8(const double s[8])
{
	return reduce_n(s, 8);
}

static double
reduce4(const double s[4])
{
	return reduce_n(s, 4);
}

/* Lane minimum and maximum: the same select as minpd/maxpd, so that
 * -0 and +0 come out the same on both paths. */
static inline double
vmin(double x, double m)
{
	return x < m ? x : m;
}

static inline double
vmax(double x, double m)
{
	return x > m ? x : m;
}

/* Pass one, in lanes: sums, minima, maxima, zero counts, and the
 * finiteness check; false when a value is NaN or infinite. */
struct pass1 {
	double sum[8], min[8], max[8], chk[8];
	uint64_t zeros;
};

static void
pass1_portable(const double *v, size_t n, struct pass1 *p)
{
	size_t i = 0;

	for (; i + 8 <= n; i += 8)
		for (unsigned k = 0; k < 8; k++) {
			double x = v[i + k];

			p->sum[k] += x;
			p->chk[k] += x - x;
			p->min[k] = vmin(x, p->min[k]);
			p->max[k] = vmax(x, p->max[k]);
			p->zeros += x == 0;
		}
	for (unsigned k = 0; i + k < n; k++) {
		double x = v[i + k];

		p->sum[k] += x;
		p->chk[k] += x - x;
		p->min[k] = vmin(x, p->min[k]);
		p->max[k] = vmax(x, p->max[k]);
		p->zeros += x == 0;
	}
}

static void
pass2_portable(const double *v, size_t n, double mean, double q[8],
    double e[8])
{
	size_t i = 0;

	for (; i + 8 <= n; i += 8)
		for (unsigned k = 0; k < 8; k++) {
			double d = v[i + k] - mean;

			q[k] += d * d;
			e[k] += d;
		}
	for (unsigned k = 0; i + k < n; k++) {
		double d = v[i + k] - mean;

		q[k] += d * d;
		e[k] += d;
	}
}

#ifdef HAVE_AVX2_KERNEL
AVX2 static void
pass1_avx2(const double *v, size_t n, struct pass1 *p)
{
	__m256d s0 = _mm256_loadu_pd(p->sum), s1 = _mm256_loadu_pd(p->sum + 4);
	__m256d c0 = _mm256_loadu_pd(p->chk), c1 = _mm256_loadu_pd(p->chk + 4);
	__m256d m0 = _mm256_loadu_pd(p->min), m1 = _mm256_loadu_pd(p->min + 4);
	__m256d x0 = _mm256_loadu_pd(p->max), x1 = _mm256_loadu_pd(p->max + 4);
	__m256i z = _mm256_setzero_si256();
	__m256d zero = _mm256_setzero_pd();
	size_t i = 0;
	uint64_t zl[4];

	for (; i + 8 <= n; i += 8) {
		__m256d a = _mm256_loadu_pd(v + i),
		    b = _mm256_loadu_pd(v + i + 4);

		s0 = _mm256_add_pd(s0, a);
		s1 = _mm256_add_pd(s1, b);
		c0 = _mm256_add_pd(c0, _mm256_sub_pd(a, a));
		c1 = _mm256_add_pd(c1, _mm256_sub_pd(b, b));
		m0 = _mm256_min_pd(a, m0);
		m1 = _mm256_min_pd(b, m1);
		x0 = _mm256_max_pd(a, x0);
		x1 = _mm256_max_pd(b, x1);
		z = _mm256_sub_epi64(z, _mm256_castpd_si256(
		    _mm256_cmp_pd(a, zero, _CMP_EQ_OQ)));
		z = _mm256_sub_epi64(z, _mm256_castpd_si256(
		    _mm256_cmp_pd(b, zero, _CMP_EQ_OQ)));
	}
	_mm256_storeu_pd(p->sum, s0);
	_mm256_storeu_pd(p->sum + 4, s1);
	_mm256_storeu_pd(p->chk, c0);
	_mm256_storeu_pd(p->chk + 4, c1);
	_mm256_storeu_pd(p->min, m0);
	_mm256_storeu_pd(p->min + 4, m1);
	_mm256_storeu_pd(p->max, x0);
	_mm256_storeu_pd(p->max + 4, x1);
	_mm256_storeu_si256((__m256i *)zl, z);
	p->zeros += zl[0] + zl[1] + zl[2] + zl[3];
	pass1_portable(v + i, n - i, p);
}

AVX2 static void
pass2_avx2(const double *v, size_t n, double mean, double q[8],
    double e[8])
{
	__m256d m = _mm256_set1_pd(mean);
	__m256d q0 = _mm256_loadu_pd(q), q1 = _mm256_loadu_pd(q + 4);
	__m256d e0 = _mm256_loadu_pd(e), e1 = _mm256_loadu_pd(e + 4);
	size_t i = 0;

	for (; i + 8 <= n; i += 8) {
		__m256d a = _mm256_sub_pd(_mm256_loadu_pd(v + i), m);
		__m256d b = _mm256_sub_pd(_mm256_loadu_pd(v + i + 4), m);

		q0 = _mm256_add_pd(q0, _mm256_mul_pd(a, a));
		q1 = _mm256_add_pd(q1, _mm256_mul_pd(b, b));
		e0 = _mm256_add_pd(e0, a);
		e1 = _mm256_add_pd(e1, b);
	}
	_mm256_storeu_pd(q, q0);
	_mm256_storeu_pd(q + 4, q1);
	_mm256_storeu_pd(e, e0);
	_mm256_storeu_pd(e + 4, e1);
	pass2_portable(v + i, n - i, mean, q, e);
}
#endif

/* Whether every lane of a finiteness check is still zero: a lane that
 * saw a NaN or an infinity holds NaN (x - x), and NaN != 0. */
static bool
lanes_zero(const double chk[8])
{
	for (unsigned k = 0; k < 8; k++)
		if (chk[k] != 0)
			return false;
	return true;
}

/* A finite block's numbers from its lanes: m2 from the squared
 * deviations q and the deviations e of pass two (the corrected two-pass
 * formula), min and max already reduced over the lanes. */
static void
block_result(struct ckpt_tensor_stats *out, size_t n, double mean,
    const double q[8], const double e[8], double mn, double mx,
    uint64_t zeros)
{
	double m2 = reduce8(q), se;

	/* Squares beyond DBL_MAX: the std is infinite, as numpy's is. */
	if (isfinite(m2)) {
		se = reduce8(e);
		m2 -= se * se / (double)n;
	}
	out->finite = n;
	out->zeros = zeros;
	out->min = mn;
	out->max = mx;
	out->mean = mean;
	out->m2 = m2 > 0 ? m2 : 0;
}

/* Statistics of n finite-or-not values; false when one is not finite
 * (out is then not filled). */
static bool
stats_fast(const double *v, size_t n, struct ckpt_tensor_stats *out)
{
	struct pass1 p;
	double q[8] = { 0 }, e[8] = { 0 }, sum, mean, mn, mx;

	memset(&p, 0, sizeof(p));
	for (unsigned k = 0; k < 8; k++) {
		p.min[k] = INFINITY;
		p.max[k] = -INFINITY;
	}
#ifdef HAVE_AVX2_KERNEL
	if (use_avx2())
		pass1_avx2(v, n, &p);
	else
#endif
		pass1_portable(v, n, &p);
	if (!lanes_zero(p.chk))
		return false;
	out->count += n;
	if (!n)
		return true;
	sum = reduce8(p.sum);
	mean = sum / (double)n;
	/* Values near DBL_MAX overflow the sum: a mean of scaled values
	 * cannot (rare, and only for F64). */
	if (!isfinite(mean)) {
		mean = 0;
		for (size_t i = 0; i < n; i++)
			mean += v[i] / (double)n;
	}
#ifdef HAVE_AVX2_KERNEL
	if (use_avx2())
		pass2_avx2(v, n, mean, q, e);
	else
#endif
		pass2_portable(v, n, mean, q, e);
	mn = p.min[0];
	mx = p.max[0];
	for (unsigned k = 1; k < 8; k++) {
		mn = vmin(p.min[k], mn);
		mx = vmax(p.max[k], mx);
	}
	block_result(out, n, mean, q, e, mn, mx, p.zeros);
	return true;
}

/*
 * The NaNs and infinities of a block counted into out, its finite values
 * copied in order to fin; returns how many those are.  Without branches
 * and with the counts in registers: a block with one NaN is often one
 * with many (random bits, a diverged run), where a branch per value
 * costs more than the reductions.  The class comes from the bits: all
 * exponent bits set is an infinity (zero mantissa) or a NaN.
 */
static size_t
split_f64(const double *v, size_t n, double *fin,
    struct ckpt_tensor_stats *out)
{
	const uint64_t expo = UINT64_C(0x7ff0000000000000);
	uint64_t nan = 0, pinf = 0, ninf = 0;
	size_t nf = 0;

	for (size_t i = 0; i < n; i++) {
		uint64_t u, a;
		unsigned inf, neg;

		memcpy(&u, &v[i], sizeof(u));
		a = u & ~(UINT64_C(1) << 63);
		neg = (unsigned)(u >> 63);
		inf = a == expo;
		nan += a > expo;
		pinf += inf & !neg;
		ninf += inf & neg;
		fin[nf] = v[i];
		nf += a < expo;
	}
	out->nan += nan;
	out->pos_inf += pinf;
	out->neg_inf += ninf;
	return nf;
}

/* The same for F32 bytes, widened to double. */
static size_t
split_f32(const unsigned char *p, size_t n, double *fin,
    struct ckpt_tensor_stats *out)
{
	const uint32_t expo = 0x7f800000u;
	uint64_t nan = 0, pinf = 0, ninf = 0;
	size_t nf = 0;

	for (size_t i = 0; i < n; i++) {
		uint32_t u, a;
		unsigned inf, neg;
		float f;

		memcpy(&u, p + 4 * i, sizeof(u));	/* little-endian host */
		memcpy(&f, &u, sizeof(f));
		a = u & 0x7fffffffu;
		neg = u >> 31;
		inf = a == expo;
		nan += a > expo;
		pinf += inf & !neg;
		ninf += inf & neg;
		fin[nf] = f;
		nf += a < expo;
	}
	out->nan += nan;
	out->pos_inf += pinf;
	out->neg_inf += ninf;
	return nf;
}

/* The statistics of a block holding a NaN or an infinity: those counted,
 * the finite values (fin, nf of them, in order) reduced. */
static void
stats_split(const double *fin, size_t nf, size_t n,
    struct ckpt_tensor_stats *out)
{
	out->count = n - nf;
	if (nf && !stats_fast(fin, nf, out))
		BUG("non-finite value after compaction");
}

void
ckpt_kstats_block(const double *v, size_t n, struct ckpt_tensor_stats *out)
{
	double fin[CKPT_KBLOCK];

	ckpt_tensor_stats_init(out);
	if (n > CKPT_KBLOCK)
		BUG("block of %zu values", n);
	if (stats_fast(v, n, out))
		return;
	/* Some value is NaN or infinite: count them, reduce the rest. */
	stats_split(fin, split_f64(v, n, fin, out), n, out);
}

/*
 * F32 straight from the bytes read: no block of doubles is written and
 * read back.  Pass one keeps min, max and the finiteness check in float
 * lanes (a float's conversion to double is exact and keeps its order,
 * so the float minimum is the double one) and the sums in double lanes;
 * pass two widens each float again.  Lane k takes the values i with
 * i % 8 == k, as above, so the numbers are those of ckpt_kstats_block
 * on the decoded values, to the bit.
 */
struct pass1f {
	double sum[8];
	float min[8], max[8], chk[8];
	uint64_t zeros;
};

static inline float
ld_f32(const unsigned char *p)
{
	float f;

	memcpy(&f, p, sizeof(f));	/* little-endian host */
	return f;
}

static void
pass1f_portable(const unsigned char *p, size_t n, struct pass1f *s)
{
	for (size_t i = 0; i < n; i++) {
		unsigned k = i % 8;
		float x = ld_f32(p + 4 * i);

		s->sum[k] += x;
		s->chk[k] += x - x;
		s->min[k] = x < s->min[k] ? x : s->min[k];
		s->max[k] = x > s->max[k] ? x : s->max[k];
		s->zeros += x == 0;
	}
}

static void
pass2f_portable(const unsigned char *p, size_t n, double mean, double q[8],
    double e[8])
{
	for (size_t i = 0; i < n; i++) {
		unsigned k = i % 8;
		double d = (double)ld_f32(p + 4 * i) - mean;

		q[k] += d * d;
		e[k] += d;
	}
}

#ifdef HAVE_AVX2_KERNEL
AVX2 static void
pass1f_avx2(const unsigned char *p, size_t n, struct pass1f *s)
{
	__m256d s0 = _mm256_loadu_pd(s->sum), s1 = _mm256_loadu_pd(s->sum + 4);
	__m256 mn = _mm256_loadu_ps(s->min), mx = _mm256_loadu_ps(s->max);
	__m256 chk = _mm256_loadu_ps(s->chk);
	const __m256 zero = _mm256_setzero_ps();
	__m256i z = _mm256_setzero_si256();
	uint32_t zl[8];
	size_t i = 0;

	for (; i + 8 <= n; i += 8) {
		const float *f = (const float *)(const void *)(p + 4 * i);
		__m256 x = _mm256_loadu_ps(f);

		s0 = _mm256_add_pd(s0, _mm256_cvtps_pd(_mm_loadu_ps(f)));
		s1 = _mm256_add_pd(s1, _mm256_cvtps_pd(_mm_loadu_ps(f + 4)));
		chk = _mm256_add_ps(chk, _mm256_sub_ps(x, x));
		mn = _mm256_min_ps(x, mn);
		mx = _mm256_max_ps(x, mx);
		z = _mm256_sub_epi32(z, _mm256_castps_si256(
		    _mm256_cmp_ps(x, zero, _CMP_EQ_OQ)));
	}
	_mm256_storeu_pd(s->sum, s0);
	_mm256_storeu_pd(s->sum + 4, s1);
	_mm256_storeu_ps(s->min, mn);
	_mm256_storeu_ps(s->max, mx);
	_mm256_storeu_ps(s->chk, chk);
	/* 32-bit lane counters: a block has at most CKPT_KBLOCK values. */
	_mm256_storeu_si256((__m256i *)zl, z);
	for (unsigned k = 0; k < 8; k++)
		s->zeros += zl[k];
	pass1f_portable(p + 4 * i, n - i, s);
}

AVX2 static void
pass2f_avx2(const unsigned char *p, size_t n, double mean, double q[8],
    double e[8])
{
	__m256d m = _mm256_set1_pd(mean);
	__m256d q0 = _mm256_loadu_pd(q), q1 = _mm256_loadu_pd(q + 4);
	__m256d e0 = _mm256_loadu_pd(e), e1 = _mm256_loadu_pd(e + 4);
	size_t i = 0;

	for (; i + 8 <= n; i += 8) {
		const float *f = (const float *)(const void *)(p + 4 * i);
		__m256d a = _mm256_sub_pd(_mm256_cvtps_pd(_mm_loadu_ps(f)), m);
		__m256d b = _mm256_sub_pd(_mm256_cvtps_pd(_mm_loadu_ps(f + 4)),
		    m);

		q0 = _mm256_add_pd(q0, _mm256_mul_pd(a, a));
		q1 = _mm256_add_pd(q1, _mm256_mul_pd(b, b));
		e0 = _mm256_add_pd(e0, a);
		e1 = _mm256_add_pd(e1, b);
	}
	_mm256_storeu_pd(q, q0);
	_mm256_storeu_pd(q + 4, q1);
	_mm256_storeu_pd(e, e0);
	_mm256_storeu_pd(e + 4, e1);
	pass2f_portable(p + 4 * i, n - i, mean, q, e);
}
#endif

/* As stats_fast, for F32 bytes. */
static bool
stats_fast_f32(const unsigned char *p, size_t n,
    struct ckpt_tensor_stats *out)
{
	struct pass1f s;
	double q[8] = { 0 }, e[8] = { 0 }, mean;
	float mn, mx;

	/* Lane by lane: cheaper than a memset for a block of 1024. */
	for (unsigned k = 0; k < 8; k++) {
		s.sum[k] = 0;
		s.chk[k] = 0;
		s.min[k] = INFINITY;
		s.max[k] = -INFINITY;
	}
	s.zeros = 0;
#ifdef HAVE_AVX2_KERNEL
	if (use_avx2())
		pass1f_avx2(p, n, &s);
	else
#endif
		pass1f_portable(p, n, &s);
	for (unsigned k = 0; k < 8; k++)
		if (s.chk[k] != 0)
			return false;
	out->count += n;
	if (!n)
		return true;
	/* At most CKPT_KBLOCK floats: the sum cannot overflow a double. */
	mean = reduce8(s.sum) / (double)n;
#ifdef HAVE_AVX2_KERNEL
	if (use_avx2())
		pass2f_avx2(p, n, mean, q, e);
	else
#endif
		pass2f_portable(p, n, mean, q, e);
	mn = s.min[0];
	mx = s.max[0];
	for (unsigned k = 1; k < 8; k++) {
		mn = s.min[k] < mn ? s.min[k] : mn;
		mx = s.max[k] > mx ? s.max[k] : mx;
	}
	block_result(out, n, mean, q, e, mn, mx, s.zeros);
	return true;
}

bool
ckpt_kstats_f32_block(const void *src, size_t n,
    struct ckpt_tensor_stats *out)
{
	const unsigned char *p = src;
	double fin[CKPT_KBLOCK];

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
	return false;	/* the loads assume a little-endian host */
#endif
	if (n > CKPT_KBLOCK)
		BUG("block of %zu values", n);
	ckpt_tensor_stats_init(out);
	if (stats_fast_f32(p, n, out))
		return true;
	/* A NaN or an infinity: as ckpt_kstats_block, in one pass over the
	 * floats (the same finite values in the same order: the same bits). */
	stats_split(fin, split_f32(p, n, fin, out), n, out);
	return true;
}

void
ckpt_kstats_tree_init(struct ckpt_kstats_tree *tr)
{
	tr->depth = 0;
}

/* b follows a in value order. */
static void
merge_into(struct ckpt_tensor_stats *a, const struct ckpt_tensor_stats *b)
{
	ckpt_tensor_stats_merge(a, b);
}

void
ckpt_kstats_tree_push(struct ckpt_kstats_tree *tr,
    const struct ckpt_tensor_stats *blk)
{
	unsigned int lvl = 0;
	struct ckpt_tensor_stats cur = *blk;

	while (tr->depth && tr->level[tr->depth - 1] == lvl) {
		struct ckpt_tensor_stats prev = tr->s[--tr->depth];

		merge_into(&prev, &cur);
		cur = prev;
		lvl++;
	}
	/* 2^64 blocks cannot happen: depth stays below 64. */
	tr->s[tr->depth] = cur;
	tr->level[tr->depth++] = lvl;
}

void
ckpt_kstats_tree_fold(struct ckpt_kstats_tree *tr,
    struct ckpt_tensor_stats *st)
{
	if (!tr->depth)
		return;
	/* Smallest (newest) partial results first, then outwards. */
	for (unsigned int i = tr->depth - 1; i > 0; i--)
		merge_into(&tr->s[i - 1], &tr->s[i]);
	ckpt_tensor_stats_merge(st, &tr->s[0]);
	tr->depth = 0;
}

/* ------------------------------------------------------------------ */
/* Comparison                                                          */
/* ------------------------------------------------------------------ */

struct cmp1 {
	double abs[4], sq[4], a2[4], b2[4], ab[4], max[4], chk[4];
	uint64_t beyond, unequal;
};

static void
cmp_portable(const double *a, const double *b, size_t n, double atol,
    double rtol, struct cmp1 *c)
{
	for (size_t i = 0; i < n; i++) {
		unsigned k = i % 4;
		double x = a[i], y = b[i], d = x - y, ad = fabs(d);

		c->abs[k] += ad;
		c->sq[k] += d * d;
		c->a2[k] += x * x;
		c->b2[k] += y * y;
		c->ab[k] += x * y;
		c->chk[k] += d - d;
		c->max[k] = vmax(ad, c->max[k]);
		c->beyond += ad > atol + rtol * fabs(y);
		c->unequal += x != y;
	}
}

#ifdef HAVE_AVX2_KERNEL
AVX2 static void
cmp_avx2(const double *a, const double *b, size_t n, double atol,
    double rtol, struct cmp1 *c)
{
	const __m256d sign = _mm256_set1_pd(-0.0);
	const __m256d vat = _mm256_set1_pd(atol), vrt = _mm256_set1_pd(rtol);
	__m256d sabs = _mm256_loadu_pd(c->abs), ssq = _mm256_loadu_pd(c->sq);
	__m256d sa2 = _mm256_loadu_pd(c->a2), sb2 = _mm256_loadu_pd(c->b2);
	__m256d sab = _mm256_loadu_pd(c->ab), mx = _mm256_loadu_pd(c->max);
	__m256d chk = _mm256_loadu_pd(c->chk);
	__m256i bey = _mm256_setzero_si256(), neq = _mm256_setzero_si256();
	uint64_t l[4];
	size_t i = 0;

	for (; i + 4 <= n; i += 4) {
		__m256d x = _mm256_loadu_pd(a + i), y = _mm256_loadu_pd(b + i);
		__m256d d = _mm256_sub_pd(x, y);
		__m256d ad = _mm256_andnot_pd(sign, d);
		__m256d tol = _mm256_add_pd(vat,
		    _mm256_mul_pd(vrt, _mm256_andnot_pd(sign, y)));

		sabs = _mm256_add_pd(sabs, ad);
		ssq = _mm256_add_pd(ssq, _mm256_mul_pd(d, d));
		sa2 = _mm256_add_pd(sa2, _mm256_mul_pd(x, x));
		sb2 = _mm256_add_pd(sb2, _mm256_mul_pd(y, y));
		sab = _mm256_add_pd(sab, _mm256_mul_pd(x, y));
		chk = _mm256_add_pd(chk, _mm256_sub_pd(d, d));
		mx = _mm256_max_pd(ad, mx);
		bey = _mm256_sub_epi64(bey, _mm256_castpd_si256(
		    _mm256_cmp_pd(ad, tol, _CMP_GT_OQ)));
		neq = _mm256_sub_epi64(neq, _mm256_castpd_si256(
		    _mm256_cmp_pd(x, y, _CMP_NEQ_UQ)));
	}
	_mm256_storeu_pd(c->abs, sabs);
	_mm256_storeu_pd(c->sq, ssq);
	_mm256_storeu_pd(c->a2, sa2);
	_mm256_storeu_pd(c->b2, sb2);
	_mm256_storeu_pd(c->ab, sab);
	_mm256_storeu_pd(c->max, mx);
	_mm256_storeu_pd(c->chk, chk);
	_mm256_storeu_si256((__m256i *)l, bey);
	c->beyond += l[0] + l[1] + l[2] + l[3];
	_mm256_storeu_si256((__m256i *)l, neq);
	c->unequal += l[0] + l[1] + l[2] + l[3];
	cmp_portable(a + i, b + i, n - i, atol, rtol, c);
}
#endif

/* With force, finite pairs whose difference overflows (|a - b| beyond
 * DBL_MAX) are taken as they are: their sums are then infinite. */
static bool
cmp_fast(const double *a, const double *b, size_t n,
    const struct ckpt_compare_options *o, bool force,
    struct ckpt_kcmp_acc *acc)
{
	struct cmp1 c;
	struct ckpt_compare_stats *st = &acc->st;
	double mx;

	memset(&c, 0, sizeof(c));
#ifdef HAVE_AVX2_KERNEL
	if (use_avx2())
		cmp_avx2(a, b, n, o->atol, o->rtol, &c);
	else
#endif
		cmp_portable(a, b, n, o->atol, o->rtol, &c);
	if (!force && reduce4(c.chk) != 0)
		return false;
	mx = vmax(vmax(c.max[0], c.max[1]), vmax(c.max[2], c.max[3]));
	st->count += n;
	st->finite += n;
	st->beyond += c.beyond;
	st->unequal += c.unequal;
	st->max_abs = vmax(mx, st->max_abs);
	kahan_add(&st->sum_abs, &acc->comp[0], reduce4(c.abs));
	kahan_add(&st->sum_sq, &acc->comp[1], reduce4(c.sq));
	kahan_add(&st->sum_a2, &acc->comp[2], reduce4(c.a2));
	kahan_add(&st->sum_b2, &acc->comp[3], reduce4(c.b2));
	kahan_add(&st->sum_ab, &acc->comp[4], reduce4(c.ab));
	return true;
}

void
ckpt_kcmp_acc_init(struct ckpt_kcmp_acc *acc)
{
	memset(acc, 0, sizeof(*acc));
	ckpt_compare_stats_init(&acc->st);
}

void
ckpt_kcmp_acc_finish(struct ckpt_kcmp_acc *acc)
{
	acc->st.sum_abs += acc->comp[0];
	acc->st.sum_sq += acc->comp[1];
	acc->st.sum_a2 += acc->comp[2];
	acc->st.sum_b2 += acc->comp[3];
	acc->st.sum_ab += acc->comp[4];
	memset(acc->comp, 0, sizeof(acc->comp));
}

/* A pair with a NaN or an infinity, as numpy.isclose judges it. */
static void
cmp_special(double x, double y, const struct ckpt_compare_options *o,
    struct ckpt_compare_stats *st)
{
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
	if (na || nb)
		close = na && nb && o->equal_nan;
	else
		close = x == y;
	st->beyond += !close;
}

void
ckpt_kcmp_block(const double *a, const double *b, size_t n,
    const struct ckpt_compare_options *o, struct ckpt_kcmp_acc *acc)
{
	double fa[CKPT_KBLOCK], fb[CKPT_KBLOCK];
	size_t nf = 0;

	if (n > CKPT_KBLOCK)
		BUG("block of %zu values", n);
	if (cmp_fast(a, b, n, o, false, acc))
		return;
	for (size_t i = 0; i < n; i++) {
		if (isfinite(a[i]) && isfinite(b[i])) {
			fa[nf] = a[i];
			fb[nf++] = b[i];
		} else {
			cmp_special(a[i], b[i], o, &acc->st);
		}
	}
	cmp_fast(fa, fb, nf, o, true, acc);
}

void
ckpt_compare_stats_init(struct ckpt_compare_stats *st)
{
	memset(st, 0, sizeof(*st));
}

void
ckpt_compare_stats_merge(struct ckpt_compare_stats *st,
    const struct ckpt_compare_stats *o)
{
	st->count += o->count;
	st->unequal += o->unequal;
	st->beyond += o->beyond;
	st->finite += o->finite;
	st->nan_a += o->nan_a;
	st->nan_b += o->nan_b;
	st->nan_both += o->nan_both;
	st->pos_inf_a += o->pos_inf_a;
	st->neg_inf_a += o->neg_inf_a;
	st->pos_inf_b += o->pos_inf_b;
	st->neg_inf_b += o->neg_inf_b;
	st->max_abs = vmax(o->max_abs, st->max_abs);
	st->sum_abs += o->sum_abs;
	st->sum_sq += o->sum_sq;
	st->sum_a2 += o->sum_a2;
	st->sum_b2 += o->sum_b2;
	st->sum_ab += o->sum_ab;
}

/* ------------------------------------------------------------------ */
/* Threads                                                             */
/* ------------------------------------------------------------------ */

unsigned int
ckpt_online_cpus(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);

	return n > 0 && n < 1024 ? (unsigned int)n : 1;
}

struct pfor {
	size_t n, next;
	void (*fn)(void *ctx, size_t i);
	void *ctx;
};

static void *
pfor_worker(void *arg)
{
	struct pfor *p = arg;

	for (;;) {
		size_t i = __atomic_fetch_add(&p->next, 1, __ATOMIC_RELAXED);

		if (i >= p->n)
			return NULL;
		p->fn(p->ctx, i);
	}
}

void
ckpt_parallel_for(size_t n, unsigned int threads,
    void (*fn)(void *ctx, size_t i), void *ctx)
{
	struct pfor p = { n, 0, fn, ctx };
	pthread_t tids[64];

	if (!threads)
		threads = ckpt_online_cpus();
	if (threads > CKPT_ARRAY_SIZE(tids))
		threads = CKPT_ARRAY_SIZE(tids);
	if (threads > n)
		threads = (unsigned int)n;
	ckpt_workers_run(threads, pfor_worker, &p, 0, tids);
}

/* ------------------------------------------------------------------ */
/* Decoding                                                            */
/* ------------------------------------------------------------------ */

#ifdef HAVE_AVX2_KERNEL
AVX2 static void
f32_avx2(const unsigned char *p, size_t n, double *d)
{
	size_t i = 0;

	for (; i + 4 <= n; i += 4)
		_mm256_storeu_pd(d + i, _mm256_cvtps_pd(
		    _mm_loadu_ps((const float *)(const void *)(p + 4 * i))));
	for (; i < n; i++) {
		float f;

		memcpy(&f, p + 4 * i, 4);
		d[i] = f;
	}
}

AVX2 static void
bf16_avx2(const unsigned char *p, size_t n, double *d)
{
	size_t i = 0;

	for (; i + 8 <= n; i += 8) {
		__m128i h = _mm_loadu_si128((const __m128i *)(const void *)
		    (p + 2 * i));
		__m256 f = _mm256_castsi256_ps(_mm256_slli_epi32(
		    _mm256_cvtepu16_epi32(h), 16));

		_mm256_storeu_pd(d + i, _mm256_cvtps_pd(
		    _mm256_castps256_ps128(f)));
		_mm256_storeu_pd(d + i + 4, _mm256_cvtps_pd(
		    _mm256_extractf128_ps(f, 1)));
	}
	for (; i < n; i++) {
		uint32_t b = (uint32_t)(p[2 * i] | p[2 * i + 1] << 8) << 16;
		float f;

		memcpy(&f, &b, 4);
		d[i] = f;
	}
}

/* F16C's conversion is exact (subnormals, Inf, NaN payloads kept). */
__attribute__((target("avx2,f16c"))) static void
f16_f16c(const unsigned char *p, size_t n, double *d)
{
	size_t i = 0;

	for (; i + 8 <= n; i += 8) {
		__m256 f = _mm256_cvtph_ps(_mm_loadu_si128(
		    (const __m128i *)(const void *)(p + 2 * i)));

		_mm256_storeu_pd(d + i, _mm256_cvtps_pd(
		    _mm256_castps256_ps128(f)));
		_mm256_storeu_pd(d + i + 4, _mm256_cvtps_pd(
		    _mm256_extractf128_ps(f, 1)));
	}
	if (i < n)
		ckpt_decode_f16_portable(p + 2 * i, n - i, d + i);
}
#endif

#ifdef HAVE_AVX2_KERNEL
/* CPUID.1:ECX bit 29 (clang's __builtin_cpu_supports has no "f16c"). */
static bool
cpu_has_f16c(void)
{
	static int state;	/* 0: not asked; 1: yes; 2: no */
	int k = __atomic_load_n(&state, __ATOMIC_RELAXED);

	if (!k) {
		unsigned int a, b, c, d;

		k = __get_cpuid(1, &a, &b, &c, &d) && (c & (1u << 29)) ? 1 : 2;
		__atomic_store_n(&state, k, __ATOMIC_RELAXED);
	}
	return k == 1;
}
#endif

bool
ckpt_kdecode_simd(enum ckpt_dtype dt, const void *src, size_t n,
    double *dst)
{
#ifdef HAVE_AVX2_KERNEL
	if (!use_avx2())
		return false;
	switch (dt) {
	case CKPT_DTYPE_F32:
		f32_avx2(src, n, dst);
		return true;
	case CKPT_DTYPE_C64:
		f32_avx2(src, 2 * n, dst);
		return true;
	case CKPT_DTYPE_BF16:
		bf16_avx2(src, n, dst);
		return true;
	case CKPT_DTYPE_F16:
	case CKPT_DTYPE_C32:
		if (!cpu_has_f16c())
			return false;
		f16_f16c(src, dt == CKPT_DTYPE_C32 ? 2 * n : n, dst);
		return true;
	default:
		return false;
	}
#else
	(void)dt;
	(void)src;
	(void)n;
	(void)dst;
	return false;
#endif
}

/* ------------------------------------------------------------------ */
/* Non-finite values, from the bits                                    */
/* ------------------------------------------------------------------ */

/*
 * verify --numerics needs only NaN and infinity counts: for the IEEE-like
 * formats a value is non-finite exactly when its exponent bits are all
 * ones, which the raw bits tell without decoding.  These count such
 * values; a block that has any is then decoded and classified.
 */
static size_t
allones_portable(const unsigned char *p, size_t n, unsigned int bytes,
    uint64_t mask)
{
	size_t c = 0;

	for (size_t i = 0; i < n; i++) {
		uint64_t v = 0;

		memcpy(&v, p + i * bytes, bytes);	/* little-endian host */
		c += (v & mask) == mask;
	}
	return c;
}

#ifdef HAVE_AVX2_KERNEL
AVX2 static size_t
allones32_avx2(const unsigned char *p, size_t n, uint32_t mask)
{
	const __m256i m = _mm256_set1_epi32((int)mask);
	__m256i c = _mm256_setzero_si256();
	uint32_t l[8];
	size_t i = 0, total;

	for (; i + 8 <= n; i += 8) {
		__m256i v = _mm256_loadu_si256((const __m256i *)(const void *)
		    (p + 4 * i));

		c = _mm256_sub_epi32(c, _mm256_cmpeq_epi32(
		    _mm256_and_si256(v, m), m));
	}
	_mm256_storeu_si256((__m256i *)l, c);
	total = (size_t)l[0] + l[1] + l[2] + l[3] + l[4] + l[5] + l[6] + l[7];
	return total + allones_portable(p + 4 * i, n - i, 4, mask);
}

AVX2 static size_t
allones16_avx2(const unsigned char *p, size_t n, uint16_t mask)
{
	const __m256i m = _mm256_set1_epi16((short)mask);
	size_t i = 0, total = 0;

	/* 16-bit lane counters: flushed every 1024 vectors, well below
	 * their 65,535 limit. */
	while (i + 16 <= n) {
		__m256i c = _mm256_setzero_si256();
		uint16_t l[16];

		for (size_t k = 0; k < 1024 && i + 16 <= n; k++, i += 16) {
			__m256i v = _mm256_loadu_si256((const __m256i *)
			    (const void *)(p + 2 * i));

			c = _mm256_sub_epi16(c, _mm256_cmpeq_epi16(
			    _mm256_and_si256(v, m), m));
		}
		_mm256_storeu_si256((__m256i *)l, c);
		for (unsigned k = 0; k < 16; k++)
			total += l[k];
	}
	return total + allones_portable(p + 2 * i, n - i, 2, mask);
}
#endif

/*
 * The raw layout of dt's values where the bits tell NaN and infinities
 * apart: bytes per value (a complex element is two values) and the
 * exponent mask; false for other dtypes.
 */
static bool
nonfinite_layout(enum ckpt_dtype dt, unsigned int *bytes, uint64_t *expo)
{
	switch (dt) {
	case CKPT_DTYPE_F32:
	case CKPT_DTYPE_C64:
		*bytes = 4;
		*expo = 0x7f800000u;
		return true;
	case CKPT_DTYPE_F16:
	case CKPT_DTYPE_C32:
		*bytes = 2;
		*expo = 0x7c00u;
		return true;
	case CKPT_DTYPE_BF16:
		*bytes = 2;
		*expo = 0x7f80u;
		return true;
	case CKPT_DTYPE_F64:
	case CKPT_DTYPE_C128:
		*bytes = 8;
		*expo = 0x7ff0000000000000ull;
		return true;
	default:
		return false;
	}
}

bool
ckpt_knonfinite_count(enum ckpt_dtype dt, const void *src, size_t n,
    size_t *count)
{
	size_t nv = n * ckpt_dtype_components(dt);
	unsigned int bytes;
	uint64_t expo;

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
	return false;	/* the loads below assume a little-endian host */
#endif
	if (!nonfinite_layout(dt, &bytes, &expo))
		return false;
#ifdef HAVE_AVX2_KERNEL
	if (use_avx2() && bytes == 4) {
		*count = allones32_avx2(src, nv, (uint32_t)expo);
		return true;
	}
	if (use_avx2() && bytes == 2) {
		*count = allones16_avx2(src, nv, (uint16_t)expo);
		return true;
	}
#endif
	*count = allones_portable(src, nv, bytes, expo);
	return true;
}

bool
ckpt_knonfinite_classify(enum ckpt_dtype dt, const void *src, size_t n,
    struct ckpt_tensor_stats *st)
{
	const unsigned char *p = src;
	size_t nv = n * ckpt_dtype_components(dt);
	unsigned int bytes;
	uint64_t expo, mant, sign;

	if (!nonfinite_layout(dt, &bytes, &expo))
		return false;
	mant = (expo & -expo) - 1;	/* the bits below the exponent */
	sign = (uint64_t)1 << (8 * bytes - 1);
	for (size_t i = 0; i < nv; i++, p += bytes) {
		uint64_t v = 0;

		for (unsigned int b = bytes; b-- > 0;)
			v = v << 8 | p[b];	/* little-endian */
		if ((v & expo) != expo)
			continue;
		if (v & mant)
			st->nan++;
		else if (v & sign)
			st->neg_inf++;
		else
			st->pos_inf++;
	}
	return true;
}
